//! Setting a play up, without I/O: SSRC, session record, a load unit on a media node, its
//! receiver, the camera's dialog. Each step's result comes back as an event; every resource
//! taken goes into a ledger (`Held`), and any failure gives back exactly what the ledger holds,
//! newest first. The shell (`manager::drive`) runs the actions; this module decides.
//!
//! ```text
//! play:     Inserting → Reserving → Opening → Inviting → PassingAnswer → Saving → Done
//! recover:               Reserving → …                                          (same)
//!                                         ▲  open failed once: its load unit back, next node
//! any Failed(e): Release(held…), Finish(Err(e))
//! ```

use std::net::SocketAddr;

use cluster::wire::MediaNodeRecord;
use gb::ids::{ServerId, Ssrc};
use gb::sdp::{GbSdp, Session as SdpSession};

use super::session::{Session, SessionKind, SessionState};
use super::{PlayError, PlayTransport};
use crate::dialog::Dialog;

/// Nodes tried to open a receiver before the play gives up.
const OPEN_TRIES: usize = 2;

/// Something a play took and must give back if it fails.
#[derive(Debug, Clone, PartialEq)]
pub enum Held {
    /// Its SSRC in the Store's SSRC table.
    Ssrc(Ssrc),
    /// Its session record (state `Starting`).
    Record,
    /// A load unit reserved on a media node.
    Load { node: String },
    /// A receiver open on a media node.
    Receiver { node: String, api_url: String },
    /// The camera's dialog (it streams until BYE).
    Dialog(Box<Dialog>),
    /// The dialog and media node kept in this node's memory (`Plays`).
    Kept,
}

/// What a setup is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// A new session: SSRC and record are taken here and given back on failure.
    Play,
    /// Its media node died at `noticed_ms`: a new receiver and dialog for the session as it
    /// is (SSRC and record stay the session's whatever happens).
    Recover { noticed_ms: u64 },
}

#[derive(Debug, Clone, PartialEq)]
enum Phase {
    Inserting,
    Reserving,
    Opening(Box<MediaNodeRecord>),
    Inviting { node: Box<MediaNodeRecord>, rtp: (String, u16) },
    PassingAnswer { node: Box<MediaNodeRecord>, rtp: (String, u16), dialog: Box<Dialog> },
    Saving,
    Done,
}

/// The result of the step the shell was asked to run.
#[derive(Debug, Clone)]
pub enum Event {
    Start,
    /// The record went in (false: another play of the channel got there first).
    Inserted(bool),
    Reserved(Box<MediaNodeRecord>),
    Opened {
        ip: String,
        port: u16,
    },
    Invited {
        dialog: Box<Dialog>,
        answer_sdp: String,
    },
    AnswerPassed,
    Saved,
    /// The step failed.
    Failed(PlayError),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Insert(Box<Session>),
    /// Reserve the least-loaded media node not in `exclude`.
    Reserve {
        exclude: Vec<String>,
    },
    Open {
        node: Box<MediaNodeRecord>,
        ssrc: u32,
        transport: PlayTransport,
    },
    Invite {
        sdp: String,
        subject: String,
    },
    /// Tell the receiver what the camera's answer says (its own SSRC, where it listens).
    PassAnswer {
        node: Box<MediaNodeRecord>,
        ssrc: Option<u32>,
        peer: Option<SocketAddr>,
    },
    /// Keep the dialog and the media node in this node's memory.
    Keep {
        node: Box<MediaNodeRecord>,
        dialog: Box<Dialog>,
    },
    /// Write the session, now playing.
    Save(Box<Session>),
    /// Give something back.
    Release(Held),
    Finish(Result<Box<Session>, PlayError>),
}

/// A play (or a move) being set up.
#[derive(Debug, Clone)]
pub struct Setup {
    pub session: Session,
    purpose: Purpose,
    phase: Phase,
    held: Vec<Held>,
    /// Nodes not to use: failed to open here, or (recovery) the dead one.
    exclude: Vec<String>,
    failed_opens: usize,
    /// The device's observed address (a TCP-active answer may say 0.0.0.0).
    device_source: String,
    server_id: ServerId,
}

