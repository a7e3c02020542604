//! What the NVR pusher reads from the network besides RTSP (retina fuzzes its own parsers):
//! the NVR's ISAPI search answers, Dahua CGI answers and ONVIF SOAP answers, and the web tier's call bodies, fed
//! any bytes; the remuxer fed the frames an RTSP source could deliver. Nothing may panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use nvr_pusher::{dahua, isapi, onvif, remux, request};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(page) = isapi::parse_search(&text) {
        assert!(page.files.iter().all(|f| f.start.to_string().len() == 19));
    }
    let (_, files) = dahua::parse_files(&text);
    assert!(files.len() <= dahua::PAGE * 2);
    let _ = dahua::parse_object(&text);
    let _ = onvif::parse_capabilities(&text);
    let _ = onvif::parse_profiles(&text);
    if let Ok(uri) = onvif::parse_stream_uri(&text) {
        let _ = onvif::reachable_uri(&uri, "127.0.0.1", None);
    }
    let _ = onvif::reachable_uri(&text, "::1", Some(554));
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = request::real_stream(&v);
        let _ = request::back_stream(&v);
        let _ = request::position(&v);
        let _ = request::ptz(&v);
    }
    let _ = request::play_handle(&text);
    // Frames: the first byte picks key/audio, the next four a timestamp, the rest is payload.
    if data.len() > 5 {
        let mut r = remux::Remuxer::default();
        r.set_video(media::VideoConfig {
            codec: media::es::Codec::H264,
            width: 640,
            height: 360,
            fps: None,
            record: bytes::Bytes::copy_from_slice(&data[5..data.len().min(40)]),
        });
        if let Some(a) = remux::audio_config("mpeg4-generic", 44_100, 2, &data[1..3]) {
            r.set_audio(a);
        }
        let mut out = Vec::new();
        let ts = i64::from(i32::from_be_bytes([data[1], data[2], data[3], data[4]]));
        for (i, chunk) in data[5..].chunks(64).enumerate() {
            if data[0] & 1 == 1 && i % 2 == 1 {
                r.audio(ts.wrapping_add(i as i64 * 1024), 44_100, chunk, &mut out);
            } else {
                r.video(i == 0 || data[0] & 2 == 2, ts.wrapping_mul(i as i64), chunk, &mut out);
            }
            if data[0] & 4 == 4 {
                r.discontinuity();
            }
        }
    }
});
