//! RTMP publish of a stream to the configured target (`rtmp_push_url`), through the shared
//! `kit::rtmp` publisher. The pusher is one more subscriber of the stream's hub; if the target
//! drops or falls behind, it reconnects with backoff and starts again on a key frame.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;
use kit::rtmp::RtmpPublisher;
use tokio::sync::broadcast::error::RecvError;

use crate::hub::ViewerGate;
use crate::node::Node;
use crate::stream::StreamEntry;

pub fn spawn(node: &Arc<Node>, entry: &Arc<StreamEntry>) {
    let template = node.cfg.rtmp_push_url.trim();
    if template.is_empty() {
        return;
    }
    let url = template.replace("{stream_id}", &entry.id);
    let entry = entry.clone();
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(500);
        entry.pushers.fetch_add(1, Ordering::Relaxed);
        loop {
            let started = std::time::Instant::now();
            let r = tokio::select! {
                _ = entry.cancel.cancelled() => break,
                r = publish(&url, &entry) => r,
            };
            entry.pushing.store(false, Ordering::Relaxed);
            if let Err(e) = r {
                tracing::warn!(stream = %entry.id, %url, "RTMP push: {e:#}; retrying in {backoff:?}");
            }
            if started.elapsed() > Duration::from_secs(10) {
                backoff = Duration::from_millis(500);
            }
            tokio::select! {
                _ = entry.cancel.cancelled() => break,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(30));
        }
        entry.pushers.fetch_sub(1, Ordering::Relaxed);
    });
}

async fn publish(url: &str, entry: &StreamEntry) -> anyhow::Result<()> {
    let mut c = RtmpPublisher::connect(url, Duration::from_secs(5)).await?;
    tracing::info!(stream = %entry.id, %url, "RTMP push publishing");
    entry.pushing.store(true, Ordering::Relaxed);

    let mut sub = entry.hub.subscribe_when_ready().await;
    let mut gate = ViewerGate::new(&sub);
    let start = std::mem::take(&mut sub.start);
    for tag in start {
        c.send_tag(&tag).await?;
    }
    loop {
        tokio::select! {
            r = sub.rx.recv() => match r {
                Ok(tag) => if gate.pass(&tag) {
                    tokio::select! {
                        // The write first: the lag watch (a timer) is armed only if it blocks.
                        biased;
                        r = c.send_tag(&tag) => r?,
                        _ = entry.hub.lagging(&sub.rx) => bail!("target stalled a whole queue behind"),
                    }
                },
                Err(RecvError::Lagged(n)) => bail!("target too slow: {n} tags behind"),
                Err(RecvError::Closed) => return Ok(()),
            },
            r = c.service() => r?,
        }
    }
}
