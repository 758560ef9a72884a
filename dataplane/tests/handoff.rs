//! Several workers on ports that do not steer: a packet received by a worker that does not
//! own its state is handed to the owner, which translates it byte for byte; counters,
//! session counters and flow records stay exact; a full handoff ring is a counted drop;
//! private buffer pools stay balanced.

use tollgate_dataplane::port::memory::{MemoryPeer, MemoryPort};
use tollgate_dataplane::{HeapPool, MacAddr, Side};
use tollgate_testkit::gateway::{self, Gateway, Queue};
use tollgate_testkit::lab::{ACC_MAC, CORE_MAC};

const POOL: usize = 512;

fn gateway(workers: usize, handoff: usize) -> Gateway<MemoryPort, MemoryPeer> {
    with_pools(&vec![POOL; workers], handoff)
}

fn with_pools(pools: &[usize], handoff: usize) -> Gateway<MemoryPort, MemoryPeer> {
    let queues = pools
        .iter()
        .map(|&size| {
            let (access, access_peer) = MemoryPort::with_peer(256);
            let (core, core_peer) = MemoryPort::with_peer(256);
            Queue {
                access,
                core,
                pool: HeapPool::new(size),
                access_peer,
                core_peer,
            }
        })
        .collect();
    Gateway::new([ACC_MAC, CORE_MAC], queues, handoff)
}

fn check_pools(g: &Gateway<MemoryPort, MemoryPeer>, sizes: &[usize]) {
    for (i, w) in g.workers.iter().enumerate() {
        assert_eq!(w.pool_available() + w.held(), sizes[i], "worker {i}'s pool");
    }
}

#[test]
fn one_worker_translates_exactly() {
    let mut g = gateway(1, 64);
    gateway::check_exact_translation(&mut g);
    check_pools(&g, &[POOL]);
}

#[test]
fn two_workers_hand_off_to_the_owner_and_stay_exact() {
    let mut g = gateway(2, 64);
    gateway::check_exact_translation(&mut g);
    check_pools(&g, &[POOL; 2]);
}

#[test]
fn three_workers_hand_off_to_the_owner_and_stay_exact() {
    let mut g = gateway(3, 64);
    gateway::check_exact_translation(&mut g);
    check_pools(&g, &[POOL; 3]);
}

#[test]
fn a_full_handoff_ring_is_a_counted_drop() {
    let mut g = gateway(2, 8);
    gateway::check_handoff_overflow(&mut g, 20, 8);
    check_pools(&g, &[POOL; 2]);
}

#[test]
fn a_private_pool_takes_handoffs_only_when_it_can_repay() {
    // Worker 1 has 8 buffers: it takes only as many packets as it can give buffers back
    // for; the rest wait in the ring for the next poll instead of unbalancing the pools.
    let sizes = [POOL, 8];
    let mut g = with_pools(&sizes, 64);
    g.session(1);
    for k in 0..10 {
        let f = gateway::query(1, 7000 + k, ACC_MAC, b"q");
        g.send(0, Side::Access, &f);
    }
    g.workers[0].poll(g.now);
    assert_eq!(g.total().handed_off, 10);
    g.workers[1].poll(g.now);
    assert_eq!(g.take(1, Side::Core).len(), 8, "as many as it could repay");
    g.workers[1].poll(g.now);
    assert_eq!(g.take(1, Side::Core).len(), 2, "the rest next poll");
    g.poll();
    g.check_balance();
    check_pools(&g, &sizes);
}

