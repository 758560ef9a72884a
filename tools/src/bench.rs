//! `tollgate bench`: the full pipeline on in-memory ports, one worker, at several flow
//! counts (the scenario of [`tollgate_testkit::scenario`], shared with the criterion
//! benches). For each size it measures the pipeline and, in the same command and
//! interleaved with it, the I/O alone over the same frames (the reference a ratio is
//! taken against, so a noisy machine moves both), and reports the state the session and
//! flow tables allocated per session and per flow. With `--access ipoe,pppoe`, each size
//! is measured once per access line, runs interleaved, and the Mpps of each line is
//! reported against the first's run by run.

use std::time::Duration;

use serde_json::{Value, json};
use tollgate_testkit::scenario::{self, Access, Rig};

/// Arguments of `tollgate bench`.
#[derive(clap::Args, Debug, Clone)]
#[command(after_help = "\
Each size sets up its own worker: sessions with one flow each up to 100k flows, ten \
flows each above (1M = 100k sessions x 10, 10M = 1M sessions x 10), every flow a TCP \
connection to a VIP balanced over three servers, opened by a SYN and a SYN-ACK through \
the pipeline. The measured traffic is one 64-byte segment per flow each way, every \
packet to a different flow. Runs alternate pipeline and I/O-only (the same ports, \
buffers and frames with no stages), and the median of each is reported.

With --workers, the scaling curve instead: for each worker count N, N threads (pinned to cores 0, 1, ... while there are cores) each run their own worker with its own sessions and flows (the first --flows size, per worker) on their own memory ports, as behind a NIC that steers every packet to its owner, all at once; the Mpps are summed. Counts alternate within each run, and each count's efficiency is its Mpps over N times the 1-worker Mpps of the same run.

