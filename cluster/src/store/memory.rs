//! The in-memory Store: the single-process default. Same semantics as Redis, one mutex.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::{broadcast, mpsc};

use super::{DeviceFilter, LoadCandidate, OfflineReason, Store, StoreResult, Subscription, Touch};
use crate::registry::{Device, StoredChannel};
use gb::ids::DeviceId;
use gb::model::{DeviceInfo, DeviceStatus};

struct Entry {
    dev: Device,
    /// Presence deadline, `None` when offline.
    deadline_ms: Option<u64>,
}

#[derive(Default)]
struct Inner {
    devices: BTreeMap<DeviceId, Entry>,
    channels: HashMap<DeviceId, Vec<StoredChannel>>,
    passwords: HashMap<DeviceId, String>,
    failures: HashMap<String, (u32, Instant)>,
    secrets: HashMap<String, Vec<u8>>,
    nodes: BTreeMap<(String, String), (String, Instant)>,
    ssrcs: HashMap<String, String>,
    ssrc_next: u64,
    tables: HashMap<String, BTreeMap<String, String>>,
    loads: HashMap<String, HashMap<String, u64>>,
    indexes: HashMap<String, SortedIndex>,
    queues: HashMap<String, std::collections::VecDeque<String>>,
    logs: HashMap<String, std::collections::VecDeque<String>>,
}

/// One sorted index: member → score, and (score, member) in order.
type SortedIndex = (HashMap<String, f64>, std::collections::BTreeSet<(OrdF64, String)>);

/// f64 with a total order, for sorted indexes.
#[derive(Debug, Clone, Copy, PartialEq)]
struct OrdF64(f64);
impl Eq for OrdF64 {}
impl PartialOrd for OrdF64 {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for OrdF64 {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

pub struct MemoryStore {
    inner: Mutex<Inner>,
    topics: Mutex<HashMap<String, broadcast::Sender<String>>>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    pub fn new() -> Self {
        Self { inner: Mutex::new(Inner::default()), topics: Mutex::new(HashMap::new()) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that matters
        // more than losing the whole store, so recover the guard.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn topic(&self, channel: &str) -> broadcast::Sender<String> {
        let mut t = self.topics.lock().unwrap_or_else(|e| e.into_inner());
        t.entry(channel.to_owned()).or_insert_with(|| broadcast::channel(1024).0).clone()
    }
}

fn reg_expiry(d: &Device) -> u64 {
    d.registered_at_ms + u64::from(d.expires_secs) * 1000
}

#[async_trait]
impl Store for MemoryStore {
    async fn upsert_device(&self, dev: &Device, presence_deadline_ms: u64) -> StoreResult<()> {
        let mut g = self.lock();
        let deadline = dev.online.then_some(presence_deadline_ms);
        let mut dev = dev.clone();
        // As in Redis: answers to queries live apart from the registration record.
        if let Some(old) = g.devices.get(&dev.id) {
            dev.status = old.dev.status.clone();
        }
        g.devices.insert(dev.id.clone(), Entry { dev, deadline_ms: deadline });
        Ok(())
    }

    async fn get_device(&self, id: &DeviceId) -> StoreResult<Option<Device>> {
        Ok(self.lock().devices.get(id).map(|e| e.dev.clone()))
    }

    async fn list_devices(&self, filter: DeviceFilter, offset: usize, limit: usize) -> StoreResult<(Vec<Device>, usize)> {
        let g = self.lock();
        let matching = g.devices.values().filter(|e| filter.matches(e.dev.id.as_str(), e.dev.online));
        let total = matching.clone().count();
        let page = matching.skip(offset).take(limit).map(|e| e.dev.clone()).collect();
        Ok((page, total))
    }

    async fn delete_device(&self, id: &DeviceId) -> StoreResult<bool> {
        let mut g = self.lock();
        g.channels.remove(id);
        Ok(g.devices.remove(id).is_some())
    }

    async fn unregister_device(&self, id: &DeviceId) -> StoreResult<bool> {
        let mut g = self.lock();
        let Some(e) = g.devices.get_mut(id) else { return Ok(false) };
        let was = e.dev.online;
        e.dev.online = false;
        e.dev.expires_secs = 0;
        e.deadline_ms = None;
        Ok(was)
    }

