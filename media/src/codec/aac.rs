//! AAC in ADTS (how PS carries it) to raw frames plus an AudioSpecificConfig (how FLV carries it).

const SAMPLE_RATES: [u32; 13] = [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdtsHeader {
    /// Audio object type (profile + 1).
    pub object_type: u8,
    pub sample_rate_index: u8,
    pub channel_config: u8,
    pub header_len: usize,
    /// Header plus payload.
    pub frame_len: usize,
}

impl AdtsHeader {
    pub fn parse(b: &[u8]) -> Option<Self> {
        let b = b.get(..7)?;
        if b[0] != 0xFF || b[1] & 0xF6 != 0xF0 {
            return None;
        }
        let protection_absent = b[1] & 1 == 1;
        let header_len = if protection_absent { 7 } else { 9 };
        let frame_len = (usize::from(b[3] & 0x03) << 11) | (usize::from(b[4]) << 3) | usize::from(b[5] >> 5);
        let sample_rate_index = (b[2] >> 2) & 0x0F;
        if frame_len < header_len || usize::from(sample_rate_index) >= SAMPLE_RATES.len() {
            return None;
        }
        Some(Self {
            object_type: (b[2] >> 6) + 1,
            sample_rate_index,
            channel_config: ((b[2] & 1) << 2) | (b[3] >> 6),
            header_len,
            frame_len,
        })
    }

    pub fn sample_rate(&self) -> u32 {
        SAMPLE_RATES[usize::from(self.sample_rate_index)]
    }

    /// The 2-byte AudioSpecificConfig for this stream.
    pub fn audio_specific_config(&self) -> [u8; 2] {
        [(self.object_type << 3) | (self.sample_rate_index >> 1), ((self.sample_rate_index & 1) << 7) | (self.channel_config << 3)]
    }
}

/// Iterates the ADTS frames in a PES payload: (header, raw payload range). Stops at the first
/// byte that is not a valid ADTS header or a frame that runs past the end.
pub fn frames(data: &[u8]) -> impl Iterator<Item = (AdtsHeader, std::ops::Range<usize>)> + '_ {
    let mut pos = 0;
    std::iter::from_fn(move || {
        let h = AdtsHeader::parse(data.get(pos..)?)?;
        let end = pos.checked_add(h.frame_len)?;
        if end > data.len() {
            return None;
        }
        let raw = pos + h.header_len..end;
        pos = end;
        Some((h, raw))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adts_to_asc() {
        // AAC-LC, 44.1 kHz, stereo, 13-byte frame (7 header + 6 payload).
        let mut frame = vec![0xFF, 0xF1, 0x50, 0x80, 0x01, 0xBF, 0xFC];
        frame.extend_from_slice(&[1, 2, 3, 4, 5, 6]);
        let h = AdtsHeader::parse(&frame).unwrap();
        assert_eq!((h.object_type, h.sample_rate(), h.channel_config, h.frame_len), (2, 44100, 2, 13));
        assert_eq!(h.audio_specific_config(), [0x12, 0x10]);
        let two = [frame.clone(), frame].concat();
        let got: Vec<_> = frames(&two).map(|(_, r)| r).collect();
        assert_eq!(got, vec![7..13, 20..26]);
        assert_eq!(frames(&two[..20]).count(), 1);
    }
}
