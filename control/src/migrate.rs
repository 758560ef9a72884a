//! Schema migrations, one mechanism for every store: the accounting spool, the local
//! subscriber store and the rating ledger (SQLite today; the cluster's PostgreSQL later).
//!
//! Each store lists its [`Step`]s, numbered from 1, and opens through [`migrate`], which
//! hands them to `refinery`: the steps not yet applied run in one transaction, and each
//! is recorded (version, name, time, checksum) in the file's `refinery_schema_history`
//! table. A file whose history names a step this build does not have (written by a
//! newer Tollgate) is refused with [`MigrateError::TooNew`] naming the file; a step whose
//! text differs from the one the file recorded is refused too (never edit a shipped
//! step: add one).
//!
//! Files written before this mechanism kept their version in a one-row
//! `schema_version` table. Such a file is adopted in place: steps 1 to that version are
//! recorded as applied without running them, then the rest run as usual. The
//! `schema_version` row is kept up to date after every open, so an older Tollgate still
//! sees the version and refuses a file newer than it knows instead of damaging it.
//!
//! PostgreSQL (the cluster's database, `[database] url`): [`migrate_postgres`] hands the
//! same [`Step`]s to `refinery`'s `postgres` driver. The steps are written once, in the
//! SQL both dialects read; [`for_postgres`] rewrites the two things they spell
//! differently (SQLite's 64-bit `INTEGER` is PostgreSQL's `BIGINT`, an
//! `INTEGER PRIMARY KEY AUTOINCREMENT` is an identity column there, `BLOB` is `BYTEA`),
//! so a SQLite file's
//! checksums are those of the text as written. Each store has its own history table in
//! the database (one database holds several stores), and the runs of several nodes
//! starting at once are one at a time under an advisory lock.

use refinery::{Migration, Runner, Target};
use rusqlite::{Connection, TransactionBehavior};

/// The table in which `refinery` records the applied steps.
pub const HISTORY_TABLE: &str = "refinery_schema_history";

/// One schema change: `version` is 1 for the first and one more for each next one.
#[derive(Clone, Copy, Debug)]
pub struct Step {
    /// Its number.
    pub version: u32,
    /// A short name in snake_case (letters, digits, `_`).
    pub name: &'static str,
    /// The statements.
    pub sql: &'static str,
}

/// A migration that could not run.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// The file was written by a newer Tollgate.
    #[error(
        "{file}: schema version {found} is newer than this build knows ({supported}); \
         it was written by a newer Tollgate"
    )]
    TooNew {
        /// The file.
        file: String,
        /// The version in the file.
        found: i64,
        /// The newest this build knows.
        supported: i64,
    },
    /// SQLite failed while reading or recording the version.
    #[error("{file}: schema migration: {source}")]
    Sqlite {
        /// The file.
        file: String,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// PostgreSQL failed while reading or recording the version.
    #[error("{file}: schema migration: {source}")]
    Postgres {
        /// The database and the store in it.
        file: String,
        /// PostgreSQL's error.
        source: postgres::Error,
    },
    /// A step failed or does not match the history recorded in the file.
    #[error("{file}: schema migration: {message}")]
    Failed {
        /// The file.
        file: String,
        /// What went wrong.
        message: String,
    },
}

/// The newest version `steps` reach.
pub fn latest(steps: &[Step]) -> i64 {
    steps
        .iter()
        .map(|s| i64::from(s.version))
        .max()
        .unwrap_or(0)
}

/// The steps recorded as applied in an open file: `(version, name)`, oldest first.
pub fn history(conn: &Connection) -> rusqlite::Result<Vec<(i64, String)>> {
    if !has_table(conn, HISTORY_TABLE)? {
        return Ok(Vec::new());
    }
    let mut stmt = conn.prepare(&format!(
        "SELECT version, name FROM {HISTORY_TABLE} ORDER BY version"
    ))?;
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect()
}

/// Whether the file already has a schema (today's history, or the `schema_version`
/// table of files written before it).
pub fn is_versioned(conn: &Connection) -> rusqlite::Result<bool> {
    Ok(has_table(conn, HISTORY_TABLE)? || has_table(conn, "schema_version")?)
}

