//! The console reaches the lpr-servers and nvr-pushers through the sip-server that served it:
//! one origin and one token for the browser, and the other services' APIs need not be exposed
//! to it. Any live node of the kind answers (their state is in the Store, and nvr-pushers
//! route a handle to its node themselves). Answers are buffered and bounded
//! (`kit::http_client::MAX_RESPONSE`); the LPR event stream comes through `/api/v1/events`
//! instead.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use cluster::wire::NodeKind;
use kit::http::ApiError;
use kit::http_client;

use crate::server::Shared;

/// How long one forwarded call may take (an NVR start waits for the NVR's login).
const TIMEOUT: Duration = Duration::from_secs(20);

/// Where a console path goes.
#[derive(Debug, PartialEq, Eq)]
pub enum Target {
    /// `/api/v1/lpr/{rest}` → an lpr-server's `/api/v1/lpr/{rest}`.
    Lpr(String),
    /// `/api/v1/nvr/{rest}` → an nvr-pusher's `/api/v1/nvr/{rest}`.
    NvrApi(String),
    /// `/api/v1/nvr-calls/{rest}` → an nvr-pusher's own calls (`/REAL_STREAM`, `/BACK_STREAM`,
    /// `/STREAM/{handle}/{call}`).
    NvrCall(String),
}

impl Target {
    /// The upstream path, or why it is not forwarded.
    fn path(&self) -> Result<String, &'static str> {
        match self {
            Target::Lpr(rest) if rest == "events" => Err("the LPR event stream is part of /api/v1/events (event: lpr)"),
            Target::Lpr(rest) => Ok(format!("/api/v1/lpr/{rest}")),
            Target::NvrApi(rest) => Ok(format!("/api/v1/nvr/{rest}")),
            Target::NvrCall(rest) if rest == "REAL_STREAM" || rest == "BACK_STREAM" || rest.starts_with("STREAM/") => {
                Ok(format!("/{rest}"))
            }
            Target::NvrCall(_) => Err("nvr-calls are REAL_STREAM, BACK_STREAM and STREAM/{handle}/{call}"),
        }
    }

    fn kind(&self) -> NodeKind {
        match self {
            Target::Lpr(_) => NodeKind::Lpr,
            Target::NvrApi(_) | Target::NvrCall(_) => NodeKind::Nvr,
        }
    }
}

/// A live node's API base URL of `kind`: the one named, or the most recently refreshed.
async fn node_url(s: &Shared, kind: NodeKind, named: Option<&str>) -> Result<String, ApiError> {
    let rows = s.store.list_nodes(kind.as_str()).await?;
    let mut nodes: Vec<(u64, String)> = rows
        .iter()
        .filter(|(id, _)| named.is_none_or(|n| n == id))
        .filter_map(|(_, raw)| serde_json::from_str::<serde_json::Value>(raw).ok())
        .filter_map(|v| Some((v["updated_ms"].as_u64().unwrap_or(0), v["api_url"].as_str()?.trim_end_matches('/').to_owned())))
        .collect();
    nodes.sort_by_key(|n| std::cmp::Reverse(n.0));
    nodes.into_iter().next().map(|(_, url)| url).ok_or_else(|| {
        let what = if kind == NodeKind::Lpr { "lpr-server" } else { "nvr-pusher" };
        let message = match named {
            Some(n) => format!("{what} {n} is not running"),
            None => format!("no {what} is running in the cluster"),
        };
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, message).with("kind", serde_json::json!(format!("no_{}_node", kind.as_str())))
    })
}

