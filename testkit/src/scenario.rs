//! The full-pipeline scenario shared by the criterion benches, the profiling binaries and
//! `tollgate bench`: one worker with a subscriber population and established NAT flows.
//!
//! `sessions` subscribers on 10.0.0.0/8, each with `flows_each` TCP connections to the
//! VIP 203.0.113.10:80 (three real servers, round robin, per-connection stickiness),
//! established by a SYN and its SYN-ACK through the pipeline itself. The steady state is
//! one 64-byte uplink and one 64-byte downlink segment per flow, replayed round-robin
//! from memory ports, so consecutive packets hit different flows and sessions: the
//! worst case for caches, and the case that a large population is.
//!
//! The subscribers' access line is plain Ethernet ([`Access::Ipoe`]), or a PPPoE session
//! each, untagged or in a QinQ pair of its own ([`Access::Pppoe`], [`Access::PppoeQinq`]),
//! with an MSS clamp of 1452: uplink frames carry the tags and PPPoE header, the worker
//! takes them off and puts them on the downlink. Or the subscribers are IPv6-only
//! ([`Access::Nat64`]): each session has a /64, and its connections go to the VIP's
//! address in 64:ff9b::/96, through a NAT64 binding and then the service's flow. Or
//! they are IPv6 subscribers routed natively ([`Access::Ipv6`]): each session has a /64
//! and its connections go to an IPv6 server beyond the core side's IPv6 next hop, the
//! IPv6 subscriber pipeline (session by /64, anti-spoofing, policing and counting, hop
//! limit), which keeps no per-flow state.
//!
//! L2TP (issue 15): [`Access::Lns`] has every subscriber's PPP terminated here, its
//! packets coming from a LAC on the access side in an L2TP data message of a session of
//! its own (IPv4/UDP 1701/L2TP/PPP), then through the same pipeline as IPoE (services,
//! NAT, counters) and back into its L2TP session. [`Access::Lac`] is the LAC's
//! switching alone ([`rig_lac`]): a PPPoE session per subscriber switched into an L2TP
//! session toward an LNS on the core side, nothing terminated, no flows (the same
//! 64-byte segments, PPPoE up, L2TP down).

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::Duration;

use tollgate_dataplane::nat::{NatConfig, Timeouts};
use tollgate_dataplane::port::memory::{FrameSet, MemoryPort};
use tollgate_dataplane::service::{Policy, RealServer, Service, Services, SessionType};
use tollgate_dataplane::session::{
    AccessLine, Bandwidth, Encap, Limits, ServiceSet, SessionSpec, VlanTag, Vlans,
};
use tollgate_dataplane::snapshot::Publisher;
use tollgate_dataplane::stage::SubscriberLimits;
use tollgate_dataplane::time::Instant;
use tollgate_dataplane::{
    Burst, Command, ControlEnds, Forwarding, ForwardingBuilder, HeapPool, Ipv6Forwarding, MacAddr,
    Nat64Config, Port, RingSizes, SideConfig, Unknown, Worker, WorkerConfig, worker_rings,
};

use tollgate_dataplane::l2tp::{L2tpSessionSpec, PppoeLeg, TunnelRole};
use tollgate_dataplane::wire::l2tp as l2tp_wire;

use crate::lab::{ACC_MAC, CORE_MAC};
use crate::traffic::{self, Ends, tcp_flags};

/// The VIP.
pub const VIP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 10);
/// The real servers behind it.
pub const SERVERS: [Ipv4Addr; 3] = [
    Ipv4Addr::new(192, 0, 2, 21),
    Ipv4Addr::new(192, 0, 2, 22),
    Ipv4Addr::new(192, 0, 2, 23),
];
/// Bytes per steady-state frame (Ethernet header included, no FCS).
pub const FRAME_BYTES: usize = 64;
/// Flows per NAT address the scenario configures (a little under the 64512 ports).
const FLOWS_PER_ADDRESS: u32 = 60_000;

/// How the scenario's subscribers reach the access port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Plain Ethernet.
    Ipoe,
    /// A PPPoE session each, untagged.
    Pppoe,
    /// A PPPoE session each in its own QinQ pair (S-VLAN 0x88a8, C-VLAN 0x8100: 1:1).
    PppoeQinq,
    /// Plain Ethernet, IPv6 only, through NAT64 to the VIP.
    Nat64,
    /// Plain Ethernet, IPv6 only, routed to an IPv6 server (no NAT, no flow state).
    Ipv6,
    /// PPP terminated here (LNS): an L2TP session each from a LAC on the access side.
    Lns,
    /// PPPoE switched into L2TP toward an LNS (LAC), nothing terminated.
    Lac,
}

