//! Event subscriptions (GB/T 28181 §9.11 over RFC 6665): after a fresh registration the node
//! holding a device SUBSCRIBEs to its Catalog changes, Alarms and MobilePositions (each kind
//! that `[sip.subscribe]` enables). Each is a dialog the device then sends NOTIFYs in
//! (`inbound.rs` applies them). The Store keeps every subscription (table `subscriptions`:
//! its dialog, when it expires, when to act next), so whichever node holds the device refreshes
//! it before it expires — after a restart of that node, or when the device moved to another —
//! and a device that re-registers (it may have rebooted and forgotten) is subscribed anew.
//!
//! `step` is the pure decision the refresher takes for each row; the rest is I/O around it.

use std::sync::Arc;
use std::time::Duration;

use cluster::table::Table;
use gb::ids::DeviceId;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::dialog::{self, Dialog};
use crate::error::SipError;
use crate::server::Shared;

/// `[sip.subscribe]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SubscribeConfig {
    /// Subscribe to catalog changes (ADD, DEL, UPDATE, ON, OFF applied to the stored catalog).
    pub catalog: bool,
    /// Subscribe to alarms.
    pub alarm: bool,
    /// Subscribe to positions (for mobile devices; fixed cameras usually refuse).
    pub mobile_position: bool,
    /// Lifetime asked for (the device may grant less); refreshed with a fifth of it left.
    pub expires_secs: u32,
    /// MobilePosition: seconds between reports asked for.
    pub position_interval_secs: u32,
}

impl Default for SubscribeConfig {
    fn default() -> Self {
        Self { catalog: true, alarm: true, mobile_position: false, expires_secs: 3600, position_interval_secs: 5 }
    }
}

/// What a subscription is to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Catalog,
    Alarm,
    MobilePosition,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Catalog, Kind::Alarm, Kind::MobilePosition];

    fn cmd_type(self) -> &'static str {
        match self {
            Kind::Catalog => "Catalog",
            Kind::Alarm => "Alarm",
            Kind::MobilePosition => "MobilePosition",
        }
    }

    /// The `Event` header: `Catalog` for the catalog, `presence` for alarms and positions, as
    /// devices in the field take them (the body's CmdType says which).
    fn event(self) -> &'static str {
        match self {
            Kind::Catalog => "Catalog",
            Kind::Alarm | Kind::MobilePosition => "presence",
        }
    }

    fn enabled(self, cfg: &SubscribeConfig) -> bool {
        match self {
            Kind::Catalog => cfg.catalog,
            Kind::Alarm => cfg.alarm,
            Kind::MobilePosition => cfg.mobile_position,
        }
    }

    /// The query body's elements after `DeviceID`.
    fn extra(self, cfg: &SubscribeConfig) -> String {
        match self {
            Kind::Catalog => String::new(),
            // Every priority and method (0: all).
            Kind::Alarm => {
                "<StartAlarmPriority>0</StartAlarmPriority>\r\n<EndAlarmPriority>0</EndAlarmPriority>\r\n<AlarmMethod>0</AlarmMethod>\r\n"
                    .into()
            }
            Kind::MobilePosition => format!("<Interval>{}</Interval>\r\n", cfg.position_interval_secs.max(1)),
        }
    }
}

/// Where a subscription stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubState {
    Active,
    /// The device refused it (its status), or did not answer (0): retried with backoff.
    Failed {
        code: u16,
    },
}

/// A subscription as the Store keeps it (`subscriptions`, key `<device>:<kind>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubRow {
    pub device_id: DeviceId,
    pub kind: Kind,
    pub state: SubState,
    /// The node that last made or refreshed it.
    pub node: String,
    /// The dialog (any node can refresh in it); none until the device accepts.
    pub dialog: Option<Dialog>,
    pub expires_at_ms: u64,
    /// When the refresher acts next: a refresh before expiry, or a retry.
    pub due_ms: u64,
    pub refreshes: u32,
    pub failures: u32,
    pub created_ms: u64,
}

pub const TABLE: Table<SubRow> = Table::new("subscriptions");

fn key(device_id: &DeviceId, kind: Kind) -> String {
    format!("{device_id}:{}", serde_json::to_value(kind).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default())
}

