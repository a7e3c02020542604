//! The NVR pusher across processes, with real parts: GStreamer's RTSP server standing in for the
//! NVR's video (tests/rtsp/server.py: H.264 + PCMA or H.265, digest auth, the vendors' live and
//! playback paths), a real nginx-rtmp as the RTMP target, a real Redis for the cluster, and
//! ffprobe judging what nginx received. The vendors' HTTP APIs (ISAPI, Dahua CGI) have no open
//! server: a small HTTP server here stands in, demands digest auth, and records every request
//! so the tests can assert exactly what the pusher sent.

mod support;

use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gb::sip::digest::{Algorithm, Challenge, Credentials};
use serde_json::{json, Value};
use support::{eventually, ffprobe_frames, hevc_annexb, NginxRtmp};
use testkit::{free_port, RedisServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use support::rtsp::{RtspServer, PASSWORD, USER};

/// One request the vendor stub received (after authenticating).
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    body: String,
    at: Instant,
}

/// A stand-in for the NVR's HTTP API: digest auth (qop=auth, as Hikvision sends it), then
/// canned ISAPI / Dahua CGI answers. Every authenticated request is recorded.
struct VendorStub {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
    refused: Arc<Mutex<u32>>,
}

fn isapi_page(position: usize) -> String {
    // Two pages: the first says MORE.
    let (status, items) = if position == 0 {
        (
            "MORE",
            "<searchMatchItem><trackID>101</trackID><timeSpan><startTime>2016-07-20T11:50:00Z</startTime><endTime>2016-07-20T12:20:00Z</endTime></timeSpan>\
             <mediaSegmentDescriptor><playbackURI>rtsp://10.0.0.1/Streaming/tracks/101/?starttime=20160720T115000Z&amp;endtime=20160720T122000Z&amp;name=ch01_0800000000001&amp;size=104857600</playbackURI></mediaSegmentDescriptor></searchMatchItem>",
        )
    } else {
        (
            "OK",
            "<searchMatchItem><trackID>101</trackID><timeSpan><startTime>2016-07-20T12:20:00Z</startTime><endTime>2016-07-20T12:40:00Z</endTime></timeSpan>\
             <mediaSegmentDescriptor><playbackURI>rtsp://10.0.0.1/Streaming/tracks/101/?starttime=20160720T122000Z&amp;endtime=20160720T124000Z&amp;name=ch01_0800000000002&amp;size=52428800</playbackURI></mediaSegmentDescriptor></searchMatchItem>",
        )
    };
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><CMSearchResult version=\"2.0\" xmlns=\"http://www.isapi.org/ver20/XMLSchema\">\
         <searchID>x</searchID><responseStatus>true</responseStatus><responseStatusStrg>{status}</responseStatusStrg>\
         <numOfMatches>1</numOfMatches><matchList>{items}</matchList></CMSearchResult>"
    )
}

/// A SOAP answer around `body`.
fn soap(body: &str) -> String {
    format!("<?xml version=\"1.0\"?><env:Envelope xmlns:env=\"http://www.w3.org/2003/05/soap-envelope\" xmlns:tt=\"http://www.onvif.org/ver10/schema\"><env:Body>{body}</env:Body></env:Envelope>")
}

/// The text of `<tag ...>text</tag>` in `xml` (the stub's own crude reading).
fn between<'a>(xml: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let start = xml.find(open)? + open.len() - 1;
    let start = start + xml[start..].find('>')? + 1;
    Some(&xml[start..start + xml[start..].find(close)?])
}

/// Checks an ONVIF request's WS-Security UsernameToken: user, and the SHA-1 password digest
/// over nonce + created + password.
fn onvif_authorized(body: &str) -> bool {
    use base64::Engine as _;
    let (Some(user), Some(digest), Some(nonce), Some(created)) = (
        between(body, "<Username>", "</Username>"),
        between(body, "<Password ", "</Password>"),
        between(body, "<Nonce ", "</Nonce>"),
        between(body, "<Created ", "</Created>"),
    ) else {
        return false;
    };
    let nonce = base64::engine::general_purpose::STANDARD.decode(nonce).unwrap_or_default();
    user == USER && digest == nvr_pusher::onvif::password_digest(&nonce, created, PASSWORD)
}

