//! Two whole gateways, a LAC and an LNS, each a control core and a worker on memory
//! ports, joined by a simulated line, on a simulated clock (1 ms steps). Every
//! subscriber behind the LAC sends a sequence-numbered UDP datagram to a server behind
//! the LNS every few milliseconds and the server answers each; control messages (and
//! the ARP between the gateways) cross the same line. Checks, from the packets
//! themselves: tunnels and sessions come up (Challenge/Response, hidden AVPs), the
//! consolidation scenario of the issue ends with the brute-force minimum of tunnels, no
//! datagram of any subscriber is lost or duplicated through the moves, and the same
//! holds with 10% of the control messages lost on the line.
//!
//! The subscribers are IP subscribers placed by the L2TP engine's test-only entry
//! (`L2tp::open`, the `sim` feature): the IP mode's config and ctl are gone (docs/l2tp.md,
//! "Migration from IP subscribers"), and this test exercises the administration table,
//! the planner and the fast path's moves through two whole gateways. PPP sessions
//! through the same moves: `control-core/src/l2tp/tests.rs`
//! (`ppp_sessions_are_consolidated_without_loss_and_stay_up`) and the labs
//! `scripts/l2tp-ppp-lab.sh` and `scripts/l2tp-lab.sh`.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use tollgate_control::config::Config;
use tollgate_control::dispatch::Dispatcher;
use tollgate_control::outlets::Outlets;
use tollgate_control::router::{self, AaaOutput};
use tollgate_control::setup;
use tollgate_control_core::gateway::Core;
use tollgate_control_core::gateway::records::WallClock;
use tollgate_control_core::l2tp::{ChannelRequest, L2tp, TunnelState};
use tollgate_dataplane::port::memory::{MemoryPeer, MemoryPort};
use tollgate_dataplane::snapshot::Publisher;
use tollgate_dataplane::time::Instant;
use tollgate_dataplane::{HeapPool, MacAddr, Worker, worker_rings};

const SRV: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
const SRV_MAC: MacAddr = MacAddr([2, 0x20, 0, 0, 0, 0x10]);
const LAC_ACC_MAC: MacAddr = MacAddr([2, 0xa, 0, 0, 0, 1]);
const LNS_CORE_MAC: MacAddr = MacAddr([2, 0xb, 0, 0, 0, 2]);
const M: u64 = 1_000_000;

fn sub(i: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 10, 0, 20 + i)
}

fn sub_mac(i: u8) -> MacAddr {
    MacAddr([2, 0x10, 0, 0, 0, 20 + i])
}

/// (customer, consolidate) and the subscribers (index, customer, level).
const CUSTOMERS: [(&str, bool); 3] = [("acme", true), ("globex", true), ("initech", false)];
const SUBSCRIBERS: [(u8, &str, &str); 12] = [
    (0, "acme", "2M"),
    (1, "acme", "2M"),
    (2, "acme", "2M"),
    (3, "acme", "2M"),
    (4, "acme", "2M"),
    (5, "acme", "1M"),
    (6, "globex", "2M"),
    (7, "globex", "2M"),
    (8, "globex", "5M"),
    (9, "initech", "1M"),
    (10, "initech", "1M"),
    (11, "initech", "1M"),
];

fn lac_config() -> String {
    let mut c = String::from(
        r#"
[access]
backend = "memory"
address = "10.10.0.1/24"
mac = "02:0a:00:00:00:01"
[core]
backend = "memory"
address = "172.16.0.1/24"
mac = "02:0a:00:00:00:02"
[l2tp]
enabled = true
host_name = "lac"
secret = "tunnel secret"
hide_avps = true
sample_interval_ms = 200
[[l2tp.line]]
name = "line1"
peer = "172.16.0.2"
tunnels = 8
tunnel_sessions = 4
tunnel_bandwidth = "10M"
"#,
    );
    for (name, cons) in CUSTOMERS {
        c += &format!("[[l2tp.customer]]\nname = \"{name}\"\nconsolidate = {cons}\n");
    }
    for (i, _, _) in SUBSCRIBERS {
        c += &format!(
            "[[neighbor]]\naddress = \"{}\"\nmac = \"{}\"\n",
            sub(i),
            sub_mac(i)
        );
    }
    c
}

