//! MPEG-PS demuxing as GB28181 devices produce it, sans-I/O: feed RTP payload bytes with
//! `push`, take access units with `poll`.
//!
//! Camera PS is messy: the PSM may be missing (codec then sniffed from the payload), a frame is
//! split across several PES packets and across RTP packets, `0xBD` private streams (Hikvision)
//! must be skipped, and after loss the stream restarts mid-structure. On anything unparsable
//! the demuxer drops the partial frames and searches for the next pack header, counting each
//! recovery. Memory is bounded by `max_frame` whatever the input.

use std::collections::VecDeque;

use crate::es::{Codec, EsFrame};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PsStats {
    pub packs: u64,
    pub pes: u64,
    pub frames: u64,
    pub psm: u64,
    pub skipped_private: u64,
    /// Times the demuxer lost sync and searched for the next pack header.
    pub recoveries: u64,
    pub skipped_bytes: u64,
    /// Frames dropped for exceeding `max_frame`.
    pub oversize_frames: u64,
}

#[derive(Default)]
struct Assembly {
    pts: Option<u64>,
    dts: Option<u64>,
    data: Vec<u8>,
    /// Set after an overflow: discard until the next frame starts.
    poisoned: bool,
}

/// Where the demuxer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PsState {
    /// Expecting a start code at the read position.
    Synced,
    /// Searching for `00 00 01 BA` after damage.
    Recovering,
}

pub struct PsDemuxer {
    buf: Vec<u8>,
    pos: usize,
    state: PsState,
    /// stream_id → codec, from the PSM (or sniffed).
    codecs: [Option<Codec>; 256],
    video: Assembly,
    audio: Assembly,
    /// The video / audio stream we demux: from the PSM, else the first one seen (devices and
    /// muxers do not all use 0xE0/0xC0: ffmpeg's vob muxer puts H.264 on 0xE2).
    video_id: Option<u8>,
    audio_id: Option<u8>,
    out: VecDeque<EsFrame>,
    max_frame: usize,
    /// Bytes of the current PES payload still to come, and where they go. A PES payload is
    /// streamed into its frame as packets arrive instead of being buffered whole first.
    payload_left: usize,
    payload_to: Target,
    pub stats: PsStats,
}

/// Where streamed PES payload bytes go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Video,
    Audio,
    Skip,
}

/// Adds bytes to a frame being assembled, within `max`.
fn append_to(a: &mut Assembly, bytes: &[u8], max: usize, stats: &mut PsStats) {
    if !a.poisoned {
        if a.data.len() + bytes.len() > max {
            a.poisoned = true;
            a.data.clear();
            stats.oversize_frames += 1;
        } else {
            a.data.extend_from_slice(bytes);
        }
    }
}

fn pts_at(b: &[u8]) -> Option<u64> {
    let b = b.get(..5)?;
    Some(
        (u64::from(b[0] >> 1) & 0x07) << 30
            | u64::from(b[1]) << 22
            | (u64::from(b[2]) >> 1) << 15
            | u64::from(b[3]) << 7
            | u64::from(b[4]) >> 1,
    )
}

