//! SIPp, an independent SIP implementation, registers with digest auth and sends a MANSCDP
//! keepalive, from the scenario kept in `tests/sipp/register_keepalive.xml`.

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
