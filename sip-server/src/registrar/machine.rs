//! The registrar's rules without I/O: a REGISTER and what the Store said about its device go
//! in, with the time; the answer and the Store writes come out as actions for the shell
//! (`registrar::on_register`) to run in order.
//!
//! ```text
//!  New ──Start──▶ Done                      400 bad id · 403 not allowed · 401 challenge
//!   │
//!   └─Start──▶ LookingUp ──LookedUp──▶ Done  403 locked out · 401 stale/foreign nonce ·
//!                  │                         400 unusable credentials · 403 wrong password ·
//!                  │                         423 too brief · 200 registered
//!                  └──LookedUp──▶ Unregistering ──Unregistered──▶ Done   200 Expires: 0
//! ```
//!
//! Every rule is a row in the tests below; the shell adds only sockets and the Store.

use cluster::registry::Device;
use gb::ids::{DeviceId, NodeId};
use gb::model::SipTransport;
use gb::sip::digest::{Algorithm, Challenge, Credentials, NonceCheck, NonceIssuer};
use rsipstack::sip::{Header, StatusCode};

use crate::config::{Sha256Policy, SipConfig};

/// What the registrar reads from a REGISTER (the shell takes it from the SIP message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Register {
    /// The user part of `From`: the device id, if the device wrote one.
    pub from_user: Option<String>,
    pub authorization: Option<String>,
    /// `Expires`, else the Contact's `expires` parameter.
    pub expires: Option<u32>,
    pub contact: Option<String>,
    /// `X-GB-Ver` (3.0 and later: GB28181-2022).
    pub gb_version: Option<String>,
    pub user_agent: Option<String>,
    pub transport: SipTransport,
    /// Where the packet really came from (ip:port).
    pub source: String,
}

impl Register {
    fn source_ip(&self) -> &str {
        self.source.rsplit_once(':').map_or(self.source.as_str(), |(ip, _)| ip)
    }
}

/// The rules of this node: configuration, realm, nonce issuer and our addresses.
pub struct Rules<'a> {
    pub cfg: &'a SipConfig,
    pub realm: &'a str,
    pub nonces: &'a NonceIssuer,
    pub node: &'a NodeId,
    /// Our SIP listener per transport (stored as the device's `local_addr`).
    pub udp_addr: String,
    pub tcp_addr: String,
}

/// What the Store knows of the device and its source, read at once (one round trip).
#[derive(Debug, Clone, Default)]
pub struct Lookup {
    pub device_failures: u32,
    pub source_failures: u32,
    /// The device's own password, if one was set.
    pub password: Option<String>,
    /// The device's current record.
    pub prev: Option<Device>,
}

/// Where a REGISTER stands.
#[derive(Debug, Clone)]
pub enum Registration {
    New(Register),
    /// The Store reads were asked for (`Action::Lookup`).
    LookingUp {
        device_id: DeviceId,
        req: Register,
    },
    /// The Store was asked to drop the registration (`Action::Unregister`).
    Unregistering {
        device_id: DeviceId,
        date: String,
    },
    /// Answered; nothing left to do.
    Done,
}

#[derive(Debug, Clone)]
pub enum Event {
    Start,
    LookedUp(Box<Lookup>),
    Unregistered { was_online: bool },
}

/// Failed-authentication counters are kept by device and by source IP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureKeys {
    pub device: String,
    pub source: String,
}

impl FailureKeys {
    fn of(device_id: &DeviceId, source_ip: &str) -> Self {
        Self { device: format!("dev:{device_id}"), source: format!("ip:{source_ip}") }
    }
}

/// The registrar counters (`metrics`), as the machine decides them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    BadRequest,
    Challenge,
    LockedOut,
    AuthFailure,
    Unregister,
    Register,
}

/// Why a REGISTER was refused or what it changed, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    NoDeviceId,
    NotAllowed,
    LockedOut,
    UnusableAuthorization(String),
    WrongPassword,
    /// Registered anew: first time, back online, from another address or onto this node.
    Registered {
        expires: u32,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Read the failure counters, the password and the previous record (→ `Event::LookedUp`).
    Lookup {
        device_id: DeviceId,
        keys: FailureKeys,
    },
    Reply {
        code: StatusCode,
        headers: Vec<Header>,
    },
    RecordFailure {
        keys: FailureKeys,
        lockout_secs: u64,
    },
    ClearDeviceFailures {
        key: String,
    },
    /// Drop the registration (→ `Event::Unregistered`).
    Unregister(DeviceId),
    /// Forget what this node keeps of the device (TCP connection, last source).
    Forget(DeviceId),
    /// Write the record; the device goes offline at `deadline_ms` without a keepalive.
    Store {
        device: Box<Device>,
        deadline_ms: u64,
    },
    /// Keep the route to the device on this node (its TCP connection, the source seen).
    RememberRoute(DeviceId),
    Publish {
        device_id: DeviceId,
        online: bool,
        reason: &'static str,
    },
    /// Ask the device for its info and catalog.
    Query(DeviceId),
    Count(Counter),
    Log(Note),
}

