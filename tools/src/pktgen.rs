//! `tollgate pktgen`: the built-in traffic generator.
//!
//! It plays both ends of a gateway: subscribers on the access side and the servers on
//! the core side, each behind one port of any backend (the [`Port`] trait, so every
//! backend the gateway has, DPDK included, is one the generator has). N subscribers
//! each open M flows to a target (a VIP, or a server directly); every frame carries a
//! stamp in its payload (flow, direction, transmit time), so what comes back is matched
//! to its flow and its latency measured without any per-flow lookup.
//!
//! A run has three phases. Warm-up: one uplink packet per flow (a SYN for TCP, with the
//! stamp as its data), until each arrives on the core side, which teaches the generator
//! the flow's server and the address and port the gateway translated it to; for TCP the
//! SYN-ACK goes back down. Measurement: the mix (uplink share, frame sizes cycled,
//! flows round-robin) at a fixed rate or as fast as the ports take it, for a duration
//! or a packet count. Drain: receive what is still on its way. ARP requests from the
//! gateway (for servers, for subscribers) are answered on both sides throughout.

pub mod pppoe;

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde_json::{Value, json};
use tollgate_dataplane::buf::{BufPool, Burst, PacketBuf};
use tollgate_dataplane::counters::DropReason;
use tollgate_dataplane::fib::NextHop;
use tollgate_dataplane::port::af_packet::{AfPacketConfig, AfPacketPort};
use tollgate_dataplane::port::memory::MemoryPort;
use tollgate_dataplane::port::pcap::PcapPort;
use tollgate_dataplane::port::{BufOf, Port};
use tollgate_dataplane::session::{Bandwidth, Limits, ServiceSet};
use tollgate_dataplane::snapshot::Publisher;
use tollgate_dataplane::time::Instant;
use tollgate_dataplane::{HeapPool, MacAddr, Side, Worker, worker_rings};
use tollgate_testkit::traffic::{self, Ends, tcp_flags};

use tollgate_control::config::Config;
use tollgate_control::dispatch::Dispatcher;
use tollgate_control::outlets::Outlets;
use tollgate_control::router;
use tollgate_control::setup;
use tollgate_control_core::gateway::Core;
use tollgate_control_core::gateway::sessions::SessionRequest;

/// The port backends the generator runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// An in-process gateway (built from --config) joined to the generator by memory
    /// rings: no root, no interfaces, exact counts on both ends.
    Memory,
    /// AF_PACKET sockets on two interfaces facing a gateway (veth pairs in the lab).
    AfPacket,
    /// Writes what it would send to capture files (a workload for `tollgate replay`),
    /// and reads captures back as what was received.
    Pcap,
    /// DPDK devices (built with the `dpdk` feature): --access-if and --core-if are
    /// device specs (a PCI address, or a vdev such as `net_tap0,iface=gen0`), the EAL
    /// arguments come from --eal.
    #[cfg(feature = "dpdk")]
    Dpdk,
}

/// The transport of the flows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Proto {
    /// UDP datagrams.
    Udp,
    /// TCP: SYN and SYN-ACK in the warm-up, then data segments both ways.
    Tcp,
}

/// Arguments of `tollgate pktgen`.
#[derive(clap::Args, Debug, Clone)]
#[command(after_help = "\
The generator is both the subscribers (on the access port) and the servers (on the core \
port). Every frame carries a 16-byte stamp (flow, direction, send time) in its payload; \
frames that come back through the gateway are counted per direction and their latency \
measured. ARP requests arriving on either port are answered with that port's MAC, so \
the gateway resolves servers and subscribers to the generator.

Examples:
  tollgate pktgen --backend memory --seconds 2
      an in-process gateway with the embedded config, 100 subscribers x 4 TCP flows to \
the VIP 203.0.113.10:80, as fast as it goes
  tollgate pktgen --backend memory --config my.toml --protocol udp --target 203.0.113.20:53
  tollgate pktgen --backend af-packet --access-if gen-acc --core-if gen-core \\
      --gateway-mac 02:00:00:00:00:01,02:00:00:00:00:02 --rate 200k --seconds 5 --json
      against a gateway (Tollgate or the kernel) on the far ends of two veth pairs
  tollgate pktgen --backend pcap --access-out up.pcap --core-out down.pcap --count 10000
      a capture of the uplink mix (no gateway: nothing is learned, so no downlink)
  tollgate pktgen --pppoe --auth chap --subscribers 1000 --svlan 100-109 --cvlan 1-100 \
      --protocol udp --target 192.0.2.21:8080 --count 100000
      1000 PPPoE subscribers on 1:1 QinQ lines: discovery, LCP, CHAP, IPCP against the \
in-process gateway (the embedded config with PPPoE on and a local store of pktgen0.. \
pktgen999), then the traffic in their sessions, then LCP Terminate-Request and PADT; \
reports the set-up and teardown rates, the sessions whose every packet came back, and \
what the gateway still holds and accounted")]
pub struct PktgenArgs {
    /// Where the frames go.
    #[arg(long, value_enum, default_value = "memory")]
    pub backend: Backend,
    /// The gateway's config (memory backend; default: the embedded one). Its services,
    /// addresses and limits apply; its port backends are ignored.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Access-side interface (af-packet), or DPDK device (dpdk).
    #[arg(long)]
    pub access_if: Option<String>,
    /// Core-side interface (af-packet), or DPDK device (dpdk).
    #[arg(long)]
    pub core_if: Option<String>,
    /// EAL arguments, space-separated (dpdk), e.g. "--no-huge -m 512 --no-pci -l 0".
    #[cfg(feature = "dpdk")]
    #[arg(long, default_value = "", allow_hyphen_values = true)]
    pub eal: String,
    /// The gateway's access and core MACs, comma-separated (af-packet, pcap; the memory
    /// backend knows them).
    #[arg(long, value_delimiter = ',')]
    pub gateway_mac: Vec<String>,
    /// Capture of frames to read as received on the access side (pcap).
    #[arg(long)]
    pub access_in: Option<PathBuf>,
    /// Capture of frames to read as received on the core side (pcap).
    #[arg(long)]
    pub core_in: Option<PathBuf>,
    /// Where frames sent on the access side are written (pcap).
    #[arg(long)]
    pub access_out: Option<PathBuf>,
    /// Where frames sent on the core side are written (pcap).
    #[arg(long)]
    pub core_out: Option<PathBuf>,
    /// Subscribers, on consecutive addresses from --first-subscriber.
    #[arg(long, default_value_t = 100)]
    pub subscribers: u32,
    /// The first subscriber's address.
    #[arg(long, default_value = "10.10.0.100")]
    pub first_subscriber: Ipv4Addr,
    /// Flows per subscriber (source ports from 20000 up).
    #[arg(long, default_value_t = 4)]
    pub flows: u32,
    /// Where the flows go: a VIP and port, or a server's.
    #[arg(long, default_value = "203.0.113.10:80")]
    pub target: std::net::SocketAddrV4,
    /// Transport.
    #[arg(long, value_enum, default_value = "tcp")]
    pub protocol: Proto,
    /// Frame sizes in bytes (Ethernet header included, no FCS), used in turn; raised to
    /// the headers and stamp (58 B for UDP, 70 B for TCP) where smaller.
    #[arg(long, value_delimiter = ',', default_value = "64")]
    pub sizes: Vec<usize>,
    /// Share of the packets sent uplink (from subscribers); the rest go downlink.
    #[arg(long, default_value_t = 0.5)]
    pub uplink_share: f64,
    /// Packets per second in all, with k and M suffixes, or "max".
    #[arg(long, default_value = "max")]
    pub rate: String,
    /// Seconds of measured traffic.
    #[arg(long, default_value_t = 2.0)]
    pub seconds: f64,
    /// Stop after this many measured packets instead (overrides --seconds).
    #[arg(long)]
    pub count: Option<u64>,
    /// How long to keep receiving after the last packet, in milliseconds.
    #[arg(long, default_value_t = 200)]
    pub drain_ms: u64,
    /// Packets per tx burst.
    #[arg(long, default_value_t = 32)]
    pub burst: usize,
    /// Memory backend: install no sessions for the subscribers (the config's own static
    /// subscribers and its `unknown` policy decide).
    #[arg(long)]
    pub no_sessions: bool,
    /// Be PPPoE subscribers: each does discovery (PADI, PADO, PADR, PADS), LCP, PAP or
    /// CHAP, IPCP (its address comes from the gateway), then the traffic in its session,
    /// then LCP Terminate-Request and PADT. --first-subscriber is not used.
    #[arg(long)]
    pub pppoe: bool,
    /// PPPoE, memory backend without --config: the authentication the in-process
    /// gateway asks for (its store holds both a CHAP secret and a PAP password for every
    /// subscriber).
    #[arg(long, value_enum, default_value = "chap")]
    pub auth: PppAuth,
    /// PPPoE: S-VLAN ids, `100` or `100-149`; with --cvlan, 1:1 QinQ (the C-VLAN moves
    /// fastest), alone one 802.1Q tag per subscriber. Lines are shared again past the
    /// range.
    #[arg(long)]
    pub svlan: Option<pppoe::VlanRange>,
    /// PPPoE: C-VLAN ids, `1-4094`; alone, one 802.1Q tag per subscriber.
    #[arg(long)]
    pub cvlan: Option<pppoe::VlanRange>,
    /// PPPoE with QinQ: the outer tag's TPID.
    #[arg(long, default_value = "0x88a8", value_parser = parse_tpid)]
    pub outer_tpid: u16,
    /// PPPoE: subscriber i logs in as this prefix followed by i.
    #[arg(long, default_value = "pktgen")]
    pub user_prefix: String,
    /// PPPoE: every subscriber's CHAP secret and PAP password.
    #[arg(long, default_value = "pktgen-secret")]
    pub secret: String,
    /// PPPoE, memory backend: an existing subscriber store to log in against (it must
    /// hold the --user-prefix users with --secret); default a temporary one filled with
    /// --subscribers users.
    #[arg(long)]
    pub store: Option<PathBuf>,
    /// PPPoE: subscribers setting up (or ending) at once.
    #[arg(long, default_value_t = 64)]
    pub setup_window: usize,
    /// PPPoE: retransmission time of PADI, PADR, PPP requests and Terminate-Request,
    /// in milliseconds.
    #[arg(long, default_value_t = 1000)]
    pub pppoe_retry_ms: u64,
    /// PPPoE: sends of one request before a subscriber gives up.
    #[arg(long, default_value_t = 5)]
    pub pppoe_attempts: u32,
    /// PPPoE: seconds the set-up (and the teardown) may take in all.
    #[arg(long, default_value_t = 60.0)]
    pub setup_timeout: f64,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// The PPP authentication of the in-process gateway (`--pppoe`, memory backend).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum PppAuth {
    /// CHAP-MD5: the store's CHAP secret.
    Chap,
    /// PAP: the store's Argon2 password hash.
    Pap,
}

