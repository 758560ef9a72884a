//! Address pools (SES-2, seed 001 FIG. 5, 7): each pool is split into ranges, one per
//! gateway node; a new session gets the lowest free address of the range with the fewest
//! assigned addresses whose node is up (a range without a node is always up). Addresses
//! given by other means (the first packet's source, Framed-IP-Address, `ctl`) that fall in
//! a range are reserved there too, so a pool never hands out an address in use.

use std::net::Ipv4Addr;

/// A gateway node whose health gates its ranges.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// The operator's name.
    pub name: String,
    /// False while its health check fails.
    pub up: bool,
}

/// One range of a pool.
#[derive(Clone, Debug)]
pub struct Range {
    /// First address.
    pub first: Ipv4Addr,
    /// Last address (inclusive).
    pub last: Ipv4Addr,
    /// The node it belongs to (index into [`Pools::nodes`]), if any.
    pub node: Option<usize>,
    /// Addresses assigned now.
    pub assigned: u32,
    /// One bit per address of the range: assigned.
    used: Vec<u64>,
    /// Where the search for a free address starts (all below are used).
    cursor: u32,
}

impl Range {
    /// A range with nothing assigned.
    pub fn new(first: Ipv4Addr, last: Ipv4Addr, node: Option<usize>) -> Range {
        let size = u32::from(last) - u32::from(first) + 1;
        Range {
            first,
            last,
            node,
            assigned: 0,
            used: vec![0; size.div_ceil(64) as usize],
            cursor: 0,
        }
    }

    /// Addresses in the range.
    pub fn size(&self) -> u32 {
        u32::from(self.last) - u32::from(self.first) + 1
    }

    fn contains(&self, ip: Ipv4Addr) -> bool {
        (u32::from(self.first)..=u32::from(self.last)).contains(&u32::from(ip))
    }

    fn offset(&self, ip: Ipv4Addr) -> u32 {
        u32::from(ip) - u32::from(self.first)
    }

    fn is_used(&self, i: u32) -> bool {
        self.used[(i / 64) as usize] & (1 << (i % 64)) != 0
    }

    fn set(&mut self, i: u32, on: bool) {
        let w = &mut self.used[(i / 64) as usize];
        if on {
            *w |= 1 << (i % 64);
        } else {
            *w &= !(1 << (i % 64));
        }
    }

    /// Takes the lowest free address.
    fn take(&mut self) -> Option<Ipv4Addr> {
        let size = self.size();
        let mut i = self.cursor;
        while i < size {
            let word = self.used[(i / 64) as usize];
            if word == u64::MAX {
                i = (i / 64 + 1) * 64;
                continue;
            }
            if !self.is_used(i) {
                self.set(i, true);
                self.assigned += 1;
                self.cursor = i + 1;
                return Some(Ipv4Addr::from(u32::from(self.first) + i));
            }
            i += 1;
        }
        self.cursor = size;
        None
    }
}

/// A named pool.
#[derive(Clone, Debug)]
pub struct Pool {
    /// Its name (`[[pool]] name`, RADIUS Framed-Pool).
    pub name: String,
    /// Its ranges.
    pub ranges: Vec<Range>,
}

/// Every pool and node.
#[derive(Clone, Debug, Default)]
pub struct Pools {
    /// The pools, the first being the default.
    pub pools: Vec<Pool>,
    /// The gateway nodes.
    pub nodes: Vec<Node>,
}

/// Why no address could be given.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    /// No pool has that name (or none is configured).
    #[error("no address pool {0:?}")]
    NoPool(String),
    /// Every range whose node is up is full.
    #[error("pool {0:?} has no free address on a node that is up")]
    Exhausted(String),
}

