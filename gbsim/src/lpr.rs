//! An LPR camera simulator and load generator (`gbcluster sim lpr`): N cameras push plate
//! results (optionally with a real JPEG) to an lpr-server, send heartbeats or comet-poll, can
//! first replay an offline backlog the way the firmware does (each stored record only after
//! `ContinuePushOffline … continue: 1`, a live result interrupting it and the interrupted record
//! sent again), and obey the replies: count gate openings, apply whitelist operations to their
//! own copy, upload requested snapshots.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use serde::Serialize;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone)]
pub struct LprSimConfig {
    /// `http://host:port` of the lpr-server.
    pub server: String,
    pub cameras: usize,
    /// Serial numbers are `<prefix>-<n>`.
    pub serial_prefix: String,
    /// Plate results per second per camera; 0: as fast as replies come.
    pub rate: f64,
    /// Full image sent with each result (a JPEG); none: results without images.
    pub image: Option<Arc<Vec<u8>>>,
    /// Poll in comet mode (next poll as soon as a reply arrives) instead of heartbeats every 5 s.
    pub comet: bool,
    /// Stored records each camera replays first (`isoffline: 1`).
    pub backlog: u64,
    /// During the backlog, every this many records a live result interrupts (0: never).
    pub interrupt_every: u64,
    /// Plate numbers cycle through this many (so whitelists can match).
    pub plates: u64,
    pub seconds: u64,
    pub plate_path: String,
    pub heartbeat_path: String,
}

impl Default for LprSimConfig {
    fn default() -> Self {
        Self {
            server: "http://127.0.0.1:8082".into(),
            cameras: 1,
            serial_prefix: "sim".into(),
            rate: 1.0,
            image: None,
            comet: true,
            backlog: 0,
            interrupt_every: 10,
            plates: 1000,
            seconds: 10,
            plate_path: "/devicemanagement/php/plateresult.php".into(),
            heartbeat_path: "/devicemanagement/php/receivedeviceinfo.php".into(),
        }
    }
}

#[derive(Debug, Default, Serialize)]
pub struct LprSimReport {
    pub cameras: usize,
    pub results_sent: u64,
    pub results_per_sec: f64,
    pub backlog_sent: u64,
    pub live_sent: u64,
    pub errors: u64,
    pub gate_openings: u64,
    pub polls: u64,
    pub snapshots_uploaded: u64,
    pub whitelist_ops_applied: u64,
    /// Whitelist size per camera after the run.
    pub whitelist_sizes: BTreeMap<String, usize>,
    pub reply_ms_p50: f64,
    pub reply_ms_p99: f64,
    pub reply_ms_max: f64,
}

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    backlog: AtomicU64,
    live: AtomicU64,
    errors: AtomicU64,
    gates: AtomicU64,
    polls: AtomicU64,
    snapshots: AtomicU64,
    wl_ops: AtomicU64,
}

/// One camera's state shared by its pushing and polling tasks.
struct Cam {
    serial: String,
    whitelist: Mutex<BTreeMap<String, Value>>,
}

fn plate(n: u64) -> String {
    format!("京S{:05}", n % 100_000)
}

fn result_body(cam: &Cam, plateid: u64, plate_no: u64, offline: bool, image: Option<&str>) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let mut pr = json!({
        "license": plate(plate_no), "colorType": 1, "type": 1, "confidence": 90, "direction": 4, "triggerType": 1,
        "timeStamp": {"Timeval": {"sec": now.as_secs(), "usec": now.subsec_micros()}},
        "plateid": plateid, "isoffline": u8::from(offline),
        "location": {"RECT": {"left": 100, "top": 300, "right": 240, "bottom": 340}},
    });
    if let Some(img) = image {
        pr["imageFile"] = json!(img);
        pr["imageFileLen"] = json!(img.len() / 4 * 3);
    }
    json!({"AlarmInfoPlate": {"channel": 0, "deviceName": "IVS", "ipaddr": "192.168.1.100", "serialno": cam.serial, "result": {"PlateResult": pr}}}).to_string()
}

