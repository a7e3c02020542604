//! What LPR cameras push: any bytes as a JSON body through every message reader, as a
//! multipart heartbeat (boundary taken from the first bytes) and as a urlencoded form. Nothing
//! may panic; decoded images stay within the limit.
#![no_main]
use libfuzzer_sys::fuzz_target;
use lpr_server::{multipart, proto};

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = proto::json_body(data) {
        if let Ok(p) = proto::plate_result(&v, 4096) {
            assert!(p.image_full.as_ref().is_none_or(|i| i.len() <= 4096 + 3));
            let _ = p.plate();
        }
        let _ = proto::gio_in(&v);
        let _ = proto::serial_data(&v);
        let _ = proto::snapshot(&v, 4096);
    }
    let split = data.iter().position(|b| *b == b'\n').unwrap_or(0).min(40);
    let boundary = String::from_utf8_lossy(&data[..split]).into_owned();
    let fields = multipart::fields(&data[split..], &boundary);
    assert!(fields.len() <= multipart::MAX_FIELDS);
    let _ = proto::heartbeat(&fields);
    let _ = multipart::boundary(&boundary);
    let _ = proto::heartbeat(&proto::urlencoded(data));
});
