//! Play latency and play/stop throughput across real processes. `scripts/bench-play` runs it.
//!
//!   cargo bench -p gbcluster --bench play -- [PLAYS=100] [SECONDS=20] [CONCURRENCY=16]
//!
//! Redis, two sip-servers, one stream-server, 50 simulated cameras (2 channels each) on sip-a.
//! Latency: PLAYS sequential plays, each timed from the API call to the first video frame read
//! from HTTP-FLV, alternating the API node (sip-a holds the cameras; through sip-b the play is
//! routed over Redis). Throughput: CONCURRENCY workers play and stop distinct channels for
//! SECONDS; afterwards nothing may be held (sessions, SSRCs, load units, receivers, sockets).
//! Prints JSON.

#[path = "../../tests/support/mod.rs"]
mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{eventually, get_json, MediaProc, SimProc, SipProc};
use testkit::RedisServer;

const FIRST: &str = "34020000001320000001";
const DEVICES: usize = 50;

fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0)
}

/// Reads HTTP-FLV until the first coded video frame (not the sequence header).
async fn first_video_frame(client: &reqwest::Client, url: &str) -> Result<(), String> {
    let mut r = client.get(url).send().await.map_err(|e| e.to_string())?;
    if !r.status().is_success() {
        return Err(format!("{url}: {}", r.status()));
    }
    let mut buf: Vec<u8> = Vec::new();
    let mut pos = 13;
    loop {
        let chunk = r.chunk().await.map_err(|e| e.to_string())?.ok_or("stream ended")?;
        buf.extend_from_slice(&chunk);
        while let Some(h) = buf.get(pos..pos + 11) {
            let len = (usize::from(h[1]) << 16) | (usize::from(h[2]) << 8) | usize::from(h[3]);
            let Some(body) = buf.get(pos + 11..pos + 11 + len) else { break };
            // Video tag, AVC packet type 1 (NALUs): a frame.
            if h[0] == 9 && body.get(1) == Some(&1) {
                return Ok(());
            }
            pos += 11 + len + 4;
        }
    }
}

async fn play(client: &reqwest::Client, api: &str, dev: &str, ch: &str) -> Result<Value, String> {
    let r = client.post(format!("{api}/api/v1/devices/{dev}/channels/{ch}/play")).send().await.map_err(|e| e.to_string())?;
    let code = r.status().as_u16();
    let v: Value = r.json().await.map_err(|e| e.to_string())?;
    if code == 200 {
        Ok(v)
    } else {
        Err(format!("{code} {v}"))
    }
}

async fn stop(client: &reqwest::Client, api: &str, stream: &str) -> Result<(), String> {
    let r = client.delete(format!("{api}/api/v1/streams/{stream}?all=true")).send().await.map_err(|e| e.to_string())?;
    if r.status().is_success() {
        Ok(())
    } else {
        Err(format!("stop {stream}: {}", r.status()))
    }
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        return 0.0;
    }
    let i = ((p / 100.0) * (v.len() - 1) as f64).round() as usize;
    (v[i] * 10.0).round() / 10.0
}

