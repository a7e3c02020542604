//! Independent MJPEG-over-HTTP servers standing in for network cameras: ffmpeg's `mpjpeg`
//! muxer and GStreamer's `multipartmux` (tests/mjpeg/gst_server.py, behind basic auth).

use std::process::{Child, Command, Stdio};

pub const GST_USER: &str = "admin";
pub const GST_PASSWORD: &str = "12345";

/// A child process killed on drop.
pub struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// ffmpeg's `mpjpeg` muxer serving one client over HTTP (`-listen 1`), 320×240 at 10 fps.
pub fn ffmpeg_server(port: u16) -> Killed {
    let child = Command::new("ffmpeg")
        .args(["-v", "error", "-re", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=10", "-q:v", "5"])
        .args(["-f", "mpjpeg", "-listen", "1"])
        .arg(format!("http://127.0.0.1:{port}/cam.mjpg"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("ffmpeg must be installed");
    Killed(child)
}

/// GStreamer's `multipartmux` behind basic auth, 320×240 at `fps`; ready when it returns.
pub fn gst_server(port: u16, fps: u32) -> Killed {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/mjpeg/gst_server.py");
    let mut child = Command::new("/usr/bin/python3")
        .args([script, "--port", &port.to_string(), "--user", GST_USER, "--password", GST_PASSWORD, "--fps", &fps.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 with gi (python3-gi, gstreamer1.0-plugins-good) must be installed");
    let mut line = String::new();
    let _ = std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line);
    assert_eq!(line.trim(), "ready", "the GStreamer MJPEG server did not start");
    Killed(child)
}