    async fn touch_device(&self, id: &DeviceId, now_ms: u64, keepalive_timeout_ms: u64) -> StoreResult<Touch> {
        let mut g = self.lock();
        let Some(e) = g.devices.get_mut(id) else { return Ok(Touch::NotRegistered) };
        let expiry = reg_expiry(&e.dev);
        if expiry <= now_ms {
            return Ok(Touch::NotRegistered);
        }
        let was_online = e.dev.online;
        e.dev.online = true;
        e.dev.last_seen_ms = now_ms;
        e.deadline_ms = Some((now_ms + keepalive_timeout_ms).min(expiry));
        Ok(Touch::Refreshed { was_online })
    }

    async fn expire_due(&self, now_ms: u64, limit: usize) -> StoreResult<Vec<(DeviceId, OfflineReason)>> {
        let mut g = self.lock();
        let mut out = Vec::new();
        for (id, e) in g.devices.iter_mut() {
            if out.len() >= limit {
                break;
            }
            if e.deadline_ms.is_some_and(|d| d <= now_ms) {
                e.deadline_ms = None;
                e.dev.online = false;
                let reason =
                    if reg_expiry(&e.dev) <= now_ms { OfflineReason::RegistrationExpired } else { OfflineReason::KeepaliveTimeout };
                out.push((id.clone(), reason));
            }
        }
        Ok(out)
    }

    async fn set_device_info(&self, id: &DeviceId, info: &DeviceInfo) -> StoreResult<()> {
        if let Some(e) = self.lock().devices.get_mut(id) {
            e.dev.info = info.clone();
        }
        Ok(())
    }

    async fn set_device_status(&self, id: &DeviceId, status: &DeviceStatus) -> StoreResult<()> {
        if let Some(e) = self.lock().devices.get_mut(id) {
            e.dev.status = Some(status.clone());
        }
        Ok(())
    }

    async fn replace_channels(&self, id: &DeviceId, channels: &[StoredChannel]) -> StoreResult<()> {
        let mut g = self.lock();
        let mut list = channels.to_vec();
        list.sort_by(|a, b| a.id().cmp(b.id()));
        list.dedup_by(|a, b| a.id() == b.id());
        if let Some(e) = g.devices.get_mut(id) {
            e.dev.channel_count = list.len() as u32;
        }
        g.channels.insert(id.clone(), list);
        Ok(())
    }

    async fn list_channels(&self, id: &DeviceId) -> StoreResult<Vec<StoredChannel>> {
        Ok(self.lock().channels.get(id).cloned().unwrap_or_default())
    }

    async fn device_password(&self, id: &DeviceId) -> StoreResult<Option<String>> {
        Ok(self.lock().passwords.get(id).cloned())
    }

    async fn set_device_password(&self, id: &DeviceId, password: Option<&str>) -> StoreResult<()> {
        let mut g = self.lock();
        match password {
            Some(p) => g.passwords.insert(id.clone(), p.to_owned()),
            None => g.passwords.remove(id),
        };
        Ok(())
    }

    async fn record_auth_failure(&self, key: &str, window_secs: u64) -> StoreResult<u32> {
        let mut g = self.lock();
        let now = Instant::now();
        // Keep the map bounded: drop expired windows when it grows.
        if g.failures.len() > 100_000 {
            g.failures.retain(|_, (_, until)| *until > now);
        }
        let e = g.failures.entry(key.to_owned()).or_insert((0, now + Duration::from_secs(window_secs)));
        if e.1 <= now {
            *e = (0, now + Duration::from_secs(window_secs));
        }
        e.0 += 1;
        Ok(e.0)
    }

    async fn auth_failures(&self, key: &str) -> StoreResult<u32> {
        let g = self.lock();
        Ok(g.failures.get(key).filter(|(_, until)| *until > Instant::now()).map_or(0, |(n, _)| *n))
    }

    async fn clear_auth_failures(&self, key: &str) -> StoreResult<()> {
        self.lock().failures.remove(key);
        Ok(())
    }

    async fn shared_secret(&self, name: &str) -> StoreResult<Vec<u8>> {
        let mut g = self.lock();
        Ok(g.secrets.entry(name.to_owned()).or_insert_with(|| (0..32).map(|_| rand::random::<u8>()).collect()).clone())
    }

