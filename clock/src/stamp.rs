//! Date-times as text: the GB form devices use (`2026-12-01T10:00:00`, local time, no zone;
//! some stacks write a space for the `T` or add fractions) and RFC 3339 with a zone, which the
//! API takes and gives. Times are whole seconds since the Unix epoch.

use crate::civil::{civil_from_days, days_from_civil, days_in_month};

/// A date-time as written: its seconds as if the wall time were UTC, and the zone's offset in
/// minutes when the text names one (`Z`, `+08:00`, `+0800`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    pub wall_secs: i64,
    pub offset_minutes: Option<i32>,
}

impl Written {
    /// The instant, reading a zoneless time as local time at `default_offset_minutes`.
    pub fn unix_secs(self, default_offset_minutes: i32) -> i64 {
        self.wall_secs - i64::from(self.offset_minutes.unwrap_or(default_offset_minutes)) * 60
    }
}

fn digits(s: &[u8], at: usize, n: usize) -> Option<i64> {
    let part = s.get(at..at + n)?;
    part.iter().try_fold(0i64, |acc, &b| b.is_ascii_digit().then(|| acc * 10 + i64::from(b - b'0')))
}

/// Reads `YYYY-MM-DD[T| ]HH:MM:SS[.fff][Z|±HH:MM|±HHMM]`, surrounding space ignored. `None`
/// for anything else, an impossible date included.
pub fn parse(text: &str) -> Option<Written> {
    let s = text.trim().as_bytes();
    if s.len() < 19 || s.get(4) != Some(&b'-') || s.get(7) != Some(&b'-') || !matches!(s.get(10), Some(b'T' | b't' | b' ')) {
        return None;
    }
    if s.get(13) != Some(&b':') || s.get(16) != Some(&b':') {
        return None;
    }
    let (y, mo, d) = (digits(s, 0, 4)?, digits(s, 5, 2)?, digits(s, 8, 2)?);
    let (h, mi, sec) = (digits(s, 11, 2)?, digits(s, 14, 2)?, digits(s, 17, 2)?);
    if !(1..=12).contains(&mo) || d < 1 || d > i64::from(days_in_month(y, mo as u32)) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut rest = &s[19..];
    if rest.first() == Some(&b'.') {
        let n = rest[1..].iter().take_while(|b| b.is_ascii_digit()).count();
        if n == 0 {
            return None;
        }
        rest = &rest[1 + n..];
    }
    let offset_minutes = match rest {
        [] => None,
        [b'Z' | b'z'] => Some(0),
        [sign @ (b'+' | b'-'), tail @ ..] => {
            let (oh, om) = match tail.len() {
                5 if tail[2] == b':' => (digits(tail, 0, 2)?, digits(tail, 3, 2)?),
                4 => (digits(tail, 0, 2)?, digits(tail, 2, 2)?),
                _ => return None,
            };
            if oh > 18 || om > 59 {
                return None;
            }
            let m = (oh * 60 + om) as i32;
            Some(if *sign == b'-' { -m } else { m })
        }
        _ => return None,
    };
    let wall_secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec.min(59);
    Some(Written { wall_secs, offset_minutes })
}

fn wall(secs: i64) -> String {
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    format!("{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}", sod / 3600, (sod / 60) % 60, sod % 60)
}

/// The GB form of an instant in a zone: `YYYY-MM-DDTHH:MM:SS`, no zone written.
pub fn format_local(unix_secs: i64, offset_minutes: i32) -> String {
    wall(unix_secs + i64::from(offset_minutes) * 60)
}

/// RFC 3339 in UTC: `YYYY-MM-DDTHH:MM:SSZ`.
pub fn format_utc(unix_secs: i64) -> String {
    let mut s = wall(unix_secs);
    s.push('Z');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_forms_devices_and_people_write() {
        let utc = parse("2026-12-01T02:00:00Z").unwrap();
        assert_eq!(utc, Written { wall_secs: 1_796_090_400, offset_minutes: Some(0) });
        // The same instant in China time, three spellings, and a GB device's zoneless text.
        for text in ["2026-12-01T10:00:00+08:00", "2026-12-01T10:00:00+0800", " 2026-12-01 10:00:00.250+08:00 "] {
            assert_eq!(parse(text).unwrap().unix_secs(0), 1_796_090_400, "{text}");
        }
        assert_eq!(parse("2026-12-01T10:00:00").unwrap().unix_secs(480), 1_796_090_400);
        assert_eq!(parse("2026-12-01t10:00:00.5").unwrap().offset_minutes, None);
        assert_eq!(parse("2026-11-30T21:00:00-05:00").unwrap().unix_secs(480), 1_796_090_400);
    }

    #[test]
    fn refuses_what_is_not_a_date_time() {
        for text in [
            "",
            "2026-12-01",
            "2026-13-01T00:00:00",
            "2026-02-29T00:00:00",
            "2026-12-01T24:00:00",
            "2026-12-01X10:00:00",
            "2026-12-01T10:00:00+8",
            "2026-12-01T10:00:00.",
            "2026-12-01T10:00:00 junk",
            "２０２６-12-01T10:00:00",
            "1796090400",
        ] {
            assert_eq!(parse(text), None, "{text:?}");
        }
    }

    #[test]
    fn formats_round_trip() {
        assert_eq!(format_utc(1_796_090_400), "2026-12-01T02:00:00Z");
        assert_eq!(format_local(1_796_090_400, 480), "2026-12-01T10:00:00");
        assert_eq!(format_local(-1, 0), "1969-12-31T23:59:59");
        for secs in [0, 951_782_400, 1_796_090_399] {
            assert_eq!(parse(&format_local(secs, -330)).unwrap().unix_secs(-330), secs);
        }
    }
}
