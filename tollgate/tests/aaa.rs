//! Logins end to end through the daemon: a gateway on memory ports (the test holds the
//! far ends and sends real frames), the local store or a real FreeRADIUS behind it, the
//! control socket driven with the `tollgate` binary. First-packet login, `ctl session
//! login`, counters in the session log and in FreeRADIUS's detail file equal to the
//! traffic sent, CoA and Disconnect from radclient, and `kill -9` with the Stops sent at
//! the next start.

mod support;

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use support::freeradius::{FreeRadius, SECRET};
use support::gateway::{Gw, ctl, wait};
use tollgate_control::store::{PasswordCost, Store, Subscriber, hash_password};
use tollgate_control_core::gateway::identifier::Identifier;
use tollgate_dataplane::MacAddr;
use tollgate_testkit::frame::udp_ports;
use tollgate_testkit::lab::*;

const STRANGER_MAC: MacAddr = MacAddr([0x02, 0x10, 0, 0, 0, 0x99]);

/// IPv4 total length of a UDP datagram with `payload` bytes.
fn ip_len(payload: usize) -> u64 {
    20 + 8 + payload as u64
}

fn cheap() -> PasswordCost {
    PasswordCost {
        memory_kib: 256,
        iterations: 1,
    }
}

#[test]
fn first_packet_and_ctl_logins_with_the_local_store() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    {
        let mut store = Store::open(&d.join("subscribers.db")).unwrap();
        let mut alice = Subscriber::new("alice");
        alice.identifiers = vec![Identifier::Mac(SUB_MAC)];
        alice.bandwidth_down = Some(100_000_000);
        store.add(&alice).unwrap();
        let mut bob = Subscriber::new("bob");
        bob.password_hash = Some(hash_password("builder", cheap()).unwrap());
        store.add(&bob).unwrap();
    }
    let extra = format!(
        "[aaa]\nstore = \"{d}/subscribers.db\"\nspool = \"{d}/accounting.db\"\n",
        d = d.display()
    );
    let mut gw = Gw::start(d, &extra);

    // The first packet of alice's MAC logs her in; it is dropped itself.
    let first = udp_ports(SUB_MAC, ACC_MAC, SUB, 40000, SRV, 5001, 64, b"hello");
    assert!(gw.access.send(first));
    let s = gw.wait_open("10.10.0.11");
    assert_eq!(s["user"], "alice");
    assert_eq!(s["mac"], "02:10:00:00:00:11");
    assert_eq!(s["bandwidth_down"], 100_000_000);
    assert!(
        gw.core.drain().is_empty(),
        "the login packet was not forwarded"
    );
    gw.traffic(SUB, SUB_MAC, (10, 100), (5, 300));

    // A stranger is refused: nobody has its MAC or address.
    let f = udp_ports(
        STRANGER_MAC,
        ACC_MAC,
        Ipv4Addr::new(10, 10, 0, 99),
        1,
        SRV,
        2,
        64,
        b"x",
    );
    assert!(gw.access.send(f));
    wait("the stranger's login refused", || {
        let (_, v) = gw.ctl(&["show", "logins"]);
        (v["rejected"] == 1).then_some(())
    });

    // ctl login: wrong password, then right; an address of our choosing.
    let (ok, e) = gw.ctl(&[
        "session",
        "login",
        "--user",
        "bob",
        "--password",
        "wrong",
        "--address",
        "10.10.0.30",
    ]);
    assert!(!ok && e.as_str().unwrap().contains("rejected"), "{e}");
    let (ok, v) = gw.ctl(&[
        "session",
        "login",
        "--user",
        "bob",
        "--password",
        "builder",
        "--address",
        "10.10.0.30",
    ]);
    assert!(ok, "{v}");
    assert_eq!(v["address"], "10.10.0.30");
    assert_eq!(v["user"], "bob");

    // A subscriber added over the socket logs in by its fixed address.
    let (ok, v) = gw.ctl(&[
        "subscriber",
        "add",
        "carol",
        "--ip",
        "10.10.0.40",
        "--service",
        "web",
        "--chap-secret",
        "c4rol",
    ]);
    assert!(ok, "{v}");
    let (ok, v) = gw.ctl(&["subscriber", "show", "carol"]);
    assert!(
        ok && v["identifiers"] == serde_json::json!(["ip 10.10.0.40"]),
        "{v}"
    );
    assert_eq!(v["has_chap_secret"], true, "{v}");
    assert_eq!(v["has_password"], false, "{v}");
    let carol_mac = MacAddr([2, 0x10, 0, 0, 0, 0x40]);
    let f = udp_ports(
        carol_mac,
        ACC_MAC,
        Ipv4Addr::new(10, 10, 0, 40),
        1,
        SRV,
        2,
        64,
        b"c",
    );
    assert!(gw.access.send(f));
    assert_eq!(gw.wait_open("10.10.0.40")["user"], "carol");

    // Alice logs out: her record carries exactly what went through.
    let (ok, v) = gw.ctl(&["session", "logout", "--user", "alice"]);
    assert!(ok, "{v}");
    let rec = wait("alice's session record", || {
        gw.session_log().into_iter().find(|r| r["user"] == "alice")
    });
    assert_eq!(rec["cause"], "user_request");
    assert_eq!(rec["tx_packets"], 10);
    assert_eq!(rec["tx_bytes"], 10 * ip_len(100));
    assert_eq!(rec["rx_packets"], 5);
    assert_eq!(rec["rx_bytes"], 5 * ip_len(300));
    assert!(
        rec["acct_session_id"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
    );

    let (_, v) = gw.ctl(&["show", "logins"]);
    assert_eq!(
        (v["accepted"].as_u64(), v["rejected"].as_u64()),
        (Some(3), Some(2)),
        "{v}"
    );
    assert_eq!(v["sessions"]["act"], 2);
    let (_, v) = gw.ctl(&["show", "accounting"]);
    assert_eq!(v["auth"], "local");
    let spool = &v["spool"];
    assert_eq!(spool["enqueued"], 4, "three Starts and a Stop: {v}");
    wait("no accounting server: every record done", || {
        let (_, v) = gw.ctl(&["show", "accounting"]);
        (v["spool"]["pending"] == 0).then_some(())
    });
    gw.stop();
    // Stopping ended bob's and carol's sessions, with Stops in the log.
    let log = Gw::session_log_at(d);
    for u in ["bob", "carol"] {
        let r = log.iter().find(|r| r["user"] == u).unwrap();
        assert_eq!(r["cause"], "nas_request", "{r}");
    }
}

