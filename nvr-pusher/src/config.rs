//! `[nvr]` config section. Every key has a default; `docs/config.md` lists them.

use media::flv::HevcMode;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NvrConfig {
    /// HTTP listen address of the pusher API (`/REAL_STREAM`, …).
    pub listen: String,
    /// The address other nodes (and the web tier) reach this node's API at; default
    /// `http://<listen>` with 127.0.0.1 for an unspecified address.
    pub advertise_url: String,
    /// This node's id (several pusher nodes share the Store); default random.
    pub node_id: Option<String>,
    /// RTMP application every session is pushed to: `<rtmp_target>/<stream name>`.
    pub rtmp_target: String,
    /// What players use to reach the pushed stream (`rtmp_url` in replies), if it differs
    /// from `rtmp_target` (an RTMP server behind a load balancer, say).
    pub rtmp_public: String,
    /// The stream name pattern; `{handle}` is the play handle.
    pub stream_name: String,
    /// How H.265 goes into FLV: `enhanced` (Enhanced RTMP `hvc1`: SRS 6, ZLMediaKit, ffmpeg
    /// ≥ 6.1) or `codec12` (the older domestic extension; for nginx-rtmp, which cannot read
    /// Enhanced RTMP's frame type).
    pub hevc_flv: HevcMode,
    /// RTSP port of the NVRs (a request may carry `rtsp_port` to override it).
    pub rtsp_port: u16,
    /// HTTP port of the NVRs' API, ISAPI or CGI (a request may carry `http_port`).
    pub http_port: u16,
    /// Each step of opening a source (connect, DESCRIBE, SETUP, PLAY) and of the RTMP publish.
    pub connect_timeout_secs: u64,
    /// A play answers once video flows; no key frame within this long is 601.
    pub first_frame_secs: u64,
    /// No frame from a playing source for this long counts as the source dropping.
    pub stall_secs: u64,
    /// The web tier beats every `beat_interval_secs`; a session without a beat for three
    /// intervals is stopped.
    pub beat_interval_secs: u64,
    /// How long a dropped source (or RTMP target) is retried, with backoff from 1 s doubling
    /// to 8 s, before the session ends with the reason kept for BEATS.
    pub reconnect_window_secs: u64,
    /// How long an ended session's reason stays answerable by BEATS.
    pub ended_keep_secs: u64,
    /// Sessions this node takes at most (the node choice skips a full node).
    pub max_sessions: u64,
    /// PTZ speed: ISAPI 1–100, Dahua 1–8 (scaled).
    pub ptz_speed: u8,
    /// Timeout of one call to an NVR's HTTP API.
    pub http_timeout_secs: u64,
}

impl Default for NvrConfig {
    fn default() -> Self {
        Self {
            listen: "0.0.0.0:8083".into(),
            advertise_url: String::new(),
            node_id: None,
            rtmp_target: "rtmp://127.0.0.1:1935/live".into(),
            rtmp_public: String::new(),
            stream_name: "nvr_{handle}".into(),
            hevc_flv: HevcMode::Enhanced,
            rtsp_port: 554,
            http_port: 80,
            connect_timeout_secs: 5,
            first_frame_secs: 10,
            stall_secs: 10,
            beat_interval_secs: 20,
            reconnect_window_secs: 60,
            ended_keep_secs: 600,
            max_sessions: 200,
            ptz_speed: 60,
            http_timeout_secs: 5,
        }
    }
}
