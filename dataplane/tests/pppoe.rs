//! PPPoE and VLAN access lines through one worker on memory ports (ACC-1, ACC-4). Frames
//! are built byte by byte (the PPPoE and VLAN headers) and with etherparse (what it can
//! build), and what comes out, on the ports or up the punt ring, is compared byte for
//! byte, with exact counters: the punt path for discovery and PPP control, then the fast
//! path of PPPoE and tagged IPoE sessions (decapsulation, anti-spoofing, encapsulation,
//! MSS clamping, the gateway's own answers).

use std::net::Ipv4Addr;

use etherparse::{PacketBuilder, TcpOptionElement};
use tollgate_dataplane::msg::{ControlEnds, InstallFailure};
use tollgate_dataplane::port::memory::{MemoryPeer, MemoryPort};
use tollgate_dataplane::session::{
    AccessLine, Encap, SessionCounters, SessionSpec, VlanTag, Vlans,
};
use tollgate_dataplane::snapshot::Publisher;
use tollgate_dataplane::time::Instant;
use tollgate_dataplane::{
    Command, DropReason, Event, ForwardingBuilder, HeapPool, MacAddr, RingSizes, Route, Side,
    SideConfig, Worker, WorkerConfig, WorkerCounters, worker_rings,
};
use tollgate_testkit::lab::*;

const POOL: usize = 512;

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
        Rig::with(RingSizes::default())
    }

    fn with(rings: RingSizes) -> Rig {
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
        .route(Route {
            prefix: Ipv4Addr::new(198, 51, 100, 0),
            len: 24,
            via: RTR,
        })
        .build()
        .unwrap();
        let publisher = Publisher::new(fwd);
        let (w, ctl) = worker_rings(rings);
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
        for (ip, mac) in [(SUB, SUB_MAC), (SRV, SRV_MAC), (RTR, RTR_MAC)] {
            r.command(Command::NeighborSet { ip, mac });
        }
        r
    }

    fn command(&mut self, c: Command) {
        self.ctl.commands.push(c).unwrap();
        self.poll();
    }

    fn poll(&mut self) {
        self.worker.poll(self.now);
    }

    fn send(&mut self, side: Side, frame: &[u8]) {
        let peer = match side {
            Side::Access => &mut self.access,
            Side::Core => &mut self.core,
        };
        assert!(peer.send(frame.to_vec()));
        self.poll();
    }

    fn counters(&mut self) -> WorkerCounters {
        self.worker.report(0, self.now).counters
    }

    fn punted(&mut self) -> Vec<Vec<u8>> {
        std::iter::from_fn(|| self.ctl.punt.pop())
            .map(|f| {
                assert_eq!(f.side, Side::Access);
                f.bytes().to_vec()
            })
            .collect()
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

/// Ethernet header from `src` to `dst`, then `tags` (TPID, VID) outer first, then
/// `ethertype`.
fn l2(dst: MacAddr, src: MacAddr, tags: &[(u16, u16)], ethertype: u16) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst.0);
    f.extend_from_slice(&src.0);
    for &(tpid, vid) in tags {
        f.extend_from_slice(&tpid.to_be_bytes());
        // PCP 5 in the tag, to see that it travels untouched.
        f.extend_from_slice(&(0xa000 | vid).to_be_bytes());
    }
    f.extend_from_slice(&ethertype.to_be_bytes());
    f
}

/// A PADI (RFC 2516 §5.1): broadcast, code 0x09, session 0, a Service-Name and a
/// Host-Uniq tag.
fn padi(tags: &[(u16, u16)]) -> Vec<u8> {
    let mut f = l2(MacAddr([0xff; 6]), SUB_MAC, tags, 0x8863);
    let payload = [
        0x01, 0x01, 0x00, 0x00, // Service-Name, empty
        0x01, 0x03, 0x00, 0x04, 0xde, 0xad, 0xbe, 0xef, // Host-Uniq
    ];
    f.extend_from_slice(&[0x11, 0x09, 0x00, 0x00, 0x00, payload.len() as u8]);
    f.extend_from_slice(&payload);
    f
}

