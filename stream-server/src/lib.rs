//! gbcluster's media node: PS (or TS) over RTP in — UDP, TCP passive, TCP active — demuxed to
//! H.264/H.265/AAC/G.711, republished as RTMP and served as HTTP-FLV.
//!
//! Layers, each testable with bytes alone: socket (`receiver`) → RTP sequence (`reorder`) →
//! demux (`media::ps`, `media::ts`) → access units (`media`) → FLV (`media::flv`)
//! → fan-out (`hub`) → outputs (`api` HTTP-FLV, `push` RTMP). `node` ties a stream's parts
//! together and keeps the node's record in the cluster. `sources` pulls cameras that are not
//! GB devices (MJPEG over HTTP, RTSP) into streams of their own.

pub mod api;
pub mod config;
pub mod downloads;
pub mod ffmpeg_pipe;
pub mod file_serve;
pub mod fmp4_feed;
pub mod gop_cache;
pub mod hls;
pub mod hub;
pub mod mjpeg;
pub mod node;
pub mod pipeline;
pub mod ports;
pub mod push;
pub mod receiver;
pub mod recv_batch;
pub mod reorder;
pub mod rtmp_serve;
pub mod snapshot;
pub mod source_h264;
pub mod sources;
pub mod stream;

use std::net::SocketAddr;
use std::sync::Arc;

use cluster::store::Store;
use tokio_util::sync::CancellationToken;

pub use config::StreamConfig;
pub use node::Node;

pub struct Running {
    pub node: Arc<Node>,
    pub http: SocketAddr,
}

/// Starts the node: HTTP (control + HTTP-FLV), heartbeat.
pub async fn start(cfg: StreamConfig, store: Arc<dyn Store>, shutdown: CancellationToken) -> anyhow::Result<Running> {
    let id = cfg.node_id.clone().unwrap_or_else(|| format!("media-{:08x}", rand_u32()));
    let listener =
        tokio::net::TcpListener::bind(&cfg.http_listen).await.map_err(|e| anyhow::anyhow!("binding {}: {e}", cfg.http_listen))?;
    let http = listener.local_addr()?;
    let node = Node::new(cfg, id, store, shutdown.clone());
    *node.http_addr.lock().unwrap_or_else(|e| e.into_inner()) = Some(http);
    let app = api::router(node.clone());
    let s = shutdown.clone();
    let sndbuf = node.cfg.http_send_buffer_bytes;
    let listener = axum::serve::ListenerExt::tap_io(listener, move |tcp: &mut tokio::net::TcpStream| {
        let _ = tcp.set_nodelay(true);
        if sndbuf > 0 {
            let _ = socket2::SockRef::from(&*tcp).set_send_buffer_size(sndbuf);
        }
    });
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(async move { s.cancelled().await }).await {
            tracing::error!("stream-server http stopped: {e}");
        }
    });
    if node.cfg.single_port != 0 {
        let sock =
            node.bind_udp(node.cfg.single_port).ok_or_else(|| anyhow::anyhow!("binding single RTP port {}", node.cfg.single_port))?;
        let (tx, rx) = tokio::sync::mpsc::channel(1024);
        let _ = node.single_port.set(tx);
        tokio::spawn(receiver::run_single_port(node.clone(), sock, rx));
    }
    if !node.cfg.rtmp_listen.trim().is_empty() {
        let l = tokio::net::TcpListener::bind(node.cfg.rtmp_listen.trim())
            .await
            .map_err(|e| anyhow::anyhow!("binding RTMP {}: {e}", node.cfg.rtmp_listen))?;
        *node.rtmp_addr.lock().unwrap_or_else(|e| e.into_inner()) = Some(l.local_addr()?);
        tokio::spawn(rtmp_serve::serve(node.clone(), l));
    }
    tokio::spawn(node.clone().heartbeat());
    tracing::info!(node = %node.id, %http, "stream-server up");
    Ok(Running { node, http })
}

fn rand_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0));
    h.finish() as u32
}
