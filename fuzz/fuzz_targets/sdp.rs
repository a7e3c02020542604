#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(sdp) = gb::sdp::GbSdp::parse(text) {
            let again = gb::sdp::GbSdp::parse(&sdp.to_text());
            assert!(again.is_ok(), "what we write we must read back");
        }
    }
});
