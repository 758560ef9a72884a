//! Accounting under faults (issue 12 items 1-5, CNT-2): a log pipe that closes before
//! the shutdown, `kill -9` with sessions open, a second daemon on the same spool, a
//! spool file that was emptied, an Access-Accept whose Class attributes make a Start
//! too big for one packet (a fake RADIUS server), and `kill -9` right after `ctl session
//! remove` was acknowledged. The daemons are `tollgate run` child processes on idle
//! memory ports, or (where traffic must flow) this test binary re-run as the child.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::UdpSocket;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::gateway::{Gw, ctl, wait};
use tollgate_control::spool::{Spool, SpoolOptions};
use tollgate_control_core::radius::crypto;
use tollgate_control_core::radius::dict::{AcctStatusType, DisconnectCause, std_attr as sa};
use tollgate_control_core::radius::packet::{Attribute, Code, Packet};
use tollgate_testkit::lab::*;

const SECRET: &str = "s3cret";

/// A config on idle memory ports with every file in `d`, plus `extra` (after `[aaa]`'s
/// spool and store, so `extra` may add `[aaa]` keys first).
fn write_config(d: &Path, aaa_extra: &str, extra: &str) -> PathBuf {
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
store = "{d}/subscribers.db"
spool = "{d}/accounting.db"
{aaa_extra}
{extra}
"#,
            d = d.display()
        ),
    )
    .unwrap();
    config
}

fn spawn(config: &Path, args: &[&str], stderr: Stdio) -> Child {
    Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["run", "--config"])
        .arg(config)
        .args(args)
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap()
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: kill(2) on our own child's pid; no memory is involved.
    unsafe {
        libc::kill(child.id() as i32, sig);
    }
}

/// Waits up to `limit` for the child to exit.
fn exited(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return Some(s);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait_socket(socket: &Path) {
    wait("the daemon's socket", || UnixStream::connect(socket).ok());
}

fn session_log(d: &Path) -> Vec<Value> {
    Gw::session_log_at(d)
}

fn acct_id(socket: &Path, address: &str) -> String {
    let (ok, s) = ctl(socket, &["show", "session", address]);
    assert!(ok, "{s}");
    s["acct_session_id"].as_str().unwrap().to_string()
}

fn add_session(socket: &Path, user: &str, address: &str) -> String {
    let (ok, v) = ctl(
        socket,
        &["session", "add", "--user", user, "--address", address],
    );
    assert!(ok, "{v}");
    acct_id(socket, address)
}

// ---- item 1: a closed log pipe ---------------------------------------------------------

#[test]
fn a_closed_log_pipe_does_not_stop_the_shutdown_from_ending_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let config = write_config(d, "", "");
    let socket = d.join("ctl.sock");
    // `tollgate run 2>&1 | tee log`: the log is a pipe.
    let mut child = spawn(&config, &[], Stdio::piped());
    let mut log = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("tollgate running") {
        line.clear();
        assert!(log.read_line(&mut line).unwrap() > 0, "no start line");
        // A log that is not a terminal is plain text, without colour escape codes.
        assert!(
            !line.contains('\x1b'),
            "escape codes in a piped log: {line:?}"
        );
    }
    let acct = add_session(&socket, "pipe", "10.10.0.20");
    // Ctrl-C reaches `tee` too: the pipe's reader is gone before the daemon stops.
    drop(log);
    signal(&child, libc::SIGINT);
    let status = exited(&mut child, Duration::from_secs(20)).expect("the daemon exits");
    assert!(status.success(), "a clean stop, no panic: {status:?}");
    let ended: Vec<Value> = session_log(d)
        .into_iter()
        .filter(|r| r["acct_session_id"] == acct.as_str())
        .collect();
    assert_eq!(ended.len(), 1, "the session's end is logged: {ended:?}");
    assert_eq!(ended[0]["cause"], "nas_request");
    assert!(ended[0].get("recovered").is_none());
    let spool = Spool::open(&d.join("accounting.db"), SpoolOptions::default()).unwrap();
    assert!(
        spool.open_sessions().unwrap().is_empty(),
        "its Stop was committed: nothing left to recover"
    );
}

