//! ONVIF (any brand): the live RTSP URI through the media service (`GetCapabilities` →
//! `GetProfiles` → `GetStreamUri`) and PTZ through the PTZ service (`ContinuousMove` for the
//! duration, then `Stop`). SOAP 1.2 with a WS-Security UsernameToken (password digest), over
//! [`VendorHttp`] so a device that also wants HTTP digest gets it.
//!
//! Envelopes and the answer readers are sans-I/O. The service addresses a device reports
//! (`XAddr`) often carry its private address: only their path is used, against the address
//! and port the request named.
//!
//! Playback (`GetReplayUri`) is not offered: replaying from a point in time needs `PLAY` with
//! `Range: clock=…` and `Require: onvif-replay`, and the RTSP client (retina 0.4) always sends
//! `Range: npt=0.000-`.

use base64::Engine as _;
use gb::xml::{self, Element};

use crate::vendor::Ptz;
use crate::vendor_http::{VendorError, VendorHttp};

const DEVICE_SERVICE: &str = "/onvif/device_service";
const SOAP: &str = "application/soap+xml; charset=utf-8";

/// `Base64(SHA-1(nonce + created + password))`: the UsernameToken's PasswordDigest.
pub fn password_digest(nonce: &[u8], created: &str, password: &str) -> String {
    let mut h = sha1_smol::Sha1::new();
    h.update(nonce);
    h.update(created.as_bytes());
    h.update(password.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(h.digest().bytes())
}

/// `YYYY-MM-DDThh:mm:ssZ` now (UTC), the UsernameToken's `Created`.
fn created_now() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    crate::vendor::LocalTime::from_secs(secs).map(|t| t.isapi()).unwrap_or_default()
}

/// A SOAP 1.2 envelope with a WS-Security UsernameToken around `body`.
pub fn envelope(user: &str, password: &str, nonce: &[u8], created: &str, body: &str) -> String {
    let digest = password_digest(nonce, created, password);
    let nonce = base64::engine::general_purpose::STANDARD.encode(nonce);
    let user = xml_escape(user);
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
         <s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\" xmlns:tt=\"http://www.onvif.org/ver10/schema\">\
         <s:Header><Security s:mustUnderstand=\"1\" xmlns=\"http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd\">\
         <UsernameToken><Username>{user}</Username>\
         <Password Type=\"http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest\">{digest}</Password>\
         <Nonce EncodingType=\"http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary\">{nonce}</Nonce>\
         <Created xmlns=\"http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd\">{created}</Created>\
         </UsernameToken></Security></s:Header><s:Body>{body}</s:Body></s:Envelope>"
    )
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

pub const GET_CAPABILITIES: &str =
    "<tds:GetCapabilities xmlns:tds=\"http://www.onvif.org/ver10/device/wsdl\"><tds:Category>All</tds:Category></tds:GetCapabilities>";
pub const GET_PROFILES: &str = "<trt:GetProfiles xmlns:trt=\"http://www.onvif.org/ver10/media/wsdl\"/>";

pub fn get_stream_uri(profile: &str) -> String {
    format!(
        "<trt:GetStreamUri xmlns:trt=\"http://www.onvif.org/ver10/media/wsdl\"><trt:StreamSetup>\
         <tt:Stream>RTP-Unicast</tt:Stream><tt:Transport><tt:Protocol>RTSP</tt:Protocol></tt:Transport>\
         </trt:StreamSetup><trt:ProfileToken>{}</trt:ProfileToken></trt:GetStreamUri>",
        xml_escape(profile)
    )
}

