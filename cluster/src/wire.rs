//! Every contract between gbcluster's processes, defined once: pub/sub channels, node kinds and
//! records, events. A process that writes one and a process that reads it use the same type.

use gb::ids::{DeviceId, NodeId};
use serde::{Deserialize, Serialize};

/// Pub/sub channel on which every online/offline change of a device is published (JSON
/// `PresenceEvent`).
pub const DEVICE_EVENTS: &str = "gbc:events:device";
/// Pub/sub channel of media stream events (JSON `StreamEvent`).
pub const STREAM_EVENTS: &str = "gbc:events:stream";

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