With --access, each size is set up once per access line (ipoe: plain Ethernet; pppoe: a \
PPPoE session per subscriber; pppoe-qinq: PPPoE in a QinQ pair per subscriber; the PPPoE \
lines with an MSS clamp of 1452; nat64: IPv6-only subscribers with a /64 each, their \
connections to the VIP's address in 64:ff9b::/96 through a NAT64 binding and the \
service's flow; ipv6: IPv6 subscribers with a /64 each, routed to an IPv6 server, no NAT \
and no flow state; lns: PPP terminated here, each subscriber's packets in an L2TP session of \
its own from a LAC on the access side, then the IPoE pipeline and back into the session; \
lac: PPPoE sessions switched into L2TP sessions toward an LNS and back, nothing \
terminated, no flows), the runs of all lines interleaved, and each line's Mpps \
divided by the first line's in the same run (median and range of those ratios).

Examples:
  tollgate bench                          1k, 100k, 1M and 10M flows (about 2 minutes, 6 GiB)
  tollgate bench --flows 100k --access ipoe,pppoe   PPPoE against IPoE at 100k sessions
  tollgate bench --flows 100k --access ipoe,nat64   NAT64 against the IPv4 pipeline
  tollgate bench --flows 100k --access ipoe,ipv6,nat64   IPv6 and NAT64 against IPv4
  tollgate bench --flows 10k --access ipoe,lac,lns   L2TP LAC switching and LNS at 10k sessions
  tollgate bench --flows 1k,100k --json   two sizes, JSON for scripts/plot-bench.py
  tollgate bench --workers 1,2,4 --flows 100k   the scaling curve (scripts/scale.sh)")]
pub struct BenchArgs {
    /// Flow counts to measure, comma-separated; k and M suffixes (1k = 1000).
    #[arg(long, value_delimiter = ',', default_value = "1k,100k,1M,10M", value_parser = parse_count)]
    pub flows: Vec<u64>,
    /// Flows per session [default: 1 up to 100k flows, 10 above].
    #[arg(long)]
    pub flows_each: Option<u32>,
    /// Packets per rx burst and side.
    #[arg(long, default_value_t = 32)]
    pub burst: usize,
    /// Seconds per measured run.
    #[arg(long, default_value_t = 1.0)]
    pub seconds: f64,
    /// Runs of each (pipeline and I/O-only, alternating); the median is reported.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Worker counts to measure the scaling curve at, comma-separated (1 is added if
    /// missing: efficiency is taken against it).
    #[arg(long, value_delimiter = ',')]
    pub workers: Vec<usize>,
    /// Also write the JSON report to this file.
    #[arg(long)]
    pub out: Option<std::path::PathBuf>,
    /// Access lines to measure, comma-separated: ipoe, pppoe, pppoe-qinq, nat64, ipv6,
    /// lns, lac (ratios are against the first).
    #[arg(long, value_delimiter = ',', default_value = "ipoe", value_parser = parse_access)]
    pub access: Vec<Access>,
}

/// An access line by name.
pub fn parse_access(s: &str) -> Result<Access, String> {
    Access::from_name(s.trim()).ok_or_else(|| {
        format!("{s:?}: an access line is ipoe, pppoe, pppoe-qinq, nat64, ipv6, lns or lac")
    })
}

/// A count with an optional k or M suffix.
pub fn parse_count(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, mul) = match s.char_indices().last() {
        Some((i, 'k' | 'K')) => (&s[..i], 1_000),
        Some((i, 'M' | 'm')) => (&s[..i], 1_000_000),
        _ => (s, 1),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a count like 1000, 100k or 1M"))?;
    if n.is_nan() || n < 1.0 || n * mul as f64 > u32::MAX as f64 {
        return Err(format!("{s:?}: a count must be at least 1 and below 4G"));
    }
    Ok((n * mul as f64).round() as u64)
}

/// One size's figures, on one access line.
#[derive(Clone, Debug)]
pub struct SizeResult {
    /// The subscribers' access line.
    pub access: Access,
    /// Mpps against the first access line's, run by run: (median, min, max); `None` for
    /// the first.
    pub vs_first: Option<(f64, f64, f64)>,
    /// Flows established.
    pub flows: usize,
    /// Sessions installed.
    pub sessions: usize,
    /// Seconds the set-up took.
    pub setup_s: f64,
    /// Median ns per packet of the pipeline runs.
    pub ns_per_packet: f64,
    /// Each pipeline run's ns per packet.
    pub runs_ns: Vec<f64>,
    /// Median ns per packet of the I/O-only runs.
    pub io_ns_per_packet: f64,
    /// Bytes of session state per session (table allocation / capacity).
    pub bytes_per_session: f64,
    /// Bytes of flow state per flow.
    pub bytes_per_flow: f64,
    /// Resident memory of the process after set-up, MiB.
    pub rss_mib: f64,
    /// Packets dropped while measuring (the scenario forwards everything: must be 0).
    pub drops: u64,
}

impl SizeResult {
    /// Millions of packets per second.
    pub fn mpps(&self) -> f64 {
        1e3 / self.ns_per_packet
    }

    /// As JSON.
    pub fn to_json(&self) -> Value {
        json!({
            "access": self.access.name(),
            "mpps_vs_first_access": self.vs_first.map(|(m, _, _)| round(m, 3)),
            "mpps_vs_first_access_min": self.vs_first.map(|(_, lo, _)| round(lo, 3)),
            "mpps_vs_first_access_max": self.vs_first.map(|(_, _, hi)| round(hi, 3)),
            "flows": self.flows,
            "sessions": self.sessions,
            "setup_s": round(self.setup_s, 2),
            "mpps": round(self.mpps(), 3),
            "ns_per_packet": round(self.ns_per_packet, 2),
            "runs_ns_per_packet": self.runs_ns.iter().map(|x| round(*x, 2)).collect::<Vec<_>>(),
            "io_only_ns_per_packet": round(self.io_ns_per_packet, 2),
            "io_only_mpps": round(1e3 / self.io_ns_per_packet, 3),
            "vs_io_only": round(self.ns_per_packet / self.io_ns_per_packet, 3),
            "bytes_per_session": round(self.bytes_per_session, 1),
            "bytes_per_flow": round(self.bytes_per_flow, 1),
            "rss_mib": round(self.rss_mib, 1),
            "drops": self.drops,
        })
    }
}

fn round(x: f64, digits: i32) -> f64 {
    let m = 10f64.powi(digits);
    (x * m).round() / m
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Sessions and flows per session for `flows` flows.
pub fn shape(flows: u64, flows_each: Option<u32>) -> (u32, u32) {
    let each = flows_each
        .unwrap_or(if flows <= 100_000 { 1 } else { 10 })
        .max(1);
    ((flows / each as u64).max(1) as u32, each)
}

/// Measures one size on each access line of `args`, runs interleaved.
pub fn measure(sessions: u32, flows_each: u32, args: &BenchArgs) -> Vec<SizeResult> {
    let accesses = if args.access.is_empty() {
        vec![Access::Ipoe]
    } else {
        args.access.clone()
    };
    struct Line {
        access: Access,
        rig: Rig,
        io: scenario::IoOnly,
        setup_s: f64,
        rss_mib: f64,
        drops_before: u64,
        pipe: Vec<f64>,
        ioo: Vec<f64>,
    }
    let d = Duration::from_secs_f64(args.seconds.max(0.01));
    let mut lines: Vec<Line> = accesses
        .iter()
        .map(|&access| {
            let t0 = std::time::Instant::now();
            let mut rig = scenario::rig_on(sessions, flows_each, args.burst, access);
            let setup_s = t0.elapsed().as_secs_f64();
            let rss_mib = rss_bytes() as f64 / (1 << 20) as f64;
            let io = rig.io_only();
            let drops_before = rig
                .worker
                .report(0, Default::default())
                .counters
                .total_drops();
            Line {
                access,
                rig,
                io,
                setup_s,
                rss_mib,
                drops_before,
                pipe: Vec::new(),
                ioo: Vec::new(),
            }
        })
        .collect();
    // Warm caches and branch predictors.
    for l in &mut lines {
        l.rig.run_for(d / 4);
        l.io.run_for(d / 4);
    }
    for _ in 0..args.runs.max(1) {
        for l in &mut lines {
            let (n, e) = l.rig.run_for(d);
            l.pipe.push(e.as_nanos() as f64 / n.max(1) as f64);
            let (n, e) = l.io.run_for(d);
            l.ioo.push(e.as_nanos() as f64 / n.max(1) as f64);
        }
    }
    let first: Vec<f64> = lines[0].pipe.clone();
    lines
        .into_iter()
        .enumerate()
        .map(|(k, mut l)| {
            let drops = l
                .rig
                .worker
                .report(0, Default::default())
                .counters
                .total_drops()
                - l.drops_before;
            // Mpps ratio = inverse ns ratio, run by run.
            let vs_first = (k > 0).then(|| {
                let mut r: Vec<f64> = first.iter().zip(&l.pipe).map(|(f, x)| f / x).collect();
                let lo = r.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = r.iter().copied().fold(0.0, f64::max);
                (median(&mut r), lo, hi)
            });
            let (sb, sc) = l.rig.session_memory();
            let (fb, fc) = l.rig.flow_memory();
            SizeResult {
                access: l.access,
                vs_first,
                flows: l.rig.flows,
                sessions: l.rig.sessions,
                setup_s: l.setup_s,
                runs_ns: l.pipe.clone(),
                ns_per_packet: median(&mut l.pipe),
                io_ns_per_packet: median(&mut l.ioo),
                bytes_per_session: sb as f64 / sc.max(1) as f64,
                bytes_per_flow: fb as f64 / fc.max(1) as f64,
                rss_mib: l.rss_mib,
                drops,
            }
        })
        .collect()
}

/// Resident set size of this process.
fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

/// What the machine is, for the record.
pub fn machine() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map_or("unknown".to_string(), |m| m.trim().to_string());
    let mem_kib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        })
        .unwrap_or(0);
    json!({
        "cpu": model,
        "cpus": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "memory_gib": round(mem_kib as f64 / (1 << 20) as f64, 1),
        "kernel": std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim(),
    })
}

