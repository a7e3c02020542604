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
/// Three cameras that stay, one that leaves, one that streams H.265 and one that is busy.
const STAY: &str = "34020000001320000001";
const LEAVE: &str = "34020000001320000201";
const HEVC: &str = "34020000001320000301";
const BUSY: &str = "34020000001320000401";

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

/// Waits until `device` is registered with its two channels.
async fn wait_catalog(sip: &SipProc, device: &str) {
    let path = sip.api(&format!("/api/v1/devices/{device}/channels"));
    assert!(eventually(Duration::from_secs(20), || async { get_json(&path).await.1["total"] == 2 }).await, "{device} and its catalog");
}

/// The console of a node without a token: no sign-in, straight to the pages.
async fn open_without_token(chromium: &Chromium, sip: &SipProc) -> Page {
    let mut page = chromium.open(&sip.api("/")).await;
    assert_eq!(page.wait_for("!document.getElementById('nav').hidden", Duration::from_secs(10)).await, Value::Bool(true));
    page
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
    let hevc_file = support::fixture("h265_320x240_2s.h265");
    let _hevc = SimProc::start(
        sip.sip_addr(),
        HEVC,
        1,
        "udp",
        &[("GBC_SIM__KEEPALIVE_SECS", "5"), ("GBC_SIM__MEDIA_VIDEO", hevc_file.to_str().unwrap())],
    );
    let _busy = SimProc::start(sip.sip_addr(), BUSY, 1, "udp", &[("GBC_SIM__KEEPALIVE_SECS", "5"), ("GBC_SIM__INVITE_REFUSE", "486")]);
    let ready = eventually(Duration::from_secs(20), || async {
        let v = authed_json(&sip.api("/api/v1/devices?online=true")).await;
        v["total"].as_u64() == Some(6) && v["items"].as_array().is_some_and(|a| a.iter().all(|d| d["channel_count"].as_u64() == Some(2)))
    })
    .await;
    assert!(ready, "six cameras online with their catalogs");
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
    let listed = page.wait_for("document.querySelectorAll('#page-devices .dev.online').length === 6", Duration::from_secs(10)).await;
    assert_eq!(listed, Value::Bool(true), "six online devices listed");
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

    // The PTZ pad on the tile: holding Left sends a move, letting go a stop (gbsim takes both).
    page.eval("document.querySelector('.tile[data-stream] .ptz-toggle').click()").await;
    page.eval(
        "{ const b = document.querySelector('.tile[data-stream] .ptz-btn[aria-label=\"Left\"]');
           b.dispatchEvent(new PointerEvent('pointerdown', { bubbles: true })); setTimeout(() => b.dispatchEvent(new PointerEvent('pointerup', { bubbles: true })), 200); }",
    )
    .await;
    let controls = || async {
        let text = reqwest::get(sip.api("/metrics")).await.unwrap().text().await.unwrap();
        text.lines().find_map(|l| l.strip_prefix("gbc_sip_device_controls_total ")).and_then(|v| v.trim().parse::<u64>().ok()).unwrap_or(0)
    };
    assert!(eventually(Duration::from_secs(5), || async { controls().await == 2 }).await, "a move and a stop sent: {}", controls().await);
    page.screenshot("console_live_ptz").await;
    assert_eq!(page.eval("document.querySelectorAll('.toast.error').length").await, serde_json::json!(0), "no error shown");

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
    page.eval("{ const f = document.querySelector('select.form'); f.value = 'hls'; f.dispatchEvent(new Event('change')) }").await;
    click_channel(&mut page, "#page-live", &dev(STAY, 1), 1).await;
    let hls = wait_decoding(&mut page, 1, "console_live_hls").await;
    assert_eq!((hls[0].1, hls[0].2), (640, 360));
    let src = page.eval("document.querySelector('.tile[data-stream] video').src").await;
    assert!(src.as_str().is_some_and(|s| s.ends_with(".m3u8")), "played over HLS: {src}");
    page.eval("document.querySelectorAll('.tile .close').forEach(b => b.hidden || b.click())").await;

    // H.265: plays where the browser decodes it; where it does not (Debian's Chromium without a
    // GPU), the tile says so in plain words.
    page.eval("{ const f = document.querySelector('select.form'); f.value = 'fmp4'; f.dispatchEvent(new Event('change')) }").await;
    let decodes = page.eval("MediaSource.isTypeSupported('video/mp4; codecs=\"hvc1.1.6.L63.90\"')").await == Value::Bool(true);
    click_channel(&mut page, "#page-live", &dev(HEVC, 0), 0).await;
    if decodes {
        let h = wait_decoding(&mut page, 1, "console_live_h265").await;
        assert_eq!((h[0].1, h[0].2), (320, 240));
    } else {
        let said = page
            .wait_for(
                "document.querySelector('.tile .message.error') && document.querySelector('.tile .message.error').textContent",
                Duration::from_secs(15),
            )
            .await;
        page.screenshot("console_live_h265_unsupported").await;
        assert!(said.as_str().is_some_and(|m| m.starts_with("This browser cannot decode H.265 video.")), "{said}");
        // The tile that cannot play gives its hold back at once (no viewer either).
        let hevc_stream = format!("{}_{}", dev(HEVC, 0), gbsim::device::channel_ids(&dev(HEVC, 0), 0, 2)[0]);
        let released = eventually(Duration::from_secs(10), || async {
            authed_json(&sip.api("/api/v1/streams")).await["items"]
                .as_array()
                .is_some_and(|a| a.iter().all(|s| s["stream_id"] != hevc_stream.as_str()))
        })
        .await;
        assert!(released, "the H.265 session is released");
    }
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

    // A camera that refuses the INVITE: said with its SIP status.
    page.eval("document.querySelectorAll('.tile .close').forEach(b => b.hidden || b.click())").await;
    click_channel(&mut page, "#page-live", &dev(BUSY, 0), 0).await;
    let said = page
        .wait_for(
            "document.querySelector('.tile .message.error') && document.querySelector('.tile .message.error').textContent",
            Duration::from_secs(10),
        )
        .await;
    assert_eq!(said.as_str(), Some("The camera refused to send video (486 Busy Here)."));

    // At phone width the tree and the wall stack, nothing wider than the screen.
    page.call(
        "Emulation.setDeviceMetricsOverride",
        serde_json::json!({"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": true}),
    )
    .await;
    click_channel(&mut page, "#page-live", &dev(STAY, 2), 1).await;
    wait_decoding(&mut page, 1, "console_phone").await;
    let wide = page.eval("document.documentElement.scrollWidth").await;
    assert!(wide.as_u64().is_some_and(|w| w <= 390), "page {wide} px wide at 390");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn console_without_a_token_shows_the_cluster_lpr_passages_and_nvr_sessions() {
    let redis = RedisServer::start().expect("redis-server");
    let url = redis.url();
    let sip = SipProc::start(Some(&url), &[("GBC_SIP__API__LPR_TOKEN", "lpr-tok"), ("GBC_SIP__KEEPALIVE_INTERVAL_SECS", "5")]);
    let media = MediaProc::start(Some(&url), &[]);
    let _cam = SimProc::start(sip.sip_addr(), STAY, 1, "udp", &[("GBC_SIM__KEEPALIVE_SECS", "5")]);
    let images = std::env::temp_dir().join(format!("gbc-console-lpr-{}", std::process::id()));
    let lpr = support::LprProc::start(&url, &images, &[("GBC_LPR__API_TOKEN", "lpr-tok")]);
    let rtmp = support::NginxRtmp::start();
    let rtsp = support::rtsp::RtspServer::start("h264");
    let nvr_port = testkit::free_port();
    let mut nvr_cmd = std::process::Command::new(env!("CARGO_BIN_EXE_gbcluster"));
    nvr_cmd
        .arg("nvr")
        .env("GBC_NVR__LISTEN", format!("127.0.0.1:{nvr_port}"))
        .env("GBC_NVR__NODE_ID", "nvr-console")
        .env("GBC_NVR__RTMP_TARGET", format!("rtmp://127.0.0.1:{}/live", rtmp.port))
        .env("GBC_STORE__URL", &url)
        .env("RUST_LOG", "info");
    let nvr_log = std::env::temp_dir().join(format!("gbc-console-nvr-{}.log", std::process::id()));
    let mut nvr = support::spawn_and_wait(nvr_cmd, nvr_port, &nvr_log, "nvr-pusher");
    let channel = gbsim::device::channel_ids(&dev(STAY, 0), 0, 2)[0].clone();
    wait_catalog(&sip, &dev(STAY, 0)).await;

    let chromium = Chromium::start();
    let mut page = open_without_token(&chromium, &sip).await;
    assert_eq!(page.eval("document.getElementById('sign-in').hidden").await, Value::Bool(true));
    page.eval("location.hash = '#/cluster'").await;

    // Cluster: the media node with its load, a session with a live bitrate plot, stopped from
    // the page.
    let media_id = get_json(&media.url("/api/v1/node")).await.1["id"].as_str().unwrap().to_owned();
    let row = page.wait_for(&format!("!!document.querySelector('#cl-media tr[data-node=\"{media_id}\"]')"), Duration::from_secs(10)).await;
    let shown = page.eval("document.getElementById('page-cluster').textContent").await;
    assert_eq!(row, Value::Bool(true), "media node {media_id} listed: {shown}");
    let r =
        reqwest::Client::new().post(sip.api(&format!("/api/v1/devices/{}/channels/{channel}/play", dev(STAY, 0)))).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let stream = format!("{}_{channel}", dev(STAY, 0));
    // Keep a viewer on it so the plot has something to show for a few refreshes.
    let viewer = tokio::spawn({
        let u = media.url(&format!("/live/{stream}.flv"));
        async move {
            let mut r = reqwest::get(u).await.unwrap();
            while let Ok(Some(_)) = r.chunk().await {}
        }
    });
    let plot = format!("document.querySelector('#cl-sessions tr[data-stream=\"{stream}\"] svg.spark')");
    let label = page
        .wait_for(
            &format!("{plot} && /bitrate: [1-9]/.test({plot}.getAttribute('aria-label')) && {plot}.getAttribute('aria-label')"),
            Duration::from_secs(15),
        )
        .await;
    page.screenshot("console_cluster").await;
    assert!(label.as_str().is_some_and(|l| l.starts_with("bitrate: ")), "bitrate plot: {label}");
    page.eval(&format!("document.querySelector('#cl-sessions tr[data-stream=\"{stream}\"] button').click()")).await;
    assert!(
        eventually(Duration::from_secs(10), || async { get_json(&sip.api("/api/v1/streams")).await.1["total"] == 0 }).await,
        "stopped from the page"
    );
    viewer.abort();

    // LPR: a plate result from `gbcluster sim lpr` shows within a second of being stored, its
    // image loaded.
    page.eval("location.hash = '#/lpr'").await;
    assert_eq!(page.wait_for("!!document.querySelector('#lpr-live .empty')", Duration::from_secs(10)).await, Value::Bool(true));
    let image = support::fixture("still.jpg");
    let mut sim = std::process::Command::new(env!("CARGO_BIN_EXE_gbcluster"))
        .args([
            "sim",
            "lpr",
            "--server",
            &lpr.url(""),
            "--cameras",
            "1",
            "--rate",
            "1",
            "--plates",
            "3",
            "--seconds",
            "4",
            "--serial-prefix",
            "cons",
        ])
        .arg("--image")
        .arg(&image)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    let (mut stored, mut shown) = (None, None);
    let api = lpr.url("/api/v1/lpr/passages?limit=1");
    let client = reqwest::Client::new();
    while t0.elapsed() < Duration::from_secs(15) && (stored.is_none() || shown.is_none()) {
        if stored.is_none() {
            let v: Value = client.get(&api).bearer_auth("lpr-tok").send().await.unwrap().json().await.unwrap();
            if v["total"].as_u64() > Some(0) {
                stored = Some(t0.elapsed());
            }
        }
        if shown.is_none() && page.eval("document.querySelectorAll('#lpr-live article').length > 0").await == Value::Bool(true) {
            shown = Some(t0.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (stored, shown) = (stored.expect("a passage stored"), shown.expect("a passage shown"));
    assert!(shown <= stored + Duration::from_secs(1), "shown at {shown:?}, stored at {stored:?}");
    let loaded = page.wait_for("(document.querySelector('#lpr-live article img.full') || {}).naturalWidth", Duration::from_secs(5)).await;
    assert_eq!(loaded.as_u64(), Some(1280), "the full image loaded");
    let plate = page.eval("document.querySelector('#lpr-live article .plate').textContent").await;
    assert!(plate.as_str().is_some_and(|p| p.chars().count() >= 7), "plate shown: {plate}");
    let _ = sim.wait();
    // The camera is listed; the gate opens from the page (a queued command).
    let open = page.wait_for("!!document.querySelector('#lpr-cameras tr[data-camera] button')", Duration::from_secs(5)).await;
    assert_eq!(open, Value::Bool(true));
    page.eval("document.querySelector('#lpr-cameras tr[data-camera] button').click()").await;
    let said = page.wait_for("/Open gate sent/.test(document.getElementById('lpr-status').textContent)", Duration::from_secs(5)).await;
    assert_eq!(said, Value::Bool(true));
    // A whitelist entry added on the page reaches the lpr-server.
    page.eval("{ const f = document.querySelectorAll('#page-lpr form.inline'); const add = f[f.length - 1]; add.querySelector('input').value = '京A12345'; add.requestSubmit() }").await;
    let listed = eventually(Duration::from_secs(5), || async {
        let v: Value =
            client.get(lpr.url("/api/v1/lpr/groups/default/whitelist")).bearer_auth("lpr-tok").send().await.unwrap().json().await.unwrap();
        v["items"].as_array().is_some_and(|a| a.iter().any(|e| e["plate"] == "京A12345"))
    })
    .await;
    assert!(listed, "whitelist entry stored");
    assert_eq!(
        page.wait_for("/京A12345/.test(document.getElementById('lpr-whitelist').textContent)", Duration::from_secs(5)).await,
        Value::Bool(true)
    );
    page.screenshot("console_lpr").await;

    // NVR: start a push from the form, see its session with beats, stop it.
    page.eval("location.hash = '#/nvr'").await;
    assert_eq!(page.wait_for("!!document.querySelector('#page-nvr form')", Duration::from_secs(5)).await, Value::Bool(true));
    let rtsp_url = format!("rtsp://127.0.0.1:{}/Streaming/Channels/101", rtsp.port);
    page.eval(&format!(
        "{{ const f = document.querySelector('#page-nvr form'); f.nvr_category.value = '2'; f.nvr_category.dispatchEvent(new Event('change'));
         f.nvr_addr.value = '127.0.0.1'; f.nvr_user.value = '{}'; f.nvr_pwd.value = '{}'; f.rtsp_url.value = '{rtsp_url}'; f.requestSubmit() }}",
        support::rtsp::USER,
        support::rtsp::PASSWORD
    ))
    .await;
    let started = page.wait_for("/Pushing to rtmp/.test(document.getElementById('nvr-status').textContent)", Duration::from_secs(30)).await;
    let said = page.eval("document.getElementById('nvr-status').textContent").await;
    assert_eq!(started, Value::Bool(true), "{said}\n{}", std::fs::read_to_string(&nvr_log).unwrap_or_default());
    let row = page.wait_for("!!document.querySelector('#nvr-sessions tr[data-handle]')", Duration::from_secs(5)).await;
    assert_eq!(row, Value::Bool(true));
    page.screenshot("console_nvr").await;
    page.eval("document.querySelector('#nvr-sessions tr[data-handle] button:last-child').click()").await;
    let gone = page.wait_for("/stopped/.test(document.getElementById('nvr-status').textContent)", Duration::from_secs(10)).await;
    assert_eq!(gone, Value::Bool(true), "{}", page.eval("document.getElementById('nvr-status').textContent").await);
    let _ = nvr.kill();
    let _ = nvr.wait();

    // No media node left: a play says so in plain words.
    let mut media = media;
    media.terminate();
    assert!(
        eventually(Duration::from_secs(10), || async { get_json(&sip.api("/api/v1/cluster")).await.1["media"] == serde_json::json!([]) })
            .await
    );
    page.eval("location.hash = '#/live'").await;
    click_channel(&mut page, "#page-live", &dev(STAY, 0), 0).await;
    let said = page
        .wait_for(
            "document.querySelector('.tile .message.error') && document.querySelector('.tile .message.error').textContent",
            Duration::from_secs(10),
        )
        .await;
    page.screenshot("console_no_media_node").await;
    assert_eq!(said.as_str(), Some("No media node is available to receive the video."));
}

/// Recordings, alarms and the map (issue 13): a gbsim camera's day as a timeline of its
/// recordings (RecordInfo), played back from the page with pause, resume and a seek by a click
/// on the timeline; the camera's alarms in the list as they come; its position on the map with
/// its track.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn console_plays_back_recordings_and_shows_alarms_and_positions() {
    const MOBILE: &str = "34020000001320000501";
    let redis = RedisServer::start().expect("redis-server");
    let url = redis.url();
    let sip = SipProc::start(Some(&url), &[]);
    let _media = MediaProc::start(Some(&url), &[]);
    let cam = [("GBC_SIM__ALARM_EVERY_SECS", "2"), ("GBC_SIM__POSITION_EVERY_SECS", "1")];
    let _cam = SimProc::start(sip.sip_addr(), MOBILE, 1, "udp", &cam);
    let device = dev(MOBILE, 0);
    wait_catalog(&sip, &device).await;
    let chromium = Chromium::start();
    let mut page = open_without_token(&chromium, &sip).await;

    // Yesterday's timeline (a whole day of quarter-hour files, whatever the hour now).
    page.eval("location.hash = '#/recordings'").await;
    click_channel(&mut page, "#page-recordings", &device, 0).await;
    page.eval(
        "(() => { const d = document.querySelector('#page-recordings input[type=date]'); const y = new Date(Date.now() - 86400000); \
         d.value = `${y.getFullYear()}-${String(y.getMonth() + 1).padStart(2, '0')}-${String(y.getDate()).padStart(2, '0')}`; \
         d.dispatchEvent(new Event('change')); })()",
    )
    .await;
    let spans = page.wait_for("document.querySelectorAll('#page-recordings .tl-rec').length > 80 && document.querySelectorAll('#page-recordings .tl-rec').length", Duration::from_secs(45)).await;
    let said = page.eval("document.querySelector('#page-recordings .details [role=status]').textContent").await;
    assert!(spans.as_u64().unwrap_or(0) >= 85, "a day of quarter hours less the gaps: {spans} ({said})");
    assert!(js(&mut page, "document.querySelectorAll('#page-recordings .tl-rec.alarm').length").await.as_u64().unwrap_or(0) > 0);

    // Play the third recording from its row: the picture moves.
    page.eval("document.querySelectorAll('#page-recordings .rec-list button')[2].click()").await;
    let moving = page.wait_for("document.querySelector('#page-recordings video').currentTime > 2", Duration::from_secs(20)).await;
    assert_eq!(moving, Value::Bool(true), "{}", page.eval("document.querySelector('#page-recordings [role=status]').textContent").await);
    let stream = page.eval("document.getElementById('page-recordings').dataset.stream").await.as_str().unwrap_or_default().to_owned();
    assert!(stream.contains("_pb"), "{stream}");
    let size = js(
        &mut page,
        "[document.querySelector('#page-recordings video').videoWidth, document.querySelector('#page-recordings video').videoHeight]",
    )
    .await;
    assert_eq!(size, serde_json::json!([640, 360]));
    page.screenshot("console_recordings").await;

    // Pause: once the buffer drains the picture holds still; resume: it moves again.
    let t = "document.querySelector('#page-recordings video').currentTime";
    page.eval("document.querySelector('#page-recordings .rec-controls button').click()").await;
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let a = page.eval(t).await.as_f64().unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let b = page.eval(t).await.as_f64().unwrap();
    assert!(b - a < 0.3, "paused, yet the picture moved {a} → {b}");
    assert_eq!(page.eval("document.querySelector('#page-recordings .rec-controls button').textContent").await, "Resume");
    page.eval("document.querySelector('#page-recordings .rec-controls button').click()").await;
    let resumed = page.wait_for(&format!("{t} > {} + 1", b), Duration::from_secs(10)).await;
    assert_eq!(resumed, Value::Bool(true), "resumed");

    // A click on the timeline inside the playing span seeks there (5 min in).
    let (_, sess) = get_json(&sip.api(&format!("/api/v1/streams/{stream}"))).await;
    let start = sess["playback"]["start"].as_i64().unwrap();
    page.eval(&format!(
        "(() => {{ const [y, m, d] = document.querySelector('#page-recordings input[type=date]').value.split('-').map(Number); \
         const day = new Date(y, m - 1, d).getTime() / 1000; const s = document.querySelector('#page-recordings svg.tl'); \
         const b = s.getBoundingClientRect(); s.dispatchEvent(new MouseEvent('click', {{ clientX: b.left + b.width * ({start} + 300 - day) / 86400, bubbles: true }})); }})()"
    ))
    .await;
    let pos_url = sip.api(&format!("/api/v1/streams/{stream}/playback"));
    assert!(
        eventually(Duration::from_secs(10), || async {
            (240_000..=420_000).contains(&get_json(&pos_url).await.1["position_ms"].as_u64().unwrap_or(0))
        })
        .await,
        "sought to about 300 s: {}",
        get_json(&pos_url).await.1
    );
    let shown = page
        .wait_for("/\\d\\d:\\d\\d:\\d\\d/.test(document.querySelector('#page-recordings .position').textContent)", Duration::from_secs(5))
        .await;
    assert_eq!(shown, Value::Bool(true));
    page.eval("document.querySelectorAll('#page-recordings .rec-controls button')[1].click()").await;
    assert!(
        eventually(Duration::from_secs(10), || async { get_json(&sip.api("/api/v1/streams")).await.1["total"] == 0 }).await,
        "Stop ends the playback"
    );

    // Alarms: the camera's motion alarms, newest first, and new ones as they come.
    page.eval("location.hash = '#/alarms'").await;
    let rows = page.wait_for("document.querySelectorAll('#alarm-rows tr').length", Duration::from_secs(10)).await;
    assert!(rows.as_u64().unwrap_or(0) >= 1, "{rows}");
    let before = js(&mut page, "document.querySelectorAll('#alarm-rows tr').length").await.as_u64().unwrap();
    let more = page.wait_for(&format!("document.querySelectorAll('#alarm-rows tr').length > {before}"), Duration::from_secs(10)).await;
    assert_eq!(more, Value::Bool(true), "a new alarm shows without a reload");
    assert!(page.eval("document.getElementById('alarm-rows').textContent").await.as_str().unwrap().contains("移动侦测"));
    page.screenshot("console_alarms").await;

    // Map: the camera's dot; chosen, its track.
    page.eval("location.hash = '#/map'").await;
    assert_eq!(page.wait_for("!!document.querySelector('svg.map .map-dot')", Duration::from_secs(10)).await, Value::Bool(true));
    page.eval("document.querySelector('svg.map .map-dot').dispatchEvent(new MouseEvent('click', { bubbles: true }))").await;
    assert_eq!(page.wait_for("!!document.querySelector('svg.map .map-track')", Duration::from_secs(10)).await, Value::Bool(true));
    page.screenshot("console_map").await;
}

