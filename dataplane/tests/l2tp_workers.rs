//! An LNS with two workers (issue 15 item 1): its PPP subscribers' traffic goes through
//! the worker that owns their session, whichever worker receives it. The LAC's data
//! messages all come from one address, so steering by the outer header would take every
//! subscriber's uplink to the LAC's worker; they are steered by the packet inside
//! ([`steer::l2tp_owner`]). Two workers on memory ports that do not steer, so each
//! receiving worker hands the frame to its owner by [`steer::frame_owner_with`]; the
//! AF_PACKET fanout programs are checked to pick the same worker for every frame.
//!
//! Subscriber A (100.64.0.1, its /56 owned by worker 1) and B (100.64.0.2, worker 0);
//! the LAC (172.16.0.1) is owned by worker 1. Every uplink (IPv4 and IPv6, in L2TP) and
//! every downlink is sent once to each worker: the owner decapsulates or encapsulates
//! it, byte for byte, and the session, L2TP session and worker counters are exact.

use std::net::{Ipv4Addr, Ipv6Addr};

use etherparse::PacketBuilder;
use tollgate_dataplane::handoff;
use tollgate_dataplane::l2tp::{L2tpSessionSpec, TunnelRole};
use tollgate_dataplane::msg::ControlEnds;
use tollgate_dataplane::port::memory::{MemoryPeer, MemoryPort};
use tollgate_dataplane::session::{AccessLine, Encap, SessionCounters, SessionSpec};
use tollgate_dataplane::snapshot::Publisher;
use tollgate_dataplane::steer::{self, prefix_worker, subscriber_worker};
use tollgate_dataplane::time::Instant;
use tollgate_dataplane::wire::l2tp::subscriber_mac;
use tollgate_dataplane::{
    Command, Event, Forwarding, ForwardingBuilder, HeapPool, Ipv6Forwarding, MacAddr, Route, Side,
    SideConfig, Worker, WorkerConfig, worker_rings,
};

const WORKERS: u16 = 2;
const POOL: usize = 256;
const LAC: Ipv4Addr = Ipv4Addr::new(172, 16, 0, 1);
const LNS: Ipv4Addr = Ipv4Addr::new(172, 16, 0, 2);
const LNS_CORE: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const SRV: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
const LAC_MAC: MacAddr = MacAddr([2, 0xa, 0, 0, 0, 2]);
const LINE_MAC: MacAddr = MacAddr([2, 0xb, 0, 0, 0, 1]);
const CORE_MAC: MacAddr = MacAddr([2, 0xb, 0, 0, 0, 2]);
const SRV_MAC: MacAddr = MacAddr([2, 0x20, 0, 0, 0, 0x10]);
const RTR_MAC: MacAddr = MacAddr([2, 0x20, 0, 0, 0, 0xfe]);
const TUNNEL: u16 = 20;
const LAC_TUNNEL: u16 = 10;
const SRV6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xff, 0, 0, 0, 0, 0x10);
const GW6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xff, 0, 0, 0, 0, 1);
const GW_LL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0xff, 0xfe00, 1);
const RTR6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xff, 0, 0, 0, 0, 0xfe);

/// A PPP subscriber of the LNS: gateway session `id`, our L2TP session, the LAC's.
#[derive(Clone, Copy, Debug)]
struct Sub {
    id: u32,
    address: Ipv4Addr,
    session: u16,
    lac_session: u16,
    prefix: u64,
}

impl Sub {
    fn address6(&self) -> Ipv6Addr {
        Ipv6Addr::from(u128::from(self.prefix) << 64 | 0x11)
    }

    fn owner(&self) -> usize {
        usize::from(subscriber_worker(self.address, WORKERS))
    }
}

/// A: owned by worker 1 (odd address, /56 number 1); B: by worker 0.
const A: Sub = Sub {
    id: 1,
    address: Ipv4Addr::new(100, 64, 0, 1),
    session: 5,
    lac_session: 1,
    prefix: 0x2001_0db8_0100_0100,
};
const B: Sub = Sub {
    id: 2,
    address: Ipv4Addr::new(100, 64, 0, 2),
    session: 6,
    lac_session: 2,
    prefix: 0x2001_0db8_0100_0200,
};

struct Lns {
    workers: Vec<Worker<MemoryPort>>,
    access: Vec<MemoryPeer>,
    core: Vec<MemoryPeer>,
    ctl: Vec<ControlEnds>,
    publisher: Publisher<Forwarding>,
}