fn other(name: &str, value: impl Into<String>) -> Header {
    Header::Other(name.into(), value.into())
}

fn reply(code: StatusCode, headers: Vec<Header>) -> Action {
    Action::Reply { code, headers }
}

/// Whether the device announced GB28181-2022 (`X-GB-Ver: 3.0` or later).
pub fn is_gb2022(gb_version: Option<&str>) -> bool {
    gb_version.and_then(|v| v.trim().split('.').next()?.parse::<u32>().ok()).is_some_and(|major| major >= 3)
}

impl Rules<'_> {
    /// `WWW-Authenticate` headers: SHA-256 first where the policy offers it, then MD5.
    pub fn challenges(&self, gb_version: Option<&str>, stale: bool, now_ms: u64) -> Vec<Header> {
        let algs: &[Algorithm] = match (self.cfg.sha256, is_gb2022(gb_version)) {
            (Sha256Policy::Always, _) | (Sha256Policy::Gb2022, true) => &[Algorithm::Sha256, Algorithm::Md5],
            _ => &[Algorithm::Md5],
        };
        let nonce = self.nonces.issue(now_ms / 1000);
        algs.iter()
            .map(|&algorithm| {
                let c = Challenge {
                    realm: self.realm.to_owned(),
                    nonce: nonce.clone(),
                    algorithm,
                    qop_auth: self.cfg.qop,
                    stale,
                    opaque: None,
                };
                other("WWW-Authenticate", c.to_header_value())
            })
            .collect()
    }

    fn allowed(&self, id: &DeviceId) -> bool {
        self.cfg.allow_prefixes.is_empty() || self.cfg.allow_prefixes.iter().any(|p| id.as_str().starts_with(p.as_str()))
    }

    fn keepalive_timeout_ms(&self) -> u64 {
        u64::from(self.cfg.keepalive_interval_secs) * u64::from(self.cfg.keepalive_misses.max(1)) * 1000
    }

    fn challenge(&self, req: &Register, stale: bool, now_ms: u64) -> Vec<Action> {
        vec![Action::Count(Counter::Challenge), reply(StatusCode::Unauthorized, self.challenges(req.gb_version.as_deref(), stale, now_ms))]
    }
}

/// One step: `(state, event, now) -> (state, actions)`.
pub fn step(rules: &Rules, state: Registration, event: Event, now_ms: u64) -> (Registration, Vec<Action>) {
    match (state, event) {
        (Registration::New(req), Event::Start) => received(rules, req, now_ms),
        (Registration::LookingUp { device_id, req }, Event::LookedUp(found)) => looked_up(rules, device_id, req, *found, now_ms),
        (Registration::Unregistering { device_id, date }, Event::Unregistered { was_online }) => {
            let mut actions =
                vec![Action::Forget(device_id.clone()), reply(StatusCode::OK, vec![other("Expires", "0"), other("Date", date)])];
            if was_online {
                actions.push(Action::Publish { device_id, online: false, reason: "unregistered" });
            }
            (Registration::Done, actions)
        }
        // An event the state does not wait for changes nothing.
        (state, _) => (state, vec![]),
    }
}

/// Checks that need no Store: the id, the allow-list, credentials present.
fn received(rules: &Rules, req: Register, now_ms: u64) -> (Registration, Vec<Action>) {
    let Some(device_id) = req.from_user.as_deref().and_then(|u| u.parse::<DeviceId>().ok()) else {
        return (
            Registration::Done,
            vec![Action::Count(Counter::BadRequest), Action::Log(Note::NoDeviceId), reply(StatusCode::BadRequest, vec![])],
        );
    };
    if !rules.allowed(&device_id) {
        return (Registration::Done, vec![Action::Log(Note::NotAllowed), reply(StatusCode::Forbidden, vec![])]);
    }
    // Answered from memory: in a registration storm half of all requests are these, and they
    // must not cost a Store round trip.
    if rules.cfg.auth && req.authorization.is_none() {
        return (Registration::Done, rules.challenge(&req, false, now_ms));
    }
    let keys = FailureKeys::of(&device_id, req.source_ip());
    (Registration::LookingUp { device_id: device_id.clone(), req }, vec![Action::Lookup { device_id, keys }])
}

