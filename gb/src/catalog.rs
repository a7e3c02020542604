//! Catalog aggregation. A device answers one Catalog query with several MESSAGEs sharing the
//! SN; `SumNum` is the total. We collect by (device, SN) until the total is reached or a quiet
//! timeout passes, then hand the whole list over. Sans-I/O: time is an argument.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::model::Channel;

#[derive(Debug)]
struct Pending {
    sum_num: u32,
    items: Vec<Channel>,
    deadline: Instant,
}

/// A finished (or timed-out) catalog.
#[derive(Debug, PartialEq)]
pub struct CatalogDone {
    pub device_id: String,
    pub sn: u32,
    pub sum_num: u32,
    pub items: Vec<Channel>,
    /// False when the timeout fired before `sum_num` items arrived.
    pub complete: bool,
}

pub struct CatalogAggregator {
    pending: HashMap<(String, u32), Pending>,
    quiet_timeout: Duration,
    max_items: usize,
    max_pending: usize,
}

impl CatalogAggregator {
    /// `quiet_timeout`: how long after the last page we wait for the rest.
    /// `max_items`: per catalog; `max_pending`: catalogs in flight at once (memory bound).
    pub fn new(quiet_timeout: Duration, max_items: usize, max_pending: usize) -> Self {
        Self { pending: HashMap::new(), quiet_timeout, max_items, max_pending }
    }

    /// Adds one page. Returns the catalog when this page completes it.
    pub fn push(&mut self, now: Instant, device_id: &str, sn: u32, sum_num: u32, items: Vec<Channel>) -> Option<CatalogDone> {
        let key = (device_id.to_owned(), sn);
        if !self.pending.contains_key(&key) && self.pending.len() >= self.max_pending {
            return None;
        }
        let max_items = self.max_items;
        let p = self.pending.entry(key.clone()).or_insert_with(|| Pending {
            sum_num,
            items: Vec::with_capacity((sum_num as usize).min(max_items).min(4096)),
            deadline: now,
        });
        p.sum_num = p.sum_num.max(sum_num);
        let room = max_items.saturating_sub(p.items.len());
        p.items.extend(items.into_iter().take(room));
        p.deadline = now + self.quiet_timeout;
        let target = (p.sum_num as usize).min(max_items);
        if p.items.len() >= target {
            let p = self.pending.remove(&key)?;
            return Some(CatalogDone { device_id: key.0, sn, sum_num: p.sum_num, items: p.items, complete: true });
        }
        None
    }

    /// Catalogs whose quiet timeout passed: handed over with what arrived.
    pub fn expire(&mut self, now: Instant) -> Vec<CatalogDone> {
        let due: Vec<_> = self.pending.iter().filter(|(_, p)| p.deadline <= now).map(|(k, _)| k.clone()).collect();
        due.into_iter()
            .filter_map(|k| {
                let p = self.pending.remove(&k)?;
                Some(CatalogDone { device_id: k.0, sn: k.1, sum_num: p.sum_num, items: p.items, complete: false })
            })
            .collect()
    }

    /// The earliest deadline, for the driver's timer.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.pending.values().map(|p| p.deadline).min()
    }

    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(n: usize) -> Vec<Channel> {
        (0..n).map(|i| Channel { name: Some(format!("c{i}")), ..Default::default() }).collect()
    }

    #[test]
    fn pages_aggregate_to_sum_num() {
        let t0 = Instant::now();
        let mut a = CatalogAggregator::new(Duration::from_secs(3), 10_000, 16);
        for page in 0..99 {
            assert!(a.push(t0, "d", 5, 2000, items(20)).is_none(), "page {page}");
        }
        let done = a.push(t0, "d", 5, 2000, items(20)).unwrap();
        assert!(done.complete);
        assert_eq!(done.items.len(), 2000);
        assert_eq!(a.in_flight(), 0);
    }

    #[test]
    fn same_sn_of_two_devices_is_kept_apart_and_timeout_hands_over_partial() {
        let t0 = Instant::now();
        let mut a = CatalogAggregator::new(Duration::from_secs(3), 10_000, 16);
        a.push(t0, "a", 1, 4, items(2));
        a.push(t0, "b", 1, 4, items(1));
        assert!(a.expire(t0 + Duration::from_secs(2)).is_empty());
        let mut done = a.expire(t0 + Duration::from_secs(3));
        done.sort_by(|x, y| x.device_id.cmp(&y.device_id));
        assert_eq!(done.len(), 2);
        assert_eq!(done[0].items.len(), 2);
        assert!(!done[0].complete);
    }

    #[test]
    fn memory_is_bounded() {
        let t0 = Instant::now();
        let mut a = CatalogAggregator::new(Duration::from_secs(3), 100, 2);
        let done = a.push(t0, "d", 1, u32::MAX, items(500)).unwrap();
        assert_eq!(done.items.len(), 100);
        a.push(t0, "x", 1, 10, items(1));
        a.push(t0, "y", 1, 10, items(1));
        assert!(a.push(t0, "z", 1, 10, items(1)).is_none());
        assert_eq!(a.in_flight(), 2);
    }
}
