//! Playback of a recording: a session of its own (`SessionKind::Playback`, stream id
//! `<device>_<channel>_pb<tag>`, history SSRC) INVITEd with `s=Playback`, `u=<channel>:0` and
//! the span in `t=`, then steered by INFO (`Application/MANSRTSP`: pause, resume, speed, seek)
//! from the node holding its dialog. The media node is told the same (its output timeline
//! stays monotonic and runs at real time whatever the speed, and counts the position from the
//! last seek), and the session record keeps where it stands. A device's `MediaStatus` 121 (end
//! of file) ends it with BYE.

use std::sync::Arc;

use cluster::registry::Device;
use cluster::wire::StreamId;
use gb::ids::ChannelId;
use gb::mansrtsp::{Command, Control, From};
use serde::{Deserialize, Serialize};

use super::manager::{self, EndReason, PlayAnswer};
use super::media_nodes::MediaApi;
use super::saga::Setup;
use super::session::{self, PlaybackState, Session, SessionKind, SessionState};
use super::{PlayError, PlayTransport};
use crate::dialog;
use crate::server::Shared;
use cluster::wire::PlayEventKind;

/// Speeds a playback may be asked for (the standard's 0.25–4; 8 where devices take it).
pub const SCALES: [f64; 6] = [0.25, 0.5, 1.0, 2.0, 4.0, 8.0];

/// What the API asks of a running playback.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum PlaybackControl {
    Pause,
    Resume,
    Speed {
        scale: f64,
    },
    /// Seconds from the span's start.
    Seek {
        position: f64,
    },
}

/// Starts a playback of `channel_id` over `[start, end)` on this node (which holds the device).
pub async fn start(
    shared: &Arc<Shared>,
    dev: Device,
    channel_id: &ChannelId,
    span: (i64, i64),
    asked: Option<PlayTransport>,
) -> Result<PlayAnswer, PlayError> {
    let s = start_recorded(shared, &dev, channel_id, "pb", span, asked, |s| s).await?;
    Ok(PlayAnswer::of(&s, false))
}

/// Sets up a session of a recording (a playback, or what `shape` makes of one: a download) on
/// this node: its own stream id (`<device>_<channel>_<tag><8 hex>`), a history SSRC, the saga;
/// published as started.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn start_recorded(
    shared: &Arc<Shared>,
    dev: &Device,
    channel_id: &ChannelId,
    tag: &str,
    span: (i64, i64),
    asked: Option<PlayTransport>,
    shape: impl FnOnce(Session) -> Session,
) -> Result<Session, PlayError> {
    let id = StreamId::from(format!("{}_{}_{tag}{:08x}", dev.id, channel_id, rand::random::<u32>()).as_str());
    let _op = shared.plays.op_lock(&id).await;
    let transport = manager::transport_for(shared, dev, asked).await?;
    let ssrc = manager::allocate_ssrc(shared, &id, true).await?;
    let now = kit::clock::now_ms();
    let s = shape(Session::playback(dev.id.clone(), channel_id.clone(), transport, ssrc, shared.me.node.clone(), now, id.clone(), span));
    let kind = s.kind;
    let setup = Setup::play(s, dev.source_addr.clone(), shared.me.server_id.clone());
    match manager::drive(shared, dev, setup).await {
        Ok(s) => {
            manager::publish(shared, PlayEventKind::Started, &s, None).await;
            tracing::info!(stream = %id, ?kind, media_node = %s.media_node, start = span.0, end = span.1, "recording session started");
            Ok(s)
        }
        Err(e) => {
            tracing::warn!(stream = %id, ?kind, error = %e, "recording session failed to start");
            Err(e)
        }
    }
}

