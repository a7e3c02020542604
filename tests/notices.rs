//! What devices report unasked: an alarm is answered (200, then the standard's `Response`
//! Result OK with its SN), kept newest first within its cap and on the console's event stream
//! within a second; a MobilePosition is kept as the latest of its source and on its track, and
//! streamed too. gbsim raises both on a schedule like a camera.

mod support;

use std::time::{Duration, Instant};

use gb::model::{Alarm, Position};
use support::{eventually, get_json, Events, RawDevice, SimProc, SipProc};

/// The next MESSAGE the device receives (answered 200) that carries `cmd`.
async fn next_message(dev: &RawDevice, sip: &SipProc, cmd: &str) -> gb::manscdp::Message {
    loop {
        let m = dev.recv(Duration::from_secs(5)).await.expect("a MESSAGE reaches the device");
        if m.method() != Some("MESSAGE") {
            continue;
        }
        let Ok(msg) = gb::manscdp::parse(&m.body) else { continue };
        if msg.header.cmd_type == cmd {
            dev.sock.send_to(&m.response(200, "OK", "dev1", &[], None), sip.sip_addr()).await.unwrap();
            return msg;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alarms_and_positions_are_answered_kept_and_streamed_within_a_second() {
    let sip = SipProc::start(None, &[("GBC_SIP__QUERY_ON_REGISTER", "false"), ("GBC_SIP__ALARM_HISTORY", "5")]);
    let id = "34020000001320000951";
    let alarm_input = "34020000001340000001";
    let mut dev = RawDevice::new(sip.sip_addr(), id, None).await;
    assert_eq!(dev.register("12345678", 3600).await.code(), Some(200));
    let mut events = Events::open(&sip).await;

    // An alarm from an alarm input, its time in the device's zone (UTC+8, from our Date header).
    let alarm = Alarm {
        priority: Some(1),
        method: Some(2),
        time: Some("2026-12-01T10:00:00".into()),
        description: Some("周界入侵".into()),
        alarm_type: Some(1),
        ..Default::default()
    };
    let t0 = Instant::now();
    assert_eq!(dev.exchange("MESSAGE", &[], &gb::manscdp::build::alarm_notify(77, alarm_input, &alarm)).await.code(), Some(200));
    let ev = events.next("alarm", alarm_input, Duration::from_secs(1)).await.expect("the alarm on the event stream within 1 s");
    let latency = t0.elapsed();
    assert_eq!(
        (ev["device_id"].as_str(), ev["source_id"].as_str(), ev["priority"].as_u64(), ev["method_name"].as_str()),
        (Some(id), Some(alarm_input), Some(1), Some("device"))
    );
    assert_eq!((ev["time"].as_str(), ev["description"].as_str()), (Some("2026-12-01T02:00:00Z"), Some("周界入侵")), "{ev}");
    // The standard's answer: a Response with Result OK and the alarm's SN.
    let answer = next_message(&dev, &sip, "Alarm").await;
    assert_eq!((answer.header.root, answer.header.sn, answer.header.device_id.as_str()), (gb::manscdp::Root::Response, 77, alarm_input));

    // A position.
    let pos = Position {
        time: Some("2026-12-01T10:00:05".into()),
        longitude: Some(121.47),
        latitude: Some(31.23),
        speed: Some(40.0),
        ..Default::default()
    };
    let t1 = Instant::now();
    assert_eq!(dev.exchange("MESSAGE", &[], &gb::manscdp::build::mobile_position_notify(78, id, &pos)).await.code(), Some(200));
    let ev = events.next("position", id, Duration::from_secs(1)).await.expect("the position on the event stream within 1 s");
    let position_latency = t1.elapsed();
    assert_eq!(
        (ev["longitude"].as_f64(), ev["latitude"].as_f64(), ev["time"].as_str()),
        (Some(121.47), Some(31.23), Some("2026-12-01T02:00:05Z"))
    );
    eprintln!("device → SSE: alarm {latency:?}, position {position_latency:?}");

    // Kept: the device's alarms newest first, capped at 5; the cluster's list has them too.
    for i in 0..7u32 {
        let a = Alarm { priority: Some(2), method: Some(5), description: Some(format!("a{i}")), ..Default::default() };
        assert_eq!(dev.exchange("MESSAGE", &[], &gb::manscdp::build::alarm_notify(100 + i, id, &a)).await.code(), Some(200));
    }
    let path = sip.api(&format!("/api/v1/devices/{id}/alarms?limit=3"));
    assert!(eventually(Duration::from_secs(3), || async { get_json(&path).await.1["items"][0]["description"] == "a6" }).await);
    let (_, mine) = get_json(&path).await;
    assert_eq!(mine["total"].as_u64(), Some(5), "{mine}");
    let words: Vec<&str> = mine["items"].as_array().unwrap().iter().map(|a| a["description"].as_str().unwrap()).collect();
    assert_eq!(words, ["a6", "a5", "a4"]);
    let (_, all) = get_json(&sip.api(&format!("/api/v1/alarms?device={id}&offset=5&limit=5"))).await;
    assert_eq!(all["total"].as_u64(), Some(5));
    let (_, all) = get_json(&sip.api("/api/v1/alarms?limit=100")).await;
    assert_eq!(all["total"].as_u64(), Some(8), "the cluster-wide list keeps all 8: {all}");
    assert_eq!(all["items"][7]["source_id"], alarm_input);

    // Positions: the latest per source, and the track newest first.
    let p2 = Position { longitude: Some(121.48), latitude: Some(31.24), ..Default::default() };
    assert_eq!(dev.exchange("MESSAGE", &[], &gb::manscdp::build::mobile_position_notify(79, id, &p2)).await.code(), Some(200));
    let no_fix = Position { longitude: None, latitude: Some(31.0), ..Default::default() };
    assert_eq!(dev.exchange("MESSAGE", &[], &gb::manscdp::build::mobile_position_notify(80, id, &no_fix)).await.code(), Some(200));
    let (_, latest) = get_json(&sip.api(&format!("/api/v1/devices/{id}/positions"))).await;
    assert_eq!((latest["total"].as_u64(), latest["items"][0]["longitude"].as_f64()), (Some(1), Some(121.48)), "{latest}");
    let (_, track) = get_json(&sip.api(&format!("/api/v1/devices/{id}/positions/{id}/track"))).await;
    let lons: Vec<f64> = track["items"].as_array().unwrap().iter().map(|p| p["longitude"].as_f64().unwrap()).collect();
    assert_eq!(lons, [121.48, 121.47], "a report without a fix is not kept");
    let (code, _) = get_json(&sip.api(&format!("/api/v1/devices/{id}/positions/x/track"))).await;
    assert_eq!(code, 400);
    let metrics = reqwest::get(sip.api("/metrics")).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("gbc_sip_alarms_total 8") && metrics.contains("gbc_sip_positions_total 3"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gbsim_raises_alarms_and_reports_positions_on_a_schedule() {
    let sip = SipProc::start(None, &[]);
    let first = "34020000001320000961";
    let _cam = SimProc::start(
        sip.sip_addr(),
        first,
        1,
        "udp",
        &[("GBC_SIM__ALARM_EVERY_SECS", "1"), ("GBC_SIM__POSITION_EVERY_SECS", "1"), ("GBC_SIM__UTC_OFFSET_MINUTES", "0")],
    );
    let dev = gbsim::device_id(first, 0).unwrap();
    let alarms = sip.api(&format!("/api/v1/devices/{dev}/alarms"));
    assert!(eventually(Duration::from_secs(10), || async { get_json(&alarms).await.1["total"].as_u64() >= Some(3) }).await);
    let (_, a) = get_json(&alarms).await;
    let first_alarm = &a["items"][0];
    assert_eq!((first_alarm["method_name"].as_str(), first_alarm["alarm_type"].as_u64()), (Some("video"), Some(2)), "{a}");
    assert_eq!(first_alarm["description"].as_str(), Some("移动侦测"));
    // Its time, written in the camera's zone (UTC here, learnt from its DeviceTime), is now.
    let t = kit::clock::stamp::parse(first_alarm["time"].as_str().unwrap()).unwrap().unix_secs(0);
    assert!((t - (kit::clock::now_ms() / 1000) as i64).abs() < 10, "{first_alarm}");
    let track = sip.api(&format!("/api/v1/devices/{dev}/positions/{dev}/track"));
    assert!(eventually(Duration::from_secs(10), || async { get_json(&track).await.1["total"].as_u64() >= Some(3) }).await);
    let (_, t) = get_json(&track).await;
    let lons: Vec<f64> = t["items"].as_array().unwrap().iter().map(|p| p["longitude"].as_f64().unwrap()).collect();
    assert!(lons.windows(2).any(|w| w[0] != w[1]) && lons.iter().all(|l| (l - 116.39).abs() < 0.002), "moving: {lons:?}");
}
