//! The TOML configuration: schema, defaults, and validation whose errors name the key and
//! the line. Every key is documented in `docs/config.md`.

pub mod aaa;
pub mod dhcp;
pub mod ipv6;
pub mod l2tp;
pub mod nat64;
pub mod pppoe;

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

/// Upper bounds of the sizing keys, per worker (what a worker allocates at start; the
/// whole machine's share is checked at `run`, see [`crate::sizing`]).
pub mod limits {
    /// `subscribers.max_sessions`.
    pub const SESSIONS: usize = 1 << 24;
    /// `subscribers.max_flows`.
    pub const FLOWS: usize = 1 << 26;
    /// `arp.table_size`.
    pub const NEIGHBORS: usize = 1 << 20;
    /// `engine.buffers`.
    pub const BUFFERS: usize = 1 << 20;
    /// `engine.ring_messages` and `engine.handoff_ring`.
    pub const RING_MESSAGES: usize = 1 << 20;
    /// `engine.ring_frames`.
    pub const RING_FRAMES: usize = 1 << 16;
}

/// The embedded default: the lab that `scripts/lab.sh up` builds.
pub const DEFAULT_CONFIG: &str = include_str!("../../../config/default.toml");

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
    /// AF_XDP: program mode, frames, rings, frames left to the kernel.
    #[serde(default)]
    pub af_xdp: AfXdp,
    /// DPDK: EAL arguments, mbufs, descriptors (docs/dpdk.md).
    #[serde(default)]
    pub dpdk: Dpdk,
    /// Logging.
    #[serde(default)]
    pub log: Log,
    /// Subscriber handling: strangers, table sizes, records.
    #[serde(default)]
    pub subscribers: Subscribers,
    /// Static subscribers (`[[subscriber]]`), installed at start.
    #[serde(default, rename = "subscriber")]
    pub static_subscribers: Vec<StaticSubscriber>,
    /// Address translation to real servers.
    #[serde(default)]
    pub nat: Nat,
    /// Services behind VIPs (`[[service]]`).
    #[serde(default, rename = "service")]
    pub services: Vec<ServiceConfig>,
    /// Load-balancing ranges (`[[lb_range]]`).
    #[serde(default, rename = "lb_range")]
    pub lb_ranges: Vec<LbRangeConfig>,
    /// Address pools for logins (`[[pool]]`, SES-2).
    #[serde(default, rename = "pool")]
    pub pools: Vec<PoolConfig>,
    /// Gateway nodes whose health gates pool ranges and LB targets (`[[node]]`).
    #[serde(default, rename = "node")]
    pub nodes: Vec<NodeConfig>,
    /// The cluster's PostgreSQL (`[database]`, docs/config.md); without it every store
    /// is its embedded SQLite file.
    #[serde(default)]
    pub database: Option<crate::database::DatabaseConfig>,
    /// This node in a cluster on the `[database]` PostgreSQL (`[cluster]`: its name,
    /// heartbeat and lease); with `[database]` and no `[cluster]`, the defaults.
    #[serde(default)]
    pub cluster: Option<crate::database::cluster::ClusterConfig>,
    /// Rating and billing (`[rating]`, docs/config.md and docs/rating.md).
    #[serde(default)]
    pub rating: tollgate_control_core::rating::RatingConfig,
    /// Authentication, accounting, CoA, health checks, metrics.
    #[serde(default)]
    pub aaa: crate::config::aaa::AaaConfig,
    /// L2TP tunnels (`[l2tp]`, docs/config.md and docs/l2tp.md).
    #[serde(default)]
    pub l2tp: crate::config::l2tp::L2tpConfig,
    /// PPPoE access concentrator and PPP termination (`[pppoe]`, docs/config.md).
    #[serde(default)]
    pub pppoe: crate::config::pppoe::PppoeConfig,
    /// IPv6 for IPoE subscribers (`[ipv6]`, docs/config.md and docs/ipoe.md).
    #[serde(default)]
    pub ipv6: crate::config::ipv6::Ipv6Config,
    /// The DHCPv4 server on the access side (`[dhcp]`, docs/config.md and docs/ipoe.md).
    #[serde(default)]
    pub dhcp: crate::config::dhcp::DhcpConfig,
    /// NAT64 for IPv6 subscribers (`[nat64]`, docs/config.md and docs/ipoe.md).
    #[serde(default)]
    pub nat64: crate::config::nat64::Nat64Config,
}

/// What happens to uplink traffic from an address without a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UnknownPolicy {
    /// Forwarded as by a plain router, not counted per subscriber.
    Forward,
    /// Dropped and counted.
    Drop,
    /// Dropped, counted and reported to the control plane (first-packet login).
    Punt,
}

/// `[subscribers]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Subscribers {
    /// Uplink from addresses without a session.
    pub unknown: UnknownPolicy,
    /// Sessions each worker can hold.
    pub max_sessions: usize,
    /// NAT flows each worker can hold.
    pub max_flows: usize,
    /// Flows a subscriber may have open when its own limit does not say.
    pub flows_per_subscriber: u32,
    /// Policer burst in milliseconds of the declared rate (at least 3000 bytes).
    pub policer_burst_ms: u64,
    /// JSON-lines file the flow records are appended to ("" for none).
    pub flow_records: PathBuf,
    /// JSON-lines file every ended session's record is appended to ("" for none).
    pub session_log: PathBuf,
}

impl Default for Subscribers {
    fn default() -> Self {
        Subscribers {
            unknown: UnknownPolicy::Drop,
            max_sessions: 65536,
            max_flows: 262144,
            flows_per_subscriber: 1024,
            policer_burst_ms: 20,
            flow_records: PathBuf::new(),
            session_log: PathBuf::new(),
        }
    }
}

/// A bit rate: an integer in bit/s, or a string with a K, M or G suffix (`"10M"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "RateValue", into = "u64")]
pub struct Rate(pub u64);

#[derive(Deserialize)]
#[serde(untagged)]
enum RateValue {
    Int(u64),
    Text(String),
}

impl TryFrom<RateValue> for Rate {
    type Error = String;
    fn try_from(v: RateValue) -> Result<Rate, String> {
        match v {
            RateValue::Int(n) => Ok(Rate(n)),
            RateValue::Text(s) => s.parse(),
        }
    }
}

impl From<Rate> for u64 {
    fn from(r: Rate) -> u64 {
        r.0
    }
}

impl FromStr for Rate {
    type Err = String;
    fn from_str(s: &str) -> Result<Rate, String> {
        let t = s.trim();
        let (num, mult) = match t.char_indices().last() {
            Some((i, 'k' | 'K')) => (&t[..i], 1_000),
            Some((i, 'm' | 'M')) => (&t[..i], 1_000_000),
            Some((i, 'g' | 'G')) => (&t[..i], 1_000_000_000),
            _ => (t, 1),
        };
        num.trim()
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(mult))
            .map(Rate)
            .ok_or_else(|| {
                format!("{s:?} is not a rate: bit/s, optionally with K, M or G (\"10M\")")
            })
    }
}

/// Disconnect conditions and limits of a subscriber (DISC-1), all optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// A: maximum session time, seconds.
    pub session_timeout_s: Option<u64>,
    /// B: idle time, seconds.
    pub idle_timeout_s: Option<u64>,
    /// B per server: the server...
    pub idle_server: Option<Ipv4Addr>,
    /// ... and its idle time, seconds.
    pub idle_server_timeout_s: Option<u64>,
    /// C: bytes the subscriber may send.
    pub volume_tx_bytes: Option<u64>,
    /// C: bytes it may receive.
    pub volume_rx_bytes: Option<u64>,
    /// C: bytes both ways.
    pub volume_total_bytes: Option<u64>,
    /// C: packets it may send.
    pub volume_tx_packets: Option<u64>,
    /// C: packets it may receive.
    pub volume_rx_packets: Option<u64>,
    /// E: share of the path, percent.
    pub rate_percent: Option<u8>,
    /// E: the path's rate (default: the declared downlink bandwidth).
    pub rate_path: Option<Rate>,
    /// E: window, milliseconds (default 1000).
    pub rate_window_ms: Option<u32>,
}

