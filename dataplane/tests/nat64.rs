//! NAT64 through one worker on memory ports (V6-2): an IPv6 session's packets to
//! 64:ff9b::/96 leave as IPv4 from the pool address and port, and the answers come back
//! as IPv6, each frame built with etherparse and compared byte for byte (addresses,
//! ports, checksums); ICMPv6 echo to ICMP echo and back; a VIP's service balanced over
//! three servers from an IPv6-only subscriber; every refused case a named drop; counters
//! exact.

use std::net::{Ipv4Addr, Ipv6Addr};

use etherparse::{Icmpv4Type, Icmpv6Type, PacketBuilder, icmpv4, icmpv6};
use tollgate_dataplane::msg::ControlEnds;
use tollgate_dataplane::nat::{FlowClose, FlowRecord, NAT64_SERVICE, NatConfig, Timeouts};
use tollgate_dataplane::port::memory::{MemoryPeer, MemoryPort};
use tollgate_dataplane::service::{Policy, RealServer, Service, Services, SessionType};
use tollgate_dataplane::session::{AccessLine, Encap, ServiceSet, SessionCounters, SessionSpec};
use tollgate_dataplane::snapshot::Publisher;
use tollgate_dataplane::time::Instant;
use tollgate_dataplane::{
    Command, DropReason, Event, ForwardingBuilder, HeapPool, Ipv6Forwarding, MacAddr, Nat64Config,
    RingSizes, Side, SideConfig, Worker, WorkerConfig, WorkerCounters, worker_rings,
};
use tollgate_testkit::lab::*;

const POOL: usize = 256;
const PREFIX: u64 = 0x2001_0db8_0001_0001;
const SUB6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 1, 0, 0, 0, 0x11);
const GW6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xff, 0, 0, 0, 0, 1);
const RTR6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xff, 0, 0, 0, 0, 0xfe);
/// The NAT64 pool address, on the core subnet.
const NAT64: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 64);
/// 64:ff9b::192.0.2.10 (SRV).
const SRV64: Ipv6Addr = Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0xc000, 0x020a);
const VIP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 80);
/// 64:ff9b::203.0.113.80 (VIP).
const VIP64: Ipv6Addr = Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0xcb00, 0x7150);
const WEB: [Ipv4Addr; 3] = [
    Ipv4Addr::new(192, 0, 2, 21),
    Ipv4Addr::new(192, 0, 2, 22),
    Ipv4Addr::new(192, 0, 2, 23),
];

fn web_mac(ip: Ipv4Addr) -> MacAddr {
    MacAddr([0x02, 0x20, 0, 0, 0, ip.octets()[3]])
}

struct Rig {
    worker: Worker<MemoryPort>,
    access: MemoryPeer,
    core: MemoryPeer,
    ctl: ControlEnds,
    now: Instant,
    _publisher: Publisher<tollgate_dataplane::Forwarding>,
}

impl Rig {
    fn new() -> Rig {
        Rig::with_mtu(1500)
    }

    /// The rig with the session's MSS clamp (ACC-5) `clamp`.
    fn with_clamp(clamp: u16) -> Rig {
        Rig::with_clamped(Nat64Config::default(), clamp)
    }

    /// `[nat64] mtu` of `mtu`; the access side's ICMPv6 errors from GW6.
    fn with_mtu(mtu: u16) -> Rig {
        Rig::with(Nat64Config {
            mtu,
            ..Nat64Config::default()
        })
    }

    /// NAT64 on with `nat64`'s settings over the pool address NAT64.
    fn with(nat64: Nat64Config) -> Rig {
        Rig::with_clamped(nat64, 0)
    }

    /// [`Rig::with`], the session clamped to MSS `clamp` (0: none).
    fn with_clamped(nat64: Nat64Config, clamp: u16) -> Rig {
        let line = AccessLine {
            vlans: Default::default(),
            encap: Encap::Ipoe,
            mss_clamp: clamp,
        };
        Rig::with_line(nat64, line)
    }

    /// [`Rig::with`], the session on access line `line`.
    fn with_line(nat64: Nat64Config, line: AccessLine) -> Rig {
        let web = Service {
            vip: VIP,
            protocol: 6,
            port: 80,
            policy: Policy::RoundRobin,
            session_type: SessionType::Connection,
            servers: WEB.iter().map(|a| RealServer::new(*a, 8080)).collect(),
        };
        let fwd = ForwardingBuilder::new(
            SideConfig {
                mac: ACC_MAC,
                address: GW_ACC,
                prefix_len: 24,
            },
            SideConfig {
                mac: CORE_MAC,
                address: GW_CORE,
                prefix_len: 24,
            },
        )
        .ipv6(Ipv6Forwarding {
            on: true,
            addresses: vec![GW6],
            next_hop: Some(RTR6),
            next_hop_mac: Some(RTR_MAC),
            error_sources: [Some(GW6), None],
        })
        .nat64(Nat64Config {
            on: true,
            pool: vec![NAT64],
            ..nat64
        })
        .services(Services::new(vec![web]).unwrap())
        .nat(NatConfig {
            addresses: vec![GW_CORE],
            ports: (1024, 65535),
            timeouts: Timeouts::default(),
        })
        .build()
        .unwrap();
        let publisher = Publisher::new(fwd);
        let (w, ctl) = worker_rings(RingSizes::default());
        let (a, access) = MemoryPort::with_peer(1024);
        let (c, core) = MemoryPort::with_peer(1024);
        let worker = Worker::new(
            WorkerConfig::default(),
            a,
            c,
            HeapPool::new(POOL),
            publisher.reader(),
            w,
        );
        let mut r = Rig {
            worker,
            access,
            core,
            ctl,
            now: Instant(1_000_000_000),
            _publisher: publisher,
        };
        r.command(Command::SessionAdd(SessionSpec {
            id: 1,
            user: 1000,
            channel: 1,
            address: SUB,
            mac: Some(SUB_MAC),
            started: r.now,
            limits: Default::default(),
            bandwidth: Default::default(),
            services: ServiceSet::ALL,
            max_flows: 0,
            access: line,
        }));
        r.command(Command::SessionPrefix6 {
            id: 1,
            prefix: Some(PREFIX),
        });
        for (ip, mac) in [(SRV, SRV_MAC)]
            .into_iter()
            .chain(WEB.iter().map(|a| (*a, web_mac(*a))))
        {
            r.command(Command::NeighborSet { ip, mac });
        }
        r
    }

