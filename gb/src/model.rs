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

/// A device's basic parameters (`BasicParam` of `DeviceConfig` and of a `ConfigDownload`
/// answer): the server may set the name, the registration expiry and the heartbeat; the rest is
/// what the device reports of itself. A password the device may report is never read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicParam {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sip_server_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sip_server_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sip_server_port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain_name: Option<String>,
    /// Registration expiry, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration: Option<u32>,
    /// Seconds between keepalives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat_interval: Option<u32>,
    /// Keepalives missed before the device counts itself offline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat_count: Option<u32>,
}

/// What a catalog `NOTIFY` says happened to an item (annex A.2.6.2 `Event`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CatalogEvent {
    /// A new item.
    Add,
    /// The item is gone.
    Del,
    /// Its fields changed.
    Update,
    /// Online again.
    On,
    /// Offline.
    Off,
    /// Video lost (the 2016 edition's `VLOST`): kept as offline.
    Vlost,
    /// Broken (`DEFECT`): kept as offline.
    Defect,
}

impl CatalogEvent {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.trim().to_ascii_uppercase().as_str() {
            "ADD" => Self::Add,
            "DEL" | "DELETE" => Self::Del,
            "UPDATE" | "MOD" => Self::Update,
            "ON" => Self::On,
            "OFF" => Self::Off,
            "VLOST" => Self::Vlost,
            "DEFECT" => Self::Defect,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Add => "ADD",
            Self::Del => "DEL",
            Self::Update => "UPDATE",
            Self::On => "ON",
            Self::Off => "OFF",
            Self::Vlost => "VLOST",
            Self::Defect => "DEFECT",
        }
    }
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
    /// The device's UTC offset as `device_time` showed it when the answer arrived
    /// (`gb::records::clock_offset_minutes`): how its recordings' local times are read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utc_offset_minutes: Option<i32>,
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

/// One recording in a `RecordInfo` answer, as the device wrote it (its times are device-local;
/// `gb::records` converts them).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordItem {
    /// The channel the recording is of.
    pub device_id: Option<String>,
    pub name: Option<String>,
    pub file_path: Option<String>,
    pub address: Option<String>,
    pub start_time: Option<String>,
    pub end_time: Option<String>,
    pub secrecy: Option<u8>,
    /// `time`, `alarm`, `manual` (what the device says; some write other words).
    pub record_type: Option<String>,
    pub recorder_id: Option<String>,
    /// Bytes (GB28181-2022 adds it; most devices leave it out).
    pub file_size: Option<u64>,
}

/// An `Alarm` notification (A.2.5.5): what the device says, its time device-local.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Alarm {
    /// 1 (highest) to 4.
    pub priority: Option<u8>,
    /// 1 telephone, 2 device, 3 SMS, 4 GPS, 5 video, 6 device fault, 7 other.
    pub method: Option<u8>,
    pub time: Option<String>,
    pub description: Option<String>,
    pub longitude: Option<f64>,
    pub latitude: Option<f64>,
    /// `Info/AlarmType`: its meaning depends on the method (video: 1 manual, 2 motion, …).
    pub alarm_type: Option<u32>,
    /// `Info/AlarmTypeParam/EventType` (1 entering, 2 leaving, for area alarms).
    pub event_type: Option<u32>,
}

/// A `MobilePosition` notification (A.2.5.7): where a mobile device is, its time device-local.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Position {
    pub time: Option<String>,
    pub longitude: Option<f64>,
    pub latitude: Option<f64>,
    /// km/h.
    pub speed: Option<f64>,
    /// Degrees clockwise from north.
    pub direction: Option<f64>,
    /// Metres.
    pub altitude: Option<f64>,
}
