//! The cache of the current GOP that lets a new viewer start at once on a key frame, bounded in
//! bytes: the hub keeps one of FLV tags, the fMP4 feed one of fragments.

/// Items since the last key one (that one first), at most `max_bytes` after it.
#[derive(Debug)]
pub struct GopCache<T> {
    items: Vec<T>,
    bytes: usize,
    /// The GOP outgrew the bound: nothing cached until the next key item.
    overflow: bool,
    max_bytes: usize,
}

impl<T: Clone> GopCache<T> {
    pub fn new(max_bytes: usize) -> Self {
        Self { items: Vec::new(), bytes: 0, overflow: false, max_bytes }
    }

    /// Takes the next item: a key one starts the GOP again; one that takes the GOP past the
    /// bound empties it until the next key item; one before any key item is not kept.
    pub fn push(&mut self, item: &T, key: bool, len: usize) {
        if key {
            self.items.clear();
            self.overflow = false;
            self.bytes = len;
            self.items.push(item.clone());
        } else if !self.items.is_empty() && !self.overflow {
            self.bytes += len;
            if self.bytes > self.max_bytes {
                self.items.clear();
                self.bytes = 0;
                self.overflow = true;
            } else {
                self.items.push(item.clone());
            }
        }
    }

    /// Forgets the GOP (a new configuration: what is cached belongs to the old one).
    pub fn clear(&mut self) {
        self.items.clear();
        self.bytes = 0;
    }

    pub fn items(&self) -> &[T] {
        &self.items
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gop_starts_at_a_key_item_and_is_dropped_past_the_bound_until_the_next() {
        let mut c = GopCache::new(25);
        c.push(&0, false, 10);
        assert!(c.items().is_empty(), "nothing before a key item");
        c.push(&1, true, 10);
        c.push(&2, false, 10);
        assert_eq!(c.items(), [1, 2]);
        c.push(&3, false, 10);
        assert!(c.items().is_empty(), "30 bytes > 25: dropped");
        c.push(&4, false, 1);
        assert!(c.items().is_empty(), "and nothing until the next key item");
        c.push(&5, true, 10);
        assert_eq!(c.items(), [5]);
        c.clear();
        c.push(&6, false, 1);
        assert!(c.items().is_empty());
    }
}
