//! The daemon and its control socket, end to end: a gateway on idle memory ports runs on
//! a thread; requests go over the real Unix socket, both raw and through the
//! `tollgate ctl` binary. Malformed requests get error replies and the daemon keeps
//! serving.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;
use tollgate_control::config::Config;
use tollgate_control::engine;

struct Daemon {
    socket: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<anyhow::Result<()>>>,
    _dir: tempfile::TempDir,
}

impl Daemon {
    fn start(extra: &str) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("sub/ctl.sock");
        let src = format!(
            r#"
[engine]
workers = 2
idle_sleep_us = 200

[control]
socket = "{}"

[aaa]
store = "{dir}/subscribers.db"
spool = "{dir}/accounting.db"

[access]
backend = "memory"
address = "10.10.0.1/24"

[core]
backend = "memory"
address = "192.0.2.1/24"
mac = "02:aa:00:00:00:02"

[[neighbor]]
address = "192.0.2.10"
mac = "02:20:00:00:00:10"
{extra}
"#,
            socket.display(),
            dir = dir.path().display(),
        );
        let cfg = Config::parse(&src, "test.toml").unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let s2 = stop.clone();
        let thread = std::thread::spawn(move || engine::run_until(&cfg, "test.toml", s2));
        let deadline = Instant::now() + Duration::from_secs(10);
        while UnixStream::connect(&socket).is_err() {
            assert!(Instant::now() < deadline, "daemon did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Daemon {
            socket,
            stop,
            thread: Some(thread),
            _dir: dir,
        }
    }

    fn stop(mut self) -> anyhow::Result<()> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Conn {
    r: BufReader<UnixStream>,
    w: UnixStream,
}

impl Conn {
    fn open(path: &Path) -> Conn {
        let s = UnixStream::connect(path).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Conn {
            r: BufReader::new(s.try_clone().unwrap()),
            w: s,
        }
    }

    /// The reply, or `None` when the daemon has closed the connection (the write may
    /// then fail with EPIPE, or the read see end of file, depending on timing).
    fn send_raw(&mut self, bytes: &[u8]) -> Option<Value> {
        // The daemon may answer and close before it has read all of a too-long line:
        // the write then fails with EPIPE, and the answer is still there to read.
        let _ = self.w.write_all(bytes);
        let mut line = String::new();
        self.r.read_line(&mut line).ok()?;
        (!line.is_empty()).then(|| serde_json::from_str(&line).unwrap())
    }

