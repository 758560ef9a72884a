//! The worker: one thread, two ports, run-to-completion over fixed bursts.
//!
//! Each [`Worker::poll`] picks up a new forwarding snapshot if one was published, applies
//! pending commands, sends injected frames, then receives a burst on each side, runs every
//! packet through the [`Pipeline`] and sends what is to be sent in one tx burst per side.
//! Nothing in a poll allocates, locks or blocks; time is passed in.
//!
//! With several workers on ports that do not deliver each packet to the worker that owns
//! its state, a worker made [`Worker::with_handoff`] passes such packets to their owner
//! ([`crate::handoff`]) and processes, each poll, what other workers passed to it.

use crate::buf::{BufPool, Burst, MAX_BURST, PacketBuf};
use crate::counters::DropReason;
use crate::fib::Forwarding;
use crate::handoff::{Handed, Handoff};
use crate::hold::{Held, HoldQueue};
use crate::msg::{Command, WorkerEnds, WorkerReport};
use crate::port::{BufOf, Port, PortStats};
use crate::ring::Consumer;
use crate::snapshot::Reader;
use crate::stage::{Pipeline, SubscriberLimits, Verdict};
use crate::steer;
use crate::table::l2tp::L2tpTable;
use crate::table::neighbor::{NeighborTable, NeighborTiming};
use crate::time::Instant;
use crate::types::Side;

/// Per-worker settings, from `engine` and `neighbor` in the config.
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    /// Worker index.
    pub id: u16,
    /// Packets per rx burst (1..=[`MAX_BURST`]).
    pub burst: usize,
    /// Neighbour table size.
    pub neighbor_capacity: usize,
    /// Neighbour timing.
    pub neighbor_timing: NeighborTiming,
    /// Packets that may wait for a neighbour.
    pub hold_capacity: usize,
    /// How long a packet may wait for a neighbour.
    pub hold_timeout_ms: u64,
    /// Commands applied per poll at most.
    pub commands_per_poll: usize,
    /// Workers in the engine (this one's NAT ports are its share of the range).
    pub workers: u16,
    /// Sizes of the subscriber state.
    pub subscribers: SubscriberLimits,
    /// L2TP sessions this worker can hold (0: L2TP off).
    pub l2tp_sessions: u16,
    /// Longest IPv4 packet the L2TP encapsulation may produce.
    pub l2tp_mtu: u16,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            id: 0,
            burst: 32,
            neighbor_capacity: 4096,
            neighbor_timing: NeighborTiming::default(),
            hold_capacity: 64,
            hold_timeout_ms: 3000,
            commands_per_poll: 64,
            workers: 1,
            subscribers: SubscriberLimits::default(),
            l2tp_sessions: 0,
            l2tp_mtu: 1500,
        }
    }
}

/// The worker's ends of the rings that come down from the control plane. (The up ends
/// live in the [`Pipeline`], which pushes to them.)
struct WorkerRings {
    commands: Consumer<Command>,
    inject: Consumer<crate::msg::Frame>,
    reports: crate::ring::Producer<WorkerReport>,
}

struct Io<P: Port> {
    ports: [P; 2],
    pool: P::Pool,
    tx: [Burst<BufOf<P>>; 2],
    tx_queued_bytes: [u64; 2],
}

/// A fast-path worker over ports of type `P`.
pub struct Worker<P: Port> {
    cfg: WorkerConfig,
    io: Io<P>,
    rx: Burst<BufOf<P>>,
    /// With handoff: the packets of a burst that this worker owns.
    mine: Burst<BufOf<P>>,
    pipe: Pipeline,
    hold: HoldQueue<BufOf<P>>,
    fwd: Reader<Forwarding>,
    down: WorkerRings,
    handoff: Option<Handoff<BufOf<P>>>,
}

impl<P: Port> Worker<P> {
    /// A worker owning `access` and `core` and the buffer `pool` they share.
    pub fn new(
        cfg: WorkerConfig,
        access: P,
        core: P,
        pool: P::Pool,
        fwd: Reader<Forwarding>,
        rings: WorkerEnds,
    ) -> Self {
        let cfg = WorkerConfig {
            burst: cfg.burst.clamp(1, MAX_BURST),
            ..cfg
        };
        let snapshot = fwd.get();
        let ports = snapshot.nat.worker_ports(cfg.id, cfg.workers);
        let mut pipe = Pipeline::new(
            NeighborTable::new(cfg.neighbor_capacity, cfg.neighbor_timing),
            rings.events,
            rings.punt,
            snapshot,
            cfg.subscribers,
            ports,
        );
        pipe.l2tp = L2tpTable::new(cfg.l2tp_sessions, cfg.l2tp_mtu);
        Worker {
            io: Io {
                ports: [access, core],
                pool,
                tx: [Burst::new(), Burst::new()],
                tx_queued_bytes: [0; 2],
            },
            rx: Burst::new(),
            mine: Burst::new(),
            pipe,
            hold: HoldQueue::new(cfg.hold_capacity),
            fwd,
            down: WorkerRings {
                commands: rings.commands,
                inject: rings.inject,
                reports: rings.reports,
            },
            handoff: None,
            cfg,
        }
    }

