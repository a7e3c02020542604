//! `RecordInfo` from the API: a channel's recordings between two instants. The query goes out
//! from the node holding the device (routed over the Store like a play); the device answers in
//! as many MESSAGEs as it likes, matched to the query by SN through `handles::Waiters` and
//! gathered by `gb::records::RecordSet` up to `sip.record_max_items`. Devices keep local time
//! without a zone: instants are written and read in the device's UTC offset — the one its
//! `DeviceTime` showed (`DeviceStatus`), else the one our REGISTER `Date` header gave it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use gb::ids::{ChannelId, DeviceId};
use gb::manscdp::Body;
use gb::records::{Gathered, RecordSet, RecordType, Records};
use kit::clock::stamp::{self, Written};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::control::{sip_failure, target, ANSWER_TIMEOUT};
use crate::play::PlayError;
use crate::server::Shared;

/// A query's span: longer ones are refused (a month of 15-minute files is about 3,000).
pub const MAX_SPAN_SECS: i64 = 31 * 86_400;

/// `GET …/records?start=…&end=…&type=…` as it arrives.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordsParams {
    pub start: Option<String>,
    pub end: Option<String>,
    #[serde(rename = "type")]
    pub record_type: Option<String>,
}

/// A checked query: instants (Unix seconds) and the type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordRange {
    pub start: i64,
    pub end: i64,
    pub record_type: RecordType,
}

/// A time as the API takes it: Unix seconds, RFC 3339 with a zone, or a zoneless date-time read
/// as the device's local time (what an operator reading the camera's overlay means).
fn instant(name: &str, value: Option<&str>, device_offset: i32) -> Result<i64, PlayError> {
    let value = value.ok_or_else(|| PlayError::BadRequest(format!("{name} is required")))?;
    if let Ok(secs) = value.trim().parse::<i64>() {
        return Ok(secs);
    }
    stamp::parse(value).map(|w: Written| w.unix_secs(device_offset)).ok_or_else(|| {
        PlayError::BadRequest(format!("{name} {value:?} is not a time (Unix seconds, or 2026-12-01T10:00:00 with or without a zone)"))
    })
}

impl RecordRange {
    pub fn from_params(p: &RecordsParams, device_offset: i32) -> Result<Self, PlayError> {
        let start = instant("start", p.start.as_deref(), device_offset)?;
        let end = instant("end", p.end.as_deref(), device_offset)?;
        if end <= start {
            return Err(PlayError::BadRequest(format!(
                "end must be after start ({} is not after {})",
                stamp::format_utc(end),
                stamp::format_utc(start)
            )));
        }
        if end - start > MAX_SPAN_SECS {
            return Err(PlayError::BadRequest(format!("a query spans at most 31 days, not {} s", end - start)));
        }
        let record_type = match p.record_type.as_deref() {
            None => RecordType::All,
            Some(t) => {
                RecordType::parse(t).ok_or_else(|| PlayError::BadRequest(format!("type must be all, time, alarm or manual, not {t:?}")))?
            }
        };
        Ok(Self { start, end, record_type })
    }
}

/// The UTC offset a device's times are written in, and where it comes from.
pub fn device_offset(shared: &Shared, dev: &cluster::registry::Device) -> (i32, &'static str) {
    match dev.status.as_ref().and_then(|s| s.utc_offset_minutes) {
        Some(m) => (m, "device_time"),
        None => (shared.cfg.date_utc_offset_minutes, "date_header"),
    }
}

/// The channel's recordings, from the node holding the device.
pub async fn records(
    shared: &Arc<Shared>,
    device_id: &DeviceId,
    channel_id: &ChannelId,
    params: &RecordsParams,
) -> Result<serde_json::Value, PlayError> {
    let dev = target(shared, device_id, channel_id).await?;
    let range = RecordRange::from_params(params, device_offset(shared, &dev).0)?;
    if dev.node != shared.me.node {
        let call = crate::rpc::Call::Records { device_id: device_id.clone(), channel_id: channel_id.clone(), range };
        return crate::rpc::call(shared, &dev.node, call).await;
    }
    query_records(shared, &dev, channel_id, range).await
}

/// Sends the query from this node and gathers its answer.
pub async fn query_records(
    shared: &Shared,
    dev: &cluster::registry::Device,
    channel_id: &ChannelId,
    range: RecordRange,
) -> Result<serde_json::Value, PlayError> {
    let (offset, offset_source) = device_offset(shared, dev);
    let sn = shared.next_sn();
    let mut waiting =
        shared.waiters.wait(dev.id.as_str(), sn).ok_or_else(|| PlayError::Busy("too many device queries in flight".into()))?;
    let body = gb::manscdp::build::record_info_query(
        sn,
        channel_id.as_str(),
        &stamp::format_local(range.start, offset),
        &stamp::format_local(range.end, offset),
        range.record_type.as_str(),
    );
    crate::metrics::RECORD_QUERIES.inc();
    crate::outbound::send_request(shared, dev, "MESSAGE", gb::manscdp::CONTENT_TYPE, &body)
        .await
        .map_err(|e| sip_failure(e, "RecordInfo query"))?;
    let set = gather(&mut waiting, &shared.cfg).await?;
    Ok(answer(dev, channel_id, range, offset, offset_source, set))
}

