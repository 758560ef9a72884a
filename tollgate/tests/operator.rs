//! What an operator meets at the control socket, end to end on an in-process gateway:
//! a control socket that idle and slow clients cannot lock, refusals that leave no
//! records (a full worker, addresses and names no subscriber can have), session ids
//! that name one session, and billing imports that store a whole file or nothing.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::gateway::{Gw, wait};

/// The accounting spool and store in the test's directory, not in /var/lib.
fn aaa(d: &Path) -> String {
    format!(
        "[aaa]\nstore = \"{d}/subscribers.db\"\nspool = \"{d}/accounting.db\"\n",
        d = d.display()
    )
}

/// Raises this process's descriptor limit to `n` (the test holds both ends of every
/// connection).
fn allow_descriptors(n: u64) {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit struct, which `r` is.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) }, 0);
    if r.rlim_cur < n {
        r.rlim_cur = n.min(r.rlim_max);
        // SAFETY: setrlimit reads one rlimit struct, which `r` is.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &r) }, 0);
    }
    assert!(
        r.rlim_cur >= n,
        "cannot open {n} descriptors: {r:?}",
        r = r.rlim_cur
    );
}

/// `tollgate ctl show status` as a process: whether it answered, and how long it took.
fn timed_status(socket: &Path) -> (bool, Duration, String) {
    let t = Instant::now();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["ctl", "--socket"])
        .arg(socket)
        .args(["show", "status"])
        .output()
        .unwrap();
    let took = t.elapsed();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), took, text)
}

#[test]
fn five_hundred_idle_clients_and_a_byte_a_second_do_not_hold_up_show_status() {
    allow_descriptors(2048);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let gw = Gw::start(d, &aaa(d));
    // Once before the clients, so that the binary's first start (page cache) is not
    // what is timed.
    assert!(timed_status(&gw.socket).0);
    let idle: Vec<UnixStream> = (0..500)
        .map(|_| UnixStream::connect(&gw.socket).unwrap())
        .collect();
    // A client that sends its request a byte a second.
    let mut slow = UnixStream::connect(&gw.socket).unwrap();
    let request = b"{\"cmd\":\"show status\"}\n";
    let mut sent = 0;
    let started = Instant::now();
    let mut took = Vec::new();
    while sent < 3 {
        slow.write_all(&request[sent..sent + 1]).unwrap();
        sent += 1;
        let (ok, t, text) = timed_status(&gw.socket);
        assert!(ok, "show status failed: {text}");
        assert!(text.contains("uptime"), "{text}");
        took.push(t);
        // The same request on a connection of the test's own, without a process start.
        let t = Instant::now();
        let mut c = UnixStream::connect(&gw.socket).unwrap();
        c.write_all(request).unwrap();
        let mut line = String::new();
        BufReader::new(&c).read_line(&mut line).unwrap();
        assert!(line.contains("\"uptime_s\""), "{line}");
        took.push(t.elapsed());
        let next = started + Duration::from_secs(sent as u64);
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    eprintln!(
        "show status with 500 idle clients and a slow one (ctl binary, raw socket) x3: {took:?}"
    );
    for t in &took {
        assert!(*t < Duration::from_secs(1), "show status took {t:?}");
    }
    // The idle clients are still connected (idle_timeout_s is 60 s by default).
    let mut c = &idle[0];
    c.write_all(b"{\"cmd\":\"help\"}\n").unwrap();
    let mut line = String::new();
    BufReader::new(c).read_line(&mut line).unwrap();
    assert!(line.starts_with("{\"ok\":true"), "{line}");
    drop(idle);
    gw.stop();
}

#[test]
fn idle_and_slow_clients_are_closed_after_their_timeouts() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let src = format!(
        r#"
[control]
socket = "{d}/ctl.sock"
idle_timeout_s = 1
request_timeout_s = 2
[access]
backend = "memory"
address = "10.10.0.1/24"
[core]
backend = "memory"
address = "192.0.2.1/24"
{aaa}
"#,
        d = d.display(),
        aaa = aaa(d)
    );
    let gw = Gw::start_config(d, &src);
    let t0 = Instant::now();
    let mut idle = UnixStream::connect(&gw.socket).unwrap();
    let mut slow = UnixStream::connect(&gw.socket).unwrap();
    slow.write_all(b"{\"cmd\":").unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    // The idle one is closed without a word.
    let mut buf = Vec::new();
    idle.read_to_end(&mut buf).unwrap();
    let idle_closed = t0.elapsed();
    assert!(buf.is_empty(), "{}", String::from_utf8_lossy(&buf));
    // The slow one is told, then closed.
    let mut text = String::new();
    slow.read_to_string(&mut text).unwrap();
    let slow_closed = t0.elapsed();
    assert!(
        text.contains("request not complete 2 s after its first byte"),
        "{text}"
    );
    eprintln!("idle client closed after {idle_closed:?}, slow one after {slow_closed:?}");
    assert!(idle_closed >= Duration::from_secs(1), "{idle_closed:?}");
    assert!(slow_closed >= Duration::from_secs(2), "{slow_closed:?}");
    // A client that asks in time is served, and again after a pause under the limit.
    let mut c = UnixStream::connect(&gw.socket).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut r = BufReader::new(c.try_clone().unwrap());
    for _ in 0..2 {
        c.write_all(b"{\"cmd\":\"help\"}\n").unwrap();
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        assert!(line.starts_with("{\"ok\":true"), "{line}");
        std::thread::sleep(Duration::from_millis(500));
    }
    gw.stop();
}

