//! The narrow handles a handler takes instead of the whole node: who we are (`Identity`), how
//! devices are reached (`Links`), how much work is let in (`Admission`) and the catalogs being
//! gathered (`Catalogs`). `server::Shared` only bundles them with the Store, the nonce issuer,
//! the plays and the calls in flight.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use gb::catalog::{CatalogAggregator, CatalogDone};
use gb::ids::{DeviceId, NodeId, ServerId};
use gb::model::{Channel, SipTransport};
use rsipstack::transaction::endpoint::EndpointInnerRef;
use rsipstack::transport::udp::UdpConnection;
use rsipstack::transport::SipConnection;

use crate::answers::AnswerCache;
use crate::metrics;
use crate::stateless::Answer;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Who this node is on the wire.
pub struct Identity {
    pub server_id: ServerId,
    /// SIP domain and digest realm.
    pub domain: String,
    pub node: NodeId,
    /// host:port for Via/Contact of requests we send.
    pub contact_host: String,
}

/// How devices registered on this node are reached: our sockets, the transaction endpoint, the
/// TCP connections devices registered on and the source each was last seen at.
pub struct Links {
    pub endpoint: EndpointInnerRef,
    /// Our UDP socket, used to send to UDP devices (so requests leave from the port they
    /// registered to, which is what their NAT mapping allows back in).
    pub udp: UdpConnection,
    /// The same socket, for our receive loop.
    pub udp_socket: Arc<tokio::net::UdpSocket>,
    pub udp_addr: SocketAddr,
    pub tcp_addr: SocketAddr,
    /// TCP connections of devices registered over TCP on this node.
    tcp_conns: Mutex<HashMap<DeviceId, SipConnection>>,
    /// Last observed (transport, source) per device on this node, to notice NAT rebinding.
    seen: Mutex<HashMap<DeviceId, (SipTransport, String)>>,
}

impl Links {
    pub fn new(
        endpoint: EndpointInnerRef,
        udp: UdpConnection,
        udp_socket: Arc<tokio::net::UdpSocket>,
        udp_addr: SocketAddr,
        tcp_addr: SocketAddr,
    ) -> Self {
        Self { endpoint, udp, udp_socket, udp_addr, tcp_addr, tcp_conns: Mutex::default(), seen: Mutex::default() }
    }

    /// Keeps the route to a device: where it was seen, and its TCP connection (`conn`).
    pub fn remember(&self, id: &DeviceId, seen: (SipTransport, String), conn: Option<SipConnection>) {
        if let (SipTransport::Tcp, Some(conn)) = (seen.0, conn) {
            lock(&self.tcp_conns).insert(id.clone(), conn);
        }
        lock(&self.seen).insert(id.clone(), seen);
    }

    /// Where the device was last seen on this node.
    pub fn seen(&self, id: &DeviceId) -> Option<(SipTransport, String)> {
        lock(&self.seen).get(id).cloned()
    }

    /// The TCP connection the device registered on, if it is still open here.
    pub fn tcp_conn(&self, id: &DeviceId) -> Option<SipConnection> {
        lock(&self.tcp_conns).get(id).cloned()
    }

    /// Drops what this node remembers of a device (unregistered, deleted).
    pub fn forget(&self, id: &DeviceId) {
        lock(&self.tcp_conns).remove(id);
        lock(&self.seen).remove(id);
    }
}

/// Handler slots (`sip.max_inflight`), shared by transactions and the stateless path, and the
/// stateless REGISTERs in progress or answered.
pub struct Admission {
    inflight: Arc<tokio::sync::Semaphore>,
    wait: Duration,
    /// Stateless REGISTERs by (Call-ID, CSeq): in progress (copies dropped) or answered
    /// (copies answered again, not registered again).
    registering: Mutex<AnswerCache<Answer>>,
}

impl Admission {
    pub fn new(max_inflight: usize, wait: Duration) -> Self {
        Self {
            inflight: Arc::new(tokio::sync::Semaphore::new(max_inflight.max(1))),
            wait,
            // Timer J (64·T1); 16,384 answers of about 1 KiB cover several seconds of a storm.
            registering: Mutex::new(AnswerCache::new(32_000, 16_384)),
        }
    }

    /// A handler slot, waiting up to `sip.admission_wait_ms`; `None` means shed (see `shed`).
    pub async fn admit(&self) -> Option<Slot> {
        tokio::time::timeout(self.wait, self.inflight.clone().acquire_owned()).await.ok()?.ok().map(Slot::new)
    }

    /// A handler slot if one is free now.
    pub fn try_admit(&self) -> Option<Slot> {
        self.inflight.clone().try_acquire_owned().ok().map(Slot::new)
    }