fn onvif_answer(path: &str, body: &str) -> (u16, String) {
    if !onvif_authorized(body) {
        let fault = "<env:Fault><env:Code><env:Value>env:Sender</env:Value><env:Subcode><env:Value>ter:NotAuthorized</env:Value></env:Subcode></env:Code>\
                     <env:Reason><env:Text xml:lang=\"en\">Sender not Authorized</env:Text></env:Reason></env:Fault>";
        return (400, soap(fault));
    }
    let answer = match path {
        // The device reports its own (private) addresses.
        "/onvif/device_service" if body.contains("GetCapabilities") => {
            "<tds:GetCapabilitiesResponse xmlns:tds=\"d\"><tds:Capabilities><tt:Media><tt:XAddr>http://10.9.9.9/onvif/Media</tt:XAddr></tt:Media>\
             <tt:PTZ><tt:XAddr>http://10.9.9.9/onvif/PTZ</tt:XAddr></tt:PTZ></tds:Capabilities></tds:GetCapabilitiesResponse>"
        }
        "/onvif/Media" if body.contains("GetProfiles") => {
            "<trt:GetProfilesResponse xmlns:trt=\"m\"><trt:Profiles token=\"Profile_1\"/><trt:Profiles token=\"Profile_2\"/></trt:GetProfilesResponse>"
        }
        "/onvif/Media" if body.contains("GetStreamUri") => {
            "<trt:GetStreamUriResponse xmlns:trt=\"m\"><trt:MediaUri>\
             <tt:Uri>rtsp://10.9.9.9:554/Streaming/Channels/101?transportmode=unicast&amp;profile=Profile_1</tt:Uri>\
             </trt:MediaUri></trt:GetStreamUriResponse>"
        }
        "/onvif/PTZ" => "<tptz:Response xmlns:tptz=\"p\"/>",
        _ => return (400, soap("<env:Fault><env:Reason><env:Text>unknown action</env:Text></env:Reason></env:Fault>")),
    };
    (200, soap(answer))
}

fn answer(method: &str, path: &str, body: &str) -> (u16, String) {
    let no_matches =
        "<CMSearchResult><responseStatus>true</responseStatus><responseStatusStrg>NO MATCHES</responseStatusStrg></CMSearchResult>";
    match (method, path.split('?').next().unwrap_or("")) {
        // Channel 3: one short recording, 6 s.
        ("POST", "/ISAPI/ContentMgmt/search") if body.contains("<trackID>301</trackID>") => (
            200,
            "<CMSearchResult><responseStatusStrg>OK</responseStatusStrg><matchList><searchMatchItem><timeSpan>\
             <startTime>2016-07-20T12:00:00Z</startTime><endTime>2016-07-20T12:00:06Z</endTime></timeSpan></searchMatchItem></matchList></CMSearchResult>"
                .into(),
        ),
        ("POST", "/ISAPI/ContentMgmt/search") if body.contains("<trackID>101</trackID>") => {
            let pos =
                body.split("<searchResultPostion>").nth(1).and_then(|s| s.split('<').next()).and_then(|s| s.parse().ok()).unwrap_or(0);
            (200, isapi_page(pos))
        }
        ("POST", "/ISAPI/ContentMgmt/search") => (200, no_matches.into()),
        ("PUT", p) if p.starts_with("/ISAPI/") => {
            (200, "<ResponseStatus><statusCode>1</statusCode><statusString>OK</statusString></ResponseStatus>".into())
        }
        ("GET", "/cgi-bin/mediaFileFind.cgi") if path.contains("action=factory.create") => (200, "result=08137\r\n".into()),
        ("GET", "/cgi-bin/mediaFileFind.cgi") if path.contains("action=findNextFile") => (
            200,
            "found=1\r\nitems[0].Channel=1\r\nitems[0].StartTime=2016-07-20 12:10:00\r\nitems[0].EndTime=2016-07-20 12:50:00\r\n\
             items[0].FilePath=/mnt/sd/2016-07-20/001/dav/12/12.10.00-12.50.00[R][0@0][0].dav\r\nitems[0].Length=209715200\r\n"
                .into(),
        ),
        ("GET", "/cgi-bin/mediaFileFind.cgi" | "/cgi-bin/ptz.cgi") => (200, "OK\r\n".into()),
        _ => (404, "not found".into()),
    }
}

