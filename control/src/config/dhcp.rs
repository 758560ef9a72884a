//! `[dhcp]`: the DHCPv4 server on the access side (issue 16, ACC-3): what names the
//! subscriber to AAA, the lease time, DNS, rates and limits, and the lease file that
//! keeps leases over a restart. Every key is documented in `docs/config.md`.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use tollgate_control_core::dhcp::{LoginBy, RelayConfig, ServerConfig};
use tollgate_control_core::gateway::dhcp::DhcpSettings;
use tollgate_control_core::pppoe::Rate;

use crate::config::Config;

/// `[dhcp]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DhcpConfig {
    /// The DHCP server on: DISCOVERs from the access side log subscribers in.
    pub enabled: bool,
    /// "server" (the gateway is the DHCP server) or "relay" (to `servers`, option 82
    /// added; the session starts on their ACK).
    pub mode: String,
    /// Relay mode: the DHCP servers every client message is relayed to.
    pub servers: Vec<Ipv4Addr>,
    /// The User-Name of a login: "mac" (the client's MAC, looked up as an identifier in
    /// the local store), "circuit_id" or "remote_id" (option 82, RFC 3046).
    pub login_by: String,
    /// Seconds a lease lasts (renewal at half, rebinding at 7/8); at least 60. A
    /// shorter Session-Timeout of the subscriber bounds it.
    pub lease_time_s: u64,
    /// Seconds an address a client DECLINEd (another host answers for it) stays out of
    /// its pool; 0 returns it at once. Kea's decline-probation-period default.
    pub decline_hold_s: u64,
    /// DNS servers given (option 6).
    pub dns: Vec<Ipv4Addr>,
    /// DISCOVERs accepted per client MAC and second.
    pub discover_rate_per_mac: u32,
    /// DISCOVERs one client MAC may send in a burst.
    pub discover_burst_per_mac: u32,
    /// DISCOVERs accepted per second in all.
    pub discover_rate: u32,
    /// DISCOVERs in a burst in all.
    pub discover_burst: u32,
    /// Subscribers (logins, offers, leases) the server holds at most.
    pub max_clients: usize,
    /// Seconds an offered address waits for the client's REQUEST.
    pub offer_hold_s: u64,
    /// Seconds a rejected subscriber's DISCOVERs are refused without asking AAA again.
    pub refusal_hold_s: u64,
    /// NAK REQUESTs of clients the server has no lease for (the gateway is the only
    /// DHCP server of its access lines).
    pub authoritative: bool,
    /// The file leases are kept in over a restart (default: `leases.dhcp` next to the
    /// accounting spool).
    pub lease_file: Option<PathBuf>,
    /// The TPID of an S-VLAN tag when a restored lease's line is tagged QinQ (the
    /// frames seen before the restart are gone): 0x8100 or 0x88a8.
    pub outer_tpid: u16,
    /// The access port's name in NAS-Port-Id (`name.svlan.cvlan`); default the access
    /// interface's name, else "access".
    pub port_name: Option<String>,
}

impl Default for DhcpConfig {
    fn default() -> Self {
        let d = ServerConfig::new(Ipv4Addr::UNSPECIFIED);
        DhcpConfig {
            enabled: false,
            mode: "server".into(),
            servers: Vec::new(),
            login_by: "mac".into(),
            lease_time_s: 3600,
            decline_hold_s: 86_400,
            dns: Vec::new(),
            discover_rate_per_mac: d.discover_rate_per_mac.per_second,
            discover_burst_per_mac: d.discover_rate_per_mac.burst,
            discover_rate: d.discover_rate.per_second,
            discover_burst: d.discover_rate.burst,
            max_clients: d.max_clients,
            offer_hold_s: d.offer_hold.as_secs(),
            refusal_hold_s: d.refusal_hold.as_secs(),
            authoritative: d.authoritative,
            lease_file: None,
            outer_tpid: 0x88a8,
            port_name: None,
        }
    }
}

fn login_by(name: &str) -> Option<LoginBy> {
    match name {
        "mac" => Some(LoginBy::Mac),
        "circuit_id" => Some(LoginBy::CircuitId),
        "remote_id" => Some(LoginBy::RemoteId),
        _ => None,
    }
}

impl DhcpConfig {
    /// What the fast path punts for this config: nothing while the server is off.
    pub fn punt(&self) -> tollgate_dataplane::DhcpPunt {
        use tollgate_dataplane::DhcpPunt;
        match (self.enabled, self.mode.as_str()) {
            (false, _) => DhcpPunt::Off,
            (true, "relay") => DhcpPunt::Relay,
            (true, _) => DhcpPunt::Server,
        }
    }

