//! Our side (UAC) of a GB28181 media dialog: INVITE with the SDP offer, provisional answers,
//! 200 → ACK, a timeout → CANCEL, 4xx–6xx → an error, then BYE in either direction.
//!
//! Every request leaves from the socket or TCP connection the device registered on, to the
//! address its packets came from (`outbound::Route`): a camera behind NAT is reached only that
//! way, whatever its Contact says. The ACK for a 2xx is ours to send (the endpoint runs with
//! `auto_ack_2xx` off, since rsipstack would send it to the Contact); a 2xx retransmitted over UDP
//! is answered again from `Shared::reack`.

use std::time::Duration;

use cluster::registry::Device;
use rsipstack::sip::{SipMessage, StatusCodeKind};
use tokio::time::Instant;

use crate::error::SipError;
use crate::handles::Identity;
use crate::outbound::{parse_request, start_transaction, token, Route};
use crate::server::Shared;

/// Where an outgoing INVITE stands. Transitions are in `on_response` / `on_deadline`, so the
/// rules are testable without a network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InviteState {
    /// Sent, nothing heard yet.
    Calling,
    /// A provisional answer (100 Trying, 180, 183) arrived.
    Proceeding,
    /// We gave up waiting and sent CANCEL; waiting for the 487 (or a racing 200).
    Cancelling,
    /// 200 received and ACKed: the dialog is up.
    Confirmed,
    /// The camera refused with this final status.
    Refused(u16),
    /// No final answer in time (cancelled).
    TimedOut,
}

/// What the caller must do after a transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InviteAction {
    Wait,
    SendAck,
    SendCancel,
    /// A 200 raced our CANCEL: the dialog exists, so ACK it and hang up at once.
    SendAckThenBye,
    Done,
}

impl InviteState {
    pub fn on_response(self, code: u16) -> (InviteState, InviteAction) {
        use InviteAction::*;
        use InviteState::*;
        match (self, code) {
            (Calling | Proceeding, 100..=199) => (Proceeding, Wait),
            (Calling | Proceeding, 200..=299) => (Confirmed, SendAck),
            (Calling | Proceeding, _) => (Refused(code), Done),
            (Cancelling, 100..=199) => (Cancelling, Wait),
            (Cancelling, 200..=299) => (TimedOut, SendAckThenBye),
            (Cancelling, _) => (TimedOut, Done),
            // A retransmitted 200 (our ACK was lost): ACK again.
            (Confirmed, 200..=299) => (Confirmed, SendAck),
            (s, _) => (s, Wait),
        }
    }

    pub fn on_deadline(self) -> (InviteState, InviteAction) {
        match self {
            InviteState::Calling | InviteState::Proceeding => (InviteState::Cancelling, InviteAction::SendCancel),
            InviteState::Cancelling => (InviteState::TimedOut, InviteAction::Done),
            s => (s, InviteAction::Done),
        }
    }

    pub fn is_final(self) -> bool {
        matches!(self, InviteState::Confirmed | InviteState::Refused(_) | InviteState::TimedOut)
    }
}

/// An established dialog, as the owning node keeps it to send BYE or match the camera's BYE
/// (and as the session record keeps it, so another node can still hang up).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Dialog {
    pub call_id: String,
    pub local_tag: String,
    pub remote_tag: String,
    /// Request-URI of in-dialog requests: the Contact of the 200 (routing still goes to the
    /// observed address).
    pub remote_uri: String,
    /// CSeq of the INVITE; in-dialog requests count up from it.
    pub cseq: u32,
    pub device_id: String,
    pub channel_id: String,
}

#[derive(Debug, thiserror::Error)]
pub enum InviteError {
    #[error("camera answered {code} {reason}")]
    Refused { code: u16, reason: String },
    #[error("camera did not answer the INVITE within {0} ms (cancelled)")]
    Timeout(u64),
    #[error("{0}")]
    Sip(#[from] SipError),
}

/// What to send the camera.
pub struct InviteRequest<'a> {
    pub device: &'a Device,
    pub channel_id: &'a str,
    pub sdp: &'a str,
    /// GB `Subject`: `<channel>:<ssrc>,<our id>:0`.
    pub subject: String,
    pub timeout: Duration,
}

fn uri_in(header_value: &str) -> Option<String> {
    let v = header_value.trim();
    let inner = match (v.find('<'), v.find('>')) {
        (Some(a), Some(b)) if b > a => &v[a + 1..b],
        _ => v.split(';').next().unwrap_or(v),
    };
    inner.starts_with("sip:").then(|| inner.trim().to_owned())
}

