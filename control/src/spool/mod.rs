//! The durable accounting spool (CNT-2): every accounting record is committed to a
//! SQLite file (WAL, `synchronous=FULL`) before it is sent, and deleted only when the
//! server acknowledges it. A `kill -9` or a power cut after [`Spool::enqueue`] returns
//! loses nothing; the record goes out after the restart.
//!
//! The spool also keeps the open sessions (id, user, start, last known counters, Class)
//! updated by Start and Interim-Update and removed by Stop, in the same transaction as
//! the record, and between records by [`Spool::commit`]'s [`LastKnown`] counters (the
//! control loop's periodic checkpoint, a batch per commit). At restart
//! [`Spool::recover`] turns each session that was open into a Stop with
//! Acct-Terminate-Cause NAS-Reboot, its real start, and those counters.
//!
//! One process per spool: [`Spool::open`] takes an exclusive `flock` on `FILE.lock`
//! beside it and refuses at once ([`SpoolError::InUse`]) when another process holds it,
//! then takes SQLite's exclusive lock with its first write and keeps it. A spool this
//! code created is recorded in `FILE.marker` beside it; a marked spool that is missing,
//! empty, truncated or not the spool the marker names is an error at open
//! ([`SpoolError::Lost`]) unless the operator starts afresh
//! ([`SpoolOptions::start_afresh`]), which moves what was there aside.
//!
//! The rating ledger's usage records wait here too ([`Spool::commit_with_usage`], in the
//! same transaction as the pass's accounting records), until the ledger has them
//! ([`Spool::usage_due`], [`Spool::usage_done`]; `crate::rating::delivery`).
//!
//! Delivery: [`Spool::next_due`] hands out records oldest first, at most one per
//! session at a time (a Stop never overtakes its Start), at most
//! [`SpoolOptions::max_in_flight`] at once. [`Spool::failed`] retries a record later,
//! the wait doubling from `retry_min` up to `retry_max`. Attempt counts live in memory:
//! after a restart every record is due at once. Only a window of the oldest records is
//! held in memory; the rest stay on disk until there is room. A record that can never
//! be sent (its body does not read back, or the shell says it cannot be encoded) is
//! moved to the `set_aside` table by [`Spool::set_aside`] so that it blocks nothing.

use std::collections::{BTreeMap, HashSet};
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use tollgate_dataplane::time::Instant;

pub use tollgate_control_core::radius::attrs::LastKnown;
use tollgate_control_core::radius::attrs::{AcctRecord, Counters};
use tollgate_control_core::radius::dict::{AcctStatusType, DisconnectCause};
/// A rating ledger usage record, as the spool keeps it until the ledger has it.
pub use tollgate_control_core::rating::Record as UsageRecord;

use crate::migrate::{self, MigrateError, Step};

/// A record's row id in the spool.
pub type SpoolId = i64;

/// The schema version this build writes (the newest of [`MIGRATIONS`]).
pub const SCHEMA_VERSION: i64 = 3;

/// How long one SQLite statement may wait for a lock held by another process (a
/// `sqlite3` shell reading the file) before it fails. Once the spool holds SQLite's
/// exclusive lock (from its first write on) nothing else can hold one.
pub const BUSY_TIMEOUT: Duration = Duration::from_millis(250);

/// The spool's schema, step by step (see [`crate::migrate`]; add a step, never edit one).
const MIGRATIONS: &[Step] = &[
    Step {
        version: 1,
        name: "record_and_open_session",
        sql: r#"
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
"#,
    },
    Step {
        version: 2,
        name: "last_known_counters_set_aside_spool_info",
        sql: r#"
ALTER TABLE open_session ADD COLUMN start_unix INTEGER;
ALTER TABLE open_session ADD COLUMN seen_unix INTEGER;
ALTER TABLE open_session ADD COLUMN octets_up INTEGER;
ALTER TABLE open_session ADD COLUMN octets_down INTEGER;
ALTER TABLE open_session ADD COLUMN packets_up INTEGER;
ALTER TABLE open_session ADD COLUMN packets_down INTEGER;
CREATE TABLE set_aside (
    id            INTEGER PRIMARY KEY,
    session_id    TEXT NOT NULL,
    status        TEXT NOT NULL,
    body          TEXT NOT NULL,
    enqueued_unix INTEGER NOT NULL,
    reason        TEXT NOT NULL
);
CREATE TABLE spool_info (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);
"#,
    },
    Step {
        version: 3,
        name: "usage_record",
        sql: r#"
CREATE TABLE usage_record (
    id    INTEGER PRIMARY KEY AUTOINCREMENT,
    kind  TEXT NOT NULL,
    rid   TEXT NOT NULL,
    body  TEXT NOT NULL
);
"#,
    },
];

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
    /// The operator's override: a spool that the marker says this code created and that
    /// is missing, empty or damaged is moved aside (renamed `FILE.lost-UNIXTIME`) and a
    /// new one started, instead of refusing to open.
    pub start_afresh: bool,
}