/// Downloads from the Recordings page: a recording's Download (at the speed chosen beside the
/// list) shows a progress bar that moves, then a link to the MP4 on the media node; Delete
/// removes it. The camera's files are two minutes here, so the download takes seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_downloads_a_recording_with_a_progress_bar() {
    const CAM: &str = "34020000001320000521";
    let redis = RedisServer::start().expect("redis-server");
    let url = redis.url();
    let sip = SipProc::start(Some(&url), &[]);
    let _media = MediaProc::start(Some(&url), &[]);
    let _cam = SimProc::start(sip.sip_addr(), CAM, 1, "udp", &[("GBC_SIM__RECORD_FILE_SECS", "120")]);
    let device = dev(CAM, 0);
    wait_catalog(&sip, &device).await;
    let chromium = Chromium::start();
    let mut page = open_without_token(&chromium, &sip).await;
    page.eval("location.hash = '#/recordings'").await;
    click_channel(&mut page, "#page-recordings", &device, 0).await;
    let rows = page.wait_for("document.querySelectorAll('#page-recordings .rec-list tbody tr').length", Duration::from_secs(20)).await;
    assert!(rows.as_u64().unwrap_or(0) > 2, "today's two-minute files: {rows}");
    page.eval("(() => { const s = document.querySelector('#page-recordings select.dl-speed'); s.value = '8'; s.dispatchEvent(new Event('change')); })()").await;
    page.eval("document.querySelectorAll('#page-recordings .rec-list tbody tr')[1].querySelectorAll('button')[1].click()").await;
    let moving = page
        .wait_for("(() => { const p = document.querySelector('#page-recordings li.dl progress'); return !!p && p.value > 0.05 && p.value < 1; })()", Duration::from_secs(20))
        .await;
    assert_eq!(moving, Value::Bool(true), "{}", page.eval("document.querySelector('#page-recordings .downloads').textContent").await);
    page.screenshot("console_download_progress").await;
    let saved =
        page.wait_for("document.querySelector('#page-recordings li.dl[data-state=done] a') !== null", Duration::from_secs(40)).await;
    assert_eq!(saved, Value::Bool(true), "{}", page.eval("document.querySelector('#page-recordings .downloads').textContent").await);
    let label = page.eval("document.querySelector('#page-recordings li.dl').textContent").await;
    assert!(label.as_str().unwrap_or_default().contains("8\u{d7}") && label.as_str().unwrap_or_default().contains("done"), "{label}");
    let href = page.eval("document.querySelector('#page-recordings li.dl a').href").await.as_str().unwrap_or_default().to_owned();
    let file = reqwest::get(&href).await.unwrap();
    assert_eq!(file.status().as_u16(), 200, "{href}");
    assert!(file.bytes().await.unwrap().len() > 100_000, "the MP4 behind the link");
    page.screenshot("console_download_done").await;
    page.eval("document.querySelector('#page-recordings li.dl .dl-actions button').click()").await;
    assert!(
        eventually(Duration::from_secs(10), || async { get_json(&sip.api("/api/v1/downloads")).await.1["total"] == 0 }).await,
        "Delete removes the download"
    );
    assert_eq!(
        page.wait_for("document.querySelectorAll('#page-recordings li.dl').length === 0", Duration::from_secs(5)).await,
        Value::Bool(true)
    );
}

