//! PS written by a muxer other than ours demuxes right.

use media::es::Codec;
use media::ps::PsDemuxer;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/../tests/fixtures/ps/{name}", env!("CARGO_MANIFEST_DIR"))).expect("fixture")
}

#[test]
fn ffmpeg_vob_without_psm_on_stream_e2_gives_exactly_ffmpegs_elementary_stream() {
    let data = fixture("ffmpeg_vob_h264_25f.ps");
    // What ffmpeg itself extracts from that file (`-c copy -f h264`), byte for byte.
    let reference = fixture("ffmpeg_vob_h264_25f.h264");
    let mut d = PsDemuxer::new(1 << 20);
    let mut frames = Vec::new();
    // RTP-sized pieces, as the stream-server will feed it.
    for chunk in data.chunks(1400) {
        d.push(chunk);
        frames.extend(std::iter::from_fn(|| d.poll()));
    }
    d.end_of_frame();
    frames.extend(std::iter::from_fn(|| d.poll()));
    assert!(!frames.is_empty());
    assert!(frames.iter().all(|f| f.codec == Codec::H264 && f.stream_id == 0xE2), "no PSM: H.264 sniffed on 0xE2");
    let es: Vec<u8> = frames.iter().flat_map(|f| f.data.iter().copied()).collect();
    assert_eq!(es.len(), reference.len());
    assert!(es == reference, "demuxed elementary stream differs from ffmpeg's");
    let pts: Vec<u64> = frames.iter().map(|f| f.pts.expect("pts")).collect();
    assert!(pts.windows(2).all(|w| w[1] > w[0]), "{pts:?}");
    assert_eq!((d.stats.recoveries, d.stats.psm), (0, 0));
    assert_eq!(d.stats.packs, 4);
}
