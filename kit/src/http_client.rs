//! A small HTTP/1.1 client for the cluster's own JSON calls (sip-server → stream-server, the
//! simulator → a node): one request per connection, bounded in time and size. The response
//! parser is sans-I/O and fuzzed (`fuzz_targets/http_response.rs`).

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest response body read.
pub const MAX_RESPONSE: usize = 4 << 20;

#[derive(Debug, thiserror::Error)]
pub enum HttpClientError {
    #[error("bad url {0:?} (want http://host:port/path)")]
    BadUrl(String),
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    #[error("{0}: no answer within {1:?}")]
    Timeout(String, Duration),
    #[error("malformed response: {0}")]
    Malformed(&'static str),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    /// Header fields as received (name, value), in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// One request of [`send`]: any method, extra header fields, any body.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub method: &'a str,
    pub url: &'a str,
    /// Extra header fields (e.g. `Authorization`).
    pub headers: &'a [(&'a str, &'a str)],
    /// Sent with the body (and for POST/PUT/PATCH even when it is empty).
    pub content_type: &'a str,
    pub body: &'a [u8],
    pub timeout: Duration,
}

impl HttpResponse {
    /// The first header field called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The `message` of one of our JSON errors, else the body as text (shortened).
    pub fn error_message(&self) -> String {
        self.json()
            .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
            .unwrap_or_else(|| String::from_utf8_lossy(&self.body).chars().take(200).collect())
    }
}

/// Splits `http://host:port/path` into (host:port, /path).
pub fn split_url(url: &str) -> Result<(&str, &str), HttpClientError> {
    let rest = url.strip_prefix("http://").ok_or_else(|| HttpClientError::BadUrl(url.to_owned()))?;
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(HttpClientError::BadUrl(url.to_owned()));
    }
    Ok((host, path))
}

/// Sends one request (`body` is JSON) and reads the whole answer.
pub async fn request(
    method: &str,
    url: &str,
    bearer: Option<&str>,
    body: Option<&str>,
    timeout: Duration,
) -> Result<HttpResponse, HttpClientError> {
    let auth = bearer.filter(|t| !t.is_empty()).map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
    send(&Request { method, url, headers: &headers, content_type: "application/json", body: body.unwrap_or("").as_bytes(), timeout }).await
}

