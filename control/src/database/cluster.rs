//! The cluster (`[cluster]`, SPEC CLU-2, CLU-3): several nodes on one PostgreSQL, each
//! with its name, its pool ranges and a lease on its sessions.
//!
//! What is in the database (the accounting schema's step 2, so one migration brings
//! both):
//! - `cluster_node`: one row a node: its state (`up`, `stopped` after a clean stop,
//!   `dead` once a survivor took its sessions), its last heartbeat and its lease
//!   (`lease_until`). Times are the database's clock (`now()`), so the nodes' clocks do
//!   not have to agree. A node holds ONE lease for all its sessions, renewed by each
//!   heartbeat: one row written a heartbeat however many sessions it has.
//! - `cluster_session`: one row an open (or closed) session, keyed by Acct-Session-Id:
//!   the node that owns it, its last Start/Interim-Update counters and record. It is
//!   written by the accounting delivery ([`super::accounting`]) in the same transaction
//!   as the record, so it always says what the database has.
//! - `cluster_range`: each node's pool ranges (`inet` bounds: IPv4 and IPv6 alike),
//!   written by the node at start from its `[[pool.range]]`s whose `node` is its name.
//!
//! A dead node (CLU-3): at each heartbeat a node looks for another node whose lease has
//! run out and takes its open sessions over in one transaction (`SELECT ... FOR UPDATE
//! SKIP LOCKED` on the node row: two survivors never take the same node, and no
//! election is needed). The sessions become the survivor's (status `taken`); it closes
//! them with Stops carrying their last interim counters and Acct-Terminate-Cause
//! NAS-Reboot (Tollgate-Disconnect-Cause Restart, the cause the node's own restart
//! recovery gives: to a billing system both mean "the gateway went away"), through its
//! own spool, to PostgreSQL and RADIUS like any record. The delivery stores a record only
//! for a session that is its node's and still open; the dead node's records that come
//! later (its restart's recovered Stops, or ones kept in its spool while the database was
//! down) are superseded: they leave its spool and reach neither PostgreSQL nor RADIUS.
//! Each session is closed exactly once.
//!
//! A node takes over only after it has itself been in touch with the database for a
//! full lease: after a database outage every lease has run out, and the nodes that are
//! alive get that long to renew theirs.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam::channel::{Receiver, Sender, bounded, select, unbounded};
use serde::{Deserialize, Serialize};
use tollgate_control_core::radius::attrs::AcctRecord;
use tollgate_control_core::radius::dict::{AcctStatusType, DisconnectCause};

use tollgate_control_core::gateway::pools::{RangeLoad, least_assigned};

use super::placement::{self, Claim, Outcome, PlaceRequest, Placed, Placement};
use super::{DatabaseConfig, DatabaseError};

/// The cluster tables (step 2 of [`super::accounting::MIGRATIONS`]).
pub const SCHEMA: &str = r#"
CREATE TABLE cluster_node (
    node         TEXT PRIMARY KEY,
    state        TEXT NOT NULL,
    started_at   TIMESTAMPTZ NOT NULL,
    heartbeat_at TIMESTAMPTZ NOT NULL,
    lease_until  TIMESTAMPTZ NOT NULL,
    taken_by     TEXT,
    taken_at     TIMESTAMPTZ
);
CREATE TABLE cluster_session (
    session_id     TEXT PRIMARY KEY,
    owner          TEXT NOT NULL,
    started_on     TEXT NOT NULL,
    user_name      TEXT NOT NULL,
    address        INET,
    status         TEXT NOT NULL,
    octets_up      BIGINT NOT NULL,
    octets_down    BIGINT NOT NULL,
    packets_up     BIGINT NOT NULL,
    packets_down   BIGINT NOT NULL,
    last_record    TEXT NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL,
    taken_from     TEXT,
    closed_by      TEXT,
    closed_at      TIMESTAMPTZ
);
CREATE INDEX cluster_session_owner ON cluster_session (owner) WHERE status <> 'closed';
CREATE TABLE cluster_range (
    pool          TEXT NOT NULL,
    node          TEXT NOT NULL,
    first_address INET NOT NULL,
    last_address  INET NOT NULL,
    PRIMARY KEY (pool, first_address),
    CHECK (family(first_address) = family(last_address) AND first_address <= last_address)
);
"#;