/// PPPoE and tagged subscribers (ACC-1, ACC-4) with three workers: whichever worker
/// receives a subscriber's frame, it reaches the worker that owns the session (by the
/// IPv4 address inside the tags and PPPoE), which decapsulates, translates to a real
/// server and back, and encapsulates the answer for the subscriber's line.
#[test]
fn pppoe_and_tagged_subscribers_reach_their_owner() {
    use tollgate_dataplane::Command;
    use tollgate_dataplane::session::{
        AccessLine, Bandwidth, Encap, Limits, ServiceSet, SessionSpec, VlanTag, Vlans,
    };
    use tollgate_dataplane::steer::subscriber_worker;
    use tollgate_testkit::gateway::{
        answer, answer_out, nat_of, query, query_out, sub_ip, sub_mac,
    };

    // The Ethernet frame `plain` with `tags` and, for `Some(id)`, PPPoE session `id`
    // between its MACs and its IPv4 packet.
    fn on_line(plain: &[u8], tags: &[(u16, u16)], pppoe: Option<u16>) -> Vec<u8> {
        let ip = &plain[14..];
        let mut f = plain[..12].to_vec();
        for (tpid, vid) in tags {
            f.extend_from_slice(&tpid.to_be_bytes());
            f.extend_from_slice(&vid.to_be_bytes());
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

    let n = 3;
    let mut g = gateway(n, 64);
    // Subscribers 1..=6: odd ones PPPoE over QinQ, even ones IPoE in one C-VLAN.
    let line = |i: u8| -> (Vec<(u16, u16)>, Option<u16>) {
        if i % 2 == 1 {
            (
                vec![(0x88a8, 100 + i as u16), (0x8100, 7)],
                Some(0x100 + i as u16),
            )
        } else {
            (vec![(0x8100, 200 + i as u16)], None)
        }
    };
    for i in 1..=6u8 {
        let (tags, pppoe) = line(i);
        let tag = |k: usize| tags.get(k).map(|&(tpid, vid)| VlanTag { tpid, vid });
        let spec = SessionSpec {
            id: i as u32,
            user: 1000 + i as u64,
            channel: i as u32,
            address: sub_ip(i),
            mac: Some(sub_mac(i)),
            started: g.now,
            limits: Limits::default(),
            bandwidth: Bandwidth::default(),
            services: ServiceSet::ALL,
            max_flows: 0,
            access: AccessLine {
                vlans: Vlans {
                    outer: tag(0),
                    inner: tag(1),
                },
                encap: pppoe.map_or(Encap::Ipoe, |session| Encap::Pppoe { session }),
                mss_clamp: 0,
            },
        };
        let owner = subscriber_worker(sub_ip(i), n as u16) as usize;
        g.ctl[owner]
            .commands
            .push(Command::SessionAdd(spec))
            .unwrap();
    }
    g.poll();
    let mut crossed = 0;
    for i in 1..=6u8 {
        let (tags, pppoe) = line(i);
        let owner = subscriber_worker(sub_ip(i), n as u16) as usize;
        let rx = (owner + 1) % n;
        let q = vec![i; 30];
        g.send(
            rx,
            Side::Access,
            &on_line(&query(i, 6000, ACC_MAC, &q), &tags, pppoe),
        );
        g.poll();
        let out: Vec<(usize, Vec<u8>)> = (0..n)
            .flat_map(|w| g.take(w, Side::Core).into_iter().map(move |f| (w, f)))
            .collect();
        assert_eq!(out.len(), 1, "subscriber {i}: one translated query");
        assert_eq!(out[0].0, owner, "sent by the owner");
        let (nat_port, server) = nat_of(&out[0].1);
        assert_eq!(out[0].1, query_out(CORE_MAC, server, nat_port, &q));
        // The answer comes in on yet another worker.
        let a = vec![0xa0 | i; 50];
        g.send(
            (owner + 2) % n,
            Side::Core,
            &answer(CORE_MAC, server, nat_port, &a),
        );
        g.poll();
        let back: Vec<(usize, Vec<u8>)> = (0..n)
            .flat_map(|w| g.take(w, Side::Access).into_iter().map(move |f| (w, f)))
            .collect();
        // Tagged as installed, PPPoE for the PPPoE subscribers.
        let want = on_line(&answer_out(i, 6000, ACC_MAC, &a), &tags, pppoe);
        assert_eq!(back, vec![(owner, want)], "subscriber {i}");
        crossed += 2;
    }
    let t = g.total();
    assert_eq!(
        (t.total_drops(), t.handed_off, t.handoff_received),
        (0, crossed, crossed)
    );
    g.check_balance();
}

/// IPv6 with two workers on ports that do not steer (issue 16): a session's delegated /56
/// is steered by the /56 ([`prefix_worker`]), so hosts in two of its /64s (and its own
/// /64) reach the session's worker whichever worker receives them, uplink and downlink,
/// byte for byte, with exact session counters. Under a rule by the /64 one of the two
/// /64s would be steered to the other worker, which has no session for it.
#[test]
fn two_64s_of_a_delegated_56_reach_the_session_s_worker() {
    use std::net::Ipv6Addr;
    use tollgate_dataplane::session::{AccessLine, Encap, SessionSpec, Vlans};
    use tollgate_dataplane::steer::{prefix_worker, subscriber_worker};
    use tollgate_dataplane::{Command, Event, ForwardingBuilder, Ipv6Forwarding, SideConfig};
    use tollgate_testkit::lab::{GW_ACC, GW_CORE, RTR_MAC, SUB, SUB_MAC};

    let udp6 = |macs: (MacAddr, MacAddr), src: Ipv6Addr, dst: Ipv6Addr, hl: u8, p: &[u8]| {
        let mut f = Vec::new();
        etherparse::PacketBuilder::ethernet2(macs.0.0, macs.1.0)
            .ipv6(src.octets(), dst.octets(), hl)
            .udp(40000, 53)
            .write(&mut f, p)
            .unwrap();
        f
    };
    let n = 2u16;
    let owner = subscriber_worker(SUB, n);
    // The /56 2001:db8:200:X00::/56 and the /64 2001:db8:100:Y00::/64 steered to it.
    let steered = |base: u64| {
        (0..4u64)
            .map(|k| base | k << 8)
            .find(|p| prefix_worker(*p, n) == owner)
            .unwrap()
    };
    let pd = steered(0x2001_0db8_0200_0000);
    let own = steered(0x2001_0db8_0100_0000);
    let host = |prefix: u64, iid: u128| Ipv6Addr::from(u128::from(prefix) << 64 | iid);
    let srv: Ipv6Addr = "2001:db8:ff::10".parse().unwrap();
    let rtr: Ipv6Addr = "2001:db8:ff::fe".parse().unwrap();
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
        addresses: vec!["2001:db8:ff::1".parse().unwrap()],
        next_hop: Some(rtr),
        next_hop_mac: Some(RTR_MAC),
        error_sources: [None, None],
    })
    .build()
    .unwrap();
    let queues = (0..n)
        .map(|_| {
            let (access, access_peer) = MemoryPort::with_peer(256);
            let (core, core_peer) = MemoryPort::with_peer(256);
            Queue {
                access,
                core,
                pool: HeapPool::new(POOL),
                access_peer,
                core_peer,
            }
        })
        .collect();
    let mut g = Gateway::with_table([ACC_MAC, CORE_MAC], fwd, queues, 64);
    let cmds = &mut g.ctl[owner as usize].commands;
    for c in [
        Command::SessionAdd(SessionSpec {
            id: 1,
            user: 1000,
            channel: 1,
            address: SUB,
            mac: Some(SUB_MAC),
            started: g.now,
            limits: Default::default(),
            bandwidth: Default::default(),
            services: Default::default(),
            max_flows: 0,
            access: AccessLine {
                vlans: Vlans::default(),
                encap: Encap::Ipoe,
                mss_clamp: 0,
            },
        }),
        Command::SessionPrefix6 {
            id: 1,
            prefix: Some(own),
        },
        Command::SessionDelegated6 {
            id: 1,
            prefix: Some((pd, 56)),
        },
    ] {
        cmds.push(c).unwrap();
    }
    g.poll();
    // The first and the last /64 of the /56 (by the /64 they would go to different
    // workers), and the session's own /64.
    let hosts = [host(pd, 7), host(pd | 0xff, 9), host(own, 0x11)];
    let (mut up_bytes, mut down_bytes, mut crossed) = (0u64, 0u64, 0u64);
    for (i, h) in hosts.into_iter().enumerate() {
        for rx in 0..n as usize {
            let q = vec![i as u8; 20 + rx];
            g.send(rx, Side::Access, &udp6((SUB_MAC, ACC_MAC), h, srv, 64, &q));
            g.poll();
            let out: Vec<(usize, Vec<u8>)> = (0..n as usize)
                .flat_map(|w| g.take(w, Side::Core).into_iter().map(move |f| (w, f)))
                .collect();
            let want = udp6((CORE_MAC, RTR_MAC), h, srv, 63, &q);
            assert_eq!(out, vec![(owner as usize, want)], "{h} up via worker {rx}");
            up_bytes += 40 + 8 + q.len() as u64;
            let a = vec![0xa0 | i as u8; 30 + rx];
            g.send(rx, Side::Core, &udp6((RTR_MAC, CORE_MAC), srv, h, 64, &a));
            g.poll();
            let back: Vec<(usize, Vec<u8>)> = (0..n as usize)
                .flat_map(|w| g.take(w, Side::Access).into_iter().map(move |f| (w, f)))
                .collect();
            let want = udp6((ACC_MAC, SUB_MAC), srv, h, 63, &a);
            assert_eq!(
                back,
                vec![(owner as usize, want)],
                "{h} down via worker {rx}"
            );
            down_bytes += 40 + 8 + a.len() as u64;
            if rx != owner as usize {
                crossed += 2;
            }
        }
    }
    let t = g.total();
    assert_eq!(
        (t.total_drops(), t.handed_off, t.handoff_received),
        (0, crossed, crossed)
    );
    assert_eq!(crossed, 6);
    g.ctl[owner as usize]
        .commands
        .push(Command::SessionQuery { id: 1, seq: 9 })
        .unwrap();
    g.poll();
    let c = g
        .events
        .iter()
        .find_map(|e| match e {
            Event::SessionCounters {
                id: 1,
                seq: 9,
                counters,
                ..
            } => Some(*counters),
            _ => None,
        })
        .expect("the session answers");
    assert_eq!(
        (c.tx_packets, c.tx_bytes, c.rx_packets, c.rx_bytes),
        (6, up_bytes, 6, down_bytes)
    );
    g.check_balance();
}
