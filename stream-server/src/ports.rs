//! The RTP port range: each receiver takes one port (even, as RTP convention has it) and gives
//! it back when it closes, whatever the reason.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

pub struct PortPool {
    first: u16,
    last: u16,
    used: Mutex<(BTreeSet<u16>, u16)>,
}

/// A port taken from the pool; returned on drop.
pub struct PortLease {
    pool: Arc<PortPool>,
    pub port: u16,
}

impl Drop for PortLease {
    fn drop(&mut self) {
        self.pool.used.lock().unwrap_or_else(|e| e.into_inner()).0.remove(&self.port);
    }
}

impl PortPool {
    pub fn new(first: u16, last: u16) -> Arc<Self> {
        let first = first + (first & 1);
        Arc::new(Self { first, last: last.max(first), used: Mutex::new((BTreeSet::new(), first)) })
    }

    pub fn in_use(&self) -> usize {
        self.used.lock().unwrap_or_else(|e| e.into_inner()).0.len()
    }

    pub fn size(&self) -> usize {
        usize::from((self.last - self.first) / 2 + 1)
    }

    /// Takes a free port for which `try_bind` succeeds (it may be busy outside our control),
    /// round-robin so a just-closed port is not reused at once (late packets of the old stream).
    pub fn take<T>(self: &Arc<Self>, mut try_bind: impl FnMut(u16) -> Option<T>) -> Option<(PortLease, T)> {
        let n = self.size();
        for _ in 0..n {
            let candidate = {
                let mut g = self.used.lock().unwrap_or_else(|e| e.into_inner());
                let mut p = g.1;
                let mut found = None;
                for _ in 0..n {
                    let c = p;
                    p = if p + 2 > self.last { self.first } else { p + 2 };
                    if !g.0.contains(&c) {
                        found = Some(c);
                        break;
                    }
                }
                g.1 = p;
                let c = found?;
                g.0.insert(c);
                c
            };
            let lease = PortLease { pool: self.clone(), port: candidate };
            if let Some(v) = try_bind(candidate) {
                return Some((lease, v));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_are_returned() {
        let pool = PortPool::new(30001, 30006);
        assert_eq!(pool.size(), 3);
        let a = pool.take(Some).unwrap();
        let b = pool.take(|p| if p == 30004 { None } else { Some(p) }).unwrap();
        assert_eq!((a.0.port, b.1), (30002, 30006));
        let c = pool.take(Some).unwrap();
        assert_eq!(c.1, 30004);
        assert!(pool.take(Some).is_none(), "all three taken");
        drop((a, b, c));
        assert_eq!(pool.in_use(), 0);
    }
}
