//! Access-Request round trips per second against FreeRADIUS on loopback: Tollgate's
//! sans-I/O client on its UDP shell versus `radclient` flooding the same server, in one
//! run. Not a timed test: `scripts/bench-radius.sh` runs it (ignored by default).
//!
//! `BENCH_REQUESTS` (default 20000) and `BENCH_PARALLEL` (default 256) set the load.

mod support;

use std::io::Write;
use std::time::Duration;

use support::freeradius::{FreeRadius, SECRET};
use tollgate_control::radius::attrs::{self, NasIdentity};
use tollgate_control::radius::udp::UdpClient;
use tollgate_control::radius::{Client, ClientEvent, Code, ServerConfig};
use tollgate_dataplane::time::Instant;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn ours(fr: &FreeRadius, total: usize, parallel: usize) -> (f64, usize) {
    let nas = NasIdentity {
        identifier: "bench".into(),
        ip: None,
    };
    let server = ServerConfig {
        timeout: Duration::from_secs(2),
        retries: 3,
        ..ServerConfig::new(fr.auth, SECRET)
    };
    let random =
        tollgate_control::random::Random::new(&tollgate_control::os_random::seed().unwrap());
    let mut c = UdpClient::bind(
        "127.0.0.1:0".parse().unwrap(),
        Client::new(vec![server], random),
    )
    .unwrap();
    let (mut sent, mut done, mut accepted) = (0, 0, 0);
    let start = std::time::Instant::now();
    while done < total {
        let now = Instant::now();
        while sent < total && sent - done < parallel {
            c.client
                .send(now, attrs::access_request(&nas, "bench", b"bench", None));
            sent += 1;
        }
        c.pump(now);
        while let Some(e) = c.client.poll_event() {
            match e {
                ClientEvent::Reply { packet, .. } => {
                    done += 1;
                    accepted += (packet.code == Code::AccessAccept) as usize;
                }
                ClientEvent::Failed { .. } => done += 1,
                _ => {}
            }
        }
    }
    let rate = total as f64 / start.elapsed().as_secs_f64();
    let s = c.client.stats();
    eprintln!("  tollgate client: {s:?}");
    (rate, accepted)
}

fn radclient(fr: &FreeRadius, total: usize, parallel: usize) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("requests");
    let mut f = std::fs::File::create(&file).unwrap();
    for _ in 0..parallel {
        writeln!(f, "User-Name = \"bench\"\nUser-Password = \"bench\"\nNAS-Identifier = \"bench\"\nMessage-Authenticator = 0x00\n").unwrap();
    }
    drop(f);
    let count = total.div_ceil(parallel);
    let start = std::time::Instant::now();
    let out = std::process::Command::new("radclient")
        .args(["-q", "-s", "-t", "2", "-r", "3"])
        .arg("-c")
        .arg(count.to_string())
        .arg("-p")
        .arg(parallel.to_string())
        .arg("-f")
        .arg(&file)
        .arg(fr.auth.to_string())
        .arg("auth")
        .arg(SECRET)
        .output()
        .expect("radclient");
    let el = start.elapsed();
    let text = String::from_utf8_lossy(&out.stdout);
    eprintln!(
        "  radclient: {}",
        text.split_whitespace().collect::<Vec<_>>().join(" ")
    );
    (count * parallel) as f64 / el.as_secs_f64()
}

#[test]
#[ignore = "a benchmark: run scripts/bench-radius.sh"]
fn access_request_rate() {
    let fr = FreeRadius::start_with(false);
    let total = env("BENCH_REQUESTS", 20_000);
    let parallel = env("BENCH_PARALLEL", 256);
    // Warm FreeRADIUS up.
    let _ = ours(&fr, 1000, parallel);
    let mut rows = Vec::new();
    for round in 0..2 {
        let (r_ours, accepted) = ours(&fr, total, parallel);
        assert_eq!(accepted, total, "every request accepted");
        let r_ref = radclient(&fr, total, parallel);
        rows.push((r_ours, r_ref));
        println!(
            "round {round}: tollgate client {r_ours:>9.0} req/s   radclient {r_ref:>9.0} req/s   ratio {:.2}",
            r_ours / r_ref
        );
    }
    let best_ours = rows.iter().map(|r| r.0).fold(0.0, f64::max);
    let best_ref = rows.iter().map(|r| r.1).fold(0.0, f64::max);
    println!(
        "RESULT access-request round trips/s ({total} requests, {parallel} in flight, FreeRADIUS on loopback): \
         tollgate {best_ours:.0}  radclient {best_ref:.0}  ratio {:.2}",
        best_ours / best_ref
    );
}
