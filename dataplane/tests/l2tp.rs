//! The L2TP stage between two workers on memory ports: a LAC (subscribers on its access
//! side, the LNS behind its core side) and an LNS (the LAC on its access side, servers on
//! its core side). Frames are carried between them by hand, so every byte on the "line"
//! can be looked at. Checks: the encapsulation parses as IPv4/UDP 1701/L2TP/PPP/IPv4,
//! both directions decapsulate and route with the TTL decremented, control messages are
//! punted, a move to another session (install, steer, remove) loses nothing in flight,
//! bad input is a counted drop, and an oversize packet gets fragmentation-needed.

use std::net::Ipv4Addr;

use etherparse::{IpNumber, Ipv4Header, PacketBuilder, SlicedPacket, TransportSlice};
use tollgate_dataplane::l2tp::{L2tpSessionSpec, TunnelRole};
use tollgate_dataplane::msg::ControlEnds;
use tollgate_dataplane::port::memory::{MemoryPeer, MemoryPort};
use tollgate_dataplane::session::{AccessLine, Encap, SessionCounters, SessionSpec};
use tollgate_dataplane::snapshot::Publisher;
use tollgate_dataplane::time::Instant;
use tollgate_dataplane::wire::l2tp::subscriber_mac;
use tollgate_dataplane::{
    Command, DropReason, Event, ForwardingBuilder, HeapPool, MacAddr, Route, SideConfig, Worker,
    WorkerConfig, worker_rings,
};

const SUB: Ipv4Addr = Ipv4Addr::new(10, 10, 0, 11);
const SUB2: Ipv4Addr = Ipv4Addr::new(10, 10, 0, 12);
const LAC_ACC: Ipv4Addr = Ipv4Addr::new(10, 10, 0, 1);
const LAC_LINE: Ipv4Addr = Ipv4Addr::new(172, 16, 0, 1);
const LNS_LINE: Ipv4Addr = Ipv4Addr::new(172, 16, 0, 2);
const LNS_CORE: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const SRV: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);

const SUB_MAC: MacAddr = MacAddr([2, 0x10, 0, 0, 0, 0x11]);
const SUB2_MAC: MacAddr = MacAddr([2, 0x10, 0, 0, 0, 0x12]);
const LAC_ACC_MAC: MacAddr = MacAddr([2, 0xa, 0, 0, 0, 1]);
const LAC_LINE_MAC: MacAddr = MacAddr([2, 0xa, 0, 0, 0, 2]);
const LNS_LINE_MAC: MacAddr = MacAddr([2, 0xb, 0, 0, 0, 1]);
const LNS_CORE_MAC: MacAddr = MacAddr([2, 0xb, 0, 0, 0, 2]);
const SRV_MAC: MacAddr = MacAddr([2, 0x20, 0, 0, 0, 0x10]);

struct Node {
    worker: Worker<MemoryPort>,
    access: MemoryPeer,
    core: MemoryPeer,
    ctl: ControlEnds,
}

fn node(
    access: (MacAddr, Ipv4Addr),
    core: (MacAddr, Ipv4Addr),
    neighbors: &[(Ipv4Addr, MacAddr)],
    mtu: u16,
) -> Node {
    let side = |(mac, address): (MacAddr, Ipv4Addr)| SideConfig {
        mac,
        address,
        prefix_len: 24,
    };
    let mut b = ForwardingBuilder::new(side(access), side(core));
    if core.1 == LAC_LINE {
        // The LAC reaches nothing but the LNS on its core side.
        b = b.route(Route {
            prefix: Ipv4Addr::new(198, 51, 100, 0),
            len: 24,
            via: LNS_LINE,
        });
    }
    if access.1 == LNS_LINE {
        // The LNS's subscribers (PPP terminated here) are on its access side, behind the
        // LAC.
        b = b.route(Route {
            prefix: Ipv4Addr::new(10, 10, 0, 0),
            len: 24,
            via: LAC_LINE,
        });
    }
    let publisher = Publisher::new(b.build().unwrap());
    let (w, mut ctl) = worker_rings(Default::default());
    let (a, access) = MemoryPort::with_peer(4096);
    let (c, core) = MemoryPort::with_peer(4096);
    let cfg = WorkerConfig {
        l2tp_sessions: 16,
        l2tp_mtu: mtu,
        ..WorkerConfig::default()
    };
    let worker = Worker::new(cfg, a, c, HeapPool::new(1024), publisher.reader(), w);
    for &(ip, mac) in neighbors {
        ctl.commands.push(Command::NeighborSet { ip, mac }).unwrap();
    }
    let mut n = Node {
        worker,
        access,
        core,
        ctl,
    };
    n.poll();
    n
}

