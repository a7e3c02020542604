//! GB/T 28181 helpers over SIP: digest auth, the GB `Date` header, and small header utilities.

pub mod digest;
pub mod lite;

use clock::civil::civil_from_days;

/// The GB `Date` header value, `YYYY-MM-DDTHH:MM:SS.mmm` in the given UTC offset: cameras set
/// their clocks from it as local time.
pub fn gb_date(unix_ms: u64, utc_offset_minutes: i32) -> String {
    let ms = unix_ms as i64 + i64::from(utc_offset_minutes) * 60_000;
    let secs = ms.div_euclid(1000);
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    format!("{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{:03}", sod / 3600, (sod / 60) % 60, sod % 60, ms.rem_euclid(1000))
}

/// The user part of a `sip:user@host` URI or name-addr, if any.
pub fn uri_user(uri: &str) -> Option<&str> {
    let start = uri.find("sip:").map(|i| i + 4).or_else(|| uri.find("sips:").map(|i| i + 5))?;
    let rest = &uri[start..];
    let end = rest.find('@')?;
    Some(&rest[..end])
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gb_date_formats_in_china_time() {
        // 2026-11-21T00:34:41.123Z is 08:34:41.123 in UTC+8.
        assert_eq!(gb_date(1_795_221_281_123, 480), "2026-11-21T08:34:41.123");
        assert_eq!(gb_date(0, 0), "1970-01-01T00:00:00.000");
        assert_eq!(gb_date(951_782_400_000, 0), "2000-02-29T00:00:00.000");
    }

    #[test]
    fn uri_user_extracts() {
        assert_eq!(uri_user("<sip:34020000001320000001@192.168.1.2:5060>;tag=1"), Some("34020000001320000001"));
        assert_eq!(uri_user("sip:3402000000"), None);
    }
}
