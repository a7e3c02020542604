//! One play: an RTSP source remuxed to FLV and published as RTMP, from the first key frame
//! until STOP, a missed beat, or a source (or RTMP target) that stays down.
//!
//! The runner is one task. It answers the play once video flows (or with what failed), then
//! pumps frames; a source that drops is reopened with backoff (1 s doubling to 8 s) for
//! `reconnect_window_secs`, a recording at the point it had reached; the RTMP publish is
//! reconnected the same way. The RTMP stream's timeline runs on across every reopen
//! (`Remuxer::discontinuity`), so a player keeps playing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kit::rtmp::RtmpPublisher;
use media::flv::FlvTag;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::config::NvrConfig;
use crate::request::NvrTarget;
use crate::status::{Failure, Status};
use crate::vendor::{self, LocalTime, NvrCategory};
use pull::remux::{RemuxStats, Remuxer};
use pull::rtsp::{RtspOptions, RtspSource, RtspTransport, SourceError, SourceInfo};

/// The reason STOP gives (such a session is forgotten at once, not kept for BEATS).
pub const STOPPED: &str = "stopped";

/// What is played.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Live,
    /// A recording from `start` to `stop` (what the search found inside the asked range).
    Playback {
        start: LocalTime,
        stop: LocalTime,
    },
}

/// Where a session is in its life; `Ended` keeps the status and reason BEATS reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum SessionState {
    Starting,
    Playing,
    /// The source (or the RTMP target) dropped; retrying.
    Reconnecting {
        attempt: u32,
        error: String,
    },
    Ended {
        status: u16,
        reason: String,
    },
}

/// What the web tier asked a running session to do.
pub enum Command {
    /// Reopen the recording at this time.
    Position(LocalTime, oneshot::Sender<Result<(), String>>),
}

/// The target with the ports to use on it.
#[derive(Debug, Clone)]
pub struct Source {
    pub target: NvrTarget,
    pub rtsp_port: u16,
    pub http_port: u16,
    /// ONVIF: the profile played and where the PTZ service is.
    pub onvif: Option<crate::onvif::LiveInfo>,
}

impl Source {
    /// The RTSP URL of the live stream, or of the recording from `from` to `stop`.
    pub fn url(&self, kind: Kind, from: Option<LocalTime>) -> Option<String> {
        let t = &self.target;
        match (kind, t.category) {
            (Kind::Live, NvrCategory::RtspUrl | NvrCategory::Onvif) => t.rtsp_url.clone(),
            (Kind::Live, c) => vendor::live_url(c, &t.addr, self.rtsp_port, t.channel),
            (Kind::Playback { start, stop }, c) => {
                vendor::playback_url(c, &t.addr, self.rtsp_port, t.channel, &from.unwrap_or(start), &stop)
            }
        }
    }
}

pub struct Session {
    pub handle: u64,
    pub kind: Kind,
    pub source: Source,
    pub rtmp_push_url: String,
    pub rtmp_url: String,
    pub started_ms: u64,
    pub last_beat: Mutex<Instant>,
    pub state: Mutex<SessionState>,
    pub stats: Mutex<RemuxStats>,
    /// Where in the recording the output is (seconds since the epoch of the device's wall time).
    pub position_secs: AtomicU64,
    pub cancel: CancellationToken,
    /// The status and reason a canceller gives (STOP, a missed beat, shutdown).
    pub cancel_reason: Mutex<Option<(Status, String)>>,
    /// Cancelled once the session is over and everything it held is closed.
    pub finished: CancellationToken,
    /// Times the source or the RTMP publish came back after dropping.
    pub reconnects: AtomicU64,
    pub commands: mpsc::Sender<Command>,
}

