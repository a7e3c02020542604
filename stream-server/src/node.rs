//! The media node: its streams, opening and closing receivers, events, and its record in the
//! cluster (heartbeat with a TTL in the Store).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cluster::store::Store;
use cluster::wire::{NodeKind, StreamEvent, StreamEventKind, STREAM_EVENTS};
use media::flv::FlvOptions;
use serde::Serialize;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::StreamConfig;
use crate::hub::Hub;
use crate::pipeline::{Pipeline, PipelineConfig};
use crate::ports::{PortLease, PortPool};
use crate::receiver;
use crate::stream::{valid_stream_id, CloseReason, StreamEntry, StreamStats, Transport, Worker};

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("stream id must be 1–128 characters of [A-Za-z0-9_.-]")]
    BadStreamId,
    #[error("stream {0} is already open with other parameters")]
    Exists(String),
    #[error("this node is at its capacity of {0} streams")]
    Full(usize),
    #[error("no free RTP port in the configured range")]
    NoPort,
    #[error("single-port mode demultiplexes by SSRC: an ssrc is required")]
    SsrcRequired,
    #[error("ssrc {0} is already in use on the single port")]
    SsrcInUse(u32),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

/// The answer to a receiver open.
pub use cluster::wire::ReceiverOpened as Opened;

#[derive(Debug, Clone, Serialize)]
pub struct StreamView {
    pub stream_id: String,
    pub transport: Transport,
    pub port: u16,
    pub viewers: usize,
    /// The RTMP push (if configured) is connected and publishing.
    pub pushing: bool,
    pub uptime_secs: u64,
    #[serde(flatten)]
    pub stats: StreamStats,
}

/// The node's record in the Store, read by sip-servers to pick where a stream goes.
pub use cluster::wire::MediaNodeRecord as NodeRecord;

pub struct Node {
    pub cfg: StreamConfig,
    pub id: String,
    /// This process's run of the node (see `MediaNodeRecord::instance`).
    pub instance: String,
    pub store: Arc<dyn Store>,
    pub streams: Mutex<HashMap<String, Arc<StreamEntry>>>,
    ports: Arc<PortPool>,
    events: mpsc::Sender<StreamEvent>,
    pub shutdown: CancellationToken,
    /// Actual bound addresses (config may say port 0).
    pub http_addr: Mutex<Option<SocketAddr>>,
    pub rtmp_addr: Mutex<Option<SocketAddr>>,
    /// Single-port mode: UDP streams are handed to the one task that reads that port.
    pub single_port: std::sync::OnceLock<mpsc::Sender<Worker>>,
    /// Events queued but not yet published (a clean stop waits for them).
    events_pending: Arc<std::sync::atomic::AtomicUsize>,
    /// Recordings written to MP4 files (`record` receivers) and served from them.
    pub downloads: Arc<crate::downloads::Downloads>,
    /// Pictures of streams (`/snap/{id}.jpg`), decoded with bounded concurrency.
    pub snapshots: crate::snapshot::Snapshots,
}

