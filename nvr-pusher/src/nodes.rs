//! This node's place in the cluster: its record (`NvrNodeRecord`, refreshed every 2 s), the
//! least-loaded choice of a node for a new play, and the housekeeping that stops sessions
//! whose beats stopped and removes rows nobody can answer for.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cluster::store::LoadCandidate;
use cluster::wire::NvrNodeRecord;

use crate::metrics;
use crate::service::{now_ms, Pusher, NODE_KIND, POOL, SESSIONS};
use crate::status::{Failure, Status};

impl Pusher {
    pub fn record(&self) -> NvrNodeRecord {
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
        NvrNodeRecord {
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
                let record = cluster::wire::to_json(&self.record());
                if let Err(e) = self.store.put_node(NODE_KIND, &self.node, &record, 6000).await {
                    tracing::warn!("nvr node heartbeat: {e}");
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
                let _ = self.store.table_take(SESSIONS.name(), &h.to_string()).await;
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
        let Ok(rows) = SESSIONS.list(self.store.as_ref()).await else { return };
        for (h, row) in rows {
            let Ok(row) = row else { continue };
            let alive = live.iter().any(|(id, inst)| *id == row.node && *inst == row.instance);
            if !alive && row.node != self.node {
                let _ = self.store.table_take(SESSIONS.name(), &h).await;
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
        if let Ok(rows) = SESSIONS.list(self.store.as_ref()).await {
            for (h, row) in rows {
                if row.is_ok_and(|r| r.node == self.node) {
                    let _ = self.store.table_take(SESSIONS.name(), &h).await;
                }
            }
        }
    }

    /// Rows left by an earlier run of this node (same id, sessions lost with the process).
    pub async fn clear_leftovers(&self) {
        let _ = self.store.clear_load(POOL, &self.node).await;
        let Ok(rows) = SESSIONS.list(self.store.as_ref()).await else { return };
        for (h, row) in rows {
            let Ok(row) = row else { continue };
            if row.node == self.node && row.instance != self.instance {
                let _ = self.store.table_take(SESSIONS.name(), &h).await;
            }
        }
    }

    /// The live nodes' records (none when the Store does not answer).
    pub async fn nodes(&self) -> Vec<NvrNodeRecord> {
        let rows = self.store.list_nodes(NODE_KIND).await.unwrap_or_default();
        rows.into_iter()
            .filter_map(|(id, raw)| {
                serde_json::from_str::<NvrNodeRecord>(&raw)
                    .map_err(|e| tracing::warn!(node = %id, error = %e, "unreadable nvr node record"))
                    .ok()
            })
            .collect()
    }

    /// Reserves a unit on the least-loaded node; `None` when every node is full.
    pub(crate) async fn choose_node(&self) -> Result<Option<NvrNodeRecord>, Failure> {
        let mut nodes = self.nodes().await;
        if !nodes.iter().any(|n| n.id == self.node) {
            nodes.push(self.record()); // not yet written (the first second of the node's life)
        }
        let candidates: Vec<LoadCandidate> =
            nodes.iter().map(|n| LoadCandidate { id: n.id.clone(), capacity: n.max_sessions, reported: n.sessions, busy: 0.0 }).collect();
        let chosen = self.store.reserve_least_loaded(POOL, &candidates).await?;
        Ok(chosen.and_then(|id| nodes.into_iter().find(|n| n.id == id)))
    }
}
