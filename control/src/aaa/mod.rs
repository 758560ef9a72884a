//! The I/O shell around the core's logins and accounting: the local subscriber store on
//! its own thread (an Argon2 check costs tens of milliseconds), the RADIUS authentication
//! and accounting clients, the durable spool, the RFC 5176 listener and the health
//! checks. The router hands it what the core produced ([`crate::router::Aaa`]) and
//! lets it move what is ready ([`AaaShell::poll`]); nothing here blocks except the
//! spool's one commit per pass (an fsync).
//!
//! Each module owns one part of it:
//! - `open`: the start (store thread, spool recovery, sockets);
//! - `authentication`: logins, to the store thread or RADIUS, and their answers;
//! - `accounting`: the spool commit of a pass, rating, delivery to the accounting servers;
//! - `stop_waiters`: ctl requests answered once their Stops are on disk;
//! - `health_checks`: the health checks and what their results change;
//! - `store_thread`: the local store's thread and its ctl changes;
//! - [`udp`]: the RADIUS client and CoA listener sockets;
//! - `views`: `show accounting`, `show health` and the AAA metrics families.

mod accounting;
mod authentication;
mod health_checks;
mod open;
mod placement;
mod stop_waiters;
mod store_thread;
pub mod udp;
mod views;

use self::health_checks::HealthChecks;
pub use self::stop_waiters::STOP_WAIT;
use self::stop_waiters::{StopWaiters, Unsaved};
use self::store_thread::{StoreJob, StoreThread};
pub use self::store_thread::{StoreOp, authenticate_local};

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::Context as _;
use crossbeam::channel::{Receiver, Sender, unbounded};
use serde_json::Value;
use tollgate_dataplane::MacAddr;
use tollgate_dataplane::service::Policy;
use tollgate_dataplane::time::Instant;

use crate::aaa::udp::{UdpClient, UdpCoaListener};
use crate::config::aaa::AuthBackend;
use crate::config::{CheckType, Config};
use crate::health::probe::Prober;
use crate::outlets::Outlets;
use crate::proto::Reply;
use crate::router::AaaOutput;
use crate::spool::{Spool, SpoolError, SpoolId, SpoolOptions};
use crate::store::import::{self, Format, Record};
use crate::store::{Store, SubscriberView};
use tollgate_control_core::gateway::aaa::{AuthAnswer, AuthRequest, Login, LoginId};
use tollgate_control_core::gateway::records;
use tollgate_control_core::gateway::{Core, RecordKind};
use tollgate_control_core::health::{CheckKind, Health, Scheduler, Target, TargetId};
use tollgate_control_core::radius::attrs::{self, AcctRecord, LastKnown, NasIdentity};
use tollgate_control_core::radius::client::{Client, ClientEvent, FailReason, RequestId};
use tollgate_control_core::radius::coa::{CoaClient, Listener};
use tollgate_control_core::radius::dict::std_attr as sa;
use tollgate_control_core::radius::packet::{Attribute, Code, Packet};

/// What the shell counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShellStats {
    /// Accounting records committed to the spool.
    pub acct_spooled: u64,
    /// Accounting records sent to RADIUS (first attempts and retries).
    pub acct_sent: u64,
    /// Accounting records acknowledged (or, without accounting servers, done).
    pub acct_done: u64,
    /// Spool commits that failed (the records stay in memory and are retried).
    pub spool_errors: u64,
    /// Authentication requests sent to RADIUS.
    pub radius_auth: u64,
    /// Access-Challenges received (logins refused: multi-round authentication is not
    /// supported).
    pub auth_challenges: u64,
    /// Usage records the rating ledger refused for good (see [`LedgerQueue`]).
    pub rating_errors: u64,
    /// How long the last commit with last known counters took, microseconds.
    pub last_known_commit_us: u64,
    /// Accounting records sent without attributes that did not fit in one packet.
    pub acct_left_out: u64,
    /// Accounting records set aside because they could not be encoded at all.
    pub acct_set_aside: u64,
    /// Accounting records committed in the cluster's PostgreSQL (`[database]`).
    pub acct_db_committed: u64,
    /// Accounting records the database did not take (down, restarting): retried later.
    pub acct_db_retries: u64,
    /// Accounting records of sessions a surviving node took over (or already closed):
    /// dropped from the spool, sent nowhere.
    pub acct_db_superseded: u64,
    /// Stops spooled for sessions taken over from dead nodes.
    pub acct_takeover_stops: u64,
}

