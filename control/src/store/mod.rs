//! The local subscriber store: the embedded default for authentication (OPS-1). One
//! SQLite file holds each subscriber's user id, password hash (Argon2id, PHC string;
//! never the password), identifiers (MAC, mobile id, IP), disconnect conditions
//! (DISC-1 A-F), declared bandwidth, allowed services and billing account. The schema is
//! versioned and migrated forward on open. [`import`] reads TOML and CSV files;
//! `tollgate subscriber ...` (the binary's `subscriber` module) works on the file offline.
//!
//! CHAP (RFC 1994) needs each CHAP user's secret itself, not a hash: those secrets live
//! apart, in a second SQLite file beside the store ([`chap_path`], `<store>.chap`) that
//! is created and kept at mode 0600, attached to the same connection so that a
//! subscriber and its secret are written in one transaction. A secret is never shown
//! ([`SubscriberView`] says only whether one is set) and its `Debug` is redacted.
//!
//! Calls block on SQLite (milliseconds); password verification costs one Argon2
//! evaluation (tens of milliseconds at the default cost), so the control loop should
//! run it off the packet-facing thread or budget for it.

pub mod import;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rusqlite::Connection;
use serde::{Deserialize, Serialize};

use tollgate_control_core::authz::{Authorization, Conditions, LoginVictim};
use tollgate_control_core::gateway::identifier::Identifier;

use crate::database::DatabaseConfig;
use crate::database::backend::{Arg, Backend, BackendError, Row};
use crate::migrate::{self, MigrateError, Step};

/// The schema version this build writes (the newest of [`MIGRATIONS`]).
pub const SCHEMA_VERSION: i64 = 1;

/// The store's schema, step by step (see [`crate::migrate`]; add a step, never edit one).
const MIGRATIONS: &[Step] = &[Step {
    version: 1,
    name: "subscriber_identifier_service",
    sql: r#"
CREATE TABLE subscriber (
    user_id             TEXT PRIMARY KEY NOT NULL,
    password_hash       TEXT,
    billing_account     TEXT,
    framed_ip           TEXT,
    interim_interval_s  INTEGER,
    bandwidth_up        INTEGER,
    bandwidth_down      INTEGER,
    session_time_s      INTEGER,
    idle_time_s         INTEGER,
    idle_server         TEXT,
    volume_bytes        INTEGER,
    volume_bytes_up     INTEGER,
    volume_bytes_down   INTEGER,
    volume_packets_up   INTEGER,
    volume_packets_down INTEGER,
    max_logins          INTEGER,
    login_victim        TEXT NOT NULL DEFAULT 'earliest'
                        CHECK (login_victim IN ('earliest', 'order')),
    login_order         INTEGER,
    rate_ratio_percent  INTEGER,
    rate_window_s       INTEGER,
    app_timeout_s       INTEGER
);
CREATE TABLE identifier (
    kind    TEXT NOT NULL CHECK (kind IN ('mac', 'mobile_id', 'ip')),
    value   TEXT NOT NULL,
    user_id TEXT NOT NULL REFERENCES subscriber (user_id) ON DELETE CASCADE,
    PRIMARY KEY (kind, value)
);
CREATE INDEX identifier_user ON identifier (user_id);
CREATE TABLE service (
    user_id TEXT NOT NULL REFERENCES subscriber (user_id) ON DELETE CASCADE,
    name    TEXT NOT NULL,
    PRIMARY KEY (user_id, name)
);
"#,
}];

/// A subscriber's CHAP secret, kept reversibly (CHAP needs it) in the 0600 file beside
/// the store. Its `Debug` shows nothing of it; it is never serialized.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ChapSecret(pub Vec<u8>);

impl std::fmt::Debug for ChapSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChapSecret(<redacted>)")
    }
}

impl<'de> Deserialize<'de> for ChapSecret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(ChapSecret(String::deserialize(d)?.into_bytes()))
    }
}

/// The file that holds the CHAP secrets of the store at `path`: `path` + `.chap`.
pub fn chap_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".chap");
    PathBuf::from(s)
}

/// Creates the CHAP secrets file at mode 0600 if it is missing, and takes any wider
/// permission away from an existing one.
fn secure_chap_file(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let io = |e: std::io::Error| StoreError::ChapFile {
        file: path.display().to_string(),
        message: e.to_string(),
    };
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io)
}

/// One subscriber as stored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Subscriber {
    /// The user id (RADIUS User-Name).
    pub user_id: String,
    /// Argon2id PHC string, or `None` for a subscriber known only by identifier.
    pub password_hash: Option<String>,
    /// MACs, mobile ids, IPs.
    pub identifiers: Vec<Identifier>,
    /// Disconnect conditions.
    pub conditions: Conditions,
    /// Declared bandwidth from the subscriber, bit/s.
    pub bandwidth_up: Option<u64>,
    /// Declared bandwidth to the subscriber, bit/s.
    pub bandwidth_down: Option<u64>,
    /// Allowed services, by name.
    pub services: Vec<String>,
    /// Billing account.
    pub billing_account: Option<String>,
    /// A fixed address to give this subscriber.
    pub framed_ip: Option<Ipv4Addr>,
    /// Seconds between Interim-Updates for this subscriber.
    pub interim_interval_s: Option<u32>,
    /// The CHAP secret (PPP subscribers authenticating with CHAP).
    pub chap_secret: Option<ChapSecret>,
}

impl Subscriber {
    /// A subscriber with nothing but a user id.
    pub fn new(user_id: &str) -> Subscriber {
        Subscriber {
            user_id: user_id.to_string(),
            ..Subscriber::default()
        }
    }

