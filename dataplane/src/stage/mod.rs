//! The fast-path stages, and the [`Pipeline`] that runs a packet through them.
//!
//! Each stage is a module with plain functions over packet bytes: [`parse`] classifies
//! the frame, [`access`] takes IPv4 off tagged and PPPoE access lines (and puts the
//! gateway's answers back on them), [`arp`] answers for the gateway's addresses, [`forward`] validates and
//! routes IPv4, [`icmp`] answers echo requests and reports expired TTLs, [`refuse`]
//! answers refused services, [`dhcp`] punts DHCP client messages, [`ipv6`] punts IPv6
//! neighbour discovery and forwards sessions' IPv6, [`nat64`] translates it to IPv4 and back, [`http`] reads a request's Host,
//! [`rewrite`] writes the
//! MACs. [`subscriber`] holds the per-subscriber half: sessions (classify, police,
//! check, count) and NAT to load-balanced servers. [`tunnel`] encapsulates and
//! decapsulates L2TP. The pipeline owns the per-worker state the stages use and returns
//! one [`Verdict`] per packet; the worker loop does the I/O.

#![deny(unsafe_code)]

pub mod access;
pub mod arp;
pub mod dhcp;
pub mod forward;
pub mod http;
pub mod icmp;
pub mod ipv6;
pub mod lac;
pub mod lookahead;
pub mod nat64;
pub mod nat64_icmp;
pub mod parse;
pub mod refuse;
pub mod rewrite;
pub mod subscriber;
pub mod tunnel;

use std::collections::VecDeque;
use std::net::Ipv4Addr;

use crate::buf::{MAX_BURST, PacketBuf};
use crate::counters::{DropReason, WorkerCounters};
use crate::fib::{DhcpPunt, Forwarding};
use crate::msg::{Event, Frame};
use crate::ring::Producer;
use crate::table::flow::FlowTable;
use crate::table::flow::balance::Balancer;
use crate::table::l2tp::L2tpTable;
use crate::table::nat64::Nat64Table;
use crate::table::neighbor::{Lookup, NeighborTable};
use crate::table::session::SessionTable;
use crate::time::Instant;
use crate::types::{MacAddr, Side};

/// What happens to a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Send it on this side's port (routed and rewritten).
    Forward(Side),
    /// Send it back out of the port it came in on (the gateway's own answer, built in
    /// the packet's buffer).
    Reply,
    /// Free it and count the reason.
    Drop(DropReason),
    /// It was copied to the control plane; free it.
    Punted,
    /// Keep it until `next_hop` on `side` is resolved.
    Hold(Side, Ipv4Addr),
}

/// Sizes of the per-worker subscriber state.
#[derive(Clone, Copy, Debug)]
pub struct SubscriberLimits {
    /// Sessions this worker can hold.
    pub sessions: usize,
    /// NAT flows this worker can hold.
    pub flows: usize,
    /// Flows a subscriber may have open when its session does not say.
    pub flows_per_subscriber: u32,
    /// Policer burst, in milliseconds of the declared rate.
    pub burst_ms: u64,
    /// Flows checked for expiry per poll.
    pub sweep_per_poll: usize,
    /// Session and flow records kept when the event ring is full.
    pub backlog: usize,
}

impl Default for SubscriberLimits {
    fn default() -> Self {
        SubscriberLimits {
            sessions: 4096,
            flows: 65536,
            flows_per_subscriber: 1024,
            burst_ms: 20,
            sweep_per_poll: 64,
            backlog: 4096,
        }
    }
}

