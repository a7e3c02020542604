//! The web tier's HTTP API (`docs/openapi.yaml`). Errors are `{"code":…, "message":…}`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use cluster::store::DeviceFilter;
use cluster::wire::StreamId;
use gb::ids::{ChannelId, DeviceId};
use serde::Deserialize;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::config::ApiConfig;
use crate::error::SipError;
use crate::events::Feed;
use crate::metrics;
use crate::play::{PlayError, PlayTransport};
use crate::server::{node_channel, NodeCommand, Shared};

pub use kit::http::ApiError;

impl From<SipError> for ApiError {
    fn from(e: SipError) -> Self {
        let status = match &e {
            SipError::NotRegistered(_) => StatusCode::CONFLICT,
            SipError::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            SipError::Refused { .. } => StatusCode::BAD_GATEWAY,
            SipError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.to_string())
    }
}

type ApiResult<T> = Result<T, ApiError>;

fn device_id(raw: &str) -> ApiResult<DeviceId> {
    raw.parse().map_err(|e: gb::ids::IdError| ApiError::new(StatusCode::BAD_REQUEST, e.to_string()))
}

#[derive(Deserialize)]
struct ListQuery {
    offset: Option<usize>,
    limit: Option<usize>,
    online: Option<bool>,
    /// Ids starting with this (digits only).
    q: Option<String>,
}

async fn list_devices(
    State(s): State<Arc<Shared>>,
    q: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<impl IntoResponse> {
    let q = kit::http::query(q)?;
    let offset = q.offset.unwrap_or(0);
    let limit = q.limit.unwrap_or(100).min(1000);
    let id_prefix = q.q.map(|p| p.trim().to_owned()).filter(|p| !p.is_empty());
    if id_prefix.as_deref().is_some_and(|p| p.len() > 20 || !p.bytes().all(|b| b.is_ascii_digit())) {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "q: a device id or its first digits"));
    }
    let (items, total) = s.store.list_devices(DeviceFilter { online: q.online, id_prefix }, offset, limit).await?;
    Ok(Json(json!({"total": total, "offset": offset, "limit": limit, "items": items})))
}

async fn get_device(State(s): State<Arc<Shared>>, Path(id): Path<String>) -> ApiResult<impl IntoResponse> {
    let id = device_id(&id)?;
    let dev = s.store.get_device(&id).await?.ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("device {id} not found")))?;
    Ok(Json(dev))
}

async fn list_channels(State(s): State<Arc<Shared>>, Path(id): Path<String>) -> ApiResult<impl IntoResponse> {
    let id = device_id(&id)?;
    if s.store.get_device(&id).await?.is_none() {
        return Err(ApiError::new(StatusCode::NOT_FOUND, format!("device {id} not found")));
    }
    let items = s.store.list_channels(&id).await?;
    Ok(Json(json!({"total": items.len(), "items": items})))
}

/// `POST /devices/{id}/{catalog|info|status}`: ask the device again; the answer updates the Store.
async fn requery(State(s): State<Arc<Shared>>, Path((id, what)): Path<(String, String)>) -> ApiResult<impl IntoResponse> {
    let id = device_id(&id)?;
    let cmd = match what.as_str() {
        "catalog" => "Catalog",
        "info" => "DeviceInfo",
        "status" => "DeviceStatus",
        _ => return Err(ApiError::new(StatusCode::NOT_FOUND, "no such endpoint")),
    };
    if s.store.get_device(&id).await?.is_none() {
        return Err(ApiError::new(StatusCode::NOT_FOUND, format!("device {id} not found")));
    }
    let sn = crate::outbound::request_query(&s, &id, cmd).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({"device_id": id, "cmd": cmd, "sn": sn}))))
}

