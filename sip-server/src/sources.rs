//! Pull sources seen from the API: cameras that are not GB devices — MJPEG over HTTP, RTSP —
//! taken in as streams by a media node (`stream-server/src/sources.rs` pulls them).
//!
//! A source is a row of the `sources` table: its URL and credentials (kept, never answered),
//! whether it runs always or on demand, and the media node it runs on. Placing one is like a
//! play: the least-loaded media node is reserved, the row is swapped to name it (so of several
//! sip nodes only one places it), then the node is asked to pull. Every sip node runs the
//! supervisor (`run`): it lists what the media nodes pull, then the rows, and
//! - places an always-on source that runs nowhere (never placed, its node gone, or closed);
//! - forgets the node of an on-demand source that stopped (it closed itself when unwatched);
//! - closes what a node pulls that has no row any more (deleted while the node was away).
//!
//! A source whose node dies is thus placed again on another within a tick or two of the node's
//! record expiring, and viewers reconnect to the URLs the API then answers.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use cluster::store::Store;
use cluster::table::{Table, Versioned};
use cluster::wire::{redact_url, valid_stream_id, MediaNodeRecord, NodeKind, SourceOpen, SourceStatus};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::play::media_nodes::{self, MediaApi};
use crate::play::{PlayConfig, PlayError};
use crate::server::Shared;

pub const SOURCES: Table<SourceRecord> = Table::new("sources");

/// How often the supervisor looks.
const TICK: Duration = Duration::from_secs(2);
/// A source placed this recently may not show in its node's list yet.
const GRACE_MS: u64 = 10_000;
/// An on-demand source closes after this long unwatched, unless its row says otherwise.
pub const DEFAULT_IDLE_SECS: u64 = 30;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Pulled all the time, placed again wherever it stops.
    #[default]
    AlwaysOn,
    /// Pulled when a player asks (`POST /sources/{id}/play`), closed when unwatched.
    OnDemand,
}

/// A source as stored (credentials included: this row is never answered as it is).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceRecord {
    pub stream_id: String,
    #[serde(default)]
    pub name: String,
    pub url: String,
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: String,
    #[serde(default)]
    pub h264: bool,
    #[serde(default)]
    pub rtsp_transport: Option<String>,
    #[serde(default)]
    pub mode: Mode,
    #[serde(default)]
    pub idle_secs: u64,
    /// The media node pulling it, while one does.
    #[serde(default)]
    pub node: Option<String>,
    #[serde(default)]
    pub placed_ms: u64,
    /// Times it was placed again after its node died.
    #[serde(default)]
    pub moves: u64,
    /// Why the latest placement failed (no media node, the node refused).
    #[serde(default)]
    pub last_error: Option<String>,
    pub created_ms: u64,
}

impl std::fmt::Debug for SourceRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceRecord").field("stream_id", &self.stream_id).field("url", &redact_url(&self.url)).finish_non_exhaustive()
    }
}

impl SourceRecord {
    fn open(&self) -> SourceOpen {
        SourceOpen {
            stream_id: self.stream_id.clone(),
            url: self.url.clone(),
            username: self.username.clone(),
            password: self.password.clone(),
            h264: self.h264,
            rtsp_transport: self.rtsp_transport.clone(),
            idle_secs: match self.mode {
                Mode::AlwaysOn => 0,
                Mode::OnDemand => self.idle_secs,
            },
        }
    }
}

/// `POST /sources`: a new source.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSource {
    /// Default: `src-` and a random suffix.
    pub stream_id: Option<String>,
    #[serde(default)]
    pub name: String,
    pub url: String,
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: String,
    #[serde(default)]
    pub h264: bool,
    pub rtsp_transport: Option<String>,
    #[serde(default)]
    pub mode: Mode,
    /// On demand: seconds unwatched before it closes (default 30).
    pub idle_secs: Option<u64>,
}

/// Where players find a source's stream.
#[derive(Debug, Clone, Serialize)]
pub struct SourceUrls {
    #[serde(flatten)]
    pub stream: crate::play::session::Urls,
    pub mjpeg: String,
    pub snapshot: String,
}

fn urls_on(node: &MediaNodeRecord, stream_id: &str) -> SourceUrls {
    let api = node.api_url.trim_end_matches('/');
    SourceUrls {
        stream: media_nodes::urls(node, stream_id),
        mjpeg: format!("{api}/live/{stream_id}.mjpeg"),
        snapshot: format!("{api}/snap/{stream_id}.jpg"),
    }
}

