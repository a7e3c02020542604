//! Requests we send to devices. Each leaves from the socket or TCP connection the device
//! registered on, to the address its packets came from — the only path a NAT lets through.
//! A device registered on another node is reached by routing the command to that node.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use cluster::registry::Device;
use gb::ids::DeviceId;
use gb::manscdp;
use gb::model::SipTransport;
use rsipstack::sip::{SipMessage, StatusCodeKind};
use rsipstack::transaction::key::{TransactionKey, TransactionRole};
use rsipstack::transaction::transaction::Transaction;
use rsipstack::transport::{SipAddr, SipConnection};

use crate::error::SipError;
use crate::handles::Links;
use crate::metrics;
use crate::server::{node_channel, NodeCommand, Shared};

pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

pub fn token() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// How a request reaches a device: the socket or TCP connection it registered on, to the
/// address its packets came from.
#[derive(Clone)]
pub struct Route {
    pub conn: SipConnection,
    pub dest: SipAddr,
    pub addr: SocketAddr,
    /// `UDP` or `TCP`, for Via.
    pub proto: &'static str,
}

impl Route {
    pub fn to(links: &Links, dev: &Device) -> Result<Route, SipError> {
        let addr: SocketAddr = dev
            .source_addr
            .parse()
            .map_err(|_| SipError::Config(format!("device {} has a bad source address {:?}", dev.id, dev.source_addr)))?;
        let (conn, proto, t): (SipConnection, &str, _) = match dev.transport {
            SipTransport::Udp => (links.udp.clone().into(), "UDP", rsipstack::sip::Transport::Udp),
            SipTransport::Tcp => {
                let c = links.tcp_conn(&dev.id);
                (
                    c.ok_or_else(|| SipError::NotRegistered(format!("{} (its TCP connection is gone)", dev.id)))?,
                    "TCP",
                    rsipstack::sip::Transport::Tcp,
                )
            }
        };
        Ok(Route { conn, dest: SipAddr { r#type: Some(t), addr: addr.into() }, addr, proto })
    }

    /// Sends a message outside any transaction (an ACK).
    pub async fn send_raw(&self, msg: SipMessage) -> Result<(), SipError> {
        self.conn.send(msg, Some(&self.dest)).await.map_err(SipError::from)
    }
}

/// Parses a request we built as text.
pub fn parse_request(bytes: &[u8]) -> Result<rsipstack::sip::Request, SipError> {
    match SipMessage::try_from(bytes)? {
        SipMessage::Request(req) => Ok(req),
        SipMessage::Response(_) => Err(SipError::Config("built request did not parse as a request".into())),
    }
}

/// Starts a client transaction for `req` over `route`.
pub async fn start_transaction(links: &Links, route: &Route, req: rsipstack::sip::Request) -> Result<Transaction, SipError> {
    let key = TransactionKey::from_request(&req, TransactionRole::Client)?;
    let mut tx = Transaction::new_client(key, req, links.endpoint.clone(), Some(route.conn.clone()));
    tx.destination = Some(route.dest.clone());
    tx.send().await?;
    Ok(tx)
}

/// The final status of a client transaction (provisional answers skipped), or `None` when it
/// ends without one or `within` runs out.
pub async fn final_status(tx: &mut Transaction, within: Duration) -> Option<u16> {
    final_response(tx, within).await.map(|r| r.status_code.code())
}

/// The final response of a client transaction (provisional answers skipped).
pub async fn final_response(tx: &mut Transaction, within: Duration) -> Option<rsipstack::sip::Response> {
    let wait = async {
        while let Some(msg) = tx.receive().await {
            if let SipMessage::Response(r) = msg {
                if r.status_code.kind() != StatusCodeKind::Provisional {
                    return Some(r);
                }
            }
        }
        None
    };
    tokio::time::timeout(within, wait).await.ok().flatten()
}

/// Sends `method` with `body` to the device and waits for the final response code.
pub async fn send_request(shared: &Shared, dev: &Device, method: &str, content_type: &str, body: &[u8]) -> Result<u16, SipError> {
    let route = Route::to(&shared.links, dev)?;
    let addr = route.addr;
    let cseq: u32 = rand::random::<u32>() % 100_000 + 1;
    let text = format!(
        "{method} sip:{dev_id}@{addr} SIP/2.0\r\n\
         Via: SIP/2.0/{proto} {host};rport;branch=z9hG4bK{branch}\r\n\
         From: <sip:{server}@{domain}>;tag={tag}\r\n\
         To: <sip:{dev_id}@{domain}>\r\n\
         Call-ID: {call}@{host}\r\n\
         CSeq: {cseq} {method}\r\n\
         Max-Forwards: 70\r\n\
         User-Agent: gbcluster\r\n\
         Content-Type: {content_type}\r\n\
         Content-Length: {len}\r\n\r\n",
        dev_id = dev.id,
        proto = route.proto,
        host = shared.me.contact_host,
        branch = token(),
        server = shared.me.server_id,
        domain = shared.me.domain,
        tag = token(),
        call = token(),
        len = body.len(),
    );
    let mut bytes = text.into_bytes();
    bytes.extend_from_slice(body);
    let req = parse_request(&bytes)?;
    let mut tx = start_transaction(&shared.links, &route, req).await?;
    match final_status(&mut tx, REQUEST_TIMEOUT).await {
        Some(code) if (200..300).contains(&code) => Ok(code),
        Some(code) => Err(SipError::Refused { device: dev.id.to_string(), code }),
        None => Err(SipError::Timeout { device: dev.id.to_string(), addr, timeout_ms: REQUEST_TIMEOUT.as_millis() as u64 }),
    }
}

/// Sends a MANSCDP query (`Catalog`, `DeviceInfo`, `DeviceStatus`) from this node.
pub async fn query(shared: &Shared, device_id: &DeviceId, cmd: &str, sn: u32) -> Result<(), SipError> {
    let dev = shared.store.get_device(device_id).await?.ok_or_else(|| SipError::NotRegistered(device_id.to_string()))?;
    let body = manscdp::build::query(cmd, sn, device_id.as_str(), "");
    match send_request(shared, &dev, "MESSAGE", manscdp::CONTENT_TYPE, &body).await {
        Ok(_) => Ok(()),
        Err(e) => {
            metrics::QUERY_FAILURES.inc();
            Err(e)
        }
    }
}

/// A query from the API: sent here when this node owns the device, else routed to its owner.
/// Returns the SN the answer will carry.
pub async fn request_query(shared: &Arc<Shared>, device_id: &DeviceId, cmd: &str) -> Result<u32, SipError> {
    let dev = shared.store.get_device(device_id).await?.ok_or_else(|| SipError::NotRegistered(device_id.to_string()))?;
    if !dev.online {
        return Err(SipError::NotRegistered(device_id.to_string()));
    }
    let sn = shared.next_sn();
    if dev.node == shared.me.node {
        let shared = shared.clone();
        let (device_id, cmd) = (device_id.clone(), cmd.to_owned());
        tokio::spawn(async move {
            if let Err(e) = query(&shared, &device_id, &cmd, sn).await {
                tracing::warn!(device_id = %device_id, cmd, error = %e, "query failed");
            }
        });
    } else {
        let cmd = NodeCommand::Query { device_id: device_id.clone(), cmd: cmd.to_owned(), sn };
        let json = serde_json::to_string(&cmd).map_err(|e| SipError::Config(e.to_string()))?;
        shared.store.publish(&node_channel(&dev.node), &json).await?;
    }
    Ok(sn)
}

/// After a new registration: DeviceInfo, DeviceStatus, then Catalog; then the subscriptions.
pub fn spawn_initial_queries(shared: &Arc<Shared>, device_id: DeviceId) {
    let shared = shared.clone();
    tokio::spawn(async move {
        for cmd in ["DeviceInfo", "DeviceStatus", "Catalog"] {
            let sn = shared.next_sn();
            if let Err(e) = query(&shared, &device_id, cmd, sn).await {
                tracing::warn!(device_id = %device_id, cmd, error = %e, "initial query failed");
                break;
            }
        }
        // Then the event subscriptions, anew: the device may have rebooted and forgotten them.
        crate::subscriptions::renew_all(&shared, &device_id).await;
    });
}
