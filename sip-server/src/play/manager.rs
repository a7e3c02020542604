//! Play, stop, teardown and recovery, run on the node that owns the session (see `play`).
//!
//! Setting a session up is a pure machine (`saga`) that this module runs: what a failed set-up
//! held is given back by `release`. A running session's resources (SSRC, load unit, receiver,
//! dialog) are given back by `teardown`, which runs exactly once per session: the record is
//! taken from the Store atomically and only the taker cleans up.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cluster::registry::Device;
use cluster::wire::{MediaNodeRecord, NodeKind, PlayEvent, PlayEventKind, StreamId};
use gb::ids::{ChannelId, DeviceId, Ssrc};
use gb::model::SipTransport;
use serde::Serialize;

use super::media_nodes::{self, MediaApi};
use super::saga::{Action, Event, Held, Setup};
use super::session::{self, Session, SessionState};
use super::{PlayError, PlayTransport, TransportDefault};
use crate::dialog::{self, Dialog, InviteError, InviteRequest};
use crate::metrics;
use crate::server::Shared;

/// Pub/sub channel of play session events (`started`, `recovered`, `closed` + reason).
pub use cluster::wire::PLAY_EVENTS;

/// What this node keeps in memory about the sessions it drives.
#[derive(Default)]
pub struct Plays {
    /// stream id → its dialog with the camera.
    dialogs: Mutex<HashMap<StreamId, Dialog>>,
    /// Call-ID → stream id, to match a camera's BYE.
    by_call: Mutex<HashMap<String, StreamId>>,
    /// stream id → (media node, its instance), for the sessions this node drives (events are
    /// matched here without reading the Store).
    mine: Mutex<HashMap<StreamId, (String, String)>>,
    /// One operation at a time per stream id on this node.
    locks: Mutex<HashMap<StreamId, Arc<tokio::sync::Mutex<()>>>>,
    /// UDP dialogs: Call-ID → (our ACK, where it went), to answer a retransmitted 200.
    acks: Mutex<HashMap<String, (Vec<u8>, SocketAddr)>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One operation on a stream at a time: held for the operation, and on drop the stream's
/// entry goes from the lock table when no one else waits for it.
pub struct OpGuard<'a> {
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
    plays: &'a Plays,
    id: StreamId,
}

impl Drop for OpGuard<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut locks = lock(&self.plays.locks);
        if locks.get(&self.id).is_some_and(|m| Arc::strong_count(m) == 1) {
            locks.remove(&self.id);
        }
    }
}

/// The answer to a play.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct PlayAnswer {
    pub stream_id: StreamId,
    pub media_node: String,
    pub urls: super::session::Urls,
    pub ssrc: Ssrc,
    pub transport: PlayTransport,
    /// The channel was already playing: this play joined it.
    pub joined: bool,
    pub holders: u32,
    #[serde(default)]
    pub kind: super::session::SessionKind,
    /// A playback's span and state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub playback: Option<super::session::PlaybackState>,
}

impl PlayAnswer {
    pub(crate) fn of(s: &Session, joined: bool) -> Self {
        Self {
            stream_id: s.stream_id.clone(),
            media_node: s.media_node.clone(),
            urls: s.urls.clone(),
            ssrc: s.ssrc.clone(),
            transport: s.transport,
            joined,
            holders: s.holders,
            kind: s.kind,
            playback: s.playback,
        }
    }
}

