//! The built-in RTMP server, for players: `rtmp://node/<any app>/<stream_id>`. Play only (the
//! node's media comes from cameras); one hub subscription per player, so a slow player lags,
//! is dropped, and never slows the stream or the others.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail};
use media::flv::TagKind;
use rml_rtmp::handshake::PeerType;
use rml_rtmp::sessions::{ServerSession, ServerSessionConfig, ServerSessionEvent, ServerSessionResult};
use rml_rtmp::time::RtmpTimestamp;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast::error::RecvError;

use crate::hub::ViewerGate;
use crate::node::Node;
use crate::stream::StreamEntry;
use kit::rtmp::{handshake, metadata_of};

pub async fn serve(node: Arc<Node>, listener: TcpListener) {
    loop {
        let accepted = tokio::select! {
            _ = node.shutdown.cancelled() => return,
            r = listener.accept() => r,
        };
        let Ok((tcp, peer)) = accepted else { continue };
        let node = node.clone();
        tokio::spawn(async move {
            if let Err(e) = session(node, tcp).await {
                tracing::debug!(%peer, "rtmp player: {e:#}");
            }
        });
    }
}

struct Conn {
    tcp: TcpStream,
    session: ServerSession,
}

impl Conn {
    async fn write(&mut self, results: Vec<ServerSessionResult>) -> anyhow::Result<Vec<ServerSessionEvent>> {
        let mut events = Vec::new();
        for r in results {
            match r {
                ServerSessionResult::OutboundResponse(p) => self.tcp.write_all(&p.bytes).await?,
                ServerSessionResult::RaisedEvent(e) => events.push(e),
                ServerSessionResult::UnhandleableMessageReceived(_) => {}
            }
        }
        Ok(events)
    }
}

fn err(e: impl std::fmt::Debug) -> anyhow::Error {
    anyhow!("rtmp: {e:?}")
}

async fn session(node: Arc<Node>, mut tcp: TcpStream) -> anyhow::Result<()> {
    tcp.set_nodelay(true)?;
    let remaining = tokio::time::timeout(Duration::from_secs(5), handshake(&mut tcp, PeerType::Server)).await??;
    let (session, initial) = ServerSession::new(ServerSessionConfig::new()).map_err(err)?;
    let mut c = Conn { tcp, session };
    c.write(initial).await?;
    let mut pending = c.session.handle_input(&remaining).map_err(err)?;
    let mut buf = vec![0u8; 8192];
    // Until a play request names a stream.
    let (entry, stream_id) = loop {
        let mut found = None;
        for ev in c.write(std::mem::take(&mut pending)).await? {
            match ev {
                ServerSessionEvent::ConnectionRequested { request_id, .. } => {
                    let r = c.session.accept_request(request_id).map_err(err)?;
                    c.write(r).await?;
                }
                ServerSessionEvent::PlayStreamRequested { request_id, stream_key, stream_id, .. } => {
                    let key = stream_key.split('?').next().unwrap_or("");
                    match node.get(key) {
                        Some(e) => {
                            let r = c.session.accept_request(request_id).map_err(err)?;
                            c.write(r).await?;
                            found = Some((e, stream_id));
                        }
                        None => {
                            let r = c.session.reject_request(request_id, "NetStream.Play.StreamNotFound", "no such stream").map_err(err)?;
                            c.write(r).await?;
                            bail!("play of unknown stream {key}");
                        }
                    }
                }
                ServerSessionEvent::PublishStreamRequested { request_id, .. } => {
                    let r = c
                        .session
                        .reject_request(request_id, "NetStream.Publish.Denied", "this node does not accept publishing")
                        .map_err(err)?;
                    c.write(r).await?;
                    bail!("publish refused");
                }
                _ => {}
            }
        }
        if let Some(f) = found {
            break f;
        }
        let n = tokio::time::timeout(Duration::from_secs(30), c.tcp.read(&mut buf)).await??;
        if n == 0 {
            return Ok(());
        }
        pending = c.session.handle_input(&buf[..n]).map_err(err)?;
    };
    play(&mut c, &entry, stream_id, &mut buf).await
}

async fn play(c: &mut Conn, entry: &StreamEntry, stream_id: u32, buf: &mut [u8]) -> anyhow::Result<()> {
    let mut sub = entry.hub.subscribe_when_ready().await;
    let mut gate = ViewerGate::new(&sub);
    for tag in std::mem::take(&mut sub.start) {
        send(c, stream_id, &tag).await?;
    }
    loop {
        tokio::select! {
            _ = entry.cancel.cancelled() => {
                if let Ok(p) = c.session.finish_playing(stream_id) {
                    let _ = c.tcp.write_all(&p.bytes).await;
                }
                return Ok(());
            }
            r = sub.rx.recv() => match r {
                Ok(tag) => if gate.pass(&tag) {
                    tokio::select! {
                        // The write first: the lag watch (a timer) is armed only if it blocks.
                        biased;
                        r = send(c, stream_id, &tag) => r?,
                        _ = entry.hub.lagging(&sub.rx) => bail!("player stalled a whole queue behind: dropped"),
                    }
                },
                Err(RecvError::Lagged(n)) => bail!("player {n} tags behind: dropped"),
                Err(RecvError::Closed) => return Ok(()),
            },
            r = c.tcp.read(buf) => {
                let n = r?;
                if n == 0 {
                    return Ok(());
                }
                let results = c.session.handle_input(&buf[..n]).map_err(err)?;
                c.write(results).await?;
            }
        }
    }
}

async fn send(c: &mut Conn, stream_id: u32, tag: &media::flv::FlvTag) -> anyhow::Result<()> {
    let ts = RtmpTimestamp::new(tag.timestamp);
    let packet = match tag.kind {
        TagKind::Script => c.session.send_metadata(stream_id, &metadata_of(tag)).map_err(err)?,
        TagKind::Video => c.session.send_video_data(stream_id, tag.body(), ts, false).map_err(err)?,
        TagKind::Audio => c.session.send_audio_data(stream_id, tag.body(), ts, false).map_err(err)?,
    };
    c.tcp.write_all(&packet.bytes).await?;
    Ok(())
}
