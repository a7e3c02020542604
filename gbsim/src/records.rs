//! The simulated camera's recordings: what a camera recording around the clock to its SD card
//! or NVR would list. Files are a quarter of an hour (`record_file_secs`), kept for `record_days`; one file in
//! sixteen is missing (a gap every four hours, so timelines have holes to show) and one in ten
//! is an alarm recording. Deterministic: the same query always lists the same files, and a
//! playback of any listed instant finds its file.

use gb::model::RecordItem;
use gb::records::RecordType;

/// Seconds in one file, unless configured.
pub const FILE_SECS: i64 = 900;

#[derive(Debug, Clone, Copy)]
pub struct Catalogue {
    /// The camera's local time zone, in which it writes times.
    pub utc_offset_minutes: i32,
    pub days: u32,
    /// Seconds in one file.
    pub file_secs: i64,
}

/// File `k` covers `[k·file_secs, (k+1)·file_secs)`.
fn recorded(k: i64) -> bool {
    k.rem_euclid(16) != 7
}

fn kind(k: i64) -> &'static str {
    if k.rem_euclid(10) == 3 {
        "alarm"
    } else {
        "time"
    }
}

impl Catalogue {
    /// The files of `channel` overlapping `[start, end)` (Unix seconds) of type `want`, among
    /// those finished by `now`.
    pub fn files(&self, channel: &str, name: &str, start: i64, end: i64, want: RecordType, now: i64) -> Vec<RecordItem> {
        let oldest = now - i64::from(self.days) * 86_400;
        let (from, to) = (start.max(oldest), end.min(now));
        if from >= to {
            return Vec::new();
        }
        (from.div_euclid(self.file_secs)..=(to - 1).div_euclid(self.file_secs))
            .filter(|&k| recorded(k) && (k + 1) * self.file_secs <= now)
            .filter(|&k| match want {
                RecordType::All => true,
                RecordType::Time | RecordType::Alarm => want.as_str() == kind(k),
                RecordType::Manual => false,
            })
            .map(|k| RecordItem {
                device_id: Some(channel.to_owned()),
                name: Some(name.to_owned()),
                file_path: Some(format!("/sd/{channel}/{k}.ps")),
                address: Some("gbsim".into()),
                start_time: Some(kit::clock::stamp::format_local(k * self.file_secs, self.utc_offset_minutes)),
                end_time: Some(kit::clock::stamp::format_local((k + 1) * self.file_secs, self.utc_offset_minutes)),
                secrecy: Some(0),
                record_type: Some(kind(k).into()),
                recorder_id: Some(channel.to_owned()),
                file_size: Some(self.file_secs.max(0) as u64 * 250_000),
            })
            .collect()
    }

    /// Whether `at` (Unix seconds) falls in a recorded file.
    pub fn covers(&self, at: i64, now: i64) -> bool {
        let k = at.div_euclid(self.file_secs);
        at >= now - i64::from(self.days) * 86_400 && (k + 1) * self.file_secs <= now && recorded(k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_796_090_400; // 2026-12-01T02:00:00Z, a file boundary

    #[test]
    fn a_day_lists_quarter_hours_with_gaps_and_alarms() {
        let c = Catalogue { utc_offset_minutes: 480, days: 7, file_secs: FILE_SECS };
        let all = c.files("ch", "门", NOW - 86_400, NOW, RecordType::All, NOW);
        assert_eq!(all.len(), 96 - 6, "96 quarter hours less one in sixteen");
        assert_eq!(all[0].start_time.as_deref(), Some("2026-11-30T10:00:00"), "local time, UTC+8");
        let alarms = c.files("ch", "门", NOW - 86_400, NOW, RecordType::Alarm, NOW);
        assert!(!alarms.is_empty() && alarms.iter().all(|i| i.record_type.as_deref() == Some("alarm")));
        let times = c.files("ch", "门", NOW - 86_400, NOW, RecordType::Time, NOW);
        assert_eq!(alarms.len() + times.len(), all.len());
        assert!(c.files("ch", "门", NOW - 86_400, NOW, RecordType::Manual, NOW).is_empty());
    }

    #[test]
    fn only_finished_files_within_retention_overlapping_the_span() {
        let c = Catalogue { utc_offset_minutes: 0, days: 1, file_secs: FILE_SECS };
        // A span inside one file lists that file whole.
        let one = c.files("ch", "n", NOW - 1700, NOW - 1600, RecordType::All, NOW);
        assert_eq!(one.len(), 1);
        assert_eq!((one[0].start_time.as_deref(), one[0].end_time.as_deref()), (Some("2026-12-01T01:30:00"), Some("2026-12-01T01:45:00")));
        assert!(c.files("ch", "n", NOW - 800, NOW - 700, RecordType::All, NOW).is_empty(), "01:45 is a gap (file 16k+7)");
        assert!(c.files("ch", "n", NOW - 100, NOW + 900, RecordType::All, NOW - 100).is_empty(), "the file being written is not listed");
        assert!(c.files("ch", "n", NOW - 3 * 86_400, NOW - 2 * 86_400, RecordType::All, NOW).is_empty(), "older than retention");
        assert!(c.covers(NOW - 1000, NOW) && !c.covers(NOW - 10, NOW) && !c.covers(NOW + 10, NOW));
    }
}