impl Plays {
    /// Waits for the stream's operation lock.
    pub async fn op_lock(&self, id: &StreamId) -> OpGuard<'_> {
        let m = lock(&self.locks).entry(id.clone()).or_default().clone();
        OpGuard { guard: Some(m.lock_owned().await), plays: self, id: id.clone() }
    }

    /// The media node of a session this node drives.
    pub fn media_node_of(&self, id: &StreamId) -> Option<String> {
        lock(&self.mine).get(id).map(|(n, _)| n.clone())
    }

    /// Sessions this node drives: (stream id, media node, its instance).
    pub fn mine(&self) -> Vec<(StreamId, String, String)> {
        lock(&self.mine).iter().map(|(a, (n, i))| (a.clone(), n.clone(), i.clone())).collect()
    }

    /// The stream whose dialog has this Call-ID.
    pub fn stream_of_call(&self, call_id: &str) -> Option<StreamId> {
        lock(&self.by_call).get(call_id).cloned()
    }

    fn keep(&self, id: &StreamId, node: &MediaNodeRecord, d: Dialog) {
        lock(&self.by_call).insert(d.call_id.clone(), id.clone());
        lock(&self.dialogs).insert(id.clone(), d);
        let mut m = lock(&self.mine);
        m.insert(id.clone(), (node.id.clone(), node.instance.clone()));
        metrics::SESSIONS.set(m.len() as i64);
    }

    /// The dialog of a session this node drives.
    pub fn dialog_of(&self, id: &StreamId) -> Option<Dialog> {
        lock(&self.dialogs).get(id).cloned()
    }

    /// Keeps a dialog's new state (its CSeq after an in-dialog request).
    pub fn set_dialog(&self, id: &StreamId, d: &Dialog) {
        if let Some(kept) = lock(&self.dialogs).get_mut(id) {
            *kept = d.clone();
        }
    }

    fn drop_dialog(&self, id: &StreamId) -> Option<Dialog> {
        let d = lock(&self.dialogs).remove(id);
        if let Some(d) = &d {
            lock(&self.by_call).remove(&d.call_id);
            lock(&self.acks).remove(&d.call_id);
        }
        d
    }

    pub fn remember_ack(&self, call_id: &str, ack: Vec<u8>, to: SocketAddr) {
        lock(&self.acks).insert(call_id.to_owned(), (ack, to));
    }

    pub fn ack_of(&self, call_id: &str) -> Option<(Vec<u8>, SocketAddr)> {
        lock(&self.acks).get(call_id).cloned()
    }

    pub fn forget_ack(&self, call_id: &str) {
        lock(&self.acks).remove(call_id);
    }

    /// What this node holds in memory, for leak checks: (dialogs, call ids, sessions, locks, acks).
    pub fn held(&self) -> (usize, usize, usize, usize, usize) {
        (lock(&self.dialogs).len(), lock(&self.by_call).len(), lock(&self.mine).len(), lock(&self.locks).len(), lock(&self.acks).len())
    }

    fn forget(&self, id: &StreamId) -> Option<Dialog> {
        let mut m = lock(&self.mine);
        m.remove(id);
        metrics::SESSIONS.set(m.len() as i64);
        drop(m);
        self.drop_dialog(id)
    }
}

/// Store table of per-device play preferences (device id → `{"transport": …}`).
pub const PREFS: &str = "play_prefs";

/// The device's own media transport, if one was set (`PUT /devices/{id}/play-transport`).
pub async fn device_transport(shared: &Shared, dev: &DeviceId) -> Result<Option<PlayTransport>, PlayError> {
    let Some(raw) = shared.store.table_get(PREFS, dev.as_str()).await? else { return Ok(None) };
    let v: serde_json::Value = serde_json::from_str(&raw).unwrap_or_default();
    Ok(v["transport"].as_str().and_then(PlayTransport::parse))
}

/// The play's transport: as asked, else the device's own setting, else `play.default_transport`.
pub(crate) async fn transport_for(shared: &Shared, dev: &Device, asked: Option<PlayTransport>) -> Result<PlayTransport, PlayError> {
    if let Some(t) = asked {
        return Ok(t);
    }
    if let Some(t) = device_transport(shared, &dev.id).await? {
        return Ok(t);
    }
    Ok(match shared.cfg.play.default_transport {
        TransportDefault::Auto if dev.transport == SipTransport::Tcp => PlayTransport::TcpPassive,
        TransportDefault::Auto | TransportDefault::Udp => PlayTransport::Udp,
        TransportDefault::TcpPassive => PlayTransport::TcpPassive,
        TransportDefault::TcpActive => PlayTransport::TcpActive,
    })
}

/// Checks the device and channel as the API does, on whichever node the request landed.
pub async fn check_target(shared: &Shared, device_id: &DeviceId, channel_id: &ChannelId) -> Result<Device, PlayError> {
    let dev = shared.store.get_device(device_id).await?.ok_or_else(|| PlayError::DeviceUnknown(device_id.to_string()))?;
    if !dev.online {
        return Err(PlayError::DeviceOffline(device_id.to_string()));
    }
    // An IPC may be played by its own id; otherwise the channel must be in the catalog.
    if channel_id.as_str() != device_id.as_str()
        && !shared.store.list_channels(device_id).await?.iter().any(|c| c.id() == channel_id.as_str())
    {
        return Err(PlayError::ChannelUnknown { device: device_id.to_string(), channel: channel_id.to_string() });
    }
    Ok(dev)
}

