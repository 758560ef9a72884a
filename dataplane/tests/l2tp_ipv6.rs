//! IPv6 of a PPP subscriber terminated at an LNS (issue 16 item 2, for L2TP calls): PPP
//! protocol 0x0057 in L2TP data messages, through one worker on memory ports. Frames
//! built with etherparse (L2TP/UDP/IPv4 outer, `ff 03 00 57`, the IPv6 packet) and
//! compared byte for byte: the uplink decapsulated and routed to the IPv6 next hop, the
//! downlink by the session's /64 into its tunnel toward the LAC; RS and DHCPv6 punted in
//! their L2TP datagram; anti-spoofing by the session's prefixes (a prefix another L2TP
//! session carries is spoofed); RA guard; the gateway's in-place answers back into the
//! tunnel; Packet Too Big for the tunnel's MTU; counters exact (session both families and
//! the IPv6 share, the L2TP session's, the worker's).

use std::net::{Ipv4Addr, Ipv6Addr};

use etherparse::{Icmpv6Type, PacketBuilder};
use tollgate_dataplane::l2tp::{L2tpCounters, L2tpSessionSpec, TunnelRole};
use tollgate_dataplane::msg::ControlEnds;
use tollgate_dataplane::port::memory::{MemoryPeer, MemoryPort};
use tollgate_dataplane::session::{AccessLine, Encap, SessionCounters, SessionSpec};
use tollgate_dataplane::snapshot::Publisher;
use tollgate_dataplane::time::Instant;
use tollgate_dataplane::wire::l2tp::subscriber_mac;
use tollgate_dataplane::{
    Command, DropReason, Event, ForwardingBuilder, HeapPool, Ipv6Forwarding, MacAddr, Side,
    SideConfig, Worker, WorkerConfig, WorkerCounters, worker_rings,
};

const POOL: usize = 256;
const LAC: Ipv4Addr = Ipv4Addr::new(172, 16, 0, 1);
const LNS: Ipv4Addr = Ipv4Addr::new(172, 16, 0, 2);
const LNS_CORE: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const LAC_MAC: MacAddr = MacAddr([2, 0xa, 0, 0, 0, 2]);
const LINE_MAC: MacAddr = MacAddr([2, 0xb, 0, 0, 0, 1]);
const CORE_MAC: MacAddr = MacAddr([2, 0xb, 0, 0, 0, 2]);
const RTR_MAC: MacAddr = MacAddr([2, 0x20, 0, 0, 0, 0xfe]);
/// Two PPP subscribers: IPv4 address, our L2TP session id, the LAC's, their /64.
const SUB: Ipv4Addr = Ipv4Addr::new(100, 64, 0, 1);
const SUB2: Ipv4Addr = Ipv4Addr::new(100, 64, 0, 2);
const SESSION: u16 = 5;
const SESSION2: u16 = 6;
const LAC_SESSION: u16 = 1;
const LAC_SESSION2: u16 = 2;
const TUNNEL: u16 = 20;
const LAC_TUNNEL: u16 = 10;
const PREFIX: u64 = 0x2001_0db8_0100_0001;
const PREFIX2: u64 = 0x2001_0db8_0100_0002;
const SUB6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x100, 1, 0, 0, 0, 0x11);
const SUB2_6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x100, 2, 0, 0, 0, 0x22);
/// Inside the first subscriber's delegated /56.
const LAN6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x200, 0x5, 0, 0, 0, 1);
const SRV6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xff, 0, 0, 0, 0, 0x10);
const GW6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xff, 0, 0, 0, 0, 1);
const GW_LL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0xff, 0xfe00, 1);
const SUB_LL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 1, 2, 3, 4);
const RTR6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xff, 0, 0, 0, 0, 0xfe);

struct Lns {
    worker: Worker<MemoryPort>,
    access: MemoryPeer,
    core: MemoryPeer,
    ctl: ControlEnds,
    _publisher: Publisher<tollgate_dataplane::Forwarding>,
}

fn side(mac: MacAddr, address: Ipv4Addr) -> SideConfig {
    SideConfig {
        mac,
        address,
        prefix_len: 24,
    }
}

