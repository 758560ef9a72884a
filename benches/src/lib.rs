//! Shared fixtures for the benches: a forwarding table like the lab's and template
//! frames built with etherparse.

use std::net::Ipv4Addr;

use etherparse::PacketBuilder;
use tollgate_dataplane::{Forwarding, ForwardingBuilder, Route, SideConfig};

pub use tollgate_testkit::lab::{ACC_MAC, CORE_MAC, SRV, SRV_MAC, SUB_MAC};

/// The lab's forwarding table: access 10.10.0.1/24, core 192.0.2.1/24, one static route.
pub fn lab_forwarding() -> Forwarding {
    ForwardingBuilder::new(
        SideConfig {
            mac: ACC_MAC,
            address: Ipv4Addr::new(10, 10, 0, 1),
            prefix_len: 24,
        },
        SideConfig {
            mac: CORE_MAC,
            address: Ipv4Addr::new(192, 0, 2, 1),
            prefix_len: 24,
        },
    )
    .route(Route {
        prefix: Ipv4Addr::new(198, 51, 100, 0),
        len: 24,
        via: Ipv4Addr::new(192, 0, 2, 254),
    })
    .build()
    .expect("valid lab table")
}

/// `n` uplink UDP frames of `size` bytes (Ethernet header included, no FCS) from `n`
/// subscribers of the access subnet to the server.
pub fn uplink_frames(n: usize, size: usize) -> Vec<Vec<u8>> {
    let overhead = 14 + 20 + 8;
    (0..n)
        .map(|i| {
            let src = Ipv4Addr::new(10, 10, 0, 2 + (i % 250) as u8);
            let mut v = Vec::with_capacity(size);
            PacketBuilder::ethernet2(SUB_MAC.0, ACC_MAC.0)
                .ipv4(src.octets(), SRV.octets(), 64)
                .udp(10_000 + i as u16, 5001)
                .write(&mut v, &vec![0x5a; size.saturating_sub(overhead)])
                .expect("frame builds");
            v
        })
        .collect()
}

/// A worker with a subscriber population and established NAT flows, for the pipeline
/// benches: `sessions` subscribers on 10.0.0.0/8, each with `flows_each` TCP connections
/// to the VIP 203.0.113.10:80 (three real servers, round robin), established by a SYN and
/// its SYN-ACK through the pipeline itself. Returns the worker (its ports replay `frames`)
/// and the steady-state frames: for each flow one uplink and one downlink 64-byte TCP
/// segment.
pub mod pipeline {
    use std::net::Ipv4Addr;

    use etherparse::PacketBuilder;
    use tollgate_dataplane::nat::{NatConfig, Timeouts};
    use tollgate_dataplane::port::memory::{MemoryPeer, MemoryPort};
    use tollgate_dataplane::service::{Policy, RealServer, Service, Services, SessionType};
    use tollgate_dataplane::session::{Bandwidth, Limits, ServiceSet, SessionSpec};
    use tollgate_dataplane::snapshot::Publisher;
    use tollgate_dataplane::stage::SubscriberLimits;
    use tollgate_dataplane::time::Instant;
    use tollgate_dataplane::{
        Command, Forwarding, ForwardingBuilder, HeapPool, MacAddr, RingSizes, SideConfig, Unknown,
        Worker, WorkerConfig, worker_rings,
    };

    use super::{ACC_MAC, CORE_MAC};

