//! SIPp, an independent SIP implementation, registers with digest auth and sends a MANSCDP
//! keepalive, from the scenario kept in `tests/sipp/register_keepalive.xml`; and answers
//! RecordInfo and DeviceControl as a camera (`device_online.xml` + `device_answers.xml`).

mod support;

use std::process::Command;

use support::*;

#[tokio::test]
async fn sipp_registers_with_digest_and_keeps_alive() {
    let p = SipProc::start(None, &[("GBC_SIP__QUERY_ON_REGISTER", "false")]);
    let scenario = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/sipp/register_keepalive.xml");
    let local_port = testkit::free_port();
    let out = Command::new("sipp")
        .args(["-sf", scenario, "-m", "1", "-i", "127.0.0.1", "-p", &local_port.to_string(), "-t", "u1"])
        .args(["-s", "34020000001320002001", "-au", "34020000001320002001", "-ap", "12345678"])
        .args(["-timeout", "20s", "-timeout_error", "-nostdin"])
        .arg(format!("127.0.0.1:{}", p.sip_port))
        .output()
        .expect("sipp on PATH (apt-get install sip-tester)");
    assert!(
        out.status.success(),
        "sipp failed: {}\n{}\nserver log:\n{}",
        String::from_utf8_lossy(&out.stdout).lines().rev().take(30).collect::<Vec<_>>().join("\n"),
        String::from_utf8_lossy(&out.stderr),
        p.log_text()
    );
    let (_, d) = get_json(&p.api("/api/v1/devices/34020000001320002001")).await;
    assert_eq!(d["online"], true);
    let metrics = reqwest::get(p.api("/metrics")).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("gbc_sip_keepalives_total 1"), "{metrics}");
}

/// SIPp as a camera that answers what the server asks (`tests/sipp/device_online.xml` with the
/// out-of-call `device_answers.xml`): a RecordInfo query and DeviceControl commands from the
/// API get the camera's Responses, matched by SN, through an independent SIP stack.
#[tokio::test]
async fn sipp_device_answers_record_info_and_device_control() {
    let p = SipProc::start(None, &[("GBC_SIP__QUERY_ON_REGISTER", "false")]);
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/sipp");
    let id = "34020000001320002002";
    let local_port = testkit::free_port();
    let log = std::env::temp_dir().join(format!("gbc-sipp-answers-{}.log", std::process::id()));
    let mut sipp = Command::new("sipp")
        .args(["-sf", &format!("{dir}/device_online.xml"), "-oocsf", &format!("{dir}/device_answers.xml")])
        .args(["-m", "1", "-i", "127.0.0.1", "-p", &local_port.to_string(), "-t", "u1", "-d", "8000"])
        .args(["-s", id, "-au", id, "-ap", "12345678", "-timeout", "40s", "-timeout_error", "-nostdin"])
        .arg(format!("127.0.0.1:{}", p.sip_port))
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("sipp on PATH (apt-get install sip-tester)");
    let path = p.api(&format!("/api/v1/devices/{id}"));
    assert!(eventually(std::time::Duration::from_secs(10), || async { get_json(&path).await.1["online"] == true }).await);

    let (code, r) =
        get_json(&p.api(&format!("/api/v1/devices/{id}/channels/{id}/records?start=2026-11-30T00:00:00Z&end=2026-12-01T00:00:00Z"))).await;
    assert_eq!(code, 200, "{r}\n{}", p.log_text());
    assert_eq!((r["total"].as_u64(), r["complete"].as_bool()), (Some(2), Some(true)), "{r}");
    // SIPp's times are zoneless: read in UTC+8, the zone our Date header gave it.
    assert_eq!(r["items"][0]["start"], "2026-11-30T00:00:00Z");
    assert_eq!(r["items"][1]["start"], "2026-11-30T01:00:00Z", "a space for the T is read too");
    assert_eq!((r["items"][1]["type"].as_str(), r["items"][1]["file_path"].as_str()), (Some("alarm"), Some("/sipp/2.ps")));

    let client = reqwest::Client::new();
    for (path, body, key, want) in [
        ("control", serde_json::json!({"command": "record_start"}), "result", "OK"),
        ("control", serde_json::json!({"command": "guard_set"}), "result", "OK"),
        ("ptz", serde_json::json!({"command": "preset_call", "preset": 3}), "ptz_cmd", "A50F01820003003A"),
    ] {
        let r = client.post(p.api(&format!("/api/v1/devices/{id}/channels/{id}/{path}"))).json(&body).send().await.unwrap();
        let code = r.status().as_u16();
        let answer: serde_json::Value = r.json().await.unwrap();
        assert_eq!((code, answer[key].as_str()), (200, Some(want)), "{body}: {answer}");
    }
    let status = tokio::task::spawn_blocking(move || sipp.wait()).await.unwrap().unwrap();
    assert!(status.success(), "sipp failed: {}", std::fs::read_to_string(&log).unwrap_or_default());
}
