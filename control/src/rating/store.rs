//! Durable storage for rating: usage records, the plans periods were rated with, closed
//! periods and their invoices. In a SQLite file (WAL, synchronous=FULL), the embedded
//! default, or in the cluster's PostgreSQL (`[database]`), with the same schema steps
//! and the same statements (see [`crate::database::backend`]).
//!
//! Records are stored once per `(kind, id)`: storing the same record again is a no-op,
//! storing a different record under a used id is refused. Each record gets a sequence
//! number; a closed period remembers the highest one it saw (its watermark), so a
//! re-rating reads exactly the records the original run read. Closing a period is one
//! transaction: interrupted anywhere, nothing of it is kept, and running it again gives
//! the same invoices.

use std::collections::HashMap;
use std::path::Path;

use rusqlite::Connection;
use serde::{Deserialize, Serialize};

use super::RatingError;
use crate::database::DatabaseConfig;
use crate::database::backend::{Arg, Backend, BackendError, Row};
use crate::migrate::{self, MigrateError, Step};
use tollgate_control_core::rating::rate::Records;
use tollgate_control_core::rating::usage::Record;

/// The schema version this build writes (the newest of [`MIGRATIONS`]).
pub const SCHEMA_VERSION: i64 = 1;

/// The ledger's schema, step by step (see [`crate::migrate`]; add a step, never edit one).
/// Step 1 is the schema ledgers had before they were versioned (`IF NOT EXISTS`), so a
/// ledger from then is adopted by running it.
const MIGRATIONS: &[Step] = &[Step {
    version: 1,
    name: "record_plan_period_invoice",
    sql: SCHEMA_1,
}];

const SCHEMA_1: &str = "
CREATE TABLE IF NOT EXISTS record (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    kind    TEXT NOT NULL,
    id      TEXT NOT NULL,
    skey    TEXT NOT NULL,
    t_from  INTEGER NOT NULL,
    t_to    INTEGER NOT NULL,
    final   INTEGER NOT NULL,
    body    TEXT NOT NULL,
    UNIQUE (kind, id)
);
CREATE INDEX IF NOT EXISTS record_time ON record (kind, t_to, t_from);
CREATE INDEX IF NOT EXISTS record_skey ON record (kind, skey, t_from);
CREATE TABLE IF NOT EXISTS plan (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    body    TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS period (
    name      TEXT PRIMARY KEY,
    plan      INTEGER NOT NULL REFERENCES plan (id),
    closed_at INTEGER NOT NULL,
    watermark INTEGER NOT NULL,
    report    TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS invoice (
    period  TEXT NOT NULL REFERENCES period (name),
    account TEXT NOT NULL,
    total   INTEGER NOT NULL,
    body    TEXT NOT NULL,
    PRIMARY KEY (period, account)
);
";

/// What storing a record did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stored {
    /// Stored now.
    New,
    /// Already there, identical.
    Duplicate,
}

/// A closed period as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClosedPeriod {
    /// `YYYY-MM`.
    pub period: String,
    /// The stored plan's id.
    pub plan: i64,
    /// When it was closed (Unix seconds).
    pub closed_at: i64,
    /// Highest record sequence number the run read.
    pub watermark: i64,
}

/// Where a period close may be interrupted (for fault-injection tests).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseStep {
    /// The plan is stored, nothing rated yet.
    PlanStored,
    /// The records are rated, no invoice written.
    Rated,
    /// Some invoices are written.
    InvoicesWritten,
    /// Everything is written, not yet committed.
    BeforeCommit,
}

impl CloseStep {
    /// The name used by `TOLLGATE_BILLING_ABORT_AT`.
    pub fn name(self) -> &'static str {
        match self {
            CloseStep::PlanStored => "plan-stored",
            CloseStep::Rated => "rated",
            CloseStep::InvoicesWritten => "invoices-written",
            CloseStep::BeforeCommit => "before-commit",
        }
    }
}

/// The table that records the ledger's schema steps in the cluster's PostgreSQL (a
/// SQLite ledger has the file's own `refinery_schema_history`).
pub const POSTGRES_HISTORY: &str = "tollgate_rating_history";

/// The ledger: a SQLite file, or the cluster's PostgreSQL (`[database]`). Every
/// statement below is written once and runs on both ([`Backend`]).
#[derive(Debug)]
pub struct Store {
    conn: Backend,
    name: String,
}

fn db(context: impl Into<String>) -> impl FnOnce(BackendError) -> RatingError {
    let context = context.into();
    move |source| RatingError::Db { context, source }
}