    /// Checks what serde cannot; the error names the key.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let e = |k: &str, m: String| Err((format!("dhcp.{k}"), m));
        if !self.enabled {
            return Ok(());
        }
        match self.mode.as_str() {
            "server" => {}
            "relay" if self.servers.is_empty() => {
                return e("servers", "relay mode needs at least one server".into());
            }
            "relay" => {}
            m => return e("mode", format!("{m:?} is not \"server\" or \"relay\"")),
        }
        if login_by(&self.login_by).is_none() {
            return e(
                "login_by",
                format!(
                    "{:?} is not \"mac\", \"circuit_id\" or \"remote_id\"",
                    self.login_by
                ),
            );
        }
        if !(60..=u64::from(u32::MAX - 1)).contains(&self.lease_time_s) {
            return e(
                "lease_time_s",
                format!("{} is not 60 to 4294967294", self.lease_time_s),
            );
        }
        if self.decline_hold_s > 31_536_000 {
            return e(
                "decline_hold_s",
                format!("{} is more than a year (31536000)", self.decline_hold_s),
            );
        }
        for (k, v) in [
            ("discover_rate_per_mac", self.discover_rate_per_mac),
            ("discover_burst_per_mac", self.discover_burst_per_mac),
            ("discover_rate", self.discover_rate),
            ("discover_burst", self.discover_burst),
        ] {
            if v == 0 {
                return e(k, "must be at least 1".into());
            }
        }
        if self.max_clients == 0 {
            return e("max_clients", "must be at least 1".into());
        }
        if self.offer_hold_s == 0 {
            return e("offer_hold_s", "must be at least 1".into());
        }
        if !matches!(self.outer_tpid, 0x8100 | 0x88a8) {
            return e(
                "outer_tpid",
                format!("{:#06x} is not 0x8100 or 0x88a8", self.outer_tpid),
            );
        }
        Ok(())
    }

    /// The lease file: `lease_file`, else `leases.dhcp` next to the accounting spool.
    pub fn lease_path(&self, cfg: &Config) -> PathBuf {
        self.lease_file.clone().unwrap_or_else(|| {
            cfg.aaa
                .spool
                .parent()
                .map_or_else(|| PathBuf::from("leases.dhcp"), |d| d.join("leases.dhcp"))
        })
    }

    /// The core's settings, when the DHCP server is on.
    pub fn settings(&self, cfg: &Config) -> Option<DhcpSettings> {
        if !self.enabled {
            return None;
        }
        let access = &cfg.access.address;
        let mut server = ServerConfig::new(access.addr);
        server.login_by = login_by(&self.login_by).unwrap_or_default();
        server.authoritative = self.authoritative;
        server.offer_hold = Duration::from_secs(self.offer_hold_s);
        server.refusal_hold = Duration::from_secs(self.refusal_hold_s);
        server.discover_rate_per_mac = Rate {
            per_second: self.discover_rate_per_mac,
            burst: self.discover_burst_per_mac,
        };
        server.discover_rate = Rate {
            per_second: self.discover_rate,
            burst: self.discover_burst,
        };
        server.max_clients = self.max_clients;
        let port_name = self
            .port_name
            .clone()
            .or_else(|| cfg.access.interface.clone())
            .unwrap_or_else(|| "access".into());
        let relay = (self.mode == "relay").then(|| {
            let mut r = RelayConfig::new(access.addr, self.servers.clone());
            r.port_names = vec![port_name.clone()];
            r.discover_rate_per_mac = server.discover_rate_per_mac;
            r.discover_rate = server.discover_rate;
            r.max_clients = self.max_clients;
            r
        });
        let bits = u32::from(access.len.min(32));
        let mask = Ipv4Addr::from(u32::MAX.checked_shl(32 - bits).unwrap_or(0));
        Some(DhcpSettings {
            server,
            mask,
            dns: self.dns.clone(),
            lease_time: Duration::from_secs(self.lease_time_s),
            decline_hold: Duration::from_secs(self.decline_hold_s),
            outer_tpid: self.outer_tpid,
            port_name,
            relay,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(extra: &str) -> Result<Config, String> {
        let src = format!(
            "[access]\nbackend = \"memory\"\naddress = \"10.10.0.1/24\"\n[core]\nbackend = \"memory\"\naddress = \"192.0.2.1/24\"\n{extra}"
        );
        Config::parse(&src, "t.toml").map_err(|e| e.to_string())
    }

    #[test]
    fn off_by_default_and_sensible_when_on() {
        let c = parse("").unwrap();
        assert!(!c.dhcp.enabled);
        assert!(c.dhcp.settings(&c).is_none());
        let c =
            parse("[dhcp]\nenabled = true\ndns = [\"192.0.2.53\"]\nlease_time_s = 600\n").unwrap();
        let s = c.dhcp.settings(&c).unwrap();
        assert_eq!(s.server.server_id, Ipv4Addr::new(10, 10, 0, 1));
        assert_eq!(s.server.login_by, LoginBy::Mac);
        assert_eq!(s.mask, Ipv4Addr::new(255, 255, 255, 0));
        assert_eq!(s.dns, vec![Ipv4Addr::new(192, 0, 2, 53)]);
        assert_eq!(s.lease_time, Duration::from_secs(600));
        assert_eq!(
            c.dhcp.lease_path(&c),
            PathBuf::from("/var/lib/tollgate/leases.dhcp")
        );
        assert!(s.relay.is_none());
        let c = parse("[dhcp]\nenabled = true\nmode = \"relay\"\nservers = [\"192.0.2.20\"]\n")
            .unwrap();
        let r = c.dhcp.settings(&c).unwrap().relay.unwrap();
        assert_eq!(r.giaddr, Ipv4Addr::new(10, 10, 0, 1));
        assert_eq!(r.servers, vec![Ipv4Addr::new(192, 0, 2, 20)]);
        assert_eq!(r.port_names, vec!["access".to_string()]);
    }

    #[test]
    fn bad_values_name_their_key() {
        for (src, key, words) in [
            ("login_by = \"user\"", "dhcp.login_by", "circuit_id"),
            ("lease_time_s = 10", "dhcp.lease_time_s", "60 to"),
            ("discover_rate = 0", "dhcp.discover_rate", "at least 1"),
            ("outer_tpid = 0x9100", "dhcp.outer_tpid", "0x88a8"),
            ("mode = \"proxy\"", "dhcp.mode", "\"relay\""),
            ("mode = \"relay\"", "dhcp.servers", "at least one"),
        ] {
            let e = parse(&format!("[dhcp]\nenabled = true\n{src}\n")).unwrap_err();
            assert!(e.contains(key) && e.contains(words), "{src}: {e}");
        }
    }
}