fn looked_up(rules: &Rules, device_id: DeviceId, req: Register, found: Lookup, now_ms: u64) -> (Registration, Vec<Action>) {
    let cfg = rules.cfg;
    let done = |actions| (Registration::Done, actions);
    let keys = FailureKeys::of(&device_id, req.source_ip());
    if cfg.lockout_threshold > 0 && (found.device_failures >= cfg.lockout_threshold || found.source_failures >= cfg.lockout_threshold) {
        return done(vec![
            Action::Count(Counter::LockedOut),
            Action::Log(Note::LockedOut),
            reply(StatusCode::Forbidden, vec![other("Retry-After", cfg.lockout_secs.to_string())]),
        ]);
    }

    let mut actions = vec![];
    if let (true, Some(auth)) = (cfg.auth, req.authorization.as_deref()) {
        let creds = match Credentials::parse(auth) {
            Ok(c) => c,
            Err(e) => {
                return done(vec![
                    Action::Count(Counter::BadRequest),
                    Action::Log(Note::UnusableAuthorization(e.to_string())),
                    reply(StatusCode::BadRequest, vec![]),
                ])
            }
        };
        match rules.nonces.check(&creds.nonce, now_ms / 1000) {
            NonceCheck::Valid => {}
            NonceCheck::Stale => return done(rules.challenge(&req, true, now_ms)),
            NonceCheck::Invalid => return done(rules.challenge(&req, false, now_ms)),
        }
        let password = found.password.as_deref().unwrap_or(&cfg.password);
        if !creds.verify("REGISTER", password) {
            return done(vec![
                Action::Count(Counter::AuthFailure),
                Action::RecordFailure { keys, lockout_secs: cfg.lockout_secs },
                Action::Log(Note::WrongPassword),
                reply(StatusCode::Forbidden, vec![]),
            ]);
        }
        if found.device_failures > 0 {
            actions.push(Action::ClearDeviceFailures { key: keys.device });
        }
    }

    let date = gb::sip::gb_date(now_ms, cfg.date_utc_offset_minutes);
    let requested = req.expires.unwrap_or(cfg.default_expires_secs);
    if requested == 0 {
        actions.extend([Action::Count(Counter::Unregister), Action::Unregister(device_id.clone())]);
        return (Registration::Unregistering { device_id, date }, actions);
    }
    if requested < cfg.min_expires_secs {
        actions.push(reply(StatusCode::IntervalTooBrief, vec![other("Min-Expires", cfg.min_expires_secs.to_string())]));
        return done(actions);
    }
    let granted = requested.min(cfg.max_expires_secs);
    let contact = req.contact.clone().unwrap_or_default();
    let prev = found.prev;
    let device = Device {
        id: device_id.clone(),
        transport: req.transport,
        source_addr: req.source.clone(),
        contact: contact.clone(),
        node: rules.node.clone(),
        local_addr: match req.transport {
            SipTransport::Udp => rules.udp_addr.clone(),
            SipTransport::Tcp => rules.tcp_addr.clone(),
        },
        expires_secs: granted,
        registered_at_ms: now_ms,
        last_seen_ms: now_ms,
        online: true,
        keepalive_interval_secs: cfg.keepalive_interval_secs,
        gb_version: req.gb_version.clone(),
        user_agent: req.user_agent.clone(),
        info: prev.as_ref().map(|p| p.info.clone()).unwrap_or_default(),
        status: prev.as_ref().and_then(|p| p.status.clone()),
        channel_count: prev.as_ref().map_or(0, |p| p.channel_count),
    };
    // Offline after the missed keepalives, or at expiry if that comes first.
    let deadline_ms = (now_ms + rules.keepalive_timeout_ms()).min(now_ms + u64::from(granted) * 1000);
    let mut headers = vec![other("Expires", granted.to_string()), other("Date", date)];
    if !contact.is_empty() {
        headers.insert(0, other("Contact", contact));
    }
    actions.extend([
        Action::Store { device: Box::new(device), deadline_ms },
        Action::RememberRoute(device_id.clone()),
        reply(StatusCode::OK, headers),
        Action::Count(Counter::Register),
    ]);
    // A NAT rebinding (new source port or address) or a move to this node is a new
    // registration: the device is queried again, as after a reboot.
    let fresh = prev.as_ref().is_none_or(|p| !p.online || p.source_addr != req.source || &p.node != rules.node);
    if fresh {
        actions.push(Action::Log(Note::Registered { expires: granted }));
        if !prev.as_ref().is_some_and(|p| p.online) {
            actions.push(Action::Publish { device_id: device_id.clone(), online: true, reason: "registered" });
        }
        if cfg.query_on_register {
            actions.push(Action::Query(device_id));
        }
    }
    done(actions)
}

