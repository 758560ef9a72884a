//! Longest-prefix match for IPv4 routes: a 16-8-8 multibit trie.
//!
//! A direct 65536-entry table resolves every prefix up to /16 in one load; longer
//! prefixes extend a slot into a 256-entry group for bits 15..8, and /25 to /32 into a
//! second group for bits 7..0 (DPDK's `rte_lpm` with a smaller first level). The table is
//! built once by the control plane, inside an immutable forwarding snapshot, and only
//! read by workers.

use std::net::Ipv4Addr;

const EXTENDED: u32 = 1 << 31;
const GROUP: usize = 256;

/// An immutable IPv4 LPM table mapping prefixes to `u32` values (next-hop indexes).
#[derive(Clone)]
pub struct Lpm {
    tbl16: Box<[u32]>,
    groups: Vec<u32>,
}

impl std::fmt::Debug for Lpm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Lpm({} groups)", self.groups.len() / GROUP)
    }
}

impl Lpm {
    /// Builds the table. Values must be below 2^31 - 1. When the same prefix appears twice,
    /// the later one wins. Host bits set in a prefix are ignored.
    pub fn build(routes: &[(Ipv4Addr, u8, u32)]) -> Lpm {
        let mut sorted: Vec<(u32, u8, u32)> = routes
            .iter()
            .map(|&(a, len, v)| {
                let len = len.min(32);
                let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
                (u32::from(a) & mask, len, v)
            })
            .collect();
        // Shorter prefixes first, so a longer one always overwrites; stable keeps "later
        // wins" for duplicates.
        sorted.sort_by_key(|&(_, len, _)| len);
        let mut lpm = Lpm {
            tbl16: vec![0u32; 1 << 16].into_boxed_slice(),
            groups: Vec::new(),
        };
        for (addr, len, v) in sorted {
            debug_assert!(v < EXTENDED - 1);
            lpm.insert(addr, len, v + 1);
        }
        lpm
    }

    fn insert(&mut self, addr: u32, len: u8, entry: u32) {
        let hi = (addr >> 16) as usize;
        if len <= 16 {
            let n = 1usize << (16 - len);
            self.tbl16[hi..hi + n].fill(entry);
            return;
        }
        let g = self.extend_slot(Slot::Tbl16(hi));
        let mid = ((addr >> 8) & 0xff) as usize;
        if len <= 24 {
            let n = 1usize << (24 - len);
            self.groups[g * GROUP + mid..g * GROUP + mid + n].fill(entry);
            return;
        }
        let g2 = self.extend_slot(Slot::Group(g * GROUP + mid));
        let lo = (addr & 0xff) as usize;
        let n = 1usize << (32 - len);
        self.groups[g2 * GROUP + lo..g2 * GROUP + lo + n].fill(entry);
    }

    /// Makes the slot point to a group (filled with the slot's old value) and returns the
    /// group's index.
    fn extend_slot(&mut self, slot: Slot) -> usize {
        let cur = match slot {
            Slot::Tbl16(i) => self.tbl16[i],
            Slot::Group(i) => self.groups[i],
        };
        if cur & EXTENDED != 0 {
            return (cur & !EXTENDED) as usize;
        }
        let g = self.groups.len() / GROUP;
        self.groups.extend(std::iter::repeat_n(cur, GROUP));
        let ext = EXTENDED | g as u32;
        match slot {
            Slot::Tbl16(i) => self.tbl16[i] = ext,
            Slot::Group(i) => self.groups[i] = ext,
        }
        g
    }

    /// The value of the longest prefix covering `ip`.
    #[inline]
    pub fn lookup(&self, ip: Ipv4Addr) -> Option<u32> {
        let ip = u32::from(ip);
        let mut e = self.tbl16.get((ip >> 16) as usize).copied().unwrap_or(0);
        if e & EXTENDED != 0 {
            let i = (e & !EXTENDED) as usize * GROUP + ((ip >> 8) & 0xff) as usize;
            e = self.groups.get(i).copied().unwrap_or(0);
            if e & EXTENDED != 0 {
                let i = (e & !EXTENDED) as usize * GROUP + (ip & 0xff) as usize;
                e = self.groups.get(i).copied().unwrap_or(0);
            }
        }
        e.checked_sub(1)
    }
}

enum Slot {
    Tbl16(usize),
    Group(usize),
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn longest_prefix_wins_at_every_level() {
        let lpm = Lpm::build(&[
            (ip("0.0.0.0"), 0, 0),
            (ip("10.0.0.0"), 8, 1),
            (ip("10.1.0.0"), 16, 2),
            (ip("10.1.2.0"), 24, 3),
            (ip("10.1.2.128"), 25, 4),
            (ip("10.1.2.200"), 32, 5),
            (ip("10.1.0.0"), 20, 6),
        ]);
        assert_eq!(lpm.lookup(ip("8.8.8.8")), Some(0));
        assert_eq!(lpm.lookup(ip("10.9.9.9")), Some(1));
        assert_eq!(lpm.lookup(ip("10.1.200.1")), Some(2));
        assert_eq!(lpm.lookup(ip("10.1.3.1")), Some(6));
        assert_eq!(lpm.lookup(ip("10.1.2.1")), Some(3));
        assert_eq!(lpm.lookup(ip("10.1.2.129")), Some(4));
        assert_eq!(lpm.lookup(ip("10.1.2.200")), Some(5));
        assert_eq!(lpm.lookup(ip("10.1.2.201")), Some(4));
        assert_eq!(
            Lpm::build(&[(ip("10.0.0.0"), 8, 1)]).lookup(ip("11.0.0.1")),
            None
        );
    }

    fn naive(routes: &[(Ipv4Addr, u8, u32)], a: Ipv4Addr) -> Option<u32> {
        let mut best: Option<(u8, u32)> = None;
        for &(p, len, v) in routes {
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            if u32::from(a) & mask == u32::from(p) & mask && best.is_none_or(|(l, _)| len >= l) {
                best = Some((len, v));
            }
        }
        best.map(|(_, v)| v)
    }

    proptest! {
        #[test]
        fn matches_a_linear_scan(
            routes in proptest::collection::vec((any::<u32>(), 0u8..=32, 0u32..1000), 0..40),
            probes in proptest::collection::vec(any::<u32>(), 50),
        ) {
            let routes: Vec<_> = routes.into_iter().map(|(a, l, v)| (Ipv4Addr::from(a), l, v)).collect();
            let lpm = Lpm::build(&routes);
            for p in probes.iter().copied().chain(routes.iter().map(|r| u32::from(r.0))) {
                let a = Ipv4Addr::from(p);
                prop_assert_eq!(lpm.lookup(a), naive(&routes, a), "{}", a);
            }
        }
    }
}