fn sq(context: impl Into<String>) -> impl FnOnce(rusqlite::Error) -> RatingError {
    let context = context.into();
    move |source| RatingError::Db {
        context,
        source: source.into(),
    }
}

/// A transaction on the ledger: rolled back when dropped uncommitted.
pub struct Tx<'a> {
    tx: crate::database::backend::Tx<'a>,
    name: &'a str,
}

impl Tx<'_> {
    /// Commits it; `what` says what for the error.
    pub fn commit(self, what: &str) -> Result<(), RatingError> {
        let name = self.name;
        self.tx
            .commit()
            .map_err(db(format!("{name}: committing {what}")))
    }
}

impl Store {
    /// Opens (creating if needed) the database file.
    pub fn open(path: &Path) -> Result<Store, RatingError> {
        let name = path.display().to_string();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| RatingError::Io {
                path: dir.display().to_string(),
                message: format!("cannot create the directory: {e}"),
            })?;
        }
        let conn = Connection::open(path).map_err(sq(format!("opening {name}")))?;
        Store::init(conn, name)
    }

    /// An in-memory store (tests).
    pub fn in_memory() -> Result<Store, RatingError> {
        let conn = Connection::open_in_memory().map_err(sq("opening an in-memory database"))?;
        Store::init(conn, ":memory:".into())
    }

    /// Opens the ledger in the cluster's PostgreSQL, bringing its schema up to date. A
    /// database that cannot be reached, refuses, or was written by a newer Tollgate is an
    /// error that says which.
    pub fn open_postgres(cfg: &DatabaseConfig) -> Result<Store, RatingError> {
        let name = format!("PostgreSQL {}", cfg.target());
        let mut client = cfg.connect().map_err(RatingError::Database)?;
        migrate::migrate_postgres(&mut client, &name, POSTGRES_HISTORY, MIGRATIONS).map_err(
            |e| match e {
                MigrateError::TooNew {
                    file,
                    found,
                    supported,
                } => RatingError::SchemaTooNew {
                    file,
                    found,
                    supported,
                },
                e => RatingError::Migration(e),
            },
        )?;
        let conn = Backend::postgres(client, cfg);
        // PostgreSQL's btree index holds at most about 2700 bytes of a row, a plan with
        // its accounts many kilobytes: the plan body is unique by its MD5 there (SQLite
        // indexes any length). Under the migration's lock, once.
        let tx = conn
            .begin()
            .map_err(db(format!("{name}: the plan index")))?;
        conn.batch(&format!(
            "SELECT pg_advisory_xact_lock(hashtext('{POSTGRES_HISTORY}'));
             ALTER TABLE plan DROP CONSTRAINT IF EXISTS plan_body_key;
             CREATE UNIQUE INDEX IF NOT EXISTS plan_body_md5 ON plan (md5(body));"
        ))
        .map_err(db(format!("{name}: the plan index")))?;
        tx.commit().map_err(db(format!("{name}: the plan index")))?;
        Ok(Store { conn, name })
    }

    fn init(mut conn: Connection, name: String) -> Result<Store, RatingError> {
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(sq(format!("{name}: setting the busy timeout")))?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(sq(format!("{name}: enabling WAL")))?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(sq(format!("{name}: setting synchronous=FULL")))?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(sq(format!("{name}: enabling foreign keys")))?;
        migrate::migrate(&mut conn, &name, MIGRATIONS).map_err(|e| match e {
            MigrateError::TooNew {
                file,
                found,
                supported,
            } => RatingError::SchemaTooNew {
                file,
                found,
                supported,
            },
            e => RatingError::Migration(e),
        })?;
        Ok(Store {
            conn: Backend::Sqlite(conn),
            name,
        })
    }

    /// The database's name (its path, or `PostgreSQL USER@HOST:PORT/DBNAME`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the ledger is in PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        self.conn.is_postgres()
    }

    /// Begins a transaction (SQLite: an immediate one); dropped without commit, it rolls
    /// back.
    pub fn begin(&self) -> Result<Tx<'_>, RatingError> {
        let tx = self
            .conn
            .begin()
            .map_err(db(format!("{}: beginning a transaction", self.name)))?;
        Ok(Tx {
            tx,
            name: &self.name,
        })
    }

    /// Begins the transaction of a period close. SQLite's immediate transaction already
    /// holds the file's write lock. In PostgreSQL, where several nodes store records and
    /// may close at once, it takes a transaction-scoped advisory lock (one closer at a
    /// time; the next finds the period closed) and locks the record table against
    /// writers (SHARE), so that every record numbered up to the watermark it reads is
    /// committed and visible: a re-rating reads exactly these records.
    pub fn begin_close(&self) -> Result<Tx<'_>, RatingError> {
        let tx = self.begin()?;
        if self.is_postgres() {
            self.conn
                .batch(
                    "SELECT pg_advisory_xact_lock(hashtext('tollgate rating close'));
                     LOCK TABLE record IN SHARE MODE",
                )
                .map_err(db(format!("{}: locking for the period close", self.name)))?;
        }
        Ok(tx)
    }

    /// Stores one record (idempotent by kind and id).
    pub fn insert(&self, rec: &Record) -> Result<Stored, RatingError> {
        rec.validate().map_err(|m| RatingError::InvalidRecord {
            kind: rec.kind(),
            id: rec.id().to_string(),
            message: m,
        })?;
        let body = serde_json::to_string(rec).map_err(|e| RatingError::InvalidRecord {
            kind: rec.kind(),
            id: rec.id().to_string(),
            message: e.to_string(),
        })?;
        let (skey, t_from, t_to, fin) = match rec {
            Record::Session(s) => (
                skey(&s.user, &s.session),
                s.start,
                s.stop,
                s.cause.is_some(),
            ),
            Record::Bandwidth(b) => (skey(&b.user, &b.session), b.at, b.at, false),
            Record::Tunnel(t) => (String::new(), t.start, t.stop, false),
            Record::Service(s) => (String::new(), s.at, s.at, false),
        };
        let n = self
            .conn
            .execute(
                "INSERT INTO record (kind, id, skey, t_from, t_to, final, body)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (kind, id) DO NOTHING",
                &[
                    Arg::Text(rec.kind()),
                    Arg::Text(rec.id()),
                    Arg::Text(&skey),
                    Arg::Int(t_from),
                    Arg::Int(t_to),
                    Arg::Int(i64::from(fin)),
                    Arg::Text(&body),
                ],
            )
            .map_err(db(format!(
                "{}: storing {} record {:?}",
                self.name,
                rec.kind(),
                rec.id()
            )))?;
        if n == 1 {
            return Ok(Stored::New);
        }
        let old = self
            .conn
            .query_one(
                "SELECT body FROM record WHERE kind = ?1 AND id = ?2",
                &[Arg::Text(rec.kind()), Arg::Text(rec.id())],
            )
            .and_then(|r| r.text(0))
            .map_err(db(format!(
                "{}: reading {} record {:?}",
                self.name,
                rec.kind(),
                rec.id()
            )))?;
        if old == body {
            Ok(Stored::Duplicate)
        } else {
            Err(RatingError::Conflict {
                kind: rec.kind(),
                id: rec.id().to_string(),
            })
        }
    }

    /// The highest record sequence number (0 when empty).
    pub fn watermark(&self) -> Result<i64, RatingError> {
        self.conn
            .query_one("SELECT COALESCE(MAX(seq), 0) FROM record", &[])
            .and_then(|r| r.int(0))
            .map_err(db(format!("{}: reading the watermark", self.name)))
    }

    /// Counts of stored records by kind.
    pub fn counts(&self) -> Result<Vec<(String, i64)>, RatingError> {
        self.conn
            .query(
                "SELECT kind, COUNT(*) FROM record GROUP BY kind ORDER BY kind",
                &[],
            )
            .and_then(|rows| rows.iter().map(|r| Ok((r.text(0)?, r.int(1)?))).collect())
            .map_err(db(format!("{}: counting records", self.name)))
    }

    /// Records that matter for `[from, to)`, up to sequence number `watermark`:
    /// sessions and tunnel use overlapping it, service use inside it, and every
    /// session's declared-bandwidth history from the last change point before it.
    pub fn load(&self, from: i64, to: i64, watermark: i64) -> Result<Records, RatingError> {
        let ctx = || format!("{}: reading the records of {from}..{to}", self.name);
        let args = [Arg::Int(from), Arg::Int(to), Arg::Int(watermark)];
        let mut bodies: Vec<String> = Vec::new();
        for sql in [
            "SELECT body FROM record WHERE kind IN ('session', 'tunnel') AND t_to >= ?1
             AND t_from < ?2 AND seq <= ?3 ORDER BY seq",
            "SELECT body FROM record WHERE kind = 'service' AND t_from >= ?1 AND t_from < ?2
             AND seq <= ?3 ORDER BY seq",
            "SELECT body FROM (
                 SELECT body, seq FROM record WHERE kind = 'bandwidth' AND t_from >= ?1
                     AND t_from < ?2 AND seq <= ?3
                 UNION ALL
                 SELECT body, seq FROM (
                     SELECT body, seq, ROW_NUMBER() OVER (
                         PARTITION BY skey ORDER BY t_from DESC, seq DESC) AS rn
                     FROM record WHERE kind = 'bandwidth' AND t_from < ?1 AND seq <= ?3)
                     AS latest
                 WHERE rn = 1) AS bandwidth
             ORDER BY seq",
        ] {
            for mut row in self.conn.query(sql, &args).map_err(db(ctx()))? {
                bodies.push(row.take_text(0).map_err(db(ctx()))?);
            }
        }
        let mut records = Vec::with_capacity(bodies.len());
        for b in &bodies {
            let r: Record = serde_json::from_str(b).map_err(|e| RatingError::Corrupt {
                what: format!("{}: a stored record", self.name),
                message: e.to_string(),
            })?;
            records.push(r);
        }
        let mut rec = Records::from_records(records);
        // Session ends for every bandwidth history, wherever the final record lies.
        let rows = self
            .conn
            .query(
                "SELECT skey, MIN(t_to) FROM record WHERE kind = 'session' AND final = 1
                 AND seq <= ?2 AND skey IN (
                     SELECT skey FROM record WHERE kind = 'bandwidth' AND t_from < ?1 AND seq <= ?2)
                 GROUP BY skey",
                &[Arg::Int(to), Arg::Int(watermark)],
            )
            .map_err(db(ctx()))?;
        let mut ends: HashMap<(String, String), i64> = HashMap::new();
        for row in rows {
            let (k, stop) = (row.text(0), row.int(1));
            let (k, stop) = (k.map_err(db(ctx()))?, stop.map_err(db(ctx()))?);
            if let Some((u, s)) = k.split_once('\u{1f}') {
                ends.insert((u.to_string(), s.to_string()), stop);
            }
        }
        for (k, v) in ends {
            let e = rec.ends.entry(k).or_insert(v);
            *e = (*e).min(v);
        }
        Ok(rec)
    }

    /// Records stored after `watermark` that fall into `[from, to)` (late records).
    pub fn late(&self, from: i64, to: i64, watermark: i64) -> Result<i64, RatingError> {
        self.conn
            .query_one(
                "SELECT COUNT(*) FROM record WHERE seq > ?1 AND t_to >= ?2 AND t_from < ?3",
                &[Arg::Int(watermark), Arg::Int(from), Arg::Int(to)],
            )
            .and_then(|r| r.int(0))
            .map_err(db(format!("{}: counting late records", self.name)))
    }

    /// The id of a stored plan, storing it if new.
    pub fn plan_id(&self, body: &str) -> Result<i64, RatingError> {
        let ctx = || format!("{}: storing the plan", self.name);
        self.conn
            .execute(
                "INSERT INTO plan (body) VALUES (?1) ON CONFLICT DO NOTHING",
                &[Arg::Text(body)],
            )
            .map_err(db(ctx()))?;
        self.conn
            .query_one("SELECT id FROM plan WHERE body = ?1", &[Arg::Text(body)])
            .and_then(|r| r.int(0))
            .map_err(db(ctx()))
    }

    /// A stored plan.
    pub fn plan_body(&self, id: i64) -> Result<String, RatingError> {
        self.conn
            .query_one("SELECT body FROM plan WHERE id = ?1", &[Arg::Int(id)])
            .and_then(|r| r.text(0))
            .map_err(db(format!("{}: reading plan {id}", self.name)))
    }

    /// A closed period, if it is one.
    pub fn period(&self, name: &str) -> Result<Option<ClosedPeriod>, RatingError> {
        self.conn
            .query_opt(
                "SELECT name, plan, closed_at, watermark FROM period WHERE name = ?1",
                &[Arg::Text(name)],
            )
            .and_then(|r| r.as_ref().map(closed_period).transpose())
            .map_err(db(format!("{}: reading period {name}", self.name)))
    }

    /// The closed periods, oldest first.
    pub fn periods(&self) -> Result<Vec<ClosedPeriod>, RatingError> {
        self.conn
            .query(
                "SELECT name, plan, closed_at, watermark FROM period ORDER BY name",
                &[],
            )
            .and_then(|rows| rows.iter().map(closed_period).collect())
            .map_err(db(format!("{}: listing periods", self.name)))
    }

    /// The stored report of a closed period.
    pub fn period_report(&self, name: &str) -> Result<Option<String>, RatingError> {
        self.conn
            .query_opt(
                "SELECT report FROM period WHERE name = ?1",
                &[Arg::Text(name)],
            )
            .and_then(|r| r.map(|r| r.text(0)).transpose())
            .map_err(db(format!("{}: reading period {name}", self.name)))
    }

    /// Marks a period closed (inside the caller's transaction).
    pub fn insert_period(&self, p: &ClosedPeriod, report: &str) -> Result<(), RatingError> {
        self.conn
            .execute(
                "INSERT INTO period (name, plan, closed_at, watermark, report) VALUES (?1, ?2, ?3, ?4, ?5)",
                &[
                    Arg::Text(&p.period),
                    Arg::Int(p.plan),
                    Arg::Int(p.closed_at),
                    Arg::Int(p.watermark),
                    Arg::Text(report),
                ],
            )
            .map(|_| ())
            .map_err(db(format!("{}: closing period {}", self.name, p.period)))
    }

    /// Stores an invoice (inside the caller's transaction).
    pub fn insert_invoice(
        &self,
        period: &str,
        account: &str,
        total: i64,
        body: &str,
    ) -> Result<(), RatingError> {
        self.conn
            .execute(
                "INSERT INTO invoice (period, account, total, body) VALUES (?1, ?2, ?3, ?4)",
                &[
                    Arg::Text(period),
                    Arg::Text(account),
                    Arg::Int(total),
                    Arg::Text(body),
                ],
            )
            .map(|_| ())
            .map_err(db(format!(
                "{}: storing the invoice of {account} for {period}",
                self.name
            )))
    }

    /// The stored invoices of a period, by account.
    pub fn invoices(&self, period: &str) -> Result<Vec<(String, String)>, RatingError> {
        self.conn
            .query(
                "SELECT account, body FROM invoice WHERE period = ?1 ORDER BY account",
                &[Arg::Text(period)],
            )
            .and_then(|rows| rows.iter().map(|r| Ok((r.text(0)?, r.text(1)?))).collect())
            .map_err(db(format!(
                "{}: reading the invoices of {period}",
                self.name
            )))
    }

    /// One stored invoice.
    pub fn invoice(&self, period: &str, account: &str) -> Result<Option<String>, RatingError> {
        self.conn
            .query_opt(
                "SELECT body FROM invoice WHERE period = ?1 AND account = ?2",
                &[Arg::Text(period), Arg::Text(account)],
            )
            .and_then(|r| r.map(|r| r.text(0)).transpose())
            .map_err(db(format!(
                "{}: reading the invoice of {account} for {period}",
                self.name
            )))
    }

    /// The SQLite connection (tests of the file's schema).
    #[cfg(test)]
    pub(crate) fn sqlite(&self) -> &Connection {
        match &self.conn {
            Backend::Sqlite(c) => c,
            Backend::Postgres(_) => panic!("not a SQLite ledger"),
        }
    }
}

