//! Session set-up rate: first-packet logins per second into installed fast-path sessions,
//! through the whole daemon (worker punt, control core, authenticator, install on the
//! worker), with the local store and with FreeRADIUS on loopback; for RADIUS, `radclient`
//! alone against the same server in the same run is the reference. Not a timed test:
//! `scripts/bench-logins.sh` runs it (ignored by default).
//!
//! `BENCH_LOGINS` (default 5000) sets the number of subscribers.

mod support;

use std::io::Write;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use support::freeradius::{FreeRadius, SECRET};
use support::gateway::Gw;
use tollgate_control::store::{Identifier, Store, Subscriber};
use tollgate_dataplane::MacAddr;
use tollgate_testkit::frame::udp_ports;
use tollgate_testkit::lab::*;

fn logins() -> usize {
    std::env::var("BENCH_LOGINS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000)
}

fn sub(i: usize) -> (Ipv4Addr, MacAddr) {
    let n = i as u32 + 2;
    (
        Ipv4Addr::new(10, 0, (n >> 8) as u8, n as u8),
        MacAddr([2, 0x44, 0, 0, (n >> 8) as u8, n as u8]),
    )
}

fn config(dir: &std::path::Path, auth: &str) -> String {
    format!(
        r#"
[engine]
idle_sleep_us = 0
ring_messages = 65536
[control]
socket = "{d}/ctl.sock"
[access]
backend = "memory"
address = "10.0.0.1/16"
[core]
backend = "memory"
address = "192.0.2.1/24"
[subscribers]
unknown = "punt"
max_sessions = 200000
[aaa]
store = "{d}/subscribers.db"
spool = "{d}/accounting.db"
max_pending_logins = 100000
{auth}
"#,
        d = dir.display()
    )
}

/// Sends every subscriber's first packet (again every second for those not in yet: the
/// worker reports a stranger once a second) and returns logins per second until all are
/// installed.
fn run(gw: &mut Gw, n: usize) -> f64 {
    let start = Instant::now();
    let mut last_round = Instant::now() - Duration::from_secs(2);
    let mut sent_rounds = 0;
    loop {
        let (_, v) = gw.ctl(&["show", "logins"]);
        let accepted = v["accepted"].as_u64().unwrap_or(0) as usize;
        if accepted >= n {
            let (_, w) = gw.ctl(&["show", "workers"]);
            let installed: u64 = w
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x["sessions"].as_u64().unwrap_or(0))
                .sum();
            if installed as usize >= n {
                let el = start.elapsed().as_secs_f64();
                eprintln!("  {n} logins in {el:.2} s ({sent_rounds} rounds of first packets), {v}");
                return n as f64 / el;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "logins stalled: {v}"
        );
        if last_round.elapsed() >= Duration::from_millis(1100) {
            last_round = Instant::now();
            sent_rounds += 1;
            for i in 0..n {
                let (ip, mac) = sub(i);
                let f = udp_ports(mac, ACC_MAC, ip, 40000, SRV, 5001, 64, b"login");
                while !gw.access.send(f.clone()) {
                    std::thread::sleep(Duration::from_micros(50));
                }
            }
        }
        let _ = gw.core.drain();
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn radclient(fr: &FreeRadius, n: usize) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("requests");
    let mut f = std::fs::File::create(&file).unwrap();
    for i in 0..n {
        let m = sub(i).1.to_string();
        writeln!(
            f,
            "User-Name = \"{m}\"\nUser-Password = \"{m}\"\nMessage-Authenticator = 0x00\n"
        )
        .unwrap();
    }
    drop(f);
    let start = Instant::now();
    let out = std::process::Command::new("radclient")
        .args(["-q", "-s", "-t", "3", "-r", "3", "-p", "256", "-f"])
        .arg(&file)
        .arg(fr.auth.to_string())
        .arg("auth")
        .arg(SECRET)
        .output()
        .expect("radclient");
    let el = start.elapsed().as_secs_f64();
    eprintln!(
        "  radclient: {}",
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    );
    n as f64 / el
}

#[test]
#[ignore = "a benchmark: run scripts/bench-logins.sh"]
fn login_rate() {
    let n = logins();
    // Local store: every subscriber known by its MAC.
    let dir = tempfile::tempdir().unwrap();
    {
        let mut store = Store::open(&dir.path().join("subscribers.db")).unwrap();
        let subs: Vec<Subscriber> = (0..n)
            .map(|i| {
                let mut s = Subscriber::new(&format!("u{i}"));
                s.identifiers = vec![Identifier::Mac(sub(i).1)];
                s
            })
            .collect();
        store.put_all(&subs, false).unwrap();
    }
    let mut gw = Gw::start_config(dir.path(), &config(dir.path(), ""));
    let local = run(&mut gw, n);
    gw.stop();
    println!("RESULT local store: {local:.0} logins/s into installed sessions ({n} subscribers)");

    // RADIUS: FreeRADIUS knows every MAC (MAC authentication).
    let users: String = (0..n)
        .map(|i| {
            let m = sub(i).1.to_string();
            format!("\"{m}\"\tCleartext-Password := \"{m}\"\n\n")
        })
        .collect();
    let fr = FreeRadius::start_with_users(false, &users);
    let dir = tempfile::tempdir().unwrap();
    let auth = format!(
        "auth = \"radius\"\n[aaa.radius]\ntimeout_ms = 2000\n[[aaa.radius.auth_server]]\naddress = \"{}\"\nsecret = \"{SECRET}\"\n",
        fr.auth
    );
    let mut gw = Gw::start_config(dir.path(), &config(dir.path(), &auth));
    let ours = run(&mut gw, n);
    gw.stop();
    let reference = radclient(&fr, n);
    println!(
        "RESULT RADIUS: {ours:.0} logins/s into installed sessions; radclient alone {reference:.0} Access-Requests/s; ratio {:.2}",
        ours / reference
    );
}
