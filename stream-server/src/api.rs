//! Control API (ZLMediaKit-like, REST) and live playback: HTTP-FLV and fragmented MP4. `docs/openapi-stream.yaml` documents it.
//! Errors are `{"code":…, "message":…}`.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use cluster::wire::{ReceiverAnswer, ReceiverConnect, ReceiverOpen};
use futures::StreamExt;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;

use crate::hub::ViewerGate;
use crate::node::{Node, OpenError};
use crate::stream::Transport;

use kit::http::json_body;
pub use kit::http::ApiError;

impl From<OpenError> for ApiError {
    fn from(e: OpenError) -> Self {
        let status = match e {
            OpenError::BadStreamId | OpenError::SsrcRequired => StatusCode::BAD_REQUEST,
            OpenError::Exists(_) | OpenError::SsrcInUse(_) => StatusCode::CONFLICT,
            OpenError::Full(_) | OpenError::NoPort => StatusCode::SERVICE_UNAVAILABLE,
            OpenError::Io(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.to_string())
    }
}

type ApiResult<T> = Result<T, ApiError>;

fn parse_peer(p: Option<&str>) -> ApiResult<Option<SocketAddr>> {
    p.map(|p| p.parse::<SocketAddr>().map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, format!("peer must be ip:port, not {p:?}"))))
        .transpose()
}

async fn open(
    State(node): State<Arc<Node>>,
    body: Result<Json<ReceiverOpen>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<impl IntoResponse> {
    let b = json_body(body)?;
    let peer = parse_peer(b.peer.as_deref())?;
    let opened = node.open(&b.stream_id, b.ssrc, b.transport.unwrap_or(Transport::Udp), peer)?;
    if let Some(e) = node.get(&b.stream_id) {
        if let Some(secs) = b.no_viewer_secs {
            e.no_viewer_secs.store(secs, std::sync::atomic::Ordering::Relaxed);
        }
        if let Some(hold) = b.push_holds_open {
            e.push_holds_open.store(hold, std::sync::atomic::Ordering::Relaxed);
        }
        // A stream opened again (same parameters) is already being written.
        if b.record && node.downloads.status(&b.stream_id).is_none() {
            if let Err(err) = node.downloads.start(&e) {
                node.close(&b.stream_id);
                return Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("cannot write the download: {err}")));
            }
        }
    }
    Ok(Json(opened))
}

async fn connect(
    State(node): State<Arc<Node>>,
    Path(id): Path<String>,
    body: Result<Json<ReceiverConnect>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<impl IntoResponse> {
    let b = json_body(body)?;
    let peer: SocketAddr =
        b.peer.parse().map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, format!("peer must be ip:port, not {:?}", b.peer)))?;
    if node.connect(&id, peer) {
        Ok(Json(json!({"stream_id": id, "peer": peer.to_string()})))
    } else {
        Err(ApiError::new(StatusCode::NOT_FOUND, format!("no tcp-active receiver {id}")))
    }
}

/// `POST /receivers/{id}/answer`: what the camera's SDP answer says — its own SSRC (accepted from
/// now on, with ours) and, for TCP active, its address.
async fn answer(
    State(node): State<Arc<Node>>,
    Path(id): Path<String>,
    body: Result<Json<ReceiverAnswer>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<impl IntoResponse> {
    let b = json_body(body)?;
    let peer = parse_peer(b.peer.as_deref())?;
    let entry = node.get(&id).ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no receiver {id}")))?;
    if let Some(s) = b.ssrc {
        entry.answered_ssrc.store(u64::from(s), std::sync::atomic::Ordering::Relaxed);
    }
    if let Some(p) = peer {
        if !node.connect(&id, p) {
            return Err(ApiError::new(StatusCode::BAD_REQUEST, format!("{id} is not a tcp-active receiver; peer is for those")));
        }
    }
    Ok(Json(json!({"stream_id": id, "ssrc": entry.answered_ssrc(), "peer": peer.map(|p| p.to_string())})))
}

/// `POST /receivers/{id}/timeline`: a playback's steering, from the sip-server driving it.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TimelineBody {
    /// Playback speed (0.0625–64): output time runs at real time whatever the speed.
    scale: Option<f64>,
    /// Count the position from the next frame (a seek, the start).
    #[serde(default)]
    mark: bool,
    /// Paused: no media is expected, so the no-data timeout waits.
    paused: Option<bool>,
}