/// `ContinuousMove` at `speed` (0–1) in the command's direction; `None` for focus and iris,
/// which ONVIF moves through the imaging service, not PTZ.
pub fn continuous_move(profile: &str, cmd: Ptz, speed: f32) -> Option<String> {
    let (x, y, z) = cmd.hikvision_move(100)?;
    let v = |n: i32| format!("{:.2}", n as f32 / 100.0 * speed.clamp(0.01, 1.0));
    Some(format!(
        "<tptz:ContinuousMove xmlns:tptz=\"http://www.onvif.org/ver20/ptz/wsdl\"><tptz:ProfileToken>{}</tptz:ProfileToken>\
         <tptz:Velocity><tt:PanTilt x=\"{}\" y=\"{}\"/><tt:Zoom x=\"{}\"/></tptz:Velocity></tptz:ContinuousMove>",
        xml_escape(profile),
        v(x),
        v(y),
        v(z)
    ))
}

pub fn stop(profile: &str) -> String {
    format!(
        "<tptz:Stop xmlns:tptz=\"http://www.onvif.org/ver20/ptz/wsdl\"><tptz:ProfileToken>{}</tptz:ProfileToken>\
         <tptz:PanTilt>true</tptz:PanTilt><tptz:Zoom>true</tptz:Zoom></tptz:Stop>",
        xml_escape(profile)
    )
}

/// The first element called `name` below `el`, depth first.
fn find<'a>(el: &'a Element, name: &str) -> Option<&'a Element> {
    el.children.iter().find_map(|c| if c.name == name { Some(c) } else { find(c, name) })
}

fn find_all<'a>(el: &'a Element, name: &str, out: &mut Vec<&'a Element>) {
    for c in &el.children {
        if c.name == name {
            out.push(c);
        } else {
            find_all(c, name, out);
        }
    }
}

fn soap_body(xml: &str, what: &str) -> Result<Element, String> {
    let root = xml::parse(xml).map_err(|e| format!("{what}: {e}"))?;
    if let Some(fault) = find(&root, "fault") {
        let reason = find(fault, "text").map(|t| t.text.trim().to_owned()).unwrap_or_default();
        return Err(format!("{what}: SOAP fault {reason}"));
    }
    Ok(root)
}

/// The path part of an `XAddr` (`http://10.0.0.5/onvif/Media` → `/onvif/Media`).
fn path_of(xaddr: &str) -> Option<String> {
    let rest = xaddr.trim().split_once("://")?.1;
    Some(rest.find('/').map(|i| rest[i..].to_owned()).unwrap_or_else(|| "/".into()))
}

/// The media and PTZ service paths from `GetCapabilitiesResponse`.
pub fn parse_capabilities(xml: &str) -> Result<(String, Option<String>), String> {
    let root = soap_body(xml, "GetCapabilities")?;
    let caps = find(&root, "capabilities").ok_or("GetCapabilities: no Capabilities")?;
    let media = find(caps, "media").and_then(|m| m.text_of("xaddr")).and_then(path_of).ok_or("GetCapabilities: no media service")?;
    let ptz = find(caps, "ptz").and_then(|m| m.text_of("xaddr")).and_then(path_of);
    Ok((media, ptz))
}

/// The profile tokens from `GetProfilesResponse`, in the device's order (main stream first).
pub fn parse_profiles(xml: &str) -> Result<Vec<String>, String> {
    let root = soap_body(xml, "GetProfiles")?;
    let mut profiles = Vec::new();
    find_all(&root, "profiles", &mut profiles);
    let tokens: Vec<String> = profiles.iter().filter_map(|p| p.attr("token")).map(str::to_owned).take(64).collect();
    if tokens.is_empty() {
        return Err("GetProfiles: no profile".into());
    }
    Ok(tokens)
}

pub fn parse_stream_uri(xml: &str) -> Result<String, String> {
    let root = soap_body(xml, "GetStreamUri")?;
    let uri = find(&root, "mediauri").and_then(|m| m.text_of("uri")).ok_or("GetStreamUri: no Uri")?;
    if !uri.starts_with("rtsp://") {
        return Err(format!("GetStreamUri: not an RTSP URI: {uri:?}"));
    }
    Ok(uri.to_owned())
}

