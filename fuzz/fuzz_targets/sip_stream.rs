//! A TCP byte stream cut at an arbitrary point: the Content-Length framer must never panic and
//! never hold more than its limit.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let cut = data.first().map_or(0, |b| *b as usize).min(data.len());
    let mut f = gb::sip::lite::StreamFramer::new(4096);
    for part in [&data[..cut], &data[cut..]] {
        f.push(part);
        loop {
            match f.next_message() {
                Ok(Some(m)) => {
                    assert!(m.len() <= 4096);
                    let _ = gb::sip::lite::LiteMessage::parse(&m);
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
});
