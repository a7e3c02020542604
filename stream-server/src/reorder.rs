//! RTP sequence handling: a bounded reorder buffer in front of the demuxer. In-order packets
//! (the normal case) pass straight through without a copy; only a packet that arrives ahead of
//! a gap is copied into one of a fixed set of reused slots until the gap fills or is given up.

/// What the caller does with a packet, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Process the packet just pushed now (it is the next one).
    Now,
    /// Process it now, but packets before it are gone: the demuxer must resynchronise first.
    AfterLoss,
    /// It was held (ahead of a gap) or dropped (late or duplicate): nothing to do yet.
    Held,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct SeqStats {
    pub received: u64,
    /// Packets never received (given up on).
    pub lost: u64,
    /// Arrived out of order but in time to be used.
    pub reordered: u64,
    pub duplicates: u64,
    /// Arrived after their place was given up.
    pub late: u64,
    /// Sequence jumps too large to be reordering (stream restarted).
    pub resets: u64,
}

struct Slot {
    seq: u16,
    used: bool,
    marker: bool,
    data: Vec<u8>,
}

pub struct Reorder {
    expected: Option<u16>,
    slots: Vec<Slot>,
    held: usize,
    /// Packets that may wait for a missing one. The slot ring is twice this, so every packet
    /// less than two windows ahead has a slot of its own.
    window: usize,
    /// Bit i set: `expected - 1 - i` was delivered (duplicate detection).
    history: u64,
    pub stats: SeqStats,
}

fn diff(a: u16, b: u16) -> i32 {
    i32::from(a.wrapping_sub(b) as i16)
}

impl Reorder {
    /// `window`: how many packets may wait for a missing one before it is declared lost.
    pub fn new(window: usize) -> Self {
        let window = window.clamp(1, 1024);
        Self {
            expected: None,
            slots: (0..2 * window).map(|_| Slot { seq: 0, used: false, marker: false, data: Vec::new() }).collect(),
            held: 0,
            window,
            history: 0,
            stats: SeqStats::default(),
        }
    }

    fn mark_delivered(&mut self, seq: u16) {
        self.history = (self.history << 1) | 1;
        self.expected = Some(seq.wrapping_add(1));
    }

    /// Offers a packet. `Delivery::Now` means: process it now, then call `pop_ready` until it
    /// returns `None`.
    pub fn push(&mut self, seq: u16, marker: bool, payload: &[u8]) -> Delivery {
        self.stats.received += 1;
        let Some(expected) = self.expected else {
            self.mark_delivered(seq);
            return Delivery::Now;
        };
        let d = diff(seq, expected);
        if d == 0 {
            self.mark_delivered(seq);
            return Delivery::Now;
        }
        if d < 0 {
            let back = (-d - 1) as u32;
            if back < 64 && self.history & (1 << back) != 0 {
                self.stats.duplicates += 1;
            } else if back < 1024 {
                self.stats.late += 1;
            } else {
                // Far behind: the sender restarted its sequence.
                self.reset(seq);
                return Delivery::AfterLoss;
            }
            return Delivery::Held;
        }
        let n = self.slots.len();
        if d as usize >= n {
            // A gap wider than the window: what is held cannot be completed in order either.
            if d >= 1024 {
                // Not loss: the sender restarted its sequence.
                self.reset(seq);
            } else {
                self.stats.lost += d as u64;
                for s in &mut self.slots {
                    s.used = false;
                }
                self.held = 0;
                self.history = 0;
                self.mark_delivered(seq);
            }
            return Delivery::AfterLoss;
        }
        let idx = usize::from(seq) % n;
        let slot = &mut self.slots[idx];
        if slot.used {
            // d < window, so an occupied slot can only hold this very packet.
            self.stats.duplicates += 1;
            return Delivery::Held;
        }
        {
            slot.used = true;
            slot.seq = seq;
            slot.marker = marker;
            slot.data.clear();
            slot.data.extend_from_slice(payload);
            self.held += 1;
            self.stats.reordered += 1;
        }
        Delivery::Held
    }

    fn reset(&mut self, seq: u16) {
        self.stats.resets += 1;
        for s in &mut self.slots {
            s.used = false;
        }
        self.held = 0;
        self.history = 0;
        self.mark_delivered(seq);
    }