fn parse_tpid(s: &str) -> Result<u16, String> {
    let v = s.trim_start_matches("0x");
    match u16::from_str_radix(v, 16) {
        Ok(t @ (0x8100 | 0x88a8 | 0x9100)) => Ok(t),
        _ => Err(format!("{s}: the TPID is one of 0x88a8, 0x8100, 0x9100")),
    }
}

impl PktgenArgs {
    /// The PPPoE subscribers' options, with --pppoe.
    pub fn pppoe_options(&self) -> Option<pppoe::PppoeOptions> {
        self.pppoe.then(|| pppoe::PppoeOptions {
            user_prefix: self.user_prefix.clone(),
            secret: self.secret.clone(),
            vlans: pppoe::VlanPlan {
                outer: self.svlan,
                inner: self.cvlan,
                outer_tpid: self.outer_tpid,
            },
            retry: Duration::from_millis(self.pppoe_retry_ms.max(1)),
            attempts: self.pppoe_attempts,
        })
    }

    fn fleet(&self) -> anyhow::Result<Option<pppoe::Fleet>> {
        self.pppoe_options()
            .map(|o| pppoe::Fleet::new(self.subscribers, o, self.setup_window))
            .transpose()
    }
}

/// The stamp every generated frame carries at the start of its payload.
pub const STAMP_LEN: usize = 16;
const MAGIC: [u8; 2] = [0x54, 0x47];
const UP: u8 = 0;
const DOWN: u8 = 1;

fn write_stamp(p: &mut [u8], dir: u8, flow: u32, ts: u64) {
    p[0..2].copy_from_slice(&MAGIC);
    p[2] = dir;
    p[3] = 0;
    p[4..8].copy_from_slice(&flow.to_be_bytes());
    p[8..16].copy_from_slice(&ts.to_be_bytes());
}

/// What a received frame says about itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Seen {
    dir: u8,
    flow: u32,
    ts: u64,
    src: (Ipv4Addr, u16),
    dst: (Ipv4Addr, u16),
}

fn read_stamp(f: &[u8]) -> Option<Seen> {
    if f.get(12..14)? != [0x08, 0x00] {
        return None;
    }
    read_stamp_ip(&f[traffic::L3_AT..])
}

/// The stamp of an IPv4 packet (`ip` starts at its header).
fn read_stamp_ip(ip: &[u8]) -> Option<Seen> {
    let h = ip.get(..20)?;
    if h[0] >> 4 != 4 {
        return None;
    }
    let hl = (h[0] & 0x0f) as usize * 4;
    let t = ip.get(hl..)?;
    let payload_at = match h[9] {
        6 => (t.get(12)? >> 4) as usize * 4,
        17 => 8,
        _ => return None,
    };
    let p = t.get(payload_at..payload_at + STAMP_LEN)?;
    if p[0..2] != MAGIC || p[2] > DOWN {
        return None;
    }
    let addr = |at: usize| Ipv4Addr::new(h[at], h[at + 1], h[at + 2], h[at + 3]);
    let port = |at: usize| u16::from_be_bytes([t[at], t[at + 1]]);
    Some(Seen {
        dir: p[2],
        flow: u32::from_be_bytes([p[4], p[5], p[6], p[7]]),
        ts: u64::from_be_bytes([p[8], p[9], p[10], p[11], p[12], p[13], p[14], p[15]]),
        src: (addr(12), port(0)),
        dst: (addr(16), port(2)),
    })
}

/// Where the IPv4 packet of a PPPoE session frame starts (after the VLAN tags, the
/// PPPoE header and PPP's protocol field), if `f` is one.
fn pppoe_ipv4_at(f: &[u8]) -> Option<usize> {
    let mut at = 12;
    for _ in 0..2 {
        if matches!(
            f.get(at..at + 2)?,
            [0x81, 0x00] | [0x88, 0xa8] | [0x91, 0x00]
        ) {
            at += 4;
        }
    }
    if f.get(at..at + 2)? != [0x88, 0x64] || f.get(at + 8..at + 10)? != [0x00, 0x21] {
        return None;
    }
    Some(at + 10)
}

/// The stamp of a frame as it arrives on either port: plain IPv4, or IPv4 in PPPoE.
fn stamp_of(f: &[u8]) -> Option<Seen> {
    match pppoe_ipv4_at(f) {
        Some(at) => read_stamp_ip(&f[at..]),
        None => read_stamp(f),
    }
}

/// Latency histogram: 16 linear steps per power of two of nanoseconds, fixed size.
#[derive(Clone, Debug)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; 64 * 16],
            total: 0,
            max: 0,
        }
    }
}

impl Histogram {
    fn bucket(ns: u64) -> usize {
        if ns < 16 {
            return ns as usize;
        }
        let p = 63 - ns.leading_zeros() as usize; // >= 4
        let sub = ((ns >> (p - 4)) & 15) as usize;
        (p - 3) * 16 + sub
    }

    fn lower(b: usize) -> u64 {
        if b < 16 {
            return b as u64;
        }
        let p = b / 16 + 3;
        (16 + (b % 16) as u64) << (p - 4)
    }

    /// Records one latency.
    pub fn add(&mut self, ns: u64) {
        self.counts[Self::bucket(ns)] += 1;
        self.total += 1;
        self.max = self.max.max(ns);
    }

    /// The latency at quantile `q` (0..=1), to within 1/16 of its power of two.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let want = ((self.total as f64 * q).ceil() as u64).clamp(1, self.total);
        if want == self.total {
            // The highest is known exactly, not just its bucket.
            return self.max;
        }
        let mut seen = 0;
        for (b, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= want {
                return Self::lower(b).min(self.max);
            }
        }
        self.max
    }

    /// Latencies recorded.
    pub fn len(&self) -> u64 {
        self.total
    }

    /// True when none was recorded.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }
}

