//! Per-area micro benches: checksums, LPM lookups, neighbour lookups, parsing.

use std::hint::black_box;
use std::net::Ipv4Addr;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tollgate_benches::{ACC_MAC, uplink_frames};
use tollgate_dataplane::MacAddr;
use tollgate_dataplane::stage::parse;
use tollgate_dataplane::table::lpm::Lpm;
use tollgate_dataplane::table::neighbor::{NeighborTable, NeighborTiming};
use tollgate_dataplane::time::Instant;
use tollgate_dataplane::wire::checksum;

fn tables(c: &mut Criterion) {
    let mut g = c.benchmark_group("tables");
    g.throughput(Throughput::Elements(1024));

    let header: [u8; 20] = [
        0x45, 0, 0, 0x54, 0x1c, 0x46, 0x40, 0, 0x40, 0x01, 0xb1, 0xe6, 0xc0, 0xa8, 0, 1, 0xc0,
        0xa8, 0, 0xc7,
    ];
    g.bench_function("ipv4_header_checksum_x1024", |b| {
        b.iter(|| (0..1024).fold(0u16, |a, _| a ^ checksum::checksum(black_box(&header))))
    });
    g.bench_function("rfc1624_update_x1024", |b| {
        b.iter(|| {
            (0..1024u16).fold(0xb1e6u16, |hc, i| {
                checksum::update16(hc, black_box(i), black_box(i + 1))
            })
        })
    });

    // 10k random prefixes of every length, probed with 1024 addresses.
    let mut x = 0x1234_5678u32;
    let mut rnd = || {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x
    };
    let routes: Vec<_> = (0..10_000)
        .map(|i| (Ipv4Addr::from(rnd()), (8 + i % 25) as u8, i as u32))
        .collect();
    let lpm = Lpm::build(&routes);
    let probes: Vec<Ipv4Addr> = (0..1024).map(|_| Ipv4Addr::from(rnd())).collect();
    g.bench_function("lpm_10k_routes_x1024", |b| {
        b.iter(|| {
            probes
                .iter()
                .filter_map(|p| lpm.lookup(black_box(*p)))
                .count()
        })
    });

    let mut nt = NeighborTable::new(4096, NeighborTiming::default());
    let ips: Vec<Ipv4Addr> = (0..1024u32)
        .map(|i| Ipv4Addr::from(0x0a0a_0000 + i))
        .collect();
    for (i, ip) in ips.iter().enumerate() {
        nt.set(*ip, MacAddr([2, 0, 0, 0, (i >> 8) as u8, i as u8]));
    }
    g.bench_function("neighbor_lookup_1k_x1024", |b| {
        b.iter(|| {
            ips.iter()
                .filter(|ip| {
                    matches!(
                        nt.lookup(**ip, Instant(1)),
                        tollgate_dataplane::table::neighbor::Lookup::Mac(_)
                    )
                })
                .count()
        })
    });

    let frames = uplink_frames(1024, 64);
    g.bench_function("parse_ethernet_x1024", |b| {
        b.iter(|| {
            frames
                .iter()
                .filter(|f| parse::ethernet(black_box(f), ACC_MAC).is_ok())
                .count()
        })
    });
    g.finish();
}

criterion_group!(benches, tables);
criterion_main!(benches);
