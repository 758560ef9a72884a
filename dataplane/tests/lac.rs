//! PPP switched between PPPoE and L2TP at a LAC (issue 15 item 2), on a worker with
//! memory ports: a PPPoE session on a QinQ line switched into an L2TP session toward an
//! LNS on the core side. Frames built with etherparse and checked byte for byte both
//! ways: the PPP frame (IPv4 and LCP alike) is carried unchanged; only IPv4 counts to the
//! session (IP total length); PPP control is counted by the worker; TCP SYNs have their
//! MSS clamped; malformed and oversize frames are counted drops.

use std::net::Ipv4Addr;

use etherparse::{PacketBuilder, SlicedPacket, TransportSlice};
use tollgate_dataplane::l2tp::{L2tpCounters, L2tpSessionSpec, PppoeLeg, TunnelRole};
use tollgate_dataplane::msg::ControlEnds;
use tollgate_dataplane::port::memory::{MemoryPeer, MemoryPort};
use tollgate_dataplane::session::{VlanTag, Vlans};
use tollgate_dataplane::snapshot::Publisher;
use tollgate_dataplane::time::Instant;
use tollgate_dataplane::{
    Command, DropReason, Event, ForwardingBuilder, HeapPool, MacAddr, SideConfig, Worker,
    WorkerConfig, worker_rings,
};

const LAC_ACC: Ipv4Addr = Ipv4Addr::new(10, 10, 0, 1);
const LAC_LINE: Ipv4Addr = Ipv4Addr::new(172, 16, 0, 1);
const LNS: Ipv4Addr = Ipv4Addr::new(172, 16, 0, 2);
const SUB: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 5);
const SRV: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
const SUB_MAC: MacAddr = MacAddr([2, 0x10, 0, 0, 0, 0x11]);
const ACC_MAC: MacAddr = MacAddr([2, 0xa, 0, 0, 0, 1]);
const LINE_MAC: MacAddr = MacAddr([2, 0xa, 0, 0, 0, 2]);
const LNS_MAC: MacAddr = MacAddr([2, 0xb, 0, 0, 0, 1]);
const PPPOE_SESSION: u16 = 0x2a;
/// Our session and tunnel; the LNS's.
const SESSION: u16 = 3;
const TUNNEL: u16 = 10;
const LNS_TUNNEL: u16 = 0x1111;
const LNS_SESSION: u16 = 0x0222;

struct Lac {
    worker: Worker<MemoryPort>,
    access: MemoryPeer,
    core: MemoryPeer,
    ctl: ControlEnds,
}

impl Lac {
    fn new(mtu: u16) -> Lac {
        let side = |mac, address| SideConfig {
            mac,
            address,
            prefix_len: 24,
        };
        let b = ForwardingBuilder::new(side(ACC_MAC, LAC_ACC), side(LINE_MAC, LAC_LINE));
        let publisher = Publisher::new(b.build().unwrap());
        let (w, ctl) = worker_rings(Default::default());
        let (a, access) = MemoryPort::with_peer(4096);
        let (c, core) = MemoryPort::with_peer(4096);
        let cfg = WorkerConfig {
            l2tp_sessions: 16,
            l2tp_mtu: mtu,
            ..WorkerConfig::default()
        };
        let worker = Worker::new(cfg, a, c, HeapPool::new(1024), publisher.reader(), w);
        let mut l = Lac {
            worker,
            access,
            core,
            ctl,
        };
        l.command(Command::NeighborSet {
            ip: LNS,
            mac: LNS_MAC,
        });
        l.command(Command::L2tpSessionSet(spec()));
        l
    }

    fn poll(&mut self) {
        self.worker.poll(Instant(1_000_000_000));
    }

    fn command(&mut self, c: Command) {
        self.ctl.commands.push(c).unwrap();
        self.poll();
    }

    fn counter(&mut self, name: &str) -> u64 {
        let r = self.worker.report(0, Instant(1));
        r.counters
            .named()
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
            .unwrap()
    }

