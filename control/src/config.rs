//! The TOML configuration: schema, defaults, and validation whose errors name the key and
//! the line. Every key is documented in `docs/config.md`.

use std::fmt;
use std::net::Ipv4Addr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use tollgate_dataplane::MAX_BURST;
use tollgate_dataplane::MacAddr;
use tollgate_dataplane::fib::prefix_mask;
use tollgate_dataplane::hold::HOLD_MAX;

/// The embedded default: the lab that `scripts/lab.sh up` builds.
pub const DEFAULT_CONFIG: &str = include_str!("../../config/default.toml");

/// The whole configuration.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Workers, bursts, buffers, rings.
    #[serde(default)]
    pub engine: Engine,
    /// The control socket.
    #[serde(default)]
    pub control: Control,
    /// The subscriber-facing port.
    pub access: PortConfig,
    /// The server-facing port.
    pub core: PortConfig,
    /// Static routes (`[[route]]`).
    #[serde(default, rename = "route")]
    pub routes: Vec<RouteConfig>,
    /// Static neighbours (`[[neighbor]]`).
    #[serde(default, rename = "neighbor")]
    pub neighbors: Vec<StaticNeighbor>,
    /// Neighbour resolution.
    #[serde(default)]
    pub arp: Arp,
    /// The gateway's own ICMP.
    #[serde(default)]
    pub icmp: Icmp,
    /// AF_PACKET ring geometry.
    #[serde(default)]
    pub af_packet: AfPacket,
    /// Logging.
    #[serde(default)]
    pub log: Log,
    /// Authentication, accounting, CoA, health checks, metrics.
    #[serde(default)]
    pub aaa: crate::aaa_config::AaaConfig,
}

/// `[engine]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Engine {
    /// Worker threads.
    pub workers: usize,
    /// Packets per rx burst.
    pub burst: usize,
    /// Cores to pin workers to, one per worker; empty chooses automatically.
    pub cores: Vec<usize>,
    /// Packet buffers per worker.
    pub buffers: usize,
    /// Microseconds a worker sleeps after a poll that found nothing; 0 busy-polls.
    pub idle_sleep_us: u64,
    /// Slots in each command and event ring.
    pub ring_messages: usize,
    /// Slots in each punt and inject ring.
    pub ring_frames: usize,
}

impl Default for Engine {
    fn default() -> Self {
        Engine {
            workers: 1,
            burst: 32,
            cores: Vec::new(),
            buffers: 4096,
            idle_sleep_us: 50,
            ring_messages: 1024,
            ring_frames: 256,
        }
    }
}

/// `[control]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Control {
    /// Path of the Unix control socket.
    pub socket: PathBuf,
}

impl Default for Control {
    fn default() -> Self {
        Control {
            socket: PathBuf::from("/run/tollgate/ctl.sock"),
        }
    }
}

/// Port backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// AF_PACKET rings on a Linux interface.
    AfPacket,
    /// In-memory (idle) ports: for trying the control plane without traffic.
    Memory,
    /// Capture files: used by `tollgate replay`.
    Pcap,
}

impl Backend {
    /// The config spelling.
    pub fn name(self) -> &'static str {
        match self {
            Backend::AfPacket => "af_packet",
            Backend::Memory => "memory",
            Backend::Pcap => "pcap",
        }
    }
}

/// `[access]` and `[core]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PortConfig {
    /// Which backend.
    pub backend: Backend,
    /// Interface name (af_packet).
    #[serde(default)]
    pub interface: Option<String>,
    /// The gateway's address and the connected subnet, e.g. `10.10.0.1/24`.
    pub address: Ipv4Net,
    /// The port's MAC (memory and pcap; af_packet reads the interface's).
    #[serde(default)]
    pub mac: Option<Mac>,
}

/// `[[route]]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Destination prefix.
    pub prefix: Ipv4Net,
    /// Gateway on a connected subnet.
    pub via: Ipv4Addr,
}

/// `[[neighbor]]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StaticNeighbor {
    /// The neighbour's address, on a connected subnet.
    pub address: Ipv4Addr,
    /// Its MAC.
    pub mac: Mac,
}

