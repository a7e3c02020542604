//! The pusher node: its sessions by play handle, the six calls, the beat watchdog, and its
//! place in the cluster.
//!
//! Cluster: each node keeps a record (`{gbc}:node:nvr:<id>`, TTL) with its API address and
//! load. A new play is taken by the least-loaded node, chosen and counted atomically by the
//! Store (`reserve_least_loaded`, pool `nvr`), and forwarded there when that is not the node
//! the web tier called. Each session has a row in table `nvr_sessions` naming its node, so a
//! call for a handle reaches the node that holds it whichever node the web tier calls.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cluster::store::{LoadCandidate, Store};
use cluster::wire::NodeKind;
use kit::http_client::{self, Request};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::config::NvrConfig;
use crate::isapi::RecordFile;
use crate::onvif::{self, Onvif};
use crate::request;
use crate::session::{self, Command, Kind, Session, SessionState, Source};
use crate::status::Status;
use crate::vendor::{LocalTime, NvrCategory, Ptz};
use crate::vendor_http::{VendorError, VendorHttp};
use crate::{dahua, isapi, metrics};

/// Store node kind and load pool of nvr-pushers.
const NODE_KIND: &str = NodeKind::Nvr.as_str();
const POOL: &str = NodeKind::Nvr.as_str();
pub const SESSIONS: &str = "nvr_sessions";
/// Set on a request one node forwards to another: serve it here, its load unit is reserved.
pub const FORWARDED: &str = "X-Gbc-Nvr-Forwarded";

pub fn now_ms() -> u64 {
    kit::clock::now_ms()
}

/// A node's record in the Store.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeRecord {
    pub id: String,
    pub instance: String,
    pub api_url: String,
    pub sessions: u64,
    pub max_sessions: u64,
    /// Output bit rate of all sessions, Mbit/s.
    pub mbps: f64,
    pub updated_ms: u64,
}

/// A session's row in the Store.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionRow {
    pub node: String,
    pub instance: String,
    pub kind: String,
    pub rtmp_url: String,
    pub started_ms: u64,
}

/// The reply of one call: the body (`status_code` inside; HTTP is 200 either way, as the
/// original's clients expect).
pub type Reply = Value;

fn reply(status: Status, message: &str) -> Reply {
    status.reply(message, Value::Null)
}

pub struct Pusher {
    pub cfg: NvrConfig,
    pub store: Arc<dyn Store>,
    pub node: String,
    pub instance: String,
    pub api_url: Mutex<String>,
    sessions: Mutex<HashMap<u64, Arc<Session>>>,
    /// Ended sessions: (when it ended, status, reason), answered by BEATS for `ended_keep_secs`.
    ended: Mutex<HashMap<u64, (Instant, Status, String)>>,
    pub shutdown: CancellationToken,
    bytes_last: Mutex<(Instant, u64)>,
}

