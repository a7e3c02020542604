//! The device registry's rows: a registered device and its stored channels.

use gb::ids::{DeviceId, NodeId};
use gb::model::{Channel, DeviceInfo, DeviceStatus, SipTransport};
use serde::{Deserialize, Serialize};

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
