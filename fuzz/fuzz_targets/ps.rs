//! PS demuxing: arbitrary bytes, fed in RTP-sized pieces with frame ends in between, must never
//! panic, and frames never exceed the limit.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut d = media::ps::PsDemuxer::new(64 * 1024);
    for (i, chunk) in data.chunks(211).enumerate() {
        d.push(chunk);
        if i % 3 == 2 {
            d.end_of_frame();
        }
        while let Some(f) = d.poll() {
            assert!(f.data.len() <= 64 * 1024);
        }
    }
});
