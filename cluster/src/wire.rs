//! Every contract between gbcluster's processes, defined once: pub/sub channels, node kinds and
//! records, events. A process that writes one and a process that reads it use the same type.

use std::fmt;

use gb::ids::{ChannelId, DeviceId, NodeId};
pub use gb::sdp::MediaTransport;
use serde::{Deserialize, Serialize};

/// A contract as JSON. Every type in this module is a record of strings, numbers, options and
/// enums with string keys, which serde_json always encodes: the one place that says so.
pub fn to_json<T: Serialize>(contract: &T) -> String {
    serde_json::to_string(contract).expect("wire contracts are records serde_json always encodes")
}

/// A stream's id on the media nodes. A GB play's is `<device>_<channel>`, so a second play of
/// a channel finds the first and a session moved to another node keeps its id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StreamId(String);

impl StreamId {
    pub fn of_channel(device: &DeviceId, channel: &ChannelId) -> Self {
        Self(format!("{device}_{channel}"))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for StreamId {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

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

/// An nvr-pusher node's record in the Store (kind `nvr`), read by the other pushers to choose
/// where a play goes and to reach the node holding a play handle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NvrNodeRecord {
    pub id: String,
    /// Changes every time the node's process starts (its sessions are lost with a restart).
    pub instance: String,
    pub api_url: String,
    pub sessions: u64,
    pub max_sessions: u64,
    /// Output bit rate of all sessions, Mbit/s.
    pub mbps: f64,
    pub updated_ms: u64,
}

/// Pub/sub channel of the lpr-servers' events (passages, IO, serial data, snapshots, cameras
/// online/offline), JSON with a `kind`.
pub const LPR_EVENTS: &str = "gbc:events:lpr";

/// An lpr-server's record in the Store (kind `lpr`), refreshed by its heartbeat: where the web
/// tier reaches its management API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LprNodeRecord {
    pub id: String,
    pub api_url: String,
    pub updated_ms: u64,
}

/// Pub/sub channel of device alarms (JSON, the sip-server's `notices::AlarmRecord`).
pub const ALARM_EVENTS: &str = "gbc:events:alarm";
/// Pub/sub channel of mobile positions (JSON, the sip-server's `notices::PositionRecord`).
pub const POSITION_EVENTS: &str = "gbc:events:position";

/// Pub/sub channel of play session events (JSON, the sip-server's `PlayEvent`).
pub const PLAY_EVENTS: &str = "gbc:events:play";

/// The kinds of node that announce themselves in the Store (`put_node`), each also the name of
/// its load pool where it has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    /// sip-servers (record: `SipNodeRecord`).
    Sip,
    /// stream-servers (record: `MediaNodeRecord`; load pool of streams).
    Media,
    /// nvr-pushers (load pool of pushes).
    Nvr,
    /// lpr-servers (record: `LprNodeRecord`).
    Lpr,
}

impl NodeKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            NodeKind::Sip => "sip",
            NodeKind::Media => "media",
            NodeKind::Nvr => "nvr",
            NodeKind::Lpr => "lpr",
        }
    }
}

/// A sip-server's record in the Store (kind `sip`): other nodes route calls to it while it is
/// there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SipNodeRecord {
    pub id: String,
    /// The host cameras reach its SIP listener at.
    pub sip: String,
    pub api_port: u16,
}

/// What happened to a stream on a media node, published on `STREAM_EVENTS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamEventKind {
    /// A receiver was opened.
    Opened,
    /// Its first media arrived.
    Started,
    /// No media for the node's timeout (followed by `Closed`).
    NoData,
    /// No player for the stream's `no_viewer_secs`.
    NoViewers,
    /// The receiver is gone (`reason` says why).
    Closed,
    /// Sent by a newer node: ignored, never an error.
    #[serde(other)]
    Unknown,
}

/// Why a media node closed a receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseReason {
    /// Closed through the API.
    Api,
    NoData,
    /// The camera closed its TCP connection.
    PeerClosed,
    /// TCP active: could not connect to the camera.
    ConnectFailed,
    /// The node is stopping.
    Shutdown,
    /// An on-demand pull source nobody watched for its idle time.
    Idle,
    /// Sent by a newer node.
    #[serde(other)]
    Unknown,
}