/// A PPPoE session frame of session `session` carrying `payload` of PPP protocol `proto`.
fn session_frame(tags: &[(u16, u16)], session: u16, proto: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = l2(ACC_MAC, SUB_MAC, tags, 0x8864);
    f.extend_from_slice(&[0x11, 0x00]);
    f.extend_from_slice(&session.to_be_bytes());
    f.extend_from_slice(&(payload.len() as u16 + 2).to_be_bytes());
    f.extend_from_slice(&proto.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// LCP Configure-Request: MRU 1492, Magic-Number.
const LCP_CONF_REQ: [u8; 14] = [
    0x01, 0x01, 0x00, 0x0e, 0x01, 0x04, 0x05, 0xd4, 0x05, 0x06, 0x12, 0x34, 0x56, 0x78,
];
/// PAP Authenticate-Request: user "u", password "p".
const PAP_REQ: [u8; 8] = [0x01, 0x01, 0x00, 0x08, 0x01, b'u', 0x01, b'p'];
/// CHAP Response (MD5, 16-byte value, name "u").
const CHAP_RESP: [u8; 22] = [
    0x02, 0x07, 0x00, 0x16, 0x10, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, b'u',
];
/// IPCP Configure-Request: IP-Address 0.0.0.0.
const IPCP_CONF_REQ: [u8; 10] = [0x01, 0x01, 0x00, 0x0a, 0x03, 0x06, 0, 0, 0, 0];
/// IPv6CP Configure-Request: Interface-Identifier.
const IPV6CP_CONF_REQ: [u8; 14] = [0x01, 0x01, 0x00, 0x0e, 0x01, 0x0a, 1, 2, 3, 4, 5, 6, 7, 8];

/// The line shapes the access side takes: untagged, 802.1Q, QinQ with an 802.1ad or an
/// 802.1Q outer tag, and a priority tag.
const LINES: [&[(u16, u16)]; 5] = [
    &[],
    &[(0x8100, 100)],
    &[(0x88a8, 200), (0x8100, 300)],
    &[(0x8100, 200), (0x8100, 301)],
    &[(0x8100, 0)],
];

fn control_frames(tags: &[(u16, u16)]) -> Vec<Vec<u8>> {
    vec![
        padi(tags),
        session_frame(tags, 0x2a, 0xc021, &LCP_CONF_REQ),
        session_frame(tags, 0x2a, 0xc023, &PAP_REQ),
        session_frame(tags, 0x2a, 0xc223, &CHAP_RESP),
        session_frame(tags, 0x2a, 0x8021, &IPCP_CONF_REQ),
        session_frame(tags, 0x2a, 0x8057, &IPV6CP_CONF_REQ),
    ]
}

#[test]
fn discovery_and_ppp_control_are_punted_whole_with_their_tags() {
    let mut r = Rig::new();
    let mut sent = Vec::new();
    for tags in LINES {
        for f in control_frames(tags) {
            r.send(Side::Access, &f);
            sent.push(f);
        }
    }
    // Up the punt ring as received, tags and all, in order.
    assert_eq!(r.punted(), sent);
    let c = r.counters();
    assert_eq!((c.punted, c.pppoe_control), (30, 30));
    assert_eq!(c.total_drops(), 0);
    assert!(r.core.drain().is_empty() && r.access.drain().is_empty());
    r.check_balance();
}

#[test]
fn a_full_punt_ring_is_a_counted_drop() {
    let mut r = Rig::with(RingSizes {
        frames: 4,
        ..RingSizes::default()
    });
    let frames = control_frames(&[(0x88a8, 200), (0x8100, 300)]);
    for f in &frames {
        r.send(Side::Access, f);
    }
    let c = r.counters();
    assert_eq!((c.punted, c.pppoe_control), (4, 4));
    assert_eq!(c.dropped(DropReason::PuntRingFull), 2);
    assert_eq!(r.punted(), frames[..4].to_vec());
    // Room again: the next one goes up.
    r.send(Side::Access, &frames[5]);
    assert_eq!(r.punted(), vec![frames[5].clone()]);
    assert_eq!(r.counters().pppoe_control, 5);
    r.check_balance();
}

#[test]
fn pppoe_is_not_punted_from_the_core_side_nor_when_malformed() {
    let mut r = Rig::new();
    // From the core side: not an access line.
    let mut f = padi(&[]);
    r.send(Side::Core, &f);
    // A session header cut short, version 2, and a discovery code in a session frame.
    let lcp = session_frame(&[(0x8100, 7)], 1, 0xc021, &LCP_CONF_REQ);
    r.send(Side::Access, &lcp[..18 + 7]);
    let mut v2 = lcp.clone();
    v2[18] = 0x21;
    r.send(Side::Access, &v2);
    let mut padt_code = lcp.clone();
    padt_code[19] = 0xa7;
    r.send(Side::Access, &padt_code);
    // Three tags.
    f = l2(
        ACC_MAC,
        SUB_MAC,
        &[(0x88a8, 1), (0x8100, 2), (0x8100, 3)],
        0x8863,
    );
    f.extend_from_slice(&[0x11, 0x09, 0, 0, 0, 0]);
    r.send(Side::Access, &f);
    let c = r.counters();
    assert_eq!((c.punted, c.pppoe_control), (0, 0));
    assert_eq!(c.dropped(DropReason::UnsupportedEthertype), 1);
    assert_eq!(c.dropped(DropReason::PppoeMalformed), 3);
    assert_eq!(c.dropped(DropReason::VlanNotConfigured), 1);
    assert!(r.punted().is_empty());
    r.check_balance();
}

// ---- The fast path of PPPoE and tagged sessions --------------------------------------

/// An IPv4/UDP packet (no Ethernet), built by etherparse.
fn ip_udp(src: Ipv4Addr, dst: Ipv4Addr, ttl: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ipv4(src.octets(), dst.octets(), ttl)
        .udp(40000, 53)
        .write(&mut v, payload)
        .unwrap();
    v
}

/// An IPv4/TCP SYN (a SYN-ACK with `ack`) with MSS `mss`, NOP, window scale 7.
fn ip_syn(src: Ipv4Addr, dst: Ipv4Addr, ttl: u8, mss: u16, ack: Option<u32>) -> Vec<u8> {
    let b = PacketBuilder::ipv4(src.octets(), dst.octets(), ttl).tcp(40001, 80, 0x1234_5678, 64240);
    let b = match ack {
        Some(a) => b.syn().ack(a),
        None => b.syn(),
    };
    let b = b
        .options(&[
            TcpOptionElement::MaximumSegmentSize(mss),
            TcpOptionElement::Noop,
            TcpOptionElement::WindowScale(7),
        ])
        .unwrap();
    let mut v = Vec::new();
    b.write(&mut v, &[]).unwrap();
    v
}

/// An Ethernet frame around the IPv4 packet `ip`: `tcis` are (TPID, TCI) outer first,
/// then PPPoE session `pppoe` when given; all byte by byte.
fn framed(
    dst: MacAddr,
    src: MacAddr,
    tcis: &[(u16, u16)],
    pppoe: Option<u16>,
    ip: &[u8],
) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst.0);
    f.extend_from_slice(&src.0);
    for &(tpid, tci) in tcis {
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&tci.to_be_bytes());
    }
    match pppoe {
        Some(id) => {
            f.extend_from_slice(&[0x88, 0x64, 0x11, 0x00]);
            f.extend_from_slice(&id.to_be_bytes());
            f.extend_from_slice(&(ip.len() as u16 + 2).to_be_bytes());
            f.extend_from_slice(&[0x00, 0x21]);
        }
        None => f.extend_from_slice(&[0x08, 0x00]),
    }
    f.extend_from_slice(ip);
    f
}

