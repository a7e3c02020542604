//! An MJPEG-over-HTTP body read as it arrives, without I/O: the bytes after the response head
//! in, whole JPEG pictures out. Its framing comes from the response: a multipart type with a
//! boundary is read by `media::multipart`; `image/jpeg`, by the JPEG markers; a type that says
//! nothing (`application/octet-stream`, none) or a multipart type without boundary, by the
//! body's first line (a delimiter line names the boundary, else the markers). A chunked body is
//! decoded first (`media::chunked`).
//!
//! What is wrong in a stream that goes on is counted and said in words
//! ([`MjpegStats::last_problem`]); nothing grows past the bounds given.

use std::collections::VecDeque;

use bytes::Bytes;
use media::chunked::Dechunker;
use media::jpeg::JpegSplitter;
use media::multipart::{boundary_of, is_whole_jpeg, MultipartReader, PartError};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("not MJPEG: Content-Type {0:?}")]
    NotMjpeg(String),
    #[error("chunked body: {0}")]
    Chunked(media::chunked::ChunkError),
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
                        Ok(p) => {
                            // A part without length runs to the next delimiter: what a camera
                            // left after the picture's end marker is not the picture.
                            let end = if is_whole_jpeg(&p.body) {
                                Some(p.body.len())
                            } else if p.header("content-length").is_none() {
                                trimmed_jpeg(&p.body)
                            } else {
                                None
                            };
                            let Some(end) = end else {
                                self.stats.not_jpeg += 1;
                                self.stats.last_problem = Some(format!(
                                    "a part of {} bytes that is not a whole JPEG (truncated, or another type): dropped",
                                    p.body.len()
                                ));
                                continue;
                            };
                            if end < p.body.len() {
                                self.stats.garbage_bytes += (p.body.len() - end) as u64;
                                self.stats.last_problem = Some(format!("{} bytes after a picture's end, skipped", p.body.len() - end));
                            }
                            self.stats.pictures += 1;
                            self.stats.bytes += end as u64;
                            self.ready.push_back(p.body.slice(..end));
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

/// The body of one response.
pub struct MjpegBody {
    chunked: Option<Dechunker>,
    pictures: Pictures,
}

impl MjpegBody {
    /// The reader for a response of `content_type` (chunked or not); `None` as the boundary
    /// when there is none in the type. Pictures over `max_picture` and header blocks over
    /// `max_header` are skipped.
    pub fn new(content_type: &str, chunked: bool, max_picture: usize, max_header: usize) -> Result<(Self, Option<String>), BodyError> {
        let boundary = boundary_of(content_type);
        let lower = content_type.to_ascii_lowercase();
        let mut stats = MjpegStats::default();
        let framing = match &boundary {
            Some(b) => Framing::Multipart(MultipartReader::new(b, max_picture, max_header)),
            None if lower.starts_with("multipart/") => {
                stats.last_problem = Some(format!("Content-Type {content_type:?} names no boundary: it is read from the body"));
                Framing::Sniff(Vec::new())
            }
            None if lower.starts_with("image/jpeg") => Framing::Markers(JpegSplitter::new(max_picture)),
            None if lower.is_empty() || lower.starts_with("application/octet-stream") => Framing::Sniff(Vec::new()),
            None => return Err(BodyError::NotMjpeg(content_type.chars().take(100).collect())),
        };
        let pictures = Pictures { framing, ready: VecDeque::new(), stats, max_picture, max_header, between_parts: 0 };
        Ok((Self { chunked: chunked.then(Dechunker::new), pictures }, boundary))
    }

    /// Takes more of the body. An error ends the stream (its framing is lost, or it ended).
    pub fn push(&mut self, data: &[u8]) -> Result<(), BodyError> {
        let pictures = &mut self.pictures;
        match &mut self.chunked {
            None => pictures.push(data),
            Some(d) => {
                d.push(data, &mut |b| pictures.push(b)).map_err(BodyError::Chunked)?;
                if d.done() {
                    return Err(BodyError::Ended);
                }
            }
        }
        Ok(())
    }

    /// The next whole picture read so far.
    pub fn picture(&mut self) -> Option<Bytes> {
        self.pictures.ready.pop_front()
    }

    pub fn stats(&self) -> &MjpegStats {
        &self.pictures.stats
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
    fn bodies_of_every_framing_give_their_pictures() {
        let jpeg = b"\xff\xd8picture\xff\xd9";
        let part = |extra: &str| format!("--cam\r\nContent-Type: image/jpeg{extra}\r\n\r\n").into_bytes();
        // ffmpeg's mpjpeg over octet-stream, chunked; the boundary from the first line.
        let mut plain = part("");
        plain.extend_from_slice(jpeg);
        plain.extend_from_slice(b"\r\n");
        plain.extend(part(""));
        let mut wire = format!("{:x}\r\n", plain.len()).into_bytes();
        wire.extend_from_slice(&plain);
        wire.extend_from_slice(b"\r\n");
        let (mut b, boundary) = MjpegBody::new("application/octet-stream", true, 1024, 256).unwrap();
        assert_eq!(boundary, None);
        for piece in wire.chunks(3) {
            b.push(piece).unwrap();
        }
        assert_eq!(b.picture().as_deref(), Some(&jpeg[..]));
        assert_eq!(b.stats().garbage_bytes, 0);
        // image/jpeg: pictures by their markers.
        let (mut b, _) = MjpegBody::new("image/jpeg", false, 1024, 256).unwrap();
        b.push(&[&jpeg[..], b"junk", &jpeg[..]].concat()).unwrap();
        assert_eq!((b.picture().is_some(), b.picture().is_some(), b.picture()), (true, true, None));
        // What no camera sends.
        assert!(matches!(MjpegBody::new("text/html", false, 1024, 256), Err(BodyError::NotMjpeg(_))));
        let (mut b, _) = MjpegBody::new("multipart/x-mixed-replace;boundary=cam", true, 1024, 256).unwrap();
        assert!(matches!(b.push(b"zz\r\n"), Err(BodyError::Chunked(_))));
        let (mut b, _) = MjpegBody::new("multipart/x-mixed-replace;boundary=cam", true, 1024, 256).unwrap();
        assert_eq!(b.push(b"0\r\n\r\n"), Err(BodyError::Ended));
    }
}
