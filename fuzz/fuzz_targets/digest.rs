#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(c) = gb::sip::digest::Credentials::parse(text) {
            let _ = c.verify("REGISTER", "12345678");
        }
        let _ = gb::sip::digest::Challenge::parse(text);
        let n = gb::sip::digest::NonceIssuer::new(b"k", 30);
        let _ = n.check(text, 1000);
    }
});