impl Node {
    fn poll(&mut self) {
        self.worker.poll(Instant(1_000_000_000));
    }

    fn command(&mut self, c: Command) {
        self.ctl.commands.push(c).unwrap();
        self.poll();
    }

    fn drops(&mut self, r: DropReason) -> u64 {
        self.worker.report(0, Instant(1)).counters.dropped(r)
    }
}

fn lac() -> Node {
    node(
        (LAC_ACC_MAC, LAC_ACC),
        (LAC_LINE_MAC, LAC_LINE),
        &[(SUB, SUB_MAC), (SUB2, SUB2_MAC), (LNS_LINE, LNS_LINE_MAC)],
        1500,
    )
}

fn lns() -> Node {
    node(
        (LNS_LINE_MAC, LNS_LINE),
        (LNS_CORE_MAC, LNS_CORE),
        &[(LAC_LINE, LAC_LINE_MAC), (SRV, SRV_MAC)],
        1500,
    )
}

/// The pair of sessions (LAC, LNS) for a subscriber: LAC session `lac_s` in tunnel 10,
/// LNS session `lns_s` in tunnel 20.
fn sessions(sub: Ipv4Addr, lac_s: u16, lns_s: u16) -> (L2tpSessionSpec, L2tpSessionSpec) {
    let lac = L2tpSessionSpec {
        tunnel: 10,
        session: lac_s,
        peer_tunnel: 20,
        peer_session: lns_s,
        local: LAC_LINE,
        peer: LNS_LINE,
        peer_port: 1701,
        subscriber: sub,
        role: TunnelRole::Lac,
        pppoe: None,
    };
    let lns = L2tpSessionSpec {
        tunnel: 20,
        session: lns_s,
        peer_tunnel: 10,
        peer_session: lac_s,
        local: LNS_LINE,
        peer: LAC_LINE,
        peer_port: 1701,
        subscriber: sub,
        role: TunnelRole::Lns,
        pppoe: None,
    };
    (lac, lns)
}

fn install(lac: &mut Node, lns: &mut Node, sub: Ipv4Addr, lac_s: u16, lns_s: u16) {
    let (a, b) = sessions(sub, lac_s, lns_s);
    lac.command(Command::L2tpSessionSet(a));
    lns.command(Command::L2tpSessionSet(b));
    lac.command(Command::L2tpSteer {
        subscriber: sub,
        session: lac_s,
    });
    lns.command(Command::L2tpSteer {
        subscriber: sub,
        session: lns_s,
    });
}

fn up(sub: Ipv4Addr, mac: MacAddr, seq: u32) -> Vec<u8> {
    tollgate_testkit::frame::udp(mac, LAC_ACC_MAC, sub, SRV, 64, &seq.to_be_bytes())
}

fn down(sub: Ipv4Addr, seq: u32) -> Vec<u8> {
    tollgate_testkit::frame::udp(SRV_MAC, LNS_CORE_MAC, SRV, sub, 64, &seq.to_be_bytes())
}

/// Moves what `from` sent on its core side to `to`'s access side, and back.
fn carry(lac: &mut Node, lns: &mut Node) -> usize {
    let mut n = 0;
    for f in lac.core.drain() {
        assert!(lns.access.send(f));
        n += 1;
    }
    for f in lns.access.drain() {
        assert!(lac.core.send(f));
        n += 1;
    }
    n
}

