//! The L2TP stage on memory ports, one worker: a LAC switching 250 PPPoE subscribers'
//! 64-byte uplink into their L2TP sessions toward its LNS, and an LNS decapsulating 250
//! PPP subscribers' data messages and taking the inner packets through their sessions.
//! One iteration is one poll (one burst of 32). `make bench` prints Mpps and ns/packet
//! next to the forwarding benches.

use std::hint::black_box;
use std::net::Ipv4Addr;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use etherparse::PacketBuilder;
use tollgate_benches::{ACC_MAC, CORE_MAC, SRV, SRV_MAC, SUB_MAC, lab_forwarding};
use tollgate_dataplane::l2tp::{L2tpSessionSpec, PppoeLeg, TunnelRole};
use tollgate_dataplane::port::memory::MemoryPort;
use tollgate_dataplane::session::{AccessLine, Encap, SessionSpec};
use tollgate_dataplane::snapshot::Publisher;
use tollgate_dataplane::time::Instant;
use tollgate_dataplane::wire::l2tp::subscriber_mac;
use tollgate_dataplane::{Command, HeapPool, MacAddr, Worker, WorkerConfig, worker_rings};

const PEER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const PEER_MAC: MacAddr = MacAddr([2, 0x30, 0, 0, 0, 2]);
const SESSIONS: u16 = 250;

fn sub(i: u16) -> Ipv4Addr {
    Ipv4Addr::new(10, 10, 0, 2 + i as u8)
}

/// A worker receiving `frames` on `side_core ? core : access` for ever, with one L2TP
/// session per subscriber of `role` (a LAC's PPPoE sessions switched into theirs, an
/// LNS's PPP subscribers gateway sessions reached through theirs).
fn worker(frames: Vec<Vec<u8>>, on_core: bool, role: TunnelRole) -> Worker<MemoryPort> {
    let publisher = Publisher::new(lab_forwarding());
    let (w, mut ctl) = worker_rings(Default::default());
    let (access, core) = if on_core {
        (MemoryPort::idle(), MemoryPort::repeating(frames, u64::MAX))
    } else {
        (MemoryPort::repeating(frames, u64::MAX), MemoryPort::idle())
    };
    let mut worker = Worker::new(
        WorkerConfig {
            l2tp_sessions: SESSIONS,
            ..WorkerConfig::default()
        },
        access,
        core,
        HeapPool::new(4096),
        publisher.reader(),
        w,
    );
    for (ip, mac) in [(SRV, SRV_MAC), (PEER, PEER_MAC)] {
        ctl.commands
            .push(Command::NeighborSet { ip, mac })
            .expect("room");
    }
    for i in 0..SESSIONS {
        let spec = L2tpSessionSpec {
            tunnel: 10,
            session: i + 1,
            peer_tunnel: 20,
            peer_session: 100 + i,
            local: Ipv4Addr::new(192, 0, 2, 1),
            peer: PEER,
            peer_port: 1701,
            subscriber: sub(i),
            role,
            // LAC: PPPoE session `i + 1` of the subscriber switched into it.
            pppoe: (role == TunnelRole::Lac).then_some(PppoeLeg {
                session: i + 1,
                client: SUB_MAC,
                vlans: Default::default(),
                mss_clamp: 0,
            }),
        };
        ctl.commands
            .push(Command::L2tpSessionSet(spec))
            .expect("room");
        // LNS: PPP terminated here, the subscriber a gateway session reached through its
        // L2TP session (without one its packets are `l2tp_no_session` drops).
        if role == TunnelRole::Lns {
            ctl.commands
                .push(Command::SessionAdd(ppp_session(i, i + 1)))
                .expect("room");
        }
    }
    for t in 1..20 {
        worker.poll(Instant(t));
    }
    assert_eq!(worker.pipeline().l2tp.len(), SESSIONS as usize);
    // Keep the control ends alive for the worker's lifetime.
    std::mem::forget(ctl);
    worker
}