/// Sniffs the codec of a video elementary stream from its first NAL units.
fn sniff_video(data: &[u8]) -> Option<Codec> {
    let mut i = 0;
    while i + 4 < data.len().min(4096) {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            let h = data[i + 3];
            // H.265: VPS(32)/SPS(33)/PPS(34)/IDR(19,20) with layer id 0 in the second byte.
            let hevc_type = (h >> 1) & 0x3f;
            if h & 0x81 == 0 && matches!(hevc_type, 32..=34) && data.get(i + 4) == Some(&1) {
                return Some(Codec::H265);
            }
            let avc_type = h & 0x1f;
            if h & 0x80 == 0 && matches!(avc_type, 1 | 5 | 7 | 8 | 9) {
                return Some(Codec::H264);
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    None
}

/// Offset of the first `00 00 01` (or of the zero before it in `00 00 00 01`).
fn find_start_code(data: &[u8]) -> Option<usize> {
    let i = data.windows(3).position(|w| w == [0, 0, 1])?;
    Some(if i > 0 && data[i - 1] == 0 { i - 1 } else { i })
}

fn sniff_audio(data: &[u8]) -> Codec {
    if data.len() >= 2 && data[0] == 0xFF && data[1] & 0xF6 == 0xF0 {
        Codec::Aac
    } else {
        // GB's default audio is G.711A when nothing says otherwise.
        Codec::G711A
    }
}

enum Step {
    /// Consumed this many bytes.
    Advance(usize),
    NeedMore,
    Lost,
}

impl PsDemuxer {
    pub fn new(max_frame: usize) -> Self {
        Self {
            buf: Vec::new(),
            pos: 0,
            state: PsState::Synced,
            codecs: [None; 256],
            video: Assembly::default(),
            audio: Assembly::default(),
            video_id: None,
            audio_id: None,
            out: VecDeque::new(),
            max_frame,
            payload_left: 0,
            payload_to: Target::Skip,
            stats: PsStats::default(),
        }
    }

    pub fn state(&self) -> PsState {
        self.state
    }

    /// The codec a stream id maps to (PSM, or sniffed), once known.
    pub fn codec_of(&self, stream_id: u8) -> Option<Codec> {
        self.codecs[usize::from(stream_id)]
    }

    /// Feeds bytes (typically one RTP payload).
    pub fn push(&mut self, mut data: &[u8]) {
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        if self.payload_left > 0 {
            // Inside a PES payload (nothing else is pending then): straight into the frame.
            let n = self.payload_left.min(data.len());
            self.stream_payload(&data[..n]);
            data = &data[n..];
            if data.is_empty() {
                return;
            }
        }
        self.buf.extend_from_slice(data);
        loop {
            let step = match self.state {
                PsState::Recovering => self.search(),
                PsState::Synced => self.step(),
            };
            match step {
                Step::Advance(n) => self.pos += n,
                Step::NeedMore => break,
                Step::Lost => {
                    // Step past the failed start code, or the search would find it again.
                    self.pos += 1;
                    self.lose_sync();
                }
            }
        }
        // Bound what waits for more input: a structure never legitimately exceeds 64 KiB + header.
        let pending = self.buf.len() - self.pos;
        if pending > 70 * 1024 {
            self.stats.skipped_bytes += pending as u64;
            self.pos = self.buf.len();
            self.lose_sync();
        }
    }

    /// Ends the frames in progress (call on the RTP marker bit: the frame is complete).
    pub fn end_of_frame(&mut self) {
        self.finish(true);
        self.finish(false);
    }

    /// Packets were lost before the next input: drop partial frames and resynchronise on the
    /// next pack header rather than glue unrelated bytes together.
    pub fn discontinuity(&mut self) {
        self.buf.clear();
        self.pos = 0;
        self.lose_sync();
        // Even when already searching: the rest of a PES payload is not coming.
        self.payload_left = 0;
    }

    pub fn poll(&mut self) -> Option<EsFrame> {
        self.out.pop_front()
    }

    fn stream_payload(&mut self, bytes: &[u8]) {
        self.payload_left -= bytes.len();
        match self.payload_to {
            Target::Video => append_to(&mut self.video, bytes, self.max_frame, &mut self.stats),
            Target::Audio => append_to(&mut self.audio, bytes, self.max_frame, &mut self.stats),
            Target::Skip => {}
        }
    }

    fn lose_sync(&mut self) {
        if self.state == PsState::Synced {
            self.stats.recoveries += 1;
        }
        self.state = PsState::Recovering;
        self.payload_left = 0;
        // A partial frame after loss would decode as garbage: drop it.
        self.video = Assembly::default();
        self.audio = Assembly::default();
    }

    /// Scans for the next pack header.
    fn search(&mut self) -> Step {
        let d = &self.buf[self.pos..];
        match d.windows(4).position(|w| w == [0, 0, 1, 0xBA]) {
            Some(i) => {
                self.stats.skipped_bytes += i as u64;
                self.state = PsState::Synced;
                Step::Advance(i)
            }
            None => {
                // Keep the last 3 bytes: they may be the start of a pack header.
                let keep = d.len().min(3);
                let drop = d.len() - keep;
                self.stats.skipped_bytes += drop as u64;
                if drop > 0 {
                    Step::Advance(drop)
                } else {
                    Step::NeedMore
                }
            }
        }
    }

    fn step(&mut self) -> Step {
        let d = &self.buf[self.pos..];
        if d.len() < 4 {
            return Step::NeedMore;
        }
        if d[0] != 0 || d[1] != 0 || d[2] != 1 {
            // Some cameras send G.711 raw beside PS, or lose a packet: resync.
            return Step::Lost;
        }
        let id = d[3];
        match id {
            0xBA => self.pack_header(),
            0xB9 => Step::Advance(4),
            0xBB => self.skip_with_length(),
            0xBC => self.psm(),
            0xC0..=0xEF => self.pes(id),
            0xBD => {
                self.stats.skipped_private += 1;
                self.skip_with_length()
            }
            // Padding, ECM/EMM, directory and the rest: skip by their length.
            0xBE | 0xBF | 0xF0..=0xFF => self.skip_with_length(),
            _ => Step::Lost,
        }
    }

    fn pack_header(&mut self) -> Step {
        let d = &self.buf[self.pos..];
        let Some(&b4) = d.get(4) else { return Step::NeedMore };
        let len = if b4 & 0xC0 == 0x40 {
            let Some(&b13) = d.get(13) else { return Step::NeedMore };
            14 + usize::from(b13 & 0x07)
        } else if b4 & 0xF0 == 0x20 {
            12 // MPEG-1 pack header
        } else {
            return Step::Lost;
        };
        if d.len() < len {
            return Step::NeedMore;
        }
        self.stats.packs += 1;
        Step::Advance(len)
    }

    fn skip_with_length(&mut self) -> Step {
        let d = &self.buf[self.pos..];
        let Some(len) = d.get(4..6).map(|b| usize::from(u16::from_be_bytes([b[0], b[1]]))) else { return Step::NeedMore };
        if d.len() < 6 + len {
            // Skip the rest as it arrives rather than buffer it.
            self.payload_left = 6 + len - d.len();
            self.payload_to = Target::Skip;
            return Step::Advance(d.len());
        }
        Step::Advance(6 + len)
    }

    /// Program stream map: `psm_length` counts everything after itself, CRC included.
    fn psm(&mut self) -> Step {
        let d = &self.buf[self.pos..];
        let Some(len) = d.get(4..6).map(|b| usize::from(u16::from_be_bytes([b[0], b[1]]))) else { return Step::NeedMore };
        let total = 6 + len;
        if d.len() < total {
            return Step::NeedMore;
        }
        let body = &d[6..total];
        let parsed = (|| {
            let info_len = usize::from(u16::from_be_bytes([*body.get(2)?, *body.get(3)?]));
            let map_start = 4 + info_len;
            let map_len = usize::from(u16::from_be_bytes([*body.get(map_start)?, *body.get(map_start + 1)?]));
            let mut i = map_start + 2;
            let end = (map_start + 2 + map_len).min(body.len());
            let mut found = Vec::new();
            while i + 4 <= end {
                let stream_type = body[i];
                let es_id = body[i + 1];
                let es_info_len = usize::from(u16::from_be_bytes([body[i + 2], body[i + 3]]));
                found.push((es_id, Codec::from_stream_type(stream_type)));
                i += 4 + es_info_len;
            }
            Some(found)
        })();
        match parsed {
            Some(found) => {
                for (es_id, codec) in found {
                    self.codecs[usize::from(es_id)] = Some(codec);
                    if codec.is_video() {
                        self.video_id = Some(es_id);
                    } else if matches!(es_id, 0xC0..=0xDF) {
                        self.audio_id = Some(es_id);
                    }
                }
                self.stats.psm += 1;
                Step::Advance(total)
            }
            // A malformed PSM is not fatal: keep the stream ids we knew.
            None => Step::Advance(total),
        }
    }

    fn pes(&mut self, id: u8) -> Step {
        let d = &self.buf[self.pos..];
        let Some(len) = d.get(4..6).map(|b| usize::from(u16::from_be_bytes([b[0], b[1]]))) else { return Step::NeedMore };
        if len == 0 {
            // Unbounded PES is not used by GB devices in PS; treat as damage.
            return Step::Lost;
        }
        let total = 6 + len;
        let (Some(&marker), Some(&flags), Some(&hdr_len)) = (d.get(6), d.get(7), d.get(8)) else { return Step::NeedMore };
        let payload_start = 9 + usize::from(hdr_len);
        if payload_start > total || marker & 0xC0 != 0x80 {
            return Step::Lost;
        }
        if d.len() < payload_start {
            return Step::NeedMore;
        }
        // The payload may not all be here yet: take what is, stream the rest (`push`).
        let here = total.min(d.len());
        // PTS/DTS only where the header really holds them (found by fuzzing: a 3-byte PES
        // claiming a DTS used to index past its end).
        let header = &d[9..payload_start];
        let pts = if flags & 0x80 != 0 { header.get(..5).and_then(pts_at) } else { None };
        let dts = if flags & 0xC0 == 0xC0 { header.get(5..10).and_then(pts_at) } else { pts };
        let is_video = (0xE0..=0xEF).contains(&id);
        let ours = if is_video { *self.video_id.get_or_insert(id) } else { *self.audio_id.get_or_insert(id) };
        if id != ours {
            // A second video or audio stream: not ours to mux; skip it.
            self.stats.pes += 1;
            self.payload_left = total - here;
            self.payload_to = Target::Skip;
            return Step::Advance(here);
        }
        // A new PTS starts a new frame.
        let starts_new = {
            let a = if is_video { &self.video } else { &self.audio };
            pts.is_some() && (a.pts != pts || !is_video)
        };
        if starts_new && is_video {
            // GB devices begin each such PES with the frame's start code: stream it. A muxer that
            // begins it with the previous frame's tail (ffmpeg) needs the whole PES to cut it.
            let p = &d[payload_start..here];
            if p.len() < (total - payload_start).min(4) {
                return Step::NeedMore;
            }
            if here < total && !(p.starts_with(&[0, 0, 1]) || p.starts_with(&[0, 0, 0, 1])) {
                return Step::NeedMore;
            }
        }
        self.stats.pes += 1;
        let (start, end) = (self.pos + payload_start, self.pos + here);
        let mut rest = start;
        if starts_new {
            if is_video {
                // A PTS belongs to the first frame that *starts* in this PES; bytes before its
                // start code finish the previous frame (ffmpeg's PS muxer packs frames this way;
                // GB devices start every PES on a frame).
                let payload = &self.buf[start..end];
                let head = find_start_code(payload).unwrap_or(payload.len());
                if head > 0 && !self.video.data.is_empty() {
                    self.append(true, start, start + head);
                    rest = start + head;
                }
            }
            self.finish(is_video);
            let a = if is_video { &mut self.video } else { &mut self.audio };
            a.pts = pts;
            a.dts = dts;
        }
        self.append(is_video, rest, end);
        self.payload_left = total - here;
        self.payload_to = if is_video { Target::Video } else { Target::Audio };
        Step::Advance(here)
    }

    /// Adds `buf[from..to]` to the frame being assembled.
    fn append(&mut self, video: bool, from: usize, to: usize) {
        let a = if video { &mut self.video } else { &mut self.audio };
        append_to(a, &self.buf[from..to], self.max_frame, &mut self.stats);
    }

    fn finish(&mut self, video: bool) {
        let (a, id) =
            if video { (std::mem::take(&mut self.video), self.video_id) } else { (std::mem::take(&mut self.audio), self.audio_id) };
        // The frame's buffer is handed out; the next one starts at the size of this one so it
        // does not regrow (and recopy) packet by packet.
        let next = if video { &mut self.video } else { &mut self.audio };
        next.data.reserve(a.data.len().min(self.max_frame));
        let Some(id) = id else { return };
        if a.poisoned || a.data.is_empty() {
            return;
        }
        let codec = match self.codecs[usize::from(id)] {
            Some(c) => c,
            None => {
                // No PSM: sniff once and remember.
                let c = if video { sniff_video(&a.data).unwrap_or(Codec::H264) } else { sniff_audio(&a.data) };
                self.codecs[usize::from(id)] = Some(c);
                c
            }
        };
        self.stats.frames += 1;
        self.out.push_back(EsFrame { stream_id: id, codec, pts: a.pts, dts: a.dts, data: a.data });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pts_bytes(marker: u8, pts: u64) -> [u8; 5] {
        [
            marker << 4 | ((pts >> 29) as u8 & 0x0E) | 1,
            (pts >> 22) as u8,
            ((pts >> 14) as u8 & 0xFE) | 1,
            (pts >> 7) as u8,
            ((pts << 1) as u8 & 0xFE) | 1,
        ]
    }

    fn pack_header(out: &mut Vec<u8>, stuffing: u8) {
        out.extend_from_slice(&[0, 0, 1, 0xBA, 0x44, 0, 4, 0, 4, 1, 0x01, 0x89, 0xC3, 0xF8 | stuffing]);
        out.extend(std::iter::repeat_n(0xFF, usize::from(stuffing)));
    }

    /// A PSM whose length counts the CRC, as the standard says.
    fn psm(out: &mut Vec<u8>, entries: &[(u8, u8)]) {
        let map: Vec<u8> = entries.iter().flat_map(|&(t, id)| [t, id, 0, 0]).collect();
        let body_len = 2 + 2 + 2 + map.len() + 4;
        out.extend_from_slice(&[0, 0, 1, 0xBC]);
        out.extend_from_slice(&(body_len as u16).to_be_bytes());
        out.extend_from_slice(&[0xE0, 0xFF, 0, 0]);
        out.extend_from_slice(&(map.len() as u16).to_be_bytes());
        out.extend_from_slice(&map);
        out.extend_from_slice(&[0xDE, 0xAD, 0xBE, 0xEF]); // CRC (not checked: a bad CRC is not fatal)
    }

    fn pes(out: &mut Vec<u8>, id: u8, pts: Option<u64>, payload: &[u8]) {
        let hdr: Vec<u8> = pts.map(|p| pts_bytes(2, p).to_vec()).unwrap_or_default();
        let len = 3 + hdr.len() + payload.len();
        out.extend_from_slice(&[0, 0, 1, id]);
        out.extend_from_slice(&(len as u16).to_be_bytes());
        out.extend_from_slice(&[0x80, if pts.is_some() { 0x80 } else { 0 }, hdr.len() as u8]);
        out.extend_from_slice(&hdr);
        out.extend_from_slice(payload);
    }

    const SPS_IDR: &[u8] = &[0, 0, 0, 1, 0x67, 0x42, 0, 0x1F, 0, 0, 0, 1, 0x68, 0xCE, 0, 0, 0, 1, 0x65, 0x88, 0x84];
    const HEVC_VPS: &[u8] = &[0, 0, 0, 1, 0x40, 0x01, 0x0C, 0x01, 0, 0, 0, 1, 0x42, 0x01, 0x01];

    /// Two video frames (the first split over two PES) with audio between, GB style.
    fn gb_stream() -> Vec<u8> {
        let mut s = Vec::new();
        pack_header(&mut s, 2);
        psm(&mut s, &[(0x1B, 0xE0), (0x90, 0xC0)]);
        pes(&mut s, 0xE0, Some(3600), &SPS_IDR[..10]);
        pes(&mut s, 0xE0, None, &SPS_IDR[10..]);
        pes(&mut s, 0xBD, None, b"hikvision private");
        pes(&mut s, 0xC0, Some(3600), &[0xD5; 160]);
        pack_header(&mut s, 0);
        pes(&mut s, 0xE0, Some(7200), &[0, 0, 0, 1, 0x41, 0x9A, 0x01]);
        s.extend_from_slice(&[0, 0, 1, 0xB9]);
        s
    }

    fn drain(d: &mut PsDemuxer) -> Vec<EsFrame> {
        d.end_of_frame();
        std::iter::from_fn(|| d.poll()).collect()
    }

    #[test]
    fn frame_tail_before_the_next_start_code_stays_with_its_frame() {
        // ffmpeg's muxer: the PES carrying the next PTS begins with the previous frame's tail.
        let mut s = Vec::new();
        pack_header(&mut s, 0);
        pes(&mut s, 0xE0, Some(3600), &[0, 0, 0, 1, 0x65, 1, 2]);
        pes(&mut s, 0xE0, Some(7200), &[3, 4, 0, 0, 0, 1, 0x41, 5]);
        let mut d = PsDemuxer::new(1 << 16);
        d.push(&s);
        let f = drain(&mut d);
        assert_eq!(f.len(), 2);
        assert_eq!((f[0].pts, &f[0].data[..]), (Some(3600), &[0, 0, 0, 1, 0x65, 1, 2, 3, 4][..]));
        assert_eq!((f[1].pts, &f[1].data[..]), (Some(7200), &[0, 0, 0, 1, 0x41, 5][..]));
    }

    #[test]
    fn demuxes_gb_ps_with_psm_split_pes_and_private_stream() {
        let mut d = PsDemuxer::new(1 << 20);
        d.push(&gb_stream());
        let frames = drain(&mut d);
        let video: Vec<_> = frames.iter().filter(|f| f.codec.is_video()).collect();
        assert_eq!(video.len(), 2);
        assert_eq!(video[0].codec, Codec::H264);
        assert_eq!(video[0].pts, Some(3600));
        assert_eq!(video[0].data, SPS_IDR, "a frame split over two PES comes out whole");
        assert_eq!(video[1].pts, Some(7200));
        let audio: Vec<_> = frames.iter().filter(|f| !f.codec.is_video()).collect();
        assert_eq!(audio.len(), 1);
        assert_eq!(audio[0].codec, Codec::G711A);
        assert_eq!(audio[0].data.len(), 160);
        assert_eq!((d.stats.packs, d.stats.psm, d.stats.skipped_private, d.stats.recoveries), (2, 1, 1, 0));
    }

    #[test]
    fn any_split_of_the_input_gives_the_same_frames() {
        let s = gb_stream();
        let mut whole = PsDemuxer::new(1 << 20);
        whole.push(&s);
        let expected = drain(&mut whole);
        for cut in 0..s.len() {
            let mut d = PsDemuxer::new(1 << 20);
            d.push(&s[..cut]);
            d.push(&s[cut..]);
            assert_eq!(drain(&mut d), expected, "cut at {cut}");
        }
    }

    #[test]
    fn without_psm_the_codec_is_sniffed() {
        let mut s = Vec::new();
        pack_header(&mut s, 0);
        pes(&mut s, 0xE0, Some(90_000), HEVC_VPS);
        pes(&mut s, 0xC0, Some(90_000), &[0xFF, 0xF1, 0x50, 0x80, 0x02, 0x1F, 0xFC]);
        let mut d = PsDemuxer::new(1 << 20);
        d.push(&s);
        let frames = drain(&mut d);
        assert_eq!(
            frames.iter().map(|f| f.codec).collect::<Vec<_>>(),
            vec![Codec::H265, Codec::Aac],
            "end_of_frame flushes video, then audio"
        );
        assert_eq!(d.codec_of(0xE0), Some(Codec::H265));
    }

    #[test]
    fn loss_mid_frame_drops_the_partial_frame_and_resyncs_at_the_next_pack() {
        let s = gb_stream();
        let mut damaged = s[..40].to_vec(); // cut inside the first video PES
        damaged.extend_from_slice(&[0x12, 0x34, 0x56, 0x00, 0x00]);
        let second_pack = s.windows(4).rposition(|w| w == [0, 0, 1, 0xBA]).unwrap();
        damaged.extend_from_slice(&s[second_pack..]);
        let mut d = PsDemuxer::new(1 << 20);
        d.push(&damaged);
        let frames = drain(&mut d);
        assert_eq!(frames.len(), 1, "{frames:?}");
        assert_eq!(frames[0].pts, Some(7200));
        assert_eq!(d.stats.recoveries, 1);
        assert!(d.stats.skipped_bytes > 0);
        assert_eq!(d.state(), PsState::Synced);
    }

    #[test]
    fn a_pack_start_code_with_a_bad_header_does_not_hang() {
        // 00 00 01 BA followed by neither the MPEG-1 nor the MPEG-2 form (found by the
        // mutation test: search and step used to hand the same offset back and forth).
        let mut d = PsDemuxer::new(1 << 20);
        let mut s = vec![0, 0, 1, 0xBA, 0x00, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
        s.extend_from_slice(&gb_stream());
        d.push(&s);
        let frames = drain(&mut d);
        assert_eq!(frames.iter().filter(|f| f.codec.is_video()).count(), 2);
        assert_eq!(d.stats.recoveries, 1);
    }

    #[test]
    fn a_pes_claiming_pts_and_dts_it_does_not_hold_does_not_panic() {
        // The fuzzer's crash input: a 3-byte audio PES with PTS+DTS flags and no header bytes.
        let mut d = PsDemuxer::new(1 << 20);
        d.push(&[0, 0, 1, 0xC8, 0, 3, 0x9C, 0xC4, 0]);
        d.push(&gb_stream());
        let frames = drain(&mut d);
        assert_eq!(frames.iter().filter(|f| f.codec.is_video()).count(), 2);
    }

    #[test]
    fn oversize_frames_are_dropped_and_memory_stays_bounded() {
        let mut d = PsDemuxer::new(10_000);
        let mut s = Vec::new();
        pack_header(&mut s, 0);
        pes(&mut s, 0xE0, Some(1), &[7; 8000]);
        pes(&mut s, 0xE0, None, &[7; 8000]);
        pes(&mut s, 0xE0, Some(2), &[0, 0, 1, 0x41]);
        d.push(&s);
        let frames = drain(&mut d);
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].pts, Some(2));
        assert_eq!(d.stats.oversize_frames, 1);
        // Endless garbage never grows the buffer.
        for _ in 0..1000 {
            d.push(&[0xAB; 1400]);
            assert!(d.buf.len() - d.pos < 72 * 1024);
        }
    }
}