async fn delete_device(State(s): State<Arc<Shared>>, Path(id): Path<String>) -> ApiResult<impl IntoResponse> {
    let id = device_id(&id)?;
    let dev = s.store.get_device(&id).await?;
    // Its subscriptions end with it (Expires 0 in each dialog, bounded: a silent device does
    // not hold the delete up; rows left are dropped by the refresher).
    if let Some(d) = dev.as_ref().filter(|d| d.online && d.node == s.me.node) {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), crate::subscriptions::end_all(&s, d)).await;
    }
    if !s.store.delete_device(&id).await? {
        return Err(ApiError::new(StatusCode::NOT_FOUND, format!("device {id} not found")));
    }
    s.links.forget(&id);
    let _ = s.store.table_take(crate::play::manager::PREFS, id.as_str()).await;
    if let Some(d) = dev.filter(|d| d.node != s.me.node) {
        if let Ok(json) = serde_json::to_string(&NodeCommand::Forget { device_id: id.clone() }) {
            let _ = s.store.publish(&node_channel(&d.node), &json).await;
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct PasswordBody {
    password: Option<String>,
}

async fn set_password(
    State(s): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Result<Json<PasswordBody>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<impl IntoResponse> {
    let id = device_id(&id)?;
    let body = kit::http::json_body(body)?;
    if body.password.as_deref().is_some_and(|p| p.is_empty() || p.len() > 128) {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "password must be 1-128 characters"));
    }
    s.store.set_device_password(&id, body.password.as_deref()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct PlayBody {
    transport: Option<String>,
}

#[derive(Deserialize, Default)]
struct PlayQuery {
    transport: Option<String>,
}

/// `POST /devices/{dev}/channels/{ch}/play`: the body (or `?transport=`) may name the transport.
async fn play(
    State(s): State<Arc<Shared>>,
    Path((dev, ch)): Path<(String, String)>,
    q: Result<Query<PlayQuery>, axum::extract::rejection::QueryRejection>,
    body: axum::body::Bytes,
) -> ApiResult<impl IntoResponse> {
    let id = device_id(&dev)?;
    let q = kit::http::query(q)?;
    let body: PlayBody = if body.iter().all(u8::is_ascii_whitespace) {
        PlayBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("body: {e}")))?
    };
    let transport = match body.transport.or(q.transport) {
        None => None,
        Some(t) => Some(PlayTransport::parse(&t).ok_or_else(|| {
            ApiError::new(StatusCode::BAD_REQUEST, format!("transport must be udp, tcp-passive or tcp-active, not {t:?}"))
        })?),
    };
    let ch: ChannelId =
        ch.parse().map_err(|_| ApiError::from(PlayError::BadRequest(format!("channel id {ch:?} is not a 20-digit GB id"))))?;
    let target = crate::play::manager::check_target(&s, &id, &ch).await?;
    // This node holds the device's connection: play here, on the device just checked.
    if target.node == s.me.node {
        let answer = crate::play::manager::play(&s, target, &ch, transport).await?;
        return Ok(Json(serde_json::to_value(answer).map_err(|e| PlayError::Internal(e.to_string()))?));
    }
    let call = crate::rpc::Call::Play { device_id: id, channel_id: ch, transport };
    let answer = crate::rpc::call(&s, &target.node, call).await?;
    Ok(Json(answer))
}

/// `GET /devices/{dev}/channels/{ch}/snapshot`: a picture of the channel now (`pictures::take`).
async fn snapshot(State(s): State<Arc<Shared>>, Path((dev, ch)): Path<(String, String)>) -> ApiResult<Response> {
    let (id, ch) = (device_id(&dev)?, channel_id(&ch)?);
    let (stream, jpeg) = crate::pictures::take(&s, &id, &ch).await?;
    jpeg_response(jpeg, Some(stream.as_str()))
}

fn channel_id(ch: &str) -> ApiResult<ChannelId> {
    ch.parse().map_err(|_| ApiError::from(PlayError::BadRequest(format!("channel id {ch:?} is not a 20-digit GB id"))))
}

fn jpeg_response(jpeg: Vec<u8>, stream: Option<&str>) -> ApiResult<Response> {
    let mut b = Response::builder().header(header::CONTENT_TYPE, "image/jpeg").header(header::CACHE_CONTROL, "no-cache");
    if let Some(s) = stream {
        b = b.header("X-Stream-Id", s);
    }
    b.body(axum::body::Body::from(jpeg)).map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

/// `POST /devices/{dev}/channels/{ch}/snapshots`: a picture of the channel now, saved to the
/// gallery.
async fn save_snapshot(State(s): State<Arc<Shared>>, Path((dev, ch)): Path<(String, String)>) -> ApiResult<impl IntoResponse> {
    let (id, ch) = (device_id(&dev)?, channel_id(&ch)?);
    let saved = crate::pictures::take_and_save(&s, &id, &ch).await?;
    Ok((StatusCode::CREATED, Json(crate::pictures::view(&saved))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GalleryQuery {
    device: Option<String>,
    channel: Option<String>,
    /// Unix seconds, RFC 3339.
    from: Option<String>,
    to: Option<String>,
    offset: Option<usize>,
    limit: Option<usize>,
}

impl GalleryQuery {
    fn filter(&self) -> ApiResult<crate::gallery::Filter> {
        let at = |v: &Option<String>, name: &str| -> ApiResult<Option<u64>> {
            v.as_deref()
                .map(|t| {
                    let secs = t.parse::<u64>().ok().or_else(|| kit::clock::stamp::parse(t).map(|w| w.unix_secs(0).max(0) as u64));
                    secs.map(|s| s * 1000).ok_or_else(|| {
                        ApiError::new(StatusCode::BAD_REQUEST, format!("{name} must be Unix seconds or RFC 3339, not {t:?}"))
                    })
                })
                .transpose()
        };
        let (stream_prefix, exact) = match (&self.device, &self.channel) {
            (Some(d), Some(c)) => (StreamId::of_channel(&device_id(d)?, &channel_id(c)?).to_string(), true),
            (Some(d), None) => (format!("{}_", device_id(d)?), false),
            (None, Some(_)) => return Err(ApiError::new(StatusCode::BAD_REQUEST, "channel needs its device")),
            (None, None) => (String::new(), false),
        };
        Ok(crate::gallery::Filter { stream_prefix, exact, from_ms: at(&self.from, "from")?, to_ms: at(&self.to, "to")? })
    }
}

/// `GET /snapshots`: saved pictures, newest first, by device, channel and time, paged.
async fn list_snapshots(
    State(s): State<Arc<Shared>>,
    q: Result<Query<GalleryQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<impl IntoResponse> {
    let q = kit::http::query(q)?;
    let f = q.filter()?;
    let dir = std::path::PathBuf::from(&s.cfg.snapshots.dir);
    let all = tokio::task::spawn_blocking(move || crate::gallery::all(&dir, &f))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let (offset, limit) = (q.offset.unwrap_or(0), q.limit.unwrap_or(50).clamp(1, 500));
    let items: Vec<serde_json::Value> = all.iter().skip(offset).take(limit).map(crate::pictures::view).collect();
    Ok(Json(json!({"total": all.len(), "offset": offset, "items": items})))
}

/// `DELETE /snapshots?device&channel&from&to`: the pictures in a range (a device or channel
/// at least).
async fn delete_snapshots(
    State(s): State<Arc<Shared>>,
    q: Result<Query<GalleryQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<impl IntoResponse> {
    let q = kit::http::query(q)?;
    if q.device.is_none() {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "say whose pictures: device (and channel, from, to)"));
    }
    let f = q.filter()?;
    let dir = std::path::PathBuf::from(&s.cfg.snapshots.dir);
    let deleted =
        tokio::task::spawn_blocking(move || crate::gallery::all(&dir, &f).iter().filter(|p| crate::gallery::delete(&dir, &p.id)).count())
            .await
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(Json(json!({"deleted": deleted})))
}

/// `GET /snapshots/{*id}`: one saved picture.
async fn get_snapshot(State(s): State<Arc<Shared>>, Path(id): Path<String>) -> ApiResult<Response> {
    let not_found = || ApiError::new(StatusCode::NOT_FOUND, format!("no picture {id}"));
    let path = crate::gallery::file_of(std::path::Path::new(&s.cfg.snapshots.dir), &id).ok_or_else(not_found)?;
    let jpeg = tokio::fs::read(path).await.map_err(|_| not_found())?;
    jpeg_response(jpeg, None)
}

/// `DELETE /snapshots/{*id}`: one saved picture.
async fn delete_snapshot(State(s): State<Arc<Shared>>, Path(id): Path<String>) -> ApiResult<impl IntoResponse> {
    if crate::gallery::delete(std::path::Path::new(&s.cfg.snapshots.dir), &id) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(StatusCode::NOT_FOUND, format!("no picture {id}")))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScheduleBody {
    /// Seconds between pictures; null or 0 ends the schedule.
    every_secs: Option<u64>,
}

/// `PUT /devices/{dev}/channels/{ch}/snapshot-schedule`: save a picture of the channel every N s.
async fn set_schedule(
    State(s): State<Arc<Shared>>,
    Path((dev, ch)): Path<(String, String)>,
    body: Result<Json<ScheduleBody>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<impl IntoResponse> {
    let (id, ch) = (device_id(&dev)?, channel_id(&ch)?);
    let b = kit::http::json_body(body)?;
    Ok(Json(crate::pictures::set_schedule(&s, &id, &ch, b.every_secs.unwrap_or(0)).await?))
}

async fn get_schedule(State(s): State<Arc<Shared>>, Path((dev, ch)): Path<(String, String)>) -> ApiResult<impl IntoResponse> {
    let (id, ch) = (device_id(&dev)?, channel_id(&ch)?);
    Ok(Json(crate::pictures::schedule_of(&s, &id, &ch).await?))
}

/// `POST /devices/{dev}/channels/{ch}/playback` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlaybackBody {
    start: String,
    end: String,
    transport: Option<String>,
}

/// A recordings request's target: the device, the channel (one of its catalog's, online) and
/// the span, read like a RecordInfo query's (Unix seconds, RFC 3339, or device-local).
async fn span_target(
    s: &Shared,
    dev: &str,
    ch: &str,
    (start, end): (String, String),
) -> ApiResult<(DeviceId, ChannelId, cluster::registry::Device, crate::records::RecordRange)> {
    let id = device_id(dev)?;
    let ch: ChannelId =
        ch.parse().map_err(|_| ApiError::from(PlayError::BadRequest(format!("channel id {ch:?} is not a 20-digit GB id"))))?;
    let target = crate::play::manager::check_target(s, &id, &ch).await?;
    let params = crate::records::RecordsParams { start: Some(start), end: Some(end), record_type: None };
    let range = crate::records::RecordRange::from_params(&params, crate::records::device_offset(s, &target).0)?;
    Ok((id, ch, target, range))
}

/// `POST /devices/{dev}/channels/{ch}/playback`: plays a channel's recordings over a span.
async fn playback(
    State(s): State<Arc<Shared>>,
    Path((dev, ch)): Path<(String, String)>,
    body: Result<Json<PlaybackBody>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<impl IntoResponse> {
    let b = kit::http::json_body(body)?;
    let transport = parse_transport(b.transport.as_deref())?;
    let (id, ch, target, range) = span_target(&s, &dev, &ch, (b.start, b.end)).await?;
    if target.node == s.me.node {
        let answer = crate::play::playback::start(&s, target, &ch, (range.start, range.end), transport).await?;
        return Ok(Json(serde_json::to_value(answer).map_err(|e| PlayError::Internal(e.to_string()))?));
    }
    let call = crate::rpc::Call::Playback { device_id: id, channel_id: ch, start: range.start, end: range.end, transport };
    Ok(Json(crate::rpc::call(&s, &target.node, call).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DownloadBody {
    start: String,
    end: String,
    /// `a=downloadspeed` (1-8; default 4).
    speed: Option<u32>,
    transport: Option<String>,
}

/// `POST /devices/{dev}/channels/{ch}/download`: fetches a span of a channel's recordings at
/// `speed`× into an MP4 on a media node.
async fn download(
    State(s): State<Arc<Shared>>,
    Path((dev, ch)): Path<(String, String)>,
    body: Result<Json<DownloadBody>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<impl IntoResponse> {
    let b = kit::http::json_body(body)?;
    let transport = parse_transport(b.transport.as_deref())?;
    let speed = b.speed.unwrap_or(4);
    crate::play::download::check(&crate::play::download::DownloadRequest { span: (0, 0), speed, transport })?;
    let (id, ch, target, range) = span_target(&s, &dev, &ch, (b.start, b.end)).await?;
    let (start, end) = (range.start, range.end);
    let answer = if target.node == s.me.node {
        crate::play::download::start(&s, target, &ch, crate::play::download::DownloadRequest { span: (start, end), speed, transport })
            .await?
    } else {
        let call = crate::rpc::Call::Download { device_id: id, channel_id: ch, start, end, speed, transport };
        crate::rpc::call(&s, &target.node, call).await?
    };
    Ok((StatusCode::CREATED, Json(answer)))
}

async fn list_downloads(State(s): State<Arc<Shared>>) -> ApiResult<impl IntoResponse> {
    let rows = crate::play::download::list(&s).await?;
    let items = futures::future::join_all(rows.iter().map(|r| crate::play::download::view(&s, r))).await;
    let items: Vec<serde_json::Value> = items.into_iter().collect::<Result<_, _>>()?;
    Ok(Json(json!({"total": items.len(), "items": items})))
}

async fn get_download(State(s): State<Arc<Shared>>, Path(id): Path<String>) -> ApiResult<impl IntoResponse> {
    let row = crate::play::download::get(&s, &StreamId::from(id.as_str())).await?;
    Ok(Json(crate::play::download::view(&s, &row).await?))
}

async fn cancel_download(State(s): State<Arc<Shared>>, Path(id): Path<String>) -> ApiResult<impl IntoResponse> {
    crate::play::download::cancel(&s, &StreamId::from(id.as_str())).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A transport named in a request body, or a 400.
fn parse_transport(t: Option<&str>) -> ApiResult<Option<PlayTransport>> {
    t.map(|t| {
        PlayTransport::parse(t)
            .ok_or_else(|| ApiError::new(StatusCode::BAD_REQUEST, format!("transport must be udp, tcp-passive or tcp-active, not {t:?}")))
    })
    .transpose()
}

/// `POST /streams/{id}/playback`: pause, resume, speed or seek (`play::playback::PlaybackControl`),
/// carried out by the node holding the dialog.
async fn playback_control(
    State(s): State<Arc<Shared>>,
    Path(stream): Path<String>,
    body: Result<Json<crate::play::playback::PlaybackControl>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<impl IntoResponse> {
    let control = kit::http::json_body(body)?;
    let id = StreamId::from(stream.as_str());
    let sess = crate::play::session::get(s.store.as_ref(), &id).await?.ok_or_else(|| ApiError::from(PlayError::NoSession(stream)))?.row;
    let call = crate::rpc::Call::PlaybackControl { stream_id: id, control };
    Ok(Json(crate::rpc::call(&s, &sess.sip_node, call).await?))
}

/// `GET /streams/{id}/playback`: where a playback is (position, speed, paused).
async fn playback_position(State(s): State<Arc<Shared>>, Path(stream): Path<String>) -> ApiResult<impl IntoResponse> {
    let sess = crate::play::session::get(s.store.as_ref(), &StreamId::from(stream.as_str()))
        .await?
        .ok_or_else(|| ApiError::from(PlayError::NoSession(stream)))?
        .row;
    Ok(Json(crate::play::playback::position(&s, &sess).await?))
}

#[derive(Deserialize, Default)]
struct StopQuery {
    /// Stop outright instead of releasing one holder.
    all: Option<bool>,
}

async fn stop_stream(s: &Arc<Shared>, stream_id: &StreamId, all: bool) -> ApiResult<Json<serde_json::Value>> {
    let sess = crate::play::session::get(s.store.as_ref(), stream_id)
        .await?
        .ok_or_else(|| ApiError::from(PlayError::NoSession(stream_id.to_string())))?
        .row;
    let call = crate::rpc::Call::Stop { stream_id: stream_id.clone(), all };
    Ok(Json(crate::rpc::call(s, &sess.sip_node, call).await?))
}

async fn stop_channel(
    State(s): State<Arc<Shared>>,
    Path((dev, ch)): Path<(String, String)>,
    q: Result<Query<StopQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<impl IntoResponse> {
    let id = device_id(&dev)?;
    let q = kit::http::query(q)?;
    // No channel of that id, so no session of it either.
    let ch: ChannelId = ch.parse().map_err(|_| ApiError::from(PlayError::NoSession(format!("{id}_{ch}"))))?;
    stop_stream(&s, &StreamId::of_channel(&id, &ch), q.all.unwrap_or(false)).await
}

async fn delete_stream(
    State(s): State<Arc<Shared>>,
    Path(stream): Path<String>,
    q: Result<Query<StopQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<impl IntoResponse> {
    let q = kit::http::query(q)?;
    stop_stream(&s, &StreamId::from(stream.as_str()), q.all.unwrap_or(false)).await
}

async fn list_streams(State(s): State<Arc<Shared>>) -> ApiResult<impl IntoResponse> {
    let items = crate::play::session::list(s.store.as_ref()).await?;
    Ok(Json(json!({"total": items.len(), "items": items})))
}

async fn get_stream(State(s): State<Arc<Shared>>, Path(stream): Path<String>) -> ApiResult<impl IntoResponse> {
    let sess = crate::play::session::get(s.store.as_ref(), &StreamId::from(stream.as_str()))
        .await?
        .ok_or_else(|| ApiError::from(PlayError::NoSession(stream)))?;
    Ok(Json(sess.row))
}

/// `POST /devices/{dev}/channels/{ch}/ptz`: a PTZ command (`control::PtzRequest`).
async fn ptz(
    State(s): State<Arc<Shared>>,
    Path((dev, ch)): Path<(String, String)>,
    body: Result<Json<crate::control::PtzRequest>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<impl IntoResponse> {
    let id = device_id(&dev)?;
    let ch: ChannelId =
        ch.parse().map_err(|_| ApiError::from(PlayError::BadRequest(format!("channel id {ch:?} is not a 20-digit GB id"))))?;
    let req = kit::http::json_body(body)?;
    let cmd = crate::control::ptz_command(&req)?;
    let bytes = cmd.encode(gb::ptz::DEFAULT_ADDRESS).map_err(|e| ApiError::from(PlayError::BadRequest(e.to_string())))?;
    Ok(Json(crate::control::ptz(&s, &id, &ch, bytes).await?))
}

/// `POST /devices/{dev}/channels/{ch}/control`: a DeviceControl command other than PTZ.
async fn control(
    State(s): State<Arc<Shared>>,
    Path((dev, ch)): Path<(String, String)>,
    body: Result<Json<crate::control::DeviceCommand>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<impl IntoResponse> {
    let id = device_id(&dev)?;
    let ch: ChannelId =
        ch.parse().map_err(|_| ApiError::from(PlayError::BadRequest(format!("channel id {ch:?} is not a 20-digit GB id"))))?;
    let command = kit::http::json_body(body)?;
    command.check()?;
    Ok(Json(crate::control::command(&s, &id, &ch, command).await?))
}

/// `GET /devices/{dev}/subscriptions`: the device's event subscriptions as stored.
async fn subscriptions(State(s): State<Arc<Shared>>, Path(dev): Path<String>) -> ApiResult<impl IntoResponse> {
    let id = device_id(&dev)?;
    let rows =
        crate::subscriptions::of_device(&s, &id).await.map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let items: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            json!({
                "kind": r.kind, "state": r.state, "node": r.node, "established": r.dialog.is_some(),
                "expires": kit::clock::stamp::format_utc((r.expires_at_ms / 1000) as i64),
                "next_action": kit::clock::stamp::format_utc((r.due_ms / 1000) as i64),
                "refreshes": r.refreshes, "failures": r.failures,
            })
        })
        .collect();
    Ok(Json(json!({"device_id": id, "total": items.len(), "items": items})))
}

/// `PUT /devices/{dev}/config`: `DeviceConfig` (BasicParam: name, expiration, heartbeat).
async fn set_config(
    State(s): State<Arc<Shared>>,
    Path(dev): Path<String>,
    body: Result<Json<gb::model::BasicParam>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<impl IntoResponse> {
    let id = device_id(&dev)?;
    let set = kit::http::json_body(body)?;
    Ok(Json(crate::control::configure(&s, &id, set).await?))
}

/// `GET /devices/{dev}/config`: the device's basic parameters (`ConfigDownload`).
async fn get_config(State(s): State<Arc<Shared>>, Path(dev): Path<String>) -> ApiResult<impl IntoResponse> {
    let id = device_id(&dev)?;
    Ok(Json(crate::control::download_config(&s, &id).await?))
}

/// `GET /devices/{dev}/channels/{ch}/presets`: the channel's presets (`PresetQuery`).
async fn presets(State(s): State<Arc<Shared>>, Path((dev, ch)): Path<(String, String)>) -> ApiResult<impl IntoResponse> {
    let id = device_id(&dev)?;
    let ch: ChannelId =
        ch.parse().map_err(|_| ApiError::from(PlayError::BadRequest(format!("channel id {ch:?} is not a 20-digit GB id"))))?;
    Ok(Json(crate::control::presets(&s, &id, &ch).await?))
}

/// `GET /devices/{dev}/channels/{ch}/records?start=…&end=…&type=…`: the channel's recordings
/// (`RecordInfo`).
async fn records(
    State(s): State<Arc<Shared>>,
    Path((dev, ch)): Path<(String, String)>,
    params: Result<Query<crate::records::RecordsParams>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<impl IntoResponse> {
    let id = device_id(&dev)?;
    let ch: ChannelId =
        ch.parse().map_err(|_| ApiError::from(PlayError::BadRequest(format!("channel id {ch:?} is not a 20-digit GB id"))))?;
    let Query(params) = params.map_err(|e| ApiError::from(PlayError::BadRequest(e.body_text())))?;
    Ok(Json(crate::records::records(&s, &id, &ch, &params).await?))
}

/// `?offset=&limit=` of a log read newest first.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LogPage {
    device: Option<String>,
    #[serde(default)]
    offset: usize,
    limit: Option<usize>,
}

fn log_page(q: Result<Query<LogPage>, axum::extract::rejection::QueryRejection>) -> Result<LogPage, ApiError> {
    q.map(|Query(p)| p).map_err(|e| ApiError::from(PlayError::BadRequest(e.body_text())))
}

/// `GET /alarms?device=&offset=&limit=`: alarms newest first, of all devices or one.
async fn all_alarms(
    State(s): State<Arc<Shared>>,
    q: Result<Query<LogPage>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<impl IntoResponse> {
    let p = log_page(q)?;
    let device = p.device.as_deref().map(device_id).transpose()?;
    Ok(Json(crate::notices::alarms(&s, device.as_ref(), p.offset, p.limit.unwrap_or(50)).await?))
}

/// `GET /devices/{id}/alarms?offset=&limit=`: the device's alarms, newest first.
async fn device_alarms(
    State(s): State<Arc<Shared>>,
    Path(dev): Path<String>,
    q: Result<Query<LogPage>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<impl IntoResponse> {
    let id = device_id(&dev)?;
    let p = log_page(q)?;
    Ok(Json(crate::notices::alarms(&s, Some(&id), p.offset, p.limit.unwrap_or(50)).await?))
}

/// `GET /devices/{id}/positions`: the latest position of each of the device's sources.
async fn positions(State(s): State<Arc<Shared>>, Path(dev): Path<String>) -> ApiResult<impl IntoResponse> {
    let id = device_id(&dev)?;
    Ok(Json(crate::notices::positions(&s, &id).await?))
}

/// `GET /devices/{id}/positions/{source}/track?offset=&limit=`: a source's track, newest first.
async fn track(
    State(s): State<Arc<Shared>>,
    Path((dev, source)): Path<(String, String)>,
    q: Result<Query<LogPage>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<impl IntoResponse> {
    let id = device_id(&dev)?;
    let p = log_page(q)?;
    if source.len() != 20 || !source.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PlayError::BadRequest(format!("source id {source:?} is not a 20-digit GB id")).into());
    }
    Ok(Json(crate::notices::track_of(&s, &id, &source, p.offset, p.limit.unwrap_or(100)).await?))
}

/// `GET /streams/{id}/stats`: the media node's figures for the stream (the console's overlay).
async fn stream_stats(State(s): State<Arc<Shared>>, Path(stream): Path<String>) -> ApiResult<impl IntoResponse> {
    let sess = crate::play::session::get(s.store.as_ref(), &StreamId::from(stream.as_str()))
        .await?
        .ok_or_else(|| ApiError::from(PlayError::NoSession(stream.clone())))?
        .row;
    if sess.media_api.is_empty() {
        return Err(PlayError::NoSession(stream).into());
    }
    let api = crate::play::media_nodes::MediaApi { cfg: &s.cfg.play, node: &sess.media_node, api_url: &sess.media_api };
    Ok(Json(api.stream_stats(sess.stream_id.as_str()).await?))
}

/// `POST /sources`: a camera pulled over MJPEG-over-HTTP or RTSP as a stream.
async fn add_source(
    State(s): State<Arc<Shared>>,
    body: Result<Json<crate::sources::NewSource>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<impl IntoResponse> {
    let new = kit::http::json_body(body)?;
    Ok((StatusCode::CREATED, Json(crate::sources::add(&s, new).await?)))
}

async fn list_sources(State(s): State<Arc<Shared>>) -> ApiResult<impl IntoResponse> {
    let items = crate::sources::list(&s).await?;
    Ok(Json(json!({"items": items, "total": items.len()})))
}

async fn get_source(State(s): State<Arc<Shared>>, Path(id): Path<String>) -> ApiResult<impl IntoResponse> {
    Ok(Json(crate::sources::get(&s, &id).await?))
}

async fn delete_source(State(s): State<Arc<Shared>>, Path(id): Path<String>) -> ApiResult<impl IntoResponse> {
    Ok(Json(crate::sources::remove(&s, &id).await?))
}

/// `POST /sources/{id}/play`: where to watch a source, started first if it is not running.
async fn play_source(State(s): State<Arc<Shared>>, Path(id): Path<String>) -> ApiResult<impl IntoResponse> {
    Ok(Json(crate::sources::play(&s, &id).await?))
}

/// `GET /auth` (open): whether the console must ask for a token.
async fn auth_info(State(s): State<Arc<Shared>>) -> impl IntoResponse {
    Json(json!({"token_required": !s.cfg.api.token.is_empty(), "node": s.me.node}))
}

/// `GET /session`: answers 200 only to a right token (the console's sign-in check).
async fn session(State(s): State<Arc<Shared>>) -> impl IntoResponse {
    Json(json!({"node": s.me.node, "server_id": s.me.server_id.to_string(), "domain": s.me.domain}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TransportPref {
    /// `udp`, `tcp-passive`, `tcp-active`, or null to fall back to `play.default_transport`.
    transport: Option<String>,
}

/// `PUT /devices/{id}/play-transport`: the media transport plays of this device use when they
/// name none (a camera behind a NAT that eats UDP, say).
async fn set_play_transport(
    State(s): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Result<Json<TransportPref>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<impl IntoResponse> {
    let id = device_id(&id)?;
    let body = kit::http::json_body(body)?;
    if s.store.get_device(&id).await?.is_none() {
        return Err(ApiError::new(StatusCode::NOT_FOUND, format!("device {id} not found")));
    }
    let prefs = crate::play::manager::PREFS;
    match body.transport {
        None => {
            s.store.table_take(prefs, id.as_str()).await?;
        }
        Some(t) => {
            let t = PlayTransport::parse(&t).ok_or_else(|| {
                ApiError::new(StatusCode::BAD_REQUEST, format!("transport must be udp, tcp-passive or tcp-active, not {t:?}"))
            })?;
            s.store.table_put(prefs, id.as_str(), &json!({"transport": t}).to_string()).await?;
        }
    }
    let t = crate::play::manager::device_transport(&s, &id).await?;
    Ok(Json(json!({"device_id": id, "transport": t})))
}

async fn get_play_transport(State(s): State<Arc<Shared>>, Path(id): Path<String>) -> ApiResult<impl IntoResponse> {
    let id = device_id(&id)?;
    let t = crate::play::manager::device_transport(&s, &id).await?;
    Ok(Json(json!({"device_id": id, "transport": t})))
}

async fn metrics_text(State(s): State<Arc<Shared>>) -> impl IntoResponse {
    if let Ok((_, total)) = s.store.list_devices(DeviceFilter::default(), 0, 0).await {
        metrics::DEVICES.set(total as i64);
    }
    if let Ok((_, online)) = s.store.list_devices(DeviceFilter::online(true), 0, 0).await {
        metrics::DEVICES_ONLINE.set(online as i64);
    }
    let (dialogs, _, _, locks, acks) = s.plays.held();
    metrics::DIALOGS.set(dialogs as i64);
    metrics::PLAY_LOCKS.set(locks as i64);
    metrics::ACKS.set(acks as i64);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], metrics::render())
}

pub fn router(shared: Arc<Shared>, feed: Arc<Feed>, token: &str) -> Router {
    let events = Router::new().route("/api/v1/events", get(|State(feed): State<Arc<Feed>>| async move { feed.respond() })).with_state(feed);
    let mut api = Router::new()
        .route("/api/v1/session", get(session))
        .route("/api/v1/devices", get(list_devices))
        .route("/api/v1/devices/{id}", get(get_device).delete(delete_device))
        .route("/api/v1/devices/{id}/channels", get(list_channels))
        .route("/api/v1/devices/{id}/{query}", post(requery))
        .route("/api/v1/devices/{id}/password", put(set_password))
        .route("/api/v1/devices/{id}/config", put(set_config).get(get_config))
        .route("/api/v1/devices/{id}/subscriptions", get(subscriptions))
        .route("/api/v1/devices/{id}/channels/{ch}/play", post(play).delete(stop_channel))
        .route("/api/v1/devices/{id}/channels/{ch}/ptz", post(ptz))
        .route("/api/v1/devices/{id}/channels/{ch}/presets", get(presets))
        .route("/api/v1/devices/{id}/channels/{ch}/snapshot", get(snapshot))
        .route("/api/v1/devices/{id}/channels/{ch}/snapshots", post(save_snapshot))
        .route("/api/v1/devices/{id}/channels/{ch}/snapshot-schedule", put(set_schedule).get(get_schedule))
        .route("/api/v1/snapshots", get(list_snapshots).delete(delete_snapshots))
        .route("/api/v1/snapshots/{*id}", get(get_snapshot).delete(delete_snapshot))
        .route("/api/v1/devices/{id}/channels/{ch}/control", post(control))
        .route("/api/v1/devices/{id}/channels/{ch}/records", get(records))
        .route("/api/v1/devices/{id}/channels/{ch}/playback", post(playback))
        .route("/api/v1/streams/{id}/playback", post(playback_control).get(playback_position))
        .route("/api/v1/devices/{id}/channels/{ch}/download", post(download))
        .route("/api/v1/downloads", get(list_downloads))
        .route("/api/v1/downloads/{id}", get(get_download).delete(cancel_download))
        .route("/api/v1/devices/{id}/alarms", get(device_alarms))
        .route("/api/v1/devices/{id}/positions", get(positions))
        .route("/api/v1/devices/{id}/positions/{source}/track", get(track))
        .route("/api/v1/alarms", get(all_alarms))
        .route(
            "/api/v1/positions",
            get(|State(s): State<Arc<Shared>>| async move { ApiResult::Ok(Json(crate::notices::all_positions(&s).await?)) }),
        )
        .route("/api/v1/devices/{id}/play-transport", put(set_play_transport).get(get_play_transport))
        .route("/api/v1/streams", get(list_streams))
        .route("/api/v1/streams/{id}", get(get_stream).delete(delete_stream))
        .route("/api/v1/streams/{id}/stats", get(stream_stats))
        .route("/api/v1/sources", get(list_sources).post(add_source))
        .route("/api/v1/sources/{id}", get(get_source).delete(delete_source))
        .route("/api/v1/sources/{id}/play", post(play_source))
        .route("/api/v1/cluster", get(crate::cluster_view::nodes))
        .route("/api/v1/cluster/streams", get(crate::cluster_view::streams))
        .with_state(shared.clone())
        .merge(events)
        .merge(crate::proxy::router(shared.clone()));
    if !token.is_empty() {
        api = api.layer(middleware::from_fn_with_state(Arc::new(token.to_owned()), kit::http::require_token));
    }
    Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/metrics", get(metrics_text))
        .route("/api/v1/auth", get(auth_info))
        .with_state(shared)
        .merge(api)
        .merge(crate::console::router())
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such endpoint") })
}

pub async fn serve(shared: Arc<Shared>, cfg: &ApiConfig, shutdown: CancellationToken) -> Result<SocketAddr, SipError> {
    let listener =
        tokio::net::TcpListener::bind(&cfg.listen).await.map_err(|source| SipError::Bind { addr: cfg.listen.clone(), source })?;
    let addr = listener.local_addr()?;
    let feed = Feed::start(shared.store.clone(), shutdown.clone());
    let app = router(shared, feed, &cfg.token);
    tokio::spawn(async move {
        let r = axum::serve(listener, app).with_graceful_shutdown(async move { shutdown.cancelled().await }).await;
        if let Err(e) = r {
            tracing::error!(error = %e, "api server stopped");
        }
    });
    Ok(addr)
}
