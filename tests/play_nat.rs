//! A camera behind a real NAT. Three network namespaces made for the test:
//!
//! ```text
//!  lan (camera, 192.168.77.2) ── nat (MASQUERADE) ── wan (gbcluster all, 10.200.1.1) ── test
//! ```
//!
//! `wan` has no route to 192.168.77.0/24: the camera's Via/Contact/SDP address is useless
//! there, so a play works only if every request goes to the address its packets came from (the
//! NAT's), through the socket or connection it registered on. Needs root (CI runs as root);
//! set `GBC_SKIP_NETNS=1` to skip where namespaces cannot be made.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use support::eventually;

fn sh(ns: Option<&str>, args: &[&str]) {
    let mut cmd = match ns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns]);
            c.args(args);
            c
        }
        None => {
            let mut c = Command::new(args[0]);
            c.args(&args[1..]);
            c
        }
    };
    let out = cmd.output().unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(out.status.success(), "{ns:?} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// The three namespaces and their links; removed on drop.
struct Net {
    lan: String,
    nat: String,
    wan: String,
    host_link: String,
}

impl Net {
    fn create() -> Self {
        let tag = std::process::id() % 100_000;
        let (lan, nat, wan) = (format!("gbcl{tag}"), format!("gbcn{tag}"), format!("gbcw{tag}"));
        let net = Net { lan: lan.clone(), nat: nat.clone(), wan: wan.clone(), host_link: format!("gh{tag}") };
        for ns in [&lan, &nat, &wan] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
            sh(None, &["ip", "netns", "add", ns]);
            sh(Some(ns), &["ip", "link", "set", "lo", "up"]);
        }
        let link = |a: &str, a_ns: &str, b: &str, b_ns: Option<&str>| {
            sh(None, &["ip", "link", "add", a, "type", "veth", "peer", "name", b]);
            sh(None, &["ip", "link", "set", a, "netns", a_ns]);
            if let Some(b_ns) = b_ns {
                sh(None, &["ip", "link", "set", b, "netns", b_ns]);
            }
        };
        // lan ↔ nat
        link(&format!("l{tag}"), &lan, &format!("nl{tag}"), Some(&nat));
        sh(Some(&lan), &["ip", "addr", "add", "192.168.77.2/24", "dev", &format!("l{tag}")]);
        sh(Some(&lan), &["ip", "link", "set", &format!("l{tag}"), "up"]);
        sh(Some(&lan), &["ip", "route", "add", "default", "via", "192.168.77.1"]);
        sh(Some(&nat), &["ip", "addr", "add", "192.168.77.1/24", "dev", &format!("nl{tag}")]);
        sh(Some(&nat), &["ip", "link", "set", &format!("nl{tag}"), "up"]);
        // nat ↔ wan
        link(&format!("nw{tag}"), &nat, &format!("w{tag}"), Some(&wan));
        sh(Some(&nat), &["ip", "addr", "add", "10.200.1.2/24", "dev", &format!("nw{tag}")]);
        sh(Some(&nat), &["ip", "link", "set", &format!("nw{tag}"), "up"]);
        sh(Some(&wan), &["ip", "addr", "add", "10.200.1.1/24", "dev", &format!("w{tag}")]);
        sh(Some(&wan), &["ip", "link", "set", &format!("w{tag}"), "up"]);
        sh(Some(&nat), &["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
        sh(Some(&nat), &["iptables", "-t", "nat", "-A", "POSTROUTING", "-o", &format!("nw{tag}"), "-j", "MASQUERADE"]);
        // The test (host) reaches wan's services over a link of its own.
        link(&format!("wh{tag}"), &wan, &net.host_link, None);
        sh(Some(&wan), &["ip", "addr", "add", "10.200.9.2/30", "dev", &format!("wh{tag}")]);
        sh(Some(&wan), &["ip", "link", "set", &format!("wh{tag}"), "up"]);
        sh(None, &["ip", "addr", "add", "10.200.9.1/30", "dev", &net.host_link]);
        sh(None, &["ip", "link", "set", &net.host_link, "up"]);
        sh(None, &["ip", "route", "add", "10.200.1.1/32", "via", "10.200.9.2"]);
        net
    }

    fn spawn(&self, ns: &str, args: &[&str], env: &[(&str, &str)], log: &str) -> Child {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns, env!("CARGO_BIN_EXE_gbcluster")]).args(args).env("RUST_LOG", "info,rsipstack=warn");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let log = std::env::temp_dir().join(log);
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(std::fs::File::create(log).expect("log"));
        cmd.spawn().expect("spawn in netns")
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.host_link]).output();
        for ns in [&self.lan, &self.nat, &self.wan] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const API: &str = "http://10.200.1.1:8080";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_camera_behind_nat_plays_through_its_observed_address() {
    if std::env::var("GBC_SKIP_NETNS").is_ok_and(|v| v == "1") {
        eprintln!("GBC_SKIP_NETNS=1: NAT test skipped");
        return;
    }
    let net = Net::create();
    let env = [
        ("GBC_SIP__LISTEN", "10.200.1.1:5060"),
        ("GBC_SIP__PUBLIC_ADDR", "10.200.1.1:5060"),
        ("GBC_SIP__API__LISTEN", "0.0.0.0:8080"),
        ("GBC_STREAM__HTTP_LISTEN", "0.0.0.0:8081"),
        ("GBC_STREAM__RTMP_LISTEN", "0.0.0.0:1935"),
        ("GBC_STREAM__PUBLIC_IP", "10.200.1.1"),
        ("GBC_STREAM__RTP_BIND_IP", "10.200.1.1"),
        ("GBC_SIP__PLAY__NO_VIEWER_SECS", "0"),
    ];
    let _server = Killed(net.spawn(&net.wan, &["all"], &env, "gbc-nat-server.log"));
    let up = eventually(Duration::from_secs(20), || async {
        reqwest::get(format!("{API}/healthz")).await.is_ok_and(|r| r.status().is_success())
    })
    .await;
    assert!(up, "server in the wan namespace did not come up");

    let cams = [("34020000001320000701", "udp", "udp"), ("34020000001320000801", "tcp", "tcp-passive")];
    let mut sims = Vec::new();
    for (id, sip_transport, _) in cams {
        let env = [
            ("GBC_SIM__SERVER", "10.200.1.1:5060"),
            ("GBC_SIM__BIND_IP", "192.168.77.2"),
            ("GBC_SIM__FIRST_DEVICE_ID", id),
            ("GBC_SIM__DEVICES", "1"),
            ("GBC_SIM__CHANNELS", "1"),
            ("GBC_SIM__TRANSPORT", sip_transport),
        ];
        sims.push(Killed(net.spawn(&net.lan, &["sim"], &env, &format!("gbc-nat-sim-{id}.log"))));
    }
    for (id, sip_transport, media_transport) in cams {
        let ready = eventually(Duration::from_secs(20), || async {
            let (code, v) = support::get_json(&format!("{API}/api/v1/devices/{id}/channels")).await;
            code == 200 && v["total"].as_u64() == Some(1)
        })
        .await;
        assert!(ready, "{id} did not register from behind the NAT");
        let dev: Value = reqwest::get(format!("{API}/api/v1/devices/{id}")).await.unwrap().json().await.unwrap();
        assert!(dev["source_addr"].as_str().unwrap().starts_with("10.200.1.2:"), "seen at the NAT's address: {dev}");
        assert!(dev["contact"].as_str().unwrap().contains("192.168.77.2"), "claims its private address: {dev}");
        assert_eq!(dev["transport"], sip_transport);

        let channel = &gbsim::device::channel_ids(id, 0, 1)[0];
        let r = reqwest::Client::new()
            .post(format!("{API}/api/v1/devices/{id}/channels/{channel}/play"))
            .body(serde_json::json!({ "transport": media_transport }).to_string())
            .send()
            .await
            .unwrap();
        let code = r.status().as_u16();
        let v: Value = r.json().await.unwrap();
        assert_eq!(code, 200, "play from behind NAT over {media_transport}: {v}");
        let flv = v["urls"]["http_flv"].as_str().unwrap();
        let streams = support::ffprobe_frames(flv, &["-read_intervals", "%+#100"]);
        let video = streams.iter().find(|s| s.0 == "h264").unwrap_or_else(|| panic!("{media_transport}: no video {streams:?}"));
        assert!(video.3 >= 25 && video.1 == 640, "{media_transport}: {streams:?}");
    }
}
