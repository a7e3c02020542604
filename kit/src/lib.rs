//! The service kit: what every gbcluster service runs on, and nothing about GB or the cluster.

pub use clock;

pub mod config;
pub mod http;
pub mod http_client;
pub mod metrics;
pub mod rtmp;
pub mod telemetry;
