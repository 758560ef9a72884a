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
            error_sources: [None, None],
        })
        .nat64(Nat64Config {
            on: true,
            pool: vec![NAT64],
            ..Nat64Config::default()
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
            access: AccessLine {
                vlans: Default::default(),
                encap: Encap::Ipoe,
                mss_clamp: 0,
            },
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

fn v4(
    (smac, dmac): (MacAddr, MacAddr),
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ttl: u8,
) -> etherparse::PacketBuilderStep<etherparse::IpHeaders> {
    PacketBuilder::ethernet2(smac.0, dmac.0).ipv4(src.octets(), dst.octets(), ttl)
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
            (DropReason::Nat64Unsupported, 1),
            (DropReason::Nat64IcmpError, 2),
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
