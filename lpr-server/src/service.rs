//! The lpr-server's state and rules over the Store: passages (stored before the reply, once
//! per (serialno, plateid)), the camera registry, lane groups with their whitelist and policy,
//! each camera's whitelist copy and what it still needs, and the per-camera command queues that
//! replies and comet polls drain.
//!
//! Store layout (`docs/redis.md`): tables `lpr_passages`, `lpr_cameras`, `lpr_groups`,
//! `lpr_wl:<group>`, `lpr_copy:<serial>`, `lpr_snapshots`; indexes `lpr:passages`,
//! `lpr:plate:<plate>`, `lpr:camera:<serial>`; queues `lpr:cmd:<serial>`; channels
//! `gbc:lpr:wake` (a camera has something to receive) and `gbc:events:lpr`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use cluster::store::{Op, OpOut, Store};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::Digest;
use tokio::sync::Notify;

use crate::config::LprConfig;
use crate::gate::{self, Policy, Verdict};
use crate::proto::{Heartbeat, PlateResult, Reply, Sender, WhiteListEntry};

pub const PASSAGES: &str = "lpr_passages";
pub const CAMERAS: &str = "lpr_cameras";
pub const GROUPS: &str = "lpr_groups";
pub const SNAPSHOTS: &str = "lpr_snapshots";
/// IO triggers and serial data from cameras.
pub const DEVICE_EVENTS: &str = "lpr_events";
pub const WAKE: &str = "gbc:lpr:wake";
pub const EVENTS: &str = "gbc:events:lpr";

fn wl_table(group: &str) -> String {
    format!("lpr_wl:{group}")
}
fn copy_table(serial: &str) -> String {
    format!("lpr_copy:{serial}")
}
fn cmd_queue(serial: &str) -> String {
    format!("lpr:cmd:{serial}")
}

#[derive(Debug, thiserror::Error)]
pub enum LprError {
    #[error("store: {0}")]
    Store(#[from] cluster::store::StoreError),
    #[error("writing image {0}: {1}")]
    Image(String, std::io::Error),
    #[error("{0}")]
    Corrupt(String),
}

/// A stored passage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Passage {
    /// `<serialno>-<plateid>` (or the camera time when there is no plateid).
    pub id: String,
    pub serialno: String,
    pub device_name: Option<String>,
    pub ipaddr: Option<String>,
    pub plate: Option<String>,
    pub color_type: Option<u64>,
    pub plate_type: Option<u64>,
    pub confidence: Option<u64>,
    pub direction: Option<u64>,
    pub trigger_type: Option<u64>,
    pub plateid: Option<u64>,
    pub offline: bool,
    /// When it happened: the camera's time if it sent one, else when we received it.
    pub time_ms: u64,
    pub received_ms: u64,
    pub verdict: Verdict,
    pub gate_opened: bool,
    pub group: String,
    /// Image files, relative to `lpr.image_dir`.
    pub image_full: Option<String>,
    pub image_plate: Option<String>,
    /// The rest of the camera's PlateResult, as sent (images removed).
    pub detail: Value,
}

/// A camera's record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Camera {
    pub serialno: String,
    pub device_name: Option<String>,
    pub ipaddr: Option<String>,
    pub port: Option<u64>,
    pub user_name: Option<String>,
    /// SHA-256 of the camera's `pass_wd`, keyed by its serial: never the password itself.
    pub pass_wd_sha256: Option<String>,
    pub channel_num: Option<u64>,
    /// The peer address its pushes come from.
    pub remote: Option<String>,
    pub last_seen_ms: u64,
    pub group: String,
    /// IO output pulsed to open the gate.
    pub gate_io: u64,
    /// Comet polling seen (a poll followed our reply at once).
    pub comet: bool,
    /// `camera_offline` was published for the current silence.
    #[serde(default)]
    pub offline_reported: bool,
    /// The group whitelist version its copy matched when last checked.
    #[serde(default)]
    pub synced_version: Option<u64>,
}