/// Brings the schema of `conn` (the file `file`, named in errors) up to the newest of
/// `steps`. Returns the version it was at before.
///
/// An up-to-date file is only read. Several processes may open one file at once (the
/// daemon and `tollgate subscriber`, parallel replays): if a step or the adoption fails
/// because another opener did the same work first, the file is read again and found
/// up to date.
pub fn migrate(conn: &mut Connection, file: &str, steps: &[Step]) -> Result<i64, MigrateError> {
    let supported = latest(steps);
    let mut tries = 0;
    loop {
        let found = versions(conn, file)?;
        for v in [found.legacy, found.recorded].into_iter().flatten() {
            if v > supported {
                return Err(MigrateError::TooNew {
                    file: file.to_string(),
                    found: v,
                    supported,
                });
            }
        }
        if found.recorded == Some(supported)
            && found.legacy == Some(supported)
            && recorded_as_listed(conn, file, steps)?
        {
            return Ok(supported);
        }
        match attempt(conn, file, steps, found) {
            Ok(()) => {
                let before = found.recorded.or(found.legacy).unwrap_or(0);
                if before > 0 && before < supported {
                    tracing::info!(file, from = before, to = supported, "schema upgraded");
                }
                return Ok(before);
            }
            Err(e) => {
                tries += 1;
                if tries == 5 {
                    return Err(e);
                }
            }
        }
    }
}

/// Whether the history names exactly `steps`, each with its checksum (a step edited
/// since it was applied is not: refinery then refuses it with the reason).
fn recorded_as_listed(conn: &Connection, file: &str, steps: &[Step]) -> Result<bool, MigrateError> {
    let sqlite = |source| MigrateError::Sqlite {
        file: file.to_string(),
        source,
    };
    let mut stmt = conn
        .prepare(&format!(
            "SELECT version, name, checksum FROM {HISTORY_TABLE} ORDER BY version"
        ))
        .map_err(sqlite)?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .map_err(sqlite)?;
    Ok(rows.len() == steps.len()
        && rows
            .iter()
            .zip(steps)
            .all(|((version, name, checksum), s)| {
                let listed = Migration::unapplied(&format!("V{}__{}", s.version, s.name), s.sql);
                *version == i64::from(s.version)
                    && *name == s.name
                    && listed.is_ok_and(|m| m.checksum().to_string() == *checksum)
            }))
}

/// The versions a file says it is at.
#[derive(Clone, Copy, Debug)]
struct Found {
    /// In `schema_version`, when the table exists (0 when it is empty).
    legacy: Option<i64>,
    /// The newest step in the history, when it has one.
    recorded: Option<i64>,
}

fn versions(conn: &Connection, file: &str) -> Result<Found, MigrateError> {
    let sqlite = |source| MigrateError::Sqlite {
        file: file.to_string(),
        source,
    };
    let legacy = if has_table(conn, "schema_version").map_err(sqlite)? {
        let v: Option<i64> = conn
            .query_row("SELECT max(version) FROM schema_version", [], |r| r.get(0))
            .map_err(sqlite)?;
        Some(v.unwrap_or(0))
    } else {
        None
    };
    let recorded = if has_table(conn, HISTORY_TABLE).map_err(sqlite)? {
        conn.query_row(
            &format!("SELECT max(version) FROM {HISTORY_TABLE}"),
            [],
            |r| r.get(0),
        )
        .map_err(sqlite)?
    } else {
        None
    };
    Ok(Found { legacy, recorded })
}

/// Adopts a file from before the history, runs the pending steps, sets `schema_version`.
fn attempt(
    conn: &mut Connection,
    file: &str,
    steps: &[Step],
    found: Found,
) -> Result<(), MigrateError> {
    let sqlite = |source| MigrateError::Sqlite {
        file: file.to_string(),
        source,
    };
    let failed = |e: refinery::Error| MigrateError::Failed {
        file: file.to_string(),
        message: e.to_string(),
    };
    let supported = latest(steps);
    let migrations = steps
        .iter()
        .map(|s| Migration::unapplied(&format!("V{}__{}", s.version, s.name), s.sql))
        .collect::<Result<Vec<_>, _>>()
        .map_err(failed)?;
    if let Found {
        recorded: None,
        legacy: Some(v),
    } = found
        && v > 0
    {
        // A file from before the history: what its version says is there already.
        let v = i32::try_from(v).map_err(|_| MigrateError::TooNew {
            file: file.to_string(),
            found: v,
            supported,
        })?;
        let fake = Runner::new(&migrations).set_target(Target::FakeVersion(v));
        run(file, conn, &fake)?.map_err(failed)?;
    }
    let runner = Runner::new(&migrations)
        .set_grouped(true)
        .set_abort_divergent(true)
        .set_abort_missing(true);
    run(file, conn, &runner)?.map_err(failed)?;
    // The version for Tollgates from before the history (they read only this).
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sqlite)?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
         DELETE FROM schema_version;",
    )
    .map_err(sqlite)?;
    tx.execute(
        "INSERT INTO schema_version (version) VALUES (?1)",
        [supported],
    )
    .map_err(sqlite)?;
    tx.commit().map_err(sqlite)
}

