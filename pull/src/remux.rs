//! From depacketized RTSP frames to FLV tags, without transcoding (sans-I/O).
//!
//! The output starts on a video key frame whose parameters are known, with `onMetaData` and
//! the sequence headers first, as a player joining the RTMP stream expects. Timestamps are put
//! on one 90 kHz timeline that keeps running across a reopened source (`discontinuity`): a
//! POSITION in a recording, or a reconnect, continues the same RTMP stream instead of jumping
//! back to zero, which players treat as a broken stream.

use bytes::Bytes;
use media::es::Codec;
use media::flv::{self, FlvMuxer, FlvOptions, FlvTag};
use media::{AudioConfig, MediaEvent, VideoConfig};

/// The gap put between the last tag before a discontinuity and the first after it (one frame
/// at 25 fps, in 90 kHz ticks).
const SPLICE_TICKS: u64 = 3600;

/// One track's clock: source ticks → the shared 90 kHz output timeline.
#[derive(Debug, Default, Clone, Copy)]
struct TrackClock {
    /// First source timestamp (90 kHz) since the last discontinuity.
    base: Option<i64>,
    last_out: u64,
}

impl TrackClock {
    fn map(&mut self, ts90: i64, offset: u64) -> u64 {
        let base = *self.base.get_or_insert(ts90);
        let out = offset + ts90.saturating_sub(base).max(0) as u64;
        // Never backwards on one track: FLV muxers and players reject it.
        let out = out.max(self.last_out);
        self.last_out = out;
        out
    }
}

pub struct Remuxer {
    muxer: FlvMuxer,
    opts: FlvOptions,
    video: Option<VideoConfig>,
    audio: Option<AudioConfig>,
    /// Headers sent for the current parameters; the next key frame resends them when false.
    headers_sent: bool,
    started: bool,
    offset: u64,
    video_clock: TrackClock,
    audio_clock: TrackClock,
    pub stats: RemuxStats,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RemuxStats {
    pub video_frames: u64,
    pub audio_frames: u64,
    pub bytes: u64,
    /// Frames dropped while waiting for the first key frame.
    pub dropped_before_key: u64,
}

/// The 90 kHz equivalent of `ticks` at `clock_hz`.
pub fn to_90k(ticks: i64, clock_hz: u32) -> i64 {
    if clock_hz == 90_000 || clock_hz == 0 {
        ticks
    } else {
        (i128::from(ticks) * 90_000 / i128::from(clock_hz)) as i64
    }
}

impl Default for Remuxer {
    fn default() -> Self {
        Self::new(FlvOptions::default())
    }
}

impl Remuxer {
    pub fn new(opts: FlvOptions) -> Self {
        Self {
            muxer: FlvMuxer::new(opts),
            opts,
            video: None,
            audio: None,
            headers_sent: false,
            started: false,
            offset: 0,
            video_clock: TrackClock::default(),
            audio_clock: TrackClock::default(),
            stats: RemuxStats::default(),
        }
    }

    /// The video parameters (from the SDP or a frame that changed them).
    pub fn set_video(&mut self, cfg: VideoConfig) {
        if self.video.as_ref() != Some(&cfg) {
            self.video = Some(cfg);
            self.headers_sent = false;
        }
    }

    pub fn set_audio(&mut self, cfg: AudioConfig) {
        if self.audio.as_ref() != Some(&cfg) {
            self.audio = Some(cfg);
            self.headers_sent = false;
        }
    }

    /// The video's parameters, once known.
    pub fn video_config(&self) -> Option<&VideoConfig> {
        self.video.as_ref()
    }

    pub fn has_video(&self) -> bool {
        self.video.is_some()
    }

    /// The source was reopened: its timestamps start again from anywhere, and the output goes
    /// on after the last tag sent. Waits for a key frame again.
    pub fn discontinuity(&mut self) {
        let last = self.video_clock.last_out.max(self.audio_clock.last_out);
        self.offset = if self.started { last + SPLICE_TICKS } else { 0 };
        self.video_clock.base = None;
        self.audio_clock.base = None;
        self.started = false;
        // A new publish (or a player that rejoins at the splice) needs them again.
        self.headers_sent = false;
    }

    fn headers(&mut self, out: &mut Vec<FlvTag>) {
        out.push(flv::metadata(self.video.as_ref(), self.audio.as_ref(), self.opts.hevc));
        if let Some(v) = self.video.clone() {
            out.extend(self.muxer.push(&MediaEvent::VideoConfig(v)));
        }
        if let Some(a) = self.audio.clone() {
            out.extend(self.muxer.push(&MediaEvent::AudioConfig(a)));
        }
        self.headers_sent = true;
    }

    /// One video frame, NALs with 4-byte lengths; `ts90` in 90 kHz (any origin).
    pub fn video(&mut self, key: bool, ts90: i64, data: &[u8], out: &mut Vec<FlvTag>) {
        let Some(codec) = self.video.as_ref().map(|v| v.codec) else {
            self.stats.dropped_before_key += 1;
            return;
        };
        if !self.started {
            if !key {
                self.stats.dropped_before_key += 1;
                return;
            }
            self.started = true;
        }
        if !self.headers_sent {
            if !key {
                // New parameters apply from the next key frame.
                self.stats.dropped_before_key += 1;
                return;
            }
            self.headers(out);
        }
        let dts = self.video_clock.map(ts90, self.offset);
        if let Some(tag) = self.muxer.video_length_prefixed(codec, key, dts, dts, data) {
            self.stats.video_frames += 1;
            self.stats.bytes += tag.wire.len() as u64;
            out.push(tag);
        }
    }

