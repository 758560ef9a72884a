//! IPv6 over PPPoE (PPP protocol 0x0057, after IPv6CP) through one worker on memory
//! ports (issue 16, V6-1): IPv6 packets built with etherparse, their Ethernet, VLAN and
//! PPPoE headers byte by byte; what comes out on the ports or up the punt ring compared
//! byte for byte; counters exact. Uplink decapsulation with anti-spoofing by the
//! session's /64 and delegated prefix, downlink encapsulation on untagged and QinQ lines,
//! RS and DHCPv6 punted in their PPPoE frame, RA guard, the gateway's answers in place
//! inside PPPoE, and each refusal's named drop.

use std::net::Ipv6Addr;

use etherparse::{Icmpv6Type, PacketBuilder, icmpv6::TimeExceededCode};
use tollgate_dataplane::msg::ControlEnds;
use tollgate_dataplane::port::memory::{MemoryPeer, MemoryPort};
use tollgate_dataplane::session::{
    AccessLine, Encap, SessionCounters, SessionSpec, VlanTag, Vlans,
};
use tollgate_dataplane::snapshot::Publisher;
use tollgate_dataplane::time::Instant;
use tollgate_dataplane::{
    Command, DropReason, Event, ForwardingBuilder, HeapPool, Ipv6Forwarding, MacAddr, RingSizes,
    Side, SideConfig, Worker, WorkerConfig, WorkerCounters, worker_rings,
};
use tollgate_testkit::lab::*;

const POOL: usize = 256;

/// The PPPoE session id.
const PPPOE: u16 = 0x0042;
/// The session's /64 and the client's address in it.
const PREFIX: u64 = 0x2001_0db8_0001_0001;
const SUB6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 1, 0, 0, 0, 0x11);
/// A host inside the session's delegated /56.
const LAN6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x200, 0x5, 0, 0, 0, 1);
const SRV6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xff, 0, 0, 0, 0, 0x10);
const GW6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xff, 0, 0, 0, 0, 1);
const GW_LL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0xff, 0xfe00, 1);
const SUB_LL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 1, 2, 3, 4);
const RTR6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xff, 0, 0, 0, 0, 0xfe);
const ALL_ROUTERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2);
const DHCP_SERVERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 1, 2);

/// QinQ: S-VLAN 200 (802.1ad), C-VLAN 7.
const QINQ: &[(u16, u16)] = &[(0x88a8, 200), (0x8100, 7)];

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
            error_sources: [Some(GW_LL), Some(GW6)],
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
        Rig {
            worker,
            access,
            core,
            ctl,
            now: Instant(1_000_000_000),
            _publisher: publisher,
        }
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

    /// A PPPoE session (id `PPPOE`) for SUB_MAC on `tags`, MSS clamp `clamp` (its MTU
    /// is the clamp + 40, or 1492 without), with the /64 PREFIX.
    fn install(&mut self, id: u32, tags: &[(u16, u16)], clamp: u16) {
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
                encap: Encap::Pppoe { session: PPPOE },
                mss_clamp: clamp,
            },
        }));
        self.command(Command::SessionPrefix6 {
            id,
            prefix: Some(PREFIX),
        });
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

    fn punted(&mut self) -> Vec<(Side, Vec<u8>)> {
        std::iter::from_fn(|| self.ctl.punt.pop())
            .map(|f| (f.side, f.bytes().to_vec()))
            .collect()
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

/// Ethernet from `src` to `dst`, `tags` (TPID, VID) outer first, then `ethertype`.
fn l2(dst: MacAddr, src: MacAddr, tags: &[(u16, u16)], ethertype: u16) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst.0);
    f.extend_from_slice(&src.0);
    for &(tpid, vid) in tags {
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&vid.to_be_bytes());
    }
    f.extend_from_slice(&ethertype.to_be_bytes());
    f
}

/// The IPv6 packet `ip` in a PPPoE session frame (PPP protocol 0x0057) of session
/// `session` between the MACs on `tags`.
fn pppoe6(dst: MacAddr, src: MacAddr, tags: &[(u16, u16)], session: u16, ip: &[u8]) -> Vec<u8> {
    let mut f = l2(dst, src, tags, 0x8864);
    f.extend_from_slice(&[0x11, 0x00]);
    f.extend_from_slice(&session.to_be_bytes());
    f.extend_from_slice(&(ip.len() as u16 + 2).to_be_bytes());
    f.extend_from_slice(&[0x00, 0x57]);
    f.extend_from_slice(ip);
    f
}

/// The same packet in a plain Ethernet frame.
fn eth6(dst: MacAddr, src: MacAddr, ip: &[u8]) -> Vec<u8> {
    let mut f = l2(dst, src, &[], 0x86dd);
    f.extend_from_slice(ip);
    f
}