fn side(mac: MacAddr, address: Ipv4Addr) -> SideConfig {
    SideConfig {
        mac,
        address,
        prefix_len: 24,
    }
}

impl Lns {
    /// Two workers with handoff; both subscribers installed as the control plane does:
    /// the L2TP sessions on every worker, the gateway sessions (and /64s) on their owner.
    fn new() -> Lns {
        let fwd = ForwardingBuilder::new(side(LINE_MAC, LNS), side(CORE_MAC, LNS_CORE))
            .route(Route {
                prefix: Ipv4Addr::new(100, 64, 0, 0),
                len: 24,
                via: LAC,
            })
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
        let mut mesh = handoff::mesh(WORKERS, 64).into_iter();
        let mut l = Lns {
            workers: Vec::new(),
            access: Vec::new(),
            core: Vec::new(),
            ctl: Vec::new(),
            publisher,
        };
        for id in 0..WORKERS {
            let (w, ctl) = worker_rings(Default::default());
            let (a, access) = MemoryPort::with_peer(256);
            let (c, core) = MemoryPort::with_peer(256);
            let cfg = WorkerConfig {
                id,
                workers: WORKERS,
                l2tp_sessions: 16,
                ..WorkerConfig::default()
            };
            let reader = l.publisher.reader();
            let worker = Worker::new(cfg, a, c, HeapPool::new(POOL), reader, w)
                .with_handoff(mesh.next().unwrap());
            l.workers.push(worker);
            l.access.push(access);
            l.core.push(core);
            l.ctl.push(ctl);
        }
        for w in 0..WORKERS as usize {
            for (ip, mac) in [(LAC, LAC_MAC), (SRV, SRV_MAC)] {
                l.command(w, Command::NeighborSet { ip, mac });
            }
        }
        for s in [A, B] {
            assert_eq!(prefix_worker(s.prefix, WORKERS) as usize, s.owner());
            for w in 0..WORKERS as usize {
                l.command(w, Command::L2tpSessionSet(spec(s)));
            }
            l.command(s.owner(), Command::SessionAdd(session(s)));
            l.command(
                s.owner(),
                Command::SessionPrefix6 {
                    id: s.id,
                    prefix: Some(s.prefix),
                },
            );
        }
        l
    }

    fn poll(&mut self) {
        for w in &mut self.workers {
            w.poll(Instant(1_000_000_000));
        }
    }

    fn command(&mut self, w: usize, c: Command) {
        self.ctl[w].commands.push(c).unwrap();
        self.poll();
    }

    /// Sends `frame` to worker `to` on `side`, polls every worker twice (receive and hand
    /// off, then take what was handed), and returns what each worker sent on each side.
    fn send(&mut self, to: usize, side: Side, frame: Vec<u8>) -> Vec<[Vec<Vec<u8>>; 2]> {
        let peer = match side {
            Side::Access => &mut self.access[to],
            Side::Core => &mut self.core[to],
        };
        assert!(peer.send(frame));
        self.poll();
        self.poll();
        (0..WORKERS as usize)
            .map(|w| [self.access[w].drain(), self.core[w].drain()])
            .collect()
    }

    /// Session `s`'s counters (both families) and their IPv6 share, from worker `w`.
    fn session(&mut self, w: usize, s: Sub) -> Option<(SessionCounters, Option<SessionCounters>)> {
        self.command(w, Command::SessionQuery { id: s.id, seq: 9 });
        std::iter::from_fn(|| self.ctl[w].events.pop()).find_map(|e| match e {
            Event::SessionCounters {
                id,
                seq: 9,
                counters,
                ipv6,
                ..
            } if id == s.id => Some((counters, ipv6)),
            _ => None,
        })
    }

    /// L2TP session `session`'s (decap packets, decap bytes, encap packets, encap bytes)
    /// on worker `w`.
    fn l2tp(&mut self, w: usize, session: u16) -> (u64, u64, u64, u64) {
        self.command(w, Command::L2tpReport { seq: 4 });
        std::iter::from_fn(|| self.ctl[w].events.pop())
            .find_map(|e| match e {
                Event::L2tpCounters {
                    session: s,
                    counters: c,
                    ..
                } if s == session => Some((
                    c.decap_packets,
                    c.decap_bytes,
                    c.encap_packets,
                    c.encap_bytes,
                )),
                _ => None,
            })
            .expect("the L2TP session's counters")
    }
}