/// The device's URI with its host replaced by the address we reach it at (devices report
/// their own, often private, address) and, if given, the port.
pub fn reachable_uri(uri: &str, host: &str, port: Option<u16>) -> String {
    let Some(rest) = uri.strip_prefix("rtsp://") else { return uri.to_owned() };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    // Credentials in the URI are dropped: retina authenticates with the request's.
    let hostport = authority.rsplit_once('@').map(|(_, h)| h).unwrap_or(authority);
    let old_port = if hostport.starts_with('[') {
        hostport.rsplit_once("]:").and_then(|(_, p)| p.parse().ok())
    } else {
        hostport.rsplit_once(':').and_then(|(_, p)| p.parse().ok())
    };
    let host = if host.contains(':') && !host.starts_with('[') { format!("[{host}]") } else { host.to_owned() };
    match port.or(old_port) {
        Some(p) => format!("rtsp://{host}:{p}{path}"),
        None => format!("rtsp://{host}{path}"),
    }
}

/// One device: its SOAP calls.
pub struct Onvif<'a> {
    pub http: &'a VendorHttp,
    pub user: &'a str,
    pub password: &'a str,
}

/// What a live play needs from the device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveInfo {
    pub uri: String,
    pub profile: String,
    pub ptz_path: Option<String>,
}