/// A lane group's settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Group {
    pub policy: Policy,
    /// Counts whitelist changes: a camera synced at this version needs nothing.
    #[serde(default)]
    pub wl_version: u64,
    /// Serial payloads (base64) sent with decisions: for LED boards and voice modules.
    #[serde(default)]
    pub serial_on_open: Vec<SerialPayload>,
    #[serde(default)]
    pub serial_on_deny: Vec<SerialPayload>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SerialPayload {
    pub serial_channel: u64,
    /// Base64 bytes to write.
    pub data: String,
}

/// An operator command queued for a camera.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Command {
    OpenGate { id: String, io: Option<u64> },
    Trigger { id: String },
    Snapshot { id: String },
    Serial { id: String, serial_channel: u64, data: String },
}

impl Command {
    pub fn id(&self) -> &str {
        match self {
            Command::OpenGate { id, .. } | Command::Trigger { id } | Command::Snapshot { id } | Command::Serial { id, .. } => id,
        }
    }
}

/// What a camera still needs to receive for its whitelist to match its group's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SyncState {
    pub group: String,
    pub desired: usize,
    pub on_camera: usize,
    pub to_add: usize,
    pub to_delete: usize,
    pub in_sync: bool,
}

pub struct Lpr {
    pub cfg: LprConfig,
    pub store: Arc<dyn Store>,
    pub node: String,
    /// Comet polls held on this node, by serial.
    waiters: Mutex<HashMap<String, Arc<Notify>>>,
    /// When we last answered each camera (comet detection).
    last_reply: Mutex<HashMap<String, std::time::Instant>>,
    /// Camera records as last read or written here, and when: a camera pushing many results a
    /// second costs a Store write every `CAMERA_REFRESH`, not one per result.
    cameras_seen: Mutex<HashMap<String, (Camera, std::time::Instant)>>,
    /// Groups as last read, for `GROUP_REFRESH` (a policy or whitelist change shows within it;
    /// changes made through this node show at once).
    groups_seen: Mutex<HashMap<String, (Group, std::time::Instant)>>,
}

/// Queued commands taken for one reply (those that do not fit go back).
pub const COMMANDS_PER_REPLY: usize = 16;

const GROUP_REFRESH: std::time::Duration = std::time::Duration::from_secs(1);

/// How stale a cached camera record may be (changes made on another node show within this).
const CAMERA_REFRESH: std::time::Duration = std::time::Duration::from_secs(2);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A plate result once stored.
pub struct StoredPassage {
    pub passage: Passage,
    /// This call stored it (false: a resend of a stored record).
    pub fresh: bool,
    pub json: String,
    pub commands: Vec<String>,
}

/// Adds to the indexes a passage is listed in: all, its camera, its plate.
fn index_ops(p: &Passage) -> Vec<Op> {
    let mut indexes = vec!["lpr:passages".to_owned(), format!("lpr:camera:{}", p.serialno)];
    if let Some(plate) = &p.plate {
        indexes.push(format!("lpr:plate:{plate}"));
    }
    indexes.into_iter().map(|index| Op::IndexAdd { index, score: p.time_ms as f64, member: p.id.clone() }).collect()
}

pub fn now_ms() -> u64 {
    kit::clock::now_ms()
}

fn new_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// `YYYY/MM/DD` of a Unix ms time, UTC.
fn date_dir(ms: u64) -> String {
    let iso = gb::sip::gb_date(ms, 0);
    format!("{}/{}/{}", &iso[0..4], &iso[5..7], &iso[8..10])
}