async fn timeline(
    State(node): State<Arc<Node>>,
    Path(id): Path<String>,
    body: Result<Json<TimelineBody>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<impl IntoResponse> {
    use std::sync::atomic::Ordering;
    let b = json_body(body)?;
    let entry = node.get(&id).ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no receiver {id}")))?;
    if let Some(scale) = b.scale {
        if !(0.0625..=64.0).contains(&scale) {
            return Err(ApiError::new(StatusCode::BAD_REQUEST, format!("scale must be 0.0625-64, not {scale}")));
        }
        entry.steer.scale_milli.store((scale * 1000.0).round() as u32, Ordering::Relaxed);
    }
    if b.mark {
        entry.steer.marks.fetch_add(1, Ordering::Relaxed);
    }
    if let Some(p) = b.paused {
        entry.steer.paused.store(p, Ordering::Relaxed);
    }
    let steer = &entry.steer;
    Ok(Json(json!({
        "stream_id": id,
        "scale": f64::from(steer.scale_milli.load(Ordering::Relaxed)) / 1000.0,
        "marks": steer.marks.load(Ordering::Relaxed),
        "paused": steer.paused.load(Ordering::Relaxed),
    })))
}

async fn close(State(node): State<Arc<Node>>, Path(id): Path<String>) -> ApiResult<impl IntoResponse> {
    if node.close(&id) {
        Ok(Json(json!({"stream_id": id, "closed": true})))
    } else {
        Err(ApiError::new(StatusCode::NOT_FOUND, format!("no stream {id}")))
    }
}

async fn list(State(node): State<Arc<Node>>) -> impl IntoResponse {
    let items = node.list();
    Json(json!({"node": node.id, "total": items.len(), "items": items}))
}

async fn get_stream(State(node): State<Arc<Node>>, Path(id): Path<String>) -> ApiResult<impl IntoResponse> {
    node.get(&id).map(|e| Json(Node::view(&e))).ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no stream {id}")))
}

async fn node_info(State(node): State<Arc<Node>>) -> impl IntoResponse {
    Json(node.record(0.0))
}

/// What `GET /live/{file}` asks for.
#[derive(Debug, PartialEq, Eq)]
enum LiveForm<'a> {
    /// `{id}.flv`
    HttpFlv(&'a str),
    /// `{id}.mp4`: fragmented MP4, live
    Fmp4(&'a str),
    /// `{id}.m3u8`
    HlsPlaylist(&'a str),
    /// `{id}.{version}.init.mp4`
    HlsInit(&'a str, u32),
    /// `{id}.{seq}.m4s`
    HlsSegment(&'a str, u64),
    /// `{id}.mjpeg`: MJPEG server push
    Mjpeg(&'a str),
}

impl<'a> LiveForm<'a> {
    fn parse(file: &'a str) -> Option<Self> {
        if let Some(rest) = file.strip_suffix(".init.mp4") {
            let (id, v) = rest.rsplit_once('.')?;
            return Some(LiveForm::HlsInit(id, v.parse().ok()?));
        }
        if let Some(rest) = file.strip_suffix(".m4s") {
            let (id, seq) = rest.rsplit_once('.')?;
            return Some(LiveForm::HlsSegment(id, seq.parse().ok()?));
        }
        let (id, ext) = file.rsplit_once('.')?;
        match ext {
            "flv" => Some(LiveForm::HttpFlv(id)),
            "mp4" => Some(LiveForm::Fmp4(id)),
            "m3u8" => Some(LiveForm::HlsPlaylist(id)),
            "mjpeg" => Some(LiveForm::Mjpeg(id)),
            _ => None,
        }
        .filter(|f| !f.stream_id().is_empty())
    }

    fn stream_id(&self) -> &'a str {
        match self {
            LiveForm::HttpFlv(id)
            | LiveForm::Fmp4(id)
            | LiveForm::HlsPlaylist(id)
            | LiveForm::HlsInit(id, _)
            | LiveForm::HlsSegment(id, _)
            | LiveForm::Mjpeg(id) => id,
        }
    }
}

/// `GET /live/{stream_id}.flv` (HTTP-FLV), `.mp4` (fragmented MP4 for Media Source
/// Extensions) or `.m3u8` (HLS, with its `.init.mp4` and `.m4s` segments).
async fn live(State(node): State<Arc<Node>>, Path(file): Path<String>) -> ApiResult<Response> {
    let form = LiveForm::parse(&file)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "expected /live/{stream_id}.flv, .mp4, .m3u8 or .mjpeg"))?;
    let id = form.stream_id();
    let entry = node.get(id).ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no stream {id}")))?;
    match form {
        LiveForm::HttpFlv(_) => http_flv(entry).await,
        LiveForm::Mjpeg(_) => Ok(mjpeg(&node, &entry)),
        LiveForm::Fmp4(_) => fmp4(entry).await,
        LiveForm::HlsPlaylist(id) => hls_playlist(&entry, id).await,
        LiveForm::HlsInit(_, version) => {
            let init = crate::hls::Hls::running(&entry).and_then(|h| h.init(version));
            let init = init.ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no init segment {version} of {id}")))?;
            Ok(hls_response("video/mp4", "max-age=3600", Body::from(init)))
        }
        LiveForm::HlsSegment(_, seq) => {
            let seg = crate::hls::Hls::running(&entry).and_then(|h| h.segment(seq));
            let seg = seg.ok_or_else(|| {
                ApiError::new(StatusCode::NOT_FOUND, format!("segment {seq} of {id} is not (or no longer) in the window"))
            })?;
            // The fragments as the feed made them, one after another: no copy into one buffer.
            let parts = futures::stream::iter(seg.parts.into_iter().map(Ok::<_, Infallible>));
            let mut r = hls_response("video/mp4", "max-age=60", Body::from_stream(parts));
            r.headers_mut().insert(header::CONTENT_LENGTH, seg.bytes.into());
            Ok(r)
        }
    }
}

/// MJPEG server push: a part per picture, the newest whenever this viewer can take one: the
/// camera's own pictures for a source that sends JPEG (passed through, not re-encoded), else
/// from the stream's shared encoder.
fn mjpeg(node: &Node, entry: &Arc<crate::stream::StreamEntry>) -> Response {
    let native = entry.pull.as_ref().filter(|p| p.native_jpeg.load(std::sync::atomic::Ordering::Relaxed));
    // The viewer holds the feed (the encoder stops when the last response is dropped) or its
    // place in the passthrough count.
    let (rx, hold) = match native {
        Some(p) => {
            let mut rx = p.pictures.subscribe();
            rx.mark_changed();
            (rx, MjpegHold::Passthrough(crate::sources::MjpegViewer::new(p)))
        }
        None => {
            let feed = crate::mjpeg::MjpegFeed::of(entry, &node.cfg);
            (feed.subscribe(), MjpegHold::Encoder(feed))
        }
    };
    let parts = futures::stream::unfold((rx, hold), |(mut rx, feed)| async move {
        loop {
            rx.changed().await.ok()?;
            let picture = rx.borrow_and_update().clone();
            if let Some(p) = picture {
                let chunks = [p.head, p.jpeg, Bytes::from_static(crate::mjpeg::PART_END)].map(Ok::<_, Infallible>);
                return Some((futures::stream::iter(chunks), (rx, feed)));
            }
        }
    })
    .flatten();
    Response::builder()
        .header(header::CONTENT_TYPE, format!("multipart/x-mixed-replace; boundary={}", crate::mjpeg::BOUNDARY))
        .header(header::CACHE_CONTROL, "no-cache, no-store")
        .header("X-Content-Type-Options", "nosniff")
        .body(Body::from_stream(parts))
        .unwrap_or_default()
}

/// What keeps an MJPEG viewer's pictures coming.
enum MjpegHold {
    Encoder(#[allow(dead_code)] Arc<crate::mjpeg::MjpegFeed>),
    Passthrough(#[allow(dead_code)] crate::sources::MjpegViewer),
}

/// `GET /snap/{id}.jpg`: the JPEG of the stream's latest key frame.
async fn snap(State(node): State<Arc<Node>>, Path(file): Path<String>) -> ApiResult<Response> {
    let id = file.strip_suffix(".jpg").ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "expected /snap/{stream_id}.jpg"))?;
    let entry = node.get(id).ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no stream {id}")))?;
    let jpeg = node.snapshots.jpeg(&entry).await.map_err(|e| {
        let status = match e {
            crate::snapshot::SnapError::NoKeyFrame => StatusCode::SERVICE_UNAVAILABLE,
            crate::snapshot::SnapError::Codec => StatusCode::UNPROCESSABLE_ENTITY,
            _ => StatusCode::BAD_GATEWAY,
        };
        ApiError::new(status, format!("no picture of {id}: {e}"))
    })?;
    Ok(Response::builder()
        .header(header::CONTENT_TYPE, "image/jpeg")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from(jpeg))
        .unwrap_or_default())
}

/// The HLS playlist, started with the first request; waits until it lists three segments (the
/// first from the GOP cache, so about two GOPs).
async fn hls_playlist(entry: &Arc<crate::stream::StreamEntry>, id: &str) -> ApiResult<Response> {
    let hls = crate::hls::Hls::of(entry);
    let wait = crate::hub::VIDEO_WAIT + std::time::Duration::from_secs(12);
    match hls.playlist(id, wait).await {
        Some(text) => Ok(hls_response("application/vnd.apple.mpegurl", "no-cache", Body::from(text))),
        None => Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, format!("stream {id} has no complete HLS segment yet"))),
    }
}