fn seq_of(frame: &[u8]) -> (Ipv4Addr, Ipv4Addr, u8, u32) {
    let p = SlicedPacket::from_ethernet(frame).unwrap();
    let Some(etherparse::NetSlice::Ipv4(ip)) = p.net else {
        panic!("not IPv4")
    };
    let Some(TransportSlice::Udp(u)) = p.transport else {
        panic!("not UDP")
    };
    let pl = u.payload();
    (
        ip.header().source_addr(),
        ip.header().destination_addr(),
        ip.header().ttl(),
        u32::from_be_bytes(pl[..4].try_into().unwrap()),
    )
}

#[test]
fn encapsulation_on_the_line_is_l2tp_ppp_ipv4() {
    let (mut lac, mut lns) = (lac(), lns());
    install(&mut lac, &mut lns, SUB, 1, 5);
    lac.access.send(up(SUB, SUB_MAC, 7));
    lac.poll();
    let line = lac.core.drain();
    assert_eq!(line.len(), 1);
    let f = &line[0];
    assert_eq!(&f[0..6], &LNS_LINE_MAC.0);
    assert_eq!(&f[6..12], &LAC_LINE_MAC.0);
    let outer = SlicedPacket::from_ethernet(f).unwrap();
    let Some(etherparse::NetSlice::Ipv4(ip)) = &outer.net else {
        panic!("outer not IPv4")
    };
    assert_eq!(ip.header().source_addr(), LAC_LINE);
    assert_eq!(ip.header().destination_addr(), LNS_LINE);
    assert_eq!(
        ip.header().header_checksum(),
        ip.header().to_header().calc_header_checksum()
    );
    let Some(TransportSlice::Udp(u)) = &outer.transport else {
        panic!("outer not UDP")
    };
    assert_eq!((u.source_port(), u.destination_port()), (1701, 1701));
    let l2 = u.payload();
    // flags: data, version 2; the peer's tunnel and session; PPP ff 03 00 21.
    assert_eq!(
        &l2[..10],
        &[0x00, 0x02, 0, 20, 0, 5, 0xff, 0x03, 0x00, 0x21]
    );
    let inner = Ipv4Header::from_slice(&l2[10..]).unwrap().0;
    assert_eq!(inner.source, SUB.octets());
    assert_eq!(inner.time_to_live, 63, "the LAC routes: TTL decremented");
    assert_eq!(inner.protocol, IpNumber::UDP);
    assert_eq!(
        inner.header_checksum,
        inner.calc_header_checksum(),
        "inner checksum updated with the TTL"
    );
    // The LNS decapsulates and routes to the server.
    assert!(lns.access.send(line[0].clone()));
    lns.poll();
    let out = lns.core.drain();
    assert_eq!(out.len(), 1);
    assert_eq!(&out[0][0..6], &SRV_MAC.0);
    assert_eq!(&out[0][6..12], &LNS_CORE_MAC.0);
    assert_eq!(seq_of(&out[0]), (SUB, SRV, 62, 7));
    let c = lns.worker.report(0, Instant(1)).counters;
    assert_eq!((c.l2tp_decapsulated, c.total_drops()), (1, 0));
    let c = lac.worker.report(0, Instant(1)).counters;
    assert_eq!((c.l2tp_encapsulated, c.total_drops()), (1, 0));
}

#[test]
fn downlink_and_session_counters() {
    let (mut lac, mut lns) = (lac(), lns());
    install(&mut lac, &mut lns, SUB, 1, 5);
    for i in 0..3 {
        lns.core.send(down(SUB, i));
    }
    lns.poll();
    assert_eq!(carry(&mut lac, &mut lns), 3);
    lac.poll();
    let got: Vec<_> = lac.access.drain().iter().map(|f| seq_of(f)).collect();
    assert_eq!(
        got,
        (0..3).map(|i| (SRV, SUB, 62, i)).collect::<Vec<_>>(),
        "decapsulated to the subscriber in order"
    );
    lac.command(Command::L2tpReport { seq: 9 });
    let evs: Vec<Event> = std::iter::from_fn(|| lac.ctl.events.pop()).collect();
    match &evs[..] {
        [
            Event::L2tpCounters {
                session: 1,
                tunnel: 10,
                seq: 9,
                counters,
            },
            Event::L2tpReported {
                seq: 9,
                sessions: 1,
            },
        ] => {
            assert_eq!((counters.decap_packets, counters.encap_packets), (3, 0));
            assert_eq!(counters.decap_bytes, 3 * 32);
        }
        other => panic!("unexpected events {other:?}"),
    }
}