    fn drops(&mut self, r: DropReason) -> u64 {
        self.worker.report(0, Instant(1)).counters.dropped(r)
    }

    fn session_counters(&mut self) -> L2tpCounters {
        self.command(Command::L2tpReport { seq: 1 });
        let evs: Vec<Event> = std::iter::from_fn(|| self.ctl.events.pop()).collect();
        evs.iter()
            .find_map(|e| match e {
                Event::L2tpCounters {
                    session: SESSION,
                    counters,
                    ..
                } => Some(*counters),
                _ => None,
            })
            .expect("the session's counters")
    }

    /// Sends `frame` from the subscriber; returns what left on the core side.
    fn up(&mut self, frame: Vec<u8>) -> Vec<Vec<u8>> {
        assert!(self.access.send(frame));
        self.poll();
        self.core.drain()
    }

    /// Sends `frame` from the LNS; returns what left on the access side.
    fn down(&mut self, frame: Vec<u8>) -> Vec<Vec<u8>> {
        assert!(self.core.send(frame));
        self.poll();
        self.access.drain()
    }
}

fn vlans() -> Vlans {
    Vlans {
        outer: Some(VlanTag {
            tpid: 0x88a8,
            vid: 100,
        }),
        inner: Some(VlanTag {
            tpid: 0x8100,
            vid: 7,
        }),
    }
}

fn spec() -> L2tpSessionSpec {
    L2tpSessionSpec {
        tunnel: TUNNEL,
        session: SESSION,
        peer_tunnel: LNS_TUNNEL,
        peer_session: LNS_SESSION,
        local: LAC_LINE,
        peer: LNS,
        peer_port: 1701,
        subscriber: Ipv4Addr::UNSPECIFIED,
        role: TunnelRole::Lac,
        pppoe: Some(PppoeLeg {
            session: PPPOE_SESSION,
            client: SUB_MAC,
            vlans: vlans(),
            mss_clamp: 1452,
        }),
    }
}

/// The Ethernet, QinQ and PPPoE headers of a session frame of `ppp_len` bytes (PPP
/// protocol included), from the subscriber (`up`) or to it.
fn pppoe_head(up: bool, ppp_len: usize) -> Vec<u8> {
    let mut f = Vec::new();
    let (dst, src) = if up {
        (ACC_MAC, SUB_MAC)
    } else {
        (SUB_MAC, ACC_MAC)
    };
    f.extend_from_slice(&dst.0);
    f.extend_from_slice(&src.0);
    f.extend_from_slice(&[0x88, 0xa8, 0x00, 100, 0x81, 0x00, 0x00, 7, 0x88, 0x64]);
    f.extend_from_slice(&[0x11, 0x00]);
    f.extend_from_slice(&PPPOE_SESSION.to_be_bytes());
    f.extend_from_slice(&(ppp_len as u16).to_be_bytes());
    f
}

/// A PPPoE session frame carrying PPP `protocol` + `packet`, padded to `pad` bytes.
fn pppoe(up: bool, protocol: u16, packet: &[u8], pad: usize) -> Vec<u8> {
    let mut f = pppoe_head(up, 2 + packet.len());
    f.extend_from_slice(&protocol.to_be_bytes());
    f.extend_from_slice(packet);
    f.resize(f.len().max(pad), 0);
    f
}

/// An IPv4/UDP packet of `payload` (its total length is 28 + payload).
fn udp(src: Ipv4Addr, dst: Ipv4Addr, payload: &[u8]) -> Vec<u8> {
    let mut p = Vec::new();
    PacketBuilder::ipv4(src.octets(), dst.octets(), 64)
        .udp(40000, 5001)
        .write(&mut p, payload)
        .unwrap();
    p
}

