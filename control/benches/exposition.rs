//! The metrics exposition of a realistic scrape (8 workers, every drop reason, the core's
//! families): the hand-written registry the daemon uses (`metrics::gateway::render`)
//! against the `prometheus-client` crate producing the same families, labels and values
//! (issue 13 item 5). The crate is faster but writes OpenMetrics, not the 0.0.4 text the
//! docs and tests expect, so the daemon keeps its own; docs/architecture.md ("The metrics
//! exposition") has the figures. Run: `cargo bench -p tollgate-control --bench exposition`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::{AtomicU64, Ordering};
use tollgate_control::config::Config;
use tollgate_control::setup;
use tollgate_control_core::gateway::Core;
use tollgate_control_core::gateway::aaa::SesState;
use tollgate_control_core::gateway::records::WallClock;
use tollgate_dataplane::counters::{DropReason, WorkerCounters};
use tollgate_dataplane::snapshot::Publisher;
use tollgate_dataplane::time::Instant;
use tollgate_dataplane::{PortStats, Side, WorkerReport};

const WORKERS: u16 = 8;

const CONFIG: &str = r#"
[engine]
workers = 1
[access]
backend = "memory"
address = "10.10.0.1/24"
[core]
backend = "memory"
address = "192.0.2.1/24"
"#;

fn core() -> Core {
    let cfg = Config::parse(CONFIG, "exposition.toml").unwrap();
    let fwd = setup::forwarding(&cfg, setup::configured_macs(&cfg)).unwrap();
    let now = Instant(1_700_000_000_000_000_000);
    Core::new(
        now,
        Publisher::new(fwd).current(),
        setup::core(&cfg, WallClock::UNIX).unwrap(),
    )
}

/// Reports with distinct, large values (every digit of a u64 counter is written).
fn reports() -> Vec<Option<WorkerReport>> {
    (0..WORKERS)
        .map(|w| {
            let base = 1_000_000_007u64 * (w as u64 + 1);
            let mut counters = WorkerCounters::default();
            for (i, s) in counters.sides.iter_mut().enumerate() {
                s.rx_packets = base + i as u64;
                s.rx_bytes = base * 700 + i as u64;
                s.tx_packets = base + 3 + i as u64;
                s.tx_bytes = base * 690 + i as u64;
            }
            for (i, d) in counters.drops.iter_mut().enumerate() {
                *d = base / 1000 + i as u64;
            }
            let port = PortStats {
                rx_dropped: base / 7,
                rx_late: base / 11,
                rx_max_wait_us: 1234,
                ..PortStats::default()
            };
            Some(WorkerReport {
                worker: w,
                seq: 1,
                at: Instant(0),
                counters,
                ports: [port, port],
                held_now: 3,
                neighbors: 10,
                sessions: 12_500,
                flows: 125_000,
            })
        })
        .collect()
}