fn spec(s: Sub) -> L2tpSessionSpec {
    L2tpSessionSpec {
        tunnel: TUNNEL,
        session: s.session,
        peer_tunnel: LAC_TUNNEL,
        peer_session: s.lac_session,
        local: LNS,
        peer: LAC,
        peer_port: 1701,
        subscriber: s.address,
        role: TunnelRole::Lns,
        pppoe: None,
    }
}

fn session(s: Sub) -> SessionSpec {
    SessionSpec {
        id: s.id,
        user: 1000 + u64::from(s.id),
        channel: s.id,
        address: s.address,
        mac: Some(subscriber_mac(s.session)),
        started: Instant(1_000_000_000),
        limits: Default::default(),
        bandwidth: Default::default(),
        services: Default::default(),
        max_flows: 0,
        access: AccessLine {
            vlans: Default::default(),
            encap: Encap::L2tp { session: s.session },
            mss_clamp: 0,
        },
    }
}

/// IPv4/UDP from `src` to `dst` with hop limit `ttl` and `payload` (no Ethernet).
fn udp4(src: Ipv4Addr, dst: Ipv4Addr, ttl: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = Vec::new();
    PacketBuilder::ipv4(src.octets(), dst.octets(), ttl)
        .udp(40000, 53)
        .write(&mut p, payload)
        .unwrap();
    p
}

fn udp6(src: Ipv6Addr, dst: Ipv6Addr, hl: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = Vec::new();
    PacketBuilder::ipv6(src.octets(), dst.octets(), hl)
        .udp(40000, 53)
        .write(&mut p, payload)
        .unwrap();
    p
}

fn eth(dst: MacAddr, src: MacAddr, ethertype: u16, ip: &[u8]) -> Vec<u8> {
    let mut f = dst.0.to_vec();
    f.extend_from_slice(&src.0);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(ip);
    f
}

/// The LAC's data message to our session `session`: the L2TP `flags` (with L, the
/// Length follows them), the ids, `extra` (Ns/Nr, offset, as the flags say), then `ppp`
/// and the packet `ip`.
fn from_lac(flags: u16, extra: &[u8], session: u16, ppp: &[u8], ip: &[u8]) -> Vec<u8> {
    let mut l2tp = (flags | 2).to_be_bytes().to_vec();
    if flags & 0x4000 != 0 {
        let len = 8 + extra.len() + ppp.len() + ip.len();
        l2tp.extend_from_slice(&(len as u16).to_be_bytes());
    }
    l2tp.extend_from_slice(&TUNNEL.to_be_bytes());
    l2tp.extend_from_slice(&session.to_be_bytes());
    l2tp.extend_from_slice(extra);
    l2tp.extend_from_slice(ppp);
    l2tp.extend_from_slice(ip);
    let mut f = Vec::new();
    PacketBuilder::ethernet2(LAC_MAC.0, LINE_MAC.0)
        .ipv4(LAC.octets(), LNS.octets(), 64)
        .udp(1701, 1701)
        .write(&mut f, &l2tp)
        .unwrap();
    f
}

/// The data message the LNS must send the LAC for its session `lac_session`, PPP
/// protocol `proto`: the outer IPv4 without DF, the UDP checksum zero (etherparse sets
/// both: cleared here, the IPv4 checksum computed again).
fn to_lac(lac_session: u16, proto: u16, ip: &[u8]) -> Vec<u8> {
    let mut l2tp = vec![0x00, 0x02];
    l2tp.extend_from_slice(&LAC_TUNNEL.to_be_bytes());
    l2tp.extend_from_slice(&lac_session.to_be_bytes());
    l2tp.extend_from_slice(&[0xff, 0x03]);
    l2tp.extend_from_slice(&proto.to_be_bytes());
    l2tp.extend_from_slice(ip);
    let mut f = Vec::new();
    PacketBuilder::ethernet2(LINE_MAC.0, LAC_MAC.0)
        .ipv4(LNS.octets(), LAC.octets(), 64)
        .udp(1701, 1701)
        .write(&mut f, &l2tp)
        .unwrap();
    f[14 + 20 + 6..14 + 20 + 8].copy_from_slice(&[0, 0]);
    let mut h = etherparse::Ipv4Header::from_slice(&f[14..]).unwrap().0;
    h.dont_fragment = false;
    h.header_checksum = h.calc_header_checksum();
    f[14..34].copy_from_slice(&h.to_bytes());
    f
}