impl Setup {
    /// A new play of `session` (state `Starting`), whose SSRC the shell has just allocated:
    /// the setup holds it from here.
    pub fn play(session: Session, device_source: String, server_id: ServerId) -> Self {
        let ssrc = Held::Ssrc(session.ssrc.clone());
        let mut setup = Self::new(session, Purpose::Play, Phase::Inserting, vec![], device_source, server_id);
        setup.held.push(ssrc);
        setup
    }

    /// Moves `session` (state `Recovering`) off its dead media node.
    pub fn recover(session: Session, dead: String, noticed_ms: u64, device_source: String, server_id: ServerId) -> Self {
        Self::new(session, Purpose::Recover { noticed_ms }, Phase::Reserving, vec![dead], device_source, server_id)
    }

    fn new(session: Session, purpose: Purpose, phase: Phase, exclude: Vec<String>, device_source: String, server_id: ServerId) -> Self {
        Self { session, purpose, phase, held: vec![], exclude, failed_opens: 0, device_source, server_id }
    }

    /// What the setup holds now (empty once it has finished, either way).
    pub fn held(&self) -> &[Held] {
        &self.held
    }

    /// One step: `(state, event, now) -> (state, actions)`.
    pub fn step(mut self, event: Event, now_ms: u64) -> (Self, Vec<Action>) {
        let phase = std::mem::replace(&mut self.phase, Phase::Done);
        match (phase, event) {
            (Phase::Opening(node), Event::Failed(e)) => self.open_failed(*node, e),
            (_, Event::Failed(e)) => self.fail(e),
            (Phase::Inserting, Event::Start) => {
                self.phase = Phase::Inserting;
                let insert = Action::Insert(Box::new(self.session.clone()));
                (self, vec![insert])
            }
            (Phase::Reserving, Event::Start) => self.reserve(),
            (Phase::Inserting, Event::Inserted(false)) => {
                let id = self.session.stream_id.clone();
                self.fail(PlayError::Busy(format!("session {id} was created concurrently; try again")))
            }
            (Phase::Inserting, Event::Inserted(true)) => {
                self.held.push(Held::Record);
                self.reserve()
            }
            (Phase::Reserving, Event::Reserved(node)) => {
                self.held.push(Held::Load { node: node.id.clone() });
                let open = Action::Open { node: node.clone(), ssrc: self.session.ssrc.value(), transport: self.session.transport };
                self.phase = Phase::Opening(node);
                (self, vec![open])
            }
            (Phase::Opening(node), Event::Opened { ip, port }) => {
                self.held.push(Held::Receiver { node: node.id.clone(), api_url: node.api_url.clone() });
                let invite = self.invite(&ip, port);
                self.phase = Phase::Inviting { node, rtp: (ip, port) };
                (self, vec![invite])
            }
            (Phase::Inviting { node, rtp }, Event::Invited { dialog, answer_sdp }) => {
                self.held.push(Held::Dialog(dialog.clone()));
                self.answered(node, rtp, dialog, &answer_sdp, now_ms)
            }
            (Phase::PassingAnswer { node, rtp, dialog }, Event::AnswerPassed) => self.keep(node, rtp, dialog, now_ms),
            (Phase::Saving, Event::Saved) => {
                // Done: what was held is the session's now, given back by its teardown.
                self.held.clear();
                let done = Action::Finish(Ok(Box::new(self.session.clone())));
                (self, vec![done])
            }
            // An event the phase does not wait for changes nothing.
            (phase, _) => {
                self.phase = phase;
                (self, vec![])
            }
        }
    }

    fn reserve(mut self) -> (Self, Vec<Action>) {
        self.phase = Phase::Reserving;
        let reserve = Action::Reserve { exclude: self.exclude.clone() };
        (self, vec![reserve])
    }