    fn command(&mut self, c: Command) {
        self.ctl.commands.push(c).unwrap();
        self.worker.poll(self.now);
    }

    fn send(&mut self, side: Side, frame: &[u8]) {
        let peer = match side {
            Side::Access => &mut self.access,
            Side::Core => &mut self.core,
        };
        assert!(peer.send(frame.to_vec()));
        self.worker.poll(self.now);
    }

    fn counters(&mut self) -> WorkerCounters {
        self.worker.report(0, self.now).counters
    }

    fn session_counters(&mut self) -> SessionCounters {
        self.command(Command::SessionQuery { id: 1, seq: 77 });
        std::iter::from_fn(|| self.ctl.events.pop())
            .find_map(|e| match e {
                Event::SessionCounters {
                    id: 1,
                    seq: 77,
                    counters,
                    ..
                } => Some(counters),
                _ => None,
            })
            .expect("the session answers")
    }

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

fn v6(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    hl: u8,
) -> etherparse::PacketBuilderStep<etherparse::IpHeaders> {
    PacketBuilder::ethernet2(SUB_MAC.0, ACC_MAC.0).ipv6(src.octets(), dst.octets(), hl)
}

fn v6_down(src: Ipv6Addr, hl: u8) -> etherparse::PacketBuilderStep<etherparse::IpHeaders> {
    PacketBuilder::ethernet2(ACC_MAC.0, SUB_MAC.0).ipv6(src.octets(), SUB6.octets(), hl)
}

/// IPv4 without DF, as the gateway sends translated packets of up to 1260 bytes (RFC
/// 7915 5.1); `v4_df` with it.
fn v4(
    macs: (MacAddr, MacAddr),
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ttl: u8,
) -> etherparse::PacketBuilderStep<etherparse::IpHeaders> {
    v4_flags(macs, src, dst, ttl, false)
}

fn v4_df(
    macs: (MacAddr, MacAddr),
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ttl: u8,
) -> etherparse::PacketBuilderStep<etherparse::IpHeaders> {
    v4_flags(macs, src, dst, ttl, true)
}

fn v4_flags(
    (smac, dmac): (MacAddr, MacAddr),
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ttl: u8,
    df: bool,
) -> etherparse::PacketBuilderStep<etherparse::IpHeaders> {
    let mut h = etherparse::Ipv4Header {
        source: src.octets(),
        destination: dst.octets(),
        time_to_live: ttl,
        ..Default::default()
    };
    h.dont_fragment = df;
    PacketBuilder::ethernet2(smac.0, dmac.0).ip(etherparse::IpHeaders::Ipv4(h, Default::default()))
}

fn bytes(f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut v = Vec::new();
    f(&mut v);
    v
}

#[test]
fn udp_is_translated_both_ways_byte_for_byte() {
    let mut r = Rig::new();
    let up = bytes(|v| {
        v6(SUB6, SRV64, 64)
            .udp(40000, 53)
            .write(v, b"query")
            .unwrap()
    });
    r.send(Side::Access, &up);
    // From the pool address's first port, TTL the hop limit less one, DF set, ID 0.
    let want = bytes(|v| {
        v4((CORE_MAC, SRV_MAC), NAT64, SRV, 63)
            .udp(1024, 53)
            .write(v, b"query")
            .unwrap()
    });
    assert_eq!(r.core.drain(), vec![want]);
    let down = bytes(|v| {
        v4((SRV_MAC, CORE_MAC), SRV, NAT64, 60)
            .udp(53, 1024)
            .write(v, b"answer!")
            .unwrap()
    });
    r.send(Side::Core, &down);
    let want = bytes(|v| {
        v6_down(SRV64, 59)
            .udp(53, 40000)
            .write(v, b"answer!")
            .unwrap()
    });
    assert_eq!(r.access.drain(), vec![want.clone()]);
    // An IPv4 UDP checksum of zero: IPv6 gets the full one.
    let mut zero = down.clone();
    zero[14 + 20 + 6..14 + 20 + 8].copy_from_slice(&[0, 0]);
    r.send(Side::Core, &zero);
    assert_eq!(r.access.drain(), vec![want]);
    // Counted as IPv4 packets, in the session and in the NAT64 counters.
    assert_eq!(
        r.session_counters(),
        SessionCounters {
            tx_packets: 1,
            tx_bytes: 20 + 8 + 5,
            rx_packets: 2,
            rx_bytes: 2 * (20 + 8 + 7),
        }
    );
    let c = r.counters();
    assert_eq!(nat64_counters(&c), [1, 2, 1, 0]);
    assert_eq!(drops(&c), vec![]);
    // Idle past the UDP timeout: the sweep ends the binding and sends its record, which
    // ends at its last packet.
    let last = r.now;
    r.now = Instant(r.now.0 + 301_000_000_000);
    r.worker.poll(r.now);
    let records: Vec<FlowRecord> = std::iter::from_fn(|| r.ctl.events.pop())
        .filter_map(|e| match e {
            Event::FlowRecord(f) => Some(f),
            _ => None,
        })
        .collect();
    assert_eq!(records.len(), 1, "{records:?}");
    let f = records[0];
    assert_eq!(
        (
            f.session,
            f.service,
            f.protocol,
            f.subscriber,
            f.subscriber6,
            f.vip,
            f.server,
            f.nat
        ),
        (
            1,
            NAT64_SERVICE,
            17,
            (NAT64, 40000),
            Some(SUB6),
            (SRV, 53),
            (SRV, 53),
            (NAT64, 1024)
        )
    );
    assert_eq!(
        (f.up, f.down, f.close, f.ended),
        ((1, 33), (2, 70), FlowClose::Timeout, last)
    );
    assert_eq!(nat64_counters(&r.counters()), [1, 2, 1, 1]);
    // The port is free again: the next flow gets it.
    r.send(Side::Access, &up);
    assert_eq!(r.core.drain().len(), 1);
    assert_eq!(nat64_counters(&r.counters()), [2, 2, 2, 1]);
    r.check_balance();
}

#[test]
fn tcp_opens_on_a_syn_and_translates_the_answer() {
    let mut r = Rig::new();
    // Not a SYN and no binding: dropped by name.
    let ack = bytes(|v| {
        v6(SUB6, SRV64, 64)
            .tcp(40000, 80, 7, 1000)
            .ack(1)
            .write(v, &[])
            .unwrap()
    });
    r.send(Side::Access, &ack);
    assert!(r.core.drain().is_empty());
    let syn = bytes(|v| {
        v6(SUB6, SRV64, 64)
            .tcp(40000, 80, 7, 1000)
            .syn()
            .write(v, &[])
            .unwrap()
    });
    r.send(Side::Access, &syn);
    let want = bytes(|v| {
        v4((CORE_MAC, SRV_MAC), NAT64, SRV, 63)
            .tcp(1024, 80, 7, 1000)
            .syn()
            .write(v, &[])
            .unwrap()
    });
    assert_eq!(r.core.drain(), vec![want]);
    let synack = bytes(|v| {
        v4((SRV_MAC, CORE_MAC), SRV, NAT64, 64)
            .tcp(80, 1024, 100, 2000)
            .syn()
            .ack(8)
            .write(v, &[])
            .unwrap()
    });
    r.send(Side::Core, &synack);
    let want = bytes(|v| {
        v6_down(SRV64, 63)
            .tcp(80, 40000, 100, 2000)
            .syn()
            .ack(8)
            .write(v, &[])
            .unwrap()
    });
    assert_eq!(r.access.drain(), vec![want]);
    // Then data up through the same binding.
    r.send(Side::Access, &ack);
    assert_eq!(r.core.drain().len(), 1);
    // From another port of the server: not the binding's.
    let stray = bytes(|v| {
        v4((SRV_MAC, CORE_MAC), SRV, NAT64, 64)
            .tcp(81, 1024, 100, 2000)
            .ack(8)
            .write(v, &[])
            .unwrap()
    });
    r.send(Side::Core, &stray);
    assert!(r.access.drain().is_empty());
    let c = r.counters();
    assert_eq!(nat64_counters(&c), [2, 1, 1, 0]);
    assert_eq!(drops(&c), vec![(DropReason::Nat64NoBinding, 2)]);
    r.check_balance();
}

#[test]
fn icmpv6_echo_becomes_icmp_echo_and_back() {
    let mut r = Rig::new();
    let ping = bytes(|v| {
        v6(SUB6, SRV64, 64)
            .icmpv6_echo_request(0x1234, 1)
            .write(v, b"ping-data")
            .unwrap()
    });
    r.send(Side::Access, &ping);
    let want = bytes(|v| {
        v4((CORE_MAC, SRV_MAC), NAT64, SRV, 63)
            .icmpv4_echo_request(1024, 1)
            .write(v, b"ping-data")
            .unwrap()
    });
    assert_eq!(r.core.drain(), vec![want]);
    let pong = bytes(|v| {
        v4((SRV_MAC, CORE_MAC), SRV, NAT64, 64)
            .icmpv4(Icmpv4Type::EchoReply(etherparse::IcmpEchoHeader {
                id: 1024,
                seq: 1,
            }))
            .write(v, b"ping-data")
            .unwrap()
    });
    r.send(Side::Core, &pong);
    let want = bytes(|v| {
        v6_down(SRV64, 63)
            .icmpv6(Icmpv6Type::EchoReply(etherparse::IcmpEchoHeader {
                id: 0x1234,
                seq: 1,
            }))
            .write(v, b"ping-data")
            .unwrap()
    });
    assert_eq!(r.access.drain(), vec![want]);
    let c = r.counters();
    assert_eq!(nat64_counters(&c), [1, 1, 1, 0]);
    assert_eq!(drops(&c), vec![]);
    r.check_balance();
}

#[test]
fn what_is_not_translated_is_dropped_by_name() {
    let mut r = Rig::new();
    // An ICMPv6 error to the prefix.
    let err6 = bytes(|v| {
        v6(SUB6, SRV64, 64)
            .icmpv6(Icmpv6Type::DestinationUnreachable(
                icmpv6::DestUnreachableCode::Port,
            ))
            .write(v, &[0u8; 48])
            .unwrap()
    });
    r.send(Side::Access, &err6);
    // Another protocol (SCTP, 132).
    let mut sctp = bytes(|v| v6(SUB6, SRV64, 64).udp(1, 2).write(v, b"12345678").unwrap());
    sctp[14 + 6] = 132;
    r.send(Side::Access, &sctp);
    // 64:ff9b::127.0.0.1, the pool address itself, and an IPv4 subscriber (no
    // hairpinning).
    for dst in [
        Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0x7f00, 1),
        Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0xc000, 0x0240),
        Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0x0a0a, 0x000b),
    ] {
        let f = bytes(|v| v6(SUB6, dst, 64).udp(1, 2).write(v, b"x").unwrap());
        r.send(Side::Access, &f);
    }
    // IPv4 to a pool port no binding holds, and an ICMP error to the pool address.
    let stray = bytes(|v| {
        v4((SRV_MAC, CORE_MAC), SRV, NAT64, 64)
            .udp(53, 5000)
            .write(v, b"x")
            .unwrap()
    });
    r.send(Side::Core, &stray);
    let unreach = bytes(|v| {
        v4((SRV_MAC, CORE_MAC), SRV, NAT64, 64)
            .icmpv4(Icmpv4Type::DestinationUnreachable(
                icmpv4::DestUnreachableHeader::Port,
            ))
            .write(v, &[0u8; 28])
            .unwrap()
    });
    r.send(Side::Core, &unreach);
    assert!(r.core.drain().is_empty());
    assert!(r.access.drain().is_empty());
    let c = r.counters();
    assert_eq!(nat64_counters(&c), [0, 0, 0, 0]);
    assert_eq!(
        drops(&c),
        vec![
            // The ICMP errors' quotes are zeros, no IP packet.
            (DropReason::Nat64Unsupported, 3),
            (DropReason::Nat64NoBinding, 1),
            (DropReason::Nat64BadDestination, 3),
        ]
    );
    r.check_balance();
}

