//! A stream on this node: its shared entry (what the API and viewers see) and the worker that
//! owns its pipeline (what the receiver task drives).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::hub::Hub;
use crate::pipeline::{Pipeline, Refused};

/// How the camera sends RTP to this node (the receiver API's `transport`).
pub use cluster::wire::MediaTransport as Transport;

/// Why a receiver closed (reported in its `closed` event).
pub use cluster::wire::CloseReason;

/// Ids travel in URLs and RTMP paths: keep them to a safe alphabet.
pub use cluster::wire::valid_stream_id;

#[derive(Debug, Clone, Default, Serialize)]
pub struct StreamStats {
    pub container: Option<crate::pipeline::Container>,
    pub ssrc: Option<u32>,
    pub peer: Option<String>,
    pub video_codec: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub fps: Option<f64>,
    pub audio_codec: Option<String>,
    pub bitrate_kbps: u64,
    pub packets: u64,
    pub bytes: u64,
    pub lost: u64,
    pub reordered: u64,
    pub duplicates: u64,
    pub late: u64,
    pub wrong_ssrc: u64,
    pub wrong_source: u64,
    pub malformed: u64,
    pub video_frames: u64,
    pub audio_frames: u64,
    pub recoveries: u64,
    /// Playback speed the output timeline is scaled by (1 for live).
    pub scale: f64,
    /// Source time since the last timeline mark (a playback's start or seek), milliseconds.
    pub since_mark_ms: u64,
    /// Source jumps the output timeline smoothed over (seeks, clock resets).
    pub timeline_jumps: u64,
    /// The latest source timestamp, milliseconds.
    pub source_ms: u64,
    pub paused: bool,
}

pub struct StreamEntry {
    pub id: String,
    pub transport: Transport,
    pub port: u16,
    pub ssrc: Option<u32>,
    pub hub: Hub,
    pub created: Instant,
    pub created_ms: u64,
    pub cancel: CancellationToken,
    /// TCP active: where to connect (from the open request or a later `connect`).
    pub peer: watch::Sender<Option<SocketAddr>>,
    pub stats: Mutex<StreamStats>,
    /// Media seen: the "started" event was sent.
    pub started: AtomicBool,
    /// Last time a viewer was attached, for the no-viewer event.
    pub last_viewer: Mutex<Instant>,
    /// RTMP push tasks subscribed to the hub (not viewers).
    pub pushers: AtomicUsize,
    /// The RTMP push is connected and publishing.
    pub pushing: AtomicBool,
    /// Per-stream override of `no_viewer_event_secs` (0: the node's setting), set by whoever
    /// opened it (the sip-server's on-demand timeout).
    pub no_viewer_secs: std::sync::atomic::AtomicU64,
    /// A connected RTMP push counts as a viewer (the stream is wanted by the push target).
    pub push_holds_open: AtomicBool,
    /// The SSRC the camera's SDP answer named, when not the one we offered (`NO_SSRC` if none):
    /// some cameras stream with their own. Packets with it are then accepted too.
    pub answered_ssrc: std::sync::atomic::AtomicU64,
    /// The fMP4 muxer while a browser watches that form (`fmp4_feed`).
    pub fmp4: Mutex<std::sync::Weak<crate::fmp4_feed::Fmp4Feed>>,
    /// The HLS packager while players poll its playlist (`hls`).
    pub hls: Mutex<std::sync::Weak<crate::hls::Hls>>,
    /// The MJPEG encoder while a viewer watches that form (`mjpeg`).
    pub mjpeg: Mutex<std::sync::Weak<crate::mjpeg::MjpegFeed>>,
    /// The latest snapshot: its key frame's timestamp and its shared decode (`snapshot`).
    pub picture: Mutex<Option<crate::snapshot::Picture>>,
    /// What the sip-server steering a playback asks of the output timeline (`timeline` API),
    /// applied by the worker at its next tick.
    pub steer: TimelineSteer,
    /// A stream pulled from a camera (`sources`), not received over RTP.
    pub pull: Option<Arc<crate::sources::Pulled>>,
}

/// Playback steering: speed, a mark to count the position from, and pause (no media is then
/// expected, so the no-data timeout waits).
#[derive(Debug)]
pub struct TimelineSteer {
    pub scale_milli: std::sync::atomic::AtomicU32,
    pub marks: std::sync::atomic::AtomicU64,
    pub paused: AtomicBool,
}

