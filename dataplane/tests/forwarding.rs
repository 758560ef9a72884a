//! Byte-exact tests of the worker's forwarding path over memory ports: frames built with
//! etherparse go in, and what comes out is compared byte for byte with frames etherparse
//! builds for the expected result.

use std::net::Ipv4Addr;

use proptest::prelude::*;
use tollgate_dataplane::port::memory::{MemoryPeer, MemoryPort};
use tollgate_dataplane::snapshot::Publisher;
use tollgate_dataplane::time::Instant;
use tollgate_dataplane::{
    Command, ControlEnds, DropReason, Event, Forwarding, ForwardingBuilder, HeapPool, MacAddr,
    RingSizes, Route, Side, SideConfig, Worker, WorkerConfig, worker_rings,
};
use tollgate_testkit::frame::{ArpOperation, arp, echo, tcp_syn, time_exceeded, udp};
use tollgate_testkit::lab::*;

const POOL: usize = 512;

fn forwarding(core_mac: MacAddr) -> Forwarding {
    ForwardingBuilder::new(
        SideConfig {
            mac: ACC_MAC,
            address: GW_ACC,
            prefix_len: 24,
        },
        SideConfig {
            mac: core_mac,
            address: GW_CORE,
            prefix_len: 24,
        },
    )
    .route(Route {
        prefix: Ipv4Addr::new(198, 51, 100, 0),
        len: 24,
        via: RTR,
    })
    .icmp_errors_per_s(10)
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
}

impl Rig {
    fn new() -> Rig {
        Rig::with(WorkerConfig::default(), 1024)
    }

    fn with(cfg: WorkerConfig, port_ring: usize) -> Rig {
        let (a, access) = MemoryPort::with_peer(port_ring);
        let (c, core) = MemoryPort::with_peer(port_ring);
        let publisher = Publisher::new(forwarding(CORE_MAC));
        let (w, ctl) = worker_rings(RingSizes::default());
        let worker = Worker::new(cfg, a, c, HeapPool::new(POOL), publisher.reader(), w);
        Rig {
            worker,
            access,
            core,
            ctl,
            publisher,
            now: Instant(1_000_000_000),
        }
    }

    /// A rig whose neighbours are all known.
    fn resolved() -> Rig {
        let mut r = Rig::new();
        r.command(Command::NeighborSet {
            ip: SUB,
            mac: SUB_MAC,
        });
        r.command(Command::NeighborSet {
            ip: SRV,
            mac: SRV_MAC,
        });
        r.command(Command::NeighborSet {
            ip: RTR,
            mac: RTR_MAC,
        });
        r.poll();
        r
    }

    fn command(&mut self, c: Command) {
        self.ctl.commands.push(c).unwrap();
    }

    fn poll(&mut self) {
        self.worker.poll(self.now);
    }

    fn send(&mut self, side: Side, frame: Vec<u8>) {
        let peer = match side {
            Side::Access => &mut self.access,
            Side::Core => &mut self.core,
        };
        assert!(peer.send(frame));
        self.poll();
    }

    fn counters(&mut self) -> tollgate_dataplane::WorkerCounters {
        self.worker.report(0, self.now).counters
    }

    fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.ctl.events.pop()).collect()
    }

    /// The conservation law holds and no buffer leaked.
    fn check_balance(&mut self) {
        let held = self.worker.held() as u64;
        let c = self.counters();
        let (i, o) = c.balance(held);
        assert_eq!(i, o, "in {i} != out {o}: {c:?}");
        assert_eq!(
            self.worker.pool_available() + self.worker.held(),
            POOL,
            "buffers leaked"
        );
    }
}

#[test]
fn udp_uplink_is_forwarded_byte_exact() {
    let mut r = Rig::resolved();
    let payload = b"tollgate forwards this payload untouched";
    r.send(Side::Access, udp(SUB_MAC, ACC_MAC, SUB, SRV, 64, payload));
    let out = r.core.drain();
    assert_eq!(out.len(), 1);
    // The same packet, one hop later: MACs of the core side, TTL 63, checksum recomputed
    // from scratch by etherparse.
    assert_eq!(out[0], udp(CORE_MAC, SRV_MAC, SUB, SRV, 63, payload));
    assert!(r.access.drain().is_empty());
    let c = r.counters();
    assert_eq!(c.sides[Side::Access.idx()].rx_packets, 1);
    assert_eq!(c.sides[Side::Core.idx()].tx_packets, 1);
    assert_eq!(c.sides[Side::Core.idx()].tx_bytes, out[0].len() as u64);
    assert_eq!(c.forwarded, 1);
    assert_eq!(c.total_drops(), 0);
    r.check_balance();
}

