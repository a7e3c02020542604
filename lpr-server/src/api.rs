//! HTTP: the camera push endpoints (at the configured paths, any Content-Type, bodies up to
//! `max_body_bytes`) and the management API under `/api/v1/lpr` (`docs/openapi-lpr.yaml`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{middleware, Json, Router};
use kit::http::ApiError;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::commands::Command;
use crate::proto::{self, Reply, Sender, WhiteListEntry};
use crate::reply::{plate_reply, Outcome};
use crate::service::{Lpr, LprError};
use crate::whitelist::Group;

impl From<LprError> for ApiError {
    fn from(e: LprError) -> Self {
        use cluster::store::StoreError;
        match e {
            // A row that does not read is ours to fix; trying again will not help.
            LprError::Store(StoreError::CorruptRow { .. } | StoreError::Encode { .. }) => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
            }
            // The Store or the disk failing, or a row racing: the camera resends.
            _ => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        }
    }
}

fn bad(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, e.to_string())
}

type ApiResult<T> = Result<T, ApiError>;
type Peer = ConnectInfo<SocketAddr>;

fn refuse_unknown(lpr: &Lpr, serial: &str, path: &str, peer: &SocketAddr) -> ApiResult<()> {
    if serial.is_empty() {
        tracing::warn!(%peer, path, "push without a serialno refused");
        return Err(bad("serialno missing"));
    }
    if !lpr.allowed(serial) {
        tracing::warn!(%peer, serial, path, "push from a camera not on lpr.allow_serials refused");
        return Err(ApiError::new(StatusCode::FORBIDDEN, format!("camera {serial} is not allowed")));
    }
    Ok(())
}

fn json_or_400(body: &Bytes, path: &str, peer: &SocketAddr) -> ApiResult<Value> {
    proto::json_body(body).map_err(|e| {
        tracing::warn!(%peer, path, len = body.len(), error = %e, "malformed push body");
        bad(e)
    })
}

/// Sends a reply; a whitelist operation in it is recorded as delivered.
async fn answer(lpr: &Lpr, serial: &str, reply: Reply, sync: Option<(u8, Vec<WhiteListEntry>)>) -> ApiResult<Response> {
    if let Some((op, entries)) = sync {
        lpr.sync_sent(serial, op, &entries).await?;
    }
    Ok(Json(reply.to_json()).into_response())
}

async fn plate_result(State(lpr): State<Arc<Lpr>>, ConnectInfo(peer): Peer, body: Bytes) -> ApiResult<Response> {
    let v = json_or_400(&body, "plate", &peer)?;
    let pr = proto::plate_result(&v, lpr.cfg.max_body_bytes).map_err(|e| {
        tracing::warn!(%peer, error = %e, "unusable plate result");
        bad(e)
    })?;
    refuse_unknown(&lpr, &pr.sender.serialno, "plate", &peer)?;
    let cam = lpr.seen(&pr.sender, None, &peer.to_string()).await?;
    let group = lpr.group(&cam.group).await?;
    // Stored (images on disk, record and indexes) before any reply: acknowledged means stored.
    let stored = lpr.store_passage(&pr, &cam, &group).await?;
    let (passage, fresh, passage_json) = (&stored.passage, stored.fresh, &stored.json);
    #[cfg(feature = "fault-injection")]
    if lpr.cfg.fault_abort_after_store && fresh {
        tracing::error!(passage = %passage.id, "fault injection: aborting after the store, before the reply");
        std::process::abort();
    }
    crate::metrics::PASSAGES.inc();
    if !fresh {
        crate::metrics::DUPLICATES.inc();
    }
    let outcome = Outcome { plateid: pr.plateid, offline: pr.is_offline, fresh, opens: passage.gate_opened, gate_io: cam.gate_io };
    let mut reply = plate_reply(outcome, &group);
    if reply.open_gate.is_some() {
        crate::metrics::GATE_OPENS.inc();
    }
    if fresh {
        // The stored JSON as is: no second serialisation on the hot path.
        lpr.publish_raw(&format!("{{\"event\":\"passage\",\"passage\":{passage_json}}}")).await;
        if passage.verdict == crate::gate::Verdict::Blacklisted {
            crate::metrics::ALARMS.inc();
            tracing::warn!(serial = %cam.serialno, plate = ?passage.plate, "blacklisted plate");
            lpr.publish(json!({"event": "alarm", "kind": "blacklist", "serialno": cam.serialno, "plate": passage.plate, "passage_id": passage.id, "at_ms": passage.received_ms})).await;
        }
        crate::outbox::enqueue(&lpr, &passage.id).await;
    }
    let sync = lpr.fill_reply(&cam, &group, &mut reply, Some(stored.commands)).await?;
    answer(&lpr, &cam.serialno, reply, sync).await
}

