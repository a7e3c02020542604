//! Download of a gbsim camera's recording across real processes (Redis, a sip-server, a media
//! node, the camera): INVITE `s=Download` with `a=downloadspeed`, the media node writes a
//! faststart MP4 without transcoding, progress shows in the API while it runs, the device's
//! `MediaStatus` 121 finishes it, and the file is served with Range requests. ffprobe reads a
//! duration equal to the span within one GOP and ffmpeg decodes it to the end. A download is
//! cancelled at any time, and nothing of it is left.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{eventually, get_json, MediaProc, SipProc};
use testkit::RedisServer;

async fn post(sip: &SipProc, path: &str, body: Value) -> (u16, Value) {
    let r = reqwest::Client::new().post(sip.api(path)).json(&body).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// The top-level boxes of an MP4: their types in order.
fn top_boxes(file: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while at + 8 <= file.len() {
        let size = u32::from_be_bytes(file[at..at + 4].try_into().unwrap()) as u64;
        let size = if size == 1 { u64::from_be_bytes(file[at + 8..at + 16].try_into().unwrap()) } else { size };
        out.push(String::from_utf8_lossy(&file[at + 4..at + 8]).into_owned());
        if size < 8 {
            break;
        }
        at += size as usize;
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_downloads_at_its_speed_into_a_faststart_mp4_served_with_ranges() {
    let redis = RedisServer::start().expect("redis-server must be installed");
    let url = redis.url();
    let dir = std::env::temp_dir().join(format!("gbc-downloads-{}", std::process::id()));
    let sip = SipProc::start(Some(&url), &[]);
    let media = MediaProc::start(Some(&url), &[("GBC_STREAM__DOWNLOAD_DIR", dir.to_str().unwrap())]);
    let (_cam, dev, chs) = support::camera(&sip, "34020000001320000991", &[]).await;
    let ch = chs[0].clone();

    // 30 s of a recording found by RecordInfo, at 4×: about 7.5 s of wall time.
    let now = (kit::clock::now_ms() / 1000) as i64;
    let (_, recs) = get_json(&sip.api(&format!("/api/v1/devices/{dev}/channels/{ch}/records?start={}&end={now}", now - 7200))).await;
    let start = recs["items"][0]["start_unix"].as_i64().unwrap_or_else(|| panic!("{recs}"));
    let began = Instant::now();
    let body = json!({"start": start.to_string(), "end": (start + 30).to_string(), "speed": 4});
    let (code, answer) = post(&sip, &format!("/api/v1/devices/{dev}/channels/{ch}/download"), body).await;
    assert_eq!(code, 201, "{answer}");
    let id = answer["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with(&format!("{dev}_{ch}_dl")) && answer["url"].is_null(), "{answer}");
    assert_eq!(answer["speed"], 4);

    // Progress moves while it runs, then it is done with the file's URL.
    let status = sip.api(&format!("/api/v1/downloads/{id}"));
    let mut seen_progress = Vec::new();
    let done = loop {
        let (code, s) = get_json(&status).await;
        assert_eq!(code, 200, "{s}");
        if s["state"] == "done" {
            break s;
        }
        assert!(["writing", "finishing"].contains(&s["state"].as_str().unwrap()), "{s}");
        seen_progress.push(s["progress"].as_f64().unwrap());
        assert!(began.elapsed() < Duration::from_secs(25), "not done after 25 s: {s}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let wall = began.elapsed();
    assert!(seen_progress.iter().any(|p| *p > 0.1 && *p < 1.0), "progress seen: {seen_progress:?}");
    assert!(seen_progress.windows(2).all(|w| w[1] >= w[0]), "progress went back: {seen_progress:?}");
    // At 4× a 30 s span takes about 7.5 s; 1× would be 30 s.
    assert!(wall > Duration::from_secs(5) && wall < Duration::from_secs(16), "30 s at 4× took {wall:?}");
    assert_eq!(done["progress"], 1.0, "{done}");
    let (_, gone) = get_json(&sip.api(&format!("/api/v1/streams/{id}"))).await;
    assert_eq!(gone["kind"], "no_session", "the session ended with the device's end of file: {gone}");

    // The file: faststart (moov before mdat), whole and by ranges.
    let file_url = done["url"].as_str().unwrap_or_else(|| panic!("{done}")).to_owned();
    let whole = reqwest::get(&file_url).await.unwrap();
    assert_eq!(whole.status().as_u16(), 200);
    assert_eq!(whole.headers()["accept-ranges"], "bytes");
    let bytes = whole.bytes().await.unwrap();
    assert_eq!(done["bytes"].as_u64(), Some(bytes.len() as u64), "{done}");
    assert_eq!(top_boxes(&bytes), ["ftyp", "moov", "mdat"]);
    let client = reqwest::Client::new();
    let part = client.get(&file_url).header("Range", "bytes=100-1099").send().await.unwrap();
    assert_eq!(part.status().as_u16(), 206);
    assert_eq!(part.headers()["content-range"], format!("bytes 100-1099/{}", bytes.len()).as_str());
    assert_eq!(part.bytes().await.unwrap(), bytes.slice(100..1100));
    let tail = client.get(&file_url).header("Range", "bytes=-500").send().await.unwrap();
    assert_eq!(tail.bytes().await.unwrap(), bytes.slice(bytes.len() - 500..));
    let past = client.get(&file_url).header("Range", format!("bytes={}-", bytes.len())).send().await.unwrap();
    assert_eq!(past.status().as_u16(), 416);

    // ffprobe: the duration is the span's within one GOP (1 s); ffmpeg decodes every frame.
    let file = dir.join("probe.mp4");
    std::fs::write(&file, &bytes).unwrap();
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "format=duration:stream=codec_name,width,height", "-of", "json"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success() && out.stderr.is_empty(), "ffprobe: {}", String::from_utf8_lossy(&out.stderr));
    let probe: Value = serde_json::from_slice(&out.stdout).unwrap();
    let duration: f64 = probe["format"]["duration"].as_str().unwrap().parse().unwrap();
    assert!((29.0..=31.0).contains(&duration), "duration {duration} s of a 30 s span: {probe}");
    assert!(probe["streams"].as_array().unwrap().iter().any(|s| s["codec_name"] == "h264" && s["width"] == 640), "{probe}");
    let decoded =
        Command::new("ffmpeg").args(["-v", "error", "-i"]).arg(&file).args(["-map", "0:v", "-f", "framemd5", "-"]).output().unwrap();
    assert!(decoded.status.success() && decoded.stderr.is_empty(), "ffmpeg: {}", String::from_utf8_lossy(&decoded.stderr));
    let frames = String::from_utf8_lossy(&decoded.stdout).lines().filter(|l| !l.starts_with('#')).count();
    assert!((725..=775).contains(&frames), "{frames} frames decoded of 30 s at 25 fps");
    eprintln!(
        "download: 30 s at 4x in {wall:?}, {} bytes, duration {duration} s, {frames} frames decoded, progress seen {seen_progress:?}",
        bytes.len()
    );

    // Listed; deleted: the file goes with it.
    let (_, all) = get_json(&sip.api("/api/v1/downloads")).await;
    assert!(all["items"].as_array().unwrap().iter().any(|d| d["id"] == id.as_str()), "{all}");
    let r = client.delete(sip.api(&format!("/api/v1/downloads/{id}"))).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 204);
    assert_eq!(reqwest::get(&file_url).await.unwrap().status().as_u16(), 404);
    assert_eq!(get_json(&status).await.0, 404);
    let _ = std::fs::remove_dir_all(&dir);
    drop(media);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_is_cancelled_at_any_time_and_bad_requests_name_their_field() {
    let redis = RedisServer::start().expect("redis-server must be installed");
    let url = redis.url();
    let dir = std::env::temp_dir().join(format!("gbc-downloads-cancel-{}", std::process::id()));
    let sip = SipProc::start(Some(&url), &[]);
    let media = MediaProc::start(Some(&url), &[("GBC_STREAM__DOWNLOAD_DIR", dir.to_str().unwrap())]);
    let (_cam, dev, chs) = support::camera(&sip, "34020000001320000995", &[]).await;
    let ch = chs[0].clone();

    let download = format!("/api/v1/devices/{dev}/channels/{ch}/download");
    let start = (kit::clock::now_ms() / 1000) as i64 - 3600;
    for (body, says) in [
        (json!({"start": start.to_string(), "end": (start + 60).to_string(), "speed": 9}), "speed must be 1-8, not 9"),
        (json!({"start": "100", "end": "50"}), "end"),
        (json!({"start": "100"}), "missing field"),
    ] {
        let (code, r) = post(&sip, &download, body.clone()).await;
        assert!(code == 400 && r["message"].as_str().unwrap_or_default().contains(says), "{body}: {code} {r}");
    }
    // An hour at 1×, cancelled two seconds in: the session, the receiver and the file go.
    let (code, answer) = post(&sip, &download, json!({"start": start.to_string(), "end": (start + 3600).to_string(), "speed": 1})).await;
    assert_eq!(code, 201, "{answer}");
    let id = answer["id"].as_str().unwrap().to_owned();
    let status = sip.api(&format!("/api/v1/downloads/{id}"));
    assert!(
        eventually(Duration::from_secs(10), || async { get_json(&status).await.1["media_ms"].as_u64().unwrap_or(0) > 1000 }).await,
        "media is written: {}",
        get_json(&status).await.1
    );
    assert!(std::fs::read_dir(&dir).unwrap().count() > 0, "the payload is being written");
    let r = reqwest::Client::new().delete(sip.api(&format!("/api/v1/downloads/{id}"))).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 204);
    assert_eq!(get_json(&status).await.0, 404);
    assert_eq!(get_json(&sip.api(&format!("/api/v1/streams/{id}"))).await.0, 404);
    assert!(
        eventually(Duration::from_secs(5), || async { get_json(&media.url(&format!("/api/v1/streams/{id}"))).await.0 == 404 }).await,
        "the receiver is closed"
    );
    assert!(
        eventually(Duration::from_secs(5), || async { std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0) == 0 }).await,
        "files left: {:?}",
        std::fs::read_dir(&dir).unwrap().flatten().map(|f| f.file_name()).collect::<Vec<_>>()
    );
    let r = reqwest::Client::new().delete(sip.api(&format!("/api/v1/downloads/{id}"))).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 404);
    let _ = std::fs::remove_dir_all(&dir);
}
