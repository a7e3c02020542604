//! Wiring: the SIP endpoint (our UDP loop, rsipstack's TCP listener and transactions), the
//! shared state every handler reads, and the background tasks (presence sweeper, catalog
//! timeouts, commands routed to this node over the Store).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cluster::store::Store;
use cluster::wire::{NodeKind, PresenceEvent, SipNodeRecord, DEVICE_EVENTS};
use gb::ids::{DeviceId, NodeId, ServerId};
use gb::sip::digest::NonceIssuer;
use rsipstack::sip::{Method, SipMessage};
use rsipstack::transaction::transaction::Transaction;
use rsipstack::transport::udp::{UdpConnection, UdpInner};
use rsipstack::transport::{SipAddr, SipConnection, TcpListenerConnection, TransportLayer};
use rsipstack::EndpointBuilder;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::config::SipConfig;
use crate::error::SipError;
use crate::handles::{Admission, Catalogs, Identity, Links};
use crate::metrics;

/// Everything a node's handlers share, as narrow handles (`handles`): most functions take
/// the one they need.
pub struct Shared {
    pub cfg: SipConfig,
    pub me: Identity,
    pub store: Arc<dyn Store>,
    pub links: Links,
    pub admission: Admission,
    pub nonces: NonceIssuer,
    pub catalogs: Catalogs,
    /// Answers to queries sent from this node that a caller waits for.
    pub waiters: crate::handles::Waiters,
    sn: AtomicU32,
    /// Play sessions this node drives (dialogs, per-stream locks).
    pub plays: crate::play::Plays,
    /// Calls routed to other nodes, waiting for replies.
    pub rpc: crate::rpc::Pending,
}

impl Shared {
    pub fn next_sn(&self) -> u32 {
        self.sn.fetch_add(1, Ordering::Relaxed) % 1_000_000_000 + 1
    }

    /// A 200 to an INVITE of ours arrived again (our ACK was lost): send the ACK again.
    /// True if the response was such a retransmission.
    async fn reack(&self, resp: &rsipstack::sip::Response) -> bool {
        use rsipstack::sip::HeadersExt;
        if resp.status_code.kind() != rsipstack::sip::StatusCodeKind::Successful {
            return false;
        }
        let is_invite = resp.cseq_header().ok().and_then(|c| c.method().ok()) == Some(Method::Invite);
        let Some(call_id) = resp.call_id_header().ok().map(|c| c.value().to_owned()).filter(|_| is_invite) else { return false };
        let ack = self.plays.ack_of(&call_id);
        match ack {
            Some((bytes, to)) => {
                let _ = self.links.udp_socket.send_to(&bytes, to).await;
                true
            }
            None => false,
        }
    }

    pub fn keepalive_timeout_ms(&self) -> u64 {
        u64::from(self.cfg.keepalive_interval_secs) * u64::from(self.cfg.keepalive_misses.max(1)) * 1000
    }

    pub async fn publish_presence(&self, device_id: &DeviceId, online: bool, reason: &str) {
        let ev = PresenceEvent {
            device_id: device_id.clone(),
            online,
            reason: reason.to_owned(),
            at_ms: kit::clock::now_ms(),
            node: self.me.node.clone(),
        };
        tracing::info!(device_id = %device_id, online, reason, node = %self.me.node, "device presence changed");
        if let Err(e) = self.store.publish(DEVICE_EVENTS, &cluster::wire::to_json(&ev)).await {
            tracing::warn!(error = %e, "publishing presence event failed");
        }
    }
}

/// A command routed to the node that owns a device (published on `gbc:node:<id>:cmd`).
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum NodeCommand {
    Query {
        device_id: DeviceId,
        cmd: String,
        sn: u32,
    },
    Forget {
        device_id: DeviceId,
    },
    /// A call routed to this node (`rpc`); the reply goes to `from`.
    Call {
        id: u64,
        from: NodeId,
        call: crate::rpc::Call,
    },
    Reply {
        id: u64,
        reply: crate::rpc::Reply,
    },
}