impl Lns {
    /// An LNS with `[ipv6]` on (or off), tunnels of `mtu` bytes, and the two subscribers
    /// installed behind their L2TP sessions, each with its /64.
    fn new(ipv6: bool, mtu: u16) -> Lns {
        let fwd = ForwardingBuilder::new(side(LINE_MAC, LNS), side(CORE_MAC, LNS_CORE))
            .ipv6(Ipv6Forwarding {
                on: ipv6,
                addresses: vec![GW6],
                next_hop: Some(RTR6),
                next_hop_mac: Some(RTR_MAC),
                error_sources: [Some(GW_LL), Some(GW6)],
            })
            .build()
            .unwrap();
        let publisher = Publisher::new(fwd);
        let (w, ctl) = worker_rings(Default::default());
        let (a, access) = MemoryPort::with_peer(1024);
        let (c, core) = MemoryPort::with_peer(1024);
        let cfg = WorkerConfig {
            l2tp_sessions: 16,
            l2tp_mtu: mtu,
            ..WorkerConfig::default()
        };
        let worker = Worker::new(cfg, a, c, HeapPool::new(POOL), publisher.reader(), w);
        let mut l = Lns {
            worker,
            access,
            core,
            ctl,
            _publisher: publisher,
        };
        l.command(Command::NeighborSet {
            ip: LAC,
            mac: LAC_MAC,
        });
        for (id, sub, s, lac_s, prefix) in [
            (1, SUB, SESSION, LAC_SESSION, PREFIX),
            (2, SUB2, SESSION2, LAC_SESSION2, PREFIX2),
        ] {
            l.command(Command::L2tpSessionSet(L2tpSessionSpec {
                tunnel: TUNNEL,
                session: s,
                peer_tunnel: LAC_TUNNEL,
                peer_session: lac_s,
                local: LNS,
                peer: LAC,
                peer_port: 1701,
                subscriber: sub,
                role: TunnelRole::Lns,
                pppoe: None,
            }));
            l.command(Command::SessionAdd(SessionSpec {
                id,
                user: 1000 + u64::from(id),
                channel: id,
                address: sub,
                mac: Some(subscriber_mac(s)),
                started: Instant(1_000_000_000),
                limits: Default::default(),
                bandwidth: Default::default(),
                services: Default::default(),
                max_flows: 0,
                access: AccessLine {
                    vlans: Default::default(),
                    encap: Encap::L2tp { session: s },
                    mss_clamp: 0,
                },
            }));
            l.command(Command::SessionPrefix6 {
                id,
                prefix: Some(prefix),
            });
        }
        l
    }

    fn poll(&mut self) {
        self.worker.poll(Instant(1_000_000_000));
    }

    fn command(&mut self, c: Command) {
        self.ctl.commands.push(c).unwrap();
        self.poll();
    }

    fn counters(&mut self) -> WorkerCounters {
        self.worker.report(0, Instant(1_000_000_000)).counters
    }

    /// From the LAC; returns what left on (core side, access side).
    fn send_from_lac(&mut self, frame: Vec<u8>) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
        assert!(self.access.send(frame));
        self.poll();
        (self.core.drain(), self.access.drain())
    }

    /// From the core side; returns what left on (core side, access side).
    fn send_from_core(&mut self, frame: Vec<u8>) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
        assert!(self.core.send(frame));
        self.poll();
        (self.core.drain(), self.access.drain())
    }

    fn punted(&mut self) -> Vec<(Side, Vec<u8>)> {
        std::iter::from_fn(|| self.ctl.punt.pop())
            .map(|f| (f.side, f.bytes().to_vec()))
            .collect()
    }

    /// Session `id`'s counters (both families) and their IPv6 share.
    fn session(&mut self, id: u32) -> (SessionCounters, Option<SessionCounters>) {
        self.command(Command::SessionQuery { id, seq: 9 });
        std::iter::from_fn(|| self.ctl.events.pop())
            .find_map(|e| match e {
                Event::SessionCounters {
                    id: i,
                    seq: 9,
                    counters,
                    ipv6,
                    ..
                } if i == id => Some((counters, ipv6)),
                _ => None,
            })
            .expect("the session answers")
    }

    fn l2tp(&mut self, session: u16) -> L2tpCounters {
        self.command(Command::L2tpReport { seq: 4 });
        std::iter::from_fn(|| self.ctl.events.pop())
            .find_map(|e| match e {
                Event::L2tpCounters {
                    session: s,
                    counters,
                    ..
                } if s == session => Some(counters),
                _ => None,
            })
            .expect("the L2TP session's counters")
    }

    /// The conservation law holds and no buffer leaked.
    fn check_balance(&mut self) {
        let held = self.worker.held() as u64;
        let c = self.counters();
        let (i, o) = c.balance(held);
        assert_eq!(i, o, "in {i} != out {o}: {c:?}");
        assert_eq!(self.worker.pool_available() + self.worker.held(), POOL);
    }
}