/// The L2TP data message the LNS sends (its header with `l2tp_head`, then PPP).
fn from_lns(l2tp_head: &[u8], ppp: &[u8]) -> Vec<u8> {
    let mut payload = l2tp_head.to_vec();
    payload.extend_from_slice(ppp);
    let mut f = Vec::new();
    PacketBuilder::ethernet2(LNS_MAC.0, LINE_MAC.0)
        .ipv4(LNS.octets(), LAC_LINE.octets(), 64)
        .udp(1701, 1701)
        .write(&mut f, &payload)
        .unwrap();
    f
}

/// The frame the LAC must send the LNS for PPP frame `ppp` (protocol included).
fn to_lns(ppp: &[u8]) -> Vec<u8> {
    let mut payload = vec![0x00, 0x02];
    payload.extend_from_slice(&LNS_TUNNEL.to_be_bytes());
    payload.extend_from_slice(&LNS_SESSION.to_be_bytes());
    payload.extend_from_slice(&[0xff, 0x03]);
    payload.extend_from_slice(ppp);
    let mut f = Vec::new();
    PacketBuilder::ethernet2(LINE_MAC.0, LNS_MAC.0)
        .ipv4(LAC_LINE.octets(), LNS.octets(), 64)
        .udp(1701, 1701)
        .write(&mut f, &payload)
        .unwrap();
    f
}

/// `frame` as the LAC sends it: no UDP checksum, no DF (what the encapsulation writes;
/// etherparse sets both, which are cleared here and the IPv4 checksum computed again).
fn without_udp_checksum(mut frame: Vec<u8>) -> Vec<u8> {
    frame[14 + 20 + 6..14 + 20 + 8].copy_from_slice(&[0, 0]);
    let mut h = etherparse::Ipv4Header::from_slice(&frame[14..]).unwrap().0;
    h.dont_fragment = false;
    h.header_checksum = h.calc_header_checksum();
    frame[14..34].copy_from_slice(&h.to_bytes());
    frame
}

#[test]
fn ipv4_and_lcp_from_the_subscriber_go_to_the_lns_unchanged() {
    let mut lac = Lac::new(1500);
    // IPv4 of 128 bytes (20 + 8 + 100), padded on the wire.
    let ip = udp(SUB, SRV, &[7; 100]);
    let mut ppp = vec![0x00, 0x21];
    ppp.extend_from_slice(&ip);
    let out = lac.up(pppoe(true, 0x0021, &ip, 200));
    assert_eq!(out, vec![without_udp_checksum(to_lns(&ppp))]);
    // The outer header parses, its checksum verifies; the inner TTL is untouched.
    let p = SlicedPacket::from_ethernet(&out[0]).unwrap();
    let Some(etherparse::NetSlice::Ipv4(h)) = &p.net else {
        panic!("not IPv4")
    };
    assert_eq!(
        h.header().header_checksum(),
        h.header().to_header().calc_header_checksum()
    );
    assert!(matches!(p.transport, Some(TransportSlice::Udp(_))));
    // LCP Echo-Request: switched too, not punted, not counted to the session.
    let echo = [0x09, 0x05, 0x00, 0x08, 0x11, 0x22, 0x33, 0x44];
    let mut ppp = vec![0xc0, 0x21];
    ppp.extend_from_slice(&echo);
    let out = lac.up(pppoe(true, 0xc021, &echo, 60));
    assert_eq!(out, vec![without_udp_checksum(to_lns(&ppp))]);
    assert!(lac.ctl.punt.pop().is_none(), "nothing punted");
    assert_eq!(
        lac.session_counters(),
        L2tpCounters {
            encap_packets: 1,
            encap_bytes: 128,
            decap_packets: 0,
            decap_bytes: 0,
        }
    );
    assert_eq!(lac.counter("lac_switched_to_lns"), 2);
    assert_eq!(lac.counter("lac_control_to_lns"), 1);
    assert_eq!(lac.counter("pppoe_control"), 0);
}

