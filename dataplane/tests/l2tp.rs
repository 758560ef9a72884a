//! The L2TP stage of an LNS terminating PPP, one worker on memory ports: the LAC on its
//! access side, servers on its core side. Frames are built and carried by hand, so every
//! byte on the "line" can be looked at. Checks: the encapsulation parses as IPv4/UDP
//! 1701/L2TP/PPP/IPv4, both directions go through the subscriber's session with the TTL
//! decremented once, control messages (L2TP and PPP) are punted, a move to another L2TP
//! session (install, switch the gateway session, remove) loses nothing in flight, bad
//! input is a counted drop (`l2tp_no_session` for a subscriber whose gateway session is
//! not on the worker), and an oversize packet gets fragmentation-needed.
//!
//! A LAC switching PPP between PPPoE and L2TP is `lac.rs`'s.

use std::net::Ipv4Addr;

use etherparse::{IpNumber, Ipv4Header, PacketBuilder, SlicedPacket, TransportSlice};
use tollgate_dataplane::l2tp::{L2tpSessionSpec, TunnelRole};
use tollgate_dataplane::msg::ControlEnds;
use tollgate_dataplane::port::memory::{MemoryPeer, MemoryPort};
use tollgate_dataplane::session::{
    AccessLine, DisconnectCause, Encap, SessionCounters, SessionSpec, SessionUpdate,
};
use tollgate_dataplane::snapshot::Publisher;
use tollgate_dataplane::time::Instant;
use tollgate_dataplane::wire::l2tp::subscriber_mac;
use tollgate_dataplane::{
    Command, DropReason, Event, ForwardingBuilder, HeapPool, MacAddr, Route, SideConfig, Worker,
    WorkerConfig, worker_rings,
};

const SUB: Ipv4Addr = Ipv4Addr::new(10, 10, 0, 11);
const SUB2: Ipv4Addr = Ipv4Addr::new(10, 10, 0, 12);
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
    // The LNS's subscribers (PPP terminated here) are on its access side, behind the LAC.
    let b = ForwardingBuilder::new(side(access), side(core)).route(Route {
        prefix: Ipv4Addr::new(10, 10, 0, 0),
        len: 24,
        via: LAC_LINE,
    });
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

fn lns() -> Node {
    node(
        (LNS_LINE_MAC, LNS_LINE),
        (LNS_CORE_MAC, LNS_CORE),
        &[(LAC_LINE, LAC_LINE_MAC), (SRV, SRV_MAC)],
        1500,
    )
}

/// LNS session `lns_s` in tunnel 20 for `sub`, the LAC's session `lac_s` in its tunnel 10.
fn lns_spec(sub: Ipv4Addr, lac_s: u16, lns_s: u16) -> L2tpSessionSpec {
    L2tpSessionSpec {
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
    }
}

/// The gateway session `id` of PPP subscriber `sub` reached through L2TP session `s`, as
/// the LNS installs it once IPCP is up.
fn ppp_session(id: u32, sub: Ipv4Addr, s: u16) -> SessionSpec {
    SessionSpec {
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
    }
}

fn up(sub: Ipv4Addr, mac: MacAddr, seq: u32) -> Vec<u8> {
    tollgate_testkit::frame::udp(mac, LAC_ACC_MAC, sub, SRV, 64, &seq.to_be_bytes())
}

