//! `multipart/x-mixed-replace` (and `multipart/mixed`) streams as network cameras and MJPEG
//! servers send them: a picture per part. Sans I/O: bytes in, parts out, memory bounded.
//!
//! What cameras do differently, all taken:
//! - the boundary in `Content-Type` with or without its leading `--`, quoted or not, and
//!   delimiter lines with the dashes or without them;
//! - parts with `Content-Length` (read exactly, whatever bytes the picture holds) or without
//!   (the body runs to the next delimiter line);
//! - extra part headers (mjpg-streamer's `X-Timestamp`), header lines ending in LF alone;
//! - garbage before the first delimiter and between parts (skipped and counted).
//!
//! Bounds: a part larger than `max_part` is skipped without being buffered (its length known)
//! or dropped when it passes the bound (its length unknown), a header block longer than
//! `max_header` is dropped; each is reported once as a `PartError` and reading goes on at the
//! next delimiter.

use bytes::{Buf, Bytes, BytesMut};

/// The boundary named in a `Content-Type` header (`multipart/x-mixed-replace; boundary=…`),
/// without leading dashes; `None` for another type or no boundary.
pub fn boundary_of(content_type: &str) -> Option<String> {
    let (kind, params) = content_type.split_once(';').unwrap_or((content_type, ""));
    if !kind.trim().to_ascii_lowercase().starts_with("multipart/") {
        return None;
    }
    params.split(';').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        if !k.trim().eq_ignore_ascii_case("boundary") {
            return None;
        }
        let v = v.trim().trim_matches('"').trim_start_matches("--");
        (!v.is_empty() && v.len() <= 200).then(|| v.to_owned())
    })
}

/// One part: its headers (names lower-cased) and its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl Part {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// What was wrong with a part that was not given out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PartError {
    #[error("a part of {0} bytes, over the limit")]
    TooLarge(u64),
    #[error("a part's headers longer than {0} bytes")]
    HeaderTooLong(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Looking for a delimiter line (before the first part, or after a part without length).
    Delimiter,
    /// Reading a part's header block.
    Headers,
    /// A body of known length.
    Body(usize),
    /// A body that runs to the next delimiter.
    Open,
    /// Skipping this many bytes of a part over the limit.
    Skip(u64),
}

#[derive(Debug)]
pub struct MultipartReader {
    /// The delimiter without dashes.
    boundary: Vec<u8>,
    state: State,
    buf: BytesMut,
    headers: Vec<(String, String)>,
    max_part: usize,
    max_header: usize,
    /// Bytes skipped outside any part (garbage before and between parts).
    pub garbage: u64,
    pub parts: u64,
    /// How far an open body has been searched for its delimiter (not searched again).
    scanned: usize,
}

/// Where the first delimiter line starts in `buf` at or after `from` (at the start of `buf` or
/// after a line end), and where the line after it starts; `None` if none is complete yet. The
/// line end before a delimiter belongs to it (RFC 2046), not to the body or garbage before it,
/// so the start given is before that line end.
fn find_delimiter(buf: &[u8], boundary: &[u8], from: usize) -> Option<(usize, usize)> {
    let mut at = from;
    while let Some(i) = find(&buf[at..], boundary).map(|i| at + i) {
        // The boundary, optionally after `--`, at a line start.
        let start = if i >= 2 && &buf[i - 2..i] == b"--" { i - 2 } else { i };
        let line_start = start == 0 || buf[start - 1] == b'\n';
        if line_start {
            let rest = &buf[i + boundary.len()..];
            let eol = rest.iter().position(|&b| b == b'\n')?;
            // Only `--` (the closing delimiter), spaces and CR may follow the boundary.
            if rest[..eol].iter().all(|&b| matches!(b, b'-' | b' ' | b'\t' | b'\r')) {
                let mut before = start;
                if before > 0 && buf[before - 1] == b'\n' {
                    before -= 1;
                    if before > 0 && buf[before - 1] == b'\r' {
                        before -= 1;
                    }
                }
                return Some((before, i + boundary.len() + eol + 1));
            }
        }
        at = i + 1;
    }
    None
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    let first = needle[0];
    let mut i = 0;
    while i + needle.len() <= hay.len() {
        match hay[i..=hay.len() - needle.len()].iter().position(|&b| b == first) {
            Some(p) => i += p,
            None => return None,
        }
        if &hay[i..i + needle.len()] == needle {
            return Some(i);
        }
        i += 1;
    }
    None
}

