//! The subscriber half of the fast path over memory ports: sessions and their counters,
//! NAT to load-balanced servers byte-exact both ways, balancing policies, session types,
//! refusals, TCP state and flow records, limits, disconnect checks, policing and
//! load balancing by source range. Frames are built with etherparse; every translated
//! frame is compared byte for byte with the frame etherparse builds for the expected
//! result, so every checksum is checked too.

use std::net::Ipv4Addr;

use etherparse::PacketBuilder;
use tollgate_dataplane::lb::{LbRange, LbTable, LbTarget};
use tollgate_dataplane::nat::{FlowClose, FlowRecord, NatConfig, Timeouts};
use tollgate_dataplane::port::memory::{MemoryPeer, MemoryPort};
use tollgate_dataplane::service::{Policy, RealServer, Service, Services, SessionType};
use tollgate_dataplane::session::{
    AccessLine, Bandwidth, ClosedSession, DisconnectCause, Encap, Limits, RateLimit, ServiceSet,
    SessionCounters, SessionSpec, SessionTable, SessionUpdate, VolumeLimit,
};
use tollgate_dataplane::snapshot::Publisher;
use tollgate_dataplane::stage::SubscriberLimits;
use tollgate_dataplane::time::Instant;
use tollgate_dataplane::{
    Command, ControlEnds, DropReason, Event, Forwarding, ForwardingBuilder, HeapPool, MacAddr,
    RingSizes, SideConfig, Unknown, Worker, WorkerConfig, worker_rings,
};
use tollgate_testkit::frame::{tcp, time_exceeded, udp_ports};
use tollgate_testkit::lab::*;

const VIP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 10);
const VIP_PING: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 11);
const WEB: [Ipv4Addr; 3] = [
    Ipv4Addr::new(192, 0, 2, 21),
    Ipv4Addr::new(192, 0, 2, 22),
    Ipv4Addr::new(192, 0, 2, 23),
];
const DNS: [Ipv4Addr; 2] = [Ipv4Addr::new(192, 0, 2, 31), Ipv4Addr::new(192, 0, 2, 32)];
const PING_SRV: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 41);
const SUB2: Ipv4Addr = Ipv4Addr::new(10, 10, 0, 12);
const SUB2_MAC: MacAddr = MacAddr([0x02, 0x10, 0, 0, 0, 0x12]);
const POOL: usize = 2048;
const SEC: u64 = 1_000_000_000;

/// Service indexes of [`services`].
const S_WEB: u16 = 0;
const S_DNS: u16 = 1;
const S_PING: u16 = 2;
const S_ADMIN: u16 = 3;

fn server_mac(ip: Ipv4Addr) -> MacAddr {
    MacAddr([0x02, 0x20, 0, 0, 0, ip.octets()[3]])
}

fn service(
    vip: Ipv4Addr,
    protocol: u8,
    port: u16,
    policy: Policy,
    st: SessionType,
    servers: &[(Ipv4Addr, u16)],
) -> Service {
    Service {
        vip,
        protocol,
        port,
        policy,
        session_type: st,
        servers: servers
            .iter()
            .map(|&(a, p)| RealServer::new(a, p))
            .collect(),
    }
}

fn services() -> Vec<Service> {
    vec![
        service(
            VIP,
            6,
            80,
            Policy::RoundRobin,
            SessionType::Connection,
            &WEB.map(|a| (a, 8080)),
        ),
        service(
            VIP,
            17,
            53,
            Policy::RoundRobin,
            SessionType::Packet,
            &DNS.map(|a| (a, 53)),
        ),
        service(
            VIP_PING,
            1,
            0,
            Policy::RoundRobin,
            SessionType::Connection,
            &[(PING_SRV, 0)],
        ),
        service(
            VIP,
            6,
            8443,
            Policy::RoundRobin,
            SessionType::Connection,
            &[(SRV, 8080)],
        ),
    ]
}

fn timeouts() -> Timeouts {
    Timeouts {
        tcp_syn_ms: 5_000,
        tcp_established_ms: 60_000,
        tcp_fin_ms: 10_000,
        tcp_closing_ms: 2_000,
        udp_ms: 30_000,
        icmp_ms: 10_000,
    }
}

fn forwarding(svcs: Vec<Service>, lb: LbTable, unknown: Unknown) -> Forwarding {
    forwarding_with_ports(svcs, lb, unknown, (1024, 65535))
}

fn forwarding_with_ports(
    svcs: Vec<Service>,
    lb: LbTable,
    unknown: Unknown,
    ports: (u16, u16),
) -> Forwarding {
    ForwardingBuilder::new(
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
    .services(Services::new(svcs).unwrap())
    .lb(lb)
    .nat(NatConfig {
        addresses: vec![GW_CORE],
        ports,
        timeouts: timeouts(),
    })
    .unknown(unknown)
    .icmp_errors_per_s(1000)
    .build()
    .unwrap()
}

struct Rig {
    worker: Worker<MemoryPort>,
    access: MemoryPeer,
    core: MemoryPeer,
    ctl: ControlEnds,
    publisher: Publisher<Forwarding>,
    now: Instant,
    events: Vec<Event>,
}

impl Rig {
    fn new() -> Rig {
        Rig::with(
            services(),
            LbTable::default(),
            Unknown::Drop,
            SubscriberLimits::default(),
        )
    }

    fn with(svcs: Vec<Service>, lb: LbTable, unknown: Unknown, limits: SubscriberLimits) -> Rig {
        Rig::with_forwarding(forwarding(svcs, lb, unknown), limits)
    }

    fn with_forwarding(fwd: Forwarding, limits: SubscriberLimits) -> Rig {
        let (a, access) = MemoryPort::with_peer(4096);
        let (c, core) = MemoryPort::with_peer(4096);
        let publisher = Publisher::new(fwd);
        let (w, ctl) = worker_rings(RingSizes {
            messages: 8192,
            frames: 64,
        });
        let cfg = WorkerConfig {
            subscribers: limits,
            ..WorkerConfig::default()
        };
        let worker = Worker::new(cfg, a, c, HeapPool::new(POOL), publisher.reader(), w);
        let mut r = Rig {
            worker,
            access,
            core,
            ctl,
            publisher,
            now: Instant(1_000 * SEC),
            events: Vec::new(),
        };
        for ip in WEB
            .iter()
            .chain(DNS.iter())
            .chain([PING_SRV, SRV, RTR].iter())
        {
            r.command(Command::NeighborSet {
                ip: *ip,
                mac: server_mac(*ip),
            });
        }
        r.poll();
        r
    }

    fn command(&mut self, c: Command) {
        self.ctl.commands.push(c).unwrap();
    }

    fn poll(&mut self) {
        self.worker.poll(self.now);
        while let Some(e) = self.ctl.events.pop() {
            self.events.push(e);
        }
    }

    fn at(&mut self, ns: u64) {
        self.now = Instant(1_000 * SEC + ns);
        self.poll();
    }

    fn session(
        &mut self,
        id: u32,
        ip: Ipv4Addr,
        mac: Option<MacAddr>,
        limits: Limits,
        bw: Bandwidth,
        services: ServiceSet,
    ) {
        self.command(Command::SessionAdd(SessionSpec {
            id,
            user: 1000 + id as u64,
            channel: id,
            address: ip,
            mac,
            started: self.now,
            limits,
            bandwidth: bw,
            services,
            max_flows: 0,
            access: Default::default(),
        }));
        self.poll();
    }

    fn sub1(&mut self) {
        self.session(
            1,
            SUB,
            Some(SUB_MAC),
            Limits::default(),
            Bandwidth::default(),
            ServiceSet::ALL,
        );
    }

    fn up(&mut self, f: Vec<u8>) -> Vec<Vec<u8>> {
        assert!(self.access.send(f));
        self.poll();
        self.core.drain()
    }

    fn down(&mut self, f: Vec<u8>) -> Vec<Vec<u8>> {
        assert!(self.core.send(f));
        self.poll();
        self.access.drain()
    }

    fn counters(&mut self) -> tollgate_dataplane::WorkerCounters {
        self.worker.report(0, self.now).counters
    }

    fn closed(&self) -> Vec<ClosedSession> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::SessionClosed(c) => Some(*c),
                _ => None,
            })
            .collect()
    }

    fn records(&self) -> Vec<FlowRecord> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::FlowRecord(r) => Some(*r),
                _ => None,
            })
            .collect()
    }

    fn session_counters(&mut self, id: u32) -> SessionCounters {
        self.command(Command::SessionQuery { id, seq: 77 });
        self.poll();
        let c = self.events.iter().rev().find_map(|e| match e {
            Event::SessionCounters {
                id: i,
                seq: 77,
                counters,
                ..
            } if *i == id => Some(*counters),
            _ => None,
        });
        c.expect("the session answers")
    }

    fn check_balance(&mut self) {
        let held = self.worker.held() as u64;
        let c = self.counters();
        let (i, o) = c.balance(held);
        assert_eq!(i, o, "in {i} != out {o}");
        assert_eq!(
            self.worker.pool_available() + self.worker.held(),
            POOL,
            "buffers leaked"
        );
    }
}

fn icmp_echo(
    src_mac: MacAddr,
    dst_mac: MacAddr,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ttl: u8,
    id: u16,
    reply: bool,
) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(src_mac.0, dst_mac.0).ipv4(src.octets(), dst.octets(), ttl);
    let b = if reply {
        b.icmpv4_echo_reply(id, 9)
    } else {
        b.icmpv4_echo_request(id, 9)
    };
    let mut v = Vec::new();
    b.write(&mut v, b"echo data").unwrap();
    v
}

// ---------------------------------------------------------------------------------------
// Sessions, counters, classify

