//! Gate decisions: a lane group's whitelist (with enable flag and validity window), blacklist
//! entries (`need_alarm`), and its policy. Pure functions over the entries, so the rules are
//! testable without a Store.

use serde::{Deserialize, Serialize};

use crate::proto::WhiteListEntry;

/// What a lane group does with a plate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// Open for plates on the whitelist (enabled, within their window).
    #[default]
    OpenWhitelisted,
    /// Open for every vehicle except blacklisted plates.
    OpenAll,
    /// Never open automatically (an operator opens).
    Never,
}

/// Why the gate did or did not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Whitelisted,
    OpenAll,
    Blacklisted,
    NotListed,
    /// On the list but disabled or outside its window.
    NotValidNow,
    PolicyNever,
    NoPlate,
    /// A stored record resent by the camera: the vehicle is long gone.
    OfflineRecord,
}

impl Verdict {
    pub fn opens(self) -> bool {
        matches!(self, Verdict::Whitelisted | Verdict::OpenAll)
    }
}

/// `YYYY-MM-DD HH:MM:SS` in the site's local time → Unix ms.
pub fn parse_local_time(s: &str, utc_offset_minutes: i32) -> Option<u64> {
    let s = s.trim();
    let (d, t) = s.split_once([' ', 'T'])?;
    let mut dp = d.split('-').map(|x| x.parse::<i64>().ok());
    let (y, m, day) = (dp.next()??, dp.next()??, dp.next()??);
    let mut tp = t.split(':').map(|x| x.parse::<i64>().ok());
    let (h, mi, se) = (tp.next()??, tp.next()??, tp.next().flatten().unwrap_or(0));
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let days = kit::clock::civil::days_from_civil(y, m, day);
    let secs = days * 86_400 + h * 3600 + mi * 60 + se - i64::from(utc_offset_minutes) * 60;
    u64::try_from(secs).ok().map(|s| s * 1000)
}

/// Whether an entry applies at `now_ms`.
pub fn valid_at(e: &WhiteListEntry, now_ms: u64, utc_offset_minutes: i32) -> bool {
    if e.enable == 0 {
        return false;
    }
    let from = e.enable_time.as_deref().filter(|s| !s.is_empty()).and_then(|s| parse_local_time(s, utc_offset_minutes));
    let until = e.overdue_time.as_deref().filter(|s| !s.is_empty()).and_then(|s| parse_local_time(s, utc_offset_minutes));
    from.is_none_or(|f| now_ms >= f) && until.is_none_or(|u| now_ms <= u)
}

/// The decision for a live passage: `entry` is the group's entry for the plate, if any.
pub fn decide(policy: Policy, plate: Option<&str>, entry: Option<&WhiteListEntry>, now_ms: u64, utc_offset_minutes: i32) -> Verdict {
    let valid = entry.filter(|e| valid_at(e, now_ms, utc_offset_minutes));
    if valid.is_some_and(|e| e.need_alarm == 1) {
        return Verdict::Blacklisted;
    }
    match policy {
        Policy::Never => Verdict::PolicyNever,
        Policy::OpenAll => Verdict::OpenAll,
        Policy::OpenWhitelisted => match (plate, valid, entry) {
            (None, _, _) => Verdict::NoPlate,
            (_, Some(_), _) => Verdict::Whitelisted,
            (_, None, Some(_)) => Verdict::NotValidNow,
            (_, None, None) => Verdict::NotListed,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(enable: u8, alarm: u8, from: Option<&str>, until: Option<&str>) -> WhiteListEntry {
        WhiteListEntry {
            plate: "京A12345".into(),
            enable,
            need_alarm: alarm,
            enable_time: from.map(Into::into),
            overdue_time: until.map(Into::into),
        }
    }

    #[test]
    fn local_times() {
        assert_eq!(parse_local_time("2023-11-14 22:13:20", 0), Some(1_700_000_000_000));
        assert_eq!(parse_local_time("2023-11-15 06:13:20", 480), Some(1_700_000_000_000));
        assert_eq!(parse_local_time("2000-02-29 00:00:00", 0), Some(951_782_400_000));
        assert_eq!(parse_local_time("2023-13-01 00:00:00", 0), None);
        assert_eq!(parse_local_time("garbage", 0), None);
        assert_eq!(parse_local_time("1969-12-31 23:59:59", 0), None);
    }

    #[test]
    fn decisions() {
        let now = 1_700_000_000_000; // 2023-11-15 06:13:20 at +8
        let w = Policy::OpenWhitelisted;
        assert_eq!(decide(w, Some("京A12345"), Some(&e(1, 0, None, None)), now, 480), Verdict::Whitelisted);
        assert_eq!(decide(w, Some("京A12345"), Some(&e(0, 0, None, None)), now, 480), Verdict::NotValidNow);
        assert_eq!(decide(w, Some("京A12345"), Some(&e(1, 0, Some("2023-11-16 00:00:00"), None)), now, 480), Verdict::NotValidNow);
        assert_eq!(decide(w, Some("京A12345"), Some(&e(1, 0, None, Some("2023-11-15 06:00:00"))), now, 480), Verdict::NotValidNow);
        assert_eq!(
            decide(w, Some("京A12345"), Some(&e(1, 0, Some("2023-11-15 06:00:00"), Some("2023-11-15 07:00:00"))), now, 480),
            Verdict::Whitelisted
        );
        assert_eq!(decide(w, Some("京B1"), None, now, 480), Verdict::NotListed);
        assert_eq!(decide(w, None, None, now, 480), Verdict::NoPlate);
        assert_eq!(decide(Policy::OpenAll, Some("京B1"), None, now, 480), Verdict::OpenAll);
        assert_eq!(decide(Policy::OpenAll, Some("京A12345"), Some(&e(1, 1, None, None)), now, 480), Verdict::Blacklisted);
        assert_eq!(decide(w, Some("京A12345"), Some(&e(1, 1, None, None)), now, 480), Verdict::Blacklisted);
        assert_eq!(decide(Policy::Never, Some("京A12345"), Some(&e(1, 0, None, None)), now, 480), Verdict::PolicyNever);
        assert!(Verdict::Whitelisted.opens() && Verdict::OpenAll.opens() && !Verdict::Blacklisted.opens());
    }
}
