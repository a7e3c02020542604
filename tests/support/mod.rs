//! Shared by the cross-process tests: start real `gbcluster` processes, talk raw SIP to them.

#![allow(dead_code)]

pub mod cdp;
pub mod mjpeg;
pub mod rtsp;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gb::sip::digest::{Algorithm, Challenge};
use gb::sip::lite::LiteMessage;
use testkit::free_port;
use tokio::net::UdpSocket;

pub const SERVER_ID: &str = "34020000002000000001";
pub const DOMAIN: &str = "3402000000";

/// Spawns `cmd` (stderr to `log`) and waits until `port` accepts connections.
pub fn spawn_and_wait(mut cmd: Command, port: u16, log: &std::path::Path, what: &str) -> Child {
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(std::fs::File::create(log).expect("log file"));
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {what}: {e}"));
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return child;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("{what} did not start; log:\n{}", std::fs::read_to_string(log).unwrap_or_default());
}

/// A `gbcluster sip` child process, killed on drop.
pub struct SipProc {
    child: Child,
    pub sip_port: u16,
    pub api_port: u16,
    pub log: std::path::PathBuf,
}

impl SipProc {
    pub fn start(redis_url: Option<&str>, env: &[(&str, &str)]) -> Self {
        Self::start_on(free_port(), redis_url, env)
    }

    pub fn start_on(sip_port: u16, redis_url: Option<&str>, env: &[(&str, &str)]) -> Self {
        let api_port = free_port();
        let log = std::env::temp_dir().join(format!("gbc-sip-{sip_port}-{}.log", std::process::id()));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_gbcluster"));
        cmd.arg("sip")
            .env("GBC_SIP__LISTEN", format!("127.0.0.1:{sip_port}"))
            .env("GBC_SIP__API__LISTEN", format!("127.0.0.1:{api_port}"))
            .env("RUST_LOG", "info,rsipstack=warn");
        if let Some(u) = redis_url {
            cmd.env("GBC_STORE__URL", u);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = spawn_and_wait(cmd, api_port, &log, "sip-server");
        Self { child, sip_port, api_port, log }
    }

    pub fn sip_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.sip_port))
    }

    pub fn api(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.api_port)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for SipProc {
    fn drop(&mut self) {
        self.kill();
    }
}

pub async fn get_json(url: &str) -> (u16, serde_json::Value) {
    let r = reqwest::get(url).await.expect("http get");
    let code = r.status().as_u16();
    (code, r.json().await.unwrap_or(serde_json::Value::Null))
}

