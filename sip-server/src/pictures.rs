//! Pictures of channels from the API tier: taken now (`take`: a playing channel's latest key
//! frame from its media node, or the channel played for the moment it takes and released),
//! saved to the gallery (`gallery`), and taken on a schedule per channel (table
//! `snapshot_schedules`; the node holding the device takes its channels' pictures when due).

use std::sync::Arc;
use std::time::Duration;

use cluster::table::Table;
use cluster::wire::StreamId;
use gb::ids::{ChannelId, DeviceId};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::gallery::{self, Saved};
use crate::play::{PlayError, SessionState};
use crate::server::Shared;

/// A picture of the channel now: (its stream id, the JPEG).
pub async fn take(shared: &Arc<Shared>, device_id: &DeviceId, channel_id: &ChannelId) -> Result<(StreamId, Vec<u8>), PlayError> {
    let stream = StreamId::of_channel(device_id, channel_id);
    let store = shared.store.as_ref();
    let playing = crate::play::session::get(store, &stream).await?.map(|v| v.row).filter(|r| r.state == SessionState::Playing);
    let (session, held) = match playing {
        Some(row) => (row, false),
        None => {
            let target = crate::play::manager::check_target(shared, device_id, channel_id).await?;
            if target.node == shared.me.node {
                crate::play::manager::play(shared, target, channel_id, None).await?;
            } else {
                let call = crate::rpc::Call::Play { device_id: device_id.clone(), channel_id: channel_id.clone(), transport: None };
                crate::rpc::call(shared, &target.node, call).await?;
            }
            let row = crate::play::session::get(store, &stream).await?.ok_or_else(|| PlayError::NoSession(stream.to_string()))?.row;
            (row, true)
        }
    };
    let api = crate::play::media_nodes::MediaApi { cfg: &shared.cfg.play, node: &session.media_node, api_url: &session.media_api };
    let picture = api.snapshot(stream.as_str()).await;
    if held {
        // Our hold only: a viewer who came meanwhile keeps watching.
        let call = crate::rpc::Call::Stop { stream_id: stream.clone(), all: false };
        if let Err(e) = crate::rpc::call(shared, &session.sip_node, call).await {
            tracing::warn!(stream = %stream, error = %e, "releasing the snapshot's play failed");
        }
    }
    Ok((stream, picture?))
}

/// A picture of the channel now, saved to the gallery (its channel's count kept).
pub async fn take_and_save(shared: &Arc<Shared>, device_id: &DeviceId, channel_id: &ChannelId) -> Result<Saved, PlayError> {
    let (stream, jpeg) = take(shared, device_id, channel_id).await?;
    let cfg = shared.cfg.snapshots.clone();
    let now = kit::clock::now_ms();
    let saved = tokio::task::spawn_blocking(move || {
        let dir = std::path::Path::new(&cfg.dir);
        let saved = gallery::save(dir, stream.as_str(), now, &jpeg)?;
        gallery::prune_stream(dir, &cfg, stream.as_str());
        Ok::<_, std::io::Error>(saved)
    })
    .await
    .map_err(|e| PlayError::Internal(e.to_string()))?
    .map_err(|e| PlayError::Internal(format!("saving the picture: {e}")))?;
    crate::metrics::SNAPSHOTS_SAVED.inc();
    Ok(saved)
}

/// A saved picture as the API shows it: with its URL.
pub fn view(p: &Saved) -> serde_json::Value {
    let (device, channel) = p.stream_id.split_once('_').unwrap_or((&p.stream_id, ""));
    serde_json::json!({
        "id": p.id, "device_id": device, "channel_id": channel, "stream_id": p.stream_id,
        "taken": kit::clock::stamp::format_utc((p.taken_ms / 1000) as i64), "taken_ms": p.taken_ms,
        "bytes": p.bytes, "url": format!("/api/v1/snapshots/{}", p.id),
    })
}

