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
    // The two sessions' usage records wait in the spool too, for the ledger.
    wait("the ledger's failed batches", || {
        let v = a.accounting();
        (v["ledger"]["failed_batches"].as_u64() >= Some(2) && v["ledger"]["pending"] == 2)
            .then_some(())
    });
    // It comes back: every record arrives, once.
    pg.start_again();
    wait("8 records in PostgreSQL", || {
        (rows("SELECT count(*) FROM accounting_record") == "8").then_some(())
    });
    wait("node a's spool to empty", || {
        let v = a.accounting();
        (v["spool"]["pending"] == 0 && v["ledger"]["pending"] == 0).then_some(())
    });
    // The usage of the sessions that ended while the database was down is in the
    // ledger, once.
    let ledger = || {
        rows(
            "SELECT body::json->>'user', count(*), count(DISTINCT id) FROM record
             WHERE kind = 'session' GROUP BY 1 ORDER BY 1",
        )
    };
    assert_eq!(ledger(), "alice|1|1\nbob|1|1\ncarol|1|1\ndave|1|1");
    let v = a.accounting();
    assert_eq!(
        (&v["ledger"]["stored"], &v["ledger"]["refused"]),
        (&3.into(), &0.into()),
        "{v}"
    );
    // Node b's ledger connection was cut by the restart: it is made again.
    b.session("erin", "10.10.0.24");
    wait("10 records in PostgreSQL", || {
        (rows("SELECT count(*) FROM accounting_record") == "10").then_some(())
    });
    wait("node b's new session in the ledger", || {
        (rows("SELECT count(*) FROM record WHERE kind = 'session'") == "5").then_some(())
    });
    assert_eq!(
        ledger(),
        "alice|1|1\nbob|1|1\ncarol|1|1\ndave|1|1\nerin|1|1"
    );
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

/// One node's wires: its access and core ports are veth ends in the root namespace
/// (AF_PACKET, no addresses); the subscribers sit in a namespace of their own on the
/// access side and the server (192.0.2.10) in another on the core side. Both
/// namespaces, and with them the veth pairs, are deleted on drop.
struct Wires {
    sub: String,
    srv: String,
    sub_if: String,
    access: String,
    core: String,
}

