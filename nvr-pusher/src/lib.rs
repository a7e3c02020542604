//! gbcluster's NVR pusher (`shared/specs/nvr-pusher.md`): on a REST call from the web tier it
//! pulls live or recorded video of an NVR channel over RTSP and pushes it as RTMP (through the
//! shared `common::rtmp` publisher), with the vendors' HTTP APIs for record search and PTZ.
//!
//! Landed so far, sans-I/O and tested: `status` (the API's status codes and reply shape),
//! `request` (the six calls' bodies, read strictly enough to answer 600 with what is wrong),
//! and `vendor` (Hikvision / Dahua RTSP live and playback URLs, time formats, PTZ mappings).
//! The RTSP pull, sessions and the HTTP service come next (issue 6).

pub mod request;
pub mod status;
pub mod vendor;
