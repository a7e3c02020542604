//! RTP as GB28181 devices send it: the packet header (RFC 3550) and the framing of RTP over TCP
//! (RFC 4571's 2-byte length, or RTSP's `$` interleave). Sans-I/O: bytes in, packets out.
//!
//! TCP streams from cameras break: a half-written packet after a reconnect, a vendor preamble,
//! garbage after a firmware hiccup. The framer then searches for the next place where a length
//! prefix is followed by an RTP header with the expected SSRC, *twice in a row* (one match can be
//! chance), drops what lies before it, and counts what it skipped. Memory is bounded by
//! `max_packet` whatever the peer sends.

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RtpError {
    #[error("packet of {0} bytes is shorter than an RTP header")]
    TooShort(usize),
    #[error("RTP version {0}, not 2")]
    Version(u8),
    #[error("header (CSRC/extension/padding) runs past the packet end")]
    Truncated,
}

/// One RTP packet, borrowing its payload from the receive buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    pub payload_type: u8,
    pub marker: bool,
    pub seq: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    pub payload: &'a [u8],
}

pub const HEADER_LEN: usize = 12;

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes([*b.get(at)?, *b.get(at + 1)?, *b.get(at + 2)?, *b.get(at + 3)?]))
}

impl<'a> RtpPacket<'a> {
    pub fn parse(buf: &'a [u8]) -> Result<Self, RtpError> {
        if buf.len() < HEADER_LEN {
            return Err(RtpError::TooShort(buf.len()));
        }
        let b0 = buf[0];
        let version = b0 >> 6;
        if version != 2 {
            return Err(RtpError::Version(version));
        }
        let has_padding = b0 & 0x20 != 0;
        let has_extension = b0 & 0x10 != 0;
        let csrc_count = usize::from(b0 & 0x0f);
        let mut start = HEADER_LEN + 4 * csrc_count;
        if has_extension {
            let words = usize::from(be16(buf, start + 2).ok_or(RtpError::Truncated)?);
            start += 4 + 4 * words;
        }
        let mut end = buf.len();
        if has_padding {
            let pad = usize::from(*buf.last().ok_or(RtpError::Truncated)?);
            end = end.checked_sub(pad).ok_or(RtpError::Truncated)?;
        }
        if start > end {
            return Err(RtpError::Truncated);
        }
        Ok(Self {
            payload_type: buf[1] & 0x7f,
            marker: buf[1] & 0x80 != 0,
            seq: be16(buf, 2).ok_or(RtpError::Truncated)?,
            timestamp: be32(buf, 4).ok_or(RtpError::Truncated)?,
            ssrc: be32(buf, 8).ok_or(RtpError::Truncated)?,
            payload: &buf[start..end],
        })
    }

    /// Writes a 12-byte header (no CSRC, extension or padding) into `out`.
    pub fn write_header(out: &mut Vec<u8>, payload_type: u8, marker: bool, seq: u16, timestamp: u32, ssrc: u32) {
        out.push(0x80);
        out.push((payload_type & 0x7f) | if marker { 0x80 } else { 0 });
        out.extend_from_slice(&seq.to_be_bytes());
        out.extend_from_slice(&timestamp.to_be_bytes());
        out.extend_from_slice(&ssrc.to_be_bytes());
    }
}

/// Where the TCP framer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// At a packet boundary.
    Synced,
    /// Lost: scanning for the next boundary; `skipped` bytes dropped so far in this search.
    Searching { skipped: usize },
}

/// Counters a framer keeps (exposed per stream).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FramerStats {
    pub packets: u64,
    pub resyncs: u64,
    pub skipped_bytes: u64,
}

/// Cuts RTP packets out of a TCP byte stream: RFC 4571 (`len16 | rtp`) or interleaved
/// (`'$' | channel | len16 | rtp`), detected per packet.
pub struct TcpFramer {
    buf: Vec<u8>,
    /// Read position in `buf` (consumed bytes are compacted away lazily).
    pos: usize,
    state: Framing,
    expected_ssrc: Option<u32>,
    max_packet: usize,
    pub stats: FramerStats,
}

impl TcpFramer {
    /// `expected_ssrc`: the SSRC the stream must carry (resync looks for it); `max_packet`: the
    /// largest packet accepted (and so the most this framer buffers, about twice that).
    pub fn new(expected_ssrc: Option<u32>, max_packet: usize) -> Self {
        Self {
            buf: Vec::with_capacity(2 * max_packet.min(1 << 16)),
            pos: 0,
            state: Framing::Synced,
            expected_ssrc,
            max_packet,
            stats: FramerStats::default(),
        }
    }

