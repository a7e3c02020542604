//! What the simulator achieved, counted on atomics and printed as one JSON line.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

#[derive(Default)]
pub struct SimStats {
    pub registered: AtomicU64,
    pub register_failures: AtomicU64,
    pub challenges: AtomicU64,
    pub keepalives: AtomicU64,
    pub keepalive_failures: AtomicU64,
    pub queries_answered: AtomicU64,
    pub devices_registered_once: AtomicU64,
    pub invites: AtomicU64,
    pub invites_cancelled: AtomicU64,
    pub media_streams: AtomicU64,
    pub media_errors: AtomicU64,
    pub byes_received: AtomicU64,
    pub byes_sent: AtomicU64,
    /// `IFrameCmd`s that reached a streaming call.
    pub key_frames_requested: AtomicU64,
    pub alarms_sent: AtomicU64,
    pub positions_sent: AtomicU64,
    pub playback_controls: AtomicU64,
    /// NOTIFYs sent in subscriptions' dialogs.
    pub notifies_sent: AtomicU64,
    pub catalog_changes: AtomicU64,
}

#[derive(Debug, Serialize, Clone, PartialEq)]
pub struct SimReport {
    pub devices: usize,
    pub registered: u64,
    pub register_failures: u64,
    pub challenges: u64,
    pub keepalives: u64,
    pub keepalive_failures: u64,
    pub queries_answered: u64,
    pub devices_registered_once: u64,
    pub invites: u64,
    pub invites_cancelled: u64,
    pub media_streams: u64,
    pub media_errors: u64,
    pub byes_received: u64,
    pub byes_sent: u64,
    pub key_frames_requested: u64,
    pub alarms_sent: u64,
    pub positions_sent: u64,
    pub playback_controls: u64,
    pub notifies_sent: u64,
    pub catalog_changes: u64,
    /// Seconds from start until every device had registered once (None if not all did).
    pub all_registered_secs: Option<f64>,
    pub registrations_per_sec: Option<f64>,
}

impl SimStats {
    pub fn report(&self, devices: usize, all_registered_secs: Option<f64>) -> SimReport {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        SimReport {
            devices,
            registered: g(&self.registered),
            register_failures: g(&self.register_failures),
            challenges: g(&self.challenges),
            keepalives: g(&self.keepalives),
            keepalive_failures: g(&self.keepalive_failures),
            queries_answered: g(&self.queries_answered),
            devices_registered_once: g(&self.devices_registered_once),
            invites: g(&self.invites),
            invites_cancelled: g(&self.invites_cancelled),
            media_streams: g(&self.media_streams),
            media_errors: g(&self.media_errors),
            byes_received: g(&self.byes_received),
            byes_sent: g(&self.byes_sent),
            key_frames_requested: g(&self.key_frames_requested),
            alarms_sent: g(&self.alarms_sent),
            positions_sent: g(&self.positions_sent),
            playback_controls: g(&self.playback_controls),
            notifies_sent: g(&self.notifies_sent),
            catalog_changes: g(&self.catalog_changes),
            all_registered_secs,
            registrations_per_sec: all_registered_secs.filter(|s| *s > 0.0).map(|s| devices as f64 / s),
        }
    }
}

pub fn inc(a: &AtomicU64) {
    a.fetch_add(1, Ordering::Relaxed);
}
