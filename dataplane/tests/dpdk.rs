//! The DPDK port backend against DPDK's ring devices (`net_ring`, no hugepages, no NIC):
//! frames built with etherparse go in through a ring, the exact frames come out, and the
//! counters are exact; two workers on two queues hand packets to each other and stay
//! exact; a short tx burst is freed and counted; no mbuf leaks; set-up errors say what
//! is wrong. Runs with `--features dpdk` (`make dpdk-test`), as root or with enough
//! locked memory for the EAL.

#![cfg(feature = "dpdk")]

use std::sync::{Mutex, MutexGuard};

use tollgate_dataplane::port::Port;
use tollgate_dataplane::port::dpdk::{
    self, Device, DeviceConfig, DpdkError, DpdkPort, Eal, PoolConfig, RingPeer,
};
use tollgate_dataplane::{Burst, DropReason, PacketBuf, Side};
use tollgate_testkit::gateway::{self, Gateway, Queue};

/// The EAL arguments of every test in this process (the EAL starts once per process).
fn eal() -> &'static Eal {
    let args = "--no-huge -m 256 --no-pci --no-shconf --no-telemetry -l 0 \
                --log-level=lib.eal:warning --vdev net_null9";
    let args: Vec<String> = args.split_whitespace().map(String::from).collect();
    dpdk::eal_init(&args).unwrap_or_else(|e| panic!("{e}"))
}

/// The tests share one mempool and check it for leaks: one at a time.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn config(queues: u16) -> DeviceConfig {
    DeviceConfig {
        queues,
        pool: PoolConfig {
            mbufs: 8191,
            cache: 64,
        },
        ..DeviceConfig::default()
    }
}

/// A gateway whose access and core ports are ring devices `{name}a` and `{name}c` with
/// one queue per worker.
fn gateway(
    name: &str,
    workers: u16,
    ring: u32,
    handoff: usize,
) -> (Gateway<DpdkPort, RingPeer>, [Device; 2]) {
    let eal = eal();
    let (acc, acc_peers) = dpdk::ring_device(eal, &format!("{name}a"), &config(workers), ring)
        .unwrap_or_else(|e| panic!("{e}"));
    let (core, core_peers) = dpdk::ring_device(eal, &format!("{name}c"), &config(workers), ring)
        .unwrap_or_else(|e| panic!("{e}"));
    let queues = acc_peers
        .into_iter()
        .zip(core_peers)
        .enumerate()
        .map(|(q, (access_peer, core_peer))| Queue {
            access: acc.port(q as u16),
            core: core.port(q as u16),
            pool: acc.pool(),
            access_peer,
            core_peer,
        })
        .collect();
    let g = Gateway::new([acc.mac(), core.mac()], queues, handoff);
    (g, [acc, core])
}

/// Runs `f` on a gateway and checks that every mbuf is back in the pool afterwards.
fn without_leaks(
    name: &str,
    workers: u16,
    ring: u32,
    handoff: usize,
    f: impl FnOnce(&mut Gateway<DpdkPort, RingPeer>),
) {
    let _one = serial();
    let (mut g, devs) = gateway(name, workers, ring, handoff);
    let pool = devs[0].mempool().clone();
    let before = pool.available();
    f(&mut g);
    for w in 0..g.workers.len() {
        for side in Side::ALL {
            g.take(w, side);
        }
    }
    drop(g);
    drop(devs);
    assert_eq!(pool.available(), before, "mbufs leaked");
    assert_eq!(before, pool.size(), "the pool was full before");
}

#[test]
fn one_worker_on_ring_devices_translates_exactly() {
    without_leaks("t1", 1, 1024, 64, gateway::check_exact_translation);
}

#[test]
fn two_workers_on_two_queues_hand_off_and_stay_exact() {
    without_leaks("t2", 2, 1024, 64, gateway::check_exact_translation);
}

#[test]
fn a_full_handoff_ring_is_a_counted_drop() {
    without_leaks("t3", 2, 1024, 8, |g| {
        gateway::check_handoff_overflow(g, 20, 8)
    });
}

#[test]
fn a_short_tx_burst_is_freed_and_counted() {
    // Rings of 16 slots hold 15 mbufs: the first 15 translated queries fill the core
    // port's tx ring, the next 10 find it full.
    without_leaks("t4", 1, 16, 64, |g| {
        g.session(1);
        let mac = g.macs[0];
        for k in 0..15 {
            g.send(0, Side::Access, &gateway::query(1, 100 + k, mac, b"x"));
        }
        g.poll();
        for k in 0..10 {
            g.send(0, Side::Access, &gateway::query(1, 200 + k, mac, b"y"));
        }
        g.poll();
        let c = g.total();
        assert_eq!(c.sides[Side::Core.idx()].tx_packets, 15);
        assert_eq!(c.dropped(DropReason::TxFull), 10);
        assert_eq!(g.take(0, Side::Core).len(), 15);
        g.check_balance();
    });
}

#[test]
fn a_virtual_device_is_created_by_name_and_received_from() {
    let _one = serial();
    let eal = eal();
    let dev = Device::open(eal, "net_null7,size=64", &config(2)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(dev.queues(), 2);
    let mut port = dev.port(1);
    let mut pool = dev.pool();
    let mut burst = Burst::new();
    port.rx_burst(&mut pool, &mut burst, 32);
    assert_eq!(burst.len(), 32, "net_null always has packets");
    assert!(burst.iter().all(|m| m.len() == 64));
    assert_eq!(port.tx_burst(&mut pool, &mut burst), 32);
    assert!(burst.is_empty());
    assert_eq!(dev.stats().rx_packets, 32);
    // One the EAL made from its --vdev argument is found by name.
    let given = Device::open(eal, "net_null9", &config(1)).unwrap_or_else(|e| panic!("{e}"));
    assert_ne!(given.port_id(), dev.port_id());
}

#[test]
fn set_up_errors_say_what_is_wrong() {
    let _one = serial();
    let eal = eal();
    let e = Device::open(eal, "0000:99:00.0", &config(1)).unwrap_err();
    assert!(matches!(e, DpdkError::NoSuchDevice { .. }), "{e}");
    let text = e.to_string();
    assert!(
        text.contains("0000:99:00.0") && text.contains("vfio-pci"),
        "{text}"
    );
    let e = Device::open(eal, "net_null8", &config(2000)).unwrap_err();
    assert!(
        e.to_string()
            .contains("2000 workers need 2000 rx and tx queues"),
        "{e}"
    );
    let e = dpdk::eal_init(&["--no-huge".to_string()]).unwrap_err();
    assert!(matches!(e, DpdkError::EalAgain { .. }), "{e}");
}