    /// The camera turned out to send another SSRC (it said so in its SDP answer): accept that one.
    pub fn set_expected_ssrc(&mut self, ssrc: Option<u32>) {
        self.expected_ssrc = ssrc;
    }

    pub fn expected_ssrc(&self) -> Option<u32> {
        self.expected_ssrc
    }

    pub fn state(&self) -> Framing {
        self.state
    }

    pub fn push(&mut self, data: &[u8]) {
        if self.pos > 0 && (self.pos >= self.buf.len() / 2 || self.buf.len() + data.len() > self.buf.capacity()) {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(data);
        // Bound memory: while searching, old bytes beyond one max packet are dropped for good.
        let limit = 2 * self.max_packet + 4;
        let pending = self.buf.len() - self.pos;
        if pending > limit {
            let cut = pending - limit;
            self.pos += cut;
            self.note_skip(cut);
        }
    }

    fn note_skip(&mut self, n: usize) {
        self.stats.skipped_bytes += n as u64;
        self.state = match self.state {
            Framing::Synced => {
                self.stats.resyncs += 1;
                Framing::Searching { skipped: n }
            }
            Framing::Searching { skipped } => Framing::Searching { skipped: skipped + n },
        };
    }

    /// Not a boundary here: drop one byte and keep looking.
    fn skip_byte(&mut self) {
        self.note_skip(1);
        self.pos += 1;
    }

    /// A packet boundary at `at` (relative to the unread data): (prefix length, packet length).
    fn frame_at(&self, at: usize) -> Option<(usize, usize)> {
        let d = self.buf.get(self.pos + at..)?;
        let (prefix, len) = if d.first() == Some(&b'$') { (4, usize::from(be16(d, 2)?)) } else { (2, usize::from(be16(d, 0)?)) };
        Some((prefix, len))
    }

    /// Whether a plausible RTP packet of ours starts at `at` with the given prefix/length.
    fn plausible(&self, at: usize, prefix: usize, len: usize) -> Option<bool> {
        if len < HEADER_LEN || len > self.max_packet {
            return Some(false);
        }
        let d = self.buf.get(self.pos + at + prefix..)?;
        if d.len() < HEADER_LEN {
            return None; // need more bytes to judge
        }
        let version_ok = d[0] >> 6 == 2;
        let ssrc_ok = self.expected_ssrc.is_none_or(|s| be32(d, 8) == Some(s));
        Some(version_ok && ssrc_ok)
    }

    /// The next whole packet, or `None` when more bytes are needed.
    pub fn next_packet(&mut self) -> Option<&[u8]> {
        loop {
            let (prefix, len) = self.frame_at(0)?;
            match self.state {
                Framing::Synced => {
                    if len == 0 {
                        // Zero-length frames are legal keepalives in RFC 4571.
                        self.pos += prefix;
                        continue;
                    }
                    match self.plausible(0, prefix, len) {
                        None => return None,
                        Some(true) => {}
                        Some(false) => {
                            self.skip_byte();
                            continue;
                        }
                    }
                }
                Framing::Searching { .. } => {
                    // Accept a boundary only if the next one lines up too (or the buffer ends
                    // exactly there): one look-alike can be chance, two rarely are.
                    match self.plausible(0, prefix, len) {
                        None => return None,
                        Some(false) => {
                            self.skip_byte();
                            continue;
                        }
                        Some(true) => {
                            let next = prefix + len;
                            match self.frame_at(next) {
                                None if self.buf.len() - self.pos == next => {}
                                None => return None,
                                Some((p2, l2)) => match self.plausible(next, p2, l2) {
                                    None => return None,
                                    Some(true) => {}
                                    Some(false) => {
                                        self.skip_byte();
                                        continue;
                                    }
                                },
                            }
                            self.state = Framing::Synced;
                        }
                    }
                }
            }
            let start = self.pos + prefix;
            let end = start + len;
            if end > self.buf.len() {
                return None;
            }
            self.pos = end;
            self.stats.packets += 1;
            return self.buf.get(start..end);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(seq: u16, ssrc: u32, payload: &[u8]) -> Vec<u8> {
        let mut p = Vec::new();
        RtpPacket::write_header(&mut p, 96, seq.is_multiple_of(3), seq, u32::from(seq) * 3600, ssrc);
        p.extend_from_slice(payload);
        p
    }

    fn rfc4571(p: &[u8]) -> Vec<u8> {
        let mut out = (p.len() as u16).to_be_bytes().to_vec();
        out.extend_from_slice(p);
        out
    }

    #[test]
    fn parses_header_fields_csrc_extension_and_padding() {
        let p = packet(7, 0x0102_0304, b"PSDATA");
        let r = RtpPacket::parse(&p).unwrap();
        assert_eq!((r.payload_type, r.seq, r.timestamp, r.ssrc, r.payload), (96, 7, 25_200, 0x0102_0304, &b"PSDATA"[..]));
        // 1 CSRC, a 1-word extension, 2 bytes of padding.
        let mut q = vec![0x80 | 0x20 | 0x10 | 1, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, 9];
        q.extend_from_slice(&[0, 0, 0, 5]); // CSRC
        q.extend_from_slice(&[0xBE, 0xDE, 0, 1, 1, 2, 3, 4]); // extension header + 1 word
        q.extend_from_slice(b"xy");
        q.extend_from_slice(&[0, 2]); // padding, last byte = count
        let r = RtpPacket::parse(&q).unwrap();
        assert_eq!(r.payload, b"xy");
        assert_eq!(RtpPacket::parse(&q[..14]), Err(RtpError::Truncated));
        assert_eq!(RtpPacket::parse(&[0x40; 12]), Err(RtpError::Version(1)));
        assert_eq!(RtpPacket::parse(&[0x80; 5]), Err(RtpError::TooShort(5)));
    }

    #[test]
    fn frames_rfc4571_and_interleaved_split_at_every_offset() {
        let mut stream = Vec::new();
        for seq in 0..4u16 {
            stream.extend(rfc4571(&packet(seq, 42, &vec![seq as u8; 100 + usize::from(seq)])));
        }
        let p = packet(9, 42, b"interleaved");
        stream.extend_from_slice(&[b'$', 0, 0, p.len() as u8]);
        stream.extend_from_slice(&p);
        stream.extend_from_slice(&[0, 0]); // an RFC 4571 keepalive
        stream.extend(rfc4571(&packet(10, 42, b"last")));
        for cut in 0..stream.len() {
            let mut f = TcpFramer::new(Some(42), 1500);
            let mut seqs = Vec::new();
            for part in [&stream[..cut], &stream[cut..]] {
                f.push(part);
                while let Some(pk) = f.next_packet() {
                    seqs.push(RtpPacket::parse(pk).unwrap().seq);
                }
            }
            assert_eq!(seqs, vec![0, 1, 2, 3, 9, 10], "cut at {cut}");
            assert_eq!(f.stats.resyncs, 0);
        }
    }

    #[test]
    fn resyncs_after_garbage_on_two_consecutive_matches_and_counts_it() {
        let mut stream = rfc4571(&packet(1, 42, b"one"));
        // Garbage containing a fake boundary with the right SSRC but no second one after it.
        let mut junk = vec![0xAA; 37];
        junk.extend(rfc4571(&packet(99, 42, b"fake")));
        junk.truncate(junk.len() - 2);
        junk.extend_from_slice(&[0x55; 11]);
        stream.extend_from_slice(&[0x7F, 0xFF]); // a length that cannot be ours
        stream.extend_from_slice(&junk);
        for seq in 2..5u16 {
            stream.extend(rfc4571(&packet(seq, 42, b"good")));
        }
        let mut f = TcpFramer::new(Some(42), 1500);
        f.push(&stream);
        let mut seqs = Vec::new();
        while let Some(pk) = f.next_packet() {
            seqs.push(RtpPacket::parse(pk).unwrap().seq);
        }
        assert_eq!(seqs, vec![1, 2, 3, 4]);
        assert_eq!(f.stats.resyncs, 1);
        assert!(f.stats.skipped_bytes > 40);
        assert_eq!(f.state(), Framing::Synced);
    }

    #[test]
    fn another_ssrc_never_enters_and_memory_stays_bounded() {
        let mut f = TcpFramer::new(Some(42), 1500);
        for seq in 0..1000u16 {
            f.push(&rfc4571(&packet(seq, 7, &[0; 1000])));
            assert!(f.next_packet().is_none());
            assert!(f.buf.len() <= 4 * 1500 + 2048, "buffered {}", f.buf.len());
        }
        assert!(matches!(f.state(), Framing::Searching { .. }));
        // Our SSRC comes back: two in a row and we are synced again.
        for seq in 0..3u16 {
            f.push(&rfc4571(&packet(seq, 42, b"ok")));
        }
        let mut n = 0;
        while f.next_packet().is_some() {
            n += 1;
        }
        assert!(n >= 2, "{n}");
    }
}