    fn ask(&mut self, cmd: &str) -> Value {
        self.send_raw(format!("{{\"cmd\":\"{cmd}\"}}\n").as_bytes())
            .unwrap()
    }
}

fn ctl(socket: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .arg("ctl")
        .arg("--socket")
        .arg(socket)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn malformed_requests_get_errors_and_the_daemon_keeps_serving() {
    let d = Daemon::start("");
    let mut c = Conn::open(&d.socket);
    for bad in [
        &b"this is not json\n"[..],
        b"{\"cmd\": 42}\n",
        b"{\"cmd\": \"\"}\n",
        b"{\"cmd\": \"show status\", \"surprise\": true}\n",
        b"[1, 2, 3]\n",
        b"\xff\xfe\n",
    ] {
        let r = c.send_raw(bad).unwrap();
        assert_eq!(r["ok"], false, "{r}");
        assert!(
            r["error"]
                .as_str()
                .unwrap()
                .starts_with("malformed request"),
            "{r}"
        );
    }
    let r = c.ask("show status");
    assert_eq!(r["ok"], true, "{r}");
    let r = c.ask("frobnicate");
    assert_eq!(r["ok"], false);
    assert!(
        r["error"]
            .as_str()
            .unwrap()
            .contains("unknown command `frobnicate`"),
        "{r}"
    );
    let r = c.ask("show nonsense");
    assert!(
        r["error"].as_str().unwrap().contains("try status, ports"),
        "{r}"
    );
    // Blank lines are ignored, not answered.
    let r = c.send_raw(b"\n\n{\"cmd\":\"help\"}\n").unwrap();
    assert_eq!(r["ok"], true);

    // A line over 64 KiB is refused and the connection closed; a new one works.
    let mut big = vec![b'x'; 70 * 1024];
    big.push(b'\n');
    let r = c.send_raw(&big).unwrap();
    assert!(r["error"].as_str().unwrap().contains("longer than"), "{r}");
    assert!(
        c.send_raw(b"{\"cmd\":\"show status\"}\n").is_none(),
        "closed"
    );
    let mut c2 = Conn::open(&d.socket);
    assert_eq!(c2.ask("show status")["ok"], true);
    d.stop().unwrap();
}

#[test]
fn show_commands_answer_with_state() {
    let d = Daemon::start("");
    let mode = std::fs::metadata(&d.socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660, "socket mode");
    let mut c = Conn::open(&d.socket);

    let s = &c.ask("show status")["data"];
    assert_eq!(s["workers"], 2);
    assert_eq!(s["backend"], "memory");
    assert_eq!(s["config"], "test.toml");
    assert_eq!(s["pid"], std::process::id());

    let p = c.ask("show ports")["data"].clone();
    assert_eq!(p[0]["side"], "access");
    assert_eq!(
        p[0]["mac"], "02:00:00:00:00:01",
        "default MAC of a memory port"
    );
    assert_eq!(p[1]["mac"], "02:aa:00:00:00:02", "configured MAC");
    assert_eq!(p[1]["address"], "192.0.2.1/24");

    let w = c.ask("show workers")["data"].clone();
    assert_eq!(w.as_array().unwrap().len(), 2);
    for (i, x) in w.as_array().unwrap().iter().enumerate() {
        assert_eq!(x["worker"], i);
        assert_eq!(x["reported"], true, "{x}");
        assert!(x["polls"].as_u64().unwrap() > 0, "{x}");
        assert_eq!(
            x["neighbors"], 1,
            "the static neighbour reached every worker: {x}"
        );
    }

    let k = c.ask("show counters")["data"].clone();
    assert_eq!(
        k["drops"].as_object().unwrap().len(),
        tollgate_dataplane::DropReason::COUNT
    );
    assert_eq!(k["drops"]["no_route"], 0);
    assert_eq!(k["sides"]["access"]["rx_packets"], 0);
    assert!(k["engine"]["commands"].as_u64().unwrap() >= 2, "{k}");

    let n = c.ask("show neighbors")["data"].clone();
    assert_eq!(n[0]["address"], "192.0.2.10");
    assert_eq!(n[0]["state"], "static");
    assert_eq!(n[0]["side"], "core");
    assert_eq!(n[0]["mac"], "02:20:00:00:00:10");

    let h = c.ask("help")["data"].clone();
    assert!(
        h.as_array()
            .unwrap()
            .iter()
            .any(|e| e["command"] == "show counters")
    );
    d.stop().unwrap();
}

#[test]
fn ctl_binary_renders_tables_and_json() {
    let d = Daemon::start("");
    let (ok, out, err) = ctl(&d.socket, &["show", "neighbors"]);
    assert!(ok, "{err}");
    assert!(out.starts_with("ADDRESS"), "{out}");
    assert!(
        out.contains("192.0.2.10") && out.contains("static"),
        "{out}"
    );

    let (ok, out, _) = ctl(&d.socket, &["show", "counters"]);
    assert!(ok);
    assert!(out.contains("no drops") && out.contains("ENGINE"), "{out}");

    for what in ["status", "ports", "workers"] {
        let (ok, out, err) = ctl(&d.socket, &["show", what]);
        assert!(ok && !out.is_empty(), "{what}: {err}");
        let (ok, out, _) = ctl(&d.socket, &["--json", "show", what]);
        assert!(ok);
        serde_json::from_str::<Value>(&out).unwrap_or_else(|e| panic!("{what}: {e}: {out}"));
    }
    let (ok, out, _) = ctl(&d.socket, &["raw", r#"{"cmd":"show status"}"#]);
    assert!(ok && out.contains("uptime_s"), "{out}");
    let (ok, _, err) = ctl(&d.socket, &["raw", "garbage"]);
    assert!(!ok && err.contains("malformed request"), "{err}");
    d.stop().unwrap();

    let (ok, _, err) = ctl(&d_socket_gone(), &["show", "status"]);
    assert!(!ok && err.contains("is tollgate running?"), "{err}");
}

fn d_socket_gone() -> PathBuf {
    PathBuf::from("/nonexistent/tollgate.sock")
}

#[test]
fn socket_is_removed_on_stop_and_not_shared() {
    let d = Daemon::start("");
    let socket = d.socket.clone();
    // A second daemon on the same socket refuses to start.
    let src = format!(
        "[control]\nsocket = \"{}\"\n[access]\nbackend = \"memory\"\naddress = \"10.10.0.1/24\"\n[core]\nbackend = \"memory\"\naddress = \"192.0.2.1/24\"\n",
        socket.display()
    );
    let cfg = Config::parse(&src, "second.toml").unwrap();
    let e = engine::run_until(&cfg, "second.toml", Arc::new(AtomicBool::new(false))).unwrap_err();
    assert!(format!("{e:#}").contains("already running"), "{e:#}");
    d.stop().unwrap();
    assert!(!socket.exists(), "socket removed on stop");
}

#[test]
fn pcap_backend_is_refused_by_run() {
    let cfg = Config::parse(
        "[access]\nbackend = \"pcap\"\naddress = \"10.10.0.1/24\"\n[core]\nbackend = \"pcap\"\naddress = \"192.0.2.1/24\"\n",
        "t",
    )
    .unwrap();
    let e = engine::run_until(&cfg, "t", Arc::new(AtomicBool::new(false))).unwrap_err();
    assert!(e.to_string().contains("tollgate replay"), "{e}");
}

#[test]
fn check_config_names_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("bad.toml");
    std::fs::write(
        &f,
        "[access]\nbackend = \"memory\"\naddress = \"10.10.0.1/24\"\n\n[core]\nbackend = \"memory\"\naddress = \"192.0.2.1/33\"\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .arg("check-config")
        .arg(&f)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 7") && err.contains("key `core.address`") && err.contains("33"),
        "{err}"
    );

    let good = dir.path().join("good.toml");
    let def = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .arg("default-config")
        .output()
        .unwrap();
    std::fs::write(&good, &def.stdout).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .arg("check-config")
        .arg(&good)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).ends_with(": ok\n"));

    let out = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .arg("check-config")
        .arg(dir.path().join("missing.toml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read"));
}

const SERVICES: &str = r#"
[[service]]
name = "web"
vip = "203.0.113.10"
protocol = "tcp"
port = 80
[[service.server]]
address = "192.0.2.21"
port = 8080
[[service.server]]
address = "192.0.2.22"
port = 8080

[[lb_range]]
prefix = "10.10.0.0/25"
primary = "02:30:00:00:00:01"
substitutes = ["02:30:00:00:00:02"]

[[lb_range]]
first = "10.10.0.128"
last = "10.10.0.255"
primary = "02:30:00:00:00:03"
"#;

/// `tollgate ctl --json ARGS`: exit status and the answer (or the error text).
fn ctl_json(socket: &Path, args: &[&str]) -> (bool, Value) {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let (ok, out, err) = ctl(socket, &all);
    if ok {
        (
            true,
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}")),
        )
    } else {
        (false, Value::String(err))
    }
}

