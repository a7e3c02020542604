//! The lpr-server across processes with a real Redis: every camera message type in the
//! protocol's shapes, durable and deduplicated passages (offline backlog, a kill between store
//! and reply), gate decisions, whitelist sync to a camera, comet commands routed between nodes.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};
use support::{eventually, LprProc};
use testkit::{free_port, RedisServer};

const PLATE_PATH: &str = "/devicemanagement/php/plateresult.php";
const HB_PATH: &str = "/devicemanagement/php/receivedeviceinfo.php";

fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(40)).build().unwrap()
}

/// POSTs a body as cameras do (often with a wrong Content-Type): (status, JSON reply).
async fn push(url: &str, body: impl Into<reqwest::Body>, content_type: &str) -> (u16, Value) {
    let r = client().post(url).header("Content-Type", content_type).body(body).send().await.expect("push");
    let code = r.status().as_u16();
    (code, r.json().await.unwrap_or(Value::Null))
}

fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

fn plate_result(serial: &str, plate: &str, plateid: u64, offline: bool, image: Option<&[u8]>) -> Value {
    let mut pr = json!({
        "license": plate, "colorType": 1, "type": 1, "confidence": 93, "direction": 4, "triggerType": 1,
        "timeStamp": {"Timeval": {"sec": 1_700_000_000u64 + plateid, "usec": 0}},
        "plateid": plateid, "isoffline": u8::from(offline),
        "location": {"RECT": {"left": 10, "top": 20, "right": 110, "bottom": 50}},
    });
    if let Some(img) = image {
        pr["imageFile"] = json!(b64(img));
        pr["imageFileLen"] = json!(img.len());
    }
    json!({"AlarmInfoPlate": {"channel": 0, "deviceName": "IVS", "ipaddr": "192.168.1.100", "serialno": serial, "result": {"PlateResult": pr}}})
}

fn heartbeat_form(serial: &str) -> (String, String) {
    gbsim::lpr::heartbeat_body(serial, "Secret#123")
}

async fn heartbeat(lpr: &LprProc, serial: &str) -> Value {
    let (ct, body) = heartbeat_form(serial);
    let (code, v) = push(&lpr.url(HB_PATH), body, &ct).await;
    assert_eq!(code, 200, "{v}");
    v
}

/// A real JPEG from ffmpeg.
fn jpeg() -> Vec<u8> {
    let path = support::fixture("still.jpg");
    std::fs::read(path).unwrap()
}

