//! What devices report of their own accord: `Alarm` notifications (answered 200, then with a
//! `Response` Result OK as the standard has the platform do; kept per device and cluster-wide,
//! newest first and capped; published for the console) and `MobilePosition` (the latest per
//! device or channel, and a capped track). Device-local times are read in the device's UTC
//! offset (`records::device_offset`).

use std::sync::Arc;

use cluster::registry::Device;
use cluster::wire::{ALARM_EVENTS, POSITION_EVENTS};
use gb::ids::DeviceId;
use gb::model::{Alarm, Position};
use kit::clock::stamp;
use serde::{Deserialize, Serialize};

use crate::play::PlayError;
use crate::server::Shared;

/// The cluster-wide alarm log.
const ALL_ALARMS: &str = "alarms";

fn device_alarms(device: &DeviceId) -> String {
    format!("alarms:{device}")
}

fn latest_positions(device: &DeviceId) -> String {
    format!("positions:{device}")
}

/// The latest position of every source of every device (the console's map), by
/// `<device>:<source>`.
const ALL_LATEST: &str = "positions";

fn track(device: &DeviceId, source: &str) -> String {
    format!("track:{device}:{source}")
}

/// An alarm as kept and published.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlarmRecord {
    /// Unique: when it arrived and a random tail.
    pub id: String,
    /// The registered device that sent it.
    pub device_id: DeviceId,
    /// What raised it: the body's `DeviceID` (a channel, an alarm input, or the device).
    pub source_id: String,
    pub priority: Option<u8>,
    pub method: Option<u8>,
    /// `method` in words (`video`, `device_fault`, …).
    pub method_name: Option<&'static str>,
    pub alarm_type: Option<u32>,
    pub event_type: Option<u32>,
    /// RFC 3339 (UTC) of the device's `AlarmTime`; absent when it sent none we can read.
    pub time: Option<String>,
    pub device_time: Option<String>,
    pub description: Option<String>,
    pub longitude: Option<f64>,
    pub latitude: Option<f64>,
    pub received_ms: u64,
    pub node: String,
}

/// A position as kept and published.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PositionRecord {
    pub device_id: DeviceId,
    /// What moved: the body's `DeviceID` (a channel or the device).
    pub source_id: String,
    pub time: Option<String>,
    pub device_time: Option<String>,
    pub longitude: f64,
    pub latitude: f64,
    pub speed: Option<f64>,
    pub direction: Option<f64>,
    pub altitude: Option<f64>,
    pub received_ms: u64,
}

fn method_name(m: u8) -> Option<&'static str> {
    Some(match m {
        1 => "telephone",
        2 => "device",
        3 => "sms",
        4 => "gps",
        5 => "video",
        6 => "device_fault",
        7 => "other",
        _ => return None,
    })
}

/// A device time read in the device's zone, as RFC 3339 UTC.
fn instant(text: Option<&str>, offset: i32) -> Option<String> {
    text.and_then(stamp::parse).map(|w| stamp::format_utc(w.unix_secs(offset)))
}

/// An alarm from `device_id`: kept in its log and the cluster's, and published. Returns the
/// device and the alarm's source for the standard's `Response` (`answer_alarm`), which an alarm
/// by MESSAGE gets; one by a subscription's NOTIFY is answered by the NOTIFY's 200.
pub async fn keep_alarm(shared: &Shared, device_id: &DeviceId, source_id: String, alarm: Alarm) -> Option<(Device, String)> {
    let Ok(Some(dev)) = shared.store.get_device(device_id).await else {
        tracing::info!(device_id = %device_id, "alarm from a device not in the Store; dropped");
        return None;
    };
    let offset = crate::records::device_offset(shared, &dev).0;
    let now = kit::clock::now_ms();
    let rec = AlarmRecord {
        id: format!("{now}-{:08x}", rand::random::<u32>()),
        device_id: device_id.clone(),
        source_id: if source_id.is_empty() { device_id.to_string() } else { source_id },
        priority: alarm.priority,
        method: alarm.method,
        method_name: alarm.method.and_then(method_name),
        alarm_type: alarm.alarm_type,
        event_type: alarm.event_type,
        time: instant(alarm.time.as_deref(), offset),
        device_time: alarm.time,
        description: alarm.description,
        longitude: alarm.longitude,
        latitude: alarm.latitude,
        received_ms: now,
        node: shared.me.node.to_string(),
    };
    crate::metrics::ALARMS.inc();
    tracing::info!(device_id = %device_id, source = %rec.source_id, priority = ?rec.priority, method = ?rec.method, "alarm");
    let json = cluster::wire::to_json(&rec);
    let cfg = &shared.cfg;
    let kept = async {
        shared.store.log_push(&device_alarms(device_id), &json, cfg.alarm_history).await?;
        shared.store.log_push(ALL_ALARMS, &json, cfg.alarm_history_all).await?;
        shared.store.publish(ALARM_EVENTS, &json).await
    };
    if let Err(e) = kept.await {
        tracing::warn!(device_id = %device_id, error = %e, "alarm not kept");
    }
    Some((dev, rec.source_id))
}

