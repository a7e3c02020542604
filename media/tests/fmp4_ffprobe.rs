//! The fMP4 muxer's output read back by ffmpeg: H.264 from x264 and AAC from ffmpeg's encoder
//! go through the access-unit builder and the muxer (as the media node's pipeline does), and
//! the fragmented file must probe as the source and decode without an error.

use std::path::{Path, PathBuf};
use std::process::Command;

use media::access_unit::AccessUnitBuilder;
use media::flv::{FlvMuxer, FlvOptions};
use media::fmp4::Fmp4Muxer;
use media::{Codec, EsFrame, MediaEvent};

fn tmp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("gbc-fmp4-{}-{name}", std::process::id()))
}

fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg").args(["-v", "error", "-y"]).args(args).output().expect("ffmpeg on PATH");
    assert!(out.status.success(), "ffmpeg {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// The access units of an Annex B file whose encoder put an AUD before each one.
fn aud_units(data: &[u8]) -> Vec<&[u8]> {
    let starts: Vec<usize> = data.windows(5).enumerate().filter(|(_, w)| *w == [0, 0, 0, 1, 9]).map(|(i, _)| i).collect();
    starts.iter().zip(starts.iter().skip(1).chain([&data.len()])).map(|(a, b)| &data[*a..*b]).collect()
}

/// Whole ADTS frames (header included: the builder reads the configuration from it).
fn adts_frames(data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut i = 0;
    while i + 7 <= data.len() && data[i] == 0xff && data[i + 1] & 0xf0 == 0xf0 {
        let len = (usize::from(data[i + 3] & 3) << 11) | (usize::from(data[i + 4]) << 3) | usize::from(data[i + 5] >> 5);
        if len < 7 || i + len > data.len() {
            break;
        }
        out.push(&data[i..i + len]);
        i += len;
    }
    out
}

fn probe(path: &Path) -> serde_json::Value {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-show_streams", "-of", "json"])
        .arg(path)
        .output()
        .expect("ffprobe on PATH");
    assert!(out.status.success(), "ffprobe: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("ffprobe JSON")
}

/// x264 video and AAC audio as the media node's pipeline sees them: access-unit events.
fn source_events(tag: &str) -> Vec<MediaEvent> {
    let (h264, aac) = (tmp(&format!("{tag}.h264")), tmp(&format!("{tag}.aac")));
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=320x240:rate=25",
        "-t",
        "2",
        "-c:v",
        "libx264",
        "-bf",
        "0",
        "-g",
        "25",
        "-bsf:v",
        "h264_metadata=aud=insert",
        "-f",
        "h264",
        h264.to_str().unwrap(),
    ]);
    ffmpeg(&["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100", "-t", "2", "-c:a", "aac", "-f", "adts", aac.to_str().unwrap()]);
    let video = std::fs::read(&h264).unwrap();
    let audio = std::fs::read(&aac).unwrap();
    let _ = std::fs::remove_file(h264);
    let _ = std::fs::remove_file(aac);

    let mut builder = AccessUnitBuilder::new();
    let mut events = Vec::new();
    let units = aud_units(&video);
    assert_eq!(units.len(), 50);
    // Interleaved as a camera sends them: each video frame, then the audio up to its time.
    let adts = adts_frames(&audio);
    assert!(adts.len() > 80, "2 s of 44.1 kHz AAC");
    let mut next_audio = 0;
    for (i, unit) in units.iter().enumerate() {
        let pts = 90_000 + i as u64 * 3600;
        builder.push(EsFrame { stream_id: 0xe0, codec: Codec::H264, pts: Some(pts), dts: Some(pts), data: unit.to_vec() }, &mut events);
        while next_audio < adts.len() && (next_audio as u64 * 1024 * 90_000 / 44_100) <= i as u64 * 3600 {
            let apts = 90_000 + next_audio as u64 * 1024 * 90_000 / 44_100;
            builder.push(
                EsFrame { stream_id: 0xc0, codec: Codec::Aac, pts: Some(apts), dts: None, data: adts[next_audio].to_vec() },
                &mut events,
            );
            next_audio += 1;
        }
    }
    events
}

/// Runs `feed` over the events, taking the init segment and a fragment after each video
/// frame, and returns the file.
fn mux(events: &[MediaEvent], mut feed: impl FnMut(&mut Fmp4Muxer, &MediaEvent)) -> Vec<u8> {
    let mut mux = Fmp4Muxer::new();
    let mut file = Vec::new();
    let mut fragments = 0;
    for ev in events {
        feed(&mut mux, ev);
        if let Some(init) = mux.take_init_segment() {
            // Video's configuration comes first, then audio's: the second init (both tracks)
            // replaces the first before any fragment, as a player would start over.
            assert_eq!(fragments, 0, "configurations arrive before the first fragment");
            file = init.to_vec();
        }
        if matches!(ev, MediaEvent::Frame(au) if au.is_video()) {
            if let Some(f) = mux.take_fragment() {
                fragments += 1;
                file.extend_from_slice(&f);
            }
        }
    }
    assert!(fragments >= 48, "a fragment per video frame ({fragments})");
    file
}

/// The file probes as the source (codec, size, rate, every frame but the one held back, the
/// audio) and decodes without a complaint.
fn check(file: &[u8], name: &str) {
    let mp4 = tmp(name);
    std::fs::write(&mp4, file).unwrap();
    let p = probe(&mp4);
    let streams = p["streams"].as_array().unwrap();
    let v = streams.iter().find(|s| s["codec_type"] == "video").expect("a video stream");
    assert_eq!((v["codec_name"].as_str(), v["width"].as_u64(), v["height"].as_u64()), (Some("h264"), Some(320), Some(240)));
    let frames: u64 = v["nb_read_frames"].as_str().unwrap().parse().unwrap();
    assert!((48..=50).contains(&frames), "every frame but the one held back: {frames}");
    assert_eq!(v["r_frame_rate"].as_str(), Some("25/1"));
    let a = streams.iter().find(|s| s["codec_type"] == "audio").expect("an audio stream");
    assert_eq!((a["codec_name"].as_str(), a["sample_rate"].as_str()), (Some("aac"), Some("44100")));
    let out = Command::new("ffmpeg").args(["-v", "error", "-i"]).arg(&mp4).args(["-f", "null", "-"]).output().unwrap();
    assert!(out.status.success() && out.stderr.is_empty(), "decoding: {}", String::from_utf8_lossy(&out.stderr));
    let _ = std::fs::remove_file(mp4);
}

#[test]
fn h264_and_aac_in_fragments_probe_and_decode_as_the_source() {
    let events = source_events("direct");
    check(&mux(&events, |m, ev| m.push(ev)), "direct.mp4");
}

#[test]
fn the_same_from_a_streams_flv_tags() {
    // As the media node serves fMP4 on demand: from the FLV tags its hub already has.
    let events = source_events("flv");
    let mut flv = FlvMuxer::new(FlvOptions::default());
    let file = mux(&events, |m, ev| {
        if let Some(tag) = flv.push(ev) {
            m.push_flv(&tag);
        }
    });
    check(&file, "flv.mp4");
}
