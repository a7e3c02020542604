//! What two or more gbcluster services share. Parsers and state machines here are sans-I/O:
//! bytes and time in, values and events out.

pub mod catalog;
pub mod civil;
pub mod config;
pub mod flv;
pub mod http;
pub mod http_client;
pub mod ids;
pub mod manscdp;
pub mod media;
pub mod metrics;
pub mod model;
pub mod ps;
pub mod ps_mux;
pub mod rtmp;
pub mod rtp;
pub mod sdp;
pub mod sip;
pub mod store;
pub mod telemetry;
pub mod testutil;
pub mod ts;