async fn gio(State(lpr): State<Arc<Lpr>>, ConnectInfo(peer): Peer, body: Bytes) -> ApiResult<Response> {
    let v = json_or_400(&body, "gio", &peer)?;
    let g = proto::gio_in(&v).map_err(bad)?;
    refuse_unknown(&lpr, &g.sender.serialno, "gio", &peer)?;
    lpr.seen(&g.sender, None, &peer.to_string()).await?;
    lpr.record_event(&g.sender.serialno, "io", json!({"source": g.source, "value": g.value})).await?;
    Ok(Json(json!({})).into_response())
}

async fn serial(State(lpr): State<Arc<Lpr>>, ConnectInfo(peer): Peer, body: Bytes) -> ApiResult<Response> {
    let v = json_or_400(&body, "serial", &peer)?;
    let s = proto::serial_data(&v).map_err(bad)?;
    refuse_unknown(&lpr, &s.sender.serialno, "serial", &peer)?;
    lpr.seen(&s.sender, None, &peer.to_string()).await?;
    lpr.record_event(&s.sender.serialno, "serial", json!({"serial_channel": s.serial_channel, "data": s.data, "len": s.len})).await?;
    Ok(Json(json!({"Response_SerialData": {"serialData": []}})).into_response())
}

#[derive(Deserialize, Default)]
struct SnapQuery {
    req: Option<String>,
    serialno: Option<String>,
}

async fn snapshot_upload(
    State(lpr): State<Arc<Lpr>>,
    ConnectInfo(peer): Peer,
    Query(q): Query<SnapQuery>,
    body: Bytes,
) -> ApiResult<Response> {
    let v = json_or_400(&body, "snapshot", &peer)?;
    let s = proto::snapshot(&v, lpr.cfg.max_body_bytes).map_err(bad)?;
    let serial = q.serialno.or(s.serialno).unwrap_or_default();
    let id = lpr.store_snapshot(q.req.as_deref(), &serial, &s.image).await?;
    lpr.publish(json!({"event": "snapshot", "id": id, "serialno": serial, "bytes": s.image.len(), "at_ms": crate::service::now_ms()}))
        .await;
    Ok(Json(json!({})).into_response())
}

