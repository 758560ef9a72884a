//! Answers to control-socket commands, as JSON, built from the control plane's state.
//! The same builders serve the daemon and `tollgate replay`'s summary.

use serde_json::{Value, json};
use tollgate_dataplane::counters::{DropReason, SideCounters, WorkerCounters};
use tollgate_dataplane::port::PortStats;
use tollgate_dataplane::time::Instant;
use tollgate_dataplane::{Side, WorkerReport};

use super::proto::{Reply, Request};
use crate::core::{Core, neighbor::Neighbor};
use crate::dispatch::DispatchStats;

/// What does not change while the daemon runs.
#[derive(Clone, Debug)]
pub struct EngineInfo {
    /// Where the config came from.
    pub config: String,
    /// When the engine started, on the engine clock.
    pub started: Instant,
    /// Process id.
    pub pid: u32,
    /// The control socket path.
    pub socket: String,
    /// Per side, indexed by [`Side::idx`].
    pub ports: [PortInfo; 2],
    /// Per worker.
    pub workers: Vec<WorkerInfo>,
}

/// A port as configured.
#[derive(Clone, Debug)]
pub struct PortInfo {
    /// Backend name.
    pub backend: String,
    /// Interface (af_packet).
    pub interface: Option<String>,
    /// MAC in use.
    pub mac: String,
    /// Address/prefix.
    pub address: String,
}

/// A worker as started.
#[derive(Clone, Debug)]
pub struct WorkerInfo {
    /// Index.
    pub id: u16,
    /// Core it is pinned to.
    pub cpu: Option<usize>,
}

/// Everything a handler may read.
pub struct Context<'a> {
    /// Now, on the engine clock.
    pub now: Instant,
    /// Static facts.
    pub info: &'a EngineInfo,
    /// Latest report per worker.
    pub reports: &'a [Option<WorkerReport>],
    /// The control core.
    pub core: &'a Core,
    /// Ring delivery counters.
    pub dispatch: DispatchStats,
    /// The rating engine, when `rating.database` is set.
    pub rater: Option<&'a crate::rating::Rater>,
}

/// The commands, with one line each for `help`.
pub const COMMANDS: &[(&str, &str)] = &[
    ("help", "list the commands"),
    ("show status", "version, uptime, config, totals"),
    (
        "show ports",
        "per port: backend, interface, MAC, address, packets, bytes, backend drops",
    ),
    (
        "show workers",
        "per worker: core, polls, busy share, packets, drops, held packets",
    ),
    (
        "show counters",
        "packets and bytes per side, drops by reason, engine and control counters",
    ),
    (
        "show neighbors",
        "the neighbour table: address, side, MAC, state, age",
    ),
];

/// True if the command reads worker counters, so the shell should ask for fresh reports
/// first.
pub fn needs_reports(req: &Request) -> bool {
    matches!(
        req.words().as_slice(),
        ["show", "status" | "ports" | "workers" | "counters"]
    )
}

/// Answers a request.
pub fn handle(req: &Request, ctx: &Context<'_>) -> Reply {
    match req.words().as_slice() {
        ["help"] => Reply::ok(json!(
            COMMANDS
                .iter()
                .chain(crate::rating::ctl::COMMANDS)
                .map(|(c, d)| json!({"command": c, "description": d}))
                .collect::<Vec<_>>()
        )),
        ["show", "status"] => Reply::ok(status(ctx)),
        ["show", "ports"] => Reply::ok(ports(ctx)),
        ["show", "workers"] => Reply::ok(workers(ctx)),
        ["show", "counters"] => Reply::ok(counters(ctx.reports, ctx.core, ctx.dispatch)),
        ["show", "neighbors" | "neighbours"] => {
            Reply::ok(neighbors(&ctx.core.neighbors(), ctx.now))
        }
        ["billing", ..] | ["show", "invoice", ..] => crate::rating::ctl::handle(
            &req.words(),
            &req.args,
            ctx.rater,
            crate::rating::unix_now(),
        ),
        ["show", what] => Reply::error(format!(
            "unknown command `show {what}`; try status, ports, workers, counters or neighbors"
        )),
        _ => Reply::error(format!(
            "unknown command `{}`; `help` lists the commands",
            req.cmd.trim()
        )),
    }
}

fn total(reports: &[Option<WorkerReport>]) -> (WorkerCounters, [PortStats; 2]) {
    let mut c = WorkerCounters::default();
    let mut p = [PortStats::default(); 2];
    for r in reports.iter().flatten() {
        c.accumulate(&r.counters);
        p[0].accumulate(&r.ports[0]);
        p[1].accumulate(&r.ports[1]);
    }
    (c, p)
}