// ---- item 1: kill -9 with traffic: the recovered Stop -----------------------------------

const CHILD_ENV: &str = "TOLLGATE_ACCT_FAULTS_CHILD";

/// The child: a gateway on memory ports in this process, a session with traffic; says
/// what the session's counters are once the spool has them, then waits to be killed.
#[test]
fn child_entry() {
    let Ok(d) = std::env::var(CHILD_ENV) else {
        return;
    };
    let d = PathBuf::from(d);
    let mut gw = Gw::start(
        &d,
        &format!(
            "[aaa]\nstore = \"{d}/subscribers.db\"\nspool = \"{d}/accounting.db\"\nspool_counters_s = 1\n",
            d = d.display()
        ),
    );
    let acct = add_session(&gw.socket, "kilo", "10.10.0.11");
    let rounds = |gw: &Gw| {
        let (_, l) = gw.ctl(&["show", "logins"]);
        l["accounting"]["last_known_rounds"].as_u64().unwrap()
    };
    // Two rounds (a second apart) before the traffic, so the round that sees it comes at
    // least a second after the start and the recovered session time cannot be 0.
    let at_add = rounds(&gw);
    wait("two rounds after the session's start", || {
        (rounds(&gw) >= at_add + 2).then_some(())
    });
    gw.traffic(SUB, SUB_MAC, (12, 100), (7, 300));
    let (_, s) = gw.ctl(&["show", "session", "10.10.0.11"]);
    let c = &s["counters"];
    let (tx, rx) = (
        c["tx_bytes"].as_u64().unwrap(),
        c["rx_bytes"].as_u64().unwrap(),
    );
    assert!(tx > 0 && rx > 0, "{s}");
    // Rounds are a second apart and each is committed within the control loop pass
    // that gets its reports: once the third round after this one is asked for, the
    // second - asked for after the traffic had gone through - is on disk.
    let before = rounds(&gw);
    wait("three more rounds of last known counters", || {
        (rounds(&gw) >= before + 3).then_some(())
    });
    println!("READY {acct} {tx} {rx}");
    std::io::stdout().flush().unwrap();
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

#[test]
fn kill_9_then_the_recovered_stop_has_the_real_start_and_the_last_known_counters() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let started_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["child_entry", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, d)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = loop {
        match lines.next() {
            // The harness's "test child_entry ... " may lead the line.
            Some(Ok(l)) if l.contains("READY ") => {
                break l[l.find("READY ").unwrap()..].to_string();
            }
            Some(Ok(_)) => {}
            other => panic!("the child ended: {other:?}"),
        }
    };
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let f: Vec<&str> = ready.split_whitespace().collect();
    let (acct, tx, rx): (&str, u64, u64) = (f[1], f[2].parse().unwrap(), f[3].parse().unwrap());
    let mut spool = Spool::open(&d.join("accounting.db"), SpoolOptions::default()).unwrap();
    let open = spool.open_sessions().unwrap();
    assert_eq!(open.len(), 1);
    let o = &open[0];
    assert_eq!(o.last.session_id, acct);
    assert_eq!((o.counters.octets_up, o.counters.octets_down), (tx, rx));
    assert!(o.start_unix >= started_unix, "the session's own start");
    let now_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let ids = spool
        .recover(tollgate_dataplane::time::Instant::now(), now_unix)
        .unwrap();
    let recs = spool.records().unwrap();
    let (_, stop) = recs.iter().find(|(id, _)| *id == ids[0]).unwrap();
    assert_eq!(stop.status, AcctStatusType::Stop);
    assert_eq!(stop.cause, Some(DisconnectCause::Restart));
    assert_eq!(
        (stop.counters.octets_up, stop.counters.octets_down),
        (tx, rx)
    );
    assert_eq!(stop.counters.packets_up, 12);
    assert_eq!(stop.counters.packets_down, 7);
    assert_eq!(
        stop.event_time - stop.session_time_s as u64,
        o.start_unix,
        "the session time runs from the real start"
    );
    assert!(stop.session_time_s >= 1, "a round came after the start");
}