/// One flow as the generator knows it.
#[derive(Clone, Copy, Debug)]
struct Flow {
    sub: (Ipv4Addr, u16),
    /// The subscriber's index.
    owner: u32,
    /// Learned from its uplink packets on the core side: the server it reached and the
    /// address and port it came from (the gateway's NAT endpoint).
    server: Option<(Ipv4Addr, u16)>,
    reply_to: (Ipv4Addr, u16),
}

/// Counts of one direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DirCounts {
    /// Stamped packets sent.
    pub sent: u64,
    /// Bytes of them (frames, without FCS).
    pub sent_bytes: u64,
    /// Stamped packets received at the far side.
    pub received: u64,
}

/// Frames per port, stamped or not.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortCounts {
    /// Frames sent.
    pub tx: u64,
    /// Frames received.
    pub rx: u64,
    /// ARP replies sent.
    pub arp_replies: u64,
    /// Frames the port did not take (full ring), freed.
    pub tx_refused: u64,
    /// Received frames without a stamp (other than ARP).
    pub rx_unknown: u64,
    /// What the backend dropped below the generator (its own receive ring full), from
    /// the port's statistics at the end.
    pub rx_dropped: u64,
}

/// What a run measured.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Uplink and downlink of the measured phase.
    pub dirs: [DirCounts; 2],
    /// Uplink and downlink of the warm-up.
    pub warmup: [DirCounts; 2],
    /// Per port (access, core), all phases.
    pub ports: [PortCounts; 2],
    /// Flows whose server and NAT endpoint were learned.
    pub flows_learned: usize,
    /// Flows in the mix.
    pub flows: usize,
    /// Seconds of the measured phase (sending).
    pub seconds: f64,
    /// Latency of the measured phase's received packets.
    pub latency: Histogram,
    /// Downlink packets not sent because their flow was never learned.
    pub down_unready: u64,
    /// The gateway's counters, when it ran in process (memory backend).
    pub gateway: Option<Value>,
    /// PPPoE subscribers: set-up, per-session traffic and teardown (--pppoe).
    pub pppoe: Option<pppoe::FleetReport>,
}

impl Report {
    /// Stamped packets sent in the measured phase.
    pub fn sent(&self) -> u64 {
        self.dirs[0].sent + self.dirs[1].sent
    }

    /// Stamped packets received in the measured phase.
    pub fn received(&self) -> u64 {
        self.dirs[0].received + self.dirs[1].received
    }

    /// Sent but not received.
    pub fn lost(&self) -> u64 {
        self.sent().saturating_sub(self.received())
    }

    /// As JSON.
    pub fn to_json(&self) -> Value {
        let dir = |d: &DirCounts| {
            json!({"sent": d.sent, "sent_bytes": d.sent_bytes, "received": d.received,
                   "lost": d.sent.saturating_sub(d.received)})
        };
        let port = |p: &PortCounts| {
            json!({"tx": p.tx, "rx": p.rx, "arp_replies": p.arp_replies,
                   "tx_refused": p.tx_refused, "rx_unknown": p.rx_unknown,
                   "rx_dropped": p.rx_dropped})
        };
        let us = |ns: u64| (ns as f64 / 10.0).round() / 100.0;
        let secs = self.seconds.max(1e-9);
        json!({
            "sent": self.sent(),
            "received": self.received(),
            "lost": self.lost(),
            "loss_ratio": if self.sent() == 0 { 0.0 } else { self.lost() as f64 / self.sent() as f64 },
            "seconds": self.seconds,
            "tx_mpps": self.sent() as f64 / secs / 1e6,
            "rx_mpps": self.received() as f64 / secs / 1e6,
            "uplink": dir(&self.dirs[0]),
            "downlink": dir(&self.dirs[1]),
            "latency_us": {
                "samples": self.latency.len(),
                "p50": us(self.latency.quantile(0.5)),
                "p90": us(self.latency.quantile(0.9)),
                "p99": us(self.latency.quantile(0.99)),
                "p999": us(self.latency.quantile(0.999)),
                "max": us(self.latency.max),
            },
            "warmup": {"uplink": dir(&self.warmup[0]), "downlink": dir(&self.warmup[1])},
            "flows": {"in_mix": self.flows, "learned": self.flows_learned},
            "down_unready": self.down_unready,
            "ports": {"access": port(&self.ports[0]), "core": port(&self.ports[1])},
            "gateway": self.gateway.clone().unwrap_or(Value::Null),
            "pppoe": self.pppoe.as_ref().map_or(Value::Null, pppoe_json),
        })
    }

    /// As text.
    pub fn render(&self) -> String {
        let secs = self.seconds.max(1e-9);
        let mut s = String::new();
        let line = |name: &str, d: &DirCounts| {
            format!(
                "{name:<9} sent {:>12}  received {:>12}  lost {:>10}\n",
                d.sent,
                d.received,
                d.sent.saturating_sub(d.received)
            )
        };
        s += &line("uplink", &self.dirs[0]);
        s += &line("downlink", &self.dirs[1]);
        s += &format!(
            "total     sent {:>12}  received {:>12}  lost {:>10} ({:.4} %)\n",
            self.sent(),
            self.received(),
            self.lost(),
            if self.sent() == 0 {
                0.0
            } else {
                100.0 * self.lost() as f64 / self.sent() as f64
            }
        );
        s += &format!(
            "rate      {:.3} Mpps sent, {:.3} Mpps received, over {:.3} s\n",
            self.sent() as f64 / secs / 1e6,
            self.received() as f64 / secs / 1e6,
            self.seconds
        );
        let us = |q: f64| self.latency.quantile(q) as f64 / 1000.0;
        s += &format!(
            "latency   p50 {:.1} us  p90 {:.1} us  p99 {:.1} us  p99.9 {:.1} us  max {:.1} us ({} samples)\n",
            us(0.5),
            us(0.9),
            us(0.99),
            us(0.999),
            self.latency.max as f64 / 1000.0,
            self.latency.len()
        );
        s += &format!(
            "flows     {} of {} learned (warm-up: {} up, {} down received)\n",
            self.flows_learned, self.flows, self.warmup[0].received, self.warmup[1].received
        );
        let dropped = self.ports[0].rx_dropped + self.ports[1].rx_dropped;
        if dropped > 0 {
            s += &format!(
                "          {dropped} frames dropped by the generator's own receive rings (counted as lost)\n"
            );
        }
        if self.down_unready > 0 {
            s += &format!(
                "          {} downlink packets not sent: their flow was never learned\n",
                self.down_unready
            );
        }
        if let Some(p) = &self.pppoe {
            s += &format!(
                "pppoe     {} of {} sessions up in {:.3} s ({:.0}/s, {:.0} per CPU second; one set-up p50 {:.2} ms, p99 {:.2} ms), {} retransmits\n",
                p.up,
                p.subscribers,
                p.setup_seconds,
                p.setup_rate(),
                p.setup_rate_cpu(),
                p.setup_ms_p50,
                p.setup_ms_p99,
                p.retransmits
            );
            s += &format!(
                "          traffic exact in {} sessions, lost in {}\n",
                p.sessions_exact,
                p.sessions_with_loss.len()
            );
            s += &format!(
                "          {} ended in {:.3} s ({:.0}/s): Terminate-Ack then our PADT {}, the gateway's PADT first {}\n",
                p.ended,
                p.teardown_seconds,
                p.teardown_rate(),
                p.padt_sent,
                p.padt_received
            );
            for (why, n) in &p.failed {
                s += &format!("          {n} failed: {why}\n");
            }
        }
        if let Some(g) = &self.gateway
            && let Some(acct) = g.get("accounting")
        {
            s += &format!(
                "gateway   sessions open at the end {}, accounting starts {} stops {}\n",
                g["sessions_open"], acct["starts"], acct["stops"]
            );
        }
        s
    }
}

