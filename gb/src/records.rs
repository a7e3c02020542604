//! `RecordInfo`: the query's record type, and the answer gathered from its MESSAGEs. A device
//! answers one query with as many MESSAGEs as it likes, all with the query's SN; `SumNum` is the
//! total. `RecordSet` collects them up to a bound, then `finish` turns the device-local times
//! into instants with the device's UTC offset, drops what cannot be read, sorts and removes the
//! repeats some devices send. Sans-I/O: the caller drives time-outs.

use serde::{Deserialize, Serialize};

use crate::model::RecordItem;

/// What recordings a query asks for (A.2.4.5 `Type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordType {
    #[default]
    All,
    /// Scheduled, continuous recording.
    Time,
    Alarm,
    Manual,
}

impl RecordType {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordType::All => "all",
            RecordType::Time => "time",
            RecordType::Alarm => "alarm",
            RecordType::Manual => "manual",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_lowercase().as_str() {
            "all" => RecordType::All,
            "time" => RecordType::Time,
            "alarm" => RecordType::Alarm,
            "manual" => RecordType::Manual,
            _ => return None,
        })
    }
}

/// A recording with its span as instants (Unix seconds) and as the device wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recording {
    pub channel_id: Option<String>,
    pub name: Option<String>,
    pub start: i64,
    pub end: i64,
    pub device_start: String,
    pub device_end: String,
    pub record_type: Option<String>,
    pub file_path: Option<String>,
    pub address: Option<String>,
    pub secrecy: Option<u8>,
    pub recorder_id: Option<String>,
    pub file_size: Option<u64>,
}

impl Recording {
    /// `None` when a time is missing or unreadable, or the recording ends before it starts.
    /// A time with a zone (a few devices write one) is read in it; a zoneless one in `offset`.
    pub fn from_item(item: RecordItem, utc_offset_minutes: i32) -> Option<Self> {
        let device_start = item.start_time?;
        let device_end = item.end_time?;
        let start = clock::stamp::parse(&device_start)?.unix_secs(utc_offset_minutes);
        let end = clock::stamp::parse(&device_end)?.unix_secs(utc_offset_minutes);
        if end < start {
            return None;
        }
        Some(Recording {
            channel_id: item.device_id,
            name: item.name,
            start,
            end,
            device_start,
            device_end,
            record_type: item.record_type,
            file_path: item.file_path,
            address: item.address,
            secrecy: item.secrecy,
            recorder_id: item.recorder_id,
            file_size: item.file_size,
        })
    }
}

/// Where gathering stands after a MESSAGE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gathered {
    /// More MESSAGEs are due.
    Partial,
    /// `SumNum` items arrived.
    Complete,
    /// The bound is reached: what follows would be dropped, so stop waiting.
    Full,
}

/// The MESSAGEs of one answer so far.
#[derive(Debug)]
pub struct RecordSet {
    max_items: usize,
    sum_num: u32,
    /// Items the device sent, kept or not.
    received: usize,
    messages: u32,
    items: Vec<RecordItem>,
}

/// A finished answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Records {
    /// The device's `SumNum` (the largest it sent).
    pub sum_num: u32,
    /// Items the device sent (repeats and unreadable ones included).
    pub received: usize,
    pub messages: u32,
    /// Sorted by start, repeats removed.
    pub items: Vec<Recording>,
    /// Items dropped because a time was missing, unreadable or backwards.
    pub unreadable: usize,
    /// More than the bound was announced or sent: `items` is the first part.
    pub truncated: bool,
    /// `SumNum` items arrived (false: the device went quiet before).
    pub complete: bool,
}

impl RecordSet {
    pub fn new(max_items: usize) -> Self {
        Self { max_items: max_items.max(1), sum_num: 0, received: 0, messages: 0, items: Vec::new() }
    }

    pub fn push(&mut self, sum_num: u32, items: Vec<RecordItem>) -> Gathered {
        self.messages += 1;
        self.sum_num = self.sum_num.max(sum_num);
        self.received += items.len();
        let room = self.max_items - self.items.len();
        self.items.extend(items.into_iter().take(room));
        if self.received >= self.sum_num as usize {
            Gathered::Complete
        } else if self.items.len() >= self.max_items {
            Gathered::Full
        } else {
            Gathered::Partial
        }
    }

    /// Whether any MESSAGE arrived.
    pub fn started(&self) -> bool {
        self.messages > 0
    }

    pub fn finish(self, utc_offset_minutes: i32) -> Records {
        let complete = self.messages > 0 && self.received >= self.sum_num as usize;
        let truncated = self.received > self.items.len() || self.sum_num as usize > self.max_items;
        let kept = self.items.len();
        let mut items: Vec<Recording> = self.items.into_iter().filter_map(|i| Recording::from_item(i, utc_offset_minutes)).collect();
        let unreadable = kept - items.len();
        items.sort_by(|a, b| (a.start, a.end, &a.file_path).cmp(&(b.start, b.end, &b.file_path)));
        items.dedup_by(|a, b| (a.start, a.end, &a.file_path, &a.record_type) == (b.start, b.end, &b.file_path, &b.record_type));
        Records { sum_num: self.sum_num, received: self.received, messages: self.messages, items, unreadable, truncated, complete }
    }
}

