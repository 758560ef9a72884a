//! `[ipv6]`: IPv6 for IPoE subscribers (issue 16, V6-1): the pool sessions' /64s come
//! from, the gateway's addresses, the core side's next hop, RA timing and DNS. Off by
//! default: IPv6 frames are then `ethertype_unsupported` as before. Every key is
//! documented in `docs/config.md`.

use std::net::Ipv6Addr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use tollgate_control_core::dhcpv6::RelayConfig;
use tollgate_control_core::gateway::dhcpv6::Dhcpv6Settings;
use tollgate_control_core::gateway::ipv6::{Ipv6Settings, link_local, routes6};
use tollgate_control_core::inet::ipv6::Prefix;
use tollgate_dataplane::table::route6::Routes6;
use tollgate_dataplane::{Ipv6Forwarding, MacAddr, Side};

use crate::config::Mac;
use crate::random::Seed;

/// `[ipv6]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Ipv6Config {
    /// IPv6 on: ND and DHCPv6 punted, sessions' /64s forwarded.
    pub enabled: bool,
    /// Where each IPoE session's /64 comes from, e.g. "2001:db8:100::/48" (a /64 or
    /// shorter).
    pub pool: Option<String>,
    /// Instead of `pool`, in a cluster: one prefix per node (`[[ipv6.range]]`, CLU-2);
    /// each node takes its sessions' /64s from its own, registered in the cluster's
    /// database like the IPv4 ranges.
    #[serde(rename = "range")]
    pub ranges: Vec<Ipv6Range>,
    /// The gateway's global addresses on the access side (it answers NS for them; its
    /// link-local address, from the port MAC, always).
    pub access_addresses: Vec<Ipv6Addr>,
    /// The gateway's address on the core side (answered in NS; the source of its NS).
    pub core_address: Option<Ipv6Addr>,
    /// The core side's IPv6 next hop: every uplink IPv6 packet goes to it.
    pub next_hop: Option<Ipv6Addr>,
    /// The next hop's MAC; without it, it is resolved by NS.
    pub next_hop_mac: Option<Mac>,
    /// DNS servers in RAs (RDNSS, RFC 8106).
    pub dns: Vec<Ipv6Addr>,
    /// Shortest seconds between unsolicited RAs to a subscriber.
    pub ra_min_interval_s: u64,
    /// Longest seconds between unsolicited RAs to a subscriber.
    pub ra_max_interval_s: u64,
    /// Log in a MAC without a session on its first Router Solicitation (an IPv6-first
    /// subscriber), by MAC, as `subscribers.unknown = "punt"` does for IPv4.
    pub login_on_rs: bool,
    /// Serve DHCPv6 on the access side (IA_NA from the session's /64, IA_PD from
    /// `delegated_pool`, DNS): RAs then carry the M and O flags. A SOLICIT from a MAC
    /// without a session logs it in by MAC, as an RS does (`login_on_rs`).
    pub dhcpv6: bool,
    /// Where delegated prefixes (IA_PD) come from, e.g. "2001:db8:200::/40"; without
    /// it only Delegated-IPv6-Prefix from RADIUS delegates one.
    pub delegated_pool: Option<String>,
    /// The length of each delegated prefix (at least the pool's, 64 at most).
    pub delegated_length: u8,
    /// Valid lifetime of a DHCPv6 binding, seconds (the preferred one is half).
    pub dhcpv6_lease_s: u64,
    /// Answer a SOLICIT with Rapid Commit by a REPLY at once.
    pub dhcpv6_rapid_commit: bool,
    /// "server" (the gateway is the DHCPv6 server) or "relay" (to `dhcpv6_servers`,
    /// Interface-Id and Remote-Id added; the binding starts on their REPLY).
    pub dhcpv6_mode: String,
    /// Relay mode: the DHCPv6 servers every client message is relayed to.
    pub dhcpv6_servers: Vec<Ipv6Addr>,
    /// Relay mode: the Link-Address of RELAY-FORW (default the first
    /// `access_addresses`).
    pub dhcpv6_link_address: Option<Ipv6Addr>,
    /// Relay mode: the local address of the relay's UDP socket (port 547); default any.
    pub dhcpv6_relay_source: Option<Ipv6Addr>,
    /// Prefixes on the core link (`connected = ["2001:db8:ff::/64"]`): their hosts are
    /// reached directly, each resolved by NS.
    pub connected: Vec<String>,
    /// Static routes of the core side (`[[ipv6.route]]`), longer than `next_hop`.
    pub route: Vec<Ipv6Route>,
}

