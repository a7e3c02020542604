//! One simulated GB28181 device: registers with digest auth, keeps alive, re-registers before
//! expiry or when told it is unknown, and answers Catalog / DeviceInfo / DeviceStatus.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use gb::manscdp::{self, build, Body, Message};
use gb::model::{Channel, DeviceInfo};
use gb::sip::digest::{Algorithm, Challenge};
use gb::sip::lite::LiteMessage;
use tokio::sync::mpsc;
use tokio::time::{sleep_until, Instant};
use tokio_util::sync::CancellationToken;

use crate::config::SimConfig;
use crate::stats::{inc, SimStats};
use crate::transport::Link;

/// Where the device stands with the registrar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegState {
    /// Not registered; try at `retry_at`.
    Unregistered { retry_at: Instant, failures: u32 },
    /// Registered until `expires_at`; refresh at `refresh_at`.
    Registered { refresh_at: Instant, expires_at: Instant },
}

pub struct SimDevice {
    pub id: String,
    index: usize,
    cfg: Arc<SimConfig>,
    domain: String,
    link: Link,
    local: SocketAddr,
    inbox: mpsc::Receiver<LiteMessage>,
    stats: Arc<SimStats>,
    call_id: String,
    from_tag: String,
    cseq: u32,
    nc: u32,
    /// MANSCDP bodies waiting to be sent: answers and unsubscribed notices as MESSAGEs,
    /// subscribed events as NOTIFYs in their subscription's dialog.
    outbox: VecDeque<Outgoing>,
    /// The platform's subscriptions (Catalog, Alarm, MobilePosition).
    subs: crate::subscriptions::Subscriptions,
    /// The scheduled catalog changes (`catalog_change_every_secs`).
    changes: crate::subscriptions::CatalogChanges,
    registered_once: bool,
    calls: crate::call::Calls,
    shutdown: CancellationToken,
    /// A PTZ head per channel that has been sent a command.
    ptz: std::collections::HashMap<String, crate::ptz::PtzHead>,
    /// What calls report after the fact (a playback's end).
    call_events: mpsc::Receiver<crate::call::CallEvent>,
    /// The basic parameters (`DeviceConfig` sets them, `ConfigDownload` reads them): the name
    /// DeviceInfo reports, the expiry asked in REGISTER and the keepalive interval follow them.
    basic: gb::model::BasicParam,
}

/// The channel ids of device `index` (what its catalog lists and INVITEs are addressed to):
/// the device's first 10 digits, type 131, and a serial unique across the simulated devices.
pub fn channel_ids(device_id: &str, index: usize, channels: usize) -> Vec<String> {
    let ch_prefix = &device_id[..10.min(device_id.len())];
    (0..channels).map(|j| format!("{ch_prefix}131{:07}", (index * channels + j + 1) % 10_000_000)).collect()
}

/// A MANSCDP body to send.
enum Outgoing {
    Message(Vec<u8>),
    Notify(crate::subscriptions::Kind, Vec<u8>),
}

/// What identifies one request's transaction on the wire.
#[derive(Clone, Copy)]
struct Leg<'a> {
    call_id: &'a str,
    from_tag: &'a str,
    cseq: u32,
}

