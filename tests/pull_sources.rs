//! Pull sources on a real media node: network cameras that are not GB devices taken in as
//! streams. MJPEG over HTTP from three independent servers — ffmpeg's `mpjpeg` muxer, a
//! GStreamer `multipartmux` pipeline behind basic auth, and a hand-written camera that sends
//! parts without `Content-Length`, chunked, behind digest auth — is passed through byte for
//! byte as MJPEG and answers snapshots; asked to, it is encoded to H.264 that ffprobe decodes
//! over HTTP-FLV, as is the H.264 of an RTSP camera (TCP and UDP) and the JPEG of an RTSP one.
//! Bad input (a 100 MB part, a truncated JPEG, garbage, no boundary, an endless head) is
//! reported in the source's status while memory stays bounded.

mod support;

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use media::multipart::{boundary_of, MultipartReader};
use serde_json::{json, Value};
use support::rtsp::RtspServer;
use support::{cpu_secs, eventually, ffprobe_frames, get_json, MediaProc, SipProc};
use testkit::{free_port, RedisServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn ffmpeg_mjpeg_server(port: u16) -> support::mjpeg::Killed {
    support::mjpeg::ffmpeg_server(port)
}

fn gst_mjpeg_server(port: u16) -> support::mjpeg::Killed {
    support::mjpeg::gst_server(port, 10)
}

/// Three small JPEGs of different colours, by ffmpeg.
fn three_jpegs() -> Vec<Vec<u8>> {
    ["red", "green", "blue"]
        .iter()
        .map(|c| {
            let out = Command::new("ffmpeg")
                .args(["-v", "error", "-f", "lavfi", "-i", &format!("color=c={c}:s=160x120"), "-frames:v", "1"])
                .args(["-q:v", "5", "-f", "image2pipe", "-c:v", "mjpeg", "-"])
                .output()
                .expect("ffmpeg");
            assert!(out.stdout.starts_with(&[0xff, 0xd8]));
            out.stdout
        })
        .collect()
}

const CAM_USER: &str = "admin";
const CAM_PASSWORD: &str = "cam-secret-7";

/// A hand-written MJPEG camera. Paths:
/// - `/nolength`: digest auth; chunked; boundary `"--myboundary"` quoted in the type; parts
///   without Content-Length, LF-only headers, mjpg-streamer's X-Timestamp, garbage between;
/// - `/bad` (`multipart/mixed`): a 100 MB part (with its length), a truncated JPEG, garbage,
///   then good pictures;
/// - `/noboundary`: a multipart type without boundary and a body of text;
/// - `/endless`: a response head whose header line never ends.
struct Camera {
    port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Camera {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Camera {
    async fn start(pictures: Vec<Vec<u8>>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let pictures = Arc::new(pictures);
        let task = tokio::spawn(async move {
            loop {
                let Ok((conn, _)) = listener.accept().await else { return };
                tokio::spawn(Self::serve(conn, pictures.clone()));
            }
        });
        Self { port, task }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    async fn serve(mut conn: tokio::net::TcpStream, pictures: Arc<Vec<Vec<u8>>>) {
        let mut req = Vec::new();
        let mut buf = [0u8; 4096];
        while !req.windows(4).any(|w| w == b"\r\n\r\n") {
            match conn.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => req.extend_from_slice(&buf[..n]),
            }
        }
        let text = String::from_utf8_lossy(&req).into_owned();
        let path = text.split_whitespace().nth(1).unwrap_or("/").to_owned();
        let _ = match path.as_str() {
            "/nolength" => Self::no_length(&mut conn, &text, &pictures).await,
            "/bad" => Self::bad(&mut conn, &pictures).await,
            "/noboundary" => Self::no_boundary(&mut conn).await,
            "/endless" => Self::endless(&mut conn).await,
            "/fast" => Self::fast(&mut conn, &pictures).await,
            "/flaky" => Self::flaky(&mut conn, &pictures).await,
            _ => conn.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n").await,
        };
    }

    async fn no_length(conn: &mut tokio::net::TcpStream, request: &str, pictures: &[Vec<u8>]) -> std::io::Result<()> {
        let auth = request.lines().find_map(|l| l.strip_prefix("Authorization: ")).unwrap_or("");
        let ok = gb::sip::digest::Credentials::parse(auth).map(|c| c.verify("GET", CAM_PASSWORD) && c.username == CAM_USER);
        if ok != Ok(true) {
            let challenge = "Digest realm=\"camera\", nonce=\"5f2a9c\", qop=\"auth\", algorithm=MD5";
            let head = format!("HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: {challenge}\r\nContent-Length: 0\r\n\r\n");
            return conn.write_all(head.as_bytes()).await;
        }
        conn.write_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace;boundary=\"--myboundary\"\r\nTransfer-Encoding: chunked\r\n\r\n",
        )
        .await?;
        for n in 0usize.. {
            let mut part = format!("--myboundary\nContent-Type: image/jpeg\nX-Timestamp: {n}.0\n\n").into_bytes();
            part.extend_from_slice(&pictures[n % pictures.len()]);
            part.extend_from_slice(b"\r\nsome garbage a camera left\r\n");
            // Chunks that cut the parts anywhere.
            for piece in part.chunks(700) {
                conn.write_all(format!("{:x}\r\n", piece.len()).as_bytes()).await?;
                conn.write_all(piece).await?;
                conn.write_all(b"\r\n").await?;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    }

    async fn bad(conn: &mut tokio::net::TcpStream, pictures: &[Vec<u8>]) -> std::io::Result<()> {
        // multipart/mixed, as some cameras label it.
        conn.write_all(b"HTTP/1.0 200 OK\r\nContent-Type: multipart/mixed; boundary=frame\r\n\r\n").await?;
        let huge = 100u64 << 20;
        conn.write_all(format!("--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {huge}\r\n\r\n").as_bytes()).await?;
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..100 {
            conn.write_all(&zeros).await?;
        }
        let cut = &pictures[0][..pictures[0].len() / 2];
        conn.write_all(format!("\r\n--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n", cut.len()).as_bytes()).await?;
        conn.write_all(cut).await?;
        conn.write_all(b"\r\n\x00\x01garbage between parts\xff\xfe\r\n").await?;
        for n in 0usize.. {
            let p = &pictures[n % pictures.len()];
            conn.write_all(format!("--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n", p.len()).as_bytes()).await?;
            conn.write_all(p).await?;
            conn.write_all(b"\r\n").await?;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    }

    /// The pictures in turn at 10 fps, each part with its length, as most cameras send.
    async fn fast(conn: &mut tokio::net::TcpStream, pictures: &[Vec<u8>]) -> std::io::Result<()> {
        conn.write_all(b"HTTP/1.0 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=frame\r\n\r\n").await?;
        let parts: Vec<Vec<u8>> = pictures
            .iter()
            .map(|p| {
                let mut part = format!("--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n", p.len()).into_bytes();
                part.extend_from_slice(p);
                part.extend_from_slice(b"\r\n");
                part
            })
            .collect();
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        for part in parts.iter().cycle() {
            tick.tick().await;
            conn.write_all(part).await?;
        }
        Ok(())
    }

    /// Ten pictures at 10 fps, then the connection closes (a camera that keeps dropping).
    async fn flaky(conn: &mut tokio::net::TcpStream, pictures: &[Vec<u8>]) -> std::io::Result<()> {
        conn.write_all(b"HTTP/1.0 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=frame\r\n\r\n").await?;
        for p in pictures.iter().cycle().take(10) {
            conn.write_all(format!("--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n", p.len()).as_bytes()).await?;
            conn.write_all(p).await?;
            conn.write_all(b"\r\n").await?;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    }

    async fn no_boundary(conn: &mut tokio::net::TcpStream) -> std::io::Result<()> {
        conn.write_all(b"HTTP/1.0 200 OK\r\nContent-Type: multipart/x-mixed-replace\r\n\r\n").await?;
        loop {
            conn.write_all(b"this is not a picture, nor a delimiter\r\n").await?;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn endless(conn: &mut tokio::net::TcpStream) -> std::io::Result<()> {
        conn.write_all(b"HTTP/1.1 200 OK\r\nX-Padding: ").await?;
        loop {
            conn.write_all(b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa").await?;
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

async fn open_source(node: &MediaProc, body: Value) -> Value {
    let r = reqwest::Client::new().post(node.url("/api/v1/sources")).json(&body).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200, "open {body}");
    r.json().await.unwrap()
}

async fn source(node: &MediaProc, id: &str) -> Value {
    get_json(&node.url(&format!("/api/v1/sources/{id}"))).await.1
}

/// Waits until the source has shown `pictures` pictures or `frames` frames.
async fn wait_playing(node: &MediaProc, id: &str, pictures: u64, frames: u64) -> Value {
    let ok = eventually(Duration::from_secs(20), || async {
        let s = source(node, id).await;
        s["state"] == "playing" && s["pictures"].as_u64() >= Some(pictures) && s["frames"].as_u64() >= Some(frames)
    })
    .await;
    let s = source(node, id).await;
    assert!(ok, "{id} never played: {s}\n{}", node.log_text());
    s
}

/// The first `n` parts of an MJPEG response: (the part's Content-Length, its body).
async fn mjpeg_parts(url: &str, n: usize) -> Vec<(Option<usize>, Vec<u8>)> {
    let mut r = reqwest::get(url).await.unwrap();
    assert_eq!(r.status().as_u16(), 200, "{url}");
    let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ct.starts_with("multipart/x-mixed-replace"), "{ct}");
    let mut reader = MultipartReader::new(&boundary_of(&ct).unwrap(), 16 << 20, 4096);
    let mut parts = Vec::new();
    let until = Instant::now() + Duration::from_secs(15);
    while parts.len() < n && Instant::now() < until {
        let Ok(Ok(Some(chunk))) = tokio::time::timeout(until - Instant::now(), r.chunk()).await else { break };
        for p in reader.push(&chunk).into_iter().flatten() {
            parts.push((p.header("content-length").and_then(|l| l.parse().ok()), p.body.to_vec()));
        }
    }
    assert!(parts.len() >= n, "{} of {n} parts from {url}", parts.len());
    parts
}

/// (width, height) of an image or video, by ffprobe.
fn size_of(bytes: &[u8]) -> (u64, u64) {
    let path = std::env::temp_dir().join(format!("gbc-pull-{}-{}.bin", std::process::id(), bytes.len()));
    std::fs::write(&path, bytes).unwrap();
    let s = ffprobe_frames(path.to_str().unwrap(), &[]);
    s.first().map_or((0, 0), |(_, w, h, _)| (*w, *h))
}

/// `secs` of a live HTTP-FLV stream, saved to a file.
async fn flv_for(url: &str, secs: u64) -> std::path::PathBuf {
    let mut r = reqwest::get(url).await.unwrap();
    assert_eq!(r.status().as_u16(), 200, "{url}");
    let mut body = Vec::new();
    let until = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < until {
        match tokio::time::timeout(until - Instant::now(), r.chunk()).await {
            Ok(Ok(Some(c))) => body.extend_from_slice(&c),
            _ => break,
        }
    }
    let path = std::env::temp_dir().join(format!("gbc-pull-{}-{}.flv", std::process::id(), url.len() + body.len()));
    std::fs::write(&path, &body).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mjpeg_cameras_of_three_kinds_are_passed_through_with_snapshots() {
    let pictures = three_jpegs();
    let cam = Camera::start(pictures.clone()).await;
    let gst_port = free_port();
    let _gst = gst_mjpeg_server(gst_port);
    let ff_port = free_port();
    let _ff = ffmpeg_mjpeg_server(ff_port);
    let node = MediaProc::start(None, &[]);

    open_source(&node, json!({"stream_id": "handmade", "url": cam.url("/nolength"), "username": CAM_USER, "password": CAM_PASSWORD})).await;
    open_source(&node, json!({"stream_id": "gst", "url": format!("http://admin:12345@127.0.0.1:{gst_port}/")})).await;
    open_source(&node, json!({"stream_id": "ffmpeg", "url": format!("http://127.0.0.1:{ff_port}/cam.mjpg")})).await;

    // The hand-written camera: digest, chunked, no Content-Length, garbage between parts.
    let s = wait_playing(&node, "handmade", 3, 0).await;
    assert_eq!((s["kind"].as_str(), s["video"].as_str()), (Some("mjpeg"), Some("jpeg")));
    assert!(s["garbage_bytes"].as_u64() > Some(0) && s["last_problem"].as_str().is_some_and(|p| p.contains("skipped")), "{s}");
    assert_eq!((s["oversize"].as_u64(), s["not_jpeg"].as_u64()), (Some(0), Some(0)));
    // Passed through: every part is one of the camera's pictures, byte for byte.
    let parts = mjpeg_parts(&node.url("/live/handmade.mjpeg"), 6).await;
    for (len, body) in &parts {
        assert!(pictures.contains(body), "a part that is not one of the camera's pictures ({} bytes)", body.len());
        assert_eq!(*len, Some(body.len()), "each part says its length");
    }
    let distinct: std::collections::HashSet<&Vec<u8>> = parts.iter().map(|(_, b)| b).collect();
    assert!(distinct.len() >= 2, "the pictures change");
    let snap = reqwest::get(node.url("/snap/handmade.jpg")).await.unwrap();
    assert_eq!(snap.headers()["content-type"], "image/jpeg");
    assert!(pictures.contains(&snap.bytes().await.unwrap().to_vec()), "the snapshot is the camera's latest picture");

    // GStreamer's multipartmux (basic auth, credentials in the URL) and ffmpeg's mpjpeg.
    for id in ["gst", "ffmpeg"] {
        let s = wait_playing(&node, id, 5, 0).await;
        assert_eq!(s["not_jpeg"].as_u64(), Some(0), "{s}");
        let parts = mjpeg_parts(&node.url(&format!("/live/{id}.mjpeg")), 3).await;
        assert_eq!(size_of(&parts[2].1), (320, 240), "{id}: a passed-through picture decodes");
        let snap = reqwest::get(node.url(&format!("/snap/{id}.jpg"))).await.unwrap().bytes().await.unwrap();
        assert_eq!(size_of(&snap), (320, 240), "{id}: snapshot");
    }
    assert_eq!(source(&node, "ffmpeg").await["garbage_bytes"].as_u64(), Some(0), "a well-formed stream has no garbage");

    // Never a credential in what the node says.
    let all = reqwest::get(node.url("/api/v1/sources")).await.unwrap().text().await.unwrap();
    assert!(!all.contains(CAM_PASSWORD) && !all.contains("12345"), "{all}");
    assert!(all.contains(&format!("http://admin@127.0.0.1:{gst_port}/")), "{all}");
    // The streams list shows them, with their rate and size.
    let stream = node.stream("gst").await;
    assert_eq!((stream["width"].as_u64(), stream["height"].as_u64()), (Some(320), Some(240)), "{stream}");
    assert!(stream["fps"].as_f64().is_some_and(|f| f > 3.0), "{stream}");

    // Closed: gone, and its viewers' responses end.
    let r = reqwest::Client::new().delete(node.url("/api/v1/sources/handmade")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(eventually(Duration::from_secs(5), || async { get_json(&node.url("/api/v1/sources/handmade")).await.0 == 404 }).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mjpeg_and_rtsp_sources_play_as_http_flv() {
    let gst_port = free_port();
    let _gst = gst_mjpeg_server(gst_port);
    let rtsp = RtspServer::start_with(free_port(), "h264", "none", &[]);
    // A server of its own for UDP: GStreamer's RTSP server does not survive one shared media
    // played over TCP and UDP at once.
    let rtsp_udp = RtspServer::start_with(free_port(), "h264", "none", &[]);
    let rtsp_jpeg = RtspServer::start_with(free_port(), "jpeg", "none", &[]);
    let node = MediaProc::start(None, &[]);
    let rtsp_url = |port: u16| format!("rtsp://127.0.0.1:{port}/Streaming/Channels/101");
    let creds = |v: Value| {
        let mut v = v;
        v["username"] = support::rtsp::USER.into();
        v["password"] = support::rtsp::PASSWORD.into();
        v
    };

    open_source(&node, json!({"stream_id": "encoded", "url": format!("http://admin:12345@127.0.0.1:{gst_port}/"), "h264": true})).await;
    open_source(&node, creds(json!({"stream_id": "rtsp-tcp", "url": rtsp_url(rtsp.port)}))).await;
    open_source(&node, creds(json!({"stream_id": "rtsp-udp", "url": rtsp_url(rtsp_udp.port), "rtsp_transport": "udp"}))).await;
    open_source(&node, creds(json!({"stream_id": "rtsp-jpeg", "url": rtsp_url(rtsp_jpeg.port)}))).await;

    // MJPEG encoded to H.264: ffprobe decodes it over HTTP-FLV.
    wait_playing(&node, "encoded", 10, 0).await;
    let flv = flv_for(&node.url("/live/encoded.flv"), 4).await;
    let streams = ffprobe_frames(flv.to_str().unwrap(), &[]);
    let (codec, w, h, frames) = streams.first().cloned().unwrap_or_default();
    assert_eq!((codec.as_str(), w, h), ("h264", 320, 240), "{streams:?}");
    assert!(frames >= 15, "{frames} frames decoded in 4 s of a 10 fps camera");

    // RTSP H.264 over TCP and UDP: HTTP-FLV like any stream.
    for id in ["rtsp-tcp", "rtsp-udp"] {
        let s = wait_playing(&node, id, 0, 25).await;
        assert_eq!((s["kind"].as_str(), s["video"].as_str()), (Some("rtsp"), Some("h264")), "{s}");
        let flv = flv_for(&node.url(&format!("/live/{id}.flv")), 3).await;
        let streams = ffprobe_frames(flv.to_str().unwrap(), &[]);
        let (codec, w, h, frames) = streams.first().cloned().unwrap_or_default();
        assert_eq!((codec.as_str(), w, h), ("h264", 640, 360), "{id}: {streams:?}");
        assert!(frames >= 40, "{id}: {frames} frames decoded in 3 s at 25 fps");
    }
    let snap = reqwest::get(node.url("/snap/rtsp-tcp.jpg")).await.unwrap().bytes().await.unwrap();
    assert_eq!(size_of(&snap), (640, 360), "a snapshot of the RTSP stream");

    // RTSP JPEG: pictures, passed through and snapshotted.
    let s = wait_playing(&node, "rtsp-jpeg", 10, 0).await;
    assert_eq!(s["video"].as_str(), Some("jpeg"), "{s}");
    let parts = mjpeg_parts(&node.url("/live/rtsp-jpeg.mjpeg"), 3).await;
    assert_eq!(size_of(&parts[2].1), (640, 360));
    let snap = reqwest::get(node.url("/snap/rtsp-jpeg.jpg")).await.unwrap().bytes().await.unwrap();
    assert_eq!(size_of(&snap), (640, 360));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulled_streams_are_pushed_played_over_rtmp_and_keep_their_viewers_across_reconnections() {
    let nginx = support::NginxRtmp::start();
    let push = format!("rtmp://127.0.0.1:{}/live/{{stream_id}}", nginx.port);
    let node = MediaProc::start(None, &[("GBC_STREAM__RTMP_PUSH_URL", push.as_str())]);
    let rtsp = RtspServer::start_with(free_port(), "h264", "none", &[]);
    let rtsp_hevc = RtspServer::start_with(free_port(), "h265", "none", &[]);
    let pictures = three_jpegs();
    let cam = Camera::start(pictures.clone()).await;
    let creds = |id: &str, port: u16| json!({"stream_id": id, "url": format!("rtsp://127.0.0.1:{port}/Streaming/Channels/101"), "username": support::rtsp::USER, "password": support::rtsp::PASSWORD});
    open_source(&node, creds("pushed", rtsp.port)).await;
    open_source(&node, creds("hevc", rtsp_hevc.port)).await;
    open_source(&node, json!({"stream_id": "flaky", "url": cam.url("/flaky")})).await;

    // A viewer of the flaky camera from its first pictures: it keeps receiving while the
    // source reconnects under it.
    wait_playing(&node, "flaky", 1, 0).await;
    let parts = mjpeg_parts(&node.url("/live/flaky.mjpeg"), 18).await;
    assert!(parts.iter().all(|(_, b)| pictures.contains(b)));
    let s = source(&node, "flaky").await;
    assert!(s["connects"].as_u64() >= Some(2) && s["failures"].as_u64() >= Some(1), "{s}");
    assert!(s["last_error"].as_str().is_some_and(|e| e.contains("ended")) || s["state"] == "playing", "{s}");

    // RTSP H.264: pushed to the RTMP target like a GB stream, and played over the node's RTMP.
    wait_playing(&node, "pushed", 0, 50).await;
    let meta = support::rtmp_play_metadata(node.rtmp_port, "pushed", Duration::from_secs(5)).await.expect("onMetaData over RTMP");
    assert_eq!((meta.video_width, meta.video_height), (Some(640), Some(360)), "{meta:?}");
    assert!(eventually(Duration::from_secs(10), || async { node.stream("pushed").await["pushing"] == true }).await);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rec = ffprobe_frames(nginx.recording("pushed").to_str().unwrap(), &[]);
    let (codec, w, _, frames) = rec.first().cloned().unwrap_or_default();
    assert_eq!((codec.as_str(), w), ("h264", 640), "{rec:?}");
    assert!(frames >= 50, "{frames} frames pushed");

    // RTSP H.265: its snapshot decodes to its size.
    let s = wait_playing(&node, "hevc", 0, 25).await;
    assert_eq!(s["video"].as_str(), Some("h265"), "{s}");
    let snap = reqwest::get(node.url("/snap/hevc.jpg")).await.unwrap().bytes().await.unwrap();
    assert_eq!(size_of(&snap), (640, 360), "a snapshot of the H.265 source");
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.split_whitespace().next()?.parse().ok()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_mjpeg_input_is_reported_and_memory_stays_bounded() {
    let pictures = three_jpegs();
    let cam = Camera::start(pictures.clone()).await;
    let node = MediaProc::start(None, &[("GBC_STREAM__SOURCE_STALL_SECS", "2"), ("GBC_STREAM__SOURCE_RETRY_MAX_SECS", "2")]);
    let before = rss_kib(node.pid());

    open_source(&node, json!({"stream_id": "bad", "url": cam.url("/bad")})).await;
    open_source(&node, json!({"stream_id": "noboundary", "url": cam.url("/noboundary")})).await;
    open_source(&node, json!({"stream_id": "endless", "url": cam.url("/endless")})).await;
    open_source(&node, json!({"stream_id": "refused", "url": format!("http://127.0.0.1:{}/", free_port())})).await;
    open_source(&node, json!({"stream_id": "nologin", "url": cam.url("/nolength")})).await;

    // The 100 MB part is skipped, the truncated JPEG dropped, the garbage counted; the good
    // pictures behind them come through.
    let s = wait_playing(&node, "bad", 3, 0).await;
    assert_eq!((s["oversize"].as_u64(), s["not_jpeg"].as_u64()), (Some(1), Some(1)), "{s}");
    assert!(s["garbage_bytes"].as_u64() > Some(0), "{s}");
    let parts = mjpeg_parts(&node.url("/live/bad.mjpeg"), 2).await;
    assert!(parts.iter().all(|(_, b)| pictures.contains(b)));
    let grown = rss_kib(node.pid()).saturating_sub(before);
    assert!(grown < 48 << 10, "the media node grew {grown} KiB reading a 100 MB part");

    // Each failure says what was wrong.
    let says = |id: &'static str, field: &'static str, words: &'static str| {
        let node = &node;
        async move {
            let ok =
                eventually(Duration::from_secs(15), || async { source(node, id).await[field].as_str().is_some_and(|t| t.contains(words)) })
                    .await;
            assert!(ok, "{id}: {field} never said {words:?}: {}", source(node, id).await);
        }
    };
    says("noboundary", "last_problem", "no boundary").await;
    says("noboundary", "last_error", "no picture").await;
    says("endless", "last_error", "response head is longer than").await;
    says("refused", "last_error", "unreachable").await;
    says("nologin", "last_error", "asks for credentials").await;
    let s = source(&node, "refused").await;
    assert_eq!(s["state"], "retrying", "{s}");
    assert!(s["failures"].as_u64() >= Some(1) && s["retry_in_ms"].as_u64().is_some(), "{s}");
    // Still retrying, with backoff: not a connection a millisecond.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let s = source(&node, "refused").await;
    assert!(s["connects"].as_u64() <= Some(10), "{s}");
    assert!(rss_kib(node.pid()).saturating_sub(before) < 48 << 10);
    // The node is still fine, and its metrics count the sources.
    assert_eq!(get_json(&node.url("/healthz")).await.0, 200);
    let metrics = reqwest::get(node.url("/metrics")).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("\ngbc_media_sources 5\n") && metrics.contains("\ngbc_media_sources_playing 1\n"), "{metrics}");
}

async fn api_source(sip: &SipProc, id: &str) -> Value {
    get_json(&sip.api(&format!("/api/v1/sources/{id}"))).await.1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sources_api_places_sources_moves_them_when_their_node_dies_and_starts_them_on_demand() {
    let redis = RedisServer::start().expect("redis-server must be installed");
    let url = redis.url();
    let sip = SipProc::start(Some(&url), &[]);
    let media_env = [("GBC_STREAM__HEARTBEAT_SECS", "1"), ("GBC_STREAM__HEARTBEAT_TTL_SECS", "2")];
    let mut nodes = [MediaProc::start(Some(&url), &media_env), MediaProc::start(Some(&url), &media_env)];
    let gst_port = free_port();
    let _gst = gst_mjpeg_server(gst_port);
    let client = reqwest::Client::new();
    let live = eventually(Duration::from_secs(10), || async {
        get_json(&sip.api("/api/v1/cluster")).await.1["media"].as_array().is_some_and(|a| a.len() >= 2)
    })
    .await;
    assert!(live, "two media nodes: {}", get_json(&sip.api("/api/v1/cluster")).await.1);

    // Always on: placed at once, credentials kept but never answered.
    let body = json!({"stream_id": "yard", "name": "Yard", "url": format!("http://127.0.0.1:{gst_port}/"), "username": "admin", "password": "12345"});
    let r = client.post(sip.api("/api/v1/sources")).json(&body).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let v: Value = r.json().await.unwrap();
    assert_eq!((v["has_password"].as_bool(), v["mode"].as_str()), (Some(true), Some("always_on")), "{v}");
    assert!(!v.to_string().contains("12345"), "{v}");
    let r = client.post(sip.api("/api/v1/sources")).json(&body).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 409, "the same id again");
    let r = client.post(sip.api("/api/v1/sources")).json(&json!({"url": "ftp://cam/"})).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let playing = |v: &Value| v["status"]["state"] == "playing" && v["status"]["pictures"].as_u64() > Some(2);
    assert!(eventually(Duration::from_secs(15), || async { playing(&api_source(&sip, "yard").await) }).await);
    let v = api_source(&sip, "yard").await;
    let first = v["node"].as_str().unwrap().to_owned();
    let parts = mjpeg_parts(v["urls"]["mjpeg"].as_str().unwrap(), 2).await;
    assert_eq!(size_of(&parts[1].1), (320, 240));
    let listed = get_json(&sip.api("/api/v1/sources")).await.1;
    assert_eq!(listed["total"], 1, "{listed}");
    assert!(!listed.to_string().contains("12345"));

    // Its node dies: the source is placed on the other and plays again.
    let at = nodes.iter().position(|n| format!("media-{}", n.http_port) == first).expect("the node named");
    nodes[at].kill();
    let moved = eventually(Duration::from_secs(20), || async {
        let v = api_source(&sip, "yard").await;
        v["node"].as_str().is_some_and(|n| n != first) && playing(&v)
    })
    .await;
    let v = api_source(&sip, "yard").await;
    assert!(moved, "not moved: {v}");
    assert_eq!(v["moves"], 1, "{v}");
    let survivor = &nodes[1 - at];

    // On demand: nothing runs until a player asks, then it closes when unwatched.
    let body = json!({"stream_id": "gate", "url": format!("http://admin:12345@127.0.0.1:{gst_port}/"), "mode": "on_demand", "idle_secs": 5, "h264": true});
    assert_eq!(client.post(sip.api("/api/v1/sources")).json(&body).send().await.unwrap().status().as_u16(), 201);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let v = api_source(&sip, "gate").await;
    assert!(v["node"].is_null() && v["status"].is_null(), "on demand, not asked yet: {v}");
    let r = client.post(sip.api("/api/v1/sources/gate/play")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let v: Value = r.json().await.unwrap();
    let flv_url = v["urls"]["http_flv"].as_str().expect("urls once placed").to_owned();
    let flv = flv_for(&flv_url, 4).await;
    let streams = ffprobe_frames(flv.to_str().unwrap(), &[]);
    assert_eq!(streams.first().map(|s| (s.0.as_str(), s.1, s.2)), Some(("h264", 320, 240)), "{streams:?}");
    let closed = eventually(Duration::from_secs(20), || async {
        let v = api_source(&sip, "gate").await;
        v["node"].is_null() && v["status"].is_null()
    })
    .await;
    assert!(closed, "an unwatched on-demand source closes: {}", api_source(&sip, "gate").await);
    assert!(survivor.log_text().contains("nobody watched it"));

    // Deleted: gone from the API and from its node.
    assert_eq!(client.delete(sip.api("/api/v1/sources/yard")).send().await.unwrap().status().as_u16(), 200);
    assert_eq!(get_json(&sip.api("/api/v1/sources/yard")).await.0, 404);
    assert!(eventually(Duration::from_secs(5), || async { get_json(&survivor.url("/api/v1/sources/yard")).await.0 == 404 }).await);
}

/// Figure for docs/benchmarks.md: the media node's CPU per MJPEG-over-HTTP source passed
/// through (640×480 pictures of about 40 KB at 10 fps), with no viewer and with one MJPEG
/// viewer each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: cargo test -p gbcluster --test pull_sources bench_ -- --ignored --nocapture"]
async fn bench_cpu_per_mjpeg_source_passed_through() {
    let sources: usize = std::env::var("SOURCES").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    // Two seconds of a moving scene (a still one would flatter the H.264 encoder).
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-f", "lavfi", "-i", "testsrc2=size=640x480:rate=10", "-frames:v", "20", "-q:v", "4"])
        .args(["-f", "image2pipe", "-c:v", "mjpeg", "-"])
        .output()
        .expect("ffmpeg");
    let pictures: Vec<Vec<u8>> = media::jpeg::JpegSplitter::new(1 << 20).push(&out.stdout).into_iter().map(|b| b.to_vec()).collect();
    assert_eq!(pictures.len(), 20);
    let picture_kb = out.stdout.len() / 1024 / pictures.len();
    let cam = Camera::start(pictures).await;
    let node = MediaProc::start(None, &[("RUST_LOG", "warn")]);
    for i in 0..sources {
        open_source(&node, json!({"stream_id": format!("s{i}"), "url": cam.url("/fast")})).await;
    }
    for i in 0..sources {
        wait_playing(&node, &format!("s{i}"), 5, 0).await;
    }
    for viewers in [false, true] {
        let got = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let cancel = tokio_util::sync::CancellationToken::new();
        if viewers {
            for i in 0..sources {
                support::count_bytes_of(node.url(&format!("/live/s{i}.mjpeg")), got.clone(), cancel.clone());
            }
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let (cpu0, bytes0) = (cpu_secs(node.pid()), got.load(std::sync::atomic::Ordering::Relaxed));
        tokio::time::sleep(Duration::from_secs(10)).await;
        let cpu = (cpu_secs(node.pid()) - cpu0) * 10.0;
        let mbps = (got.load(std::sync::atomic::Ordering::Relaxed) - bytes0) as f64 * 8.0 / 10.0 / 1e6;
        eprintln!(
            "{sources} MJPEG sources of {picture_kb} KB pictures at 10 fps, {} viewer each: media node {cpu:.1}% of a core, {:.2}% per source; {mbps:.1} Mbit/s delivered",
            usize::from(viewers),
            cpu / sources as f64
        );
        cancel.cancel();
    }
    // Encoded to H.264 as well: what an encoder costs per source (its ffmpeg subprocess).
    for i in 0..sources {
        reqwest::Client::new().delete(node.url(&format!("/api/v1/sources/s{i}"))).send().await.unwrap();
    }
    let encoded = 4;
    for i in 0..encoded {
        open_source(&node, json!({"stream_id": format!("h{i}"), "url": cam.url("/fast"), "h264": true})).await;
    }
    tokio::time::sleep(Duration::from_secs(4)).await;
    let encoders = support::children(node.pid());
    let (node0, enc0) = (cpu_secs(node.pid()), encoders.iter().map(|p| cpu_secs(*p)).sum::<f64>());
    tokio::time::sleep(Duration::from_secs(10)).await;
    let (node1, enc1) = (cpu_secs(node.pid()), encoders.iter().map(|p| cpu_secs(*p)).sum::<f64>());
    eprintln!(
        "{encoded} MJPEG sources encoded to H.264 ({} encoders): media node {:.1}% of a core, encoders {:.1}% per source",
        encoders.len(),
        (node1 - node0) * 10.0,
        (enc1 - enc0) * 10.0 / encoded as f64
    );
}