#[test]
fn tcp_downlink_and_routed_destination_byte_exact() {
    let mut r = Rig::resolved();
    r.send(Side::Core, tcp_syn(SRV_MAC, CORE_MAC, SRV, SUB, 2));
    assert_eq!(
        r.access.drain(),
        vec![tcp_syn(ACC_MAC, SUB_MAC, SRV, SUB, 1)]
    );
    // Beyond the core router: the next hop is the router, the IP destination unchanged.
    r.send(Side::Access, tcp_syn(SUB_MAC, ACC_MAC, SUB, FAR, 64));
    assert_eq!(
        r.core.drain(),
        vec![tcp_syn(CORE_MAC, RTR_MAC, SUB, FAR, 63)]
    );
    r.check_balance();
}

#[test]
fn every_ttl_decrements_with_a_valid_checksum() {
    let mut r = Rig::resolved();
    for ttl in 2..=255u8 {
        r.send(
            Side::Access,
            udp(SUB_MAC, ACC_MAC, SUB, SRV, ttl, &[ttl; 3]),
        );
        assert_eq!(
            r.core.drain(),
            vec![udp(CORE_MAC, SRV_MAC, SUB, SRV, ttl - 1, &[ttl; 3])],
            "ttl {ttl}"
        );
    }
    r.check_balance();
}

#[test]
fn ttl_expiry_answers_time_exceeded() {
    let mut r = Rig::resolved();
    let orig = udp(SUB_MAC, ACC_MAC, SUB, SRV, 1, b"0123456789abcdef");
    r.send(Side::Access, orig.clone());
    assert!(r.core.drain().is_empty());
    let out = r.access.drain();
    assert_eq!(out.len(), 1);

    // Expected: from the access address to the sender, quoting the IP header and the
    // first 8 bytes of the datagram (RFC 792).
    let expect = time_exceeded(ACC_MAC, SUB_MAC, GW_ACC, &orig);
    assert_eq!(out[0], expect);

    let c = r.counters();
    assert_eq!(c.dropped(DropReason::TtlExpired), 1);
    assert_eq!(c.icmp_errors, 1);
    r.check_balance();
}

#[test]
fn icmp_errors_are_rate_limited() {
    let mut r = Rig::resolved();
    for _ in 0..15 {
        r.send(Side::Access, udp(SUB_MAC, ACC_MAC, SUB, SRV, 1, b"x"));
    }
    assert_eq!(r.access.drain().len(), 10, "10 per second");
    let c = r.counters();
    assert_eq!(c.dropped(DropReason::TtlExpired), 15);
    assert_eq!(c.icmp_rate_limited, 5);
    r.now = r.now.add_ms(1000);
    r.send(Side::Access, udp(SUB_MAC, ACC_MAC, SUB, SRV, 1, b"x"));
    assert_eq!(r.access.drain().len(), 1, "refilled after a second");
    r.check_balance();
}

#[test]
fn arp_request_for_gateway_is_answered_and_copied_up() {
    let mut r = Rig::new();
    let req = arp(
        ArpOperation::REQUEST,
        SUB_MAC,
        MacAddr::BROADCAST,
        SUB_MAC,
        SUB,
        MacAddr::ZERO,
        GW_ACC,
    );
    r.send(Side::Access, req.clone());
    let expect = arp(
        ArpOperation::REPLY,
        ACC_MAC,
        SUB_MAC,
        ACC_MAC,
        GW_ACC,
        SUB_MAC,
        SUB,
    );
    assert_eq!(r.access.drain(), vec![expect]);
    let copy = r.ctl.punt.pop().expect("a copy for the control plane");
    assert_eq!(copy.bytes(), &req[..]);
    assert_eq!(copy.side, Side::Access);

    // Not for the core address on the access side, nor for a stranger.
    r.send(
        Side::Access,
        arp(
            ArpOperation::REQUEST,
            SUB_MAC,
            MacAddr::BROADCAST,
            SUB_MAC,
            SUB,
            MacAddr::ZERO,
            GW_CORE,
        ),
    );
    r.send(
        Side::Access,
        arp(
            ArpOperation::REQUEST,
            SUB_MAC,
            MacAddr::BROADCAST,
            SUB_MAC,
            SUB,
            MacAddr::ZERO,
            Ipv4Addr::new(10, 10, 0, 99),
        ),
    );
    assert!(r.access.drain().is_empty());
    // A reply is consumed by the control plane.
    r.send(
        Side::Core,
        arp(
            ArpOperation::REPLY,
            SRV_MAC,
            CORE_MAC,
            SRV_MAC,
            SRV,
            CORE_MAC,
            GW_CORE,
        ),
    );
    let c = r.counters();
    assert_eq!(c.replied, 1);
    assert_eq!(c.punt_copies, 1);
    assert_eq!(c.punted, 1);
    assert_eq!(c.dropped(DropReason::ArpNotForUs), 2);
    r.check_balance();
}

