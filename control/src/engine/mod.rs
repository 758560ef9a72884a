//! The daemon shell (`tollgate run`): opens the ports, starts one pinned worker thread
//! per `engine.workers`, serves the control socket, and runs the control thread's loop
//! (rings <-> control core, ctl requests) until SIGINT or SIGTERM. The DPDK backend's
//! set-up is in `dpdk` (feature `dpdk`), the AF_XDP backend's in `af_xdp` (feature `af_xdp`).

#[cfg(feature = "af_xdp")]
pub mod af_xdp;
#[cfg(feature = "dpdk")]
pub mod dpdk;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use anyhow::{Context as _, bail};
use crossbeam::channel::{RecvTimeoutError, Sender, bounded};
use tollgate_dataplane::handoff;
use tollgate_dataplane::port::af_packet::{AfPacketConfig, AfPacketPort};
use tollgate_dataplane::port::memory::MemoryPort;
use tollgate_dataplane::snapshot::Publisher;
use tollgate_dataplane::steer;
use tollgate_dataplane::time::Instant;
use tollgate_dataplane::{
    Event, HeapPool, MacAddr, Port, Side, Worker, WorkerReport, worker_rings,
};

use crate::config::{Backend, Config};
use crate::ctl::handlers::{self, Context, EngineInfo, PortInfo, Step, WorkerInfo};
use crate::ctl::server::{CtlRequest, Server};
use crate::dispatch::Dispatcher;
use crate::outlets::Outlets;
use crate::proto::{Reply, Request};
use crate::router;
use crate::setup;
use tollgate_control_core::gateway::Core;

/// How long a ctl request waits for fresh worker reports before it is answered with the
/// latest ones. The answer goes out as soon as every worker has reported, so this only
/// matters when a worker is not scheduled: on a loaded 2-core host a worker thread was
/// seen to wait more than 250 ms for a core, and `show session` then answered "did not
/// answer" for a session that was there.
const REPORT_WAIT: Duration = Duration::from_secs(2);

/// Runs the gateway until SIGINT or SIGTERM.
pub fn run(cfg: &Config, config_name: &str) -> anyhow::Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone()).context("installing signal handlers")?;
    }
    run_until(cfg, config_name, stop)
}

/// Runs the gateway until `stop` is set.
pub fn run_until(cfg: &Config, config_name: &str, stop: Arc<AtomicBool>) -> anyhow::Result<()> {
    crate::sizing::check_machine(cfg, cfg.engine.workers)?;
    let workers = cfg.engine.workers;
    let buffers = cfg.engine.buffers;
    match cfg.access.backend {
        Backend::AfPacket => {
            let mut ports = Vec::with_capacity(workers);
            let nat = setup::nat(cfg);
            for _ in 0..workers {
                let open = |side: Side| -> anyhow::Result<AfPacketPort> {
                    let p = setup::port(cfg, side);
                    let name = p.interface.clone().unwrap_or_default();
                    let mut ac = AfPacketConfig::new(&name);
                    ac.block_size = cfg.af_packet.block_size;
                    ac.block_count = cfg.af_packet.blocks;
                    ac.block_timeout_ms = cfg.af_packet.block_timeout_ms;
                    ac.max_delay_ms = cfg.af_packet.max_delay_ms;
                    ac.tx_frames = cfg.af_packet.tx_frames;
                    if workers > 1 {
                        // One fanout group per interface, whose program gives each packet
                        // to the worker that owns its subscriber or NAT port.
                        ac.fanout_group = Some(
                            (std::process::id() as u16)
                                .wrapping_mul(2)
                                .wrapping_add(side.idx() as u16),
                        );
                        let n = workers as u16;
                        ac.fanout_program = Some(match side {
                            Side::Access => steer::access_program(n),
                            Side::Core => steer::core_program(n, &nat.addresses, nat.ports),
                        });
                    }
                    AfPacketPort::open(&ac).with_context(|| format!("opening the {side} port"))
                };
                ports.push([open(Side::Access)?, open(Side::Core)?]);
            }
            let macs = [ports[0][0].mac(), ports[0][1].mac()];
            // The fanout programs deliver each packet to its owner: no handoff.
            serve(
                cfg,
                config_name,
                ports,
                macs,
                || HeapPool::new(buffers),
                false,
                stop,
            )
        }
        Backend::Memory => {
            let ports = (0..workers)
                .map(|_| [MemoryPort::idle(), MemoryPort::idle()])
                .collect();
            run_on_memory_ports(cfg, config_name, ports, stop)
        }
        #[cfg(feature = "af_xdp")]
        Backend::AfXdp => af_xdp::run(cfg, config_name, stop),
        #[cfg(not(feature = "af_xdp"))]
        Backend::AfXdp => bail!(
            "this tollgate was built without AF_XDP: build it with `make build` where libbpf-dev and clang are installed (docs/config.md)"
        ),
        #[cfg(feature = "dpdk")]
        Backend::Dpdk => dpdk::run(cfg, config_name, stop),
        #[cfg(not(feature = "dpdk"))]
        Backend::Dpdk => bail!(
            "this tollgate was built without DPDK: build it with `make build-dpdk` (docs/dpdk.md)"
        ),
        Backend::Pcap => bail!(
            "the pcap backend is for offline replay: use `tollgate replay --config FILE --access-in ... --access-out ... --core-out ...`"
        ),
    }
}

