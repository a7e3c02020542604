//! One stream's media path, sans-I/O: RTP packets in, FLV tags out.
//! RTP (SSRC gate, reorder) → PS or TS demux → access units → FLV.
//!
//! The steady path allocates nothing per packet: an in-order payload is borrowed from the
//! socket buffer into the demuxer's assembly buffer, and the only other copy is the one that
//! builds each FLV tag.

use bytes::Bytes;
use media::es::Codec;
use media::flv::{FlvMuxer, FlvOptions, FlvTag};
use media::ps::PsDemuxer;
use media::rtp::RtpPacket;
use media::ts::TsDemuxer;
use media::{AccessUnitBuilder, AudioConfig, MediaEvent, VideoConfig};

use crate::reorder::{Delivery, Reorder};

/// RTP payload types a camera may use for G.711 sent beside the PS stream.
const PT_PCMU: u8 = 0;
const PT_PCMA: u8 = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Container {
    /// Not seen a payload yet.
    Unknown,
    Ps,
    Ts,
}

#[derive(Debug, Clone, Copy)]
pub struct PipelineConfig {
    /// Packets with another SSRC are refused. `None`: adopt the first one seen.
    pub ssrc: Option<u32>,
    pub reorder_window: usize,
    pub max_frame: usize,
    pub flv: FlvOptions,
}

/// Why a packet did not enter the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    Malformed,
    WrongSsrc(u32),
}

#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct PipelineStats {
    pub packets: u64,
    pub bytes: u64,
    pub malformed: u64,
    pub wrong_ssrc: u64,
    pub video_frames: u64,
    pub audio_frames: u64,
    /// Demuxer resynchronisations (after loss or damage).
    pub recoveries: u64,
}

enum Demux {
    Ps(Box<PsDemuxer>),
    Ts(Box<TsDemuxer>),
}

impl Demux {
    fn push(&mut self, payload: &[u8]) {
        match self {
            Demux::Ps(d) => d.push(payload),
            Demux::Ts(d) => d.push(payload),
        }
    }

    fn end_of_frame(&mut self) {
        match self {
            Demux::Ps(d) => d.end_of_frame(),
            Demux::Ts(d) => d.end_of_frame(),
        }
    }

    fn discontinuity(&mut self) {
        match self {
            Demux::Ps(d) => d.discontinuity(),
            Demux::Ts(d) => d.discontinuity(),
        }
    }

    fn poll(&mut self) -> Option<media::es::EsFrame> {
        match self {
            Demux::Ps(d) => d.poll(),
            Demux::Ts(d) => d.poll(),
        }
    }
}

pub struct Pipeline {
    cfg: PipelineConfig,
    ssrc: Option<u32>,
    reorder: Reorder,
    demux: Option<Demux>,
    au: AccessUnitBuilder,
    flv: FlvMuxer,
    events: Vec<MediaEvent>,
    video: Option<VideoConfig>,
    audio: Option<AudioConfig>,
    /// Maps a raw G.711 RTP clock (8 kHz) onto the PS clock: (rtp ts, 90 kHz pts) at first sight.
    raw_audio_anchor: Option<(u32, u64)>,
    last_video_pts: u64,
    /// Output time kept monotonic through source jumps, and scaled for playback speed.
    pub timeline: media::timeline::Timeline,
    pub stats: PipelineStats,
}

fn looks_like_ts(p: &[u8]) -> bool {
    p.len() >= 188 && p.len().is_multiple_of(188) && p[0] == 0x47 && p.get(188).is_none_or(|b| *b == 0x47)
}

impl Pipeline {
    pub fn new(cfg: PipelineConfig) -> Self {
        Self {
            cfg,
            ssrc: cfg.ssrc,
            reorder: Reorder::new(cfg.reorder_window),
            demux: None,
            au: AccessUnitBuilder::new(),
            flv: FlvMuxer::new(cfg.flv),
            events: Vec::new(),
            video: None,
            audio: None,
            raw_audio_anchor: None,
            last_video_pts: 0,
            timeline: media::timeline::Timeline::default(),
            stats: PipelineStats::default(),
        }
    }

