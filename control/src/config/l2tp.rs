//! `[l2tp]`: tunnels, their lines and capacities, customers, tunnelled subscribers and
//! service levels. Every key is documented in `docs/config.md`.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use tollgate_control_core::l2tp::consolidate::Capacity;
use tollgate_control_core::l2tp::lac::{LacRealm, LnsChoice};
use tollgate_control_core::l2tp::level::Ladder;
use tollgate_control_core::l2tp::reliable::Timing;
use tollgate_control_core::l2tp::{CustomerSettings, LineSettings, Settings};

use crate::config::{Config, Rate};
use crate::random::Seed;

/// `[l2tp]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct L2tpConfig {
    /// L2TP on: control messages to UDP 1701 are handled, sessions installed.
    pub enabled: bool,
    /// Host Name sent in SCCRQ/SCCRP.
    pub host_name: String,
    /// The tunnel secret: Challenge/Response authentication and hidden AVPs ("" none).
    pub secret: String,
    /// Hide the Calling Number and Tollgate's vendor AVPs (needs `secret`).
    pub hide_avps: bool,
    /// Accept tunnels from LACs (the LNS role).
    pub accept: bool,
    /// LACs tunnels are accepted from (empty: any that authenticates).
    pub accept_from: Vec<Ipv4Addr>,
    /// L2TP sessions the gateway can hold (the fast path's table, per worker).
    pub max_sessions: u16,
    /// Tunnels the gateway holds at once; an SCCRQ beyond is refused (StopCCN).
    pub max_tunnels: u16,
    /// The longest IPv4 packet the encapsulation may produce, bytes.
    pub mtu: u16,
    /// Our receive window.
    pub receive_window: u16,
    /// First retransmission timeout, milliseconds (doubles per retry).
    pub retransmit_initial_ms: u64,
    /// Longest retransmission timeout, milliseconds.
    pub retransmit_max_ms: u64,
    /// Retransmissions before the peer is declared dead.
    pub retries: u32,
    /// How long an acknowledgement waits for a message to ride on, milliseconds.
    pub ack_delay_ms: u64,
    /// HELLO after this many seconds without a message from the peer.
    pub hello_interval_s: u64,
    /// Seconds before a subscriber whose tunnel failed is placed again (doubled for each
    /// failure in a row).
    pub redial_s: u64,
    /// The longest wait before placing a subscriber again, seconds.
    pub redial_max_s: u64,
    /// At shutdown, how long to wait for the peers to acknowledge the StopCCNs,
    /// milliseconds.
    pub shutdown_wait_ms: u64,
    /// How often the fast path's per-session counters are read, milliseconds.
    pub sample_interval_ms: u64,
    /// JSON-lines file of usage records for rating: tunnel use per customer and line,
    /// service-level changes ("" for none).
    pub usage_records: PathBuf,
    /// Seconds between interim tunnel-use records of a tunnel still open.
    pub usage_interval_s: u64,
    /// Service levels (TUN-4).
    pub levels: LevelsConfig,
    /// Physical lines and their tunnels (`[[l2tp.line]]`).
    #[serde(rename = "line")]
    pub lines: Vec<LineConfig>,
    /// Customers (`[[l2tp.customer]]`).
    #[serde(rename = "customer")]
    pub customers: Vec<CustomerConfig>,
    /// `[[l2tp.session]]`, removed with the IP mode (issue 15 item 5): read only to be
    /// refused with [`IP_MODE_REMOVED`].
    #[serde(rename = "session", skip_serializing)]
    pub removed_sessions: Option<toml::Value>,
    /// `ip_subscribers`, removed with the IP mode: read only to be refused.
    #[serde(rename = "ip_subscribers", skip_serializing)]
    pub removed_ip_subscribers: Option<toml::Value>,
    /// LAC: PPPoE realms switched to an LNS (`[[l2tp.lac_realm]]`).
    #[serde(rename = "lac_realm")]
    pub lac_realms: Vec<LacRealmConfig>,
}