/// Pictures: the snapshot button of a live tile saves one to the gallery; the Gallery page
/// shows the channel's pictures of the day as thumbnails that load, takes one more on request,
/// opens one large and deletes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_saves_pictures_from_a_tile_and_shows_them_in_the_gallery() {
    const CAM: &str = "34020000001320000531";
    let redis = RedisServer::start().expect("redis-server");
    let url = redis.url();
    let dir = std::env::temp_dir().join(format!("gbc-console-gallery-{}", std::process::id()));
    let sip = SipProc::start(Some(&url), &[("GBC_SIP__SNAPSHOTS__DIR", dir.to_str().unwrap())]);
    let _media = MediaProc::start(Some(&url), &[]);
    let _cam = SimProc::start(sip.sip_addr(), CAM, 1, "udp", &[]);
    let device = dev(CAM, 0);
    wait_catalog(&sip, &device).await;
    let chromium = Chromium::start();
    let mut page = open_without_token(&chromium, &sip).await;

    page.eval("location.hash = '#/live'").await;
    click_channel(&mut page, "#page-live", &device, 0).await;
    wait_decoding(&mut page, 1, "console_gallery_live").await;
    page.eval("document.querySelector('.tile[data-stream] button.snap').click()").await;
    let saved = page.wait_for("document.querySelector('.tile[data-stream]').dataset.snapshot || ''", Duration::from_secs(10)).await;
    assert!(saved.as_str().is_some_and(|s| s.ends_with(".jpg")), "{saved}");
    assert!(page.eval("document.getElementById('toasts').textContent").await.as_str().unwrap_or_default().contains("saved to the gallery"));

    page.eval("location.hash = '#/gallery'").await;
    click_channel(&mut page, "#page-gallery", &device, 0).await;
    let loaded = page
        .wait_for(
            "[...document.querySelectorAll('#page-gallery .shot img')].filter(i => i.naturalWidth === 640).length",
            Duration::from_secs(10),
        )
        .await;
    assert_eq!(
        loaded,
        Value::from(1),
        "the tile's picture, loaded: {} {}",
        page.eval("document.querySelector('#page-gallery .details [role=status]').textContent").await,
        page.eval("document.querySelector('#page-gallery .gallery-grid').innerHTML").await
    );
    page.eval("[...document.querySelectorAll('#page-gallery button')].find(b => b.textContent === 'Take one now').click()").await;
    let two = page
        .wait_for(
            "[...document.querySelectorAll('#page-gallery .shot img')].filter(i => i.naturalWidth === 640).length === 2",
            Duration::from_secs(15),
        )
        .await;
    assert_eq!(two, Value::Bool(true), "{}", page.eval("document.querySelector('#page-gallery .details [role=status]').textContent").await);
    page.screenshot("console_gallery").await;
    page.eval("document.querySelector('#page-gallery .shot-open').click()").await;
    let open = page.wait_for("!document.querySelector('#page-gallery .gallery-viewer').hidden && document.querySelector('#page-gallery .gallery-viewer img').naturalWidth", Duration::from_secs(5)).await;
    assert_eq!(open, Value::from(640));
    page.screenshot("console_gallery_open").await;
    page.eval("document.querySelector('#page-gallery .gallery-viewer button.danger').click()").await;
    let one = page.wait_for("document.querySelector('#page-gallery .gallery-viewer').hidden && document.querySelectorAll('#page-gallery .shot').length === 1", Duration::from_secs(5)).await;
    assert_eq!(one, Value::Bool(true));
    let (_, left) = get_json(&sip.api(&format!("/api/v1/snapshots?device={device}"))).await;
    assert_eq!(left["total"], 1, "{left}");
    // The device tree shows the channel's newest picture as its thumbnail.
    page.eval("location.hash = '#/devices'").await;
    let row = format!("document.querySelector('#page-devices .dev[data-id=\"{device}\"]')");
    assert_eq!(page.wait_for(&format!("!!{row}"), Duration::from_secs(10)).await, Value::Bool(true));
    page.eval(&format!("{row}.querySelector('.caret').click()")).await;
    let thumb = page
        .wait_for(
            &format!("document.querySelector('#page-devices .dev[data-id=\"{device}\"] .ch[data-ch] .thumb:not([hidden])')?.naturalWidth"),
            Duration::from_secs(10),
        )
        .await;
    assert_eq!(thumb, Value::from(640), "the thumbnail of the first channel");
    page.screenshot("console_tree_thumbnails").await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn console_adds_watches_and_deletes_pull_sources() {
    let redis = RedisServer::start().expect("redis-server");
    let url = redis.url();
    let sip = SipProc::start(Some(&url), &[]);
    let _media = MediaProc::start(Some(&url), &[]);
    let gst_port = testkit::free_port();
    let _gst = support::mjpeg::gst_server(gst_port, 10);
    let rtsp = support::rtsp::RtspServer::start_with(testkit::free_port(), "h264", "none", &[]);
    assert!(
        eventually(Duration::from_secs(10), || async {
            get_json(&sip.api("/api/v1/cluster")).await.1["media"].as_array().is_some_and(|a| !a.is_empty())
        })
        .await
    );
    let chromium = Chromium::start();
    let mut page = open_without_token(&chromium, &sip).await;
    page.eval("location.hash = '#/sources'").await;
    assert_eq!(page.wait_for("!!document.getElementById('source-form')", Duration::from_secs(5)).await, Value::Bool(true));

    // Added from the form as an operator types it: an MJPEG camera behind basic auth.
    let add = |url: String, id: &str, user: &str, password: &str| {
        format!(
            "(() => {{ const f = document.getElementById('source-form'); const set = (n, v) => f.querySelector(`[name=${{n}}]`).value = v;
               set('url', {url:?}); set('name', 'Camera ' + {id:?}); set('stream_id', {id:?}); set('username', {user:?}); set('password', {password:?});
               f.requestSubmit(); return true; }})()"
        )
    };
    page.eval(&add(format!("http://127.0.0.1:{gst_port}/"), "yard", "admin", "12345")).await;
    let state = |id: &str| format!("document.querySelector('#sources-list tr[data-source=\"{id}\"] .badge')?.dataset.state");
    let playing = page.wait_for(&format!("{} === 'playing'", state("yard")), Duration::from_secs(15)).await;
    assert_eq!(playing, Value::Bool(true), "{}", page.eval("document.getElementById('sources-list').innerText").await);
    page.eval("document.querySelector('#sources-list tr[data-source=\"yard\"] button').click()").await;
    let shown = page.wait_for("document.querySelector('.source-viewer img.source-picture')?.naturalWidth", Duration::from_secs(10)).await;
    assert_eq!(shown, Value::from(320), "the camera's pictures in an <img>");
    page.screenshot("console_sources_mjpeg").await;

    // An RTSP camera (credentials in its URL): its H.264 decodes in the page's <video>.
    let rtsp_url = format!("rtsp://{}:{}@127.0.0.1:{}/Streaming/Channels/101", support::rtsp::USER, support::rtsp::PASSWORD, rtsp.port);
    page.eval(&add(rtsp_url, "gate", "", "")).await;
    let playing = page.wait_for(&format!("{} === 'playing'", state("gate")), Duration::from_secs(15)).await;
    assert_eq!(
        playing,
        Value::Bool(true),
        "{} / {}",
        page.eval("document.getElementById('sources-list').innerText").await,
        page.eval("document.getElementById('sources-status').textContent").await
    );
    page.eval("document.querySelector('#sources-list tr[data-source=\"gate\"] button').click()").await;
    let t0 = page
        .wait_for(
            "(v => v && v.currentTime > 0.5 && v.currentTime)(document.querySelector('.source-viewer video'))",
            Duration::from_secs(20),
        )
        .await;
    assert!(t0.as_f64().is_some(), "the RTSP camera decodes: {}", page.eval("document.getElementById('sources-status').textContent").await);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let t1 = js(&mut page, "document.querySelector('.source-viewer video').currentTime").await.as_f64().unwrap_or(0.0);
    assert!(t1 >= t0.as_f64().unwrap() + 1.0, "currentTime moves: {t0} then {t1}");
    assert_eq!(js(&mut page, "document.querySelector('.source-viewer video').videoWidth").await, Value::from(640));
    page.screenshot("console_sources_rtsp").await;

    // A camera that cannot be reached says so in its row.
    page.eval(&add(format!("http://127.0.0.1:{}/video.mjpg", testkit::free_port()), "gone", "", "")).await;
    let says = page
        .wait_for(
            "document.querySelector('#sources-list tr[data-source=\"gone\"] .trouble')?.textContent.includes('unreachable') && document.querySelector('#sources-list tr[data-source=\"gone\"] .trouble').textContent.includes('Check the camera')",
            Duration::from_secs(15),
        )
        .await;
    assert_eq!(says, Value::Bool(true), "{}", page.eval("document.getElementById('sources-list').innerText").await);
    let text = page.eval("document.body.innerText").await;
    let text = text.as_str().unwrap_or_default();
    assert!(!text.contains("12345") && !text.contains(support::rtsp::PASSWORD), "a password on the page");
    page.screenshot("console_sources").await;

    // Both in tiles of the live wall, beside the GB channels: the RTSP camera in the player, the
    // MJPEG one as pictures.
    page.eval("location.hash = '#/live'").await;
    let listed = page
        .wait_for("document.querySelectorAll('#page-live .source-list button[data-source]').length === 3", Duration::from_secs(10))
        .await;
    assert_eq!(listed, Value::Bool(true), "{}", page.eval("document.querySelector('#page-live .source-list').innerText").await);
    page.eval("document.querySelector('#page-live .source-list button[data-source=\"gate\"]').click()").await;
    wait_decoding(&mut page, 1, "console_live_source_rtsp").await;
    page.eval("document.querySelector('#page-live .source-list button[data-source=\"yard\"]').click()").await;
    let pictures = page
        .wait_for("document.querySelector('.tile[data-source=\"yard\"] img.tile-picture')?.naturalWidth", Duration::from_secs(10))
        .await;
    assert_eq!(pictures, Value::from(320), "the MJPEG camera's pictures in a tile");
    page.screenshot("console_live_sources").await;
    page.eval("document.querySelectorAll('.tile .close').forEach(b => b.hidden || b.click())").await;
    page.eval("location.hash = '#/sources'").await;

    // Deleted from its row.
    page.eval("window.confirm = () => true; [...document.querySelectorAll('#sources-list tr[data-source=\"yard\"] button')].find(b => b.textContent === 'Delete').click()").await;
    let gone = page.wait_for("!document.querySelector('#sources-list tr[data-source=\"yard\"]')", Duration::from_secs(10)).await;
    assert_eq!(gone, Value::Bool(true));
    assert_eq!(get_json(&sip.api("/api/v1/sources/yard")).await.0, 404);
}

