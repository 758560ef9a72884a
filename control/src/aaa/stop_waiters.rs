//! ctl requests that ended sessions (`ctl session remove`, `logout`), answered once the
//! sessions' Stops are committed to the spool: an acknowledged end is never lost to a
//! crash. After [`STOP_WAIT`] they are answered with an error that says why.

use std::time::Duration;

use crossbeam::channel::Sender;
use tollgate_control_core::radius::attrs::AcctRecord;
use tollgate_dataplane::time::Instant;

use crate::proto::Reply;

/// How long a ctl request that ended sessions waits for their Stops to be committed
/// before it is answered with an error (a worker that does not confirm the end, a spool
/// that cannot commit).
pub const STOP_WAIT: Duration = Duration::from_secs(10);

/// A ctl request waiting for Stops to be committed.
struct StopWaiter {
    /// Acct-Session-Ids whose Stops are not yet on disk.
    sessions: Vec<String>,
    reply: Reply,
    to: Sender<Reply>,
    deadline: Instant,
}

/// Why Stops are not on disk yet: the records that wait for a commit, and how many
/// commits failed.
pub(super) struct Unsaved<'a> {
    pub(super) records: &'a [AcctRecord],
    pub(super) spool_errors: u64,
}

/// The requests waiting for their Stops.
#[derive(Default)]
pub(super) struct StopWaiters {
    waiting: Vec<StopWaiter>,
}

impl StopWaiters {
    /// Answers `to` with `reply` once the Stops of `sessions` (Acct-Session-Ids) are
    /// committed, or with an error after [`STOP_WAIT`].
    pub(super) fn push(
        &mut self,
        sessions: Vec<String>,
        reply: Reply,
        to: Sender<Reply>,
        now: Instant,
    ) {
        self.waiting.push(StopWaiter {
            sessions,
            reply,
            to,
            deadline: now + STOP_WAIT,
        });
    }

    /// Answers the waiters whose Stops are all committed (`committed`: the Stops just
    /// committed), or whose time is up (`now`), or all of them (`stopping`).
    pub(super) fn answer(
        &mut self,
        committed: &[&str],
        now: Instant,
        stopping: bool,
        unsaved: Unsaved<'_>,
    ) {
        if self.waiting.is_empty() {
            return;
        }
        for w in &mut self.waiting {
            w.sessions.retain(|s| !committed.contains(&s.as_str()));
        }
        let (done, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.waiting)
            .into_iter()
            .partition(|w| w.sessions.is_empty() || now >= w.deadline || stopping);
        self.waiting = waiting;
        for w in done {
            let answer = if w.sessions.is_empty() {
                w.reply
            } else {
                let why = if stopping {
                    "the gateway is stopping; it commits them before it exits".to_string()
                } else if unsaved
                    .records
                    .iter()
                    .any(|r| w.sessions.contains(&r.session_id))
                {
                    format!(
                        "the spool cannot commit them ({} failed commits; see the log)",
                        unsaved.spool_errors
                    )
                } else {
                    format!(
                        "the fast path has not confirmed the end within {} s",
                        STOP_WAIT.as_secs()
                    )
                };
                Reply::error(format!(
                    "told to end, but the Stop of {} is not on disk yet: {why}",
                    w.sessions.join(", ")
                ))
            };
            let _ = w.to.try_send(answer);
        }
    }
}