/// The per-worker state the stages use.
pub struct Pipeline {
    /// Next hops resolved by the control plane.
    pub neighbors: NeighborTable,
    /// This worker's counters.
    pub counters: WorkerCounters,
    /// Events for the control plane.
    pub events: Producer<Event>,
    /// Frames for the control plane.
    pub punt: Producer<Frame>,
    /// Paces ICMP errors and TCP resets.
    pub icmp_limit: icmp::TokenBucket,
    /// Subscriber sessions.
    pub sessions: SessionTable,
    /// NAT flows.
    pub flows: FlowTable,
    /// Server choice state.
    pub balancer: Balancer,
    /// Records that found the event ring full, sent first next time.
    pub(crate) backlog: VecDeque<Event>,
    pub(crate) backlog_cap: usize,
    /// Recently reported unknown subscribers (address, when), direct-mapped.
    pub(crate) unknown_seen: Box<[(u32, Instant); 256]>,
    /// Connected IPv6 hosts recently asked about (address, when), direct-mapped.
    pub(crate) resolve6_seen: [(u128, Instant); 16],
    /// Sessions recently told about a flow limit (id, when), direct-mapped.
    pub(crate) limit_seen: Box<[(u32, Instant); 256]>,
    /// When NAT port exhaustion was last reported, per protocol (TCP, UDP, ICMP).
    pub(crate) no_port_seen: [Option<Instant>; 3],
    /// A session report in progress: tag, next slot, sessions so far.
    pub(crate) report: Option<(u64, u32, u32)>,
    pub(crate) sweep_per_poll: usize,
    /// What [`Pipeline::prefetch`] guessed for each packet of the burst, in order, and
    /// how many of them were taken.
    pub(crate) hints: Box<[lookahead::Hint; MAX_BURST]>,
    pub(crate) hint_len: usize,
    pub(crate) hint_next: usize,
    /// L2TP sessions (empty and off unless `l2tp` is configured).
    pub l2tp: L2tpTable,
    /// NAT64 bindings (empty unless `[nat64]` is on).
    pub nat64: Nat64Table,
    /// An L2TP counter report in progress: tag, next session id, sessions so far.
    pub(crate) l2tp_report: Option<(u64, u32, u32)>,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Pipeline({} sessions, {} flows)",
            self.sessions.len(),
            self.flows.len()
        )
    }
}

impl Pipeline {
    /// A pipeline with empty tables.
    pub fn new(
        neighbors: NeighborTable,
        events: Producer<Event>,
        punt: Producer<Frame>,
        fwd: &Forwarding,
        limits: SubscriberLimits,
        ports: (u16, u16),
    ) -> Pipeline {
        let mut p = Pipeline {
            neighbors,
            counters: WorkerCounters::default(),
            events,
            punt,
            icmp_limit: icmp::TokenBucket::new(fwd.icmp_errors_per_s),
            sessions: SessionTable::new(
                limits.sessions,
                limits.burst_ms,
                limits.flows_per_subscriber,
            ),
            flows: FlowTable::new(limits.flows, fwd.nat.addresses.len().max(1), ports),
            balancer: Balancer::default(),
            backlog: VecDeque::with_capacity(limits.backlog),
            backlog_cap: limits.backlog,
            unknown_seen: Box::new([(0, Instant::ZERO); 256]),
            limit_seen: Box::new([(0, Instant::ZERO); 256]),
            resolve6_seen: [(0, Instant::ZERO); 16],
            no_port_seen: [None; 3],
            report: None,
            sweep_per_poll: limits.sweep_per_poll,
            hints: Box::new([lookahead::Hint::NONE; MAX_BURST]),
            hint_len: 0,
            hint_next: 0,
            l2tp: L2tpTable::new(0, 1500),
            nat64: Nat64Table::new(
                if fwd.nat64.on { limits.flows } else { 0 },
                fwd.nat64.pool.len(),
                ports,
            ),
            l2tp_report: None,
        };
        p.services_changed(&fwd.services);
        p
    }

    /// A snapshot with (perhaps) other services arrived: the balancer follows, and the
    /// first `login` service makes the per-login stickiness table (once; a control
    /// event, never a packet).
    pub fn services_changed(&mut self, services: &crate::service::Services) {
        self.balancer.resize(services);
        if services.has_login() {
            self.sessions.enable_sticky();
        }
    }