    /// One raw audio frame at `clock_hz`.
    pub fn audio(&mut self, ts: i64, clock_hz: u32, data: &[u8], out: &mut Vec<FlvTag>) {
        let Some(codec) = self.audio.as_ref().map(|a| a.codec) else { return };
        // Audio waits for the video's key frame, so the stream opens on a picture.
        if !self.started || !self.headers_sent {
            self.stats.dropped_before_key += 1;
            return;
        }
        let dts = self.audio_clock.map(to_90k(ts, clock_hz), self.offset);
        if let Some(tag) = self.muxer.audio_raw(codec, dts, data) {
            self.stats.audio_frames += 1;
            self.stats.bytes += tag.wire.len() as u64;
            out.push(tag);
        }
    }
}

/// An `AudioConfig` for what RTSP describes: `encoding` as retina names it (`mpeg4-generic`,
/// `pcma`, `pcmu`), `asc` the AudioSpecificConfig for AAC. `None` for what FLV cannot carry.
pub fn audio_config(encoding: &str, sample_rate: u32, channels: u8, asc: &[u8]) -> Option<AudioConfig> {
    let codec = match encoding.to_ascii_lowercase().as_str() {
        "mpeg4-generic" if asc.len() >= 2 => Codec::Aac,
        "pcma" => Codec::G711A,
        "pcmu" => Codec::G711U,
        _ => return None,
    };
    Some(AudioConfig { codec, sample_rate, channels, asc: Bytes::copy_from_slice(if codec == Codec::Aac { asc } else { &[] }) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use media::flv::TagKind;

    fn h264() -> VideoConfig {
        VideoConfig { codec: Codec::H264, width: 640, height: 360, fps: Some(25.0), record: Bytes::from_static(&[1, 0x42, 0, 0x1e, 0xff]) }
    }

    fn frame() -> Vec<u8> {
        vec![0, 0, 0, 2, 0x65, 0x88]
    }

    #[test]
    fn starts_on_a_key_frame_with_metadata_and_headers() {
        let mut r = Remuxer::default();
        r.set_audio(audio_config("PCMA", 8000, 1, &[]).unwrap());
        let mut out = Vec::new();
        r.video(false, 0, &frame(), &mut out); // no parameters yet
        r.set_video(h264());
        r.audio(0, 8000, &[0xd5; 160], &mut out); // before the key frame
        r.video(false, 3600, &frame(), &mut out); // not a key frame
        assert!(out.is_empty());
        r.video(true, 7200, &frame(), &mut out);
        r.audio(800, 8000, &[0xd5; 160], &mut out);
        let kinds: Vec<(TagKind, bool, u32)> = out.iter().map(|t| (t.kind, t.header, t.timestamp)).collect();
        assert_eq!(
            kinds,
            vec![(TagKind::Script, true, 0), (TagKind::Video, true, 0), (TagKind::Video, false, 0), (TagKind::Audio, false, 0)]
        );
        // The frame's NALs are copied as they are, after the 5-byte AVC video header.
        assert_eq!(&out[2].body()[5..], &frame()[..]);
        assert_eq!(r.stats.dropped_before_key, 3);
    }

    #[test]
    fn a_reopened_source_continues_the_timeline() {
        let mut r = Remuxer::default();
        r.set_video(h264());
        let mut out = Vec::new();
        r.video(true, 90_000, &frame(), &mut out);
        r.video(false, 93_600, &frame(), &mut out);
        assert_eq!(out.last().unwrap().timestamp, 40);
        r.discontinuity();
        out.clear();
        // The new source starts somewhere else entirely (an earlier point of a recording).
        r.video(false, 5, &frame(), &mut out);
        r.video(true, 10, &frame(), &mut out);
        r.video(false, 3610, &frame(), &mut out);
        let ts: Vec<u32> = out.iter().filter(|t| !t.header).map(|t| t.timestamp).collect();
        assert_eq!(ts, vec![80, 120], "continues 40 ms after the last tag");
        // Still never backwards when a source's own timestamps step back.
        r.video(false, 0, &frame(), &mut out);
        assert_eq!(out.last().unwrap().timestamp, 120);
    }

    #[test]
    fn new_parameters_resend_the_headers_at_the_next_key_frame() {
        let mut r = Remuxer::default();
        r.set_video(h264());
        let mut out = Vec::new();
        r.video(true, 0, &frame(), &mut out);
        let mut bigger = h264();
        bigger.width = 1280;
        r.set_video(bigger);
        out.clear();
        r.video(false, 3600, &frame(), &mut out);
        assert!(out.is_empty(), "a delta frame of the new parameters waits");
        r.video(true, 7200, &frame(), &mut out);
        assert!(out[0].kind == TagKind::Script && out[1].header && !out[2].header);
    }

    #[test]
    fn audio_codecs_flv_can_carry() {
        assert_eq!(audio_config("mpeg4-generic", 44100, 2, &[0x12, 0x10]).unwrap().codec, Codec::Aac);
        assert!(audio_config("mpeg4-generic", 44100, 2, &[]).is_none());
        assert_eq!(audio_config("PCMU", 8000, 1, &[1]).unwrap().asc.len(), 0);
        assert!(audio_config("opus", 48000, 2, &[]).is_none());
        assert_eq!(to_90k(8000, 8000), 90_000);
        assert_eq!(to_90k(44100, 44100), 90_000);
    }
}
