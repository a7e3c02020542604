#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = gb::manscdp::parse(data);
    let _ = gb::xml::parse(&gb::manscdp::text::decode_body(data));
});