impl LimitsConfig {
    /// Checks the values; the error names the field.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if self.idle_server.is_some() != self.idle_server_timeout_s.is_some() {
            return Err((
                "idle_server",
                "give idle_server and idle_server_timeout_s together".into(),
            ));
        }
        if let Some(p) = self.rate_percent
            && (p == 0 || p > 100)
        {
            return Err(("rate_percent", format!("{p} is not 1 to 100")));
        }
        if self.rate_window_ms == Some(0) {
            return Err(("rate_window_ms", "must be at least 1".into()));
        }
        Ok(())
    }
}

/// `[[subscriber]]`: a session installed at start.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StaticSubscriber {
    /// The user name.
    pub user: String,
    /// Its address.
    pub address: Ipv4Addr,
    /// Its MAC (else learned from its first frame).
    #[serde(default)]
    pub mac: Option<Mac>,
    /// Channel (line) id; default: the session id.
    #[serde(default)]
    pub channel: Option<u32>,
    /// Services it may use, by name; default: all.
    #[serde(default)]
    pub services: Option<Vec<String>>,
    /// Declared uplink bandwidth (0: not policed).
    #[serde(default)]
    pub bandwidth_up: Rate,
    /// Declared downlink bandwidth (0: not policed).
    #[serde(default)]
    pub bandwidth_down: Rate,
    /// Flows it may have open (default `subscribers.flows_per_subscriber`).
    #[serde(default)]
    pub max_flows: Option<u32>,
    /// Disconnect conditions.
    #[serde(flatten)]
    pub limits: LimitsConfig,
}

/// `[nat]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Nat {
    /// Source addresses of translated flows; empty: the core address. Must be on the
    /// core subnet (the gateway answers ARP for them).
    pub addresses: Vec<Ipv4Addr>,
    /// First NAT port.
    pub port_min: u16,
    /// Last NAT port.
    pub port_max: u16,
    /// Unanswered TCP SYN, seconds.
    pub tcp_syn_timeout_s: u64,
    /// Established TCP, seconds.
    pub tcp_established_timeout_s: u64,
    /// After one FIN, seconds.
    pub tcp_fin_timeout_s: u64,
    /// After FINs both ways, seconds.
    pub tcp_closing_timeout_s: u64,
    /// UDP, seconds.
    pub udp_timeout_s: u64,
    /// ICMP echo, seconds.
    pub icmp_timeout_s: u64,
}

impl Default for Nat {
    fn default() -> Self {
        Nat {
            addresses: Vec::new(),
            port_min: 1024,
            port_max: 65535,
            tcp_syn_timeout_s: 30,
            tcp_established_timeout_s: 7440,
            tcp_fin_timeout_s: 120,
            tcp_closing_timeout_s: 10,
            udp_timeout_s: 300,
            icmp_timeout_s: 60,
        }
    }
}

/// Protocols of a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceProtocol {
    /// TCP
    Tcp,
    /// UDP
    Udp,
    /// ICMP echo
    Icmp,
}

/// `[[service]]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    /// Its name (what subscribers' service lists and ctl use).
    pub name: String,
    /// Representative address.
    pub vip: Ipv4Addr,
    /// Protocol.
    pub protocol: ServiceProtocol,
    /// Port (not for ICMP).
    #[serde(default)]
    pub port: u16,
    /// Balancing policy.
    #[serde(default = "default_policy")]
    pub policy: String,
    /// User-session type: login, service, connection or packet.
    #[serde(default = "default_session_type")]
    pub session_type: String,
    /// The real servers.
    #[serde(rename = "server")]
    pub servers: Vec<ServerConfig>,
    /// How its servers are health-checked (NAT-5): each at its address and port.
    #[serde(default)]
    pub check: CheckType,
    /// Path for `http` checks.
    #[serde(default)]
    pub check_path: Option<String>,
}

fn default_policy() -> String {
    "round_robin".into()
}

fn default_session_type() -> String {
    "connection".into()
}

/// `[[service.server]]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address.
    pub address: Ipv4Addr,
    /// Port (default: the service's).
    #[serde(default)]
    pub port: Option<u16>,
    /// Weight for weighted round robin.
    #[serde(default = "one")]
    pub weight: u32,
    /// Priority (lower preferred).
    #[serde(default = "one")]
    pub priority: u32,
    /// Where its health check goes (e.g. its management address), default its address.
    #[serde(default)]
    pub check_address: Option<Ipv4Addr>,
}

fn one() -> u32 {
    1
}

/// How a health check probes (SES-3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckType {
    /// Not checked: always up (unless set down by ctl).
    #[default]
    None,
    /// ICMP echo.
    Icmp,
    /// TCP connect.
    Tcp,
    /// HTTP GET of `check_path`, 2xx or 3xx.
    Http,
}

/// `[[pool]]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PoolConfig {
    /// Its name (RADIUS Framed-Pool); the first pool is the default.
    pub name: String,
    /// Its ranges (`[[pool.range]]`).
    #[serde(rename = "range")]
    pub ranges: Vec<PoolRangeConfig>,
}

/// `[[pool.range]]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PoolRangeConfig {
    /// The range as a prefix (network and broadcast addresses left out), or give
    /// `first` and `last`.
    #[serde(default)]
    pub prefix: Option<Ipv4Net>,
    /// First address.
    #[serde(default)]
    pub first: Option<Ipv4Addr>,
    /// Last address.
    #[serde(default)]
    pub last: Option<Ipv4Addr>,
    /// The gateway node that serves the range (its health gates it).
    #[serde(default)]
    pub node: Option<String>,
}

impl PoolRangeConfig {
    /// (first, last) of the range.
    pub fn bounds(&self) -> Option<(Ipv4Addr, Ipv4Addr)> {
        range_bounds(self.prefix, self.first, self.last, true)
    }
}

/// A range given as a prefix or as `first` and `last` (not both); `hosts` leaves a
/// prefix's network and broadcast addresses out (prefixes longer than /30 have none).
fn range_bounds(
    prefix: Option<Ipv4Net>,
    first: Option<Ipv4Addr>,
    last: Option<Ipv4Addr>,
    hosts: bool,
) -> Option<(Ipv4Addr, Ipv4Addr)> {
    match (prefix, first, last) {
        (Some(p), None, None) => {
            let (net, bcast) = (
                u32::from(p.network()),
                u32::from(p.network()) | !prefix_mask(p.len),
            );
            let skip = (hosts && p.len < 31) as u32;
            Some((Ipv4Addr::from(net + skip), Ipv4Addr::from(bcast - skip)))
        }
        (None, Some(f), Some(l)) => Some((f, l)),
        _ => None,
    }
}

/// `[[node]]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// Its name (pool ranges name it).
    pub name: String,
    /// The address its health check probes.
    #[serde(default)]
    pub address: Option<Ipv4Addr>,
    /// Its MAC when it is a load-balancing target: follows its health (LB-3).
    #[serde(default)]
    pub mac: Option<Mac>,
    /// How it is checked.
    #[serde(default)]
    pub check: CheckType,
    /// Port for `tcp` and `http` checks.
    #[serde(default)]
    pub check_port: Option<u16>,
    /// Path for `http` checks.
    #[serde(default)]
    pub check_path: Option<String>,
}

/// `[[lb_range]]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LbRangeConfig {
    /// The source range as a prefix (or give `first` and `last`).
    #[serde(default)]
    pub prefix: Option<Ipv4Net>,
    /// First address of the range.
    #[serde(default)]
    pub first: Option<Ipv4Addr>,
    /// Last address of the range.
    #[serde(default)]
    pub last: Option<Ipv4Addr>,
    /// The primary destination MAC.
    pub primary: Mac,
    /// Substitutes, in order of preference.
    #[serde(default)]
    pub substitutes: Vec<Mac>,
}

