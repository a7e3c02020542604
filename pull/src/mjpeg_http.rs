//! MJPEG over HTTP, as network cameras, mjpg-streamer, ffmpeg's `mpjpeg` and GStreamer's
//! `multipartmux` serve it: one `GET`, answered by a body that never ends, a JPEG per part of
//! a `multipart/x-mixed-replace` (or `multipart/mixed`). The body may be chunked; the server
//! may ask for basic or digest credentials. This is the I/O: connecting, the request, the
//! challenge, the response head (bounded by `max_header`); the body is read by
//! [`crate::mjpeg_body::MjpegBody`], which says in [`MjpegStats::last_problem`] what was
//! wrong in a stream that goes on.

use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::http_auth::HttpAuth;
pub use crate::mjpeg_body::MjpegStats;
use crate::mjpeg_body::{BodyError, MjpegBody};

#[derive(Debug, Clone, Copy)]
pub struct MjpegOptions {
    /// For connecting and for the response head.
    pub timeout: Duration,
    /// Largest picture taken; larger parts are skipped.
    pub max_picture: usize,
    /// Longest response head, and longest part header block.
    pub max_header: usize,
}

impl Default for MjpegOptions {
    fn default() -> Self {
        Self { timeout: Duration::from_secs(10), max_picture: 8 << 20, max_header: 16 << 10 }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MjpegError {
    #[error("bad URL: {0}")]
    BadUrl(String),
    #[error("camera unreachable: {0}")]
    Unreachable(String),
    #[error("login refused: {0}")]
    Auth(String),
    #[error("the camera answered HTTP {0} {1}")]
    Status(u16, String),
    #[error("the response head is longer than {0} bytes")]
    HeaderTooLong(usize),
    #[error("a malformed response: {0}")]
    Malformed(String),
    #[error("not MJPEG: Content-Type {0:?}")]
    NotMjpeg(String),
    #[error("no picture for {0:?}")]
    Stalled(Duration),
    #[error("the camera ended the stream")]
    Ended,
}

impl From<BodyError> for MjpegError {
    fn from(e: BodyError) -> Self {
        match e {
            BodyError::NotMjpeg(t) => MjpegError::NotMjpeg(t),
            BodyError::Chunked(c) => MjpegError::Malformed(format!("chunked body: {c}")),
            BodyError::Ended => MjpegError::Ended,
        }
    }
}

/// What the response said about the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MjpegInfo {
    pub content_type: String,
    /// `None`: read by the JPEG markers.
    pub boundary: Option<String>,
    pub chunked: bool,
}

/// Where to connect and what to ask.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    host: String,
    port: u16,
    /// The request target: path and query.
    path: String,
    user: String,
    password: String,
}

fn target(url: &str, user: &str, password: &str) -> Result<Target, MjpegError> {
    let u = url::Url::parse(url).map_err(|e| MjpegError::BadUrl(format!("{url:?}: {e}")))?;
    if u.scheme() != "http" {
        return Err(MjpegError::BadUrl(format!("{}: only http:// is supported", u.scheme())));
    }
    let host = match u.host() {
        Some(url::Host::Ipv6(a)) => a.to_string(),
        Some(h) => h.to_string(),
        None => return Err(MjpegError::BadUrl(format!("{url:?}: no host"))),
    };
    let (user, password) = crate::http_auth::credentials(&u, user, password);
    let path = match u.query() {
        Some(q) => format!("{}?{q}", u.path()),
        None => u.path().to_owned(),
    };
    Ok(Target { host, port: u.port().unwrap_or(80), path, user, password })
}

/// A response head, owned.
struct Head {
    status: u16,
    reason: String,
    headers: Vec<(String, String)>,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Sends the GET and reads the response head; returns the connection and the body bytes read
/// with the head.
async fn request(t: &Target, authorization: Option<&str>, max_header: usize) -> Result<(TcpStream, Head, Vec<u8>), MjpegError> {
    let host = if t.host.contains(':') { format!("[{}]", t.host) } else { t.host.clone() };
    let mut stream =
        TcpStream::connect((t.host.as_str(), t.port)).await.map_err(|e| MjpegError::Unreachable(format!("{host}:{}: {e}", t.port)))?;
    let _ = stream.set_nodelay(true);
    let mut req = format!(
        "GET {} HTTP/1.1\r\nHost: {host}:{}\r\nUser-Agent: gbcluster/{}\r\nAccept: multipart/x-mixed-replace, multipart/mixed, image/jpeg, */*\r\nConnection: close\r\n",
        t.path,
        t.port,
        env!("CARGO_PKG_VERSION")
    );
    if let Some(a) = authorization {
        req.push_str(&format!("Authorization: {a}\r\n"));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).await.map_err(|e| MjpegError::Unreachable(e.to_string()))?;
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).await.map_err(|e| MjpegError::Unreachable(e.to_string()))?;
        if n == 0 {
            return Err(MjpegError::Malformed(format!("the connection closed after {} bytes of the response head", buf.len())));
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut r = httparse::Response::new(&mut headers);
        match r.parse(&buf) {
            Ok(httparse::Status::Complete(end)) => {
                let head = Head {
                    status: r.code.unwrap_or(0),
                    reason: r.reason.unwrap_or("").chars().take(100).collect(),
                    headers: r.headers.iter().map(|h| (h.name.to_owned(), String::from_utf8_lossy(h.value).into_owned())).collect(),
                };
                let rest = buf[end..].to_vec();
                return Ok((stream, head, rest));
            }
            Ok(httparse::Status::Partial) if buf.len() > max_header => return Err(MjpegError::HeaderTooLong(max_header)),
            Ok(httparse::Status::Partial) => {}
            Err(httparse::Error::TooManyHeaders) => return Err(MjpegError::Malformed("the response head has more than 64 headers".into())),
            Err(e) => return Err(MjpegError::Malformed(format!("response head: {e}"))),
        }
    }
}

