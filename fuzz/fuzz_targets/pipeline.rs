//! Any bytes, as a sequence of frames on either side, through the whole worker pipeline
//! (every wire parser and stage, the subscriber stage with sessions, services, NAT,
//! policing and checks included): no panic, and the worker's balance holds after every
//! poll.
//!
//! Input: records of `[side+time byte][len byte][len bytes of frame]`. Bit 0 of the first
//! byte picks the side; bit 1, on the access side, takes the bytes as an IPv4 packet and
//! puts it on the PPPoE QinQ line of session 3 (its client MAC, tags and PPPoE session
//! id: the PPPoE decapsulation, anti-spoofing and MSS clamping paths, and session 3's
//! encapsulated downlink); the rest advance the clock by that many milliseconds, so flows
//! open, time out and sessions hit their checks. Session 4 is tagged IPoE (one C-VLAN),
//! reached by raw frames. IPv6 is on: sessions 1, 2 and 4 have /64s
//! (2001:db8:1:N::/64; session 3, PPPoE, is refused one), so raw IPv6 frames reach the
//! IPv6 stage's parse, punts, RA guard, forwarding and Time Exceeded.
#![no_main]

use std::net::Ipv4Addr;

use libfuzzer_sys::fuzz_target;
use tollgate_dataplane::nat::{NatConfig, Timeouts};
use tollgate_dataplane::port::memory::MemoryPort;
use tollgate_dataplane::service::{Policy, RealServer, Service, Services, SessionType};
use tollgate_dataplane::session::{
    AccessLine, Bandwidth, Encap, Limits, ServiceSet, SessionSpec, VlanTag, Vlans, VolumeLimit,
};
use tollgate_dataplane::snapshot::Publisher;
use tollgate_dataplane::time::Instant;
use tollgate_dataplane::{
    Command, ForwardingBuilder, HeapPool, Ipv6Forwarding, MacAddr, Route, SideConfig, Worker, WorkerConfig,
    worker_rings,
};

const VIP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 10);

fn service(protocol: u8, port: u16, policy: Policy, session_type: SessionType, n: u8) -> Service {
    Service {
        vip: VIP,
        protocol,
        port,
        policy,
        session_type,
        servers: (0..n).map(|i| RealServer::new(Ipv4Addr::new(192, 0, 2, 20 + i), 8080)).collect(),
    }
}

