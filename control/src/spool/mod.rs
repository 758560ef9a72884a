//! The durable accounting spool (CNT-2): every accounting record is committed to a
//! SQLite file (WAL, `synchronous=FULL`) before it is sent, and deleted only when the
//! server acknowledges it. A `kill -9` or a power cut after [`Spool::enqueue`] returns
//! loses nothing; the record goes out after the restart.
//!
//! The spool also keeps the open sessions (id, user, start, last known counters, Class)
//! updated by Start and Interim-Update and removed by Stop, in the same transaction as
//! the record. At restart [`Spool::recover`] turns each session that was open into a
//! Stop with Acct-Terminate-Cause NAS-Reboot and those counters.
//!
//! Delivery: [`Spool::next_due`] hands out records oldest first, at most one per
//! session at a time (a Stop never overtakes its Start), at most
//! [`SpoolOptions::max_in_flight`] at once. [`Spool::failed`] retries a record later,
//! the wait doubling from `retry_min` up to `retry_max`. Attempt counts live in memory:
//! after a restart every record is due at once. Only a window of the oldest records is
//! held in memory; the rest stay on disk until there is room.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use tollgate_dataplane::time::Instant;

use crate::radius::attrs::{AcctRecord, Counters};
use crate::radius::dict::{AcctStatusType, DisconnectCause};

/// A record's row id in the spool.
pub type SpoolId = i64;

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = 1;

const MIGRATIONS: &[&str] = &[r#"
CREATE TABLE record (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id    TEXT NOT NULL,
    status        TEXT NOT NULL,
    body          TEXT NOT NULL,
    enqueued_unix INTEGER NOT NULL
);
CREATE TABLE open_session (
    session_id   TEXT PRIMARY KEY NOT NULL,
    body         TEXT NOT NULL,
    updated_unix INTEGER NOT NULL
);
"#];

/// How hard a commit tries to reach the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Durability {
    /// `synchronous=FULL`: the WAL is fsynced at every commit. Survives power loss.
    #[default]
    Full,
    /// `synchronous=NORMAL`: fsync at checkpoints only. Survives a process crash
    /// (`kill -9`), may lose the last commits on power loss.
    Normal,
}

/// Spool settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpoolOptions {
    /// First wait after a failed attempt.
    pub retry_min: Duration,
    /// Longest wait.
    pub retry_max: Duration,
    /// Records handed out and not yet acknowledged or failed, at most.
    pub max_in_flight: usize,
    /// Records held in memory (the oldest); the rest wait on disk.
    pub window: usize,
    /// Commit durability.
    pub durability: Durability,
}

impl Default for SpoolOptions {
    fn default() -> Self {
        SpoolOptions {
            retry_min: Duration::from_secs(1),
            retry_max: Duration::from_secs(60),
            max_in_flight: 256,
            window: 4096,
            durability: Durability::Full,
        }
    }
}

/// A session that was open, as last known.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenSession {
    /// The record that last updated it (Start or Interim-Update).
    pub last: AcctRecord,
}

/// What can go wrong with the spool.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// SQLite failed (disk full, unreadable file, locked).
    #[error("accounting spool: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A stored record that does not read back.
    #[error("accounting spool record {id}: {message}")]
    Corrupt {
        /// Its row id.
        id: SpoolId,
        /// What is wrong.
        message: String,
    },
    /// The file was written by a newer Tollgate.
    #[error("accounting spool has schema version {found}; this build knows up to {supported}")]
    SchemaTooNew {
        /// In the file.
        found: i64,
        /// Known here.
        supported: i64,
    },
}

#[derive(Debug, Clone)]
struct Meta {
    session_id: String,
    attempts: u32,
    next: Instant,
    in_flight: bool,
}

/// A record due for sending.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Due {
    /// Its spool id: [`Spool::ack`] or [`Spool::failed`] it.
    pub id: SpoolId,
    /// The record.
    pub record: AcctRecord,
    /// Earlier attempts (in this process).
    pub attempts: u32,
}