/// One MJPEG-over-HTTP stream that is playing.
pub struct MjpegHttp {
    stream: TcpStream,
    body: MjpegBody,
    buf: Box<[u8]>,
}

impl MjpegHttp {
    /// Connects to `url` (`http://[user:password@]host[:port]/path`; `user`, when not empty,
    /// wins over the URL's) and reads the response head, answering one challenge.
    pub async fn open(url: &str, user: &str, password: &str, opts: MjpegOptions) -> Result<(Self, MjpegInfo), MjpegError> {
        let t = target(url, user, password)?;
        let auth = (!t.user.is_empty()).then(|| HttpAuth::new(&t.user, &t.password));
        let mut authorization: Option<String> = None;
        let (stream, head, rest) = loop {
            let sent = authorization.as_deref();
            let (stream, head, rest) = tokio::time::timeout(opts.timeout, request(&t, sent, opts.max_header))
                .await
                .map_err(|_| MjpegError::Unreachable(format!("no answer within {:?}", opts.timeout)))??;
            match (head.status, &auth, sent) {
                (401, Some(a), None) => {
                    let challenges =
                        head.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case("www-authenticate")).map(|(_, v)| v.as_str());
                    authorization = Some(a.answer(challenges, "GET", &t.path).map_err(|e| MjpegError::Auth(e.to_string()))?);
                }
                (401, None, _) => return Err(MjpegError::Auth("the camera asks for credentials and none were given".into())),
                (401 | 403, Some(a), _) => {
                    return Err(MjpegError::Auth(format!("the camera refused user {:?} ({})", a.user(), head.status)))
                }
                (200..=299, _, _) => break (stream, head, rest),
                (s, _, _) => return Err(MjpegError::Status(s, head.reason)),
            }
        };
        let content_type = head.header("content-type").unwrap_or("").to_owned();
        let chunked = head.header("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
        let (body, boundary) = MjpegBody::new(&content_type, chunked, opts.max_picture, opts.max_header).map_err(MjpegError::from)?;
        let mut me = Self { stream, body, buf: vec![0u8; 64 << 10].into_boxed_slice() };
        me.body.push(&rest)?;
        Ok((me, MjpegInfo { content_type, boundary, chunked }))
    }

    pub fn stats(&self) -> &MjpegStats {
        self.body.stats()
    }

    /// The next whole JPEG; an error if none comes within `stall` (bytes that make no picture
    /// do not count) or the stream ends. Cancel-safe: bytes read are kept until their pictures
    /// are taken.
    pub async fn next(&mut self, stall: Duration) -> Result<Bytes, MjpegError> {
        tokio::time::timeout(stall, self.next_picture()).await.map_err(|_| MjpegError::Stalled(stall))?
    }

    async fn next_picture(&mut self) -> Result<Bytes, MjpegError> {
        loop {
            if let Some(p) = self.body.picture() {
                return Ok(p);
            }
            let n = self.stream.read(&mut self.buf).await.map_err(|e| MjpegError::Unreachable(e.to_string()))?;
            if n == 0 {
                return Err(MjpegError::Ended);
            }
            self.body.push(&self.buf[..n])?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_give_the_target_and_the_credentials() {
        let t = target("http://ad%40min:p%3Aw@127.0.0.1:8080/video.cgi?res=hi", "", "").unwrap();
        assert_eq!(
            t,
            Target {
                host: "127.0.0.1".into(),
                port: 8080,
                path: "/video.cgi?res=hi".into(),
                user: "ad@min".into(),
                password: "p:w".into()
            }
        );
        let t = target("http://cam/mjpg", "root", "secret").unwrap();
        assert_eq!((t.port, t.user.as_str(), t.password.as_str()), (80, "root", "secret"));
        assert!(matches!(target("https://cam/", "", ""), Err(MjpegError::BadUrl(_))));
        assert!(matches!(target("not a url", "", ""), Err(MjpegError::BadUrl(_))));
    }
}
