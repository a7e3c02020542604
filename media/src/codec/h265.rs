//! H.265: NAL types, the SPS fields an output needs and the HEVCDecoderConfigurationRecord
//! (ISO/IEC 14496-15 §8.3.3) that Enhanced RTMP (`hvc1`) carries.

use super::bits::{rbsp, BitReader, Truncated};

pub const NAL_VPS: u8 = 32;
pub const NAL_SPS: u8 = 33;
pub const NAL_PPS: u8 = 34;
pub const NAL_AUD: u8 = 35;
pub const NAL_SEI_PREFIX: u8 = 39;

pub fn nal_type(nal: &[u8]) -> u8 {
    nal.first().map_or(0, |h| (h >> 1) & 0x3f)
}

pub fn is_vcl(t: u8) -> bool {
    t < 32
}

/// IRAP pictures (BLA, IDR, CRA): a decoder can start here.
pub fn is_key(t: u8) -> bool {
    (16..=21).contains(&t)
}

/// Does this NAL begin a new access unit when one with a slice is already open (§7.4.2.4.4)?
pub fn starts_access_unit(nal: &[u8]) -> bool {
    let t = nal_type(nal);
    match t {
        NAL_VPS | NAL_SPS | NAL_PPS | NAL_AUD | NAL_SEI_PREFIX | 41..=44 | 48..=55 => true,
        // first_slice_segment_in_pic_flag is the first bit after the 2-byte header.
        _ if is_vcl(t) => nal.get(2).is_some_and(|b| b & 0x80 != 0),
        _ => false,
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sps {
    /// general_profile_space … general_level_idc: 12 bytes copied as they are into the record.
    pub profile_tier_level: [u8; 12],
    pub max_sub_layers: u8,
    pub temporal_id_nesting: bool,
    pub chroma_format_idc: u32,
    pub bit_depth_luma: u32,
    pub bit_depth_chroma: u32,
    pub width: u32,
    pub height: u32,
}

/// Parses an SPS NAL (2-byte header included).
pub fn parse_sps(nal: &[u8]) -> Result<Sps, Truncated> {
    let data = rbsp(nal, 1024);
    let body = data.get(2..).ok_or(Truncated)?;
    let mut r = BitReader::new(body);
    r.skip(4)?; // sps_video_parameter_set_id
    let max_sub_layers_minus1 = r.bits(3)?;
    let temporal_id_nesting = r.flag()?;
    let profile_tier_level: [u8; 12] = body.get(1..13).ok_or(Truncated)?.try_into().map_err(|_| Truncated)?;
    r.skip(96)?;
    let mut sub_profile = [false; 8];
    let mut sub_level = [false; 8];
    for i in 0..max_sub_layers_minus1 as usize {
        sub_profile[i] = r.flag()?;
        sub_level[i] = r.flag()?;
    }
    if max_sub_layers_minus1 > 0 {
        r.skip(2 * (8 - max_sub_layers_minus1 as usize))?;
    }
    for i in 0..max_sub_layers_minus1 as usize {
        if sub_profile[i] {
            r.skip(88)?;
        }
        if sub_level[i] {
            r.skip(8)?;
        }
    }
    r.ue()?; // sps_seq_parameter_set_id
    let chroma_format_idc = r.ue()?;
    if chroma_format_idc == 3 {
        r.skip(1)?; // separate_colour_plane_flag
    }
    let mut width = r.ue()?;
    let mut height = r.ue()?;
    if width > 16384 || height > 16384 {
        return Err(Truncated);
    }
    if r.flag()? {
        let (sub_w, sub_h) = match chroma_format_idc {
            1 => (2, 2),
            2 => (2, 1),
            _ => (1, 1),
        };
        let (l, rt, t, b) = (r.ue()?, r.ue()?, r.ue()?, r.ue()?);
        width = width.saturating_sub(l.saturating_add(rt).saturating_mul(sub_w));
        height = height.saturating_sub(t.saturating_add(b).saturating_mul(sub_h));
    }
    let bit_depth_luma = r.ue()?.saturating_add(8);
    let bit_depth_chroma = r.ue()?.saturating_add(8);
    Ok(Sps {
        profile_tier_level,
        max_sub_layers: (max_sub_layers_minus1 + 1) as u8,
        temporal_id_nesting,
        chroma_format_idc,
        bit_depth_luma,
        bit_depth_chroma,
        width,
        height,
    })
}

/// HEVCDecoderConfigurationRecord with 4-byte NAL lengths and one VPS, SPS and PPS.
pub fn hevc_config(vps: &[u8], sps: &[u8], pps: &[u8]) -> Option<Vec<u8>> {
    let info = parse_sps(sps).ok()?;
    let mut out = Vec::with_capacity(40 + vps.len() + sps.len() + pps.len());
    out.push(1);
    out.extend_from_slice(&info.profile_tier_level);
    out.extend_from_slice(&[0xF0, 0x00]); // min_spatial_segmentation_idc = 0
    out.push(0xFC); // parallelismType unknown
    out.push(0xFC | (info.chroma_format_idc & 3) as u8);
    out.push(0xF8 | (info.bit_depth_luma.saturating_sub(8) & 7) as u8);
    out.push(0xF8 | (info.bit_depth_chroma.saturating_sub(8) & 7) as u8);
    out.extend_from_slice(&[0, 0]); // avgFrameRate unknown
    out.push(((info.max_sub_layers & 7) << 3) | (u8::from(info.temporal_id_nesting) << 2) | 3);
    out.push(3);
    for (t, nal) in [(NAL_VPS, vps), (NAL_SPS, sps), (NAL_PPS, pps)] {
        out.push(0x80 | t); // array_completeness: parameter sets of this type are only here
        out.extend_from_slice(&1u16.to_be_bytes());
        out.extend_from_slice(&u16::try_from(nal.len()).ok()?.to_be_bytes());
        out.extend_from_slice(nal);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_vectors::{H265_PPS as PPS, H265_SPS_352X288 as SPS, H265_VPS as VPS};

    #[test]
    fn sps_size() {
        let sps = parse_sps(&SPS).unwrap();
        assert_eq!((sps.width, sps.height, sps.chroma_format_idc, sps.max_sub_layers), (352, 288, 3, 1));
        assert_eq!(sps.profile_tier_level[0] & 0x1f, 4); // RExt profile
    }

    #[test]
    fn config_record_layout() {
        let rec = hevc_config(&VPS, &SPS, &PPS).unwrap();
        assert_eq!(rec[0], 1);
        assert_eq!(rec[22], 3); // three arrays
        assert_eq!(rec.len(), 23 + 3 * 5 + VPS.len() + SPS.len() + PPS.len());
        for n in 0..SPS.len() {
            let _ = parse_sps(&SPS[..n]);
        }
    }
}
