//! `multipart/form-data` as LPR cameras send their heartbeat: text fields only are kept (a file
//! part is skipped), at most `MAX_FIELDS` of at most `MAX_VALUE` bytes. Sans-I/O, never panics
//! (fuzz target `lpr`).

pub const MAX_FIELDS: usize = 64;
pub const MAX_VALUE: usize = 4096;

/// The boundary from a Content-Type header (`multipart/form-data; boundary=…`, quoted or not).
pub fn boundary(content_type: &str) -> Option<String> {
    let lower = content_type.to_ascii_lowercase();
    if !lower.trim_start().starts_with("multipart/") {
        return None;
    }
    let i = lower.find("boundary=")?;
    let raw = content_type[i + 9..].split(';').next()?.trim().trim_matches('"');
    (!raw.is_empty() && raw.len() <= 200).then(|| raw.to_owned())
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || from > hay.len() {
        return None;
    }
    hay[from..].windows(needle.len()).position(|w| w == needle).map(|p| p + from)
}

/// The `name="…"` of a part's Content-Disposition, and whether it is a file.
fn disposition(headers: &str) -> Option<(String, bool)> {
    let line = headers.lines().find(|l| l.to_ascii_lowercase().starts_with("content-disposition"))?;
    let lower = line.to_ascii_lowercase();
    let i = lower.find("name=")?;
    // `name=` may also match inside `filename=`: take the first that is not preceded by "file".
    let i = if i >= 4 && &lower[i - 4..i] == "file" { lower[i + 5..].find("name=").map(|j| i + 5 + j)? } else { i };
    let rest = &line[i + 5..];
    let name = if let Some(r) = rest.strip_prefix('"') { r.split('"').next()? } else { rest.split(';').next()?.trim() };
    Some((name.chars().take(64).collect(), lower.contains("filename=")))
}

/// Text fields of a multipart body, in order.
pub fn fields(body: &[u8], boundary: &str) -> Vec<(String, String)> {
    let delim = format!("--{boundary}");
    let delim = delim.as_bytes();
    let mut out = Vec::new();
    let Some(mut pos) = find(body, delim, 0) else { return out };
    loop {
        pos += delim.len();
        if body.get(pos..pos + 2) == Some(b"--") {
            break; // closing delimiter
        }
        let Some(head_end) = find(body, b"\r\n\r\n", pos) else { break };
        let headers = String::from_utf8_lossy(&body[pos..head_end]);
        let value_start = head_end + 4;
        let Some(next) = find(body, delim, value_start) else { break };
        // The value ends before the CRLF that precedes the next delimiter.
        let mut value_end = next;
        if value_end >= value_start + 2 && &body[value_end - 2..value_end] == b"\r\n" {
            value_end -= 2;
        }
        if let Some((name, is_file)) = disposition(&headers) {
            if !is_file && value_end - value_start <= MAX_VALUE {
                out.push((name, String::from_utf8_lossy(&body[value_start..value_end]).into_owned()));
                if out.len() >= MAX_FIELDS {
                    break;
                }
            }
        }
        pos = next;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = "--XyZ\r\nContent-Disposition: form-data; name=\"device_name\"\r\n\r\nIVS\r\n\
        --XyZ\r\nContent-Disposition: form-data; name=\"pass_wd\"\r\n\r\na\r\nb\r\n\
        --XyZ\r\nContent-Disposition: form-data; name=\"pic\"; filename=\"a.jpg\"\r\nContent-Type: image/jpeg\r\n\r\nJPEG\r\n\
        --XyZ\r\nContent-Disposition: form-data; name=serialno\r\n\r\nabc-123\r\n--XyZ--\r\n";

    #[test]
    fn reads_text_fields_and_skips_files() {
        assert_eq!(boundary("multipart/form-data; boundary=\"XyZ\"").as_deref(), Some("XyZ"));
        assert_eq!(boundary("Multipart/Form-Data;boundary=XyZ; charset=utf-8").as_deref(), Some("XyZ"));
        assert_eq!(boundary("application/json"), None);
        let f = fields(BODY.as_bytes(), "XyZ");
        assert_eq!(
            f,
            vec![("device_name".into(), "IVS".into()), ("pass_wd".into(), "a\r\nb".into()), ("serialno".into(), "abc-123".into())]
        );
    }

    #[test]
    fn truncated_anywhere_never_panics() {
        let b = BODY.as_bytes();
        for cut in 0..b.len() {
            let _ = fields(&b[..cut], "XyZ");
        }
        assert!(fields(b"garbage", "XyZ").is_empty());
        assert!(fields(b"--", "").is_empty());
    }
}