/// Checks a control against the playback's span before anything is sent.
fn check(c: PlaybackControl, p: &PlaybackState) -> Result<(), PlayError> {
    match c {
        PlaybackControl::Speed { scale } if !SCALES.contains(&scale) => {
            Err(PlayError::BadRequest(format!("scale must be one of 0.25, 0.5, 1, 2, 4, 8, not {scale}")))
        }
        PlaybackControl::Seek { position } if !(position.is_finite() && position >= 0.0 && position < (p.end - p.start) as f64) => {
            Err(PlayError::BadRequest(format!("position must be 0-{} s from the start, not {position}", p.end - p.start)))
        }
        _ => Ok(()),
    }
}

/// The MANSRTSP command of a control.
fn command(c: PlaybackControl) -> Command {
    match c {
        PlaybackControl::Pause => Command::Pause,
        PlaybackControl::Resume => Command::Play { range: Some(From::Now), scale: None },
        PlaybackControl::Speed { scale } => Command::Play { range: None, scale: Some(scale) },
        PlaybackControl::Seek { position } => Command::Play { range: Some(From::Secs(position)), scale: None },
    }
}

/// Carries out a control on this node (the one holding the playback's dialog).
pub async fn control(shared: &Arc<Shared>, id: &StreamId, c: PlaybackControl) -> Result<serde_json::Value, PlayError> {
    let _op = shared.plays.op_lock(id).await;
    let s = session::get(shared.store.as_ref(), id).await?.ok_or_else(|| PlayError::NoSession(id.to_string()))?.row;
    let (SessionKind::Playback, Some(state)) = (s.kind, s.playback) else {
        return Err(PlayError::BadRequest(format!("{id} is live, not a playback")));
    };
    check(c, &state)?;
    if s.state != SessionState::Playing {
        return Err(PlayError::Busy(format!("playback {id} is not playing yet")));
    }
    let mut d = shared.plays.dialog_of(id).or(s.dialog.clone()).ok_or_else(|| PlayError::Internal(format!("{id} has no dialog")))?;
    let dev = shared.store.get_device(&s.device_id).await?.ok_or_else(|| PlayError::DeviceUnknown(s.device_id.to_string()))?;
    let ctl = Control { command: command(c), cseq: state.rtsp_cseq + 1 };
    let body = gb::mansrtsp::build(&ctl);
    let sent = dialog::in_dialog(shared, &dev, &mut d, "INFO", Some((gb::mansrtsp::CONTENT_TYPE, &body))).await;
    shared.plays.set_dialog(id, &d);
    let request = "playback control (INFO)";
    match sent {
        Ok(200..=299) => {}
        Ok(code) => {
            keep(shared, id, &d, |p| p.rtsp_cseq = ctl.cseq).await?;
            return Err(PlayError::DeviceRefused { request: request.into(), code });
        }
        Err(e) => return Err(crate::control::sip_failure(e, request)),
    }
    // The media node's timeline follows what the device now does.
    let api = MediaApi { cfg: &shared.cfg.play, node: &s.media_node, api_url: &s.media_api };
    let (scale, mark, paused) = match c {
        PlaybackControl::Pause => (None, false, Some(true)),
        PlaybackControl::Resume => (None, false, Some(false)),
        PlaybackControl::Speed { scale } => (Some(scale), false, None),
        PlaybackControl::Seek { .. } => (None, true, Some(false)),
    };
    if let Err(e) = api.timeline(id.as_str(), scale, mark, paused).await {
        tracing::warn!(stream = %id, error = %e, "the media node did not take the playback's timeline");
    }
    let row = keep(shared, id, &d, |p| {
        p.rtsp_cseq = ctl.cseq;
        match c {
            PlaybackControl::Pause => p.paused = true,
            PlaybackControl::Resume => p.paused = false,
            PlaybackControl::Speed { scale } => p.scale_milli = (scale * 1000.0).round() as u32,
            PlaybackControl::Seek { position } => {
                p.anchor_ms = (position * 1000.0) as u64;
                p.paused = false;
            }
        }
    })
    .await?;
    tracing::info!(stream = %id, control = ?c, "playback steered");
    Ok(serde_json::json!({"stream_id": id, "control": c, "playback": row.and_then(|r| r.playback)}))
}