fn hls_response(content_type: &'static str, cache: &'static str, body: Body) -> Response {
    Response::builder()
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CACHE_CONTROL, cache)
        .header(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")
        .body(body)
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// HTTP-FLV: the GOP cache, then live tags.
async fn http_flv(entry: Arc<crate::stream::StreamEntry>) -> ApiResult<Response> {
    let mut sub = entry.hub.subscribe_when_ready().await;
    let mut gate = ViewerGate::new(&sub);
    let header = Bytes::copy_from_slice(&media::flv::file_header(sub.has_audio, sub.has_video || !sub.has_audio));
    let start: Vec<Bytes> = std::iter::once(header).chain(std::mem::take(&mut sub.start).into_iter().map(|t| t.wire)).collect();
    let live = Live { start, queue: entry.hub.queue_len(), cancel: entry.cancel.clone(), stream_id: entry.id.clone(), what: "HTTP-FLV" };
    Ok(live.response("video/x-flv", sub.rx, move |tag| gate.pass(&tag).then_some(tag.wire)))
}

/// Fragmented MP4: the init segment and the fragments since the last key frame, then live
/// fragments, from the stream's one fMP4 muxer (`fmp4_feed`).
async fn fmp4(entry: Arc<crate::stream::StreamEntry>) -> ApiResult<Response> {
    let feed = crate::fmp4_feed::Fmp4Feed::of(&entry);
    // The hub's own wait for video, and a little more for its first frames.
    let wait = crate::hub::VIDEO_WAIT + std::time::Duration::from_secs(2);
    let Some(sub) = feed.subscribe(wait).await else {
        return Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, format!("stream {} has no H.264, H.265 or AAC yet", entry.id)));
    };
    let start = sub.start.into_iter().map(|s| s.bytes).collect();
    let live = Live { start, queue: feed.queue_len(), cancel: entry.cancel.clone(), stream_id: entry.id.clone(), what: "fMP4" };
    // The body holds the feed: its muxer runs while a viewer does.
    Ok(live.response("video/mp4", sub.rx, move |seg| {
        let _viewer_of = &feed;
        Some(seg.bytes)
    }))
}