/// The whole report as JSON.
pub fn report_json(args: &BenchArgs, results: &[SizeResult]) -> Value {
    json!({
        "bench": "full pipeline, one worker, memory ports",
        "packet_bytes": scenario::FRAME_BYTES,
        "burst": args.burst,
        "seconds_per_run": args.seconds,
        "runs": args.runs.max(1),
        "machine": machine(),
        "results": results.iter().map(SizeResult::to_json).collect::<Vec<_>>(),
    })
}

/// Runs `tollgate bench`, writing the report to `--out` if given.
pub fn run(args: &BenchArgs) -> Result<Value, String> {
    let report = measure_all(args)?;
    if let Some(path) = &args.out {
        let text = serde_json::to_string_pretty(&report).unwrap_or_default();
        std::fs::write(path, text + "\n")
            .map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    Ok(report)
}

fn measure_all(args: &BenchArgs) -> Result<Value, String> {
    if !(1..=tollgate_dataplane::MAX_BURST).contains(&args.burst) {
        return Err(format!(
            "--burst must be 1..={}",
            tollgate_dataplane::MAX_BURST
        ));
    }
    if !args.workers.is_empty() {
        return scale::run(args);
    }
    if !args.json {
        println!(
            "full pipeline, one worker, memory ports, {} B TCP segments, burst {}, median of {} x {:.1} s",
            scenario::FRAME_BYTES,
            args.burst,
            args.runs.max(1),
            args.seconds
        );
        println!(
            "{:>10} {:>10} {:>9} {:>8} {:>8} {:>10} {:>9} {:>10} {:>8} {:>8} {:>7} {:>20}",
            "access",
            "flows",
            "sessions",
            "Mpps",
            "ns/pkt",
            "io ns/pkt",
            "vs io",
            "B/session",
            "B/flow",
            "RSS MiB",
            "setup s",
            "Mpps vs first"
        );
    }
    let mut results = Vec::new();
    for &flows in &args.flows {
        let (sessions, each) = shape(flows, args.flows_each);
        for r in measure(sessions, each, args) {
            if r.drops != 0 {
                return Err(format!(
                    "{} flows on {}: {} packets dropped; the scenario must forward everything",
                    r.flows,
                    r.access.name(),
                    r.drops
                ));
            }
            if !args.json {
                println!(
                    "{:>10} {:>10} {:>9} {:>8.2} {:>8.1} {:>10.1} {:>8.2}x {:>10.1} {:>8.1} {:>8.0} {:>7.1} {:>20}",
                    r.access.name(),
                    r.flows,
                    r.sessions,
                    r.mpps(),
                    r.ns_per_packet,
                    r.io_ns_per_packet,
                    r.ns_per_packet / r.io_ns_per_packet,
                    r.bytes_per_session,
                    r.bytes_per_flow,
                    r.rss_mib,
                    r.setup_s,
                    r.vs_first.map_or(String::new(), |(m, lo, hi)| format!(
                        "{m:.3} ({lo:.3}-{hi:.3})"
                    ))
                );
            }
            results.push(r);
        }
    }
    Ok(report_json(args, &results))
}

/// `tollgate bench --workers`: the scaling curve.
pub mod scale {
    use std::sync::mpsc::{Receiver, Sender, channel};
    use std::sync::{Arc, Barrier};
    use std::thread::JoinHandle;
    use std::time::Duration;

    use serde_json::{Value, json};
    use tollgate_testkit::scenario;

    use super::{BenchArgs, machine, median, round, shape};

    /// One measurement: every participating thread waits at the barrier, runs its worker
    /// for the duration, and answers with (packets, elapsed).
    struct Go {
        barrier: Arc<Barrier>,
        run: Duration,
        answer: Sender<(u64, Duration)>,
    }

    /// A thread with its own rig, pinned to a core, waiting for measurements.
    struct Runner {
        go: Sender<Go>,
        thread: JoinHandle<()>,
    }

    fn spawn(i: usize, sessions: u32, each: u32, burst: usize, ready: Sender<()>) -> Runner {
        let (go, orders): (Sender<Go>, Receiver<Go>) = channel();
        let thread = std::thread::Builder::new()
            .name(format!("tg-bench-{i}"))
            .spawn(move || {
                let cores = core_affinity::get_core_ids().unwrap_or_default();
                if let Some(c) = cores.get(i % cores.len().max(1)) {
                    core_affinity::set_for_current(*c);
                }
                // Built on its own thread: its tables are its own, as a worker's are.
                let mut rig = scenario::rig(sessions, each, burst);
                rig.run_for(Duration::from_millis(200));
                let _ = ready.send(());
                while let Ok(g) = orders.recv() {
                    g.barrier.wait();
                    let r = rig.run_for(g.run);
                    let _ = g.answer.send(r);
                }
            })
            .expect("spawning a bench thread");
        Runner { go, thread }
    }

    /// Mpps of `n` runners measured together.
    fn measure(runners: &[Runner], n: usize, run: Duration) -> f64 {
        let barrier = Arc::new(Barrier::new(n));
        let (answer, answers) = channel();
        for r in &runners[..n] {
            let _ = r.go.send(Go {
                barrier: barrier.clone(),
                run,
                answer: answer.clone(),
            });
        }
        drop(answer);
        answers
            .iter()
            .take(n)
            .map(|(p, e)| p as f64 / e.as_secs_f64().max(1e-9) / 1e6)
            .sum()
    }

    /// Runs the scaling curve.
    pub fn run(args: &BenchArgs) -> Result<Value, String> {
        let mut counts = args.workers.clone();
        if counts.contains(&0) {
            return Err("--workers: a count must be at least 1".into());
        }
        counts.push(1);
        counts.sort_unstable();
        counts.dedup();
        let most = *counts.last().unwrap_or(&1);
        if most > 64 {
            return Err("--workers: at most 64".into());
        }
        let flows = args.flows.first().copied().unwrap_or(100_000);
        let (sessions, each) = shape(flows, args.flows_each);
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let run = Duration::from_secs_f64(args.seconds.max(0.05));
        if !args.json {
            println!(
                "full pipeline, N workers at once, each with {} flows ({} sessions) on its own memory ports, {} B TCP segments, burst {}, {} runs x {:.1} s, {cpus} CPUs",
                sessions as u64 * each as u64,
                sessions,
                scenario::FRAME_BYTES,
                args.burst,
                args.runs.max(1),
                args.seconds
            );
            if most > cpus {
                println!(
                    "note: counts above {cpus} share CPUs: they measure oversubscription, not scaling"
                );
            }
        }
        let (ready_tx, ready_rx) = channel();
        let runners: Vec<Runner> = (0..most)
            .map(|i| spawn(i, sessions, each, args.burst, ready_tx.clone()))
            .collect();
        drop(ready_tx);
        if ready_rx.iter().take(most).count() < most {
            return Err("a bench thread failed while setting up".into());
        }
        // Interleaved: each run measures every count once.
        let mut mpps: Vec<Vec<f64>> = vec![Vec::new(); counts.len()];
        for _ in 0..args.runs.max(1) {
            for (k, &n) in counts.iter().enumerate() {
                mpps[k].push(measure(&runners, n, run));
            }
        }
        for r in runners {
            drop(r.go);
            let _ = r.thread.join();
        }
        let one = mpps[0].clone();
        let rows: Vec<Value> = counts
            .iter()
            .zip(&mpps)
            .map(|(&n, m)| {
                let mut eff: Vec<f64> = m
                    .iter()
                    .zip(&one)
                    .map(|(x, o)| x / (n as f64 * o))
                    .collect();
                let mut v = m.clone();
                let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = v.iter().copied().fold(0.0, f64::max);
                let (elo, ehi) = (
                    eff.iter().copied().fold(f64::INFINITY, f64::min),
                    eff.iter().copied().fold(0.0, f64::max),
                );
                json!({
                    "workers": n,
                    "oversubscribed": n > cpus,
                    "mpps": round(median(&mut v), 3),
                    "mpps_min": round(lo, 3),
                    "mpps_max": round(hi, 3),
                    "mpps_per_worker": round(median(&mut v.clone()) / n as f64, 3),
                    "efficiency": round(median(&mut eff), 3),
                    "efficiency_min": round(elo, 3),
                    "efficiency_max": round(ehi, 3),
                    "runs_mpps": m.iter().map(|x| round(*x, 3)).collect::<Vec<_>>(),
                })
            })
            .collect();
        if !args.json {
            println!(
                "{:>8} {:>22} {:>12} {:>24}",
                "workers", "Mpps (min-max)", "Mpps/worker", "efficiency (min-max)"
            );
            for r in &rows {
                println!(
                    "{:>8} {:>8.2} ({:.2}-{:.2}) {:>12.2} {:>10.3} ({:.3}-{:.3}){}",
                    r["workers"].as_u64().unwrap_or(0),
                    r["mpps"].as_f64().unwrap_or(0.0),
                    r["mpps_min"].as_f64().unwrap_or(0.0),
                    r["mpps_max"].as_f64().unwrap_or(0.0),
                    r["mpps_per_worker"].as_f64().unwrap_or(0.0),
                    r["efficiency"].as_f64().unwrap_or(0.0),
                    r["efficiency_min"].as_f64().unwrap_or(0.0),
                    r["efficiency_max"].as_f64().unwrap_or(0.0),
                    if r["oversubscribed"].as_bool() == Some(true) {
                        "  (CPUs shared)"
                    } else {
                        ""
                    }
                );
            }
        }
        Ok(json!({
            "bench": "scaling: full pipeline, N workers at once, memory ports",
            "flows_per_worker": sessions as u64 * each as u64,
            "sessions_per_worker": sessions,
            "packet_bytes": scenario::FRAME_BYTES,
            "burst": args.burst,
            "seconds_per_run": args.seconds,
            "runs": args.runs.max(1),
            "machine": machine(),
            "results": rows,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scaling_run_reports_every_count_against_one_worker() {
        let args = BenchArgs {
            flows: vec![1_000],
            flows_each: None,
            burst: 32,
            seconds: 0.05,
            runs: 2,
            json: true,
            workers: vec![2],
            out: None,
            access: vec![Access::Ipoe],
        };
        let r = run(&args).expect("runs");
        let rows = r["results"].as_array().expect("rows");
        assert_eq!(rows.len(), 2, "1 is added: {r}");
        assert_eq!(rows[0]["workers"], 1);
        assert_eq!(rows[0]["efficiency"], 1.0);
        assert_eq!(rows[1]["workers"], 2);
        assert!(rows[1]["mpps"].as_f64().unwrap() > 0.0);
        assert_eq!(rows[1]["runs_mpps"].as_array().unwrap().len(), 2);
        assert_eq!(r["flows_per_worker"], 1_000);
    }

    /// PPPoE and IPoE in one run: a row each, the PPPoE one with its ratio, nothing
    /// dropped (the scenario forwards every PPPoE frame both ways).
    #[test]
    fn access_lines_are_measured_against_the_first() {
        let args = BenchArgs {
            flows: vec![500],
            flows_each: None,
            burst: 32,
            seconds: 0.05,
            runs: 3,
            json: true,
            workers: vec![],
            out: None,
            access: vec![
                Access::Ipoe,
                Access::Pppoe,
                Access::PppoeQinq,
                Access::Nat64,
                Access::Ipv6,
            ],
        };
        let r = run(&args).expect("runs");
        let rows = r["results"].as_array().expect("rows");
        assert_eq!(rows.len(), 5, "{r}");
        for (row, name) in rows
            .iter()
            .zip(["ipoe", "pppoe", "pppoe-qinq", "nat64", "ipv6"])
        {
            assert_eq!(row["access"], name);
            assert_eq!(row["flows"], 500);
            assert_eq!(row["drops"], 0);
            assert_eq!(row["runs_ns_per_packet"].as_array().unwrap().len(), 3);
        }
        assert!(rows[0]["mpps_vs_first_access"].is_null());
        assert!(rows[1]["mpps_vs_first_access"].as_f64().unwrap() > 0.0);
        assert!(rows[2]["mpps_vs_first_access_min"].as_f64().unwrap() > 0.0);
        assert!(rows[3]["mpps_vs_first_access"].as_f64().unwrap() > 0.0);
        assert!(rows[4]["mpps_vs_first_access"].as_f64().unwrap() > 0.0);
        assert_eq!(parse_access("pppoe"), Ok(Access::Pppoe));
        assert_eq!(parse_access("ipv6"), Ok(Access::Ipv6));
        assert!(parse_access("atm").is_err());
        assert_eq!(parse_access("lac"), Ok(Access::Lac));
        assert_eq!(parse_access("lns"), Ok(Access::Lns));
    }

    /// The L2TP lines beside IPoE: the LNS opens a flow per subscriber through its L2TP
    /// sessions, the LAC has sessions and no flows; nothing dropped either way.
    #[test]
    fn l2tp_lines_are_measured_against_ipoe() {
        let args = BenchArgs {
            flows: vec![500],
            flows_each: None,
            burst: 32,
            seconds: 0.05,
            runs: 3,
            json: true,
            workers: vec![],
            out: None,
            access: vec![Access::Ipoe, Access::Lns, Access::Lac],
        };
        let r = run(&args).expect("runs");
        let rows = r["results"].as_array().expect("rows");
        assert_eq!(rows.len(), 3, "{r}");
        for (row, (name, flows)) in rows.iter().zip([("ipoe", 500), ("lns", 500), ("lac", 0)]) {
            assert_eq!(row["access"], name);
            assert_eq!(row["flows"], flows, "{row}");
            assert_eq!(row["drops"], 0, "{row}");
            assert_eq!(row["runs_ns_per_packet"].as_array().unwrap().len(), 3);
        }
        assert!(rows[1]["mpps_vs_first_access"].as_f64().unwrap() > 0.0);
        assert!(rows[2]["mpps_vs_first_access"].as_f64().unwrap() > 0.0);
    }

    #[test]
    fn counts_and_shapes() {
        assert_eq!(parse_count("1k"), Ok(1_000));
        assert_eq!(parse_count("2.5M"), Ok(2_500_000));
        assert_eq!(parse_count("100"), Ok(100));
        assert!(parse_count("0").is_err());
        assert!(parse_count("lots").is_err());
        assert_eq!(shape(1_000, None), (1_000, 1));
        assert_eq!(shape(100_000, None), (100_000, 1));
        assert_eq!(shape(1_000_000, None), (100_000, 10));
        assert_eq!(shape(10_000_000, None), (1_000_000, 10));
        assert_eq!(shape(500, Some(4)), (125, 4));
    }
}
