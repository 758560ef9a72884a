//! Session set-up through the engines alone (no I/O, no fast path): one PPPoE subscriber
//! from PADI to IPCP up, then its PADT, with CHAP-MD5 checked against a local table
//! (the MD5 is the whole "store"), and the same with PAP (a plain comparison here; the
//! real store's Argon2 is not in this bench). `discovery_only` (PADI..PADS, PADT) is the
//! reference in the same run.
//!
//! `cargo bench -p tollgate-control-core --bench ppp_setup`
//!
//! On a shared, loaded machine wall time says little; the binary also runs a fixed count
//! so that CPU time can be taken from outside (no clock is read here):
//! `perf stat -e task-clock target/release/deps/ppp_setup-* --count 20000 chap`
//! (modes `chap`, `pap`, `discovery`; `--count 0` gives the fixed cost to subtract).

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;

use common::{Gateway, Subscriber, connect_all};
use criterion::{Criterion, criterion_group};
use tollgate_control_core::Instant;
use tollgate_control_core::entropy::Sequence;
use tollgate_control_core::ppp::{self, AuthMethod};
use tollgate_control_core::pppoe::wire::{self as pwire, code};
use tollgate_control_core::pppoe::{DiscoveryConfig, Line, Rate};

/// The rate limits are policy, not cost: set high so that every iteration does the
/// whole set-up (the fake clock moves 1 ms per subscriber).
fn gateway(auth: AuthMethod) -> Gateway {
    let unlimited = Rate {
        per_second: 1_000_000,
        burst: 1_000_000,
    };
    let mut gw = Gateway::with_discovery(
        ppp::Config {
            auth: vec![auth],
            ..ppp::Config::default()
        },
        DiscoveryConfig {
            padi_rate: unlimited,
            padi_rate_per_mac: unlimited,
            ..DiscoveryConfig::default()
        },
        Instant(1_000_000_000),
    );
    gw.users.insert(b"alice".to_vec(), b"s3cret".to_vec());
    gw
}

/// One subscriber up and down; returns whether it came up.
fn one(gw: &mut Gateway, rng: &mut Sequence, n: u32) -> bool {
    let b = n.to_be_bytes();
    let mac = [2, 0xbe, b[0], b[1], b[2], b[3]];
    let line = Line {
        port: 0,
        svlan: Some(100),
        cvlan: Some((n % 4000) as u16 + 1),
    };
    let mut subs = [Subscriber::new(mac, line, b"alice", b"s3cret", rng)];
    let now = Instant(1_000_000_000 + u64::from(n) * 1_000_000);
    connect_all(gw, &mut subs, now);
    let up = subs[0].up();
    assert!(up, "subscriber {n} did not come up");
    let padt = pwire::build(code::PADT, subs[0].session_id, &[]);
    gw.input(now, line, mac, 0x8863, &padt);
    gw.out.clear();
    gw.events.clear();
    up
}

fn discovery_only(gw: &mut Gateway, n: u32) -> u16 {
    let b = n.to_be_bytes();
    let mac = [2, 0xdd, b[0], b[1], b[2], b[3]];
    let line = Line::untagged(0);
    let now = Instant(1_000_000_000 + u64::from(n) * 1_000_000);
    let mut t = Vec::new();
    pwire::put_tag(&mut t, pwire::tag::SERVICE_NAME, b"");
    gw.discovery
        .handle_input(now, line, mac, [0xff; 6], &pwire::build(code::PADI, 0, &t));
    let pado = gw.discovery.poll_transmit().unwrap();
    let p = pwire::Packet::new_checked(&pado.payload[..]).unwrap();
    for tg in p.tags().flatten() {
        if tg.kind == pwire::tag::AC_COOKIE {
            pwire::put_tag(&mut t, pwire::tag::AC_COOKIE, tg.value);
        }
    }
    gw.discovery
        .handle_input(now, line, mac, common::AC, &pwire::build(code::PADR, 0, &t));
    let pads = gw.discovery.poll_transmit().unwrap();
    while gw.discovery.poll_event().is_some() {}
    let id = pwire::Packet::new_checked(&pads.payload[..])
        .unwrap()
        .session_id();
    gw.discovery.handle_input(
        now,
        line,
        mac,
        common::AC,
        &pwire::build(code::PADT, id, &[]),
    );
    while gw.discovery.poll_event().is_some() {}
    id
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("session_setup");
    for (name, auth) in [("chap", AuthMethod::Chap), ("pap", AuthMethod::Pap)] {
        let mut gw = gateway(auth);
        let mut rng = Sequence::new(9);
        let mut n = 0u32;
        assert!(one(&mut gw, &mut rng, u32::MAX), "the flow works");
        g.bench_function(name, |b| {
            b.iter(|| {
                n = n.wrapping_add(1);
                black_box(one(&mut gw, &mut rng, n))
            })
        });
        // Every iteration must have brought its subscriber up.
        assert!(one(&mut gw, &mut rng, n.wrapping_add(1)));
        assert_eq!(gw.discovery.refusals().map(|(_, c)| c).sum::<u64>(), 0);
    }
    let mut gw = gateway(AuthMethod::Chap);
    let mut n = 0u32;
    g.bench_function("discovery_only", |b| {
        b.iter(|| {
            n = n.wrapping_add(1);
            black_box(discovery_only(&mut gw, n))
        })
    });
    assert_eq!(gw.discovery.refusals().map(|(_, c)| c).sum::<u64>(), 0);
    g.finish();
}

criterion_group!(benches, bench);

/// `--count N MODE`: N set-ups of MODE and nothing else.
fn fixed_count(args: &[String]) -> Option<()> {
    let at = args.iter().position(|a| a == "--count")?;
    let n: u32 = args.get(at + 1)?.parse().ok()?;
    let mode = args.get(at + 2).map_or("chap", String::as_str);
    let mut rng = Sequence::new(9);
    let mut up = 0u32;
    match mode {
        "discovery" => {
            let mut gw = gateway(AuthMethod::Chap);
            for i in 0..n {
                black_box(discovery_only(&mut gw, i));
                up += 1;
            }
        }
        m => {
            let auth = if m == "pap" {
                AuthMethod::Pap
            } else {
                AuthMethod::Chap
            };
            let mut gw = gateway(auth);
            for i in 0..n {
                up += u32::from(one(&mut gw, &mut rng, i));
            }
        }
    }
    assert_eq!(up, n);
    Some(())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if fixed_count(&args).is_some() {
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
