//! A fixed amount of full-pipeline work for instruction-level profiling (see
//! scripts/profile.sh): `pipeline-profile SESSIONS FLOWS_EACH POLLS [io-only|pipeline]
//! [ACCESS]`. With `io-only`, the same rig's ports, buffers and frames move with no stage
//! in between: the reference the pipeline's instructions per packet are compared
//! against. ACCESS is a `tollgate bench --access` line (ipoe, pppoe, pppoe-qinq, nat64,
//! ipv6; ipoe by default).

use std::hint::black_box;

use tollgate_benches::pipeline::{Access, rig_on};
use tollgate_dataplane::time::Instant;

fn main() {
    let arg = |i: usize, d: u64| {
        std::env::args()
            .nth(i)
            .and_then(|a| a.parse().ok())
            .unwrap_or(d)
    };
    let (sessions, each, polls) = (arg(1, 1000) as u32, arg(2, 1) as u32, arg(3, 10_000));
    let access = match std::env::args().nth(5) {
        None => Access::Ipoe,
        Some(a) => match Access::from_name(&a) {
            Some(a) => a,
            None => {
                eprintln!("{a:?}: not an access line (ipoe, pppoe, pppoe-qinq, nat64, ipv6)");
                std::process::exit(2);
            }
        },
    };
    let mut r = rig_on(sessions, each, 32, access);
    if std::env::args().nth(4).as_deref() == Some("io-only") {
        let mut io = r.io_only();
        let start = std::time::Instant::now();
        let n = black_box(io.run(polls));
        eprintln!(
            "{n} packets moved in {polls} polls (io-only), {:.1} ns/packet (wall)",
            start.elapsed().as_nanos() as f64 / n.max(1) as f64
        );
        return;
    }
    let start = std::time::Instant::now();
    for t in 0..polls {
        black_box(r.worker.poll(Instant(2_000_000_000 + t)));
    }
    let c = r.worker.report(0, Instant(0)).counters;
    eprintln!(
        "{} packets in {polls} polls, {} dropped, {:.1} ns/packet (wall)",
        c.forwarded,
        c.total_drops(),
        start.elapsed().as_nanos() as f64 / (polls * r.per_poll) as f64
    );
}
