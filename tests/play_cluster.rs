//! Play on demand across a cluster, every part real and in its own process: Redis, two
//! sip-servers, two stream-servers, gbsim cameras (UDP and TCP signalling), ffprobe reading the
//! streams back over HTTP-FLV and RTMP.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{eventually, get_json, MediaProc, SimProc, SipProc};
use testkit::RedisServer;

/// Sim devices: "A" cameras register over UDP, "B" over TCP.
const CAM_A: &str = "34020000001320000001";
const CAM_B: &str = "34020000001320000101";

/// The channel ids gbsim gives device `index` (2 channels each), as in `gbsim::device`.
fn channel(first_id: &str, index: usize, j: usize) -> String {
    gbsim::device::channel_ids(&gbsim::device_id(first_id, index).unwrap(), index, 2)[j].clone()
}

fn dev(first_id: &str, index: usize) -> String {
    gbsim::device_id(first_id, index).unwrap()
}

async fn play(sip: &SipProc, device: &str, channel: &str, transport: Option<&str>) -> (u16, Value) {
    let body = match transport {
        Some(t) => serde_json::json!({ "transport": t }).to_string(),
        None => String::new(),
    };
    let r = reqwest::Client::new()
        .post(sip.api(&format!("/api/v1/devices/{device}/channels/{channel}/play")))
        .body(body)
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .expect("play request");
    let code = r.status().as_u16();
    (code, r.json().await.unwrap_or(Value::Null))
}

async fn stop(sip: &SipProc, stream_id: &str, all: bool) -> (u16, Value) {
    let r = reqwest::Client::new()
        .delete(sip.api(&format!("/api/v1/streams/{stream_id}?all={all}")))
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .expect("stop request");
    let code = r.status().as_u16();
    (code, r.json().await.unwrap_or(Value::Null))
}

/// Waits until the device is online with its catalog stored (a play checks the channel).
async fn wait_ready(sip: &SipProc, device: &str) {
    let ok = eventually(Duration::from_secs(20), || async {
        let (code, v) = get_json(&sip.api(&format!("/api/v1/devices/{device}/channels"))).await;
        code == 200 && v["total"].as_u64() == Some(2)
    })
    .await;
    assert!(ok, "{device} never registered with its catalog; sip log:\n{}", sip.log_text());
}

/// ffprobe reading the first `packets` packets of a live URL: (codec, width, height, frames) per
/// stream. (Counted in packets, not seconds: RTMP's onMetaData carries timestamp 0, which a
/// time interval would start from.)
fn probe(url: &str, packets: u32) -> Vec<(String, u64, u64, u64)> {
    let out = Command::new("timeout")
        .arg("25")
        .args(["ffprobe", "-v", "error", "-read_intervals", &format!("%+#{packets}")])
        .args(support::FFPROBE_COUNT)
        .arg(url)
        .output()
        .expect("ffprobe must be installed");
    support::parse_ffprobe(&out.stdout)
}

fn assert_decodes(url: &str) {
    let streams = probe(url, 100);
    let video = streams.iter().find(|s| s.0 == "h264").unwrap_or_else(|| panic!("no H.264 from {url}: {streams:?}"));
    assert_eq!((video.1, video.2), (640, 360), "{url}");
    assert!(video.3 >= 25, "{url}: only {} video frames in 100 packets", video.3);
    assert!(streams.iter().any(|s| s.0 == "aac" && s.3 > 0), "{url}: no AAC: {streams:?}");
}

async fn sessions(sip: &SipProc) -> Vec<Value> {
    get_json(&sip.api("/api/v1/streams")).await.1["items"].as_array().cloned().unwrap_or_default()
}

async fn node_streams(m: &MediaProc) -> Vec<String> {
    let v = get_json(&m.url("/api/v1/streams")).await.1;
    v["items"].as_array().map(|a| a.iter().filter_map(|s| s["stream_id"].as_str().map(str::to_owned)).collect()).unwrap_or_default()
}

async fn redis_hlen(url: &str, key: &str) -> i64 {
    let client = redis::Client::open(url).expect("redis url");
    let mut c = client.get_multiplexed_async_connection().await.expect("redis");
    redis::cmd("HLEN").arg(key).query_async(&mut c).await.expect("HLEN")
}