#[test]
fn echo_to_gateway_is_answered() {
    let mut r = Rig::new();
    r.send(
        Side::Access,
        echo(SUB_MAC, ACC_MAC, SUB, GW_ACC, 64, false, b"ping payload"),
    );
    assert_eq!(
        r.access.drain(),
        vec![echo(
            ACC_MAC,
            SUB_MAC,
            GW_ACC,
            SUB,
            64,
            true,
            b"ping payload"
        )]
    );
    // The core address answers from the access side too.
    r.send(
        Side::Access,
        echo(SUB_MAC, ACC_MAC, SUB, GW_CORE, 9, false, b"ping payload"),
    );
    assert_eq!(
        r.access.drain(),
        vec![echo(
            ACC_MAC,
            SUB_MAC,
            GW_CORE,
            SUB,
            64,
            true,
            b"ping payload"
        )]
    );
    // Something else for the gateway is not served.
    r.send(Side::Access, udp(SUB_MAC, ACC_MAC, SUB, GW_ACC, 64, b"?"));
    assert_eq!(r.counters().dropped(DropReason::LocalUnsupported), 1);
    r.check_balance();
}

#[test]
fn unresolved_next_hop_holds_then_releases() {
    let mut r = Rig::new();
    let first = udp(SUB_MAC, ACC_MAC, SUB, SRV, 64, b"one");
    let second = udp(SUB_MAC, ACC_MAC, SUB, SRV, 64, b"two");
    r.send(Side::Access, first);
    r.send(Side::Access, second);
    assert_eq!(
        r.events(),
        vec![Event::Resolve {
            ip: SRV,
            side: Side::Core
        }],
        "asked once"
    );
    assert!(r.core.drain().is_empty());
    assert_eq!(r.worker.held(), 2);
    r.check_balance();

    r.command(Command::NeighborSet {
        ip: SRV,
        mac: SRV_MAC,
    });
    r.poll();
    assert_eq!(
        r.core.drain(),
        vec![
            udp(CORE_MAC, SRV_MAC, SUB, SRV, 63, b"one"),
            udp(CORE_MAC, SRV_MAC, SUB, SRV, 63, b"two")
        ],
        "released in order, rewritten"
    );
    let c = r.counters();
    assert_eq!((c.held, c.released), (2, 2));
    r.check_balance();
}

#[test]
fn failed_resolution_and_hold_timeout_drop() {
    let mut r = Rig::new();
    r.send(Side::Access, udp(SUB_MAC, ACC_MAC, SUB, SRV, 64, b"a"));
    r.command(Command::NeighborFailed { ip: SRV });
    r.poll();
    assert_eq!(r.worker.held(), 0);
    r.send(Side::Access, udp(SUB_MAC, ACC_MAC, SUB, SRV, 64, b"b"));
    assert_eq!(
        r.counters().dropped(DropReason::NeighborUnresolved),
        2,
        "held one, and one while failed"
    );

    // Another next hop: held, then expired after hold_timeout_ms (3 s).
    r.send(Side::Access, udp(SUB_MAC, ACC_MAC, SUB, FAR, 64, b"c"));
    assert_eq!(r.worker.held(), 1);
    r.now = r.now.add_ms(2999);
    r.poll();
    assert_eq!(r.worker.held(), 1);
    r.now = r.now.add_ms(1);
    r.poll();
    assert_eq!(r.worker.held(), 0);
    assert_eq!(r.counters().dropped(DropReason::NeighborUnresolved), 3);
    r.check_balance();
}

