//! A camera's MJPEG body sent chunked (`Transfer-Encoding: chunked`), as the MJPEG-over-HTTP
//! pull reads it: `media::chunked::Dechunker` cut anywhere, its data into the multipart reader.
//! Never panics; never gives out more data than came in; the line it buffers stays bounded.
#![no_main]
use libfuzzer_sys::fuzz_target;
use media::chunked::Dechunker;
use media::multipart::MultipartReader;

fuzz_target!(|data: &[u8]| {
    let Some((&n, body)) = data.split_first() else { return };
    let mut d = Dechunker::new();
    let mut parts = MultipartReader::new("frame", 4096, 512);
    let mut out = 0usize;
    for piece in body.chunks(1 + n as usize % 97) {
        let fed = d.push(piece, &mut |b| {
            out += b.len();
            for part in parts.push(b).into_iter().flatten() {
                assert!(part.body.len() <= 4096 + 64);
            }
        });
        if fed.is_err() {
            break;
        }
    }
    assert!(out <= body.len(), "{out} bytes of data from {} bytes", body.len());
});