/// A live HTTP response: what a player starts with, then a hub-like queue, until the viewer or
/// the stream goes. A viewer a whole queue behind is dropped and slows nobody.
struct Live {
    start: Vec<Bytes>,
    queue: usize,
    cancel: tokio_util::sync::CancellationToken,
    stream_id: String,
    /// The form, for the log.
    what: &'static str,
}

impl Live {
    /// `bytes` turns each queued item into what is written (`None`: skipped).
    fn response<T: Clone + Send + 'static>(
        self,
        content_type: &'static str,
        mut rx: tokio::sync::broadcast::Receiver<T>,
        mut bytes: impl FnMut(T) -> Option<Bytes> + Send + 'static,
    ) -> Response {
        let Live { start, queue, cancel, stream_id, what } = self;
        let body = async_stream(move |tx| async move {
            for b in start {
                if tx.send(b).await.is_err() {
                    return;
                }
            }
            loop {
                let item = tokio::select! {
                    _ = cancel.cancelled() => return,
                    r = rx.recv() => r,
                };
                match item {
                    Ok(item) => {
                        let Some(b) = bytes(item) else { continue };
                        tokio::select! {
                            // The write first: the lag watch (a timer) is armed only if it blocks.
                            biased;
                            r = tx.send(b) => if r.is_err() { return },
                            _ = crate::hub::lagging(&rx, queue) => {
                                tracing::info!(stream = %stream_id, "{what} viewer stalled a whole queue behind: dropped");
                                return;
                            }
                        }
                    }
                    Err(RecvError::Lagged(n)) => {
                        tracing::info!(stream = %stream_id, "{what} viewer {n} behind: dropped");
                        return;
                    }
                    Err(RecvError::Closed) => return,
                }
            }
        });
        Response::builder()
            .header(header::CONTENT_TYPE, content_type)
            .header(header::CACHE_CONTROL, "no-cache")
            .header(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")
            .body(body)
            .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
    }
}

