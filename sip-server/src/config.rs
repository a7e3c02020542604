//! `[sip]` with its `[sip.api]` and `[sip.play]` config sections. Every key has a default; `docs/config.md` lists them.

use serde::Deserialize;

/// Which digest challenges a device gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Sha256Policy {
    /// MD5 only.
    Off,
    /// SHA-256 (then MD5) to devices that send `X-GB-Ver: 3.0` or later, MD5 to the rest.
    #[default]
    Gb2022,
    /// SHA-256 and MD5 challenges to every device.
    Always,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SipConfig {
    /// UDP and TCP listen address.
    pub listen: String,
    /// Our 20-digit SIP server id.
    pub server_id: String,
    /// SIP domain / digest realm; default: the first 10 digits of `server_id`.
    pub domain: Option<String>,
    /// Address put in Via/Contact of requests we send (the public address devices reach us on);
    /// default: the listen address, or 127.0.0.1 when that is a wildcard.
    pub public_addr: Option<String>,
    /// This node's id in the cluster; default: random `sip-xxxxxxxx`.
    pub node_id: Option<String>,
    /// Require digest authentication.
    pub auth: bool,
    /// Password for every device without one of its own in the Store.
    pub password: String,
    pub sha256: Sha256Policy,
    /// Offer `qop="auth"` (devices answering without qop are still accepted).
    pub qop: bool,
    /// Nonce lifetime; an older nonce is answered with `stale=true`.
    pub nonce_ttl_secs: u64,
    /// Failed authentications (per device id and per source IP) before a lockout.
    pub lockout_threshold: u32,
    /// The window in which failures count, and how long a lockout lasts.
    pub lockout_secs: u64,
    /// Registrations asking for less get 423 with Min-Expires.
    pub min_expires_secs: u32,
    /// Registrations asking for more are granted this.
    pub max_expires_secs: u32,
    /// Granted when the device asks for nothing.
    pub default_expires_secs: u32,
    /// Keepalive interval assumed for devices (GB default 60 s).
    pub keepalive_interval_secs: u32,
    /// Missed keepalives before a device goes offline.
    pub keepalive_misses: u32,
    /// Only device ids starting with one of these may register; empty: any.
    pub allow_prefixes: Vec<String>,
    /// UTC offset of the GB `Date` header sent in REGISTER 200 (cameras set local time from it).
    pub date_utc_offset_minutes: i32,
    /// Catalog pages: how long after the last page to wait for missing ones.
    pub catalog_timeout_ms: u64,
    /// Most channels kept per device.
    pub catalog_max_items: usize,
    /// RecordInfo: most recordings one query returns (a device announcing or sending more gets
    /// the first ones and `truncated`).
    pub record_max_items: usize,
    /// RecordInfo: after an answer's last MESSAGE, how long to wait for missing ones before
    /// answering with what arrived (`complete: false`).
    pub record_quiet_ms: u64,
    /// RecordInfo: the longest a query may take, however slowly its MESSAGEs trickle in.
    pub record_max_wait_ms: u64,
    /// Alarms kept per device (newest first; the oldest go).
    pub alarm_history: usize,
    /// Alarms kept across all devices (the console's alarm list).
    pub alarm_history_all: usize,
    /// Positions kept per mobile device or channel (its track).
    pub position_track: usize,
    /// Query DeviceInfo, DeviceStatus and Catalog after each new registration.
    pub query_on_register: bool,
    /// Largest SIP message accepted (TCP framing and UDP).
    pub max_message_bytes: usize,
    /// Requests handled at once; past this, new requests get 503 with Retry-After (a storm
    /// is shed, not queued without bound).
    pub max_inflight: usize,
    /// How long a request waits for a handler slot before it is shed.
    pub admission_wait_ms: u64,
    /// SO_RCVBUF of the UDP socket: room for a burst of registrations while handlers catch up.
    pub udp_recv_buffer_bytes: usize,
    /// `[sip.play]`: play on demand.
    pub play: crate::play::PlayConfig,
    /// `[sip.subscribe]`: event subscriptions (SUBSCRIBE/NOTIFY) made with every device.
    pub subscribe: crate::subscriptions::SubscribeConfig,
    /// `[sip.snapshots]`: the gallery of saved pictures.
    pub snapshots: crate::gallery::GalleryConfig,
    /// `[sip.api]`: the web tier's HTTP API this sip-server serves (the `[api]` section of
    /// earlier versions, still read).
    pub api: ApiConfig,
}

impl Default for SipConfig {
    fn default() -> Self {
        Self {
            listen: "0.0.0.0:5060".into(),
            server_id: "34020000002000000001".into(),
            domain: None,
            public_addr: None,
            node_id: None,
            auth: true,
            password: "12345678".into(),
            sha256: Sha256Policy::default(),
            qop: true,
            nonce_ttl_secs: 300,
            lockout_threshold: 5,
            lockout_secs: 300,
            min_expires_secs: 60,
            max_expires_secs: 86_400,
            default_expires_secs: 3600,
            keepalive_interval_secs: 60,
            keepalive_misses: 3,
            allow_prefixes: Vec::new(),
            date_utc_offset_minutes: 480,
            catalog_timeout_ms: 5000,
            catalog_max_items: 100_000,
            record_max_items: 10_000,
            record_quiet_ms: 3000,
            record_max_wait_ms: 60_000,
            alarm_history: 1000,
            alarm_history_all: 10_000,
            position_track: 1000,
            query_on_register: true,
            max_message_bytes: 65_535,
            max_inflight: 4096,
            admission_wait_ms: 10_000,
            udp_recv_buffer_bytes: 8 << 20,
            play: crate::play::PlayConfig::default(),
            subscribe: crate::subscriptions::SubscribeConfig::default(),
            snapshots: crate::gallery::GalleryConfig::default(),
            api: ApiConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// HTTP API listen address.
    pub listen: String,
    /// Bearer token required on `/api/*`; empty: no auth.
    pub token: String,
    /// Token this node sends to the lpr-servers' API when the console goes through it
    /// (`/api/v1/lpr/…`); `gbcluster all` fills it from `lpr.api_token`.
    pub lpr_token: String,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self { listen: "0.0.0.0:8080".into(), token: String::new(), lpr_token: String::new() }
    }
}