/// `[[ipv6.route]]`: a static IPv6 route of the core side.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Ipv6Route {
    /// Destination prefix, e.g. "2001:db8:500::/48" ("::/0" replaces `next_hop`).
    pub prefix: String,
    /// The next hop on the core link (link-local or global), resolved by NS.
    pub via: Ipv6Addr,
}

/// `[[ipv6.range]]`: a node's IPv6 pool in a cluster.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Ipv6Range {
    /// The prefix, /32 to /64, e.g. "2001:db8:101::/48".
    pub prefix: String,
    /// The node it belongs to (`[cluster] node`).
    pub node: String,
}

impl Default for Ipv6Config {
    fn default() -> Self {
        Ipv6Config {
            enabled: false,
            pool: None,
            ranges: Vec::new(),
            access_addresses: Vec::new(),
            core_address: None,
            next_hop: None,
            next_hop_mac: None,
            dns: Vec::new(),
            ra_min_interval_s: 200,
            ra_max_interval_s: 600,
            login_on_rs: true,
            dhcpv6: false,
            delegated_pool: None,
            delegated_length: 56,
            dhcpv6_lease_s: 7200,
            dhcpv6_rapid_commit: true,
            dhcpv6_mode: "server".into(),
            dhcpv6_servers: Vec::new(),
            dhcpv6_link_address: None,
            dhcpv6_relay_source: None,
            connected: Vec::new(),
            route: Vec::new(),
        }
    }
}

impl Ipv6Config {
    fn prefix(&self) -> Option<Prefix> {
        self.pool.as_deref()?.parse().ok()
    }

    /// The settings of node `node` (`None`: not a cluster): with `[[ipv6.range]]`, `pool`
    /// is the node's own range (none: the node has no IPv6 pool, and IPv6 is off there).
    pub fn for_node(&self, node: Option<&str>) -> Ipv6Config {
        if self.ranges.is_empty() {
            return self.clone();
        }
        let mine = self.ranges.iter().find(|r| Some(r.node.as_str()) == node);
        Ipv6Config {
            pool: mine.map(|r| r.prefix.clone()),
            ..self.clone()
        }
    }

    /// Each node's prefix (`[[ipv6.range]]`), parsed: `(node, prefix)`.
    pub fn node_ranges(&self) -> Vec<(String, Prefix)> {
        self.ranges
            .iter()
            .filter_map(|r| Some((r.node.clone(), r.prefix.parse().ok()?)))
            .collect()
    }

    fn check_pool(pool: &str, key: &str) -> Result<(), (String, String)> {
        let e = |m: String| Err((format!("ipv6.{key}"), m));
        match pool.parse::<Prefix>() {
            Err(_) => e(format!("{pool:?} is not an IPv6 prefix")),
            Ok(p) if p.len() > 64 => e(format!("{pool} is longer than /64: sessions get /64s")),
            Ok(p) if p.len() < 32 => e(format!("{pool} is shorter than /32")),
            Ok(_) => Ok(()),
        }
    }

