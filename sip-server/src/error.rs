//! The sip-server's error type.

use std::net::SocketAddr;

#[derive(Debug, thiserror::Error)]
pub enum SipError {
    #[error("binding {addr}: {source}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("bad config: {0}")]
    Config(String),
    #[error("store: {0}")]
    Store(#[from] cluster::store::StoreError),
    #[error("sip stack: {0}")]
    Stack(Box<rsipstack::Error>),
    #[error("sip message: {0}")]
    Message(#[from] rsipstack::sip::Error),
    #[error("device {0} is not registered")]
    NotRegistered(String),
    #[error("device {device} is owned by node {node}, not reachable from here")]
    NotOwner { device: String, node: String },
    #[error("no answer from {device} at {addr} within {timeout_ms} ms")]
    Timeout { device: String, addr: SocketAddr, timeout_ms: u64 },
    #[error("device {device} answered {code}")]
    Refused { device: String, code: u16 },
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

impl From<rsipstack::Error> for SipError {
    fn from(e: rsipstack::Error) -> Self {
        SipError::Stack(Box::new(e))
    }
}