#[test]
fn control_messages_are_punted() {
    let (mut lac, mut lns) = (lac(), lns());
    // A ZLB from the LAC to the LNS.
    let mut f = Vec::new();
    PacketBuilder::ethernet2(LAC_LINE_MAC.0, LNS_LINE_MAC.0)
        .ipv4(LAC_LINE.octets(), LNS_LINE.octets(), 64)
        .udp(1701, 1701)
        .write(&mut f, &[0xc8, 0x02, 0, 12, 0, 0, 0, 0, 0, 0, 0, 0])
        .unwrap();
    lns.access.send(f.clone());
    lns.poll();
    let punted = lns.ctl.punt.pop().expect("punted");
    assert_eq!(punted.bytes(), &f[..]);
    let c = lns.worker.report(0, Instant(1)).counters;
    assert_eq!((c.l2tp_control, c.punted), (1, 1));
    let _ = &mut lac;
}

/// LNS: PPP control in an installed session's data messages (an LCP Configure-Request,
/// with and without `ff 03`, and a CHAP Response with a compressed protocol field is not
/// valid PPP but an IPCP one with two bytes is) goes to the control plane whole, counted;
/// PPP control for a session not installed is still an unknown session.
#[test]
fn ppp_control_is_punted() {
    let mut lns = lns();
    let (_, b) = sessions(SUB, 1, 5);
    lns.command(Command::L2tpSessionSet(b));
    let msg = |payload: &[u8], session: u16| {
        let mut l2tp = vec![0x00, 0x02, 0, 20, 0, session as u8];
        l2tp.extend_from_slice(payload);
        let mut f = Vec::new();
        PacketBuilder::ethernet2(LAC_LINE_MAC.0, LNS_LINE_MAC.0)
            .ipv4(LAC_LINE.octets(), LNS_LINE.octets(), 64)
            .udp(1701, 1701)
            .write(&mut f, &l2tp)
            .unwrap();
        f
    };
    // LCP Configure-Request id 1: MRU 1500, Magic-Number 0x01020304.
    let lcp = [
        0xc0, 0x21, 0x01, 0x01, 0x00, 0x0e, 0x01, 0x04, 0x05, 0xdc, 0x05, 0x06, 0x01, 0x02, 0x03,
        0x04,
    ];
    let mut with_acf = vec![0xff, 0x03];
    with_acf.extend_from_slice(&lcp);
    // IPCP Configure-Request id 1: IP-Address 0.0.0.0.
    let ipcp = [
        0xff, 0x03, 0x80, 0x21, 0x01, 0x01, 0x00, 0x0a, 0x03, 0x06, 0, 0, 0, 0,
    ];
    let frames = [msg(&with_acf, 5), msg(&lcp, 5), msg(&ipcp, 5)];
    for f in &frames {
        lns.access.send(f.clone());
    }
    lns.poll();
    for f in &frames {
        let p = lns.ctl.punt.pop().expect("punted");
        assert_eq!(p.bytes(), &f[..]);
    }
    assert!(lns.ctl.punt.pop().is_none());
    let before = lns.drops(DropReason::L2tpUnknownSession);
    lns.access.send(msg(&with_acf, 6));
    lns.poll();
    assert!(lns.ctl.punt.pop().is_none());
    assert_eq!(lns.drops(DropReason::L2tpUnknownSession), before + 1);
    let c = lns.worker.report(0, Instant(1)).counters;
    assert_eq!((c.l2tp_ppp_control, c.l2tp_control, c.punted), (3, 0, 3));
    assert!(lns.core.drain().is_empty() && lns.access.drain().is_empty());
}