/// Keeps ids usable in file names and keys.
fn safe(s: &str) -> String {
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

    // ---- cameras -------------------------------------------------------------------------

    pub async fn camera(&self, serial: &str) -> Result<Option<Camera>, LprError> {
        match self.store.table_get(CAMERAS, serial).await? {
            Some(raw) => serde_json::from_str(&raw).map(Some).map_err(|e| LprError::Corrupt(e.to_string())),
            None => Ok(None),
        }
    }

    async fn put_camera(&self, c: &Camera) -> Result<(), LprError> {
        self.store.table_put(CAMERAS, &c.serialno, &serde_json::to_string(c).unwrap_or_default()).await?;
        let mut g = lock(&self.cameras_seen);
        if g.len() > 100_000 {
            g.clear();
        }
        g.insert(c.serialno.clone(), (c.clone(), std::time::Instant::now()));
        Ok(())
    }

    /// Any message from a camera keeps its record; a heartbeat fills it in. A camera heard
    /// from again after `offline_after_secs` raises `camera_online`.
    pub async fn seen(&self, sender: &Sender, hb: Option<&Heartbeat>, remote: &str) -> Result<Camera, LprError> {
        let now = now_ms();
        // Fast path: a plate result from a camera whose record this node wrote moments ago.
        if hb.is_none() {
            // Refreshed well within the offline threshold, so a busy camera never looks silent.
            let refresh = CAMERA_REFRESH.min(std::time::Duration::from_millis(self.cfg.offline_after_secs * 250));
            let cached = lock(&self.cameras_seen).get(&sender.serialno).filter(|(_, at)| at.elapsed() < refresh).map(|(c, _)| c.clone());
            if let Some(mut c) = cached {
                c.last_seen_ms = now;
                return Ok(c);
            }
        }
        let mut c = self.camera(&sender.serialno).await?.unwrap_or_else(|| Camera {
            serialno: sender.serialno.clone(),
            group: "default".into(),
            ..Default::default()
        });
        let was_offline = c.offline_reported || now.saturating_sub(c.last_seen_ms) > self.cfg.offline_after_secs * 1000;
        c.last_seen_ms = now;
        c.offline_reported = false;
        c.remote = Some(remote.to_owned());
        if sender.device_name.is_some() {
            c.device_name = sender.device_name.clone();
        }
        if sender.ipaddr.is_some() {
            c.ipaddr = sender.ipaddr.clone();
        }
        if let Some(h) = hb {
            c.device_name = h.device_name.clone().or(c.device_name);
            c.ipaddr = h.ipaddr.clone().or(c.ipaddr);
            c.port = h.port.or(c.port);
            c.user_name = h.user_name.clone().or(c.user_name);
            c.channel_num = h.channel_num.or(c.channel_num);
            if let Some(p) = &h.pass_wd {
                let mut d = sha2::Sha256::new();
                d.update(c.serialno.as_bytes());
                d.update(b":");
                d.update(p.as_bytes());
                c.pass_wd_sha256 = Some(hex::encode(d.finalize()));
            }
        }
        self.put_camera(&c).await?;
        if was_offline {
            self.publish(json!({"event": "camera_online", "serialno": c.serialno, "at_ms": now})).await;
        }
        Ok(c)
    }

    pub async fn set_comet(&self, serial: &str) -> Result<Camera, LprError> {
        let mut c = self.camera(serial).await?.unwrap_or_default();
        c.comet = true;
        self.put_camera(&c).await?;
        Ok(c)
    }

    pub async fn cameras(&self) -> Result<Vec<Camera>, LprError> {
        Ok(self.store.table_list(CAMERAS).await?.into_iter().filter_map(|(_, raw)| serde_json::from_str(&raw).ok()).collect())
    }

    pub async fn set_camera(&self, serial: &str, group: Option<String>, gate_io: Option<u64>) -> Result<Camera, LprError> {
        let mut c = self.camera(serial).await?.unwrap_or_else(|| Camera {
            serialno: serial.to_owned(),
            group: "default".into(),
            ..Default::default()
        });
        if let Some(g) = group {
            c.group = g;
        }
        if let Some(io) = gate_io {
            c.gate_io = io;
        }
        c.synced_version = None; // another group's list: compare in full
        self.put_camera(&c).await?;
        self.wake(serial).await;
        Ok(c)
    }

    // ---- groups and whitelists ----------------------------------------------------------------

    pub async fn group(&self, name: &str) -> Result<Group, LprError> {
        if let Some((g, at)) = lock(&self.groups_seen).get(name) {
            if at.elapsed() < GROUP_REFRESH {
                return Ok(g.clone());
            }
        }
        self.group_fresh(name).await
    }

    /// The group as stored now (and cached for `group`).
    pub async fn group_fresh(&self, name: &str) -> Result<Group, LprError> {
        let g: Group = match self.store.table_get(GROUPS, name).await? {
            Some(raw) => serde_json::from_str(&raw).map_err(|e| LprError::Corrupt(e.to_string()))?,
            None => Group::default(),
        };
        let mut m = lock(&self.groups_seen);
        if m.len() > 10_000 {
            m.clear();
        }
        m.insert(name.to_owned(), (g.clone(), std::time::Instant::now()));
        Ok(g)
    }

    /// Sets a group's policy and payloads (its whitelist version is kept).
    pub async fn set_group(&self, name: &str, g: &Group) -> Result<Group, LprError> {
        let mut g = g.clone();
        g.wl_version = self.group_fresh(name).await?.wl_version;
        self.store.table_put(GROUPS, name, &serde_json::to_string(&g).unwrap_or_default()).await?;
        lock(&self.groups_seen).remove(name);
        Ok(g)
    }

    pub async fn whitelist(&self, group: &str) -> Result<Vec<WhiteListEntry>, LprError> {
        Ok(self.store.table_list(&wl_table(group)).await?.into_iter().filter_map(|(_, raw)| serde_json::from_str(&raw).ok()).collect())
    }

    async fn entry(&self, group: &str, plate: &str) -> Result<Option<WhiteListEntry>, LprError> {
        Ok(self.store.table_get(&wl_table(group), plate).await?.and_then(|raw| serde_json::from_str(&raw).ok()))
    }

    /// Adds or replaces entries, then wakes the group's cameras so the change reaches them.
    pub async fn whitelist_put(&self, group: &str, entries: &[WhiteListEntry]) -> Result<(), LprError> {
        for e in entries {
            self.store.table_put(&wl_table(group), &e.plate, &serde_json::to_string(e).unwrap_or_default()).await?;
        }
        self.bump_version(group).await?;
        self.wake_group(group).await
    }

    pub async fn whitelist_delete(&self, group: &str, plate: &str) -> Result<bool, LprError> {
        let gone = self.store.table_take(&wl_table(group), plate).await?.is_some();
        self.bump_version(group).await?;
        self.wake_group(group).await?;
        Ok(gone)
    }

    /// A whitelist changed: cameras synced at an older version compare again.
    async fn bump_version(&self, group: &str) -> Result<(), LprError> {
        for _ in 0..64 {
            let raw = self.store.table_get(GROUPS, group).await?;
            let mut g: Group = raw.as_deref().and_then(|r| serde_json::from_str(r).ok()).unwrap_or_default();
            g.wl_version += 1;
            let new = serde_json::to_string(&g).unwrap_or_default();
            let done = match &raw {
                Some(old) => self.store.table_swap(GROUPS, group, old, &new).await?,
                None => self.store.table_insert(GROUPS, group, &new).await?,
            };
            if done {
                lock(&self.groups_seen).remove(group);
                return Ok(());
            }
        }
        Err(LprError::Corrupt(format!("group {group} changes too fast")))
    }

    async fn wake_group(&self, group: &str) -> Result<(), LprError> {
        for c in self.cameras().await?.into_iter().filter(|c| c.group == group) {
            self.wake(&c.serialno).await;
        }
        Ok(())
    }

    /// The next whitelist operation for a camera: deletes first (a removed plate must stop
    /// opening), then adds and changes; one operate type, at most `whitelist_batch` entries.
    pub async fn next_sync(&self, cam: &Camera, group: &Group) -> Result<Option<(u8, Vec<WhiteListEntry>)>, LprError> {
        // The common case, once a camera is in sync: nothing changed since, no Store reads.
        if cam.synced_version == Some(group.wl_version) {
            return Ok(None);
        }
        let desired: HashMap<String, WhiteListEntry> =
            self.whitelist(&cam.group).await?.into_iter().map(|e| (e.plate.clone(), e)).collect();
        let copy = self.store.table_list(&copy_table(&cam.serialno)).await?;
        let batch = self.cfg.whitelist_batch.clamp(1, 5);
        let deletes: Vec<WhiteListEntry> = copy
            .iter()
            .filter(|(plate, _)| !desired.contains_key(plate))
            .take(batch)
            .map(|(plate, _)| WhiteListEntry { plate: plate.clone(), enable: 0, need_alarm: 0, enable_time: None, overdue_time: None })
            .collect();
        if !deletes.is_empty() {
            return Ok(Some((1, deletes)));
        }
        let have: HashMap<String, String> = copy.into_iter().collect();
        let mut adds: Vec<&WhiteListEntry> =
            desired.values().filter(|e| have.get(&e.plate) != Some(&serde_json::to_string(e).unwrap_or_default())).collect();
        adds.sort_by(|a, b| a.plate.cmp(&b.plate));
        let adds: Vec<WhiteListEntry> = adds.into_iter().take(batch).cloned().collect();
        if adds.is_empty() {
            // In sync at this version: remembered so the next replies skip the comparison.
            let mut c = cam.clone();
            c.synced_version = Some(group.wl_version);
            self.put_camera(&c).await?;
            return Ok(None);
        }
        Ok(Some((0, adds)))
    }

    /// After a reply carrying a whitelist operation was sent: the camera's copy now has it.
    pub async fn sync_sent(&self, serial: &str, op: u8, entries: &[WhiteListEntry]) -> Result<(), LprError> {
        let t = copy_table(serial);
        for e in entries {
            if op == 1 {
                self.store.table_take(&t, &e.plate).await?;
            } else {
                self.store.table_put(&t, &e.plate, &serde_json::to_string(e).unwrap_or_default()).await?;
            }
        }
        Ok(())
    }

    pub async fn sync_state(&self, cam: &Camera) -> Result<SyncState, LprError> {
        let desired = self.whitelist(&cam.group).await?;
        let copy: HashMap<String, String> = self.store.table_list(&copy_table(&cam.serialno)).await?.into_iter().collect();
        let to_add = desired.iter().filter(|e| copy.get(&e.plate) != Some(&serde_json::to_string(e).unwrap_or_default())).count();
        let to_delete = copy.keys().filter(|p| !desired.iter().any(|e| &e.plate == *p)).count();
        Ok(SyncState {
            group: cam.group.clone(),
            desired: desired.len(),
            on_camera: copy.len(),
            to_add,
            to_delete,
            in_sync: to_add == 0 && to_delete == 0,
        })
    }

    // ---- commands and comet -------------------------------------------------------------------

    pub async fn queue_command(&self, serial: &str, cmd: &Command) -> Result<(), LprError> {
        self.store.queue_push(&cmd_queue(serial), &serde_json::to_string(cmd).unwrap_or_default()).await?;
        if let Command::Snapshot { id } = cmd {
            let rec = json!({"id": id, "serialno": serial, "requested_ms": now_ms(), "image": null});
            self.store.table_put(SNAPSHOTS, id, &rec.to_string()).await?;
        }
        self.wake(serial).await;
        Ok(())
    }

    /// Tells whichever node holds this camera's comet poll (maybe this one) to answer it now.
    pub async fn wake(&self, serial: &str) {
        if let Err(e) = self.store.publish(WAKE, serial).await {
            tracing::warn!(error = %e, "publishing a wake-up failed");
        }
    }

    /// A wake-up arrived (from any node): release the poll held here, if any.
    pub fn woken(&self, serial: &str) {
        if let Some(n) = lock(&self.waiters).get(serial) {
            n.notify_one();
        }
    }

    /// Whether this heartbeat is a comet poll: the camera polled again right after our reply.
    pub fn is_comet(&self, serial: &str) -> bool {
        self.cfg.comet_detect_ms > 0
            && lock(&self.last_reply).get(serial).is_some_and(|t| t.elapsed() <= std::time::Duration::from_millis(self.cfg.comet_detect_ms))
    }

    pub fn replied(&self, serial: &str) {
        let mut g = lock(&self.last_reply);
        if g.len() > 100_000 {
            g.clear();
        }
        g.insert(serial.to_owned(), std::time::Instant::now());
    }

    /// The notifier a held poll waits on (registered before the queue is checked, so a wake-up
    /// in between is not lost).
    pub fn waiter(&self, serial: &str) -> Arc<Notify> {
        lock(&self.waiters).entry(serial.to_owned()).or_default().clone()
    }

    pub fn unwait(&self, serial: &str, n: &Arc<Notify>) {
        let mut g = lock(&self.waiters);
        if g.get(serial).is_some_and(|cur| Arc::ptr_eq(cur, n)) && Arc::strong_count(n) <= 2 {
            g.remove(serial);
        }
    }

    /// Fills `reply` with what is waiting for the camera: queued commands (as many as fit one
    /// reply: one snapshot, serial writes in order) and the next whitelist operation. Returns
    /// the whitelist operation put in, to be marked sent once the reply is out.
    /// `popped`: commands already taken from the queue (in the same round trip as the store),
    /// else they are taken here.
    pub async fn fill_reply(
        &self,
        cam: &Camera,
        group: &Group,
        reply: &mut Reply,
        popped: Option<Vec<String>>,
    ) -> Result<Option<(u8, Vec<WhiteListEntry>)>, LprError> {
        let q = cmd_queue(&cam.serialno);
        let items = match popped {
            Some(items) => items,
            None => self.store.queue_pop(&q, COMMANDS_PER_REPLY).await?,
        };
        let mut back = Vec::new();
        for raw in items {
            let Ok(cmd) = serde_json::from_str::<Command>(&raw) else { continue };
            let fits = match &cmd {
                Command::OpenGate { io, .. } => {
                    reply.open_gate = Some(io.unwrap_or(cam.gate_io));
                    true
                }
                Command::Trigger { .. } => {
                    reply.manual_trigger = true;
                    true
                }
                Command::Snapshot { id } if reply.trigger_image.is_none() && back.is_empty() => {
                    let port = self.cfg.listen.rsplit(':').next().and_then(|p| p.parse().ok()).unwrap_or(80);
                    reply.trigger_image = Some((port, format!("{}?req={id}&serialno={}", self.cfg.snapshot_path, cam.serialno)));
                    true
                }
                Command::Serial { serial_channel, data, .. } if back.is_empty() && reply.serial_data.len() < 8 => {
                    let len = crate::proto::decode_base64(data, "data", 64 * 1024).map(|d| d.len()).unwrap_or(0);
                    reply.serial_data.push((*serial_channel, data.clone(), len));
                    true
                }
                _ => false,
            };
            if !fits {
                back.push(raw);
            }
        }
        self.store.queue_unpop(&q, &back).await?;
        let sync = self.next_sync(cam, group).await?;
        if let Some((op, entries)) = &sync {
            reply.white_list = Some((*op, entries.clone()));
        }
        Ok(sync)
    }

    /// Whether anything waits for the camera (commands or whitelist work).
    pub async fn has_work(&self, cam: &Camera, group: &Group) -> Result<bool, LprError> {
        Ok(self.store.queue_len(&cmd_queue(&cam.serialno)).await? > 0 || self.next_sync(cam, group).await?.is_some())
    }

    // ---- passages -----------------------------------------------------------------------------

    fn image_path(&self, rel: &str) -> PathBuf {
        PathBuf::from(&self.cfg.image_dir).join(rel)
    }

    async fn write_image(&self, rel: &str, data: &[u8]) -> Result<(), LprError> {
        let path = self.image_path(rel);
        let err = |e| LprError::Image(path.display().to_string(), e);
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir).await.map_err(err)?;
        }
        // Written beside and renamed: a crash never leaves half an image under the final name.
        let tmp = path.with_extension("part");
        let mut f = tokio::fs::File::create(&tmp).await.map_err(err)?;
        tokio::io::AsyncWriteExt::write_all(&mut f, data).await.map_err(err)?;
        if self.cfg.fsync {
            f.sync_all().await.map_err(err)?;
        }
        drop(f);
        tokio::fs::rename(&tmp, &path).await.map_err(err)?;
        Ok(())
    }

    pub async fn read_image(&self, rel: &str) -> Option<Vec<u8>> {
        if rel.contains("..") {
            return None;
        }
        tokio::fs::read(self.image_path(rel)).await.ok()
    }

    /// Stores a plate result (images, record, indexes) and decides the gate. Idempotent: a
    /// record resent (offline backlog, or a retry after a lost reply) is stored once, and
    /// returned as first stored with `false`.
    /// Returns the passage, whether this call stored it, its JSON, and the camera's queued
    /// commands (taken in the same round trip, for the reply).
    pub async fn store_passage(&self, pr: &PlateResult, cam: &Camera, group: &Group) -> Result<StoredPassage, LprError> {
        let received = now_ms();
        let serial = safe(&pr.sender.serialno);
        let time_ms = pr.camera_time_ms.filter(|t| *t > 0).unwrap_or(received);
        let id = match pr.plateid {
            Some(p) => format!("{serial}-{p}"),
            None => format!("{serial}-t{time_ms}"),
        };
        let verdict = if pr.is_offline {
            Verdict::OfflineRecord
        } else {
            let entry = match pr.plate() {
                Some(plate) => self.entry(&cam.group, plate).await?,
                None => None,
            };
            gate::decide(group.policy, pr.plate(), entry.as_ref(), received, self.cfg.utc_offset_minutes)
        };
        let dir = format!("{}/{serial}", date_dir(time_ms));
        let mut p = Passage {
            id: id.clone(),
            serialno: pr.sender.serialno.clone(),
            device_name: pr.sender.device_name.clone(),
            ipaddr: pr.sender.ipaddr.clone(),
            plate: pr.plate().map(str::to_owned),
            color_type: pr.color_type,
            plate_type: pr.plate_type,
            confidence: pr.confidence,
            direction: pr.direction,
            trigger_type: pr.trigger_type,
            plateid: pr.plateid,
            offline: pr.is_offline,
            time_ms,
            received_ms: received,
            verdict,
            gate_opened: verdict.opens(),
            group: cam.group.clone(),
            image_full: None,
            image_plate: None,
            detail: pr.extra.clone(),
        };
        if let Some(img) = &pr.image_full {
            let rel = format!("{dir}/{id}-full.jpg");
            self.write_image(&rel, img).await?;
            p.image_full = Some(rel);
        }
        if let Some(img) = &pr.image_plate {
            let rel = format!("{dir}/{id}-plate.jpg");
            self.write_image(&rel, img).await?;
            p.image_plate = Some(rel);
        }
        // Images first (same names on a resend), then the record once: insert-if-absent is what
        // makes a resent record land exactly once.
        let mut json = serde_json::to_string(&p).unwrap_or_default();
        // One round trip: the record (insert-if-absent), its indexes (idempotent) and the
        // camera's queued commands for the reply.
        let mut ops = vec![Op::TableInsert { table: PASSAGES.into(), id: id.clone(), record: json.clone() }];
        ops.extend(index_ops(&p));
        ops.push(Op::QueuePop { queue: cmd_queue(&cam.serialno), max: COMMANDS_PER_REPLY });
        let out = self.store.pipeline(&ops).await?;
        let fresh = matches!(out.first(), Some(OpOut::Inserted(true)));
        let commands = match out.last() {
            Some(OpOut::Items(items)) => items.clone(),
            _ => Vec::new(),
        };
        if !fresh {
            // Resent: answer as the first time (its verdict, its indexes under its own time).
            if let Some(raw) = self.store.table_get(PASSAGES, &id).await? {
                if let Ok(first) = serde_json::from_str::<Passage>(&raw) {
                    p = first;
                    json = raw;
                    self.index(&p).await?;
                }
            }
        }
        Ok(StoredPassage { passage: p, fresh, json, commands })
    }

    /// Indexes are idempotent (re-adding moves nothing), so a crash between the record and its
    /// indexes is repaired by the camera's resend.
    async fn index(&self, p: &Passage) -> Result<(), LprError> {
        self.store.pipeline(&index_ops(p)).await?;
        Ok(())
    }

    pub async fn passage(&self, id: &str) -> Result<Option<Passage>, LprError> {
        Ok(self.store.table_get(PASSAGES, id).await?.and_then(|raw| serde_json::from_str(&raw).ok()))
    }

    /// Passages newest first, by time range and optionally one plate or camera.
    pub async fn passages(
        &self,
        from_ms: u64,
        to_ms: u64,
        plate: Option<&str>,
        serial: Option<&str>,
        offset: usize,
        limit: usize,
    ) -> Result<(Vec<Passage>, usize), LprError> {
        let index = match (plate, serial) {
            (Some(p), _) => format!("lpr:plate:{p}"),
            (None, Some(s)) => format!("lpr:camera:{s}"),
            (None, None) => "lpr:passages".to_owned(),
        };
        let (lo, hi) = (from_ms as f64, to_ms as f64);
        let total = self.store.index_count(&index, lo, hi).await?;
        let ids = self.store.index_range(&index, lo, hi, true, offset, limit).await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(p) = self.passage(&id).await? {
                if plate.is_none() || serial.is_none_or(|s| p.serialno == s) {
                    out.push(p);
                }
            }
        }
        Ok((out, total))
    }

    /// A requested snapshot arrived: stored and linked to its request.
    pub async fn store_snapshot(&self, req: Option<&str>, serial: &str, image: &[u8]) -> Result<String, LprError> {
        let id = req.map(safe).filter(|r| !r.is_empty()).unwrap_or_else(new_id);
        let rel = format!("{}/{}/snapshot-{id}.jpg", date_dir(now_ms()), safe(serial));
        self.write_image(&rel, image).await?;
        let rec = json!({"id": id, "serialno": serial, "received_ms": now_ms(), "image": rel, "bytes": image.len()});
        self.store.table_put(SNAPSHOTS, &id, &rec.to_string()).await?;
        Ok(id)
    }

    pub async fn snapshot(&self, id: &str) -> Result<Option<Value>, LprError> {
        Ok(self.store.table_get(SNAPSHOTS, id).await?.and_then(|raw| serde_json::from_str(&raw).ok()))
    }

    /// Keeps an IO trigger or serial-data event (queryable by camera and time) and publishes it.
    pub async fn record_event(&self, serial: &str, kind: &str, mut event: Value) -> Result<(), LprError> {
        let at = now_ms();
        let id = format!("{}-{kind}-{at}-{:04x}", safe(serial), rand::random::<u16>());
        event["id"] = json!(id);
        event["event"] = json!(kind);
        event["serialno"] = json!(serial);
        event["at_ms"] = json!(at);
        self.store.table_put(DEVICE_EVENTS, &id, &event.to_string()).await?;
        let t = at as f64;
        let ops = [("lpr:events".to_owned(), id.clone()), (format!("lpr:events:{serial}"), id)].map(|(index, member)| Op::IndexAdd {
            index,
            score: t,
            member,
        });
        self.store.pipeline(&ops).await?;
        self.publish(event).await;
        Ok(())
    }

    /// IO and serial events, newest first.
    pub async fn events(
        &self,
        serial: Option<&str>,
        kind: Option<&str>,
        from_ms: u64,
        to_ms: u64,
        offset: usize,
        limit: usize,
    ) -> Result<(Vec<Value>, usize), LprError> {
        let index = match serial {
            Some(s) => format!("lpr:events:{s}"),
            None => "lpr:events".to_owned(),
        };
        let (lo, hi) = (from_ms as f64, to_ms as f64);
        let total = self.store.index_count(&index, lo, hi).await?;
        // A kind filter reads past the page: bounded to a few pages.
        let want = if kind.is_some() { (offset + limit) * 4 } else { limit };
        let ids = self.store.index_range(&index, lo, hi, true, if kind.is_some() { 0 } else { offset }, want).await?;
        let mut out = Vec::new();
        for id in ids {
            if let Some(v) = self.store.table_get(DEVICE_EVENTS, &id).await?.and_then(|r| serde_json::from_str::<Value>(&r).ok()) {
                if kind.is_none_or(|k| v["event"] == k) {
                    out.push(v);
                }
            }
        }
        if kind.is_some() {
            out = out.into_iter().skip(offset).take(limit).collect();
        }
        Ok((out, total))
    }

    pub fn new_command_id() -> String {
        new_id()
    }
}
