//! gbcluster's NVR pusher (`shared/specs/nvr-pusher.md`): on a REST call from the web tier it
//! pulls live or recorded video of an NVR channel over RTSP and pushes it as RTMP (through the
//! shared `kit::rtmp` publisher), with the vendors' HTTP APIs for record search and PTZ.
//!
//! `request` reads the calls, `status` shapes the replies, `vendor` builds the vendors' URLs
//! and PTZ mappings, `isapi` / `dahua` speak their HTTP APIs (`vendor_http`: digest auth),
//! `pull::rtsp` (shared with the media node's pull sources) pulls RTSP with retina and
//! `pull::remux` turns frames into FLV tags; `session` runs one play;
//! `service` holds the node's sessions, which `nodes` (its place in the cluster), `routing`
//! (calls reach the node holding the play), `plays` (start, end) and `calls` (the six calls)
//! work on; `api` is HTTP.

pub mod api;
pub mod calls;
pub mod config;
pub mod dahua;
pub mod isapi;
pub mod metrics;
pub mod nodes;
pub mod onvif;
pub mod plays;
pub mod request;
pub mod routing;
pub mod service;
pub mod session;
pub mod status;
pub mod vendor;
pub mod vendor_http;

use std::net::SocketAddr;
use std::sync::Arc;

use cluster::store::Store;
use tokio_util::sync::CancellationToken;

pub use config::NvrConfig;
pub use service::Pusher;

pub struct Running {
    pub pusher: Arc<Pusher>,
    pub addr: SocketAddr,
}

/// Binds the API, registers the node, starts the beat watchdog.
pub async fn start(cfg: NvrConfig, store: Arc<dyn Store>, shutdown: CancellationToken) -> anyhow::Result<Running> {
    let listener = tokio::net::TcpListener::bind(&cfg.listen).await.map_err(|e| anyhow::anyhow!("nvr.listen {}: {e}", cfg.listen))?;
    let addr = listener.local_addr()?;
    let advertise = if cfg.advertise_url.is_empty() {
        let ip = if addr.ip().is_unspecified() { "127.0.0.1".to_owned() } else { addr.ip().to_string() };
        format!("http://{ip}:{}", addr.port())
    } else {
        cfg.advertise_url.trim_end_matches('/').to_owned()
    };
    let pusher = Pusher::new(cfg, store, shutdown.clone());
    *pusher.api_url.lock().unwrap_or_else(|e| e.into_inner()) = advertise;
    pusher.clear_leftovers().await;
    let rec = cluster::wire::to_json(&pusher.record());
    pusher
        .store
        .put_node(cluster::wire::NodeKind::Nvr.as_str(), &pusher.node, &rec, 6000)
        .await
        .map_err(|e| anyhow::anyhow!("registering the node: {e}"))?;
    tokio::spawn(pusher.clone().housekeeping());
    let app = api::router(pusher.clone());
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(async move { shutdown.cancelled().await }).await {
            tracing::error!(error = %e, "nvr-pusher stopped");
        }
    });
    tracing::info!(%addr, node = %pusher.node, "nvr-pusher listening");
    Ok(Running { pusher, addr })
}
