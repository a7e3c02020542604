//! Pulling video from cameras and NVRs: the clients the media node's pull sources and the NVR
//! pusher share.
//!
//! - `rtsp`: one RTSP pull with `retina` (H.264, H.265, JPEG video; AAC, G.711 audio; digest;
//!   TCP interleaved or UDP), frames turned into FLV tags by `remux` (or whole JPEGs);
//! - `mjpeg_http`: MJPEG over HTTP (`multipart/x-mixed-replace` as network cameras send it):
//!   a streaming HTTP/1.1 client, basic or digest, over `mjpeg_body` (sans I/O: the body,
//!   chunked or not, to pictures, by `media::multipart` or the JPEG markers);
//! - `http_auth`: the `Authorization` that answers an HTTP challenge (basic, digest).

pub mod http_auth;
pub mod mjpeg_body;
pub mod mjpeg_http;
pub mod remux;
pub mod rtsp;