fn pppoe_json(p: &pppoe::FleetReport) -> Value {
    json!({
        "subscribers": p.subscribers,
        "up": p.up,
        "failed": p.failed.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<serde_json::Map<_, _>>(),
        "setup_seconds": p.setup_seconds,
        "setup_per_second": p.setup_rate(),
        "setup_cpu_seconds": p.setup_cpu_seconds,
        "setup_per_cpu_second": p.setup_rate_cpu(),
        "setup_ms": {"p50": p.setup_ms_p50, "p99": p.setup_ms_p99},
        "retransmits": p.retransmits,
        "sessions_exact": p.sessions_exact,
        "sessions_with_loss": p.sessions_with_loss.len(),
        "loss_examples": p.sessions_with_loss.iter().take(8).map(|(i, c)| json!({
            "subscriber": i, "up_sent": c[0], "up_received": c[1],
            "down_sent": c[2], "down_received": c[3]})).collect::<Vec<_>>(),
        "ended": p.ended,
        "teardown_seconds": p.teardown_seconds,
        "teardown_per_second": p.teardown_rate(),
        "padt_received": p.padt_received,
        "padt_sent": p.padt_sent,
    })
}

/// The traffic mix, from the arguments.
#[derive(Clone, Debug)]
pub struct Mix {
    subscribers: u32,
    first: Ipv4Addr,
    flows_each: u32,
    target: (Ipv4Addr, u16),
    proto: Proto,
    sizes: Vec<usize>,
    uplink_share: f64,
}

impl Mix {
    /// The mix of `a`, with frame sizes raised to what the headers and stamp need.
    pub fn new(a: &PktgenArgs) -> anyhow::Result<Mix> {
        if a.flows == 0 || a.flows > 40_000 {
            bail!("--flows must be 1..=40000 (source ports 20000 and up)");
        }
        if a.subscribers == 0 {
            bail!("--subscribers must be at least 1");
        }
        if !(0.0..=1.0).contains(&a.uplink_share) {
            bail!("--uplink-share must be between 0 and 1");
        }
        let min = Self::min_size(a.protocol);
        let sizes: Vec<usize> = a.sizes.iter().map(|s| (*s).clamp(min, 1514)).collect();
        if sizes.is_empty() {
            bail!("--sizes needs at least one size");
        }
        Ok(Mix {
            subscribers: a.subscribers,
            first: a.first_subscriber,
            flows_each: a.flows,
            target: (*a.target.ip(), a.target.port()),
            proto: a.protocol,
            sizes,
            uplink_share: a.uplink_share,
        })
    }

    /// Headers and stamp.
    pub fn min_size(p: Proto) -> usize {
        traffic::L4_AT
            + match p {
                Proto::Udp => 8,
                Proto::Tcp => 20,
            }
            + STAMP_LEN
    }

    /// Subscriber addresses.
    pub fn subscriber_addresses(&self) -> impl Iterator<Item = Ipv4Addr> + '_ {
        (0..self.subscribers).map(|i| Ipv4Addr::from(u32::from(self.first).wrapping_add(i)))
    }

    fn flows(&self) -> Vec<Flow> {
        self.flows_of(
            self.subscriber_addresses()
                .enumerate()
                .map(|(i, a)| (i as u32, a)),
        )
    }

    /// The flows of subscribers (index, address).
    fn flows_of(&self, subs: impl Iterator<Item = (u32, Ipv4Addr)>) -> Vec<Flow> {
        let each = self.flows_each;
        subs.flat_map(|(owner, ip)| {
            (0..each).map(move |k| Flow {
                sub: (ip, 20_000 + k as u16),
                owner,
                server: None,
                reply_to: (ip, 20_000 + k as u16),
            })
        })
        .collect()
    }
}

/// Parses a rate: a number of packets per second with k or M, or "max" (`None`).
pub fn parse_rate(s: &str) -> anyhow::Result<Option<f64>> {
    if s.eq_ignore_ascii_case("max") {
        return Ok(None);
    }
    let n = crate::bench::parse_count(s).map_err(anyhow::Error::msg)?;
    Ok(Some(n as f64))
}

/// The generator over ports of type `P`.
pub struct Generator<P: Port> {
    ports: [P; 2],
    pool: P::Pool,
    /// Our MACs (access, core).
    macs: [MacAddr; 2],
    /// The gateway's MACs (access, core).
    gw: [MacAddr; 2],
    mix: Mix,
    flows: Vec<Flow>,
    learned: Vec<u32>,
    tx: [Burst<BufOf<P>>; 2],
    rx: Burst<BufOf<P>>,
    burst: usize,
    /// Where the measured phase stands: next flow per direction, next size, the
    /// direction accumulator.
    next: [usize; 2],
    next_size: usize,
    share_acc: f64,
    warmup: bool,
    report: Report,
    /// PPPoE subscribers (--pppoe), and the uplink header of each one's session.
    fleet: Option<pppoe::Fleet>,
    encaps: Vec<([u8; pppoe::MAX_ENCAP], u8)>,
    /// Stamped packets per subscriber, all phases: up sent, up received, down sent,
    /// down received.
    per_sub: Vec<[u64; 4]>,
    /// Control frames the subscribers have to send.
    control_out: Vec<Vec<u8>>,
}

impl<P: Port> Generator<P> {
    /// A generator on `access` and `core`, whose MACs are `macs`, facing a gateway
    /// whose MACs are `gw`.
    pub fn new(
        mix: Mix,
        ports: [P; 2],
        pool: P::Pool,
        macs: [MacAddr; 2],
        gw: [MacAddr; 2],
        burst: usize,
    ) -> Self {
        let flows = mix.flows();
        let report = Report {
            flows: flows.len(),
            ..Report::default()
        };
        Generator {
            ports,
            pool,
            macs,
            gw,
            mix,
            flows,
            learned: Vec::new(),
            tx: [Burst::new(), Burst::new()],
            rx: Burst::new(),
            burst: burst.clamp(1, tollgate_dataplane::MAX_BURST),
            next: [0; 2],
            next_size: 0,
            share_acc: 0.0,
            warmup: true,
            report,
            fleet: None,
            encaps: Vec::new(),
            per_sub: Vec::new(),
            control_out: Vec::new(),
        }
    }

    /// Makes the subscribers PPPoE clients: no flow until their sessions are up.
    pub fn with_fleet(mut self, fleet: Option<pppoe::Fleet>) -> Self {
        if fleet.is_some() {
            self.flows.clear();
            self.report.flows = 0;
        }
        self.fleet = fleet;
        self
    }

    /// Sends the subscribers' control frames on the access port.
    fn send_control(&mut self) {
        let frames = std::mem::take(&mut self.control_out);
        for f in frames {
            let Some(mut b) = self.pool.alloc() else {
                break;
            };
            if !b.set_len(f.len()) {
                self.pool.free(b);
                continue;
            }
            b.data_mut().copy_from_slice(&f);
            self.tx[0].push(b);
            if self.tx[0].is_full() {
                self.flush(Side::Access);
            }
        }
        self.flush(Side::Access);
    }

    /// PPPoE set-up: starts the subscribers (a window at a time) and receives until each
    /// is up or has failed, or `timeout` passes; then the flows of the sessions up.
    fn pppoe_setup(&mut self, now: Instant) -> bool {
        let Some(fl) = self.fleet.as_mut() else {
            return true;
        };
        fl.start_more(now, &mut self.control_out);
        fl.timers(now, &mut self.control_out);
        let done = fl.set_up();
        self.send_control();
        done
    }

    fn pppoe_ready(&mut self, now: Instant) {
        let Some(fl) = self.fleet.as_mut() else {
            return;
        };
        fl.finish_setup(now);
        let mut encaps = Vec::new();
        let mut up = Vec::new();
        for (i, s) in fl.subscribers().iter().enumerate() {
            let mut e = [0u8; pppoe::MAX_ENCAP];
            let n = s.encap(&mut e);
            encaps.push((e, n as u8));
            if let Some(a) = s.address() {
                up.push((i as u32, a));
            }
        }
        self.per_sub = vec![[0; 4]; encaps.len()];
        self.encaps = encaps;
        self.flows = self.mix.flows_of(up.into_iter());
        self.report.flows = self.flows.len();
    }

    /// PPPoE teardown: Terminate-Request (a window at a time), Ack, PADT; true when
    /// every session has ended or failed.
    fn pppoe_teardown(&mut self, now: Instant) -> bool {
        let Some(fl) = self.fleet.as_mut() else {
            return true;
        };
        fl.stop_more(now, &mut self.control_out);
        fl.timers(now, &mut self.control_out);
        let done = fl.torn_down();
        self.send_control();
        done
    }