impl LbRangeConfig {
    /// (first, last) of the range.
    pub fn bounds(&self) -> Option<(Ipv4Addr, Ipv4Addr)> {
        range_bounds(self.prefix, self.first, self.last, false)
    }
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
    /// Slots in each ring that hands packets to the worker owning their state (ports
    /// that do not steer, such as DPDK's; one ring per pair of workers and direction).
    pub handoff_ring: usize,
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
            handoff_ring: 1024,
        }
    }
}

/// `[control]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Control {
    /// Path of the Unix control socket.
    pub socket: PathBuf,
    /// Seconds a connection with no request under way may stay silent.
    pub idle_timeout_s: u64,
    /// Seconds a request line may take from its first byte to its newline (and a
    /// client may take without reading any of its reply).
    pub request_timeout_s: u64,
}

impl Default for Control {
    fn default() -> Self {
        Control {
            socket: PathBuf::from("/run/tollgate/ctl.sock"),
            idle_timeout_s: 60,
            request_timeout_s: 5,
        }
    }
}

/// Port backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// AF_PACKET rings on a Linux interface.
    AfPacket,
    /// XDP sockets on a Linux interface (feature `af_xdp`).
    AfXdp,
    /// In-memory (idle) ports: for trying the control plane without traffic.
    Memory,
    /// Capture files: used by `tollgate replay`.
    Pcap,
    /// DPDK ethdev ports: NICs bound to vfio-pci, or virtual devices (feature `dpdk`).
    Dpdk,
}

impl Backend {
    /// The config spelling.
    pub fn name(self) -> &'static str {
        match self {
            Backend::AfPacket => "af_packet",
            Backend::AfXdp => "af_xdp",
            Backend::Memory => "memory",
            Backend::Pcap => "pcap",
            Backend::Dpdk => "dpdk",
        }
    }
}

/// `[access]` and `[core]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PortConfig {
    /// Which backend.
    pub backend: Backend,
    /// Interface name (af_packet, af_xdp).
    #[serde(default)]
    pub interface: Option<String>,
    /// DPDK device (dpdk): a PCI address, or a virtual device with its arguments.
    #[serde(default)]
    pub device: Option<String>,
    /// The gateway's address and the connected subnet, e.g. `10.10.0.1/24`.
    pub address: Ipv4Net,
    /// The port's MAC (memory and pcap; af_packet and af_xdp read the interface's).
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
    /// Under sustained overload, frames older than this are dropped at the head of the
    /// rx ring (0: never).
    pub max_delay_ms: u32,
}

impl Default for AfPacket {
    /// The port's own defaults (`AfPacketConfig::new`).
    fn default() -> Self {
        use tollgate_dataplane::port::af_packet as ap;
        AfPacket {
            block_size: ap::DEFAULT_BLOCK_SIZE,
            blocks: ap::DEFAULT_BLOCK_COUNT,
            block_timeout_ms: ap::DEFAULT_BLOCK_TIMEOUT_MS,
            tx_frames: 1024,
            max_delay_ms: ap::DEFAULT_MAX_DELAY_MS,
        }
    }
}

/// How the XDP program is attached (`af_xdp.xdp_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum XdpModeConfig {
    /// Native where the driver has it, else generic (logged).
    Auto,
    /// In the driver, or an error.
    Native,
    /// In the kernel's generic path: any interface, slower.
    Generic,
}

/// Whether AF_XDP sockets use zero-copy (`af_xdp.zero_copy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ZeroCopyConfig {
    /// Where the driver supports it (logged).
    Auto,
    /// Zero-copy, or an error.
    On,
    /// Always copy.
    Off,
}

/// `[af_xdp]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AfXdp {
    /// auto | native | generic.
    pub xdp_mode: XdpModeConfig,
    /// auto | on | off.
    pub zero_copy: ZeroCopyConfig,
    /// Bytes per frame: 2048 or 4096.
    pub frame_size: usize,
    /// Frames per worker (shared by its two sockets).
    pub frames: usize,
    /// Descriptors in each socket's rx ring (frames that may wait for the worker).
    pub rx_ring: u32,
    /// Descriptors in each socket's tx ring.
    pub tx_ring: u32,
    /// Free frames each socket's fill ring offers the kernel.
    pub fill_ring: u32,
    /// Slots in each socket's completion ring (at least `tx_ring`).
    pub completion_ring: u32,
    /// Ethertypes whose frames go to the kernel instead of Tollgate (at most 8).
    pub kernel_ethertypes: Vec<u16>,
    /// IPv4 destinations whose frames go to the kernel (at most 8 prefixes).
    pub kernel_destinations: Vec<Ipv4Net>,
}

impl Default for AfXdp {
    fn default() -> Self {
        use tollgate_dataplane::port::af_xdp_defaults as ax;
        AfXdp {
            xdp_mode: XdpModeConfig::Auto,
            zero_copy: ZeroCopyConfig::Auto,
            frame_size: 2048,
            frames: 8192,
            rx_ring: ax::DEFAULT_RX_RING,
            tx_ring: ax::DEFAULT_TX_RING,
            fill_ring: ax::DEFAULT_FILL_RING,
            completion_ring: ax::DEFAULT_COMPLETION_RING,
            kernel_ethertypes: Vec::new(),
            kernel_destinations: Vec::new(),
        }
    }
}

impl AfXdp {
    /// Frames each worker keeps out of its fill rings for sending, holding and handing
    /// off: four bursts, the hold queue, and with several workers one handoff ring.
    pub fn keep_in_pool(&self, burst: usize, hold: usize, handoff: usize, workers: usize) -> usize {
        4 * burst + hold + if workers > 1 { handoff } else { 0 }
    }
}

/// `[dpdk]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Dpdk {
    /// Arguments for DPDK's EAL, as on a DPDK application's command line.
    pub eal_args: Vec<String>,
    /// Mbufs in each socket's pool.
    pub mbufs: u32,
    /// Mbufs each worker caches.
    pub mbuf_cache: u32,
    /// Rx descriptors per queue.
    pub rx_descriptors: u16,
    /// Tx descriptors per queue.
    pub tx_descriptors: u16,
    /// Receive frames for every MAC address.
    pub promiscuous: bool,
}

impl Default for Dpdk {
    fn default() -> Self {
        Dpdk {
            eal_args: Vec::new(),
            mbufs: 32767,
            mbuf_cache: 256,
            rx_descriptors: 1024,
            tx_descriptors: 1024,
            promiscuous: false,
        }
    }
}

