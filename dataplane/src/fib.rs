//! The forwarding snapshot: each side's port MAC and address, and the routes.
//!
//! Built by the control plane from the config (connected subnets, the gateway's own
//! addresses, static routes) and published to workers as one immutable value. A route
//! lookup answers everything the forwarding stage needs in one LPM walk: the address is
//! ours, on a connected subnet, behind a gateway, or a subnet broadcast.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::service::Services;
use crate::table::flow::{NatConfig, Timeouts};
use crate::table::lb::LbTable;
use crate::table::lpm::Lpm;
use crate::table::nat64::Nat64Config;
use crate::table::route6::Routes6;
use crate::types::{MacAddr, Side};

/// One side's layer 2/3 identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SideConfig {
    /// The port's MAC: source of everything sent on this side.
    pub mac: MacAddr,
    /// The gateway's address on this side.
    pub address: Ipv4Addr,
    /// Prefix length of the connected subnet.
    pub prefix_len: u8,
}

impl SideConfig {
    /// True if `ip` is in this side's connected subnet.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let mask = prefix_mask(self.prefix_len);
        u32::from(ip) & mask == u32::from(self.address) & mask
    }

    /// The subnet's directed broadcast address (none for /31 and /32).
    pub fn broadcast(&self) -> Option<Ipv4Addr> {
        (self.prefix_len < 31)
            .then(|| Ipv4Addr::from(u32::from(self.address) | !prefix_mask(self.prefix_len)))
    }
}

/// The netmask of a prefix length.
pub fn prefix_mask(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - len.min(32))
    }
}

/// Where a route sends a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NextHop {
    /// Addressed to the gateway itself.
    Local,
    /// On the connected subnet of `Side`: the destination is its own next hop.
    Connected(Side),
    /// Through `gateway`, a neighbour on `side`.
    Via {
        /// Egress side.
        side: Side,
        /// The neighbour to send to.
        gateway: Ipv4Addr,
    },
    /// A subnet broadcast address: not forwarded.
    Broadcast,
}

/// What happens to uplink traffic from an address without a session (SES-4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unknown {
    /// Forwarded without a session (nothing counted per subscriber): a plain router.
    Forward,
    /// Dropped and counted.
    Drop,
    /// Dropped, counted, and reported to the control plane, which may log the subscriber
    /// in (first-packet login).
    Punt,
}

/// Which DHCPv4 messages the fast path punts to the control plane's DHCP server or relay
/// (ACC-3). Off by default: DHCP is then forwarded or dropped like any IPv4 (a
/// DISCOVER's 0.0.0.0 source is `ipv4_martian_source`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DhcpPunt {
    /// No DHCP server or relay.
    #[default]
    Off,
    /// The gateway is the DHCP server: client messages from the access side.
    Server,
    /// The gateway relays: client messages from the access side, and the servers'
    /// replies to the access address from the core side.
    Relay,
}

/// IPv6 forwarding (V6-1), off by default: while off, IPv6 frames are
/// `ethertype_unsupported` as before.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ipv6Forwarding {
    /// IPv6 is forwarded for sessions with a /64, and its neighbour discovery and DHCPv6
    /// go to the control plane.
    pub on: bool,
    /// The gateway's own IPv6 addresses (each side's link-local, the configured ones):
    /// packets to them are not forwarded.
    pub addresses: Vec<Ipv6Addr>,
    /// The core side's IPv6 next hop (where every uplink IPv6 packet goes).
    pub next_hop: Option<Ipv6Addr>,
    /// Its MAC, configured or resolved by the control plane (until then uplink IPv6 is
    /// `ipv6_next_hop_unresolved`).
    pub next_hop_mac: Option<MacAddr>,
    /// Per side ([`Side::idx`]), the source of the gateway's ICMPv6 errors sent out of
    /// it (none: the packet is dropped without one).
    pub error_sources: [Option<Ipv6Addr>; 2],
}

impl Ipv6Forwarding {
    /// True if `a` is one of the gateway's IPv6 addresses.
    #[inline]
    pub fn is_ours(&self, a: Ipv6Addr) -> bool {
        self.addresses.contains(&a)
    }
}