    /// Counts a request shed for overload and gives the header of its 503.
    pub fn shed() -> rsipstack::sip::Header {
        metrics::OVERLOAD_REJECTED.inc();
        rsipstack::sip::Header::Other("Retry-After".into(), "5".into())
    }

    pub fn registering(&self) -> MutexGuard<'_, AnswerCache<Answer>> {
        lock(&self.registering)
    }
}

/// A handler slot: held while a request is handled, counted in `gbc_sip_inflight`.
pub struct Slot(#[allow(dead_code)] tokio::sync::OwnedSemaphorePermit);

impl Slot {
    fn new(permit: tokio::sync::OwnedSemaphorePermit) -> Self {
        metrics::INFLIGHT.add(1);
        Slot(permit)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        metrics::INFLIGHT.add(-1);
    }
}

/// Catalog answers being gathered (multi-MESSAGE, by device and SN).
pub struct Catalogs(Mutex<CatalogAggregator>);

impl Catalogs {
    pub fn new(timeout: Duration, max_items: usize) -> Self {
        Self(Mutex::new(CatalogAggregator::new(timeout, max_items, 4096)))
    }

    /// One page of an answer; the whole catalog once its last page is in.
    pub fn push(&self, device: &str, sn: u32, sum_num: u32, items: Vec<Channel>) -> Option<CatalogDone> {
        lock(&self.0).push(Instant::now(), device, sn, sum_num, items)
    }

    /// Catalogs whose pages stopped coming.
    pub fn expire(&self) -> Vec<CatalogDone> {
        lock(&self.0).expire(Instant::now())
    }
}

/// Answers a caller on this node waits for, by (device, SN): the Response MESSAGEs of a query
/// sent through `control` or `records` (PresetQuery, DeviceControl, RecordInfo, …). An answer
/// may come in several MESSAGEs, so each wait is a small queue. Bounded: past `MAX_WAITING` a
/// new wait is refused, and a MESSAGE that finds its queue full for `DELIVER_WAIT` is dropped.
#[derive(Default)]
pub struct Waiters(Mutex<HashMap<(String, u32), tokio::sync::mpsc::Sender<gb::manscdp::Body>>>);

/// More queries than this in flight on one node is a flood, not operators.
pub const MAX_WAITING: usize = 4096;
/// MESSAGEs queued per wait; the waiting task drains them as they come.
const QUEUE: usize = 32;
/// How long a delivering handler waits for room in a full queue.
const DELIVER_WAIT: Duration = Duration::from_secs(1);

/// A registered wait; dropping it (answered, timed out, the caller gone) forgets the entry.
pub struct Waiting<'a> {
    waiters: &'a Waiters,
    key: (String, u32),
    pub rx: tokio::sync::mpsc::Receiver<gb::manscdp::Body>,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        lock(&self.waiters.0).remove(&self.key);
        metrics::ANSWERS_AWAITED.add(-1);
    }
}

impl Waiting<'_> {
    /// The next MESSAGE of the answer, or `None` after `within`.
    pub async fn next(&mut self, within: Duration) -> Option<gb::manscdp::Body> {
        tokio::time::timeout(within, self.rx.recv()).await.ok().flatten()
    }
}

/// What became of an answer handed to `Waiters::deliver`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Delivered,
    /// Nobody waits for it (late, or the caller gave up).
    Unexpected,
    /// The waiting task did not keep up (a flood).
    Dropped,
}

impl Waiters {
    /// Waits for `device`'s answer carrying `sn`; `None` when too many waits are open.
    pub fn wait(&self, device: &str, sn: u32) -> Option<Waiting<'_>> {
        let mut map = lock(&self.0);
        if map.len() >= MAX_WAITING {
            return None;
        }
        let (tx, rx) = tokio::sync::mpsc::channel(QUEUE);
        let key = (device.to_owned(), sn);
        map.insert(key.clone(), tx);
        metrics::ANSWERS_AWAITED.add(1);
        Some(Waiting { waiters: self, key, rx })
    }

    /// One MESSAGE of an answer arrived.
    pub async fn deliver(&self, device: &str, sn: u32, body: gb::manscdp::Body) -> Delivery {
        let Some(tx) = lock(&self.0).get(&(device.to_owned(), sn)).cloned() else { return Delivery::Unexpected };
        match tx.send_timeout(body, DELIVER_WAIT).await {
            Ok(()) => Delivery::Delivered,
            Err(tokio::sync::mpsc::error::SendTimeoutError::Closed(_)) => Delivery::Unexpected,
            Err(tokio::sync::mpsc::error::SendTimeoutError::Timeout(_)) => Delivery::Dropped,
        }
    }

    pub fn len(&self) -> usize {
        lock(&self.0).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
