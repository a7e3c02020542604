//! MJPEG over HTTP, as network cameras, mjpg-streamer, ffmpeg's `mpjpeg` and GStreamer's
//! `multipartmux` serve it: one `GET`, answered by a body that never ends, a JPEG per part of
//! a `multipart/x-mixed-replace` (or `multipart/mixed`). The body may be chunked; the server
//! may ask for basic or digest credentials. Parts are read by `media::multipart` (every
//! boundary and `Content-Length` quirk); a multipart type without a boundary is read by the
//! JPEG markers instead.
//!
//! Bad input never ends the process nor grows memory: the response head is bounded
//! (`max_header`), a part over `max_picture` is skipped, garbage between parts is skipped and
//! counted, a part that is not a whole JPEG is dropped. What was wrong is kept in words in
//! [`MjpegStats::last_problem`] for the source's status.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use media::chunked::Dechunker;
use media::jpeg::JpegSplitter;
use media::multipart::{boundary_of, is_whole_jpeg, MultipartReader, PartError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::http_auth::HttpAuth;

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

/// What the stream has carried, and what was wrong with it while it went on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MjpegStats {
    pub pictures: u64,
    pub bytes: u64,
    /// Bytes outside any part (before the first, between parts).
    pub garbage_bytes: u64,
    /// Parts over `max_picture`, skipped.
    pub oversize: u64,
    /// Part header blocks over `max_header`, dropped.
    pub long_headers: u64,
    /// Parts that were not a whole JPEG (truncated, another type), dropped.
    pub not_jpeg: u64,
    pub last_problem: Option<String>,
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
    let decode = |s: &str| url::form_urlencoded::parse(format!("x={s}").as_bytes()).next().map(|(_, v)| v.into_owned()).unwrap_or_default();
    // Credentials given apart win over those in the URL.
    let (user, password) = if user.is_empty() {
        (decode(u.username()), u.password().map(decode).unwrap_or_default())
    } else {
        (user.to_owned(), password.to_owned())
    };
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

enum Framing {
    Multipart(MultipartReader),
    Markers(JpegSplitter),
    /// The type says nothing (`application/octet-stream`, none): the first line of the body
    /// tells — a delimiter line names the boundary, else pictures are found by their markers.
    Sniff(Vec<u8>),
}

/// How much of a body is looked at to tell its framing.
const SNIFF: usize = 512;

/// The framing the start of a body shows: `Some(boundary)` when its first line is a delimiter.
fn sniff(head: &[u8]) -> Option<String> {
    let start = head.iter().position(|b| !b.is_ascii_whitespace())?;
    let line = &head[start..];
    let line = &line[..line.iter().position(|&b| b == b'\n')?];
    let text = std::str::from_utf8(line.strip_prefix(b"--")?).ok()?.trim();
    (!text.is_empty() && text.len() <= 200 && text.bytes().all(|b| b.is_ascii_graphic())).then(|| text.to_owned())
}

/// Pictures out of body bytes, with the stream's problems counted.
struct Pictures {
    framing: Framing,
    ready: VecDeque<Bytes>,
    stats: MjpegStats,
    max_picture: usize,
    max_header: usize,
    /// The multipart reader's count of bytes outside parts, as last seen.
    between_parts: u64,
}

/// Where a JPEG followed by other bytes ends (after its last end marker), if it starts as one.
fn trimmed_jpeg(body: &[u8]) -> Option<usize> {
    if !body.starts_with(&[0xff, 0xd8]) {
        return None;
    }
    body.windows(2).rposition(|w| w == [0xff, 0xd9]).map(|at| at + 2).filter(|end| *end >= 4)
}

impl Pictures {
    fn push(&mut self, data: &[u8]) {
        if let Framing::Sniff(head) = &mut self.framing {
            head.extend_from_slice(data);
            let has_line = head.contains(&b'\n');
            if !has_line && head.len() < SNIFF {
                return;
            }
            let head = std::mem::take(head);
            self.framing = match sniff(&head) {
                Some(b) => Framing::Multipart(MultipartReader::new(&b, self.max_picture, self.max_header)),
                None => {
                    self.stats.last_problem =
                        Some("no boundary: neither the Content-Type nor the body's first line names one; pictures are found by their JPEG markers".into());
                    Framing::Markers(JpegSplitter::new(self.max_picture))
                }
            };
            return self.push(&head);
        }
        match &mut self.framing {
            Framing::Sniff(_) => {}
            Framing::Multipart(r) => {
                for part in r.push(data) {
                    match part {
                        Ok(p) if is_whole_jpeg(&p.body) => {
                            self.stats.pictures += 1;
                            self.stats.bytes += p.body.len() as u64;
                            self.ready.push_back(p.body);
                        }
                        // A part without length runs to the next delimiter: what a camera left
                        // after the picture's end marker is not the picture.
                        Ok(p) if p.header("content-length").is_none() && trimmed_jpeg(&p.body).is_some() => {
                            let end = trimmed_jpeg(&p.body).unwrap_or(p.body.len());
                            self.stats.garbage_bytes += (p.body.len() - end) as u64;
                            self.stats.last_problem = Some(format!("{} bytes after a picture's end, skipped", p.body.len() - end));
                            self.stats.pictures += 1;
                            self.stats.bytes += end as u64;
                            self.ready.push_back(p.body.slice(..end));
                        }
                        Ok(p) => {
                            self.stats.not_jpeg += 1;
                            self.stats.last_problem = Some(format!(
                                "a part of {} bytes that is not a whole JPEG (truncated, or another type): dropped",
                                p.body.len()
                            ));
                        }
                        Err(e @ PartError::TooLarge(_)) => {
                            self.stats.oversize += 1;
                            self.stats.last_problem = Some(format!("{e} of {} bytes: skipped", self.max_picture));
                        }
                        Err(e @ PartError::HeaderTooLong(_)) => {
                            self.stats.long_headers += 1;
                            self.stats.last_problem = Some(format!("{e}: dropped"));
                        }
                    }
                }
                if r.garbage > self.between_parts {
                    self.stats.garbage_bytes += r.garbage - self.between_parts;
                    self.between_parts = r.garbage;
                    self.stats.last_problem = Some(format!("{} bytes outside any part, skipped", r.garbage));
                }
            }
            Framing::Markers(s) => {
                for jpeg in s.push(data) {
                    self.stats.pictures += 1;
                    self.stats.bytes += jpeg.len() as u64;
                    self.ready.push_back(jpeg);
                }
                if s.oversize > self.stats.oversize {
                    self.stats.oversize = s.oversize;
                    self.stats.last_problem = Some(format!("a picture over the limit of {} bytes: skipped", self.max_picture));
                }
            }
        }
    }
}

/// One MJPEG-over-HTTP stream that is playing.
pub struct MjpegHttp {
    stream: TcpStream,
    chunked: Option<Dechunker>,
    pictures: Pictures,
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
        let boundary = boundary_of(&content_type);
        let lower = content_type.to_ascii_lowercase();
        let mut stats = MjpegStats::default();
        let framing = match &boundary {
            Some(b) => Framing::Multipart(MultipartReader::new(b, opts.max_picture, opts.max_header)),
            None if lower.starts_with("multipart/") => {
                stats.last_problem = Some(format!("Content-Type {content_type:?} names no boundary: it is read from the body"));
                Framing::Sniff(Vec::new())
            }
            None if lower.starts_with("image/jpeg") => Framing::Markers(JpegSplitter::new(opts.max_picture)),
            None if lower.is_empty() || lower.starts_with("application/octet-stream") => Framing::Sniff(Vec::new()),
            None => return Err(MjpegError::NotMjpeg(content_type.chars().take(100).collect())),
        };
        let mut me = Self {
            stream,
            chunked: chunked.then(Dechunker::new),
            pictures: Pictures {
                framing,
                ready: VecDeque::new(),
                stats,
                max_picture: opts.max_picture,
                max_header: opts.max_header,
                between_parts: 0,
            },
            buf: vec![0u8; 64 << 10].into_boxed_slice(),
        };
        me.feed_bytes(&rest)?;
        Ok((me, MjpegInfo { content_type, boundary, chunked }))
    }

    pub fn stats(&self) -> &MjpegStats {
        &self.pictures.stats
    }

    /// The next whole JPEG; an error if none comes within `stall` (bytes that make no picture
    /// do not count) or the stream ends. Cancel-safe: bytes read are kept until their pictures
    /// are taken.
    pub async fn next(&mut self, stall: Duration) -> Result<Bytes, MjpegError> {
        tokio::time::timeout(stall, self.next_picture()).await.map_err(|_| MjpegError::Stalled(stall))?
    }

    async fn next_picture(&mut self) -> Result<Bytes, MjpegError> {
        loop {
            if let Some(p) = self.pictures.ready.pop_front() {
                return Ok(p);
            }
            let n = self.stream.read(&mut self.buf).await.map_err(|e| MjpegError::Unreachable(e.to_string()))?;
            if n == 0 {
                return Err(MjpegError::Ended);
            }
            let data = std::mem::take(&mut self.buf);
            let fed = self.feed_bytes(&data[..n]);
            self.buf = data;
            fed?;
        }
    }

    fn feed_bytes(&mut self, data: &[u8]) -> Result<(), MjpegError> {
        let pictures = &mut self.pictures;
        match &mut self.chunked {
            None => pictures.push(data),
            Some(d) => {
                d.push(data, &mut |b| pictures.push(b)).map_err(|e| MjpegError::Malformed(format!("chunked body: {e}")))?;
                if d.done() {
                    return Err(MjpegError::Ended);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_without_a_type_shows_its_boundary_in_its_first_line() {
        assert_eq!(sniff(b"--ffmpeg\r\nContent-type: image/jpeg\r\n"), Some("ffmpeg".into()));
        assert_eq!(sniff(b"\r\n--myboundary\nContent-Length: 3\n"), Some("myboundary".into()));
        assert_eq!(sniff(b"\xff\xd8\xff\xe0 no delimiter\n"), None);
        assert_eq!(sniff(b"--\r\n"), None);
        assert_eq!(sniff(b"--no line end yet"), None);
    }

    #[test]
    fn a_picture_followed_by_junk_in_its_part_is_cut_at_its_end() {
        assert_eq!(trimmed_jpeg(b"\xff\xd8abc\xff\xd9\r\njunk"), Some(7));
        assert_eq!(trimmed_jpeg(b"\xff\xd8abc"), None);
        assert_eq!(trimmed_jpeg(b"junk\xff\xd9"), None);
    }

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
