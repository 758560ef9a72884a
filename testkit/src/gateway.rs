//! A gateway of one or more workers on any port backend, driven from outside through
//! each port's [`Peer`]: for the tests that must hold on every backend (memory ports,
//! DPDK ring devices) and across workers that hand packets to each other.
//!
//! The setup: subscribers `10.10.0.0/24` on the access side, a DNS service on the VIP
//! [`VIP`]`:53` translated to two real servers ([`DNS`], round robin) from the core
//! address [`GW_CORE`], and NAT ports 1024-65535 split between the workers.

use std::net::Ipv4Addr;
use std::time::Duration;

use tollgate_dataplane::handoff;
use tollgate_dataplane::nat::{FlowRecord, NatConfig, Timeouts};
use tollgate_dataplane::port::{BufOf, Peer, Port};
use tollgate_dataplane::service::{Policy, RealServer, Service, Services, SessionType};
use tollgate_dataplane::session::{
    Bandwidth, ClosedSession, DisconnectCause, Limits, ServiceSet, SessionSpec,
};
use tollgate_dataplane::snapshot::Publisher;
use tollgate_dataplane::steer::subscriber_worker;
use tollgate_dataplane::time::Instant;
use tollgate_dataplane::{
    Command, ControlEnds, Event, Forwarding, ForwardingBuilder, MacAddr, RingSizes, Side,
    SideConfig, Unknown, Worker, WorkerConfig, WorkerCounters, worker_rings,
};

use crate::frame::udp_ports;
pub use crate::lab::{GW_ACC, GW_CORE};

/// The DNS service's representative address.
pub const VIP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 10);
/// Its real servers.
pub const DNS: [Ipv4Addr; 2] = [Ipv4Addr::new(192, 0, 2, 31), Ipv4Addr::new(192, 0, 2, 32)];

/// A server's MAC (installed as a static neighbour).
pub fn server_mac(ip: Ipv4Addr) -> MacAddr {
    MacAddr([0x02, 0x20, 0, 0, 0, ip.octets()[3]])
}

/// Subscriber `i`'s address: `10.10.0.(10 + i)`. With two workers, even `i` belongs to
/// worker 0 and odd `i` to worker 1.
pub fn sub_ip(i: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 10, 0, 10 + i)
}

/// Subscriber `i`'s MAC.
pub fn sub_mac(i: u8) -> MacAddr {
    MacAddr([0x02, 0x10, 0, 0, 0, 10 + i])
}

/// The forwarding table for ports with MACs `macs` (access, core).
pub fn forwarding(macs: [MacAddr; 2]) -> Forwarding {
    let dns = Service {
        vip: VIP,
        protocol: 17,
        port: 53,
        policy: Policy::RoundRobin,
        session_type: SessionType::Connection,
        servers: DNS.iter().map(|a| RealServer::new(*a, 53)).collect(),
    };
    ForwardingBuilder::new(
        SideConfig {
            mac: macs[0],
            address: GW_ACC,
            prefix_len: 24,
        },
        SideConfig {
            mac: macs[1],
            address: GW_CORE,
            prefix_len: 24,
        },
    )
    .services(Services::new(vec![dns]).expect("one service"))
    .nat(NatConfig {
        addresses: vec![GW_CORE],
        ports: (1024, 65535),
        timeouts: Timeouts::default(),
    })
    .unknown(Unknown::Drop)
    .build()
    .expect("valid table")
}

/// One worker's ports, its buffer pool, and the far ends of its ports.
pub struct Queue<P: Port, Q> {
    /// Access port.
    pub access: P,
    /// Core port.
    pub core: P,
    /// The worker's pool.
    pub pool: P::Pool,
    /// Far end of the access port.
    pub access_peer: Q,
    /// Far end of the core port.
    pub core_peer: Q,
}

/// The gateway under test.
pub struct Gateway<P: Port, Q: Peer> {
    /// The workers, by index.
    pub workers: Vec<Worker<P>>,
    /// Far ends of each worker's ports: `[access, core]`.
    pub peers: Vec<[Q; 2]>,
    /// Each worker's control-plane ends.
    pub ctl: Vec<ControlEnds>,
    /// Every event the workers sent.
    pub events: Vec<Event>,
    /// The clock.
    pub now: Instant,
    /// The port MACs (access, core).
    pub macs: [MacAddr; 2],
    /// How long to keep polling for frames that cross a real link (veth) and so arrive
    /// some time after they were sent; `None` for ports that deliver at once.
    pub wait: Option<Duration>,
    _publisher: Publisher<Forwarding>,
}

