//! Measures what a durable accounting record costs: `Spool::enqueue` with
//! `synchronous=FULL` (fsync of the WAL at every commit) against `NORMAL`; then what a
//! round of last known counters costs (`Spool::commit` of one [`LastKnown`] per open
//! session, one transaction) at 1k, 10k and 100k open sessions, three rounds each,
//! interleaved.
//!
//! `cargo run --release -p tollgate-control --example spool_fsync -- [N] [DIR]`
//! (DIR defaults to `target/`, which should be on the disk the spool will live on;
//! /tmp is often tmpfs, where fsync costs nothing).

use std::time::Instant as Clock;

use tollgate_control::spool::{Durability, Spool, SpoolOptions};
use tollgate_control_core::radius::attrs::{AcctRecord, Counters, LastKnown};
use tollgate_control_core::radius::dict::AcctStatusType;
use tollgate_dataplane::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(500);
    let dir = args.next().unwrap_or_else(|| "target".into());
    let dir = tempfile::Builder::new()
        .prefix("spool-fsync-")
        .tempdir_in(&dir)
        .expect("temp dir");
    println!("{n} enqueues per mode, spool in {}", dir.path().display());
    for (name, durability) in [("FULL", Durability::Full), ("NORMAL", Durability::Normal)] {
        let path = dir.path().join(format!("{name}.db"));
        let mut spool = Spool::open(
            &path,
            SpoolOptions {
                durability,
                ..SpoolOptions::default()
            },
        )
        .expect("open");
        let now = Instant::now();
        let record = |i: usize| AcctRecord {
            status: if i.is_multiple_of(2) {
                AcctStatusType::Start
            } else {
                AcctStatusType::Stop
            },
            session_id: format!("s{}", i / 2),
            user_name: "bench".into(),
            framed_ip: None,
            calling_station_id: Some("02:00:00:00:00:01".into()),
            class: vec![b"class".to_vec()],
            counters: Counters {
                octets_up: i as u64 * 1500,
                octets_down: i as u64 * 3000,
                packets_up: i as u64,
                packets_down: i as u64,
            },
            session_time_s: i as u32,
            cause: None,
            event_time: 1_700_000_000,
            access: None,
            ipv6: None,
            tunnel: None,
        };
        let start = Clock::now();
        for i in 0..n {
            spool.enqueue(now, &record(i)).expect("enqueue");
        }
        let el = start.elapsed();
        println!(
            "synchronous={name:<6}  one record per commit:  {:>8.1} us per record  {:>8.0} records/s",
            el.as_secs_f64() * 1e6 / n as f64,
            n as f64 / el.as_secs_f64()
        );
        let batch: Vec<AcctRecord> = (n..n + 100).map(record).collect();
        let start = Clock::now();
        let rounds = n.div_ceil(100);
        for _ in 0..rounds {
            spool.enqueue_many(now, &batch).expect("enqueue_many");
        }
        let el = start.elapsed();
        println!(
            "synchronous={name:<6}  100 records per commit: {:>8.1} us per record  {:>8.0} records/s",
            el.as_secs_f64() * 1e6 / (rounds * 100) as f64,
            (rounds * 100) as f64 / el.as_secs_f64()
        );
    }
    // Last known counters: one commit per round, every session moved.
    let sizes = [1_000usize, 10_000, 100_000];
    let mut spools = Vec::new();
    for &sessions in &sizes {
        let path = dir.path().join(format!("last-known-{sessions}.db"));
        let mut spool = Spool::open(&path, SpoolOptions::default()).expect("open");
        let now = Instant::now();
        for chunk in (0..sessions).collect::<Vec<_>>().chunks(1000) {
            let starts: Vec<AcctRecord> = chunk
                .iter()
                .map(|i| AcctRecord {
                    status: AcctStatusType::Start,
                    session_id: format!("lk{i}"),
                    user_name: "bench".into(),
                    framed_ip: None,
                    calling_station_id: None,
                    class: vec![b"class".to_vec()],
                    counters: Counters::default(),
                    session_time_s: 0,
                    cause: None,
                    event_time: 1_700_000_000,
                    access: None,
                    ipv6: None,
                    tunnel: None,
                })
                .collect();
            spool.enqueue_many(now, &starts).expect("starts");
        }
        spools.push((sessions, spool, Vec::new()));
    }
    for round in 1..=3u64 {
        for (sessions, spool, took) in &mut spools {
            let batch: Vec<LastKnown> = (0..*sessions)
                .map(|i| LastKnown {
                    session_id: format!("lk{i}"),
                    counters: Counters {
                        octets_up: round * 1500,
                        octets_down: round * 3000,
                        packets_up: round,
                        packets_down: round,
                    },
                    at_unix: 1_700_000_000 + round * 10,
                })
                .collect();
            let start = Clock::now();
            spool
                .commit(Instant::now(), &[], &batch)
                .expect("last known");
            took.push(start.elapsed());
        }
    }
    for (sessions, _, took) in &spools {
        let ms: Vec<String> = took
            .iter()
            .map(|d| format!("{:.1}", d.as_secs_f64() * 1e3))
            .collect();
        let best = took.iter().min().unwrap().as_secs_f64();
        println!(
            "last known counters, {sessions:>6} sessions per commit: {} ms per round ({:.2} us per session, best)",
            ms.join(" / "),
            best * 1e6 / *sessions as f64
        );
    }
}
