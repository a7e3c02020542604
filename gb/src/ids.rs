//! Newtype identifiers. Each validates on construction so that APIs never take a bare `&str`
//! that might be anything: a GB id is 20 ASCII digits, an SSRC 10.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("GB id must be 20 digits, got {0:?}")]
    NotGbId(String),
    #[error("node id must be 1-64 chars of [A-Za-z0-9._-], got {0:?}")]
    BadNodeId(String),
    #[error("GB SSRC must be 10 digits that fit 32 bits, got {0:?}")]
    NotSsrc(String),
}

/// The 3-digit type code inside a GB id (digits 11-13).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GbKind {
    Dvr,
    Nvr,
    Camera,
    Ipc,
    Platform,
    BusinessGroup,
    VirtualOrg,
    Other(u16),
}

fn is_gb_id(s: &str) -> bool {
    s.len() == 20 && s.bytes().all(|b| b.is_ascii_digit())
}

macro_rules! gb_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
            /// The 3-digit type code (digits 11-13).
            pub fn kind(&self) -> GbKind {
                let code: u16 = self.0.get(10..13).and_then(|s| s.parse().ok()).unwrap_or(0);
                match code {
                    111 => GbKind::Dvr,
                    118 => GbKind::Nvr,
                    131 => GbKind::Camera,
                    132 => GbKind::Ipc,
                    200 => GbKind::Platform,
                    215 => GbKind::BusinessGroup,
                    216 => GbKind::VirtualOrg,
                    other => GbKind::Other(other),
                }
            }
        }
        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                let s = s.trim();
                if is_gb_id(s) {
                    Ok(Self(s.to_owned()))
                } else {
                    Err(IdError::NotGbId(s.chars().take(40).collect()))
                }
            }
        }
        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                s.parse()
            }
        }
        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

gb_id!(
    /// A registered device (camera, NVR, DVR, lower platform): 20 digits.
    DeviceId
);
gb_id!(
    /// A channel (or catalog item: organisation, business group) under a device: 20 digits.
    ChannelId
);
gb_id!(
    /// Our own SIP server id (the `sip.server_id` config key): 20 digits.
    ServerId
);

impl ServerId {
    /// The SIP domain by convention: the first 10 digits of the server id.
    pub fn domain(&self) -> &str {
        self.0.get(..10).unwrap_or(&self.0)
    }
}

/// A cluster node's id (sip-server or stream-server), chosen by config or generated at start.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NodeId(String);

impl NodeId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// A fresh random id, for a node whose config names none.
    pub fn random(prefix: &str) -> Self {
        let n: u32 = rand::random();
        Self(format!("{prefix}-{n:08x}"))
    }
}
impl FromStr for NodeId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        let ok = !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(IdError::BadNodeId(s.chars().take(80).collect()))
        }
    }
}
impl TryFrom<String> for NodeId {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, IdError> {
        s.parse()
    }
}
impl From<NodeId> for String {
    fn from(id: NodeId) -> String {
        id.0
    }
}
impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_id_accepts_20_digits_and_reports_kind() {
        let id: DeviceId = "34020000001320000001".parse().unwrap();
        assert_eq!(id.kind(), GbKind::Ipc);
        let cam: DeviceId = "34020000001310000001".parse().unwrap();
        assert_eq!(cam.kind(), GbKind::Camera);
        let nvr: DeviceId = " 34020000001180000001 ".parse().unwrap();
        assert_eq!(nvr.kind(), GbKind::Nvr);
        assert_eq!(nvr.as_str(), "34020000001180000001");
    }

    #[test]
    fn device_id_rejects_wrong_length_and_non_digits() {
        for bad in ["", "3402000000132000000", "340200000013200000011", "3402000000132000000a", "３４"] {
            assert!(bad.parse::<DeviceId>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn server_domain_is_first_ten_digits() {
        let id: ServerId = "34020000002000000001".parse().unwrap();
        assert_eq!(id.domain(), "3402000000");
    }

    #[test]
    fn node_id_validation() {
        assert!("sip-1".parse::<NodeId>().is_ok());
        assert!("a b".parse::<NodeId>().is_err());
        assert!("".parse::<NodeId>().is_err());
        assert!(NodeId::random("stream").as_str().starts_with("stream-"));
    }

    #[test]
    fn serde_rejects_bad_ids() {
        assert!(serde_json::from_str::<DeviceId>("\"123\"").is_err());
        let id: DeviceId = serde_json::from_str("\"34020000001320000001\"").unwrap();
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"34020000001320000001\"");
    }
}

/// A GB28181 SSRC: 10 decimal digits (first digit 0 live, 1 history), so it fits a `u32`, the
/// RTP header's field. Kept as text too, since SDP's `y=` and the Subject carry the digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Ssrc(String);

impl Ssrc {
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The value in RTP headers.
    pub fn value(&self) -> u32 {
        // Validated on construction: 10 digits that fit a u32.
        self.0.parse().unwrap_or_default()
    }
}

impl FromStr for Ssrc {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        let s = s.trim();
        if s.len() == 10 && s.bytes().all(|b| b.is_ascii_digit()) && s.parse::<u32>().is_ok() {
            Ok(Self(s.to_owned()))
        } else {
            Err(IdError::NotSsrc(s.chars().take(40).collect()))
        }
    }
}
impl TryFrom<String> for Ssrc {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, IdError> {
        s.parse()
    }
}
impl From<Ssrc> for String {
    fn from(id: Ssrc) -> String {
        id.0
    }
}
impl fmt::Display for Ssrc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The first six digits of a GB28181 SSRC (GB/T 28181 appendix: 10 decimal digits; the first is
/// 0 for live, 1 for playback; the 2nd–6th are the 4th–8th digits of the domain id; the last
/// four are a sequence). `None` if the domain has fewer than 8 digits.
pub fn gb_ssrc_prefix(domain: &str, history: bool) -> Option<String> {
    let d = domain.get(3..8).filter(|d| d.bytes().all(|b| b.is_ascii_digit()))?;
    Some(format!("{}{d}", u8::from(history)))
}

#[cfg(test)]
mod ssrc_tests {
    #[test]
    fn gb_ssrc_prefix() {
        assert_eq!(super::gb_ssrc_prefix("3402000000", false).as_deref(), Some("020000"));
        assert_eq!(super::gb_ssrc_prefix("4401020049", true).as_deref(), Some("110200"));
        assert_eq!(super::gb_ssrc_prefix("3402", false), None);
    }

    #[test]
    fn ssrc_is_ten_digits_that_fit_rtp() {
        let s: super::Ssrc = "0200000001".parse().unwrap();
        assert_eq!((s.as_str(), s.value()), ("0200000001", 200_000_001));
        assert_eq!("4294967295".parse::<super::Ssrc>().unwrap().value(), u32::MAX);
        for bad in ["4294967296", "123", "02000000011", "02000x0001", ""] {
            assert!(bad.parse::<super::Ssrc>().is_err(), "{bad}");
        }
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"0200000001\"");
    }
}
