//! JPEG pictures out of a byte stream that carries them one after another (an MJPEG encoder's
//! output): each from its start-of-image marker (`FF D8`) to its end-of-image (`FF D9`). Inside
//! a picture's entropy-coded data a `FF` byte is always followed by `00` or a restart marker,
//! so `FF D9` is found only at the end. Bytes before a start marker are skipped; a picture
//! larger than the bound is dropped whole (its bytes are skipped until the next start).

use bytes::{Buf, Bytes, BytesMut};

const SOI: [u8; 2] = [0xff, 0xd8];
const EOI: [u8; 2] = [0xff, 0xd9];

#[derive(Debug)]
pub struct JpegSplitter {
    buf: BytesMut,
    max: usize,
    /// Where the search for the end marker goes on (what was searched before is not again).
    scanned: usize,
    /// Pictures dropped for their size.
    pub oversize: u64,
}

impl JpegSplitter {
    pub fn new(max_picture: usize) -> Self {
        Self { buf: BytesMut::new(), max: max_picture.max(4), scanned: 0, oversize: 0 }
    }

    /// Takes more bytes; returns the pictures they complete.
    pub fn push(&mut self, data: &[u8]) -> Vec<Bytes> {
        self.buf.extend_from_slice(data);
        let mut out = Vec::new();
        loop {
            // Drop what precedes the start marker (keeping a last FF that may begin one).
            match self.buf.windows(2).position(|w| w == SOI) {
                Some(0) => {}
                Some(at) => {
                    self.buf.advance(at);
                    self.scanned = 0;
                }
                None => {
                    let keep = usize::from(self.buf.last() == Some(&0xff));
                    let len = self.buf.len();
                    self.buf.advance(len - keep);
                    self.scanned = 0;
                    return out;
                }
            }
            let from = self.scanned.max(2);
            match self.buf[from..].windows(2).position(|w| w == EOI) {
                Some(at) => {
                    let end = from + at + 2;
                    out.push(self.buf.split_to(end).freeze());
                    self.scanned = 0;
                }
                None if self.buf.len() > self.max => {
                    // Too large: drop it and look for the next start after its first bytes.
                    self.oversize += 1;
                    self.buf.advance(2);
                    self.scanned = 0;
                }
                None => {
                    self.scanned = self.buf.len().saturating_sub(1);
                    return out;
                }
            }
        }
    }
}

/// A JPEG's width and height, from its start-of-frame segment; `None` if the bytes are not a
/// JPEG or end before it.
pub fn dimensions(jpeg: &[u8]) -> Option<(u16, u16)> {
    if !jpeg.starts_with(&SOI) {
        return None;
    }
    let mut at = 2;
    loop {
        // Markers may be padded with FF bytes.
        while jpeg.get(at) == Some(&0xff) && jpeg.get(at + 1) == Some(&0xff) {
            at += 1;
        }
        let (&ff, &marker) = (jpeg.get(at)?, jpeg.get(at + 1)?);
        if ff != 0xff {
            return None;
        }
        let len = usize::from(u16::from_be_bytes([*jpeg.get(at + 2)?, *jpeg.get(at + 3)?]));
        // SOF0–SOF15, but not DHT (C4), JPG (C8) and DAC (CC).
        if (0xc0..=0xcf).contains(&marker) && !matches!(marker, 0xc4 | 0xc8 | 0xcc) {
            let seg = jpeg.get(at + 4..at + 9)?;
            return Some((u16::from_be_bytes([seg[3], seg[4]]), u16::from_be_bytes([seg[1], seg[2]])));
        }
        if marker == 0xda || len < 2 {
            return None; // the scan starts before any frame header: not a JPEG we can read
        }
        at += 2 + len;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn picture(fill: u8, len: usize) -> Vec<u8> {
        let mut p = SOI.to_vec();
        p.extend(std::iter::repeat_n(fill, len));
        p.extend_from_slice(&EOI);
        p
    }

    #[test]
    fn pictures_come_out_whole_however_the_bytes_are_cut() {
        let mut stream = b"garbage".to_vec();
        stream.extend(picture(1, 100));
        stream.extend(picture(2, 5));
        stream.extend([0xff, 0x00, 0xff]);
        stream.extend(picture(3, 50));
        for piece in [1, 3, 7, 1000] {
            let mut s = JpegSplitter::new(1 << 20);
            let got: Vec<Bytes> = stream.chunks(piece).flat_map(|c| s.push(c)).collect();
            assert_eq!(
                got,
                vec![Bytes::from(picture(1, 100)), Bytes::from(picture(2, 5)), Bytes::from(picture(3, 50))],
                "pieces of {piece}"
            );
        }
    }

    #[test]
    fn a_picture_over_the_bound_is_dropped_and_memory_stays_bounded() {
        let mut s = JpegSplitter::new(64);
        let mut stream = picture(9, 1000);
        stream.extend(picture(4, 10));
        let got: Vec<Bytes> = stream.chunks(16).flat_map(|c| s.push(c)).collect();
        assert_eq!(got, vec![Bytes::from(picture(4, 10))]);
        assert!(s.oversize >= 1);
        // No start marker at all: nothing is kept.
        let mut s = JpegSplitter::new(64);
        for _ in 0..100 {
            assert!(s.push(&[0x12; 1000]).is_empty());
        }
        assert!(s.buf.len() <= 1);
    }

    #[test]
    fn dimensions_come_from_the_frame_header() {
        let jpeg = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/jpeg/red_64x48.jpg"));
        assert_eq!(dimensions(jpeg), Some((64, 48)));
        for cut in 0..jpeg.len() {
            let _ = dimensions(&jpeg[..cut]); // never panics, whatever is missing
        }
        assert_eq!(dimensions(b"\xff\xd8\xff\xda\x00\x02"), None);
        assert_eq!(dimensions(b"GIF89a"), None);
    }
}
