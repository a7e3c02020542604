//! One RTSP pull with `retina`: DESCRIBE with digest credentials, SETUP of the first video
//! (H.264/H.265, or JPEG when the caller takes pictures) and the first audio stream FLV can
//! carry (AAC, G.711), interleaved over the RTSP TCP connection or over UDP, PLAY, then
//! depacketized frames fed to a [`Remuxer`]. Frames arrive in FLV's own NAL framing (4-byte
//! lengths), so they are copied once, into the tag. JPEG video (RFC 2435) comes out as whole
//! JPEG pictures instead.

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use media::es::Codec;
use media::flv::FlvTag;
use media::VideoConfig;
use retina::client::{
    Credentials, Demuxed, InitialSequenceNumberPolicy, InitialTimestampPolicy, PlayOptions, Session, SessionOptions, SetupOptions,
    TcpTransportOptions, Transport, UdpTransportOptions,
};
use retina::codec::{CodecItem, FrameFormat, ParametersRef, VideoParameters};

use crate::remux::{audio_config, Remuxer};

/// Why a pull could not start or stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    #[error("RTSP server unreachable: {0}")]
    Unreachable(String),
    #[error("RTSP login failed: {0}")]
    Auth(String),
    /// The device refused the URL (no such channel, no recording at that time).
    #[error("the RTSP server refused the stream: {0}")]
    Refused(String),
    #[error("no usable video: {0}")]
    NoVideo(String),
    #[error("RTSP stream broke: {0}")]
    Broken(String),
    #[error("no frame for {0:?}")]
    Stalled(Duration),
    /// The server ended the stream (the end of a recording).
    #[error("the stream ended")]
    Ended,
}

/// The first line of a retina error (the rest is connection context for a packet capture).
fn short(e: &retina::Error) -> String {
    e.to_string().lines().next().unwrap_or("").chars().take(300).collect()
}

fn classify(e: retina::Error) -> SourceError {
    match e.status_code() {
        Some(401 | 403) => SourceError::Auth(short(&e)),
        Some(_) => SourceError::Refused(short(&e)),
        None => SourceError::Unreachable(short(&e)),
    }
}

/// How the RTP of the pull travels.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RtspTransport {
    /// Interleaved in the RTSP connection: through NAT and firewalls, no loss.
    #[default]
    Tcp,
    Udp,
}

#[derive(Debug, Clone, Copy)]
pub struct RtspOptions {
    /// Each step of the opening (DESCRIBE, SETUP, PLAY).
    pub timeout: Duration,
    pub transport: RtspTransport,
    /// JPEG video is taken (its frames are given out as pictures), not only H.264/H.265.
    pub allow_jpeg: bool,
}

/// The URL without credentials (retina refuses them in it) and the credentials to use: those
/// given apart, else the URL's own (percent-decoded).
fn split_credentials(url: &str, user: &str, password: &str) -> Result<(url::Url, String, String), SourceError> {
    let mut parsed = url::Url::parse(url).map_err(|e| SourceError::Refused(format!("bad RTSP URL: {e}")))?;
    let (user, password) = crate::http_auth::credentials(&parsed, user, password);
    let _ = parsed.set_username("");
    let _ = parsed.set_password(None);
    Ok((parsed, user, password))
}

/// A pull that is playing.
pub struct RtspSource {
    demuxed: Demuxed,
    video: usize,
    audio: Option<(usize, u32)>,
}

/// What the open found, for the logs and the session's view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceInfo {
    pub video: String,
    pub audio: Option<String>,
}

fn video_config(codec: Codec, p: &VideoParameters) -> VideoConfig {
    let (width, height) = p.pixel_dimensions();
    // retina gives (duration, timescale): 15 fps may be (1, 15) or (6000, 90000).
    let fps = p.frame_rate().filter(|(d, t)| *d > 0 && *t > 0).map(|(d, t)| f64::from(t) / f64::from(d));
    VideoConfig { codec, width, height, fps, record: Bytes::copy_from_slice(p.extra_data()) }
}

fn video_codec(encoding: &str) -> Option<Codec> {
    match encoding.to_ascii_lowercase().as_str() {
        "h264" => Some(Codec::H264),
        "h265" => Some(Codec::H265),
        _ => None,
    }
}

fn is_jpeg(encoding: &str) -> bool {
    encoding.eq_ignore_ascii_case("jpeg")
}