/// A channel's picture schedule (table `snapshot_schedules`, key `<device>_<channel>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schedule {
    pub device_id: DeviceId,
    pub channel_id: ChannelId,
    pub every_secs: u64,
    /// When the next picture is due (Unix ms).
    pub next_ms: u64,
    /// The last attempt's error, if it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

pub const SCHEDULES: Table<Schedule> = Table::new("snapshot_schedules");

/// Shortest schedule: a picture costs the camera a play.
pub const MIN_EVERY_SECS: u64 = 10;

pub async fn set_schedule(
    shared: &Shared,
    device_id: &DeviceId,
    channel_id: &ChannelId,
    every_secs: u64,
) -> Result<serde_json::Value, PlayError> {
    let key = StreamId::of_channel(device_id, channel_id);
    if every_secs == 0 {
        SCHEDULES.take(shared.store.as_ref(), key.as_str()).await?;
        return Ok(serde_json::json!({"device_id": device_id, "channel_id": channel_id, "every_secs": null}));
    }
    if !(MIN_EVERY_SECS..=86_400).contains(&every_secs) {
        return Err(PlayError::BadRequest(format!("every_secs must be {MIN_EVERY_SECS}-86400 (or 0 to stop), not {every_secs}")));
    }
    let row = Schedule {
        device_id: device_id.clone(),
        channel_id: channel_id.clone(),
        every_secs,
        next_ms: kit::clock::now_ms(),
        last_error: None,
    };
    SCHEDULES.put(shared.store.as_ref(), key.as_str(), &row).await?;
    serde_json::to_value(row).map_err(|e| PlayError::Internal(e.to_string()))
}

pub async fn schedule_of(shared: &Shared, device_id: &DeviceId, channel_id: &ChannelId) -> Result<serde_json::Value, PlayError> {
    let key = StreamId::of_channel(device_id, channel_id);
    match SCHEDULES.get(shared.store.as_ref(), key.as_str()).await? {
        Some(v) => serde_json::to_value(v.row).map_err(|e| PlayError::Internal(e.to_string())),
        None => Ok(serde_json::json!({"device_id": device_id, "channel_id": channel_id, "every_secs": null})),
    }
}

/// Takes the scheduled pictures of the devices this node holds when due, and applies the
/// gallery's age and size retention every `prune_every_secs`.
pub async fn run(shared: Arc<Shared>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut next_prune = 0u64;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = kit::clock::now_ms();
        if now >= next_prune {
            next_prune = now + shared.cfg.snapshots.prune_every_secs.max(1) * 1000;
            let cfg = shared.cfg.snapshots.clone();
            let pruned = tokio::task::spawn_blocking(move || gallery::prune(std::path::Path::new(&cfg.dir), &cfg, now)).await.unwrap_or(0);
            if pruned > 0 {
                tracing::info!(pruned, "old snapshots deleted (retention)");
            }
        }
        let Ok(rows) = SCHEDULES.list(shared.store.as_ref()).await else { continue };
        for (key, row) in rows {
            let Ok(mut row) = row else { continue };
            if now < row.next_ms {
                continue;
            }
            let held_here = matches!(shared.store.get_device(&row.device_id).await, Ok(Some(d)) if d.online && d.node == shared.me.node);
            if !held_here {
                continue; // the node holding it takes it; an offline device waits
            }
            // Claimed before it is taken, so a slow camera is not asked twice.
            row.next_ms = now + row.every_secs * 1000;
            let _ = SCHEDULES.put(shared.store.as_ref(), &key, &row).await;
            let shared = shared.clone();
            tokio::spawn(async move {
                let outcome = take_and_save(&shared, &row.device_id, &row.channel_id).await;
                let error = outcome.as_ref().err().map(ToString::to_string);
                if let Some(e) = &error {
                    tracing::info!(channel = %row.channel_id, error = %e, "scheduled snapshot failed");
                }
                if error != row.last_error {
                    row.last_error = error;
                    let _ = SCHEDULES.put(shared.store.as_ref(), &key, &row).await;
                }
            });
        }
    }
}