impl MultipartReader {
    pub fn new(boundary: &str, max_part: usize, max_header: usize) -> Self {
        Self {
            boundary: boundary.trim_start_matches("--").as_bytes().to_vec(),
            state: State::Delimiter,
            buf: BytesMut::new(),
            headers: Vec::new(),
            max_part: max_part.max(1),
            max_header: max_header.max(64),
            garbage: 0,
            parts: 0,
            scanned: 0,
        }
    }

    /// Bytes held now (bounded by about `max_part` + `max_header`).
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Takes more bytes of the stream; returns the parts (and the errors) they complete.
    pub fn push(&mut self, data: &[u8]) -> Vec<Result<Part, PartError>> {
        let mut out = Vec::new();
        let mut data = data;
        // Skipping a part over the limit costs no buffer.
        if let State::Skip(left) = self.state {
            let n = (data.len() as u64).min(left) as usize;
            data = &data[n..];
            self.state = if left > n as u64 { State::Skip(left - n as u64) } else { State::Delimiter };
        }
        self.buf.extend_from_slice(data);
        while self.step(&mut out) {}
        out
    }

    /// One step of the state machine; false when it needs more bytes.
    fn step(&mut self, out: &mut Vec<Result<Part, PartError>>) -> bool {
        match self.state {
            State::Skip(left) => {
                let n = (self.buf.len() as u64).min(left) as usize;
                self.buf.advance(n);
                self.state = if left > n as u64 { State::Skip(left - n as u64) } else { State::Delimiter };
                left <= n as u64
            }
            State::Delimiter => match find_delimiter(&self.buf, &self.boundary, 0) {
                Some((start, next)) => {
                    // Only what precedes the delimiter (and its line end) was garbage.
                    self.garbage += start as u64;
                    self.buf.advance(next);
                    self.headers.clear();
                    self.state = State::Headers;
                    true
                }
                None => {
                    // Keep what may be the start of a delimiter cut by the read.
                    let keep = self.boundary.len() + 4;
                    if self.buf.len() > keep + self.max_header {
                        let drop = self.buf.len() - keep;
                        self.garbage += drop as u64;
                        self.buf.advance(drop);
                    }
                    false
                }
            },
            State::Headers => self.read_headers(out),
            State::Body(len) => {
                if self.buf.len() < len {
                    return false;
                }
                let body = self.buf.split_to(len).freeze();
                self.emit(body, out);
                self.state = State::Delimiter;
                true
            }
            // Searched again only from where the last search could not have seen a whole line.
            State::Open => match find_delimiter(&self.buf, &self.boundary, self.scanned) {
                Some((end, _)) => {
                    let body = self.buf.split_to(end).freeze();
                    self.emit(body, out);
                    self.state = State::Delimiter;
                    self.scanned = 0;
                    true
                }
                None if self.buf.len() > self.max_part + self.boundary.len() + 4 => {
                    out.push(Err(PartError::TooLarge(self.buf.len() as u64)));
                    let keep = self.boundary.len() + 4;
                    let drop = self.buf.len() - keep;
                    self.buf.advance(drop);
                    self.state = State::Delimiter;
                    self.scanned = 0;
                    true
                }
                None => {
                    // A delimiter line may begin in the last line seen: search it again.
                    let last_line = self.buf.iter().rposition(|&b| b == b'\n').unwrap_or(0);
                    self.scanned = last_line.min(self.buf.len().saturating_sub(self.boundary.len() + 2));
                    false
                }
            },
        }
    }