/// Reads the answer's MESSAGEs: the first within `ANSWER_TIMEOUT`, each next within
/// `record_quiet_ms`, all within `record_max_wait_ms`, at most `record_max_items` kept.
async fn gather(waiting: &mut crate::handles::Waiting<'_>, cfg: &crate::config::SipConfig) -> Result<RecordSet, PlayError> {
    let mut set = RecordSet::new(cfg.record_max_items);
    let quiet = Duration::from_millis(cfg.record_quiet_ms.max(1));
    let give_up = Instant::now() + Duration::from_millis(cfg.record_max_wait_ms.max(1));
    loop {
        let now = Instant::now();
        let within = if set.started() { quiet } else { ANSWER_TIMEOUT }.min(give_up.saturating_duration_since(now));
        match waiting.next(within).await {
            Some(Body::RecordInfo { sum_num, items }) => {
                crate::metrics::RECORD_ITEMS.add(items.len() as u64);
                if set.push(sum_num, items) != Gathered::Partial {
                    break;
                }
            }
            Some(_) => return Err(PlayError::Internal("the RecordInfo answer was not a record list".into())),
            None if !set.started() => {
                return Err(PlayError::DeviceTimeout { request: "RecordInfo answer".into(), ms: ANSWER_TIMEOUT.as_millis() as u64 })
            }
            // Quiet, or out of time: answer with what arrived.
            None => break,
        }
    }
    Ok(set)
}

fn answer(
    dev: &cluster::registry::Device,
    channel_id: &ChannelId,
    range: RecordRange,
    offset: i32,
    offset_source: &str,
    set: RecordSet,
) -> serde_json::Value {
    let r: Records = set.finish(offset);
    let items: Vec<serde_json::Value> = r
        .items
        .iter()
        .map(|i| {
            json!({
                "channel_id": i.channel_id,
                "name": i.name,
                "start": stamp::format_utc(i.start),
                "end": stamp::format_utc(i.end),
                "start_unix": i.start,
                "end_unix": i.end,
                "device_start": i.device_start,
                "device_end": i.device_end,
                "type": i.record_type,
                "file_path": i.file_path,
                "address": i.address,
                "secrecy": i.secrecy,
                "recorder_id": i.recorder_id,
                "file_size": i.file_size,
            })
        })
        .collect();
    json!({
        "device_id": dev.id,
        "channel_id": channel_id,
        "start": stamp::format_utc(range.start),
        "end": stamp::format_utc(range.end),
        "type": range.record_type,
        "utc_offset_minutes": offset,
        "offset_source": offset_source,
        "sum_num": r.sum_num,
        "received": r.received,
        "messages": r.messages,
        "total": items.len(),
        "unreadable": r.unreadable,
        "complete": r.complete,
        "truncated": r.truncated,
        "items": items,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(start: &str, end: &str, t: Option<&str>) -> RecordsParams {
        RecordsParams { start: Some(start.into()), end: Some(end.into()), record_type: t.map(str::to_owned) }
    }

    #[test]
    fn times_are_read_as_instants_or_device_local() {
        // Unix seconds, a zoned time and a zoneless (device-local, here UTC+8) time agree.
        let r = RecordRange::from_params(&params("1796090400", "2026-12-01T03:00:00Z", Some("Alarm")), 480).unwrap();
        assert_eq!(r, RecordRange { start: 1_796_090_400, end: 1_796_094_000, record_type: RecordType::Alarm });
        let r = RecordRange::from_params(&params("2026-12-01T10:00:00", "2026-12-01T11:00:00", None), 480).unwrap();
        assert_eq!((r.start, r.end, r.record_type), (1_796_090_400, 1_796_094_000, RecordType::All));
    }

    #[test]
    fn bad_queries_name_what_is_wrong() {
        let msg = |p: RecordsParams| match RecordRange::from_params(&p, 0) {
            Err(PlayError::BadRequest(m)) => m,
            other => panic!("{other:?}"),
        };
        assert_eq!(msg(RecordsParams::default()), "start is required");
        assert!(msg(params("yesterday", "1", None)).starts_with("start \"yesterday\" is not a time"));
        assert_eq!(msg(params("100", "100", None)), "end must be after start (1970-01-01T00:01:40Z is not after 1970-01-01T00:01:40Z)");
        assert_eq!(msg(params("0", "2678401", None)), "a query spans at most 31 days, not 2678401 s");
        assert_eq!(msg(params("0", "10", Some("motion"))), "type must be all, time, alarm or manual, not \"motion\"");
    }
}