/// A response body fed by a task through a small channel: a viewer whose socket is slow blocks
/// only its own task, which then lags on the hub queue and is dropped.
fn async_stream<F, Fut>(f: F) -> Body
where
    F: FnOnce(tokio::sync::mpsc::Sender<Bytes>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(8);
    tokio::spawn(f(tx));
    let stream = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx)) });
    Body::from_stream(stream)
}

async fn metrics(State(node): State<Arc<Node>>) -> impl IntoResponse {
    let streams = node.list();
    let mut out = String::new();
    let mut gauge = |name: &str, help: &str, v: f64| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
    };
    gauge("gbc_media_streams", "Streams open on this node.", streams.len() as f64);
    gauge("gbc_media_viewers", "Players attached (HTTP-FLV and RTMP).", streams.iter().map(|s| s.viewers as f64).sum());
    gauge("gbc_media_ingest_kbps", "Ingest bitrate over the last second.", streams.iter().map(|s| s.stats.bitrate_kbps as f64).sum());
    gauge("gbc_media_packets_lost", "RTP packets lost, streams currently open.", streams.iter().map(|s| s.stats.lost as f64).sum());
    gauge("gbc_media_packets", "RTP packets received, streams currently open.", streams.iter().map(|s| s.stats.packets as f64).sum());
    let sources = node.sources();
    let playing = sources.iter().filter(|s| s.state == cluster::wire::SourceState::Playing).count();
    gauge("gbc_media_sources", "Pull sources on this node.", sources.len() as f64);
    gauge("gbc_media_sources_playing", "Pull sources whose camera is sending.", playing as f64);
    gauge("gbc_media_source_failures", "Failed connections of the pull sources open now.", sources.iter().map(|s| s.failures as f64).sum());
    gauge("gbc_media_source_pictures", "Pictures the pull sources open now have passed.", sources.iter().map(|s| s.pictures as f64).sum());
    let mut counter = |name: &str, help: &str, v: u64| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
    };
    use std::sync::atomic::Ordering::Relaxed;
    counter("gbc_media_snapshots_total", "Snapshots served.", node.snapshots.served.load(Relaxed));
    counter(
        "gbc_media_snapshot_decodes_total",
        "Snapshot decodes run (one per key frame however many ask).",
        node.snapshots.decodes.load(Relaxed),
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out)
}

async fn list_downloads(State(node): State<Arc<Node>>) -> impl IntoResponse {
    let items = node.downloads.list();
    Json(json!({"total": items.len(), "items": items}))
}

async fn download_status(State(node): State<Arc<Node>>, Path(id): Path<String>) -> ApiResult<impl IntoResponse> {
    let status = node.downloads.status(&id).ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no download {id}")))?;
    Ok(Json(status))
}