/// Where the device of a subscription is, as the deciding node sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holder {
    /// Online, and its connection is this node's.
    Here,
    /// Online on another node (that one refreshes).
    Elsewhere,
    /// Offline: renewed when it registers again.
    Offline,
    /// No longer registered at all.
    Gone,
}

/// What the refresher does with a subscription now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Wait,
    /// SUBSCRIBE within the dialog.
    Refresh,
    /// A new SUBSCRIBE (no dialog, or it has expired).
    Subscribe,
    /// Forget the row.
    Drop,
}

pub fn step(row: &SubRow, holder: Holder, now_ms: u64) -> Step {
    match holder {
        Holder::Gone => Step::Drop,
        Holder::Elsewhere | Holder::Offline => Step::Wait,
        Holder::Here if now_ms < row.due_ms => Step::Wait,
        Holder::Here => match (&row.dialog, row.state) {
            (Some(_), SubState::Active) if row.expires_at_ms > now_ms => Step::Refresh,
            _ => Step::Subscribe,
        },
    }
}

/// When a subscription granted `secs` at `now` is refreshed: with a fifth of it left (at least
/// 2 s before the end).
pub fn refresh_due(now_ms: u64, secs: u32) -> u64 {
    let life = u64::from(secs) * 1000;
    now_ms + life.saturating_sub((life / 5).max(2000)).max(life / 2)
}

/// When a failed subscription is tried again: 5 s doubling to 5 minutes.
pub fn retry_due(now_ms: u64, failures: u32) -> u64 {
    now_ms + (5000u64 << failures.min(6)).min(300_000)
}

/// The `Expires` a device granted (its answer's header; what we asked when it sent none).
fn granted(resp: &rsipstack::sip::Response, asked: u32) -> u32 {
    dialog::header_of(resp, "Expires").and_then(|e| e.parse().ok()).unwrap_or(asked)
}

fn headers(shared: &Shared, kind: Kind, expires: u32) -> Vec<(&'static str, String)> {
    vec![
        ("Event", kind.event().to_owned()),
        ("Expires", expires.to_string()),
        ("Contact", format!("<sip:{}@{}>", shared.me.server_id, shared.me.contact_host)),
    ]
}

/// A new subscription of `kind` with `dev` from this node, stored whatever the answer.
pub async fn subscribe(shared: &Shared, dev: &cluster::registry::Device, kind: Kind, previous: Option<SubRow>) -> SubRow {
    let cfg = &shared.cfg.subscribe;
    let now = kit::clock::now_ms();
    let body = gb::manscdp::build::query(kind.cmd_type(), shared.next_sn(), dev.id.as_str(), &kind.extra(cfg));
    let sent =
        dialog::open_with(shared, dev, "SUBSCRIBE", &headers(shared, kind, cfg.expires_secs), (gb::manscdp::CONTENT_TYPE, &body)).await;
    let failures = previous.as_ref().map_or(0, |p| p.failures);
    let mut row = SubRow {
        device_id: dev.id.clone(),
        kind,
        state: SubState::Active,
        node: shared.me.node.to_string(),
        dialog: None,
        expires_at_ms: now,
        due_ms: now,
        refreshes: 0,
        failures: 0,
        created_ms: now,
    };
    match sent {
        Ok((d, resp)) if (200..300).contains(&resp.status_code.code()) => {
            let secs = granted(&resp, cfg.expires_secs).max(1);
            (row.dialog, row.expires_at_ms, row.due_ms) = (Some(d), now + u64::from(secs) * 1000, refresh_due(now, secs));
            crate::metrics::SUBSCRIPTIONS.inc();
            tracing::info!(device_id = %dev.id, ?kind, expires = secs, "subscribed");
        }
        other => {
            let code = match &other {
                Ok((_, resp)) => resp.status_code.code(),
                Err(_) => 0,
            };
            (row.state, row.failures) = (SubState::Failed { code }, failures + 1);
            row.due_ms = retry_due(now, failures);
            crate::metrics::SUBSCRIPTION_FAILURES.inc();
            tracing::info!(device_id = %dev.id, ?kind, code, "subscription refused or unanswered; retried later");
        }
    }
    store(shared, &row).await;
    row
}

