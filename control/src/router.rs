//! The one router of the control core's outputs (issue 13 item 3).
//!
//! A shell (the daemon's control loop, replay, pktgen's own engine) drains the core here
//! once per pass: commands and frames go to the workers' queues ([`Dispatcher`]), records
//! and snapshots to the [`Outlets`], and what logins and accounting need to the shell's
//! [`Aaa`] at once, so that an answer it gives on the spot (the local store in replay)
//! is routed in the same drain. The `match` is exhaustive: a new output of the core does
//! not compile until it has a destination.

use tollgate_control_core::gateway::aaa::AuthRequest;
use tollgate_control_core::gateway::aaa::{Login, LoginId};
use tollgate_control_core::gateway::{Core, Output, Target};
use tollgate_control_core::radius::attrs::{AcctRecord, LastKnown};
use tollgate_dataplane::time::Instant;

use crate::dispatch::Dispatcher;
use crate::outlets::Outlets;

/// What the core asks of logins and accounting.
#[derive(Debug)]
pub enum AaaOutput {
    /// Credentials or identifiers to check; the answer goes to `Core::on_auth`.
    Authenticate(AuthRequest),
    /// An accounting record to commit to the spool, then send.
    Account(AcctRecord),
    /// A usage record for rating.
    Usage(tollgate_control_core::rating::Record),
    /// Open sessions' last reported counters, for the spool.
    LastKnown(Vec<LastKnown>),
    /// A login finished: its session, or why it has none.
    LoginDone(LoginId, Result<Login, String>),
}

/// Where a shell's logins and accounting go.
pub trait Aaa {
    /// Takes one output, in the order the core produced it. It may answer the core at
    /// once (`core.on_auth`); what that produces is routed in the same drain.
    fn take(&mut self, core: &mut Core, now: Instant, out: AaaOutput);

    /// Called once per route, after the core is drained: where batches are committed
    /// (the spool's one transaction per pass).
    fn end_pass(&mut self, _now: Instant) {}
}

/// For shells without logins or accounting (pktgen's engine, tests of the fast path's
/// commands): the outputs are dropped.
#[derive(Debug, Default)]
pub struct NoAaa;

impl Aaa for NoAaa {
    fn take(&mut self, _core: &mut Core, _now: Instant, _out: AaaOutput) {}
}

/// Routes everything the core has produced. Returns true if anything went down to the
/// workers (so a replay polls the worker again before moving the clock).
pub fn route(
    core: &mut Core,
    now: Instant,
    workers: &mut Dispatcher,
    outlets: &mut Outlets,
    aaa: &mut dyn Aaa,
) -> bool {
    let mut down = false;
    while let Some(o) = core.poll_output() {
        match o {
            Output::Command(Target::All, c) => {
                workers.queue_all(c);
                down = true;
            }
            Output::Command(Target::Worker(w), c) => {
                workers.queue(w as usize, c);
                down = true;
            }
            Output::Inject(w, f) => {
                workers.inject(w, *f);
                down = true;
            }
            Output::Record(kind, line) => outlets.record(kind, line),
            Output::Publish(f) => outlets.publish(*f),
            Output::Lease(c) => outlets.lease(&c),
            Output::Dhcpv6ToServer(t) => outlets.dhcpv6_to_server(&t),
            Output::Authenticate(r) => aaa.take(core, now, AaaOutput::Authenticate(r)),
            Output::Account(r) => aaa.take(core, now, AaaOutput::Account(r)),
            Output::Usage(r) => aaa.take(core, now, AaaOutput::Usage(r)),
            Output::LastKnown(b) => aaa.take(core, now, AaaOutput::LastKnown(b)),
            Output::LoginDone { login, result } => {
                aaa.take(core, now, AaaOutput::LoginDone(login, result))
            }
        }
    }
    aaa.end_pass(now);
    outlets.flush();
    workers.flush() | down
}

/// One pass of a shell without sockets of its own: the workers' events, punts and
/// reports into the core, its timers, then [`route`].
pub fn pass(
    core: &mut Core,
    now: Instant,
    workers: &mut Dispatcher,
    outlets: &mut Outlets,
    aaa: &mut dyn Aaa,
) -> bool {
    workers.drain(core, now);
    route(core, now, workers, outlets, aaa)
}