/// Heartbeat / registration, and the comet poll: answered at once when something waits for the
/// camera, else held (when the camera polls back to back) until a command arrives or
/// `comet_hold_secs` pass.
async fn heartbeat(State(lpr): State<Arc<Lpr>>, ConnectInfo(peer): Peer, headers: HeaderMap, body: Bytes) -> ApiResult<Response> {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let fields = match crate::multipart::boundary(ct) {
        Some(b) => crate::multipart::fields(&body, &b),
        None => match proto::json_body(&body) {
            Ok(Value::Object(m)) => {
                m.into_iter().map(|(k, v)| (k, v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string()))).collect()
            }
            _ => proto::urlencoded(&body),
        },
    };
    let hb = proto::heartbeat(&fields);
    refuse_unknown(&lpr, &hb.serialno, "heartbeat", &peer)?;
    let sender = Sender { serialno: hb.serialno.clone(), device_name: hb.device_name.clone(), ipaddr: hb.ipaddr.clone(), channel: None };
    let comet = lpr.is_comet(&hb.serialno);
    let mut cam = lpr.seen(&sender, Some(&hb), &peer.to_string()).await?;
    if comet && !cam.comet {
        cam = lpr.set_comet(&cam.serialno).await?;
    }
    crate::metrics::HEARTBEATS.inc();
    let waiter = lpr.waiter(&cam.serialno);
    let group = lpr.group_fresh(&cam.group).await?;
    if comet && !lpr.has_work(&cam, &group).await? {
        crate::metrics::COMET_HELD.add(1);
        let _ = tokio::time::timeout(Duration::from_secs(lpr.cfg.comet_hold_secs.clamp(1, 28)), waiter.notified()).await;
        crate::metrics::COMET_HELD.add(-1);
    }
    lpr.unwait(&cam.serialno, &waiter);
    // Whatever woke us may have changed the whitelist: read the group again.
    let group = lpr.group_fresh(&cam.group).await?;
    let cam = lpr.camera(&cam.serialno).await?.unwrap_or(cam);
    let mut reply = Reply::default();
    let sync = lpr.fill_reply(&cam, &group, &mut reply, None).await?;
    // Comet detection looks at heartbeat replies only: the next poll comes right after this.
    lpr.replied(&cam.serialno);
    answer(&lpr, &cam.serialno, reply, sync).await
}

// ---- management API -------------------------------------------------------------------------

#[derive(Deserialize)]
struct PassageQuery {
    from_ms: Option<u64>,
    to_ms: Option<u64>,
    plate: Option<String>,
    serialno: Option<String>,
    offset: Option<usize>,
    limit: Option<usize>,
}

async fn list_passages(
    State(lpr): State<Arc<Lpr>>,
    q: Result<Query<PassageQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<impl IntoResponse> {
    let q = kit::http::query(q)?;
    let (offset, limit) = (q.offset.unwrap_or(0), q.limit.unwrap_or(50).min(1000));
    let (items, total) = lpr
        .passages(q.from_ms.unwrap_or(0), q.to_ms.unwrap_or(u64::MAX >> 11), q.plate.as_deref(), q.serialno.as_deref(), offset, limit)
        .await?;
    Ok(Json(json!({"total": total, "offset": offset, "limit": limit, "items": items})))
}

async fn get_passage(State(lpr): State<Arc<Lpr>>, Path(id): Path<String>) -> ApiResult<impl IntoResponse> {
    lpr.passage(&id).await?.map(Json).ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no passage {id}")))
}

async fn passage_image(State(lpr): State<Arc<Lpr>>, Path((id, which)): Path<(String, String)>) -> ApiResult<Response> {
    let p = lpr.passage(&id).await?.ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no passage {id}")))?;
    let rel = match which.as_str() {
        "full" => p.image_full,
        "plate" => p.image_plate,
        _ => None,
    }
    .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("passage {id} has no {which} image")))?;
    let bytes = lpr.read_image(&rel).await.ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "image file missing"))?;
    Ok(([(header::CONTENT_TYPE, "image/jpeg")], Body::from(bytes)).into_response())
}

#[derive(Deserialize)]
struct EventQuery {
    serialno: Option<String>,
    /// `io` or `serial`.
    kind: Option<String>,
    from_ms: Option<u64>,
    to_ms: Option<u64>,
    offset: Option<usize>,
    limit: Option<usize>,
}

