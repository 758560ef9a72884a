//! Tollgate's side of `scripts/compare-testpmd.sh`: forwarding between two DPDK `net_null`
//! devices on one pinned core, measured the way testpmd measures its own.
//!
//! ```text
//! taskset -c CORE dpdk_compare l2|pipeline SECONDS CORE
//! ```
//!
//! Run it pinned to CORE (`taskset`): the EAL's main lcore is CORE too, and Tollgate
//! leaves the thread that starts the EAL with the affinity it had.
//!
//! * `l2`: Tollgate's DPDK port and its L2 rewrite stage only: receive a burst on each
//!   device, write both MACs of every packet in place, send the burst out of the other
//!   device (what `testpmd --forward-mode=macswap` does).
//! * `pipeline`: the whole worker ([`Worker::poll`]): 200 subscriber sessions with 50 UDP
//!   flows each to a VIP, translated to two real servers, and the servers' answers
//!   translated back. The flows are opened first through `net_ring` devices; then each
//!   frame `net_null` hands over is overwritten with the next template (uplink on one
//!   device, downlink on the other), a 60-byte copy standing in for the NIC's DMA.
//!
//! Prints one line per second (`mpps N`) and then `median_mpps N` over the seconds after
//! the first, counting packets received on both devices. The EAL runs without hugepages
//! unless `COMPARE_EAL_MEMORY` says otherwise (e.g. `--in-memory -m 1024`).

use std::time::{Duration, Instant as WallInstant};

use tollgate_dataplane::port::dpdk::{self, Device, DeviceConfig, DpdkPort, PoolConfig};
use tollgate_dataplane::port::{BufOf, Port, PortStats};
use tollgate_dataplane::stage::rewrite;
use tollgate_dataplane::time::Instant;
use tollgate_dataplane::{BufPool, Burst, MacAddr, PacketBuf, Side};
use tollgate_testkit::gateway::{self, Gateway, Queue};

const SUBSCRIBERS: u8 = 200;
const FLOWS_EACH: u16 = 50;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: dpdk_compare l2|pipeline SECONDS CORE";
    let (Some(mode), Some(secs), Some(core)) = (args.get(1), args.get(2), args.get(3)) else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let secs: u64 = secs.parse().expect("SECONDS is a number");
    let core: usize = core.parse().expect("CORE is a number");
    // Memory: no hugepages by default; COMPARE_EAL_MEMORY="--in-memory -m 1024" uses them.
    let memory = std::env::var("COMPARE_EAL_MEMORY").unwrap_or_else(|_| "--no-huge -m 1024".into());
    let eal_args = format!(
        "{memory} --no-pci --no-shconf --no-telemetry -l {core} --log-level=lib.eal:warning"
    );
    let eal_args: Vec<String> = eal_args.split_whitespace().map(String::from).collect();
    let eal = dpdk::eal_init(&eal_args).unwrap_or_else(|e| fail(&e.to_string()));
    let cfg = DeviceConfig {
        pool: PoolConfig {
            mbufs: 16383,
            cache: 256,
        },
        ..DeviceConfig::default()
    };
    let open = |spec: &str| Device::open(eal, spec, &cfg).unwrap_or_else(|e| fail(&e.to_string()));
    let (a, b) = (open("net_null0"), open("net_null1"));
    let rates = match mode.as_str() {
        "l2" => l2(&a, &b, secs),
        "pipeline" => pipeline(eal, &cfg, &a, &b, secs),
        _ => fail(usage),
    };
    let mut sorted = rates[1.min(rates.len() - 1)..].to_vec();
    sorted.sort_by(f64::total_cmp);
    println!("median_mpps {:.3}", sorted[sorted.len() / 2]);
}

fn fail(msg: &str) -> ! {
    eprintln!("dpdk_compare: {msg}");
    std::process::exit(1)
}

/// Calls `step` (which returns packets received) for `secs` seconds; returns Mpps per
/// second.
fn measure(secs: u64, mut step: impl FnMut() -> usize) -> Vec<f64> {
    let mut rates = Vec::new();
    let start = WallInstant::now();
    let mut mark = start;
    let mut count = 0u64;
    let mut polls = 0u32;
    while rates.len() < secs as usize {
        count += step() as u64;
        polls += 1;
        if polls.is_multiple_of(1024) {
            let now = WallInstant::now();
            let dt = now - mark;
            if dt >= Duration::from_secs(1) {
                let mpps = count as f64 / dt.as_secs_f64() / 1e6;
                println!("mpps {mpps:.3}");
                rates.push(mpps);
                count = 0;
                mark = now;
            }
        }
    }
    rates
}