fn down(sub: Ipv4Addr, seq: u32) -> Vec<u8> {
    tollgate_testkit::frame::udp(SRV_MAC, LNS_CORE_MAC, SRV, sub, 64, &seq.to_be_bytes())
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

/// An L2TP data message the LNS sent the LAC: checked to be IPv4/UDP 1701/L2TP/PPP/IPv4
/// from the LNS to the LAC, on the wire toward the LAC's MAC, into the LAC's tunnel 10,
/// checksums right. Returns the LAC's session id and the inner packet as an Ethernet
/// frame (for [`seq_of`]).
fn to_lac(f: &[u8]) -> (u16, Vec<u8>) {
    assert_eq!(&f[0..6], &LAC_LINE_MAC.0);
    assert_eq!(&f[6..12], &LNS_LINE_MAC.0);
    let outer = SlicedPacket::from_ethernet(f).unwrap();
    let Some(etherparse::NetSlice::Ipv4(ip)) = &outer.net else {
        panic!("outer not IPv4")
    };
    assert_eq!(
        (ip.header().source_addr(), ip.header().destination_addr()),
        (LNS_LINE, LAC_LINE)
    );
    assert_eq!(
        ip.header().header_checksum(),
        ip.header().to_header().calc_header_checksum()
    );
    let Some(TransportSlice::Udp(u)) = &outer.transport else {
        panic!("outer not UDP")
    };
    assert_eq!((u.source_port(), u.destination_port()), (1701, 1701));
    let l2 = u.payload();
    // flags: data, version 2; the peer's tunnel; its session; PPP ff 03 00 21.
    assert_eq!(&l2[..4], &[0x00, 0x02, 0, 10]);
    assert_eq!(&l2[6..10], &[0xff, 0x03, 0x00, 0x21]);
    let inner = Ipv4Header::from_slice(&l2[10..]).unwrap().0;
    assert_eq!(
        inner.header_checksum,
        inner.calc_header_checksum(),
        "inner checksum updated with the TTL"
    );
    let mut frame = vec![0u8; 12];
    frame.extend_from_slice(&[0x08, 0x00]);
    frame.extend_from_slice(&l2[10..]);
    (u16::from_be_bytes([l2[4], l2[5]]), frame)
}

/// Both directions of a PPP subscriber on the line: the downlink encapsulated toward the
/// LAC (IPv4/UDP 1701/L2TP/PPP/IPv4, the inner TTL decremented and its checksum updated),
/// the LAC's data message decapsulated and routed to the server, TTL decremented once.
#[test]
fn encapsulation_on_the_line_is_l2tp_ppp_ipv4() {
    let mut lns = ppp_lns();
    lns.core.send(down(SUB, 7));
    lns.poll();
    let line = lns.access.drain();
    assert_eq!(line.len(), 1);
    let (lac_s, inner) = to_lac(&line[0]);
    assert_eq!(lac_s, 1);
    assert_eq!(seq_of(&inner), (SRV, SUB, 63, 7));
    assert_eq!(
        Ipv4Header::from_slice(&inner[14..]).unwrap().0.protocol,
        IpNumber::UDP
    );
    // The LAC's data message: decapsulated and routed to the server.
    lns.access.send(from_lac(&up(SUB, SUB_MAC, 8)));
    lns.poll();
    let out = lns.core.drain();
    assert_eq!(out.len(), 1);
    assert_eq!(&out[0][0..6], &SRV_MAC.0);
    assert_eq!(&out[0][6..12], &LNS_CORE_MAC.0);
    assert_eq!(seq_of(&out[0]), (SUB, SRV, 63, 8));
    let c = lns.worker.report(0, Instant(1)).counters;
    assert_eq!(
        (c.l2tp_decapsulated, c.l2tp_encapsulated, c.total_drops()),
        (1, 1, 0)
    );
}

#[test]
fn downlink_and_session_counters() {
    let mut lns = ppp_lns();
    for i in 0..3 {
        lns.core.send(down(SUB, i));
    }
    lns.poll();
    let got: Vec<_> = lns
        .access
        .drain()
        .iter()
        .map(|f| {
            let (lac_s, inner) = to_lac(f);
            (lac_s, seq_of(&inner))
        })
        .collect();
    assert_eq!(
        got,
        (0..3).map(|i| (1, (SRV, SUB, 63, i))).collect::<Vec<_>>(),
        "into the tunnel toward the LAC in order"
    );
    while lns.ctl.events.pop().is_some() {}
    lns.command(Command::L2tpReport { seq: 9 });
    let evs: Vec<Event> = std::iter::from_fn(|| lns.ctl.events.pop()).collect();
    match &evs[..] {
        [
            Event::L2tpCounters {
                session: 5,
                tunnel: 20,
                seq: 9,
                counters,
            },
            Event::L2tpReported {
                seq: 9,
                sessions: 1,
            },
        ] => {
            assert_eq!((counters.decap_packets, counters.encap_packets), (0, 3));
            assert_eq!(counters.encap_bytes, 3 * 32);
        }
        other => panic!("unexpected events {other:?}"),
    }
}

#[test]
fn control_messages_are_punted() {
    let mut lns = lns();
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
}

/// LNS: PPP control in an installed session's data messages (an LCP Configure-Request,
/// with and without `ff 03`, and a CHAP Response with a compressed protocol field is not
/// valid PPP but an IPCP one with two bytes is) goes to the control plane whole, counted;
/// PPP control for a session not installed is still an unknown session.
#[test]
fn ppp_control_is_punted() {
    let mut lns = lns();
    lns.command(Command::L2tpSessionSet(lns_spec(SUB, 1, 5)));
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

/// An LNS with one PPP subscriber, SUB, in its L2TP session 5 (the LAC's 1, tunnel 20),
/// installed as the LNS does it: the L2TP session, then the gateway session through it.
fn ppp_lns() -> Node {
    let mut lns = lns();
    lns.command(Command::L2tpSessionSet(lns_spec(SUB, 1, 5)));
    lns.command(Command::SessionAdd(ppp_session(1, SUB, 5)));
    lns
}

/// The LAC's L2TP data message to the LNS's session 5 with the IPv4 packet of the
/// Ethernet frame `inner` in PPP.
fn from_lac(inner: &[u8]) -> Vec<u8> {
    from_lac_on(5, inner)
}

/// The same to the LNS's session `session`.
fn from_lac_on(session: u16, inner: &[u8]) -> Vec<u8> {
    let [hi, lo] = session.to_be_bytes();
    let mut l2tp = vec![0x00, 0x02, 0, 20, hi, lo, 0xff, 0x03, 0x00, 0x21];
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

/// Both directions of SUB at the LNS: the uplink sent in the LNS's L2TP session `up_on`
/// (the one the LAC uses), the downlink from the server; what each delivered.
struct Flows {
    up_on: u16,
    up_seq: u32,
    down_seq: u32,
    got_up: Vec<u32>,
    /// The LAC's session each came in, and its sequence number.
    got_down: Vec<(u16, u32)>,
}

impl Flows {
    /// Four packets each way, delivered.
    fn step(&mut self, lns: &mut Node) {
        for _ in 0..4 {
            lns.access
                .send(from_lac_on(self.up_on, &up(SUB, SUB_MAC, self.up_seq)));
            lns.core.send(down(SUB, self.down_seq));
            self.up_seq += 1;
            self.down_seq += 1;
        }
        lns.poll();
        self.got_up
            .extend(lns.core.drain().iter().map(|f| seq_of(f).3));
        self.got_down.extend(lns.access.drain().iter().map(|f| {
            let (lac_s, inner) = to_lac(f);
            (lac_s, seq_of(&inner).3)
        }));
    }
}

/// Make-before-break at the LNS (TUN-3): a second L2TP session (the LAC's 2) is
/// installed, the gateway session switches to it (the downlink follows at once) while
/// the LAC still sends in the old one, a packet in flight in the old session still
/// arrives, the LAC switches, the old session is removed. Not one packet of either
/// direction is lost, each arrives once, in order, all counted to the subscriber.
#[test]
fn moving_a_subscriber_loses_nothing() {
    let mut lns = ppp_lns();
    let mut f = Flows {
        up_on: 5,
        up_seq: 0,
        down_seq: 0,
        got_up: Vec::new(),
        got_down: Vec::new(),
    };
    f.step(&mut lns);
    // The new session: LNS 6, the LAC's 2; installed, the subscriber not in it yet.
    lns.command(Command::L2tpSessionSet(lns_spec(SUB, 2, 6)));
    f.step(&mut lns);
    // A frame in flight in the old session while the LNS switches.
    let in_flight = from_lac_on(5, &up(SUB, SUB_MAC, f.up_seq));
    f.up_seq += 1;
    lns.command(Command::SessionUpdate {
        id: 1,
        update: SessionUpdate {
            l2tp_session: Some(6),
            ..SessionUpdate::default()
        },
    });
    lns.access.send(in_flight);
    f.step(&mut lns);
    f.up_on = 6;
    f.step(&mut lns);
    lns.command(Command::L2tpSessionRemove { session: 5 });
    f.step(&mut lns);
    assert_eq!(f.got_up, (0..f.up_seq).collect::<Vec<_>>());
    let want: Vec<(u16, u32)> = (0..f.down_seq)
        .map(|i| (if i < 8 { 1 } else { 2 }, i))
        .collect();
    assert_eq!(f.got_down, want, "down in the old session until the switch");
    assert_eq!(lns.worker.report(0, Instant(1)).counters.total_drops(), 0);
    assert_eq!(lns.worker.pipeline().l2tp.len(), 1);
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
    assert_eq!(
        (c.tx_packets, c.rx_packets),
        (u64::from(f.up_seq), u64::from(f.down_seq))
    );
}

#[test]
fn bad_l2tp_is_a_counted_drop() {
    let mut lns = ppp_lns();
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

/// LNS: an L2TP session installed before its subscriber's gateway session reaches the
/// worker (or with the subscriber's address held by a session not reached through
/// L2TP): the subscriber's IPv4 is a counted `l2tp_no_session` drop, neither routed nor
/// counted as decapsulated; PPP control still goes to the control plane. Once the gateway
/// session is there, the same packet goes through it.
#[test]
fn lns_without_the_subscriber_s_session_drops_its_ipv4() {
    let mut lns = lns();
    lns.command(Command::L2tpSessionSet(lns_spec(SUB, 1, 5)));
    for seq in 0..2 {
        lns.access.send(from_lac(&up(SUB, SUB_MAC, seq)));
    }
    // IPCP Configure-Request id 1: IP-Address 0.0.0.0.
    let mut ipcp = Vec::new();
    PacketBuilder::ethernet2(LAC_LINE_MAC.0, LNS_LINE_MAC.0)
        .ipv4(LAC_LINE.octets(), LNS_LINE.octets(), 64)
        .udp(1701, 1701)
        .write(
            &mut ipcp,
            &[
                0x00, 0x02, 0, 20, 0, 5, 0xff, 0x03, 0x80, 0x21, 0x01, 0x01, 0x00, 0x0a, 0x03,
                0x06, 0, 0, 0, 0,
            ],
        )
        .unwrap();
    lns.access.send(ipcp.clone());
    lns.poll();
    assert!(lns.core.drain().is_empty() && lns.access.drain().is_empty());
    assert_eq!(
        lns.ctl.punt.pop().expect("PPP control punted").bytes(),
        &ipcp[..]
    );
    assert_eq!(lns.drops(DropReason::L2tpNoSession), 2);
    // The subscriber's address held by a plain (not L2TP) session: still not its session.
    let mut plain = ppp_session(2, SUB, 5);
    plain.access.encap = Encap::Ipoe;
    plain.mac = Some(SUB_MAC);
    lns.command(Command::SessionAdd(plain));
    lns.access.send(from_lac(&up(SUB, SUB_MAC, 2)));
    lns.poll();
    assert!(lns.core.drain().is_empty());
    assert_eq!(lns.drops(DropReason::L2tpNoSession), 3);
    let c = lns.worker.report(0, Instant(1)).counters;
    assert_eq!(
        (c.l2tp_decapsulated, c.l2tp_ppp_control, c.total_drops()),
        (0, 1, 3)
    );
    lns.command(Command::SessionRemove {
        id: 2,
        cause: DisconnectCause::AdminReset,
    });
    // The gateway session arrives: the next packet goes through it.
    lns.command(Command::SessionAdd(ppp_session(1, SUB, 5)));
    lns.access.send(from_lac(&up(SUB, SUB_MAC, 3)));
    lns.poll();
    let out = lns.core.drain();
    assert_eq!(out.len(), 1);
    assert_eq!(seq_of(&out[0]), (SUB, SRV, 63, 3));
    let c = lns.worker.report(0, Instant(1)).counters;
    assert_eq!((c.l2tp_decapsulated, c.total_drops()), (1, 3));
    let (i, o) = c.balance(lns.worker.held() as u64);
    assert_eq!(i, o);
}

/// A downlink packet that would not fit `l2tp.mtu` once encapsulated: dropped, and a
/// fragmentation-needed goes back to the server for the one with DF set.
#[test]
fn oversize_gets_fragmentation_needed() {
    let mut lns = node(
        (LNS_LINE_MAC, LNS_LINE),
        (LNS_CORE_MAC, LNS_CORE),
        &[(LAC_LINE, LAC_LINE_MAC), (SRV, SRV_MAC)],
        1400,
    );
    lns.command(Command::L2tpSessionSet(lns_spec(SUB, 1, 5)));
    lns.command(Command::SessionAdd(ppp_session(1, SUB, 5)));
    let big = |df: bool| {
        let payload = vec![0u8; 1400 - 20 - 8];
        let mut ip = Ipv4Header::new(
            (payload.len() + 8) as u16,
            64,
            IpNumber::UDP,
            SRV.octets(),
            SUB.octets(),
        )
        .unwrap();
        ip.dont_fragment = df;
        let mut f = Vec::new();
        PacketBuilder::ethernet2(SRV_MAC.0, LNS_CORE_MAC.0)
            .ip(etherparse::IpHeaders::Ipv4(ip, Default::default()))
            .udp(5001, 40000)
            .write(&mut f, &payload)
            .unwrap();
        f
    };
    lns.core.send(big(true));
    lns.core.send(big(false));
    lns.poll();
    assert_eq!(lns.drops(DropReason::L2tpTooBig), 2);
    assert!(lns.access.drain().is_empty());
    let back = lns.core.drain();
    assert_eq!(back.len(), 1, "one ICMP error, for the DF packet");
    assert_eq!(&back[0][0..6], &SRV_MAC.0);
    let p = SlicedPacket::from_ethernet(&back[0]).unwrap();
    let Some(etherparse::NetSlice::Ipv4(ip)) = &p.net else {
        panic!("not IPv4")
    };
    assert_eq!(ip.header().destination_addr(), SRV);
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