async fn list_events(
    State(lpr): State<Arc<Lpr>>,
    q: Result<Query<EventQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<impl IntoResponse> {
    let q = kit::http::query(q)?;
    let (offset, limit) = (q.offset.unwrap_or(0), q.limit.unwrap_or(50).min(1000));
    let (items, total) = lpr
        .events(q.serialno.as_deref(), q.kind.as_deref(), q.from_ms.unwrap_or(0), q.to_ms.unwrap_or(u64::MAX >> 11), offset, limit)
        .await?;
    Ok(Json(json!({"total": total, "offset": offset, "limit": limit, "items": items})))
}

async fn list_cameras(State(lpr): State<Arc<Lpr>>) -> ApiResult<impl IntoResponse> {
    let now = crate::service::now_ms();
    let mut items = Vec::new();
    for c in lpr.cameras().await? {
        let sync = lpr.sync_state(&c).await?;
        let online = now.saturating_sub(c.last_seen_ms) <= lpr.cfg.offline_after_secs * 1000;
        let mut v = serde_json::to_value(&c).unwrap_or_default();
        v["online"] = json!(online);
        v["whitelist_sync"] = serde_json::to_value(sync).unwrap_or_default();
        items.push(v);
    }
    Ok(Json(json!({"total": items.len(), "items": items})))
}

async fn get_camera(State(lpr): State<Arc<Lpr>>, Path(serial): Path<String>) -> ApiResult<impl IntoResponse> {
    let c = lpr.camera(&serial).await?.ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no camera {serial}")))?;
    let sync = lpr.sync_state(&c).await?;
    let mut v = serde_json::to_value(&c).unwrap_or_default();
    v["online"] = json!(crate::service::now_ms().saturating_sub(c.last_seen_ms) <= lpr.cfg.offline_after_secs * 1000);
    v["whitelist_sync"] = serde_json::to_value(sync).unwrap_or_default();
    Ok(Json(v))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CameraBody {
    group: Option<String>,
    gate_io: Option<u64>,
}

async fn put_camera(
    State(lpr): State<Arc<Lpr>>,
    Path(serial): Path<String>,
    body: Result<Json<CameraBody>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<impl IntoResponse> {
    let b = kit::http::json_body(body)?;
    if b.gate_io.is_some_and(|io| io > 3) {
        return Err(bad("gate_io is 0-3"));
    }
    Ok(Json(lpr.set_camera(&serial, b.group, b.gate_io).await?))
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum CommandBody {
    OpenGate { io: Option<u64> },
    Trigger,
    Snapshot,
    Serial { serial_channel: Option<u64>, data: String },
}

async fn post_command(
    State(lpr): State<Arc<Lpr>>,
    Path(serial): Path<String>,
    body: Result<Json<CommandBody>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<impl IntoResponse> {
    let b = kit::http::json_body(body)?;
    let id = Lpr::new_command_id();
    let cmd = match b {
        CommandBody::OpenGate { io } => Command::OpenGate { id: id.clone(), io },
        CommandBody::Trigger => Command::Trigger { id: id.clone() },
        CommandBody::Snapshot => Command::Snapshot { id: id.clone() },
        CommandBody::Serial { serial_channel, data } => {
            proto::decode_base64(&data, "data", 64 * 1024).map_err(bad)?;
            Command::Serial { id: id.clone(), serial_channel: serial_channel.unwrap_or(0), data }
        }
    };
    lpr.queue_command(&serial, &cmd).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({"id": id, "serialno": serial, "command": cmd}))))
}

async fn get_snapshot(State(lpr): State<Arc<Lpr>>, Path(id): Path<String>) -> ApiResult<Response> {
    let rec = lpr.snapshot(&id).await?.ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no snapshot request {id}")))?;
    Ok(Json(rec).into_response())
}

async fn get_snapshot_image(State(lpr): State<Arc<Lpr>>, Path(id): Path<String>) -> ApiResult<Response> {
    let rec = lpr.snapshot(&id).await?.ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no snapshot request {id}")))?;
    let rel = rec.image.ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "not uploaded yet"))?;
    let bytes = lpr.read_image(&rel).await.ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "image file missing"))?;
    Ok(([(header::CONTENT_TYPE, "image/jpeg")], Body::from(bytes)).into_response())
}

async fn get_group(State(lpr): State<Arc<Lpr>>, Path(group): Path<String>) -> ApiResult<impl IntoResponse> {
    Ok(Json(lpr.group(&group).await?))
}

