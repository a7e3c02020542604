//! Media hot-path benchmark (single thread = per core). `scripts/bench-media` runs it.
//!
//!   cargo bench -p gbcluster --bench media -- VIDEO.h264 [AUDIO.aac] OUT.ps
//!
//! Muxes the file to GB PS with our muxer (writing OUT.ps for the ffmpeg comparison), then times
//! on one core: the PS demuxer alone, and the whole receive path (RTP packets → reorder → PS
//! demux → access units → FLV tags). Prints JSON.

use std::time::Instant;

use gbsim::media::{MediaSource, PsRtpPacketizer};
use media::ps::PsDemuxer;
use stream_server::pipeline::{Pipeline, PipelineConfig};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let (video, audio, out) = match args.len() {
        2 => (&args[0], None, &args[1]),
        3 => (&args[0], Some(&args[1]), &args[2]),
        _ => {
            eprintln!("usage: media VIDEO.h264 [AUDIO.aac] OUT.ps");
            std::process::exit(2);
        }
    };
    let src = MediaSource::load(video.as_ref(), 25.0, audio.map(|a| a.as_ref())).expect("load");
    // RTP packets, as the node receives them.
    let mut pk = PsRtpPacketizer::new(src.video_codec, src.audio_codec, 1, true);
    let mut framed = Vec::new();
    for f in &src.frames {
        pk.packetize(f, f.pts, &mut framed);
    }
    let mut packets: Vec<&[u8]> = Vec::new();
    let mut ps = Vec::new();
    let mut pos = 0;
    while pos + 2 <= framed.len() {
        let len = usize::from(u16::from_be_bytes([framed[pos], framed[pos + 1]]));
        let p = &framed[pos + 2..pos + 2 + len];
        ps.extend_from_slice(&p[12..]);
        packets.push(p);
        pos += 2 + len;
    }
    std::fs::write(out, &ps).expect("write ps");
    let mb = ps.len() as f64 / 1e6;
    let rounds = (200.0 / mb).ceil().max(1.0) as usize;

    // PS demuxer alone, fed RTP-payload-sized pieces.
    let t = Instant::now();
    let mut frames = 0u64;
    for _ in 0..rounds {
        let mut d = PsDemuxer::new(4 << 20);
        for p in &packets {
            d.push(&p[12..]);
            if p[1] & 0x80 != 0 {
                d.end_of_frame();
            }
            while d.poll().is_some() {
                frames += 1;
            }
        }
    }
    let demux_s = t.elapsed().as_secs_f64();

    // Whole receive path.
    let t = Instant::now();
    let mut tags = 0u64;
    let mut tag_bytes = 0u64;
    for _ in 0..rounds {
        let mut p = Pipeline::new(PipelineConfig { ssrc: Some(1), reorder_window: 64, max_frame: 4 << 20, flv: Default::default() });
        for pkt in &packets {
            let _ = p.on_rtp(pkt, &mut |tag| {
                tags += 1;
                tag_bytes += tag.wire.len() as u64;
            });
        }
    }
    let pipe_s = t.elapsed().as_secs_f64();
    let total_mb = mb * rounds as f64;
    println!(
        "{}",
        serde_json::json!({
            "ps_bytes": ps.len(),
            "packets": packets.len(),
            "rounds": rounds,
            "frames_per_round": frames / rounds as u64,
            "tags_per_round": tags / rounds as u64,
            "flv_mb_per_round": tag_bytes as f64 / rounds as f64 / 1e6,
            "demux_mb_per_s": total_mb / demux_s,
            "pipeline_mb_per_s": total_mb / pipe_s,
            "pipeline_ns_per_packet": pipe_s * 1e9 / (packets.len() * rounds) as f64,
        })
    );
}
