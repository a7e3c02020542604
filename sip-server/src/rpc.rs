//! Request/reply between sip-server nodes over the Store's pub/sub: a call is published on the
//! target node's command channel, its reply on the caller's, matched by id, bounded by a
//! timeout. Used where only one node can act — the one holding a device's connection (INVITE,
//! DeviceControl) or a session's dialog (BYE).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cluster::wire::{NodeKind, StreamId};
use gb::ids::{ChannelId, DeviceId, NodeId};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::play::{manager, PlayError, PlayTransport};
use crate::server::{node_channel, NodeCommand, Shared};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "call", rename_all = "snake_case")]
pub enum Call {
    Play {
        device_id: DeviceId,
        channel_id: ChannelId,
        transport: Option<PlayTransport>,
    },
    Stop {
        stream_id: StreamId,
        all: bool,
    },
    /// A PTZ command (the 16 hex digits of `<PTZCmd>`) for a device this node holds.
    Ptz {
        device_id: DeviceId,
        channel_id: ChannelId,
        ptz_cmd: String,
    },
    /// A channel's presets (`PresetQuery`) from a device this node holds.
    Presets {
        device_id: DeviceId,
        channel_id: ChannelId,
    },
    /// A playback of a channel's recordings over `[start, end)` from a device this node holds.
    Playback {
        device_id: DeviceId,
        channel_id: ChannelId,
        start: i64,
        end: i64,
        transport: Option<PlayTransport>,
    },
    /// Pause, resume, speed or seek of a playback whose dialog this node holds.
    PlaybackControl {
        stream_id: StreamId,
        control: crate::play::playback::PlaybackControl,
    },
    /// A channel's recordings (`RecordInfo`) from a device this node holds.
    Records {
        device_id: DeviceId,
        channel_id: ChannelId,
        range: crate::records::RecordRange,
    },
    /// A DeviceControl command other than PTZ for a device this node holds.
    Command {
        device_id: DeviceId,
        channel_id: ChannelId,
        command: crate::control::DeviceCommand,
    },
    /// A download of a channel's recordings over `[start, end)` from a device this node holds.
    Download {
        device_id: DeviceId,
        channel_id: ChannelId,
        start: i64,
        end: i64,
        speed: u32,
        transport: Option<PlayTransport>,
    },
    /// `DeviceConfig` of a device this node holds.
    Configure {
        device_id: DeviceId,
        set: gb::model::BasicParam,
    },
    /// `ConfigDownload` (basic parameters) of a device this node holds.
    ConfigDownload {
        device_id: DeviceId,
    },
}

pub type Reply = Result<serde_json::Value, PlayError>;

/// Calls waiting for their reply.
#[derive(Default)]
pub struct Pending {
    next: AtomicU64,
    waiting: Mutex<HashMap<u64, oneshot::Sender<Reply>>>,
}

impl Pending {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, oneshot::Sender<Reply>>> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A reply arrived (unknown ids — late replies after a timeout — are dropped).
    pub fn complete(&self, id: u64, reply: Reply) {
        if let Some(tx) = self.lock().remove(&id) {
            let _ = tx.send(reply);
        }
    }
}

