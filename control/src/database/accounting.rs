//! Accounting records into the cluster's PostgreSQL (CNT-2 across nodes): every record
//! is committed to the node's local spool first (the spool survives the database being
//! down); [`Delivery`] then stores it in the `accounting_record` table on its own thread
//! and says which records are committed there, and only those leave the spool.
//!
//! A record's key is its spool's identity (a random id made when the spool was created,
//! see [`crate::spool`]) and its row id in that spool: unique across the nodes and
//! across restarts. The insert is `ON CONFLICT DO NOTHING` on that key, so a record
//! delivered again (its commit reached the database, its answer did not reach the node)
//! is stored once. A batch is one transaction. When the database is down or restarts,
//! the batch fails as a whole, the connection is dropped and made again for the next
//! batch; the records stay in the spool and go again after its back-off.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;

use crossbeam::channel::{Receiver, Sender, unbounded};
use tollgate_control_core::radius::attrs::AcctRecord;

use super::{DatabaseConfig, DatabaseError};
use crate::migrate::{self, Step};
use crate::spool::SpoolId;

/// The table that records this store's schema steps in the database.
pub const HISTORY: &str = "tollgate_accounting_history";

/// The schema (see [`crate::migrate`]; add a step, never edit one).
pub const MIGRATIONS: &[Step] = &[
    Step {
        version: 1,
        name: "accounting_record",
        sql: r#"
CREATE TABLE accounting_record (
    spool       TEXT NOT NULL,
    id          INTEGER NOT NULL,
    node        TEXT NOT NULL,
    session_id  TEXT NOT NULL,
    status      TEXT NOT NULL,
    body        TEXT NOT NULL,
    stored_unix INTEGER NOT NULL,
    PRIMARY KEY (spool, id)
);
CREATE INDEX accounting_record_session ON accounting_record (session_id);
"#,
    },
    Step {
        version: 2,
        name: "cluster_node_session_range",
        sql: super::cluster::SCHEMA,
    },
    Step {
        version: 3,
        name: "cluster_session_ipv6_prefix",
        sql: "ALTER TABLE cluster_session ADD COLUMN ipv6_prefix INET;",
    },
    Step {
        version: 4,
        name: "cluster_placement",
        sql: super::placement::SCHEMA,
    },
];

/// What one batch came to.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Committed in the database (now or before): delete them from the spool.
    pub committed: Vec<SpoolId>,
    /// Not committed: retry later.
    pub failed: Vec<SpoolId>,
    /// Superseded: records of a session that another node took over (or that is
    /// already closed), not stored; they leave the spool without going to RADIUS.
    pub superseded: Vec<SpoolId>,
}

/// What the delivery counted (read by `show accounting` and the metrics).
#[derive(Debug, Default)]
pub struct DeliveryStats {
    /// Records committed now.
    pub stored: AtomicU64,
    /// Records found already committed (delivered again).
    pub duplicates: AtomicU64,
    /// Records of sessions another node took over (or already closed): not stored.
    pub superseded: AtomicU64,
    /// Batches that failed (the database down, restarting, refusing).
    pub failed_batches: AtomicU64,
    /// Connections made (the first and each one after a failure).
    pub connects: AtomicU64,
}

/// The delivery thread and its two channels.
pub struct Delivery {
    batches: Option<Sender<Vec<(SpoolId, AcctRecord)>>>,
    outcomes: Receiver<Outcome>,
    stats: Arc<DeliveryStats>,
    target: String,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("target", &self.target)
            .finish()
    }
}