    /// The VIP.
    pub const VIP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 10);
    const SERVERS: [Ipv4Addr; 3] = [
        Ipv4Addr::new(192, 0, 2, 21),
        Ipv4Addr::new(192, 0, 2, 22),
        Ipv4Addr::new(192, 0, 2, 23),
    ];

    fn sub_ip(i: u32) -> Ipv4Addr {
        Ipv4Addr::from(0x0a00_0002 + i)
    }

    fn sub_mac(i: u32) -> MacAddr {
        MacAddr([
            0x02,
            0x11,
            (i >> 24) as u8,
            (i >> 16) as u8,
            (i >> 8) as u8,
            i as u8,
        ])
    }

    fn srv_mac(ip: Ipv4Addr) -> MacAddr {
        MacAddr([0x02, 0x22, 0, 0, 0, ip.octets()[3]])
    }

    fn forwarding(nat_addresses: u32) -> Forwarding {
        let svc = Service {
            vip: VIP,
            protocol: 6,
            port: 80,
            policy: Policy::RoundRobin,
            session_type: SessionType::Connection,
            servers: SERVERS.iter().map(|a| RealServer::new(*a, 8080)).collect(),
        };
        ForwardingBuilder::new(
            SideConfig {
                mac: ACC_MAC,
                address: Ipv4Addr::new(10, 0, 0, 1),
                prefix_len: 8,
            },
            SideConfig {
                mac: CORE_MAC,
                address: Ipv4Addr::new(192, 0, 2, 1),
                prefix_len: 24,
            },
        )
        .services(Services::new(vec![svc]).expect("one service"))
        .nat(NatConfig {
            addresses: (0..nat_addresses)
                .map(|k| Ipv4Addr::new(192, 0, 2, 100 + k as u8))
                .collect(),
            ports: (1024, 65535),
            timeouts: Timeouts::default(),
        })
        .unknown(Unknown::Drop)
        .build()
        .expect("valid table")
    }

    #[allow(clippy::too_many_arguments)]
    fn segment(
        sm: MacAddr,
        dm: MacAddr,
        src: Ipv4Addr,
        sp: u16,
        dst: Ipv4Addr,
        dp: u16,
        flags: u8,
        seq: u32,
    ) -> Vec<u8> {
        let mut b = PacketBuilder::ethernet2(sm.0, dm.0)
            .ipv4(src.octets(), dst.octets(), 64)
            .tcp(sp, dp, seq, 1000);
        if flags & 2 != 0 {
            b = b.syn();
        }
        if flags & 16 != 0 {
            b = b.ack(1);
        }
        let mut v = Vec::with_capacity(64);
        // 14 + 20 + 20 + 10 = 64 bytes.
        b.write(&mut v, if flags & 2 != 0 { &[] } else { &[0x5a; 10] })
            .expect("frame builds");
        v
    }

    /// The rig: a worker whose access and core ports replay the steady-state frames.
    pub struct Rig {
        /// The worker.
        pub worker: Worker<MemoryPort>,
        /// Packets per poll (both sides).
        pub per_poll: u64,
        /// Flows established.
        pub flows: usize,
        _publisher: Publisher<Forwarding>,
    }

    /// Builds a rig with `sessions` sessions of `flows_each` flows.
    pub fn rig(sessions: u32, flows_each: u32, burst: usize) -> Rig {
        let flows = (sessions * flows_each) as usize;
        let nat_addresses = (flows as u32 / 60_000 + 1).min(150);
        let publisher = Publisher::new(forwarding(nat_addresses));
        let fwd = publisher.current();
        let (setup_a, mut peer_a) = MemoryPort::with_peer(1 << 16);
        let (setup_c, mut peer_c) = MemoryPort::with_peer(1 << 16);
        let (w, mut ctl) = worker_rings(RingSizes {
            messages: 1 << 16,
            frames: 64,
        });
        let cfg = WorkerConfig {
            burst: 256,
            subscribers: SubscriberLimits {
                sessions: sessions as usize,
                flows: flows.max(1),
                flows_per_subscriber: flows_each.max(1),
                ..SubscriberLimits::default()
            },
            ..WorkerConfig::default()
        };
        let mut worker = Worker::new(
            cfg,
            setup_a,
            setup_c,
            HeapPool::new(8192),
            publisher.reader(),
            w,
        );
        let mut now = 1u64;
        let poll_all = |worker: &mut Worker<MemoryPort>,
                        peer_a: &mut MemoryPeer,
                        peer_c: &mut MemoryPeer,
                        ctl: &mut tollgate_dataplane::ControlEnds,
                        now: &mut u64| {
            loop {
                *now += 1;
                let n = worker.poll(Instant(*now));
                peer_a.drain();
                peer_c.drain();
                while ctl.events.pop().is_some() {}
                if n == 0 && ctl.commands.free() == ctl.commands.capacity() {
                    break;
                }
            }
        };
        for ip in SERVERS {
            ctl.commands
                .push(Command::NeighborSet {
                    ip,
                    mac: srv_mac(ip),
                })
                .expect("room");
        }
        for i in 0..sessions {
            let spec = SessionSpec {
                id: i,
                user: i as u64,
                channel: i,
                address: sub_ip(i),
                mac: Some(sub_mac(i)),
                started: Instant(1),
                limits: Limits {
                    idle_timeout_ms: Some(3_600_000),
                    ..Limits::default()
                },
                bandwidth: Bandwidth::default(),
                services: ServiceSet::ALL,
                max_flows: 0,
            };
            while ctl.commands.push(Command::SessionAdd(spec)).is_err() {
                poll_all(&mut worker, &mut peer_a, &mut peer_c, &mut ctl, &mut now);
            }
        }
        poll_all(&mut worker, &mut peer_a, &mut peer_c, &mut ctl, &mut now);
        // Open every flow with a SYN, answer it with a SYN-ACK.
        for pass in 0..2 {
            for i in 0..sessions {
                for f in 0..flows_each {
                    let sport = 10_000 + f as u16;
                    let frame = if pass == 0 {
                        segment(sub_mac(i), ACC_MAC, sub_ip(i), sport, VIP, 80, 2, 1)
                    } else {
                        let pipe = worker.pipeline();
                        let Some(fl) = pipe
                            .flows
                            .find_up(
                                pipe.sessions.slot_by_ip(sub_ip(i)).unwrap_or(u32::MAX),
                                0,
                                sport,
                            )
                            .and_then(|k| pipe.flows.get(k))
                        else {
                            continue;
                        };
                        let server = SERVERS[fl.server as usize];
                        let nat = fwd.nat.addresses[fl.addr as usize];
                        segment(
                            srv_mac(server),
                            CORE_MAC,
                            server,
                            8080,
                            nat,
                            fl.nat_port,
                            2 | 16,
                            1,
                        )
                    };
                    loop {
                        let peer = if pass == 0 { &mut peer_a } else { &mut peer_c };
                        if peer.send(frame.clone()) {
                            break;
                        }
                        poll_all(&mut worker, &mut peer_a, &mut peer_c, &mut ctl, &mut now);
                    }
                }
            }
            poll_all(&mut worker, &mut peer_a, &mut peer_c, &mut ctl, &mut now);
        }
        let established = worker.pipeline().flows.len();
        // Steady state: one uplink and one downlink segment per flow.
        let mut up = Vec::with_capacity(flows);
        let mut down = Vec::with_capacity(flows);
        let pipe = worker.pipeline();
        for i in 0..sessions {
            for f in 0..flows_each {
                let sport = 10_000 + f as u16;
                let Some(fl) = pipe
                    .flows
                    .find_up(
                        pipe.sessions.slot_by_ip(sub_ip(i)).unwrap_or(u32::MAX),
                        0,
                        sport,
                    )
                    .and_then(|k| pipe.flows.get(k))
                else {
                    continue;
                };
                let server = SERVERS[fl.server as usize];
                let nat = fwd.nat.addresses[fl.addr as usize];
                up.push(segment(
                    sub_mac(i),
                    ACC_MAC,
                    sub_ip(i),
                    sport,
                    VIP,
                    80,
                    16,
                    2,
                ));
                down.push(segment(
                    srv_mac(server),
                    CORE_MAC,
                    server,
                    8080,
                    nat,
                    fl.nat_port,
                    16,
                    2,
                ));
            }
        }
        // Spread flows over the replay order so consecutive packets hit different flows.
        let mut worker = worker.with_ports(
            MemoryPort::repeating(up, u64::MAX),
            MemoryPort::repeating(down, u64::MAX),
        );
        worker.set_burst(burst);
        std::mem::forget(ctl);
        Rig {
            worker,
            per_poll: 2 * burst as u64,
            flows: established,
            _publisher: publisher,
        }
    }
}