fn sh(args: &[&str]) {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Wires {
    fn new(n: u32) -> Wires {
        let pid = std::process::id() % 100_000;
        let w = Wires {
            sub: format!("tgk-sub{n}-{pid}"),
            srv: format!("tgk-srv{n}-{pid}"),
            sub_if: format!("tgk{n}s{pid}"),
            access: format!("tgk{n}a{pid}"),
            core: format!("tgk{n}c{pid}"),
        };
        let srv_if = format!("tgk{n}v{pid}");
        for ns in [&w.sub, &w.srv] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
            sh(&["ip", "netns", "add", ns]);
            sh(&[
                "ip",
                "netns",
                "exec",
                ns,
                "sysctl",
                "-qw",
                "net.ipv6.conf.all.disable_ipv6=1",
                "net.ipv6.conf.default.disable_ipv6=1",
            ]);
            sh(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        }
        sh(&[
            "ip", "link", "add", &w.access, "type", "veth", "peer", "name", &w.sub_if, "netns",
            &w.sub,
        ]);
        sh(&[
            "ip", "link", "add", &w.core, "type", "veth", "peer", "name", &srv_if, "netns", &w.srv,
        ]);
        for root_end in [&w.access, &w.core] {
            std::fs::write(
                format!("/proc/sys/net/ipv6/conf/{root_end}/disable_ipv6"),
                "1",
            )
            .unwrap();
            sh(&["ip", "link", "set", root_end, "up"]);
        }
        sh(&["ip", "-n", &w.sub, "link", "set", &w.sub_if, "up"]);
        sh(&[
            "ip",
            "-n",
            &w.srv,
            "addr",
            "add",
            "192.0.2.10/24",
            "dev",
            &srv_if,
        ]);
        sh(&["ip", "-n", &w.srv, "link", "set", &srv_if, "up"]);
        sh(&[
            "ip",
            "-n",
            &w.srv,
            "route",
            "add",
            "10.10.0.0/16",
            "via",
            "192.0.2.1",
        ]);
        w
    }

    /// A subscriber with `address` (a login gave it) in the access namespace.
    fn subscriber(&self, address: &str) {
        sh(&[
            "ip",
            "-n",
            &self.sub,
            "addr",
            "add",
            &format!("{address}/16"),
            "dev",
            &self.sub_if,
        ]);
        sh(&[
            "ip",
            "-n",
            &self.sub,
            "route",
            "replace",
            "default",
            "via",
            "10.10.0.1",
            "dev",
            &self.sub_if,
        ]);
    }

    /// `count` pings of 1000 bytes (IPv4 total length) from `address` to the server;
    /// true when every one was answered.
    fn ping(&self, address: &str, count: u32) -> bool {
        Command::new("ip")
            .args(["netns", "exec", &self.sub, "ping", "-q", "-n", "-c"])
            .arg(count.to_string())
            .args([
                "-i",
                "0.02",
                "-W",
                "2",
                "-s",
                "972",
                "-I",
                address,
                "192.0.2.10",
            ])
            .output()
            .is_ok_and(|o| o.status.success())
    }
}

impl Drop for Wires {
    fn drop(&mut self) {
        for ns in [&self.sub, &self.srv] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

/// A `tollgate run` daemon of the three-node cluster, on AF_PACKET ports.
struct Daemon {
    name: String,
    dir: tempfile::TempDir,
    config: PathBuf,
    child: Option<Child>,
}

/// Heartbeat and lease of the test cluster: short, with room for a busy machine.
const HEARTBEAT_MS: u64 = 500;
const LEASE_MS: u64 = 4000;

impl Daemon {
    fn start(url: &str, n: u32, w: &Wires) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        let name = format!("gw{n}");
        let config = dir.path().join("tollgate.toml");
        std::fs::write(
            &config,
            format!(
                r#"
[engine]
workers = 1
idle_sleep_us = 1000
[control]
socket = "{d}/ctl.sock"
[access]
backend = "af_packet"
interface = "{access}"
address = "10.10.0.1/16"
[core]
backend = "af_packet"
interface = "{core}"
address = "192.0.2.1/24"
[subscribers]
session_log = "{d}/sessions.jsonl"
[aaa]
spool = "{d}/accounting.db"
spool_retry_min_ms = 20
spool_retry_max_ms = 200
[aaa.radius]
interim_interval_s = 1
[[pool]]
name = "mobile"
[[pool.range]]
first = "10.10.1.10"
last = "10.10.1.19"
node = "gw1"
[[pool.range]]
first = "10.10.2.10"
last = "10.10.2.19"
node = "gw2"
[[pool.range]]
first = "10.10.3.10"
last = "10.10.3.19"
node = "gw3"
[ipv6]
enabled = true
next_hop = "2001:db8:ff::fe"
[[ipv6.range]]
prefix = "2001:db8:101::/48"
node = "gw1"
[[ipv6.range]]
prefix = "2001:db8:102::/48"
node = "gw2"
[[ipv6.range]]
prefix = "2001:db8:103::/48"
node = "gw3"
[rating]
default_tariff = "metered"
[[rating.tariff]]
name = "metered"
[[rating.tariff.rate]]
kind = "bytes"
direction = "both"
price = 1
per = 1000
[[rating.account]]
id = "shared"
name = "Shared account"
tariff = "metered"
users = ["u11", "u21"]
[database]
url = "{url}"
connect_timeout_s = 2
[cluster]
node = "{name}"
heartbeat_ms = {HEARTBEAT_MS}
lease_ms = {LEASE_MS}
"#,
                access = w.access,
                core = w.core,
            ),
        )
        .unwrap();
        let mut node = Daemon {
            name,
            dir,
            config,
            child: None,
        };
        node.run();
        node
    }

    fn run(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("daemon.log"))
            .unwrap();
        self.child = Some(
            Command::new(env!("CARGO_BIN_EXE_tollgate"))
                .args(["run", "--config"])
                .arg(&self.config)
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap(),
        );
        wait(&format!("{}'s socket", self.name), || {
            UnixStream::connect(self.dir.path().join("ctl.sock")).ok()
        });
    }

    fn ctl(&self, args: &[&str]) -> Value {
        let (ok, v) = ctl(&self.dir.path().join("ctl.sock"), args);
        assert!(ok, "{}: {args:?}: {v}\n{}", self.name, self.log());
        v
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("daemon.log")).unwrap_or_default()
    }

    fn cluster(&self) -> Value {
        self.ctl(&["show", "cluster"])
    }

    /// Logs `user` in with `mobile`; the address the node gave and whether it resumed.
    fn login(&self, user: &str, mobile: &str) -> (String, bool) {
        let v = self.ctl(&[
            "session",
            "login",
            "--user",
            user,
            "--password",
            "pw",
            "--mobile-id",
            mobile,
        ]);
        (
            v["address"].as_str().unwrap().to_string(),
            v["resumed"].as_bool().unwrap(),
        )
    }

    fn kill9(&mut self) {
        let mut c = self.child.take().unwrap();
        c.kill().unwrap();
        c.wait().unwrap();
    }

    fn stop(mut self) {
        let mut c = self.child.take().unwrap();
        // SAFETY: kill(2) on our own child's pid; no memory is involved.
        unsafe {
            libc::kill(c.id() as i32, libc::SIGTERM);
        }
        let status = wait("the daemon to exit", || c.try_wait().unwrap());
        assert!(
            status.success(),
            "{}: {status:?}\n{}",
            self.name,
            self.log()
        );
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
#[ignore = "needs root, network namespaces and PostgreSQL 15 (make deps): make host-test"]
fn three_nodes_split_the_pool_and_a_survivor_closes_a_dead_nodes_sessions_once() {
    let pg = Postgres::start();
    pg.create_database("three");
    let url = pg.url("three");
    let rows = |sql: &str| pg.query("three", sql);
    let wires: Vec<Wires> = (1..=3).map(Wires::new).collect();
    let mut nodes: Vec<Daemon> = (1..=3)
        .map(|n| Daemon::start(&url, n, &wires[n as usize - 1]))
        .collect();
    let cfg = nodes[0].config.to_str().unwrap().to_string();
    for n in 1..=3 {
        for k in 1..=2 {
            let (ok, out) = tollgate(&[
                "subscriber",
                "--config",
                &cfg,
                "add",
                &format!("u{n}{k}"),
                "--password",
                "pw",
            ]);
            assert!(ok, "{out}");
        }
    }
    wait("three nodes up", || {
        let v = nodes[0].cluster();
        let up = v["nodes"]
            .as_array()
            .is_some_and(|n| n.len() == 3 && n.iter().all(|n| n["state"] == "up"));
        up.then_some(())
    });

    // Two logins on each node: each address from that node's own range; a returning
    // mobile id keeps its address.
    let mut subs: Vec<(usize, String, String)> = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        for k in 1..=2 {
            let (address, resumed) =
                node.login(&format!("u{}{k}", i + 1), &format!("m{}{k}", i + 1));
            assert!(!resumed);
            assert!(
                address.starts_with(&format!("10.10.{}.1", i + 1)),
                "{} gave {address}",
                node.name
            );
            subs.push((i, format!("m{}{k}", i + 1), address));
        }
    }
    let (again, resumed) = nodes[0].login("u11", "m11");
    assert_eq!((again.as_str(), resumed), (subs[0].2.as_str(), true));
    let ids = |node: &str| -> Vec<String> {
        rows(&format!(
            "SELECT session_id FROM cluster_session WHERE started_on = '{node}' ORDER BY 1"
        ))
        .lines()
        .map(str::to_string)
        .collect()
    };
    // Traffic through every node, so the interims carry counters.
    for (i, _, address) in &subs {
        wires[*i].subscriber(address);
        assert!(wires[*i].ping(address, 20), "{address} through gw{}", i + 1);
    }
    wait(
        "every session's interim with counters in PostgreSQL",
        || {
            (rows(
                "SELECT count(*) FROM cluster_session
             WHERE status = 'open' AND octets_up >= 20000 AND octets_down >= 20000",
            ) == "6")
                .then_some(())
        },
    );
    for n in ["gw1", "gw2", "gw3"] {
        let s = ids(n);
        assert_eq!(s.len(), 2, "{n}: {s:?}");
        assert!(s.iter().all(|id| id.starts_with(&format!("{n}."))), "{s:?}");
    }
    let v = nodes[1].cluster();
    assert_eq!(v["node"], "gw2");
    // Every node's IPv4 range and IPv6 prefix ([[ipv6.range]]), each with the node's
    // two sessions (their addresses, their /64s).
    let ranges: Vec<String> = v["ranges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{} {}-{} {} {} {}",
                r["pool"].as_str().unwrap(),
                r["first"].as_str().unwrap(),
                r["last"].as_str().unwrap(),
                r["node"].as_str().unwrap(),
                r["size"],
                r["assigned"]
            )
        })
        .collect();
    assert_eq!(
        ranges,
        [
            "ipv6 2001:db8:101::-2001:db8:101:ffff:ffff:ffff:ffff:ffff gw1 null 2",
            "ipv6 2001:db8:102::-2001:db8:102:ffff:ffff:ffff:ffff:ffff gw2 null 2",
            "ipv6 2001:db8:103::-2001:db8:103:ffff:ffff:ffff:ffff:ffff gw3 null 2",
            "mobile 10.10.1.10-10.10.1.19 gw1 10 2",
            "mobile 10.10.2.10-10.10.2.19 gw2 10 2",
            "mobile 10.10.3.10-10.10.3.19 gw3 10 2",
        ],
        "{v}"
    );
    // Each session's /64 from its node's prefix.
    assert_eq!(
        rows(
            "SELECT started_on, count(*) FROM cluster_session
             WHERE ipv6_prefix << ('2001:db8:10' || substr(started_on, 3) || '::/48')::inet
             GROUP BY 1 ORDER BY 1"
        ),
        "gw1|2\ngw2|2\ngw3|2"
    );
    assert!(
        v["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["sessions"] == 2),
        "{v}"
    );
    // An upstream steering by source range would send the next login to the first of
    // the equally loaded ranges.
    let next = |v: &Value, pool: &str| {
        v["next"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["pool"] == pool)
            .map(|n| n["node"].as_str().unwrap().to_string())
            .unwrap()
    };
    assert_eq!(next(&v, "mobile"), "gw1", "{v}");
    assert_eq!(next(&v, "ipv6"), "gw1", "{v}");

    // PostgreSQL stops for longer than a lease and starts again: every lease ran out,
    // yet no node takes another over (each waits a lease in touch with the database),
    // and no record is lost or stored twice.
    pg.stop();
    let beats = |v: &Value| v["heartbeats"].as_u64().unwrap();
    let lapse = LEASE_MS / HEARTBEAT_MS + 2;
    for node in &nodes {
        wait("heartbeats failing for longer than a lease", || {
            (node.cluster()["failed_heartbeats"].as_u64() >= Some(lapse)).then_some(())
        });
    }
    for (i, _, address) in &subs {
        assert!(
            wires[*i].ping(address, 5),
            "traffic goes on without the database"
        );
    }
    let before: Vec<u64> = nodes.iter().map(|n| beats(&n.cluster())).collect();
    pg.start_again();
    for (node, b) in nodes.iter().zip(&before) {
        wait("two leases of heartbeats after the restart", || {
            (beats(&node.cluster()) >= b + 2 * lapse).then_some(())
        });
    }
    for node in &nodes {
        let v = node.cluster();
        assert_eq!(v["takeovers"], 0, "{v}");
        assert!(
            v["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .all(|n| n["state"] == "up"),
            "{v}"
        );
    }
    for node in &nodes {
        wait("the spool to empty", || {
            (node.ctl(&["show", "accounting"])["spool"]["pending"] == 0).then_some(())
        });
    }
    assert_eq!(
        rows("SELECT count(*) FROM accounting_record WHERE status = 'Stop'"),
        "0"
    );
    assert_eq!(
        rows(
            "SELECT count(*) = count(DISTINCT (spool, id)),
                    count(*) FILTER (WHERE status = 'Start')
             FROM accounting_record"
        ),
        "t|6"
    );

    // kill -9 of gw3: a survivor closes its two sessions with their last interim
    // counters, once, as NAS-Reboot.
    let gw3 = ids("gw3");
    nodes[2].kill9();
    let last_interims = || {
        rows(
            "SELECT DISTINCT ON (session_id) session_id, body::json->'counters'
             FROM accounting_record WHERE node = 'gw3' AND status <> 'Stop'
             ORDER BY session_id, id DESC",
        )
    };
    let stops = || {
        rows(
            "SELECT session_id, body::json->'counters' FROM accounting_record
             WHERE status = 'Stop' ORDER BY session_id",
        )
    };
    wait("the survivor's Stops of gw3's sessions", || {
        (rows("SELECT count(*) FROM accounting_record WHERE status = 'Stop'") == "2").then_some(())
    });
    assert_eq!(stops(), last_interims(), "the last interim counters");
    let closer = rows("SELECT DISTINCT node FROM accounting_record WHERE status = 'Stop'");
    assert!(closer == "gw1" || closer == "gw2", "{closer}");
    assert_eq!(
        rows("SELECT DISTINCT body::json->>'cause' FROM accounting_record WHERE status = 'Stop'"),
        "Restart"
    );
    assert_eq!(
        rows("SELECT session_id FROM accounting_record WHERE status = 'Stop' ORDER BY 1"),
        gw3.join("\n")
    );
    assert_eq!(
        rows("SELECT state, taken_by FROM cluster_node WHERE node = 'gw3'"),
        format!("dead|{closer}")
    );
    let survivor = &nodes[if closer == "gw1" { 0 } else { 1 }];
    let v = survivor.cluster();
    assert_eq!(
        (v["takeovers"].as_u64(), v["sessions_taken"].as_u64()),
        (Some(1), Some(2)),
        "{v}"
    );
    assert_eq!(
        survivor.ctl(&["show", "accounting"])["database"]["takeover_stops"],
        2
    );
    // The survivor rated them too, under their Acct-Session-Ids.
    let rated =
        || rows("SELECT id FROM record WHERE kind = 'session' AND id LIKE 'gw3.%' ORDER BY 1");
    wait("gw3's sessions in the ledger", || {
        (rated() == gw3.join("\n")).then_some(())
    });

    // gw3 comes back: its spool closes the sessions it had open (NAS-Reboot at restart),
    // the database finds them taken: superseded, not stored, not closed again.
    nodes[2].run();
    wait("gw3's recovered Stops superseded", || {
        let v = nodes[2].ctl(&["show", "accounting"]);
        (v["database"]["superseded"].as_u64() >= Some(2) && v["spool"]["pending"] == 0)
            .then_some(())
    });
    assert_eq!(
        rows("SELECT count(*) FROM accounting_record WHERE status = 'Stop'"),
        "2"
    );
    wait("gw3 up again", || {
        (rows("SELECT state FROM cluster_node WHERE node = 'gw3'") == "up").then_some(())
    });
    assert_eq!(rated(), gw3.join("\n"), "rated once");
    // gw3's own usage records of those sessions (its restart rated them too) find the
    // survivor's in the ledger: superseded, a WARN each, not refused as errors.
    let v = wait("gw3's recovered usage records superseded", || {
        let v = nodes[2].ctl(&["show", "accounting"]);
        (v["ledger"]["superseded"] == 2 && v["ledger"]["pending"] == 0).then_some(v)
    });
    assert_eq!(v["ledger"]["refused"], 0, "{v}");
    let log = nodes[2].log();
    assert_eq!(
        log.matches("the ledger keeps the survivor's").count(),
        2,
        "{log}"
    );
    assert!(!log.contains("the rating ledger refused"), "{log}");
    // gw3's range is empty now: the next login of a steering upstream goes there.
    wait("gw3's range next", || {
        let v = nodes[0].cluster();
        (next(&v, "mobile") == "gw3" && next(&v, "ipv6") == "gw3").then_some(())
    });
    let (ok, text) = tollgate(&[
        "ctl",
        "--socket",
        nodes[0].dir.path().join("ctl.sock").to_str().unwrap(),
        "show",
        "cluster",
    ]);
    assert!(
        ok && text.contains("NODE") && text.contains("gw3   up"),
        "{text}"
    );
    // The other nodes' sessions stay open.
    assert_eq!(
        rows(
            "SELECT started_on, count(*) FROM cluster_session WHERE status = 'open' GROUP BY 1 ORDER BY 1"
        ),
        "gw1|2\ngw2|2"
    );

    // A shared billing account (u11 at gw1, u21 at gw2): both end their sessions, the
    // period is closed by two nodes at once (one holds the database lock, the other
    // finds it closed): one claim with both users' usage; re-rating reproduces it.
    for (node, sub) in [(&nodes[0], &subs[0]), (&nodes[1], &subs[2])] {
        node.ctl(&["session", "remove", &sub.2]);
    }
    let shared = || {
        rows(
            "SELECT body::json->>'user', sum((body::json->>'tx_bytes')::bigint
                 + (body::json->>'rx_bytes')::bigint)
             FROM record WHERE kind = 'session' AND body::json->>'user' IN ('u11', 'u21')
             GROUP BY 1 ORDER BY 1",
        )
    };
    let usage: Vec<(String, u64)> = wait("both users' usage in the ledger", || {
        let s = shared();
        (s.lines().count() == 2).then_some(s)
    })
    .lines()
    .map(|l| {
        let (u, b) = l.split_once('|').unwrap();
        (u.to_string(), b.parse().unwrap())
    })
    .collect();
    assert!(usage.iter().all(|(_, b)| *b >= 40_000), "{usage:?}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let zone = tollgate_control_core::rating::Plan::compile(&Default::default())
        .unwrap()
        .zone;
    let period = tollgate_control_core::rating::Period::containing(now, &zone);
    let billing = |node: &Daemon, what: &str| {
        Command::new(env!("CARGO_BIN_EXE_tollgate"))
            .args(["billing", "--config"])
            .arg(&node.config)
            .args([what, &period.to_string()])
            .env("TOLLGATE_BILLING_NOW", period.end(&zone).to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let closers = [
        billing(&nodes[0], "close-period"),
        billing(&nodes[1], "close-period"),
    ];
    let said: Vec<String> = closers
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(out.status.success(), "{text}");
            text
        })
        .collect();
    assert_eq!(
        said.iter()
            .filter(|t| t.contains(&format!("{period} closed:")))
            .count(),
        1,
        "{said:?}"
    );
    assert_eq!(
        said.iter()
            .filter(|t| t.contains("was already closed"))
            .count(),
        1,
        "{said:?}"
    );
    assert_eq!(rows("SELECT count(*) FROM period"), "1");
    let claim = rows("SELECT body FROM invoice WHERE account = 'shared'");
    assert_eq!(claim.lines().count(), 1, "one claim: {claim}");
    let inv: Value = serde_json::from_str(&claim).unwrap();
    let lines: Vec<(String, u64, i64)> = inv["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["user"].as_str().unwrap().to_string(),
                l["quantity"].as_u64().unwrap(),
                l["amount"].as_i64().unwrap(),
            )
        })
        .collect();
    // 1 per 1000 bytes, each line rounded half to even once.
    let expected: Vec<(String, u64, i64)> = usage
        .iter()
        .map(|(u, b)| {
            let (q, r) = (*b / 1000, *b % 1000);
            let amount = if r > 500 || (r == 500 && q % 2 == 1) {
                q + 1
            } else {
                q
            };
            (u.clone(), *b, amount as i64)
        })
        .collect();
    assert_eq!(lines, expected, "{inv}");
    assert_eq!(inv["total"], expected.iter().map(|l| l.2).sum::<i64>());
    // No other account carries their usage.
    assert_eq!(
        rows("SELECT count(*) FROM invoice WHERE body LIKE '%\"u11\"%' OR body LIKE '%\"u21\"%'"),
        "1"
    );
    let rerate = billing(&nodes[2], "rerate").wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&rerate.stdout);
    assert!(
        rerate.status.success() && text.contains("identical, byte for byte"),
        "{text}{}",
        String::from_utf8_lossy(&rerate.stderr)
    );

    for node in nodes {
        node.stop();
    }
    // A clean stop says so.
    assert_eq!(
        rows("SELECT node, state FROM cluster_node ORDER BY 1"),
        "gw1|stopped\ngw2|stopped\ngw3|stopped"
    );
}