    /// A node that could not open a receiver gets its load unit back and is skipped for the
    /// next choice (`OPEN_TRIES` nodes in all).
    fn open_failed(mut self, node: MediaNodeRecord, e: PlayError) -> (Self, Vec<Action>) {
        let load = Held::Load { node: node.id.clone() };
        self.held.retain(|h| *h != load);
        self.exclude.push(node.id);
        self.failed_opens += 1;
        if self.failed_opens >= OPEN_TRIES {
            let (s, mut actions) = self.fail(e);
            actions.insert(0, Action::Release(load));
            return (s, actions);
        }
        let (s, mut actions) = self.reserve();
        actions.insert(0, Action::Release(load));
        (s, actions)
    }

    /// Gives back everything held, newest first, and finishes with `e`.
    fn fail(mut self, e: PlayError) -> (Self, Vec<Action>) {
        self.phase = Phase::Done;
        let mut actions: Vec<Action> = self.held.drain(..).rev().map(Action::Release).collect();
        actions.push(Action::Finish(Err(e)));
        (self, actions)
    }

    fn invite(&self, ip: &str, port: u16) -> Action {
        let s = &self.session;
        // Live: `s=Play`, `t=0 0`. Playback: `s=Playback`, `u=<channel>:0`, the span in `t=`.
        // Download: as playback, `s=Download` and `a=downloadspeed`.
        let span = |p: &super::session::PlaybackState| (p.start.max(0) as u64, p.end.max(0) as u64);
        let uri = Some(format!("{}:0", s.channel_id));
        let (session, uri, time, download_speed) = match (s.kind, s.playback) {
            (SessionKind::Playback, Some(p)) => (SdpSession::Playback, uri, span(&p), None),
            (SessionKind::Download, Some(p)) => (SdpSession::Download, uri, span(&p), Some((p.scale_milli / 1000).max(1))),
            _ => (SdpSession::Play, None, (0, 0), None),
        };
        let offer = GbSdp {
            origin: self.server_id.to_string(),
            session,
            uri,
            ip: ip.to_owned(),
            time,
            media_port: port,
            transport: s.transport,
            rtpmap: vec![(96, "PS".into()), (98, "H264".into()), (97, "MPEG4".into())],
            direction: Some("recvonly".into()),
            ssrc: Some(s.ssrc.to_string()),
            f: None,
            download_speed,
        };
        Action::Invite { sdp: offer.to_text(), subject: format!("{}:{},{}:0", s.channel_id, s.ssrc, self.server_id) }
    }

    /// The camera's SDP answer: its own SSRC (some cameras use one and say so) and, for TCP
    /// active, where it listens. Unusable: hang up and give back.
    fn answered(
        mut self,
        node: Box<MediaNodeRecord>,
        rtp: (String, u16),
        dialog: Box<Dialog>,
        sdp: &str,
        now_ms: u64,
    ) -> (Self, Vec<Action>) {
        let answer = match GbSdp::parse(sdp) {
            Ok(a) => a,
            Err(e) => return self.fail(PlayError::BadAnswer(e.to_string())),
        };
        let ours = self.session.ssrc.value();
        let theirs: Option<u32> = answer.ssrc.as_deref().and_then(|y| y.trim().parse().ok()).filter(|y| *y != ours);
        let peer = match self.session.transport {
            PlayTransport::TcpActive => {
                let ip = if answer.ip == "0.0.0.0" {
                    self.device_source.rsplit_once(':').map_or("", |(h, _)| h).to_owned()
                } else {
                    answer.ip.clone()
                };
                match format!("{ip}:{}", answer.media_port).parse::<SocketAddr>() {
                    Ok(p) if answer.media_port != 0 => Some(p),
                    _ => {
                        return self.fail(PlayError::BadAnswer(format!(
                            "no usable camera address in the answer ({}:{})",
                            answer.ip, answer.media_port
                        )))
                    }
                }
            }
            _ => None,
        };
        if theirs.is_none() && peer.is_none() {
            return self.keep(node, rtp, dialog, now_ms);
        }
        let pass = Action::PassAnswer { node: node.clone(), ssrc: theirs, peer };
        self.phase = Phase::PassingAnswer { node, rtp, dialog };
        (self, vec![pass])
    }

