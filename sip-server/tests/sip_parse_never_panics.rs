//! rsipstack's parser and our header helpers over mutated GB REGISTER / MESSAGE datagrams.

use rsipstack::sip::SipMessage;
use testkit::Mutator;

const REGISTER: &[u8] = b"REGISTER sip:34020000002000000001@3402000000 SIP/2.0\r\nVia: SIP/2.0/UDP 192.168.1.64:5060;rport;branch=z9hG4bK1\r\n\
From: <sip:34020000001320000001@3402000000>;tag=abc\r\nTo: <sip:34020000001320000001@3402000000>\r\nCall-ID: 1@192.168.1.64\r\n\
CSeq: 1 REGISTER\r\nContact: <sip:34020000001320000001@192.168.1.64:5060>;expires=1800\r\nAuthorization: Digest username=\"34020000001320000001\", realm=\"3402000000\", nonce=\"x\", uri=\"sip:34020000002000000001@3402000000\", response=\"0\"\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n";
const MESSAGE: &[u8] = b"MESSAGE sip:34020000002000000001@3402000000 SIP/2.0\r\nVia: SIP/2.0/UDP 192.168.1.64:5060;branch=z9hG4bK2\r\n\
From: <sip:34020000001320000001@3402000000>;tag=k\r\nTo: <sip:34020000002000000001@3402000000>\r\nCall-ID: 2@h\r\nCSeq: 20 MESSAGE\r\n\
Content-Type: Application/MANSCDP+xml\r\nContent-Length: 79\r\n\r\n<?xml version=\"1.0\"?><Notify><CmdType>Keepalive</CmdType><SN>1</SN></Notify>";

#[test]
fn sip_datagrams_never_panic_the_parser_or_helpers() {
    let mut m = Mutator::new(7);
    for _ in 0..4000 {
        let input = m.mutate(&[REGISTER, MESSAGE]);
        if let Ok(mut msg) = SipMessage::try_from(input.as_slice()) {
            sip_server::headers::force_rport(&mut msg);
            if let SipMessage::Request(req) = &msg {
                let _ = sip_server::headers::from_user(req);
                let _ = sip_server::headers::expires(req);
                let _ = sip_server::headers::contact(req);
                let _ = gb::manscdp::parse(&req.body);
            }
        }
    }
}