    /// Checks what serde cannot; the error names the key.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let e = |k: &str, m: String| Err((format!("ipv6.{k}"), m));
        if !self.enabled {
            return Ok(());
        }
        if !self.ranges.is_empty() {
            if self.pool.is_some() {
                return e(
                    "range",
                    "give either pool or one range per node, not both".into(),
                );
            }
            let mut nodes = std::collections::HashSet::new();
            let mut seen: Vec<Prefix> = Vec::new();
            for r in &self.ranges {
                Self::check_pool(&r.prefix, "range.prefix")?;
                if !nodes.insert(r.node.as_str()) {
                    return e(
                        "range.node",
                        format!("{} has two ranges: one range per node", r.node),
                    );
                }
                let p: Prefix = r.prefix.parse().map_err(|_| {
                    (
                        "ipv6.range.prefix".to_string(),
                        format!("{:?} is not an IPv6 prefix", r.prefix),
                    )
                })?;
                if let Some(o) = seen
                    .iter()
                    .find(|o| o.contains(p.addr()) || p.contains(o.addr()))
                {
                    return e(
                        "range.prefix",
                        format!("{} overlaps {}/{}", r.prefix, o.addr(), o.len()),
                    );
                }
                seen.push(p);
            }
        } else if let Some(pool) = &self.pool {
            Self::check_pool(pool, "pool")?;
        } else if !self.relay_mode() {
            // In relay mode the server's IA_NA gives an IPoE session its /64.
            return e(
                "pool",
                "required when IPv6 is on, unless dhcpv6_mode = \"relay\" (e.g. \"2001:db8:100::/48\")"
                    .into(),
            );
        }
        let mut seen: Vec<Prefix> = Vec::new();
        for (k, c) in self.connected.iter().enumerate() {
            match c.parse::<Prefix>() {
                Err(_) => return e("connected", format!("{c:?} is not an IPv6 prefix")),
                Ok(p) if p.is_empty() => {
                    return e("connected", format!("{c}: a prefix of /1 to /128"));
                }
                Ok(p) if seen.contains(&p) => {
                    return e("connected", format!("{c} is given twice (entry {k})"));
                }
                Ok(p) => seen.push(p),
            }
        }
        for (k, r) in self.route.iter().enumerate() {
            let key = format!("route[{k}]");
            match r.prefix.parse::<Prefix>() {
                Err(_) => return e(&key, format!("{:?} is not an IPv6 prefix", r.prefix)),
                Ok(p) if self.route[..k].iter().any(|o| o.prefix.parse() == Ok(p)) => {
                    return e(&key, format!("{p} is routed twice"));
                }
                Ok(_) => {}
            }
            if r.via.is_multicast() || r.via.is_unspecified() || r.via.is_loopback() {
                return e(&key, format!("via {} is not a unicast neighbour", r.via));
            }
            if Some(r.via) == self.core_address || self.access_addresses.contains(&r.via) {
                return e(&key, format!("via {} is the gateway's own address", r.via));
            }
        }
        if self.next_hop.is_none() && self.route.is_empty() && self.connected.is_empty() {
            return e(
                "next_hop",
                "required when IPv6 is on (unless [[ipv6.route]] or connected say where IPv6 goes)"
                    .into(),
            );
        }
        if self.ra_min_interval_s < 3 || self.ra_max_interval_s < self.ra_min_interval_s {
            return e(
                "ra_min_interval_s",
                "must be at least 3 and at most ra_max_interval_s".into(),
            );
        }
        if let Some(d) = &self.delegated_pool {
            match d.parse::<Prefix>() {
                Err(_) => return e("delegated_pool", format!("{d:?} is not an IPv6 prefix")),
                Ok(p) if p.len() < 32 || p.len() > self.delegated_length => {
                    return e(
                        "delegated_pool",
                        format!("{d} must be /32 to /{}", self.delegated_length),
                    );
                }
                Ok(_) => {}
            }
        }
        if !(32..=64).contains(&self.delegated_length) {
            return e("delegated_length", "must be 32 to 64".into());
        }
        match self.dhcpv6_mode.as_str() {
            "server" => {}
            "relay" if !self.dhcpv6 => {
                return e("dhcpv6_mode", "relay mode needs dhcpv6 = true".into());
            }
            "relay" if self.dhcpv6_servers.is_empty() => {
                return e(
                    "dhcpv6_servers",
                    "relay mode needs at least one server".into(),
                );
            }
            "relay" if self.relay_link_address().is_none() => {
                return e(
                    "dhcpv6_link_address",
                    "relay mode needs it (or an access_addresses entry): the server picks the subnet by it".into(),
                );
            }
            "relay" => {}
            m => {
                return e(
                    "dhcpv6_mode",
                    format!("{m:?} is not \"server\" or \"relay\""),
                );
            }
        }
        if self.dhcpv6_lease_s < 60 {
            return e("dhcpv6_lease_s", "must be at least 60".into());
        }
        if self.ra_max_interval_s > 1800 {
            return e(
                "ra_max_interval_s",
                "must be at most 1800 (RFC 4861)".into(),
            );
        }
        Ok(())
    }

    /// DHCPv6 relay mode (`dhcpv6 = true`, `dhcpv6_mode = "relay"`).
    fn relay_mode(&self) -> bool {
        self.dhcpv6 && self.dhcpv6_mode == "relay"
    }

    /// Relay mode's Link-Address: `dhcpv6_link_address`, else the first access address.
    fn relay_link_address(&self) -> Option<Ipv6Addr> {
        self.dhcpv6_link_address
            .or_else(|| self.access_addresses.first().copied())
    }

    /// DHCPv6 relay mode: the local address of the relay's socket (UDP port 547), when
    /// on.
    pub fn relay_socket(&self) -> Option<std::net::SocketAddrV6> {
        (self.enabled && self.relay_mode()).then(|| {
            std::net::SocketAddrV6::new(
                self.dhcpv6_relay_source.unwrap_or(Ipv6Addr::UNSPECIFIED),
                tollgate_control_core::dhcpv6::wire::SERVER_PORT,
                0,
                0,
            )
        })
    }

    /// The forwarding snapshot's IPv6 part for ports whose MACs are `macs`.
    pub fn forwarding(&self, macs: [MacAddr; 2]) -> Ipv6Forwarding {
        if !self.enabled {
            return Ipv6Forwarding::default();
        }
        let mut addresses: Vec<Ipv6Addr> = Side::ALL
            .iter()
            .map(|s| link_local(macs[s.idx()]))
            .collect();
        addresses.extend(self.access_addresses.iter().copied());
        addresses.extend(self.core_address);
        // Errors to subscribers come from the first global access address, else the
        // link-local one; to the core side only from `core_address` (a link-local
        // source would not cross the next hop).
        let access_source = self
            .access_addresses
            .first()
            .copied()
            .unwrap_or_else(|| link_local(macs[Side::Access.idx()]));
        Ipv6Forwarding {
            on: true,
            addresses,
            next_hop: self.next_hop,
            next_hop_mac: self.next_hop_mac.map(|m| m.0),
            error_sources: [Some(access_source), self.core_address],
        }
    }

    /// The forwarding snapshot's IPv6 route table (`[[ipv6.route]]`, `connected`);
    /// empty when off.
    pub fn routes6(&self) -> Routes6 {
        if !self.enabled {
            return Routes6::default();
        }
        let routes: Vec<(Prefix, Ipv6Addr)> = self
            .route
            .iter()
            .filter_map(|r| Some((r.prefix.parse().ok()?, r.via)))
            .collect();
        let connected: Vec<Prefix> = self
            .connected
            .iter()
            .filter_map(|c| c.parse().ok())
            .collect();
        routes6(
            &routes,
            &connected,
            self.next_hop.zip(self.next_hop_mac.map(|m| m.0)),
        )
    }

    /// The control core's settings, when on.
    pub fn settings(&self, seed: Seed) -> Option<Ipv6Settings> {
        // No pool: IPv6 is off (a cluster node without a range), except in DHCPv6 relay
        // mode, where the server's bindings give IPoE sessions their /64s.
        if !self.enabled || (self.prefix().is_none() && !self.relay_mode()) {
            return None;
        }
        Some(Ipv6Settings {
            pool: self.prefix(),
            access_addresses: self.access_addresses.clone(),
            core_address: self.core_address,
            next_hop: self.next_hop,
            next_hop_mac: self.next_hop_mac.map(|m| m.0),
            dns: self.dns.clone(),
            ra_interval: (
                Duration::from_secs(self.ra_min_interval_s),
                Duration::from_secs(self.ra_max_interval_s),
            ),
            login_on_rs: self.login_on_rs,
            seed,
            dhcpv6: self.dhcpv6.then(|| Dhcpv6Settings {
                delegated_pool: self.delegated_pool.as_deref().and_then(|d| d.parse().ok()),
                delegated_length: self.delegated_length,
                lease: Duration::from_secs(self.dhcpv6_lease_s),
                rapid_commit: self.dhcpv6_rapid_commit,
                relay: (self.dhcpv6_mode == "relay").then(|| {
                    // The access port's MAC and name are set by the caller.
                    RelayConfig::new(
                        [0; 6],
                        self.relay_link_address().unwrap_or(Ipv6Addr::UNSPECIFIED),
                        self.dhcpv6_servers.clone(),
                    )
                }),
            }),
            routes: self
                .route
                .iter()
                .filter_map(|r| Some((r.prefix.parse().ok()?, r.via)))
                .collect(),
            connected: self
                .connected
                .iter()
                .filter_map(|c| c.parse().ok())
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Ipv6Config {
        toml::from_str(s).unwrap()
    }

    #[test]
    fn off_by_default_and_checked_when_on() {
        let c = Ipv6Config::default();
        assert!(c.validate().is_ok());
        assert_eq!(c.forwarding([MacAddr::ZERO; 2]), Ipv6Forwarding::default());
        assert!(c.settings(Seed::fixed([0; 32])).is_none());
        let bad = |s: &str| parse(s).validate().unwrap_err().0;
        assert_eq!(
            bad("enabled = true\nnext_hop = \"2001:db8::1\""),
            "ipv6.pool"
        );
        assert_eq!(
            bad("enabled = true\npool = \"2001:db8::/80\"\nnext_hop = \"2001:db8::1\""),
            "ipv6.pool"
        );
        assert_eq!(
            bad("enabled = true\npool = \"2001:db8::/48\""),
            "ipv6.next_hop"
        );
        let c = parse(
            "enabled = true\npool = \"2001:db8:100::/48\"\nnext_hop = \"2001:db8:ff::fe\"\n\
             core_address = \"2001:db8:ff::1\"\nnext_hop_mac = \"02:00:00:00:00:fe\"",
        );
        assert!(c.validate().is_ok());
        let macs = [MacAddr([2, 0, 0, 0, 0, 1]), MacAddr([2, 0, 0, 0, 0, 2])];
        let f = c.forwarding(macs);
        assert!(f.on);
        assert_eq!(
            f.addresses,
            vec![
                "fe80::ff:fe00:1".parse::<Ipv6Addr>().unwrap(),
                "fe80::ff:fe00:2".parse().unwrap(),
                "2001:db8:ff::1".parse().unwrap()
            ]
        );
        assert_eq!(f.next_hop_mac, Some(MacAddr([2, 0, 0, 0, 0, 0xfe])));
        assert_eq!(
            f.error_sources,
            [
                Some("fe80::ff:fe00:1".parse().unwrap()),
                Some("2001:db8:ff::1".parse().unwrap())
            ]
        );
        let s = c.settings(Seed::fixed([0; 32])).unwrap();
        assert_eq!(s.pool.unwrap().to_string(), "2001:db8:100::/48");
        assert!(s.dhcpv6.is_none());
    }

    #[test]
    fn dhcpv6_keys_are_checked_and_carried() {
        let base = "enabled = true\npool = \"2001:db8:100::/48\"\nnext_hop = \"2001:db8:ff::fe\"\n";
        let bad = |extra: &str| parse(&format!("{base}{extra}")).validate().unwrap_err().0;
        assert_eq!(
            bad("delegated_pool = \"2001:db8:200::\""),
            "ipv6.delegated_pool"
        );
        assert_eq!(
            bad("delegated_pool = \"2001:db8:200::/60\""),
            "ipv6.delegated_pool"
        );
        assert_eq!(
            bad("delegated_pool = \"2001:db8:200::/48\"\ndelegated_length = 65"),
            "ipv6.delegated_length"
        );
        assert_eq!(bad("delegated_length = 30"), "ipv6.delegated_length");
        assert_eq!(bad("dhcpv6_lease_s = 59"), "ipv6.dhcpv6_lease_s");
        let c = parse(&format!(
            "{base}dhcpv6 = true\ndelegated_pool = \"2001:db8:200::/40\"\ndelegated_length = 60\n\
             dhcpv6_lease_s = 600\ndhcpv6_rapid_commit = false"
        ));
        assert!(c.validate().is_ok());
        let d = c.settings(Seed::fixed([0; 32])).unwrap().dhcpv6.unwrap();
        assert_eq!(d.delegated_pool.unwrap().to_string(), "2001:db8:200::/40");
        assert_eq!(d.delegated_length, 60);
        assert_eq!(d.lease, Duration::from_secs(600));
        assert!(!d.rapid_commit);
        assert!(d.relay.is_none());
        assert!(c.relay_socket().is_none());
    }

    #[test]
    fn dhcpv6_relay_keys_are_checked_and_carried() {
        let base = "enabled = true
pool = \"2001:db8:100::/48\"\nnext_hop = \"2001:db8:ff::fe\"\n";
        let bad = |extra: &str| parse(&format!("{base}{extra}")).validate().unwrap_err().0;
        assert_eq!(bad("dhcpv6_mode = \"proxy\""), "ipv6.dhcpv6_mode");
        assert_eq!(bad("dhcpv6_mode = \"relay\""), "ipv6.dhcpv6_mode");
        assert_eq!(
            bad("dhcpv6 = true\ndhcpv6_mode = \"relay\""),
            "ipv6.dhcpv6_servers"
        );
        assert_eq!(
            bad("dhcpv6 = true\ndhcpv6_mode = \"relay\"\ndhcpv6_servers = [\"2001:db8:fe::20\"]"),
            "ipv6.dhcpv6_link_address"
        );
        let c = parse(&format!(
            "{base}dhcpv6 = true\ndhcpv6_mode = \"relay\"\ndhcpv6_servers = [\"2001:db8:fe::20\"]\n\
             access_addresses = [\"2001:db8:100:1::1\"]\ndhcpv6_relay_source = \"2001:db8:fe::1\""
        ));
        assert!(c.validate().is_ok());
        let r = c
            .settings(Seed::fixed([0; 32]))
            .unwrap()
            .dhcpv6
            .unwrap()
            .relay
            .unwrap();
        assert_eq!(r.link_address.to_string(), "2001:db8:100:1::1");
        assert_eq!(r.servers[0].to_string(), "2001:db8:fe::20");
        assert_eq!(
            c.relay_socket().unwrap().to_string(),
            "[2001:db8:fe::1]:547"
        );
    }

    /// Relay mode needs no `pool` (the server's IA_NA gives an IPoE session its /64);
    /// server mode still does, and IPv6 stays on without one only in relay mode.
    #[test]
    fn the_pool_is_optional_in_relay_mode_only() {
        let base = "enabled = true\nnext_hop = \"2001:db8:ff::fe\"\n";
        let relay = "dhcpv6 = true\ndhcpv6_mode = \"relay\"\ndhcpv6_servers = [\"2001:db8:fe::20\"]\n\
                     access_addresses = [\"2001:db8:100:1::1\"]\n";
        let e = parse(base).validate().unwrap_err();
        assert_eq!(e.0, "ipv6.pool");
        assert!(e.1.contains("relay"), "{}", e.1);
        assert_eq!(
            parse(&format!("{base}dhcpv6 = true\n"))
                .validate()
                .unwrap_err()
                .0,
            "ipv6.pool",
            "server mode hands out /64s from the pool"
        );
        assert!(parse(base).settings(Seed::fixed([0; 32])).is_none());
        let c = parse(&format!("{base}{relay}"));
        assert_eq!(c.validate(), Ok(()));
        let s = c.settings(Seed::fixed([0; 32])).expect("IPv6 is on");
        assert_eq!(s.pool, None);
        assert!(s.dhcpv6.unwrap().relay.is_some());
        // A pool given in relay mode is still checked, and carried (PPP sessions' /64s).
        assert_eq!(
            parse(&format!("{base}{relay}pool = \"2001:db8:100::/72\"\n"))
                .validate()
                .unwrap_err()
                .0,
            "ipv6.pool"
        );
        let c = parse(&format!("{base}{relay}pool = \"2001:db8:300::/48\"\n"));
        assert_eq!(c.validate(), Ok(()));
        assert_eq!(
            c.settings(Seed::fixed([0; 32]))
                .unwrap()
                .pool
                .map(|p| p.to_string()),
            Some("2001:db8:300::/48".to_string())
        );
    }

    #[test]
    fn routes_and_connected_prefixes_are_checked_and_built() {
        let base =
            "enabled = true\npool = \"2001:db8:100::/48\"\ncore_address = \"2001:db8:ff::1\"\n";
        let bad = |s: &str| parse(&format!("{base}{s}")).validate().unwrap_err();
        // Routes or a connected prefix stand in for next_hop.
        assert!(
            parse(&format!("{base}connected = [\"2001:db8:ff::/64\"]"))
                .validate()
                .is_ok()
        );
        assert_eq!(bad("connected = [\"2001:db8:ff::\"]").0, "ipv6.connected");
        assert_eq!(bad("connected = [\"::/0\"]").0, "ipv6.connected");
        assert_eq!(
            bad("[[route]]\nprefix = \"2001:db8:500::/48\"\nvia = \"ff02::1\"").0,
            "ipv6.route[0]"
        );
        assert_eq!(
            bad("[[route]]\nprefix = \"2001:db8:500::/48\"\nvia = \"2001:db8:ff::1\"").0,
            "ipv6.route[0]"
        );
        let twice = "[[route]]\nprefix = \"2001:db8:500::/48\"\nvia = \"fe80::2\"\n\
                     [[route]]\nprefix = \"2001:db8:500::/48\"\nvia = \"fe80::3\"";
        let e = bad(twice);
        assert_eq!(e.0, "ipv6.route[1]");
        assert!(e.1.contains("twice"), "{}", e.1);
        // The keys sit under [ipv6] as in a config file.
        let whole = crate::config::Config::parse(
            &format!(
            "[access]\nbackend = \"memory\"\naddress = \"10.10.0.1/24\"\n\
             [core]\nbackend = \"memory\"\naddress = \"192.0.2.1/24\"\n[ipv6]\n{base}next_hop = \"fe80::1\"\nnext_hop_mac = \"02:00:00:00:00:01\"\n\
             connected = [\"2001:db8:ff::/64\"]\n\
             [[ipv6.route]]\nprefix = \"2001:db8:500::/48\"\nvia = \"fe80::2\"\n\
             [[ipv6.route]]\nprefix = \"2001:db8:500:7::/64\"\nvia = \"2001:db8:ff::3\"\n"
            ),
            "test.toml",
        )
        .unwrap();
        let c = &whole.ipv6;
        assert!(c.validate().is_ok());
        let t = c.routes6();
        let a = |s: &str| s.parse::<Ipv6Addr>().unwrap();
        use tollgate_dataplane::table::route6::{Hop6, Target6};
        let target = |d: &str| t.route(a(d)).map(|r| r.target);
        assert_eq!(
            target("2001:db8:500:1::1"),
            Some(Target6::Via(a("fe80::2")))
        );
        assert_eq!(
            target("2001:db8:500:7::1"),
            Some(Target6::Via(a("2001:db8:ff::3")))
        );
        assert_eq!(target("2001:db8:ff::10"), Some(Target6::Connected));
        assert_eq!(target("2001:db8:600::1"), None);
        // The default next hop's configured MAC is in the table from the start.
        assert_eq!(t.neighbor(a("fe80::1")), Some(MacAddr([2, 0, 0, 0, 0, 1])));
        assert_eq!(
            t.lookup(a("2001:db8:500::1")),
            Some(Hop6::Unresolved {
                neighbor: a("fe80::2"),
                connected: false
            })
        );
        let s = c.settings(Seed::fixed([0; 32])).unwrap();
        assert_eq!(s.routes.len(), 2);
        assert_eq!(s.connected.len(), 1);
        assert_eq!(s.routes6(), t);
        assert_eq!(Ipv6Config::default().routes6(), Default::default());
    }

    #[test]
    fn one_range_per_node_in_a_cluster() {
        let base = "enabled = true\nnext_hop = \"2001:db8:ff::fe\"\n";
        let ranges = "[[range]]\nprefix = \"2001:db8:101::/48\"\nnode = \"gw1\"\n\
                      [[range]]\nprefix = \"2001:db8:102::/48\"\nnode = \"gw2\"\n";
        let c = parse(&format!("{base}{ranges}"));
        c.validate().unwrap();
        assert_eq!(
            c.for_node(Some("gw2")).pool.as_deref(),
            Some("2001:db8:102::/48")
        );
        let s = c
            .for_node(Some("gw1"))
            .settings(Seed::fixed([0; 32]))
            .unwrap();
        assert_eq!(s.pool.unwrap().to_string(), "2001:db8:101::/48");
        // A node without a range of its own has no IPv6 pool: IPv6 is off there.
        assert!(
            c.for_node(Some("gw3"))
                .settings(Seed::fixed([0; 32]))
                .is_none()
        );
        assert_eq!(c.node_ranges().len(), 2);
        let bad = |s: &str| {
            let (k, m) = parse(&format!("{base}{s}")).validate().unwrap_err();
            format!("{k}: {m}")
        };
        assert_eq!(
            bad(&format!("pool = \"2001:db8:100::/48\"\n{ranges}")),
            "ipv6.range: give either pool or one range per node, not both"
        );
        assert_eq!(
            bad(
                "[[range]]\nprefix = \"2001:db8:101::/48\"\nnode = \"gw1\"\n\
                 [[range]]\nprefix = \"2001:db8:102::/48\"\nnode = \"gw1\"\n"
            ),
            "ipv6.range.node: gw1 has two ranges: one range per node"
        );
        assert_eq!(
            bad(
                "[[range]]\nprefix = \"2001:db8:100::/40\"\nnode = \"gw1\"\n\
                 [[range]]\nprefix = \"2001:db8:102::/48\"\nnode = \"gw2\"\n"
            ),
            "ipv6.range.prefix: 2001:db8:102::/48 overlaps 2001:db8:100::/40"
        );
        assert_eq!(
            bad("[[range]]\nprefix = \"2001:db8:101::/80\"\nnode = \"gw1\"\n"),
            "ipv6.range.prefix: 2001:db8:101::/80 is longer than /64: sessions get /64s"
        );
    }
}
