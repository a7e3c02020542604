//! Play on demand: the web tier asks for a channel, the least-loaded media node opens a
//! receiver, the camera is INVITEd to stream there, and the session lives until it is stopped,
//! unwatched, starved, hung up or its media node dies (then it moves, same stream id).
//!
//! - `session`: the session record kept in the Store (table `sessions`) and its states.
//! - `media_nodes`: choosing a media node (atomic reservation) and its control API.
//! - `saga`: setting a play (or a move) up as a pure machine with a ledger of what it took.
//! - `manager`: play / stop / teardown / recover on the node that owns the device's dialog; it
//!   runs the saga and gives back what a failed set-up held.
//! - `playback`: a recording played back (its own session, INVITE `s=Playback`) and steered by
//!   INFO (MANSRTSP); `MediaStatus` 121 ends it.
//! - `download`: a recording fetched at `downloadspeed` (INVITE `s=Download`) that the media
//!   node writes to an MP4; the `downloads` table keeps it past its session.
//! - `watch`: what starts teardowns and recoveries (stream and device events, node liveness).
//!
//! Ownership: every session is driven by one sip-server node, the one holding the device's
//! socket or connection when the play began (`Session::sip_node`); other nodes route requests
//! for it there (`crate::rpc`). That node alone keeps the dialog, so it alone can BYE.

pub mod download;
pub mod manager;
pub mod media_nodes;
pub mod playback;
pub mod saga;
pub mod session;
pub mod watch;

use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

pub use manager::Plays;
pub use session::{Session, SessionState};

/// How the camera sends RTP (the one transport type of the play path).
pub use gb::sdp::MediaTransport as PlayTransport;

/// `play.default_transport`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum TransportDefault {
    /// UDP for devices registered over UDP, TCP passive for devices registered over TCP (a
    /// device that chose TCP for signalling usually sits where UDP is lossy or blocked).
    #[default]
    Auto,
    Udp,
    TcpPassive,
    TcpActive,
}

/// `[sip.play]`: every key has a default; `docs/config.md` lists them.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PlayConfig {
    pub default_transport: TransportDefault,
    /// How long the camera has to answer the INVITE before we CANCEL.
    pub invite_timeout_ms: u64,
    /// How long a request routed to the device's owner node may take (more than the INVITE).
    pub route_timeout_ms: u64,
    /// On-demand: tear the session down after this long without a player (0: keep until
    /// stopped).
    pub no_viewer_secs: u64,
    /// A stream-server pushing the stream to its RTMP target counts as watched.
    pub push_holds_open: bool,
    /// Bearer token of the stream-servers' API (their `stream.api_token`).
    pub media_token: String,
    /// Timeout of one call to a stream-server's API.
    pub media_timeout_ms: u64,
    /// How often the media nodes' liveness is checked for sessions to move.
    pub media_check_ms: u64,
    /// Attempts to bring a session back on another node before giving up on it.
    pub recover_attempts: u32,
    /// Send `IFrameCmd` as soon as a new session's camera is ACKed: a camera that is mid-GOP
    /// sends a key frame at once instead of at its next GOP, so the first picture comes up to
    /// a GOP sooner.
    pub iframe_on_start: bool,
}

impl Default for PlayConfig {
    fn default() -> Self {
        Self {
            default_transport: TransportDefault::Auto,
            invite_timeout_ms: 8000,
            route_timeout_ms: 15_000,
            no_viewer_secs: 60,
            push_holds_open: true,
            media_token: String::new(),
            media_timeout_ms: 3000,
            media_check_ms: 1000,
            recover_attempts: 5,
            iframe_on_start: true,
        }
    }
}

/// Why a play, a stop or another call routed to the device's node (a device control) failed,
/// with the HTTP status the API answers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PlayError {
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("device {0} is not known")]
    DeviceUnknown(String),
    #[error("channel {channel} is not in the catalog of device {device}")]
    ChannelUnknown { device: String, channel: String },
    #[error("device {0} is offline")]
    DeviceOffline(String),
    #[error("no media node available: {0}")]
    NoMediaNode(String),
    #[error("media node {node}: {message}")]
    MediaNode { node: String, message: String },
    #[error("camera refused the INVITE: {code} {reason}")]
    CameraRefused { code: u16, reason: String },
    #[error("camera did not answer the INVITE within {0} ms")]
    CameraTimeout(u64),
    #[error("the camera's SDP answer is unusable: {0}")]
    BadAnswer(String),
    #[error("node {0}, which holds the device's connection, did not answer in time")]
    OwnerUnreachable(String),
    /// A device refused a request other than a play's INVITE (a DeviceControl, …).
    #[error("the device refused the {request}: {code}")]
    DeviceRefused { request: String, code: u16 },
    /// A device answered a command with `Result` ERROR.
    #[error("the device could not carry out the {request} (Result ERROR)")]
    DeviceFailed { request: String },
    /// A device did not answer a request other than a play's INVITE.
    #[error("the device did not answer the {request} within {ms} ms")]
    DeviceTimeout { request: String, ms: u64 },
    #[error("no play session {0}")]
    NoSession(String),
    /// Another operation on the same stream is under way (set-up, a racing play).
    #[error("{0}")]
    Busy(String),
    #[error("no SSRC left: {0}")]
    SsrcExhausted(String),
    /// The Store did not answer (Redis down or failing over).
    #[error("store unavailable: {0}")]
    Store(String),
    /// A thing other than a play session that is not there (a pull source).
    #[error("{0} not found")]
    NotFound(String),
    /// A thing to be created that already is.
    #[error("{0} already exists")]
    Exists(String),
    #[error("{0}")]
    Internal(String),
}

