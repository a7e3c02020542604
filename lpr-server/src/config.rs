//! `[lpr]` config section. Every key has a default; `docs/config.md` lists them.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LprConfig {
    /// HTTP listen address (camera pushes and the management API).
    pub listen: String,
    /// This node's id (several lpr-server nodes share the Store); default random.
    pub node_id: Option<String>,
    /// Paths cameras push to, per message type (the firmware defaults first).
    pub plate_paths: Vec<String>,
    pub gio_paths: Vec<String>,
    pub serial_paths: Vec<String>,
    pub heartbeat_paths: Vec<String>,
    pub snapshot_paths: Vec<String>,
    /// Largest request body accepted (base64 images make plate results large).
    pub max_body_bytes: usize,
    /// Where passage images are written: `<dir>/YYYY/MM/DD/<serialno>/<passage>-{full,plate}.jpg`.
    pub image_dir: String,
    /// fsync image files before the reply (acknowledged means on disk).
    pub fsync: bool,
    /// Only these serial numbers may push (empty: any).
    pub allow_serials: Vec<String>,
    /// How long a comet poll is held open waiting for a command (cameras give up at ~30 s).
    pub comet_hold_secs: u64,
    /// A heartbeat arriving within this long of our last reply to that camera is a comet poll
    /// (the camera polls again at once); it is then held open. 0: never hold.
    pub comet_detect_ms: u64,
    /// A camera not heard from for this long is offline.
    pub offline_after_secs: u64,
    /// Bearer token required on `/api/*` (camera push paths stay open: cameras cannot send one).
    pub api_token: String,
    /// Absolute URL the camera uploads requested snapshots to is built from this base
    /// (`snapImageRelativeUrl` is its path; the port is this listener's).
    pub snapshot_path: String,
    /// Forward every passage (JSON) to this URL, from a durable outbox with retries.
    pub webhook_url: String,
    /// Whitelist operations per reply (the firmware takes at most 5).
    pub whitelist_batch: usize,
    /// Fault injection for the durability test: abort the process after a plate result is
    /// stored and before it is answered. Only in builds with the `fault-injection` feature (the
    /// test builds): elsewhere the key is unknown and refused.
    #[cfg(feature = "fault-injection")]
    pub fault_abort_after_store: bool,
    /// UTC offset of the cameras' and whitelist times (`YYYY-MM-DD HH:MM:SS`, local; 480 = China).
    pub utc_offset_minutes: i32,
}

impl Default for LprConfig {
    fn default() -> Self {
        let p = |s: &str| vec![s.to_owned()];
        Self {
            listen: "0.0.0.0:8082".into(),
            node_id: None,
            plate_paths: p("/devicemanagement/php/plateresult.php"),
            gio_paths: p("/devicemanagement/php/gio.php"),
            serial_paths: p("/devicemanagement/php/serial.php"),
            heartbeat_paths: p("/devicemanagement/php/receivedeviceinfo.php"),
            snapshot_paths: p("/devicemanagement/php/snapshot.php"),
            max_body_bytes: 8 << 20,
            image_dir: "lpr-images".into(),
            fsync: true,
            allow_serials: Vec::new(),
            comet_hold_secs: 25,
            comet_detect_ms: 2000,
            offline_after_secs: 90,
            api_token: String::new(),
            snapshot_path: "/devicemanagement/php/snapshot.php".into(),
            webhook_url: String::new(),
            whitelist_batch: 5,
            utc_offset_minutes: 480,
            #[cfg(feature = "fault-injection")]
            fault_abort_after_store: false,
        }
    }
}