impl Onvif<'_> {
    async fn call(&self, path: &str, body: &str) -> Result<String, VendorError> {
        let nonce: [u8; 16] = rand::random();
        let env = envelope(self.user, self.password, &nonce, &created_now(), body);
        let r = self.http.call_any("POST", path, SOAP, env.as_bytes()).await?;
        let text = String::from_utf8_lossy(&r.body).into_owned();
        if r.ok() {
            return Ok(text);
        }
        // A refused UsernameToken is a SOAP fault (`ter:NotAuthorized`) with a 400 or 500.
        let fault = soap_body(&text, path).err().unwrap_or_else(|| format!("{path}: HTTP {}", r.status));
        if text.contains("NotAuthorized") || fault.to_ascii_lowercase().contains("not authorized") {
            Err(VendorError::Auth(fault))
        } else {
            Err(VendorError::Refused(fault))
        }
    }

    /// The live URI of profile `index` (1-based: 1 is the main stream).
    pub async fn live(&self, index: u32) -> Result<LiveInfo, VendorError> {
        let caps = self.call(DEVICE_SERVICE, GET_CAPABILITIES).await?;
        let (media, ptz_path) = parse_capabilities(&caps).map_err(VendorError::Refused)?;
        let profiles = parse_profiles(&self.call(&media, GET_PROFILES).await?).map_err(VendorError::Refused)?;
        let profile = profiles
            .get(index.saturating_sub(1) as usize)
            .cloned()
            .ok_or_else(|| VendorError::Refused(format!("the device has {} media profiles, not {index}", profiles.len())))?;
        let uri = parse_stream_uri(&self.call(&media, &get_stream_uri(&profile)).await?).map_err(VendorError::Refused)?;
        Ok(LiveInfo { uri, profile, ptz_path })
    }

    /// Moves for `duration`, then stops.
    pub async fn ptz(&self, info: &LiveInfo, cmd: Ptz, speed: f32, duration: std::time::Duration) -> Result<(), VendorError> {
        let path = info.ptz_path.as_deref().ok_or_else(|| VendorError::Refused("the device has no PTZ service".into()))?;
        let mv = continuous_move(&info.profile, cmd, speed)
            .ok_or_else(|| VendorError::Refused("focus and iris are not PTZ moves over ONVIF (imaging service)".into()))?;
        self.call(path, &mv).await?;
        tokio::time::sleep(duration).await;
        self.call(path, &stop(&info.profile)).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_digest_matches_the_onvif_core_spec_example() {
        // ONVIF Core spec / WS-Security example values.
        let nonce = base64::engine::general_purpose::STANDARD.decode("LKqI6G/AikKCQrN0zqZFlg==").unwrap();
        assert_eq!(password_digest(&nonce, "2010-09-16T07:50:45Z", "userpassword"), "tuOSpGlFlIXsozq4HFNeeGeFLEI=");
        let env = envelope("a<b", "pw", b"0123456789abcdef", "2026-01-01T00:00:00Z", GET_PROFILES);
        assert!(env.contains("<Username>a&lt;b</Username>") && env.contains("<trt:GetProfiles"), "{env}");
        assert!(!created_now().is_empty());
    }

    #[test]
    fn reads_the_answers() {
        let caps = r#"<?xml version="1.0"?><env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" xmlns:tds="x" xmlns:tt="y"><env:Body>
            <tds:GetCapabilitiesResponse><tds:Capabilities><tt:Device><tt:XAddr>http://192.168.1.64/onvif/device_service</tt:XAddr></tt:Device>
            <tt:Media><tt:XAddr>http://192.168.1.64/onvif/Media</tt:XAddr></tt:Media><tt:PTZ><tt:XAddr>http://192.168.1.64:80/onvif/PTZ</tt:XAddr></tt:PTZ>
            </tds:Capabilities></tds:GetCapabilitiesResponse></env:Body></env:Envelope>"#;
        assert_eq!(parse_capabilities(caps).unwrap(), ("/onvif/Media".to_owned(), Some("/onvif/PTZ".to_owned())));
        let profiles = r#"<e:Envelope xmlns:e="s"><e:Body><trt:GetProfilesResponse xmlns:trt="m">
            <trt:Profiles token="Profile_1" fixed="true"><tt:Name>mainStream</tt:Name></trt:Profiles>
            <trt:Profiles token="Profile_2"><tt:Name>subStream</tt:Name></trt:Profiles></trt:GetProfilesResponse></e:Body></e:Envelope>"#;
        assert_eq!(parse_profiles(profiles).unwrap(), vec!["Profile_1", "Profile_2"]);
        let uri = r#"<e:Envelope xmlns:e="s"><e:Body><trt:GetStreamUriResponse xmlns:trt="m"><trt:MediaUri>
            <tt:Uri>rtsp://192.168.1.64:554/Streaming/Channels/101?transportmode=unicast&amp;profile=Profile_1</tt:Uri></trt:MediaUri>
            </trt:GetStreamUriResponse></e:Body></e:Envelope>"#;
        assert_eq!(
            parse_stream_uri(uri).unwrap(),
            "rtsp://192.168.1.64:554/Streaming/Channels/101?transportmode=unicast&profile=Profile_1"
        );
        let fault = r#"<e:Envelope xmlns:e="s"><e:Body><e:Fault><e:Code><e:Value>e:Sender</e:Value></e:Code>
            <e:Reason><e:Text xml:lang="en">Sender not Authorized</e:Text></e:Reason></e:Fault></e:Body></e:Envelope>"#;
        assert!(parse_profiles(fault).unwrap_err().contains("Sender not Authorized"));
        assert!(parse_capabilities("").is_err() && parse_stream_uri("<a/>").is_err());
    }

    #[test]
    fn uris_and_moves() {
        assert_eq!(reachable_uri("rtsp://192.168.1.64:554/a?b=c", "203.0.113.5", None), "rtsp://203.0.113.5:554/a?b=c");
        assert_eq!(reachable_uri("rtsp://u:p@10.0.0.2/live", "h", Some(8554)), "rtsp://h:8554/live");
        assert_eq!(reachable_uri("rtsp://[fe80::1]:10554/x", "fe80::2", None), "rtsp://[fe80::2]:10554/x");
        let mv = continuous_move("P1", Ptz::UpLeft, 0.6).unwrap();
        assert!(mv.contains("<tt:PanTilt x=\"-0.60\" y=\"0.60\"/><tt:Zoom x=\"0.00\"/>"), "{mv}");
        assert!(continuous_move("P1", Ptz::FocusFar, 0.6).is_none());
        assert!(stop("P1").contains("<tptz:PanTilt>true</tptz:PanTilt>"));
    }
}
