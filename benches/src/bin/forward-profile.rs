//! A fixed amount of forwarding work for instruction-level profiling:
//! `valgrind --tool=callgrind target/release/forward-profile` counts instructions per
//! stage, repeatably on a noisy machine (`make profile` prints instructions per packet).

use std::hint::black_box;

use tollgate_benches::{SRV, SRV_MAC, lab_forwarding, uplink_frames};
use tollgate_dataplane::port::memory::MemoryPort;
use tollgate_dataplane::snapshot::Publisher;
use tollgate_dataplane::time::Instant;
use tollgate_dataplane::{Burst, Command, HeapPool, Port, Worker, WorkerConfig, worker_rings};

fn main() {
    let polls: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000);
    if std::env::args().nth(2).as_deref() == Some("io-only") {
        // The reference: the same ports, pool and bursts with no stages in between.
        let mut rx = MemoryPort::repeating(uplink_frames(256, 64), u64::MAX);
        let mut tx = MemoryPort::idle();
        let mut pool = HeapPool::new(4096);
        let mut burst = Burst::new();
        for _ in 0..polls {
            rx.rx_burst(&mut pool, &mut burst, 32);
            black_box(tx.tx_burst(&mut pool, &mut burst));
        }
        println!("{} packets moved in {polls} bursts", tx.sent_packets);
        return;
    }
    let publisher = Publisher::new(lab_forwarding());
    let (w, mut ctl) = worker_rings(Default::default());
    let mut worker = Worker::new(
        WorkerConfig::default(),
        MemoryPort::repeating(uplink_frames(256, 64), u64::MAX),
        MemoryPort::idle(),
        HeapPool::new(4096),
        publisher.reader(),
        w,
    );
    if ctl
        .commands
        .push(Command::NeighborSet {
            ip: SRV,
            mac: SRV_MAC,
        })
        .is_err()
    {
        unreachable!("an empty ring has room");
    }
    for t in 0..polls {
        black_box(worker.poll(Instant(t + 1)));
    }
    let c = worker.report(0, Instant(polls + 1)).counters;
    println!(
        "{} packets forwarded in {polls} polls, {} dropped",
        c.forwarded,
        c.total_drops()
    );
}
