//! HLS for Safari, iOS and any player that reads playlists (`GET /live/{id}.m3u8`): fMP4
//! segments (HLS version 7, `#EXT-X-MAP`) cut at key frames from the stream's one fMP4 feed —
//! the same fragments the `.mp4` viewers get, never muxed twice, never transcoded.
//!
//! A packager starts with the first playlist request (its first segment comes from the feed's
//! GOP cache, so it is ready one key frame later) and keeps a sliding window of segments in
//! memory. HLS players poll; a packager nobody has asked for in `IDLE` stops, and with it its
//! hold on the feed. `Window` is the packager's state without I/O; `Hls` runs it.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::broadcast::error::RecvError;

use crate::fmp4_feed::{Fmp4Feed, Segment};
use crate::stream::StreamEntry;

/// Segments a playlist lists (about 6 s with a 1 s GOP; players start 3 from the end).
const WINDOW: usize = 6;
/// A key frame closes the open segment once it is at least this long.
const MIN_SEGMENT_SECS: f64 = 0.5;
/// A segment that grows this long without a key frame is dropped (bounded memory).
const MAX_SEGMENT_SECS: f64 = 20.0;
/// Segments the first playlist waits for: players start three target durations from the live
/// edge (RFC 8216 §6.3.3), and Chromium's player refuses a live playlist shorter than that.
const FIRST_PLAYLIST_SEGMENTS: u64 = 3;
/// A packager nobody has asked anything of for this long stops.
const IDLE: Duration = Duration::from_secs(30);

/// One HLS media segment: the fragments of one or more whole GOPs.
#[derive(Debug, Clone)]
pub struct HlsSegment {
    pub seq: u64,
    pub duration: f64,
    /// The feed's fragments as they are (served one after another, never copied together).
    pub parts: Vec<Bytes>,
    pub bytes: usize,
    /// Which init segment it needs.
    pub init_version: u32,
    /// Its discontinuity sequence number: a new configuration or a gap starts a new one.
    pub dsn: u64,
}

#[derive(Debug, Default)]
struct Open {
    parts: Vec<Bytes>,
    duration: f64,
    bytes: usize,
}

/// The packager's state, without I/O: fed the fMP4 feed's pieces in order, it cuts segments
/// at key frames and renders the playlist.
#[derive(Debug)]
pub struct Window {
    /// Init segments by version: the current one and any a listed segment still needs.
    inits: Vec<(u32, Bytes)>,
    version: u32,
    segments: VecDeque<HlsSegment>,
    next_seq: u64,
    open: Option<Open>,
    dsn: u64,
    /// The next closed segment starts a new discontinuity sequence.
    gap: bool,
    /// `#EXT-X-TARGETDURATION`: never below any listed segment, never lowered.
    target: u32,
    max_bytes: usize,
}

impl Window {
    /// `max_bytes`: the most one segment may hold (the hub's GOP bound).
    pub fn new(max_bytes: usize) -> Self {
        Self {
            inits: Vec::new(),
            version: 0,
            segments: VecDeque::new(),
            next_seq: 0,
            open: None,
            dsn: 0,
            gap: false,
            target: 1,
            max_bytes: max_bytes.max(1),
        }
    }

    /// Takes the next piece of the feed; true when it completed a segment.
    pub fn push(&mut self, seg: &Segment) -> bool {
        if seg.init {
            // A new configuration (or a restarted muxer, whose clock starts again): what is
            // open ends here, and what follows is a discontinuity with its own map.
            let closed = self.close();
            self.version += 1;
            self.inits.push((self.version, seg.bytes.clone()));
            self.gap = !self.segments.is_empty();
            self.retain_inits();
            return closed;
        }
        if self.inits.is_empty() {
            return false;
        }
        let closed = match &self.open {
            None if !seg.key => return false, // a segment begins with a key frame
            None => false,
            Some(open) if seg.key && open.duration >= MIN_SEGMENT_SECS => self.close(),
            Some(_) => false,
        };
        let open = self.open.get_or_insert_with(Open::default);
        open.parts.push(seg.bytes.clone());
        open.duration += seg.duration;
        open.bytes += seg.bytes.len();
        if open.bytes > self.max_bytes || open.duration > MAX_SEGMENT_SECS {
            tracing::info!(bytes = open.bytes, secs = open.duration, "HLS segment without a key frame too long: dropped");
            self.drop_open();
        }
        closed
    }