impl Pools {
    /// The pool named `name`, else the first.
    fn pool_index(&self, name: Option<&str>) -> Result<usize, PoolError> {
        match name {
            Some(n) => self
                .pools
                .iter()
                .position(|p| p.name == n)
                .ok_or_else(|| PoolError::NoPool(n.to_string())),
            None if self.pools.is_empty() => Err(PoolError::NoPool("(none configured)".into())),
            None => Ok(0),
        }
    }

    fn node_up(&self, r: &Range) -> bool {
        r.node.and_then(|n| self.nodes.get(n)).is_none_or(|n| n.up)
    }

    /// Gives an address from pool `name` (default: the first): from the range with the
    /// fewest assigned addresses whose node is up, the next such range when it is full.
    pub fn allocate(&mut self, name: Option<&str>) -> Result<Ipv4Addr, PoolError> {
        let p = self.pool_index(name)?;
        let mut order: Vec<usize> = (0..self.pools[p].ranges.len())
            .filter(|&i| self.node_up(&self.pools[p].ranges[i]))
            .collect();
        order.sort_by_key(|&i| (self.pools[p].ranges[i].assigned, i));
        for i in order {
            if let Some(ip) = self.pools[p].ranges[i].take() {
                return Ok(ip);
            }
        }
        Err(PoolError::Exhausted(self.pools[p].name.clone()))
    }

    /// Marks `ip` assigned if a range holds it (an address given by other means). False
    /// when it is in no range or already assigned.
    pub fn reserve(&mut self, ip: Ipv4Addr) -> bool {
        for r in self.pools.iter_mut().flat_map(|p| p.ranges.iter_mut()) {
            if r.contains(ip) {
                let i = r.offset(ip);
                if r.is_used(i) {
                    return false;
                }
                r.set(i, true);
                r.assigned += 1;
                return true;
            }
        }
        false
    }

    /// Returns `ip` to its range.
    pub fn release(&mut self, ip: Ipv4Addr) {
        for r in self.pools.iter_mut().flat_map(|p| p.ranges.iter_mut()) {
            if r.contains(ip) {
                let i = r.offset(ip);
                if r.is_used(i) {
                    r.set(i, false);
                    r.assigned -= 1;
                    r.cursor = r.cursor.min(i);
                }
                return;
            }
        }
    }

    /// Sets a node's state; false if there is no such node.
    pub fn set_node(&mut self, name: &str, up: bool) -> bool {
        match self.nodes.iter_mut().find(|n| n.name == name) {
            Some(n) => {
                n.up = up;
                true
            }
            None => false,
        }
    }
}

/// A range of a cluster node's pool as the cluster's database counts it (CLU-2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RangeLoad {
    /// Whether its node is up (its lease runs).
    pub up: bool,
    /// Addresses in use.
    pub assigned: u64,
    /// Addresses in it.
    pub size: u64,
}

