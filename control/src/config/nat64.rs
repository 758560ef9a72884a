//! `[nat64]`: stateful NAT64 for IPv6 subscribers (issue 16, V6-2): IPv6 to an address
//! inside the prefix leaves as IPv4 from the pool. Off by default. Every key is
//! documented in `docs/config.md`.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use tollgate_control_core::inet::ipv6::Prefix;
use tollgate_dataplane::Nat64Config as Nat64Forwarding;
use tollgate_dataplane::table::nat64::WELL_KNOWN_PREFIX;

use crate::config::Config;

/// `[nat64]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Nat64Config {
    /// NAT64 on (needs `[ipv6]` on: the subscribers are sessions with a /64).
    pub enabled: bool,
    /// The /96 IPv4 addresses are embedded in (RFC 6052); the well-known prefix by
    /// default.
    pub prefix: String,
    /// The IPv4 addresses translated flows leave from: on the core subnet (the gateway
    /// answers ARP for them) or routed to the gateway. Not a `[nat]` address.
    pub pool: Vec<Ipv4Addr>,
    /// The largest IPv4 packet sent out translated (the core side's path MTU, 1260 to
    /// 9216): a subscriber's longer IPv6 is answered with Packet Too Big for this + 20.
    pub mtu: u16,
    /// Who may send to a mapping's pool port (RFC 4787 REQ-8): `"address-dependent"`
    /// (the default: an IPv4 address the subscriber's port already talks to) or
    /// `"endpoint-independent"` (anyone; UDP only).
    pub filtering: Filtering,
}

/// `[nat64] filtering`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Filtering {
    /// From an address the mapping already has a binding with (RFC 4787 REQ-8's
    /// address-dependent filtering).
    #[default]
    AddressDependent,
    /// From any address and port (endpoint-independent filtering).
    EndpointIndependent,
}

impl Default for Nat64Config {
    fn default() -> Self {
        Nat64Config {
            enabled: false,
            prefix: "64:ff9b::/96".into(),
            pool: Vec::new(),
            mtu: 1500,
            filtering: Filtering::AddressDependent,
        }
    }
}

impl Nat64Config {
    fn parsed_prefix(&self) -> Option<Prefix> {
        self.prefix.parse().ok()
    }

    /// Checks what serde cannot; the error names the key.
    pub fn validate(&self, cfg: &Config) -> Result<(), (String, String)> {
        let e = |k: &str, m: String| Err((format!("nat64.{k}"), m));
        if !self.enabled {
            return Ok(());
        }
        if !cfg.ipv6.enabled {
            return e(
                "enabled",
                "NAT64 needs [ipv6] on (its subscribers are sessions with a /64)".into(),
            );
        }
        match self.parsed_prefix() {
            None => return e("prefix", format!("{:?} is not an IPv6 prefix", self.prefix)),
            Some(p) if p.len() != 96 => {
                return e(
                    "prefix",
                    format!("{} is not a /96 (the only length translated)", self.prefix),
                );
            }
            Some(_) => {}
        }
        if !(1260..=9216).contains(&self.mtu) {
            // Under 1260 a packet sent without DF (RFC 7915 5.1) could be too big.
            return e("mtu", format!("{} is not in 1260..=9216", self.mtu));
        }
        if self.pool.is_empty() {
            return e(
                "pool",
                "required when NAT64 is on (e.g. [\"192.0.2.64\"])".into(),
            );
        }
        for a in &self.pool {
            if *a == cfg.core.address.addr || *a == cfg.access.address.addr {
                return e("pool", format!("{a} is a side's own address"));
            }
            if cfg.nat.addresses.contains(a) {
                return e("pool", format!("{a} is a [nat] address too"));
            }
            if a.is_unspecified() || a.is_multicast() || a.is_broadcast() || a.is_loopback() {
                return e("pool", format!("{a} is not a unicast address"));
            }
        }
        Ok(())
    }

    /// The forwarding snapshot's NAT64 part.
    pub fn forwarding(&self) -> Nat64Forwarding {
        if !self.enabled {
            return Nat64Forwarding::default();
        }
        Nat64Forwarding {
            on: true,
            prefix: self.parsed_prefix().map_or(WELL_KNOWN_PREFIX, |p| p.addr()),
            pool: self.pool.clone(),
            mtu: self.mtu,
            endpoint_independent_filtering: self.filtering == Filtering::EndpointIndependent,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_by_default_and_the_well_known_prefix() {
        let c: Nat64Config = toml::from_str("").unwrap();
        assert_eq!(c.forwarding(), Nat64Forwarding::default());
        let c: Nat64Config = toml::from_str("enabled = true\npool = [\"192.0.2.64\"]").unwrap();
        let f = c.forwarding();
        assert!(f.on);
        assert_eq!(f.prefix, WELL_KNOWN_PREFIX);
        assert_eq!(f.pool, vec![Ipv4Addr::new(192, 0, 2, 64)]);
        assert_eq!((f.mtu, f.endpoint_independent_filtering), (1500, false));
        let c: Nat64Config = toml::from_str(
            "enabled = true\npool = [\"192.0.2.64\"]\nmtu = 1400\nfiltering = \"endpoint-independent\"",
        )
        .unwrap();
        assert_eq!(
            (
                c.forwarding().mtu,
                c.forwarding().endpoint_independent_filtering
            ),
            (1400, true)
        );
        assert!(toml::from_str::<Nat64Config>("filtering = \"open\"").is_err());
        let c: Nat64Config = toml::from_str(
            "enabled = true\nprefix = \"2001:db8:64::/96\"\npool = [\"192.0.2.64\"]",
        )
        .unwrap();
        assert_eq!(
            c.forwarding().prefix,
            "2001:db8:64::".parse::<std::net::Ipv6Addr>().unwrap()
        );
    }

    #[test]
    fn validation_names_the_key() {
        let base = "[access]\nbackend = \"memory\"\naddress = \"10.10.0.1/24\"\n\
                    [core]\nbackend = \"memory\"\naddress = \"192.0.2.1/24\"\n";
        let v6 =
            "[ipv6]\nenabled = true\npool = \"2001:db8:100::/48\"\nnext_hop = \"2001:db8::fe\"\n";
        let key = |extra: &str| {
            Config::parse(&format!("{base}{extra}"), "t.toml")
                .err()
                .and_then(|e| e.key)
        };
        let on = "[nat64]\nenabled = true\npool = [\"192.0.2.64\"]\n";
        assert_eq!(key(&format!("{v6}{on}")), None);
        assert_eq!(key(on).as_deref(), Some("nat64.enabled"));
        assert_eq!(
            key(&format!("{v6}[nat64]\nenabled = true\n")).as_deref(),
            Some("nat64.pool")
        );
        assert_eq!(
            key(&format!("{v6}{on}prefix = \"64:ff9b::/64\"\n")).as_deref(),
            Some("nat64.prefix")
        );
        assert_eq!(
            key(&format!(
                "{v6}[nat64]\nenabled = true\npool = [\"192.0.2.1\"]\n"
            ))
            .as_deref(),
            Some("nat64.pool")
        );
        assert_eq!(
            key(&format!("{v6}{on}mtu = 1200\n")).as_deref(),
            Some("nat64.mtu")
        );
    }
}
