//! What travels on the rings between the control thread and a worker.
//!
//! Down (control -> worker): [`Command`]s and [`Frame`]s to inject. Up (worker ->
//! control): [`Event`]s, punted [`Frame`]s and [`WorkerReport`]s. Every ring is bounded;
//! the worker counts what it could not push, the control plane retries commands.

use std::net::Ipv4Addr;

use crate::counters::WorkerCounters;
use crate::port::PortStats;
use crate::ring::{Consumer, Producer, ring};
use crate::table::flow::FlowRecord;
use crate::table::l2tp::{L2tpCounters, L2tpSessionSpec};
use crate::table::session::{
    ClosedSession, DisconnectCause, SessionCounters, SessionId, SessionSpec, SessionUpdate, VlanKey,
};
use crate::time::Instant;
use crate::types::{MacAddr, Side};

/// The longest frame that can be punted or injected.
pub const FRAME_MAX: usize = 2048;

/// A whole Ethernet frame copied onto a ring, tagged with the side it came from or goes
/// to. Punts and injections are rare (ARP, control protocols), so a copy is fine there.
#[derive(Clone)]
pub struct Frame {
    /// Which port the frame came in on (punt) or goes out of (inject).
    pub side: Side,
    len: u16,
    data: [u8; FRAME_MAX],
}

impl Frame {
    /// A frame holding a copy of `bytes`, or `None` if longer than [`FRAME_MAX`].
    pub fn new(side: Side, bytes: &[u8]) -> Option<Frame> {
        if bytes.len() > FRAME_MAX {
            return None;
        }
        let mut f = Frame {
            side,
            len: bytes.len() as u16,
            data: [0; FRAME_MAX],
        };
        f.data[..bytes.len()].copy_from_slice(bytes);
        Some(f)
    }

    /// The frame bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.data[..self.len as usize]
    }
}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Frame({}, {} bytes)", self.side, self.len)
    }
}

/// An instruction from the control plane. Workers apply commands between bursts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// `ip` is at `mac`: install it, and send what was held for it.
    NeighborSet {
        /// The neighbour.
        ip: Ipv4Addr,
        /// Its MAC address.
        mac: MacAddr,
    },
    /// Resolving `ip` failed: drop what was held for it and stop asking for a while.
    NeighborFailed {
        /// The neighbour.
        ip: Ipv4Addr,
    },
    /// Forget `ip` (expired or removed).
    NeighborDelete {
        /// The neighbour.
        ip: Ipv4Addr,
    },
    /// Push a [`WorkerReport`] tagged `seq` onto the report ring.
    Report {
        /// Echoed in the report so the control plane can match it.
        seq: u64,
    },
    /// Install a subscriber session.
    SessionAdd(SessionSpec),
    /// End a session: its flows' records and its final record follow as events.
    SessionRemove {
        /// The session.
        id: SessionId,
        /// Why (logout, admin, ...).
        cause: DisconnectCause,
    },
    /// Change a session's limits, bandwidth or services live.
    SessionUpdate {
        /// The session.
        id: SessionId,
        /// What changes.
        update: SessionUpdate,
    },
    /// Answer with one [`Event::SessionCounters`] tagged `seq`.
    SessionQuery {
        /// The session.
        id: SessionId,
        /// Echoed.
        seq: u64,
    },
    /// Answer with an [`Event::SessionCounters`] per session, then
    /// [`Event::SessionsReported`], over as many polls as the event ring needs.
    ReportSessions {
        /// Echoed.
        seq: u64,
    },
    /// Attach the IPv6 /64 `prefix` (its upper 64 bits) to a session, or with `None`
    /// take it away (V6-1: one session for both families).
    SessionPrefix6 {
        /// The session.
        id: SessionId,
        /// The /64's upper 64 bits.
        prefix: Option<u64>,
    },
    /// Delegate the IPv6 prefix `prefix` (its upper 64 bits and length, /32 to /64:
    /// DHCPv6 IA_PD) to a session, or with `None` take it away: its packets are the
    /// session's both ways.
    SessionDelegated6 {
        /// The session.
        id: SessionId,
        /// The prefix's upper 64 bits and length.
        prefix: Option<(u64, u8)>,
    },
    /// Install (or replace) an L2TP session: its data messages are decapsulated from now
    /// on. Sent to every worker.
    L2tpSessionSet(L2tpSessionSpec),
    /// Switch the PPPoE leg of a LAC's switched call into L2TP session `session`
    /// (installed before, `subscriber` unspecified): the atomic map switch that moves a
    /// call to another tunnel (TUN-3). A session without a PPPoE leg has nothing to
    /// switch (the removed IP mode steered subscribers by address): refused, as an
    /// unknown session is, with [`Event::L2tpRefused`].
    L2tpSteer {
        /// The subscriber's address.
        subscriber: Ipv4Addr,
        /// Our session id.
        session: u16,
    },
    /// Remove an L2TP session; its subscriber stops being tunnelled if steered into it.
    L2tpSessionRemove {
        /// Our session id.
        session: u16,
    },
    /// Answer with an [`Event::L2tpCounters`] per L2TP session, then
    /// [`Event::L2tpReported`], over as many polls as the event ring needs.
    L2tpReport {
        /// Echoed.
        seq: u64,
    },
}

