//! One connection to either backend, for the stores that run on both (the rating ledger
//! today): the embedded SQLite file or the cluster's PostgreSQL. A store writes each
//! statement once, in the SQL both read, with SQLite's `?1`, `?2` placeholders;
//! PostgreSQL gets them as `$1`, `$2` ([`postgres_placeholders`]). Arguments and values
//! are the types the stores use (64-bit integers, text, bytes, NULL); a transaction is
//! [`Backend::begin`], rolled back unless committed.

use std::cell::RefCell;
use std::collections::HashMap;

use super::DatabaseConfig;

/// An argument of a statement.
#[derive(Clone, Copy, Debug)]
pub enum Arg<'a> {
    /// An integer.
    Int(i64),
    /// Text.
    Text(&'a str),
    /// Bytes (SQLite BLOB, PostgreSQL BYTEA).
    Bytes(&'a [u8]),
    /// SQL NULL (of whatever type the column has).
    Null,
}

impl<'a> Arg<'a> {
    /// An integer or NULL.
    pub fn int_or_null(v: Option<i64>) -> Arg<'a> {
        v.map_or(Arg::Null, Arg::Int)
    }

    /// Text or NULL.
    pub fn text_or_null(v: Option<&'a str>) -> Arg<'a> {
        v.map_or(Arg::Null, Arg::Text)
    }
}

/// A value read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// An integer.
    Int(i64),
    /// Text.
    Text(String),
    /// Bytes.
    Bytes(Vec<u8>),
}

/// One row read back.
#[derive(Clone, Debug)]
pub struct Row(Vec<Value>);

impl Row {
    /// Column `i` as an integer.
    pub fn int(&self, i: usize) -> Result<i64, BackendError> {
        match self.0.get(i) {
            Some(Value::Int(v)) => Ok(*v),
            other => Err(BackendError::Column(
                i,
                format!("{other:?} is not an integer"),
            )),
        }
    }

    /// Column `i` as text.
    pub fn text(&self, i: usize) -> Result<String, BackendError> {
        match self.0.get(i) {
            Some(Value::Text(v)) => Ok(v.clone()),
            other => Err(BackendError::Column(i, format!("{other:?} is not text"))),
        }
    }

    /// Column `i` as an integer or NULL.
    pub fn opt_int(&self, i: usize) -> Result<Option<i64>, BackendError> {
        match self.0.get(i) {
            Some(Value::Null) => Ok(None),
            _ => self.int(i).map(Some),
        }
    }

    /// Column `i` as text or NULL.
    pub fn opt_text(&self, i: usize) -> Result<Option<String>, BackendError> {
        match self.0.get(i) {
            Some(Value::Null) => Ok(None),
            _ => self.text(i).map(Some),
        }
    }

    /// Column `i` as bytes.
    pub fn bytes(&self, i: usize) -> Result<Vec<u8>, BackendError> {
        match self.0.get(i) {
            Some(Value::Bytes(v)) => Ok(v.clone()),
            other => Err(BackendError::Column(i, format!("{other:?} is not bytes"))),
        }
    }

    /// Column `i` as text, moved out.
    pub fn take_text(&mut self, i: usize) -> Result<String, BackendError> {
        match self.0.get_mut(i) {
            Some(Value::Text(v)) => Ok(std::mem::take(v)),
            other => Err(BackendError::Column(i, format!("{other:?} is not text"))),
        }
    }
}

/// A statement that failed.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// SQLite's error.
    #[error("{0}")]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL's error (the server's message where it sent one).
    #[error("{}", postgres_message(.0))]
    Postgres(#[from] postgres::Error),
    /// The server closed the connection and it cannot be made again (yet).
    #[error("{0}")]
    Reconnect(String),
    /// A column that does not hold what the store wrote there.
    #[error("column {0}: {1}")]
    Column(usize, String),
}

fn postgres_message(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {} ({})", db.severity(), db.message(), db.code().code()),
        None => {
            let mut s = e.to_string();
            if let Some(c) = std::error::Error::source(e) {
                s.push_str(": ");
                s.push_str(&c.to_string());
            }
            s
        }
    }
}

/// `?1`, `?2` ... as `$1`, `$2` ... (outside quoted text).
pub fn postgres_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut quoted = false;
    for c in sql.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                out.push(c);
            }
            '?' if !quoted => out.push('$'),
            _ => out.push(c),
        }
    }
    out
}

/// The connection.
pub enum Backend {
    /// The embedded file (or an in-memory database in tests).
    Sqlite(rusqlite::Connection),
    /// The cluster's PostgreSQL, with its prepared statements by SQLite text.
    Postgres(Box<RefCell<Postgres>>),
}

