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
//! PostgreSQL: `refinery` runs the same [`Step`]s through its `postgres` /
//! `tokio-postgres` drivers with the same history table, so the cluster backend lists
//! its own steps and opens through the same runner.

use refinery::{Migration, Runner, Target};
use rusqlite::{Connection, OptionalExtension};

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
pub fn migrate(conn: &mut Connection, file: &str, steps: &[Step]) -> Result<i64, MigrateError> {
    let sqlite = |source| MigrateError::Sqlite {
        file: file.to_string(),
        source,
    };
    let supported = latest(steps);
    let too_new = |found| MigrateError::TooNew {
        file: file.to_string(),
        found,
        supported,
    };
    let legacy: Option<i64> = if has_table(conn, "schema_version").map_err(sqlite)? {
        let v: Option<i64> = conn
            .query_row("SELECT max(version) FROM schema_version", [], |r| r.get(0))
            .optional()
            .map_err(sqlite)?
            .flatten();
        Some(v.unwrap_or(0))
    } else {
        None
    };
    let recorded: Option<i64> = if has_table(conn, HISTORY_TABLE).map_err(sqlite)? {
        conn.query_row(
            &format!("SELECT max(version) FROM {HISTORY_TABLE}"),
            [],
            |r| r.get(0),
        )
        .map_err(sqlite)?
    } else {
        None
    };
    let before = recorded.or(legacy).unwrap_or(0);
    for found in [legacy, recorded].into_iter().flatten() {
        if found > supported {
            return Err(too_new(found));
        }
    }
    let migrations = steps
        .iter()
        .map(|s| Migration::unapplied(&format!("V{}__{}", s.version, s.name), s.sql))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| MigrateError::Failed {
            file: file.to_string(),
            message: e.to_string(),
        })?;
    let failed = |e: refinery::Error| MigrateError::Failed {
        file: file.to_string(),
        message: e.to_string(),
    };
    if let (None, Some(v)) = (recorded, legacy)
        && v > 0
    {
        // A file from before the history: what its version says is there already.
        let v = i32::try_from(v).map_err(|_| too_new(v))?;
        let fake = Runner::new(&migrations).set_target(Target::FakeVersion(v));
        run(file, conn, &fake)?.map_err(failed)?;
    }
    let runner = Runner::new(&migrations)
        .set_grouped(true)
        .set_abort_divergent(true)
        .set_abort_missing(true);
    run(file, conn, &runner)?.map_err(failed)?;
    // The version for Tollgates from before the history (they read only this).
    let tx = conn.transaction().map_err(sqlite)?;
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
    tx.commit().map_err(sqlite)?;
    Ok(before)
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