/// Why a session could not be installed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InstallFailure {
    /// The worker's session table is full.
    TableFull,
    /// Another session has the same id or address, or (PPPoE) the same line, client MAC
    /// and PPPoE session id.
    Duplicate,
    /// A PPPoE session was installed without the client's MAC.
    MacRequired,
}

/// Something a worker tells the control plane.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A packet needs `ip` resolved on `side`.
    Resolve {
        /// The next hop.
        ip: Ipv4Addr,
        /// The side it is on.
        side: Side,
    },
    /// Uplink IPv6 to a host of a connected core prefix whose MAC the snapshot lacks:
    /// solicit it (at most once per address per second per worker).
    Resolve6 {
        /// The host.
        ip: std::net::Ipv6Addr,
    },
    /// A session ended; its final record.
    SessionClosed(ClosedSession),
    /// A session could not be installed.
    SessionInstallFailed {
        /// The session.
        id: SessionId,
        /// Why.
        reason: InstallFailure,
    },
    /// A session's counters, answering a query or a report.
    SessionCounters {
        /// The session.
        id: SessionId,
        /// The query's or report's tag.
        seq: u64,
        /// When they were read.
        at: Instant,
        /// The counters (both families).
        counters: SessionCounters,
        /// The session's last packet either way (its start if none yet).
        last_seen: Instant,
        /// The IPv6 share of `counters` (issue 16), for a session with a /64 or that
        /// had one; `None` otherwise (all of `counters` is IPv4).
        ipv6: Option<SessionCounters>,
    },
    /// A [`Command::ReportSessions`] is complete.
    SessionsReported {
        /// Its tag.
        seq: u64,
        /// Sessions reported.
        sessions: u32,
    },
    /// Uplink traffic from an address without a session (SES-4 punt): at most one per
    /// address per second.
    UnknownSubscriber {
        /// The source address.
        ip: Ipv4Addr,
        /// The source MAC.
        mac: MacAddr,
        /// The VLAN ids of the line it came on (its session belongs there).
        vlans: VlanKey,
        /// When.
        at: Instant,
    },
    /// A NAT flow ended; its accounting record (CNT-3).
    FlowRecord(FlowRecord),
    /// The HTTP Host of a flow's first request, for its record.
    FlowHost {
        /// The flow's slot and generation, as in its [`FlowRecord`].
        flow: (u32, u32),
        /// Bytes used in `host`.
        len: u8,
        /// The host name.
        host: [u8; HOST_MAX],
    },
    /// A subscriber hit its flow limit, or the flow table is full (NAT-6): at most one
    /// per session per second.
    FlowLimit {
        /// The session.
        session: SessionId,
        /// True for a full table, false for the subscriber's own limit.
        table_full: bool,
    },
    /// A flow could not open because this worker has no free NAT port left for its
    /// protocol on any NAT address (NAT-6): at most one per protocol per second while
    /// it lasts.
    NatPortsExhausted {
        /// The IP protocol (TCP, UDP or ICMP).
        protocol: u8,
        /// `nat_no_port` drops on this worker so far, this one included.
        drops: u64,
        /// When.
        at: Instant,
    },
    /// A session installed without a MAC learnt it from its first uplink frame (once per
    /// session, before any record of its end).
    SessionMac {
        /// The session.
        id: SessionId,
        /// The MAC it now keeps to.
        mac: MacAddr,
    },
    /// An L2TP command named a session id the worker cannot hold, or steered into a
    /// session it does not have.
    L2tpRefused {
        /// Our session id.
        session: u16,
    },
    /// An L2TP session's counters, answering [`Command::L2tpReport`].
    L2tpCounters {
        /// Our session id.
        session: u16,
        /// Our tunnel id.
        tunnel: u16,
        /// The report's tag.
        seq: u64,
        /// The counters.
        counters: L2tpCounters,
    },
    /// A [`Command::L2tpReport`] is complete.
    L2tpReported {
        /// Its tag.
        seq: u64,
        /// Sessions reported.
        sessions: u32,
    },
}