/// Exactly one frame left, from worker `w` on `side`; returns it.
fn only(out: &[[Vec<Vec<u8>>; 2]], w: usize, side: Side) -> Vec<u8> {
    for (i, sides) in out.iter().enumerate() {
        for (j, frames) in sides.iter().enumerate() {
            let want = usize::from(i == w && j == side.idx());
            assert_eq!(frames.len(), want, "worker {i} side {j}: {out:?}");
        }
    }
    out[w][side.idx()][0].clone()
}

/// How the LAC writes a data message: L2TP flags, what follows the ids, the PPP header
/// before IPv4 and before IPv6.
type Header = (u16, Vec<u8>, &'static [u8], &'static [u8]);

/// What a fanout program gives `frame` (untagged), as the kernel would run it.
fn program(prog: &[steer::Insn], frame: &[u8]) -> Option<u32> {
    let ethertype = u16::from_be_bytes([frame[12], frame[13]]);
    steer::run(prog, ethertype, &frame[14..]).map(|w| w % u32::from(WORKERS))
}

/// Every subscriber's uplink and downlink, IPv4 and IPv6, received by each worker in
/// turn, is decapsulated or encapsulated by the subscriber's owner, exactly; the L2TP
/// header's optional fields (Length, Ns/Nr, Offset) and a compressed PPP header do not
/// change that. Counters exact per session and per worker.
#[test]
fn each_subscriber_s_traffic_goes_through_its_owner() {
    let mut l = Lns::new();
    assert_eq!((A.owner(), B.owner()), (1, 0));
    assert_eq!(subscriber_worker(LAC, WORKERS), 1, "the LAC's own worker");
    let acc = steer::access_program_with(WORKERS, Some(LNS));
    let core = steer::core_program_with(WORKERS, &[], (1024, 65535), Some(LNS));
    // The LAC's headers: plain; Length, Ns/Nr and an offset of 2; compressed PPP.
    let headers: [Header; 3] = [
        (
            0,
            vec![],
            &[0xff, 0x03, 0x00, 0x21],
            &[0xff, 0x03, 0x00, 0x57],
        ),
        (
            0x4a00,
            vec![0, 4, 0, 0, 0, 2, 0xee, 0xee],
            &[0x00, 0x21],
            &[0x00, 0x57],
        ),
        (0, vec![], &[0x21], &[0x57]),
    ];
    let (mut up4, mut up6, mut down4, mut down6) = ([0u64; 2], [0u64; 2], [0u64; 2], [0u64; 2]);
    let mut seq = 0u8;
    for s in [A, B] {
        let owner = s.owner();
        for rx in 0..WORKERS as usize {
            for (flags, extra, ppp4, ppp6) in &headers {
                seq += 1;
                // Uplink IPv4: routed to the server by the owner, TTL decremented.
                let ip = udp4(s.address, SRV, 64, &[seq; 20]);
                let f = from_lac(*flags, extra, s.session, ppp4, &ip);
                assert_eq!(program(&acc, &f), Some(owner as u32), "fanout: owner");
                let out = l.send(rx, Side::Access, f);
                let want = eth(
                    SRV_MAC,
                    CORE_MAC,
                    0x0800,
                    &udp4(s.address, SRV, 63, &[seq; 20]),
                );
                assert_eq!(only(&out, owner, Side::Core), want, "{s:?} up4 via {rx}");
                up4[s.id as usize - 1] += ip.len() as u64;
                // Uplink IPv6: to the IPv6 next hop by the owner, hop limit decremented.
                let ip6 = udp6(s.address6(), SRV6, 64, &[seq; 30]);
                let f = from_lac(*flags, extra, s.session, ppp6, &ip6);
                assert_eq!(program(&acc, &f), Some(owner as u32), "fanout: owner");
                let out = l.send(rx, Side::Access, f);
                let want = eth(
                    RTR_MAC,
                    CORE_MAC,
                    0x86dd,
                    &udp6(s.address6(), SRV6, 63, &[seq; 30]),
                );
                assert_eq!(only(&out, owner, Side::Core), want, "{s:?} up6 via {rx}");
                up6[s.id as usize - 1] += ip6.len() as u64;
            }
            // Downlink: by destination to the owner, into the subscriber's session.
            seq += 1;
            let ip = udp4(SRV, s.address, 64, &[seq; 40]);
            let f = eth(CORE_MAC, SRV_MAC, 0x0800, &ip);
            assert_eq!(program(&core, &f), Some(owner as u32));
            let out = l.send(rx, Side::Core, f);
            let want = to_lac(s.lac_session, 0x0021, &udp4(SRV, s.address, 63, &[seq; 40]));
            assert_eq!(
                only(&out, owner, Side::Access),
                want,
                "{s:?} down4 via {rx}"
            );
            down4[s.id as usize - 1] += ip.len() as u64;
            let ip6 = udp6(SRV6, s.address6(), 64, &[seq; 50]);
            let f = eth(CORE_MAC, RTR_MAC, 0x86dd, &ip6);
            assert_eq!(program(&core, &f), Some(owner as u32));
            let out = l.send(rx, Side::Core, f);
            let want = to_lac(
                s.lac_session,
                0x0057,
                &udp6(SRV6, s.address6(), 63, &[seq; 50]),
            );
            assert_eq!(
                only(&out, owner, Side::Access),
                want,
                "{s:?} down6 via {rx}"
            );
            down6[s.id as usize - 1] += ip6.len() as u64;
        }
    }
    // Per subscriber: 2 workers x 3 headers up in each family, 2 down in each.
    for s in [A, B] {
        let i = s.id as usize - 1;
        let (c, v6) = l.session(s.owner(), s).expect("the owner has the session");
        let want = SessionCounters {
            // The session's tx is what the subscriber sent.
            tx_packets: 12,
            tx_bytes: up4[i] + up6[i],
            rx_packets: 4,
            rx_bytes: down4[i] + down6[i],
        };
        assert_eq!(c, want, "{s:?}");
        let want6 = SessionCounters {
            tx_packets: 6,
            tx_bytes: up6[i],
            rx_packets: 2,
            rx_bytes: down6[i],
        };
        assert_eq!(v6, Some(want6), "{s:?} IPv6 share");
        let other = 1 - s.owner();
        assert!(l.session(other, s).is_none(), "{s:?} not on worker {other}");
        // The L2TP session counts on the owner only (the report sums the workers).
        assert_eq!(
            l.l2tp(s.owner(), s.session),
            (12, up4[i] + up6[i], 4, down4[i] + down6[i])
        );
        assert_eq!(l.l2tp(other, s.session), (0, 0, 0, 0));
    }
    // Each worker: half of what it received was its own, half went to the other; nothing
    // dropped, the conservation law holds, no buffer leaked.
    for w in 0..WORKERS as usize {
        let c = l.workers[w].report(0, Instant(1)).counters;
        assert_eq!(c.total_drops(), 0, "worker {w}: {c:?}");
        assert_eq!((c.handed_off, c.handoff_received), (8, 8), "worker {w}");
        assert_eq!(
            (c.l2tp_decapsulated, c.l2tp_encapsulated),
            (12, 4),
            "worker {w}"
        );
        let (i, o) = c.balance(l.workers[w].held() as u64);
        assert_eq!(i, o, "worker {w}");
        assert_eq!(l.workers[w].pool_available(), POOL, "worker {w}");
    }
}

