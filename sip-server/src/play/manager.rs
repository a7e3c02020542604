//! Play, stop, teardown and recovery, run on the node that owns the session (see `play`).
//!
//! Every step that takes a resource (SSRC, load unit on a media node, receiver, dialog) has its
//! release in `teardown`, which runs exactly once per session: the record is taken from the
//! Store atomically and only the taker cleans up.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cluster::registry::Device;
use cluster::wire::{MediaNodeRecord, NodeKind, PlayEvent, PlayEventKind};
use gb::ids::DeviceId;
use gb::model::SipTransport;
use gb::sdp::{GbSdp, Session as SdpSession};
use serde::Serialize;

use super::media::{self, MediaApi};
use super::session::{self, Session, SessionState};
use super::{stream_id, PlayError, PlayTransport, TransportDefault};
use crate::dialog::{self, Dialog, InviteError, InviteRequest};
use crate::metrics;
use crate::server::Shared;

/// Pub/sub channel of play session events (`started`, `recovered`, `closed` + reason).
pub use cluster::wire::PLAY_EVENTS;

/// What this node keeps in memory about the sessions it drives.
#[derive(Default)]
pub struct Plays {
    /// stream id → its dialog with the camera.
    dialogs: Mutex<HashMap<String, Dialog>>,
    /// Call-ID → stream id, to match a camera's BYE.
    by_call: Mutex<HashMap<String, String>>,
    /// stream id → (media node, its instance), for the sessions this node drives (events are
    /// matched here without reading the Store).
    mine: Mutex<HashMap<String, (String, String)>>,
    /// One operation at a time per stream id on this node.
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// UDP dialogs: Call-ID → (our ACK, where it went), to answer a retransmitted 200.
    acks: Mutex<HashMap<String, (Vec<u8>, SocketAddr)>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The answer to a play.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct PlayAnswer {
    pub stream_id: String,
    pub media_node: String,
    pub urls: super::session::Urls,
    pub ssrc: String,
    pub transport: PlayTransport,
    /// The channel was already playing: this play joined it.
    pub joined: bool,
    pub holders: u32,
}

impl PlayAnswer {
    fn of(s: &Session, joined: bool) -> Self {
        Self {
            stream_id: s.stream_id.clone(),
            media_node: s.media_node.clone(),
            urls: s.urls.clone(),
            ssrc: s.ssrc.clone(),
            transport: s.transport,
            joined,
            holders: s.holders,
        }
    }
}

impl Plays {
    async fn op_lock(&self, stream_id: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let m = lock(&self.locks).entry(stream_id.to_owned()).or_default().clone();
        m.lock_owned().await
    }

    fn release_op_lock(&self, stream_id: &str) {
        let mut g = lock(&self.locks);
        if g.get(stream_id).is_some_and(|m| Arc::strong_count(m) == 1) {
            g.remove(stream_id);
        }
    }

    /// The media node of a session this node drives.
    pub fn media_node_of(&self, stream_id: &str) -> Option<String> {
        lock(&self.mine).get(stream_id).map(|(n, _)| n.clone())
    }

    /// Sessions this node drives: (stream id, media node, its instance).
    pub fn mine(&self) -> Vec<(String, String, String)> {
        lock(&self.mine).iter().map(|(a, (n, i))| (a.clone(), n.clone(), i.clone())).collect()
    }

    /// The stream whose dialog has this Call-ID.
    pub fn stream_of_call(&self, call_id: &str) -> Option<String> {
        lock(&self.by_call).get(call_id).cloned()
    }

    fn keep(&self, stream_id: &str, node: &MediaNodeRecord, d: Dialog) {
        lock(&self.by_call).insert(d.call_id.clone(), stream_id.to_owned());
        lock(&self.dialogs).insert(stream_id.to_owned(), d);
        let mut m = lock(&self.mine);
        m.insert(stream_id.to_owned(), (node.id.clone(), node.instance.clone()));
        metrics::SESSIONS.set(m.len() as i64);
    }