#[test]
fn sessions_servers_and_lb_targets_change_through_ctl() {
    let d = Daemon::start(SERVICES);
    let s = d.socket.as_path();

    let (ok, v) = ctl_json(
        s,
        &[
            "session",
            "add",
            "--user",
            "bob",
            "--address",
            "10.10.0.20",
            "--services",
            "web",
            "--up",
            "10M",
            "--idle-timeout",
            "600",
        ],
    );
    assert!(ok, "{v}");
    let id = v["session"].as_u64().unwrap();

    let (ok, v) = ctl_json(
        s,
        &["session", "add", "--user", "eve", "--address", "10.10.0.20"],
    );
    assert!(!ok && v.as_str().unwrap().contains("10.10.0.20"), "{v}");
    let (ok, v) = ctl_json(
        s,
        &[
            "session",
            "add",
            "--user",
            "eve",
            "--address",
            "10.10.0.21",
            "--services",
            "mail",
        ],
    );
    assert!(!ok && v.as_str().unwrap().contains("\"mail\""), "{v}");

    let (ok, v) = ctl_json(s, &["show", "session", "10.10.0.20"]);
    assert!(ok, "{v}");
    assert_eq!(v["session"], id);
    assert_eq!(v["state"], "open");
    assert_eq!(v["user"], "bob");
    assert_eq!(v["services"], serde_json::json!(["web"]));
    assert_eq!(v["bandwidth_up"], 10_000_000);
    assert_eq!(v["bandwidth_down"], 0);
    // 10.10.0.20 % 2 workers: the even worker owns it, and it answered with counters.
    assert_eq!(v["worker"], 0);
    assert_eq!(
        v["counters"],
        serde_json::json!({"tx_packets": 0, "tx_bytes": 0, "rx_packets": 0, "rx_bytes": 0})
    );

    let (ok, v) = ctl_json(s, &["session", "update", &id.to_string(), "--down", "50M"]);
    assert!(ok, "{v}");
    let (_, v) = ctl_json(s, &["show", "sessions"]);
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["bandwidth_down"], 50_000_000);
    assert_eq!(v[0]["bandwidth_up"], 10_000_000, "unchanged");

    let (ok, v) = ctl_json(
        s,
        &["session", "remove", "10.10.0.20", "--cause", "user_request"],
    );
    assert!(ok, "{v}");
    assert_eq!(v["cause"], "user_request");
    // The worker's final record reaches the control thread shortly after.
    let deadline = Instant::now() + Duration::from_secs(5);
    let ended = loop {
        let (_, v) = ctl_json(s, &["show", "session", &id.to_string()]);
        if v["state"] == "ended" {
            break v;
        }
        assert!(Instant::now() < deadline, "never ended: {v}");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(ended["cause"], "user_request");
    assert_eq!(ended["counters"]["tx_packets"], 0);
    let (_, v) = ctl_json(s, &["show", "sessions"]);
    assert_eq!(v, serde_json::json!([]));
    let (ok, v) = ctl_json(s, &["session", "remove", "10.10.0.20"]);
    assert!(!ok, "{v}");

    // A real server by address:port, then by index; wrong ones are errors.
    let (ok, v) = ctl_json(
        s,
        &["server", "set", "web", "192.0.2.22:8080", "--state", "down"],
    );
    assert!(ok, "{v}");
    assert_eq!(v["server"], 1);
    let (ok, _) = ctl_json(
        s,
        &[
            "server",
            "set",
            "web",
            "0",
            "--response-us",
            "850",
            "--cpu-load",
            "40",
        ],
    );
    assert!(ok);
    let (_, v) = ctl_json(s, &["show", "services"]);
    let servers = &v[0]["servers"];
    assert_eq!(
        (
            &servers[0]["state"],
            &servers[0]["response_us"],
            &servers[0]["cpu_load"]
        ),
        (&Value::from("up"), &Value::from(850), &Value::from(40))
    );
    assert_eq!(servers[1]["state"], "down");
    for bad in [
        vec!["server", "set", "web", "7", "--state", "down"],
        vec!["server", "set", "mail", "0", "--state", "down"],
        vec!["server", "set", "web", "0", "--state", "sideways"],
    ] {
        let (ok, v) = ctl_json(s, &bad);
        assert!(!ok, "{bad:?}: {v}");
    }

    // The primary of the first range goes down: it fails over, the second range is as it was.
    let (ok, v) = ctl_json(s, &["lb", "set", "02:30:00:00:00:01", "down"]);
    assert!(ok, "{v}");
    let (_, v) = ctl_json(s, &["show", "lb"]);
    assert_eq!(v[0]["first"], "10.10.0.0");
    assert_eq!(v[0]["last"], "10.10.0.127");
    assert_eq!(v[0]["chosen"], "02:30:00:00:00:02");
    assert_eq!(v[1]["chosen"], "02:30:00:00:00:03");
    let (ok, _) = ctl_json(s, &["lb", "set", "02:30:00:00:00:03", "down"]);
    assert!(ok);
    let (_, v) = ctl_json(s, &["show", "lb"]);
    assert_eq!(v[1]["chosen"], Value::Null, "all down");
    let (ok, _) = ctl_json(s, &["lb", "set", "02:30:00:00:00:09", "down"]);
    assert!(!ok, "no target has that MAC");
    d.stop().unwrap();
}
