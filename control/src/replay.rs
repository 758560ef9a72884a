//! Offline replay (`tollgate replay`): the same worker and control core as the daemon,
//! over pcap files, on one thread, with the capture's timestamps as the clock.
//!
//! Static state (neighbours, `[[subscriber]]` sessions) is installed before the first
//! frame is read. The clock then steps from event to event: the next frame in either
//! input, the control core's next timer (ARP retries) or the worker's (held packets
//! expiring, session conditions; after the last frame, flow timeouts too, up to
//! `--linger-ms`). At each step the worker polls, the control core handles what the
//! worker sent up, and the worker polls again while the core sent something down, so a
//! command takes effect at the instant it was decided. The same inputs always give the
//! same outputs, byte for byte.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use serde_json::{Value, json};
use tollgate_dataplane::port::pcap::PcapPort;
use tollgate_dataplane::snapshot::Publisher;
use tollgate_dataplane::time::Instant;
use tollgate_dataplane::{HeapPool, Side, Worker, WorkerReport, worker_rings};

use crate::config::Config;
use crate::ctl::handlers;
use crate::dispatch::Dispatcher;
use crate::outlets::Outlets;
use crate::router::{self, AaaOutput};
use crate::setup;
use tollgate_control_core::gateway::records::WallClock;
use tollgate_control_core::gateway::{Core, CoreStats};

/// The files of a replay.
#[derive(Clone, Debug)]
pub struct ReplayFiles {
    /// Frames arriving on the access port.
    pub access_in: PathBuf,
    /// Frames arriving on the core port, if any.
    pub core_in: Option<PathBuf>,
    /// Where frames sent on the access port are written.
    pub access_out: PathBuf,
    /// Where frames sent on the core port are written.
    pub core_out: PathBuf,
    /// Where flow records go (default: `subscribers.flow_records` of the config).
    pub flow_records: Option<PathBuf>,
    /// Where ended sessions go (default: `subscribers.session_log` of the config).
    pub session_log: Option<PathBuf>,
}

/// What a replay did.
#[derive(Debug)]
pub struct ReplaySummary {
    /// The worker's final counters.
    pub report: WorkerReport,
    /// The `show counters` answer for the run.
    pub counters: crate::proto::Counters,
    /// The `show neighbors` answer at the end.
    pub neighbors: Vec<crate::proto::Neighbor>,
    /// The control core's counters.
    pub core: CoreStats,
    /// Frames written per side.
    pub written: [u64; 2],
    /// Every record written, in order (flows and sessions), as JSON.
    pub records: Vec<Value>,
    /// First and last instant of the run (capture time).
    pub span: (Instant, Instant),
    /// The accounting records the run produced (Start, Interim-Update, Stop), in order.
    pub accounting: Vec<tollgate_control_core::radius::attrs::AcctRecord>,
}

impl ReplaySummary {
    /// The summary as JSON (`--json`).
    pub fn to_json(&self) -> Value {
        json!({
            "replay": {
                "start_ns": self.span.0.0,
                "end_ns": self.span.1.0,
                "duration_ms": self.span.1.since(self.span.0).as_secs_f64() * 1000.0,
                "written": {"access": self.written[0], "core": self.written[1]},
            },
            "counters": self.counters,
            "neighbors": self.neighbors,
            "sessions": self.records.iter().filter(|r| r["type"] == "session").collect::<Vec<_>>(),
            "flows": self.records.iter().filter(|r| r["type"] == "flow").count(),
            "accounting": self.accounting.iter().map(|r| json!({
                "status": r.status.name(),
                "acct_session_id": r.session_id,
                "user": r.user_name,
                "session_time_s": r.session_time_s,
                "octets_up": r.counters.octets_up,
                "octets_down": r.counters.octets_down,
            })).collect::<Vec<_>>(),
        })
    }
}

