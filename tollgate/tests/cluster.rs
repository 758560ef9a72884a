//! Two `tollgate run` daemons on one PostgreSQL (issue 18 items 1, 2 and 7, CLU-1): a
//! subscriber added through one node's config is the other's too, both nodes' accounting
//! records reach the shared table once each, the rating ledger holds both nodes' usage,
//! and PostgreSQL stopped mid-run and started again loses and duplicates no record. The
//! server is started by the test (initdb and pg_ctl as the postgres user, a loopback
//! port; `tollgate_testkit::postgres`); the daemons run on idle memory ports.

mod support;

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::gateway::ctl;
use tollgate_testkit::postgres::Postgres;

fn write_config(d: &Path, url: &str, node: &str) -> PathBuf {
    let config = d.join("tollgate.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[control]
socket = "{d}/ctl.sock"
[access]
backend = "memory"
address = "10.10.0.1/24"
[core]
backend = "memory"
address = "192.0.2.1/24"
[subscribers]
session_log = "{d}/sessions.jsonl"
[aaa]
spool = "{d}/accounting.db"
spool_retry_min_ms = 20
spool_retry_max_ms = 200
[database]
url = "{url}"
node = "{node}"
connect_timeout_s = 2
"#,
            d = d.display()
        ),
    )
    .unwrap();
    config
}

fn tollgate(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Polls `f` until it gives a value (at most 60 s: a busy 2-core machine).
fn wait<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

struct Node {
    dir: tempfile::TempDir,
    config: PathBuf,
    child: Child,
}

impl Node {
    fn start(url: &str, name: &str) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let config = write_config(dir.path(), url, name);
        let child = Command::new(env!("CARGO_BIN_EXE_tollgate"))
            .args(["run", "--config"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let node = Node { dir, config, child };
        wait("the daemon's socket", || {
            UnixStream::connect(node.socket()).ok()
        });
        node
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("ctl.sock")
    }

    fn session(&self, user: &str, address: &str) {
        let (ok, v) = ctl(
            &self.socket(),
            &["session", "add", "--user", user, "--address", address],
        );
        assert!(ok, "{v}");
        let (ok, v) = ctl(&self.socket(), &["session", "remove", address]);
        assert!(ok, "{v}");
    }

    fn accounting(&self) -> Value {
        let (ok, v) = ctl(&self.socket(), &["show", "accounting"]);
        assert!(ok, "{v}");
        v
    }

    fn stop(mut self) {
        // SAFETY: kill(2) on our own child's pid; no memory is involved.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let status = wait("the daemon to exit", || self.child.try_wait().unwrap());
        assert!(status.success(), "a clean stop: {status:?}");
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
#[ignore = "needs root and PostgreSQL 15 (make deps): make host-test"]
fn two_nodes_share_the_store_the_records_and_the_ledger_through_a_database_restart() {
    let pg = Postgres::start();
    pg.create_database("cluster");
    let url = pg.url("cluster");
    let rows = |sql: &str| pg.query("cluster", sql);

    // A bad password is an error at start that says so, not a panic.
    let bad = tempfile::tempdir().unwrap();
    let config = write_config(bad.path(), &pg.url_wrong_password("cluster"), "x");
    let (ok, out) = tollgate(&["run", "--config", config.to_str().unwrap()]);
    assert!(!ok, "{out}");
    assert!(out.contains("password authentication failed"), "{out}");
    assert!(
        !out.contains("panicked") && !out.contains("not-the-password"),
        "{out}"
    );

    let a = Node::start(&url, "node-a");
    let b = Node::start(&url, "node-b");
    // One store: added through node a's config, node b's finds it.
    let (ok, out) = tollgate(&[
        "subscriber",
        "--config",
        a.config.to_str().unwrap(),
        "add",
        "alice",
        "--password",
        "wonderland",
    ]);
    assert!(ok, "{out}");
    let (ok, out) = tollgate(&[
        "subscriber",
        "--config",
        b.config.to_str().unwrap(),
        "show",
        "alice",
    ]);
    assert!(ok && out.contains("alice"), "{out}");

    // A session on each node: a Start and a Stop each, in the shared table once.
    a.session("alice", "10.10.0.20");
    b.session("bob", "10.10.0.21");
    wait("4 records in PostgreSQL", || {
        (rows("SELECT count(*) FROM accounting_record") == "4").then_some(())
    });
    assert_eq!(
        rows(
            "SELECT node, status, count(*) FROM accounting_record GROUP BY node, status ORDER BY node, status"
        ),
        "node-a|Start|1\nnode-a|Stop|1\nnode-b|Start|1\nnode-b|Stop|1"
    );
    // The ledger holds both nodes' sessions.
    wait("both sessions in the ledger", || {
        (rows("SELECT count(*) FROM record WHERE kind = 'session'") == "2").then_some(())
    });

    // PostgreSQL stops: node a's records wait in its spool, counted as retries.
    pg.stop();
    a.session("carol", "10.10.0.22");
    a.session("dave", "10.10.0.23");
    wait("retries while the database is down", || {
        let v = a.accounting();
        (v["database"]["retries"].as_u64() >= Some(2) && v["spool"]["pending"] == 4).then_some(())
    });
    // It comes back: every record arrives, once.
    pg.start_again();
    wait("8 records in PostgreSQL", || {
        (rows("SELECT count(*) FROM accounting_record") == "8").then_some(())
    });
    wait("node a's spool to empty", || {
        (a.accounting()["spool"]["pending"] == 0).then_some(())
    });
    // Node b's ledger connection was cut by the restart: it is made again.
    b.session("erin", "10.10.0.24");
    wait("10 records in PostgreSQL", || {
        (rows("SELECT count(*) FROM accounting_record") == "10").then_some(())
    });
    wait("node b's new session in the ledger", || {
        (rows("SELECT count(*) FROM record WHERE kind = 'session'") == "3").then_some(())
    });
    assert_eq!(
        rows(
            "SELECT count(DISTINCT (spool, id)), count(DISTINCT (session_id, status)) FROM accounting_record"
        ),
        "10|10"
    );
    let v = a.accounting();
    assert_eq!(v["database"]["committed"], 6, "{v}");
    assert_eq!(
        v["database"]["target"],
        format!(
            "{}@127.0.0.1:{}/cluster",
            tollgate_testkit::postgres::USER,
            pg.port
        )
    );
    a.stop();
    b.stop();
}