fn status(ctx: &Context<'_>) -> Value {
    let (c, _) = total(ctx.reports);
    json!({
        "version": env!("CARGO_PKG_VERSION"),
        "pid": ctx.info.pid,
        "config": ctx.info.config,
        "socket": ctx.info.socket,
        "uptime_s": ctx.now.since(ctx.info.started).as_secs(),
        "workers": ctx.info.workers.len(),
        "backend": ctx.info.ports[0].backend,
        "rx_packets": c.rx_packets(),
        "tx_packets": c.tx_packets(),
        "drops": c.total_drops(),
        "neighbors": ctx.core.neighbors().len(),
    })
}

fn side_json(s: &SideCounters) -> Value {
    json!({
        "rx_packets": s.rx_packets,
        "rx_bytes": s.rx_bytes,
        "tx_packets": s.tx_packets,
        "tx_bytes": s.tx_bytes,
    })
}

fn ports(ctx: &Context<'_>) -> Value {
    let (c, p) = total(ctx.reports);
    Value::Array(
        Side::ALL
            .iter()
            .map(|s| {
                let i = &ctx.info.ports[s.idx()];
                let n = &c.sides[s.idx()];
                let ps = &p[s.idx()];
                json!({
                    "side": s.name(),
                    "backend": i.backend,
                    "interface": i.interface,
                    "mac": i.mac,
                    "address": i.address,
                    "rx_packets": n.rx_packets,
                    "rx_bytes": n.rx_bytes,
                    "tx_packets": n.tx_packets,
                    "tx_bytes": n.tx_bytes,
                    "rx_dropped": ps.rx_dropped,
                    "rx_too_big": ps.rx_too_big,
                    "rx_no_buffer": ps.rx_no_buffer,
                    "tx_errors": ps.tx_errors,
                })
            })
            .collect(),
    )
}

fn workers(ctx: &Context<'_>) -> Value {
    Value::Array(
        ctx.info
            .workers
            .iter()
            .map(|w| {
                let r = ctx.reports.get(w.id as usize).and_then(|r| r.as_ref());
                match r {
                    None => json!({"worker": w.id, "cpu": w.cpu, "reported": false}),
                    Some(r) => {
                        let c = &r.counters;
                        let busy = if c.polls == 0 {
                            0.0
                        } else {
                            100.0 * c.busy_polls as f64 / c.polls as f64
                        };
                        json!({
                            "worker": w.id,
                            "cpu": w.cpu,
                            "reported": true,
                            "polls": c.polls,
                            "busy_polls": c.busy_polls,
                            "busy_pct": (busy * 10.0).round() / 10.0,
                            "rx_packets": c.rx_packets(),
                            "tx_packets": c.tx_packets(),
                            "drops": c.total_drops(),
                            "held": r.held_now,
                            "neighbors": r.neighbors,
                            "report_age_ms": ctx.now.since(r.at).as_millis() as u64,
                        })
                    }
                }
            })
            .collect(),
    )
}

/// The `show counters` answer: per side, drops by reason (all of them), engine counters,
/// and what the control thread counts.
pub fn counters(reports: &[Option<WorkerReport>], core: &Core, dispatch: DispatchStats) -> Value {
    let (c, _) = total(reports);
    let held: u64 = reports.iter().flatten().map(|r| r.held_now as u64).sum();
    let drops: serde_json::Map<String, Value> = DropReason::ALL
        .iter()
        .map(|r| (r.name().to_string(), json!(c.dropped(*r))))
        .collect();
    let engine: serde_json::Map<String, Value> = c
        .named()
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .chain(std::iter::once(("held_now".to_string(), json!(held))))
        .collect();
    let cs = core.stats();
    json!({
        "sides": {
            "access": side_json(&c.sides[0]),
            "core": side_json(&c.sides[1]),
        },
        "drops": drops,
        "drops_total": c.total_drops(),
        "engine": engine,
        "control": {
            "punts": cs.punts,
            "punts_malformed": cs.punts_malformed,
            "events": cs.events,
            "arp_requests": cs.arp_requests,
            "neighbors_installed": cs.neighbors_installed,
            "command_retries": dispatch.command_retries,
            "commands_dropped": dispatch.commands_dropped,
            "injects_dropped": dispatch.injects_dropped,
        },
    })
}

/// The `show neighbors` answer.
pub fn neighbors(list: &[Neighbor], now: Instant) -> Value {
    Value::Array(
        list.iter()
            .map(|n| {
                json!({
                    "address": n.ip.to_string(),
                    "side": n.side.name(),
                    "mac": n.mac().map(|m| m.to_string()),
                    "state": n.state_name(),
                    "age_s": now.since(n.since).as_secs(),
                })
            })
            .collect(),
    )
}
