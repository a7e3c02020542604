//! Media formats as GB devices send them and players take them, sans-I/O: bytes in, values
//! out. The path of a packet through the modules is the order below: `rtp` (packets and the
//! RFC 4571 TCP framing) → `ps` / `ts` (containers) → `es` (elementary-stream frames) →
//! `access_unit` (codec configs and frames, via `codec`) → `flv` (tags) or `fmp4` (segments for
//! browsers). `timeline` keeps output time monotonic when the source jumps (playback seeks,
//! speed, clock resets). `ps_mux` writes PS (the camera simulator's side).

pub mod access_unit;
pub mod annexb;
pub mod chunked;
pub mod codec;
pub mod es;
pub mod flv;
pub mod fmp4;
pub mod jpeg;
pub mod mp4_file;
pub mod multipart;
pub mod ps;
pub mod ps_mux;
pub mod rtp;
#[doc(hidden)]
pub mod test_vectors;
pub mod timeline;
pub mod ts;

pub use access_unit::{AccessUnit, AccessUnitBuilder, AudioConfig, MediaEvent, VideoConfig};
pub use es::{Codec, EsFrame};
