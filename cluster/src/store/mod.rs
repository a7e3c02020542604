//! The shared state of the cluster behind one trait. `RedisStore` when a Redis URL is
//! configured (several nodes share it), `MemoryStore` otherwise (one process runs everything).
//! Both pass `conformance::run_all`. The Redis key schema is in `docs/redis.md`.

pub mod conformance;
pub mod memory;
pub mod redis;

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::mpsc;

use crate::registry::{Device, StoredChannel};
use gb::ids::DeviceId;
use gb::model::{DeviceInfo, DeviceStatus};

pub use self::memory::MemoryStore;
pub use self::redis::RedisStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("redis: {0}")]
    Redis(#[from] ::redis::RedisError),
    #[error("stored record is corrupt: {0}")]
    Corrupt(String),
    /// A row of a typed `Table` that does not read as its type: reported, never dropped.
    #[error("row {id:?} of table {table} is corrupt: {error}")]
    CorruptRow { table: String, id: String, error: String },
    /// A row that could not be written as JSON (nothing was written).
    #[error("row {id:?} of table {table} cannot be encoded: {error}")]
    Encode { table: String, id: String, error: String },
    #[error("store url not supported: {0}")]
    BadUrl(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// The shared state is unreachable or unreadable: the caller may retry, so 503.
impl From<StoreError> for kit::http::ApiError {
    fn from(e: StoreError) -> Self {
        kit::http::ApiError::new(kit::http::StatusCode::SERVICE_UNAVAILABLE, e.to_string())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceFilter {
    pub online: Option<bool>,
    /// Only ids that start with this (the console's search box). Devices are kept in id order,
    /// so this is a range lookup, not a scan: it stays fast with tens of thousands of devices.
    pub id_prefix: Option<String>,
}

impl DeviceFilter {
    pub fn online(online: bool) -> Self {
        Self { online: Some(online), id_prefix: None }
    }

    fn matches(&self, id: &str, online: bool) -> bool {
        self.online.is_none_or(|o| o == online) && self.id_prefix.as_deref().is_none_or(|p| id.starts_with(p))
    }
}

/// What a keepalive found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Touch {
    /// Unknown or registration expired: the device must register again.
    NotRegistered,
    /// Refreshed; `was_online` false means this keepalive brought it back online.
    Refreshed { was_online: bool },
}

/// Why `expire_due` took a device offline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfflineReason {
    KeepaliveTimeout,
    RegistrationExpired,
}

impl OfflineReason {
    pub fn as_str(self) -> &'static str {
        match self {
            OfflineReason::KeepaliveTimeout => "keepalive timeout",
            OfflineReason::RegistrationExpired => "registration expired",
        }
    }
}

/// One member of a pool `reserve_least_loaded` chooses from.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadCandidate {
    pub id: String,
    /// Units it can carry (e.g. `max_streams`); a candidate at capacity is skipped.
    pub capacity: u64,
    /// Units it reports carrying itself (may include work not counted in this pool).
    pub reported: u64,
    /// 0.0–1.0: another measure of how busy it is (bandwidth, CPU); ties are broken by it.
    pub busy: f64,
}

/// The score `reserve_least_loaded` minimises (shared by both stores so they agree).
pub fn load_score(load: u64, c: &LoadCandidate) -> f64 {
    (load as f64 + 1.0) / c.capacity.max(1) as f64 + c.busy.clamp(0.0, 1.0) * 0.001
}

/// One operation of a `Store::pipeline`.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    TableInsert { table: String, id: String, record: String },
    IndexAdd { index: String, score: f64, member: String },
    QueuePop { queue: String, max: usize },
}

/// What an `Op` returned: `Inserted` for `TableInsert`, `Items` for `QueuePop`, `Done` else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpOut {
    Inserted(bool),
    Items(Vec<String>),
    Done,
}