/// A PostgreSQL connection and the statements prepared on it. A connection the server
/// closed (a restart) is made again at the next statement outside a transaction.
pub struct Postgres {
    client: postgres::Client,
    prepared: HashMap<String, postgres::Statement>,
    config: DatabaseConfig,
    /// Inside `BEGIN` .. `COMMIT`: a closed connection is an error then, never made
    /// again (the rest of the transaction would run outside it).
    in_transaction: bool,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Backend::Sqlite(_) => "Backend::Sqlite",
            Backend::Postgres(_) => "Backend::Postgres",
        })
    }
}

impl Postgres {
    /// The connection, made again if the server closed it.
    fn client(&mut self) -> Result<&mut postgres::Client, BackendError> {
        if self.client.is_closed() {
            if self.in_transaction {
                return Err(BackendError::Reconnect(
                    "the connection was closed inside a transaction".into(),
                ));
            }
            self.client = self
                .config
                .connect()
                .map_err(|e| BackendError::Reconnect(e.to_string()))?;
            self.prepared.clear();
            tracing::info!(database = %self.config.target(), "reconnected to PostgreSQL");
        }
        Ok(&mut self.client)
    }

    fn statement(&mut self, sql: &str) -> Result<postgres::Statement, BackendError> {
        if let Some(s) = self.prepared.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client()?.prepare(&postgres_placeholders(sql))?;
        self.prepared.insert(sql.to_string(), s.clone());
        Ok(s)
    }
}

/// The type check happens where PostgreSQL says what the parameter is: each value
/// checks itself against it; NULL goes with any type.
impl postgres::types::ToSql for Arg<'_> {
    fn to_sql(
        &self,
        ty: &postgres::types::Type,
        out: &mut bytes::BytesMut,
    ) -> Result<postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Arg::Int(v) => v.to_sql_checked(ty, out),
            Arg::Text(v) => v.to_sql_checked(ty, out),
            Arg::Bytes(v) => v.to_sql_checked(ty, out),
            Arg::Null => Ok(postgres::types::IsNull::Yes),
        }
    }

    fn accepts(_: &postgres::types::Type) -> bool {
        true
    }

    postgres::types::to_sql_checked!();
}

fn pg_args<'a>(args: &'a [Arg<'a>]) -> Vec<&'a (dyn postgres::types::ToSql + Sync)> {
    args.iter()
        .map(|a| a as &(dyn postgres::types::ToSql + Sync))
        .collect()
}

impl rusqlite::ToSql for Arg<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(match self {
            Arg::Int(i) => rusqlite::types::ToSqlOutput::from(*i),
            Arg::Text(t) => rusqlite::types::ToSqlOutput::from(*t),
            Arg::Bytes(b) => rusqlite::types::ToSqlOutput::from(*b),
            Arg::Null => rusqlite::types::ToSqlOutput::from(rusqlite::types::Null),
        })
    }
}

impl Backend {
    /// A PostgreSQL connection, made with `config` (to make it again after a restart).
    pub fn postgres(client: postgres::Client, config: &DatabaseConfig) -> Backend {
        Backend::Postgres(Box::new(RefCell::new(Postgres {
            client,
            prepared: HashMap::new(),
            config: config.clone(),
            in_transaction: false,
        })))
    }

    /// Runs statements without arguments or results (DDL, `BEGIN`).
    pub fn batch(&self, sql: &str) -> Result<(), BackendError> {
        match self {
            Backend::Sqlite(c) => Ok(c.execute_batch(sql)?),
            Backend::Postgres(p) => Ok(p.borrow_mut().client()?.batch_execute(sql)?),
        }
    }

    /// Runs one statement; the rows it changed.
    pub fn execute(&self, sql: &str, args: &[Arg]) -> Result<u64, BackendError> {
        match self {
            Backend::Sqlite(c) => {
                let mut st = c.prepare_cached(sql)?;
                Ok(st.execute(rusqlite::params_from_iter(args.iter()))? as u64)
            }
            Backend::Postgres(p) => {
                let mut p = p.borrow_mut();
                let st = p.statement(sql)?;
                Ok(p.client()?.execute(&st, &pg_args(args))?)
            }
        }
    }

