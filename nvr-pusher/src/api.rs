//! The pusher's HTTP API, on the original's paths (clients exist): `POST /REAL_STREAM`,
//! `POST /BACK_STREAM`, and `/STREAM/{play_handle}/BEATS|POSITION|PTZControl|STOP` (GET or
//! POST: clients differ). Every reply is HTTP 200 with `status_code` in the JSON body, as the
//! original answered. Bodies are read as JSON whatever their Content-Type says.
//! Management: `GET /api/v1/nvr/sessions` (this node), `GET /api/v1/nvr/nodes`, `/metrics`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, Method};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::calls::Call;
use crate::service::{Pusher, FORWARDED};

/// Largest request body (the calls' bodies are a few hundred bytes).
const MAX_BODY: usize = 64 * 1024;

fn forwarded(h: &HeaderMap) -> bool {
    h.contains_key(FORWARDED)
}

async fn real_stream(State(p): State<Arc<Pusher>>, headers: HeaderMap, body: Bytes) -> Json<Value> {
    Json(p.play(Call::RealStream, &body, forwarded(&headers)).await)
}

async fn back_stream(State(p): State<Arc<Pusher>>, headers: HeaderMap, body: Bytes) -> Json<Value> {
    Json(p.play(Call::BackStream, &body, forwarded(&headers)).await)
}

async fn on_handle(
    State(p): State<Arc<Pusher>>,
    Path((handle, call)): Path<(String, String)>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Json<Value> {
    Json(p.on_handle(&handle, &call, method.as_str(), &body, forwarded(&headers)).await)
}

async fn sessions(State(p): State<Arc<Pusher>>) -> Json<Value> {
    let items: Vec<Value> = p.sessions().iter().map(|s| Pusher::view(s)).collect();
    Json(json!({"node": p.node, "total": items.len(), "items": items}))
}

async fn nodes(State(p): State<Arc<Pusher>>) -> Json<Value> {
    let items = p.nodes().await;
    Json(json!({"total": items.len(), "items": items}))
}

pub fn router(p: Arc<Pusher>) -> Router {
    Router::new()
        .route("/REAL_STREAM", post(real_stream))
        .route("/BACK_STREAM", post(back_stream))
        .route("/STREAM/{handle}/{call}", any(on_handle))
        .route("/api/v1/nvr/sessions", get(sessions))
        .route("/api/v1/nvr/nodes", get(nodes))
        .route("/metrics", get(|| async { ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], crate::metrics::render()) }))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(p)
}
