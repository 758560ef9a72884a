//! IPv6 through one worker on memory ports (V6-1): frames built with etherparse (and by
//! hand where a header must be wrong), what comes out on the ports or up the punt ring
//! compared byte for byte, counters exact. The punt path for neighbour discovery and
//! DHCPv6, the RA guard, each malformed case's drop, and the forwarding of a session's
//! /64 both ways on untagged and tagged lines, with anti-spoofing.

use std::net::Ipv6Addr;

use etherparse::{Icmpv6Type, PacketBuilder, icmpv6::TimeExceededCode};
use tollgate_dataplane::msg::ControlEnds;
use tollgate_dataplane::port::memory::{MemoryPeer, MemoryPort};
use tollgate_dataplane::session::{
    AccessLine, Encap, SessionCounters, SessionSpec, VlanTag, Vlans,
};
use tollgate_dataplane::snapshot::Publisher;
use tollgate_dataplane::table::route6::{Route6, Routes6, Target6};
use tollgate_dataplane::time::Instant;
use tollgate_dataplane::{
    Command, DropReason, Event, ForwardingBuilder, HeapPool, Ipv6Forwarding, MacAddr, RingSizes,
    Side, SideConfig, Worker, WorkerConfig, WorkerCounters, worker_rings,
};
use tollgate_testkit::lab::*;

const POOL: usize = 256;

/// The subscriber's /64 and its SLAAC address in it.
const PREFIX: u64 = 0x2001_0db8_0001_0001;
const SUB6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 1, 0, 0, 0, 0x11);
const SUB6_LL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0x11);
/// A server beyond the core side's IPv6 next hop.
const SRV6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xff, 0, 0, 0, 0, 0x10);
const GW6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xff, 0, 0, 0, 0, 1);
/// The gateway's access link-local address (the source of its errors there).
const GW_LL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0xff, 0xfe00, 1);
const RTR6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xff, 0, 0, 0, 0, 0xfe);
const ALL_ROUTERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2);
const OTHER_MAC: MacAddr = MacAddr([0x02, 0x10, 0, 0, 0, 0x99]);

struct Rig {
    worker: Worker<MemoryPort>,
    access: MemoryPeer,
    core: MemoryPeer,
    ctl: ControlEnds,
    now: Instant,
    _publisher: Publisher<tollgate_dataplane::Forwarding>,
}

impl Rig {
    fn new(v6: Ipv6Forwarding) -> Rig {
        Rig::with_routes(v6, Routes6::default())
    }

    /// A worker whose snapshot has IPv6 `routes`; [`publish_routes`](Rig::publish_routes)
    /// changes them.
    fn with_routes(v6: Ipv6Forwarding, routes: Routes6) -> Rig {
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
        .ipv6(v6)
        .routes6(routes)
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
        Rig {
            worker,
            access,
            core,
            ctl,
            now: Instant(1_000_000_000),
            _publisher: publisher,
        }
    }

    fn on() -> Rig {
        Rig::new(Ipv6Forwarding {
            on: true,
            addresses: vec![GW6],
            next_hop: Some(RTR6),
            next_hop_mac: Some(RTR_MAC),
            error_sources: [Some(GW_LL), Some(GW6)],
        })
    }

