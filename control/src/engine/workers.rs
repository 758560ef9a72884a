//! The worker threads: started one per port pair, pinned to their cores, polling until
//! halted, then joined with what they reported last.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use anyhow::{Context as _, bail};
use tollgate_dataplane::snapshot::Publisher;
use tollgate_dataplane::time::Instant;
use tollgate_dataplane::{
    ControlEnds, Event, Forwarding, Port, Worker, WorkerReport, handoff, worker_rings,
};

use crate::config::Config;
use crate::ctl::handlers::WorkerInfo;
use crate::setup;

/// What a worker hands back when it stops: its last report and the events that did not
/// fit on its ring.
pub(super) type Finished = (WorkerReport, Vec<Event>);

/// The running workers.
pub(super) struct Workers {
    threads: Vec<JoinHandle<Finished>>,
    /// Set to stop them: it follows the engine's `stop` once the L2TP peers have been told
    /// (StopCCN through the workers) and have acknowledged, or l2tp.shutdown_wait_ms.
    halt: Arc<AtomicBool>,
    /// Each worker as started.
    pub(super) infos: Vec<WorkerInfo>,
}

impl Workers {
    /// Starts one worker per port pair, reading snapshots from `publisher`. With
    /// `handoff`, the workers pass packets whose state another worker owns to that worker.
    /// Returns the workers and the control ends of their rings, in worker order.
    pub(super) fn start<P: Port + 'static>(
        cfg: &Config,
        ports: Vec<[P; 2]>,
        make_pool: impl Fn() -> P::Pool,
        handoff: bool,
        publisher: &Publisher<Forwarding>,
    ) -> anyhow::Result<(Workers, Vec<ControlEnds>)> {
        let cpus = choose_cpus(cfg)?;
        let n_workers = ports.len();
        let mut mesh = if handoff && n_workers > 1 {
            handoff::mesh(n_workers as u16, cfg.engine.handoff_ring)
        } else {
            Vec::new()
        }
        .into_iter();
        let stopped = Arc::new(AtomicUsize::new(0));
        let halt = Arc::new(AtomicBool::new(false));
        let mut ends = Vec::new();
        let mut threads: Vec<JoinHandle<Finished>> = Vec::new();
        let mut infos = Vec::new();
        for (i, [access, core_port]) in ports.into_iter().enumerate() {
            let (w_ends, c_ends) = worker_rings(setup::rings(cfg));
            ends.push(c_ends);
            let mut worker = Worker::new(
                setup::worker(cfg, i as u16),
                access,
                core_port,
                make_pool(),
                publisher.reader(),
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
            let spawned = spawn(
                i,
                worker,
                cpu,
                Stopping {
                    halt: halt.clone(),
                    stopped: stopped.clone(),
                    workers: n_workers,
                },
                Duration::from_micros(cfg.engine.idle_sleep_us),
            );
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
        Ok((
            Workers {
                threads,
                halt,
                infos,
            },
            ends,
        ))
    }

    /// Workers started.
    pub(super) fn len(&self) -> usize {
        self.threads.len()
    }

    /// A worker that has ended (a worker only ends on its own when it panicked).
    pub(super) fn ended(&self) -> Option<usize> {
        self.threads.iter().position(|t| t.is_finished())
    }

    /// Halts every worker and joins them in order, handing each one's leftovers to
    /// `each` as it is joined (none for a worker that panicked).
    pub(super) fn halt(self, mut each: impl FnMut(u16, Option<Finished>)) {
        self.halt.store(true, Ordering::Relaxed);
        for (i, t) in self.threads.into_iter().enumerate() {
            each(i as u16, t.join().ok());
        }
    }
}

/// How a worker learns it is to stop, and waits for the others before it drains what
/// they handed to it.
struct Stopping {
    halt: Arc<AtomicBool>,
    /// Workers that stopped polling: none drains what was handed to it before every one
    /// has stopped handing (or a second has passed, if one died).
    stopped: Arc<AtomicUsize>,
    workers: usize,
}

/// Starts worker `i`'s thread: pinned to `cpu`, polling until halted (sleeping `idle`
/// when a poll found nothing, spinning when it is zero), then finishing.
fn spawn<P: Port + 'static>(
    i: usize,
    mut worker: Worker<P>,
    cpu: Option<core_affinity::CoreId>,
    stopping: Stopping,
    idle: Duration,
) -> std::io::Result<JoinHandle<Finished>> {
    thread::Builder::new()
        .name(format!("tg-worker-{i}"))
        .spawn(move || {
            if let Some(c) = cpu
                && !core_affinity::set_for_current(c)
            {
                tracing::warn!(worker = i, cpu = c.id, "could not pin worker to its core");
            }
            while !stopping.halt.load(Ordering::Relaxed) {
                if worker.poll(Instant::now()) == 0 {
                    if idle.is_zero() {
                        std::hint::spin_loop();
                    } else {
                        thread::sleep(idle);
                    }
                }
            }
            stopping.stopped.fetch_add(1, Ordering::AcqRel);
            let since = std::time::Instant::now();
            while stopping.stopped.load(Ordering::Acquire) < stopping.workers
                && since.elapsed() < Duration::from_secs(1)
            {
                thread::sleep(Duration::from_millis(1));
            }
            let done = worker.finish(Instant::now());
            (done.report, done.events)
        })
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
