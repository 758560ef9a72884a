//! Usage records into the rating ledger, off the control thread (RATE-4 across nodes):
//! the control loop commits each pass's usage records to the local spool in the same
//! transaction as its accounting records ([`crate::spool::Spool::commit_with_usage`]);
//! [`UsageDelivery`] stores them in the ledger (the cluster's PostgreSQL or the SQLite
//! file) on its own thread and says which are stored, and only those leave the spool.
//!
//! A usage record's key in the ledger is its kind and id (`(kind, id)` is unique there),
//! so a batch delivered again (its commit reached the ledger, the answer did not reach the
//! node, or the node died in between) is stored once. A batch is one transaction; when
//! the ledger is down or restarts, the batch fails as a whole and the records go again
//! after a back-off. A record the ledger refuses for good (a different record under its
//! id, a record that does not validate) is logged, counted and let go: it would be
//! refused the same way every time.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;

use crossbeam::channel::{Receiver, Sender, unbounded};

use super::{RatingError, Store, Stored};
use crate::database::DatabaseConfig;
use crate::spool::{SpoolId, UsageRecord};

/// Where the ledger is: what the delivery thread opens (and opens again after a failure).
#[derive(Clone, Debug)]
pub enum Ledger {
    /// The SQLite file (`rating.database`).
    Sqlite(std::path::PathBuf),
    /// The cluster's PostgreSQL (`[database]`).
    Postgres(DatabaseConfig),
}

impl Ledger {
    fn open(&self) -> Result<Store, RatingError> {
        match self {
            Ledger::Sqlite(path) => Store::open(path),
            Ledger::Postgres(cfg) => Store::open_postgres(cfg),
        }
    }

    /// For messages: the file or `USER@HOST:PORT/DBNAME`.
    pub fn target(&self) -> String {
        match self {
            Ledger::Sqlite(path) => path.display().to_string(),
            Ledger::Postgres(cfg) => cfg.target(),
        }
    }
}

/// What one batch came to.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct UsageOutcome {
    /// In the ledger (now or before), or refused for good: delete them from the spool.
    pub done: Vec<SpoolId>,
    /// Not stored (the ledger down, restarting): retry later.
    pub failed: Vec<SpoolId>,
}

/// What the delivery counted (read by `show accounting`).
#[derive(Debug, Default)]
pub struct UsageStats {
    /// Records stored now.
    pub stored: AtomicU64,
    /// Records found already stored (delivered again).
    pub duplicates: AtomicU64,
    /// Records refused for good (a different record under the id; invalid).
    pub refused: AtomicU64,
    /// A dead node's usage records of sessions closed at its restart that a surviving
    /// node had already taken over and rated (CLU-3): the ledger keeps the survivor's
    /// (a WARN each, not an error; not in `refused`).
    pub superseded: AtomicU64,
    /// Batches that failed (the ledger down, restarting).
    pub failed_batches: AtomicU64,
}

/// The delivery thread and its two channels.
pub struct UsageDelivery {
    batches: Option<Sender<Vec<(SpoolId, UsageRecord)>>>,
    outcomes: Receiver<UsageOutcome>,
    stats: Arc<UsageStats>,
    target: String,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for UsageDelivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UsageDelivery")
            .field("target", &self.target)
            .finish()
    }
}

impl UsageDelivery {
    /// Starts the thread; it opens the ledger with its first batch (and again after a
    /// failure), so a ledger that cannot be reached now only delays the records.
    pub fn start(ledger: Ledger) -> std::io::Result<UsageDelivery> {
        let target = ledger.target();
        let stats = Arc::new(UsageStats::default());
        let (batch_tx, batch_rx) = unbounded::<Vec<(SpoolId, UsageRecord)>>();
        let (out_tx, out_rx) = unbounded();
        let mut worker = Worker {
            ledger,
            store: None,
            target: target.clone(),
            stats: Arc::clone(&stats),
        };
        let thread = std::thread::Builder::new()
            .name("tollgate-ledger".into())
            .spawn(move || {
                while let Ok(batch) = batch_rx.recv() {
                    if out_tx.send(worker.deliver(batch)).is_err() {
                        return;
                    }
                }
            })?;
        Ok(UsageDelivery {
            batches: Some(batch_tx),
            outcomes: out_rx,
            stats,
            target,
            thread: Some(thread),
        })
    }