impl<P: Port, Q: Peer> Gateway<P, Q> {
    /// A gateway with one worker per queue. With more than one, the workers hand packets
    /// to each other through rings of `handoff` slots.
    pub fn new(macs: [MacAddr; 2], queues: Vec<Queue<P, Q>>, handoff: usize) -> Self {
        Self::with_table(macs, forwarding(macs), queues, handoff)
    }

    /// [`Gateway::new`] with the forwarding table `fwd` instead of [`forwarding`]'s.
    pub fn with_table(
        macs: [MacAddr; 2],
        fwd: Forwarding,
        queues: Vec<Queue<P, Q>>,
        handoff: usize,
    ) -> Self {
        let n = queues.len() as u16;
        let publisher = Publisher::new(fwd);
        let mut mesh = handoff::mesh::<BufOf<P>>(n, handoff).into_iter();
        let mut g = Gateway {
            workers: Vec::new(),
            peers: Vec::new(),
            ctl: Vec::new(),
            events: Vec::new(),
            now: Instant(1_000_000_000_000),
            macs,
            wait: None,
            _publisher: publisher,
        };
        for (id, q) in queues.into_iter().enumerate() {
            let (w, ctl) = worker_rings(RingSizes {
                messages: 4096,
                frames: 64,
            });
            let cfg = WorkerConfig {
                id: id as u16,
                workers: n,
                ..WorkerConfig::default()
            };
            let reader = g._publisher.reader();
            let mut worker = Worker::new(cfg, q.access, q.core, q.pool, reader, w);
            if n > 1 {
                worker = worker.with_handoff(mesh.next().expect("one end per worker"));
            }
            g.workers.push(worker);
            g.peers.push([q.access_peer, q.core_peer]);
            g.ctl.push(ctl);
        }
        for ip in DNS {
            for c in &mut g.ctl {
                let mac = server_mac(ip);
                c.commands
                    .push(Command::NeighborSet { ip, mac })
                    .expect("room");
            }
        }
        g.poll();
        g
    }

    /// The same gateway, polling for up to `wait` for frames that are still on their way
    /// (ports on real links, where a frame arrives after the send returns).
    pub fn waiting_for_frames(mut self, wait: Duration) -> Self {
        self.wait = Some(wait);
        self
    }

    /// Installs subscriber `i`'s session (id `i`) on the worker that owns it.
    pub fn session(&mut self, i: u8) {
        let owner = subscriber_worker(sub_ip(i), self.workers.len() as u16) as usize;
        let spec = SessionSpec {
            id: i as u32,
            user: 1000 + i as u64,
            channel: i as u32,
            address: sub_ip(i),
            mac: Some(sub_mac(i)),
            started: self.now,
            limits: Limits::default(),
            bandwidth: Bandwidth::default(),
            services: ServiceSet::ALL,
            max_flows: 0,
            access: Default::default(),
        };
        self.ctl[owner]
            .commands
            .push(Command::SessionAdd(spec))
            .expect("room");
        self.poll();
    }

    /// Ends subscriber `i`'s session; its flow records and final record follow.
    pub fn logout(&mut self, i: u8) {
        let owner = subscriber_worker(sub_ip(i), self.workers.len() as u16) as usize;
        let cmd = Command::SessionRemove {
            id: i as u32,
            cause: DisconnectCause::UserRequest,
        };
        self.ctl[owner].commands.push(cmd).expect("room");
        self.poll();
    }

    /// Polls every worker, in order, until a whole round finds nothing to do.
    pub fn poll(&mut self) {
        loop {
            let mut n = 0;
            for (w, c) in self.workers.iter_mut().zip(self.ctl.iter_mut()) {
                n += w.poll(self.now);
                while let Some(e) = c.events.pop() {
                    self.events.push(e);
                }
            }
            if n == 0 {
                return;
            }
        }
    }

    /// Gives `frame` to worker `w`'s port on `side` (as if its queue received it).
    pub fn send(&mut self, w: usize, side: Side, frame: &[u8]) {
        assert!(self.peers[w][side.idx()].push_frame(frame), "port full");
    }

    /// What worker `w`'s port on `side` has sent.
    pub fn take(&mut self, w: usize, side: Side) -> Vec<Vec<u8>> {
        self.peers[w][side.idx()].take_frames()
    }

    /// Each worker's counters.
    pub fn counters(&mut self) -> Vec<WorkerCounters> {
        let now = self.now;
        self.workers
            .iter_mut()
            .map(|w| w.report(0, now).counters)
            .collect()
    }