    /// The same worker, passing packets whose state another worker owns to that worker
    /// through `handoff` (this worker's ends of [`crate::handoff::mesh`]), and processing
    /// what the others pass to it. For ports that cannot steer each packet to its owner.
    pub fn with_handoff(mut self, handoff: Handoff<BufOf<P>>) -> Self {
        debug_assert_eq!(handoff.me(), self.cfg.id);
        self.handoff = Some(handoff);
        self
    }

    /// One poll: snapshot, commands, injections, one rx burst per side, expiry. Returns
    /// the packets received.
    pub fn poll(&mut self, now: Instant) -> usize {
        self.pipe.counters.polls += 1;
        self.refresh_snapshot();
        self.apply_commands(now);
        self.inject();
        let mut n = 0;
        for side in Side::ALL {
            n += self.rx_side(side, now);
        }
        n += self.take_handed(now);
        self.expire_held(now);
        self.pipe.tick(self.fwd.get(), now);
        self.pipe.l2tp_tick();
        if n > 0 {
            self.pipe.counters.busy_polls += 1;
        }
        n
    }

    /// Picks up a newly published forwarding snapshot.
    #[inline]
    fn refresh_snapshot(&mut self) {
        if self.fwd.refresh() {
            self.pipe.counters.snapshot_loads += 1;
            let fwd = self.fwd.get();
            self.pipe.icmp_limit.set_rate(fwd.icmp_errors_per_s);
            self.pipe.services_changed(&fwd.services);
        }
    }

    fn rx_side(&mut self, side: Side, now: Instant) -> usize {
        let io = &mut self.io;
        io.ports[side.idx()].rx_burst(&mut io.pool, &mut self.rx, self.cfg.burst);
        let n = self.rx.len();
        if n == 0 {
            return 0;
        }
        let fwd = self.fwd.get();
        let c = &mut self.pipe.counters.sides[side.idx()];
        for b in self.rx.iter() {
            c.rx_bytes += b.len() as u64;
        }
        c.rx_packets += n as u64;
        let Some(h) = &mut self.handoff else {
            let (pipe, hold, io) = (&mut self.pipe, &mut self.hold, &mut self.io);
            run_burst(&mut self.rx, pipe, hold, io, fwd, side, now);
            return n;
        };
        // Ours stay, in order; the others go to their owners. With L2TP on, a data
        // message to this side's address goes to the owner of the packet inside (an
        // LNS's PPP subscriber), not of the LAC's outer header.
        let tunnel = self.pipe.l2tp.is_on().then(|| fwd.side(side).address);
        for buf in self.rx.drain(..) {
            let owner = steer::frame_owner_with(
                side,
                buf.data(),
                h.workers(),
                &fwd.nat,
                &fwd.nat64.pool,
                tunnel,
            );
            match owner.filter(|o| *o != h.me()) {
                None => self.mine.push(buf),
                Some(owner) => match h.send(owner, side, buf) {
                    Ok(()) => self.pipe.counters.handed_off += 1,
                    Err(buf) => {
                        self.pipe.counters.drop(DropReason::HandoffFull);
                        self.io.pool.free(buf);
                    }
                },
            }
        }
        let (pipe, hold, io) = (&mut self.pipe, &mut self.hold, &mut self.io);
        run_burst(&mut self.mine, pipe, hold, io, fwd, side, now);
        n
    }