    fn drop_dialog(&self, stream_id: &str) -> Option<Dialog> {
        let d = lock(&self.dialogs).remove(stream_id);
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

    fn forget(&self, stream_id: &str) -> Option<Dialog> {
        let mut m = lock(&self.mine);
        m.remove(stream_id);
        metrics::SESSIONS.set(m.len() as i64);
        drop(m);
        self.drop_dialog(stream_id)
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
async fn transport_for(shared: &Shared, dev: &Device, asked: Option<PlayTransport>) -> Result<PlayTransport, PlayError> {
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
pub async fn check_target(shared: &Shared, device_id: &DeviceId, channel_id: &str) -> Result<Device, PlayError> {
    if channel_id.len() != 20 || !channel_id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PlayError::BadRequest(format!("channel id {channel_id:?} is not a 20-digit GB id")));
    }
    let dev = shared.store.get_device(device_id).await?.ok_or_else(|| PlayError::DeviceUnknown(device_id.to_string()))?;
    if !dev.online {
        return Err(PlayError::DeviceOffline(device_id.to_string()));
    }
    // An IPC may be played by its own id; otherwise the channel must be in the catalog.
    if channel_id != device_id.as_str() && !shared.store.list_channels(device_id).await?.iter().any(|c| c.id() == channel_id) {
        return Err(PlayError::ChannelUnknown { device: device_id.to_string(), channel: channel_id.to_owned() });
    }
    Ok(dev)
}

async fn publish(shared: &Shared, event: PlayEventKind, s: &Session, reason: Option<&str>) {
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
pub async fn play(shared: &Arc<Shared>, dev: Device, channel_id: &str, asked: Option<PlayTransport>) -> Result<PlayAnswer, PlayError> {
    let id = stream_id(dev.id.as_str(), channel_id);
    let plays = &shared.plays;
    let _op = plays.op_lock(&id).await;
    let result = play_locked(shared, &dev, &id, channel_id, asked).await;
    drop(_op);
    plays.release_op_lock(&id);
    match &result {
        Ok(a) if a.joined => metrics::PLAY_JOINS.inc(),
        Ok(_) => metrics::PLAYS.inc(),
        Err(_) => metrics::PLAY_FAILURES.inc(),
    }
    result
}

async fn play_locked(
    shared: &Arc<Shared>,
    dev: &Device,
    id: &str,
    channel_id: &str,
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
        return Err(PlayError::Internal(format!("session {id} is being set up by node {}; try again", s.sip_node)));
    }

    let transport = transport_for(shared, dev, asked).await?;
    let prefix = gb::ids::gb_ssrc_prefix(&shared.domain, false)
        .ok_or_else(|| PlayError::Internal(format!("domain {:?} gives no GB SSRC prefix", shared.domain)))?;
    let ssrc = store.allocate_ssrc(&prefix, id).await?.ok_or_else(|| PlayError::Internal(format!("all SSRCs under {prefix} are taken")))?;
    let mut s = Session {
        stream_id: id.to_owned(),
        device_id: dev.id.clone(),
        channel_id: channel_id.to_owned(),
        transport,
        ssrc: ssrc.clone(),
        state: SessionState::Starting,
        sip_node: shared.node.clone(),
        media_node: String::new(),
        media_api: String::new(),
        media_instance: String::new(),
        rtp_addr: String::new(),
        call_id: None,
        dialog: None,
        holders: 1,
        urls: Default::default(),
        created_ms: kit::clock::now_ms(),
        started_ms: None,
        recoveries: 0,
        last_recovery_ms: None,
    };
    if !session::TABLE.insert(store, id, &s).await? {
        store.release_ssrc(&ssrc, id).await?;
        return Err(PlayError::Internal(format!("session {id} was created concurrently; try again")));
    }
    match establish(shared, dev, &mut s, &[]).await {
        Ok(()) => {
            s.state = SessionState::Playing;
            s.started_ms = Some(kit::clock::now_ms());
            session::TABLE.put(store, id, &s).await?;
            publish(shared, PlayEventKind::Started, &s, None).await;
            tracing::info!(stream = id, media_node = %s.media_node, transport = transport.as_str(), ssrc = %s.ssrc, "play started");
            Ok(PlayAnswer::of(&s, false))
        }
        Err(e) => {
            tracing::warn!(stream = id, error = %e, "play failed");
            // Nothing of the media side is held (establish cleans its own steps): drop the
            // record and the SSRC.
            let _ = session::take(store, id).await;
            let _ = store.release_ssrc(&ssrc, id).await;
            Err(e)
        }
    }
}

/// Media node + receiver + INVITE for `s` (its stream id and SSRC set). On success the session
/// carries its node, addresses and Call-ID and the dialog is kept; on failure everything this
/// step took is given back. `exclude`: nodes not to use.
async fn establish(shared: &Arc<Shared>, dev: &Device, s: &mut Session, exclude: &[String]) -> Result<(), PlayError> {
    let cfg = &shared.cfg.play;
    let ssrc_num: u32 = s.ssrc.parse().map_err(|_| PlayError::Internal(format!("bad ssrc {}", s.ssrc)))?;
    let mut tried: Vec<String> = exclude.to_vec();
    // A node that fails to open is skipped for the next choice (two tries in all).
    let (node, ip, port) = loop {
        let node = media::reserve(shared.store.as_ref(), &tried).await?;
        let api = MediaApi { cfg, node: &node.id, api_url: &node.api_url };
        match api.open(&s.stream_id, ssrc_num, s.transport).await {
            Ok((ip, port)) => break (node, ip, port),
            Err(e) => {
                let _ = shared.store.release_load(NodeKind::Media.as_str(), &node.id).await;
                tracing::warn!(stream = %s.stream_id, node = %node.id, error = %e, "media node could not open a receiver");
                tried.push(node.id.clone());
                if tried.len() - exclude.len() >= 2 {
                    return Err(e);
                }
            }
        }
    };
    let api = MediaApi { cfg, node: &node.id, api_url: &node.api_url };
    let undo = |e: PlayError| async {
        let _ = api.close(&s.stream_id).await;
        let _ = shared.store.release_load(NodeKind::Media.as_str(), &node.id).await;
        e
    };
    let offer = GbSdp {
        origin: shared.server_id.to_string(),
        session: SdpSession::Play,
        uri: None,
        ip: ip.clone(),
        time: (0, 0),
        media_port: port,
        transport: s.transport,
        rtpmap: vec![(96, "PS".into()), (98, "H264".into()), (97, "MPEG4".into())],
        direction: Some("recvonly".into()),
        ssrc: Some(s.ssrc.clone()),
        f: None,
        download_speed: None,
    };
    let sdp = offer.to_text();
    let invite = InviteRequest {
        device: dev,
        channel_id: &s.channel_id,
        sdp: &sdp,
        subject: format!("{}:{},{}:0", s.channel_id, s.ssrc, shared.server_id),
        timeout: Duration::from_millis(cfg.invite_timeout_ms.max(500)),
    };
    let (dialog, answer) = match dialog::invite(shared, invite).await {
        Ok(x) => x,
        Err(InviteError::Refused { code, reason }) => return Err(undo(PlayError::CameraRefused { code, reason }).await),
        Err(InviteError::Timeout(ms)) => return Err(undo(PlayError::CameraTimeout(ms)).await),
        Err(InviteError::Sip(e)) => return Err(undo(e.into()).await),
    };
    let answer = match GbSdp::parse(&answer) {
        Ok(a) => a,
        Err(e) => {
            let mut d = dialog;
            let _ = dialog::bye(shared, dev, &mut d).await;
            return Err(undo(PlayError::BadAnswer(e.to_string())).await);
        }
    };
    // Some cameras stream with an SSRC of their own and say so in the answer: the receiver is
    // told to accept it.
    let theirs: Option<u32> = answer.ssrc.as_deref().and_then(|y| y.trim().parse().ok()).filter(|y| *y != ssrc_num);
    if let Some(t) = theirs {
        tracing::info!(stream = %s.stream_id, ours = %s.ssrc, theirs = t, "camera answered its own SSRC");
    }
    let peer = match s.transport {
        PlayTransport::TcpActive => {
            let ip =
                if answer.ip == "0.0.0.0" { dev.source_addr.rsplit_once(':').map_or("", |(h, _)| h).to_owned() } else { answer.ip.clone() };
            match format!("{ip}:{}", answer.media_port).parse::<SocketAddr>() {
                Ok(p) if answer.media_port != 0 => Some(p),
                _ => {
                    let mut d = dialog;
                    let _ = dialog::bye(shared, dev, &mut d).await;
                    return Err(undo(PlayError::BadAnswer(format!(
                        "no usable camera address in the answer ({}:{})",
                        answer.ip, answer.media_port
                    )))
                    .await);
                }
            }
        }
        _ => None,
    };
    if theirs.is_some() || peer.is_some() {
        if let Err(e) = api.answer(&s.stream_id, theirs, peer).await {
            let mut d = dialog;
            let _ = dialog::bye(shared, dev, &mut d).await;
            return Err(undo(e).await);
        }
    }
    s.media_node = node.id.clone();
    s.media_api = node.api_url.clone();
    s.rtp_addr = format!("{ip}:{port}");
    s.call_id = Some(dialog.call_id.clone());
    s.dialog = Some(dialog.clone());
    s.urls = media::urls(&node, &s.stream_id);
    s.media_instance = node.instance.clone();
    shared.plays.keep(&s.stream_id, &node, dialog);
    Ok(())
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
        }
    }

