//! The media node end to end, across processes: `gbcluster stream`, our simulator's sender
//! (GB PS over RTP from ffmpeg-made files), and real ffprobe / nginx-rtmp on the output side.

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use ::media::flv::read_tags;
use gbsim::media::{self, Impairment, MediaSource, SendOptions, SendTransport};
use support::{ffprobe_frames, fixture, hevc_annexb, MediaProc};
use tokio_util::sync::CancellationToken;

fn source(video: &str, audio: Option<&str>) -> MediaSource {
    MediaSource::load(&fixture(video), 25.0, audio.map(fixture).as_deref()).expect("load fixture")
}

fn audio_frames(src: &MediaSource) -> u64 {
    src.frames.iter().filter(|f| !f.video).count() as u64
}

/// Starts ffprobe on the stream (HTTP-FLV, or RTMP when `id` says so) and waits until it is
/// attached.
async fn attach_ffprobe(node: &MediaProc, id: &str) -> std::process::Child {
    let url = if id.starts_with("rtmp") {
        format!("rtmp://127.0.0.1:{}/live/{id}", node.rtmp_port)
    } else {
        node.url(&format!("/live/{id}.flv"))
    };
    let child = Command::new("ffprobe")
        .args(["-v", "error"])
        .args(support::FFPROBE_COUNT)
        .arg(url)
        .stdout(Stdio::piped())
        .spawn()
        .expect("ffprobe");
    node.wait_viewers(id, 1).await;
    child
}

fn probe_result(child: std::process::Child) -> Vec<(String, u64, u64, u64)> {
    support::parse_ffprobe(&child.wait_with_output().expect("ffprobe output").stdout)
}