/// SES-2 across nodes, where an upstream device steers by source range (LB-1): which of
/// a pool's ranges (of every node) the next session should get its address from: the
/// one with the fewest assigned addresses whose node is up and that is not full; ties go
/// to the first. `None` when no such range is left.
pub fn least_assigned(ranges: &[RangeLoad]) -> Option<usize> {
    ranges
        .iter()
        .enumerate()
        .filter(|(_, r)| r.up && r.assigned < r.size)
        .min_by_key(|(i, r)| (r.assigned, *i))
        .map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    /// Seed 001 FIG. 7: three packet gateways, each with its range.
    fn pools() -> Pools {
        Pools {
            pools: vec![Pool {
                name: "mobile".into(),
                ranges: vec![
                    Range::new(ip("10.1.0.1"), ip("10.1.0.4"), Some(0)),
                    Range::new(ip("10.2.0.1"), ip("10.2.0.4"), Some(1)),
                    Range::new(ip("10.3.0.1"), ip("10.3.0.2"), Some(2)),
                ],
            }],
            nodes: ["pgw1", "pgw2", "pgw3"]
                .map(|n| Node {
                    name: n.into(),
                    up: true,
                })
                .to_vec(),
        }
    }

    #[test]
    fn least_assigned_range_whose_node_is_up() {
        let mut p = pools();
        // Ties go to the first range; then each range in turn.
        let got: Vec<Ipv4Addr> = (0..6).map(|_| p.allocate(None).unwrap()).collect();
        assert_eq!(
            got,
            [
                "10.1.0.1", "10.2.0.1", "10.3.0.1", "10.1.0.2", "10.2.0.2", "10.3.0.2"
            ]
            .map(ip)
        );
        // pgw3's range is full; pgw2 goes down: only pgw1 is left.
        assert!(p.set_node("pgw2", false));
        assert_eq!(p.allocate(None).unwrap(), ip("10.1.0.3"));
        assert_eq!(p.allocate(None).unwrap(), ip("10.1.0.4"));
        assert_eq!(
            p.allocate(Some("mobile")),
            Err(PoolError::Exhausted("mobile".into()))
        );
        // pgw2 back up with fewer assigned (2 against 3) gets the next; then, tied, the
        // first range gives its lowest free address again.
        p.release(ip("10.1.0.2"));
        p.set_node("pgw2", true);
        assert_eq!(p.allocate(None).unwrap(), ip("10.2.0.3"));
        assert_eq!(p.allocate(None).unwrap(), ip("10.1.0.2"));
        assert_eq!(
            p.allocate(Some("nope")),
            Err(PoolError::NoPool("nope".into()))
        );
    }

    #[test]
    fn across_nodes_the_least_assigned_range_of_a_node_that_is_up() {
        let r = |up, assigned, size| RangeLoad { up, assigned, size };
        assert_eq!(least_assigned(&[]), None);
        // Ties go to the first; fewer assigned wins whatever the size.
        assert_eq!(least_assigned(&[r(true, 2, 10), r(true, 2, 10)]), Some(0));
        assert_eq!(least_assigned(&[r(true, 3, 100), r(true, 2, 4)]), Some(1));
        // A node that is down, or a full range, is passed over.
        assert_eq!(
            least_assigned(&[r(false, 0, 10), r(true, 4, 4), r(true, 9, 10)]),
            Some(2)
        );
        assert_eq!(least_assigned(&[r(false, 0, 10), r(true, 4, 4)]), None);
    }

    #[test]
    fn reserved_addresses_are_never_handed_out() {
        let mut p = pools();
        assert!(p.reserve(ip("10.1.0.1")));
        assert!(!p.reserve(ip("10.1.0.1")), "already taken");
        assert!(!p.reserve(ip("192.0.2.1")), "in no range");
        assert_eq!(p.pools[0].ranges[0].assigned, 1);
        // Range 0 counts as loaded: the next addresses come from the others first.
        assert_eq!(p.allocate(None).unwrap(), ip("10.2.0.1"));
        assert_eq!(p.allocate(None).unwrap(), ip("10.3.0.1"));
        assert_eq!(p.allocate(None).unwrap(), ip("10.1.0.2"));
        p.release(ip("10.1.0.1"));
        p.release(ip("10.1.0.1"));
        assert_eq!(
            p.pools[0].ranges[0].assigned, 1,
            "a double release is harmless"
        );
    }

    #[test]
    fn large_ranges_skip_full_words() {
        let mut p = Pools {
            pools: vec![Pool {
                name: "big".into(),
                ranges: vec![Range::new(ip("10.0.0.0"), ip("10.0.255.255"), None)],
            }],
            nodes: vec![],
        };
        for i in 0..1000u32 {
            assert_eq!(p.allocate(None).unwrap(), Ipv4Addr::from(0x0a00_0000 + i));
        }
        p.release(ip("10.0.0.7"));
        assert_eq!(p.allocate(None).unwrap(), ip("10.0.0.7"));
        assert_eq!(
            p.allocate(None).unwrap(),
            Ipv4Addr::from(0x0a00_0000 + 1000)
        );
    }
}
