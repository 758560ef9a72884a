//! A worker's neighbour table: next-hop IPv4 address to MAC.
//!
//! Entries are installed by the control plane ([`crate::msg::Command::NeighborSet`]),
//! which resolves them by ARP. A lookup that misses makes an incomplete entry, so the
//! worker asks the control plane once per `retry` interval and not once per packet. The
//! map is sized at start and never grows on the fast path.
//!
//! In front of the map, a small direct-mapped cache of resolved neighbours makes the
//! common lookup one compare (next hops are few: the core's gateways, the servers). A
//! lookup that finds a MAC fills its slot; any change to an address empties its slot.

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

/// Slots of the resolved-neighbour cache (a power of two).
const CACHE_SLOTS: usize = 64;

/// The cache slot of `ip`: the top bits of a multiplicative (Fibonacci) hash.
#[inline(always)]
fn cache_slot(ip: Ipv4Addr) -> usize {
    (u32::from(ip).wrapping_mul(0x9e37_79b9) >> (32 - CACHE_SLOTS.trailing_zeros())) as usize
}

/// A worker's neighbour table.
#[derive(Debug)]
pub struct NeighborTable {
    map: HashMap<Ipv4Addr, Entry>,
    /// Resolved neighbours by [`cache_slot`]; each is in `map` with this MAC.
    cache: [Option<(Ipv4Addr, MacAddr)>; CACHE_SLOTS],
    capacity: usize,
    timing: NeighborTiming,
}

impl NeighborTable {
    /// Bytes a table for `capacity` neighbours allocates (a hash map with room for
    /// twice as many), for sizing before anything is allocated.
    pub fn bytes_for(capacity: usize) -> usize {
        // hashbrown: a power of two of buckets at a load of 7/8, a control byte each.
        let buckets = (capacity.saturating_mul(2).saturating_mul(8) / 7)
            .max(4)
            .checked_next_power_of_two()
            .unwrap_or(usize::MAX);
        buckets.saturating_mul(std::mem::size_of::<(Ipv4Addr, Entry)>() + 1)
    }

    /// A table for up to `capacity` neighbours.
    pub fn new(capacity: usize, timing: NeighborTiming) -> Self {
        NeighborTable {
            // Twice the room, so that tombstones never force a reallocation.
            map: HashMap::with_capacity(capacity * 2),
            cache: [None; CACHE_SLOTS],
            capacity,
            timing,
        }
    }

    /// Looks `ip` up; on a miss, records that the worker is about to ask.
    #[inline(always)]
    pub fn lookup(&mut self, ip: Ipv4Addr, now: Instant) -> Lookup {
        let slot = cache_slot(ip);
        if let Some((cached, mac)) = self.cache[slot]
            && cached == ip
        {
            return Lookup::Mac(mac);
        }
        self.lookup_map(ip, slot, now)
    }

    /// The lookup past the cache (kept out of line so the hit stays small).
    #[inline(never)]
    fn lookup_map(&mut self, ip: Ipv4Addr, slot: usize, now: Instant) -> Lookup {
        let full = self.map.len() >= self.capacity;
        match self.map.get_mut(&ip) {
            Some(e) => {
                if let Some(mac) = e.mac {
                    self.cache[slot] = Some((ip, mac));
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
        self.forget_cached(ip);
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
        self.forget_cached(ip);
        if let Some(e) = self.map.get_mut(&ip) {
            e.mac = None;
            e.failed_until = now.add_ms(self.timing.failed_ms);
        }
    }

    /// Removes `ip`.
    pub fn remove(&mut self, ip: Ipv4Addr) {
        self.forget_cached(ip);
        self.map.remove(&ip);
    }

    /// Empties `ip`'s cache slot if it holds `ip`.
    fn forget_cached(&mut self, ip: Ipv4Addr) {
        let slot = &mut self.cache[cache_slot(ip)];
        if slot.is_some_and(|(cached, _)| cached == ip) {
            *slot = None;
        }
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
    fn the_cache_follows_every_change() {
        let mut t = NeighborTable::new(CACHE_SLOTS * 4, NeighborTiming::default());
        let t0 = Instant(1_000_000_000);
        // More neighbours than cache slots, so slots are shared and overwritten.
        let ips: Vec<Ipv4Addr> = (0..CACHE_SLOTS as u32 * 3)
            .map(|i| Ipv4Addr::from(0xc000_0200 + i))
            .collect();
        let mac = |i: usize, v: u8| MacAddr([2, 0, 0, v, (i >> 8) as u8, i as u8]);
        for (i, ip) in ips.iter().enumerate() {
            assert!(t.set(*ip, mac(i, 1)));
        }
        for _ in 0..2 {
            for (i, ip) in ips.iter().enumerate() {
                assert_eq!(t.lookup(*ip, t0), Lookup::Mac(mac(i, 1)));
            }
        }
        // A new MAC, a failure and a removal are seen at once, cached or not.
        for (i, ip) in ips.iter().enumerate() {
            match i % 3 {
                0 => assert!(t.set(*ip, mac(i, 2))),
                1 => t.fail(*ip, t0),
                _ => t.remove(*ip),
            }
        }
        for (i, ip) in ips.iter().enumerate() {
            let want = match i % 3 {
                0 => Lookup::Mac(mac(i, 2)),
                1 => Lookup::Failed,
                _ => Lookup::Ask,
            };
            assert_eq!(t.lookup(*ip, t0.add_ms(1)), want, "{ip}");
        }
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
