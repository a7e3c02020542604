//! A file over HTTP with single `Range` requests (RFC 9110): what players and download
//! managers use to seek in, or resume, a download. The body is read in 64 KiB pieces as the
//! client takes them, so a large file costs one buffer per connection.

use std::path::Path;

use axum::body::Body;
use axum::http::{header, StatusCode};
use axum::response::Response;
use kit::http::ByteRange;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

const PIECE: usize = 64 << 10;

/// The response for `path` (`None` if it cannot be opened), served as `name`.
pub async fn serve(path: &Path, range: Option<&str>, name: &str) -> Option<Response> {
    let mut file = tokio::fs::File::open(path).await.ok()?;
    let len = file.metadata().await.ok()?.len();
    let builder = Response::builder()
        .header(header::CONTENT_TYPE, "video/mp4")
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\""));
    let (status, start, count) = match kit::http::byte_range(range, len) {
        ByteRange::Whole => (StatusCode::OK, 0, len),
        ByteRange::Part { start, end } => (StatusCode::PARTIAL_CONTENT, start, end - start + 1),
        ByteRange::Unsatisfiable => {
            return builder
                .status(StatusCode::RANGE_NOT_SATISFIABLE)
                .header(header::CONTENT_RANGE, format!("bytes */{len}"))
                .body(Body::empty())
                .ok();
        }
    };
    if start > 0 {
        file.seek(std::io::SeekFrom::Start(start)).await.ok()?;
    }
    let pieces = futures::stream::unfold((file, count), |(mut file, left)| async move {
        if left == 0 {
            return None;
        }
        let mut buf = vec![0u8; PIECE.min(left as usize)];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(bytes::Bytes::from(buf)), (file, left - n as u64)))
            }
            Err(e) => Some((Err(e), (file, 0))),
        }
    });
    let mut b = builder.status(status).header(header::CONTENT_LENGTH, count);
    if status == StatusCode::PARTIAL_CONTENT {
        b = b.header(header::CONTENT_RANGE, format!("bytes {start}-{}/{len}", start + count - 1));
    }
    b.body(Body::from_stream(pieces)).ok()
}