/// Applies what a reply asks for; returns the `ContinuePushOffline` plateid if it said continue.
async fn obey(client: &reqwest::Client, cfg: &LprSimConfig, cam: &Cam, c: &Counters, reply: &Value) -> Option<u64> {
    let r = &reply["Response_AlarmInfoPlate"];
    if r["info"] == "ok" {
        c.gates.fetch_add(1, Ordering::Relaxed);
    }
    let op = &r["white_list_operate"];
    if let Some(list) = op["white_list_data"].as_array() {
        let mut wl = cam.whitelist.lock().unwrap_or_else(|e| e.into_inner());
        for e in list {
            let Some(p) = e["plate"].as_str() else { continue };
            if op["operate_type"] == 0 {
                wl.insert(p.to_owned(), e.clone());
            } else {
                wl.remove(p);
            }
        }
        c.wl_ops.fetch_add(1, Ordering::Relaxed);
    }
    if let Some(url) = r["TriggerImage"]["snapImageRelativeUrl"].as_str() {
        let img = cfg.image.as_ref().map(|i| base64::engine::general_purpose::STANDARD.encode(i.as_slice())).unwrap_or_default();
        let body = json!({"ipaddr": "192.168.1.100", "TriggerImage": {"imageFile": img, "imageFileLen": img.len() / 4 * 3}}).to_string();
        if client.post(format!("{}{url}", cfg.server.trim_end_matches('/'))).body(body).send().await.is_ok() {
            c.snapshots.fetch_add(1, Ordering::Relaxed);
        }
    }
    let cont = &r["ContinuePushOffline"];
    (cont["continue"] == 1).then(|| cont["plateid"].as_u64()).flatten()
}

async fn post_result(client: &reqwest::Client, cfg: &LprSimConfig, body: String, lat: &Mutex<Vec<f64>>) -> Option<Value> {
    let t0 = Instant::now();
    let r = client
        .post(format!("{}{}", cfg.server.trim_end_matches('/'), cfg.plate_path))
        .header("Content-Type", "text/plain")
        .body(body)
        .send()
        .await
        .ok()?;
    if !r.status().is_success() {
        return None;
    }
    let v = r.json::<Value>().await.ok()?;
    lat.lock().unwrap_or_else(|e| e.into_inner()).push(t0.elapsed().as_secs_f64() * 1000.0);
    Some(v)
}

/// A heartbeat as the firmware sends it: (Content-Type, multipart body).
pub fn heartbeat_body(serial: &str, password: &str) -> (String, String) {
    let b = "----gbsimLprBoundary";
    let mut body = String::new();
    for (k, v) in [
        ("device_name", "IVS"),
        ("ipaddr", "192.168.1.100"),
        ("port", "80"),
        ("user_name", "admin"),
        ("pass_wd", password),
        ("serialno", serial),
        ("channel_num", "1"),
    ] {
        body.push_str(&format!("--{b}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"));
    }
    body.push_str(&format!("--{b}--\r\n"));
    (format!("multipart/form-data; boundary={b}"), body)
}