#[test]
fn a_vip_is_balanced_over_its_servers_for_an_ipv6_only_subscriber() {
    let mut r = Rig::new();
    let syn = |port: u16| {
        bytes(|v| {
            v6(SUB6, VIP64, 64)
                .tcp(port, 80, 7, 1000)
                .syn()
                .write(v, &[])
                .unwrap()
        })
    };
    let mut out = Vec::new();
    for port in [40001, 40002, 40003] {
        r.send(Side::Access, &syn(port));
        out.extend(r.core.drain());
    }
    // Three connections, round robin over the three servers, each from the NAT
    // address's next port; the NAT64 binding's pool port (1024, 1025, 1026) is the
    // subscriber port the service stage sees.
    let want: Vec<Vec<u8>> = WEB
        .iter()
        .enumerate()
        .map(|(k, srv)| {
            bytes(|v| {
                v4((CORE_MAC, web_mac(*srv)), GW_CORE, *srv, 63)
                    .tcp(1024 + k as u16, 8080, 7, 1000)
                    .syn()
                    .write(v, &[])
                    .unwrap()
            })
        })
        .collect();
    assert_eq!(out, want);
    // The second server answers: back through the service's flow and the binding.
    let synack = bytes(|v| {
        v4((web_mac(WEB[1]), CORE_MAC), WEB[1], GW_CORE, 64)
            .tcp(8080, 1025, 100, 2000)
            .syn()
            .ack(8)
            .write(v, &[])
            .unwrap()
    });
    r.send(Side::Core, &synack);
    let want = bytes(|v| {
        v6_down(VIP64, 63)
            .tcp(80, 40002, 100, 2000)
            .syn()
            .ack(8)
            .write(v, &[])
            .unwrap()
    });
    assert_eq!(r.access.drain(), vec![want]);
    assert_eq!(
        r.session_counters(),
        SessionCounters {
            tx_packets: 3,
            tx_bytes: 3 * 40,
            rx_packets: 1,
            rx_bytes: 40,
        }
    );
    let c = r.counters();
    assert_eq!(nat64_counters(&c), [3, 1, 3, 0]);
    assert_eq!(c.flows_opened, 3);
    assert_eq!(drops(&c), vec![]);
    r.check_balance();
}

