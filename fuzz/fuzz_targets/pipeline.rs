//! A whole receiver pipeline (SSRC gate, reorder buffer, PS/TS detection and demux, raw G.711,
//! access units, FLV) fed arbitrary datagrams: must never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use stream_server::pipeline::{Pipeline, PipelineConfig};

fuzz_target!(|data: &[u8]| {
    let cfg = PipelineConfig { ssrc: None, reorder_window: 8, max_frame: 64 * 1024, flv: Default::default() };
    let mut p = Pipeline::new(cfg);
    let mut pos = 0;
    let mut n = 0;
    // Datagrams as [len: u16][bytes].
    while pos + 2 <= data.len() {
        let len = usize::from(u16::from_be_bytes([data[pos], data[pos + 1]]));
        pos += 2;
        let end = (pos + len).min(data.len());
        let _ = p.on_rtp(&data[pos..end], &mut |t| {
            n += t.wire.len();
        });
        pos = end;
    }
    p.flush(&mut |_| {});
});
