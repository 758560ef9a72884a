//! The cluster benchmark (issue 18, "Benchmark"; `make cluster-bench`, root, PostgreSQL 15
//! from `make deps`): on one PostgreSQL started here (loopback, `fsync=on`),
//!
//! 1. accounting records per second delivered from a node's spool to PostgreSQL, the
//!    way the daemon does it (`database::accounting::Delivery`: batches of what is due,
//!    at most 256 in flight, one transaction a batch; committed records acknowledged in
//!    the spool, one SQLite transaction per answer);
//! 2. a month of 100 000 usage records closed on PostgreSQL against SQLite, in the same
//!    run, alternating: import, close-period, rerate (the generator of
//!    `scripts/rating-bench.sh`: 60% sessions, 30% bandwidth changes, 8% tunnel use, 2%
//!    service use; 1 000 accounts of 4 users, three bands, an activation date), and the
//!    totals of both compared.
//!
//! Each is run `RUNS` times on fresh databases; the report gives every run, the median
//! and the spread, and the ratios.
//!
//!   cargo run --release -p tollgate-control --example cluster_bench -- [ACCT] [RATING] [RUNS]
//!
//! (defaults 50 000 accounting records, 100 000 usage records, 3 runs).

use std::time::{Duration, Instant as StdInstant};

use tollgate_control::database::DatabaseConfig;
use tollgate_control::database::accounting::Delivery;
use tollgate_control::rating::{Rater, Store};
use tollgate_control::spool::{Spool, SpoolOptions};
use tollgate_control_core::radius::attrs::{AcctRecord, Counters};
use tollgate_control_core::radius::dict::AcctStatusType;
use tollgate_control_core::rating::{Period, Plan, RatingConfig, Record};
use tollgate_dataplane::time::Instant;
use tollgate_testkit::postgres::Postgres;

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("numbers: ACCT RATING RUNS"))
        .collect();
    let acct = args.first().copied().unwrap_or(50_000);
    let rating = args.get(1).copied().unwrap_or(100_000);
    let runs = args.get(2).copied().unwrap_or(3).max(1);
    let pg = Postgres::start_durable();
    println!("PostgreSQL 15 on loopback, fsync=on; {runs} runs each");

    let mut rates = Vec::new();
    for run in 0..runs {
        let db = format!("acct{run}");
        pg.create_database(&db);
        let secs = deliver(&pg.url(&db), acct);
        let r = acct as f64 / secs;
        println!("accounting run {run}: {acct} records in {secs:.2} s = {r:.0} records/s");
        rates.push(r);
    }
    summary("accounting records/s to PostgreSQL", &rates);

    let records = generate(rating as usize);
    let plan = Plan::compile(&plan_config()).expect("the plan");
    let (mut sq, mut pq) = (Vec::new(), Vec::new());
    for run in 0..runs {
        let dir = tempfile::tempdir().unwrap();
        let s = rate(
            Store::open(&dir.path().join("rating.db")).unwrap(),
            &plan,
            &records,
        );
        let db = format!("rating{run}");
        pg.create_database(&db);
        let p = rate(
            Store::open_postgres(&DatabaseConfig::new(&pg.url(&db))).unwrap(),
            &plan,
            &records,
        );
        assert_eq!(s.total, p.total, "both ledgers rate the same invoices");
        for (name, t) in [("SQLite", &s), ("PostgreSQL", &p)] {
            println!(
                "rating run {run} {name:>10}: import {:.2} s, close-period {:.2} s, rerate {:.2} s ({} invoices, total {})",
                t.import, t.close, t.rerate, t.invoices, t.total
            );
        }
        sq.push(s);
        pq.push(p);
    }
    for (what, f) in [
        ("import", (|t: &Timing| t.import) as fn(&Timing) -> f64),
        ("close-period", |t| t.close),
        ("rerate", |t| t.rerate),
    ] {
        let s: Vec<f64> = sq.iter().map(f).collect();
        let p: Vec<f64> = pq.iter().map(f).collect();
        summary(&format!("{what} SQLite (s)"), &s);
        summary(&format!("{what} PostgreSQL (s)"), &p);
        println!(
            "  {what}: PostgreSQL / SQLite = {:.2} (medians)",
            median(&p) / median(&s)
        );
    }
    let close: Vec<f64> = pq.iter().map(|t| rating as f64 / t.close).collect();
    summary("close-period on PostgreSQL, records rated/s", &close);
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s[s.len() / 2]
}

