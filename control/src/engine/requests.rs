//! ctl request servicing: each request the control socket's server passes on is started
//! on the core at once; those that need fresh worker reports, a session report or a
//! login wait here (or in the AAA shell) and are answered in a later pass.

use std::time::Duration;

use crossbeam::channel::{Receiver, RecvTimeoutError, Sender};
use tollgate_control_core::gateway::Core;
use tollgate_dataplane::time::Instant;

use super::reports::Reports;
use crate::aaa::AaaShell;
use crate::config::Config;
use crate::ctl::handlers::{self, Context, EngineInfo, Step};
use crate::ctl::server::CtlRequest;
use crate::dispatch::Dispatcher;
use crate::proto::{Reply, Request};

/// How long a ctl request waits for fresh worker reports before it is answered with the
/// latest ones. The answer goes out as soon as every worker has reported, so this only
/// matters when a worker is not scheduled: on a loaded 2-core host a worker thread was
/// seen to wait more than 250 ms for a core, and `show session` then answered "did not
/// answer" for a session that was there.
const REPORT_WAIT: Duration = Duration::from_secs(2);

/// How long a pass waits for a ctl request when none is there.
const IDLE_WAIT: Duration = Duration::from_millis(1);

/// The requests from the control socket, and those waiting for their answer.
pub(super) struct Requests {
    from: Receiver<CtlRequest>,
    waiting: Vec<Waiting>,
}

/// A request waiting for what its answer needs.
struct Waiting {
    req: Request,
    reply: Sender<Reply>,
    /// Tag of the worker reports asked for (0: none).
    report: u64,
    /// Tag of the core's session report asked for.
    sessions: Option<u64>,
    deadline: Instant,
}

impl Requests {
    /// Requests arriving on `from`.
    pub(super) fn new(from: Receiver<CtlRequest>) -> Requests {
        Requests {
            from,
            waiting: Vec::new(),
        }
    }

    /// Starts the next request, waiting up to a millisecond for one: answered at once,
    /// handed to the AAA shell (logins, store changes, ends that wait for their Stops), or
    /// kept until its reports are in.
    pub(super) fn start_next(
        &mut self,
        cfg: &Config,
        core: &mut Core,
        shell: &mut AaaShell,
        reports: &mut Reports,
        workers: &mut Dispatcher,
    ) {
        let r = match self.from.recv_timeout(IDLE_WAIT) {
            Ok(r) => r,
            Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => return,
        };
        match handlers::start(&r.req, core, cfg, Instant::now()) {
            Step::Reply(reply) => {
                let _ = r.reply.try_send(reply);
            }
            Step::Login(id) => shell.reply_on_login(id, r.reply),
            Step::Store(op) => shell.store_op(op, r.reply),
            Step::AfterStops { sessions, reply } => {
                shell.reply_after_stops(sessions, reply, r.reply, Instant::now())
            }
            Step::Wait(w) => {
                let report = if w.worker_reports {
                    reports.ask(workers)
                } else {
                    0
                };
                self.waiting.push(Waiting {
                    req: r.req,
                    reply: r.reply,
                    report,
                    sessions: w.sessions,
                    deadline: Instant::now() + REPORT_WAIT,
                });
            }
        }
    }

    /// Answers the waiting requests whose reports are in, or whose time is up.
    pub(super) fn answer_ready(
        &mut self,
        now: Instant,
        info: &EngineInfo,
        core: &mut Core,
        workers: &Dispatcher,
        shell: &AaaShell,
    ) {
        self.waiting.retain(|w| {
            let ready = Reports::arrived(workers, w.report)
                && w.sessions
                    .is_none_or(|s| core.report(s).is_none_or(|r| r.waiting == 0));
            let done = ready || now >= w.deadline;
            if done {
                let sessions = w.sessions.and_then(|s| core.take_report(s));
                let ctx = Context {
                    now: Instant::now(),
                    info,
                    reports: workers.reports(),
                    core,
                    dispatch: workers.stats(),
                    rater: shell.rater(),
                    aaa: Some(shell),
                };
                // The connection may have gone; nothing to do then.
                let _ = w.reply.try_send(handlers::finish(&w.req, &ctx, sessions));
            }
            !done
        });
    }
}
