//! Socket tasks: each reads one stream's transport and drives its `Worker`. UDP reads into one
//! reused buffer; TCP goes through the RFC 4571 framer (which also takes `$` interleaving).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use media::rtp::TcpFramer;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream, UdpSocket};

use crate::recv_batch;
use crate::stream::{CloseReason, TickOutcome, Worker};

const TICK: Duration = Duration::from_millis(100);
/// recvmmsg calls per wake-up before yielding to other streams.
const UDP_ROUNDS: usize = 2;
/// Largest RTP packet over TCP (2-byte length).
const MAX_TCP_PACKET: usize = 65_535;

/// What a task reports when its stream ends.
pub type Ended = CloseReason;

/// Reads what is queued on a UDP socket (a frame arrives as a burst): one clock read, one
/// system call per `BATCH` datagrams, at most `rounds` calls.
fn drain_udp(w: &mut Worker, sock: &UdpSocket, rounds: usize) {
    let now = Instant::now();
    for _ in 0..rounds {
        match recv_batch::recv(sock, &mut |pkt, from| w.on_packet(pkt, from, now)) {
            Ok(n) if n == recv_batch::BATCH => continue,
            Ok(_) => break,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            // ICMP port unreachable and the like surface here on some systems: keep reading.
            Err(e) => {
                tracing::debug!(stream = %w.entry.id, "udp recv: {e}");
                break;
            }
        }
    }
}

/// The first deadline of a polling interval, aligned to a multiple of `period` on a clock
/// shared by the process, so every stream's poll falls due in the same timer turn and one
/// worker wake-up serves them all.
pub fn aligned_start(period: Duration) -> tokio::time::Instant {
    static EPOCH: std::sync::OnceLock<tokio::time::Instant> = std::sync::OnceLock::new();
    let epoch = *EPOCH.get_or_init(tokio::time::Instant::now);
    let now = tokio::time::Instant::now();
    let p = period.as_nanos().max(1);
    let elapsed = now.duration_since(epoch).as_nanos();
    epoch + Duration::from_nanos(((elapsed / p + 1) * p) as u64)
}

/// `poll`: `None` reads as soon as the socket is readable (lowest latency, one wake-up per
/// burst); `Some(period)` reads every `period` on a process-wide aligned tick (adds up to one
/// period of latency, but wake-ups no longer grow with the number of streams).
pub async fn run_udp(mut w: Worker, sock: UdpSocket, poll: Option<Duration>, on_started: impl Fn()) -> Ended {
    let cancel = w.entry.cancel.clone();
    if let Some(period) = poll {
        let mut iv = tokio::time::interval_at(aligned_start(period), period);
        iv.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let ticks_per_housekeeping = (TICK.as_millis() / period.as_millis().max(1)).max(1) as u32;
        let mut n = 0u32;
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return CloseReason::Api,
                _ = iv.tick() => {
                    drain_udp(&mut w, &sock, UDP_ROUNDS * 4);
                    n += 1;
                    if n.is_multiple_of(ticks_per_housekeeping) {
                        match w.on_tick(Instant::now()) {
                            TickOutcome::Continue => {}
                            TickOutcome::Started => on_started(),
                            TickOutcome::Close(r) => return r,
                        }
                    }
                }
            }
        }
    }
    let mut tick = tokio::time::interval(TICK);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return CloseReason::Api,
            r = sock.readable() => if r.is_ok() { drain_udp(&mut w, &sock, UDP_ROUNDS) },
            _ = tick.tick() => match w.on_tick(Instant::now()) {
                TickOutcome::Continue => {}
                TickOutcome::Started => on_started(),
                TickOutcome::Close(r) => return r,
            },
        }
    }
}

/// Reads one TCP connection until it closes, the stream is cancelled or goes quiet.
async fn read_tcp(w: &mut Worker, mut conn: TcpStream, peer: SocketAddr, on_started: &impl Fn(), listener: Option<&TcpListener>) -> Ended {
    let _ = conn.set_nodelay(true);
    let mut framer = TcpFramer::new(w.entry.ssrc, MAX_TCP_PACKET);
    let mut buf = vec![0u8; 64 * 1024];
    let mut tick = tokio::time::interval(TICK);
    let cancel = w.entry.cancel.clone();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return CloseReason::Api,
            r = conn.read(&mut buf) => match r {
                Ok(0) | Err(_) => return CloseReason::PeerClosed,
                Ok(n) => {
                    if let Some(theirs) = w.entry.answered_ssrc().filter(|s| framer.expected_ssrc() != Some(*s)) {
                        framer.set_expected_ssrc(Some(theirs));
                    }
                    framer.push(&buf[..n]);
                    let now = Instant::now();
                    while let Some(pkt) = framer.next_packet() {
                        w.on_packet(pkt, peer, now);
                    }
                }
            },
            // A camera that reconnects replaces its old connection.
            Some(Ok((c, p))) = async { match listener { Some(l) => Some(l.accept().await), None => None } } => {
                tracing::info!(stream = %w.entry.id, peer = %p, "camera reconnected; replacing the old connection");
                conn = c;
                let _ = conn.set_nodelay(true);
                framer = TcpFramer::new(w.entry.ssrc, MAX_TCP_PACKET);
            },
            _ = tick.tick() => match w.on_tick(Instant::now()) {
                TickOutcome::Continue => {}
                TickOutcome::Started => on_started(),
                TickOutcome::Close(r) => return r,
            },
        }
    }
}

