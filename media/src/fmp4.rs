//! Fragmented MP4 (ISO/IEC 14496-12) for browsers' Media Source Extensions and HLS fMP4: an
//! init segment (`ftyp` + `moov` with one track per codec: `avc1`/`hvc1` with the avcC/hvcC
//! record, `mp4a` with the AAC AudioSpecificConfig) and media segments (`moof` + `mdat`).
//!
//! `Fmp4Muxer` takes the same `MediaEvent`s as the FLV muxer, or the FLV tags themselves
//! (`push_flv`: an output started on demand from a stream's FLV hub; FLV bodies are already
//! length-prefixed, so a sample is a slice of the tag, not a copy). A sample's duration is the
//! distance to the next one, so each track holds back its newest sample until the next
//! arrives (one frame of latency, exact durations). Video goes out length-prefixed without
//! parameter sets (they live in the init segment, as `avc1`/`hvc1` require); a new
//! configuration asks for a new init segment. G.711 has no MSE mapping and is left out.

use bytes::{BufMut, Bytes, BytesMut};

use crate::access_unit::{AccessUnit, AudioConfig, MediaEvent, VideoConfig};
use crate::codec::{h264, h265, nal};
use crate::es::Codec;
use crate::flv::{FlvTag, TagKind, VideoBody, VideoPacket};

/// Video timescale: the 90 kHz of RTP and PES, so no timestamp is rounded.
pub const VIDEO_TIMESCALE: u32 = 90_000;
const VIDEO_TRACK: u32 = 1;
const AUDIO_TRACK: u32 = 2;
/// A sample's `sample_flags`: a sync sample (depends on no other)…
const KEY_FLAGS: u32 = 0x0200_0000;
/// …or one that depends on others and is not a sync sample.
const DELTA_FLAGS: u32 = 0x0101_0000;
/// Samples held per track before a fragment must be taken (bounds memory if nobody takes).
const MAX_PENDING: usize = 1024;

/// One sample ready for a fragment (or for a whole file's `mdat`, `mp4_file`).
#[derive(Debug, Clone)]
pub struct Sample {
    /// In the track's timescale, from the muxer's origin.
    pub dts: u64,
    /// Composition offset (pts − dts), track timescale.
    pub cto: i32,
    pub duration: u32,
    pub key: bool,
    /// Length-prefixed NAL units (video) or a raw AAC frame.
    pub data: Bytes,
}

#[derive(Debug, Default)]
struct Track {
    /// Samples with known durations, waiting for `take_fragment`.
    ready: Vec<Sample>,
    /// The newest sample: its duration comes with the next one.
    last: Option<Sample>,
}

impl Track {
    fn push(&mut self, s: Sample, fallback_duration: u32) {
        if let Some(mut prev) = self.last.take() {
            // A timestamp that goes back or stands still gets the usual duration instead.
            prev.duration = u32::try_from(s.dts.saturating_sub(prev.dts)).ok().filter(|d| *d > 0).unwrap_or(fallback_duration);
            if self.ready.len() < MAX_PENDING {
                self.ready.push(prev);
            }
        }
        self.last = Some(s);
    }
}

/// Muxes one stream's events into an init segment and media fragments.
#[derive(Debug, Default)]
pub struct Fmp4Muxer {
    video: Option<VideoConfig>,
    audio: Option<AudioConfig>,
    /// A configuration changed since `init_segment` was last taken.
    init_changed: bool,
    /// 90 kHz time that maps to 0 in the output.
    origin: Option<u64>,
    video_track: Track,
    audio_track: Track,
    sequence: u32,
    /// Video frame duration in 90 kHz ticks, while no two timestamps say better.
    video_ticks: u32,
    nal_scratch: Vec<std::ops::Range<usize>>,
}

impl Fmp4Muxer {
    pub fn new() -> Self {
        Self { video_ticks: 3600, ..Default::default() }
    }

    /// Takes in one event. Frames before the first configuration of their track are dropped.
    pub fn push(&mut self, ev: &MediaEvent) {
        match ev {
            // A configuration seen again changes nothing.
            MediaEvent::VideoConfig(c) if matches!(c.codec, Codec::H264 | Codec::H265) && self.video.as_ref() != Some(c) => {
                if let Some(fps) = c.fps.filter(|f| *f > 0.0) {
                    self.video_ticks = (f64::from(VIDEO_TIMESCALE) / fps).round() as u32;
                }
                self.video = Some(c.clone());
                self.init_changed = true;
            }
            MediaEvent::AudioConfig(c)
                if c.codec == Codec::Aac && !c.asc.is_empty() && c.sample_rate > 0 && self.audio.as_ref() != Some(c) =>
            {
                self.audio = Some(c.clone());
                self.init_changed = true;
            }
            MediaEvent::Frame(au) => self.frame(au),
            _ => {}
        }
    }