    /// The dialog is up and the receiver knows what to accept: record where the stream is.
    fn keep(mut self, node: Box<MediaNodeRecord>, (ip, port): (String, u16), dialog: Box<Dialog>, now_ms: u64) -> (Self, Vec<Action>) {
        let s = &mut self.session;
        s.media_node = node.id.clone();
        s.media_api = node.api_url.clone();
        s.media_instance = node.instance.clone();
        s.rtp_addr = format!("{ip}:{port}");
        s.call_id = Some(dialog.call_id.clone());
        s.dialog = Some((*dialog).clone());
        s.urls = super::media_nodes::urls(&node, s.stream_id.as_str());
        s.state = SessionState::Playing;
        match self.purpose {
            Purpose::Play => s.started_ms = Some(now_ms),
            Purpose::Recover { noticed_ms } => {
                s.recoveries += 1;
                s.last_recovery_ms = Some(now_ms.saturating_sub(noticed_ms));
            }
        }
        self.held.push(Held::Kept);
        self.phase = Phase::Saving;
        let actions = vec![Action::Keep { node, dialog }, Action::Save(Box::new(self.session.clone()))];
        (self, actions)
    }
}

#[cfg(test)]
mod tests {
    //! A world that answers each action as a media node, the Store and a camera would, failing
    //! at one chosen step. It keeps its own ledger of what was taken; every failure exit must
    //! leave that ledger empty, and a success must leave it whole (the session owns it).

    use super::*;
    use gb::ids::{ChannelId, DeviceId, NodeId};

    const NOW: u64 = 1_800_000_000_000;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Fault {
        None,
        /// Another play of the channel inserted its record first.
        InsertRace,
        /// The Store failed writing the record.
        InsertStore,
        /// No media node (or all at capacity).
        NoNode,
        /// The first node cannot open a receiver; the second can.
        OpenOnce,
        /// No node can open a receiver.
        OpenAlways,
        Refused,
        Timeout,
        /// The 200's SDP does not parse.
        BadSdp,
        /// TCP active, and the camera's answer says neither address nor port.
        NoTcpAddress,
        /// The camera uses its own SSRC and the media node does not take the answer.
        PassAnswer,
        /// The Store failed writing the playing session.
        Save,
    }

    struct World {
        fault: Fault,
        transport: PlayTransport,
        /// The camera answers with its own SSRC.
        own_ssrc: bool,
        /// What is taken now, as labels ("load:m1", "receiver:m1", "dialog", …).
        taken: Vec<String>,
        opens: usize,
        releases: Vec<String>,
    }

    fn label(h: &Held) -> String {
        match h {
            Held::Ssrc(_) => "ssrc".into(),
            Held::Record => "record".into(),
            Held::Load { node } => format!("load:{node}"),
            Held::Receiver { node, .. } => format!("receiver:{node}"),
            Held::Dialog(_) => "dialog".into(),
            Held::Kept => "kept".into(),
        }
    }

    fn node(id: &str) -> MediaNodeRecord {
        MediaNodeRecord {
            id: id.into(),
            instance: format!("{id}-run1"),
            public_ip: "198.51.100.10".into(),
            api_url: format!("http://198.51.100.10:80{}", &id[1..]),
            rtmp_port: Some(1935),
            rtp_ports: [30000, 30999],
            max_streams: 100,
            capacity_mbps: 0,
            streams: 0,
            mbps: 0.0,
            cpu: 0.0,
            updated_ms: NOW,
        }
    }

    fn dialog() -> Dialog {
        Dialog {
            call_id: "c1@gbc".into(),
            local_tag: "l".into(),
            remote_tag: "r".into(),
            remote_uri: "sip:34020000001320000001@203.0.113.7:5060".into(),
            cseq: 1,
            device_id: "34020000001320000001".into(),
            channel_id: "34020000001320000001".into(),
        }
    }