    async fn put_node(&self, kind: &str, id: &str, record: &str, ttl_ms: u64) -> StoreResult<()> {
        let until = Instant::now() + Duration::from_millis(ttl_ms);
        self.lock().nodes.insert((kind.to_owned(), id.to_owned()), (record.to_owned(), until));
        Ok(())
    }

    async fn list_nodes(&self, kind: &str) -> StoreResult<Vec<(String, String)>> {
        let mut g = self.lock();
        let now = Instant::now();
        g.nodes.retain(|_, (_, until)| *until > now);
        Ok(g.nodes.iter().filter(|((k, _), _)| k == kind).map(|((_, id), (rec, _))| (id.clone(), rec.clone())).collect())
    }

    async fn remove_node(&self, kind: &str, id: &str) -> StoreResult<()> {
        self.lock().nodes.remove(&(kind.to_owned(), id.to_owned()));
        Ok(())
    }

    async fn allocate_ssrc(&self, prefix: &str, owner: &str) -> StoreResult<Option<String>> {
        let mut g = self.lock();
        for _ in 0..10_000 {
            g.ssrc_next += 1;
            let ssrc = format!("{prefix}{:04}", g.ssrc_next % 10_000);
            if !g.ssrcs.contains_key(&ssrc) {
                g.ssrcs.insert(ssrc.clone(), owner.to_owned());
                return Ok(Some(ssrc));
            }
        }
        Ok(None)
    }

    async fn release_ssrc(&self, ssrc: &str, owner: &str) -> StoreResult<bool> {
        let mut g = self.lock();
        if g.ssrcs.get(ssrc).map(String::as_str) == Some(owner) {
            g.ssrcs.remove(ssrc);
            return Ok(true);
        }
        Ok(false)
    }

    async fn table_insert(&self, table: &str, id: &str, record: &str) -> StoreResult<bool> {
        let mut g = self.lock();
        let t = g.tables.entry(table.to_owned()).or_default();
        if t.contains_key(id) {
            return Ok(false);
        }
        t.insert(id.to_owned(), record.to_owned());
        Ok(true)
    }

    async fn table_put(&self, table: &str, id: &str, record: &str) -> StoreResult<()> {
        self.lock().tables.entry(table.to_owned()).or_default().insert(id.to_owned(), record.to_owned());
        Ok(())
    }

    async fn table_get(&self, table: &str, id: &str) -> StoreResult<Option<String>> {
        Ok(self.lock().tables.get(table).and_then(|t| t.get(id)).cloned())
    }

    async fn table_list(&self, table: &str) -> StoreResult<Vec<(String, String)>> {
        Ok(self.lock().tables.get(table).map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect()).unwrap_or_default())
    }