/// `[[l2tp.lac_realm]]`: PPPoE subscribers named `user@REALM` have their PPP switched
/// into a tunnel to an LNS of this list (the first that answers, in order).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LacRealmConfig {
    /// The realm (after the last `@` of the user name; case does not matter).
    pub realm: String,
    /// The LNSes, `ADDRESS` or `ADDRESS:PORT`, by preference: the next is tried when a
    /// tunnel or call to one fails before it is up. Not with `customer` (its lines name
    /// the LNS).
    #[serde(default)]
    pub lns: Vec<String>,
    /// Tunnel-Assignment-Id: calls to the same LNS with the same one share a tunnel
    /// (default: the realm).
    #[serde(default)]
    pub assignment: Option<String>,
    /// A `[[l2tp.customer]]`: the realm's calls are placed by the administration table
    /// in that customer's tunnels on its lines, and consolidated (moved between
    /// tunnels, PPP staying up) when the customer has the contract and the LNS is a
    /// Tollgate (TUN-2..5).
    #[serde(default)]
    pub customer: Option<String>,
    /// Service level of the realm's calls, with `customer` (default: the lowest step of
    /// `[l2tp.levels]`, else 1M).
    #[serde(default)]
    pub level: Option<Rate>,
    /// The tunnel secret toward this realm's LNSes (default: `l2tp.secret`).
    #[serde(default)]
    pub secret: Option<String>,
}

impl LacRealmConfig {
    /// The LNS addresses, or the first that does not parse.
    fn peers(&self) -> Result<Vec<SocketAddrV4>, String> {
        self.lns
            .iter()
            .map(|a| {
                a.parse::<SocketAddrV4>()
                    .or_else(|_| a.parse::<Ipv4Addr>().map(|ip| SocketAddrV4::new(ip, 1701)))
                    .map_err(|_| format!("{a:?} is not ADDRESS or ADDRESS:PORT"))
            })
            .collect()
    }
}

impl Default for L2tpConfig {
    fn default() -> Self {
        L2tpConfig {
            enabled: false,
            host_name: "tollgate".into(),
            secret: String::new(),
            hide_avps: false,
            accept: false,
            accept_from: Vec::new(),
            max_sessions: 4096,
            max_tunnels: 1024,
            mtu: 1500,
            receive_window: 8,
            retransmit_initial_ms: 1000,
            retransmit_max_ms: 8000,
            retries: 5,
            ack_delay_ms: 100,
            hello_interval_s: 60,
            redial_s: 10,
            redial_max_s: 300,
            shutdown_wait_ms: 2000,
            sample_interval_ms: 1000,
            usage_records: PathBuf::new(),
            usage_interval_s: 900,
            levels: LevelsConfig::default(),
            lines: Vec::new(),
            customers: Vec::new(),
            removed_sessions: None,
            removed_ip_subscribers: None,
            lac_realms: Vec::new(),
        }
    }
}

/// `[l2tp.levels]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LevelsConfig {
    /// The ladder of service levels, ascending (empty: levels stay as given).
    pub steps: Vec<Rate>,
    /// One step down after a window below this share of the level.
    pub low_percent: u8,
    /// One step up after a window above this share.
    pub high_percent: u8,
    /// The window, seconds.
    pub window_s: u64,
}

impl Default for LevelsConfig {
    fn default() -> Self {
        LevelsConfig {
            steps: Vec::new(),
            low_percent: 20,
            high_percent: 90,
            window_s: 10,
        }
    }
}

/// `[[l2tp.line]]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LineConfig {
    /// Its name (records, ctl).
    pub name: String,
    /// The LNS its tunnels go to, or its LNSes by preference (`ADDRESS` or
    /// `ADDRESS:PORT`, `peer_port` when left out): the next is tried when a tunnel to the
    /// one in use fails before it is up.
    pub peer: LinePeer,
    /// The LNS's UDP port.
    #[serde(default = "l2tp_port")]
    pub peer_port: u16,
    /// Tunnels it may carry.
    #[serde(default = "one")]
    pub tunnels: u32,
    /// Sessions each tunnel may carry (0: unlimited).
    #[serde(default)]
    pub tunnel_sessions: u32,
    /// Sum of service levels each tunnel may carry (0: unlimited).
    #[serde(default)]
    pub tunnel_bandwidth: Rate,
}