fn summary(what: &str, v: &[f64]) {
    let min = v.iter().copied().fold(f64::INFINITY, f64::min);
    let max = v.iter().copied().fold(0.0, f64::max);
    let m = median(v);
    println!(
        "{what}: median {m:.2}, min {min:.2}, max {max:.2} (spread {:.0}% of the median)",
        (max - min) / m * 100.0
    );
}

fn record(session: u64, status: AcctStatusType) -> AcctRecord {
    AcctRecord {
        status,
        session_id: format!("bench.{session}"),
        user_name: format!("user{session}"),
        framed_ip: Some(std::net::Ipv4Addr::from(0x0a00_0000 + session as u32)),
        calling_station_id: None,
        class: vec![b"bench".to_vec()],
        counters: Counters {
            octets_up: session * 1000,
            octets_down: session * 3000,
            packets_up: session,
            packets_down: 2 * session,
        },
        session_time_s: 60,
        cause: None,
        event_time: 1_700_000_000 + session,
        access: None,
        ipv6: None,
        tunnel: None,
    }
}

/// Spools `n` records (Start, Interim-Update, Stop of n/3 sessions), then delivers them
/// as the shell does; the seconds from the first batch to the last acknowledgement.
fn deliver(url: &str, n: u64) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = Spool::open(
        &dir.path().join("spool.db"),
        SpoolOptions {
            retry_min: Duration::from_millis(10),
            ..SpoolOptions::default()
        },
    )
    .unwrap();
    let sessions = n / 3;
    for status in [
        AcctStatusType::Start,
        AcctStatusType::InterimUpdate,
        AcctStatusType::Stop,
    ] {
        for chunk in (0..sessions).collect::<Vec<_>>().chunks(1000) {
            let recs: Vec<AcctRecord> = chunk.iter().map(|s| record(*s, status)).collect();
            spool.enqueue_many(Instant::now(), &recs).unwrap();
        }
    }
    let total = spool.pending().unwrap();
    let cfg = DatabaseConfig {
        node: Some("bench".into()),
        ..DatabaseConfig::new(url)
    };
    let d = Delivery::start(&cfg, spool.identity()).unwrap();
    let started = StdInstant::now();
    let mut stored = 0;
    while stored < total {
        let now = Instant::now();
        let mut batch = Vec::new();
        while let Some(due) = spool.next_due(now).unwrap() {
            batch.push((due.id, due.record));
        }
        if !batch.is_empty() {
            d.send(batch);
        }
        while let Some(o) = d.outcome() {
            assert!(o.failed.is_empty(), "a batch failed");
            stored += o.committed.len() as u64;
            spool.ack_many(now, &o.committed).unwrap();
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    started.elapsed().as_secs_f64()
}

struct Timing {
    import: f64,
    close: f64,
    rerate: f64,
    invoices: u64,
    total: i64,
}

fn rate(store: Store, plan: &Plan, records: &[Record]) -> Timing {
    let rater = Rater::with_store(plan.clone(), store);
    let t = StdInstant::now();
    // In files of at most 100 000 records, as `billing import` takes them.
    for part in records.chunks(100_000) {
        rater.import(part).unwrap();
    }
    let import = t.elapsed().as_secs_f64();
    let may = Period::parse("2024-05").unwrap();
    let t = StdInstant::now();
    let r = rater.close_period(may, 1_800_000_000).unwrap();
    let close = t.elapsed().as_secs_f64();
    let t = StdInstant::now();
    let rr = rater.rerate(may).unwrap();
    let rerate = t.elapsed().as_secs_f64();
    assert!(rr.identical, "re-rating differs: {:?}", rr.differing);
    Timing {
        import,
        close,
        rerate,
        invoices: r.invoices,
        total: r.total,
    }
}

/// `scripts/rating-bench.sh`'s plan.
fn plan_config() -> RatingConfig {
    let mut cfg = String::from(
        "timezone_offset_minutes = 120\ndefault_tariff = \"home\"\n\
         [[band]]\nname = \"peak\"\ndays = [\"weekdays\"]\nfrom = \"08:00\"\nto = \"20:00\"\n\
         [[band]]\nname = \"night\"\nfrom = \"20:00\"\nto = \"08:00\"\n\
         [[band]]\nname = \"weekend\"\ndays = [\"weekend\"]\nfrom = \"08:00\"\nto = \"20:00\"\n\
         [[tariff]]\nname = \"home\"\n",
    );
    for (kind, extra) in [
        ("bytes", "direction = \"tx\"\nprice = 3\nper = 1000000"),
        ("bytes", "direction = \"rx\"\nprice = 2\nper = 1000000"),
        ("packets", "price = 1\nper = 1000"),
        ("time", "band = \"peak\"\nprice = 25\nper = 3600"),
        ("time", "band = \"night\"\nprice = 5\nper = 3600"),
        ("bandwidth", "band = \"peak\"\nprice = 1\nper = 3600000000"),
        ("bandwidth", "band = \"night\"\nprice = 1\nper = 7200000000"),
        (
            "bandwidth",
            "band = \"weekend\"\nsince = \"2024-05-15\"\nprice = 1\nper = 5000000000",
        ),
        ("tunnel", "price = 700"),
        ("line_time", "price = 1\nper = 3600"),
        ("fixed", "price = 990"),
    ] {
        cfg += &format!("[[tariff.rate]]\nkind = \"{kind}\"\n{extra}\n");
    }
    cfg += "[[contract]]\nname = \"vpn\"\nfee = 450\nprice = 10\n";
    for a in 0..1000 {
        let users: Vec<String> = (0..4).map(|k| format!("\"u{}\"", a * 4 + k)).collect();
        cfg += &format!(
            "[[account]]\nid = \"a{a}\"\nusers = [{}]\ncontracts = [\"vpn\"]\n",
            users.join(", ")
        );
    }
    toml::from_str(&cfg).expect("the bench plan")
}

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n.max(1)
    }
}