/// `[cluster]`: this node in a cluster of nodes on one PostgreSQL (needs `[database]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// This node's name (default: `[database] node`, else the host name). Pool ranges
    /// whose `node` is this name are this node's.
    #[serde(default)]
    pub node: Option<String>,
    /// How often the node renews its lease, milliseconds.
    #[serde(default = "default_heartbeat_ms")]
    pub heartbeat_ms: u64,
    /// How long a lease lasts without a heartbeat, milliseconds: after that a surviving
    /// node closes this node's sessions. At least three heartbeats.
    #[serde(default = "default_lease_ms")]
    pub lease_ms: u64,
    /// How a login gets its address (CLU-2): `own-range` (default: from this node's own
    /// least-assigned range) or `source-range` (from the least-assigned range of any node
    /// that is up, whose node then serves the session: an upstream steers by source
    /// range, LB-1). See docs/cluster.md.
    #[serde(default)]
    pub placement: Placement,
}

fn default_heartbeat_ms() -> u64 {
    2000
}

fn default_lease_ms() -> u64 {
    15000
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            node: None,
            heartbeat_ms: default_heartbeat_ms(),
            lease_ms: default_lease_ms(),
            placement: Placement::default(),
        }
    }
}

impl ClusterConfig {
    /// Checks the intervals and the name.
    pub fn validate(&self, database: Option<&DatabaseConfig>) -> Result<(), (String, String)> {
        let e = |k: &str, m: &str| Err((format!("cluster.{k}"), m.to_string()));
        let Some(db) = database else {
            return e(
                "node",
                "a cluster needs the PostgreSQL backend: set [database] url (a single node on SQLite needs no [cluster])",
            );
        };
        if self.node.as_deref().is_some_and(str::is_empty) {
            return e("node", "must not be empty");
        }
        if let (Some(c), Some(d)) = (&self.node, &db.node)
            && c != d
        {
            return e(
                "node",
                &format!("{c:?} differs from [database] node {d:?}: name the node once"),
            );
        }
        if self.heartbeat_ms < 100 {
            return e("heartbeat_ms", "must be at least 100");
        }
        if self.lease_ms < 3 * self.heartbeat_ms {
            return e(
                "lease_ms",
                "must be at least three heartbeats (3 x heartbeat_ms)",
            );
        }
        Ok(())
    }
}

/// One pool range of this node, as registered in `cluster_range`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeRange {
    /// The pool's name.
    pub pool: String,
    /// First address.
    pub first: IpAddr,
    /// Last address.
    pub last: IpAddr,
}

/// A node as `show cluster` shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeView {
    /// Its name.
    pub node: String,
    /// `up`, `stopped` or `dead`; `up` with a lapsed lease shows as `lapsed`.
    pub state: String,
    /// Its last heartbeat, Unix milliseconds (the database's clock).
    pub heartbeat_unix_ms: i64,
    /// Its lease's end, Unix milliseconds.
    pub lease_until_unix_ms: i64,
    /// Open sessions it owns.
    pub sessions: u64,
    /// Who took its sessions over (a dead node).
    pub taken_by: Option<String>,
}

/// A range as `show cluster` shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeView {
    /// The pool.
    pub pool: String,
    /// The node it belongs to.
    pub node: String,
    /// First address.
    pub first: String,
    /// Last address.
    pub last: String,
    /// Addresses in it (IPv4 ranges; `None` for IPv6 prefixes too large to count).
    pub size: Option<u64>,
    /// Open sessions with an address in it.
    pub assigned: u64,
}

