//! Tollgate's fast path.
//!
//! A worker owns two ports (the access side, facing subscribers, and the core side,
//! facing servers), polls them in bursts and runs every packet to completion through the
//! stages in [`stage`]. Workers share nothing: each owns its tables and counters and talks
//! to the control thread only through the bounded SPSC rings in [`ring`] and the immutable
//! forwarding snapshot in [`snapshot`].
//!
//! Dependency direction is one way: the control plane drives this crate, never the
//! reverse. Nothing here allocates, locks or makes a syscall per packet, apart from what a
//! port backend needs for its own I/O.

pub mod buf;
pub mod counters;
pub mod cpu;
pub mod fib;
pub mod handoff;
pub mod hold;
pub mod msg;
pub mod port;
pub mod ring;
pub mod service;
pub mod snapshot;
pub mod stage;
pub mod steer;
pub mod table;
pub mod time;
pub mod types;
pub mod wire;
pub mod worker;

// The tables' paths before they moved under `table/`, which the control plane uses.
pub use table::flow as nat;
pub use table::nat64::Nat64Config;
pub use table::{l2tp, lb, session};

pub use buf::{BufPool, Burst, HeapBuf, HeapPool, MAX_BURST, PacketBuf};
pub use counters::{DropReason, SideCounters, WorkerCounters};
pub use fib::{
    DhcpPunt, Forwarding, ForwardingBuilder, Ipv6Forwarding, NextHop, Route, SideConfig, Unknown,
};
pub use msg::{
    Command, ControlEnds, Event, Frame, RingSizes, WorkerEnds, WorkerReport, worker_rings,
};
pub use port::{Port, PortStats};
pub use time::Instant;
pub use types::{MacAddr, Side};
pub use worker::{Worker, WorkerConfig};
