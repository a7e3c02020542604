//! GB28181 SDP: the INVITE offer we send (`s=Play`, `y=` SSRC, `a=setup` for TCP) and the
//! camera's answer we read. Tolerant of what cameras write (any line order, `\n` endings,
//! unknown lines), bounded in what it keeps.

use std::fmt::Write as _;

/// How the camera sends RTP, named from the media node's side as in the GB SDP offer. The one
/// transport type of the play path: the API, the sip-server, the receiver API and the SDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MediaTransport {
    Udp,
    /// TCP, the media node listens and the camera connects (`a=setup:passive` in our offer).
    TcpPassive,
    /// TCP, the media node connects to the camera (`a=setup:active` in our offer).
    TcpActive,
}

impl MediaTransport {
    pub fn as_str(self) -> &'static str {
        match self {
            MediaTransport::Udp => "udp",
            MediaTransport::TcpPassive => "tcp-passive",
            MediaTransport::TcpActive => "tcp-active",
        }
    }

    /// As an operator writes it: the serde names, and `tcp` for TCP passive.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "udp" => Some(MediaTransport::Udp),
            "tcp-passive" | "tcp" => Some(MediaTransport::TcpPassive),
            "tcp-active" => Some(MediaTransport::TcpActive),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Session {
    #[default]
    Play,
    Playback,
    Download,
    Talk,
    Other(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct GbSdp {
    /// `o=` username (the sender's GB id).
    pub origin: String,
    pub session: Session,
    /// `u=` (playback: `<channel>:0`).
    pub uri: Option<String>,
    /// `c=IN IP4 <ip>`.
    pub ip: String,
    /// `t=<start> <end>`.
    pub time: (u64, u64),
    pub media_port: u16,
    pub transport: MediaTransport,
    /// `a=rtpmap` entries: payload type and encoding name (`PS`, `H264`, …).
    pub rtpmap: Vec<(u8, String)>,
    /// `sendonly`, `recvonly`, `sendrecv`.
    pub direction: Option<String>,
    /// `y=` SSRC, 10 digits.
    pub ssrc: Option<String>,
    /// `f=` media description.
    pub f: Option<String>,
    pub download_speed: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    #[error("missing {0}")]
    Missing(&'static str),
    #[error("bad {0} line")]
    Bad(&'static str),
    #[error("sdp larger than {0} bytes")]
    TooLarge(usize),
}

pub const MAX_SDP: usize = 16 * 1024;

impl GbSdp {
    pub fn parse(text: &str) -> Result<Self, SdpError> {
        if text.len() > MAX_SDP {
            return Err(SdpError::TooLarge(MAX_SDP));
        }
        let mut origin = None;
        let mut session = None;
        let mut uri = None;
        let mut ip = None;
        let mut time = (0, 0);
        let mut media: Option<(u16, bool)> = None;
        let mut setup = None;
        let mut rtpmap = Vec::new();
        let mut direction = None;
        let mut ssrc = None;
        let mut f = None;
        let mut download_speed = None;
        for line in text.lines().map(str::trim).filter(|l| l.len() >= 2) {
            // `get` rather than `split_at`: a multi-byte character at offset 1 must not panic.
            let (Some(k), Some(v)) = (line.get(..2), line.get(2..)) else { continue };
            if !k.ends_with('=') {
                continue;
            }
            match &k[..1] {
                "o" => origin = v.split_whitespace().next().map(str::to_owned),
                "s" => {
                    session = Some(match v.trim() {
                        s if s.eq_ignore_ascii_case("Play") => Session::Play,
                        s if s.eq_ignore_ascii_case("Playback") => Session::Playback,
                        s if s.eq_ignore_ascii_case("Download") => Session::Download,
                        s if s.eq_ignore_ascii_case("Talk") => Session::Talk,
                        s => Session::Other(s.chars().take(64).collect()),
                    })
                }
                "u" => uri = Some(v.trim().chars().take(256).collect()),
                // A media-level c= (after m=) overrides; last one wins either way.
                "c" => ip = v.split_whitespace().nth(2).map(str::to_owned),
                "t" => {
                    let mut it = v.split_whitespace().map(|n| n.parse::<u64>().unwrap_or(0));
                    time = (it.next().unwrap_or(0), it.next().unwrap_or(0));
                }
                "m" if media.is_none() => {
                    let parts: Vec<&str> = v.split_whitespace().take(3).collect();
                    let [_kind, port, proto] = parts[..] else { return Err(SdpError::Bad("m=")) };
                    let port: u16 = port.parse().map_err(|_| SdpError::Bad("m= port"))?;
                    media = Some((port, proto.to_ascii_uppercase().contains("TCP")));
                }
                "a" => {
                    let (name, val) = v.split_once(':').unwrap_or((v, ""));
                    match name.trim().to_ascii_lowercase().as_str() {
                        "rtpmap" if rtpmap.len() < 32 => {
                            let mut it = val.split_whitespace();
                            if let (Some(pt), Some(enc)) = (it.next().and_then(|p| p.parse().ok()), it.next()) {
                                let name = enc.split('/').next().unwrap_or(enc).chars().take(32).collect();
                                rtpmap.push((pt, name));
                            }
                        }
                        "setup" => setup = Some(val.trim().to_ascii_lowercase()),
                        "sendonly" | "recvonly" | "sendrecv" | "inactive" => direction = Some(name.trim().to_ascii_lowercase()),
                        "downloadspeed" => download_speed = val.trim().parse().ok(),
                        _ => {}
                    }
                }
                "y" => ssrc = Some(v.trim().chars().take(16).collect()),
                "f" => f = Some(v.trim().chars().take(128).collect()),
                _ => {}
            }
        }
        let (media_port, tcp) = media.ok_or(SdpError::Missing("m="))?;
        let transport = match (tcp, setup.as_deref()) {
            (false, _) => MediaTransport::Udp,
            (true, Some("active")) => MediaTransport::TcpActive,
            (true, _) => MediaTransport::TcpPassive,
        };
        Ok(Self {
            origin: origin.unwrap_or_default(),
            session: session.unwrap_or_default(),
            uri,
            ip: ip.ok_or(SdpError::Missing("c="))?,
            time,
            media_port,
            transport,
            rtpmap,
            direction,
            ssrc,
            f,
            download_speed,
        })
    }

    /// The SDP text; `setup` for TCP is written from `transport` from the writer's point of view.
    pub fn to_text(&self) -> String {
        let session = match &self.session {
            Session::Play => "Play",
            Session::Playback => "Playback",
            Session::Download => "Download",
            Session::Talk => "Talk",
            Session::Other(s) => s,
        };
        let mut s = format!("v=0\r\no={} 0 0 IN IP4 {}\r\ns={session}\r\n", self.origin, self.ip);
        if let Some(u) = &self.uri {
            let _ = write!(s, "u={u}\r\n");
        }
        let _ = write!(s, "c=IN IP4 {}\r\nt={} {}\r\n", self.ip, self.time.0, self.time.1);
        let proto = if self.transport == MediaTransport::Udp { "RTP/AVP" } else { "TCP/RTP/AVP" };
        let pts: Vec<String> = self.rtpmap.iter().map(|(pt, _)| pt.to_string()).collect();
        let _ = write!(s, "m=video {} {proto} {}\r\n", self.media_port, pts.join(" "));
        if let Some(d) = &self.direction {
            let _ = write!(s, "a={d}\r\n");
        }
        for (pt, name) in &self.rtpmap {
            let _ = write!(s, "a=rtpmap:{pt} {name}/90000\r\n");
        }
        match self.transport {
            MediaTransport::Udp => {}
            MediaTransport::TcpPassive => s.push_str("a=setup:passive\r\na=connection:new\r\n"),
            MediaTransport::TcpActive => s.push_str("a=setup:active\r\na=connection:new\r\n"),
        }
        if let Some(speed) = self.download_speed {
            let _ = write!(s, "a=downloadspeed:{speed}\r\n");
        }
        if let Some(y) = &self.ssrc {
            let _ = write!(s, "y={y}\r\n");
        }
        if let Some(f) = &self.f {
            let _ = write!(s, "f={f}\r\n");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A Hikvision IPC's answer to a TCP passive INVITE.
    const HIK_ANSWER: &str = "v=0\r\no=34020000001320000001 2225 2225 IN IP4 192.168.1.64\r\ns=Play\r\nc=IN IP4 192.168.1.64\r\n\
        t=0 0\r\nm=video 15060 TCP/RTP/AVP 96\r\na=setup:active\r\na=sendonly\r\na=rtpmap:96 PS/90000\r\na=filesize:0\r\n\
        a=connection:new\r\ny=0340200001\r\nf=\r\n";

    #[test]
    fn reads_a_camera_answer() {
        let s = GbSdp::parse(HIK_ANSWER).unwrap();
        assert_eq!(s.origin, "34020000001320000001");
        assert_eq!(s.ip, "192.168.1.64");
        assert_eq!(s.media_port, 15060);
        assert_eq!(s.transport, MediaTransport::TcpActive);
        assert_eq!(s.rtpmap, vec![(96, "PS".to_string())]);
        assert_eq!(s.direction.as_deref(), Some("sendonly"));
        assert_eq!(s.ssrc.as_deref(), Some("0340200001"));
    }

    #[test]
    fn offer_round_trips() {
        let offer = GbSdp {
            origin: "34020000002000000001".into(),
            session: Session::Playback,
            uri: Some("34020000001310000001:0".into()),
            ip: "203.0.113.5".into(),
            time: (1_700_000_000, 1_700_003_600),
            media_port: 30000,
            transport: MediaTransport::TcpPassive,
            rtpmap: vec![(96, "PS".into()), (98, "H264".into()), (97, "MPEG4".into())],
            direction: Some("recvonly".into()),
            ssrc: Some("1340200002".into()),
            f: None,
            download_speed: None,
        };
        let text = offer.to_text();
        assert!(text.contains("m=video 30000 TCP/RTP/AVP 96 98 97\r\n"));
        assert!(text.contains("a=setup:passive\r\n"));
        assert_eq!(GbSdp::parse(&text).unwrap(), offer);
    }

    #[test]
    fn sloppy_and_hostile_input() {
        assert!(GbSdp::parse("v=0\nc=IN IP4 1.2.3.4\nm=video 9 RTP/AVP 96\n").is_ok());
        assert_eq!(GbSdp::parse("v=0\r\n"), Err(SdpError::Missing("m=")));
        assert!(GbSdp::parse("m=video x RTP/AVP\r\nc=IN IP4 1.1.1.1").is_err());
        assert!(GbSdp::parse(&"a=rtpmap:96 PS/90000\r\n".repeat(1000)).is_err());
        assert!(GbSdp::parse("m大=video 9 RTP/AVP\r\n大\r\n").is_err());
    }
}