/// Runs a call on this node.
pub async fn handle(shared: &Arc<Shared>, call: Call) -> Reply {
    match call {
        Call::Play { device_id, channel_id, transport } => {
            // Checked again here: the device may have changed since the caller looked.
            let dev = manager::check_target(shared, &device_id, &channel_id).await?;
            let answer = manager::play(shared, dev, &channel_id, transport).await?;
            serde_json::to_value(answer).map_err(|e| PlayError::Internal(e.to_string()))
        }
        Call::Stop { stream_id, all } => {
            let left = manager::stop(shared, &stream_id, all).await?;
            Ok(
                serde_json::json!({"stream_id": stream_id, "holders": left.as_ref().map_or(0, |s| s.holders), "ended": left.is_none_or(|s| s.holders == 0)}),
            )
        }
        Call::Ptz { device_id, channel_id, ptz_cmd } => {
            let (cmd, address) = gb::ptz::PtzCommand::decode_hex(&ptz_cmd).map_err(|e| PlayError::BadRequest(e.to_string()))?;
            let bytes = cmd.encode(address).map_err(|e| PlayError::BadRequest(e.to_string()))?;
            let dev = held(shared, &device_id).await?;
            crate::control::send_ptz(shared, &dev, &channel_id, bytes).await
        }
        Call::Presets { device_id, channel_id } => {
            let dev = held(shared, &device_id).await?;
            crate::control::query_presets(shared, &dev, &channel_id).await
        }
        Call::Playback { device_id, channel_id, start, end, transport } => {
            let dev = manager::check_target(shared, &device_id, &channel_id).await?;
            let answer = crate::play::playback::start(shared, dev, &channel_id, (start, end), transport).await?;
            serde_json::to_value(answer).map_err(|e| PlayError::Internal(e.to_string()))
        }
        Call::PlaybackControl { stream_id, control } => crate::play::playback::control(shared, &stream_id, control).await,
        Call::Records { device_id, channel_id, range } => {
            let dev = held(shared, &device_id).await?;
            crate::records::query_records(shared, &dev, &channel_id, range).await
        }
        Call::Command { device_id, channel_id, command } => {
            let dev = held(shared, &device_id).await?;
            crate::control::send_command(shared, &dev, &channel_id, command).await
        }
        Call::Download { device_id, channel_id, start, end, speed, transport } => {
            let dev = manager::check_target(shared, &device_id, &channel_id).await?;
            let request = crate::play::download::DownloadRequest { span: (start, end), speed, transport };
            crate::play::download::start(shared, dev, &channel_id, request).await
        }
        Call::Configure { device_id, set } => crate::control::send_config(shared, &held(shared, &device_id).await?, set).await,
        Call::ConfigDownload { device_id } => crate::control::query_config(shared, &held(shared, &device_id).await?).await,
    }
}

/// The device, if this node holds it (checked again here: it may have moved since the caller
/// looked; a call is not routed twice).
async fn held(shared: &Shared, device_id: &DeviceId) -> Result<cluster::registry::Device, PlayError> {
    let dev = shared.store.get_device(device_id).await?.ok_or_else(|| PlayError::DeviceUnknown(device_id.to_string()))?;
    if dev.node != shared.me.node {
        return Err(PlayError::OwnerUnreachable(format!("{} (the device moved to {})", shared.me.node, dev.node)));
    }
    Ok(dev)
}

/// Runs `call` on `node`: here if it is this node, else through the Store.
pub async fn call(shared: &Arc<Shared>, node: &NodeId, call: Call) -> Reply {
    if *node == shared.me.node {
        return handle(shared, call).await;
    }
    let live = shared.store.list_nodes(NodeKind::Sip.as_str()).await.map_err(PlayError::from)?;
    if !live.iter().any(|(id, _)| id == node.as_str()) {
        return Err(PlayError::OwnerUnreachable(format!("{node} (not running; the device will register with another node)")));
    }
    let id = shared.rpc.next.fetch_add(1, Ordering::Relaxed) ^ (u64::from(rand::random::<u32>()) << 32);
    let (tx, rx) = oneshot::channel();
    shared.rpc.lock().insert(id, tx);
    let cmd = NodeCommand::Call { id, from: shared.me.node.clone(), call };
    let json = serde_json::to_string(&cmd).map_err(|e| PlayError::Internal(e.to_string()))?;
    if let Err(e) = shared.store.publish(&node_channel(node), &json).await {
        shared.rpc.lock().remove(&id);
        return Err(e.into());
    }
    // A routed query waits as long as the device may take to answer it, and a little more.
    let wait = match &cmd {
        NodeCommand::Call { call: Call::Records { .. }, .. } => {
            Duration::from_millis(shared.cfg.record_max_wait_ms) + Duration::from_secs(5)
        }
        _ => Duration::ZERO,
    }
    .max(Duration::from_millis(shared.cfg.play.route_timeout_ms.max(1000)));
    match tokio::time::timeout(wait, rx).await {
        Ok(Ok(reply)) => reply,
        _ => {
            shared.rpc.lock().remove(&id);
            Err(PlayError::OwnerUnreachable(node.to_string()))
        }
    }
}

/// A call that arrived for this node: run it and publish the reply to the caller.
pub fn serve(shared: Arc<Shared>, id: u64, from: NodeId, call: Call) {
    tokio::spawn(async move {
        let reply = handle(&shared, call).await;
        let cmd = NodeCommand::Reply { id, reply };
        match serde_json::to_string(&cmd) {
            Ok(json) => {
                if let Err(e) = shared.store.publish(&node_channel(&from), &json).await {
                    tracing::warn!(to = %from, error = %e, "could not send a routed call's reply");
                }
            }
            Err(e) => tracing::warn!(error = %e, "unserialisable reply"),
        }
    });
}