pub(crate) async fn publish(shared: &Shared, event: PlayEventKind, s: &Session, reason: Option<&str>) {
    let ev = PlayEvent {
        event,
        stream_id: s.stream_id.clone(),
        device_id: s.device_id.to_string(),
        channel_id: s.channel_id.to_string(),
        media_node: s.media_node.clone(),
        sip_node: s.sip_node.to_string(),
        reason: reason.map(str::to_owned),
        at_ms: kit::clock::now_ms(),
    };
    let ev = cluster::wire::to_json(&ev);
    if let Err(e) = shared.store.publish(PLAY_EVENTS, &ev).await {
        tracing::warn!(error = %e, "publishing play event failed");
    }
}

/// Plays a channel on this node (the device's owner). Joins a running session of the channel.
/// `dev` is the device as `check_target` returned it on this node (checked once per play).
pub async fn play(
    shared: &Arc<Shared>,
    dev: Device,
    channel_id: &ChannelId,
    asked: Option<PlayTransport>,
) -> Result<PlayAnswer, PlayError> {
    let id = StreamId::of_channel(&dev.id, channel_id);
    let _op = shared.plays.op_lock(&id).await;
    play_locked(shared, &dev, &id, channel_id, asked).await
}

/// `IFrameCmd` to a camera just ACKed, in the background: the answer does not wait for it, and
/// a camera that refuses it (some do) costs nothing but a log line.
fn ask_key_frame(shared: &Arc<Shared>, dev: &Device, channel_id: &ChannelId) {
    let (shared, dev, channel_id) = (shared.clone(), dev.clone(), channel_id.clone());
    tokio::spawn(async move {
        if let Err(e) = crate::control::send_command(&shared, &dev, &channel_id, crate::control::DeviceCommand::Iframe).await {
            tracing::info!(device_id = %dev.id, channel_id = %channel_id, error = %e, "IFrameCmd at play start not taken");
        }
    });
}

async fn play_locked(
    shared: &Arc<Shared>,
    dev: &Device,
    id: &StreamId,
    channel_id: &ChannelId,
    asked: Option<PlayTransport>,
) -> Result<PlayAnswer, PlayError> {
    let store = shared.store.as_ref();
    // A running session: count the new holder.
    let joined = session::update(store, id, |s| {
        if s.state == SessionState::Starting {
            return false;
        }
        s.holders += 1;
        true
    })
    .await?;
    if let Some(s) = joined {
        if s.state != SessionState::Starting {
            return Ok(PlayAnswer::of(&s, true));
        }
        return Err(PlayError::Busy(format!("session {id} is being set up by node {}; try again", s.sip_node)));
    }

    let transport = transport_for(shared, dev, asked).await?;
    let ssrc = allocate_ssrc(shared, id, false).await?;
    let s = Session::starting(dev.id.clone(), channel_id.clone(), transport, ssrc, shared.me.node.clone(), kit::clock::now_ms());
    let setup = Setup::play(s, dev.source_addr.clone(), shared.me.server_id.clone());
    match drive(shared, dev, setup).await {
        Ok(s) => {
            if shared.cfg.play.iframe_on_start {
                ask_key_frame(shared, dev, channel_id);
            }
            publish(shared, PlayEventKind::Started, &s, None).await;
            tracing::info!(stream = %id, media_node = %s.media_node, transport = transport.as_str(), ssrc = %s.ssrc, "play started");
            Ok(PlayAnswer::of(&s, false))
        }
        Err(e) => {
            tracing::warn!(stream = %id, error = %e, "play failed");
            Err(e)
        }
    }
}

/// A GB SSRC for a new session `id` (`history`: playback or download, first digit 1), held in
/// the Store under the stream id until the session gives it back.
pub(crate) async fn allocate_ssrc(shared: &Shared, id: &StreamId, history: bool) -> Result<Ssrc, PlayError> {
    let store = shared.store.as_ref();
    let prefix = gb::ids::gb_ssrc_prefix(&shared.me.domain, history)
        .ok_or_else(|| PlayError::Internal(format!("domain {:?} gives no GB SSRC prefix", shared.me.domain)))?;
    let ssrc = store
        .allocate_ssrc(&prefix, id.as_str())
        .await?
        .ok_or_else(|| PlayError::SsrcExhausted(format!("all SSRCs under {prefix} are taken")))?;
    match ssrc.parse() {
        Ok(s) => Ok(s),
        Err(e) => {
            let _ = store.release_ssrc(&ssrc, id.as_str()).await;
            Err(PlayError::Internal(format!("the Store gave a bad SSRC: {e}")))
        }
    }
}