/// Figure for docs/benchmarks.md (`scripts/bench-console`): from the click on a channel to the
/// first frame the page's `<video>` presents (`requestVideoFrameCallback`), cold each time (the
/// session closed in between, so it includes the INVITE), over fMP4; gbsim's clip has a 1 s GOP.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "a benchmark: scripts/bench-console"]
async fn bench_click_to_first_frame() {
    let clicks: usize = std::env::var("CLICKS").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    let redis = RedisServer::start().expect("redis-server");
    let url = redis.url();
    let sip = SipProc::start(Some(&url), &[("GBC_SIP__KEEPALIVE_INTERVAL_SECS", "5"), ("GBC_SIP__PLAY__NO_VIEWER_SECS", "2")]);
    let _media = MediaProc::start(Some(&url), &[]);
    let _cam = SimProc::start(sip.sip_addr(), STAY, 1, "udp", &[("GBC_SIM__KEEPALIVE_SECS", "5")]);
    wait_catalog(&sip, &dev(STAY, 0)).await;
    let chromium = Chromium::start();
    let mut page = open_without_token(&chromium, &sip).await;
    page.eval("location.hash = '#/live'").await;
    page.eval("document.querySelector('.layouts button[data-n=\"1\"]').click()").await;
    let mut ms = Vec::with_capacity(clicks);
    for i in 0..clicks {
        page.eval(
            "{ const v = document.querySelector('.tile video'); window.bench = { t0: performance.now(), t1: null };
               v.requestVideoFrameCallback(() => { window.bench.t1 = performance.now(); }); }",
        )
        .await;
        click_channel(&mut page, "#page-live", &dev(STAY, 0), 0).await;
        let took = page.wait_for("window.bench.t1 !== null && window.bench.t1 - window.bench.t0", Duration::from_secs(15)).await;
        let took = took.as_f64().unwrap_or_else(|| panic!("click {i}: no frame"));
        ms.push(took);
        page.eval("document.querySelector('.tile .close').click()").await;
        assert!(eventually(Duration::from_secs(10), || async { get_json(&sip.api("/api/v1/streams")).await.1["total"] == 0 }).await);
    }
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() as f64 * q).ceil() as usize).clamp(1, ms.len()) - 1];
    println!(
        "{}",
        serde_json::json!({"clicks": clicks, "first_frame_ms_p50": at(0.5).round(), "first_frame_ms_p95": at(0.95).round(),
                           "min": ms[0].round(), "max": ms[ms.len() - 1].round()})
    );
}
