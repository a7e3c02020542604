//! RTMP publishing of FLV tags, shared by every service that pushes (the stream-server's
//! `rtmp_push_url`, the NVR pusher): URL parsing, the handshake, and a publisher over
//! `rml_rtmp`'s sans-I/O client session. Tags go out as built by `flv` (the body is a zero-copy
//! slice of the tag).

use std::time::Duration;

use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::sessions::{ClientSession, ClientSessionConfig, ClientSessionEvent, ClientSessionResult, PublishRequestType, StreamMetadata};
use rml_rtmp::time::RtmpTimestamp;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use media::flv::{FlvTag, TagKind};

#[derive(Debug, thiserror::Error)]
pub enum RtmpError {
    #[error("bad RTMP URL {0:?} (want rtmp://host[:port]/app/key)")]
    BadUrl(String),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("rtmp: {0}")]
    Protocol(String),
    #[error("the target refused: {0}")]
    Rejected(String),
    #[error("timed out during {0}")]
    Timeout(&'static str),
    #[error("the target closed the connection")]
    Closed,
}

fn proto(e: impl std::fmt::Debug) -> RtmpError {
    RtmpError::Protocol(format!("{e:?}"))
}

/// `rtmp://host[:port]/app[/more]/key` → (host:port, app, key).
pub fn parse_rtmp_url(url: &str) -> Result<(String, String, String), RtmpError> {
    let bad = || RtmpError::BadUrl(url.to_owned());
    let rest = url.strip_prefix("rtmp://").ok_or_else(bad)?;
    let (host, path) = rest.split_once('/').ok_or_else(bad)?;
    let (app, key) = path.rsplit_once('/').ok_or_else(bad)?;
    if host.is_empty() || app.is_empty() || key.is_empty() {
        return Err(bad());
    }
    let host = if host.contains(':') { host.to_owned() } else { format!("{host}:1935") };
    Ok((host, app.to_owned(), key.to_owned()))
}

/// The RTMP handshake as `peer`; returns bytes that arrived after it.
pub async fn handshake(tcp: &mut TcpStream, peer: PeerType) -> Result<Vec<u8>, RtmpError> {
    let mut hs = Handshake::new(peer);
    tcp.write_all(&hs.generate_outbound_p0_and_p1().map_err(proto)?).await?;
    let mut buf = vec![0u8; 8192];
    loop {
        let n = tcp.read(&mut buf).await?;
        if n == 0 {
            return Err(RtmpError::Closed);
        }
        match hs.process_bytes(&buf[..n]).map_err(proto)? {
            HandshakeProcessResult::InProgress { response_bytes } => tcp.write_all(&response_bytes).await?,
            HandshakeProcessResult::Completed { response_bytes, remaining_bytes } => {
                tcp.write_all(&response_bytes).await?;
                return Ok(remaining_bytes);
            }
        }
    }
}

/// rml_rtmp sends metadata from its own struct: filled from a stream's `onMetaData` tag.
pub fn metadata_of(tag: &FlvTag) -> StreamMetadata {
    let mut m = StreamMetadata::new();
    for (k, v) in media::flv::amf0::read_numbers(&tag.body()) {
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

/// A connection publishing one stream.
pub struct RtmpPublisher {
    tcp: TcpStream,
    session: ClientSession,
    buf: Vec<u8>,
}

impl RtmpPublisher {
    /// Connects, handshakes and gets `publish` accepted, each step bounded by `timeout`.
    pub async fn connect(url: &str, timeout: Duration) -> Result<Self, RtmpError> {
        let (host, app, key) = parse_rtmp_url(url)?;
        let mut tcp = tokio::time::timeout(timeout, TcpStream::connect(&host)).await.map_err(|_| RtmpError::Timeout("connect"))??;
        tcp.set_nodelay(true)?;
        let remaining =
            tokio::time::timeout(timeout, handshake(&mut tcp, PeerType::Client)).await.map_err(|_| RtmpError::Timeout("handshake"))??;
        let mut cfg = ClientSessionConfig::new();
        cfg.tc_url = Some(format!("rtmp://{host}/{app}"));
        let (session, initial) = ClientSession::new(cfg).map_err(proto)?;
        let mut p = Self { tcp, session, buf: vec![0u8; 16 * 1024] };
        p.send(initial).await?;
        let r = p.session.handle_input(&remaining).map_err(proto)?;
        p.send(r).await?;
        let r = p.session.request_connection(app).map_err(proto)?;
        p.send(vec![r]).await?;
        let setup = async {
            p.wait_for(|e| matches!(e, ClientSessionEvent::ConnectionRequestAccepted)).await?;
            let r = p.session.request_publishing(key, PublishRequestType::Live).map_err(proto)?;
            p.send(vec![r]).await?;
            p.wait_for(|e| matches!(e, ClientSessionEvent::PublishRequestAccepted)).await
        };
        tokio::time::timeout(timeout * 2, setup).await.map_err(|_| RtmpError::Timeout("publish setup"))??;
        Ok(p)
    }

    async fn send(&mut self, results: Vec<ClientSessionResult>) -> Result<Vec<ClientSessionEvent>, RtmpError> {
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

    async fn wait_for(&mut self, want: fn(&ClientSessionEvent) -> bool) -> Result<(), RtmpError> {
        loop {
            let n = self.tcp.read(&mut self.buf).await?;
            if n == 0 {
                return Err(RtmpError::Closed);
            }
            let results = self.session.handle_input(&self.buf[..n]).map_err(proto)?;
            for e in self.send(results).await? {
                if let ClientSessionEvent::ConnectionRequestRejected { description } = &e {
                    return Err(RtmpError::Rejected(description.clone()));
                }
                if want(&e) {
                    return Ok(());
                }
            }
        }
    }

    /// Sends one tag (metadata, video or audio).
    pub async fn send_tag(&mut self, tag: &FlvTag) -> Result<(), RtmpError> {
        let ts = RtmpTimestamp::new(tag.timestamp);
        let r = match tag.kind {
            TagKind::Script => self.session.publish_metadata(&metadata_of(tag)),
            TagKind::Video => self.session.publish_video_data(tag.body(), ts, false),
            TagKind::Audio => self.session.publish_audio_data(tag.body(), ts, false),
        }
        .map_err(proto)?;
        // One result per tag: written directly, no Vec per tag (this runs per frame).
        if let ClientSessionResult::OutboundResponse(p) = r {
            self.tcp.write_all(&p.bytes).await?;
        }
        Ok(())
    }

    /// Reads and handles what the target sends (acknowledgements, pings). Cancel-safe: use it
    /// in a `select!` beside the tag source; an error means the connection is gone.
    pub async fn service(&mut self) -> Result<(), RtmpError> {
        let n = self.tcp.read(&mut self.buf).await?;
        if n == 0 {
            return Err(RtmpError::Closed);
        }
        let results = self.session.handle_input(&self.buf[..n]).map_err(proto)?;
        self.send(results).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn rtmp_urls() {
        assert_eq!(super::parse_rtmp_url("rtmp://h/live/s1").unwrap(), ("h:1935".into(), "live".into(), "s1".into()));
        assert_eq!(super::parse_rtmp_url("rtmp://h:1936/a/b/c").unwrap(), ("h:1936".into(), "a/b".into(), "c".into()));
        assert!(super::parse_rtmp_url("http://h/a/b").is_err());
        assert!(super::parse_rtmp_url("rtmp://h/a").is_err());
        assert!(super::parse_rtmp_url("rtmp:///a/b").is_err());
    }
}