/// LNS with PPP terminated: the L2TP session is installed (not steered) and the
/// subscriber is a gateway session reached through it (`Encap::L2tp`). Its uplink comes
/// out of the tunnel and through the subscriber stages (counted to the session, TTL
/// decremented once), its downlink goes through them and into the tunnel toward the LAC;
/// a packet from another source in the session is spoofed.
#[test]
fn ppp_subscriber_goes_through_the_subscriber_stages() {
    let mut lns = ppp_lns();
    let msg = from_lac;
    let up_inner = up(SUB, SUB_MAC, 7);
    lns.access.send(msg(&up_inner));
    lns.poll();
    let out = lns.core.drain();
    assert_eq!(out.len(), 1);
    assert_eq!(seq_of(&out[0]), (SUB, SRV, 63, 7));
    assert_eq!(&out[0][..12], &[SRV_MAC.0, LNS_CORE_MAC.0].concat()[..]);
    // Down: into the tunnel toward the LAC, the inner packet with TTL 63.
    lns.core.send(down(SUB, 8));
    lns.poll();
    let out = lns.access.drain();
    assert_eq!(out.len(), 1);
    let p = SlicedPacket::from_ethernet(&out[0]).unwrap();
    let Some(etherparse::NetSlice::Ipv4(ip)) = &p.net else {
        panic!("not IPv4")
    };
    assert_eq!(
        (ip.header().source_addr(), ip.header().destination_addr()),
        (LNS_LINE, LAC_LINE)
    );
    assert_eq!(
        &out[0][..12],
        &[LAC_LINE_MAC.0, LNS_LINE_MAC.0].concat()[..]
    );
    let Some(TransportSlice::Udp(u)) = p.transport else {
        panic!("not UDP")
    };
    let l2tp = u.payload();
    assert_eq!(
        &l2tp[..10],
        &[0x00, 0x02, 0, 10, 0, 1, 0xff, 0x03, 0x00, 0x21]
    );
    let mut inner = vec![0u8; 14];
    inner[12] = 0x08;
    inner.extend_from_slice(&l2tp[10..]);
    assert_eq!(seq_of(&inner), (SRV, SUB, 63, 8));
    // Another source inside the session: spoofed.
    let before = lns.drops(DropReason::SourceSpoofed);
    lns.access.send(msg(&up(SUB2, SUB2_MAC, 9)));
    lns.poll();
    assert_eq!(lns.drops(DropReason::SourceSpoofed), before + 1);
    assert!(lns.core.drain().is_empty());
    // Counted to the subscriber's session: the IP total length each way.
    let ip_len = (up_inner.len() - 14) as u64;
    lns.command(Command::SessionQuery { id: 1, seq: 3 });
    let c = std::iter::from_fn(|| lns.ctl.events.pop())
        .find_map(|e| match e {
            Event::SessionCounters {
                id: 1,
                seq: 3,
                counters,
                ..
            } => Some(counters),
            _ => None,
        })
        .expect("the session answers");
    let want = SessionCounters {
        tx_packets: 1,
        tx_bytes: ip_len,
        rx_packets: 1,
        rx_bytes: ip_len,
    };
    assert_eq!(c, want);
    let wc = lns.worker.report(0, Instant(1)).counters;
    assert_eq!((wc.l2tp_decapsulated, wc.l2tp_encapsulated), (1, 1));
}

/// An LNS with one PPP subscriber, SUB, in its L2TP session 5 (the LAC's 1, tunnel 20).
fn ppp_lns() -> Node {
    let mut lns = lns();
    let (_, b) = sessions(SUB, 1, 5);
    lns.command(Command::L2tpSessionSet(b));
    lns.command(Command::SessionAdd(SessionSpec {
        id: 1,
        user: 1001,
        channel: 1,
        address: SUB,
        mac: Some(subscriber_mac(5)),
        started: Instant(1_000_000_000),
        limits: Default::default(),
        bandwidth: Default::default(),
        services: Default::default(),
        max_flows: 0,
        access: AccessLine {
            vlans: Default::default(),
            encap: Encap::L2tp { session: 5 },
            mss_clamp: 0,
        },
    }));
    lns
}

