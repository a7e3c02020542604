//! The lpr-server's state (`Lpr`) and what its jobs share: Store names, the error type, ids
//! and file-name helpers. Each job is its own module over `Lpr`: `cameras` (the registry),
//! `whitelist` (lane groups, whitelists and each camera's copy), `commands` (queues and comet
//! polls), `passages` (plate results, images, IO and serial events), `snapshots`; `reply`
//! decides what a plate result's reply says, without I/O.
//!
//! Store layout (`docs/redis.md`): tables `lpr_passages`, `lpr_cameras`, `lpr_groups`,
//! `lpr_wl:<group>`, `lpr_copy:<serial>`, `lpr_snapshots`; indexes `lpr:passages`,
//! `lpr:plate:<plate>`, `lpr:camera:<serial>`; queues `lpr:cmd:<serial>`; channels
//! `gbc:lpr:wake` (a camera has something to receive) and `gbc:events:lpr`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use cluster::store::Store;
use serde_json::Value;
use tokio::sync::Notify;

use crate::cameras::Camera;
use crate::config::LprConfig;
use crate::whitelist::Group;

pub const PASSAGES: &str = "lpr_passages";
pub const CAMERAS: &str = "lpr_cameras";
pub const GROUPS: &str = "lpr_groups";
pub const SNAPSHOTS: &str = "lpr_snapshots";
/// IO triggers and serial data from cameras.
pub const DEVICE_EVENTS: &str = "lpr_events";
pub const WAKE: &str = "gbc:lpr:wake";
pub const EVENTS: &str = cluster::wire::LPR_EVENTS;

#[derive(Debug, thiserror::Error)]
pub enum LprError {
    #[error("store: {0}")]
    Store(#[from] cluster::store::StoreError),
    #[error("writing image {0}: {1}")]
    Image(String, std::io::Error),
    /// A row changes too fast to update (compare-and-set lost 64 times): try again.
    #[error("{0}")]
    Busy(String),
}

pub struct Lpr {
    pub cfg: LprConfig,
    pub store: Arc<dyn Store>,
    pub node: String,
    /// Comet polls held on this node, by serial.
    pub(crate) waiters: Mutex<HashMap<String, Arc<Notify>>>,
    /// When we last answered each camera (comet detection).
    pub(crate) last_reply: Mutex<HashMap<String, std::time::Instant>>,
    /// Camera records as last read or written here, and when: a camera pushing many results a
    /// second costs a Store write every `CAMERA_REFRESH`, not one per result.
    pub(crate) cameras_seen: Mutex<HashMap<String, (Camera, std::time::Instant)>>,
    /// Groups as last read, for `GROUP_REFRESH` (a policy or whitelist change shows within it;
    /// changes made through this node show at once).
    pub(crate) groups_seen: Mutex<HashMap<String, (Group, std::time::Instant)>>,
}

/// The rows of a table listing that read; each one that does not is logged by name (and left
/// in the Store for an operator), never silently dropped.
pub(crate) fn readable<T>(rows: Vec<(String, cluster::store::StoreResult<T>)>) -> Vec<T> {
    rows.into_iter().filter_map(|(_, row)| row.map_err(|e| tracing::warn!(error = %e, "unreadable row skipped")).ok()).collect()
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub fn now_ms() -> u64 {
    kit::clock::now_ms()
}

pub(crate) fn new_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// `YYYY/MM/DD` of a Unix ms time, UTC.
pub(crate) fn date_dir(ms: u64) -> String {
    let iso = gb::sip::gb_date(ms, 0);
    format!("{}/{}/{}", &iso[0..4], &iso[5..7], &iso[8..10])
}

/// Keeps ids usable in file names and keys.
pub(crate) fn safe(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' { c } else { '_' }).take(64).collect()
}

impl Lpr {
    pub fn new(cfg: LprConfig, store: Arc<dyn Store>) -> Arc<Self> {
        let node = cfg.node_id.clone().unwrap_or_else(|| format!("lpr-{:08x}", rand::random::<u32>()));
        Arc::new(Self {
            cfg,
            store,
            node,
            waiters: Mutex::new(HashMap::new()),
            last_reply: Mutex::new(HashMap::new()),
            cameras_seen: Mutex::new(HashMap::new()),
            groups_seen: Mutex::new(HashMap::new()),
        })
    }

    pub fn allowed(&self, serial: &str) -> bool {
        self.cfg.allow_serials.is_empty() || self.cfg.allow_serials.iter().any(|s| s == serial)
    }

    pub async fn publish(&self, event: Value) {
        self.publish_raw(&event.to_string()).await;
    }

    pub async fn publish_raw(&self, event: &str) {
        if let Err(e) = self.store.publish(EVENTS, event).await {
            tracing::warn!(error = %e, "publishing an lpr event failed");
        }
    }
}