    fn frame(&mut self, au: &AccessUnit) {
        match au.codec {
            Codec::H264 | Codec::H265 if self.video.as_ref().is_some_and(|v| v.codec == au.codec) => {
                let origin = *self.origin.get_or_insert(au.dts);
                let data = self.length_prefixed(au.codec, &au.data);
                if data.is_empty() {
                    return;
                }
                let cto = i32::try_from(au.pts as i64 - au.dts as i64).unwrap_or(0);
                let s = Sample { dts: au.dts.saturating_sub(origin), cto, duration: self.video_ticks, key: au.key, data };
                self.video_track.push(s, self.video_ticks);
            }
            Codec::Aac => {
                let Some(rate) = self.audio.as_ref().map(|a| u64::from(a.sample_rate)) else { return };
                let origin = *self.origin.get_or_insert(au.dts);
                // 1024 samples per AAC frame; timestamps in the audio's own clock.
                let dts = au.dts.saturating_sub(origin) * rate / u64::from(VIDEO_TIMESCALE);
                let s = Sample { dts, cto: 0, duration: 1024, key: true, data: au.data.clone() };
                self.audio_track.push(s, 1024);
            }
            _ => {}
        }
    }

    /// Takes in one FLV tag as `flv::FlvMuxer` writes them (AVC, H.265 as codec 12 or
    /// Enhanced RTMP `hvc1`, AAC); anything else is left out. Timestamps are the tag's
    /// milliseconds.
    pub fn push_flv(&mut self, tag: &FlvTag) {
        let body = tag.body();
        match tag.kind {
            TagKind::Video => self.flv_video(tag, &body),
            TagKind::Audio => self.flv_audio(tag, &body),
            TagKind::Script => {}
        }
    }

    fn flv_video(&mut self, tag: &FlvTag, body: &Bytes) {
        let Some(VideoBody { codec, packet, data }) = VideoBody::parse(body) else { return };
        let cts_ms = match packet {
            VideoPacket::Header => {
                let sps = match codec {
                    Codec::H264 => avcc_sps(&data).and_then(|s| h264::parse_sps(s).ok()).map(|s| (s.width, s.height, s.fps)),
                    _ => hvcc_sps(&data).and_then(|s| h265::parse_sps(s).ok()).map(|s| (s.width, s.height, None)),
                };
                let Some((width, height, fps)) = sps else { return };
                self.push(&MediaEvent::VideoConfig(VideoConfig { codec, width, height, fps, record: data }));
                return;
            }
            VideoPacket::Frame { cts_ms } => cts_ms,
        };
        if self.video.as_ref().is_none_or(|v| v.codec != codec) {
            return;
        }
        let Some(data) = without_parameter_sets(codec, data) else { return };
        let dts = u64::from(tag.timestamp) * 90;
        let origin = *self.origin.get_or_insert(dts);
        let s = Sample { dts: dts.saturating_sub(origin), cto: cts_ms.saturating_mul(90), duration: self.video_ticks, key: tag.key, data };
        self.video_track.push(s, self.video_ticks);
    }

    fn flv_audio(&mut self, tag: &FlvTag, body: &Bytes) {
        if body.len() < 2 || body[0] >> 4 != 10 {
            return; // not AAC: G.711 has no MSE mapping
        }
        if body[1] == 0 {
            let asc = body.slice(2..);
            let Some((sample_rate, channels)) = asc_rate_channels(&asc) else { return };
            self.push(&MediaEvent::AudioConfig(AudioConfig { codec: Codec::Aac, sample_rate, channels, asc }));
            return;
        }
        let dts = u64::from(tag.timestamp) * 90;
        self.frame(&AccessUnit { codec: Codec::Aac, pts: dts, dts, key: true, data: body.slice(2..) });
    }

    /// Annex B → 4-byte length prefixes, parameter sets and delimiters left out.
    fn length_prefixed(&mut self, codec: Codec, annex_b: &[u8]) -> Bytes {
        self.nal_scratch.clear();
        nal::split(annex_b, &mut self.nal_scratch);
        let mut out = BytesMut::with_capacity(annex_b.len() + 16);
        for r in &self.nal_scratch {
            let unit = &annex_b[r.clone()];
            let skip = match codec {
                // SPS, PPS, access unit delimiter.
                Codec::H264 => matches!(h264::nal_type(unit), 7..=9),
                _ => matches!(h265::nal_type(unit), 32..=35),
            };
            if unit.is_empty() || skip {
                continue;
            }
            out.put_u32(unit.len() as u32);
            out.put_slice(unit);
        }
        out.freeze()
    }