/// A node of the source-range cluster (`[cluster] placement = "source-range"`) on idle
/// memory ports: a login at any node takes its address from the least-assigned range of
/// a node that is up, and that node opens the session.
struct Placer {
    name: String,
    dir: tempfile::TempDir,
    child: Child,
}

/// Heartbeat of the placement test: a node is stale after three (900 ms); its lease is
/// long, so a paused node is not taken over.
const PLACE_HEARTBEAT_MS: u64 = 300;

impl Placer {
    fn start(url: &str, n: u32) -> Placer {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        let name = format!("gw{n}");
        let config = dir.path().join("tollgate.toml");
        std::fs::write(
            &config,
            format!(
                r#"
[control]
socket = "{d}/ctl.sock"
request_timeout_s = 30
[access]
backend = "memory"
address = "10.10.0.1/16"
[core]
backend = "memory"
address = "192.0.2.1/24"
[aaa]
spool = "{d}/accounting.db"
spool_retry_min_ms = 20
spool_retry_max_ms = 200
[[pool]]
name = "mobile"
[[pool.range]]
first = "10.10.1.10"
last = "10.10.1.19"
node = "gw1"
[[pool.range]]
first = "10.10.2.10"
last = "10.10.2.19"
node = "gw2"
[[pool.range]]
first = "10.10.3.10"
last = "10.10.3.19"
node = "gw3"
[database]
url = "{url}"
connect_timeout_s = 2
[cluster]
node = "{name}"
heartbeat_ms = {PLACE_HEARTBEAT_MS}
lease_ms = 30000
placement = "source-range"
"#
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("daemon.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_tollgate"))
            .args(["run", "--config"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let p = Placer { name, dir, child };
        wait(&format!("{}'s socket", p.name), || {
            UnixStream::connect(p.dir.path().join("ctl.sock")).ok()
        });
        p
    }

    fn config(&self) -> String {
        self.dir.path().join("tollgate.toml").display().to_string()
    }

    fn ctl(&self, args: &[&str]) -> Value {
        let (ok, v) = ctl(&self.dir.path().join("ctl.sock"), args);
        let log = std::fs::read_to_string(self.dir.path().join("daemon.log")).unwrap_or_default();
        assert!(ok, "{}: {args:?}: {v}\n{log}", self.name);
        v
    }

    /// Logs `mobile` in; the address, the node that serves it, whether it resumed.
    fn login(&self, mobile: &str) -> (String, String, bool) {
        let v = self.ctl(&["session", "login", "--user", "ann", "--mobile-id", mobile]);
        let node = v["node"].as_str().unwrap_or(&self.name).to_string();
        (
            v["address"].as_str().unwrap().to_string(),
            node,
            v["resumed"].as_bool().unwrap(),
        )
    }

    /// SIGSTOP or SIGCONT.
    fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid; no memory is involved.
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, sig) }, 0);
    }
}