/// Runs a setup (`saga`) to its end: each action's result is the next event, and whatever
/// the setup gives back on failure goes through `release`, the one table of undo steps.
pub(crate) async fn drive(shared: &Arc<Shared>, dev: &Device, mut setup: Setup) -> Result<Session, PlayError> {
    let mut event = Event::Start;
    loop {
        let actions;
        (setup, actions) = setup.step(event, kit::clock::now_ms());
        let mut next = None;
        for action in actions {
            match action {
                Action::Finish(result) => return result.map(|s| *s),
                Action::Release(held) => release(shared, dev, &setup.session.stream_id, held).await,
                action => next = run(shared, dev, &setup.session, action).await.or(next),
            }
        }
        event = next.ok_or_else(|| PlayError::Internal("play setup stalled (a bug)".into()))?;
    }
}

/// Runs one step of a setup; its result is the setup's next event.
async fn run(shared: &Arc<Shared>, dev: &Device, s: &Session, action: Action) -> Option<Event> {
    let store = shared.store.as_ref();
    let cfg = &shared.cfg.play;
    let failed = |e: PlayError| Some(Event::Failed(e));
    match action {
        Action::Insert(row) => match session::TABLE.insert(store, s.stream_id.as_str(), &row).await {
            Ok(inserted) => Some(Event::Inserted(inserted)),
            Err(e) => failed(e.into()),
        },
        Action::Reserve { exclude } => match media_nodes::reserve(store, &exclude).await {
            Ok(node) => Some(Event::Reserved(Box::new(node))),
            Err(e) => failed(e),
        },
        Action::Open { node, ssrc, transport } => {
            let api = MediaApi { cfg, node: &node.id, api_url: &node.api_url };
            match api.open(s.stream_id.as_str(), ssrc, transport, s.kind == session::SessionKind::Download).await {
                Ok((ip, port)) => Some(Event::Opened { ip, port }),
                Err(e) => {
                    tracing::warn!(node = %node.id, error = %e, "media node could not open a receiver");
                    failed(e)
                }
            }
        }
        Action::Invite { sdp, subject } => {
            let timeout = Duration::from_millis(cfg.invite_timeout_ms.max(500));
            match dialog::invite(shared, InviteRequest { device: dev, channel_id: s.channel_id.as_str(), sdp: &sdp, subject, timeout })
                .await
            {
                Ok((dialog, answer_sdp)) => Some(Event::Invited { dialog: Box::new(dialog), answer_sdp }),
                Err(InviteError::Refused { code, reason }) => failed(PlayError::CameraRefused { code, reason }),
                Err(InviteError::Timeout(ms)) => failed(PlayError::CameraTimeout(ms)),
                Err(InviteError::Sip(e)) => failed(e.into()),
            }
        }
        Action::PassAnswer { node, ssrc, peer } => {
            let api = MediaApi { cfg, node: &node.id, api_url: &node.api_url };
            match api.answer(s.stream_id.as_str(), ssrc, peer).await {
                Ok(()) => Some(Event::AnswerPassed),
                Err(e) => failed(e),
            }
        }
        Action::Keep { node, dialog } => {
            shared.plays.keep(&s.stream_id, &node, *dialog);
            None
        }
        Action::Save(row) => match session::TABLE.put(store, s.stream_id.as_str(), &row).await {
            Ok(()) => Some(Event::Saved),
            Err(e) => failed(e.into()),
        },
        Action::Release(_) | Action::Finish(_) => None,
    }
}