/// Polls `f` until it is true or `timeout` passes.
pub async fn eventually<F, Fut>(timeout: Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// A hand-driven UDP device: every header under the test's control.
pub struct RawDevice {
    pub sock: UdpSocket,
    pub server: SocketAddr,
    pub id: String,
    /// What Via/Contact claim (a private address for the NAT case).
    pub advertised: String,
    cseq: u32,
    pub call_id: String,
    /// Headers sent on every request (e.g. `X-GB-Ver`).
    pub always: Vec<(&'static str, String)>,
}

impl RawDevice {
    pub async fn new(server: SocketAddr, id: &str, advertised_ip: Option<&str>) -> Self {
        let sock = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let port = sock.local_addr().expect("addr").port();
        let advertised = match advertised_ip {
            Some(ip) => format!("{ip}:5060"),
            None => format!("127.0.0.1:{port}"),
        };
        Self {
            sock,
            server,
            id: id.to_owned(),
            advertised,
            cseq: 0,
            call_id: format!("{}@test", rand::random::<u32>()),
            always: Vec::new(),
        }
    }

    pub fn request(&mut self, method: &str, extra: &[(&str, String)], body: &[u8]) -> Vec<u8> {
        self.cseq += 1;
        let to_user = if method == "REGISTER" { self.id.clone() } else { SERVER_ID.to_owned() };
        let mut s = format!(
            "{method} sip:{SERVER_ID}@{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/UDP {};rport;branch=z9hG4bK{}\r\nFrom: <sip:{}@{DOMAIN}>;tag=t{}\r\n\
             To: <sip:{to_user}@{DOMAIN}>\r\nCall-ID: {}\r\nCSeq: {} {method}\r\nMax-Forwards: 70\r\nContact: <sip:{}@{}>\r\n",
            self.advertised,
            rand::random::<u32>(),
            self.id,
            self.cseq,
            self.call_id,
            self.cseq,
            self.id,
            self.advertised
        );
        for (n, v) in extra.iter().chain(self.always.iter()) {
            s.push_str(&format!("{n}: {v}\r\n"));
        }
        if body.is_empty() {
            s.push_str("Content-Length: 0\r\n\r\n");
            s.into_bytes()
        } else {
            s.push_str(&format!("Content-Type: Application/MANSCDP+xml\r\nContent-Length: {}\r\n\r\n", body.len()));
            let mut b = s.into_bytes();
            b.extend_from_slice(body);
            b
        }
    }

    /// Receives the next message (answering nothing), or None after `timeout`.
    pub async fn recv(&self, timeout: Duration) -> Option<LiteMessage> {
        let mut buf = vec![0u8; 65_536];
        let (n, _) = tokio::time::timeout(timeout, self.sock.recv_from(&mut buf)).await.ok()?.ok()?;
        LiteMessage::parse(&buf[..n]).ok()
    }

    /// Sends and waits for the response with our CSeq (skipping anything else).
    pub async fn exchange(&mut self, method: &str, extra: &[(&str, String)], body: &[u8]) -> LiteMessage {
        let req = self.request(method, extra, body);
        let cseq = self.cseq;
        self.sock.send_to(&req, self.server).await.expect("send");
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Some(m) = self.recv(Duration::from_millis(500)).await {
                if m.code().is_some() && m.cseq().map(|c| c.0) == Some(cseq) {
                    return m;
                }
            }
        }
        panic!("no answer to {method} cseq {cseq}");
    }

    /// REGISTER answering the challenge with `password`; returns the final response.
    pub async fn register(&mut self, password: &str, expires: u32) -> LiteMessage {
        let first = self.exchange("REGISTER", &[("Expires", expires.to_string())], b"").await;
        if first.code() != Some(401) {
            return first;
        }
        let ch = first
            .headers_named("WWW-Authenticate")
            .filter_map(|h| Challenge::parse(h).ok())
            .find(|c| c.algorithm == Algorithm::Md5)
            .expect("MD5 challenge");
        self.register_with(&ch, password, expires).await
    }

    pub async fn register_with(&mut self, ch: &Challenge, password: &str, expires: u32) -> LiteMessage {
        let uri = format!("sip:{SERVER_ID}@{DOMAIN}");
        let auth = ch.answer(&self.id, password, "REGISTER", &uri, 1, "abcdef");
        self.exchange("REGISTER", &[("Expires", expires.to_string()), ("Authorization", auth)], b"").await
    }

    pub async fn keepalive(&mut self) -> LiteMessage {
        let body = gb::manscdp::build::keepalive(1, &self.id.clone());
        self.exchange("MESSAGE", &[], &body).await
    }
}

/// A `gbcluster stream` child process (media node), killed on drop.
pub struct MediaProc {
    child: Child,
    pub http_port: u16,
    pub rtmp_port: u16,
    /// Started with an RTMP push target.
    pub pushes: bool,
    pub log: std::path::PathBuf,
}

impl MediaProc {
    pub fn start(redis_url: Option<&str>, env: &[(&str, &str)]) -> Self {
        let http_port = free_port();
        let rtmp_port = free_port();
        // A port range of its own per process so parallel tests never collide.
        let first = 20_000 + (http_port % 200) * 100;
        let log = std::env::temp_dir().join(format!("gbc-media-{http_port}-{}.log", std::process::id()));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_gbcluster"));
        cmd.arg("stream")
            .env("GBC_STREAM__HTTP_LISTEN", format!("127.0.0.1:{http_port}"))
            .env("GBC_STREAM__RTMP_LISTEN", format!("127.0.0.1:{rtmp_port}"))
            .env("GBC_STREAM__RTP_BIND_IP", "127.0.0.1")
            .env("GBC_STREAM__RTP_PORTS", format!("[{first}, {}]", first + 98))
            .env("GBC_STREAM__NODE_ID", format!("media-{http_port}"))
            .env("RUST_LOG", "info");
        if let Some(u) = redis_url {
            cmd.env("GBC_STORE__URL", u);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let pushes = env.iter().any(|(k, v)| *k == "GBC_STREAM__RTMP_PUSH_URL" && !v.is_empty());
        let child = spawn_and_wait(cmd, http_port, &log, "stream-server");
        Self { child, http_port, rtmp_port, pushes, log }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.http_port)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, as a service manager stops it; waits for the process to exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        self.child.wait().expect("wait")
    }

    /// Opens a receiver; returns the answer (`ip`, `port`, …).
    pub async fn open(&self, stream_id: &str, ssrc: Option<u32>, transport: &str, peer: Option<&str>) -> serde_json::Value {
        let mut body = serde_json::json!({"stream_id": stream_id, "transport": transport});
        if let Some(s) = ssrc {
            body["ssrc"] = s.into();
        }
        if let Some(p) = peer {
            body["peer"] = p.into();
        }
        let r = reqwest::Client::new().post(self.url("/api/v1/receivers")).json(&body).send().await.expect("open");
        assert_eq!(r.status().as_u16(), 200, "open {stream_id}");
        r.json().await.expect("json")
    }

    pub async fn close(&self, stream_id: &str) -> u16 {
        reqwest::Client::new().delete(self.url(&format!("/api/v1/receivers/{stream_id}"))).send().await.expect("close").status().as_u16()
    }

    pub async fn stream(&self, stream_id: &str) -> serde_json::Value {
        get_json(&self.url(&format!("/api/v1/streams/{stream_id}"))).await.1
    }

    /// Opens a UDP receiver for `stream_id` and sends `src` to it in a loop until the returned
    /// token is cancelled; returns once the node has seen `frames` video frames.
    pub async fn feed_looping(
        &self,
        stream_id: &str,
        ssrc: u32,
        src: gbsim::media::MediaSource,
        frames: u64,
    ) -> (tokio_util::sync::CancellationToken, tokio::task::JoinHandle<std::io::Result<gbsim::media::SendStats>>) {
        use gbsim::media::{Impairment, SendOptions, SendTransport};
        let opened = self.open(stream_id, Some(ssrc), "udp", None).await;
        let target = format!("{}:{}", opened["ip"].as_str().unwrap(), opened["port"]).parse().unwrap();
        let stop = tokio_util::sync::CancellationToken::new();
        let sending = tokio::spawn({
            let stop = stop.clone();
            async move {
                let opts = SendOptions { transport: SendTransport::Udp, target, ssrc, loops: 0, impairment: Impairment::default() };
                gbsim::media::send(&src, opts, stop).await
            }
        });
        eventually(Duration::from_secs(10), || async { self.stream(stream_id).await["video_frames"].as_u64() > Some(frames) }).await;
        (stop, sending)
    }

    pub async fn wait_viewers(&self, stream_id: &str, n: u64) {
        let ok = eventually(Duration::from_secs(10), || async { self.stream(stream_id).await["viewers"].as_u64() == Some(n) }).await;
        assert!(ok, "{stream_id}: {n} viewer(s) never attached");
    }
}

/// A `gbcluster sim` child process (simulated cameras, configured by `GBC_SIM__*`), killed on drop.
pub struct SimProc {
    child: Child,
    pub log: std::path::PathBuf,
}

impl SimProc {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `devices` cameras from `first_id`, registering to `server` over `transport` (udp|tcp).
    pub fn start(server: SocketAddr, first_id: &str, devices: usize, transport: &str, env: &[(&str, &str)]) -> Self {
        let log = std::env::temp_dir().join(format!("gbc-sim-{first_id}-{}.log", std::process::id()));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_gbcluster"));
        cmd.arg("sim")
            .env("GBC_SIM__SERVER", server.to_string())
            .env("GBC_SIM__FIRST_DEVICE_ID", first_id)
            .env("GBC_SIM__DEVICES", devices.to_string())
            .env("GBC_SIM__CHANNELS", "2")
            .env("GBC_SIM__TRANSPORT", transport)
            .env("RUST_LOG", "warn");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(std::fs::File::create(&log).expect("log file"));
        let child = cmd.spawn().expect("spawn sim");
        Self { child, log }
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An lpr-server process (`gbcluster lpr`) on a free port, images under `dir`, killed on drop.
pub struct LprProc {
    child: Child,
    pub port: u16,
    pub log: std::path::PathBuf,
}

impl LprProc {
    pub fn start(redis: &str, dir: &std::path::Path, env: &[(&str, &str)]) -> Self {
        let port = free_port();
        Self::start_on(port, redis, dir, env)
    }

    pub fn start_on(port: u16, redis: &str, dir: &std::path::Path, env: &[(&str, &str)]) -> Self {
        let log = std::env::temp_dir().join(format!("gbc-lpr-{port}-{}.log", std::process::id()));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_gbcluster"));
        cmd.arg("lpr")
            .env("GBC_LPR__LISTEN", format!("127.0.0.1:{port}"))
            .env("GBC_LPR__IMAGE_DIR", dir)
            .env("GBC_LPR__FSYNC", "false")
            .env("GBC_STORE__URL", redis)
            .env("RUST_LOG", "info");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = spawn_and_wait(cmd, port, &log, "lpr-server");
        Self { child, port, log }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for LprProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for SimProc {
    fn drop(&mut self) {
        self.kill();
    }
}

impl Drop for MediaProc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Test media made with ffmpeg on first use (testsrc, 25 fps, GOP 1 s, no B-frames, the way
/// cameras encode), cached for the test process.
pub fn fixture(name: &str) -> std::path::PathBuf {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let dir = std::env::temp_dir().join(format!("gbc-fixtures-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("fixture dir");
    let path = dir.join(name);
    if path.exists() {
        return path;
    }
    if name == "gst_h264_4s.ps" {
        // GStreamer's mpegpsmux: an independent PS muxer (one PSM, few pack headers).
        let tmp = dir.join(format!("{name}.part"));
        let st = Command::new("gst-launch-1.0")
            .args([
                "-q",
                "videotestsrc",
                "num-buffers=100",
                "!",
                "video/x-raw,width=640,height=360,framerate=25/1",
                "!",
                "x264enc",
                "key-int-max=25",
            ])
            .args(["bframes=0", "!", "h264parse", "!", "mpegpsmux", "!", "filesink"])
            .arg(format!("location={}", tmp.display()))
            .status()
            .expect("gst-launch-1.0 must be installed (gstreamer1.0-tools, -plugins-bad, -plugins-ugly)");
        assert!(st.success(), "gst-launch failed making {name}");
        std::fs::rename(&tmp, &path).expect("rename fixture");
        return path;
    }
    // Cameras' way of encoding: GOP 1 s, no B-frames, 4:2:0.
    const X264: &str = "-c:v libx264 -g 25 -bf 0 -pix_fmt yuv420p";
    const TESTSRC: &str = "-f lavfi -i testsrc=size=640x360:rate=25";
    let args = match name {
        "h264_640x360_4s.h264" => format!("{TESTSRC} -t 4 {X264} -f h264"),
        // One known colour (RGB 192, 32, 32): a picture of it has that mean colour.
        "h264_red_2s.h264" => format!("-f lavfi -i color=c=0xC02020:size=640x360:rate=25 -t 2 {X264} -f h264"),
        "h264_1280x720_4mbps_4s.h264" => format!(
            "-f lavfi -i testsrc2=size=1280x720:rate=25 -t 4 {X264} -preset veryfast -b:v 4M -minrate 4M -maxrate 4M -bufsize 2M -x264-params nal-hrd=cbr -f h264"
        ),
        "h265_320x240_2s.h265" => {
            "-f lavfi -i testsrc=size=320x240:rate=25 -t 2 -c:v libx265 -x265-params log-level=error:keyint=25:bframes=0 -pix_fmt yuv420p -f hevc".to_owned()
        }
        "aac_4s.aac" => "-f lavfi -i sine=frequency=440:sample_rate=44100 -t 4 -c:a aac -f adts".to_owned(),
        "alaw_2s.alaw" => "-f lavfi -i sine=frequency=440:sample_rate=8000 -t 2 -ac 1 -c:a pcm_alaw -f alaw".to_owned(),
        "h264_aac_4s.ts" => format!("{TESTSRC} -f lavfi -i sine=frequency=440:sample_rate=44100 -t 4 {X264} -c:a aac -f mpegts"),
        "h264_4s.vob" => format!("{TESTSRC} -t 4 {X264} -f vob"),
        // A 1280x720 JPEG, as an LPR camera's full image.
        "still.jpg" => "-f lavfi -i testsrc2=size=1280x720:rate=1 -frames:v 1 -q:v 4 -f image2".to_owned(),
        other => panic!("unknown fixture {other}"),
    };
    let tmp = dir.join(format!("{name}.part"));
    let st = Command::new("ffmpeg")
        .args(["-v", "error", "-y"])
        .args(args.split_whitespace())
        .arg(&tmp)
        .status()
        .expect("ffmpeg must be installed");
    assert!(st.success(), "ffmpeg failed making {name}");
    std::fs::rename(&tmp, &path).expect("rename fixture");
    path
}

/// `ffprobe -count_frames` on a URL or file: (codec, width, height, frames) per stream.
pub fn ffprobe_frames(input: &str, extra: &[&str]) -> Vec<(String, u64, u64, u64)> {
    let out = Command::new("ffprobe")
        .args(["-v", "error"])
        .args(extra)
        .args(FFPROBE_COUNT)
        .arg(input)
        .output()
        .expect("ffprobe must be installed");
    parse_ffprobe(&out.stdout)
}

/// The arguments that make ffprobe count frames per stream as JSON.
pub const FFPROBE_COUNT: [&str; 5] = ["-count_frames", "-show_entries", "stream=codec_name,width,height,nb_read_frames", "-of", "json"];

/// (codec, width, height, frames) per stream from ffprobe's JSON.
pub fn parse_ffprobe(stdout: &[u8]) -> Vec<(String, u64, u64, u64)> {
    let v: serde_json::Value = serde_json::from_slice(stdout).unwrap_or_default();
    v["streams"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| {
                    (
                        s["codec_name"].as_str().unwrap_or("").to_owned(),
                        s["width"].as_u64().unwrap_or(0),
                        s["height"].as_u64().unwrap_or(0),
                        s["nb_read_frames"].as_str().and_then(|n| n.parse().ok()).unwrap_or(0),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A real nginx with libnginx-mod-rtmp: an RTMP target that records every published stream to
/// `<dir>/<name>.flv`, so the test can ffprobe exactly what was pushed. Killed on drop.
pub struct NginxRtmp {
    child: Child,
    pub port: u16,
    pub dir: std::path::PathBuf,
}

impl NginxRtmp {
    pub fn start() -> Self {
        Self::start_on(free_port())
    }

    pub fn start_on(port: u16) -> Self {
        let dir = std::env::temp_dir().join(format!("gbc-nginx-{port}-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("rec")).expect("nginx dir");
        let conf = format!(
            "load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;\n\
             daemon off;\nmaster_process off;\nerror_log {d}/error.log info;\npid {d}/nginx.pid;\n\
             events {{ worker_connections 256; }}\n\
             rtmp {{ server {{ listen 127.0.0.1:{port}; chunk_size 4096;\n\
               application live {{ live on; record all; record_path {d}/rec; record_unique off; }} }} }}\n",
            d = dir.display()
        );
        std::fs::write(dir.join("nginx.conf"), conf).expect("nginx conf");
        let child = Command::new("nginx")
            .args(["-p", dir.to_str().unwrap_or("."), "-c"])
            .arg(dir.join("nginx.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx must be installed (nginx + libnginx-mod-rtmp)");
        let n = Self { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return n;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("nginx did not start: {}", std::fs::read_to_string(n.dir.join("error.log")).unwrap_or_default());
    }

    pub fn recording(&self, name: &str) -> std::path::PathBuf {
        self.dir.join("rec").join(format!("{name}.flv"))
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for NginxRtmp {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A minimal RTMP player (rml_rtmp's client session on a real socket): plays
/// `rtmp://127.0.0.1:<port>/live/<key>` and returns the first `onMetaData` it receives.
pub async fn rtmp_play_metadata(port: u16, key: &str, within: Duration) -> Option<rml_rtmp::sessions::StreamMetadata> {
    use rml_rtmp::handshake::PeerType;
    use rml_rtmp::sessions::{ClientSession, ClientSessionConfig, ClientSessionEvent, ClientSessionResult};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let run = async {
        let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok()?;
        let remaining = kit::rtmp::handshake(&mut tcp, PeerType::Client).await.ok()?;
        let (mut session, initial) = ClientSession::new(ClientSessionConfig::new()).ok()?;
        let mut results = initial;
        results.extend(session.handle_input(&remaining).ok()?);
        results.push(session.request_connection("live".into()).ok()?);
        let mut buf = vec![0u8; 64 * 1024];
        let mut asked = false;
        loop {
            for r in std::mem::take(&mut results) {
                match r {
                    ClientSessionResult::OutboundResponse(p) => tcp.write_all(&p.bytes).await.ok()?,
                    ClientSessionResult::RaisedEvent(ClientSessionEvent::ConnectionRequestAccepted) if !asked => {
                        asked = true;
                        results.push(session.request_playback(key.into()).ok()?);
                    }
                    ClientSessionResult::RaisedEvent(ClientSessionEvent::StreamMetadataReceived { metadata }) => return Some(metadata),
                    _ => {}
                }
            }
            if !results.is_empty() {
                // The play request was just queued: send it before reading again.
                continue;
            }
            let n = tcp.read(&mut buf).await.ok()?;
            if n == 0 {
                return None;
            }
            results = session.handle_input(&buf[..n]).ok()?;
        }
    };
    tokio::time::timeout(within, run).await.ok().flatten()
}

/// Enhanced-RTMP HEVC tags back to Annex B (ffmpeg 5.1 here predates Enhanced FLV, so the test
/// unpacks what we serve and lets ffprobe judge the elementary stream).
pub fn hevc_annexb(flv: &[u8]) -> (Vec<u8>, usize) {
    let mut out = Vec::new();
    let mut frames = 0;
    for (kind, _, body) in media::flv::read_tags(flv) {
        if kind != 9 || body.len() < 5 {
            continue;
        }
        // Codec id 12 (the older extension): AVC-style layout with an HEVC record.
        let packet_type = if body[0] & 0x80 == 0 && body[0] & 0x0f == 12 {
            // Frames have their NALs at offset 5, like CodedFramesX.
            if body[1] == 0 {
                0
            } else {
                3
            }
        } else if body[0] & 0x80 != 0 && &body[1..5] == b"hvc1" {
            body[0] & 0x0f
        } else {
            continue;
        };
        match packet_type {
            0 => {
                let rec = &body[5..];
                let mut pos = 23;
                for _ in 0..rec[22] {
                    let n = u16::from_be_bytes([rec[pos + 1], rec[pos + 2]]) as usize;
                    pos += 3;
                    for _ in 0..n {
                        let len = u16::from_be_bytes([rec[pos], rec[pos + 1]]) as usize;
                        out.extend_from_slice(&[0, 0, 0, 1]);
                        out.extend_from_slice(&rec[pos + 2..pos + 2 + len]);
                        pos += 2 + len;
                    }
                }
            }
            t @ (1 | 3) => {
                let mut p = if t == 1 { 8 } else { 5 };
                while p + 4 <= body.len() {
                    let len = u32::from_be_bytes([body[p], body[p + 1], body[p + 2], body[p + 3]]) as usize;
                    out.extend_from_slice(&[0, 0, 0, 1]);
                    out.extend_from_slice(&body[p + 4..p + 4 + len]);
                    p += 4 + len;
                }
                frames += 1;
            }
            _ => {}
        }
    }
    (out, frames)
}

/// The console's event stream, read as SSE frames.
pub struct Events {
    resp: reqwest::Response,
    buf: String,
}

impl Events {
    pub async fn open(sip: &SipProc) -> Self {
        let resp = reqwest::get(sip.api("/api/v1/events")).await.unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        Self { resp, buf: String::new() }
    }

    /// The data of the next `event` frame whose data contains `needle`.
    pub async fn next(&mut self, event: &str, needle: &str, within: Duration) -> Option<serde_json::Value> {
        let deadline = Instant::now() + within;
        loop {
            while let Some(end) = self.buf.find("\n\n") {
                let frame: String = self.buf.drain(..end + 2).collect();
                let name = frame.lines().find_map(|l| l.strip_prefix("event: ")).unwrap_or_default();
                let data: String = frame.lines().filter_map(|l| l.strip_prefix("data: ")).collect::<Vec<_>>().join("\n");
                if name == event && data.contains(needle) {
                    return serde_json::from_str(&data).ok();
                }
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            let chunk = tokio::time::timeout(left, self.resp.chunk()).await.ok()?.ok()??;
            self.buf.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}

/// One gbsim camera registered to `sip` (device `first`, two channels), started with `env`,
/// once its catalog is stored: (the process, the device id, its channel ids).
pub async fn camera(sip: &SipProc, first: &str, env: &[(&str, &str)]) -> (SimProc, String, Vec<String>) {
    let cam = SimProc::start(sip.sip_addr(), first, 1, "udp", env);
    let dev = gbsim::device_id(first, 0).expect("a device id");
    let channels = gbsim::device::channel_ids(&dev, 0, 2);
    let path = sip.api(&format!("/api/v1/devices/{dev}/channels"));
    assert!(eventually(Duration::from_secs(20), || async { get_json(&path).await.1["total"] == 2 }).await, "{dev} and its catalog");
    (cam, dev, channels)
}

/// CPU seconds (user + system) a process and its children that exited have used, by /proc.
pub fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit_once(')').map(|(_, r)| r.split_whitespace().collect()).unwrap_or_default();
    let tick = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (tick(11) + tick(12)) / 100.0
}

/// Children of `pid` (the MJPEG encoders).
pub fn children(pid: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
        .filter(|p| {
            let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
            stat.rsplit_once(')').and_then(|(_, r)| r.split_whitespace().nth(1)).and_then(|v| v.parse::<u32>().ok()) == Some(pid)
        })
        .collect()
}

/// A viewer that reads `url` and counts the bytes into `got` until `cancel` (benchmarks).
pub fn count_bytes_of(url: String, got: std::sync::Arc<std::sync::atomic::AtomicU64>, cancel: tokio_util::sync::CancellationToken) {
    tokio::spawn(async move {
        let Ok(mut r) = reqwest::get(url).await else { return };
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                c = r.chunk() => match c {
                    Ok(Some(c)) => { got.fetch_add(c.len() as u64, std::sync::atomic::Ordering::Relaxed); }
                    _ => return,
                },
            }
        }
    });
}