#[test]
fn session_counts_both_ways_and_strangers_are_dropped() {
    let mut r = Rig::new();
    r.sub1();
    let up = udp_ports(SUB_MAC, ACC_MAC, SUB, 40000, SRV, 5001, 64, &[1; 100]);
    assert_eq!(r.up(up).len(), 1);
    let down = udp_ports(SRV_MAC, CORE_MAC, SRV, 5001, SUB, 40000, 64, &[2; 300]);
    let out = r.down(down);
    assert_eq!(
        out,
        vec![udp_ports(
            ACC_MAC, SUB_MAC, SRV, 5001, SUB, 40000, 63, &[2; 300]
        )],
        "downlink to the session's MAC"
    );
    assert_eq!(
        r.session_counters(1),
        SessionCounters {
            tx_packets: 1,
            tx_bytes: 128,
            rx_packets: 1,
            rx_bytes: 328
        }
    );
    // A stranger uplink, and downlink to an address without a session.
    assert!(
        r.up(udp_ports(SUB2_MAC, ACC_MAC, SUB2, 1, SRV, 2, 64, b"x"))
            .is_empty()
    );
    assert!(
        r.down(udp_ports(SRV_MAC, CORE_MAC, SRV, 2, SUB2, 1, 64, b"x"))
            .is_empty()
    );
    let c = r.counters();
    assert_eq!(c.dropped(DropReason::UnknownSubscriber), 1);
    assert_eq!(c.dropped(DropReason::NoSession), 1);
    assert!(
        r.events
            .iter()
            .all(|e| !matches!(e, Event::UnknownSubscriber { .. })),
        "drop mode does not punt"
    );
    r.check_balance();
}

#[test]
fn punt_mode_reports_strangers_once_a_second() {
    let mut r = Rig::with(
        services(),
        LbTable::default(),
        Unknown::Punt,
        SubscriberLimits::default(),
    );
    for _ in 0..5 {
        r.up(udp_ports(SUB2_MAC, ACC_MAC, SUB2, 1, SRV, 2, 64, b"x"));
    }
    let n = |r: &Rig| {
        r.events.iter().filter(|e| matches!(e, Event::UnknownSubscriber { ip, mac, .. } if *ip == SUB2 && *mac == SUB2_MAC)).count()
    };
    assert_eq!(n(&r), 1);
    r.at(SEC);
    r.up(udp_ports(SUB2_MAC, ACC_MAC, SUB2, 1, SRV, 2, 64, b"x"));
    assert_eq!(n(&r), 2, "again after a second");
    assert_eq!(r.counters().dropped(DropReason::UnknownSubscriber), 6);
    // Once logged in, the subscriber passes.
    r.session(
        2,
        SUB2,
        None,
        Limits::default(),
        Bandwidth::default(),
        ServiceSet::ALL,
    );
    assert_eq!(
        r.up(udp_ports(SUB2_MAC, ACC_MAC, SUB2, 1, SRV, 2, 64, b"x"))
            .len(),
        1
    );
}

#[test]
fn anti_spoofing_checks_the_mac_and_learns_it_when_unknown() {
    let mut r = Rig::new();
    r.sub1();
    let other = MacAddr([0x02, 0x66, 0, 0, 0, 1]);
    assert!(
        r.up(udp_ports(other, ACC_MAC, SUB, 1, SRV, 2, 64, b"x"))
            .is_empty()
    );
    assert_eq!(r.counters().dropped(DropReason::SourceSpoofed), 1);
    // Without a MAC in the spec, the first frame's MAC is learned and then enforced.
    r.session(
        2,
        SUB2,
        None,
        Limits::default(),
        Bandwidth::default(),
        ServiceSet::ALL,
    );
    assert_eq!(
        r.up(udp_ports(SUB2_MAC, ACC_MAC, SUB2, 1, SRV, 2, 64, b"x"))
            .len(),
        1
    );
    assert_eq!(
        r.down(udp_ports(SRV_MAC, CORE_MAC, SRV, 2, SUB2, 1, 64, b"y")),
        vec![udp_ports(ACC_MAC, SUB2_MAC, SRV, 2, SUB2, 1, 63, b"y")]
    );
    assert!(
        r.up(udp_ports(other, ACC_MAC, SUB2, 1, SRV, 2, 64, b"x"))
            .is_empty()
    );
    assert_eq!(r.counters().dropped(DropReason::SourceSpoofed), 2);
}

#[test]
fn removal_sends_one_final_record_after_the_flow_records() {
    let mut r = Rig::new();
    r.sub1();
    r.up(tcp(
        SUB_MAC,
        ACC_MAC,
        SUB,
        40001,
        VIP,
        80,
        64,
        100,
        "S",
        0,
        &[],
    ));
    r.up(udp_ports(
        SUB_MAC, ACC_MAC, SUB, 40000, SRV, 5001, 64, &[0; 50],
    ));
    r.at(3 * SEC);
    r.command(Command::SessionRemove {
        id: 1,
        cause: DisconnectCause::UserRequest,
    });
    r.poll();
    r.command(Command::SessionRemove {
        id: 1,
        cause: DisconnectCause::UserRequest,
    });
    r.poll();
    let closed = r.closed();
    assert_eq!(closed.len(), 1, "once");
    let c = closed[0];
    assert_eq!(
        (c.id, c.user, c.channel, c.address, c.cause),
        (1, 1001, 1, SUB, DisconnectCause::UserRequest)
    );
    assert_eq!(
        (c.started, c.stopped),
        (Instant(1_000 * SEC), Instant(1_003 * SEC))
    );
    assert_eq!((c.counters.tx_packets, c.counters.tx_bytes), (2, 40 + 78));
    let recs = r.records();
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].close, FlowClose::SessionEnded);
    let rec_at = r
        .events
        .iter()
        .position(|e| matches!(e, Event::FlowRecord(_)))
        .unwrap();
    let closed_at = r
        .events
        .iter()
        .position(|e| matches!(e, Event::SessionClosed(_)))
        .unwrap();
    assert!(rec_at < closed_at, "flow records first");
    assert_eq!(r.counters().sessions_closed, 1);
}

// ---------------------------------------------------------------------------------------
// NAT

#[test]
fn tcp_is_translated_both_ways_byte_exact() {
    let mut r = Rig::new();
    r.sub1();
    let syn = tcp(SUB_MAC, ACC_MAC, SUB, 40001, VIP, 80, 64, 1000, "S", 0, &[]);
    let out = r.up(syn);
    // To the first web server, from the gateway's core address and the first NAT port.
    assert_eq!(
        out,
        vec![tcp(
            CORE_MAC,
            server_mac(WEB[0]),
            GW_CORE,
            1024,
            WEB[0],
            8080,
            63,
            1000,
            "S",
            0,
            &[]
        )]
    );
    let syn_ack = tcp(
        server_mac(WEB[0]),
        CORE_MAC,
        WEB[0],
        8080,
        GW_CORE,
        1024,
        64,
        5000,
        "SA",
        1001,
        &[],
    );
    assert_eq!(
        r.down(syn_ack),
        vec![tcp(
            ACC_MAC,
            SUB_MAC,
            VIP,
            80,
            SUB,
            40001,
            63,
            5000,
            "SA",
            1001,
            &[]
        )]
    );
    let req = b"GET /index.html HTTP/1.1\r\nHost: www.example.test\r\n\r\n";
    let out = r.up(tcp(
        SUB_MAC, ACC_MAC, SUB, 40001, VIP, 80, 64, 1001, "PA", 5001, req,
    ));
    assert_eq!(
        out,
        vec![tcp(
            CORE_MAC,
            server_mac(WEB[0]),
            GW_CORE,
            1024,
            WEB[0],
            8080,
            63,
            1001,
            "PA",
            5001,
            req
        )]
    );
    let host = r.events.iter().find_map(|e| match e {
        Event::FlowHost { len, host, .. } => {
            Some(String::from_utf8_lossy(&host[..*len as usize]).into_owned())
        }
        _ => None,
    });
    assert_eq!(host.as_deref(), Some("www.example.test"));
    r.check_balance();
}

#[test]
fn udp_and_icmp_echo_are_translated_byte_exact() {
    let mut r = Rig::new();
    r.sub1();
    let out = r.up(udp_ports(
        SUB_MAC, ACC_MAC, SUB, 5353, VIP, 53, 64, b"query",
    ));
    assert_eq!(
        out,
        vec![udp_ports(
            CORE_MAC,
            server_mac(DNS[0]),
            GW_CORE,
            1024,
            DNS[0],
            53,
            63,
            b"query"
        )]
    );
    let out = r.down(udp_ports(
        server_mac(DNS[0]),
        CORE_MAC,
        DNS[0],
        53,
        GW_CORE,
        1024,
        64,
        b"answer",
    ));
    assert_eq!(
        out,
        vec![udp_ports(
            ACC_MAC, SUB_MAC, VIP, 53, SUB, 5353, 63, b"answer"
        )]
    );

    let out = r.up(icmp_echo(SUB_MAC, ACC_MAC, SUB, VIP_PING, 64, 777, false));
    assert_eq!(
        out,
        vec![icmp_echo(
            CORE_MAC,
            server_mac(PING_SRV),
            GW_CORE,
            PING_SRV,
            63,
            1024,
            false
        )]
    );
    let out = r.down(icmp_echo(
        server_mac(PING_SRV),
        CORE_MAC,
        PING_SRV,
        GW_CORE,
        64,
        1024,
        true,
    ));
    assert_eq!(
        out,
        vec![icmp_echo(ACC_MAC, SUB_MAC, VIP_PING, SUB, 63, 777, true)]
    );
    // Not a VIP: forwarded unchanged but for TTL and MACs.
    let out = r.up(udp_ports(
        SUB_MAC, ACC_MAC, SUB, 5353, SRV, 53, 64, b"plain",
    ));
    assert_eq!(
        out,
        vec![udp_ports(
            CORE_MAC,
            server_mac(SRV),
            SUB,
            5353,
            SRV,
            53,
            63,
            b"plain"
        )]
    );
    r.check_balance();
}