fn drops(c: &WorkerCounters) -> Vec<(DropReason, u64)> {
    DropReason::ALL
        .iter()
        .map(|r| (*r, c.dropped(*r)))
        .filter(|(_, n)| *n != 0)
        .collect()
}

/// The L2TP data message the LAC sends for our session `session`: `ff 03`, PPP protocol
/// 0x0057, the IPv6 packet `ip`.
fn from_lac(session: u16, ip: &[u8]) -> Vec<u8> {
    let mut l2tp = vec![0x00, 0x02];
    l2tp.extend_from_slice(&TUNNEL.to_be_bytes());
    l2tp.extend_from_slice(&session.to_be_bytes());
    l2tp.extend_from_slice(&[0xff, 0x03, 0x00, 0x57]);
    l2tp.extend_from_slice(ip);
    let mut f = Vec::new();
    PacketBuilder::ethernet2(LAC_MAC.0, LINE_MAC.0)
        .ipv4(LAC.octets(), LNS.octets(), 64)
        .udp(1701, 1701)
        .write(&mut f, &l2tp)
        .unwrap();
    f
}

/// The data message the LNS must send the LAC for its session `lac_session`: the outer
/// IPv4 without DF and the UDP checksum zero (what the encapsulation writes; etherparse
/// sets both, cleared here and the IPv4 checksum computed again).
fn to_lac(lac_session: u16, ip: &[u8]) -> Vec<u8> {
    let mut l2tp = vec![0x00, 0x02];
    l2tp.extend_from_slice(&LAC_TUNNEL.to_be_bytes());
    l2tp.extend_from_slice(&lac_session.to_be_bytes());
    l2tp.extend_from_slice(&[0xff, 0x03, 0x00, 0x57]);
    l2tp.extend_from_slice(ip);
    let mut f = Vec::new();
    PacketBuilder::ethernet2(LINE_MAC.0, LAC_MAC.0)
        .ipv4(LNS.octets(), LAC.octets(), 64)
        .udp(1701, 1701)
        .write(&mut f, &l2tp)
        .unwrap();
    f[14 + 20 + 6..14 + 20 + 8].copy_from_slice(&[0, 0]);
    let mut h = etherparse::Ipv4Header::from_slice(&f[14..]).unwrap().0;
    h.dont_fragment = false;
    h.header_checksum = h.calc_header_checksum();
    f[14..34].copy_from_slice(&h.to_bytes());
    f
}

/// `ip` in a plain Ethernet frame.
fn eth6(dst: MacAddr, src: MacAddr, ip: &[u8]) -> Vec<u8> {
    let mut f = dst.0.to_vec();
    f.extend_from_slice(&src.0);
    f.extend_from_slice(&[0x86, 0xdd]);
    f.extend_from_slice(ip);
    f
}

fn udp6(src: Ipv6Addr, dst: Ipv6Addr, hl: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = Vec::new();
    PacketBuilder::ipv6(src.octets(), dst.octets(), hl)
        .udp(40000, 53)
        .write(&mut p, payload)
        .unwrap();
    p
}

fn icmp6(src: Ipv6Addr, dst: Ipv6Addr, hl: u8, ty: Icmpv6Type, body: &[u8]) -> Vec<u8> {
    let mut p = Vec::new();
    PacketBuilder::ipv6(src.octets(), dst.octets(), hl)
        .icmpv6(ty)
        .write(&mut p, body)
        .unwrap();
    p
}

fn nd(ty: u8) -> Icmpv6Type {
    Icmpv6Type::Unknown {
        type_u8: ty,
        code_u8: 0,
        bytes5to8: [0; 4],
    }
}