/// Opens the database and brings the schema up to date. A refusal (wrong password,
/// unknown database) or a schema from a newer Tollgate is an error; a database that
/// cannot be reached is not (`Ok(None)`): the spool keeps the records meanwhile.
pub(super) fn open(cfg: &DatabaseConfig) -> Result<Option<postgres::Client>, DatabaseError> {
    let mut client = match cfg.connect() {
        Ok(c) => c,
        Err(e) if e.is_transient() => return Ok(None),
        Err(e) => return Err(e),
    };
    let name = format!("{} (accounting records)", cfg.target());
    match migrate::migrate_postgres(&mut client, &name, HISTORY, MIGRATIONS) {
        Ok(_) => Ok(Some(client)),
        Err(migrate::MigrateError::Postgres { source, .. })
            if source.as_db_error().is_none() || source.is_closed() =>
        {
            Ok(None)
        }
        Err(e) => Err(DatabaseError::Migration(e)),
    }
}

impl Delivery {
    /// Starts delivering for the spool with identity `spool`. Errors at start: a URL that
    /// does not read, a refusal, a schema from a newer Tollgate. A database that cannot
    /// be reached now is retried with every batch.
    pub fn start(cfg: &DatabaseConfig, spool: &str) -> Result<Delivery, DatabaseError> {
        let target = cfg.target();
        let first = open(cfg)?;
        if first.is_none() {
            tracing::warn!(database = %target, "PostgreSQL cannot be reached at start; accounting records wait in the spool and delivery is retried");
        }
        let stats = Arc::new(DeliveryStats::default());
        let (batch_tx, batch_rx) = unbounded::<Vec<(SpoolId, AcctRecord)>>();
        let (out_tx, out_rx) = unbounded();
        let mut worker = Worker {
            cfg: cfg.clone(),
            node: cfg.node_name(),
            spool: spool.to_string(),
            target: target.clone(),
            client: first,
            stats: Arc::clone(&stats),
        };
        if worker.client.is_some() {
            stats.connects.fetch_add(1, Ordering::Relaxed);
        }
        let thread = std::thread::Builder::new()
            .name("tollgate-acct-db".into())
            .spawn(move || {
                while let Ok(batch) = batch_rx.recv() {
                    if out_tx.send(worker.deliver(batch)).is_err() {
                        return;
                    }
                }
            })
            .map_err(|e| DatabaseError::Unreachable {
                target: target.clone(),
                message: format!("cannot start the delivery thread: {e}"),
            })?;
        Ok(Delivery {
            batches: Some(batch_tx),
            outcomes: out_rx,
            stats,
            target,
            thread: Some(thread),
        })
    }

    /// Hands a batch to the thread; its [`Outcome`] comes back through [`Self::outcome`].
    pub fn send(&self, batch: Vec<(SpoolId, AcctRecord)>) {
        if let Some(tx) = &self.batches {
            // The thread only ends when this side is dropped.
            let _ = tx.send(batch);
        }
    }

    /// A finished batch, if there is one.
    pub fn outcome(&self) -> Option<Outcome> {
        self.outcomes.try_recv().ok()
    }

    /// What it counted.
    pub fn stats(&self) -> &DeliveryStats {
        &self.stats
    }

    /// `USER@HOST:PORT/DBNAME`.
    pub fn target(&self) -> &str {
        &self.target
    }
}