async fn load_sum(url: &str) -> i64 {
    let client = redis::Client::open(url).expect("redis url");
    let mut c = client.get_multiplexed_async_connection().await.expect("redis");
    let v: Vec<(String, i64)> = redis::cmd("HGETALL").arg("{gbc}:load:media").query_async(&mut c).await.expect("HGETALL");
    v.iter().map(|(_, n)| n).sum()
}

fn media_env<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut v = vec![("GBC_STREAM__HEARTBEAT_SECS", "1"), ("GBC_STREAM__HEARTBEAT_TTL_SECS", "2")];
    v.extend_from_slice(extra);
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn plays_spread_over_the_cluster_route_between_nodes_and_move_when_a_media_node_dies() {
    let redis = RedisServer::start().expect("redis-server must be installed");
    let url = redis.url();
    let sip_env =
        [("GBC_SIP__PLAY__NO_VIEWER_SECS", "0"), ("GBC_SIP__KEEPALIVE_INTERVAL_SECS", "5"), ("GBC_SIP__PLAY__MEDIA_CHECK_MS", "300")];
    let sip_a = SipProc::start(Some(&url), &[("GBC_SIP__NODE_ID", "sip-a"), sip_env[0], sip_env[1], sip_env[2]]);
    let mut sip_b = SipProc::start(Some(&url), &[("GBC_SIP__NODE_ID", "sip-b"), sip_env[0], sip_env[1], sip_env[2]]);

    // Before any media node: a play has nowhere to go.
    let _cams_a = SimProc::start(sip_a.sip_addr(), CAM_A, 2, "udp", &[("GBC_SIM__KEEPALIVE_SECS", "5")]);
    let _cams_b = SimProc::start(sip_b.sip_addr(), CAM_B, 1, "tcp", &[("GBC_SIM__KEEPALIVE_SECS", "5")]);
    for d in [dev(CAM_A, 0), dev(CAM_A, 1)] {
        wait_ready(&sip_a, &d).await;
    }
    wait_ready(&sip_b, &dev(CAM_B, 0)).await;
    let (code, v) = play(&sip_a, &dev(CAM_A, 0), &channel(CAM_A, 0, 0), None).await;
    assert_eq!(code, 503, "no media node: {v}");
    assert!(v["message"].as_str().unwrap_or("").contains("no media node"), "{v}");
    assert_eq!(redis_hlen(&url, "{gbc}:ssrcs").await, 0, "the failed play gave its SSRC back");

    let mut m1 = MediaProc::start(Some(&url), &media_env(&[]));
    let m2 = MediaProc::start(Some(&url), &media_env(&[]));
    let ids = [format!("media-{}", m1.http_port), format!("media-{}", m2.http_port)];
    let ok = eventually(Duration::from_secs(10), || async {
        let (_, v) = get_json(&m1.url("/api/v1/node")).await;
        v["id"].is_string() && get_json(&m2.url("/api/v1/node")).await.1["id"].is_string()
    })
    .await;
    assert!(ok);
    tokio::time::sleep(Duration::from_millis(1200)).await; // both heartbeats in the Store

    // Four plays, each through the node that does NOT hold the camera's connection (routed
    // over Redis), one per transport plus the default.
    let plays = [
        (&sip_b, dev(CAM_A, 0), channel(CAM_A, 0, 0), Some("udp")),
        (&sip_b, dev(CAM_A, 1), channel(CAM_A, 1, 0), Some("tcp-passive")),
        (&sip_a, dev(CAM_B, 0), channel(CAM_B, 0, 0), Some("tcp-active")),
        (&sip_a, dev(CAM_B, 0), channel(CAM_B, 0, 1), None),
    ];
    let mut streams = Vec::new();
    for (sip, d, ch, t) in &plays {
        let started = Instant::now();
        let (code, v) = play(sip, d, ch, *t).await;
        assert_eq!(code, 200, "play {d}/{ch} {t:?}: {v}\nsip-a:\n{}\nsip-b:\n{}", sip_a.log_text(), sip_b.log_text());
        println!("play {d}/{ch} over {t:?}: {} ms", started.elapsed().as_millis());
        assert_eq!(v["stream_id"], format!("{d}_{ch}"));
        assert_eq!(v["joined"], false);
        assert_eq!(v["ssrc"].as_str().unwrap().len(), 10);
        assert!(v["ssrc"].as_str().unwrap().starts_with("020000"), "GB live SSRC: 0 + domain digits: {v}");
        streams.push(v);
    }
    // Default transport for a TCP-registered camera is TCP passive.
    assert_eq!(streams[3]["transport"], "tcp-passive");
    // Spread by load: two on each node.
    for id in &ids {
        assert_eq!(streams.iter().filter(|s| s["media_node"] == id.as_str()).count(), 2, "spread: {streams:?}");
    }
    let ssrcs: std::collections::HashSet<&str> = streams.iter().map(|s| s["ssrc"].as_str().unwrap()).collect();
    assert_eq!(ssrcs.len(), 4, "SSRCs unique");

    // Every stream decodes from HTTP-FLV; two from RTMP too.
    for s in &streams {
        assert_decodes(s["urls"]["http_flv"].as_str().unwrap());
    }
    for s in &streams[..2] {
        // Fragmented MP4 for browsers, from the same media node.
        assert_decodes(s["urls"]["fmp4"].as_str().unwrap());
        assert_decodes(s["urls"]["rtmp"].as_str().unwrap());
    }

    // A second play of a running channel joins it; stopping releases one holder at a time.
    let first = streams[0]["stream_id"].as_str().unwrap().to_owned();
    let (code, v) = play(&sip_a, &dev(CAM_A, 0), &channel(CAM_A, 0, 0), None).await;
    assert_eq!((code, v["joined"].as_bool(), v["holders"].as_u64()), (200, Some(true), Some(2)), "{v}");
    assert_eq!(v["stream_id"], first.as_str());
    let (code, v) = stop(&sip_b, &first, false).await;
    assert_eq!((code, v["ended"].as_bool()), (200, Some(false)), "{v}");
    let node_of_first = if streams[0]["media_node"] == ids[0].as_str() { &m1 } else { &m2 };
    assert!(node_streams(node_of_first).await.contains(&first), "still held by one play");
    let (code, v) = stop(&sip_a, &first, false).await;
    assert_eq!((code, v["ended"].as_bool()), (200, Some(true)), "{v}");
    assert!(!node_streams(node_of_first).await.contains(&first), "receiver closed, port freed");
    assert_eq!(stop(&sip_a, &first, false).await.0, 404);
    assert_eq!(redis_hlen(&url, "{gbc}:ssrcs").await, 3);
    assert!(sip_a.log_text().contains("play session closed"), "the owner (sip-a) tore it down");

    // Kill one media node outright: its sessions come back on the other under the same ids.
    let on_m1: Vec<String> =
        streams[1..].iter().filter(|s| s["media_node"] == ids[0].as_str()).map(|s| s["stream_id"].as_str().unwrap().to_owned()).collect();
    assert!(!on_m1.is_empty());
    let killed = Instant::now();
    m1.kill();
    let moved = eventually(Duration::from_secs(30), || async {
        let all = sessions(&sip_a).await;
        on_m1
            .iter()
            .all(|id| all.iter().any(|s| s["stream_id"] == id.as_str() && s["media_node"] == ids[1].as_str() && s["state"] == "playing"))
    })
    .await;
    let took = killed.elapsed();
    assert!(moved, "sessions did not move; sip-a:\n{}\nsip-b:\n{}", sip_a.log_text(), sip_b.log_text());
    let all = sessions(&sip_a).await;
    let recoveries: Vec<u64> = all
        .iter()
        .filter(|s| on_m1.contains(&s["stream_id"].as_str().unwrap().to_owned()))
        .filter_map(|s| s["last_recovery_ms"].as_u64())
        .collect();
    println!(
        "media node killed → sessions playing on the other node: {} ms (heartbeat TTL 2 s); re-INVITE part: {recoveries:?} ms",
        took.as_millis()
    );
    for id in &on_m1 {
        let s = all.iter().find(|s| s["stream_id"] == id.as_str()).unwrap();
        assert_eq!(s["recoveries"], 1);
        assert_decodes(s["urls"]["http_flv"].as_str().unwrap());
    }

    // A media node stopped cleanly (SIGTERM) closes its streams for `shutdown`: they move at
    // once, without waiting for a TTL.
    let m3 = MediaProc::start(Some(&url), &media_env(&[]));
    let id3 = format!("media-{}", m3.http_port);
    tokio::time::sleep(Duration::from_millis(1200)).await; // its heartbeat in the Store
    let mut m2 = m2;
    let stopped = Instant::now();
    let _ = Command::new("kill").args(["-TERM", &m2.pid().to_string()]).status();
    let moved = eventually(Duration::from_secs(15), || async {
        let all = sessions(&sip_a).await;
        !all.is_empty() && all.iter().all(|s| s["media_node"] == id3.as_str() && s["state"] == "playing")
    })
    .await;
    assert!(moved, "sessions did not leave the stopped node; sip-a:\n{}", sip_a.log_text());
    println!("media node stopped (SIGTERM) → sessions playing on another: {} ms", stopped.elapsed().as_millis());
    let exiting = Instant::now();
    assert!(m2.terminate().success(), "clean exit");
    assert!(exiting.elapsed() < Duration::from_secs(2), "a clean stop takes no longer than its streams and events need");

    // A media node that dies and comes straight back under the same id (within its TTL) has
    // lost its streams: its new instance gives it away, and the sessions move.
    let m4 = MediaProc::start(Some(&url), &media_env(&[]));
    let id4 = format!("media-{}", m4.http_port);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let mut m3 = m3;
    m3.kill();
    let _m3_again = MediaProc::start(Some(&url), &media_env(&[("GBC_STREAM__NODE_ID", id3.as_str())]));
    let restarted = Instant::now();
    let moved = eventually(Duration::from_secs(15), || async {
        let all = sessions(&sip_a).await;
        !all.is_empty() && all.iter().all(|s| s["media_node"] == id4.as_str() && s["state"] == "playing")
    })
    .await;
    assert!(moved, "sessions stayed on the restarted node; sip-a:\n{}", sip_a.log_text());
    println!("media node restarted under its id → sessions playing on another: {} ms", restarted.elapsed().as_millis());
    let m2 = m4;

    // The sip-server driving CAM_B's sessions dies: after its record expires, another node
    // closes them (BYE from the stored dialog; receivers, SSRCs and load units released).
    let of_b: Vec<String> =
        sessions(&sip_a).await.iter().filter(|s| s["sip_node"] == "sip-b").map(|s| s["stream_id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(of_b.len(), 2, "CAM_B's two sessions are driven by sip-b, which holds its connection");
    sip_b.kill();
    let reaped = eventually(Duration::from_secs(25), || async {
        let all = sessions(&sip_a).await;
        !all.iter().any(|s| of_b.contains(&s["stream_id"].as_str().unwrap().to_owned()))
    })
    .await;
    assert!(reaped, "orphaned sessions not closed; sip-a:\n{}", sip_a.log_text());
    let ok = eventually(Duration::from_secs(5), || async { node_streams(&m2).await.iter().all(|id| !of_b.contains(id)) }).await;
    assert!(ok, "their receivers closed");

    // Stop everything: nothing is left held anywhere.
    for s in sessions(&sip_a).await {
        let (code, v) = stop(&sip_a, s["stream_id"].as_str().unwrap(), true).await;
        assert_eq!(code, 200, "{v}");
    }
    assert!(sessions(&sip_a).await.is_empty());
    assert!(node_streams(&m2).await.is_empty(), "every receiver closed");
    assert_eq!(redis_hlen(&url, "{gbc}:ssrcs").await, 0, "every SSRC released");
    assert_eq!(load_sum(&url).await, 0, "every load unit released");
}

/// Collects play events (`gbc:events:play`) as (event, stream_id, reason).
struct PlayEvents(tokio::sync::mpsc::Receiver<String>, Vec<(String, String, String)>);

impl PlayEvents {
    async fn subscribe(url: &str) -> Self {
        let store = cluster::store::open(Some(url)).await.expect("store");
        let rx = store.subscribe(sip_server::play::manager::PLAY_EVENTS).await.expect("subscribe");
        std::mem::forget(store); // keep the subscription's connection for the test
        Self(rx, Vec::new())
    }

    /// Waits for `stream`'s `closed` event and returns its reason.
    async fn closed(&mut self, stream: &str, within: Duration) -> Option<String> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(e) = self.1.iter().find(|e| e.0 == "closed" && e.1 == stream) {
                return Some(e.2.clone());
            }
            let msg = tokio::time::timeout_at(deadline, self.0.recv()).await.ok()??;
            let v: Value = serde_json::from_str(&msg).ok()?;
            self.1.push((
                v["event"].as_str().unwrap_or("").into(),
                v["stream_id"].as_str().unwrap_or("").into(),
                v["reason"].as_str().unwrap_or("").into(),
            ));
        }
    }
}

