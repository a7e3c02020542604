//! Starting and ending a play on this node: the request checked, the channel's ONVIF profile
//! or recordings looked up, a play handle taken (its row in `nvr_sessions`), the session's
//! runner spawned; its end releases the row and the load unit.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::calls::Call;
use crate::isapi::RecordFile;
use crate::onvif::{self, Onvif};
use crate::service::{now_ms, reply, Pusher, Reply, SessionRow, POOL, SESSIONS};
use crate::session::{self, Kind, Session, SessionState, Source};
use crate::status::{Failure, Status};
use crate::vendor::{LocalTime, NvrCategory};
use crate::vendor_http::{VendorError, VendorHttp};
use crate::{dahua, isapi, metrics, request};

impl Pusher {
    /// A new play (`call`: REAL_STREAM or BACK_STREAM): validated here, then taken by the
    /// least-loaded node.
    pub async fn play(self: &Arc<Self>, call: Call, body: &[u8], forwarded: bool) -> Reply {
        let v: Value = match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => return reply(Status::Parameter, &format!("the body is not JSON: {e}")),
        };
        let parsed = if call == Call::BackStream {
            request::back_stream(&v).map(|(t, s, e)| (t, Some((s, e))))
        } else {
            request::real_stream(&v).map(|t| (t, None))
        };
        let (target, range) = match parsed {
            Ok(x) => x,
            Err(e) => return reply(Status::Parameter, &e.0),
        };
        if range.is_some() && matches!(target.category, NvrCategory::RtspUrl | NvrCategory::Onvif) {
            return reply(Status::Parameter, "BACK_STREAM needs nvr_category 0 (Hikvision) or 1 (Dahua)");
        }
        let port = |name: &str| v[name].as_u64().and_then(|p| u16::try_from(p).ok()).filter(|p| *p > 0);
        let rtsp_port_given = port("rtsp_port");
        let mut source = Source {
            target,
            rtsp_port: rtsp_port_given.unwrap_or(self.cfg.rtsp_port),
            http_port: port("http_port").unwrap_or(self.cfg.http_port),
            onvif: None,
        };
        if !forwarded {
            if let Err(answered) = self.route_play(call, body, range.is_some()).await {
                return answered;
            }
        }
        if source.target.category == NvrCategory::Onvif {
            if let Err(e) = self.resolve_onvif(&mut source, rtsp_port_given).await {
                metrics::PLAY_FAILURES.inc();
                let _ = self.store.release_load(POOL, &self.node).await;
                return e.reply();
            }
        }
        let (r, spawned) = self.start(source, range).await;
        if !spawned {
            let _ = self.store.release_load(POOL, &self.node).await;
        }
        r
    }

    async fn new_handle(&self, row: &SessionRow) -> Result<u64, Failure> {
        for _ in 0..16 {
            let h = rand::random_range(10_000..i32::MAX as u64);
            if SESSIONS.insert(self.store.as_ref(), &h.to_string(), row).await? {
                return Ok(h);
            }
        }
        Err(Failure::new(Status::LivePlay, "no free play handle"))
    }

    pub(crate) fn vendor_http(&self, source: &Source) -> VendorHttp {
        let t = &source.target;
        VendorHttp::new(&t.addr, source.http_port, &t.user, &t.password, Duration::from_secs(self.cfg.http_timeout_secs.max(1)))
    }

    /// ONVIF: asks the device's media service for the live URI of the channel's profile.
    async fn resolve_onvif(&self, source: &mut Source, rtsp_port: Option<u16>) -> Result<(), Failure> {
        let http = self.vendor_http(source);
        let t = &source.target;
        let dev = Onvif { http: &http, user: &t.user, password: &t.password };
        let info = dev.live(t.channel).await.map_err(|e| match e {
            VendorError::Auth(m) => Failure::new(Status::NvrLogin, format!("ONVIF: {m}")),
            other => Failure::new(Status::LivePlay, format!("ONVIF: {other}")),
        })?;
        source.target.rtsp_url = Some(onvif::reachable_uri(&info.uri, &t.addr, rtsp_port));
        source.onvif = Some(info);
        Ok(())
    }

    async fn search(&self, source: &Source, start: &LocalTime, end: &LocalTime) -> Result<Vec<RecordFile>, Failure> {
        let http = self.vendor_http(source);
        let t = &source.target;
        let found = match t.category {
            NvrCategory::Hikvision => isapi::search(&http, t.channel, start, end).await,
            NvrCategory::Dahua => dahua::search(&http, t.channel, start, end).await,
            NvrCategory::RtspUrl | NvrCategory::Onvif => {
                return Err(Failure::new(Status::Parameter, "record search needs nvr_category 0 or 1"))
            }
        };
        found.map_err(|e| match e {
            VendorError::Auth(m) => Failure::new(Status::NvrLogin, m),
            other => Failure::new(Status::Playback, format!("record search: {other}")),
        })
    }

    async fn start(self: &Arc<Self>, source: Source, range: Option<(LocalTime, LocalTime)>) -> (Reply, bool) {
        metrics::PLAYS.inc();
        let (kind, files) = match range {
            None => (Kind::Live, None),
            Some((start, end)) => {
                let files = match self.search(&source, &start, &end).await {
                    Ok(f) => f,
                    Err(e) => {
                        metrics::PLAY_FAILURES.inc();
                        return (e.reply(), false);
                    }
                };
                let (Some(first), Some(last)) = (files.iter().map(|f| f.start).min(), files.iter().map(|f| f.stop).max()) else {
                    metrics::PLAY_FAILURES.inc();
                    let m = format!("no recording of channel {} between {start} and {end}", source.target.channel);
                    return (reply(Status::NoRecording, &m), false);
                };
                (Kind::Playback { start: start.max(first), stop: end.min(last) }, Some(files))
            }
        };
        let row = SessionRow {
            node: self.node.clone(),
            instance: self.instance.clone(),
            kind: if kind == Kind::Live { "live".into() } else { "playback".into() },
            rtmp_url: String::new(),
            started_ms: now_ms(),
        };
        let handle = match self.new_handle(&row).await {
            Ok(h) => h,
            Err(e) => return (e.reply(), false),
        };
        let name = self.cfg.stream_name.replace("{handle}", &handle.to_string());
        let push = format!("{}/{name}", self.cfg.rtmp_target.trim_end_matches('/'));
        let public = if self.cfg.rtmp_public.is_empty() { &self.cfg.rtmp_target } else { &self.cfg.rtmp_public };
        let rtmp_url = format!("{}/{name}", public.trim_end_matches('/'));
        let (tx, rx) = mpsc::channel(4);
        let s = Arc::new(Session {
            handle,
            kind,
            source,
            rtmp_push_url: push,
            rtmp_url: rtmp_url.clone(),
            started_ms: row.started_ms,
            last_beat: Mutex::new(Instant::now()),
            state: Mutex::new(SessionState::Starting),
            stats: Mutex::new(Default::default()),
            position_secs: AtomicU64::new(0),
            cancel: self.shutdown.child_token(),
            cancel_reason: Mutex::new(None),
            finished: CancellationToken::new(),
            reconnects: AtomicU64::new(0),
            commands: tx,
        });
        let row = SessionRow { rtmp_url: rtmp_url.clone(), ..row };
        if let Err(e) = SESSIONS.put(self.store.as_ref(), &handle.to_string(), &row).await {
            // The handle is taken (its first row); only the RTMP URL in it is missing.
            tracing::warn!(handle, error = %e, "writing the session's row failed");
        }
        self.lock().insert(handle, s.clone());
        let (ready_tx, ready_rx) = oneshot::channel();
        let this = self.clone();
        let task_session = s.clone();
        tokio::spawn(async move {
            let (status, reason) = session::run(task_session.clone(), this.cfg.clone(), rx, ready_tx).await;
            this.finish(&task_session, status, reason).await;
        });
        let r = match ready_rx.await {
            Ok(Ok(info)) => {
                tracing::info!(handle, video = %info.video, audio = ?info.audio, rtmp = %rtmp_url, "playing");
                let mut extra = json!({"rtmp_url": rtmp_url, "play_handle": handle});
                if let (Kind::Playback { start, stop }, Some(files)) = (kind, files) {
                    extra["start_time"] = json!(start.to_string());
                    extra["stop_time"] = json!(stop.to_string());
                    extra["record_files"] = files
                        .iter()
                        .map(|f| {
                            json!({"file_name": f.file_name, "file_size": f.file_size,
                               "start_time": f.start.to_string(), "stop_time": f.stop.to_string()})
                        })
                        .collect();
                }
                Status::Ok.reply("OK", extra)
            }
            Ok(Err(e)) => {
                metrics::PLAY_FAILURES.inc();
                e.reply()
            }
            Err(_) => reply(Status::LivePlay, "the session ended before it started"),
        };
        // The runner was spawned: its end (`finish`) releases the load unit, whatever happened.
        (r, true)
    }

    /// The runner ended: out of the map, reason kept for BEATS, row and load unit released.
    async fn finish(&self, s: &Arc<Session>, status: Status, reason: String) {
        tracing::info!(handle = s.handle, status = status.code(), %reason, "session ended");
        self.lock().remove(&s.handle);
        let stopped = s.cancel_reason.lock().unwrap_or_else(|e| e.into_inner()).as_ref().is_some_and(|(_, r)| r == session::STOPPED);
        if stopped {
            let _ = self.store.table_take(SESSIONS.name(), &s.handle.to_string()).await;
        } else {
            self.ended.lock().unwrap_or_else(|e| e.into_inner()).insert(s.handle, (Instant::now(), status, reason));
        }
        let _ = self.store.release_load(POOL, &self.node).await;
        s.finished.cancel();
    }
}