fn tag_in(header_value: &str) -> Option<String> {
    let lower = header_value.to_ascii_lowercase();
    let i = lower.find(";tag=")?;
    let rest = &header_value[i + 5..];
    let end = rest.find([';', '>', ' ', ',']).unwrap_or(rest.len());
    Some(rest[..end].to_owned()).filter(|t| !t.is_empty())
}

fn response_header(resp: &rsipstack::sip::Response, name: &str) -> Option<String> {
    resp.headers.iter().find(|h| h.name().eq_ignore_ascii_case(name)).map(|h| h.value().trim().to_owned())
}

/// The head shared by INVITE, ACK, CANCEL and BYE of one dialog.
struct Head<'a> {
    method: &'a str,
    uri: &'a str,
    proto: &'a str,
    branch: &'a str,
    to_tag: Option<&'a str>,
    cseq: u32,
}

fn head(me: &Identity, d: &Dialog, h: Head<'_>) -> String {
    let to_tag = h.to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
    format!(
        "{method} {uri} SIP/2.0\r\nVia: SIP/2.0/{proto} {host};rport;branch=z9hG4bK{branch}\r\n\
         From: <sip:{server}@{domain}>;tag={local}\r\nTo: <sip:{channel}@{domain}>{to_tag}\r\n\
         Call-ID: {call}\r\nCSeq: {cseq} {method}\r\nMax-Forwards: 70\r\nUser-Agent: gbcluster\r\n",
        method = h.method,
        uri = h.uri,
        proto = h.proto,
        host = me.contact_host,
        branch = h.branch,
        server = me.server_id,
        domain = me.domain,
        local = d.local_tag,
        channel = d.channel_id,
        call = d.call_id,
        cseq = h.cseq,
    )
}

/// Sends the INVITE and drives it to a confirmed dialog (ACK sent) or an error (CANCEL sent on
/// timeout). Returns the dialog and the camera's SDP answer.
pub async fn invite(shared: &Shared, req: InviteRequest<'_>) -> Result<(Dialog, String), InviteError> {
    let route = Route::to(&shared.links, req.device)?;
    let request_uri = format!("sip:{}@{}", req.channel_id, route.addr);
    let mut dialog = Dialog {
        call_id: format!("{}@{}", token(), shared.me.contact_host),
        local_tag: token(),
        remote_tag: String::new(),
        remote_uri: request_uri.clone(),
        cseq: rand::random::<u32>() % 10_000 + 1,
        device_id: req.device.id.to_string(),
        channel_id: req.channel_id.to_owned(),
    };
    let branch = token();
    let mut text = head(
        &shared.me,
        &dialog,
        Head { method: "INVITE", uri: &request_uri, proto: route.proto, branch: &branch, to_tag: None, cseq: dialog.cseq },
    );
    text.push_str(&format!(
        "Contact: <sip:{}@{}>\r\nSubject: {}\r\nContent-Type: APPLICATION/SDP\r\nContent-Length: {}\r\n\r\n{}",
        shared.me.server_id,
        shared.me.contact_host,
        req.subject,
        req.sdp.len(),
        req.sdp
    ));
    let mut tx = start_transaction(&shared.links, &route, parse_request(text.as_bytes())?).await?;
    crate::metrics::INVITES.inc();

    let mut state = InviteState::Calling;
    let mut deadline = Instant::now() + req.timeout;
    let mut answer = String::new();
    let mut last_reason = String::new();
    while !state.is_final() {
        let event = tokio::select! {
            m = tx.receive() => m,
            _ = tokio::time::sleep_until(deadline) => None,
        };
        let (next, action) = match event {
            Some(SipMessage::Response(resp)) => {
                let code = resp.status_code.code();
                if resp.status_code.kind() == StatusCodeKind::Successful {
                    if let Some(to) = response_header(&resp, "To") {
                        dialog.remote_tag = tag_in(&to).unwrap_or_default();
                    }
                    if let Some(uri) = response_header(&resp, "Contact").as_deref().and_then(uri_in) {
                        dialog.remote_uri = uri;
                    }
                    answer = String::from_utf8_lossy(&resp.body).into_owned();
                }
                last_reason = resp.status_code.to_string();
                state.on_response(code)
            }
            Some(SipMessage::Request(_)) => continue,
            // Deadline, or the transaction ended without a final answer (Timer B).
            None => state.on_deadline(),
        };
        state = next;
        match action {
            InviteAction::Wait | InviteAction::Done => {}
            InviteAction::SendAck => send_ack(shared, &route, &dialog).await?,
            InviteAction::SendCancel => {
                let cancel = head(
                    &shared.me,
                    &dialog,
                    Head { method: "CANCEL", uri: &request_uri, proto: route.proto, branch: &branch, to_tag: None, cseq: dialog.cseq },
                );
                let cancel = format!("{cancel}Content-Length: 0\r\n\r\n");
                // The CANCEL is its own transaction; its 200 is absorbed there.
                if let Ok(mut ctx) = start_transaction(&shared.links, &route, parse_request(cancel.as_bytes())?).await {
                    tokio::spawn(async move { while ctx.receive().await.is_some() {} });
                }
                crate::metrics::INVITE_TIMEOUTS.inc();
                // Give the camera a moment to answer 487 (or a racing 200).
                deadline = Instant::now() + Duration::from_secs(4);
            }
            InviteAction::SendAckThenBye => {
                send_ack(shared, &route, &dialog).await?;
                let _ = bye(shared, req.device, &mut dialog).await;
            }
        }
    }
    match state {
        InviteState::Confirmed => {
            // Keep absorbing 2xx retransmissions for the RFC 6026 window in the background: the
            // UDP loop re-ACKs them from `reack`, so the transaction can go.
            drop(tx);
            Ok((dialog, answer))
        }
        InviteState::Refused(code) => {
            crate::metrics::INVITE_REFUSED.inc();
            Err(InviteError::Refused { code, reason: last_reason.split_once(' ').map(|(_, r)| r.to_owned()).unwrap_or(last_reason) })
        }
        _ => Err(InviteError::Timeout(req.timeout.as_millis() as u64)),
    }
}

