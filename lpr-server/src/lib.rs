//! gbcluster's lpr-server: the HTTP push protocol of licence-plate cameras
//! (`../shared/specs/lpr-http-push.md`). Plate results are stored durably (images on disk,
//! records in the Store) before the reply; the reply opens the gate per the lane group's
//! whitelist and policy, keeps the camera's offline backlog flowing, and carries queued
//! operator commands and whitelist changes. Several nodes share one Store.
//!
//! `proto` and `multipart` read the wire (sans-I/O); `gate` decides the gate and `reply` what a
//! reply says (pure); `service` holds the state that `cameras`, `whitelist`, `commands`,
//! `passages` and `snapshots` keep in the Store; `api` is HTTP, `events` the SSE stream,
//! `outbox` the webhook.

pub mod api;
pub mod cameras;
pub mod commands;
pub mod config;
pub mod events;
pub mod gate;
pub mod metrics;
pub mod multipart;
pub mod outbox;
pub mod passages;
pub mod proto;
pub mod reply;
pub mod service;
pub mod snapshots;
pub mod whitelist;

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
    tokio::spawn(announce(lpr.clone(), addr, shutdown.clone()));
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

/// Keeps this node's record in the Store (kind `lpr`, 6 s TTL refreshed every 2 s) so the web
/// tier finds the management API; removed on shutdown.
async fn announce(lpr: Arc<Lpr>, addr: SocketAddr, shutdown: CancellationToken) {
    let ip = if addr.ip().is_unspecified() { "127.0.0.1".to_owned() } else { addr.ip().to_string() };
    let api_url = format!("http://{ip}:{}", addr.port());
    let kind = cluster::wire::NodeKind::Lpr.as_str();
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        let rec = cluster::wire::LprNodeRecord { id: lpr.node.clone(), api_url: api_url.clone(), updated_ms: service::now_ms() };
        if let Err(e) = lpr.store.put_node(kind, &lpr.node, &cluster::wire::to_json(&rec), 6000).await {
            tracing::warn!(error = %e, "lpr node record not refreshed");
        }
    }
    let _ = lpr.store.remove_node(kind, &lpr.node).await;
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
        let store = lpr.store.as_ref();
        let limit = lpr.cfg.offline_after_secs * 1000;
        let Ok(rows) = cameras::CAMERAS.list(store).await else { continue };
        let silent = rows
            .into_iter()
            .filter_map(|(serial, row)| row.ok().map(|c| (serial, c)))
            .filter(|(_, c)| c.last_seen_ms != 0 && now.saturating_sub(c.last_seen_ms) > limit && !c.offline_reported);
        for (serial, _) in silent {
            // Compare-and-set on the row as read now: of the nodes seeing it, one reports it.
            let Ok(Some(read)) = cameras::CAMERAS.get(store, &serial).await else { continue };
            let mut c = read.row.clone();
            if c.offline_reported || now.saturating_sub(c.last_seen_ms) <= limit {
                continue;
            }
            c.offline_reported = true;
            if cameras::CAMERAS.swap(store, &serial, &read, &c).await.unwrap_or(false) {
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