/// Writes the dialog's CSeq and the playback's new state to the session record.
async fn keep(
    shared: &Shared,
    id: &StreamId,
    d: &dialog::Dialog,
    mut f: impl FnMut(&mut PlaybackState),
) -> Result<Option<Session>, PlayError> {
    session::update(shared.store.as_ref(), id, |s| {
        s.dialog = Some(d.clone());
        if let Some(p) = s.playback.as_mut() {
            f(p);
        }
        true
    })
    .await
}

/// Where a playback is: its position from the media node's count since the last mark.
pub async fn position(shared: &Shared, s: &Session) -> Result<serde_json::Value, PlayError> {
    let Some(p) = s.playback else { return Err(PlayError::BadRequest(format!("{} is live, not a playback", s.stream_id))) };
    let api = MediaApi { cfg: &shared.cfg.play, node: &s.media_node, api_url: &s.media_api };
    let stats = api.stream_stats(s.stream_id.as_str()).await?;
    let since_mark = stats["since_mark_ms"].as_u64().unwrap_or(0);
    let span_ms = ((p.end - p.start).max(0) as u64) * 1000;
    let position_ms = (p.anchor_ms + since_mark).min(span_ms);
    Ok(serde_json::json!({
        "stream_id": s.stream_id,
        "start": kit::clock::stamp::format_utc(p.start),
        "end": kit::clock::stamp::format_utc(p.end),
        "position_ms": position_ms,
        "at": kit::clock::stamp::format_utc(p.start + (position_ms / 1000) as i64),
        "scale": f64::from(p.scale_milli) / 1000.0,
        "paused": p.paused,
    }))
}

/// A device's `MediaStatus` 121 (end of file) for the dialog `call_id`, or else for the
/// playbacks and downloads of `channel` on `device` this node drives: ended with BYE (the device finished
/// sending, its dialog is still up).
pub async fn end_of_file(shared: &Arc<Shared>, call_id: Option<&str>, device: &str, channel: &str) -> usize {
    let ids: Vec<StreamId> = match call_id.and_then(|c| shared.plays.stream_of_call(c)) {
        Some(id) => vec![id],
        None => shared
            .plays
            .mine()
            .into_iter()
            .map(|(id, _, _)| id)
            .filter(|id| ["pb", "dl"].iter().any(|k| id.as_str().starts_with(&format!("{device}_{channel}_{k}"))))
            .collect(),
    };
    let mut ended = 0;
    for id in ids {
        if manager::teardown(shared, &id, EndReason::EndOfFile).await.is_some() {
            ended += 1;
        }
    }
    ended
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_checked_and_become_mansrtsp() {
        let p = PlaybackState { start: 1000, end: 1600, scale_milli: 1000, paused: false, anchor_ms: 0, rtsp_cseq: 0 };
        assert!(check(PlaybackControl::Speed { scale: 2.0 }, &p).is_ok());
        assert!(matches!(check(PlaybackControl::Speed { scale: 3.0 }, &p), Err(PlayError::BadRequest(m)) if m.contains("not 3")));
        assert!(check(PlaybackControl::Seek { position: 599.0 }, &p).is_ok());
        assert!(
            matches!(check(PlaybackControl::Seek { position: 600.0 }, &p), Err(PlayError::BadRequest(m)) if m == "position must be 0-600 s from the start, not 600")
        );
        assert!(check(PlaybackControl::Seek { position: f64::NAN }, &p).is_err());
        assert_eq!(command(PlaybackControl::Resume), Command::Play { range: Some(From::Now), scale: None });
        assert_eq!(command(PlaybackControl::Seek { position: 30.0 }), Command::Play { range: Some(From::Secs(30.0)), scale: None });
        let json: PlaybackControl = serde_json::from_str(r#"{"action":"speed","scale":4}"#).unwrap();
        assert_eq!(json, PlaybackControl::Speed { scale: 4.0 });
        assert!(serde_json::from_str::<PlaybackControl>(r#"{"action":"rewind"}"#).is_err());
    }
}
