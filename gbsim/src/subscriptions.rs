//! The subscriptions a simulated camera holds (RFC 6665 as GB/T 28181 §9.11 uses it): the
//! platform SUBSCRIBEs to Catalog, Alarm and MobilePosition; each is a dialog the camera sends
//! NOTIFYs in until it expires. A refresh (SUBSCRIBE in the dialog) extends it; one the camera
//! does not know gets 481; `Expires: 0` ends it. An expired subscription gets no more NOTIFYs,
//! as a camera behaves, so a platform that fails to refresh sees its events stop.
//!
//! Also the catalog changes the camera makes on a schedule (`sim.catalog_change_every_secs`):
//! an extra channel is added, goes off, comes on, is renamed and deleted, one step each time.

use std::collections::HashMap;

use gb::model::{CatalogEvent, Channel};

/// What a subscription is to (the body's `CmdType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Catalog,
    Alarm,
    MobilePosition,
}

impl Kind {
    pub fn parse(cmd_type: &str) -> Option<Self> {
        match cmd_type.to_ascii_lowercase().as_str() {
            "catalog" => Some(Kind::Catalog),
            "alarm" => Some(Kind::Alarm),
            "mobileposition" => Some(Kind::MobilePosition),
            _ => None,
        }
    }
}

/// One subscription: its dialog as the camera (the UAS) sees it.
#[derive(Debug, Clone)]
pub struct Sub {
    pub kind: Kind,
    pub call_id: String,
    /// The camera's tag (From of its NOTIFYs).
    pub local_tag: String,
    /// The platform's tag (To of the NOTIFYs).
    pub remote_tag: String,
    /// Where NOTIFYs go: the SUBSCRIBE's Contact, else its From URI.
    pub remote_uri: String,
    /// The `Event` header to repeat.
    pub event: String,
    pub expires_at_ms: u64,
    /// CSeq of the camera's NOTIFYs.
    pub cseq: u32,
    /// MobilePosition: seconds between reports.
    pub interval_secs: Option<u32>,
    pub refreshes: u32,
}

/// What the camera answers a SUBSCRIBE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub code: u16,
    pub to_tag: String,
    pub expires: u32,
}

/// What a SUBSCRIBE says.
pub struct Request<'a> {
    pub call_id: &'a str,
    pub from_tag: &'a str,
    /// The To tag: present on a refresh within the dialog.
    pub to_tag: Option<&'a str>,
    pub remote_uri: String,
    pub event: &'a str,
    pub expires: u32,
    pub kind: Option<Kind>,
    pub interval_secs: Option<u32>,
}

#[derive(Debug, Default)]
pub struct Subscriptions {
    by_call: HashMap<String, Sub>,
    /// Subscriptions made (new dialogs) and refreshed, for the stats.
    pub made: u64,
    pub refreshed: u64,
}

/// Longest subscription the camera grants (seconds).
const MAX_EXPIRES: u32 = 86_400;

impl Subscriptions {
    /// Takes a SUBSCRIBE: a new subscription, a refresh, or an end (`Expires: 0`).
    pub fn on_subscribe(&mut self, r: Request<'_>, new_tag: impl FnOnce() -> String, now_ms: u64) -> Answer {
        let expires = r.expires.min(MAX_EXPIRES);
        if let Some(tag) = r.to_tag {
            // Within a dialog: it must be one of ours.
            let Some(sub) = self.by_call.get_mut(r.call_id).filter(|s| s.local_tag == tag) else {
                return Answer { code: 481, to_tag: tag.to_owned(), expires: 0 };
            };
            let to_tag = sub.local_tag.clone();
            if expires == 0 {
                self.by_call.remove(r.call_id);
                return Answer { code: 200, to_tag, expires: 0 };
            }
            sub.expires_at_ms = now_ms + u64::from(expires) * 1000;
            sub.interval_secs = r.interval_secs.or(sub.interval_secs);
            sub.refreshes += 1;
            self.refreshed += 1;
            return Answer { code: 200, to_tag, expires };
        }
        let to_tag = new_tag();
        let Some(kind) = r.kind else { return Answer { code: 489, to_tag, expires: 0 } };
        if expires == 0 {
            // A fetch: nothing is kept.
            return Answer { code: 200, to_tag, expires: 0 };
        }
        // A new subscription to the same events replaces the old one (the platform restarted).
        self.by_call.retain(|_, s| s.kind != kind);
        self.by_call.insert(
            r.call_id.to_owned(),
            Sub {
                kind,
                call_id: r.call_id.to_owned(),
                local_tag: to_tag.clone(),
                remote_tag: r.from_tag.to_owned(),
                remote_uri: r.remote_uri,
                event: r.event.to_owned(),
                expires_at_ms: now_ms + u64::from(expires) * 1000,
                cseq: 0,
                interval_secs: r.interval_secs,
                refreshes: 0,
            },
        );
        self.made += 1;
        Answer { code: 200, to_tag, expires }
    }

