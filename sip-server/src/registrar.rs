//! REGISTER, top-down: device id, allow-list, lockout, digest, expiry (0 unregisters), then
//! store the device with the address it really came from and the node that owns its socket.

use cluster::registry::Device;
use gb::ids::DeviceId;
use gb::model::SipTransport;
use gb::sip::digest::{Algorithm, Challenge, Credentials, NonceCheck};
use rsipstack::sip::{Header, StatusCode};
use rsipstack::transaction::transaction::Transaction;

use crate::config::Sha256Policy;
use crate::error::SipError;
use crate::headers;
use crate::metrics;
use crate::server::Shared;
use crate::stateless::Responder;

fn now_secs() -> u64 {
    kit::clock::now_ms() / 1000
}

fn other(name: &str, value: impl Into<String>) -> Header {
    Header::Other(name.into(), value.into())
}

/// Whether the device announced GB28181-2022 (`X-GB-Ver: 3.0` or later).
fn is_gb2022(gb_version: Option<&str>) -> bool {
    gb_version.and_then(|v| v.trim().split('.').next()?.parse::<u32>().ok()).is_some_and(|major| major >= 3)
}

pub fn challenges(shared: &Shared, gb_version: Option<&str>, stale: bool) -> Vec<Header> {
    let algs: &[Algorithm] = match (shared.cfg.sha256, is_gb2022(gb_version)) {
        (Sha256Policy::Always, _) | (Sha256Policy::Gb2022, true) => &[Algorithm::Sha256, Algorithm::Md5],
        _ => &[Algorithm::Md5],
    };
    let nonce = shared.nonces.issue(now_secs());
    algs.iter()
        .map(|&algorithm| {
            let c =
                Challenge { realm: shared.domain.clone(), nonce: nonce.clone(), algorithm, qop_auth: shared.cfg.qop, stale, opaque: None };
            other("WWW-Authenticate", c.to_header_value())
        })
        .collect()
}

/// Where the packet really came from: Via `received`/`rport` (written by the transport on
/// receipt) for UDP, the connection's peer for TCP.
pub async fn observed_source(shared: &Shared, tx: &Transaction) -> Option<(SipTransport, String)> {
    let conn = tx.connection.as_ref()?;
    if conn.is_reliable() {
        let remote = conn.get_remote_addr()?;
        Some((SipTransport::Tcp, remote.addr.to_string()))
    } else {
        let dest = shared.endpoint.get_destination_from_request(&tx.original).await?;
        Some((SipTransport::Udp, dest.addr.to_string()))
    }
}

/// A REGISTER without credentials: answered with a challenge, from memory.
pub fn is_unauthenticated_register(req: &rsipstack::sip::Request) -> bool {
    req.method == rsipstack::sip::Method::Register && !req.headers.iter().any(|h| h.name().eq_ignore_ascii_case("Authorization"))
}

