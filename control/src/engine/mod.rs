//! The daemon shell (`tollgate run`): opens the ports, starts one pinned worker thread
//! per `engine.workers`, serves the control socket, and runs the control thread's loop
//! (rings <-> control core, ctl requests) until SIGINT or SIGTERM.
//!
//! Each module owns one part of it:
//! - [`af_packet`], `af_xdp` (feature `af_xdp`), `dpdk` (feature `dpdk`): a backend's
//!   ports, opened and handed to [`serve`];
//! - [`workers`]: the worker threads, started pinned and joined at the stop;
//! - [`control_loop`]: the control thread's pass (one route of the core's outputs);
//! - [`requests`]: ctl requests, started on the core and answered when ready;
//! - [`reports`]: worker report collection;
//! - [`exposition`]: the metrics snapshot, rendered every `aaa.metrics.render_ms`;
//! - [`shutdown`]: the stop sequence (L2TP goodbye, last route, last deliveries).

pub mod af_packet;
#[cfg(feature = "af_xdp")]
pub mod af_xdp;
mod control_loop;
#[cfg(feature = "dpdk")]
pub mod dpdk;
mod exposition;
mod reports;
mod requests;
mod shutdown;
mod workers;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::{Context as _, bail};
use crossbeam::channel::bounded;
use tollgate_dataplane::port::memory::MemoryPort;
use tollgate_dataplane::snapshot::Publisher;
use tollgate_dataplane::time::Instant;
use tollgate_dataplane::{HeapPool, MacAddr, Port, Side};

use self::control_loop::ControlLoop;
use self::exposition::Exposition;
use self::reports::Reports;
use self::requests::Requests;
use self::workers::Workers;
use crate::config::{Backend, Config};
use crate::ctl::handlers::{EngineInfo, PortInfo};
use crate::ctl::server::{CtlRequest, Server};
use crate::dispatch::Dispatcher;
use crate::outlets::Outlets;
use crate::setup;
use tollgate_control_core::gateway::Core;

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
    match cfg.access.backend {
        Backend::AfPacket => af_packet::run(cfg, config_name, stop),
        Backend::Memory => {
            let ports = (0..cfg.engine.workers)
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
    let outlets = Outlets::new(
        publisher,
        &cfg.subscribers.flow_records,
        &cfg.subscribers.session_log,
    )
    .and_then(|o| o.with_rating_records(&cfg.l2tp.usage_records))
    .context("opening the record files")?;
    // DHCPv6 bindings are kept in the same file (issue 16: they survive a restart too).
    let (outlets, leases) = if cfg.dhcp.enabled || (cfg.ipv6.enabled && cfg.ipv6.dhcpv6) {
        let path = cfg.dhcp.lease_path(cfg);
        outlets
            .with_lease_file(&path)
            .with_context(|| format!("opening the DHCP lease file {}", path.display()))?
    } else {
        (outlets, Vec::new())
    };
    let mut outlets = match cfg.ipv6.relay_socket() {
        Some(local) => {
            let s = crate::relay6::RelaySocket::bind(local)
                .with_context(|| format!("binding the DHCPv6 relay's socket {local}"))?;
            tracing::info!(local = %local, servers = ?cfg.ipv6.dhcpv6_servers, "DHCPv6 relay mode");
            outlets.with_dhcpv6_relay(s)
        }
        None => outlets,
    };
    let exposition = Exposition::start(cfg, started)?;
    let (ctl_tx, ctl_rx) = bounded::<CtlRequest>(64);
    let server = Server::start(
        &cfg.control.socket,
        ctl_tx,
        crate::ctl::server::Timeouts::of(&cfg.control),
    )?;
    // Only now, as the one daemon of this socket, before any session: close what a
    // previous run left open.
    let rater = match (&cfg.database, &cfg.rating.database) {
        (Some(cluster), _) => Some(
            crate::rating::Rater::open_postgres(cluster, &cfg.rating)
                .context("opening the rating ledger in the cluster database")?,
        ),
        (None, Some(db)) => Some(
            crate::rating::Rater::open(db, &cfg.rating).context("opening the rating database")?,
        ),
        (None, None) => None,
    };
    let shell = crate::aaa::AaaShell::open(cfg, &core, &mut outlets, started, rater)?;
    let (threads, ends) = Workers::start(cfg, ports, make_pool, handoff, outlets.publisher())?;
    let info = engine_info(cfg, config_name, started, &server, macs, &threads);
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
    for sub in &cfg.static_subscribers {
        if let Err(e) = core.open_session(started, setup::static_session(cfg, sub)) {
            tracing::warn!(user = %sub.user, address = %sub.address, error = %e, "static subscriber not installed");
        }
    }
    if !leases.is_empty() {
        use tollgate_control_core::gateway::dhcpv6_restart::is_binding_record;
        let (v6, v4): (Vec<Vec<u8>>, Vec<Vec<u8>>) =
            leases.into_iter().partition(|b| is_binding_record(b));
        // DHCPv4 first: a dual-stack subscriber's session logs in again by its lease,
        // and its DHCPv6 binding waits for it.
        let live = core.dhcp_restore(started, &v4);
        let live6 = core.dhcpv6_restore(started, &v6);
        tracing::info!(
            kept = v4.len(),
            live,
            kept6 = v6.len(),
            live6,
            "DHCP leases and DHCPv6 bindings restored; their sessions log in again"
        );
    }
    let mut lp = ControlLoop {
        cfg,
        info,
        core,
        workers: Dispatcher::new(ends),
        outlets,
        shell,
        requests: Requests::new(ctl_rx),
        reports: Reports::default(),
        exposition,
    };
    let failed = lp.run(&stop, &threads);
    shutdown::stop(&mut lp, threads, &stop);
    drop(server);
    if let Some(i) = failed {
        bail!("worker {i} stopped unexpectedly");
    }
    Ok(())
}

/// What `show engine` says of the running engine.
fn engine_info(
    cfg: &Config,
    config_name: &str,
    started: Instant,
    server: &Server,
    macs: [MacAddr; 2],
    threads: &Workers,
) -> EngineInfo {
    EngineInfo {
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
        workers: threads.infos.clone(),
    }
}
