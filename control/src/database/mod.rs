//! The cluster's PostgreSQL (`[database] url`, SPEC CLU-1): where the nodes of a cluster
//! keep what they share. Without `[database]` nothing here runs and every store stays in
//! its embedded SQLite file.
//!
//! This module owns the connection: the URL and its errors (never showing the password),
//! the connect timeout, and which errors are the operator's to fix (a wrong password, a
//! database that does not exist: refused at start) against the ones that pass (a
//! database restarting: retried and counted). [`accounting`] delivers the spooled
//! accounting records; the rating ledger's PostgreSQL backend is in
//! [`crate::rating::store`].
//!
//! The client is the blocking `postgres` crate (rust-postgres): the stores already run
//! off the packet-facing loop (on their own threads or in `tollgate billing`), so a
//! blocking client is the simple fit; it is the client refinery's migrations drive too.

pub mod accounting;
pub mod backend;
pub mod cluster;
pub mod placement;

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::migrate::MigrateError;

/// `[database]`: the cluster's PostgreSQL.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `postgres://USER:PASSWORD@HOST:PORT/DBNAME` (or libpq's `key=value` form).
    pub url: String,
    /// This node's name in what it stores (default: the host name).
    #[serde(default)]
    pub node: Option<String>,
    /// Seconds one connection attempt may take.
    #[serde(default = "default_connect_timeout_s")]
    pub connect_timeout_s: u64,
}

fn default_connect_timeout_s() -> u64 {
    5
}

impl DatabaseConfig {
    /// A config for `url` with the defaults.
    pub fn new(url: &str) -> DatabaseConfig {
        DatabaseConfig {
            url: url.to_string(),
            node: None,
            connect_timeout_s: default_connect_timeout_s(),
        }
    }

    /// Checks what can be checked without connecting: the URL reads, a timeout is set.
    pub fn validate(&self) -> Result<(), (String, String)> {
        self.parsed()
            .map_err(|e| ("database.url".to_string(), e.to_string()))?;
        if self.connect_timeout_s == 0 {
            return Err((
                "database.connect_timeout_s".to_string(),
                "must be at least 1".to_string(),
            ));
        }
        if self.node.as_deref().is_some_and(str::is_empty) {
            return Err(("database.node".to_string(), "must not be empty".to_string()));
        }
        Ok(())
    }

    /// The node name: the configured one or the host name.
    pub fn node_name(&self) -> String {
        self.node.clone().unwrap_or_else(host_name)
    }

    fn parsed(&self) -> Result<postgres::Config, DatabaseError> {
        let mut c: postgres::Config =
            self.url
                .parse()
                .map_err(|e: postgres::Error| DatabaseError::BadUrl {
                    message: e.to_string(),
                })?;
        c.connect_timeout(Duration::from_secs(self.connect_timeout_s.max(1)));
        c.application_name("tollgate");
        c.keepalives_idle(Duration::from_secs(10));
        Ok(c)
    }

    /// Where the URL points, for messages: `USER@HOST:PORT/DBNAME`, no password.
    pub fn target(&self) -> String {
        match self.parsed() {
            Ok(c) => describe(&c),
            Err(_) => "<unreadable [database] url>".to_string(),
        }
    }

    /// Opens one connection.
    pub fn connect(&self) -> Result<postgres::Client, DatabaseError> {
        let c = self.parsed()?;
        c.connect(postgres::NoTls)
            .map_err(|e| DatabaseError::from_connect(describe(&c), e))
    }
}

fn describe(c: &postgres::Config) -> String {
    let user = c.get_user().unwrap_or("?");
    let host = c
        .get_hosts()
        .first()
        .map(|h| match h {
            postgres::config::Host::Tcp(h) => h.clone(),
            postgres::config::Host::Unix(p) => p.display().to_string(),
        })
        .unwrap_or_else(|| "localhost".to_string());
    let port = c.get_ports().first().copied().unwrap_or(5432);
    let db = c.get_dbname().unwrap_or(user);
    format!("{user}@{host}:{port}/{db}")
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "tollgate".to_string())
}

/// What can go wrong with the cluster's database.
#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    /// The URL does not read.
    #[error("[database] url: {message} (expected postgres://USER:PASSWORD@HOST:PORT/DBNAME)")]
    BadUrl {
        /// The parser's reason (it never repeats the password).
        message: String,
    },
    /// The server answered and refused: a wrong password, an unknown user or database.
    /// The operator has to change something; retrying does not help.
    #[error("PostgreSQL {target} refused the connection: {message}")]
    Refused {
        /// `USER@HOST:PORT/DBNAME`.
        target: String,
        /// The server's message.
        message: String,
    },
    /// The server could not be reached (down, restarting, a firewall): it may come back.
    #[error("PostgreSQL {target} cannot be reached: {message}")]
    Unreachable {
        /// `USER@HOST:PORT/DBNAME`.
        target: String,
        /// Why.
        message: String,
    },
    /// A statement failed.
    #[error("PostgreSQL {target}: {context}: {source}")]
    Query {
        /// `USER@HOST:PORT/DBNAME`.
        target: String,
        /// What was being done.
        context: String,
        /// The client's error.
        source: postgres::Error,
    },
    /// The schema could not be brought up to date, or was written by a newer Tollgate.
    #[error("PostgreSQL {0}")]
    Migration(MigrateError),
}

impl DatabaseError {
    fn from_connect(target: String, e: postgres::Error) -> DatabaseError {
        match e.as_db_error() {
            Some(db) => DatabaseError::Refused {
                target,
                message: format!("{} ({})", db.message(), db.code().code()),
            },
            None => DatabaseError::Unreachable {
                target,
                message: error_chain(&e),
            },
        }
    }

    /// Whether waiting may cure it (the server is down or restarting), as against a
    /// refusal or a schema the operator has to deal with.
    pub fn is_transient(&self) -> bool {
        match self {
            DatabaseError::Unreachable { .. } => true,
            DatabaseError::Query { source, .. } => source.as_db_error().is_none_or(|db| {
                // The server shutting down or restarting under an open connection.
                db.code().code().starts_with("57P") || db.code().code().starts_with("08")
            }),
            _ => false,
        }
    }
}

/// An error and its causes on one line ("error connecting to server: Connection refused").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_that_does_not_read_is_refused_without_showing_the_password() {
        let c = DatabaseConfig::new("postgres://tg:s3cret@[::1:5432/x");
        let (field, message) = c.validate().unwrap_err();
        assert_eq!(field, "database.url");
        assert!(!message.contains("s3cret"), "{message}");
        assert!(matches!(
            c.connect().err(),
            Some(DatabaseError::BadUrl { .. })
        ));
        let ok = DatabaseConfig::new("postgres://tg:s3cret@127.0.0.1:55499/ledger");
        assert_eq!(ok.target(), "tg@127.0.0.1:55499/ledger");
        ok.validate().unwrap();
    }

    #[test]
    fn nothing_listening_is_unreachable_and_transient() {
        // A loopback port in this test's range with nothing on it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let c = DatabaseConfig::new(&format!("postgres://tg:pw@127.0.0.1:{port}/x"));
        let Err(e) = c.connect() else {
            panic!("connected to a port with nothing on it")
        };
        assert!(e.is_transient(), "{e}");
        let m = e.to_string();
        assert!(
            m.starts_with(&format!(
                "PostgreSQL tg@127.0.0.1:{port}/x cannot be reached"
            )),
            "{m}"
        );
        assert!(!m.contains("pw"), "{m}");
    }
}
