//! What the console's Cluster page shows: every node that announces itself in the Store, with
//! the media nodes' load, and every stream the media nodes carry with their figures.

use std::sync::Arc;

use axum::extract::State;
use axum::response::IntoResponse;
use axum::Json;
use cluster::wire::NodeKind;
use kit::http::ApiError;
use serde_json::{json, Value};

use crate::play::media_nodes::{live_nodes, MediaApi};
use crate::server::Shared;

/// `GET /api/v1/cluster`: nodes by kind (their Store records as they wrote them), each media
/// node with the streams reserved on it.
pub async fn nodes(State(s): State<Arc<Shared>>) -> Result<impl IntoResponse, ApiError> {
    let loads = s.store.load_counts(NodeKind::Media.as_str()).await?;
    let mut out = json!({});
    for kind in [NodeKind::Sip, NodeKind::Media, NodeKind::Lpr, NodeKind::Nvr] {
        let mut items: Vec<Value> = s
            .store
            .list_nodes(kind.as_str())
            .await?
            .into_iter()
            .map(|(id, raw)| {
                let mut v = serde_json::from_str::<Value>(&raw).unwrap_or_else(|_| json!({"unreadable": true}));
                v["id"] = json!(id);
                if kind == NodeKind::Media {
                    v["reserved"] = json!(loads.iter().find(|(n, _)| *n == id).map_or(0, |(_, c)| *c));
                }
                v
            })
            .collect();
        items.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
        out[kind.as_str()] = Value::Array(items);
    }
    Ok(Json(out))
}

/// `GET /api/v1/cluster/streams`: every media node's streams with its figures, asked of all
/// nodes at once; a node that does not answer is named in `unreachable`.
pub async fn streams(State(s): State<Arc<Shared>>) -> Result<impl IntoResponse, ApiError> {
    let nodes = live_nodes(s.store.as_ref()).await.map_err(ApiError::from)?;
    let asks = nodes.iter().map(|n| {
        let api = MediaApi { cfg: &s.cfg.play, node: &n.id, api_url: &n.api_url };
        async move { (n.id.clone(), api.streams().await) }
    });
    let mut items = Vec::new();
    let mut unreachable = Vec::new();
    for (node, answer) in futures::future::join_all(asks).await {
        match answer {
            Ok(list) => items.extend(list.into_iter().map(|mut v| {
                v["media_node"] = json!(node);
                v
            })),
            Err(e) => unreachable.push(json!({"node": node, "message": e.to_string()})),
        }
    }
    Ok(Json(json!({"total": items.len(), "items": items, "unreachable": unreachable})))
}