impl Access {
    /// The name `tollgate bench --access` takes.
    pub fn name(self) -> &'static str {
        match self {
            Access::Ipoe => "ipoe",
            Access::Pppoe => "pppoe",
            Access::PppoeQinq => "pppoe-qinq",
            Access::Nat64 => "nat64",
            Access::Ipv6 => "ipv6",
            Access::Lns => "lns",
            Access::Lac => "lac",
        }
    }

    /// The access line `name` names.
    pub fn from_name(name: &str) -> Option<Access> {
        [
            Access::Ipoe,
            Access::Pppoe,
            Access::PppoeQinq,
            Access::Nat64,
            Access::Ipv6,
            Access::Lns,
            Access::Lac,
        ]
        .into_iter()
        .find(|a| a.name() == name)
    }

    /// Subscriber `i`'s line.
    pub fn line(self, i: u32) -> AccessLine {
        let session = Encap::Pppoe {
            session: (i % 0xfffe + 1) as u16,
        };
        match self {
            Access::Ipoe | Access::Nat64 => AccessLine::default(),
            Access::Ipv6 => AccessLine::default(),
            Access::Pppoe => AccessLine {
                encap: session,
                mss_clamp: 1452,
                ..AccessLine::default()
            },
            Access::PppoeQinq => AccessLine {
                vlans: Vlans {
                    outer: Some(VlanTag {
                        tpid: 0x88a8,
                        vid: (i / 4094 % 4094 + 1) as u16,
                    }),
                    inner: Some(VlanTag {
                        tpid: 0x8100,
                        vid: (i % 4094 + 1) as u16,
                    }),
                },
                encap: session,
                mss_clamp: 1452,
            },
            Access::Lns => AccessLine {
                encap: Encap::L2tp {
                    session: l2tp_session(i),
                },
                mss_clamp: 1452,
                ..AccessLine::default()
            },
            // The LAC's subscribers are no gateway sessions (see rig_lac).
            Access::Lac => AccessLine::default(),
        }
    }

    /// Bytes the line adds to an Ethernet frame.
    pub fn overhead(self) -> usize {
        match self {
            Access::Ipoe => 0,
            Access::Pppoe => 8,
            Access::PppoeQinq => 16,
            // The IPv6 header is 20 bytes longer than IPv4's.
            Access::Nat64 => 20,
            Access::Ipv6 => 20,
            // IPv4/UDP/L2TP/PPP in front of the IPv4 packet (the LAC's downlink, the
            // LNS's uplink).
            Access::Lns | Access::Lac => l2tp_wire::ENCAP_LEN,
        }
    }
}

/// The untagged Ethernet frame `plain` (IPv4 from byte 14) as it comes on `line`.
pub fn on_line(plain: &[u8], line: &AccessLine, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(&plain[..12]);
    for t in [line.vlans.outer, line.vlans.inner].into_iter().flatten() {
        out.extend_from_slice(&t.tpid.to_be_bytes());
        out.extend_from_slice(&t.vid.to_be_bytes());
    }
    let ip = &plain[14..];
    match line.encap {
        Encap::L2tp { session } => {
            // From the LAC, not the subscriber: its own Ethernet and IPv4 header.
            out.clear();
            l2tp_data(
                (LAC_MAC, LAC_IP),
                (ACC_MAC, ACC_IP),
                LNS_TUNNEL,
                session,
                ip,
                out,
            );
            return;
        }
        Encap::Ipoe => out.extend_from_slice(&[0x08, 0x00]),
        Encap::Pppoe { session } => {
            out.extend_from_slice(&[0x88, 0x64, 0x11, 0x00]);
            out.extend_from_slice(&session.to_be_bytes());
            let ip_len = u16::from_be_bytes([ip[2], ip[3]]);
            out.extend_from_slice(&(ip_len + 2).to_be_bytes());
            out.extend_from_slice(&[0x00, 0x21]);
        }
    }
    out.extend_from_slice(ip);
}

/// The LAC of [`Access::Lns`]: on the access subnet.
pub const LAC_IP: Ipv4Addr = Ipv4Addr::new(10, 255, 255, 1);
/// Its MAC.
pub const LAC_MAC: MacAddr = MacAddr([0x02, 0x33, 0, 0, 0, 1]);
/// The LNS of [`Access::Lac`]: on the core subnet.
pub const LNS_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
/// Its MAC.
pub const LNS_MAC: MacAddr = MacAddr([0x02, 0x33, 0, 0, 0, 2]);
/// The gateway's access address.
const ACC_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
/// The gateway's core address.
const CORE_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// Our tunnel id (every session in one tunnel); the peer's.
const LNS_TUNNEL: u16 = 1;
const PEER_TUNNEL: u16 = 2;

/// Subscriber `i`'s L2TP session (ours and the peer's): 1, 2, ...
pub fn l2tp_session(i: u32) -> u16 {
    (i % 0xfffe + 1) as u16
}