/// The attributes of the detail file's records for `session`, by Acct-Status-Type.
fn detail_of(fr: &FreeRadius, session: &str) -> Vec<std::collections::BTreeMap<String, String>> {
    fr.detail()
        .into_iter()
        .map(|r| r.into_iter().collect::<std::collections::BTreeMap<_, _>>())
        .filter(|r| r.get("Acct-Session-Id").is_some_and(|s| s == session))
        .collect()
}

fn radclient(fr: &FreeRadius, to: std::net::SocketAddr, code: &str, attrs: &str) -> String {
    let mut c = Command::new("radclient")
        .args(["-x", "-r", "1", "-t", "3", "-d"])
        .arg(fr.dir())
        .args([&to.to_string(), code, SECRET])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("radclient");
    use std::io::Write;
    // RFC 5176 §6.4: the listener requires an Event-Timestamp by default.
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let attrs = format!("{attrs}Event-Timestamp = {unix}\n");
    c.stdin.take().unwrap().write_all(attrs.as_bytes()).unwrap();
    let out = c.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

#[test]
#[ignore = "needs FreeRADIUS: `make host-test` runs it"]
fn radius_login_accounting_coa_and_disconnect() {
    let fr = FreeRadius::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let coa_port = support::freeradius::free_port();
    let extra = format!(
        r#"
[[service]]
name = "web"
vip = "203.0.113.10"
protocol = "tcp"
port = 80
[[service.server]]
address = "192.0.2.10"
port = 8080

[aaa]
auth = "radius"
store = "{d}/subscribers.db"
spool = "{d}/accounting.db"
nas_identifier = "tollgate-test"
[aaa.radius]
timeout_ms = 500
retries = 2
[[aaa.radius.auth_server]]
address = "{auth}"
secret = "{SECRET}"
[[aaa.radius.acct_server]]
address = "{acct}"
secret = "{SECRET}"
[aaa.coa]
listen = "127.0.0.1:{coa_port}"
[[aaa.coa.client]]
address = "127.0.0.1"
secret = "{SECRET}"
"#,
        d = d.display(),
        auth = fr.auth,
        acct = fr.acct,
    );
    let mut gw = Gw::start(d, &extra);

    // MAC authentication of the first packet: FreeRADIUS knows 02:10:00:00:00:11.
    assert!(gw.access.send(udp_ports(
        SUB_MAC, ACC_MAC, SUB, 40000, SRV, 5001, 64, b"hi"
    )));
    let s = gw.wait_open("10.10.0.11");
    assert_eq!(s["user"], "02:10:00:00:00:11");
    assert_eq!(s["bandwidth_down"], 50_000_000);
    assert_eq!(s["services"], serde_json::json!(["web"]));
    let acct = s["acct_session_id"].as_str().unwrap().to_string();
    // A MAC FreeRADIUS does not know is rejected.
    let f = udp_ports(
        STRANGER_MAC,
        ACC_MAC,
        Ipv4Addr::new(10, 10, 0, 99),
        1,
        SRV,
        2,
        64,
        b"x",
    );
    assert!(gw.access.send(f));
    wait("Access-Reject", || {
        let (_, v) = gw.ctl(&["show", "logins"]);
        (v["rejected"] == 1).then_some(())
    });
    // A password login against FreeRADIUS: Framed-IP-Address gives the address.
    let (ok, v) = gw.ctl(&[
        "session",
        "login",
        "--user",
        "alice",
        "--password",
        "wonderland",
    ]);
    assert!(ok, "{v}");
    assert_eq!(v["address"], "10.10.0.50");
    let (ok, e) = gw.ctl(&["session", "login", "--user", "bob", "--password", "nope"]);
    assert!(!ok && e.as_str().unwrap().contains("Access-Reject"), "{e}");

    gw.traffic(SUB, SUB_MAC, (20, 200), (10, 1000));
    // The interim (Acct-Interim-Interval 10 s) reports that traffic.
    let interim = wait("the Interim-Update", || {
        detail_of(&fr, &acct)
            .into_iter()
            .find(|r| r["Acct-Status-Type"] == "Interim-Update")
    });
    assert_eq!(interim["Acct-Input-Octets"], (20 * ip_len(200)).to_string());
    assert_eq!(
        interim["Acct-Output-Octets"],
        (10 * ip_len(1000)).to_string()
    );
    assert_eq!(interim["Acct-Input-Packets"], "20");
    assert_eq!(interim["Class"], "0x6d61632d636c617373", "Class echoed");

    // CoA changes the bandwidth live.
    let out = radclient(
        &fr,
        format!("127.0.0.1:{coa_port}").parse().unwrap(),
        "coa",
        &format!("Acct-Session-Id = \"{acct}\"\nTollgate-Bandwidth-Down = 20000000\n"),
    );
    assert!(out.contains("CoA-ACK"), "{out}");
    let (_, s) = gw.ctl(&["show", "session", "10.10.0.11"]);
    assert_eq!(s["bandwidth_down"], 20_000_000);
    gw.traffic(SUB, SUB_MAC, (1, 10), (0, 0));
    // Disconnect ends it: the Stop has every packet.
    let out = radclient(
        &fr,
        format!("127.0.0.1:{coa_port}").parse().unwrap(),
        "disconnect",
        "User-Name = \"02:10:00:00:00:11\"\nFramed-IP-Address = 10.10.0.11\n",
    );
    assert!(out.contains("Disconnect-ACK"), "{out}");
    let out = radclient(
        &fr,
        format!("127.0.0.1:{coa_port}").parse().unwrap(),
        "disconnect",
        "User-Name = \"nobody\"\n",
    );
    assert!(out.contains("Disconnect-NAK"), "{out}");
    let stop = wait("the Stop", || {
        detail_of(&fr, &acct)
            .into_iter()
            .find(|r| r["Acct-Status-Type"] == "Stop")
    });
    assert_eq!(stop["Acct-Terminate-Cause"], "Admin-Reset");
    assert_eq!(
        stop["Acct-Input-Octets"],
        (20 * ip_len(200) + ip_len(10)).to_string()
    );
    assert_eq!(stop["Acct-Input-Packets"], "21");
    assert_eq!(stop["Acct-Output-Packets"], "10");
    assert_eq!(stop["Tollgate-Disconnect-Cause"], "Admin");
    let starts = detail_of(&fr, &acct)
        .into_iter()
        .filter(|r| r["Acct-Status-Type"] == "Start")
        .count();
    assert_eq!(starts, 1, "one Start, never twice");
    gw.stop();
}

/// `tollgate run` as a child process on idle memory ports.
fn spawn_daemon(config: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["run", "--config"])
        .arg(config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
#[ignore = "needs FreeRADIUS: `make host-test` runs it"]
fn kill_9_then_restart_sends_the_stops_that_were_due() {
    let fr = FreeRadius::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
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
[aaa.radius]
timeout_ms = 300
[[aaa.radius.acct_server]]
address = "{acct}"
secret = "{SECRET}"
"#,
            d = d.display(),
            acct = fr.acct
        ),
    )
    .unwrap();
    let socket = d.join("ctl.sock");
    let mut child = spawn_daemon(&config);
    wait("the daemon", || {
        std::os::unix::net::UnixStream::connect(&socket).ok()
    });
    let mut ids = Vec::new();
    for i in 0..3 {
        let a = format!("10.10.0.{}", 20 + i);
        let (ok, v) = ctl(
            &socket,
            &[
                "session",
                "add",
                "--user",
                &format!("u{i}"),
                "--address",
                &a,
            ],
        );
        assert!(ok, "{v}");
        let (_, s) = ctl(&socket, &["show", "session", &a]);
        ids.push(s["acct_session_id"].as_str().unwrap().to_string());
    }
    wait("three Starts at FreeRADIUS", || {
        ids.iter()
            .all(|id| {
                detail_of(&fr, id)
                    .iter()
                    .any(|r| r["Acct-Status-Type"] == "Start")
            })
            .then_some(())
    });
    // SAFETY-free kill: the child is ours.
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        ids.iter().all(|id| detail_of(&fr, id)
            .iter()
            .all(|r| r["Acct-Status-Type"] != "Stop")),
        "no Stop before the restart"
    );
    // The stale socket is replaced; the spool closes the three sessions.
    let mut child = spawn_daemon(&config);
    for id in &ids {
        let stop = wait("the recovered Stop", || {
            detail_of(&fr, id)
                .into_iter()
                .find(|r| r["Acct-Status-Type"] == "Stop")
        });
        assert_eq!(stop["Acct-Terminate-Cause"], "NAS-Reboot");
        assert_eq!(stop["Tollgate-Disconnect-Cause"], "Restart");
    }
    let log = Gw::session_log_at(d);
    assert_eq!(
        log.iter().filter(|r| r["recovered"] == true).count(),
        3,
        "{log:?}"
    );
    // SIGTERM: a clean stop.
    // SAFETY: kill(2) on our own child.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    child.wait().unwrap();
    for id in &ids {
        assert_eq!(
            detail_of(&fr, id)
                .iter()
                .filter(|r| r["Acct-Status-Type"] == "Stop")
                .count(),
            1,
            "one Stop each, never twice"
        );
    }
}