impl Session {
    pub fn state(&self) -> SessionState {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set_state(&self, s: SessionState) {
        *self.state.lock().unwrap_or_else(|e| e.into_inner()) = s;
    }

    pub fn beat(&self) {
        *self.last_beat.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }

    pub fn since_beat(&self) -> Duration {
        self.last_beat.lock().unwrap_or_else(|e| e.into_inner()).elapsed()
    }

    /// Ends the session from outside (its runner sees the token).
    pub fn stop(&self, status: Status, reason: &str) {
        let mut r = self.cancel_reason.lock().unwrap_or_else(|e| e.into_inner());
        if r.is_none() {
            *r = Some((status, reason.to_owned()));
        }
        self.cancel.cancel();
    }

    pub fn position(&self) -> Option<LocalTime> {
        match self.position_secs.load(Ordering::Relaxed) {
            0 => None,
            s => LocalTime::from_secs(s as i64),
        }
    }
}

/// The status a source failure gets for this kind of play.
pub fn failure_status(kind: Kind, e: &SourceError) -> Status {
    match (e, kind) {
        (SourceError::Auth(_), _) => Status::NvrLogin,
        (SourceError::NoVideo(_), _) => Status::StreamAnalysis,
        (_, Kind::Live) => Status::LivePlay,
        (_, Kind::Playback { .. }) => Status::Playback,
    }
}

struct Runner {
    s: Arc<Session>,
    cfg: NvrConfig,
    remux: Remuxer,
    out: Vec<FlvTag>,
    /// The recording time the current source started at, and the first output timestamp (ms)
    /// after it: together they say where playback is.
    segment: Option<(LocalTime, Option<u32>)>,
}

/// How close to its stop time a recording that the server ends counts as played out.
const END_SLACK_SECS: i64 = 5;

fn backoff(attempt: u32) -> Duration {
    Duration::from_secs(1u64 << attempt.min(3))
}

impl Runner {
    fn timeout(&self) -> Duration {
        Duration::from_secs(self.cfg.connect_timeout_secs.max(1))
    }

    async fn open(&mut self, from: Option<LocalTime>) -> Result<(RtspSource, SourceInfo), SourceError> {
        let src = &self.s.source;
        let url = src.url(self.s.kind, from).ok_or_else(|| SourceError::Refused("no RTSP URL for this play".into()))?;
        tracing::debug!(handle = self.s.handle, %url, "opening RTSP");
        let opts = RtspOptions { timeout: self.timeout(), transport: RtspTransport::Tcp, allow_jpeg: false };
        let r = RtspSource::open(&url, &src.target.user, &src.target.password, opts, &mut self.remux).await;
        if r.is_ok() {
            if let Kind::Playback { start, .. } = self.s.kind {
                self.segment = Some((from.unwrap_or(start), None));
            }
        }
        r
    }

    /// Sends what the remuxer produced; notes where playback is.
    async fn flush(&mut self, rtmp: &mut RtmpPublisher) -> Result<(), kit::rtmp::RtmpError> {
        for tag in self.out.drain(..) {
            rtmp.send_tag(&tag).await?;
            if let Some((from, first)) = &mut self.segment {
                if !tag.header {
                    let first = *first.get_or_insert(tag.timestamp);
                    let at = from.plus_secs(i64::from(tag.timestamp.saturating_sub(first) / 1000));
                    self.s.position_secs.store(at.to_secs().max(1) as u64, Ordering::Relaxed);
                }
            }
        }
        *self.s.stats.lock().unwrap_or_else(|e| e.into_inner()) = self.remux.stats;
        Ok(())
    }

