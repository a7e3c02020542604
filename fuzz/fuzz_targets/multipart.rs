//! MJPEG-over-HTTP bodies (`multipart/x-mixed-replace`) as cameras send them: any boundary,
//! any bytes, cut anywhere. Never panics; parts and the buffer stay within their bounds.
#![no_main]
use libfuzzer_sys::fuzz_target;
use media::multipart::{boundary_of, MultipartReader};

const MAX_PART: usize = 2048;
const MAX_HEADER: usize = 256;

fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else { return };
    let (b, stream) = rest.split_at((n as usize % 16).min(rest.len()));
    let boundary = String::from_utf8_lossy(b).into_owned();
    let _ = boundary_of(&format!("multipart/x-mixed-replace; boundary={boundary}"));
    let mut r = MultipartReader::new(&boundary, MAX_PART, MAX_HEADER);
    let piece = 1 + (n as usize % 61);
    for chunk in stream.chunks(piece) {
        for part in r.push(chunk).into_iter().flatten() {
            assert!(part.body.len() <= MAX_PART + 64, "a part of {} bytes", part.body.len());
        }
        assert!(r.buffered() <= MAX_PART + MAX_HEADER + 2 * piece + 64, "{} buffered", r.buffered());
    }
});
