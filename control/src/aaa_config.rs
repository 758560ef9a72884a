//! `[aaa]`: authentication, accounting, CoA/Disconnect, health-check defaults and the
//! metrics endpoint. Every key is documented in `docs/config.md`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::radius::attrs::NasIdentity;
use crate::radius::{Options, ServerConfig};

/// Who checks subscribers' credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthBackend {
    /// The local subscriber store (`store`).
    #[default]
    Local,
    /// RADIUS servers (`[[aaa.radius.auth_server]]`).
    Radius,
}

/// `[aaa]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AaaConfig {
    /// `local` or `radius`.
    pub auth: AuthBackend,
    /// The local subscriber store (SQLite).
    pub store: PathBuf,
    /// The accounting spool (SQLite, WAL).
    pub spool: PathBuf,
    /// Milliseconds before an unacknowledged accounting record is first retried.
    pub spool_retry_min_ms: u64,
    /// The longest wait between retries of one record (the wait doubles up to this).
    pub spool_retry_max_ms: u64,
    /// Seconds between the workers' reports of every session's counters, which the spool
    /// keeps so that a Stop recovered after a crash carries counters at most this old
    /// (0: only those of the last Start or Interim-Update).
    pub spool_counters_s: u64,
    /// Not a config key: `tollgate run --spool-afresh`, the operator's override that
    /// starts a new spool when the one the marker names is missing or damaged.
    #[serde(skip)]
    pub spool_afresh: bool,
    /// SES-1 dormant timer: seconds without a packet before a session is Dormant (0: off).
    pub dormant_s: u64,
    /// SES-1 session timer: seconds a session may stay Dormant before it is closed (0: no
    /// limit).
    pub dormant_timeout_s: u64,
    /// DISC F: how long before the application's own timeout the session ends, ms.
    pub app_timeout_margin_ms: u64,
    /// Logins waiting for authentication at most; more are refused at once.
    pub max_pending_logins: usize,
    /// User-Password of first-packet logins sent to RADIUS (User-Name is the MAC);
    /// default: the MAC too.
    pub mac_password: Option<String>,
    /// NAS-Identifier in RADIUS requests (and checked in CoA requests).
    pub nas_identifier: String,
    /// NAS-IP-Address in RADIUS requests, when set.
    pub nas_ip_address: Option<Ipv4Addr>,
    /// RADIUS servers.
    pub radius: RadiusConfig,
    /// The RFC 5176 listener.
    pub coa: CoaConfig,
    /// The Prometheus endpoint.
    pub metrics: MetricsConfig,
    /// Health-check defaults.
    pub health: HealthDefaults,
}

impl Default for AaaConfig {
    fn default() -> Self {
        AaaConfig {
            auth: AuthBackend::Local,
            store: PathBuf::from("/var/lib/tollgate/subscribers.db"),
            spool: PathBuf::from("/var/lib/tollgate/accounting.db"),
            spool_retry_min_ms: 1000,
            spool_retry_max_ms: 60_000,
            spool_counters_s: 10,
            spool_afresh: false,
            dormant_s: 0,
            dormant_timeout_s: 0,
            app_timeout_margin_ms: 1000,
            max_pending_logins: 1024,
            mac_password: None,
            nas_identifier: "tollgate".into(),
            nas_ip_address: None,
            radius: RadiusConfig::default(),
            coa: CoaConfig::default(),
            metrics: MetricsConfig::default(),
            health: HealthDefaults::default(),
        }
    }
}

/// `[aaa.radius]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RadiusConfig {
    /// Milliseconds to wait for a reply before retransmitting.
    pub timeout_ms: u64,
    /// Retransmissions to one server before trying the next.
    pub retries: u32,
    /// Seconds a server that let a request time out is skipped.
    pub hold_down_s: u64,
    /// Require Message-Authenticator in Accounting-Response (Access replies always
    /// need one).
    pub accounting_message_authenticator: bool,
    /// Seconds between Interim-Updates when the server does not say
    /// (Acct-Interim-Interval); 0 sends none.
    pub interim_interval_s: u32,
    /// Local address for the client sockets.
    pub source: IpAddr,
    /// Authentication servers, tried in order.
    #[serde(rename = "auth_server")]
    pub auth_servers: Vec<RadiusServer>,
    /// Accounting servers, tried in order; none keeps records in the spool only.
    #[serde(rename = "acct_server")]
    pub acct_servers: Vec<RadiusServer>,
}

