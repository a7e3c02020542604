//! Reading the few header values we need from rsipstack requests, tolerant of how cameras
//! write them.

use rsipstack::sip::{HeadersExt, Request};

/// The value of the first header named `name` (case-insensitive; compact forms not expanded).
pub fn value(req: &Request, name: &str) -> Option<String> {
    req.headers.iter().find(|h| h.name().eq_ignore_ascii_case(name)).map(|h| h.value().trim().to_owned())
}

/// Asks for `rport` on the top Via of a request that did not: the transport then records the
/// real source port, so answers and later requests reach a device behind NAT even when it
/// did not ask (RFC 3581 behaviour for every device, as GB platforms do).
pub fn force_rport(msg: &mut rsipstack::sip::SipMessage) {
    let rsipstack::sip::SipMessage::Request(req) = msg else { return };
    if let Some(rsipstack::sip::Header::Via(via)) = req.headers.iter_mut().find(|h| matches!(h, rsipstack::sip::Header::Via(_))) {
        let top_end = via.0.find(',').unwrap_or(via.0.len());
        let top = &via.0[..top_end];
        let has = top.split(';').skip(1).any(|p| p.trim().split('=').next().is_some_and(|k| k.eq_ignore_ascii_case("rport")));
        if !has {
            via.0.insert_str(top_end, ";rport");
        }
    }
}

/// The user part of the From URI: a GB device id.
pub fn from_user(req: &Request) -> Option<String> {
    let from = req.from_header().ok()?.to_string();
    gb::sip::uri_user(&from).map(str::to_owned)
}

/// The Contact header value as sent.
pub fn contact(req: &Request) -> Option<String> {
    req.contact_header().ok().map(|c| {
        let s = c.to_string();
        s.split_once(':').filter(|(n, _)| n.trim().eq_ignore_ascii_case("contact")).map_or(s.clone(), |(_, v)| v.trim().to_owned())
    })
}

/// Requested registration lifetime: `Expires` header, else the Contact's `expires` param.
pub fn expires(req: &Request) -> Option<u32> {
    if let Some(e) = value(req, "Expires") {
        return e.trim().parse().ok();
    }
    let c = contact(req)?;
    let lower = c.to_ascii_lowercase();
    let i = lower.find(";expires=")?;
    let digits: String = lower[i + 9..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsipstack::sip::SipMessage;

    const REGISTER: &str = "REGISTER sip:34020000002000000001@3402000000 SIP/2.0\r\n\
        Via: SIP/2.0/UDP 192.168.1.64:5060;rport;branch=z9hG4bK1\r\n\
        From: <sip:34020000001320000001@3402000000>;tag=abc\r\n\
        To: <sip:34020000001320000001@3402000000>\r\n\
        Call-ID: 1@192.168.1.64\r\n\
        CSeq: 1 REGISTER\r\n\
        Contact: <sip:34020000001320000001@192.168.1.64:5060>;expires=1800\r\n\
        Max-Forwards: 70\r\n\
        X-GB-Ver: 3.0\r\n\
        Content-Length: 0\r\n\r\n";

    fn req(text: &str) -> Request {
        match SipMessage::try_from(text.as_bytes()).unwrap() {
            SipMessage::Request(r) => r,
            _ => panic!("not a request"),
        }
    }

    #[test]
    fn reads_gb_register_headers() {
        let r = req(REGISTER);
        assert_eq!(from_user(&r).as_deref(), Some("34020000001320000001"));
        assert_eq!(value(&r, "x-gb-ver").as_deref(), Some("3.0"));
        assert_eq!(expires(&r), Some(1800));
        assert_eq!(contact(&r).as_deref(), Some("<sip:34020000001320000001@192.168.1.64:5060>;expires=1800"));
        let r = req(&REGISTER.replace("X-GB-Ver: 3.0\r\n", "Expires: 0\r\n"));
        assert_eq!(expires(&r), Some(0));
    }

    #[test]
    fn rport_is_added_to_the_top_via_only_when_missing() {
        let text = REGISTER.replace(";rport;branch", ";branch");
        let mut m = SipMessage::try_from(text.as_bytes()).unwrap();
        force_rport(&mut m);
        let SipMessage::Request(r) = &m else { panic!() };
        assert_eq!(value(r, "Via").as_deref(), Some("SIP/2.0/UDP 192.168.1.64:5060;branch=z9hG4bK1;rport"));
        let mut m = SipMessage::try_from(REGISTER.as_bytes()).unwrap();
        force_rport(&mut m);
        let SipMessage::Request(r) = &m else { panic!() };
        assert_eq!(value(r, "Via").as_deref(), Some("SIP/2.0/UDP 192.168.1.64:5060;rport;branch=z9hG4bK1"));
    }
}
