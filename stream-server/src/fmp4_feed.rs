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

use crate::gop_cache::GopCache;
use crate::stream::StreamEntry;

/// A stalled source still shows its newest frame after this long (its duration is guessed).
const FLUSH_IDLE: Duration = Duration::from_millis(200);
/// A stream that starts while its feed listens: how much video may pass (tag time) before the
/// init segment goes out without audio. A camera sends its audio header within a frame or two;
/// an init without it would have to be replaced by one with it, which players refuse.
const AUDIO_WAIT_MS: u32 = 500;

/// A piece of the fMP4 byte stream.
#[derive(Debug, Clone)]
pub struct Segment {
    pub bytes: Bytes,
    /// An init segment (a new configuration: the player starts over with it).
    pub init: bool,
    /// A fragment that starts with a video key frame (or any audio-only fragment): where a
    /// player may begin, and where HLS cuts its segments.
    pub key: bool,
    /// Its duration in seconds on the stream's clock (0 for an init segment).
    pub duration: f64,
}

struct Cache {
    init: Option<Bytes>,
    /// Fragments since the last one that starts with a key frame (that one first).
    gop: GopCache<Segment>,
}

pub struct Fmp4Feed {
    cache: Mutex<Cache>,
    tx: broadcast::Sender<Segment>,
    queue: usize,
    /// Flips to true with the first init segment.
    ready: tokio::sync::watch::Sender<bool>,
}

/// What a new viewer gets: the init segment and cached fragments, then the live queue.
pub struct Fmp4Subscription {
    /// The init segment first, then the GOP's fragments (the first a key one).
    pub start: Vec<Segment>,
    pub rx: broadcast::Receiver<Segment>,
}

impl Fmp4Feed {
    fn new(queue: usize, max_gop_bytes: usize) -> Self {
        let queue = queue.max(16);
        Self {
            cache: Mutex::new(Cache { init: None, gop: GopCache::new(max_gop_bytes) }),
            tx: broadcast::channel(queue).0,
            queue,
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
        let _ = self.tx.send(Segment { bytes, init: true, key: false, duration: 0.0 });
        drop(c);
        self.ready.send_if_modified(|r| !std::mem::replace(r, true));
    }

    fn publish_fragment(&self, bytes: Bytes, key: bool, duration: f64) {
        let seg = Segment { bytes, init: false, key, duration };
        let mut c = self.lock();
        c.gop.push(&seg, key, seg.bytes.len());
        // Sent under the lock: a subscriber sees each fragment once, in its start or its queue.
        let _ = self.tx.send(seg);
    }

    /// The init segment and the cached GOP, then the live queue; waits up to `wait` for the
    /// first init segment (`None` if the stream has given none by then).
    pub async fn subscribe(&self, wait: Duration) -> Option<Fmp4Subscription> {
        let mut ready = self.ready.subscribe();
        let _ = tokio::time::timeout(wait, ready.wait_for(|r| *r)).await;
        let c = self.lock();
        let init = c.init.clone()?;
        let mut start = Vec::with_capacity(c.gop.items().len() + 1);
        start.push(Segment { bytes: init, init: true, key: false, duration: 0.0 });
        start.extend(c.gop.items().iter().cloned());
        Some(Fmp4Subscription { start, rx: self.tx.subscribe() })
    }

    /// Fragments a viewer may fall behind before it is dropped.
    pub fn queue_len(&self) -> usize {
        self.queue
    }
}

/// The muxer task: reads the hub as a viewer until the stream ends or no fMP4 viewer is left.
async fn run(feed: Weak<Fmp4Feed>, entry: Arc<StreamEntry>) {
    let cancel = entry.cancel.clone();
    let mut sub = entry.hub.subscribe_when_ready().await;
    let mut mux = Fmp4Muxer::new();
    let start = std::mem::take(&mut sub.start);
    let mut state = State::joining(sub.has_video, sub.has_audio);
    let mut pending = false;
    for tag in &start {
        let Some(f) = feed.upgrade() else { return };
        pending |= step(&f, &mut mux, tag, &mut state);
    }
    loop {
        let tag = tokio::select! {
            _ = cancel.cancelled() => return,
            r = sub.rx.recv() => Some(r),
            _ = tokio::time::sleep(FLUSH_IDLE), if pending => None,
        };
        let Some(f) = feed.upgrade() else { return }; // the last viewer went
        match tag {
            Some(Ok(tag)) => pending = step(&f, &mut mux, &tag, &mut state),
            // Behind the hub: start again from its cache at the next key frame.
            Some(Err(RecvError::Lagged(_))) => {
                tracing::info!("fMP4 muxer fell behind its hub; resuming at the next key frame");
                mux = Fmp4Muxer::new();
                state.init_sent = false;
                pending = false;
            }
            Some(Err(RecvError::Closed)) => return,
            None if state.init_sent => {
                mux.flush();
                publish(&f, &mut mux);
                pending = false;
            }
            None => pending = false,
        }
    }
}

/// What the muxer task knows of the stream's tracks.
struct State {
    /// The stream has video (the hub said so, or a video header came).
    video: bool,
    init_sent: bool,
    /// The stream began after the feed: the first init waits for audio (`AUDIO_WAIT_MS`).
    wait_audio: bool,
    first_video_ms: Option<u32>,
}

impl State {
    /// The state of a feed that joins a hub which has seen video and audio headers or not.
    /// Waiting for audio depends on whether the hub has seen its header, not on whether the
    /// stream is flowing: a stream that has just started has video in the hub's start and its
    /// audio header a few frames later, and an init without it would have to be replaced by one
    /// with it, which players refuse (seen in Chromium as a decode error on a cold start).
    fn joining(has_video: bool, has_audio: bool) -> Self {
        State { video: has_video, init_sent: false, wait_audio: !has_audio, first_video_ms: None }
    }