pub(crate) fn token() -> String {
    format!("{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff)
}

impl SimDevice {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: String,
        index: usize,
        cfg: Arc<SimConfig>,
        domain: String,
        link: Link,
        local: SocketAddr,
        inbox: mpsc::Receiver<LiteMessage>,
        stats: Arc<SimStats>,
        media: Arc<crate::media::MediaSource>,
    ) -> Self {
        let advertised = match &cfg.nat_ip {
            Some(ip) => format!("{ip}:{}", local.port()),
            None => local.to_string(),
        };
        let proto = if link.reliable() { "TCP" } else { "UDP" };
        let (events, call_events) = mpsc::channel(16);
        let basic = gb::model::BasicParam {
            name: Some(format!("gbsim {}", index + 1)),
            device_id: Some(id.clone()),
            domain_name: Some(domain.clone()),
            expiration: Some(cfg.expires_secs),
            heartbeat_interval: Some(cfg.keepalive_secs.clamp(1, u64::from(u32::MAX)) as u32),
            heartbeat_count: Some(3),
            ..Default::default()
        };
        Self {
            basic,
            calls: crate::call::Calls::new(cfg.clone(), media, stats.clone(), id.clone(), advertised, proto, events),
            call_events,
            shutdown: CancellationToken::new(),
            call_id: format!("{}@{}", token(), local.ip()),
            from_tag: token(),
            id,
            index,
            cfg,
            domain,
            link,
            local,
            inbox,
            stats,
            cseq: 0,
            nc: 0,
            outbox: VecDeque::new(),
            subs: Default::default(),
            changes: Default::default(),
            registered_once: false,
            ptz: std::collections::HashMap::new(),
        }
    }

    /// The keepalive interval: `HeartBeatInterval` as configured (by `DeviceConfig` too).
    fn keepalive_every(&self) -> Duration {
        Duration::from_secs(u64::from(self.basic.heartbeat_interval.unwrap_or(60).max(1)))
    }

    fn advertised(&self) -> String {
        match &self.cfg.nat_ip {
            Some(ip) => format!("{ip}:{}", self.local.port()),
            None => self.local.to_string(),
        }
    }

    fn proto(&self) -> &'static str {
        if self.link.reliable() {
            "TCP"
        } else {
            "UDP"
        }
    }

    fn request(&self, method: &str, uri: &str, leg: Leg<'_>, extra: &[(&str, String)], body: Option<&[u8]>) -> Vec<u8> {
        let Leg { call_id, from_tag, cseq } = leg;
        let mut s = format!(
            "{method} {uri} SIP/2.0\r\nVia: SIP/2.0/{} {};rport;branch=z9hG4bK{}\r\nFrom: <sip:{}@{}>;tag={from_tag}\r\nTo: <sip:{}@{}>\r\n\
             Call-ID: {call_id}\r\nCSeq: {cseq} {method}\r\nMax-Forwards: 70\r\nUser-Agent: gbsim\r\n",
            self.proto(),
            self.advertised(),
            token(),
            self.id,
            self.domain,
            if method == "REGISTER" { &self.id } else { &self.cfg.server_id },
            self.domain,
        );
        for (n, v) in extra {
            s.push_str(&format!("{n}: {v}\r\n"));
        }
        match body {
            Some(b) => {
                s.push_str(&format!("Content-Type: {}\r\nContent-Length: {}\r\n\r\n", manscdp::CONTENT_TYPE, b.len()));
                let mut out = s.into_bytes();
                out.extend_from_slice(b);
                out
            }
            None => {
                s.push_str("Content-Length: 0\r\n\r\n");
                s.into_bytes()
            }
        }
    }

    /// Sends a request and waits for its final response, retransmitting over UDP (Timer E
    /// style) and answering requests from the server that arrive meanwhile.
    async fn transact(&mut self, bytes: Vec<u8>, call_id: &str, cseq: u32) -> Option<LiteMessage> {
        // RFC 3261 timers: E starts at T1 (500 ms), doubles to T2 (4 s), and jumps to T2 once a
        // provisional answer arrives; F gives up after 64*T1 (32 s).
        let deadline = Instant::now() + Duration::from_secs(32);
        let mut interval = Duration::from_millis(500);
        let mut resend_at = Instant::now() + interval;
        self.link.send(bytes.clone()).await.ok()?;
        loop {
            tokio::select! {
                m = self.inbox.recv() => {
                    let m = m?;
                    match m.code() {
                        Some(code) => {
                            let matches = m.header("Call-ID") == Some(call_id) && m.cseq().is_some_and(|(n, _)| n == cseq);
                            if matches && code >= 200 {
                                return Some(m);
                            }
                            if matches {
                                interval = Duration::from_secs(4);
                                resend_at = Instant::now() + interval;
                            }
                        }
                        None => self.on_request(m).await,
                    }
                }
                _ = sleep_until(resend_at), if !self.link.reliable() => {
                    let _ = self.link.send(bytes.clone()).await;
                    interval = (interval * 2).min(Duration::from_secs(4));
                    resend_at = Instant::now() + interval;
                }
                _ = sleep_until(deadline) => return None,
            }
        }
    }

    fn server_uri(&self) -> String {
        format!("sip:{}@{}", self.cfg.server_id, self.domain)
    }

    /// REGISTER, answering one challenge: `Ok(granted expires)` on 200, else `Err(retry after)`
    /// when the server said when (503 with Retry-After).
    async fn register(&mut self, expires: u32) -> Result<u32, Option<Duration>> {
        let uri = self.server_uri();
        let contact = format!("<sip:{}@{}>", self.id, self.advertised());
        let mut extra = vec![("Contact", contact), ("Expires", expires.to_string())];
        if !self.cfg.gb_version.is_empty() {
            extra.push(("X-GB-Ver", self.cfg.gb_version.clone()));
        }
        for _ in 0..3 {
            self.cseq += 1;
            let (call_id, tag, cseq) = (self.call_id.clone(), self.from_tag.clone(), self.cseq);
            let req = self.request("REGISTER", &uri, Leg { call_id: &call_id, from_tag: &tag, cseq }, &extra, None);
            let resp = self.transact(req, &call_id, cseq).await.ok_or(None)?;
            match resp.code().ok_or(None)? {
                200..=299 => {
                    return Ok(resp.header("Expires").and_then(|e| e.parse().ok()).unwrap_or(expires));
                }
                503 => {
                    return Err(resp.header("Retry-After").and_then(|r| r.split(';').next()?.trim().parse().ok()).map(Duration::from_secs))
                }
                401 => {
                    inc(&self.stats.challenges);
                    let challenges: Vec<Challenge> =
                        resp.headers_named("WWW-Authenticate").filter_map(|h| Challenge::parse(h).ok()).collect();
                    let want_sha = self.cfg.gb_version.trim().starts_with('3');
                    let ch = challenges
                        .iter()
                        .find(|c| want_sha && c.algorithm == Algorithm::Sha256)
                        .or_else(|| challenges.iter().find(|c| c.algorithm == Algorithm::Md5))
                        .ok_or(None)?
                        .clone();
                    self.nc += 1;
                    let auth = ch.answer(&self.id, &self.cfg.password, "REGISTER", &uri, self.nc, &token());
                    extra.retain(|(n, _)| *n != "Authorization");
                    extra.push(("Authorization", auth));
                }
                _ => return Err(None),
            }
        }
        Err(None)
    }

    async fn keepalive(&mut self, sn: u32) -> Option<u16> {
        self.cseq += 1;
        let call_id = format!("{}@{}", token(), self.local.ip());
        let tag = token();
        let cseq = self.cseq;
        let body = build::keepalive(sn, &self.id);
        let req = self.request("MESSAGE", &self.server_uri(), Leg { call_id: &call_id, from_tag: &tag, cseq }, &[], Some(&body));
        self.transact(req, &call_id, cseq).await.and_then(|r| r.code())
    }

    fn channels(&self) -> Vec<Channel> {
        let ch_prefix = &self.id[..10];
        channel_ids(&self.id, self.index, self.cfg.channels)
            .into_iter()
            .enumerate()
            .map(|(j, id)| Channel {
                id: id.parse().ok(),
                name: Some(format!("大门口{}", j + 1)),
                manufacturer: Some("gbsim".into()),
                model: Some("IPC".into()),
                owner: Some("Owner".into()),
                civil_code: Some(ch_prefix[..6].to_owned()),
                address: Some("gbsim".into()),
                parental: Some(0),
                parent_id: Some(self.id.clone()),
                safety_way: Some(0),
                register_way: Some(1),
                secrecy: Some(0),
                status: Some("ON".into()),
                longitude: Some(116.39 + j as f64 * 0.001),
                latitude: Some(39.9),
                ptz_type: Some(1),
                ..Default::default()
            })
            .chain(self.changes.extra_now(self.extra_channel()))
            .collect()
    }

    /// The channel the scheduled catalog changes add and remove: the serial after the device's
    /// own channels, in the 9,000,000s so it meets no other device's.
    fn extra_channel(&self) -> Channel {
        let prefix = &self.id[..10.min(self.id.len())];
        Channel {
            id: format!("{prefix}131{:07}", 9_000_000 + self.index % 1_000_000).parse().ok(),
            name: Some(format!("临时通道{}", self.index + 1)),
            manufacturer: Some("gbcluster".into()),
            parental: Some(0),
            parent_id: Some(self.id.clone()),
            status: Some("ON".into()),
            ..Default::default()
        }
    }

    /// Answers a SUBSCRIBE (new, refresh or end) as a camera: 200 with its tag and the
    /// granted `Expires`, 481 for a dialog it does not know, 489 for events it has none of.
    async fn on_subscribe(&mut self, m: &LiteMessage) {
        use crate::subscriptions::{Kind, Request};
        let parsed = manscdp::parse(&m.body).ok();
        let kind = parsed.as_ref().and_then(|p| Kind::parse(&p.header.cmd_type));
        let interval_secs = match parsed.as_ref().map(|p| &p.body) {
            Some(Body::PositionQuery { interval_secs }) => *interval_secs,
            _ => None,
        };
        let tag_of = |h: Option<&str>| h.and_then(|v| v.split(';').find_map(|p| p.trim().strip_prefix("tag=").map(str::to_owned)));
        let (from_tag, to_tag) = (tag_of(m.header("From")).unwrap_or_default(), tag_of(m.header("To")));
        let uri_of = |h: Option<&str>| h.and_then(|v| v.split('<').nth(1)).and_then(|v| v.split('>').next()).map(str::to_owned);
        let remote_uri = uri_of(m.header("Contact")).or_else(|| uri_of(m.header("From"))).unwrap_or_else(|| self.server_uri());
        let request = Request {
            call_id: m.header("Call-ID").unwrap_or_default(),
            from_tag: &from_tag,
            to_tag: to_tag.as_deref(),
            remote_uri,
            event: m.header("Event").unwrap_or_default(),
            expires: m.header("Expires").and_then(|e| e.trim().parse().ok()).unwrap_or(3600),
            kind,
            interval_secs,
        };
        let answer = self.subs.on_subscribe(request, token, kit::clock::now_ms());
        tracing::debug!(device = %self.id, ?kind, code = answer.code, expires = answer.expires, "SUBSCRIBE");
        let reason = match answer.code {
            200 => "OK",
            481 => "Call/Transaction Does Not Exist",
            _ => "Bad Event",
        };
        let contact = format!("<sip:{}@{}>", self.id, self.advertised());
        let extra = [("Expires", answer.expires.to_string()), ("Contact", contact)];
        let _ = self.link.send(m.response(answer.code, reason, &answer.to_tag, &extra, None)).await;
    }

    /// A NOTIFY in `sub`'s dialog carrying `body`.
    fn notify_request(&self, sub: &crate::subscriptions::Sub, body: &[u8]) -> Vec<u8> {
        let left = sub.expires_at_ms.saturating_sub(kit::clock::now_ms()) / 1000;
        let mut s = format!(
            "NOTIFY {uri} SIP/2.0\r\nVia: SIP/2.0/{proto} {host};rport;branch=z9hG4bK{branch}\r\n\
             From: <sip:{id}@{domain}>;tag={local}\r\nTo: <sip:{server}@{domain}>;tag={remote}\r\nCall-ID: {call}\r\n\
             CSeq: {cseq} NOTIFY\r\nMax-Forwards: 70\r\nUser-Agent: gbsim\r\nContact: <sip:{id}@{host}>\r\n\
             Event: {event}\r\nSubscription-State: active;expires={left}\r\n",
            uri = sub.remote_uri,
            proto = self.proto(),
            host = self.advertised(),
            branch = token(),
            id = self.id,
            domain = self.domain,
            local = sub.local_tag,
            server = self.cfg.server_id,
            remote = sub.remote_tag,
            call = sub.call_id,
            cseq = sub.cseq,
            event = sub.event,
        );
        s.push_str(&format!("Content-Type: {}\r\nContent-Length: {}\r\n\r\n", manscdp::CONTENT_TYPE, body.len()));
        let mut out = s.into_bytes();
        out.extend_from_slice(body);
        out
    }

    /// The next scheduled catalog change, notified when Catalog is subscribed.
    fn change_catalog(&mut self, sn: u32) {
        let (event, item) = self.changes.next(self.extra_channel());
        tracing::debug!(device = %self.id, ?event, "catalog change");
        inc(&self.stats.catalog_changes);
        let body = build::catalog_notify(sn, &self.id, &[(event, item)]);
        self.notice(crate::subscriptions::Kind::Catalog, body, false);
    }

    /// A notice for `kind`: a NOTIFY when the platform subscribed to it; else a MESSAGE, or
    /// nothing for what only a subscription carries (catalog changes).
    fn notice(&mut self, kind: crate::subscriptions::Kind, body: Vec<u8>, by_message: bool) {
        if self.subs.active(kind, kit::clock::now_ms()).is_some() {
            self.outbox.push_back(Outgoing::Notify(kind, body));
        } else if by_message {
            self.outbox.push_back(Outgoing::Message(body));
        }
    }

    /// Answers a request from the server at once; queued MANSCDP answers go out after.
    async fn on_request(&mut self, m: LiteMessage) {
        let method = m.method().unwrap_or_default().to_owned();
        if self.calls.on_request(&m, &self.link, &self.shutdown).await {
            return;
        }
        if method == "SUBSCRIBE" {
            self.on_subscribe(&m).await;
            return;
        }
        if method != "MESSAGE" {
            let _ = self.link.send(m.response(501, "Not Implemented", &token(), &[], None)).await;
            return;
        }
        let parsed = manscdp::parse(&m.body);
        // A PTZ command a camera cannot read is refused, as cameras do (400); one it can moves
        // the channel's head. PTZ commands have no Response message: the 200 is the answer.
        if let Ok(Message { header, body: Body::DeviceControl { ptz_cmd: Some(hex), .. } }) = &parsed {
            match gb::ptz::PtzCommand::decode_hex(hex) {
                Ok((cmd, _address)) => self.ptz.entry(header.device_id.clone()).or_default().apply(cmd, kit::clock::now_ms()),
                Err(e) => {
                    tracing::info!(device = %self.id, error = %e, "unreadable PTZ command refused");
                    let _ = self.link.send(m.response(400, "Bad Request", &token(), &[], None)).await;
                    return;
                }
            }
        }
        let _ = self.link.send(m.response(200, "OK", &token(), &[], None)).await;
        // Record, guard, alarm and home-position commands have a Response with a Result; a camera
        // does them (DragZoom, like PTZ, has none: the 200 is its answer).
        if let Ok(Message { header, body: Body::DeviceControl { commands, .. } }) = &parsed {
            if commands.iter().any(|c| c == "iframecmd") {
                let calls = self.calls.request_key_frame(&header.device_id);
                tracing::debug!(device = %self.id, channel = %header.device_id, calls, "IFrameCmd");
            }
            if commands.iter().any(|c| matches!(c.as_str(), "recordcmd" | "guardcmd" | "alarmcmd" | "homeposition")) {
                self.outbox.push_back(Outgoing::Message(build::device_control_response(header.sn, &header.device_id, true)));
            }
            return;
        }
        let Ok(q) = parsed else { return };
        if let Body::DeviceConfig(set) = q.body {
            // A camera takes what it understands and keeps the rest.
            let basic = &mut self.basic;
            basic.name = set.name.or(basic.name.take());
            basic.expiration = set.expiration.or(basic.expiration);
            basic.heartbeat_interval = set.heartbeat_interval.or(basic.heartbeat_interval);
            basic.heartbeat_count = set.heartbeat_count.or(basic.heartbeat_count);
            tracing::debug!(device = %self.id, basic = ?self.basic, "DeviceConfig");
            self.outbox.push_back(Outgoing::Message(build::result_response("DeviceConfig", q.header.sn, &self.id, true)));
            return;
        }
        if let Body::ConfigQuery { config_type } = &q.body {
            inc(&self.stats.queries_answered);
            // Only BasicParam is kept; a camera answers the types it has.
            if config_type.split('/').any(|t| t.trim().eq_ignore_ascii_case("basicparam")) {
                self.outbox.push_back(Outgoing::Message(build::config_download_response(q.header.sn, &self.id, &self.basic)));
            } else {
                self.outbox.push_back(Outgoing::Message(build::result_response("ConfigDownload", q.header.sn, &self.id, false)));
            }
            return;
        }
        if let Body::RecordQuery { start_time, end_time, record_type } = &q.body {
            inc(&self.stats.queries_answered);
            self.answer_records(q.header.sn, &q.header.device_id, start_time, end_time, record_type);
            return;
        }
        if q.body != Body::Query {
            return;
        }
        inc(&self.stats.queries_answered);
        let sn = q.header.sn;
        match q.header.cmd_type.to_ascii_lowercase().as_str() {
            "catalog" => {
                let all = self.channels();
                let page = self.cfg.catalog_page.max(1);
                if all.is_empty() {
                    self.outbox.push_back(Outgoing::Message(build::catalog_response(sn, &self.id, 0, &[])));
                }
                for chunk in all.chunks(page) {
                    self.outbox.push_back(Outgoing::Message(build::catalog_response(sn, &self.id, all.len(), chunk)));
                }
            }
            "deviceinfo" => {
                let info = DeviceInfo {
                    name: self.basic.name.clone(),
                    manufacturer: Some("gbcluster".into()),
                    model: Some("gbsim-ipc".into()),
                    firmware: Some(env!("CARGO_PKG_VERSION").into()),
                    channels: Some(self.cfg.channels as u32),
                };
                self.outbox.push_back(Outgoing::Message(build::device_info_response(sn, &self.id, &info)));
            }
            "devicestatus" => {
                let now = gb::sip::gb_date(kit::clock::now_ms(), self.cfg.utc_offset_minutes);
                self.outbox.push_back(Outgoing::Message(build::device_status_response(sn, &self.id, &now[..19])));
            }
            "presetquery" => {
                let presets: Vec<(u32, String)> = self
                    .ptz
                    .get(&q.header.device_id)
                    .map(|h| h.presets().into_iter().map(|(n, name)| (u32::from(n), name)).collect())
                    .unwrap_or_default();
                self.outbox.push_back(Outgoing::Message(build::preset_query_response(sn, &q.header.device_id, &presets)));
            }
            _ => {}
        }
    }

    /// `RecordInfo`: the channel's files from the catalogue, `record_page` to a MESSAGE. Times
    /// are read and written in the device's own zone, as cameras do.
    fn answer_records(&mut self, sn: u32, channel: &str, start: &Option<String>, end: &Option<String>, record_type: &Option<String>) {
        let offset = self.cfg.utc_offset_minutes;
        let read = |t: &Option<String>| t.as_deref().and_then(kit::clock::stamp::parse).map(|w| w.unix_secs(offset));
        let want = record_type.as_deref().and_then(gb::records::RecordType::parse).unwrap_or_default();
        let catalogue = crate::records::Catalogue {
            utc_offset_minutes: offset,
            days: self.cfg.record_days,
            file_secs: self.cfg.record_file_secs.max(1),
        };
        let name = self.channels().into_iter().find(|c| c.id.as_ref().map(|i| i.as_str()) == Some(channel)).and_then(|c| c.name);
        let items = match (read(start), read(end)) {
            (Some(s), Some(e)) => {
                catalogue.files(channel, name.as_deref().unwrap_or(channel), s, e, want, (kit::clock::now_ms() / 1000) as i64)
            }
            _ => Vec::new(),
        };
        let name = name.unwrap_or_default();
        if items.is_empty() {
            self.outbox.push_back(Outgoing::Message(build::record_info_response(sn, channel, &name, 0, &[])));
        }
        for page in items.chunks(self.cfg.record_page.max(1)) {
            self.outbox.push_back(Outgoing::Message(build::record_info_response(sn, channel, &name, items.len(), page)));
        }
    }

    /// A motion-detection alarm on the first channel (video alarm, type 2), as a camera raises
    /// one; priorities cycle 1–4.
    fn raise_alarm(&mut self, sn: u32) {
        let source = channel_ids(&self.id, self.index, self.cfg.channels.max(1)).swap_remove(0);
        let alarm = gb::model::Alarm {
            priority: Some((sn % 4 + 1) as u8),
            method: Some(5),
            time: Some(kit::clock::stamp::format_local((kit::clock::now_ms() / 1000) as i64, self.cfg.utc_offset_minutes)),
            description: Some("移动侦测".into()),
            longitude: Some(116.39),
            latitude: Some(39.9),
            alarm_type: Some(2),
            event_type: None,
        };
        inc(&self.stats.alarms_sent);
        self.notice(crate::subscriptions::Kind::Alarm, build::alarm_notify(sn, &source, &alarm), true);
    }

    /// The device's position on a 100 m circle around its catalog point, a lap a minute.
    fn report_position(&mut self, sn: u32) {
        let now_ms = kit::clock::now_ms();
        let angle = (now_ms % 60_000) as f64 / 60_000.0 * std::f64::consts::TAU;
        let pos = gb::model::Position {
            time: Some(kit::clock::stamp::format_local((now_ms / 1000) as i64, self.cfg.utc_offset_minutes)),
            longitude: Some(116.39 + 0.0012 * angle.cos()),
            latitude: Some(39.9 + 0.0009 * angle.sin()),
            speed: Some(37.7),
            direction: Some((360.0 - angle.to_degrees() + 360.0) % 360.0),
            altitude: Some(50.0),
        };
        inc(&self.stats.positions_sent);
        self.notice(crate::subscriptions::Kind::MobilePosition, build::mobile_position_notify(sn, &self.id, &pos), true);
    }

    /// A playback played to the end of its span: `MediaStatus` 121 with the call's Call-ID.
    async fn on_call_event(&mut self, ev: crate::call::CallEvent, sn: &mut u32) {
        match ev {
            crate::call::CallEvent::EndOfFile { call_id, channel } => {
                *sn = sn.wrapping_add(1);
                self.cseq += 1;
                let (tag, cseq) = (token(), self.cseq);
                let body = build::media_status(*sn, if channel.is_empty() { &self.id } else { &channel }, 121);
                let req = self.request("MESSAGE", &self.server_uri(), Leg { call_id: &call_id, from_tag: &tag, cseq }, &[], Some(&body));
                let _ = self.transact(req, &call_id, cseq).await;
            }
        }
    }

    async fn flush_outbox(&mut self) {
        while let Some(out) = self.outbox.pop_front() {
            match out {
                Outgoing::Message(body) => {
                    self.cseq += 1;
                    let call_id = format!("{}@{}", token(), self.local.ip());
                    let tag = token();
                    let cseq = self.cseq;
                    let req =
                        self.request("MESSAGE", &self.server_uri(), Leg { call_id: &call_id, from_tag: &tag, cseq }, &[], Some(&body));
                    let _ = self.transact(req, &call_id, cseq).await;
                }
                // The subscription may have lapsed since: then the notice is not sent.
                Outgoing::Notify(kind, body) => {
                    let Some(sub) = self.subs.next_notify(kind, kit::clock::now_ms()) else { continue };
                    let req = self.notify_request(&sub, &body);
                    inc(&self.stats.notifies_sent);
                    let _ = self.transact(req, &sub.call_id, sub.cseq).await;
                }
            }
        }
    }

    pub async fn run(mut self, start_at: Instant, shutdown: CancellationToken) {
        self.shutdown = shutdown.clone();
        let mut state = RegState::Unregistered { retry_at: start_at, failures: 0 };
        // Spread keepalives of many devices over the interval.
        let mut next_keepalive = start_at + self.keepalive_every().mul_f64(rand::random::<f64>().max(0.05));
        let mut sn: u32 = 1;
        // Alarms and positions on a schedule (0: never), each device at its own phase.
        let every = |secs: u64| (secs > 0).then(|| Duration::from_secs(secs));
        let (alarm_every, position_every) = (every(self.cfg.alarm_every_secs), every(self.cfg.position_every_secs));
        let phase = |d: Duration| start_at + d.mul_f64(rand::random::<f64>().max(0.05));
        let mut next_alarm = alarm_every.map(phase);
        let mut next_position = position_every.map(phase);
        let change_every = every(self.cfg.catalog_change_every_secs);
        let mut next_change = change_every.map(|d| start_at + d);
        loop {
            // A MobilePosition subscription reports at its interval when no schedule is set.
            let subscribed_every = || {
                let sub = self.subs.active(crate::subscriptions::Kind::MobilePosition, kit::clock::now_ms());
                sub.map(|s| Duration::from_secs(u64::from(s.interval_secs.unwrap_or(5).max(1))))
            };
            let position_period = position_every.or_else(subscribed_every);
            if next_position.is_none() {
                next_position = position_period.map(|d| Instant::now() + d);
            }
            let wake = match state {
                RegState::Unregistered { retry_at, .. } => retry_at,
                RegState::Registered { refresh_at, .. } => [Some(refresh_at), Some(next_keepalive), next_alarm, next_position, next_change]
                    .into_iter()
                    .flatten()
                    .min()
                    .unwrap_or(refresh_at),
            };
            tokio::select! {
                _ = shutdown.cancelled() => break,
                m = self.inbox.recv() => match m {
                    Some(m) if m.code().is_none() => self.on_request(m).await,
                    Some(_) => {}
                    None => break,
                },
                Some(ev) = self.call_events.recv() => self.on_call_event(ev, &mut sn).await,
                _ = sleep_until(wake) => {
                    let now = Instant::now();
                    state = match state {
                        RegState::Unregistered { failures, .. } => self.try_register(now, failures).await,
                        RegState::Registered { refresh_at, expires_at } if now >= refresh_at => {
                            let s = self.try_register(now, 0).await;
                            match s {
                                RegState::Unregistered { .. } if now < expires_at => RegState::Registered { refresh_at: now + Duration::from_secs(5), expires_at },
                                s => s,
                            }
                        }
                        RegState::Registered { refresh_at, expires_at } if now >= next_keepalive => {
                            next_keepalive = now + self.keepalive_every();
                            sn = sn.wrapping_add(1);
                            match self.keepalive(sn).await {
                                Some(200..=299) => { inc(&self.stats.keepalives); RegState::Registered { refresh_at, expires_at } }
                                Some(_) => {
                                    // Refused (404: the server forgot us): register again at once.
                                    inc(&self.stats.keepalive_failures);
                                    RegState::Unregistered { retry_at: now, failures: 0 }
                                }
                                None => { inc(&self.stats.keepalive_failures); RegState::Registered { refresh_at, expires_at } }
                            }
                        }
                        registered => {
                            if let (Some(at), Some(every)) = (next_alarm, alarm_every) {
                                if now >= at {
                                    next_alarm = Some(now + every);
                                    sn = sn.wrapping_add(1);
                                    self.raise_alarm(sn);
                                }
                            }
                            if next_position.is_some_and(|at| now >= at) {
                                next_position = position_period.map(|every| now + every);
                                sn = sn.wrapping_add(1);
                                self.report_position(sn);
                            }
                            if let (Some(at), Some(every)) = (next_change, change_every) {
                                if now >= at {
                                    next_change = Some(now + every);
                                    sn = sn.wrapping_add(1);
                                    self.change_catalog(sn);
                                }
                            }
                            registered
                        }
                    };
                }
            }
            self.flush_outbox().await;
        }
        // Leave cleanly: unregister so the server sees us go at once.
        if matches!(state, RegState::Registered { .. }) {
            let _ = tokio::time::timeout(Duration::from_secs(2), self.register(0)).await;
        }
    }

    async fn try_register(&mut self, now: Instant, failures: u32) -> RegState {
        match self.register(self.basic.expiration.unwrap_or(self.cfg.expires_secs)).await {
            Ok(granted) => {
                inc(&self.stats.registered);
                if !self.registered_once {
                    self.registered_once = true;
                    inc(&self.stats.devices_registered_once);
                }
                let granted = Duration::from_secs(u64::from(granted.max(1)));
                // Refresh at 80% of the lifetime, as cameras do.
                RegState::Registered { refresh_at: now + granted.mul_f64(0.8), expires_at: now + granted }
            }
            Err(retry_after) => {
                inc(&self.stats.register_failures);
                // The server's Retry-After when it gave one (spread over a second), else our own
                // exponential backoff.
                let retry_at = match retry_after {
                    Some(after) => now + after + Duration::from_millis(rand::random::<u64>() % 1000),
                    None => now + Duration::from_secs((5u64 << failures.min(3)).min(60)).mul_f64(0.5 + rand::random::<f64>() * 0.5),
                };
                RegState::Unregistered { retry_at, failures: failures + 1 }
            }
        }
    }
}