/// A UDP/IPv6 packet (no link layer).
fn udp6(src: Ipv6Addr, dst: Ipv6Addr, hl: u8, ports: (u16, u16), payload: &[u8]) -> Vec<u8> {
    let mut p = Vec::new();
    PacketBuilder::ipv6(src.octets(), dst.octets(), hl)
        .udp(ports.0, ports.1)
        .write(&mut p, payload)
        .unwrap();
    p
}

/// An ICMPv6 message of `ty` with hop limit 255 (no link layer).
fn icmp6(src: Ipv6Addr, dst: Ipv6Addr, ty: u8, body: &[u8]) -> Vec<u8> {
    let mut p = Vec::new();
    PacketBuilder::ipv6(src.octets(), dst.octets(), 255)
        .icmpv6(Icmpv6Type::Unknown {
            type_u8: ty,
            code_u8: 0,
            bytes5to8: [0; 4],
        })
        .write(&mut p, body)
        .unwrap();
    p
}

#[test]
fn a_pppoe_session_s_ipv6_is_decapsulated_up_and_encapsulated_down() {
    for (n, tags) in [&[][..], QINQ].into_iter().enumerate() {
        let mut r = Rig::new();
        r.install(1, tags, 0);
        let up = udp6(SUB6, SRV6, 64, (40000, 53), b"query");
        r.send(Side::Access, &pppoe6(ACC_MAC, SUB_MAC, tags, PPPOE, &up));
        // Plain Ethernet to the next hop, hop limit one less.
        let fwd = udp6(SUB6, SRV6, 63, (40000, 53), b"query");
        assert_eq!(
            r.core.drain(),
            vec![eth6(RTR_MAC, CORE_MAC, &fwd)],
            "line {n}"
        );
        let down = udp6(SRV6, SUB6, 64, (53, 40000), b"answer!");
        r.send(Side::Core, &eth6(CORE_MAC, RTR_MAC, &down));
        let out = udp6(SRV6, SUB6, 63, (53, 40000), b"answer!");
        assert_eq!(
            r.access.drain(),
            vec![pppoe6(SUB_MAC, ACC_MAC, tags, PPPOE, &out)],
            "line {n}"
        );
        assert_eq!(drops(&r.counters()), vec![], "line {n}");
        let want = SessionCounters {
            tx_packets: 1,
            tx_bytes: 40 + 8 + 5,
            rx_packets: 1,
            rx_bytes: 40 + 8 + 7,
        };
        assert_eq!(r.counters_by_family(1), (want, Some(want)), "line {n}");
        r.check_balance();
    }
}

#[test]
fn a_delegated_prefix_is_forwarded_over_pppoe_both_ways() {
    let mut r = Rig::new();
    r.install(1, QINQ, 0);
    r.command(Command::SessionDelegated6 {
        id: 1,
        prefix: Some((0x2001_0db8_0200_0000, 56)),
    });
    let up = udp6(LAN6, SRV6, 64, (1, 2), b"lan");
    r.send(Side::Access, &pppoe6(ACC_MAC, SUB_MAC, QINQ, PPPOE, &up));
    assert_eq!(
        r.core.drain(),
        vec![eth6(
            RTR_MAC,
            CORE_MAC,
            &udp6(LAN6, SRV6, 63, (1, 2), b"lan")
        )]
    );
    r.send(
        Side::Core,
        &eth6(CORE_MAC, RTR_MAC, &udp6(SRV6, LAN6, 9, (2, 1), b"back")),
    );
    assert_eq!(
        r.access.drain(),
        vec![pppoe6(
            SUB_MAC,
            ACC_MAC,
            QINQ,
            PPPOE,
            &udp6(SRV6, LAN6, 8, (2, 1), b"back")
        )]
    );
    assert_eq!(drops(&r.counters()), vec![]);
    r.check_balance();
}

#[test]
fn rs_and_dhcpv6_over_pppoe_are_punted_and_ras_guarded() {
    let mut r = Rig::new();
    r.install(1, QINQ, 0);
    let rs = pppoe6(
        ACC_MAC,
        SUB_MAC,
        QINQ,
        PPPOE,
        &icmp6(SUB_LL, ALL_ROUTERS, 133, &[]),
    );
    let mut solicit = Vec::new();
    PacketBuilder::ipv6(SUB_LL.octets(), DHCP_SERVERS.octets(), 1)
        .udp(546, 547)
        .write(&mut solicit, &[1, 0xab, 0xcd, 0xef])
        .unwrap();
    let solicit = pppoe6(ACC_MAC, SUB_MAC, QINQ, PPPOE, &solicit);
    // The PPPoE frames go up whole: the control plane answers over the PPP link.
    r.send(Side::Access, &rs);
    r.send(Side::Access, &solicit);
    assert_eq!(
        r.punted(),
        vec![(Side::Access, rs), (Side::Access, solicit)]
    );
    // A subscriber's RA is dropped.
    r.send(
        Side::Access,
        &pppoe6(
            ACC_MAC,
            SUB_MAC,
            QINQ,
            PPPOE,
            &icmp6(SUB_LL, ALL_ROUTERS, 134, &[0; 12]),
        ),
    );
    let c = r.counters();
    assert_eq!(c.ipv6_control, 2);
    assert_eq!(drops(&c), vec![(DropReason::Ipv6RaGuard, 1)]);
    assert_eq!(r.counters_by_family(1).0, SessionCounters::default());
    r.check_balance();
}