/// Replays `files` through an engine configured by `cfg`. `linger` keeps the clock
/// running that long after the last input frame, so timers due then fire.
pub fn replay(
    cfg: &Config,
    files: &ReplayFiles,
    linger: Duration,
) -> anyhow::Result<ReplaySummary> {
    // One worker replays, whatever engine.workers says.
    crate::sizing::check_machine(cfg, 1)?;
    let open = |inp: Option<&Path>, out: &Path| PcapPort::open(inp, Some(out));
    let access = open(Some(&files.access_in), &files.access_out)?;
    let core_port = open(files.core_in.as_deref(), &files.core_out)?;
    let macs = setup::configured_macs(cfg);
    let fwd = setup::forwarding(cfg, macs).context("building the forwarding table")?;
    let publisher = Publisher::new(fwd);
    let flow_path = files
        .flow_records
        .clone()
        .unwrap_or_else(|| cfg.subscribers.flow_records.clone());
    let session_path = files
        .session_log
        .clone()
        .unwrap_or_else(|| cfg.subscribers.session_log.clone());

    let first = [access.next_time(), core_port.next_time()]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(Instant::ZERO);
    let mut now = first;
    let mut core_cfg = setup::core(cfg, WallClock::UNIX)?;
    // No spool here: nothing to keep last known counters for.
    core_cfg.aaa.last_known = None;
    let mut core = Core::new(now, publisher.current(), core_cfg);
    let (w_ends, c_ends) = worker_rings(setup::rings(cfg));
    let reader = publisher.reader();
    let mut outlets =
        Outlets::new(publisher, &flow_path, &session_path).context("opening the record files")?;
    outlets.kept = Some(Vec::new());
    let mut worker = Worker::new(
        setup::worker(cfg, 0),
        access,
        core_port,
        HeapPool::new(cfg.engine.buffers),
        reader,
        w_ends,
    );
    let mut dispatcher = Dispatcher::new(vec![c_ends]);
    // First-packet logins are answered from the local store, when there is one, at the
    // instant they are asked (replay has no threads and no RADIUS).
    let store = cfg
        .aaa
        .store
        .exists()
        .then(|| crate::store::Store::open(&cfg.aaa.store))
        .transpose()
        .with_context(|| format!("opening the subscriber store {}", cfg.aaa.store.display()))?;
    let mut aaa = ReplayAaa {
        store,
        accounting: Vec::new(),
    };
    for sub in &cfg.static_subscribers {
        core.open_session(now, setup::static_session(cfg, sub))
            .with_context(|| format!("static subscriber {} ({})", sub.user, sub.address))?;
    }
    // Static state (neighbours, sessions) is in place before the first frame: the worker
    // applies everything the core sent, however many polls' worth of commands that is,
    // before it receives anything.
    loop {
        let applied = worker.apply_control(now);
        let sent = router::pass(&mut core, now, &mut dispatcher, &mut outlets, &mut aaa);
        if applied == 0 && !sent {
            break;
        }
    }

    let mut last_input = first;
    loop {
        let next_frame = Side::ALL
            .into_iter()
            .filter_map(|s| worker.port_mut(s).next_time())
            .min();
        if let Some(t) = next_frame {
            last_input = last_input.max(t);
        }
        // Once no frame is left the clock moves by timers alone, flows' included: those
        // due now close at once (the per-poll sweep looks at a batch at a time), and the
        // next flow timeout is a step like any other timer.
        let flow_timer = match next_frame {
            Some(_) => None,
            None => {
                worker.expire_flows(now);
                worker.next_flow_deadline()
            }
        };
        let next_timer = [core.poll_timeout(), worker.next_deadline(), flow_timer]
            .into_iter()
            .flatten()
            .filter(|t| *t > now)
            .min();
        let t = match (next_frame, next_timer) {
            (Some(f), Some(tm)) => f.min(tm),
            (Some(f), None) => f,
            (None, Some(tm)) if tm <= last_input + linger => tm,
            (None, _) => break,
        };
        now = now.max(t);
        step(
            &mut worker,
            &mut dispatcher,
            &mut core,
            now,
            &mut outlets,
            &mut aaa,
        );
    }
    // Let the last decisions take effect before stopping.
    step(
        &mut worker,
        &mut dispatcher,
        &mut core,
        now,
        &mut outlets,
        &mut aaa,
    );

    let done = worker.finish(now);
    let report = done.report;
    dispatcher.set_report(report.clone());
    dispatcher.drain(&mut core, now);
    dispatcher.events(&mut core, now, 0, done.events);
    router::route(&mut core, now, &mut dispatcher, &mut outlets, &mut aaa);
    let mut ports = done.ports;
    let mut written = [0; 2];
    for s in Side::ALL {
        let p = &mut ports[s.idx()];
        written[s.idx()] = p.written;
        p.finish().map_err(anyhow::Error::msg)?;
    }
    outlets.flush();
    let records = outlets
        .kept
        .take()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(_, line)| serde_json::from_str::<Value>(&line).ok())
        .collect();
    Ok(ReplaySummary {
        accounting: aaa.accounting,
        records,
        counters: handlers::counters(dispatcher.reports(), &core, dispatcher.stats()),
        neighbors: handlers::neighbors(&core.neighbors(), now),
        core: core.stats(),
        report,
        written,
        span: (first, now),
    })
}

/// Replay's logins and accounting: the local store answers at once; records are kept.
struct ReplayAaa {
    store: Option<crate::store::Store>,
    accounting: Vec<tollgate_control_core::radius::attrs::AcctRecord>,
}

/// Logins are answered at once (what that produces is routed in the same drain);
/// accounting records are kept.
impl router::Aaa for ReplayAaa {
    fn take(&mut self, core: &mut Core, now: Instant, out: AaaOutput) {
        match out {
            AaaOutput::Authenticate(req) => {
                let a = match &self.store {
                    Some(s) => crate::aaa::authenticate_local(s, &req),
                    None => tollgate_control_core::gateway::aaa::AuthAnswer::Unavailable(
                        "no subscriber store".into(),
                    ),
                };
                core.on_auth(now, req.login, a);
            }
            AaaOutput::Account(r) => self.accounting.push(r),
            AaaOutput::Usage(_) | AaaOutput::LastKnown(_) | AaaOutput::LoginDone(..) => {}
        }
    }
}

/// One instant: poll, let the control core answer, poll again while it sent something.
fn step(
    worker: &mut Worker<PcapPort>,
    d: &mut Dispatcher,
    core: &mut Core,
    now: Instant,
    outlets: &mut Outlets,
    aaa: &mut ReplayAaa,
) {
    for s in Side::ALL {
        worker.port_mut(s).set_clock(now);
    }
    // Bounded: each round either consumes input or applies what the core sent.
    for _ in 0..64 {
        worker.poll(now);
        if !router::pass(core, now, d, outlets, aaa) {
            break;
        }
    }
}