/// The device's UTC offset as its clock shows it: the minutes between the `DeviceTime` it
/// reported (zoneless local time) and `now`, to the nearest minute (zone plus any skew, which
/// the device's recordings carry too). `None` if the text is unreadable or the offset is beyond
/// any zone (±14 h): that clock is just wrong, and guessing from it would mislead.
pub fn clock_offset_minutes(device_time: &str, now_unix_secs: i64) -> Option<i32> {
    let wall = clock::stamp::parse(device_time)?.wall_secs;
    let minutes = ((wall - now_unix_secs) as f64 / 60.0).round() as i64;
    (minutes.abs() <= 14 * 60).then_some(minutes as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(start: &str, end: &str, path: &str) -> RecordItem {
        RecordItem {
            device_id: Some("34020000001310000001".into()),
            start_time: Some(start.into()),
            end_time: Some(end.into()),
            file_path: Some(path.into()),
            record_type: Some("time".into()),
            ..Default::default()
        }
    }

    #[test]
    fn messages_gather_to_sum_num_then_sort_and_lose_repeats() {
        let mut set = RecordSet::new(10_000);
        assert!(!set.started());
        assert_eq!(set.push(3, vec![item("2026-12-01T11:00:00", "2026-12-01T11:15:00", "b")]), Gathered::Partial);
        // A repeat of the first (some NVRs resend a page), then the rest.
        let page = vec![item("2026-12-01T11:00:00", "2026-12-01T11:15:00", "b"), item("2026-12-01 10:00:00", "2026-12-01 10:15:00", "a")];
        assert_eq!(set.push(3, page), Gathered::Complete);
        let r = set.finish(480);
        assert!(r.complete && !r.truncated);
        assert_eq!((r.sum_num, r.received, r.messages, r.unreadable), (3, 3, 2, 0));
        let spans: Vec<_> = r.items.iter().map(|i| (i.start, i.end, i.file_path.as_deref().unwrap())).collect();
        // 10:00 in UTC+8 is 02:00Z.
        assert_eq!(spans, [(1_796_090_400, 1_796_091_300, "a"), (1_796_094_000, 1_796_094_900, "b")]);
        assert_eq!(r.items[0].device_start, "2026-12-01 10:00:00");
    }

    #[test]
    fn an_empty_answer_is_complete_and_unreadable_items_are_counted() {
        let mut set = RecordSet::new(10);
        assert_eq!(set.push(0, vec![]), Gathered::Complete);
        let r = set.finish(0);
        assert!(r.complete && r.items.is_empty());
        let mut set = RecordSet::new(10);
        let items = vec![
            item("2026-12-01T10:00:00", "2026-12-01T09:00:00", "backwards"),
            item("yesterday", "2026-12-01T09:00:00", "unreadable"),
            RecordItem { start_time: Some("2026-12-01T10:00:00".into()), ..Default::default() },
            item("2026-12-01T10:00:00Z", "2026-12-01T10:00:01Z", "zoned"),
        ];
        assert_eq!(set.push(4, items), Gathered::Complete);
        let r = set.finish(480);
        assert_eq!((r.unreadable, r.items.len()), (3, 1));
        assert_eq!(r.items[0].start, 1_796_119_200, "a zone written by the device wins over its offset");
    }

    #[test]
    fn a_flood_is_bounded_and_said_to_be_truncated() {
        let mut set = RecordSet::new(100);
        let page = || (0..40).map(|i| item("2026-12-01T10:00:00", "2026-12-01T10:15:00", &i.to_string())).collect::<Vec<_>>();
        assert_eq!(set.push(u32::MAX, page()), Gathered::Partial);
        assert_eq!(set.push(u32::MAX, page()), Gathered::Partial);
        assert_eq!(set.push(u32::MAX, page()), Gathered::Full);
        let r = set.finish(0);
        assert!(r.truncated && !r.complete);
        assert_eq!((r.items.len(), r.received), (40, 120), "40 distinct paths kept of 100, 120 sent");
        // A device that sends more than it announced is truncated too.
        let mut set = RecordSet::new(2);
        set.push(1, vec![item("2026-12-01T10:00:00", "2026-12-01T10:15:00", "a"); 3]);
        assert!(set.finish(0).truncated);
    }

    #[test]
    fn the_clock_offset_is_read_from_device_time() {
        let now = 1_796_090_400; // 2026-12-01T02:00:00Z
        assert_eq!(clock_offset_minutes("2026-12-01T10:00:00", now), Some(480));
        assert_eq!(clock_offset_minutes("2026-12-01T10:00:25", now), Some(480), "skew under half a minute");
        assert_eq!(clock_offset_minutes("2026-12-01T02:03:00", now), Some(3), "a skewed UTC clock");
        assert_eq!(clock_offset_minutes("2026-12-01T07:30:00", now - 3600), Some(390));
        assert_eq!(clock_offset_minutes("2000-01-01T00:00:00", now), None, "a clock that was never set");
        assert_eq!(clock_offset_minutes("soon", now), None);
    }
}