#[cfg(test)]
mod tests {
    //! The registrar's decisions, one row per rule: a configuration, a REGISTER, what the
    //! Store holds, and the exact sequence of actions that must come out.

    use super::*;

    const NOW: u64 = 1_795_221_281_123;
    const DEV: &str = "34020000001320000001";
    const SRC: &str = "203.0.113.7:40000";

    struct World {
        cfg: SipConfig,
        nonces: NonceIssuer,
        node: NodeId,
    }

    impl World {
        fn rules(&self) -> Rules<'_> {
            Rules {
                cfg: &self.cfg,
                realm: "3402000000",
                nonces: &self.nonces,
                node: &self.node,
                udp_addr: "10.0.0.1:5060".into(),
                tcp_addr: "10.0.0.1:5061".into(),
            }
        }

        /// An `Authorization` answering a challenge of ours issued `age_secs` ago.
        fn auth(&self, password: &str, algorithm: Algorithm, qop: bool, age_secs: u64) -> String {
            let nonce = self.nonces.issue(NOW / 1000 - age_secs);
            let c = Challenge { realm: "3402000000".into(), nonce, algorithm, qop_auth: qop, stale: false, opaque: None };
            c.answer(DEV, password, "REGISTER", "sip:34020000002000000001@3402000000", 1, "0a4f113b")
        }
    }

    fn world(tweak: fn(&mut SipConfig)) -> World {
        let mut cfg = SipConfig::default();
        tweak(&mut cfg);
        World { cfg, nonces: NonceIssuer::new(b"test secret", 300), node: "sip-a".parse().unwrap() }
    }

    fn register(authorization: Option<String>) -> Register {
        Register {
            from_user: Some(DEV.into()),
            authorization,
            expires: None,
            contact: Some(format!("<sip:{DEV}@192.168.1.64:5060>")),
            gb_version: None,
            user_agent: Some("IPC".into()),
            transport: SipTransport::Udp,
            source: SRC.into(),
        }
    }

    fn device(source: &str, node: &str, online: bool) -> Device {
        Device {
            id: DEV.parse().unwrap(),
            transport: SipTransport::Udp,
            source_addr: source.into(),
            contact: String::new(),
            node: node.parse().unwrap(),
            local_addr: "10.0.0.1:5060".into(),
            expires_secs: 3600,
            registered_at_ms: NOW - 60_000,
            last_seen_ms: NOW - 1000,
            online,
            keepalive_interval_secs: 60,
            gb_version: None,
            user_agent: None,
            info: gb::model::DeviceInfo { manufacturer: Some("Hikvision".into()), ..Default::default() },
            status: None,
            channel_count: 4,
        }
    }

    /// Runs the machine to the end, answering its Store reads with `found` and `was_online`.
    fn run(w: &World, req: Register, found: &Lookup, was_online: bool) -> Vec<Action> {
        let rules = w.rules();
        let (mut state, mut out) = step(&rules, Registration::New(req), Event::Start, NOW);
        let mut all = vec![];
        loop {
            let event = out.iter().find_map(|a| match a {
                Action::Lookup { .. } => Some(Event::LookedUp(Box::new(found.clone()))),
                Action::Unregister(_) => Some(Event::Unregistered { was_online }),
                _ => None,
            });
            all.append(&mut out);
            match event {
                Some(e) => (state, out) = step(&rules, state, e, NOW),
                None => break,
            }
        }
        assert!(matches!(state, Registration::Done), "the machine ends answered");
        all
    }

    fn label(a: &Action) -> String {
        match a {
            Action::Lookup { .. } => "lookup".into(),
            Action::Reply { code, .. } => format!("reply {}", code.code()),
            Action::RecordFailure { .. } => "record failure".into(),
            Action::ClearDeviceFailures { .. } => "clear failures".into(),
            Action::Unregister(_) => "unregister".into(),
            Action::Forget(_) => "forget".into(),
            Action::Store { .. } => "store".into(),
            Action::RememberRoute(_) => "remember route".into(),
            Action::Publish { online: true, .. } => "publish online".into(),
            Action::Publish { online: false, .. } => "publish offline".into(),
            Action::Query(_) => "query".into(),
            Action::Count(c) => format!("count {c:?}"),
            Action::Log(Note::Registered { .. }) => "log Registered".into(),
            Action::Log(n) => format!("log {}", format!("{n:?}").split('(').next().unwrap()),
        }
    }

    fn header<'a>(actions: &'a [Action], name: &str) -> Vec<&'a str> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Reply { headers, .. } => Some(headers),
                _ => None,
            })
            .flatten()
            .filter_map(|h| match h {
                Header::Other(n, v) if n.eq_ignore_ascii_case(name) => Some(v.as_str()),
                _ => None,
            })
            .collect()
    }

    fn stored(actions: &[Action]) -> (&Device, u64) {
        actions
            .iter()
            .find_map(|a| match a {
                Action::Store { device, deadline_ms } => Some((device.as_ref(), *deadline_ms)),
                _ => None,
            })
            .expect("a Store action")
    }

    /// The actions of a first, successful registration.
    const REGISTERED: &[&str] =
        &["lookup", "store", "remember route", "reply 200", "count Register", "log Registered", "publish online", "query"];
    /// The same, after earlier failed attempts of the device.
    const REGISTERED_CLEARING_FAILURES: &[&str] = &[
        "lookup",
        "clear failures",
        "store",
        "remember route",
        "reply 200",
        "count Register",
        "log Registered",
        "publish online",
        "query",
    ];
    const CHALLENGED: &[&str] = &["count Challenge", "reply 401"];

    struct Case {
        name: &'static str,
        cfg: fn(&mut SipConfig),
        req: fn(&World) -> Register,
        found: fn() -> Lookup,
        was_online: bool,
        expect: &'static [&'static str],
        check: fn(&[Action]),
    }

    fn none(_: &mut SipConfig) {}
    fn nothing() -> Lookup {
        Lookup::default()
    }
    fn no_check(_: &[Action]) {}
    fn md5(w: &World) -> Register {
        register(Some(w.auth("12345678", Algorithm::Md5, true, 0)))
    }
    fn with_prev(prev: Device) -> Lookup {
        Lookup { prev: Some(prev), ..Default::default() }
    }

    const CASES: &[Case] = &[
        // --- the device id and the allow-list, before any Store access
        Case {
            name: "no user in From: 400, nothing read",
            cfg: none,
            req: |_| Register { from_user: None, ..register(None) },
            found: nothing,
            was_online: false,
            expect: &["count BadRequest", "log NoDeviceId", "reply 400"],
            check: no_check,
        },
        Case {
            name: "a From user that is not a 20-digit id: 400",
            cfg: none,
            req: |_| Register { from_user: Some("admin".into()), ..register(None) },
            found: nothing,
            was_online: false,
            expect: &["count BadRequest", "log NoDeviceId", "reply 400"],
            check: no_check,
        },
        Case {
            name: "id outside allow_prefixes: 403 even with good credentials",
            cfg: |c| c.allow_prefixes = vec!["4401".into()],
            req: md5,
            found: nothing,
            was_online: false,
            expect: &["log NotAllowed", "reply 403"],
            check: no_check,
        },
        Case {
            name: "id inside one of allow_prefixes: registered",
            cfg: |c| c.allow_prefixes = vec!["4401".into(), "340200".into()],
            req: md5,
            found: nothing,
            was_online: false,
            expect: REGISTERED,
            check: no_check,
        },
        // --- challenges, answered from memory
        Case {
            name: "no credentials: one MD5 challenge with qop, not stale",
            cfg: none,
            req: |_| register(None),
            found: nothing,
            was_online: false,
            expect: CHALLENGED,
            check: |a| {
                let c = header(a, "WWW-Authenticate");
                assert_eq!(c.len(), 1);
                assert!(c[0].contains("realm=\"3402000000\"") && c[0].contains("algorithm=MD5") && c[0].contains("qop=\"auth\""), "{c:?}");
                assert!(!c[0].contains("stale"));
            },
        },
        Case {
            name: "no credentials, qop off: the challenge has no qop",
            cfg: |c| c.qop = false,
            req: |_| register(None),
            found: nothing,
            was_online: false,
            expect: CHALLENGED,
            check: |a| assert!(!header(a, "WWW-Authenticate")[0].contains("qop")),
        },
        Case {
            name: "GB28181-2022 device (X-GB-Ver 3.0): SHA-256 offered first, then MD5",
            cfg: none,
            req: |_| Register { gb_version: Some("3.0".into()), ..register(None) },
            found: nothing,
            was_online: false,
            expect: CHALLENGED,
            check: |a| {
                let c = header(a, "WWW-Authenticate");
                assert!(c.len() == 2 && c[0].contains("SHA-256") && c[1].contains("MD5"), "{c:?}");
            },
        },
        Case {
            name: "GB28181-2016 device (X-GB-Ver 2.0): MD5 only",
            cfg: none,
            req: |_| Register { gb_version: Some("2.0".into()), ..register(None) },
            found: nothing,
            was_online: false,
            expect: CHALLENGED,
            check: |a| assert_eq!(header(a, "WWW-Authenticate").len(), 1),
        },
        Case {
            name: "sha256 = always: SHA-256 and MD5 to a device that says no version",
            cfg: |c| c.sha256 = Sha256Policy::Always,
            req: |_| register(None),
            found: nothing,
            was_online: false,
            expect: CHALLENGED,
            check: |a| assert!(header(a, "WWW-Authenticate")[0].contains("SHA-256")),
        },
        Case {
            name: "sha256 = off: MD5 only even to a 2022 device",
            cfg: |c| c.sha256 = Sha256Policy::Off,
            req: |_| Register { gb_version: Some("3.0".into()), ..register(None) },
            found: nothing,
            was_online: false,
            expect: CHALLENGED,
            check: |a| {
                let c = header(a, "WWW-Authenticate");
                assert!(c.len() == 1 && c[0].contains("MD5"), "{c:?}");
            },
        },
        // --- digest variants
        Case {
            name: "MD5 with qop=auth: registered, Contact echoed, default Expires, GB Date",
            cfg: none,
            req: md5,
            found: nothing,
            was_online: false,
            expect: REGISTERED,
            check: |a| {
                assert_eq!(header(a, "Expires"), ["3600"]);
                assert_eq!(header(a, "Contact"), [format!("<sip:{DEV}@192.168.1.64:5060>").as_str()]);
                assert_eq!(header(a, "Date"), ["2026-11-21T08:34:41.123"], "UTC+8 by default");
            },
        },
        Case {
            name: "MD5 without qop (RFC 2069 style): registered",
            cfg: none,
            req: |w| register(Some(w.auth("12345678", Algorithm::Md5, false, 0))),
            found: nothing,
            was_online: false,
            expect: REGISTERED,
            check: no_check,
        },
        Case {
            name: "SHA-256 with qop: registered",
            cfg: none,
            req: |w| register(Some(w.auth("12345678", Algorithm::Sha256, true, 0))),
            found: nothing,
            was_online: false,
            expect: REGISTERED,
            check: no_check,
        },
        Case {
            name: "wrong password: 403, failure counted by device and source, nothing stored",
            cfg: none,
            req: |w| register(Some(w.auth("wrong", Algorithm::Md5, true, 0))),
            found: nothing,
            was_online: false,
            expect: &["lookup", "count AuthFailure", "record failure", "log WrongPassword", "reply 403"],
            check: |a| {
                let keys = a.iter().find_map(|a| match a {
                    Action::RecordFailure { keys, lockout_secs: 300 } => Some(keys),
                    _ => None,
                });
                assert_eq!(keys, Some(&FailureKeys { device: format!("dev:{DEV}"), source: "ip:203.0.113.7".into() }));
            },
        },
        Case {
            name: "the device's own password is the one checked",
            cfg: none,
            req: |w| register(Some(w.auth("own-secret", Algorithm::Md5, true, 0))),
            found: || Lookup { password: Some("own-secret".into()), ..Default::default() },
            was_online: false,
            expect: REGISTERED,
            check: no_check,
        },
        Case {
            name: "the global password no longer works for a device with its own",
            cfg: none,
            req: md5,
            found: || Lookup { password: Some("own-secret".into()), ..Default::default() },
            was_online: false,
            expect: &["lookup", "count AuthFailure", "record failure", "log WrongPassword", "reply 403"],
            check: no_check,
        },
        Case {
            name: "a nonce older than nonce_ttl_secs: challenged again with stale=true",
            cfg: none,
            req: |w| register(Some(w.auth("12345678", Algorithm::Md5, true, 301))),
            found: nothing,
            was_online: false,
            expect: &["lookup", "count Challenge", "reply 401"],
            check: |a| assert!(header(a, "WWW-Authenticate")[0].contains("stale=true")),
        },
        Case {
            name: "a nonce we never issued (other secret): challenged, not stale, no failure counted",
            cfg: none,
            req: |_| {
                let other = World { nonces: NonceIssuer::new(b"another node's secret", 300), ..world(none) };
                register(Some(other.auth("12345678", Algorithm::Md5, true, 0)))
            },
            found: nothing,
            was_online: false,
            expect: &["lookup", "count Challenge", "reply 401"],
            check: |a| assert!(!header(a, "WWW-Authenticate")[0].contains("stale")),
        },
        Case {
            name: "unusable Authorization (Basic): 400",
            cfg: none,
            req: |_| register(Some("Basic YWRtaW46MTIzNDU2".into())),
            found: nothing,
            was_online: false,
            expect: &["lookup", "count BadRequest", "log UnusableAuthorization", "reply 400"],
            check: no_check,
        },
        Case {
            name: "auth off: registered without credentials",
            cfg: |c| c.auth = false,
            req: |_| register(None),
            found: nothing,
            was_online: false,
            expect: REGISTERED,
            check: no_check,
        },
        // --- lockout
        Case {
            name: "locked out by device id: 403 with Retry-After, even with the right password",
            cfg: none,
            req: md5,
            found: || Lookup { device_failures: 5, ..Default::default() },
            was_online: false,
            expect: &["lookup", "count LockedOut", "log LockedOut", "reply 403"],
            check: |a| assert_eq!(header(a, "Retry-After"), ["300"]),
        },
        Case {
            name: "locked out by source IP (another id guessing from the same host)",
            cfg: none,
            req: md5,
            found: || Lookup { source_failures: 7, ..Default::default() },
            was_online: false,
            expect: &["lookup", "count LockedOut", "log LockedOut", "reply 403"],
            check: no_check,
        },
        Case {
            name: "failures below the threshold, right password: registered and the device's count cleared",
            cfg: none,
            req: md5,
            found: || Lookup { device_failures: 4, source_failures: 4, ..Default::default() },
            was_online: false,
            expect: REGISTERED_CLEARING_FAILURES,
            check: no_check,
        },
        Case {
            name: "lockout_threshold 0 turns lockout off",
            cfg: |c| c.lockout_threshold = 0,
            req: md5,
            found: || Lookup { device_failures: 1000, ..Default::default() },
            was_online: false,
            expect: REGISTERED_CLEARING_FAILURES,
            check: no_check,
        },
        Case {
            name: "locked out with auth off too (the counters come from earlier auth)",
            cfg: |c| c.auth = false,
            req: |_| register(None),
            found: || Lookup { device_failures: 5, ..Default::default() },
            was_online: false,
            expect: &["lookup", "count LockedOut", "log LockedOut", "reply 403"],
            check: no_check,
        },
        // --- unregister
        Case {
            name: "Expires 0 of an online device: dropped, forgotten, 200 Expires 0, offline event",
            cfg: none,
            req: |w| Register { expires: Some(0), ..md5(w) },
            found: || with_prev(device(SRC, "sip-a", true)),
            was_online: true,
            expect: &["lookup", "count Unregister", "unregister", "forget", "reply 200", "publish offline"],
            check: |a| assert_eq!(header(a, "Expires"), ["0"]),
        },
        Case {
            name: "Expires 0 of a device already offline: no event",
            cfg: none,
            req: |w| Register { expires: Some(0), ..md5(w) },
            found: nothing,
            was_online: false,
            expect: &["lookup", "count Unregister", "unregister", "forget", "reply 200"],
            check: no_check,
        },
        Case {
            name: "Expires 0 with a wrong password: refused, still registered",
            cfg: none,
            req: |w| Register { expires: Some(0), ..register(Some(w.auth("wrong", Algorithm::Md5, true, 0))) },
            found: || with_prev(device(SRC, "sip-a", true)),
            was_online: true,
            expect: &["lookup", "count AuthFailure", "record failure", "log WrongPassword", "reply 403"],
            check: no_check,
        },
        // --- expiry bounds
        Case {
            name: "Expires below min_expires_secs: 423 with Min-Expires",
            cfg: none,
            req: |w| Register { expires: Some(59), ..md5(w) },
            found: nothing,
            was_online: false,
            expect: &["lookup", "reply 423"],
            check: |a| assert_eq!(header(a, "Min-Expires"), ["60"]),
        },
        Case {
            name: "Expires at min_expires_secs: granted; offline at expiry, before the missed keepalives",
            cfg: none,
            req: |w| Register { expires: Some(60), ..md5(w) },
            found: nothing,
            was_online: false,
            expect: REGISTERED,
            check: |a| {
                assert_eq!(header(a, "Expires"), ["60"]);
                assert_eq!(stored(a).1, NOW + 60_000);
            },
        },
        Case {
            name: "Expires above max_expires_secs: capped; offline after 3 missed keepalives",
            cfg: none,
            req: |w| Register { expires: Some(999_999), ..md5(w) },
            found: nothing,
            was_online: false,
            expect: REGISTERED,
            check: |a| {
                assert_eq!(header(a, "Expires"), ["86400"]);
                assert_eq!(stored(a).0.expires_secs, 86_400);
                assert_eq!(stored(a).1, NOW + 180_000);
            },
        },
        Case {
            name: "no Expires: default_expires_secs",
            cfg: |c| c.default_expires_secs = 7200,
            req: md5,
            found: nothing,
            was_online: false,
            expect: REGISTERED,
            check: |a| assert_eq!(header(a, "Expires"), ["7200"]),
        },
        // --- refresh, NAT rebinding, moves
        Case {
            name: "a refresh from the same address on the same node: quiet (no event, no queries)",
            cfg: none,
            req: md5,
            found: || with_prev(device(SRC, "sip-a", true)),
            was_online: false,
            expect: &["lookup", "store", "remember route", "reply 200", "count Register"],
            check: |a| {
                let (d, _) = stored(a);
                assert_eq!(d.info.manufacturer.as_deref(), Some("Hikvision"), "what queries learnt is kept");
                assert_eq!(d.channel_count, 4);
            },
        },
        Case {
            name: "NAT rebinding (new source port): the new address stored, queried again, no online event",
            cfg: none,
            req: |w| Register { source: "203.0.113.7:40999".into(), ..md5(w) },
            found: || with_prev(device(SRC, "sip-a", true)),
            was_online: false,
            expect: &["lookup", "store", "remember route", "reply 200", "count Register", "log Registered", "query"],
            check: |a| assert_eq!(stored(a).0.source_addr, "203.0.113.7:40999"),
        },
        Case {
            name: "NAT rebinding to a new public address: same",
            cfg: none,
            req: |w| Register { source: "198.51.100.9:5060".into(), ..md5(w) },
            found: || with_prev(device(SRC, "sip-a", true)),
            was_online: false,
            expect: &["lookup", "store", "remember route", "reply 200", "count Register", "log Registered", "query"],
            check: |a| assert_eq!(stored(a).0.source_addr, "198.51.100.9:5060"),
        },
        Case {
            name: "registered before on another node: this node owns it now, queried again",
            cfg: none,
            req: md5,
            found: || with_prev(device(SRC, "sip-b", true)),
            was_online: false,
            expect: &["lookup", "store", "remember route", "reply 200", "count Register", "log Registered", "query"],
            check: |a| assert_eq!(stored(a).0.node.as_str(), "sip-a"),
        },
        Case {
            name: "back after going offline: online event and queries",
            cfg: none,
            req: md5,
            found: || with_prev(device(SRC, "sip-a", false)),
            was_online: false,
            expect: REGISTERED,
            check: no_check,
        },
        Case {
            name: "query_on_register off: registered, not queried",
            cfg: |c| c.query_on_register = false,
            req: md5,
            found: nothing,
            was_online: false,
            expect: &["lookup", "store", "remember route", "reply 200", "count Register", "log Registered", "publish online"],
            check: no_check,
        },
        Case {
            name: "over TCP: stored with the TCP listener as local address",
            cfg: none,
            req: |w| Register { transport: SipTransport::Tcp, ..md5(w) },
            found: nothing,
            was_online: false,
            expect: REGISTERED,
            check: |a| {
                let (d, _) = stored(a);
                assert_eq!((d.transport, d.local_addr.as_str()), (SipTransport::Tcp, "10.0.0.1:5061"));
            },
        },
        Case {
            name: "a REGISTER without Contact: 200 without Contact",
            cfg: none,
            req: |w| Register { contact: None, ..md5(w) },
            found: nothing,
            was_online: false,
            expect: REGISTERED,
            check: |a| assert!(header(a, "Contact").is_empty()),
        },
    ];

    #[test]
    fn registrar_decisions() {
        assert!(CASES.len() >= 30);
        for case in CASES {
            let w = world(case.cfg);
            let actions = run(&w, (case.req)(&w), &(case.found)(), case.was_online);
            let labels: Vec<String> = actions.iter().map(label).collect();
            assert_eq!(labels, case.expect, "case: {}", case.name);
            (case.check)(&actions);
        }
    }

    #[test]
    fn an_event_the_state_does_not_wait_for_changes_nothing() {
        let w = world(none);
        let (state, actions) = step(&w.rules(), Registration::Done, Event::Unregistered { was_online: true }, NOW);
        assert!(matches!(state, Registration::Done) && actions.is_empty());
        let (state, actions) = step(&w.rules(), Registration::New(md5(&w)), Event::LookedUp(Box::default()), NOW);
        assert!(matches!(state, Registration::New(_)) && actions.is_empty());
    }

    #[test]
    fn gb_version_detection() {
        assert!(is_gb2022(Some("3.0")));
        assert!(is_gb2022(Some(" 3.1 ")));
        assert!(!is_gb2022(Some("2.0")));
        assert!(!is_gb2022(Some("x")));
        assert!(!is_gb2022(None));
    }
}