type Labels = Vec<(&'static str, String)>;

/// The same families as `metrics::gateway::render`, in the crate's registry, made once;
/// each scrape sets the values and encodes (the crate's intended use, its best case).
struct Crate {
    registry: Registry,
    packets: Family<Labels, Counter>,
    bytes: Family<Labels, Counter>,
    rx_dropped: Family<Labels, Counter>,
    rx_late: Family<Labels, Counter>,
    rx_max_wait: Family<Labels, Gauge<f64, AtomicU64>>,
    drops: Family<Labels, Counter>,
    worker_sessions: Family<Labels, Gauge>,
    worker_flows: Family<Labels, Gauge>,
    sessions: Family<Labels, Gauge>,
    logins: Family<Labels, Counter>,
    pending: Gauge,
    victims: Counter,
    acct: Family<Labels, Counter>,
}

fn set(c: &Counter, v: u64) {
    c.inner().store(v, Ordering::Relaxed);
}

impl Crate {
    fn new() -> Crate {
        let mut registry = Registry::default();
        let c = Crate {
            packets: Family::default(),
            bytes: Family::default(),
            rx_dropped: Family::default(),
            rx_late: Family::default(),
            rx_max_wait: Family::default(),
            drops: Family::default(),
            worker_sessions: Family::default(),
            worker_flows: Family::default(),
            sessions: Family::default(),
            logins: Family::default(),
            pending: Gauge::default(),
            victims: Counter::default(),
            acct: Family::default(),
            registry: Registry::default(),
        };
        // The crate adds `_total` to counters itself.
        registry.register(
            "tollgate_port_packets",
            "Frames through a port, per worker.",
            c.packets.clone(),
        );
        registry.register(
            "tollgate_port_bytes",
            "Bytes through a port (Ethernet frame, no FCS), per worker.",
            c.bytes.clone(),
        );
        registry.register(
            "tollgate_port_rx_dropped",
            "Frames the kernel or NIC dropped: rx ring full.",
            c.rx_dropped.clone(),
        );
        registry.register(
            "tollgate_port_rx_late",
            "Frames dropped at the head of the rx ring under sustained overload (waited over af_packet.max_delay_ms).",
            c.rx_late.clone(),
        );
        registry.register(
            "tollgate_port_rx_max_wait_seconds",
            "The longest a frame waited in the rx ring for its worker (AF_PACKET).",
            c.rx_max_wait.clone(),
        );
        registry.register(
            "tollgate_drops",
            "Packets the fast path dropped, by reason.",
            c.drops.clone(),
        );
        registry.register(
            "tollgate_worker_sessions",
            "Sessions installed on a worker.",
            c.worker_sessions.clone(),
        );
        registry.register(
            "tollgate_worker_flows",
            "NAT flows open on a worker.",
            c.worker_flows.clone(),
        );
        registry.register(
            "tollgate_sessions",
            "Open sessions by SES-1 state.",
            c.sessions.clone(),
        );
        registry.register("tollgate_logins", "Logins by outcome.", c.logins.clone());
        registry.register(
            "tollgate_logins_pending",
            "Logins waiting for authentication.",
            c.pending.clone(),
        );
        registry.register(
            "tollgate_login_victims",
            "Sessions ended by a simultaneous-login limit.",
            c.victims.clone(),
        );
        registry.register(
            "tollgate_accounting_records",
            "Accounting records produced, by type.",
            c.acct.clone(),
        );
        Crate { registry, ..c }
    }

    fn render(&self, reports: &[Option<WorkerReport>], core: &Core) -> String {
        for rep in reports.iter().flatten() {
            let w = rep.worker.to_string();
            for s in Side::ALL {
                let c = &rep.counters.sides[s.idx()];
                let side = s.to_string();
                for (dir, p, b) in [
                    ("rx", c.rx_packets, c.rx_bytes),
                    ("tx", c.tx_packets, c.tx_bytes),
                ] {
                    let l: Labels = vec![
                        ("worker", w.clone()),
                        ("side", side.clone()),
                        ("direction", dir.to_string()),
                    ];
                    set(&self.packets.get_or_create(&l), p);
                    set(&self.bytes.get_or_create(&l), b);
                }
                let ps = &rep.ports[s.idx()];
                let l: Labels = vec![("worker", w.clone()), ("side", side.clone())];
                set(&self.rx_dropped.get_or_create(&l), ps.rx_dropped);
                set(&self.rx_late.get_or_create(&l), ps.rx_late);
                self.rx_max_wait
                    .get_or_create(&l)
                    .set(ps.rx_max_wait_us as f64 / 1e6);
            }
            for d in DropReason::ALL {
                let l: Labels = vec![("worker", w.clone()), ("reason", d.name().to_string())];
                set(&self.drops.get_or_create(&l), rep.counters.dropped(*d));
            }
            let l: Labels = vec![("worker", w.clone())];
            self.worker_sessions
                .get_or_create(&l)
                .set(rep.sessions as i64);
            self.worker_flows.get_or_create(&l).set(rep.flows as i64);
        }
        let (mut act, mut dormant) = (0i64, 0i64);
        for (id, _) in core.sessions().all() {
            match core.aaa_session(*id).map(|a| a.state) {
                Some(SesState::Dormant) => dormant += 1,
                _ => act += 1,
            }
        }
        self.sessions
            .get_or_create(&vec![("state", "act".to_string())])
            .set(act);
        self.sessions
            .get_or_create(&vec![("state", "dormant".to_string())])
            .set(dormant);
        let s = core.aaa_stats();
        for (k, v) in [
            ("accepted", s.accepted),
            ("rejected", s.rejected),
            ("unavailable", s.unavailable),
            ("busy", s.busy),
            ("failed", s.failed),
        ] {
            set(
                &self.logins.get_or_create(&vec![("result", k.to_string())]),
                v,
            );
        }
        self.pending.set(core.logins_pending() as i64);
        set(&self.victims, s.login_victims);
        for (k, v) in [
            ("start", s.starts),
            ("interim", s.interims),
            ("stop", s.stops),
        ] {
            set(&self.acct.get_or_create(&vec![("type", k.to_string())]), v);
        }
        let mut out = String::new();
        encode(&mut out, &self.registry).unwrap();
        out
    }
}

fn exposition(c: &mut Criterion) {
    let core = core();
    let reports = reports();
    let hand = tollgate_control::metrics::gateway::render(&reports, &core, |_| {});
    let krate = Crate::new();
    let crate_text = krate.render(&reports, &core);
    // The same samples on both sides (the crate's text adds `# EOF` and writes counters'
    // TYPE without `_total`).
    let samples = |t: &str| t.lines().filter(|l| !l.starts_with('#')).count();
    assert_eq!(
        samples(&hand),
        samples(&crate_text),
        "{hand}\n----\n{crate_text}"
    );
    eprintln!(
        "exposition: {} samples, {} bytes (hand-written), {} bytes (prometheus-client)",
        samples(&hand),
        hand.len(),
        crate_text.len()
    );
    let mut g = c.benchmark_group("exposition");
    g.bench_function("hand_written", |b| {
        b.iter(|| {
            tollgate_control::metrics::gateway::render(
                black_box(&reports),
                black_box(&core),
                |_| {},
            )
        })
    });
    g.bench_function("prometheus_client", |b| {
        b.iter(|| krate.render(black_box(&reports), black_box(&core)))
    });
    g.finish();
}

criterion_group!(benches, exposition);
criterion_main!(benches);
