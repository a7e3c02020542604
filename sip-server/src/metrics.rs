//! sip-server counters, rendered at `/metrics`.

use kit::metrics::{Counter, Gauge};

pub static UDP_DATAGRAMS: Counter = Counter::new("gbc_sip_udp_datagrams_total", "SIP datagrams received over UDP");
pub static UDP_OVERSIZE: Counter =
    Counter::new("gbc_sip_oversize_dropped_total", "SIP messages dropped for exceeding sip.max_message_bytes");
pub static UDP_MALFORMED: Counter = Counter::new("gbc_sip_malformed_dropped_total", "SIP datagrams dropped because they do not parse");
pub static REGISTERS: Counter = Counter::new("gbc_sip_registers_total", "REGISTER requests answered 200");
pub static RETRANSMISSIONS_ANSWERED: Counter = Counter::new(
    "gbc_sip_register_retransmissions_answered_total",
    "Retransmitted REGISTERs answered again with the kept answer instead of being registered again",
);
pub static UNREGISTERS: Counter = Counter::new("gbc_sip_unregisters_total", "REGISTER requests with Expires: 0");
pub static CHALLENGES: Counter = Counter::new("gbc_sip_auth_challenges_total", "401 challenges sent");
pub static AUTH_FAILURES: Counter = Counter::new("gbc_sip_auth_failures_total", "REGISTER with a wrong password (403)");
pub static LOCKED_OUT: Counter = Counter::new("gbc_sip_locked_out_total", "REGISTER refused because the device or source is locked out");
pub static KEEPALIVES: Counter = Counter::new("gbc_sip_keepalives_total", "Keepalive MESSAGEs accepted");
pub static KEEPALIVE_UNREGISTERED: Counter =
    Counter::new("gbc_sip_keepalive_unregistered_total", "Keepalives from devices that are not registered (answered 404)");
pub static CATALOG_ITEMS: Counter = Counter::new("gbc_sip_catalog_items_total", "Catalog items received");
pub static CATALOGS_DONE: Counter = Counter::new("gbc_sip_catalogs_total", "Catalogs stored (complete or timed out)");
pub static OFFLINE_EVENTS: Counter = Counter::new("gbc_sip_offline_transitions_total", "Devices this node took offline");
pub static QUERY_FAILURES: Counter = Counter::new("gbc_sip_query_failures_total", "Requests to devices that failed or timed out");
pub static DEVICE_CONTROLS: Counter =
    Counter::new("gbc_sip_device_controls_total", "DeviceControl commands sent to devices (PTZ, presets, cruise, scan)");
pub static SUBSCRIPTIONS: Counter = Counter::new("gbc_sip_subscriptions_total", "Subscriptions devices accepted (new dialogs)");
pub static SUBSCRIPTION_REFRESHES: Counter =
    Counter::new("gbc_sip_subscription_refreshes_total", "Subscriptions refreshed within their dialog");
pub static SUBSCRIPTION_FAILURES: Counter =
    Counter::new("gbc_sip_subscription_failures_total", "SUBSCRIBEs devices refused or did not answer (retried with backoff)");
pub static NOTIFIES: Counter = Counter::new("gbc_sip_notifies_total", "NOTIFYs received from devices (catalog changes, alarms, positions)");
pub static SNAPSHOTS_SAVED: Counter =
    Counter::new("gbc_sip_snapshots_saved_total", "Pictures saved to the gallery (on request or schedule)");
pub static RECORD_QUERIES: Counter = Counter::new("gbc_sip_record_queries_total", "RecordInfo queries sent to devices");
pub static RECORD_ITEMS: Counter = Counter::new("gbc_sip_record_items_total", "RecordInfo items received (kept or past the bound)");
pub static ALARMS: Counter = Counter::new("gbc_sip_alarms_total", "Alarm notifications received");
pub static POSITIONS: Counter = Counter::new("gbc_sip_positions_total", "MobilePosition reports received");
pub static ANSWERS_DROPPED: Counter =
    Counter::new("gbc_sip_answers_dropped_total", "Answer MESSAGEs dropped because the query waiting for them fell behind");