#[test]
fn the_lns_data_goes_to_the_subscriber_with_its_pppoe_header() {
    let mut lac = Lac::new(1500);
    let ip = udp(SRV, SUB, &[9; 100]);
    // With ff 03, a length field and an offset: the PPP frame is what follows.
    let mut ppp = vec![0xff, 0x03, 0x00, 0x21];
    ppp.extend_from_slice(&ip);
    let len = (8 + 2 + ppp.len()) as u16;
    let mut head = vec![0x42, 0x02];
    head.extend_from_slice(&len.to_be_bytes());
    head.extend_from_slice(&TUNNEL.to_be_bytes());
    head.extend_from_slice(&SESSION.to_be_bytes());
    head.extend_from_slice(&[0x00, 0x00]); // offset size 0
    let out = lac.down(from_lns(&head, &ppp));
    assert_eq!(out, vec![pppoe(false, 0x0021, &ip, 0)]);
    // Without ff 03, a PAP Authenticate-Ack (PPP control): to the subscriber as well.
    let ack = [0x02, 0x01, 0x00, 0x05, 0x00];
    let mut ppp = vec![0xc0, 0x23];
    ppp.extend_from_slice(&ack);
    let mut head = vec![0x00, 0x02];
    head.extend_from_slice(&TUNNEL.to_be_bytes());
    head.extend_from_slice(&SESSION.to_be_bytes());
    let out = lac.down(from_lns(&head, &ppp));
    assert_eq!(out, vec![pppoe(false, 0xc023, &ack, 0)]);
    assert_eq!(
        lac.session_counters(),
        L2tpCounters {
            encap_packets: 0,
            encap_bytes: 0,
            decap_packets: 1,
            decap_bytes: 128,
        }
    );
    assert_eq!(lac.counter("lac_switched_to_client"), 2);
    assert_eq!(lac.counter("lac_control_to_client"), 1);
    assert_eq!(lac.counter("l2tp_ppp_control"), 0);
}

#[test]
fn syns_are_clamped_both_ways() {
    let mut lac = Lac::new(1500);
    let syn = |src: Ipv4Addr, dst: Ipv4Addr| {
        let mut p = Vec::new();
        PacketBuilder::ipv4(src.octets(), dst.octets(), 64)
            .tcp(40001, 80, 1000, 65535)
            .syn()
            .options(&[etherparse::TcpOptionElement::MaximumSegmentSize(1460)])
            .unwrap()
            .write(&mut p, &[])
            .unwrap();
        p
    };
    let mss_of = |ip: &[u8]| {
        let p = SlicedPacket::from_ip(ip).unwrap();
        let Some(TransportSlice::Tcp(t)) = p.transport else {
            panic!("not TCP")
        };
        let mss = t.options_iterator().find_map(|o| match o {
            Ok(etherparse::TcpOptionElement::MaximumSegmentSize(m)) => Some(m),
            _ => None,
        });
        let h = t.to_header();
        let ok = h
            .calc_checksum_ipv4_raw(
                match p.net {
                    Some(etherparse::NetSlice::Ipv4(ref i)) => i.header().source(),
                    _ => panic!(),
                },
                match p.net {
                    Some(etherparse::NetSlice::Ipv4(ref i)) => i.header().destination(),
                    _ => panic!(),
                },
                t.payload(),
            )
            .unwrap()
            == h.checksum;
        (mss, ok)
    };
    let out = lac.up(pppoe(true, 0x0021, &syn(SUB, SRV), 0));
    // Outer 14 + 20 + 8 + 6 + 4, then the IPv4 packet.
    assert_eq!(mss_of(&out[0][52..]), (Some(1452), true));
    let mut head = vec![0x00, 0x02];
    head.extend_from_slice(&TUNNEL.to_be_bytes());
    head.extend_from_slice(&SESSION.to_be_bytes());
    let mut ppp = vec![0x00, 0x21];
    ppp.extend_from_slice(&syn(SRV, SUB));
    let out = lac.down(from_lns(&head, &ppp));
    // Ethernet 14, two tags, PPPoE 6 and the protocol 2: the IPv4 packet at 30.
    assert_eq!(mss_of(&out[0][30..]), (Some(1452), true));
}