/// Gives back one thing a failed setup held (the undo of each step, in one place).
async fn release(shared: &Arc<Shared>, dev: &Device, id: &StreamId, held: Held) {
    let store = shared.store.as_ref();
    let result = match held {
        Held::Kept => {
            shared.plays.forget(id);
            Ok(())
        }
        Held::Dialog(mut d) => dialog::bye(shared, dev, &mut d).await.map(drop).map_err(PlayError::from),
        Held::Receiver { node, api_url } => {
            MediaApi { cfg: &shared.cfg.play, node: &node, api_url: &api_url }.close(id.as_str()).await.map(drop)
        }
        Held::Load { node } => store.release_load(NodeKind::Media.as_str(), &node).await.map_err(PlayError::from),
        Held::Record => session::take(store, id).await.map(drop),
        Held::Ssrc(ssrc) => store.release_ssrc(ssrc.as_str(), id.as_str()).await.map(drop).map_err(PlayError::from),
    };
    if let Err(e) = result {
        tracing::info!(stream = %id, error = %e, "giving back what a failed play held failed");
    }
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The API stopped it (last holder released, or stopped outright).
    Stopped,
    /// No player for `play.no_viewer_secs`.
    NoViewers,
    /// The media node received nothing for its `no_data_timeout_secs` (or lost the camera's
    /// TCP connection).
    NoData,
    /// The camera hung up.
    CameraBye,
    DeviceOffline,
    /// Its media node died and it could not be set up elsewhere.
    RecoveryFailed,
    /// This node restarted and lost the dialog.
    Restarted,
    /// The node driving it died; another node cleaned it up.
    OwnerGone,
    /// A playback's device said its file ended (`MediaStatus` 121).
    EndOfFile,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Stopped => "stopped",
            EndReason::NoViewers => "no_viewers",
            EndReason::NoData => "no_data",
            EndReason::CameraBye => "camera_bye",
            EndReason::DeviceOffline => "device_offline",
            EndReason::RecoveryFailed => "recovery_failed",
            EndReason::Restarted => "restarted",
            EndReason::OwnerGone => "owner_gone",
            EndReason::EndOfFile => "end_of_file",
        }
    }

    /// Whether the camera still has a dialog to hang up.
    fn send_bye(self) -> bool {
        !matches!(self, EndReason::CameraBye | EndReason::DeviceOffline)
    }
}

/// Releases one holder (or all, `all`); the last one ends the session.
pub async fn stop(shared: &Arc<Shared>, id: &StreamId, all: bool) -> Result<Option<Session>, PlayError> {
    let _op = shared.plays.op_lock(id).await;
    let left = session::update(shared.store.as_ref(), id, |s| {
        s.holders = if all { 0 } else { s.holders.saturating_sub(1) };
        true
    })
    .await?
    .ok_or_else(|| PlayError::NoSession(id.to_string()))?;
    if left.holders == 0 {
        Ok(teardown_locked(shared, id, EndReason::Stopped).await)
    } else {
        Ok(Some(left))
    }
}

/// Ends a session for `reason`: BYE (when the camera still has the dialog), receiver closed,
/// load unit, SSRC and record released. Runs once: returns the session if this call ended it.
pub async fn teardown(shared: &Arc<Shared>, id: &StreamId, reason: EndReason) -> Option<Session> {
    let _op = shared.plays.op_lock(id).await;
    teardown_locked(shared, id, reason).await
}

async fn teardown_locked(shared: &Arc<Shared>, id: &StreamId, reason: EndReason) -> Option<Session> {
    let store = shared.store.as_ref();
    let s = match session::take(store, id).await {
        Ok(Some(s)) => s,
        Ok(None) => {
            shared.plays.forget(id);
            return None;
        }
        Err(e) => {
            tracing::warn!(stream = %id, error = %e, "teardown: reading the session failed");
            return None;
        }
    };
    // The dialog from memory, else (another node's session, or an earlier run's) from the record.
    let dialog = shared.plays.forget(id).or(s.dialog.clone());
    if let (Some(mut d), true) = (dialog, reason.send_bye()) {
        match store.get_device(&s.device_id).await {
            Ok(Some(dev)) => {
                if let Err(e) = dialog::bye(shared, &dev, &mut d).await {
                    tracing::info!(stream = %id, error = %e, "BYE not answered");
                }
            }
            _ => tracing::info!(stream = %id, "device gone: no BYE"),
        }
    }
    if !s.media_node.is_empty() {
        let api = MediaApi { cfg: &shared.cfg.play, node: &s.media_node, api_url: &s.media_api };
        if let Err(e) = api.close(id.as_str()).await {
            tracing::info!(stream = %id, error = %e, "closing the receiver failed (node gone?)");
        }
        let _ = store.release_load(NodeKind::Media.as_str(), &s.media_node).await;
    }
    let _ = store.release_ssrc(s.ssrc.as_str(), id.as_str()).await;
    metrics::SESSIONS_CLOSED.inc();
    publish(shared, PlayEventKind::Closed, &s, Some(reason.as_str())).await;
    tracing::info!(stream = %id, reason = reason.as_str(), media_node = %s.media_node, "play session closed");
    Some(s)
}

