//! Which addresses a subscriber may hold: one rule for every way a session gets its
//! address (static config, `ctl session add`, a login's own address, RADIUS
//! Framed-IP-Address, a pool) and for the pools themselves.
//!
//! An address is a subscriber's when it is unicast (not multicast, broadcast, loopback,
//! unspecified or reserved), not one of the gateway's own (its access and core
//! addresses, its NAT addresses), and either a host of the access subnet (not its
//! network or broadcast address) or inside an address pool. Pools may lie off the
//! access subnet: sessions that reach the gateway over PPP or DHCP hold pool addresses
//! that need not be on the link.

use std::net::Ipv4Addr;

use tollgate_dataplane::fib::prefix_mask;

/// Why an address cannot be a subscriber's.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// Multicast, broadcast, loopback, unspecified or reserved (240.0.0.0/4).
    #[error("{0} is not a unicast address a subscriber can hold")]
    NotUnicast(Ipv4Addr),
    /// One of the gateway's own addresses.
    #[error("{0} is the gateway's own address")]
    Gateway(Ipv4Addr),
    /// The access subnet's network address.
    #[error("{0} is the network address of the access subnet {1}")]
    Network(Ipv4Addr, String),
    /// The access subnet's broadcast address.
    #[error("{0} is the broadcast address of the access subnet {1}")]
    Broadcast(Ipv4Addr, String),
    /// Neither on the access subnet nor in a pool.
    #[error("{0} is outside the access subnet {1} and every address pool")]
    Outside(Ipv4Addr, String),
}

/// What the rule needs to know: the access subnet, the gateway's addresses and the
/// pools' ranges.
#[derive(Clone, Debug)]
pub struct SubscriberAddresses {
    /// The gateway's access address and the subnet's prefix length.
    pub access: (Ipv4Addr, u8),
    /// Every address of the gateway (access, core, NAT).
    pub gateway: Vec<Ipv4Addr>,
    /// Pool ranges, first and last address (inclusive).
    pub pools: Vec<(Ipv4Addr, Ipv4Addr)>,
}

/// True for an address no host may hold as its own: multicast, limited broadcast,
/// loopback, unspecified (0.0.0.0/8) or reserved (240.0.0.0/4).
pub fn is_special(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    ip.is_multicast() || ip.is_broadcast() || ip.is_loopback() || o[0] == 0 || o[0] >= 240
}

impl SubscriberAddresses {
    fn access_subnet(&self) -> String {
        let (a, len) = self.access;
        format!("{}/{len}", Ipv4Addr::from(u32::from(a) & prefix_mask(len)))
    }

    /// Checks that `ip` may be a subscriber's address.
    pub fn check(&self, ip: Ipv4Addr) -> Result<(), AddressError> {
        if is_special(ip) {
            return Err(AddressError::NotUnicast(ip));
        }
        if self.gateway.contains(&ip) || self.access.0 == ip {
            return Err(AddressError::Gateway(ip));
        }
        let (a, len) = self.access;
        let mask = prefix_mask(len);
        let x = u32::from(ip);
        if x & mask == u32::from(a) & mask {
            // Subnets of /31 and /32 have no network or broadcast address.
            if len < 31 && x & !mask == 0 {
                return Err(AddressError::Network(ip, self.access_subnet()));
            }
            if len < 31 && x & !mask == !mask {
                return Err(AddressError::Broadcast(ip, self.access_subnet()));
            }
            return Ok(());
        }
        if self
            .pools
            .iter()
            .any(|(f, l)| (u32::from(*f)..=u32::from(*l)).contains(&x))
        {
            return Ok(());
        }
        Err(AddressError::Outside(ip, self.access_subnet()))
    }