/// `DELETE /api/v1/downloads/{id}`: cancels a running download (closing its receiver) or
/// deletes a finished one's file.
async fn delete_download(State(node): State<Arc<Node>>, Path(id): Path<String>) -> ApiResult<impl IntoResponse> {
    let running = node.downloads.status(&id).is_some_and(|s| s.state == crate::downloads::DownloadState::Writing);
    if !node.downloads.remove(&id) {
        return Err(ApiError::new(StatusCode::NOT_FOUND, format!("no download {id}")));
    }
    if running {
        node.close(&id);
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /downloads/{id}.mp4`: a finished download, whole or by a `Range`.
async fn download_file(State(node): State<Arc<Node>>, Path(file): Path<String>, headers: header::HeaderMap) -> ApiResult<Response> {
    let not_found = || ApiError::new(StatusCode::NOT_FOUND, format!("no finished download {file}"));
    let id = file.strip_suffix(".mp4").ok_or_else(not_found)?;
    let path = node.downloads.file(id).ok_or_else(not_found)?;
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    crate::file_serve::serve(&path, range, &format!("{id}.mp4")).await.ok_or_else(not_found)
}

impl From<crate::sources::SourceOpenError> for ApiError {
    fn from(e: crate::sources::SourceOpenError) -> Self {
        match e {
            crate::sources::SourceOpenError::Open(o) => o.into(),
            other => ApiError::new(StatusCode::BAD_REQUEST, other.to_string()),
        }
    }
}

/// `POST /api/v1/sources`: pull a camera's video as a stream.
async fn open_source(
    State(node): State<Arc<Node>>,
    body: Result<Json<cluster::wire::SourceOpen>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<impl IntoResponse> {
    Ok(Json(node.open_source(json_body(body)?)?))
}

async fn list_sources(State(node): State<Arc<Node>>) -> impl IntoResponse {
    Json(node.sources())
}

fn source_of(node: &Node, id: &str) -> ApiResult<cluster::wire::SourceStatus> {
    node.get(id)
        .and_then(|e| e.pull.as_ref().map(|p| p.status()))
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no source {id}")))
}

async fn get_source(State(node): State<Arc<Node>>, Path(id): Path<String>) -> ApiResult<impl IntoResponse> {
    Ok(Json(source_of(&node, &id)?))
}

async fn close_source(State(node): State<Arc<Node>>, Path(id): Path<String>) -> ApiResult<impl IntoResponse> {
    let status = source_of(&node, &id)?;
    node.close(&id);
    Ok(Json(status))
}

pub fn router(node: Arc<Node>) -> Router {
    let mut api = Router::new()
        .route("/api/v1/receivers", post(open))
        .route("/api/v1/receivers/{id}", axum::routing::delete(close))
        .route("/api/v1/receivers/{id}/connect", post(connect))
        .route("/api/v1/receivers/{id}/answer", post(answer))
        .route("/api/v1/receivers/{id}/timeline", post(timeline))
        .route("/api/v1/streams", get(list))
        .route("/api/v1/streams/{id}", get(get_stream).delete(close))
        .route("/api/v1/node", get(node_info))
        .route("/api/v1/sources", get(list_sources).post(open_source))
        .route("/api/v1/sources/{id}", get(get_source).delete(close_source))
        .route("/api/v1/downloads", get(list_downloads))
        .route("/api/v1/downloads/{id}", get(download_status).delete(delete_download))
        .with_state(node.clone());
    if !node.cfg.api_token.is_empty() {
        api = api.layer(middleware::from_fn_with_state(Arc::new(node.cfg.api_token.clone()), kit::http::require_token));
    }
    Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/metrics", get(metrics))
        .route("/live/{file}", get(live))
        .route("/downloads/{file}", get(download_file))
        .route("/snap/{file}", get(snap))
        .with_state(node)
        .merge(api)
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such endpoint") })
}

#[cfg(test)]
mod tests {
    use super::LiveForm;

    #[test]
    fn live_file_names_read_as_their_forms() {
        assert_eq!(LiveForm::parse("a_b.flv"), Some(LiveForm::HttpFlv("a_b")));
        assert_eq!(LiveForm::parse("a_b.mp4"), Some(LiveForm::Fmp4("a_b")));
        assert_eq!(LiveForm::parse("a_b.m3u8"), Some(LiveForm::HlsPlaylist("a_b")));
        assert_eq!(LiveForm::parse("a_b.3.init.mp4"), Some(LiveForm::HlsInit("a_b", 3)));
        assert_eq!(LiveForm::parse("a.b.17.m4s"), Some(LiveForm::HlsSegment("a.b", 17)));
        assert_eq!(LiveForm::parse("a_b.mjpeg"), Some(LiveForm::Mjpeg("a_b")));
        for bad in ["a_b", "a_b.ts", ".flv", ".mjpeg", "a_b.x.m4s", "a_b.init.mp4", "a_b.-1.m4s", "a_b.99999999999999999999999.m4s"] {
            assert_eq!(LiveForm::parse(bad), None, "{bad}");
        }
    }
}
