//! RecordInfo across real processes: the API's query reaches the device in its local time, the
//! device's MESSAGEs are gathered by SN up to `SumNum`, and the recordings come back as
//! instants — the same instants from a camera at UTC+0 and one at UTC+8. A flood past the
//! bound is cut and said to be, a device that goes quiet gives what it sent, and nothing is
//! left waiting afterwards.

mod support;

use std::time::Duration;

use gb::model::RecordItem;
use gb::records::RecordType;
use serde_json::Value;
use support::{get_json, RawDevice, SimProc, SipProc};

fn now_secs() -> i64 {
    (kit::clock::now_ms() / 1000) as i64
}

async fn records(sip: &SipProc, dev: &str, ch: &str, query: &str) -> (u16, Value) {
    let url = sip.api(&format!("/api/v1/devices/{dev}/channels/{ch}/records?{query}"));
    let r = reqwest::Client::new().get(url).timeout(Duration::from_secs(90)).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn awaited(sip: &SipProc) -> String {
    let m = reqwest::get(sip.api("/metrics")).await.unwrap().text().await.unwrap();
    m.lines().find(|l| l.starts_with("gbc_sip_answers_awaited ")).unwrap_or_default().to_owned()
}

/// Two gbsim cameras, one keeping UTC and one China time: the same day asked in RFC 3339 gives
/// the same recordings as instants, exactly the camera's catalogue, gathered from 10-item
/// MESSAGEs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recordings_come_back_as_instants_whatever_the_cameras_zone() {
    let sip = SipProc::start(None, &[]);
    let cams = [("34020000001320000901", 0), ("34020000001320000911", 480)];
    let _sims: Vec<SimProc> = cams
        .iter()
        .map(|(first, offset)| SimProc::start(sip.sip_addr(), first, 1, "udp", &[("GBC_SIM__UTC_OFFSET_MINUTES", &offset.to_string())]))
        .collect();
    let now = now_secs();
    let (start, end) = (now - 86_400, now);
    let query = format!("start={}&end={}", kit::clock::stamp::format_utc(start), kit::clock::stamp::format_utc(end));
    let mut answers = Vec::new();
    for (first, offset) in cams {
        let dev = gbsim::device_id(first, 0).unwrap();
        let ch = gbsim::device::channel_ids(&dev, 0, 2)[0].clone();
        // The device's offset is learnt from its DeviceStatus, asked after it registers.
        let path = sip.api(&format!("/api/v1/devices/{dev}"));
        assert!(
            support::eventually(Duration::from_secs(20), || async { get_json(&path).await.1["status"]["utc_offset_minutes"] == offset })
                .await,
            "{}",
            get_json(&path).await.1
        );
        let (code, r) = records(&sip, &dev, &ch, &query).await;
        assert_eq!(code, 200, "{r}");
        assert_eq!((r["utc_offset_minutes"].as_i64(), r["offset_source"].as_str()), (Some(offset), Some("device_time")), "{r}");
        assert_eq!((r["complete"].as_bool(), r["truncated"].as_bool()), (Some(true), Some(false)), "{r}");
        // Exactly the camera's catalogue (asked a moment later, a file may have finished since).
        let catalogue = gbsim::records::Catalogue { utc_offset_minutes: offset as i32, days: 7, file_secs: gbsim::records::FILE_SECS };
        let expect: Vec<i64> = catalogue
            .files(&ch, "", start, end, RecordType::All, now_secs())
            .iter()
            .map(|i| kit::clock::stamp::parse(i.start_time.as_deref().unwrap()).unwrap().unix_secs(offset as i32))
            .collect();
        let got: Vec<i64> = r["items"].as_array().unwrap().iter().map(|i| i["start_unix"].as_i64().unwrap()).collect();
        assert!(got.len() >= 80, "a day of quarter hours less the gaps: {}", got.len());
        assert_eq!(got[..], expect[..got.len().min(expect.len())], "the camera's files, in order");
        assert_eq!(r["messages"].as_u64(), Some(got.len().div_ceil(10) as u64), "10 items per MESSAGE");
        let first_item = &r["items"][0];
        assert_eq!(first_item["end_unix"].as_i64().unwrap() - first_item["start_unix"].as_i64().unwrap(), 900);
        assert_eq!(first_item["start"].as_str().unwrap(), kit::clock::stamp::format_utc(got[0]));
        assert_eq!(first_item["device_start"].as_str().unwrap(), kit::clock::stamp::format_local(got[0], offset as i32));
        assert_eq!(first_item["name"].as_str(), Some("大门口1"));
        answers.push(got.clone());
        // By type: only alarm recordings, a subset.
        let (code, alarms) = records(&sip, &dev, &ch, &format!("{query}&type=alarm")).await;
        assert_eq!(code, 200, "{alarms}");
        let alarms = alarms["items"].as_array().unwrap();
        assert!(!alarms.is_empty() && alarms.len() < 20 && alarms.iter().all(|i| i["type"] == "alarm"), "{alarms:?}");
        // A zoneless time is the camera's local time: the same hour asked both ways.
        let hour = (got[0], got[0] + 3600);
        let local = format!(
            "start={}&end={}",
            kit::clock::stamp::format_local(hour.0, offset as i32),
            kit::clock::stamp::format_local(hour.1, offset as i32)
        );
        let (_, a) = records(&sip, &dev, &ch, &local).await;
        let (_, b) = records(&sip, &dev, &ch, &format!("start={}&end={}", hour.0, hour.1)).await;
        assert_eq!(a["items"], b["items"]);
        assert!(a["total"].as_u64().unwrap() >= 3, "{a}");
    }
    assert_eq!(answers[0], answers[1], "the same instants from UTC and UTC+8 cameras");
    assert_eq!(awaited(&sip).await, "gbc_sip_answers_awaited 0");
}