/// What the spool counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SpoolStats {
    /// Records committed.
    pub enqueued: u64,
    /// Records acknowledged and deleted.
    pub acked: u64,
    /// Failed attempts.
    pub failed_attempts: u64,
    /// Stops made by [`Spool::recover`].
    pub recovered: u64,
}

/// The spool.
#[derive(Debug)]
pub struct Spool {
    conn: Connection,
    opts: SpoolOptions,
    queue: BTreeMap<SpoolId, Meta>,
    /// Every record with an id above this is on disk only.
    loaded_upto: SpoolId,
    /// True when no record on disk is missing from `queue`.
    all_loaded: bool,
    busy_sessions: HashSet<String>,
    in_flight: usize,
    stats: SpoolStats,
}

fn status_name(s: AcctStatusType) -> &'static str {
    s.name()
}

impl Spool {
    /// Opens (creating if needed) the spool at `path`.
    pub fn open(path: &Path, opts: SpoolOptions) -> Result<Spool, SpoolError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            let _ = std::fs::create_dir_all(dir);
        }
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        let _: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        let sync = match opts.durability {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        };
        conn.pragma_update(None, "synchronous", sync)?;
        // One process per spool: its first write takes the lock and keeps it until the
        // connection closes (or the process dies). A second daemon's open fails instead
        // of recovering - closing - the first one's open sessions.
        let _: String = conn.query_row("PRAGMA locking_mode=EXCLUSIVE", [], |r| r.get(0))?;
        let tx = conn.transaction()?;
        tx.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")?;
        let found: Option<i64> = tx
            .query_row("SELECT version FROM schema_version", [], |r| r.get(0))
            .optional()?;
        let mut version = match found {
            Some(v) => v,
            None => {
                tx.execute("INSERT INTO schema_version (version) VALUES (0)", [])?;
                0
            }
        };
        if version > SCHEMA_VERSION {
            return Err(SpoolError::SchemaTooNew {
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        while version < SCHEMA_VERSION {
            tx.execute_batch(MIGRATIONS[version as usize])?;
            version += 1;
            tx.execute("UPDATE schema_version SET version = ?1", [version])?;
        }
        tx.commit()?;
        let mut spool = Spool {
            conn,
            opts,
            queue: BTreeMap::new(),
            loaded_upto: 0,
            all_loaded: false,
            busy_sessions: HashSet::new(),
            in_flight: 0,
            stats: SpoolStats::default(),
        };
        spool.refill(Instant::ZERO)?;
        Ok(spool)
    }

    /// Loads the oldest records from disk while the window has room.
    fn refill(&mut self, now: Instant) -> Result<(), SpoolError> {
        if self.all_loaded || self.queue.len() >= self.opts.window {
            return Ok(());
        }
        let room = self.opts.window - self.queue.len();
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, session_id FROM record WHERE id > ?1 ORDER BY id LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![self.loaded_upto, room as i64 + 1], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
        })?;
        let mut n = 0;
        for row in rows {
            let (id, session_id) = row?;
            n += 1;
            if n > room {
                break;
            }
            self.loaded_upto = id;
            self.queue.insert(
                id,
                Meta {
                    session_id,
                    attempts: 0,
                    next: now,
                    in_flight: false,
                },
            );
        }
        self.all_loaded = n <= room;
        Ok(())
    }

    /// Commits a record (and the open-session row it updates) and returns its id. When
    /// this returns `Ok` the record is on disk; send it only then.
    pub fn enqueue(&mut self, now: Instant, record: &AcctRecord) -> Result<SpoolId, SpoolError> {
        let ids = self.enqueue_many(now, std::slice::from_ref(record))?;
        Ok(ids[0])
    }

    /// Commits several records in one transaction (one fsync): all or none. The control
    /// loop gathers what one pass produced and commits it here.
    pub fn enqueue_many(
        &mut self,
        now: Instant,
        records: &[AcctRecord],
    ) -> Result<Vec<SpoolId>, SpoolError> {
        let tx = self.conn.transaction()?;
        let mut ids = Vec::with_capacity(records.len());
        for record in records {
            let body = serde_json::to_string(record).map_err(|e| SpoolError::Corrupt {
                id: 0,
                message: e.to_string(),
            })?;
            tx.execute(
                "INSERT INTO record (session_id, status, body, enqueued_unix) VALUES (?1, ?2, ?3, ?4)",
                params![
                    record.session_id,
                    status_name(record.status),
                    body,
                    record.event_time as i64
                ],
            )?;
            ids.push(tx.last_insert_rowid());
            match record.status {
                AcctStatusType::Start | AcctStatusType::InterimUpdate => {
                    let open = serde_json::to_string(&OpenSession {
                        last: record.clone(),
                    })
                    .unwrap_or_default();
                    tx.execute(
                        "INSERT INTO open_session (session_id, body, updated_unix) VALUES (?1, ?2, ?3) \
                         ON CONFLICT (session_id) DO UPDATE SET body = ?2, updated_unix = ?3",
                        params![record.session_id, open, record.event_time as i64],
                    )?;
                }
                AcctStatusType::Stop => {
                    tx.execute(
                        "DELETE FROM open_session WHERE session_id = ?1",
                        [&record.session_id],
                    )?;
                }
                AcctStatusType::AccountingOn | AcctStatusType::AccountingOff => {}
            }
        }
        tx.commit()?;
        self.stats.enqueued += records.len() as u64;
        for (id, record) in ids.iter().zip(records) {
            if self.all_loaded && self.queue.len() < self.opts.window {
                self.loaded_upto = *id;
                self.queue.insert(
                    *id,
                    Meta {
                        session_id: record.session_id.clone(),
                        attempts: 0,
                        next: now,
                        in_flight: false,
                    },
                );
            } else {
                self.all_loaded = false;
            }
        }
        Ok(ids)
    }

    /// The oldest record due at `now` whose session has nothing in flight, marked in
    /// flight. `None` when nothing is due or `max_in_flight` is reached.
    pub fn next_due(&mut self, now: Instant) -> Result<Option<Due>, SpoolError> {
        if self.in_flight >= self.opts.max_in_flight {
            return Ok(None);
        }
        let mut seen: HashSet<&str> = HashSet::new();
        let mut pick = None;
        for (id, m) in &self.queue {
            if m.in_flight || self.busy_sessions.contains(&m.session_id) {
                continue;
            }
            if !seen.insert(m.session_id.as_str()) {
                continue; // an older record of this session is waiting
            }
            if m.next <= now {
                pick = Some(*id);
                break;
            }
        }
        let Some(id) = pick else { return Ok(None) };
        let body: Option<String> = self
            .conn
            .query_row("SELECT body FROM record WHERE id = ?1", [id], |r| r.get(0))
            .optional()?;
        let Some(body) = body else {
            // Deleted behind our back (another process acked it): forget it.
            self.queue.remove(&id);
            return self.next_due(now);
        };
        let record: AcctRecord = serde_json::from_str(&body).map_err(|e| SpoolError::Corrupt {
            id,
            message: e.to_string(),
        })?;
        let Some(m) = self.queue.get_mut(&id) else {
            return Ok(None);
        };
        m.in_flight = true;
        self.in_flight += 1;
        self.busy_sessions.insert(m.session_id.clone());
        Ok(Some(Due {
            id,
            record,
            attempts: m.attempts,
        }))
    }

    /// The server acknowledged the record: delete it.
    pub fn ack(&mut self, now: Instant, id: SpoolId) -> Result<(), SpoolError> {
        self.conn
            .execute("DELETE FROM record WHERE id = ?1", [id])?;
        if let Some(m) = self.queue.remove(&id) {
            if m.in_flight {
                self.in_flight -= 1;
                self.busy_sessions.remove(&m.session_id);
            }
        }
        self.stats.acked += 1;
        self.refill(now)
    }

    /// The server acknowledged these records: delete them in one transaction (one
    /// fsync for a pass's worth of answers).
    pub fn ack_many(&mut self, now: Instant, ids: &[SpoolId]) -> Result<(), SpoolError> {
        if ids.is_empty() {
            return Ok(());
        }
        let tx = self.conn.transaction()?;
        {
            let mut del = tx.prepare_cached("DELETE FROM record WHERE id = ?1")?;
            for id in ids {
                del.execute([id])?;
            }
        }
        tx.commit()?;
        for id in ids {
            if let Some(m) = self.queue.remove(id) {
                if m.in_flight {
                    self.in_flight -= 1;
                    self.busy_sessions.remove(&m.session_id);
                }
            }
        }
        self.stats.acked += ids.len() as u64;
        self.refill(now)
    }

    /// The attempt failed (no server answered): try again after the backoff.
    pub fn failed(&mut self, now: Instant, id: SpoolId) {
        if let Some(m) = self.queue.get_mut(&id) {
            if m.in_flight {
                m.in_flight = false;
                self.in_flight -= 1;
                self.busy_sessions.remove(&m.session_id);
            }
            m.attempts = m.attempts.saturating_add(1);
            let shift = m.attempts.saturating_sub(1).min(20);
            let wait = self
                .opts
                .retry_min
                .saturating_mul(1 << shift)
                .min(self.opts.retry_max);
            m.next = now + wait;
            self.stats.failed_attempts += 1;
        }
    }

    /// When a record not in flight next becomes due (for the loop's timer).
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.in_flight >= self.opts.max_in_flight {
            return None;
        }
        let mut seen: HashSet<&str> = HashSet::new();
        self.queue
            .values()
            .filter(|m| seen.insert(m.session_id.as_str()))
            .filter(|m| !m.in_flight && !self.busy_sessions.contains(&m.session_id))
            .map(|m| m.next)
            .min()
    }

    /// Records not yet acknowledged (on disk).
    pub fn pending(&self) -> Result<u64, SpoolError> {
        Ok(self
            .conn
            .query_row("SELECT count(*) FROM record", [], |r| r.get::<_, i64>(0))?
            as u64)
    }

    /// Records handed out and not yet acknowledged or failed.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// What the spool counted.
    pub fn stats(&self) -> SpoolStats {
        self.stats
    }

    /// Every record on disk, oldest first (tests, `ctl show accounting`).
    pub fn records(&self) -> Result<Vec<(SpoolId, AcctRecord)>, SpoolError> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, body FROM record ORDER BY id")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, body) = row?;
            let rec = serde_json::from_str(&body).map_err(|e| SpoolError::Corrupt {
                id,
                message: e.to_string(),
            })?;
            out.push((id, rec));
        }
        Ok(out)
    }

    /// The sessions open as far as the spool knows.
    pub fn open_sessions(&self) -> Result<Vec<OpenSession>, SpoolError> {
        let mut stmt = self
            .conn
            .prepare("SELECT body FROM open_session ORDER BY session_id")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        let mut out = Vec::new();
        for row in rows {
            let body = row?;
            out.push(
                serde_json::from_str(&body).map_err(|e| SpoolError::Corrupt {
                    id: 0,
                    message: format!("open session: {e}"),
                })?,
            );
        }
        Ok(out)
    }

    /// At start, before any new session: closes every session that was open when the
    /// process stopped, with a Stop (cause Restart, Acct-Terminate-Cause NAS-Reboot)
    /// carrying its last known counters and session time, stamped `now_unix`. Returns
    /// the Stops' ids.
    pub fn recover(&mut self, now: Instant, now_unix: u64) -> Result<Vec<SpoolId>, SpoolError> {
        let stops: Vec<AcctRecord> = self
            .open_sessions()?
            .into_iter()
            .map(|open| {
                let last = open.last;
                AcctRecord {
                    status: AcctStatusType::Stop,
                    cause: Some(DisconnectCause::Restart),
                    event_time: now_unix.max(last.event_time),
                    counters: last.counters,
                    ..last
                }
            })
            .collect();
        let ids = self.enqueue_many(now, &stops)?;
        self.stats.recovered += ids.len() as u64;
        Ok(ids)
    }
}

