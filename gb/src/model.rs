//! What devices report about themselves (MANSCDP answers) and how they reach us.

use serde::{Deserialize, Serialize};

use crate::ids::ChannelId;

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
