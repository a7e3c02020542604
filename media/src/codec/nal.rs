//! Annex B byte streams: finding NAL units between start codes.

use std::ops::Range;

/// Position of the next `00 00 01` at or after `from`. SIMD search: this scan runs over every
/// byte of every video frame (twice: access-unit cutting and FLV muxing).
fn next_start_code(data: &[u8], from: usize) -> Option<usize> {
    static FINDER: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(&[0, 0, 1]));
    FINDER.find(data.get(from..)?).map(|i| i + from)
}

/// Appends the ranges of the NAL units in `data` to `out` (start codes excluded; the zero byte
/// of a 4-byte start code and trailing zeros are not part of the NAL before it). Bytes before the
/// first start code are not a NAL and are returned as the count of leading bytes.
pub fn split(data: &[u8], out: &mut Vec<Range<usize>>) -> usize {
    let Some(mut sc) = next_start_code(data, 0) else { return data.len() };
    let mut leading = sc;
    while leading > 0 && data[leading - 1] == 0 {
        leading -= 1;
    }
    loop {
        let start = sc + 3;
        let next = next_start_code(data, start);
        let mut end = next.unwrap_or(data.len());
        while end > start && data[end - 1] == 0 {
            end -= 1;
        }
        if end > start {
            out.push(start..end);
        }
        match next {
            Some(n) => sc = n,
            None => return leading,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_three_and_four_byte_start_codes() {
        let data = [9, 9, 0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 1, 0x65, 0, 0, 3, 1];
        let mut out = Vec::new();
        assert_eq!(split(&data, &mut out), 2);
        let nals: Vec<&[u8]> = out.iter().map(|r| &data[r.clone()]).collect();
        assert_eq!(nals, vec![&[0x67, 1, 2][..], &[0x68, 3][..], &[0x65, 0, 0, 3, 1][..]]);
    }

    #[test]
    fn no_start_code() {
        let mut out = Vec::new();
        assert_eq!(split(&[1, 2, 3, 0, 0], &mut out), 5);
        assert!(out.is_empty());
        assert_eq!(split(&[0, 0, 1], &mut out), 0);
        assert!(out.is_empty());
    }
}