fn vlans(tags: &[(u16, u16)]) -> Vlans {
    let tag = |i: usize| tags.get(i).map(|&(tpid, vid)| VlanTag { tpid, vid });
    Vlans {
        outer: tag(0),
        inner: tag(1),
    }
}

const PPPOE_ID: u16 = 0x2a;
const SUB2: Ipv4Addr = Ipv4Addr::new(10, 10, 0, 12);
const SUB2_MAC: MacAddr = MacAddr([0x02, 0x10, 0, 0, 0, 0x12]);

impl Rig {
    fn install(&mut self, id: u32, address: Ipv4Addr, mac: Option<MacAddr>, access: AccessLine) {
        self.command(Command::SessionAdd(SessionSpec {
            id,
            user: 1000 + id as u64,
            channel: id,
            address,
            mac,
            started: self.now,
            limits: Default::default(),
            bandwidth: Default::default(),
            services: Default::default(),
            max_flows: 0,
            access,
        }));
    }

    fn up(&mut self, f: &[u8]) -> Vec<Vec<u8>> {
        self.send(Side::Access, f);
        self.core.drain()
    }

    fn down(&mut self, f: &[u8]) -> Vec<Vec<u8>> {
        self.send(Side::Core, f);
        self.access.drain()
    }

    fn session_counters(&mut self, id: u32) -> SessionCounters {
        self.command(Command::SessionQuery { id, seq: 77 });
        std::iter::from_fn(|| self.ctl.events.pop())
            .find_map(|e| match e {
                Event::SessionCounters {
                    id: i,
                    seq: 77,
                    counters,
                    ..
                } if i == id => Some(counters),
                _ => None,
            })
            .expect("the session answers")
    }

    fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.ctl.events.pop()).collect()
    }
}

fn pppoe_line(tags: &[(u16, u16)], mss_clamp: u16) -> AccessLine {
    AccessLine {
        vlans: vlans(tags),
        encap: Encap::Pppoe { session: PPPOE_ID },
        mss_clamp,
    }
}

/// Line shapes: untagged, 802.1Q, QinQ with an 802.1ad outer tag, QinQ with an 802.1Q
/// outer tag. (TPID, VID) as installed.
const SHAPES: [&[(u16, u16)]; 4] = [
    &[],
    &[(0x8100, 100)],
    &[(0x88a8, 200), (0x8100, 300)],
    &[(0x8100, 200), (0x8100, 301)],
];

/// The TCIs a client sends for `tags`: PCP 5 on each, which the gateway does not keep.
fn sent_tcis(tags: &[(u16, u16)]) -> Vec<(u16, u16)> {
    tags.iter().map(|&(t, v)| (t, 0xa000 | v)).collect()
}

#[test]
fn pppoe_sessions_are_decapsulated_and_encapsulated_byte_exact() {
    for tags in SHAPES {
        let mut r = Rig::new();
        r.install(1, SUB, Some(SUB_MAC), pppoe_line(tags, 0));
        let payload = b"a PPPoE subscriber's datagram";
        let up_ip = ip_udp(SUB, SRV, 64, payload);
        let out = r.up(&framed(
            ACC_MAC,
            SUB_MAC,
            &sent_tcis(tags),
            Some(PPPOE_ID),
            &up_ip,
        ));
        // Plain IPoE towards the core, one hop later.
        assert_eq!(
            out,
            vec![framed(
                SRV_MAC,
                CORE_MAC,
                &[],
                None,
                &ip_udp(SUB, SRV, 63, payload)
            )],
            "{tags:x?}"
        );
        let down_ip = ip_udp(SRV, SUB, 64, b"and the answer");
        let out = r.down(&framed(CORE_MAC, SRV_MAC, &[], None, &down_ip));
        // Tagged as installed (PCP 0), PPPoE length = IP length + 2, PPP protocol 0x0021.
        assert_eq!(
            out,
            vec![framed(
                SUB_MAC,
                ACC_MAC,
                tags,
                Some(PPPOE_ID),
                &ip_udp(SRV, SUB, 63, b"and the answer")
            )],
            "{tags:x?}"
        );
        // Bytes are IPv4 total lengths, as for IPoE.
        assert_eq!(
            r.session_counters(1),
            SessionCounters {
                tx_packets: 1,
                tx_bytes: up_ip.len() as u64,
                rx_packets: 1,
                rx_bytes: down_ip.len() as u64,
            }
        );
        let c = r.counters();
        assert_eq!((c.forwarded, c.total_drops(), c.punted), (2, 0, 0));
        r.check_balance();
    }
}