/// An ICMP or ICMPv6 message's type, code and the 32 bits after its checksum.
type Icmp = (u8, u8, [u8; 4]);

/// A router on the core side that sends ICMP errors.
const RTR4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 254);
/// 64:ff9b::192.0.2.254 (RTR4).
const RTR4_64: Ipv6Addr = Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0xc000, 0x02fe);

fn icmp4(t: u8, c: u8, rest: [u8; 4]) -> Icmpv4Type {
    Icmpv4Type::Unknown {
        type_u8: t,
        code_u8: c,
        bytes5to8: rest,
    }
}

fn icmp6(t: u8, c: u8, rest: [u8; 4]) -> Icmpv6Type {
    Icmpv6Type::Unknown {
        type_u8: t,
        code_u8: c,
        bytes5to8: rest,
    }
}

/// The IP packet of an Ethernet frame (no tags).
fn ip_of(frame: &[u8]) -> Vec<u8> {
    frame[14..].to_vec()
}

#[test]
fn icmp_errors_from_ipv4_reach_the_subscriber_as_icmpv6_with_the_quote_translated() {
    let mut r = Rig::new();
    let up = bytes(|v| {
        v6(SUB6, SRV64, 64)
            .udp(40000, 53)
            .write(v, b"query for a name")
            .unwrap()
    });
    r.send(Side::Access, &up);
    let sent = r.core.drain();
    assert_eq!(sent.len(), 1);
    // What the router quotes: the translated packet as it left (all of it, as Linux
    // does, or its header and 8 bytes, as RFC 792 has it).
    let sent4 = ip_of(&sent[0]);
    // What the subscriber gets quoted: its own packet as the router saw it (the hop
    // limit one less), the port and checksum its own again.
    let mut own6 = ip_of(&up);
    own6[7] = 63;
    let cases: [(Icmp, usize, Icmp); 8] = [
        // Port unreachable -> port unreachable.
        ((3, 3, [0; 4]), sent4.len(), (1, 4, [0; 4])),
        // Host unreachable -> no route.
        ((3, 1, [0; 4]), 28, (1, 0, [0; 4])),
        // Fragmentation needed, MTU 1400 -> Packet Too Big 1420.
        ((3, 4, [0, 0, 0x05, 0x78]), 28, (2, 0, [0, 0, 0x05, 0x8c])),
        // A router without RFC 1191 (MTU 0): the plateau below the packet's 44 bytes
        // (none; the least, 68) + 20.
        ((3, 4, [0; 4]), 28, (2, 0, [0, 0, 0, 88])),
        // Protocol unreachable -> parameter problem, unrecognised next header, at 6.
        ((3, 2, [0; 4]), 28, (4, 1, [0, 0, 0, 6])),
        // Communication administratively prohibited -> code 1.
        ((3, 13, [0; 4]), 28, (1, 1, [0; 4])),
        // Time exceeded in transit -> hop limit exceeded.
        ((11, 0, [0; 4]), 28, (3, 0, [0; 4])),
        // Parameter problem at the protocol (9) -> at the next header (6).
        ((12, 0, [9, 0, 0, 0]), 28, (4, 0, [0, 0, 0, 6])),
    ];
    for ((t4, c4, rest4), quote, (t6, c6, rest6)) in cases {
        let err = bytes(|v| {
            v4((SRV_MAC, CORE_MAC), RTR4, NAT64, 64)
                .icmpv4(icmp4(t4, c4, rest4))
                .write(v, &sent4[..quote])
                .unwrap()
        });
        r.send(Side::Core, &err);
        let want = bytes(|v| {
            v6_down(RTR4_64, 63)
                .icmpv6(icmp6(t6, c6, rest6))
                .write(v, &own6[..quote + 20])
                .unwrap()
        });
        assert_eq!(r.access.drain(), vec![want], "ICMP {t4}/{c4}");
    }
    let c = r.counters();
    assert_eq!(nat64_counters(&c), [1, 8, 1, 0]);
    assert_eq!(c.nat64_icmp_errors, 8);
    assert_eq!(drops(&c), vec![]);
    // The errors are counted to the session (by their IPv4 length) but do not keep
    // its binding alive.
    assert_eq!(r.session_counters().rx_packets, 8);
    r.check_balance();
}