// ---- item 2: a second daemon -----------------------------------------------------------

#[test]
fn a_second_daemon_on_the_same_spool_is_refused_at_start_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let config = write_config(d, "", "");
    let socket = d.join("ctl.sock");
    let mut first = spawn(&config, &[], Stdio::null());
    wait_socket(&socket);
    let acct = add_session(&socket, "one", "10.10.0.20");
    // Another config, another socket, the same spool.
    let other = d.join("other");
    std::fs::create_dir(&other).unwrap();
    let config2 = other.join("tollgate.toml");
    std::fs::write(
        &config2,
        std::fs::read_to_string(&config)
            .unwrap()
            .replace(
                &format!("{}/ctl.sock", d.display()),
                &format!("{}/ctl.sock", other.display()),
            )
            .replace(
                &format!("{}/sessions.jsonl", d.display()),
                &format!("{}/sessions.jsonl", other.display()),
            ),
    )
    .unwrap();
    let mut second = spawn(&config2, &[], Stdio::piped());
    let status =
        exited(&mut second, Duration::from_secs(10)).expect("the second daemon gives up at start");
    assert_eq!(status.code(), Some(1));
    let mut err = String::new();
    std::io::Read::read_to_string(&mut second.stderr.take().unwrap(), &mut err).unwrap();
    let spool = d.join("accounting.db");
    assert!(
        err.contains(&format!(
            "accounting spool {} is in use by another process",
            spool.display()
        )),
        "{err}"
    );
    assert!(err.contains(&format!("pid {}", first.id())), "{err}");
    // The first one is unharmed: it still commits and stops cleanly.
    let acct2 = add_session(&socket, "two", "10.10.0.21");
    let (_, a) = ctl(&socket, &["show", "accounting"]);
    assert_eq!(a["spool"]["commit_errors"], 0, "{a}");
    signal(&first, libc::SIGTERM);
    assert!(
        exited(&mut first, Duration::from_secs(20))
            .unwrap()
            .success()
    );
    let ended: Vec<Value> = session_log(d);
    for id in [&acct, &acct2] {
        assert!(
            ended.iter().any(|r| r["acct_session_id"] == id.as_str()),
            "{ended:?}"
        );
    }
    let s = Spool::open(&spool, SpoolOptions::default()).unwrap();
    assert!(s.open_sessions().unwrap().is_empty());
}

// ---- item 4: an emptied spool ----------------------------------------------------------

#[test]
fn an_emptied_spool_is_an_error_at_start_until_the_operator_starts_afresh() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // No accounting server that answers: the Start waits in the spool.
    let quiet = UdpSocket::bind("127.0.0.1:0").unwrap();
    let config = write_config(
        d,
        "",
        &format!(
            "[[aaa.radius.acct_server]]\naddress = \"{}\"\nsecret = \"{SECRET}\"\n",
            quiet.local_addr().unwrap()
        ),
    );
    let socket = d.join("ctl.sock");
    let mut child = spawn(&config, &[], Stdio::null());
    wait_socket(&socket);
    add_session(&socket, "emma", "10.10.0.20");
    signal(&child, libc::SIGTERM);
    assert!(
        exited(&mut child, Duration::from_secs(20))
            .unwrap()
            .success()
    );
    let spool = d.join("accounting.db");
    assert!(d.join("accounting.db.marker").exists());
    // Someone empties the file.
    std::fs::File::create(&spool).unwrap();
    let mut child = spawn(&config, &[], Stdio::piped());
    let status = exited(&mut child, Duration::from_secs(10)).expect("refused at start");
    assert_eq!(status.code(), Some(1));
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(
        err.contains(&format!(
            "accounting spool {} is empty (0 bytes)",
            spool.display()
        )),
        "{err}"
    );
    assert!(err.contains("--spool-afresh"), "{err}");
    // The operator's override: a new spool, the old file kept.
    let mut child = spawn(&config, &["--spool-afresh"], Stdio::null());
    wait_socket(&socket);
    let (ok, a) = ctl(&socket, &["show", "accounting"]);
    assert!(ok && a["spool"]["pending"] == 0, "{a}");
    signal(&child, libc::SIGTERM);
    assert!(
        exited(&mut child, Duration::from_secs(20))
            .unwrap()
            .success()
    );
    let kept = std::fs::read_dir(d)
        .unwrap()
        .filter_map(|e| e.ok())
        .any(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("accounting.db.lost-")
        });
    assert!(kept, "the emptied file is kept aside");
    drop(quiet);
}