    /// Opens the source, the RTMP publish, and waits for the first video frame out.
    async fn start(&mut self) -> Result<(RtspSource, RtmpPublisher, SourceInfo), (Status, String)> {
        let kind = self.s.kind;
        let (mut src, info) = self.open(None).await.map_err(|e| (failure_status(kind, &e), e.to_string()))?;
        let mut rtmp = RtmpPublisher::connect(&self.s.rtmp_push_url, self.timeout())
            .await
            .map_err(|e| (Status::RtmpServer, format!("RTMP server {}: {e}", self.s.rtmp_push_url)))?;
        let deadline = Instant::now() + Duration::from_secs(self.cfg.first_frame_secs.max(1));
        while self.remux.stats.video_frames == 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err((Status::StreamAnalysis, format!("no video key frame within {} s", self.cfg.first_frame_secs)));
            }
            tokio::select! {
                _ = self.s.cancel.cancelled() => return Err(self.cancelled()),
                r = src.next(left, &mut self.remux, &mut self.out) => match r {
                    Ok(_) => {}
                    Err(SourceError::Stalled(_)) => {
                        return Err((Status::StreamAnalysis, format!("no video key frame within {} s", self.cfg.first_frame_secs)));
                    }
                    Err(e) => return Err((failure_status(kind, &e), e.to_string())),
                },
            }
            self.flush(&mut rtmp).await.map_err(|e| (Status::RtmpServer, format!("RTMP server: {e}")))?;
        }
        Ok((src, rtmp, info))
    }

    fn cancelled(&self) -> (Status, String) {
        self.s.cancel_reason.lock().unwrap_or_else(|e| e.into_inner()).clone().unwrap_or((Status::NoPlayHandle, "stopped".into()))
    }

    /// Waits out the next backoff step of a reconnect that began at `began`, showing `error`
    /// in the session's state. `Ok(false)` when the window is spent, `Err` when cancelled.
    async fn next_attempt(&self, attempt: u32, began: Instant, error: String) -> Result<bool, (Status, String)> {
        self.s.set_state(SessionState::Reconnecting { attempt: attempt + 1, error });
        let wait = backoff(attempt);
        if began.elapsed() + wait > Duration::from_secs(self.cfg.reconnect_window_secs) {
            return Ok(false);
        }
        tokio::select! {
            _ = self.s.cancel.cancelled() => Err(self.cancelled()),
            _ = tokio::time::sleep(wait) => Ok(true),
        }
    }

    /// A reconnect succeeded: counted, and the output starts again from a key frame with its
    /// headers (a new publish needs them; a new source may have new parameters).
    fn reconnected(&mut self, what: &str, attempt: u32) {
        tracing::info!(handle = self.s.handle, attempt = attempt + 1, "{what} back");
        self.s.reconnects.fetch_add(1, Ordering::Relaxed);
        crate::metrics::RECONNECTS.inc();
        self.remux.discontinuity();
        self.s.set_state(SessionState::Playing);
    }

    /// Reopens the source until it plays or the window closes.
    async fn reopen_source(&mut self, error: SourceError) -> Result<RtspSource, (Status, String)> {
        let began = Instant::now();
        let mut last = error;
        let mut attempt = 0;
        while self.next_attempt(attempt, began, last.to_string()).await? {
            match self.open(self.s.position()).await {
                Ok((src, _)) => {
                    self.reconnected("RTSP source", attempt);
                    return Ok(src);
                }
                // A wrong password will not get better by retrying.
                Err(e @ SourceError::Auth(_)) => return Err((Status::NvrLogin, e.to_string())),
                Err(e) => last = e,
            }
            attempt += 1;
        }
        Err((failure_status(self.s.kind, &last), format!("source down for {} s: {last}", self.cfg.reconnect_window_secs)))
    }

    async fn reconnect_rtmp(&mut self, error: String) -> Result<RtmpPublisher, (Status, String)> {
        let began = Instant::now();
        let mut last = error;
        let mut attempt = 0;
        while self.next_attempt(attempt, began, format!("RTMP: {last}")).await? {
            match RtmpPublisher::connect(&self.s.rtmp_push_url, self.timeout()).await {
                Ok(p) => {
                    self.reconnected("RTMP publish", attempt);
                    return Ok(p);
                }
                Err(e) => last = e.to_string(),
            }
            attempt += 1;
        }
        Err((Status::RtmpServer, format!("RTMP server {} down for {} s: {last}", self.s.rtmp_push_url, self.cfg.reconnect_window_secs)))
    }

    async fn position(&mut self, at: LocalTime) -> Result<RtspSource, String> {
        match self.open(Some(at)).await {
            Ok((src, _)) => {
                self.remux.discontinuity();
                self.s.position_secs.store(at.to_secs().max(1) as u64, Ordering::Relaxed);
                Ok(src)
            }
            Err(e) => Err(e.to_string()),
        }
    }

    /// Whether a playback has reached (within a few seconds) the end of its range: a server
    /// closing the stream there has finished; anywhere else the connection dropped, and the
    /// recording is reopened where it was.
    fn at_recording_end(&self) -> bool {
        match (self.s.kind, self.s.position()) {
            (Kind::Playback { stop, .. }, Some(at)) => at >= stop.plus_secs(-END_SLACK_SECS),
            _ => false,
        }
    }

    /// Pumps until the session ends; returns why.
    async fn pump(&mut self, mut src: RtspSource, mut rtmp: RtmpPublisher, commands: &mut mpsc::Receiver<Command>) -> (Status, String) {
        let stall = Duration::from_secs(self.cfg.stall_secs.max(1));
        loop {
            tokio::select! {
                biased;
                _ = self.s.cancel.cancelled() => return self.cancelled(),
                Some(cmd) = commands.recv() => match cmd {
                    Command::Position(at, reply) => {
                        let r = self.position(at).await.map(|new| src = new);
                        let _ = reply.send(r);
                    }
                },
                r = rtmp.service() => {
                    if let Err(e) = r {
                        tracing::warn!(handle = self.s.handle, error = %e, "RTMP publish dropped; reconnecting");
                        match self.reconnect_rtmp(e.to_string()).await {
                            Ok(p) => rtmp = p,
                            Err(end) => return end,
                        }
                    }
                }
                r = src.next(stall, &mut self.remux, &mut self.out) => match r {
                    Ok(_) => {
                        if let Err(e) = self.flush(&mut rtmp).await {
                            tracing::warn!(handle = self.s.handle, error = %e, "RTMP publish dropped; reconnecting");
                            self.out.clear();
                            match self.reconnect_rtmp(e.to_string()).await {
                                Ok(p) => rtmp = p,
                                Err(end) => return end,
                            }
                        }
                    }
                    // (Some servers end a recording with an RTCP BYE and keep the connection:
                    // frames stopping there is the end too.)
                    Err(SourceError::Ended | SourceError::Stalled(_)) if self.at_recording_end() => {
                        return (Status::NoPlayHandle, "the recording played to its end".into());
                    }
                    Err(e) => {
                        tracing::warn!(handle = self.s.handle, error = %e, "RTSP source dropped; reconnecting");
                        match self.reopen_source(e).await {
                            Ok(new) => src = new,
                            Err(end) => return end,
                        }
                    }
                },
            }
        }
    }
}

/// Runs a session to its end. `ready` gets the outcome of the start: the source's codecs once
/// video flows, or the status and message of what failed. Returns the end status and reason.
pub async fn run(
    s: Arc<Session>,
    cfg: NvrConfig,
    mut commands: mpsc::Receiver<Command>,
    ready: oneshot::Sender<Result<SourceInfo, Failure>>,
) -> (Status, String) {
    let opts = media::flv::FlvOptions { hevc: cfg.hevc_flv, ..Default::default() };
    let mut r = Runner { s: s.clone(), cfg, remux: Remuxer::new(opts), out: Vec::with_capacity(8), segment: None };
    let (src, rtmp, info) = match r.start().await {
        Ok(x) => x,
        Err(e) => {
            let _ = ready.send(Err(Failure::new(e.0, e.1.clone())));
            s.set_state(SessionState::Ended { status: e.0.code(), reason: e.1.clone() });
            return e;
        }
    };
    s.set_state(SessionState::Playing);
    let _ = ready.send(Ok(info));
    let end = r.pump(src, rtmp, &mut commands).await;
    s.set_state(SessionState::Ended { status: end.0.code(), reason: end.1.clone() });
    end
}