    /// Closes the PPPoE report: teardown figures and per-session traffic.
    fn pppoe_report(&mut self) {
        let Some(fl) = self.fleet.as_mut() else {
            return;
        };
        fl.finish_teardown();
        let mut r = fl.report.clone();
        for s in fl.subscribers() {
            if s.up_at.is_none() {
                continue;
            }
            let i = s.index();
            let c = self.per_sub.get(i as usize).copied().unwrap_or_default();
            if c[0] == c[1] && c[2] == c[3] && c[0] + c[2] > 0 {
                r.sessions_exact += 1;
            } else {
                r.sessions_with_loss.push((i, c));
            }
        }
        self.report.pppoe = Some(r);
    }

    /// The port on `side`.
    pub fn port_mut(&mut self, side: Side) -> &mut P {
        &mut self.ports[side.idx()]
    }

    /// Builds one stamped frame of flow `f` in direction `dir`; false if there is no
    /// buffer or the flow cannot be sent that way yet.
    fn build(&mut self, dir: u8, f: u32, size: usize, flags: u8, now: Instant) -> bool {
        let flow = self.flows[f as usize];
        let (side, ends) = if dir == UP {
            (
                Side::Access,
                Ends {
                    src_mac: self.macs[0],
                    dst_mac: self.gw[0],
                    src: flow.sub,
                    dst: self.mix.target,
                },
            )
        } else {
            let Some(server) = flow.server else {
                return false;
            };
            (
                Side::Core,
                Ends {
                    src_mac: self.macs[1],
                    dst_mac: self.gw[1],
                    src: server,
                    dst: flow.reply_to,
                },
            )
        };
        // Uplink in a PPPoE session: the frame is the plain one with the session's
        // header (tags, PPPoE, PPP) in place of its Ethernet header.
        let encap = match self.encaps.get(flow.owner as usize) {
            Some((e, n)) if dir == UP => Some((e, *n as usize)),
            _ => None,
        };
        let extra = encap.map_or(0, |(_, n)| n - traffic::L3_AT);
        let Some(mut buf) = self.pool.alloc() else {
            return false;
        };
        if !buf.set_len(size + extra) {
            self.pool.free(buf);
            return false;
        }
        let hdr = Mix::min_size(self.mix.proto) - STAMP_LEN;
        let frame = &mut buf.data_mut()[extra..];
        write_stamp(&mut frame[hdr..hdr + STAMP_LEN], dir, f, now.0);
        frame[hdr + STAMP_LEN..].fill(0);
        let payload = size - hdr;
        let ok = match self.mix.proto {
            Proto::Udp => traffic::udp(frame, &ends, 64, payload),
            Proto::Tcp => traffic::tcp(frame, &ends, 64, 1, 1, flags, 65535, payload),
        };
        if ok.is_none() {
            self.pool.free(buf);
            return false;
        }
        if let Some((e, n)) = encap {
            let frame = buf.data_mut();
            frame[..n].copy_from_slice(&e[..n]);
            // PPPoE length: PPP's protocol field and the IPv4 packet.
            let len = (size - traffic::L3_AT + 2) as u16;
            frame[n - 4..n - 2].copy_from_slice(&len.to_be_bytes());
        }
        if let Some(c) = self.per_sub.get_mut(flow.owner as usize) {
            c[if dir == UP { 0 } else { 2 }] += 1;
        }
        let counts = if self.warmup {
            &mut self.report.warmup[dir as usize]
        } else {
            &mut self.report.dirs[dir as usize]
        };
        counts.sent += 1;
        counts.sent_bytes += size as u64;
        self.tx[side.idx()].push(buf);
        if self.tx[side.idx()].is_full() {
            self.flush(side);
        }
        true
    }

    fn flush(&mut self, side: Side) {
        let i = side.idx();
        if self.tx[i].is_empty() {
            return;
        }
        let n = self.tx[i].len();
        let sent = self.ports[i].tx_burst(&mut self.pool, &mut self.tx[i]);
        self.report.ports[i].tx += sent as u64;
        // What the port did not take was never sent: take it off the counts.
        for b in self.tx[i].drain(..) {
            if let Some(s) = stamp_of(b.data()) {
                if let Some(c) = self
                    .flows
                    .get(s.flow as usize)
                    .and_then(|f| self.per_sub.get_mut(f.owner as usize))
                {
                    c[if s.dir == UP { 0 } else { 2 }] -= 1;
                }
                let c = if self.warmup {
                    &mut self.report.warmup[s.dir as usize]
                } else {
                    &mut self.report.dirs[s.dir as usize]
                };
                c.sent -= 1;
                c.sent_bytes -=
                    (b.len() - pppoe_ipv4_at(b.data()).map_or(0, |at| at - traffic::L3_AT)) as u64;
            }
            self.report.ports[i].tx_refused += 1;
            self.pool.free(b);
        }
        debug_assert!(sent <= n);
    }

    fn flush_all(&mut self) {
        self.flush(Side::Access);
        self.flush(Side::Core);
    }

    /// Sends up to `n` packets of the measured mix; returns how many were built.
    pub fn send_mix(&mut self, n: usize, now: Instant) -> usize {
        let mut built = 0;
        for _ in 0..n {
            self.share_acc += self.mix.uplink_share;
            let dir = if self.share_acc >= 1.0 - 1e-9 {
                self.share_acc -= 1.0;
                UP
            } else {
                DOWN
            };
            let size = self.mix.sizes[self.next_size];
            self.next_size = (self.next_size + 1) % self.mix.sizes.len();
            let f = if dir == UP {
                let f = self.next[0];
                self.next[0] = (f + 1) % self.flows.len();
                f as u32
            } else {
                if self.learned.is_empty() {
                    self.report.down_unready += 1;
                    continue;
                }
                let k = self.next[1] % self.learned.len();
                self.next[1] = k + 1;
                self.learned[k]
            };
            let flags = tcp_flags::ACK | tcp_flags::PSH;
            if !self.build(dir, f, size, flags, now) {
                if dir == DOWN {
                    self.report.down_unready += 1;
                }
                break;
            }
            built += 1;
        }
        self.flush_all();
        built
    }

    /// Receives what both ports have; returns the frames received.
    pub fn receive(&mut self, now: Instant) -> usize {
        let mut total = 0;
        for side in Side::ALL {
            let i = side.idx();
            loop {
                self.ports[i].rx_burst(&mut self.pool, &mut self.rx, self.burst);
                let n = self.rx.len();
                if n == 0 {
                    break;
                }
                total += n;
                self.report.ports[i].rx += n as u64;
                let mut replies: Vec<Vec<u8>> = Vec::new();
                for b in self.rx.drain(..) {
                    let f = b.data();
                    match stamp_of(f) {
                        Some(s) => {
                            if let Some(c) = self
                                .flows
                                .get(s.flow as usize)
                                .and_then(|fl| self.per_sub.get_mut(fl.owner as usize))
                            {
                                c[if s.dir == UP { 1 } else { 3 }] += 1;
                            }
                            let c = if self.warmup {
                                &mut self.report.warmup[s.dir as usize]
                            } else {
                                &mut self.report.dirs[s.dir as usize]
                            };
                            c.received += 1;
                            if !self.warmup {
                                self.report.latency.add(now.0.saturating_sub(s.ts));
                            }
                            if s.dir == UP
                                && side == Side::Core
                                && let Some(fl) = self.flows.get_mut(s.flow as usize)
                            {
                                if fl.server.is_none() {
                                    self.learned.push(s.flow);
                                }
                                fl.server = Some(s.dst);
                                fl.reply_to = s.src;
                            }
                        }
                        // PPPoE discovery and PPP control: the subscriber's.
                        None if side == Side::Access
                            && self
                                .fleet
                                .as_mut()
                                .is_some_and(|fl| fl.input(now, f, &mut self.control_out)) => {}
                        None => {
                            if let Some(r) = arp_reply(f, self.macs[i]) {
                                replies.push(r);
                            } else {
                                self.report.ports[i].rx_unknown += 1;
                            }
                        }
                    }
                    self.pool.free(b);
                }
                for r in replies {
                    if let Some(mut b) = self.pool.alloc() {
                        if b.set_len(r.len()) {
                            b.data_mut().copy_from_slice(&r);
                            self.report.ports[i].arp_replies += 1;
                            self.tx[i].push(b);
                        } else {
                            self.pool.free(b);
                        }
                    }
                }
                self.flush(side);
            }
        }
        if !self.control_out.is_empty() {
            self.send_control();
        }
        self.report.flows_learned = self.learned.len();
        total
    }