/// Refreshes `row` in its dialog; a device that no longer knows it (481, or anything but a
/// 2xx) or does not answer is subscribed anew.
pub async fn refresh(shared: &Shared, dev: &cluster::registry::Device, mut row: SubRow) -> SubRow {
    let cfg = &shared.cfg.subscribe;
    let Some(mut d) = row.dialog.clone() else { return subscribe(shared, dev, row.kind, Some(row)).await };
    let body = gb::manscdp::build::query(row.kind.cmd_type(), shared.next_sn(), dev.id.as_str(), &row.kind.extra(cfg));
    let hs = headers(shared, row.kind, cfg.expires_secs);
    let sent = dialog::in_dialog_with(shared, dev, &mut d, "SUBSCRIBE", &hs, Some((gb::manscdp::CONTENT_TYPE, &body))).await;
    match sent {
        Ok(resp) if (200..300).contains(&resp.status_code.code()) => {
            let now = kit::clock::now_ms();
            let secs = granted(&resp, cfg.expires_secs).max(1);
            row.dialog = Some(d);
            (row.expires_at_ms, row.due_ms, row.node) = (now + u64::from(secs) * 1000, refresh_due(now, secs), shared.me.node.to_string());
            row.refreshes += 1;
            crate::metrics::SUBSCRIPTION_REFRESHES.inc();
            tracing::debug!(device_id = %dev.id, kind = ?row.kind, expires = secs, "subscription refreshed");
            store(shared, &row).await;
            row
        }
        other => {
            tracing::info!(device_id = %dev.id, kind = ?row.kind, answer = ?other.map(|r| r.status_code.code()), "refresh not taken; subscribing anew");
            subscribe(shared, dev, row.kind, Some(row)).await
        }
    }
}

async fn store(shared: &Shared, row: &SubRow) {
    if let Err(e) = TABLE.put(shared.store.as_ref(), &key(&row.device_id, row.kind), row).await {
        tracing::warn!(device_id = %row.device_id, kind = ?row.kind, error = %e, "storing the subscription failed");
    }
}

/// After a fresh registration: every enabled kind subscribed anew (the device may have
/// rebooted and forgotten the old ones).
pub async fn renew_all(shared: &Shared, device_id: &DeviceId) {
    let cfg = &shared.cfg.subscribe;
    let Ok(Some(dev)) = shared.store.get_device(device_id).await else { return };
    for kind in Kind::ALL.into_iter().filter(|k| k.enabled(cfg)) {
        subscribe(shared, &dev, kind, None).await;
    }
}

/// The device ended a subscription (`Subscription-State: terminated`): the one its body's
/// CmdType names (all of the device's when it names none) is due again now, so the refresher
/// of the node holding it subscribes anew.
pub async fn lapsed(shared: &Shared, device_id: &DeviceId, body: &[u8]) {
    let named = gb::manscdp::parse(body).ok().map(|m| m.header.cmd_type.to_ascii_lowercase());
    for mut row in of_device(shared, device_id).await.unwrap_or_default() {
        if named.as_deref().is_some_and(|n| n != row.kind.cmd_type().to_ascii_lowercase()) {
            continue;
        }
        (row.dialog, row.due_ms) = (None, kit::clock::now_ms());
        store(shared, &row).await;
    }
}

/// The device's subscriptions as stored.
pub async fn of_device(shared: &Shared, device_id: &DeviceId) -> Result<Vec<SubRow>, SipError> {
    let mut out = Vec::new();
    for kind in Kind::ALL {
        if let Some(v) = TABLE.get(shared.store.as_ref(), &key(device_id, kind)).await? {
            out.push(v.row);
        }
    }
    Ok(out)
}

/// Ends a device's subscriptions (`Expires: 0` in each dialog) and forgets them: the device
/// is being deleted.
pub async fn end_all(shared: &Shared, dev: &cluster::registry::Device) {
    for row in of_device(shared, &dev.id).await.unwrap_or_default() {
        if let Some(mut d) = row.dialog.clone() {
            let hs = headers(shared, row.kind, 0);
            let _ = dialog::in_dialog_with(shared, dev, &mut d, "SUBSCRIBE", &hs, None).await;
        }
        let _ = TABLE.take(shared.store.as_ref(), &key(&dev.id, row.kind)).await;
    }
}

