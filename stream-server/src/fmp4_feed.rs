//! Fragmented MP4 for browsers (`GET /live/{id}.mp4`), from the same hub as HTTP-FLV: one
//! muxer per stream, started by its first fMP4 viewer and stopped with its last. It reads the
//! hub like any viewer (no cost to the ingest, none at all while nobody watches this form) and
//! turns the FLV tags into one fragment per video frame (`media::fmp4`, samples are slices of
//! the tags). Like the hub it keeps a cache — the init segment and the fragments since the last
//! key frame — so a new viewer starts at once on a key frame, and a viewer that falls a whole
//! queue behind is dropped without slowing the others.

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bytes::Bytes;
use media::flv::TagKind;
use media::fmp4::Fmp4Muxer;
use tokio::sync::broadcast::{self, error::RecvError};

use crate::stream::StreamEntry;

/// A stalled source still shows its newest frame after this long (its duration is guessed).
const FLUSH_IDLE: Duration = Duration::from_millis(200);

/// A piece of the fMP4 byte stream.
#[derive(Debug, Clone)]
pub struct Segment {
    pub bytes: Bytes,
    /// An init segment (a new configuration: the player starts over with it).
    pub init: bool,
}

#[derive(Default)]
struct Cache {
    init: Option<Bytes>,
    /// Fragments since the last one that starts with a key frame (that one first).
    gop: Vec<Bytes>,
    gop_bytes: usize,
    /// The GOP outgrew the bound: nothing cached until the next key frame.
    overflow: bool,
}

pub struct Fmp4Feed {
    cache: Mutex<Cache>,
    tx: broadcast::Sender<Segment>,
    queue: usize,
    max_gop_bytes: usize,
    /// Flips to true with the first init segment.
    ready: tokio::sync::watch::Sender<bool>,
}

/// What a new viewer gets: the init segment and cached fragments, then the live queue.
pub struct Fmp4Subscription {
    pub start: Vec<Bytes>,
    pub rx: broadcast::Receiver<Segment>,
}

