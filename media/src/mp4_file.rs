//! A whole MP4 file (ISO/IEC 14496-12, "faststart": `ftyp`, a `moov` with complete sample
//! tables, then one `mdat`) from the samples `fmp4::Fmp4Muxer` gives out: what a recording's
//! download is saved as, without transcoding.
//!
//! Sans I/O: `Mp4Index` records where each batch of samples lies in the `mdat` payload that the
//! caller writes (the samples' bytes in the order given, no copy here), and at the end
//! `header` gives the bytes that go before that payload. A player reads the tables first and
//! can seek at once; the payload goes to a side file while it arrives and is copied behind the
//! header when the download ends, as `ffmpeg -movflags faststart` does.

use bytes::{BufMut, Bytes, BytesMut};

use crate::access_unit::{AudioConfig, VideoConfig};
use crate::fmp4::{self, full_box, Sample, Timing, VIDEO_TIMESCALE};

/// Samples a track may hold: about 44 hours of 25 fps video, its tables about 16 bytes per
/// sample in memory. A download longer than that is refused rather than grown without bound.
pub const MAX_SAMPLES: usize = 4_000_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Mp4FileError {
    #[error("more than {MAX_SAMPLES} samples in one track")]
    TooManySamples,
}

/// One track's sample tables as they grow.
#[derive(Debug, Default)]
struct TrackIndex {
    sizes: Vec<u32>,
    /// `stts`: runs of (count, duration).
    durations: Vec<(u32, u32)>,
    /// `ctts`: runs of (count, composition offset); written when any offset is not 0.
    offsets: Vec<(u32, i32)>,
    /// `stss`: 1-based numbers of the sync samples (video).
    syncs: Vec<u32>,
    /// (payload offset, samples) per chunk.
    chunks: Vec<(u64, u32)>,
    /// In the track's timescale.
    duration: u64,
}

/// Appends `value` to run-length `runs`.
fn run<T: PartialEq + Copy>(runs: &mut Vec<(u32, T)>, value: T) {
    match runs.last_mut() {
        Some((n, v)) if *v == value && *n < u32::MAX => *n += 1,
        _ => runs.push((1, value)),
    }
}

impl TrackIndex {
    fn add(&mut self, at: u64, samples: &[Sample]) -> Result<u64, Mp4FileError> {
        if self.sizes.len() + samples.len() > MAX_SAMPLES {
            return Err(Mp4FileError::TooManySamples);
        }
        let mut bytes = 0u64;
        for s in samples {
            self.sizes.push(s.data.len() as u32);
            run(&mut self.durations, s.duration);
            run(&mut self.offsets, s.cto);
            if s.key {
                self.syncs.push(self.sizes.len() as u32);
            }
            self.duration += u64::from(s.duration);
            bytes += s.data.len() as u64;
        }
        if !samples.is_empty() {
            self.chunks.push((at, samples.len() as u32));
        }
        Ok(bytes)
    }

    /// The boxes of `stbl` after `stsd`, chunk offsets moved by `shift` (where the payload
    /// starts in the file); 64-bit offsets when `wide`.
    fn write_tables(&self, b: &mut BytesMut, video: bool, shift: u64, wide: bool) {
        full_box(b, b"stts", 0, 0, |b| {
            b.put_u32(self.durations.len() as u32);
            for (n, d) in &self.durations {
                b.put_u32(*n);
                b.put_u32(*d);
            }
        });
        if self.offsets.iter().any(|(_, o)| *o != 0) {
            // Version 1: signed offsets (B-frames reordered back in time).
            full_box(b, b"ctts", 1, 0, |b| {
                b.put_u32(self.offsets.len() as u32);
                for (n, o) in &self.offsets {
                    b.put_u32(*n);
                    b.put_i32(*o);
                }
            });
        }
        // Every sample of audio is a sync sample: no stss, as the standard says for that case.
        if video {
            full_box(b, b"stss", 0, 0, |b| {
                b.put_u32(self.syncs.len() as u32);
                self.syncs.iter().for_each(|n| b.put_u32(*n));
            });
        }
        let mut stsc: Vec<(u32, u32)> = Vec::new();
        for (i, (_, n)) in self.chunks.iter().enumerate() {
            if stsc.last().is_none_or(|(_, last)| last != n) {
                stsc.push((i as u32 + 1, *n));
            }
        }
        full_box(b, b"stsc", 0, 0, |b| {
            b.put_u32(stsc.len() as u32);
            for (first, n) in &stsc {
                b.put_u32(*first);
                b.put_u32(*n);
                b.put_u32(1); // sample description index
            }
        });
        full_box(b, b"stsz", 0, 0, |b| {
            b.put_u32(0); // sizes differ: one each
            b.put_u32(self.sizes.len() as u32);
            self.sizes.iter().for_each(|s| b.put_u32(*s));
        });
        let kind = if wide { b"co64" } else { b"stco" };
        full_box(b, kind, 0, 0, |b| {
            b.put_u32(self.chunks.len() as u32);
            for (at, _) in &self.chunks {
                match wide {
                    true => b.put_u64(at + shift),
                    false => b.put_u32((at + shift) as u32),
                }
            }
        });
    }
}

