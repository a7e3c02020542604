//! Pull sources: a camera's video taken by this node and served as any stream. The three kinds
//! of network camera — MJPEG over HTTP, MJPEG over RTSP, H.264/H.265 over RTSP — through the
//! clients of the `pull` crate:
//!
//! - H.264/H.265 over RTSP is remuxed to FLV tags into the stream's hub (`pull::remux`), so it
//!   plays as HTTP-FLV, RTMP, fMP4 and HLS, is pushed and has snapshots, like a GB stream;
//! - JPEG pictures (MJPEG over HTTP, JPEG over RTSP) go out as they came: `/live/{id}.mjpeg`
//!   passes them through without re-encoding and `/snap/{id}.jpg` answers the latest; asked
//!   for (`h264`), `source_h264` also encodes them into the hub.
//!
//! The source is reconnected with backoff (1 s doubling to `source_retry_max_secs`, back to 1 s
//! after a connection that played 30 s) for as long as the stream is open; viewers stay on the
//! stream across reconnections. Its status says what it is doing and what went wrong.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cluster::wire::{redact_url, SourceOpen, SourceState, SourceStatus, StreamEventKind};
use pull::mjpeg_http::{MjpegHttp, MjpegOptions, MjpegStats};
use pull::remux::Remuxer;
use pull::rtsp::{RtspOptions, RtspSource, RtspTransport};
use tokio::sync::watch;

use crate::hub::Hub;
use crate::mjpeg::{Part, Picture};
use crate::node::{Node, OpenError};
use crate::stream::{valid_stream_id, CloseReason, StreamEntry, Transport};

/// A connection that played this long starts the backoff over.
const GOOD_RUN: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    MjpegHttp,
    Rtsp,
}

