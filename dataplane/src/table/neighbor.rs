//! A worker's neighbour table: next-hop IPv4 address to MAC.
//!
//! Entries are installed by the control plane ([`crate::msg::Command::NeighborSet`]),
//! which resolves them by ARP. A lookup that misses makes an incomplete entry, so the
//! worker asks the control plane once per `retry` interval and not once per packet. The
//! map is sized at start and never grows on the fast path.

use std::net::Ipv4Addr;

use hashbrown::HashMap;

use crate::time::Instant;
use crate::types::MacAddr;

#[derive(Clone, Copy, Debug)]
struct Entry {
    mac: Option<MacAddr>,
    /// When the worker last asked for resolution (incomplete entries).
    asked_at: Instant,
    /// Until when resolution is known to have failed.
    failed_until: Instant,
}

/// What a lookup found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// Resolved.
    Mac(MacAddr),
    /// Unresolved, and the control plane should be asked now.
    Ask,
    /// Unresolved; the control plane was asked recently.
    Pending,
    /// Resolution failed recently; drop.
    Failed,
    /// Unknown and no room to track it.
    Full,
}

/// Timing of the table.
#[derive(Clone, Copy, Debug)]
pub struct NeighborTiming {
    /// How long to wait before asking again about an unresolved neighbour.
    pub retry_ms: u64,
    /// How long a failed neighbour is not asked about again.
    pub failed_ms: u64,
}

impl Default for NeighborTiming {
    fn default() -> Self {
        NeighborTiming {
            retry_ms: 1000,
            failed_ms: 3000,
        }
    }
}

/// A worker's neighbour table.
#[derive(Debug)]
pub struct NeighborTable {
    map: HashMap<Ipv4Addr, Entry>,
    capacity: usize,
    timing: NeighborTiming,
}

impl NeighborTable {
    /// A table for up to `capacity` neighbours.
    pub fn new(capacity: usize, timing: NeighborTiming) -> Self {
        NeighborTable {
            // Twice the room, so that tombstones never force a reallocation.
            map: HashMap::with_capacity(capacity * 2),
            capacity,
            timing,
        }
    }

    /// Looks `ip` up; on a miss, records that the worker is about to ask.
    #[inline]
    pub fn lookup(&mut self, ip: Ipv4Addr, now: Instant) -> Lookup {
        let full = self.map.len() >= self.capacity;
        match self.map.get_mut(&ip) {
            Some(e) => {
                if let Some(mac) = e.mac {
                    Lookup::Mac(mac)
                } else if now < e.failed_until {
                    Lookup::Failed
                } else if now >= e.asked_at.add_ms(self.timing.retry_ms) {
                    e.asked_at = now;
                    Lookup::Ask
                } else {
                    Lookup::Pending
                }
            }
            None if full => Lookup::Full,
            None => {
                self.map.insert(
                    ip,
                    Entry {
                        mac: None,
                        asked_at: now,
                        failed_until: Instant::ZERO,
                    },
                );
                Lookup::Ask
            }
        }
    }

    /// Forgets that the worker asked about `ip` (the question could not be sent), so the
    /// next lookup asks again.
    pub fn unask(&mut self, ip: Ipv4Addr) {
        if let Some(e) = self.map.get_mut(&ip) {
            e.asked_at = Instant::ZERO;
        }
    }

    /// Installs a resolved neighbour. Returns false if the table is full.
    pub fn set(&mut self, ip: Ipv4Addr, mac: MacAddr) -> bool {
        if let Some(e) = self.map.get_mut(&ip) {
            e.mac = Some(mac);
            return true;
        }
        if self.map.len() >= self.capacity {
            return false;
        }
        self.map.insert(
            ip,
            Entry {
                mac: Some(mac),
                asked_at: Instant::ZERO,
                failed_until: Instant::ZERO,
            },
        );
        true
    }

    /// Marks `ip` failed: lookups say [`Lookup::Failed`] for a while.
    pub fn fail(&mut self, ip: Ipv4Addr, now: Instant) {
        if let Some(e) = self.map.get_mut(&ip) {
            e.mac = None;
            e.failed_until = now.add_ms(self.timing.failed_ms);
        }
    }

    /// Removes `ip`.
    pub fn remove(&mut self, ip: Ipv4Addr) {
        self.map.remove(&ip);
    }

    /// Entries, resolved or not.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
    const MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 9]);

    #[test]
    fn asks_once_per_retry_interval() {
        let mut t = NeighborTable::new(4, NeighborTiming::default());
        let t0 = Instant(1_000_000_000);
        assert_eq!(t.lookup(IP, t0), Lookup::Ask);
        assert_eq!(t.lookup(IP, t0.add_ms(999)), Lookup::Pending);
        assert_eq!(t.lookup(IP, t0.add_ms(1000)), Lookup::Ask);
        assert!(t.set(IP, MAC));
        assert_eq!(t.lookup(IP, t0.add_ms(1001)), Lookup::Mac(MAC));
        t.fail(IP, t0.add_ms(2000));
        assert_eq!(t.lookup(IP, t0.add_ms(4999)), Lookup::Failed);
        assert_eq!(t.lookup(IP, t0.add_ms(5000)), Lookup::Ask);
    }

    #[test]
    fn full_table_refuses_new_entries() {
        let mut t = NeighborTable::new(1, NeighborTiming::default());
        assert_eq!(t.lookup(IP, Instant(1)), Lookup::Ask);
        assert_eq!(
            t.lookup(Ipv4Addr::new(192, 0, 2, 11), Instant(1)),
            Lookup::Full
        );
        assert!(!t.set(Ipv4Addr::new(192, 0, 2, 11), MAC));
        t.remove(IP);
        assert!(t.set(Ipv4Addr::new(192, 0, 2, 11), MAC));
    }
}