    /// Sends the warm-up packets of every flow not yet learned (uplink), or the SYN-ACKs
    /// of learned TCP flows (`down`).
    fn warm(&mut self, down: bool, now: Instant, mut step: impl FnMut(&mut Self)) {
        let size = self.mix.sizes[0];
        let todo: Vec<u32> = if down {
            self.learned.clone()
        } else {
            (0..self.flows.len() as u32)
                .filter(|f| self.flows[*f as usize].server.is_none())
                .collect()
        };
        for chunk in todo.chunks(self.burst) {
            for &f in chunk {
                let (dir, flags) = if down {
                    (DOWN, tcp_flags::SYN | tcp_flags::ACK)
                } else {
                    (UP, tcp_flags::SYN)
                };
                if !self.build(dir, f, size, flags, now) {
                    break;
                }
            }
            self.flush_all();
            step(self);
        }
    }

    /// Ends the warm-up: what is counted from now on is the measured phase.
    fn start_measuring(&mut self) {
        self.warmup = false;
    }

    /// The report so far.
    pub fn report(&self) -> &Report {
        &self.report
    }
}

/// An ARP reply from `mac` to the request `f`, if `f` is one (for any address: the
/// generator is every host on both links).
fn arp_reply(f: &[u8], mac: MacAddr) -> Option<Vec<u8>> {
    if f.len() < 42 || f[12..14] != [0x08, 0x06] || f[20..22] != [0, 1] {
        return None;
    }
    let sha = MacAddr::from_bytes(&f[22..28]);
    let spa = Ipv4Addr::new(f[28], f[29], f[30], f[31]);
    let tpa = Ipv4Addr::new(f[38], f[39], f[40], f[41]);
    if tpa == spa {
        return None; // gratuitous
    }
    Some(tollgate_testkit::frame::arp_reply(mac, tpa, sha, spa))
}

/// How a run is paced and how it ends.
#[derive(Clone, Copy, Debug)]
pub struct Pace {
    /// Packets per second, or as fast as possible.
    pub rate: Option<f64>,
    /// Measured duration (when no count).
    pub duration: Duration,
    /// Measured packets.
    pub count: Option<u64>,
    /// Receive time after the last packet.
    pub drain: Duration,
    /// The most the PPPoE set-up, and the teardown, may take.
    pub setup_timeout: Duration,
}

/// Runs the three phases against `step`, which lets the far end (an in-process
/// gateway) run and returns the time; `clock` reads the time otherwise.
pub fn run<P: Port>(
    g: &mut Generator<P>,
    pace: Pace,
    mut clock: impl FnMut(&mut Generator<P>) -> Instant,
) -> Report {
    let limit = pace.setup_timeout.as_nanos() as u64;
    if g.fleet.is_some() {
        // PPPoE: the sessions come up first; the traffic's flows are theirs.
        let cpu = thread_cpu_ns();
        let start = clock(g);
        loop {
            let now = clock(g);
            g.receive(now);
            if g.pppoe_setup(now) || now.0.saturating_sub(start.0) > limit {
                break;
            }
        }
        let now = clock(g);
        g.pppoe_ready(now);
        if let (Some(a), Some(b), Some(fl)) = (cpu, thread_cpu_ns(), g.fleet.as_mut()) {
            fl.report.setup_cpu_seconds = b.saturating_sub(a) as f64 / 1e9;
        }
        // Let the gateway install the last sessions in its fast path.
        wait(g, &mut clock, pace.drain);
    }
    // No PPPoE session came up: nothing to send.
    let rounds = if g.flows.is_empty() { 0 } else { 3 };
    // Warm-up: three rounds of the flows not yet learned, a short wait each.
    for _ in 0..rounds {
        let now = clock(g);
        g.warm(false, now, |g| {
            let t = clock(g);
            g.receive(t);
        });
        wait(g, &mut clock, Duration::from_millis(100));
        if g.learned.len() == g.flows.len() {
            break;
        }
    }
    if g.mix.proto == Proto::Tcp && !g.flows.is_empty() {
        let now = clock(g);
        g.warm(true, now, |g| {
            let t = clock(g);
            g.receive(t);
        });
        wait(g, &mut clock, Duration::from_millis(100));
    }
    g.start_measuring();
    let start = clock(g);
    while !g.flows.is_empty() {
        let now = clock(g);
        let elapsed = now.0.saturating_sub(start.0);
        // Packets sent, and downlink ones given up for want of a learned flow: either
        // way the mix moved on.
        let done = g.report.sent() + g.report.down_unready;
        if let Some(c) = pace.count {
            if done >= c {
                break;
            }
        } else if elapsed >= pace.duration.as_nanos() as u64 {
            break;
        }
        let mut n = g.burst as u64;
        if let Some(r) = pace.rate {
            let due = (r * elapsed as f64 / 1e9) as u64;
            n = n.min(due.saturating_sub(done));
        }
        if let Some(c) = pace.count {
            n = n.min(c.saturating_sub(done));
        }
        if n > 0 {
            g.send_mix(n as usize, now);
        }
        g.receive(now);
    }
    let end = clock(g);
    g.report.seconds = end.0.saturating_sub(start.0) as f64 / 1e9;
    wait(g, &mut clock, pace.drain);
    if g.fleet.is_some() {
        let start = clock(g);
        if let Some(fl) = g.fleet.as_mut() {
            fl.start_teardown(start);
        }
        loop {
            let now = clock(g);
            g.receive(now);
            if g.pppoe_teardown(now) || now.0.saturating_sub(start.0) > limit {
                break;
            }
        }
        g.pppoe_report();
        // The last PADTs reach the gateway.
        wait(g, &mut clock, pace.drain);
    }
    for side in Side::ALL {
        let st = g.ports[side.idx()].stats();
        g.report.ports[side.idx()].rx_dropped = st.rx_dropped + st.rx_too_big;
    }
    g.report.clone()
}

/// This thread's time on a CPU, nanoseconds (Linux's schedstat; `None` elsewhere).
fn thread_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

fn wait<P: Port>(
    g: &mut Generator<P>,
    clock: &mut impl FnMut(&mut Generator<P>) -> Instant,
    d: Duration,
) {
    let start = clock(g);
    loop {
        let now = clock(g);
        g.receive(now);
        if now.0.saturating_sub(start.0) >= d.as_nanos() as u64 {
            break;
        }
    }
}

fn macs(list: &[String]) -> anyhow::Result<[MacAddr; 2]> {
    if list.len() != 2 {
        bail!("--gateway-mac needs the access and the core MAC: --gateway-mac AA:..,BB:..");
    }
    let p = |s: &str| -> anyhow::Result<MacAddr> {
        s.parse::<MacAddr>()
            .map_err(|e| anyhow::anyhow!("--gateway-mac {s}: {e:?}"))
    };
    Ok([p(&list[0])?, p(&list[1])?])
}

fn pace(a: &PktgenArgs) -> anyhow::Result<Pace> {
    Ok(Pace {
        rate: parse_rate(&a.rate)?,
        duration: Duration::from_secs_f64(a.seconds.max(0.0)),
        count: a.count,
        drain: Duration::from_millis(a.drain_ms),
        setup_timeout: Duration::from_secs_f64(a.setup_timeout.max(0.0)),
    })
}

/// The generator's own MACs on the memory and pcap backends.
pub const GEN_MACS: [MacAddr; 2] = [
    MacAddr([0x02, 0x47, 0, 0, 0, 0x01]),
    MacAddr([0x02, 0x47, 0, 0, 0, 0x02]),
];

