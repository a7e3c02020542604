//! Fan-out of one stream's FLV tags to every output: one encoded copy, shared by reference.
//! A GOP cache (headers, metadata, tags since the last key frame) lets a new viewer start at
//! once on a key frame. Each viewer reads a bounded broadcast queue; one that falls behind is
//! told so and dropped, and never slows the others or the ingest.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use media::flv::{FlvTag, TagKind};

use crate::gop_cache::GopCache;
use tokio::sync::{broadcast, watch};

/// How long after a stream starts a new viewer waits for its video. A camera's PS usually
/// carries audio before the first key frame (and its SPS) arrives; a viewer started then would
/// get an FLV header saying "audio only", which players such as flv.js believe, and a video
/// track they never show. After this, a stream still without video is served as audio only.
pub const VIDEO_WAIT: Duration = Duration::from_secs(5);

struct Cache {
    metadata: Option<FlvTag>,
    video_header: Option<FlvTag>,
    audio_header: Option<FlvTag>,
    gop: GopCache<FlvTag>,
    /// Audio seen (G.711 has no sequence header, so this is not `audio_header.is_some()`).
    audio_seen: bool,
}

pub struct Hub {
    cache: Mutex<Cache>,
    tx: broadcast::Sender<FlvTag>,
    queue: usize,
    max_gop_bytes: usize,
    created: Instant,
    /// Flips to true with the first video sequence header.
    video_ready: watch::Sender<bool>,
}

/// What a new viewer gets: the tags to send first, then the live queue.
pub struct Subscription {
    pub start: Vec<FlvTag>,
    pub has_audio: bool,
    pub has_video: bool,
    /// The start includes a key frame; otherwise wait for one on the queue.
    pub keyed: bool,
    pub rx: broadcast::Receiver<FlvTag>,
}