/// `[[l2tp.line]] peer`: one LNS (the one-LNS form) or a list by preference.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum LinePeer {
    /// `peer = "172.16.0.2"`.
    One(String),
    /// `peer = ["172.16.0.2", "172.16.0.3:1701"]`.
    Many(Vec<String>),
}

impl LineConfig {
    /// The line's LNSes by preference, or why they are not valid.
    fn peers(&self) -> Result<Vec<SocketAddrV4>, String> {
        let list = match &self.peer {
            LinePeer::One(a) => std::slice::from_ref(a),
            LinePeer::Many(list) if list.is_empty() => return Err("names no LNS".into()),
            LinePeer::Many(list) => list.as_slice(),
        };
        list.iter()
            .map(|a| {
                a.parse::<SocketAddrV4>()
                    .or_else(|_| {
                        a.parse::<Ipv4Addr>()
                            .map(|ip| SocketAddrV4::new(ip, self.peer_port))
                    })
                    .map_err(|_| format!("{a:?} is not ADDRESS or ADDRESS:PORT"))
            })
            .collect()
    }
}

fn l2tp_port() -> u16 {
    1701
}

fn one() -> u32 {
    1
}

/// `[[l2tp.customer]]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CustomerConfig {
    /// Its name.
    pub name: String,
    /// The billing account its usage is charged to (default: the name).
    #[serde(default)]
    pub account: Option<String>,
    /// The consolidation contract (TUN-3): gather its sessions into fewest tunnels.
    #[serde(default)]
    pub consolidate: bool,
    /// The lines (by name) its tunnels may use; default: every line.
    #[serde(default)]
    pub lines: Vec<String>,
}

/// Why `[[l2tp.session]]` and `ip_subscribers` are refused: the IP mode is gone.
pub const IP_MODE_REMOVED: &str = "the IP mode (IP subscribers placed in tunnels without PPP: [[l2tp.session]], l2tp.ip_subscribers, `tunnel session add`) was removed: PPP sessions replace it, PPPoE subscribers whose realm has a [[l2tp.lac_realm]] with a customer; see docs/l2tp.md, \"Migration from IP subscribers\"";