/// The camera hung up: end its session without a BYE of ours. False for an unknown dialog.
pub async fn on_camera_bye(shared: &Arc<Shared>, call_id: &str) -> bool {
    let Some(id) = shared.plays.stream_of_call(call_id) else { return false };
    metrics::BYES_RECEIVED.inc();
    // Drop the dialog first so the teardown sends nothing back.
    shared.plays.drop_dialog(&id);
    let shared = shared.clone();
    tokio::spawn(async move {
        teardown(&shared, &id, EndReason::CameraBye).await;
    });
    true
}

/// Moves a session whose media node `dead` is gone to another node: the camera is hung up
/// (it was streaming into the void), a new node opens a receiver under the same stream id and
/// SSRC, and the camera is INVITEd again. Retried with backoff; given up after
/// `play.recover_attempts`.
pub async fn recover(shared: &Arc<Shared>, id: &StreamId, dead: &str) {
    // A playback set up again would start its span over: it ends instead, and the viewer may
    // start it again from where it was.
    if let Ok(Some(s)) = session::get(shared.store.as_ref(), id).await {
        if s.row.kind != session::SessionKind::Live {
            teardown(shared, id, EndReason::RecoveryFailed).await;
            return;
        }
    }
    let noticed_ms = kit::clock::now_ms();
    let attempts = shared.cfg.play.recover_attempts.max(1);
    for attempt in 1..=attempts {
        let outcome = {
            let _op = shared.plays.op_lock(id).await;
            recover_once(shared, id, dead, noticed_ms).await
        };
        match outcome {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(stream = %id, attempt, error = %e, "recovering the session failed");
                if attempt < attempts {
                    tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt))).await;
                }
            }
        }
    }
    teardown(shared, id, EndReason::RecoveryFailed).await;
}

async fn recover_once(shared: &Arc<Shared>, id: &StreamId, dead: &str, noticed_ms: u64) -> Result<(), PlayError> {
    let store = shared.store.as_ref();
    let Some(mut s) = session::get(store, id).await?.map(|read| read.row) else { return Ok(()) };
    if s.media_node != dead || s.sip_node != shared.me.node {
        return Ok(()); // already moved, or not ours
    }
    let dev = store.get_device(&s.device_id).await?.ok_or_else(|| PlayError::DeviceUnknown(s.device_id.to_string()))?;
    if !dev.online {
        return Err(PlayError::DeviceOffline(s.device_id.to_string()));
    }
    if s.state != SessionState::Recovering {
        s.state = SessionState::Recovering;
        session::TABLE.put(store, id.as_str(), &s).await?;
        // The old node no longer carries it (once per move: later attempts skip this block).
        let _ = store.release_load(NodeKind::Media.as_str(), dead).await;
        if let Some(mut d) = shared.plays.drop_dialog(id).or(s.dialog.take()) {
            let _ = dialog::bye(shared, &dev, &mut d).await;
        }
    }
    let setup = Setup::recover(s, dead.to_owned(), noticed_ms, dev.source_addr.clone(), shared.me.server_id.clone());
    let s = drive(shared, &dev, setup).await?;
    metrics::PLAY_RECOVERIES.inc();
    publish(shared, PlayEventKind::Recovered, &s, None).await;
    tracing::info!(stream = %id, from = dead, to = %s.media_node, took_ms = s.last_recovery_ms, "session moved to another media node");
    Ok(())
}

/// The record of a node by id among `nodes`.
pub fn node_by_id<'a>(nodes: &'a [MediaNodeRecord], id: &str) -> Option<&'a MediaNodeRecord> {
    nodes.iter().find(|n| n.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_operation_lock_is_given_back_when_its_guard_goes() {
        let plays = Plays::default();
        let id = StreamId::from("34020000001320000001_34020000001320000001");
        let first = plays.op_lock(&id).await;
        assert_eq!(plays.held().3, 1);
        // A second operation on the stream waits for the first, then takes the lock.
        let waiting = async {
            let _second = plays.op_lock(&id).await;
            plays.held().3
        };
        let (_, during_second) = tokio::join!(async { drop(first) }, waiting);
        assert_eq!(during_second, 1, "the entry stays while an operation holds it");
        assert_eq!(plays.held().3, 0, "no entry left once every guard is gone");
    }
}