impl CloseReason {
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::Api => "api",
            CloseReason::NoData => "no_data",
            CloseReason::PeerClosed => "peer_closed",
            CloseReason::ConnectFailed => "connect_failed",
            CloseReason::Shutdown => "shutdown",
            CloseReason::Idle => "idle",
            CloseReason::Unknown => "unknown",
        }
    }
}

/// One stream event as published on `STREAM_EVENTS`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamEvent {
    pub event: StreamEventKind,
    pub stream_id: StreamId,
    /// The media node's id.
    pub node: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<CloseReason>,
    #[serde(default)]
    pub at_ms: u64,
}

/// `POST /api/v1/receivers` on a media node: open an RTP receiver.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiverOpen {
    pub stream_id: String,
    /// Decimal SSRC (GB's 10 digits), or absent to accept the first one seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssrc: Option<u32>,
    /// UDP when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport: Option<MediaTransport>,
    /// TCP active: the camera's address from its SDP answer (may also come later).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
    /// Raise `no_viewers` after this long without a player (overrides the node's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_viewer_secs: Option<u64>,
    /// A connected RTMP push counts as a player for `no_viewers`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push_holds_open: Option<bool>,
    /// Write what arrives to an MP4 file (a download), served when the stream ends.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub record: bool,
}

/// A stream id the media node takes: ids travel in URLs and RTMP paths, so 1-128 characters of
/// `[A-Za-z0-9_.-]`.
pub fn valid_stream_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// `POST /api/v1/sources` on a media node: pull a camera's video as a stream.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceOpen {
    pub stream_id: String,
    /// `http://…` (MJPEG over HTTP) or `rtsp://…`; credentials may be in it.
    pub url: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub username: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub password: String,
    /// MJPEG: also encode the pictures to H.264, so the stream plays as HTTP-FLV, RTMP, fMP4.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub h264: bool,
    /// RTSP: `tcp` (interleaved, the default) or `udp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtsp_transport: Option<String>,
    /// An on-demand source: closed after this long without a viewer (0: never).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub idle_secs: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

// Written by hand so the password never reaches a log.
impl std::fmt::Debug for SourceOpen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceOpen")
            .field("stream_id", &self.stream_id)
            .field("url", &redact_url(&self.url))
            .field("username", &self.username)
            .field("h264", &self.h264)
            .field("rtsp_transport", &self.rtsp_transport)
            .finish_non_exhaustive()
    }
}

/// `url` without the password in it (`rtsp://user:secret@host/` → `rtsp://user@host/`).
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => {
            let user = rest[..at].split(':').next().unwrap_or("");
            format!("{scheme}://{user}@{}", &rest[at + 1..])
        }
        None => url.to_owned(),
    }
}

/// A pull source's state on its media node.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceState {
    #[default]
    Connecting,
    Playing,
    /// Failed; trying again after `retry_in_ms`.
    Retrying,
    #[serde(other)]
    Unknown,
}

/// What a media node says of one pull source (`GET /api/v1/sources`): never its credentials.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SourceStatus {
    pub stream_id: String,
    /// The URL without its password.
    pub url: String,
    /// `mjpeg` or `rtsp`.
    pub kind: String,
    pub state: SourceState,
    /// What the source carries (`jpeg`, `h264`, `h265`), once known.
    #[serde(default)]
    pub video: Option<String>,
    #[serde(default)]
    pub h264: bool,
    /// Connections made (the first and each reconnection).
    pub connects: u64,
    pub failures: u64,
    /// Why the latest connection failed or ended.
    #[serde(default)]
    pub last_error: Option<String>,
    /// The latest thing wrong in a stream that went on (a part skipped, garbage between parts).
    #[serde(default)]
    pub last_problem: Option<String>,
    #[serde(default)]
    pub retry_in_ms: Option<u64>,
    /// Since when the current connection plays (Unix ms).
    #[serde(default)]
    pub playing_since_ms: Option<u64>,
    pub pictures: u64,
    pub frames: u64,
    pub bytes: u64,
    pub garbage_bytes: u64,
    pub oversize: u64,
    pub not_jpeg: u64,
    pub long_headers: u64,
}

