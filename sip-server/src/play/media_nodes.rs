//! Media nodes seen from a sip-server: which are alive (their Store records), which one takes
//! the next stream (atomic reservation, so a burst spreads), and their control API.

use std::net::SocketAddr;
use std::time::Duration;

use cluster::store::{LoadCandidate, Store};
use cluster::wire::{MediaNodeRecord, NodeKind, ReceiverAnswer, ReceiverOpen, ReceiverOpened};
use kit::http_client;

use super::{PlayConfig, PlayError, PlayTransport};

pub async fn live_nodes(store: &dyn Store) -> Result<Vec<MediaNodeRecord>, PlayError> {
    let rows = store.list_nodes(NodeKind::Media.as_str()).await?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, raw)| match serde_json::from_str::<MediaNodeRecord>(&raw) {
            Ok(r) => Some(r),
            Err(e) => {
                tracing::warn!(node = %id, error = %e, "unreadable media node record ignored");
                None
            }
        })
        .collect())
}

/// Picks the least-loaded live node (streams against its capacity, then bandwidth) and counts
/// the stream on it at once. `exclude`: nodes that just failed.
pub async fn reserve(store: &dyn Store, exclude: &[String]) -> Result<MediaNodeRecord, PlayError> {
    let nodes: Vec<MediaNodeRecord> = live_nodes(store).await?.into_iter().filter(|n| !exclude.contains(&n.id)).collect();
    if nodes.is_empty() {
        return Err(PlayError::NoMediaNode(if exclude.is_empty() {
            "no stream-server is registered in the Store".into()
        } else {
            format!("no stream-server left besides {}", exclude.join(", "))
        }));
    }
    let candidates: Vec<LoadCandidate> = nodes
        .iter()
        .map(|n| LoadCandidate {
            id: n.id.clone(),
            capacity: n.max_streams as u64,
            reported: n.streams as u64,
            busy: if n.capacity_mbps > 0 { n.mbps / f64::from(n.capacity_mbps) } else { n.cpu / 64.0 },
        })
        .collect();
    let chosen = store
        .reserve_least_loaded(NodeKind::Media.as_str(), &candidates)
        .await?
        .ok_or_else(|| PlayError::NoMediaNode(format!("all {} stream-servers are at capacity", nodes.len())))?;
    nodes.into_iter().find(|n| n.id == chosen).ok_or_else(|| PlayError::Internal("reserved node vanished".into()))
}

/// A stream-server's control API.
pub struct MediaApi<'a> {
    pub cfg: &'a PlayConfig,
    pub node: &'a str,
    pub api_url: &'a str,
}