    /// The counters of all workers together.
    pub fn total(&mut self) -> WorkerCounters {
        let mut t = WorkerCounters::default();
        for c in self.counters() {
            t.accumulate(&c);
        }
        t
    }

    /// Checks each worker's conservation law, and that handing off lost nothing.
    pub fn check_balance(&mut self) {
        let held: Vec<u64> = self.workers.iter().map(|w| w.held() as u64).collect();
        let all = self.counters();
        for (i, c) in all.iter().enumerate() {
            let (a, b) = c.balance(held[i]);
            assert_eq!(a, b, "worker {i}: in {a} != out {b}");
        }
        let t = self.total();
        assert_eq!(
            t.handed_off, t.handoff_received,
            "packets left in handoff rings"
        );
    }

    /// Sessions that ended, in order.
    pub fn closed(&self) -> Vec<ClosedSession> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::SessionClosed(c) => Some(*c),
                _ => None,
            })
            .collect()
    }

    /// Flow records, in order.
    pub fn records(&self) -> Vec<FlowRecord> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::FlowRecord(r) => Some(*r),
                _ => None,
            })
            .collect()
    }
}

/// A DNS query from subscriber `i`'s port `sport` to the VIP, as the subscriber sends it
/// to the access port whose MAC is `port_mac`.
pub fn query(i: u8, sport: u16, port_mac: MacAddr, payload: &[u8]) -> Vec<u8> {
    udp_ports(sub_mac(i), port_mac, sub_ip(i), sport, VIP, 53, 64, payload)
}

/// The query as the gateway sends it to `server` from NAT port `nat_port`.
pub fn query_out(core_mac: MacAddr, server: Ipv4Addr, nat_port: u16, payload: &[u8]) -> Vec<u8> {
    let (m, s) = (server_mac(server), GW_CORE);
    udp_ports(core_mac, m, s, nat_port, server, 53, 63, payload)
}

/// The answer `server` sends to NAT port `nat_port`.
pub fn answer(core_mac: MacAddr, server: Ipv4Addr, nat_port: u16, payload: &[u8]) -> Vec<u8> {
    let m = server_mac(server);
    udp_ports(m, core_mac, server, 53, GW_CORE, nat_port, 64, payload)
}

/// The answer as the gateway sends it to subscriber `i`'s port `sport`.
pub fn answer_out(i: u8, sport: u16, access_mac: MacAddr, payload: &[u8]) -> Vec<u8> {
    udp_ports(
        access_mac,
        sub_mac(i),
        VIP,
        53,
        sub_ip(i),
        sport,
        63,
        payload,
    )
}

/// The NAT port and real server of a translated query (as [`query_out`] builds it).
pub fn nat_of(frame: &[u8]) -> (u16, Ipv4Addr) {
    let ip = &frame[14..];
    let port = u16::from_be_bytes([ip[20], ip[21]]);
    (port, Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]))
}

/// Which worker should send what the owner of subscriber `i` sends.
fn owner_of(g: &Gateway<impl Port, impl Peer>, i: u8) -> usize {
    subscriber_worker(sub_ip(i), g.workers.len() as u16) as usize
}

/// Everything every worker sent on `side`, with the worker that sent it.
fn sent_by_all<P: Port, Q: Peer>(g: &mut Gateway<P, Q>, side: Side) -> Vec<(usize, Vec<u8>)> {
    (0..g.workers.len())
        .flat_map(|w| g.take(w, side).into_iter().map(move |f| (w, f)))
        .collect()
}

/// What every worker sent on `side`: at once, or, on a gateway [waiting for
/// frames](Gateway::waiting_for_frames), polling until at least `want` came or the wait
/// is over.
fn sent_on<P: Port, Q: Peer>(
    g: &mut Gateway<P, Q>,
    side: Side,
    want: usize,
) -> Vec<(usize, Vec<u8>)> {
    let mut got = sent_by_all(g, side);
    let Some(wait) = g.wait else {
        return got;
    };
    let deadline = std::time::Instant::now() + wait;
    while got.len() < want && std::time::Instant::now() < deadline {
        g.poll();
        got.extend(sent_by_all(g, side));
    }
    got
}