/// Runs the gateway on memory ports the caller holds the peers of (integration tests,
/// benchmarks: traffic in and out without a NIC) until `stop` is set.
pub fn run_on_memory_ports(
    cfg: &Config,
    config_name: &str,
    ports: Vec<[MemoryPort; 2]>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<()> {
    let macs = setup::configured_macs(cfg);
    let buffers = cfg.engine.buffers;
    serve(
        cfg,
        config_name,
        ports,
        macs,
        || HeapPool::new(buffers),
        cfg.engine.workers > 1,
        stop,
    )
}

/// Runs the engine on `ports` (one pair per worker) until `stop`. With `handoff`, the
/// workers pass packets whose state another worker owns to that worker (for ports that
/// do not deliver each packet to its owner).
pub(crate) fn serve<P: Port + 'static>(
    cfg: &Config,
    config_name: &str,
    ports: Vec<[P; 2]>,
    macs: [MacAddr; 2],
    make_pool: impl Fn() -> P::Pool,
    handoff: bool,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<()> {
    let fwd = setup::forwarding(cfg, macs).context("building the forwarding table")?;
    let publisher = Publisher::new(fwd);
    let started = Instant::now();
    let mut core = Core::new(
        started,
        publisher.current(),
        setup::core(cfg, crate::clock::system(started))?,
    );
    let mut outlets = Outlets::new(
        publisher,
        &cfg.subscribers.flow_records,
        &cfg.subscribers.session_log,
    )
    .and_then(|o| o.with_rating_records(&cfg.l2tp.usage_records))
    .context("opening the record files")?;
    let metrics = match cfg.aaa.metrics.listen {
        Some(addr) => {
            let snapshot = crate::metrics::Snapshot::new();
            let server = crate::metrics::server::MetricsServer::start(addr, snapshot.clone())
                .with_context(|| format!("serving metrics on {addr}"))?;
            tracing::info!(listen = %server.local_addr(), "metrics at /metrics");
            Some((server, snapshot))
        }
        None => None,
    };
    let render_every = Duration::from_millis(cfg.aaa.metrics.render_ms);
    let mut next_render = started;
    let (ctl_tx, ctl_rx) = bounded::<CtlRequest>(64);
    let server = Server::start(
        &cfg.control.socket,
        ctl_tx,
        crate::ctl::server::Timeouts::of(&cfg.control),
    )?;
    // Only now, as the one daemon of this socket, before any session: close what a
    // previous run left open.
    let rater = match &cfg.rating.database {
        Some(db) => Some(
            crate::rating::Rater::open(db, &cfg.rating).context("opening the rating database")?,
        ),
        None => None,
    };
    let mut shell = crate::aaa::AaaShell::open(cfg, &core, &mut outlets, started, rater)?;

    let cpus = choose_cpus(cfg)?;
    let n_workers = ports.len();
    let mut mesh = if handoff && n_workers > 1 {
        handoff::mesh(n_workers as u16, cfg.engine.handoff_ring)
    } else {
        Vec::new()
    }
    .into_iter();
    // Workers that stopped polling: none drains what was handed to it before every one
    // has stopped handing (or a second has passed, if one died).
    let stopped = Arc::new(AtomicUsize::new(0));
    // The workers run until `halt`, which follows `stop` once the L2TP peers have been
    // told (StopCCN through the workers) and have acknowledged, or l2tp.shutdown_wait_ms.
    let halt = Arc::new(AtomicBool::new(false));
    let mut ends = Vec::new();
    let mut threads: Vec<JoinHandle<(WorkerReport, Vec<Event>)>> = Vec::new();
    let mut infos = Vec::new();
    for (i, [access, core_port]) in ports.into_iter().enumerate() {
        let (w_ends, c_ends) = worker_rings(setup::rings(cfg));
        ends.push(c_ends);
        let mut worker = Worker::new(
            setup::worker(cfg, i as u16),
            access,
            core_port,
            make_pool(),
            outlets.publisher().reader(),
            w_ends,
        );
        if let Some(h) = mesh.next() {
            worker = worker.with_handoff(h);
        }
        let cpu = cpus.get(i).copied();
        infos.push(WorkerInfo {
            id: i as u16,
            cpu: cpu.map(|c| c.id),
        });
        let worker_stop = halt.clone();
        let worker_stopped = stopped.clone();
        let idle = Duration::from_micros(cfg.engine.idle_sleep_us);
        let spawned = thread::Builder::new()
            .name(format!("tg-worker-{i}"))
            .spawn(move || {
                if let Some(c) = cpu {
                    if !core_affinity::set_for_current(c) {
                        tracing::warn!(worker = i, cpu = c.id, "could not pin worker to its core");
                    }
                }
                while !worker_stop.load(Ordering::Relaxed) {
                    if worker.poll(Instant::now()) == 0 {
                        if idle.is_zero() {
                            std::hint::spin_loop();
                        } else {
                            thread::sleep(idle);
                        }
                    }
                }
                worker_stopped.fetch_add(1, Ordering::AcqRel);
                let since = std::time::Instant::now();
                while worker_stopped.load(Ordering::Acquire) < n_workers
                    && since.elapsed() < Duration::from_secs(1)
                {
                    thread::sleep(Duration::from_millis(1));
                }
                let done = worker.finish(Instant::now());
                (done.report, done.events)
            });
        match spawned {
            Ok(h) => threads.push(h),
            Err(e) => {
                halt.store(true, Ordering::Relaxed);
                for t in threads {
                    let _ = t.join();
                }
                bail!("starting worker {i}: {e}");
            }
        }
    }
    let info = EngineInfo {
        config: config_name.to_string(),
        started,
        pid: std::process::id(),
        socket: server.path().display().to_string(),
        ports: Side::ALL.map(|s| {
            let p = setup::port(cfg, s);
            PortInfo {
                backend: p.backend.name().to_string(),
                interface: p.interface.clone().or_else(|| p.device.clone()),
                mac: macs[s.idx()].to_string(),
                address: p.address.to_string(),
            }
        }),
        workers: infos,
    };
    tracing::info!(
        config = config_name,
        workers = threads.len(),
        access = %info.ports[0].address,
        access_mac = %info.ports[0].mac,
        core = %info.ports[1].address,
        core_mac = %info.ports[1].mac,
        socket = %info.socket,
        "tollgate running"
    );

    let mut dispatcher = Dispatcher::new(ends);
    for sub in &cfg.static_subscribers {
        if let Err(e) = core.open_session(started, setup::static_session(cfg, sub)) {
            tracing::warn!(user = %sub.user, address = %sub.address, error = %e, "static subscriber not installed");
        }
    }
    let mut waiting: Vec<Waiting> = Vec::new();
    let mut seq = 0u64;
    let mut failed = None;
    let mut goodbye = None;
    // At a stop, PPPoE subscribers get LCP Terminate-Request and PADT while the workers
    // still run: (report round awaited, deadline, second round) until sent.
    let mut ppp_goodbye: Option<(u64, Instant, bool)> = None;
    loop {
        if stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            match ppp_goodbye {
                None => {
                    let ended = core.pppoe_shutdown(now);
                    router::route(&mut core, now, &mut dispatcher, &mut outlets, &mut shell);
                    // Two report rounds after the frames went down: when the second is
                    // answered, every worker has finished a poll that took them.
                    seq += 1;
                    dispatcher.request_reports(seq);
                    ppp_goodbye = Some((seq, now + Duration::from_secs(1), ended == 0));
                }
                Some((s, deadline, _)) if !dispatcher.reported(s) && now < deadline => {}
                Some((_, deadline, false)) => {
                    seq += 1;
                    dispatcher.request_reports(seq);
                    ppp_goodbye = Some((seq, deadline, true));
                }
                Some((_, _, true)) => {
                    if !l2tp_goodbye(&mut core, &mut goodbye) {
                        break;
                    }
                }
            }
        }
        match ctl_rx.recv_timeout(Duration::from_millis(1)) {
            Ok(r) => match handlers::start(&r.req, &mut core, cfg, Instant::now()) {
                Step::Reply(reply) => {
                    let _ = r.reply.try_send(reply);
                }
                Step::Login(id) => shell.reply_on_login(id, r.reply),
                Step::Store(op) => shell.store_op(op, r.reply),
                Step::AfterStops { sessions, reply } => {
                    shell.reply_after_stops(sessions, reply, r.reply, Instant::now())
                }
                Step::Wait(w) => {
                    let mut report = 0;
                    if w.worker_reports {
                        seq += 1;
                        report = seq;
                        dispatcher.request_reports(seq);
                    }
                    waiting.push(Waiting {
                        req: r.req,
                        reply: r.reply,
                        report,
                        sessions: w.sessions,
                        deadline: Instant::now() + REPORT_WAIT,
                    });
                }
            },
            Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => {}
        }
        let now = Instant::now();
        // One pass: what the workers and the sockets brought, then one route of
        // everything the core produced.
        dispatcher.drain(&mut core, now);
        shell.poll(&mut core, now);
        router::route(&mut core, now, &mut dispatcher, &mut outlets, &mut shell);
        if let Some((_, snapshot)) = &metrics {
            if now >= next_render {
                next_render = now + render_every;
                if !dispatcher.reported(seq) || seq == 0 {
                    seq += 1;
                    dispatcher.request_reports(seq);
                }
                snapshot.publish(crate::metrics::gateway::render(
                    dispatcher.reports(),
                    &core,
                    |r| shell.metrics(r),
                ));
            }
        }
        waiting.retain(|w| {
            let ready = (w.report == 0 || dispatcher.reported(w.report))
                && w.sessions
                    .is_none_or(|s| core.report(s).is_none_or(|r| r.waiting == 0));
            let done = ready || now >= w.deadline;
            if done {
                let sessions = w.sessions.and_then(|s| core.take_report(s));
                let ctx = Context {
                    now: Instant::now(),
                    info: &info,
                    reports: dispatcher.reports(),
                    core: &core,
                    dispatch: dispatcher.stats(),
                    rater: shell.rater(),
                    aaa: Some(&shell),
                };
                // The connection may have gone; nothing to do then.
                let _ = w.reply.try_send(handlers::finish(&w.req, &ctx, sessions));
            }
            !done
        });
        if let Some(i) = threads.iter().position(|t| t.is_finished()) {
            // A worker only ends on its own when it panicked.
            if !stop.load(Ordering::Relaxed) {
                failed = Some(i);
            }
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    halt.store(true, Ordering::Relaxed);
    let now = Instant::now();
    for (i, t) in threads.into_iter().enumerate() {
        match t.join() {
            Ok((report, events)) => {
                dispatcher.set_report(report);
                // What the worker sent before it stopped, then what did not fit.
                dispatcher.drain(&mut core, now);
                dispatcher.events(&mut core, now, i as u16, events);
            }
            Err(_) => tracing::error!("a worker thread panicked"),
        }
    }
    // Tunnels end with the gateway: their use up to now is recorded. (Done already when
    // the loop ended on a signal; after a worker failure no StopCCN can go out now.)
    core.with_l2tp(now, |l| l.map(|l| l.shutdown(now)));
    // The sessions' Stops: committed (by this route), and sent while the servers answer
    // (2 s at most).
    router::route(&mut core, now, &mut dispatcher, &mut outlets, &mut shell);
    shell.finish(&mut core, Instant::now() + Duration::from_secs(2));
    let totals = handlers::counters(dispatcher.reports(), &core, dispatcher.stats());
    tracing::info!(
        rx_access = %totals["sides"]["access"]["rx_packets"],
        rx_core = %totals["sides"]["core"]["rx_packets"],
        tx_access = %totals["sides"]["access"]["tx_packets"],
        tx_core = %totals["sides"]["core"]["tx_packets"],
        drops = %totals["drops_total"],
        sessions_ended = core.sessions().stats().ended,
        "tollgate stopped"
    );
    drop(server);
    if let Some(i) = failed {
        bail!("worker {i} stopped unexpectedly");
    }
    Ok(())
}

/// At a stop, while the workers still run: the first call sends a StopCCN to every L2TP
/// peer; each call says whether to keep running for their acknowledgements (at most
/// `l2tp.shutdown_wait_ms`). `goodbye` holds when it began and its deadline.
fn l2tp_goodbye(core: &mut Core, goodbye: &mut Option<(Instant, Instant)>) -> bool {
    let now = Instant::now();
    let done = |core: &Core| core.l2tp().is_none_or(|l| l.shutdown_done());
    match *goodbye {
        None => {
            let Some(wait) = core.l2tp().map(|l| l.settings().shutdown_wait) else {
                return false;
            };
            core.with_l2tp(now, |l| l.map(|l| l.shutdown(now)));
            if done(core) || wait.is_zero() {
                return false;
            }
            let tunnels = core.l2tp().map_or(0, |l| l.tunnels().len());
            tracing::info!(
                tunnels,
                wait_ms = wait.as_millis() as u64,
                "stopping: StopCCN sent to the L2TP peers, waiting for their acknowledgements"
            );
            *goodbye = Some((now, now + wait));
            true
        }
        Some((since, deadline)) => {
            if done(core) {
                tracing::info!(
                    ms = now.since(since).as_millis() as u64,
                    "the L2TP peers acknowledged the StopCCNs"
                );
                false
            } else if now >= deadline {
                let unacked = core.l2tp().map_or(0, |l| {
                    l.tunnels()
                        .values()
                        .filter(|t| t.state == tollgate_control_core::l2tp::TunnelState::Stopping)
                        .count()
                });
                tracing::warn!(
                    tunnels = unacked,
                    "L2TP peers did not acknowledge the StopCCN within l2tp.shutdown_wait_ms; stopping anyway"
                );
                false
            } else {
                true
            }
        }
    }
}

struct Waiting {
    req: Request,
    reply: Sender<Reply>,
    /// Tag of the worker reports asked for (0: none).
    report: u64,
    /// Tag of the core's session report asked for.
    sessions: Option<u64>,
    deadline: Instant,
}

/// The cores workers are pinned to: `engine.cores` if given, else cores 1..=N when the
/// machine has more cores than workers (core 0 is left to the control thread and the
/// system), else none.
fn choose_cpus(cfg: &Config) -> anyhow::Result<Vec<core_affinity::CoreId>> {
    let available = core_affinity::get_core_ids().unwrap_or_default();
    if !cfg.engine.cores.is_empty() {
        return cfg
            .engine
            .cores
            .iter()
            .map(|c| {
                available
                    .iter()
                    .find(|a| a.id == *c)
                    .copied()
                    .with_context(|| {
                        format!("engine.cores lists core {c}, which this process may not run on")
                    })
            })
            .collect();
    }
    let n = cfg.engine.workers;
    if available.len() > n {
        Ok(available[1..=n].to_vec())
    } else {
        tracing::info!(
            workers = n,
            cores = available.len(),
            "not pinning workers: no more cores than workers"
        );
        Ok(Vec::new())
    }
}