/// PPPoE session frames from the subscribers: session `i + 1` carrying PPP IPv4, a
/// 64-byte (Ethernet) UDP packet from subscriber `i` to the server.
fn pppoe_frames() -> Vec<Vec<u8>> {
    (0..SESSIONS)
        .map(|i| {
            let mut inner = Vec::new();
            PacketBuilder::ipv4(sub(i).octets(), SRV.octets(), 64)
                .udp(10_000, 5001)
                .write(&mut inner, &[0x5a; 64 - 14 - 28])
                .expect("inner builds");
            let mut f = ACC_MAC.0.to_vec();
            f.extend_from_slice(&SUB_MAC.0);
            f.extend_from_slice(&[0x88, 0x64, 0x11, 0x00]);
            f.extend_from_slice(&(i + 1).to_be_bytes());
            f.extend_from_slice(&(inner.len() as u16 + 2).to_be_bytes());
            f.extend_from_slice(&[0x00, 0x21]);
            f.extend_from_slice(&inner);
            f
        })
        .collect()
}

/// The gateway session of PPP subscriber `i`, reached through L2TP session `session`.
fn ppp_session(i: u16, session: u16) -> SessionSpec {
    SessionSpec {
        id: u32::from(i) + 1,
        user: u64::from(i) + 1,
        channel: u32::from(i) + 1,
        address: sub(i),
        mac: Some(subscriber_mac(session)),
        started: Instant(1),
        limits: Default::default(),
        bandwidth: Default::default(),
        services: Default::default(),
        max_flows: 0,
        access: AccessLine {
            vlans: Default::default(),
            encap: Encap::L2tp { session },
            mss_clamp: 0,
        },
    }
}

/// Data messages from the peer: session `i + 1` of tunnel 10 carrying a 64-byte UDP
/// packet from subscriber `i` to the server.
fn data_messages() -> Vec<Vec<u8>> {
    (0..SESSIONS)
        .map(|i| {
            let mut inner = Vec::new();
            PacketBuilder::ipv4(sub(i).octets(), SRV.octets(), 64)
                .udp(10_000, 5001)
                .write(&mut inner, &[0x5a; 64 - 14 - 28])
                .expect("inner builds");
            let mut l2 = vec![0x00, 0x02, 0, 10];
            l2.extend_from_slice(&(i + 1).to_be_bytes());
            l2.extend_from_slice(&[0xff, 0x03, 0x00, 0x21]);
            l2.extend_from_slice(&inner);
            let mut f = Vec::new();
            PacketBuilder::ethernet2(PEER_MAC.0, CORE_MAC.0)
                .ipv4(PEER.octets(), [192, 0, 2, 1], 64)
                .udp(1701, 1701)
                .write(&mut f, &l2)
                .expect("frame builds");
            f
        })
        .collect()
}

fn tunnel(c: &mut Criterion) {
    let mut g = c.benchmark_group("tunnel");
    for (name, frames, on_core, role) in [
        (
            "l2tp_encap_64B_250sessions_burst32",
            pppoe_frames(),
            false,
            TunnelRole::Lac,
        ),
        (
            "l2tp_decap_64B_250sessions_burst32",
            data_messages(),
            true,
            TunnelRole::Lns,
        ),
    ] {
        let mut w = worker(frames, on_core, role);
        // Packets received while the sessions were being installed were routed plainly
        // or dropped: the bench counts from here.
        let before = w.report(0, Instant(100)).counters;
        g.throughput(Throughput::Elements(32));
        let mut now = 100u64;
        g.bench_function(name, |b| {
            b.iter(|| {
                now += 1;
                black_box(w.poll(Instant(now)))
            })
        });
        let c = w.report(0, Instant(now)).counters;
        assert_eq!(
            c.total_drops(),
            before.total_drops(),
            "{name}: no drop in the bench: {:?}",
            c.drops
        );
        let through =
            |c: &tollgate_dataplane::WorkerCounters| c.lac_switched_to_lns + c.l2tp_decapsulated;
        assert_eq!(
            through(&c) - through(&before),
            c.rx_packets() - before.rx_packets(),
            "{name}: every packet received in the bench went through the tunnel stage"
        );
    }
    g.finish();
}

criterion_group!(benches, tunnel);
criterion_main!(benches);
