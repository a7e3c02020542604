//! FLV read back as it arrives (`media::flv::FlvReader`: the H.264 encoder's output of a JPEG
//! source), cut anywhere. Never panics; every tag is within the bound and re-times cleanly.
#![no_main]
use libfuzzer_sys::fuzz_target;
use media::flv::FlvReader;

const MAX_TAG: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let Some((&n, stream)) = data.split_first() else { return };
    let mut r = FlvReader::new(MAX_TAG);
    for piece in stream.chunks(1 + n as usize % 61) {
        match r.push(piece) {
            Ok(tags) => {
                for t in tags {
                    assert!(t.wire.len() <= MAX_TAG + 15);
                    let moved = FlvReader::retimed(&t, t.timestamp.wrapping_add(1000));
                    assert_eq!(moved.body(), t.body());
                }
            }
            Err(_) => return,
        }
    }
});