    pub fn container(&self) -> Container {
        match self.demux {
            None => Container::Unknown,
            Some(Demux::Ps(_)) => Container::Ps,
            Some(Demux::Ts(_)) => Container::Ts,
        }
    }

    pub fn ssrc(&self) -> Option<u32> {
        self.ssrc
    }

    /// Accept another SSRC from now on (the camera answered with its own).
    pub fn set_ssrc(&mut self, ssrc: u32) {
        self.ssrc = Some(ssrc);
    }

    pub fn video(&self) -> Option<&VideoConfig> {
        self.video.as_ref()
    }

    pub fn audio(&self) -> Option<&AudioConfig> {
        self.audio.as_ref()
    }

    pub fn seq_stats(&self) -> crate::reorder::SeqStats {
        self.reorder.stats
    }

    /// Checks a datagram's RTP header against the stream (SSRC gate) without processing it.
    pub fn admit(&mut self, datagram: &[u8]) -> Result<u32, Refused> {
        let pkt = RtpPacket::parse(datagram).map_err(|_| Refused::Malformed)?;
        match self.ssrc {
            Some(s) if s != pkt.ssrc => Err(Refused::WrongSsrc(pkt.ssrc)),
            _ => Ok(pkt.ssrc),
        }
    }

    /// Processes one RTP packet; FLV tags produced go to `sink`.
    pub fn on_rtp(&mut self, datagram: &[u8], sink: &mut impl FnMut(FlvTag)) -> Result<(), Refused> {
        let pkt = match RtpPacket::parse(datagram) {
            Ok(p) => p,
            Err(_) => {
                self.stats.malformed += 1;
                return Err(Refused::Malformed);
            }
        };
        match self.ssrc {
            Some(s) if s != pkt.ssrc => {
                self.stats.wrong_ssrc += 1;
                return Err(Refused::WrongSsrc(pkt.ssrc));
            }
            None => self.ssrc = Some(pkt.ssrc),
            _ => {}
        }
        self.stats.packets += 1;
        self.stats.bytes += datagram.len() as u64;
        if matches!(pkt.payload_type, PT_PCMA | PT_PCMU) {
            // G.711 beside PS: its own clock, outside the reorder buffer (audio tolerates loss).
            self.raw_audio(pkt.payload_type, pkt.timestamp, pkt.payload, sink);
            return Ok(());
        }
        match self.reorder.push(pkt.seq, pkt.marker, pkt.payload) {
            Delivery::Now => self.demux_payload(pkt.payload, pkt.marker, false, sink),
            Delivery::AfterLoss => self.demux_payload(pkt.payload, pkt.marker, true, sink),
            Delivery::Held => {}
        }
        self.drain_reorder(false, sink);
        Ok(())
    }

    /// The stream went quiet: give up on a gap the reorder buffer waits on, and end the frames
    /// in progress. GB devices end each frame with the RTP marker; a sender that does not (or
    /// a TS PES of unbounded length) would otherwise hold its last frame until the next begins.
    pub fn flush(&mut self, sink: &mut impl FnMut(FlvTag)) {
        self.drain_reorder(true, sink);
        if let Some(d) = &mut self.demux {
            d.end_of_frame();
            self.take_frames(sink);
        }
    }

    fn drain_reorder(&mut self, force: bool, sink: &mut impl FnMut(FlvTag)) {
        // Held packets are rare; taking the payload out of the slot costs one copy only for them.
        let mut scratch = Vec::new();
        while let Some((marker, payload, lost)) = self.reorder.pop_ready(force) {
            scratch.clear();
            scratch.extend_from_slice(payload);
            self.demux_payload(&scratch, marker, lost, sink);
        }
    }