/// Usage records from the spool to the rating ledger: one batch in flight at a time,
/// oldest first; a failed batch goes again after the spool's back-off.
pub(crate) struct LedgerQueue {
    delivery: crate::rating::delivery::UsageDelivery,
    /// The spool row ids of the batch in flight (empty: none).
    in_flight: Vec<SpoolId>,
    /// Failed batches in a row (the back-off doubles with each).
    attempts: u32,
    /// When the next batch may go.
    next: Instant,
    /// The spool's back-off: first wait after a failure, longest wait.
    retry_min: Duration,
    retry_max: Duration,
}

/// The shell.
pub struct AaaShell {
    rater: Option<crate::rating::Rater>,
    /// The pass's usage records, committed to the spool with its accounting records.
    usage: Vec<tollgate_control_core::rating::Record>,
    /// Their way from the spool to the ledger (with rating on).
    ledger: Option<LedgerQueue>,
    nas: NasIdentity,
    backend: AuthBackend,
    mac_password: Option<String>,
    store: StoreThread,
    radius_auth: Option<UdpClient>,
    radius_acct: Option<UdpClient>,
    /// Access-Requests in flight: the login and the User-Name sent.
    auth_ids: HashMap<RequestId, (LoginId, String)>,
    /// Accounting-Requests in flight: the record and its session.
    acct_ids: HashMap<RequestId, (SpoolId, String)>,
    spool: Spool,
    unsaved: Vec<AcctRecord>,
    /// Sessions' last known counters for the next commit (only the newest per session
    /// matters; a failed commit keeps them for the next try).
    last_known: Vec<LastKnown>,
    acks: Vec<SpoolId>,
    /// Delivery to the cluster's PostgreSQL (`[database]`): before RADIUS, a record goes
    /// there; the ones it has, with their attempts, wait here for its answer.
    database: Option<crate::database::accounting::Delivery>,
    to_database: HashMap<SpoolId, crate::spool::Due>,
    /// This node in the cluster (`[database]`): heartbeats, leases, takeovers.
    cluster: Option<crate::database::cluster::Cluster>,
    coa: Option<UdpCoaListener>,
    health: HealthChecks,
    ctl_logins: HashMap<LoginId, Sender<Reply>>,
    /// Logins being placed in the cluster (source-range).
    placing: placement::Placing,
    /// ctl requests that ended sessions, answered once the Stops are on disk.
    stop_waiters: StopWaiters,
    stats: ShellStats,
}

impl std::fmt::Debug for AaaShell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AaaShell({:?})", self.stats)
    }
}

fn unix_s(core: &Core, now: Instant) -> u64 {
    (core.clock().unix_ns(now).max(0) / 1_000_000_000) as u64
}

impl AaaShell {
    /// The CoA listener's address, when one listens.
    pub fn coa_addr(&self) -> Option<SocketAddr> {
        self.coa.as_ref().and_then(|c| c.local_addr().ok())
    }

    /// Answers `to` with `reply` once the Stops of `sessions` (Acct-Session-Ids) are
    /// committed to the spool (`ctl session remove`, `logout`): an acknowledged end is
    /// never lost to a crash. After [`STOP_WAIT`] it answers with an error instead.
    pub fn reply_after_stops(
        &mut self,
        sessions: Vec<String>,
        reply: Reply,
        to: Sender<Reply>,
        now: Instant,
    ) {
        self.stop_waiters.push(sessions, reply, to, now);
    }

    /// Answers the Stop waiters whose time is up (all of them when `stopping`).
    fn answer_stop_waiters(&mut self, now: Instant, stopping: bool) {
        let unsaved = Unsaved {
            records: &self.unsaved,
            spool_errors: self.stats.spool_errors,
        };
        self.stop_waiters.answer(&[], now, stopping, unsaved);
    }

    /// Runs a store change on the store thread; it answers `reply` itself.
    pub fn store_op(&self, op: StoreOp, reply: Sender<Reply>) {
        if let Err(e) = self.store.jobs.send(StoreJob::Admin(op, reply))
            && let StoreJob::Admin(_, reply) = e.0
        {
            let _ = reply.try_send(Reply::error("the store thread has stopped"));
        }
    }