#[test]
fn priority_tagged_frames_belong_to_an_untagged_line() {
    let mut r = Rig::new();
    r.install(1, SUB, Some(SUB_MAC), pppoe_line(&[], 0));
    r.install(2, SUB2, Some(SUB2_MAC), AccessLine::default());
    let ip = ip_udp(SUB, SRV, 64, b"prio");
    let out = r.up(&framed(
        ACC_MAC,
        SUB_MAC,
        &[(0x8100, 0xe000)],
        Some(PPPOE_ID),
        &ip,
    ));
    assert_eq!(
        out,
        vec![framed(
            SRV_MAC,
            CORE_MAC,
            &[],
            None,
            &ip_udp(SUB, SRV, 63, b"prio")
        )]
    );
    let ip = ip_udp(SUB2, SRV, 64, b"prio ipoe");
    let out = r.up(&framed(ACC_MAC, SUB2_MAC, &[(0x8100, 0x6000)], None, &ip));
    assert_eq!(
        out,
        vec![framed(
            SRV_MAC,
            CORE_MAC,
            &[],
            None,
            &ip_udp(SUB2, SRV, 63, b"prio ipoe")
        )]
    );
    assert_eq!(r.session_counters(1).tx_packets, 1);
    assert_eq!(r.session_counters(2).tx_packets, 1);
    assert_eq!(r.counters().total_drops(), 0);
    r.check_balance();
}

#[test]
fn spoofed_unknown_and_misframed_pppoe_are_counted_drops() {
    let mut r = Rig::new();
    let tags = [(0x88a8, 200), (0x8100, 300)];
    r.install(1, SUB, Some(SUB_MAC), pppoe_line(&tags, 0));
    let ip = ip_udp(SUB, SRV, 64, b"x");
    let spoofed = ip_udp(SUB2, SRV, 64, b"x");
    let t = sent_tcis(&tags);
    let cases: Vec<(Vec<u8>, DropReason)> = vec![
        // Another address inside the right session.
        (
            framed(ACC_MAC, SUB_MAC, &t, Some(PPPOE_ID), &spoofed),
            DropReason::PppoeSourceMismatch,
        ),
        // Another session id, another MAC, another C-VLAN, no tags at all.
        (
            framed(ACC_MAC, SUB_MAC, &t, Some(PPPOE_ID + 1), &ip),
            DropReason::PppoeSessionUnknown,
        ),
        (
            framed(ACC_MAC, SUB2_MAC, &t, Some(PPPOE_ID), &ip),
            DropReason::PppoeSessionUnknown,
        ),
        (
            framed(
                ACC_MAC,
                SUB_MAC,
                &[(0x88a8, 200), (0x8100, 301)],
                Some(PPPOE_ID),
                &ip,
            ),
            DropReason::PppoeSessionUnknown,
        ),
        (
            framed(ACC_MAC, SUB_MAC, &[], Some(PPPOE_ID), &ip),
            DropReason::PppoeSessionUnknown,
        ),
        // The session's address as IPoE, on its line and untagged.
        (
            framed(ACC_MAC, SUB_MAC, &t, None, &ip),
            DropReason::SourceSpoofed,
        ),
        (
            framed(ACC_MAC, SUB_MAC, &[], None, &ip),
            DropReason::SourceSpoofed,
        ),
    ];
    for (f, reason) in &cases {
        let before = r.counters().dropped(*reason);
        assert!(r.up(f).is_empty());
        assert_eq!(r.counters().dropped(*reason), before + 1, "{reason:?}");
    }
    // A PPPoE length shorter than the IPv4 packet.
    let mut short = framed(ACC_MAC, SUB_MAC, &t, Some(PPPOE_ID), &ip);
    short[22 + 4..22 + 6].copy_from_slice(&(ip.len() as u16).to_be_bytes());
    assert!(r.up(&short).is_empty());
    let c = r.counters();
    assert_eq!(c.dropped(DropReason::PppoeSourceMismatch), 1);
    assert_eq!(c.dropped(DropReason::PppoeSessionUnknown), 4);
    assert_eq!(c.dropped(DropReason::SourceSpoofed), 2);
    assert_eq!(c.dropped(DropReason::PppoeMalformed), 1);
    assert_eq!((c.total_drops(), c.forwarded), (8, 0));
    assert_eq!(r.session_counters(1), SessionCounters::default());
    r.check_balance();
}

