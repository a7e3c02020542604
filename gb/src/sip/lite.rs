//! A light, bounded SIP message view (start line, header list, raw body) and a TCP stream
//! framer by Content-Length. The simulator speaks SIP through these; the server uses
//! rsipstack. Both sides of the wire are thus written independently.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LiteError {
    #[error("incomplete message")]
    Incomplete,
    #[error("malformed: {0}")]
    Malformed(&'static str),
    #[error("message exceeds {0} bytes")]
    TooLarge(usize),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine {
    Request { method: String, uri: String },
    Response { code: u16, reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiteMessage {
    pub start: StartLine,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

pub const MAX_HEADERS: usize = 128;

fn expand_compact(name: &str) -> &str {
    match name {
        "v" | "V" => "Via",
        "f" | "F" => "From",
        "t" | "T" => "To",
        "i" | "I" => "Call-ID",
        "m" | "M" => "Contact",
        "l" | "L" => "Content-Length",
        "c" | "C" => "Content-Type",
        other => other,
    }
}

fn find_header_end(data: &[u8]) -> Option<usize> {
    data.windows(4).position(|w| w == b"\r\n\r\n")
}

impl LiteMessage {
    /// Parses one whole message (a datagram, or what `StreamFramer` cut).
    pub fn parse(data: &[u8]) -> Result<Self, LiteError> {
        let end = find_header_end(data).ok_or(LiteError::Incomplete)?;
        let head = std::str::from_utf8(&data[..end]).map_err(|_| LiteError::Malformed("header section is not UTF-8"))?;
        let mut lines = head.split("\r\n");
        let first = lines.next().ok_or(LiteError::Malformed("empty"))?;
        let start = if let Some(rest) = first.strip_prefix("SIP/2.0 ") {
            let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
            let code: u16 = code.parse().map_err(|_| LiteError::Malformed("status code"))?;
            if !(100..700).contains(&code) {
                return Err(LiteError::Malformed("status code"));
            }
            StartLine::Response { code, reason: reason.to_owned() }
        } else {
            let mut parts = first.split(' ');
            let (Some(method), Some(uri), Some("SIP/2.0"), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
                return Err(LiteError::Malformed("request line"));
            };
            if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(LiteError::Malformed("method"));
            }
            StartLine::Request { method: method.to_owned(), uri: uri.to_owned() }
        };
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in lines {
            if line.starts_with([' ', '\t']) {
                // Folded continuation of the previous header.
                let last = headers.last_mut().ok_or(LiteError::Malformed("continuation first"))?;
                last.1.push(' ');
                last.1.push_str(line.trim());
                continue;
            }
            if headers.len() >= MAX_HEADERS {
                return Err(LiteError::Malformed("too many headers"));
            }
            let (n, v) = line.split_once(':').ok_or(LiteError::Malformed("header without colon"))?;
            headers.push((expand_compact(n.trim()).to_owned(), v.trim().to_owned()));
        }
        let body_start = end + 4;
        let declared = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("Content-Length"))
            .map(|(_, v)| v.parse::<usize>().map_err(|_| LiteError::Malformed("Content-Length")))
            .transpose()?;
        let available = data.len() - body_start;
        let len = declared.unwrap_or(available);
        if len > available {
            return Err(LiteError::Incomplete);
        }
        Ok(Self { start, headers, body: data[body_start..body_start + len].to_vec() })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn headers_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers.iter().filter(move |(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn code(&self) -> Option<u16> {
        match self.start {
            StartLine::Response { code, .. } => Some(code),
            StartLine::Request { .. } => None,
        }
    }

    pub fn method(&self) -> Option<&str> {
        match &self.start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }

    /// CSeq number and method.
    pub fn cseq(&self) -> Option<(u32, &str)> {
        let v = self.header("CSeq")?;
        let (n, m) = v.split_once(' ')?;
        Some((n.trim().parse().ok()?, m.trim()))
    }

    /// The `200 OK` (or other) answer to this request: Via/From/To/Call-ID/CSeq copied, a To
    /// tag added when absent.
    pub fn response(&self, code: u16, reason: &str, to_tag: &str, extra: &[(&str, String)], body: Option<(&str, &[u8])>) -> Vec<u8> {
        let mut s = format!("SIP/2.0 {code} {reason}\r\n");
        for (n, v) in &self.headers {
            if n.eq_ignore_ascii_case("Via")
                || n.eq_ignore_ascii_case("From")
                || n.eq_ignore_ascii_case("Call-ID")
                || n.eq_ignore_ascii_case("CSeq")
            {
                s.push_str(&format!("{n}: {v}\r\n"));
            } else if n.eq_ignore_ascii_case("To") {
                if v.contains(";tag=") {
                    s.push_str(&format!("To: {v}\r\n"));
                } else {
                    s.push_str(&format!("To: {v};tag={to_tag}\r\n"));
                }
            }
        }
        for (n, v) in extra {
            s.push_str(&format!("{n}: {v}\r\n"));
        }
        let mut out = match body {
            Some((ct, b)) => {
                s.push_str(&format!("Content-Type: {ct}\r\nContent-Length: {}\r\n\r\n", b.len()));
                let mut o = s.into_bytes();
                o.extend_from_slice(b);
                o
            }
            None => {
                s.push_str("Content-Length: 0\r\n\r\n");
                s.into_bytes()
            }
        };
        out.shrink_to_fit();
        out
    }
}

/// Cuts a TCP byte stream into SIP messages by Content-Length. Memory is bounded by `max`:
/// a message larger than that is an error, after which the connection should be closed.
pub struct StreamFramer {
    buf: Vec<u8>,
    max: usize,
}

impl StreamFramer {
    pub fn new(max: usize) -> Self {
        Self { buf: Vec::new(), max }
    }

    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next whole message, `Ok(None)` when more bytes are needed.
    pub fn next_message(&mut self) -> Result<Option<Vec<u8>>, LiteError> {
        // RFC 5626 keepalives (CRLF) between messages.
        let lead = self.buf.iter().take_while(|b| **b == b'\r' || **b == b'\n').count();
        if lead > 0 {
            self.buf.drain(..lead);
        }
        let Some(end) = find_header_end(&self.buf) else {
            if self.buf.len() > self.max {
                return Err(LiteError::TooLarge(self.max));
            }
            return Ok(None);
        };
        let head = &self.buf[..end];
        let mut len = 0usize;
        for line in head.split(|b| *b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let Some(colon) = line.iter().position(|b| *b == b':') else { continue };
            let name = line[..colon].trim_ascii();
            if name.eq_ignore_ascii_case(b"Content-Length") || name.eq_ignore_ascii_case(b"l") {
                let v = std::str::from_utf8(line[colon + 1..].trim_ascii()).map_err(|_| LiteError::Malformed("Content-Length"))?;
                len = v.parse().map_err(|_| LiteError::Malformed("Content-Length"))?;
            }
        }
        let total = end.checked_add(4).and_then(|t| t.checked_add(len)).ok_or(LiteError::TooLarge(self.max))?;
        if total > self.max {
            return Err(LiteError::TooLarge(self.max));
        }
        if self.buf.len() < total {
            return Ok(None);
        }
        let rest = self.buf.split_off(total);
        Ok(Some(std::mem::replace(&mut self.buf, rest)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"MESSAGE sip:34020000001320000001@127.0.0.1:5061 SIP/2.0\r\nv: SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bKx\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCall-ID: x\r\nCSeq: 7 MESSAGE\r\nContent-Length: 4\r\n\r\nbody";

    #[test]
    fn parses_request_with_compact_headers() {
        let m = LiteMessage::parse(MSG).unwrap();
        assert_eq!(m.method(), Some("MESSAGE"));
        assert_eq!(m.header("via"), Some("SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bKx"));
        assert_eq!(m.cseq(), Some((7, "MESSAGE")));
        assert_eq!(m.body, b"body");
        let r = LiteMessage::parse(&m.response(200, "OK", "t9", &[], None)).unwrap();
        assert_eq!(r.code(), Some(200));
        assert_eq!(r.header("To"), Some("<sip:c@d>;tag=t9"));
    }

    #[test]
    fn framer_splits_at_every_offset() {
        let mut stream = b"\r\n\r\n".to_vec();
        stream.extend_from_slice(MSG);
        stream.extend_from_slice(MSG);
        for cut in 0..stream.len() {
            let mut f = StreamFramer::new(65_535);
            let mut got = Vec::new();
            for part in [&stream[..cut], &stream[cut..]] {
                f.push(part);
                while let Some(m) = f.next_message().unwrap() {
                    got.push(m);
                }
            }
            assert_eq!(got, vec![MSG.to_vec(), MSG.to_vec()], "cut at {cut}");
        }
    }

    #[test]
    fn framer_bounds_memory() {
        let mut f = StreamFramer::new(100);
        f.push(b"MESSAGE x SIP/2.0\r\nContent-Length: 1000\r\n\r\n");
        assert_eq!(f.next_message(), Err(LiteError::TooLarge(100)));
        let mut f = StreamFramer::new(100);
        f.push(&[b'a'; 200]);
        assert_eq!(f.next_message(), Err(LiteError::TooLarge(100)));
        let mut f = StreamFramer::new(100);
        f.push(b"X\r\nContent-Length: 99999999999999999999999\r\n\r\n");
        assert!(f.next_message().is_err());
    }

    #[test]
    fn rejects_garbage() {
        assert!(LiteMessage::parse(b"hello\r\n\r\n").is_err());
        assert!(LiteMessage::parse(b"SIP/2.0 99999 X\r\n\r\n").is_err());
        assert_eq!(LiteMessage::parse(b"SIP/2.0 200 OK\r\nContent-Length: 5\r\n\r\nab"), Err(LiteError::Incomplete));
    }
}
