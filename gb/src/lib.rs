//! GB/T 28181 as bytes and values, sans-I/O: what the sip-server and the camera simulator both
//! speak. `ids` (20-digit ids, SSRCs), `sip` (digest, a light SIP reader, the GB `Date`),
//! `manscdp` (the XML bodies, over the lenient `xml` tree), `sdp`, `catalog` (multi-MESSAGE
//! aggregation), `records` (RecordInfo answers gathered and their device-local times read),
//! `ptz` (annex A.3 commands), `mansrtsp` (playback control in INFO), `model` (what devices report).

pub mod catalog;
pub mod ids;
pub mod manscdp;
pub mod mansrtsp;
pub mod model;
pub mod ptz;
pub mod records;
pub mod sdp;
pub mod sip;
pub mod xml;