impl Drop for Placer {
    fn drop(&mut self) {
        self.signal(libc::SIGCONT);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
#[ignore = "needs root and PostgreSQL 15 (make deps): make host-test"]
fn logins_are_placed_on_the_least_assigned_range_of_a_node_that_is_up() {
    let pg = Postgres::start();
    pg.create_database("place");
    let url = pg.url("place");
    let rows = |sql: &str| pg.query("place", sql);
    let nodes: Vec<Placer> = (1..=3).map(|n| Placer::start(&url, n)).collect();
    // A subscriber without a password (logins by name): no Argon2 check per login, so
    // the concurrent logins below meet in the placement, not in the store thread.
    let (ok, out) = tollgate(&["subscriber", "--config", &nodes[0].config(), "add", "ann"]);
    assert!(ok, "{out}");
    wait("the cluster's tables", || {
        (rows("SELECT count(*) FROM pg_tables WHERE tablename = 'cluster_placement'") == "1")
            .then_some(())
    });
    wait("three nodes up with their ranges", || {
        (rows("SELECT count(*) FROM cluster_node WHERE state = 'up'") == "3"
            && rows("SELECT count(*) FROM cluster_range") == "3")
            .then_some(())
    });
    // Where the open sessions are, by the database: node and address.
    let open = || {
        rows(
            "SELECT owner, host(address) FROM cluster_session WHERE status = 'open' ORDER BY address",
        )
    };
    let wait_open = |want: &str| {
        wait(&format!("open sessions {want:?}"), || {
            (open() == want).then_some(())
        })
    };

    // Six logins at gw1 spread over the three nodes' ranges, least assigned first (ties
    // to the first range), each session opened by the range's node.
    let got: Vec<(String, String, bool)> =
        (1..=6).map(|k| nodes[0].login(&format!("p{k}"))).collect();
    let want = [
        ("10.10.1.10", "gw1"),
        ("10.10.2.10", "gw2"),
        ("10.10.3.10", "gw3"),
        ("10.10.1.11", "gw1"),
        ("10.10.2.11", "gw2"),
        ("10.10.3.11", "gw3"),
    ];
    for (g, w) in got.iter().zip(want) {
        assert_eq!(
            (g.0.as_str(), g.1.as_str(), g.2),
            (w.0, w.1, false),
            "{got:?}"
        );
    }
    wait_open(
        "gw1|10.10.1.10\ngw1|10.10.1.11\ngw2|10.10.2.10\ngw2|10.10.2.11\ngw3|10.10.3.10\ngw3|10.10.3.11",
    );
    let v = nodes[1].ctl(&["show", "session", "10.10.2.10"]);
    assert_eq!(v["state"], "open", "{v}");
    assert!(
        v["acct_session_id"]
            .as_str()
            .is_some_and(|s| s.starts_with("gw2.")),
        "{v}"
    );
    assert_eq!(
        rows(
            "SELECT count(*) FROM cluster_placement WHERE state = 'opened' AND session_id LIKE node || '.%'"
        ),
        "6"
    );

    // A returning mobile id keeps its address and node whichever node it reaches: p2's
    // session is open on gw2.
    assert_eq!(
        nodes[2].login("p2"),
        ("10.10.2.10".into(), "gw2".into(), true)
    );
    assert_eq!(
        nodes[1].login("p2"),
        ("10.10.2.10".into(), "gw2".into(), true)
    );
    // p1 and p4 (gw1) log out; p4 comes back at gw3 and gets its address again, not
    // the lowest free one of gw1's range (10.10.1.10).
    for a in ["10.10.1.10", "10.10.1.11"] {
        nodes[0].ctl(&["session", "remove", a]);
    }
    wait_open("gw2|10.10.2.10\ngw2|10.10.2.11\ngw3|10.10.3.10\ngw3|10.10.3.11");
    assert_eq!(
        nodes[2].login("p4"),
        ("10.10.1.11".into(), "gw1".into(), false)
    );
    wait_open("gw1|10.10.1.11\ngw2|10.10.2.10\ngw2|10.10.2.11\ngw3|10.10.3.10\ngw3|10.10.3.11");

    // gw3's range is emptied, then gw3 stops heartbeating (paused): it is the least
    // assigned, yet it gets no login while its heartbeat is stale.
    for a in ["10.10.3.10", "10.10.3.11"] {
        nodes[2].ctl(&["session", "remove", a]);
    }
    wait_open("gw1|10.10.1.11\ngw2|10.10.2.10\ngw2|10.10.2.11");
    nodes[2].signal(libc::SIGSTOP);
    wait("gw3's heartbeat stale", || {
        (rows(
            "SELECT now() - heartbeat_at > interval '1500 ms' FROM cluster_node WHERE node = 'gw3'",
        ) == "t")
            .then_some(())
    });
    assert_eq!(
        nodes[0].login("p7"),
        ("10.10.1.10".into(), "gw1".into(), false)
    );
    assert_eq!(
        nodes[1].login("p8"),
        ("10.10.1.12".into(), "gw1".into(), false)
    );
    nodes[2].signal(libc::SIGCONT);
    wait("gw3's heartbeat fresh", || {
        (rows(
            "SELECT now() - heartbeat_at < interval '500 ms' FROM cluster_node WHERE node = 'gw3'",
        ) == "t")
            .then_some(())
    });
    assert_eq!(
        nodes[0].login("p9"),
        ("10.10.3.10".into(), "gw3".into(), false)
    );
    wait_open(
        "gw1|10.10.1.10\ngw1|10.10.1.11\ngw1|10.10.1.12\ngw2|10.10.2.10\ngw2|10.10.2.11\ngw3|10.10.3.10",
    );

    // Logins at gw1 and gw2 at once never share an address: 8 each, 16 of the 24
    // addresses left.
    let socket = |n: usize| nodes[n].dir.path().join("ctl.sock");
    let threads: Vec<_> = (0..16)
        .map(|k| {
            let s = socket(k % 2);
            std::thread::spawn(move || {
                let mobile = format!("q{k}");
                let (ok, v) = ctl(
                    &s,
                    &["session", "login", "--user", "ann", "--mobile-id", &mobile],
                );
                assert!(ok, "{v}");
                v["address"].as_str().unwrap().to_string()
            })
        })
        .collect();
    let mut addresses: Vec<String> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    addresses.sort();
    let n = addresses.len();
    addresses.dedup();
    assert_eq!(addresses.len(), n, "an address given twice: {addresses:?}");
    wait("22 sessions open, each on its range's node", || {
        (rows(
            "SELECT count(DISTINCT s.address) FROM cluster_session s JOIN cluster_range r
             ON s.address BETWEEN r.first_address AND r.last_address
             WHERE s.status = 'open' AND s.owner = r.node",
        ) == "22")
            .then_some(())
    });
    // The least-assigned rule kept the ranges level: 22 over three nodes.
    assert_eq!(
        rows(
            "SELECT owner, count(*) FROM cluster_session WHERE status = 'open' GROUP BY 1 ORDER BY 1"
        ),
        "gw1|8\ngw2|7\ngw3|7"
    );
    let v = nodes[0].ctl(&["show", "cluster"]);
    assert_eq!(v["placement"], "source-range", "{v}");
    // gw1 placed p1..p6, p7, p9 and its 8 concurrent logins.
    assert_eq!(
        (&v["placements"], &v["placements_failed"]),
        (&16.into(), &0.into()),
        "{v}"
    );
}