/// Runs `runner`, turning a panic inside refinery (it unwraps the time and checksum of
/// each history row, so a row edited by hand panics) into an error naming the file.
fn run(
    file: &str,
    conn: &mut Connection,
    runner: &Runner,
) -> Result<Result<refinery::Report, refinery::Error>, MigrateError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| runner.run(conn))).map_err(|_| {
        MigrateError::Failed {
            file: file.to_string(),
            message: format!("its {HISTORY_TABLE} table has a row that does not read back"),
        }
    })
}

/// A step's SQL as PostgreSQL reads it: `INTEGER PRIMARY KEY AUTOINCREMENT` becomes an
/// identity column, every other `INTEGER` a `BIGINT` (SQLite's integers are 64-bit) and
/// `BLOB` a `BYTEA`.
pub fn for_postgres(sql: &str) -> String {
    sql.replace(
        "INTEGER PRIMARY KEY AUTOINCREMENT",
        "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
    )
    .replace("INTEGER", "BIGINT")
    .replace("BLOB", "BYTEA")
}

/// Brings one store's schema in a PostgreSQL database up to the newest of `steps`,
/// recording them in `history` (that store's own table). `name` names the database and
/// the store in errors. Returns the version it was at before. A database whose history
/// names a newer step is refused with [`MigrateError::TooNew`], before anything runs.
pub fn migrate_postgres(
    client: &mut postgres::Client,
    name: &str,
    history: &str,
    steps: &[Step],
) -> Result<i64, MigrateError> {
    let pg = |source| MigrateError::Postgres {
        file: name.to_string(),
        source,
    };
    // One migrator at a time: nodes that start together wait here, then find it done.
    client
        .execute("SELECT pg_advisory_lock(hashtext($1))", &[&history])
        .map_err(pg)?;
    let result = migrate_postgres_locked(client, name, history, steps);
    let unlocked = client
        .execute("SELECT pg_advisory_unlock(hashtext($1))", &[&history])
        .map_err(pg);
    let before = result?;
    unlocked?;
    Ok(before)
}