/// What the cluster thread last saw (refreshed each heartbeat).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterView {
    /// This node's name.
    pub node: String,
    /// Whether the last heartbeat reached the database.
    pub reachable: bool,
    /// Heartbeat and lease, milliseconds.
    pub heartbeat_ms: u64,
    /// The lease.
    pub lease_ms: u64,
    /// Heartbeats that renewed the lease.
    pub heartbeats: u64,
    /// Heartbeats that failed (the database down or restarting).
    pub failed_heartbeats: u64,
    /// Times this node found its lease taken by a survivor.
    pub leases_lost: u64,
    /// Nodes this node took over.
    pub takeovers: u64,
    /// Sessions this node closed for dead nodes.
    pub sessions_taken: u64,
    /// `own-range` or `source-range`.
    #[serde(default)]
    pub placement: Placement,
    /// Logins this node placed (source-range), on any node.
    #[serde(default)]
    pub placements: u64,
    /// Logins it could not place (the database unreachable, no free address).
    #[serde(default)]
    pub placements_failed: u64,
    /// Placements other nodes made on this node that it claimed to open.
    #[serde(default)]
    pub placements_claimed: u64,
    /// Every node.
    pub nodes: Vec<NodeView>,
    /// Every node's ranges.
    pub ranges: Vec<RangeView>,
    /// Per pool, the range a login should get its next address from where an upstream
    /// device steers by source range (SES-2 across nodes: the least-assigned range of a
    /// node that is up).
    #[serde(default)]
    pub next: Vec<NextRange>,
}

/// Where the next login of a pool goes, for an upstream that steers by source range.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NextRange {
    /// The pool.
    pub pool: String,
    /// The node.
    pub node: String,
    /// The range's first address.
    pub first: String,
}

/// For each pool of `ranges` (sorted by pool), its least-assigned range of a node that
/// is up ([`least_assigned`]).
pub fn next_ranges(nodes: &[NodeView], ranges: &[RangeView]) -> Vec<NextRange> {
    let mut out = Vec::new();
    for pool in ranges.chunk_by(|a, b| a.pool == b.pool) {
        let loads: Vec<RangeLoad> = pool
            .iter()
            .map(|r| RangeLoad {
                up: nodes.iter().any(|n| n.node == r.node && n.state == "up"),
                assigned: r.assigned,
                size: r.size.unwrap_or(u64::MAX),
            })
            .collect();
        if let Some(i) = least_assigned(&loads) {
            out.push(NextRange {
                pool: pool[i].pool.clone(),
                node: pool[i].node.clone(),
                first: pool[i].first.clone(),
            });
        }
    }
    out
}

/// The cluster thread: heartbeats, takeovers, the view.
pub struct Cluster {
    node: String,
    view: Arc<Mutex<ClusterView>>,
    placement: Placement,
    stops: Receiver<Vec<AcctRecord>>,
    jobs: Sender<Job>,
    placed: Receiver<(u64, Result<Placed, String>)>,
    claims: Receiver<Vec<Claim>>,
    quit: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cluster")
    }
}

impl Cluster {
    /// Starts the thread for node `cfg.node_name()` (`db` has the name resolved).
    pub fn start(
        db: &DatabaseConfig,
        cfg: &ClusterConfig,
        ranges: Vec<NodeRange>,
    ) -> Result<Cluster, DatabaseError> {
        let node = db.node_name();
        let view = Arc::new(Mutex::new(ClusterView {
            node: node.clone(),
            heartbeat_ms: cfg.heartbeat_ms,
            lease_ms: cfg.lease_ms,
            placement: cfg.placement,
            ..ClusterView::default()
        }));
        let (stops_tx, stops_rx) = unbounded();
        let (quit_tx, quit_rx) = bounded(1);
        let (jobs_tx, jobs_rx) = unbounded();
        let (placed_tx, placed_rx) = unbounded();
        let (claims_tx, claims_rx) = unbounded();
        let mut member = Member {
            db: db.clone(),
            node,
            heartbeat: Duration::from_millis(cfg.heartbeat_ms),
            lease: Duration::from_millis(cfg.lease_ms),
            ranges,
            client: None,
            registered: false,
            in_touch_since: None,
            emitted: HashSet::new(),
            view: Arc::clone(&view),
            stops: stops_tx,
            placement: cfg.placement,
            placed: placed_tx,
            claims: claims_tx,
            outcomes: Vec::new(),
        };
        let thread = std::thread::Builder::new()
            .name("tollgate-cluster".into())
            .spawn(move || {
                let mut next_beat = Instant::now();
                loop {
                    // The heartbeat first when due, however many logins wait.
                    if Instant::now() >= next_beat {
                        member.beat();
                        next_beat = Instant::now() + member.heartbeat;
                    }
                    let wait = next_beat.saturating_duration_since(Instant::now());
                    select! {
                        recv(quit_rx) -> _ => break,
                        recv(jobs_rx) -> job => match job {
                            Ok(j) => member.job(j),
                            Err(_) => break,
                        },
                        default(wait) => {}
                    }
                }
                member.leave();
            })
            .map_err(|e| DatabaseError::Unreachable {
                target: db.target(),
                message: format!("cannot start the cluster thread: {e}"),
            })?;
        Ok(Cluster {
            node: db.node_name(),
            view,
            placement: cfg.placement,
            stops: stops_rx,
            jobs: jobs_tx,
            placed: placed_rx,
            claims: claims_rx,
            quit: Some(quit_tx),
            thread: Some(thread),
        })
    }

