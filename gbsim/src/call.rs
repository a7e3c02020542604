//! The camera's side of a media dialog: answer an INVITE (SDP answer, our SSRC echoed), stream
//! the clip to the offer's address once ACKed (UDP, or TCP in the direction `a=setup` asks),
//! stop on BYE or CANCEL, and optionally hang up by itself. Behaviour knobs (`SimConfig`)
//! make a camera refuse, stay silent or send nothing, for the failure tests.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use gb::sdp::{GbSdp, MediaTransport, Session};
use gb::sip::lite::LiteMessage;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::SimConfig;
use crate::device::token;
use crate::media::{self, Impairment, MediaSource, PlaybackEnd, SendControl, SendOptions, SendTransport, Steer};
use crate::stats::{inc, SimStats};
use crate::transport::Link;

/// Where a call stands on the camera.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallState {
    /// INVITE received, not answered (a silent camera, waiting to be cancelled).
    Ringing,
    /// 200 sent, waiting for the ACK.
    Answered,
    /// ACKed: media flowing (unless the camera is configured mute).
    Streaming,
}

struct SimCall {
    state: CallState,
    invite: LiteMessage,
    /// Our last final answer, sent again for a retransmitted INVITE.
    last_response: Option<Vec<u8>>,
    to_tag: String,
    transport: SendTransport,
    target: SocketAddr,
    ssrc: u32,
    listener: Option<TcpListener>,
    stop: CancellationToken,
    /// The channel the INVITE asked for (its request-URI user).
    channel: Option<String>,
    /// Where the stream starts, and the key-frame requests it is sent while it runs.
    control: Arc<SendControl>,
    /// A playback (`s=Playback`) or download (`s=Download`): its span in 90 kHz ticks, and what
    /// INFO tells it (a download starts at its `downloadspeed`).
    playback: Option<(u64, tokio::sync::watch::Sender<Steer>)>,
}

/// What a call tells its device after the fact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallEvent {
    /// A playback reached the end of its span: the device sends `MediaStatus` 121 (with the
    /// call's Call-ID, as cameras do) and keeps the dialog until the BYE.
    EndOfFile { call_id: String, channel: String },
}

/// The calls of one simulated device.
pub struct Calls {
    calls: HashMap<String, SimCall>,
    cfg: Arc<SimConfig>,
    media: Arc<MediaSource>,
    stats: Arc<SimStats>,
    device_id: String,
    /// Our address as written in Via/Contact.
    advertised: String,
    proto: &'static str,
    events: tokio::sync::mpsc::Sender<CallEvent>,
}

impl Calls {
    pub fn new(
        cfg: Arc<SimConfig>,
        media: Arc<MediaSource>,
        stats: Arc<SimStats>,
        device_id: String,
        advertised: String,
        proto: &'static str,
        events: tokio::sync::mpsc::Sender<CallEvent>,
    ) -> Self {
        Self { calls: HashMap::new(), cfg, media, stats, device_id, advertised, proto, events }
    }

    pub fn active(&self) -> usize {
        self.calls.len()
    }

    /// An `IFrameCmd` for `channel`: its streaming calls send a key frame next. Returns how many.
    pub fn request_key_frame(&self, channel: &str) -> usize {
        let mut n = 0;
        for c in self.calls.values().filter(|c| c.state == CallState::Streaming && c.channel.as_deref() == Some(channel)) {
            c.control.key_request.store(true, std::sync::atomic::Ordering::Relaxed);
            inc(&self.stats.key_frames_requested);
            n += 1;
        }
        n
    }

    /// Handles INVITE, ACK, BYE or CANCEL; false for any other method.
    pub async fn on_request(&mut self, m: &LiteMessage, link: &Link, shutdown: &CancellationToken) -> bool {
        // Calls the camera itself hung up are done.
        self.calls.retain(|_, c| !(c.state == CallState::Streaming && c.stop.is_cancelled()));
        let call_id = m.header("Call-ID").unwrap_or_default().to_owned();
        match m.method().unwrap_or_default() {
            "INVITE" => self.on_invite(m, call_id, link).await,
            "ACK" => self.on_ack(&call_id, link, shutdown),
            "BYE" => {
                let known = self.calls.remove(&call_id);
                let code = if known.is_some() { (200, "OK") } else { (481, "Call/Transaction Does Not Exist") };
                let _ = link.send(m.response(code.0, code.1, &token(), &[], None)).await;
                if let Some(c) = known {
                    inc(&self.stats.byes_received);
                    c.stop.cancel();
                }
            }
            "INFO" => {
                let answer = match self.calls.get(&call_id) {
                    None => (481, "Call/Transaction Does Not Exist"),
                    Some(c) => match (&c.playback, gb::mansrtsp::parse(&m.body)) {
                        (Some((span, steer)), Ok(ctl)) => {
                            steer_playback(steer, ctl.command, *span);
                            inc(&self.stats.playback_controls);
                            (200, "OK")
                        }
                        (None, _) => (405, "Method Not Allowed"),
                        (_, Err(_)) => (400, "Bad Request"),
                    },
                };
                let _ = link.send(m.response(answer.0, answer.1, &token(), &[], None)).await;
            }
            "CANCEL" => {
                let _ = link.send(m.response(200, "OK", &token(), &[], None)).await;
                if let Some(c) = self.calls.get(&call_id).filter(|c| c.state == CallState::Ringing) {
                    let _ = link.send(c.invite.response(487, "Request Terminated", &c.to_tag, &[], None)).await;
                    self.calls.remove(&call_id);
                    inc(&self.stats.invites_cancelled);
                }
            }
            _ => return false,
        }
        true
    }

