//! Every GB protocol parser over thousands of mutated real-looking inputs: no panic,
//! bounded output. (The `fuzz/` targets go further; this runs in CI on stable.)

use gb::manscdp::{self, build};
use gb::model::Channel;
use gb::sdp::GbSdp;
use gb::sip::digest::{Challenge, Credentials};
use gb::sip::lite::{LiteMessage, StreamFramer};
use testkit::Mutator;

const ROUNDS: usize = 4000;

#[test]
fn manscdp_never_panics() {
    let catalog = build::catalog_response(
        1,
        "34020000001320000001",
        2,
        &[Channel { id: "34020000001310000001".parse().ok(), name: Some("大门口".into()), ..Default::default() }],
    );
    let seeds: Vec<&[u8]> =
        vec![&catalog, b"<Notify><CmdType>Keepalive</CmdType><SN>1</SN></Notify>", b"<?xml?><Response><CmdType>DeviceInfo</CmdType>"];
    let mut m = Mutator::new(1);
    for _ in 0..ROUNDS {
        let input = m.mutate(&seeds);
        let _ = manscdp::parse(&input);
    }
}

#[test]
fn sip_lite_and_framer_never_panic() {
    let seed = b"MESSAGE sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCall-ID: x\r\nCSeq: 1 MESSAGE\r\nContent-Length: 3\r\n\r\nabc";
    let mut m = Mutator::new(2);
    for _ in 0..ROUNDS {
        let input = m.mutate(&[seed, b"SIP/2.0 401 Unauthorized\r\nl: 0\r\n\r\n"]);
        let _ = LiteMessage::parse(&input);
        let mut f = StreamFramer::new(512);
        let cut = input.len() / 2;
        for part in [&input[..cut], &input[cut..]] {
            f.push(part);
            while let Ok(Some(msg)) = f.next_message() {
                assert!(msg.len() <= 512);
            }
        }
    }
}

#[test]
fn sdp_and_digest_never_panic() {
    let sdp = b"v=0\r\no=3402 0 0 IN IP4 1.2.3.4\r\ns=Play\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\nm=video 9 TCP/RTP/AVP 96\r\na=setup:active\r\na=rtpmap:96 PS/90000\r\ny=0100000001\r\n";
    let auth = b"Digest username=\"a\", realm=\"r\", nonce=\"n\", uri=\"sip:x\", response=\"00\", qop=auth, nc=00000001, cnonce=\"c\", algorithm=SHA-256";
    let mut m = Mutator::new(3);
    for _ in 0..ROUNDS {
        let input = m.mutate(&[sdp, auth]);
        let text = String::from_utf8_lossy(&input);
        if let Ok(s) = GbSdp::parse(&text) {
            assert!(GbSdp::parse(&s.to_text()).is_ok());
        }
        if let Ok(c) = Credentials::parse(&text) {
            let _ = c.verify("REGISTER", "p");
        }
        let _ = Challenge::parse(&text);
    }
}

#[test]
fn mansrtsp_never_panics_and_round_trips() {
    let seeds: Vec<&[u8]> = vec![
        b"PLAY RTSP/1.0\r\nCSeq: 2\r\nScale: 2.0\r\nRange: npt=100-\r\n",
        b"PAUSE RTSP/1.0\r\nCSeq: 3\r\nPauseTime: now\r\n",
        b"TEARDOWN RTSP/1.0\r\nCSeq: 4\r\n",
    ];
    let mut m = Mutator::new(9);
    for _ in 0..ROUNDS {
        let input = m.mutate(&seeds);
        if let Ok(c) = gb::mansrtsp::parse(&input) {
            assert_eq!(gb::mansrtsp::parse(&gb::mansrtsp::build(&c)), Ok(c));
        }
    }
}