const LNS_CONFIG: &str = r#"
[access]
backend = "memory"
address = "172.16.0.2/24"
mac = "02:0b:00:00:00:01"
[core]
backend = "memory"
address = "192.0.2.1/24"
mac = "02:0b:00:00:00:02"
[[neighbor]]
address = "192.0.2.10"
mac = "02:20:00:00:00:10"
[l2tp]
enabled = true
host_name = "lns"
secret = "tunnel secret"
accept = true
"#;

struct Gateway {
    core: Core,
    worker: Worker<MemoryPort>,
    dispatcher: Dispatcher,
    outlets: Outlets,
    /// What the core asked of logins and accounting, kept.
    aaa: KeptAaa,
    access: MemoryPeer,
    core_side: MemoryPeer,
}

/// Keeps the core's AAA outputs (the usage records the rater would get).
#[derive(Default)]
struct KeptAaa(Vec<AaaOutput>);

impl router::Aaa for KeptAaa {
    fn take(&mut self, _core: &mut Core, _now: Instant, out: AaaOutput) {
        self.0.push(out);
    }
}

impl Gateway {
    fn new(src: &str, now: Instant, seed: u64) -> Gateway {
        let cfg = Config::parse(src, "test.toml").unwrap_or_else(|e| panic!("{e}"));
        let fwd = setup::forwarding(&cfg, setup::configured_macs(&cfg)).unwrap();
        let publisher = Publisher::new(fwd);
        let mut cc = setup::core(&cfg, WallClock::UNIX).unwrap();
        if let Some(l) = cc.l2tp.as_mut() {
            let mut b = [0u8; 32];
            b[..8].copy_from_slice(&seed.to_be_bytes());
            l.seed = tollgate_control::random::Seed::fixed(b);
            // This test's subscribers are IP subscribers (see the header).
            l.ip_calls = true;
        }
        let core = Core::new(now, publisher.current(), cc);
        let (w, c) = worker_rings(setup::rings(&cfg));
        let (a, access) = MemoryPort::with_peer(1 << 14);
        let (k, core_side) = MemoryPort::with_peer(1 << 14);
        let worker = Worker::new(
            setup::worker(&cfg, 0),
            a,
            k,
            HeapPool::new(4096),
            publisher.reader(),
            w,
        );
        let mut outlets = Outlets::new(publisher, "".as_ref(), "".as_ref()).unwrap();
        outlets.kept = Some(Vec::new());
        Gateway {
            core,
            worker,
            dispatcher: Dispatcher::new(vec![c]),
            outlets,
            aaa: KeptAaa::default(),
            access,
            core_side,
        }
    }

    fn step(&mut self, now: Instant) {
        for _ in 0..16 {
            self.worker.poll(now);
            if !router::pass(
                &mut self.core,
                now,
                &mut self.dispatcher,
                &mut self.outlets,
                &mut self.aaa,
            ) {
                break;
            }
        }
    }

    fn l2tp(&self) -> &L2tp {
        self.core.l2tp().expect("l2tp on")
    }
}

fn is_control(frame: &[u8]) -> bool {
    // Ethernet(14) IPv4(20) UDP(8): the L2TP T bit.
    frame.len() > 42 && frame[23] == 17 && frame[42] & 0x80 != 0
}

struct Lab {
    now: Instant,
    lac: Gateway,
    lns: Gateway,
    loss_ppm: u64,
    rng: u64,
    control_lost: u64,
    control_sent: u64,
    next_seq: BTreeMap<u8, u32>,
    up: BTreeMap<Ipv4Addr, Vec<u32>>,
    down: BTreeMap<Ipv4Addr, Vec<u32>>,
}

