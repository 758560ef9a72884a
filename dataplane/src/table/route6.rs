//! The core side's IPv6 routes (issue 16 item 4): static routes through next hops and
//! connected prefixes whose hosts are reached directly, looked up by longest prefix,
//! and the neighbour MACs they resolve to (next hops and connected hosts alike).
//!
//! The table lives inside the immutable forwarding snapshot; the control plane builds
//! it from `[ipv6]` and publishes a new one when a neighbour's MAC is learnt or changes
//! (it resolves them by NS). Routes are few (the core's routers and server subnets), so
//! the lookup is a binary search per distinct prefix length, longest length first (the
//! "binary search on lengths" layout without the markers): with the usual one to three
//! lengths that is one to three searches in a handful of entries, no allocation, no
//! hashing. A miss is `None`: the caller uses `[ipv6] next_hop`, the default route.

use std::net::Ipv6Addr;

use crate::types::MacAddr;

/// Where a route sends a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target6 {
    /// Through this neighbour (a core router, link-local or global).
    Via(Ipv6Addr),
    /// On the core link: the destination is its own neighbour.
    Connected,
}

/// One route of the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route6 {
    /// Destination prefix (host bits are ignored).
    pub prefix: Ipv6Addr,
    /// Its length, 0 to 128.
    pub len: u8,
    /// Where it goes.
    pub target: Target6,
}

/// What a lookup found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hop6 {
    /// Send to this MAC.
    Mac(MacAddr),
    /// The neighbour (a route's next hop, or a connected destination itself) has no MAC
    /// yet; `connected` when it is a connected host the control plane solicits only
    /// when asked.
    Unresolved {
        /// The neighbour.
        neighbor: Ipv6Addr,
        /// True for a host of a connected prefix (the worker asks for it), false for a
        /// route's next hop (the control plane solicits those by itself).
        connected: bool,
    },
}

/// The prefixes of one length, sorted, each with its route's index.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Level {
    mask: u128,
    entries: Box<[(u128, u32)]>,
}

/// The IPv6 route table (empty by default: everything goes to the default next hop).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Routes6 {
    /// One per distinct prefix length, longest first.
    levels: Vec<Level>,
    routes: Vec<Route6>,
    /// Resolved neighbours, sorted by address.
    neighbors: Vec<(u128, MacAddr)>,
}

/// The netmask of an IPv6 prefix length.
#[inline(always)]
pub fn mask6(len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(len.min(128)))
    }
}

impl Routes6 {
    /// The table of `routes`. For the same prefix twice, the first wins.
    pub fn new(routes: &[Route6]) -> Routes6 {
        let mut lens: Vec<u8> = routes.iter().map(|r| r.len.min(128)).collect();
        lens.sort_unstable_by(|a, b| b.cmp(a));
        lens.dedup();
        let levels = lens
            .into_iter()
            .map(|len| {
                let mask = mask6(len);
                let mut entries: Vec<(u128, u32)> = Vec::new();
                for (i, r) in routes.iter().enumerate() {
                    let p = r.prefix.to_bits() & mask;
                    if r.len.min(128) == len && !entries.iter().any(|(q, _)| *q == p) {
                        entries.push((p, i as u32));
                    }
                }
                entries.sort_unstable();
                Level {
                    mask,
                    entries: entries.into_boxed_slice(),
                }
            })
            .collect();
        Routes6 {
            levels,
            routes: routes.to_vec(),
            neighbors: Vec::new(),
        }
    }