    /// The live subscription to `kind`, its NOTIFY CSeq counted up (expired ones are dropped).
    pub fn next_notify(&mut self, kind: Kind, now_ms: u64) -> Option<Sub> {
        self.by_call.retain(|_, s| s.expires_at_ms > now_ms);
        let sub = self.by_call.values_mut().find(|s| s.kind == kind)?;
        sub.cseq += 1;
        Some(sub.clone())
    }

    /// Whether a live subscription to `kind` exists.
    pub fn active(&self, kind: Kind, now_ms: u64) -> Option<&Sub> {
        self.by_call.values().find(|s| s.kind == kind && s.expires_at_ms > now_ms)
    }
}

/// The scheduled catalog changes: an extra channel's life in five steps.
#[derive(Debug, Default)]
pub struct CatalogChanges {
    step: u64,
}

impl CatalogChanges {
    /// The next change of `extra` (the extra channel as the catalog lists it).
    pub fn next(&mut self, mut extra: Channel) -> (CatalogEvent, Channel) {
        let event = match self.step % 5 {
            0 => CatalogEvent::Add,
            1 => CatalogEvent::Off,
            2 => CatalogEvent::On,
            3 => CatalogEvent::Update,
            _ => CatalogEvent::Del,
        };
        self.step += 1;
        extra.status = Some(if event == CatalogEvent::Off { "OFF" } else { "ON" }.into());
        if event == CatalogEvent::Update || event == CatalogEvent::Del {
            extra.name = extra.name.map(|n| format!("{n}（改）"));
        }
        (event, extra)
    }

    /// The extra channel as the catalog lists it now, if it exists.
    pub fn extra_now(&self, extra: Channel) -> Option<Channel> {
        match self.step % 5 {
            0 => None,
            s => {
                let mut c = extra;
                c.status = Some(if s == 2 { "OFF" } else { "ON" }.into());
                if s == 4 {
                    c.name = c.name.map(|n| format!("{n}（改）"));
                }
                Some(c)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req<'a>(call: &'a str, to_tag: Option<&'a str>, expires: u32, kind: Option<Kind>) -> Request<'a> {
        Request {
            call_id: call,
            from_tag: "p1",
            to_tag,
            remote_uri: "sip:s@d".into(),
            event: "Catalog",
            expires,
            kind,
            interval_secs: None,
        }
    }

    #[test]
    fn subscriptions_live_until_they_expire_unless_refreshed() {
        let mut subs = Subscriptions::default();
        let a = subs.on_subscribe(req("c1", None, 10, Some(Kind::Catalog)), || "t1".into(), 0);
        assert_eq!(a, Answer { code: 200, to_tag: "t1".into(), expires: 10 });
        assert_eq!(subs.next_notify(Kind::Catalog, 5_000).map(|s| s.cseq), Some(1));
        assert!(subs.next_notify(Kind::Alarm, 5_000).is_none());
        // Refreshed at 8 s for 10 more: alive at 15 s, gone at 18 s.
        assert_eq!(subs.on_subscribe(req("c1", Some("t1"), 10, None), || unreachable!(), 8_000).code, 200);
        assert!(subs.next_notify(Kind::Catalog, 15_000).is_some());
        assert!(subs.next_notify(Kind::Catalog, 18_001).is_none());
        // A refresh of a dialog the camera does not know: 481.
        assert_eq!(subs.on_subscribe(req("c1", Some("t1"), 10, None), || unreachable!(), 19_000).code, 481);
        // A new one replaces an older one of the same kind; Expires 0 ends it.
        subs.on_subscribe(req("c2", None, 60, Some(Kind::Alarm)), || "t2".into(), 0);
        subs.on_subscribe(req("c3", None, 60, Some(Kind::Alarm)), || "t3".into(), 1_000);
        assert_eq!(subs.active(Kind::Alarm, 2_000).map(|s| s.call_id.as_str()), Some("c3"));
        assert_eq!(subs.on_subscribe(req("c3", Some("t3"), 0, None), || unreachable!(), 3_000).code, 200);
        assert!(subs.active(Kind::Alarm, 3_000).is_none());
        assert_eq!(subs.on_subscribe(req("c4", None, 60, None), || "t4".into(), 0).code, 489);
    }

    #[test]
    fn the_extra_channel_lives_in_five_steps() {
        let extra = Channel { name: Some("临时".into()), ..Default::default() };
        let mut changes = CatalogChanges::default();
        assert!(changes.extra_now(extra.clone()).is_none());
        let events: Vec<CatalogEvent> = (0..6).map(|_| changes.next(extra.clone()).0).collect();
        use CatalogEvent::*;
        assert_eq!(events, [Add, Off, On, Update, Del, Add]);
        assert_eq!(changes.extra_now(extra.clone()).and_then(|c| c.status), Some("ON".into()));
    }
}