/// Sends one request and reads the whole answer (one connection, `Connection: close`).
pub async fn send(req: &Request<'_>) -> Result<HttpResponse, HttpClientError> {
    let (host, path) = split_url(req.url)?;
    let what = format!("{} {}", req.method, req.url);
    let work = async {
        let mut s = TcpStream::connect(host).await.map_err(|e| HttpClientError::Io(what.clone(), e))?;
        let _ = s.set_nodelay(true);
        let mut head = format!("{} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nAccept: */*\r\n", req.method);
        for (n, v) in req.headers {
            head.push_str(&format!("{n}: {v}\r\n"));
        }
        if !req.body.is_empty() || matches!(req.method, "POST" | "PUT" | "PATCH") {
            head.push_str(&format!("Content-Type: {}\r\nContent-Length: {}\r\n", req.content_type, req.body.len()));
        }
        head.push_str("\r\n");
        let mut out = head.into_bytes();
        out.extend_from_slice(req.body);
        s.write_all(&out).await.map_err(|e| HttpClientError::Io(what.clone(), e))?;
        let mut buf = Vec::with_capacity(4096);
        let mut chunk = [0u8; 8192];
        loop {
            let n = s.read(&mut chunk).await.map_err(|e| HttpClientError::Io(what.clone(), e))?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
            if buf.len() > MAX_RESPONSE + 64 * 1024 {
                return Err(HttpClientError::Malformed("response too large"));
            }
            // A complete Content-Length answer ends here even if the peer keeps the socket open.
            if let Ok(Some(r)) = parse_response(&buf, false) {
                return Ok(r);
            }
        }
        parse_response(&buf, true)?.ok_or(HttpClientError::Malformed("truncated response"))
    };
    tokio::time::timeout(req.timeout, work).await.map_err(|_| HttpClientError::Timeout(what.clone(), req.timeout))?
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Parses a response read so far: `Ok(None)` when more bytes are needed for a declared length
/// (or a chunked body); a body with neither runs to the close (`eof`).
pub fn parse_response(data: &[u8], eof: bool) -> Result<Option<HttpResponse>, HttpClientError> {
    let Some(end) = find(data, b"\r\n\r\n") else {
        return if data.len() > 64 * 1024 { Err(HttpClientError::Malformed("header too large")) } else { Ok(None) };
    };
    let head = std::str::from_utf8(&data[..end]).map_err(|_| HttpClientError::Malformed("header is not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let mut parts = status_line.splitn(3, ' ');
    let (Some(version), Some(code)) = (parts.next(), parts.next()) else {
        return Err(HttpClientError::Malformed("status line"));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(HttpClientError::Malformed("status line"));
    }
    let status: u16 = code.parse().map_err(|_| HttpClientError::Malformed("status code"))?;
    if !(100..600).contains(&status) {
        return Err(HttpClientError::Malformed("status code"));
    }
    let mut length = None;
    let mut chunked = false;
    let mut headers = Vec::new();
    for line in lines {
        let Some((n, v)) = line.split_once(':') else { continue };
        let (n, v) = (n.trim(), v.trim());
        if headers.len() < 100 {
            headers.push((n.to_owned(), v.to_owned()));
        }
        if n.eq_ignore_ascii_case("content-length") {
            let l: usize = v.parse().map_err(|_| HttpClientError::Malformed("Content-Length"))?;
            if l > MAX_RESPONSE {
                return Err(HttpClientError::Malformed("response too large"));
            }
            length = Some(l);
        } else if n.eq_ignore_ascii_case("transfer-encoding") && v.to_ascii_lowercase().contains("chunked") {
            chunked = true;
        }
    }
    let rest = &data[end + 4..];
    if chunked {
        return Ok(dechunk(rest)?.map(|body| HttpResponse { status, headers, body }));
    }
    match length {
        Some(l) if rest.len() < l => Ok(None),
        Some(l) => Ok(Some(HttpResponse { status, headers, body: rest[..l].to_vec() })),
        None if status == 204 || status == 304 => Ok(Some(HttpResponse { status, headers, body: Vec::new() })),
        // Without a length the body runs to the close: only the caller knows when that is.
        None if eof => Ok(Some(HttpResponse { status, headers, body: rest.to_vec() })),
        None => Ok(None),
    }
}

/// A chunked body (`media::chunked`, which the MJPEG pull reads streams with too): `Ok(None)`
/// until the last chunk has arrived.
fn dechunk(data: &[u8]) -> Result<Option<Vec<u8>>, HttpClientError> {
    let mut d = media::chunked::Dechunker::new();
    let mut body = Vec::new();
    let mut too_large = false;
    let read = d.push(data, &mut |b| {
        too_large |= body.len() + b.len() > MAX_RESPONSE;
        if !too_large {
            body.extend_from_slice(b);
        }
    });
    match read {
        Err(_) => Err(HttpClientError::Malformed("chunk size")),
        Ok(()) if too_large => Err(HttpClientError::Malformed("response too large")),
        Ok(()) if d.last_chunk_read() => Ok(Some(body)),
        Ok(()) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lengths_chunks_and_partials() {
        let r = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 7\r\n\r\n{\"a\":1}";
        for cut in 0..r.len() {
            assert_eq!(parse_response(&r[..cut], false).unwrap(), None, "cut {cut}");
        }
        let got = parse_response(r, false).unwrap().unwrap();
        assert_eq!((got.status, got.json().unwrap()["a"].as_i64()), (200, Some(1)));
        let c = b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"me\r\n10\r\nssage\":\"gone\"}  \r\n0\r\n\r\n";
        for cut in 0..c.len() - 2 {
            assert_eq!(parse_response(&c[..cut], false).unwrap(), None, "cut {cut}");
        }
        let got = parse_response(c, false).unwrap().unwrap();
        assert_eq!((got.status, got.error_message()), (404, "gone".to_string()));
        assert_eq!(parse_response(b"HTTP/1.1 204 No Content\r\n\r\n", false).unwrap().unwrap().body, b"");
    }

    #[test]
    fn refuses_garbage() {
        assert!(parse_response(b"SIP/2.0 200 OK\r\n\r\n", false).is_err());
        assert!(parse_response(b"HTTP/1.1 abc OK\r\n\r\n", false).is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n", false).is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", false).is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n", false).is_err());
        assert!(split_url("ftp://x").is_err());
        assert_eq!(split_url("http://127.0.0.1:80").unwrap(), ("127.0.0.1:80", "/"));
    }
}