    fn read_headers(&mut self, out: &mut Vec<Result<Part, PartError>>) -> bool {
        loop {
            let Some(eol) = self.buf.iter().position(|&b| b == b'\n') else {
                if self.buf.len() > self.max_header {
                    out.push(Err(PartError::HeaderTooLong(self.max_header)));
                    self.state = State::Delimiter;
                    return true;
                }
                return false;
            };
            let line = self.buf.split_to(eol + 1);
            let text = String::from_utf8_lossy(&line);
            let text = text.trim_end_matches(['\r', '\n']);
            if text.trim().is_empty() {
                // The blank line: the body follows.
                let len = self.headers.iter().find(|(n, _)| n == "content-length").and_then(|(_, v)| v.trim().parse::<u64>().ok());
                self.state = match len {
                    Some(n) if n > self.max_part as u64 => {
                        out.push(Err(PartError::TooLarge(n)));
                        State::Skip(n)
                    }
                    Some(n) => State::Body(n as usize),
                    None => State::Open,
                };
                return true;
            }
            let used: usize = self.headers.iter().map(|(n, v)| n.len() + v.len() + 4).sum::<usize>() + text.len();
            if used > self.max_header || self.headers.len() >= 64 {
                out.push(Err(PartError::HeaderTooLong(self.max_header)));
                self.state = State::Delimiter;
                return true;
            }
            if let Some((n, v)) = text.split_once(':') {
                self.headers.push((n.trim().to_ascii_lowercase(), v.trim().to_owned()));
            }
        }
    }

    fn emit(&mut self, body: Bytes, out: &mut Vec<Result<Part, PartError>>) {
        self.parts += 1;
        out.push(Ok(Part { headers: std::mem::take(&mut self.headers), body }));
    }
}

