//! FLV tags from access units: the one encoded form every output shares. HTTP-FLV writes a tag
//! header before each body; RTMP sends the same body as a message. H.265 goes out as Enhanced
//! RTMP (`hvc1` FourCC) or, for players that only know the older domestic extension, as codec
//! id 12. G.711 is sound format 7 (A-law) / 8 (µ-law).
//!
//! A tag is built once, already framed for FLV (11-byte header, body, 4-byte PreviousTagSize),
//! so HTTP-FLV writes it as it is and RTMP sends a zero-copy slice of its body.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::access_unit::{AccessUnit, AudioConfig, MediaEvent, VideoConfig};
use crate::es::Codec;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagKind {
    Audio = 8,
    Video = 9,
    Script = 18,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlvTag {
    pub kind: TagKind,
    /// Milliseconds from the stream's first decode time.
    pub timestamp: u32,
    /// A video key frame (a viewer may start here).
    pub key: bool,
    /// A sequence header or metadata: sent to every new viewer before any frame.
    pub header: bool,
    /// The whole FLV tag: header, body, PreviousTagSize.
    pub wire: Bytes,
}

const TAG_HEADER: usize = 11;
const TAG_TRAILER: usize = 4;

impl FlvTag {
    /// Frames a body built after `TAG_HEADER` reserved bytes (see `body_buf`).
    fn seal(kind: TagKind, timestamp: u32, key: bool, header: bool, mut b: BytesMut) -> Self {
        let len = (b.len() - TAG_HEADER) as u32;
        let ts = timestamp;
        let h = [kind as u8, (len >> 16) as u8, (len >> 8) as u8, len as u8, (ts >> 16) as u8, (ts >> 8) as u8, ts as u8, (ts >> 24) as u8];
        b[..8].copy_from_slice(&h);
        b.put_u32(len + TAG_HEADER as u32);
        Self { kind, timestamp, key, header, wire: b.freeze() }
    }

    pub fn new(kind: TagKind, timestamp: u32, key: bool, header: bool, body: &[u8]) -> Self {
        let mut b = body_buf(body.len());
        b.put_slice(body);
        Self::seal(kind, timestamp, key, header, b)
    }

    /// The tag body (what an RTMP message carries), without copying.
    pub fn body(&self) -> Bytes {
        self.wire.slice(TAG_HEADER..self.wire.len() - TAG_TRAILER)
    }
}

/// What a video tag's body carries, as our muxer writes them (AVC, H.265 as codec 12, or
/// Enhanced RTMP `hvc1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoBody {
    pub codec: crate::es::Codec,
    pub packet: VideoPacket,
    /// The decoder configuration record (a header) or length-prefixed NAL units (a frame).
    pub data: Bytes,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoPacket {
    /// The sequence header: `data` is the avcC / hvcC record.
    Header,
    /// A frame with its composition offset (ms).
    Frame { cts_ms: i32 },
}

impl VideoBody {
    /// Reads a video tag's body; `None` for another codec, another packet type or a body too
    /// short for its header.
    pub fn parse(body: &Bytes) -> Option<Self> {
        use crate::es::Codec;
        let first = *body.first()?;
        // (codec, packet type, where the composition offset starts or None, where data starts)
        let (codec, packet, cts_at, data_at) = if first & 0x80 != 0 {
            // Enhanced RTMP: FourCC after the first byte; packet type in the low nibble.
            if body.get(1..5) != Some(b"hvc1".as_slice()) {
                return None;
            }
            match first & 0x0f {
                0 => (Codec::H265, 0, None, 5),
                1 => (Codec::H265, 1, Some(5), 8),
                3 => (Codec::H265, 1, None, 5),
                _ => return None,
            }
        } else {
            let codec = match first & 0x0f {
                7 => Codec::H264,
                12 => Codec::H265,
                _ => return None,
            };
            (codec, *body.get(1)?, Some(2), 5)
        };
        if body.len() < data_at {
            return None;
        }
        let packet = match packet {
            0 => VideoPacket::Header,
            1 => VideoPacket::Frame {
                cts_ms: cts_at.map_or(0, |at| {
                    let raw = (u32::from(body[at]) << 16) | (u32::from(body[at + 1]) << 8) | u32::from(body[at + 2]);
                    ((raw << 8) as i32) >> 8 // 24-bit signed
                }),
            },
            _ => return None,
        };
        Some(Self { codec, packet, data: body.slice(data_at..) })
    }
}

fn body_buf(capacity: usize) -> BytesMut {
    let mut b = BytesMut::with_capacity(TAG_HEADER + capacity + TAG_TRAILER);
    b.put_bytes(0, TAG_HEADER);
    b
}

/// FLV file header followed by PreviousTagSize0.
pub fn file_header(audio: bool, video: bool) -> [u8; 13] {
    let flags = (u8::from(audio) << 2) | u8::from(video);
    [b'F', b'L', b'V', 1, flags, 0, 0, 0, 9, 0, 0, 0, 0]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HevcMode {
    /// Enhanced RTMP: `hvc1` FourCC (ffmpeg ≥ 6.1, OBS, SRS 6, ZLMediaKit, flv.js forks).
    #[default]
    Enhanced,
    /// Codec id 12, the pre-2023 domestic extension.
    Codec12,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum G711Mode {
    #[default]
    Pass,
    Drop,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct FlvOptions {
    pub hevc: HevcMode,
    pub g711: G711Mode,
}

const ENHANCED: u8 = 0x80;
const EX_SEQUENCE_START: u8 = 0;
const EX_CODED_FRAMES: u8 = 1;
const HVC1: &[u8; 4] = b"hvc1";

pub struct FlvMuxer {
    opts: FlvOptions,
    base: Option<u64>,
    video_codec: Option<Codec>,
    audio_codec: Option<Codec>,
    nals: Vec<std::ops::Range<usize>>,
}

impl FlvMuxer {
    pub fn new(opts: FlvOptions) -> Self {
        Self { opts, base: None, video_codec: None, audio_codec: None, nals: Vec::new() }
    }

    fn ms(&mut self, dts: u64) -> u32 {
        let base = *self.base.get_or_insert(dts);
        (dts.saturating_sub(base) / 90) as u32
    }

    /// Turns one media event into zero or one tag.
    pub fn push(&mut self, ev: &MediaEvent) -> Option<FlvTag> {
        match ev {
            MediaEvent::VideoConfig(cfg) => self.video_header(cfg),
            MediaEvent::AudioConfig(cfg) => self.audio_header(cfg),
            MediaEvent::Frame(au) if au.is_video() => self.video_frame(au),
            MediaEvent::Frame(au) => self.audio_frame(au),
        }
    }

    fn video_header(&mut self, cfg: &VideoConfig) -> Option<FlvTag> {
        self.video_codec = Some(cfg.codec);
        let mut b = body_buf(cfg.record.len() + 5);
        match (cfg.codec, self.opts.hevc) {
            (Codec::H264, _) => b.put_slice(&[0x17, 0, 0, 0, 0]),
            (Codec::H265, HevcMode::Codec12) => b.put_slice(&[0x1C, 0, 0, 0, 0]),
            (Codec::H265, HevcMode::Enhanced) => {
                b.put_u8(ENHANCED | 0x10 | EX_SEQUENCE_START);
                b.put_slice(HVC1);
            }
            _ => return None,
        }
        b.put_slice(&cfg.record);
        Some(FlvTag::seal(TagKind::Video, 0, false, true, b))
    }

    fn audio_header(&mut self, cfg: &AudioConfig) -> Option<FlvTag> {
        self.audio_codec = Some(cfg.codec);
        match cfg.codec {
            Codec::Aac => {
                let mut b = body_buf(2 + cfg.asc.len());
                b.put_slice(&[0xAF, 0]);
                b.put_slice(&cfg.asc);
                Some(FlvTag::seal(TagKind::Audio, 0, false, true, b))
            }
            // G.711 has no sequence header.
            _ => None,
        }
    }

    fn video_frame(&mut self, au: &AccessUnit) -> Option<FlvTag> {
        if self.video_codec != Some(au.codec) {
            return None;
        }
        self.nals.clear();
        crate::codec::nal::split(&au.data, &mut self.nals);
        let payload: usize = self.nals.iter().map(|r| r.len() + 4).sum();
        let mut b = self.video_tag_start(au.codec, au.key, au.dts, au.pts, payload)?;
        for r in &self.nals {
            b.put_u32(r.len() as u32);
            b.put_slice(&au.data[r.clone()]);
        }
        Some(self.video_tag_seal(au.key, au.dts, b))
    }

    /// A video frame already in FLV's own NAL framing (4-byte big-endian lengths, as an RTSP
    /// depacketizer or an MP4 demuxer gives it): copied once, not re-split. Timestamps in 90 kHz.
    pub fn video_length_prefixed(&mut self, codec: Codec, key: bool, dts: u64, pts: u64, data: &[u8]) -> Option<FlvTag> {
        if self.video_codec != Some(codec) {
            return None;
        }
        let mut b = self.video_tag_start(codec, key, dts, pts, data.len())?;
        b.put_slice(data);
        Some(self.video_tag_seal(key, dts, b))
    }

    fn video_tag_start(&mut self, codec: Codec, key: bool, dts: u64, pts: u64, payload: usize) -> Option<BytesMut> {
        let cts = (pts.saturating_sub(dts) / 90).min(0x7F_FFFF) as u32;
        let frame_type = if key { 0x10 } else { 0x20 };
        let mut b = body_buf(payload + 8);
        match (codec, self.opts.hevc) {
            (Codec::H264, _) => b.put_slice(&[frame_type | 7, 1]),
            (Codec::H265, HevcMode::Codec12) => b.put_slice(&[frame_type | 12, 1]),
            (Codec::H265, HevcMode::Enhanced) => {
                b.put_u8(ENHANCED | frame_type | EX_CODED_FRAMES);
                b.put_slice(HVC1);
            }
            _ => return None,
        }
        b.put_slice(&cts.to_be_bytes()[1..]);
        Some(b)
    }

    fn video_tag_seal(&mut self, key: bool, dts: u64, b: BytesMut) -> FlvTag {
        let ts = self.ms(dts);
        FlvTag::seal(TagKind::Video, ts, key, false, b)
    }

    fn audio_frame(&mut self, au: &AccessUnit) -> Option<FlvTag> {
        self.audio_raw(au.codec, au.dts, &au.data)
    }

    /// One raw audio frame (AAC without ADTS, or G.711 samples); `dts` in 90 kHz.
    pub fn audio_raw(&mut self, codec: Codec, dts: u64, data: &[u8]) -> Option<FlvTag> {
        if self.audio_codec != Some(codec) {
            return None;
        }
        let first = match codec {
            Codec::Aac => 0xAF,
            Codec::G711A | Codec::G711U if self.opts.g711 == G711Mode::Drop => return None,
            // 8 kHz mono: the rate field is ignored for G.711 ("special" 0), 16-bit flag as ffmpeg writes it.
            Codec::G711A => 0x72,
            Codec::G711U => 0x82,
            _ => return None,
        };
        let ts = self.ms(dts);
        let mut b = body_buf(data.len() + 2);
        b.put_u8(first);
        if codec == Codec::Aac {
            b.put_u8(1);
        }
        b.put_slice(data);
        Some(FlvTag::seal(TagKind::Audio, ts, false, false, b))
    }
}

/// The `onMetaData` script tag body (AMF0): what players show before the first frame.
pub fn metadata(video: Option<&VideoConfig>, audio: Option<&AudioConfig>, hevc: HevcMode) -> FlvTag {
    let mut b = BytesMut::with_capacity(256);
    amf0::string(&mut b, "onMetaData");
    let mut fields: Vec<(&str, amf0::Value)> = vec![("duration", amf0::Value::Number(0.0)), ("encoder", amf0::Value::Str("gbcluster"))];
    if let Some(v) = video {
        fields.push(("width", amf0::Value::Number(f64::from(v.width))));
        fields.push(("height", amf0::Value::Number(f64::from(v.height))));
        if let Some(fps) = v.fps {
            fields.push(("framerate", amf0::Value::Number(fps)));
        }
        let id = match (v.codec, hevc) {
            (Codec::H265, HevcMode::Enhanced) => f64::from(u32::from_be_bytes(*HVC1)),
            (Codec::H265, HevcMode::Codec12) => 12.0,
            _ => 7.0,
        };
        fields.push(("videocodecid", amf0::Value::Number(id)));
    }
    if let Some(a) = audio {
        let id = match a.codec {
            Codec::Aac => 10.0,
            Codec::G711A => 7.0,
            _ => 8.0,
        };
        fields.push(("audiocodecid", amf0::Value::Number(id)));
        fields.push(("audiosamplerate", amf0::Value::Number(f64::from(a.sample_rate))));
        fields.push(("audiochannels", amf0::Value::Number(f64::from(a.channels))));
    }
    amf0::ecma_array(&mut b, &fields);
    FlvTag::new(TagKind::Script, 0, false, true, &b)
}

/// Just enough AMF0 to write metadata.
pub mod amf0 {
    use bytes::{BufMut, BytesMut};

    pub enum Value<'a> {
        Number(f64),
        Str(&'a str),
    }

    pub fn string(b: &mut BytesMut, s: &str) {
        b.put_u8(2);
        b.put_u16(s.len() as u16);
        b.put_slice(s.as_bytes());
    }

    /// The numeric fields of an `onMetaData` body as `metadata` writes it (string name, then an
    /// ECMA array or object of numbers and strings). Anything else ends the read; never panics.
    pub fn read_numbers(body: &[u8]) -> Vec<(String, f64)> {
        let mut out = Vec::new();
        let take = |p: &mut usize, n: usize| -> Option<&[u8]> {
            let s = body.get(*p..*p + n)?;
            *p += n;
            Some(s)
        };
        let mut p = 0;
        let mut parse = || -> Option<()> {
            if take(&mut p, 1)? != [2] {
                return None;
            }
            let n = usize::from(u16::from_be_bytes(take(&mut p, 2)?.try_into().ok()?));
            take(&mut p, n)?;
            match take(&mut p, 1)?[0] {
                8 => {
                    take(&mut p, 4)?;
                }
                3 => {}
                _ => return None,
            }
            loop {
                let klen = usize::from(u16::from_be_bytes(take(&mut p, 2)?.try_into().ok()?));
                let key = String::from_utf8_lossy(take(&mut p, klen)?).into_owned();
                match take(&mut p, 1)?[0] {
                    0 => out.push((key, f64::from_be_bytes(take(&mut p, 8)?.try_into().ok()?))),
                    1 => {
                        take(&mut p, 1)?;
                    }
                    2 => {
                        let n = usize::from(u16::from_be_bytes(take(&mut p, 2)?.try_into().ok()?));
                        take(&mut p, n)?;
                    }
                    9 if klen == 0 => return Some(()),
                    _ => return None,
                }
            }
        };
        let _ = parse();
        out
    }

    pub fn ecma_array(b: &mut BytesMut, fields: &[(&str, Value)]) {
        b.put_u8(8);
        b.put_u32(fields.len() as u32);
        for (k, v) in fields {
            b.put_u16(k.len() as u16);
            b.put_slice(k.as_bytes());
            match v {
                Value::Number(n) => {
                    b.put_u8(0);
                    b.put_f64(*n);
                }
                Value::Str(s) => string(b, s),
            }
        }
        b.put_slice(&[0, 0, 9]);
    }
}

/// An FLV byte stream read as it arrives (an encoder's output on a pipe): the file header,
/// then whole tags, each given out with its wire bytes as they came (no copy). Bounded: a tag
/// longer than `max_tag` is an error, as is a stream that is not FLV.
#[derive(Debug)]
pub struct FlvReader {
    buf: BytesMut,
    max_tag: usize,
    header_read: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlvReadError {
    #[error("not an FLV stream")]
    NotFlv,
    #[error("a tag of {0} bytes, over the limit")]
    TooLarge(usize),
    #[error("a tag of unknown type {0}")]
    UnknownTag(u8),
}

impl FlvReader {
    pub fn new(max_tag: usize) -> Self {
        Self { buf: BytesMut::new(), max_tag, header_read: false }
    }

    /// Takes more bytes; returns the tags they complete.
    pub fn push(&mut self, data: &[u8]) -> Result<Vec<FlvTag>, FlvReadError> {
        self.buf.extend_from_slice(data);
        let mut out = Vec::new();
        if !self.header_read {
            if self.buf.len() < 9 {
                return Ok(out);
            }
            if &self.buf[..3] != b"FLV" {
                return Err(FlvReadError::NotFlv);
            }
            let offset = u32::from_be_bytes([self.buf[5], self.buf[6], self.buf[7], self.buf[8]]) as usize;
            if !(9..=1024).contains(&offset) {
                return Err(FlvReadError::NotFlv);
            }
            // The header and PreviousTagSize0.
            if self.buf.len() < offset + 4 {
                return Ok(out);
            }
            self.buf.advance(offset + 4);
            self.header_read = true;
        }
        while self.buf.len() >= TAG_HEADER {
            let (kind_byte, len, timestamp) = tag_header(&self.buf[..TAG_HEADER]);
            if len > self.max_tag {
                return Err(FlvReadError::TooLarge(len));
            }
            let kind = match kind_byte & 0x1f {
                8 => TagKind::Audio,
                9 => TagKind::Video,
                18 => TagKind::Script,
                other => return Err(FlvReadError::UnknownTag(other)),
            };
            if self.buf.len() < TAG_HEADER + len + TAG_TRAILER {
                break;
            }
            let wire = self.buf.split_to(TAG_HEADER + len + TAG_TRAILER).freeze();
            let body = &wire[TAG_HEADER..TAG_HEADER + len];
            let (key, header) = match kind {
                TagKind::Script => (false, true),
                // Frame type 1 is a key frame; packet type 0 a sequence header (AVC, HEVC),
                // which is not a frame.
                TagKind::Video => {
                    let header = body.get(1) == Some(&0);
                    (!header && body.first().is_some_and(|b| b >> 4 == 1), header)
                }
                // AAC's packet type 0 is its AudioSpecificConfig.
                TagKind::Audio => (false, body.first().is_some_and(|b| b >> 4 == 10) && body.get(1) == Some(&0)),
            };
            out.push(FlvTag { kind, timestamp, key, header, wire });
        }
        Ok(out)
    }

    /// The same tag at another time (one copy of its body).
    pub fn retimed(tag: &FlvTag, timestamp: u32) -> FlvTag {
        FlvTag::new(tag.kind, timestamp, tag.key, tag.header, &tag.body())
    }
}

/// A tag header's type byte, body length and timestamp (the extended byte is the high one).
fn tag_header(h: &[u8]) -> (u8, usize, u32) {
    let len = (usize::from(h[1]) << 16) | (usize::from(h[2]) << 8) | usize::from(h[3]);
    let ts = (u32::from(h[7]) << 24) | (u32::from(h[4]) << 16) | (u32::from(h[5]) << 8) | u32::from(h[6]);
    (h[0], len, ts)
}

/// Reads tags back from an FLV byte stream (tests and tools; bounded, never panics).
pub fn read_tags(data: &[u8]) -> Vec<(u8, u32, &[u8])> {
    let mut out = Vec::new();
    let mut pos = 13;
    while let Some(h) = data.get(pos..pos + TAG_HEADER) {
        let (kind, len, ts) = tag_header(h);
        let Some(body) = data.get(pos + 11..pos + 11 + len) else { break };
        out.push((kind, ts, body));
        pos += 11 + len + 4;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn au(codec: Codec, dts: u64, key: bool, data: &[u8]) -> MediaEvent {
        MediaEvent::Frame(AccessUnit { codec, pts: dts + 3600, dts, key, data: Bytes::copy_from_slice(data) })
    }

    #[test]
    fn h264_frames_are_length_prefixed_with_cts() {
        let mut m = FlvMuxer::new(FlvOptions::default());
        let cfg = VideoConfig { codec: Codec::H264, width: 320, height: 240, fps: None, record: Bytes::from_static(&[1, 2, 3]) };
        assert!(m.push(&au(Codec::H264, 0, true, &[0, 0, 1, 0x65])).is_none(), "no frame before its header");
        let h = m.push(&MediaEvent::VideoConfig(cfg)).unwrap();
        assert_eq!(&h.body()[..], &[0x17, 0, 0, 0, 0, 1, 2, 3]);
        let t = m.push(&au(Codec::H264, 90_000, true, &[0, 0, 0, 1, 0x65, 9, 0, 0, 1, 0x06, 7])).unwrap();
        assert_eq!(t.timestamp, 0);
        assert_eq!(&t.body()[..], &[0x17, 1, 0, 0, 40, 0, 0, 0, 2, 0x65, 9, 0, 0, 0, 2, 0x06, 7]);
        let t = m.push(&au(Codec::H264, 90_000 + 3600, false, &[0, 0, 1, 0x41])).unwrap();
        assert_eq!((t.timestamp, t.body()[0]), (40, 0x27));
        let file: Vec<u8> = [&file_header(false, true)[..], &t.wire].concat();
        assert_eq!(read_tags(&file), vec![(9, 40, &t.body()[..])]);
        assert_eq!(&t.wire[t.wire.len() - 4..], &(t.wire.len() as u32 - 4).to_be_bytes());
    }

    #[test]
    fn metadata_reads_back() {
        let v = VideoConfig { codec: Codec::H264, width: 640, height: 360, fps: Some(25.0), record: Bytes::new() };
        let tag = metadata(Some(&v), None, HevcMode::Enhanced);
        let fields = amf0::read_numbers(&tag.body());
        assert!(fields.contains(&("width".into(), 640.0)) && fields.contains(&("framerate".into(), 25.0)), "{fields:?}");
        for n in 0..tag.body().len() {
            let _ = amf0::read_numbers(&tag.body()[..n]);
        }
    }

    #[test]
    fn hevc_enhanced_and_g711() {
        let mut m = FlvMuxer::new(FlvOptions::default());
        let cfg = VideoConfig { codec: Codec::H265, width: 1, height: 1, fps: None, record: Bytes::from_static(&[1]) };
        let h = m.push(&MediaEvent::VideoConfig(cfg)).unwrap();
        assert_eq!(&h.body()[..], &[0x90, b'h', b'v', b'c', b'1', 1]);
        let t = m.push(&au(Codec::H265, 0, true, &[0, 0, 1, 0x26, 1])).unwrap();
        assert_eq!(&t.body()[..9], &[0x91, b'h', b'v', b'c', b'1', 0, 0, 40, 0]);
        m.push(&MediaEvent::AudioConfig(AudioConfig { codec: Codec::G711A, sample_rate: 8000, channels: 1, asc: Bytes::new() }));
        let a = m.push(&au(Codec::G711A, 900, true, &[0xD5; 160])).unwrap();
        assert_eq!((a.body()[0], a.body().len(), a.timestamp), (0x72, 161, 10));
    }

    #[test]
    fn a_reader_gives_back_the_tags_a_muxer_wrote_whatever_the_reads_cut() {
        let mut m = FlvMuxer::new(FlvOptions::default());
        let cfg = VideoConfig { codec: Codec::H264, width: 320, height: 240, fps: None, record: Bytes::from_static(&[1, 2, 3]) };
        let tags: Vec<FlvTag> = [
            m.push(&MediaEvent::VideoConfig(cfg)).unwrap(),
            m.push(&au(Codec::H264, 0, true, &[0, 0, 1, 0x65, 1])).unwrap(),
            m.push(&au(Codec::H264, 3600, false, &[0, 0, 1, 0x41, 2])).unwrap(),
        ]
        .into();
        let mut file = file_header(false, true).to_vec();
        for t in &tags {
            file.extend_from_slice(&t.wire);
        }
        for piece in 1..file.len() {
            let mut r = FlvReader::new(1 << 20);
            let mut got = Vec::new();
            for p in file.chunks(piece) {
                got.extend(r.push(p).unwrap());
            }
            assert_eq!(got, tags, "pieces of {piece}");
        }
        assert_eq!(FlvReader::new(1 << 20).push(b"GIF89a...."), Err(FlvReadError::NotFlv));
        assert_eq!(FlvReader::new(4).push(&file).unwrap_err(), FlvReadError::TooLarge(8));
        assert_eq!(FlvReader::retimed(&tags[2], 1000).timestamp, 1000);
    }
}