    /// Stops of sessions taken over from dead nodes, for the spool.
    pub fn take_stops(&self) -> Vec<AcctRecord> {
        let mut all = Vec::new();
        while let Ok(b) = self.stops.try_recv() {
            all.extend(b);
        }
        all
    }

    /// This node's name.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// `[cluster] placement`.
    pub fn placement(&self) -> Placement {
        self.placement
    }

    /// Asks the cluster thread to place a login (source-range); the answer comes from
    /// [`Self::take_placed`]. False when the thread has stopped.
    pub fn place(&self, req: PlaceRequest) -> bool {
        self.jobs.send(Job::Place(req)).is_ok()
    }

    /// Answers to [`Self::place`]: the login and where it went.
    pub fn take_placed(&self) -> Vec<(u64, Result<Placed, String>)> {
        self.placed.try_iter().collect()
    }

    /// Placements other nodes (or this one) made on this node, to open.
    pub fn take_claims(&self) -> Vec<Claim> {
        self.claims.try_iter().flatten().collect()
    }

    /// What became of a claimed placement (written at once, or at the next heartbeat
    /// while the database cannot be reached).
    pub fn placement_done(&self, o: Outcome) {
        let _ = self.jobs.send(Job::Record(o));
    }

    /// What the thread last saw.
    pub fn view(&self) -> ClusterView {
        self.view.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(q) = self.quit.take() {
            let _ = q.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Work for the cluster thread between heartbeats.
enum Job {
    /// Place a login (source-range).
    Place(PlaceRequest),
    /// Record what became of a claimed placement.
    Record(Outcome),
}

struct Member {
    db: DatabaseConfig,
    node: String,
    heartbeat: Duration,
    lease: Duration,
    ranges: Vec<NodeRange>,
    client: Option<postgres::Client>,
    registered: bool,
    /// Since when every heartbeat reached the database (takeovers wait a lease).
    in_touch_since: Option<Instant>,
    /// Sessions whose takeover Stops this process already handed to the spool.
    emitted: HashSet<String>,
    view: Arc<Mutex<ClusterView>>,
    stops: Sender<Vec<AcctRecord>>,
    placement: Placement,
    placed: Sender<(u64, Result<Placed, String>)>,
    claims: Sender<Vec<Claim>>,
    /// Outcomes of claimed placements not yet written.
    outcomes: Vec<Outcome>,
}

/// A statement's error, for the log.
fn pg(context: &'static str) -> impl Fn(postgres::Error) -> String {
    move |e| format!("{context}: {}", super::error_chain(&e))
}

impl Member {
    fn update_view(&self, f: impl FnOnce(&mut ClusterView)) {
        if let Ok(mut v) = self.view.lock() {
            f(&mut v);
        }
    }

    /// One heartbeat: connect, register, renew the lease, take dead nodes over, refresh
    /// the view. A failure drops the connection for the next one.
    fn beat(&mut self) {
        match self.try_beat() {
            Ok(()) => self.update_view(|v| {
                v.reachable = true;
                v.heartbeats += 1;
            }),
            Err(e) => {
                self.client = None;
                self.in_touch_since = None;
                let mut n = 0;
                self.update_view(|v| {
                    v.reachable = false;
                    v.failed_heartbeats += 1;
                    n = v.failed_heartbeats;
                });
                if n == 1 || n.is_multiple_of(100) {
                    tracing::warn!(node = %self.node, error = %e, failed_heartbeats = n, "cluster heartbeat did not reach PostgreSQL; retrying");
                }
            }
        }
    }

    /// Connects (and registers) when there is no connection.
    fn connected(&mut self) -> Result<&mut postgres::Client, String> {
        if self.client.is_none() {
            let c = super::accounting::open(&self.db)
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("PostgreSQL {} cannot be reached", self.db.target()))?;
            self.client = Some(c);
        }
        self.client.as_mut().ok_or_else(|| "no connection".into())
    }

    /// A placement to make or an outcome to write, between heartbeats.
    fn job(&mut self, job: Job) {
        match job {
            Job::Place(req) => {
                let stale_ms = 3.0 * self.heartbeat.as_millis() as f64;
                let lease_ms = self.lease.as_millis() as f64;
                let me = self.node.clone();
                let r = self
                    .connected()
                    .and_then(|c| placement::place(c, &me, &req, stale_ms, lease_ms));
                match &r {
                    Ok(p) => {
                        tracing::info!(node = %self.node, login = req.login, user = %req.user, mobile_id = ?req.mobile_id, placed_on = %p.node, address = %p.address, resumed = p.resumed, "login placed by source range");
                        self.update_view(|v| v.placements += 1);
                    }
                    Err(e) => {
                        self.client = None;
                        tracing::warn!(node = %self.node, login = req.login, user = %req.user, error = %e, "login not placed");
                        self.update_view(|v| v.placements_failed += 1);
                    }
                }
                let _ = self.placed.send((req.login, r));
            }
            Job::Record(o) => {
                self.outcomes.push(o);
                if let Err(e) = self.write_outcomes() {
                    self.client = None;
                    tracing::warn!(node = %self.node, error = %e, "a placement's outcome not written; retried at the next heartbeat");
                }
            }
        }
    }

    fn write_outcomes(&mut self) -> Result<(), String> {
        if self.outcomes.is_empty() {
            return Ok(());
        }
        let outcomes = std::mem::take(&mut self.outcomes);
        let r = self
            .connected()
            .and_then(|c| placement::record(c, &outcomes));
        if r.is_err() {
            self.outcomes = outcomes;
        }
        r
    }

    /// The placements made on this node, to the shell.
    fn claim(&mut self) -> Result<(), String> {
        let lease_ms = self.lease.as_millis() as f64;
        let me = self.node.clone();
        let claims = placement::claim(self.connected()?, &me, lease_ms)?;
        if !claims.is_empty() {
            self.update_view(|v| v.placements_claimed += claims.len() as u64);
            let _ = self.claims.send(claims);
        }
        Ok(())
    }

    fn try_beat(&mut self) -> Result<(), String> {
        if self.client.is_none() {
            let c = super::accounting::open(&self.db)
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("PostgreSQL {} cannot be reached", self.db.target()))?;
            self.client = Some(c);
        }
        if !self.registered {
            self.register()?;
            self.registered = true;
        }
        let lease_ms = self.lease.as_millis() as f64;
        let node = self.node.clone();
        let client = self.client.as_mut().ok_or("no connection")?;
        let renewed = client
            .execute(
                "UPDATE cluster_node SET heartbeat_at = now(),
                     lease_until = now() + $2::float8 * interval '1 millisecond'
                 WHERE node = $1 AND state = 'up'",
                &[&node, &lease_ms],
            )
            .map_err(pg("renewing the lease"))?;
        if renewed == 0 {
            // A survivor found the lease run out and closed this node's sessions.
            self.registered = false;
            self.update_view(|v| v.leases_lost += 1);
            tracing::error!(node = %self.node, "this node's lease ran out and a surviving node closed its sessions; registering again (records of those sessions are superseded)");
            self.register()?;
            self.registered = true;
        }
        let now = Instant::now();
        let since = *self.in_touch_since.get_or_insert(now);
        if now.duration_since(since) >= self.lease {
            self.take_over()?;
        }
        self.resend_taken()?;
        self.write_outcomes()?;
        if self.placement == Placement::SourceRange {
            self.claim()?;
        }
        self.refresh()
    }

    /// Marks the node up with a fresh lease and writes its ranges.
    fn register(&mut self) -> Result<(), String> {
        let lease_ms = self.lease.as_millis() as f64;
        let client = self.client.as_mut().ok_or("no connection")?;
        let mut tx = client.transaction().map_err(pg("beginning"))?;
        tx.execute(
            "INSERT INTO cluster_node (node, state, started_at, heartbeat_at, lease_until)
             VALUES ($1, 'up', now(), now(), now() + $2::float8 * interval '1 millisecond')
             ON CONFLICT (node) DO UPDATE SET state = 'up', started_at = now(),
                 heartbeat_at = now(), lease_until = EXCLUDED.lease_until,
                 taken_by = NULL, taken_at = NULL",
            &[&self.node, &lease_ms],
        )
        .map_err(pg("registering the node"))?;
        tx.execute("DELETE FROM cluster_range WHERE node = $1", &[&self.node])
            .map_err(pg("clearing the node's ranges"))?;
        for r in &self.ranges {
            tx.execute(
                "INSERT INTO cluster_range (pool, node, first_address, last_address)
                 VALUES ($1, $2, $3::text::inet, $4::text::inet)
                 ON CONFLICT (pool, first_address) DO UPDATE
                     SET node = EXCLUDED.node, last_address = EXCLUDED.last_address",
                &[
                    &r.pool,
                    &self.node,
                    &r.first.to_string(),
                    &r.last.to_string(),
                ],
            )
            .map_err(pg("registering a pool range"))?;
        }
        tx.commit().map_err(pg("committing the registration"))?;
        tracing::info!(node = %self.node, ranges = self.ranges.len(), "registered in the cluster");
        Ok(())
    }

    /// Takes the open sessions of every node whose lease ran out, one transaction.
    fn take_over(&mut self) -> Result<(), String> {
        let client = self.client.as_mut().ok_or("no connection")?;
        let mut tx = client.transaction().map_err(pg("beginning"))?;
        let lapsed: Vec<(String, String)> = tx
            .query(
                "SELECT node, state FROM cluster_node
                 WHERE node <> $1 AND state IN ('up', 'stopped') AND lease_until < now()
                 FOR UPDATE SKIP LOCKED",
                &[&self.node],
            )
            .map_err(pg("looking for lapsed leases"))?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let mut dead = Vec::new();
        let mut taken = 0u64;
        for (n, state) in &lapsed {
            let sessions = tx
                .execute(
                    "UPDATE cluster_session SET owner = $1, status = 'taken', taken_from = $2,
                         updated_at = now()
                     WHERE owner = $2 AND status IN ('open', 'taken')",
                    &[&self.node, n],
                )
                .map_err(pg("taking sessions over"))?;
            // A node that stopped cleanly with nothing open stays `stopped`.
            if state == "stopped" && sessions == 0 {
                continue;
            }
            tx.execute(
                "UPDATE cluster_node SET state = 'dead', taken_by = $1, taken_at = now()
                 WHERE node = $2",
                &[&self.node, n],
            )
            .map_err(pg("marking a node dead"))?;
            taken += sessions;
            dead.push(n.clone());
        }
        tx.commit().map_err(pg("committing the takeover"))?;
        if dead.is_empty() {
            return Ok(());
        }
        tracing::warn!(node = %self.node, dead = ?dead, sessions = taken, "took over the sessions of nodes whose lease ran out; closing them with their last interim counters");
        self.update_view(|v| {
            v.takeovers += dead.len() as u64;
            v.sessions_taken += taken;
        });
        Ok(())
    }

    /// Stops for the sessions taken over and not yet closed (the takeover just done, or
    /// one this node committed before it crashed without spooling the Stops). A Stop
    /// spooled twice is stored once: the second finds the session closed.
    fn resend_taken(&mut self) -> Result<(), String> {
        let client = self.client.as_mut().ok_or("no connection")?;
        let rows = client
            .query(
                "SELECT session_id, last_record, octets_up, octets_down, packets_up,
                        packets_down, (extract(epoch FROM now()))::bigint
                 FROM cluster_session WHERE owner = $1 AND status = 'taken'",
                &[&self.node],
            )
            .map_err(pg("reading the sessions taken over"))?;
        let mut stops = Vec::new();
        for r in rows {
            let id: String = r.get(0);
            if self.emitted.contains(&id) {
                continue;
            }
            let body: String = r.get(1);
            let Ok(last) = serde_json::from_str::<AcctRecord>(&body) else {
                tracing::error!(session = %id, "a session taken over has a last record that does not read; it stays open in the database");
                continue;
            };
            let now_unix: i64 = r.get(6);
            let c = |i: usize| r.get::<_, i64>(i).max(0) as u64;
            stops.push(takeover_stop(
                last,
                [c(2), c(3), c(4), c(5)],
                now_unix.max(0) as u64,
            ));
            self.emitted.insert(id);
        }
        if !stops.is_empty() {
            let _ = self.stops.send(stops);
        }
        Ok(())
    }

    fn refresh(&mut self) -> Result<(), String> {
        let client = self.client.as_mut().ok_or("no connection")?;
        let nodes: Vec<NodeView> = client
            .query(
                "SELECT n.node, n.state, lease_until >= now(),
                        (extract(epoch FROM heartbeat_at) * 1000)::bigint,
                        (extract(epoch FROM lease_until) * 1000)::bigint, taken_by,
                        (SELECT count(*) FROM cluster_session s
                         WHERE s.owner = n.node AND s.status <> 'closed')
                 FROM cluster_node n ORDER BY n.node",
                &[],
            )
            .map_err(pg("reading the nodes"))?
            .iter()
            .map(|r| {
                let state: String = r.get(1);
                let live: bool = r.get(2);
                NodeView {
                    node: r.get(0),
                    state: if state == "up" && !live {
                        "lapsed".into()
                    } else {
                        state
                    },
                    heartbeat_unix_ms: r.get(3),
                    lease_until_unix_ms: r.get(4),
                    taken_by: r.get(5),
                    sessions: r.get::<_, i64>(6).max(0) as u64,
                }
            })
            .collect();
        let ranges: Vec<RangeView> = client
            .query(
                "SELECT pool, node, host(first_address), host(last_address),
                        CASE WHEN family(first_address) = 4
                             THEN last_address - first_address + 1 END,
                        (SELECT count(*) FROM cluster_session s WHERE s.status <> 'closed'
                         AND (s.address BETWEEN r.first_address AND r.last_address
                              OR s.ipv6_prefix BETWEEN r.first_address AND r.last_address))
                 FROM cluster_range r ORDER BY pool, first_address",
                &[],
            )
            .map_err(pg("reading the ranges"))?
            .iter()
            .map(|r| RangeView {
                pool: r.get(0),
                node: r.get(1),
                first: r.get(2),
                last: r.get(3),
                size: r.get::<_, Option<i64>>(4).map(|v| v.max(0) as u64),
                assigned: r.get::<_, i64>(5).max(0) as u64,
            })
            .collect();
        let next = next_ranges(&nodes, &ranges);
        self.update_view(|v| {
            v.nodes = nodes;
            v.ranges = ranges;
            v.next = next;
        });
        Ok(())
    }

    /// A clean stop: the node says so (its lease still runs out as usual).
    fn leave(&mut self) {
        if let Some(c) = self.client.as_mut() {
            let _ = c.execute(
                "UPDATE cluster_node SET state = 'stopped' WHERE node = $1 AND state = 'up'",
                &[&self.node],
            );
        }
    }
}

/// The Stop a survivor writes for a session it took over: the last Start or
/// Interim-Update record with its counters, Acct-Terminate-Cause NAS-Reboot; the event
/// time is when the survivor closes it, the session time the last record's.
pub fn takeover_stop(last: AcctRecord, counters: [u64; 4], now_unix: u64) -> AcctRecord {
    let [octets_up, octets_down, packets_up, packets_down] = counters;
    AcctRecord {
        status: AcctStatusType::Stop,
        cause: Some(DisconnectCause::Restart),
        event_time: now_unix.max(last.event_time),
        counters: tollgate_control_core::radius::attrs::Counters {
            octets_up,
            octets_down,
            packets_up,
            packets_down,
        },
        ..last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_takeover_stop_carries_the_last_interim_counters_and_nas_reboot() {
        let last = AcctRecord {
            status: AcctStatusType::InterimUpdate,
            session_id: "gw3.19aa-1".into(),
            user_name: "ann".into(),
            framed_ip: Some("10.3.0.1".parse().unwrap()),
            calling_station_id: None,
            class: vec![b"c".to_vec()],
            counters: Default::default(),
            session_time_s: 42,
            cause: None,
            event_time: 1_700_000_000,
            access: None,
            ipv6: None,
            tunnel: None,
        };
        let s = takeover_stop(last.clone(), [1, 2, 3, 4], 1_700_000_010);
        assert_eq!(s.status, AcctStatusType::Stop);
        assert_eq!(s.cause, Some(DisconnectCause::Restart));
        assert_eq!(
            s.cause.unwrap().terminate_cause(),
            tollgate_control_core::radius::dict::TerminateCause::NasReboot
        );
        assert_eq!(
            (s.counters.octets_up, s.counters.octets_down),
            (1, 2),
            "the counters"
        );
        assert_eq!((s.counters.packets_up, s.counters.packets_down), (3, 4));
        assert_eq!((s.session_time_s, s.event_time), (42, 1_700_000_010));
        assert_eq!((s.session_id, s.class), (last.session_id, last.class));
    }

    #[test]
    fn the_next_range_is_the_least_assigned_of_a_node_that_is_up() {
        let node = |n: &str, state: &str| NodeView {
            node: n.into(),
            state: state.into(),
            ..NodeView::default()
        };
        let range = |pool: &str, n: &str, first: &str, assigned| RangeView {
            pool: pool.into(),
            node: n.into(),
            first: first.into(),
            last: first.into(),
            size: Some(10),
            assigned,
        };
        let nodes = [node("gw1", "up"), node("gw2", "lapsed"), node("gw3", "up")];
        let ranges = [
            range("mobile", "gw1", "10.1.0.1", 3),
            range("mobile", "gw2", "10.2.0.1", 0),
            range("mobile", "gw3", "10.3.0.1", 2),
            range("office", "gw1", "10.9.0.1", 0),
        ];
        assert_eq!(
            next_ranges(&nodes, &ranges),
            [
                NextRange {
                    pool: "mobile".into(),
                    node: "gw3".into(),
                    first: "10.3.0.1".into()
                },
                NextRange {
                    pool: "office".into(),
                    node: "gw1".into(),
                    first: "10.9.0.1".into()
                }
            ]
        );
    }

    #[test]
    fn placement_reads_in_the_operators_words() {
        let c: ClusterConfig = toml::from_str("placement = \"source-range\"").unwrap();
        assert_eq!(c.placement, Placement::SourceRange);
        let c: ClusterConfig = toml::from_str("").unwrap();
        assert_eq!(c.placement, Placement::OwnRange);
        let e = toml::from_str::<ClusterConfig>("placement = \"nearest\"").unwrap_err();
        assert!(e.to_string().contains("own-range"), "{e}");
    }

    #[test]
    fn a_cluster_needs_postgresql_and_sane_intervals() {
        let c = ClusterConfig::default();
        assert_eq!(c.validate(None).unwrap_err().0, "cluster.node");
        let db = DatabaseConfig::new("postgres://tg@localhost/x");
        c.validate(Some(&db)).unwrap();
        let short = ClusterConfig {
            lease_ms: 2000,
            heartbeat_ms: 1000,
            ..c.clone()
        };
        assert_eq!(short.validate(Some(&db)).unwrap_err().0, "cluster.lease_ms");
        let two = ClusterConfig {
            node: Some("a".into()),
            ..c
        };
        let db_b = DatabaseConfig {
            node: Some("b".into()),
            ..db
        };
        assert_eq!(two.validate(Some(&db_b)).unwrap_err().0, "cluster.node");
    }
}