    /// The init segment, when a configuration arrived or changed since it was last taken
    /// (a player starts over with it). `None` until the video's (or, audio only, the audio's)
    /// configuration is known.
    pub fn take_init_segment(&mut self) -> Option<Bytes> {
        if !self.init_changed {
            return None;
        }
        let seg = self.init_segment()?;
        self.init_changed = false;
        Some(seg)
    }

    /// The current init segment, for a player joining.
    pub fn init_segment(&self) -> Option<Bytes> {
        if self.video.is_none() && self.audio.is_none() {
            return None;
        }
        Some(init_segment(self.video.as_ref(), self.audio.as_ref()))
    }

    /// Whether the next fragment starts with a video key frame (where a joining player may
    /// begin).
    pub fn fragment_starts_with_key(&self) -> bool {
        self.video_track.ready.first().is_some_and(|s| s.key)
    }

    /// Where the next fragment lies on the stream's clock: (start, duration) in seconds of its
    /// video, or of its audio when it has no video; `None` when no sample is ready. An HLS
    /// playlist's `#EXTINF` is the sum of these.
    pub fn fragment_span(&self) -> Option<(f64, f64)> {
        let (track, scale) = if self.video_track.ready.is_empty() {
            (&self.audio_track, f64::from(self.audio.as_ref().map_or(0, |a| a.sample_rate)))
        } else {
            (&self.video_track, f64::from(VIDEO_TIMESCALE))
        };
        let first = track.ready.first()?;
        if scale <= 0.0 {
            return None;
        }
        let ticks: u64 = track.ready.iter().map(|s| u64::from(s.duration)).sum();
        Some((first.dts as f64 / scale, ticks as f64 / scale))
    }

    /// Video samples waiting for the next fragment.
    pub fn pending_video(&self) -> usize {
        self.video_track.ready.len()
    }

    /// Which tracks have a configuration: (video, audio).
    pub fn tracks(&self) -> (bool, bool) {
        (self.video.is_some(), self.audio.is_some())
    }

    /// Whether a sample waits for the next one to know its duration.
    pub fn has_pending(&self) -> bool {
        self.video_track.last.is_some() || self.audio_track.last.is_some()
    }

    /// The source has stalled (or ended): the newest samples go into the next fragment with
    /// their usual duration instead of waiting.
    pub fn flush(&mut self) {
        for track in [&mut self.video_track, &mut self.audio_track] {
            if let Some(s) = track.last.take() {
                if track.ready.len() < MAX_PENDING {
                    track.ready.push(s);
                }
            }
        }
    }

    /// Every sample whose duration is known, (video, audio), for a writer of whole files.
    pub fn take_samples(&mut self) -> (Vec<Sample>, Vec<Sample>) {
        (std::mem::take(&mut self.video_track.ready), std::mem::take(&mut self.audio_track.ready))
    }

    /// The tracks' configurations as they stand (video, audio).
    pub fn configs(&self) -> (Option<&VideoConfig>, Option<&AudioConfig>) {
        (self.video.as_ref(), self.audio.as_ref())
    }

    /// A media segment (`moof` + `mdat`) with every sample whose duration is known, or `None`
    /// when there is none.
    pub fn take_fragment(&mut self) -> Option<Bytes> {
        let video = std::mem::take(&mut self.video_track.ready);
        let audio = std::mem::take(&mut self.audio_track.ready);
        if video.is_empty() && audio.is_empty() {
            return None;
        }
        self.sequence += 1;
        let mut tracks = Vec::with_capacity(2);
        // Durations are the distances between decode times, so each fragment starts where the
        // last one ended: its first sample's decode time.
        if let Some(first) = video.first() {
            tracks.push((VIDEO_TRACK, first.dts, true, video));
        }
        if let Some(first) = audio.first() {
            tracks.push((AUDIO_TRACK, first.dts, false, audio));
        }
        Some(fragment(self.sequence, &tracks))
    }
}

/// The first SPS in an AVCDecoderConfigurationRecord.
fn avcc_sps(record: &[u8]) -> Option<&[u8]> {
    if record.get(5)? & 0x1f == 0 {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([*record.get(6)?, *record.get(7)?]));
    record.get(8..8 + len)
}