impl Default for RadiusConfig {
    fn default() -> Self {
        RadiusConfig {
            timeout_ms: 3000,
            retries: 2,
            hold_down_s: 30,
            accounting_message_authenticator: true,
            interim_interval_s: 0,
            source: IpAddr::from([0, 0, 0, 0]),
            auth_servers: Vec::new(),
            acct_servers: Vec::new(),
        }
    }
}

/// `[[aaa.radius.auth_server]]` and `[[aaa.radius.acct_server]]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RadiusServer {
    /// `IP:port`.
    pub address: SocketAddr,
    /// Shared secret.
    pub secret: String,
    /// Overrides `[aaa.radius] timeout_ms`.
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// Overrides `[aaa.radius] retries`.
    #[serde(default)]
    pub retries: Option<u32>,
}

/// `[aaa.coa]`
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CoaConfig {
    /// Where to listen (RFC 5176 uses port 3799); unset: no listener.
    pub listen: Option<SocketAddr>,
    /// Who may send requests.
    #[serde(rename = "client")]
    pub clients: Vec<CoaClientConfig>,
}

/// `[[aaa.coa.client]]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CoaClientConfig {
    /// Source address of its requests.
    pub address: IpAddr,
    /// Shared secret.
    pub secret: String,
    /// Drop its requests without a Message-Authenticator.
    #[serde(default)]
    pub require_message_authenticator: bool,
    /// Drop its requests without an Event-Timestamp (RFC 5176 §6.4 replay protection).
    #[serde(default = "yes")]
    pub require_event_timestamp: bool,
}

fn yes() -> bool {
    true
}

/// `[aaa.metrics]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Where to serve `GET /metrics`; unset: not served.
    pub listen: Option<SocketAddr>,
    /// How often the control thread renders the metrics, milliseconds.
    pub render_ms: u64,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            listen: None,
            render_ms: 1000,
        }
    }
}

/// `[aaa.health]`: defaults for health checks that do not set their own.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealthDefaults {
    /// Milliseconds between checks of one target.
    pub interval_ms: u64,
    /// Milliseconds a check may take.
    pub timeout_ms: u64,
    /// Consecutive successes that bring a target up.
    pub rise: u32,
    /// Consecutive failures that take a target down.
    pub fall: u32,
}

impl Default for HealthDefaults {
    fn default() -> Self {
        HealthDefaults {
            interval_ms: 5000,
            timeout_ms: 2000,
            rise: 2,
            fall: 3,
        }
    }
}