/// The index of a file being written: both tracks' tables and the payload's length.
#[derive(Debug, Default)]
pub struct Mp4Index {
    video: TrackIndex,
    audio: TrackIndex,
    payload: u64,
}

impl Mp4Index {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a batch of one track's samples as the next chunk: the caller writes their
    /// `data` after everything it wrote before, in this order.
    pub fn add(&mut self, video: bool, samples: &[Sample]) -> Result<(), Mp4FileError> {
        let track = if video { &mut self.video } else { &mut self.audio };
        self.payload += track.add(self.payload, samples)?;
        Ok(())
    }

    /// Bytes of sample data recorded (the `mdat` payload).
    pub fn payload_len(&self) -> u64 {
        self.payload
    }

    /// Samples recorded: (video, audio).
    pub fn samples(&self) -> (usize, usize) {
        (self.video.sizes.len(), self.audio.sizes.len())
    }

    /// The longer track's duration, milliseconds (audio in its sample rate).
    pub fn duration_ms(&self, audio_rate: u32) -> u64 {
        let video = self.video.duration * 1000 / u64::from(VIDEO_TIMESCALE);
        let audio = if audio_rate > 0 { self.audio.duration * 1000 / u64::from(audio_rate) } else { 0 };
        video.max(audio)
    }

    /// `ftyp` + `moov` + the `mdat` header: what goes before the payload. A track without
    /// samples (or without a configuration) is left out.
    pub fn header(&self, video: Option<&VideoConfig>, audio: Option<&AudioConfig>) -> Bytes {
        let video = video.filter(|_| !self.video.sizes.is_empty());
        let audio = audio.filter(|a| !self.audio.sizes.is_empty() && a.sample_rate > 0);
        let duration_ms = self.duration_ms(audio.map_or(0, |a| a.sample_rate));
        // The tables' sizes do not depend on the offsets in them: write once to learn where
        // the payload starts, then again with the offsets moved there.
        let mdat_header = if self.payload + 8 > u64::from(u32::MAX) { 16 } else { 8 };
        let wide = self.payload + (1 << 24) > u64::from(u32::MAX);
        let build = |shift: u64| {
            let mut out = BytesMut::with_capacity(4096 + 8 * (self.video.sizes.len() + self.audio.sizes.len()));
            fmp4::ftyp(&mut out, video);
            let v_tables = |b: &mut BytesMut| self.video.write_tables(b, true, shift, wide);
            let a_tables = |b: &mut BytesMut| self.audio.write_tables(b, false, shift, wide);
            let v_timing = Timing { duration: self.video.duration, tables: &v_tables };
            let a_timing = Timing { duration: self.audio.duration, tables: &a_tables };
            fmp4::moov(&mut out, video.map(|v| (v, &v_timing)), audio.map(|a| (a, &a_timing)), duration_ms, false);
            out
        };
        let shift = build(0).len() as u64 + mdat_header;
        let mut out = build(shift);
        match mdat_header {
            8 => mp4_box_header(&mut out, (self.payload + 8) as u32),
            _ => {
                out.put_u32(1);
                out.put_slice(b"mdat");
                out.put_u64(self.payload + 16);
            }
        }
        out.freeze()
    }
}