impl Default for TimelineSteer {
    fn default() -> Self {
        Self {
            scale_milli: std::sync::atomic::AtomicU32::new(1000),
            marks: std::sync::atomic::AtomicU64::new(0),
            paused: AtomicBool::new(false),
        }
    }
}

/// `StreamEntry::answered_ssrc` when the camera kept ours.
pub const NO_SSRC: u64 = u64::MAX;

impl StreamEntry {
    /// A stream with nothing in it yet.
    pub fn new(id: &str, transport: Transport, port: u16, ssrc: Option<u32>, hub: Hub, cancel: CancellationToken) -> Self {
        Self {
            id: id.to_owned(),
            transport,
            port,
            ssrc,
            hub,
            created: Instant::now(),
            created_ms: kit::clock::now_ms(),
            cancel,
            peer: watch::channel(None).0,
            stats: Mutex::new(StreamStats::default()),
            started: AtomicBool::new(false),
            last_viewer: Mutex::new(Instant::now()),
            pushers: AtomicUsize::new(0),
            pushing: AtomicBool::new(false),
            no_viewer_secs: std::sync::atomic::AtomicU64::new(0),
            push_holds_open: AtomicBool::new(false),
            answered_ssrc: std::sync::atomic::AtomicU64::new(NO_SSRC),
            steer: TimelineSteer::default(),
            fmp4: Mutex::new(std::sync::Weak::new()),
            hls: Mutex::new(std::sync::Weak::new()),
            mjpeg: Mutex::new(std::sync::Weak::new()),
            picture: Mutex::new(None),
            pull: None,
        }
    }

    pub fn answered_ssrc(&self) -> Option<u32> {
        u32::try_from(self.answered_ssrc.load(Ordering::Relaxed)).ok()
    }
}

impl StreamEntry {
    pub fn snapshot(&self) -> StreamStats {
        self.stats.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Players attached (HTTP-FLV, RTMP play, and MJPEG passed through from a source), not
    /// counting RTMP push.
    pub fn viewers(&self) -> usize {
        let passthrough = self.pull.as_ref().map_or(0, |p| p.mjpeg_viewers.load(Ordering::Relaxed));
        self.hub.viewers().saturating_sub(self.pushers.load(Ordering::Relaxed)) + passthrough
    }

    /// Someone wants this stream: a player, or a live push when the push holds it open.
    pub fn wanted(&self) -> bool {
        self.viewers() > 0 || (self.push_holds_open.load(Ordering::Relaxed) && self.pushing.load(Ordering::Relaxed))
    }
}

/// Owns one stream's pipeline; fed by whichever task reads its socket.
pub struct Worker {
    pub entry: Arc<StreamEntry>,
    pipeline: Pipeline,
    source: Option<SocketAddr>,
    last_data: Instant,
    last_snapshot: Instant,
    bytes_at_snapshot: u64,
    frames_at_snapshot: u64,
    warned_ssrc: bool,
    warned_source: bool,
    wrong_source: u64,
    no_data: Duration,
    reorder_delay: Duration,
    /// Timeline marks applied so far (`TimelineSteer::marks`).
    marks: u64,
}

/// What the worker tells its task after a tick.
pub enum TickOutcome {
    Continue,
    /// First media: publish the "started" event.
    Started,
    Close(CloseReason),
}

impl Worker {
    pub fn new(entry: Arc<StreamEntry>, pipeline: Pipeline, no_data: Duration, reorder_delay: Duration) -> Self {
        let now = Instant::now();
        Self {
            entry,
            pipeline,
            source: None,
            last_data: now,
            last_snapshot: now,
            bytes_at_snapshot: 0,
            frames_at_snapshot: 0,
            warned_ssrc: false,
            warned_source: false,
            wrong_source: 0,
            no_data,
            reorder_delay,
            marks: 0,
        }
    }

    /// Applies what the playback's steering asks (speed, a mark).
    fn steer(&mut self) {
        let steer = &self.entry.steer;
        self.pipeline.timeline.set_scale(steer.scale_milli.load(Ordering::Relaxed));
        let marks = steer.marks.load(Ordering::Relaxed);
        if marks != self.marks {
            self.marks = marks;
            self.pipeline.timeline.mark();
        }
    }