    /// Whether the oldest gap should be given up: the buffer holds `window` packets, or the
    /// caller says time is up (`force`).
    fn give_up(&mut self, force: bool) -> bool {
        if self.held == 0 || !(force || self.held + 1 >= self.window) {
            return false;
        }
        let Some(expected) = self.expected else { return false };
        // Skip to the oldest held packet.
        let oldest = self.slots.iter().filter(|s| s.used).map(|s| s.seq).min_by_key(|s| diff(*s, expected));
        if let Some(o) = oldest {
            let skipped = diff(o, expected).max(0) as u64;
            self.stats.lost += skipped;
            self.history <<= skipped.min(63);
            self.expected = Some(o);
            true
        } else {
            false
        }
    }

    /// Next held packet that is now in order: (marker, payload, after_loss). `after_loss` is true
    /// when packets before it were given up (the demuxer must resynchronise). `force` gives up
    /// on the current gap now (a timer expired).
    pub fn pop_ready(&mut self, force: bool) -> Option<(bool, &[u8], bool)> {
        let mut lost = false;
        let expected = self.expected?;
        let n = self.slots.len();
        let idx = usize::from(expected) % n;
        let ready = self.slots[idx].used && self.slots[idx].seq == expected;
        if !ready {
            if !self.give_up(force) {
                return None;
            }
            lost = true;
        }
        let expected = self.expected?;
        let idx = usize::from(expected) % n;
        let slot = &mut self.slots[idx];
        if !(slot.used && slot.seq == expected) {
            return None;
        }
        slot.used = false;
        self.held -= 1;
        self.history = (self.history << 1) | 1;
        self.expected = Some(expected.wrapping_add(1));
        let slot = &self.slots[idx];
        Some((slot.marker, &slot.data, lost))
    }

    /// Packets waiting behind a gap.
    pub fn held(&self) -> usize {
        self.held
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(r: &mut Reorder, seqs: &[u16]) -> Vec<(u16, bool)> {
        let mut out = Vec::new();
        for &s in seqs {
            match r.push(s, false, &s.to_be_bytes()) {
                Delivery::Now => out.push((s, false)),
                Delivery::AfterLoss => out.push((s, true)),
                Delivery::Held => {}
            }
            while let Some((_, p, lost)) = r.pop_ready(false) {
                out.push((u16::from_be_bytes([p[0], p[1]]), lost));
            }
        }
        out
    }

    #[test]
    fn in_order_and_swapped() {
        let mut r = Reorder::new(8);
        let got = run(&mut r, &[65534, 65535, 1, 0, 2, 2, 1]);
        assert_eq!(got.iter().map(|g| g.0).collect::<Vec<_>>(), vec![65534, 65535, 0, 1, 2]);
        assert_eq!((r.stats.reordered, r.stats.duplicates, r.stats.lost), (1, 2, 0));
    }

    #[test]
    fn gives_up_when_window_fills_and_counts_loss() {
        let mut r = Reorder::new(4);
        let got = run(&mut r, &[10, 13, 14, 15, 16, 17]);
        // 11 and 12 never come: after the window fills, 13 is delivered flagged as after loss.
        assert_eq!(got[0], (10, false));
        assert_eq!(got[1], (13, true));
        assert_eq!(got.iter().map(|g| g.0).collect::<Vec<_>>(), vec![10, 13, 14, 15, 16, 17]);
        assert_eq!(r.stats.lost, 2);
        // 11 arriving now is late, not delivered.
        assert!(run(&mut r, &[11]).is_empty());
        assert_eq!(r.stats.late, 1);
    }

    #[test]
    fn forced_flush_and_restart() {
        let mut r = Reorder::new(16);
        run(&mut r, &[1, 3]);
        assert_eq!(r.pop_ready(true).map(|(_, p, l)| (p.to_vec(), l)), Some((3u16.to_be_bytes().to_vec(), true)));
        assert_eq!(run(&mut r, &[30000, 30001]), vec![(30000, true), (30001, false)]);
        assert_eq!(r.stats.resets, 1);
        // A gap wider than the window (but no restart): held packets are dropped, loss counted.
        run(&mut r, &[30003]);
        assert_eq!(run(&mut r, &[30100]), vec![(30100, true)]);
        assert_eq!(r.stats.lost, 1 + 98);
    }
}