#[test]
fn answers_from_the_wrong_server_or_port_do_not_match() {
    let mut r = Rig::new();
    r.sub1();
    r.up(tcp(
        SUB_MAC,
        ACC_MAC,
        SUB,
        40001,
        VIP,
        80,
        64,
        1000,
        "S",
        0,
        &[],
    ));
    assert!(
        r.down(tcp(
            server_mac(WEB[1]),
            CORE_MAC,
            WEB[1],
            8080,
            GW_CORE,
            1024,
            64,
            5,
            "SA",
            1001,
            &[]
        ))
        .is_empty()
    );
    assert!(
        r.down(tcp(
            server_mac(WEB[0]),
            CORE_MAC,
            WEB[0],
            8080,
            GW_CORE,
            1999,
            64,
            5,
            "SA",
            1001,
            &[]
        ))
        .is_empty()
    );
    assert_eq!(
        r.counters().dropped(DropReason::NatNoFlow),
        2,
        "wrong server, and a NAT port no flow holds"
    );
    assert_eq!(r.counters().dropped(DropReason::LocalUnsupported), 0);
    // A non-SYN segment with no flow.
    assert!(
        r.up(tcp(
            SUB_MAC,
            ACC_MAC,
            SUB,
            40009,
            VIP,
            80,
            64,
            1,
            "A",
            1,
            &[]
        ))
        .is_empty()
    );
    assert_eq!(r.counters().dropped(DropReason::NatNoFlow), 3);
}

#[test]
fn ttl_expiry_before_translation_is_reported_from_the_gateway() {
    let mut r = Rig::new();
    r.sub1();
    let syn = tcp(SUB_MAC, ACC_MAC, SUB, 40001, VIP, 80, 1, 1000, "S", 0, &[]);
    assert!(r.up(syn.clone()).is_empty());
    assert_eq!(
        r.access.drain(),
        vec![time_exceeded(ACC_MAC, SUB_MAC, GW_ACC, &syn)]
    );
}

// ---------------------------------------------------------------------------------------
// Balancing policies and session types

fn first_server_of(r: &mut Rig, sport: u16, vip: Ipv4Addr, port: u16) -> Option<Ipv4Addr> {
    let out = r.up(tcp(
        SUB_MAC,
        ACC_MAC,
        SUB,
        sport,
        vip,
        port,
        64,
        1,
        "S",
        0,
        &[],
    ));
    out.first()
        .map(|f| Ipv4Addr::new(f[30], f[31], f[32], f[33]))
}

#[test]
fn each_policy_chooses_in_its_order() {
    let servers = [(WEB[0], 8080), (WEB[1], 8080), (WEB[2], 8080)];
    let expect: [(Policy, Vec<usize>); 3] = [
        (Policy::RoundRobin, vec![0, 1, 2, 0, 1, 2]),
        (Policy::LeastConnections, vec![0, 1, 2, 0, 1, 2]),
        (Policy::WeightedRoundRobin, vec![0, 0, 1, 0, 2, 0]),
    ];
    for (policy, seq) in expect {
        let mut s = service(VIP, 6, 80, policy, SessionType::Connection, &servers);
        s.servers[0].weight = 4;
        let mut r = Rig::with(
            vec![s],
            LbTable::default(),
            Unknown::Drop,
            SubscriberLimits::default(),
        );
        r.sub1();
        let got: Vec<usize> = (0..6)
            .map(|i| {
                let ip = first_server_of(&mut r, 41000 + i, VIP, 80).unwrap();
                WEB.iter().position(|w| *w == ip).unwrap()
            })
            .collect();
        assert_eq!(got, seq, "{policy:?}");
    }
    // Metrics-driven policies follow what the snapshot says.
    for (policy, set) in [
        (
            Policy::FastestResponse,
            (|r: &mut RealServer, i: usize| r.response_us = [900, 200, 500][i])
                as fn(&mut RealServer, usize),
        ),
        (Policy::LowestCpuLoad, |r: &mut RealServer, i: usize| {
            r.cpu_load = [50, 70, 10][i]
        }),
        (Policy::Priority, |r: &mut RealServer, i: usize| {
            r.priority = [3, 2, 2][i]
        }),
    ] {
        let mut s = service(VIP, 6, 80, policy, SessionType::Connection, &servers);
        for (i, srv) in s.servers.iter_mut().enumerate() {
            set(srv, i);
        }
        let mut r = Rig::with(
            vec![s],
            LbTable::default(),
            Unknown::Drop,
            SubscriberLimits::default(),
        );
        r.sub1();
        let got: Vec<Ipv4Addr> = (0..4)
            .map(|i| first_server_of(&mut r, 42000 + i, VIP, 80).unwrap())
            .collect();
        let want = match policy {
            Policy::FastestResponse => vec![WEB[1]; 4],
            Policy::LowestCpuLoad => vec![WEB[2]; 4],
            _ => vec![WEB[1], WEB[2], WEB[1], WEB[2]],
        };
        assert_eq!(got, want, "{policy:?}");
    }
}

#[test]
fn login_and_service_types_stick_as_seed_001_describes() {
    let web = |st| service(VIP, 6, 80, Policy::RoundRobin, st, &WEB.map(|a| (a, 8080)));
    let mail = |st| service(VIP, 6, 25, Policy::RoundRobin, st, &WEB.map(|a| (a, 2525)));

    // Login: the same server for a service across connections, per service, until logout.
    let mut r = Rig::with(
        vec![web(SessionType::Login), mail(SessionType::Login)],
        LbTable::default(),
        Unknown::Drop,
        SubscriberLimits::default(),
    );
    r.sub1();
    let a: Vec<_> = (0..3)
        .map(|i| first_server_of(&mut r, 43000 + i, VIP, 80).unwrap())
        .collect();
    assert_eq!(a, vec![WEB[0]; 3]);
    assert_eq!(
        first_server_of(&mut r, 43100, VIP, 25),
        Some(WEB[0]),
        "mail's own choice (its own round robin)"
    );
    assert_eq!(
        first_server_of(&mut r, 43003, VIP, 80),
        Some(WEB[0]),
        "back to web: still the same server"
    );
    r.command(Command::SessionRemove {
        id: 1,
        cause: DisconnectCause::UserRequest,
    });
    r.poll();
    r.sub1();
    assert_eq!(
        first_server_of(&mut r, 43004, VIP, 80),
        Some(WEB[1]),
        "a new login chooses again"
    );

    // Service: sticky while the subscriber keeps to the service; using another forgets it.
    let mut r = Rig::with(
        vec![web(SessionType::Service), mail(SessionType::Service)],
        LbTable::default(),
        Unknown::Drop,
        SubscriberLimits::default(),
    );
    r.sub1();
    assert_eq!(first_server_of(&mut r, 44000, VIP, 80), Some(WEB[0]));
    assert_eq!(first_server_of(&mut r, 44001, VIP, 80), Some(WEB[0]));
    assert_eq!(first_server_of(&mut r, 44002, VIP, 25), Some(WEB[0]));
    assert_eq!(
        first_server_of(&mut r, 44003, VIP, 80),
        Some(WEB[1]),
        "chosen again after another service"
    );

    // Connection: every SYN chooses.
    let mut r = Rig::with(
        vec![web(SessionType::Connection)],
        LbTable::default(),
        Unknown::Drop,
        SubscriberLimits::default(),
    );
    r.sub1();
    let c: Vec<_> = (0..3)
        .map(|i| first_server_of(&mut r, 45000 + i, VIP, 80).unwrap())
        .collect();
    assert_eq!(c, WEB.to_vec());
}

#[test]
fn the_per_login_table_is_made_by_the_first_login_service() {
    // Without a `login` service the sessions pay nothing for stickiness (issue 14).
    let mut r = Rig::new();
    r.sub1();
    let sessions = &r.worker.pipeline().sessions;
    assert!(sessions.sticky().is_none());
    let before = sessions.memory_bytes();
    assert_eq!(before, SessionTable::bytes_for(sessions.capacity()));

    // A snapshot with one makes it (at the snapshot, before any packet), and a login
    // that began before it sticks from its next flow on.
    let mut svcs = services();
    svcs[0].session_type = SessionType::Login;
    r.publisher
        .publish(forwarding(svcs, LbTable::default(), Unknown::Drop));
    r.poll();
    let sessions = &r.worker.pipeline().sessions;
    assert!(sessions.sticky().is_some_and(|t| t.is_empty()));
    assert_eq!(
        sessions.memory_bytes(),
        before + SessionTable::sticky_bytes_for(sessions.capacity())
    );
    let a: Vec<_> = (0..3)
        .map(|i| first_server_of(&mut r, 43200 + i, VIP, 80).unwrap())
        .collect();
    assert_eq!(a, vec![WEB[0]; 3]);
    assert_eq!(r.counters().sticky_full, 0);

    // It stays when the login service goes (the snapshot may come back).
    r.publisher
        .publish(forwarding(services(), LbTable::default(), Unknown::Drop));
    r.poll();
    assert!(r.worker.pipeline().sessions.sticky().is_some());
}

#[test]
fn packet_type_chooses_per_request_and_the_answer_closes_the_flow() {
    let mut r = Rig::new();
    r.sub1();
    for i in 0..4 {
        let out = r.up(udp_ports(SUB_MAC, ACC_MAC, SUB, 5353, VIP, 53, 64, b"q"));
        let server = DNS[i % 2];
        // The answer frees the NAT port, so every request gets the first one again.
        assert_eq!(
            out,
            vec![udp_ports(
                CORE_MAC,
                server_mac(server),
                GW_CORE,
                1024,
                server,
                53,
                63,
                b"q"
            )]
        );
        let ans = r.down(udp_ports(
            server_mac(server),
            CORE_MAC,
            server,
            53,
            GW_CORE,
            1024,
            64,
            b"a",
        ));
        assert_eq!(ans.len(), 1, "request {i} answered");
    }
    let recs = r.records();
    assert_eq!(recs.len(), 4, "each answered request is a record");
    assert!(
        recs.iter()
            .all(|x| x.close == FlowClose::Answered && x.up == (1, 29) && x.down == (1, 29))
    );
    assert_eq!(recs[0].server.0, DNS[0]);
    assert_eq!(recs[1].server.0, DNS[1]);
}

