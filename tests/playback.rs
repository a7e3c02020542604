//! Playback of a gbsim camera's recording across real processes (Redis, a sip-server, a media
//! node, the camera): INVITE `s=Playback` over a span found by RecordInfo, then pause, resume,
//! speed and seek by INFO (MANSRTSP), watched as an HTTP-FLV viewer sees it. The viewer's
//! timestamps never go back, frames stop while paused, come twice as fast at scale 2 with the
//! output clock still at real time, a seek lands within one GOP of its target, and the end of
//! the span (the camera's `MediaStatus` 121) closes the session. The capture decodes in ffprobe.

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{eventually, get_json, Events, MediaProc, SipProc};
use testkit::RedisServer;

/// What the viewer received: (when, FLV timestamp ms) of each video tag, and the bytes.
#[derive(Default)]
struct Capture {
    video: Vec<(Instant, u32)>,
    bytes: Vec<u8>,
    ended: bool,
}

fn watch(url: String) -> Arc<Mutex<Capture>> {
    let cap = Arc::new(Mutex::new(Capture::default()));
    let c = cap.clone();
    tokio::spawn(async move {
        let mut r = reqwest::get(&url).await.unwrap();
        let mut pos = 13;
        while let Ok(Some(chunk)) = r.chunk().await {
            let mut g = c.lock().unwrap();
            let now = Instant::now();
            g.bytes.extend_from_slice(&chunk);
            while g.bytes.len() >= pos + 11 {
                let b = &g.bytes;
                let size = u32::from_be_bytes([0, b[pos + 1], b[pos + 2], b[pos + 3]]) as usize;
                if b.len() < pos + 11 + size + 4 {
                    break;
                }
                let ts = u32::from_be_bytes([b[pos + 7], b[pos + 4], b[pos + 5], b[pos + 6]]);
                // Video frames only (not the sequence header).
                if b[pos] == 9 && size > 1 && b[pos + 12] == 1 {
                    g.video.push((now, ts));
                }
                pos += 11 + size + 4;
            }
        }
        c.lock().unwrap().ended = true;
    });
    cap
}

/// Video frames received in `[from, from + d)`, and their FLV timestamps' span.
fn window(cap: &Arc<Mutex<Capture>>, from: Instant, d: Duration) -> (usize, u32) {
    let g = cap.lock().unwrap();
    let w: Vec<u32> = g.video.iter().filter(|(t, _)| *t >= from && *t < from + d).map(|(_, ts)| *ts).collect();
    (w.len(), w.last().zip(w.first()).map_or(0, |(l, f)| l - f))
}