pub fn node_channel(node: &NodeId) -> String {
    format!("gbc:node:{node}:cmd")
}

/// A running sip-server.
pub struct SipServerHandle {
    pub shared: Arc<Shared>,
    pub sip_addr: SocketAddr,
    pub api_addr: SocketAddr,
}

/// A UDP socket with a large receive buffer. The kernel caps SO_RCVBUF at `net.core.rmem_max`
/// (raise it for large sites: `sysctl -w net.core.rmem_max=16777216`); we log what we got.
fn bind_udp(addr: SocketAddr, recv_buffer: usize) -> std::io::Result<tokio::net::UdpSocket> {
    let sock = socket2::Socket::new(socket2::Domain::for_address(addr), socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    let _ = sock.set_recv_buffer_size(recv_buffer);
    let got = sock.recv_buffer_size().unwrap_or(0);
    if got < recv_buffer {
        tracing::warn!(wanted = recv_buffer, got, "UDP receive buffer capped by net.core.rmem_max; bursts may be dropped");
    }
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())?;
    tokio::net::UdpSocket::from_std(sock.into())
}

fn parse_addr(s: &str, what: &str) -> Result<SocketAddr, SipError> {
    s.parse().map_err(|_| SipError::Config(format!("{what}: {s:?} is not ip:port")))
}