/// A source as the API answers it: no password, the URL without its own.
#[derive(Debug, Clone, Serialize)]
pub struct SourceView {
    pub stream_id: String,
    pub name: String,
    pub url: String,
    pub kind: &'static str,
    pub username: String,
    pub has_password: bool,
    pub h264: bool,
    pub rtsp_transport: Option<String>,
    pub mode: Mode,
    pub idle_secs: u64,
    pub node: Option<String>,
    pub moves: u64,
    pub last_error: Option<String>,
    pub created_ms: u64,
    /// What its media node says of it (state, counters, what went wrong), while it runs.
    pub status: Option<SourceStatus>,
    pub urls: Option<SourceUrls>,
}

fn view(r: &SourceRecord, status: Option<SourceStatus>, node: Option<&MediaNodeRecord>) -> SourceView {
    SourceView {
        stream_id: r.stream_id.clone(),
        name: r.name.clone(),
        url: redact_url(&r.url),
        kind: if r.url.to_ascii_lowercase().starts_with("rtsp://") { "rtsp" } else { "mjpeg" },
        username: r.username.clone(),
        has_password: !r.password.is_empty() || r.url != redact_url(&r.url),
        h264: r.h264,
        rtsp_transport: r.rtsp_transport.clone(),
        mode: r.mode,
        idle_secs: r.idle_secs,
        node: r.node.clone(),
        moves: r.moves,
        last_error: r.last_error.clone(),
        created_ms: r.created_ms,
        status,
        urls: node.map(|n| urls_on(n, &r.stream_id)),
    }
}

/// Checks a new source and makes its row.
pub fn record_of(new: NewSource, now_ms: u64) -> Result<SourceRecord, PlayError> {
    let bad = |m: String| Err(PlayError::BadRequest(m));
    let stream_id = new.stream_id.unwrap_or_else(|| format!("src-{:08x}", rand::random::<u32>()));
    if !valid_stream_id(&stream_id) {
        return bad("stream_id must be 1-128 characters of [A-Za-z0-9_.-]".into());
    }
    let url = new.url.trim().to_owned();
    let lower = url.to_ascii_lowercase();
    if !(lower.starts_with("http://") || lower.starts_with("rtsp://")) || url::Url::parse(&url).is_err() {
        return bad(format!("url must be an http:// (MJPEG) or rtsp:// URL, not {:?}", redact_url(&url)));
    }
    if let Some(t) = new.rtsp_transport.as_deref().filter(|t| !matches!(*t, "tcp" | "udp")) {
        return bad(format!("rtsp_transport must be tcp or udp, not {t:?}"));
    }
    if new.name.chars().count() > 100 {
        return bad("name must be at most 100 characters".into());
    }
    let idle_secs = new.idle_secs.unwrap_or(DEFAULT_IDLE_SECS);
    if new.mode == Mode::OnDemand && !(5..=86_400).contains(&idle_secs) {
        return bad(format!("idle_secs must be 5-86400, not {idle_secs}"));
    }
    Ok(SourceRecord {
        stream_id,
        name: new.name,
        url,
        username: new.username,
        password: new.password,
        h264: new.h264,
        rtsp_transport: new.rtsp_transport,
        mode: new.mode,
        idle_secs,
        node: None,
        placed_ms: 0,
        moves: 0,
        last_error: None,
        created_ms: now_ms,
    })
}

fn api_of<'a>(cfg: &'a PlayConfig, node: &'a MediaNodeRecord) -> MediaApi<'a> {
    MediaApi { cfg, node: &node.id, api_url: &node.api_url }
}

/// Adds a source; an always-on one is placed at once.
pub async fn add(shared: &Shared, new: NewSource) -> Result<SourceView, PlayError> {
    let row = record_of(new, kit::clock::now_ms())?;
    if !SOURCES.insert(shared.store.as_ref(), &row.stream_id, &row).await? {
        return Err(PlayError::Exists(format!("source {}", row.stream_id)));
    }
    tracing::info!(source = %row.stream_id, url = %redact_url(&row.url), mode = ?row.mode, "pull source added");
    if row.mode == Mode::AlwaysOn {
        if let Err(e) = place(shared, &row.stream_id).await {
            tracing::warn!(source = %row.stream_id, error = %e, "placing the new source failed; the supervisor tries again");
        }
    }
    get(shared, &row.stream_id).await
}