#[test]
fn session_usage_and_bandwidth_changes_reach_the_rating_database() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let extra = format!(
        "[aaa]\nstore = \"{d}/subscribers.db\"\nspool = \"{d}/accounting.db\"\n[rating]\ndatabase = \"{d}/rating.db\"\n",
        d = d.display()
    );
    let mut gw = Gw::start(d, &extra);
    let (ok, v) = gw.ctl(&[
        "session",
        "add",
        "--user",
        "dora",
        "--address",
        "10.10.0.11",
        "--down",
        "10M",
    ]);
    assert!(ok, "{v}");
    gw.wait_open("10.10.0.11");
    gw.traffic(SUB, SUB_MAC, (3, 50), (2, 70));
    let (ok, v) = gw.ctl(&["session", "update", "10.10.0.11", "--down", "20M"]);
    assert!(ok, "{v}");
    let (ok, v) = gw.ctl(&["session", "update", "10.10.0.11", "--down", "20M"]);
    assert!(ok, "{v}");
    let (ok, v) = gw.ctl(&["session", "logout", "10.10.0.11"]);
    assert!(ok, "{v}");
    let counts = wait("the session's usage rated", || {
        let (_, v) = gw.ctl(&["billing", "status"]);
        (v["records"]["session"] == 1).then_some(v["records"].clone())
    });
    // A start at 10M and one change to 20M (the repeated 20M is not a change).
    assert_eq!(counts["bandwidth"], 2, "{counts}");
    gw.stop();
}