// ---------------------------------------------------------------------------------------
// Authorisation

#[test]
fn refused_services_get_a_reset_or_icmp_unreachable() {
    let mut r = Rig::new();
    r.session(
        1,
        SUB,
        Some(SUB_MAC),
        Limits::default(),
        Bandwidth::default(),
        ServiceSet::from_indexes([S_DNS]),
    );
    let syn = tcp(
        SUB_MAC,
        ACC_MAC,
        SUB,
        40001,
        VIP,
        80,
        64,
        0x1000_0000,
        "S",
        0,
        &[],
    );
    assert!(r.up(syn).is_empty());
    // RST+ACK from the VIP: ack = seq + 1, ports swapped, checksums valid.
    let rst = PacketBuilder::ethernet2(ACC_MAC.0, SUB_MAC.0)
        .ipv4(VIP.octets(), SUB.octets(), 64)
        .tcp(80, 40001, 0, 0)
        .rst()
        .ack(0x1000_0001);
    let mut want = Vec::new();
    rst.write(&mut want, &[]).unwrap();
    want[20] = 0; // identification and flags as the gateway writes them: DF clear
    want[14 + 6] = 0;
    let mut ip = etherparse::Ipv4Header::from_slice(&want[14..34]).unwrap().0;
    ip.dont_fragment = false;
    ip.header_checksum = ip.calc_header_checksum();
    want[14..34].copy_from_slice(&ip.to_bytes());
    assert_eq!(r.access.drain(), vec![want]);

    // A segment with an ACK gets a reset with that sequence number.
    assert!(
        r.up(tcp(
            SUB_MAC, ACC_MAC, SUB, 40002, VIP, 80, 64, 7, "A", 0xabcd, b"data"
        ))
        .is_empty()
    );
    let out = r.access.drain();
    let t = etherparse::SlicedPacket::from_ethernet(&out[0]).unwrap();
    match t.transport {
        Some(etherparse::TransportSlice::Tcp(t)) => {
            assert!(t.rst() && !t.ack());
            assert_eq!(t.sequence_number(), 0xabcd);
        }
        _ => panic!("not TCP"),
    }

    // Refused UDP: port unreachable from the VIP quoting the datagram.
    let mut r = Rig::new();
    r.session(
        1,
        SUB,
        Some(SUB_MAC),
        Limits::default(),
        Bandwidth::default(),
        ServiceSet::from_indexes([S_WEB]),
    );
    let q = udp_ports(SUB_MAC, ACC_MAC, SUB, 5353, VIP, 53, 64, b"query");
    assert!(r.up(q.clone()).is_empty());
    let out = r.access.drain();
    let quote = &q[14..14 + 28];
    let icmp = etherparse::Icmpv4Header::with_checksum(
        etherparse::Icmpv4Type::DestinationUnreachable(
            etherparse::icmpv4::DestUnreachableHeader::Port,
        ),
        quote,
    );
    let mut ip = etherparse::Ipv4Header::new(
        8 + 28,
        64,
        etherparse::IpNumber::ICMP,
        VIP.octets(),
        SUB.octets(),
    )
    .unwrap();
    ip.dont_fragment = false;
    ip.header_checksum = ip.calc_header_checksum();
    let mut want = etherparse::Ethernet2Header {
        source: ACC_MAC.0,
        destination: SUB_MAC.0,
        ether_type: etherparse::EtherType::IPV4,
    }
    .to_bytes()
    .to_vec();
    want.extend_from_slice(&ip.to_bytes());
    want.extend_from_slice(&icmp.to_bytes());
    want.extend_from_slice(quote);
    assert_eq!(out, vec![want]);
    let c = r.counters();
    assert_eq!(
        (c.dropped(DropReason::ServiceRefused), c.icmp_errors),
        (1, 1)
    );

    // A port of the VIP with no service is answered the same way, counted apart.
    assert!(
        r.up(tcp(
            SUB_MAC,
            ACC_MAC,
            SUB,
            40003,
            VIP,
            22,
            64,
            1,
            "S",
            0,
            &[]
        ))
        .is_empty()
    );
    assert_eq!(r.access.drain().len(), 1);
    let c = r.counters();
    assert_eq!((c.dropped(DropReason::NoService), c.tcp_resets), (1, 1));
    let _ = (S_PING, S_ADMIN);
    r.check_balance();
}

// ---------------------------------------------------------------------------------------
// TCP state, flow records, timeouts, server failure, limits

#[test]
fn tcp_close_and_reset_end_flows_with_exact_records() {
    let mut r = Rig::new();
    r.sub1();
    let (s, srv) = (SUB_MAC, server_mac(WEB[0]));
    r.up(tcp(s, ACC_MAC, SUB, 40001, VIP, 80, 64, 1, "S", 0, &[]));
    r.down(tcp(
        srv,
        CORE_MAC,
        WEB[0],
        8080,
        GW_CORE,
        1024,
        64,
        9,
        "SA",
        2,
        &[],
    ));
    r.up(tcp(
        s, ACC_MAC, SUB, 40001, VIP, 80, 64, 2, "PA", 10, &[7; 100],
    ));
    r.down(tcp(
        srv, CORE_MAC, WEB[0], 8080, GW_CORE, 1024, 64, 10, "PA", 102, &[8; 1000],
    ));
    r.at(SEC);
    r.up(tcp(
        s,
        ACC_MAC,
        SUB,
        40001,
        VIP,
        80,
        64,
        102,
        "FA",
        1010,
        &[],
    ));
    r.down(tcp(
        srv,
        CORE_MAC,
        WEB[0],
        8080,
        GW_CORE,
        1024,
        64,
        1010,
        "FA",
        103,
        &[],
    ));
    r.up(tcp(
        s,
        ACC_MAC,
        SUB,
        40001,
        VIP,
        80,
        64,
        103,
        "A",
        1011,
        &[],
    ));
    assert!(
        r.records().is_empty(),
        "kept through the closing time for the last ACK"
    );
    r.at(SEC + 2 * SEC - 1);
    assert!(r.records().is_empty());
    r.at(3 * SEC);
    let rec = r.records()[0];
    assert_eq!(rec.close, FlowClose::Fin);
    assert_eq!((rec.up, rec.down), ((4, 40 * 3 + 140), (3, 40 * 2 + 1040)));
    assert_eq!(
        (rec.started, rec.ended),
        (Instant(1_000 * SEC), Instant(1_001 * SEC)),
        "from the SYN to the last ACK, not to the closing timer"
    );
    assert_eq!(
        (rec.subscriber, rec.vip, rec.server, rec.nat),
        ((SUB, 40001), (VIP, 80), (WEB[0], 8080), (GW_CORE, 1024))
    );

    // A reset ends it at once, and the port is free again.
    r.up(tcp(s, ACC_MAC, SUB, 40002, VIP, 80, 64, 1, "S", 0, &[]));
    r.down(tcp(
        server_mac(WEB[1]),
        CORE_MAC,
        WEB[1],
        8080,
        GW_CORE,
        1024,
        64,
        9,
        "R",
        0,
        &[],
    ));
    assert_eq!(r.records()[1].close, FlowClose::Rst);
    assert_eq!(r.worker.pipeline().flows.len(), 0);
    assert_eq!(r.counters().flows_closed, 2);
    r.check_balance();
}

#[test]
fn idle_flows_expire_at_their_exact_time() {
    let mut r = Rig::new();
    r.sub1();
    r.up(udp_ports(
        SUB_MAC, ACC_MAC, SUB, 6000, SRV, 7000, 64, b"plain",
    ));
    r.up(tcp(
        SUB_MAC,
        ACC_MAC,
        SUB,
        40001,
        VIP,
        80,
        64,
        1,
        "S",
        0,
        &[],
    ));
    // The SYN is never answered: 5 s.
    for t in [1, 2, 4] {
        r.at(t * SEC);
    }
    assert!(r.records().is_empty());
    r.at(6 * SEC);
    let rec = r.records()[0];
    assert_eq!(
        (rec.close, rec.ended),
        (FlowClose::Timeout, Instant(1_000 * SEC)),
        "closed at its deadline, and it ended with its last packet"
    );
    // A packet arriving after the deadline finds the flow gone and opens a new one.
    r.up(udp_ports(SUB_MAC, ACC_MAC, SUB, 5353, VIP, 53, 64, b"q"));
    r.down(udp_ports(
        server_mac(DNS[0]),
        CORE_MAC,
        DNS[0],
        53,
        GW_CORE,
        1024,
        64,
        b"a",
    ));
    assert_eq!(r.records().len(), 2);
}

#[test]
fn a_failed_server_gets_no_new_flows_and_its_flows_move() {
    let mut r = Rig::new();
    r.sub1();
    // An ICMP flow to the ping service (one server) and UDP flows to DNS, then the first
    // DNS server fails.
    let mut next = forwarding(services(), LbTable::default(), Unknown::Drop);
    let mut svcs = next.services.clone();
    svcs.update_server(S_DNS, 0, |s| s.up = false);
    next.services = svcs;
    r.publisher.publish(next);
    for _ in 0..3 {
        let out = r.up(udp_ports(SUB_MAC, ACC_MAC, SUB, 5353, VIP, 53, 64, b"q"));
        assert_eq!(
            &out[0][30..34],
            &DNS[1].octets(),
            "only the server that is up"
        );
    }
    // Every server down: dropped and counted.
    let mut next = forwarding(services(), LbTable::default(), Unknown::Drop);
    let mut svcs = next.services.clone();
    svcs.update_server(S_PING, 0, |s| s.up = false);
    next.services = svcs;
    r.publisher.publish(next);
    assert!(
        r.up(icmp_echo(SUB_MAC, ACC_MAC, SUB, VIP_PING, 64, 5, false))
            .is_empty()
    );
    assert_eq!(r.counters().dropped(DropReason::NoServerUp), 1);

    // A connection-type flow stuck to a server that goes down moves to another.
    let mut r = Rig::new();
    r.sub1();
    assert_eq!(first_server_of(&mut r, 40001, VIP, 80), Some(WEB[0]));
    let mut next = forwarding(services(), LbTable::default(), Unknown::Drop);
    let mut svcs = next.services.clone();
    svcs.update_server(S_WEB, 0, |s| s.up = false);
    next.services = svcs;
    r.publisher.publish(next);
    let out = r.up(tcp(
        SUB_MAC,
        ACC_MAC,
        SUB,
        40001,
        VIP,
        80,
        64,
        2,
        "A",
        1,
        &[],
    ));
    assert_eq!(&out[0][30..34], &WEB[1].octets(), "moved");
}