impl Default for SpoolOptions {
    fn default() -> Self {
        SpoolOptions {
            retry_min: Duration::from_secs(1),
            retry_max: Duration::from_secs(60),
            max_in_flight: 256,
            window: 4096,
            durability: Durability::Full,
            start_afresh: false,
        }
    }
}

/// A session that was open, as last known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenSession {
    /// The record that last updated it (Start or Interim-Update).
    pub last: AcctRecord,
    /// When it started (Unix seconds).
    pub start_unix: u64,
    /// When its counters were last known (Unix seconds): the last record's or the last
    /// [`LastKnown`] checkpoint's time, whichever is later.
    pub seen_unix: u64,
    /// Its counters at `seen_unix`.
    pub counters: Counters,
}

/// How the open-session row stores the record that last updated it.
#[derive(Serialize, Deserialize)]
struct OpenBody {
    last: AcctRecord,
}

/// What the marker beside a spool says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Marker {
    /// The spool's identity, also stored in its `spool_info` table.
    spool_id: String,
    /// When it was created (Unix seconds).
    created_unix: u64,
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
    /// Another process (a second daemon) has the spool open.
    #[error(
        "accounting spool {path} is in use by another process{holder} (lock {lock}); only one daemon may use a spool: stop the other one or give this one its own [aaa] spool"
    )]
    InUse {
        /// The spool.
        path: PathBuf,
        /// The lock file.
        lock: PathBuf,
        /// ", pid N" when the lock file names its holder.
        holder: String,
    },
    /// A spool the marker says was created here is missing, empty or damaged.
    #[error(
        "accounting spool {path} {found}, but {marker} says this gateway created it (spool {spool_id}, created at Unix time {created_unix}): its unsent records and open sessions would be lost. Restore the file, or start afresh with `tollgate run --spool-afresh` (the old files are kept as {path}.lost-UNIXTIME)"
    )]
    Lost {
        /// The spool.
        path: PathBuf,
        /// The marker.
        marker: PathBuf,
        /// What was found ("is missing", "is empty (0 bytes)", ...).
        found: String,
        /// The identity the marker names.
        spool_id: String,
        /// When the marker says it was created.
        created_unix: u64,
    },
    /// The schema could not be brought up to date (the error names the file).
    #[error("accounting spool {0}")]
    Migration(MigrateError),
    /// A file beside the spool (lock, marker) could not be used.
    #[error("accounting spool {path}: {what}: {error}")]
    File {
        /// The file.
        path: PathBuf,
        /// What was being done.
        what: &'static str,
        /// The error.
        error: std::io::Error,
    },
    /// The file was written by a newer Tollgate.
    #[error(
        "accounting spool {path}: schema version {found} is newer than this build knows \
         ({supported}); it was written by a newer Tollgate"
    )]
    SchemaTooNew {
        /// The spool file.
        path: PathBuf,
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
    /// Records moved aside because they can never be sent ([`Spool::set_aside`]).
    pub set_aside: u64,
    /// Sessions' last known counters written ([`LastKnown`]).
    pub last_known: u64,
    /// Commits that wrote last known counters (each one transaction, one fsync).
    pub last_known_commits: u64,
    /// Rating usage records committed ([`Spool::commit_with_usage`]).
    pub usage_enqueued: u64,
    /// Rating usage records the ledger has (deleted, [`Spool::usage_done`]).
    pub usage_done: u64,
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
    /// The spool's identity (its `spool_info` row and marker): with a record's row id,
    /// the record's key outside this node.
    identity: String,
    /// Holds the `flock` on `FILE.lock` for as long as the spool is open.
    _lock: std::fs::File,
}

fn status_name(s: AcctStatusType) -> &'static str {
    s.name()
}