#[test]
fn strangers_oversize_and_malformed_frames_are_counted() {
    let mut lac = Lac::new(200);
    // Another PPPoE session id (or MAC): not switched, it takes the usual path.
    let mut other = pppoe(true, 0xc021, &[0x09, 0x01, 0x00, 0x08, 1, 2, 3, 4], 0);
    other[24..26].copy_from_slice(&0x2bu16.to_be_bytes());
    assert!(lac.up(other).is_empty());
    assert_eq!(lac.counter("lac_switched_to_lns"), 0);
    // Beyond l2tp.mtu once switched.
    let big = udp(SUB, SRV, &[1; 200]);
    assert!(lac.up(pppoe(true, 0x0021, &big, 0)).is_empty());
    assert_eq!(lac.drops(DropReason::LacTooBig), 1);
    // A PPPoE length beyond the frame; an IPv4 header that does not parse (switched
    // frames are not validated as the gateway's own, but must be counted).
    let mut short = pppoe(true, 0x0021, &udp(SUB, SRV, &[1; 4]), 0);
    short[26..28].copy_from_slice(&100u16.to_be_bytes());
    assert!(lac.up(short).is_empty());
    assert!(lac.up(pppoe(true, 0x0021, &[0x45, 0, 0], 0)).is_empty());
    assert_eq!(lac.drops(DropReason::LacMalformed), 2);
    // Removed: the PPPoE session is no longer switched.
    lac.command(Command::L2tpSessionRemove { session: SESSION });
    let ip = udp(SUB, SRV, &[7; 10]);
    assert!(lac.up(pppoe(true, 0x0021, &ip, 0)).is_empty());
    assert_eq!(lac.counter("lac_switched_to_lns"), 0);
    assert_eq!(lac.drops(DropReason::PppoeSessionUnknown), 1);
}

/// A LAC session that switches no PPPoE call (what only the removed IP mode installed):
/// the LNS's data for it, IPv4 or PPP control, is a counted `l2tp_unknown_session`, not
/// decapsulated and routed nor punted.
#[test]
fn data_for_a_session_without_a_pppoe_leg_is_an_unknown_session() {
    let mut lac = Lac::new(1500);
    lac.command(Command::L2tpSessionSet(L2tpSessionSpec {
        session: 4,
        peer_session: 0x0223,
        subscriber: Ipv4Addr::new(10, 10, 0, 20),
        pppoe: None,
        ..spec()
    }));
    let mut head = vec![0x00, 0x02];
    head.extend_from_slice(&TUNNEL.to_be_bytes());
    head.extend_from_slice(&4u16.to_be_bytes());
    let mut ip = vec![0xff, 0x03, 0x00, 0x21];
    ip.extend_from_slice(&udp(SRV, Ipv4Addr::new(10, 10, 0, 20), &[9; 10]));
    let lcp = [0xff, 0x03, 0xc0, 0x21, 0x09, 0x01, 0x00, 0x08, 1, 2, 3, 4];
    for ppp in [&ip[..], &lcp[..]] {
        assert!(lac.down(from_lns(&head, ppp)).is_empty());
        assert!(lac.core.drain().is_empty());
    }
    assert!(lac.ctl.punt.pop().is_none());
    assert_eq!(lac.drops(DropReason::L2tpUnknownSession), 2);
    let c = lac.worker.report(0, Instant(1)).counters;
    assert_eq!((c.l2tp_decapsulated, c.total_drops()), (0, 2));
}

/// The frame the LAC must send the LNS for PPP frame `ppp` on the LNS's tunnel and
/// session `ids`.
fn to_lns_on(ids: (u16, u16), ppp: &[u8]) -> Vec<u8> {
    let mut f = to_lns(ppp);
    let at = 14 + 20 + 8 + 2;
    f[at..at + 2].copy_from_slice(&ids.0.to_be_bytes());
    f[at + 2..at + 4].copy_from_slice(&ids.1.to_be_bytes());
    without_udp_checksum(f)
}