fuzz_target!(|data: &[u8]| {
    let services = Services::new(vec![
        service(6, 80, Policy::RoundRobin, SessionType::Connection, 3),
        service(17, 53, Policy::LeastConnections, SessionType::Packet, 2),
        service(1, 0, Policy::Priority, SessionType::Login, 2),
        service(6, 8443, Policy::WeightedRoundRobin, SessionType::Service, 2),
    ])
    .expect("valid services");
    let fwd = ForwardingBuilder::new(
        SideConfig { mac: MacAddr([2, 0, 0, 0, 0, 1]), address: Ipv4Addr::new(10, 10, 0, 1), prefix_len: 24 },
        SideConfig { mac: MacAddr([2, 0, 0, 0, 0, 2]), address: Ipv4Addr::new(192, 0, 2, 1), prefix_len: 24 },
    )
    .route(Route { prefix: Ipv4Addr::new(0, 0, 0, 0), len: 0, via: Ipv4Addr::new(192, 0, 2, 254) })
    .services(services)
    .nat(NatConfig {
        addresses: vec![Ipv4Addr::new(192, 0, 2, 1)],
        ports: (1024, 1100),
        timeouts: Timeouts {
            tcp_syn_ms: 50,
            tcp_established_ms: 500,
            tcp_fin_ms: 100,
            tcp_closing_ms: 20,
            udp_ms: 100,
            icmp_ms: 100,
        },
    })
    .ipv6(Ipv6Forwarding {
        on: true,
        addresses: vec!["fe80::ff:fe00:1".parse().expect("address"), "2001:db8:ff::1".parse().expect("address")],
        next_hop: Some("2001:db8:ff::fe".parse().expect("address")),
        next_hop_mac: Some(MacAddr([2, 9, 9, 9, 9, 0xfe])),
        error_sources: [Some("fe80::ff:fe00:1".parse().expect("address")), Some("2001:db8:ff::1".parse().expect("address"))],
    })
    .build()
    .expect("valid table");
    let publisher = Publisher::new(fwd);
    let (w, mut ctl) = worker_rings(Default::default());
    let (a, mut access) = MemoryPort::with_peer(8);
    let (c, mut core) = MemoryPort::with_peer(8);
    let mut worker = Worker::new(WorkerConfig::default(), a, c, HeapPool::new(256), publisher.reader(), w);
    let mut now = Instant(1_000_000_000);
    let _ = ctl.commands.push(Command::NeighborSet { ip: Ipv4Addr::new(192, 0, 2, 10), mac: MacAddr([2, 9, 9, 9, 9, 9]) });
    for i in 0..4u8 {
        let _ = ctl.commands.push(Command::NeighborSet {
            ip: Ipv4Addr::new(192, 0, 2, 20 + i),
            mac: MacAddr([2, 9, 9, 9, 9, 0x20 + i]),
        });
    }
    // One subscriber with a known MAC and tight limits, one that learns its MAC.
    let _ = ctl.commands.push(Command::SessionAdd(SessionSpec {
        id: 1,
        user: 1,
        channel: 1,
        address: Ipv4Addr::new(10, 10, 0, 11),
        mac: Some(MacAddr([2, 0x10, 0, 0, 0, 0x11])),
        started: now,
        limits: Limits {
            idle_timeout_ms: Some(300),
            volume: VolumeLimit { total_bytes: Some(20_000), ..VolumeLimit::default() },
            ..Limits::default()
        },
        bandwidth: Bandwidth { up_bps: 1_000_000, down_bps: 2_000_000 },
        services: ServiceSet::from_indexes([0, 1, 2]),
        max_flows: 4,
        access: Default::default(),
    }));
    let _ = ctl.commands.push(Command::SessionAdd(SessionSpec {
        id: 2,
        user: 2,
        channel: 2,
        address: Ipv4Addr::new(10, 10, 0, 12),
        mac: None,
        started: now,
        limits: Limits::default(),
        bandwidth: Bandwidth::default(),
        services: ServiceSet::ALL,
        max_flows: 0,
        access: Default::default(),
    }));
    // A PPPoE subscriber over QinQ with an MSS clamp, and a tagged IPoE one.
    let pppoe_mac = MacAddr([2, 0x10, 0, 0, 0, 0x13]);
    let qinq = Vlans {
        outer: Some(VlanTag { tpid: 0x88a8, vid: 100 }),
        inner: Some(VlanTag { tpid: 0x8100, vid: 7 }),
    };
    let _ = ctl.commands.push(Command::SessionAdd(SessionSpec {
        id: 3,
        user: 3,
        channel: 3,
        address: Ipv4Addr::new(10, 10, 0, 13),
        mac: Some(pppoe_mac),
        started: now,
        limits: Limits::default(),
        bandwidth: Bandwidth::default(),
        services: ServiceSet::ALL,
        max_flows: 0,
        access: AccessLine { vlans: qinq, encap: Encap::Pppoe { session: 0x42 }, mss_clamp: 1452 },
    }));
    let _ = ctl.commands.push(Command::SessionAdd(SessionSpec {
        id: 4,
        user: 4,
        channel: 4,
        address: Ipv4Addr::new(10, 10, 0, 14),
        mac: Some(MacAddr([2, 0x10, 0, 0, 0, 0x14])),
        started: now,
        limits: Limits::default(),
        bandwidth: Bandwidth::default(),
        services: ServiceSet::ALL,
        max_flows: 0,
        access: AccessLine {
            vlans: Vlans { outer: Some(VlanTag { tpid: 0x8100, vid: 9 }), inner: None },
            ..AccessLine::default()
        },
    }));
    for id in [1u32, 2, 3, 4] {
        let prefix = Some(0x2001_0db8_0001_0000 | u64::from(id));
        let _ = ctl.commands.push(Command::SessionPrefix6 { id, prefix });
    }
    worker.poll(now);

    let mut rest = data;
    while let [head, len, tail @ ..] = rest {
        let n = (*len as usize).min(tail.len());
        let (frame, next) = tail.split_at(n);
        rest = next;
        now = now.add_ms((head >> 2) as u64);
        if head & 3 == 2 {
            // Session 3's line around the bytes, the PPPoE length as the IPv4 packet says.
            let ip_len = frame.get(2..4).map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
            let mut f = vec![2, 0, 0, 0, 0, 1];
            f.extend_from_slice(&pppoe_mac.0);
            f.extend_from_slice(&[0x88, 0xa8, 0x00, 100, 0x81, 0x00, 0x00, 7]);
            f.extend_from_slice(&[0x88, 0x64, 0x11, 0x00, 0x00, 0x42]);
            f.extend_from_slice(&ip_len.wrapping_add(2).to_be_bytes());
            f.extend_from_slice(&[0x00, 0x21]);
            f.extend_from_slice(frame);
            access.send(f);
        } else if head & 1 == 0 {
            access.send(frame.to_vec());
        } else {
            core.send(frame.to_vec());
        }
        worker.poll(now);
        let _ = access.drain();
        let _ = core.drain();
        while ctl.events.pop().is_some() {}
        let held = worker.held() as u64;
        let (i, o) = worker.report(0, now).counters.balance(held);
        assert_eq!(i, o);
    }
});