#[tokio::main]
async fn main() {
    let args: Vec<u64> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).filter_map(|a| a.parse().ok()).collect();
    let plays = *args.first().unwrap_or(&100) as usize;
    let seconds = *args.get(1).unwrap_or(&20);
    let concurrency = *args.get(2).unwrap_or(&16) as usize;

    let redis = RedisServer::start().expect("redis-server must be installed");
    let url = redis.url();
    let quiet = [("GBC_SIP__PLAY__NO_VIEWER_SECS", "0"), ("RUST_LOG", "warn")];
    let sip_a = SipProc::start(Some(&url), &[("GBC_SIP__NODE_ID", "sip-a"), quiet[0], quiet[1]]);
    let sip_b = SipProc::start(Some(&url), &[("GBC_SIP__NODE_ID", "sip-b"), quiet[0], quiet[1]]);
    let media = MediaProc::start(Some(&url), &[("GBC_STREAM__HEARTBEAT_SECS", "1"), ("RUST_LOG", "warn")]);
    let _sim = SimProc::start(sip_a.sip_addr(), FIRST, DEVICES, "udp", &[("GBC_SIM__KEEPALIVE_SECS", "30")]);
    let channels: Vec<(String, String)> = (0..DEVICES)
        .flat_map(|i| {
            let d = gbsim::device_id(FIRST, i).unwrap();
            gbsim::device::channel_ids(&d, i, 2).into_iter().map(move |c| (d.clone(), c))
        })
        .collect();
    let ready = eventually(Duration::from_secs(60), || async {
        let (_, v) = get_json(&sip_a.api("/api/v1/devices?online=true&limit=1000")).await;
        v["items"].as_array().is_some_and(|a| a.len() == DEVICES && a.iter().all(|d| d["channel_count"] == 2))
    })
    .await;
    assert!(ready, "cameras did not all register");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let new_client = || reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap();
    let client = new_client();
    let apis = [sip_a.api(""), sip_b.api("")];

    // Latency.
    let (mut local, mut routed) = (Vec::new(), Vec::new());
    for i in 0..plays {
        let (dev, ch) = &channels[i % channels.len()];
        let api = &apis[i % 2];
        let t0 = Instant::now();
        let v = play(&client, api, dev, ch).await.expect("play");
        let api_ms = t0.elapsed().as_secs_f64() * 1000.0;
        first_video_frame(&client, v["urls"]["http_flv"].as_str().unwrap()).await.expect("first frame");
        let ms = t0.elapsed().as_secs_f64() * 1000.0;
        if i % 2 == 0 { &mut local } else { &mut routed }.push((ms, api_ms));
        stop(&client, api, v["stream_id"].as_str().unwrap()).await.expect("stop");
    }
    let mut all: Vec<f64> = local.iter().chain(&routed).map(|x| x.0).collect();
    let mut api_all: Vec<f64> = local.iter().chain(&routed).map(|x| x.1).collect();
    let mut l: Vec<f64> = local.iter().map(|x| x.0).collect();
    let mut r: Vec<f64> = routed.iter().map(|x| x.0).collect();

    // Throughput: play/stop cycles on distinct channels. Sockets are counted with no client
    // connection open (dropping a client closes its pooled connections).
    drop(client);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let client = new_client();
    let fds_before = (fds(sip_a.pid()), fds(sip_b.pid()), fds(media.pid()));
    let cycles = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    let per = channels.len() / concurrency.max(1);
    for w in 0..concurrency {
        let mine: Vec<(String, String)> = channels[w * per..(w + 1) * per].to_vec();
        let (client, apis, cycles, errors) = (client.clone(), apis.clone(), cycles.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            let mut k = 0usize;
            while Instant::now() < deadline {
                let (dev, ch) = &mine[k % mine.len()];
                let api = &apis[k % 2];
                k += 1;
                match play(&client, api, dev, ch).await {
                    Ok(v) => match stop(&client, api, v["stream_id"].as_str().unwrap()).await {
                        Ok(()) => {
                            cycles.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => {
                            eprintln!("{e}");
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    },
                    Err(e) => {
                        eprintln!("{e}");
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    let started = Instant::now();
    for t in tasks {
        t.await.unwrap();
    }
    let secs = started.elapsed().as_secs_f64();
    let done = cycles.load(Ordering::Relaxed);
    drop(client);
    tokio::time::sleep(Duration::from_secs(2)).await; // camera media tasks and sockets wind down
    let sessions = get_json(&sip_a.api("/api/v1/streams")).await.1["total"].as_u64();
    let receivers = get_json(&media.url("/api/v1/streams")).await.1["total"].as_u64();
    let client_r = redis::Client::open(url.as_str()).unwrap();
    let mut c = client_r.get_multiplexed_async_connection().await.unwrap();
    let ssrcs: i64 = redis::cmd("HLEN").arg("{gbc}:ssrcs").query_async(&mut c).await.unwrap();
    let loads: Vec<(String, i64)> = redis::cmd("HGETALL").arg("{gbc}:load:media").query_async(&mut c).await.unwrap();
    let fds_after = (fds(sip_a.pid()), fds(sip_b.pid()), fds(media.pid()));
    let metrics = reqwest::get(sip_a.api("/metrics")).await.unwrap().text().await.unwrap();
    let gauge = |name: &str| metrics.lines().find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse::<i64>().ok()));
    let report = serde_json::json!({
        "plays": plays,
        "first_frame_ms": {"p50": pct(&mut all, 50.0), "p99": pct(&mut all, 99.0), "max": pct(&mut all, 100.0)},
        "first_frame_ms_local": {"p50": pct(&mut l, 50.0), "p99": pct(&mut l, 99.0)},
        "first_frame_ms_routed": {"p50": pct(&mut r, 50.0), "p99": pct(&mut r, 99.0)},
        "api_answer_ms": {"p50": pct(&mut api_all, 50.0), "p99": pct(&mut api_all, 99.0)},
        "cycle_seconds": (secs * 10.0).round() / 10.0,
        "concurrency": concurrency,
        "play_stop_cycles": done,
        "cycles_per_sec": (done as f64 / secs * 10.0).round() / 10.0,
        "errors": errors.load(Ordering::Relaxed),
        "left_after": {
            "sessions": sessions, "receivers": receivers, "ssrcs": ssrcs,
            "load_units": loads.iter().map(|(_, n)| n).sum::<i64>(),
            "fds_sip_a_sip_b_media_before": fds_before, "fds_after": fds_after,
            "sip_a_in_memory": {"dialogs": gauge("gbc_play_dialogs "), "op_locks": gauge("gbc_play_op_locks "), "acks": gauge("gbc_play_acks ")},
        },
    });
    println!("{}", serde_json::to_string_pretty(&report).unwrap());
}