/// The first SPS (NAL type 33) in an HEVCDecoderConfigurationRecord.
fn hvcc_sps(record: &[u8]) -> Option<&[u8]> {
    let arrays = *record.get(22)?;
    let mut i = 23;
    for _ in 0..arrays {
        let kind = record.get(i)? & 0x3f;
        let count = u16::from_be_bytes([*record.get(i + 1)?, *record.get(i + 2)?]);
        i += 3;
        for _ in 0..count {
            let len = usize::from(u16::from_be_bytes([*record.get(i)?, *record.get(i + 1)?]));
            let unit = record.get(i + 2..i + 2 + len)?;
            if kind == 33 {
                return Some(unit);
            }
            i += 2 + len;
        }
    }
    None
}

/// Sample rate and channels of an AudioSpecificConfig with an indexed rate (every camera's;
/// an explicit 24-bit rate is not taken).
fn asc_rate_channels(asc: &[u8]) -> Option<(u32, u8)> {
    const RATES: [u32; 13] = [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350];
    let bits = u16::from_be_bytes([*asc.first()?, *asc.get(1)?]);
    let index = usize::from((bits >> 7) & 0xf);
    Some((*RATES.get(index)?, ((bits >> 3) & 0xf) as u8))
}

/// Length-prefixed NALs without parameter sets and delimiters: the same bytes (no copy) when
/// there are none, as in nearly every frame; `None` when nothing is left or the framing is bad.
fn without_parameter_sets(codec: Codec, data: Bytes) -> Option<Bytes> {
    let drop = |unit: &[u8]| match codec {
        Codec::H264 => matches!(h264::nal_type(unit), 7..=9),
        _ => matches!(h265::nal_type(unit), 32..=35),
    };
    let mut units = Vec::new();
    let mut i = 0;
    while i < data.len() {
        let len = u32::from_be_bytes(data.get(i..i + 4)?.try_into().ok()?) as usize;
        let unit = i + 4..(i + 4).checked_add(len).filter(|end| *end <= data.len())?;
        units.push(unit);
        i = units.last()?.end;
    }
    if !units.iter().any(|u| drop(&data[u.clone()])) {
        return (!data.is_empty()).then_some(data);
    }
    let mut out = BytesMut::with_capacity(data.len());
    for u in units.iter().filter(|u| !drop(&data[(*u).clone()])) {
        out.put_u32(u.len() as u32);
        out.put_slice(&data[u.clone()]);
    }
    (!out.is_empty()).then(|| out.freeze())
}

// ---- boxes ----------------------------------------------------------------------------------

/// Writes a box: size, type, then what `body` writes.
pub(crate) fn mp4_box(out: &mut BytesMut, kind: &[u8; 4], body: impl FnOnce(&mut BytesMut)) {
    let start = out.len();
    out.put_u32(0);
    out.put_slice(kind);
    body(out);
    let size = (out.len() - start) as u32;
    out[start..start + 4].copy_from_slice(&size.to_be_bytes());
}

/// A full box: a box with version and flags.
pub(crate) fn full_box(out: &mut BytesMut, kind: &[u8; 4], version: u8, flags: u32, body: impl FnOnce(&mut BytesMut)) {
    mp4_box(out, kind, |b| {
        b.put_u32((u32::from(version) << 24) | (flags & 0x00ff_ffff));
        body(b);
    });
}

const MATRIX: [u32; 9] = [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000];

/// `ftyp` + `moov` for the tracks given, as a fragmented file starts.
pub fn init_segment(video: Option<&VideoConfig>, audio: Option<&AudioConfig>) -> Bytes {
    let mut out = BytesMut::with_capacity(1024);
    ftyp(&mut out, video);
    let none = Timing::fragmented();
    moov(&mut out, video.map(|v| (v, &none)), audio.map(|a| (a, &none)), 0, true);
    out.freeze()
}

/// What a `trak` says of its samples: nothing, for a fragmented file (they come in
/// fragments), or a whole file's duration and sample tables.
pub(crate) struct Timing<'a> {
    /// In the track's timescale.
    pub duration: u64,
    /// Writes the boxes of `stbl` after `stsd`.
    pub tables: &'a dyn Fn(&mut BytesMut),
}

impl Timing<'static> {
    fn fragmented() -> Self {
        fn empty(b: &mut BytesMut) {
            for kind in [b"stts", b"stsc", b"stco"] {
                full_box(b, kind, 0, 0, |b| b.put_u32(0));
            }
            full_box(b, b"stsz", 0, 0, |b| {
                b.put_u32(0);
                b.put_u32(0);
            });
        }
        Timing { duration: 0, tables: &empty }
    }
}