impl Lab {
    fn new(seed: u64) -> Lab {
        let now = Instant(1_700_000_000_000_000_000);
        let mut lac = Gateway::new(&lac_config(), now, seed);
        for (i, cust, level) in SUBSCRIBERS {
            lac.core.with_l2tp(now, |l| {
                let req = ChannelRequest {
                    address: sub(i),
                    customer: cust.into(),
                    user: sub(i).to_string(),
                    level: level_of(level),
                };
                l.expect("l2tp on").open(now, req).unwrap();
            });
        }
        Lab {
            now,
            lac,
            lns: Gateway::new(LNS_CONFIG, now, seed ^ 0x55),
            loss_ppm: 0,
            rng: seed | 1,
            control_lost: 0,
            control_sent: 0,
            next_seq: BTreeMap::new(),
            up: BTreeMap::new(),
            down: BTreeMap::new(),
        }
    }

    fn lose(&mut self) -> bool {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng % 1_000_000 < self.loss_ppm
    }

    /// One millisecond: subscribers send (every `every` ms), gateways run, the line
    /// carries, the server answers, subscribers receive.
    fn tick(&mut self, send: &[u8], ms: u64) {
        for &i in send {
            let seq = self.next_seq.entry(i).or_default();
            let f = tollgate_testkit::frame::udp(
                sub_mac(i),
                LAC_ACC_MAC,
                sub(i),
                SRV,
                64,
                &seq.to_be_bytes(),
            );
            *seq += 1;
            assert!(self.lac.access.send(f));
        }
        for _ in 0..ms {
            self.now = Instant(self.now.0 + 1_000_000);
            let now = self.now;
            self.lac.step(now);
            self.lns.step(now);
            for f in self.lac.core_side.drain() {
                if is_control(&f) {
                    self.control_sent += 1;
                    if self.lose() {
                        self.control_lost += 1;
                        continue;
                    }
                }
                self.lns.access.send(f);
            }
            for f in self.lns.access.drain() {
                if is_control(&f) {
                    self.control_sent += 1;
                    if self.lose() {
                        self.control_lost += 1;
                        continue;
                    }
                }
                self.lac.core_side.send(f);
            }
            for f in self.lns.core_side.drain() {
                if let Some((src, _, seq)) = udp_seq(&f) {
                    self.up.entry(src).or_default().push(seq);
                    // The server answers, to the subscriber.
                    let back = tollgate_testkit::frame::udp(
                        SRV_MAC,
                        LNS_CORE_MAC,
                        SRV,
                        src,
                        64,
                        &seq.to_be_bytes(),
                    );
                    self.lns.core_side.send(back);
                }
            }
            for f in self.lac.access.drain() {
                if let Some((_, dst, seq)) = udp_seq(&f) {
                    self.down.entry(dst).or_default().push(seq);
                }
            }
        }
    }

    /// Runs with every live subscriber sending every 5 ms until the LAC has settled
    /// (everyone carried, no move in flight) or `max_ms` passed. Returns the time taken.
    fn settle(&mut self, live: &[u8], max_ms: u64) -> u64 {
        let start = self.now;
        let mut stable = 0;
        while self.now.since(start).as_millis() < max_ms as u128 {
            self.tick(live, 5);
            if self.settled() {
                stable += 1;
                if stable > 20 {
                    break;
                }
            } else {
                stable = 0;
            }
        }
        self.now.since(start).as_millis() as u64
    }

    fn settled(&self) -> bool {
        self.lac.l2tp().is_settled()
    }

    fn tunnels_of(&self, customer: &str) -> usize {
        self.lac
            .l2tp()
            .tunnels()
            .values()
            .filter(|t| t.customer_name == customer && t.state == TunnelState::Established)
            .count()
    }