/// Binds the SIP (UDP+TCP) and API listeners and starts serving until `shutdown`.
pub async fn start(cfg: SipConfig, store: Arc<dyn Store>, shutdown: CancellationToken) -> Result<SipServerHandle, SipError> {
    let api = cfg.api.clone();
    let server_id: ServerId = cfg.server_id.parse().map_err(|e| SipError::Config(format!("sip.server_id: {e}")))?;
    let domain = cfg.domain.clone().unwrap_or_else(|| server_id.domain().to_owned());
    let node = match &cfg.node_id {
        Some(n) => n.parse().map_err(|e| SipError::Config(format!("sip.node_id: {e}")))?,
        None => NodeId::random("sip"),
    };
    let listen = parse_addr(&cfg.listen, "sip.listen")?;

    // UDP: our own socket and receive loop (64 KiB datagrams; rsipstack's loop stops at 8 KiB).
    let udp_sock = bind_udp(listen, cfg.udp_recv_buffer_bytes).map_err(|source| SipError::Bind { addr: listen.to_string(), source })?;
    let udp_addr = udp_sock.local_addr()?;
    // TCP on the same port as UDP (the port the OS gave UDP when listen asks for port 0).
    let tcp_addr = SocketAddr::new(listen.ip(), udp_addr.port());
    let probe = std::net::TcpListener::bind(tcp_addr).map_err(|source| SipError::Bind { addr: tcp_addr.to_string(), source })?;
    drop(probe);

    let contact_host = match &cfg.public_addr {
        Some(a) => a.clone(),
        None if udp_addr.ip().is_unspecified() => format!("127.0.0.1:{}", udp_addr.port()),
        None => udp_addr.to_string(),
    };
    let transport_layer = TransportLayer::new(shutdown.child_token());
    let tcp_listener = TcpListenerConnection::new(tcp_addr, None).await?;
    transport_layer.add_transport(tcp_listener.into());
    // The 2xx ACK is ours: rsipstack would send it to the Contact, which behind NAT is a
    // private address (see `dialog`).
    let option = rsipstack::transaction::endpoint::EndpointOption { auto_ack_2xx: false, ..Default::default() };
    let endpoint = EndpointBuilder::new()
        .with_option(option)
        .with_user_agent("gbcluster")
        .with_transport_layer(transport_layer)
        .with_cancel_token(shutdown.child_token())
        .build();
    let mut incoming = endpoint.incoming_transactions()?;
    let inner = endpoint.inner.clone();
    tokio::spawn(async move { endpoint.serve().await });

    let udp_socket = Arc::new(udp_sock);
    let udp = UdpConnection::attach(
        UdpInner { conn: udp_socket.clone(), addr: SipAddr { r#type: Some(rsipstack::sip::Transport::Udp), addr: udp_addr.into() } },
        None,
        Some(shutdown.child_token()),
    )
    .await;

    let secret = store.shared_secret("nonce").await?;
    let shared = Arc::new(Shared {
        nonces: NonceIssuer::new(&secret, cfg.nonce_ttl_secs),
        catalogs: Catalogs::new(Duration::from_millis(cfg.catalog_timeout_ms), cfg.catalog_max_items),
        waiters: crate::handles::Waiters::default(),
        admission: Admission::new(cfg.max_inflight, Duration::from_millis(cfg.admission_wait_ms)),
        cfg,
        me: Identity { server_id, domain, node, contact_host },
        store,
        links: Links::new(inner, udp, udp_socket, udp_addr, tcp_addr),
        sn: AtomicU32::new(rand::random::<u32>() % 100_000),
        plays: crate::play::Plays::default(),
        rpc: crate::rpc::Pending::default(),
    });

    tokio::spawn(udp_loop(shared.clone(), shutdown.clone()));
    {
        let shared = shared.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            loop {
                let mut tx = tokio::select! {
                    _ = shutdown.cancelled() => break,
                    tx = incoming.recv() => match tx { Some(tx) => tx, None => break },
                };
                let shared = shared.clone();
                tokio::spawn(async move {
                    // A challenge costs no Store access: never shed it.
                    if crate::registrar::is_unauthenticated_register(&tx.original) && shared.cfg.auth {
                        dispatch(shared, tx).await;
                        return;
                    }
                    // Wait a while for a slot (a burst queues; the transaction already absorbs the
                    // device's retransmissions), then shed with 503 so devices back off instead of
                    // piling up behind a slow Store.
                    match shared.admission.admit().await {
                        Some(_slot) => dispatch(shared, tx).await,
                        None => {
                            let _ = tx.reply_with(rsipstack::sip::StatusCode::ServiceUnavailable, vec![Admission::shed()], None).await;
                        }
                    }
                });
            }
        });
    }
    tokio::spawn(presence_sweeper(shared.clone(), shutdown.clone()));
    tokio::spawn(crate::subscriptions::run(shared.clone(), shutdown.clone()));
    tokio::spawn(crate::pictures::run(shared.clone(), shutdown.clone()));
    tokio::spawn(crate::sources::run(shared.clone(), shutdown.clone()));
    tokio::spawn(catalog_timeouts(shared.clone(), shutdown.clone()));
    spawn_node_commands(shared.clone(), shutdown.clone()).await?;
    crate::play::watch::spawn(shared.clone(), shutdown.clone()).await?;

    let api_addr = crate::api::serve(shared.clone(), &api, shutdown.clone()).await?;
    tokio::spawn(announce(shared.clone(), api_addr, shutdown.clone()));
    tracing::info!(sip = %udp_addr, api = %api_addr, node = %shared.me.node, server_id = %shared.me.server_id, "sip-server listening (udp+tcp)");
    Ok(SipServerHandle { shared, sip_addr: udp_addr, api_addr })
}

/// Runs until `shutdown`.
pub async fn run(cfg: SipConfig, store: Arc<dyn Store>, shutdown: CancellationToken) -> Result<(), SipError> {
    let _handle = start(cfg, store, shutdown.clone()).await?;
    shutdown.cancelled().await;
    Ok(())
}