#[test]
fn hold_queue_is_bounded() {
    let mut r = Rig::with(
        WorkerConfig {
            hold_capacity: 4,
            ..WorkerConfig::default()
        },
        1024,
    );
    for i in 0..10u8 {
        r.send(Side::Access, udp(SUB_MAC, ACC_MAC, SUB, SRV, 64, &[i]));
    }
    assert_eq!(r.worker.held(), 4);
    assert_eq!(r.counters().dropped(DropReason::NeighborUnresolved), 6);
    r.check_balance();
}

#[test]
fn drops_are_counted_by_reason() {
    let mut r = Rig::resolved();
    let good = udp(SUB_MAC, ACC_MAC, SUB, SRV, 64, b"ok");
    let mut bad_csum = good.clone();
    bad_csum[24] ^= 0xff;
    let mut bad_version = good.clone();
    bad_version[14] = 0x65;
    let mut vlan = good[..12].to_vec();
    vlan.extend_from_slice(&[0x81, 0x00, 0x00, 0x0a]);
    vlan.extend_from_slice(&good[12..]);
    let mut ipv6 = good.clone();
    ipv6[12..14].copy_from_slice(&[0x86, 0xdd]);
    let cases: Vec<(Vec<u8>, DropReason)> = vec![
        (good[..10].to_vec(), DropReason::EthTooShort),
        (
            udp(SUB_MAC, MacAddr([2, 9, 9, 9, 9, 9]), SUB, SRV, 64, b"x"),
            DropReason::EthNotForUs,
        ),
        (vlan, DropReason::VlanNotConfigured),
        (ipv6, DropReason::UnsupportedEthertype),
        (good[..14 + 19].to_vec(), DropReason::Ipv4Malformed),
        (good[..good.len() - 1].to_vec(), DropReason::Ipv4Malformed),
        (bad_version, DropReason::Ipv4Malformed),
        (bad_csum, DropReason::Ipv4BadChecksum),
        (
            udp(SUB_MAC, ACC_MAC, Ipv4Addr::new(0, 0, 0, 0), SRV, 64, b"x"),
            DropReason::Ipv4MartianSource,
        ),
        (
            udp(SUB_MAC, ACC_MAC, GW_CORE, SRV, 64, b"x"),
            DropReason::Ipv4MartianSource,
        ),
        (
            udp(
                SUB_MAC,
                ACC_MAC,
                SUB,
                Ipv4Addr::new(255, 255, 255, 255),
                64,
                b"x",
            ),
            DropReason::Ipv4NotUnicast,
        ),
        (
            udp(
                SUB_MAC,
                ACC_MAC,
                SUB,
                Ipv4Addr::new(192, 0, 2, 255),
                64,
                b"x",
            ),
            DropReason::Ipv4NotUnicast,
        ),
        (
            udp(SUB_MAC, ACC_MAC, SUB, Ipv4Addr::new(239, 1, 1, 1), 64, b"x"),
            DropReason::Ipv4NotUnicast,
        ),
        (
            udp(
                SUB_MAC,
                ACC_MAC,
                SUB,
                Ipv4Addr::new(203, 0, 113, 5),
                64,
                b"x",
            ),
            DropReason::NoRoute,
        ),
    ];
    for (frame, reason) in &cases {
        let before = r.counters().dropped(*reason);
        r.send(Side::Access, frame.clone());
        assert_eq!(r.counters().dropped(*reason), before + 1, "{reason:?}");
    }
    assert!(r.core.drain().is_empty());
    assert_eq!(r.counters().total_drops(), cases.len() as u64);
    r.check_balance();
}