#[test]
fn pppoe_ipv6_that_is_not_the_session_s_is_dropped_by_name() {
    let mut r = Rig::new();
    r.install(1, QINQ, 1400 - 40);
    let ok = udp6(SUB6, SRV6, 64, (1, 2), b"x");
    let mut short = pppoe6(ACC_MAC, SUB_MAC, QINQ, PPPOE, &ok);
    // The PPPoE length one short of the packet.
    let at = 14 + 8 + 4;
    short[at + 1] -= 1;
    let cases: Vec<(Vec<u8>, Side, DropReason)> = vec![
        // Another PPPoE session id, or the session's on another line.
        (
            pppoe6(ACC_MAC, SUB_MAC, QINQ, PPPOE + 1, &ok),
            Side::Access,
            DropReason::PppoeSessionUnknown,
        ),
        (
            pppoe6(ACC_MAC, SUB_MAC, &[(0x8100, 7)], PPPOE, &ok),
            Side::Access,
            DropReason::PppoeSessionUnknown,
        ),
        // A source outside the session's /64.
        (
            pppoe6(
                ACC_MAC,
                SUB_MAC,
                QINQ,
                PPPOE,
                &udp6(LAN6, SRV6, 64, (1, 2), b"x"),
            ),
            Side::Access,
            DropReason::Ipv6SourceSpoofed,
        ),
        // The session's /64 from its MAC but not over PPPoE.
        (
            {
                let mut f = l2(ACC_MAC, SUB_MAC, QINQ, 0x86dd);
                f.extend_from_slice(&ok);
                f
            },
            Side::Access,
            DropReason::Ipv6SourceSpoofed,
        ),
        (short, Side::Access, DropReason::PppoeMalformed),
    ];
    for (i, (f, side, reason)) in cases.into_iter().enumerate() {
        let before = r.counters().dropped(reason);
        r.send(side, &f);
        assert_eq!(
            r.counters().dropped(reason),
            before + 1,
            "case {i}: {reason:?}"
        );
    }
    assert!(r.access.drain().is_empty() && r.core.drain().is_empty());
    // Downlink longer than the session's MTU (1400): dropped, and a Packet Too Big with
    // the MTU goes back from the core address, quoting what fits 1280 bytes.
    let big = udp6(SRV6, SUB6, 64, (2, 1), &[0; 1400 - 48 + 1]);
    r.send(Side::Core, &eth6(CORE_MAC, RTR_MAC, &big));
    let mut ptb = Vec::new();
    PacketBuilder::ipv6(GW6.octets(), SRV6.octets(), 64)
        .icmpv6(Icmpv6Type::PacketTooBig { mtu: 1400 })
        .write(&mut ptb, &big[..1280 - 48])
        .unwrap();
    assert_eq!(r.core.drain(), vec![eth6(RTR_MAC, CORE_MAC, &ptb)]);
    assert!(r.access.drain().is_empty());
    let c = r.counters();
    assert_eq!(c.dropped(DropReason::PppoeTooBig), 1);
    assert_eq!(c.icmp_errors, 1);
    // Exactly the MTU goes.
    r.send(
        Side::Core,
        &eth6(
            CORE_MAC,
            RTR_MAC,
            &udp6(SRV6, SUB6, 64, (2, 1), &[0; 1400 - 48]),
        ),
    );
    assert_eq!(r.access.drain().len(), 1);
    assert_eq!(r.counters_by_family(1).0.rx_packets, 1);
    r.check_balance();
}

