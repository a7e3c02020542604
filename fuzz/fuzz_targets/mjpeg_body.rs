//! An MJPEG-over-HTTP body as the pull source reads it (`pull::mjpeg_body::MjpegBody`): any
//! Content-Type the cameras send (a boundary, none, octet-stream, image/jpeg), chunked or not,
//! any bytes cut anywhere. Never panics; every picture is a whole JPEG within the bound.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pull::mjpeg_body::MjpegBody;

const MAX_PICTURE: usize = 4096;
const TYPES: [&str; 6] = [
    "multipart/x-mixed-replace; boundary=frame",
    "multipart/x-mixed-replace;boundary=\"--frame\"",
    "multipart/x-mixed-replace",
    "application/octet-stream",
    "",
    "image/jpeg",
];

fuzz_target!(|data: &[u8]| {
    let Some((&n, body)) = data.split_first() else { return };
    let Ok((mut b, _)) = MjpegBody::new(TYPES[n as usize % TYPES.len()], n & 0x80 != 0, MAX_PICTURE, 256) else { return };
    for piece in body.chunks(1 + (n as usize >> 3) % 53) {
        if b.push(piece).is_err() {
            break;
        }
        while let Some(p) = b.picture() {
            assert!(p.len() <= MAX_PICTURE + 64 && p.starts_with(&[0xff, 0xd8]) && p.ends_with(&[0xff, 0xd9]), "{} bytes", p.len());
        }
    }
});