impl VendorStub {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let refused = Arc::new(Mutex::new(0));
        let (s, r) = (seen.clone(), refused.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else { return };
                let (s, r) = (s.clone(), r.clone());
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    let (head, body) = loop {
                        let n = sock.read(&mut chunk).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&buf[..end]).to_string();
                            let len: usize = head
                                .lines()
                                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0)))
                                .unwrap_or(0);
                            while buf.len() < end + 4 + len {
                                let n = sock.read(&mut chunk).await.unwrap_or(0);
                                if n == 0 {
                                    return;
                                }
                                buf.extend_from_slice(&chunk[..n]);
                            }
                            break (head, String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).to_string());
                        }
                    };
                    let mut first = head.lines().next().unwrap_or("").split(' ');
                    let (method, path) = (first.next().unwrap_or("").to_owned(), first.next().unwrap_or("").to_owned());
                    let auth = head.lines().find_map(|l| {
                        l.split_once(':').filter(|(n, _)| n.eq_ignore_ascii_case("authorization")).map(|(_, v)| v.trim().to_owned())
                    });
                    let challenge = Challenge {
                        realm: "IP Camera(C1234)".into(),
                        nonce: "4e6a51334f4451354d6a6f324e6a4d785a546b33".into(),
                        algorithm: Algorithm::Md5,
                        qop_auth: true,
                        stale: false,
                        opaque: None,
                    };
                    let ok = auth
                        .as_deref()
                        .and_then(|a| Credentials::parse(a).ok())
                        .is_some_and(|c| c.username == USER && c.uri == path && c.nonce == challenge.nonce && c.verify(&method, PASSWORD));
                    let (status, text, extra) = if path.starts_with("/onvif/") {
                        // ONVIF: WS-Security in the body instead of HTTP digest.
                        let (st, t) = onvif_answer(&path, &body);
                        if st == 200 {
                            s.lock().unwrap().push(Seen {
                                method: method.clone(),
                                path: path.clone(),
                                body: body.clone(),
                                at: Instant::now(),
                            });
                        } else {
                            *r.lock().unwrap() += 1;
                        }
                        (st, t, String::new())
                    } else if !ok {
                        if auth.is_some() {
                            *r.lock().unwrap() += 1;
                        }
                        (401, "Unauthorized".to_owned(), format!("WWW-Authenticate: {}\r\n", challenge.to_header_value()))
                    } else {
                        s.lock().unwrap().push(Seen { method: method.clone(), path: path.clone(), body: body.clone(), at: Instant::now() });
                        let (st, t) = answer(&method, &path, &body);
                        (st, t, String::new())
                    };
                    let resp = format!("HTTP/1.1 {status} X\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{text}", text.len());
                    let _ = sock.write_all(resp.as_bytes()).await;
                });
            }
        });
        Self { port, seen, refused }
    }

    fn take(&self) -> Vec<Seen> {
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

/// A `gbcluster nvr` process, killed on drop.
struct Pusher {
    child: Child,
    port: u16,
    log: std::path::PathBuf,
}

impl Pusher {
    fn start(redis: &str, env: &[(&str, &str)]) -> Self {
        let port = free_port();
        let log = std::env::temp_dir().join(format!("gbc-nvr-{port}-{}.log", std::process::id()));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_gbcluster"));
        cmd.arg("nvr")
            .env("GBC_NVR__LISTEN", format!("127.0.0.1:{port}"))
            .env("GBC_NVR__NODE_ID", format!("nvr-{port}"))
            .env("GBC_STORE__URL", redis)
            .env("RUST_LOG", "info");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = support::spawn_and_wait(cmd, port, &log, "nvr-pusher");
        Self { child, port, log }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn post(&self, path: &str, body: &Value) -> Value {
        let r = reqwest::Client::new().post(self.url(path)).body(body.to_string()).send().await.expect("nvr-pusher answers");
        assert_eq!(r.status().as_u16(), 200, "HTTP status is always 200; status_code is in the body");
        r.json().await.expect("a JSON reply")
    }

    async fn get(&self, path: &str) -> Value {
        reqwest::get(self.url(path)).await.expect("nvr-pusher answers").json().await.expect("a JSON reply")
    }

    async fn call(&self, handle: u64, call: &str) -> Value {
        self.get(&format!("/STREAM/{handle}/{call}")).await
    }

    async fn sessions(&self) -> Vec<Value> {
        self.get("/api/v1/nvr/sessions").await["items"].as_array().cloned().unwrap_or_default()
    }
}

impl Pusher {
    /// SIGTERM, and wait for the exit (a clean stop).
    fn terminate(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let _ = self.child.wait();
    }

    /// SIGKILL: the node vanishes without cleaning up.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Pusher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The load units the Store counts on a pusher node (`{gbc}:load:nvr`).
async fn load_units(redis_url: &str, p: &Pusher) -> i64 {
    let client = redis::Client::open(redis_url).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let v: Option<i64> = redis::cmd("HGET").arg("{gbc}:load:nvr").arg(format!("nvr-{}", p.port)).query_async(&mut c).await.unwrap();
    v.unwrap_or(0)
}

fn target(category: u8, channel: u32, rtsp: &RtspServer) -> Value {
    json!({"nvr_category": category, "nvr_addr": "127.0.0.1", "nvr_port": 8000, "nvr_user": USER, "nvr_pwd": PASSWORD,
           "nvr_channel": channel, "rtsp_port": rtsp.port})
}

fn code(v: &Value) -> u64 {
    v["status_code"].as_u64().unwrap_or(0)
}

fn handle(v: &Value) -> u64 {
    assert_eq!(code(v), 200, "{v}");
    v["play_handle"].as_u64().expect("play_handle is an integer")
}

/// ffprobe reads the first `packets` packets of what nginx serves at `rtmp_url`.
async fn probe(rtmp_url: &str, packets: u32) -> Vec<(String, u64, u64, u64)> {
    let url = rtmp_url.to_owned();
    tokio::task::spawn_blocking(move || ffprobe_frames(&url, &["-rw_timeout", "15000000", "-read_intervals", &format!("%+#{packets}")]))
        .await
        .unwrap()
}

fn h264_decodes(streams: &[(String, u64, u64, u64)]) {
    let v = streams.iter().find(|s| s.0 == "h264").unwrap_or_else(|| panic!("no H.264: {streams:?}"));
    assert_eq!((v.1, v.2), (640, 360), "{streams:?}");
    assert!(v.3 >= 30, "{streams:?}");
    assert!(streams.iter().any(|s| s.0 == "pcm_alaw" && s.3 > 0), "G.711 A-law audio too: {streams:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn live_hikvision_and_dahua_h264_h265_stop_and_every_error_code() {
    let redis = RedisServer::start().expect("redis-server");
    let nginx = NginxRtmp::start();
    let h264 = RtspServer::start("h264");
    let h265 = RtspServer::start("h265");
    let rtmp = format!("rtmp://127.0.0.1:{}/live", nginx.port);
    // nginx-rtmp cannot read Enhanced RTMP HEVC: the older codec-12 form for it.
    let p = Pusher::start(&redis.url(), &[("GBC_NVR__RTMP_TARGET", &rtmp), ("GBC_NVR__HEVC_FLV", "codec12")]);

    // Hikvision, channel 1 main stream: H.264 + PCMA through nginx.
    let started = Instant::now();
    let hik = p.post("/REAL_STREAM", &target(0, 1, &h264)).await;
    let hik_handle = handle(&hik);
    let answered = started.elapsed();
    let rtmp_url = hik["rtmp_url"].as_str().unwrap().to_owned();
    assert_eq!(rtmp_url, format!("{rtmp}/nvr_{hik_handle}"));
    assert!(h264.describes().iter().any(|u| u.ends_with("/Streaming/Channels/101")), "{:?}", h264.describes());
    h264_decodes(&probe(&rtmp_url, 150).await);
    eprintln!("REAL_STREAM answered in {answered:?} (video flowing)");

    // Dahua, channel 1: /cam/realmonitor; H.265 pushed to nginx, recorded, decoded.
    let dahua = p.post("/REAL_STREAM", &target(1, 1, &h265)).await;
    let dahua_handle = handle(&dahua);
    assert!(h265.describes().iter().any(|u| u.ends_with("/cam/realmonitor?channel=1&subtype=0")), "{:?}", h265.describes());
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(code(&p.call(dahua_handle, "BEATS").await), 200);
    let view = p.sessions().await;
    assert_eq!(view.len(), 2, "{view:?}");
    assert_eq!(code(&p.call(dahua_handle, "STOP").await), 200);
    let rec = std::fs::read(nginx.recording(&format!("nvr_{dahua_handle}"))).expect("nginx recorded the H.265 push");
    let (annexb, frames) = hevc_annexb(&rec);
    assert!(frames >= 25, "{frames} HEVC frames recorded");
    let path = std::env::temp_dir().join(format!("gbc-nvr-hevc-{}.h265", std::process::id()));
    std::fs::write(&path, annexb).unwrap();
    let probed = ffprobe_frames(path.to_str().unwrap(), &[]);
    assert_eq!((probed[0].0.as_str(), probed[0].1, probed[0].2), ("hevc", 640, 360), "{probed:?}");
    assert!(probed[0].3 >= 25, "{probed:?}");

    // A failed play gives back its own load unit, and only that: Hikvision still holds one.
    let mut wrong = target(0, 1, &h264);
    wrong["nvr_pwd"] = json!("wrong");
    assert_eq!(code(&p.post("/REAL_STREAM", &wrong).await), 606);
    // (The failed session's end gives its unit back just after the reply.)
    let settled = eventually(Duration::from_secs(3), || async { load_units(&redis.url(), &p).await == 1 }).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(settled && load_units(&redis.url(), &p).await == 1, "one session running, one unit counted");

    // AAC (mpeg4-generic) audio goes through as AAC.
    let aac = RtspServer::start_with(free_port(), "h264", "aac", &[]);
    let r = p.post("/REAL_STREAM", &target(0, 1, &aac)).await;
    let aac_handle = handle(&r);
    let streams = probe(r["rtmp_url"].as_str().unwrap(), 150).await;
    assert!(streams.iter().any(|s| s.0 == "aac" && s.3 > 0) && streams.iter().any(|s| s.0 == "h264" && s.3 >= 30), "{streams:?}");
    assert_eq!(code(&p.call(aac_handle, "STOP").await), 200);

    // STOP ends it at once: the handle is gone and the RTMP publish closed.
    assert_eq!(code(&p.call(hik_handle, "STOP").await), 200);
    assert_eq!(code(&p.call(hik_handle, "BEATS").await), 605);
    assert!(p.sessions().await.is_empty());

    // What fails says so, with the original's codes.
    let mut wrong = target(0, 1, &h264);
    wrong["nvr_pwd"] = json!("wrong");
    let r = p.post("/REAL_STREAM", &wrong).await;
    assert_eq!(code(&r), 606, "wrong password: {r}");
    let mut closed = target(0, 1, &h264);
    closed["rtsp_port"] = json!(free_port());
    let r = p.post("/REAL_STREAM", &closed).await;
    assert_eq!(code(&r), 603, "NVR unreachable: {r}");
    let r = p.post("/REAL_STREAM", &json!({"nvr_category": 0, "nvr_addr": "127.0.0.1", "nvr_port": "x", "nvr_channel": 0})).await;
    assert_eq!(code(&r), 600, "{r}");
    for part in ["nvr_port must be an integer", "nvr_user is missing", "nvr_pwd is missing", "nvr_channel must be 1-512"] {
        assert!(r["status_message"].as_str().unwrap().contains(part), "{part}: {r}");
    }
    let r = reqwest::Client::new().post(p.url("/REAL_STREAM")).body("{not json").send().await.unwrap().json::<Value>().await.unwrap();
    assert_eq!(code(&r), 600, "{r}");
    assert_eq!(code(&p.call(123_456, "BEATS").await), 605);
    assert_eq!(code(&p.get("/STREAM/abc/STOP").await), 605);
    let mut bad_range = target(0, 1, &h264);
    bad_range["startTime"] = json!("2016-07-20 13:00:00");
    bad_range["endTime"] = json!("2016-07-20 12:00:00");
    assert_eq!(code(&p.post("/BACK_STREAM", &bad_range).await), 600);

    // The RTMP server down: 602, and nothing left behind. (A cluster of its own: in `p`'s, the
    // play could be taken by `p`, whose RTMP server is up.)
    let redis2 = RedisServer::start().expect("redis-server");
    let dead = Pusher::start(&redis2.url(), &[("GBC_NVR__RTMP_TARGET", &format!("rtmp://127.0.0.1:{}/live", free_port()))]);
    let r = dead.post("/REAL_STREAM", &target(0, 1, &h264)).await;
    assert_eq!(code(&r), 602, "{r}");
    assert!(dead.sessions().await.is_empty());
    let metrics = reqwest::get(p.url("/metrics")).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("gbc_nvr_plays_total"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn playback_searches_records_positions_and_ptz_goes_through_the_vendor_apis() {
    let redis = RedisServer::start().expect("redis-server");
    let nginx = NginxRtmp::start();
    let mut rtsp = RtspServer::start("h264");
    let stub = VendorStub::start().await;
    let rtmp = format!("rtmp://127.0.0.1:{}/live", nginx.port);
    let http_port = stub.port.to_string();
    let p =
        Pusher::start(&redis.url(), &[("GBC_NVR__RTMP_TARGET", &rtmp), ("GBC_NVR__HTTP_PORT", &http_port), ("GBC_NVR__STALL_SECS", "2")]);

    // Hikvision playback: ISAPI search (two pages), the range clipped to the recordings.
    let mut body = target(0, 1, &rtsp);
    body["startTime"] = json!("2016-07-20 12:00:00");
    body["endTime"] = json!("2016-07-20 13:00:00");
    let r = p.post("/BACK_STREAM", &body).await;
    let h = handle(&r);
    assert_eq!((r["start_time"].as_str(), r["stop_time"].as_str()), (Some("2016-07-20 12:00:00"), Some("2016-07-20 12:40:00")), "{r}");
    assert_eq!(
        r["record_files"],
        json!([
            {"file_name": "ch01_0800000000001", "file_size": 104857600, "start_time": "2016-07-20 11:50:00", "stop_time": "2016-07-20 12:20:00"},
            {"file_name": "ch01_0800000000002", "file_size": 52428800, "start_time": "2016-07-20 12:20:00", "stop_time": "2016-07-20 12:40:00"}
        ])
    );
    let seen = stub.take();
    assert_eq!(seen.len(), 2, "two search pages: {seen:?}");
    for (i, s) in seen.iter().enumerate() {
        assert_eq!((s.method.as_str(), s.path.as_str()), ("POST", "/ISAPI/ContentMgmt/search"));
        assert!(s.body.contains("<CMSearchDescription>") && s.body.contains("<trackID>101</trackID>"), "{}", s.body);
        assert!(s.body.contains("<startTime>2016-07-20T12:00:00Z</startTime><endTime>2016-07-20T13:00:00Z</endTime>"), "{}", s.body);
        assert!(s.body.contains(&format!("<searchResultPostion>{i}</searchResultPostion>")), "{}", s.body);
    }
    assert_eq!(seen[0].body.split("<searchID>").nth(1).map(|s| &s[..36]), seen[1].body.split("<searchID>").nth(1).map(|s| &s[..36]));
    assert!(
        rtsp.describes().iter().any(|u| u.ends_with("/Streaming/tracks/101?starttime=20160720T120000Z&endtime=20160720T124000Z")),
        "{:?}",
        rtsp.describes()
    );
    h264_decodes(&probe(r["rtmp_url"].as_str().unwrap(), 150).await);

    // POSITION reopens at the new time; outside the range is a 600; PTZ is for live sessions.
    let r = p.post(&format!("/STREAM/{h}/POSITION"), &json!({"pos_time": "2016-07-20 12:30:00"})).await;
    assert_eq!(code(&r), 200, "{r}");
    assert!(rtsp.describes().iter().any(|u| u.ends_with("/Streaming/tracks/101?starttime=20160720T123000Z&endtime=20160720T124000Z")));
    let beat = p.call(h, "BEATS").await;
    assert!(beat["pos_time"].as_str().unwrap_or("").starts_with("2016-07-20 12:3"), "{beat}");
    assert_eq!(code(&p.post(&format!("/STREAM/{h}/POSITION"), &json!({"pos_time": "2016-07-20 14:00:00"})).await), 600);
    assert_eq!(code(&p.post(&format!("/STREAM/{h}/POSITION"), &json!({"pos_time": "noon"})).await), 600);
    assert_eq!(code(&p.post(&format!("/STREAM/{h}/PTZControl"), &json!({"command": 6})).await), 609);
    // The stream went on through the reposition: the same publish, nothing reconnected.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let view = p.sessions().await.into_iter().find(|s| s["play_handle"].as_u64() == Some(h)).expect("the session");
    assert_eq!((view["state"].as_str(), view["reconnects"].as_u64()), (Some("playing"), Some(0)), "{view}");
    // While the source is reconnecting, POSITION says so at once instead of waiting it out.
    let port = rtsp.port;
    rtsp.kill();
    let reconnecting = eventually(Duration::from_secs(5), || async { p.call(h, "BEATS").await["reconnecting"].is_object() }).await;
    assert!(reconnecting);
    let asked = Instant::now();
    let r = p.post(&format!("/STREAM/{h}/POSITION"), &json!({"pos_time": "2016-07-20 12:10:00"})).await;
    assert_eq!(code(&r), 608, "{r}");
    assert!(r["status_message"].as_str().unwrap().contains("reconnecting") && asked.elapsed() < Duration::from_secs(1), "{r}");
    let rtsp = RtspServer::start_on(port, "h264");
    assert_eq!(code(&p.call(h, "STOP").await), 200);

    // Dahua playback: the mediaFileFind sequence, in order, and the finder closed.
    let mut body = target(1, 1, &rtsp);
    body["startTime"] = json!("2016-07-20 12:00:00");
    body["endTime"] = json!("2016-07-20 13:00:00");
    let r = p.post("/BACK_STREAM", &body).await;
    let h = handle(&r);
    assert_eq!((r["start_time"].as_str(), r["stop_time"].as_str()), (Some("2016-07-20 12:10:00"), Some("2016-07-20 12:50:00")), "{r}");
    assert_eq!(r["record_files"][0]["file_name"], "12.10.00-12.50.00[R][0@0][0].dav");
    let paths: Vec<String> = stub.take().into_iter().map(|s| format!("{} {}", s.method, s.path)).collect();
    assert_eq!(
        paths,
        vec![
            "GET /cgi-bin/mediaFileFind.cgi?action=factory.create".to_owned(),
            "GET /cgi-bin/mediaFileFind.cgi?action=findFile&object=08137&condition.Channel=1&condition.StartTime=2016-07-20%2012:00:00&condition.EndTime=2016-07-20%2013:00:00".to_owned(),
            "GET /cgi-bin/mediaFileFind.cgi?action=findNextFile&object=08137&count=100".to_owned(),
            "GET /cgi-bin/mediaFileFind.cgi?action=close&object=08137".to_owned(),
            "GET /cgi-bin/mediaFileFind.cgi?action=destroy&object=08137".to_owned(),
        ]
    );
    assert!(rtsp
        .describes()
        .iter()
        .any(|u| u.ends_with("/cam/playback?channel=1&subtype=0&starttime=2016_07_20_12_10_00&endtime=2016_07_20_12_50_00")));
    assert_eq!(code(&p.call(h, "STOP").await), 200);

    // A recording played to its end ends the session (the server stops sending 3 s into a 6 s
    // file: within the few seconds' slack of its end), and BEATS says so.
    let ending = RtspServer::start_with(free_port(), "h264", "none", &["--frames", "75"]);
    let mut body = target(0, 3, &ending);
    body["startTime"] = json!("2016-07-20 12:00:00");
    body["endTime"] = json!("2016-07-20 13:00:00");
    let r = p.post("/BACK_STREAM", &body).await;
    let h = handle(&r);
    assert_eq!(r["stop_time"].as_str(), Some("2016-07-20 12:00:06"), "{r}");
    let played_out = eventually(Duration::from_secs(20), || async { code(&p.call(h, "BEATS").await) == 605 }).await;
    let r = p.call(h, "BEATS").await;
    assert!(played_out && r["status_message"].as_str().unwrap_or("").contains("played to its end"), "{r}");
    stub.take();

    // No recording in the range: 607.
    let mut none = target(0, 2, &rtsp);
    none["startTime"] = json!("2016-07-20 12:00:00");
    none["endTime"] = json!("2016-07-20 13:00:00");
    assert_eq!(code(&p.post("/BACK_STREAM", &none).await), 607);
    stub.take();

    // PTZ on a live Hikvision session: a continuous move for the duration, then a stop.
    let live = handle(&p.post("/REAL_STREAM", &target(0, 1, &rtsp)).await);
    let r = p.post(&format!("/STREAM/{live}/PTZControl"), &json!({"command": 6, "duration": 300})).await;
    assert_eq!(code(&r), 200, "{r}");
    let seen = stub.take();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(seen.iter().all(|s| s.method == "PUT" && s.path == "/ISAPI/PTZCtrl/channels/1/continuous"));
    assert!(seen[0].body.contains("<PTZData><pan>0</pan><tilt>60</tilt><zoom>0</zoom></PTZData>"), "{}", seen[0].body);
    assert!(seen[1].body.contains("<PTZData><pan>0</pan><tilt>0</tilt><zoom>0</zoom></PTZData>"), "{}", seen[1].body);
    let held = seen[1].at - seen[0].at;
    assert!(held >= Duration::from_millis(280) && held < Duration::from_millis(1000), "moved for {held:?}");
    assert_eq!(code(&p.post(&format!("/STREAM/{live}/PTZControl"), &json!({"command": 6, "duration": 50})).await), 600);
    assert_eq!(code(&p.post(&format!("/STREAM/{live}/PTZControl"), &json!({"command": 14})).await), 600);
    assert_eq!(code(&p.call(live, "STOP").await), 200);

    // Dahua PTZ: ptz.cgi start, then stop, with the code for "down-left" (12).
    let live = handle(&p.post("/REAL_STREAM", &target(1, 1, &rtsp)).await);
    assert_eq!(code(&p.post(&format!("/STREAM/{live}/PTZControl"), &json!({"command": 12})).await), 200);
    let paths: Vec<String> = stub.take().into_iter().map(|s| s.path).collect();
    assert_eq!(
        paths,
        vec![
            "/cgi-bin/ptz.cgi?action=start&channel=1&code=LeftDown&arg1=0&arg2=5&arg3=0".to_owned(),
            "/cgi-bin/ptz.cgi?action=stop&channel=1&code=LeftDown&arg1=0&arg2=5&arg3=0".to_owned()
        ]
    );
    // A wrong password on the vendor API: 606.
    let mut wrong = target(0, 1, &rtsp);
    wrong["nvr_pwd"] = json!("wrong");
    wrong["startTime"] = json!("2016-07-20 12:00:00");
    wrong["endTime"] = json!("2016-07-20 13:00:00");
    assert_eq!(code(&p.post("/BACK_STREAM", &wrong).await), 606);
    assert!(*stub.refused.lock().unwrap() >= 1, "the stub saw the wrong digest");
    assert_eq!(code(&p.call(live, "STOP").await), 200);
    stub.take();

    // ONVIF (category 3): the live URI from the media service (its private host replaced by
    // the address the request named), PTZ through the PTZ service, WS-Security on each call.
    let onvif = p.post("/REAL_STREAM", &target(3, 1, &rtsp)).await;
    let live = handle(&onvif);
    let seen = stub.take();
    let calls: Vec<(&str, bool)> =
        seen.iter().map(|s| (s.path.as_str(), s.body.contains("<trt:ProfileToken>Profile_1</trt:ProfileToken>"))).collect();
    assert_eq!(calls, vec![("/onvif/device_service", false), ("/onvif/Media", false), ("/onvif/Media", true)], "{seen:?}");
    assert!(seen[2].body.contains("<tt:Stream>RTP-Unicast</tt:Stream>"));
    let expected = format!("rtsp://127.0.0.1:{}/Streaming/Channels/101?transportmode=unicast&profile=Profile_1", rtsp.port);
    assert!(rtsp.describes().contains(&expected), "{:?}", rtsp.describes());
    h264_decodes(&probe(onvif["rtmp_url"].as_str().unwrap(), 150).await);
    let r = p.post(&format!("/STREAM/{live}/PTZControl"), &json!({"command": 9, "duration": 200})).await;
    assert_eq!(code(&r), 200, "{r}");
    let seen = stub.take();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0].path, "/onvif/PTZ");
    assert!(seen[0].body.contains("<tt:PanTilt x=\"0.60\" y=\"0.00\"/><tt:Zoom x=\"0.00\"/>"), "{}", seen[0].body);
    assert!(seen[1].body.contains("<tptz:Stop") && seen[1].body.contains("<tptz:ProfileToken>Profile_1</tptz:ProfileToken>"));
    assert_eq!(code(&p.call(live, "STOP").await), 200);
    let mut wrong = target(3, 1, &rtsp);
    wrong["nvr_pwd"] = json!("wrong");
    let r = p.post("/REAL_STREAM", &wrong).await;
    assert_eq!(code(&r), 606, "{r}");
    let mut back = target(3, 1, &rtsp);
    back["startTime"] = json!("2016-07-20 12:00:00");
    back["endTime"] = json!("2016-07-20 13:00:00");
    assert_eq!(code(&p.post("/BACK_STREAM", &back).await), 600, "ONVIF playback is not offered");
    assert!(p.sessions().await.is_empty(), "{}", p.log_text());
}

/// Beats the handles in `keep` every 500 ms through `via` until dropped.
fn beater(via: String, keep: Arc<Mutex<Vec<u64>>>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let handles = keep.lock().unwrap().clone();
            for h in handles {
                let _ = reqwest::get(format!("{via}/STREAM/{h}/BEATS")).await;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_share_plays_forward_calls_and_sessions_end_on_missed_beats_or_a_source_gone() {
    let redis = RedisServer::start().expect("redis-server");
    let nginx = NginxRtmp::start();
    let mut rtsp = RtspServer::start("h264");
    let rtmp = format!("rtmp://127.0.0.1:{}/live", nginx.port);
    let env = [
        ("GBC_NVR__RTMP_TARGET", rtmp.as_str()),
        ("GBC_NVR__BEAT_INTERVAL_SECS", "1"),
        // Retries at 1, 3 and 7 s: room for the RTSP server to restart on a loaded machine.
        ("GBC_NVR__RECONNECT_WINDOW_SECS", "8"),
        ("GBC_NVR__STALL_SECS", "2"),
    ];
    let a = Pusher::start(&redis.url(), &env);
    let b = Pusher::start(&redis.url(), &env);
    let keep = Arc::new(Mutex::new(Vec::new()));
    let _beats = beater(a.url(""), keep.clone());

    // Four plays through node A: the least-loaded node takes each, two each.
    let mut handles = Vec::new();
    for ch in [1, 2, 1, 2] {
        let body = target(0, ch, &rtsp);
        let h = handle(&a.post("/REAL_STREAM", &body).await);
        keep.lock().unwrap().push(h);
        handles.push(h);
    }
    let (on_a, on_b) = (a.sessions().await.len(), b.sessions().await.len());
    assert_eq!((on_a, on_b), (2, 2), "plays spread over both nodes");
    // Every call reaches the node holding the handle, through either node.
    let b_handle = b.sessions().await[0]["play_handle"].as_u64().unwrap();
    assert_eq!(code(&a.call(b_handle, "BEATS").await), 200);
    let r = a.post(&format!("/STREAM/{b_handle}/PTZControl"), &json!({"command": 1, "duration": 100})).await;
    assert_eq!(code(&r), 609, "forwarded; the NVR's HTTP API is not there: {r}");
    keep.lock().unwrap().retain(|h| *h != b_handle);
    assert_eq!(code(&a.call(b_handle, "STOP").await), 200);
    assert_eq!(b.sessions().await.len(), 1);

    // Missed beats: one handle left unbeaten is stopped after three intervals, and says why.
    let unbeaten = handles.iter().copied().find(|h| *h != b_handle).unwrap();
    keep.lock().unwrap().retain(|h| *h != unbeaten);
    // (Watched through the session lists: a BEATS call would itself be a beat.)
    let gone = eventually(Duration::from_secs(8), || async {
        let all: Vec<Value> = [a.sessions().await, b.sessions().await].concat();
        !all.iter().any(|s| s["play_handle"].as_u64() == Some(unbeaten))
    })
    .await;
    assert!(gone, "stopped without beats");
    let r = a.call(unbeaten, "BEATS").await;
    assert_eq!(code(&r), 605, "{r}");
    assert!(r["status_message"].as_str().unwrap().contains("no beat"), "{r}");

    // The source drops and comes back within the window: the sessions go on, reconnected.
    let port = rtsp.port;
    rtsp.kill();
    let reconnecting = eventually(Duration::from_secs(5), || async {
        let h = keep.lock().unwrap()[0];
        a.call(h, "BEATS").await["reconnecting"].is_object()
    })
    .await;
    assert!(reconnecting, "BEATS shows the reconnect");
    let mut rtsp = RtspServer::start_on(port, "h264");
    let back = eventually(Duration::from_secs(10), || async {
        let all: Vec<Value> = [a.sessions().await, b.sessions().await].concat();
        all.len() == 2 && all.iter().all(|s| s["state"] == "playing" && s["reconnects"].as_u64() >= Some(1))
    })
    .await;
    assert!(back, "sessions reconnected: {:?} {:?}", a.sessions().await, b.sessions().await);
    let live = keep.lock().unwrap()[0];
    let url = format!("{rtmp}/nvr_{live}");
    let v = probe(&url, 100).await;
    assert!(v.iter().any(|s| s.0 == "h264" && s.3 >= 20), "video again after the reconnect: {v:?}");

    // The source goes for good: each session ends after the window, its reason kept for BEATS.
    rtsp.kill();
    let ended = eventually(Duration::from_secs(25), || async {
        let h = keep.lock().unwrap()[0];
        code(&a.call(h, "BEATS").await) == 603
    })
    .await;
    assert!(ended, "{}", a.log_text());
    let first = keep.lock().unwrap()[0];
    let r = a.call(first, "BEATS").await;
    assert!(r["status_message"].as_str().unwrap().contains("source down"), "{r}");

    // Nothing held: no sessions, no load units.
    let idle = eventually(Duration::from_secs(10), || async { a.sessions().await.is_empty() && b.sessions().await.is_empty() }).await;
    assert!(idle);
    let client = redis::Client::open(redis.url()).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let load: Vec<String> = redis::cmd("HVALS").arg("{gbc}:load:nvr").query_async(&mut c).await.unwrap_or_default();
    assert!(load.iter().all(|v| v == "0"), "load units left: {load:?}");

    // Ended sessions keep a row (BEATS answers from any node) until they are forgotten; a
    // node that stops takes its rows with it, and a node killed has its rows pruned by a live
    // one once its record has expired.
    let rows_of = |p: &Pusher| format!("\"node\":\"nvr-{}\"", p.port);
    let rows = |c: redis::aio::MultiplexedConnection, who: String| async move {
        let mut c = c;
        let all: Vec<String> = redis::cmd("HVALS").arg("{gbc}:t:nvr_sessions").query_async(&mut c).await.unwrap_or_default();
        all.iter().filter(|r| r.contains(&who)).count()
    };
    assert!(rows(c.clone(), rows_of(&a)).await > 0 && rows(c.clone(), rows_of(&b)).await > 0, "each node holds ended sessions");
    let (a_rows, mut b) = (rows_of(&a), b);
    b.terminate();
    assert_eq!(rows(c.clone(), rows_of(&b)).await, 0, "a stopped node removed its rows");
    let _c_node = Pusher::start(&redis.url(), &env);
    let mut a = a;
    a.kill();
    let pruned = eventually(Duration::from_secs(25), || async { rows(c.clone(), a_rows.clone()).await == 0 }).await;
    assert!(pruned, "the rows of a killed node were pruned by a live one");
}
