//! MPEG-PS muxing the way GB28181 cameras do it: a pack header before every frame, system
//! header and PSM before every key frame, PES packets of at most 64 KiB with a PTS on the first.
//! ffmpeg cannot write this (it writes no PSM), so the simulator and tests use this muxer.

use crate::es::Codec;

/// Largest PES payload so the 16-bit PES_packet_length (which counts the 3 + 10 header bytes)
/// cannot overflow.
const MAX_PES_PAYLOAD: usize = 65_535 - 13;
/// 50-byte units: 20 Mbit/s, comfortably above what cameras send.
const MUX_RATE: u32 = 50_000;

fn stream_type(codec: Codec) -> u8 {
    match codec {
        Codec::H264 => 0x1B,
        Codec::H265 => 0x24,
        Codec::Mpeg4 => 0x10,
        Codec::Aac => 0x0F,
        Codec::G711A => 0x90,
        Codec::G711U => 0x91,
        Codec::Unknown(t) => t,
    }
}

/// MPEG-2 CRC-32 (poly 0x04C11DB7, no reflection), as the PSM uses.
pub fn crc32_mpeg2(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 { (crc << 1) ^ 0x04C1_1DB7 } else { crc << 1 };
        }
    }
    crc
}

fn put_timestamp(out: &mut Vec<u8>, prefix: u8, ts: u64) {
    out.extend_from_slice(&[
        (prefix << 4) | (((ts >> 29) & 0x0E) as u8) | 1,
        (ts >> 22) as u8,
        (((ts >> 14) & 0xFE) as u8) | 1,
        (ts >> 7) as u8,
        (((ts << 1) & 0xFE) as u8) | 1,
    ]);
}

pub struct PsMuxer {
    video: Codec,
    audio: Option<Codec>,
}

impl PsMuxer {
    pub fn new(video: Codec, audio: Option<Codec>) -> Self {
        Self { video, audio }
    }

    fn pack_header(out: &mut Vec<u8>, scr: u64) {
        let base = scr & ((1 << 33) - 1);
        out.extend_from_slice(&[0, 0, 1, 0xBA]);
        out.extend_from_slice(&[
            0x44 | (((base >> 27) & 0x38) as u8) | (((base >> 28) & 0x03) as u8),
            (base >> 20) as u8,
            0x04 | (((base >> 12) & 0xF8) as u8) | (((base >> 13) & 0x03) as u8),
            (base >> 5) as u8,
            0x04 | (((base << 3) & 0xF8) as u8),
            0x01,
            (MUX_RATE >> 14) as u8,
            (MUX_RATE >> 6) as u8,
            (((MUX_RATE << 2) & 0xFC) as u8) | 0x03,
            0xF8, // no stuffing
        ]);
    }

    fn system_header(&self, out: &mut Vec<u8>) {
        let streams: usize = 1 + usize::from(self.audio.is_some());
        out.extend_from_slice(&[0, 0, 1, 0xBB]);
        out.extend_from_slice(&((6 + 3 * streams) as u16).to_be_bytes());
        out.extend_from_slice(&[
            0x80 | (MUX_RATE >> 15) as u8,
            (MUX_RATE >> 7) as u8,
            ((MUX_RATE << 1) as u8) | 1,
            (u8::from(self.audio.is_some()) << 2) | 0x02 | 0x01, // audio_bound, fixed=0, CSPS
            0xE1,                                                // audio/video lock, marker, video_bound 1
            0x7F,
        ]);
        // P-STD buffers: video 1024 × 1 KiB units, audio 32 × 128 B units.
        out.extend_from_slice(&[0xE0, 0xE0 | 0x20 | 0x04, 0x00]);
        if self.audio.is_some() {
            out.extend_from_slice(&[0xC0, 0xC0, 0x20]);
        }
    }