/// An L2TP data message from `from` to `to` in our tunnel's `session` (6-byte header, no
/// length or sequence numbers), carrying the IPv4 packet `ip` in PPP (`ff 03 00 21`).
fn l2tp_data(
    from: (MacAddr, Ipv4Addr),
    to: (MacAddr, Ipv4Addr),
    tunnel: u16,
    session: u16,
    ip: &[u8],
    out: &mut Vec<u8>,
) {
    let mut payload = Vec::with_capacity(10 + ip.len());
    payload.extend_from_slice(&[0x00, 0x02]);
    payload.extend_from_slice(&tunnel.to_be_bytes());
    payload.extend_from_slice(&session.to_be_bytes());
    payload.extend_from_slice(&[0xff, 0x03, 0x00, 0x21]);
    payload.extend_from_slice(ip);
    etherparse::PacketBuilder::ethernet2(from.0.0, to.0.0)
        .ipv4(from.1.octets(), to.1.octets(), 64)
        .udp(1701, 1701)
        .write(out, &payload)
        .expect("fits");
}

/// Subscriber `i`'s address.
pub fn sub_ip(i: u32) -> Ipv4Addr {
    Ipv4Addr::from(0x0a00_0002 + i)
}

/// Subscriber `i`'s MAC.
pub fn sub_mac(i: u32) -> MacAddr {
    MacAddr([
        0x02,
        0x11,
        (i >> 24) as u8,
        (i >> 16) as u8,
        (i >> 8) as u8,
        i as u8,
    ])
}

/// Subscriber `i`'s /64 (its upper 64 bits), for [`Access::Nat64`].
pub fn sub_prefix6(i: u32) -> u64 {
    0x2001_0db8_0000_0000 + i as u64
}

/// Subscriber `i`'s IPv6 address in its /64.
pub fn sub_ip6(i: u32) -> Ipv6Addr {
    Ipv6Addr::from_bits((sub_prefix6(i) as u128) << 64 | 0x11)
}

/// The NAT64 pool address `k` (198.18.128.0/17).
pub fn nat64_address(k: u32) -> Ipv4Addr {
    Ipv4Addr::from(0xc612_8000 + k)
}

/// A server's MAC.
pub fn srv_mac(ip: Ipv4Addr) -> MacAddr {
    MacAddr([0x02, 0x22, 0, 0, 0, ip.octets()[3]])
}

/// NAT address `k` (198.18.0.0/15, the benchmarking range).
pub fn nat_address(k: u32) -> Ipv4Addr {
    Ipv4Addr::from(0xc612_0000 + 0x100 + k)
}

/// The scenario's forwarding snapshot with `nat_addresses` NAT addresses.
pub fn forwarding(nat_addresses: u32) -> Forwarding {
    let svc = Service {
        vip: VIP,
        protocol: 6,
        port: 80,
        policy: Policy::RoundRobin,
        session_type: SessionType::Connection,
        servers: SERVERS.iter().map(|a| RealServer::new(*a, 8080)).collect(),
    };
    ForwardingBuilder::new(
        SideConfig {
            mac: ACC_MAC,
            address: Ipv4Addr::new(10, 0, 0, 1),
            prefix_len: 8,
        },
        SideConfig {
            mac: CORE_MAC,
            address: Ipv4Addr::new(192, 0, 2, 1),
            prefix_len: 24,
        },
    )
    .services(Services::new(vec![svc]).expect("one service"))
    .nat(NatConfig {
        addresses: (0..nat_addresses).map(nat_address).collect(),
        ports: (1024, 65535),
        timeouts: Timeouts::default(),
    })
    .unknown(Unknown::Drop)
    .build()
    .expect("valid table")
}

/// [`forwarding`] for subscribers on `access`: with IPv6 and NAT64 (over as many pool
/// addresses as NAT addresses) for [`Access::Nat64`].
pub fn forwarding_for(access: Access, nat_addresses: u32) -> Forwarding {
    let fwd = forwarding(nat_addresses);
    if access != Access::Nat64 && access != Access::Ipv6 {
        return fwd;
    }
    let mut fwd = fwd;
    fwd.ipv6 = Ipv6Forwarding {
        on: true,
        addresses: Vec::new(),
        next_hop: Some(Ipv6Addr::new(0x2001, 0xdb8, 0xff, 0, 0, 0, 0, 0xfe)),
        next_hop_mac: Some(srv_mac(Ipv4Addr::new(0, 0, 0, 254))),
        error_sources: [None, None],
    };
    if access == Access::Ipv6 {
        return fwd;
    }
    fwd.nat64 = Nat64Config {
        on: true,
        pool: (0..nat_addresses).map(nat64_address).collect(),
        ..Nat64Config::default()
    };
    fwd
}

/// The IPv6 server [`Access::Ipv6`]'s subscribers talk to, beyond the next hop.
pub const SERVER6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xfe, 0, 0, 0, 0, 0x10);