    /// The feed skipped fragments (this reader fell behind): what is open is cut short.
    pub fn lost(&mut self) {
        self.drop_open();
    }

    fn drop_open(&mut self) {
        self.open = None;
        self.gap = !self.segments.is_empty();
    }

    fn close(&mut self) -> bool {
        let Some(open) = self.open.take() else { return false };
        if self.gap {
            self.dsn += 1;
            self.gap = false;
        }
        self.target = self.target.max(open.duration.round() as u32).max(1);
        self.segments.push_back(HlsSegment {
            seq: self.next_seq,
            duration: open.duration,
            parts: open.parts,
            bytes: open.bytes,
            init_version: self.version,
            dsn: self.dsn,
        });
        self.next_seq += 1;
        while self.segments.len() > WINDOW {
            self.segments.pop_front();
        }
        self.retain_inits();
        true
    }

    fn retain_inits(&mut self) {
        let oldest = self.segments.front().map_or(self.version, |s| s.init_version);
        self.inits.retain(|(v, _)| *v >= oldest);
    }

    pub fn segment(&self, seq: u64) -> Option<&HlsSegment> {
        self.segments.iter().find(|s| s.seq == seq)
    }

    pub fn init(&self, version: u32) -> Option<Bytes> {
        self.inits.iter().find(|(v, _)| *v == version).map(|(_, b)| b.clone())
    }

    /// Completed segments so far.
    pub fn completed(&self) -> u64 {
        self.next_seq
    }

    /// The media playlist, with URIs relative to it; `None` before the first segment.
    pub fn playlist(&self, stream_id: &str) -> Option<String> {
        let first = self.segments.front()?;
        let mut out = String::with_capacity(128 + self.segments.len() * 64);
        let _ = write!(
            out,
            "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:{}\n#EXT-X-MEDIA-SEQUENCE:{}\n#EXT-X-DISCONTINUITY-SEQUENCE:{}\n#EXT-X-INDEPENDENT-SEGMENTS\n",
            self.target, first.seq, first.dsn
        );
        let mut previous: Option<&HlsSegment> = None;
        for s in &self.segments {
            if previous.is_some_and(|p| p.dsn != s.dsn) {
                out.push_str("#EXT-X-DISCONTINUITY\n");
            }
            if previous.is_none_or(|p| p.init_version != s.init_version) {
                let _ = writeln!(out, "#EXT-X-MAP:URI=\"{stream_id}.{}.init.mp4\"", s.init_version);
            }
            let _ = write!(out, "#EXTINF:{:.3},\n{stream_id}.{}.m4s\n", s.duration, s.seq);
            previous = Some(s);
        }
        Some(out)
    }
}

/// A stream's HLS packager.
pub struct Hls {
    window: Mutex<Window>,
    /// The number of completed segments, for playlist requests waiting for the first.
    completed: tokio::sync::watch::Sender<u64>,
    last_request_ms: AtomicU64,
    stopped: AtomicBool,
}

impl Hls {
    fn lock(&self) -> std::sync::MutexGuard<'_, Window> {
        self.window.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn touch(&self) {
        self.last_request_ms.store(kit::clock::now_ms(), Ordering::Relaxed);
    }

