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

/// What a `Range` header asks of a body of `len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// No header, or one we do not serve (several ranges, another unit): the whole body, 200.
    Whole,
    /// `[start, end]`, inclusive: 206 with `Content-Range`.
    Part { start: u64, end: u64 },
    /// Starts past the end: 416.
    Unsatisfiable,
}

/// Reads a single `bytes=` range (RFC 9110 §14.1.2): `a-b`, `a-` or the suffix `-n`. A range
/// we cannot read is ignored (the whole body), as the RFC lets a server do.
pub fn byte_range(header: Option<&str>, len: u64) -> ByteRange {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else { return ByteRange::Whole };
    if spec.contains(',') {
        return ByteRange::Whole;
    }
    let Some((a, b)) = spec.trim().split_once('-') else { return ByteRange::Whole };
    let (a, b) = (a.trim(), b.trim());
    let num = |s: &str| if s.bytes().all(|c| c.is_ascii_digit()) { s.parse::<u64>().ok() } else { None };
    match (a.is_empty(), b.is_empty()) {
        // Suffix: the last n bytes.
        (true, false) => match num(b) {
            Some(0) => ByteRange::Unsatisfiable,
            Some(n) if len > 0 => ByteRange::Part { start: len.saturating_sub(n), end: len - 1 },
            Some(_) => ByteRange::Unsatisfiable,
            None => ByteRange::Whole,
        },
        (false, _) => {
            let Some(start) = num(a) else { return ByteRange::Whole };
            let end = if b.is_empty() { Some(u64::MAX) } else { num(b) };
            match end {
                None => ByteRange::Whole,
                Some(end) if end < start => ByteRange::Whole,
                Some(_) if start >= len => ByteRange::Unsatisfiable,
                Some(end) => ByteRange::Part { start, end: end.min(len - 1) },
            }
        }
        (true, true) => ByteRange::Whole,
    }
}

#[cfg(test)]
mod range_tests {
    use super::{byte_range, ByteRange};

    #[test]
    fn ranges_read_as_rfc_9110_says() {
        let part = |start, end| ByteRange::Part { start, end };
        assert_eq!(byte_range(None, 100), ByteRange::Whole);
        assert_eq!(byte_range(Some("bytes=0-9"), 100), part(0, 9));
        assert_eq!(byte_range(Some("bytes=90-"), 100), part(90, 99));
        assert_eq!(byte_range(Some("bytes=90-500"), 100), part(90, 99));
        assert_eq!(byte_range(Some("bytes=-10"), 100), part(90, 99));
        assert_eq!(byte_range(Some("bytes=-500"), 100), part(0, 99));
        assert_eq!(byte_range(Some("bytes=100-"), 100), ByteRange::Unsatisfiable);
        assert_eq!(byte_range(Some("bytes=-0"), 100), ByteRange::Unsatisfiable);
        assert_eq!(byte_range(Some("bytes=-5"), 0), ByteRange::Unsatisfiable);
        for ignored in ["bytes=0-1,5-6", "items=0-1", "bytes=5-2", "bytes=a-b", "bytes=-", "bytes=+1-2", "bytes=99999999999999999999999-"] {
            assert_eq!(byte_range(Some(ignored), 100), ByteRange::Whole, "{ignored}");
        }
    }
}
