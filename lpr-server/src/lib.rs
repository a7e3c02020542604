//! gbcluster's lpr-server: the HTTP push protocol of licence-plate cameras
//! (`../shared/specs/lpr-http-push.md`). Plate results are stored durably (images on disk,
//! records in the Store) before the reply; the reply opens the gate per the lane group's
//! whitelist and policy, keeps the camera's offline backlog flowing, and carries queued
//! operator commands and whitelist changes. Several nodes share one Store.
//!
//! `proto` and `multipart` read the wire (sans-I/O), `gate` decides, `service` keeps state,
//! `api` is HTTP, `events` the SSE stream, `outbox` the webhook.

pub mod api;
pub mod config;
pub mod events;
pub mod gate;
pub mod metrics;
pub mod multipart;
pub mod outbox;
pub mod proto;
pub mod service;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use cluster::store::Store;
use tokio_util::sync::CancellationToken;

pub use config::LprConfig;
pub use service::Lpr;

pub struct Running {
    pub lpr: Arc<Lpr>,
    pub addr: SocketAddr,
}

/// Binds, subscribes to wake-ups, starts the offline watch and the webhook worker.
pub async fn start(cfg: LprConfig, store: Arc<dyn Store>, shutdown: CancellationToken) -> anyhow_free::Result<Running> {
    let listener =
        tokio::net::TcpListener::bind(&cfg.listen).await.map_err(|e| anyhow_free::Error(format!("lpr.listen {}: {e}", cfg.listen)))?;
    let addr = listener.local_addr().map_err(|e| anyhow_free::Error(e.to_string()))?;
    let lpr = Lpr::new(cfg, store);
    // One subscription per node: a wake-up names the camera whose comet poll should answer.
    let mut wake = lpr.store.subscribe(service::WAKE).await.map_err(|e| anyhow_free::Error(e.to_string()))?;
    {
        let (lpr, shutdown) = (lpr.clone(), shutdown.clone());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    m = wake.recv() => match m { Some(serial) => lpr.woken(&serial), None => break },
                }
            }
        });
    }
    tokio::spawn(offline_watch(lpr.clone(), shutdown.clone()));
    outbox::spawn(lpr.clone(), shutdown.clone());
    let app = api::router(lpr.clone()).into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(async move { shutdown.cancelled().await }).await {
            tracing::error!(error = %e, "lpr-server stopped");
        }
    });
    tracing::info!(%addr, node = %lpr.node, "lpr-server listening");
    Ok(Running { lpr, addr })
}

/// Raises `camera_offline` once for each camera not heard from for `offline_after_secs`. Every
/// node checks; a marker in the camera's table row makes each transition publish once.
async fn offline_watch(lpr: Arc<Lpr>, shutdown: CancellationToken) {
    let every = Duration::from_millis((lpr.cfg.offline_after_secs * 500).clamp(500, 5000));
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        let now = service::now_ms();
        let Ok(rows) = lpr.store.table_list(service::CAMERAS).await else { continue };
        for (serial, raw) in rows {
            let Ok(mut c) = serde_json::from_str::<service::Camera>(&raw) else { continue };
            let limit = lpr.cfg.offline_after_secs * 1000;
            if c.last_seen_ms == 0 || now.saturating_sub(c.last_seen_ms) <= limit || c.offline_reported {
                continue;
            }
            c.offline_reported = true;
            let new = serde_json::to_string(&c).unwrap_or_default();
            // Compare-and-set: of the nodes seeing it, one reports it.
            if lpr.store.table_swap(service::CAMERAS, &serial, &raw, &new).await.unwrap_or(false) {
                lpr.publish(
                    serde_json::json!({"event": "camera_offline", "serialno": serial, "last_seen_ms": c.last_seen_ms, "at_ms": now}),
                )
                .await;
            }
        }
    }
}

/// The crate's start error (a message), without pulling anyhow into the library.
pub mod anyhow_free {
    #[derive(Debug)]
    pub struct Error(pub String);
    impl std::fmt::Display for Error {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(&self.0)
        }
    }
    impl std::error::Error for Error {}
    pub type Result<T> = std::result::Result<T, Error>;
}
