//! The six calls of the original API, as `Call`, and the four on a play handle: BEATS keeps a
//! session alive, STOP ends it, POSITION seeks a playback, PTZControl moves the camera.

use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::oneshot;

use crate::onvif::Onvif;
use crate::service::{reply, Pusher, Reply};
use crate::session::{self, Command, Kind, Session, SessionState};
use crate::status::Status;
use crate::vendor::{NvrCategory, Ptz};
use crate::vendor_http::VendorError;
use crate::{dahua, isapi, request};

/// A call of the original API (clients exist: the names are theirs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// `POST /REAL_STREAM`: live video of a channel.
    RealStream,
    /// `POST /BACK_STREAM`: a recording of a channel between two times.
    BackStream,
    /// `/STREAM/{handle}/BEATS`: keeps the session; says how it is.
    Beats,
    /// `/STREAM/{handle}/STOP`.
    Stop,
    /// `/STREAM/{handle}/POSITION`: seeks a playback.
    Position,
    /// `/STREAM/{handle}/PTZControl`.
    PtzControl,
}

impl Call {
    pub fn name(self) -> &'static str {
        match self {
            Call::RealStream => "REAL_STREAM",
            Call::BackStream => "BACK_STREAM",
            Call::Beats => "BEATS",
            Call::Stop => "STOP",
            Call::Position => "POSITION",
            Call::PtzControl => "PTZControl",
        }
    }

    /// A call on a play handle, by the last segment of `/STREAM/{handle}/{call}`.
    pub fn on_handle(name: &str) -> Option<Self> {
        [Call::Beats, Call::Stop, Call::Position, Call::PtzControl].into_iter().find(|c| c.name() == name)
    }

    /// Where it is served.
    pub fn path(self, handle: Option<u64>) -> String {
        match handle {
            Some(h) => format!("/STREAM/{h}/{}", self.name()),
            None => format!("/{}", self.name()),
        }
    }
}

impl Pusher {
    /// Runs a call on a session held here.
    pub(crate) async fn call_here(&self, s: &Session, call: Call, v: &Value) -> Reply {
        match call {
            Call::Beats => self.beats(s),
            Call::Stop => {
                s.stop(Status::NoPlayHandle, session::STOPPED);
                // Answered once the RTMP publish and the RTSP session are closed.
                let _ = tokio::time::timeout(Duration::from_secs(5), s.finished.cancelled()).await;
                reply(Status::Ok, "OK")
            }
            Call::Position => self.position(s, v).await,
            Call::PtzControl => self.ptz(s, v).await,
            Call::RealStream | Call::BackStream => reply(Status::Parameter, "not a call on a play handle"),
        }
    }

    fn beats(&self, s: &Session) -> Reply {
        match s.state() {
            SessionState::Ended { status, reason } => reply(Status::from_code(status).unwrap_or(Status::LivePlay), &reason),
            state => {
                s.beat();
                let mut extra = json!({"play_handle": s.handle, "rtmp_url": s.rtmp_url});
                if let SessionState::Reconnecting { attempt, error } = state {
                    // Still alive: the caller keeps beating, and can see why there is no video.
                    extra["reconnecting"] = json!({"attempt": attempt, "error": error});
                }
                if let Some(p) = s.position() {
                    extra["pos_time"] = json!(p.to_string());
                }
                Status::Ok.reply("OK", extra)
            }
        }
    }

    async fn position(&self, s: &Session, v: &Value) -> Reply {
        let Kind::Playback { start, stop } = s.kind else {
            return reply(Status::PlayControl, "POSITION is for playback sessions (BACK_STREAM)");
        };
        let at = match request::position(v) {
            Ok(t) => t,
            Err(e) => return reply(Status::Parameter, &e.0),
        };
        if at < start || at >= stop {
            return reply(Status::Parameter, &format!("pos_time must be within {start} .. {stop}"));
        }
        if let SessionState::Reconnecting { error, .. } = s.state() {
            // The runner is busy reconnecting (it reopens at the position reached): say so
            // now rather than hold the call for the whole reconnect window.
            return reply(Status::PlayControl, &format!("the source is reconnecting ({error}); try again"));
        }
        let (tx, rx) = oneshot::channel();
        if s.commands.send(Command::Position(at, tx)).await.is_err() {
            return reply(Status::PlayControl, "the session is ending");
        }
        match rx.await {
            Ok(Ok(())) => {
                s.beat();
                reply(Status::Ok, "OK")
            }
            Ok(Err(e)) => reply(Status::PlayControl, &format!("reopening at {at}: {e}")),
            Err(_) => reply(Status::PlayControl, "the session ended"),
        }
    }