    /// Processes what other workers handed here: up to a burst from each. With a private
    /// pool, only as many as can be repaid with an empty buffer now (the rest wait).
    fn take_handed(&mut self, now: Instant) -> usize {
        let Some(h) = &mut self.handoff else {
            return 0;
        };
        let pool = &mut self.io.pool;
        if !<P::Pool as BufPool>::SHARED {
            h.collect_repaid(|b| pool.free(b));
        }
        let fwd = self.fwd.get();
        let mut total = 0;
        for from in 0..h.workers() as usize {
            let mut n = h.waiting(from).min(self.cfg.burst);
            if !<P::Pool as BufPool>::SHARED {
                n = n.min(h.repay_room(from)).min(self.io.pool.available());
                for _ in 0..n {
                    if let Some(b) = self.io.pool.alloc() {
                        // Cannot fail: the room was checked and we are the only producer.
                        let _ = h.repay(from, b);
                    }
                }
            }
            // Runs of packets from one side go through the pipeline as one burst.
            let mut side = Side::Access;
            for _ in 0..n {
                let Some(handed) = h.recv(from) else {
                    break;
                };
                if handed.side != side && !self.mine.is_empty() {
                    let (pipe, hold, io) = (&mut self.pipe, &mut self.hold, &mut self.io);
                    run_burst(&mut self.mine, pipe, hold, io, fwd, side, now);
                }
                side = handed.side;
                self.pipe.counters.handoff_received += 1;
                self.mine.push(handed.buf);
            }
            let (pipe, hold, io) = (&mut self.pipe, &mut self.hold, &mut self.io);
            run_burst(&mut self.mine, pipe, hold, io, fwd, side, now);
            total += n;
        }
        total
    }

