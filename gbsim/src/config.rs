//! `[sim]` config: what the simulated devices look like and where they register.

use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SimTransport {
    #[default]
    Udp,
    Tcp,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimConfig {
    /// The sip-server to register to.
    pub server: String,
    pub server_id: String,
    /// Default: first 10 digits of `server_id`.
    pub domain: Option<String>,
    pub transport: SimTransport,
    pub devices: usize,
    pub channels: usize,
    /// First device id; device i is this + i (the last 7 digits count up).
    pub first_device_id: String,
    pub password: String,
    pub expires_secs: u32,
    pub keepalive_secs: u64,
    /// Local IP to bind.
    pub bind_ip: String,
    /// Advertise this (private, unroutable) IP in Via and Contact, as a camera behind NAT does.
    pub nat_ip: Option<String>,
    /// UDP: devices sharing one local socket (a real camera has its own; a load test cannot).
    pub devices_per_socket: usize,
    /// Catalog items per MESSAGE.
    pub catalog_page: usize,
    /// Stop after this long; 0 = run until stopped.
    pub duration_secs: u64,
    /// New registrations started per second; 0 = as fast as possible.
    pub register_rate: u32,
    /// Sent as `X-GB-Ver` (3.0 = GB28181-2022: SHA-256 preferred); empty: not sent.
    pub gb_version: String,
    /// What a played camera streams: an Annex B .h264/.h265 file; empty: the built-in clip.
    pub media_video: Option<String>,
    /// Audio beside it (.aac ADTS, .alaw, .ulaw).
    pub media_audio: Option<String>,
    pub media_fps: f64,
    /// Answer every INVITE with this status instead of 200 (0: answer normally).
    pub invite_refuse: u16,
    /// Never answer an INVITE (only 100 Trying): the server's timeout and CANCEL are tested.
    pub invite_silent: bool,
    /// Send media once ACKed (false: the dialog is up but nothing flows).
    pub stream_media: bool,
    /// Hang up (BYE) this long after each call starts; 0: never.
    pub bye_after_secs: u64,
    /// Answer (and stream) with this SSRC instead of the offered one, as some cameras do.
    pub answer_ssrc: Option<u32>,
    /// Each call starts streaming at this video frame of the clip (a real encoder is mid-GOP
    /// when the INVITE comes; an `IFrameCmd` then makes it send a key frame at once).
    pub start_frame: usize,
    /// The devices' local time zone (their `DeviceTime` and recording times are written in it).
    pub utc_offset_minutes: i32,
    /// Days of recordings each channel lists (`records::Catalogue`).
    pub record_days: u32,
    /// Seconds in one recording file (`records::Catalogue`).
    pub record_file_secs: i64,
    /// RecordInfo items per MESSAGE.
    pub record_page: usize,
    /// Raise a motion-detection alarm this often (0: never).
    pub alarm_every_secs: u64,
    /// Report a MobilePosition this often (0: never; a MobilePosition subscription reports at
    /// its own interval).
    pub position_every_secs: u64,
    /// Change the catalog this often (0: never): an extra channel is added, goes off, comes
    /// on, is renamed and deleted, one step each time, notified to a Catalog subscription.
    pub catalog_change_every_secs: u64,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            server: "127.0.0.1:5060".into(),
            server_id: "34020000002000000001".into(),
            domain: None,
            transport: SimTransport::Udp,
            devices: 1,
            channels: 4,
            first_device_id: "34020000001320000001".into(),
            password: "12345678".into(),
            expires_secs: 3600,
            keepalive_secs: 60,
            bind_ip: "127.0.0.1".into(),
            nat_ip: None,
            devices_per_socket: 50,
            catalog_page: 8,
            duration_secs: 0,
            register_rate: 0,
            gb_version: "2.0".into(),
            media_video: None,
            media_audio: None,
            media_fps: 25.0,
            invite_refuse: 0,
            invite_silent: false,
            stream_media: true,
            bye_after_secs: 0,
            answer_ssrc: None,
            start_frame: 0,
            utc_offset_minutes: 480,
            record_days: 7,
            record_page: 10,
            alarm_every_secs: 0,
            position_every_secs: 0,
            catalog_change_every_secs: 0,
            record_file_secs: crate::records::FILE_SECS,
        }
    }
}