impl RtspSource {
    /// Opens `url` and starts playing, each step bounded by `opts.timeout`.
    pub async fn open(
        url: &str,
        user: &str,
        password: &str,
        opts: RtspOptions,
        remux: &mut Remuxer,
    ) -> Result<(Self, SourceInfo), SourceError> {
        let timeout = opts.timeout;
        let (parsed, user, password) = split_credentials(url, user, password)?;
        let creds = (!user.is_empty()).then_some(Credentials { username: user, password });
        let session_opts = SessionOptions::default().creds(creds).user_agent(concat!("gbcluster/", env!("CARGO_PKG_VERSION")).to_owned());
        let step = |what: &'static str| move |_| SourceError::Unreachable(format!("{what}: no answer within {timeout:?}"));
        let mut session =
            tokio::time::timeout(timeout, Session::describe(parsed, session_opts)).await.map_err(step("DESCRIBE"))?.map_err(classify)?;

        let streams = session.streams();
        let usable = |enc: &str| video_codec(enc).is_some() || (opts.allow_jpeg && is_jpeg(enc));
        let video = streams.iter().position(|s| s.media() == "video" && usable(s.encoding_name())).ok_or_else(|| {
            let found: Vec<String> = streams.iter().map(|s| format!("{}/{}", s.media(), s.encoding_name())).collect();
            let wanted = if opts.allow_jpeg { "H.264, H.265 or JPEG" } else { "H.264 or H.265" };
            SourceError::NoVideo(format!("no {wanted} video in the SDP (found {})", found.join(", ")))
        })?;
        let audio = streams.iter().position(|s| {
            s.media() == "audio" && matches!(s.encoding_name().to_ascii_lowercase().as_str(), "mpeg4-generic" | "pcma" | "pcmu")
        });
        let codec = video_codec(streams[video].encoding_name()).unwrap_or(Codec::H264);
        let mut info = SourceInfo { video: streams[video].encoding_name().to_ascii_lowercase(), audio: None };

        let transport = || match opts.transport {
            RtspTransport::Tcp => Transport::Tcp(TcpTransportOptions::default()),
            RtspTransport::Udp => Transport::Udp(UdpTransportOptions::default()),
        };
        let setup = || SetupOptions::default().transport(transport()).frame_format(FrameFormat::MP4);
        tokio::time::timeout(timeout, session.setup(video, setup())).await.map_err(step("SETUP"))?.map_err(classify)?;
        let mut audio_clock = None;
        if let Some(a) = audio {
            // Audio is a bonus: a camera whose audio track cannot be set up still shows video.
            if let Ok(Ok(())) = tokio::time::timeout(timeout, session.setup(a, setup())).await {
                let s = &session.streams()[a];
                let clock = s.clock_rate_hz();
                let channels = s.channels().map(|c| c.get()).unwrap_or(1).min(8) as u8;
                let asc = match s.parameters() {
                    Some(ParametersRef::Audio(p)) => p.extra_data().to_vec(),
                    _ => Vec::new(),
                };
                if let Some(cfg) = audio_config(s.encoding_name(), clock, channels, &asc) {
                    info.audio = Some(s.encoding_name().to_ascii_lowercase());
                    remux.set_audio(cfg);
                    audio_clock = Some((a, clock));
                }
            }
        }
        if let Some(ParametersRef::Video(p)) = session.streams()[video].parameters().filter(|_| !is_jpeg(&info.video)) {
            remux.set_video(video_config(codec, p));
        }
        // RTP-Info is not needed (the remuxer aligns the tracks) and is often wrong: NVRs (and
        // any server sharing one media among clients) send a `seq` the first packet does not
        // carry, which retina's default takes for loss and fails the stream.
        let play =
            PlayOptions::default().initial_seq(InitialSequenceNumberPolicy::Ignore).initial_timestamp(InitialTimestampPolicy::Permissive);
        let playing = tokio::time::timeout(timeout, session.play(play)).await.map_err(step("PLAY"))?.map_err(classify)?;
        let demuxed = playing.demuxed().map_err(classify)?;
        Ok((Self { demuxed, video, audio: audio_clock }, info))
    }

    fn video_codec(&self) -> Codec {
        video_codec(self.demuxed.streams()[self.video].encoding_name()).unwrap_or(Codec::H264)
    }

    /// The video is JPEG: [`RtspSource::next`] gives pictures, not tags.
    pub fn is_jpeg(&self) -> bool {
        is_jpeg(self.demuxed.streams()[self.video].encoding_name())
    }

    /// Waits for the next frame and turns it into tags (none while waiting for a key frame),
    /// or, for JPEG video, gives the picture back. Cancel-safe: a frame is either fully
    /// handled or still in the stream.
    pub async fn next(&mut self, stall: Duration, remux: &mut Remuxer, out: &mut Vec<FlvTag>) -> Result<Option<Bytes>, SourceError> {
        let item = match tokio::time::timeout(stall, self.demuxed.next()).await {
            Err(_) => return Err(SourceError::Stalled(stall)),
            Ok(None) => return Err(SourceError::Ended),
            Ok(Some(Err(e))) => {
                let s = short(&e);
                // A server that closes the connection at the end of a recording says EOF.
                return Err(if s.contains("EOF") || s.contains("closed") { SourceError::Ended } else { SourceError::Broken(s) });
            }
            Ok(Some(Ok(item))) => item,
        };
        match item {
            CodecItem::VideoFrame(f) if f.stream_id() == self.video && self.is_jpeg() => {
                return Ok(Some(Bytes::from(f.into_data())));
            }
            CodecItem::VideoFrame(f) if f.stream_id() == self.video => {
                if f.has_new_parameters() || !remux.has_video() {
                    if let Some(ParametersRef::Video(p)) = self.demuxed.streams()[self.video].parameters() {
                        let cfg = video_config(self.video_codec(), p);
                        remux.set_video(cfg);
                    }
                }
                remux.video(f.is_random_access_point(), f.timestamp().elapsed(), f.data(), out);
            }
            CodecItem::AudioFrame(f) => {
                if let Some((_, clock)) = self.audio.filter(|(id, _)| *id == f.stream_id()) {
                    remux.audio(f.timestamp().elapsed(), clock, f.data(), out);
                }
            }
            _ => {}
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_come_out_of_the_url() {
        let (u, user, pw) = split_credentials("rtsp://ad%40min:p%3Aw@10.0.0.2:554/Streaming/Channels/101", "", "").unwrap();
        assert_eq!((u.as_str(), user.as_str(), pw.as_str()), ("rtsp://10.0.0.2:554/Streaming/Channels/101", "ad@min", "p:w"));
        let (u, user, pw) = split_credentials("rtsp://x:y@cam/live", "admin", "secret").unwrap();
        assert_eq!((u.as_str(), user.as_str(), pw.as_str()), ("rtsp://cam/live", "admin", "secret"));
        assert!(split_credentials("not a url", "", "").is_err());
    }
}
