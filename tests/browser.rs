//! What a person sees in a browser: Debian's headless Chromium plays the media node's streams
//! with Media Source Extensions, and the test checks the `<video>` really decodes (its clock
//! moves, its size is the camera's). Screenshots go to `target/screenshots/`.

mod support;

use std::time::Duration;

use gbsim::media::MediaSource;
use support::cdp::Chromium;
use support::{fixture, MediaProc};

/// A page that plays `url` (fragmented MP4) through MSE, the codec string read from the init
/// segment's avcC as a player must, and reports in `window.report`.
fn mse_page(url: &str) -> String {
    format!(
        r#"<!doctype html><html><body style="margin:0;background:#111">
<video id="v" muted autoplay playsinline style="width:640px;height:360px"></video>
<script>
const v = document.getElementById('v');
window.report = {{ appended: 0, error: null }};
function codecs(init) {{
  const at = (s) => {{ for (let i = 0; i + 4 <= init.length; i++) if (String.fromCharCode(...init.slice(i, i + 4)) === s) return i; return -1; }};
  const hex = (b) => b.toString(16).padStart(2, '0');
  const a = at('avcC');
  const video = a >= 0 ? 'avc1.' + hex(init[a + 5]) + hex(init[a + 6]) + hex(init[a + 7]) : 'hvc1.1.6.L93.B0';
  return 'video/mp4; codecs="' + video + (at('mp4a') >= 0 ? ', mp4a.40.2' : '') + '"';
}}
const ms = new MediaSource();
v.src = URL.createObjectURL(ms);
ms.addEventListener('sourceopen', async () => {{
  try {{
    const reader = (await fetch('{url}')).body.getReader();
    let sb = null, queue = [], pending = new Uint8Array(0);
    const pump = () => {{ if (sb && !sb.updating && queue.length) sb.appendBuffer(queue.shift()); }};
    for (;;) {{
      const {{ value, done }} = await reader.read();
      if (done) break;
      if (!sb) {{
        const joined = new Uint8Array(pending.length + value.length);
        joined.set(pending); joined.set(value, pending.length); pending = joined;
        if (String.fromCharCode(...pending).indexOf('mvex') < 0) continue;
        window.report.type = codecs(pending);
        sb = ms.addSourceBuffer(window.report.type);
        sb.addEventListener('updateend', () => {{ window.report.appended++; if (v.paused) v.play().catch(() => {{}}); pump(); }});
        queue.push(pending);
      }} else {{
        queue.push(value);
      }}
      pump();
    }}
  }} catch (e) {{ window.report.error = String(e); }}
}});
v.addEventListener('error', () => {{ window.report.error = v.error && v.error.message; }});
</script></body></html>"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chromium_plays_the_fragmented_mp4_of_a_live_stream() {
    let node = MediaProc::start(None, &[]);
    let src = MediaSource::load(&fixture("h264_640x360_4s.h264"), 25.0, Some(fixture("aac_4s.aac").as_path())).expect("fixture");
    let (stop, sending) = node.feed_looping("browser1", 400_000_001, src, 25).await;

    let page_file = std::env::temp_dir().join(format!("gbc-mse-{}.html", std::process::id()));
    std::fs::write(&page_file, mse_page(&node.url("/live/browser1.mp4"))).unwrap();
    let chromium = Chromium::start();
    let mut page = chromium.open(&format!("file://{}", page_file.display())).await;
    // The clock must move on by at least 2 s of decoded video.
    let start = page
        .wait_for("document.getElementById('v').currentTime > 0.2 && document.getElementById('v').currentTime", Duration::from_secs(15))
        .await;
    let Some(started) = start.as_f64() else {
        page.screenshot("fmp4_live_tile_failed").await;
        panic!("the video never started: {}", page.eval("JSON.stringify(window.report)").await);
    };
    let later = page
        .wait_for(
            &format!("document.getElementById('v').currentTime >= {} && document.getElementById('v').currentTime", started + 2.0),
            Duration::from_secs(10),
        )
        .await;
    let shot = page.screenshot("fmp4_live_tile").await;
    let report = page.eval("JSON.stringify(Object.assign(window.report, {w: document.getElementById('v').videoWidth, h: document.getElementById('v').videoHeight}))").await;
    assert!(later.as_f64().is_some_and(|t| t >= started + 2.0), "currentTime stalled at {started}: {report}");
    let report: serde_json::Value = serde_json::from_str(report.as_str().unwrap()).unwrap();
    assert_eq!((report["w"].as_u64(), report["h"].as_u64()), (Some(640), Some(360)), "{report}");
    assert!(report["error"].is_null(), "{report}");
    assert!(report["type"].as_str().is_some_and(|t| t.starts_with("video/mp4; codecs=\"avc1.") && t.contains("mp4a.40.2")), "{report}");
    assert!(std::fs::metadata(&shot).unwrap().len() > 1000, "a screenshot was saved");
    stop.cancel();
    sending.await.unwrap().unwrap();
    let _ = std::fs::remove_file(page_file);
}