impl Node {
    pub fn new(cfg: StreamConfig, id: String, store: Arc<dyn Store>, shutdown: CancellationToken) -> Arc<Self> {
        let (tx, mut rx) = mpsc::channel::<StreamEvent>(4096);
        let ports = PortPool::new(cfg.rtp_ports[0], cfg.rtp_ports[1]);
        let pending = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let downloads = Arc::new(crate::downloads::Downloads::new(
            &cfg.download_dir,
            cfg.download_max_bytes,
            Duration::from_secs(cfg.download_keep_secs),
        ));
        downloads.sweep();
        let sweeper = (downloads.clone(), shutdown.clone());
        tokio::spawn(async move {
            let (downloads, shutdown) = sweeper;
            let mut every = tokio::time::interval(Duration::from_secs(60));
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = every.tick() => downloads.sweep(),
                }
            }
        });
        let snapshots = crate::snapshot::Snapshots::new(
            &cfg.ffmpeg_path,
            cfg.snapshot_concurrency,
            Duration::from_millis(cfg.snapshot_timeout_ms.max(100)),
        );
        let node = Arc::new(Self {
            snapshots,
            downloads,
            cfg,
            instance: format!("{}-{}", std::process::id(), kit::clock::now_ms()),
            id,
            store: store.clone(),
            streams: Mutex::new(HashMap::new()),
            ports,
            events: tx,
            shutdown,
            http_addr: Mutex::new(None),
            rtmp_addr: Mutex::new(None),
            single_port: std::sync::OnceLock::new(),
            events_pending: pending.clone(),
        });
        tokio::spawn(async move {
            while let Some(ev) = rx.recv().await {
                let json = cluster::wire::to_json(&ev);
                if let Err(e) = store.publish(STREAM_EVENTS, &json).await {
                    tracing::warn!("publishing stream event: {e}");
                }
                pending.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            }
        });
        node
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<StreamEntry>>> {
        self.streams.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn event(&self, event: StreamEventKind, stream_id: &str, reason: Option<CloseReason>) {
        tracing::info!(stream = stream_id, reason = reason.map_or("", CloseReason::as_str), ?event, "stream event");
        // Counted before it is queued, so a clean stop waits for it to be published.
        self.events_pending.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let queued = self.events.try_send(StreamEvent {
            event,
            stream_id: stream_id.into(),
            node: self.id.clone(),
            reason,
            at_ms: kit::clock::now_ms(),
        });
        if queued.is_err() {
            self.events_pending.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    pub fn get(&self, id: &str) -> Option<Arc<StreamEntry>> {
        self.lock().get(id).cloned()
    }

    pub fn pipeline_config(&self, ssrc: Option<u32>) -> PipelineConfig {
        PipelineConfig {
            ssrc,
            reorder_window: self.cfg.reorder_window,
            max_frame: self.cfg.max_frame_bytes,
            flv: FlvOptions { hevc: self.cfg.hevc_flv, g711: self.cfg.g711 },
        }
    }

    pub(crate) fn bind_udp(&self, port: u16) -> Option<UdpSocket> {
        use socket2::{Domain, Protocol, Socket, Type};
        let addr: SocketAddr = format!("{}:{port}", self.cfg.rtp_bind_ip).parse().ok()?;
        let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP)).ok()?;
        let _ = s.set_recv_buffer_size(self.cfg.udp_recv_buffer_bytes);
        s.set_nonblocking(true).ok()?;
        s.bind(&addr.into()).ok()?;
        UdpSocket::from_std(s.into()).ok()
    }

    fn bind_tcp(&self, port: u16) -> Option<TcpListener> {
        let addr: SocketAddr = format!("{}:{port}", self.cfg.rtp_bind_ip).parse().ok()?;
        let s = socket2::Socket::new(socket2::Domain::for_address(addr), socket2::Type::STREAM, None).ok()?;
        s.set_reuse_address(true).ok()?;
        s.set_nonblocking(true).ok()?;
        s.bind(&addr.into()).ok()?;
        s.listen(16).ok()?;
        TcpListener::from_std(s.into()).ok()
    }

    /// Opens a receiver. Opening the same stream again with the same parameters returns the
    /// existing one (the caller may retry after a timeout).
    pub fn open(
        self: &Arc<Self>,
        stream_id: &str,
        ssrc: Option<u32>,
        transport: Transport,
        peer: Option<SocketAddr>,
    ) -> Result<Opened, OpenError> {
        if !valid_stream_id(stream_id) {
            return Err(OpenError::BadStreamId);
        }
        if let Some(e) = self.get(stream_id) {
            if e.transport == transport && e.ssrc == ssrc && e.pull.is_none() {
                if peer.is_some() {
                    e.peer.send_replace(peer);
                }
                return Ok(self.opened(&e));
            }
            return Err(OpenError::Exists(stream_id.to_owned()));
        }
        if self.lock().len() >= self.cfg.max_streams {
            return Err(OpenError::Full(self.cfg.max_streams));
        }
        enum Sock {
            Udp(UdpSocket),
            Tcp(TcpListener),
            Shared(mpsc::Sender<Worker>),
            None,
        }
        let single = self.single_port.get().filter(|_| transport == Transport::Udp);
        let (lease, sock): (Option<PortLease>, Sock) = if let Some(tx) = single {
            let ssrc = ssrc.ok_or(OpenError::SsrcRequired)?;
            if self.lock().values().any(|e| e.transport == Transport::Udp && e.ssrc == Some(ssrc)) {
                return Err(OpenError::SsrcInUse(ssrc));
            }
            (None, Sock::Shared(tx.clone()))
        } else {
            let (l, s) = match transport {
                Transport::Udp => self.ports.take(|p| self.bind_udp(p).map(Sock::Udp)),
                Transport::TcpPassive => self.ports.take(|p| self.bind_tcp(p).map(Sock::Tcp)),
                // We connect out; the port is still reserved so the answer names one.
                Transport::TcpActive => self.ports.take(|_| Some(Sock::None)),
            }
            .ok_or(OpenError::NoPort)?;
            (Some(l), s)
        };
        let port = lease.as_ref().map_or(self.cfg.single_port, |l| l.port);
        let entry = StreamEntry::new(
            stream_id,
            transport,
            port,
            ssrc,
            Hub::new(self.cfg.viewer_queue_tags, self.cfg.gop_cache_bytes),
            self.shutdown.child_token(),
        );
        entry.peer.send_replace(peer);
        let entry = Arc::new(entry);
        // Checked again under the lock: another open of the same id may have raced this one.
        self.insert(&entry)?;
        let worker = Worker::new(
            entry.clone(),
            Pipeline::new(self.pipeline_config(ssrc)),
            Duration::from_secs(self.cfg.no_data_timeout_secs.max(1)),
            Duration::from_millis(self.cfg.reorder_max_delay_ms),
        );
        let node = self.clone();
        let e2 = entry.clone();
        let on_started = move || node.event(StreamEventKind::Started, &e2.id, None);
        let node = self.clone();
        let e2 = entry.clone();
        let poll = (self.cfg.udp_poll_ms > 0).then(|| Duration::from_millis(self.cfg.udp_poll_ms));
        match sock {
            Sock::Shared(tx) => {
                if tx.try_send(worker).is_err() {
                    self.lock().remove(stream_id);
                    return Err(OpenError::Io(std::io::Error::other("single-port task is gone")));
                }
            }
            sock => {
                tokio::spawn(async move {
                    let reason = match sock {
                        Sock::Udp(s) => receiver::run_udp(worker, s, poll, on_started).await,
                        Sock::Tcp(l) => receiver::run_tcp_passive(worker, l, on_started).await,
                        _ => receiver::run_tcp_active(worker, on_started).await,
                    };
                    drop(lease);
                    node.finish(&e2, reason);
                });
            }
        }
        crate::push::spawn(self, &entry);
        self.event(StreamEventKind::Opened, stream_id, None);
        Ok(self.opened(&entry))
    }

    /// Adds a stream (a receiver, a pull source) to the node, within its capacity.
    pub(crate) fn insert(&self, entry: &Arc<StreamEntry>) -> Result<(), OpenError> {
        let mut g = self.lock();
        if g.contains_key(&entry.id) {
            return Err(OpenError::Exists(entry.id.clone()));
        }
        if g.len() >= self.cfg.max_streams {
            return Err(OpenError::Full(self.cfg.max_streams));
        }
        g.insert(entry.id.clone(), entry.clone());
        Ok(())
    }

    fn opened(&self, e: &StreamEntry) -> Opened {
        Opened { stream_id: e.id.clone(), ip: self.cfg.public_ip.clone(), port: e.port, transport: e.transport, ssrc: e.ssrc }
    }

    pub(crate) fn finish(&self, entry: &Arc<StreamEntry>, reason: CloseReason) {
        // A stream cancelled because the node stops was not closed by the API.
        let reason = if reason == CloseReason::Api && self.shutdown.is_cancelled() { CloseReason::Shutdown } else { reason };
        entry.cancel.cancel();
        // The events are queued before the entry leaves the map, under its lock: a clean stop
        // that sees the map empty then also sees them pending, and waits for them.
        let mut g = self.lock();
        if g.get(&entry.id).is_some_and(|cur| Arc::ptr_eq(cur, entry)) {
            if reason == CloseReason::NoData {
                self.event(StreamEventKind::NoData, &entry.id, Some(reason));
            }
            self.event(StreamEventKind::Closed, &entry.id, Some(reason));
            g.remove(&entry.id);
        }
    }

    /// Closes a stream through the API. False if unknown.
    pub fn close(&self, id: &str) -> bool {
        match self.get(id) {
            Some(e) => {
                e.cancel.cancel();
                true
            }
            None => false,
        }
    }

    pub fn connect(&self, id: &str, peer: SocketAddr) -> bool {
        match self.get(id) {
            Some(e) if e.transport == Transport::TcpActive && e.pull.is_none() => {
                e.peer.send_replace(Some(peer));
                true
            }
            _ => false,
        }
    }

    pub fn view(e: &StreamEntry) -> StreamView {
        StreamView {
            stream_id: e.id.clone(),
            transport: e.transport,
            port: e.port,
            viewers: e.viewers(),
            pushing: e.pushing.load(std::sync::atomic::Ordering::Relaxed),
            uptime_secs: e.created.elapsed().as_secs(),
            stats: e.snapshot(),
        }
    }

    pub(crate) fn list_entries(&self) -> Vec<Arc<StreamEntry>> {
        self.lock().values().cloned().collect()
    }

    pub fn list(&self) -> Vec<StreamView> {
        let mut v: Vec<StreamView> = self.lock().values().map(|e| Self::view(e)).collect();
        v.sort_by(|a, b| a.stream_id.cmp(&b.stream_id));
        v
    }

    pub fn record(&self, cpu: f64) -> NodeRecord {
        let streams = self.list();
        let mbps = streams.iter().map(|s| s.stats.bitrate_kbps as f64 / 1000.0).sum();
        let http = self.http_addr.lock().unwrap_or_else(|e| e.into_inner()).map(|a| a.port()).unwrap_or(0);
        NodeRecord {
            id: self.id.clone(),
            instance: self.instance.clone(),
            public_ip: self.cfg.public_ip.clone(),
            api_url: format!("http://{}:{http}", self.cfg.public_ip),
            rtmp_port: self.rtmp_addr.lock().unwrap_or_else(|e| e.into_inner()).map(|a| a.port()),
            rtp_ports: self.cfg.rtp_ports,
            max_streams: self.cfg.max_streams,
            capacity_mbps: self.cfg.capacity_mbps,
            streams: streams.len(),
            mbps,
            cpu,
            updated_ms: kit::clock::now_ms(),
        }
    }

    /// Keeps this node's record in the Store fresh and raises "no viewers" events.
    pub async fn heartbeat(self: Arc<Self>) {
        let mut cpu = CpuMeter::new();
        let period = Duration::from_secs(self.cfg.heartbeat_secs.max(1));
        let ttl = self.cfg.heartbeat_ttl_secs.max(self.cfg.heartbeat_secs * 2).max(2) * 1000;
        loop {
            let rec = self.record(cpu.sample());
            if let Ok(json) = serde_json::to_string(&rec) {
                if let Err(e) = self.store.put_node(NodeKind::Media.as_str(), &self.id, &json, ttl).await {
                    tracing::warn!("node heartbeat: {e}");
                }
            }
            self.check_viewers();
            tokio::select! {
                // `stopped` takes the record out.
                _ = self.shutdown.cancelled() => return,
                _ = tokio::time::sleep(period) => {}
            }
        }
    }

    /// After the shutdown token fired: let the streams close (each says `closed`, reason
    /// `shutdown`), publish what is queued, and take the node out of selection at once rather
    /// than after its TTL. Bounded by `within`.
    pub async fn stopped(&self, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        while (!self.lock().is_empty() || self.events_pending.load(std::sync::atomic::Ordering::Relaxed) > 0)
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if let Err(e) = self.store.remove_node(NodeKind::Media.as_str(), &self.id).await {
            tracing::warn!("removing the node record: {e}");
        }
    }

    /// Raises `no_viewers` for each stream nobody has wanted for its limit (then again every
    /// limit while that lasts). Runs every heartbeat, so fires within `heartbeat_secs` of due.
    pub(crate) fn check_viewers(&self) {
        let entries: Vec<Arc<StreamEntry>> = self.lock().values().cloned().collect();
        for e in entries {
            let secs = match e.no_viewer_secs.load(std::sync::atomic::Ordering::Relaxed) {
                0 => self.cfg.no_viewer_event_secs,
                s => s,
            };
            if secs == 0 {
                continue;
            }
            let limit = Duration::from_secs(secs);
            let mut last = e.last_viewer.lock().unwrap_or_else(|p| p.into_inner());
            if e.wanted() {
                *last = Instant::now();
            } else if last.elapsed() >= limit {
                *last = Instant::now();
                drop(last);
                self.event(StreamEventKind::NoViewers, &e.id, None);
            }
        }
    }
}

/// Process CPU use as a fraction of one core, from /proc/self/stat.
struct CpuMeter {
    last: Option<(Instant, u64)>,
}

impl CpuMeter {
    fn new() -> Self {
        Self { last: None }
    }

    fn ticks() -> Option<u64> {
        let s = std::fs::read_to_string("/proc/self/stat").ok()?;
        let rest = &s[s.rfind(')')? + 2..];
        let f: Vec<&str> = rest.split(' ').collect();
        Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
    }

    fn sample(&mut self) -> f64 {
        let Some(t) = Self::ticks() else { return 0.0 };
        let now = Instant::now();
        let v = match self.last {
            Some((at, t0)) => (t - t0) as f64 / 100.0 / now.duration_since(at).as_secs_f64().max(0.001),
            None => 0.0,
        };
        self.last = Some((now, t));
        (v * 1000.0).round() / 1000.0
    }
}
