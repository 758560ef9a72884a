//! `[pppoe]`: the access concentrator (discovery, limits) and the PPP sessions it
//! terminates (MRU, authentication order, DNS, keepalive, MSS clamping). Every key is
//! documented in `docs/config.md`.

use std::net::Ipv4Addr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use tollgate_control_core::gateway::lns::LnsSettings;
use tollgate_control_core::gateway::pppoe::PppoeSettings;
use tollgate_control_core::ppp::{self, AuthMethod};
use tollgate_control_core::pppoe::{DiscoveryConfig, Rate};

use crate::config::Config;
use crate::random::Seed;

/// `[pppoe]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PppoeConfig {
    /// PPPoE on: discovery frames are answered, PPP sessions terminated.
    pub enabled: bool,
    /// The AC-Name in every PADO.
    pub ac_name: String,
    /// The Service-Names offered (empty: any requested name is served).
    pub service_names: Vec<String>,
    /// The MRU asked for in LCP (RFC 2516: at most 1492 on Ethernet).
    pub mru: u16,
    /// Authentication protocols offered, in order: "chap", "pap" (empty: none, the
    /// subscriber is looked up by MAC).
    pub auth: Vec<String>,
    /// DNS servers given in IPCP (RFC 1877), at most two.
    pub dns: Vec<Ipv4Addr>,
    /// PADIs accepted per client MAC and second.
    pub padi_rate_per_mac: u32,
    /// PADIs one client MAC may send in a burst.
    pub padi_burst_per_mac: u32,
    /// PADIs accepted per second in all.
    pub padi_rate: u32,
    /// PADIs in a burst in all.
    pub padi_burst: u32,
    /// PPPoE sessions one client MAC may hold.
    pub max_sessions_per_mac: u32,
    /// PPPoE sessions one line (port + VLANs) may hold.
    pub max_sessions_per_line: u32,
    /// PPPoE sessions in all (at most 65534).
    pub max_sessions: u32,
    /// How long an AC-Cookie stays valid, seconds.
    pub cookie_lifetime_s: u64,
    /// Seconds between LCP Echo-Requests (0: no keepalive).
    pub echo_interval_s: u64,
    /// Unanswered Echo-Requests before the peer is declared dead.
    pub echo_failures: u32,
    /// Seconds for the authentication phase, the AAA decision included.
    pub auth_timeout_s: u64,
    /// Authentication attempts a peer gets on one session.
    pub auth_attempts: u32,
    /// ACC-5: lower the MSS of TCP SYNs to the session's MTU - 40 (1452 at 1492).
    pub mss_clamp: bool,
    /// The access port's name in NAS-Port-Id (`name.svlan.cvlan`); default the access
    /// interface's name, else "access".
    pub port_name: Option<String>,
}

impl Default for PppoeConfig {
    fn default() -> Self {
        let d = DiscoveryConfig::default();
        PppoeConfig {
            enabled: false,
            ac_name: "tollgate".into(),
            service_names: Vec::new(),
            mru: 1492,
            auth: vec!["chap".into(), "pap".into()],
            dns: Vec::new(),
            padi_rate_per_mac: d.padi_rate_per_mac.per_second,
            padi_burst_per_mac: d.padi_rate_per_mac.burst,
            padi_rate: d.padi_rate.per_second,
            padi_burst: d.padi_rate.burst,
            max_sessions_per_mac: d.max_sessions_per_mac,
            max_sessions_per_line: d.max_sessions_per_line,
            max_sessions: d.max_sessions,
            cookie_lifetime_s: d.cookie_lifetime.as_secs(),
            echo_interval_s: 30,
            echo_failures: 3,
            auth_timeout_s: 30,
            auth_attempts: 1,
            mss_clamp: true,
            port_name: None,
        }
    }
}

fn method(name: &str) -> Option<AuthMethod> {
    match name {
        "pap" => Some(AuthMethod::Pap),
        "chap" => Some(AuthMethod::Chap),
        _ => None,
    }
}