// ---- item 5: kill -9 right after an acknowledged remove --------------------------------

#[test]
fn a_remove_acknowledged_before_kill_9_ends_with_its_cause_and_time() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let quiet = UdpSocket::bind("127.0.0.1:0").unwrap();
    // A slow worker poll (200 ms idle sleep) widens the window between the command and
    // the fast path's final record.
    let config = write_config(
        d,
        "",
        &format!(
            "[engine]\nidle_sleep_us = 200000\n[[aaa.radius.acct_server]]\naddress = \"{}\"\nsecret = \"{SECRET}\"\n",
            quiet.local_addr().unwrap()
        ),
    );
    let socket = d.join("ctl.sock");
    let mut child = spawn(&config, &[], Stdio::null());
    wait_socket(&socket);
    let acct = add_session(&socket, "rita", "10.10.0.20");
    // Let the session last a while, so its time is not 0.
    std::thread::sleep(Duration::from_millis(1100));
    let mut conn = UnixStream::connect(&socket).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    conn.write_all(
        b"{\"cmd\":\"session remove\",\"args\":{\"session\":\"10.10.0.20\",\"cause\":\"admin_reset\"}}\n",
    )
    .unwrap();
    let mut reply = String::new();
    BufReader::new(&conn).read_line(&mut reply).unwrap();
    child.kill().unwrap(); // SIGKILL, the moment the answer is here
    child.wait().unwrap();
    let v: Value = serde_json::from_str(&reply).unwrap();
    assert_eq!(v["ok"], true, "{v}");
    let mut spool = Spool::open(&d.join("accounting.db"), SpoolOptions::default()).unwrap();
    let stops: Vec<_> = spool
        .records()
        .unwrap()
        .into_iter()
        .filter(|(_, r)| r.session_id == acct && r.status == AcctStatusType::Stop)
        .collect();
    assert_eq!(stops.len(), 1, "the acknowledged end's Stop is on disk");
    let stop = &stops[0].1;
    assert_eq!(stop.cause, Some(DisconnectCause::Admin));
    assert!(stop.session_time_s >= 1, "{stop:?}");
    assert!(spool.open_sessions().unwrap().is_empty());
    assert!(
        spool
            .recover(tollgate_dataplane::time::Instant::now(), 0)
            .unwrap()
            .is_empty(),
        "no NAS-Reboot Stop at the next start"
    );
    drop(quiet);
}

// ---- item 3: a Start too big for one packet --------------------------------------------