pub(crate) fn ftyp(out: &mut BytesMut, video: Option<&VideoConfig>) {
    mp4_box(out, b"ftyp", |b| {
        b.put_slice(b"isom");
        b.put_u32(0x200);
        for brand in [b"isom", b"iso6", b"mp41"] {
            b.put_slice(brand);
        }
        b.put_slice(if video.is_some_and(|v| v.codec == Codec::H265) { b"hvc1" } else { b"avc1" });
    });
}

/// `moov`: the movie header (duration in ms; 0 for live), a `trak` per track and, for a
/// fragmented file, `mvex`.
pub(crate) fn moov(
    out: &mut BytesMut,
    video: Option<(&VideoConfig, &Timing)>,
    audio: Option<(&AudioConfig, &Timing)>,
    duration_ms: u64,
    fragmented: bool,
) {
    let duration_ms = u32::try_from(duration_ms).unwrap_or(u32::MAX);
    mp4_box(out, b"moov", |b| {
        full_box(b, b"mvhd", 0, 0, |b| {
            b.put_u32(0); // creation
            b.put_u32(0); // modification
            b.put_u32(1000);
            b.put_u32(duration_ms);
            b.put_u32(0x0001_0000); // rate 1.0
            b.put_u16(0x0100); // volume 1.0
            b.put_bytes(0, 10);
            MATRIX.iter().for_each(|m| b.put_u32(*m));
            b.put_bytes(0, 24);
            b.put_u32(AUDIO_TRACK + 1); // next track id
        });
        if let Some((v, t)) = video {
            video_trak(b, v, t, duration_ms);
        }
        if let Some((a, t)) = audio {
            audio_trak(b, a, t, duration_ms);
        }
        if !fragmented {
            return;
        }
        mp4_box(b, b"mvex", |b| {
            let ids = video.map(|_| VIDEO_TRACK).into_iter().chain(audio.map(|_| AUDIO_TRACK));
            for id in ids {
                full_box(b, b"trex", 0, 0, |b| {
                    b.put_u32(id);
                    b.put_u32(1); // sample description index
                    b.put_u32(0);
                    b.put_u32(0);
                    b.put_u32(0);
                });
            }
        });
    });
}

fn tkhd(b: &mut BytesMut, id: u32, audio: bool, width: u32, height: u32, duration_ms: u32) {
    full_box(b, b"tkhd", 0, 3, |b| {
        b.put_u32(0);
        b.put_u32(0);
        b.put_u32(id);
        b.put_u32(0);
        b.put_u32(duration_ms); // in the movie's timescale
        b.put_bytes(0, 8);
        b.put_u16(0); // layer
        b.put_u16(0); // alternate group
        b.put_u16(if audio { 0x0100 } else { 0 });
        b.put_u16(0);
        MATRIX.iter().for_each(|m| b.put_u32(*m));
        b.put_u32(width << 16);
        b.put_u32(height << 16);
    });
}

fn mdia_head(b: &mut BytesMut, timescale: u32, duration: u64, handler: &[u8; 4], name: &str) {
    full_box(b, b"mdhd", 0, 0, |b| {
        b.put_u32(0);
        b.put_u32(0);
        b.put_u32(timescale);
        b.put_u32(u32::try_from(duration).unwrap_or(u32::MAX));
        b.put_u16(0x55c4); // "und"
        b.put_u16(0);
    });
    full_box(b, b"hdlr", 0, 0, |b| {
        b.put_u32(0);
        b.put_slice(handler);
        b.put_bytes(0, 12);
        b.put_slice(name.as_bytes());
        b.put_u8(0);
    });
}

/// `dinf` and the sample tables: `stsd`, then what `timing` writes.
fn minf_tail(b: &mut BytesMut, timing: &Timing, sample_entry: impl FnOnce(&mut BytesMut)) {
    mp4_box(b, b"dinf", |b| {
        full_box(b, b"dref", 0, 0, |b| {
            b.put_u32(1);
            full_box(b, b"url ", 0, 1, |_| {});
        });
    });
    mp4_box(b, b"stbl", |b| {
        full_box(b, b"stsd", 0, 0, |b| {
            b.put_u32(1);
            sample_entry(b);
        });
        (timing.tables)(b);
    });
}

