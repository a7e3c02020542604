//! The camera's media half: a real H.264/H.265 (+ AAC or G.711) file muxed as GB PS (our
//! muxer: ffmpeg writes no PSM) and sent as RTP — PT 96, 90 kHz, marker on a frame's last
//! packet — over UDP, TCP active (we connect) or TCP passive (we listen), in a loop at real time.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use media::es::{Codec, EsFrame};
use media::ps_mux::PsMuxer;
use media::rtp::RtpPacket;
use media::{codec::aac, AccessUnitBuilder, MediaEvent};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio_util::sync::CancellationToken;

/// RTP payload size per packet (fits a 1500-byte MTU with headers).
const MAX_PAYLOAD: usize = 1400;
const PT_PS: u8 = 96;

#[derive(Debug, Clone)]
pub struct SourceFrame {
    pub video: bool,
    pub key: bool,
    /// 90 kHz from the start of the file.
    pub pts: u64,
    pub data: Bytes,
}

/// A media file loaded into memory as frames in sending order.
#[derive(Debug, Clone)]
pub struct MediaSource {
    pub video_codec: Codec,
    pub audio_codec: Option<Codec>,
    pub frames: Vec<SourceFrame>,
    /// Length of one loop, 90 kHz.
    pub duration: u64,
    pub video_frames: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("reading {0}: {1}")]
    Read(String, std::io::Error),
    #[error("{0}: no decodable video (needs parameter sets and a key frame)")]
    NoVideo(String),
}

impl MediaSource {
    /// Loads an Annex B file (codec from the extension: .h265/.hevc or H.264) at `fps`, and
    /// optionally an ADTS `.aac` or raw `.alaw`/`.ulaw` (8 kHz mono) file beside it.
    pub fn load(video: &Path, fps: f64, audio: Option<&Path>) -> Result<Self, MediaError> {
        let name = video.display().to_string();
        let bytes = std::fs::read(video).map_err(|e| MediaError::Read(name.clone(), e))?;
        let ext = video.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
        let video_codec = if matches!(ext.as_str(), "h265" | "hevc" | "265") { Codec::H265 } else { Codec::H264 };
        let audio = match audio {
            Some(path) => {
                let data = std::fs::read(path).map_err(|e| MediaError::Read(path.display().to_string(), e))?;
                let aext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
                let codec = match aext.as_str() {
                    "alaw" | "pcma" => Codec::G711A,
                    "ulaw" | "pcmu" => Codec::G711U,
                    _ => Codec::Aac,
                };
                Some((Bytes::from(data), codec))
            }
            None => None,
        };
        Self::from_bytes(&name, bytes, video_codec, fps, audio)
    }

    /// The clip built into the simulator: 4 s of 640x360 H.264 at 25 fps (a key frame every
    /// second) with AAC, so `gbcluster all --demo` needs no files.
    pub fn demo() -> Self {
        static VIDEO: &[u8] = include_bytes!("../assets/demo.h264");
        static AUDIO: &[u8] = include_bytes!("../assets/demo.aac");
        Self::from_bytes("demo.h264", VIDEO.to_vec(), Codec::H264, 25.0, Some((Bytes::from_static(AUDIO), Codec::Aac)))
            .unwrap_or_else(|e| unreachable!("the built-in clip is valid: {e}"))
    }

