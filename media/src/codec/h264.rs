//! H.264: NAL types, the SPS fields an output needs (size, frame rate, profile) and the
//! AVCDecoderConfigurationRecord (ISO/IEC 14496-15 §5.3.3) that FLV/RTMP carry.

use super::bits::{rbsp, BitReader, Truncated};

pub const NAL_SLICE: u8 = 1;
pub const NAL_IDR: u8 = 5;
pub const NAL_SEI: u8 = 6;
pub const NAL_SPS: u8 = 7;
pub const NAL_PPS: u8 = 8;
pub const NAL_AUD: u8 = 9;

pub fn nal_type(nal: &[u8]) -> u8 {
    nal.first().map_or(0, |h| h & 0x1f)
}

pub fn is_vcl(t: u8) -> bool {
    (1..=5).contains(&t)
}

/// Does this NAL begin a new access unit when one with a slice is already open
/// (H.264 §7.4.1.2.3, simplified to what cameras produce)?
pub fn starts_access_unit(nal: &[u8]) -> bool {
    let t = nal_type(nal);
    match t {
        NAL_SEI | NAL_SPS | NAL_PPS | NAL_AUD | 14..=18 => true,
        // first_mb_in_slice == 0 is ue(v) "1": the first payload bit is set.
        _ if is_vcl(t) => nal.get(1).is_some_and(|b| b & 0x80 != 0),
        _ => false,
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sps {
    pub profile_idc: u8,
    pub constraint_flags: u8,
    pub level_idc: u8,
    pub chroma_format_idc: u32,
    pub bit_depth_luma: u32,
    pub bit_depth_chroma: u32,
    pub width: u32,
    pub height: u32,
    /// From VUI timing, when the camera sends it.
    pub fps: Option<f64>,
}

fn skip_scaling_list(r: &mut BitReader, size: u32) -> Result<(), Truncated> {
    let (mut last, mut next) = (8i64, 8i64);
    for _ in 0..size {
        if next != 0 {
            next = (last + i64::from(r.se()?)).rem_euclid(256);
        }
        if next != 0 {
            last = next;
        }
    }
    Ok(())
}

/// Parses an SPS NAL (header byte included).
pub fn parse_sps(nal: &[u8]) -> Result<Sps, Truncated> {
    let data = rbsp(nal, 1024);
    let mut r = BitReader::new(data.get(1..).ok_or(Truncated)?);
    let profile_idc = r.bits(8)? as u8;
    let constraint_flags = r.bits(8)? as u8;
    let level_idc = r.bits(8)? as u8;
    r.ue()?; // seq_parameter_set_id
    let (mut chroma_format_idc, mut bit_depth_luma, mut bit_depth_chroma) = (1, 8, 8);
    let mut separate_colour_plane = false;
    if matches!(profile_idc, 100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135) {
        chroma_format_idc = r.ue()?;
        if chroma_format_idc == 3 {
            separate_colour_plane = r.flag()?;
        }
        bit_depth_luma = r.ue()?.saturating_add(8);
        bit_depth_chroma = r.ue()?.saturating_add(8);
        r.skip(1)?; // qpprime_y_zero_transform_bypass_flag
        if r.flag()? {
            let lists = if chroma_format_idc == 3 { 12 } else { 8 };
            for i in 0..lists {
                if r.flag()? {
                    skip_scaling_list(&mut r, if i < 6 { 16 } else { 64 })?;
                }
            }
        }
    }
    r.ue()?; // log2_max_frame_num_minus4
    match r.ue()? {
        0 => {
            r.ue()?;
        }
        1 => {
            r.skip(1)?;
            r.se()?;
            r.se()?;
            let cycle = r.ue()?;
            if cycle > 255 {
                return Err(Truncated);
            }
            for _ in 0..cycle {
                r.se()?;
            }
        }
        _ => {}
    }
    r.ue()?; // max_num_ref_frames
    r.skip(1)?; // gaps_in_frame_num_value_allowed_flag
    let width_mbs = r.ue()?.saturating_add(1);
    let height_map_units = r.ue()?.saturating_add(1);
    let frame_mbs_only = r.flag()?;
    if !frame_mbs_only {
        r.skip(1)?;
    }
    r.skip(1)?; // direct_8x8_inference_flag
    let (mut crop_l, mut crop_r, mut crop_t, mut crop_b) = (0, 0, 0, 0);
    if r.flag()? {
        crop_l = r.ue()?;
        crop_r = r.ue()?;
        crop_t = r.ue()?;
        crop_b = r.ue()?;
    }
    let chroma_array_type = if separate_colour_plane { 0 } else { chroma_format_idc };
    let (sub_w, sub_h) = match chroma_array_type {
        1 => (2, 2),
        2 => (2, 1),
        _ => (1, 1),
    };
    let (crop_unit_x, crop_unit_y): (u32, u32) =
        if chroma_array_type == 0 { (1, 2 - u32::from(frame_mbs_only)) } else { (sub_w, sub_h * (2 - u32::from(frame_mbs_only))) };
    // Beyond 16384 pixels it is not a picture any camera sends: treat as garbage.
    if width_mbs > 1024 || height_map_units > 1024 {
        return Err(Truncated);
    }
    let crop_x = crop_unit_x.saturating_mul(crop_l.saturating_add(crop_r));
    let crop_y = crop_unit_y.saturating_mul(crop_t.saturating_add(crop_b));
    let width = (width_mbs * 16).saturating_sub(crop_x);
    let height = ((2 - u32::from(frame_mbs_only)) * height_map_units * 16).saturating_sub(crop_y);
    let fps = if r.flag().unwrap_or(false) { vui_fps(&mut r).ok().flatten() } else { None };
    Ok(Sps { profile_idc, constraint_flags, level_idc, chroma_format_idc, bit_depth_luma, bit_depth_chroma, width, height, fps })
}

fn vui_fps(r: &mut BitReader) -> Result<Option<f64>, Truncated> {
    if r.flag()? && r.bits(8)? == 255 {
        r.skip(32)?; // sar_width, sar_height
    }
    if r.flag()? {
        r.skip(1)?; // overscan_appropriate_flag
    }
    if r.flag()? {
        r.skip(4)?;
        if r.flag()? {
            r.skip(24)?;
        }
    }
    if r.flag()? {
        r.ue()?;
        r.ue()?;
    }
    if r.flag()? {
        let num_units_in_tick = r.bits(32)?;
        let time_scale = r.bits(32)?;
        if num_units_in_tick > 0 && time_scale > 0 {
            return Ok(Some(f64::from(time_scale) / (2.0 * f64::from(num_units_in_tick))));
        }
    }
    Ok(None)
}

/// AVCDecoderConfigurationRecord with 4-byte NAL lengths.
pub fn avc_config(sps: &[u8], pps: &[u8]) -> Option<Vec<u8>> {
    let info = parse_sps(sps).ok()?;
    let sps_len = u16::try_from(sps.len()).ok()?;
    let pps_len = u16::try_from(pps.len()).ok()?;
    let mut out = Vec::with_capacity(16 + sps.len() + pps.len());
    out.extend_from_slice(&[1, info.profile_idc, info.constraint_flags, info.level_idc, 0xFF, 0xE1]);
    out.extend_from_slice(&sps_len.to_be_bytes());
    out.extend_from_slice(sps);
    out.push(1);
    out.extend_from_slice(&pps_len.to_be_bytes());
    out.extend_from_slice(pps);
    if matches!(info.profile_idc, 100 | 110 | 122 | 144) {
        out.push(0xFC | (info.chroma_format_idc & 3) as u8);
        out.push(0xF8 | (info.bit_depth_luma.saturating_sub(8) & 7) as u8);
        out.push(0xF8 | (info.bit_depth_chroma.saturating_sub(8) & 7) as u8);
        out.push(0); // no SPS extensions
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_vectors::H264_SPS_320X240 as SPS_320X240;

    #[test]
    fn sps_size_and_rate() {
        let sps = parse_sps(&SPS_320X240).unwrap();
        assert_eq!((sps.profile_idc, sps.level_idc, sps.width, sps.height), (100, 13, 320, 240));
        assert_eq!(sps.fps, Some(25.0));
    }

    #[test]
    fn truncated_sps_is_an_error() {
        for n in 0..SPS_320X240.len() - 4 {
            let _ = parse_sps(&SPS_320X240[..n]);
        }
        assert!(parse_sps(&SPS_320X240[..6]).is_err());
    }

    #[test]
    fn access_unit_starts() {
        assert!(starts_access_unit(&[0x65, 0x88]));
        assert!(!starts_access_unit(&[0x41, 0x08]));
        assert!(starts_access_unit(&[0x09, 0xf0]));
    }
}
