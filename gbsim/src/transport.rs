//! How simulated devices reach the server: a pool of UDP sockets shared by many devices
//! (messages routed to a device by its id), or one TCP connection per device framed by
//! Content-Length.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use gb::sip::lite::{LiteMessage, StartLine, StreamFramer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, UdpSocket};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub type Inbox = mpsc::Sender<LiteMessage>;

/// Device id → its inbox, for messages arriving on a shared UDP socket.
#[derive(Default)]
pub struct Routes(Mutex<HashMap<String, Inbox>>);

impl Routes {
    pub fn add(&self, device_id: &str, inbox: Inbox) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).insert(device_id.to_owned(), inbox);
    }
    fn get(&self, device_id: &str) -> Option<Inbox> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).get(device_id).cloned()
    }
}

/// Whom a message on a shared socket is for: responses by the From user (we sent the request),
/// requests by the Request-URI user.
fn route_key(m: &LiteMessage) -> Option<String> {
    let uri = match &m.start {
        StartLine::Response { .. } => m.header("From")?.to_owned(),
        StartLine::Request { uri, .. } => uri.clone(),
    };
    gb::sip::uri_user(&uri).map(str::to_owned)
}

#[derive(Clone)]
pub enum Link {
    Udp { sock: Arc<UdpSocket>, server: SocketAddr },
    Tcp { tx: mpsc::Sender<Vec<u8>> },
}

impl Link {
    pub async fn send(&self, bytes: Vec<u8>) -> std::io::Result<()> {
        match self {
            Link::Udp { sock, server } => sock.send_to(&bytes, server).await.map(|_| ()),
            Link::Tcp { tx } => tx.send(bytes).await.map_err(|_| std::io::Error::other("tcp connection closed")),
        }
    }
    pub fn reliable(&self) -> bool {
        matches!(self, Link::Tcp { .. })
    }
}

/// Binds one UDP socket for several devices and starts routing what arrives on it.
pub async fn udp_socket(bind_ip: &str, routes: Arc<Routes>, shutdown: CancellationToken) -> std::io::Result<(Arc<UdpSocket>, SocketAddr)> {
    // A large receive buffer: a socket shared by many devices gets their answers in bursts.
    let addr = SocketAddr::new(bind_ip.parse().map_err(std::io::Error::other)?, 0);
    let raw = socket2::Socket::new(socket2::Domain::for_address(addr), socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    let _ = raw.set_recv_buffer_size(4 << 20);
    raw.set_nonblocking(true)?;
    raw.bind(&addr.into())?;
    let sock = Arc::new(UdpSocket::from_std(raw.into())?);
    let local = sock.local_addr()?;
    let reader = sock.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65_536];
        loop {
            let n = tokio::select! {
                _ = shutdown.cancelled() => break,
                r = reader.recv_from(&mut buf) => match r { Ok((n, _)) => n, Err(_) => continue },
            };
            let Ok(msg) = LiteMessage::parse(&buf[..n]) else { continue };
            if let Some(inbox) = route_key(&msg).and_then(|k| routes.get(&k)) {
                let _ = inbox.try_send(msg);
            }
        }
    });
    Ok((sock, local))
}

/// Opens a device's own TCP connection; what arrives goes to `inbox`.
pub async fn tcp_link(bind_ip: &str, server: SocketAddr, inbox: Inbox, shutdown: CancellationToken) -> std::io::Result<(Link, SocketAddr)> {
    let sock = if server.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    sock.bind(SocketAddr::new(bind_ip.parse().map_err(std::io::Error::other)?, 0))?;
    let stream = sock.connect(server).await?;
    stream.set_nodelay(true)?;
    let local = stream.local_addr()?;
    let (mut rd, mut wr) = stream.into_split();
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(64);
    let stop = shutdown.clone();
    tokio::spawn(async move {
        loop {
            let bytes = tokio::select! {
                _ = stop.cancelled() => break,
                b = rx.recv() => match b { Some(b) => b, None => break },
            };
            if wr.write_all(&bytes).await.is_err() {
                break;
            }
        }
    });
    tokio::spawn(async move {
        let mut framer = StreamFramer::new(1 << 20);
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = tokio::select! {
                _ = shutdown.cancelled() => break,
                r = rd.read(&mut buf) => match r { Ok(0) | Err(_) => break, Ok(n) => n },
            };
            framer.push(&buf[..n]);
            loop {
                match framer.next_message() {
                    Ok(Some(raw)) => {
                        if let Ok(msg) = LiteMessage::parse(&raw) {
                            if inbox.send(msg).await.is_err() {
                                return;
                            }
                        }
                    }
                    Ok(None) => break,
                    Err(_) => return,
                }
            }
        }
    });
    Ok((Link::Tcp { tx }, local))
}