/// Handles a REGISTER that arrived from `(transport, source)`; `tcp_conn` is the connection it
/// came on (TCP). The answer goes out through `tx`: a transaction, or our UDP socket.
pub async fn on_register(
    shared: &std::sync::Arc<Shared>,
    tx: &mut Responder<'_>,
    (transport, source): (SipTransport, String),
    tcp_conn: Option<rsipstack::transport::SipConnection>,
) -> Result<(), SipError> {
    let source_ip = source.rsplit_once(':').map_or(source.as_str(), |(ip, _)| ip).to_owned();
    let device_id: DeviceId = match headers::from_user(tx.request()).and_then(|u| u.parse().ok()) {
        Some(id) => id,
        None => {
            metrics::BAD_REQUESTS.inc();
            tracing::warn!(peer = %source, "REGISTER without a 20-digit device id in From");
            return tx.reply(shared, StatusCode::BadRequest, vec![]).await;
        }
    };
    let cfg = &shared.cfg;
    if !cfg.allow_prefixes.is_empty() && !cfg.allow_prefixes.iter().any(|p| device_id.as_str().starts_with(p.as_str())) {
        tracing::warn!(device_id = %device_id, peer = %source, "REGISTER refused: id not in allow_prefixes");
        return tx.reply(shared, StatusCode::Forbidden, vec![]).await;
    }

    let gb_version = headers::value(tx.request(), "X-GB-Ver");
    let authorization = headers::value(tx.request(), "Authorization");
    // A REGISTER without credentials is answered from memory: in a registration storm half of
    // all requests are these, and they must not cost a Store round trip.
    if cfg.auth && authorization.is_none() {
        metrics::CHALLENGES.inc();
        return tx.reply(shared, StatusCode::Unauthorized, challenges(shared, gb_version.as_deref(), false)).await;
    }

    // The reads a REGISTER needs, at once: one round trip of latency instead of four.
    let dev_key = format!("dev:{device_id}");
    let ip_key = format!("ip:{source_ip}");
    let (dev_failures, ip_failures, stored_password, prev) = tokio::join!(
        shared.store.auth_failures(&dev_key),
        shared.store.auth_failures(&ip_key),
        shared.store.device_password(&device_id),
        shared.store.get_device(&device_id),
    );
    let (dev_failures, ip_failures, prev) = (dev_failures?, ip_failures?, prev?);
    // Lockout, by device id and by source IP.
    if cfg.lockout_threshold > 0 && (dev_failures >= cfg.lockout_threshold || ip_failures >= cfg.lockout_threshold) {
        metrics::LOCKED_OUT.inc();
        tracing::warn!(device_id = %device_id, peer = %source, "REGISTER refused: locked out after repeated auth failures");
        return tx.reply(shared, StatusCode::Forbidden, vec![other("Retry-After", cfg.lockout_secs.to_string())]).await;
    }

    if let (true, Some(auth)) = (cfg.auth, authorization) {
        let creds = match Credentials::parse(&auth) {
            Ok(c) => c,
            Err(e) => {
                metrics::BAD_REQUESTS.inc();
                tracing::warn!(device_id = %device_id, peer = %source, error = %e, "unusable Authorization header");
                return tx.reply(shared, StatusCode::BadRequest, vec![]).await;
            }
        };
        match shared.nonces.check(&creds.nonce, now_secs()) {
            NonceCheck::Valid => {}
            NonceCheck::Stale => {
                metrics::CHALLENGES.inc();
                return tx.reply(shared, StatusCode::Unauthorized, challenges(shared, gb_version.as_deref(), true)).await;
            }
            NonceCheck::Invalid => {
                metrics::CHALLENGES.inc();
                return tx.reply(shared, StatusCode::Unauthorized, challenges(shared, gb_version.as_deref(), false)).await;
            }
        }
        let password = stored_password?.unwrap_or_else(|| cfg.password.clone());
        if !creds.verify("REGISTER", &password) {
            metrics::AUTH_FAILURES.inc();
            let n = shared.store.record_auth_failure(&dev_key, cfg.lockout_secs).await?;
            shared.store.record_auth_failure(&ip_key, cfg.lockout_secs).await?;
            tracing::warn!(device_id = %device_id, peer = %source, failures = n, "REGISTER with a wrong password");
            return tx.reply(shared, StatusCode::Forbidden, vec![]).await;
        }
        if dev_failures > 0 {
            shared.store.clear_auth_failures(&dev_key).await?;
        }
    }

    let now_ms = kit::clock::now_ms();
    let date = other("Date", gb::sip::gb_date(now_ms, cfg.date_utc_offset_minutes));
    let requested = headers::expires(tx.request()).unwrap_or(cfg.default_expires_secs);
    if requested == 0 {
        metrics::UNREGISTERS.inc();
        let was_online = shared.store.unregister_device(&device_id).await?;
        shared.forget(&device_id);
        tx.reply(shared, StatusCode::OK, vec![other("Expires", "0"), date]).await?;
        if was_online {
            shared.publish_presence(&device_id, false, "unregistered").await;
        }
        return Ok(());
    }
    if requested < cfg.min_expires_secs {
        return tx.reply(shared, StatusCode::IntervalTooBrief, vec![other("Min-Expires", cfg.min_expires_secs.to_string())]).await;
    }
    let granted = requested.min(cfg.max_expires_secs);

    let contact = headers::contact(tx.request()).unwrap_or_default();
    let local_addr = match transport {
        SipTransport::Udp => shared.udp_addr.to_string(),
        SipTransport::Tcp => shared.tcp_addr.to_string(),
    };
    let dev = Device {
        id: device_id.clone(),
        transport,
        source_addr: source.clone(),
        contact: contact.clone(),
        node: shared.node.clone(),
        local_addr,
        expires_secs: granted,
        registered_at_ms: now_ms,
        last_seen_ms: now_ms,
        online: true,
        keepalive_interval_secs: cfg.keepalive_interval_secs,
        gb_version,
        user_agent: headers::value(tx.request(), "User-Agent"),
        info: prev.as_ref().map(|p| p.info.clone()).unwrap_or_default(),
        status: prev.as_ref().and_then(|p| p.status.clone()),
        channel_count: prev.as_ref().map_or(0, |p| p.channel_count),
    };
    let deadline = (now_ms + shared.keepalive_timeout_ms()).min(now_ms + u64::from(granted) * 1000);
    shared.store.upsert_device(&dev, deadline).await?;
    if transport == SipTransport::Tcp {
        if let Some(conn) = tcp_conn {
            shared.tcp_conns.lock().unwrap_or_else(|e| e.into_inner()).insert(device_id.clone(), conn);
        }
    }
    shared.seen.lock().unwrap_or_else(|e| e.into_inner()).insert(device_id.clone(), (transport, source.clone()));

    let mut hdrs = vec![other("Expires", granted.to_string()), date];
    if !contact.is_empty() {
        hdrs.insert(0, other("Contact", contact));
    }
    tx.reply(shared, StatusCode::OK, hdrs).await?;
    metrics::REGISTERS.inc();

    let fresh = match &prev {
        None => true,
        Some(p) => !p.online || p.source_addr != source || p.node != shared.node,
    };
    if fresh {
        tracing::info!(device_id = %device_id, peer = %source, transport = transport.as_str(), expires = granted, "device registered");
        if !prev.as_ref().is_some_and(|p| p.online) {
            shared.publish_presence(&device_id, true, "registered").await;
        }
        if cfg.query_on_register {
            crate::outbound::spawn_initial_queries(shared, device_id);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::is_gb2022;

    #[test]
    fn gb_version_detection() {
        assert!(is_gb2022(Some("3.0")));
        assert!(is_gb2022(Some(" 3.1 ")));
        assert!(!is_gb2022(Some("2.0")));
        assert!(!is_gb2022(Some("x")));
        assert!(!is_gb2022(None));
    }
}