#[test]
fn tagged_ipoe_must_come_on_its_vlans_and_goes_back_tagged() {
    let mut r = Rig::new();
    let tags = [(0x8100, 100)];
    let line = AccessLine {
        vlans: vlans(&tags),
        ..AccessLine::default()
    };
    r.install(1, SUB, Some(SUB_MAC), line);
    let ip = ip_udp(SUB, SRV, 64, b"tagged");
    let out = r.up(&framed(ACC_MAC, SUB_MAC, &sent_tcis(&tags), None, &ip));
    assert_eq!(
        out,
        vec![framed(
            SRV_MAC,
            CORE_MAC,
            &[],
            None,
            &ip_udp(SUB, SRV, 63, b"tagged")
        )]
    );
    let down = ip_udp(SRV, SUB, 64, b"back");
    let out = r.down(&framed(CORE_MAC, SRV_MAC, &[], None, &down));
    assert_eq!(
        out,
        vec![framed(
            SUB_MAC,
            ACC_MAC,
            &tags,
            None,
            &ip_udp(SRV, SUB, 63, b"back")
        )]
    );
    for wrong in [&[][..], &[(0x8100, 101)], &[(0x88a8, 100), (0x8100, 5)]] {
        assert!(r.up(&framed(ACC_MAC, SUB_MAC, wrong, None, &ip)).is_empty());
    }
    let c = r.counters();
    assert_eq!(c.dropped(DropReason::VlanMismatch), 3);
    assert_eq!((c.total_drops(), c.forwarded), (3, 2));
    let s = r.session_counters(1);
    assert_eq!((s.tx_packets, s.tx_bytes), (1, ip.len() as u64));
    assert_eq!((s.rx_packets, s.rx_bytes), (1, down.len() as u64));
    r.check_balance();
}

#[test]
fn mss_is_clamped_both_ways_with_a_checksum_recomputed_to_match() {
    let mut r = Rig::new();
    let tags = [(0x88a8, 200), (0x8100, 300)];
    r.install(1, SUB, Some(SUB_MAC), pppoe_line(&tags, 1452));
    // An untagged IPoE session without a clamp.
    r.install(2, SUB2, Some(SUB2_MAC), AccessLine::default());
    let t = sent_tcis(&tags);
    // SYN up: 1460 -> 1452; etherparse builds the expected segment with its checksum
    // computed from scratch, so equal bytes prove the incremental update.
    let out = r.up(&framed(
        ACC_MAC,
        SUB_MAC,
        &t,
        Some(PPPOE_ID),
        &ip_syn(SUB, SRV, 64, 1460, None),
    ));
    assert_eq!(
        out,
        vec![framed(
            SRV_MAC,
            CORE_MAC,
            &[],
            None,
            &ip_syn(SUB, SRV, 63, 1452, None)
        )]
    );
    // SYN-ACK down: the same.
    let syn_ack = ip_syn(SRV, SUB, 64, 1460, Some(0x1234_5679));
    let out = r.down(&framed(CORE_MAC, SRV_MAC, &[], None, &syn_ack));
    assert_eq!(
        out,
        vec![framed(
            SUB_MAC,
            ACC_MAC,
            &tags,
            Some(PPPOE_ID),
            &ip_syn(SRV, SUB, 63, 1452, Some(0x1234_5679))
        )]
    );
    // Already small enough: untouched.
    let out = r.up(&framed(
        ACC_MAC,
        SUB_MAC,
        &t,
        Some(PPPOE_ID),
        &ip_syn(SUB, SRV, 64, 1400, None),
    ));
    assert_eq!(
        out,
        vec![framed(
            SRV_MAC,
            CORE_MAC,
            &[],
            None,
            &ip_syn(SUB, SRV, 63, 1400, None)
        )]
    );
    // A session without a clamp: untouched.
    let out = r.up(&framed(
        ACC_MAC,
        SUB2_MAC,
        &[],
        None,
        &ip_syn(SUB2, SRV, 64, 1460, None),
    ));
    assert_eq!(
        out,
        vec![framed(
            SRV_MAC,
            CORE_MAC,
            &[],
            None,
            &ip_syn(SUB2, SRV, 63, 1460, None)
        )]
    );
    let c = r.counters();
    assert_eq!((c.forwarded, c.total_drops()), (4, 0));
    r.check_balance();
}