/// The LAC's L2TP data message to the LNS's session 5 with the IPv4 packet of the
/// Ethernet frame `inner` in PPP.
fn from_lac(inner: &[u8]) -> Vec<u8> {
    let mut l2tp = vec![0x00, 0x02, 0, 20, 0, 5, 0xff, 0x03, 0x00, 0x21];
    l2tp.extend_from_slice(&inner[14..]);
    let mut f = Vec::new();
    PacketBuilder::ethernet2(LAC_LINE_MAC.0, LNS_LINE_MAC.0)
        .ipv4(LAC_LINE.octets(), LNS_LINE.octets(), 64)
        .udp(1701, 1701)
        .write(&mut f, &l2tp)
        .unwrap();
    f
}

/// What the gateway answers in place of a PPP subscriber's packet (an Echo Reply for its
/// address, Time Exceeded) goes back into the subscriber's tunnel, the inner packet as
/// the gateway built it (TTL 64), not onto the line as a plain frame.
#[test]
fn answers_in_place_go_back_into_the_tunnel() {
    let mut lns = ppp_lns();
    let mut req = Vec::new();
    PacketBuilder::ethernet2(SUB_MAC.0, LAC_ACC_MAC.0)
        .ipv4(SUB.octets(), LNS_CORE.octets(), 64)
        .icmpv4_echo_request(7, 1)
        .write(&mut req, b"ping")
        .unwrap();
    let mut reply = Vec::new();
    PacketBuilder::ipv4(LNS_CORE.octets(), SUB.octets(), 64)
        .icmpv4_echo_reply(7, 1)
        .write(&mut reply, b"ping")
        .unwrap();
    let (mut trace, mut te) = (Vec::new(), Vec::new());
    PacketBuilder::ethernet2(SUB_MAC.0, LAC_ACC_MAC.0)
        .ipv4(SUB.octets(), SRV.octets(), 1)
        .udp(40000, 33434)
        .write(&mut trace, b"trace")
        .unwrap();
    // From the address of the side it came in on, quoting its header and 8 bytes (RFC 792).
    let quoted = &trace[14..14 + 28];
    PacketBuilder::ipv4(LNS_LINE.octets(), SUB.octets(), 64)
        .icmpv4(etherparse::Icmpv4Type::TimeExceeded(
            etherparse::icmpv4::TimeExceededCode::TtlExceededInTransit,
        ))
        .write(&mut te, quoted)
        .unwrap();
    for (what, frame, want) in [("echo", req, reply), ("time exceeded", trace, te)] {
        lns.access.send(from_lac(&frame));
        lns.poll();
        assert!(lns.core.drain().is_empty(), "{what}: nothing to the core");
        let out = lns.access.drain();
        assert_eq!(out.len(), 1, "{what}: one frame back to the LAC");
        assert_eq!(
            &out[0][..12],
            &[LAC_LINE_MAC.0, LNS_LINE_MAC.0].concat()[..]
        );
        let p = SlicedPacket::from_ethernet(&out[0]).unwrap();
        let Some(TransportSlice::Udp(u)) = p.transport else {
            panic!("{what}: not L2TP over UDP")
        };
        let l2tp = u.payload();
        assert_eq!(
            &l2tp[..10],
            &[0x00, 0x02, 0, 10, 0, 1, 0xff, 0x03, 0x00, 0x21]
        );
        let mut got = l2tp[10..].to_vec();
        let mut want = want;
        // The gateway's IP identification and DF are its own: compared apart.
        for p in [&mut got, &mut want] {
            p[4..8].fill(0);
            p[10..12].fill(0);
        }
        assert_eq!(got, want, "{what}: the inner packet");
        let h = Ipv4Header::from_slice(&l2tp[10..]).unwrap().0;
        assert_eq!(h.header_checksum, h.calc_header_checksum(), "{what}");
    }
    let wc = lns.worker.report(0, Instant(1)).counters;
    assert_eq!(wc.l2tp_encapsulated, 2);
}

/// Make-before-break: a second session in another tunnel is installed on both ends, the
/// LNS switches first (as on ICCN), packets in flight on the old session still arrive,
/// the LAC switches, the old session is removed. Not one packet of either direction is
/// lost, and each arrives once, in order.
#[derive(Default)]
struct Flows {
    up_seq: u32,
    down_seq: u32,
    got_up: Vec<u32>,
    got_down: Vec<u32>,
}

