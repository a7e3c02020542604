//! sip-server counters, rendered at `/metrics`.

use common::metrics::{Counter, Gauge};

pub static UDP_DATAGRAMS: Counter = Counter::new("gbc_sip_udp_datagrams_total", "SIP datagrams received over UDP");
pub static UDP_OVERSIZE: Counter =
    Counter::new("gbc_sip_oversize_dropped_total", "SIP messages dropped for exceeding sip.max_message_bytes");
pub static UDP_MALFORMED: Counter = Counter::new("gbc_sip_malformed_dropped_total", "SIP datagrams dropped because they do not parse");
pub static REGISTERS: Counter = Counter::new("gbc_sip_registers_total", "REGISTER requests answered 200");
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
pub static BAD_REQUESTS: Counter = Counter::new("gbc_sip_bad_requests_total", "Requests answered 4xx for malformed content");
pub static OVERLOAD_REJECTED: Counter =
    Counter::new("gbc_sip_overload_rejected_total", "Requests answered 503 because sip.max_inflight were in progress");
pub static INFLIGHT: Gauge = Gauge::new("gbc_sip_inflight", "SIP requests being handled now");
pub static DEVICES: Gauge = Gauge::new("gbc_sip_devices", "Devices in the Store");
pub static DEVICES_ONLINE: Gauge = Gauge::new("gbc_sip_devices_online", "Online devices in the Store");

pub fn render() -> String {
    common::metrics::render(
        &[
            &UDP_DATAGRAMS,
            &UDP_OVERSIZE,
            &UDP_MALFORMED,
            &REGISTERS,
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
            &BAD_REQUESTS,
            &OVERLOAD_REJECTED,
        ],
        &[&INFLIGHT, &DEVICES, &DEVICES_ONLINE],
    )
}
