//! What travels on the rings between the control thread and a worker.
//!
//! Down (control -> worker): [`Command`]s and [`Frame`]s to inject. Up (worker ->
//! control): [`Event`]s, punted [`Frame`]s and [`WorkerReport`]s. Every ring is bounded;
//! the worker counts what it could not push, the control plane retries commands.

use std::net::Ipv4Addr;

use crate::counters::WorkerCounters;
use crate::port::PortStats;
use crate::ring::{Consumer, Producer, ring};
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
}

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
            messages: 1024,
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
