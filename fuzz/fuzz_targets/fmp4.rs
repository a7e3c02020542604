//! The fMP4 muxer's inputs: arbitrary FLV tags (any kind, header or not, any body: codec ids,
//! Enhanced RTMP FourCCs, decoder configuration records, AudioSpecificConfigs, NAL length
//! framing) and the access-unit builder's events from arbitrary payloads. Must never panic;
//! every segment's top-level boxes must add up to its length.
#![no_main]
use libfuzzer_sys::fuzz_target;
use media::es::{Codec, EsFrame};
use media::flv::{FlvTag, TagKind};
use media::fmp4::Fmp4Muxer;
use media::AccessUnitBuilder;

fn boxes_add_up(seg: &[u8]) {
    let mut i = 0;
    while i < seg.len() {
        let size = u32::from_be_bytes(seg[i..i + 4].try_into().unwrap()) as usize;
        assert!(size >= 8 && i + size <= seg.len(), "box at {i} of {size} in {}", seg.len());
        i += size;
    }
}

fuzz_target!(|data: &[u8]| {
    let mut m = Fmp4Muxer::new();
    let mut b = AccessUnitBuilder::new();
    let mut events = Vec::new();
    // Pieces separated by 0xFE: the first byte picks what the piece is.
    for (i, piece) in data.split(|&x| x == 0xFE).enumerate() {
        let Some((&sel, body)) = piece.split_first() else { continue };
        if sel & 0x80 != 0 {
            let codec = [Codec::H264, Codec::H265, Codec::Aac][usize::from(sel) % 3];
            let pts = Some(u64::from(sel) * 3600 + i as u64 * 1800);
            b.push(EsFrame { stream_id: 0xE0, codec, pts, dts: None, data: body.to_vec() }, &mut events);
            for ev in events.drain(..) {
                m.push(&ev);
            }
        } else {
            let kind = [TagKind::Video, TagKind::Audio, TagKind::Script][usize::from(sel) % 3];
            m.push_flv(&FlvTag::new(kind, (i as u32) * 40, sel & 0x10 != 0, sel & 0x20 != 0, body));
        }
        if let Some(init) = m.take_init_segment() {
            boxes_add_up(&init);
        }
        if sel & 0x40 != 0 {
            if let Some(f) = m.take_fragment() {
                boxes_add_up(&f);
            }
        }
    }
});