/// One play: open a receiver, attach ffprobe to HTTP-FLV, send one loop of the file, close.
async fn play_once(node: &MediaProc, id: &str, ssrc: u32, transport: SendTransport, src: &MediaSource) -> Vec<(String, u64, u64, u64)> {
    let (recv_transport, peer) = match transport {
        SendTransport::Udp => ("udp", None),
        SendTransport::TcpActive => ("tcp-passive", None),
        SendTransport::TcpPassive => ("tcp-active", Some(format!("127.0.0.1:{}", testkit::free_port()))),
    };
    // TCP active: open without the camera's address, then give it as the SDP answer would.
    let opened = node.open(id, Some(ssrc), recv_transport, None).await;
    if node.pushes {
        let ok = support::eventually(Duration::from_secs(5), || async { node.stream(id).await["pushing"] == true }).await;
        assert!(ok, "{id}: RTMP push never connected");
    }
    if let Some(p) = &peer {
        let r = reqwest::Client::new()
            .post(node.url(&format!("/api/v1/receivers/{id}/connect")))
            .json(&serde_json::json!({ "peer": p }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
    }
    let probe = attach_ffprobe(node, id).await;
    let target = match &peer {
        Some(p) => p.parse().unwrap(),
        None => format!("{}:{}", opened["ip"].as_str().unwrap(), opened["port"]).parse().unwrap(),
    };
    let opts = SendOptions { transport, target, ssrc, loops: 1, impairment: Impairment::default() };
    let sent = media::send(src, opts, CancellationToken::new()).await.expect("send");
    assert_eq!(sent.video_frames as usize, src.video_frames);
    // Let the last packets arrive, then close: the viewer's stream ends and ffprobe reports.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stats = node.stream(id).await;
    assert_eq!(node.close(id).await, 200);
    let result = tokio::task::spawn_blocking(move || probe_result(probe)).await.unwrap();
    eprintln!("{id}: {stats}");
    result
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn h264_aac_over_udp_tcp_passive_and_tcp_active_decode_every_frame_over_http_flv_and_rtmp() {
    // Every stream is also pushed to a real nginx-rtmp, which records what it receives.
    let nginx = support::NginxRtmp::start();
    let push = format!("rtmp://127.0.0.1:{}/live/{{stream_id}}", nginx.port);
    let node = MediaProc::start(None, &[("GBC_STREAM__RTMP_PUSH_URL", push.as_str())]);
    let src = source("h264_640x360_4s.h264", Some("aac_4s.aac"));
    assert_eq!(src.video_frames, 100);
    // Each transport; the last is watched over the built-in RTMP server instead of HTTP-FLV.
    let cases = [
        ("udp1", SendTransport::Udp),
        ("tcpp1", SendTransport::TcpActive),
        ("tcpa1", SendTransport::TcpPassive),
        ("rtmp1", SendTransport::Udp),
    ];
    let runs = cases.iter().enumerate().map(|(i, (id, t))| play_once(&node, id, 200_000_001 + i as u32, *t, &src));
    let results = futures::future::join_all(runs).await;
    // An RTMP player joining a live stream gets its onMetaData (size and rate from the SPS).
    let opened = node.open("rtmpmeta", Some(77), "udp", None).await;
    let target = format!("127.0.0.1:{}", opened["port"]).parse().unwrap();
    let stop = CancellationToken::new();
    let (s2, src2) = (stop.clone(), src.clone());
    let sending = tokio::spawn(async move {
        media::send(&src2, SendOptions { transport: SendTransport::Udp, target, ssrc: 77, loops: 0, impairment: Impairment::default() }, s2)
            .await
    });
    support::eventually(Duration::from_secs(5), || async { node.stream("rtmpmeta").await["video_frames"].as_u64() > Some(0) }).await;
    let meta = support::rtmp_play_metadata(node.rtmp_port, "rtmpmeta", Duration::from_secs(5)).await.expect("onMetaData over RTMP");
    assert_eq!((meta.video_width, meta.video_height, meta.video_frame_rate), (Some(640), Some(360), Some(25.0)));
    assert_eq!(meta.audio_codec_id, Some(10));
    stop.cancel();
    sending.await.unwrap().unwrap();
    for ((id, _), r) in cases.iter().zip(results) {
        let video = r.iter().find(|s| s.0 == "h264").unwrap_or_else(|| panic!("{id}: no h264 in {r:?}\n{}", node.log_text()));
        assert_eq!((video.1, video.2, video.3), (640, 360, 100), "{id}: video {r:?}");
        let audio = r.iter().find(|s| s.0 == "aac").unwrap_or_else(|| panic!("{id}: no aac in {r:?}"));
        assert_eq!(audio.3, audio_frames(&src), "{id}: audio {r:?}");
        // The same stream as nginx recorded it from our push.
        let rec = nginx.recording(id);
        let mut probe = Vec::new();
        for _ in 0..30 {
            probe = ffprobe_frames(rec.to_str().unwrap(), &[]);
            if probe.iter().any(|p| p.0 == "h264" && p.3 == 100) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(probe.contains(&("h264".into(), 640, 360, 100)), "{id}: nginx recorded {probe:?}");
        assert!(probe.contains(&("aac".into(), 0, 0, audio_frames(&src))), "{id}: nginx recorded {probe:?}");
    }
}

/// Reads a whole HTTP-FLV response (until the stream closes) in the background.
async fn capture_flv(node: &MediaProc, id: &str) -> tokio::task::JoinHandle<Vec<u8>> {
    let url = node.url(&format!("/live/{id}.flv"));
    let h = tokio::spawn(async move { reqwest::get(url).await.expect("flv get").bytes().await.map(|b| b.to_vec()).unwrap_or_default() });
    node.wait_viewers(id, 1).await;
    h
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn h265_as_enhanced_rtmp_and_g711a_as_sound_format_7() {
    let node = MediaProc::start(None, &[]);
    let src = source("h265_320x240_2s.h265", Some("alaw_2s.alaw"));
    assert_eq!(src.video_frames, 50);
    let opened = node.open("hevc1", Some(7), "udp", None).await;
    let flv = capture_flv(&node, "hevc1").await;
    let target = format!("127.0.0.1:{}", opened["port"]).parse().unwrap();
    media::send(
        &src,
        SendOptions { transport: SendTransport::Udp, target, ssrc: 7, loops: 1, impairment: Impairment::default() },
        CancellationToken::new(),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stats = node.stream("hevc1").await;
    assert_eq!((stats["video_codec"].as_str(), stats["width"].as_u64(), stats["height"].as_u64()), (Some("H265"), Some(320), Some(240)));
    node.close("hevc1").await;
    let flv = flv.await.unwrap();
    assert_eq!(&flv[..3], b"FLV");
    // onMetaData first, with the size from the SPS.
    let tags = read_tags(&flv);
    assert_eq!(tags[0].0, 18, "metadata tag first");
    let meta = ::media::flv::amf0::read_numbers(tags[0].2);
    assert!(meta.contains(&("width".into(), 320.0)) && meta.contains(&("height".into(), 240.0)), "{meta:?}");
    let (annexb, frames) = hevc_annexb(&flv);
    assert_eq!(frames, 50);
    let path = std::env::temp_dir().join(format!("gbc-hevc-{}.h265", std::process::id()));
    std::fs::write(&path, annexb).unwrap();
    let probe = ffprobe_frames(path.to_str().unwrap(), &[]);
    assert_eq!(probe, vec![("hevc".to_owned(), 320, 240, 50)], "ffprobe of the served HEVC");
    // G.711A: format 7, the file's bytes exactly.
    let alaw: Vec<u8> = read_tags(&flv)
        .into_iter()
        .filter(|t| t.0 == 8)
        .flat_map(|t| {
            assert_eq!(t.2[0] >> 4, 7, "sound format");
            t.2[1..].to_vec()
        })
        .collect();
    let original = std::fs::read(fixture("alaw_2s.alaw")).unwrap();
    assert_eq!(alaw.len(), original.len());
    assert!(alaw == original, "G.711 payload altered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ssrc_mismatch_is_refused_and_counted() {
    let node = MediaProc::start(None, &[]);
    let src = source("h264_640x360_4s.h264", None);
    let opened = node.open("ssrc1", Some(1111), "udp", None).await;
    let target = format!("127.0.0.1:{}", opened["port"]).parse().unwrap();
    let stop = CancellationToken::new();
    let s2 = stop.clone();
    let src2 = src.clone();
    let wrong = tokio::spawn(async move {
        media::send(
            &src2,
            SendOptions { transport: SendTransport::Udp, target, ssrc: 2222, loops: 1, impairment: Impairment::default() },
            s2,
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.cancel();
    wrong.await.unwrap().unwrap();
    let s = node.stream("ssrc1").await;
    assert!(s["wrong_ssrc"].as_u64().unwrap() > 10, "{s}");
    assert_eq!(s["video_frames"].as_u64(), Some(0), "{s}");
    assert_eq!(s["packets"].as_u64(), Some(0), "{s}");
    // Logged once per stream, not per packet.
    assert_eq!(node.log_text().matches("wrong SSRC refused").count(), 1);
}

/// Sends a file's bytes as RTP payloads in order (`chunk` bytes each), paced lightly.
async fn send_raw_rtp(target: std::net::SocketAddr, ssrc: u32, pt: u8, data: &[u8], chunk: usize) {
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut pkt = Vec::new();
    for (i, c) in data.chunks(chunk).enumerate() {
        pkt.clear();
        ::media::rtp::RtpPacket::write_header(&mut pkt, pt, false, i as u16, (i as u32) * 900, ssrc);
        pkt.extend_from_slice(c);
        sock.send_to(&pkt, target).await.unwrap();
        if i % 8 == 0 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

async fn capture_raw(node: &MediaProc, id: &str, ssrc: u32, pt: u8, file: &str, chunk: usize) -> Vec<(String, u64, u64, u64)> {
    let opened = node.open(id, Some(ssrc), "udp", None).await;
    let flv = capture_flv(node, id).await;
    let target = format!("127.0.0.1:{}", opened["port"]).parse().unwrap();
    send_raw_rtp(target, ssrc, pt, &std::fs::read(fixture(file)).unwrap(), chunk).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    eprintln!("{id}: {}", node.stream(id).await);
    node.close(id).await;
    let flv = flv.await.unwrap();
    let path = std::env::temp_dir().join(format!("gbc-{id}-{}.flv", std::process::id()));
    std::fs::write(&path, flv).unwrap();
    ffprobe_frames(path.to_str().unwrap(), &[])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ts_over_rtp_ffmpeg_ps_without_psm_and_gstreamer_ps() {
    let node = MediaProc::start(None, &[]);
    // MPEG-TS (PT 33, seven TS packets per RTP packet), demuxed by mpeg2ts-reader.
    let ts = capture_raw(&node, "ts1", 33, 33, "h264_aac_4s.ts", 7 * 188).await;
    assert!(ts.contains(&("h264".into(), 640, 360, 100)), "TS: {ts:?}");
    let ts_audio = ts.iter().find(|s| s.0 == "aac").map(|s| s.3).unwrap_or(0);
    assert!(ts_audio >= 170, "TS audio: {ts:?}");
    // ffmpeg's own PS (vob): no PSM, video on stream id 0xE2, several frames per PTS.
    let ps = capture_raw(&node, "vob1", 34, 96, "h264_4s.vob", 1400).await;
    assert_eq!(ps, vec![("h264".into(), 640, 360, 100)], "PS without PSM");
    // GStreamer's mpegpsmux, an independent muxer.
    let gst = capture_raw(&node, "gst1", 35, 96, "gst_h264_4s.ps", 1400).await;
    assert_eq!(gst, vec![("h264".into(), 640, 360, 100)], "mpegpsmux PS");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn loss_and_reordering_are_counted_and_video_recovers() {
    // Also exercises polled UDP reading (a shared 10 ms tick instead of readiness).
    let node = MediaProc::start(None, &[("GBC_STREAM__UDP_POLL_MS", "10")]);
    let src = source("h264_640x360_4s.h264", None);
    let opened = node.open("lossy", Some(99), "udp", None).await;
    let flv = capture_flv(&node, "lossy").await;
    let target = format!("127.0.0.1:{}", opened["port"]).parse().unwrap();
    // Four loops (~450 packets) with seeded dice: the same losses and swaps every run (random
    // ones once gave a CI run no loss at all).
    let impairment = Impairment { loss: 0.02, reorder: 0.05, seed: Some(28181) };
    let opts = SendOptions { transport: SendTransport::Udp, target, ssrc: 99, loops: 4, impairment };
    media::send(&src, opts, CancellationToken::new()).await.unwrap();
    // Statistics are snapshotted once a second: wait for the last one.
    let counted = support::eventually(Duration::from_secs(5), || async {
        let s = node.stream("lossy").await;
        s["lost"].as_u64() > Some(0) && s["reordered"].as_u64() > Some(0)
    })
    .await;
    // Stats are snapshotted once a second: let the last packets be counted.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let s = node.stream("lossy").await;
    assert!(counted, "{s}");
    node.close("lossy").await;
    let (lost, reordered) = (s["lost"].as_u64().unwrap(), s["reordered"].as_u64().unwrap());
    assert!(lost > 0 && reordered > 0, "{s}");
    let flv = flv.await.unwrap();
    let path = std::env::temp_dir().join(format!("gbc-lossy-{}.flv", std::process::id()));
    std::fs::write(&path, flv).unwrap();
    // The output decodes: ffmpeg reads it through to the end, and each loss costs at most the
    // rest of its GOP (25 frames): output resumes at the next key frame. How many packets the
    // 2 % loss hits varies from run to run, so the bound follows the losses counted.
    let probe = ffprobe_frames(path.to_str().unwrap(), &[]);
    let frames = probe.iter().find(|p| p.0 == "h264").map(|p| p.3).unwrap_or(0);
    let hits = s["recoveries"].as_u64().unwrap().max(lost);
    let floor = 400u64.saturating_sub(26 * hits).max(100);
    assert!((floor..400).contains(&frames), "decoded {frames} of 400 after {hits} losses (floor {floor}) with {s}");
    let st = Command::new("ffmpeg").args(["-v", "error", "-i"]).arg(&path).args(["-f", "null", "-"]).status().unwrap();
    assert!(st.success());
    assert!(s["recoveries"].as_u64().unwrap() > 0, "{s}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rtmp_push_to_nginx_carries_every_frame_and_reconnects() {
    let mut nginx = support::NginxRtmp::start();
    let push = format!("rtmp://127.0.0.1:{}/live/{{stream_id}}", nginx.port);
    let node = MediaProc::start(None, &[("GBC_STREAM__RTMP_PUSH_URL", push.as_str())]);
    let src = source("h264_640x360_4s.h264", Some("aac_4s.aac"));
    let opened = node.open("push1", Some(5), "udp", None).await;
    let target: std::net::SocketAddr = format!("127.0.0.1:{}", opened["port"]).parse().unwrap();
    media::send(
        &src,
        SendOptions { transport: SendTransport::Udp, target, ssrc: 5, loops: 1, impairment: Impairment::default() },
        CancellationToken::new(),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    node.close("push1").await;
    // nginx finishes the recording when the publisher goes.
    let rec = nginx.recording("push1");
    let mut probe = Vec::new();
    for _ in 0..50 {
        probe = ffprobe_frames(rec.to_str().unwrap(), &[]);
        if probe.iter().any(|p| p.0 == "h264" && p.3 == 100) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(probe.contains(&("h264".into(), 640, 360, 100)), "recorded by nginx: {probe:?}\n{}", node.log_text());
    let aac = probe.iter().find(|p| p.0 == "aac").map(|p| p.3);
    assert_eq!(aac, Some(audio_frames(&src)), "{probe:?}");

    // The target drops mid-stream and comes back: the pusher reconnects by itself and starts
    // again on a key frame.
    let opened = node.open("push2", Some(6), "udp", None).await;
    let target: std::net::SocketAddr = format!("127.0.0.1:{}", opened["port"]).parse().unwrap();
    let src2 = src.clone();
    let sending = tokio::spawn(async move {
        media::send(
            &src2,
            SendOptions { transport: SendTransport::Udp, target, ssrc: 6, loops: 3, impairment: Impairment::default() },
            CancellationToken::new(),
        )
        .await
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    let port = nginx.port;
    nginx.stop();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let nginx = support::NginxRtmp::start_on(port);
    sending.await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    node.close("push2").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let probe = ffprobe_frames(nginx.recording("push2").to_str().unwrap(), &[]);
    let frames = probe.iter().find(|p| p.0 == "h264").map(|p| p.3).unwrap_or(0);
    // 12 s sent, 3 s before the restart and ≤ 2 s of backoff after it.
    assert!(frames >= 150, "pushed after the target came back: {probe:?}\n{}", node.log_text());
}

async fn next_event(sub: &mut cluster::store::Subscription, stream: &str, event: &str, within: Duration) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let msg = tokio::time::timeout_at(deadline, sub.recv())
            .await
            .unwrap_or_else(|_| panic!("no {event} event for {stream}"))
            .expect("subscription");
        let v: serde_json::Value = serde_json::from_str(&msg).unwrap();
        if v["stream_id"] == stream && v["event"] == event {
            return v;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn node_record_heartbeat_and_stream_events_in_redis() {
    use cluster::store::Store;
    use cluster::wire::STREAM_EVENTS;
    let redis = testkit::RedisServer::start().expect("redis-server");
    let store = cluster::store::RedisStore::connect(&redis.url()).await.unwrap();
    let mut events = store.subscribe(STREAM_EVENTS).await.unwrap();
    let mut node = MediaProc::start(
        Some(&redis.url()),
        &[
            ("GBC_STREAM__NO_DATA_TIMEOUT_SECS", "2"),
            ("GBC_STREAM__HEARTBEAT_SECS", "1"),
            ("GBC_STREAM__HEARTBEAT_TTL_SECS", "3"),
            ("GBC_STREAM__NO_VIEWER_EVENT_SECS", "1"),
            ("GBC_STREAM__MAX_STREAMS", "7"),
        ],
    );
    let node_id = format!("media-{}", node.http_port);
    let record = || async {
        let nodes = store.list_nodes("media").await.unwrap();
        nodes.into_iter().find(|(id, _)| *id == node_id).map(|(_, r)| serde_json::from_str::<serde_json::Value>(&r).unwrap())
    };
    let ok = support::eventually(Duration::from_secs(5), || async { record().await.is_some() }).await;
    assert!(ok, "node never registered");
    let r = record().await.unwrap();
    assert_eq!((r["max_streams"].as_u64(), r["public_ip"].as_str()), (Some(7), Some("127.0.0.1")));
    assert_eq!(r["api_url"].as_str(), Some(node.url("").as_str()));

    // A receiver that never gets data closes by itself and says why.
    node.open("quiet1", Some(1), "udp", None).await;
    next_event(&mut events, "quiet1", "opened", Duration::from_secs(2)).await;
    next_event(&mut events, "quiet1", "no_data", Duration::from_secs(5)).await;
    let closed = next_event(&mut events, "quiet1", "closed", Duration::from_secs(1)).await;
    assert_eq!(closed["reason"], "no_data");
    assert_eq!(closed["node"], node_id.as_str());
    assert_eq!(support::get_json(&node.url("/api/v1/streams/quiet1")).await.0, 404);

    // A live stream: started, counted in the node's load, no viewers reported.
    let src = source("h264_640x360_4s.h264", None);
    let opened = node.open("busy1", Some(2), "udp", None).await;
    let target: std::net::SocketAddr = format!("127.0.0.1:{}", opened["port"]).parse().unwrap();
    let stop = CancellationToken::new();
    let s2 = stop.clone();
    let sending = tokio::spawn(async move {
        media::send(&src, SendOptions { transport: SendTransport::Udp, target, ssrc: 2, loops: 0, impairment: Impairment::default() }, s2)
            .await
    });
    next_event(&mut events, "busy1", "started", Duration::from_secs(3)).await;
    next_event(&mut events, "busy1", "no_viewers", Duration::from_secs(5)).await;
    let ok = support::eventually(Duration::from_secs(5), || async {
        record().await.is_some_and(|r| r["streams"] == 1 && r["mbps"].as_f64() > Some(0.0))
    })
    .await;
    assert!(ok, "load not reported: {:?}", record().await);
    stop.cancel();
    sending.await.unwrap().unwrap();

    // A dead node drops out of selection by itself (TTL), without saying goodbye.
    node.kill();
    let gone = support::eventually(Duration::from_secs(6), || async { record().await.is_none() }).await;
    assert!(gone, "dead node still listed");

    // A node stopped cleanly closes its streams with reason `shutdown` and leaves at once.
    let mut node = MediaProc::start(Some(&redis.url()), &[("GBC_STREAM__HEARTBEAT_SECS", "1"), ("GBC_STREAM__HEARTBEAT_TTL_SECS", "60")]);
    let node_id = format!("media-{}", node.http_port);
    let listed = support::eventually(Duration::from_secs(5), || async {
        store.list_nodes("media").await.unwrap().iter().any(|(id, _)| *id == node_id)
    })
    .await;
    assert!(listed);
    node.open("stopping1", Some(3), "udp", None).await;
    next_event(&mut events, "stopping1", "opened", Duration::from_secs(2)).await;
    assert!(node.terminate().success());
    let closed = next_event(&mut events, "stopping1", "closed", Duration::from_secs(2)).await;
    assert_eq!(closed["reason"], "shutdown");
    // Gone without waiting for its 60 s TTL.
    assert!(!store.list_nodes("media").await.unwrap().iter().any(|(id, _)| *id == node_id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn single_port_mode_demultiplexes_cameras_by_ssrc() {
    let port = testkit::free_port();
    let node = MediaProc::start(None, &[("GBC_STREAM__SINGLE_PORT", port.to_string().as_str())]);
    let src = source("h264_640x360_4s.h264", None);
    // A stray camera whose SSRC no stream expects sends to the same port the whole time.
    let stop = CancellationToken::new();
    let (s2, src2) = (stop.clone(), src.clone());
    let target = format!("127.0.0.1:{port}").parse().unwrap();
    let stray = tokio::spawn(async move {
        media::send(
            &src2,
            SendOptions { transport: SendTransport::Udp, target, ssrc: 424242, loops: 0, impairment: Impairment::default() },
            s2,
        )
        .await
    });
    let (a, b) =
        tokio::join!(play_once(&node, "sp1", 301, SendTransport::Udp, &src), play_once(&node, "sp2", 302, SendTransport::Udp, &src));
    stop.cancel();
    stray.await.unwrap().unwrap();
    assert_eq!(a, vec![("h264".to_owned(), 640, 360, 100)]);
    assert_eq!(b, vec![("h264".to_owned(), 640, 360, 100)]);
    let c = reqwest::Client::new();
    let r =
        c.post(node.url("/api/v1/receivers")).json(&serde_json::json!({"stream_id": "nossrc", "transport": "udp"})).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let opened = node.open("sp3", Some(303), "udp", None).await;
    assert_eq!(opened["port"].as_u64(), Some(u64::from(port)));
    let r = c
        .post(node.url("/api/v1/receivers"))
        .json(&serde_json::json!({"stream_id": "sp4", "ssrc": 303, "transport": "udp"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 409);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_slow_viewer_is_dropped_and_never_slows_the_others() {
    let node = MediaProc::start(None, &[("GBC_STREAM__VIEWER_QUEUE_TAGS", "16")]);
    // 4 Mbit/s: more than the socket and HTTP write buffers of the stalled player can absorb.
    let src = source("h264_1280x720_4mbps_4s.h264", Some("aac_4s.aac"));
    let opened = node.open("slow1", Some(8), "udp", None).await;
    // A player that stops reading: tiny receive window, never reads after the request.
    let slow = {
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        s.set_recv_buffer_size(2048).unwrap();
        s.connect(&std::net::SocketAddr::from(([127, 0, 0, 1], node.http_port)).into()).unwrap();
        let mut t: std::net::TcpStream = s.into();
        use std::io::Write;
        t.write_all(b"GET /live/slow1.flv HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        t
    };
    node.wait_viewers("slow1", 1).await;
    let fast = attach_ffprobe(&node, "slow1").await;
    let target = format!("127.0.0.1:{}", opened["port"]).parse().unwrap();
    media::send(
        &src,
        SendOptions { transport: SendTransport::Udp, target, ssrc: 8, loops: 1, impairment: Impairment::default() },
        CancellationToken::new(),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    // The stalled player was dropped; the other one got everything.
    assert_eq!(node.stream("slow1").await["viewers"].as_u64(), Some(1));
    assert!(node.log_text().contains("HTTP-FLV viewer stalled a whole queue behind: dropped"));
    node.close("slow1").await;
    let r = tokio::task::spawn_blocking(move || probe_result(fast)).await.unwrap();
    assert!(r.contains(&("h264".into(), 1280, 720, 100)), "{r:?}");
    drop(slow);
}

/// nginx-rtmp predates Enhanced RTMP (it reads the frame type from four bits, so `0x90` is no
/// key frame and its recorder waits forever); `hevc_flv = "codec12"` is for such targets.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn h265_push_to_nginx_as_codec_12() {
    let nginx = support::NginxRtmp::start();
    let push = format!("rtmp://127.0.0.1:{}/live/{{stream_id}}", nginx.port);
    let node = MediaProc::start(None, &[("GBC_STREAM__RTMP_PUSH_URL", push.as_str()), ("GBC_STREAM__HEVC_FLV", "codec12")]);
    let src = source("h265_320x240_2s.h265", None);
    let opened = node.open("hevcpush", Some(9), "udp", None).await;
    let target = format!("127.0.0.1:{}", opened["port"]).parse().unwrap();
    // Give the pusher time to connect before the first (key) frame.
    tokio::time::sleep(Duration::from_millis(300)).await;
    media::send(
        &src,
        SendOptions { transport: SendTransport::Udp, target, ssrc: 9, loops: 1, impairment: Impairment::default() },
        CancellationToken::new(),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    node.close("hevcpush").await;
    let rec = nginx.recording("hevcpush");
    let mut frames = 0;
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let flv = std::fs::read(&rec).unwrap_or_default();
        let (annexb, n) = hevc_annexb(&flv);
        frames = n;
        if n == 50 {
            let path = std::env::temp_dir().join(format!("gbc-hevcpush-{}.h265", std::process::id()));
            std::fs::write(&path, annexb).unwrap();
            assert_eq!(ffprobe_frames(path.to_str().unwrap(), &[]), vec![("hevc".to_owned(), 320, 240, 50)]);
            return;
        }
    }
    panic!("nginx recorded {frames} HEVC frames of 50");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fragmented_mp4_for_browsers_carries_every_frame_from_one_muxer_per_stream() {
    let node = MediaProc::start(None, &[]);
    let src = source("h264_640x360_4s.h264", Some("aac_4s.aac"));
    let opened = node.open("mp4a", Some(300_000_001), "udp", None).await;
    // Two viewers of the fMP4 form: one muxer serves both (the hub sees a single viewer).
    let url = node.url("/live/mp4a.mp4");
    let probes: Vec<_> = (0..2)
        .map(|_| {
            Command::new("ffprobe")
                .args(["-v", "error"])
                .args(support::FFPROBE_COUNT)
                .arg(&url)
                .stdout(Stdio::piped())
                .spawn()
                .expect("ffprobe")
        })
        .collect();
    node.wait_viewers("mp4a", 1).await;
    let target = format!("{}:{}", opened["ip"].as_str().unwrap(), opened["port"]).parse().unwrap();
    let opts = SendOptions { transport: SendTransport::Udp, target, ssrc: 300_000_001, loops: 1, impairment: Impairment::default() };
    media::send(&src, opts, CancellationToken::new()).await.expect("send");
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(node.stream("mp4a").await["viewers"], 1, "one fMP4 muxer reads the hub for both viewers");
    assert_eq!(node.close("mp4a").await, 200);
    for probe in probes {
        let r = tokio::task::spawn_blocking(move || probe_result(probe)).await.unwrap();
        assert!(r.contains(&("h264".into(), 640, 360, 100)), "fMP4 video: {r:?}\n{}", node.log_text());
        let audio = r.iter().find(|s| s.0 == "aac").unwrap_or_else(|| panic!("no aac in {r:?}"));
        // The last audio frames may still wait for their duration when the stream closes.
        assert!(audio.3 + 3 >= audio_frames(&src) && audio.3 <= audio_frames(&src), "fMP4 audio: {r:?}");
    }
    // A stream that is not there, and a form that is not served.
    let r = reqwest::get(node.url("/live/nope.mp4")).await.unwrap();
    assert_eq!(r.status().as_u16(), 404);
    let r = reqwest::get(node.url("/live/mp4a.avi")).await.unwrap();
    assert_eq!(r.status().as_u16(), 404);
}

/// HLS: the playlist lists one-GOP fMP4 segments cut at key frames from the stream's one fMP4
/// feed; a segment with its init decodes on its own (ffprobe), ffmpeg follows the live
/// playlist, and the window slides with sequence numbers that only go up.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hls_serves_one_gop_fmp4_segments_that_decode_and_a_live_playlist() {
    let node = MediaProc::start(None, &[]);
    let src = source("h264_640x360_4s.h264", Some("aac_4s.aac"));
    let (stop, sending) = node.feed_looping("hls1", 300_000_011, src, 10).await;

    let get = |path: String| async move {
        let r = reqwest::get(path).await.unwrap();
        let status = r.status().as_u16();
        let ty = r.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
        (status, ty, r.bytes().await.unwrap())
    };
    let (status, ty, body) = get(node.url("/live/hls1.m3u8")).await;
    assert_eq!((status, ty.as_str()), (200, "application/vnd.apple.mpegurl"), "{}", String::from_utf8_lossy(&body));
    let playlist = String::from_utf8(body.to_vec()).unwrap();
    assert!(playlist.starts_with("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:1\n"), "{playlist}");
    assert!(playlist.contains("#EXT-X-MAP:URI=\"hls1.1.init.mp4\""), "{playlist}");
    // The fixture's GOP is 1 s at 25 fps: each segment is one GOP.
    assert!(playlist.contains("#EXTINF:1.000,\nhls1.0.m4s\n"), "{playlist}");
    assert!(playlist.matches("#EXTINF:").count() >= 3, "players start three segments from the end: {playlist}");

    // A segment and its init, on their own, are 25 frames of 640x360 H.264 and AAC.
    let (_, _, init) = get(node.url("/live/hls1.1.init.mp4")).await;
    let (status, ty, seg) = get(node.url("/live/hls1.0.m4s")).await;
    assert_eq!((status, ty.as_str()), (200, "video/mp4"));
    let file = std::env::temp_dir().join(format!("gbc-hls-{}.mp4", std::process::id()));
    std::fs::write(&file, [init.as_ref(), seg.as_ref()].concat()).unwrap();
    let r = ffprobe_frames(file.to_str().unwrap(), &[]);
    assert!(r.contains(&("h264".into(), 640, 360, 25)), "segment 0: {r:?}");
    assert!(r.iter().any(|s| s.0 == "aac" && s.3 >= 40), "segment 0 audio: {r:?}");
    let decoded = Command::new("ffmpeg").args(["-v", "error", "-i"]).arg(&file).args(["-f", "null", "-"]).output().unwrap();
    assert!(decoded.status.success() && decoded.stderr.is_empty(), "decodes cleanly: {}", String::from_utf8_lossy(&decoded.stderr));
    let _ = std::fs::remove_file(&file);

    // ffmpeg follows the live playlist for 3 s: video of the camera's size all the way.
    let out = std::env::temp_dir().join(format!("gbc-hls-live-{}.mp4", std::process::id()));
    let url = node.url("/live/hls1.m3u8");
    let copied = tokio::task::spawn_blocking({
        let out = out.clone();
        move || Command::new("ffmpeg").args(["-v", "error", "-y", "-i", &url, "-t", "3", "-c", "copy"]).arg(&out).output().unwrap()
    })
    .await
    .unwrap();
    assert!(copied.status.success(), "{}", String::from_utf8_lossy(&copied.stderr));
    let r = ffprobe_frames(out.to_str().unwrap(), &[]);
    let video = r.iter().find(|s| s.0 == "h264").unwrap_or_else(|| panic!("{r:?}"));
    assert!((video.1, video.2) == (640, 360) && (70..=80).contains(&video.3), "3 s of 25 fps: {r:?}");
    let _ = std::fs::remove_file(&out);

    // The window slides: later playlists start further on, sequence numbers only go up, and a
    // segment that slid out is gone.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (_, _, later) = get(node.url("/live/hls1.m3u8")).await;
    let later = String::from_utf8(later.to_vec()).unwrap();
    let seq = |p: &str| p.lines().find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:")).unwrap().parse::<u64>().unwrap();
    assert!(seq(&later) > seq(&playlist), "{later}");
    assert_eq!(later.matches("#EXTINF:").count(), 6, "{later}");
    assert_eq!(get(node.url("/live/hls1.0.m4s")).await.0, 404, "slid out of the window");
    assert_eq!(node.stream("hls1").await["viewers"], 1, "the packager reads the one fMP4 feed");
    assert_eq!(get(node.url("/live/nope.m3u8")).await.0, 404);
    stop.cancel();
    sending.await.unwrap().unwrap();
}