fn closed_period(r: &Row) -> Result<ClosedPeriod, BackendError> {
    Ok(ClosedPeriod {
        period: r.text(0)?,
        plan: r.int(1)?,
        closed_at: r.int(2)?,
        watermark: r.int(3)?,
    })
}

fn skey(user: &str, session: &str) -> String {
    format!("{user}\u{1f}{session}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::database::DatabaseError;
    use crate::database::accounting::Delivery;
    use tollgate_testkit::postgres::Postgres;

    #[test]
    fn a_ledger_from_before_versions_is_adopted_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rating.db");
        // Today's file, as its code writes it: the tables (no version at all) and rows.
        {
            let c = Connection::open(&path).unwrap();
            c.execute_batch(SCHEMA_1).unwrap();
            c.execute_batch(
                "INSERT INTO record (kind, id, skey, t_from, t_to, final, body) VALUES
                     ('session', 'r1', 'alice/s1', 10, 20, 1, '{}'),
                     ('session', 'r2', 'bob/s2', 30, 40, 1, '{}'),
                     ('bandwidth', 'b1', 'alice/s1', 10, 10, 1, '{}');
                 INSERT INTO plan (body) VALUES ('{\"plan\": 1}');
                 INSERT INTO period VALUES ('2024-05', 1, 1717200000, 3, '{}');
                 INSERT INTO invoice VALUES ('2024-05', 'acct-1', 1234, 'inv-1'),
                                            ('2024-05', 'acct-2', 0, 'inv-2');",
            )
            .unwrap();
        }
        let st = Store::open(&path).unwrap();
        assert_eq!(
            st.counts().unwrap(),
            vec![("bandwidth".to_string(), 1), ("session".to_string(), 2)]
        );
        assert_eq!(st.watermark().unwrap(), 3);
        assert_eq!(st.plan_body(1).unwrap(), "{\"plan\": 1}");
        assert_eq!(
            st.periods().unwrap(),
            vec![ClosedPeriod {
                period: "2024-05".into(),
                plan: 1,
                closed_at: 1_717_200_000,
                watermark: 3,
            }]
        );
        assert_eq!(
            st.invoices("2024-05").unwrap(),
            vec![
                ("acct-1".to_string(), "inv-1".to_string()),
                ("acct-2".to_string(), "inv-2".to_string())
            ]
        );
        assert_eq!(
            migrate::history(st.sqlite()).unwrap(),
            vec![(1, "record_plan_period_invoice".into())]
        );
    }

    #[test]
    fn a_fresh_ledger_records_every_step_and_a_newer_one_is_refused_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rating.db");
        let st = Store::open(&path).unwrap();
        assert_eq!(
            migrate::history(st.sqlite()).unwrap().len(),
            MIGRATIONS.len()
        );
        assert_eq!(migrate::latest(MIGRATIONS), SCHEMA_VERSION);
        st.sqlite()
            .execute("UPDATE schema_version SET version = 9", [])
            .unwrap();
        drop(st);
        let e = Store::open(&path).unwrap_err();
        assert!(
            matches!(
                e,
                RatingError::SchemaTooNew {
                    found: 9,
                    supported: 1,
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains(&path.display().to_string()), "{e}");
    }

    /// A wrong password, an unknown database, a server that is down, a schema from a
    /// newer Tollgate: an error at start that says which, or (for accounting, a server
    /// that is down) a start that retries; never a panic.
    #[test]
    #[ignore = "needs root and PostgreSQL 15 (make deps): make host-test"]
    fn bad_input_gives_clear_errors_at_start() {
        let pg = Postgres::start();
        pg.create_database("ledger");
        let wrong = DatabaseConfig::new(&pg.url_wrong_password("ledger"));
        let e = Store::open_postgres(&wrong).unwrap_err();
        let m = e.to_string();
        assert!(
            matches!(e, RatingError::Database(DatabaseError::Refused { .. })),
            "{m}"
        );
        assert!(m.contains("password authentication failed"), "{m}");
        assert!(!m.contains("not-the-password"), "{m}");
        let e = Delivery::start(&wrong, "spool-1").unwrap_err();
        assert!(matches!(e, DatabaseError::Refused { .. }), "{e}");

        let missing = DatabaseConfig::new(&pg.url("no_such_db"));
        let m = Store::open_postgres(&missing).unwrap_err().to_string();
        assert!(m.contains("\"no_such_db\" does not exist"), "{m}");

        // A ledger whose history names a step this build does not have.
        let ok = DatabaseConfig::new(&pg.url("ledger"));
        drop(Store::open_postgres(&ok).unwrap());
        ok.connect()
            .unwrap()
            .execute(
                &format!(
                    "INSERT INTO {} (version, name, applied_on, checksum)
                     VALUES (2, 'from_the_future', '2030-01-01T00:00:00Z', '0')",
                    POSTGRES_HISTORY
                ),
                &[],
            )
            .unwrap();
        let e = Store::open_postgres(&ok).unwrap_err();
        assert!(
            matches!(
                e,
                RatingError::SchemaTooNew {
                    found: 2,
                    supported: 1,
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("written by a newer Tollgate"), "{e}");
        // The accounting schema is its own: it opens.
        drop(Delivery::start(&ok, "spool-1").unwrap());

        // The server down: the ledger cannot open (an error naming it); accounting starts
        // and retries.
        pg.stop();
        let e = Store::open_postgres(&ok).unwrap_err();
        assert!(
            matches!(e, RatingError::Database(DatabaseError::Unreachable { .. })),
            "{e}"
        );
        let d = Delivery::start(&ok, "spool-1").unwrap();
        assert_eq!(
            d.stats()
                .connects
                .load(std::sync::atomic::Ordering::Relaxed),
            0
        );
    }
}