/// Messages of a subscription; ends when the store shuts down.
pub type Subscription = mpsc::Receiver<String>;

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Writes the whole device record (registration). `presence_deadline_ms` is when it goes
    /// offline without a keepalive; the registration itself expires at
    /// `registered_at_ms + expires_secs`.
    async fn upsert_device(&self, dev: &Device, presence_deadline_ms: u64) -> StoreResult<()>;
    async fn get_device(&self, id: &DeviceId) -> StoreResult<Option<Device>>;
    /// Devices sorted by id, `offset`/`limit` paged; returns (page, total matching).
    async fn list_devices(&self, filter: DeviceFilter, offset: usize, limit: usize) -> StoreResult<(Vec<Device>, usize)>;
    /// Removes the device, its channels and its presence entry. True if it existed.
    async fn delete_device(&self, id: &DeviceId) -> StoreResult<bool>;
    /// Marks the device unregistered (Expires: 0): kept in the list, offline, no deadline.
    /// Returns whether it was online.
    async fn unregister_device(&self, id: &DeviceId) -> StoreResult<bool>;
    /// Keepalive: atomically refresh last-seen and move the deadline to
    /// `min(now + keepalive_timeout, registration expiry)`.
    async fn touch_device(&self, id: &DeviceId, now_ms: u64, keepalive_timeout_ms: u64) -> StoreResult<Touch>;
    /// Atomically takes offline every online device whose deadline is ≤ `now_ms` (at most
    /// `limit`); each device is returned by exactly one caller, so one node publishes it.
    async fn expire_due(&self, now_ms: u64, limit: usize) -> StoreResult<Vec<(DeviceId, OfflineReason)>>;
    /// Sets the DeviceInfo answer of an existing device (no-op for an unknown one).
    async fn set_device_info(&self, id: &DeviceId, info: &DeviceInfo) -> StoreResult<()>;
    /// Sets the DeviceStatus answer of an existing device (no-op for an unknown one).
    async fn set_device_status(&self, id: &DeviceId, status: &DeviceStatus) -> StoreResult<()>;
    /// Replaces the device's channel list.
    async fn replace_channels(&self, id: &DeviceId, channels: &[StoredChannel]) -> StoreResult<()>;
    async fn list_channels(&self, id: &DeviceId) -> StoreResult<Vec<StoredChannel>>;

    async fn device_password(&self, id: &DeviceId) -> StoreResult<Option<String>>;
    async fn set_device_password(&self, id: &DeviceId, password: Option<&str>) -> StoreResult<()>;
    /// Counts a failed authentication for `key` in a window of `window_secs` (the window starts
    /// at the first failure); returns the count.
    async fn record_auth_failure(&self, key: &str, window_secs: u64) -> StoreResult<u32>;
    async fn auth_failures(&self, key: &str) -> StoreResult<u32>;
    async fn clear_auth_failures(&self, key: &str) -> StoreResult<()>;
    /// A random 32-byte secret shared by every node (created by whichever node asks first).
    async fn shared_secret(&self, name: &str) -> StoreResult<Vec<u8>>;

    /// Registers or refreshes a service node (`kind` e.g. "media"): its record (JSON, opaque
    /// here) lives `ttl_ms` unless refreshed, so a dead node drops out by itself.
    async fn put_node(&self, kind: &str, id: &str, record: &str, ttl_ms: u64) -> StoreResult<()>;
    /// Live nodes of a kind as (id, record), sorted by id.
    async fn list_nodes(&self, kind: &str) -> StoreResult<Vec<(String, String)>>;
    async fn remove_node(&self, kind: &str, id: &str) -> StoreResult<()>;

    /// Takes an SSRC unique cluster-wide among those held: `prefix` (6 digits, see
    /// `ids::gb_ssrc_prefix`) plus a 4-digit sequence, recorded as held by `owner`. `None` when
    /// all 10,000 under the prefix are held.
    async fn allocate_ssrc(&self, prefix: &str, owner: &str) -> StoreResult<Option<String>>;
    /// Gives an SSRC back, only if `owner` holds it. True if released.
    async fn release_ssrc(&self, ssrc: &str, owner: &str) -> StoreResult<bool>;

    /// Named tables of records (JSON, opaque here), e.g. the play sessions. `table_insert`
    /// writes only when `id` is absent and says whether it did.
    async fn table_insert(&self, table: &str, id: &str, record: &str) -> StoreResult<bool>;
    async fn table_put(&self, table: &str, id: &str, record: &str) -> StoreResult<()>;
    async fn table_get(&self, table: &str, id: &str) -> StoreResult<Option<String>>;
    /// Every record of the table as (id, record), sorted by id.
    async fn table_list(&self, table: &str) -> StoreResult<Vec<(String, String)>>;
    /// Compare-and-set: replaces the record only if it is still exactly `expected`.
    async fn table_swap(&self, table: &str, id: &str, expected: &str, record: &str) -> StoreResult<bool>;
    /// Removes and returns the record: of several callers racing, exactly one gets it.
    async fn table_take(&self, table: &str, id: &str) -> StoreResult<Option<String>>;

    /// Sorted indexes (member → score), e.g. passages by time. Adding an existing member moves it.
    async fn index_add(&self, index: &str, score: f64, member: &str) -> StoreResult<()>;
    /// Runs `ops` in order in one round trip where the store can (not atomically: each op is
    /// idempotent or its result tells what happened).
    async fn pipeline(&self, ops: &[Op]) -> StoreResult<Vec<OpOut>> {
        let mut out = Vec::with_capacity(ops.len());
        for op in ops {
            out.push(match op {
                Op::TableInsert { table, id, record } => OpOut::Inserted(self.table_insert(table, id, record).await?),
                Op::IndexAdd { index, score, member } => {
                    self.index_add(index, *score, member).await?;
                    OpOut::Done
                }
                Op::QueuePop { queue, max } => OpOut::Items(self.queue_pop(queue, *max).await?),
            });
        }
        Ok(out)
    }

    /// Members with `min <= score <= max`, oldest first (or newest first with `rev`), paged.
    async fn index_range(&self, index: &str, min: f64, max: f64, rev: bool, offset: usize, limit: usize) -> StoreResult<Vec<String>>;
    /// How many members have `min <= score <= max`.
    async fn index_count(&self, index: &str, min: f64, max: f64) -> StoreResult<usize>;

    /// FIFO queues of opaque items (commands for one camera, an outbox).
    async fn queue_push(&self, queue: &str, item: &str) -> StoreResult<()>;
    /// Takes up to `max` items from the front, in order.
    async fn queue_pop(&self, queue: &str, max: usize) -> StoreResult<Vec<String>>;
    /// Puts items back at the front (they could not be delivered), keeping their order.
    async fn queue_unpop(&self, queue: &str, items: &[String]) -> StoreResult<()>;
    async fn queue_len(&self, queue: &str) -> StoreResult<usize>;

    /// Capped logs, newest first (a device's alarms, a position track): `item` goes in front
    /// and the log keeps its newest `max` items, in one step.
    async fn log_push(&self, log: &str, item: &str, max: usize) -> StoreResult<()>;
    /// Up to `limit` items from `offset`, newest first, and how many the log holds.
    async fn log_range(&self, log: &str, offset: usize, limit: usize) -> StoreResult<(Vec<String>, usize)>;

    /// Picks the least-loaded of `candidates` and counts one more unit of load on it, in one
    /// atomic step, so a burst of callers spreads instead of piling on the node whose reported
    /// load is oldest. Load of a candidate = max(units counted here, its own `reported`);
    /// score = load / `capacity` (capacity weights bigger nodes), then `busy` (a fraction the
    /// caller measured, e.g. bandwidth) breaks near-ties. `None` when none has room.
    async fn reserve_least_loaded(&self, pool: &str, candidates: &[LoadCandidate]) -> StoreResult<Option<String>>;
    /// Gives one unit back (never below zero).
    async fn release_load(&self, pool: &str, id: &str) -> StoreResult<()>;
    /// Forgets a member's count (it died; what it carried is moving elsewhere).
    async fn clear_load(&self, pool: &str, id: &str) -> StoreResult<()>;
    /// Units counted per member.
    async fn load_counts(&self, pool: &str) -> StoreResult<Vec<(String, u64)>>;

    async fn publish(&self, channel: &str, payload: &str) -> StoreResult<()>;
    async fn subscribe(&self, channel: &str) -> StoreResult<Subscription>;
}

/// Opens the store a config names: `None`/empty → in-memory; `redis://`, `rediss://`,
/// `redis+sentinel://`, `redis+cluster://` → Redis.
pub async fn open(url: Option<&str>) -> StoreResult<Arc<dyn Store>> {
    match url.map(str::trim).filter(|u| !u.is_empty()) {
        None => Ok(Arc::new(MemoryStore::new())),
        Some(u) => Ok(Arc::new(RedisStore::connect(u).await?)),
    }
}
