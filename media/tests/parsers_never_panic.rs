//! Every media parser over thousands of mutated real-looking inputs: no panic,
//! bounded output. (The `fuzz/` targets go further; this runs in CI on stable.)

use testkit::Mutator;

const ROUNDS: usize = 4000;

#[test]
fn rtp_and_tcp_framing_never_panic() {
    let mut seed = Vec::new();
    for seq in 0..3u16 {
        let mut p = Vec::new();
        media::rtp::RtpPacket::write_header(&mut p, 96, seq == 2, seq, 3600, 42);
        p.extend_from_slice(&[0, 0, 1, 0xBA, 0x44, 0, 4]);
        seed.extend_from_slice(&(p.len() as u16).to_be_bytes());
        seed.extend_from_slice(&p);
    }
    let mut m = Mutator::new(4);
    for _ in 0..ROUNDS {
        let input = m.mutate(&[&seed]);
        let _ = media::rtp::RtpPacket::parse(&input);
        let mut f = media::rtp::TcpFramer::new(Some(42), 256);
        for chunk in input.chunks(13) {
            f.push(chunk);
            while let Some(p) = f.next_packet() {
                assert!(p.len() <= 256);
            }
        }
    }
}

#[test]
fn ps_demuxer_never_panics_and_stays_bounded() {
    // Pack header, PSM (H.264 + G.711A), a video PES and an audio PES.
    let mut seed = vec![0, 0, 1, 0xBA, 0x44, 0, 4, 0, 4, 1, 0x01, 0x89, 0xC3, 0xF8];
    seed.extend_from_slice(&[0, 0, 1, 0xBC, 0, 18, 0xE0, 0xFF, 0, 0, 0, 8, 0x1B, 0xE0, 0, 0, 0x90, 0xC0, 0, 0, 1, 2, 3, 4]);
    seed.extend_from_slice(&[0, 0, 1, 0xE0, 0, 16, 0x80, 0x80, 5, 0x21, 0, 1, 0, 1, 0, 0, 0, 1, 0x65, 0x88, 0x84]);
    seed.extend_from_slice(&[0, 0, 1, 0xC0, 0, 12, 0x80, 0x80, 5, 0x21, 0, 1, 0, 1, 0xD5, 0xD5, 0xD5, 0xD5]);
    let mut m = Mutator::new(5);
    for _ in 0..ROUNDS {
        let input = m.mutate(&[&seed]);
        let mut d = media::ps::PsDemuxer::new(4096);
        for chunk in input.chunks(17) {
            d.push(chunk);
            while let Some(f) = d.poll() {
                assert!(f.data.len() <= 4096);
            }
        }
        d.end_of_frame();
        while d.poll().is_some() {}
    }
}

/// A PS stream from our muxer: real SPS/PPS, ADTS audio.
fn muxed_seed() -> Vec<u8> {
    use media::es::Codec;
    let sps = [
        0x67, 0x64, 0x00, 0x0d, 0xac, 0xd9, 0x41, 0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0x20, 0xf1,
        0x42, 0x99, 0x60,
    ];
    let mut frame = vec![0, 0, 0, 1];
    frame.extend_from_slice(&sps);
    frame.extend_from_slice(&[0, 0, 0, 1, 0x68, 0xeb, 0xe3, 0xcb, 0, 0, 0, 1, 0x65, 0x88, 0x84, 0x21]);
    let m = media::ps_mux::PsMuxer::new(Codec::H264, Some(Codec::Aac));
    let mut out = Vec::new();
    m.video(&frame, 3600, None, true, &mut out);
    m.audio(&[0xFF, 0xF1, 0x50, 0x80, 0x01, 0xBF, 0xFC, 1, 2, 3, 4, 5, 6], 3600, &mut out);
    m.video(&[0, 0, 0, 1, 0x41, 0x9a, 0x02], 7200, None, false, &mut out);
    out
}

#[test]
fn access_units_and_flv_never_panic() {
    use media::flv::{FlvMuxer, FlvOptions};
    use media::AccessUnitBuilder;
    let seed = muxed_seed();
    let mut m = Mutator::new(6);
    for _ in 0..ROUNDS {
        let input = m.mutate(&[&seed]);
        let mut d = media::ps::PsDemuxer::new(8192);
        let mut b = AccessUnitBuilder::new();
        let mut flv = FlvMuxer::new(FlvOptions::default());
        let mut events = Vec::new();
        for chunk in input.chunks(23) {
            d.push(chunk);
            d.end_of_frame();
            while let Some(f) = d.poll() {
                b.push(f, &mut events);
            }
            for ev in events.drain(..) {
                if let Some(t) = flv.push(&ev) {
                    assert_eq!(media::flv::read_tags(&[&media::flv::file_header(true, true)[..], &t.wire].concat()).len(), 1);
                }
            }
        }
        let _ = media::codec::h264::parse_sps(&input);
        let _ = media::codec::h265::parse_sps(&input);
        let _ = media::codec::aac::frames(&input).count();
        let _ = media::flv::read_tags(&input);
    }
}