/// Runs the generator against an in-process gateway configured by `cfg`, on one
/// thread: each step of the generator is followed by the gateway's poll and its control
/// core, so the counts on both ends can be compared exactly.
pub fn run_memory(cfg: &Config, a: &PktgenArgs) -> anyhow::Result<Report> {
    let mix = Mix::new(a)?;
    let (gw_access, gen_access) = MemoryPort::pair(1 << 14);
    let (gw_core, gen_core) = MemoryPort::pair(1 << 14);
    let gw_macs = setup::configured_macs(cfg);
    let fwd = setup::forwarding(cfg, gw_macs).context("building the forwarding table")?;
    let fleet = a.fleet()?;
    if fleet.is_some() && !cfg.pppoe.enabled {
        bail!(
            "--pppoe: the config's [pppoe] is not enabled (without --config, pktgen uses \
             the embedded config with PPPoE on; see docs/pktgen.md)"
        );
    }
    // A subscriber the gateway cannot route back to would only measure as loss (PPPoE
    // subscribers get theirs from the gateway).
    for (i, ip) in mix
        .subscriber_addresses()
        .enumerate()
        .take(if fleet.is_some() { 0 } else { usize::MAX })
    {
        if !matches!(fwd.route(ip), Some(NextHop::Connected(Side::Access))) {
            let s = fwd.side(Side::Access);
            bail!(
                "subscriber {} ({ip}) is not a host of the access subnet {}/{} of the config: \
                 use fewer --subscribers, another --first-subscriber, or a config with a larger \
                 access subnet",
                i + 1,
                s.address,
                s.prefix_len
            );
        }
    }
    let publisher = Publisher::new(fwd);
    let started = Instant::now();
    let mut core = Core::new(
        started,
        publisher.current(),
        setup::core(cfg, tollgate_control::clock::system(started))?,
    );
    // One directory per run (runs may share a process: the tests).
    static RUNS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let run_no = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let records =
        std::env::temp_dir().join(format!("tollgate-pktgen-{}-{run_no}", std::process::id()));
    let mut outlets = Outlets::new(
        publisher,
        &records.join("flows.jsonl"),
        &records.join("sessions.jsonl"),
    )
    .context("opening the record files")?;
    let (w_ends, c_ends) = worker_rings(setup::rings(cfg));
    let mut worker = Worker::new(
        setup::worker(cfg, 0),
        gw_access,
        gw_core,
        HeapPool::new(cfg.engine.buffers),
        outlets.publisher().reader(),
        w_ends,
    );
    let mut dispatcher = Dispatcher::new(vec![c_ends]);
    for sub in &cfg.static_subscribers {
        let _ = core.open_session(started, setup::static_session(cfg, sub));
    }
    if !a.no_sessions && fleet.is_none() {
        for (i, ip) in mix.subscriber_addresses().enumerate() {
            let req = SessionRequest {
                user: format!("pktgen{i}"),
                address: ip,
                mac: None,
                channel: None,
                services: ServiceSet::ALL,
                bandwidth: Bandwidth::default(),
                limits: Limits::default(),
                max_flows: 0,
            };
            if let Err(e) = core.open_session(started, req) {
                tracing::warn!(address = %ip, error = %e, "no session for a generated subscriber");
            }
        }
    }
    // PPP logins are answered from the local store on this thread, at once.
    let mut aaa = match &fleet {
        Some(_) => StoreAaa::new(a, &records)?,
        None => StoreAaa::default(),
    };
    let mut gateway_step = |now: Instant| {
        for _ in 0..64 {
            worker.poll(now);
            if !router::pass(&mut core, now, &mut dispatcher, &mut outlets, &mut aaa) {
                break;
            }
        }
    };
    gateway_step(started);
    let mut g = Generator::new(
        mix,
        [gen_access, gen_core],
        HeapPool::new(4096),
        GEN_MACS,
        gw_macs,
        a.burst,
    )
    .with_fleet(fleet);
    let report = run(&mut g, pace(a)?, |_| {
        let now = Instant::now();
        gateway_step(now);
        now
    });
    // What the run left open, before the gateway's own stop ends the rest.
    let open_at_end = core.sessions().len();
    let pppoe_at_end: serde_json::Map<String, Value> = core
        .pppoe_counters()
        .into_iter()
        .filter(|(_, v)| *v > 0)
        .map(|(k, v)| (k, json!(v)))
        .collect();
    let (starts, stops) = (aaa.starts, aaa.stops);
    let now = Instant::now();
    let done = worker.finish(now);
    dispatcher.set_report(done.report.clone());
    dispatcher.drain(&mut core, now);
    dispatcher.events(&mut core, now, 0, done.events);
    router::route(&mut core, now, &mut dispatcher, &mut outlets, &mut aaa);
    drop(aaa.store.take());
    let _ = std::fs::remove_dir_all(&records);
    let c = &done.report.counters;
    let side = |s: Side| {
        let x = &c.sides[s.idx()];
        json!({"rx_packets": x.rx_packets, "tx_packets": x.tx_packets,
               "rx_bytes": x.rx_bytes, "tx_bytes": x.tx_bytes})
    };
    let closed = core.sessions().stats();
    Ok(Report {
        gateway: Some(json!({
            "access": side(Side::Access),
            "core": side(Side::Core),
            "forwarded": c.forwarded,
            "released": c.released,
            "replied": c.replied,
            "drops": c.total_drops(),
            "drops_by_reason": DropReason::ALL
                .iter()
                .filter(|r| c.drops[**r as usize] > 0)
                .map(|r| (r.name().to_string(), json!(c.drops[*r as usize])))
                .collect::<serde_json::Map<_, _>>(),
            "flows_opened": c.flows_opened,
            "sessions_ended": closed.ended,
            // At the end of the run, before the gateway stopped (which ends the
            // static subscribers' sessions, and any the run left open).
            "sessions_open": open_at_end,
            "accounting": {"starts": starts, "stops": stops,
                           "stops_at_gateway_stop": aaa.stops - stops},
            "logins": {"accepted": aaa.accepted, "refused": aaa.refused,
                       "store_seconds": aaa.store_time.as_secs_f64()},
            "pppoe": pppoe_at_end,
        })),
        ..report
    })
}

/// pktgen's logins and accounting: the local store answers each login at once on the
/// control thread (as replay does); accounting records are counted.
#[derive(Default)]
struct StoreAaa {
    store: Option<tollgate_control::store::Store>,
    starts: u64,
    stops: u64,
    accepted: u64,
    refused: u64,
    /// Time spent in the store's checks (the Argon2 of PAP, CHAP's MD5 and lookups).
    store_time: Duration,
}

impl StoreAaa {
    /// The store of --store, or a new one in `dir` holding the --subscribers users, each
    /// with the CHAP secret and the PAP password --secret.
    fn new(a: &PktgenArgs, dir: &std::path::Path) -> anyhow::Result<StoreAaa> {
        use tollgate_control::store::{self, ChapSecret, Store, Subscriber};
        let store = match &a.store {
            Some(p) => Store::open(p).with_context(|| format!("opening {}", p.display()))?,
            None => {
                let path = dir.join("subscribers.db");
                let mut st =
                    Store::open(&path).with_context(|| format!("creating {}", path.display()))?;
                // One hash for all: the cost of checking it is the same per login.
                let hash = store::hash_password(&a.secret, st.password_cost())
                    .context("hashing the PAP password")?;
                let subs: Vec<Subscriber> = (0..a.subscribers)
                    .map(|i| {
                        let mut s = Subscriber::new(&format!("{}{i}", a.user_prefix));
                        s.password_hash = Some(hash.clone());
                        s.chap_secret = Some(ChapSecret(a.secret.as_bytes().to_vec()));
                        s
                    })
                    .collect();
                st.put_all(&subs, true)
                    .context("filling the subscriber store")?;
                st
            }
        };
        Ok(StoreAaa {
            store: Some(store),
            ..StoreAaa::default()
        })
    }
}

impl router::Aaa for StoreAaa {
    fn take(&mut self, core: &mut Core, now: Instant, out: router::AaaOutput) {
        use tollgate_control_core::gateway::aaa::AuthAnswer;
        use tollgate_control_core::radius::dict::AcctStatusType;
        match out {
            router::AaaOutput::Authenticate(req) => {
                let t = std::time::Instant::now();
                let answer = match &self.store {
                    Some(s) => tollgate_control::aaa::authenticate_local(s, &req),
                    None => AuthAnswer::Unavailable("no subscriber store".into()),
                };
                self.store_time += t.elapsed();
                match answer {
                    AuthAnswer::Accept { .. } => self.accepted += 1,
                    _ => self.refused += 1,
                }
                core.on_auth(now, req.login, answer);
            }
            router::AaaOutput::Account(r) => match r.status {
                AcctStatusType::Start => self.starts += 1,
                AcctStatusType::Stop => self.stops += 1,
                _ => {}
            },
            _ => {}
        }
    }
}

