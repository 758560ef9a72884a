//! Durable storage for rating (SQLite, WAL, synchronous=FULL): usage records, the plans
//! periods were rated with, closed periods and their invoices.
//!
//! Records are stored once per `(kind, id)`: storing the same record again is a no-op,
//! storing a different record under a used id is refused. Each record gets a sequence
//! number; a closed period remembers the highest one it saw (its watermark), so a
//! re-rating reads exactly the records the original run read. Closing a period is one
//! transaction: interrupted anywhere, nothing of it is kept, and running it again gives
//! the same invoices.

use std::collections::HashMap;
use std::path::Path;

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use serde::{Deserialize, Serialize};

use super::RatingError;
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

/// The SQLite store.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    name: String,
}

fn db(context: impl Into<String>) -> impl FnOnce(rusqlite::Error) -> RatingError {
    let context = context.into();
    move |source| RatingError::Db { context, source }
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
        let conn = Connection::open(path).map_err(db(format!("opening {name}")))?;
        Store::init(conn, name)
    }

    /// An in-memory store (tests).
    pub fn in_memory() -> Result<Store, RatingError> {
        let conn = Connection::open_in_memory().map_err(db("opening an in-memory database"))?;
        Store::init(conn, ":memory:".into())
    }

    fn init(mut conn: Connection, name: String) -> Result<Store, RatingError> {
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(db(format!("{name}: setting the busy timeout")))?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(db(format!("{name}: enabling WAL")))?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(db(format!("{name}: setting synchronous=FULL")))?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(db(format!("{name}: enabling foreign keys")))?;
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
        Ok(Store { conn, name })
    }

    /// The database's name (its path).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Begins an immediate transaction; dropped without commit, it rolls back.
    pub fn begin(&self) -> Result<Transaction<'_>, RatingError> {
        Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)
            .map_err(db(format!("{}: beginning a transaction", self.name)))
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
            .prepare_cached(
                "INSERT INTO record (kind, id, skey, t_from, t_to, final, body)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (kind, id) DO NOTHING",
            )
            .and_then(|mut st| {
                st.execute(params![rec.kind(), rec.id(), skey, t_from, t_to, fin, body])
            })
            .map_err(db(format!(
                "{}: storing {} record {:?}",
                self.name,
                rec.kind(),
                rec.id()
            )))?;
        if n == 1 {
            return Ok(Stored::New);
        }
        let old: String = self
            .conn
            .query_row(
                "SELECT body FROM record WHERE kind = ?1 AND id = ?2",
                params![rec.kind(), rec.id()],
                |r| r.get(0),
            )
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
            .query_row("SELECT COALESCE(MAX(seq), 0) FROM record", [], |r| r.get(0))
            .map_err(db(format!("{}: reading the watermark", self.name)))
    }

    /// Counts of stored records by kind.
    pub fn counts(&self) -> Result<Vec<(String, i64)>, RatingError> {
        let mut st = self
            .conn
            .prepare("SELECT kind, COUNT(*) FROM record GROUP BY kind ORDER BY kind")
            .map_err(db(format!("{}: counting records", self.name)))?;
        let rows = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(|it| it.collect::<Result<Vec<_>, _>>())
            .map_err(db(format!("{}: counting records", self.name)))?;
        Ok(rows)
    }

    /// Records that matter for `[from, to)`, up to sequence number `watermark`:
    /// sessions and tunnel use overlapping it, service use inside it, and every
    /// session's declared-bandwidth history from the last change point before it.
    pub fn load(&self, from: i64, to: i64, watermark: i64) -> Result<Records, RatingError> {
        let ctx = || format!("{}: reading the records of {from}..{to}", self.name);
        let mut bodies: Vec<String> = Vec::new();
        let mut query = |sql: &str| -> Result<(), RatingError> {
            let mut st = self.conn.prepare_cached(sql).map_err(db(ctx()))?;
            let rows = st
                .query_map(
                    rusqlite::named_params! {":from": from, ":to": to, ":wm": watermark},
                    |r| r.get::<_, String>(0),
                )
                .map_err(db(ctx()))?;
            for b in rows {
                bodies.push(b.map_err(db(ctx()))?);
            }
            Ok(())
        };
        query(
            "SELECT body FROM record WHERE kind IN ('session', 'tunnel') AND t_to >= :from
             AND t_from < :to AND seq <= :wm ORDER BY seq",
        )?;
        query(
            "SELECT body FROM record WHERE kind = 'service' AND t_from >= :from AND t_from < :to
             AND seq <= :wm ORDER BY seq",
        )?;
        query(
            "SELECT body FROM (
                 SELECT body, seq FROM record WHERE kind = 'bandwidth' AND t_from >= :from
                     AND t_from < :to AND seq <= :wm
                 UNION ALL
                 SELECT body, seq FROM (
                     SELECT body, seq, ROW_NUMBER() OVER (
                         PARTITION BY skey ORDER BY t_from DESC, seq DESC) AS rn
                     FROM record WHERE kind = 'bandwidth' AND t_from < :from AND seq <= :wm)
                 WHERE rn = 1)
             ORDER BY seq",
        )?;
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
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT skey, MIN(t_to) FROM record WHERE kind = 'session' AND final = 1
                 AND seq <= :wm AND skey IN (
                     SELECT skey FROM record WHERE kind = 'bandwidth' AND t_from < :to AND seq <= :wm)
                 GROUP BY skey",
            )
            .map_err(db(ctx()))?;
        let rows = st
            .query_map(rusqlite::named_params! {":to": to, ":wm": watermark}, |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
            })
            .map_err(db(ctx()))?;
        let mut ends: HashMap<(String, String), i64> = HashMap::new();
        for row in rows {
            let (k, stop) = row.map_err(db(ctx()))?;
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
            .query_row(
                "SELECT COUNT(*) FROM record WHERE seq > ?1 AND t_to >= ?2 AND t_from < ?3",
                params![watermark, from, to],
                |r| r.get(0),
            )
            .map_err(db(format!("{}: counting late records", self.name)))
    }

    /// The id of a stored plan, storing it if new.
    pub fn plan_id(&self, body: &str) -> Result<i64, RatingError> {
        let ctx = || format!("{}: storing the plan", self.name);
        self.conn
            .execute(
                "INSERT INTO plan (body) VALUES (?1) ON CONFLICT (body) DO NOTHING",
                [body],
            )
            .map_err(db(ctx()))?;
        self.conn
            .query_row("SELECT id FROM plan WHERE body = ?1", [body], |r| r.get(0))
            .map_err(db(ctx()))
    }

    /// A stored plan.
    pub fn plan_body(&self, id: i64) -> Result<String, RatingError> {
        self.conn
            .query_row("SELECT body FROM plan WHERE id = ?1", [id], |r| r.get(0))
            .map_err(db(format!("{}: reading plan {id}", self.name)))
    }

    /// A closed period, if it is one.
    pub fn period(&self, name: &str) -> Result<Option<ClosedPeriod>, RatingError> {
        self.conn
            .query_row(
                "SELECT name, plan, closed_at, watermark FROM period WHERE name = ?1",
                [name],
                |r| {
                    Ok(ClosedPeriod {
                        period: r.get(0)?,
                        plan: r.get(1)?,
                        closed_at: r.get(2)?,
                        watermark: r.get(3)?,
                    })
                },
            )
            .optional()
            .map_err(db(format!("{}: reading period {name}", self.name)))
    }

    /// The closed periods, oldest first.
    pub fn periods(&self) -> Result<Vec<ClosedPeriod>, RatingError> {
        let ctx = || format!("{}: listing periods", self.name);
        let mut st = self
            .conn
            .prepare("SELECT name, plan, closed_at, watermark FROM period ORDER BY name")
            .map_err(db(ctx()))?;
        st.query_map([], |r| {
            Ok(ClosedPeriod {
                period: r.get(0)?,
                plan: r.get(1)?,
                closed_at: r.get(2)?,
                watermark: r.get(3)?,
            })
        })
        .and_then(|it| it.collect())
        .map_err(db(ctx()))
    }

    /// The stored report of a closed period.
    pub fn period_report(&self, name: &str) -> Result<Option<String>, RatingError> {
        self.conn
            .query_row("SELECT report FROM period WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()
            .map_err(db(format!("{}: reading period {name}", self.name)))
    }

    /// Marks a period closed (inside the caller's transaction).
    pub fn insert_period(&self, p: &ClosedPeriod, report: &str) -> Result<(), RatingError> {
        self.conn
            .execute(
                "INSERT INTO period (name, plan, closed_at, watermark, report) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![p.period, p.plan, p.closed_at, p.watermark, report],
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
                params![period, account, total, body],
            )
            .map(|_| ())
            .map_err(db(format!(
                "{}: storing the invoice of {account} for {period}",
                self.name
            )))
    }

    /// The stored invoices of a period, by account.
    pub fn invoices(&self, period: &str) -> Result<Vec<(String, String)>, RatingError> {
        let ctx = || format!("{}: reading the invoices of {period}", self.name);
        let mut st = self
            .conn
            .prepare_cached("SELECT account, body FROM invoice WHERE period = ?1 ORDER BY account")
            .map_err(db(ctx()))?;
        st.query_map([period], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(|it| it.collect())
            .map_err(db(ctx()))
    }

    /// One stored invoice.
    pub fn invoice(&self, period: &str, account: &str) -> Result<Option<String>, RatingError> {
        self.conn
            .query_row(
                "SELECT body FROM invoice WHERE period = ?1 AND account = ?2",
                [period, account],
                |r| r.get(0),
            )
            .optional()
            .map_err(db(format!(
                "{}: reading the invoice of {account} for {period}",
                self.name
            )))
    }
}

fn skey(user: &str, session: &str) -> String {
    format!("{user}\u{1f}{session}")
}

#[cfg(test)]
mod tests {
    use super::*;

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
            migrate::history(&st.conn).unwrap(),
            vec![(1, "record_plan_period_invoice".into())]
        );
    }

    #[test]
    fn a_fresh_ledger_records_every_step_and_a_newer_one_is_refused_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rating.db");
        let st = Store::open(&path).unwrap();
        assert_eq!(migrate::history(&st.conn).unwrap().len(), MIGRATIONS.len());
        assert_eq!(migrate::latest(MIGRATIONS), SCHEMA_VERSION);
        st.conn
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
}