#[test]
fn an_icmp_error_about_an_echo_request_quotes_the_icmpv6_echo() {
    let mut r = Rig::new();
    let ping = bytes(|v| {
        v6(SUB6, SRV64, 64)
            .icmpv6_echo_request(0x1234, 7)
            .write(v, b"ping-data")
            .unwrap()
    });
    r.send(Side::Access, &ping);
    let sent = r.core.drain();
    assert_eq!(sent.len(), 1);
    let sent4 = ip_of(&sent[0]);
    let err = bytes(|v| {
        v4((SRV_MAC, CORE_MAC), RTR4, NAT64, 64)
            .icmpv4(icmp4(11, 0, [0; 4]))
            .write(v, &sent4)
            .unwrap()
    });
    r.send(Side::Core, &err);
    // The quoted echo is the subscriber's again: type 128, its identifier, the
    // ICMPv6 checksum with its pseudo-header.
    let mut own6 = ip_of(&ping);
    own6[7] = 63;
    let want = bytes(|v| {
        v6_down(RTR4_64, 63)
            .icmpv6(icmp6(3, 0, [0; 4]))
            .write(v, &own6)
            .unwrap()
    });
    assert_eq!(r.access.drain(), vec![want]);
    assert_eq!(nat64_counters(&r.counters()), [1, 1, 1, 0]);
    r.check_balance();
}

#[test]
fn icmpv6_errors_from_the_subscriber_reach_the_ipv4_host_as_icmp() {
    let mut r = Rig::new();
    let up = bytes(|v| v6(SUB6, SRV64, 64).udp(40000, 53).write(v, b"q").unwrap());
    r.send(Side::Access, &up);
    assert_eq!(r.core.drain().len(), 1);
    let down = bytes(|v| {
        v4((SRV_MAC, CORE_MAC), SRV, NAT64, 60)
            .udp(53, 1024)
            .write(v, b"an answer")
            .unwrap()
    });
    r.send(Side::Core, &down);
    let got = r.access.drain();
    assert_eq!(got.len(), 1);
    let got6 = ip_of(&got[0]);
    // What the server gets quoted: its own packet as the gateway passed it on (TTL 59).
    let own4 = ip_of(&bytes(|v| {
        v4((SRV_MAC, CORE_MAC), SRV, NAT64, 59)
            .udp(53, 1024)
            .write(v, b"an answer")
            .unwrap()
    }));
    let cases: [(Icmp, Icmp); 6] = [
        // Port unreachable -> port unreachable.
        ((1, 4, [0; 4]), (3, 3, [0; 4])),
        // Administratively prohibited -> host administratively prohibited.
        ((1, 1, [0; 4]), (3, 10, [0; 4])),
        // Packet Too Big 1400 -> fragmentation needed 1380.
        ((2, 0, [0, 0, 0x05, 0x78]), (3, 4, [0, 0, 0x05, 0x64])),
        // Hop limit exceeded -> TTL exceeded.
        ((3, 0, [0; 4]), (11, 0, [0; 4])),
        // Parameter problem at the hop limit (7) -> at the TTL (8).
        ((4, 0, [0, 0, 0, 7]), (12, 0, [8, 0, 0, 0])),
        // Unrecognised next header -> protocol unreachable.
        ((4, 1, [0, 0, 0, 40]), (3, 2, [0; 4])),
    ];
    for ((t6, c6, rest6), (t4, c4, rest4)) in cases {
        let err = bytes(|v| {
            v6(SUB6, SRV64, 64)
                .icmpv6(icmp6(t6, c6, rest6))
                .write(v, &got6)
                .unwrap()
        });
        r.send(Side::Access, &err);
        let want = bytes(|v| {
            v4((CORE_MAC, SRV_MAC), NAT64, SRV, 63)
                .icmpv4(icmp4(t4, c4, rest4))
                .write(v, &own4)
                .unwrap()
        });
        assert_eq!(r.core.drain(), vec![want], "ICMPv6 {t6}/{c6}");
    }
    let c = r.counters();
    assert_eq!(nat64_counters(&c), [7, 1, 1, 0]);
    assert_eq!(c.nat64_icmp_errors, 6);
    assert_eq!(drops(&c), vec![]);
    r.check_balance();
}