/// One source with what its node says of it.
pub async fn get(shared: &Shared, id: &str) -> Result<SourceView, PlayError> {
    let row = SOURCES.get(shared.store.as_ref(), id).await?.ok_or_else(|| PlayError::NotFound(format!("source {id}")))?.row;
    let nodes = media_nodes::live_nodes(shared.store.as_ref()).await?;
    let node = row.node.as_ref().and_then(|n| nodes.iter().find(|r| &r.id == n));
    let status = match node {
        Some(n) => api_of(&shared.cfg.play, n).sources().await.ok().and_then(|all| all.into_iter().find(|s| s.stream_id == id)),
        None => None,
    };
    Ok(view(&row, status, node))
}

/// Every source with what its node says of it.
pub async fn list(shared: &Shared) -> Result<Vec<SourceView>, PlayError> {
    let nodes = media_nodes::live_nodes(shared.store.as_ref()).await?;
    let pulled = pulled_by(&shared.cfg.play, &nodes).await;
    let mut out: Vec<SourceView> = rows(shared.store.as_ref())
        .await?
        .into_iter()
        .map(|(_, v)| {
            let node = v.row.node.as_ref().and_then(|n| nodes.iter().find(|r| &r.id == n));
            let status = node.and_then(|n| pulled.get(&n.id)).and_then(|all| all.iter().find(|s| s.stream_id == v.row.stream_id)).cloned();
            view(&v.row, status, node)
        })
        .collect();
    out.sort_by(|a, b| a.stream_id.cmp(&b.stream_id));
    Ok(out)
}

/// Removes a source and stops it where it runs.
pub async fn remove(shared: &Shared, id: &str) -> Result<SourceView, PlayError> {
    let row = SOURCES.take(shared.store.as_ref(), id).await?.ok_or_else(|| PlayError::NotFound(format!("source {id}")))?;
    if let Some(node) = &row.node {
        unplace(shared, &row.stream_id, node).await;
    }
    tracing::info!(source = %id, "pull source removed");
    Ok(view(&SourceRecord { node: None, ..row }, None, None))
}

/// `POST /sources/{id}/play`: where to watch it, starting it first if it is not running.
pub async fn play(shared: &Shared, id: &str) -> Result<SourceView, PlayError> {
    let row = SOURCES.get(shared.store.as_ref(), id).await?.ok_or_else(|| PlayError::NotFound(format!("source {id}")))?.row;
    let nodes = media_nodes::live_nodes(shared.store.as_ref()).await?;
    let running = match row.node.as_ref().and_then(|n| nodes.iter().find(|r| &r.id == n)) {
        Some(n) => api_of(&shared.cfg.play, n).sources().await?.iter().any(|s| s.stream_id == id),
        None => false,
    };
    if !running {
        if let Some(old) = &row.node {
            forget_node(shared, id, old).await?;
        }
        place(shared, id).await?;
    }
    get(shared, id).await
}

async fn rows(store: &dyn Store) -> Result<Vec<(String, Versioned<SourceRecord>)>, PlayError> {
    let mut out = Vec::new();
    for (id, row) in SOURCES.list_versioned(store).await? {
        match row {
            Ok(v) => out.push((id, v)),
            Err(e) => tracing::warn!(source = %id, error = %e, "unreadable source row ignored"),
        }
    }
    Ok(out)
}

/// What each live media node pulls (nodes that do not answer are left out).
async fn pulled_by(cfg: &PlayConfig, nodes: &[MediaNodeRecord]) -> HashMap<String, Vec<SourceStatus>> {
    let asks = nodes.iter().map(|n| async move { (n.id.clone(), api_of(cfg, n).sources().await) });
    futures::future::join_all(asks).await.into_iter().filter_map(|(id, r)| r.ok().map(|s| (id, s))).collect()
}

/// Puts an unplaced source on the least-loaded media node. Does nothing if another sip node
/// placed it meanwhile.
pub async fn place(shared: &Shared, id: &str) -> Result<(), PlayError> {
    let store = shared.store.as_ref();
    let Some(read) = SOURCES.get(store, id).await? else { return Ok(()) };
    if read.row.node.is_some() {
        return Ok(());
    }
    let node = match media_nodes::reserve(store, &[]).await {
        Ok(n) => n,
        Err(e) => {
            note_error(store, id, e.to_string()).await;
            return Err(e);
        }
    };
    let placed = SourceRecord { node: Some(node.id.clone()), placed_ms: kit::clock::now_ms(), last_error: None, ..read.row.clone() };
    if !SOURCES.swap(store, id, &read, &placed).await? {
        let _ = store.release_load(NodeKind::Media.as_str(), &node.id).await;
        return Ok(());
    }
    match api_of(&shared.cfg.play, &node).open_source(&placed.open()).await {
        Ok(_) => {
            tracing::info!(source = %id, node = %node.id, "pull source placed");
            Ok(())
        }
        Err(e) => {
            forget_node(shared, id, &node.id).await?;
            note_error(store, id, e.to_string()).await;
            Err(e)
        }
    }
}