    /// Whether the camera still has a dialog to hang up.
    fn send_bye(self) -> bool {
        !matches!(self, EndReason::CameraBye | EndReason::DeviceOffline)
    }
}

/// Releases one holder (or all, `all`); the last one ends the session.
pub async fn stop(shared: &Arc<Shared>, id: &str, all: bool) -> Result<Option<Session>, PlayError> {
    let _op = shared.plays.op_lock(id).await;
    let left = session::update(shared.store.as_ref(), id, |s| {
        s.holders = if all { 0 } else { s.holders.saturating_sub(1) };
        true
    })
    .await?
    .ok_or_else(|| PlayError::NoSession(id.to_owned()))?;
    let result = if left.holders == 0 { Ok(teardown_locked(shared, id, EndReason::Stopped).await) } else { Ok(Some(left)) };
    drop(_op);
    shared.plays.release_op_lock(id);
    result
}

/// Ends a session for `reason`: BYE (when the camera still has the dialog), receiver closed,
/// load unit, SSRC and record released. Runs once: returns the session if this call ended it.
pub async fn teardown(shared: &Arc<Shared>, id: &str, reason: EndReason) -> Option<Session> {
    let _op = shared.plays.op_lock(id).await;
    let r = teardown_locked(shared, id, reason).await;
    drop(_op);
    shared.plays.release_op_lock(id);
    r
}

async fn teardown_locked(shared: &Arc<Shared>, id: &str, reason: EndReason) -> Option<Session> {
    let store = shared.store.as_ref();
    let s = match session::take(store, id).await {
        Ok(Some(s)) => s,
        Ok(None) => {
            shared.plays.forget(id);
            return None;
        }
        Err(e) => {
            tracing::warn!(stream = id, error = %e, "teardown: reading the session failed");
            return None;
        }
    };
    // The dialog from memory, else (another node's session, or an earlier run's) from the record.
    let dialog = shared.plays.forget(id).or(s.dialog.clone());
    if let (Some(mut d), true) = (dialog, reason.send_bye()) {
        match store.get_device(&s.device_id).await {
            Ok(Some(dev)) => {
                if let Err(e) = dialog::bye(shared, &dev, &mut d).await {
                    tracing::info!(stream = id, error = %e, "BYE not answered");
                }
            }
            _ => tracing::info!(stream = id, "device gone: no BYE"),
        }
    }
    if !s.media_node.is_empty() {
        let api = MediaApi { cfg: &shared.cfg.play, node: &s.media_node, api_url: &s.media_api };
        if let Err(e) = api.close(id).await {
            tracing::info!(stream = id, error = %e, "closing the receiver failed (node gone?)");
        }
        let _ = store.release_load(NodeKind::Media.as_str(), &s.media_node).await;
    }
    let _ = store.release_ssrc(&s.ssrc, id).await;
    metrics::SESSIONS_CLOSED.inc();
    publish(shared, PlayEventKind::Closed, &s, Some(reason.as_str())).await;
    tracing::info!(stream = id, reason = reason.as_str(), media_node = %s.media_node, "play session closed");
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
pub async fn recover(shared: &Arc<Shared>, id: &str, dead: &str) {
    let noticed = Instant::now();
    let attempts = shared.cfg.play.recover_attempts.max(1);
    for attempt in 1..=attempts {
        let _op = shared.plays.op_lock(id).await;
        let outcome = recover_once(shared, id, dead, noticed).await;
        drop(_op);
        shared.plays.release_op_lock(id);
        match outcome {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(stream = id, attempt, error = %e, "recovering the session failed");
                if attempt < attempts {
                    tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt))).await;
                }
            }
        }
    }
    teardown(shared, id, EndReason::RecoveryFailed).await;
}