    /// `show cluster`: what the cluster thread last saw (none without `[database]`).
    pub fn cluster(&self) -> Option<crate::database::cluster::ClusterView> {
        self.cluster.as_ref().map(|c| c.view())
    }

    /// The Stops of sessions taken over from dead nodes, into the spool like the core's
    /// records (committed at once).
    fn take_over_stops(&mut self, now: Instant) {
        let Some(c) = &self.cluster else {
            return;
        };
        let stops = c.take_stops();
        if stops.is_empty() {
            return;
        }
        self.stats.acct_takeover_stops += stops.len() as u64;
        if self.rater.is_some() {
            // Rated like a session closed at restart, under its Acct-Session-Id: if the
            // dead node comes back and rates its recovered session too, the ledger keeps
            // the first (a usage record's id is unique there).
            self.usage.extend(
                stops.iter().map(|s| {
                    tollgate_control_core::rating::Record::Session(open::recovered_usage(s))
                }),
            );
        }
        for s in &stops {
            tracing::info!(session = %s.session_id, user = %s.user_name, octets_up = s.counters.octets_up, octets_down = s.counters.octets_down, "closing a session taken over from a dead node");
        }
        self.unsaved.extend(stops);
        self.commit(now);
    }

    /// The rating engine, when `rating.database` is set.
    pub fn rater(&self) -> Option<&crate::rating::Rater> {
        self.rater.as_ref()
    }

    /// Moves what is ready: store answers, RADIUS replies and timers, spooled records
    /// out, CoA requests, health checks. Results reach the core at once.
    pub fn poll(&mut self, core: &mut Core, now: Instant) {
        self.answer_logins(core, now);
        self.placements(core, now);
        self.take_over_stops(now);
        self.deliver(core, now);
        self.answer_stop_waiters(now, false);
        if let Some(l) = self.coa.as_mut() {
            let now_unix = unix_s(core, now);
            l.pump(now_unix, &mut core.coa_directory(now));
        }
        self.health.poll(core, now);
    }

    /// When [`Self::poll`] next has timed work (RADIUS retransmissions, spool retries,
    /// health checks).
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.radius_auth
                .as_ref()
                .and_then(|c| c.client.poll_timeout()),
            self.radius_acct
                .as_ref()
                .and_then(|c| c.client.poll_timeout()),
            self.spool.poll_timeout(),
            self.ledger
                .as_ref()
                .filter(|l| l.attempts > 0 && l.in_flight.is_empty())
                .map(|l| l.next),
            self.health.scheduler.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// At shutdown, after the last route (which committed what was left): tries to
    /// deliver it until `deadline`; what is not acknowledged by then goes out after the
    /// next start.
    pub fn finish(&mut self, core: &mut Core, deadline: Instant) {
        let now = Instant::now().min(deadline);
        self.answer_stop_waiters(now, true);
        loop {
            let now = Instant::now();
            self.poll(core, now);
            let usage = match self.ledger {
                Some(_) => self.spool.usage_pending().unwrap_or(0),
                None => 0,
            };
            let pending = self.spool.pending().unwrap_or(0) + usage;
            let nowhere_to_send =
                self.radius_acct.is_none() && self.database.is_none() && self.ledger.is_none();
            if pending == 0 || now >= deadline || nowhere_to_send {
                if pending > 0 {
                    tracing::warn!(
                        records = pending,
                        "accounting records left in the spool for the next start"
                    );
                }
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// What the shell counted.
    pub fn stats(&self) -> ShellStats {
        self.stats
    }
}

/// What the core produced for logins and accounting, from the router: authentication
/// requests go to the store thread or RADIUS, accounting records are committed to the
/// spool (all of a pass in one transaction, at the pass's end), finished logins answer
/// their ctl request.
impl crate::router::Aaa for AaaShell {
    fn take(&mut self, core: &mut Core, now: Instant, out: AaaOutput) {
        match out {
            AaaOutput::Authenticate(req) => self.authenticate(core, now, req),
            AaaOutput::Account(r) => self.unsaved.push(r),
            AaaOutput::LastKnown(batch) => self.last_known.extend(batch),
            AaaOutput::Usage(r) => {
                if self.rater.is_some() {
                    self.usage.push(r)
                }
            }
            AaaOutput::LoginDone(login, result) => self.login_done(core, login, result),
        }
    }

    fn end_pass(&mut self, now: Instant) {
        self.commit(now);
    }
}