fn item(ch: &str, k: i64, offset: i32) -> RecordItem {
    RecordItem {
        device_id: Some(ch.into()),
        name: Some("cam".into()),
        file_path: Some(format!("/rec/{k}")),
        start_time: Some(kit::clock::stamp::format_local(k * 60, offset)),
        end_time: Some(kit::clock::stamp::format_local(k * 60 + 60, offset)),
        record_type: Some("time".into()),
        ..Default::default()
    }
}

/// The next RecordInfo query the raw device receives, answered 200; its SN and times.
async fn next_query(dev: &RawDevice, sip: &SipProc) -> (u32, String, String) {
    loop {
        let m = dev.recv(Duration::from_secs(10)).await.expect("a query reaches the device");
        if m.method() != Some("MESSAGE") {
            continue;
        }
        let Ok(q) = gb::manscdp::parse(&m.body) else { continue };
        if let gb::manscdp::Body::RecordQuery { start_time, end_time, .. } = q.body {
            dev.sock.send_to(&m.response(200, "OK", "dev1", &[], None), sip.sip_addr()).await.unwrap();
            return (q.header.sn, start_time.unwrap_or_default(), end_time.unwrap_or_default());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_is_cut_at_the_bound_and_a_quiet_device_gives_what_it_sent() {
    let sip = SipProc::start(None, &[("GBC_SIP__QUERY_ON_REGISTER", "false"), ("GBC_SIP__RECORD_QUIET_MS", "1500")]);
    let id = "34020000001320000921";
    let mut dev = RawDevice::new(sip.sip_addr(), id, None).await;
    assert_eq!(dev.register("12345678", 3600).await.code(), Some(200));
    let base = now_secs() / 60 - 20_000;

    // No DeviceStatus: times go out in the zone our Date header gave the device (UTC+8).
    let start = base * 60;
    let call = tokio::spawn({
        let url = sip.api(&format!("/api/v1/devices/{id}/channels/{id}/records?start={start}&end={}", start + 86_400 * 30));
        async move { reqwest::Client::new().get(url).send().await.unwrap().json::<Value>().await.unwrap() }
    });
    let (sn, q_start, _) = next_query(&dev, &sip).await;
    assert_eq!(q_start, kit::clock::stamp::format_local(start, 480));
    // 12,000 recordings announced and sent in MESSAGEs of 50; the bound is 10,000.
    for page in 0..240 {
        let items: Vec<RecordItem> = (0..50).map(|i| item(id, base + page * 50 + i, 480)).collect();
        let body = gb::manscdp::build::record_info_response(sn, id, "cam", 12_000, &items);
        assert_eq!(dev.exchange("MESSAGE", &[], &body).await.code(), Some(200), "every MESSAGE is answered, kept or not");
    }
    let r = call.await.unwrap();
    assert_eq!(
        (r["total"].as_u64(), r["truncated"].as_bool(), r["complete"].as_bool()),
        (Some(10_000), Some(true), Some(false)),
        "{}",
        r["total"]
    );
    assert_eq!((r["utc_offset_minutes"].as_i64(), r["offset_source"].as_str()), (Some(480), Some("date_header")));
    assert_eq!(r["items"][0]["start_unix"].as_i64(), Some(base * 60), "read back in the same zone");
    assert_eq!(awaited(&sip).await, "gbc_sip_answers_awaited 0", "nothing held after a flood");

    // A device that announces 30 and sends 20 then goes quiet: the 20, not complete.
    let call = tokio::spawn({
        let url = sip.api(&format!("/api/v1/devices/{id}/channels/{id}/records?start={start}&end={}&type=time", start + 3600));
        async move { reqwest::Client::new().get(url).send().await.unwrap().json::<Value>().await.unwrap() }
    });
    let (sn, _, _) = next_query(&dev, &sip).await;
    let items: Vec<RecordItem> = (0..20).map(|i| item(id, base + i, 480)).collect();
    let t0 = std::time::Instant::now();
    assert_eq!(dev.exchange("MESSAGE", &[], &gb::manscdp::build::record_info_response(sn, id, "cam", 30, &items)).await.code(), Some(200));
    let r = call.await.unwrap();
    assert_eq!((r["total"].as_u64(), r["sum_num"].as_u64(), r["complete"].as_bool()), (Some(20), Some(30), Some(false)), "{r}");
    assert!(t0.elapsed() >= Duration::from_millis(1400), "waited record_quiet_ms for the rest");
    // A late MESSAGE of that answer is taken (200) and dropped.
    assert_eq!(
        dev.exchange("MESSAGE", &[], &gb::manscdp::build::record_info_response(sn, id, "cam", 30, &items[..1])).await.code(),
        Some(200)
    );

    // Bad queries: 400 naming what is wrong, nothing sent.
    for (query, says) in [
        ("start=1&end=1", "end must be after start"),
        ("start=0&end=99999999", "at most 31 days"),
        ("start=now&end=1", "start \"now\" is not a time"),
        ("end=10", "start is required"),
        ("start=0&end=10&type=motion", "type must be all, time, alarm or manual"),
    ] {
        let (code, r) = records(&sip, id, id, query).await;
        assert!(code == 400 && r["message"].as_str().unwrap().contains(says), "{query}: {code} {r}");
    }
    assert!(dev.recv(Duration::from_millis(300)).await.is_none_or(|m| !String::from_utf8_lossy(&m.body).contains("RecordInfo")));

    // Offline: 409, nothing held.
    assert_eq!(dev.register("12345678", 0).await.code(), Some(200));
    let (code, r) = records(&sip, id, id, "start=0&end=10").await;
    assert_eq!((code, r["kind"].as_str()), (409, Some("device_offline")), "{r}");
    assert_eq!(awaited(&sip).await, "gbc_sip_answers_awaited 0");
}