    /// Checks a pool range: every address in it must pass [`Self::check`] (ranges are
    /// not split around the addresses a subscriber cannot hold). The lowest bad address
    /// is the error.
    pub fn check_range(&self, first: Ipv4Addr, last: Ipv4Addr) -> Result<(), AddressError> {
        let (f, l) = (u32::from(first), u32::from(last));
        let (a, len) = self.access;
        let mask = prefix_mask(len);
        let net = u32::from(a) & mask;
        // Candidates: the ends, and every special or gateway address the range may
        // hold. Checking these is checking them all, as the rule is the same between.
        let mut candidates = vec![f, l, net, net | !mask];
        candidates.extend(self.gateway.iter().map(|g| u32::from(*g)));
        candidates.push(u32::from(a));
        for (lo, hi) in [
            (0x0000_0000u32, 0x00ff_ffffu32),
            (0x7f00_0000, 0x7fff_ffff),
            (0xe000_0000, 0xffff_ffff),
        ] {
            if lo <= l && f <= hi {
                candidates.push(lo.max(f));
            }
        }
        let inside = |x: u32| (f..=l).contains(&x);
        let ranges = SubscriberAddresses {
            pools: vec![(first, last)],
            ..self.clone()
        };
        candidates.sort_unstable();
        candidates.dedup();
        for x in candidates.into_iter().filter(|x| inside(*x)) {
            ranges.check(Ipv4Addr::from(x))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn rule() -> SubscriberAddresses {
        SubscriberAddresses {
            access: (ip("10.10.0.1"), 24),
            gateway: vec![ip("10.10.0.1"), ip("192.0.2.1"), ip("192.0.2.5")],
            pools: vec![(ip("100.64.0.10"), ip("100.64.0.20"))],
        }
    }

    #[test]
    fn one_rule_for_every_address() {
        let r = rule();
        assert_eq!(r.check(ip("10.10.0.11")), Ok(()));
        assert_eq!(r.check(ip("10.10.0.254")), Ok(()));
        assert_eq!(
            r.check(ip("100.64.0.15")),
            Ok(()),
            "a pool off the access subnet"
        );
        for (bad, want) in [
            ("10.10.0.1", AddressError::Gateway(ip("10.10.0.1"))),
            ("192.0.2.1", AddressError::Gateway(ip("192.0.2.1"))),
            ("192.0.2.5", AddressError::Gateway(ip("192.0.2.5"))),
            (
                "10.10.0.0",
                AddressError::Network(ip("10.10.0.0"), "10.10.0.0/24".into()),
            ),
            (
                "10.10.0.255",
                AddressError::Broadcast(ip("10.10.0.255"), "10.10.0.0/24".into()),
            ),
            (
                "10.10.1.5",
                AddressError::Outside(ip("10.10.1.5"), "10.10.0.0/24".into()),
            ),
            (
                "100.64.0.21",
                AddressError::Outside(ip("100.64.0.21"), "10.10.0.0/24".into()),
            ),
            ("224.0.0.5", AddressError::NotUnicast(ip("224.0.0.5"))),
            ("239.1.1.1", AddressError::NotUnicast(ip("239.1.1.1"))),
            (
                "255.255.255.255",
                AddressError::NotUnicast(ip("255.255.255.255")),
            ),
            ("0.0.0.0", AddressError::NotUnicast(ip("0.0.0.0"))),
            ("127.0.0.1", AddressError::NotUnicast(ip("127.0.0.1"))),
            ("240.0.0.1", AddressError::NotUnicast(ip("240.0.0.1"))),
        ] {
            assert_eq!(r.check(ip(bad)), Err(want), "{bad}");
        }
        let msg = r.check(ip("10.10.0.255")).unwrap_err().to_string();
        assert_eq!(
            msg,
            "10.10.0.255 is the broadcast address of the access subnet 10.10.0.0/24"
        );
    }

    #[test]
    fn a_point_to_point_subnet_has_no_network_or_broadcast_address() {
        let r = SubscriberAddresses {
            access: (ip("10.0.0.0"), 31),
            gateway: vec![ip("10.0.0.0")],
            pools: vec![],
        };
        assert_eq!(r.check(ip("10.0.0.1")), Ok(()));
    }

    #[test]
    fn ranges_are_checked_over_every_address() {
        let r = rule();
        assert_eq!(r.check_range(ip("10.10.0.100"), ip("10.10.0.200")), Ok(()));
        assert_eq!(r.check_range(ip("100.64.1.0"), ip("100.64.1.255")), Ok(()));
        assert_eq!(
            r.check_range(ip("10.10.0.200"), ip("10.10.0.255")),
            Err(AddressError::Broadcast(
                ip("10.10.0.255"),
                "10.10.0.0/24".into()
            ))
        );
        assert_eq!(
            r.check_range(ip("10.10.0.0"), ip("10.10.0.9")),
            Err(AddressError::Network(
                ip("10.10.0.0"),
                "10.10.0.0/24".into()
            ))
        );
        assert_eq!(
            r.check_range(ip("192.0.2.2"), ip("192.0.2.9")),
            Err(AddressError::Gateway(ip("192.0.2.5")))
        );
        assert_eq!(
            r.check_range(ip("223.255.255.0"), ip("224.0.0.10")),
            Err(AddressError::NotUnicast(ip("224.0.0.0")))
        );
    }
}
