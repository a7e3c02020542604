//! A JPEG source encoded to H.264 (a source opened with `h264`), so it plays as HTTP-FLV, RTMP
//! and in the browser like any stream: the camera's pictures go into an ffmpeg subprocess
//! (libx264, `zerolatency`, a key frame every `source_h264_gop_secs`) whose FLV output is read
//! back by `media::flv::FlvReader` and published into the stream's hub.
//!
//! The encoder takes the newest picture whenever it can take one (a `watch` channel), so an
//! encoder slower than the camera drops pictures instead of queueing them. If ffmpeg dies it is
//! started again, and the output timeline runs on from where it was.

use std::sync::Arc;
use std::time::Duration;

use media::flv::FlvReader;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::config::StreamConfig;
use crate::sources::Pulled;
use crate::stream::StreamEntry;

/// Largest FLV tag taken from the encoder.
const MAX_TAG: usize = 8 << 20;
/// The gap put between the last tag of an encoder that died and the first of the next.
const SPLICE_MS: u32 = 100;

/// Encodes until the stream is closed.
pub async fn run(entry: Arc<StreamEntry>, pulled: Arc<Pulled>, cfg: StreamConfig) {
    let mut next_ts: u32 = 0;
    while !entry.cancel.is_cancelled() {
        let reason = encode(&entry, &pulled, &cfg, &mut next_ts).await;
        if entry.cancel.is_cancelled() {
            break;
        }
        tracing::warn!(stream = %entry.id, %reason, "H.264 encoder of the source stopped; starting it again");
        tokio::select! {
            _ = entry.cancel.cancelled() => break,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// One encoder process: returns why it ended. `next_ts` is where its output starts on the
/// stream's timeline; on return, where the next encoder's starts.
async fn encode(entry: &Arc<StreamEntry>, pulled: &Arc<Pulled>, cfg: &StreamConfig, next_ts: &mut u32) -> String {
    let mut pictures = pulled.pictures.subscribe();
    // Wait for the first picture before starting a process for it.
    tokio::select! {
        _ = entry.cancel.cancelled() => return "closed".into(),
        r = pictures.wait_for(Option::is_some) => if r.is_err() { return "closed".into() },
    }
    pictures.mark_changed();
    let gop = format!("expr:gte(t,n_forced*{})", cfg.source_h264_gop_secs.max(1));
    // Pictures are timed by their arrival: the camera's rate, whatever it is.
    let spawned = crate::ffmpeg_pipe::live(&cfg.ffmpeg_path, "mjpeg")
        // x264 wants even sizes and 4:2:0; cameras send 4:2:2 JPEGs of any size.
        .args(["-vf", "scale=trunc(iw/2)*2:trunc(ih/2)*2,format=yuv420p", "-fps_mode", "vfr"])
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-bf", "0", "-force_key_frames", &gop])
        .args(["-f", "flv", "pipe:1"])
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => return format!("{}: {e}", cfg.ffmpeg_path),
    };
    let (Some(mut stdin), Some(mut stdout)) = (child.stdin.take(), child.stdout.take()) else { return "no pipes".into() };
    let offset = *next_ts;
    let frames = async {
        loop {
            if pictures.changed().await.is_err() {
                return "the source closed".to_string();
            }
            let jpeg = pictures.borrow_and_update().as_ref().map(|p| p.jpeg.clone());
            if let Some(jpeg) = jpeg {
                if let Err(e) = stdin.write_all(&jpeg).await {
                    return format!("writing to the encoder: {e}");
                }
            }
        }
    };
    let tags = async {
        let mut reader = FlvReader::new(MAX_TAG);
        let mut buf = vec![0u8; 64 << 10];
        loop {
            let n = match stdout.read(&mut buf).await {
                Ok(0) => return "the encoder exited".to_string(),
                Ok(n) => n,
                Err(e) => return format!("reading the encoder: {e}"),
            };
            let tags = match reader.push(&buf[..n]) {
                Ok(t) => t,
                Err(e) => return format!("the encoder's output: {e}"),
            };
            for tag in tags {
                let ts = tag.timestamp.saturating_add(offset);
                *next_ts = (*next_ts).max(ts.saturating_add(SPLICE_MS));
                let tag = if offset == 0 { tag } else { FlvReader::retimed(&tag, ts) };
                entry.hub.publish(tag);
            }
        }
    };
    tokio::select! {
        _ = entry.cancel.cancelled() => "closed".into(),
        r = frames => r,
        r = tags => r,
    }
}