#[test]
fn short_tx_burst_frees_and_counts_the_tail() {
    let mut r = Rig::with(WorkerConfig::default(), 3);
    r.command(Command::NeighborSet {
        ip: SRV,
        mac: SRV_MAC,
    });
    for i in 0..3u8 {
        assert!(r.access.send(udp(SUB_MAC, ACC_MAC, SUB, SRV, 64, &[i])));
    }
    r.poll();
    assert_eq!(r.core.drain().len(), 3);
    // Three more in while the core peer does not read: its ring holds 3, so 3 + 3 = 6 in
    // two polls leaves 3 sent and 3 refused.
    for i in 0..3u8 {
        assert!(r.access.send(udp(SUB_MAC, ACC_MAC, SUB, SRV, 64, &[i])));
    }
    r.poll();
    for i in 0..3u8 {
        assert!(r.access.send(udp(SUB_MAC, ACC_MAC, SUB, SRV, 64, &[i])));
    }
    r.poll();
    let c = r.counters();
    assert_eq!(c.dropped(DropReason::TxFull), 3);
    assert_eq!(c.sides[Side::Core.idx()].tx_packets, 6);
    r.check_balance();
}

#[test]
fn new_snapshot_applies_between_bursts() {
    let mut r = Rig::resolved();
    r.send(Side::Access, udp(SUB_MAC, ACC_MAC, SUB, SRV, 64, b"1"));
    assert_eq!(
        r.core.drain(),
        vec![udp(CORE_MAC, SRV_MAC, SUB, SRV, 63, b"1")]
    );
    let new_mac = MacAddr([0x02, 0, 0, 0, 0, 0x22]);
    r.publisher.publish(forwarding(new_mac));
    r.send(Side::Access, udp(SUB_MAC, ACC_MAC, SUB, SRV, 64, b"2"));
    assert_eq!(
        r.core.drain(),
        vec![udp(new_mac, SRV_MAC, SUB, SRV, 63, b"2")]
    );
    assert_eq!(r.counters().snapshot_loads, 1);
}

#[test]
fn injected_frames_are_sent_and_reports_answer() {
    let mut r = Rig::new();
    let frame = arp(
        ArpOperation::REQUEST,
        CORE_MAC,
        MacAddr::BROADCAST,
        CORE_MAC,
        GW_CORE,
        MacAddr::ZERO,
        SRV,
    );
    r.ctl
        .inject
        .push(tollgate_dataplane::Frame::new(Side::Core, &frame).unwrap())
        .unwrap();
    r.poll();
    assert_eq!(r.core.drain(), vec![frame]);
    r.command(Command::Report { seq: 7 });
    r.poll();
    let rep = r.ctl.reports.pop().expect("report");
    assert_eq!(rep.seq, 7);
    assert_eq!(rep.counters.injected, 1);
    r.check_balance();
}

#[test]
fn a_full_burst_is_forwarded_in_one_poll() {
    let mut r = Rig::resolved();
    for i in 0..32u8 {
        assert!(r.access.send(udp(SUB_MAC, ACC_MAC, SUB, SRV, 64, &[i; 10])));
    }
    r.poll();
    let out = r.core.drain();
    assert_eq!(out.len(), 32);
    for (i, f) in out.iter().enumerate() {
        assert_eq!(f, &udp(CORE_MAC, SRV_MAC, SUB, SRV, 63, &[i as u8; 10]));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Whatever arrives (valid packets, damaged packets, noise), nothing panics, every
    /// packet is accounted for, and no buffer leaks.
    #[test]
    fn any_input_is_accounted_for(frames in proptest::collection::vec(frame_strategy(), 1..80)) {
        let mut r = Rig::resolved();
        for (side, f) in frames {
            let peer = if side { &mut r.access } else { &mut r.core };
            peer.send(f);
            if r.worker.held() > 0 || side {
                r.poll();
            }
        }
        r.poll();
        r.access.drain();
        r.core.drain();
        r.check_balance();
    }
}

fn frame_strategy() -> impl Strategy<Value = (bool, Vec<u8>)> {
    let valid = (
        any::<u8>(),
        any::<bool>(),
        proptest::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(|(ttl, up, p)| {
            if up {
                (true, udp(SUB_MAC, ACC_MAC, SUB, SRV, ttl, &p))
            } else {
                (false, udp(SRV_MAC, CORE_MAC, SRV, SUB, ttl, &p))
            }
        });
    let damaged = (valid.clone(), any::<usize>(), any::<u8>()).prop_map(|((s, mut f), i, b)| {
        let i = i % f.len();
        f[i] ^= b | 1;
        (s, f)
    });
    let noise = (
        any::<bool>(),
        proptest::collection::vec(any::<u8>(), 0..200),
    );
    prop_oneof![valid, damaged, noise]
}