async fn poll_loop(client: reqwest::Client, cfg: Arc<LprSimConfig>, cam: Arc<Cam>, c: Arc<Counters>, stop: CancellationToken) {
    let (ct, body) = heartbeat_body(&cam.serial, "admin");
    let url = format!("{}{}", cfg.server.trim_end_matches('/'), cfg.heartbeat_path);
    while !stop.is_cancelled() {
        let sent = client.post(&url).header("Content-Type", &ct).body(body.clone()).send();
        let r = tokio::select! {
            _ = stop.cancelled() => break,
            r = sent => r,
        };
        match r {
            Ok(r) => {
                c.polls.fetch_add(1, Ordering::Relaxed);
                if let Ok(v) = r.json::<Value>().await {
                    obey(&client, &cfg, &cam, &c, &v).await;
                }
            }
            Err(_) => {
                c.errors.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        if !cfg.comet {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            }
        }
    }
}

async fn push_loop(
    client: reqwest::Client,
    cfg: Arc<LprSimConfig>,
    cam: Arc<Cam>,
    c: Arc<Counters>,
    lat: Arc<Mutex<Vec<f64>>>,
    stop: CancellationToken,
    index: u64,
) {
    let image = cfg.image.as_ref().map(|i| base64::engine::general_purpose::STANDARD.encode(i.as_slice()));
    let image = image.as_deref();
    let mut next_live = cfg.backlog + 1;
    let mut live = |c: &Counters| {
        let id = next_live;
        next_live += 1;
        c.live.fetch_add(1, Ordering::Relaxed);
        id
    };
    // The backlog: each stored record waits for "continue"; a live result now and then
    // interrupts, and the interrupted record is sent again.
    let mut k = 1;
    while k <= cfg.backlog && !stop.is_cancelled() {
        let body = result_body(&cam, k, k + index * 7, true, image);
        c.sent.fetch_add(1, Ordering::Relaxed);
        match post_result(&client, &cfg, body, &lat).await {
            Some(v) if obey(&client, &cfg, &cam, &c, &v).await == Some(k) => {
                c.backlog.fetch_add(1, Ordering::Relaxed);
                if cfg.interrupt_every > 0 && k % cfg.interrupt_every == 0 {
                    let id = live(&c);
                    c.sent.fetch_add(1, Ordering::Relaxed);
                    if let Some(v) = post_result(&client, &cfg, result_body(&cam, id, id + index * 7, false, image), &lat).await {
                        obey(&client, &cfg, &cam, &c, &v).await;
                    }
                    // The firmware sends the interrupted record once more.
                    c.sent.fetch_add(1, Ordering::Relaxed);
                    let _ = post_result(&client, &cfg, result_body(&cam, k, k + index * 7, true, image), &lat).await;
                }
                k += 1;
            }
            _ => {
                c.errors.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
    let period = (cfg.rate > 0.0).then(|| Duration::from_secs_f64(1.0 / cfg.rate));
    let mut due = Instant::now();
    while !stop.is_cancelled() {
        if let Some(p) = period {
            due += p;
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep_until(due.into()) => {}
            }
        }
        let id = live(&c);
        c.sent.fetch_add(1, Ordering::Relaxed);
        match post_result(&client, &cfg, result_body(&cam, id, (id + index * 7) % cfg.plates.max(1), false, image), &lat).await {
            Some(v) => {
                obey(&client, &cfg, &cam, &c, &v).await;
            }
            None => {
                c.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let i = ((p / 100.0) * (v.len() - 1) as f64).round() as usize;
    (v[i] * 100.0).round() / 100.0
}

/// Runs the cameras for `cfg.seconds` (or until `shutdown`) and reports.
pub async fn run(cfg: LprSimConfig, shutdown: CancellationToken) -> LprSimReport {
    let cfg = Arc::new(cfg);
    let client = reqwest::Client::builder().timeout(Duration::from_secs(35)).pool_max_idle_per_host(1024).build().unwrap_or_default();
    let c = Arc::new(Counters::default());
    let lat = Arc::new(Mutex::new(Vec::new()));
    let stop = shutdown.child_token();
    let cams: Vec<Arc<Cam>> = (0..cfg.cameras)
        .map(|i| Arc::new(Cam { serial: format!("{}-{i:04}", cfg.serial_prefix), whitelist: Mutex::new(BTreeMap::new()) }))
        .collect();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (i, cam) in cams.iter().enumerate() {
        tasks.push(tokio::spawn(poll_loop(client.clone(), cfg.clone(), cam.clone(), c.clone(), stop.clone())));
        tasks.push(tokio::spawn(push_loop(client.clone(), cfg.clone(), cam.clone(), c.clone(), lat.clone(), stop.clone(), i as u64)));
    }
    if cfg.seconds > 0 {
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = tokio::time::sleep(Duration::from_secs(cfg.seconds)) => {}
        }
    } else {
        shutdown.cancelled().await;
    }
    stop.cancel();
    let secs = started.elapsed().as_secs_f64();
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(40), t).await;
    }
    let mut l = std::mem::take(&mut *lat.lock().unwrap_or_else(|e| e.into_inner()));
    let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
    LprSimReport {
        cameras: cfg.cameras,
        results_sent: g(&c.sent),
        results_per_sec: (g(&c.sent) as f64 / secs * 10.0).round() / 10.0,
        backlog_sent: g(&c.backlog),
        live_sent: g(&c.live),
        errors: g(&c.errors),
        gate_openings: g(&c.gates),
        polls: g(&c.polls),
        snapshots_uploaded: g(&c.snapshots),
        whitelist_ops_applied: g(&c.wl_ops),
        whitelist_sizes: cams.iter().map(|c| (c.serial.clone(), c.whitelist.lock().unwrap_or_else(|e| e.into_inner()).len())).collect(),
        reply_ms_p50: pct(&mut l, 50.0),
        reply_ms_p99: pct(&mut l, 99.0),
        reply_ms_max: pct(&mut l, 100.0),
    }
}