    /// What a login of this subscriber grants.
    pub fn authorization(&self) -> Authorization {
        Authorization {
            framed_ip: self.framed_ip,
            pool: None,
            framed_mtu: None,
            interim_interval_s: self.interim_interval_s,
            class: Vec::new(),
            conditions: self.conditions.clone(),
            bandwidth_up: self.bandwidth_up,
            bandwidth_down: self.bandwidth_down,
            services: self.services.clone(),
            billing_account: self.billing_account.clone(),
            reply_message: None,
            tunnels: Vec::new(),
        }
    }

    /// Checks what the schema cannot: a valid user id, values SQLite can hold.
    pub fn validate(&self) -> Result<(), StoreError> {
        let bad = |field: &str, message: String| {
            Err(StoreError::Invalid {
                field: field.to_string(),
                message,
            })
        };
        let u = &self.user_id;
        if u.is_empty() || u.len() > 253 || u.chars().any(|c| c.is_control()) {
            return bad(
                "user_id",
                format!("{u:?}: 1 to 253 characters, no control characters"),
            );
        }
        let c = &self.conditions;
        for (field, v) in [
            ("bandwidth_up", self.bandwidth_up),
            ("bandwidth_down", self.bandwidth_down),
            ("volume_bytes", c.volume_bytes),
            ("volume_bytes_up", c.volume_bytes_up),
            ("volume_bytes_down", c.volume_bytes_down),
            ("volume_packets_up", c.volume_packets_up),
            ("volume_packets_down", c.volume_packets_down),
        ] {
            if v.is_some_and(|v| v > i64::MAX as u64) {
                return bad(field, format!("{} is above {}", v.unwrap_or(0), i64::MAX));
            }
        }
        if c.rate_ratio_percent.is_some_and(|r| r == 0 || r > 100) {
            return bad("rate_ratio_percent", "must be 1 to 100".into());
        }
        if c.rate_ratio_percent.is_some() != c.rate_window_s.is_some() {
            return bad(
                "rate_window_s",
                "rate_ratio_percent and rate_window_s go together".into(),
            );
        }
        if c.max_logins == Some(0) {
            return bad("max_logins", "must be at least 1".into());
        }
        for s in &self.services {
            if s.is_empty() || s.len() > 64 {
                return bad("services", format!("{s:?}: 1 to 64 characters"));
            }
        }
        if self
            .chap_secret
            .as_ref()
            .is_some_and(|c| c.0.is_empty() || c.0.len() > 255)
        {
            return bad("chap_secret", "must be 1 to 255 bytes".into());
        }
        if let Some(h) = &self.password_hash {
            PasswordHash::new(h).map_err(|e| StoreError::Invalid {
                field: "password_hash".into(),
                message: format!("not a PHC hash string: {e}"),
            })?;
        }
        Ok(())
    }
}

/// How expensive new password hashes are (Argon2id). Verification uses the cost stored
/// in each hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PasswordCost {
    /// Memory, KiB.
    pub memory_kib: u32,
    /// Passes.
    pub iterations: u32,
}

impl Default for PasswordCost {
    /// OWASP's Argon2id minimum: 19 MiB, 2 passes, 1 lane.
    fn default() -> Self {
        PasswordCost {
            memory_kib: 19 * 1024,
            iterations: 2,
        }
    }
}

/// Hashes a password with Argon2id and a random salt; returns the PHC string.
pub fn hash_password(password: &str, cost: PasswordCost) -> Result<String, StoreError> {
    let params = Params::new(cost.memory_kib, cost.iterations, 1, None)
        .map_err(|e| StoreError::Password(e.to_string()))?;
    let mut salt = [0u8; 16];
    crate::os_random::fill(&mut salt).map_err(|e| StoreError::Password(e.to_string()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| StoreError::Password(e.to_string()))?;
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| StoreError::Password(e.to_string()))
}

/// Checks a password against a PHC string; a malformed hash is simply no match.
pub fn password_matches(hash: &str, password: &[u8]) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| Argon2::default().verify_password(password, &h).is_ok())
}

/// What can go wrong with the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed (file unreadable, disk full, locked too long).
    #[error("subscriber store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A statement failed (SQLite or PostgreSQL).
    #[error("subscriber store: {0}")]
    Database(#[from] BackendError),
    /// The cluster's database cannot be used (unreachable, refusing, a URL that does not
    /// read).
    #[error("subscriber store: {0}")]
    Cluster(crate::database::DatabaseError),
    /// The file was written by a newer Tollgate.
    #[error(
        "subscriber store {file}: schema version {found} is newer than this build knows \
         ({supported}); it was written by a newer Tollgate"
    )]
    SchemaTooNew {
        /// The store file.
        file: String,
        /// Version in the file.
        found: i64,
        /// Newest this build knows.
        supported: i64,
    },
    /// The schema could not be brought up to date (the error names the file).
    #[error("subscriber store {0}")]
    Migration(MigrateError),
    /// `add` of a user id that exists.
    #[error("subscriber {0:?} already exists")]
    AlreadyExists(String),
    /// A user id that does not exist.
    #[error("no subscriber {0:?}")]
    NotFound(String),
    /// An identifier that belongs to another subscriber.
    #[error("{identifier} already belongs to subscriber {owner:?}")]
    IdentifierTaken {
        /// The identifier.
        identifier: Identifier,
        /// Who has it.
        owner: String,
    },
    /// A field with a value the store refuses.
    #[error("{field}: {message}")]
    Invalid {
        /// The field.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// Hashing a password failed.
    #[error("password hashing: {0}")]
    Password(String),
    /// The CHAP secrets file beside the store cannot be created or made private.
    #[error("CHAP secrets file {file}: {message}")]
    ChapFile {
        /// The file.
        file: String,
        /// What went wrong.
        message: String,
    },
    /// A stored row that does not read back (edited by hand?).
    #[error("stored subscriber {user_id:?}: {message}")]
    Corrupt {
        /// Whose row.
        user_id: String,
        /// What is wrong.
        message: String,
    },
}

