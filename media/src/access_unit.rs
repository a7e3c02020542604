//! From demuxed PES payloads to access units an output can use: video split into single frames
//! by NAL (a muxer may pack several under one PTS), parameter sets tracked and turned into
//! decoder configuration records, AAC split per ADTS frame with its AudioSpecificConfig.
//! Video starts on a key frame with a known configuration; nothing before it is emitted.
//!
//! Payload bytes are not copied: an access unit is a `Bytes` slice of the PES assembly buffer.

use std::ops::Range;

use bytes::Bytes;

use crate::codec::{aac, h264, h265, nal};
use crate::es::{Codec, EsFrame};

/// 25 fps in 90 kHz ticks: the guess until two timestamps tell the real duration.
const DEFAULT_FRAME_TICKS: u64 = 3600;
const MAX_PARAM_SET: usize = 1024;

#[derive(Debug, Clone, PartialEq)]
pub struct VideoConfig {
    pub codec: Codec,
    pub width: u32,
    pub height: u32,
    pub fps: Option<f64>,
    /// avcC or hvcC.
    pub record: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioConfig {
    pub codec: Codec,
    pub sample_rate: u32,
    pub channels: u8,
    /// AudioSpecificConfig for AAC, empty for G.711.
    pub asc: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessUnit {
    pub codec: Codec,
    /// 90 kHz, unwrapped from 33 bits.
    pub pts: u64,
    pub dts: u64,
    pub key: bool,
    /// Video: Annex B (start codes kept). Audio: one raw frame.
    pub data: Bytes,
}

impl AccessUnit {
    pub fn is_video(&self) -> bool {
        self.codec.is_video()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum MediaEvent {
    VideoConfig(VideoConfig),
    AudioConfig(AudioConfig),
    Frame(AccessUnit),
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuStats {
    pub video_frames: u64,
    pub audio_frames: u64,
    /// Video frames dropped while waiting for a key frame with known parameter sets.
    pub dropped_before_key: u64,
    /// Payloads of a codec we cannot output.
    pub unsupported: u64,
    pub orphan_bytes: u64,
}

/// Unwraps 33-bit MPEG timestamps into a monotonic-ish u64.
#[derive(Debug, Default, Clone, Copy)]
struct Unwrap {
    last: Option<u64>,
    offset: u64,
}

impl Unwrap {
    fn apply(&mut self, raw: u64) -> u64 {
        const WRAP: u64 = 1 << 33;
        let raw = raw & (WRAP - 1);
        if let Some(last) = self.last {
            if raw + WRAP / 2 < last {
                self.offset += WRAP;
            } else if raw > last + WRAP / 2 && self.offset >= WRAP {
                // A late timestamp from before the wrap.
                self.last = Some(raw);
                return raw + self.offset - WRAP;
            }
        }
        self.last = Some(raw);
        raw + self.offset
    }
}

#[derive(Default)]
struct ParamSets {
    vps: Vec<u8>,
    sps: Vec<u8>,
    pps: Vec<u8>,
    changed: bool,
}

impl ParamSets {
    fn set(slot: &mut Vec<u8>, changed: &mut bool, nal: &[u8]) {
        if nal.len() <= MAX_PARAM_SET && slot.as_slice() != nal {
            slot.clear();
            slot.extend_from_slice(nal);
            *changed = true;
        }
    }
}

pub struct AccessUnitBuilder {
    video_codec: Option<Codec>,
    params: ParamSets,
    config_sent: bool,
    waiting_for_key: bool,
    video_clock: Unwrap,
    audio_clock: Unwrap,
    last_video: Option<(u64, usize)>,
    frame_ticks: u64,
    next_audio_pts: Option<u64>,
    audio_config: Option<AudioConfig>,
    nals: Vec<Range<usize>>,
    pub stats: AuStats,
}

impl Default for AccessUnitBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl AccessUnitBuilder {
    pub fn new() -> Self {
        Self {
            video_codec: None,
            params: ParamSets::default(),
            config_sent: false,
            waiting_for_key: true,
            video_clock: Unwrap::default(),
            audio_clock: Unwrap::default(),
            last_video: None,
            frame_ticks: DEFAULT_FRAME_TICKS,
            next_audio_pts: None,
            audio_config: None,
            nals: Vec::new(),
            stats: AuStats::default(),
        }
    }

    /// A builder for an elementary stream file with no timestamps of its own: frames are
    /// `ticks` apart.
    pub fn with_frame_ticks(ticks: u64) -> Self {
        Self { frame_ticks: ticks.max(1), ..Self::new() }
    }

    /// Estimated video frame duration in 90 kHz ticks.
    pub fn frame_ticks(&self) -> u64 {
        self.frame_ticks
    }

    /// Processes one demuxed payload; events are appended to `out`.
    pub fn push(&mut self, frame: EsFrame, out: &mut Vec<MediaEvent>) {
        match frame.codec {
            Codec::H264 | Codec::H265 => self.push_video(frame, out),
            Codec::Aac | Codec::G711A | Codec::G711U => {
                let pts = frame.pts.map(|p| self.audio_clock.apply(p));
                self.push_audio(frame.codec, pts, Bytes::from(frame.data), out)
            }
            _ => self.stats.unsupported += 1,
        }
    }

    /// Audio that arrived outside PS (G.711 RTP beside the PS stream), with a 90 kHz timestamp.
    pub fn push_raw_audio(&mut self, codec: Codec, pts: u64, data: Bytes, out: &mut Vec<MediaEvent>) {
        let pts = self.audio_clock.apply(pts);
        self.push_audio(codec, Some(pts), data, out);
    }

    fn push_video(&mut self, frame: EsFrame, out: &mut Vec<MediaEvent>) {
        let codec = frame.codec;
        if self.video_codec != Some(codec) {
            // Codec changed mid-stream (or first frame): start over with new parameter sets.
            self.video_codec = Some(codec);
            self.params = ParamSets::default();
            self.config_sent = false;
            self.waiting_for_key = true;
        }
        let pts = frame.pts.map(|p| self.video_clock.apply(p));
        let dts = frame.dts.map(|d| self.video_clock.apply(d)).or(pts);
        let data = Bytes::from(frame.data);
        self.nals.clear();
        let leading = nal::split(&data, &mut self.nals);
        self.stats.orphan_bytes += leading as u64;

        let mut au_start: Option<usize> = None;
        let mut has_vcl = false;
        let mut key = false;
        let mut count = 0usize;
        let nals = std::mem::take(&mut self.nals);
        // Units are cut where the previous NAL ended, so each keeps its whole start code.
        let mut prev_end = leading;
        let base_pts = pts.or_else(|| self.last_video.map(|(p, n)| p + n as u64 * self.frame_ticks));
        let base_dts = dts.or(base_pts);
        for r in &nals {
            let n = &data[r.clone()];
            let (vcl, is_key, starts) = match codec {
                Codec::H264 => {
                    let t = h264::nal_type(n);
                    match t {
                        h264::NAL_SPS => ParamSets::set(&mut self.params.sps, &mut self.params.changed, n),
                        h264::NAL_PPS => ParamSets::set(&mut self.params.pps, &mut self.params.changed, n),
                        _ => {}
                    }
                    (h264::is_vcl(t), t == h264::NAL_IDR, h264::starts_access_unit(n))
                }
                _ => {
                    let t = h265::nal_type(n);
                    match t {
                        h265::NAL_VPS => ParamSets::set(&mut self.params.vps, &mut self.params.changed, n),
                        h265::NAL_SPS => ParamSets::set(&mut self.params.sps, &mut self.params.changed, n),
                        h265::NAL_PPS => ParamSets::set(&mut self.params.pps, &mut self.params.changed, n),
                        _ => {}
                    }
                    (h265::is_vcl(t), h265::is_key(t), h265::starts_access_unit(n))
                }
            };
            let sc = prev_end;
            prev_end = r.end;
            if has_vcl && starts {
                if let Some(s) = au_start {
                    self.emit_video(codec, data.slice(s..sc), key, base_pts, base_dts, count, out);
                    count += 1;
                }
                au_start = None;
                has_vcl = false;
                key = false;
            }
            au_start.get_or_insert(sc);
            has_vcl |= vcl;
            key |= is_key;
        }
        if let (Some(s), true) = (au_start, has_vcl) {
            self.emit_video(codec, data.slice(s..), key, base_pts, base_dts, count, out);
            count += 1;
        }
        self.nals = nals;
        if let (Some(p), true) = (base_pts, count > 0) {
            if let Some((lp, ln)) = self.last_video {
                let delta = p.saturating_sub(lp);
                if ln > 0 && delta > 0 && delta / (ln as u64) < 90_000 {
                    self.frame_ticks = delta / ln as u64;
                }
            }
            self.last_video = Some((p, count));
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn emit_video(
        &mut self,
        codec: Codec,
        unit: Bytes,
        key: bool,
        base_pts: Option<u64>,
        base_dts: Option<u64>,
        index: usize,
        out: &mut Vec<MediaEvent>,
    ) {
        if self.params.changed {
            if let Some(cfg) = self.video_config(codec) {
                self.params.changed = false;
                self.config_sent = true;
                out.push(MediaEvent::VideoConfig(cfg));
            }
        }
        if self.waiting_for_key {
            if !(key && self.config_sent) {
                self.stats.dropped_before_key += 1;
                return;
            }
            self.waiting_for_key = false;
        }
        let step = index as u64 * self.frame_ticks;
        let (Some(pts), Some(dts)) = (base_pts, base_dts) else {
            self.stats.dropped_before_key += 1;
            return;
        };
        self.stats.video_frames += 1;
        out.push(MediaEvent::Frame(AccessUnit { codec, pts: pts + step, dts: dts + step, key, data: unit }));
    }

    fn video_config(&self, codec: Codec) -> Option<VideoConfig> {
        let p = &self.params;
        if p.sps.is_empty() || p.pps.is_empty() {
            return None;
        }
        match codec {
            Codec::H264 => {
                let sps = h264::parse_sps(&p.sps).ok()?;
                let record = h264::avc_config(&p.sps, &p.pps)?;
                Some(VideoConfig { codec, width: sps.width, height: sps.height, fps: sps.fps, record: record.into() })
            }
            Codec::H265 => {
                if p.vps.is_empty() {
                    return None;
                }
                let sps = h265::parse_sps(&p.sps).ok()?;
                let record = h265::hevc_config(&p.vps, &p.sps, &p.pps)?;
                Some(VideoConfig { codec, width: sps.width, height: sps.height, fps: None, record: record.into() })
            }
            _ => None,
        }
    }

    fn push_audio(&mut self, codec: Codec, pts: Option<u64>, data: Bytes, out: &mut Vec<MediaEvent>) {
        match codec {
            Codec::Aac => {
                let mut pts = pts.or(self.next_audio_pts);
                let mut any = false;
                for (h, raw) in aac::frames(&data) {
                    any = true;
                    let cfg = AudioConfig {
                        codec,
                        sample_rate: h.sample_rate(),
                        channels: h.channel_config,
                        asc: Bytes::copy_from_slice(&h.audio_specific_config()),
                    };
                    self.announce_audio(cfg, out);
                    let Some(p) = pts else { continue };
                    self.stats.audio_frames += 1;
                    out.push(MediaEvent::Frame(AccessUnit { codec, pts: p, dts: p, key: true, data: data.slice(raw) }));
                    let next = p + 1024 * 90_000 / u64::from(h.sample_rate());
                    pts = Some(next);
                    self.next_audio_pts = Some(next);
                }
                if !any {
                    self.stats.unsupported += 1;
                }
            }
            Codec::G711A | Codec::G711U => {
                if data.is_empty() {
                    return;
                }
                let cfg = AudioConfig { codec, sample_rate: 8000, channels: 1, asc: Bytes::new() };
                self.announce_audio(cfg, out);
                let Some(p) = pts.or(self.next_audio_pts) else { return };
                // 8 kHz, one byte per sample.
                self.next_audio_pts = Some(p + data.len() as u64 * 90_000 / 8000);
                self.stats.audio_frames += 1;
                out.push(MediaEvent::Frame(AccessUnit { codec, pts: p, dts: p, key: true, data }));
            }
            _ => self.stats.unsupported += 1,
        }
    }

    fn announce_audio(&mut self, cfg: AudioConfig, out: &mut Vec<MediaEvent>) {
        if self.audio_config.as_ref() != Some(&cfg) {
            self.audio_config = Some(cfg.clone());
            out.push(MediaEvent::AudioConfig(cfg));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_vectors::H264_SPS_320X240 as SPS;

    fn frame(codec: Codec, pts: u64, data: &[u8]) -> EsFrame {
        EsFrame { stream_id: 0xE0, codec, pts: Some(pts), dts: None, data: data.to_vec() }
    }

    fn annexb(nals: &[&[u8]]) -> Vec<u8> {
        nals.iter().flat_map(|n| [&[0, 0, 0, 1][..], n].concat()).collect()
    }

    #[test]
    fn waits_for_key_then_splits_frames_packed_under_one_pts() {
        let mut b = AccessUnitBuilder::new();
        let mut out = Vec::new();
        // A P frame before any key frame is dropped.
        b.push(frame(Codec::H264, 0, &annexb(&[&[0x41, 0x9a]])), &mut out);
        assert!(out.is_empty());
        // Key frame + two P frames under one PTS (ffmpeg's vob muxer does this).
        let pps = [0x68, 0xeb, 0xe3, 0xcb];
        let data = annexb(&[&[0x09, 0xf0], &SPS, &pps, &[0x65, 0x88, 1], &[0x41, 0x9a, 2], &[0x41, 0x9a, 3]]);
        b.push(frame(Codec::H264, 9000, &data), &mut out);
        let MediaEvent::VideoConfig(cfg) = &out[0] else { panic!("{out:?}") };
        assert_eq!((cfg.width, cfg.height, cfg.fps), (320, 240, Some(25.0)));
        let frames: Vec<&AccessUnit> = out.iter().filter_map(|e| if let MediaEvent::Frame(f) = e { Some(f) } else { None }).collect();
        assert_eq!(frames.len(), 3);
        assert!(frames[0].key && !frames[1].key);
        assert_eq!(frames.iter().map(|f| f.pts).collect::<Vec<_>>(), vec![9000, 12600, 16200]);
        assert!(frames[0].data.starts_with(&[0, 0, 0, 1, 0x09]));
        assert!(frames[1].data.ends_with(&[0x41, 0x9a, 2]));
        assert_eq!(b.stats.dropped_before_key, 1);
    }

    #[test]
    fn pts_unwraps_past_33_bits() {
        let mut u = Unwrap::default();
        assert_eq!(u.apply((1 << 33) - 3600), (1 << 33) - 3600);
        assert_eq!(u.apply(0), 1 << 33);
        assert_eq!(u.apply(3600), (1 << 33) + 3600);
    }

    #[test]
    fn aac_frames_get_consecutive_timestamps() {
        let mut b = AccessUnitBuilder::new();
        let mut out = Vec::new();
        let mut adts = vec![0xFF, 0xF1, 0x50, 0x80, 0x01, 0xBF, 0xFC, 1, 2, 3, 4, 5, 6];
        adts.extend_from_within(..);
        b.push(EsFrame { stream_id: 0xC0, codec: Codec::Aac, pts: Some(1000), dts: None, data: adts }, &mut out);
        assert!(matches!(&out[0], MediaEvent::AudioConfig(c) if c.sample_rate == 44100 && c.asc[..] == [0x12, 0x10]));
        let pts: Vec<u64> = out.iter().filter_map(|e| if let MediaEvent::Frame(f) = e { Some(f.pts) } else { None }).collect();
        assert_eq!(pts, vec![1000, 1000 + 1024 * 90_000 / 44100]);
    }
}
