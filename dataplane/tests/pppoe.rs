//! PPPoE and VLAN access lines through one worker on memory ports (ACC-1, ACC-4). Frames
//! are built byte by byte (the PPPoE and VLAN headers) and with etherparse (what it can
//! build), and what comes out, on the ports or up the punt ring, is compared byte for
//! byte, with exact counters.

use std::net::Ipv4Addr;

use tollgate_dataplane::msg::ControlEnds;
use tollgate_dataplane::port::memory::{MemoryPeer, MemoryPort};
use tollgate_dataplane::snapshot::Publisher;
use tollgate_dataplane::time::Instant;
use tollgate_dataplane::{
    Command, DropReason, ForwardingBuilder, HeapPool, MacAddr, RingSizes, Route, Side, SideConfig,
    Worker, WorkerConfig, WorkerCounters, worker_rings,
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
