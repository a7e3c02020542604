//! Webhook forwarding: every new passage id goes into a durable queue in the Store
//! (`lpr:outbox`) before the camera's reply, and a worker on each node POSTs the passage JSON
//! to `lpr.webhook_url`, putting it back and backing off (up to 60 s) while the target fails —
//! so a billing system that is down misses nothing. Delivery is at least once: a passage may
//! be sent again after a crash mid-POST; receivers deduplicate on its `id`.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::metrics;
use crate::service::Lpr;

pub const OUTBOX: &str = "lpr:outbox";

pub async fn enqueue(lpr: &Lpr, passage_id: &str) {
    if lpr.cfg.webhook_url.is_empty() {
        return;
    }
    if let Err(e) = lpr.store.queue_push(OUTBOX, passage_id).await {
        tracing::warn!(error = %e, passage = passage_id, "queueing a passage for the webhook failed");
    }
}

pub fn spawn(lpr: Arc<Lpr>, shutdown: CancellationToken) {
    if lpr.cfg.webhook_url.is_empty() {
        return;
    }
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(200);
        loop {
            if shutdown.is_cancelled() {
                break;
            }
            let item = match lpr.store.queue_pop(OUTBOX, 1).await {
                Ok(mut v) if !v.is_empty() => v.remove(0),
                Ok(_) => {
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(Duration::from_millis(200)) => continue,
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "reading the webhook outbox failed");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            let body = match lpr.passage(&item).await {
                Ok(Some(p)) => serde_json::to_string(&p).unwrap_or_default(),
                _ => continue, // gone: nothing to send
            };
            match kit::http_client::request("POST", &lpr.cfg.webhook_url, None, Some(&body), Duration::from_secs(10)).await {
                Ok(r) if r.ok() => {
                    metrics::WEBHOOK_SENT.inc();
                    backoff = Duration::from_millis(200);
                }
                failed => {
                    metrics::WEBHOOK_FAILURES.inc();
                    let why = match failed {
                        Ok(r) => format!("answered {}", r.status),
                        Err(e) => e.to_string(),
                    };
                    tracing::warn!(passage = %item, error = %why, retry_in = ?backoff, "webhook delivery failed; kept in the outbox");
                    let _ = lpr.store.queue_unpop(OUTBOX, &[item]).await;
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(60));
                }
            }
        }
    });
}