/// `[arp]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Arp {
    /// Neighbours each worker can track.
    pub table_size: usize,
    /// Milliseconds between requests while resolving.
    pub retry_ms: u64,
    /// Requests before a neighbour is declared unreachable.
    pub retries: u32,
    /// Seconds a learned neighbour is trusted before it is probed again.
    pub reachable_s: u64,
    /// Milliseconds a failed neighbour is not asked about again.
    pub failed_ms: u64,
    /// Packets each worker holds while their next hop resolves.
    pub hold_packets: usize,
    /// Milliseconds a packet may be held.
    pub hold_timeout_ms: u64,
}

impl Default for Arp {
    fn default() -> Self {
        Arp {
            table_size: 4096,
            retry_ms: 1000,
            retries: 3,
            reachable_s: 300,
            failed_ms: 3000,
            hold_packets: 64,
            hold_timeout_ms: 3000,
        }
    }
}

/// `[icmp]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Icmp {
    /// ICMP errors (time exceeded) each worker may send per second; 0 sends none.
    pub errors_per_s: u32,
}

impl Default for Icmp {
    fn default() -> Self {
        Icmp { errors_per_s: 100 }
    }
}

/// `[af_packet]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AfPacket {
    /// Bytes per rx ring block (a power of two, multiple of the page size).
    pub block_size: usize,
    /// Blocks in the rx ring.
    pub blocks: usize,
    /// Milliseconds after which the kernel hands over a partly filled block.
    pub block_timeout_ms: u32,
    /// Frames in the tx ring.
    pub tx_frames: usize,
}

impl Default for AfPacket {
    fn default() -> Self {
        AfPacket {
            block_size: 1 << 16,
            blocks: 64,
            block_timeout_ms: 1,
            tx_frames: 1024,
        }
    }
}

/// `[log]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Log {
    /// error, warn, info, debug or trace (or a tracing filter such as `tollgate=debug`).
    pub level: String,
}

impl Default for Log {
    fn default() -> Self {
        Log {
            level: "info".into(),
        }
    }
}

/// An IPv4 address with a prefix length, e.g. `10.10.0.1/24`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Ipv4Net {
    /// The address.
    pub addr: Ipv4Addr,
    /// The prefix length.
    pub len: u8,
}

impl Ipv4Net {
    /// The network address (host bits cleared).
    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) & prefix_mask(self.len))
    }

    /// True if `ip` is inside.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & prefix_mask(self.len) == u32::from(self.network())
    }

    /// True if the two prefixes share an address.
    pub fn overlaps(&self, o: &Ipv4Net) -> bool {
        self.contains(o.network()) || o.contains(self.network())
    }
}

impl FromStr for Ipv4Net {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (a, l) = s.split_once('/').ok_or_else(|| {
            format!("{s:?} is not an address with a prefix length, like 10.0.0.1/24")
        })?;
        let addr: Ipv4Addr = a
            .parse()
            .map_err(|_| format!("{a:?} is not an IPv4 address"))?;
        let len: u8 = l
            .parse()
            .ok()
            .filter(|l| *l <= 32)
            .ok_or_else(|| format!("prefix length {l:?} is not between 0 and 32"))?;
        Ok(Ipv4Net { addr, len })
    }
}

impl TryFrom<String> for Ipv4Net {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<Ipv4Net> for String {
    fn from(n: Ipv4Net) -> String {
        n.to_string()
    }
}

impl fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// A MAC address in the config, e.g. `02:00:00:00:00:01`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Mac(pub MacAddr);

impl TryFrom<String> for Mac {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse::<MacAddr>().map(Mac).map_err(|e| e.to_string())
    }
}

impl From<Mac> for String {
    fn from(m: Mac) -> String {
        m.0.to_string()
    }
}