/// The immutable forwarding state every worker reads. The control plane changes it by
/// cloning, changing and publishing the copy.
#[derive(Clone, Debug)]
pub struct Forwarding {
    /// Per side, indexed by [`Side::idx`].
    pub sides: [SideConfig; 2],
    /// ICMP errors (and TCP resets of refused connections) each worker may send per
    /// second (0: none).
    pub icmp_errors_per_s: u32,
    /// Services behind VIPs.
    pub services: Services,
    /// Load balancing by source range.
    pub lb: LbTable,
    /// NAT addresses, ports and flow timeouts. (Change it through a builder: the
    /// snapshot keeps an index of the addresses.)
    pub nat: NatConfig,
    /// Uplink from addresses without a session.
    pub unknown: Unknown,
    /// IPv6.
    pub ipv6: Ipv6Forwarding,
    /// DHCPv4 punted to the control plane.
    pub dhcp: DhcpPunt,
    /// NAT64 (`[nat64]`).
    pub nat64: Nat64Config,
    /// The core side's IPv6 routes and their neighbours' MACs (`[[ipv6.route]]`,
    /// `[ipv6] connected`); a destination none holds goes to `ipv6.next_hop`.
    pub routes6: Routes6,
    /// Per side, the subnet's directed broadcast, or for none 255.255.255.255 (the
    /// limited broadcast, which is not forwarded either).
    broadcasts: [Ipv4Addr; 2],
    nat_index: NatIndex,
    lpm: Lpm,
    next_hops: Vec<NextHop>,
}

impl Forwarding {
    /// The next hop for `dst`. The gateway's own addresses and the subnet broadcasts are
    /// compared directly rather than put in the LPM as /32s, which would extend the
    /// connected subnets' slots to a third level for every lookup in them.
    #[inline]
    pub fn route(&self, dst: Ipv4Addr) -> Option<NextHop> {
        if self.is_ours(dst) {
            return Some(NextHop::Local);
        }
        if self.broadcasts[0] == dst || self.broadcasts[1] == dst {
            return Some(NextHop::Broadcast);
        }
        let i = self.lpm.lookup(dst)?;
        self.next_hops.get(i as usize).copied()
    }

    /// One side's identity.
    #[inline(always)]
    pub fn side(&self, s: Side) -> &SideConfig {
        &self.sides[s.idx()]
    }

    /// True if `ip` is one of the gateway's own addresses (a side's address or a NAT
    /// address).
    #[inline]
    pub fn is_ours(&self, ip: Ipv4Addr) -> bool {
        self.sides[0].address == ip || self.sides[1].address == ip || self.nat_address(ip).is_some()
    }

    /// The index of NAT address `ip` in `nat.addresses`: [`NatConfig::address_index`]
    /// without the linear search, for the per-packet checks (a pool of hundreds of
    /// addresses is one range check when they are consecutive, a binary search if not).
    #[inline]
    pub fn nat_address(&self, ip: Ipv4Addr) -> Option<u16> {
        let a = u32::from(ip);
        match &self.nat_index {
            NatIndex::Range { first, len } => {
                let off = a.wrapping_sub(*first);
                (off < *len).then_some(off as u16)
            }
            NatIndex::Sorted(v) => v.binary_search_by_key(&a, |(x, _)| *x).ok().map(|k| v[k].1),
        }
    }

    /// True if the gateway answers ARP for `ip` on `side`: the side's address, and on the
    /// core side the NAT addresses.
    #[inline]
    pub fn answers_arp(&self, side: Side, ip: Ipv4Addr) -> bool {
        self.side(side).address == ip
            || (side == Side::Core
                && (self.nat_address(ip).is_some() || self.nat64.pool_index(ip).is_some()))
    }
}

/// The NAT addresses indexed for lookup by address.
#[derive(Clone, Debug)]
enum NatIndex {
    /// `len` consecutive addresses from `first`, in order.
    Range { first: u32, len: u32 },
    /// (address, index) sorted by address.
    Sorted(Vec<(u32, u16)>),
}

impl NatIndex {
    fn new(addresses: &[Ipv4Addr]) -> NatIndex {
        let a: Vec<u32> = addresses.iter().map(|x| u32::from(*x)).collect();
        let consecutive = a
            .iter()
            .enumerate()
            .all(|(k, x)| a[0].checked_add(k as u32) == Some(*x));
        if consecutive {
            return NatIndex::Range {
                first: a.first().copied().unwrap_or(0),
                len: a.len() as u32,
            };
        }
        let mut v: Vec<(u32, u16)> = Vec::with_capacity(a.len());
        // The first of duplicates wins, as with a linear search.
        for (k, x) in a.iter().enumerate() {
            if !v.iter().any(|(y, _)| y == x) {
                v.push((*x, k as u16));
            }
        }
        v.sort_unstable();
        NatIndex::Sorted(v)
    }
}

