//! Event subscriptions across real processes: after registering, a gbsim camera is SUBSCRIBEd
//! to Catalog, Alarm and MobilePosition; its NOTIFYs change the stored catalog (ADD, OFF, ON,
//! UPDATE, DEL of a channel), and its alarms and positions reach the event stream. The
//! subscriptions are refreshed before they expire — also by a sip node started again in place
//! of one that was killed (the camera's events keep coming only if they are: it sends none in
//! a lapsed subscription).

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::{eventually, get_json, Events, SimProc, SipProc};
use testkit::RedisServer;

/// The extra channel gbsim's catalog changes add and remove, as the API lists it now.
async fn extra_channel(sip: &SipProc, dev: &str) -> (usize, Option<Value>) {
    let (_, list) = get_json(&sip.api(&format!("/api/v1/devices/{dev}/channels"))).await;
    let items = list["items"].as_array().cloned().unwrap_or_default();
    let extra = items.iter().find(|c| c["name"].as_str().is_some_and(|n| n.starts_with("临时通道"))).cloned();
    (items.len(), extra)
}

/// Watches the extra channel for `within`: which of its states were seen (added and on, off,
/// renamed, removed after having been there).
async fn watch_catalog(sip: &SipProc, dev: &str, within: Duration) -> Vec<&'static str> {
    let mut seen = Vec::new();
    let mut was_there = false;
    let end = Instant::now() + within;
    while Instant::now() < end && seen.len() < 4 {
        let (total, extra) = extra_channel(sip, dev).await;
        let state = match &extra {
            Some(c) if c["name"].as_str().is_some_and(|n| n.ends_with("（改）")) => Some("renamed"),
            Some(c) if c["status"] == "OFF" => Some("off"),
            Some(_) if total == 3 => Some("added"),
            None if was_there && total == 2 => Some("removed"),
            _ => None,
        };
        was_there |= extra.is_some();
        if let Some(s) = state.filter(|s| !seen.contains(s)) {
            seen.push(s);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    seen.sort();
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_changes_alarms_and_positions_arrive_in_subscriptions() {
    let sip = SipProc::start(None, &[("GBC_SIP__SUBSCRIBE__MOBILE_POSITION", "true"), ("GBC_SIP__SUBSCRIBE__POSITION_INTERVAL_SECS", "1")]);
    let first = "34020000001320000661";
    let _cam =
        SimProc::start(sip.sip_addr(), first, 1, "udp", &[("GBC_SIM__CATALOG_CHANGE_EVERY_SECS", "1"), ("GBC_SIM__ALARM_EVERY_SECS", "2")]);
    let dev = gbsim::device_id(first, 0).unwrap();
    let subs = sip.api(&format!("/api/v1/devices/{dev}/subscriptions"));
    let established = || async {
        let (_, s) = get_json(&subs).await;
        s["items"].as_array().is_some_and(|i| i.len() == 3 && i.iter().all(|r| r["established"] == true && r["state"] == "active"))
    };
    assert!(eventually(Duration::from_secs(20), established).await, "{}", get_json(&subs).await.1);
    let mut events = Events::open(&sip).await;

    // The catalog follows the camera's changes: the extra channel comes, goes off, is renamed, goes.
    let seen = watch_catalog(&sip, &dev, Duration::from_secs(12)).await;
    assert_eq!(seen, ["added", "off", "removed", "renamed"]);
    // Alarms and positions come by NOTIFY now, and reach the event stream.
    let alarm = events.next("alarm", &dev, Duration::from_secs(5)).await.expect("an alarm by NOTIFY");
    assert_eq!(alarm["device_id"], dev.as_str());
    let pos = events.next("position", &dev, Duration::from_secs(5)).await.expect("a position by NOTIFY at the asked interval");
    assert!(pos["longitude"].as_f64().is_some(), "{pos}");
    let metrics = reqwest::get(sip.api("/metrics")).await.unwrap().text().await.unwrap();
    let notifies: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("gbc_sip_notifies_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{metrics}"));
    assert!(notifies >= 6, "{notifies} NOTIFYs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_are_refreshed_before_expiry_and_by_a_sip_node_started_again() {
    let redis = RedisServer::start().expect("redis-server must be installed");
    let port = testkit::free_port();
    let env = [("GBC_SIP__SUBSCRIBE__EXPIRES_SECS", "6")];
    let mut sip = SipProc::start_on(port, Some(&redis.url()), &env);
    let first = "34020000001320000671";
    let _cam =
        SimProc::start(sip.sip_addr(), first, 1, "udp", &[("GBC_SIM__CATALOG_CHANGE_EVERY_SECS", "1"), ("GBC_SIM__KEEPALIVE_SECS", "1")]);
    let dev = gbsim::device_id(first, 0).unwrap();
    let subs = sip.api(&format!("/api/v1/devices/{dev}/subscriptions"));
    let refreshed = |n: u64| {
        let subs = subs.clone();
        async move {
            let (_, s) = get_json(&subs).await;
            s["items"].as_array().is_some_and(|i| i.len() == 2 && i.iter().all(|r| r["refreshes"].as_u64().unwrap_or(0) >= n))
        }
    };
    // A 6 s subscription is refreshed with a fifth left: twice within 14 s.
    assert!(eventually(Duration::from_secs(14), || refreshed(2)).await, "{}", get_json(&subs).await.1);

    // Killed, then started again on the same port with another node id: the camera's next
    // keepalive brings the device to it, and it refreshes the dialogs it finds in the Store.
    sip.kill();
    let sip = SipProc::start_on(port, Some(&redis.url()), &env);
    let (_, before) = get_json(&sip.api(&format!("/api/v1/devices/{dev}/subscriptions"))).await;
    let old_node = before["items"][0]["node"].as_str().unwrap().to_owned();
    // Three lifetimes later, the changes still arrive (a lapsed subscription carries none).
    tokio::time::sleep(Duration::from_secs(18)).await;
    let seen = watch_catalog(&sip, &dev, Duration::from_secs(10)).await;
    assert_eq!(seen, ["added", "off", "removed", "renamed"], "catalog changes after the restart");
    let (_, after) = get_json(&sip.api(&format!("/api/v1/devices/{dev}/subscriptions"))).await;
    for r in after["items"].as_array().unwrap() {
        assert_ne!(r["node"], old_node.as_str(), "refreshed by the new node: {after}");
        assert_eq!(r["state"], "active", "{after}");
    }
}

/// The next SUBSCRIBE the raw device receives; MESSAGEs (the initial queries) meanwhile get 200.
async fn next_subscribe(dev: &support::RawDevice, sip: &SipProc, within: Duration) -> Option<gb::sip::lite::LiteMessage> {
    let end = Instant::now() + within;
    while Instant::now() < end {
        let Some(m) = dev.recv(Duration::from_millis(300)).await else { continue };
        match m.method() {
            Some("SUBSCRIBE") => return Some(m),
            Some(_) => {
                let _ = dev.sock.send_to(&m.response(200, "OK", "devtag", &[], None), sip.sip_addr()).await;
            }
            None => {}
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_the_device_ends_is_made_again() {
    let sip = SipProc::start(None, &[("GBC_SIP__SUBSCRIBE__ALARM", "false"), ("GBC_SIP__SUBSCRIBE__EXPIRES_SECS", "60")]);
    let id = "34020000001320000677";
    let mut dev = support::RawDevice::new(sip.sip_addr(), id, None).await;
    assert_eq!(dev.register("12345678", 3600).await.code(), Some(200));
    let first = next_subscribe(&dev, &sip, Duration::from_secs(40)).await.expect("a SUBSCRIBE after the registration");
    assert!(first.header("Event").is_some_and(|e| e.starts_with("Catalog")), "{:?}", first.header("Event"));
    assert!(!first.header("To").unwrap_or_default().contains("tag="), "a new dialog");
    let ok = first.response(200, "OK", "sub1", &[("Expires", "60".to_owned())], None);
    dev.sock.send_to(&ok, sip.sip_addr()).await.unwrap();
    let subs = sip.api(&format!("/api/v1/devices/{id}/subscriptions"));
    assert!(eventually(Duration::from_secs(5), || async { get_json(&subs).await.1["items"][0]["established"] == true }).await);

    // The device ends it (as a camera does on its own timeout or reboot): a new one follows at
    // once, not at the old one's refresh time (48 s on).
    let body = gb::manscdp::build::catalog_notify(1, id, &[]);
    let headers = [("Event", "Catalog".to_owned()), ("Subscription-State", "terminated;reason=timeout".to_owned())];
    assert_eq!(dev.exchange("NOTIFY", &headers, &body).await.code(), Some(200));
    let again = next_subscribe(&dev, &sip, Duration::from_secs(12)).await.expect("a new SUBSCRIBE after the device ended the old one");
    assert_ne!(again.header("Call-ID"), first.header("Call-ID"), "a new dialog");
    assert!(!again.header("To").unwrap_or_default().contains("tag="));
}