async fn put_group(
    State(lpr): State<Arc<Lpr>>,
    Path(group): Path<String>,
    body: Result<Json<Group>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<impl IntoResponse> {
    let g = kit::http::json_body(body)?;
    for p in g.serial_on_open.iter().chain(&g.serial_on_deny) {
        proto::decode_base64(&p.data, "data", 64 * 1024).map_err(bad)?;
    }
    Ok(Json(lpr.set_group(&group, &g).await?))
}

async fn get_whitelist(State(lpr): State<Arc<Lpr>>, Path(group): Path<String>) -> ApiResult<impl IntoResponse> {
    let items = lpr.whitelist(&group).await?;
    Ok(Json(json!({"group": group, "total": items.len(), "items": items})))
}

async fn post_whitelist(
    State(lpr): State<Arc<Lpr>>,
    Path(group): Path<String>,
    body: Result<Json<Vec<WhiteListEntry>>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<impl IntoResponse> {
    let entries = kit::http::json_body(body)?;
    for e in &entries {
        if e.plate.trim().is_empty() || e.plate.chars().count() > 16 {
            return Err(bad(format!("plate {:?} must be 1-16 characters", e.plate)));
        }
        for t in [&e.enable_time, &e.overdue_time].into_iter().flatten() {
            if crate::gate::parse_local_time(t, 0).is_none() {
                return Err(bad(format!("time {t:?} must be YYYY-MM-DD HH:MM:SS")));
            }
        }
    }
    lpr.whitelist_put(&group, &entries).await?;
    Ok(Json(json!({"group": group, "stored": entries.len()})))
}

async fn delete_whitelist(State(lpr): State<Arc<Lpr>>, Path((group, plate)): Path<(String, String)>) -> ApiResult<impl IntoResponse> {
    if lpr.whitelist_delete(&group, &plate).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(StatusCode::NOT_FOUND, format!("{plate} is not on {group}'s list")))
    }
}

pub fn router(lpr: Arc<Lpr>) -> Router {
    let cfg = &lpr.cfg;
    let mut push = Router::new();
    for p in &cfg.plate_paths {
        push = push.route(p, post(plate_result));
    }
    for p in &cfg.gio_paths {
        push = push.route(p, post(gio));
    }
    for p in &cfg.serial_paths {
        push = push.route(p, post(serial));
    }
    for p in &cfg.heartbeat_paths {
        push = push.route(p, post(heartbeat));
    }
    let mut snapshot_paths = cfg.snapshot_paths.clone();
    if !snapshot_paths.contains(&cfg.snapshot_path) {
        snapshot_paths.push(cfg.snapshot_path.clone());
    }
    for p in &snapshot_paths {
        push = push.route(p, post(snapshot_upload));
    }
    let mut api = Router::new()
        .route("/api/v1/lpr/passages", get(list_passages))
        .route("/api/v1/lpr/passages/{id}", get(get_passage))
        .route("/api/v1/lpr/passages/{id}/images/{which}", get(passage_image))
        .route("/api/v1/lpr/cameras", get(list_cameras))
        .route("/api/v1/lpr/cameras/{serial}", get(get_camera).put(put_camera))
        .route("/api/v1/lpr/cameras/{serial}/commands", post(post_command))
        .route("/api/v1/lpr/snapshots/{id}", get(get_snapshot))
        .route("/api/v1/lpr/snapshots/{id}/image", get(get_snapshot_image))
        .route("/api/v1/lpr/groups/{group}", get(get_group).put(put_group))
        .route("/api/v1/lpr/groups/{group}/whitelist", get(get_whitelist).post(post_whitelist))
        .route("/api/v1/lpr/groups/{group}/whitelist/{plate}", delete(delete_whitelist))
        .route("/api/v1/lpr/events", get(crate::events::sse))
        .route("/api/v1/lpr/device-events", get(list_events));
    if !cfg.api_token.is_empty() {
        api = api.layer(middleware::from_fn_with_state(Arc::new(cfg.api_token.clone()), kit::http::require_token));
    }
    Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/metrics", get(|| async { ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], crate::metrics::render()) }))
        .merge(push)
        .merge(api)
        .layer(DefaultBodyLimit::max(cfg.max_body_bytes))
        .with_state(lpr)
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such endpoint") })
}
