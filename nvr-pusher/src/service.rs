//! The pusher node's state: its sessions by play handle and the ended ones BEATS still answers
//! for. Its jobs are modules over `Pusher`: `nodes` (its record in the cluster, the least-loaded
//! choice, housekeeping), `routing` (a call reaches the node that holds the play), `plays`
//! (starting and ending a session), `calls` (the six calls, as `calls::Call`).
//!
//! Cluster: each node keeps a record (`{gbc}:node:nvr:<id>`, TTL) with its API address and
//! load. A new play is taken by the least-loaded node, chosen and counted atomically by the
//! Store (`reserve_least_loaded`, pool `nvr`), and forwarded there when that is not the node
//! the web tier called. Each session has a row in table `nvr_sessions` naming its node, so a
//! call for a handle reaches the node that holds it whichever node the web tier calls.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use cluster::store::Store;
use cluster::table::Table;
use cluster::wire::NodeKind;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::config::NvrConfig;
use crate::session::Session;
use crate::status::Status;

/// Store node kind and load pool of nvr-pushers.
pub(crate) const NODE_KIND: &str = NodeKind::Nvr.as_str();
pub(crate) const POOL: &str = NodeKind::Nvr.as_str();
/// The sessions' rows, by play handle.
pub const SESSIONS: Table<SessionRow> = Table::new("nvr_sessions");
/// Set on a request one node forwards to another: serve it here, its load unit is reserved.
pub const FORWARDED: &str = "X-Gbc-Nvr-Forwarded";

pub fn now_ms() -> u64 {
    kit::clock::now_ms()
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

pub struct Pusher {
    pub cfg: NvrConfig,
    pub store: Arc<dyn Store>,
    pub node: String,
    pub instance: String,
    pub api_url: Mutex<String>,
    pub(crate) sessions: Mutex<HashMap<u64, Arc<Session>>>,
    /// Ended sessions: (when it ended, status, reason), answered by BEATS for `ended_keep_secs`.
    pub(crate) ended: Mutex<HashMap<u64, (Instant, Status, String)>>,
    pub shutdown: CancellationToken,
    pub(crate) bytes_last: Mutex<(Instant, u64)>,
}

/// The reply of one call: the body (`status_code` inside; HTTP is 200 either way, as the
/// original's clients expect).
pub type Reply = Value;

pub(crate) fn reply(status: Status, message: &str) -> Reply {
    status.reply(message, Value::Null)
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

    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Session>>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn session(&self, handle: u64) -> Option<Arc<Session>> {
        self.lock().get(&handle).cloned()
    }

    pub fn sessions(&self) -> Vec<Arc<Session>> {
        self.lock().values().cloned().collect()
    }

    pub(crate) fn api_url(&self) -> String {
        self.api_url.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Bytes pushed by the sessions running now.
    pub(crate) fn bytes_now(&self) -> u64 {
        self.sessions().iter().map(|s| s.stats.lock().unwrap_or_else(|e| e.into_inner()).bytes).sum()
    }

    /// What an ended session said, while BEATS still answers for it.
    pub(crate) fn ended_reply(&self, handle: u64) -> Option<Reply> {
        self.ended.lock().unwrap_or_else(|e| e.into_inner()).get(&handle).map(|(_, status, reason)| reply(*status, reason))
    }
}