impl Drop for Delivery {
    fn drop(&mut self) {
        self.batches = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Worker {
    cfg: DatabaseConfig,
    node: String,
    spool: String,
    target: String,
    client: Option<postgres::Client>,
    stats: Arc<DeliveryStats>,
}

impl Worker {
    fn deliver(&mut self, batch: Vec<(SpoolId, AcctRecord)>) -> Outcome {
        let ids: Vec<SpoolId> = batch.iter().map(|(id, _)| *id).collect();
        match self.insert(&batch) {
            Ok(Inserted {
                stored,
                duplicates,
                superseded,
            }) => {
                self.stats.stored.fetch_add(stored, Ordering::Relaxed);
                self.stats
                    .duplicates
                    .fetch_add(duplicates, Ordering::Relaxed);
                self.stats
                    .superseded
                    .fetch_add(superseded.len() as u64, Ordering::Relaxed);
                Outcome {
                    committed: ids
                        .into_iter()
                        .filter(|i| !superseded.contains(i))
                        .collect(),
                    failed: Vec::new(),
                    superseded,
                }
            }
            Err(e) => {
                // Whatever the connection's state, a fresh one for the next batch.
                self.client = None;
                let n = self.stats.failed_batches.fetch_add(1, Ordering::Relaxed) + 1;
                if n == 1 || n.is_multiple_of(100) {
                    tracing::warn!(database = %self.target, error = %e, failed_batches = n, records = ids.len(), "accounting records not delivered to PostgreSQL; they stay in the spool and are retried");
                }
                Outcome {
                    committed: Vec::new(),
                    failed: ids,
                    superseded: Vec::new(),
                }
            }
        }
    }

    fn insert(&mut self, batch: &[(SpoolId, AcctRecord)]) -> Result<Inserted, DatabaseError> {
        if self.client.is_none() {
            let c = open(&self.cfg)?.ok_or_else(|| DatabaseError::Unreachable {
                target: self.target.clone(),
                message: "no connection".into(),
            })?;
            self.stats.connects.fetch_add(1, Ordering::Relaxed);
            if self.stats.failed_batches.load(Ordering::Relaxed) > 0 {
                tracing::info!(database = %self.target, "PostgreSQL reached again; delivering the spooled accounting records");
            }
            self.client = Some(c);
        }
        let Some(client) = self.client.as_mut() else {
            return Ok(Inserted::default());
        };
        let q = |context: &str| {
            let target = self.target.clone();
            let context = context.to_string();
            move |source| DatabaseError::Query {
                target,
                context,
                source,
            }
        };
        let now = unix_now();
        let mut tx = client.transaction().map_err(q("beginning a transaction"))?;
        let known = tx
            .prepare("SELECT 1 FROM accounting_record WHERE spool = $1 AND id = $2")
            .map_err(q("preparing the lookup"))?;
        let owner = tx
            .prepare("SELECT owner, status FROM cluster_session WHERE session_id = $1 FOR UPDATE")
            .map_err(q("preparing the session lookup"))?;
        let st = tx
            .prepare(
                "INSERT INTO accounting_record
                     (spool, id, node, session_id, status, body, stored_unix)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (spool, id) DO NOTHING",
            )
            .map_err(q("preparing the insert"))?;
        let session = tx
            .prepare(
                "INSERT INTO cluster_session (session_id, owner, started_on, user_name, address,
                     status, octets_up, octets_down, packets_up, packets_down, last_record,
                     updated_at, closed_by, closed_at, ipv6_prefix)
                 VALUES ($1, $2, $2, $3, $4::text::inet, $5, $6, $7, $8, $9, $10, now(),
                     CASE WHEN $5 = 'closed' THEN $2 END,
                     CASE WHEN $5 = 'closed' THEN now() END, $11::text::inet)
                 ON CONFLICT (session_id) DO UPDATE SET status = EXCLUDED.status,
                     ipv6_prefix = COALESCE(EXCLUDED.ipv6_prefix, cluster_session.ipv6_prefix),
                     octets_up = EXCLUDED.octets_up, octets_down = EXCLUDED.octets_down,
                     packets_up = EXCLUDED.packets_up, packets_down = EXCLUDED.packets_down,
                     last_record = CASE WHEN EXCLUDED.status = 'closed'
                         THEN cluster_session.last_record ELSE EXCLUDED.last_record END,
                     updated_at = now(), closed_by = EXCLUDED.closed_by,
                     closed_at = EXCLUDED.closed_at",
            )
            .map_err(q("preparing the session update"))?;
        let mut out = Inserted::default();
        for (id, r) in batch {
            if tx
                .query_opt(&known, &[&self.spool, id])
                .map_err(q("looking a record up"))?
                .is_some()
            {
                out.duplicates += 1;
                continue;
            }
            // Only the node that owns a session, while it is open, writes its records:
            // a session a survivor took over (and closed) is not closed again.
            if let Some(row) = tx
                .query_opt(&owner, &[&r.session_id])
                .map_err(q("looking a session up"))?
            {
                let (who, status): (String, String) = (row.get(0), row.get(1));
                if who != self.node || status == "closed" {
                    out.superseded.push(*id);
                    tracing::info!(session = %r.session_id, record = r.status.name(), owner = %who, %status, "accounting record superseded: the session was taken over by a surviving node");
                    continue;
                }
            }
            let body = serde_json::to_string(r).unwrap_or_default();
            let n = tx
                .execute(
                    &st,
                    &[
                        &self.spool,
                        id,
                        &self.node,
                        &r.session_id,
                        &r.status.name(),
                        &body,
                        &now,
                    ],
                )
                .map_err(q("storing an accounting record"))?;
            if n == 1 {
                out.stored += 1;
            } else {
                out.duplicates += 1;
            }
            let status = match r.status {
                tollgate_control_core::radius::dict::AcctStatusType::Stop => "closed",
                _ => "open",
            };
            let c = |v: u64| v.min(i64::MAX as u64) as i64;
            tx.execute(
                &session,
                &[
                    &r.session_id,
                    &self.node,
                    &r.user_name,
                    &r.framed_ip.map(|a| a.to_string()),
                    &status,
                    &c(r.counters.octets_up),
                    &c(r.counters.octets_down),
                    &c(r.counters.packets_up),
                    &c(r.counters.packets_down),
                    &body,
                    // The /64's first address: inside its node's `[[ipv6.range]]`.
                    &r.ipv6
                        .as_ref()
                        .and_then(|v| v.framed_prefix)
                        .map(|(a, _)| a.to_string()),
                ],
            )
            .map_err(q("updating the session"))?;
        }
        tx.commit().map_err(q("committing accounting records"))?;
        Ok(out)
    }
}

/// What one batch's transaction did.
#[derive(Debug, Default)]
struct Inserted {
    stored: u64,
    duplicates: u64,
    superseded: Vec<SpoolId>,
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spool::{Spool, SpoolOptions};
    use std::time::Duration;
    use tollgate_control_core::radius::attrs::Counters;
    use tollgate_control_core::radius::dict::AcctStatusType;
    use tollgate_dataplane::time::Instant;
    use tollgate_testkit::postgres::Postgres;

