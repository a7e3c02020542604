//! The output timeline of a stream whose source time may jump: a recording played back and
//! sought, paused or sped up, or a camera whose clock resets. Players must never see time go
//! back, and a jump forward would make them wait, so the output (90 kHz, per frame) is the
//! source's time piecewise: `out = anchor_out + (in − anchor_in) / scale`, re-anchored just
//! after the latest output whenever the source jumps (more than `BACK` back or `AHEAD`
//! ahead) or the scale changes, and kept strictly increasing per track. A live stream that
//! never jumps comes out unchanged.
//!
//! It also keeps the source time that passed since a `mark` (a seek's target, a playback's
//! start), jumps not counted: the media position a playback reports.

/// A source step back further than this is a jump (audio and video interleave within it).
pub const BACK: u64 = 90_000;
/// A source step ahead further than this is a jump (a stall of a live camera shorter than this
/// keeps its gap).
pub const AHEAD: u64 = 5 * 90_000;
/// The output step put at a jump: one frame at 25 fps.
pub const STEP: u64 = 3600;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Track {
    Video,
    Audio,
}

#[derive(Debug, Clone)]
pub struct Timeline {
    /// (source, output) the current piece starts at; `None` before the first frame.
    anchor: Option<(u64, u64)>,
    /// The latest source time of the current piece (tracks interleave a little out of order).
    high_in: u64,
    /// The largest output given so far, any track.
    max_out: u64,
    last_out: [Option<u64>; 2],
    /// Playback speed in thousandths (1000 = 1×).
    scale_milli: u32,
    /// Source time counted since the mark, jumps left out.
    since_mark: u64,
    jumps: u64,
}

impl Default for Timeline {
    fn default() -> Self {
        Self { anchor: None, high_in: 0, max_out: 0, last_out: [None; 2], scale_milli: 1000, since_mark: 0, jumps: 0 }
    }
}

impl Timeline {
    /// Maps one frame's source time `dts` (and its `pts`, kept the same distance ahead, scaled)
    /// to the output timeline.
    pub fn map(&mut self, track: Track, pts: u64, dts: u64) -> (u64, u64) {
        let (ax, ay) = match self.anchor {
            None => {
                // The first frame: identity, so a stream that never jumps is left as it is.
                self.anchor = Some((dts, dts));
                self.high_in = dts;
                self.max_out = dts;
                (dts, dts)
            }
            Some(a) => {
                let step = dts.wrapping_sub(self.high_in) as i64;
                if step < -(BACK as i64) || step > AHEAD as i64 {
                    self.jumps += 1;
                    self.anchor = Some((dts, self.max_out + STEP));
                    self.high_in = dts;
                } else if step > 0 {
                    self.since_mark += step as u64;
                    self.high_in = dts;
                }
                self.anchor.unwrap_or(a)
            }
        };
        let scaled = |ticks: i64| ticks * 1000 / i64::from(self.scale_milli.max(1));
        let out = (ay as i64 + scaled(dts as i64 - ax as i64)).max(0) as u64;
        let slot = &mut self.last_out[track as usize];
        let out = match *slot {
            Some(prev) if out <= prev => prev + 1,
            _ => out,
        };
        *slot = Some(out);
        self.max_out = self.max_out.max(out);
        let ahead = scaled(pts.saturating_sub(dts) as i64) as u64;
        (out + ahead, out)
    }

    /// From now on the source plays `scale_milli`/1000 times real time: output advances at
    /// real time whatever the speed (a player's clock does), so frames come closer together.
    pub fn set_scale(&mut self, scale_milli: u32) {
        let scale_milli = scale_milli.clamp(1, 64_000);
        if scale_milli == self.scale_milli {
            return;
        }
        if self.anchor.is_some() {
            let last_out = self.last_out.iter().flatten().copied().max().unwrap_or(self.max_out);
            self.anchor = Some((self.high_in, last_out));
        }
        self.scale_milli = scale_milli;
    }

    pub fn scale_milli(&self) -> u32 {
        self.scale_milli
    }

    /// Starts counting source time again (a seek's target, the start of a playback).
    pub fn mark(&mut self) {
        self.since_mark = 0;
    }

    /// Source time since the mark, milliseconds.
    pub fn since_mark_ms(&self) -> u64 {
        self.since_mark / 90
    }

    /// The latest source time, milliseconds (a playback's position when the camera stamps
    /// frames from its span's start, as gbsim does).
    pub fn source_ms(&self) -> u64 {
        self.high_in / 90
    }

