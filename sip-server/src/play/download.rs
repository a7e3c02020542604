//! Download of a recording: a session of its own (`SessionKind::Download`, stream id
//! `<device>_<channel>_dl<tag>`, history SSRC) INVITEd with `s=Download` and
//! `a=downloadspeed:N`, on a receiver the media node writes to an MP4 file. The device's
//! `MediaStatus` 121 ends the session with BYE like a playback's; the file is then finished and
//! served by the media node (`GET /downloads/{id}.mp4`, Range requests).
//!
//! The `downloads` table keeps each download past its session: where the file is, the span
//! and speed. Progress comes from the media node (media time written against the span), so any
//! API node can answer it; cancelling stops the session (from the node holding its dialog) and
//! deletes the file.

use std::sync::Arc;

use cluster::registry::Device;
use cluster::table::Table;
use cluster::wire::StreamId;
use gb::ids::{ChannelId, DeviceId};
use serde::{Deserialize, Serialize};

use super::media_nodes::MediaApi;
use super::session;
use super::{PlayError, PlayTransport};
use crate::server::Shared;

/// Speeds a download may be asked for (`a=downloadspeed`): what devices take, 1–8 in practice.
pub const SPEEDS: std::ops::RangeInclusive<u32> = 1..=8;

pub const TABLE: Table<DownloadRow> = Table::new("downloads");

/// A download as the Store keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DownloadRow {
    pub id: StreamId,
    pub device_id: DeviceId,
    pub channel_id: ChannelId,
    /// The span, Unix seconds.
    pub start: i64,
    pub end: i64,
    pub speed: u32,
    pub media_node: String,
    /// The media node's control API (status, cancel).
    pub media_api: String,
    /// Where the file is served once done.
    pub url: String,
    pub created_ms: u64,
}

/// What the API asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DownloadRequest {
    pub span: (i64, i64),
    pub speed: u32,
    pub transport: Option<PlayTransport>,
}

/// Checks a request before anything is sent.
pub fn check(r: &DownloadRequest) -> Result<(), PlayError> {
    if !SPEEDS.contains(&r.speed) {
        return Err(PlayError::BadRequest(format!("speed must be {}-{}, not {}", SPEEDS.start(), SPEEDS.end(), r.speed)));
    }
    Ok(())
}

/// Starts a download of `channel_id` on this node (which holds the device).
pub async fn start(shared: &Arc<Shared>, dev: Device, channel_id: &ChannelId, r: DownloadRequest) -> Result<serde_json::Value, PlayError> {
    check(&r)?;
    let s = super::playback::start_recorded(shared, &dev, channel_id, "dl", r.span, r.transport, |s| s.downloading(r.speed)).await?;
    let (id, now) = (s.stream_id.clone(), s.created_ms);
    let row = DownloadRow {
        id: id.clone(),
        device_id: dev.id.clone(),
        channel_id: channel_id.clone(),
        start: r.span.0,
        end: r.span.1,
        speed: r.speed,
        media_node: s.media_node.clone(),
        media_api: s.media_api.clone(),
        url: s.urls.fmp4.rsplit_once("/live/").map_or_else(String::new, |(base, _)| format!("{base}/downloads/{id}.mp4")),
        created_ms: now,
    };
    TABLE.put(shared.store.as_ref(), id.as_str(), &row).await?;
    view(shared, &row).await
}

/// The row with where it stands: `state` (`writing`, `finishing`, `done`, `failed`,
/// `cancelled`, or `lost` when its media node no longer knows it), `progress` (0–1, media
/// time written against the span), `bytes`, and the file's `url` once done.
pub async fn view(shared: &Shared, row: &DownloadRow) -> Result<serde_json::Value, PlayError> {
    let api = MediaApi { cfg: &shared.cfg.play, node: &row.media_node, api_url: &row.media_api };
    let status = match api.download(row.id.as_str()).await {
        Ok(s) => s,
        Err(e) => {
            tracing::debug!(download = %row.id, error = %e, "media node did not give the download's state");
            None
        }
    };
    let span_ms = ((row.end - row.start).max(1) as u64) * 1000;
    let state = status.as_ref().and_then(|s| s["state"].as_str()).unwrap_or("lost").to_owned();
    let media_ms = status.as_ref().and_then(|s| s["media_ms"].as_u64()).unwrap_or(0);
    let progress = if state == "done" { 1.0 } else { (media_ms as f64 / span_ms as f64).min(0.99) };
    let mut v = serde_json::to_value(row).map_err(|e| PlayError::Internal(e.to_string()))?;
    v["start"] = kit::clock::stamp::format_utc(row.start).into();
    v["end"] = kit::clock::stamp::format_utc(row.end).into();
    v["state"] = state.clone().into();
    v["progress"] = ((progress * 1000.0).round() / 1000.0).into();
    v["media_ms"] = media_ms.into();
    v["bytes"] = status.as_ref().and_then(|s| s["bytes"].as_u64()).unwrap_or(0).into();
    if let Some(e) = status.as_ref().and_then(|s| s["error"].as_str()) {
        v["error"] = e.into();
    }
    if state != "done" {
        v["url"] = serde_json::Value::Null;
    }
    Ok(v)
}

pub async fn get(shared: &Shared, id: &StreamId) -> Result<DownloadRow, PlayError> {
    Ok(TABLE.get(shared.store.as_ref(), id.as_str()).await?.ok_or_else(|| PlayError::NoSession(id.to_string()))?.row)
}

/// Every readable download, newest first (a corrupt row is logged by name).
pub async fn list(shared: &Shared) -> Result<Vec<DownloadRow>, PlayError> {
    let mut rows: Vec<DownloadRow> = TABLE
        .list(shared.store.as_ref())
        .await?
        .into_iter()
        .filter_map(|(id, r)| r.map_err(|e| tracing::warn!(download = %id, error = %e, "unreadable download row")).ok())
        .collect();
    rows.sort_by_key(|r| std::cmp::Reverse(r.created_ms));
    Ok(rows)
}

/// Cancels a download (its session stopped from the node holding the dialog, if still up) and
/// deletes its file and row.
pub async fn cancel(shared: &Arc<Shared>, id: &StreamId) -> Result<(), PlayError> {
    let row = get(shared, id).await?;
    if let Some(s) = session::get(shared.store.as_ref(), id).await? {
        let call = crate::rpc::Call::Stop { stream_id: id.clone(), all: true };
        if let Err(e) = crate::rpc::call(shared, &s.row.sip_node, call).await {
            tracing::warn!(download = %id, error = %e, "stopping the download's session failed; its file is deleted anyway");
        }
    }
    let api = MediaApi { cfg: &shared.cfg.play, node: &row.media_node, api_url: &row.media_api };
    api.delete_download(id.as_str()).await?;
    TABLE.take(shared.store.as_ref(), id.as_str()).await?;
    tracing::info!(download = %id, "download cancelled and deleted");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speeds_out_of_range_are_named() {
        let r = DownloadRequest { span: (0, 60), speed: 4, transport: None };
        assert!(check(&r).is_ok());
        assert_eq!(check(&DownloadRequest { speed: 0, ..r }), Err(PlayError::BadRequest("speed must be 1-8, not 0".into())));
        assert!(check(&DownloadRequest { speed: 9, ..r }).is_err());
    }
}