    fn psm(&self, out: &mut Vec<u8>) {
        let start = out.len();
        let mut map = vec![stream_type(self.video), 0xE0, 0, 0];
        if let Some(a) = self.audio {
            map.extend_from_slice(&[stream_type(a), 0xC0, 0, 0]);
        }
        out.extend_from_slice(&[0, 0, 1, 0xBC]);
        // psm_length counts everything after itself, CRC included.
        out.extend_from_slice(&((6 + map.len() + 4) as u16).to_be_bytes());
        out.extend_from_slice(&[0xE0, 0xFF, 0, 0]); // current_next, version 0, marker; no program info
        out.extend_from_slice(&(map.len() as u16).to_be_bytes());
        out.extend_from_slice(&map);
        let crc = crc32_mpeg2(&out[start..]);
        out.extend_from_slice(&crc.to_be_bytes());
    }

    fn pes(out: &mut Vec<u8>, stream_id: u8, payload: &[u8], pts: u64, dts: Option<u64>) {
        let mut first = true;
        for chunk in payload.chunks(MAX_PES_PAYLOAD) {
            let (flags, header_len) = match (first, dts.filter(|d| *d != pts)) {
                (true, Some(_)) => (0xC0u8, 10u8),
                (true, None) => (0x80, 5),
                (false, _) => (0x00, 0),
            };
            out.extend_from_slice(&[0, 0, 1, stream_id]);
            out.extend_from_slice(&((3 + usize::from(header_len) + chunk.len()) as u16).to_be_bytes());
            out.extend_from_slice(&[0x80, flags, header_len]);
            match (first, dts.filter(|d| *d != pts)) {
                (true, Some(d)) => {
                    put_timestamp(out, 3, pts);
                    put_timestamp(out, 1, d);
                }
                (true, None) => put_timestamp(out, 2, pts),
                _ => {}
            }
            out.extend_from_slice(chunk);
            first = false;
        }
    }

    /// Appends one video frame (Annex B) as PS.
    pub fn video(&self, frame: &[u8], pts: u64, dts: Option<u64>, key: bool, out: &mut Vec<u8>) {
        Self::pack_header(out, dts.unwrap_or(pts));
        if key {
            self.system_header(out);
            self.psm(out);
        }
        Self::pes(out, 0xE0, frame, pts, dts);
    }

    /// Appends one audio frame (ADTS for AAC, raw for G.711) as PS.
    pub fn audio(&self, frame: &[u8], pts: u64, out: &mut Vec<u8>) {
        Self::pack_header(out, pts);
        Self::pes(out, 0xC0, frame, pts, None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ps::PsDemuxer;

    #[test]
    fn round_trips_through_our_demuxer() {
        let m = PsMuxer::new(Codec::H265, Some(Codec::G711A));
        let mut ps = Vec::new();
        let big: Vec<u8> = [&[0, 0, 0, 1, 0x26, 0x01][..], &vec![0x55; 150_000]].concat();
        m.video(&big, 3600, None, true, &mut ps);
        m.audio(&[0xD5; 320], 3600, &mut ps);
        m.video(&[0, 0, 0, 1, 0x02, 0x01, 7], 7200, Some(3600), false, &mut ps);
        let mut d = PsDemuxer::new(1 << 20);
        for chunk in ps.chunks(1400) {
            d.push(chunk);
        }
        d.end_of_frame();
        let frames: Vec<_> = std::iter::from_fn(|| d.poll()).collect();
        assert_eq!(frames.len(), 3, "{:?}", d.stats);
        assert_eq!((frames[0].codec, frames[0].pts, frames[0].data.len()), (Codec::H265, Some(3600), big.len()));
        assert_eq!(frames[0].data, big);
        // Audio completes last: nothing after it ends it before end_of_frame.
        assert_eq!((frames[2].codec, frames[2].data.len()), (Codec::G711A, 320));
        assert_eq!((frames[1].pts, frames[1].dts), (Some(7200), Some(3600)));
        assert_eq!(d.stats.psm, 1);
    }

    #[test]
    fn crc_known_value() {
        // CRC-32/MPEG-2 check value.
        assert_eq!(crc32_mpeg2(b"123456789"), 0x0376_E6E7);
    }
}