    /// Runs one query; its rows.
    pub fn query(&self, sql: &str, args: &[Arg]) -> Result<Vec<Row>, BackendError> {
        match self {
            Backend::Sqlite(c) => {
                let mut st = c.prepare_cached(sql)?;
                let n = st.column_count();
                let rows = st.query_map(rusqlite::params_from_iter(args.iter()), |r| {
                    (0..n)
                        .map(|i| {
                            Ok(match r.get_ref(i)? {
                                rusqlite::types::ValueRef::Integer(v) => Value::Int(v),
                                rusqlite::types::ValueRef::Text(t) => {
                                    Value::Text(String::from_utf8_lossy(t).into_owned())
                                }
                                rusqlite::types::ValueRef::Blob(b) => Value::Bytes(b.to_vec()),
                                _ => Value::Null,
                            })
                        })
                        .collect::<rusqlite::Result<Vec<_>>>()
                        .map(Row)
                })?;
                Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
            }
            Backend::Postgres(p) => {
                let mut p = p.borrow_mut();
                let st = p.statement(sql)?;
                let rows = p.client()?.query(&st, &pg_args(args))?;
                rows.iter().map(pg_row).collect()
            }
        }
    }

    /// Runs one query; its first row, if any.
    pub fn query_opt(&self, sql: &str, args: &[Arg]) -> Result<Option<Row>, BackendError> {
        Ok(self.query(sql, args)?.into_iter().next())
    }

    /// Runs one query that returns one row.
    pub fn query_one(&self, sql: &str, args: &[Arg]) -> Result<Row, BackendError> {
        self.query_opt(sql, args)?
            .ok_or_else(|| BackendError::Column(0, "the query returned no row".into()))
    }

    /// Begins a transaction (SQLite: `BEGIN IMMEDIATE`, the write lock at once); rolled
    /// back when dropped uncommitted.
    pub fn begin(&self) -> Result<Tx<'_>, BackendError> {
        self.batch(match self {
            Backend::Sqlite(_) => "BEGIN IMMEDIATE",
            Backend::Postgres(_) => "BEGIN",
        })?;
        self.set_in_transaction(true);
        Ok(Tx {
            backend: self,
            done: false,
        })
    }

    fn set_in_transaction(&self, yes: bool) {
        if let Backend::Postgres(p) = self {
            p.borrow_mut().in_transaction = yes;
        }
    }

    /// Whether this is PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        matches!(self, Backend::Postgres(_))
    }
}

fn pg_row(r: &postgres::Row) -> Result<Row, BackendError> {
    use postgres::types::Type;
    let mut out = Vec::with_capacity(r.len());
    for (i, c) in r.columns().iter().enumerate() {
        let v = match *c.type_() {
            Type::INT8 => r.try_get::<_, Option<i64>>(i)?.map(Value::Int),
            Type::INT4 => r
                .try_get::<_, Option<i32>>(i)?
                .map(|v| Value::Int(v.into())),
            Type::INT2 => r
                .try_get::<_, Option<i16>>(i)?
                .map(|v| Value::Int(v.into())),
            Type::BOOL => r
                .try_get::<_, Option<bool>>(i)?
                .map(|v| Value::Int(v.into())),
            Type::BYTEA => r.try_get::<_, Option<Vec<u8>>>(i)?.map(Value::Bytes),
            _ => r.try_get::<_, Option<String>>(i)?.map(Value::Text),
        };
        out.push(v.unwrap_or(Value::Null));
    }
    Ok(Row(out))
}

/// An open transaction.
pub struct Tx<'a> {
    backend: &'a Backend,
    done: bool,
}

impl Tx<'_> {
    /// Commits it.
    pub fn commit(mut self) -> Result<(), BackendError> {
        self.done = true;
        let r = self.backend.batch("COMMIT");
        self.backend.set_in_transaction(false);
        r
    }
}

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        if !self.done {
            // On a broken connection there is nothing left to roll back.
            let _ = self.backend.batch("ROLLBACK");
            self.backend.set_in_transaction(false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_dollars_outside_quotes() {
        assert_eq!(
            postgres_placeholders("SELECT '?1' FROM t WHERE a = ?1 AND b < ?12"),
            "SELECT '?1' FROM t WHERE a = $1 AND b < $12"
        );
    }

    #[test]
    fn a_dropped_transaction_rolls_back_and_a_committed_one_stays() {
        let b = Backend::Sqlite(rusqlite::Connection::open_in_memory().unwrap());
        b.batch("CREATE TABLE t (a INTEGER, b TEXT)").unwrap();
        {
            let _tx = b.begin().unwrap();
            b.execute(
                "INSERT INTO t VALUES (?1, ?2)",
                &[Arg::Int(1), Arg::Text("x")],
            )
            .unwrap();
        }
        let tx = b.begin().unwrap();
        b.execute(
            "INSERT INTO t VALUES (?1, ?2)",
            &[Arg::Int(2), Arg::Text("y")],
        )
        .unwrap();
        tx.commit().unwrap();
        let rows = b.query("SELECT a, b FROM t", &[]).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(
            (rows[0].int(0).unwrap(), rows[0].text(1).unwrap()),
            (2, "y".into())
        );
    }
}
