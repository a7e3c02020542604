//! `[stream]` config section. Every key is documented in `docs/config.md`.

use media::flv::{G711Mode, HevcMode};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StreamConfig {
    /// Node id in the cluster (default: hostname-based random).
    pub node_id: Option<String>,
    /// Control API and HTTP-FLV.
    pub http_listen: String,
    /// Built-in RTMP server for players (empty: off).
    pub rtmp_listen: String,
    /// Address cameras send RTP to (what `open` returns), and players reach us at.
    pub public_ip: String,
    /// Interface the RTP sockets bind to.
    pub rtp_bind_ip: String,
    /// RTP port range `[first, last]`, inclusive.
    pub rtp_ports: [u16; 2],
    /// Optional single port where many cameras arrive, demultiplexed by SSRC (0: off).
    pub single_port: u16,
    /// Republish each stream here; `{stream_id}` is replaced (empty: no push).
    pub rtmp_push_url: String,
    /// Seconds without any packet before a receiver closes.
    pub no_data_timeout_secs: u64,
    /// Seconds a stream may have no viewer before a "no viewers" event (0: never).
    pub no_viewer_event_secs: u64,
    /// Packets the reorder buffer may hold while waiting for a missing one.
    pub reorder_window: usize,
    /// Milliseconds a gap may hold packets back before it is given up.
    pub reorder_max_delay_ms: u64,
    /// Largest access unit accepted (bytes): bounds memory whatever a peer sends.
    pub max_frame_bytes: usize,
    /// GOP cache bound (bytes) per stream.
    pub gop_cache_bytes: usize,
    /// Tags a viewer may fall behind before it is dropped.
    pub viewer_queue_tags: usize,
    pub hevc_flv: HevcMode,
    pub g711: G711Mode,
    /// Streams this node accepts (its capacity in the cluster).
    pub max_streams: usize,
    /// Bandwidth this node offers the cluster (Mbit/s), for load weighting.
    pub capacity_mbps: u32,
    /// Heartbeat into the Store; the record lives `heartbeat_ttl_secs`.
    pub heartbeat_secs: u64,
    pub heartbeat_ttl_secs: u64,
    /// Bearer token for the control API (empty: none).
    pub api_token: String,
    /// UDP socket receive buffer per RTP port.
    pub udp_recv_buffer_bytes: usize,
    /// 0: read each RTP socket as soon as it is readable. N: read every N ms on a tick shared
    /// by all streams (fewer wake-ups per stream, up to N ms more latency).
    pub udp_poll_ms: u64,
    /// Kernel send buffer per HTTP connection (players): bounds what a stalled player holds,
    /// so it falls behind and is dropped instead of parking megabytes in the kernel.
    pub http_send_buffer_bytes: usize,
    /// Where downloads (recordings fetched with `s=Download`) are written and served from.
    pub download_dir: String,
    /// Largest download (sample bytes); past it the download fails rather than fill the disk.
    pub download_max_bytes: u64,
    /// Seconds a finished download is kept before it is deleted.
    pub download_keep_secs: u64,
    /// The ffmpeg that decodes pictures (snapshots, MJPEG) out of H.264/H.265.
    pub ffmpeg_path: String,
    /// Snapshot decodes at once on this node (more wait their turn).
    pub snapshot_concurrency: usize,
    /// How long one snapshot decode may take.
    pub snapshot_timeout_ms: u64,
    /// MJPEG server push: pictures a second (at most the source's).
    pub mjpeg_fps: u32,
    /// MJPEG: picture width (height follows the aspect; 0: the source's).
    pub mjpeg_width: u32,
    /// MJPEG: JPEG quality as ffmpeg's `-q:v` (2 best – 31 smallest).
    pub mjpeg_quality: u32,
    /// Pull sources: a source that sends nothing this long is reconnected.
    pub source_stall_secs: u64,
    /// Pull sources: connecting and each step of opening.
    pub source_connect_timeout_secs: u64,
    /// Pull sources: the longest wait between reconnections (backoff doubles from 1 s).
    pub source_retry_max_secs: u64,
    /// MJPEG sources: the largest picture taken (larger parts are skipped).
    pub source_max_picture_bytes: usize,
    /// MJPEG sources: the longest response head or part header block.
    pub source_max_header_bytes: usize,
    /// MJPEG sources encoded to H.264: a key frame every this many seconds.
    pub source_h264_gop_secs: u32,
}

impl Default for StreamConfig {
    fn default() -> Self {
        Self {
            node_id: None,
            http_listen: "0.0.0.0:8081".into(),
            rtmp_listen: "0.0.0.0:1935".into(),
            public_ip: "127.0.0.1".into(),
            rtp_bind_ip: "0.0.0.0".into(),
            rtp_ports: [30000, 30999],
            single_port: 0,
            rtmp_push_url: String::new(),
            no_data_timeout_secs: 15,
            no_viewer_event_secs: 0,
            reorder_window: 64,
            reorder_max_delay_ms: 200,
            max_frame_bytes: 4 << 20,
            gop_cache_bytes: 16 << 20,
            viewer_queue_tags: 1024,
            hevc_flv: HevcMode::Enhanced,
            g711: G711Mode::Pass,
            max_streams: 2000,
            capacity_mbps: 4000,
            heartbeat_secs: 2,
            heartbeat_ttl_secs: 6,
            api_token: String::new(),
            udp_recv_buffer_bytes: 2 << 20,
            udp_poll_ms: 0,
            http_send_buffer_bytes: 256 << 10,
            download_dir: crate::downloads::default_dir(),
            download_max_bytes: 8 << 30,
            download_keep_secs: 86_400,
            ffmpeg_path: "ffmpeg".into(),
            snapshot_concurrency: 2,
            snapshot_timeout_ms: 5000,
            mjpeg_fps: 5,
            mjpeg_width: 0,
            mjpeg_quality: 5,
            source_stall_secs: 10,
            source_connect_timeout_secs: 10,
            source_retry_max_secs: 30,
            source_max_picture_bytes: 8 << 20,
            source_max_header_bytes: 16 << 10,
            source_h264_gop_secs: 2,
        }
    }
}
