//! The FLV muxer's inputs: elementary-stream payloads of any codec with arbitrary bytes (NAL
//! splitting, SPS/VPS parsing, ADTS, decoder configuration records, timestamps) through the
//! access-unit builder and the FLV muxer, and its tags back to Annex B (`media::annexb`); any
//! bytes as a decoder configuration record and through the JPEG splitter. Must never panic;
//! tags must frame their bodies, pictures stay within their bound.
#![no_main]
use libfuzzer_sys::fuzz_target;
use media::es::{Codec, EsFrame};
use media::flv::{FlvMuxer, FlvOptions, HevcMode};
use media::annexb::{parameter_sets, AnnexbWriter};
use media::jpeg::JpegSplitter;
use media::AccessUnitBuilder;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else { return };
    let hevc = if sel & 0x80 != 0 { HevcMode::Codec12 } else { HevcMode::Enhanced };
    let mut b = AccessUnitBuilder::new();
    let mut m = FlvMuxer::new(FlvOptions { hevc, ..Default::default() });
    let mut events = Vec::new();
    let mut annexb = AnnexbWriter::new();
    // Pictures out of any bytes, cut anywhere: whole and within the bound.
    let mut split = JpegSplitter::new(1024);
    for piece in data.chunks(97) {
        for jpeg in split.push(piece) {
            assert!(jpeg.len() <= 1026 + 97 && jpeg.starts_with(&[0xff, 0xd8]) && jpeg.ends_with(&[0xff, 0xd9]));
            let _ = media::jpeg::dimensions(&jpeg);
        }
    }
    let _ = media::jpeg::dimensions(data);
    // Any bytes as a decoder configuration record.
    let _ = parameter_sets(Codec::H264, rest);
    let _ = parameter_sets(Codec::H265, rest);
    // Pieces separated by 0xFE 0xFE; each picks its codec and timestamp from its first bytes.
    for (i, piece) in rest.split(|&x| x == 0xFE).enumerate() {
        let codec = match piece.first().copied().unwrap_or(sel) % 5 {
            0 => Codec::H264,
            1 => Codec::H265,
            2 => Codec::Aac,
            3 => Codec::G711A,
            _ => Codec::G711U,
        };
        let pts = piece.get(1).map(|p| u64::from(*p) * 3600 + (i as u64) * (1 << 30));
        let frame = EsFrame { stream_id: 0xE0, codec, pts, dts: None, data: piece.to_vec() };
        b.push(frame, &mut events);
        for ev in events.drain(..) {
            if let Some(tag) = m.push(&ev) {
                assert_eq!(tag.wire.len(), tag.body().len() + 15);
                // The tags back as Annex B, as snapshots and MJPEG read them.
                let _ = annexb.push(&tag);
            }
        }
    }
});