/// Whether `body` is a whole JPEG (start and end markers): a truncated one is not shown.
pub fn is_whole_jpeg(body: &[u8]) -> bool {
    body.len() >= 4 && body.starts_with(&[0xff, 0xd8]) && body.ends_with(&[0xff, 0xd9])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jpeg(fill: u8, n: usize) -> Vec<u8> {
        let mut j = vec![0xff, 0xd8];
        j.extend(std::iter::repeat_n(fill, n));
        j.extend([0xff, 0xd9]);
        j
    }

    fn bodies(r: &mut MultipartReader, stream: &[u8], piece: usize) -> (Vec<Vec<u8>>, Vec<PartError>) {
        let (mut ok, mut bad) = (Vec::new(), Vec::new());
        for c in stream.chunks(piece.max(1)) {
            for p in r.push(c) {
                match p {
                    Ok(p) => ok.push(p.body.to_vec()),
                    Err(e) => bad.push(e),
                }
            }
        }
        (ok, bad)
    }

    #[test]
    fn boundaries_read_as_cameras_write_them() {
        assert_eq!(boundary_of("multipart/x-mixed-replace; boundary=myboundary").as_deref(), Some("myboundary"));
        assert_eq!(boundary_of("multipart/x-mixed-replace;boundary=--myboundary").as_deref(), Some("myboundary"));
        assert_eq!(boundary_of("Multipart/Mixed; Boundary=\"ffserver\"").as_deref(), Some("ffserver"));
        assert_eq!(boundary_of("image/jpeg"), None);
        assert_eq!(boundary_of("multipart/x-mixed-replace"), None);
    }

    #[test]
    fn parts_with_and_without_length_extra_headers_and_garbage() {
        let (a, b, c) = (jpeg(1, 300), jpeg(2, 10), jpeg(3, 50));
        let mut s = b"HTTP garbage before\r\n".to_vec();
        // With Content-Length and mjpg-streamer's X-Timestamp.
        s.extend(format!("--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\nX-Timestamp: 1.5\r\n\r\n", a.len()).as_bytes());
        s.extend(&a);
        s.extend(b"\r\njunk between parts\r\n");
        // Without Content-Length, LF-only line ends.
        s.extend(b"--frame\nContent-Type: image/jpeg\n\n");
        s.extend(&b);
        s.extend(b"\r\n");
        // A delimiter without its dashes, as some cameras write it.
        s.extend(b"frame\r\nContent-Type: image/jpeg\r\n\r\n");
        s.extend(&c);
        s.extend(b"\r\n--frame--\r\n");
        for piece in [1, 2, 5, 64, 100_000] {
            let mut r = MultipartReader::new("--frame", 1 << 20, 4096);
            let (ok, bad) = bodies(&mut r, &s, piece);
            assert_eq!(ok, vec![a.clone(), b.clone(), c.clone()], "pieces of {piece}");
            assert!(bad.is_empty());
            // "HTTP garbage before" and "\r\njunk between parts": line ends before delimiters are theirs.
            assert_eq!(r.garbage, 19 + 20, "pieces of {piece}");
        }
        let mut r = MultipartReader::new("frame", 1 << 20, 4096);
        let p = r.push(&s).into_iter().next().unwrap().unwrap();
        assert_eq!(p.header("x-timestamp"), Some("1.5"));
    }

    #[test]
    fn a_well_formed_stream_has_no_garbage() {
        let mut s = Vec::new();
        for fill in 0..5 {
            let p = jpeg(fill, 100);
            s.extend(format!("--ffmpeg\r\nContent-type: image/jpeg\r\nContent-length: {}\r\n\r\n", p.len()).as_bytes());
            s.extend(&p);
            s.extend(b"\r\n");
        }
        let mut r = MultipartReader::new("ffmpeg", 1 << 20, 4096);
        let (ok, bad) = bodies(&mut r, &s, 7);
        assert_eq!((ok.len(), bad.len(), r.garbage), (5, 0, 0));
    }

    #[test]
    fn a_huge_part_an_endless_header_and_no_boundary_stay_bounded() {
        // A 100 MB part announced by its length: skipped, never buffered.
        let mut r = MultipartReader::new("b", 1 << 20, 1024);
        let mut errors = r.push(b"--b\r\nContent-Length: 104857600\r\n\r\n");
        let chunk = vec![0u8; 1 << 20];
        for _ in 0..100 {
            errors.extend(r.push(&chunk));
            assert!(r.buffered() <= 64, "{}", r.buffered());
        }
        assert_eq!(errors, vec![Err(PartError::TooLarge(104_857_600))]);
        let good = jpeg(7, 10);
        let mut tail = format!("\r\n--b\r\nContent-Length: {}\r\n\r\n", good.len()).into_bytes();
        tail.extend(&good);
        assert_eq!(r.push(&tail), vec![Ok(Part { headers: vec![("content-length".into(), "14".into())], body: Bytes::from(good) })]);

        // A part without length that never ends: dropped at the bound.
        let mut r = MultipartReader::new("b", 4096, 1024);
        let mut errors = r.push(b"--b\r\n\r\n");
        for _ in 0..100 {
            errors.extend(r.push(&[0x55; 1000]));
            assert!(r.buffered() <= 4096 + 1100);
        }
        assert!(errors.iter().any(|e| matches!(e, Err(PartError::TooLarge(_)))));

        // An endless header line, and a stream with no boundary at all.
        let mut r = MultipartReader::new("b", 4096, 1024);
        let mut errors = r.push(b"--b\r\nX-Long: ");
        for _ in 0..100 {
            errors.extend(r.push(&[b'a'; 1000]));
            assert!(r.buffered() <= 1024 + 1100);
        }
        assert!(errors.contains(&Err(PartError::HeaderTooLong(1024))));
        let mut r = MultipartReader::new("b", 4096, 1024);
        for _ in 0..100 {
            assert!(r.push(&[b'x'; 1000]).is_empty());
            assert!(r.buffered() <= 1024 + 16);
        }
    }

    #[test]
    fn truncated_pictures_are_told_apart() {
        assert!(is_whole_jpeg(&jpeg(0, 3)));
        assert!(!is_whole_jpeg(&jpeg(0, 3)[..5]));
    }
}