/// PPP control frames (LCP, IPCP) and L2TP control messages stay steered by the LAC's
/// address: any worker punts them, and one LAC's control stays on one worker, in order.
#[test]
fn ppp_and_l2tp_control_stay_with_the_lac_s_worker() {
    let mut l = Lns::new();
    let lac_worker = usize::from(subscriber_worker(LAC, WORKERS));
    let lcp = from_lac(0, &[], A.session, &[0xff, 0x03, 0xc0, 0x21], &[1, 1, 0, 4]);
    let ipcp = from_lac(0, &[], B.session, &[0x80, 0x21], &[1, 1, 0, 4]);
    // A ZLB: control, L and S set.
    let zlb = from_lac(0xc800, &[0, 0, 0, 0], 0, &[], &[]);
    for rx in 0..WORKERS as usize {
        for f in [&lcp, &ipcp, &zlb] {
            let out = l.send(rx, Side::Access, f.clone());
            assert!(out.iter().all(|s| s[0].is_empty() && s[1].is_empty()));
            let mut punted = Vec::new();
            for w in 0..WORKERS as usize {
                while let Some(p) = l.ctl[w].punt.pop() {
                    assert_eq!(w, lac_worker, "punted by the LAC's worker");
                    punted.push(p.bytes().to_vec());
                }
            }
            assert_eq!(punted, vec![f.clone()]);
        }
    }
    let total: u64 = (0..WORKERS as usize)
        .map(|w| {
            let c = l.workers[w].report(0, Instant(1)).counters;
            assert_eq!(c.total_drops(), 0);
            c.l2tp_ppp_control + c.l2tp_control
        })
        .sum();
    assert_eq!(total, 6);
}
