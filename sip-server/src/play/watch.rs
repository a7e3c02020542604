//! What ends or moves the sessions this node drives: stream events from the media nodes
//! (`no_viewers`, `closed` for no data or shutdown), device presence (offline), and media node
//! liveness (a record that expired means the node died).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use cluster::wire::{CloseReason, NodeKind, PresenceEvent, StreamEvent, StreamEventKind, StreamId, DEVICE_EVENTS, STREAM_EVENTS};
use tokio_util::sync::CancellationToken;

use super::manager::{self, EndReason};
use super::{media_nodes, session};
use crate::error::SipError;
use crate::server::Shared;

/// What a stream event means for a session of ours on that node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    End(EndReason),
    Move,
    Ignore,
}

fn verdict(ev: &StreamEvent) -> Verdict {
    match (ev.event, ev.reason) {
        (StreamEventKind::NoViewers, _) => Verdict::End(EndReason::NoViewers),
        (StreamEventKind::Closed, Some(CloseReason::NoData | CloseReason::PeerClosed | CloseReason::ConnectFailed)) => {
            Verdict::End(EndReason::NoData)
        }
        // A node stopping cleanly takes its streams down: move them as if it had died.
        (StreamEventKind::Closed, Some(CloseReason::Shutdown)) => Verdict::Move,
        // `closed` by the API is our own teardown or move; the rest is informational.
        _ => Verdict::Ignore,
    }
}

/// Runs `on` for every message of a subscription until shutdown.
fn each_message(mut sub: cluster::store::Subscription, shutdown: CancellationToken, on: impl Fn(String) + Send + 'static) {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                m = sub.recv() => match m { Some(m) => on(m), None => break },
            }
        }
    });
}

fn on_stream_event(shared: &Arc<Shared>, msg: &str) {
    let Ok(ev) = serde_json::from_str::<StreamEvent>(msg) else { return };
    // Only sessions this node drives, on the node that sent the event (a moved session's old
    // node may still report on it).
    if shared.plays.media_node_of(&ev.stream_id).as_deref() != Some(ev.node.as_str()) {
        return;
    }
    let shared = shared.clone();
    match verdict(&ev) {
        Verdict::End(reason) => {
            tokio::spawn(async move { manager::teardown(&shared, &ev.stream_id, reason).await });
        }
        Verdict::Move => {
            tokio::spawn(async move { manager::recover(&shared, &ev.stream_id, &ev.node).await });
        }
        Verdict::Ignore => {}
    }
}

fn on_presence_event(shared: &Arc<Shared>, msg: &str) {
    let Ok(ev) = serde_json::from_str::<PresenceEvent>(msg) else { return };
    if ev.online {
        return;
    }
    let prefix = format!("{}_", ev.device_id);
    for (id, _, _) in shared.plays.mine().into_iter().filter(|(id, _, _)| id.as_str().starts_with(&prefix)) {
        let shared = shared.clone();
        tokio::spawn(async move { manager::teardown(&shared, &id, EndReason::DeviceOffline).await });
    }
}

/// Starts the watchers of this node.
pub async fn spawn(shared: Arc<Shared>, shutdown: CancellationToken) -> Result<(), SipError> {
    let streams = shared.store.subscribe(STREAM_EVENTS).await?;
    let devices = shared.store.subscribe(DEVICE_EVENTS).await?;
    let s = shared.clone();
    each_message(streams, shutdown.clone(), move |m| on_stream_event(&s, &m));
    let s = shared.clone();
    each_message(devices, shutdown.clone(), move |m| on_presence_event(&s, &m));
    tokio::spawn(liveness(shared.clone(), shutdown));
    let leftovers = shared.clone();
    tokio::spawn(async move { close_leftovers(&leftovers).await });
    Ok(())
}