/// A configuration error, naming the key and the line where it can.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file (or `<embedded default>`).
    pub source_name: String,
    /// The key, as a dotted path such as `route[1].via`.
    pub key: Option<String>,
    /// 1-based line number.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.source_name)?;
        if let Some(l) = self.line {
            write!(f, ": line {l}")?;
        }
        if let Some(k) = &self.key {
            write!(f, ": key `{k}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// The embedded default.
    pub fn embedded() -> Config {
        // The embedded default is validated by a unit test, so this cannot fail.
        Config::parse(DEFAULT_CONFIG, "<embedded default>").unwrap_or_else(|e| panic!("{e}"))
    }

    /// Reads and validates a file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let src = std::fs::read_to_string(path).map_err(|e| ConfigError {
            source_name: path.display().to_string(),
            key: None,
            line: None,
            message: format!("cannot read: {e}"),
        })?;
        Config::parse(&src, &path.display().to_string())
    }

    /// Parses and validates `src`; `name` says where it came from in errors.
    pub fn parse(src: &str, name: &str) -> Result<Config, ConfigError> {
        let index = SpanIndex::build(src);
        let err = |key: Option<String>, line: Option<usize>, message: String| ConfigError {
            source_name: name.to_string(),
            key,
            line,
            message,
        };
        let cfg: Config = toml::from_str(src).map_err(|e| {
            let span = e.span();
            let key = span
                .clone()
                .and_then(|s| index.as_ref().and_then(|i| i.key_at(s)));
            err(
                key,
                span.map(|s| line_of(src, s.start)),
                e.message().trim().to_string(),
            )
        })?;
        cfg.validate().map_err(|(key, message)| {
            let line = index
                .as_ref()
                .and_then(|i| i.span_of(&key))
                .map(|s| line_of(src, s.start));
            err(Some(key), line, message)
        })?;
        Ok(cfg)
    }

    /// Checks what serde cannot: ranges, cross references, overlaps. Returns the key path
    /// of the first problem and what is wrong.
    fn validate(&self) -> Result<(), (String, String)> {
        let e = |k: &str, m: String| Err((k.to_string(), m));
        let en = &self.engine;
        if en.workers == 0 || en.workers > 256 {
            return e(
                "engine.workers",
                format!("{} workers: must be 1 to 256", en.workers),
            );
        }
        if en.burst == 0 || en.burst > MAX_BURST {
            return e(
                "engine.burst",
                format!("burst {} must be 1 to {MAX_BURST}", en.burst),
            );
        }
        if !en.cores.is_empty() && en.cores.len() < en.workers {
            return e(
                "engine.cores",
                format!(
                    "{} cores listed for {} workers: list one per worker, or none",
                    en.cores.len(),
                    en.workers
                ),
            );
        }
        let min_buffers = 4 * en.burst + self.arp.hold_packets;
        if en.buffers < min_buffers {
            return e(
                "engine.buffers",
                format!(
                    "{} buffers: at least {min_buffers} needed (4 bursts and the hold queue)",
                    en.buffers
                ),
            );
        }
        if en.ring_messages < 16 {
            return e("engine.ring_messages", "must be at least 16".into());
        }
        if en.ring_frames < 4 {
            return e("engine.ring_frames", "must be at least 4".into());
        }
        if self.control.socket.as_os_str().is_empty() {
            return e("control.socket", "must not be empty".into());
        }
        for (name, p) in [("access", &self.access), ("core", &self.core)] {
            match p.backend {
                Backend::AfPacket => {
                    if p.interface.as_deref().is_none_or(str::is_empty) {
                        return e(
                            &format!("{name}.interface"),
                            "af_packet needs an interface name".into(),
                        );
                    }
                    if p.mac.is_some() {
                        return e(
                            &format!("{name}.mac"),
                            "af_packet uses the interface's own MAC; remove `mac`".into(),
                        );
                    }
                }
                Backend::Memory | Backend::Pcap => {
                    if p.interface.is_some() {
                        return e(
                            &format!("{name}.interface"),
                            format!(
                                "the {} backend has no interface; remove `interface`",
                                p.backend.name()
                            ),
                        );
                    }
                }
            }
            let a = p.address;
            if a.len > 30 {
                return e(
                    &format!("{name}.address"),
                    format!(
                        "/{} leaves no room for neighbours; use /30 or shorter",
                        a.len
                    ),
                );
            }
            if a.addr == a.network() || Some(a.addr) == broadcast(a) {
                return e(
                    &format!("{name}.address"),
                    format!("{} is the subnet's network or broadcast address", a),
                );
            }
            if !is_unicast(a.addr) {
                return e(
                    &format!("{name}.address"),
                    format!("{} is not a unicast address", a.addr),
                );
            }
        }
        if self.access.backend != self.core.backend {
            return e(
                "core.backend",
                format!(
                    "access uses {} and core uses {}: both sides must use the same backend",
                    self.access.backend.name(),
                    self.core.backend.name()
                ),
            );
        }
        if self.access.interface.is_some() && self.access.interface == self.core.interface {
            return e(
                "core.interface",
                "access and core must be different interfaces".into(),
            );
        }
        if self.access.address.overlaps(&self.core.address) {
            return e(
                "core.address",
                format!(
                    "{} overlaps the access subnet {}",
                    self.core.address, self.access.address
                ),
            );
        }
        let ours = [self.access.address.addr, self.core.address.addr];
        for (i, r) in self.routes.iter().enumerate() {
            if r.prefix.addr != r.prefix.network() {
                return e(
                    &format!("route[{i}].prefix"),
                    format!(
                        "{} has host bits set; did you mean {}/{}?",
                        r.prefix,
                        r.prefix.network(),
                        r.prefix.len
                    ),
                );
            }
            if !(self.access.address.contains(r.via) || self.core.address.contains(r.via)) {
                return e(
                    &format!("route[{i}].via"),
                    format!("{} is not on the access or core subnet", r.via),
                );
            }
            if ours.contains(&r.via) {
                return e(
                    &format!("route[{i}].via"),
                    format!("{} is the gateway's own address", r.via),
                );
            }
            if self.routes[..i].iter().any(|o| o.prefix == r.prefix) {
                return e(
                    &format!("route[{i}].prefix"),
                    format!("{} is listed twice", r.prefix),
                );
            }
        }
        for (i, n) in self.neighbors.iter().enumerate() {
            if !(self.access.address.contains(n.address) || self.core.address.contains(n.address)) {
                return e(
                    &format!("neighbor[{i}].address"),
                    format!("{} is not on the access or core subnet", n.address),
                );
            }
            if ours.contains(&n.address) {
                return e(
                    &format!("neighbor[{i}].address"),
                    format!("{} is the gateway's own address", n.address),
                );
            }
            if self.neighbors[..i].iter().any(|o| o.address == n.address) {
                return e(
                    &format!("neighbor[{i}].address"),
                    format!("{} is listed twice", n.address),
                );
            }
            if n.mac.0.is_multicast() || n.mac.0 == MacAddr::ZERO {
                return e(
                    &format!("neighbor[{i}].mac"),
                    format!("{} is not a unicast MAC", n.mac.0),
                );
            }
        }
        let arp = &self.arp;
        if arp.retries == 0 {
            return e("arp.retries", "must be at least 1".into());
        }
        if arp.retry_ms < 10 {
            return e("arp.retry_ms", "must be at least 10".into());
        }
        if arp.table_size == 0 {
            return e("arp.table_size", "must be at least 1".into());
        }
        if arp.hold_packets > HOLD_MAX {
            return e("arp.hold_packets", format!("at most {HOLD_MAX}"));
        }
        if arp.reachable_s == 0 {
            return e("arp.reachable_s", "must be at least 1".into());
        }
        let ap = &self.af_packet;
        if !ap.block_size.is_power_of_two() || ap.block_size < 4096 {
            return e(
                "af_packet.block_size",
                "must be a power of two, at least 4096".into(),
            );
        }
        if ap.blocks < 2 {
            return e("af_packet.blocks", "must be at least 2".into());
        }
        if ap.tx_frames < 2 * en.burst {
            return e(
                "af_packet.tx_frames",
                format!("must be at least two bursts ({})", 2 * en.burst),
            );
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            return e(
                "log.level",
                format!(
                    "{:?} is not a level (error, warn, info, debug, trace)",
                    self.log.level
                ),
            );
        }
        self.aaa.validate()?;
        Ok(())
    }
}