fn ack_bytes(shared: &Shared, route: &Route, d: &Dialog) -> String {
    let h = head(
        &shared.me,
        d,
        Head { method: "ACK", uri: &d.remote_uri, proto: route.proto, branch: &token(), to_tag: Some(&d.remote_tag), cseq: d.cseq },
    );
    format!("{h}Content-Length: 0\r\n\r\n")
}

async fn send_ack(shared: &Shared, route: &Route, d: &Dialog) -> Result<(), SipError> {
    let text = ack_bytes(shared, route, d);
    let msg = SipMessage::Request(parse_request(text.as_bytes())?);
    if route.proto == "UDP" {
        shared.plays.remember_ack(&d.call_id, text.into_bytes(), route.addr);
    }
    route.send_raw(msg).await
}

/// Hangs up: BYE to the device (through its current route), waiting briefly for the answer.
/// Returns the final status (481 means the camera had already forgotten the call).
pub async fn bye(shared: &Shared, device: &Device, d: &mut Dialog) -> Result<u16, SipError> {
    shared.plays.forget_ack(&d.call_id);
    crate::metrics::BYES_SENT.inc();
    in_dialog(shared, device, d, "BYE", None).await
}

/// A request within the dialog (BYE, INFO with its body), its CSeq counted up from the last;
/// returns the final status, or a timeout after 5 s.
pub async fn in_dialog(
    shared: &Shared,
    device: &Device,
    d: &mut Dialog,
    method: &str,
    body: Option<(&str, &[u8])>,
) -> Result<u16, SipError> {
    in_dialog_with(shared, device, d, method, &[], body).await.map(|r| r.status_code.code())
}

/// [`in_dialog`] with extra headers (a refreshing SUBSCRIBE's `Event` and `Expires`),
/// returning the final response.
pub async fn in_dialog_with(
    shared: &Shared,
    device: &Device,
    d: &mut Dialog,
    method: &str,
    headers: &[(&str, String)],
    body: Option<(&str, &[u8])>,
) -> Result<rsipstack::sip::Response, SipError> {
    let route = Route::to(&shared.links, device)?;
    d.cseq += 1;
    let h = head(
        &shared.me,
        d,
        Head { method, uri: &d.remote_uri, proto: route.proto, branch: &token(), to_tag: Some(&d.remote_tag), cseq: d.cseq },
    );
    send_in(shared, device, &route, h, headers, body, Duration::from_secs(5)).await
}

