//! REGISTER: the rules are a pure machine (`machine`); this is its shell, which reads the
//! request, runs the Store calls and sends the answer the machine asks for.

pub mod machine;

use cluster::store::Store;
use gb::ids::DeviceId;
use gb::model::SipTransport;
use rsipstack::transaction::transaction::Transaction;

use crate::error::SipError;
use crate::headers;
use crate::metrics;
use crate::server::Shared;
use crate::stateless::Responder;
use machine::{Action, Counter, Event, Lookup, Note, Register, Registration, Rules};

/// The registrar's rules as this node applies them.
pub fn rules(shared: &Shared) -> Rules<'_> {
    Rules {
        cfg: &shared.cfg,
        realm: &shared.me.domain,
        nonces: &shared.nonces,
        node: &shared.me.node,
        udp_addr: shared.links.udp_addr.to_string(),
        tcp_addr: shared.links.tcp_addr.to_string(),
    }
}

/// Where the packet really came from: Via `received`/`rport` (written by the transport on
/// receipt) for UDP, the connection's peer for TCP.
pub async fn observed_source(shared: &Shared, tx: &Transaction) -> Option<(SipTransport, String)> {
    let conn = tx.connection.as_ref()?;
    if conn.is_reliable() {
        let remote = conn.get_remote_addr()?;
        Some((SipTransport::Tcp, remote.addr.to_string()))
    } else {
        let dest = shared.links.endpoint.get_destination_from_request(&tx.original).await?;
        Some((SipTransport::Udp, dest.addr.to_string()))
    }
}

/// A REGISTER without credentials: answered with a challenge, from memory.
pub fn is_unauthenticated_register(req: &rsipstack::sip::Request) -> bool {
    req.method == rsipstack::sip::Method::Register && !req.headers.iter().any(|h| h.name().eq_ignore_ascii_case("Authorization"))
}

fn read(req: &rsipstack::sip::Request, transport: SipTransport, source: String) -> Register {
    Register {
        from_user: headers::from_user(req),
        authorization: headers::value(req, "Authorization"),
        expires: headers::expires(req),
        contact: headers::contact(req),
        gb_version: headers::value(req, "X-GB-Ver"),
        user_agent: headers::value(req, "User-Agent"),
        transport,
        source,
    }
}

/// Handles a REGISTER that arrived from `(transport, source)`; `tcp_conn` is the connection it
/// came on (TCP). The answer goes out through `tx`: a transaction, or our UDP socket.
pub async fn on_register(
    shared: &std::sync::Arc<Shared>,
    tx: &mut Responder<'_>,
    (transport, source): (SipTransport, String),
    tcp_conn: Option<rsipstack::transport::SipConnection>,
) -> Result<(), SipError> {
    let rules = rules(shared);
    let req = read(tx.request(), transport, source.clone());
    let (mut state, mut actions) = machine::step(&rules, Registration::New(req), Event::Start, kit::clock::now_ms());
    loop {
        let mut next = None;
        for action in actions {
            if let Some(event) = run(shared, tx, action, (transport, &source), &tcp_conn).await? {
                next = Some(event);
            }
        }
        let Some(event) = next else { return Ok(()) };
        (state, actions) = machine::step(&rules, state, event, kit::clock::now_ms());
    }
}

/// Runs one action; the Store reads give the machine its next event.
async fn run(
    shared: &std::sync::Arc<Shared>,
    tx: &mut Responder<'_>,
    action: Action,
    (transport, source): (SipTransport, &str),
    tcp_conn: &Option<rsipstack::transport::SipConnection>,
) -> Result<Option<Event>, SipError> {
    let store: &dyn Store = shared.store.as_ref();
    match action {
        Action::Lookup { device_id, keys } => {
            // One round trip of latency instead of four.
            let (device_failures, source_failures, password, prev) = tokio::join!(
                store.auth_failures(&keys.device),
                store.auth_failures(&keys.source),
                store.device_password(&device_id),
                store.get_device(&device_id),
            );
            let found = Lookup { device_failures: device_failures?, source_failures: source_failures?, password: password?, prev: prev? };
            return Ok(Some(Event::LookedUp(Box::new(found))));
        }
        Action::Unregister(device_id) => {
            let was_online = store.unregister_device(&device_id).await?;
            return Ok(Some(Event::Unregistered { was_online }));
        }
        Action::Reply { code, headers } => tx.reply(shared, code, headers).await?,
        Action::RecordFailure { keys, lockout_secs } => {
            let n = store.record_auth_failure(&keys.device, lockout_secs).await?;
            store.record_auth_failure(&keys.source, lockout_secs).await?;
            tracing::warn!(device = %keys.device, peer = %source, failures = n, "REGISTER with a wrong password");
        }
        Action::ClearDeviceFailures { key } => store.clear_auth_failures(&key).await?,
        Action::Forget(device_id) => shared.links.forget(&device_id),
        Action::Store { device, deadline_ms } => store.upsert_device(&device, deadline_ms).await?,
        Action::RememberRoute(device_id) => remember_route(shared, device_id, (transport, source), tcp_conn),
        Action::Publish { device_id, online, reason } => shared.publish_presence(&device_id, online, reason).await,
        Action::Query(device_id) => crate::outbound::spawn_initial_queries(shared, device_id),
        Action::Count(counter) => count(counter),
        Action::Log(note) => log(&note, tx.request(), transport, source),
    }
    Ok(None)
}

fn remember_route(
    shared: &Shared,
    device_id: DeviceId,
    (transport, source): (SipTransport, &str),
    tcp_conn: &Option<rsipstack::transport::SipConnection>,
) {
    shared.links.remember(&device_id, (transport, source.to_owned()), tcp_conn.clone());
}

fn count(counter: Counter) {
    match counter {
        Counter::BadRequest => metrics::BAD_REQUESTS.inc(),
        Counter::Challenge => metrics::CHALLENGES.inc(),
        Counter::LockedOut => metrics::LOCKED_OUT.inc(),
        Counter::AuthFailure => metrics::AUTH_FAILURES.inc(),
        Counter::Unregister => metrics::UNREGISTERS.inc(),
        Counter::Register => metrics::REGISTERS.inc(),
    }
}

fn log(note: &Note, req: &rsipstack::sip::Request, transport: SipTransport, source: &str) {
    let device_id = headers::from_user(req).unwrap_or_default();
    match note {
        Note::NoDeviceId => tracing::warn!(peer = %source, "REGISTER without a 20-digit device id in From"),
        Note::NotAllowed => tracing::warn!(device_id, peer = %source, "REGISTER refused: id not in allow_prefixes"),
        Note::LockedOut => tracing::warn!(device_id, peer = %source, "REGISTER refused: locked out after repeated auth failures"),
        Note::UnusableAuthorization(e) => tracing::warn!(device_id, peer = %source, error = %e, "unusable Authorization header"),
        Note::WrongPassword => {} // logged with the failure count when recorded
        Note::Registered { expires } => {
            tracing::info!(device_id, peer = %source, transport = transport.as_str(), expires, "device registered")
        }
    }
}