/// The steady state of [`Access::Ipv6`]: every subscriber's `flows_each` connections to
/// [`SERVER6`] port 80, one segment each way per connection (IPv6 needs no handshake
/// through the gateway: it keeps no flow state).
fn ipv6_rig(
    worker: Worker<MemoryPort>,
    (sessions, flows_each): (u32, u32),
    burst: usize,
    ctl: ControlEnds,
    publisher: Publisher<Forwarding>,
) -> Rig {
    let stride = FRAME_BYTES + Access::Ipv6.overhead();
    let flows = sessions as usize * flows_each as usize;
    let router = srv_mac(Ipv4Addr::new(0, 0, 0, 254));
    let mut up = FrameSet::with_capacity(stride, flows);
    let mut down = FrameSet::with_capacity(stride, flows);
    for i in 0..sessions {
        for f in 0..flows_each {
            let sport = 10_000 + f as u16;
            let mut fr = Vec::with_capacity(stride);
            etherparse::PacketBuilder::ethernet2(sub_mac(i).0, ACC_MAC.0)
                .ipv6(sub_ip6(i).octets(), SERVER6.octets(), 64)
                .tcp(sport, 80, 2, 1000)
                .ack(1)
                .write(&mut fr, &[0x5a; 10])
                .expect("fits");
            assert!(up.push(&fr), "fits the stride");
            fr.clear();
            etherparse::PacketBuilder::ethernet2(router.0, CORE_MAC.0)
                .ipv6(SERVER6.octets(), sub_ip6(i).octets(), 64)
                .tcp(80, sport, 2, 1000)
                .ack(2)
                .write(&mut fr, &[0x5a; 10])
                .expect("fits");
            assert!(down.push(&fr), "fits the stride");
        }
    }
    let frames = [Arc::new(up), Arc::new(down)];
    let mut worker = worker.with_ports(
        MemoryPort::replaying(frames[0].clone(), u64::MAX),
        MemoryPort::replaying(frames[1].clone(), u64::MAX),
    );
    worker.set_burst(burst);
    Rig {
        worker,
        per_poll: 2 * burst as u64,
        flows,
        sessions: sessions as usize,
        frames,
        burst,
        now: 2_000_000_000,
        _ctl: ctl,
        _publisher: publisher,
    }
}

/// A TCP segment of subscriber `i`'s from `sport` to the VIP's port 80 at its address in
/// 64:ff9b::/96, as [`segment`] builds it for IPv4 (10 bytes of payload but on a SYN).
fn segment6(set: &mut FrameSet, i: u32, sport: u16, flags: u8, seq: u32) {
    let dst = Nat64Config::default().synthesize(VIP);
    let payload: &[u8] = if flags & tcp_flags::SYN != 0 {
        &[]
    } else {
        &[0x5a; 10]
    };
    let b = etherparse::PacketBuilder::ethernet2(sub_mac(i).0, ACC_MAC.0)
        .ipv6(sub_ip6(i).octets(), dst.octets(), 64)
        .tcp(sport, 80, seq, 1000);
    let b = if flags & tcp_flags::SYN != 0 {
        b.syn()
    } else {
        b.ack(1)
    };
    let mut f = Vec::with_capacity(FRAME_BYTES + 20);
    b.write(&mut f, payload).expect("fits");
    assert!(set.push(&f), "fits the stride");
}

/// The frame of a steady-state (or handshake) TCP segment, from a subscriber on `line`
/// (`None`: from a server).
#[allow(clippy::too_many_arguments)]
fn segment(
    set: &mut FrameSet,
    line: Option<&AccessLine>,
    src_mac: MacAddr,
    dst_mac: MacAddr,
    src: (Ipv4Addr, u16),
    dst: (Ipv4Addr, u16),
    flags: u8,
    seq: u32,
) {
    let mut plain = [0u8; FRAME_BYTES];
    plain_segment(&mut plain, src_mac, dst_mac, src, dst, flags, seq);
    // A SYN carries no payload (54 bytes); other segments 10 bytes (64 bytes).
    let payload = if flags & tcp_flags::SYN != 0 { 0 } else { 10 };
    let plain = &plain[..traffic::L4_AT + 20 + payload];
    match line {
        Some(l) if *l != AccessLine::default() => {
            let mut f = Vec::with_capacity(FRAME_BYTES + 16);
            on_line(plain, l, &mut f);
            assert!(set.push(&f), "fits the stride");
        }
        _ => assert!(set.push(plain), "fits the stride"),
    }
}