/// Sends a request whose head is `h` with `headers` and `body`; its final response, or a
/// timeout after `within`.
async fn send_in(
    shared: &Shared,
    device: &Device,
    route: &Route,
    h: String,
    headers: &[(&str, String)],
    body: Option<(&str, &[u8])>,
    within: Duration,
) -> Result<rsipstack::sip::Response, SipError> {
    let mut text = h;
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    let mut bytes = match body {
        Some((content_type, b)) => format!("{text}Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n", b.len()).into_bytes(),
        None => format!("{text}Content-Length: 0\r\n\r\n").into_bytes(),
    };
    if let Some((_, b)) = body {
        bytes.extend_from_slice(b);
    }
    let mut tx = start_transaction(&shared.links, route, parse_request(&bytes)?).await?;
    crate::outbound::final_response(&mut tx, within).await.ok_or_else(|| SipError::Timeout {
        device: device.id.to_string(),
        addr: route.addr,
        timeout_ms: within.as_millis() as u64,
    })
}

/// Opens a dialog with a request other than INVITE (a SUBSCRIBE) to `target` (the device's
/// id): on a 2xx the dialog holds the device's tag and Contact. Returns the dialog and the
/// final response (whatever its status: the caller reads it).
pub async fn open_with(
    shared: &Shared,
    device: &Device,
    method: &str,
    headers: &[(&str, String)],
    body: (&str, &[u8]),
) -> Result<(Dialog, rsipstack::sip::Response), SipError> {
    let route = Route::to(&shared.links, device)?;
    let mut d = Dialog {
        call_id: format!("{}@{}", token(), shared.me.contact_host),
        local_tag: token(),
        remote_tag: String::new(),
        remote_uri: format!("sip:{}@{}", device.id, route.addr),
        cseq: rand::random::<u32>() % 100_000 + 1,
        device_id: device.id.to_string(),
        channel_id: device.id.to_string(),
    };
    let h = head(&shared.me, &d, Head { method, uri: &d.remote_uri, proto: route.proto, branch: &token(), to_tag: None, cseq: d.cseq });
    let resp = send_in(shared, device, &route, h, headers, Some(body), crate::outbound::REQUEST_TIMEOUT).await?;
    if let Some(tag) = response_header(&resp, "To").as_deref().and_then(tag_in) {
        d.remote_tag = tag;
    }
    if let Some(uri) = response_header(&resp, "Contact").as_deref().and_then(uri_in) {
        d.remote_uri = uri;
    }
    Ok((d, resp))
}

/// A header of a response, trimmed.
pub fn header_of(resp: &rsipstack::sip::Response, name: &str) -> Option<String> {
    response_header(resp, name)
}

#[cfg(test)]
mod tests {
    use super::InviteAction::*;
    use super::InviteState::*;
    use super::*;

    #[test]
    fn invite_state_machine() {
        assert_eq!(Calling.on_response(100), (Proceeding, Wait));
        assert_eq!(Proceeding.on_response(180), (Proceeding, Wait));
        assert_eq!(Proceeding.on_response(200), (Confirmed, SendAck));
        assert_eq!(Calling.on_response(486), (Refused(486), Done));
        assert_eq!(Calling.on_deadline(), (Cancelling, SendCancel));
        assert_eq!(Cancelling.on_response(487), (TimedOut, Done));
        assert_eq!(Cancelling.on_response(200), (TimedOut, SendAckThenBye), "a 200 racing the CANCEL is hung up");
        assert_eq!(Cancelling.on_deadline(), (TimedOut, Done));
        assert_eq!(Confirmed.on_response(200), (Confirmed, SendAck), "retransmitted 200 re-ACKed");
        assert!(Confirmed.is_final() && Refused(404).is_final() && TimedOut.is_final() && !Cancelling.is_final());
    }

    #[test]
    fn reads_contact_and_tag() {
        assert_eq!(
            uri_in("<sip:34020000001320000001@192.168.1.64:5060>;expires=0").as_deref(),
            Some("sip:34020000001320000001@192.168.1.64:5060")
        );
        assert_eq!(uri_in("sip:a@b;transport=udp").as_deref(), Some("sip:a@b"));
        assert_eq!(uri_in("garbage"), None);
        assert_eq!(tag_in("<sip:a@b>;tag=8f2a;x=1").as_deref(), Some("8f2a"));
        assert_eq!(tag_in("<sip:a@b>;TAG=Z"), Some("Z".into()));
        assert_eq!(tag_in("<sip:a@b>"), None);
    }
}
