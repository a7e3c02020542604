//! What the container demuxers (PS, TS) hand to the codec layer: a codec and its frames.

/// The codecs GB devices carry in PS or TS, by the PSM/PMT `stream_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    H264,
    H265,
    Mpeg4,
    Aac,
    G711A,
    G711U,
    Unknown(u8),
}

impl Codec {
    /// From a PSM `stream_type`.
    pub fn from_stream_type(t: u8) -> Self {
        match t {
            0x1B => Codec::H264,
            0x24 => Codec::H265,
            0x10 => Codec::Mpeg4,
            0x0F => Codec::Aac,
            0x90 => Codec::G711A,
            0x91 => Codec::G711U,
            other => Codec::Unknown(other),
        }
    }

    pub fn is_video(self) -> bool {
        matches!(self, Codec::H264 | Codec::H265 | Codec::Mpeg4)
    }
}

/// One elementary-stream frame as a demuxer (PS or TS) yields it: what one PTS covers: normally one video frame (GB devices start every frame with a PTS),
/// or an audio PES payload. A muxer that packs several frames under one PTS (ffmpeg's vob
/// does) yields them together; splitting access units by NAL is the next layer's job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EsFrame {
    pub stream_id: u8,
    pub codec: Codec,
    /// 90 kHz.
    pub pts: Option<u64>,
    pub dts: Option<u64>,
    pub data: Vec<u8>,
}