#[allow(clippy::too_many_arguments)]
fn plain_segment(
    buf: &mut [u8; FRAME_BYTES],
    src_mac: MacAddr,
    dst_mac: MacAddr,
    src: (Ipv4Addr, u16),
    dst: (Ipv4Addr, u16),
    flags: u8,
    seq: u32,
) {
    let payload = if flags & tcp_flags::SYN != 0 { 0 } else { 10 };
    let f = &mut buf[..traffic::L4_AT + 20 + payload];
    f[traffic::L4_AT + 20..].fill(0x5a);
    let ends = Ends {
        src_mac,
        dst_mac,
        src,
        dst,
    };
    let ack = if flags & tcp_flags::ACK != 0 { 1 } else { 0 };
    traffic::tcp(f, &ends, 64, seq, ack, flags, 1000, payload).expect("fits");
}

/// A worker set up for the scenario, its ports replaying the steady-state frames.
pub struct Rig {
    /// The worker.
    pub worker: Worker<MemoryPort>,
    /// Packets per poll (both sides).
    pub per_poll: u64,
    /// Flows established.
    pub flows: usize,
    /// Sessions installed.
    pub sessions: usize,
    /// The steady-state frames: uplink, downlink (one per flow each).
    pub frames: [Arc<FrameSet>; 2],
    /// The burst size.
    pub burst: usize,
    /// The clock the rig polls with (advanced by one nanosecond per poll).
    pub now: u64,
    _ctl: ControlEnds,
    _publisher: Publisher<Forwarding>,
}

/// Polls until the worker has nothing left to do, throwing away what it sends up.
fn settle(worker: &mut Worker<MemoryPort>, ctl: &mut ControlEnds, now: &mut u64) {
    loop {
        *now += 1;
        let n = worker.poll(Instant(*now));
        while ctl.events.pop().is_some() {}
        while ctl.punt.pop().is_some() {}
        if n == 0 && ctl.commands.free() == ctl.commands.capacity() {
            break;
        }
    }
}

/// Builds a rig with `sessions` sessions of `flows_each` flows, polling bursts of
/// `burst` packets per side.
pub fn rig(sessions: u32, flows_each: u32, burst: usize) -> Rig {
    rig_on(sessions, flows_each, burst, Access::Ipoe)
}