impl Spool {
    /// Opens (creating if needed) the spool at `path`: takes the lock, checks the file
    /// against its marker, migrates the schema.
    pub fn open(path: &Path, opts: SpoolOptions) -> Result<Spool, SpoolError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            let _ = std::fs::create_dir_all(dir);
        }
        let lock = lock(path)?;
        let marker_path = beside(path, ".marker");
        let mut marker = read_marker(&marker_path)?;
        if let Some(m) = &marker
            && let Err(found) = check_file(path)
        {
            if !opts.start_afresh {
                return Err(lost(path, &marker_path, m, found));
            }
            move_aside(path, &found)?;
            marker = None;
        }
        let result = Spool::open_db(path, opts, lock, &marker_path, marker.as_ref());
        match result {
            // Only damage moves a spool aside, never a lock or a disk error.
            Err(SpoolError::Lost { .. }) if opts.start_afresh && marker.is_some() => {
                // Damaged in a way only SQLite could tell: move it aside, start afresh.
                let found = match result {
                    Err(e) => e.to_string(),
                    Ok(_) => unreachable!(),
                };
                move_aside(path, &found)?;
                let lock = self::lock(path)?;
                Spool::open_db(path, opts, lock, &marker_path, None)
            }
            r => r,
        }
    }

    fn open_db(
        path: &Path,
        opts: SpoolOptions,
        lock: std::fs::File,
        marker_path: &Path,
        marker: Option<&Marker>,
    ) -> Result<Spool, SpoolError> {
        let damaged = |found: String| match marker {
            Some(m) => lost(path, marker_path, m, found),
            None => SpoolError::Corrupt {
                id: 0,
                message: found,
            },
        };
        let existed = std::fs::metadata(path).is_ok_and(|m| m.len() > 0);
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        let _: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(|e| damaged(format!("does not open as SQLite ({e})")))?;
        let sync = match opts.durability {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        };
        conn.pragma_update(None, "synchronous", sync)?;
        // Besides the flock, SQLite's own lock: taken by the first write below and kept
        // until the connection closes (or the process dies).
        let _: String = conn.query_row("PRAGMA locking_mode=EXCLUSIVE", [], |r| r.get(0))?;
        if existed {
            let check: String = conn
                .query_row("PRAGMA quick_check", [], |r| r.get(0))
                .map_err(|e| damaged(format!("is damaged ({e})")))?;
            if check != "ok" {
                return Err(damaged(format!("is damaged (quick_check: {check})")));
            }
        }
        if marker.is_some() && !migrate::is_versioned(&conn)? {
            return Err(damaged(
                "has no spool tables (an empty or foreign database)".into(),
            ));
        }
        migrate::migrate(&mut conn, &path.display().to_string(), MIGRATIONS).map_err(
            |e| match e {
                MigrateError::TooNew {
                    found, supported, ..
                } => SpoolError::SchemaTooNew {
                    path: path.to_path_buf(),
                    found,
                    supported,
                },
                e => SpoolError::Migration(e),
            },
        )?;
        let tx = conn.transaction()?;
        let stored_id: Option<String> = tx
            .query_row(
                "SELECT value FROM spool_info WHERE key = 'spool_id'",
                [],
                |r| r.get(0),
            )
            .optional()?;
        let spool_id = match (&stored_id, marker) {
            (Some(id), Some(m)) if *id != m.spool_id => {
                return Err(damaged(format!("is another spool (its id is {id})")));
            }
            (Some(id), _) => id.clone(),
            (None, Some(m)) => {
                return Err(damaged(format!(
                    "has no spool id (the marker names {})",
                    m.spool_id
                )));
            }
            (None, None) => new_spool_id(),
        };
        // Always a write: it takes SQLite's exclusive lock now, not at the first record.
        tx.execute(
            "INSERT INTO spool_info (key, value) VALUES ('spool_id', ?1) \
             ON CONFLICT (key) DO UPDATE SET value = ?1",
            [&spool_id],
        )?;
        tx.commit()?;
        if marker.is_none() {
            // Everything into the database file before the marker says it exists, so a
            // marked spool is never legitimately empty.
            let _: (i64, i64, i64) =
                conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })?;
            write_marker(
                marker_path,
                &Marker {
                    spool_id: spool_id.clone(),
                    created_unix: unix_now(),
                },
            )?;
        }
        let mut spool = Spool {
            conn,
            opts,
            queue: BTreeMap::new(),
            loaded_upto: 0,
            all_loaded: false,
            busy_sessions: HashSet::new(),
            in_flight: 0,
            stats: SpoolStats::default(),
            identity: spool_id,
            _lock: lock,
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
        self.commit(now, records, &[])
    }

    /// Commits records and sessions' last known counters in one transaction (one
    /// fsync): all or none. The counters update the open-session rows they name (a
    /// session already stopped has none: nothing happens) unless the row already holds
    /// later ones.
    pub fn commit(
        &mut self,
        now: Instant,
        records: &[AcctRecord],
        last_known: &[LastKnown],
    ) -> Result<Vec<SpoolId>, SpoolError> {
        self.commit_with_usage(now, records, last_known, &[])
    }

    /// [`Spool::commit`] with the rating ledger's usage records of the same pass, in the
    /// same transaction: they wait in the spool until [`Spool::usage_done`] (the ledger
    /// has them), so a ledger that cannot be reached loses none.
    pub fn commit_with_usage(
        &mut self,
        now: Instant,
        records: &[AcctRecord],
        last_known: &[LastKnown],
        usage: &[UsageRecord],
    ) -> Result<Vec<SpoolId>, SpoolError> {
        if records.is_empty() && last_known.is_empty() && usage.is_empty() {
            return Ok(Vec::new());
        }
        let tx = self.conn.transaction()?;
        if !usage.is_empty() {
            let mut ins = tx
                .prepare_cached("INSERT INTO usage_record (kind, rid, body) VALUES (?1, ?2, ?3)")?;
            for u in usage {
                let body = serde_json::to_string(u).map_err(|e| SpoolError::Corrupt {
                    id: 0,
                    message: e.to_string(),
                })?;
                ins.execute(params![u.kind(), u.id(), body])?;
            }
        }
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
                    let open = serde_json::to_string(&OpenBody {
                        last: record.clone(),
                    })
                    .unwrap_or_default();
                    let start = record
                        .event_time
                        .saturating_sub(record.session_time_s as u64);
                    let c = &record.counters;
                    tx.execute(
                        "INSERT INTO open_session (session_id, body, updated_unix, start_unix, seen_unix, \
                         octets_up, octets_down, packets_up, packets_down) \
                         VALUES (?1, ?2, ?3, ?4, ?3, ?5, ?6, ?7, ?8) \
                         ON CONFLICT (session_id) DO UPDATE SET body = ?2, updated_unix = ?3, \
                         start_unix = coalesce(start_unix, ?4), seen_unix = ?3, octets_up = ?5, \
                         octets_down = ?6, packets_up = ?7, packets_down = ?8",
                        params![
                            record.session_id,
                            open,
                            record.event_time as i64,
                            start as i64,
                            c.octets_up as i64,
                            c.octets_down as i64,
                            c.packets_up as i64,
                            c.packets_down as i64
                        ],
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
        if !last_known.is_empty() {
            let mut update = tx.prepare_cached(
                "UPDATE open_session SET seen_unix = ?2, octets_up = ?3, octets_down = ?4, \
                 packets_up = ?5, packets_down = ?6 \
                 WHERE session_id = ?1 AND (seen_unix IS NULL OR seen_unix <= ?2)",
            )?;
            for k in last_known {
                let c = &k.counters;
                update.execute(params![
                    k.session_id,
                    k.at_unix as i64,
                    c.octets_up as i64,
                    c.octets_down as i64,
                    c.packets_up as i64,
                    c.packets_down as i64
                ])?;
            }
        }
        tx.commit()?;
        self.stats.enqueued += records.len() as u64;
        self.stats.usage_enqueued += usage.len() as u64;
        if !last_known.is_empty() {
            self.stats.last_known += last_known.len() as u64;
            self.stats.last_known_commits += 1;
        }
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

    /// Moves a record that can never be sent (its body does not read back; the shell
    /// cannot encode it) to the `set_aside` table, with the reason, so that the records
    /// behind it go out. It stays there for the operator; nothing sends it again.
    pub fn set_aside(&mut self, now: Instant, id: SpoolId, reason: &str) -> Result<(), SpoolError> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT OR REPLACE INTO set_aside (id, session_id, status, body, enqueued_unix, reason) \
             SELECT id, session_id, status, body, enqueued_unix, ?2 FROM record WHERE id = ?1",
            params![id, reason],
        )?;
        tx.execute("DELETE FROM record WHERE id = ?1", [id])?;
        tx.commit()?;
        if let Some(m) = self.queue.remove(&id)
            && m.in_flight
        {
            self.in_flight -= 1;
            self.busy_sessions.remove(&m.session_id);
        }
        self.stats.set_aside += 1;
        self.refill(now)
    }

    /// Records moved aside, oldest first: (id, session, reason).
    pub fn set_aside_records(&self) -> Result<Vec<(SpoolId, String, String)>, SpoolError> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, session_id, reason FROM set_aside ORDER BY id")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The spool's identity: made at random when the spool was created, kept in it and in
    /// its marker; a new one when the operator starts afresh.
    pub fn identity(&self) -> &str {
        &self.identity
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
        let record: AcctRecord = match serde_json::from_str(&body) {
            Ok(r) => r,
            Err(e) => {
                // It can never be sent; it must not hold up the records behind it.
                let reason = format!("the stored record does not read back: {e}");
                tracing::error!(record = id, %reason, "accounting record set aside");
                self.set_aside(now, id, &reason)?;
                return self.next_due(now);
            }
        };
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
        if let Some(m) = self.queue.remove(&id)
            && m.in_flight
        {
            self.in_flight -= 1;
            self.busy_sessions.remove(&m.session_id);
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
            if let Some(m) = self.queue.remove(id)
                && m.in_flight
            {
                self.in_flight -= 1;
                self.busy_sessions.remove(&m.session_id);
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

    /// The oldest rating usage records waiting for the ledger, at most `limit`. A body that does not read
    /// back (it cannot be: the spool wrote it) is dropped with an error logged, so that
    /// it blocks nothing.
    pub fn usage_due(&mut self, limit: usize) -> Result<Vec<(SpoolId, UsageRecord)>, SpoolError> {
        let rows: Vec<(SpoolId, String)> = {
            let mut stmt = self
                .conn
                .prepare_cached("SELECT id, body FROM usage_record ORDER BY id LIMIT ?1")?;
            let rows = stmt.query_map(params![limit as i64], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<Result<_, _>>()?
        };
        let mut out = Vec::with_capacity(rows.len());
        for (id, body) in rows {
            match serde_json::from_str(&body) {
                Ok(u) => out.push((id, u)),
                Err(e) => {
                    tracing::error!(record = id, error = %e, "rating usage record in the spool does not read back: dropped");
                    self.usage_done(&[id])?;
                }
            }
        }
        Ok(out)
    }

    /// The ledger has these usage records (or refused them for good): delete them, in
    /// one transaction.
    pub fn usage_done(&mut self, ids: &[SpoolId]) -> Result<(), SpoolError> {
        if ids.is_empty() {
            return Ok(());
        }
        let tx = self.conn.transaction()?;
        {
            let mut del = tx.prepare_cached("DELETE FROM usage_record WHERE id = ?1")?;
            for id in ids {
                del.execute([id])?;
            }
        }
        tx.commit()?;
        self.stats.usage_done += ids.len() as u64;
        Ok(())
    }

    /// Rating usage records waiting for the ledger (on disk).
    pub fn usage_pending(&self) -> Result<u64, SpoolError> {
        Ok(self
            .conn
            .query_row("SELECT count(*) FROM usage_record", [], |r| {
                r.get::<_, i64>(0)
            })? as u64)
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
        let mut stmt = self.conn.prepare(
            "SELECT body, start_unix, seen_unix, octets_up, octets_down, packets_up, packets_down \
             FROM open_session ORDER BY session_id",
        )?;
        type Row = (
            String,
            Option<i64>,
            Option<i64>,
            Option<i64>,
            Option<i64>,
            Option<i64>,
            Option<i64>,
        );
        let rows = stmt.query_map([], |r| -> rusqlite::Result<Row> {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (body, start, seen, ou, od, pu, pd) = row?;
            let OpenBody { last } =
                serde_json::from_str(&body).map_err(|e| SpoolError::Corrupt {
                    id: 0,
                    message: format!("open session: {e}"),
                })?;
            // Rows of schema 1 have only the record.
            let counters = match (ou, od, pu, pd) {
                (Some(ou), Some(od), Some(pu), Some(pd)) => Counters {
                    octets_up: ou as u64,
                    octets_down: od as u64,
                    packets_up: pu as u64,
                    packets_down: pd as u64,
                },
                _ => last.counters,
            };
            let start_unix = start.map_or_else(
                || last.event_time.saturating_sub(last.session_time_s as u64),
                |s| s as u64,
            );
            out.push(OpenSession {
                seen_unix: seen.map_or(last.event_time, |s| s as u64),
                start_unix,
                counters,
                last,
            });
        }
        Ok(out)
    }

    /// At start, before any new session: closes every session that was open when the
    /// process stopped, with a Stop (cause Restart, Acct-Terminate-Cause NAS-Reboot)
    /// carrying its last known counters, stamped with the time they were known
    /// (Event-Timestamp; the session time runs from its real start to then). `now_unix`
    /// only bounds that time (a clock that went back). Returns the Stops' ids.
    pub fn recover(&mut self, now: Instant, now_unix: u64) -> Result<Vec<SpoolId>, SpoolError> {
        self.recover_rated(now, now_unix, |_| None)
    }

    /// [`Spool::recover`], with each Stop's usage record for the rating ledger (`rate`)
    /// committed in the same transaction.
    pub fn recover_rated(
        &mut self,
        now: Instant,
        now_unix: u64,
        rate: impl Fn(&AcctRecord) -> Option<UsageRecord>,
    ) -> Result<Vec<SpoolId>, SpoolError> {
        let stops: Vec<AcctRecord> = self
            .open_sessions()?
            .into_iter()
            .map(|open| {
                let seen = open.seen_unix.min(now_unix.max(open.start_unix));
                let start = open.start_unix.min(seen);
                AcctRecord {
                    status: AcctStatusType::Stop,
                    cause: Some(DisconnectCause::Restart),
                    event_time: seen,
                    counters: open.counters,
                    session_time_s: (seen - start).min(u32::MAX as u64) as u32,
                    ..open.last
                }
            })
            .collect();
        let usage: Vec<UsageRecord> = stops.iter().filter_map(rate).collect();
        let ids = self.commit_with_usage(now, &stops, &[], &usage)?;
        self.stats.recovered += ids.len() as u64;
        Ok(ids)
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `path` with `suffix` appended to its file name (`accounting.db` -> `accounting.db.lock`).
fn beside(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn file_error(path: &Path, what: &'static str) -> impl FnOnce(std::io::Error) -> SpoolError {
    let path = path.to_path_buf();
    move |error| SpoolError::File { path, what, error }
}

/// Takes the exclusive lock on `FILE.lock` without waiting (std's [`File::try_lock`],
/// a `flock` on Linux), and writes our pid into it. The kernel releases it when the
/// process ends, however it ends.
///
/// [`File::try_lock`]: std::fs::File::try_lock
fn lock(path: &Path) -> Result<std::fs::File, SpoolError> {
    let lock_path = beside(path, ".lock");
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .map_err(file_error(&lock_path, "opening the lock file"))?;
    match f.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut text = String::new();
            let _ = f.read_to_string(&mut text);
            let holder = match text.trim().parse::<u32>() {
                Ok(pid) => format!(", pid {pid}"),
                Err(_) => String::new(),
            };
            return Err(SpoolError::InUse {
                path: path.to_path_buf(),
                lock: lock_path,
                holder,
            });
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(file_error(&lock_path, "locking")(e));
        }
    }
    let _ = f.set_len(0);
    let _ = writeln!(f, "{}", std::process::id());
    Ok(f)
}

fn read_marker(path: &Path) -> Result<Option<Marker>, SpoolError> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| SpoolError::File {
                path: path.to_path_buf(),
                what: "reading the marker",
                error: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(file_error(path, "reading the marker")(e)),
    }
}

/// Writes the marker durably: a temporary file, fsynced, renamed over, directory synced.
fn write_marker(path: &Path, m: &Marker) -> Result<(), SpoolError> {
    let tmp = beside(path, ".tmp");
    let text = serde_json::to_string(m).unwrap_or_default();
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        writeln!(f, "{text}")?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    };
    write().map_err(file_error(path, "writing the marker"))
}

/// What is wrong with a marked spool's file that can be seen without SQLite: missing,
/// empty, not an SQLite file, shorter than its header says.
fn check_file(path: &Path) -> Result<(), String> {
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err("is missing".into()),
        Err(e) => return Err(format!("cannot be read ({e})")),
    };
    let len = f
        .metadata()
        .map_err(|e| format!("cannot be read ({e})"))?
        .len();
    if len == 0 {
        return Err("is empty (0 bytes)".into());
    }
    let mut head = [0u8; 100];
    if len < head.len() as u64 || f.read_exact(&mut head).is_err() {
        return Err(format!(
            "is truncated ({len} bytes, shorter than an SQLite header)"
        ));
    }
    if &head[..16] != b"SQLite format 3\0" {
        return Err(format!(
            "is not an SQLite database ({len} bytes, no SQLite header)"
        ));
    }
    let page_size = match u16::from_be_bytes([head[16], head[17]]) {
        1 => 65536,
        n => n as u64,
    };
    let pages = u32::from_be_bytes([head[28], head[29], head[30], head[31]]) as u64;
    // The page count is valid when the change counter matches "version valid for".
    let valid = head[24..28] == head[92..96];
    if valid && len < pages * page_size {
        return Err(format!(
            "is truncated ({len} bytes; its header says {pages} pages of {page_size} bytes)"
        ));
    }
    Ok(())
}

fn lost(path: &Path, marker_path: &Path, m: &Marker, found: String) -> SpoolError {
    SpoolError::Lost {
        path: path.to_path_buf(),
        marker: marker_path.to_path_buf(),
        found,
        spool_id: m.spool_id.clone(),
        created_unix: m.created_unix,
    }
}

/// Start afresh: renames the damaged spool and its WAL files to `FILE.lost-UNIXTIME...`
/// and removes the marker. Nothing is deleted.
fn move_aside(path: &Path, found: &str) -> Result<(), SpoolError> {
    let stamp = unix_now();
    for suffix in ["", "-wal", "-shm"] {
        let from = beside(path, suffix);
        if from.exists() {
            let to = beside(path, &format!(".lost-{stamp}{suffix}"));
            std::fs::rename(&from, &to).map_err(file_error(&from, "moving the old spool aside"))?;
        }
    }
    let marker = beside(path, ".marker");
    match std::fs::remove_file(&marker) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(file_error(&marker, "removing the marker")(e)),
    }
    tracing::warn!(
        spool = %path.display(),
        found,
        kept_as = %beside(path, &format!(".lost-{stamp}")).display(),
        "starting a new accounting spool as the operator asked (--spool-afresh)"
    );
    Ok(())
}

/// A new spool's identity: 16 random bytes, hex.
fn new_spool_id() -> String {
    let mut b = [0u8; 16];
    if crate::os_random::fill(&mut b).is_err() {
        // An identity, not a secret: time and pid are unique enough.
        b[..8].copy_from_slice(&unix_now().to_be_bytes());
        b[8..12].copy_from_slice(&std::process::id().to_be_bytes());
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
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
            access: None,
            ipv6: None,
            tunnel: None,
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
    fn a_second_opener_is_refused_at_once_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spool.db");
        // An existing spool: SQLite alone would let a second reader in (its exclusive
        // lock comes with the first write).
        drop(open(dir.path()));
        let s = open(dir.path());
        let started = std::time::Instant::now();
        let second = Spool::open(&path, SpoolOptions::default());
        let e = second.expect_err("the spool is locked by its first user");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "refused at once"
        );
        assert!(matches!(e, SpoolError::InUse { .. }), "{e}");
        let msg = e.to_string();
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(
            msg.contains(&format!("pid {}", std::process::id())),
            "{msg}"
        );
        drop(s);
        let mut s = open(dir.path());
        s.enqueue(t(0), &rec("s1", AcctStatusType::Start, 0))
            .unwrap();
        assert_eq!(s.pending().unwrap(), 1);
    }

    fn start(session: &str, at: u64) -> AcctRecord {
        AcctRecord {
            event_time: at,
            session_time_s: 0,
            counters: Counters::default(),
            ..rec(session, AcctStatusType::Start, 0)
        }
    }

    fn known(session: &str, at: u64, octets: u64) -> LastKnown {
        LastKnown {
            session_id: session.into(),
            counters: Counters {
                octets_up: octets,
                octets_down: octets * 3,
                packets_up: octets / 100,
                packets_down: octets / 50,
            },
            at_unix: at,
        }
    }

    #[test]
    fn the_recovered_stop_has_the_real_start_and_the_last_known_counters() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut s = open(dir.path());
            s.enqueue_many(t(0), &[start("s1", 1_000), start("s2", 1_005)])
                .unwrap();
            // Two checkpoints in one commit each; an older one arriving late changes
            // nothing; a session already stopped is not brought back.
            s.commit(
                t(0),
                &[],
                &[known("s1", 1_030, 5_000), known("s2", 1_031, 700)],
            )
            .unwrap();
            s.commit(t(0), &[], &[known("s1", 1_020, 4_000)]).unwrap();
            let mut stop = rec("s2", AcctStatusType::Stop, 900);
            stop.event_time = 1_040;
            s.commit(t(0), &[stop], &[known("s2", 1_041, 950)]).unwrap();
            assert_eq!(s.stats().last_known, 4);
            assert_eq!(s.stats().last_known_commits, 3);
        }
        let mut s = open(dir.path());
        let open_now = s.open_sessions().unwrap();
        assert_eq!(open_now.len(), 1);
        assert_eq!(
            (open_now[0].start_unix, open_now[0].seen_unix),
            (1_000, 1_030)
        );
        let ids = s.recover(t(0), 2_000).unwrap();
        assert_eq!(ids.len(), 1);
        let (_, stop) = s
            .records()
            .unwrap()
            .into_iter()
            .find(|(id, _)| *id == ids[0])
            .unwrap();
        assert_eq!(stop.session_id, "s1");
        assert_eq!(stop.counters, known("s1", 0, 5_000).counters);
        assert_eq!(stop.event_time, 1_030, "when the counters were last known");
        assert_eq!(stop.session_time_s, 30, "from the real start");
        assert_eq!(stop.cause, Some(DisconnectCause::Restart));
        // The session log line made from it starts at the real start.
        let line = tollgate_control_core::gateway::records::recovered(&stop);
        assert_eq!(line["start_ns"], 1_000_000_000_000i64);
        assert_eq!(line["session_time_s"], 30);
    }

    #[test]
    fn a_spool_of_schema_1_is_migrated_and_its_open_sessions_recovered() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spool.db");
        {
            let c = Connection::open(&path).unwrap();
            c.execute_batch(MIGRATIONS[0].sql).unwrap();
            c.execute_batch(
                "CREATE TABLE schema_version (version INTEGER NOT NULL);
                 INSERT INTO schema_version VALUES (1);",
            )
            .unwrap();
            let last = rec("old", AcctStatusType::InterimUpdate, 60);
            let body = serde_json::to_string(&OpenBody { last }).unwrap();
            c.execute("INSERT INTO open_session VALUES ('old', ?1, 1)", [body])
                .unwrap();
        }
        let s = Spool::open(&path, SpoolOptions::default()).unwrap();
        let o = s.open_sessions().unwrap();
        assert_eq!(o.len(), 1);
        assert_eq!(
            (o[0].start_unix, o[0].seen_unix, o[0].counters.octets_up),
            (1_700_000_000, 1_700_000_060, 60)
        );
        drop(s);
        assert!(
            dir.path().join("spool.db.marker").exists(),
            "marked from now on"
        );
    }

    #[test]
    fn a_spool_of_schema_2_from_before_the_history_is_adopted_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spool.db");
        let (records, sessions) = {
            let mut s = open(dir.path());
            for i in 0..5 {
                s.enqueue(t(0), &rec(&format!("s{i}"), AcctStatusType::Start, 0))
                    .unwrap();
            }
            let due = s.next_due(t(0)).unwrap().unwrap();
            s.set_aside(t(0), due.id, "cannot be encoded").unwrap();
            (s.records().unwrap(), s.open_sessions().unwrap())
        };
        // A file of schema 2 as it was then: the same tables and marker (without the
        // usage records of step 3), its version only in `schema_version`.
        {
            let c = Connection::open(&path).unwrap();
            c.execute_batch(&format!(
                "DROP TABLE {}; DROP TABLE usage_record; UPDATE schema_version SET version = 2;",
                migrate::HISTORY_TABLE
            ))
            .unwrap();
            assert!(migrate::history(&c).unwrap().is_empty());
        }
        let s = open(dir.path());
        assert_eq!(s.records().unwrap(), records);
        assert_eq!(records.len(), 4, "one of five set aside");
        assert_eq!(s.set_aside_records().unwrap().len(), 1);
        assert_eq!(s.open_sessions().unwrap(), sessions);
        assert_eq!(sessions.len(), 5);
        drop(s);
        let c = Connection::open(&path).unwrap();
        assert_eq!(
            migrate::history(&c).unwrap(),
            vec![
                (1, "record_and_open_session".into()),
                (2, "last_known_counters_set_aside_spool_info".into()),
                (3, "usage_record".into())
            ]
        );
        let v: i64 = c
            .query_row("SELECT version FROM schema_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION);
    }

    #[test]
    fn a_fresh_spool_records_every_step_and_a_newer_one_is_refused_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spool.db");
        drop(open(dir.path()));
        {
            let c = Connection::open(&path).unwrap();
            let h = migrate::history(&c).unwrap();
            assert_eq!(h.len(), MIGRATIONS.len());
            assert_eq!(h.last().unwrap().0, SCHEMA_VERSION);
            assert_eq!(migrate::latest(MIGRATIONS), SCHEMA_VERSION);
            c.execute("UPDATE schema_version SET version = 4", [])
                .unwrap();
        }
        let e = Spool::open(&path, SpoolOptions::default()).unwrap_err();
        assert!(
            matches!(
                e,
                SpoolError::SchemaTooNew {
                    found: 4,
                    supported: 3,
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains(&path.display().to_string()), "{e}");
    }

    fn damage(path: &Path, how: &str) {
        match how {
            "missing" => std::fs::remove_file(path).unwrap(),
            "empty" => std::fs::File::create(path).map(drop).unwrap(),
            "truncated" => {
                let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
                let len = f.metadata().unwrap().len();
                f.set_len(len / 2).unwrap();
            }
            "garbage" => std::fs::write(path, vec![0x5a; 8192]).unwrap(),
            "foreign" => {
                std::fs::remove_file(path).unwrap();
                let c = Connection::open(path).unwrap();
                c.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
                    .unwrap();
            }
            _ => unreachable!(),
        }
    }

    #[test]
    fn a_marked_spool_that_is_missing_empty_or_damaged_is_an_error_unless_afresh() {
        for (how, found) in [
            ("missing", "is missing"),
            ("empty", "is empty (0 bytes)"),
            ("truncated", "is truncated"),
            ("garbage", "is not an SQLite database"),
            ("foreign", "has no spool tables"),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("spool.db");
            {
                let mut s = open(dir.path());
                for i in 0..200 {
                    s.enqueue(t(0), &rec(&format!("s{i}"), AcctStatusType::Start, 0))
                        .unwrap();
                }
            }
            // A clean close checkpoints: the WAL is gone or empty, which is normal.
            let wal = dir.path().join("spool.db-wal");
            assert!(!wal.exists() || wal.metadata().unwrap().len() == 0);
            assert_eq!(open(dir.path()).pending().unwrap(), 200);
            damage(&path, how);
            let e = Spool::open(&path, SpoolOptions::default()).expect_err(how);
            let msg = e.to_string();
            assert!(matches!(e, SpoolError::Lost { .. }), "{how}: {msg}");
            assert!(msg.contains(found), "{how}: {msg}");
            assert!(msg.contains(&path.display().to_string()), "{msg}");
            assert!(msg.contains("--spool-afresh"), "{msg}");
            // Refusing changed nothing: it is refused again.
            assert!(Spool::open(&path, SpoolOptions::default()).is_err());
            let afresh = SpoolOptions {
                start_afresh: true,
                ..SpoolOptions::default()
            };
            let mut s = Spool::open(&path, afresh).unwrap();
            assert_eq!(s.pending().unwrap(), 0, "{how}: a new spool");
            s.enqueue(t(0), &rec("new", AcctStatusType::Start, 0))
                .unwrap();
            drop(s);
            let kept = std::fs::read_dir(dir.path())
                .unwrap()
                .filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().contains(".lost-"))
                .count();
            assert_eq!(kept > 0, how != "missing", "{how}: the old file is kept");
            // The new spool is marked and opens normally.
            assert_eq!(open(dir.path()).pending().unwrap(), 1, "{how}");
        }
    }

    #[test]
    fn an_unmarked_empty_file_is_a_new_spool() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::File::create(dir.path().join("spool.db")).unwrap();
        let s = open(dir.path());
        assert_eq!(s.pending().unwrap(), 0);
    }

    #[test]
    fn a_record_that_does_not_read_back_is_set_aside_and_blocks_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = open(dir.path());
        let ids = s
            .enqueue_many(
                t(0),
                &[
                    rec("s1", AcctStatusType::Start, 0),
                    rec("s1", AcctStatusType::Stop, 5),
                ],
            )
            .unwrap();
        s.conn
            .execute("UPDATE record SET body = '{' WHERE id = ?1", [ids[0]])
            .unwrap();
        let d = s.next_due(t(0)).unwrap().unwrap();
        assert_eq!(d.id, ids[1], "the Stop goes out");
        assert_eq!(s.stats().set_aside, 1);
        let aside = s.set_aside_records().unwrap();
        assert_eq!(aside.len(), 1);
        assert_eq!((aside[0].0, aside[0].1.as_str()), (ids[0], "s1"));
        assert!(aside[0].2.contains("does not read back"), "{}", aside[0].2);
        // And one the shell cannot encode, set aside by it.
        s.set_aside(t(0), d.id, "cannot encode: too long").unwrap();
        assert_eq!(s.pending().unwrap(), 0);
        assert_eq!(s.in_flight(), 0);
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