    fn rec(session: u32, status: AcctStatusType) -> AcctRecord {
        AcctRecord {
            status,
            session_id: format!("s{session:04}"),
            user_name: format!("user{session}"),
            framed_ip: None,
            calling_station_id: None,
            class: Vec::new(),
            counters: Counters {
                octets_up: u64::from(session),
                octets_down: 2 * u64::from(session),
                packets_up: 1,
                packets_down: 2,
            },
            session_time_s: 60,
            cause: None,
            event_time: 1_700_000_000,
            access: None,
            ipv6: None,
            tunnel: None,
        }
    }

    /// The shell's delivery loop, as `aaa::accounting` runs it: due records to the
    /// database, committed ones out of the spool, failed ones retried after the back-off.
    fn pump(spool: &mut Spool, d: &Delivery, in_flight: &mut usize) {
        let now = Instant::now();
        let mut batch = Vec::new();
        while let Some(due) = spool.next_due(now).unwrap() {
            batch.push((due.id, due.record));
        }
        if !batch.is_empty() {
            *in_flight += batch.len();
            d.send(batch);
        }
        while let Some(o) = d.outcome() {
            *in_flight -= o.committed.len() + o.failed.len();
            spool.ack_many(now, &o.committed).unwrap();
            for id in o.failed {
                spool.failed(now, id);
            }
        }
    }