    fn answer_sdp(w: &World) -> String {
        if w.fault == Fault::BadSdp {
            return "this is not SDP".into();
        }
        let (ip, port) = match (w.transport, w.fault) {
            (PlayTransport::TcpActive, Fault::NoTcpAddress) => ("0.0.0.0", 0),
            (PlayTransport::TcpActive, _) => ("0.0.0.0", 15060),
            _ => ("192.168.1.64", 15060),
        };
        GbSdp {
            origin: "34020000001320000001".into(),
            session: SdpSession::Play,
            uri: None,
            ip: ip.into(),
            time: (0, 0),
            media_port: port,
            transport: w.transport,
            rtpmap: vec![(96, "PS".into())],
            direction: Some("sendonly".into()),
            ssrc: Some(if w.own_ssrc { "0100000099".into() } else { "0200000001".into() }),
            f: None,
            download_speed: None,
        }
        .to_text()
    }

    impl World {
        fn new(fault: Fault) -> Self {
            World { fault, transport: PlayTransport::Udp, own_ssrc: false, taken: vec![], opens: 0, releases: vec![] }
        }

        fn take(&mut self, what: String) {
            self.taken.push(what);
        }

        /// The result of one action, as the event the setup gets back.
        fn answer(&mut self, action: &Action) -> Option<Event> {
            let fail = |e: PlayError| Some(Event::Failed(e));
            match action {
                Action::Insert(_) => match self.fault {
                    Fault::InsertRace => Some(Event::Inserted(false)),
                    Fault::InsertStore => fail(PlayError::Store("connection refused".into())),
                    _ => {
                        self.take("record".into());
                        Some(Event::Inserted(true))
                    }
                },
                Action::Reserve { exclude } => {
                    if self.fault == Fault::NoNode {
                        return fail(PlayError::NoMediaNode("none".into()));
                    }
                    let n = ["m1", "m2", "m3"].into_iter().find(|n| !exclude.iter().any(|e| e == n))?;
                    self.take(format!("load:{n}"));
                    Some(Event::Reserved(Box::new(node(n))))
                }
                Action::Open { node, ssrc, .. } => {
                    assert_eq!(*ssrc, 200_000_001, "the receiver filters on our SSRC");
                    self.opens += 1;
                    if self.fault == Fault::OpenAlways || (self.fault == Fault::OpenOnce && self.opens == 1) {
                        return fail(PlayError::MediaNode { node: node.id.clone(), message: "no port".into() });
                    }
                    self.take(format!("receiver:{}", node.id));
                    Some(Event::Opened { ip: node.public_ip.clone(), port: 30002 })
                }
                Action::Invite { sdp, subject } => {
                    assert!(sdp.contains("y=0200000001") && sdp.contains("c=IN IP4 198.51.100.10"), "{sdp}");
                    assert_eq!(subject, "34020000001320000001:0200000001,34020000002000000001:0");
                    match self.fault {
                        Fault::Refused => fail(PlayError::CameraRefused { code: 486, reason: "Busy Here".into() }),
                        Fault::Timeout => fail(PlayError::CameraTimeout(8000)),
                        _ => {
                            self.take("dialog".into());
                            Some(Event::Invited { dialog: Box::new(dialog()), answer_sdp: answer_sdp(self) })
                        }
                    }
                }
                Action::PassAnswer { .. } if self.fault == Fault::PassAnswer => {
                    fail(PlayError::MediaNode { node: "m1".into(), message: "gone".into() })
                }
                Action::PassAnswer { .. } => Some(Event::AnswerPassed),
                Action::Keep { .. } => {
                    self.take("kept".into());
                    None
                }
                Action::Save(s) => {
                    assert_eq!(s.state, SessionState::Playing);
                    if self.fault == Fault::Save {
                        fail(PlayError::Store("READONLY".into()))
                    } else {
                        Some(Event::Saved)
                    }
                }
                Action::Release(h) => {
                    let l = label(h);
                    let i = self.taken.iter().position(|t| *t == l).unwrap_or_else(|| panic!("gave back {l}, which was not taken"));
                    self.taken.remove(i);
                    self.releases.push(l);
                    None
                }
                Action::Finish(_) => None,
            }
        }