#[test]
fn errors_nat64_does_not_translate_are_dropped_by_name() {
    let mut r = Rig::new();
    let up = bytes(|v| v6(SUB6, SRV64, 64).udp(40000, 53).write(v, b"q").unwrap());
    r.send(Side::Access, &up);
    let sent4 = ip_of(&r.core.drain()[0]);
    // Source quench, redirect, source host isolated (code 14 is dropped by RFC 7915),
    // a pointer to the IPv4 identification (no IPv6 field).
    for (t, c, rest) in [
        (4u8, 0u8, [0u8; 4]),
        (5, 0, [192, 0, 2, 1]),
        (3, 14, [0; 4]),
        (12, 0, [4, 0, 0, 0]),
    ] {
        let err = bytes(|v| {
            v4((SRV_MAC, CORE_MAC), RTR4, NAT64, 64)
                .icmpv4(icmp4(t, c, rest))
                .write(v, &sent4)
                .unwrap()
        });
        r.send(Side::Core, &err);
    }
    // An error about a packet of another port (no binding), and one cut short of the
    // inner ports.
    let mut other = sent4.clone();
    other[20] = 0x99;
    let err = bytes(|v| {
        v4((SRV_MAC, CORE_MAC), RTR4, NAT64, 64)
            .icmpv4(icmp4(3, 3, [0; 4]))
            .write(v, &other)
            .unwrap()
    });
    r.send(Side::Core, &err);
    let err = bytes(|v| {
        v4((SRV_MAC, CORE_MAC), RTR4, NAT64, 64)
            .icmpv4(icmp4(3, 3, [0; 4]))
            .write(v, &sent4[..24])
            .unwrap()
    });
    r.send(Side::Core, &err);
    // From the subscriber: an ICMPv6 error about a packet no binding sent.
    let stray = bytes(|v| v6_down(SRV64, 60).udp(53, 40001).write(v, b"x").unwrap());
    let err = bytes(|v| {
        v6(SUB6, SRV64, 64)
            .icmpv6(icmp6(1, 4, [0; 4]))
            .write(v, &ip_of(&stray))
            .unwrap()
    });
    r.send(Side::Access, &err);
    assert!(r.core.drain().is_empty());
    assert!(r.access.drain().is_empty());
    let c = r.counters();
    assert_eq!(nat64_counters(&c), [1, 0, 1, 0]);
    assert_eq!(c.nat64_icmp_errors, 0);
    assert_eq!(
        drops(&c),
        vec![
            (DropReason::Nat64Unsupported, 1),
            (DropReason::Nat64IcmpError, 4),
            (DropReason::Nat64NoBinding, 2),
        ]
    );
    r.check_balance();
}

#[test]
fn too_big_for_the_core_mtu_is_answered_with_packet_too_big() {
    // [nat64] mtu 1400: IPv6 whose translation is over 1400 bytes.
    let mut r = Rig::with_mtu(1400);
    let payload = vec![0x5a; 1400 - 20 - 8 + 1];
    let big = bytes(|v| {
        v6(SUB6, SRV64, 64)
            .udp(40000, 53)
            .write(v, &payload)
            .unwrap()
    });
    r.send(Side::Access, &big);
    assert!(r.core.drain().is_empty());
    // From the access side's error source, MTU 1420, quoting as much as fits 1280.
    let want = bytes(|v| {
        PacketBuilder::ethernet2(ACC_MAC.0, SUB_MAC.0)
            .ipv6(GW6.octets(), SUB6.octets(), 64)
            .icmpv6(Icmpv6Type::PacketTooBig { mtu: 1420 })
            .write(v, &ip_of(&big)[..1280 - 48])
            .unwrap()
    });
    assert_eq!(r.access.drain(), vec![want]);
    // Exactly 1400 goes out, with DF (over 1260 bytes, RFC 7915 5.1); 1260 without.
    for (len, df) in [(1400usize, true), (1260, false)] {
        let payload = vec![0x5a; len - 28];
        let up = bytes(|v| {
            v6(SUB6, SRV64, 64)
                .udp(40000, 53)
                .write(v, &payload)
                .unwrap()
        });
        r.send(Side::Access, &up);
        let want = bytes(|v| {
            if df {
                v4_df((CORE_MAC, SRV_MAC), NAT64, SRV, 63)
            } else {
                v4((CORE_MAC, SRV_MAC), NAT64, SRV, 63)
            }
            .udp(1024, 53)
            .write(v, &payload)
            .unwrap()
        });
        assert_eq!(r.core.drain(), vec![want], "{len} bytes");
    }
    let c = r.counters();
    assert_eq!(nat64_counters(&c), [2, 0, 1, 0]);
    assert_eq!(c.icmp_errors, 1);
    assert_eq!(drops(&c), vec![(DropReason::Nat64PacketTooBig, 1)]);
    r.check_balance();
}

#[test]
fn a_subscriber_port_keeps_one_mapping_to_every_destination() {
    let mut r = Rig::new();
    let udp = |sport: u16, dst: Ipv4Addr| {
        let dst6 = Nat64Config::default().synthesize(dst);
        bytes(|v| v6(SUB6, dst6, 64).udp(sport, 53).write(v, b"q").unwrap())
    };
    let left = |r: &mut Rig| -> Vec<(Ipv4Addr, u16)> {
        r.core
            .drain()
            .iter()
            .map(|f| {
                let ip = &f[14..];
                (
                    Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]),
                    u16::from_be_bytes([ip[20], ip[21]]),
                )
            })
            .collect()
    };
    // Port 40000 to two servers and port 40001 to one: 40000's mapping is one pool
    // port (RFC 4787 REQ-1), 40001 its own.
    r.send(Side::Access, &udp(40000, SRV));
    r.send(Side::Access, &udp(40000, WEB[0]));
    r.send(Side::Access, &udp(40001, SRV));
    assert_eq!(
        left(&mut r),
        vec![(NAT64, 1024), (NAT64, 1024), (NAT64, 1025)]
    );
    // Each server's answer to 1024 goes to port 40000 from its own address.
    for (srv, mac) in [(SRV, SRV_MAC), (WEB[0], web_mac(WEB[0]))] {
        let down = bytes(|v| {
            v4((mac, CORE_MAC), srv, NAT64, 64)
                .udp(53, 1024)
                .write(v, b"a")
                .unwrap()
        });
        r.send(Side::Core, &down);
        let want = bytes(|v| {
            v6_down(Nat64Config::default().synthesize(srv), 63)
                .udp(53, 40000)
                .write(v, b"a")
                .unwrap()
        });
        assert_eq!(r.access.drain(), vec![want]);
    }
    // Address-dependent filtering (the default): another port of a server the mapping
    // talks to gets in (a binding of its own), another address does not.
    let from = |src: Ipv4Addr, mac: MacAddr, sport: u16| {
        bytes(|v| {
            v4((mac, CORE_MAC), src, NAT64, 64)
                .udp(sport, 1024)
                .write(v, b"b")
                .unwrap()
        })
    };
    r.send(Side::Core, &from(SRV, SRV_MAC, 5353));
    let want = bytes(|v| v6_down(SRV64, 63).udp(5353, 40000).write(v, b"b").unwrap());
    assert_eq!(r.access.drain(), vec![want]);
    r.send(Side::Core, &from(WEB[1], web_mac(WEB[1]), 53));
    assert!(r.access.drain().is_empty());
    // TCP needs its own binding.
    let tcp = bytes(|v| {
        v4((SRV_MAC, CORE_MAC), SRV, NAT64, 64)
            .tcp(80, 1024, 1, 100)
            .syn()
            .write(v, &[])
            .unwrap()
    });
    r.send(Side::Core, &tcp);
    assert!(r.access.drain().is_empty());
    let c = r.counters();
    assert_eq!(nat64_counters(&c), [3, 3, 4, 0]);
    assert_eq!(drops(&c), vec![(DropReason::Nat64NoBinding, 2)]);
    // Each binding ends on its own; a port goes back with its mapping's last binding
    // (1024's was the sweep's last, so it is the next one out).
    r.now = Instant(r.now.0 + 301_000_000_000);
    r.worker.poll(r.now);
    r.worker.poll(r.now);
    assert_eq!(nat64_counters(&r.counters()), [3, 3, 4, 4]);
    r.send(Side::Access, &udp(40002, SRV));
    assert_eq!(left(&mut r), vec![(NAT64, 1024)]);
    r.check_balance();
}