    fn demux_payload(&mut self, payload: &[u8], marker: bool, after_loss: bool, sink: &mut impl FnMut(FlvTag)) {
        let demux = self.demux.get_or_insert_with(|| {
            if looks_like_ts(payload) {
                Demux::Ts(Box::new(TsDemuxer::new(self.cfg.max_frame)))
            } else {
                Demux::Ps(Box::new(PsDemuxer::new(self.cfg.max_frame)))
            }
        });
        if after_loss {
            demux.discontinuity();
        }
        demux.push(payload);
        if marker {
            demux.end_of_frame();
        }
        if let Demux::Ps(ps) = demux {
            self.stats.recoveries = ps.stats.recoveries;
        }
        self.take_frames(sink);
    }

    /// Demuxed payloads → access units → FLV tags.
    fn take_frames(&mut self, sink: &mut impl FnMut(FlvTag)) {
        if let Some(d) = &mut self.demux {
            while let Some(f) = d.poll() {
                self.au.push(f, &mut self.events);
            }
        }
        self.emit(sink);
    }

    fn raw_audio(&mut self, pt: u8, rtp_ts: u32, payload: &[u8], sink: &mut impl FnMut(FlvTag)) {
        let (ts0, pts0) = *self.raw_audio_anchor.get_or_insert((rtp_ts, self.last_video_pts));
        let pts = pts0 + u64::from(rtp_ts.wrapping_sub(ts0)) * 90 / 8;
        let codec = if pt == PT_PCMA { Codec::G711A } else { Codec::G711U };
        self.au.push_raw_audio(codec, pts, Bytes::copy_from_slice(payload), &mut self.events);
        self.emit(sink);
    }