/// The gateway's own answers (here, to a ping of its access address) go back on the line
/// they were asked on, tags as received, with the same IPv4 answer an untagged IPoE
/// subscriber gets.
#[test]
fn the_gateways_answers_go_back_on_the_line() {
    let ping = |src: Ipv4Addr| {
        let mut v = Vec::new();
        PacketBuilder::ipv4(src.octets(), GW_ACC.octets(), 64)
            .icmpv4_echo_request(7, 1)
            .write(&mut v, b"ping")
            .unwrap();
        v
    };
    // The reference: an untagged IPoE subscriber.
    let mut plain = Rig::new();
    plain.install(1, SUB, Some(SUB_MAC), AccessLine::default());
    plain.send(
        Side::Access,
        &framed(ACC_MAC, SUB_MAC, &[], None, &ping(SUB)),
    );
    let reference = plain.access.drain();
    assert_eq!(reference.len(), 1);
    let reply_ip = reference[0][14..].to_vec();

    let mut r = Rig::new();
    let tags = [(0x88a8, 200), (0x8100, 300)];
    r.install(1, SUB, Some(SUB_MAC), pppoe_line(&tags, 0));
    let t = sent_tcis(&tags);
    r.send(
        Side::Access,
        &framed(ACC_MAC, SUB_MAC, &t, Some(PPPOE_ID), &ping(SUB)),
    );
    assert_eq!(
        r.access.drain(),
        vec![framed(SUB_MAC, ACC_MAC, &t, Some(PPPOE_ID), &reply_ip)]
    );
    assert_eq!(r.counters().replied, 1);
    r.check_balance();
}

#[test]
fn pppoe_installs_need_the_clients_mac_and_a_line_of_their_own() {
    let mut r = Rig::new();
    r.install(1, SUB, None, pppoe_line(&[], 0));
    r.install(2, SUB, Some(SUB_MAC), pppoe_line(&[], 0));
    // Same VLANs, MAC and PPPoE session id as session 2.
    r.install(3, SUB2, Some(SUB_MAC), pppoe_line(&[], 0));
    // Same MAC and id on another VLAN: another line.
    r.install(4, SUB2, Some(SUB_MAC), pppoe_line(&[(0x8100, 9)], 0));
    let failed: Vec<_> = r
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::SessionInstallFailed { id, reason } => Some((id, reason)),
            _ => None,
        })
        .collect();
    assert_eq!(
        failed,
        vec![
            (1, InstallFailure::MacRequired),
            (3, InstallFailure::Duplicate)
        ]
    );
    assert_eq!(r.counters().sessions_installed, 2);
    // Session 4 answers on its own line, session 2 on the untagged one.
    let ip = ip_udp(SUB2, SRV, 64, b"4");
    assert_eq!(
        r.up(&framed(
            ACC_MAC,
            SUB_MAC,
            &[(0x8100, 9)],
            Some(PPPOE_ID),
            &ip
        ))
        .len(),
        1
    );
    assert_eq!(r.session_counters(4).tx_packets, 1);
    assert_eq!(r.session_counters(2).tx_packets, 0);
}

