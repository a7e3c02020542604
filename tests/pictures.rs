//! Pictures of live streams on a real media node: a snapshot (`/snap/{id}.jpg`) of an H.264 and
//! an H.265 stream decodes to the stream's size, and of a one-colour stream to that colour; one
//! decode serves many askers of the same key frame. MJPEG server push (`/live/{id}.mjpeg`) sends
//! one part with its Content-Length per picture at the configured rate, keeps sending to one
//! viewer when another is killed mid-part, stops its encoder with the last viewer, and plays
//! as an `<img>` in Chromium.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use support::cdp::Chromium;
use support::{children, cpu_secs, fixture, MediaProc};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn source(name: &str) -> gbsim::media::MediaSource {
    gbsim::media::MediaSource::load(&fixture(name), 25.0, None).expect("fixture")
}

/// (width, height) of a picture, by ffprobe.
fn size_of(jpeg: &[u8]) -> (u64, u64) {
    let path = std::env::temp_dir().join(format!("gbc-snap-{}-{}.jpg", std::process::id(), jpeg.len()));
    std::fs::write(&path, jpeg).unwrap();
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "stream=width,height", "-of", "csv=p=0"])
        .arg(&path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let mut it = text.split(',').map(|v| v.parse().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}

/// The mean colour of a picture (RGB), by ffmpeg scaling it to one pixel.
fn mean_colour(jpeg: &[u8]) -> [u8; 3] {
    let path = std::env::temp_dir().join(format!("gbc-mean-{}-{}.jpg", std::process::id(), jpeg.len()));
    std::fs::write(&path, jpeg).unwrap();
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(&path)
        .args(["-vf", "scale=1:1:flags=area", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .output()
        .unwrap();
    assert_eq!(out.stdout.len(), 3, "{}", String::from_utf8_lossy(&out.stderr));
    [out.stdout[0], out.stdout[1], out.stdout[2]]
}

fn metric(text: &str, name: &str) -> u64 {
    text.lines().find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok())).unwrap_or_else(|| panic!("no {name} in {text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_of_h264_and_h265_streams_decode_to_their_size_and_colour() {
    let node = MediaProc::start(None, &[]);
    let (stop_red, _) = node.feed_looping("red", 300_000_201, source("h264_red_2s.h264"), 10).await;
    let (stop_hevc, _) = node.feed_looping("hevc", 300_000_202, source("h265_320x240_2s.h265"), 10).await;

    let r = reqwest::get(node.url("/snap/red.jpg")).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["content-type"], "image/jpeg");
    let red = r.bytes().await.unwrap();
    assert_eq!(size_of(&red), (640, 360));
    let [r_, g, b] = mean_colour(&red);
    assert!(r_.abs_diff(192) <= 16 && g.abs_diff(32) <= 16 && b.abs_diff(32) <= 16, "mean colour {r_},{g},{b} of 192,32,32");
    let hevc = reqwest::get(node.url("/snap/hevc.jpg")).await.unwrap().bytes().await.unwrap();
    assert_eq!(size_of(&hevc), (320, 240), "H.265");

    // Twenty at once ask for the same key frame: one decode serves them (two if a new key frame
    // came in between).
    let before = reqwest::get(node.url("/metrics")).await.unwrap().text().await.unwrap();
    let asks = (0..20).map(|_| {
        let url = node.url("/snap/red.jpg");
        tokio::spawn(async move { reqwest::get(url).await.unwrap().bytes().await.unwrap() })
    });
    let pictures: Vec<_> = futures::future::join_all(asks).await.into_iter().map(|r| r.unwrap()).collect();
    let after = reqwest::get(node.url("/metrics")).await.unwrap().text().await.unwrap();
    let decodes = metric(&after, "gbc_media_snapshot_decodes_total ") - metric(&before, "gbc_media_snapshot_decodes_total ");
    assert!(decodes <= 2, "{decodes} decodes for 20 askers");
    assert!(pictures.iter().all(|p| p.starts_with(&[0xff, 0xd8]) && p.ends_with(&[0xff, 0xd9])));
    let distinct: std::collections::HashSet<_> = pictures.iter().collect();
    assert!(distinct.len() <= 2, "{} different pictures", distinct.len());

    // Latency, one key frame apart (GOP 1 s), for docs/benchmarks.md.
    let mut took = Vec::new();
    for _ in 0..12 {
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let t = Instant::now();
        let r = reqwest::get(node.url("/snap/red.jpg")).await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
        r.bytes().await.unwrap();
        took.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    took.sort_by(f64::total_cmp);
    eprintln!(
        "snapshot latency (ms) p50 {:.1} p95 {:.1}: {took:.1?}",
        took[took.len() / 2],
        took[(took.len() * 95 / 100).min(took.len() - 1)]
    );

    assert_eq!(reqwest::get(node.url("/snap/nobody.jpg")).await.unwrap().status().as_u16(), 404);
    stop_red.cancel();
    stop_hevc.cancel();
}

/// Reads MJPEG parts from a response: (arrival, JPEG) each, until `until`.
async fn read_parts(resp: &mut reqwest::Response, until: Instant) -> Vec<(Instant, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut parts = Vec::new();
    while Instant::now() < until {
        let Ok(Ok(Some(chunk))) = tokio::time::timeout(until - Instant::now(), resp.chunk()).await else { break };
        buf.extend_from_slice(&chunk);
        while let Some(head_end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
            assert!(head.starts_with("--gbcframe\r\n") && head.contains("Content-Type: image/jpeg"), "{head}");
            let len: usize =
                head.lines().find_map(|l| l.strip_prefix("Content-Length: ")).and_then(|v| v.parse().ok()).expect("Content-Length");
            if buf.len() < head_end + 4 + len + 2 {
                break;
            }
            let jpeg = buf[head_end + 4..head_end + 4 + len].to_vec();
            assert_eq!(&buf[head_end + 4 + len..head_end + 6 + len], b"\r\n");
            buf.drain(..head_end + 6 + len);
            parts.push((Instant::now(), jpeg));
        }
    }
    parts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mjpeg_push_sends_parts_at_its_rate_and_a_viewer_killed_mid_part_costs_the_others_nothing() {
    let node = MediaProc::start(None, &[("GBC_STREAM__MJPEG_FPS", "5")]);
    let (stop, _) = node.feed_looping("mj", 300_000_203, source("h264_640x360_4s.h264"), 10).await;
    let url = node.url("/live/mj.mjpeg");

    let mut a = reqwest::get(&url).await.unwrap();
    assert_eq!(a.status().as_u16(), 200);
    assert_eq!(a.headers()["content-type"], "multipart/x-mixed-replace; boundary=gbcframe");
    // The encoder starts with the first viewer; then about 5 pictures a second.
    let first = read_parts(&mut a, Instant::now() + Duration::from_secs(3)).await;
    assert!(!first.is_empty(), "no picture within 3 s");
    let parts = read_parts(&mut a, Instant::now() + Duration::from_secs(3)).await;
    assert!((11..=19).contains(&parts.len()), "{} pictures in 3 s at 5 fps", parts.len());
    assert!(parts.iter().all(|(_, j)| j.starts_with(&[0xff, 0xd8]) && j.ends_with(&[0xff, 0xd9])));
    assert_eq!(size_of(&parts[0].1), (640, 360));
    assert_ne!(parts.first().unwrap().1, parts.last().unwrap().1, "the picture changes");

    // Viewer B reads a few bytes of a part and goes, as a killed process does (its socket
    // closed by the kernel; the node's next writes to it fail): A keeps receiving.
    let addr = url.trim_start_matches("http://").split('/').next().unwrap().to_owned();
    let mut b = tokio::net::TcpStream::connect(&addr).await.unwrap();
    b.write_all(b"GET /live/mj.mjpeg HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut some = [0u8; 300];
    let n = b.read(&mut some).await.unwrap();
    assert!(n > 0);
    drop(b);
    let after = read_parts(&mut a, Instant::now() + Duration::from_secs(2)).await;
    assert!(after.len() >= 6, "{} pictures in the 2 s after another viewer was killed", after.len());

    // The last viewer goes: the encoder stops.
    drop(a);
    let stopped = support::eventually(Duration::from_secs(5), || async { node.log_text().contains("MJPEG encoder stopped") }).await;
    assert!(stopped, "the encoder stops with the last viewer");

    // In Chromium as an <img>: it shows the stream's size and changes over time.
    let chromium = Chromium::start();
    let mut page = chromium.open("about:blank").await;
    page.eval(&format!("document.body.style.margin = '0'; const i = new Image(); i.src = '{url}'; document.body.append(i); 1")).await;
    let shown = page.wait_for("document.images[0] && document.images[0].naturalWidth", Duration::from_secs(10)).await;
    assert_eq!(shown, serde_json::json!(640));
    let one = std::fs::read(page.screenshot("mjpeg_img_a").await).unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let two = std::fs::read(page.screenshot("mjpeg_img_b").await).unwrap();
    assert_ne!(one, two, "the <img> changes over time");
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_snapshot_plays_it_for_the_moment_it_takes_or_uses_its_play() {
    let redis = testkit::RedisServer::start().expect("redis-server must be installed");
    let sip = support::SipProc::start(Some(&redis.url()), &[]);
    let _media = MediaProc::start(Some(&redis.url()), &[]);
    let (_cam, dev, chs) = support::camera(&sip, "34020000001320000681", &[]).await;
    let ch = chs[0].clone();

    // Not playing: played, pictured, released.
    let snap = sip.api(&format!("/api/v1/devices/{dev}/channels/{ch}/snapshot"));
    let t = Instant::now();
    let r = reqwest::get(&snap).await.unwrap();
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().await.unwrap_or_default());
    assert_eq!(r.headers()["content-type"], "image/jpeg");
    let jpeg = r.bytes().await.unwrap();
    eprintln!("snapshot of a channel not playing: {:?}", t.elapsed());
    assert_eq!(size_of(&jpeg), (640, 360));
    let streams = sip.api("/api/v1/streams");
    assert!(
        support::eventually(Duration::from_secs(5), || async { support::get_json(&streams).await.1["total"] == 0 }).await,
        "the snapshot's play is released"
    );

    // Playing: its picture, and the play stays with its one holder.
    let r = reqwest::Client::new().post(sip.api(&format!("/api/v1/devices/{dev}/channels/{ch}/play"))).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = reqwest::get(&snap).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.bytes().await.unwrap().starts_with(&[0xff, 0xd8]));
    let (_, all) = support::get_json(&streams).await;
    assert_eq!((all["total"].as_u64(), all["items"][0]["holders"].as_u64()), (Some(1), Some(1)), "{all}");
    // A channel the device does not have.
    let r = reqwest::get(sip.api(&format!("/api/v1/devices/{dev}/channels/34020000001310009999/snapshot"))).await.unwrap();
    assert_eq!(r.status().as_u16(), 404);
}

/// Figure for docs/benchmarks.md: CPU of the media node and of the stream's one encoder with 1
/// and with 100 MJPEG viewers of one 640×360 stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: cargo test -p gbcluster --test pictures bench_ -- --ignored --nocapture"]
async fn bench_mjpeg_viewers_of_one_stream() {
    let node = MediaProc::start(None, &[("GBC_STREAM__MJPEG_FPS", "5"), ("RUST_LOG", "warn")]);
    let (stop, _) = node.feed_looping("bench", 300_000_299, source("h264_640x360_4s.h264"), 10).await;
    for viewers in [1usize, 100] {
        let got = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let cancel = tokio_util::sync::CancellationToken::new();
        for _ in 0..viewers {
            support::count_bytes_of(node.url("/live/bench.mjpeg"), got.clone(), cancel.clone());
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
        let encoders = children(node.pid());
        let (node0, enc0) = (cpu_secs(node.pid()), encoders.iter().map(|p| cpu_secs(*p)).sum::<f64>());
        let bytes0 = got.load(std::sync::atomic::Ordering::Relaxed);
        tokio::time::sleep(Duration::from_secs(10)).await;
        let (node1, enc1) = (cpu_secs(node.pid()), encoders.iter().map(|p| cpu_secs(*p)).sum::<f64>());
        let mbps = (got.load(std::sync::atomic::Ordering::Relaxed) - bytes0) as f64 * 8.0 / 10.0 / 1e6;
        eprintln!(
            "{viewers} MJPEG viewers: media node {:.1}% of a core, encoders ({}) {:.1}%, {mbps:.1} Mbit/s delivered",
            (node1 - node0) * 10.0,
            encoders.len(),
            (enc1 - enc0) * 10.0
        );
        cancel.cancel();
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gallery_saves_lists_serves_deletes_prunes_and_takes_pictures_on_a_schedule() {
    let redis = testkit::RedisServer::start().expect("redis-server must be installed");
    let dir = std::env::temp_dir().join(format!("gbc-gallery-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let env = [("GBC_SIP__SNAPSHOTS__DIR", dir.to_str().unwrap()), ("GBC_SIP__SNAPSHOTS__KEEP_PER_CHANNEL", "3")];
    let sip = support::SipProc::start(Some(&redis.url()), &env);
    let _media = MediaProc::start(Some(&redis.url()), &[]);
    let (_cam, dev, chs) = support::camera(&sip, "34020000001320000691", &[]).await;
    let client = reqwest::Client::new();
    let save = |ch: &str| client.post(sip.api(&format!("/api/v1/devices/{dev}/channels/{ch}/snapshots"))).send();

    // Four pictures of the first channel: the newest three are kept (keep_per_channel 3).
    let mut saved = Vec::new();
    for _ in 0..4 {
        let r = save(&chs[0]).await.unwrap();
        assert_eq!(r.status().as_u16(), 201);
        saved.push(r.json::<serde_json::Value>().await.unwrap());
    }
    let id = saved[3]["id"].as_str().unwrap();
    assert!(id.ends_with(".jpg") && id.contains(&format!("/{dev}_{}/", chs[0])), "{id}");
    assert!(dir.join(id).is_file(), "under <dir>/YYYY/MM/DD/<stream>/");
    let list = |q: String| {
        let url = sip.api(&format!("/api/v1/snapshots?{q}"));
        async move { support::get_json(&url).await.1 }
    };
    let one = list(format!("device={dev}&channel={}", chs[0])).await;
    assert_eq!(one["total"], 3, "{one}");
    let ids: Vec<&str> = one["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap()).collect();
    let newest: Vec<&str> = saved.iter().rev().take(3).map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(ids, newest, "newest first; the oldest pruned");
    let jpeg = reqwest::get(sip.api(saved[3]["url"].as_str().unwrap())).await.unwrap().bytes().await.unwrap();
    assert_eq!(size_of(&jpeg), (640, 360));
    let tmp = walk(&dir).into_iter().filter(|p| !p.ends_with(".jpg")).collect::<Vec<_>>();
    assert!(tmp.is_empty(), "nothing half-written is left: {tmp:?}");

    // Another channel; a page of the device's; one deleted; a range deleted.
    assert_eq!(save(&chs[1]).await.unwrap().status().as_u16(), 201);
    assert_eq!(list(format!("device={dev}")).await["total"], 4);
    let page = list(format!("device={dev}&offset=1&limit=2")).await;
    assert_eq!((page["total"].as_u64(), page["items"].as_array().unwrap().len()), (Some(4), 2));
    // By time: Unix seconds or RFC 3339; nothing before the first picture.
    let first_s = saved[0]["taken_ms"].as_u64().unwrap() / 1000;
    assert_eq!(list(format!("device={dev}&to={first_s}")).await["total"], 0);
    assert_eq!(list(format!("device={dev}&from={first_s}")).await["total"], 4);
    assert_eq!(list(format!("device={dev}&from=2000-01-01T00:00:00Z")).await["total"], 4);
    assert!(list(format!("device={dev}&from=yesterday")).await["message"].as_str().is_some_and(|m| m.contains("from must be")));
    let r = client.delete(sip.api(saved[3]["url"].as_str().unwrap())).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 204);
    assert_eq!(reqwest::get(sip.api(saved[3]["url"].as_str().unwrap())).await.unwrap().status().as_u16(), 404);
    let r = client.delete(sip.api(&format!("/api/v1/snapshots?device={dev}&channel={}", chs[0]))).send().await.unwrap();
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["deleted"], 2);
    assert_eq!(list(format!("device={dev}")).await["total"], 1);
    // An id that is not a gallery path names nothing.
    for bad in ["..%2F..%2Fetc%2Fpasswd", "2026/12/01/x/../../../../etc/passwd", "nothing.jpg"] {
        assert_eq!(reqwest::get(sip.api(&format!("/api/v1/snapshots/{bad}"))).await.unwrap().status().as_u16(), 404, "{bad}");
    }

    // A schedule: a picture at once, then every 10 s; ended with 0.
    let schedule = sip.api(&format!("/api/v1/devices/{dev}/channels/{}/snapshot-schedule", chs[1]));
    let r = client.put(&schedule).json(&serde_json::json!({"every_secs": 5})).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 400, "too often for a camera");
    let r = client.put(&schedule).json(&serde_json::json!({"every_secs": 10})).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let ch1 = format!("device={dev}&channel={}", chs[1]);
    assert!(
        support::eventually(Duration::from_secs(8), || async { list(ch1.clone()).await["total"] == 2 }).await,
        "the scheduled picture: {}",
        list(ch1.clone()).await
    );
    let r = client.put(&schedule).json(&serde_json::json!({"every_secs": 0})).send().await.unwrap();
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["every_secs"], serde_json::Value::Null);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every file under `dir`.
fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p.display().to_string());
        }
    }
    out
}