fn broadcast(n: Ipv4Net) -> Option<Ipv4Addr> {
    (n.len < 31).then(|| Ipv4Addr::from(u32::from(n.addr) | !prefix_mask(n.len)))
}

fn is_unicast(a: Ipv4Addr) -> bool {
    !(a.is_multicast() || a.is_broadcast() || a.is_loopback() || a.is_unspecified())
}

fn line_of(src: &str, offset: usize) -> usize {
    src[..offset.min(src.len())]
        .bytes()
        .filter(|b| *b == b'\n')
        .count()
        + 1
}

/// Where each key of a TOML document is, by dotted path.
struct SpanIndex {
    entries: Vec<(String, Range<usize>)>,
}

impl SpanIndex {
    fn build(src: &str) -> Option<SpanIndex> {
        let doc = toml_edit::Document::parse(src).ok()?;
        let mut entries = Vec::new();
        walk_table(doc.as_table(), "", &mut entries);
        Some(SpanIndex { entries })
    }

    /// The span of `path`, or of its nearest listed parent.
    fn span_of(&self, path: &str) -> Option<Range<usize>> {
        let mut p = path;
        loop {
            if let Some((_, s)) = self.entries.iter().find(|(k, _)| k == p) {
                return Some(s.clone());
            }
            let cut = p.rfind(['.', '['])?;
            p = &p[..cut];
        }
    }