impl Dpdk {
    /// The fewest mbufs that `workers` workers with bursts of `burst` and hold queues of
    /// `hold` need: every rx and tx descriptor of both ports, each worker's cache, bursts
    /// and hold queue, and the handoff rings.
    pub fn mbufs_needed(&self, workers: usize, burst: usize, hold: usize, handoff: usize) -> u64 {
        let w = workers as u64;
        let descriptors = 2 * w * (self.rx_descriptors as u64 + self.tx_descriptors as u64);
        let per_worker = w * (self.mbuf_cache as u64 + 4 * burst as u64 + hold as u64);
        let rings = w * w.saturating_sub(1) * handoff as u64;
        descriptors + per_worker + rings
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
        let name = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| ConfigError {
            source_name: name.clone(),
            key: None,
            line: None,
            message: format!("cannot read: {e}"),
        })?;
        Config::parse_bytes(&bytes, &name)
    }

    /// Parses and validates `bytes`, which must be UTF-8; `name` says where they came
    /// from in errors.
    pub fn parse_bytes(bytes: &[u8], name: &str) -> Result<Config, ConfigError> {
        match std::str::from_utf8(bytes) {
            Ok(src) => Config::parse(src, name),
            Err(e) => {
                let at = e.valid_up_to();
                // The text up to the end of the bad line, the bad bytes replaced, is
                // enough to say which key it is.
                let end = bytes[at..]
                    .iter()
                    .position(|b| *b == b'\n')
                    .map_or(bytes.len(), |i| at + i);
                let text = String::from_utf8_lossy(&bytes[..end]);
                let line = line_of(&text, at);
                let column = at
                    - bytes[..at]
                        .iter()
                        .rposition(|b| *b == b'\n')
                        .map_or(0, |i| i + 1)
                    + 1;
                Err(ConfigError {
                    source_name: name.to_string(),
                    key: lexical_key(&text, at),
                    line: Some(line),
                    message: format!(
                        "not UTF-8: byte 0x{:02x} at column {column} (a config file must be UTF-8 text)",
                        bytes[at]
                    ),
                })
            }
        }
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
        let mut cfg: Config = toml::from_str(src).map_err(|e| {
            let span = e.span();
            // Where the document does not parse (a duplicate key, an integer too large
            // for TOML), the key is read off the text around the error.
            let key = span.clone().and_then(|s| {
                index
                    .as_ref()
                    .and_then(|i| i.key_at(s.clone()))
                    .or_else(|| lexical_key(src, s.start))
            });
            err(
                key,
                span.map(|s| line_of(src, s.start)),
                plain_message(e.message()),
            )
        })?;
        cfg.validate().map_err(|(key, message)| {
            let line = index
                .as_ref()
                .and_then(|i| i.span_of(&key))
                .map(|s| line_of(src, s.start));
            err(Some(key), line, message)
        })?;
        // `[cluster] node` names the node wherever the database needs its name.
        if let (Some(db), Some(node)) = (
            cfg.database.as_mut(),
            cfg.cluster.as_ref().and_then(|c| c.node.clone()),
        ) {
            db.node = Some(node);
        }
        Ok(cfg)
    }

    /// This node's name in the cluster (`[cluster] node`, `[database] node`, else the
    /// host name), when there is a cluster (`[database]`).
    pub fn cluster_node(&self) -> Option<String> {
        self.database.as_ref().map(|d| d.node_name())
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
        if en.buffers > limits::BUFFERS {
            return e(
                "engine.buffers",
                format!(
                    "{} buffers per worker: at most {}",
                    en.buffers,
                    limits::BUFFERS
                ),
            );
        }
        if !(16..=limits::RING_MESSAGES).contains(&en.ring_messages) {
            return e(
                "engine.ring_messages",
                format!(
                    "{}: must be 16 to {}",
                    en.ring_messages,
                    limits::RING_MESSAGES
                ),
            );
        }
        if !(4..=limits::RING_FRAMES).contains(&en.ring_frames) {
            return e(
                "engine.ring_frames",
                format!("{}: must be 4 to {}", en.ring_frames, limits::RING_FRAMES),
            );
        }
        if en.handoff_ring > limits::RING_MESSAGES {
            return e(
                "engine.handoff_ring",
                format!("{}: at most {}", en.handoff_ring, limits::RING_MESSAGES),
            );
        }
        if en.handoff_ring < en.burst {
            return e(
                "engine.handoff_ring",
                format!(
                    "{} slots: at least one burst ({})",
                    en.handoff_ring, en.burst
                ),
            );
        }
        if self.control.socket.as_os_str().is_empty() {
            return e("control.socket", "must not be empty".into());
        }
        if !(1..=86_400).contains(&self.control.idle_timeout_s) {
            return e(
                "control.idle_timeout_s",
                format!("{}: must be 1 to 86400", self.control.idle_timeout_s),
            );
        }
        if !(1..=3_600).contains(&self.control.request_timeout_s) {
            return e(
                "control.request_timeout_s",
                format!("{}: must be 1 to 3600", self.control.request_timeout_s),
            );
        }
        for (name, p) in [("access", &self.access), ("core", &self.core)] {
            match p.backend {
                Backend::AfPacket | Backend::AfXdp => {
                    let b = p.backend.name();
                    if p.interface.as_deref().is_none_or(str::is_empty) {
                        return e(
                            &format!("{name}.interface"),
                            format!("{b} needs an interface name"),
                        );
                    }
                    if p.mac.is_some() {
                        return e(
                            &format!("{name}.mac"),
                            format!("{b} uses the interface's own MAC; remove `mac`"),
                        );
                    }
                }
                Backend::Dpdk => {
                    if p.device.as_deref().is_none_or(str::is_empty) {
                        return e(
                            &format!("{name}.device"),
                            "dpdk needs a device: a PCI address (\"0000:03:00.0\") or a virtual device (\"net_null0\", \"net_af_packet0,iface=eth1\")".into(),
                        );
                    }
                    if p.interface.is_some() {
                        return e(
                            &format!("{name}.interface"),
                            "the dpdk backend names its port with `device`; remove `interface`"
                                .into(),
                        );
                    }
                    if p.mac.is_some() {
                        return e(
                            &format!("{name}.mac"),
                            "dpdk uses the device's own MAC; remove `mac`".into(),
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
            if p.device.is_some() && p.backend != Backend::Dpdk {
                return e(
                    &format!("{name}.device"),
                    format!(
                        "only the dpdk backend has a device, not {}; remove `device`",
                        p.backend.name()
                    ),
                );
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
        if self.access.device.is_some() && self.access.device == self.core.device {
            return e(
                "core.device",
                "access and core must be different devices".into(),
            );
        }
        self.validate_dpdk()?;
        self.validate_af_xdp()?;
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
        if !(1..=limits::NEIGHBORS).contains(&arp.table_size) {
            return e(
                "arp.table_size",
                format!(
                    "{} neighbours per worker: must be 1 to {}",
                    arp.table_size,
                    limits::NEIGHBORS
                ),
            );
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
        if let Some(c) = &self.cluster {
            c.validate(self.database.as_ref())?;
        }
        if let Some(db) = &self.database {
            db.validate()?;
            if let Some(file) = &self.rating.database {
                return Err((
                    "rating.database".to_string(),
                    format!(
                        "{}: with [database] the rating ledger is in PostgreSQL; leave rating.database out",
                        file.display()
                    ),
                ));
            }
        }
        self.validate_subscribers()?;
        self.l2tp.validate(self)?;
        self.pppoe.validate()?;
        self.ipv6.validate()?;
        self.nat64.validate(self)?;
        self.dhcp.validate()?;
        tollgate_control_core::rating::Plan::compile(&self.rating)?;
        Ok(())
    }

    /// The rule subscriber addresses are checked against (the same the running core
    /// applies): the access subnet, the gateway's addresses, the pools.
    pub fn subscriber_addresses(
        &self,
    ) -> tollgate_control_core::gateway::addresses::SubscriberAddresses {
        tollgate_control_core::gateway::addresses::SubscriberAddresses {
            access: (self.access.address.addr, self.access.address.len),
            gateway: [self.access.address.addr, self.core.address.addr]
                .into_iter()
                .chain(self.nat.addresses.iter().copied())
                .collect(),
            pools: self
                .pools
                .iter()
                .flat_map(|p| p.ranges.iter().filter_map(PoolRangeConfig::bounds))
                .collect(),
        }
    }

    fn validate_pools(&self) -> Result<(), (String, String)> {
        let e = |k: String, m: String| Err((k, m));
        for (i, n) in self.nodes.iter().enumerate() {
            let k = |f: &str| format!("node[{i}].{f}");
            if n.name.is_empty() || self.nodes[..i].iter().any(|o| o.name == n.name) {
                return e(k("name"), format!("{:?} is empty or used twice", n.name));
            }
            if n.check != CheckType::None && n.address.is_none() {
                return e(k("address"), "a checked node needs an address".into());
            }
            if matches!(n.check, CheckType::Tcp | CheckType::Http) && n.check_port.is_none() {
                return e(k("check_port"), "tcp and http checks need a port".into());
            }
            if n.check == CheckType::Http && n.check_path.is_none() {
                return e(k("check_path"), "http checks need a path".into());
            }
        }
        let mut seen: Vec<(u32, u32, String)> = Vec::new();
        for (i, p) in self.pools.iter().enumerate() {
            if p.name.is_empty() || self.pools[..i].iter().any(|o| o.name == p.name) {
                return e(
                    format!("pool[{i}].name"),
                    format!("{:?} is empty or used twice", p.name),
                );
            }
            if p.ranges.is_empty() {
                return e(
                    format!("pool[{i}].range"),
                    "a pool needs at least one [[pool.range]]".into(),
                );
            }
            for (j, r) in p.ranges.iter().enumerate() {
                let k = |f: &str| format!("pool[{i}].range[{j}]{f}");
                let Some((first, last)) = r.bounds() else {
                    return e(
                        k(""),
                        "give either `prefix` or both `first` and `last`".into(),
                    );
                };
                let (f, l) = (u32::from(first), u32::from(last));
                if l < f {
                    return e(k(".last"), format!("{last} is before {first}"));
                }
                let acc = &self.access.address;
                if !acc.contains(first) || !acc.contains(last) {
                    return e(
                        k(""),
                        format!("{first}-{last} is not inside the access subnet {acc}"),
                    );
                }
                if let Err(why) = self.subscriber_addresses().check_range(first, last) {
                    return e(
                        k(""),
                        format!("{first}-{last} holds an address no subscriber can have: {why}"),
                    );
                }
                if let Some((_, _, other)) = seen.iter().find(|(of, ol, _)| *of <= l && f <= *ol) {
                    return e(k(""), format!("overlaps {other}"));
                }
                seen.push((f, l, format!("pool[{i}].range[{j}]")));
                // In a cluster a range may name another node of the cluster.
                if let Some(n) = &r.node
                    && self.database.is_none()
                    && !self.nodes.iter().any(|x| &x.name == n)
                {
                    return e(k(".node"), format!("no [[node]] is named {n:?}"));
                }
            }
        }
        for (i, s) in self.services.iter().enumerate() {
            if s.check == CheckType::Http && s.check_path.is_none() {
                return e(
                    format!("service[{i}].check_path"),
                    "http checks need a path".into(),
                );
            }
            if s.check != CheckType::None
                && s.check != CheckType::Icmp
                && s.protocol != ServiceProtocol::Tcp
            {
                return e(
                    format!("service[{i}].check"),
                    "tcp and http checks are for TCP services; use icmp".into(),
                );
            }
        }
        Ok(())
    }

    fn validate_af_xdp(&self) -> Result<(), (String, String)> {
        let e = |k: &str, m: String| Err((k.to_string(), m));
        let x = &self.af_xdp;
        if x.frame_size != 2048 && x.frame_size != 4096 {
            return e(
                "af_xdp.frame_size",
                format!("{}: must be 2048 or 4096", x.frame_size),
            );
        }
        for (k, n) in [
            ("af_xdp.rx_ring", x.rx_ring),
            ("af_xdp.tx_ring", x.tx_ring),
            ("af_xdp.fill_ring", x.fill_ring),
            ("af_xdp.completion_ring", x.completion_ring),
        ] {
            if !n.is_power_of_two() || !(64..=65536).contains(&n) {
                return e(k, format!("{n}: must be a power of two from 64 to 65536"));
            }
        }
        if x.completion_ring < x.tx_ring {
            return e(
                "af_xdp.completion_ring",
                format!(
                    "{}: must be at least af_xdp.tx_ring ({})",
                    x.completion_ring, x.tx_ring
                ),
            );
        }
        let en = &self.engine;
        let keep = x.keep_in_pool(en.burst, self.arp.hold_packets, en.handoff_ring, en.workers);
        let needed = keep + 2 * 64;
        if x.frames < needed {
            return e(
                "af_xdp.frames",
                format!(
                    "{} frames per worker: at least {needed} needed (four bursts, the hold queue{}, and some for the fill rings)",
                    x.frames,
                    if en.workers > 1 {
                        ", a handoff ring"
                    } else {
                        ""
                    }
                ),
            );
        }
        if x.frames
            .saturating_mul(x.frame_size)
            .saturating_mul(en.workers)
            > 1 << 32
        {
            return e(
                "af_xdp.frames",
                "frames x frame_size x workers must stay within 4 GiB".into(),
            );
        }
        if x.kernel_ethertypes.len() > 8 {
            return e("af_xdp.kernel_ethertypes", "at most 8".into());
        }
        if let Some(t) = x.kernel_ethertypes.iter().find(|t| **t < 0x0600) {
            return e(
                "af_xdp.kernel_ethertypes",
                format!("{t:#06x} is a length, not an ethertype (ethertypes are 0x0600 and up)"),
            );
        }
        if x.kernel_destinations.len() > 8 {
            return e("af_xdp.kernel_destinations", "at most 8 prefixes".into());
        }
        if self.access.backend == Backend::AfXdp && !cfg!(feature = "af_xdp") {
            return e(
                "access.backend",
                "this tollgate was built without AF_XDP: build it where libbpf-dev and clang are installed with `make build` (cargo build --release --features af_xdp), see docs/config.md".into(),
            );
        }
        Ok(())
    }

    fn validate_dpdk(&self) -> Result<(), (String, String)> {
        let e = |k: &str, m: String| Err((k.to_string(), m));
        let d = &self.dpdk;
        if let Some(i) = d
            .eal_args
            .iter()
            .position(|a| a.is_empty() || a.contains('\0'))
        {
            return e(
                &format!("dpdk.eal_args[{i}]"),
                "an EAL argument must not be empty or contain NUL".into(),
            );
        }
        if d.mbuf_cache > 512 {
            return e("dpdk.mbuf_cache", format!("{}: at most 512", d.mbuf_cache));
        }
        for (k, n) in [
            ("dpdk.rx_descriptors", d.rx_descriptors),
            ("dpdk.tx_descriptors", d.tx_descriptors),
        ] {
            if !(64..=32768).contains(&n) {
                return e(k, format!("{n}: must be 64 to 32768"));
            }
        }
        if self.access.backend != Backend::Dpdk {
            return Ok(());
        }
        let en = &self.engine;
        let needed = d.mbufs_needed(en.workers, en.burst, self.arp.hold_packets, en.handoff_ring);
        if (d.mbufs as u64) < needed || (d.mbuf_cache as u64) * 3 / 2 > d.mbufs as u64 {
            return e(
                "dpdk.mbufs",
                format!(
                    "{} mbufs: at least {needed} needed for {} workers (rx and tx descriptors of both ports, each worker's cache, bursts and hold queue, the handoff rings), and 1.5 times dpdk.mbuf_cache",
                    d.mbufs, en.workers
                ),
            );
        }
        if !cfg!(feature = "dpdk") {
            return e(
                "access.backend",
                "this tollgate was built without DPDK: build it with `make build-dpdk` (cargo build --release --features dpdk), see docs/dpdk.md".into(),
            );
        }
        Ok(())
    }

    fn validate_subscribers(&self) -> Result<(), (String, String)> {
        let e = |k: String, m: String| Err((k, m));
        let sub = &self.subscribers;
        if !(1..=limits::SESSIONS).contains(&sub.max_sessions) {
            return e(
                "subscribers.max_sessions".into(),
                format!(
                    "{} sessions per worker: must be 1 to {} (more workers hold more)",
                    sub.max_sessions,
                    limits::SESSIONS
                ),
            );
        }
        if !(1..=limits::FLOWS).contains(&sub.max_flows) {
            return e(
                "subscribers.max_flows".into(),
                format!(
                    "{} flows per worker: must be 1 to {} (more workers hold more)",
                    sub.max_flows,
                    limits::FLOWS
                ),
            );
        }
        let nat = &self.nat;
        if nat.port_min == 0 || nat.port_min > nat.port_max {
            return e(
                "nat.port_min".into(),
                format!(
                    "ports {}-{} are not a range of non-zero ports",
                    nat.port_min, nat.port_max
                ),
            );
        }
        let per_worker = (nat.port_max - nat.port_min) as usize / self.engine.workers + 1;
        if per_worker < 16 {
            return e(
                "nat.port_max".into(),
                format!("{per_worker} ports per worker is too few"),
            );
        }
        for (i, a) in nat.addresses.iter().enumerate() {
            if !self.core.address.contains(*a) || *a == self.core.address.network() {
                return e(
                    format!("nat.addresses[{i}]"),
                    format!("{a} is not a host of the core subnet {}", self.core.address),
                );
            }
            if nat.addresses[..i].contains(a) {
                return e(
                    format!("nat.addresses[{i}]"),
                    format!("{a} is listed twice"),
                );
            }
        }
        let mut names: Vec<&str> = Vec::new();
        if self.services.len() > 128 {
            return e(
                "service".into(),
                format!("{} services: at most 128", self.services.len()),
            );
        }
        for (i, s) in self.services.iter().enumerate() {
            let k = |f: &str| format!("service[{i}].{f}");
            if s.name.is_empty() || names.contains(&s.name.as_str()) {
                return e(k("name"), format!("{:?} is empty or used twice", s.name));
            }
            names.push(&s.name);
            if policy(&s.policy).is_none() {
                return e(
                    k("policy"),
                    format!(
                        "{:?}: use round_robin, weighted_round_robin, priority, least_connections, fastest_response or lowest_cpu_load",
                        s.policy
                    ),
                );
            }
            match session_type(&s.session_type) {
                None => {
                    return e(
                        k("session_type"),
                        format!(
                            "{:?}: use login, service, connection or packet",
                            s.session_type
                        ),
                    );
                }
                Some(tollgate_dataplane::service::SessionType::Packet)
                    if s.protocol != ServiceProtocol::Udp =>
                {
                    return e(
                        k("session_type"),
                        "the packet session type is for UDP services".into(),
                    );
                }
                Some(_) => {}
            }
            if s.protocol != ServiceProtocol::Icmp && s.port == 0 {
                return e(k("port"), "TCP and UDP services need a port".into());
            }
            if s.servers.is_empty() {
                return e(
                    k("server"),
                    "a service needs at least one [[service.server]]".into(),
                );
            }
            if self.access.address.contains(s.vip)
                || self.core.address.contains(s.vip)
                || !is_unicast(s.vip)
            {
                return e(
                    k("vip"),
                    format!(
                        "{} must be a unicast address outside the access and core subnets",
                        s.vip
                    ),
                );
            }
            if self.services[..i].iter().any(|o| {
                o.vip == s.vip
                    && o.protocol == s.protocol
                    && (s.protocol == ServiceProtocol::Icmp || o.port == s.port)
            }) {
                return e(
                    k("port"),
                    format!(
                        "another service already listens on {}:{} ({:?})",
                        s.vip, s.port, s.protocol
                    ),
                );
            }
            for (j, srv) in s.servers.iter().enumerate() {
                if !is_unicast(srv.address) {
                    return e(
                        format!("service[{i}].server[{j}].address"),
                        format!("{} is not a unicast address", srv.address),
                    );
                }
                if srv.weight == 0 {
                    return e(
                        format!("service[{i}].server[{j}].weight"),
                        "must be at least 1".into(),
                    );
                }
            }
        }
        for (i, sub) in self.static_subscribers.iter().enumerate() {
            let k = |f: &str| format!("subscriber[{i}].{f}");
            if sub.user.is_empty() || sub.user.contains('\0') {
                return e(k("user"), "must not be empty or contain NUL".into());
            }
            if let Err(why) = self.subscriber_addresses().check(sub.address) {
                return e(k("address"), why.to_string());
            }
            if self.static_subscribers[..i]
                .iter()
                .any(|o| o.address == sub.address)
            {
                return e(k("address"), format!("{} is listed twice", sub.address));
            }
            if let Some(list) = &sub.services
                && let Some(bad) = list.iter().find(|n| !names.contains(&n.as_str()))
            {
                return e(k("services"), format!("no service is named {bad:?}"));
            }
            if let Err((f, m)) = sub.limits.check() {
                return e(k(f), m);
            }
        }
        self.validate_pools()?;
        for (i, r) in self.lb_ranges.iter().enumerate() {
            let Some((first, last)) = r.bounds() else {
                return e(
                    format!("lb_range[{i}]"),
                    "give either `prefix` or both `first` and `last`".into(),
                );
            };
            if u32::from(last) < u32::from(first) {
                return e(
                    format!("lb_range[{i}].last"),
                    format!("{last} is before {first}"),
                );
            }
            if let Some(j) = self.lb_ranges[..i].iter().position(|o| {
                o.bounds().is_some_and(|(f, l)| {
                    u32::from(f) <= u32::from(last) && u32::from(first) <= u32::from(l)
                })
            }) {
                return e(format!("lb_range[{i}]"), format!("overlaps lb_range[{j}]"));
            }
        }
        Ok(())
    }
}

fn broadcast(n: Ipv4Net) -> Option<Ipv4Addr> {
    (n.len < 31).then(|| Ipv4Addr::from(u32::from(n.addr) | !prefix_mask(n.len)))
}

fn is_unicast(a: Ipv4Addr) -> bool {
    !(a.is_multicast() || a.is_broadcast() || a.is_loopback() || a.is_unspecified())
}

/// toml's message in the operator's words where it is obscure.
fn plain_message(m: &str) -> String {
    let m = m.trim();
    // An integer beyond TOML's 64 bits: "invalid type: integer `N` as i128, expected T".
    if let Some(rest) = m.strip_prefix("invalid type: integer `")
        && let Some((n, tail)) = rest.split_once("` as i128")
    {
        let expected = tail.trim_start_matches(", ");
        return format!("integer {n} is out of range ({expected})");
    }
    if m.starts_with("number too large") || m.contains("too large to fit") {
        return format!("{m}: integers must fit in 64 bits");
    }
    m.to_string()
}

/// The dotted key at `offset` of `src`, from the text alone: the table header above it
/// (with array-of-tables indexes) and the key before `=` on its line, or the header
/// itself when the offset is on one. For errors in text that does not parse.
fn lexical_key(src: &str, offset: usize) -> Option<String> {
    let mut counts: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let resolve = |segs: &[String], counts: &std::collections::HashMap<String, usize>| {
        let mut path = String::new();
        for s in segs {
            path = join(&path, s);
            if let Some(n) = counts.get(&path) {
                path = format!("{path}[{}]", n - 1);
            }
        }
        path
    };
    let segments = |s: &str| -> Vec<String> {
        s.split('.')
            .map(|x| x.trim().trim_matches('"').trim_matches('\'').to_string())
            .collect()
    };
    let mut table = String::new();
    let mut start = 0;
    for line in src.split_inclusive('\n') {
        let end = start + line.len();
        let t = line.trim();
        let here = offset >= start && (offset < end || end == src.len());
        if let Some(inner) = t.strip_prefix("[[").and_then(|r| r.split("]]").next()) {
            let segs = segments(inner);
            let (last, parent) = segs.split_last()?;
            let array = join(&resolve(parent, &counts), last);
            *counts.entry(array.clone()).or_insert(0) += 1;
            table = format!("{array}[{}]", counts[&array] - 1);
        } else if let Some(inner) = t.strip_prefix('[').and_then(|r| r.split(']').next()) {
            table = resolve(&segments(inner), &counts);
        } else if here {
            let (k, _) = t.split_once('=')?;
            let k = segments(k).join(".");
            return (!k.is_empty() && !t.starts_with('#')).then(|| join(&table, &k));
        }
        if here {
            return (!table.is_empty()).then_some(table);
        }
        start = end;
    }
    None
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

/// The balancing policy named `s`.
pub fn policy(s: &str) -> Option<tollgate_dataplane::service::Policy> {
    tollgate_dataplane::service::Policy::ALL
        .into_iter()
        .find(|p| p.name() == s)
}

/// The session type named `s`.
pub fn session_type(s: &str) -> Option<tollgate_dataplane::service::SessionType> {
    [
        tollgate_dataplane::service::SessionType::Login,
        tollgate_dataplane::service::SessionType::Service,
        tollgate_dataplane::service::SessionType::Connection,
        tollgate_dataplane::service::SessionType::Packet,
    ]
    .into_iter()
    .find(|t| t.name() == s)
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
    fn cluster_names_the_node_and_needs_postgresql() {
        let c =
            parse("[database]\nurl = \"postgres://tg@localhost/x\"\n[cluster]\nnode = \"gw1\"\n")
                .unwrap();
        assert_eq!(c.database.as_ref().unwrap().node_name(), "gw1");
        assert_eq!(c.cluster_node().as_deref(), Some("gw1"));
        let e = parse("[cluster]\nnode = \"gw1\"\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("cluster.node"), "{e}");
        assert!(e.to_string().contains("PostgreSQL"), "{e}");
        let e = parse(
            "[database]\nurl = \"postgres://tg@localhost/x\"\nnode = \"a\"\n[cluster]\nnode = \"b\"\n",
        )
        .unwrap_err();
        assert_eq!(e.key.as_deref(), Some("cluster.node"), "{e}");
    }

    #[test]
    fn database_selects_postgresql_and_is_checked_at_load() {
        assert!(parse("").unwrap().database.is_none(), "SQLite by default");
        let c = parse(
            "[database]\nurl = \"postgres://tg:pw@127.0.0.1:5432/tollgate\"\nnode = \"gw1\"\n",
        )
        .unwrap();
        let db = c.database.unwrap();
        assert_eq!((db.node_name(), db.connect_timeout_s), ("gw1".into(), 5));
        assert_eq!(db.target(), "tg@127.0.0.1:5432/tollgate");
        let e = parse("[database]\nurl = \"postgres://tg:s3cret@[::1/x\"\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("database.url"), "{e}");
        assert!(!e.to_string().contains("s3cret"), "{e}");
        let e = parse(
            "[database]\nurl = \"postgres://tg@localhost/x\"\n[rating]\ndatabase = \"r.db\"\n",
        )
        .unwrap_err();
        assert_eq!(e.key.as_deref(), Some("rating.database"), "{e}");
        let e = parse("[database]\nurl = \"postgres://tg@localhost/x\"\nconnect_timeout_s = 0\n")
            .unwrap_err();
        assert_eq!(e.key.as_deref(), Some("database.connect_timeout_s"), "{e}");
    }

    const DPDK: &str = r#"
[dpdk]
eal_args = ["--no-huge", "-m", "512"]

[access]
backend = "dpdk"
device = "net_null0"
address = "10.10.0.1/24"

[core]
backend = "dpdk"
device = "net_null1"
address = "192.0.2.1/24"
"#;

    #[test]
    fn dpdk_ports_need_a_device_build_and_enough_mbufs() {
        let c = Config::parse(DPDK, "d.toml");
        if cfg!(feature = "dpdk") {
            let c = c.unwrap();
            assert_eq!(c.access.device.as_deref(), Some("net_null0"));
            assert_eq!(c.dpdk.mbufs, 32767);
            assert_eq!(c.engine.handoff_ring, 1024);
        } else {
            let e = c.unwrap_err();
            assert_eq!(e.key.as_deref(), Some("access.backend"), "{e}");
            assert_eq!(e.line, Some(6), "{e}");
            assert!(e.message.contains("make build-dpdk"), "{e}");
        }
        let no_device = DPDK.replace("device = \"net_null1\"\n", "");
        let e = Config::parse(&no_device, "d.toml").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("core.device"), "{e}");
        assert!(e.message.contains("PCI address"), "{e}");
        let same = DPDK.replace("net_null1", "net_null0");
        let e = Config::parse(&same, "d.toml").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("core.device"), "{e}");
        let few = DPDK.replace("-m\", \"512\"]", "-m\", \"512\"]\nmbufs = 4000");
        let e = Config::parse(&few, "d.toml").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("dpdk.mbufs"), "{e}");
        assert_eq!(e.line, Some(4), "{e}");
        assert!(
            e.message.contains("at least 4544 needed for 1 workers"),
            "{e}"
        );
        let empty_arg = DPDK.replace("\"-m\", ", "\"\", ");
        let e = Config::parse(&empty_arg, "d.toml").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("dpdk.eal_args[1]"), "{e}");
        assert_eq!(e.line, Some(3), "{e}");
        let e = parse("\n[dpdk]\nrx_descriptors = 8\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("dpdk.rx_descriptors"), "{e}");
        let on_memory = BASE.replace(
            "backend = \"memory\"\n",
            "backend = \"memory\"\ndevice = \"x\"\n",
        );
        let e = Config::parse(&on_memory, "t.toml").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("access.device"), "{e}");
        assert!(e.message.contains("only the dpdk backend"), "{e}");
    }

    const AF_XDP: &str = r#"
[access]
backend = "af_xdp"
interface = "acc0"
address = "10.10.0.1/24"

[core]
backend = "af_xdp"
interface = "core0"
address = "192.0.2.1/24"
"#;

    #[test]
    fn af_xdp_ports_need_an_interface_the_build_and_sane_rings() {
        let c = Config::parse(AF_XDP, "x.toml");
        if cfg!(feature = "af_xdp") {
            let c = c.unwrap();
            assert_eq!(c.access.backend, Backend::AfXdp);
            assert_eq!(c.af_xdp.xdp_mode, XdpModeConfig::Auto);
            assert_eq!(c.af_xdp.frames, 8192);
        } else {
            let e = c.unwrap_err();
            assert_eq!(e.key.as_deref(), Some("access.backend"), "{e}");
            assert!(e.message.contains("built without AF_XDP"), "{e}");
        }
        let no_if = AF_XDP.replace("interface = \"core0\"\n", "");
        let e = Config::parse(&no_if, "x.toml").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("core.interface"), "{e}");
        assert!(e.message.contains("af_xdp needs an interface"), "{e}");
        let with_mac = AF_XDP.replace(
            "interface = \"acc0\"\n",
            "interface = \"acc0\"\nmac = \"02:00:00:00:00:09\"\n",
        );
        let e = Config::parse(&with_mac, "x.toml").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("access.mac"), "{e}");
        for (extra, key, says) in [
            ("rx_ring = 1000", "af_xdp.rx_ring", "power of two"),
            (
                "tx_ring = 4096",
                "af_xdp.completion_ring",
                "at least af_xdp.tx_ring",
            ),
            ("frame_size = 1500", "af_xdp.frame_size", "2048 or 4096"),
            ("frames = 100", "af_xdp.frames", "frames per worker"),
            (
                "kernel_ethertypes = [0x05dc]",
                "af_xdp.kernel_ethertypes",
                "a length",
            ),
            (
                "kernel_ethertypes = [1536, 1537, 1538, 1539, 1540, 1541, 1542, 1543, 1544]",
                "af_xdp.kernel_ethertypes",
                "at most 8",
            ),
            ("xdp_mode = \"fast\"", "af_xdp.xdp_mode", "unknown variant"),
        ] {
            let e = parse(&format!("\n[af_xdp]\n{extra}\n")).unwrap_err();
            assert_eq!(e.key.as_deref(), Some(key), "{extra}: {e}");
            assert!(e.message.contains(says), "{extra}: {e}");
        }
        let c = parse("\n[af_xdp]\nkernel_ethertypes = [0x88cc]\nkernel_destinations = [\"192.0.2.250/32\"]\nzero_copy = \"off\"\n")
            .unwrap();
        assert_eq!(c.af_xdp.kernel_ethertypes, vec![0x88cc]);
        assert_eq!(
            c.af_xdp.kernel_destinations[0].to_string(),
            "192.0.2.250/32"
        );
        assert_eq!(c.af_xdp.zero_copy, ZeroCopyConfig::Off);
    }

    #[test]
    fn af_packet_defaults_are_the_ports_own() {
        let c = parse("").unwrap();
        let d = tollgate_dataplane::port::af_packet::AfPacketConfig::new("x");
        assert_eq!(
            (
                c.af_packet.block_size,
                c.af_packet.blocks,
                c.af_packet.block_timeout_ms,
                c.af_packet.max_delay_ms
            ),
            (
                d.block_size,
                d.block_count,
                d.block_timeout_ms,
                d.max_delay_ms
            )
        );
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
    fn pools_and_nodes() {
        let c = parse("[[node]]\nname = \"a\"\n[[pool]]\nname = \"p\"\n[[pool.range]]\nprefix = \"10.10.0.64/26\"\nnode = \"a\"\n[[pool.range]]\nfirst = \"10.10.0.200\"\nlast = \"10.10.0.201\"\n").unwrap();
        let b: Vec<_> = c.pools[0]
            .ranges
            .iter()
            .map(|r| r.bounds().unwrap())
            .collect();
        let ip = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        assert_eq!(
            b,
            vec![
                (ip("10.10.0.65"), ip("10.10.0.126")),
                (ip("10.10.0.200"), ip("10.10.0.201"))
            ],
            "a prefix gives its hosts"
        );
        for (extra, key) in [
            (
                "[[pool]]\nname = \"p\"\n[[pool.range]]\nprefix = \"10.10.1.0/24\"\n",
                "pool[0].range[0]",
            ),
            (
                "[[pool]]\nname = \"p\"\n[[pool.range]]\nfirst = \"10.10.0.1\"\nlast = \"10.10.0.9\"\n",
                "pool[0].range[0]",
            ),
            (
                "[[pool]]\nname = \"p\"\n[[pool.range]]\nprefix = \"10.10.0.64/26\"\nnode = \"x\"\n",
                "pool[0].range[0].node",
            ),
            (
                "[[pool]]\nname = \"p\"\n[[pool.range]]\nprefix = \"10.10.0.64/26\"\n[[pool]]\nname = \"q\"\n[[pool.range]]\nfirst = \"10.10.0.100\"\nlast = \"10.10.0.200\"\n",
                "pool[1].range[0]",
            ),
            ("[[pool]]\nname = \"p\"\nrange = []\n", "pool[0].range"),
            (
                "[[node]]\nname = \"a\"\ncheck = \"tcp\"\naddress = \"192.0.2.5\"\n",
                "node[0].check_port",
            ),
            (
                "[[node]]\nname = \"a\"\ncheck = \"icmp\"\n",
                "node[0].address",
            ),
        ] {
            let e = parse(extra).unwrap_err();
            assert_eq!(e.key.as_deref(), Some(key), "{extra}: {e}");
        }
    }

    #[test]
    fn static_subscribers_and_pools_follow_the_address_rule() {
        for (extra, key, why) in [
            (
                "[[subscriber]]\nuser = \"a\"\naddress = \"10.10.0.0\"\n",
                "subscriber[0].address",
                "network address",
            ),
            (
                "[[subscriber]]\nuser = \"a\"\naddress = \"10.10.0.255\"\n",
                "subscriber[0].address",
                "broadcast address",
            ),
            (
                "[[subscriber]]\nuser = \"a\"\naddress = \"192.0.2.1\"\n",
                "subscriber[0].address",
                "gateway's own address",
            ),
            (
                "[[subscriber]]\nuser = \"a\"\naddress = \"224.1.2.3\"\n",
                "subscriber[0].address",
                "not a unicast address",
            ),
            (
                "[[subscriber]]\nuser = \"a\\u0000b\"\naddress = \"10.10.0.9\"\n",
                "subscriber[0].user",
                "NUL",
            ),
            (
                "[[pool]]\nname = \"p\"\n[[pool.range]]\nfirst = \"10.10.0.200\"\nlast = \"10.10.0.255\"\n",
                "pool[0].range[0]",
                "10.10.0.255 is the broadcast address",
            ),
            (
                "[[pool]]\nname = \"p\"\n[[pool.range]]\nfirst = \"10.10.0.0\"\nlast = \"10.10.0.0\"\n",
                "pool[0].range[0]",
                "10.10.0.0 is the network address",
            ),
        ] {
            let e = parse(extra).unwrap_err();
            assert_eq!(e.key.as_deref(), Some(key), "{extra}: {e}");
            assert!(e.message.contains(why), "{extra}: {e}");
        }
        parse("[[subscriber]]\nuser = \"a\"\naddress = \"10.10.0.254\"\n").unwrap();
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
    fn sizing_keys_are_bounded_and_named() {
        for (extra, key) in [
            (
                "[subscribers]\nmax_sessions = 100000000\n",
                "subscribers.max_sessions",
            ),
            (
                "[subscribers]\nmax_flows = 1000000000\n",
                "subscribers.max_flows",
            ),
            ("[arp]\ntable_size = 100000000\n", "arp.table_size"),
            ("[engine]\nbuffers = 100000000\n", "engine.buffers"),
            (
                "[engine]\nring_messages = 100000000\n",
                "engine.ring_messages",
            ),
            ("[engine]\nring_frames = 100000000\n", "engine.ring_frames"),
            (
                "[engine]\nhandoff_ring = 100000000\n",
                "engine.handoff_ring",
            ),
        ] {
            let e = parse(extra).unwrap_err();
            assert_eq!(
                (e.key.as_deref(), e.line),
                (Some(key), Some(10)),
                "{extra}: {e}"
            );
            assert!(e.message.contains("100000000"), "{e}");
        }
        let c = parse("[subscribers]\nmax_sessions = 16777216\nmax_flows = 67108864\n").unwrap();
        assert_eq!(c.subscribers.max_sessions, limits::SESSIONS);
    }

    #[test]
    fn duplicate_keys_overflow_and_non_utf8_name_key_and_line() {
        let e = parse("[engine]\nworkers = 1\nworkers = 2\n").unwrap_err();
        assert_eq!(
            (e.key.as_deref(), e.line),
            (Some("engine.workers"), Some(11)),
            "{e}"
        );
        assert!(e.message.contains("duplicate key"), "{e}");
        let e = parse("[[subscriber]]\nuser = \"a\"\naddress = \"10.10.0.5\"\n[[subscriber]]\nuser = \"b\"\nuser = \"c\"\n").unwrap_err();
        assert_eq!(
            (e.key.as_deref(), e.line),
            (Some("subscriber[1].user"), Some(14)),
            "{e}"
        );
        let e = parse("[engine]\nworkers = 1\n[engine]\nburst = 8\n").unwrap_err();
        assert_eq!(
            (e.key.as_deref(), e.line),
            (Some("engine"), Some(11)),
            "{e}"
        );
        let e = parse("[subscribers]\nmax_sessions = 99999999999999999999999\n").unwrap_err();
        assert_eq!(
            (e.key.as_deref(), e.line),
            (Some("subscribers.max_sessions"), Some(10)),
            "{e}"
        );
        assert!(e.message.contains("out of range"), "{e}");
        let e = parse("[arp]\nretries = 99999999999\n").unwrap_err();
        assert_eq!(
            (e.key.as_deref(), e.line),
            (Some("arp.retries"), Some(10)),
            "{e}"
        );
        let src = format!("{BASE}[[subscriber]]\nuser = \"caf\u{e9}\"\n");
        let mut bytes = src.into_bytes();
        let i = bytes.windows(2).position(|w| w == [0xc3, 0xa9]).unwrap();
        bytes.splice(i..i + 2, [0xe9]);
        let e = Config::parse_bytes(&bytes, "t.toml").unwrap_err();
        assert_eq!(
            (e.key.as_deref(), e.line),
            (Some("subscriber[0].user"), Some(10)),
            "{e}"
        );
        assert!(
            e.message.contains("not UTF-8: byte 0xe9 at column 12"),
            "{e}"
        );
        let e = Config::parse_bytes(b"# caf\xe9\n[engine]\n", "t.toml").unwrap_err();
        assert_eq!((e.key, e.line), (None, Some(1)), "a comment has no key");
    }

    proptest::proptest! {
        #[test]
        fn errors_of_any_text_or_bytes_never_panic(
            src in "(\\[\\[?[a-z.\"]{0,8}\\]?\\]?\n|[a-z_.\" ]{0,10}=? ?[0-9a-z\"#]{0,12}\n){0,12}",
            at in 0usize..200,
            raw in proptest::collection::vec(proptest::num::u8::ANY, 0..200),
        ) {
            let _ = lexical_key(&src, at.min(src.len()));
            let _ = Config::parse(&src, "p");
            let _ = Config::parse_bytes(&raw, "p");
        }
    }

    #[test]
    fn syntax_error_has_line() {
        let e = Config::parse("[engine\nworkers = 1\n", "t").unwrap_err();
        assert_eq!(e.line, Some(1), "{e}");
    }
}