/// A RADIUS server on two sockets: Access-Accept with `classes` Class attributes of 250
/// octets for every Access-Request; Accounting-Response for every Accounting-Request,
/// which it keeps.
struct FakeRadius {
    auth: std::net::SocketAddr,
    acct: std::net::SocketAddr,
    got: Arc<std::sync::Mutex<Vec<Packet>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeRadius {
    fn start(classes: usize) -> FakeRadius {
        let auth = UdpSocket::bind("127.0.0.1:0").unwrap();
        let acct = UdpSocket::bind("127.0.0.1:0").unwrap();
        for s in [&auth, &acct] {
            s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        }
        let got = Arc::new(std::sync::Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (g, st) = (got.clone(), stop.clone());
        let (auth_addr, acct_addr) = (auth.local_addr().unwrap(), acct.local_addr().unwrap());
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while !st.load(Ordering::Relaxed) {
                for (sock, is_auth) in [(&auth, true), (&acct, false)] {
                    let Ok((n, from)) = sock.recv_from(&mut buf) else {
                        continue;
                    };
                    let req = Packet::decode(&buf[..n]).unwrap();
                    let reply = if is_auth {
                        let mut p = Packet::new(Code::AccessAccept, req.identifier);
                        for i in 0..classes {
                            p.push(Attribute::octets(sa::CLASS, vec![b'a' + i as u8; 250]));
                        }
                        p
                    } else {
                        g.lock().unwrap().push(req.clone());
                        Packet::new(Code::AccountingResponse, req.identifier)
                    };
                    let bytes =
                        crypto::sign_reply(&reply, &req.authenticator, SECRET.as_bytes()).unwrap();
                    sock.send_to(&bytes, from).unwrap();
                }
            }
        });
        FakeRadius {
            auth: auth_addr,
            acct: acct_addr,
            got,
            stop,
            thread: Some(thread),
        }
    }

    /// The Accounting-Requests of session `acct` with status `status`.
    fn records(&self, acct: &str, status: AcctStatusType) -> Vec<Packet> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter(|p| {
                p.get(sa::ACCT_SESSION_ID).and_then(|a| a.as_text().ok()) == Some(acct)
                    && p.get(sa::ACCT_STATUS_TYPE).and_then(|a| a.as_u32().ok())
                        == Some(status.value())
            })
            .cloned()
            .collect()
    }
}

impl Drop for FakeRadius {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn sixteen_class_attributes_of_250_octets_still_make_a_start_and_its_stop() {
    let fr = FakeRadius::start(16);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let gw = Gw::start(
        d,
        &format!(
            r#"
[aaa]
auth = "radius"
store = "{d}/subscribers.db"
spool = "{d}/accounting.db"
[aaa.radius]
timeout_ms = 300
[[aaa.radius.auth_server]]
address = "{auth}"
secret = "{SECRET}"
[[aaa.radius.acct_server]]
address = "{acct}"
secret = "{SECRET}"
"#,
            d = d.display(),
            auth = fr.auth,
            acct = fr.acct,
        ),
    );
    let (ok, v) = gw.ctl(&[
        "session",
        "login",
        "--user",
        "classy",
        "--password",
        "pw",
        "--address",
        "10.10.0.30",
    ]);
    assert!(ok, "{v}");
    let acct = v["acct_session_id"].as_str().unwrap().to_string();
    let start = wait("the Start at the server", || {
        fr.records(&acct, AcctStatusType::Start).pop()
    });
    let classes = start.all(sa::CLASS).count();
    assert!(
        (1..16).contains(&classes),
        "as many Class attributes as fit: {classes}"
    );
    let first: Vec<u8> = start.all(sa::CLASS).map(|a| a.value[0]).collect();
    assert_eq!(
        first,
        (0..classes as u8).map(|i| b'a' + i).collect::<Vec<_>>()
    );
    let (ok, v) = gw.ctl(&["session", "logout", "--user", "classy"]);
    assert!(ok, "{v}");
    let stop = wait("the Stop at the server", || {
        fr.records(&acct, AcctStatusType::Stop).pop()
    });
    assert!(stop.all(sa::CLASS).count() >= 1);
    let (_, a) = gw.ctl(&["show", "accounting"]);
    assert_eq!(a["spool"]["left_out"], 2, "the Start and the Stop: {a}");
    assert_eq!(a["spool"]["set_aside"], 0, "{a}");
    wait("an empty spool", || {
        let (_, a) = gw.ctl(&["show", "accounting"]);
        (a["spool"]["pending"] == 0).then_some(())
    });
    gw.stop();
}