fn video_trak(b: &mut BytesMut, v: &VideoConfig, timing: &Timing, duration_ms: u32) {
    let (w, h) = (v.width.min(0xffff), v.height.min(0xffff));
    mp4_box(b, b"trak", |b| {
        tkhd(b, VIDEO_TRACK, false, w, h, duration_ms);
        mp4_box(b, b"mdia", |b| {
            mdia_head(b, VIDEO_TIMESCALE, timing.duration, b"vide", "gbcluster video");
            mp4_box(b, b"minf", |b| {
                full_box(b, b"vmhd", 0, 1, |b| b.put_bytes(0, 8));
                minf_tail(b, timing, |b| {
                    let (entry, record) = if v.codec == Codec::H265 { (b"hvc1", b"hvcC") } else { (b"avc1", b"avcC") };
                    mp4_box(b, entry, |b| {
                        b.put_bytes(0, 6);
                        b.put_u16(1); // data reference index
                        b.put_bytes(0, 16);
                        b.put_u16(w as u16);
                        b.put_u16(h as u16);
                        b.put_u32(0x0048_0000); // 72 dpi
                        b.put_u32(0x0048_0000);
                        b.put_u32(0);
                        b.put_u16(1); // frame count
                        b.put_bytes(0, 32); // compressor name
                        b.put_u16(0x0018); // depth
                        b.put_i16(-1);
                        mp4_box(b, record, |b| b.put_slice(&v.record));
                    });
                });
            });
        });
    });
}

/// An MPEG-4 descriptor: tag, size (4-byte form, as most muxers write), body.
fn descriptor(b: &mut BytesMut, tag: u8, body: &[u8]) {
    b.put_u8(tag);
    let n = body.len() as u32;
    b.put_slice(&[0x80 | ((n >> 21) & 0x7f) as u8, 0x80 | ((n >> 14) & 0x7f) as u8, 0x80 | ((n >> 7) & 0x7f) as u8, (n & 0x7f) as u8]);
    b.put_slice(body);
}

fn esds(b: &mut BytesMut, a: &AudioConfig) {
    full_box(b, b"esds", 0, 0, |b| {
        let mut dsi = BytesMut::new();
        descriptor(&mut dsi, 0x05, &a.asc);
        let mut dcd = BytesMut::new();
        dcd.put_u8(0x40); // MPEG-4 audio
        dcd.put_u8(0x15); // audio stream
        dcd.put_slice(&[0, 0, 0]); // buffer size
        dcd.put_u32(0); // max bitrate
        dcd.put_u32(0); // avg bitrate
        dcd.put_slice(&dsi);
        let mut es = BytesMut::new();
        es.put_u16(AUDIO_TRACK as u16);
        es.put_u8(0);
        descriptor(&mut es, 0x04, &dcd);
        descriptor(&mut es, 0x06, &[0x02]);
        descriptor(b, 0x03, &es);
    });
}

fn audio_trak(b: &mut BytesMut, a: &AudioConfig, timing: &Timing, duration_ms: u32) {
    mp4_box(b, b"trak", |b| {
        tkhd(b, AUDIO_TRACK, true, 0, 0, duration_ms);
        mp4_box(b, b"mdia", |b| {
            mdia_head(b, a.sample_rate, timing.duration, b"soun", "gbcluster audio");
            mp4_box(b, b"minf", |b| {
                full_box(b, b"smhd", 0, 0, |b| b.put_u32(0));
                minf_tail(b, timing, |b| {
                    mp4_box(b, b"mp4a", |b| {
                        b.put_bytes(0, 6);
                        b.put_u16(1);
                        b.put_bytes(0, 8);
                        b.put_u16(u16::from(a.channels.max(1)));
                        b.put_u16(16);
                        b.put_u32(0);
                        // 16.16; a rate above 65535 Hz does not fit and is read from the ASC.
                        b.put_u32(if a.sample_rate <= 0xffff { a.sample_rate << 16 } else { 0 });
                        esds(b, a);
                    });
                });
            });
        });
    });
}

