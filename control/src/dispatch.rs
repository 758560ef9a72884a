//! Moves messages between the control core and the workers' rings.
//!
//! Up: events, punted frames and reports are drained from every worker into the
//! [`Core`]. Down: the core's outputs are pushed onto the workers' command and inject
//! rings. A full command ring is not an error: the command waits in a per-worker queue
//! and is retried on the next pump, in order. Used the same way by the daemon's control
//! thread and by offline replay.

use std::collections::VecDeque;

use tollgate_dataplane::time::Instant;
use tollgate_dataplane::{Command, ControlEnds, Event, Frame, WorkerReport};

use crate::core::{Core, Output, Target};
use crate::outlets::Outlets;

/// Commands that may wait per worker before the oldest are dropped (a worker that stops
/// reading its ring for this long is stuck).
const PENDING_MAX: usize = 1 << 16;

/// What the dispatcher counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DispatchStats {
    /// Commands that found their ring full and were queued for a retry.
    pub command_retries: u64,
    /// Commands dropped because a worker's retry queue overflowed.
    pub commands_dropped: u64,
    /// Frames to inject dropped because the worker's queue overflowed.
    pub injects_dropped: u64,
}

/// The control thread's side of every worker's rings.
#[derive(Debug)]
pub struct Dispatcher {
    ends: Vec<ControlEnds>,
    pending: Vec<VecDeque<Command>>,
    pending_inject: Vec<VecDeque<Frame>>,
    reports: Vec<Option<WorkerReport>>,
    stats: DispatchStats,
}

impl Dispatcher {
    /// A dispatcher over the control ends of each worker's rings, in worker order.
    pub fn new(ends: Vec<ControlEnds>) -> Dispatcher {
        let n = ends.len();
        Dispatcher {
            ends,
            pending: (0..n).map(|_| VecDeque::new()).collect(),
            pending_inject: (0..n).map(|_| VecDeque::new()).collect(),
            reports: vec![None; n],
            stats: DispatchStats::default(),
        }
    }

    /// Drains the workers into the core, runs its timers, and pushes its outputs down (and
    /// out, to `outlets`). Returns true if anything was sent down (so a replay polls the
    /// worker again before moving the clock).
    pub fn pump(&mut self, core: &mut Core, now: Instant, outlets: &mut Outlets) -> bool {
        for (i, e) in self.ends.iter_mut().enumerate() {
            let w = i as u16;
            while let Some(ev) = e.events.pop() {
                core.on_event(now, w, ev);
            }
            while let Some(f) = e.punt.pop() {
                core.on_punt(now, w, &f);
            }
            while let Some(r) = e.reports.pop() {
                self.reports[i] = Some(r);
            }
        }
        if core.poll_timeout().is_some_and(|t| t <= now) {
            core.tick(now);
        }
        self.deliver(core, outlets) | self.flush()
    }

    /// Hands events that did not travel on a ring (a stopped worker's leftovers) to the
    /// core.
    pub fn events(
        &mut self,
        core: &mut Core,
        now: Instant,
        worker: u16,
        events: Vec<Event>,
        outlets: &mut Outlets,
    ) {
        for ev in events {
            core.on_event(now, worker, ev);
        }
        self.deliver(core, outlets);
        self.flush();
    }

    /// Moves the core's outputs to their queues and outlets.
    pub fn deliver(&mut self, core: &mut Core, outlets: &mut Outlets) -> bool {
        let mut sent = false;
        while let Some(o) = core.poll_output() {
            match o {
                Output::Record(kind, line) => {
                    outlets.record(kind, line);
                    continue;
                }
                Output::Publish(f) => {
                    outlets.publish(*f);
                    continue;
                }
                Output::Authenticate(_)
                | Output::Account(_)
                | Output::Usage(_)
                | Output::LastKnown(_)
                | Output::LoginDone { .. } => {
                    outlets.aaa.push(o);
                    continue;
                }
                _ => sent = true,
            }
            match o {
                Output::Command(Target::All, c) => {
                    for i in 0..self.ends.len() {
                        self.queue(i, c.clone());
                    }
                }
                Output::Command(Target::Worker(w), c) => self.queue(w as usize, c),
                Output::Inject(w, f) => {
                    let q = &mut self.pending_inject[(w as usize).min(self.ends.len() - 1)];
                    if q.len() >= PENDING_MAX {
                        self.stats.injects_dropped += 1;
                    } else {
                        q.push_back(*f);
                    }
                }
                Output::Record(..)
                | Output::Publish(_)
                | Output::Authenticate(_)
                | Output::Account(_)
                | Output::Usage(_)
                | Output::LastKnown(_)
                | Output::LoginDone { .. } => {}
            }
        }
        outlets.flush();
        sent
    }

    /// Asks every worker for a report tagged `seq`.
    pub fn request_reports(&mut self, seq: u64) {
        for i in 0..self.ends.len() {
            self.queue(i, Command::Report { seq });
        }
        self.flush();
    }

    /// The latest report of each worker.
    pub fn reports(&self) -> &[Option<WorkerReport>] {
        &self.reports
    }

    /// True when every worker has reported at least `seq`.
    pub fn reported(&self, seq: u64) -> bool {
        self.reports
            .iter()
            .all(|r| r.as_ref().is_some_and(|r| r.seq >= seq))
    }

    /// Records a worker's final report (taken when it stopped).
    pub fn set_report(&mut self, r: WorkerReport) {
        let i = r.worker as usize;
        if i < self.reports.len() {
            self.reports[i] = Some(r);
        }
    }

    /// What the dispatcher counted.
    pub fn stats(&self) -> DispatchStats {
        self.stats
    }

    /// Workers served.
    pub fn workers(&self) -> usize {
        self.ends.len()
    }

    fn queue(&mut self, i: usize, c: Command) {
        let q = &mut self.pending[i];
        if q.len() >= PENDING_MAX {
            q.pop_front();
            self.stats.commands_dropped += 1;
        }
        q.push_back(c);
    }

    /// Pushes what waits onto the rings, in order, until a ring is full.
    fn flush(&mut self) -> bool {
        let mut sent = false;
        for (i, e) in self.ends.iter_mut().enumerate() {
            while let Some(c) = self.pending[i].pop_front() {
                if let Err(c) = e.commands.push(c) {
                    self.pending[i].push_front(c);
                    self.stats.command_retries += 1;
                    break;
                }
                sent = true;
            }
            while let Some(f) = self.pending_inject[i].pop_front() {
                if let Err(f) = e.inject.push(f) {
                    self.pending_inject[i].push_front(f);
                    break;
                }
                sent = true;
            }
        }
        sent
    }
}