    async fn on_invite(&mut self, m: &LiteMessage, call_id: String, link: &Link) {
        if let Some(c) = self.calls.get(&call_id) {
            // A retransmission: answer as before.
            if let Some(r) = &c.last_response {
                let _ = link.send(r.clone()).await;
            }
            return;
        }
        inc(&self.stats.invites);
        let to_tag = token();
        let offer = match GbSdp::parse(&String::from_utf8_lossy(&m.body)) {
            Ok(o) => o,
            Err(_) => {
                let _ = link.send(m.response(488, "Not Acceptable Here", &to_tag, &[], None)).await;
                return;
            }
        };
        if self.cfg.invite_refuse != 0 {
            let _ = link.send(m.response(self.cfg.invite_refuse, "Refused By Simulator", &to_tag, &[], None)).await;
            return;
        }
        let _ = link.send(m.response(100, "Trying", &to_tag, &[], None)).await;
        let target: SocketAddr = match format!("{}:{}", offer.ip, offer.media_port).parse() {
            Ok(t) => t,
            Err(_) => {
                let _ = link.send(m.response(488, "Not Acceptable Here", &to_tag, &[], None)).await;
                return;
            }
        };
        let ssrc = self.cfg.answer_ssrc.or_else(|| offer.ssrc.as_deref().and_then(|y| y.parse::<u32>().ok())).unwrap_or_else(rand::random);
        // The offer says what the media node does; we do the other half.
        let (transport, answer_transport, listener) = match offer.transport {
            MediaTransport::Udp => (SendTransport::Udp, MediaTransport::Udp, None),
            MediaTransport::TcpPassive => (SendTransport::TcpActive, MediaTransport::TcpActive, None),
            MediaTransport::TcpActive => {
                let bind = format!("{}:0", self.cfg.bind_ip);
                match TcpListener::bind(&bind).await {
                    Ok(l) => (SendTransport::TcpPassive, MediaTransport::TcpPassive, Some(l)),
                    Err(_) => {
                        let _ = link.send(m.response(500, "Server Internal Error", &to_tag, &[], None)).await;
                        return;
                    }
                }
            }
        };
        let port = listener.as_ref().and_then(|l| l.local_addr().ok()).map_or(0, |a| a.port());
        let channel = m.method().and(match &m.start {
            gb::sip::lite::StartLine::Request { uri, .. } => gb::sip::uri_user(uri).map(str::to_owned),
            _ => None,
        });
        // A playback's or download's span, 90 kHz ticks (a camera plays what it has of it); a
        // download goes at its `downloadspeed` from the start.
        let speed_milli = match offer.session {
            Session::Download => offer.download_speed.unwrap_or(1).clamp(1, 64) * 1000,
            _ => 1000,
        };
        let playback = (matches!(offer.session, Session::Playback | Session::Download) && offer.time.1 > offer.time.0).then(|| {
            let steer = Steer { scale_milli: speed_milli, ..Steer::default() };
            ((offer.time.1 - offer.time.0) * 90_000, tokio::sync::watch::channel(steer).0)
        });
        let answer = GbSdp {
            origin: channel.clone().unwrap_or_else(|| self.device_id.clone()),
            session: offer.session.clone(),
            uri: None,
            ip: self.cfg.nat_ip.clone().unwrap_or_else(|| self.cfg.bind_ip.clone()),
            time: (0, 0),
            media_port: port,
            transport: answer_transport,
            rtpmap: vec![(96, "PS".into())],
            direction: Some("sendonly".into()),
            ssrc: Some(if self.cfg.answer_ssrc.is_some() { format!("{ssrc:010}") } else { offer.ssrc.clone().unwrap_or_default() }),
            f: None,
            download_speed: None,
        };
        let mut call = SimCall {
            state: CallState::Ringing,
            invite: m.clone(),
            last_response: None,
            to_tag,
            transport,
            target,
            ssrc,
            listener,
            stop: CancellationToken::new(),
            channel,
            control: Arc::new(SendControl { start_frame: self.cfg.start_frame, ..Default::default() }),
            playback,
        };
        if !self.cfg.invite_silent {
            let contact = format!("<sip:{}@{}>", self.device_id, self.advertised);
            let body = answer.to_text();
            let ok = m.response(200, "OK", &call.to_tag, &[("Contact", contact)], Some(("APPLICATION/SDP", body.as_bytes())));
            let _ = link.send(ok.clone()).await;
            call.last_response = Some(ok);
            call.state = CallState::Answered;
        }
        self.calls.insert(call_id, call);
    }

