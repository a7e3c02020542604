//! What every HTTP API of the cluster shares: JSON errors `{"code": …, "message": …}` and the
//! bearer-token gate.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header;
pub use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;

pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// More fields of the error object (e.g. `sip_status`).
    pub fields: Vec<(&'static str, serde_json::Value)>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self { status, message: message.into(), fields: Vec::new() }
    }

    pub fn with(mut self, name: &'static str, value: serde_json::Value) -> Self {
        self.fields.push((name, value));
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = serde_json::json!({"code": self.status.as_u16(), "message": self.message});
        // A retryable error says when in the header too, for clients that only read that.
        let retry_after = self.fields.iter().find(|(k, _)| *k == "retry_after_secs").and_then(|(_, v)| v.as_u64());
        for (k, v) in self.fields {
            body[k] = v;
        }
        match retry_after {
            Some(secs) => (self.status, [(axum::http::header::RETRY_AFTER, secs.to_string())], Json(body)).into_response(),
            None => (self.status, Json(body)).into_response(),
        }
    }
}

/// A JSON body, or a 400 saying why it is not one (axum's own rejection text).
pub fn json_body<T>(b: Result<Json<T>, axum::extract::rejection::JsonRejection>) -> Result<T, ApiError> {
    b.map(|Json(v)| v).map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))
}

/// Query parameters, or a 400 saying which one is wrong.
pub fn query<T>(q: Result<axum::extract::Query<T>, axum::extract::rejection::QueryRejection>) -> Result<T, ApiError> {
    q.map(|axum::extract::Query(v)| v).map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))
}

/// Middleware: `Authorization: Bearer <token>` must match (use with `from_fn_with_state`).
pub async fn require_token(State(token): State<Arc<String>>, req: Request, next: Next) -> Response {
    let ok = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| t.trim() == token.as_str());
    if ok {
        next.run(req).await
    } else {
        ApiError::new(StatusCode::UNAUTHORIZED, "missing or wrong bearer token").into_response()
    }
}
