//! The full subscriber pipeline on memory ports, one worker: classify (session lookup,
//! anti-spoofing), policy (authorisation, policer), NAT on established flows both ways,
//! counting and checks, L2 rewrite. Half the packets are uplink, half downlink, 64 bytes,
//! each to a different flow in turn. Sizes: 1k flows (1k sessions), 100k flows (100k
//! sessions), 1M flows (100k sessions x 10).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tollgate_benches::pipeline::rig;
use tollgate_dataplane::time::Instant;

fn pipeline(c: &mut Criterion) {
    let mut g = c.benchmark_group("pipeline");
    g.sample_size(20);
    for (name, sessions, each) in [
        ("64B_1k_flows_burst32", 1_000u32, 1u32),
        ("64B_100k_flows_burst32", 100_000, 1),
        ("64B_1M_flows_burst32", 100_000, 10),
    ] {
        let mut r = rig(sessions, each, 32);
        assert_eq!(
            r.flows,
            (sessions * each) as usize,
            "{name}: every flow established"
        );
        g.throughput(Throughput::Elements(r.per_poll));
        let mut now = 1_000_000_000u64;
        g.bench_function(name, |b| {
            b.iter(|| {
                now += 1;
                black_box(r.worker.poll(Instant(now)))
            })
        });
        let c = r.worker.report(0, Instant(now)).counters;
        assert_eq!(
            c.total_drops(),
            0,
            "{name}: the bench must forward, not drop: {:?}",
            c.drops
        );
    }
    g.finish();
}

criterion_group!(benches, pipeline);
criterion_main!(benches);