/// The longest HTTP Host kept for a flow record.
pub const HOST_MAX: usize = 64;

/// A copy of a worker's counters and port statistics.
#[derive(Clone, Debug)]
pub struct WorkerReport {
    /// Worker index.
    pub worker: u16,
    /// The `seq` of the [`Command::Report`] this answers (0 for the final report).
    pub seq: u64,
    /// When the report was made, on the worker's clock.
    pub at: Instant,
    /// The counters.
    pub counters: WorkerCounters,
    /// What each port backend counts itself, per side.
    pub ports: [PortStats; 2],
    /// Packets in the hold queue now.
    pub held_now: u32,
    /// Neighbour entries in this worker's table.
    pub neighbors: u32,
    /// Sessions installed on this worker now.
    pub sessions: u32,
    /// NAT flows open on this worker now.
    pub flows: u32,
}

/// Ring sizes, from `engine.rings` in the config.
#[derive(Clone, Copy, Debug)]
pub struct RingSizes {
    /// Commands and events.
    pub messages: usize,
    /// Punted and injected frames.
    pub frames: usize,
}

impl Default for RingSizes {
    fn default() -> Self {
        RingSizes {
            messages: 4096,
            frames: 256,
        }
    }
}

/// The worker's ends of its rings.
#[derive(Debug)]
pub struct WorkerEnds {
    /// Commands to apply.
    pub commands: Consumer<Command>,
    /// Frames to send.
    pub inject: Consumer<Frame>,
    /// Events for the control plane.
    pub events: Producer<Event>,
    /// Frames for the control plane.
    pub punt: Producer<Frame>,
    /// Counter reports.
    pub reports: Producer<WorkerReport>,
}

/// The control thread's ends of one worker's rings.
#[derive(Debug)]
pub struct ControlEnds {
    /// Commands for the worker.
    pub commands: Producer<Command>,
    /// Frames for the worker to send.
    pub inject: Producer<Frame>,
    /// Events from the worker.
    pub events: Consumer<Event>,
    /// Frames punted by the worker.
    pub punt: Consumer<Frame>,
    /// Counter reports from the worker.
    pub reports: Consumer<WorkerReport>,
}

/// Makes the ring set of one worker.
pub fn worker_rings(sizes: RingSizes) -> (WorkerEnds, ControlEnds) {
    let (cmd_p, cmd_c) = ring(sizes.messages);
    let (inj_p, inj_c) = ring(sizes.frames);
    let (ev_p, ev_c) = ring(sizes.messages);
    let (punt_p, punt_c) = ring(sizes.frames);
    let (rep_p, rep_c) = ring(4);
    (
        WorkerEnds {
            commands: cmd_c,
            inject: inj_c,
            events: ev_p,
            punt: punt_p,
            reports: rep_p,
        },
        ControlEnds {
            commands: cmd_p,
            inject: inj_p,
            events: ev_c,
            punt: punt_c,
            reports: rep_c,
        },
    )
}
