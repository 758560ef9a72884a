//! Worker report collection: the workers report their counters when asked, each request
//! tagged with the next number, so a ctl request or the metrics know when every worker
//! has answered theirs; at the stop, each worker's last report and leftover events.

use tollgate_control_core::gateway::Core;
use tollgate_dataplane::time::Instant;

use super::workers::Finished;
use crate::dispatch::Dispatcher;

/// The tags of the reports asked for.
#[derive(Debug, Default)]
pub(super) struct Reports {
    /// The last tag asked for (0: none yet).
    seq: u64,
}

impl Reports {
    /// Asks every worker for a fresh report; returns the tag it will carry.
    pub(super) fn ask(&mut self, workers: &mut Dispatcher) -> u64 {
        self.seq += 1;
        workers.request_reports(self.seq);
        self.seq
    }

    /// Before a metrics rendering: asks for fresh reports when none were asked for yet or
    /// the last ask has been answered, so each rendering's worker counters are at most one
    /// `render_ms` old; while an ask is unanswered (a worker not scheduled), no other
    /// piles up behind it.
    pub(super) fn refresh(&mut self, workers: &mut Dispatcher) {
        if self.seq == 0 || workers.reported(self.seq) {
            self.ask(workers);
        }
    }

    /// True when the reports tagged `tag` are in (tag 0: none were asked for).
    pub(super) fn arrived(workers: &Dispatcher, tag: u64) -> bool {
        tag == 0 || workers.reported(tag)
    }

    /// Takes a stopped worker's leftovers: its last report, what it sent on its rings
    /// before it stopped, then what did not fit.
    pub(super) fn collect_last(
        workers: &mut Dispatcher,
        core: &mut Core,
        now: Instant,
        worker: u16,
        finished: Finished,
    ) {
        let (report, events) = finished;
        workers.set_report(report);
        workers.drain(core, now);
        workers.events(core, now, worker, events);
    }
}