/// Keeps this node's record (kind `sip`) in the Store, so other nodes know it is alive before
/// routing a call to it; removed on a clean stop.
async fn announce(shared: Arc<Shared>, api_addr: SocketAddr, shutdown: CancellationToken) {
    let rec = SipNodeRecord { id: shared.me.node.to_string(), sip: shared.me.contact_host.clone(), api_port: api_addr.port() };
    let rec = cluster::wire::to_json(&rec);
    loop {
        if let Err(e) = shared.store.put_node(NodeKind::Sip.as_str(), shared.me.node.as_str(), &rec, 6000).await {
            tracing::warn!(error = %e, "announcing this node failed");
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
    }
    let _ = shared.store.remove_node(NodeKind::Sip.as_str(), shared.me.node.as_str()).await;
}

async fn udp_loop(shared: Arc<Shared>, shutdown: CancellationToken) {
    let mut buf = vec![0u8; 65_536];
    let sock = shared.links.udp_socket.clone();
    let max = shared.cfg.max_message_bytes;
    let mut last_warn = Instant::now() - Duration::from_secs(60);
    loop {
        let (len, from) = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = sock.recv_from(&mut buf) => match r {
                Ok(x) => x,
                Err(e) => {
                    // ICMP port unreachable from a vanished camera surfaces here on Linux; keep going.
                    tracing::debug!(error = %e, "udp recv");
                    continue;
                }
            },
        };
        metrics::UDP_DATAGRAMS.inc();
        let packet = &buf[..len];
        // RFC 5626 CRLF keepalives and stray whitespace.
        if packet.iter().all(|b| b.is_ascii_whitespace()) {
            if packet == b"\r\n\r\n" {
                let _ = sock.send_to(b"\r\n", from).await;
            }
            continue;
        }
        if len > max {
            metrics::UDP_OVERSIZE.inc();
            if last_warn.elapsed() > Duration::from_secs(1) {
                last_warn = Instant::now();
                tracing::warn!(peer = %from, len, max, "oversize SIP datagram dropped");
            }
            continue;
        }
        // The parser is a dependency's: should it ever panic on some datagram, that must cost
        // the datagram, not this loop (and with it every UDP device of the node).
        let parsed = std::panic::catch_unwind(|| SipMessage::try_from(packet)).unwrap_or_else(|_| {
            tracing::error!(peer = %from, len, "SIP parser panicked on a datagram; dropped");
            Err(rsipstack::sip::Error::Unexpected("parser panic".into()))
        });
        let msg = match parsed {
            Ok(m) => m,
            Err(e) => {
                metrics::UDP_MALFORMED.inc();
                if last_warn.elapsed() > Duration::from_secs(1) {
                    last_warn = Instant::now();
                    tracing::warn!(peer = %from, len, error = %e, "malformed SIP datagram dropped");
                }
                continue;
            }
        };
        let mut msg = msg;
        crate::headers::force_rport(&mut msg);
        let msg = match SipConnection::update_msg_received(msg, from, rsipstack::sip::Transport::Udp) {
            Ok(m) => m,
            Err(e) => {
                metrics::UDP_MALFORMED.inc();
                tracing::debug!(peer = %from, error = %e, "SIP datagram without a usable Via dropped");
                continue;
            }
        };
        if let SipMessage::Response(resp) = &msg {
            if shared.reack(resp).await {
                continue;
            }
        }
        if let SipMessage::Request(req) = &msg {
            if let Some(kind) = crate::stateless::classify(req, &shared.cfg) {
                let SipMessage::Request(req) = msg else { continue };
                tokio::spawn(crate::stateless::handle(shared.clone(), req, kind, from));
                continue;
            }
        }
        let from_addr = SipAddr { r#type: Some(rsipstack::sip::Transport::Udp), addr: from.into() };
        let conn: SipConnection = shared.links.udp.clone().into();
        if let Err(e) = shared.links.endpoint.on_received_message(msg, conn, &from_addr).await {
            tracing::debug!(peer = %from, error = %e, "SIP message not accepted by the transaction layer");
        }
    }
}

async fn dispatch(shared: Arc<Shared>, mut tx: Transaction) {
    use rsipstack::sip::StatusCode;
    let method = tx.original.method;
    let result = match method {
        Method::Register => match crate::registrar::observed_source(&shared, &tx).await {
            Some(source) => {
                let conn = tx.connection.clone();
                crate::registrar::on_register(&shared, &mut crate::stateless::Responder::Transaction(&mut tx), source, conn).await
            }
            None => tx.reply(rsipstack::sip::StatusCode::BadRequest).await.map_err(SipError::from),
        },
        Method::Message => crate::inbound::on_message(&shared, &mut tx).await,
        Method::Notify => crate::inbound::on_notify(&shared, &mut tx).await,
        Method::Options => tx.reply(StatusCode::OK).await.map_err(SipError::from),
        Method::Bye => {
            use rsipstack::sip::HeadersExt;
            let call_id = tx.original.call_id_header().map(|c| c.value().to_owned()).unwrap_or_default();
            let code = if crate::play::manager::on_camera_bye(&shared, &call_id).await {
                StatusCode::OK
            } else {
                StatusCode::CallTransactionDoesNotExist
            };
            tx.reply(code).await.map_err(SipError::from)
        }
        // INVITE from devices (talk-back) and the rest are not ours yet.
        _ => {
            let allow = rsipstack::sip::Header::Other("Allow".into(), "REGISTER, MESSAGE, NOTIFY, OPTIONS, ACK, BYE, CANCEL, INFO".into());
            tx.reply_with(StatusCode::MethodNotAllowed, vec![allow], None).await.map_err(SipError::from)
        }
    };
    if let Err(e) = result {
        tracing::warn!(method = %method, error = %e, "handling SIP request failed");
    }
}

/// Every node sweeps: the Store hands each due device to exactly one caller.
async fn presence_sweeper(shared: Arc<Shared>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        loop {
            let due = match shared.store.expire_due(kit::clock::now_ms(), 1000).await {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!(error = %e, "presence sweep failed");
                    break;
                }
            };
            for (id, reason) in &due {
                metrics::OFFLINE_EVENTS.inc();
                shared.publish_presence(id, false, reason.as_str()).await;
            }
            if due.len() < 1000 {
                break;
            }
        }
    }
}

