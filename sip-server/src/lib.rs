//! gbcluster's SIP server: the GB28181 registrar (UDP + TCP, digest auth, NAT-aware), device
//! presence in the Store, catalog and device queries, and the web tier's HTTP API.
//!
//! `inbound` handles what devices send, `outbound` what we send them, `registrar` REGISTER,
//! `server` the wiring and background tasks, `api` the HTTP side; `control` (DeviceControl,
//! PresetQuery) and `records` (RecordInfo) ask devices on the API's behalf; `notices` keeps what they
//! report unasked (alarms, positions).

pub mod answers;
pub mod api;
pub mod cluster_view;
pub mod config;
pub mod console;
pub mod control;
pub mod dialog;
pub mod error;
pub mod events;
pub mod gallery;
pub mod handles;
pub mod headers;
pub mod inbound;
pub mod metrics;
pub mod notices;
pub mod outbound;
pub mod pictures;
pub mod play;
pub mod proxy;
pub mod records;
pub mod registrar;
pub mod rpc;
pub mod server;
pub mod sources;
pub mod stateless;
pub mod subscriptions;

pub use config::{ApiConfig, SipConfig};
pub use error::SipError;
pub use server::{run, start, SipServerHandle};