    fn on_ack(&mut self, call_id: &str, link: &Link, shutdown: &CancellationToken) {
        let Some(c) = self.calls.get_mut(call_id).filter(|c| c.state == CallState::Answered) else { return };
        c.state = CallState::Streaming;
        let stop = shutdown.child_token();
        c.stop = stop.clone();
        if self.cfg.stream_media {
            inc(&self.stats.media_streams);
            let opts = SendOptions { transport: c.transport, target: c.target, ssrc: c.ssrc, loops: 0, impairment: Impairment::default() };
            let (src, listener, stop, stats) = (self.media.clone(), c.listener.take(), stop.clone(), self.stats.clone());
            match &c.playback {
                Some((span, steer)) => {
                    let (span, steer, events) = (*span, steer.subscribe(), self.events.clone());
                    let ended = CallEvent::EndOfFile { call_id: call_id.to_owned(), channel: c.channel.clone().unwrap_or_default() };
                    tokio::spawn(async move {
                        match media::send_playback(&src, opts, listener, steer, span, stop).await {
                            Ok((_, PlaybackEnd::EndOfFile)) => {
                                let _ = events.send(ended).await;
                            }
                            Ok((_, PlaybackEnd::Cancelled)) => {}
                            Err(e) => {
                                tracing::debug!(error = %e, "simulated camera's playback ended");
                                inc(&stats.media_errors);
                            }
                        }
                    });
                }
                None => {
                    let control = c.control.clone();
                    tokio::spawn(async move {
                        if let Err(e) = media::send_with(&src, opts, listener, &control, stop).await {
                            tracing::debug!(error = %e, "simulated camera's stream ended");
                            inc(&stats.media_errors);
                        }
                    });
                }
            }
        }
        if self.cfg.bye_after_secs > 0 {
            let bye = bye_bytes(self.proto, &self.advertised, c);
            let (link, after, stats) = (link.clone(), Duration::from_secs(self.cfg.bye_after_secs), self.stats.clone());
            tokio::spawn(async move {
                tokio::select! {
                    _ = stop.cancelled() => {}
                    _ = tokio::time::sleep(after) => {
                        stop.cancel();
                        inc(&stats.byes_sent);
                        let _ = link.send(bye).await;
                    }
                }
            });
        }
    }
}

/// Passes a MANSRTSP command to a playback's sender: pause, resume, speed, seek (the target
/// kept within the span).
fn steer_playback(steer: &tokio::sync::watch::Sender<Steer>, command: gb::mansrtsp::Command, span: u64) {
    use gb::mansrtsp::{Command, From};
    steer.send_modify(|s| match command {
        Command::Pause => s.paused = true,
        Command::Teardown => {}
        Command::Play { range, scale } => {
            if let Some(scale) = scale {
                s.scale_milli = (scale * 1000.0).round().clamp(1.0, 64_000.0) as u32;
            }
            match range {
                Some(From::Secs(t)) => {
                    s.seek = (s.seek.0 + 1, ((t * 90_000.0) as u64).min(span));
                    s.paused = false;
                }
                Some(From::Now) | None if scale.is_none() => s.paused = false,
                _ => {}
            }
        }
    });
}

/// Our BYE for a call: From/To swapped from the INVITE, to the server's Contact.
fn bye_bytes(proto: &str, advertised: &str, c: &SimCall) -> Vec<u8> {
    {
        let inv = &c.invite;
        let to = inv.header("From").unwrap_or_default();
        let from = inv.header("To").unwrap_or_default();
        let uri = inv.header("Contact").and_then(|v| v.split('<').nth(1)).and_then(|v| v.split('>').next()).unwrap_or("sip:server");
        format!(
            "BYE {uri} SIP/2.0\r\nVia: SIP/2.0/{} {};rport;branch=z9hG4bK{}\r\nFrom: {from};tag={}\r\nTo: {to}\r\nCall-ID: {}\r\n\
             CSeq: 2 BYE\r\nMax-Forwards: 70\r\nUser-Agent: gbsim\r\nContent-Length: 0\r\n\r\n",
            proto,
            advertised,
            token(),
            c.to_tag,
            inv.header("Call-ID").unwrap_or_default(),
        )
        .into_bytes()
    }
}