    /// The stream's packager, started if none runs (a playlist request).
    pub fn of(entry: &Arc<StreamEntry>) -> Arc<Hls> {
        let mut slot = entry.hls.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(hls) = slot.upgrade().filter(|h| !h.stopped.load(Ordering::Relaxed)) {
            hls.touch();
            return hls;
        }
        let hls = Arc::new(Hls {
            window: Mutex::new(Window::new(entry.hub.max_gop_bytes())),
            completed: tokio::sync::watch::channel(0).0,
            last_request_ms: AtomicU64::new(kit::clock::now_ms()),
            stopped: AtomicBool::new(false),
        });
        *slot = Arc::downgrade(&hls);
        tokio::spawn(run(hls.clone(), entry.clone()));
        hls
    }

    /// The running packager, if any (segment and init requests do not start one).
    pub fn running(entry: &StreamEntry) -> Option<Arc<Hls>> {
        let hls = entry.hls.lock().unwrap_or_else(|e| e.into_inner()).upgrade()?;
        hls.touch();
        Some(hls)
    }

    /// The playlist once it lists enough segments to start on, waiting up to `wait` for them
    /// (then what there is, if anything).
    pub async fn playlist(&self, stream_id: &str, wait: Duration) -> Option<String> {
        let mut completed = self.completed.subscribe();
        let _ = tokio::time::timeout(wait, completed.wait_for(|n| *n >= FIRST_PLAYLIST_SEGMENTS)).await;
        self.lock().playlist(stream_id)
    }

    pub fn segment(&self, seq: u64) -> Option<HlsSegment> {
        self.lock().segment(seq).cloned()
    }

    pub fn init(&self, version: u32) -> Option<Bytes> {
        self.lock().init(version)
    }

    fn push(&self, seg: &Segment) {
        let mut w = self.lock();
        if w.push(seg) {
            let n = w.completed();
            drop(w);
            self.completed.send_replace(n);
        }
    }
}

/// Reads the fMP4 feed into the window until the stream ends or nobody asks for a while.
async fn run(hls: Arc<Hls>, entry: Arc<StreamEntry>) {
    let _stop = StopOnDrop(Arc::downgrade(&hls));
    let feed = Fmp4Feed::of(&entry);
    let wait = crate::hub::VIDEO_WAIT + Duration::from_secs(2);
    let Some(mut sub) = feed.subscribe(wait).await else { return };
    for seg in std::mem::take(&mut sub.start) {
        hls.push(&seg);
    }
    let mut idle_check = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = entry.cancel.cancelled() => return,
            _ = idle_check.tick() => {
                let since = kit::clock::now_ms().saturating_sub(hls.last_request_ms.load(Ordering::Relaxed));
                if since > IDLE.as_millis() as u64 {
                    tracing::debug!(stream = %entry.id, "HLS packager idle: stopped");
                    return;
                }
            }
            r = sub.rx.recv() => match r {
                Ok(seg) => hls.push(&seg),
                Err(RecvError::Lagged(n)) => {
                    tracing::info!(stream = %entry.id, skipped = n, "HLS packager fell behind its feed");
                    hls.lock().lost();
                }
                Err(RecvError::Closed) => return,
            },
        }
    }
}

