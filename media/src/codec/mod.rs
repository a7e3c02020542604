//! Codec-level parsing between the demuxers and the outputs: NAL units, parameter sets, ADTS.

pub mod aac;
pub mod bits;
pub mod h264;
pub mod h265;
pub mod nal;
