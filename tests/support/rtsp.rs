//! GStreamer's RTSP server (tests/rtsp/server.py under Debian's python3 with gi) standing in
//! for an NVR's or camera's video: H.264 or H.265 with PCMA or AAC, digest auth, the vendors'
//! live and playback paths.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use testkit::free_port;

pub const USER: &str = "admin";
pub const PASSWORD: &str = "Hik12345";

/// The RTSP server (python3-gi + GStreamer), killed on drop; collects the URLs DESCRIBEd.
pub struct RtspServer {
    child: Child,
    pub port: u16,
    describes: Arc<Mutex<Vec<String>>>,
}

impl RtspServer {
    pub fn start(codec: &'static str) -> Self {
        Self::start_on(free_port(), codec)
    }

    pub fn start_on(port: u16, codec: &'static str) -> Self {
        Self::start_with(port, codec, "pcma", &[])
    }

    pub fn start_with(port: u16, codec: &'static str, audio: &'static str, extra: &[&str]) -> Self {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/rtsp/server.py");
        let mut child = Command::new("/usr/bin/python3")
            .args([script, "--port", &port.to_string(), "--user", USER, "--password", PASSWORD, "--codec", codec, "--audio", audio])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 with gi (python3-gi, gir1.2-gst-rtsp-server-1.0) must be installed");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let ready = lines.next().and_then(Result::ok).unwrap_or_default();
        assert_eq!(ready, "ready", "the RTSP server did not start");
        let describes = Arc::new(Mutex::new(Vec::new()));
        let d = describes.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("DESCRIBE ") {
                    d.lock().unwrap().push(url.to_owned());
                }
            }
        });
        Self { child, port, describes }
    }

    pub fn describes(&self) -> Vec<String> {
        self.describes.lock().unwrap().clone()
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RtspServer {
    fn drop(&mut self) {
        self.kill();
    }
}
