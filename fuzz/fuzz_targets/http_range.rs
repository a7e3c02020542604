//! `Range` request headers (RFC 9110) as the media node's file server reads them: any text,
//! any file length; a part is always inside the file and never empty.
#![no_main]
use kit::http::{byte_range, ByteRange};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (len, text) = match data.split_first_chunk::<8>() {
        Some((n, rest)) => (u64::from_le_bytes(*n), rest),
        None => (0, data),
    };
    let header = String::from_utf8_lossy(text);
    for len in [len, len % 4096, 0, 1] {
        if let ByteRange::Part { start, end } = byte_range(Some(&header), len) {
            assert!(start <= end && end < len, "{header:?} of {len}: {start}-{end}");
        }
    }
});
