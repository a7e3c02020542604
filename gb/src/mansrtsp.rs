//! MANSRTSP (GB/T 28181 annex B): the RTSP-like playback control carried in INFO bodies
//! (`Content-Type: Application/MANSRTSP`) of a playback dialog — `PLAY` with `Scale:` (speed)
//! and/or `Range: npt=` (seek, `now` to resume), `PAUSE`, `TEARDOWN`. Sans-I/O; never panics;
//! refuses anything longer than `MAX_BODY`.

pub const CONTENT_TYPE: &str = "Application/MANSRTSP";
/// A control body is a few lines; more is not one.
pub const MAX_BODY: usize = 2048;

/// Where a `PLAY` starts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum From {
    /// `npt=now-`: resume where it paused.
    Now,
    /// `npt=<seconds>-`: seconds from the playback's start.
    Secs(f64),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Command {
    Play { range: Option<From>, scale: Option<f64> },
    Pause,
    Teardown,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MansrtspError {
    #[error("body of {0} bytes exceeds {MAX_BODY}")]
    TooLarge(usize),
    #[error("not text")]
    NotText,
    #[error("unknown method {0:?}")]
    Method(String),
    #[error("unreadable {0} header")]
    Header(&'static str),
}

/// A control message: the command and its `CSeq`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Control {
    pub command: Command,
    pub cseq: u32,
}

fn header<'a>(lines: &[&'a str], name: &str) -> Option<&'a str> {
    lines.iter().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Reads `PLAY RTSP/1.0` / `PAUSE …` / `TEARDOWN …` with its headers.
pub fn parse(body: &[u8]) -> Result<Control, MansrtspError> {
    if body.len() > MAX_BODY {
        return Err(MansrtspError::TooLarge(body.len()));
    }
    let text = std::str::from_utf8(body).map_err(|_| MansrtspError::NotText)?;
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).take(32).collect();
    let method = lines.first().and_then(|l| l.split_whitespace().next()).unwrap_or_default();
    let cseq = header(&lines, "CSeq").and_then(|v| v.parse().ok()).unwrap_or(0);
    let command = match method.to_ascii_uppercase().as_str() {
        "PAUSE" => Command::Pause,
        "TEARDOWN" => Command::Teardown,
        "PLAY" => {
            let scale = match header(&lines, "Scale") {
                None => None,
                Some(v) => Some(v.parse::<f64>().ok().filter(|s| s.is_finite() && *s > 0.0).ok_or(MansrtspError::Header("Scale"))?),
            };
            let range = match header(&lines, "Range") {
                None => None,
                Some(v) => {
                    let npt = v.strip_prefix("npt=").ok_or(MansrtspError::Header("Range"))?;
                    let from = npt.split('-').next().unwrap_or_default().trim();
                    Some(if from.eq_ignore_ascii_case("now") || from.is_empty() {
                        From::Now
                    } else {
                        From::Secs(from.parse::<f64>().ok().filter(|s| s.is_finite() && *s >= 0.0).ok_or(MansrtspError::Header("Range"))?)
                    })
                }
            };
            Command::Play { range, scale }
        }
        other => return Err(MansrtspError::Method(other.chars().take(32).collect())),
    };
    Ok(Control { command, cseq })
}

/// The body of a control message.
pub fn build(c: &Control) -> Vec<u8> {
    let mut s = match c.command {
        Command::Play { .. } => format!("PLAY RTSP/1.0\r\nCSeq: {}\r\n", c.cseq),
        Command::Pause => format!("PAUSE RTSP/1.0\r\nCSeq: {}\r\nPauseTime: now\r\n", c.cseq),
        Command::Teardown => format!("TEARDOWN RTSP/1.0\r\nCSeq: {}\r\n", c.cseq),
    };
    if let Command::Play { range, scale } = c.command {
        if let Some(scale) = scale {
            s.push_str(&format!("Scale: {scale}\r\n"));
        }
        match range {
            Some(From::Now) => s.push_str("Range: npt=now-\r\n"),
            Some(From::Secs(t)) => s.push_str(&format!("Range: npt={t}-\r\n")),
            None => {}
        }
    }
    s.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_platforms_send_reads_back() {
        for command in [
            Command::Pause,
            Command::Play { range: Some(From::Now), scale: None },
            Command::Play { range: None, scale: Some(2.0) },
            Command::Play { range: Some(From::Secs(125.5)), scale: None },
            Command::Play { range: Some(From::Secs(0.0)), scale: Some(0.25) },
            Command::Teardown,
        ] {
            let c = Control { command, cseq: 7 };
            assert_eq!(parse(&build(&c)), Ok(c), "{}", String::from_utf8_lossy(&build(&c)));
        }
        assert_eq!(
            String::from_utf8(build(&Control { command: Command::Play { range: None, scale: Some(4.0) }, cseq: 3 })).unwrap(),
            "PLAY RTSP/1.0\r\nCSeq: 3\r\nScale: 4\r\n"
        );
    }

    #[test]
    fn device_spellings_and_garbage() {
        // Lower-case names, a range with an end, LF line ends.
        let c = parse(b"play RTSP/1.0\ncseq: 4\nrange: npt=30-60\n").unwrap();
        assert_eq!(c, Control { command: Command::Play { range: Some(From::Secs(30.0)), scale: None }, cseq: 4 });
        assert_eq!(parse(b"PLAY RTSP/1.0\r\nRange: npt=-\r\n").unwrap().command, Command::Play { range: Some(From::Now), scale: None });
        assert_eq!(parse(b"PLAY RTSP/1.0\r\nScale: -1\r\n"), Err(MansrtspError::Header("Scale")));
        assert_eq!(parse(b"PLAY RTSP/1.0\r\nScale: NaN\r\n"), Err(MansrtspError::Header("Scale")));
        assert_eq!(parse(b"PLAY RTSP/1.0\r\nRange: clock=x\r\n"), Err(MansrtspError::Header("Range")));
        assert_eq!(parse(b"RECORD RTSP/1.0\r\n"), Err(MansrtspError::Method("RECORD".into())));
        assert_eq!(parse(b""), Err(MansrtspError::Method(String::new())));
        assert_eq!(parse(&[0xff, 0xfe]), Err(MansrtspError::NotText));
        assert_eq!(parse(&vec![b'a'; MAX_BODY + 1]), Err(MansrtspError::TooLarge(MAX_BODY + 1)));
    }
}
