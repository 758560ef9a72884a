//! NAT64 for a PPP subscriber terminated at an LNS (issue 16, V6-2 over L2TP): its IPv6
//! (PPP protocol 0x0057 in the L2TP data messages of its call, after IPv6CP) to
//! 64:ff9b::/96 leaves the core side as IPv4 from the NAT64 pool address, and the IPv4
//! answer comes back as IPv6 inside the call's tunnel toward the LAC, through one worker
//! on memory ports. Frames built with etherparse and compared byte for byte both ways
//! (UDP and ICMPv6 echo / ICMP echo: addresses, ports, identifiers, checksums, the L2TP
//! header toward the LAC's tunnel and session); counters exact (the session, the NAT64
//! counters, no drop) and no buffer leaked.

use std::net::{Ipv4Addr, Ipv6Addr};

use etherparse::{IcmpEchoHeader, Icmpv4Type, Icmpv6Type, PacketBuilder};
use tollgate_dataplane::l2tp::{L2tpSessionSpec, TunnelRole};
use tollgate_dataplane::msg::ControlEnds;
use tollgate_dataplane::nat::{NatConfig, Timeouts};
use tollgate_dataplane::port::memory::{MemoryPeer, MemoryPort};
use tollgate_dataplane::session::{AccessLine, Encap, ServiceSet, SessionCounters, SessionSpec};
use tollgate_dataplane::snapshot::Publisher;
use tollgate_dataplane::time::Instant;
use tollgate_dataplane::wire::l2tp::subscriber_mac;
use tollgate_dataplane::{
    Command, DropReason, Event, ForwardingBuilder, HeapPool, Ipv6Forwarding, MacAddr, Nat64Config,
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
const SRV_MAC: MacAddr = MacAddr([2, 0x20, 0, 0, 0, 0x10]);
/// The PPP subscriber: its IPv4 address, our L2TP session id, the LAC's, its /64.
const SUB: Ipv4Addr = Ipv4Addr::new(100, 64, 0, 1);
const SESSION: u16 = 5;
const LAC_SESSION: u16 = 1;
const TUNNEL: u16 = 20;
const LAC_TUNNEL: u16 = 10;
const PREFIX: u64 = 0x2001_0db8_0100_0001;
const SUB6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x100, 1, 0, 0, 0, 0x11);
const GW6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xff, 0, 0, 0, 0, 1);
const GW_LL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0xff, 0xfe00, 1);
const RTR6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xff, 0, 0, 0, 0, 0xfe);
/// The NAT64 pool address, on the core subnet.
const NAT64: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 64);
const SRV: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
/// 64:ff9b::192.0.2.10 (SRV).
const SRV64: Ipv6Addr = Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0xc000, 0x020a);

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
    /// An LNS with IPv6 and NAT64 on (pool address NAT64) and the subscriber installed
    /// behind its L2TP session, with its /64.
    fn new() -> Lns {
        let fwd = ForwardingBuilder::new(side(LINE_MAC, LNS), side(CORE_MAC, LNS_CORE))
            .ipv6(Ipv6Forwarding {
                on: true,
                addresses: vec![GW6],
                next_hop: Some(RTR6),
                next_hop_mac: Some(RTR_MAC),
                error_sources: [Some(GW_LL), Some(GW6)],
            })
            .nat64(Nat64Config {
                on: true,
                pool: vec![NAT64],
                ..Nat64Config::default()
            })
            .nat(NatConfig {
                addresses: vec![LNS_CORE],
                ports: (1024, 65535),
                timeouts: Timeouts::default(),
            })
            .build()
            .unwrap();
        let publisher = Publisher::new(fwd);
        let (w, ctl) = worker_rings(Default::default());
        let (a, access) = MemoryPort::with_peer(1024);
        let (c, core) = MemoryPort::with_peer(1024);
        let cfg = WorkerConfig {
            l2tp_sessions: 16,
            l2tp_mtu: 1500,
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
        for (ip, mac) in [(LAC, LAC_MAC), (SRV, SRV_MAC)] {
            l.command(Command::NeighborSet { ip, mac });
        }
        l.command(Command::L2tpSessionSet(L2tpSessionSpec {
            tunnel: TUNNEL,
            session: SESSION,
            peer_tunnel: LAC_TUNNEL,
            peer_session: LAC_SESSION,
            local: LNS,
            peer: LAC,
            peer_port: 1701,
            subscriber: SUB,
            role: TunnelRole::Lns,
            pppoe: None,
        }));
        l.command(Command::SessionAdd(SessionSpec {
            id: 1,
            user: 1001,
            channel: 1,
            address: SUB,
            mac: Some(subscriber_mac(SESSION)),
            started: Instant(1_000_000_000),
            limits: Default::default(),
            bandwidth: Default::default(),
            services: ServiceSet::ALL,
            max_flows: 0,
            access: AccessLine {
                vlans: Default::default(),
                encap: Encap::L2tp { session: SESSION },
                mss_clamp: 0,
            },
        }));
        l.command(Command::SessionPrefix6 {
            id: 1,
            prefix: Some(PREFIX),
        });
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

    /// The session's counters (both families) and their IPv6 share.
    fn session(&mut self) -> (SessionCounters, Option<SessionCounters>) {
        self.command(Command::SessionQuery { id: 1, seq: 9 });
        std::iter::from_fn(|| self.ctl.events.pop())
            .find_map(|e| match e {
                Event::SessionCounters {
                    id: 1,
                    seq: 9,
                    counters,
                    ipv6,
                    ..
                } => Some((counters, ipv6)),
                _ => None,
            })
            .expect("the session answers")
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

fn nat64_counters(c: &WorkerCounters) -> [u64; 4] {
    [
        c.nat64_up,
        c.nat64_down,
        c.nat64_bindings_opened,
        c.nat64_bindings_closed,
    ]
}

/// The L2TP data message the LAC sends for our session: `ff 03`, PPP protocol 0x0057,
/// the IPv6 packet `ip`.
fn from_lac(ip: &[u8]) -> Vec<u8> {
    let mut l2tp = vec![0x00, 0x02];
    l2tp.extend_from_slice(&TUNNEL.to_be_bytes());
    l2tp.extend_from_slice(&SESSION.to_be_bytes());
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

/// The data message the LNS must send the LAC's session: the outer IPv4 without DF
/// and the UDP checksum zero (what the encapsulation writes; etherparse sets both,
/// cleared here and the IPv4 checksum computed again).
fn to_lac(ip: &[u8]) -> Vec<u8> {
    let mut l2tp = vec![0x00, 0x02];
    l2tp.extend_from_slice(&LAC_TUNNEL.to_be_bytes());
    l2tp.extend_from_slice(&LAC_SESSION.to_be_bytes());
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

/// An IPv4 frame on the core side, without DF (as the translation writes short
/// packets, RFC 7915 5.1), ID 0.
fn v4(
    (smac, dmac): (MacAddr, MacAddr),
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ttl: u8,
) -> etherparse::PacketBuilderStep<etherparse::IpHeaders> {
    let mut h = etherparse::Ipv4Header {
        source: src.octets(),
        destination: dst.octets(),
        time_to_live: ttl,
        ..Default::default()
    };
    h.dont_fragment = false;
    PacketBuilder::ethernet2(smac.0, dmac.0).ip(etherparse::IpHeaders::Ipv4(h, Default::default()))
}

fn v6(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    hl: u8,
) -> etherparse::PacketBuilderStep<etherparse::IpHeaders> {
    PacketBuilder::ipv6(src.octets(), dst.octets(), hl)
}

fn bytes(f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut v = Vec::new();
    f(&mut v);
    v
}

#[test]
fn udp_of_a_ppp_subscriber_at_the_lns_is_translated_both_ways_byte_for_byte() {
    let mut l = Lns::new();
    // Up: out of the tunnel, translated, from the pool address's first port, TTL the
    // hop limit less one.
    let up = bytes(|v| {
        v6(SUB6, SRV64, 64)
            .udp(40000, 53)
            .write(v, b"query")
            .unwrap()
    });
    let (core, access) = l.send_from_lac(from_lac(&up));
    let want = bytes(|v| {
        v4((CORE_MAC, SRV_MAC), NAT64, SRV, 63)
            .udp(1024, 53)
            .write(v, b"query")
            .unwrap()
    });
    assert_eq!(core, vec![want]);
    assert!(access.is_empty());
    // Down: the IPv4 answer to the mapping becomes IPv6 from 64:ff9b::192.0.2.10, into
    // the call's tunnel toward the LAC's session.
    let down = bytes(|v| {
        v4((SRV_MAC, CORE_MAC), SRV, NAT64, 60)
            .udp(53, 1024)
            .write(v, b"answer!")
            .unwrap()
    });
    let (core, access) = l.send_from_core(down);
    assert!(core.is_empty());
    let want6 = bytes(|v| {
        v6(SRV64, SUB6, 59)
            .udp(53, 40000)
            .write(v, b"answer!")
            .unwrap()
    });
    assert_eq!(access, vec![to_lac(&want6)]);
    // Counted as the IPv4 packets, in the session and the NAT64 counters.
    let (s, _) = l.session();
    assert_eq!(
        s,
        SessionCounters {
            tx_packets: 1,
            tx_bytes: 20 + 8 + 5,
            rx_packets: 1,
            rx_bytes: 20 + 8 + 7,
        }
    );
    let c = l.counters();
    assert_eq!(nat64_counters(&c), [1, 1, 1, 0]);
    assert_eq!(drops(&c), vec![]);
    l.check_balance();
}

#[test]
fn icmpv6_echo_of_a_ppp_subscriber_at_the_lns_becomes_icmp_echo_and_back() {
    let mut l = Lns::new();
    let up = bytes(|v| {
        v6(SUB6, SRV64, 64)
            .icmpv6(Icmpv6Type::EchoRequest(IcmpEchoHeader { id: 7, seq: 1 }))
            .write(v, b"ping")
            .unwrap()
    });
    let (core, access) = l.send_from_lac(from_lac(&up));
    assert!(access.is_empty());
    // The echo's identifier is the mapping's: the pool address's first port.
    let id = 1024;
    let want = bytes(|v| {
        v4((CORE_MAC, SRV_MAC), NAT64, SRV, 63)
            .icmpv4(Icmpv4Type::EchoRequest(IcmpEchoHeader { id, seq: 1 }))
            .write(v, b"ping")
            .unwrap()
    });
    assert_eq!(core, vec![want]);
    let reply = bytes(|v| {
        v4((SRV_MAC, CORE_MAC), SRV, NAT64, 64)
            .icmpv4(Icmpv4Type::EchoReply(IcmpEchoHeader { id, seq: 1 }))
            .write(v, b"ping")
            .unwrap()
    });
    let (core, access) = l.send_from_core(reply);
    assert!(core.is_empty());
    let want6 = bytes(|v| {
        v6(SRV64, SUB6, 63)
            .icmpv6(Icmpv6Type::EchoReply(IcmpEchoHeader { id: 7, seq: 1 }))
            .write(v, b"ping")
            .unwrap()
    });
    assert_eq!(access, vec![to_lac(&want6)]);
    let c = l.counters();
    assert_eq!(nat64_counters(&c), [1, 1, 1, 0]);
    assert_eq!(drops(&c), vec![]);
    assert_eq!(
        l.session().0,
        SessionCounters {
            tx_packets: 1,
            tx_bytes: 20 + 8 + 4,
            rx_packets: 1,
            rx_bytes: 20 + 8 + 4,
        }
    );
    l.check_balance();
}