async fn control(sip: &SipProc, stream: &str, body: Value) -> (u16, Value) {
    let r = reqwest::Client::new().post(sip.api(&format!("/api/v1/streams/{stream}/playback"))).json(&body).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn source_ms(media: &MediaProc, stream: &str) -> u64 {
    media.stream(stream).await["source_ms"].as_u64().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_plays_pauses_speeds_seeks_and_ends_with_a_timeline_that_never_goes_back() {
    let redis = RedisServer::start().expect("redis-server must be installed");
    let url = redis.url();
    let sip = SipProc::start(Some(&url), &[]);
    let media = MediaProc::start(Some(&url), &[]);
    let (_cam, dev, chs) = support::camera(&sip, "34020000001320000971", &[]).await;
    let ch = chs[0].clone();

    // A recording of the last two hours, found by RecordInfo; its first 20 s are played.
    let now = (kit::clock::now_ms() / 1000) as i64;
    let (_, recs) = get_json(&sip.api(&format!("/api/v1/devices/{dev}/channels/{ch}/records?start={}&end={now}", now - 7200))).await;
    let start = recs["items"][0]["start_unix"].as_i64().unwrap_or_else(|| panic!("{recs}"));
    let r = reqwest::Client::new()
        .post(sip.api(&format!("/api/v1/devices/{dev}/channels/{ch}/playback")))
        .json(&json!({"start": start.to_string(), "end": (start + 20).to_string()}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let answer: Value = r.json().await.unwrap();
    let stream = answer["stream_id"].as_str().unwrap().to_owned();
    assert!(stream.starts_with(&format!("{dev}_{ch}_pb")) && answer["kind"] == "playback", "{answer}");
    assert!(answer["ssrc"].as_str().unwrap().starts_with('1'), "a history SSRC: {answer}");
    let mut events = Events::open(&sip).await;
    let cap = watch(answer["urls"]["http_flv"].as_str().unwrap().to_owned());

    // 1×: about 25 frames a second.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let (n, _) = window(&cap, Instant::now() - Duration::from_millis(1000), Duration::from_millis(1000));
    assert!((18..=32).contains(&n), "1×: {n} frames in a second");

    // Pause: nothing comes (after what was in flight); the position holds.
    assert_eq!(control(&sip, &stream, json!({"action": "pause"})).await.0, 200);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let paused_at = Instant::now();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (n, _) = window(&cap, paused_at, Duration::from_millis(1500));
    assert!(n <= 1, "paused: {n} frames");
    let (_, pos) = get_json(&sip.api(&format!("/api/v1/streams/{stream}/playback"))).await;
    assert_eq!(pos["paused"], true, "{pos}");

    // Resume, then 2×: twice the frames per wall second, the output clock at real time.
    assert_eq!(control(&sip, &stream, json!({"action": "resume"})).await.0, 200);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let (code, r) = control(&sip, &stream, json!({"action": "speed", "scale": 2})).await;
    assert_eq!(code, 200, "{r}");
    tokio::time::sleep(Duration::from_millis(400)).await;
    let fast_from = Instant::now();
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let (n, ts_span) = window(&cap, fast_from, Duration::from_millis(2000));
    assert!((80..=120).contains(&n), "2×: {n} frames in 2 s");
    assert!((1500..=2500).contains(&ts_span), "2×: the timestamps span {ts_span} ms of 2 s");

    // Seek back to 5 s: the camera starts again at the key frame at or before it (GOP 1 s).
    let (code, r) = control(&sip, &stream, json!({"action": "seek", "position": 5.0})).await;
    assert_eq!(code, 200, "{r}");
    let seek_at = Instant::now();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let src = source_ms(&media, &stream).await;
    let played = seek_at.elapsed().as_millis() as u64 * 2;
    assert!((4000..=5000 + played).contains(&src), "after a seek to 5 s the camera sends {src} ms: {}", media.stream(&stream).await);
    let (_, pos) = get_json(&sip.api(&format!("/api/v1/streams/{stream}/playback"))).await;
    let p = pos["position_ms"].as_u64().unwrap();
    assert!((5000..=5000 + played + 1000).contains(&p), "position {p} ms: {pos}");

    // 8×: the rest of the span (≈ 12 s) takes under 2 s; the camera's MediaStatus 121 ends it.
    assert_eq!(control(&sip, &stream, json!({"action": "speed", "scale": 8})).await.0, 200);
    let closed = events.next("play", "end_of_file", Duration::from_secs(10)).await.expect("the session closes at the end of the span");
    assert_eq!(closed["stream_id"], stream.as_str());
    let (code, _) = get_json(&sip.api(&format!("/api/v1/streams/{stream}"))).await;
    assert_eq!(code, 404);
    assert!(eventually(Duration::from_secs(5), || async { cap.lock().unwrap().ended }).await, "the viewer's stream ends");

    // What the viewer saw: timestamps that never go back, through pause, speed and seek.
    let g = cap.lock().unwrap();
    let ts: Vec<u32> = g.video.iter().map(|(_, t)| *t).collect();
    assert!(ts.len() > 150, "{} frames", ts.len());
    let back: Vec<_> = ts.windows(2).filter(|w| w[1] <= w[0]).collect();
    assert!(back.is_empty(), "timestamps went back: {back:?}");
    let file = std::env::temp_dir().join(format!("gbc-playback-{}.flv", std::process::id()));
    std::fs::write(&file, &g.bytes).unwrap();
    drop(g);
    // Decoded by ffprobe (no muxer: at 8× frames are 5 ms apart, closer than a 25 fps muxer's tick).
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success() && out.stderr.is_empty(), "ffprobe: {}", String::from_utf8_lossy(&out.stderr));
    let decoded: usize = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or(0);
    assert!(decoded + 5 >= ts.len(), "decoded {decoded} of {} frames", ts.len());
    let frames = support::ffprobe_frames(file.to_str().unwrap(), &[]);
    assert!(frames.iter().any(|(codec, w, h, n)| codec == "h264" && (*w, *h) == (640, 360) && *n > 150), "{frames:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_playback_requests_are_refused_and_hold_nothing() {
    let redis = RedisServer::start().expect("redis-server must be installed");
    let url = redis.url();
    let sip = SipProc::start(Some(&url), &[]);
    let _media = MediaProc::start(Some(&url), &[]);
    let (_cam, dev, chs) = support::camera(&sip, "34020000001320000981", &[]).await;
    let ch = chs[0].clone();

    let (code, r) = control(&sip, "nobody_pb1", json!({"action": "pause"})).await;
    assert_eq!((code, r["kind"].as_str()), (404, Some("no_session")), "{r}");
    let start = (kit::clock::now_ms() / 1000) as i64 - 3600;
    let r = reqwest::Client::new()
        .post(sip.api(&format!("/api/v1/devices/{dev}/channels/{ch}/playback")))
        .json(&json!({"start": start.to_string(), "end": (start + 60).to_string()}))
        .send()
        .await
        .unwrap();
    let answer: Value = r.json().await.unwrap();
    let stream = answer["stream_id"].as_str().unwrap_or_else(|| panic!("{answer}")).to_owned();
    for (body, says) in [
        (json!({"action": "speed", "scale": 3}), "scale must be one of"),
        (json!({"action": "seek", "position": 60}), "position must be 0-60 s"),
        (json!({"action": "rewind"}), "action"),
    ] {
        let (code, r) = control(&sip, &stream, body.clone()).await;
        assert!(code == 400 && r["message"].as_str().unwrap_or_default().contains(says), "{body}: {code} {r}");
    }
    // A live stream takes no playback control.
    let live: Value = reqwest::Client::new()
        .post(sip.api(&format!("/api/v1/devices/{dev}/channels/{ch}/play")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (code, _) = control(&sip, live["stream_id"].as_str().unwrap(), json!({"action": "pause"})).await;
    assert_eq!(code, 400);
    // A span that ends before it starts.
    let r = reqwest::Client::new()
        .post(sip.api(&format!("/api/v1/devices/{dev}/channels/{ch}/playback")))
        .json(&json!({"start": "100", "end": "50"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    // Stopped: nothing is held.
    for id in [stream.as_str(), live["stream_id"].as_str().unwrap()] {
        let r = reqwest::Client::new().delete(sip.api(&format!("/api/v1/streams/{id}?all=true"))).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
    }
    let (_, all) = get_json(&sip.api("/api/v1/streams")).await;
    assert_eq!(all["total"], 0, "{all}");
}
