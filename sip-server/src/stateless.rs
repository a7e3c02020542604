//! Requests answered without a SIP transaction, straight from the UDP loop.
//!
//! rsipstack gives every server transaction a task, a channel and timers, and keeps a UDP
//! non-INVITE transaction for Timer J (32 s). That is right for requests whose handling must
//! happen once, but two requests make up nearly all of a registrar's traffic and are
//! idempotent: a REGISTER without credentials (answered with a fresh challenge) and a
//! Keepalive (a touch in the Store). A retransmission of either is simply answered again, so
//! they skip the transaction layer (RFC 3261 §8.2.7 allows stateless answers).

use std::net::SocketAddr;
use std::sync::Arc;

use gb::ids::DeviceId;
use gb::manscdp::{self, Body};
use gb::model::SipTransport;
use rsipstack::sip::{Header, HeadersExt, Method, Request, SipMessage, StatusCode};
use rsipstack::transport::SipAddr;

use crate::answers::Seen;
use crate::error::SipError;
use crate::server::Shared;

/// What the fast path can answer.
#[derive(Debug, PartialEq, Eq)]
pub enum Stateless {
    /// REGISTER without `Authorization`, auth on: 401 with a challenge.
    Challenge,
    /// REGISTER with credentials (or with auth off). Idempotent too: handled again, a
    /// retransmission rewrites the same record, and events and queries fire only on a real
    /// transition. A retransmission arriving while the original is in progress is dropped.
    Register,
    /// MESSAGE carrying a MANSCDP Keepalive from this device.
    Keepalive(DeviceId),
}

fn mentions_keepalive(body: &[u8]) -> bool {
    body.windows(9).any(|w| w.eq_ignore_ascii_case(b"keepalive"))
}

/// Classifies a UDP request for the stateless path; `None` sends it through a transaction.
pub fn classify(req: &Request, cfg: &crate::config::SipConfig) -> Option<Stateless> {
    match req.method {
        Method::Register => {
            // Challenge only a valid, allowed id; anything else gets its 400/403 from the registrar.
            let challengeable = cfg.auth
                && crate::registrar::is_unauthenticated_register(req)
                && crate::headers::from_user(req).and_then(|u| u.parse::<DeviceId>().ok()).is_some_and(|id| {
                    cfg.allow_prefixes.is_empty() || cfg.allow_prefixes.iter().any(|p| id.as_str().starts_with(p.as_str()))
                });
            Some(if challengeable { Stateless::Challenge } else { Stateless::Register })
        }
        Method::Message if mentions_keepalive(&req.body) => {
            let msg = manscdp::parse(&req.body).ok()?;
            if !matches!(msg.body, Body::Keepalive { .. }) {
                return None;
            }
            let id = crate::headers::from_user(req).and_then(|u| u.parse().ok()).or_else(|| msg.header.device_id.parse().ok())?;
            Some(Stateless::Keepalive(id))
        }
        _ => None,
    }
}

/// Where an answer goes: through a transaction (TCP, and requests that must happen once), or
/// straight from our UDP socket.
pub enum Responder<'a> {
    Transaction(&'a mut rsipstack::transaction::transaction::Transaction),
    /// Straight from the UDP socket; the final answer sent is kept for retransmitted copies.
    Udp {
        req: Box<Request>,
        final_answer: Option<Box<Answer>>,
    },
}

/// A response as sent, and where to: what a retransmitted request gets again.
pub type Answer = (SipMessage, Option<SipAddr>);

impl Responder<'_> {
    pub fn request(&self) -> &Request {
        match self {
            Responder::Transaction(tx) => &tx.original,
            Responder::Udp { req, .. } => req,
        }
    }

    pub async fn reply(&mut self, shared: &Shared, code: StatusCode, headers: Vec<Header>) -> Result<(), SipError> {
        match self {
            Responder::Transaction(tx) => tx.reply_with(code, headers, None).await.map_err(SipError::from),
            Responder::Udp { req, final_answer } => {
                let is_final = code.code() >= 200;
                if let Some(sent) = send_response(shared, (**req).clone(), code, headers, is_final).await? {
                    *final_answer = Some(Box::new(sent));
                }
                Ok(())
            }
        }
    }
}

/// Sends a response to `req` from our UDP socket to where it came from (Via received/rport).
async fn respond(shared: &Shared, req: Request, code: StatusCode, headers: Vec<Header>) -> Result<(), SipError> {
    send_response(shared, req, code, headers, false).await.map(|_| ())
}

/// `respond`, returning what it sent when `keep` (a REGISTER's final answer, for its
/// retransmissions; challenges and keepalive answers are not copied).
async fn send_response(
    shared: &Shared,
    mut req: Request,
    code: StatusCode,
    headers: Vec<Header>,
    keep: bool,
) -> Result<Option<Answer>, SipError> {
    if code.code() >= 200 {
        let to = req.to_header()?.clone();
        if to.tag()?.is_none() {
            req.headers.unique_push(to.with_tag(rsipstack::transaction::make_tag()).into());
        }
    }
    let dest: Option<SipAddr> = shared.links.endpoint.get_destination_from_request(&req).await;
    let mut resp = shared.links.endpoint.make_response(&req, code, None);
    resp.headers.extend(headers);
    let msg = SipMessage::Response(resp);
    let kept = keep.then(|| (msg.clone(), dest.clone()));
    shared.links.udp.send(msg, dest.as_ref()).await?;
    Ok(kept)
}

