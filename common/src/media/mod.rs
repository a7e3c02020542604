//! Codec-level handling between the demuxers and the outputs.

pub mod aac;
pub mod access_unit;
pub mod bits;
pub mod h264;
pub mod h265;
pub mod nal;

pub use access_unit::{AccessUnit, AccessUnitBuilder, AudioConfig, MediaEvent, VideoConfig};