/// The table that records the store's schema steps in the cluster's PostgreSQL.
pub const POSTGRES_HISTORY: &str = "tollgate_subscriber_history";

/// The CHAP secrets' table: in SQLite the 0600 file attached as `chap`; in PostgreSQL
/// the schema `chap`, whose access the database's grants decide.
const CHAP_TABLE: &str = "CREATE TABLE IF NOT EXISTS chap.secret (
                user_id TEXT PRIMARY KEY NOT NULL,
                secret  BLOB NOT NULL
            );";

/// The subscriber store: the SQLite file (the embedded default) or the cluster's
/// PostgreSQL (`[database]`); every statement below runs on both
/// ([`crate::database::backend`]).
#[derive(Debug)]
pub struct Store {
    conn: Backend,
    cost: PasswordCost,
}

const COLUMNS: &str = "user_id, password_hash, billing_account, framed_ip, interim_interval_s, \
    bandwidth_up, bandwidth_down, session_time_s, idle_time_s, idle_server, volume_bytes, \
    volume_bytes_up, volume_bytes_down, volume_packets_up, volume_packets_down, max_logins, \
    login_victim, login_order, rate_ratio_percent, rate_window_s, app_timeout_s";

fn i64_of(v: Option<u64>) -> Option<i64> {
    v.map(|v| v.min(i64::MAX as u64) as i64)
}

fn int_arg<'a>(v: Option<u32>) -> Arg<'a> {
    Arg::int_or_null(v.map(i64::from))
}

fn too_new(e: MigrateError) -> StoreError {
    match e {
        MigrateError::TooNew {
            file,
            found,
            supported,
        } => StoreError::SchemaTooNew {
            file,
            found,
            supported,
        },
        e => StoreError::Migration(e),
    }
}