/// `scripts/rating-bench.sh`'s records: May 2024 at UTC+2.
fn generate(n: usize) -> Vec<Record> {
    let mut r = Rng(4);
    let (users, accounts) = (4000, 1000);
    let may: i64 = 1_714_521_600 - 7200;
    let month = 31 * 86_400;
    let (sessions, bw, tun) = (n * 6 / 10, n * 3 / 10, n * 8 / 100);
    let mut out = Vec::with_capacity(n);
    let mut push = |v: serde_json::Value| out.push(serde_json::from_value(v).expect("a record"));
    for i in 0..sessions {
        let s = may + r.below(month) as i64;
        let dur = 60 + r.below(8 * 3600 - 60) as i64;
        push(serde_json::json!({"type": "session", "id": format!("s{i}"),
            "user": format!("u{}", r.below(users)), "session": format!("c{i}"),
            "start": s, "stop": s + dur, "tx_packets": r.below(1_000_000),
            "tx_bytes": r.below(1_000_000_000), "rx_packets": r.below(1_000_000),
            "rx_bytes": r.below(10_000_000_000), "cause": "user-request"}));
    }
    for i in 0..bw {
        let c = i / 3;
        push(
            serde_json::json!({"type": "bandwidth", "id": format!("b{i}"),
            "user": format!("u{}", c as u64 % users), "session": format!("c{c}"),
            "at": may + r.below(month) as i64,
            "bps": 1_000_000 + r.below(999_000_000), "reason": "coa"}),
        );
    }
    for i in 0..tun {
        let s = may + r.below(month) as i64;
        push(serde_json::json!({"type": "tunnel", "id": format!("t{i}"),
            "account": format!("a{}", r.below(accounts)),
            "tunnel": format!("T{}", r.below(5000)), "line": format!("L{}", r.below(200)),
            "start": s, "stop": s + r.below(86_400) as i64}));
    }
    for i in 0..n - sessions - bw - tun {
        push(serde_json::json!({"type": "service", "id": format!("v{i}"),
            "account": format!("a{}", r.below(accounts)), "contract": "vpn",
            "at": may + r.below(month) as i64, "quantity": r.below(100)}));
    }
    out
}