/// A static route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    /// Destination prefix.
    pub prefix: Ipv4Addr,
    /// Its length.
    pub len: u8,
    /// The gateway; must be on a connected subnet.
    pub via: Ipv4Addr,
}

/// Builds a [`Forwarding`] snapshot.
#[derive(Clone, Debug)]
pub struct ForwardingBuilder {
    sides: [SideConfig; 2],
    routes: Vec<Route>,
    icmp_errors_per_s: u32,
    services: Services,
    lb: LbTable,
    nat: Option<NatConfig>,
    unknown: Unknown,
    ipv6: Ipv6Forwarding,
    dhcp: DhcpPunt,
    nat64: Nat64Config,
    routes6: Routes6,
}

/// Why a forwarding snapshot could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FibError {
    /// A route's gateway is not on either connected subnet.
    #[error("gateway {via} of route {prefix}/{len} is not on a connected subnet")]
    GatewayNotConnected {
        /// Route prefix.
        prefix: Ipv4Addr,
        /// Route length.
        len: u8,
        /// The gateway.
        via: Ipv4Addr,
    },
}

impl ForwardingBuilder {
    /// Starts from the two sides' identities.
    pub fn new(access: SideConfig, core: SideConfig) -> Self {
        ForwardingBuilder {
            sides: [access, core],
            routes: Vec::new(),
            icmp_errors_per_s: 100,
            services: Services::default(),
            lb: LbTable::default(),
            nat: None,
            unknown: Unknown::Forward,
            ipv6: Ipv6Forwarding::default(),
            dhcp: DhcpPunt::Off,
            nat64: Nat64Config::default(),
            routes6: Routes6::default(),
        }
    }

    /// Sets the core side's IPv6 routes (default: none, all to `ipv6.next_hop`).
    pub fn routes6(mut self, r: Routes6) -> Self {
        self.routes6 = r;
        self
    }

    /// Sets NAT64 (default: off).
    pub fn nat64(mut self, n: Nat64Config) -> Self {
        self.nat64 = n;
        self
    }

    /// Sets which DHCP messages are punted (default: none).
    pub fn dhcp(mut self, d: DhcpPunt) -> Self {
        self.dhcp = d;
        self
    }

    /// Sets IPv6 forwarding (default: off).
    pub fn ipv6(mut self, v6: Ipv6Forwarding) -> Self {
        self.ipv6 = v6;
        self
    }

    /// Sets the services.
    pub fn services(mut self, s: Services) -> Self {
        self.services = s;
        self
    }

    /// Sets the load-balancing ranges.
    pub fn lb(mut self, lb: LbTable) -> Self {
        self.lb = lb;
        self
    }

    /// Sets NAT (default: the core address, ports 1024-65535, default timeouts).
    pub fn nat(mut self, nat: NatConfig) -> Self {
        self.nat = Some(nat);
        self
    }

    /// Sets what happens to uplink traffic without a session (default: forwarded).
    pub fn unknown(mut self, u: Unknown) -> Self {
        self.unknown = u;
        self
    }

    /// Adds a static route.
    pub fn route(mut self, r: Route) -> Self {
        self.routes.push(r);
        self
    }

    /// Sets the ICMP error rate limit per worker.
    pub fn icmp_errors_per_s(mut self, n: u32) -> Self {
        self.icmp_errors_per_s = n;
        self
    }