#[test]
fn the_gateway_answers_inside_the_pppoe_header() {
    let mut r = Rig::new();
    r.install(1, QINQ, 0);
    // Hop limit 1: Time Exceeded from the access link-local, back in PPPoE with its
    // length set to the error's.
    let probe = udp6(SUB6, SRV6, 1, (40000, 33434), b"probe");
    r.send(Side::Access, &pppoe6(ACC_MAC, SUB_MAC, QINQ, PPPOE, &probe));
    let mut err = Vec::new();
    PacketBuilder::ipv6(GW_LL.octets(), SUB6.octets(), 64)
        .icmpv6(Icmpv6Type::TimeExceeded(TimeExceededCode::HopLimitExceeded))
        .write(&mut err, &probe)
        .unwrap();
    assert_eq!(
        r.access.drain(),
        vec![pppoe6(SUB_MAC, ACC_MAC, QINQ, PPPOE, &err)]
    );
    // An Echo Request to the gateway's address: the reply in the same PPPoE header.
    let mut ping = Vec::new();
    PacketBuilder::ipv6(SUB6.octets(), GW6.octets(), 64)
        .icmpv6_echo_request(7, 1)
        .write(&mut ping, b"ping6")
        .unwrap();
    r.send(Side::Access, &pppoe6(ACC_MAC, SUB_MAC, QINQ, PPPOE, &ping));
    let mut pong = Vec::new();
    PacketBuilder::ipv6(GW6.octets(), SUB6.octets(), 64)
        .icmpv6_echo_reply(7, 1)
        .write(&mut pong, b"ping6")
        .unwrap();
    assert_eq!(
        r.access.drain(),
        vec![pppoe6(SUB_MAC, ACC_MAC, QINQ, PPPOE, &pong)]
    );
    let c = r.counters();
    assert_eq!(drops(&c), vec![(DropReason::Ipv6HopLimitExceeded, 1)]);
    assert_eq!((c.icmp_errors, c.replied), (1, 2));
    r.check_balance();
}

/// A TCP/IPv6 SYN (a SYN-ACK with `ack`) carrying MSS `mss` (no link layer), its
/// checksum computed by etherparse.
fn syn6(src: Ipv6Addr, dst: Ipv6Addr, hl: u8, ports: (u16, u16), ack: bool, mss: u16) -> Vec<u8> {
    let mut p = Vec::new();
    let b = PacketBuilder::ipv6(src.octets(), dst.octets(), hl)
        .tcp(ports.0, ports.1, 1000, 64240)
        .syn();
    let b = if ack { b.ack(77) } else { b };
    b.options(&[
        etherparse::TcpOptionElement::MaximumSegmentSize(mss),
        etherparse::TcpOptionElement::Noop,
        etherparse::TcpOptionElement::WindowScale(7),
    ])
    .unwrap()
    .write(&mut p, &[])
    .unwrap();
    p
}

#[test]
fn the_mss_of_a_pppoe_session_s_ipv6_syns_is_clamped_for_ipv6() {
    // MTU 1492: the IPv4 clamp 1452, IPv6's 20 less, 1432 (ACC-5), both ways.
    let mut r = Rig::new();
    r.install(1, QINQ, 1452);
    let up = syn6(SUB6, SRV6, 64, (40000, 443), false, 1460);
    r.send(Side::Access, &pppoe6(ACC_MAC, SUB_MAC, QINQ, PPPOE, &up));
    let want = syn6(SUB6, SRV6, 63, (40000, 443), false, 1432);
    assert_eq!(r.core.drain(), vec![eth6(RTR_MAC, CORE_MAC, &want)]);
    let down = syn6(SRV6, SUB6, 64, (443, 40000), true, 1440);
    r.send(Side::Core, &eth6(CORE_MAC, RTR_MAC, &down));
    let want = syn6(SRV6, SUB6, 63, (443, 40000), true, 1432);
    assert_eq!(
        r.access.drain(),
        vec![pppoe6(SUB_MAC, ACC_MAC, QINQ, PPPOE, &want)]
    );
    // Already small enough: left as it is.
    let up = syn6(SUB6, SRV6, 64, (40001, 443), false, 1400);
    r.send(Side::Access, &pppoe6(ACC_MAC, SUB_MAC, QINQ, PPPOE, &up));
    let want = syn6(SUB6, SRV6, 63, (40001, 443), false, 1400);
    assert_eq!(r.core.drain(), vec![eth6(RTR_MAC, CORE_MAC, &want)]);
    assert_eq!(drops(&r.counters()), vec![]);
    r.check_balance();
}

#[test]
fn without_a_clamp_an_ipv6_syn_s_mss_is_left_alone() {
    let mut r = Rig::new();
    r.install(1, &[], 0);
    let up = syn6(SUB6, SRV6, 64, (40000, 443), false, 1460);
    r.send(Side::Access, &pppoe6(ACC_MAC, SUB_MAC, &[], PPPOE, &up));
    let want = syn6(SUB6, SRV6, 63, (40000, 443), false, 1460);
    assert_eq!(r.core.drain(), vec![eth6(RTR_MAC, CORE_MAC, &want)]);
    r.check_balance();
}