    async fn table_swap(&self, table: &str, id: &str, expected: &str, record: &str) -> StoreResult<bool> {
        let mut g = self.lock();
        match g.tables.get_mut(table).and_then(|t| t.get_mut(id)) {
            Some(cur) if cur == expected => {
                *cur = record.to_owned();
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn table_take(&self, table: &str, id: &str) -> StoreResult<Option<String>> {
        Ok(self.lock().tables.get_mut(table).and_then(|t| t.remove(id)))
    }

    async fn index_add(&self, index: &str, score: f64, member: &str) -> StoreResult<()> {
        let mut g = self.lock();
        let (scores, order) = g.indexes.entry(index.to_owned()).or_default();
        if let Some(old) = scores.insert(member.to_owned(), score) {
            order.remove(&(OrdF64(old), member.to_owned()));
        }
        order.insert((OrdF64(score), member.to_owned()));
        Ok(())
    }

    async fn index_range(&self, index: &str, min: f64, max: f64, rev: bool, offset: usize, limit: usize) -> StoreResult<Vec<String>> {
        let g = self.lock();
        let Some((_, order)) = g.indexes.get(index) else { return Ok(Vec::new()) };
        let within = order.iter().filter(|(s, _)| s.0 >= min && s.0 <= max).map(|(_, m)| m.clone());
        Ok(if rev { within.rev().skip(offset).take(limit).collect() } else { within.skip(offset).take(limit).collect() })
    }

    async fn index_count(&self, index: &str, min: f64, max: f64) -> StoreResult<usize> {
        let g = self.lock();
        Ok(g.indexes.get(index).map_or(0, |(_, o)| o.iter().filter(|(s, _)| s.0 >= min && s.0 <= max).count()))
    }

    async fn queue_push(&self, queue: &str, item: &str) -> StoreResult<()> {
        self.lock().queues.entry(queue.to_owned()).or_default().push_back(item.to_owned());
        Ok(())
    }

    async fn queue_pop(&self, queue: &str, max: usize) -> StoreResult<Vec<String>> {
        let mut g = self.lock();
        let Some(q) = g.queues.get_mut(queue) else { return Ok(Vec::new()) };
        let n = max.min(q.len());
        Ok(q.drain(..n).collect())
    }

    async fn queue_unpop(&self, queue: &str, items: &[String]) -> StoreResult<()> {
        let mut g = self.lock();
        let q = g.queues.entry(queue.to_owned()).or_default();
        for item in items.iter().rev() {
            q.push_front(item.clone());
        }
        Ok(())
    }

    async fn queue_len(&self, queue: &str) -> StoreResult<usize> {
        Ok(self.lock().queues.get(queue).map_or(0, |q| q.len()))
    }

    async fn log_push(&self, log: &str, item: &str, max: usize) -> StoreResult<()> {
        let mut g = self.lock();
        let l = g.logs.entry(log.to_owned()).or_default();
        l.push_front(item.to_owned());
        l.truncate(max.max(1));
        Ok(())
    }

    async fn log_range(&self, log: &str, offset: usize, limit: usize) -> StoreResult<(Vec<String>, usize)> {
        let g = self.lock();
        let Some(l) = g.logs.get(log) else { return Ok((Vec::new(), 0)) };
        Ok((l.iter().skip(offset).take(limit).cloned().collect(), l.len()))
    }

    async fn reserve_least_loaded(&self, pool: &str, candidates: &[LoadCandidate]) -> StoreResult<Option<String>> {
        let mut g = self.lock();
        let counts = g.loads.entry(pool.to_owned()).or_default();
        let mut best: Option<(f64, &LoadCandidate)> = None;
        for c in candidates {
            let load = counts.get(&c.id).copied().unwrap_or(0).max(c.reported);
            if load >= c.capacity {
                continue;
            }
            let score = super::load_score(load, c);
            if best.is_none_or(|(b, _)| score < b) {
                best = Some((score, c));
            }
        }
        let Some((_, c)) = best else { return Ok(None) };
        *counts.entry(c.id.clone()).or_insert(0) += 1;
        Ok(Some(c.id.clone()))
    }

    async fn release_load(&self, pool: &str, id: &str) -> StoreResult<()> {
        if let Some(n) = self.lock().loads.get_mut(pool).and_then(|p| p.get_mut(id)) {
            *n = n.saturating_sub(1);
        }
        Ok(())
    }

    async fn clear_load(&self, pool: &str, id: &str) -> StoreResult<()> {
        if let Some(p) = self.lock().loads.get_mut(pool) {
            p.remove(id);
        }
        Ok(())
    }

    async fn load_counts(&self, pool: &str) -> StoreResult<Vec<(String, u64)>> {
        let g = self.lock();
        let mut v: Vec<(String, u64)> = g.loads.get(pool).map(|p| p.iter().map(|(k, n)| (k.clone(), *n)).collect()).unwrap_or_default();
        v.sort();
        Ok(v)
    }

    async fn publish(&self, channel: &str, payload: &str) -> StoreResult<()> {
        // No subscriber is not an error: pub/sub is fire-and-forget, as in Redis.
        let _ = self.topic(channel).send(payload.to_owned());
        Ok(())
    }

    async fn subscribe(&self, channel: &str) -> StoreResult<Subscription> {
        let mut rx = self.topic(channel).subscribe();
        let (tx, out) = mpsc::channel(1024);
        tokio::spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(m) => {
                        if tx.send(m).await.is_err() {
                            break;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => break,
                }
            }
        });
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    #[tokio::test]
    async fn memory_store_passes_conformance() {
        super::super::conformance::run_all(Arc::new(super::MemoryStore::new())).await;
    }
}
