//! A stream's video back as an Annex B elementary stream (start codes, parameter sets in band):
//! what a decoder reading raw H.264 or H.265 takes (`ffmpeg -f h264 -i pipe:`), for pictures
//! made from a stream (snapshots, MJPEG). Sans I/O: FLV video tags in, bytes to write out.
//!
//! Output starts at a key frame, which carries the parameter sets of the latest sequence header
//! before it, so a decoder can start on any key frame it is given. A new sequence header with
//! other parameters waits for its key frame like the first.

use bytes::{BufMut, Bytes, BytesMut};

use crate::es::Codec;
use crate::flv::{FlvTag, TagKind, VideoBody, VideoPacket};

const START_CODE: [u8; 4] = [0, 0, 0, 1];

/// The parameter sets in a decoder configuration record: SPS and PPS of an avcC, VPS, SPS and
/// PPS of an hvcC. A record that is cut short gives the sets read before the cut.
pub fn parameter_sets(codec: Codec, record: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    match codec {
        Codec::H264 => {
            let mut i = 5;
            // SPS count (5 bits), then the PPS count (8 bits) after the SPSs.
            for count_mask in [0x1f_u8, 0xff] {
                let Some(&n) = record.get(i) else { return out };
                i += 1;
                for _ in 0..(n & count_mask) {
                    let Some(unit) = unit_at(record, &mut i) else { return out };
                    out.push(unit);
                }
            }
        }
        Codec::H265 => {
            let Some(&arrays) = record.get(22) else { return out };
            let mut i = 23;
            for _ in 0..arrays {
                let Some(count) = record.get(i + 1..i + 3).map(|c| u16::from_be_bytes([c[0], c[1]])) else { return out };
                i += 3;
                for _ in 0..count {
                    let Some(unit) = unit_at(record, &mut i) else { return out };
                    out.push(unit);
                }
            }
        }
        _ => {}
    }
    out
}

/// The 16-bit length-prefixed unit at `*i`, moving `*i` past it.
fn unit_at<'a>(record: &'a [u8], i: &mut usize) -> Option<&'a [u8]> {
    let len = usize::from(u16::from_be_bytes([*record.get(*i)?, *record.get(*i + 1)?]));
    let unit = record.get(*i + 2..*i + 2 + len)?;
    *i += 2 + len;
    Some(unit)
}

/// Appends length-prefixed (4-byte) NAL units as Annex B; stops at a length that overruns.
pub fn append_units(length_prefixed: &[u8], out: &mut BytesMut) {
    let mut i = 0;
    while let Some(len) = length_prefixed.get(i..i + 4).map(|l| u32::from_be_bytes([l[0], l[1], l[2], l[3]]) as usize) {
        let Some(unit) = length_prefixed.get(i + 4..(i + 4).saturating_add(len)) else { return };
        if !unit.is_empty() {
            out.put_slice(&START_CODE);
            out.put_slice(unit);
        }
        i += 4 + len;
    }
}

/// Turns a stream's FLV video tags into Annex B.
#[derive(Debug, Default)]
pub struct AnnexbWriter {
    /// The codec and the parameter sets, as Annex B, of the latest sequence header.
    config: Option<(Codec, Bytes)>,
    /// A key frame has gone out since the latest sequence header: frames follow.
    started: bool,
}