#[test]
fn endpoint_independent_filtering_lets_anyone_reach_a_mapping() {
    let mut r = Rig::with(Nat64Config {
        endpoint_independent_filtering: true,
        ..Nat64Config::default()
    });
    let up = bytes(|v| {
        v6(SUB6, SRV64, 64)
            .udp(40000, 3478)
            .write(v, b"stun")
            .unwrap()
    });
    r.send(Side::Access, &up);
    assert_eq!(r.core.drain().len(), 1);
    // A peer the subscriber never talked to reaches its mapping (UDP hole punching).
    let peer = WEB[2];
    let down = bytes(|v| {
        v4((web_mac(peer), CORE_MAC), peer, NAT64, 64)
            .udp(6000, 1024)
            .write(v, b"hello")
            .unwrap()
    });
    r.send(Side::Core, &down);
    let want = bytes(|v| {
        v6_down(Nat64Config::default().synthesize(peer), 63)
            .udp(6000, 40000)
            .write(v, b"hello")
            .unwrap()
    });
    assert_eq!(r.access.drain(), vec![want]);
    // The subscriber's answer goes out from the same pool port through that binding.
    let back = bytes(|v| {
        v6(SUB6, Nat64Config::default().synthesize(peer), 64)
            .udp(40000, 6000)
            .write(v, b"hi")
            .unwrap()
    });
    r.send(Side::Access, &back);
    let want = bytes(|v| {
        v4((CORE_MAC, web_mac(peer)), NAT64, peer, 63)
            .udp(1024, 6000)
            .write(v, b"hi")
            .unwrap()
    });
    assert_eq!(r.core.drain(), vec![want]);
    let c = r.counters();
    assert_eq!(nat64_counters(&c), [2, 1, 2, 0]);
    assert_eq!(drops(&c), vec![]);
    r.check_balance();
}

/// TCP options with MSS `mss` (and a window scale after a no-op).
fn mss_options(mss: u16) -> [etherparse::TcpOptionElement; 3] {
    [
        etherparse::TcpOptionElement::MaximumSegmentSize(mss),
        etherparse::TcpOptionElement::Noop,
        etherparse::TcpOptionElement::WindowScale(7),
    ]
}

#[test]
fn translated_syns_have_their_mss_clamped_for_the_subscriber_s_ipv6_line() {
    // A session clamped to 1452 over IPv4 (MTU 1492): its IPv6 side carries 20 bytes
    // more of header per segment, so a translated SYN's MSS is clamped to 1432 both
    // ways, to a routed server and to a VIP's (whose answer is translated in one pass).
    let mut r = Rig::with_clamp(1452);
    let syn = |dst: Ipv6Addr, sport: u16, dport: u16| {
        bytes(|v| {
            v6(SUB6, dst, 64)
                .tcp(sport, dport, 7, 1000)
                .syn()
                .options(&mss_options(1460))
                .unwrap()
                .write(v, &[])
                .unwrap()
        })
    };
    r.send(Side::Access, &syn(SRV64, 40000, 80));
    let want = bytes(|v| {
        v4((CORE_MAC, SRV_MAC), NAT64, SRV, 63)
            .tcp(1024, 80, 7, 1000)
            .syn()
            .options(&mss_options(1432))
            .unwrap()
            .write(v, &[])
            .unwrap()
    });
    assert_eq!(r.core.drain(), vec![want]);
    let synack = bytes(|v| {
        v4((SRV_MAC, CORE_MAC), SRV, NAT64, 64)
            .tcp(80, 1024, 100, 2000)
            .syn()
            .ack(8)
            .options(&mss_options(1460))
            .unwrap()
            .write(v, &[])
            .unwrap()
    });
    r.send(Side::Core, &synack);
    let want = bytes(|v| {
        v6_down(SRV64, 63)
            .tcp(80, 40000, 100, 2000)
            .syn()
            .ack(8)
            .options(&mss_options(1432))
            .unwrap()
            .write(v, &[])
            .unwrap()
    });
    assert_eq!(r.access.drain(), vec![want]);

    // To the VIP: the first server, from the NAT address's first port.
    r.send(Side::Access, &syn(VIP64, 40001, 80));
    let want = bytes(|v| {
        v4((CORE_MAC, web_mac(WEB[0])), GW_CORE, WEB[0], 63)
            .tcp(1024, 8080, 7, 1000)
            .syn()
            .options(&mss_options(1432))
            .unwrap()
            .write(v, &[])
            .unwrap()
    });
    assert_eq!(r.core.drain(), vec![want]);
    let synack = bytes(|v| {
        v4((web_mac(WEB[0]), CORE_MAC), WEB[0], GW_CORE, 64)
            .tcp(8080, 1024, 100, 2000)
            .syn()
            .ack(8)
            .options(&mss_options(1440))
            .unwrap()
            .write(v, &[])
            .unwrap()
    });
    r.send(Side::Core, &synack);
    let want = bytes(|v| {
        v6_down(VIP64, 63)
            .tcp(80, 40001, 100, 2000)
            .syn()
            .ack(8)
            .options(&mss_options(1432))
            .unwrap()
            .write(v, &[])
            .unwrap()
    });
    assert_eq!(r.access.drain(), vec![want]);
    let c = r.counters();
    assert_eq!(nat64_counters(&c), [2, 2, 2, 0]);
    assert_eq!(drops(&c), vec![]);
    r.check_balance();
}