/// A data message from the LNS to our `tunnel`/`session` carrying PPP `ppp`.
fn from_lns_to(tunnel: u16, session: u16, ppp: &[u8]) -> Vec<u8> {
    let mut head = vec![0x00, 0x02];
    head.extend_from_slice(&tunnel.to_be_bytes());
    head.extend_from_slice(&session.to_be_bytes());
    from_lns(&head, ppp)
}

/// Issue 15 item 3: a switched call moved to another tunnel (make-before-break). The
/// new session, installed with the same PPPoE leg, decapsulates at once but the leg
/// stays switched into the old one; one `L2tpSteer` switches the leg between two bursts;
/// the old session decapsulates what is in flight until it is removed. No frame is lost
/// or goes to the wrong session at any step.
#[test]
fn a_moved_call_switches_its_pppoe_leg_between_two_bursts() {
    const NEW_SESSION: u16 = 4;
    const NEW_TUNNEL: u16 = 11;
    const LNS_NEW: (u16, u16) = (0x1112, 0x0333);
    let mut lac = Lac::new(1500);
    let ip = udp(SUB, SRV, &[7; 100]);
    let mut ppp = vec![0x00, 0x21];
    ppp.extend_from_slice(&ip);
    let down_ip = udp(SRV, SUB, &[9; 100]);
    let mut down_ppp = vec![0x00, 0x21];
    down_ppp.extend_from_slice(&down_ip);
    let to_sub = pppoe(false, 0x0021, &down_ip, 0);
    // The new session is installed: the leg still goes up the old one.
    lac.command(Command::L2tpSessionSet(L2tpSessionSpec {
        tunnel: NEW_TUNNEL,
        session: NEW_SESSION,
        peer_tunnel: LNS_NEW.0,
        peer_session: LNS_NEW.1,
        ..spec()
    }));
    let old_ids = (LNS_TUNNEL, LNS_SESSION);
    assert_eq!(
        lac.up(pppoe(true, 0x0021, &ip, 0)),
        vec![to_lns_on(old_ids, &ppp)]
    );
    // ... and both decapsulate to the subscriber.
    assert_eq!(
        lac.down(from_lns_to(TUNNEL, SESSION, &down_ppp)),
        vec![to_sub.clone()]
    );
    assert_eq!(
        lac.down(from_lns_to(NEW_TUNNEL, NEW_SESSION, &down_ppp)),
        vec![to_sub.clone()]
    );
    // The switch: from the next burst the leg goes up the new session.
    lac.command(Command::L2tpSteer {
        subscriber: Ipv4Addr::UNSPECIFIED,
        session: NEW_SESSION,
    });
    assert_eq!(
        lac.up(pppoe(true, 0x0021, &ip, 0)),
        vec![to_lns_on(LNS_NEW, &ppp)]
    );
    // LCP too (PPP control follows the leg).
    let echo = [0x09, 0x05, 0x00, 0x08, 0x11, 0x22, 0x33, 0x44];
    let mut lcp = vec![0xc0, 0x21];
    lcp.extend_from_slice(&echo);
    assert_eq!(
        lac.up(pppoe(true, 0xc021, &echo, 60)),
        vec![to_lns_on(LNS_NEW, &lcp)]
    );
    // In flight on the old session: still delivered until it is removed.
    assert_eq!(
        lac.down(from_lns_to(TUNNEL, SESSION, &down_ppp)),
        vec![to_sub.clone()]
    );
    lac.command(Command::L2tpSessionRemove { session: SESSION });
    assert_eq!(
        lac.up(pppoe(true, 0x0021, &ip, 0)),
        vec![to_lns_on(LNS_NEW, &ppp)],
        "removing the old session leaves the leg where it is"
    );
    assert_eq!(
        lac.down(from_lns_to(TUNNEL, SESSION, &down_ppp)),
        Vec::<Vec<u8>>::new()
    );
    assert_eq!(lac.drops(DropReason::L2tpUnknownSession), 1);
    assert_eq!(
        lac.down(from_lns_to(NEW_TUNNEL, NEW_SESSION, &down_ppp)),
        vec![to_sub]
    );
    assert_eq!(lac.counter("lac_switched_to_lns"), 4);
    assert_eq!(lac.counter("lac_switched_to_client"), 4);
}