impl AnnexbWriter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Frames were lost: output resumes at the next key frame (with the parameter sets kept).
    pub fn restart(&mut self) {
        self.started = false;
    }

    /// The codec of the latest sequence header.
    pub fn codec(&self) -> Option<Codec> {
        self.config.as_ref().map(|(c, _)| *c)
    }

    /// The bytes to write for `tag`: a key frame with the parameter sets before it, or a frame
    /// that follows one; `None` for what has nothing to write (audio, headers, frames before
    /// the first key frame).
    pub fn push(&mut self, tag: &FlvTag) -> Option<Bytes> {
        if tag.kind != TagKind::Video {
            return None;
        }
        let body = VideoBody::parse(&tag.body())?;
        match body.packet {
            VideoPacket::Header => {
                let mut sets = BytesMut::new();
                for unit in parameter_sets(body.codec, &body.data) {
                    sets.put_slice(&START_CODE);
                    sets.put_slice(unit);
                }
                let sets = sets.freeze();
                if self.config.as_ref() != Some(&(body.codec, sets.clone())) {
                    self.config = Some((body.codec, sets));
                    self.started = false;
                }
                None
            }
            VideoPacket::Frame { .. } => {
                let (codec, sets) = self.config.as_ref()?;
                if *codec != body.codec || !(tag.key || self.started) {
                    return None;
                }
                let mut out = BytesMut::with_capacity(body.data.len() + if tag.key { sets.len() } else { 0 } + 16);
                if tag.key {
                    out.put_slice(sets);
                    self.started = true;
                }
                append_units(&body.data, &mut out);
                Some(out.freeze())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access_unit::{AccessUnit, MediaEvent, VideoConfig};
    use crate::flv::{FlvMuxer, FlvOptions};

    const SPS: &[u8] = &[0x67, 0x42, 0xc0, 0x1e, 0xd9, 0x00, 0xa0, 0x47, 0xfe, 0xc8];
    const PPS: &[u8] = &[0x68, 0xce, 0x3c, 0x80];

    #[test]
    fn records_give_their_parameter_sets_and_cut_records_no_panic() {
        let avcc = crate::codec::h264::avc_config(SPS, PPS).unwrap();
        assert_eq!(parameter_sets(Codec::H264, &avcc), vec![SPS, PPS]);
        for cut in 0..avcc.len() {
            assert!(parameter_sets(Codec::H264, &avcc[..cut]).len() <= 2);
        }
        let vps: &[u8] = &[0x40, 0x01, 0x0c];
        let hvcc = crate::codec::h265::hevc_config(vps, &[0x42, 0x01, 0x01], &[0x44, 0x01]);
        if let Some(hvcc) = hvcc {
            assert_eq!(parameter_sets(Codec::H265, &hvcc).first().copied(), Some(vps));
        }
        let mut out = BytesMut::new();
        append_units(&[0, 0, 0, 2, 0x65, 0x88, 0, 0, 0, 9, 1], &mut out);
        assert_eq!(&out[..], &[0, 0, 0, 1, 0x65, 0x88], "a unit that overruns is left out");
    }

    #[test]
    fn output_starts_at_a_key_frame_with_its_parameter_sets() {
        let mut mux = FlvMuxer::new(FlvOptions::default());
        let cfg = VideoConfig {
            codec: Codec::H264,
            width: 320,
            height: 240,
            fps: None,
            record: Bytes::from(crate::codec::h264::avc_config(SPS, PPS).unwrap()),
        };
        let frame = |key: bool, dts: u64| AccessUnit {
            codec: Codec::H264,
            pts: dts,
            dts,
            key,
            data: Bytes::from(if key { vec![0, 0, 0, 1, 0x65, 0xaa] } else { vec![0, 0, 0, 1, 0x41, 0xbb] }),
        };
        let mut tags = Vec::new();
        for ev in [
            MediaEvent::VideoConfig(cfg),
            MediaEvent::Frame(frame(false, 0)),
            MediaEvent::Frame(frame(true, 3600)),
            MediaEvent::Frame(frame(false, 7200)),
        ] {
            tags.extend(mux.push(&ev));
        }
        let mut w = AnnexbWriter::new();
        let out: Vec<Bytes> = tags.iter().filter_map(|t| w.push(t)).collect();
        assert_eq!(out.len(), 2, "the P-frame before the key frame is left out");
        let mut key = vec![0, 0, 0, 1];
        key.extend_from_slice(SPS);
        key.extend_from_slice(&[0, 0, 0, 1]);
        key.extend_from_slice(PPS);
        key.extend_from_slice(&[0, 0, 0, 1, 0x65, 0xaa]);
        assert_eq!(&out[0][..], &key[..]);
        assert_eq!(&out[1][..], &[0, 0, 0, 1, 0x41, 0xbb]);
        assert_eq!(w.codec(), Some(Codec::H264));
    }
}