impl L2tpConfig {
    /// Checks what serde cannot; the error names the key.
    pub fn validate(&self, cfg: &Config) -> Result<(), (String, String)> {
        let e = |k: String, m: String| Err((k, m));
        if self.removed_ip_subscribers.is_some() {
            return e("l2tp.ip_subscribers".into(), IP_MODE_REMOVED.into());
        }
        if self.removed_sessions.is_some() {
            return e("l2tp.session[0]".into(), IP_MODE_REMOVED.into());
        }
        if !self.enabled {
            if !self.lines.is_empty() || !self.lac_realms.is_empty() || self.accept {
                return e(
                    "l2tp.enabled".into(),
                    "lines, lac realms or accept are set but L2TP is off: set enabled = true"
                        .into(),
                );
            }
            return Ok(());
        }
        if self.host_name.is_empty() || self.host_name.len() > 255 {
            return e("l2tp.host_name".into(), "must be 1 to 255 bytes".into());
        }
        if self.hide_avps && self.secret.is_empty() {
            return e(
                "l2tp.hide_avps".into(),
                "hiding AVPs needs a shared secret (l2tp.secret)".into(),
            );
        }
        if self.max_sessions == 0 {
            return e("l2tp.max_sessions".into(), "must be at least 1".into());
        }
        if !(1..=32768).contains(&self.max_tunnels) {
            return e(
                "l2tp.max_tunnels".into(),
                format!("{} is not 1 to 32768", self.max_tunnels),
            );
        }
        if self.redial_s == 0 {
            return e("l2tp.redial_s".into(), "must be at least 1".into());
        }
        if self.redial_max_s < self.redial_s {
            return e(
                "l2tp.redial_max_s".into(),
                format!("must be at least redial_s ({})", self.redial_s),
            );
        }
        if self.shutdown_wait_ms > 60_000 {
            return e(
                "l2tp.shutdown_wait_ms".into(),
                "must be at most 60000 (one minute)".into(),
            );
        }
        if !(576..=9000).contains(&self.mtu) {
            return e(
                "l2tp.mtu".into(),
                format!("{} is not 576 to 9000", self.mtu),
            );
        }
        if self.receive_window == 0 {
            return e("l2tp.receive_window".into(), "must be at least 1".into());
        }
        if self.retransmit_initial_ms < 10 || self.retransmit_max_ms < self.retransmit_initial_ms {
            return e(
                "l2tp.retransmit_initial_ms".into(),
                "must be at least 10 and at most retransmit_max_ms".into(),
            );
        }
        if self.retries == 0 {
            return e("l2tp.retries".into(), "must be at least 1".into());
        }
        if self.ack_delay_ms >= self.retransmit_initial_ms {
            return e(
                "l2tp.ack_delay_ms".into(),
                "must be shorter than retransmit_initial_ms".into(),
            );
        }
        if self.hello_interval_s == 0 {
            return e("l2tp.hello_interval_s".into(), "must be at least 1".into());
        }
        if self.sample_interval_ms < 10 {
            return e(
                "l2tp.sample_interval_ms".into(),
                "must be at least 10".into(),
            );
        }
        if self.usage_interval_s == 0 {
            return e("l2tp.usage_interval_s".into(), "must be at least 1".into());
        }
        let lv = &self.levels;
        if lv.steps.iter().any(|s| s.0 == 0) || lv.steps.windows(2).any(|w| w[0].0 >= w[1].0) {
            return e(
                "l2tp.levels.steps".into(),
                "must be non-zero rates in ascending order".into(),
            );
        }
        if lv.low_percent >= lv.high_percent || lv.high_percent > 100 {
            return e(
                "l2tp.levels.low_percent".into(),
                format!(
                    "{} must be below high_percent ({}), which is at most 100",
                    lv.low_percent, lv.high_percent
                ),
            );
        }
        if lv.window_s == 0 {
            return e("l2tp.levels.window_s".into(), "must be at least 1".into());
        }
        let ours = [cfg.access.address.addr, cfg.core.address.addr];
        for (i, l) in self.lines.iter().enumerate() {
            let k = |f: &str| format!("l2tp.line[{i}].{f}");
            if l.name.is_empty() || self.lines[..i].iter().any(|o| o.name == l.name) {
                return e(k("name"), format!("{:?} is empty or used twice", l.name));
            }
            if l.peer_port == 0 {
                return e(k("peer_port"), "must not be 0".into());
            }
            let peers = l.peers().map_err(|m| (k("peer"), m))?;
            for (j, p) in peers.iter().enumerate() {
                let ip = *p.ip();
                if ip.is_unspecified()
                    || ip.is_multicast()
                    || ip.is_broadcast()
                    || ours.contains(&ip)
                    || p.port() == 0
                {
                    return e(k("peer"), format!("{p} is not a peer's unicast address"));
                }
                if peers[..j].contains(p) {
                    return e(k("peer"), format!("{p} is listed twice"));
                }
            }
            if l.tunnels == 0 {
                return e(k("tunnels"), "must be at least 1".into());
            }
        }
        for (i, r) in self.lac_realms.iter().enumerate() {
            let k = |f: &str| format!("l2tp.lac_realm[{i}].{f}");
            if r.realm.is_empty()
                || r.realm.contains('@')
                || self.lac_realms[..i]
                    .iter()
                    .any(|o| o.realm.eq_ignore_ascii_case(&r.realm))
            {
                return e(
                    k("realm"),
                    format!("{:?} is empty, has an @ or is used twice", r.realm),
                );
            }
            if r.secret.as_deref() == Some("") {
                return e(k("secret"), "is empty: leave it out for l2tp.secret".into());
            }
            let peers = r.peers().map_err(|m| (k("lns"), m))?;
            match &r.customer {
                Some(c) if !self.customers.iter().any(|x| &x.name == c) => {
                    return e(
                        k("customer"),
                        format!("no [[l2tp.customer]] is named {c:?}"),
                    );
                }
                Some(_) if !peers.is_empty() => {
                    return e(
                        k("lns"),
                        "not with customer: the customer's lines name the LNS".into(),
                    );
                }
                Some(_) if self.lines.is_empty() => {
                    return e(k("customer"), "needs an [[l2tp.line]]".into());
                }
                None if r.level.is_some() => {
                    return e(k("level"), "only with customer".into());
                }
                Some(_) if r.level.is_some_and(|l| l.0 == 0) => {
                    return e(k("level"), "must not be 0".into());
                }
                Some(_) => {}
                None if peers.is_empty() => {
                    return e(k("lns"), "name at least one LNS (or a customer)".into());
                }
                None => {}
            }
            if let Some(p) = peers.iter().find(|p| {
                p.ip().is_unspecified()
                    || p.ip().is_multicast()
                    || p.ip().is_broadcast()
                    || ours.contains(p.ip())
                    || p.port() == 0
            }) {
                return e(k("lns"), format!("{p} is not an LNS's unicast address"));
            }
        }
        for (i, c) in self.customers.iter().enumerate() {
            if c.name.is_empty() || self.customers[..i].iter().any(|o| o.name == c.name) {
                return e(
                    format!("l2tp.customer[{i}].name"),
                    format!("{:?} is empty or used twice", c.name),
                );
            }
            if let Some(bad) = c
                .lines
                .iter()
                .find(|l| !self.lines.iter().any(|x| &x.name == *l))
            {
                return e(
                    format!("l2tp.customer[{i}].lines"),
                    format!("no [[l2tp.line]] is named {bad:?}"),
                );
            }
        }
        Ok(())
    }

