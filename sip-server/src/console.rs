//! The web console: a few static files compiled into the binary (no CDN, no build step, works
//! on an air-gapped network), served at `/` and `/console/…`. The pages talk to the API with
//! the bearer token in a header; nothing here is behind the token, because nothing here is
//! data.

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// (file name, content type, bytes).
const ASSETS: &[(&str, &str, &[u8])] = &[
    ("index.html", "text/html; charset=utf-8", include_bytes!("../console/index.html")),
    ("style.css", "text/css; charset=utf-8", include_bytes!("../console/style.css")),
    ("app.js", "text/javascript; charset=utf-8", include_bytes!("../console/app.js")),
    ("api.js", "text/javascript; charset=utf-8", include_bytes!("../console/api.js")),
    ("devices.js", "text/javascript; charset=utf-8", include_bytes!("../console/devices.js")),
    ("live.js", "text/javascript; charset=utf-8", include_bytes!("../console/live.js")),
    ("recordings.js", "text/javascript; charset=utf-8", include_bytes!("../console/recordings.js")),
    ("alarms.js", "text/javascript; charset=utf-8", include_bytes!("../console/alarms.js")),
    ("gallery.js", "text/javascript; charset=utf-8", include_bytes!("../console/gallery.js")),
    ("map.js", "text/javascript; charset=utf-8", include_bytes!("../console/map.js")),
    ("player.js", "text/javascript; charset=utf-8", include_bytes!("../console/player.js")),
    ("cluster.js", "text/javascript; charset=utf-8", include_bytes!("../console/cluster.js")),
    ("lpr.js", "text/javascript; charset=utf-8", include_bytes!("../console/lpr.js")),
    ("nvr.js", "text/javascript; charset=utf-8", include_bytes!("../console/nvr.js")),
    ("sources.js", "text/javascript; charset=utf-8", include_bytes!("../console/sources.js")),
    ("favicon.svg", "image/svg+xml", include_bytes!("../console/favicon.svg")),
];

/// Scripts and styles only from here; media, images and API calls may go to media nodes on
/// other origins (their URLs come from the play answer).
const CSP: &str = "default-src 'self'; img-src 'self' data: blob: http: https:; media-src 'self' blob: http: https:; \
                   connect-src 'self' http: https: ws: wss:; style-src 'self'; script-src 'self'; frame-ancestors 'none'";

pub fn router() -> Router {
    Router::new()
        .route("/", get(|headers: HeaderMap| async move { asset("index.html", &headers) }))
        .route("/console/{file}", get(|Path(file): Path<String>, headers: HeaderMap| async move { asset(&file, &headers) }))
}

fn asset(name: &str, headers: &HeaderMap) -> Response {
    let Some((_, content_type, body)) = ASSETS.iter().find(|(n, _, _)| *n == name) else {
        return (StatusCode::NOT_FOUND, "no such file").into_response();
    };
    // The files change only with the binary: an ETag of their bytes lets browsers revalidate
    // cheaply and never run a stale script after an upgrade.
    let etag = format!("\"{:016x}\"", fnv1a(body));
    if headers.get(header::IF_NONE_MATCH).is_some_and(|v| v.as_bytes() == etag.as_bytes()) {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response();
    }
    let mut r = (*body).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    r
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_is_served_with_its_type_and_revalidates() {
        for (name, ty, body) in ASSETS {
            let r = asset(name, &HeaderMap::new());
            assert_eq!(r.status(), StatusCode::OK, "{name}");
            assert_eq!(r.headers()[header::CONTENT_TYPE], *ty);
            assert!(!body.is_empty());
            let mut again = HeaderMap::new();
            again.insert(header::IF_NONE_MATCH, r.headers()[header::ETAG].clone());
            assert_eq!(asset(name, &again).status(), StatusCode::NOT_MODIFIED, "{name}");
        }
        assert_eq!(asset("../Cargo.toml", &HeaderMap::new()).status(), StatusCode::NOT_FOUND);
    }

    #[test]
    fn every_file_the_page_loads_is_embedded() {
        // A module the page imports but the table lacks would 404 only in a browser.
        let served: Vec<&str> = ASSETS.iter().map(|(n, _, _)| *n).collect();
        for (name, _, body) in ASSETS.iter().filter(|(n, _, _)| n.ends_with(".js") || n.ends_with(".html")) {
            let text = std::str::from_utf8(body).expect("utf-8");
            for part in text.split(['"', '\'']).filter(|p| p.starts_with("./") || p.starts_with("/console/")) {
                let file = part.trim_start_matches("./").trim_start_matches("/console/");
                assert!(served.contains(&file), "{name} loads {part}, which is not embedded");
            }
        }
    }
}