/// The PPPoE session of [`downlink_too_long_for_a_pppoe_line_as_ipv6_gets_fragmentation_needed`].
const PPPOE: u16 = 0x0042;

/// The Ethernet frame `f` (IPv6) in a PPPoE session frame of session PPPOE.
fn in_pppoe(f: &[u8]) -> Vec<u8> {
    let ip = &f[14..];
    let mut v = f[..12].to_vec();
    v.extend_from_slice(&[0x88, 0x64, 0x11, 0x00]);
    v.extend_from_slice(&PPPOE.to_be_bytes());
    v.extend_from_slice(&(ip.len() as u16 + 2).to_be_bytes());
    v.extend_from_slice(&[0x00, 0x57]);
    v.extend_from_slice(ip);
    v
}

/// The ICMP fragmentation-needed the core side sends `to` about the IPv4 packet in the
/// frame `orig`: its header and 8 bytes quoted, next-hop MTU `mtu`; built by etherparse.
fn frag_needed(orig: &[u8], to: (Ipv4Addr, MacAddr), mtu: u16) -> Vec<u8> {
    use etherparse::icmpv4::DestUnreachableHeader;
    use etherparse::{Icmpv4Header, IpNumber, Ipv4Header};
    let quote = &orig[14..14 + 28];
    let icmp = Icmpv4Header::with_checksum(
        Icmpv4Type::DestinationUnreachable(DestUnreachableHeader::FragmentationNeeded {
            next_hop_mtu: mtu,
        }),
        quote,
    );
    let len = (icmp.header_len() + quote.len()) as u16;
    let mut ip = Ipv4Header::new(len, 64, IpNumber::ICMP, GW_CORE.octets(), to.0.octets()).unwrap();
    ip.dont_fragment = false;
    ip.header_checksum = ip.calc_header_checksum();
    let mut v = to.1.0.to_vec();
    v.extend_from_slice(&CORE_MAC.0);
    v.extend_from_slice(&[0x08, 0x00]);
    v.extend_from_slice(&ip.to_bytes());
    v.extend_from_slice(&icmp.to_bytes());
    v.extend_from_slice(quote);
    v
}

#[test]
fn downlink_too_long_for_a_pppoe_line_as_ipv6_gets_fragmentation_needed() {
    // A PPPoE line of MTU 1492 (clamp 1452) carries IPv6 of 1492 bytes: IPv4 of 1472
    // once translated. Longer with DF: fragmentation-needed with 1472 (RFC 7915 4.1,
    // RFC 6146 3.5), quoting the packet as the server sent it; without DF, a counted
    // drop (not fragmented). The same for a routed server's binding and a VIP's flow.
    let line = AccessLine {
        vlans: Default::default(),
        encap: Encap::Pppoe { session: PPPOE },
        mss_clamp: 1452,
    };
    let mut r = Rig::with_line(Nat64Config::default(), line);
    let up = bytes(|v| {
        v6(SUB6, SRV64, 64)
            .udp(40000, 53)
            .write(v, b"query")
            .unwrap()
    });
    r.send(Side::Access, &in_pppoe(&up));
    assert_eq!(r.core.drain().len(), 1);
    let down = |total: usize, df: bool| {
        bytes(|v| {
            v4_flags((SRV_MAC, CORE_MAC), SRV, NAT64, 60, df)
                .udp(53, 1024)
                .write(v, &vec![7u8; total - 28])
                .unwrap()
        })
    };
    // Exactly the MTU once translated: forwarded, 20 bytes longer, in PPPoE.
    r.send(Side::Core, &down(1472, true));
    let out = r.access.drain();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].len(), 14 + 8 + 1492);
    let big = down(1473, true);
    r.send(Side::Core, &big);
    assert!(r.access.drain().is_empty());
    assert_eq!(
        r.core.drain(),
        vec![frag_needed(&big, (SRV, SRV_MAC), 1472)]
    );
    r.send(Side::Core, &down(1473, false));
    assert!(r.access.drain().is_empty());
    assert!(r.core.drain().is_empty());

    // To the VIP (a TCP flow through the service stage) the same.
    let syn = bytes(|v| {
        v6(SUB6, VIP64, 64)
            .tcp(40001, 80, 7, 1000)
            .syn()
            .write(v, &[])
            .unwrap()
    });
    r.send(Side::Access, &in_pppoe(&syn));
    assert_eq!(r.core.drain().len(), 1);
    let answer = |total: usize| {
        bytes(|v| {
            v4_df((web_mac(WEB[0]), CORE_MAC), WEB[0], GW_CORE, 64)
                .tcp(8080, 1024, 100, 2000)
                .ack(8)
                .write(v, &vec![9u8; total - 40])
                .unwrap()
        })
    };
    let big = answer(1473);
    r.send(Side::Core, &big);
    assert!(r.access.drain().is_empty());
    assert_eq!(
        r.core.drain(),
        vec![frag_needed(&big, (WEB[0], web_mac(WEB[0])), 1472)]
    );
    r.send(Side::Core, &answer(1472));
    let out = r.access.drain();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].len(), 14 + 8 + 1492);

    let c = r.counters();
    assert_eq!(c.dropped(DropReason::PppoeTooBig), 3);
    assert_eq!(c.icmp_errors, 2);
    assert_eq!(nat64_counters(&c), [2, 2, 2, 0]);
    r.check_balance();
}