/// The row no longer names `node` (the source stopped there), and its load unit is given back.
async fn forget_node(shared: &Shared, id: &str, node: &str) -> Result<(), PlayError> {
    let store = shared.store.as_ref();
    for _ in 0..5 {
        let Some(read) = SOURCES.get(store, id).await? else { return Ok(()) };
        if read.row.node.as_deref() != Some(node) {
            return Ok(());
        }
        let row = SourceRecord { node: None, ..read.row.clone() };
        if SOURCES.swap(store, id, &read, &row).await? {
            let _ = store.release_load(NodeKind::Media.as_str(), node).await;
            return Ok(());
        }
    }
    Err(PlayError::Busy(format!("source {id} changes too often")))
}

/// Stops the source on `node` and gives back its load unit.
async fn unplace(shared: &Shared, id: &str, node: &str) {
    if let Ok(nodes) = media_nodes::live_nodes(shared.store.as_ref()).await {
        if let Some(n) = nodes.iter().find(|r| r.id == node) {
            if let Err(e) = api_of(&shared.cfg.play, n).close_source(id).await {
                tracing::warn!(source = %id, node, error = %e, "stopping the source on its node failed");
            }
        }
    }
    let _ = shared.store.release_load(NodeKind::Media.as_str(), node).await;
}

async fn note_error(store: &dyn Store, id: &str, error: String) {
    if let Ok(Some(read)) = SOURCES.get(store, id).await {
        let row = SourceRecord { last_error: Some(error), ..read.row.clone() };
        let _ = SOURCES.swap(store, id, &read, &row).await;
    }
}

/// What the supervisor does with one source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Nothing,
    /// Runs on another node than the row says (the row is set to it).
    Adopt(String),
    /// Stopped where the row says, or that node is gone: forget it (and `moved` counts).
    Forget {
        node: String,
        moved: bool,
    },
    Place,
}

/// Decides, without I/O: `running_on` is the node pulling it now (if any), `live` whether the
/// row's node is alive.
pub fn step(row: &SourceRecord, running_on: Option<&str>, live: bool, now_ms: u64) -> Step {
    match (row.node.as_deref(), running_on) {
        (Some(n), Some(r)) if n == r => Step::Nothing,
        (_, Some(r)) => Step::Adopt(r.to_owned()),
        (Some(n), None) if !live => Step::Forget { node: n.to_owned(), moved: true },
        // Just placed: the node's list may predate it.
        (Some(_), None) if now_ms.saturating_sub(row.placed_ms) < GRACE_MS => Step::Nothing,
        (Some(n), None) => Step::Forget { node: n.to_owned(), moved: false },
        (None, None) if row.mode == Mode::AlwaysOn => Step::Place,
        (None, None) => Step::Nothing,
    }
}

/// One look at every source.
pub async fn supervise(shared: &Shared) -> Result<(), PlayError> {
    let store = shared.store.as_ref();
    let nodes = media_nodes::live_nodes(store).await?;
    // The nodes first, then the rows: a source a node pulls was added (its row written) before
    // it was asked, so the rows read after show it, and a source without a row was deleted.
    let pulled = pulled_by(&shared.cfg.play, &nodes).await;
    let rows = rows(store).await?;
    let now = kit::clock::now_ms();
    let mut running: HashMap<&str, &str> = HashMap::new();
    for (node, list) in &pulled {
        for s in list {
            running.insert(s.stream_id.as_str(), node.as_str());
        }
    }
    for (id, read) in &rows {
        let live = read.row.node.as_ref().is_some_and(|n| nodes.iter().any(|r| &r.id == n));
        match step(&read.row, running.get(id.as_str()).copied(), live, now) {
            Step::Nothing => {}
            Step::Adopt(node) => {
                let row = SourceRecord { node: Some(node), placed_ms: now, ..read.row.clone() };
                SOURCES.swap(store, id, read, &row).await?;
            }
            Step::Forget { node, moved } => {
                let mut row = SourceRecord { node: None, ..read.row.clone() };
                if moved {
                    row.moves += 1;
                    tracing::warn!(source = %id, %node, "the media node of a pull source is gone; placing it again");
                }
                if SOURCES.swap(store, id, read, &row).await? {
                    let _ = store.release_load(NodeKind::Media.as_str(), &node).await;
                    if row.mode == Mode::AlwaysOn {
                        let _ = place(shared, id).await;
                    }
                }
            }
            Step::Place => {
                let _ = place(shared, id).await;
            }
        }
    }
    // Pulled with no row: deleted while its node could not be told.
    let known: std::collections::HashSet<&str> = rows.iter().map(|(id, _)| id.as_str()).collect();
    for n in &nodes {
        for s in pulled.get(&n.id).into_iter().flatten().filter(|s| !known.contains(s.stream_id.as_str())) {
            tracing::info!(source = %s.stream_id, node = %n.id, "closing a pull source that has no row");
            let _ = api_of(&shared.cfg.play, n).close_source(&s.stream_id).await;
        }
    }
    Ok(())
}

