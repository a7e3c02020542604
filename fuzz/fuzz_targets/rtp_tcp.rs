//! RTP packets and RTP-over-TCP framing (RFC 4571 / `$` interleave, with resync): no panic,
//! no packet larger than the limit, bounded buffering.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = media::rtp::RtpPacket::parse(data);
    let ssrc = data.get(..4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
    let mut f = media::rtp::TcpFramer::new(ssrc, 1500);
    for chunk in data.chunks(37) {
        f.push(chunk);
        while let Some(p) = f.next_packet() {
            assert!(p.len() <= 1500);
            let _ = media::rtp::RtpPacket::parse(p);
        }
    }
});