    fn emit(&mut self, sink: &mut impl FnMut(FlvTag)) {
        let mut meta_changed = false;
        // Taken and put back so the buffer keeps its allocation.
        let mut events = std::mem::take(&mut self.events);
        for mut ev in events.drain(..) {
            if let MediaEvent::Frame(f) = &mut ev {
                let track = if f.is_video() {
                    // The source clock, which raw G.711 beside the PS is anchored on.
                    self.last_video_pts = f.pts;
                    media::timeline::Track::Video
                } else {
                    media::timeline::Track::Audio
                };
                (f.pts, f.dts) = self.timeline.map(track, f.pts, f.dts);
            }
            match &ev {
                MediaEvent::VideoConfig(v) => {
                    meta_changed |= self.video.as_ref() != Some(v);
                    self.video = Some(v.clone());
                }
                MediaEvent::AudioConfig(a) => {
                    meta_changed |= self.audio.as_ref() != Some(a);
                    self.audio = Some(a.clone());
                }
                MediaEvent::Frame(f) if f.is_video() => self.stats.video_frames += 1,
                MediaEvent::Frame(_) => self.stats.audio_frames += 1,
            }
            if meta_changed {
                meta_changed = false;
                sink(media::flv::metadata(self.video.as_ref(), self.audio.as_ref(), self.cfg.flv.hevc));
            }
            if let Some(tag) = self.flv.push(&ev) {
                sink(tag);
            }
        }
        self.events = events;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use media::flv::TagKind;
    use media::ps_mux::PsMuxer;
    use media::test_vectors::{H264_SPS_320X240 as SPS264, H265_PPS as PPS265, H265_SPS_352X288 as SPS265, H265_VPS as VPS265};

    fn annexb(nals: &[&[u8]]) -> Vec<u8> {
        nals.iter().flat_map(|n| [&[0, 0, 0, 1][..], n].concat()).collect()
    }

    /// RTP packets (PT 96) carrying one PS-muxed frame, marker on the last.
    fn rtp(ps: &[u8], seq: &mut u16, ts: u32, out: &mut Vec<Vec<u8>>) {
        let n = ps.len().div_ceil(1400);
        for (i, c) in ps.chunks(1400).enumerate() {
            let mut p = Vec::new();
            RtpPacket::write_header(&mut p, 96, i + 1 == n, *seq, ts, 42);
            p.extend_from_slice(c);
            out.push(p);
            *seq = seq.wrapping_add(1);
        }
    }

    fn run(packets: &[Vec<u8>]) -> (Pipeline, Vec<FlvTag>) {
        let mut p = Pipeline::new(PipelineConfig { ssrc: Some(42), reorder_window: 16, max_frame: 1 << 20, flv: FlvOptions::default() });
        let mut tags = Vec::new();
        for pkt in packets {
            p.on_rtp(pkt, &mut |t| tags.push(t)).unwrap();
        }
        (p, tags)
    }

    #[test]
    fn codec_change_mid_stream_gets_a_new_sequence_header() {
        let mut packets = Vec::new();
        let mut seq = 0;
        let avc = PsMuxer::new(Codec::H264, None);
        for i in 0..3u64 {
            let mut ps = Vec::new();
            let frame =
                if i == 0 { annexb(&[&SPS264, &[0x68, 0xeb, 0xe3, 0xcb], &[0x65, 0x88, 0x80]]) } else { annexb(&[&[0x41, 0x9a, 0x80]]) };
            avc.video(&frame, 3600 * (i + 1), None, i == 0, &mut ps);
            rtp(&ps, &mut seq, (3600 * (i + 1)) as u32, &mut packets);
        }
        // The camera switches to H.265: a new PSM says so before the key frame.
        let hevc = PsMuxer::new(Codec::H265, None);
        for i in 3..6u64 {
            let mut ps = Vec::new();
            let frame =
                if i == 3 { annexb(&[&VPS265, &SPS265, &PPS265, &[0x26, 0x01, 0x80, 0x11]]) } else { annexb(&[&[0x02, 0x01, 0x80, 0x22]]) };
            hevc.video(&frame, 3600 * (i + 1), None, i == 3, &mut ps);
            rtp(&ps, &mut seq, (3600 * (i + 1)) as u32, &mut packets);
        }
        let (p, tags) = run(&packets);
        let headers: Vec<u8> = tags.iter().filter(|t| t.header && t.kind == TagKind::Video).map(|t| t.body()[0]).collect();
        assert_eq!(headers, vec![0x17, 0x90], "AVC header, then an Enhanced HEVC header");
        let frames = tags.iter().filter(|t| !t.header && t.kind == TagKind::Video).count();
        assert_eq!(frames, 6);
        assert_eq!(p.video().map(|v| (v.codec, v.width, v.height)), Some((Codec::H265, 352, 288)));
        // Metadata follows each change.
        assert_eq!(tags.iter().filter(|t| t.kind == TagKind::Script).count(), 2);
    }

    #[test]
    fn g711_sent_beside_ps_becomes_audio() {
        let mut packets = Vec::new();
        let mut seq = 0;
        let avc = PsMuxer::new(Codec::H264, None);
        let mut ps = Vec::new();
        avc.video(&annexb(&[&SPS264, &[0x68, 0xeb, 0xe3, 0xcb], &[0x65, 0x88, 0x80]]), 3600, None, true, &mut ps);
        rtp(&ps, &mut seq, 3600, &mut packets);
        // PT 8 (PCMA) on the same port, its own sequence and 8 kHz clock.
        for i in 0..5u16 {
            let mut p = Vec::new();
            RtpPacket::write_header(&mut p, 8, false, 1000 + i, u32::from(i) * 160, 42);
            p.extend_from_slice(&[0xD5; 160]);
            packets.push(p);
        }
        let (p, tags) = run(&packets);
        let audio: Vec<&FlvTag> = tags.iter().filter(|t| t.kind == TagKind::Audio).collect();
        assert_eq!(audio.len(), 5);
        assert!(audio.iter().all(|t| t.body()[0] == 0x72 && t.body().len() == 161));
        // 20 ms apart on the output clock.
        assert_eq!(audio[4].timestamp - audio[0].timestamp, 80);
        assert_eq!(p.seq_stats().lost, 0, "raw audio does not disturb the PS sequence");
    }
}