pub async fn forward(s: &Arc<Shared>, target: Target, method: Method, query: Option<String>, headers: &HeaderMap, body: Bytes) -> Response {
    match forward_inner(s, &target, &method, query, headers, &body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn forward_inner(
    s: &Shared,
    target: &Target,
    method: &Method,
    query: Option<String>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, ApiError> {
    let path = target.path().map_err(|m| ApiError::new(StatusCode::NOT_FOUND, m))?;
    // `node=<id>` (ours, not passed on) asks a particular node, e.g. for its own sessions.
    let (node, query) = split_node(query.as_deref().unwrap_or(""));
    let base = node_url(s, target.kind(), node.as_deref()).await?;
    let url = match Some(query).filter(|q| !q.is_empty()) {
        Some(q) => format!("{base}{path}?{q}"),
        None => format!("{base}{path}"),
    };
    let auth = (target.kind() == NodeKind::Lpr && !s.cfg.api.lpr_token.is_empty()).then(|| format!("Bearer {}", s.cfg.api.lpr_token));
    let up_headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("application/json");
    let req = http_client::Request { method: method.as_str(), url: &url, headers: &up_headers, content_type, body, timeout: TIMEOUT };
    let r = http_client::send(&req).await.map_err(|e| ApiError::new(StatusCode::BAD_GATEWAY, e.to_string()))?;
    let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let keep: Vec<_> = [header::CONTENT_TYPE, header::CACHE_CONTROL, header::CONTENT_DISPOSITION]
        .into_iter()
        .filter_map(|name| Some((name.clone(), r.header(name.as_str())?.parse::<header::HeaderValue>().ok()?)))
        .collect();
    let mut out = (status, r.body).into_response();
    for (name, value) in keep {
        out.headers_mut().insert(name, value);
    }
    Ok(out)
}

/// Takes `node=<id>` out of a query string: (the node, the rest).
fn split_node(query: &str) -> (Option<String>, String) {
    let mut node = None;
    let rest: Vec<&str> = query
        .split('&')
        .filter(|p| match p.strip_prefix("node=") {
            Some(n) if !n.is_empty() => {
                node = Some(n.to_owned());
                false
            }
            _ => !p.is_empty(),
        })
        .collect();
    (node, rest.join("&"))
}

/// A route that forwards to the `Target` its path makes.
fn forwarding(make: fn(String) -> Target) -> axum::routing::MethodRouter<Arc<Shared>> {
    axum::routing::any(
        move |State(s): State<Arc<Shared>>, Path(rest): Path<String>, m: Method, RawQuery(q): RawQuery, h: HeaderMap, body: Bytes| async move {
            forward(&s, make(rest), m, q, &h, body).await
        },
    )
}

pub fn router(shared: Arc<Shared>) -> axum::Router {
    axum::Router::new()
        .route("/api/v1/lpr/{*rest}", forwarding(Target::Lpr))
        .route("/api/v1/nvr/{*rest}", forwarding(Target::NvrApi))
        .route("/api/v1/nvr-calls/{*rest}", forwarding(Target::NvrCall))
        .with_state(shared)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_paths_map_to_the_services_own() {
        assert_eq!(Target::Lpr("passages".into()).path(), Ok("/api/v1/lpr/passages".into()));
        assert!(Target::Lpr("events".into()).path().is_err(), "the SSE stream is not buffered through");
        assert_eq!(Target::NvrApi("sessions".into()).path(), Ok("/api/v1/nvr/sessions".into()));
        assert_eq!(Target::NvrCall("REAL_STREAM".into()).path(), Ok("/REAL_STREAM".into()));
        assert_eq!(Target::NvrCall("STREAM/h1/STOP".into()).path(), Ok("/STREAM/h1/STOP".into()));
        assert!(Target::NvrCall("metrics".into()).path().is_err());
        assert_eq!(Target::Lpr("x".into()).kind(), NodeKind::Lpr);
        assert_eq!(Target::NvrCall("REAL_STREAM".into()).kind(), NodeKind::Nvr);
        assert_eq!(split_node("node=nvr-a&limit=5"), (Some("nvr-a".into()), "limit=5".into()));
        assert_eq!(split_node("plate=A1&offset=0"), (None, "plate=A1&offset=0".into()));
        assert_eq!(split_node(""), (None, String::new()));
    }
}