/// An IPv6/UDP packet of `payload` (40 + 8 + payload bytes).
fn udp6(src: [u8; 16], dst: [u8; 16], payload: &[u8]) -> Vec<u8> {
    let mut p = Vec::new();
    PacketBuilder::ipv6(src, dst, 64)
        .udp(40000, 5001)
        .write(&mut p, payload)
        .unwrap();
    p
}

/// PPP is not terminated at a LAC: IPv6 (PPP protocol 0x0057, after the IPv6CP the
/// client and the LNS negotiated through it) is switched both ways unchanged, with
/// `[ipv6]` off at the LAC, and counted to the L2TP session like IPv4 (header and
/// payload), not as PPP control.
#[test]
fn ipv6_in_ppp_is_switched_both_ways_unchanged() {
    let mut lac = Lac::new(1500);
    let sub6 = [
        0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0x11,
    ];
    let srv6 = [
        0x20, 0x01, 0x0d, 0xb8, 0, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    // Up: 40 + 8 + 60 = 108 bytes, the hop limit untouched (the LNS routes).
    let ip = udp6(sub6, srv6, &[6; 60]);
    let mut ppp = vec![0x00, 0x57];
    ppp.extend_from_slice(&ip);
    let out = lac.up(pppoe(true, 0x0057, &ip, 0));
    assert_eq!(out, vec![without_udp_checksum(to_lns(&ppp))]);
    // A Router Solicitation: IPv6 too, for the LNS to answer.
    let rs = {
        let mut p = Vec::new();
        PacketBuilder::ipv6(
            [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            [0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
            255,
        )
        .icmpv6(etherparse::Icmpv6Type::Unknown {
            type_u8: 133,
            code_u8: 0,
            bytes5to8: [0; 4],
        })
        .write(&mut p, &[])
        .unwrap();
        p
    };
    let mut ppp = vec![0x00, 0x57];
    ppp.extend_from_slice(&rs);
    let out = lac.up(pppoe(true, 0x0057, &rs, 0));
    assert_eq!(out, vec![without_udp_checksum(to_lns(&ppp))]);
    // Down: ff 03 00 57 from the LNS, to the subscriber in its PPPoE header.
    let back = udp6(srv6, sub6, &[7; 30]);
    let mut ppp = vec![0xff, 0x03, 0x00, 0x57];
    ppp.extend_from_slice(&back);
    let mut head = vec![0x00, 0x02];
    head.extend_from_slice(&TUNNEL.to_be_bytes());
    head.extend_from_slice(&SESSION.to_be_bytes());
    let out = lac.down(from_lns(&head, &ppp));
    assert_eq!(out, vec![pppoe(false, 0x0057, &back, 0)]);
    assert_eq!(
        lac.session_counters(),
        L2tpCounters {
            encap_packets: 2,
            encap_bytes: 108 + 48,
            decap_packets: 1,
            decap_bytes: 78,
        }
    );
    assert_eq!(lac.counter("lac_switched_to_lns"), 2);
    assert_eq!(lac.counter("lac_switched_to_client"), 1);
    assert_eq!(
        (
            lac.counter("lac_control_to_lns"),
            lac.counter("lac_control_to_client")
        ),
        (0, 0)
    );
    assert_eq!(lac.counter("punted"), 0);
    // An IPv6 header whose length overruns the frame: a counted drop.
    let mut bad = ip.clone();
    bad[4..6].copy_from_slice(&500u16.to_be_bytes());
    assert!(lac.up(pppoe(true, 0x0057, &bad, 0)).is_empty());
    assert_eq!(lac.drops(DropReason::LacMalformed), 1);
}