    /// Runs one received packet through the stages.
    #[inline(always)]
    pub fn process<B: PacketBuf>(
        &mut self,
        fwd: &Forwarding,
        side: Side,
        buf: &mut B,
        now: Instant,
    ) -> Verdict {
        let hint = self.take_hint();
        let port = fwd.side(side);
        let (kind, l3, line) = match side {
            Side::Access => match parse::access(buf.data(), port.mac) {
                Ok(a) => (a.kind, a.l3, a.line),
                Err(r) => return Verdict::Drop(r),
            },
            Side::Core => match parse::ethernet(buf.data(), port.mac) {
                Ok((kind, l3)) => (kind, l3, parse::Line::PLAIN),
                Err(r) => return Verdict::Drop(r),
            },
        };
        // ACC-6: a PPPoE session switched into an L2TP tunnel (LAC), PPP control too.
        if side == Side::Access
            && self.l2tp.switching()
            && let Some(v) = self.lac_uplink(fwd, buf, kind, l3, line, now)
        {
            return v;
        }
        match kind {
            parse::L3Kind::Arp => self.arp(fwd, side, buf.data_mut(), l3),
            parse::L3Kind::PppoeControl => {
                let v = self.punt(side, buf.data());
                if v == Verdict::Punted {
                    self.counters.pppoe_control += 1;
                }
                v
            }
            parse::L3Kind::Ipv6 => self.ipv6(fwd, side, buf, l3, line, now),
            parse::L3Kind::Ipv4 => {
                // DHCP from the access side comes before validation, which would drop a
                // DISCOVER's 0.0.0.0 source (issue 16).
                let dhcp = match (side, fwd.dhcp) {
                    (_, DhcpPunt::Off) | (Side::Core, DhcpPunt::Server) => false,
                    (Side::Access, _) => {
                        line.pppoe.is_none() && dhcp::is_client_message(&buf.data()[l3..])
                    }
                    (Side::Core, DhcpPunt::Relay) => {
                        dhcp::is_relay_reply(&buf.data()[l3..], fwd.side(Side::Access).address)
                    }
                };
                if dhcp {
                    let v = self.punt(side, buf.data());
                    if v == Verdict::Punted {
                        match side {
                            Side::Access => self.counters.dhcp_client += 1,
                            Side::Core => self.counters.dhcp_server += 1,
                        }
                    }
                    return v;
                }
                let h = match forward::validate(&buf.data()[l3..], fwd) {
                    Ok(h) => h,
                    Err(r) => return Verdict::Drop(r),
                };
                // Untagged IPoE; anything else (tags, priority tags, PPPoE) is taken off
                // its line first.
                if l3 == crate::wire::ethernet::HEADER_LEN {
                    self.ipv4(fwd, side, buf, l3, h, line, hint, now)
                } else {
                    self.access_line(fwd, buf, l3, h, line, hint, now)
                }
            }
        }
    }