impl PppoeConfig {
    /// Checks what serde cannot; the error names the key.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let e = |k: &str, m: String| Err((format!("pppoe.{k}"), m));
        if !self.enabled {
            return Ok(());
        }
        if self.ac_name.is_empty() || self.ac_name.len() > 255 {
            return e("ac_name", "must be 1 to 255 bytes".into());
        }
        if let Some(s) = self.service_names.iter().find(|s| s.len() > 255) {
            return e("service_names", format!("{s:?} is longer than 255 bytes"));
        }
        if !(576..=1492).contains(&self.mru) {
            return e(
                "mru",
                format!(
                    "{} is not 576 to 1492 (PPPoE leaves 1492 of Ethernet's 1500)",
                    self.mru
                ),
            );
        }
        for (i, a) in self.auth.iter().enumerate() {
            if method(a).is_none() {
                return e("auth", format!("{a:?} is not \"pap\" or \"chap\""));
            }
            if self.auth[..i].contains(a) {
                return e("auth", format!("{a:?} is listed twice"));
            }
        }
        if self.dns.len() > 2 {
            return e(
                "dns",
                format!("{} servers given; IPCP carries two", self.dns.len()),
            );
        }
        for (k, v) in [
            ("padi_rate_per_mac", self.padi_rate_per_mac),
            ("padi_burst_per_mac", self.padi_burst_per_mac),
            ("padi_rate", self.padi_rate),
            ("padi_burst", self.padi_burst),
            ("max_sessions_per_mac", self.max_sessions_per_mac),
            ("max_sessions_per_line", self.max_sessions_per_line),
            ("echo_failures", self.echo_failures),
            ("auth_attempts", self.auth_attempts),
        ] {
            if v == 0 {
                return e(k, "must be at least 1".into());
            }
        }
        if !(1..=65534).contains(&self.max_sessions) {
            return e(
                "max_sessions",
                format!(
                    "{} is not 1 to 65534 (PPPoE session ids)",
                    self.max_sessions
                ),
            );
        }
        if self.cookie_lifetime_s == 0 {
            return e("cookie_lifetime_s", "must be at least 1".into());
        }
        if self.auth_timeout_s == 0 {
            return e("auth_timeout_s", "must be at least 1".into());
        }
        Ok(())
    }

    /// How PPP sessions negotiate (PPPoE's and, at an LNS, L2TP calls').
    fn ppp(&self, cfg: &Config, ipv6cp: bool) -> ppp::Config {
        ppp::Config {
            mru: self.mru,
            auth: self.auth.iter().filter_map(|a| method(a)).collect(),
            host_name: self.ac_name.as_bytes().to_vec(),
            local_ipv4: cfg.access.address.addr,
            ipv6cp,
            echo_interval: (self.echo_interval_s > 0)
                .then(|| Duration::from_secs(self.echo_interval_s)),
            echo_failures: self.echo_failures,
            auth_timeout: Duration::from_secs(self.auth_timeout_s),
            auth_attempts: self.auth_attempts,
            ..ppp::Config::default()
        }
    }

    /// The LNS's PPP termination of L2TP calls, when `[l2tp]` is on and accepts tunnels:
    /// the PPP keys of this section (mru, auth, dns, echo_*, auth_*, mss_clamp, ac_name
    /// as the CHAP name) whether PPPoE is on or not.
    pub fn lns_settings(&self, cfg: &Config, seed: Seed) -> Option<LnsSettings> {
        if !(cfg.l2tp.enabled && cfg.l2tp.accept) {
            return None;
        }
        Some(LnsSettings {
            // With `[ipv6]` on, L2TP calls negotiate IPv6CP too (dual stack), as PPPoE
            // sessions do.
            ppp: self.ppp(cfg, cfg.ipv6.enabled),
            dns: [self.dns.first().copied(), self.dns.get(1).copied()],
            mss_clamp: self.mss_clamp,
            seed,
        })
    }

    /// The core's settings, when PPPoE is on.
    pub fn settings(&self, cfg: &Config, seed: Seed) -> Option<PppoeSettings> {
        if !self.enabled {
            return None;
        }
        let dns = [self.dns.first().copied(), self.dns.get(1).copied()];
        Some(PppoeSettings {
            discovery: DiscoveryConfig {
                ac_name: self.ac_name.clone(),
                service_names: self.service_names.clone(),
                cookie_lifetime: Duration::from_secs(self.cookie_lifetime_s),
                padi_rate_per_mac: Rate {
                    per_second: self.padi_rate_per_mac,
                    burst: self.padi_burst_per_mac,
                },
                padi_rate: Rate {
                    per_second: self.padi_rate,
                    burst: self.padi_burst,
                },
                max_sessions_per_mac: self.max_sessions_per_mac,
                max_sessions_per_line: self.max_sessions_per_line,
                max_sessions: self.max_sessions,
                ..DiscoveryConfig::default()
            },
            // With `[ipv6]` on, PPPoE sessions negotiate IPv6CP too (dual stack).
            ppp: self.ppp(cfg, cfg.ipv6.enabled),
            dns,
            mss_clamp: self.mss_clamp,
            port_name: self
                .port_name
                .clone()
                .or_else(|| cfg.access.interface.clone())
                .unwrap_or_else(|| "access".into()),
            seed,
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
        assert!(!c.pppoe.enabled);
        assert!(c.pppoe.settings(&c, Seed::fixed([1; 32])).is_none());
        let c = parse("[pppoe]\nenabled = true\ndns = [\"192.0.2.53\"]\n").unwrap();
        let s = c.pppoe.settings(&c, Seed::fixed([1; 32])).unwrap();
        assert_eq!(s.ppp.mru, 1492);
        assert_eq!(s.ppp.auth, vec![AuthMethod::Chap, AuthMethod::Pap]);
        assert_eq!(s.ppp.local_ipv4, Ipv4Addr::new(10, 10, 0, 1));
        assert_eq!(s.ppp.echo_interval, Some(Duration::from_secs(30)));
        assert_eq!(s.dns, [Some(Ipv4Addr::new(192, 0, 2, 53)), None]);
        assert!(s.mss_clamp);
        assert_eq!(s.port_name, "access");
        assert_eq!(s.discovery.max_sessions_per_mac, 1);
    }

    #[test]
    fn bad_values_name_their_key() {
        for (src, key, words) in [
            ("mru = 1500", "pppoe.mru", "576 to 1492"),
            ("auth = [\"mschap\"]", "pppoe.auth", "\"pap\" or \"chap\""),
            ("auth = [\"pap\", \"pap\"]", "pppoe.auth", "twice"),
            (
                "dns = [\"192.0.2.1\", \"192.0.2.2\", \"192.0.2.3\"]",
                "pppoe.dns",
                "two",
            ),
            ("padi_rate = 0", "pppoe.padi_rate", "at least 1"),
            ("max_sessions = 70000", "pppoe.max_sessions", "65534"),
            ("ac_name = \"\"", "pppoe.ac_name", "1 to 255"),
        ] {
            let err = parse(&format!("[pppoe]\nenabled = true\n{src}\n")).unwrap_err();
            assert!(err.contains(key) && err.contains(words), "{src}: {err}");
        }
        let err = parse("[pppoe]\nenabled = true\nmtu = 1492\n").unwrap_err();
        assert!(err.contains("mtu"), "{err}");
    }
}