#[test]
fn flow_limits_are_counted_drops_and_events() {
    let limits = SubscriberLimits {
        flows: 4,
        flows_per_subscriber: 3,
        ..SubscriberLimits::default()
    };
    let mut r = Rig::with(services(), LbTable::default(), Unknown::Drop, limits);
    r.sub1();
    r.session(
        2,
        SUB2,
        Some(SUB2_MAC),
        Limits::default(),
        Bandwidth::default(),
        ServiceSet::ALL,
    );
    for i in 0..5 {
        r.up(tcp(
            SUB_MAC,
            ACC_MAC,
            SUB,
            41000 + i,
            VIP,
            80,
            64,
            1,
            "S",
            0,
            &[],
        ));
    }
    assert_eq!(r.counters().dropped(DropReason::FlowLimit), 2);
    r.up(tcp(SUB2_MAC, ACC_MAC, SUB2, 1, VIP, 80, 64, 1, "S", 0, &[]));
    r.up(tcp(SUB2_MAC, ACC_MAC, SUB2, 2, VIP, 80, 64, 1, "S", 0, &[]));
    assert_eq!(r.counters().dropped(DropReason::FlowTableFull), 1);
    let ev: Vec<_> = r
        .events
        .iter()
        .filter_map(|e| match e {
            Event::FlowLimit {
                session,
                table_full,
            } => Some((*session, *table_full)),
            _ => None,
        })
        .collect();
    assert_eq!(ev, vec![(1, false), (2, true)], "one event each, paced");
    r.check_balance();
}

// ---------------------------------------------------------------------------------------
// Disconnect checks

#[test]
fn idle_session_and_server_idle_end_at_the_exact_instant_once() {
    let mut r = Rig::new();
    let l = Limits {
        idle_timeout_ms: Some(10_000),
        idle_server: Some((SRV, 4_000)),
        ..Limits::default()
    };
    r.session(
        1,
        SUB,
        Some(SUB_MAC),
        l,
        Bandwidth::default(),
        ServiceSet::ALL,
    );
    r.at(2 * SEC);
    r.up(udp_ports(SUB_MAC, ACC_MAC, SUB, 1, SRV, 2, 64, b"x")); // to the server: both clocks
    r.at(5 * SEC);
    r.up(udp_ports(SUB_MAC, ACC_MAC, SUB, 1, RTR, 2, 64, b"x")); // elsewhere: only the idle clock
    r.at(6 * SEC - 1);
    assert!(r.closed().is_empty());
    r.at(6 * SEC + 500_000_000);
    let c = r.closed();
    assert_eq!(c.len(), 1);
    assert_eq!(
        (c[0].cause, c[0].stopped),
        (DisconnectCause::ServerIdleTimeout, Instant(1_006 * SEC))
    );
    r.at(60 * SEC);
    assert_eq!(r.closed().len(), 1, "once");

    // Plain idle: the deadline moves with every packet either way.
    let mut r = Rig::new();
    let l = Limits {
        idle_timeout_ms: Some(3_000),
        ..Limits::default()
    };
    r.session(
        1,
        SUB,
        Some(SUB_MAC),
        l,
        Bandwidth::default(),
        ServiceSet::ALL,
    );
    r.at(SEC);
    r.down(udp_ports(SRV_MAC, CORE_MAC, SRV, 2, SUB, 1, 64, b"x"));
    assert_eq!(
        r.worker.next_deadline(),
        Some(Instant(1_003 * SEC)),
        "a lower bound of the deadline"
    );
    r.at(4 * SEC - 1);
    assert!(r.closed().is_empty());
    // A packet exactly at the deadline finds the session closed.
    r.now = Instant(1_004 * SEC);
    assert!(
        r.up(udp_ports(SUB_MAC, ACC_MAC, SUB, 1, SRV, 2, 64, b"late"))
            .is_empty()
    );
    let c = r.closed();
    assert_eq!(
        (c[0].cause, c[0].stopped, c[0].counters.rx_packets),
        (DisconnectCause::IdleTimeout, Instant(1_004 * SEC), 1)
    );
    assert_eq!(r.counters().dropped(DropReason::UnknownSubscriber), 1);
}

#[test]
fn session_time_ends_a_busy_session() {
    let mut r = Rig::new();
    let l = Limits {
        session_timeout_ms: Some(2_500),
        idle_timeout_ms: Some(1_000),
        ..Limits::default()
    };
    r.session(
        1,
        SUB,
        Some(SUB_MAC),
        l,
        Bandwidth::default(),
        ServiceSet::ALL,
    );
    for k in 1..=10 {
        r.at(k * 250_000_000);
        if k * 250 < 2_500 {
            assert_eq!(
                r.up(udp_ports(SUB_MAC, ACC_MAC, SUB, 1, SRV, 2, 64, b"x"))
                    .len(),
                1,
                "k {k}"
            );
        }
    }
    let c = r.closed();
    assert_eq!(c.len(), 1);
    assert_eq!(
        (c[0].cause, c[0].stopped, c[0].counters.tx_packets),
        (
            DisconnectCause::SessionTimeout,
            Instant(1_000 * SEC + 2_500_000_000),
            9
        )
    );
}

#[test]
fn volume_limit_is_exact_at_the_boundary() {
    let mut r = Rig::new();
    let l = Limits {
        volume: VolumeLimit {
            total_bytes: Some(10 * 128),
            ..VolumeLimit::default()
        },
        ..Limits::default()
    };
    r.session(
        1,
        SUB,
        Some(SUB_MAC),
        l,
        Bandwidth::default(),
        ServiceSet::ALL,
    );
    let up = || udp_ports(SUB_MAC, ACC_MAC, SUB, 1, SRV, 2, 64, &[0; 100]); // 128 IP bytes
    let down = || udp_ports(SRV_MAC, CORE_MAC, SRV, 2, SUB, 1, 64, &[0; 100]);
    for i in 0..10 {
        let out = if i % 2 == 0 {
            r.up(up())
        } else {
            r.down(down())
        };
        assert_eq!(out.len(), 1, "packet {i} within the limit");
    }
    assert!(r.closed().is_empty(), "exactly at the limit");
    assert!(r.up(up()).is_empty(), "the 11th would exceed it");
    let c = r.closed();
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].cause, DisconnectCause::VolumeLimit);
    assert_eq!(c[0].counters.tx_bytes + c[0].counters.rx_bytes, 1280);
    assert_eq!(r.counters().dropped(DropReason::SessionLimit), 1);
}

#[test]
fn rate_ratio_over_a_window_ends_the_session() {
    let mut r = Rig::new();
    // 50 % of 1 Mbit/s over 100 ms = 6250 bytes per window.
    let l = Limits {
        rate: Some(RateLimit {
            percent: 50,
            path_bps: 1_000_000,
            window_ms: 100,
        }),
        ..Limits::default()
    };
    r.session(
        1,
        SUB,
        Some(SUB_MAC),
        l,
        Bandwidth::default(),
        ServiceSet::ALL,
    );
    let p = || udp_ports(SUB_MAC, ACC_MAC, SUB, 1, SRV, 2, 64, &[0; 972]); // 1000 bytes
    for w in 0..3u64 {
        for k in 0..6 {
            r.at(w * 100_000_000 + k * 1_000_000);
            assert_eq!(
                r.up(p()).len(),
                1,
                "window {w} packet {k}: 6000 bytes is under"
            );
        }
    }
    r.at(300_000_000);
    for _ in 0..6 {
        r.up(p());
    }
    assert_eq!(r.closed().len(), 0);
    assert!(r.up(p()).is_empty(), "7000 bytes in one window is over");
    assert_eq!(r.closed()[0].cause, DisconnectCause::RateExceeded);
}

// ---------------------------------------------------------------------------------------
// Policing

#[test]
fn policer_holds_the_declared_rate_within_two_percent_and_changes_live() {
    let mut r = Rig::new();
    let bw = Bandwidth {
        up_bps: 8_000_000,
        down_bps: 0,
    };
    r.session(
        1,
        SUB,
        Some(SUB_MAC),
        Limits::default(),
        bw,
        ServiceSet::ALL,
    );
    // 10 s of replay time, offered at twice the rate: 1000-byte packets every 0.5 ms.
    let p = udp_ports(SUB_MAC, ACC_MAC, SUB, 1, SRV, 2, 64, &[0; 972]);
    let mut passed = 0u64;
    for k in 0..20_000u64 {
        r.now = Instant(1_000 * SEC + k * 500_000);
        assert!(r.access.send(p.clone()));
        r.worker.poll(r.now);
        passed += r.core.drain().len() as u64;
    }
    let bytes = passed * 1000;
    let expect = 8_000_000 / 8 * 10;
    let err = (bytes as f64 - expect as f64).abs() / expect as f64;
    assert!(
        err < 0.02,
        "{bytes} bytes vs {expect}: {:.2} %",
        err * 100.0
    );
    assert_eq!(r.counters().dropped(DropReason::Policed), 20_000 - passed);

    // Halved live.
    r.command(Command::SessionUpdate {
        id: 1,
        update: SessionUpdate {
            bandwidth: Some(Bandwidth {
                up_bps: 4_000_000,
                down_bps: 0,
            }),
            ..SessionUpdate::default()
        },
    });
    let mut passed = 0u64;
    for k in 20_000..40_000u64 {
        r.now = Instant(1_000 * SEC + k * 500_000);
        assert!(r.access.send(p.clone()));
        r.worker.poll(r.now);
        passed += r.core.drain().len() as u64;
    }
    let expect = 4_000_000 / 8 * 10;
    let err = (passed as f64 * 1000.0 - expect as f64).abs() / expect as f64;
    assert!(err < 0.02, "{:.2} %", err * 100.0);
}