#[test]
fn ipv6_in_ppp_is_decapsulated_up_and_encapsulated_down() {
    let mut l = Lns::new(true, 1500);
    // Up: out of the tunnel to the IPv6 next hop, hop limit one less.
    let up = udp6(SUB6, SRV6, 64, b"query");
    let (core, access) = l.send_from_lac(from_lac(SESSION, &up));
    assert_eq!(
        core,
        vec![eth6(RTR_MAC, CORE_MAC, &udp6(SUB6, SRV6, 63, b"query"))]
    );
    assert!(access.is_empty());
    // Down: by the /64 into the session's tunnel, toward the LAC's session.
    let down = udp6(SRV6, SUB6, 64, b"answer!");
    let (core, access) = l.send_from_core(eth6(CORE_MAC, RTR_MAC, &down));
    assert!(core.is_empty());
    assert_eq!(
        access,
        vec![to_lac(LAC_SESSION, &udp6(SRV6, SUB6, 63, b"answer!"))]
    );
    // From inside a delegated prefix, both ways.
    l.command(Command::SessionDelegated6 {
        id: 1,
        prefix: Some((0x2001_0db8_0200_0000, 56)),
    });
    let (core, _) = l.send_from_lac(from_lac(SESSION, &udp6(LAN6, SRV6, 9, b"lan")));
    assert_eq!(
        core,
        vec![eth6(RTR_MAC, CORE_MAC, &udp6(LAN6, SRV6, 8, b"lan"))]
    );
    let (_, access) = l.send_from_core(eth6(CORE_MAC, RTR_MAC, &udp6(SRV6, LAN6, 2, b"back")));
    assert_eq!(
        access,
        vec![to_lac(LAC_SESSION, &udp6(SRV6, LAN6, 1, b"back"))]
    );
    let c = l.counters();
    assert_eq!(drops(&c), vec![]);
    assert_eq!((c.l2tp_decapsulated, c.l2tp_encapsulated), (2, 2));
    // Both families and the IPv6 share: the IPv6 header and payload.
    let (up_b, down_b) = (40 + 8 + 5 + 40 + 8 + 3, 40 + 8 + 7 + 40 + 8 + 4);
    let want = SessionCounters {
        tx_packets: 2,
        tx_bytes: up_b,
        rx_packets: 2,
        rx_bytes: down_b,
    };
    assert_eq!(l.session(1), (want, Some(want)));
    assert_eq!(
        l.l2tp(SESSION),
        L2tpCounters {
            encap_packets: 2,
            encap_bytes: down_b,
            decap_packets: 2,
            decap_bytes: up_b,
        }
    );
    assert_eq!(
        l.session(2),
        (SessionCounters::default(), Some(SessionCounters::default()))
    );
    l.check_balance();
}

#[test]
fn rs_and_dhcpv6_are_punted_in_their_l2tp_datagram() {
    let mut l = Lns::new(true, 1500);
    let rs = from_lac(
        SESSION,
        &icmp6(SUB_LL, "ff02::2".parse().unwrap(), 255, nd(133), &[]),
    );
    let mut solicit = Vec::new();
    PacketBuilder::ipv6(
        SUB_LL.octets(),
        "ff02::1:2".parse::<Ipv6Addr>().unwrap().octets(),
        1,
    )
    .udp(546, 547)
    .write(&mut solicit, &[1, 0, 0, 1])
    .unwrap();
    let solicit = from_lac(SESSION, &solicit);
    let ns = from_lac(SESSION, &icmp6(SUB_LL, GW_LL, 255, nd(135), &[0; 20]));
    for f in [&rs, &solicit, &ns] {
        let (core, access) = l.send_from_lac(f.clone());
        assert!(core.is_empty() && access.is_empty());
    }
    assert_eq!(
        l.punted(),
        vec![
            (Side::Access, rs),
            (Side::Access, solicit),
            (Side::Access, ns)
        ]
    );
    let c = l.counters();
    assert_eq!(
        (
            c.ipv6_control,
            c.punted,
            c.l2tp_decapsulated,
            c.l2tp_ppp_control
        ),
        (3, 3, 0, 0)
    );
    assert_eq!(drops(&c), vec![]);
    // Not counted to the session: the PPP link's own.
    assert_eq!(
        l.session(1),
        (SessionCounters::default(), Some(SessionCounters::default()))
    );
    l.check_balance();
}