async fn api(lpr: &LprProc, path: &str) -> Value {
    support::get_json(&lpr.url(path)).await.1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_type_is_taken_stored_and_answered() {
    let redis = RedisServer::start().expect("redis-server");
    let dir = tempdir("msgs");
    let lpr = LprProc::start(&redis.url(), &dir, &[("GBC_LPR__COMET_DETECT_MS", "0")]);
    let serial = "eff50e18-e3d3862b";

    // Plate result with a real JPEG, sent as text/plain as some firmware does.
    let img = jpeg();
    let (code, v) = push(&lpr.url(PLATE_PATH), plate_result(serial, "京A12345", 7, false, Some(&img)).to_string(), "text/plain").await;
    assert_eq!(code, 200, "{v}");
    let r = &v["Response_AlarmInfoPlate"];
    assert_eq!(r["plateid"], 7);
    assert!(r.get("info").is_none(), "not whitelisted: no gate: {v}");
    let p = api(&lpr, "/api/v1/lpr/passages/eff50e18-e3d3862b-7").await;
    assert_eq!((p["plate"].as_str(), p["verdict"].as_str(), p["confidence"].as_u64()), (Some("京A12345"), Some("not_listed"), Some(93)));
    let back = client().get(lpr.url("/api/v1/lpr/passages/eff50e18-e3d3862b-7/images/full")).send().await.unwrap().bytes().await.unwrap();
    assert_eq!(back.as_ref(), img.as_slice(), "image served back byte-exact");
    assert!(std::fs::read_dir(dir.join("2023/11/14").join(serial)).is_ok(), "laid out by date and camera");
    // Minimal detail level: no optional fields at all.
    let (code, _) = push(
        &lpr.url(PLATE_PATH),
        json!({"AlarmInfoPlate": {"serialno": serial, "result": {"PlateResult": {"license": "无"}}}}).to_string(),
        "",
    )
    .await;
    assert_eq!(code, 200);

    // IO trigger and serial data.
    let (code, _) = push(&lpr.url("/devicemanagement/php/gio.php"), json!({"AlarmGioIn": {"deviceName": "IVS", "ipaddr": "192.168.1.100", "serialno": serial, "result": {"TriggerResult": {"source": 0, "value": 1}}}}).to_string(), "application/json").await;
    assert_eq!(code, 200);
    let (code, v) = push(&lpr.url("/devicemanagement/php/serial.php"), json!({"SerialData": {"channel": 0, "serialno": serial, "ipaddr": "192.168.1.100", "deviceName": "IVS", "serialChannel": 0, "data": b64(b"\x01\x02"), "dataLen": 2}}).to_string(), "application/json").await;
    assert_eq!((code, v["Response_SerialData"].is_object()), (200, true), "{v}");
    let ev = api(&lpr, &format!("/api/v1/lpr/device-events?serialno={serial}")).await;
    assert_eq!(ev["total"], 2, "IO and serial events kept: {ev}");
    let io = api(&lpr, &format!("/api/v1/lpr/device-events?serialno={serial}&kind=io")).await;
    assert_eq!((io["items"].as_array().unwrap().len(), io["items"][0]["source"].as_u64()), (1, Some(0)), "{io}");

    // Heartbeat (multipart): the camera's record, never its password.
    heartbeat(&lpr, serial).await;
    let cam = api(&lpr, &format!("/api/v1/lpr/cameras/{serial}")).await;
    assert_eq!(
        (cam["user_name"].as_str(), cam["channel_num"].as_u64(), cam["online"].as_bool()),
        (Some("admin"), Some(1), Some(true)),
        "{cam}"
    );
    assert!(!cam.to_string().contains("Secret#123") && cam["pass_wd_sha256"].as_str().is_some_and(|h| h.len() == 64));
    assert!(!lpr.log_text().contains("Secret#123"), "password never logged");
    let dump = Command::new("redis-cli").args(["-p", &redis.port.to_string(), "--no-raw", "DUMP", "{gbc}:t:lpr_cameras"]).output();
    if let Ok(out) = dump {
        assert!(!String::from_utf8_lossy(&out.stdout).contains("Secret#123"), "nor stored");
    }

    // Snapshot on request: queued, carried by the next reply, uploaded, stored, linked.
    let r =
        client().post(lpr.url(&format!("/api/v1/lpr/cameras/{serial}/commands"))).json(&json!({"type": "snapshot"})).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let id = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let v = heartbeat(&lpr, serial).await;
    let rel = v["Response_AlarmInfoPlate"]["TriggerImage"]["snapImageRelativeUrl"].as_str().expect("TriggerImage in the reply").to_owned();
    assert!(rel.contains(&id));
    let (code, _) = push(
        &lpr.url(&rel),
        json!({"ipaddr": "192.168.1.100", "TriggerImage": {"imageFile": b64(&img), "imageFileLen": img.len()}}).to_string(),
        "application/json",
    )
    .await;
    assert_eq!(code, 200);
    let snap = client().get(lpr.url(&format!("/api/v1/lpr/snapshots/{id}/image"))).send().await.unwrap().bytes().await.unwrap();
    assert_eq!(snap.as_ref(), img.as_slice());

    // Malformed bodies: 400 with a JSON error, and the server carries on.
    for bad in [&b"{not json"[..], b"", b"[]", br#"{"AlarmInfoPlate":{"serialno":"x","result":{"PlateResult":{"imageFile":"@@@"}}}}"#] {
        let (code, v) = push(&lpr.url(PLATE_PATH), bad.to_vec(), "application/json").await;
        assert_eq!(code, 400, "{v}");
        assert!(v["message"].is_string());
    }
    assert_eq!(push(&lpr.url(PLATE_PATH), plate_result(serial, "京A1", 8, false, None).to_string(), "application/json").await.0, 200);

    // A 5 MiB image is stored and served back byte-exact.
    let big: Vec<u8> = (0..5u32 << 20).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let (code, _) =
        push(&lpr.url(PLATE_PATH), plate_result(serial, "京B99999", 9, false, Some(&big)).to_string(), "application/json").await;
    assert_eq!(code, 200);
    let back = client().get(lpr.url("/api/v1/lpr/passages/eff50e18-e3d3862b-9/images/full")).send().await.unwrap().bytes().await.unwrap();
    assert!(back.as_ref() == big.as_slice(), "5 MiB image byte-exact");

    // Queries: by plate, by camera, by time range, paged.
    let v = api(&lpr, "/api/v1/lpr/passages?plate=%E4%BA%ACA12345").await;
    assert_eq!(v["total"], 1);
    let v = api(&lpr, &format!("/api/v1/lpr/passages?serialno={serial}&limit=2")).await;
    assert_eq!((v["total"].as_u64(), v["items"].as_array().unwrap().len()), (Some(4), 2));
    let v = api(&lpr, "/api/v1/lpr/passages?from_ms=1700000008000&to_ms=1700000009000").await;
    assert_eq!(v["total"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offline_backlog_interrupted_by_live_results_lands_exactly_once() {
    let redis = RedisServer::start().expect("redis-server");
    let dir = tempdir("backlog");
    let lpr = LprProc::start(&redis.url(), &dir, &[]);
    let serial = "backlog-cam";
    let url = lpr.url(PLATE_PATH);
    let mut live = 0;
    let mut i = 1u64;
    while i <= 100 {
        let (code, v) = push(&url, plate_result(serial, &format!("京C{i:05}"), i, true, None).to_string(), "application/json").await;
        assert_eq!(code, 200);
        assert_eq!(v["Response_AlarmInfoPlate"]["ContinuePushOffline"], json!({"plateid": i, "continue": 1}), "{v}");
        assert!(v["Response_AlarmInfoPlate"].get("info").is_none(), "a stored record never opens the gate");
        if i.is_multiple_of(10) {
            // A live result interrupts; the interrupted record comes again later.
            live += 1;
            let (code, v) =
                push(&url, plate_result(serial, &format!("京L{live:05}"), 10_000 + live, false, None).to_string(), "application/json")
                    .await;
            assert_eq!(code, 200, "{v}");
            assert!(v["Response_AlarmInfoPlate"].get("ContinuePushOffline").is_none());
            let (code, _) = push(&url, plate_result(serial, &format!("京C{i:05}"), i, true, None).to_string(), "application/json").await;
            assert_eq!(code, 200);
        }
        i += 1;
    }
    let v = api(&lpr, &format!("/api/v1/lpr/passages?serialno={serial}&limit=1000")).await;
    assert_eq!(v["total"].as_u64(), Some(100 + live), "100 stored + {live} live, none twice");
    let ids: std::collections::HashSet<&str> = v["items"].as_array().unwrap().iter().map(|p| p["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 110);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_between_store_and_reply_loses_nothing_and_doubles_nothing() {
    let redis = RedisServer::start().expect("redis-server");
    let dir = tempdir("kill");
    let port = free_port();
    let serial = "kill-cam";
    let body = plate_result(serial, "京K00001", 1, false, Some(&jpeg())).to_string();
    {
        let _dying = LprProc::start_on(port, &redis.url(), &dir, &[("GBC_LPR__FAULT_ABORT_AFTER_STORE", "true")]);
        let r = client().post(format!("http://127.0.0.1:{port}{PLATE_PATH}")).body(body.clone()).send().await;
        assert!(r.is_err() || !r.unwrap().status().is_success(), "the process died before replying");
    }
    // The camera did not get its answer, so it sends the record again to the restarted server.
    let lpr = LprProc::start_on(port, &redis.url(), &dir, &[]);
    let (code, v) = push(&lpr.url(PLATE_PATH), body, "application/json").await;
    assert_eq!((code, v["Response_AlarmInfoPlate"]["plateid"].as_u64()), (200, Some(1)));
    let v = api(&lpr, &format!("/api/v1/lpr/passages?serialno={serial}")).await;
    assert_eq!(v["total"], 1, "stored once");
    let back = client().get(lpr.url(&format!("/api/v1/lpr/passages/{serial}-1/images/full"))).send().await.unwrap().bytes().await.unwrap();
    assert_eq!(back.as_ref(), jpeg().as_slice());
}

/// A camera that applies the whitelist operations of each reply to its own copy.
#[derive(Default)]
struct CameraCopy(std::collections::BTreeMap<String, Value>);

impl CameraCopy {
    fn apply(&mut self, reply: &Value) -> bool {
        let op = &reply["Response_AlarmInfoPlate"]["white_list_operate"];
        let Some(list) = op["white_list_data"].as_array() else { return false };
        assert!(list.len() <= 5, "at most 5 entries per reply");
        for e in list {
            let plate = e["plate"].as_str().unwrap().to_owned();
            if op["operate_type"] == 0 {
                self.0.insert(plate, e.clone());
            } else {
                self.0.remove(&plate);
            }
        }
        true
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whitelist_reaches_the_camera_and_gates_follow_it() {
    let redis = RedisServer::start().expect("redis-server");
    let dir = tempdir("wl");
    // A camera in normal heartbeat mode (back-to-back heartbeats here would look like comet).
    let lpr = LprProc::start(&redis.url(), &dir, &[("GBC_LPR__COMET_DETECT_MS", "0")]);
    let serial = "gate-cam";
    heartbeat(&lpr, serial).await;
    let mut entries: Vec<Value> = (1..=11).map(|i| json!({"plate": format!("京W{i:05}"), "enable": 1, "need_alarm": 0})).collect();
    entries.push(json!({"plate": "京X66666", "enable": 1, "need_alarm": 1}));
    let r = client().post(lpr.url("/api/v1/lpr/groups/default/whitelist")).json(&entries).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);

    // 12 entries reach the camera in 3 replies, and its copy matches.
    let mut copy = CameraCopy::default();
    let mut replies_with_ops = 0;
    for _ in 0..10 {
        if copy.apply(&heartbeat(&lpr, serial).await) {
            replies_with_ops += 1;
        } else {
            break;
        }
    }
    assert_eq!(replies_with_ops, 3);
    assert_eq!(copy.0.len(), 12);
    assert_eq!(copy.0["京X66666"]["need_alarm"], 1);
    let cam = api(&lpr, &format!("/api/v1/lpr/cameras/{serial}")).await;
    assert_eq!(cam["whitelist_sync"]["in_sync"], true, "{cam}");

    // The lane's LED board gets a message with each opening.
    let r = client()
        .put(lpr.url("/api/v1/lpr/groups/default"))
        .json(&json!({"policy": "open_whitelisted", "serial_on_open": [{"serial_channel": 0, "data": b64(b"WELCOME")}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);

    // Whitelisted opens; blacklisted does not, and raises an alarm; unknown does not.
    let open = |plate: &str, id: u64| plate_result(serial, plate, id, false, None).to_string();
    let (_, v) = push(&lpr.url(PLATE_PATH), open("京W00003", 1), "application/json").await;
    assert_eq!(
        (v["Response_AlarmInfoPlate"]["info"].as_str(), v["Response_AlarmInfoPlate"]["channelNum"].as_u64()),
        (Some("ok"), Some(0)),
        "{v}"
    );
    let (_, v) = push(&lpr.url(PLATE_PATH), open("京X66666", 2), "application/json").await;
    assert!(v["Response_AlarmInfoPlate"].get("info").is_none(), "blacklisted: closed: {v}");
    assert_eq!(api(&lpr, &format!("/api/v1/lpr/passages/{serial}-2")).await["verdict"], "blacklisted");
    let metrics = client().get(lpr.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("gbc_lpr_alarms_total 1"), "{metrics}");
    let (_, v) = push(&lpr.url(PLATE_PATH), open("京Z00000", 3), "application/json").await;
    assert!(v["Response_AlarmInfoPlate"].get("info").is_none());

    // A deletion travels too.
    let r = client().delete(lpr.url(&format!("/api/v1/lpr/groups/default/whitelist/{}", "%E4%BA%ACW00001"))).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 204);
    let v = heartbeat(&lpr, serial).await;
    assert_eq!(v["Response_AlarmInfoPlate"]["white_list_operate"]["operate_type"], 1, "{v}");
    copy.apply(&v);
    assert_eq!(copy.0.len(), 11);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_comet_poll_gets_a_command_from_another_node_within_100_ms() {
    let redis = RedisServer::start().expect("redis-server");
    let dir = tempdir("comet");
    let a = LprProc::start(&redis.url(), &dir, &[]);
    let b = LprProc::start(&redis.url(), &dir, &[]);
    let serial = "comet-cam";
    // A comet camera polls again the moment it is answered: the second poll is held.
    heartbeat(&a, serial).await;
    let (ct, body) = heartbeat_form(serial);
    let held = tokio::spawn({
        let url = a.url(HB_PATH);
        async move {
            let started = Instant::now();
            let (code, v) = push(&url, body, &ct).await;
            (code, v, Instant::now(), started)
        }
    });
    let ok = eventually(Duration::from_secs(5), || async {
        let m = client().get(a.url("/metrics")).send().await.unwrap().text().await.unwrap();
        m.contains("gbc_lpr_comet_polls_held 1")
    })
    .await;
    assert!(ok, "the poll is held; log:\n{}", a.log_text());
    let sent = Instant::now();
    let r =
        client().post(b.url(&format!("/api/v1/lpr/cameras/{serial}/commands"))).json(&json!({"type": "open_gate"})).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let (code, v, answered, started) = held.await.unwrap();
    let took = answered.duration_since(sent);
    println!(
        "command on node b → held comet poll on node a answered: {} ms (poll held {} ms)",
        took.as_millis(),
        answered.duration_since(started).as_millis()
    );
    assert_eq!((code, v["Response_AlarmInfoPlate"]["info"].as_str()), (200, Some("ok")), "{v}");
    assert!(took < Duration::from_millis(100), "answered in {took:?}");
}

fn tempdir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("gbc-lpr-{tag}-{}-{}", std::process::id(), rand::random::<u32>()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A webhook target that records what it is sent (a raw HTTP/1.1 server: answers 200).
async fn webhook_target(port: u16, got: std::sync::Arc<std::sync::Mutex<Vec<Value>>>) -> tokio::task::JoinHandle<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.expect("bind webhook");
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else { return };
            let got = got.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                loop {
                    let Ok(n) = s.read(&mut chunk).await else { return };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).into_owned();
                    if let Some((head, body)) = text.split_once("\r\n\r\n") {
                        let len: usize = head
                            .lines()
                            .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0)))
                            .unwrap_or(0);
                        if body.len() >= len {
                            if let Ok(v) = serde_json::from_str(&body[..len]) {
                                got.lock().unwrap().push(v);
                            }
                            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").await;
                            return;
                        }
                    }
                }
            });
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passages_reach_a_webhook_that_was_down_and_the_event_stream() {
    let redis = RedisServer::start().expect("redis-server");
    let dir = tempdir("hook");
    let hook_port = free_port();
    let lpr = LprProc::start(&redis.url(), &dir, &[("GBC_LPR__WEBHOOK_URL", &format!("http://127.0.0.1:{hook_port}/passages"))]);
    // Live passages on the SSE stream.
    let mut sse = client().get(lpr.url("/api/v1/lpr/events")).send().await.unwrap();
    assert_eq!(sse.headers()["content-type"], "text/event-stream");
    // The billing system is down while five passages arrive.
    for i in 1..=5 {
        let (code, _) =
            push(&lpr.url(PLATE_PATH), plate_result("hook-cam", &format!("京H{i:05}"), i, false, None).to_string(), "application/json")
                .await;
        assert_eq!(code, 200);
    }
    let mut seen = String::new();
    while !seen.contains("京H00001") {
        let chunk =
            tokio::time::timeout(Duration::from_secs(5), sse.chunk()).await.expect("an event in time").unwrap().expect("stream open");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(seen.contains("data: {\"event\":\"passage\",\"passage\":{") && seen.contains("\"event\":\"camera_online\""), "{seen}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let metrics = client().get(lpr.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(!metrics.contains("gbc_lpr_webhook_failures_total 0"), "deliveries were tried and failed: {metrics}");
    // It comes back: every passage is delivered, none lost.
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let _server = webhook_target(hook_port, got.clone()).await;
    let ok = eventually(Duration::from_secs(90), || async { got.lock().unwrap().len() >= 5 }).await;
    assert!(ok, "webhook got {} of 5; log:\n{}", got.lock().unwrap().len(), lpr.log_text());
    let ids: std::collections::BTreeSet<String> = got.lock().unwrap().iter().map(|p| p["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(ids.len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulated_camera_receives_the_whitelist_and_goes_offline_when_silent() {
    let redis = RedisServer::start().expect("redis-server");
    let dir = tempdir("sim");
    let lpr = LprProc::start(&redis.url(), &dir, &[("GBC_LPR__OFFLINE_AFTER_SECS", "1"), ("GBC_LPR__ALLOW_SERIALS", "[\"sim-0000\"]")]);
    let entries: Vec<Value> = (1..=12).map(|i| json!({"plate": format!("京S{i:05}"), "enable": 1, "need_alarm": 0})).collect();
    assert_eq!(client().post(lpr.url("/api/v1/lpr/groups/default/whitelist")).json(&entries).send().await.unwrap().status().as_u16(), 200);
    let mut sse = client().get(lpr.url("/api/v1/lpr/events")).send().await.unwrap();
    // gbsim's LPR camera (comet polling, 2 results a second, plates 京S00000-京S00019).
    let out = Command::new(env!("CARGO_BIN_EXE_gbcluster"))
        .args(["sim", "lpr", "--server", &lpr.url(""), "--cameras", "1", "--rate", "2", "--plates", "20", "--seconds", "3"])
        .output()
        .expect("sim lpr");
    let sim_end = kit::clock::now_ms();
    let report: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("sim output: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(report["whitelist_sizes"]["sim-0000"], 12, "the camera's copy matches: {report}");
    assert_eq!(report["whitelist_ops_applied"], 3, "12 entries in 3 replies: {report}");
    assert!(report["gate_openings"].as_u64().unwrap() > 0 && report["errors"] == 0, "{report}");
    // Unknown cameras are refused.
    let (code, _) = push(&lpr.url(PLATE_PATH), plate_result("intruder", "京A1", 1, false, None).to_string(), "application/json").await;
    assert_eq!(code, 403);
    // Silent for over a second: offline, once, and only after the camera went quiet.
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !seen.contains("camera_offline") && Instant::now() < deadline {
        if let Ok(Ok(Some(chunk))) = tokio::time::timeout(Duration::from_secs(2), sse.chunk()).await {
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
    let offline: Vec<Value> = seen
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter(|v| v["event"] == "camera_offline")
        .collect();
    assert_eq!(offline.len(), 1, "{seen}");
    assert!(offline[0]["at_ms"].as_u64().unwrap() >= sim_end, "offline reported while the camera was busy: {seen}");
    let cam = api(&lpr, "/api/v1/lpr/cameras/sim-0000").await;
    assert_eq!(cam["online"], false);
}