    /// Publishes the snapshot again with `routes` (what the control plane does when it
    /// learns a neighbour).
    fn publish_routes(&mut self, routes: Routes6) {
        let mut next = (*self._publisher.current()).clone();
        next.routes6 = routes;
        self._publisher.publish(next);
        self.worker.poll(self.now);
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

    fn punted(&mut self) -> Vec<(Side, Vec<u8>)> {
        std::iter::from_fn(|| self.ctl.punt.pop())
            .map(|f| (f.side, f.bytes().to_vec()))
            .collect()
    }

    /// An IPoE session for SUB/SUB_MAC on `tags`, with the /64 PREFIX.
    fn install(&mut self, id: u32, tags: &[(u16, u16)]) {
        let tag = |i: usize| tags.get(i).map(|&(tpid, vid)| VlanTag { tpid, vid });
        self.command(Command::SessionAdd(SessionSpec {
            id,
            user: 1000,
            channel: id,
            address: SUB,
            mac: Some(SUB_MAC),
            started: self.now,
            limits: Default::default(),
            bandwidth: Default::default(),
            services: Default::default(),
            max_flows: 0,
            access: AccessLine {
                vlans: Vlans {
                    outer: tag(0),
                    inner: tag(1),
                },
                encap: Encap::Ipoe,
                mss_clamp: 0,
            },
        }));
        self.command(Command::SessionPrefix6 {
            id,
            prefix: Some(PREFIX),
        });
    }

    fn session_counters(&mut self, id: u32) -> SessionCounters {
        self.counters_by_family(id).0
    }

    /// A session's counters (both families) and their IPv6 share.
    fn counters_by_family(&mut self, id: u32) -> (SessionCounters, Option<SessionCounters>) {
        self.command(Command::SessionQuery { id, seq: 77 });
        std::iter::from_fn(|| self.ctl.events.pop())
            .find_map(|e| match e {
                Event::SessionCounters {
                    id: i,
                    seq: 77,
                    counters,
                    ipv6,
                    ..
                } if i == id => Some((counters, ipv6)),
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

/// Every drop counter that is not zero, by reason.
fn drops(c: &WorkerCounters) -> Vec<(DropReason, u64)> {
    DropReason::ALL
        .iter()
        .map(|r| (*r, c.dropped(*r)))
        .filter(|(_, n)| *n != 0)
        .collect()
}

/// An ICMPv6 ND message of `ty` (body `body` after the 4-byte header), hop limit 255.
fn icmp6(
    src_mac: MacAddr,
    dst_mac: MacAddr,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    ty: u8,
    body: &[u8],
) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(src_mac.0, dst_mac.0)
        .ipv6(src.octets(), dst.octets(), 255)
        .icmpv6(Icmpv6Type::Unknown {
            type_u8: ty,
            code_u8: 0,
            bytes5to8: [0; 4],
        });
    let mut f = Vec::new();
    b.write(&mut f, body).unwrap();
    f
}

/// UDP over IPv6 from `src` to `dst` with hop limit `hl`, between the two MACs, on `tags`.
#[allow(clippy::too_many_arguments)]
fn udp6(
    src_mac: MacAddr,
    dst_mac: MacAddr,
    tags: &[u16],
    src: Ipv6Addr,
    dst: Ipv6Addr,
    hl: u8,
    ports: (u16, u16),
    payload: &[u8],
) -> Vec<u8> {
    let mut f = Vec::new();
    match tags {
        [] => PacketBuilder::ethernet2(src_mac.0, dst_mac.0)
            .ipv6(src.octets(), dst.octets(), hl)
            .udp(ports.0, ports.1)
            .write(&mut f, payload)
            .unwrap(),
        [vid] => PacketBuilder::ethernet2(src_mac.0, dst_mac.0)
            .single_vlan((*vid).try_into().unwrap())
            .ipv6(src.octets(), dst.octets(), hl)
            .udp(ports.0, ports.1)
            .write(&mut f, payload)
            .unwrap(),
        _ => unreachable!(),
    }
    f
}

#[test]
fn ipv6_is_unsupported_while_off() {
    let mut r = Rig::new(Ipv6Forwarding::default());
    let f = icmp6(
        SUB_MAC,
        MacAddr([0x33, 0x33, 0, 0, 0, 2]),
        SUB6_LL,
        ALL_ROUTERS,
        133,
        &[],
    );
    r.send(Side::Access, &f);
    r.send(
        Side::Core,
        &udp6(RTR_MAC, CORE_MAC, &[], SRV6, SUB6, 64, (1, 2), b"x"),
    );
    let c = r.counters();
    assert_eq!(drops(&c), vec![(DropReason::UnsupportedEthertype, 2)]);
    assert!(r.punted().is_empty());
    r.check_balance();
}

#[test]
fn neighbour_discovery_and_dhcpv6_are_punted_and_ras_guarded() {
    let mut r = Rig::on();
    let snm = MacAddr([0x33, 0x33, 0xff, 0, 0, 1]);
    let rs = icmp6(
        SUB_MAC,
        MacAddr([0x33, 0x33, 0, 0, 0, 2]),
        SUB6_LL,
        ALL_ROUTERS,
        133,
        &[],
    );
    let mut target = GW6.octets().to_vec();
    let ns = icmp6(SUB_MAC, snm, SUB6_LL, GW6, 135, &target);
    let na = icmp6(SUB_MAC, ACC_MAC, SUB6_LL, GW6, 136, &target);
    let ra = icmp6(
        SUB_MAC,
        MacAddr([0x33, 0x33, 0, 0, 0, 1]),
        SUB6_LL,
        "ff02::1".parse().unwrap(),
        134,
        &[0; 8],
    );
    target.extend_from_slice(&SRV6.octets());
    let redirect = icmp6(SUB_MAC, ACC_MAC, SUB6_LL, GW6, 137, &target);
    // A DHCPv6 SOLICIT (message type 1, transaction id) to All_DHCP_Relay_Agents_and_Servers.
    let solicit = udp6(
        SUB_MAC,
        MacAddr([0x33, 0x33, 0, 1, 0, 2]),
        &[],
        SUB6_LL,
        "ff02::1:2".parse().unwrap(),
        1,
        (546, 547),
        &[1, 0xab, 0xcd, 0xef],
    );
    // The same RS on a C-tagged line: punted whole, tag and all.
    let mut tagged_rs = rs[..12].to_vec();
    tagged_rs.extend_from_slice(&[0x81, 0x00, 0x00, 0x07]);
    tagged_rs.extend_from_slice(&rs[12..]);
    // From the core side, an NS for the gateway's address is punted too.
    let core_ns = icmp6(RTR_MAC, CORE_MAC, RTR6, GW6, 135, &GW6.octets());
    for f in [&rs, &ns, &na, &ra, &redirect, &solicit, &tagged_rs] {
        r.send(Side::Access, f);
    }
    r.send(Side::Core, &core_ns);
    let punted = r.punted();
    assert_eq!(
        punted,
        vec![
            (Side::Access, rs.clone()),
            (Side::Access, ns),
            (Side::Access, na),
            (Side::Access, solicit),
            (Side::Access, tagged_rs),
            (Side::Core, core_ns),
        ]
    );
    let c = r.counters();
    assert_eq!((c.punted, c.ipv6_control), (6, 6));
    assert_eq!(drops(&c), vec![(DropReason::Ipv6RaGuard, 2)]);
    assert!(r.access.drain().is_empty() && r.core.drain().is_empty());
    r.check_balance();
}

#[test]
fn malformed_ipv6_is_dropped_by_name() {
    let mut r = Rig::on();
    r.install(1, &[]);
    let good = udp6(SUB_MAC, ACC_MAC, &[], SUB6, SRV6, 64, (1000, 53), b"abcd");
    let mut cases: Vec<(Vec<u8>, DropReason)> = Vec::new();
    // Cut inside the fixed header.
    cases.push((good[..14 + 39].to_vec(), DropReason::Ipv6Truncated));
    // A payload length past the frame.
    let mut f = good.clone();
    f[14 + 4..14 + 6].copy_from_slice(&200u16.to_be_bytes());
    cases.push((f, DropReason::Ipv6Truncated));
    // Version 4 in an IPv6 EtherType.
    let mut f = good.clone();
    f[14] = 0x40;
    cases.push((f, DropReason::Ipv6BadVersion));
    // Hop limit 1: it would reach zero here.
    cases.push((
        udp6(SUB_MAC, ACC_MAC, &[], SUB6, SRV6, 1, (1000, 53), b"abcd"),
        DropReason::Ipv6HopLimitExceeded,
    ));
    // Extension headers: `n` Destination Options (8 bytes each) before UDP, or a
    // fragment header.
    let with_ext = |n: usize, last: u8| {
        let mut f = good[..14 + 40].to_vec();
        let udp = &good[14 + 40..];
        f[14 + 6] = if n == 0 { last } else { 60 };
        for i in 0..n {
            let next = if i + 1 == n { last } else { 60 };
            f.extend_from_slice(&[next, 0, 1, 4, 0, 0, 0, 0]);
        }
        if last == 44 {
            f.extend_from_slice(&[17, 0, 0, 1, 0, 0, 0, 9]);
        }
        f.extend_from_slice(udp);
        let pl = (f.len() - 14 - 40) as u16;
        f[14 + 4..14 + 6].copy_from_slice(&pl.to_be_bytes());
        f
    };
    cases.push((with_ext(5, 17), DropReason::Ipv6ExtChainTooLong));
    cases.push((with_ext(0, 44), DropReason::Ipv6Fragment));
    cases.push((with_ext(2, 44), DropReason::Ipv6Fragment));
    // A Destination Options header that claims to run past the payload.
    let mut f = with_ext(1, 17);
    f[14 + 40 + 1] = 9;
    cases.push((f, DropReason::Ipv6Truncated));
    // Multicast source; link-local and multicast destinations; the gateway's own address.
    let bad = |src: &str, dst: &str| {
        udp6(
            SUB_MAC,
            ACC_MAC,
            &[],
            src.parse().unwrap(),
            dst.parse().unwrap(),
            64,
            (1, 2),
            b"x",
        )
    };
    cases.push((
        bad("ff02::1", "2001:db8:ff::10"),
        DropReason::Ipv6MartianSource,
    ));
    cases.push((bad("::", "2001:db8:ff::10"), DropReason::Ipv6MartianSource));
    cases.push((
        bad("2001:db8:1:1::11", "fe80::1"),
        DropReason::Ipv6NotForwarded,
    ));
    cases.push((
        bad("fe80::11", "2001:db8:ff::10"),
        DropReason::Ipv6NotForwarded,
    ));
    cases.push((
        bad("2001:db8:1:1::11", "ff0e::1"),
        DropReason::Ipv6NotForwarded,
    ));
    cases.push((
        bad("2001:db8:1:1::11", "2001:db8:ff::1"),
        DropReason::LocalUnsupported,
    ));
    for (f, reason) in &cases {
        let before = r.counters().dropped(*reason);
        r.send(Side::Access, f);
        assert_eq!(r.counters().dropped(*reason), before + 1, "{reason:?}");
    }
    // Each bad case counted once, nothing forwarded or punted; the session untouched.
    let c = r.counters();
    assert_eq!(
        drops(&c).iter().map(|d| d.1).sum::<u64>(),
        cases.len() as u64
    );
    assert!(r.core.drain().is_empty());
    assert!(r.punted().is_empty());
    assert_eq!(r.session_counters(1), SessionCounters::default());
    // The good packet itself goes through.
    r.send(Side::Access, &good);
    assert_eq!(r.core.drain().len(), 1);
    r.check_balance();
}

#[test]
fn a_session_s_64_is_forwarded_both_ways_with_exact_counters() {
    let mut r = Rig::on();
    r.install(1, &[]);
    let up = udp6(SUB_MAC, ACC_MAC, &[], SUB6, SRV6, 64, (40000, 53), b"query");
    r.send(Side::Access, &up);
    let out = r.core.drain();
    // Byte by byte: MACs rewritten toward the next hop, hop limit 63, the rest as sent.
    let want = udp6(
        CORE_MAC,
        RTR_MAC,
        &[],
        SUB6,
        SRV6,
        63,
        (40000, 53),
        b"query",
    );
    assert_eq!(out, vec![want]);
    let down = udp6(
        RTR_MAC,
        CORE_MAC,
        &[],
        SRV6,
        SUB6,
        60,
        (53, 40000),
        b"answer!",
    );
    r.send(Side::Core, &down);
    let want = udp6(
        ACC_MAC,
        SUB_MAC,
        &[],
        SRV6,
        SUB6,
        59,
        (53, 40000),
        b"answer!",
    );
    assert_eq!(r.access.drain(), vec![want]);
    // Both families in one session's counters; bytes are the IPv6 packet.
    let (up_len, down_len) = (40 + 8 + 5, 40 + 8 + 7);
    // And IPv4 of the same session adds to them.
    let mut v4 = Vec::new();
    PacketBuilder::ethernet2(SUB_MAC.0, ACC_MAC.0)
        .ipv4(SUB.octets(), SRV.octets(), 64)
        .udp(1, 2)
        .write(&mut v4, b"v4")
        .unwrap();
    r.command(Command::NeighborSet {
        ip: SRV,
        mac: SRV_MAC,
    });
    r.send(Side::Access, &v4);
    assert_eq!(r.core.drain().len(), 1);
    // The IPv6 share apart (issue 16), so IPv4 is the rest.
    assert_eq!(
        r.counters_by_family(1),
        (
            SessionCounters {
                tx_packets: 2,
                tx_bytes: up_len + 20 + 8 + 2,
                rx_packets: 1,
                rx_bytes: down_len,
            },
            Some(SessionCounters {
                tx_packets: 1,
                tx_bytes: up_len,
                rx_packets: 1,
                rx_bytes: down_len,
            })
        )
    );
    // A session without a /64 has no IPv6 share; a new session in the freed slot
    // starts from zero.
    r.command(Command::SessionRemove {
        id: 1,
        cause: tollgate_dataplane::session::DisconnectCause::UserRequest,
    });
    r.install(2, &[]);
    r.command(Command::SessionPrefix6 {
        id: 2,
        prefix: None,
    });
    r.send(Side::Access, &v4);
    assert_eq!(r.core.drain().len(), 1);
    let v4_only = SessionCounters {
        tx_packets: 1,
        tx_bytes: 20 + 8 + 2,
        ..Default::default()
    };
    assert_eq!(r.counters_by_family(2), (v4_only, None));
    let c = r.counters();
    assert_eq!(drops(&c), vec![]);
    r.check_balance();
}

#[test]
fn anti_spoofing_and_unknown_prefixes() {
    let mut r = Rig::on();
    r.install(1, &[]);
    // Another /64, the session's /64 from another MAC, and downlink to a /64 nobody holds.
    let other: Ipv6Addr = "2001:db8:1:2::11".parse().unwrap();
    r.send(
        Side::Access,
        &udp6(SUB_MAC, ACC_MAC, &[], other, SRV6, 64, (1, 2), b"x"),
    );
    r.send(
        Side::Access,
        &udp6(OTHER_MAC, ACC_MAC, &[], SUB6, SRV6, 64, (1, 2), b"x"),
    );
    // From the session's /64 but on a tagged line.
    r.send(
        Side::Access,
        &udp6(SUB_MAC, ACC_MAC, &[7], SUB6, SRV6, 64, (1, 2), b"x"),
    );
    r.send(
        Side::Core,
        &udp6(RTR_MAC, CORE_MAC, &[], SRV6, other, 64, (2, 1), b"x"),
    );
    let c = r.counters();
    assert_eq!(
        drops(&c),
        vec![
            (DropReason::VlanMismatch, 1),
            (DropReason::Ipv6SourceSpoofed, 2),
            (DropReason::Ipv6NoSession, 1)
        ]
    );
    // The /64 goes with its session.
    r.command(Command::SessionRemove {
        id: 1,
        cause: tollgate_dataplane::session::DisconnectCause::AdminReset,
    });
    r.send(
        Side::Core,
        &udp6(RTR_MAC, CORE_MAC, &[], SRV6, SUB6, 64, (2, 1), b"x"),
    );
    assert_eq!(r.counters().dropped(DropReason::Ipv6NoSession), 2);
    // Nothing reaches the access side; each downlink got a no-route error back
    // (`downlink_to_no_session_s_64_is_answered_with_no_route`).
    assert!(r.access.drain().is_empty());
    let back = r.core.drain();
    assert_eq!(back.len(), 2);
    assert!(back.iter().all(|f| f[14 + 40] == 1 && f[14 + 41] == 0));
    r.check_balance();
}

#[test]
fn uplink_waits_for_the_next_hop_mac() {
    let mut r = Rig::new(Ipv6Forwarding {
        on: true,
        addresses: vec![GW6],
        next_hop: Some(RTR6),
        next_hop_mac: None,
        error_sources: [None, None],
    });
    r.install(1, &[]);
    r.send(
        Side::Access,
        &udp6(SUB_MAC, ACC_MAC, &[], SUB6, SRV6, 64, (1, 2), b"x"),
    );
    assert_eq!(
        drops(&r.counters()),
        vec![(DropReason::Ipv6NextHopUnresolved, 1)]
    );
    assert_eq!(r.session_counters(1), SessionCounters::default());
    r.check_balance();
}

/// Issue 16 item 4: uplink IPv6 follows the longest IPv6 route: two prefixes through two
/// next hops, each frame byte for byte the subscriber's with the hop limit one less and
/// the MACs of its next hop; a connected host without a MAC is asked for (once a second)
/// and dropped until the snapshot has it; the rest goes to the default `next_hop`; and
/// without a default, to nowhere (`ipv6_no_route`).
#[test]
fn uplink_follows_the_longest_ipv6_route_to_its_next_hop_s_mac() {
    const R2: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 2);
    const R3: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xff, 0, 0, 0, 0, 3);
    const R2_MAC: MacAddr = MacAddr([0x02, 0xfe, 0, 0, 0, 2]);
    const R3_MAC: MacAddr = MacAddr([0x02, 0xfe, 0, 0, 0, 3]);
    const HOST_MAC: MacAddr = MacAddr([0x02, 0x5e, 0, 0, 0, 0x10]);
    let a = |s: &str| s.parse::<Ipv6Addr>().unwrap();
    let table = |neighbors: &[(Ipv6Addr, MacAddr)]| {
        let mut t = Routes6::new(&[
            Route6 {
                prefix: a("2001:db8:500::"),
                len: 48,
                target: Target6::Via(R2),
            },
            // Longer, inside the /48: through the other router.
            Route6 {
                prefix: a("2001:db8:500:7::"),
                len: 64,
                target: Target6::Via(R3),
            },
            Route6 {
                prefix: a("2001:db8:ff::"),
                len: 64,
                target: Target6::Connected,
            },
        ]);
        for (ip, mac) in neighbors {
            t.set_neighbor(*ip, Some(*mac));
        }
        t
    };
    let v6 = Ipv6Forwarding {
        on: true,
        addresses: vec![GW6],
        next_hop: Some(RTR6),
        next_hop_mac: Some(RTR_MAC),
        error_sources: [None, None],
    };
    let mut r = Rig::with_routes(v6.clone(), table(&[(R2, R2_MAC), (R3, R3_MAC)]));
    r.install(1, &[]);
    let up = |dst: Ipv6Addr| {
        udp6(
            SUB_MAC,
            ACC_MAC,
            &[],
            SUB6,
            dst,
            64,
            (5000, 53),
            b"route me",
        )
    };
    // What the next hop `mac` must get: the same frame, MACs rewritten, hop limit 63.
    let expect = |dst: Ipv6Addr, mac: MacAddr| {
        udp6(CORE_MAC, mac, &[], SUB6, dst, 63, (5000, 53), b"route me")
    };
    for (dst, mac) in [
        (a("2001:db8:500:1::9"), R2_MAC),
        (a("2001:db8:500:7::9"), R3_MAC),
        (a("2001:db8:500:8::9"), R2_MAC),
        (a("2001:db8:600::9"), RTR_MAC),
    ] {
        r.send(Side::Access, &up(dst));
        assert_eq!(r.core.drain(), vec![expect(dst, mac)], "to {dst}");
    }
    // A connected host: no MAC yet, asked for once (within the second), dropped.
    let host = a("2001:db8:ff::10");
    r.send(Side::Access, &up(host));
    r.send(Side::Access, &up(host));
    assert!(r.core.drain().is_empty());
    let asks: Vec<Event> = std::iter::from_fn(|| r.ctl.events.pop())
        .filter(|e| matches!(e, Event::Resolve6 { .. }))
        .collect();
    assert_eq!(asks, vec![Event::Resolve6 { ip: host }]);
    r.now = Instant(r.now.0 + 1_000_000_000);
    r.send(Side::Access, &up(host));
    let asks = std::iter::from_fn(|| r.ctl.events.pop())
        .filter(|e| matches!(e, Event::Resolve6 { .. }))
        .count();
    assert_eq!(asks, 1, "asked again a second later");
    // Resolved: the host gets its frames directly.
    r.publish_routes(table(&[(R2, R2_MAC), (R3, R3_MAC), (host, HOST_MAC)]));
    r.send(Side::Access, &up(host));
    assert_eq!(r.core.drain(), vec![expect(host, HOST_MAC)]);
    // A next hop whose MAC is not known (yet, or any more): dropped, nothing asked (the
    // control plane solicits routes' next hops by itself).
    r.publish_routes(table(&[(R3, R3_MAC), (host, HOST_MAC)]));
    r.send(Side::Access, &up(a("2001:db8:500:1::9")));
    assert!(r.core.drain().is_empty());
    assert_eq!(
        drops(&r.counters()),
        vec![(DropReason::Ipv6NextHopUnresolved, 4)]
    );
    let c = r.session_counters(1);
    assert_eq!(c.tx_packets, 5);
    assert!(
        !std::iter::from_fn(|| r.ctl.events.pop()).any(|e| matches!(e, Event::Resolve6 { .. }))
    );
    r.check_balance();

    // Without a default next hop, a destination no route holds goes nowhere.
    let mut r = Rig::with_routes(
        Ipv6Forwarding {
            next_hop: None,
            next_hop_mac: None,
            ..v6
        },
        table(&[(R2, R2_MAC)]),
    );
    r.install(1, &[]);
    r.send(Side::Access, &up(a("2001:db8:600::9")));
    r.send(Side::Access, &up(a("2001:db8:500:1::9")));
    assert_eq!(r.core.drain(), vec![expect(a("2001:db8:500:1::9"), R2_MAC)]);
    assert_eq!(drops(&r.counters()), vec![(DropReason::Ipv6NoRoute, 1)]);
    r.check_balance();
}

#[test]
fn a_tagged_line_s_ipv6_is_untagged_up_and_tagged_down() {
    let mut r = Rig::on();
    r.install(1, &[(0x8100, 7)]);
    r.send(
        Side::Access,
        &udp6(
            SUB_MAC,
            ACC_MAC,
            &[7],
            SUB6,
            SRV6,
            64,
            (40000, 53),
            b"query",
        ),
    );
    assert_eq!(
        r.core.drain(),
        vec![udp6(
            CORE_MAC,
            RTR_MAC,
            &[],
            SUB6,
            SRV6,
            63,
            (40000, 53),
            b"query"
        )]
    );
    r.send(
        Side::Core,
        &udp6(
            RTR_MAC,
            CORE_MAC,
            &[],
            SRV6,
            SUB6,
            64,
            (53, 40000),
            b"answer",
        ),
    );
    assert_eq!(
        r.access.drain(),
        vec![udp6(
            ACC_MAC,
            SUB_MAC,
            &[7],
            SRV6,
            SUB6,
            63,
            (53, 40000),
            b"answer"
        )]
    );
    assert_eq!(drops(&r.counters()), vec![]);
    assert_eq!(
        r.session_counters(1),
        SessionCounters {
            tx_packets: 1,
            tx_bytes: 40 + 8 + 5,
            rx_packets: 1,
            rx_bytes: 40 + 8 + 6,
        }
    );
    r.check_balance();
}

#[test]
fn an_expired_hop_limit_is_answered_with_time_exceeded() {
    let mut r = Rig::on();
    r.install(1, &[]);
    // Uplink: from the gateway's access link-local address back to the subscriber,
    // quoting the whole packet (it fits 1280 bytes).
    let up = udp6(
        SUB_MAC,
        ACC_MAC,
        &[],
        SUB6,
        SRV6,
        1,
        (40000, 33434),
        b"probe",
    );
    r.send(Side::Access, &up);
    let mut want = Vec::new();
    PacketBuilder::ethernet2(ACC_MAC.0, SUB_MAC.0)
        .ipv6(GW_LL.octets(), SUB6.octets(), 64)
        .icmpv6(Icmpv6Type::TimeExceeded(TimeExceededCode::HopLimitExceeded))
        .write(&mut want, &up[14..])
        .unwrap();
    assert_eq!(r.access.drain(), vec![want]);
    // Downlink: from the core address back to the sender through the router it came from.
    let down = udp6(
        RTR_MAC,
        CORE_MAC,
        &[],
        SRV6,
        SUB6,
        1,
        (53, 40000),
        &[7; 1300],
    );
    r.send(Side::Core, &down);
    let mut want = Vec::new();
    PacketBuilder::ethernet2(CORE_MAC.0, RTR_MAC.0)
        .ipv6(GW6.octets(), SRV6.octets(), 64)
        .icmpv6(Icmpv6Type::TimeExceeded(TimeExceededCode::HopLimitExceeded))
        // Cut to fit the minimum MTU: 1280 - 40 - 8 bytes of the packet.
        .write(&mut want, &down[14..14 + 1232])
        .unwrap();
    assert_eq!(r.core.drain(), vec![want]);
    // An ICMPv6 error is not answered with another.
    let mut err = Vec::new();
    PacketBuilder::ethernet2(SUB_MAC.0, ACC_MAC.0)
        .ipv6(SUB6.octets(), SRV6.octets(), 1)
        .icmpv6(Icmpv6Type::DestinationUnreachable(
            etherparse::icmpv6::DestUnreachableCode::Port,
        ))
        .write(&mut err, &[0; 48])
        .unwrap();
    r.send(Side::Access, &err);
    assert!(r.access.drain().is_empty());
    let c = r.counters();
    assert_eq!(drops(&c), vec![(DropReason::Ipv6HopLimitExceeded, 3)]);
    assert_eq!((c.icmp_errors, c.replied), (2, 2));
    assert_eq!(r.session_counters(1), SessionCounters::default());
    r.check_balance();
}

#[test]
fn time_exceeded_goes_back_on_the_tagged_line_it_came_from() {
    let mut r = Rig::on();
    r.install(1, &[(0x8100, 7)]);
    let up = udp6(
        SUB_MAC,
        ACC_MAC,
        &[7],
        SUB6,
        SRV6,
        1,
        (40000, 33434),
        b"probe",
    );
    r.send(Side::Access, &up);
    let mut want = Vec::new();
    PacketBuilder::ethernet2(ACC_MAC.0, SUB_MAC.0)
        .single_vlan(7u16.try_into().unwrap())
        .ipv6(GW_LL.octets(), SUB6.octets(), 64)
        .icmpv6(Icmpv6Type::TimeExceeded(TimeExceededCode::HopLimitExceeded))
        .write(&mut want, &up[18..])
        .unwrap();
    assert_eq!(r.access.drain(), vec![want]);
    let c = r.counters();
    assert_eq!(drops(&c), vec![(DropReason::Ipv6HopLimitExceeded, 1)]);
    assert_eq!(c.icmp_errors, 1);
    r.check_balance();
}

mod prop {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// Valid IPv6 frames of the session (untagged or tagged, either side) with bytes
        /// of the IPv6 header and what follows overwritten and the frame cut anywhere:
        /// never a panic, every frame accounted for (sent, replied, punted or a named
        /// drop), no buffer lost.
        #[test]
        fn mangled_ipv6_never_panics_and_balances(
            frames in proptest::collection::vec(
                (
                    any::<bool>(),
                    any::<bool>(),
                    proptest::collection::vec((0usize..120, any::<u8>()), 0..6),
                    0usize..200,
                ),
                1..24,
            )
        ) {
            let mut r = Rig::on();
            r.install(1, &[]);
            for (core, tagged, edits, cut) in frames {
                let tags: &[u16] = if tagged { &[7] } else { &[] };
                let mut f = if core {
                    udp6(RTR_MAC, CORE_MAC, tags, SRV6, SUB6, 64, (53, 1), b"answer")
                } else {
                    udp6(SUB_MAC, ACC_MAC, tags, SUB6, SRV6, 64, (1, 53), b"question")
                };
                let l3 = 14 + 4 * tags.len();
                for (at, b) in edits {
                    if let Some(x) = f.get_mut(l3 + at) {
                        *x = b;
                    }
                }
                f.truncate(cut.max(14));
                r.send(if core { Side::Core } else { Side::Access }, &f);
                let _ = (r.access.drain(), r.core.drain(), r.punted());
            }
            r.check_balance();
        }
    }
}

#[test]
fn downlink_to_no_session_s_64_is_answered_with_no_route() {
    let mut r = Rig::on();
    r.install(1, &[]);
    // A /64 nobody holds: Destination Unreachable, no route (code 0), from the core
    // address back through the router, quoting the packet.
    let nobody: Ipv6Addr = "2001:db8:1:2::11".parse().unwrap();
    let down = udp6(
        RTR_MAC,
        CORE_MAC,
        &[],
        SRV6,
        nobody,
        64,
        (53, 40000),
        b"lost",
    );
    r.send(Side::Core, &down);
    let mut want = Vec::new();
    PacketBuilder::ethernet2(CORE_MAC.0, RTR_MAC.0)
        .ipv6(GW6.octets(), SRV6.octets(), 64)
        .icmpv6(Icmpv6Type::DestinationUnreachable(
            etherparse::icmpv6::DestUnreachableCode::NoRoute,
        ))
        .write(&mut want, &down[14..])
        .unwrap();
    assert_eq!(r.core.drain(), vec![want]);
    // Not about an ICMPv6 error.
    let mut err = Vec::new();
    PacketBuilder::ethernet2(RTR_MAC.0, CORE_MAC.0)
        .ipv6(SRV6.octets(), nobody.octets(), 64)
        .icmpv6(Icmpv6Type::DestinationUnreachable(
            etherparse::icmpv6::DestUnreachableCode::Port,
        ))
        .write(&mut err, &[0; 48])
        .unwrap();
    r.send(Side::Core, &err);
    assert!(r.core.drain().is_empty());
    let c = r.counters();
    assert_eq!(drops(&c), vec![(DropReason::Ipv6NoSession, 2)]);
    assert_eq!((c.icmp_errors, c.replied, c.icmp_rate_limited), (1, 1, 0));
    r.check_balance();
}

#[test]
fn no_route_errors_share_the_icmp_error_bucket() {
    // 100 errors a second (the builder's default), as IPv4's: the 101st in the same
    // instant is a counted drop without an error.
    let mut r = Rig::on();
    let nobody: Ipv6Addr = "2001:db8:1:2::11".parse().unwrap();
    let down = udp6(RTR_MAC, CORE_MAC, &[], SRV6, nobody, 64, (53, 40000), b"x");
    for _ in 0..101 {
        r.send(Side::Core, &down);
    }
    assert_eq!(r.core.drain().len(), 100);
    let c = r.counters();
    assert_eq!(drops(&c), vec![(DropReason::Ipv6NoSession, 101)]);
    assert_eq!((c.icmp_errors, c.icmp_rate_limited), (100, 1));
    // A second later the bucket is full again.
    r.now = Instant(r.now.0 + 1_000_000_000);
    r.send(Side::Core, &down);
    assert_eq!(r.core.drain().len(), 1);
    r.check_balance();
}

/// An ICMPv6 echo request (or reply) from `src` to `dst` between the two MACs.
fn echo6(
    src_mac: MacAddr,
    dst_mac: MacAddr,
    (src, dst): (Ipv6Addr, Ipv6Addr),
    hl: u8,
    reply: bool,
    data: &[u8],
) -> Vec<u8> {
    let (id, seq) = (0x4242, 7);
    let t = if reply {
        Icmpv6Type::EchoReply(etherparse::IcmpEchoHeader { id, seq })
    } else {
        Icmpv6Type::EchoRequest(etherparse::IcmpEchoHeader { id, seq })
    };
    let mut f = Vec::new();
    PacketBuilder::ethernet2(src_mac.0, dst_mac.0)
        .ipv6(src.octets(), dst.octets(), hl)
        .icmpv6(t)
        .write(&mut f, data)
        .unwrap();
    f
}

#[test]
fn pings_to_the_gateway_s_ipv6_addresses_are_answered() {
    let mut r = Rig::on();
    r.install(1, &[]);
    // From a subscriber and from the core side, each answered on the side it came from.
    let data = b"abcdefghijklmnopqrstuvwxyz";
    let req = echo6(SUB_MAC, ACC_MAC, (SUB6, GW6), 64, false, data);
    r.send(Side::Access, &req);
    let want = echo6(ACC_MAC, SUB_MAC, (GW6, SUB6), 64, true, data);
    assert_eq!(r.access.drain(), vec![want]);
    let req = echo6(RTR_MAC, CORE_MAC, (SRV6, GW6), 3, false, &data[..3]);
    r.send(Side::Core, &req);
    let want = echo6(CORE_MAC, RTR_MAC, (GW6, SRV6), 64, true, &data[..3]);
    assert_eq!(r.core.drain(), vec![want]);
    // A request with a bad checksum, and other traffic to the gateway: dropped.
    let mut bad = echo6(SUB_MAC, ACC_MAC, (SUB6, GW6), 64, false, data);
    bad[14 + 40 + 2] ^= 0xff;
    r.send(Side::Access, &bad);
    r.send(
        Side::Access,
        &udp6(SUB_MAC, ACC_MAC, &[], SUB6, GW6, 64, (1, 2), b"x"),
    );
    assert!(r.access.drain().is_empty());
    let c = r.counters();
    assert_eq!(drops(&c), vec![(DropReason::LocalUnsupported, 2)]);
    assert_eq!((c.replied, c.icmp_errors), (2, 0));
    // The gateway's own traffic is not the session's.
    assert_eq!(r.session_counters(1), SessionCounters::default());
    r.check_balance();

    // Its link-local address, from a subscriber's link-local one (`ping fe80::...%if`).
    let mut r = Rig::new(Ipv6Forwarding {
        on: true,
        addresses: vec![GW_LL, GW6],
        next_hop: Some(RTR6),
        next_hop_mac: Some(RTR_MAC),
        error_sources: [Some(GW_LL), Some(GW6)],
    });
    let req = echo6(SUB_MAC, ACC_MAC, (SUB6_LL, GW_LL), 64, false, data);
    r.send(Side::Access, &req);
    let want = echo6(ACC_MAC, SUB_MAC, (GW_LL, SUB6_LL), 64, true, data);
    assert_eq!(r.access.drain(), vec![want]);
    // Another link-local destination is still not forwarded.
    let other_ll: Ipv6Addr = "fe80::99".parse().unwrap();
    r.send(
        Side::Access,
        &echo6(SUB_MAC, ACC_MAC, (SUB6_LL, other_ll), 64, false, data),
    );
    assert!(r.access.drain().is_empty() && r.core.drain().is_empty());
    let c = r.counters();
    assert_eq!(drops(&c), vec![(DropReason::Ipv6NotForwarded, 1)]);
    assert_eq!(c.replied, 1);
    r.check_balance();
}

/// A delegated prefix (DHCPv6 IA_PD, V6-1): packets from any /64 inside it are the
/// session's uplink (anti-spoofed by MAC like its /64), packets to it its downlink, in
/// the session's counters; the prefix goes with a command, and with its session; one
/// overlapping another session's is refused.
#[test]
fn a_delegated_prefix_is_forwarded_both_ways_with_exact_counters() {
    let mut r = Rig::on();
    r.install(1, &[]);
    // 2001:db8:200:100::/56 delegated; a host in its /64 number 0x42.
    const PD: u64 = 0x2001_0db8_0200_0100;
    let lan: Ipv6Addr = "2001:db8:200:142::7".parse().unwrap();
    let outside: Ipv6Addr = "2001:db8:200:200::7".parse().unwrap();
    // Before the delegation: not the session's.
    r.send(
        Side::Access,
        &udp6(SUB_MAC, ACC_MAC, &[], lan, SRV6, 64, (1, 2), b"x"),
    );
    assert_eq!(r.counters().dropped(DropReason::Ipv6SourceSpoofed), 1);
    // Host bits in the command are ignored (the prefix is normalised).
    r.command(Command::SessionDelegated6 {
        id: 1,
        prefix: Some((PD | 0xff, 56)),
    });
    let up = udp6(SUB_MAC, ACC_MAC, &[], lan, SRV6, 64, (40000, 53), b"query");
    r.send(Side::Access, &up);
    let want = udp6(CORE_MAC, RTR_MAC, &[], lan, SRV6, 63, (40000, 53), b"query");
    assert_eq!(r.core.drain(), vec![want]);
    let down = udp6(
        RTR_MAC,
        CORE_MAC,
        &[],
        SRV6,
        lan,
        60,
        (53, 40000),
        b"answer!",
    );
    r.send(Side::Core, &down);
    let want = udp6(
        ACC_MAC,
        SUB_MAC,
        &[],
        SRV6,
        lan,
        59,
        (53, 40000),
        b"answer!",
    );
    assert_eq!(r.access.drain(), vec![want]);
    // The session's own /64 still works beside it.
    r.send(
        Side::Access,
        &udp6(SUB_MAC, ACC_MAC, &[], SUB6, SRV6, 64, (1, 2), b"own"),
    );
    assert_eq!(r.core.drain().len(), 1);
    // Outside the /56, and inside it from another MAC: spoofed; to outside: no session.
    r.send(
        Side::Access,
        &udp6(SUB_MAC, ACC_MAC, &[], outside, SRV6, 64, (1, 2), b"x"),
    );
    r.send(
        Side::Access,
        &udp6(OTHER_MAC, ACC_MAC, &[], lan, SRV6, 64, (1, 2), b"x"),
    );
    r.send(
        Side::Core,
        &udp6(RTR_MAC, CORE_MAC, &[], SRV6, outside, 64, (2, 1), b"x"),
    );
    assert_eq!(
        r.session_counters(1),
        SessionCounters {
            tx_packets: 2,
            tx_bytes: (40 + 8 + 5) + (40 + 8 + 3),
            rx_packets: 1,
            rx_bytes: 40 + 8 + 7,
        }
    );
    assert_eq!(
        drops(&r.counters()),
        vec![
            (DropReason::Ipv6SourceSpoofed, 3),
            (DropReason::Ipv6NoSession, 1)
        ]
    );
    // A second session cannot take a prefix overlapping the first's (a /60 inside it):
    // its packets stay the first session's.
    r.command(Command::SessionAdd(SessionSpec {
        id: 2,
        user: 1001,
        channel: 2,
        address: "10.0.0.99".parse().unwrap(),
        mac: Some(OTHER_MAC),
        started: r.now,
        limits: Default::default(),
        bandwidth: Default::default(),
        services: Default::default(),
        max_flows: 0,
        access: AccessLine {
            vlans: Vlans::default(),
            encap: Encap::Ipoe,
            mss_clamp: 0,
        },
    }));
    r.command(Command::SessionDelegated6 {
        id: 2,
        prefix: Some((PD | 0x40, 60)),
    });
    r.send(Side::Core, &down);
    assert_eq!(r.access.drain().len(), 1);
    assert_eq!(r.session_counters(1).rx_packets, 2);
    // Taken away: the /56 is nobody's.
    r.command(Command::SessionDelegated6 {
        id: 1,
        prefix: None,
    });
    r.send(Side::Core, &down);
    r.send(Side::Access, &up);
    let c = r.counters();
    assert_eq!(c.dropped(DropReason::Ipv6NoSession), 2);
    assert_eq!(c.dropped(DropReason::Ipv6SourceSpoofed), 4);
    // Each downlink to a prefix nobody held (the one before the delegation and this
    // one) is answered with no route.
    assert_eq!(r.core.drain().len(), 2);
    // Delegated again, then the session goes: the prefix with it.
    r.command(Command::SessionDelegated6 {
        id: 1,
        prefix: Some((PD, 56)),
    });
    r.send(Side::Core, &down);
    assert_eq!(r.access.drain().len(), 1);
    r.command(Command::SessionRemove {
        id: 1,
        cause: tollgate_dataplane::session::DisconnectCause::AdminReset,
    });
    r.send(Side::Core, &down);
    assert_eq!(r.counters().dropped(DropReason::Ipv6NoSession), 3);
    assert_eq!(r.core.drain().len(), 1, "no route");
    assert!(r.access.drain().is_empty());
    r.check_balance();
}