        /// Runs `setup` to its end; the result and the actions seen.
        fn run(&mut self, mut setup: Setup) -> (Result<Box<Session>, PlayError>, Vec<Action>) {
            let mut event = Event::Start;
            let mut seen = vec![];
            loop {
                let actions;
                (setup, actions) = setup.step(event, NOW);
                let mut next = None;
                for a in actions {
                    next = self.answer(&a).or(next);
                    if let Action::Finish(r) = &a {
                        assert!(setup.held().is_empty(), "a finished setup holds nothing");
                        let r = r.clone();
                        seen.push(a);
                        return (r, seen);
                    }
                    seen.push(a);
                }
                event = next.expect("the setup waits for a step's result");
            }
        }
    }

    fn session() -> Session {
        let dev: DeviceId = "34020000001320000001".parse().unwrap();
        let ch: ChannelId = "34020000001320000001".parse().unwrap();
        Session::starting(dev, ch, PlayTransport::Udp, "0200000001".parse().unwrap(), "sip-a".parse::<NodeId>().unwrap(), NOW - 10)
    }

    fn play(w: &World) -> Setup {
        let s = Session { transport: w.transport, ..session() };
        Setup::play(s, "203.0.113.7:5060".into(), "34020000002000000001".parse().unwrap())
    }

    /// A play failing at `fault`: the error, and everything taken given back, newest first.
    fn fails(fault: Fault, tweak: fn(&mut World), status: u16, given_back: &[&str]) {
        let mut w = World::new(fault);
        tweak(&mut w);
        w.take("ssrc".into()); // allocated by the shell before the setup starts
        let (result, _) = w.run(play(&w));
        let e = result.expect_err("the play fails");
        assert_eq!(e.status().as_u16(), status, "{fault:?}: {e}");
        assert!(w.taken.is_empty(), "{fault:?}: still held {:?}", w.taken);
        assert_eq!(w.releases, given_back, "{fault:?}");
    }

    fn udp(_: &mut World) {}

    #[test]
    fn a_lost_insert_race_gives_the_ssrc_back_and_says_try_again() {
        fails(Fault::InsertRace, udp, 503, &["ssrc"]);
    }

    #[test]
    fn a_store_failure_writing_the_record_gives_the_ssrc_back() {
        fails(Fault::InsertStore, udp, 503, &["ssrc"]);
    }

    #[test]
    fn no_media_node_gives_back_record_and_ssrc() {
        fails(Fault::NoNode, udp, 503, &["record", "ssrc"]);
    }

    #[test]
    fn no_node_opening_a_receiver_gives_back_both_load_units() {
        fails(Fault::OpenAlways, udp, 502, &["load:m1", "load:m2", "record", "ssrc"]);
    }

    #[test]
    fn a_refusing_camera_gives_back_receiver_load_record_ssrc() {
        fails(Fault::Refused, udp, 502, &["receiver:m1", "load:m1", "record", "ssrc"]);
    }

    #[test]
    fn a_silent_camera_gives_back_receiver_load_record_ssrc() {
        fails(Fault::Timeout, udp, 502, &["receiver:m1", "load:m1", "record", "ssrc"]);
    }

    #[test]
    fn an_unreadable_answer_hangs_up_and_gives_back_everything() {
        fails(Fault::BadSdp, udp, 502, &["dialog", "receiver:m1", "load:m1", "record", "ssrc"]);
    }

    #[test]
    fn a_tcp_active_answer_without_address_hangs_up_and_gives_back_everything() {
        fails(
            Fault::NoTcpAddress,
            |w| w.transport = PlayTransport::TcpActive,
            502,
            &["dialog", "receiver:m1", "load:m1", "record", "ssrc"],
        );
    }

    #[test]
    fn a_receiver_refusing_the_answer_hangs_up_and_gives_back_everything() {
        fails(Fault::PassAnswer, |w| w.own_ssrc = true, 502, &["dialog", "receiver:m1", "load:m1", "record", "ssrc"]);
    }

    #[test]
    fn a_store_failure_saving_the_session_forgets_it_and_gives_back_everything() {
        fails(Fault::Save, udp, 503, &["kept", "dialog", "receiver:m1", "load:m1", "record", "ssrc"]);
    }