/// The platform's `Response` to an alarm (Result OK); a device that does not take it only costs
/// a log line (many resend the alarm until answered, which is what the answer is for).
pub async fn answer_alarm(shared: &Shared, dev: &Device, sn: u32, source_id: &str) {
    let body = gb::manscdp::build::alarm_response(sn, source_id);
    if let Err(e) = crate::outbound::send_request(shared, dev, "MESSAGE", gb::manscdp::CONTENT_TYPE, &body).await {
        tracing::info!(device_id = %dev.id, error = %e, "the alarm's Response was not taken");
    }
}

/// A position from `device_id`: the latest kept per source, the track capped, published.
/// A report without a usable longitude and latitude is only counted.
pub async fn on_position(shared: &Arc<Shared>, device_id: &DeviceId, source_id: String, pos: Position) {
    crate::metrics::POSITIONS.inc();
    let (Some(longitude), Some(latitude)) = (pos.longitude, pos.latitude) else {
        tracing::debug!(device_id = %device_id, "MobilePosition without coordinates");
        return;
    };
    let offset = match shared.store.get_device(device_id).await {
        Ok(Some(dev)) => crate::records::device_offset(shared, &dev).0,
        _ => shared.cfg.date_utc_offset_minutes,
    };
    let source_id = if source_id.is_empty() { device_id.to_string() } else { source_id };
    let rec = PositionRecord {
        device_id: device_id.clone(),
        time: instant(pos.time.as_deref(), offset),
        device_time: pos.time,
        longitude,
        latitude,
        speed: pos.speed,
        direction: pos.direction,
        altitude: pos.altitude,
        received_ms: kit::clock::now_ms(),
        source_id,
    };
    let json = cluster::wire::to_json(&rec);
    let kept = async {
        shared.store.table_put(&latest_positions(device_id), &rec.source_id, &json).await?;
        shared.store.table_put(ALL_LATEST, &format!("{device_id}:{}", rec.source_id), &json).await?;
        shared.store.log_push(&track(device_id, &rec.source_id), &json, shared.cfg.position_track).await?;
        shared.store.publish(POSITION_EVENTS, &json).await
    };
    if let Err(e) = kept.await {
        tracing::warn!(device_id = %device_id, error = %e, "position not kept");
    }
}

/// A page of stored JSON items as values (an item that no longer reads is left out and logged).
fn values(items: Vec<String>, what: &str) -> Vec<serde_json::Value> {
    items
        .into_iter()
        .filter_map(|s| match serde_json::from_str(&s) {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::warn!(what, error = %e, "a stored item does not read");
                None
            }
        })
        .collect()
}

/// Most items one page returns.
pub const MAX_PAGE: usize = 500;

/// Alarms newest first: of one device, or of all.
pub async fn alarms(shared: &Shared, device: Option<&DeviceId>, offset: usize, limit: usize) -> Result<serde_json::Value, PlayError> {
    let log = device.map_or_else(|| ALL_ALARMS.to_owned(), device_alarms);
    let (items, total) = shared.store.log_range(&log, offset, limit.min(MAX_PAGE)).await?;
    Ok(serde_json::json!({"total": total, "offset": offset, "items": values(items, "alarm")}))
}

/// The latest position of each of a device's sources.
pub async fn positions(shared: &Shared, device: &DeviceId) -> Result<serde_json::Value, PlayError> {
    let rows = shared.store.table_list(&latest_positions(device)).await?;
    let items = values(rows.into_iter().map(|(_, v)| v).collect(), "position");
    Ok(serde_json::json!({"device_id": device, "total": items.len(), "items": items}))
}

/// The latest position of every source of every device.
pub async fn all_positions(shared: &Shared) -> Result<serde_json::Value, PlayError> {
    let rows = shared.store.table_list(ALL_LATEST).await?;
    let items = values(rows.into_iter().map(|(_, v)| v).collect(), "position");
    Ok(serde_json::json!({"total": items.len(), "items": items}))
}

/// A source's track, newest first.
pub async fn track_of(
    shared: &Shared,
    device: &DeviceId,
    source: &str,
    offset: usize,
    limit: usize,
) -> Result<serde_json::Value, PlayError> {
    let (items, total) = shared.store.log_range(&track(device, source), offset, limit.min(MAX_PAGE)).await?;
    Ok(serde_json::json!({"device_id": device, "source_id": source, "total": total, "offset": offset, "items": values(items, "position")}))
}