#[test]
fn a_last_request_without_its_newline_is_answered() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let gw = Gw::start(d, &aaa(d));
    let mut c = UnixStream::connect(&gw.socket).unwrap();
    c.write_all(b"{\"cmd\":\"help\"}\n\n{\"cmd\":\"show pools\"}")
        .unwrap();
    c.shutdown(std::net::Shutdown::Write).unwrap();
    let mut text = String::new();
    c.read_to_string(&mut text).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines.iter().all(|l| l["ok"] == true), "{text}");
    gw.stop();
}

#[test]
fn session_add_past_the_workers_capacity_is_refused_with_no_records() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let gw = Gw::start(d, &format!("max_sessions = 2\n{}", aaa(d)));
    for a in ["10.10.0.11", "10.10.0.12"] {
        let (ok, v) = gw.ctl(&["session", "add", "--user", "u", "--address", a]);
        assert!(ok, "{v}");
    }
    let (ok, v) = gw.ctl(&["session", "add", "--user", "u", "--address", "10.10.0.13"]);
    assert!(!ok, "{v}");
    assert!(
        v.as_str()
            .unwrap()
            .contains("worker 0's session table is full (2 sessions, subscribers.max_sessions)"),
        "{v}"
    );
    let (_, v) = gw.ctl(&["show", "logins"]);
    assert_eq!(v["accounting"]["starts"], 2, "{v}");
    assert_eq!(v["accounting"]["stops"], 0, "{v}");
    let (_, v) = gw.ctl(&["show", "sessions"]);
    assert_eq!(v.as_array().unwrap().len(), 2, "{v}");
    let (_, v) = gw.ctl(&["show", "session", "10.10.0.13"]);
    assert!(
        v.as_str().is_some_and(|e| e.contains("no open session")),
        "{v}"
    );
    // Room again once one has ended.
    let (ok, _) = gw.ctl(&["session", "remove", "10.10.0.11"]);
    assert!(ok);
    wait("room for another session", || {
        let (ok, _) = gw.ctl(&["session", "add", "--user", "u", "--address", "10.10.0.13"]);
        ok.then_some(())
    });
    let (_, v) = gw.ctl(&["show", "logins"]);
    assert_eq!(v["accounting"]["starts"], 3, "{v}");
    assert_eq!(v["accounting"]["stops"], 1, "{v}");
    gw.stop();
    assert_eq!(
        Gw::session_log_at(d).len(),
        3,
        "the two left and the removed one"
    );
}

#[test]
fn ctl_refuses_addresses_and_names_no_subscriber_can_have() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let gw = Gw::start(d, &aaa(d));
    for (address, why) in [
        ("10.10.0.1", "the gateway's own address"),
        ("192.0.2.1", "the gateway's own address"),
        (
            "10.10.0.0",
            "network address of the access subnet 10.10.0.0/24",
        ),
        (
            "10.10.0.255",
            "broadcast address of the access subnet 10.10.0.0/24",
        ),
        (
            "172.16.0.9",
            "outside the access subnet 10.10.0.0/24 and every address pool",
        ),
        ("239.0.0.1", "not a unicast address"),
    ] {
        let (ok, v) = gw.ctl(&["session", "add", "--user", "u", "--address", address]);
        assert!(!ok, "{address}: {v}");
        assert!(v.as_str().unwrap().contains(why), "{address}: {v}");
        let (ok, v) = gw.ctl(&["session", "login", "--address", address]);
        assert!(!ok, "{address}: {v}");
        assert!(v.as_str().unwrap().contains(why), "{address}: {v}");
    }
    for user in ["", "a\u{0}b"] {
        let (ok, v) = gw.ctl(&[
            "raw",
            &serde_json::json!({"cmd": "session add", "args": {"user": user, "address": "10.10.0.9"}})
                .to_string(),
        ]);
        assert!(!ok, "{user:?}: {v}");
        assert!(
            v.as_str()
                .unwrap()
                .contains("must not be empty or contain NUL"),
            "{v}"
        );
    }
    let (_, v) = gw.ctl(&["show", "logins"]);
    assert_eq!(v["accounting"]["starts"], 0, "{v}");
    let (_, v) = gw.ctl(&["show", "sessions"]);
    assert_eq!(v, serde_json::json!([]));
    gw.stop();
}

