//! The web console in Debian's headless Chromium, against real processes: Redis, a sip-server
//! serving the console, a media node, gbsim cameras. What is checked is what a person sees:
//! the sign-in refusing a wrong token, the devices and their GB2312 channel names, a camera
//! turning grey when it goes offline, video that really decodes in the tiles, and closed tiles
//! leaving no session behind. Screenshots go to `target/screenshots/console_*.png`.

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::cdp::{Chromium, Page};
use support::{eventually, get_json, MediaProc, SimProc, SipProc};
use testkit::RedisServer;

const TOKEN: &str = "console-secret-7";
/// Three cameras that stay, and one that leaves.
const STAY: &str = "34020000001320000001";
const LEAVE: &str = "34020000001320000201";

fn dev(first: &str, i: usize) -> String {
    gbsim::device_id(first, i).unwrap()
}

async fn authed_json(url: &str) -> Value {
    reqwest::Client::new().get(url).bearer_auth(TOKEN).send().await.unwrap().json().await.unwrap()
}

/// `expr` is a JS expression; the result as JSON text parsed back.
async fn js(page: &mut Page, expr: &str) -> Value {
    let text = page.eval(&format!("JSON.stringify({expr})")).await;
    serde_json::from_str(text.as_str().unwrap_or("null")).unwrap_or(Value::Null)
}

/// Opens a device's channels in the tree of `page_sel` and clicks channel `j`.
async fn click_channel(page: &mut Page, page_sel: &str, device: &str, j: usize) {
    let row = format!("document.querySelector('{page_sel} .dev[data-id=\"{device}\"]')");
    assert!(page.wait_for(&format!("!!{row}"), Duration::from_secs(10)).await.as_bool().unwrap_or(false), "{device} listed");
    page.eval(&format!("{row}.querySelector('.caret').getAttribute('aria-expanded') === 'false' && {row}.querySelector('.caret').click()"))
        .await;
    let ch = format!("{row}.querySelectorAll('.ch')[{j}]");
    assert!(page.wait_for(&format!("!!{ch}"), Duration::from_secs(10)).await.as_bool().unwrap_or(false), "{device} channels shown");
    page.eval(&format!("{ch}.click()")).await;
}

