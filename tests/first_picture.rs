//! The IFrameCmd sent at play start: gbsim cameras that are mid-GOP when the call comes
//! (`start_frame = 1`, one frame past a key frame of a 1 s GOP) send their next key frame at
//! once when asked, so a viewer's first picture comes about a GOP sooner than from a sip node
//! that does not ask (`sip.play.iframe_on_start = false`). Measured on HTTP-FLV: from the play
//! answer to the first key-frame NAL unit a viewer receives.

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::{eventually, get_json, MediaProc, SimProc, SipProc};
use testkit::RedisServer;

/// Milliseconds from now until `url` delivers its first H.264 key frame (FLV video tag, frame
/// type 1, AVC NALU packet).
async fn ms_to_first_key_frame(url: &str) -> u128 {
    let t0 = Instant::now();
    let mut r = reqwest::get(url).await.unwrap();
    assert_eq!(r.status().as_u16(), 200, "{url}");
    let mut buf = Vec::new();
    let mut pos = 13; // FLV header and the first PreviousTagSize
    let deadline = t0 + Duration::from_secs(10);
    while Instant::now() < deadline {
        let chunk = tokio::time::timeout(Duration::from_secs(5), r.chunk()).await.unwrap().unwrap().expect("the stream goes on");
        buf.extend_from_slice(&chunk);
        while buf.len() >= pos + 11 {
            let size = u32::from_be_bytes([0, buf[pos + 1], buf[pos + 2], buf[pos + 3]]) as usize;
            if buf.len() < pos + 11 + size + 4 {
                break;
            }
            let data = &buf[pos + 11..pos + 11 + size];
            if buf[pos] == 9 && data.len() > 1 && data[0] >> 4 == 1 && data[1] == 1 {
                return t0.elapsed().as_millis();
            }
            pos += 11 + size + 4;
        }
    }
    panic!("no key frame from {url} within 10 s");
}

async fn play_and_time(sip: &SipProc, device: &str, channel: &str) -> u128 {
    let r = reqwest::Client::new()
        .post(sip.api(&format!("/api/v1/devices/{device}/channels/{channel}/play")))
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .unwrap();
    let answer: Value = r.json().await.unwrap();
    let flv = answer["urls"]["http_flv"].as_str().unwrap_or_else(|| panic!("{answer}")).to_owned();
    let ms = ms_to_first_key_frame(&flv).await;
    let stream = answer["stream_id"].as_str().unwrap();
    reqwest::Client::new().delete(sip.api(&format!("/api/v1/streams/{stream}?all=true"))).send().await.unwrap();
    ms
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_frame_asked_at_play_start_brings_the_first_picture_a_gop_sooner() {
    let redis = RedisServer::start().expect("redis-server must be installed");
    let url = redis.url();
    let asks = SipProc::start(Some(&url), &[("GBC_SIP__NODE_ID", "sip-asks")]);
    let waits = SipProc::start(Some(&url), &[("GBC_SIP__NODE_ID", "sip-waits"), ("GBC_SIP__PLAY__IFRAME_ON_START", "false")]);
    let _media = MediaProc::start(Some(&url), &[]);
    let mid_gop = [("GBC_SIM__START_FRAME", "1")];
    let _a = SimProc::start(asks.sip_addr(), "34020000001320000931", 1, "udp", &mid_gop);
    let _b = SimProc::start(waits.sip_addr(), "34020000001320000941", 1, "udp", &mid_gop);
    let mut timings = Vec::new();
    for (sip, first) in [(&asks, "34020000001320000931"), (&waits, "34020000001320000941")] {
        let dev = gbsim::device_id(first, 0).unwrap();
        let ch = gbsim::device::channel_ids(&dev, 0, 2)[0].clone();
        let path = sip.api(&format!("/api/v1/devices/{dev}/channels"));
        assert!(eventually(Duration::from_secs(20), || async { get_json(&path).await.1["total"] == 2 }).await);
        let mut ms = Vec::new();
        for _ in 0..3 {
            ms.push(play_and_time(sip, &dev, &ch).await);
        }
        ms.sort();
        timings.push(ms);
    }
    let (asked, waited) = (&timings[0], &timings[1]);
    // The camera skips 23 of the GOP's 24 remaining frames (0.92 s at 25 fps) when asked.
    assert!(asked[2] < 500, "with IFrameCmd: {asked:?} ms");
    assert!(waited[0] > 700, "without: {waited:?} ms");
    assert!(waited[1] >= asked[1] + 500, "asked {asked:?} vs waited {waited:?} ms");
    let m = reqwest::get(asks.api("/metrics")).await.unwrap().text().await.unwrap();
    assert!(m.lines().any(|l| l == "gbc_sip_device_controls_total 3"), "one IFrameCmd per play");
    eprintln!("first key frame after the play answer: asked {asked:?} ms, not asked {waited:?} ms");
}
