//! Snapshots of any live stream (`GET /snap/{stream_id}.jpg`): the JPEG of the stream's latest
//! key frame, H.264 or H.265, decoded by an ffmpeg subprocess as ZLMediaKit does (no decoder
//! linked into the node; a crash of one costs one picture). The key frame and its parameter sets
//! come from the hub's GOP cache as Annex B (`media::annexb`).
//!
//! One decode per key frame however many ask: the stream keeps its latest picture with the key
//! frame's timestamp, and askers of the same key frame share one decode (a `OnceCell`). Decodes
//! across the node are bounded by `snapshot_concurrency`; more wait their turn.

use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use media::annexb::AnnexbWriter;
use media::es::Codec;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{OnceCell, Semaphore};

use crate::stream::StreamEntry;

/// Largest picture read back from the decoder.
const MAX_JPEG: usize = 16 << 20;
/// How long a stream opened a moment ago may take to show its first key frame.
pub const KEY_FRAME_WAIT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapError {
    #[error("the stream has shown no key frame yet")]
    NoKeyFrame,
    #[error("the stream's video is not H.264 or H.265")]
    Codec,
    #[error("the decoder failed: {0}")]
    Decoder(String),
    #[error("the decoder took longer than {0} ms")]
    Timeout(u64),
}

/// The picture a stream keeps: the key frame's timestamp and its (shared) decode.
pub type Picture = (u32, Arc<OnceCell<Result<Bytes, SnapError>>>);

/// The node's snapshot maker.
pub struct Snapshots {
    ffmpeg: String,
    permits: Semaphore,
    timeout: Duration,
    /// Decodes run (a figure for /metrics: askers minus this were served from a shared one).
    pub decodes: AtomicU64,
    pub served: AtomicU64,
}

impl Snapshots {
    pub fn new(ffmpeg: &str, concurrency: usize, timeout: Duration) -> Self {
        Self {
            ffmpeg: ffmpeg.to_owned(),
            permits: Semaphore::new(concurrency.max(1)),
            timeout,
            decodes: AtomicU64::new(0),
            served: AtomicU64::new(0),
        }
    }

    /// The JPEG of `entry`'s latest key frame (waiting a moment for a first one); for a source
    /// that sends pictures, its latest picture as it came.
    pub async fn jpeg(&self, entry: &Arc<StreamEntry>) -> Result<Bytes, SnapError> {
        if let Some(pulled) = entry.pull.as_ref().filter(|p| p.native_jpeg.load(Ordering::Relaxed)) {
            let mut pictures = pulled.pictures.subscribe();
            let _ = tokio::time::timeout(KEY_FRAME_WAIT, pictures.wait_for(Option::is_some)).await;
            let jpeg = pulled.latest_jpeg().ok_or(SnapError::NoKeyFrame)?;
            self.served.fetch_add(1, Ordering::Relaxed);
            return Ok(jpeg);
        }
        let (header, key) = entry.hub.key_frame_within(KEY_FRAME_WAIT).await.ok_or(SnapError::NoKeyFrame)?;
        let cell = {
            let mut slot = entry.picture.lock().unwrap_or_else(|e| e.into_inner());
            match slot.as_ref() {
                Some((ts, cell)) if *ts == key.timestamp => cell.clone(),
                _ => {
                    let cell = Arc::new(OnceCell::new());
                    *slot = Some((key.timestamp, cell.clone()));
                    cell
                }
            }
        };
        self.served.fetch_add(1, Ordering::Relaxed);
        cell.get_or_init(|| async {
            let mut w = AnnexbWriter::new();
            let _ = w.push(&header);
            let annexb = w.push(&key).ok_or(SnapError::Codec)?;
            let codec = w.codec().ok_or(SnapError::Codec)?;
            let _permit = self.permits.acquire().await.map_err(|_| SnapError::Decoder("shutting down".into()))?;
            self.decodes.fetch_add(1, Ordering::Relaxed);
            decode(&self.ffmpeg, codec, annexb, self.timeout).await
        })
        .await
        .clone()
    }
}

/// ffmpeg's name for a raw elementary stream of `codec`.
pub fn raw_format(codec: Codec) -> Option<&'static str> {
    match codec {
        Codec::H264 => Some("h264"),
        Codec::H265 => Some("hevc"),
        _ => None,
    }
}

/// One picture out of `annexb` (a key frame with its parameter sets) as JPEG.
async fn decode(ffmpeg: &str, codec: Codec, annexb: Bytes, timeout: Duration) -> Result<Bytes, SnapError> {
    let format = raw_format(codec).ok_or(SnapError::Codec)?;
    let mut child = tokio::process::Command::new(ffmpeg)
        .args(["-hide_banner", "-loglevel", "error", "-f", format, "-i", "pipe:0", "-frames:v", "1", "-q:v", "3"])
        .args(["-f", "image2pipe", "-c:v", "mjpeg", "pipe:1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| SnapError::Decoder(format!("{ffmpeg}: {e}")))?;
    let (mut stdin, stdout, stderr) = (child.stdin.take(), child.stdout.take(), child.stderr.take());
    let work = async {
        // Written and read at once: neither side waits on a full pipe.
        let feed = async {
            if let Some(s) = stdin.as_mut() {
                let _ = s.write_all(&annexb).await;
            }
            drop(stdin.take());
        };
        let read = async {
            let mut out = Vec::new();
            if let Some(s) = stdout {
                let _ = s.take(MAX_JPEG as u64 + 1).read_to_end(&mut out).await;
            }
            out
        };
        let errors = async {
            let mut text = String::new();
            if let Some(s) = stderr {
                let _ = s.take(4096).read_to_string(&mut text).await;
            }
            text
        };
        let ((), out, text) = tokio::join!(feed, read, errors);
        let status = child.wait().await.map_err(|e| SnapError::Decoder(e.to_string()))?;
        match (status.success(), out.len()) {
            (true, 4..=MAX_JPEG) if out.starts_with(&[0xff, 0xd8]) => Ok(Bytes::from(out)),
            _ => Err(SnapError::Decoder(format!("{status}: {}", text.trim()))),
        }
    };
    tokio::time::timeout(timeout, work).await.map_err(|_| SnapError::Timeout(timeout.as_millis() as u64))?
}
