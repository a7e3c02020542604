//! The console's live feed (`GET /api/v1/events`, Server-Sent Events): presence, play, stream,
//! LPR, alarm and position events of the whole cluster, whichever node published them.
//!
//! One Store subscription per event channel per node, however many browsers watch: each event
//! is rendered once into an SSE frame and fanned out through a bounded broadcast. A client that
//! falls behind is not waited for; it gets a `resync` event and reloads what it shows.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use cluster::store::Store;
use cluster::wire::{ALARM_EVENTS, DEVICE_EVENTS, LPR_EVENTS, PLAY_EVENTS, POSITION_EVENTS, STREAM_EVENTS};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

/// Frames kept for slow clients before they are told to resync.
const BACKLOG: usize = 1024;
/// A comment line this often keeps proxies from closing an idle stream.
const KEEPALIVE: Duration = Duration::from_secs(15);
/// What the browser waits before reconnecting a dropped stream (SSE `retry:`).
const RETRY_MS: u32 = 2000;

/// The event channels forwarded, with the SSE event name each becomes.
const CHANNELS: [(&str, &str); 6] = [
    (DEVICE_EVENTS, "presence"),
    (PLAY_EVENTS, "play"),
    (STREAM_EVENTS, "stream"),
    (LPR_EVENTS, "lpr"),
    (ALARM_EVENTS, "alarm"),
    (POSITION_EVENTS, "position"),
];

pub struct Feed {
    frames: broadcast::Sender<Bytes>,
}

impl Feed {
    /// Subscribes to the cluster's event channels until `shutdown`. A subscription the Store
    /// drops (Redis restarted) is made again after a second.
    pub fn start(store: Arc<dyn Store>, shutdown: CancellationToken) -> Arc<Feed> {
        let (frames, _) = broadcast::channel(BACKLOG);
        let feed = Arc::new(Feed { frames });
        for (channel, name) in CHANNELS {
            let (store, feed, shutdown) = (store.clone(), feed.clone(), shutdown.clone());
            tokio::spawn(async move {
                let mut again = false;
                while !shutdown.is_cancelled() {
                    match store.subscribe(channel).await {
                        Ok(mut sub) => loop {
                            // Subscribed again after a break (Redis restarted): events of the
                            // gap are lost, so every client reloads what it shows.
                            if std::mem::take(&mut again) {
                                let _ = feed.frames.send(frame("resync", "{}"));
                            }
                            tokio::select! {
                                _ = shutdown.cancelled() => return,
                                msg = sub.recv() => match msg {
                                    Some(payload) => {
                                        let _ = feed.frames.send(frame(name, &payload));
                                    }
                                    None => break,
                                },
                            }
                        },
                        Err(e) => tracing::warn!(channel, error = %e, "console feed cannot subscribe; retrying"),
                    }
                    again = true;
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            });
        }
        feed
    }

    /// The SSE response for one client.
    pub fn respond(&self) -> Response {
        let rx = self.frames.subscribe();
        let hello = Bytes::from(format!("retry: {RETRY_MS}\n: gbcluster events\n\n"));
        let stream = futures::stream::unfold((Some(hello), rx), |(first, mut rx)| async move {
            if let Some(hello) = first {
                return Some((Ok::<_, Infallible>(hello), (None, rx)));
            }
            let next = match tokio::time::timeout(KEEPALIVE, rx.recv()).await {
                Err(_) => Bytes::from_static(b": keepalive\n\n"),
                Ok(Ok(frame)) => frame,
                // Events were dropped for this client: what it shows may be stale.
                Ok(Err(broadcast::error::RecvError::Lagged(_))) => frame("resync", "{}"),
                Ok(Err(broadcast::error::RecvError::Closed)) => return None,
            };
            Some((Ok(next), (None, rx)))
        });
        (
            [
                (header::CONTENT_TYPE, "text/event-stream"),
                (header::CACHE_CONTROL, "no-store"),
                // nginx and friends must pass events through as they come.
                (header::HeaderName::from_static("x-accel-buffering"), "no"),
            ],
            Body::from_stream(stream),
        )
            .into_response()
    }
}

/// One SSE frame. Every line of the payload gets its own `data:` field, so a payload with a
/// newline cannot end the frame early or inject a field.
fn frame(event: &str, payload: &str) -> Bytes {
    let mut out = String::with_capacity(payload.len() + event.len() + 16);
    out.push_str("event: ");
    out.push_str(event);
    out.push('\n');
    for line in payload.split(['\n', '\r']) {
        out.push_str("data: ");
        out.push_str(line);
        out.push('\n');
    }
    out.push('\n');
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_names_its_event_and_keeps_payload_lines_apart() {
        assert_eq!(frame("presence", r#"{"a":1}"#), Bytes::from_static(b"event: presence\ndata: {\"a\":1}\n\n"));
        assert_eq!(frame("x", "1\n\nevent: evil"), Bytes::from_static(b"event: x\ndata: 1\ndata: \ndata: event: evil\n\n"));
    }

    #[tokio::test]
    async fn published_events_reach_every_client_once() {
        let store: Arc<dyn Store> = Arc::new(cluster::store::MemoryStore::default());
        let stop = CancellationToken::new();
        let feed = Feed::start(store.clone(), stop.clone());
        let (a, b) = (feed.respond(), feed.respond());
        // The subscriptions are made by spawned tasks: publish until one is seen.
        use futures::StreamExt;
        let mut body_a = a.into_body().into_data_stream();
        let mut body_b = b.into_body().into_data_stream();
        assert!(body_a.next().await.unwrap().unwrap().starts_with(b"retry: 2000"));
        assert!(body_b.next().await.unwrap().unwrap().starts_with(b"retry: 2000"));
        for _ in 0..50 {
            store.publish(DEVICE_EVENTS, r#"{"device_id":"x"}"#).await.unwrap();
            if !feed.frames.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let got = body_a.next().await.unwrap().unwrap();
        assert_eq!(got, Bytes::from_static(b"event: presence\ndata: {\"device_id\":\"x\"}\n\n"));
        assert_eq!(body_b.next().await.unwrap().unwrap(), got);
        stop.cancel();
    }
}