    /// The engine's settings (`None` when L2TP is off). `seed` keys the CSPRNG of the
    /// ids, challenges and random vectors.
    pub fn settings(&self, workers: u16, seed: Seed) -> Option<Settings> {
        if !self.enabled {
            return None;
        }
        let ladder = Ladder {
            steps: self.levels.steps.iter().map(|r| r.0).collect(),
            low_percent: self.levels.low_percent,
            high_percent: self.levels.high_percent,
            window: Duration::from_secs(self.levels.window_s),
        };
        let default_level = ladder.steps.first().copied().unwrap_or(1_000_000);
        Some(Settings {
            host_name: self.host_name.clone(),
            secret: (!self.secret.is_empty()).then(|| self.secret.as_bytes().to_vec()),
            hide_avps: self.hide_avps,
            accept: self.accept,
            accept_from: self.accept_from.clone(),
            max_sessions: self.max_sessions,
            max_tunnels: self.max_tunnels,
            timing: Timing {
                initial: Duration::from_millis(self.retransmit_initial_ms),
                max: Duration::from_millis(self.retransmit_max_ms),
                retries: self.retries,
                ack_delay: Duration::from_millis(self.ack_delay_ms),
                window: self.receive_window,
            },
            hello_interval: Duration::from_secs(self.hello_interval_s),
            redial: Duration::from_secs(self.redial_s),
            redial_max: Duration::from_secs(self.redial_max_s),
            shutdown_wait: Duration::from_millis(self.shutdown_wait_ms),
            sample_interval: Duration::from_millis(self.sample_interval_ms),
            usage_interval: Duration::from_secs(self.usage_interval_s),
            workers,
            seed,
            lines: self
                .lines
                .iter()
                .map(|l| {
                    let peers = l.peers().unwrap_or_default();
                    let first = peers
                        .first()
                        .copied()
                        .unwrap_or(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, l.peer_port));
                    LineSettings {
                        name: l.name.clone(),
                        peer: *first.ip(),
                        peer_port: first.port(),
                        fallback: peers.get(1..).unwrap_or_default().to_vec(),
                        tunnels: l.tunnels,
                        capacity: Capacity {
                            sessions: l.tunnel_sessions,
                            bandwidth: l.tunnel_bandwidth.0,
                        },
                    }
                })
                .collect(),
            customers: self
                .customers
                .iter()
                .map(|c| CustomerSettings {
                    name: c.name.clone(),
                    account: c.account.clone().unwrap_or_else(|| c.name.clone()),
                    consolidate: c.consolidate,
                    lines: c
                        .lines
                        .iter()
                        .filter_map(|n| self.lines.iter().position(|l| &l.name == n))
                        .collect(),
                })
                .collect(),
            ladder: ladder.clone(),
            ip_calls: false,
            lac_realms: self
                .lac_realms
                .iter()
                .map(|r| LacRealm {
                    realm: r.realm.clone(),
                    lns: r
                        .peers()
                        .unwrap_or_default()
                        .into_iter()
                        .enumerate()
                        .map(|(i, peer)| LnsChoice {
                            peer,
                            assignment: r.assignment.clone().unwrap_or_else(|| r.realm.clone()),
                            preference: i as u32,
                            secret: r.secret.as_ref().map(|s| s.as_bytes().to_vec()),
                        })
                        .collect(),
                    customer: r.customer.clone(),
                    level: r.level.map_or(default_level, |l| ladder.snap(l.0)),
                })
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use crate::random::Seed;

    const BASE: &str = r#"
[access]
backend = "memory"
address = "10.10.0.1/24"

[core]
backend = "memory"
address = "172.16.0.1/24"
"#;

    fn parse(extra: &str) -> Result<Config, crate::config::ConfigError> {
        Config::parse(&format!("{BASE}{extra}"), "t.toml")
    }

    const LAC: &str = r#"
[l2tp]
enabled = true
secret = "s"
[l2tp.levels]
steps = ["1M", "2M", "5M"]
[[l2tp.line]]
name = "line1"
peer = "172.16.0.2"
tunnels = 4
tunnel_sessions = 8
tunnel_bandwidth = "20M"
[[l2tp.customer]]
name = "acme"
consolidate = true
[[l2tp.lac_realm]]
realm = "acme.example"
customer = "acme"
level = "3M"
"#;

    #[test]
    fn a_lac_config_compiles_to_settings() {
        let c = parse(LAC).unwrap();
        let s = c.l2tp.settings(2, Seed::fixed([7; 32])).unwrap();
        assert_eq!(s.lines[0].capacity.bandwidth, 20_000_000);
        assert_eq!(s.customers[0].account, "acme");
        assert_eq!(s.lac_realms[0].level, 5_000_000, "snapped up to a step");
        assert_eq!(s.lac_realms[0].customer.as_deref(), Some("acme"));
        assert_eq!(s.workers, 2);
        assert!(
            parse("")
                .unwrap()
                .l2tp
                .settings(1, Seed::fixed([1; 32]))
                .is_none(),
            "off by default"
        );
    }

    #[test]
    fn lac_realms_become_lns_choices_by_preference() {
        let c = parse(
            "[l2tp]\nenabled = true\n[[l2tp.lac_realm]]\nrealm = \"isp.example\"\nlns = [\"172.16.0.2\", \"172.16.0.3:1702\"]\n[[l2tp.lac_realm]]\nrealm = \"b.example\"\nlns = [\"172.16.0.2\"]\nassignment = \"b\"\nsecret = \"b secret\"\n",
        )
        .unwrap();
        let s = c.l2tp.settings(1, Seed::fixed([1; 32])).unwrap();
        let r = &s.lac_realms;
        assert_eq!(r.len(), 2);
        assert!(r[0].matches("alice@ISP.Example") && !r[0].matches("alice@b.example"));
        let lns: Vec<(String, &str, u32)> = r[0]
            .lns
            .iter()
            .map(|l| (l.peer.to_string(), l.assignment.as_str(), l.preference))
            .collect();
        assert_eq!(
            lns,
            vec![
                ("172.16.0.2:1701".to_string(), "isp.example", 0),
                ("172.16.0.3:1702".to_string(), "isp.example", 1)
            ]
        );
        assert_eq!(r[1].lns[0].assignment, "b");
        // The realm's secret is its tunnels'; none: l2tp.secret's (None here).
        assert_eq!(r[0].lns[0].secret, None);
        assert_eq!(r[1].lns[0].secret.as_deref(), Some(&b"b secret"[..]));
    }

    /// `[[l2tp.line]] peer`: one LNS as before, or several by preference (issue 15
    /// item 2), the first the line's `peer`, the others its failover list.
    #[test]
    fn a_line_lists_its_lnses_by_preference() {
        let c = parse(
            "[l2tp]\nenabled = true\n[[l2tp.line]]\nname = \"one\"\npeer = \"172.16.0.2\"\npeer_port = 1702\n[[l2tp.line]]\nname = \"two\"\npeer = [\"172.16.0.3\", \"172.16.0.4:1801\", \"172.16.0.5\"]\npeer_port = 1703\n",
        )
        .unwrap();
        let s = c.l2tp.settings(1, Seed::fixed([1; 32])).unwrap();
        let l = &s.lines;
        assert_eq!(
            (l[0].peer, l[0].peer_port),
            ("172.16.0.2".parse().unwrap(), 1702)
        );
        assert!(l[0].fallback.is_empty());
        assert_eq!(
            (l[1].peer, l[1].peer_port),
            ("172.16.0.3".parse().unwrap(), 1703)
        );
        let more: Vec<String> = l[1].fallback.iter().map(|p| p.to_string()).collect();
        assert_eq!(more, ["172.16.0.4:1801", "172.16.0.5:1703"]);
    }

    #[test]
    fn errors_name_the_key_and_line() {
        let cases = [
            ("[l2tp]\naccept = true\n", "l2tp.enabled", "L2TP is off"),
            (
                "[l2tp]\nenabled = true\nhide_avps = true\n",
                "l2tp.hide_avps",
                "secret",
            ),
            ("[l2tp]\nenabled = true\nmtu = 100\n", "l2tp.mtu", "576"),
            (
                "[l2tp]\nenabled = true\n[l2tp.levels]\nsteps = [\"5M\", \"2M\"]\n",
                "l2tp.levels.steps",
                "ascending",
            ),
            (
                "[l2tp]\nenabled = true\n[[l2tp.line]]\nname = \"a\"\npeer = \"172.16.0.1\"\n",
                "l2tp.line[0].peer",
                "172.16.0.1",
            ),
            (
                "[l2tp]\nenabled = true\n[[l2tp.line]]\nname = \"a\"\npeer = [\"172.16.0.2\", \"172.16.0.2:1701\"]\n",
                "l2tp.line[0].peer",
                "listed twice",
            ),
            (
                "[l2tp]\nenabled = true\n[[l2tp.line]]\nname = \"a\"\npeer = []\n",
                "l2tp.line[0].peer",
                "names no LNS",
            ),
            (
                "[l2tp]\nenabled = true\n[[l2tp.line]]\nname = \"a\"\npeer = [\"172.16.0.2\", \"lns.example\"]\n",
                "l2tp.line[0].peer",
                "ADDRESS:PORT",
            ),
            (
                "[l2tp]\nenabled = true\n[[l2tp.line]]\nname = \"a\"\npeer = \"172.16.0.2\"\n[[l2tp.customer]]\nname = \"c\"\nlines = [\"b\"]\n",
                "l2tp.customer[0].lines",
                "\"b\"",
            ),
            (
                "[l2tp]\nenabled = true\n[[l2tp.lac_realm]]\nrealm = \"isp.example\"\nlns = [\"lns.example\"]\n",
                "l2tp.lac_realm[0].lns",
                "ADDRESS:PORT",
            ),
            (
                "[l2tp]\nenabled = true\n[[l2tp.lac_realm]]\nrealm = \"isp.example\"\nlns = [\"172.16.0.2\"]\n[[l2tp.lac_realm]]\nrealm = \"ISP.example\"\nlns = [\"172.16.0.3\"]\n",
                "l2tp.lac_realm[1].realm",
                "used twice",
            ),
            (
                "[l2tp]\nenabled = true\n[[l2tp.lac_realm]]\nrealm = \"isp.example\"\nlns = [\"172.16.0.2\"]\nsecret = \"\"\n",
                "l2tp.lac_realm[0].secret",
                "leave it out",
            ),
        ];
        for (src, key, words) in cases {
            let e = parse(src).unwrap_err();
            assert_eq!(e.key.as_deref(), Some(key), "{e}");
            assert!(e.line.is_some(), "{e}");
            assert!(e.message.contains(words), "{e}");
        }
        let e = parse("[l2tp]\nenabled = true\nretriez = 3\n").unwrap_err();
        assert!(e.message.contains("unknown field `retriez`"), "{e}");
    }

    #[test]
    fn the_removed_ip_mode_is_a_config_error_that_points_at_the_migration() {
        let line = "[l2tp]\nenabled = true\n[[l2tp.line]]\nname = \"a\"\npeer = \"172.16.0.2\"\n[[l2tp.customer]]\nname = \"c\"\n";
        let session = "[[l2tp.session]]\naddress = \"10.10.0.5\"\ncustomer = \"c\"\n";
        for (src, key, at) in [
            (
                format!("{line}{session}"),
                "l2tp.session[0]",
                BASE.lines().count() + 8,
            ),
            (
                line.replace(
                    "enabled = true\n",
                    "enabled = true\nip_subscribers = true\n",
                ),
                "l2tp.ip_subscribers",
                BASE.lines().count() + 3,
            ),
            (
                // Even set to false, and with L2TP off: the key is gone.
                "[l2tp]\nip_subscribers = false\n".to_string(),
                "l2tp.ip_subscribers",
                BASE.lines().count() + 2,
            ),
        ] {
            let e = parse(&src).unwrap_err();
            assert_eq!(e.key.as_deref(), Some(key), "{e}");
            assert_eq!(e.line, Some(at), "{e}");
            assert_eq!(e.message, super::IP_MODE_REMOVED, "{e}");
            let shown = e.to_string();
            assert!(shown.contains("was removed"), "{shown}");
            assert!(shown.contains("[[l2tp.lac_realm]]"), "{shown}");
            assert!(
                shown.contains("docs/l2tp.md, \"Migration from IP subscribers\""),
                "{shown}"
            );
        }
    }

    #[test]
    fn a_realm_with_a_customer_is_placed_by_the_administration_table() {
        let base = LAC.replace(
            "[[l2tp.lac_realm]]\nrealm = \"acme.example\"\ncustomer = \"acme\"\nlevel = \"3M\"\n",
            "",
        );
        let c = parse(&format!(
            "{base}[[l2tp.lac_realm]]\nrealm = \"isp.example\"\ncustomer = \"acme\"\nlevel = \"2M\"\n"
        ))
        .unwrap();
        let s = c.l2tp.settings(1, Seed::fixed([7; 32])).unwrap();
        let r = &s.lac_realms[0];
        assert_eq!((r.customer.as_deref(), r.level), (Some("acme"), 2_000_000));
        assert!(r.lns.is_empty());
        for (extra, key) in [
            ("customer = \"nobody\"\n", "l2tp.lac_realm[0].customer"),
            (
                "customer = \"acme\"\nlns = [\"172.16.0.2\"]\n",
                "l2tp.lac_realm[0].lns",
            ),
            (
                "lns = [\"172.16.0.2\"]\nlevel = \"2M\"\n",
                "l2tp.lac_realm[0].level",
            ),
        ] {
            let e = parse(&format!(
                "{base}[[l2tp.lac_realm]]\nrealm = \"isp.example\"\n{extra}"
            ))
            .unwrap_err()
            .to_string();
            assert!(e.contains(key), "{extra}: {e}");
        }
    }
}
