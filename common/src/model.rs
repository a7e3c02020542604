//! Domain records shared by the services and kept in the Store.

use serde::{Deserialize, Serialize};

use crate::ids::{ChannelId, DeviceId, NodeId};

/// How a device reached us, and so how we reach it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SipTransport {
    Udp,
    Tcp,
}

impl SipTransport {
    pub fn as_str(self) -> &'static str {
        match self {
            SipTransport::Udp => "udp",
            SipTransport::Tcp => "tcp",
        }
    }
}

/// A registered device as the Store keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Device {
    pub id: DeviceId,
    pub transport: SipTransport,
    /// The address packets really came from (Via received/rport or the socket peer): where we
    /// send, whatever private address the device claims.
    pub source_addr: String,
    /// The Contact URI as the device sent it (kept for diagnosis, never used for routing).
    pub contact: String,
    /// The sip-server node that owns the socket or TCP connection the device registered on.
    pub node: NodeId,
    /// The local address of that socket (the node's SIP listener) — what we send from.
    pub local_addr: String,
    pub expires_secs: u32,
    pub registered_at_ms: u64,
    pub last_seen_ms: u64,
    pub online: bool,
    pub keepalive_interval_secs: u32,
    /// `X-GB-Ver` as sent (e.g. "3.0" for GB28181-2022), if sent.
    pub gb_version: Option<String>,
    pub user_agent: Option<String>,
    #[serde(default)]
    pub info: DeviceInfo,
    /// The last `DeviceStatus` answer (stored apart from `info`: the two answers race).
    #[serde(default)]
    pub status: Option<DeviceStatus>,
    #[serde(default)]
    pub channel_count: u32,
}

/// `DeviceInfo` answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeviceInfo {
    pub name: Option<String>,
    pub manufacturer: Option<String>,
    pub model: Option<String>,
    pub firmware: Option<String>,
    pub channels: Option<u32>,
}

/// `DeviceStatus` answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeviceStatus {
    pub online: Option<String>,
    pub status: Option<String>,
    pub encode: Option<String>,
    pub record: Option<String>,
    pub device_time: Option<String>,
    pub alarms: Vec<(String, String)>,
}

/// One catalog item (a video channel, or an organisation node in a platform's tree).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Channel {
    pub id: Option<ChannelId>,
    pub name: Option<String>,
    pub manufacturer: Option<String>,
    pub model: Option<String>,
    pub owner: Option<String>,
    pub civil_code: Option<String>,
    pub block: Option<String>,
    pub address: Option<String>,
    pub parental: Option<u8>,
    pub parent_id: Option<String>,
    pub business_group_id: Option<String>,
    pub safety_way: Option<u8>,
    pub register_way: Option<u8>,
    pub secrecy: Option<u8>,
    pub ip_address: Option<String>,
    pub port: Option<u16>,
    pub status: Option<String>,
    pub longitude: Option<f64>,
    pub latitude: Option<f64>,
    pub ptz_type: Option<u8>,
}

/// A channel as stored: a catalog item with a valid id, tagged with its device. Serialises
/// flat (`{"device_id":…, "id":…, "name":…}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredChannel {
    pub device_id: DeviceId,
    #[serde(flatten)]
    pub item: Channel,
}

impl StoredChannel {
    /// `None` for an item without a valid 20-digit id (dropped and counted by the caller).
    pub fn new(device_id: DeviceId, item: Channel) -> Option<Self> {
        item.id.as_ref()?;
        Some(Self { device_id, item })
    }

    pub fn id(&self) -> &str {
        self.item.id.as_ref().map_or("", |i| i.as_str())
    }
}

/// An online/offline transition, as published to `gbc:events:device`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceEvent {
    pub device_id: DeviceId,
    pub online: bool,
    pub reason: String,
    pub at_ms: u64,
    pub node: NodeId,
}

/// A media node's record in the Store (kind `media`), refreshed by its heartbeat and read by
/// sip-servers to choose where a stream goes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MediaNodeRecord {
    pub id: String,
    /// Changes every time the node's process starts: a node restarted under the same id (its
    /// streams lost) is told apart from one that kept running.
    #[serde(default)]
    pub instance: String,
    /// The address cameras send RTP to and players connect to.
    pub public_ip: String,
    /// Its control API and HTTP-FLV, `http://ip:port`.
    pub api_url: String,
    #[serde(default)]
    pub rtmp_port: Option<u16>,
    #[serde(default)]
    pub rtp_ports: [u16; 2],
    pub max_streams: usize,
    #[serde(default)]
    pub capacity_mbps: u32,
    pub streams: usize,
    #[serde(default)]
    pub mbps: f64,
    #[serde(default)]
    pub cpu: f64,
    #[serde(default)]
    pub updated_ms: u64,
}