#[test]
fn spoofed_sources_and_subscriber_ras_are_counted_drops() {
    let mut l = Lns::new(true, 1500);
    // The other subscriber's /64 in this L2TP session.
    let (core, _) = l.send_from_lac(from_lac(SESSION, &udp6(SUB2_6, SRV6, 64, b"x")));
    assert!(core.is_empty());
    // A /64 nobody holds.
    let stranger = Ipv6Addr::new(0x2001, 0xdb8, 0x999, 0, 0, 0, 0, 1);
    let (core, _) = l.send_from_lac(from_lac(SESSION, &udp6(stranger, SRV6, 64, b"x")));
    assert!(core.is_empty());
    // A Router Advertisement from the subscriber (RA guard).
    let (core, access) = l.send_from_lac(from_lac(
        SESSION,
        &icmp6(SUB_LL, "ff02::1".parse().unwrap(), 255, nd(134), &[0; 8]),
    ));
    assert!(core.is_empty() && access.is_empty());
    // A truncated IPv6 header.
    let mut cut = udp6(SUB6, SRV6, 64, b"x");
    cut[4..6].copy_from_slice(&600u16.to_be_bytes());
    let (core, _) = l.send_from_lac(from_lac(SESSION, &cut));
    assert!(core.is_empty());
    let c = l.counters();
    assert_eq!(
        drops(&c),
        vec![
            (DropReason::Ipv6Truncated, 1),
            (DropReason::Ipv6RaGuard, 1),
            (DropReason::Ipv6SourceSpoofed, 2),
        ]
    );
    assert_eq!(c.l2tp_decapsulated, 0);
    assert!(l.punted().is_empty());
    assert_eq!(
        l.session(1),
        (SessionCounters::default(), Some(SessionCounters::default()))
    );
    assert_eq!(
        l.session(2),
        (SessionCounters::default(), Some(SessionCounters::default()))
    );
    l.check_balance();
}

/// An L2TP session whose subscriber has no gateway session on the worker yet (installed
/// before it, as at a call's setup): its IPv6 is a counted `l2tp_no_session` drop, not a
/// spoofed source, whatever /64 it comes from (a live session's included); RS still goes to
/// the control plane. Once the session is added with its /64, the same packet goes through.
#[test]
fn ipv6_without_the_subscriber_s_session_is_l2tp_no_session() {
    let mut l = Lns::new(true, 1500);
    const SUB3: Ipv4Addr = Ipv4Addr::new(100, 64, 0, 3);
    const PREFIX3: u64 = 0x2001_0db8_0100_0003;
    let sub3_6 = Ipv6Addr::new(0x2001, 0xdb8, 0x100, 3, 0, 0, 0, 0x33);
    l.command(Command::L2tpSessionSet(L2tpSessionSpec {
        tunnel: TUNNEL,
        session: 7,
        peer_tunnel: LAC_TUNNEL,
        peer_session: 3,
        local: LNS,
        peer: LAC,
        peer_port: 1701,
        subscriber: SUB3,
        role: TunnelRole::Lns,
        pppoe: None,
    }));
    for src in [sub3_6, SUB6] {
        let (core, access) = l.send_from_lac(from_lac(7, &udp6(src, SRV6, 64, b"x")));
        assert!(core.is_empty() && access.is_empty(), "from {src}");
    }
    let rs = from_lac(
        7,
        &icmp6(SUB_LL, "ff02::2".parse().unwrap(), 255, nd(133), &[0; 4]),
    );
    l.send_from_lac(rs.clone());
    assert_eq!(l.punted(), vec![(Side::Access, rs)]);
    let c = l.counters();
    assert_eq!(drops(&c), vec![(DropReason::L2tpNoSession, 2)]);
    assert_eq!(c.l2tp_decapsulated, 0);
    assert_eq!(l.l2tp(7), L2tpCounters::default());
    assert_eq!(
        l.session(1),
        (SessionCounters::default(), Some(SessionCounters::default()))
    );
    // The gateway session arrives: the same packet goes through, counted to it.
    l.command(Command::SessionAdd(SessionSpec {
        id: 3,
        user: 1003,
        channel: 3,
        address: SUB3,
        mac: Some(subscriber_mac(7)),
        started: Instant(1_000_000_000),
        limits: Default::default(),
        bandwidth: Default::default(),
        services: Default::default(),
        max_flows: 0,
        access: AccessLine {
            vlans: Default::default(),
            encap: Encap::L2tp { session: 7 },
            mss_clamp: 0,
        },
    }));
    l.command(Command::SessionPrefix6 {
        id: 3,
        prefix: Some(PREFIX3),
    });
    let (core, _) = l.send_from_lac(from_lac(7, &udp6(sub3_6, SRV6, 64, b"x")));
    assert_eq!(
        core,
        vec![eth6(RTR_MAC, CORE_MAC, &udp6(sub3_6, SRV6, 63, b"x"))]
    );
    let c = l.counters();
    assert_eq!(drops(&c), vec![(DropReason::L2tpNoSession, 2)]);
    assert_eq!(c.l2tp_decapsulated, 1);
    l.check_balance();
}