fn migrate_postgres_locked(
    client: &mut postgres::Client,
    name: &str,
    history: &str,
    steps: &[Step],
) -> Result<i64, MigrateError> {
    let pg = |source| MigrateError::Postgres {
        file: name.to_string(),
        source,
    };
    let failed = |e: refinery::Error| MigrateError::Failed {
        file: name.to_string(),
        message: e.to_string(),
    };
    let supported = latest(steps);
    let exists: bool = client
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&history])
        .map_err(pg)?
        .get(0);
    let found: i64 = if exists {
        let v: Option<i32> = client
            .query_one(&format!("SELECT max(version) FROM {history}"), &[])
            .map_err(pg)?
            .get(0);
        v.map_or(0, i64::from)
    } else {
        0
    };
    if found > supported {
        return Err(MigrateError::TooNew {
            file: name.to_string(),
            found,
            supported,
        });
    }
    let migrations = steps
        .iter()
        .map(|s| Migration::unapplied(&format!("V{}__{}", s.version, s.name), &for_postgres(s.sql)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(failed)?;
    let mut runner = Runner::new(&migrations)
        .set_grouped(true)
        .set_abort_divergent(true)
        .set_abort_missing(true);
    runner.set_migration_table_name(history);
    // refinery unwraps the time and checksum of each history row: a row edited by hand
    // would panic inside it.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| runner.run(client)))
        .map_err(|_| MigrateError::Failed {
            file: name.to_string(),
            message: format!("its {history} table has a row that does not read back"),
        })?
        .map_err(failed)?;
    if found > 0 && found < supported {
        tracing::info!(
            database = name,
            from = found,
            to = supported,
            "schema upgraded"
        );
    }
    Ok(found)
}

fn has_table(conn: &Connection, name: &str) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
        [name],
        |r| r.get::<_, i64>(0).map(|n| n > 0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const STEPS: &[Step] = &[
        Step {
            version: 1,
            name: "first",
            sql: "CREATE TABLE a (x INTEGER);",
        },
        Step {
            version: 2,
            name: "second",
            sql: "ALTER TABLE a ADD COLUMN y INTEGER;",
        },
    ];

    #[test]
    fn a_fresh_file_gets_every_step_and_a_second_open_changes_nothing() {
        let mut c = Connection::open_in_memory().unwrap();
        assert_eq!(migrate(&mut c, "t.db", STEPS).unwrap(), 0);
        c.execute("INSERT INTO a (x, y) VALUES (1, 2)", []).unwrap();
        assert_eq!(
            history(&c).unwrap(),
            vec![(1, "first".into()), (2, "second".into())]
        );
        assert_eq!(migrate(&mut c, "t.db", STEPS).unwrap(), 2);
        let v: i64 = c
            .query_row("SELECT version FROM schema_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, 2);
    }

    #[test]
    fn a_legacy_version_is_adopted_and_only_later_steps_run() {
        let mut c = Connection::open_in_memory().unwrap();
        c.execute_batch(
            "CREATE TABLE a (x INTEGER); INSERT INTO a VALUES (7);
             CREATE TABLE schema_version (version INTEGER NOT NULL);
             INSERT INTO schema_version VALUES (1);",
        )
        .unwrap();
        assert_eq!(migrate(&mut c, "t.db", STEPS).unwrap(), 1);
        let (x, y): (i64, Option<i64>) = c
            .query_row("SELECT x, y FROM a", [], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap();
        assert_eq!((x, y), (7, None));
        assert_eq!(history(&c).unwrap().len(), 2);
    }

    #[test]
    fn a_newer_file_is_refused_naming_it() {
        let mut c = Connection::open_in_memory().unwrap();
        migrate(&mut c, "t.db", STEPS).unwrap();
        let e = migrate(&mut c, "/var/lib/x.db", &STEPS[..1]).unwrap_err();
        assert!(
            matches!(
                e,
                MigrateError::TooNew {
                    found: 2,
                    supported: 1,
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().starts_with("/var/lib/x.db: schema version 2"));
    }

    #[test]
    fn a_history_row_edited_by_hand_is_an_error_not_a_panic() {
        let mut c = Connection::open_in_memory().unwrap();
        migrate(&mut c, "t.db", &STEPS[..1]).unwrap();
        c.execute(
            &format!("UPDATE {HISTORY_TABLE} SET applied_on = 'yesterday'"),
            [],
        )
        .unwrap();
        let e = migrate(&mut c, "t.db", STEPS).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("t.db: schema migration: its refinery_schema_history table"),
            "{e}"
        );
    }

    #[test]
    fn openers_racing_on_a_fresh_or_a_legacy_file_all_succeed() {
        let dir = tempfile::tempdir().unwrap();
        let legacy = dir.path().join("legacy.db");
        Connection::open(&legacy)
            .unwrap()
            .execute_batch(
                "PRAGMA journal_mode=WAL;
                 CREATE TABLE a (x INTEGER); INSERT INTO a VALUES (7);
                 CREATE TABLE schema_version (version INTEGER NOT NULL);
                 INSERT INTO schema_version VALUES (1);",
            )
            .unwrap();
        let fresh = dir.path().join("fresh.db");
        // WAL is a property of the file: set once here, not by each opener (switching the
        // journal mode wants the file to itself, so racing openers could fail at it before
        // the barrier and leave the others waiting there for ever).
        let _: String = Connection::open(&fresh)
            .unwrap()
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .unwrap();
        for path in [fresh, legacy] {
            let start = std::sync::Barrier::new(8);
            std::thread::scope(|s| {
                let openers: Vec<_> = (0..8)
                    .map(|_| {
                        s.spawn(|| {
                            // Nothing that can fail comes before the barrier.
                            start.wait();
                            let mut c = Connection::open(&path).map_err(|e| e.to_string())?;
                            c.busy_timeout(std::time::Duration::from_secs(10))
                                .map_err(|e| e.to_string())?;
                            migrate(&mut c, "t.db", STEPS).map_err(|e| e.to_string())
                        })
                    })
                    .collect();
                for o in openers {
                    if let Err(e) = o.join().unwrap() {
                        panic!("{}: {e}", path.display());
                    }
                }
            });
            let c = Connection::open(&path).unwrap();
            assert_eq!(history(&c).unwrap().len(), 2, "{}", path.display());
        }
    }

    #[test]
    fn postgres_reads_the_steps_with_its_own_integer_and_bytes_types() {
        assert_eq!(
            for_postgres(
                "CREATE TABLE t (seq INTEGER PRIMARY KEY AUTOINCREMENT, n INTEGER NOT NULL, b BLOB)"
            ),
            "CREATE TABLE t (seq BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, \
             n BIGINT NOT NULL, b BYTEA)"
        );
    }

    #[test]
    fn an_edited_step_is_refused() {
        let mut c = Connection::open_in_memory().unwrap();
        migrate(&mut c, "t.db", &STEPS[..1]).unwrap();
        let edited = [Step {
            sql: "CREATE TABLE a (x TEXT);",
            ..STEPS[0]
        }];
        let e = migrate(&mut c, "t.db", &edited).unwrap_err();
        assert!(matches!(e, MigrateError::Failed { .. }), "{e}");
    }
}