pub async fn handle(shared: Arc<Shared>, req: Request, kind: Stateless, from: SocketAddr) {
    let result = match kind {
        Stateless::Challenge => {
            let gb_version = crate::headers::value(&req, "X-GB-Ver");
            crate::metrics::CHALLENGES.inc();
            let challenges = crate::registrar::rules(&shared).challenges(gb_version.as_deref(), false, kit::clock::now_ms());
            respond(&shared, req, StatusCode::Unauthorized, challenges).await
        }
        Stateless::Register => register(&shared, req, from).await,
        Stateless::Keepalive(device_id) => {
            let peer = (SipTransport::Udp, from.to_string());
            match crate::inbound::on_keepalive(&shared, &device_id, Some(peer), None).await {
                Ok(code) => respond(&shared, req, code, vec![]).await,
                Err(e) => {
                    let _ = respond(&shared, req, StatusCode::ServerInternalError, vec![]).await;
                    Err(e)
                }
            }
        }
    };
    if let Err(e) = result {
        tracing::warn!(peer = %from, error = %e, "stateless answer failed");
    }
}

/// An authenticated REGISTER without a transaction: deduplicated while in progress, its final
/// answer repeated to later copies (`answers`), admitted like any other request (wait for a
/// slot, else 503).
async fn register(shared: &Arc<Shared>, req: Request, from: SocketAddr) -> Result<(), SipError> {
    let key = match (req.call_id_header(), req.cseq_header()) {
        (Ok(c), Ok(s)) => format!("{}\u{0}{}", c.value(), s.value()),
        _ => return respond(shared, req, StatusCode::BadRequest, vec![]).await,
    };
    let seen = shared.admission.registering().begin(&key, kit::clock::now_ms());
    match seen {
        Seen::New => {}
        // A retransmission: the original is being handled and will be answered.
        Seen::InProgress => return Ok(()),
        Seen::Answered((msg, dest)) => {
            crate::metrics::RETRANSMISSIONS_ANSWERED.inc();
            shared.links.udp.send(msg, dest.as_ref()).await?;
            return Ok(());
        }
    }
    let mut final_answer = None;
    let result = async {
        let slot = match shared.admission.try_admit() {
            Some(p) => Some(p),
            None => {
                // Queued: 100 Trying slows the device's retransmissions to every T2 (4 s)
                // instead of every 0.5-2 s, so a storm does not multiply itself.
                respond(shared, req.clone(), StatusCode::Trying, vec![]).await?;
                shared.admission.admit().await
            }
        };
        let Some(_slot) = slot else {
            // Not kept: after a 503 the device is to try again, and then it is registered.
            return respond(shared, req, StatusCode::ServiceUnavailable, vec![crate::handles::Admission::shed()]).await;
        };
        let mut responder = Responder::Udp { req: Box::new(req), final_answer: None };
        let result = crate::registrar::on_register(shared, &mut responder, (SipTransport::Udp, from.to_string()), None).await;
        if let Responder::Udp { final_answer: sent, .. } = responder {
            final_answer = sent;
        }
        result
    }
    .await;
    shared.admission.registering().finish(&key, final_answer.map(|a| *a), kit::clock::now_ms());
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(text: &str) -> Request {
        match SipMessage::try_from(text.as_bytes()).unwrap() {
            SipMessage::Request(r) => r,
            _ => panic!(),
        }
    }

    const HEAD: &str = "Via: SIP/2.0/UDP 1.2.3.4:5060;branch=z9hG4bK1\r\nFrom: <sip:34020000001320000001@3402000000>;tag=a\r\nTo: <sip:34020000002000000001@3402000000>\r\nCall-ID: c\r\n";

    #[test]
    fn classifies_only_idempotent_requests() {
        let on = crate::config::SipConfig::default();
        let off = crate::config::SipConfig { auth: false, ..Default::default() };
        let only_44 = crate::config::SipConfig { allow_prefixes: vec!["44".into()], ..Default::default() };
        let reg = req(&format!("REGISTER sip:x@y SIP/2.0\r\n{HEAD}CSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n"));
        assert_eq!(classify(&reg, &on), Some(Stateless::Challenge));
        assert_eq!(classify(&reg, &off), Some(Stateless::Register), "no auth: registered at once");
        assert_eq!(classify(&reg, &only_44), Some(Stateless::Register), "refused prefix: 403 from the registrar, not a challenge");
        let bad = req(&format!(
            "REGISTER sip:x@y SIP/2.0\r\n{}CSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n",
            HEAD.replace("34020000001320000001", "123")
        ));
        assert_eq!(classify(&bad, &on), Some(Stateless::Register), "bad id: 400 from the registrar");
        let authed = req(&format!(
            "REGISTER sip:x@y SIP/2.0\r\n{HEAD}CSeq: 2 REGISTER\r\nAuthorization: Digest username=\"a\"\r\nContent-Length: 0\r\n\r\n"
        ));
        assert_eq!(classify(&authed, &on), Some(Stateless::Register));
        let body = String::from_utf8(manscdp::build::keepalive(1, "34020000001320000001")).unwrap();
        let ka = req(&format!("MESSAGE sip:x@y SIP/2.0\r\n{HEAD}CSeq: 3 MESSAGE\r\nContent-Length: {}\r\n\r\n{body}", body.len()));
        assert_eq!(classify(&ka, &on), Some(Stateless::Keepalive("34020000001320000001".parse().unwrap())));
        let cat = "<Response><CmdType>Catalog</CmdType><SN>1</SN><Note>keepalive</Note></Response>";
        let other = req(&format!("MESSAGE sip:x@y SIP/2.0\r\n{HEAD}CSeq: 4 MESSAGE\r\nContent-Length: {}\r\n\r\n{cat}", cat.len()));
        assert_eq!(classify(&other, &on), None);
    }
}