#[test]
fn answers_in_place_go_back_into_the_tunnel() {
    let mut l = Lns::new(true, 1500);
    // Hop limit 1: Time Exceeded from the access side's error source, into the tunnel.
    let up = udp6(SUB6, SRV6, 1, b"trace");
    let (core, access) = l.send_from_lac(from_lac(SESSION, &up));
    assert!(core.is_empty());
    let te = icmp6(
        GW_LL,
        SUB6,
        64,
        Icmpv6Type::TimeExceeded(etherparse::icmpv6::TimeExceededCode::HopLimitExceeded),
        &up,
    );
    assert_eq!(access, vec![to_lac(LAC_SESSION, &te)]);
    // An Echo Request to the gateway's address: the reply, into the tunnel.
    let echo = Icmpv6Type::EchoRequest(etherparse::IcmpEchoHeader { id: 7, seq: 1 });
    let req = icmp6(SUB6, GW6, 64, echo, b"ping");
    let (core, access) = l.send_from_lac(from_lac(SESSION, &req));
    assert!(core.is_empty());
    let reply = icmp6(
        GW6,
        SUB6,
        64,
        Icmpv6Type::EchoReply(etherparse::IcmpEchoHeader { id: 7, seq: 1 }),
        b"ping",
    );
    assert_eq!(access, vec![to_lac(LAC_SESSION, &reply)]);
    let c = l.counters();
    assert_eq!(drops(&c), vec![(DropReason::Ipv6HopLimitExceeded, 1)]);
    assert_eq!((c.icmp_errors, c.l2tp_encapsulated), (1, 2));
    l.check_balance();
}

#[test]
fn downlink_over_the_tunnel_mtu_gets_packet_too_big() {
    // 1280 + 38 bytes fit a 1318-byte tunnel; one byte more does not.
    let mut l = Lns::new(true, 1318);
    let fits = udp6(SRV6, SUB6, 64, &[1; 1280 - 48]);
    let (_, access) = l.send_from_core(eth6(CORE_MAC, RTR_MAC, &fits));
    assert_eq!(
        access,
        vec![to_lac(LAC_SESSION, &udp6(SRV6, SUB6, 63, &[1; 1232]))]
    );
    let big = udp6(SRV6, SUB6, 64, &[1; 1281 - 48]);
    let (core, access) = l.send_from_core(eth6(CORE_MAC, RTR_MAC, &big));
    assert!(access.is_empty());
    assert_eq!(core.len(), 1);
    let p = etherparse::SlicedPacket::from_ethernet(&core[0]).unwrap();
    let Some(etherparse::TransportSlice::Icmpv6(icmp)) = p.transport else {
        panic!("not ICMPv6: {:?}", core[0])
    };
    assert_eq!(icmp.icmp_type(), Icmpv6Type::PacketTooBig { mtu: 1280 });
    assert_eq!(&core[0][..12], &[RTR_MAC.0, CORE_MAC.0].concat()[..]);
    let c = l.counters();
    assert_eq!(drops(&c), vec![(DropReason::L2tpTooBig, 1)]);
    let one = SessionCounters {
        tx_packets: 0,
        tx_bytes: 0,
        rx_packets: 1,
        rx_bytes: 1280,
    };
    assert_eq!(l.session(1), (one, Some(one)));
    l.check_balance();
}

#[test]
fn without_ipv6_the_lns_drops_ipv6_in_ppp() {
    let mut l = Lns::new(false, 1500);
    let (core, access) = l.send_from_lac(from_lac(SESSION, &udp6(SUB6, SRV6, 64, b"x")));
    assert!(core.is_empty() && access.is_empty());
    assert!(l.punted().is_empty());
    assert_eq!(drops(&l.counters()), vec![(DropReason::L2tpNotIpv4, 1)]);
    l.check_balance();
}