    /// Applies up to `commands_per_poll` commands. One arm per [`Command`], no wildcard
    /// (the lint below keeps it so): a new command does not compile until a worker
    /// knows what to do with it, instead of going nowhere.
    #[deny(
        clippy::wildcard_enum_match_arm,
        clippy::match_wildcard_for_single_variants
    )]
    fn apply_commands(&mut self, now: Instant) {
        for _ in 0..self.cfg.commands_per_poll {
            let Some(cmd) = self.down.commands.pop() else {
                break;
            };
            self.pipe.counters.commands += 1;
            match cmd {
                Command::NeighborSet { ip, mac } => {
                    self.pipe.neighbors.set(ip, mac);
                    self.release_held(ip, Some(mac));
                }
                Command::NeighborFailed { ip } => {
                    self.pipe.neighbors.fail(ip, now);
                    self.release_held(ip, None);
                }
                Command::NeighborDelete { ip } => self.pipe.neighbors.remove(ip),
                Command::Report { seq } => {
                    let report = self.report(seq, now);
                    // A full report ring means the control plane has not read the last
                    // ones; it will ask again.
                    let _ = self.down.reports.push(report);
                }
                Command::SessionAdd(spec) => self.pipe.session_add(&spec),
                Command::SessionRemove { id, cause } => {
                    self.pipe.session_remove(self.fwd.get(), id, cause, now)
                }
                Command::SessionUpdate { id, update } => self.pipe.session_update(id, &update),
                Command::SessionQuery { id, seq } => self.pipe.session_query(id, seq, now),
                Command::SessionPrefix6 { id, prefix } => self.pipe.session_prefix6(id, prefix),
                Command::SessionDelegated6 { id, prefix } => {
                    self.pipe.session_delegated6(id, prefix)
                }
                Command::ReportSessions { seq } => self.pipe.report_sessions(seq),
                Command::L2tpSessionSet(spec) => self.pipe.l2tp_session_set(&spec),
                Command::L2tpSteer {
                    subscriber,
                    session,
                } => self.pipe.l2tp_steer(subscriber, session),
                Command::L2tpSessionRemove { session } => self.pipe.l2tp_session_remove(session),
                Command::L2tpReport { seq } => self.pipe.l2tp_report(seq),
            }
        }
    }

    /// Sends (with `Some(mac)`) or drops (with `None`) what was held for `ip`.
    fn release_held(&mut self, ip: std::net::Ipv4Addr, mac: Option<crate::types::MacAddr>) {
        let io = &mut self.io;
        let counters = &mut self.pipe.counters;
        let fwd = self.fwd.get();
        self.hold.take_for(ip, |h| match mac {
            Some(mac) => {
                let side = h.side;
                let mut buf = h.buf;
                crate::stage::rewrite::l2(buf.data_mut(), mac, fwd.side(side).mac);
                counters.released += 1;
                io.queue(side, buf, counters);
            }
            None => {
                counters.drop(DropReason::NeighborUnresolved);
                io.pool.free(h.buf);
            }
        });
        io.flush_all(counters);
    }

    fn expire_held(&mut self, now: Instant) {
        let timeout = self.cfg.hold_timeout_ms;
        if self.hold.oldest().is_none_or(|t| now < t.add_ms(timeout)) {
            return;
        }
        // Held at or before `now - timeout`: expired.
        let deadline = Instant(now.0.saturating_sub(timeout * 1_000_000) + 1);
        let io = &mut self.io;
        let counters = &mut self.pipe.counters;
        self.hold.take_older(deadline, |h| {
            counters.drop(DropReason::NeighborUnresolved);
            io.pool.free(h.buf);
        });
    }

    fn inject(&mut self) {
        let io = &mut self.io;
        let counters = &mut self.pipe.counters;
        while !self.down.inject.is_empty() && io.pool.available() > 0 {
            let Some(frame) = self.down.inject.pop() else {
                break;
            };
            let Some(mut buf) = io.pool.alloc() else {
                break;
            };
            if buf.set_len(frame.bytes().len()) {
                buf.data_mut().copy_from_slice(frame.bytes());
                counters.injected += 1;
                io.queue(frame.side, buf, counters);
            } else {
                io.pool.free(buf);
            }
        }
        io.flush_all(counters);
    }

    /// A copy of the counters and port statistics.
    pub fn report(&mut self, seq: u64, now: Instant) -> WorkerReport {
        WorkerReport {
            worker: self.cfg.id,
            seq,
            at: now,
            counters: self.pipe.counters.clone(),
            ports: [self.io.ports[0].stats(), self.io.ports[1].stats()],
            held_now: self.hold.len() as u32,
            neighbors: self.pipe.neighbors.len() as u32,
            sessions: self.pipe.sessions.len() as u32,
            flows: self.pipe.flows.len() as u32,
        }
    }

    /// Stops the worker: drops what is held (counted as `shutdown`), ends every flow and
    /// session (their records follow on the event ring, and what did not fit is
    /// returned), and returns the final report.
    pub fn finish(mut self, now: Instant) -> Finished<P> {
        let io = &mut self.io;
        let counters = &mut self.pipe.counters;
        self.hold.take_all(|h| {
            counters.drop(DropReason::Shutdown);
            io.pool.free(h.buf);
        });
        // Packets other workers handed here and nobody will process: counted as received
        // and dropped, so that the sum over workers stays exact. (The engine stops every
        // worker's polling before any finishes, so nothing arrives after this.)
        if let Some(h) = &mut self.handoff {
            for from in 0..h.workers() as usize {
                while let Some(Handed { buf, .. }) = h.recv(from) {
                    counters.handoff_received += 1;
                    counters.drop(DropReason::Shutdown);
                    if <P::Pool as BufPool>::SHARED {
                        io.pool.free(buf);
                    }
                    // A private pool's buffer belongs to the worker that sent it, which
                    // is stopping too: it is released with its memory.
                }
            }
        }
        self.pipe.close_all(self.fwd.get(), now);
        self.pipe.flush_backlog();
        let report = self.report(0, now);
        let events = self.pipe.backlog.drain(..).collect();
        Finished {
            report,
            ports: self.io.ports,
            events,
        }
    }

    /// The port on `side` (replay sets its clock through this).
    pub fn port_mut(&mut self, side: Side) -> &mut P {
        &mut self.io.ports[side.idx()]
    }

    /// Packets held now.
    pub fn held(&self) -> usize {
        self.hold.len()
    }

    /// The earliest time a poll has work to do without new input: a held packet
    /// expiring, or a session's time condition. For replay, which steps the clock from
    /// deadline to deadline.
    pub fn next_deadline(&self) -> Option<Instant> {
        let held = self
            .hold
            .oldest()
            .map(|t| t.add_ms(self.cfg.hold_timeout_ms));
        [held, self.pipe.next_deadline()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Applies what the control plane sent down (a new snapshot, every queued command,
    /// frames to inject) without receiving anything: replay puts static state in place
    /// this way before the first frame. Returns the commands applied.
    pub fn apply_control(&mut self, now: Instant) -> usize {
        self.refresh_snapshot();
        let mut applied = 0;
        loop {
            let before = self.pipe.counters.commands;
            self.apply_commands(now);
            let n = (self.pipe.counters.commands - before) as usize;
            applied += n;
            if n == 0 {
                break;
            }
        }
        self.inject();
        applied
    }

    /// The earliest instant an open NAT flow times out (a walk over every flow: for
    /// replay's clock once no frame is left, not for every poll).
    pub fn next_flow_deadline(&self) -> Option<Instant> {
        self.pipe.next_flow_deadline(self.fwd.get())
    }

    /// Closes every NAT flow whose timeout fell due by `now` (replay: the per-poll sweep
    /// only looks at a batch of flows).
    pub fn expire_flows(&mut self, now: Instant) {
        let fwd = self.fwd.get();
        self.pipe.expire_flows(fwd, now);
    }

    /// The same worker, state and all, on other ports (benches set up state through one
    /// pair of ports and measure through another).
    pub fn with_ports(mut self, access: P, core: P) -> Self {
        self.io.ports = [access, core];
        self
    }

    /// Changes the rx burst size.
    pub fn set_burst(&mut self, burst: usize) {
        self.cfg.burst = burst.clamp(1, MAX_BURST);
    }

    /// The pipeline (tests inspect sessions and flows).
    pub fn pipeline(&self) -> &Pipeline {
        &self.pipe
    }

    /// This worker's index.
    pub fn id(&self) -> u16 {
        self.cfg.id
    }

    /// Buffers free in the pool (tests check nothing leaks).
    pub fn pool_available(&self) -> usize {
        self.io.pool.available()
    }

    /// Port statistics per side.
    pub fn port_stats(&mut self) -> [PortStats; 2] {
        [self.io.ports[0].stats(), self.io.ports[1].stats()]
    }
}

/// Runs every packet of `burst`, received on `side`, through the pipeline and acts on
/// its verdict: queue it for sending, free it (counting why), or hold it for its
/// neighbour; then sends what was queued. Received and handed-in packets both come here,
/// so that the pipeline has one call site and is inlined into it.
#[inline(never)]
fn run_burst<P: Port>(
    burst: &mut Burst<BufOf<P>>,
    pipe: &mut Pipeline,
    hold: &mut HoldQueue<BufOf<P>>,
    io: &mut Io<P>,
    fwd: &Forwarding,
    side: Side,
    now: Instant,
) {
    if burst.is_empty() {
        return;
    }
    pipe.prefetch(fwd, side, burst);
    // The tx bursts are empty here (every run ends with a flush) and each packet adds
    // at most one to one of them, so they cannot overflow.
    for mut buf in burst.drain(..) {
        match pipe.process(fwd, side, &mut buf, now) {
            Verdict::Forward(out) => {
                pipe.counters.forwarded += 1;
                io.tx_queued_bytes[out.idx()] += buf.len() as u64;
                io.tx[out.idx()].push(buf);
            }
            Verdict::Reply => {
                pipe.counters.replied += 1;
                io.tx_queued_bytes[side.idx()] += buf.len() as u64;
                io.tx[side.idx()].push(buf);
            }
            Verdict::Drop(r) => {
                pipe.counters.drop(r);
                io.pool.free(buf);
            }
            Verdict::Punted => {
                pipe.counters.punted += 1;
                io.pool.free(buf);
            }
            Verdict::Hold(out, next_hop) => {
                let held = Held {
                    buf,
                    side: out,
                    next_hop,
                    since: now,
                };
                match hold.push(held) {
                    Ok(()) => pipe.counters.held += 1,
                    Err(buf) => {
                        pipe.counters.drop(DropReason::NeighborUnresolved);
                        io.pool.free(buf);
                    }
                }
            }
        }
    }
    io.flush_all(&mut pipe.counters);
}

/// What a stopped worker leaves.
pub struct Finished<P: Port> {
    /// Its final report.
    pub report: WorkerReport,
    /// Its ports (replay flushes their files).
    pub ports: [P; 2],
    /// Records that did not fit on the event ring.
    pub events: Vec<crate::msg::Event>,
}

impl<P: Port> Io<P> {
    /// Adds a packet to a side's tx burst, sending the burst first if it is full.
    fn queue(&mut self, side: Side, buf: BufOf<P>, counters: &mut crate::counters::WorkerCounters) {
        if self.tx[side.idx()].is_full() {
            self.flush(side, counters);
        }
        self.tx_queued_bytes[side.idx()] += buf.len() as u64;
        self.tx[side.idx()].push(buf);
    }

    fn flush_all(&mut self, counters: &mut crate::counters::WorkerCounters) {
        for side in Side::ALL {
            self.flush(side, counters);
        }
    }

    /// Sends a side's tx burst; what the port refuses is freed and counted as `tx_full`.
    fn flush(&mut self, side: Side, counters: &mut crate::counters::WorkerCounters) {
        let i = side.idx();
        if self.tx[i].is_empty() {
            return;
        }
        let sent = self.ports[i].tx_burst(&mut self.pool, &mut self.tx[i]);
        let mut unsent_bytes = 0u64;
        for b in self.tx[i].drain(..) {
            unsent_bytes += b.len() as u64;
            counters.drop(DropReason::TxFull);
            self.pool.free(b);
        }
        let c = &mut counters.sides[i];
        c.tx_packets += sent as u64;
        c.tx_bytes += self.tx_queued_bytes[i] - unsent_bytes;
        self.tx_queued_bytes[i] = 0;
    }
}