async fn recover_once(shared: &Arc<Shared>, id: &str, dead: &str, noticed: Instant) -> Result<(), PlayError> {
    let store = shared.store.as_ref();
    let Some(mut s) = session::get(store, id).await?.map(|read| read.row) else { return Ok(()) };
    if s.media_node != dead || s.sip_node != shared.node {
        return Ok(()); // already moved, or not ours
    }
    let dev = store.get_device(&s.device_id).await?.ok_or_else(|| PlayError::DeviceUnknown(s.device_id.to_string()))?;
    if !dev.online {
        return Err(PlayError::DeviceOffline(s.device_id.to_string()));
    }
    if s.state != SessionState::Recovering {
        s.state = SessionState::Recovering;
        session::TABLE.put(store, id, &s).await?;
        // The old node no longer carries it (once per move: later attempts skip this block).
        let _ = store.release_load(NodeKind::Media.as_str(), dead).await;
        if let Some(mut d) = shared.plays.drop_dialog(id).or(s.dialog.take()) {
            let _ = dialog::bye(shared, &dev, &mut d).await;
        }
    }
    establish(shared, &dev, &mut s, &[dead.to_owned()]).await?;
    let took = noticed.elapsed().as_millis() as u64;
    s.state = SessionState::Playing;
    s.recoveries += 1;
    s.last_recovery_ms = Some(took);
    session::TABLE.put(store, id, &s).await?;
    metrics::PLAY_RECOVERIES.inc();
    publish(shared, PlayEventKind::Recovered, &s, None).await;
    tracing::info!(stream = id, from = dead, to = %s.media_node, took_ms = took, "session moved to another media node");
    Ok(())
}

/// The record of a node by id among `nodes`.
pub fn node_by_id<'a>(nodes: &'a [MediaNodeRecord], id: &str) -> Option<&'a MediaNodeRecord> {
    nodes.iter().find(|n| n.id == id)
}