impl PlayError {
    pub fn status(&self) -> StatusCode {
        match self {
            PlayError::BadRequest(_) => StatusCode::BAD_REQUEST,
            PlayError::DeviceUnknown(_) | PlayError::ChannelUnknown { .. } | PlayError::NoSession(_) => StatusCode::NOT_FOUND,
            PlayError::NotFound(_) => StatusCode::NOT_FOUND,
            PlayError::DeviceOffline(_) | PlayError::Exists(_) => StatusCode::CONFLICT,
            PlayError::NoMediaNode(_) | PlayError::Busy(_) | PlayError::SsrcExhausted(_) | PlayError::Store(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            PlayError::MediaNode { .. } | PlayError::CameraRefused { .. } | PlayError::CameraTimeout(_) | PlayError::BadAnswer(_) => {
                StatusCode::BAD_GATEWAY
            }
            PlayError::OwnerUnreachable(_) | PlayError::DeviceTimeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            PlayError::DeviceRefused { .. } | PlayError::DeviceFailed { .. } => StatusCode::BAD_GATEWAY,
            PlayError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Whether the same request may succeed later without anyone changing anything (the
    /// API says so, and how long to wait): capacity, exhaustion, a busy stream, the Store.
    pub fn retry_after_secs(&self) -> Option<u32> {
        match self {
            PlayError::Busy(_) => Some(1),
            PlayError::NoMediaNode(_) | PlayError::SsrcExhausted(_) | PlayError::Store(_) => Some(5),
            _ => None,
        }
    }

    /// A stable name for the failure, for programs (the console words its message from it).
    pub fn kind(&self) -> &'static str {
        match self {
            PlayError::BadRequest(_) => "bad_request",
            PlayError::DeviceUnknown(_) => "device_unknown",
            PlayError::ChannelUnknown { .. } => "channel_unknown",
            PlayError::DeviceOffline(_) => "device_offline",
            PlayError::NoMediaNode(_) => "no_media_node",
            PlayError::MediaNode { .. } => "media_node_failed",
            PlayError::CameraRefused { .. } => "camera_refused",
            PlayError::CameraTimeout(_) => "camera_timeout",
            PlayError::BadAnswer(_) => "camera_bad_answer",
            PlayError::OwnerUnreachable(_) => "owner_unreachable",
            PlayError::DeviceRefused { .. } => "device_refused",
            PlayError::DeviceFailed { .. } => "device_failed",
            PlayError::DeviceTimeout { .. } => "device_timeout",
            PlayError::NoSession(_) => "no_session",
            PlayError::Busy(_) => "busy",
            PlayError::SsrcExhausted(_) => "ssrc_exhausted",
            PlayError::Store(_) => "store_unavailable",
            PlayError::NotFound(_) => "not_found",
            PlayError::Exists(_) => "exists",
            PlayError::Internal(_) => "internal",
        }
    }

    /// The SIP status behind a camera failure (408 for no answer).
    pub fn sip_status(&self) -> Option<u16> {
        match self {
            PlayError::CameraRefused { code, .. } | PlayError::DeviceRefused { code, .. } => Some(*code),
            PlayError::CameraTimeout(_) | PlayError::DeviceTimeout { .. } => Some(408),
            _ => None,
        }
    }
}

impl From<cluster::store::StoreError> for PlayError {
    fn from(e: cluster::store::StoreError) -> Self {
        PlayError::Store(e.to_string())
    }
}

impl From<crate::error::SipError> for PlayError {
    fn from(e: crate::error::SipError) -> Self {
        match e {
            crate::error::SipError::NotRegistered(d) => PlayError::DeviceOffline(d),
            e => PlayError::Internal(e.to_string()),
        }
    }
}

impl From<PlayError> for kit::http::ApiError {
    fn from(e: PlayError) -> Self {
        let mut err = kit::http::ApiError::new(e.status(), e.to_string()).with("kind", serde_json::json!(e.kind()));
        if let Some(s) = e.sip_status() {
            err = err.with("sip_status", serde_json::json!(s));
        }
        if let Some(secs) = e.retry_after_secs() {
            err = err.with("retry_after_secs", serde_json::json!(secs));
        }
        err
    }
}