/// Counters as JSON numbers (for tests and tools reading the spool).
pub fn counters_json(c: &Counters) -> serde_json::Value {
    serde_json::json!({
        "octets_up": c.octets_up,
        "octets_down": c.octets_down,
        "packets_up": c.packets_up,
        "packets_down": c.packets_down,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(session: &str, status: AcctStatusType, octets: u64) -> AcctRecord {
        AcctRecord {
            status,
            session_id: session.into(),
            user_name: "alice".into(),
            framed_ip: None,
            calling_station_id: None,
            class: vec![b"cls".to_vec()],
            counters: Counters {
                octets_up: octets,
                octets_down: octets * 2,
                packets_up: 1,
                packets_down: 2,
            },
            session_time_s: octets as u32,
            cause: None,
            event_time: 1_700_000_000 + octets,
        }
    }

    fn t(s: u64) -> Instant {
        Instant(1_000_000_000 + s * 1_000_000_000)
    }

    fn open(dir: &Path) -> Spool {
        Spool::open(&dir.join("spool.db"), SpoolOptions::default()).unwrap()
    }

    #[test]
    fn enqueue_due_ack() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = open(dir.path());
        let a = s
            .enqueue(t(0), &rec("s1", AcctStatusType::Start, 0))
            .unwrap();
        let b = s
            .enqueue(t(0), &rec("s2", AcctStatusType::Start, 0))
            .unwrap();
        let c = s
            .enqueue(t(0), &rec("s1", AcctStatusType::InterimUpdate, 10))
            .unwrap();
        assert_eq!(s.pending().unwrap(), 3);
        let d1 = s.next_due(t(0)).unwrap().unwrap();
        assert_eq!(d1.id, a);
        // s1 is busy: its interim waits; s2's start goes.
        let d2 = s.next_due(t(0)).unwrap().unwrap();
        assert_eq!(d2.id, b);
        assert!(s.next_due(t(0)).unwrap().is_none());
        s.ack(t(0), a).unwrap();
        assert_eq!(s.next_due(t(0)).unwrap().unwrap().id, c);
        s.ack(t(0), b).unwrap();
        s.ack(t(0), c).unwrap();
        assert_eq!(s.pending().unwrap(), 0);
        assert_eq!(s.open_sessions().unwrap().len(), 2);
        assert_eq!(s.open_sessions().unwrap()[0].last.counters.octets_up, 10);
    }

    #[test]
    fn a_second_process_cannot_open_a_spool_in_use() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path());
        let started = std::time::Instant::now();
        let second = Spool::open(&dir.path().join("spool.db"), SpoolOptions::default());
        assert!(second.is_err(), "the spool is locked by its first user");
        assert!(
            started.elapsed() >= Duration::from_secs(4),
            "after the busy timeout"
        );
        drop(s);
        let mut s = open(dir.path());
        s.enqueue(t(0), &rec("s1", AcctStatusType::Start, 0))
            .unwrap();
        assert_eq!(s.pending().unwrap(), 1);
    }

    #[test]
    fn ack_many_deletes_in_one_go_and_frees_the_sessions() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = open(dir.path());
        let ids = s
            .enqueue_many(
                t(0),
                &[
                    rec("s1", AcctStatusType::Start, 0),
                    rec("s2", AcctStatusType::Start, 0),
                    rec("s1", AcctStatusType::Stop, 5),
                ],
            )
            .unwrap();
        let d1 = s.next_due(t(0)).unwrap().unwrap().id;
        let d2 = s.next_due(t(0)).unwrap().unwrap().id;
        assert_eq!((d1, d2), (ids[0], ids[1]));
        assert_eq!(s.in_flight(), 2);
        s.ack_many(t(0), &[d1, d2]).unwrap();
        assert_eq!(s.in_flight(), 0);
        assert_eq!(s.pending().unwrap(), 1);
        // s1 is free again: its Stop goes next.
        assert_eq!(s.next_due(t(0)).unwrap().unwrap().id, ids[2]);
        s.ack_many(t(0), &[]).unwrap();
        assert_eq!(s.stats().acked, 2);
    }

    #[test]
    fn failed_backs_off_and_keeps_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = open(dir.path());
        let a = s
            .enqueue(t(0), &rec("s1", AcctStatusType::Start, 0))
            .unwrap();
        let b = s
            .enqueue(t(0), &rec("s1", AcctStatusType::Stop, 5))
            .unwrap();
        assert_eq!(s.next_due(t(0)).unwrap().unwrap().id, a);
        s.failed(t(0), a);
        // The Stop may not overtake the Start while the Start waits.
        assert!(s.next_due(t(0)).unwrap().is_none());
        assert_eq!(s.poll_timeout(), Some(t(1)));
        assert_eq!(s.next_due(t(1)).unwrap().unwrap().id, a);
        s.failed(t(1), a);
        assert_eq!(s.poll_timeout(), Some(t(3)), "2 s after the second failure");
        let d = s.next_due(t(3)).unwrap().unwrap();
        assert_eq!((d.id, d.attempts), (a, 2));
        s.ack(t(3), a).unwrap();
        assert_eq!(s.next_due(t(3)).unwrap().unwrap().id, b);
        for _ in 0..30 {
            s.failed(t(3), b);
        }
        assert_eq!(s.poll_timeout(), Some(t(63)), "capped at retry_max");
    }

    #[test]
    fn survives_reopen_and_recovers_open_sessions() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut s = open(dir.path());
            s.enqueue(t(0), &rec("s1", AcctStatusType::Start, 0))
                .unwrap();
            s.enqueue(t(0), &rec("s1", AcctStatusType::InterimUpdate, 100))
                .unwrap();
            s.enqueue(t(0), &rec("s2", AcctStatusType::Start, 0))
                .unwrap();
            s.enqueue(t(0), &rec("s2", AcctStatusType::Stop, 7))
                .unwrap();
            let d = s.next_due(t(0)).unwrap().unwrap();
            s.ack(t(0), d.id).unwrap();
        }
        let mut s = open(dir.path());
        assert_eq!(s.pending().unwrap(), 3);
        let ids = s.recover(t(0), 1_800_000_000).unwrap();
        assert_eq!(ids.len(), 1, "s2 was stopped; only s1 was open");
        let recs = s.records().unwrap();
        let (_, stop) = recs.iter().find(|(id, _)| *id == ids[0]).unwrap();
        assert_eq!(stop.status, AcctStatusType::Stop);
        assert_eq!(stop.session_id, "s1");
        assert_eq!(stop.counters.octets_up, 100);
        assert_eq!(stop.session_time_s, 100);
        assert_eq!(stop.cause, Some(DisconnectCause::Restart));
        assert_eq!(stop.class, vec![b"cls".to_vec()]);
        assert!(s.open_sessions().unwrap().is_empty());
        // Nothing more to recover the second time.
        assert!(s.recover(t(0), 1_800_000_001).unwrap().is_empty());
        // Everything comes out in order, one per session at a time.
        let mut sent = Vec::new();
        while let Some(d) = s.next_due(t(0)).unwrap() {
            sent.push((d.record.session_id.clone(), d.record.status));
            s.ack(t(0), d.id).unwrap();
        }
        assert_eq!(
            sent,
            vec![
                ("s1".to_string(), AcctStatusType::InterimUpdate),
                ("s2".to_string(), AcctStatusType::Start),
                ("s2".to_string(), AcctStatusType::Stop),
                ("s1".to_string(), AcctStatusType::Stop),
            ]
        );
    }

    #[test]
    fn window_keeps_memory_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let opts = SpoolOptions {
            window: 4,
            max_in_flight: 2,
            durability: Durability::Normal,
            ..SpoolOptions::default()
        };
        let mut s = Spool::open(&dir.path().join("w.db"), opts).unwrap();
        for i in 0..10 {
            s.enqueue(t(0), &rec(&format!("s{i}"), AcctStatusType::Start, 0))
                .unwrap();
        }
        assert_eq!(s.queue.len(), 4);
        let mut order = Vec::new();
        loop {
            let mut batch = Vec::new();
            while let Some(d) = s.next_due(t(0)).unwrap() {
                batch.push(d);
            }
            assert!(batch.len() <= 2);
            if batch.is_empty() {
                break;
            }
            for d in batch {
                order.push(d.record.session_id.clone());
                s.ack(t(0), d.id).unwrap();
            }
        }
        let want: Vec<String> = (0..10).map(|i| format!("s{i}")).collect();
        assert_eq!(order, want);
        assert_eq!(s.pending().unwrap(), 0);
    }
}