    /// Hands a batch to the thread; its [`UsageOutcome`] comes back through
    /// [`Self::outcome`].
    pub fn send(&self, batch: Vec<(SpoolId, UsageRecord)>) {
        if let Some(tx) = &self.batches {
            // The thread only ends when this side is dropped.
            let _ = tx.send(batch);
        }
    }

    /// A finished batch, if there is one.
    pub fn outcome(&self) -> Option<UsageOutcome> {
        self.outcomes.try_recv().ok()
    }

    /// What it counted.
    pub fn stats(&self) -> &UsageStats {
        &self.stats
    }

    /// The file or `USER@HOST:PORT/DBNAME`.
    pub fn target(&self) -> &str {
        &self.target
    }
}

impl Drop for UsageDelivery {
    fn drop(&mut self) {
        self.batches = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Worker {
    ledger: Ledger,
    store: Option<Store>,
    target: String,
    stats: Arc<UsageStats>,
}

impl Worker {
    fn deliver(&mut self, batch: Vec<(SpoolId, UsageRecord)>) -> UsageOutcome {
        match self.insert(&batch) {
            Ok(()) => UsageOutcome {
                done: batch.iter().map(|(id, _)| *id).collect(),
                failed: Vec::new(),
            },
            Err(e) => {
                // Whatever the connection's state, a fresh one for the next batch.
                self.store = None;
                let n = self.stats.failed_batches.fetch_add(1, Ordering::Relaxed) + 1;
                if n == 1 || n.is_multiple_of(100) {
                    tracing::warn!(ledger = %self.target, error = %e, failed_batches = n, records = batch.len(), "usage records not stored in the rating ledger; they stay in the spool and are retried");
                }
                UsageOutcome {
                    done: Vec::new(),
                    failed: batch.iter().map(|(id, _)| *id).collect(),
                }
            }
        }
    }

    fn insert(&mut self, batch: &[(SpoolId, UsageRecord)]) -> Result<(), RatingError> {
        if self.store.is_none() {
            self.store = Some(self.ledger.open()?);
            if self.stats.failed_batches.load(Ordering::Relaxed) > 0 {
                tracing::info!(ledger = %self.target, "rating ledger reached again; storing the spooled usage records");
            }
        }
        let Some(store) = self.store.as_ref() else {
            return Ok(());
        };
        let (mut stored, mut duplicates, mut refused, mut superseded) = (0, 0, 0, 0);
        let tx = store.begin()?;
        for (_, r) in batch {
            match store.insert(r) {
                Ok(Stored::New) => stored += 1,
                Ok(Stored::Duplicate) => duplicates += 1,
                Err(RatingError::Conflict { .. }) if recovered_at_restart(r) => {
                    superseded += 1;
                    tracing::warn!(record = %r.id(), "a usage record of a session this node closed at its restart is already in the rating ledger: a surviving node took the session over and rated it while this node was down; the ledger keeps the survivor's");
                }
                // Refused the same way every time: let it go, loudly. (Neither error
                // comes from a failed statement, so the transaction goes on.)
                Err(e @ (RatingError::Conflict { .. } | RatingError::InvalidRecord { .. })) => {
                    refused += 1;
                    tracing::error!(error = %e, record = ?r, "the rating ledger refused a usage record (the spool keeps the accounting)");
                }
                Err(e) => return Err(e),
            }
        }
        tx.commit("usage records")?;
        self.stats.stored.fetch_add(stored, Ordering::Relaxed);
        self.stats
            .duplicates
            .fetch_add(duplicates, Ordering::Relaxed);
        self.stats.refused.fetch_add(refused, Ordering::Relaxed);
        self.stats
            .superseded
            .fetch_add(superseded, Ordering::Relaxed);
        Ok(())
    }
}

/// A session's usage as a node's restart recovery closes it (cause NAS-Reboot, like a
/// survivor's takeover): the one kind of conflict that is expected in a cluster.
fn recovered_at_restart(r: &UsageRecord) -> bool {
    matches!(r, UsageRecord::Session(s) if s.cause.as_deref() == Some("NAS-Reboot"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spool::{Spool, SpoolOptions};
    use std::time::Duration;
    use tollgate_control_core::rating::SessionUsage;
    use tollgate_dataplane::time::Instant;

    fn usage(n: u32, bytes: u64) -> UsageRecord {
        UsageRecord::Session(SessionUsage {
            id: format!("gw1.s{n}"),
            user: format!("user{n}"),
            account: None,
            session: format!("gw1.s{n}"),
            start: 1_700_000_000,
            stop: 1_700_000_600,
            tx_packets: 1,
            tx_bytes: bytes,
            rx_packets: 1,
            rx_bytes: bytes,
            cause: Some("User-Request".into()),
        })
    }

    /// One batch through the thread, waited for.
    fn round(d: &UsageDelivery, batch: Vec<(SpoolId, UsageRecord)>) -> UsageOutcome {
        d.send(batch);
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(o) = d.outcome() {
                return o;
            }
            assert!(std::time::Instant::now() < deadline, "no outcome");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    #[test]
    fn spooled_usage_reaches_the_ledger_once_and_waits_while_it_cannot_be_opened() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(&dir.path().join("spool.db"), SpoolOptions::default()).unwrap();
        let records: Vec<UsageRecord> = (1..=3).map(|n| usage(n, 1000)).collect();
        spool
            .commit_with_usage(Instant::now(), &[], &[], &records)
            .unwrap();
        assert_eq!(spool.usage_pending().unwrap(), 3);

        // A ledger that cannot be opened (its directory is a file): the batch fails,
        // nothing leaves the spool.
        std::fs::write(dir.path().join("not-a-dir"), "").unwrap();
        let down =
            UsageDelivery::start(Ledger::Sqlite(dir.path().join("not-a-dir/rating.db"))).unwrap();
        let batch = spool.usage_due(500).unwrap();
        assert_eq!(batch.len(), 3);
        let o = round(&down, batch.clone());
        assert_eq!((o.done.len(), o.failed.len()), (0, 3));
        assert_eq!(down.stats().failed_batches.load(Ordering::Relaxed), 1);
        assert_eq!(spool.usage_pending().unwrap(), 3);

        // The ledger reachable: stored, then out of the spool.
        let path = dir.path().join("rating.db");
        let d = UsageDelivery::start(Ledger::Sqlite(path.clone())).unwrap();
        let o = round(&d, batch.clone());
        assert_eq!(o.done, batch.iter().map(|(id, _)| *id).collect::<Vec<_>>());
        spool.usage_done(&o.done).unwrap();
        assert_eq!(spool.usage_pending().unwrap(), 0);
        assert_eq!(spool.stats().usage_done, 3);

        // Delivered again (the answer was lost): stored once. A different record under a
        // used id is refused for good and let go; the rest of its batch is stored.
        let o = round(&d, batch.clone());
        assert_eq!(o.done.len(), 3);
        assert_eq!(d.stats().duplicates.load(Ordering::Relaxed), 3);
        let o = round(&d, vec![(10, usage(1, 999)), (11, usage(4, 1000))]);
        assert_eq!(o.done, vec![10, 11]);
        assert_eq!(d.stats().refused.load(Ordering::Relaxed), 1);
        assert_eq!(d.stats().stored.load(Ordering::Relaxed), 4);
        drop(d);
        let store = Store::open(&path).unwrap();
        assert_eq!(store.counts().unwrap(), vec![("session".to_string(), 4)]);
    }
}
