//! Device control across real processes: the API's PTZ commands reach the device as the
//! standard's `DeviceControl` with the exact `<PTZCmd>` bytes (annex A.3, checksum included),
//! and the device's answer maps to HTTP — 200, a refusal 502 with its SIP status, silence 504;
//! bad parameters are a 400 naming the field, an offline device a 409.

mod support;

use std::time::Duration;

use gb::sip::lite::LiteMessage;
use serde_json::{json, Value};
use support::{RawDevice, SipProc};

async fn post_ptz(sip: &SipProc, device: &str, channel: &str, body: Value) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(sip.api(&format!("/api/v1/devices/{device}/channels/{channel}/ptz")))
        .json(&body)
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// `method` of a JSON body to an API path: the status and the JSON answer.
async fn send_json(sip: &SipProc, method: reqwest::Method, path: &str, body: Value) -> (u16, Value) {
    let r = reqwest::Client::new().request(method, sip.api(path)).json(&body).timeout(Duration::from_secs(30)).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// POSTs `body` to an API path in the background (the test plays the device meanwhile).
fn spawn_post(sip: &SipProc, path: &str, body: Value) -> tokio::task::JoinHandle<(u16, Value)> {
    let url = sip.api(path);
    tokio::spawn(async move {
        let r = reqwest::Client::new().post(url).json(&body).send().await.unwrap();
        (r.status().as_u16(), r.json::<Value>().await.unwrap())
    })
}

/// The next DeviceControl MESSAGE the device receives (retransmissions skipped).
async fn next_control(dev: &RawDevice) -> LiteMessage {
    loop {
        let m = dev.recv(Duration::from_secs(5)).await.expect("a MESSAGE reaches the device");
        if m.method() == Some("MESSAGE") && String::from_utf8_lossy(&m.body).contains("<CmdType>DeviceControl</CmdType>") {
            return m;
        }
    }
}

fn ptz_cmd(m: &LiteMessage) -> String {
    let body = String::from_utf8_lossy(&m.body);
    body.split("<PTZCmd>").nth(1).and_then(|r| r.split("</PTZCmd>").next()).unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ptz_commands_reach_the_device_as_the_standards_bytes_and_answers_map_to_http() {
    let sip = SipProc::start(None, &[("GBC_SIP__QUERY_ON_REGISTER", "false")]);
    let id = "34020000001320000801";
    let mut dev = RawDevice::new(sip.sip_addr(), id, None).await;
    assert_eq!(dev.register("12345678", 3600).await.code(), Some(200));

    // Each command and the bytes the standard's table gives for it (worked out in gb::ptz).
    let cases = [
        (json!({"command": "left", "speed": 50}), "A50F0102320000E9"),
        (json!({"command": "up", "speed": 100}), "A50F010800640021"),
        (json!({"command": "zoom_out", "zoom_speed": 15}), "A50F01200000F0C5"),
        (json!({"command": "focus_far", "speed": 32}), "A50F014120000016"),
        (json!({"command": "preset_call", "preset": 3}), "A50F01820003003A"),
        (json!({"command": "stop"}), "A50F0100000000B5"),
    ];
    for (body, bytes) in cases {
        let call = spawn_post(&sip, &format!("/api/v1/devices/{id}/channels/{id}/ptz"), body.clone());
        let m = next_control(&dev).await;
        let text = String::from_utf8_lossy(&m.body).into_owned();
        assert!(text.starts_with("<?xml") && text.contains("<Control>") && text.contains(&format!("<DeviceID>{id}</DeviceID>")), "{text}");
        assert_eq!(ptz_cmd(&m), bytes, "{body}");
        let reply = m.response(200, "OK", "dev1", &[], None);
        dev.sock.send_to(&reply, sip.sip_addr()).await.unwrap();
        let (code, answer) = call.await.unwrap();
        assert_eq!((code, answer["ptz_cmd"].as_str()), (200, Some(bytes)), "{answer}");
    }

    // The device refuses: 502 with its status.
    let call = spawn_post(&sip, &format!("/api/v1/devices/{id}/channels/{id}/ptz"), json!({"command": "right"}));
    let m = next_control(&dev).await;
    dev.sock.send_to(&m.response(486, "Busy Here", "dev1", &[], None), sip.sip_addr()).await.unwrap();
    let (code, answer) = call.await.unwrap();
    assert_eq!((code, answer["kind"].as_str(), answer["sip_status"].as_u64()), (502, Some("device_refused"), Some(486)), "{answer}");

    // A command with a Response: the device takes the MESSAGE, then answers Result ERROR.
    let call = spawn_post(&sip, &format!("/api/v1/devices/{id}/channels/{id}/control"), json!({"command": "alarm_reset"}));
    let m = next_control(&dev).await;
    let text = String::from_utf8_lossy(&m.body).into_owned();
    assert!(text.contains("<AlarmCmd>ResetAlarm</AlarmCmd>"), "{text}");
    dev.sock.send_to(&m.response(200, "OK", "dev1", &[], None), sip.sip_addr()).await.unwrap();
    let sn = gb::manscdp::parse(&m.body).unwrap().header.sn;
    assert_eq!(dev.exchange("MESSAGE", &[], &gb::manscdp::build::device_control_response(sn, id, false)).await.code(), Some(200));
    let (code, answer) = call.await.unwrap();
    assert_eq!((code, answer["kind"].as_str()), (502, Some("device_failed")), "{answer}");

    // DragZoomIn: the rectangle as annex A.2.3 spells it; no Response, the 200 is the answer.
    let call = spawn_post(
        &sip,
        &format!("/api/v1/devices/{id}/channels/{id}/control"),
        json!({"command": "drag_zoom_in", "width": 1920, "length": 1080, "mid_x": 480, "mid_y": 270, "length_x": 640, "length_y": 360}),
    );
    let m = next_control(&dev).await;
    let text = String::from_utf8_lossy(&m.body).into_owned();
    for part in [
        "<DragZoomIn>",
        "<Length>1080</Length>",
        "<Width>1920</Width>",
        "<MidPointX>480</MidPointX>",
        "<MidPointY>270</MidPointY>",
        "<LengthX>640</LengthX>",
        "<LengthY>360</LengthY>",
        "</DragZoomIn>",
    ] {
        assert!(text.contains(part), "{part} in {text}");
    }
    dev.sock.send_to(&m.response(200, "OK", "dev1", &[], None), sip.sip_addr()).await.unwrap();
    let (code, answer) = call.await.unwrap();
    assert_eq!((code, answer["command"].as_str(), answer["result"].as_str()), (200, Some("drag_zoom_in"), Some("sent")), "{answer}");
    // HomePosition: enabled, with its preset and the idle time before the camera returns.
    let call = spawn_post(
        &sip,
        &format!("/api/v1/devices/{id}/channels/{id}/control"),
        json!({"command": "home_position", "enabled": true, "preset": 4, "reset_secs": 90}),
    );
    let m = next_control(&dev).await;
    let text = String::from_utf8_lossy(&m.body).into_owned();
    for part in ["<HomePosition>", "<Enabled>1</Enabled>", "<ResetTime>90</ResetTime>", "<PresetIndex>4</PresetIndex>"] {
        assert!(text.contains(part), "{part} in {text}");
    }
    dev.sock.send_to(&m.response(200, "OK", "dev1", &[], None), sip.sip_addr()).await.unwrap();
    let sn = gb::manscdp::parse(&m.body).unwrap().header.sn;
    assert_eq!(dev.exchange("MESSAGE", &[], &gb::manscdp::build::device_control_response(sn, id, true)).await.code(), Some(200));
    let (code, answer) = call.await.unwrap();
    assert_eq!((code, answer["result"].as_str()), (200, Some("OK")), "{answer}");
    // Parameters out of range name what is wrong, before anything is sent.
    let control = format!("/api/v1/devices/{id}/channels/{id}/control");
    for (body, says) in [
        (json!({"command": "home_position", "enabled": true, "preset": 0}), "preset must be 1-255"),
        (json!({"command": "home_position", "enabled": true, "reset_secs": 0}), "reset_secs must be 1-86400"),
        (
            json!({"command": "drag_zoom_out", "width": 640, "length": 360, "mid_x": 700, "mid_y": 10, "length_x": 10, "length_y": 10}),
            "rectangle must lie in the 640x360 picture",
        ),
        (json!({"command": "drag_zoom_out", "width": 640}), "missing field"),
    ] {
        let (code, answer) = send_json(&sip, reqwest::Method::POST, &control, body.clone()).await;
        assert!(code == 400 && answer.to_string().contains(says), "{body}: {code} {answer}");
    }

    // Bad parameters: 400 naming the field, nothing sent.
    let (code, answer) = post_ptz(&sip, id, id, json!({"command": "left", "speed": 300})).await;
    assert_eq!((code, answer["message"].as_str()), (400, Some("bad request: speed must be 0-255, not 300")));
    let (code, answer) = post_ptz(&sip, id, id, json!({"command": "zoom_in", "zoom_speed": 16})).await;
    assert_eq!((code, answer["message"].as_str()), (400, Some("bad request: zoom_speed must be 0-15, not 16")));
    let (code, answer) = post_ptz(&sip, id, id, json!({"command": "spin"})).await;
    assert!(code == 400 && answer["message"].as_str().unwrap().contains("command \"spin\" is unknown"), "{answer}");
    let (code, _) = post_ptz(&sip, id, "34020000001310000999", json!({"command": "stop"})).await;
    assert_eq!(code, 404, "a channel not in the catalog");
    assert!(dev.recv(Duration::from_millis(300)).await.is_none_or(|m| !String::from_utf8_lossy(&m.body).contains("DeviceControl")));

    // Silence: 504 once the request times out.
    let (code, answer) = post_ptz(&sip, id, id, json!({"command": "stop"})).await;
    assert_eq!((code, answer["kind"].as_str()), (504, Some("device_timeout")), "{answer}");
    assert!(answer["message"].as_str().unwrap().contains("did not answer the PTZ command"), "{answer}");

    // Offline (unregistered): 409 and nothing is sent.
    assert_eq!(dev.register("12345678", 0).await.code(), Some(200));
    let (code, answer) = post_ptz(&sip, id, id, json!({"command": "stop"})).await;
    assert_eq!((code, answer["kind"].as_str()), (409, Some("device_offline")), "{answer}");
}

/// Against gbsim's PTZ head: presets set and deleted through the API are what the camera's
/// `PresetQuery` answer lists (its Response matched to the query by SN), per channel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presets_set_through_the_api_are_listed_by_the_cameras_preset_query() {
    let sip = SipProc::start(None, &[]);
    let first = "34020000001320000811";
    let _cam = support::SimProc::start(sip.sip_addr(), first, 1, "udp", &[("GBC_SIM__KEEPALIVE_SECS", "5")]);
    let dev = gbsim::device_id(first, 0).unwrap();
    let channels = gbsim::device::channel_ids(&dev, 0, 2);
    let path = sip.api(&format!("/api/v1/devices/{dev}/channels"));
    assert!(support::eventually(Duration::from_secs(20), || async { support::get_json(&path).await.1["total"] == 2 }).await);
    let ch = &channels[0];
    for body in [
        json!({"command": "right", "speed": 200}),
        json!({"command": "stop"}),
        json!({"command": "preset_set", "preset": 1}),
        json!({"command": "preset_set", "preset": 5}),
        json!({"command": "preset_set", "preset": 9}),
        json!({"command": "preset_delete", "preset": 5}),
        json!({"command": "preset_call", "preset": 1}),
    ] {
        let (code, answer) = post_ptz(&sip, &dev, ch, body.clone()).await;
        assert_eq!(code, 200, "{body}: {answer}");
    }
    let (code, list) = support::get_json(&sip.api(&format!("/api/v1/devices/{dev}/channels/{ch}/presets"))).await;
    assert_eq!(code, 200, "{list}");
    assert_eq!(list["items"], json!([{"preset": 1, "name": "预置位1"}, {"preset": 9, "name": "预置位9"}]), "{list}");
    let (code, other) = support::get_json(&sip.api(&format!("/api/v1/devices/{dev}/channels/{}/presets", channels[1]))).await;
    assert_eq!((code, other["total"].as_u64()), (200, Some(0)), "{other}");
    let (code, _) = support::get_json(&sip.api(&format!("/api/v1/devices/{dev}/channels/34020000001310009999/presets"))).await;
    assert_eq!(code, 404);
    // Commands with a Response (gbsim carries them out: Result OK) and without one.
    for (command, result) in [("record_start", "OK"), ("record_stop", "OK"), ("guard_set", "OK"), ("alarm_reset", "OK"), ("iframe", "sent")]
    {
        let r = reqwest::Client::new()
            .post(sip.api(&format!("/api/v1/devices/{dev}/channels/{ch}/control")))
            .json(&json!({"command": command}))
            .send()
            .await
            .unwrap();
        let code = r.status().as_u16();
        let answer: Value = r.json().await.unwrap();
        assert_eq!((code, answer["result"].as_str()), (200, Some(result)), "{command}: {answer}");
    }
    let control = format!("/api/v1/devices/{dev}/channels/{ch}/control");
    assert_eq!(send_json(&sip, reqwest::Method::POST, &control, json!({"command": "explode"})).await.0, 400);
    let home = json!({"command": "home_position", "enabled": true, "preset": 1, "reset_secs": 60});
    assert_eq!(send_json(&sip, reqwest::Method::POST, &control, home).await.1["result"], "OK");
    let drag =
        json!({"command": "drag_zoom_out", "width": 704, "length": 576, "mid_x": 352, "mid_y": 288, "length_x": 100, "length_y": 80});
    assert_eq!(send_json(&sip, reqwest::Method::POST, &control, drag).await.1["result"], "sent");

    // DeviceConfig then ConfigDownload: the camera keeps what was set and reports it back.
    let config = format!("/api/v1/devices/{dev}/config");
    let (code, before) = support::get_json(&sip.api(&config)).await;
    assert_eq!((code, before["basic_param"]["name"].as_str()), (200, Some("gbsim 1")), "{before}");
    assert_eq!(before["basic_param"]["device_id"].as_str(), Some(dev.as_str()), "{before}");
    let set = json!({"name": "北门 east", "heartbeat_interval": 7, "heartbeat_count": 4});
    let (code, answer) = send_json(&sip, reqwest::Method::PUT, &config, set).await;
    assert_eq!((code, answer["result"].as_str()), (200, Some("OK")), "{answer}");
    let (code, after) = support::get_json(&sip.api(&config)).await;
    assert_eq!(code, 200, "{after}");
    let p = &after["basic_param"];
    assert_eq!(
        (p["name"].as_str(), p["heartbeat_interval"].as_u64(), p["heartbeat_count"].as_u64()),
        (Some("北门 east"), Some(7), Some(4)),
        "{after}"
    );
    assert_eq!(p["expiration"], before["basic_param"]["expiration"], "what was not set stays");
    for (body, says) in [
        (json!({"heartbeat_interval": 1}), "heartbeat_interval must be 5-3600, not 1"),
        (json!({"expiration": 10}), "expiration must be 60-86400, not 10"),
        (json!({"sip_server_ip": "10.0.0.1"}), "sip_server_ip cannot be set"),
        (json!({}), "nothing to set"),
        (json!({"colour": "red"}), "unknown field"),
    ] {
        let (code, answer) = send_json(&sip, reqwest::Method::PUT, &config, body.clone()).await;
        assert!(code == 400 && answer.to_string().contains(says), "{body}: {code} {answer}");
    }
    let (code, _) = support::get_json(&sip.api("/api/v1/devices/34020000001320009999/config")).await;
    assert_eq!(code, 404);
}