    #[test]
    fn a_play_that_succeeds_keeps_everything_for_the_session() {
        let mut w = World::new(Fault::None);
        w.take("ssrc".into());
        let (result, actions) = w.run(play(&w));
        let s = result.expect("playing");
        assert_eq!(w.taken, ["ssrc", "record", "load:m1", "receiver:m1", "dialog", "kept"]);
        assert!(w.releases.is_empty());
        assert!(!actions.iter().any(|a| matches!(a, Action::PassAnswer { .. })), "our SSRC, UDP: nothing to pass on");
        assert_eq!((s.state, s.started_ms, s.media_node.as_str()), (SessionState::Playing, Some(NOW), "m1"));
        assert_eq!((s.rtp_addr.as_str(), s.media_instance.as_str()), ("198.51.100.10:30002", "m1-run1"));
        assert_eq!(s.call_id.as_deref(), Some("c1@gbc"));
        assert_eq!(s.urls.http_flv, format!("http://198.51.100.10:801/live/{}.flv", s.stream_id));
    }

    #[test]
    fn a_node_that_cannot_open_is_skipped_and_its_load_unit_given_back() {
        let mut w = World::new(Fault::OpenOnce);
        w.take("ssrc".into());
        let (result, _) = w.run(play(&w));
        assert_eq!(result.expect("playing on the second node").media_node, "m2");
        assert_eq!(w.releases, ["load:m1"]);
        assert_eq!(w.taken, ["ssrc", "record", "load:m2", "receiver:m2", "dialog", "kept"]);
    }

    #[test]
    fn the_cameras_own_ssrc_and_tcp_active_address_reach_the_receiver() {
        let mut w = World::new(Fault::None);
        w.transport = PlayTransport::TcpActive;
        w.own_ssrc = true;
        w.take("ssrc".into());
        let (result, actions) = w.run(play(&w));
        assert!(result.is_ok());
        let pass = actions.iter().find_map(|a| match a {
            Action::PassAnswer { ssrc, peer, .. } => Some((*ssrc, *peer)),
            _ => None,
        });
        // 0.0.0.0 in the answer: the camera's observed address.
        assert_eq!(pass, Some((Some(100_000_099), Some("203.0.113.7:15060".parse().unwrap()))));
    }

    fn recover() -> Setup {
        let mut s = session();
        s.state = SessionState::Recovering;
        s.media_node = "m1".into();
        s.recoveries = 1;
        Setup::recover(s, "m1".into(), NOW - 700, "203.0.113.7:5060".into(), "34020000002000000001".parse().unwrap())
    }

    #[test]
    fn a_failed_move_gives_back_what_it_took_and_leaves_the_sessions_ssrc_and_record() {
        for (fault, given_back) in [
            (Fault::NoNode, &[][..]),
            (Fault::Refused, &["receiver:m2", "load:m2"][..]),
            (Fault::Save, &["kept", "dialog", "receiver:m2", "load:m2"][..]),
        ] {
            let mut w = World::new(fault);
            w.taken = vec!["ssrc".into(), "record".into()];
            let (result, _) = w.run(recover());
            assert!(result.is_err(), "{fault:?}");
            assert_eq!(w.releases, given_back, "{fault:?}");
            assert_eq!(w.taken, ["ssrc", "record"], "{fault:?}: the session's own are not given back");
        }
    }

    #[test]
    fn a_move_avoids_the_dead_node_and_counts_itself() {
        let mut w = World::new(Fault::None);
        let (result, _) = w.run(recover());
        let s = result.expect("moved");
        assert_eq!((s.media_node.as_str(), s.state), ("m2", SessionState::Playing));
        assert_eq!((s.recoveries, s.last_recovery_ms, s.started_ms), (2, Some(700), None));
    }

    #[test]
    fn an_event_the_phase_does_not_wait_for_changes_nothing() {
        let w = World::new(Fault::None);
        let (setup, actions) = play(&w).step(Event::Saved, NOW);
        assert!(actions.is_empty());
        assert_eq!(setup.held().len(), 1, "still holding its SSRC");
        let (_, actions) = setup.step(Event::Start, NOW);
        assert!(matches!(actions.as_slice(), [Action::Insert(_)]));
    }
}