#[test]
fn the_removed_ip_mode_is_refused_by_config_ctl_and_the_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let l2tp = "[l2tp]\nenabled = true\n[[l2tp.line]]\nname = \"a\"\npeer = \"192.0.2.9\"\n[[l2tp.customer]]\nname = \"c\"\n";
    // The config: `ip_subscribers` and `[[l2tp.session]]` are errors that say where to go.
    for extra in [
        "ip_subscribers = true\n",
        "[[l2tp.session]]\naddress = \"10.10.0.30\"\ncustomer = \"c\"\n",
    ] {
        let file = d.join("ip-mode.toml");
        let src = if extra.starts_with("[[") {
            format!("{l2tp}{extra}")
        } else {
            l2tp.replace("enabled = true\n", &format!("enabled = true\n{extra}"))
        };
        std::fs::write(
            &file,
            format!("[access]\nbackend = \"memory\"\naddress = \"10.10.0.1/24\"\n[core]\nbackend = \"memory\"\naddress = \"192.0.2.1/24\"\n{src}"),
        )
        .unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tollgate"))
            .arg("check-config")
            .arg(&file)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stderr).into_owned()
            + &String::from_utf8_lossy(&out.stdout);
        assert!(!out.status.success(), "{extra}: {text}");
        assert!(text.contains("was removed"), "{extra}: {text}");
        assert!(
            text.contains("Migration from IP subscribers"),
            "{extra}: {text}"
        );
    }
    let gw = Gw::start(d, &format!("{}{l2tp}", aaa(d)));
    // This ctl: the command is gone, and says so.
    let (ok, v) = gw.ctl(&["tunnel", "session", "add", "10.10.0.30", "c"]);
    assert!(!ok, "{v}");
    let text = v.as_str().unwrap();
    assert!(text.contains("`tunnel session add` was removed"), "{v}");
    assert!(text.contains("Migration from IP subscribers"), "{v}");
    // An older ctl sends the request: the daemon answers the same.
    let (ok, v) = gw.ctl(&[
        "raw",
        &serde_json::json!({"cmd": "tunnel session add", "args": {"address": "10.10.0.30", "customer": "c"}})
            .to_string(),
    ]);
    assert!(!ok, "{v}");
    assert!(
        v.as_str()
            .unwrap()
            .contains("`tunnel session add` was removed"),
        "{v}"
    );
    // No tunnel was opened for it.
    let (ok, v) = gw.ctl(&["show", "tunnels"]);
    assert!(ok, "{v}");
    assert_eq!(v["tunnels"], serde_json::json!([]), "{v}");
    gw.stop();
}

#[test]
fn an_ended_session_is_found_by_address_and_its_id_is_not_given_again() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let gw = Gw::start(d, &aaa(d));
    let (ok, v) = gw.ctl(&[
        "session",
        "add",
        "--user",
        "alice",
        "--address",
        "10.10.0.20",
    ]);
    assert!(ok, "{v}");
    let alice = v["session"].as_u64().unwrap();
    let (ok, _) = gw.ctl(&["session", "remove", "10.10.0.20"]);
    assert!(ok);
    let ended = wait("alice's session ended", || {
        let (_, v) = gw.ctl(&["show", "session", "10.10.0.20"]);
        (v["state"] == "ended").then_some(v)
    });
    assert_eq!(ended["session"], alice);
    assert_eq!(ended["user"], "alice");
    let (ok, v) = gw.ctl(&["session", "add", "--user", "bob", "--address", "10.10.0.21"]);
    assert!(ok, "{v}");
    let bob = v["session"].as_u64().unwrap();
    assert_ne!(bob, alice, "alice's id is still shown as hers");
    let (_, v) = gw.ctl(&["show", "session", &alice.to_string()]);
    assert_eq!(
        (&v["user"], &v["state"]),
        (&"alice".into(), &"ended".into()),
        "{v}"
    );
    // A new session at the address is the one shown by address.
    let (ok, v) = gw.ctl(&[
        "session",
        "add",
        "--user",
        "carol",
        "--address",
        "10.10.0.20",
    ]);
    assert!(ok, "{v}");
    let v = gw.wait_open("10.10.0.20");
    assert_eq!(v["user"], "carol");
    gw.stop();
}