    /// Jumps re-anchored so far.
    pub fn jumps(&self) -> u64 {
        self.jumps
    }

    /// The largest output time, milliseconds.
    pub fn output_ms(&self) -> u64 {
        self.max_out / 90
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const F: u64 = 3600; // 40 ms

    /// Video and audio frames of `n` video frame times from source `from`, interleaved as a
    /// camera sends them (audio 20 ms behind).
    fn play(t: &mut Timeline, from: u64, n: u64) -> Vec<(Track, u64)> {
        let mut out = Vec::new();
        for i in 0..n {
            let x = from + i * F;
            out.push((Track::Video, t.map(Track::Video, x + 2 * F, x).1));
            if x >= 1800 {
                out.push((Track::Audio, t.map(Track::Audio, x - 1800, x - 1800).1));
            }
        }
        out
    }

    fn increasing(all: &[(Track, u64)]) {
        for track in [Track::Video, Track::Audio] {
            let ts: Vec<u64> = all.iter().filter(|(k, _)| *k == track).map(|(_, t)| *t).collect();
            assert!(ts.windows(2).all(|w| w[1] > w[0]), "{track:?} goes back: {ts:?}");
        }
    }

    #[test]
    fn a_stream_that_never_jumps_is_unchanged() {
        let mut t = Timeline::default();
        let out = play(&mut t, 900_000, 100);
        assert_eq!(out[0], (Track::Video, 900_000));
        assert_eq!(out.last().unwrap().1, 900_000 + 99 * F - 1800);
        assert_eq!(t.map(Track::Video, 900_000 + 100 * F + 7200, 900_000 + 100 * F), (900_000 + 100 * F + 7200, 900_000 + 100 * F));
        assert_eq!((t.jumps(), t.since_mark_ms()), (0, 4000));
    }

    #[test]
    fn seeks_back_and_forward_continue_one_frame_on() {
        let mut t = Timeline::default();
        let mut all = play(&mut t, 90_000 * 600, 50);
        let before = all.iter().map(|(_, x)| *x).max().unwrap();
        t.mark();
        // Seek back five minutes, then forward an hour.
        let back = play(&mut t, 90_000 * 300, 50);
        assert_eq!(back[0].1, before + STEP, "continues one frame after the latest output");
        all.extend(back);
        all.extend(play(&mut t, 90_000 * 3900, 50));
        increasing(&all);
        assert_eq!(t.jumps(), 2);
        // 2 s of source counted after each seek, the jumps themselves not.
        assert!((3900..=4000).contains(&t.since_mark_ms()), "{}", t.since_mark_ms());
    }

    #[test]
    fn speed_changes_keep_output_at_real_time() {
        let mut t = Timeline::default();
        play(&mut t, 0, 25); // 1 s at 1×
        t.set_scale(2000);
        // 2× speed: 2 s of source arrive in a wall second, and take 1 s of output.
        let fast = play(&mut t, 25 * F, 50);
        let video: Vec<u64> = fast.iter().filter(|(k, _)| *k == Track::Video).map(|(_, x)| *x).collect();
        assert_eq!(video[49] - video[0], 49 * F / 2);
        t.set_scale(250);
        let slow = play(&mut t, 75 * F, 4);
        let video: Vec<u64> = slow.iter().filter(|(k, _)| *k == Track::Video).map(|(_, x)| *x).collect();
        assert_eq!(video[1] - video[0], 4 * F, "a quarter speed stretches each frame four times");
        assert_eq!(t.scale_milli(), 250);
        // A pause: the source stops and resumes where it was; output never goes back.
        let resumed = play(&mut t, 79 * F, 2);
        assert!(resumed[0].1 > video[3]);
    }

    #[test]
    fn a_camera_clock_reset_and_a_short_stall_are_told_apart() {
        let mut t = Timeline::default();
        play(&mut t, 5_000_000, 10);
        // A 3 s stall keeps its gap; a reset to 0 continues one frame on.
        let after_stall = t.map(Track::Video, 5_000_000 + 9 * F + 270_000, 5_000_000 + 9 * F + 270_000).1;
        assert_eq!(after_stall, 5_000_000 + 9 * F + 270_000);
        assert_eq!(t.map(Track::Video, 0, 0).1, after_stall + STEP);
        assert_eq!(t.jumps(), 1);
    }
}