/// A plain HTTP GET of `/metrics` from `addr`.
fn scrape(addr: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

#[test]
fn health_checks_move_servers_and_nodes_and_metrics_show_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The "real servers" are TCP listeners on loopback, reached by their check address.
    let web = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let node = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let (web_port, node_port) = (
        web.local_addr().unwrap().port(),
        node.local_addr().unwrap().port(),
    );
    let metrics_port = support::freeradius::free_port();
    // An HTTP server that reports its load, for the lowest-CPU-load policy.
    let api = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let api_port = api.local_addr().unwrap().port();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for mut c in api.incoming().flatten() {
            let mut buf = [0u8; 1024];
            let _ = c.read(&mut buf);
            let _ = c.write_all(b"HTTP/1.1 200 OK\r\nX-Load: 37\r\nContent-Length: 0\r\n\r\n");
        }
    });
    let extra = format!(
        r#"
[[service]]
name = "web"
vip = "203.0.113.10"
protocol = "tcp"
port = 80
check = "tcp"
[[service.server]]
address = "192.0.2.21"
port = {web_port}
check_address = "127.0.0.1"
[[service.server]]
address = "192.0.2.22"
port = 8080
check_address = "127.0.0.2"

[[service]]
name = "api"
vip = "203.0.113.11"
protocol = "tcp"
port = 443
policy = "lowest_cpu_load"
check = "http"
check_path = "/load"
[[service.server]]
address = "192.0.2.31"
port = {api_port}
check_address = "127.0.0.1"

[[node]]
name = "gw-b"
address = "127.0.0.1"
mac = "02:30:00:00:00:02"
check = "tcp"
check_port = {node_port}

[[lb_range]]
prefix = "10.10.0.128/25"
primary = "02:30:00:00:00:02"

[[pool]]
name = "main"
[[pool.range]]
first = "10.10.0.200"
last = "10.10.0.209"
node = "gw-b"

[aaa]
store = "{d}/subscribers.db"
spool = "{d}/accounting.db"
[aaa.health]
interval_ms = 100
timeout_ms = 100
rise = 1
fall = 1
[aaa.metrics]
listen = "127.0.0.1:{metrics_port}"
render_ms = 50
"#,
        d = d.display()
    );
    let gw = Gw::start(d, &extra);
    let state = |gw: &Gw, i: usize| {
        let (_, v) = gw.ctl(&["show", "services"]);
        v[0]["servers"][i]["state"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    // Nobody listens at 127.0.0.2:8080: server 1 goes down, server 0 stays up.
    wait("server 1 down", || (state(&gw, 1) == "down").then_some(()));
    assert_eq!(state(&gw, 0), "up");
    let (_, h) = gw.ctl(&["show", "health"]);
    assert_eq!(h.as_array().unwrap().len(), 4, "{h}");
    wait("the api server's reported load", || {
        let (_, v) = gw.ctl(&["show", "services"]);
        (v[1]["servers"][0]["cpu_load"] == 37).then_some(())
    });
    // The node's listener goes away: its pool range and LB target go down.
    drop(node);
    wait("node down", || {
        let (_, p) = gw.ctl(&["show", "pools"]);
        (p[0]["ranges"][0]["node_state"] == "down").then_some(())
    });
    let (_, lb) = gw.ctl(&["show", "lb"]);
    assert_eq!(lb[0]["chosen"], Value::Null, "its only target is down");
    // A login that needs a pool address finds none on a node that is up.
    let (ok, v) = gw.ctl(&["subscriber", "add", "pooled"]);
    assert!(ok, "{v}");
    let (ok, e) = gw.ctl(&["session", "login", "--user", "pooled"]);
    assert!(
        !ok && e.as_str().unwrap().contains("no free address"),
        "{e}"
    );
    drop(web);
    wait("server 0 down", || (state(&gw, 0) == "down").then_some(()));

    let text = wait("metrics", || {
        let t = scrape(&format!("127.0.0.1:{metrics_port}"));
        t.contains("tollgate_health_up").then_some(t)
    });
    for family in [
        "tollgate_port_packets_total{worker=\"0\",side=\"access\",direction=\"rx\"} 0",
        "tollgate_drops_total{worker=\"0\",reason=\"no_route\"} 0",
        "tollgate_sessions{state=\"act\"} 0",
        "tollgate_logins_total{result=\"accepted\"} 0",
        "tollgate_accounting_pending 0",
    ] {
        assert!(text.contains(family), "{family} missing:\n{text}");
    }
    gw.stop();
}

/// Issue 7's end to end: traffic through the gateway -> the session's Stop -> the rated
/// charge on the invoice equals the bytes sent times the tariff.
#[test]
fn traffic_to_invoice() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let extra = format!(
        r#"
[aaa]
store = "{d}/subscribers.db"
spool = "{d}/accounting.db"
[rating]
database = "{d}/rating.db"
default_tariff = "metered"
[[rating.tariff]]
name = "metered"
[[rating.tariff.rate]]
kind = "bytes"
direction = "tx"
price = 1
per = 1000
[[rating.tariff.rate]]
kind = "bytes"
direction = "rx"
price = 2
per = 1000
"#,
        d = d.display()
    );
    let mut gw = Gw::start(d, &extra);
    let (ok, v) = gw.ctl(&["session", "add", "--user", "eve", "--address", "10.10.0.11"]);
    assert!(ok, "{v}");
    gw.wait_open("10.10.0.11");
    // 100 datagrams of 1000 bytes (IPv4) sent, 50 of 500 received.
    gw.traffic(SUB, SUB_MAC, (100, 972), (50, 472));
    let (ok, v) = gw.ctl(&["session", "logout", "10.10.0.11"]);
    assert!(ok, "{v}");
    wait("the usage rated", || {
        let (_, v) = gw.ctl(&["billing", "status"]);
        (v["records"]["session"] == 1).then_some(())
    });
    let (ok, v) = gw.ctl(&["billing", "invoice", "eve"]);
    assert!(ok, "{v}");
    let inv = &v["invoice"];
    let amount = |dir: &str| -> i64 {
        inv["lines"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|l| l["kind"] == "bytes" && l["detail"].as_str().unwrap_or("").contains(dir))
            .map(|l| l["amount"].as_i64().unwrap())
            .sum()
    };
    assert_eq!(amount("tx"), 100, "100,000 bytes at 1 per 1000: {inv}");
    assert_eq!(amount("rx"), 50, "25,000 bytes at 2 per 1000: {inv}");
    assert_eq!(inv["total"], 150, "{inv}");
    gw.stop();
}