/// [`rig`] with subscribers on `access` lines.
pub fn rig_on(sessions: u32, flows_each: u32, burst: usize, access: Access) -> Rig {
    if access == Access::Lac {
        return rig_lac(sessions, burst);
    }
    let stride = FRAME_BYTES + access.overhead();
    let flows = (sessions as usize) * (flows_each as usize);
    let nat_addresses = flows as u32 / FLOWS_PER_ADDRESS + 1;
    let publisher = Publisher::new(forwarding_for(access, nat_addresses));
    let fwd = publisher.current();
    let (w, mut ctl) = worker_rings(RingSizes {
        messages: 1 << 16,
        frames: 64,
    });
    let cfg = WorkerConfig {
        burst: 256,
        commands_per_poll: 1024,
        subscribers: SubscriberLimits {
            sessions: sessions.max(1) as usize,
            flows: flows.max(1),
            flows_per_subscriber: flows_each.max(1),
            ..SubscriberLimits::default()
        },
        l2tp_sessions: if access == Access::Lns {
            l2tp_sessions_for(sessions)
        } else {
            0
        },
        ..WorkerConfig::default()
    };
    let mut worker = Worker::new(
        cfg,
        MemoryPort::idle(),
        MemoryPort::idle(),
        HeapPool::new(8192),
        publisher.reader(),
        w,
    );
    let mut now = 1u64;
    for ip in SERVERS {
        ctl.commands
            .push(Command::NeighborSet {
                ip,
                mac: srv_mac(ip),
            })
            .expect("room");
    }
    if access == Access::Lns {
        ctl.commands
            .push(Command::NeighborSet {
                ip: LAC_IP,
                mac: LAC_MAC,
            })
            .expect("room");
    }
    for i in 0..sessions {
        if access == Access::Lns {
            // The call's L2TP session, then the subscriber reached through it (as
            // gateway::lns installs them when IPCP opens).
            let c = || Command::L2tpSessionSet(lns_session(i));
            while ctl.commands.push(c()).is_err() {
                settle(&mut worker, &mut ctl, &mut now);
            }
        }
        let spec = SessionSpec {
            id: i,
            user: i as u64,
            channel: i,
            address: sub_ip(i),
            mac: Some(match access {
                Access::Lns => l2tp_wire::subscriber_mac(l2tp_session(i)),
                _ => sub_mac(i),
            }),
            started: Instant(1),
            limits: Limits {
                idle_timeout_ms: Some(3_600_000),
                ..Limits::default()
            },
            bandwidth: Bandwidth::default(),
            services: ServiceSet::ALL,
            max_flows: 0,
            access: access.line(i),
        };
        while ctl.commands.push(Command::SessionAdd(spec)).is_err() {
            settle(&mut worker, &mut ctl, &mut now);
        }
        if access == Access::Nat64 || access == Access::Ipv6 {
            let c = || Command::SessionPrefix6 {
                id: i,
                prefix: Some(sub_prefix6(i)),
            };
            while ctl.commands.push(c()).is_err() {
                settle(&mut worker, &mut ctl, &mut now);
            }
        }
    }
    settle(&mut worker, &mut ctl, &mut now);
    if access == Access::Ipv6 {
        return ipv6_rig(worker, (sessions, flows_each), burst, ctl, publisher);
    }

    // Open every flow with a SYN.
    let mut syns = FrameSet::with_capacity(stride, flows);
    for i in 0..sessions {
        let line = access.line(i);
        for f in 0..flows_each {
            let sport = 10_000 + f as u16;
            if access == Access::Nat64 {
                segment6(&mut syns, i, sport, tcp_flags::SYN, 1);
                continue;
            }
            segment(
                &mut syns,
                Some(&line),
                sub_mac(i),
                ACC_MAC,
                (sub_ip(i), sport),
                (VIP, 80),
                tcp_flags::SYN,
                1,
            );
        }
    }
    let mut worker = worker.with_ports(
        MemoryPort::replaying(Arc::new(syns), flows as u64),
        MemoryPort::idle(),
    );
    settle(&mut worker, &mut ctl, &mut now);

    // Every flow as the worker opened it: (subscriber, its port, server, NAT endpoint),
    // in subscriber and port order.
    let mut opened = {
        let pipe = worker.pipeline();
        pipe.flows
            .live_flows()
            .filter_map(|k| {
                let fl = pipe.flows.get(k)?;
                let sub = u32::from(pipe.sessions.get(fl.session)?.address) - 0x0a00_0002;
                Some((
                    sub,
                    fl.sub_port,
                    SERVERS[fl.server as usize],
                    (fwd.nat.addresses[fl.addr as usize], fl.nat_port),
                ))
            })
            .collect::<Vec<_>>()
    };
    opened.sort_unstable_by_key(|o| (o.0, o.1));

    // Answer each SYN with a SYN-ACK.
    let mut syn_acks = FrameSet::with_capacity(FRAME_BYTES, opened.len());
    for &(_, _, server, nat) in &opened {
        segment(
            &mut syn_acks,
            None,
            srv_mac(server),
            CORE_MAC,
            (server, 8080),
            nat,
            tcp_flags::SYN | tcp_flags::ACK,
            1,
        );
    }
    let mut worker = worker.with_ports(
        MemoryPort::idle(),
        MemoryPort::replaying(Arc::new(syn_acks), opened.len() as u64),
    );
    settle(&mut worker, &mut ctl, &mut now);

    // Steady state: one uplink and one downlink segment per flow.
    let mut up = FrameSet::with_capacity(stride, opened.len());
    let mut down = FrameSet::with_capacity(FRAME_BYTES, opened.len());
    for &(sub, sport, server, nat) in &opened {
        if access == Access::Nat64 {
            // The service flow's subscriber port is the binding's pool port: the
            // subscriber's own ports are the SYNs'.
            let k = up.len() as u32;
            segment6(
                &mut up,
                k / flows_each,
                10_000 + (k % flows_each) as u16,
                tcp_flags::ACK,
                2,
            );
        } else {
            segment(
                &mut up,
                Some(&access.line(sub)),
                sub_mac(sub),
                ACC_MAC,
                (sub_ip(sub), sport),
                (VIP, 80),
                tcp_flags::ACK,
                2,
            );
        }
        segment(
            &mut down,
            None,
            srv_mac(server),
            CORE_MAC,
            (server, 8080),
            nat,
            tcp_flags::ACK,
            2,
        );
    }
    drop(opened);
    let frames = [Arc::new(up), Arc::new(down)];
    let mut worker = worker.with_ports(
        MemoryPort::replaying(frames[0].clone(), u64::MAX),
        MemoryPort::replaying(frames[1].clone(), u64::MAX),
    );
    worker.set_burst(burst);
    let established = worker.pipeline().flows.len();
    Rig {
        worker,
        per_poll: 2 * burst as u64,
        flows: established,
        sessions: sessions as usize,
        frames,
        burst,
        now: 2_000_000_000,
        _ctl: ctl,
        _publisher: publisher,
    }
}

/// L2TP sessions a worker needs for `sessions` subscribers (ids 1..=sessions).
fn l2tp_sessions_for(sessions: u32) -> u16 {
    assert!(sessions < 0xfffe, "L2TP session ids are 16 bits");
    sessions as u16 + 1
}