impl Fmp4Feed {
    fn new(queue: usize, max_gop_bytes: usize) -> Self {
        let queue = queue.max(16);
        Self {
            cache: Mutex::new(Cache::default()),
            tx: broadcast::channel(queue).0,
            queue,
            max_gop_bytes,
            ready: tokio::sync::watch::channel(false).0,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The stream's feed, started if no viewer holds one now. The feed lives as long as a
    /// viewer holds the returned `Arc` (and the stream lives).
    pub fn of(entry: &Arc<StreamEntry>) -> Arc<Fmp4Feed> {
        let mut slot = entry.fmp4.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(feed) = slot.upgrade() {
            return feed;
        }
        let feed = Arc::new(Fmp4Feed::new(entry.hub.queue_len(), entry.hub.max_gop_bytes()));
        *slot = Arc::downgrade(&feed);
        tokio::spawn(run(Arc::downgrade(&feed), entry.clone()));
        feed
    }

    fn publish_init(&self, bytes: Bytes) {
        let mut c = self.lock();
        c.init = Some(bytes.clone());
        // Fragments of the old configuration are of no use to a new viewer.
        c.gop.clear();
        c.gop_bytes = 0;
        let _ = self.tx.send(Segment { bytes, init: true });
        drop(c);
        self.ready.send_if_modified(|r| !std::mem::replace(r, true));
    }

    fn publish_fragment(&self, bytes: Bytes, key: bool) {
        let mut c = self.lock();
        if key {
            c.gop.clear();
            c.gop_bytes = 0;
            c.overflow = false;
        }
        if !c.overflow && (key || !c.gop.is_empty()) {
            c.gop_bytes += bytes.len();
            if c.gop_bytes > self.max_gop_bytes {
                c.gop.clear();
                c.gop_bytes = 0;
                c.overflow = true;
            } else {
                c.gop.push(bytes.clone());
            }
        }
        // Sent under the lock: a subscriber sees each fragment once, in its start or its queue.
        let _ = self.tx.send(Segment { bytes, init: false });
    }

    /// The init segment and the cached GOP, then the live queue; waits up to `wait` for the
    /// first init segment (`None` if the stream has given none by then).
    pub async fn subscribe(&self, wait: Duration) -> Option<Fmp4Subscription> {
        let mut ready = self.ready.subscribe();
        let _ = tokio::time::timeout(wait, ready.wait_for(|r| *r)).await;
        let c = self.lock();
        let init = c.init.clone()?;
        let mut start = Vec::with_capacity(c.gop.len() + 1);
        start.push(init);
        start.extend(c.gop.iter().cloned());
        Some(Fmp4Subscription { start, rx: self.tx.subscribe() })
    }

    pub fn viewers(&self) -> usize {
        self.tx.receiver_count()
    }

    /// Resolves once `rx` has fallen a whole queue behind (see `Hub::lagging`).
    pub async fn lagging(&self, rx: &broadcast::Receiver<Segment>) {
        while rx.len() < self.queue {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The muxer task: reads the hub as a viewer until the stream ends or no fMP4 viewer is left.
async fn run(feed: Weak<Fmp4Feed>, entry: Arc<StreamEntry>) {
    let cancel = entry.cancel.clone();
    let mut sub = entry.hub.subscribe_when_ready().await;
    let mut mux = Fmp4Muxer::new();
    let mut video = sub.has_video;
    let start = std::mem::take(&mut sub.start);
    let mut pending = false;
    for tag in &start {
        let Some(f) = feed.upgrade() else { return };
        pending |= step(&f, &mut mux, tag, &mut video);
    }
    loop {
        let tag = tokio::select! {
            _ = cancel.cancelled() => return,
            r = sub.rx.recv() => Some(r),
            _ = tokio::time::sleep(FLUSH_IDLE), if pending => None,
        };
        let Some(f) = feed.upgrade() else { return }; // the last viewer went
        match tag {
            Some(Ok(tag)) => pending = step(&f, &mut mux, &tag, &mut video),
            // Behind the hub: start again from its cache at the next key frame.
            Some(Err(RecvError::Lagged(_))) => {
                tracing::info!("fMP4 muxer fell behind its hub; resuming at the next key frame");
                mux = Fmp4Muxer::new();
                pending = false;
            }
            Some(Err(RecvError::Closed)) => return,
            None => {
                mux.flush();
                publish(&f, &mut mux);
                pending = false;
            }
        }
    }
}

/// One tag into the muxer; out go the init segment and fragments it completes. Returns whether
/// a sample waits for its duration.
fn step(feed: &Fmp4Feed, mux: &mut Fmp4Muxer, tag: &media::flv::FlvTag, video: &mut bool) -> bool {
    *video |= tag.kind == TagKind::Video && tag.header;
    mux.push_flv(tag);
    if let Some(init) = mux.take_init_segment() {
        feed.publish_init(init);
    }
    // A fragment per video frame; audio-only streams, one per audio frame.
    if (tag.kind == TagKind::Video || !*video) && !tag.header {
        publish(feed, mux);
    }
    mux.has_pending()
}

fn publish(feed: &Fmp4Feed, mux: &mut Fmp4Muxer) {
    let key = mux.fragment_starts_with_key();
    if let Some(f) = mux.take_fragment() {
        feed.publish_fragment(f, key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(n: u8) -> Bytes {
        Bytes::from(vec![n; 10])
    }

    #[tokio::test]
    async fn a_new_viewer_starts_with_the_init_and_the_fragments_since_the_last_key() {
        let feed = Fmp4Feed::new(16, 1 << 20);
        assert!(feed.subscribe(Duration::from_millis(10)).await.is_none(), "nothing to start with yet");
        feed.publish_init(b(0));
        feed.publish_fragment(b(1), false); // before any key frame: not cached
        feed.publish_fragment(b(2), true);
        feed.publish_fragment(b(3), false);
        feed.publish_fragment(b(4), true);
        feed.publish_fragment(b(5), false);
        let mut sub = feed.subscribe(Duration::ZERO).await.unwrap();
        assert_eq!(sub.start, [b(0), b(4), b(5)]);
        feed.publish_fragment(b(6), false);
        assert_eq!(sub.rx.try_recv().unwrap().bytes, b(6), "then the live queue, nothing twice");
        // A new configuration: the old fragments are of no use to a newcomer.
        feed.publish_init(b(9));
        assert_eq!(feed.subscribe(Duration::ZERO).await.unwrap().start, [b(9)]);
    }

    #[tokio::test]
    async fn the_cached_gop_is_bounded() {
        let feed = Fmp4Feed::new(16, 25);
        feed.publish_init(b(0));
        for i in 1..6 {
            feed.publish_fragment(b(i), i == 1);
        }
        assert_eq!(feed.subscribe(Duration::ZERO).await.unwrap().start, [b(0)], "over 25 bytes: nothing until the next key");
        feed.publish_fragment(b(7), true);
        assert_eq!(feed.subscribe(Duration::ZERO).await.unwrap().start, [b(0), b(7)]);
    }
}