    /// The innermost key whose span overlaps `span`.
    fn key_at(&self, span: Range<usize>) -> Option<String> {
        let end = span.end.max(span.start + 1);
        self.entries
            .iter()
            .filter(|(_, s)| s.start < end && span.start < s.end)
            .min_by_key(|(_, s)| s.end - s.start)
            .map(|(k, _)| k.clone())
    }
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

fn walk_table(t: &toml_edit::Table, prefix: &str, out: &mut Vec<(String, Range<usize>)>) {
    for (k, item) in t.iter() {
        let path = join(prefix, k);
        let start = t.key(k).and_then(|k| k.span()).map(|s| s.start);
        let end = item.span().map(|s| s.end);
        if let Some(start) = start.or(item.span().map(|s| s.start)) {
            out.push((path.clone(), start..end.unwrap_or(start + 1).max(start + 1)));
        }
        walk_item(item, &path, out);
    }
}

fn walk_item(item: &toml_edit::Item, path: &str, out: &mut Vec<(String, Range<usize>)>) {
    match item {
        toml_edit::Item::Table(t) => walk_table(t, path, out),
        toml_edit::Item::ArrayOfTables(a) => {
            for (i, t) in a.iter().enumerate() {
                let p = format!("{path}[{i}]");
                if let Some(s) = t.span() {
                    out.push((p.clone(), s));
                }
                walk_table(t, &p, out);
            }
        }
        toml_edit::Item::Value(v) => walk_value(v, path, out),
        toml_edit::Item::None => {}
    }
}

fn walk_value(v: &toml_edit::Value, path: &str, out: &mut Vec<(String, Range<usize>)>) {
    match v {
        toml_edit::Value::InlineTable(t) => {
            for (k, item) in t.iter() {
                let p = join(path, k);
                if let Some(s) = item.span() {
                    let start = t
                        .key(k)
                        .and_then(|k| k.span())
                        .map_or(s.start, |ks| ks.start);
                    out.push((p.clone(), start..s.end));
                }
                walk_value(item, &p, out);
            }
        }
        toml_edit::Value::Array(a) => {
            for (i, item) in a.iter().enumerate() {
                let p = format!("{path}[{i}]");
                if let Some(s) = item.span() {
                    out.push((p.clone(), s));
                }
                walk_value(item, &p, out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
[access]
backend = "memory"
address = "10.10.0.1/24"

[core]
backend = "memory"
address = "192.0.2.1/24"
"#;

    fn parse(extra: &str) -> Result<Config, ConfigError> {
        Config::parse(&format!("{BASE}{extra}"), "test.toml")
    }

    #[test]
    fn embedded_default_is_valid() {
        let c = Config::embedded();
        assert_eq!(c.access.backend, Backend::AfPacket);
        assert_eq!(c.access.address.to_string(), "10.10.0.1/24");
        assert_eq!(c.engine.burst, 32);
    }

    #[test]
    fn defaults_fill_missing_sections() {
        let c = parse("").unwrap();
        assert_eq!(c.engine.workers, 1);
        assert_eq!(c.arp.retries, 3);
        assert_eq!(c.control.socket, PathBuf::from("/run/tollgate/ctl.sock"));
    }

    #[test]
    fn bad_mac_names_key_and_line() {
        let src = "\n[access]\nbackend = \"memory\"\naddress = \"10.10.0.1/24\"\nmac = \"02:00:zz:00:00:01\"\n\n[core]\nbackend = \"memory\"\naddress = \"192.0.2.1/24\"\n";
        let e = Config::parse(src, "t.toml").unwrap_err();
        assert_eq!(e.line, Some(5), "{e}");
        assert_eq!(e.key.as_deref(), Some("access.mac"), "{e}");
        assert!(e.message.contains("invalid MAC"), "{e}");
        assert!(
            e.to_string()
                .starts_with("t.toml: line 5: key `access.mac`: "),
            "{e}"
        );
    }

    #[test]
    fn unknown_key_and_wrong_type() {
        let e = parse("[engine]\nworkerz = 2\n").unwrap_err();
        assert_eq!(e.line, Some(10), "{e}");
        assert!(e.message.contains("unknown field `workerz`"), "{e}");
        let e = parse("[engine]\nworkers = \"two\"\n").unwrap_err();
        assert_eq!(e.line, Some(10), "{e}");
        assert_eq!(e.key.as_deref(), Some("engine.workers"), "{e}");
    }

    #[test]
    fn semantic_errors_name_key_and_line() {
        let e = parse("[[route]]\nprefix = \"0.0.0.0/0\"\nvia = \"192.0.2.254\"\n[[route]]\nprefix = \"198.51.100.0/24\"\nvia = \"203.0.113.1\"\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("route[1].via"), "{e}");
        assert_eq!(e.line, Some(14), "{e}");
        assert!(e.message.contains("203.0.113.1"), "{e}");

        let e =
            parse("[[route]]\nprefix = \"198.51.100.1/24\"\nvia = \"192.0.2.254\"\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("route[0].prefix"), "{e}");
        assert!(e.message.contains("did you mean 198.51.100.0/24"), "{e}");

        let e = parse("[engine]\nburst = 0\n").unwrap_err();
        assert_eq!(
            (e.key.as_deref(), e.line),
            (Some("engine.burst"), Some(10)),
            "{e}"
        );
    }

    #[test]
    fn cross_checks() {
        let overlap = "\n[access]\nbackend = \"memory\"\naddress = \"10.10.0.1/16\"\n[core]\nbackend = \"memory\"\naddress = \"10.10.5.1/24\"\n";
        let e = Config::parse(overlap, "t").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("core.address"));
        assert_eq!(e.line, Some(7));

        let mixed = "[access]\nbackend = \"memory\"\naddress = \"10.10.0.1/24\"\n[core]\nbackend = \"af_packet\"\ninterface = \"eth1\"\naddress = \"192.0.2.1/24\"\n";
        let e = Config::parse(mixed, "t").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("core.backend"), "{e}");

        let e = parse("[[neighbor]]\naddress = \"10.10.0.1\"\nmac = \"02:00:00:00:00:09\"\n")
            .unwrap_err();
        assert!(e.message.contains("own address"), "{e}");

        let missing = "[access]\nbackend = \"memory\"\n[core]\nbackend = \"memory\"\naddress = \"192.0.2.1/24\"\n";
        let e = Config::parse(missing, "t").unwrap_err();
        assert!(e.message.contains("missing field `address`"), "{e}");
        assert_eq!(e.key.as_deref(), Some("access"), "{e}");
    }

    #[test]
    fn syntax_error_has_line() {
        let e = Config::parse("[engine\nworkers = 1\n", "t").unwrap_err();
        assert_eq!(e.line, Some(1), "{e}");
    }
}
