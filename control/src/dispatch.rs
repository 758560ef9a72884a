//! Moves messages between the control core and the workers' rings.
//!
//! Up: events, punted frames and reports are drained from every worker into the
//! [`Core`]. Down: the commands and frames the router ([`crate::router`]) queues are
//! pushed onto the workers' command and inject rings. A full command ring is not an error: the command waits in a per-worker queue
//! and is retried on the next pump, in order. Used the same way by the daemon's control
//! thread and by offline replay.

use std::collections::VecDeque;

use tollgate_dataplane::time::Instant;
use tollgate_dataplane::{Command, ControlEnds, Event, Frame, WorkerReport};

use tollgate_control_core::gateway::Core;

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

    /// Drains the workers' events, punted frames and reports into the core and runs its
    /// timers. Where the core's outputs go is the router's business
    /// ([`crate::router::route`]).
    pub fn drain(&mut self, core: &mut Core, now: Instant) {
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
    }

    /// Hands events that did not travel on a ring (a stopped worker's leftovers) to the
    /// core.
    pub fn events(&mut self, core: &mut Core, now: Instant, worker: u16, events: Vec<Event>) {
        for ev in events {
            core.on_event(now, worker, ev);
        }
    }

    /// Queues a command for every worker.
    pub fn queue_all(&mut self, c: Command) {
        for i in 0..self.ends.len() {
            self.queue(i, c.clone());
        }
    }

    /// Queues a frame for worker `w` to send (the last worker if there is no `w`).
    pub fn inject(&mut self, w: u16, f: Frame) {
        let q = &mut self.pending_inject[(w as usize).min(self.ends.len() - 1)];
        if q.len() >= PENDING_MAX {
            self.stats.injects_dropped += 1;
        } else {
            q.push_back(f);
        }
    }

    /// True while frames wait here for room on a worker's inject ring (a burst larger
    /// than the ring, such as the goodbye to every PPPoE subscriber at a stop).
    pub fn injects_waiting(&self) -> bool {
        self.pending_inject.iter().any(|q| !q.is_empty())
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

    /// Queues a command for worker `i`.
    pub fn queue(&mut self, i: usize, c: Command) {
        let q = &mut self.pending[i];
        if q.len() >= PENDING_MAX {
            q.pop_front();
            self.stats.commands_dropped += 1;
        }
        q.push_back(c);
    }

    /// Pushes what waits onto the rings, in order, until a ring is full. Returns true if
    /// anything went.
    pub fn flush(&mut self) -> bool {
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