impl Flows {
    /// Four packets each way, carried over the line and delivered.
    fn step(&mut self, lac: &mut Node, lns: &mut Node) {
        for _ in 0..4 {
            lac.access.send(up(SUB, SUB_MAC, self.up_seq));
            lns.core.send(down(SUB, self.down_seq));
            self.up_seq += 1;
            self.down_seq += 1;
        }
        lac.poll();
        lns.poll();
        carry(lac, lns);
        lac.poll();
        lns.poll();
        self.got_up
            .extend(lns.core.drain().iter().map(|f| seq_of(f).3));
        self.got_down
            .extend(lac.access.drain().iter().map(|f| seq_of(f).3));
    }
}

/// Make-before-break: a second session in another tunnel is installed on both ends, the
/// LNS switches first (as on ICCN), packets in flight on the old session still arrive,
/// the LAC switches, the old session is removed. Not one packet of either direction is
/// lost, and each arrives once, in order.
#[test]
fn moving_a_subscriber_loses_nothing() {
    let (mut lac, mut lns) = (lac(), lns());
    install(&mut lac, &mut lns, SUB, 1, 5);
    let mut f = Flows::default();
    f.step(&mut lac, &mut lns);
    // New sessions: LAC 2 (tunnel 10), LNS 6; installed, not steered.
    let (a, b) = sessions(SUB, 2, 6);
    lac.command(Command::L2tpSessionSet(a));
    lns.command(Command::L2tpSessionSet(b));
    f.step(&mut lac, &mut lns);
    // A frame in flight on the old session while the LNS switches.
    lac.access.send(up(SUB, SUB_MAC, f.up_seq));
    f.up_seq += 1;
    lac.poll();
    lns.command(Command::L2tpSteer {
        subscriber: SUB,
        session: 6,
    });
    f.step(&mut lac, &mut lns);
    lac.command(Command::L2tpSteer {
        subscriber: SUB,
        session: 2,
    });
    f.step(&mut lac, &mut lns);
    lac.command(Command::L2tpSessionRemove { session: 1 });
    lns.command(Command::L2tpSessionRemove { session: 5 });
    f.step(&mut lac, &mut lns);
    assert_eq!(f.got_up, (0..f.up_seq).collect::<Vec<_>>());
    assert_eq!(f.got_down, (0..f.down_seq).collect::<Vec<_>>());
    for n in [&mut lac, &mut lns] {
        assert_eq!(n.worker.report(0, Instant(1)).counters.total_drops(), 0);
        assert_eq!(n.worker.pipeline().l2tp.len(), 1);
    }
}