/// Quiet-time ticks while no connection exists yet.
async fn wait_tick(w: &mut Worker, on_started: &impl Fn()) -> Option<Ended> {
    tokio::time::sleep(TICK).await;
    match w.on_tick(Instant::now()) {
        TickOutcome::Close(r) => Some(r),
        TickOutcome::Started => {
            on_started();
            None
        }
        TickOutcome::Continue => None,
    }
}

pub async fn run_tcp_passive(mut w: Worker, listener: TcpListener, on_started: impl Fn()) -> Ended {
    let cancel = w.entry.cancel.clone();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return CloseReason::Api,
            r = listener.accept() => {
                let Ok((conn, peer)) = r else { continue };
                tracing::info!(stream = %w.entry.id, %peer, "camera connected (tcp passive)");
                match read_tcp(&mut w, conn, peer, &on_started, Some(&listener)).await {
                    // The camera may reconnect within the no-data time.
                    CloseReason::PeerClosed => continue,
                    other => return other,
                }
            }
            r = wait_tick(&mut w, &on_started) => if let Some(r) = r { return r },
        }
    }
}

pub async fn run_tcp_active(mut w: Worker, on_started: impl Fn()) -> Ended {
    let cancel = w.entry.cancel.clone();
    let mut peer_rx = w.entry.peer.subscribe();
    let mut backoff = Duration::from_millis(200);
    loop {
        let peer = *peer_rx.borrow_and_update();
        let Some(peer) = peer else {
            tokio::select! {
                _ = cancel.cancelled() => return CloseReason::Api,
                _ = peer_rx.changed() => continue,
                r = wait_tick(&mut w, &on_started) => if let Some(r) = r { return r } else { continue },
            }
        };
        let attempt = tokio::time::timeout(Duration::from_secs(3), TcpStream::connect(peer));
        tokio::select! {
            _ = cancel.cancelled() => return CloseReason::Api,
            r = attempt => match r {
                Ok(Ok(conn)) => {
                    tracing::info!(stream = %w.entry.id, %peer, "connected to camera (tcp active)");
                    backoff = Duration::from_millis(200);
                    match read_tcp(&mut w, conn, peer, &on_started, None).await {
                        CloseReason::PeerClosed => continue,
                        other => return other,
                    }
                }
                _ => {
                    tracing::debug!(stream = %w.entry.id, %peer, "connect failed; retrying in {backoff:?}");
                    let sleep = tokio::time::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                    tokio::select! {
                        _ = cancel.cancelled() => return CloseReason::Api,
                        _ = sleep => {}
                    }
                    if let TickOutcome::Close(_) = w.on_tick(Instant::now()) {
                        return CloseReason::ConnectFailed;
                    }
                }
            }
        }
    }
}

/// Single-port mode: one UDP socket for many cameras, each packet routed by its SSRC to the
/// stream's worker (all owned by this task, so routing costs a hash lookup and no copy).
pub async fn run_single_port(node: std::sync::Arc<crate::node::Node>, sock: UdpSocket, mut add: tokio::sync::mpsc::Receiver<Worker>) {
    let mut workers: std::collections::HashMap<u32, Worker> = std::collections::HashMap::new();
    let mut tick = tokio::time::interval(TICK);
    let mut unknown: u64 = 0;
    loop {
        tokio::select! {
            _ = node.shutdown.cancelled() => return,
            w = add.recv() => match w {
                Some(w) => {
                    if let Some(ssrc) = w.entry.ssrc {
                        workers.insert(ssrc, w);
                    }
                }
                None => return,
            },
            r = sock.readable() => {
                if r.is_err() {
                    continue;
                }
                let now = Instant::now();
                let mut route = |pkt: &[u8], from: SocketAddr| {
                    let ssrc = (pkt.len() >= 12 && pkt[0] >> 6 == 2).then(|| u32::from_be_bytes([pkt[8], pkt[9], pkt[10], pkt[11]]));
                    match ssrc.and_then(|s| workers.get_mut(&s)) {
                        Some(w) => w.on_packet(pkt, from, now),
                        None => {
                            unknown += 1;
                            // Powers of two: visible without flooding the log.
                            if unknown.is_power_of_two() {
                                tracing::warn!(%from, ?ssrc, count = unknown, "single port: packet for no open stream");
                            }
                        }
                    }
                };
                for _ in 0..UDP_ROUNDS * 4 {
                    match recv_batch::recv(&sock, &mut route) {
                        Ok(n) if n == recv_batch::BATCH => continue,
                        _ => break,
                    }
                }
            },
            _ = tick.tick() => {
                let now = Instant::now();
                let mut done = Vec::new();
                for (ssrc, w) in workers.iter_mut() {
                    if w.entry.cancel.is_cancelled() {
                        done.push((*ssrc, CloseReason::Api));
                        continue;
                    }
                    match w.on_tick(now) {
                        TickOutcome::Continue => {}
                        TickOutcome::Started => node.event(cluster::wire::StreamEventKind::Started, &w.entry.id, None),
                        TickOutcome::Close(r) => done.push((*ssrc, r)),
                    }
                }
                for (ssrc, reason) in done {
                    if let Some(w) = workers.remove(&ssrc) {
                        node.finish(&w.entry, reason);
                    }
                }
            }
        }
    }
}
