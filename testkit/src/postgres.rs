//! A real PostgreSQL 15 for tests, started by the test itself: `initdb` into a temporary
//! directory and `pg_ctl` from Debian's `postgresql-15` (`make deps` installs it), run as
//! the `postgres` user (initdb refuses root), listening on a free loopback port in
//! 55400-55499 with password (SCRAM) authentication. Readiness is polled with
//! `pg_isready`; dropping the [`Postgres`] stops the server and removes the directory.
//! The tests that use it are `#[ignore]`d with the reason, and `make host-test` runs them
//! as root (without root it says it skips them); run without root or without the
//! binaries, [`Postgres::start`] fails saying which, rather than pass unrun.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

/// The PostgreSQL binaries.
pub const BIN: &str = "/usr/lib/postgresql/15/bin";
/// The superuser the cluster is created with.
pub const USER: &str = "tollgate";
/// Its password.
pub const PASSWORD: &str = "tollgate-test-pw";

/// The next port to try (tests in one process start servers in parallel).
static NEXT_PORT: AtomicU16 = AtomicU16::new(55400);

/// One running server; stopped and removed on drop.
pub struct Postgres {
    dir: tempfile::TempDir,
    /// Its loopback port.
    pub port: u16,
    /// `fsync=on` (benchmarks); tests run with it off.
    durable: bool,
}

impl Postgres {
    /// Starts a server; fails saying why when it cannot (not root, no binaries).
    pub fn start() -> Postgres {
        Postgres::start_with(false)
    }

    /// [`Self::start`] with `fsync=on`, as a production server runs (benchmarks).
    pub fn start_durable() -> Postgres {
        Postgres::start_with(true)
    }

    fn start_with(durable: bool) -> Postgres {
        use std::os::unix::fs::MetadataExt;
        // /proc/self belongs to the process's effective user.
        assert!(
            std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0),
            "the PostgreSQL tests need root (to run initdb as the postgres user): make host-test"
        );
        assert!(
            Path::new(BIN).join("initdb").exists(),
            "{BIN}/initdb is missing: make deps installs postgresql"
        );
        let dir = tempfile::Builder::new()
            .prefix("tgc-pg.")
            .tempdir()
            .expect("a temporary directory");
        let (uid, gid) = postgres_ids();
        std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).expect("chown to postgres");
        let pwfile = dir.path().join("pw");
        std::fs::write(&pwfile, PASSWORD).expect("the password file");
        std::os::unix::fs::chown(&pwfile, Some(uid), Some(gid)).expect("chown to postgres");
        let data = dir.path().join("data");
        as_postgres(
            "initdb",
            &[
                "-D",
                path(&data),
                "-U",
                USER,
                "--pwfile",
                path(&pwfile),
                "--auth-host=scram-sha-256",
                "--auth-local=trust",
                "--no-sync",
                "-E",
                "UTF8",
            ],
        );
        let mut pg = Postgres {
            dir,
            port: 0,
            durable,
        };
        for _ in 0..100 {
            let port = NEXT_PORT.fetch_add(1, Ordering::Relaxed);
            if port > 55499 {
                NEXT_PORT.store(55400, Ordering::Relaxed);
                continue;
            }
            if std::net::TcpListener::bind(("127.0.0.1", port)).is_err() {
                continue;
            }
            pg.port = port;
            break;
        }
        assert!(pg.port != 0, "no free loopback port in 55400-55499");
        pg.start_again();
        pg
    }

    /// The URL of database `db` (created by [`Self::create_database`]).
    pub fn url(&self, db: &str) -> String {
        format!("postgres://{USER}:{PASSWORD}@127.0.0.1:{}/{db}", self.port)
    }

    /// The same server with a wrong password.
    pub fn url_wrong_password(&self, db: &str) -> String {
        format!(
            "postgres://{USER}:not-the-password@127.0.0.1:{}/{db}",
            self.port
        )
    }

    /// Creates database `db`.
    pub fn create_database(&self, db: &str) {
        let out = Command::new(Path::new(BIN).join("createdb"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                USER,
                db,
            ])
            .env("PGPASSWORD", PASSWORD)
            .output()
            .expect("createdb runs");
        assert!(
            out.status.success(),
            "createdb {db}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Runs `sql` in database `db` with psql; its rows, `|`-separated, one a line.
    pub fn query(&self, db: &str, sql: &str) -> String {
        let out = Command::new(Path::new(BIN).join("psql"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                USER,
                "-d",
                db,
            ])
            .args(["-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .env("PGPASSWORD", PASSWORD)
            .output()
            .expect("psql runs");
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Stops the server (fast shutdown: open connections are cut).
    pub fn stop(&self) {
        as_postgres(
            "pg_ctl",
            &["-D", path(&self.data()), "-m", "fast", "-w", "stop"],
        );
    }

    /// Starts it (again) and waits until `pg_isready` says it accepts connections.
    pub fn start_again(&self) {
        let socket_dir = self.dir.path();
        let opts = format!(
            "-p {} -h 127.0.0.1 -k {} -c fsync={}",
            self.port,
            socket_dir.display(),
            if self.durable { "on" } else { "off" }
        );
        let log = self.dir.path().join("log");
        as_postgres(
            "pg_ctl",
            &[
                "-D",
                path(&self.data()),
                "-l",
                path(&log),
                "-o",
                &opts,
                "-W",
                "start",
            ],
        );
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ok = Command::new(Path::new(BIN).join("pg_isready"))
                .args([
                    "-q",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &self.port.to_string(),
                    "-t",
                    "1",
                ])
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "PostgreSQL on port {} not ready after 60 s: {}",
                self.port,
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(Path::new(BIN).join("pg_ctl"))
            .args(["-D", path(&self.data()), "-m", "immediate", "-w", "stop"])
            .output();
    }
}

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

fn postgres_ids() -> (u32, u32) {
    let id = |flag: &str| -> u32 {
        let out = Command::new("id")
            .args([flag, "postgres"])
            .output()
            .expect("id runs");
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("the postgres user exists (Debian's postgresql package creates it)")
    };
    (id("-u"), id("-g"))
}

fn as_postgres(tool: &str, args: &[&str]) {
    let out = Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .arg(Path::new(BIN).join(tool))
        .args(args)
        .current_dir("/")
        .output()
        .expect("runuser runs");
    assert!(
        out.status.success(),
        "{tool} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