/// Runs the generator on two AF_PACKET interfaces.
pub fn run_af_packet(a: &PktgenArgs) -> anyhow::Result<Report> {
    let mix = Mix::new(a)?;
    let (Some(acc), Some(core)) = (&a.access_if, &a.core_if) else {
        bail!("--backend af-packet needs --access-if and --core-if");
    };
    let gw = macs(&a.gateway_mac)?;
    // The generator counts every frame: no head drop, and a deep ring (16 MiB).
    let open = |name: &str| {
        let cfg = AfPacketConfig {
            block_size: 1 << 16,
            block_count: 256,
            max_delay_ms: 0,
            ..AfPacketConfig::new(name)
        };
        AfPacketPort::open(&cfg).with_context(|| format!("opening {name}"))
    };
    let ports = [open(acc)?, open(core)?];
    let ours = [ports[0].mac(), ports[1].mac()];
    let mut g =
        Generator::new(mix, ports, HeapPool::new(8192), ours, gw, a.burst).with_fleet(a.fleet()?);
    Ok(run(&mut g, pace(a)?, |_| Instant::now()))
}

/// Writes the mix to capture files (and reads captures as received).
pub fn run_pcap(a: &PktgenArgs) -> anyhow::Result<Report> {
    let mix = Mix::new(a)?;
    let (Some(ao), Some(co)) = (&a.access_out, &a.core_out) else {
        bail!("--backend pcap needs --access-out and --core-out");
    };
    let gw = if a.gateway_mac.is_empty() {
        [
            setup::default_mac(Side::Access),
            setup::default_mac(Side::Core),
        ]
    } else {
        macs(&a.gateway_mac)?
    };
    let ports = [
        PcapPort::open(a.access_in.as_deref(), Some(ao))?,
        PcapPort::open(a.core_in.as_deref(), Some(co))?,
    ];
    let mut g = Generator::new(mix, ports, HeapPool::new(4096), GEN_MACS, gw, a.burst);
    // A virtual clock: one microsecond per step (or the rate's spacing), from 1 s.
    let step_ns = parse_rate(&a.rate)?.map_or(1_000, |r| (1e9 / r * g.burst as f64) as u64);
    let mut t = 1_000_000_000u64;
    let report = run(&mut g, pace(a)?, |g| {
        t += step_ns.max(1);
        for s in Side::ALL {
            g.port_mut(s).set_clock(Instant(t));
        }
        Instant(t)
    });
    for s in Side::ALL {
        g.port_mut(s).finish().map_err(anyhow::Error::msg)?;
    }
    Ok(report)
}

/// The embedded config as a PPPoE access server for `--pppoe` without `--config`: a /16
/// access subnet with a pool of 65 279 addresses, PPPoE on with `auth`, the PADI rate
/// limits and the per-line session limit out of the generator's way (every subscriber
/// may share one line).
pub fn pppoe_config(auth: PppAuth) -> anyhow::Result<Config> {
    let base = tollgate_control::config::DEFAULT_CONFIG;
    let src = base.replacen(
        "address = \"10.10.0.1/24\"",
        "address = \"10.10.0.1/16\"",
        1,
    );
    anyhow::ensure!(src != base, "the embedded config's access subnet moved");
    let auth = match auth {
        PppAuth::Chap => "chap",
        PppAuth::Pap => "pap",
    };
    let src = format!(
        "{src}
[[pool]]
name = \"pktgen\"
[[pool.range]]
first = \"10.10.1.0\"
last = \"10.10.255.254\"

[pppoe]
enabled = true
ac_name = \"tollgate-pktgen\"
auth = [\"{auth}\"]
padi_rate = 1000000
padi_burst = 1000000
max_sessions_per_line = 65534
port_name = \"acc0\"
"
    );
    Config::parse(&src, "pktgen's PPPoE preset").map_err(|e| anyhow::anyhow!("{e}"))
}

/// Runs `tollgate pktgen`.
pub fn main(a: &PktgenArgs) -> anyhow::Result<Report> {
    match a.backend {
        Backend::Memory => {
            let cfg = match &a.config {
                Some(p) => Config::load(p).map_err(|e| anyhow::anyhow!("{e}"))?,
                None if a.pppoe => pppoe_config(a.auth)?,
                None => Config::embedded(),
            };
            run_memory(&cfg, a)
        }
        Backend::AfPacket => run_af_packet(a),
        Backend::Pcap => run_pcap(a),
        #[cfg(feature = "dpdk")]
        Backend::Dpdk => run_dpdk(a),
    }
}

/// Runs the generator on two DPDK devices, one queue each, mbufs from the access
/// device's pool.
#[cfg(feature = "dpdk")]
pub fn run_dpdk(a: &PktgenArgs) -> anyhow::Result<Report> {
    use tollgate_dataplane::port::dpdk::{self, Device, DeviceConfig, PoolConfig};
    let mix = Mix::new(a)?;
    let (Some(acc), Some(core)) = (&a.access_if, &a.core_if) else {
        bail!("--backend dpdk needs --access-if and --core-if (DPDK device specs)");
    };
    let gw = macs(&a.gateway_mac)?;
    let args: Vec<String> = a.eal.split_whitespace().map(String::from).collect();
    let eal = dpdk::eal_init(&args).context("starting DPDK (check --eal)")?;
    let dc = DeviceConfig {
        queues: 1,
        rx_descriptors: 1024,
        tx_descriptors: 1024,
        pool: PoolConfig {
            mbufs: 16383,
            cache: 256,
        },
        promiscuous: true,
    };
    let open = |spec: &str| Device::open(eal, spec, &dc).with_context(|| format!("opening {spec}"));
    let (acc, core) = (open(acc)?, open(core)?);
    let ours = [acc.mac(), core.mac()];
    let pool = acc.pool();
    let mut g = Generator::new(mix, [acc.port(0), core.port(0)], pool, ours, gw, a.burst);
    Ok(run(&mut g, pace(a)?, |_| Instant::now()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_quantiles() {
        let mut h = Histogram::default();
        for ns in 1..=10_000u64 {
            h.add(ns * 100);
        }
        let p50 = h.quantile(0.5) as f64;
        assert!((p50 - 500_000.0).abs() / 500_000.0 < 0.07, "{p50}");
        let p99 = h.quantile(0.99) as f64;
        assert!((p99 - 990_000.0).abs() / 990_000.0 < 0.07, "{p99}");
        assert_eq!(h.quantile(1.0), 1_000_000);
        assert_eq!(Histogram::default().quantile(0.5), 0);
        for ns in [0u64, 1, 15, 16, 17, 1 << 20, u64::MAX / 2] {
            assert!(Histogram::lower(Histogram::bucket(ns)) <= ns);
        }
    }

    #[test]
    fn stamps_round_trip() {
        let mut f = [0u8; 128];
        let e = Ends {
            src_mac: GEN_MACS[0],
            dst_mac: GEN_MACS[1],
            src: (Ipv4Addr::new(10, 0, 0, 2), 20_000),
            dst: (Ipv4Addr::new(203, 0, 113, 10), 80),
        };
        for (proto, hdr) in [(Proto::Udp, 42), (Proto::Tcp, 54)] {
            write_stamp(&mut f[hdr..hdr + STAMP_LEN], DOWN, 77, 123_456);
            let n = match proto {
                Proto::Udp => traffic::udp(&mut f, &e, 64, 20),
                Proto::Tcp => traffic::tcp(&mut f, &e, 64, 1, 1, tcp_flags::ACK, 100, 20),
            }
            .unwrap();
            let s = read_stamp(&f[..n]).unwrap();
            assert_eq!((s.dir, s.flow, s.ts), (DOWN, 77, 123_456));
            assert_eq!((s.src, s.dst), (e.src, e.dst));
            assert_eq!(Mix::min_size(proto), hdr + STAMP_LEN);
        }
        assert_eq!(read_stamp(&[0u8; 60]), None);
    }
}
