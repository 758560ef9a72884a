//! Several workers on ports that do not steer: a packet received by a worker that does not
//! own its state is handed to the owner, which translates it byte for byte; counters,
//! session counters and flow records stay exact; a full handoff ring is a counted drop;
//! private buffer pools stay balanced.

use tollgate_dataplane::port::memory::{MemoryPeer, MemoryPort};
use tollgate_dataplane::{HeapPool, Side};
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
