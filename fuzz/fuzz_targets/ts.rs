//! MPEG-TS over RTP: arbitrary bytes in RTP-payload-sized pieces (with frame ends and idle
//! flushes between) must never panic, and payloads stay within the limit.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut d = media::ts::TsDemuxer::new(64 * 1024);
    for (i, chunk) in data.chunks(7 * 188).enumerate() {
        d.push(chunk);
        if i % 4 == 3 {
            d.end_of_frame();
        }
        while let Some(f) = d.poll() {
            assert!(f.data.len() <= 64 * 1024);
        }
    }
});