/// The supervisor: every node runs it; swaps keep them from acting twice.
pub async fn run(shared: Arc<Shared>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        if let Err(e) = supervise(&shared).await {
            tracing::warn!(error = %e, "pull source supervision");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(node: Option<&str>, mode: Mode, placed_ms: u64) -> SourceRecord {
        let new = NewSource {
            stream_id: Some("cam".into()),
            name: String::new(),
            url: "http://127.0.0.1/video".into(),
            username: String::new(),
            password: String::new(),
            h264: false,
            rtsp_transport: None,
            mode,
            idle_secs: None,
        };
        SourceRecord { node: node.map(str::to_owned), placed_ms, ..record_of(new, 0).unwrap() }
    }

    #[test]
    fn the_supervisor_places_moves_and_forgets() {
        let now = 100_000;
        let always = |n, at| row(n, Mode::AlwaysOn, at);
        assert_eq!(step(&always(None, 0), None, false, now), Step::Place);
        assert_eq!(step(&always(Some("m1"), 0), Some("m1"), true, now), Step::Nothing);
        assert_eq!(step(&always(Some("m1"), 0), None, false, now), Step::Forget { node: "m1".into(), moved: true });
        assert_eq!(step(&always(Some("m1"), 0), None, true, now), Step::Forget { node: "m1".into(), moved: false });
        assert_eq!(step(&always(Some("m1"), now - 1000), None, true, now), Step::Nothing, "just placed");
        assert_eq!(step(&always(None, 0), Some("m2"), false, now), Step::Adopt("m2".into()));
        assert_eq!(step(&always(Some("m1"), 0), Some("m2"), true, now), Step::Adopt("m2".into()));
        let on_demand = |n| row(n, Mode::OnDemand, 0);
        assert_eq!(step(&on_demand(None), None, false, now), Step::Nothing, "waits for a player");
        assert_eq!(step(&on_demand(Some("m1")), None, true, now), Step::Forget { node: "m1".into(), moved: false });
    }

    #[test]
    fn new_sources_are_checked_and_never_shown_with_their_password() {
        let new = |url: &str| NewSource {
            stream_id: None,
            name: "gate".into(),
            url: url.into(),
            username: "admin".into(),
            password: "secret".into(),
            h264: true,
            rtsp_transport: None,
            mode: Mode::OnDemand,
            idle_secs: None,
        };
        let r = record_of(new("rtsp://admin:other@10.0.0.2/live"), 7).unwrap();
        assert!(r.stream_id.starts_with("src-") && r.idle_secs == DEFAULT_IDLE_SECS);
        let shown = serde_json::to_string(&view(&r, None, None)).unwrap();
        assert!(!shown.contains("secret") && !shown.contains("other"), "{shown}");
        assert!(shown.contains("\"has_password\":true") && shown.contains("\"kind\":\"rtsp\""));
        assert!(!format!("{r:?}").contains("secret"));
        for bad in ["ftp://cam/", "http://", "cam/video"] {
            assert!(matches!(record_of(new(bad), 0), Err(PlayError::BadRequest(_))), "{bad}");
        }
        let mut odd = new("http://cam/");
        odd.rtsp_transport = Some("sctp".into());
        assert!(record_of(odd, 0).is_err());
        let mut id = new("http://cam/");
        id.stream_id = Some("a/b".into());
        assert!(record_of(id, 0).is_err());
    }
}