impl Store {
    /// Opens (creating if needed) the store at `path` and migrates its schema.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            let _ = std::fs::create_dir_all(dir);
        }
        let chap = chap_path(path);
        secure_chap_file(&chap)?;
        Store::setup(
            Connection::open(path)?,
            &path.display().to_string(),
            &chap.display().to_string(),
        )
    }

    /// A store in memory (tests).
    pub fn open_in_memory() -> Result<Store, StoreError> {
        Store::setup(Connection::open_in_memory()?, ":memory:", ":memory:")
    }

    /// Opens the store in the cluster's PostgreSQL, bringing its schema up to date (the
    /// first node to start does it; the others wait, then find it done).
    pub fn open_postgres(cfg: &DatabaseConfig) -> Result<Store, StoreError> {
        let name = format!("PostgreSQL {}", cfg.target());
        let mut client = cfg.connect().map_err(StoreError::Cluster)?;
        migrate::migrate_postgres(&mut client, &name, POSTGRES_HISTORY, MIGRATIONS)
            .map_err(too_new)?;
        let conn = Backend::postgres(client, cfg);
        let tx = conn.begin()?;
        conn.batch(&format!(
            "SELECT pg_advisory_xact_lock(hashtext('{POSTGRES_HISTORY}'));
             CREATE SCHEMA IF NOT EXISTS chap;
             {}",
            migrate::for_postgres(CHAP_TABLE)
        ))?;
        tx.commit()?;
        Ok(Store {
            conn,
            cost: PasswordCost::default(),
        })
    }

    fn setup(mut conn: Connection, file: &str, chap: &str) -> Result<Store, StoreError> {
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.pragma_update(None, "foreign_keys", true)?;
        // WAL: the CLI can write while the daemon reads.
        let _: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        migrate::migrate(&mut conn, file, MIGRATIONS).map_err(too_new)?;
        conn.execute("ATTACH DATABASE ?1 AS chap", [chap])?;
        conn.execute_batch(CHAP_TABLE)?;
        Ok(Store {
            conn: Backend::Sqlite(conn),
            cost: PasswordCost::default(),
        })
    }

    /// Whether the store is in PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        self.conn.is_postgres()
    }

    /// Sets the cost of password hashes made from now on.
    pub fn set_password_cost(&mut self, cost: PasswordCost) {
        self.cost = cost;
    }

    /// The cost of new password hashes.
    pub fn password_cost(&self) -> PasswordCost {
        self.cost
    }

    /// The schema version of the open store.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        let sql = if self.is_postgres() {
            format!("SELECT max(version) FROM {POSTGRES_HISTORY}")
        } else {
            "SELECT version FROM schema_version".to_string()
        };
        Ok(self.conn.query_one(&sql, &[])?.int(0)?)
    }

    /// Adds a new subscriber.
    pub fn add(&mut self, s: &Subscriber) -> Result<(), StoreError> {
        s.validate()?;
        let tx = self.conn.begin()?;
        if exists(&self.conn, &s.user_id)? {
            return Err(StoreError::AlreadyExists(s.user_id.clone()));
        }
        write(&self.conn, s)?;
        tx.commit()?;
        Ok(())
    }

    /// Replaces an existing subscriber (identifiers and services included).
    pub fn update(&mut self, s: &Subscriber) -> Result<(), StoreError> {
        s.validate()?;
        let tx = self.conn.begin()?;
        if !exists(&self.conn, &s.user_id)? {
            return Err(StoreError::NotFound(s.user_id.clone()));
        }
        self.conn.execute(
            "DELETE FROM subscriber WHERE user_id = ?1",
            &[Arg::Text(&s.user_id)],
        )?;
        write(&self.conn, s)?;
        tx.commit()?;
        Ok(())
    }

    /// Adds or replaces many subscribers in one transaction: all or none. With
    /// `replace` false an existing user id is an error. Returns (added, replaced).
    pub fn put_all(
        &mut self,
        subs: &[Subscriber],
        replace: bool,
    ) -> Result<(usize, usize), StoreError> {
        for s in subs {
            s.validate()?;
        }
        let tx = self.conn.begin()?;
        let (mut added, mut replaced) = (0, 0);
        for s in subs {
            if exists(&self.conn, &s.user_id)? {
                if !replace {
                    return Err(StoreError::AlreadyExists(s.user_id.clone()));
                }
                self.conn.execute(
                    "DELETE FROM subscriber WHERE user_id = ?1",
                    &[Arg::Text(&s.user_id)],
                )?;
                replaced += 1;
            } else {
                added += 1;
            }
            write(&self.conn, s)?;
        }
        tx.commit()?;
        Ok((added, replaced))
    }

    /// Removes a subscriber with its identifiers and services.
    pub fn remove(&mut self, user_id: &str) -> Result<(), StoreError> {
        let tx = self.conn.begin()?;
        let n = self.conn.execute(
            "DELETE FROM subscriber WHERE user_id = ?1",
            &[Arg::Text(user_id)],
        )?;
        if n == 0 {
            return Err(StoreError::NotFound(user_id.to_string()));
        }
        self.conn.execute(
            "DELETE FROM chap.secret WHERE user_id = ?1",
            &[Arg::Text(user_id)],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// One subscriber.
    pub fn get(&self, user_id: &str) -> Result<Option<Subscriber>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM subscriber WHERE user_id = ?1");
        match self.conn.query_opt(&sql, &[Arg::Text(user_id)])? {
            Some(r) => Ok(Some(self.complete(read_row(&r)?)?)),
            None => Ok(None),
        }
    }

    /// Every subscriber, by user id.
    pub fn list(&self) -> Result<Vec<Subscriber>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM subscriber ORDER BY user_id");
        let mut out = Vec::new();
        for r in self.conn.query(&sql, &[])? {
            out.push(self.complete(read_row(&r)?)?);
        }
        Ok(out)
    }

    /// How many subscribers there are.
    pub fn count(&self) -> Result<u64, StoreError> {
        Ok(self
            .conn
            .query_one("SELECT count(*) FROM subscriber", &[])?
            .int(0)?
            .max(0) as u64)
    }

    /// The subscriber an identifier belongs to (login on first packet by MAC or IP).
    pub fn lookup_by_identifier(&self, id: &Identifier) -> Result<Option<Subscriber>, StoreError> {
        let value = id.value();
        let user = self.conn.query_opt(
            "SELECT user_id FROM identifier WHERE kind = ?1 AND value = ?2",
            &[Arg::Text(id.kind()), Arg::Text(&value)],
        )?;
        match user {
            Some(u) => self.get(&u.text(0)?),
            None => Ok(None),
        }
    }

    /// The subscriber if `password` is theirs; `None` for an unknown user, a wrong
    /// password, or a subscriber without a password.
    pub fn verify_password(
        &self,
        user_id: &str,
        password: &[u8],
    ) -> Result<Option<Subscriber>, StoreError> {
        let Some(s) = self.get(user_id)? else {
            return Ok(None);
        };
        let ok = s
            .password_hash
            .as_deref()
            .is_some_and(|h| password_matches(h, password));
        Ok(ok.then_some(s))
    }

    /// The subscriber if the CHAP response `chap` was made with their CHAP secret;
    /// `None` for an unknown user, a wrong response, or a subscriber without one.
    pub fn verify_chap(
        &self,
        user_id: &str,
        chap: &tollgate_control_core::gateway::aaa::ChapResponse,
    ) -> Result<Option<Subscriber>, StoreError> {
        let Some(s) = self.get(user_id)? else {
            return Ok(None);
        };
        let ok = s.chap_secret.as_ref().is_some_and(|c| chap.verify(&c.0));
        Ok(ok.then_some(s))
    }

    /// Sets (or with `None` clears) a subscriber's CHAP secret.
    pub fn set_chap_secret(
        &mut self,
        user_id: &str,
        secret: Option<&[u8]>,
    ) -> Result<(), StoreError> {
        let tx = self.conn.begin()?;
        if !exists(&self.conn, user_id)? {
            return Err(StoreError::NotFound(user_id.to_string()));
        }
        self.conn.execute(
            "DELETE FROM chap.secret WHERE user_id = ?1",
            &[Arg::Text(user_id)],
        )?;
        if let Some(k) = secret {
            if k.is_empty() || k.len() > 255 {
                return Err(StoreError::Invalid {
                    field: "chap_secret".into(),
                    message: "must be 1 to 255 bytes".into(),
                });
            }
            self.conn.execute(
                "INSERT INTO chap.secret (user_id, secret) VALUES (?1, ?2)",
                &[Arg::Text(user_id), Arg::Bytes(k)],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Sets (or with `None` clears) a subscriber's password.
    pub fn set_password(
        &mut self,
        user_id: &str,
        password: Option<&str>,
    ) -> Result<(), StoreError> {
        let hash = password.map(|p| hash_password(p, self.cost)).transpose()?;
        let n = self.conn.execute(
            "UPDATE subscriber SET password_hash = ?2 WHERE user_id = ?1",
            &[Arg::Text(user_id), Arg::text_or_null(hash.as_deref())],
        )?;
        if n == 0 {
            return Err(StoreError::NotFound(user_id.to_string()));
        }
        Ok(())
    }

    fn complete(&self, mut s: Subscriber) -> Result<Subscriber, StoreError> {
        let user = [Arg::Text(&s.user_id)];
        let ids = self.conn.query(
            "SELECT kind, value FROM identifier WHERE user_id = ?1 ORDER BY kind, value",
            &user,
        )?;
        let mut identifiers = Vec::with_capacity(ids.len());
        for row in ids {
            let (k, v) = (row.text(0)?, row.text(1)?);
            let id = Identifier::parse(&k, &v).map_err(|message| StoreError::Corrupt {
                user_id: s.user_id.clone(),
                message,
            })?;
            identifiers.push(id);
        }
        let mut services = Vec::new();
        for row in self.conn.query(
            "SELECT name FROM service WHERE user_id = ?1 ORDER BY name",
            &user,
        )? {
            services.push(row.text(0)?);
        }
        let secret = self
            .conn
            .query_opt("SELECT secret FROM chap.secret WHERE user_id = ?1", &user)?
            .map(|r| r.bytes(0))
            .transpose()?
            .map(ChapSecret);
        s.identifiers = identifiers;
        s.services = services;
        s.chap_secret = secret;
        Ok(s)
    }

    /// The SQLite connection (tests of the file's schema).
    #[cfg(test)]
    fn sqlite(&self) -> &Connection {
        match &self.conn {
            Backend::Sqlite(c) => c,
            Backend::Postgres(_) => panic!("not a SQLite store"),
        }
    }
}

fn exists(conn: &Backend, user_id: &str) -> Result<bool, StoreError> {
    Ok(conn
        .query_opt(
            "SELECT 1 FROM subscriber WHERE user_id = ?1",
            &[Arg::Text(user_id)],
        )?
        .is_some())
}

fn write(conn: &Backend, s: &Subscriber) -> Result<(), StoreError> {
    let c = &s.conditions;
    conn.execute(
        "DELETE FROM chap.secret WHERE user_id = ?1",
        &[Arg::Text(&s.user_id)],
    )?;
    if let Some(k) = &s.chap_secret {
        conn.execute(
            "INSERT INTO chap.secret (user_id, secret) VALUES (?1, ?2)",
            &[Arg::Text(&s.user_id), Arg::Bytes(&k.0)],
        )?;
    }
    let framed_ip = s.framed_ip.map(|a| a.to_string());
    let idle_server = c.idle_server.map(|a| a.to_string());
    conn.execute(
        &format!(
            "INSERT INTO subscriber ({COLUMNS}) VALUES \
             (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21)"
        ),
        &[
            Arg::Text(&s.user_id),
            Arg::text_or_null(s.password_hash.as_deref()),
            Arg::text_or_null(s.billing_account.as_deref()),
            Arg::text_or_null(framed_ip.as_deref()),
            int_arg(s.interim_interval_s),
            Arg::int_or_null(i64_of(s.bandwidth_up)),
            Arg::int_or_null(i64_of(s.bandwidth_down)),
            int_arg(c.session_time_s),
            int_arg(c.idle_time_s),
            Arg::text_or_null(idle_server.as_deref()),
            Arg::int_or_null(i64_of(c.volume_bytes)),
            Arg::int_or_null(i64_of(c.volume_bytes_up)),
            Arg::int_or_null(i64_of(c.volume_bytes_down)),
            Arg::int_or_null(i64_of(c.volume_packets_up)),
            Arg::int_or_null(i64_of(c.volume_packets_down)),
            int_arg(c.max_logins),
            Arg::Text(c.login_victim.name()),
            int_arg(c.login_order),
            int_arg(c.rate_ratio_percent),
            int_arg(c.rate_window_s),
            int_arg(c.app_timeout_s),
        ],
    )?;
    for id in &s.identifiers {
        let value = id.value();
        let key = [Arg::Text(id.kind()), Arg::Text(&value)];
        let owner = conn.query_opt(
            "SELECT user_id FROM identifier WHERE kind = ?1 AND value = ?2",
            &key,
        )?;
        if let Some(owner) = owner {
            let owner = owner.text(0)?;
            if owner == s.user_id {
                continue; // listed twice
            }
            return Err(StoreError::IdentifierTaken {
                identifier: id.clone(),
                owner,
            });
        }
        conn.execute(
            "INSERT INTO identifier (kind, value, user_id) VALUES (?1, ?2, ?3)",
            &[key[0], key[1], Arg::Text(&s.user_id)],
        )?;
    }
    for svc in &s.services {
        conn.execute(
            "INSERT INTO service (user_id, name) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
            &[Arg::Text(&s.user_id), Arg::Text(svc)],
        )?;
    }
    Ok(())
}

/// Reads a subscriber row; a value that does not parse is [`StoreError::Corrupt`].
fn read_row(r: &Row) -> Result<Subscriber, StoreError> {
    let user_id = r.text(0)?;
    let corrupt = |message: String| StoreError::Corrupt {
        user_id: user_id.clone(),
        message,
    };
    let u64_at = |i: usize| -> Result<Option<u64>, StoreError> {
        Ok(r.opt_int(i)?.map(|v| v.max(0) as u64))
    };
    let u32_at = |i: usize| -> Result<Option<u32>, StoreError> {
        r.opt_int(i)?
            .map(|v| {
                u32::try_from(v).map_err(|_| corrupt(format!("column {i}: {v} is out of range")))
            })
            .transpose()
    };
    let ip_at = |i: usize| -> Result<Option<Ipv4Addr>, StoreError> {
        r.opt_text(i)?
            .map(|s| {
                Ipv4Addr::from_str(&s).map_err(|_| corrupt(format!("{s:?} is not an IPv4 address")))
            })
            .transpose()
    };
    let victim = r.text(16)?;
    let Some(login_victim) = LoginVictim::parse(&victim) else {
        return Err(corrupt(format!("login_victim {victim:?}")));
    };
    Ok(Subscriber {
        user_id: user_id.clone(),
        password_hash: r.opt_text(1)?,
        billing_account: r.opt_text(2)?,
        framed_ip: ip_at(3)?,
        interim_interval_s: u32_at(4)?,
        bandwidth_up: u64_at(5)?,
        bandwidth_down: u64_at(6)?,
        conditions: Conditions {
            session_time_s: u32_at(7)?,
            idle_time_s: u32_at(8)?,
            idle_server: ip_at(9)?,
            volume_bytes: u64_at(10)?,
            volume_bytes_up: u64_at(11)?,
            volume_bytes_down: u64_at(12)?,
            volume_packets_up: u64_at(13)?,
            volume_packets_down: u64_at(14)?,
            max_logins: u32_at(15)?,
            login_victim,
            login_order: u32_at(17)?,
            rate_ratio_percent: u32_at(18)?,
            rate_window_s: u32_at(19)?,
            app_timeout_s: u32_at(20)?,
        },
        identifiers: Vec::new(),
        services: Vec::new(),
        chap_secret: None,
    })
}

/// A subscriber as `show` prints it and JSON carries it (no password hash).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SubscriberView {
    /// User id.
    pub user_id: String,
    /// Whether a password is set.
    pub has_password: bool,
    /// Whether a CHAP secret is set (the secret itself is never shown).
    #[serde(default)]
    pub has_chap_secret: bool,
    /// `kind value` strings.
    pub identifiers: Vec<String>,
    /// What a login grants.
    pub authorization: Authorization,
}

impl From<&Subscriber> for SubscriberView {
    fn from(s: &Subscriber) -> Self {
        SubscriberView {
            user_id: s.user_id.clone(),
            has_password: s.password_hash.is_some(),
            has_chap_secret: s.chap_secret.is_some(),
            identifiers: s.identifiers.iter().map(|i| i.to_string()).collect(),
            authorization: s.authorization(),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A cheap cost for tests (hashing at the default cost is slow in debug builds).
    pub(crate) const TEST_COST: PasswordCost = PasswordCost {
        memory_kib: 64,
        iterations: 1,
    };

    pub(crate) fn store() -> Store {
        let mut s = Store::open_in_memory().unwrap();
        s.set_password_cost(TEST_COST);
        s
    }

    fn alice() -> Subscriber {
        Subscriber {
            user_id: "alice".into(),
            password_hash: Some(hash_password("wonderland", TEST_COST).unwrap()),
            identifiers: vec![
                Identifier::Mac("02:00:00:00:00:0a".parse().unwrap()),
                Identifier::MobileId("440101234567890".into()),
            ],
            conditions: Conditions {
                session_time_s: Some(3600),
                idle_time_s: Some(300),
                idle_server: Some(Ipv4Addr::new(192, 0, 2, 10)),
                volume_bytes: Some(1 << 40),
                max_logins: Some(2),
                login_victim: LoginVictim::Order,
                login_order: Some(3),
                rate_ratio_percent: Some(60),
                rate_window_s: Some(10),
                app_timeout_s: Some(120),
                ..Conditions::default()
            },
            bandwidth_up: Some(10_000_000),
            bandwidth_down: Some(50_000_000),
            services: vec!["mail".into(), "web".into()],
            billing_account: Some("acct-1".into()),
            framed_ip: None,
            interim_interval_s: Some(300),
            chap_secret: None,
        }
    }

    #[test]
    fn add_get_list_remove() {
        add_get_list_remove_on(store());
    }

    fn add_get_list_remove_on(mut st: Store) {
        let a = alice();
        st.add(&a).unwrap();
        assert_eq!(st.get("alice").unwrap().unwrap(), a);
        assert!(matches!(st.add(&a), Err(StoreError::AlreadyExists(_))));
        st.add(&Subscriber::new("bob")).unwrap();
        let names: Vec<_> = st.list().unwrap().into_iter().map(|s| s.user_id).collect();
        assert_eq!(names, ["alice", "bob"]);
        st.remove("alice").unwrap();
        assert!(st.get("alice").unwrap().is_none());
        assert!(matches!(st.remove("alice"), Err(StoreError::NotFound(_))));
        // Identifiers went with the subscriber.
        let mac = Identifier::Mac("02:00:00:00:00:0a".parse().unwrap());
        assert!(st.lookup_by_identifier(&mac).unwrap().is_none());
    }

    #[test]
    fn lookup_and_password() {
        lookup_and_password_on(store());
    }

    fn lookup_and_password_on(mut st: Store) {
        st.add(&alice()).unwrap();
        let by_mobile = st
            .lookup_by_identifier(&Identifier::MobileId("440101234567890".into()))
            .unwrap()
            .unwrap();
        assert_eq!(by_mobile.user_id, "alice");
        assert!(
            st.verify_password("alice", b"wonderland")
                .unwrap()
                .is_some()
        );
        assert!(st.verify_password("alice", b"nope").unwrap().is_none());
        assert!(st.verify_password("nobody", b"x").unwrap().is_none());
        st.set_password("alice", Some("new")).unwrap();
        assert!(st.verify_password("alice", b"new").unwrap().is_some());
        let stored = st.get("alice").unwrap().unwrap().password_hash.unwrap();
        assert!(stored.starts_with("$argon2id$"), "{stored}");
        assert!(!stored.contains("new"));
    }

    #[test]
    fn identifiers_are_unique_across_subscribers() {
        identifiers_are_unique_across_subscribers_on(store());
    }

    fn identifiers_are_unique_across_subscribers_on(mut st: Store) {
        st.add(&alice()).unwrap();
        let mut bob = Subscriber::new("bob");
        bob.identifiers = vec![Identifier::MobileId("440101234567890".into())];
        match st.add(&bob) {
            Err(StoreError::IdentifierTaken { owner, .. }) => assert_eq!(owner, "alice"),
            r => panic!("{r:?}"),
        }
        assert!(
            st.get("bob").unwrap().is_none(),
            "the failed add left nothing"
        );
    }

    #[test]
    fn update_replaces() {
        update_replaces_on(store());
    }

    fn update_replaces_on(mut st: Store) {
        let mut a = alice();
        st.add(&a).unwrap();
        a.services = vec!["video".into()];
        a.identifiers.clear();
        a.conditions.max_logins = None;
        st.update(&a).unwrap();
        assert_eq!(st.get("alice").unwrap().unwrap(), a);
        assert!(matches!(
            st.update(&Subscriber::new("ghost")),
            Err(StoreError::NotFound(_))
        ));
    }

    #[test]
    fn validation() {
        validation_on(store());
    }

    fn validation_on(mut st: Store) {
        let mut s = Subscriber::new("x");
        s.conditions.rate_ratio_percent = Some(150);
        s.conditions.rate_window_s = Some(1);
        assert!(
            matches!(st.add(&s), Err(StoreError::Invalid { field, .. }) if field == "rate_ratio_percent")
        );
        let mut s = Subscriber::new("");
        assert!(st.add(&s).is_err());
        s = Subscriber::new("x");
        s.bandwidth_up = Some(u64::MAX);
        assert!(st.add(&s).is_err());
        s = Subscriber::new("x");
        s.password_hash = Some("plaintext".into());
        assert!(
            matches!(st.add(&s), Err(StoreError::Invalid { field, .. }) if field == "password_hash")
        );
    }

    #[test]
    fn schema_is_versioned_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub.db");
        let a = alice();
        {
            let mut st = Store::open(&path).unwrap();
            st.add(&a).unwrap();
            assert_eq!(st.schema_version().unwrap(), SCHEMA_VERSION);
        }
        let st = Store::open(&path).unwrap();
        assert_eq!(st.get("alice").unwrap().unwrap(), a);
        drop(st);
        let conn = Connection::open(&path).unwrap();
        conn.execute("UPDATE schema_version SET version = 99", [])
            .unwrap();
        drop(conn);
        assert!(matches!(
            Store::open(&path),
            Err(StoreError::SchemaTooNew { found: 99, .. })
        ));
    }

    #[test]
    fn a_store_of_schema_1_from_before_the_history_is_adopted_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub.db");
        // Today's file, as its code writes it: the tables, `schema_version` at 1, rows.
        {
            let c = Connection::open(&path).unwrap();
            c.execute_batch(MIGRATIONS[0].sql).unwrap();
            c.execute_batch(
                "CREATE TABLE schema_version (version INTEGER NOT NULL);
                 INSERT INTO schema_version VALUES (1);
                 INSERT INTO subscriber (user_id, billing_account, bandwidth_down, max_logins)
                     VALUES ('alice', 'acct-1', 10000000, 2), ('bob', NULL, NULL, NULL);
                 INSERT INTO identifier VALUES ('mac', '02:00:00:00:00:01', 'alice');
                 INSERT INTO service VALUES ('alice', 'video');",
            )
            .unwrap();
        }
        let st = Store::open(&path).unwrap();
        let a = st.get("alice").unwrap().unwrap();
        assert_eq!(a.billing_account.as_deref(), Some("acct-1"));
        assert_eq!(a.bandwidth_down, Some(10_000_000));
        assert_eq!(a.conditions.max_logins, Some(2));
        assert_eq!(a.identifiers.len(), 1);
        assert_eq!(a.services, vec!["video".to_string()]);
        assert!(st.get("bob").unwrap().is_some());
        assert_eq!(st.schema_version().unwrap(), SCHEMA_VERSION);
        assert_eq!(
            migrate::history(st.sqlite()).unwrap(),
            vec![(1, "subscriber_identifier_service".into())]
        );
        let n: i64 = st
            .sqlite()
            .query_row("SELECT count(*) FROM subscriber", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 2);
    }

    #[test]
    fn a_fresh_store_records_every_step_and_a_newer_one_is_refused_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub.db");
        let st = Store::open(&path).unwrap();
        assert_eq!(
            migrate::history(st.sqlite()).unwrap().len(),
            MIGRATIONS.len()
        );
        assert_eq!(migrate::latest(MIGRATIONS), SCHEMA_VERSION);
        st.sqlite()
            .execute(
                &format!(
                    "INSERT INTO {} VALUES (2, 'from_the_future', '2030-01-01T00:00:00Z', '0')",
                    migrate::HISTORY_TABLE
                ),
                [],
            )
            .unwrap();
        drop(st);
        let e = Store::open(&path).unwrap_err();
        assert!(
            matches!(
                e,
                StoreError::SchemaTooNew {
                    found: 2,
                    supported: 1,
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains(&path.display().to_string()), "{e}");
    }

    /// A fresh store in PostgreSQL database `db` (created here).
    fn postgres_store(pg: &tollgate_testkit::postgres::Postgres, db: &str) -> Store {
        pg.create_database(db);
        let mut st =
            Store::open_postgres(&crate::database::DatabaseConfig::new(&pg.url(db))).unwrap();
        assert!(st.is_postgres());
        st.set_password_cost(TEST_COST);
        st
    }

    /// The store tests above on a real PostgreSQL 15 started by the test (root; `make
    /// host-test`), each on a database of its own, and CHAP secrets in the `chap` schema.
    #[test]
    #[ignore = "needs root and PostgreSQL 15 (make deps): make host-test"]
    fn the_store_tests_on_postgresql() {
        use tollgate_control_core::gateway::aaa::ChapResponse;
        use tollgate_control_core::ppp::wire::chap::md5_response;
        let pg = tollgate_testkit::postgres::Postgres::start();
        add_get_list_remove_on(postgres_store(&pg, "s1"));
        lookup_and_password_on(postgres_store(&pg, "s2"));
        identifiers_are_unique_across_subscribers_on(postgres_store(&pg, "s3"));
        update_replaces_on(postgres_store(&pg, "s4"));
        validation_on(postgres_store(&pg, "s5"));

        let mut st = postgres_store(&pg, "s6");
        assert_eq!(st.schema_version().unwrap(), SCHEMA_VERSION);
        let mut a = alice();
        a.chap_secret = Some(ChapSecret(b"s3cret".to_vec()));
        a.framed_ip = Some(Ipv4Addr::new(198, 51, 100, 7));
        st.add(&a).unwrap();
        assert_eq!(st.get("alice").unwrap().unwrap(), a);
        let challenge = b"0123456789abcdef".to_vec();
        let good = ChapResponse {
            id: 7,
            challenge: challenge.clone(),
            response: md5_response(7, b"s3cret", &challenge).to_vec(),
        };
        assert!(st.verify_chap("alice", &good).unwrap().is_some());
        st.set_chap_secret("alice", None).unwrap();
        assert!(st.verify_chap("alice", &good).unwrap().is_none());
        // A second node opening the same database finds the schema done and the data.
        let other =
            Store::open_postgres(&crate::database::DatabaseConfig::new(&pg.url("s6"))).unwrap();
        assert_eq!(other.count().unwrap(), 1);
        assert_eq!(
            other
                .lookup_by_identifier(&Identifier::MobileId("440101234567890".into()))
                .unwrap()
                .map(|s| s.user_id),
            Some("alice".into())
        );
    }

    #[test]
    fn authorization_of_a_subscriber() {
        let a = alice().authorization();
        assert_eq!(a.services, vec!["mail", "web"]);
        assert_eq!(a.conditions.login_victim, LoginVictim::Order);
        assert_eq!(a.bandwidth_down, Some(50_000_000));
    }

    #[test]
    fn chap_secrets_live_in_a_private_file_and_are_never_shown() {
        use std::os::unix::fs::PermissionsExt;
        use tollgate_control_core::gateway::aaa::ChapResponse;
        use tollgate_control_core::ppp::wire::chap::md5_response;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("subscribers.db");
        let mut st = Store::open(&path).unwrap();
        st.set_password_cost(TEST_COST);
        let mut a = alice();
        a.chap_secret = Some(ChapSecret(b"s3cret".to_vec()));
        st.add(&a).unwrap();
        let chap = chap_path(&path);
        assert_eq!(chap, dir.path().join("subscribers.db.chap"));
        let mode = std::fs::metadata(&chap).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // Not in the main file: the secret's bytes appear only in the private one.
        let main = std::fs::read(&path).unwrap();
        assert!(!main.windows(6).any(|w| w == b"s3cret"));
        drop(st);
        // A wider mode is taken away on open.
        std::fs::set_permissions(&chap, std::fs::Permissions::from_mode(0o644)).unwrap();
        let mut st = Store::open(&path).unwrap();
        let mode = std::fs::metadata(&chap).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let got = st.get("alice").unwrap().unwrap();
        assert_eq!(got.chap_secret, Some(ChapSecret(b"s3cret".to_vec())));
        // CHAP: MD5(id || secret || challenge).
        let challenge = b"0123456789abcdef".to_vec();
        let response = md5_response(7, b"s3cret", &challenge).to_vec();
        let good = ChapResponse {
            id: 7,
            challenge: challenge.clone(),
            response: response.clone(),
        };
        assert_eq!(
            st.verify_chap("alice", &good).unwrap().map(|s| s.user_id),
            Some("alice".into())
        );
        let bad = ChapResponse {
            response: md5_response(7, b"other", &challenge).to_vec(),
            ..good.clone()
        };
        assert!(st.verify_chap("alice", &bad).unwrap().is_none());
        assert!(st.verify_chap("nobody", &good).unwrap().is_none());
        // PAP still checks the Argon2 hash.
        assert!(
            st.verify_password("alice", b"wonderland")
                .unwrap()
                .is_some()
        );
        // Shown: only that there is one.
        let view = serde_json::to_string(&SubscriberView::from(&got)).unwrap();
        assert!(view.contains("\"has_chap_secret\":true"), "{view}");
        assert!(!view.contains("s3cret"));
        assert!(!format!("{got:?}").contains("s3cret"));
        // Cleared, replaced, removed with the subscriber.
        st.set_chap_secret("alice", None).unwrap();
        assert!(st.verify_chap("alice", &good).unwrap().is_none());
        st.set_chap_secret("alice", Some(b"s3cret")).unwrap();
        assert!(st.verify_chap("alice", &good).unwrap().is_some());
        st.remove("alice").unwrap();
        st.add(&alice()).unwrap();
        assert_eq!(st.get("alice").unwrap().unwrap().chap_secret, None);
        assert!(st.set_chap_secret("alice", Some(b"")).is_err());
    }
}