    /// Pumps until `done` holds (polling, at most 60 s).
    fn pump_until(
        spool: &mut Spool,
        d: &Delivery,
        in_flight: &mut usize,
        what: &str,
        mut done: impl FnMut(&mut Spool, &Delivery) -> bool,
    ) {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while !done(spool, d) {
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for {what}"
            );
            pump(spool, d, in_flight);
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn rows(pg: &Postgres, db: &str) -> (i64, i64, i64) {
        let mut c = DatabaseConfig::new(&pg.url(db)).connect().unwrap();
        let r = c
            .query_one(
                "SELECT count(*), count(DISTINCT (spool, id)), count(DISTINCT (session_id, status))
                 FROM accounting_record",
                &[],
            )
            .unwrap();
        (r.get(0), r.get(1), r.get(2))
    }

    #[test]
    #[ignore = "needs root and PostgreSQL 15 (make deps): make host-test"]
    fn postgresql_stopped_and_restarted_mid_run_loses_and_duplicates_no_record() {
        let pg = Postgres::start();
        pg.create_database("acct");
        let dir = tempfile::tempdir().unwrap();
        let opts = SpoolOptions {
            retry_min: Duration::from_millis(10),
            retry_max: Duration::from_millis(200),
            ..SpoolOptions::default()
        };
        let mut spool = Spool::open(&dir.path().join("spool.db"), opts).unwrap();
        let cfg = DatabaseConfig {
            node: Some("node-a".into()),
            connect_timeout_s: 2,
            ..DatabaseConfig::new(&pg.url("acct"))
        };
        let d = Delivery::start(&cfg, spool.identity()).unwrap();
        let mut in_flight = 0;
        // 100 sessions, Start / Interim-Update / Stop each: 300 records, one session's in
        // order. The first 100 sessions' Starts and Interims go through.
        let now = Instant::now();
        for status in [AcctStatusType::Start, AcctStatusType::InterimUpdate] {
            let recs: Vec<AcctRecord> = (0..100).map(|s| rec(s, status)).collect();
            spool.enqueue_many(now, &recs).unwrap();
        }
        pump_until(&mut spool, &d, &mut in_flight, "the first 200", |s, _| {
            s.pending().unwrap() == 0
        });
        assert_eq!(rows(&pg, "acct"), (200, 200, 200));
        assert_eq!(d.stats().stored.load(Ordering::Relaxed), 200);

        // PostgreSQL goes down; the Stops are spooled meanwhile and not lost.
        pg.stop();
        let stops: Vec<AcctRecord> = (0..100).map(|s| rec(s, AcctStatusType::Stop)).collect();
        spool.enqueue_many(Instant::now(), &stops).unwrap();
        pump_until(
            &mut spool,
            &d,
            &mut in_flight,
            "failed deliveries",
            |_, d| d.stats().failed_batches.load(Ordering::Relaxed) >= 3,
        );
        assert_eq!(
            spool.pending().unwrap(),
            100,
            "nothing leaves the spool while the database is down"
        );

        // It comes back: everything is delivered, once.
        pg.start_again();
        pump_until(&mut spool, &d, &mut in_flight, "the Stops", |s, _| {
            s.pending().unwrap() == 0
        });
        assert_eq!(in_flight, 0);
        assert_eq!(rows(&pg, "acct"), (300, 300, 300));
        assert_eq!(d.stats().stored.load(Ordering::Relaxed), 300);
        assert!(d.stats().connects.load(Ordering::Relaxed) >= 2);

        // A batch whose commit reached the database but whose answer did not come back
        // goes again: stored once.
        d.send(
            (1..=5)
                .map(|id| (id, rec(id as u32, AcctStatusType::Start)))
                .collect(),
        );
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let o = loop {
            if let Some(o) = d.outcome() {
                break o;
            }
            assert!(std::time::Instant::now() < deadline);
            std::thread::sleep(Duration::from_millis(2));
        };
        assert_eq!(o.committed, vec![1, 2, 3, 4, 5]);
        assert_eq!(d.stats().duplicates.load(Ordering::Relaxed), 5);
        assert_eq!(rows(&pg, "acct"), (300, 300, 300));
    }
}