/// Waits until every tile showing a stream has decoded at least 2 s; returns (currentTime,
/// videoWidth, videoHeight) per playing tile.
async fn wait_decoding(page: &mut Page, tiles: usize, name: &str) -> Vec<(f64, u64, u64)> {
    let probe = "[...document.querySelectorAll('.tile[data-stream] video')].map(v => [v.currentTime, v.videoWidth, v.videoHeight])";
    let start = Instant::now();
    let mut first: Option<Vec<f64>> = None;
    loop {
        let v = js(page, probe).await;
        let got: Vec<(f64, u64, u64)> = v
            .as_array()
            .map(|a| a.iter().map(|t| (t[0].as_f64().unwrap_or(0.0), t[1].as_u64().unwrap_or(0), t[2].as_u64().unwrap_or(0))).collect())
            .unwrap_or_default();
        if got.len() == tiles && got.iter().all(|t| t.0 > 0.2) {
            let times: Vec<f64> = got.iter().map(|t| t.0).collect();
            match &first {
                None => first = Some(times),
                Some(f) if got.iter().zip(f).all(|(t, f0)| t.0 >= f0 + 2.0) => {
                    page.screenshot(name).await;
                    return got;
                }
                _ => {}
            }
        }
        if start.elapsed() > Duration::from_secs(40) {
            page.screenshot(&format!("{name}_failed")).await;
            let messages = js(page, "[...document.querySelectorAll('.tile .message')].map(m => m.textContent)").await;
            panic!("{tiles} tiles did not decode 2 s: {got:?}, tile messages {messages}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn console_signs_in_shows_devices_live_and_plays_a_wall_of_cameras() {
    let redis = RedisServer::start().expect("redis-server");
    let url = redis.url();
    let sip = SipProc::start(
        Some(&url),
        &[("GBC_SIP__API__TOKEN", TOKEN), ("GBC_SIP__KEEPALIVE_INTERVAL_SECS", "5"), ("GBC_SIP__PLAY__NO_VIEWER_SECS", "4")],
    );
    let _media = MediaProc::start(Some(&url), &[]);
    let _stay = SimProc::start(sip.sip_addr(), STAY, 3, "udp", &[("GBC_SIM__KEEPALIVE_SECS", "5")]);
    let leave = SimProc::start(sip.sip_addr(), LEAVE, 1, "tcp", &[("GBC_SIM__KEEPALIVE_SECS", "5")]);
    let ready = eventually(Duration::from_secs(20), || async {
        let v = authed_json(&sip.api("/api/v1/devices?online=true")).await;
        v["total"].as_u64() == Some(4) && v["items"].as_array().is_some_and(|a| a.iter().all(|d| d["channel_count"].as_u64() == Some(2)))
    })
    .await;
    assert!(ready, "four cameras online with their catalogs");
    assert_eq!(get_json(&sip.api("/api/v1/auth")).await.1["token_required"], true);

    let chromium = Chromium::start();
    let mut page = chromium.open(&sip.api("/")).await;

    // A wrong token: a message, and nothing of the cluster rendered.
    assert!(page.wait_for("!document.getElementById('sign-in').hidden", Duration::from_secs(10)).await.as_bool().unwrap_or(false));
    page.eval("document.getElementById('token').value = 'wrong'; document.getElementById('sign-in').requestSubmit()").await;
    let said = page.wait_for("document.getElementById('sign-in-error').textContent", Duration::from_secs(5)).await;
    page.screenshot("console_wrong_token").await;
    assert_eq!(said.as_str(), Some("The token is wrong."));
    let leaked = js(
        &mut page,
        "{nav: !document.getElementById('nav').hidden, devices: document.querySelectorAll('.dev').length, stored: sessionStorage.length}",
    )
    .await;
    assert_eq!(leaked, serde_json::json!({"nav": false, "devices": 0, "stored": 0}), "nothing rendered after a wrong token");

    // The right token: the devices appear, online, with their channels' GB2312 names.
    page.eval(&format!("document.getElementById('token').value = '{TOKEN}'; document.getElementById('sign-in').requestSubmit()")).await;
    let listed = page.wait_for("document.querySelectorAll('#page-devices .dev.online').length === 4", Duration::from_secs(10)).await;
    assert_eq!(listed, Value::Bool(true), "four online devices listed");
    assert!(!page.eval("location.href").await.as_str().unwrap().contains(TOKEN), "the token is not in the URL");
    let row = format!("document.querySelector('#page-devices .dev[data-id=\"{}\"]')", dev(STAY, 0));
    page.eval(&format!("{row}.querySelector('.caret').click(); {row}.querySelector('.name').click()")).await;
    let names = page
        .wait_for(&format!("{row}.querySelectorAll('.ch').length === 2 && {row}.querySelector('.ch').textContent"), Duration::from_secs(5))
        .await;
    assert!(names.as_str().is_some_and(|n| n.contains("大门口")), "channel name decoded from GB2312: {names}");
    let details = page
        .wait_for("document.querySelector('.details dl') && document.querySelector('.details').textContent", Duration::from_secs(5))
        .await;
    assert!(details.as_str().is_some_and(|d| d.contains("127.0.0.1:") && d.contains("Owning sip node")), "details: {details}");
    page.screenshot("console_devices").await;

    // A camera going offline turns grey within a second of its event.
    let gone = dev(LEAVE, 0);
    let grey = format!("!!document.querySelector('#page-devices .dev.offline[data-id=\"{gone}\"]')");
    assert_eq!(page.eval(&grey).await, Value::Bool(false));
    let pid = leave.pid();
    std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap();
    let t0 = Instant::now();
    let (mut api_at, mut page_at) = (None, None);
    while t0.elapsed() < Duration::from_secs(15) && (api_at.is_none() || page_at.is_none()) {
        if api_at.is_none() && authed_json(&sip.api(&format!("/api/v1/devices/{gone}"))).await["online"] == false {
            api_at = Some(t0.elapsed());
        }
        if page_at.is_none() && page.eval(&grey).await == Value::Bool(true) {
            page_at = Some(t0.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    page.screenshot("console_device_offline").await;
    let (api_at, page_at) = (api_at.expect("API says offline"), page_at.expect("page shows it grey"));
    assert!(page_at <= api_at + Duration::from_secs(1), "grey {page_at:?} after the start, the API said offline at {api_at:?}");

    // Click a channel: it plays in the page (fMP4 through MSE), the camera's size.
    click_channel(&mut page, "#page-devices", &dev(STAY, 0), 0).await;
    let one = wait_decoding(&mut page, 1, "console_live_one").await;
    assert_eq!((one[0].1, one[0].2), (640, 360));
    let overlay = page
        .wait_for(
            "(document.querySelector('.tile[data-stream] .overlay').textContent.match(/H.264.*640\u{d7}360.*fps/) || [''])[0]",
            Duration::from_secs(5),
        )
        .await;
    assert!(overlay.as_str().is_some_and(|o| !o.is_empty()), "overlay shows codec, size, fps: {overlay}");

    // A 2x2 wall: four cameras at once.
    page.eval("document.querySelector('.layouts button[data-n=\"4\"]').click()").await;
    click_channel(&mut page, "#page-live", &dev(STAY, 0), 1).await;
    click_channel(&mut page, "#page-live", &dev(STAY, 1), 0).await;
    click_channel(&mut page, "#page-live", &dev(STAY, 2), 0).await;
    let four = wait_decoding(&mut page, 4, "console_live_wall").await;
    assert!(four.iter().all(|t| (t.1, t.2) == (640, 360)), "{four:?}");
    assert_eq!(authed_json(&sip.api("/api/v1/streams")).await["total"], 4);

    // Closing the tiles releases every session.
    page.eval("document.querySelectorAll('.tile .close').forEach(b => b.hidden || b.click())").await;
    let released = eventually(Duration::from_secs(10), || async { authed_json(&sip.api("/api/v1/streams")).await["total"] == 0 }).await;
    page.screenshot("console_live_closed").await;
    assert!(released, "sessions left: {}", authed_json(&sip.api("/api/v1/streams")).await);

    // The same over HLS (what Safari and iOS play; this Chromium has an HLS player of its own).
    page.eval("const f = document.querySelector('select.form'); f.value = 'hls'; f.dispatchEvent(new Event('change'))").await;
    click_channel(&mut page, "#page-live", &dev(STAY, 1), 1).await;
    let hls = wait_decoding(&mut page, 1, "console_live_hls").await;
    assert_eq!((hls[0].1, hls[0].2), (640, 360));
    let src = page.eval("document.querySelector('.tile[data-stream] video').src").await;
    assert!(src.as_str().is_some_and(|s| s.ends_with(".m3u8")), "played over HLS: {src}");
    page.eval("document.querySelectorAll('.tile .close').forEach(b => b.hidden || b.click())").await;

    // An offline camera's channel: the tile says so in plain words.
    click_channel(&mut page, "#page-live", &gone, 0).await;
    let said = page
        .wait_for(
            "document.querySelector('.tile .message.error') && document.querySelector('.tile .message.error').textContent",
            Duration::from_secs(10),
        )
        .await;
    page.screenshot("console_live_offline_device").await;
    assert_eq!(said.as_str(), Some("The device is offline."));
}