/// `moof` + `mdat` with one `traf` per `(track id, base decode time, is video, samples)`.
fn fragment(sequence: u32, tracks: &[(u32, u64, bool, Vec<Sample>)]) -> Bytes {
    let payload: usize = tracks.iter().flat_map(|t| t.3.iter()).map(|s| s.data.len()).sum();
    let mut out = BytesMut::with_capacity(payload + 128 + tracks.iter().map(|t| t.3.len() * 16).sum::<usize>());
    // Where each trun's data_offset goes, patched once the moof's size is known.
    let mut offsets = Vec::with_capacity(tracks.len());
    mp4_box(&mut out, b"moof", |b| {
        full_box(b, b"mfhd", 0, 0, |b| b.put_u32(sequence));
        for (id, base, video, samples) in tracks {
            mp4_box(b, b"traf", |b| {
                // default-base-is-moof: data offsets count from this moof.
                full_box(b, b"tfhd", 0, 0x02_0000, |b| b.put_u32(*id));
                full_box(b, b"tfdt", 1, 0, |b| b.put_u64(*base));
                // data offset, duration, size; video also flags and composition offsets.
                let flags = if *video { 0x000f01 } else { 0x000301 };
                full_box(b, b"trun", 1, flags, |b| {
                    b.put_u32(samples.len() as u32);
                    offsets.push(b.len());
                    b.put_i32(0);
                    for s in samples {
                        b.put_u32(s.duration);
                        b.put_u32(s.data.len() as u32);
                        if *video {
                            b.put_u32(if s.key { KEY_FLAGS } else { DELTA_FLAGS });
                            b.put_i32(s.cto);
                        }
                    }
                });
            });
        }
    });
    let moof_size = out.len();
    let mut at = moof_size + 8;
    for ((_, _, _, samples), pos) in tracks.iter().zip(offsets) {
        out[pos..pos + 4].copy_from_slice(&(at as i32).to_be_bytes());
        at += samples.iter().map(|s| s.data.len()).sum::<usize>();
    }
    mp4_box(&mut out, b"mdat", |b| {
        for s in tracks.iter().flat_map(|t| t.3.iter()) {
            b.put_slice(&s.data);
        }
    });
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_vectors::{H264_PPS, H264_SPS_320X240};

    fn video_config() -> VideoConfig {
        let record = h264::avc_config(&H264_SPS_320X240, &H264_PPS).unwrap();
        VideoConfig { codec: Codec::H264, width: 320, height: 240, fps: Some(25.0), record: record.into() }
    }

    fn frame(dts: u64, pts: u64, key: bool) -> MediaEvent {
        let mut data = vec![0, 0, 0, 1];
        data.extend_from_slice(&H264_SPS_320X240);
        data.extend_from_slice(&[0, 0, 0, 1, if key { 0x65 } else { 0x41 }, 0x88, 0x84]);
        MediaEvent::Frame(AccessUnit { codec: Codec::H264, pts, dts, key, data: data.into() })
    }

    /// The boxes at the top level of `data`: (type, size).
    fn boxes(data: &[u8]) -> Vec<(String, usize)> {
        let mut out = vec![];
        let mut i = 0;
        while i + 8 <= data.len() {
            let size = u32::from_be_bytes(data[i..i + 4].try_into().unwrap()) as usize;
            out.push((String::from_utf8_lossy(&data[i + 4..i + 8]).into_owned(), size));
            assert!(size >= 8 && i + size <= data.len(), "box sizes add up");
            i += size;
        }
        assert_eq!(i, data.len());
        out
    }

    #[test]
    fn init_segment_waits_for_a_configuration_and_repeats_only_on_change() {
        let mut m = Fmp4Muxer::new();
        assert!(m.take_init_segment().is_none());
        m.push(&MediaEvent::VideoConfig(video_config()));
        let init = m.take_init_segment().expect("init");
        assert_eq!(boxes(&init).iter().map(|b| b.0.as_str()).collect::<Vec<_>>(), ["ftyp", "moov"]);
        assert!(init.windows(4).any(|w| w == b"avcC"));
        m.push(&MediaEvent::VideoConfig(video_config()));
        assert!(m.take_init_segment().is_none(), "the same configuration again: nothing new");
        assert_eq!(m.init_segment(), Some(init), "a joining player still gets it");
    }

    #[test]
    fn samples_wait_for_their_duration_and_lose_their_parameter_sets() {
        let mut m = Fmp4Muxer::new();
        m.push(&MediaEvent::VideoConfig(video_config()));
        m.push(&frame(1000, 1000, true));
        assert!(m.take_fragment().is_none(), "the only sample's duration is not known yet");
        m.push(&frame(4600, 8200, false));
        m.push(&frame(8200, 4600, false));
        assert!(m.fragment_starts_with_key());
        assert_eq!(m.fragment_span(), Some((0.0, 0.08)), "two samples of 3600 ticks from the origin");
        let f = m.take_fragment().expect("two samples");
        assert_eq!(m.fragment_span(), None, "nothing ready");
        let b = boxes(&f);
        assert_eq!(b.iter().map(|b| b.0.as_str()).collect::<Vec<_>>(), ["moof", "mdat"]);
        // Each sample: 4-byte length + the 3-byte slice NAL (the SPS left out).
        assert_eq!(b[1].1, 8 + 2 * 7);
        let trun = f.windows(4).position(|w| w == b"trun").unwrap() - 4;
        let field = |k: usize| u32::from_be_bytes(f[trun + 12 + 4 * k..trun + 16 + 4 * k].try_into().unwrap());
        assert_eq!(field(0), 2, "sample count");
        assert_eq!(field(1) as usize, b[0].1 + 8, "data offset: just past the mdat header");
        assert_eq!((field(2), field(3), field(4), field(5)), (3600, 7, KEY_FLAGS, 0), "first: 3600 ticks, key, no offset");
        assert_eq!((field(6), field(8), field(9) as i32), (3600, DELTA_FLAGS, 3600), "second: pts after dts");
        let tfdt = f.windows(4).position(|w| w == b"tfdt").unwrap() + 8;
        assert_eq!(u64::from_be_bytes(f[tfdt..tfdt + 8].try_into().unwrap()), 0, "time starts at 0");
    }

    #[test]
    fn h265_from_flv_tags_in_both_hevc_forms_gets_an_hvc1_track_of_its_size() {
        use crate::flv::{FlvMuxer, FlvOptions, HevcMode};
        use crate::test_vectors::{H265_PPS, H265_SPS_352X288, H265_VPS};
        let record = h265::hevc_config(&H265_VPS, &H265_SPS_352X288, &H265_PPS).unwrap();
        let cfg = VideoConfig { codec: Codec::H265, width: 352, height: 288, fps: None, record: record.into() };
        for hevc in [HevcMode::Enhanced, HevcMode::Codec12] {
            let mut flv = FlvMuxer::new(FlvOptions { hevc, ..Default::default() });
            let mut m = Fmp4Muxer::new();
            m.push_flv(&flv.push(&MediaEvent::VideoConfig(cfg.clone())).unwrap());
            let init = m.take_init_segment().unwrap_or_else(|| panic!("{hevc:?}: an init segment"));
            assert!(init.windows(4).any(|w| w == b"hvcC") && init.windows(4).any(|w| w == b"hvc1"));
            let tkhd = init.windows(4).position(|w| w == b"tkhd").unwrap() + 4;
            let wh = &init[tkhd + 76..tkhd + 84];
            assert_eq!(wh, [1, 0x60, 0, 0, 1, 0x20, 0, 0], "{hevc:?}: 352x288 in 16.16");
            for (i, key) in [(0u64, true), (1, false)] {
                let mut data = vec![0, 0, 0, 1];
                data.extend_from_slice(&H265_VPS);
                data.extend_from_slice(&[0, 0, 0, 1, if key { 0x26 } else { 0x02 }, 0x01, 0xaf]);
                let au = AccessUnit { codec: Codec::H265, pts: i * 3600, dts: i * 3600, key, data: data.into() };
                m.push_flv(&flv.push(&MediaEvent::Frame(au)).unwrap());
            }
            let f = m.take_fragment().expect("the first frame, its duration known");
            let mdat = f.windows(4).position(|w| w == b"mdat").unwrap() + 4;
            assert_eq!(&f[mdat..], [0, 0, 0, 3, 0x26, 0x01, 0xaf], "{hevc:?}: the slice alone, the VPS left out");
        }
    }

    #[test]
    fn aac_configuration_is_read_from_the_flv_sequence_header() {
        assert_eq!(asc_rate_channels(&[0x12, 0x10]), Some((44_100, 2)));
        assert_eq!(asc_rate_channels(&[0x15, 0x88]), Some((8_000, 1)));
        assert_eq!(asc_rate_channels(&[0x17, 0x80]), None, "explicit rates are not taken");
        assert_eq!(asc_rate_channels(&[0x12]), None);
    }

    #[test]
    fn frames_before_the_configuration_and_g711_are_left_out() {
        let mut m = Fmp4Muxer::new();
        m.push(&frame(0, 0, true));
        m.push(&MediaEvent::AudioConfig(AudioConfig { codec: Codec::G711A, sample_rate: 8000, channels: 1, asc: Bytes::new() }));
        m.push(&MediaEvent::Frame(AccessUnit { codec: Codec::G711A, pts: 0, dts: 0, key: true, data: vec![0; 160].into() }));
        assert!(m.take_init_segment().is_none());
        assert!(m.take_fragment().is_none());
    }
}
