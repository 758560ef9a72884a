//! The forwarding path on memory ports, one worker: rx burst, parse, route, TTL,
//! neighbour, L2 rewrite, tx burst. Prints Mpps and ns/packet after the run (`make
//! bench`); criterion's own estimates are in target/criterion/forward/.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tollgate_benches::{SRV, SRV_MAC, lab_forwarding, uplink_frames};
use tollgate_dataplane::port::memory::MemoryPort;
use tollgate_dataplane::snapshot::Publisher;
use tollgate_dataplane::time::Instant;
use tollgate_dataplane::{Burst, Command, HeapPool, Port, Worker, WorkerConfig, worker_rings};

fn worker(frames: Vec<Vec<u8>>, burst: usize) -> Worker<MemoryPort> {
    let publisher = Publisher::new(lab_forwarding());
    let (w, mut ctl) = worker_rings(Default::default());
    let mut worker = Worker::new(
        WorkerConfig {
            burst,
            ..WorkerConfig::default()
        },
        MemoryPort::repeating(frames, u64::MAX),
        MemoryPort::idle(),
        HeapPool::new(4096),
        publisher.reader(),
        w,
    );
    ctl.commands
        .push(Command::NeighborSet {
            ip: SRV,
            mac: SRV_MAC,
        })
        .expect("empty ring");
    worker.poll(Instant(1));
    // Keep the control ends alive for the worker's lifetime.
    std::mem::forget(ctl);
    worker
}

fn forward(c: &mut Criterion) {
    let mut g = c.benchmark_group("forward");

    // The reference: the same ports, pool and bursts with no stages in between (what
    // testpmd's io forwarding is to DPDK). The pipeline's cost is its time over this.
    {
        let mut rx = MemoryPort::repeating(uplink_frames(256, 64), u64::MAX);
        let mut tx = MemoryPort::idle();
        let mut pool = HeapPool::new(4096);
        let mut burst = Burst::new();
        g.throughput(Throughput::Elements(32));
        g.bench_function("io_only_64B_256flows_burst32", |b| {
            b.iter(|| {
                rx.rx_burst(&mut pool, &mut burst, 32);
                black_box(tx.tx_burst(&mut pool, &mut burst))
            })
        });
    }

    for (name, flows, size, burst) in [
        ("64B_1flow_burst32", 1, 64, 32),
        ("64B_256flows_burst32", 256, 64, 32),
        ("64B_256flows_burst256", 256, 64, 256),
        ("1500B_256flows_burst32", 256, 1500, 32),
    ] {
        let mut w = worker(uplink_frames(flows, size), burst);
        g.throughput(Throughput::Elements(burst as u64));
        let mut now = 2u64;
        g.bench_function(name, |b| {
            b.iter(|| {
                now += 1;
                black_box(w.poll(Instant(now)))
            })
        });
        let c = w.report(0, Instant(now)).counters;
        assert_eq!(
            c.total_drops(),
            0,
            "{name}: the bench must forward, not drop"
        );
        assert_eq!(c.forwarded, c.rx_packets(), "{name}");
    }
    g.finish();
}

criterion_group!(benches, forward);
criterion_main!(benches);
