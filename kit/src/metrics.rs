//! A tiny Prometheus text-format registry: static counters and gauges on atomics, so the hot
//! path pays one relaxed atomic add.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

pub struct Counter {
    name: &'static str,
    help: &'static str,
    v: AtomicU64,
}

impl Counter {
    pub const fn new(name: &'static str, help: &'static str) -> Self {
        Self { name, help, v: AtomicU64::new(0) }
    }
    pub fn inc(&self) {
        self.v.fetch_add(1, Ordering::Relaxed);
    }
    pub fn add(&self, n: u64) {
        self.v.fetch_add(n, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.v.load(Ordering::Relaxed)
    }
}

pub struct Gauge {
    name: &'static str,
    help: &'static str,
    v: AtomicI64,
}

impl Gauge {
    pub const fn new(name: &'static str, help: &'static str) -> Self {
        Self { name, help, v: AtomicI64::new(0) }
    }
    pub fn set(&self, v: i64) {
        self.v.store(v, Ordering::Relaxed);
    }
    pub fn add(&self, d: i64) {
        self.v.fetch_add(d, Ordering::Relaxed);
    }
    pub fn get(&self) -> i64 {
        self.v.load(Ordering::Relaxed)
    }
}

/// Renders counters and gauges in the Prometheus text exposition format.
pub fn render(counters: &[&Counter], gauges: &[&Gauge]) -> String {
    let mut out = String::new();
    for c in counters {
        let _ = writeln!(out, "# HELP {} {}\n# TYPE {} counter\n{} {}", c.name, c.help, c.name, c.name, c.get());
    }
    for g in gauges {
        let _ = writeln!(out, "# HELP {} {}\n# TYPE {} gauge\n{} {}", g.name, g.help, g.name, g.name, g.get());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_text_format() {
        static C: Counter = Counter::new("gbc_x_total", "x things");
        static G: Gauge = Gauge::new("gbc_y", "y now");
        C.add(3);
        G.set(-2);
        let s = render(&[&C], &[&G]);
        assert!(s.contains("# TYPE gbc_x_total counter\ngbc_x_total 3\n"));
        assert!(s.contains("gbc_y -2\n"));
    }
}