    /// One RTP packet from `from` (UDP source, or the TCP peer).
    pub fn on_packet(&mut self, data: &[u8], from: SocketAddr, now: Instant) {
        // A UDP stream latches onto the first source whose packets pass the SSRC gate; anything
        // from elsewhere never enters it.
        if let Some(src) = self.source {
            if src != from {
                self.wrong_source += 1;
                if !self.warned_source {
                    self.warned_source = true;
                    tracing::warn!(stream = %self.entry.id, %from, expected = %src, "RTP from an unexpected source refused (logged once per stream)");
                }
                return;
            }
        }
        let hub = &self.entry.hub;
        match self.pipeline.on_rtp(data, &mut |tag| hub.publish(tag)) {
            Ok(()) => {
                self.source.get_or_insert(from);
                self.last_data = now;
            }
            // Off the hot path: only a refused packet looks at what the camera answered.
            Err(Refused::WrongSsrc(ssrc)) if self.entry.answered_ssrc() == Some(ssrc) => {
                tracing::info!(stream = %self.entry.id, ssrc, "camera streams with the SSRC of its SDP answer, not ours: following it");
                self.pipeline.set_ssrc(ssrc);
                self.on_packet(data, from, now);
            }
            Err(Refused::WrongSsrc(ssrc)) => {
                if !self.warned_ssrc {
                    self.warned_ssrc = true;
                    tracing::warn!(stream = %self.entry.id, %from, got = ssrc, expected = ?self.pipeline.ssrc(), "RTP with a wrong SSRC refused (logged once per stream)");
                }
            }
            Err(Refused::Malformed) => {}
        }
    }

    /// Called about every 100 ms.
    pub fn on_tick(&mut self, now: Instant) -> TickOutcome {
        self.steer();
        if self.entry.steer.paused.load(Ordering::Relaxed) {
            // Paused: nothing is due, so silence is not a dead camera.
            self.last_data = now;
        }
        if now.duration_since(self.last_data) >= self.reorder_delay {
            let hub = &self.entry.hub;
            self.pipeline.flush(&mut |tag| hub.publish(tag));
        }
        if now.duration_since(self.last_snapshot) >= Duration::from_secs(1) {
            self.snapshot(now);
        }
        if now.duration_since(self.last_data) >= self.no_data {
            self.snapshot(now);
            return TickOutcome::Close(CloseReason::NoData);
        }
        if self.pipeline.stats.video_frames + self.pipeline.stats.audio_frames > 0 && !self.entry.started.swap(true, Ordering::Relaxed) {
            self.snapshot(now);
            return TickOutcome::Started;
        }
        TickOutcome::Continue
    }

    pub fn snapshot(&mut self, now: Instant) {
        let p = &self.pipeline;
        let secs = now.duration_since(self.last_snapshot).as_secs_f64().max(0.001);
        let seq = p.seq_stats();
        let mut s = self.entry.stats.lock().unwrap_or_else(|e| e.into_inner());
        s.container = Some(p.container());
        s.ssrc = p.ssrc();
        s.peer = self.source.map(|a| a.to_string());
        if let Some(v) = p.video() {
            s.video_codec = Some(format!("{:?}", v.codec));
            s.width = Some(v.width);
            s.height = Some(v.height);
        }
        s.audio_codec = p.audio().map(|a| format!("{:?}", a.codec));
        let frames = p.stats.video_frames - self.frames_at_snapshot;
        s.fps = p.video().and_then(|v| v.fps).or(if frames > 0 { Some((frames as f64 / secs * 10.0).round() / 10.0) } else { s.fps });
        s.bitrate_kbps = ((p.stats.bytes - self.bytes_at_snapshot) as f64 * 8.0 / 1000.0 / secs) as u64;
        s.packets = p.stats.packets;
        s.bytes = p.stats.bytes;
        s.lost = seq.lost;
        s.reordered = seq.reordered;
        s.duplicates = seq.duplicates;
        s.late = seq.late;
        s.wrong_ssrc = p.stats.wrong_ssrc;
        s.wrong_source = self.wrong_source;
        s.malformed = p.stats.malformed;
        s.video_frames = p.stats.video_frames;
        s.audio_frames = p.stats.audio_frames;
        s.recoveries = p.stats.recoveries;
        s.scale = f64::from(p.timeline.scale_milli()) / 1000.0;
        s.since_mark_ms = p.timeline.since_mark_ms();
        s.timeline_jumps = p.timeline.jumps();
        s.source_ms = p.timeline.source_ms();
        s.paused = self.entry.steer.paused.load(Ordering::Relaxed);
        self.bytes_at_snapshot = p.stats.bytes;
        self.frames_at_snapshot = p.stats.video_frames;
        self.last_snapshot = now;
    }
}