impl AaaConfig {
    /// Checks what serde cannot; returns the key path of the first problem and what is
    /// wrong.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let e = |k: &str, m: &str| Err((format!("aaa.{k}"), m.to_string()));
        if self.store.as_os_str().is_empty() {
            return e("store", "must not be empty");
        }
        if self.spool.as_os_str().is_empty() {
            return e("spool", "must not be empty");
        }
        if self.spool_retry_min_ms == 0 {
            return e("spool_retry_min_ms", "must be at least 1");
        }
        if self.spool_retry_max_ms < self.spool_retry_min_ms {
            return e("spool_retry_max_ms", "must be at least spool_retry_min_ms");
        }
        if self.max_pending_logins == 0 {
            return e("max_pending_logins", "must be at least 1");
        }
        if self.dormant_timeout_s > 0 && self.dormant_s == 0 {
            return e(
                "dormant_timeout_s",
                "needs dormant_s: a session only becomes dormant after dormant_s",
            );
        }
        if self.nas_identifier.is_empty() || self.nas_identifier.len() > 253 {
            return e("nas_identifier", "1 to 253 characters");
        }
        let r = &self.radius;
        if r.timeout_ms == 0 {
            return e("radius.timeout_ms", "must be at least 1");
        }
        if self.auth == AuthBackend::Radius && r.auth_servers.is_empty() {
            return e(
                "auth",
                "auth = \"radius\" needs at least one [[aaa.radius.auth_server]]",
            );
        }
        for (name, list) in [
            ("auth_server", &r.auth_servers),
            ("acct_server", &r.acct_servers),
        ] {
            for (i, s) in list.iter().enumerate() {
                if s.secret.is_empty() {
                    return e(&format!("radius.{name}[{i}].secret"), "must not be empty");
                }
                if s.timeout_ms == Some(0) {
                    return e(
                        &format!("radius.{name}[{i}].timeout_ms"),
                        "must be at least 1",
                    );
                }
                if list[..i].iter().any(|o| o.address == s.address) {
                    return e(&format!("radius.{name}[{i}].address"), "listed twice");
                }
            }
        }
        if self.coa.listen.is_some() && self.coa.clients.is_empty() {
            return e(
                "coa.client",
                "a CoA listener needs at least one [[aaa.coa.client]]",
            );
        }
        for (i, c) in self.coa.clients.iter().enumerate() {
            if c.secret.is_empty() {
                return e(&format!("coa.client[{i}].secret"), "must not be empty");
            }
            if self.coa.clients[..i].iter().any(|o| o.address == c.address) {
                return e(&format!("coa.client[{i}].address"), "listed twice");
            }
        }
        if self.metrics.render_ms < 10 {
            return e("metrics.render_ms", "must be at least 10");
        }
        let h = &self.health;
        if h.rise == 0 || h.fall == 0 {
            return e(
                if h.rise == 0 {
                    "health.rise"
                } else {
                    "health.fall"
                },
                "must be at least 1",
            );
        }
        if h.timeout_ms == 0 || h.timeout_ms > h.interval_ms {
            return e("health.timeout_ms", "must be 1 to interval_ms");
        }
        Ok(())
    }

    /// The NAS identity for RADIUS requests.
    pub fn nas(&self) -> NasIdentity {
        NasIdentity {
            identifier: self.nas_identifier.clone(),
            ip: self.nas_ip_address,
        }
    }

    /// Client servers for authentication.
    pub fn auth_servers(&self) -> Vec<ServerConfig> {
        self.servers(&self.radius.auth_servers, true)
    }

    /// Client servers for accounting.
    pub fn acct_servers(&self) -> Vec<ServerConfig> {
        self.servers(
            &self.radius.acct_servers,
            self.radius.accounting_message_authenticator,
        )
    }

    /// Client options.
    pub fn client_options(&self) -> Options {
        Options {
            hold_down: Duration::from_secs(self.radius.hold_down_s),
            ..Options::default()
        }
    }

    fn servers(&self, list: &[RadiusServer], require_ma: bool) -> Vec<ServerConfig> {
        list.iter()
            .map(|s| ServerConfig {
                addr: s.address,
                secret: s.secret.as_bytes().to_vec(),
                timeout: Duration::from_millis(s.timeout_ms.unwrap_or(self.radius.timeout_ms)),
                retries: s.retries.unwrap_or(self.radius.retries),
                require_message_authenticator: require_ma,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    const BASE: &str = "[access]\nbackend = \"memory\"\naddress = \"10.10.0.1/24\"\n[core]\nbackend = \"memory\"\naddress = \"192.0.2.1/24\"\n";

    fn parse(extra: &str) -> Result<Config, crate::config::ConfigError> {
        Config::parse(&format!("{BASE}{extra}"), "t.toml")
    }

    #[test]
    fn defaults_and_the_documented_example() {
        let c = parse("").unwrap();
        assert_eq!(c.aaa.auth, super::AuthBackend::Local);
        assert_eq!(
            c.aaa.store.to_str(),
            Some("/var/lib/tollgate/subscribers.db")
        );
        let doc = include_str!("../../docs/config.md");
        let start = doc.find("```toml\n[aaa]").unwrap() + 8;
        let example = &doc[start..start + doc[start..].find("```").unwrap()];
        let c = parse(example).unwrap();
        assert_eq!(c.aaa.auth_servers().len(), 2);
        assert_eq!(c.aaa.acct_servers()[0].addr.port(), 1813);
        assert_eq!(c.aaa.coa.clients.len(), 1);
        assert_eq!(c.aaa.nas().identifier, "tg-edge-1");
        assert!(c.aaa.auth_servers()[0].require_message_authenticator);
    }

    #[test]
    fn errors_name_the_key() {
        let e = parse("[aaa]\nauth = \"radius\"\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("aaa.auth"), "{e}");
        let e = parse("[[aaa.radius.acct_server]]\naddress = \"127.0.0.1:1813\"\nsecret = \"\"\n")
            .unwrap_err();
        assert_eq!(
            e.key.as_deref(),
            Some("aaa.radius.acct_server[0].secret"),
            "{e}"
        );
        assert_eq!(e.line, Some(9), "{e}");
        let e = parse("[aaa.coa]\nlisten = \"127.0.0.1:3799\"\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("aaa.coa.client"), "{e}");
        let e = parse("[aaa.health]\ntimeout_ms = 9000\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("aaa.health.timeout_ms"), "{e}");
        let e = parse("[aaa]\nstorr = \"x\"\n").unwrap_err();
        assert!(e.message.contains("unknown field `storr`"), "{e}");
    }
}
