//! What the reply to a plate result says, decided without I/O from the passage as stored: the
//! `plateid` echo, `ContinuePushOffline` for an offline record, the gate opened only for a
//! fresh live passage (a resend or a stored record never opens it twice), and the lane group's
//! serial payloads for LED boards and voice modules. Queued commands and whitelist work are
//! added by `commands` and `whitelist`.

use crate::proto::Reply;
use crate::whitelist::Group;

/// The passage facts the reply depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub plateid: Option<u64>,
    /// The camera sent it from its offline backlog.
    pub offline: bool,
    /// This request stored it (false: a resend of a stored record).
    pub fresh: bool,
    /// The stored verdict opens the gate.
    pub opens: bool,
    /// The camera's IO output for the gate.
    pub gate_io: u64,
}

pub fn plate_reply(o: Outcome, group: &Group) -> Reply {
    let mut reply = Reply { plateid: o.plateid, ..Default::default() };
    if o.offline {
        reply.continue_offline = Some(o.plateid.unwrap_or(0));
    }
    if o.opens && o.fresh {
        reply.open_gate = Some(o.gate_io);
    }
    if o.fresh && !o.offline {
        let payloads = if o.opens { &group.serial_on_open } else { &group.serial_on_deny };
        for p in payloads {
            let len = crate::proto::decode_base64(&p.data, "data", 64 * 1024).map(|d| d.len()).unwrap_or(0);
            reply.serial_data.push((p.serial_channel, p.data.clone(), len));
        }
    }
    reply
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::whitelist::SerialPayload;

    fn group() -> Group {
        Group {
            serial_on_open: vec![SerialPayload { serial_channel: 0, data: "V0VMQ09NRQ==".into() }],
            serial_on_deny: vec![SerialPayload { serial_channel: 1, data: "Tk8=".into() }],
            ..Default::default()
        }
    }

    fn live(opens: bool) -> Outcome {
        Outcome { plateid: Some(42), offline: false, fresh: true, opens, gate_io: 2 }
    }

    #[test]
    fn a_fresh_live_passage_opens_with_the_open_payloads() {
        let r = plate_reply(live(true), &group());
        assert_eq!((r.plateid, r.open_gate, r.continue_offline), (Some(42), Some(2), None));
        assert_eq!(r.serial_data, [(0, "V0VMQ09NRQ==".to_owned(), 7)]);
    }

    #[test]
    fn a_refused_passage_stays_closed_with_the_deny_payloads() {
        let r = plate_reply(live(false), &group());
        assert_eq!(r.open_gate, None);
        assert_eq!(r.serial_data, [(1, "Tk8=".to_owned(), 2)]);
    }

    #[test]
    fn a_resend_never_opens_twice_nor_speaks_again() {
        let r = plate_reply(Outcome { fresh: false, ..live(true) }, &group());
        assert_eq!((r.plateid, r.open_gate), (Some(42), None));
        assert!(r.serial_data.is_empty());
    }

    #[test]
    fn an_offline_record_asks_for_the_next_and_never_opens() {
        let r = plate_reply(Outcome { offline: true, opens: false, ..live(false) }, &group());
        assert_eq!((r.continue_offline, r.open_gate), (Some(42), None));
        assert!(r.serial_data.is_empty(), "no LED text for a car long gone");
        let r = plate_reply(Outcome { offline: true, plateid: None, ..live(false) }, &group());
        assert_eq!(r.continue_offline, Some(0));
    }
}