    /// True when there are no routes.
    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.levels.is_empty()
    }

    /// The routes, in the order given.
    pub fn routes(&self) -> &[Route6] {
        &self.routes
    }

    /// The route of `dst` by longest prefix.
    #[inline]
    pub fn route(&self, dst: Ipv6Addr) -> Option<&Route6> {
        let a = dst.to_bits();
        for l in &self.levels {
            let key = a & l.mask;
            if let Ok(k) = l.entries.binary_search_by_key(&key, |e| e.0) {
                return self.routes.get(l.entries[k].1 as usize);
            }
        }
        None
    }

    /// Where `dst` goes: a MAC, a neighbour still unresolved, or `None` when no route
    /// holds it (the default next hop's turn).
    #[inline]
    pub fn lookup(&self, dst: Ipv6Addr) -> Option<Hop6> {
        let (neighbor, connected) = match self.route(dst)?.target {
            Target6::Via(n) => (n, false),
            Target6::Connected => (dst, true),
        };
        Some(match self.neighbor(neighbor) {
            Some(mac) => Hop6::Mac(mac),
            None => Hop6::Unresolved {
                neighbor,
                connected,
            },
        })
    }

    /// The MAC of neighbour `a`, when resolved.
    #[inline]
    pub fn neighbor(&self, a: Ipv6Addr) -> Option<MacAddr> {
        let a = a.to_bits();
        self.neighbors
            .binary_search_by_key(&a, |e| e.0)
            .ok()
            .map(|k| self.neighbors[k].1)
    }

    /// Sets (or, with `None`, forgets) the MAC of neighbour `a`: for the control plane,
    /// on a copy it then publishes. True if anything changed.
    pub fn set_neighbor(&mut self, a: Ipv6Addr, mac: Option<MacAddr>) -> bool {
        let key = a.to_bits();
        match (self.neighbors.binary_search_by_key(&key, |e| e.0), mac) {
            (Ok(k), Some(m)) if self.neighbors[k].1 == m => false,
            (Ok(k), Some(m)) => {
                self.neighbors[k].1 = m;
                true
            }
            (Ok(k), None) => {
                self.neighbors.remove(k);
                true
            }
            (Err(k), Some(m)) => {
                self.neighbors.insert(k, (key, m));
                true
            }
            (Err(_), None) => false,
        }
    }

    /// The resolved neighbours, by address.
    pub fn neighbors(&self) -> impl Iterator<Item = (Ipv6Addr, MacAddr)> + '_ {
        self.neighbors
            .iter()
            .map(|(a, m)| (Ipv6Addr::from_bits(*a), *m))
    }

    /// True if `a` is in a connected prefix (a host the gateway resolves directly).
    pub fn is_connected(&self, a: Ipv6Addr) -> bool {
        self.routes.iter().any(|r| {
            r.target == Target6::Connected && (a.to_bits() ^ r.prefix.to_bits()) & mask6(r.len) == 0
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    fn table() -> Routes6 {
        Routes6::new(&[
            Route6 {
                prefix: a("2001:db8:500::"),
                len: 48,
                target: Target6::Via(a("fe80::2")),
            },
            Route6 {
                prefix: a("2001:db8:500:7::"),
                len: 64,
                target: Target6::Via(a("fe80::3")),
            },
            Route6 {
                prefix: a("2001:db8:ff::"),
                len: 64,
                target: Target6::Connected,
            },
            // The same prefix again: the first wins.
            Route6 {
                prefix: a("2001:db8:500::"),
                len: 48,
                target: Target6::Via(a("fe80::9")),
            },
        ])
    }

    #[test]
    fn longest_prefix_wins() {
        let t = table();
        let via = |d: &str| t.route(a(d)).map(|r| r.target);
        assert_eq!(via("2001:db8:500:1::1"), Some(Target6::Via(a("fe80::2"))));
        assert_eq!(via("2001:db8:500:7::1"), Some(Target6::Via(a("fe80::3"))));
        assert_eq!(via("2001:db8:500:8::1"), Some(Target6::Via(a("fe80::2"))));
        assert_eq!(via("2001:db8:ff::10"), Some(Target6::Connected));
        assert_eq!(via("2001:db8:501::1"), None);
        assert_eq!(via("::"), None);
        assert!(t.is_connected(a("2001:db8:ff::abcd")));
        assert!(!t.is_connected(a("2001:db8:500::1")));
        // A default route catches the rest.
        let d = Routes6::new(&[Route6 {
            prefix: Ipv6Addr::UNSPECIFIED,
            len: 0,
            target: Target6::Via(a("fe80::1")),
        }]);
        assert_eq!(
            d.route(a("2001:db8:501::1")).map(|r| r.target),
            Some(Target6::Via(a("fe80::1")))
        );
    }

    #[test]
    fn neighbours_resolve_routes_and_hosts() {
        let mut t = table();
        let m2 = MacAddr([2, 0, 0, 0, 0, 2]);
        let m3 = MacAddr([2, 0, 0, 0, 0, 3]);
        assert_eq!(
            t.lookup(a("2001:db8:500:1::1")),
            Some(Hop6::Unresolved {
                neighbor: a("fe80::2"),
                connected: false
            })
        );
        assert_eq!(
            t.lookup(a("2001:db8:ff::10")),
            Some(Hop6::Unresolved {
                neighbor: a("2001:db8:ff::10"),
                connected: true
            })
        );
        assert!(t.set_neighbor(a("fe80::2"), Some(m2)));
        assert!(!t.set_neighbor(a("fe80::2"), Some(m2)));
        assert!(t.set_neighbor(a("2001:db8:ff::10"), Some(m3)));
        assert_eq!(t.lookup(a("2001:db8:500:1::1")), Some(Hop6::Mac(m2)));
        assert_eq!(t.lookup(a("2001:db8:ff::10")), Some(Hop6::Mac(m3)));
        assert!(t.set_neighbor(a("fe80::2"), Some(m3)));
        assert_eq!(t.lookup(a("2001:db8:500:1::1")), Some(Hop6::Mac(m3)));
        assert!(t.set_neighbor(a("fe80::2"), None));
        assert!(!t.set_neighbor(a("fe80::2"), None));
        assert_eq!(t.neighbors().count(), 1);
        assert_eq!(t.lookup(a("2001:db8:502::1")), None);
    }
}