/// The refresher: every tick, each stored subscription whose device this node holds is
/// refreshed when due, subscribed anew when it lapsed or failed, and dropped with its device.
pub async fn run(shared: Arc<Shared>, shutdown: CancellationToken) {
    let tick = Duration::from_millis((u64::from(shared.cfg.subscribe.expires_secs) * 1000 / 10).clamp(500, 10_000));
    let mut every = tokio::time::interval(tick);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = every.tick() => {}
        }
        let rows = match TABLE.list(shared.store.as_ref()).await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "listing subscriptions failed");
                continue;
            }
        };
        let now = kit::clock::now_ms();
        for (id, row) in rows {
            let Ok(row) = row else {
                tracing::warn!(subscription = %id, "unreadable subscription row dropped");
                let _ = TABLE.take(shared.store.as_ref(), &id).await;
                continue;
            };
            if now < row.due_ms {
                continue; // the common case, decided without reading the device
            }
            let dev = shared.store.get_device(&row.device_id).await.ok().flatten();
            let holder = match &dev {
                None => Holder::Gone,
                Some(d) if !d.online => Holder::Offline,
                Some(d) if d.node != shared.me.node => Holder::Elsewhere,
                Some(_) => Holder::Here,
            };
            match (step(&row, holder, now), dev) {
                (Step::Drop, _) => {
                    let _ = TABLE.take(shared.store.as_ref(), &id).await;
                }
                (Step::Refresh, Some(dev)) => {
                    refresh(&shared, &dev, row).await;
                }
                (Step::Subscribe, Some(dev)) => {
                    subscribe(&shared, &dev, row.kind, Some(row)).await;
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(state: SubState, dialog: bool, expires_at_ms: u64, due_ms: u64) -> SubRow {
        SubRow {
            device_id: "34020000001320000001".parse().unwrap(),
            kind: Kind::Catalog,
            state,
            node: "sip-a".into(),
            dialog: dialog.then(|| Dialog {
                call_id: "c".into(),
                local_tag: "l".into(),
                remote_tag: "r".into(),
                remote_uri: "sip:d@h".into(),
                cseq: 1,
                device_id: "d".into(),
                channel_id: "d".into(),
            }),
            expires_at_ms,
            due_ms,
            refreshes: 0,
            failures: 0,
            created_ms: 0,
        }
    }

    #[test]
    fn the_node_holding_the_device_refreshes_before_expiry_and_resubscribes_after() {
        let active = row(SubState::Active, true, 10_000, 8_000);
        assert_eq!(step(&active, Holder::Here, 7_999), Step::Wait);
        assert_eq!(step(&active, Holder::Here, 8_000), Step::Refresh);
        assert_eq!(step(&active, Holder::Here, 10_000), Step::Subscribe, "lapsed: the dialog is gone at the device");
        assert_eq!(step(&active, Holder::Elsewhere, 9_000), Step::Wait, "the node holding it refreshes");
        assert_eq!(step(&active, Holder::Offline, 9_000), Step::Wait, "renewed when it registers again");
        assert_eq!(step(&active, Holder::Gone, 0), Step::Drop);
        let failed = row(SubState::Failed { code: 489 }, false, 0, 5_000);
        assert_eq!(step(&failed, Holder::Here, 4_000), Step::Wait);
        assert_eq!(step(&failed, Holder::Here, 5_000), Step::Subscribe);
    }

    #[test]
    fn refreshes_come_with_a_fifth_left_and_retries_back_off() {
        assert_eq!(refresh_due(0, 3600), 2_880_000);
        assert_eq!(refresh_due(0, 10), 8_000);
        assert_eq!(refresh_due(0, 3), 1_500, "never before half the life");
        assert_eq!(retry_due(0, 0), 5_000);
        assert_eq!(retry_due(0, 2), 20_000);
        assert_eq!(retry_due(0, 30), 300_000);
        assert_eq!(key(&"34020000001320000001".parse().unwrap(), Kind::MobilePosition), "34020000001320000001:mobile_position");
    }
}