pub static BAD_REQUESTS: Counter = Counter::new("gbc_sip_bad_requests_total", "Requests answered 4xx for malformed content");
pub static OVERLOAD_REJECTED: Counter =
    Counter::new("gbc_sip_overload_rejected_total", "Requests answered 503 because sip.max_inflight were in progress");
pub static INVITES: Counter = Counter::new("gbc_sip_invites_total", "INVITEs sent to cameras");
pub static INVITE_REFUSED: Counter = Counter::new("gbc_sip_invite_refused_total", "INVITEs answered with a 4xx-6xx");
pub static INVITE_TIMEOUTS: Counter = Counter::new("gbc_sip_invite_timeouts_total", "INVITEs cancelled for want of an answer");
pub static BYES_SENT: Counter = Counter::new("gbc_sip_byes_sent_total", "BYEs sent to cameras");
pub static BYES_RECEIVED: Counter = Counter::new("gbc_sip_byes_received_total", "BYEs received from cameras");
pub static PLAYS: Counter = Counter::new("gbc_play_started_total", "Play sessions set up (camera streaming to a media node)");
pub static PLAY_JOINS: Counter = Counter::new("gbc_play_joined_total", "Plays answered with a session already running");
pub static PLAY_FAILURES: Counter = Counter::new("gbc_play_failures_total", "Plays that failed (camera, media node or routing)");
pub static PLAY_RECOVERIES: Counter = Counter::new("gbc_play_recoveries_total", "Sessions moved to another media node after theirs died");
pub static SESSIONS_CLOSED: Counter = Counter::new("gbc_play_closed_total", "Play sessions torn down");
pub static SESSIONS: Gauge = Gauge::new("gbc_play_sessions", "Play sessions this node owns");
pub static DIALOGS: Gauge = Gauge::new("gbc_play_dialogs", "Dialogs with cameras this node keeps in memory");
pub static PLAY_LOCKS: Gauge = Gauge::new("gbc_play_op_locks", "Per-stream operation locks held in memory (0 when idle)");
pub static ACKS: Gauge = Gauge::new("gbc_play_acks", "ACKs kept to answer retransmitted 200s (one per UDP dialog)");
pub static ANSWERS_AWAITED: Gauge =
    Gauge::new("gbc_sip_answers_awaited", "Device answers (PresetQuery, RecordInfo, DeviceControl Response) this node waits for");
pub static INFLIGHT: Gauge = Gauge::new("gbc_sip_inflight", "SIP requests being handled now");
pub static DEVICES: Gauge = Gauge::new("gbc_sip_devices", "Devices in the Store");
pub static DEVICES_ONLINE: Gauge = Gauge::new("gbc_sip_devices_online", "Online devices in the Store");

pub fn render() -> String {
    kit::metrics::render(
        &[
            &UDP_DATAGRAMS,
            &UDP_OVERSIZE,
            &UDP_MALFORMED,
            &REGISTERS,
            &RETRANSMISSIONS_ANSWERED,
            &UNREGISTERS,
            &CHALLENGES,
            &AUTH_FAILURES,
            &LOCKED_OUT,
            &KEEPALIVES,
            &KEEPALIVE_UNREGISTERED,
            &CATALOG_ITEMS,
            &CATALOGS_DONE,
            &OFFLINE_EVENTS,
            &QUERY_FAILURES,
            &DEVICE_CONTROLS,
            &SUBSCRIPTIONS,
            &SUBSCRIPTION_REFRESHES,
            &SUBSCRIPTION_FAILURES,
            &NOTIFIES,
            &SNAPSHOTS_SAVED,
            &RECORD_QUERIES,
            &RECORD_ITEMS,
            &ANSWERS_DROPPED,
            &ALARMS,
            &POSITIONS,
            &BAD_REQUESTS,
            &OVERLOAD_REJECTED,
            &INVITES,
            &INVITE_REFUSED,
            &INVITE_TIMEOUTS,
            &BYES_SENT,
            &BYES_RECEIVED,
            &PLAYS,
            &PLAY_JOINS,
            &PLAY_FAILURES,
            &PLAY_RECOVERIES,
            &SESSIONS_CLOSED,
        ],
        &[&INFLIGHT, &ANSWERS_AWAITED, &DEVICES, &DEVICES_ONLINE, &SESSIONS, &DIALOGS, &PLAY_LOCKS, &ACKS],
    )
}