#[test]
fn ts_demuxer_never_panics_and_stays_bounded() {
    // PAT, PMT (H.264 on 0x100), and a video PES start.
    let mut seed = Vec::new();
    let mut pkt = |pid: u16, pusi: bool, payload: &[u8]| {
        let mut p = vec![0x47, (u8::from(pusi) << 6) | (pid >> 8) as u8, pid as u8, 0x10];
        p.extend_from_slice(payload);
        p.resize(188, 0xFF);
        seed.extend_from_slice(&p);
    };
    pkt(0, true, &[0, 0x00, 0xB0, 0x0D, 0, 1, 0xC1, 0, 0, 0, 1, 0xF0, 0x00, 0x2A, 0xB1, 0x04, 0xB2]);
    pkt(0x1000, true, &[0, 0x02, 0xB0, 0x12, 0, 1, 0xC1, 0, 0, 0xE1, 0x00, 0xF0, 0, 0x1B, 0xE1, 0x00, 0xF0, 0, 0x15, 0xBD, 0x4D, 0x56]);
    pkt(0x100, true, &[0, 0, 1, 0xE0, 0, 0, 0x80, 0x80, 5, 0x21, 0, 1, 0, 1, 0, 0, 0, 1, 0x65, 0x88]);
    let mut m = Mutator::new(7);
    for _ in 0..ROUNDS {
        let input = m.mutate(&[&seed]);
        let mut d = media::ts::TsDemuxer::new(4096);
        for chunk in input.chunks(188 * 2 + 5) {
            d.push(chunk);
            d.end_of_frame();
            while let Some(f) = d.poll() {
                assert!(f.data.len() <= 4096);
            }
        }
    }
}

#[test]
fn fmp4_muxer_takes_any_flv_tag_and_keeps_its_boxes_whole() {
    use media::flv::{FlvMuxer, FlvOptions, TagKind};
    use media::fmp4::Fmp4Muxer;
    // Real tags as seeds: an AVC header and frame, an AAC header and frame.
    let record = media::codec::h264::avc_config(&media::test_vectors::H264_SPS_320X240, &media::test_vectors::H264_PPS).unwrap();
    let cfg = media::VideoConfig { codec: media::Codec::H264, width: 320, height: 240, fps: None, record: record.into() };
    let mut flv = FlvMuxer::new(FlvOptions::default());
    let header = flv.push(&media::MediaEvent::VideoConfig(cfg)).unwrap();
    let au = media::AccessUnit { codec: media::Codec::H264, pts: 0, dts: 0, key: true, data: vec![0, 0, 0, 1, 0x65, 0x88].into() };
    let frame = flv.push(&media::MediaEvent::Frame(au)).unwrap();
    let seeds = [header.body().to_vec(), frame.body().to_vec(), vec![0xAF, 0, 0x12, 0x10], vec![0xAF, 1, 0x21, 0x10, 0x04]];
    let whole = |seg: &[u8]| {
        let mut i = 0;
        while i < seg.len() {
            let size = u32::from_be_bytes(seg[i..i + 4].try_into().unwrap()) as usize;
            assert!(size >= 8 && i + size <= seg.len());
            i += size;
        }
    };
    let mut m = Mutator::new(11);
    let mut mux = Fmp4Muxer::new();
    for round in 0..ROUNDS {
        let seed = &seeds[round % seeds.len()];
        let body = m.mutate(&[seed]);
        let kind = if round % 4 < 2 { TagKind::Video } else { TagKind::Audio };
        mux.push_flv(&media::flv::FlvTag::new(kind, round as u32 * 40, round % 8 == 1, round % 4 % 2 == 0, &body));
        if let Some(init) = mux.take_init_segment() {
            whole(&init);
        }
        if let Some(f) = mux.take_fragment() {
            whole(&f);
        }
    }
}

#[test]
fn multipart_reader_never_panics_and_stays_bounded() {
    let mut seed = b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: 6\r\n\r\n\xff\xd8ab\xff\xd9\r\n".to_vec();
    seed.extend_from_slice(b"--frame\nX-Timestamp: 1\n\n\xff\xd8cd\xff\xd9\r\nframe\r\n\r\n\xff\xd8\xff\xd9\r\n--frame--\r\n");
    let mut m = Mutator::new(9);
    for _ in 0..ROUNDS {
        let input = m.mutate(&[&seed]);
        let mut r = media::multipart::MultipartReader::new("frame", 64, 128);
        let mut split = media::jpeg::JpegSplitter::new(64);
        for chunk in input.chunks(7) {
            for part in r.push(chunk).into_iter().flatten() {
                assert!(part.body.len() <= 64 + 16);
                let _ = split.push(&part.body);
            }
            assert!(r.buffered() <= 64 + 128 + 64);
        }
    }
}

#[test]
fn chunked_bodies_flv_streams_and_jpeg_headers_never_panic() {
    let chunked = b"4\r\nWiki\r\n6;ext=1\r\npedia \r\n0\r\nX-Trailer: 1\r\n\r\n".to_vec();
    let mut muxer = media::flv::FlvMuxer::new(media::flv::FlvOptions::default());
    let cfg = media::VideoConfig {
        codec: media::es::Codec::H264,
        width: 64,
        height: 48,
        fps: None,
        record: bytes::Bytes::from_static(&[1, 100, 0, 10]),
    };
    let mut flv = media::flv::file_header(false, true).to_vec();
    flv.extend_from_slice(&muxer.push(&media::MediaEvent::VideoConfig(cfg)).unwrap().wire);
    let jpeg = include_bytes!("../../tests/fixtures/jpeg/red_64x48.jpg").to_vec();
    let mut m = Mutator::new(11);
    for _ in 0..ROUNDS {
        let input = m.mutate(&[&chunked]);
        let mut d = media::chunked::Dechunker::new();
        let mut out = 0usize;
        for piece in input.chunks(5) {
            if d.push(piece, &mut |b| out += b.len()).is_err() {
                break;
            }
        }
        assert!(out <= input.len(), "more data out than bytes in");

        let input = m.mutate(&[&flv]);
        let mut r = media::flv::FlvReader::new(1024);
        for piece in input.chunks(7) {
            match r.push(piece) {
                Ok(tags) => assert!(tags.iter().all(|t| t.wire.len() <= 1024 + 15)),
                Err(_) => break,
            }
        }

        let input = m.mutate(&[&jpeg]);
        let _ = media::jpeg::dimensions(&input);
    }
}