/// The metrics follow the traffic without any ctl request: each rendering asks the
/// workers for fresh reports once the last ask is answered. (The exposition used to ask
/// only while an ask was unanswered, so the workers' counters froze at their first
/// report unless a ctl command asked for newer ones.)
#[test]
fn metrics_follow_the_traffic_without_ctl_requests() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let metrics_port = support::freeradius::free_port();
    let extra = format!(
        r#"
[aaa]
store = "{d}/subscribers.db"
spool = "{d}/accounting.db"
[aaa.metrics]
listen = "127.0.0.1:{metrics_port}"
render_ms = 50
"#,
        d = d.display()
    );
    let mut gw = Gw::start(d, &extra);
    let addr = format!("127.0.0.1:{metrics_port}");
    let rx = |n: usize| {
        format!(
            "tollgate_port_packets_total{{worker=\"0\",side=\"access\",direction=\"rx\"}} {n}\n"
        )
    };
    wait("the workers' first report in the metrics", || {
        scrape(&addr).contains(&rx(0)).then_some(())
    });
    for i in 0..5u8 {
        let f = udp_ports(
            STRANGER_MAC,
            ACC_MAC,
            Ipv4Addr::new(10, 10, 0, 99),
            40000,
            SRV,
            5001,
            64,
            &[i; 10],
        );
        assert!(gw.access.send(f));
    }
    wait("the 5 frames in the metrics", || {
        scrape(&addr).contains(&rx(5)).then_some(())
    });
    gw.stop();
}