/// An IPv4/UDP packet of `len` bytes in all from SRV to SUB, DF as given (etherparse).
fn ip_udp_sized(len: usize, df: bool) -> Vec<u8> {
    use etherparse::{IpHeaders, IpNumber, Ipv4Header};
    let mut ip = Ipv4Header::new(0, 64, IpNumber::UDP, SRV.octets(), SUB.octets()).unwrap();
    ip.dont_fragment = df;
    let mut v = Vec::new();
    PacketBuilder::ip(IpHeaders::Ipv4(ip, Default::default()))
        .udp(53, 40000)
        .write(&mut v, &vec![0x5a; len - 28])
        .unwrap();
    assert_eq!(v.len(), len);
    v
}

/// The ICMP fragmentation-needed (RFC 1191) the gateway's core side sends SRV about the
/// IPv4 packet `orig`: its header and 8 bytes quoted, next-hop MTU `mtu`; built by
/// etherparse.
fn frag_needed(orig: &[u8], mtu: u16) -> Vec<u8> {
    use etherparse::icmpv4::DestUnreachableHeader;
    use etherparse::{Icmpv4Header, Icmpv4Type, IpNumber, Ipv4Header};
    let quote = &orig[..28];
    let icmp = Icmpv4Header::with_checksum(
        Icmpv4Type::DestinationUnreachable(DestUnreachableHeader::FragmentationNeeded {
            next_hop_mtu: mtu,
        }),
        quote,
    );
    let len = (icmp.header_len() + quote.len()) as u16;
    let mut ip = Ipv4Header::new(len, 64, IpNumber::ICMP, GW_CORE.octets(), SRV.octets()).unwrap();
    ip.dont_fragment = false;
    ip.header_checksum = ip.calc_header_checksum();
    let mut v = ip.to_bytes().to_vec();
    v.extend_from_slice(&icmp.to_bytes());
    v.extend_from_slice(quote);
    framed(SRV_MAC, CORE_MAC, &[], None, &v)
}

#[test]
fn downlink_longer_than_the_pppoe_mtu_gets_fragmentation_needed() {
    // Without an MSS clamp the MTU is RFC 2516's 1492; with one, the clamp + 40 (what
    // the control core derives the clamp from: the negotiated MTU).
    for (clamp, mtu) in [(0u16, 1492u16), (1400, 1440)] {
        for tags in [SHAPES[0], SHAPES[2]] {
            let mut r = Rig::new();
            r.install(1, SUB, Some(SUB_MAC), pppoe_line(tags, clamp));
            let name = format!("clamp {clamp}, {tags:x?}");
            // Exactly the MTU: forwarded, encapsulated.
            let fits = ip_udp_sized(mtu as usize, true);
            let out = r.down(&framed(CORE_MAC, SRV_MAC, &[], None, &fits));
            assert_eq!(out.len(), 1, "{name}");
            assert_eq!(
                out[0].len(),
                14 + 4 * tags.len() + 8 + mtu as usize,
                "{name}"
            );
            // One byte more with DF: fragmentation-needed back to the server, byte exact.
            let big = ip_udp_sized(mtu as usize + 1, true);
            let out = r.down(&framed(CORE_MAC, SRV_MAC, &[], None, &big));
            assert_eq!(out, Vec::<Vec<u8>>::new(), "{name}");
            assert_eq!(r.core.drain(), vec![frag_needed(&big, mtu)], "{name}");
            // Without DF: a counted drop, not fragmented, no error.
            let big = ip_udp_sized(1500, false);
            assert!(
                r.down(&framed(CORE_MAC, SRV_MAC, &[], None, &big))
                    .is_empty()
            );
            assert_eq!(r.core.drain(), Vec::<Vec<u8>>::new(), "{name}");
            let c = r.counters();
            assert_eq!(c.dropped(DropReason::PppoeTooBig), 2, "{name}");
            assert_eq!(
                (c.icmp_errors, c.forwarded, c.total_drops()),
                (1, 1, 2),
                "{name}"
            );
            // Only what was sent on counts for the session.
            let s = r.session_counters(1);
            assert_eq!((s.rx_packets, s.rx_bytes), (1, mtu as u64), "{name}");
            r.check_balance();
        }
    }
}
