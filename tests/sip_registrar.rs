//! The registrar end to end: real redis-server, real `gbcluster sip` processes, simulated and
//! hand-driven devices on real sockets.

mod support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use cluster::store::{RedisStore, Store};
use cluster::wire::DEVICE_EVENTS;
use gb::sip::digest::Challenge;
use support::*;
use testkit::RedisServer;
use tokio_util::sync::CancellationToken;

fn sim_config(server: std::net::SocketAddr, first: &str, devices: usize, channels: usize, tcp: bool) -> gbsim::SimConfig {
    gbsim::SimConfig {
        server: server.to_string(),
        first_device_id: first.into(),
        devices,
        channels,
        transport: if tcp { gbsim::SimTransport::Tcp } else { gbsim::SimTransport::Udp },
        ..Default::default()
    }
}

async fn device(p: &SipProc, id: &str) -> serde_json::Value {
    get_json(&p.api(&format!("/api/v1/devices/{id}"))).await.1
}

async fn channel_count(p: &SipProc, id: &str) -> usize {
    get_json(&p.api(&format!("/api/v1/devices/{id}/channels"))).await.1["total"].as_u64().unwrap_or(0) as usize
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_and_tcp_devices_register_and_report_catalogs_with_gb2312_names() {
    let redis = RedisServer::start().expect("redis-server");
    let p = SipProc::start(Some(&redis.url()), &[]);
    let stop = CancellationToken::new();
    let udp = gbsim::start(sim_config(p.sip_addr(), "34020000001320000001", 2, 30, false), stop.clone()).await.unwrap();
    let tcp = gbsim::start(sim_config(p.sip_addr(), "34020000001320000101", 2, 30, true), stop.clone()).await.unwrap();
    assert!(udp.wait_all_registered(Duration::from_secs(10)).await.is_some());
    assert!(tcp.wait_all_registered(Duration::from_secs(10)).await.is_some());

    let (code, list) = get_json(&p.api("/api/v1/devices?online=true")).await;
    assert_eq!(code, 200);
    assert_eq!(list["total"], 4);
    assert_eq!(device(&p, "34020000001320000001").await["transport"], "udp");
    assert_eq!(device(&p, "34020000001320000101").await["transport"], "tcp");
    for id in ["34020000001320000002", "34020000001320000102"] {
        assert!(eventually(Duration::from_secs(10), || async { channel_count(&p, id).await == 30 }).await, "catalog of {id}");
    }
    let (_, chans) = get_json(&p.api("/api/v1/devices/34020000001320000102/channels")).await;
    assert_eq!(chans["items"][0]["name"], "大门口1", "GB2312 on the wire, UTF-8 out of the API");
    // DeviceInfo and DeviceStatus answers race each other; both must land.
    for id in ["34020000001320000001", "34020000001320000002", "34020000001320000101", "34020000001320000102"] {
        assert!(
            eventually(Duration::from_secs(10), || async {
                let d = device(&p, id).await;
                d["info"]["manufacturer"] == "gbcluster" && d["status"]["online"] == "ONLINE"
            })
            .await,
            "info and status of {id}: {}",
            device(&p, id).await
        );
    }

    // Re-query through the API: the device is asked again and answers.
    let before = tcp.stats.queries_answered.load(Ordering::Relaxed);
    let r = reqwest::Client::new().post(p.api("/api/v1/devices/34020000001320000101/catalog")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 202);
    assert!(eventually(Duration::from_secs(5), || async { tcp.stats.queries_answered.load(Ordering::Relaxed) > before }).await);
    for what in ["info", "status"] {
        let before = tcp.stats.queries_answered.load(Ordering::Relaxed);
        let r = reqwest::Client::new().post(p.api(&format!("/api/v1/devices/34020000001320000101/{what}"))).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 202);
        assert!(eventually(Duration::from_secs(5), || async { tcp.stats.queries_answered.load(Ordering::Relaxed) > before }).await);
    }
    let r = reqwest::Client::new().post(p.api("/api/v1/devices/34020000001320000101/reboot")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 404);
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_of_2000_channels_arrives_in_pages_and_is_stored_whole() {
    let p = SipProc::start(None, &[]);
    let stop = CancellationToken::new();
    let mut cfg = sim_config(p.sip_addr(), "34020000001180000001", 1, 2000, false);
    cfg.catalog_page = 8;
    let sim = gbsim::start(cfg, stop.clone()).await.unwrap();
    assert!(sim.wait_all_registered(Duration::from_secs(10)).await.is_some());
    assert!(
        eventually(Duration::from_secs(30), || async { channel_count(&p, "34020000001180000001").await == 2000 }).await,
        "2000 channels in 250 MESSAGEs; log:\n{}",
        p.log_text()
    );
    assert_eq!(device(&p, "34020000001180000001").await["channel_count"], 2000);
    // An NVR sending 100 items per MESSAGE: ~45 KB datagrams, far past an 8 KiB receive buffer.
    let mut big = sim_config(p.sip_addr(), "34020000001180000002", 1, 2000, false);
    big.catalog_page = 100;
    let sim2 = gbsim::start(big, stop.clone()).await.unwrap();
    assert!(sim2.wait_all_registered(Duration::from_secs(10)).await.is_some());
    assert!(
        eventually(Duration::from_secs(30), || async { channel_count(&p, "34020000001180000002").await == 2000 }).await,
        "2000 channels in 20 large UDP MESSAGEs"
    );
    stop.cancel();
}

#[tokio::test]
async fn wrong_password_is_403_and_repeated_failures_lock_out_device_and_source() {
    let redis = RedisServer::start().expect("redis-server");
    let p = SipProc::start(Some(&redis.url()), &[("GBC_SIP__LOCKOUT_THRESHOLD", "3"), ("GBC_SIP__LOCKOUT_SECS", "60")]);
    let mut dev = RawDevice::new(p.sip_addr(), "34020000001320000201", None).await;
    for _ in 0..3 {
        assert_eq!(dev.register("wrong", 3600).await.code(), Some(403));
    }
    let locked = dev.register("12345678", 3600).await;
    assert_eq!(locked.code(), Some(403), "right password, but locked out");
    assert_eq!(locked.header("Retry-After"), Some("60"));
    // Another id from the same source IP is locked out too.
    let mut other = RawDevice::new(p.sip_addr(), "34020000001320000202", None).await;
    assert_eq!(other.register("12345678", 3600).await.code(), Some(403));
    assert!(p.log_text().contains("locked out"));
    // Per-device password from the Store wins over the global one (on a fresh server/store).
    let redis2 = RedisServer::start().expect("redis-server");
    let p2 = SipProc::start(Some(&redis2.url()), &[]);
    let store = RedisStore::connect(&redis2.url()).await.unwrap();
    store.set_device_password(&"34020000001320000203".parse().unwrap(), Some("own-pass")).await.unwrap();
    let mut own = RawDevice::new(p2.sip_addr(), "34020000001320000203", None).await;
    assert_eq!(own.register("12345678", 3600).await.code(), Some(403));
    assert_eq!(own.register("own-pass", 3600).await.code(), Some(200));
}

#[tokio::test]
async fn expired_nonce_is_challenged_again_with_stale_true() {
    let p = SipProc::start(None, &[("GBC_SIP__NONCE_TTL_SECS", "1")]);
    let mut dev = RawDevice::new(p.sip_addr(), "34020000001320000301", None).await;
    let first = dev.exchange("REGISTER", &[("Expires", "3600".into())], b"").await;
    assert_eq!(first.code(), Some(401));
    let ch = Challenge::parse(first.header("WWW-Authenticate").unwrap()).unwrap();
    assert!(ch.qop_auth);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let stale = dev.register_with(&ch, "12345678", 3600).await;
    assert_eq!(stale.code(), Some(401));
    let again = Challenge::parse(stale.header("WWW-Authenticate").unwrap()).unwrap();
    assert!(again.stale, "stale=true tells the device its password was fine");
    assert_eq!(dev.register_with(&again, "12345678", 3600).await.code(), Some(200));
}

#[tokio::test]
async fn gb2022_devices_are_offered_sha256_first() {
    let p = SipProc::start(None, &[]);
    let mut dev = RawDevice::new(p.sip_addr(), "34020000001320000351", None).await;
    dev.always.push(("X-GB-Ver", "3.0".into()));
    let r = dev.exchange("REGISTER", &[("Expires", "3600".into())], b"").await;
    let algs: Vec<_> = r.headers_named("WWW-Authenticate").map(|h| Challenge::parse(h).unwrap().algorithm).collect();
    assert_eq!(algs, vec![gb::sip::digest::Algorithm::Sha256, gb::sip::digest::Algorithm::Md5]);
    let ch = Challenge::parse(r.headers_named("WWW-Authenticate").next().unwrap()).unwrap();
    let ok = dev.register_with(&ch, "12345678", 3600).await;
    assert_eq!(ok.code(), Some(200));
    assert_eq!(device(&p, "34020000001320000351").await["gb_version"], "3.0");
}

#[tokio::test]
async fn register_200_carries_expires_contact_and_gb_date_and_bounds_are_enforced() {
    let p = SipProc::start(None, &[("GBC_SIP__MAX_EXPIRES_SECS", "7200")]);
    let mut dev = RawDevice::new(p.sip_addr(), "34020000001320000401", None).await;
    let short = dev.register("12345678", 10).await;
    assert_eq!(short.code(), Some(423));
    assert_eq!(short.header("Min-Expires"), Some("60"));
    let ok = dev.register("12345678", 100_000).await;
    assert_eq!(ok.code(), Some(200));
    assert_eq!(ok.header("Expires"), Some("7200"), "clamped to max");
    assert!(ok.header("Contact").is_some_and(|c| c.contains("34020000001320000401")));
    let date = ok.header("Date").expect("GB Date header");
    assert_eq!(date.len(), 23, "YYYY-MM-DDTHH:MM:SS.mmm, got {date}");
    assert_eq!(&date[10..11], "T");
    assert_eq!(&date[19..20], ".");
    // Bad ids are refused.
    let mut bad = RawDevice::new(p.sip_addr(), "12345", None).await;
    assert_eq!(bad.exchange("REGISTER", &[], b"").await.code(), Some(400));
}

#[tokio::test]
async fn keepalives_refresh_and_missing_ones_take_the_device_offline_with_an_event() {
    let redis = RedisServer::start().expect("redis-server");
    let p = SipProc::start(
        Some(&redis.url()),
        &[("GBC_SIP__KEEPALIVE_INTERVAL_SECS", "1"), ("GBC_SIP__KEEPALIVE_MISSES", "2"), ("GBC_SIP__QUERY_ON_REGISTER", "false")],
    );
    let store = RedisStore::connect(&redis.url()).await.unwrap();
    let mut events = store.subscribe(DEVICE_EVENTS).await.unwrap();
    let id = "34020000001320000501";
    let mut dev = RawDevice::new(p.sip_addr(), id, None).await;
    assert_eq!(dev.register("12345678", 3600).await.code(), Some(200));
    let ev: serde_json::Value =
        serde_json::from_str(&tokio::time::timeout(Duration::from_secs(5), events.recv()).await.unwrap().unwrap()).unwrap();
    assert_eq!((ev["device_id"].as_str(), ev["online"].as_bool()), (Some(id), Some(true)));
    for _ in 0..3 {
        assert_eq!(dev.keepalive().await.code(), Some(200));
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    assert_eq!(device(&p, id).await["online"], true, "kept alive past the 2 s timeout");
    // Silence: offline after 2 missed intervals.
    let ev: serde_json::Value =
        serde_json::from_str(&tokio::time::timeout(Duration::from_secs(6), events.recv()).await.unwrap().unwrap()).unwrap();
    assert_eq!(ev["online"], false);
    assert_eq!(ev["reason"], "keepalive timeout");
    assert_eq!(device(&p, id).await["online"], false);
    // A keepalive brings it back while the registration lasts.
    assert_eq!(dev.keepalive().await.code(), Some(200));
    let ev: serde_json::Value =
        serde_json::from_str(&tokio::time::timeout(Duration::from_secs(5), events.recv()).await.unwrap().unwrap()).unwrap();
    assert_eq!((ev["online"].as_bool(), ev["reason"].as_str()), (Some(true), Some("keepalive")));
    // Unregister: offline at once, and keepalives are refused so the camera registers again.
    assert_eq!(dev.register("12345678", 0).await.code(), Some(200));
    assert_eq!(device(&p, id).await["online"], false);
    assert_eq!(dev.keepalive().await.code(), Some(404));
    let mut stranger = RawDevice::new(p.sip_addr(), "34020000001320000599", None).await;
    assert_eq!(stranger.keepalive().await.code(), Some(404));
}

/// Quirk: some device stacks send `<Notify CmdType="Keepalive" SN="…" DeviceID="…">`. Such
/// keepalives got 400 and the device fell offline and re-registered in a loop.
#[tokio::test]
async fn a_keepalive_with_its_header_in_root_attributes_keeps_the_device_online() {
    let p = SipProc::start(
        None,
        &[("GBC_SIP__KEEPALIVE_INTERVAL_SECS", "1"), ("GBC_SIP__KEEPALIVE_MISSES", "2"), ("GBC_SIP__QUERY_ON_REGISTER", "false")],
    );
    let id = "34020000001320000521";
    let mut dev = RawDevice::new(p.sip_addr(), id, None).await;
    assert_eq!(dev.register("12345678", 3600).await.code(), Some(200));
    for sn in 0..5 {
        let body = format!("<?xml version=\"1.0\" encoding=\"GB2312\"?>\r\n<Notify CmdType=\"Keepalive\" SN=\"{sn}\" DeviceID=\"{id}\"><Status>OK</Status></Notify>\r\n");
        assert_eq!(dev.exchange("MESSAGE", &[], body.as_bytes()).await.code(), Some(200), "keepalive {sn}");
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    assert_eq!(device(&p, id).await["online"], true, "kept alive past the 2 s timeout");
}

#[tokio::test]
async fn registration_expiry_takes_the_device_offline() {
    let p = SipProc::start(None, &[("GBC_SIP__MIN_EXPIRES_SECS", "1"), ("GBC_SIP__QUERY_ON_REGISTER", "false")]);
    let id = "34020000001320000551";
    let mut dev = RawDevice::new(p.sip_addr(), id, None).await;
    assert_eq!(dev.register("12345678", 2).await.code(), Some(200));
    assert_eq!(device(&p, id).await["online"], true);
    assert!(eventually(Duration::from_secs(6), || async { device(&p, id).await["online"] == false }).await);
    assert!(p.log_text().contains("registration expired"));
}

#[tokio::test]
async fn device_behind_nat_is_answered_and_queried_at_its_observed_address() {
    let p = SipProc::start(None, &[]);
    let id = "34020000001320000601";
    // Via and Contact claim 10.255.0.7:5060, unroutable from here; only the real socket works.
    let mut dev = RawDevice::new(p.sip_addr(), id, Some("10.255.0.7")).await;
    assert_eq!(dev.register("12345678", 3600).await.code(), Some(200), "the answer came back to the real socket");
    let real = dev.sock.local_addr().unwrap();
    // The server now queries the device (DeviceInfo first): it must arrive here.
    let q = dev.recv(Duration::from_secs(5)).await.expect("query reached the observed address");
    assert_eq!(q.method(), Some("MESSAGE"));
    match &q.start {
        gb::sip::lite::StartLine::Request { uri, .. } => assert!(uri.contains(&real.to_string()), "{uri}"),
        _ => unreachable!(),
    }
    let d = device(&p, id).await;
    assert_eq!(d["source_addr"], real.to_string());
    assert!(d["contact"].as_str().unwrap().contains("10.255.0.7"));
}

#[tokio::test]
async fn sip_server_restart_serves_the_same_devices_from_redis() {
    let redis = RedisServer::start().expect("redis-server");
    let port = testkit::free_port();
    let mut p = SipProc::start_on(port, Some(&redis.url()), &[("GBC_SIP__QUERY_ON_REGISTER", "false")]);
    let mut dev = RawDevice::new(p.sip_addr(), "34020000001320000701", None).await;
    assert_eq!(dev.register("12345678", 3600).await.code(), Some(200));
    p.kill();
    let p2 = SipProc::start_on(port, Some(&redis.url()), &[]);
    let (_, list) = get_json(&p2.api("/api/v1/devices")).await;
    assert_eq!(list["total"], 1);
    assert_eq!(list["items"][0]["id"], "34020000001320000701");
    assert_eq!(list["items"][0]["online"], true);
    // And the device keeps working against the new process.
    assert_eq!(dev.keepalive().await.code(), Some(200));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_asked_on_another_node_is_routed_to_the_owner_over_redis() {
    let redis = RedisServer::start().expect("redis-server");
    let a = SipProc::start(Some(&redis.url()), &[]);
    let b = SipProc::start(Some(&redis.url()), &[]);
    let stop = CancellationToken::new();
    let sim = gbsim::start(sim_config(a.sip_addr(), "34020000001320000801", 1, 3, false), stop.clone()).await.unwrap();
    assert!(sim.wait_all_registered(Duration::from_secs(10)).await.is_some());
    assert!(eventually(Duration::from_secs(5), || async { sim.stats.queries_answered.load(Ordering::Relaxed) >= 3 }).await);
    let before = sim.stats.queries_answered.load(Ordering::Relaxed);
    let r = reqwest::Client::new().post(b.api("/api/v1/devices/34020000001320000801/catalog")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 202);
    assert!(
        eventually(Duration::from_secs(5), || async { sim.stats.queries_answered.load(Ordering::Relaxed) > before }).await,
        "node b routed the query to node a, which owns the device's socket"
    );
    stop.cancel();
}

#[tokio::test]
async fn api_requires_the_bearer_token_and_answers_errors_as_json() {
    let p = SipProc::start(None, &[("GBC_SIP__API__TOKEN", "s3cret"), ("GBC_SIP__QUERY_ON_REGISTER", "false")]);
    let c = reqwest::Client::new();
    let r = c.get(p.api("/api/v1/devices")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["code"], 401);
    let auth = |rb: reqwest::RequestBuilder| rb.header("Authorization", "Bearer s3cret");
    assert_eq!(auth(c.get(p.api("/api/v1/devices"))).send().await.unwrap().status().as_u16(), 200);
    let r = auth(c.get(p.api("/api/v1/devices/34020000001320009999"))).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 404);
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["code"], 404);
    assert_eq!(auth(c.get(p.api("/api/v1/devices/abc"))).send().await.unwrap().status().as_u16(), 400);
    assert_eq!(auth(c.get(p.api("/api/v1/devices?limit=x"))).send().await.unwrap().status().as_u16(), 400);
    // healthz and metrics stay open for probes and scrapers.
    assert_eq!(c.get(p.api("/healthz")).send().await.unwrap().status().as_u16(), 200);
    // Delete.
    let mut dev = RawDevice::new(p.sip_addr(), "34020000001320000901", None).await;
    assert_eq!(dev.register("12345678", 3600).await.code(), Some(200));
    assert_eq!(auth(c.delete(p.api("/api/v1/devices/34020000001320000901"))).send().await.unwrap().status().as_u16(), 204);
    assert_eq!(auth(c.delete(p.api("/api/v1/devices/34020000001320000901"))).send().await.unwrap().status().as_u16(), 404);
    assert_eq!(dev.keepalive().await.code(), Some(404), "a deleted device must register again");
    // A per-device password set through the API.
    let r = auth(c.put(p.api("/api/v1/devices/34020000001320000901/password")))
        .json(&serde_json::json!({"password": "pw2"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    assert_eq!(dev.register("12345678", 3600).await.code(), Some(403));
}

#[tokio::test]
async fn malformed_oversize_and_unsupported_sip_never_take_the_server_down() {
    let p = SipProc::start(None, &[("GBC_SIP__MAX_MESSAGE_BYTES", "4000"), ("GBC_SIP__QUERY_ON_REGISTER", "false")]);
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for junk in [&b"\x00\xff garbage"[..], b"REGISTER\r\n\r\n", b"SIP/2.0 200\r\n\r\n", b"INVITE sip:x SIP/2.0\r\nVia: x\r\n\r\n"] {
        sock.send_to(junk, p.sip_addr()).await.unwrap();
    }
    let mut big = RawDevice::new(p.sip_addr(), "34020000001320001001", None).await;
    let huge = big.request("MESSAGE", &[], &vec![b'x'; 5000]);
    big.sock.send_to(&huge, p.sip_addr()).await.unwrap();
    // TCP junk that is not SIP at all.
    if let Ok(mut s) = tokio::net::TcpStream::connect(p.sip_addr()).await {
        use tokio::io::AsyncWriteExt;
        let _ = s.write_all(&[0x16, 0x03, 0x01, 0xff, 0xff]).await;
        let _ = s.write_all(b"MESSAGE sip:x SIP/2.0\r\nContent-Length: 99999999\r\n\r\n").await;
    }
    // Unsupported method: 405.
    let mut dev = RawDevice::new(p.sip_addr(), "34020000001320001002", None).await;
    assert_eq!(dev.exchange("SUBSCRIBE", &[("Event", "Catalog".into())], b"").await.code(), Some(405));
    // An unusable MANSCDP body: 400.
    assert_eq!(dev.register("12345678", 3600).await.code(), Some(200));
    assert_eq!(dev.exchange("MESSAGE", &[], b"<Notify><CmdType>").await.code(), Some(400));
    // Still serving.
    assert_eq!(dev.keepalive().await.code(), Some(200));
    let metrics = reqwest::get(p.api("/metrics")).await.unwrap().text().await.unwrap();
    let value = |name: &str| -> u64 {
        metrics
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    assert!(value("gbc_sip_malformed_dropped_total") >= 2, "{metrics}");
    assert_eq!(value("gbc_sip_oversize_dropped_total"), 1);
    assert_eq!(value("gbc_sip_devices_online"), 1);
}

#[tokio::test]
async fn allow_list_auth_off_and_unknown_cmd_types() {
    // Only ids starting 4401 may register.
    let p = SipProc::start(None, &[("GBC_SIP__ALLOW_PREFIXES", "[\"4401\"]"), ("GBC_SIP__QUERY_ON_REGISTER", "false")]);
    let mut stranger = RawDevice::new(p.sip_addr(), "34020000001320003001", None).await;
    assert_eq!(stranger.exchange("REGISTER", &[("Expires", "3600".into())], b"").await.code(), Some(403));
    let mut local = RawDevice::new(p.sip_addr(), "44010000001320003001", None).await;
    assert_eq!(local.register("12345678", 3600).await.code(), Some(200));
    // A CmdType we do not handle is still answered 200 (and logged), so cameras do not retry it.
    let body = "<?xml version=\"1.0\" encoding=\"GB2312\"?>\r\n<Notify>\r\n<CmdType>Broadcast</CmdType>\r\n<SN>9</SN>\r\n<DeviceID>44010000001320003001</DeviceID>\r\n<SourceID>44010000002000000001</SourceID>\r\n</Notify>\r\n";
    assert_eq!(local.exchange("MESSAGE", &[], body.as_bytes()).await.code(), Some(200));
    assert!(eventually(Duration::from_secs(3), || async { p.log_text().contains("Broadcast") }).await);

    // With auth off, a REGISTER is accepted at once.
    let open = SipProc::start(None, &[("GBC_SIP__AUTH", "false"), ("GBC_SIP__QUERY_ON_REGISTER", "false")]);
    let mut dev = RawDevice::new(open.sip_addr(), "34020000001320003002", None).await;
    assert_eq!(dev.exchange("REGISTER", &[("Expires", "3600".into())], b"").await.code(), Some(200));
    assert_eq!(device(&open, "34020000001320003002").await["online"], true);
}

#[tokio::test]
async fn a_retransmitted_register_is_answered_once_and_changes_nothing() {
    let p = SipProc::start(None, &[("GBC_SIP__AUTH", "false"), ("GBC_SIP__QUERY_ON_REGISTER", "false")]);
    let mut dev = RawDevice::new(p.sip_addr(), "34020000001320003101", None).await;
    let req = dev.request("REGISTER", &[("Expires", "3600".into())], b"");
    for _ in 0..3 {
        dev.sock.send_to(&req, p.sip_addr()).await.unwrap();
    }
    let mut oks = 0;
    while let Some(m) = dev.recv(Duration::from_millis(700)).await {
        if m.code() == Some(200) {
            oks += 1;
        }
    }
    // Copies that arrive while the first is handled are dropped; it is answered.
    assert!((1..=3).contains(&oks), "every copy answered at most once: {oks}");
    // A copy after the answer (the device lost our 200) gets the same 200 again.
    dev.sock.send_to(&req, p.sip_addr()).await.unwrap();
    let mut again = 0;
    while let Some(m) = dev.recv(Duration::from_millis(700)).await {
        again += usize::from(m.code() == Some(200));
    }
    assert_eq!(again, 1, "the late copy is answered once");
    let (_, list) = get_json(&p.api("/api/v1/devices")).await;
    assert_eq!(list["total"], 1);
    let metrics = reqwest::get(p.api("/metrics")).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("gbc_sip_devices_online 1"), "{metrics}");
    // "Once": four copies, one registration; the others were answered from what was kept.
    assert!(metrics.contains("gbc_sip_registers_total 1\n"), "the copies registered again: {metrics}");
    // Each 200 besides the first was a kept answer sent again: oks - 1 in the burst, 1 late.
    assert!(metrics.contains(&format!("gbc_sip_register_retransmissions_answered_total {oks}\n")), "{metrics}");
}
