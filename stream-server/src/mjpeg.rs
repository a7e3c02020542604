//! MJPEG server push (`GET /live/{stream_id}.mjpeg`): `multipart/x-mixed-replace`, one
//! `image/jpeg` part with its `Content-Length` per picture, which any browser plays as an
//! `<img src>`. One encoder per stream, shared by all its viewers, started by the first and
//! stopped with the last: an ffmpeg subprocess fed the stream's video as Annex B
//! (`media::annexb`) and asked for `mjpeg_fps` pictures a second (at most the source's), split
//! back into pictures by `media::jpeg::JpegSplitter`.
//!
//! The pictures go out through a `watch` channel: a viewer always gets the newest one when it
//! can take one, so a slow viewer skips pictures and costs the encoder and the others nothing,
//! and one that goes away mid-part (a broken pipe, which crashed the server this is modelled
//! on) only ends its own response.

use std::sync::{Arc, Weak};

use bytes::Bytes;
use media::annexb::AnnexbWriter;
use media::jpeg::JpegSplitter;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::watch;

use crate::config::StreamConfig;
use crate::stream::StreamEntry;

/// The part boundary (without its leading dashes).
pub const BOUNDARY: &str = "gbcframe";
/// Largest picture passed on.
const MAX_PICTURE: usize = 8 << 20;

/// A picture as every viewer sends it: its part head (boundary, type, length) and its JPEG,
/// made once per picture; a viewer sends clones of both (reference counts, no copy).
#[derive(Debug, Clone)]
pub struct Part {
    /// Counting from 1.
    pub number: u64,
    pub head: Bytes,
    pub jpeg: Bytes,
}

/// The line end after a part's JPEG.
pub const PART_END: &[u8] = b"\r\n";

pub type Picture = Option<Part>;

pub struct MjpegFeed {
    latest: watch::Sender<Picture>,
}

/// How the encoder is asked to make pictures.
#[derive(Debug, Clone)]
struct Encoder {
    ffmpeg: String,
    fps: f64,
    width: u32,
    quality: u32,
}

impl MjpegFeed {
    /// The stream's feed, started if no viewer holds one now.
    pub fn of(entry: &Arc<StreamEntry>, cfg: &StreamConfig) -> Arc<MjpegFeed> {
        let mut slot = entry.mjpeg.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(feed) = slot.upgrade() {
            return feed;
        }
        let feed = Arc::new(MjpegFeed { latest: watch::channel(None).0 });
        *slot = Arc::downgrade(&feed);
        // At most the source's rate: the encoder would repeat pictures to reach more.
        let source_fps = entry.snapshot().fps;
        let asked = f64::from(cfg.mjpeg_fps.max(1));
        let fps = source_fps.filter(|f| *f > 0.5).map_or(asked, |f| f.min(asked));
        let enc = Encoder { ffmpeg: cfg.ffmpeg_path.clone(), fps, width: cfg.mjpeg_width, quality: cfg.mjpeg_quality.clamp(2, 31) };
        tokio::spawn(run(Arc::downgrade(&feed), entry.clone(), enc));
        feed
    }

    /// The pictures from now on (the newest at once, if there is one).
    pub fn subscribe(&self) -> watch::Receiver<Picture> {
        let mut rx = self.latest.subscribe();
        rx.mark_changed();
        rx
    }
}

impl Part {
    pub fn new(number: u64, jpeg: Bytes) -> Self {
        let head = format!("--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n", jpeg.len());
        Part { number, head: Bytes::from(head), jpeg }
    }
}

/// The encoder task: reads the hub as a viewer and feeds ffmpeg until the stream ends, the
/// last viewer goes or ffmpeg fails.
async fn run(feed: Weak<MjpegFeed>, entry: Arc<StreamEntry>, enc: Encoder) {
    let mut sub = entry.hub.subscribe_when_ready().await;
    let mut annexb = AnnexbWriter::new();
    // The start (headers and the cached GOP from its key frame), then the live queue, until the
    // first key frame says which codec to decode.
    let mut first = Vec::new();
    for tag in std::mem::take(&mut sub.start) {
        first.extend(annexb.push(&tag));
    }
    while first.is_empty() {
        match sub.rx.recv().await {
            Ok(tag) => first.extend(annexb.push(&tag)),
            Err(RecvError::Lagged(_)) => continue,
            Err(RecvError::Closed) => return,
        }
        if feed.strong_count() == 0 || entry.cancel.is_cancelled() {
            return;
        }
    }
    let Some(format) = annexb.codec().and_then(crate::snapshot::raw_format) else { return };
    let mut filter = format!("fps={:.3}", enc.fps);
    if enc.width > 0 {
        filter.push_str(&format!(",scale={}:-2", enc.width));
    }
    // `fps` paces the output whatever rate the source has (pictures timed by their arrival).
    let spawned = crate::ffmpeg_pipe::live(&enc.ffmpeg, format)
        .args(["-vf", &filter, "-q:v", &enc.quality.to_string(), "-f", "mjpeg", "pipe:1"])
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(stream = %entry.id, error = %e, "MJPEG encoder could not start");
            return;
        }
    };
    let (Some(mut stdin), Some(mut stdout)) = (child.stdin.take(), child.stdout.take()) else { return };
    tracing::info!(stream = %entry.id, fps = enc.fps, "MJPEG encoder started");
    let pictures = async {
        let mut split = JpegSplitter::new(MAX_PICTURE);
        let mut buf = vec![0u8; 64 << 10];
        let mut n = 0u64;
        while let Ok(read) = stdout.read(&mut buf).await {
            if read == 0 {
                break;
            }
            for jpeg in split.push(&buf[..read]) {
                let Some(f) = feed.upgrade() else { return };
                n += 1;
                f.latest.send_replace(Some(Part::new(n, jpeg)));
            }
        }
    };
    let frames = async {
        for bytes in first {
            if stdin.write_all(&bytes).await.is_err() {
                return;
            }
        }
        loop {
            let tag = tokio::select! {
                _ = entry.cancel.cancelled() => return,
                r = sub.rx.recv() => r,
            };
            match tag {
                Ok(tag) => {
                    if feed.strong_count() == 0 {
                        return; // the last viewer went
                    }
                    if let Some(bytes) = annexb.push(&tag) {
                        if stdin.write_all(&bytes).await.is_err() {
                            return;
                        }
                    }
                }
                // Behind the hub: the encoder carries on from the next key frame.
                Err(RecvError::Lagged(_)) => annexb.restart(),
                Err(RecvError::Closed) => return,
            }
        }
    };
    // Whichever ends first ends the encoder (killed with the child on drop).
    tokio::select! {
        _ = pictures => {}
        _ = frames => {}
    }
    tracing::info!(stream = %entry.id, "MJPEG encoder stopped");
}