/// The answer to `ReceiverOpen`: where the camera sends (UDP, TCP passive) or the node's port
/// (TCP active).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiverOpened {
    pub stream_id: String,
    pub ip: String,
    pub port: u16,
    pub transport: MediaTransport,
    #[serde(default)]
    pub ssrc: Option<u32>,
}

/// `POST /api/v1/receivers/{id}/answer`: what the camera's SDP answer says.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiverAnswer {
    /// The SSRC the camera's answer named, if not the one offered.
    #[serde(default)]
    pub ssrc: Option<u32>,
    /// TCP active: the camera's address from the answer.
    #[serde(default)]
    pub peer: Option<String>,
}

/// `POST /api/v1/receivers/{id}/connect` (TCP active): where the camera listens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiverConnect {
    pub peer: String,
}

/// What happened to a play session, published on `PLAY_EVENTS` by the sip-server driving it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlayEventKind {
    /// The camera answered and the session is up.
    Started,
    /// The session moved to another media node (same stream id).
    Recovered,
    /// The session ended (`reason` says why).
    Closed,
    #[serde(other)]
    Unknown,
}

/// One play session event as published on `PLAY_EVENTS`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlayEvent {
    pub event: PlayEventKind,
    pub stream_id: StreamId,
    pub device_id: String,
    pub channel_id: String,
    pub media_node: String,
    pub sip_node: String,
    /// For `Closed`: `stopped`, `no_viewers`, `no_data`, `camera_bye`, `device_offline`, …
    pub reason: Option<String>,
    pub at_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sources_password_is_never_shown() {
        assert_eq!(
            redact_url("rtsp://admin:Hik12345@10.0.0.9:554/Streaming/Channels/101"),
            "rtsp://admin@10.0.0.9:554/Streaming/Channels/101"
        );
        assert_eq!(redact_url("http://cam/video?user=a@b"), "http://cam/video?user=a@b");
        assert_eq!(redact_url("http://a:b:c@cam/"), "http://a@cam/");
        assert_eq!(redact_url("nonsense"), "nonsense");
        let open = SourceOpen { stream_id: "s".into(), url: "http://u:pw1@cam/".into(), password: "pw2".into(), ..Default::default() };
        let shown = format!("{open:?}");
        assert!(!shown.contains("pw1") && !shown.contains("pw2"), "{shown}");
    }

    #[test]
    fn stream_events_read_as_the_media_node_writes_them() {
        let ev = StreamEvent {
            event: StreamEventKind::Closed,
            stream_id: "s1".into(),
            node: "media-1".into(),
            reason: Some(CloseReason::PeerClosed),
            at_ms: 7,
        };
        let json = serde_json::to_string(&ev).unwrap();
        assert_eq!(json, r#"{"event":"closed","stream_id":"s1","node":"media-1","reason":"peer_closed","at_ms":7}"#);
        assert_eq!(serde_json::from_str::<StreamEvent>(&json).unwrap(), ev);
    }

    #[test]
    fn unknown_event_kinds_and_reasons_from_newer_nodes_are_read_not_refused() {
        let ev: StreamEvent = serde_json::from_str(r#"{"event":"paused","stream_id":"s","node":"n","reason":"moon"}"#).unwrap();
        assert_eq!(ev.event, StreamEventKind::Unknown);
        assert_eq!(ev.reason, Some(CloseReason::Unknown));
    }

    #[test]
    fn receiver_open_body_round_trips_and_refuses_unknown_fields() {
        let open = ReceiverOpen {
            stream_id: "s".into(),
            ssrc: Some(200_000_001),
            transport: Some(MediaTransport::TcpActive),
            no_viewer_secs: Some(30),
            ..Default::default()
        };
        let json = serde_json::to_string(&open).unwrap();
        assert_eq!(json, r#"{"stream_id":"s","ssrc":200000001,"transport":"tcp-active","no_viewer_secs":30}"#);
        assert_eq!(serde_json::from_str::<ReceiverOpen>(&json).unwrap(), open);
        assert!(serde_json::from_str::<ReceiverOpen>(r#"{"stream_id":"s","bogus":1}"#).is_err());
    }
}