    /// Frames from an Annex B elementary stream and optional audio: ADTS AAC, or raw G.711.
    pub fn from_bytes(name: &str, bytes: Vec<u8>, video_codec: Codec, fps: f64, audio: Option<(Bytes, Codec)>) -> Result<Self, MediaError> {
        let name = name.to_owned();
        let ticks = (90_000.0 / fps).round() as u64;
        let mut b = AccessUnitBuilder::with_frame_ticks(ticks);
        let mut events = Vec::new();
        b.push(EsFrame { stream_id: 0xE0, codec: video_codec, pts: Some(0), dts: None, data: bytes }, &mut events);
        let mut frames: Vec<SourceFrame> = events
            .into_iter()
            .filter_map(|e| match e {
                MediaEvent::Frame(f) => Some(SourceFrame { video: true, key: f.key, pts: f.pts, data: f.data }),
                _ => None,
            })
            .collect();
        let video_frames = frames.len();
        if video_frames == 0 {
            return Err(MediaError::NoVideo(name));
        }
        let duration = video_frames as u64 * ticks;
        let mut audio_codec = None;
        if let Some((data, codec)) = audio {
            let mut pts = 0u64;
            audio_codec = Some(codec);
            match codec {
                Codec::G711A | Codec::G711U => {
                    // 20 ms packets.
                    for chunk in (0..data.len()).step_by(160) {
                        if pts >= duration {
                            break;
                        }
                        frames.push(SourceFrame { video: false, key: true, pts, data: data.slice(chunk..(chunk + 160).min(data.len())) });
                        pts += 160 * 90_000 / 8000;
                    }
                }
                _ => {
                    let mut pos = 0;
                    for (h, raw) in aac::frames(&data) {
                        if pts >= duration {
                            break;
                        }
                        // Keep the ADTS header: PS carries AAC as ADTS.
                        let whole = pos..raw.end;
                        pos = raw.end;
                        frames.push(SourceFrame { video: false, key: true, pts, data: data.slice(whole) });
                        pts += 1024 * 90_000 / u64::from(h.sample_rate());
                    }
                }
            }
            frames.sort_by_key(|f| (f.pts, !f.video));
        }
        Ok(Self { video_codec, audio_codec, frames, duration, video_frames })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SendTransport {
    Udp,
    /// We connect to the receiver (the receiver is "tcp-passive").
    TcpActive,
    /// We listen; the receiver connects (the receiver is "tcp-active").
    TcpPassive,
}

/// RTP packetiser: one PS-muxed frame in, RTP packets out (marker on the last).
pub struct PsRtpPacketizer {
    mux: PsMuxer,
    ps: Vec<u8>,
    seq: u16,
    ssrc: u32,
    tcp: bool,
}

impl PsRtpPacketizer {
    pub fn new(video: Codec, audio: Option<Codec>, ssrc: u32, tcp: bool) -> Self {
        Self { mux: PsMuxer::new(video, audio), ps: Vec::new(), seq: rand::random(), ssrc, tcp }
    }

    /// Appends the frame's packets to `out` (each prefixed with its RFC 4571 length over TCP)
    /// and returns how many packets.
    pub fn packetize(&mut self, f: &SourceFrame, pts: u64, out: &mut Vec<u8>) -> usize {
        self.ps.clear();
        if f.video {
            self.mux.video(&f.data, pts, None, f.key, &mut self.ps);
        } else {
            self.mux.audio(&f.data, pts, &mut self.ps);
        }
        let n = self.ps.len().div_ceil(MAX_PAYLOAD);
        for (i, chunk) in self.ps.chunks(MAX_PAYLOAD).enumerate() {
            if self.tcp {
                out.extend_from_slice(&((12 + chunk.len()) as u16).to_be_bytes());
            }
            RtpPacket::write_header(out, PT_PS, i + 1 == n, self.seq, pts as u32, self.ssrc);
            out.extend_from_slice(chunk);
            self.seq = self.seq.wrapping_add(1);
        }
        n
    }
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct SendStats {
    pub frames: u64,
    pub video_frames: u64,
    pub packets: u64,
    pub bytes: u64,
    pub loops: u64,
}

/// Test knobs: drop or swap packets to exercise the receiver's loss and reorder handling.
#[derive(Debug, Clone, Copy, Default)]
pub struct Impairment {
    /// Probability a packet is dropped.
    pub loss: f64,
    /// Probability a packet is held back and sent after the next one.
    pub reorder: f64,
    /// Seed of the dice, so a test's losses are the same every run (`None`: a random seed).
    pub seed: Option<u64>,
}

/// SplitMix64: the impairment's dice, reproducible from a seed.
struct Dice(u64);

impl Dice {
    /// A uniform value in [0, 1).
    fn roll(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

pub struct SendOptions {
    pub transport: SendTransport,
    /// UDP / TCP active: the receiver. TCP passive: where we listen.
    pub target: SocketAddr,
    pub ssrc: u32,
    /// Stop after this many loops of the file (0: until cancelled).
    pub loops: u64,
    pub impairment: Impairment,
}

/// What a camera is told while it streams, and where in the clip it starts.
#[derive(Debug, Default)]
pub struct SendControl {
    /// Start at this video frame of the clip (a camera's encoder is somewhere in its GOP when
    /// the call comes; 0 is the first key frame).
    pub start_frame: usize,
    /// Set by an `IFrameCmd`: the next video frame sent is a key frame. A file-fed camera cannot
    /// re-encode, so it skips to the clip's next key frame at once.
    pub key_request: std::sync::atomic::AtomicBool,
}

impl SendControl {
    /// Index in `src.frames` of the `n`-th video frame (wrapping), or 0.
    fn first_index(src: &MediaSource, n: usize) -> usize {
        let n = n % src.video_frames.max(1);
        src.frames.iter().enumerate().filter(|(_, f)| f.video).nth(n).map_or(0, |(i, _)| i)
    }

    /// The index of the next key video frame after `i` in this loop of the clip.
    fn next_key(src: &MediaSource, i: usize) -> Option<usize> {
        src.frames.iter().enumerate().skip(i + 1).find(|(_, f)| f.video && f.key).map(|(j, _)| j)
    }
}

/// Streams `src` until the loops are done or `cancel` fires.
pub async fn send(src: &MediaSource, opts: SendOptions, cancel: CancellationToken) -> std::io::Result<SendStats> {
    send_with(src, opts, None, &SendControl::default(), cancel).await
}

/// `send`, TCP passive listening on `listener` when given (bound earlier, so its port could go
/// into an SDP answer) instead of binding `opts.target`, and steered by `control`.
pub async fn send_with(
    src: &MediaSource,
    opts: SendOptions,
    listener: Option<TcpListener>,
    control: &SendControl,
    cancel: CancellationToken,
) -> std::io::Result<SendStats> {
    let tcp = opts.transport != SendTransport::Udp;
    let mut pk = PsRtpPacketizer::new(src.video_codec, src.audio_codec, opts.ssrc, tcp);
    let Some(mut sink) = Sink::open(&opts, listener, &cancel).await? else { return Ok(SendStats::default()) };
    let mut stats = SendStats::default();
    let mut buf = Vec::with_capacity(256 * 1024);
    let mut i = SendControl::first_index(src, control.start_frame);
    let skipped = src.frames.get(i).map_or(0, |f| f.pts);
    // Frame `i` is due now: the clock starts where the clip is entered.
    let mut start = Instant::now().checked_sub(Duration::from_micros(skipped * 1000 / 90)).unwrap_or_else(Instant::now);
    let mut loop_no = 0u64;
    loop {
        let Some(f) = src.frames.get(i) else {
            loop_no += 1;
            stats.loops = loop_no;
            if opts.loops > 0 && loop_no >= opts.loops {
                break;
            }
            i = 0;
            continue;
        };
        if f.video && control.key_request.swap(false, std::sync::atomic::Ordering::Relaxed) && !f.key {
            if let Some(j) = SendControl::next_key(src, i) {
                // The key frame goes out now; time runs on from its timestamp (forward only).
                let skip = Duration::from_micros((src.frames[j].pts - f.pts) * 1000 / 90);
                start = start.checked_sub(skip).unwrap_or(start);
                i = j;
                continue;
            }
        }
        i += 1;
        let pts = loop_no * src.duration + f.pts;
        let due = start + Duration::from_micros(pts * 1000 / 90);
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep_until(due.into()) => {}
        }
        send_frame(&mut pk, f, pts, &mut buf, &mut stats, &mut sink).await?;
    }
    sink.finish().await;
    Ok(stats)
}

/// One frame at `pts` packetized into `buf` and sent, counted in `stats`.
async fn send_frame(
    pk: &mut PsRtpPacketizer,
    f: &SourceFrame,
    pts: u64,
    buf: &mut Vec<u8>,
    stats: &mut SendStats,
    sink: &mut Sink,
) -> std::io::Result<()> {
    buf.clear();
    stats.packets += pk.packetize(f, pts, buf) as u64;
    stats.bytes += buf.len() as u64;
    stats.frames += 1;
    stats.video_frames += u64::from(f.video);
    sink.send(buf).await
}

/// Where the packets go: a connected UDP socket (with the test impairments) or a TCP stream.
struct Sink {
    out: Out,
    impairment: Impairment,
    dice: Dice,
    /// A packet held back to be sent after the next (reordering).
    held: Option<Vec<u8>>,
}

enum Out {
    Udp(UdpSocket),
    Tcp(TcpStream),
}

impl Sink {
    /// Connects (UDP, TCP active) or accepts (TCP passive, on `listener` when given); `None`
    /// when cancelled first.
    async fn open(opts: &SendOptions, listener: Option<TcpListener>, cancel: &CancellationToken) -> std::io::Result<Option<Sink>> {
        let out = match opts.transport {
            SendTransport::Udp => {
                let bind: SocketAddr = if opts.target.is_ipv4() {
                    "0.0.0.0:0".parse().unwrap_or_else(|_| unreachable!())
                } else {
                    "[::]:0".parse().unwrap_or_else(|_| unreachable!())
                };
                let s = UdpSocket::bind(bind).await?;
                s.connect(opts.target).await?;
                Out::Udp(s)
            }
            SendTransport::TcpActive => Out::Tcp(TcpStream::connect(opts.target).await?),
            SendTransport::TcpPassive => {
                let l = match listener {
                    Some(l) => l,
                    None => TcpListener::bind(opts.target).await?,
                };
                let (s, _) = tokio::select! {
                    _ = cancel.cancelled() => return Ok(None),
                    r = l.accept() => r?,
                };
                Out::Tcp(s)
            }
        };
        if let Out::Tcp(s) = &out {
            s.set_nodelay(true)?;
        }
        let dice = Dice(opts.impairment.seed.unwrap_or_else(rand::random));
        Ok(Some(Sink { out, impairment: opts.impairment, dice, held: None }))
    }

    /// One frame's packets, laid end to end by `PsRtpPacketizer::packetize`.
    async fn send(&mut self, buf: &[u8]) -> std::io::Result<()> {
        match &mut self.out {
            Out::Tcp(s) => s.write_all(buf).await?,
            Out::Udp(s) => {
                // Walk the packets back out of the buffer (UDP keeps datagram boundaries).
                let mut pos = 0;
                for chunk_len in packet_lengths(buf) {
                    let pkt = &buf[pos..pos + chunk_len];
                    pos += chunk_len;
                    let imp = self.impairment;
                    if imp.loss > 0.0 && self.dice.roll() < imp.loss {
                        continue;
                    }
                    if imp.reorder > 0.0 && self.held.is_none() && self.dice.roll() < imp.reorder {
                        self.held = Some(pkt.to_vec());
                        continue;
                    }
                    let _ = s.send(pkt).await;
                    if let Some(h) = self.held.take() {
                        let _ = s.send(&h).await;
                    }
                }
            }
        }
        Ok(())
    }

    async fn finish(self) {
        if let (Out::Udp(s), Some(h)) = (&self.out, self.held) {
            let _ = s.send(&h).await;
        }
    }
}

/// What a playback is told while it runs (MANSRTSP over INFO), as the call passes it on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Steer {
    pub paused: bool,
    /// Speed in thousandths (1000 = 1×).
    pub scale_milli: u32,
    /// The latest seek: (its number, the target in 90 kHz ticks from the span's start).
    pub seek: (u64, u64),
}

impl Default for Steer {
    fn default() -> Self {
        Self { paused: false, scale_milli: 1000, seek: (0, 0) }
    }
}

/// How a playback's stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaybackEnd {
    /// The span was played to its end: the camera says so (`MediaStatus` 121).
    EndOfFile,
    Cancelled,
}

/// Plays a recording of `span` ticks as a camera does: the clip stands for the recording
/// (its position `p` is the clip at `p` mod its length), timestamps are the position from the
/// span's start, frames go out at `scale` times real time, nothing while paused, and a seek
/// starts again at the key frame at or before its target.
pub async fn send_playback(
    src: &MediaSource,
    opts: SendOptions,
    listener: Option<TcpListener>,
    mut steer: tokio::sync::watch::Receiver<Steer>,
    span: u64,
    cancel: CancellationToken,
) -> std::io::Result<(SendStats, PlaybackEnd)> {
    let tcp = opts.transport != SendTransport::Udp;
    let mut pk = PsRtpPacketizer::new(src.video_codec, src.audio_codec, opts.ssrc, tcp);
    let Some(mut sink) = Sink::open(&opts, listener, &cancel).await? else { return Ok((SendStats::default(), PlaybackEnd::Cancelled)) };
    let mut stats = SendStats::default();
    let mut buf = Vec::with_capacity(256 * 1024);
    let duration = src.duration.max(1);
    let (mut lap, mut i) = (0u64, 0usize);
    let mut seen = Steer::default();
    let mut anchor = (Instant::now(), 0u64);
    let end = loop {
        let Some(f) = src.frames.get(i) else {
            lap += 1;
            i = 0;
            continue;
        };
        let pos = lap * duration + f.pts;
        let now = Instant::now();
        let asked = *steer.borrow_and_update();
        if asked.seek.0 != seen.seek.0 {
            // Back to the key frame at or before the target.
            let target = asked.seek.1.min(span.saturating_sub(1));
            lap = target / duration;
            let within = target % duration;
            i = src.frames.iter().enumerate().filter(|(_, f)| f.video && f.key && f.pts <= within).map(|(j, _)| j).last().unwrap_or(0);
            seen = asked;
            anchor = (now, lap * duration + src.frames.get(i).map_or(0, |f| f.pts));
            continue;
        }
        if asked.scale_milli != seen.scale_milli || asked.paused != seen.paused {
            // Time runs on from here at the new speed (or from here after a pause).
            anchor = (now, pos);
            seen = asked;
        }
        if seen.paused {
            tokio::select! {
                _ = cancel.cancelled() => break PlaybackEnd::Cancelled,
                r = steer.changed() => if r.is_err() { break PlaybackEnd::Cancelled },
            }
            continue;
        }
        if pos >= span {
            break PlaybackEnd::EndOfFile;
        }
        let due = anchor.0 + Duration::from_micros((pos - anchor.1) * 1000 / 90 * 1000 / u64::from(seen.scale_milli.max(1)));
        tokio::select! {
            _ = cancel.cancelled() => break PlaybackEnd::Cancelled,
            r = steer.changed() => {
                if r.is_err() { break PlaybackEnd::Cancelled }
                continue;
            }
            _ = tokio::time::sleep_until(due.into()) => {}
        }
        send_frame(&mut pk, f, pos, &mut buf, &mut stats, &mut sink).await?;
        i += 1;
    };
    sink.finish().await;
    Ok((stats, end))
}

/// Lengths of the RTP packets laid end to end by `packetize` (UDP form): every packet but the
/// last is 12 + MAX_PAYLOAD bytes.
fn packet_lengths(buf: &[u8]) -> impl Iterator<Item = usize> {
    let full = 12 + MAX_PAYLOAD;
    let n = buf.len().div_ceil(full);
    let last = buf.len() - (n.saturating_sub(1)) * full;
    (0..n).map(move |i| if i + 1 == n { last } else { full })
}

/// Opens a receiver on a stream-server through its API (plain HTTP/1.1; the simulator needs no
/// HTTP client library for one call) and returns where to send. For a tcp-passive sender the
/// receiver is tcp-active and is told our listening address.
pub async fn open_receiver(api: &str, stream_id: &str, ssrc: u32, transport: SendTransport) -> std::io::Result<SocketAddr> {
    use tokio::io::AsyncReadExt;
    let bad = |m: String| std::io::Error::new(std::io::ErrorKind::InvalidData, m);
    let hostport = api.trim_start_matches("http://").trim_end_matches('/');
    let (recv_transport, peer) = match transport {
        SendTransport::Udp => ("udp", None),
        SendTransport::TcpActive => ("tcp-passive", None),
        SendTransport::TcpPassive => {
            // Reserve a local port to listen on.
            let l = std::net::TcpListener::bind("127.0.0.1:0")?;
            let a = l.local_addr()?;
            drop(l);
            ("tcp-active", Some(a))
        }
    };
    let mut body = serde_json::json!({"stream_id": stream_id, "ssrc": ssrc, "transport": recv_transport});
    if let Some(p) = peer {
        body["peer"] = serde_json::Value::String(p.to_string());
    }
    let body = body.to_string();
    let req = format!(
        "POST /api/v1/receivers HTTP/1.1\r\nHost: {hostport}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut s = TcpStream::connect(hostport).await?;
    s.write_all(req.as_bytes()).await?;
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).await?;
    let text = String::from_utf8_lossy(&resp);
    let (head, json) = text.split_once("\r\n\r\n").ok_or_else(|| bad("bad HTTP response".into()))?;
    if !head.starts_with("HTTP/1.1 200") {
        return Err(bad(format!("open {stream_id}: {head} {json}")));
    }
    let v: serde_json::Value = serde_json::from_str(json).map_err(|e| bad(e.to_string()))?;
    match peer {
        Some(p) => Ok(p),
        None => {
            let ip = v["ip"].as_str().ok_or_else(|| bad("no ip in answer".into()))?;
            let port = v["port"].as_u64().ok_or_else(|| bad("no port in answer".into()))?;
            format!("{ip}:{port}").parse().map_err(|_| bad("bad ip/port in answer".into()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Dice;

    #[test]
    fn seeded_dice_repeat_and_stay_in_range() {
        let (mut a, mut b) = (Dice(28181), Dice(28181));
        let rolls: Vec<f64> = (0..1000).map(|_| a.roll()).collect();
        assert!(rolls.iter().all(|r| (0.0..1.0).contains(r)));
        assert!(rolls.iter().zip((0..1000).map(|_| b.roll())).all(|(x, y)| *x == y), "same seed, same rolls");
        // Roughly uniform: 2 % of 10,000 rolls is 200 give or take a few dozen.
        let low = (0..10_000).filter(|_| a.roll() < 0.02).count();
        assert!((120..=280).contains(&low), "{low}");
    }
}