/// Subscriber `i`'s L2TP session at the LNS ([`Access::Lns`]).
fn lns_session(i: u32) -> L2tpSessionSpec {
    L2tpSessionSpec {
        tunnel: LNS_TUNNEL,
        session: l2tp_session(i),
        peer_tunnel: PEER_TUNNEL,
        peer_session: l2tp_session(i),
        local: ACC_IP,
        peer: LAC_IP,
        peer_port: 1701,
        subscriber: sub_ip(i),
        role: TunnelRole::Lns,
        pppoe: None,
    }
}

/// Subscriber `i`'s L2TP session at the LAC ([`Access::Lac`]): its PPPoE session
/// (untagged, MSS clamp 1452) switched into it.
fn lac_session(i: u32) -> L2tpSessionSpec {
    L2tpSessionSpec {
        tunnel: LNS_TUNNEL,
        session: l2tp_session(i),
        peer_tunnel: PEER_TUNNEL,
        peer_session: l2tp_session(i),
        local: CORE_IP,
        peer: LNS_IP,
        peer_port: 1701,
        subscriber: Ipv4Addr::UNSPECIFIED,
        role: TunnelRole::Lac,
        pppoe: Some(PppoeLeg {
            session: l2tp_session(i),
            client: sub_mac(i),
            vlans: Vlans::default(),
            mss_clamp: 1452,
        }),
    }
}

/// The LAC's switching ([`Access::Lac`]): `sessions` PPPoE sessions, each switched into
/// an L2TP session toward the LNS on the core side. Up: the 64-byte segment of
/// subscriber `i` to the VIP in its PPPoE session; down: the server's answer in the
/// LNS's data message for the session. No gateway sessions, no flows.
pub fn rig_lac(sessions: u32, burst: usize) -> Rig {
    let publisher = Publisher::new(forwarding(1));
    let (w, mut ctl) = worker_rings(RingSizes {
        messages: 1 << 16,
        frames: 64,
    });
    let cfg = WorkerConfig {
        burst: 256,
        commands_per_poll: 1024,
        l2tp_sessions: l2tp_sessions_for(sessions),
        ..WorkerConfig::default()
    };
    let mut worker = Worker::new(
        cfg,
        MemoryPort::idle(),
        MemoryPort::idle(),
        HeapPool::new(8192),
        publisher.reader(),
        w,
    );
    let mut now = 1u64;
    ctl.commands
        .push(Command::NeighborSet {
            ip: LNS_IP,
            mac: LNS_MAC,
        })
        .expect("room");
    for i in 0..sessions {
        let c = || Command::L2tpSessionSet(lac_session(i));
        while ctl.commands.push(c()).is_err() {
            settle(&mut worker, &mut ctl, &mut now);
        }
    }
    settle(&mut worker, &mut ctl, &mut now);
    let n = sessions as usize;
    let mut up = FrameSet::with_capacity(FRAME_BYTES + Access::Pppoe.overhead(), n);
    let mut down = FrameSet::with_capacity(FRAME_BYTES + l2tp_wire::ENCAP_LEN, n);
    let server = SERVERS[0];
    let mut f = Vec::with_capacity(FRAME_BYTES + l2tp_wire::ENCAP_LEN);
    for i in 0..sessions {
        segment(
            &mut up,
            Some(&Access::Pppoe.line(i)),
            sub_mac(i),
            ACC_MAC,
            (sub_ip(i), 10_000),
            (VIP, 80),
            tcp_flags::ACK,
            2,
        );
        let mut plain = [0u8; FRAME_BYTES];
        plain_segment(
            &mut plain,
            srv_mac(server),
            CORE_MAC,
            (VIP, 80),
            (sub_ip(i), 10_000),
            tcp_flags::ACK,
            2,
        );
        f.clear();
        l2tp_data(
            (LNS_MAC, LNS_IP),
            (CORE_MAC, CORE_IP),
            LNS_TUNNEL,
            l2tp_session(i),
            &plain[14..traffic::L4_AT + 30],
            &mut f,
        );
        assert!(down.push(&f), "fits the stride");
    }
    let frames = [Arc::new(up), Arc::new(down)];
    let mut worker = worker.with_ports(
        MemoryPort::replaying(frames[0].clone(), u64::MAX),
        MemoryPort::replaying(frames[1].clone(), u64::MAX),
    );
    worker.set_burst(burst);
    Rig {
        worker,
        per_poll: 2 * burst as u64,
        flows: 0,
        sessions: n,
        frames,
        burst,
        now: 2_000_000_000,
        _ctl: ctl,
        _publisher: publisher,
    }
}

impl Rig {
    /// Runs `polls` polls; returns the packets received.
    #[inline(never)]
    pub fn run(&mut self, polls: u64) -> u64 {
        let mut n = 0;
        for _ in 0..polls {
            self.now += 1;
            n += self.worker.poll(Instant(self.now)) as u64;
        }
        n
    }

    /// Runs for about `d`; returns (packets, elapsed).
    pub fn run_for(&mut self, d: Duration) -> (u64, Duration) {
        timed(d, |polls| self.run(polls))
    }