    /// Builds the snapshot. Static routes are added first and connected subnets after
    /// them, so for an equal prefix the connected one wins.
    pub fn build(self) -> Result<Forwarding, FibError> {
        let mut next_hops = Vec::new();
        let mut entries = Vec::new();
        let mut add = |prefix: Ipv4Addr, len: u8, nh: NextHop| {
            let idx = match next_hops.iter().position(|n| *n == nh) {
                Some(i) => i,
                None => {
                    next_hops.push(nh);
                    next_hops.len() - 1
                }
            };
            entries.push((prefix, len, idx as u32));
        };
        for r in &self.routes {
            let side = Side::ALL
                .into_iter()
                .find(|s| self.sides[s.idx()].contains(r.via))
                .ok_or(FibError::GatewayNotConnected {
                    prefix: r.prefix,
                    len: r.len,
                    via: r.via,
                })?;
            add(
                r.prefix,
                r.len,
                NextHop::Via {
                    side,
                    gateway: r.via,
                },
            );
        }
        for s in Side::ALL {
            let c = self.sides[s.idx()];
            add(c.address, c.prefix_len, NextHop::Connected(s));
        }
        let nat = self.nat.unwrap_or_else(|| NatConfig {
            addresses: vec![self.sides[Side::Core.idx()].address],
            ports: (1024, 65535),
            timeouts: Timeouts::default(),
        });
        let nat_index = NatIndex::new(&nat.addresses);
        Ok(Forwarding {
            nat_index,
            sides: self.sides,
            icmp_errors_per_s: self.icmp_errors_per_s,
            services: self.services,
            lb: self.lb,
            nat,
            unknown: self.unknown,
            ipv6: self.ipv6,
            dhcp: self.dhcp,
            nat64: self.nat64,
            routes6: self.routes6,
            broadcasts: self
                .sides
                .map(|c| c.broadcast().unwrap_or(Ipv4Addr::BROADCAST)),
            lpm: Lpm::build(&entries),
            next_hops,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    pub(crate) fn sample() -> Forwarding {
        ForwardingBuilder::new(
            SideConfig {
                mac: MacAddr([2, 0, 0, 0, 0, 1]),
                address: ip("10.10.0.1"),
                prefix_len: 24,
            },
            SideConfig {
                mac: MacAddr([2, 0, 0, 0, 0, 2]),
                address: ip("192.0.2.1"),
                prefix_len: 24,
            },
        )
        .route(Route {
            prefix: ip("0.0.0.0"),
            len: 0,
            via: ip("192.0.2.254"),
        })
        .route(Route {
            prefix: ip("10.20.0.0"),
            len: 16,
            via: ip("10.10.0.254"),
        })
        .build()
        .unwrap()
    }

    #[test]
    fn routes_resolve_to_next_hops() {
        let f = sample();
        assert_eq!(
            f.route(ip("10.10.0.7")),
            Some(NextHop::Connected(Side::Access))
        );
        assert_eq!(
            f.route(ip("192.0.2.10")),
            Some(NextHop::Connected(Side::Core))
        );
        assert_eq!(f.route(ip("10.10.0.1")), Some(NextHop::Local));
        assert_eq!(f.route(ip("192.0.2.255")), Some(NextHop::Broadcast));
        assert_eq!(
            f.route(ip("8.8.8.8")),
            Some(NextHop::Via {
                side: Side::Core,
                gateway: ip("192.0.2.254")
            })
        );
        assert_eq!(
            f.route(ip("10.20.3.4")),
            Some(NextHop::Via {
                side: Side::Access,
                gateway: ip("10.10.0.254")
            })
        );
        assert!(f.is_ours(ip("192.0.2.1")));
    }

    #[test]
    fn nat_addresses_are_indexed_like_the_list() {
        for list in [
            vec!["192.0.2.100", "192.0.2.101", "192.0.2.102"],
            vec!["192.0.2.7", "198.18.0.1", "192.0.2.5", "192.0.2.7"],
            vec![],
        ] {
            let addresses: Vec<Ipv4Addr> = list.iter().map(|a| ip(a)).collect();
            let f = ForwardingBuilder::new(sample().sides[0], sample().sides[1])
                .nat(NatConfig {
                    addresses: addresses.clone(),
                    ports: (1024, 65535),
                    timeouts: Timeouts::default(),
                })
                .build()
                .unwrap();
            for probe in [
                "192.0.2.99",
                "192.0.2.100",
                "192.0.2.102",
                "192.0.2.103",
                "192.0.2.5",
                "192.0.2.7",
                "198.18.0.1",
                "0.0.0.0",
                "255.255.255.255",
            ] {
                assert_eq!(
                    f.nat_address(ip(probe)),
                    f.nat.address_index(ip(probe)),
                    "{probe}"
                );
            }
        }
    }

    #[test]
    fn gateway_must_be_connected() {
        let e = ForwardingBuilder::new(sample().sides[0], sample().sides[1])
            .route(Route {
                prefix: ip("0.0.0.0"),
                len: 0,
                via: ip("203.0.113.1"),
            })
            .build()
            .unwrap_err();
        assert!(e.to_string().contains("203.0.113.1"));
    }
}
