//! nvr-pusher counters, rendered at `/metrics`.

use kit::metrics::{Counter, Gauge};

pub static PLAYS: Counter = Counter::new("gbc_nvr_plays_total", "REAL_STREAM and BACK_STREAM calls served on this node");
pub static PLAY_FAILURES: Counter = Counter::new("gbc_nvr_play_failures_total", "Plays answered with an error status");
pub static BEAT_TIMEOUTS: Counter = Counter::new("gbc_nvr_beat_timeouts_total", "Sessions stopped for missing beats");
pub static RECONNECTS: Counter = Counter::new("gbc_nvr_reconnects_total", "Sources or RTMP publishes that came back after dropping");
pub static FORWARDED: Counter = Counter::new("gbc_nvr_forwarded_total", "Calls forwarded to the node that takes or holds the play");
pub static SESSIONS: Gauge = Gauge::new("gbc_nvr_sessions", "Sessions running on this node");
pub static BYTES: Gauge = Gauge::new("gbc_nvr_bytes", "FLV bytes pushed by the sessions running now");

pub fn render() -> String {
    kit::metrics::render(&[&PLAYS, &PLAY_FAILURES, &BEAT_TIMEOUTS, &RECONNECTS, &FORWARDED], &[&SESSIONS, &BYTES])
}
