//! RTMP publish of a stream to the configured target (`rtmp_push_url`), through `rml_rtmp`'s
//! sans-I/O client session. The pusher is one more subscriber of the stream's hub; if the target
//! drops or falls behind, it reconnects with backoff and starts again on a key frame.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use common::flv::{FlvTag, TagKind};
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::sessions::{ClientSession, ClientSessionConfig, ClientSessionEvent, ClientSessionResult, PublishRequestType, StreamMetadata};
use rml_rtmp::time::RtmpTimestamp;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::broadcast::error::RecvError;

use crate::hub::ViewerGate;
use crate::node::Node;
use crate::stream::StreamEntry;

/// `rtmp://host[:port]/app[/more]/key` → (host:port, app, key).
pub fn parse_rtmp_url(url: &str) -> anyhow::Result<(String, String, String)> {
    let rest = url.strip_prefix("rtmp://").ok_or_else(|| anyhow!("not an rtmp:// URL: {url}"))?;
    let (host, path) = rest.split_once('/').ok_or_else(|| anyhow!("RTMP URL needs /app/key: {url}"))?;
    let (app, key) = path.rsplit_once('/').ok_or_else(|| anyhow!("RTMP URL needs /app/key: {url}"))?;
    if app.is_empty() || key.is_empty() {
        bail!("RTMP URL needs /app/key: {url}");
    }
    let host = if host.contains(':') { host.to_owned() } else { format!("{host}:1935") };
    Ok((host, app.to_owned(), key.to_owned()))
}

pub fn spawn(node: &Arc<Node>, entry: &Arc<StreamEntry>) {
    let template = node.cfg.rtmp_push_url.trim();
    if template.is_empty() {
        return;
    }
    let url = template.replace("{stream_id}", &entry.id);
    let entry = entry.clone();
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(500);
        entry.pushers.fetch_add(1, Ordering::Relaxed);
        loop {
            let started = std::time::Instant::now();
            let r = tokio::select! {
                _ = entry.cancel.cancelled() => break,
                r = publish(&url, &entry) => r,
            };
            entry.pushing.store(false, Ordering::Relaxed);
            if let Err(e) = r {
                tracing::warn!(stream = %entry.id, %url, "RTMP push: {e:#}; retrying in {backoff:?}");
            }
            if started.elapsed() > Duration::from_secs(10) {
                backoff = Duration::from_millis(500);
            }
            tokio::select! {
                _ = entry.cancel.cancelled() => break,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(30));
        }
        entry.pushers.fetch_sub(1, Ordering::Relaxed);
    });
}

struct Conn {
    tcp: TcpStream,
    session: ClientSession,
    buf: Vec<u8>,
}

impl Conn {
    async fn send(&mut self, results: Vec<ClientSessionResult>) -> anyhow::Result<Vec<ClientSessionEvent>> {
        let mut events = Vec::new();
        for r in results {
            match r {
                ClientSessionResult::OutboundResponse(p) => self.tcp.write_all(&p.bytes).await?,
                ClientSessionResult::RaisedEvent(e) => events.push(e),
                ClientSessionResult::UnhandleableMessageReceived(_) => {}
            }
        }
        Ok(events)
    }

    async fn wait_for(&mut self, want: fn(&ClientSessionEvent) -> bool) -> anyhow::Result<()> {
        loop {
            let n = self.tcp.read(&mut self.buf).await?;
            if n == 0 {
                bail!("target closed the connection");
            }
            let results = self.session.handle_input(&self.buf[..n]).map_err(|e| anyhow!("rtmp: {e:?}"))?;
            for e in self.send(results).await? {
                if let ClientSessionEvent::ConnectionRequestRejected { description } = &e {
                    bail!("connect rejected: {description}");
                }
                if want(&e) {
                    return Ok(());
                }
            }
        }
    }
}

pub async fn handshake(tcp: &mut TcpStream, peer: PeerType) -> anyhow::Result<Vec<u8>> {
    let mut hs = Handshake::new(peer);
    tcp.write_all(&hs.generate_outbound_p0_and_p1().map_err(|e| anyhow!("{e:?}"))?).await?;
    let mut buf = vec![0u8; 8192];
    loop {
        let n = tcp.read(&mut buf).await?;
        if n == 0 {
            bail!("closed during handshake");
        }
        match hs.process_bytes(&buf[..n]).map_err(|e| anyhow!("handshake: {e:?}"))? {
            HandshakeProcessResult::InProgress { response_bytes } => tcp.write_all(&response_bytes).await?,
            HandshakeProcessResult::Completed { response_bytes, remaining_bytes } => {
                tcp.write_all(&response_bytes).await?;
                return Ok(remaining_bytes);
            }
        }
    }
}