/// Marks the packager stopped however its task ends, so the next request starts a new one.
struct StopOnDrop(Weak<Hls>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        if let Some(h) = self.0.upgrade() {
            h.stopped.store(true, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn init(n: u8) -> Segment {
        Segment { bytes: Bytes::from(vec![n; 4]), init: true, key: false, duration: 0.0 }
    }

    fn frag(n: u8, key: bool) -> Segment {
        Segment { bytes: Bytes::from(vec![n; 10]), init: false, key, duration: 0.25 }
    }

    /// A GOP of four 0.25 s fragments, the first a key frame.
    fn gop(w: &mut Window, n: u8) -> bool {
        let mut closed = w.push(&frag(n, true));
        for i in 1..4 {
            closed |= w.push(&frag(n + i, false));
        }
        closed
    }

    #[test]
    fn segments_are_whole_gops_cut_at_key_frames() {
        let mut w = Window::new(1 << 20);
        assert!(!w.push(&frag(1, true)), "no init yet: nothing");
        w.push(&init(0));
        assert!(!w.push(&frag(2, false)), "a segment starts with a key frame");
        assert!(w.playlist("s").is_none());
        assert!(!gop(&mut w, 10));
        assert!(gop(&mut w, 20), "the next key frame closes the first segment");
        let s = w.segment(0).unwrap();
        assert_eq!((s.parts.len(), s.bytes, s.duration), (4, 40, 1.0));
        assert_eq!(s.parts[0][0], 10);
        assert_eq!(
            w.playlist("cam").unwrap(),
            "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-DISCONTINUITY-SEQUENCE:0\n\
             #EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-MAP:URI=\"cam.1.init.mp4\"\n#EXTINF:1.000,\ncam.0.m4s\n"
        );
        assert_eq!(w.init(1).unwrap()[0], 0);
    }

    #[test]
    fn short_gops_are_joined_and_the_window_slides() {
        let mut w = Window::new(1 << 20);
        w.push(&init(0));
        // Key frames every 0.25 s: a segment takes them until it is half a second long.
        for i in 0..40 {
            w.push(&frag(i, true));
        }
        assert!(w.segments.iter().all(|s| s.duration == 0.5 && s.parts.len() == 2));
        assert_eq!(w.segments.len(), WINDOW);
        assert_eq!(w.completed(), 19);
        assert_eq!(w.segments.front().unwrap().seq, 19 - WINDOW as u64);
        assert!(w.segment(0).is_none(), "slid out");
        assert!(w.playlist("s").unwrap().contains(&format!("#EXT-X-MEDIA-SEQUENCE:{}\n", 19 - WINDOW)));
    }

    #[test]
    fn a_new_init_is_a_discontinuity_with_its_own_map() {
        let mut w = Window::new(1 << 20);
        w.push(&init(0));
        gop(&mut w, 10);
        gop(&mut w, 20);
        assert!(w.push(&init(1)), "the open segment ends at the new configuration");
        gop(&mut w, 30);
        gop(&mut w, 40);
        let p = w.playlist("s").unwrap();
        assert!(
            p.ends_with(
                "#EXT-X-MAP:URI=\"s.1.init.mp4\"\n#EXTINF:1.000,\ns.0.m4s\n#EXTINF:1.000,\ns.1.m4s\n\
                 #EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"s.2.init.mp4\"\n#EXTINF:1.000,\ns.2.m4s\n"
            ),
            "{p}"
        );
        assert_eq!(w.init(2).unwrap()[0], 1);
        // Once the old segments slide out, the old init goes and the sequence is counted.
        for i in 0..WINDOW as u8 {
            gop(&mut w, 50 + i * 4);
        }
        assert!(w.init(1).is_none());
        let p = w.playlist("s").unwrap();
        assert!(p.contains("#EXT-X-DISCONTINUITY-SEQUENCE:1\n") && !p.contains("#EXT-X-DISCONTINUITY\n"), "{p}");
    }

    #[test]
    fn a_segment_without_a_key_frame_is_bounded_and_a_lag_cuts_it_short() {
        let mut w = Window::new(35);
        w.push(&init(0));
        gop(&mut w, 10); // 40 bytes > 35: dropped on its fourth fragment
        assert!(w.open.is_none() && w.segments.is_empty());
        let mut w = Window::new(1 << 20);
        w.push(&init(0));
        gop(&mut w, 10);
        gop(&mut w, 20);
        w.lost();
        assert!(!w.push(&frag(1, false)), "after a gap, wait for a key frame");
        gop(&mut w, 30);
        gop(&mut w, 40);
        let p = w.playlist("s").unwrap();
        assert!(p.ends_with("#EXTINF:1.000,\ns.0.m4s\n#EXT-X-DISCONTINUITY\n#EXTINF:1.000,\ns.1.m4s\n"), "{p}");
    }
}