/// The scenario every backend and worker count must pass: subscribers 1 and 2 (owned by
/// different workers when there are two) send a query through every worker's access
/// queue, and the server's answer comes in on another worker's core queue. Each packet
/// leaves translated byte for byte from its owner, NAT ports come from the owner's
/// slice, and the session counters, flow records and worker counters are exact.
pub fn check_exact_translation<P: Port, Q: Peer>(g: &mut Gateway<P, Q>) {
    let n = g.workers.len();
    let [acc_mac, core_mac] = g.macs;
    let fwd_nat = forwarding(g.macs).nat;
    let mut expect_up = [(0u64, 0u64); 3];
    let mut expect_down = [(0u64, 0u64); 3];
    let mut crossed = 0;
    for i in [1u8, 2] {
        g.session(i);
        let owner = owner_of(g, i);
        for w in 0..n {
            let sport = 5000 + w as u16;
            let q = vec![i; 20 + w];
            g.send(w, Side::Access, &query(i, sport, acc_mac, &q));
            g.poll();
            let out = sent_on(g, Side::Core, 1);
            assert_eq!(out.len(), 1, "one translated query");
            let (by, frame) = &out[0];
            assert_eq!(*by, owner, "sent by the subscriber's worker");
            let (nat_port, server) = nat_of(frame);
            assert_eq!(frame, &query_out(core_mac, server, nat_port, &q));
            let (lo, hi) = fwd_nat.worker_ports(owner as u16, n as u16);
            assert!(
                (lo..=hi).contains(&nat_port),
                "NAT port from the owner's slice"
            );

            let a = vec![0xa0 | i; 40 + w];
            let rx = (w + 1) % n;
            g.send(rx, Side::Core, &answer(core_mac, server, nat_port, &a));
            g.poll();
            let out = sent_on(g, Side::Access, 1);
            assert_eq!(out, vec![(owner, answer_out(i, sport, acc_mac, &a))]);
            crossed += (w != owner) as u64 + (rx != owner) as u64;
            let up = &mut expect_up[i as usize];
            *up = (up.0 + 1, up.1 + 28 + q.len() as u64);
            let down = &mut expect_down[i as usize];
            *down = (down.0 + 1, down.1 + 28 + a.len() as u64);
        }
    }
    for i in [1u8, 2] {
        g.logout(i);
    }
    let closed = g.closed();
    assert_eq!(closed.len(), 2);
    for c in &closed {
        let i = c.id as usize;
        let s = c.counters;
        assert_eq!(
            (s.tx_packets, s.tx_bytes),
            expect_up[i],
            "session {i} uplink"
        );
        assert_eq!(
            (s.rx_packets, s.rx_bytes),
            expect_down[i],
            "session {i} downlink"
        );
    }
    let records = g.records();
    assert_eq!(records.len(), 2 * n, "one flow per query");
    for r in &records {
        let i = r.session as usize;
        assert_eq!(r.up, (1, 28 + 20 + r.subscriber.1 as u64 - 5000));
        assert_eq!(r.down, (1, 28 + 40 + r.subscriber.1 as u64 - 5000));
        assert_eq!(r.subscriber.0, sub_ip(i as u8));
        assert_eq!(r.vip, (VIP, 53));
    }
    let t = g.total();
    let packets = 4 * n as u64;
    assert_eq!(t.rx_packets(), packets);
    assert_eq!(t.tx_packets(), packets);
    assert_eq!(t.total_drops(), 0);
    assert_eq!(t.handed_off, crossed);
    assert_eq!(t.handoff_received, crossed);
    g.check_balance();
}

/// Worker 0 receives `burst` queries of subscriber 1, whose owner is worker 1, in one
/// burst, with a handoff ring of `ring` slots: what fits is handed off and translated by
/// worker 1, the rest is dropped and counted as `handoff_full`; nothing is lost
/// uncounted.
pub fn check_handoff_overflow<P: Port, Q: Peer>(g: &mut Gateway<P, Q>, burst: usize, ring: usize) {
    assert_eq!(owner_of(g, 1), 1);
    g.session(1);
    let acc_mac = g.macs[0];
    for k in 0..burst {
        g.send(0, Side::Access, &query(1, 6000 + k as u16, acc_mac, b"q"));
    }
    g.workers[0].poll(g.now);
    g.poll();
    let out = sent_by_all(g, Side::Core);
    assert_eq!(out.len(), ring);
    assert!(out.iter().all(|(w, _)| *w == 1));
    let c = g.counters();
    use tollgate_dataplane::DropReason::HandoffFull;
    assert_eq!(c[0].dropped(HandoffFull), (burst - ring) as u64);
    assert_eq!(c[0].handed_off, ring as u64);
    assert_eq!(c[1].handoff_received, ring as u64);
    assert_eq!(c[1].sides[Side::Core.idx()].tx_packets, ring as u64);
    g.check_balance();
}