/// rml_rtmp sends metadata from its own struct: fill it from the stream's `onMetaData` tag.
pub(crate) fn metadata_of(tag: &FlvTag) -> StreamMetadata {
    let mut m = StreamMetadata::new();
    for (k, v) in common::flv::amf0::read_numbers(&tag.body()) {
        match k.as_str() {
            "width" => m.video_width = Some(v as u32),
            "height" => m.video_height = Some(v as u32),
            "framerate" => m.video_frame_rate = Some(v as f32),
            "videocodecid" => m.video_codec_id = Some(v as u32),
            "audiocodecid" => m.audio_codec_id = Some(v as u32),
            "audiosamplerate" => m.audio_sample_rate = Some(v as u32),
            "audiochannels" => m.audio_channels = Some(v as u32),
            _ => {}
        }
    }
    m.encoder = Some("gbcluster".into());
    m
}

async fn publish(url: &str, entry: &StreamEntry) -> anyhow::Result<()> {
    let (host, app, key) = parse_rtmp_url(url)?;
    let mut tcp = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(&host)).await.context("connect timeout")??;
    tcp.set_nodelay(true)?;
    let remaining =
        tokio::time::timeout(Duration::from_secs(5), handshake(&mut tcp, PeerType::Client)).await.context("handshake timeout")??;
    let mut cfg = ClientSessionConfig::new();
    cfg.tc_url = Some(format!("rtmp://{host}/{app}"));
    let (session, initial) = ClientSession::new(cfg).map_err(|e| anyhow!("{e:?}"))?;
    let mut c = Conn { tcp, session, buf: vec![0u8; 16 * 1024] };
    c.send(initial).await?;
    let r = c.session.handle_input(&remaining).map_err(|e| anyhow!("{e:?}"))?;
    c.send(r).await?;
    let r = c.session.request_connection(app).map_err(|e| anyhow!("{e:?}"))?;
    c.send(vec![r]).await?;
    let setup = async {
        c.wait_for(|e| matches!(e, ClientSessionEvent::ConnectionRequestAccepted)).await?;
        let r = c.session.request_publishing(key, PublishRequestType::Live).map_err(|e| anyhow!("{e:?}"))?;
        c.send(vec![r]).await?;
        c.wait_for(|e| matches!(e, ClientSessionEvent::PublishRequestAccepted)).await
    };
    tokio::time::timeout(Duration::from_secs(10), setup).await.context("publish setup timeout")??;
    tracing::info!(stream = %entry.id, %url, "RTMP push publishing");
    entry.pushing.store(true, Ordering::Relaxed);

    let mut sub = entry.hub.subscribe();
    let mut gate = ViewerGate::new(&sub);
    let start = std::mem::take(&mut sub.start);
    for tag in start {
        send_tag(&mut c, &tag).await?;
    }
    loop {
        tokio::select! {
            r = sub.rx.recv() => match r {
                Ok(tag) => if gate.pass(&tag) {
                    tokio::select! {
                        // The write first: the lag watch (a timer) is armed only if it blocks.
                        biased;
                        r = send_tag(&mut c, &tag) => r?,
                        _ = entry.hub.lagging(&sub.rx) => bail!("target stalled a whole queue behind"),
                    }
                },
                Err(RecvError::Lagged(n)) => bail!("target too slow: {n} tags behind"),
                Err(RecvError::Closed) => return Ok(()),
            },
            r = c.tcp.read(&mut c.buf) => {
                let n = r?;
                if n == 0 {
                    bail!("target closed the connection");
                }
                let results = c.session.handle_input(&c.buf[..n]).map_err(|e| anyhow!("{e:?}"))?;
                c.send(results).await?;
            }
        }
    }
}

async fn send_tag(c: &mut Conn, tag: &FlvTag) -> anyhow::Result<()> {
    let ts = RtmpTimestamp::new(tag.timestamp);
    let r = match tag.kind {
        TagKind::Script => c.session.publish_metadata(&metadata_of(tag)),
        TagKind::Video => c.session.publish_video_data(tag.body(), ts, false),
        TagKind::Audio => c.session.publish_audio_data(tag.body(), ts, false),
    }
    .map_err(|e| anyhow!("{e:?}"))?;
    c.send(vec![r]).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn rtmp_urls() {
        assert_eq!(super::parse_rtmp_url("rtmp://h/live/s1").unwrap(), ("h:1935".into(), "live".into(), "s1".into()));
        assert_eq!(super::parse_rtmp_url("rtmp://h:1936/a/b/c").unwrap(), ("h:1936".into(), "a/b".into(), "c".into()));
        assert!(super::parse_rtmp_url("http://h/a/b").is_err());
        assert!(super::parse_rtmp_url("rtmp://h/a").is_err());
    }
}
