#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = common::manscdp::parse(data);
    let _ = common::manscdp::tree::parse(&common::manscdp::text::decode_body(data));
});