    /// Whether the first init segment can go: every track the stream has is configured, or
    /// the audio has had its chance.
    fn init_ready(&mut self, mux: &Fmp4Muxer, tag: &media::flv::FlvTag) -> bool {
        let (video, audio) = mux.tracks();
        if video && tag.kind == TagKind::Video {
            self.first_video_ms.get_or_insert(tag.timestamp);
        }
        let waited = self.first_video_ms.is_some_and(|first| tag.timestamp.saturating_sub(first) >= AUDIO_WAIT_MS);
        match (video, audio) {
            (true, true) => true,
            (true, false) => !self.wait_audio || waited,
            (false, true) => !self.video,
            (false, false) => false,
        }
    }
}

/// One tag into the muxer; out go the init segment and fragments it completes. Returns whether
/// a sample waits for its duration.
fn step(feed: &Fmp4Feed, mux: &mut Fmp4Muxer, tag: &media::flv::FlvTag, state: &mut State) -> bool {
    state.video |= tag.kind == TagKind::Video && tag.header;
    mux.push_flv(tag);
    if !state.init_sent {
        // Decided on a frame, never on a header: the hub's start carries the video and the
        // audio header one after the other, and an init after the first would lack the second.
        if tag.header || !state.init_ready(mux, tag) {
            // Samples wait in the muxer (bounded) for the first fragment after the init.
            return mux.has_pending();
        }
        state.init_sent = true;
    }
    if let Some(init) = mux.take_init_segment() {
        feed.publish_init(init);
    }
    // A fragment per video frame; audio-only streams, one per audio frame.
    if (tag.kind == TagKind::Video || !state.video) && !tag.header {
        publish(feed, mux);
    }
    mux.has_pending()
}

fn publish(feed: &Fmp4Feed, mux: &mut Fmp4Muxer) {
    // An audio-only stream has no key frames: every fragment is a place to begin.
    let key = mux.fragment_starts_with_key() || mux.pending_video() == 0;
    let duration = mux.fragment_span().map_or(0.0, |(_, d)| d);
    if let Some(f) = mux.take_fragment() {
        feed.publish_fragment(f, key, duration);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(n: u8) -> Bytes {
        Bytes::from(vec![n; 10])
    }

    fn bytes(segments: &[Segment]) -> Vec<Bytes> {
        segments.iter().map(|s| s.bytes.clone()).collect()
    }

    #[tokio::test]
    async fn a_new_viewer_starts_with_the_init_and_the_fragments_since_the_last_key() {
        let feed = Fmp4Feed::new(16, 1 << 20);
        assert!(feed.subscribe(Duration::from_millis(10)).await.is_none(), "nothing to start with yet");
        feed.publish_init(b(0));
        feed.publish_fragment(b(1), false, 0.04); // before any key frame: not cached
        feed.publish_fragment(b(2), true, 0.04);
        feed.publish_fragment(b(3), false, 0.04);
        feed.publish_fragment(b(4), true, 0.04);
        feed.publish_fragment(b(5), false, 0.04);
        let mut sub = feed.subscribe(Duration::ZERO).await.unwrap();
        assert_eq!(bytes(&sub.start), [b(0), b(4), b(5)]);
        assert_eq!(sub.start.iter().map(|s| (s.init, s.key)).collect::<Vec<_>>(), [(true, false), (false, true), (false, false)]);
        feed.publish_fragment(b(6), false, 0.04);
        assert_eq!(sub.rx.try_recv().unwrap().bytes, b(6), "then the live queue, nothing twice");
        // A new configuration: the old fragments are of no use to a newcomer.
        feed.publish_init(b(9));
        assert_eq!(bytes(&feed.subscribe(Duration::ZERO).await.unwrap().start), [b(9)]);
    }

    /// FLV tags of a stream that begins after its feed: video first, audio `audio_after` frames
    /// later (or never).
    fn tags(frames: u64, audio_after: Option<u64>) -> Vec<media::flv::FlvTag> {
        use media::test_vectors::{H264_PPS, H264_SPS_320X240};
        use media::{AccessUnit, AudioConfig, Codec, MediaEvent, VideoConfig};
        let mut flv = media::flv::FlvMuxer::new(Default::default());
        let record = media::codec::h264::avc_config(&H264_SPS_320X240, &H264_PPS).unwrap();
        let mut out = vec![flv
            .push(&MediaEvent::VideoConfig(VideoConfig {
                codec: Codec::H264,
                width: 320,
                height: 240,
                fps: Some(25.0),
                record: record.into(),
            }))
            .unwrap()];
        for i in 0..frames {
            let data = vec![0, 0, 0, 1, if i == 0 { 0x65 } else { 0x41 }, 0x88];
            out.push(
                flv.push(&MediaEvent::Frame(AccessUnit {
                    codec: Codec::H264,
                    pts: i * 3600,
                    dts: i * 3600,
                    key: i == 0,
                    data: data.into(),
                }))
                .unwrap(),
            );
            if audio_after == Some(i) {
                let cfg = AudioConfig { codec: Codec::Aac, sample_rate: 8000, channels: 1, asc: Bytes::from_static(&[0x15, 0x88]) };
                out.push(flv.push(&MediaEvent::AudioConfig(cfg)).unwrap());
            }
            if audio_after.is_some_and(|a| i >= a) {
                out.push(
                    flv.push(&MediaEvent::Frame(AccessUnit {
                        codec: Codec::Aac,
                        pts: i * 3600,
                        dts: i * 3600,
                        key: true,
                        data: vec![1, 2, 3].into(),
                    }))
                    .unwrap(),
                );
            }
        }
        out
    }

    /// Runs tags through `step` as the task does; returns the init segments published.
    fn run_tags(tags: &[media::flv::FlvTag]) -> (Vec<Bytes>, Fmp4Feed) {
        run_tags_joining(tags, false, false)
    }

    /// The tags through a feed that joined a hub knowing (`has_video`, `has_audio`).
    fn run_tags_joining(tags: &[media::flv::FlvTag], has_video: bool, has_audio: bool) -> (Vec<Bytes>, Fmp4Feed) {
        let feed = Fmp4Feed::new(1024, 1 << 20);
        let mut rx = feed.tx.subscribe();
        let mut mux = Fmp4Muxer::new();
        let mut state = State::joining(has_video, has_audio);
        for t in tags {
            step(&feed, &mut mux, t, &mut state);
        }
        let mut inits = vec![];
        while let Ok(seg) = rx.try_recv() {
            if seg.init {
                inits.push(seg.bytes);
            }
        }
        (inits, feed)
    }

    #[tokio::test]
    async fn a_stream_starting_after_its_feed_gets_one_init_with_the_audio_that_comes_late() {
        let (inits, feed) = run_tags(&tags(30, Some(3)));
        assert_eq!(inits.len(), 1, "no video-only init to be replaced");
        assert!(inits[0].windows(4).any(|w| w == b"mp4a") && inits[0].windows(4).any(|w| w == b"avc1"));
        let sub = feed.subscribe(Duration::ZERO).await.unwrap();
        assert!(sub.start.len() >= 2, "the frames before the audio header are not lost");
    }

    #[tokio::test]
    async fn joining_a_stream_that_just_started_still_waits_for_its_audio_header() {
        // The hub had the video header and a few frames, not yet the audio header.
        let (inits, _) = run_tags_joining(&tags(30, Some(3)), true, false);
        assert_eq!(inits.len(), 1, "one init, with the audio that came after the join");
        assert!(inits[0].windows(4).any(|w| w == b"mp4a"));
        // A hub that has both starts with both headers: the init goes with the first frame.
        let all = tags(30, Some(0));
        let start = [all[0].clone(), all[2].clone(), all[1].clone()];
        let (inits, _) = run_tags_joining(&start, true, true);
        assert_eq!(inits.len(), 1);
        assert!(inits[0].windows(4).any(|w| w == b"mp4a"));
    }

    #[tokio::test]
    async fn a_video_only_stream_waits_half_a_second_then_goes_without_audio() {
        let (inits, _) = run_tags(&tags(10, None));
        assert!(inits.is_empty(), "360 ms of video: still waiting for audio");
        let (inits, _) = run_tags(&tags(20, None));
        assert_eq!(inits.len(), 1);
        assert!(!inits[0].windows(4).any(|w| w == b"mp4a"));
    }

    #[tokio::test]
    async fn the_cached_gop_is_bounded() {
        let feed = Fmp4Feed::new(16, 25);
        feed.publish_init(b(0));
        for i in 1..6 {
            feed.publish_fragment(b(i), i == 1, 0.04);
        }
        assert_eq!(bytes(&feed.subscribe(Duration::ZERO).await.unwrap().start), [b(0)], "over 25 bytes: nothing until the next key");
        feed.publish_fragment(b(7), true, 0.04);
        assert_eq!(bytes(&feed.subscribe(Duration::ZERO).await.unwrap().start), [b(0), b(7)]);
    }
}