impl SourceKind {
    pub fn of(url: &str) -> Option<Self> {
        let scheme = url.split_once("://")?.0.to_ascii_lowercase();
        match scheme.as_str() {
            "http" => Some(SourceKind::MjpegHttp),
            "rtsp" => Some(SourceKind::Rtsp),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::MjpegHttp => "mjpeg",
            SourceKind::Rtsp => "rtsp",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SourceOpenError {
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error("url must be http:// (MJPEG) or rtsp://, not {0:?}")]
    Scheme(String),
    #[error("rtsp_transport must be tcp or udp, not {0:?}")]
    Transport(String),
}

/// What a pulled stream has beyond a received one.
pub struct Pulled {
    /// As asked (credentials included: never serialized, never logged).
    open: SourceOpen,
    /// The URL without its password, as shown.
    url: String,
    pub kind: SourceKind,
    rtsp_transport: RtspTransport,
    /// Pictures as the camera sends them: what `/live/{id}.mjpeg` passes through and
    /// `/snap/{id}.jpg` answers with.
    pub pictures: watch::Sender<Picture>,
    /// The source gives JPEG pictures (known at once for HTTP, after DESCRIBE for RTSP).
    pub native_jpeg: AtomicBool,
    /// Viewers of the passed-through MJPEG (they are not hub viewers).
    pub mjpeg_viewers: AtomicUsize,
    numbered: AtomicU64,
    status: Mutex<SourceStatus>,
}

impl Pulled {
    pub fn status(&self) -> SourceStatus {
        self.status.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set(&self, f: impl FnOnce(&mut SourceStatus)) {
        f(&mut self.status.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// The newest picture the camera sent, if it sends pictures.
    pub fn latest_jpeg(&self) -> Option<Bytes> {
        self.pictures.borrow().as_ref().map(|p| p.jpeg.clone())
    }

    fn picture(&self, jpeg: Bytes) {
        let n = self.numbered.fetch_add(1, Ordering::Relaxed) + 1;
        self.pictures.send_replace(Some(Part::new(n, jpeg)));
    }
}

/// Holds one passthrough viewer in the count while it lives.
pub struct MjpegViewer(Arc<Pulled>);

impl MjpegViewer {
    pub fn new(pulled: &Arc<Pulled>) -> Self {
        pulled.mjpeg_viewers.fetch_add(1, Ordering::Relaxed);
        Self(pulled.clone())
    }
}

impl Drop for MjpegViewer {
    fn drop(&mut self) {
        self.0.mjpeg_viewers.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Node {
    /// Starts pulling `req.url` as stream `req.stream_id`. The same request again answers the
    /// running source (the caller may retry after a timeout).
    pub fn open_source(self: &Arc<Self>, req: SourceOpen) -> Result<SourceStatus, SourceOpenError> {
        if !valid_stream_id(&req.stream_id) {
            return Err(OpenError::BadStreamId.into());
        }
        let kind = SourceKind::of(&req.url).ok_or_else(|| SourceOpenError::Scheme(redact_url(&req.url)))?;
        let rtsp_transport = match req.rtsp_transport.as_deref() {
            None | Some("tcp") => RtspTransport::Tcp,
            Some("udp") => RtspTransport::Udp,
            Some(other) => return Err(SourceOpenError::Transport(other.to_owned())),
        };
        if let Some(e) = self.get(&req.stream_id) {
            return match &e.pull {
                Some(p) if p.open == req => Ok(p.status()),
                _ => Err(OpenError::Exists(req.stream_id.clone()).into()),
            };
        }
        let status = SourceStatus {
            stream_id: req.stream_id.clone(),
            url: redact_url(&req.url),
            kind: kind.as_str().into(),
            h264: req.h264,
            ..Default::default()
        };
        let pulled = Arc::new(Pulled {
            kind,
            rtsp_transport,
            pictures: watch::channel(None).0,
            native_jpeg: AtomicBool::new(kind == SourceKind::MjpegHttp),
            mjpeg_viewers: AtomicUsize::new(0),
            numbered: AtomicU64::new(0),
            status: Mutex::new(status.clone()),
            url: status.url.clone(),
            open: req,
        });
        let hub = Hub::new(self.cfg.viewer_queue_tags, self.cfg.gop_cache_bytes);
        // The node connects out to the camera: a TCP-active stream without a port of its own.
        let mut entry = StreamEntry::new(&pulled.open.stream_id, Transport::TcpActive, 0, None, hub, self.shutdown.child_token());
        entry.pull = Some(pulled.clone());
        let entry = Arc::new(entry);
        self.insert(&entry)?;
        tokio::spawn(run(self.clone(), entry.clone(), pulled.clone()));
        if pulled.open.h264 {
            tokio::spawn(crate::source_h264::run(entry.clone(), pulled.clone(), self.cfg.clone()));
        }
        crate::push::spawn(self, &entry);
        self.event(StreamEventKind::Opened, &entry.id, None);
        tracing::info!(stream = %entry.id, url = %status.url, kind = kind.as_str(), "pull source opened");
        Ok(status)
    }

    /// Every pull source on this node.
    pub fn sources(&self) -> Vec<SourceStatus> {
        let mut v: Vec<SourceStatus> = self.list_entries().iter().filter_map(|e| e.pull.as_ref().map(|p| p.status())).collect();
        v.sort_by(|a, b| a.stream_id.cmp(&b.stream_id));
        v
    }
}

/// Pulls until the stream is closed (or, on demand, left unwatched for its idle time).
async fn run(node: Arc<Node>, entry: Arc<StreamEntry>, pulled: Arc<Pulled>) {
    let idle = Duration::from_secs(pulled.open.idle_secs);
    let reason = tokio::select! {
        _ = pull_with_retries(&node, &entry, &pulled) => CloseReason::Api,
        _ = unwatched_for(&entry, idle), if !idle.is_zero() => CloseReason::Idle,
    };
    if reason == CloseReason::Idle {
        tracing::info!(stream = %entry.id, ?idle, "on-demand source closed: nobody watched it");
    }
    node.finish(&entry, reason);
}

/// Resolves once nobody has wanted the stream for `idle`.
async fn unwatched_for(entry: &StreamEntry, idle: Duration) {
    let mut since = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if entry.wanted() {
            since = Instant::now();
        } else if since.elapsed() >= idle {
            return;
        }
    }
}

/// Pulls until the stream is cancelled, reconnecting with backoff.
async fn pull_with_retries(node: &Arc<Node>, entry: &Arc<StreamEntry>, pulled: &Arc<Pulled>) {
    let cfg = &node.cfg;
    let max_backoff = Duration::from_secs(cfg.source_retry_max_secs.max(1));
    let mut backoff = Duration::from_secs(1);
    // One remuxer for the stream's life: its timeline runs on across reconnections.
    let mut remux = Remuxer::default();
    let mut totals = MjpegStats::default();
    loop {
        pulled.set(|s| {
            s.state = SourceState::Connecting;
            s.connects += 1;
            s.retry_in_ms = None;
        });
        let began = Instant::now();
        let session = Session { node, entry, pulled, meter: Meter::new(), playing: false };
        let ended = tokio::select! {
            _ = entry.cancel.cancelled() => break,
            e = session.pull(&mut remux, &mut totals) => e,
        };
        if began.elapsed() >= GOOD_RUN {
            backoff = Duration::from_secs(1);
        }
        tracing::warn!(stream = %entry.id, error = %ended, retry_in = ?backoff, "pull source stopped; reconnecting");
        pulled.set(|s| {
            s.state = SourceState::Retrying;
            s.failures += 1;
            s.last_error = Some(ended);
            s.retry_in_ms = Some(backoff.as_millis() as u64);
            s.playing_since_ms = None;
        });
        tokio::select! {
            _ = entry.cancel.cancelled() => break,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(max_backoff);
        remux.discontinuity();
    }
}

/// Frames and bytes a second, for the stream's statistics.
struct Meter {
    since: Instant,
    frames: u64,
    bytes: u64,
}

impl Meter {
    fn new() -> Self {
        Self { since: Instant::now(), frames: 0, bytes: 0 }
    }
}

/// One connection to the source.
struct Session<'a> {
    node: &'a Arc<Node>,
    entry: &'a Arc<StreamEntry>,
    pulled: &'a Arc<Pulled>,
    meter: Meter,
    /// Media has come on this connection.
    playing: bool,
}

impl Session<'_> {
    fn stall(&self) -> Duration {
        Duration::from_secs(self.node.cfg.source_stall_secs.max(1))
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(self.node.cfg.source_connect_timeout_secs.max(1))
    }

    async fn pull(mut self, remux: &mut Remuxer, totals: &mut MjpegStats) -> String {
        match self.pulled.kind {
            SourceKind::MjpegHttp => self.mjpeg(totals).await,
            SourceKind::Rtsp => self.rtsp(remux).await,
        }
    }

    /// Media arrived: playing (and, the first time, the stream's `started`). True once a
    /// second, when the figures are due ([`Session::flush`]): they are not written per frame.
    fn media(&mut self, frames: u64, bytes: u64) -> bool {
        if !self.playing {
            self.playing = true;
            self.pulled.set(|s| {
                s.state = SourceState::Playing;
                s.last_error = None;
                s.playing_since_ms = Some(kit::clock::now_ms());
            });
            if !self.entry.started.swap(true, Ordering::Relaxed) {
                self.node.event(StreamEventKind::Started, &self.entry.id, None);
            }
        }
        self.meter.frames += frames;
        self.meter.bytes += bytes;
        self.meter.since.elapsed() >= Duration::from_secs(1)
    }

    /// Writes what came since the last time: the stream's rate (and its video, when known) and
    /// the source's counts (`count` adds frames and bytes where this kind of source keeps them).
    fn flush(&mut self, video: Option<(String, u32, u32)>, count: impl FnOnce(&mut SourceStatus, u64, u64)) {
        let secs = self.meter.since.elapsed().as_secs_f64().max(0.001);
        let (frames, bytes) = (self.meter.frames, self.meter.bytes);
        {
            let mut st = self.entry.stats.lock().unwrap_or_else(|e| e.into_inner());
            st.peer.get_or_insert_with(|| self.pulled.url.clone());
            if let Some((codec, w, h)) = video {
                st.video_codec = Some(codec);
                if w > 0 {
                    (st.width, st.height) = (Some(w), Some(h));
                }
            }
            st.fps = Some((frames as f64 / secs * 10.0).round() / 10.0);
            st.bitrate_kbps = (bytes as f64 * 8.0 / 1000.0 / secs) as u64;
            st.video_frames += frames;
            st.bytes += bytes;
        }
        self.pulled.set(|s| count(s, frames, bytes));
        self.meter = Meter::new();
    }

    async fn mjpeg(&mut self, totals: &mut MjpegStats) -> String {
        let cfg = &self.node.cfg;
        let opts =
            MjpegOptions { timeout: self.timeout(), max_picture: cfg.source_max_picture_bytes, max_header: cfg.source_max_header_bytes };
        let open = &self.pulled.open;
        let (mut cam, info) = match MjpegHttp::open(&open.url, &open.username, &open.password, opts).await {
            Ok(c) => c,
            Err(e) => return e.to_string(),
        };
        tracing::info!(stream = %self.entry.id, content_type = %info.content_type, chunked = info.chunked, "MJPEG source connected");
        self.pulled.set(|s| s.video = Some("jpeg".into()));
        let stall = self.stall();
        let mut shown = Instant::now();
        let ended = loop {
            let next = cam.next(stall).await;
            if shown.elapsed() >= Duration::from_millis(500) || next.is_err() {
                shown = Instant::now();
                show(self.pulled, totals, cam.stats());
            }
            match next {
                Ok(jpeg) => {
                    if self.media(1, jpeg.len() as u64) {
                        // Counted by the client (`show`).
                        self.flush(jpeg_video(&jpeg), |_, _, _| {});
                    }
                    self.pulled.picture(jpeg);
                }
                Err(e) => break e.to_string(),
            }
        };
        add(totals, cam.stats());
        ended
    }

    async fn rtsp(&mut self, remux: &mut Remuxer) -> String {
        let open = &self.pulled.open;
        let opts = RtspOptions { timeout: self.timeout(), transport: self.pulled.rtsp_transport, allow_jpeg: true };
        let (mut src, info) = match RtspSource::open(&open.url, &open.username, &open.password, opts, remux).await {
            Ok(s) => s,
            Err(e) => return e.to_string(),
        };
        tracing::info!(stream = %self.entry.id, video = %info.video, audio = ?info.audio, "RTSP source connected");
        self.pulled.native_jpeg.store(src.is_jpeg(), Ordering::Relaxed);
        self.pulled.set(|s| s.video = Some(info.video.clone()));
        let stall = self.stall();
        let mut out = Vec::new();
        let (mut frames_at, mut bytes_at) = (remux.stats.video_frames, remux.stats.bytes);
        let pictures = |s: &mut SourceStatus, n: u64, b: u64| {
            s.pictures += n;
            s.bytes += b;
        };
        let frames = |s: &mut SourceStatus, n: u64, b: u64| {
            s.frames += n;
            s.bytes += b;
        };
        loop {
            match src.next(stall, remux, &mut out).await {
                Ok(Some(jpeg)) => {
                    if self.media(1, jpeg.len() as u64) {
                        self.flush(jpeg_video(&jpeg), pictures);
                    }
                    self.pulled.picture(jpeg);
                }
                Ok(None) => {
                    for tag in out.drain(..) {
                        self.entry.hub.publish(tag);
                    }
                    let (n, b) = (remux.stats.video_frames - frames_at, remux.stats.bytes - bytes_at);
                    (frames_at, bytes_at) = (remux.stats.video_frames, remux.stats.bytes);
                    if n + b > 0 && self.media(n, b) {
                        let video = remux.video_config().map(|v| (format!("{:?}", v.codec), v.width, v.height));
                        self.flush(video, frames);
                    }
                }
                Err(e) => {
                    // What came since the last second's figures still counts.
                    if src.is_jpeg() {
                        self.flush(None, pictures);
                    } else {
                        self.flush(None, frames);
                    }
                    return e.to_string();
                }
            }
        }
    }
}

/// What a JPEG says of the video, for the stream's figures.
fn jpeg_video(jpeg: &[u8]) -> Option<(String, u32, u32)> {
    let (w, h) = media::jpeg::dimensions(jpeg).unwrap_or((0, 0));
    Some(("Jpeg".to_owned(), u32::from(w), u32::from(h)))
}

/// The MJPEG counters in the status: what earlier connections counted plus this one's.
fn show(pulled: &Pulled, totals: &MjpegStats, now: &MjpegStats) {
    pulled.set(|s| {
        s.pictures = totals.pictures + now.pictures;
        s.bytes = totals.bytes + now.bytes;
        s.garbage_bytes = totals.garbage_bytes + now.garbage_bytes;
        s.oversize = totals.oversize + now.oversize;
        s.not_jpeg = totals.not_jpeg + now.not_jpeg;
        s.long_headers = totals.long_headers + now.long_headers;
        if now.last_problem.is_some() {
            s.last_problem.clone_from(&now.last_problem);
        }
    });
}

fn add(totals: &mut MjpegStats, now: &MjpegStats) {
    totals.pictures += now.pictures;
    totals.bytes += now.bytes;
    totals.garbage_bytes += now.garbage_bytes;
    totals.oversize += now.oversize;
    totals.not_jpeg += now.not_jpeg;
    totals.long_headers += now.long_headers;
}
