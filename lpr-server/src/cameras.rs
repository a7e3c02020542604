//! The camera registry (table `lpr_cameras`): who pushes to us, from where, in which lane
//! group, and whether it is online. A busy camera's record is cached for `CAMERA_REFRESH`, so
//! a camera pushing many results a second costs one Store write every refresh.

use cluster::table::Table;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::Digest;

use crate::proto::{Heartbeat, Sender};
use crate::service::{lock, now_ms, readable, Lpr, LprError};

pub const CAMERAS: Table<Camera> = Table::new(crate::service::CAMERAS);

/// How stale a cached camera record may be (changes made on another node show within this).
const CAMERA_REFRESH: std::time::Duration = std::time::Duration::from_secs(2);

/// A camera's record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Camera {
    pub serialno: String,
    pub device_name: Option<String>,
    pub ipaddr: Option<String>,
    pub port: Option<u64>,
    pub user_name: Option<String>,
    /// SHA-256 of the camera's `pass_wd`, keyed by its serial: never the password itself.
    pub pass_wd_sha256: Option<String>,
    pub channel_num: Option<u64>,
    /// The peer address its pushes come from.
    pub remote: Option<String>,
    pub last_seen_ms: u64,
    pub group: String,
    /// IO output pulsed to open the gate.
    pub gate_io: u64,
    /// Comet polling seen (a poll followed our reply at once).
    pub comet: bool,
    /// `camera_offline` was published for the current silence.
    #[serde(default)]
    pub offline_reported: bool,
    /// The group whitelist version its copy matched when last checked.
    #[serde(default)]
    pub synced_version: Option<u64>,
}

impl Lpr {
    pub async fn camera(&self, serial: &str) -> Result<Option<Camera>, LprError> {
        Ok(CAMERAS.get(self.store.as_ref(), serial).await?.map(|read| read.row))
    }

    pub(crate) async fn put_camera(&self, c: &Camera) -> Result<(), LprError> {
        CAMERAS.put(self.store.as_ref(), &c.serialno, c).await?;
        let mut g = lock(&self.cameras_seen);
        if g.len() > 100_000 {
            g.clear();
        }
        g.insert(c.serialno.clone(), (c.clone(), std::time::Instant::now()));
        Ok(())
    }

    /// Any message from a camera keeps its record; a heartbeat fills it in. A camera heard
    /// from again after `offline_after_secs` raises `camera_online`.
    pub async fn seen(&self, sender: &Sender, hb: Option<&Heartbeat>, remote: &str) -> Result<Camera, LprError> {
        let now = now_ms();
        // Fast path: a plate result from a camera whose record this node wrote moments ago.
        if hb.is_none() {
            // Refreshed well within the offline threshold, so a busy camera never looks silent.
            let refresh = CAMERA_REFRESH.min(std::time::Duration::from_millis(self.cfg.offline_after_secs * 250));
            let cached = lock(&self.cameras_seen).get(&sender.serialno).filter(|(_, at)| at.elapsed() < refresh).map(|(c, _)| c.clone());
            if let Some(mut c) = cached {
                c.last_seen_ms = now;
                return Ok(c);
            }
        }
        let mut c = self.camera(&sender.serialno).await?.unwrap_or_else(|| Camera {
            serialno: sender.serialno.clone(),
            group: "default".into(),
            ..Default::default()
        });
        let was_offline = c.offline_reported || now.saturating_sub(c.last_seen_ms) > self.cfg.offline_after_secs * 1000;
        c.last_seen_ms = now;
        c.offline_reported = false;
        c.remote = Some(remote.to_owned());
        if sender.device_name.is_some() {
            c.device_name = sender.device_name.clone();
        }
        if sender.ipaddr.is_some() {
            c.ipaddr = sender.ipaddr.clone();
        }
        if let Some(h) = hb {
            c.device_name = h.device_name.clone().or(c.device_name);
            c.ipaddr = h.ipaddr.clone().or(c.ipaddr);
            c.port = h.port.or(c.port);
            c.user_name = h.user_name.clone().or(c.user_name);
            c.channel_num = h.channel_num.or(c.channel_num);
            if let Some(p) = &h.pass_wd {
                let mut d = sha2::Sha256::new();
                d.update(c.serialno.as_bytes());
                d.update(b":");
                d.update(p.as_bytes());
                c.pass_wd_sha256 = Some(hex::encode(d.finalize()));
            }
        }
        self.put_camera(&c).await?;
        if was_offline {
            self.publish(json!({"event": "camera_online", "serialno": c.serialno, "at_ms": now})).await;
        }
        Ok(c)
    }

    pub async fn set_comet(&self, serial: &str) -> Result<Camera, LprError> {
        let mut c = self.camera(serial).await?.unwrap_or_default();
        c.comet = true;
        self.put_camera(&c).await?;
        Ok(c)
    }

    pub async fn cameras(&self) -> Result<Vec<Camera>, LprError> {
        Ok(readable(CAMERAS.list(self.store.as_ref()).await?))
    }

    pub async fn set_camera(&self, serial: &str, group: Option<String>, gate_io: Option<u64>) -> Result<Camera, LprError> {
        let mut c = self.camera(serial).await?.unwrap_or_else(|| Camera {
            serialno: serial.to_owned(),
            group: "default".into(),
            ..Default::default()
        });
        if let Some(g) = group {
            c.group = g;
        }
        if let Some(io) = gate_io {
            c.gate_io = io;
        }
        c.synced_version = None; // another group's list: compare in full
        self.put_camera(&c).await?;
        self.wake(serial).await;
        Ok(c)
    }
}