async fn metric(sip: &SipProc, name: &str) -> u64 {
    let text = reqwest::get(sip.api("/metrics")).await.expect("metrics").text().await.unwrap_or_default();
    text.lines().find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok())).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sessions_end_on_every_trigger_and_failures_say_what_failed() {
    let redis = RedisServer::start().expect("redis-server must be installed");
    let url = redis.url();
    let sip = SipProc::start(
        Some(&url),
        &[
            ("GBC_SIP__PLAY__NO_VIEWER_SECS", "9"),
            ("GBC_SIP__PLAY__INVITE_TIMEOUT_MS", "1500"),
            ("GBC_SIP__KEEPALIVE_INTERVAL_SECS", "1"),
            ("GBC_SIP__KEEPALIVE_MISSES", "2"),
        ],
    );
    // Timeouts chosen so each trigger fires alone: offline after 2 missed keepalives of 1 s
    // (≤ 2.5 s), no data after 5 s, no viewers after 9 s.
    let media = MediaProc::start(Some(&url), &media_env(&[("GBC_STREAM__NO_DATA_TIMEOUT_SECS", "5")]));
    let ka = ("GBC_SIM__KEEPALIVE_SECS", "1");
    const NORMAL: &str = "34020000001320000201";
    const GONE: &str = "34020000001320000251";
    const MUTE: &str = "34020000001320000301";
    const BUSY: &str = "34020000001320000401";
    const SILENT: &str = "34020000001320000501";
    const HANGS_UP: &str = "34020000001320000601";
    const OWN_SSRC: &str = "34020000001320000901";
    let _normal = SimProc::start(sip.sip_addr(), NORMAL, 1, "udp", &[ka]);
    let mut gone = SimProc::start(sip.sip_addr(), GONE, 1, "tcp", &[ka]);
    let _mute = SimProc::start(sip.sip_addr(), MUTE, 1, "udp", &[ka, ("GBC_SIM__STREAM_MEDIA", "false")]);
    let _busy = SimProc::start(sip.sip_addr(), BUSY, 1, "udp", &[ka, ("GBC_SIM__INVITE_REFUSE", "486")]);
    let _silent = SimProc::start(sip.sip_addr(), SILENT, 1, "udp", &[ka, ("GBC_SIM__INVITE_SILENT", "true")]);
    let _hangs_up = SimProc::start(sip.sip_addr(), HANGS_UP, 1, "tcp", &[ka, ("GBC_SIM__BYE_AFTER_SECS", "1")]);
    let _own = SimProc::start(sip.sip_addr(), OWN_SSRC, 1, "udp", &[ka, ("GBC_SIM__ANSWER_SSRC", "1234567890")]);
    for d in [NORMAL, GONE, MUTE, BUSY, SILENT, HANGS_UP, OWN_SSRC] {
        wait_ready(&sip, d).await;
    }
    let mut events = PlayEvents::subscribe(&url).await;
    tokio::time::sleep(Duration::from_millis(1200)).await; // the media node's heartbeat

    // Errors name what failed, as JSON.
    let (code, v) = play(&sip, "34020000001329999999", &channel(NORMAL, 0, 0), None).await;
    assert_eq!(code, 404, "unknown device: {v}");
    let (code, v) = play(&sip, NORMAL, "34020000001319999999", None).await;
    assert_eq!(code, 404, "unknown channel: {v}");
    assert!(v["message"].as_str().unwrap().contains("not in the catalog"), "{v}");
    let (code, v) = play(&sip, NORMAL, &channel(NORMAL, 0, 0), Some("sctp")).await;
    assert_eq!(code, 400, "{v}");
    let (code, v) = play(&sip, BUSY, &channel(BUSY, 0, 0), None).await;
    assert_eq!((code, v["sip_status"].as_u64()), (502, Some(486)), "camera refused: {v}");
    let started = Instant::now();
    let (code, v) = play(&sip, SILENT, &channel(SILENT, 0, 0), None).await;
    assert_eq!((code, v["sip_status"].as_u64()), (502, Some(408)), "camera silent: {v}");
    assert!(started.elapsed() >= Duration::from_millis(1500), "waited the INVITE timeout");
    assert_eq!(metric(&sip, "gbc_sip_invite_timeouts_total").await, 1, "the silent INVITE was CANCELled");
    assert!(node_streams(&media).await.is_empty(), "failed plays left no receiver");
    assert_eq!(redis_hlen(&url, "{gbc}:ssrcs").await, 0, "failed plays left no SSRC");

    // A camera that answers (and streams) with an SSRC of its own still shows video, over UDP
    // and TCP.
    for (j, t) in ["udp", "tcp-passive"].iter().enumerate() {
        let (code, v) = play(&sip, OWN_SSRC, &channel(OWN_SSRC, 0, j), Some(t)).await;
        assert_eq!(code, 200, "{v}");
        assert_decodes(v["urls"]["http_flv"].as_str().unwrap());
        assert_eq!(stop(&sip, v["stream_id"].as_str().unwrap(), true).await.0, 200);
    }

    // Each trigger ends its session, with its reason, and releases everything.
    let gone_id = format!("{GONE}_{}", channel(GONE, 0, 0));
    // UDP media: a killed camera's TCP media connection would close at once (ending the
    // session for `no_data`, reason peer_closed) before it is seen offline.
    assert_eq!(play(&sip, GONE, &channel(GONE, 0, 0), Some("udp")).await.0, 200);
    gone.kill(); // no unregister: it just stops keeping alive
    let normal = format!("{NORMAL}_{}", channel(NORMAL, 0, 0));
    // A device's own transport setting applies when a play names none.
    let r = reqwest::Client::new()
        .put(sip.api(&format!("/api/v1/devices/{NORMAL}/play-transport")))
        .json(&serde_json::json!({"transport": "tcp-passive"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let (code, v) = play(&sip, NORMAL, &channel(NORMAL, 0, 0), None).await;
    assert_eq!((code, v["transport"].as_str()), (200, Some("tcp-passive")), "{v}");
    let normal_started = Instant::now();
    let mute = format!("{MUTE}_{}", channel(MUTE, 0, 0));
    assert_eq!(play(&sip, MUTE, &channel(MUTE, 0, 0), None).await.0, 200);
    let hangs_up = format!("{HANGS_UP}_{}", channel(HANGS_UP, 0, 0));
    assert_eq!(play(&sip, HANGS_UP, &channel(HANGS_UP, 0, 0), None).await.0, 200);
    assert_decodes(v["urls"]["http_flv"].as_str().unwrap()); // a viewer for ~2 s

    assert_eq!(events.closed(&hangs_up, Duration::from_secs(10)).await.as_deref(), Some("camera_bye"));
    assert_eq!(events.closed(&gone_id, Duration::from_secs(10)).await.as_deref(), Some("device_offline"));
    let (code, v) = play(&sip, GONE, &channel(GONE, 0, 0), None).await;
    assert_eq!(code, 409, "offline device: {v}");
    assert_eq!(events.closed(&mute, Duration::from_secs(10)).await.as_deref(), Some("no_data"));
    assert_eq!(events.closed(&normal, Duration::from_secs(20)).await.as_deref(), Some("no_viewers"));
    assert!(normal_started.elapsed() >= Duration::from_secs(9), "held while watched, closed 9 s after");

    assert!(sessions(&sip).await.is_empty());
    let ok = eventually(Duration::from_secs(5), || async { node_streams(&media).await.is_empty() }).await;
    assert!(ok, "receivers left: {:?}", node_streams(&media).await);
    assert_eq!(redis_hlen(&url, "{gbc}:ssrcs").await, 0, "every SSRC released");
    assert_eq!(load_sum(&url).await, 0, "every load unit released");
    assert_eq!(metric(&sip, "gbc_sip_byes_received_total").await, 1);
}