fn mp4_box_header(out: &mut BytesMut, size: u32) {
    out.put_u32(size);
    out.put_slice(b"mdat");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::es::Codec;

    fn sample(dts: u64, duration: u32, key: bool, len: usize, fill: u8) -> Sample {
        Sample { dts, cto: 0, duration, key, data: Bytes::from(vec![fill; len]) }
    }

    /// The top-level boxes: (type, offset, size).
    fn boxes(file: &[u8]) -> Vec<([u8; 4], usize, u64)> {
        let mut out = Vec::new();
        let mut at = 0;
        while at + 8 <= file.len() {
            let size = u32::from_be_bytes(file[at..at + 4].try_into().unwrap()) as u64;
            let kind: [u8; 4] = file[at + 4..at + 8].try_into().unwrap();
            let size = if size == 1 { u64::from_be_bytes(file[at + 8..at + 16].try_into().unwrap()) } else { size };
            out.push((kind, at, size));
            at += size as usize;
        }
        out
    }

    fn find(hay: &[u8], needle: &[u8; 4]) -> usize {
        hay.windows(4).position(|w| w == needle).unwrap_or_else(|| panic!("no {}", String::from_utf8_lossy(needle)))
    }

    #[test]
    fn the_tables_point_at_the_samples_behind_the_header() {
        let v = VideoConfig {
            codec: Codec::H264,
            width: 64,
            height: 48,
            fps: Some(25.0),
            record: Bytes::from_static(&[1, 0x64, 0, 0x1f, 0xff, 0xe0, 0xe0]),
        };
        let a = AudioConfig { codec: Codec::Aac, sample_rate: 8000, channels: 1, asc: Bytes::from_static(&[0x15, 0x88]) };
        let mut index = Mp4Index::new();
        let mut payload = Vec::new();
        let video = [sample(0, 3600, true, 10, 1), sample(3600, 3600, false, 5, 2), sample(7200, 3600, false, 5, 3)];
        let audio = [sample(0, 1024, true, 7, 9), sample(1024, 1024, true, 7, 9)];
        for (is_video, batch) in [(true, &video[..2]), (false, &audio[..]), (true, &video[2..])] {
            index.add(is_video, batch).unwrap();
            batch.iter().for_each(|s| payload.extend_from_slice(&s.data));
        }
        assert_eq!(index.payload_len(), payload.len() as u64);
        assert_eq!(index.samples(), (3, 2));
        assert_eq!(index.duration_ms(8000), 256); // audio: 2048 / 8000 s; video 120 ms
        let header = index.header(Some(&v), Some(&a));
        let mut file = header.to_vec();
        file.extend_from_slice(&payload);
        let top: Vec<_> = boxes(&file).into_iter().map(|(k, at, size)| (String::from_utf8_lossy(&k).into_owned(), at, size)).collect();
        assert_eq!(top.iter().map(|t| t.0.as_str()).collect::<Vec<_>>(), ["ftyp", "moov", "mdat"]);
        assert_eq!(top[2].1 as u64 + top[2].2, file.len() as u64, "mdat runs to the end");
        // Video's first chunk (2 samples) is at the payload's start; audio's after 15 bytes.
        let stco = find(&file, b"stco");
        let first = u32::from_be_bytes(file[stco + 12..stco + 16].try_into().unwrap()) as usize;
        assert_eq!(first, header.len());
        assert_eq!(&file[first..first + 10], &[1; 10]);
        let second = u32::from_be_bytes(file[stco + 16..stco + 20].try_into().unwrap()) as usize;
        assert_eq!(&file[second..second + 5], &[3; 5], "the third video sample is the second chunk");
        // stss lists only the first video sample; stsc has two runs (2 then 1 per chunk).
        let stss = find(&file, b"stss");
        assert_eq!(&file[stss + 8..stss + 16], &[0, 0, 0, 1, 0, 0, 0, 1]);
        let stsc = find(&file, b"stsc");
        assert_eq!(u32::from_be_bytes(file[stsc + 8..stsc + 12].try_into().unwrap()), 2);
    }

    #[test]
    fn a_track_without_samples_is_left_out_and_the_bound_holds() {
        let a = AudioConfig { codec: Codec::Aac, sample_rate: 8000, channels: 1, asc: Bytes::from_static(&[0x15, 0x88]) };
        let mut index = Mp4Index::new();
        index.add(false, &[sample(0, 1024, true, 4, 0)]).unwrap();
        let header = index.header(None, Some(&a));
        assert_eq!(header.windows(4).filter(|w| *w == b"trak").count(), 1);
        let mut big = Mp4Index::new();
        big.video.sizes.resize(MAX_SAMPLES, 1);
        assert_eq!(big.add(true, &[sample(0, 1, true, 1, 0)]), Err(Mp4FileError::TooManySamples));
    }
}