impl Pusher {
    pub fn new(cfg: NvrConfig, store: Arc<dyn Store>, shutdown: CancellationToken) -> Arc<Self> {
        let node = cfg.node_id.clone().unwrap_or_else(|| format!("nvr-{:08x}", rand::random::<u32>()));
        Arc::new(Self {
            instance: format!("{}-{}", std::process::id(), now_ms()),
            node,
            cfg,
            store,
            api_url: Mutex::new(String::new()),
            sessions: Mutex::new(HashMap::new()),
            ended: Mutex::new(HashMap::new()),
            shutdown,
            bytes_last: Mutex::new((Instant::now(), 0)),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Session>>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn session(&self, handle: u64) -> Option<Arc<Session>> {
        self.lock().get(&handle).cloned()
    }

    pub fn sessions(&self) -> Vec<Arc<Session>> {
        self.lock().values().cloned().collect()
    }

    fn api_url(&self) -> String {
        self.api_url.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Bytes pushed by the sessions running now.
    fn bytes_now(&self) -> u64 {
        self.sessions().iter().map(|s| s.stats.lock().unwrap_or_else(|e| e.into_inner()).bytes).sum()
    }

    pub fn record(&self) -> NodeRecord {
        let bytes = self.bytes_now();
        metrics::BYTES.set(bytes as i64);
        metrics::SESSIONS.set(self.lock().len() as i64);
        let mbps = {
            let mut last = self.bytes_last.lock().unwrap_or_else(|e| e.into_inner());
            let secs = last.0.elapsed().as_secs_f64().max(0.001);
            let rate = bytes.saturating_sub(last.1) as f64 * 8.0 / secs / 1e6;
            *last = (Instant::now(), bytes);
            rate
        };
        NodeRecord {
            id: self.node.clone(),
            instance: self.instance.clone(),
            api_url: self.api_url(),
            sessions: self.lock().len() as u64,
            max_sessions: self.cfg.max_sessions,
            mbps,
            updated_ms: now_ms(),
        }
    }

    /// Keeps the node record fresh, stops sessions whose beats stopped, forgets old ends.
    pub async fn housekeeping(self: Arc<Self>) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut n = 0u64;
        loop {
            tokio::select! {
                _ = self.shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            if n.is_multiple_of(2) {
                if let Ok(json) = serde_json::to_string(&self.record()) {
                    if let Err(e) = self.store.put_node(NODE_KIND, &self.node, &json, 6000).await {
                        tracing::warn!("nvr node heartbeat: {e}");
                    }
                }
            }
            n += 1;
            let limit = Duration::from_secs(self.cfg.beat_interval_secs.max(1) * 3);
            for s in self.sessions() {
                if s.since_beat() > limit && !s.cancel.is_cancelled() {
                    metrics::BEAT_TIMEOUTS.inc();
                    tracing::info!(handle = s.handle, "no beat for {} s: stopping", limit.as_secs());
                    s.stop(Status::NoPlayHandle, &format!("stopped: no beat for {} s", limit.as_secs()));
                }
            }
            let keep = Duration::from_secs(self.cfg.ended_keep_secs);
            let gone: Vec<u64> = {
                let mut ended = self.ended.lock().unwrap_or_else(|e| e.into_inner());
                let gone: Vec<u64> = ended.iter().filter(|(_, (at, _, _))| at.elapsed() > keep).map(|(h, _)| *h).collect();
                for h in &gone {
                    ended.remove(h);
                }
                gone
            };
            for h in gone {
                let _ = self.store.table_take(SESSIONS, &h.to_string()).await;
            }
            if n.is_multiple_of(10) {
                self.prune_dead_nodes_rows().await;
            }
        }
    }

    /// Rows of nodes that are gone (killed, or stopped before they could clean up): any node
    /// removes them (every 10 s), so a node that never comes back under its id leaves nothing behind.
    async fn prune_dead_nodes_rows(&self) {
        let live: Vec<(String, String)> = self.nodes().await.into_iter().map(|n| (n.id, n.instance)).collect();
        if live.is_empty() {
            return; // the Store did not answer: judge nothing
        }
        let Ok(rows) = self.store.table_list(SESSIONS).await else { return };
        for (h, raw) in rows {
            let Ok(row) = serde_json::from_str::<SessionRow>(&raw) else { continue };
            let alive = live.iter().any(|(id, inst)| *id == row.node && *inst == row.instance);
            if !alive && row.node != self.node {
                let _ = self.store.table_take(SESSIONS, &h).await;
            }
        }
    }

    /// Takes this node out: sessions stopped, record and rows removed.
    pub async fn stopped(&self, within: Duration) {
        for s in self.sessions() {
            s.stop(Status::NoPlayHandle, "the pusher node stopped");
        }
        let deadline = Instant::now() + within;
        while !self.lock().is_empty() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = self.store.remove_node(NODE_KIND, &self.node).await;
        let _ = self.store.clear_load(POOL, &self.node).await;
        // Its rows (ended sessions kept for BEATS included): nobody can answer for them now.
        if let Ok(rows) = self.store.table_list(SESSIONS).await {
            for (h, raw) in rows {
                if serde_json::from_str::<SessionRow>(&raw).is_ok_and(|r| r.node == self.node) {
                    let _ = self.store.table_take(SESSIONS, &h).await;
                }
            }
        }
    }

    /// Rows left by an earlier run of this node (same id, sessions lost with the process).
    pub async fn clear_leftovers(&self) {
        let _ = self.store.clear_load(POOL, &self.node).await;
        let Ok(rows) = self.store.table_list(SESSIONS).await else { return };
        for (h, raw) in rows {
            let Ok(row) = serde_json::from_str::<SessionRow>(&raw) else { continue };
            if row.node == self.node && row.instance != self.instance {
                let _ = self.store.table_take(SESSIONS, &h).await;
            }
        }
    }

    // --- node choice and forwarding -------------------------------------------------------

    async fn nodes(&self) -> Vec<NodeRecord> {
        let rows = self.store.list_nodes(NODE_KIND).await.unwrap_or_default();
        rows.into_iter().filter_map(|(_, raw)| serde_json::from_str::<NodeRecord>(&raw).ok()).collect()
    }

    /// Reserves a unit on the least-loaded node; `None` when every node is full.
    async fn choose_node(&self) -> Result<Option<NodeRecord>, String> {
        let mut nodes = self.nodes().await;
        if !nodes.iter().any(|n| n.id == self.node) {
            nodes.push(self.record()); // not yet written (the first second of the node's life)
        }
        let candidates: Vec<LoadCandidate> =
            nodes.iter().map(|n| LoadCandidate { id: n.id.clone(), capacity: n.max_sessions, reported: n.sessions, busy: 0.0 }).collect();
        let chosen = self.store.reserve_least_loaded(POOL, &candidates).await.map_err(|e| e.to_string())?;
        Ok(chosen.and_then(|id| nodes.into_iter().find(|n| n.id == id)))
    }

    async fn forward(&self, api_url: &str, method: &str, path: &str, body: &[u8]) -> Result<Reply, String> {
        metrics::FORWARDED.inc();
        let url = format!("{api_url}{path}");
        let headers = [(FORWARDED, self.node.as_str())];
        // A play waits for its first frame on the other node (and a playback for its record
        // search before that): allow for it.
        let c = &self.cfg;
        let timeout = Duration::from_secs(c.connect_timeout_secs * 4 + c.first_frame_secs + c.http_timeout_secs * 4 + 5);
        let r = http_client::send(&Request { method, url: &url, headers: &headers, content_type: "application/json", body, timeout })
            .await
            .map_err(|e| e.to_string())?;
        r.json().ok_or_else(|| format!("{url}: HTTP {} without a JSON body", r.status))
    }

    /// A new play: validated here, then taken by the least-loaded node.
    pub async fn play(self: &Arc<Self>, path: &str, body: &[u8], forwarded: bool) -> Reply {
        let v: Value = match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => return reply(Status::Parameter, &format!("the body is not JSON: {e}")),
        };
        let parsed = if path.ends_with("BACK_STREAM") {
            request::back_stream(&v).map(|(t, s, e)| (t, Some((s, e))))
        } else {
            request::real_stream(&v).map(|t| (t, None))
        };
        let (target, range) = match parsed {
            Ok(x) => x,
            Err(e) => return reply(Status::Parameter, &e.0),
        };
        if range.is_some() && matches!(target.category, NvrCategory::RtspUrl | NvrCategory::Onvif) {
            return reply(Status::Parameter, "BACK_STREAM needs nvr_category 0 (Hikvision) or 1 (Dahua)");
        }
        let port = |name: &str| v[name].as_u64().and_then(|p| u16::try_from(p).ok()).filter(|p| *p > 0);
        let rtsp_port_given = port("rtsp_port");
        let mut source = Source {
            target,
            rtsp_port: rtsp_port_given.unwrap_or(self.cfg.rtsp_port),
            http_port: port("http_port").unwrap_or(self.cfg.http_port),
            onvif: None,
        };
        if !forwarded {
            match self.choose_node().await {
                Err(e) => return reply(Status::LivePlay, &format!("the Store: {e}")),
                Ok(None) => return reply(if range.is_some() { Status::Playback } else { Status::LivePlay }, "every pusher node is full"),
                Ok(Some(n)) if n.id != self.node => match self.forward(&n.api_url, "POST", path, body).await {
                    Ok(r) => return r,
                    Err(e) => {
                        // The chosen node is unreachable: serve here instead, moving the unit.
                        tracing::warn!(node = %n.id, error = %e, "forwarding a play failed; serving it here");
                        let _ = self.store.release_load(POOL, &n.id).await;
                        let candidates = [LoadCandidate { id: self.node.clone(), capacity: self.cfg.max_sessions, reported: 0, busy: 0.0 }];
                        if !matches!(self.store.reserve_least_loaded(POOL, &candidates).await, Ok(Some(_))) {
                            return reply(Status::LivePlay, "every pusher node is full");
                        }
                    }
                },
                Ok(Some(_)) => {}
            }
        }
        if source.target.category == NvrCategory::Onvif {
            if let Err((s, m)) = self.resolve_onvif(&mut source, rtsp_port_given).await {
                metrics::PLAY_FAILURES.inc();
                let _ = self.store.release_load(POOL, &self.node).await;
                return reply(s, &m);
            }
        }
        let (r, spawned) = self.start(source, range).await;
        if !spawned {
            let _ = self.store.release_load(POOL, &self.node).await;
        }
        r
    }

    async fn new_handle(&self, row: &SessionRow) -> Result<u64, String> {
        let raw = serde_json::to_string(row).map_err(|e| e.to_string())?;
        for _ in 0..16 {
            let h = rand::random_range(10_000..i32::MAX as u64);
            if self.store.table_insert(SESSIONS, &h.to_string(), &raw).await.map_err(|e| e.to_string())? {
                return Ok(h);
            }
        }
        Err("no free play handle".into())
    }

    fn vendor_http(&self, source: &Source) -> VendorHttp {
        let t = &source.target;
        VendorHttp::new(&t.addr, source.http_port, &t.user, &t.password, Duration::from_secs(self.cfg.http_timeout_secs.max(1)))
    }

    /// ONVIF: asks the device's media service for the live URI of the channel's profile.
    async fn resolve_onvif(&self, source: &mut Source, rtsp_port: Option<u16>) -> Result<(), (Status, String)> {
        let http = self.vendor_http(source);
        let t = &source.target;
        let dev = Onvif { http: &http, user: &t.user, password: &t.password };
        let info = dev.live(t.channel).await.map_err(|e| match e {
            VendorError::Auth(m) => (Status::NvrLogin, format!("ONVIF: {m}")),
            other => (Status::LivePlay, format!("ONVIF: {other}")),
        })?;
        source.target.rtsp_url = Some(onvif::reachable_uri(&info.uri, &t.addr, rtsp_port));
        source.onvif = Some(info);
        Ok(())
    }

    async fn search(&self, source: &Source, start: &LocalTime, end: &LocalTime) -> Result<Vec<RecordFile>, (Status, String)> {
        let http = self.vendor_http(source);
        let t = &source.target;
        let found = match t.category {
            NvrCategory::Hikvision => isapi::search(&http, t.channel, start, end).await,
            NvrCategory::Dahua => dahua::search(&http, t.channel, start, end).await,
            NvrCategory::RtspUrl | NvrCategory::Onvif => return Err((Status::Parameter, "record search needs nvr_category 0 or 1".into())),
        };
        found.map_err(|e| match e {
            VendorError::Auth(m) => (Status::NvrLogin, m),
            other => (Status::Playback, format!("record search: {other}")),
        })
    }

    async fn start(self: &Arc<Self>, source: Source, range: Option<(LocalTime, LocalTime)>) -> (Reply, bool) {
        metrics::PLAYS.inc();
        let (kind, files) = match range {
            None => (Kind::Live, None),
            Some((start, end)) => {
                let files = match self.search(&source, &start, &end).await {
                    Ok(f) => f,
                    Err((s, m)) => {
                        metrics::PLAY_FAILURES.inc();
                        return (reply(s, &m), false);
                    }
                };
                let (Some(first), Some(last)) = (files.iter().map(|f| f.start).min(), files.iter().map(|f| f.stop).max()) else {
                    metrics::PLAY_FAILURES.inc();
                    let m = format!("no recording of channel {} between {start} and {end}", source.target.channel);
                    return (reply(Status::NoRecording, &m), false);
                };
                (Kind::Playback { start: start.max(first), stop: end.min(last) }, Some(files))
            }
        };
        let row = SessionRow {
            node: self.node.clone(),
            instance: self.instance.clone(),
            kind: if kind == Kind::Live { "live".into() } else { "playback".into() },
            rtmp_url: String::new(),
            started_ms: now_ms(),
        };
        let handle = match self.new_handle(&row).await {
            Ok(h) => h,
            Err(e) => return (reply(Status::LivePlay, &format!("the Store: {e}")), false),
        };
        let name = self.cfg.stream_name.replace("{handle}", &handle.to_string());
        let push = format!("{}/{name}", self.cfg.rtmp_target.trim_end_matches('/'));
        let public = if self.cfg.rtmp_public.is_empty() { &self.cfg.rtmp_target } else { &self.cfg.rtmp_public };
        let rtmp_url = format!("{}/{name}", public.trim_end_matches('/'));
        let (tx, rx) = mpsc::channel(4);
        let s = Arc::new(Session {
            handle,
            kind,
            source,
            rtmp_push_url: push,
            rtmp_url: rtmp_url.clone(),
            started_ms: row.started_ms,
            last_beat: Mutex::new(Instant::now()),
            state: Mutex::new(SessionState::Starting),
            stats: Mutex::new(Default::default()),
            position_secs: AtomicU64::new(0),
            cancel: self.shutdown.child_token(),
            cancel_reason: Mutex::new(None),
            finished: CancellationToken::new(),
            reconnects: AtomicU64::new(0),
            commands: tx,
        });
        let row = SessionRow { rtmp_url: rtmp_url.clone(), ..row };
        let _ = self.store.table_put(SESSIONS, &handle.to_string(), &serde_json::to_string(&row).unwrap_or_default()).await;
        self.lock().insert(handle, s.clone());
        let (ready_tx, ready_rx) = oneshot::channel();
        let this = self.clone();
        let task_session = s.clone();
        tokio::spawn(async move {
            let (status, reason) = session::run(task_session.clone(), this.cfg.clone(), rx, ready_tx).await;
            this.finish(&task_session, status, reason).await;
        });
        let r = match ready_rx.await {
            Ok(Ok(info)) => {
                tracing::info!(handle, video = %info.video, audio = ?info.audio, rtmp = %rtmp_url, "playing");
                let mut extra = json!({"rtmp_url": rtmp_url, "play_handle": handle});
                if let (Kind::Playback { start, stop }, Some(files)) = (kind, files) {
                    extra["start_time"] = json!(start.to_string());
                    extra["stop_time"] = json!(stop.to_string());
                    extra["record_files"] = files
                        .iter()
                        .map(|f| {
                            json!({"file_name": f.file_name, "file_size": f.file_size,
                               "start_time": f.start.to_string(), "stop_time": f.stop.to_string()})
                        })
                        .collect();
                }
                Status::Ok.reply("OK", extra)
            }
            Ok(Err((status, message))) => {
                metrics::PLAY_FAILURES.inc();
                reply(status, &message)
            }
            Err(_) => reply(Status::LivePlay, "the session ended before it started"),
        };
        // The runner was spawned: its end (`finish`) releases the load unit, whatever happened.
        (r, true)
    }

    /// The runner ended: out of the map, reason kept for BEATS, row and load unit released.
    async fn finish(&self, s: &Arc<Session>, status: Status, reason: String) {
        tracing::info!(handle = s.handle, status = status.code(), %reason, "session ended");
        self.lock().remove(&s.handle);
        let stopped = s.cancel_reason.lock().unwrap_or_else(|e| e.into_inner()).as_ref().is_some_and(|(_, r)| r == session::STOPPED);
        if stopped {
            let _ = self.store.table_take(SESSIONS, &s.handle.to_string()).await;
        } else {
            self.ended.lock().unwrap_or_else(|e| e.into_inner()).insert(s.handle, (Instant::now(), status, reason));
        }
        let _ = self.store.release_load(POOL, &self.node).await;
        s.finished.cancel();
    }

    // --- calls on a handle ----------------------------------------------------------------

    /// Where the handle is: here (`Ok(None)`), another node's API (`Ok(Some(url))`), or nowhere.
    async fn locate(&self, handle: u64) -> Result<Option<String>, Reply> {
        if self.session(handle).is_some() {
            return Ok(None);
        }
        if let Some((_, status, reason)) = self.ended.lock().unwrap_or_else(|e| e.into_inner()).get(&handle) {
            return Err(reply(*status, reason));
        }
        let none = || reply(Status::NoPlayHandle, &format!("no play handle {handle}"));
        let row = match self.store.table_get(SESSIONS, &handle.to_string()).await {
            Ok(Some(raw)) => serde_json::from_str::<SessionRow>(&raw).map_err(|_| none())?,
            _ => return Err(none()),
        };
        if row.node == self.node {
            return Err(none());
        }
        match self.nodes().await.into_iter().find(|n| n.id == row.node) {
            Some(n) if n.instance == row.instance => Ok(Some(n.api_url)),
            _ => Err(reply(Status::NoPlayHandle, &format!("play handle {handle}: its pusher node {} is gone", row.node))),
        }
    }

    /// `/STREAM/{handle}/{call}`: here, or forwarded to the node holding the handle.
    pub async fn on_handle(self: &Arc<Self>, handle: &str, call: &str, method: &str, body: &[u8], forwarded: bool) -> Reply {
        let Some(h) = request::play_handle(handle) else {
            return reply(Status::NoPlayHandle, &format!("no play handle {handle:?}"));
        };
        if !forwarded {
            match self.locate(h).await {
                Err(r) => return r,
                Ok(Some(api)) => {
                    return self
                        .forward(&api, method, &format!("/STREAM/{h}/{call}"), body)
                        .await
                        .unwrap_or_else(|e| reply(Status::NoPlayHandle, &format!("play handle {h}: its node did not answer: {e}")));
                }
                Ok(None) => {}
            }
        }
        let Some(s) = self.session(h) else {
            if let Some((_, status, reason)) = self.ended.lock().unwrap_or_else(|e| e.into_inner()).get(&h) {
                return reply(*status, reason);
            }
            return reply(Status::NoPlayHandle, &format!("no play handle {h}"));
        };
        let v: Value = if body.iter().all(u8::is_ascii_whitespace) {
            Value::Object(Default::default())
        } else {
            match serde_json::from_slice(body) {
                Ok(v) => v,
                Err(e) => return reply(Status::Parameter, &format!("the body is not JSON: {e}")),
            }
        };
        match call {
            "BEATS" => self.beats(&s),
            "STOP" => {
                s.stop(Status::NoPlayHandle, session::STOPPED);
                // Answered once the RTMP publish and the RTSP session are closed.
                let _ = tokio::time::timeout(Duration::from_secs(5), s.finished.cancelled()).await;
                reply(Status::Ok, "OK")
            }
            "POSITION" => self.position(&s, &v).await,
            "PTZControl" => self.ptz(&s, &v).await,
            other => reply(Status::Parameter, &format!("unknown call {other:?}")),
        }
    }

    fn beats(&self, s: &Session) -> Reply {
        match s.state() {
            SessionState::Ended { status, reason } => reply(Status::from_code(status).unwrap_or(Status::LivePlay), &reason),
            state => {
                s.beat();
                let mut extra = json!({"play_handle": s.handle, "rtmp_url": s.rtmp_url});
                if let SessionState::Reconnecting { attempt, error } = state {
                    // Still alive: the caller keeps beating, and can see why there is no video.
                    extra["reconnecting"] = json!({"attempt": attempt, "error": error});
                }
                if let Some(p) = s.position() {
                    extra["pos_time"] = json!(p.to_string());
                }
                Status::Ok.reply("OK", extra)
            }
        }
    }

    async fn position(&self, s: &Session, v: &Value) -> Reply {
        let Kind::Playback { start, stop } = s.kind else {
            return reply(Status::PlayControl, "POSITION is for playback sessions (BACK_STREAM)");
        };
        let at = match request::position(v) {
            Ok(t) => t,
            Err(e) => return reply(Status::Parameter, &e.0),
        };
        if at < start || at >= stop {
            return reply(Status::Parameter, &format!("pos_time must be within {start} .. {stop}"));
        }
        if let SessionState::Reconnecting { error, .. } = s.state() {
            // The runner is busy reconnecting (it reopens at the position reached): say so
            // now rather than hold the call for the whole reconnect window.
            return reply(Status::PlayControl, &format!("the source is reconnecting ({error}); try again"));
        }
        let (tx, rx) = oneshot::channel();
        if s.commands.send(Command::Position(at, tx)).await.is_err() {
            return reply(Status::PlayControl, "the session is ending");
        }
        match rx.await {
            Ok(Ok(())) => {
                s.beat();
                reply(Status::Ok, "OK")
            }
            Ok(Err(e)) => reply(Status::PlayControl, &format!("reopening at {at}: {e}")),
            Err(_) => reply(Status::PlayControl, "the session ended"),
        }
    }

    async fn ptz(&self, s: &Session, v: &Value) -> Reply {
        let (command, duration) = match request::ptz(v) {
            Ok(x) => x,
            Err(e) => return reply(Status::Parameter, &e.0),
        };
        if s.kind != Kind::Live {
            return reply(Status::Ptz, "PTZ is for live sessions");
        }
        let Some(cmd) = Ptz::from_command(command) else { return reply(Status::Parameter, "command must be 0-13") };
        let http = self.vendor_http(&s.source);
        let duration = Duration::from_millis(u64::from(duration));
        let t = &s.source.target;
        let speed = self.cfg.ptz_speed.clamp(1, 100);
        let r = match t.category {
            NvrCategory::Hikvision => isapi::ptz(&http, cmd, t.channel, i32::from(speed), duration).await,
            // Dahua speeds are 1-8.
            NvrCategory::Dahua => dahua::ptz(&http, cmd, t.channel, (u16::from(speed) * 8).div_ceil(100) as u8, duration).await,
            NvrCategory::Onvif => match &s.source.onvif {
                Some(info) => {
                    let dev = Onvif { http: &http, user: &t.user, password: &t.password };
                    dev.ptz(info, cmd, f32::from(speed) / 100.0, duration).await
                }
                None => return reply(Status::Ptz, "no ONVIF profile known for this session"),
            },
            NvrCategory::RtspUrl => return reply(Status::Ptz, "PTZ needs nvr_category 0 (Hikvision), 1 (Dahua) or 3 (ONVIF)"),
        };
        s.beat();
        match r {
            Ok(()) => reply(Status::Ok, "OK"),
            Err(VendorError::Auth(m)) => reply(Status::NvrLogin, &m),
            Err(e) => reply(Status::Ptz, &e.to_string()),
        }
    }

    /// A session's view for the management API.
    pub fn view(s: &Session) -> Value {
        let stats = *s.stats.lock().unwrap_or_else(|e| e.into_inner());
        let t = &s.source.target;
        let mut v = json!({
            "play_handle": s.handle,
            "kind": if s.kind == Kind::Live { "live" } else { "playback" },
            "nvr_addr": t.addr, "nvr_channel": t.channel,
            "rtmp_url": s.rtmp_url,
            "started_ms": s.started_ms,
            "since_beat_ms": s.since_beat().as_millis() as u64,
            "reconnects": s.reconnects.load(Ordering::Relaxed),
            "video_frames": stats.video_frames, "audio_frames": stats.audio_frames, "bytes": stats.bytes,
        });
        if let (Value::Object(m), Ok(Value::Object(st))) = (&mut v, serde_json::to_value(s.state())) {
            m.extend(st);
        }
        if let Kind::Playback { start, stop } = s.kind {
            v["start_time"] = json!(start.to_string());
            v["stop_time"] = json!(stop.to_string());
        }
        if let Some(p) = s.position() {
            v["pos_time"] = json!(p.to_string());
        }
        v
    }
}