    fn tunnel_of(&self, i: u8) -> u16 {
        let l = self.lac.l2tp();
        let id = l.find(&sub(i).to_string()).unwrap();
        let s = l.subscribers()[&id].session.unwrap();
        l.sessions()[&s].tunnel
    }

    fn close(&mut self, i: u8) {
        let now = self.now;
        self.lac
            .core
            .with_l2tp(now, |l| l.unwrap().close(now, &sub(i).to_string()))
            .unwrap();
    }

    /// Every datagram subscriber `i` sent came through once, in order, both ways.
    fn lossless(&self, i: u8) -> Result<(), String> {
        let sent = self.next_seq.get(&i).copied().unwrap_or(0);
        let want: Vec<u32> = (0..sent).collect();
        for (dir, got) in [("up", &self.up), ("down", &self.down)] {
            let g = got.get(&sub(i)).cloned().unwrap_or_default();
            if g != want {
                let missing: Vec<u32> = want.iter().filter(|s| !g.contains(s)).copied().collect();
                return Err(format!(
                    "{} {dir}: sent {sent}, got {} (missing {:?}, first out of order at {:?})",
                    sub(i),
                    g.len(),
                    &missing[..missing.len().min(10)],
                    g.windows(2).position(|w| w[1] != w[0] + 1)
                ));
            }
        }
        Ok(())
    }
}

fn udp_seq(f: &[u8]) -> Option<(Ipv4Addr, Ipv4Addr, u32)> {
    let p = SlicedPacket::from_ethernet(f).ok()?;
    let Some(NetSlice::Ipv4(ip)) = p.net else {
        return None;
    };
    let Some(TransportSlice::Udp(u)) = p.transport else {
        return None;
    };
    let pl = u.payload();
    Some((
        ip.header().source_addr(),
        ip.header().destination_addr(),
        u32::from_be_bytes(pl.get(..4)?.try_into().ok()?),
    ))
}

/// The fewest tunnels of capacity (4 sessions, 10 Mbit/s) that hold `levels`: an
/// exhaustive search over set partitions, independent of the engine's planner.
fn brute_force(levels: &[u64]) -> usize {
    fn go(i: usize, levels: &[u64], bins: &mut Vec<(u32, u64)>, best: &mut usize) {
        if bins.len() >= *best {
            return;
        }
        if i == levels.len() {
            *best = bins.len();
            return;
        }
        for b in 0..bins.len() {
            let (n, u) = bins[b];
            if n < 4 && u + levels[i] <= 10 * M {
                bins[b] = (n + 1, u + levels[i]);
                go(i + 1, levels, bins, best);
                bins[b] = (n, u);
            }
        }
        bins.push((1, levels[i]));
        go(i + 1, levels, bins, best);
        bins.pop();
    }
    let mut best = levels.len() + 1;
    go(0, levels, &mut Vec::new(), &mut best);
    if levels.is_empty() { 0 } else { best }
}

fn level_of(l: &str) -> u64 {
    l.trim_end_matches('M').parse::<u64>().unwrap() * M
}

