//! `GET /api/v1/lpr/events`: a Server-Sent Events stream of passages, IO, serial data, alarms,
//! snapshots and camera online/offline (`gbc:events:lpr`, from every lpr-server node).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use kit::http::ApiError;

use crate::service::{Lpr, EVENTS};

pub async fn sse(State(lpr): State<Arc<Lpr>>) -> Result<Response, ApiError> {
    let sub = lpr.store.subscribe(EVENTS).await?;
    let stream = futures::stream::unfold(sub, |mut sub| async move {
        let chunk = match tokio::time::timeout(Duration::from_secs(15), sub.recv()).await {
            Ok(Some(msg)) => Bytes::from(format!("data: {msg}\n\n")),
            Ok(None) => return None,
            // A comment line keeps proxies from closing an idle stream.
            Err(_) => Bytes::from_static(b": keepalive\n\n"),
        };
        Some((Ok::<Bytes, std::io::Error>(chunk), sub))
    });
    Ok(([(header::CONTENT_TYPE, "text/event-stream"), (header::CACHE_CONTROL, "no-cache")], Body::from_stream(stream)).into_response())
}