// ---------------------------------------------------------------------------------------
// Load balancing by source range

#[test]
fn lb_ranges_fail_over_without_touching_healthy_ranges() {
    let a = MacAddr([0x02, 0xaa, 0, 0, 0, 1]);
    let b = MacAddr([0x02, 0xaa, 0, 0, 0, 2]);
    let c = MacAddr([0x02, 0xaa, 0, 0, 0, 3]);
    let table = LbTable::new(vec![
        LbRange {
            first: Ipv4Addr::new(10, 10, 0, 0),
            last: Ipv4Addr::new(10, 10, 0, 11),
            targets: vec![LbTarget { mac: a, up: true }, LbTarget { mac: b, up: true }],
        },
        LbRange {
            first: Ipv4Addr::new(10, 10, 0, 12),
            last: Ipv4Addr::new(10, 10, 0, 20),
            targets: vec![LbTarget { mac: c, up: true }],
        },
    ])
    .unwrap();
    let mut r = Rig::with(
        services(),
        table.clone(),
        Unknown::Drop,
        SubscriberLimits::default(),
    );
    r.sub1();
    r.session(
        2,
        SUB2,
        Some(SUB2_MAC),
        Limits::default(),
        Bandwidth::default(),
        ServiceSet::ALL,
    );
    let dst_mac = |out: &[Vec<u8>]| MacAddr::from_bytes(&out[0][0..6]);
    let one = |r: &mut Rig| r.up(udp_ports(SUB_MAC, ACC_MAC, SUB, 1, SRV, 2, 64, b"x"));
    let two = |r: &mut Rig| r.up(udp_ports(SUB2_MAC, ACC_MAC, SUB2, 1, SRV, 2, 64, b"x"));
    assert_eq!(dst_mac(&one(&mut r)), a);
    assert_eq!(dst_mac(&two(&mut r)), c);
    let swap = |t: LbTable| forwarding(services(), t, Unknown::Drop);
    let t = table.with_state(a, false).unwrap();
    r.publisher.publish(swap(t.clone()));
    assert_eq!(dst_mac(&one(&mut r)), b, "the substitute");
    assert_eq!(dst_mac(&two(&mut r)), c, "the other range is untouched");
    let t = t.with_state(b, false).unwrap();
    r.publisher.publish(swap(t));
    assert!(one(&mut r).is_empty());
    assert_eq!(r.counters().dropped(DropReason::LbAllDown), 1);
    assert_eq!(dst_mac(&two(&mut r)), c);
    // Downlink is not balanced.
    assert_eq!(
        r.down(udp_ports(SRV_MAC, CORE_MAC, SRV, 2, SUB, 1, 64, b"y"))
            .len(),
        1
    );
}

// ---------------------------------------------------------------------------------------
// Exact counting at scale

#[test]
fn counters_are_exact_over_100k_packets_across_1k_sessions() {
    let limits = SubscriberLimits {
        sessions: 2048,
        ..SubscriberLimits::default()
    };
    let mut r = Rig::with(services(), LbTable::default(), Unknown::Drop, limits);
    let addr = |i: u32| Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 10, 0, 0)) + 16 + i);
    let mac = |i: u32| MacAddr([0x02, 0x11, 0, 0, (i >> 8) as u8, i as u8]);
    // The access subnet is a /24 in the rig: use a /16 rig for 1k subscribers.
    let fwd = ForwardingBuilder::new(
        SideConfig {
            mac: ACC_MAC,
            address: GW_ACC,
            prefix_len: 16,
        },
        SideConfig {
            mac: CORE_MAC,
            address: GW_CORE,
            prefix_len: 24,
        },
    )
    .services(Services::new(services()).unwrap())
    .unknown(Unknown::Drop)
    .build()
    .unwrap();
    r.publisher.publish(fwd);
    r.poll();
    for i in 0..1000 {
        r.session(
            10 + i,
            addr(i),
            Some(mac(i)),
            Limits::default(),
            Bandwidth::default(),
            ServiceSet::ALL,
        );
    }
    let mut want = vec![SessionCounters::default(); 1000];
    let mut x = 0x9e37_79b9u32;
    for k in 0..100_000u32 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let i = x % 1000;
        let len = (x >> 10) as usize % 1200;
        let frame = if k % 3 == 0 {
            want[i as usize].rx_packets += 1;
            want[i as usize].rx_bytes += 28 + len as u64;
            udp_ports(SRV_MAC, CORE_MAC, SRV, 53, addr(i), 5000, 64, &vec![0; len])
        } else {
            want[i as usize].tx_packets += 1;
            want[i as usize].tx_bytes += 28 + len as u64;
            udp_ports(mac(i), ACC_MAC, addr(i), 5000, SRV, 53, 64, &vec![0; len])
        };
        let peer = if k % 3 == 0 {
            &mut r.core
        } else {
            &mut r.access
        };
        assert!(peer.send(frame));
        if k % 64 == 63 {
            while r.worker.poll(r.now) > 0 {}
            r.access.drain();
            r.core.drain();
        }
    }
    r.poll();
    r.command(Command::ReportSessions { seq: 5 });
    for _ in 0..50 {
        r.poll();
    }
    let mut got = vec![SessionCounters::default(); 1000];
    let mut done = None;
    for e in &r.events {
        match e {
            Event::SessionCounters {
                id,
                seq: 5,
                counters,
                ..
            } => got[(*id - 10) as usize] = *counters,
            Event::SessionsReported { seq: 5, sessions } => done = Some(*sessions),
            _ => {}
        }
    }
    assert_eq!(done, Some(1000), "every session reported");
    assert_eq!(got, want, "packet for packet and byte for byte");
    let c = r.counters();
    assert_eq!(c.total_drops(), 0, "{:?}", c.drops);
    let sum: u64 = want.iter().map(|c| c.tx_packets + c.rx_packets).sum();
    assert_eq!(sum, 100_000);
    assert_eq!(c.forwarded, 100_000);
}