    /// An IPv4 packet in a plain Ethernet frame (`line` says which access line it came
    /// in on).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn ipv4<B: PacketBuf>(
        &mut self,
        fwd: &Forwarding,
        side: Side,
        buf: &mut B,
        l3: usize,
        h: forward::Header,
        line: parse::Line,
        hint: lookahead::Hint,
        now: Instant,
    ) -> Verdict {
        if self.l2tp.is_on()
            && let Some(v) = self.tunnel(fwd, side, buf, l3, &h, now)
        {
            return v;
        }
        match side {
            Side::Access => self.uplink(fwd, buf, l3, h, line, hint, now),
            Side::Core => self.downlink(fwd, buf, l3, h, now),
        }
    }

    fn arp(&mut self, fwd: &Forwarding, side: Side, frame: &mut [u8], l3: usize) -> Verdict {
        match arp::classify(frame, l3, |ip| fwd.answers_arp(side, ip)) {
            arp::Action::Drop(r) => Verdict::Drop(r),
            arp::Action::Punt => self.punt(side, frame),
            arp::Action::ReplyAndLearn(ip) => {
                self.punt_copy(side, frame);
                arp::reply_in_place(frame, l3, fwd.side(side).mac, ip);
                Verdict::Reply
            }
        }
    }

    /// A packet for the gateway itself: echo requests are answered.
    fn local<B: PacketBuf>(
        &mut self,
        fwd: &Forwarding,
        side: Side,
        buf: &mut B,
        l3: usize,
    ) -> Verdict {
        match icmp::echo_reply(buf.data_mut(), l3, fwd.side(side).mac) {
            Ok(()) => Verdict::Reply,
            Err(r) => Verdict::Drop(r),
        }
    }

    /// A packet whose TTL ran out: dropped, and answered with time-exceeded when the
    /// rate allows.
    fn ttl_expired<B: PacketBuf>(
        &mut self,
        fwd: &Forwarding,
        side: Side,
        buf: &mut B,
        l3: usize,
        now: Instant,
    ) -> Verdict {
        let ours = fwd.side(side);
        if !icmp::may_report(buf.data(), l3) {
            return Verdict::Drop(DropReason::TtlExpired);
        }
        if !self.icmp_limit.take(now) {
            self.counters.icmp_rate_limited += 1;
            return Verdict::Drop(DropReason::TtlExpired);
        }
        if !icmp::time_exceeded(buf, l3, ours.address, ours.mac) {
            return Verdict::Drop(DropReason::TtlExpired);
        }
        // The expired packet is dropped and counted; the error that replaces it in the
        // same buffer is generated and sent back.
        self.counters.drop(DropReason::TtlExpired);
        self.counters.icmp_errors += 1;
        Verdict::Reply
    }

    /// The neighbour MAC of `next_hop`, or what to do while it is unknown.
    #[inline(always)]
    fn neighbor(
        &mut self,
        side: Side,
        next_hop: Ipv4Addr,
        now: Instant,
    ) -> Result<MacAddr, Verdict> {
        match self.neighbors.lookup(next_hop, now) {
            Lookup::Mac(mac) => Ok(mac),
            Lookup::Ask => {
                if self
                    .events
                    .push(Event::Resolve { ip: next_hop, side })
                    .is_err()
                {
                    self.counters.event_ring_full += 1;
                    self.neighbors.unask(next_hop);
                }
                Err(Verdict::Hold(side, next_hop))
            }
            Lookup::Pending => Err(Verdict::Hold(side, next_hop)),
            Lookup::Failed => Err(Verdict::Drop(DropReason::NeighborUnresolved)),
            Lookup::Full => Err(Verdict::Drop(DropReason::NeighborTableFull)),
        }
    }

    /// Hands the frame to the control plane; the packet is consumed.
    fn punt(&mut self, side: Side, frame: &[u8]) -> Verdict {
        if Frame::new(side, frame).is_some_and(|f| self.punt.push(f).is_ok()) {
            Verdict::Punted
        } else {
            Verdict::Drop(DropReason::PuntRingFull)
        }
    }

    /// Sends the control plane a copy of a frame the worker also handles itself.
    fn punt_copy(&mut self, side: Side, frame: &[u8]) {
        if Frame::new(side, frame).is_some_and(|f| self.punt.push(f).is_ok()) {
            self.counters.punt_copies += 1;
        } else {
            self.counters.punt_copies_lost += 1;
        }
    }

    /// Sends a record the control plane must not miss: onto the ring, or into the
    /// backlog when the ring is full (counted as lost only when that is full too).
    pub(crate) fn emit(&mut self, ev: Event) {
        let ev = if self.backlog.is_empty() {
            match self.events.push(ev) {
                Ok(()) => return,
                Err(ev) => ev,
            }
        } else {
            ev
        };
        if self.backlog.len() < self.backlog_cap {
            self.backlog.push_back(ev);
        } else {
            self.counters.events_lost += 1;
        }
    }

    /// Moves backlogged records onto the event ring while it has room.
    pub(crate) fn flush_backlog(&mut self) {
        while let Some(ev) = self.backlog.pop_front() {
            if let Err(ev) = self.events.push(ev) {
                self.backlog.push_front(ev);
                break;
            }
        }
    }
}
