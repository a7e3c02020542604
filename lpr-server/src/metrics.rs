//! lpr-server counters, rendered at `/metrics`.

use kit::metrics::{Counter, Gauge};

pub static PASSAGES: Counter = Counter::new("gbc_lpr_plate_results_total", "Plate results received (stored, or found stored)");
pub static DUPLICATES: Counter = Counter::new("gbc_lpr_duplicates_total", "Plate results already stored (resent records)");
pub static GATE_OPENS: Counter = Counter::new("gbc_lpr_gate_opens_total", "Replies that opened a gate on a plate decision");
pub static ALARMS: Counter = Counter::new("gbc_lpr_alarms_total", "Blacklisted plates seen");
pub static HEARTBEATS: Counter = Counter::new("gbc_lpr_heartbeats_total", "Heartbeats and comet polls answered");
pub static WEBHOOK_SENT: Counter = Counter::new("gbc_lpr_webhook_sent_total", "Passages delivered to the webhook");
pub static WEBHOOK_FAILURES: Counter = Counter::new("gbc_lpr_webhook_failures_total", "Webhook deliveries that failed (retried)");
pub static COMET_HELD: Gauge = Gauge::new("gbc_lpr_comet_polls_held", "Comet polls held open now on this node");

pub fn render() -> String {
    kit::metrics::render(&[&PASSAGES, &DUPLICATES, &GATE_OPENS, &ALARMS, &HEARTBEATS, &WEBHOOK_SENT, &WEBHOOK_FAILURES], &[&COMET_HELD])
}