impl Hub {
    pub fn new(queue: usize, max_gop_bytes: usize) -> Self {
        let queue = queue.max(16);
        Self {
            cache: Mutex::new(Cache {
                metadata: None,
                video_header: None,
                audio_header: None,
                gop: GopCache::new(max_gop_bytes),
                audio_seen: false,
            }),
            tx: broadcast::channel(queue).0,
            queue,
            max_gop_bytes,
            created: Instant::now(),
            video_ready: watch::channel(false).0,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn publish(&self, tag: FlvTag) {
        let mut c = self.lock();
        c.audio_seen |= tag.kind == TagKind::Audio;
        if tag.header {
            match tag.kind {
                TagKind::Script => c.metadata = Some(tag.clone()),
                TagKind::Video => {
                    // New parameters: what is cached belongs to the old ones.
                    c.video_header = Some(tag.clone());
                    c.gop.clear();
                    self.video_ready.send_if_modified(|ready| !std::mem::replace(ready, true));
                }
                TagKind::Audio => c.audio_header = Some(tag.clone()),
            }
        } else {
            c.gop.push(&tag, tag.kind == TagKind::Video && tag.key, tag.wire.len());
        }
        // Sent under the lock so a subscriber sees each tag exactly once: in its start or its queue.
        let _ = self.tx.send(tag);
    }

    pub fn subscribe(&self) -> Subscription {
        let c = self.lock();
        let mut start = Vec::with_capacity(c.gop.items().len() + 3);
        start.extend(c.metadata.iter().cloned());
        start.extend(c.video_header.iter().cloned());
        start.extend(c.audio_header.iter().cloned());
        let keyed = !c.gop.items().is_empty();
        start.extend(c.gop.items().iter().cloned());
        Subscription { start, has_audio: c.audio_seen, has_video: c.video_header.is_some(), keyed, rx: self.tx.subscribe() }
    }

    /// [`Hub::subscribe`], once the stream has video or is [`VIDEO_WAIT`] old (whichever
    /// comes first), so the viewer's header announces the tracks it will really get.
    pub async fn subscribe_when_ready(&self) -> Subscription {
        let deadline = tokio::time::Instant::from_std(self.created + VIDEO_WAIT);
        let mut ready = self.video_ready.subscribe();
        let _ = tokio::time::timeout_at(deadline, ready.wait_for(|r| *r)).await;
        self.subscribe()
    }

    /// The video sequence header and the latest key frame (the cached GOP's first item), if
    /// the stream has shown one: what a picture of the stream is decoded from.
    pub fn key_frame(&self) -> Option<(FlvTag, FlvTag)> {
        let c = self.lock();
        let key = c.gop.items().first().filter(|t| t.kind == TagKind::Video && t.key)?.clone();
        Some((c.video_header.clone()?, key))
    }

    /// Resolves once the stream has a key frame, or after `wait`.
    pub async fn key_frame_within(&self, wait: std::time::Duration) -> Option<(FlvTag, FlvTag)> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(k) = self.key_frame() {
                return Some(k);
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    pub fn viewers(&self) -> usize {
        self.tx.receiver_count()
    }

    /// Tags a viewer may fall behind before it is dropped.
    pub fn queue_len(&self) -> usize {
        self.queue
    }

    pub fn max_gop_bytes(&self) -> usize {
        self.max_gop_bytes
    }

    /// Resolves once `rx` has fallen a whole queue behind (see [`lagging`]).
    pub async fn lagging(&self, rx: &broadcast::Receiver<FlvTag>) {
        lagging(rx, self.queue).await
    }
}

/// Resolves once `rx` has fallen `queue` items behind. A viewer whose socket has stopped
/// draining sits in a write and never reads its queue, so it cannot see the lag itself: race
/// each write against this and drop the viewer when it wins.
pub async fn lagging<T: Clone>(rx: &broadcast::Receiver<T>, queue: usize) {
    while rx.len() < queue {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Per-viewer gate: skip until the first key frame when the start had none.
pub struct ViewerGate {
    started: bool,
}

impl ViewerGate {
    pub fn new(sub: &Subscription) -> Self {
        Self { started: sub.keyed || !sub.has_video }
    }

    pub fn pass(&mut self, tag: &FlvTag) -> bool {
        if tag.header {
            return true;
        }
        self.started |= tag.kind == TagKind::Video && tag.key;
        self.started
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(kind: TagKind, ts: u32, key: bool, header: bool) -> FlvTag {
        FlvTag::new(kind, ts, key, header, &[1, 2, 3])
    }

    #[test]
    fn new_viewer_starts_at_the_last_key_frame() {
        let hub = Hub::new(64, 1 << 20);
        hub.publish(tag(TagKind::Video, 0, false, true));
        hub.publish(tag(TagKind::Video, 0, true, false));
        hub.publish(tag(TagKind::Video, 40, false, false));
        hub.publish(tag(TagKind::Video, 80, true, false));
        hub.publish(tag(TagKind::Audio, 90, false, false));
        let mut sub = hub.subscribe();
        let ts: Vec<(u32, bool)> = sub.start.iter().map(|t| (t.timestamp, t.header)).collect();
        assert_eq!(ts, vec![(0, true), (80, false), (90, false)]);
        assert!(sub.keyed);
        hub.publish(tag(TagKind::Video, 120, false, false));
        assert_eq!(sub.rx.try_recv().unwrap().timestamp, 120);
    }

    #[tokio::test]
    async fn an_early_viewer_waits_for_the_video_rather_than_start_audio_only() {
        let hub = std::sync::Arc::new(Hub::new(64, 1 << 20));
        hub.publish(tag(TagKind::Audio, 0, false, true));
        hub.publish(tag(TagKind::Audio, 20, false, false));
        let waiting = tokio::spawn({
            let hub = hub.clone();
            async move { hub.subscribe_when_ready().await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "no video yet: the viewer waits");
        hub.publish(tag(TagKind::Video, 40, false, true));
        hub.publish(tag(TagKind::Video, 40, true, false));
        let sub = waiting.await.unwrap();
        assert!(sub.has_video && sub.has_audio);
    }

    #[tokio::test]
    async fn an_audio_only_stream_is_served_after_the_wait() {
        let mut hub = Hub::new(64, 1 << 20);
        hub.created -= VIDEO_WAIT; // a stream that has been audio only for the whole wait
        hub.publish(tag(TagKind::Audio, 0, false, true));
        let sub = hub.subscribe_when_ready().await;
        assert!(sub.has_audio && !sub.has_video);
    }

    #[test]
    fn slow_viewer_lags_without_blocking() {
        let hub = Hub::new(16, 1 << 20);
        let mut sub = hub.subscribe();
        for i in 0..100 {
            hub.publish(tag(TagKind::Video, i, i % 25 == 0, false));
        }
        assert!(matches!(sub.rx.try_recv(), Err(broadcast::error::TryRecvError::Lagged(_))));
    }

    #[test]
    fn gop_cache_is_bounded() {
        let hub = Hub::new(16, 100);
        hub.publish(tag(TagKind::Video, 0, false, true));
        hub.publish(tag(TagKind::Video, 0, true, false));
        for i in 1..20 {
            hub.publish(tag(TagKind::Video, i, false, false));
        }
        let sub = hub.subscribe();
        assert!(!sub.keyed && sub.start.len() == 1, "only the sequence header");
        let mut gate = ViewerGate::new(&sub);
        assert!(!gate.pass(&tag(TagKind::Video, 30, false, false)));
        assert!(gate.pass(&tag(TagKind::Video, 40, true, false)));
        assert!(gate.pass(&tag(TagKind::Video, 41, false, false)));
    }
}