impl MediaApi<'_> {
    fn timeout(&self) -> Duration {
        Duration::from_millis(self.cfg.media_timeout_ms.max(100))
    }

    fn fail(&self, message: String) -> PlayError {
        PlayError::MediaNode { node: self.node.to_owned(), message }
    }

    async fn call(&self, method: &str, path: &str, body: Option<&str>) -> Result<http_client::HttpResponse, PlayError> {
        let url = format!("{}{path}", self.api_url.trim_end_matches('/'));
        http_client::request(method, &url, Some(&self.cfg.media_token), body, self.timeout()).await.map_err(|e| self.fail(e.to_string()))
    }

    /// Opens a receiver; returns the address the camera is to send to (UDP, TCP passive) or the
    /// media node's port (TCP active). With `record`, the node writes what arrives to an MP4 (a
    /// download).
    pub async fn open(&self, stream_id: &str, ssrc: u32, transport: PlayTransport, record: bool) -> Result<(String, u16), PlayError> {
        let body = ReceiverOpen {
            record,
            stream_id: stream_id.to_owned(),
            ssrc: Some(ssrc),
            transport: Some(transport),
            peer: None,
            no_viewer_secs: Some(self.cfg.no_viewer_secs),
            push_holds_open: Some(self.cfg.push_holds_open),
        };
        let body = cluster::wire::to_json(&body);
        let r = self.call("POST", "/api/v1/receivers", Some(&body)).await?;
        if !r.ok() {
            return Err(self.fail(format!("open answered {}: {}", r.status, r.error_message())));
        }
        let opened: ReceiverOpened = serde_json::from_slice(&r.body).map_err(|e| self.fail(format!("open answer unreadable: {e}")))?;
        Ok((opened.ip, opened.port))
    }

    /// Passes on what the camera's SDP answer says: its own SSRC (when not ours) and, for TCP
    /// active, where it listens.
    pub async fn answer(&self, stream_id: &str, ssrc: Option<u32>, peer: Option<SocketAddr>) -> Result<(), PlayError> {
        let body = ReceiverAnswer { ssrc, peer: peer.map(|p| p.to_string()) };
        let body = cluster::wire::to_json(&body);
        let r = self.call("POST", &format!("/api/v1/receivers/{stream_id}/answer"), Some(&body)).await?;
        if r.ok() {
            Ok(())
        } else {
            Err(self.fail(format!("answer answered {}: {}", r.status, r.error_message())))
        }
    }

    /// Steers a playback's output timeline: its speed, a mark to count the position from, pause.
    pub async fn timeline(&self, stream_id: &str, scale: Option<f64>, mark: bool, paused: Option<bool>) -> Result<(), PlayError> {
        let body = serde_json::json!({"scale": scale, "mark": mark, "paused": paused}).to_string();
        let r = self.call("POST", &format!("/api/v1/receivers/{stream_id}/timeline"), Some(&body)).await?;
        if r.ok() {
            Ok(())
        } else {
            Err(self.fail(format!("timeline answered {}: {}", r.status, r.error_message())))
        }
    }

    /// The JPEG of a stream's latest key frame (`/snap/{id}.jpg`): waits for a first key frame
    /// and a decode, so longer than other calls.
    pub async fn snapshot(&self, stream_id: &str) -> Result<Vec<u8>, PlayError> {
        let url = format!("{}/snap/{stream_id}.jpg", self.api_url.trim_end_matches('/'));
        let r = http_client::request("GET", &url, Some(&self.cfg.media_token), None, SNAPSHOT_TIMEOUT)
            .await
            .map_err(|e| self.fail(e.to_string()))?;
        match r.status {
            200 => Ok(r.body),
            404 => Err(PlayError::NoSession(stream_id.to_owned())),
            s => Err(PlayError::Internal(format!("media node {}: no picture ({s}: {})", self.node, r.error_message()))),
        }
    }

    /// A download's state on the node (`None`: the node has no such download).
    pub async fn download(&self, id: &str) -> Result<Option<serde_json::Value>, PlayError> {
        let r = self.call("GET", &format!("/api/v1/downloads/{id}"), None).await?;
        match r.status {
            200..=299 => r.json().map(Some).ok_or_else(|| self.fail("download status unreadable".into())),
            404 => Ok(None),
            s => Err(self.fail(format!("download status answered {s}: {}", r.error_message()))),
        }
    }

    /// Cancels a download and deletes its file (gone already is fine).
    pub async fn delete_download(&self, id: &str) -> Result<(), PlayError> {
        let r = self.call("DELETE", &format!("/api/v1/downloads/{id}"), None).await?;
        match r.status {
            200..=299 | 404 => Ok(()),
            s => Err(self.fail(format!("download delete answered {s}: {}", r.error_message()))),
        }
    }

    /// What the media node measures of a stream (codec, size, fps, bitrate, loss, viewers).
    pub async fn stream_stats(&self, stream_id: &str) -> Result<serde_json::Value, PlayError> {
        let r = self.call("GET", &format!("/api/v1/streams/{stream_id}"), None).await?;
        match r.status {
            200..=299 => r.json().ok_or_else(|| self.fail("stream stats unreadable".into())),
            404 => Err(PlayError::NoSession(stream_id.to_owned())),
            s => Err(self.fail(format!("stream stats answered {s}: {}", r.error_message()))),
        }
    }

    /// Every stream of the node with its figures.
    pub async fn streams(&self) -> Result<Vec<serde_json::Value>, PlayError> {
        let r = self.call("GET", "/api/v1/streams", None).await?;
        if !r.ok() {
            return Err(self.fail(format!("streams answered {}: {}", r.status, r.error_message())));
        }
        let v = r.json().ok_or_else(|| self.fail("streams unreadable".into()))?;
        Ok(v["items"].as_array().cloned().unwrap_or_default())
    }

    /// Closes the receiver; `Ok(false)` when it was not there.
    pub async fn close(&self, stream_id: &str) -> Result<bool, PlayError> {
        let r = self.call("DELETE", &format!("/api/v1/receivers/{stream_id}"), None).await?;
        match r.status {
            200..=299 => Ok(true),
            404 => Ok(false),
            s => Err(self.fail(format!("close answered {s}: {}", r.error_message()))),
        }
    }
}

impl MediaApi<'_> {
    /// Starts pulling a source on the node (the same request again answers the running one).
    pub async fn open_source(&self, open: &cluster::wire::SourceOpen) -> Result<cluster::wire::SourceStatus, PlayError> {
        let body = serde_json::to_string(open).map_err(|e| PlayError::Internal(e.to_string()))?;
        let r = self.call("POST", "/api/v1/sources", Some(&body)).await?;
        match r.status {
            200..=299 => serde_json::from_slice(&r.body).map_err(|e| self.fail(format!("source answer unreadable: {e}"))),
            400 => Err(PlayError::BadRequest(r.error_message())),
            s => Err(self.fail(format!("source open answered {s}: {}", r.error_message()))),
        }
    }

    /// The node's pull sources and their state.
    pub async fn sources(&self) -> Result<Vec<cluster::wire::SourceStatus>, PlayError> {
        let r = self.call("GET", "/api/v1/sources", None).await?;
        if !r.ok() {
            return Err(self.fail(format!("sources answered {}: {}", r.status, r.error_message())));
        }
        serde_json::from_slice(&r.body).map_err(|e| self.fail(format!("sources unreadable: {e}")))
    }

    /// Stops a pull source; `Ok(false)` when it was not there.
    pub async fn close_source(&self, stream_id: &str) -> Result<bool, PlayError> {
        let r = self.call("DELETE", &format!("/api/v1/sources/{stream_id}"), None).await?;
        match r.status {
            200..=299 => Ok(true),
            404 => Ok(false),
            s => Err(self.fail(format!("source close answered {s}: {}", r.error_message()))),
        }
    }
}

/// Where players find a stream on `node`.
/// A snapshot may wait for the stream's first key frame (5 s) and a decode.
const SNAPSHOT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(12);

pub fn urls(node: &MediaNodeRecord, stream_id: &str) -> super::session::Urls {
    super::session::Urls {
        rtmp: node.rtmp_port.map(|p| format!("rtmp://{}:{p}/live/{stream_id}", node.public_ip)),
        http_flv: format!("{}/live/{stream_id}.flv", node.api_url.trim_end_matches('/')),
        fmp4: format!("{}/live/{stream_id}.mp4", node.api_url.trim_end_matches('/')),
        hls: format!("{}/live/{stream_id}.m3u8", node.api_url.trim_end_matches('/')),
    }
}