// ---------------------------------------------------------------------------------------
// Robustness

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    fn frame() -> impl Strategy<Value = (bool, Vec<u8>)> {
        let flags = prop_oneof![
            Just("S"),
            Just("SA"),
            Just("A"),
            Just("PA"),
            Just("FA"),
            Just("R"),
            Just("")
        ];
        let port = prop_oneof![Just(80u16), Just(53), Just(8443), Just(22), any::<u16>()];
        let valid = (
            any::<bool>(),
            flags,
            port,
            0usize..3,
            any::<u16>(),
            proptest::collection::vec(any::<u8>(), 0..80),
            0u8..3,
        )
            .prop_map(|(up, fl, dport, srv, sport, payload, kind)| {
                let (sport, nat) = (40000 + sport % 8, 1024 + sport % 8);
                if up {
                    let f = match kind {
                        0 => tcp(
                            SUB_MAC, ACC_MAC, SUB, sport, VIP, dport, 64, 1, fl, 1, &payload,
                        ),
                        1 => udp_ports(SUB_MAC, ACC_MAC, SUB, sport, VIP, dport, 64, &payload),
                        _ => icmp_echo(SUB_MAC, ACC_MAC, SUB, VIP_PING, 64, sport, false),
                    };
                    (true, f)
                } else {
                    let s = WEB[srv];
                    let f = match kind {
                        0 => tcp(
                            server_mac(s),
                            CORE_MAC,
                            s,
                            8080,
                            GW_CORE,
                            nat,
                            64,
                            1,
                            fl,
                            1,
                            &payload,
                        ),
                        1 => udp_ports(
                            server_mac(DNS[srv % 2]),
                            CORE_MAC,
                            DNS[srv % 2],
                            53,
                            GW_CORE,
                            nat,
                            64,
                            &payload,
                        ),
                        _ => icmp_echo(
                            server_mac(PING_SRV),
                            CORE_MAC,
                            PING_SRV,
                            GW_CORE,
                            64,
                            nat,
                            true,
                        ),
                    };
                    (false, f)
                }
            });
        let damaged =
            (valid.clone(), any::<usize>(), any::<u8>()).prop_map(|((s, mut f), i, b)| {
                let i = i % f.len();
                f[i] ^= b | 1;
                (s, f)
            });
        let noise = (
            any::<bool>(),
            proptest::collection::vec(any::<u8>(), 0..120),
        );
        prop_oneof![4 => valid, 2 => damaged, 1 => noise]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        /// Whatever subscribers and servers send, nothing panics, every packet is
        /// accounted for, no buffer leaks, and removing the session closes every flow.
        #[test]
        fn any_traffic_is_accounted_for(frames in proptest::collection::vec(frame(), 1..120), steps in proptest::collection::vec(0u64..3_000, 120)) {
            let mut r = Rig::new();
            r.session(1, SUB, Some(SUB_MAC), Limits { idle_timeout_ms: Some(20_000), ..Limits::default() },
                Bandwidth { up_bps: 2_000_000, down_bps: 0 }, ServiceSet::from_indexes([S_WEB, S_DNS, S_PING]));
            let mut t = 0;
            for ((up, f), dt) in frames.into_iter().zip(steps) {
                t += dt * 1_000_000;
                r.now = Instant(1_000 * SEC + t);
                if up { r.access.send(f); } else { r.core.send(f); }
                r.poll();
                r.access.drain();
                r.core.drain();
            }
            r.check_balance();
            let open = r.worker.pipeline().flows.len() as u64;
            let c = r.counters();
            prop_assert_eq!(c.flows_opened - c.flows_closed, open);
            r.command(Command::SessionRemove { id: 1, cause: DisconnectCause::AdminReset });
            r.poll();
            prop_assert_eq!(r.worker.pipeline().flows.len(), 0);
            let c = r.counters();
            prop_assert_eq!(c.flows_opened, c.flows_closed);
            prop_assert_eq!(r.records().len() as u64, c.flows_closed);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Hardening (issue 12)

/// `frame` (Ethernet + IPv4) with its IPv4 total length set to `total` and the header
/// checksum made right again: the bytes past `total` are cut, and the frame is padded
/// to Ethernet's minimum as a NIC would.
fn with_total_length(frame: &[u8], total: u16) -> Vec<u8> {
    let (mut h, _) = etherparse::Ipv4Header::from_slice(&frame[14..]).expect("an IPv4 header");
    h.total_len = total;
    h.header_checksum = h.calc_header_checksum();
    let mut out = frame[..14].to_vec();
    h.write(&mut out).expect("header writes");
    out.extend_from_slice(&frame[14 + h.header_len()..14 + total as usize]);
    out.resize(out.len().max(60), 0);
    out
}

#[test]
fn udp_to_a_vip_cut_short_by_its_total_length_is_a_counted_drop() {
    let mut r = Rig::new();
    r.sub1();
    let request = udp_ports(SUB_MAC, ACC_MAC, SUB, 5353, VIP, 53, 64, b"query");
    // Total length 24 and 27: four and seven bytes of an eight-byte UDP header.
    for total in [24, 27] {
        assert!(r.up(with_total_length(&request, total)).is_empty());
    }
    let c = r.counters();
    assert_eq!(c.dropped(DropReason::NatUnsupported), 2);
    assert_eq!(
        c.flows_opened, 0,
        "no flow for a datagram without its header"
    );
    assert_eq!(r.worker.pipeline().flows.len(), 0);
    assert_eq!(
        r.session_counters(1).tx_packets,
        0,
        "not the session's traffic"
    );

    // A whole header with no payload (total length 28) is a datagram like any other.
    let empty = udp_ports(SUB_MAC, ACC_MAC, SUB, 5353, VIP, 53, 64, b"");
    assert_eq!(
        r.up(empty),
        vec![udp_ports(
            CORE_MAC,
            server_mac(DNS[0]),
            GW_CORE,
            1024,
            DNS[0],
            53,
            63,
            b""
        )]
    );
    // The server's answer cut short the same way is dropped too; the flow still waits
    // for a real answer, which is translated back.
    let answer = udp_ports(
        server_mac(DNS[0]),
        CORE_MAC,
        DNS[0],
        53,
        GW_CORE,
        1024,
        64,
        b"answer",
    );
    assert!(r.down(with_total_length(&answer, 24)).is_empty());
    assert_eq!(r.counters().dropped(DropReason::NatUnsupported), 3);
    assert_eq!(
        r.down(answer),
        vec![udp_ports(
            ACC_MAC, SUB_MAC, VIP, 53, SUB, 5353, 63, b"answer"
        )]
    );
    let c = r.counters();
    assert_eq!((c.flows_opened, c.flows_closed), (1, 1));
    assert_eq!(c.total_drops(), 3);
    r.check_balance();
}

#[test]
fn a_servers_packets_after_its_flow_ended_are_nat_no_flow() {
    let mut r = Rig::new();
    r.sub1();
    // UDP: a per-packet service's answer ends its flow; the same answer again finds none
    // (and the flow table is empty then).
    let answer = udp_ports(
        server_mac(DNS[0]),
        CORE_MAC,
        DNS[0],
        53,
        GW_CORE,
        1024,
        64,
        b"a",
    );
    assert_eq!(
        r.up(udp_ports(SUB_MAC, ACC_MAC, SUB, 5353, VIP, 53, 64, b"q"))
            .len(),
        1
    );
    assert_eq!(r.down(answer.clone()).len(), 1);
    assert_eq!(r.worker.pipeline().flows.len(), 0);
    assert!(r.down(answer).is_empty());

    // TCP: a reset ends the flow; the server's next segment finds none.
    assert_eq!(
        r.up(tcp(
            SUB_MAC,
            ACC_MAC,
            SUB,
            40001,
            VIP,
            80,
            64,
            1,
            "S",
            0,
            &[]
        ))
        .len(),
        1
    );
    let from_web = |flags| {
        tcp(
            server_mac(WEB[0]),
            CORE_MAC,
            WEB[0],
            8080,
            GW_CORE,
            1024,
            64,
            9,
            flags,
            2,
            &[],
        )
    };
    assert_eq!(r.down(from_web("R")).len(), 1);
    assert!(r.down(from_web("A")).is_empty());

    // ICMP: an echo flow that timed out (10 s) and was swept; the late reply finds none.
    let reply = icmp_echo(
        server_mac(PING_SRV),
        CORE_MAC,
        PING_SRV,
        GW_CORE,
        64,
        1024,
        true,
    );
    assert_eq!(
        r.up(icmp_echo(SUB_MAC, ACC_MAC, SUB, VIP_PING, 64, 7, false))
            .len(),
        1
    );
    r.at(11 * SEC);
    r.at(12 * SEC);
    assert_eq!(r.worker.pipeline().flows.len(), 0, "swept");
    assert!(r.down(reply).is_empty());

    let c = r.counters();
    assert_eq!(c.dropped(DropReason::NatNoFlow), 3);
    assert_eq!(c.dropped(DropReason::LocalUnsupported), 0);

    // What is for the gateway itself stays so: an echo request to the core address is
    // answered, TCP to a port outside the NAT range is `local_unsupported`.
    let ping_gw = icmp_echo(SRV_MAC, CORE_MAC, SRV, GW_CORE, 64, 1500, false);
    assert!(r.core.send(ping_gw));
    r.poll();
    assert_eq!(
        r.core.drain(),
        vec![icmp_echo(CORE_MAC, SRV_MAC, GW_CORE, SRV, 64, 1500, true)]
    );
    assert!(
        r.down(tcp(
            SRV_MAC,
            CORE_MAC,
            SRV,
            5555,
            GW_CORE,
            22,
            64,
            1,
            "S",
            0,
            &[]
        ))
        .is_empty()
    );
    let c = r.counters();
    assert_eq!(c.dropped(DropReason::NatNoFlow), 3);
    assert_eq!(c.dropped(DropReason::LocalUnsupported), 1);
    assert_eq!(c.replied, 1);
    r.check_balance();
}

#[test]
fn a_service_choice_is_renewed_after_a_service_of_another_type() {
    let web = service(
        VIP,
        6,
        80,
        Policy::RoundRobin,
        SessionType::Service,
        &WEB.map(|a| (a, 8080)),
    );
    let mail = service(
        VIP,
        6,
        25,
        Policy::RoundRobin,
        SessionType::Connection,
        &WEB.map(|a| (a, 2525)),
    );
    let dns = service(
        VIP,
        17,
        53,
        Policy::RoundRobin,
        SessionType::Packet,
        &DNS.map(|a| (a, 53)),
    );
    let mut r = Rig::with(
        vec![web, mail, dns],
        LbTable::default(),
        Unknown::Drop,
        SubscriberLimits::default(),
    );
    r.sub1();
    let syn = |sport, dport| tcp(SUB_MAC, ACC_MAC, SUB, sport, VIP, dport, 64, 1, "S", 0, &[]);
    let to = |server: Ipv4Addr, port, nat_port, seq, flags| {
        tcp(
            CORE_MAC,
            server_mac(server),
            GW_CORE,
            nat_port,
            server,
            port,
            63,
            seq,
            flags,
            if flags == "S" { 0 } else { 1 },
            &[],
        )
    };
    assert_eq!(r.up(syn(44000, 80)), vec![to(WEB[0], 8080, 1024, 1, "S")]);
    assert_eq!(
        r.up(syn(44001, 80)),
        vec![to(WEB[0], 8080, 1025, 1, "S")],
        "sticky while the subscriber keeps to web"
    );
    // A connection-type service in between: web chooses again, then sticks again.
    assert_eq!(r.up(syn(44002, 25)), vec![to(WEB[0], 2525, 1026, 1, "S")]);
    assert_eq!(
        r.up(syn(44003, 80)),
        vec![to(WEB[1], 8080, 1027, 1, "S")],
        "chosen again after mail"
    );
    assert_eq!(r.up(syn(44004, 80)), vec![to(WEB[1], 8080, 1028, 1, "S")]);
    // A packet-type UDP request in between.
    assert_eq!(
        r.up(udp_ports(SUB_MAC, ACC_MAC, SUB, 5353, VIP, 53, 64, b"q")),
        vec![udp_ports(
            CORE_MAC,
            server_mac(DNS[0]),
            GW_CORE,
            1024,
            DNS[0],
            53,
            63,
            b"q"
        )]
    );
    assert_eq!(r.up(syn(44005, 80)), vec![to(WEB[2], 8080, 1029, 1, "S")]);
    // A later segment of the open mail connection is a use of mail too.
    assert_eq!(
        r.up(tcp(
            SUB_MAC,
            ACC_MAC,
            SUB,
            44002,
            VIP,
            25,
            64,
            2,
            "A",
            1,
            &[]
        )),
        vec![to(WEB[0], 2525, 1026, 2, "A")]
    );
    assert_eq!(r.up(syn(44006, 80)), vec![to(WEB[0], 8080, 1030, 1, "S")]);
    assert_eq!(r.counters().total_drops(), 0);
}

#[test]
fn nat_port_exhaustion_is_a_counted_drop_and_a_paced_event() {
    let fwd = forwarding_with_ports(services(), LbTable::default(), Unknown::Drop, (1024, 1025));
    let mut r = Rig::with_forwarding(fwd, SubscriberLimits::default());
    r.sub1();
    let request = |sport| udp_ports(SUB_MAC, ACC_MAC, SUB, sport, VIP, 53, 64, b"q");
    let exhausted = |r: &Rig| -> Vec<(u8, u64, Instant)> {
        r.events
            .iter()
            .filter_map(|e| match e {
                Event::NatPortsExhausted {
                    protocol,
                    drops,
                    at,
                } => Some((*protocol, *drops, *at)),
                _ => None,
            })
            .collect()
    };
    // Two ports: two requests wait for their answers, the third finds none.
    assert_eq!(r.up(request(5000)).len(), 1);
    assert_eq!(r.up(request(5001)).len(), 1);
    assert!(r.up(request(5002)).is_empty());
    let t0 = Instant(1_000 * SEC);
    assert_eq!(exhausted(&r), vec![(17, 1, t0)]);
    // More within the second: counted, no event.
    for sport in 5003..5010 {
        assert!(r.up(request(sport)).is_empty());
    }
    assert_eq!(exhausted(&r).len(), 1);
    // TCP has its own ports.
    assert_eq!(
        r.up(tcp(
            SUB_MAC,
            ACC_MAC,
            SUB,
            40001,
            VIP,
            80,
            64,
            1,
            "S",
            0,
            &[]
        )),
        vec![tcp(
            CORE_MAC,
            server_mac(WEB[0]),
            GW_CORE,
            1024,
            WEB[0],
            8080,
            63,
            1,
            "S",
            0,
            &[]
        )]
    );
    // A second later, still exhausted: one more event, with the drops so far.
    r.at(SEC);
    assert!(r.up(request(5010)).is_empty());
    assert_eq!(
        exhausted(&r),
        vec![(17, 1, t0), (17, 9, Instant(1_001 * SEC))]
    );
    // An answer frees a port; the next request takes it.
    assert_eq!(
        r.down(udp_ports(
            server_mac(DNS[0]),
            CORE_MAC,
            DNS[0],
            53,
            GW_CORE,
            1024,
            64,
            b"a"
        ))
        .len(),
        1
    );
    // (Round robin went on turning through the refused requests: 11 choices so far.)
    assert_eq!(
        r.up(request(5011)),
        vec![udp_ports(
            CORE_MAC,
            server_mac(DNS[1]),
            GW_CORE,
            1024,
            DNS[1],
            53,
            63,
            b"q"
        )]
    );
    let c = r.counters();
    assert_eq!(c.dropped(DropReason::NatNoPort), 9);
    assert_eq!(c.total_drops(), 9);
    assert_eq!(exhausted(&r).len(), 2);
    r.check_balance();
}

#[test]
fn flow_records_end_with_their_last_packet_however_they_close() {
    let mut r = Rig::new();
    r.sub1();
    let up = |sport, seq, flags: &str| {
        tcp(
            SUB_MAC,
            ACC_MAC,
            SUB,
            sport,
            VIP,
            80,
            64,
            seq,
            flags,
            1,
            &[],
        )
    };
    let down = |i: usize, nat_port, flags: &str| {
        tcp(
            server_mac(WEB[i]),
            CORE_MAC,
            WEB[i],
            8080,
            GW_CORE,
            nat_port,
            64,
            1,
            flags,
            2,
            &[],
        )
    };
    // Flow 1 closes with FINs both ways at 0.5 s: kept 2 s for the last ACK, recorded
    // as ended at its last packet.
    r.up(up(40001, 1, "S"));
    r.down(down(0, 1024, "SA"));
    r.at(SEC / 2);
    r.up(up(40001, 2, "FA"));
    r.down(down(0, 1024, "FA"));
    // Flow 2: a SYN at 0.5 s never answered (5 s timeout).
    r.up(up(40002, 1, "S"));
    // Flow 3: established at 1 s, still open when the session ends.
    r.at(SEC);
    r.up(up(40003, 1, "S"));
    r.down(down(2, 1026, "SA"));
    r.at(7 * SEC);
    r.command(Command::SessionRemove {
        id: 1,
        cause: DisconnectCause::AdminReset,
    });
    r.poll();
    let mut recs: Vec<_> = r
        .records()
        .iter()
        .map(|x| {
            (
                x.subscriber.1,
                x.close,
                x.started.0 - 1_000 * SEC,
                x.ended.0 - 1_000 * SEC,
            )
        })
        .collect();
    recs.sort_by_key(|x| x.0);
    assert_eq!(
        recs,
        vec![
            (40001, FlowClose::Fin, 0, SEC / 2),
            (40002, FlowClose::Timeout, SEC / 2, SEC / 2),
            (40003, FlowClose::SessionEnded, SEC, SEC),
        ]
    );
    // And at shutdown: a flow's end is its last packet, not the stopping instant.
    let mut r = Rig::new();
    r.sub1();
    r.up(up(40004, 1, "S"));
    r.at(3 * SEC);
    let done = r.worker.finish(Instant(1_004 * SEC));
    let mut events: Vec<Event> = done.events;
    while let Some(e) = r.ctl.events.pop() {
        events.push(e);
    }
    let rec = events
        .iter()
        .find_map(|e| match e {
            Event::FlowRecord(x) => Some(*x),
            _ => None,
        })
        .expect("a record at shutdown");
    assert_eq!(
        (rec.close, rec.started, rec.ended),
        (
            FlowClose::Shutdown,
            Instant(1_000 * SEC),
            Instant(1_000 * SEC)
        )
    );
}

#[test]
fn a_learnt_mac_is_told_to_the_control_plane_once() {
    let mut r = Rig::new();
    r.sub1();
    r.session(
        2,
        SUB2,
        None,
        Limits::default(),
        Bandwidth::default(),
        ServiceSet::ALL,
    );
    for _ in 0..3 {
        assert_eq!(
            r.up(udp_ports(SUB2_MAC, ACC_MAC, SUB2, 1, SRV, 2, 64, b"x"))
                .len(),
            1
        );
        assert_eq!(
            r.up(udp_ports(SUB_MAC, ACC_MAC, SUB, 1, SRV, 2, 64, b"x"))
                .len(),
            1
        );
    }
    let learnt: Vec<_> = r
        .events
        .iter()
        .filter_map(|e| match e {
            Event::SessionMac { id, mac } => Some((*id, *mac)),
            _ => None,
        })
        .collect();
    assert_eq!(
        learnt,
        vec![(2, SUB2_MAC)],
        "once, for the session installed without a MAC"
    );
}

/// `frame` (untagged Ethernet with IPv4) as a PPPoE session frame of session `id`.
fn in_pppoe(frame: &[u8], id: u16) -> Vec<u8> {
    let ip = &frame[14..];
    let mut f = frame[..12].to_vec();
    f.extend_from_slice(&[0x88, 0x64, 0x11, 0x00]);
    f.extend_from_slice(&id.to_be_bytes());
    f.extend_from_slice(&(ip.len() as u16 + 2).to_be_bytes());
    f.extend_from_slice(&[0x00, 0x21]);
    f.extend_from_slice(ip);
    f
}

#[test]
fn a_servers_answer_too_long_for_a_pppoe_line_gets_fragmentation_needed_as_sent() {
    use etherparse::icmpv4::DestUnreachableHeader;
    use etherparse::{EtherType, Ethernet2Header, Icmpv4Header, Icmpv4Type, IpNumber, Ipv4Header};
    let mut r = Rig::new();
    r.command(Command::SessionAdd(SessionSpec {
        id: 1,
        user: 1001,
        channel: 1,
        address: SUB,
        mac: Some(SUB_MAC),
        started: r.now,
        limits: Limits::default(),
        bandwidth: Bandwidth::default(),
        services: ServiceSet::ALL,
        max_flows: 0,
        access: AccessLine {
            encap: Encap::Pppoe { session: 7 },
            ..Default::default()
        },
    }));
    r.poll();
    let syn = tcp(SUB_MAC, ACC_MAC, SUB, 40001, VIP, 80, 64, 1000, "S", 0, &[]);
    assert_eq!(
        r.up(in_pppoe(&syn, 7)).len(),
        1,
        "to WEB[0] from GW_CORE:1024"
    );
    // The server's answer, 1493 bytes with DF (etherparse's default), to the NAT port.
    let seg = |len: usize| {
        tcp(
            server_mac(WEB[0]),
            CORE_MAC,
            WEB[0],
            8080,
            GW_CORE,
            1024,
            64,
            5000,
            "SA",
            1001,
            &vec![0x5a; len - 40],
        )
    };
    let big = seg(1493);
    assert!(r.down(big.clone()).is_empty());
    // Fragmentation-needed with MTU 1492 (no clamp: RFC 2516's), quoting the packet as
    // the server sent it (the NAT address and port, not the subscriber's).
    let quote = &big[14..14 + 28];
    let icmp = Icmpv4Header::with_checksum(
        Icmpv4Type::DestinationUnreachable(DestUnreachableHeader::FragmentationNeeded {
            next_hop_mtu: 1492,
        }),
        quote,
    );
    let mut ip =
        Ipv4Header::new(36, 64, IpNumber::ICMP, GW_CORE.octets(), WEB[0].octets()).unwrap();
    ip.dont_fragment = false;
    ip.header_checksum = ip.calc_header_checksum();
    let mut want = Ethernet2Header {
        source: CORE_MAC.0,
        destination: server_mac(WEB[0]).0,
        ether_type: EtherType::IPV4,
    }
    .to_bytes()
    .to_vec();
    want.extend_from_slice(&ip.to_bytes());
    want.extend_from_slice(&icmp.to_bytes());
    want.extend_from_slice(quote);
    assert_eq!(r.core.drain(), vec![want]);
    // 1492 bytes fit: translated and sent on in PPPoE.
    let out = r.down(seg(1492));
    assert_eq!(out.len(), 1);
    assert_eq!(
        (out[0].len(), &out[0][12..14]),
        (14 + 8 + 1492, &[0x88, 0x64][..])
    );
    let c = r.counters();
    assert_eq!(c.dropped(DropReason::PppoeTooBig), 1);
    assert_eq!((c.icmp_errors, c.forwarded), (1, 2));
    let s = r.session_counters(1);
    assert_eq!((s.rx_packets, s.rx_bytes), (1, 1492));
    r.check_balance();
}