fn l2(a: &Device, b: &Device, secs: u64) -> Vec<f64> {
    let mut ports = [a.port(0), b.port(0)];
    let macs = [a.mac(), b.mac()];
    let mut pool = a.pool();
    let mut burst: Burst<BufOf<DpdkPort>> = Burst::new();
    let peer = MacAddr([0x02, 0, 0, 0, 0, 0x99]);
    let mut dropped = 0u64;
    let rates = measure(secs, || {
        let mut n = 0;
        for side in Side::ALL {
            let (rx, tx) = (side.idx(), side.other().idx());
            ports[rx].rx_burst(&mut pool, &mut burst, 32);
            n += burst.len();
            for m in burst.iter_mut() {
                rewrite::l2(m.data_mut(), peer, macs[tx]);
            }
            ports[tx].tx_burst(&mut pool, &mut burst);
            for m in burst.drain(..) {
                dropped += 1;
                pool.free(m);
            }
        }
        n
    });
    eprintln!("l2: {dropped} packets refused by tx (freed)");
    rates
}

/// A port whose received frames are overwritten with templates, round robin; with none,
/// frames pass unchanged.
struct TemplatePort<P: Port> {
    inner: P,
    frames: Vec<Vec<u8>>,
    next: usize,
}

impl<P: Port> Port for TemplatePort<P> {
    type Pool = P::Pool;

    fn rx_burst(&mut self, pool: &mut P::Pool, out: &mut Burst<BufOf<P>>, max: usize) {
        let start = out.len();
        self.inner.rx_burst(pool, out, max);
        if self.frames.is_empty() {
            return;
        }
        for b in &mut out[start..] {
            let f = &self.frames[self.next];
            self.next = if self.next + 1 == self.frames.len() {
                0
            } else {
                self.next + 1
            };
            if b.set_len(f.len()) {
                b.data_mut().copy_from_slice(f);
            }
        }
    }

    fn tx_burst(&mut self, pool: &mut P::Pool, pkts: &mut Burst<BufOf<P>>) -> usize {
        self.inner.tx_burst(pool, pkts)
    }

    fn stats(&mut self) -> PortStats {
        self.inner.stats()
    }
}

fn pipeline(eal: &dpdk::Eal, cfg: &DeviceConfig, a: &Device, b: &Device, secs: u64) -> Vec<f64> {
    // Open every flow through ring devices, reading the NAT port of each from the
    // translated query.
    let ring = |n| dpdk::ring_device(eal, n, cfg, 4096).unwrap_or_else(|e| fail(&e.to_string()));
    let (ra, mut pa) = ring("cmpa");
    let (rc, mut pc) = ring("cmpc");
    let macs = [a.mac(), b.mac()];
    let wrap = |inner| TemplatePort {
        inner,
        frames: Vec::new(),
        next: 0,
    };
    let queue = Queue {
        access: wrap(ra.port(0)),
        core: wrap(rc.port(0)),
        pool: a.pool(),
        access_peer: pa.remove(0),
        core_peer: pc.remove(0),
    };
    let mut g = Gateway::new(macs, vec![queue], 1024);
    g.now = Instant::now();
    let mut up = Vec::new();
    let mut down = Vec::new();
    let payload = [0x5a; 18];
    for i in 1..=SUBSCRIBERS {
        g.session(i);
        for f in 0..FLOWS_EACH {
            let q = gateway::query(i, 10_000 + f, macs[0], &payload);
            g.send(0, Side::Access, &q);
            up.push(q);
        }
        g.poll();
        for out in g.take(0, Side::Core) {
            let (nat_port, server) = gateway::nat_of(&out);
            down.push(gateway::answer(macs[1], server, nat_port, &payload));
        }
    }
    let flows = up.len();
    assert_eq!(down.len(), flows, "every query was translated");
    // Spread consecutive packets over subscribers.
    let stride = |v: Vec<Vec<u8>>| -> Vec<Vec<u8>> {
        let n = v.len();
        let k = FLOWS_EACH as usize;
        (0..n)
            .map(|j| v[(j % (n / k)) * k + j / (n / k)].clone())
            .collect()
    };
    let mut worker = g.workers.pop().expect("one worker").with_ports(
        TemplatePort {
            inner: a.port(0),
            frames: stride(up),
            next: 0,
        },
        TemplatePort {
            inner: b.port(0),
            frames: stride(down),
            next: 0,
        },
    );
    let before = worker.report(0, Instant::now()).counters;
    eprintln!(
        "pipeline: {} sessions, {flows} flows",
        worker.pipeline().sessions.len()
    );
    let mut received = 0u64;
    let rates = measure(secs, || {
        let n = worker.poll(Instant::now());
        received += n as u64;
        n
    });
    let c = worker.report(0, Instant::now()).counters;
    let drops = c.total_drops() - before.total_drops();
    let forwarded = c.forwarded - before.forwarded;
    eprintln!("pipeline: {received} received, {forwarded} forwarded, {drops} dropped");
    if drops > received / 1000 {
        for r in tollgate_dataplane::DropReason::ALL {
            let d = c.dropped(*r) - before.dropped(*r);
            if d > 0 {
                eprintln!("  {}: {d}", r.name());
            }
        }
        fail("the pipeline dropped packets: the measurement is not of forwarding");
    }
    rates
}
