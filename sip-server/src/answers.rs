//! The answers to stateless UDP REGISTERs, by (Call-ID, CSeq), kept for Timer J (64·T1) after
//! the final answer: a retransmitted copy then gets the same answer again instead of being
//! registered a second time, as a server transaction would do (RFC 3261 §17.2.2). Copies that
//! arrive while the first is being handled are dropped (it will be answered). Sans-I/O: time
//! is an input, and the cache is bounded.

use std::collections::{HashMap, VecDeque};

/// What a request's key was seen as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen<A> {
    /// First copy: handle it, then `finish`.
    New,
    /// A copy of a request being handled now: drop it.
    InProgress,
    /// A copy of a request already answered: send this again.
    Answered(A),
}

#[derive(Debug)]
enum Slot<A> {
    InProgress,
    Answered { answer: A, until_ms: u64 },
}

#[derive(Debug)]
pub struct AnswerCache<A> {
    slots: HashMap<String, Slot<A>>,
    /// Answered keys in the order they expire.
    expiry: VecDeque<(u64, String)>,
    keep_ms: u64,
    max: usize,
}

impl<A: Clone> AnswerCache<A> {
    /// `keep_ms`: how long an answer is kept (Timer J, 32 s); `max`: answers kept at most (the
    /// oldest go first when it is full).
    pub fn new(keep_ms: u64, max: usize) -> Self {
        Self { slots: HashMap::new(), expiry: VecDeque::new(), keep_ms, max: max.max(1) }
    }

    pub fn begin(&mut self, key: &str, now_ms: u64) -> Seen<A> {
        self.expire(now_ms);
        match self.slots.get(key) {
            Some(Slot::InProgress) => Seen::InProgress,
            Some(Slot::Answered { answer, .. }) => Seen::Answered(answer.clone()),
            None => {
                self.slots.insert(key.to_owned(), Slot::InProgress);
                Seen::New
            }
        }
    }

    /// The first copy is done: keep its final answer, or forget the key (`None`: no final
    /// answer worth repeating, e.g. a 503 after which the device is to try again).
    pub fn finish(&mut self, key: &str, answer: Option<A>, now_ms: u64) {
        match answer {
            Some(answer) => {
                let until_ms = now_ms + self.keep_ms;
                self.slots.insert(key.to_owned(), Slot::Answered { answer, until_ms });
                self.expiry.push_back((until_ms, key.to_owned()));
                while self.expiry.len() > self.max {
                    self.pop_oldest();
                }
            }
            None => {
                self.slots.remove(key);
            }
        }
    }

    /// Answers kept now (requests in progress not counted).
    pub fn answered(&self) -> usize {
        self.slots.values().filter(|s| matches!(s, Slot::Answered { .. })).count()
    }

    fn expire(&mut self, now_ms: u64) {
        while self.expiry.front().is_some_and(|(until, _)| *until <= now_ms) {
            self.pop_oldest();
        }
    }

    fn pop_oldest(&mut self) {
        let Some((until, key)) = self.expiry.pop_front() else { return };
        // Only if the slot is still that answer (the key may have been answered again since).
        if matches!(self.slots.get(&key), Some(Slot::Answered { until_ms, .. }) if *until_ms == until) {
            self.slots.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_are_dropped_while_in_progress_then_answered_the_same_until_timer_j() {
        let mut c = AnswerCache::new(32_000, 100);
        assert_eq!(c.begin("k", 0), Seen::New);
        assert_eq!(c.begin("k", 10), Seen::InProgress);
        c.finish("k", Some("200 OK"), 20);
        assert_eq!(c.begin("k", 1_000), Seen::Answered("200 OK"));
        assert_eq!(c.begin("k", 32_019), Seen::Answered("200 OK"));
        assert_eq!(c.begin("k", 32_020), Seen::New, "forgotten after Timer J: a new request");
    }

    #[test]
    fn a_request_without_an_answer_worth_repeating_is_handled_again() {
        let mut c: AnswerCache<&str> = AnswerCache::new(32_000, 100);
        assert_eq!(c.begin("k", 0), Seen::New);
        c.finish("k", None, 5);
        assert_eq!(c.begin("k", 6), Seen::New);
    }

    #[test]
    fn the_cache_stays_within_its_bound_dropping_the_oldest() {
        let mut c = AnswerCache::new(32_000, 3);
        for (i, k) in ["a", "b", "c", "d"].iter().enumerate() {
            assert_eq!(c.begin(k, i as u64), Seen::New);
            c.finish(k, Some(*k), i as u64);
        }
        assert_eq!(c.answered(), 3);
        assert_eq!(c.begin("a", 10), Seen::New, "the oldest went first");
        assert_eq!(c.begin("d", 10), Seen::Answered("d"));
    }
}