    /// The I/O of the same rig without the pipeline: the reference the pipeline's cost
    /// is measured against.
    pub fn io_only(&self) -> IoOnly {
        IoOnly {
            ports: [
                MemoryPort::replaying(self.frames[0].clone(), u64::MAX),
                MemoryPort::replaying(self.frames[1].clone(), u64::MAX),
            ],
            out: MemoryPort::idle(),
            pool: HeapPool::new(8192),
            burst: Burst::new(),
            size: self.burst,
        }
    }

    /// Bytes the worker's session table allocated, and its capacity.
    pub fn session_memory(&self) -> (usize, usize) {
        let s = &self.worker.pipeline().sessions;
        (s.memory_bytes(), s.capacity())
    }

    /// Bytes the worker's flow table allocated, and its capacity.
    pub fn flow_memory(&self) -> (usize, usize) {
        let f = &self.worker.pipeline().flows;
        (f.memory_bytes(), f.capacity())
    }
}

/// Ports, a pool and a burst moving the rig's frames with no stage in between.
pub struct IoOnly {
    ports: [MemoryPort; 2],
    out: MemoryPort,
    pool: HeapPool,
    burst: Burst<tollgate_dataplane::HeapBuf>,
    size: usize,
}

impl IoOnly {
    /// Runs `polls` polls (one burst from each side); returns the packets moved.
    #[inline(never)]
    pub fn run(&mut self, polls: u64) -> u64 {
        let mut n = 0;
        for _ in 0..polls {
            for p in &mut self.ports {
                p.rx_burst(&mut self.pool, &mut self.burst, self.size);
                n += self.burst.len() as u64;
                std::hint::black_box(self.out.tx_burst(&mut self.pool, &mut self.burst));
            }
        }
        n
    }

    /// Runs for about `d`; returns (packets, elapsed).
    pub fn run_for(&mut self, d: Duration) -> (u64, Duration) {
        timed(d, |polls| self.run(polls))
    }
}

/// Runs `f` in slices of polls until `d` has passed.
fn timed(d: Duration, mut f: impl FnMut(u64) -> u64) -> (u64, Duration) {
    let start = std::time::Instant::now();
    let mut packets = 0;
    loop {
        packets += f(256);
        let e = start.elapsed();
        if e >= d {
            return (packets, e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tollgate_dataplane::stage::lookahead::LOOK_AHEAD_FROM;

    /// The IPv6 lines above the look-ahead's threshold (so a burst's IPv6 sessions and
    /// bindings are prefetched): every steady-state frame is forwarded, both ways.
    #[test]
    fn ipv6_lines_forward_everything_with_the_look_ahead() {
        for access in [Access::Ipv6, Access::Nat64] {
            let sessions = LOOK_AHEAD_FROM as u32;
            let mut r = rig_on(sessions, 1, 32, access);
            let before = r.worker.report(0, Instant(0)).counters;
            let n = r.run(200);
            let c = r.worker.report(0, Instant(0)).counters;
            assert_eq!(n, 200 * 64, "{access:?}");
            assert_eq!(c.forwarded - before.forwarded, n, "{access:?}");
            assert_eq!(c.total_drops(), 0, "{access:?}: {c:?}");
        }
    }

    /// The L2TP rigs carry their steady state with nothing dropped: the LNS's uplink
    /// comes out of its L2TP sessions and opens a flow per subscriber, its downlink goes
    /// back in; the LAC switches both ways.
    #[test]
    fn l2tp_rigs_drop_nothing() {
        for access in [Access::Lns, Access::Lac] {
            let mut rig = rig_on(200, 1, 32, access);
            let want_flows = if access == Access::Lns { 200 } else { 0 };
            assert_eq!(rig.flows, want_flows, "{access:?}");
            let before = rig.worker.report(0, Default::default()).counters;
            assert_eq!(before.total_drops(), 0, "{access:?}: {:?}", before.named());
            let n = rig.run(100);
            assert_eq!(n, 100 * rig.per_poll, "{access:?}");
            let after = rig.worker.report(0, Default::default()).counters;
            assert_eq!(after.total_drops(), 0, "{access:?}: {:?}", after.named());
            let delta = |name: &str| {
                let get = |c: &tollgate_dataplane::WorkerCounters| {
                    c.named().iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
                };
                get(&after).unwrap_or(0) - get(&before).unwrap_or(0)
            };
            let each_way = 100 * rig.per_poll / 2;
            let (encap, decap) = match access {
                Access::Lac => ("lac_switched_to_lns", "lac_switched_to_client"),
                _ => ("l2tp_encapsulated", "l2tp_decapsulated"),
            };
            assert_eq!(
                (delta(encap), delta(decap)),
                (each_way, each_way),
                "{access:?}"
            );
        }
    }
}