async fn catalog_timeouts(shared: Arc<Shared>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        let done = shared.catalogs.expire();
        for c in done {
            tracing::warn!(device_id = %c.device_id, sn = c.sn, got = c.items.len(), sum_num = c.sum_num, "catalog timed out; storing what arrived");
            crate::inbound::store_catalog(&shared, c).await;
        }
    }
}

async fn spawn_node_commands(shared: Arc<Shared>, shutdown: CancellationToken) -> Result<(), SipError> {
    let mut sub = shared.store.subscribe(&node_channel(&shared.me.node)).await?;
    tokio::spawn(async move {
        loop {
            let msg = tokio::select! {
                _ = shutdown.cancelled() => break,
                m = sub.recv() => match m { Some(m) => m, None => break },
            };
            match serde_json::from_str::<NodeCommand>(&msg) {
                Ok(NodeCommand::Query { device_id, cmd, sn }) => {
                    let shared = shared.clone();
                    tokio::spawn(async move {
                        if let Err(e) = crate::outbound::query(&shared, &device_id, &cmd, sn).await {
                            tracing::warn!(device_id = %device_id, cmd, error = %e, "routed query failed");
                        }
                    });
                }
                Ok(NodeCommand::Forget { device_id }) => shared.links.forget(&device_id),
                Ok(NodeCommand::Call { id, from, call }) => crate::rpc::serve(shared.clone(), id, from, call),
                Ok(NodeCommand::Reply { id, reply }) => shared.rpc.complete(id, reply),
                Err(e) => tracing::warn!(error = %e, "bad node command"),
            }
        }
    });
    Ok(())
}