/// Every `play.media_check_ms`: sessions of ours whose media node's record expired move.
async fn liveness(shared: Arc<Shared>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_millis(shared.cfg.play.media_check_ms.max(100)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut moving: HashSet<StreamId> = HashSet::new();
    let mut orphans_seen: HashSet<StreamId> = HashSet::new();
    let mut ticks = 0u64;
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel::<StreamId>();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        while let Ok(id) = done_rx.try_recv() {
            moving.remove(&id);
        }
        ticks += 1;
        if ticks.is_multiple_of(5) {
            reap_orphans(&shared, &mut orphans_seen).await;
        }
        let mine = shared.plays.mine();
        if mine.is_empty() {
            continue;
        }
        let live: std::collections::HashMap<String, String> = match media_nodes::live_nodes(shared.store.as_ref()).await {
            Ok(n) => n.into_iter().map(|n| (n.id, n.instance)).collect(),
            Err(e) => {
                tracing::warn!(error = %e, "media node liveness check failed");
                continue;
            }
        };
        let mut dead_nodes = HashSet::new();
        for (id, node, instance) in mine {
            // Gone (record expired), or restarted under the same id (its streams are lost).
            let alive = match live.get(&node) {
                None => false,
                Some(now) => instance.is_empty() || now.is_empty() || *now == instance,
            };
            if alive || moving.contains(&id) {
                continue;
            }
            if !live.contains_key(&node) {
                dead_nodes.insert(node.clone());
            } else {
                tracing::warn!(node = %node, stream = %id, "media node restarted (new instance): moving the session");
            }
            moving.insert(id.clone());
            let (shared, done) = (shared.clone(), done_tx.clone());
            tokio::spawn(async move {
                manager::recover(&shared, &id, &node).await;
                let _ = done.send(id);
            });
        }
        for node in dead_nodes {
            tracing::warn!(node = %node, "media node gone (heartbeat expired): moving its sessions");
            // Its count in the load pool no longer means anything.
            let _ = shared.store.clear_load(NodeKind::Media.as_str(), &node).await;
        }
    }
}

/// Sessions driven by a sip-server node that is gone (its record expired): seen so on two
/// checks in a row, they are closed by whichever node takes the record first — BYE from the
/// stored dialog, receiver, SSRC and load released — rather than held forever.
async fn reap_orphans(shared: &Arc<Shared>, seen: &mut HashSet<StreamId>) {
    let Ok(live) = shared.store.list_nodes(NodeKind::Sip.as_str()).await else { return };
    let live: HashSet<String> = live.into_iter().map(|(id, _)| id).collect();
    let Ok(all) = session::list(shared.store.as_ref()).await else { return };
    let orphans: HashSet<StreamId> =
        all.into_iter().filter(|s| s.sip_node != shared.me.node && !live.contains(s.sip_node.as_str())).map(|s| s.stream_id).collect();
    for id in orphans.iter().filter(|id| seen.contains(*id)) {
        tracing::warn!(stream = %id, "the sip-server driving this session is gone: closing it");
        let (shared, id) = (shared.clone(), id.clone());
        tokio::spawn(async move { manager::teardown(&shared, &id, EndReason::OwnerGone).await });
    }
    *seen = orphans;
}

/// Sessions recorded as driven by this node id from an earlier run: the process that held
/// their dialogs is gone, so they are closed (BYE from the stored dialog; receiver, SSRC, load
/// released).
async fn close_leftovers(shared: &Arc<Shared>) {
    let Ok(all) = session::list(shared.store.as_ref()).await else { return };
    for s in all.into_iter().filter(|s| s.sip_node == shared.me.node) {
        tracing::info!(stream = %s.stream_id, "session left over from an earlier run of this node: closing it");
        manager::teardown(shared, &s.stream_id, EndReason::Restarted).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(event: &str, reason: Option<&str>) -> StreamEvent {
        // As the media node writes them, through the one contract type.
        let json = serde_json::json!({"event": event, "stream_id": "s", "node": "n", "reason": reason});
        serde_json::from_value(json).expect("a stream event")
    }

    #[test]
    fn stream_events_map_to_actions() {
        assert_eq!(verdict(&ev("no_viewers", None)), Verdict::End(EndReason::NoViewers));
        assert_eq!(verdict(&ev("closed", Some("no_data"))), Verdict::End(EndReason::NoData));
        assert_eq!(verdict(&ev("closed", Some("peer_closed"))), Verdict::End(EndReason::NoData));
        assert_eq!(verdict(&ev("closed", Some("shutdown"))), Verdict::Move);
        assert_eq!(verdict(&ev("closed", Some("api"))), Verdict::Ignore);
        assert_eq!(verdict(&ev("started", None)), Verdict::Ignore);
    }
}
