//! HTTP responses read by the cluster's client: any bytes, cut anywhere, must never panic and
//! never yield a body over the limit.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for eof in [false, true] {
        if let Ok(Some(r)) = kit::http_client::parse_response(data, eof) {
            assert!(r.body.len() <= kit::http_client::MAX_RESPONSE);
            let _ = r.error_message();
        }
    }
    let cut = data.len() / 2;
    let _ = kit::http_client::parse_response(&data[..cut], false);
});
