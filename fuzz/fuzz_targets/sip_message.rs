//! A datagram as the sip-server reads it: rsipstack's parser, then our header helpers and the
//! light view the simulator uses.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(mut msg) = rsipstack::sip::SipMessage::try_from(data) {
        sip_server::headers::force_rport(&mut msg);
        if let rsipstack::sip::SipMessage::Request(req) = &msg {
            let _ = sip_server::headers::from_user(req);
            let _ = sip_server::headers::expires(req);
            let _ = sip_server::headers::contact(req);
            let _ = sip_server::headers::value(req, "X-GB-Ver");
            let _ = gb::manscdp::parse(&req.body);
        }
    }
    if let Ok(m) = gb::sip::lite::LiteMessage::parse(data) {
        let _ = m.cseq();
        let _ = m.response(200, "OK", "t", &[], None);
    }
});