/// The scenario: 12 sessions of 3 customers come up over 4 tunnels; four end in a
/// scripted order; consolidation moves sessions into the freed room and tears empty
/// tunnels down. Returns the lab, the moved subscribers, and the time each phase took
/// to settle (ms).
fn scenario(seed: u64, loss_ppm: u64) -> (Lab, Vec<u8>, Vec<u64>) {
    let mut lab = Lab::new(seed);
    lab.loss_ppm = loss_ppm;
    let mut live: Vec<u8> = (0..12).collect();
    // Traffic starts once everyone is carried (before, a stranger's packets are dropped).
    let mut times = vec![lab.settle(&[], 120_000)];
    assert!(lab.settled(), "the 12 sessions come up");
    assert_eq!(
        (
            lab.tunnels_of("acme"),
            lab.tunnels_of("globex"),
            lab.tunnels_of("initech")
        ),
        (2, 1, 1),
        "12 sessions over 4 tunnels"
    );
    let before: BTreeMap<u8, u16> = live.iter().map(|i| (*i, lab.tunnel_of(*i))).collect();
    // Traffic for a while (tunnel use is recorded in whole seconds).
    for _ in 0..300 {
        lab.tick(&live, 5);
    }
    for i in [0u8, 1, 6, 9] {
        lab.close(i);
        live.retain(|x| *x != i);
        times.push(lab.settle(&live, 120_000));
        assert!(lab.settled(), "settles after {} ends", sub(i));
    }
    // Let the last datagrams through.
    lab.tick(&[], 50);
    for (c, _) in CUSTOMERS.iter().filter(|c| c.1) {
        let levels: Vec<u64> = SUBSCRIBERS
            .iter()
            .filter(|s| s.1 == *c && live.contains(&s.0))
            .map(|s| level_of(s.2))
            .collect();
        assert_eq!(
            lab.tunnels_of(c),
            brute_force(&levels),
            "{c}: {levels:?}; {:?}\n{}",
            lab.lac.l2tp().stats(),
            lab.lac
                .l2tp()
                .tunnels()
                .keys()
                .map(
                    |t| tollgate_control::ctl::l2tp::tunnel(lab.lac.l2tp(), *t, lab.now)
                        .unwrap()
                        .to_string()
                )
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    assert_eq!(lab.tunnels_of("initech"), 1);
    let moved: Vec<u8> = live
        .iter()
        .copied()
        .filter(|i| lab.tunnel_of(*i) != before[i])
        .collect();
    (lab, moved, times)
}

#[test]
fn consolidation_through_two_gateways_loses_no_packet() {
    let (lab, moved, times) = scenario(7, 0);
    eprintln!("settle times (ms) without loss: {times:?}; moved: {moved:?}");
    assert!(!moved.is_empty(), "some session was moved");
    for i in (0..12).filter(|i| ![0, 1, 6, 9].contains(i)) {
        lab.lossless(i).unwrap();
    }
    let st = lab.lac.l2tp().stats();
    assert_eq!(st.moves_failed, 0);
    assert!(st.moves_done as usize >= moved.len());
    // The LNS carried out every switchover and holds one session per subscriber.
    let lns = lab.lns.l2tp();
    assert_eq!(lns.sessions().len(), 8, "{:?}", lns.sessions().keys());
    assert_eq!(lns.stats().auth_failures, 0);
    // Tunnel-use records went out for the torn-down tunnels.
    let records = lab.lac.outlets.kept.as_ref().unwrap();
    assert!(
        records
            .iter()
            .any(|(_, l)| l.contains("\"type\":\"tunnel\"")),
        "tunnel-use records"
    );
    // The same records go to the rater (TUN-5 charged by the daemon when it rates).
    let file = records
        .iter()
        .filter(|(_, l)| l.contains("\"type\":\"tunnel\""))
        .count();
    let rated = lab
        .lac
        .aaa
        .0
        .iter()
        .filter(|o| {
            matches!(
                o,
                AaaOutput::Usage(tollgate_control_core::rating::Record::Tunnel(_))
            )
        })
        .count();
    assert_eq!(rated, file, "every tunnel-use record reaches the rater too");
}

#[test]
fn ten_percent_control_loss_converges_and_loses_no_data() {
    let mut worst = 0;
    for seed in [3u64, 11, 29] {
        let (lab, moved, times) = scenario(seed, 100_000);
        eprintln!(
            "seed {seed}: control messages lost {}/{}; settle times (ms) {times:?}; moved {moved:?}",
            lab.control_lost, lab.control_sent
        );
        assert!(lab.control_lost > 0);
        for i in (0..12).filter(|i| ![0, 1, 6, 9].contains(i)) {
            lab.lossless(i).unwrap();
        }
        worst = worst.max(*times.iter().max().unwrap());
    }
    eprintln!("worst settle time under 10% control loss: {worst} ms");
}