    async fn ptz(&self, s: &Session, v: &Value) -> Reply {
        let (command, duration) = match request::ptz(v) {
            Ok(x) => x,
            Err(e) => return reply(Status::Parameter, &e.0),
        };
        if s.kind != Kind::Live {
            return reply(Status::Ptz, "PTZ is for live sessions");
        }
        let Some(cmd) = Ptz::from_command(command) else { return reply(Status::Parameter, "command must be 0-13") };
        let http = self.vendor_http(&s.source);
        let duration = Duration::from_millis(u64::from(duration));
        let t = &s.source.target;
        let speed = self.cfg.ptz_speed.clamp(1, 100);
        let r = match t.category {
            NvrCategory::Hikvision => isapi::ptz(&http, cmd, t.channel, i32::from(speed), duration).await,
            // Dahua speeds are 1-8.
            NvrCategory::Dahua => dahua::ptz(&http, cmd, t.channel, (u16::from(speed) * 8).div_ceil(100) as u8, duration).await,
            NvrCategory::Onvif => match &s.source.onvif {
                Some(info) => {
                    let dev = Onvif { http: &http, user: &t.user, password: &t.password };
                    dev.ptz(info, cmd, f32::from(speed) / 100.0, duration).await
                }
                None => return reply(Status::Ptz, "no ONVIF profile known for this session"),
            },
            NvrCategory::RtspUrl => return reply(Status::Ptz, "PTZ needs nvr_category 0 (Hikvision), 1 (Dahua) or 3 (ONVIF)"),
        };
        s.beat();
        match r {
            Ok(()) => reply(Status::Ok, "OK"),
            Err(VendorError::Auth(m)) => reply(Status::NvrLogin, &m),
            Err(e) => reply(Status::Ptz, &e.to_string()),
        }
    }

    /// A session's view for the management API.
    pub fn view(s: &Session) -> Value {
        let stats = *s.stats.lock().unwrap_or_else(|e| e.into_inner());
        let t = &s.source.target;
        let mut v = json!({
            "play_handle": s.handle,
            "kind": if s.kind == Kind::Live { "live" } else { "playback" },
            "nvr_addr": t.addr, "nvr_channel": t.channel,
            "rtmp_url": s.rtmp_url,
            "started_ms": s.started_ms,
            "since_beat_ms": s.since_beat().as_millis() as u64,
            "reconnects": s.reconnects.load(Ordering::Relaxed),
            "video_frames": stats.video_frames, "audio_frames": stats.audio_frames, "bytes": stats.bytes,
        });
        if let (Value::Object(m), Ok(Value::Object(st))) = (&mut v, serde_json::to_value(s.state())) {
            m.extend(st);
        }
        if let Kind::Playback { start, stop } = s.kind {
            v["start_time"] = json!(start.to_string());
            v["stop_time"] = json!(stop.to_string());
        }
        if let Some(p) = s.position() {
            v["pos_time"] = json!(p.to_string());
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_six_calls_keep_the_original_names_and_paths() {
        let all = [Call::RealStream, Call::BackStream, Call::Beats, Call::Stop, Call::Position, Call::PtzControl];
        let names: Vec<&str> = all.iter().map(|c| c.name()).collect();
        assert_eq!(names, ["REAL_STREAM", "BACK_STREAM", "BEATS", "STOP", "POSITION", "PTZControl"]);
        assert_eq!(Call::RealStream.path(None), "/REAL_STREAM");
        assert_eq!(Call::PtzControl.path(Some(12681)), "/STREAM/12681/PTZControl");
        for c in &all[2..] {
            assert_eq!(Call::on_handle(c.name()), Some(*c));
        }
        assert_eq!(Call::on_handle("REAL_STREAM"), None, "not a call on a handle");
        assert_eq!(Call::on_handle("ptzcontrol"), None, "names are exact, as the clients send them");
    }
}