#[test]
fn bad_l2tp_is_a_counted_drop() {
    let mut lns = lns();
    let (_, b) = sessions(SUB, 1, 5);
    lns.command(Command::L2tpSessionSet(b));
    let msg = |payload: &[u8], src: Ipv4Addr| {
        let mut f = Vec::new();
        PacketBuilder::ethernet2(LAC_LINE_MAC.0, LNS_LINE_MAC.0)
            .ipv4(src.octets(), LNS_LINE.octets(), 64)
            .udp(1701, 1701)
            .write(&mut f, payload)
            .unwrap();
        f
    };
    let inner = tollgate_testkit::frame::udp(SUB_MAC, SUB_MAC, SUB, SRV, 64, b"x");
    let mut ok = vec![0x00, 0x02, 0, 20, 0, 5, 0xff, 0x03, 0x00, 0x21];
    ok.extend_from_slice(&inner[14..]);
    let mut ipv6 = ok.clone();
    ipv6[8..10].copy_from_slice(&[0x00, 0x57]);
    let mut other_tunnel = ok.clone();
    other_tunnel[3] = 21;
    let mut bad_csum = ok.clone();
    bad_csum[10 + 12..10 + 16].copy_from_slice(&SUB2.octets());
    let mut spoofed = ok[..10].to_vec();
    spoofed.extend_from_slice(
        &tollgate_testkit::frame::udp(SUB_MAC, SUB_MAC, SUB2, SRV, 64, b"x")[14..],
    );
    let cases: Vec<(Vec<u8>, DropReason)> = vec![
        (
            msg(&[0x00, 0x03, 0, 20, 0, 5], LAC_LINE),
            DropReason::L2tpMalformed,
        ),
        (msg(&[0x00, 0x02, 0], LAC_LINE), DropReason::L2tpMalformed),
        (
            msg(&[0x00, 0x02, 0, 20, 0, 9, 0xff], LAC_LINE),
            DropReason::L2tpUnknownSession,
        ),
        (msg(&other_tunnel, LAC_LINE), DropReason::L2tpUnknownSession),
        (
            msg(&ok, Ipv4Addr::new(172, 16, 0, 9)),
            DropReason::L2tpUnknownSession,
        ),
        (msg(&ipv6, LAC_LINE), DropReason::L2tpNotIpv4),
        (msg(&ok[..8], LAC_LINE), DropReason::L2tpMalformed),
        (msg(&ok[..20], LAC_LINE), DropReason::Ipv4Malformed),
        (msg(&bad_csum, LAC_LINE), DropReason::Ipv4BadChecksum),
        (msg(&spoofed, LAC_LINE), DropReason::SourceSpoofed),
    ];
    for (f, reason) in cases {
        let before = lns.drops(reason);
        lns.access.send(f);
        lns.poll();
        assert_eq!(lns.drops(reason), before + 1, "{reason:?}");
    }
    assert!(lns.core.drain().is_empty());
    // The well-formed one goes through.
    lns.access.send(msg(&ok, LAC_LINE));
    lns.poll();
    assert_eq!(lns.core.drain().len(), 1);
    let c = lns.worker.report(0, Instant(1)).counters;
    let held = lns.worker.held() as u64;
    let (i, o) = c.balance(held);
    assert_eq!(i, o);
}

#[test]
fn oversize_gets_fragmentation_needed() {
    let mut lac = node(
        (LAC_ACC_MAC, LAC_ACC),
        (LAC_LINE_MAC, LAC_LINE),
        &[(SUB, SUB_MAC), (LNS_LINE, LNS_LINE_MAC)],
        1400,
    );
    let (a, _) = sessions(SUB, 1, 5);
    lac.command(Command::L2tpSessionSet(a));
    lac.command(Command::L2tpSteer {
        subscriber: SUB,
        session: 1,
    });
    let big = |df: bool| {
        let payload = vec![0u8; 1400 - 20 - 8];
        let mut ip = Ipv4Header::new(
            (payload.len() + 8) as u16,
            64,
            IpNumber::UDP,
            SUB.octets(),
            SRV.octets(),
        )
        .unwrap();
        ip.dont_fragment = df;
        let mut f = Vec::new();
        PacketBuilder::ethernet2(SUB_MAC.0, LAC_ACC_MAC.0)
            .ip(etherparse::IpHeaders::Ipv4(ip, Default::default()))
            .udp(40000, 5001)
            .write(&mut f, &payload)
            .unwrap();
        f
    };
    lac.access.send(big(true));
    lac.access.send(big(false));
    lac.poll();
    assert_eq!(lac.drops(DropReason::L2tpTooBig), 2);
    assert!(lac.core.drain().is_empty());
    let back = lac.access.drain();
    assert_eq!(back.len(), 1, "one ICMP error, for the DF packet");
    let p = SlicedPacket::from_ethernet(&back[0]).unwrap();
    let Some(TransportSlice::Icmpv4(icmp)) = p.transport else {
        panic!("not ICMP")
    };
    assert_eq!(
        icmp.icmp_type(),
        etherparse::Icmpv4Type::DestinationUnreachable(
            etherparse::icmpv4::DestUnreachableHeader::FragmentationNeeded {
                next_hop_mtu: 1400 - 38
            }
        )
    );
    let h = icmp.header();
    assert_eq!(
        h.checksum,
        etherparse::Icmpv4Header::with_checksum(h.icmp_type.clone(), icmp.payload()).checksum
    );
}
