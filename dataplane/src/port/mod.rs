//! Port backends: where packets come from and go to.
//!
//! One [`Port`] trait, monomorphised into the worker loop. A worker owns one port per
//! side (for multi-queue backends, one queue of each port) and one buffer pool that both
//! of its ports draw from and return to.
//!
//! | backend | for |
//! |---|---|
//! | [`memory`] | tests, benches, the traffic generator |
//! | [`pcap`] | offline replay (`tollgate replay`) |
//! | [`af_packet`] | any Linux interface, real or veth (TPACKET_V3 rx ring, mmap tx ring) |
//! | `af_xdp` | any Linux interface through XDP sockets: native XDP, zero-copy where the driver has it (feature `af_xdp`) |
//! | `dpdk` | DPDK ethdev ports: NICs on hugepages, vdevs (feature `dpdk`) |
//! | [`fault`] | a wrapper that loses packets on purpose |
//!
//! The backends that do I/O (af_packet, pcap, dpdk) come with the `ports` feature (on
//! by default); without it the crate has no libc and no pcap-file, for the sans-I/O
//! control core.

#[cfg(feature = "ports")]
pub mod af_packet;
#[cfg(feature = "af_xdp")]
pub mod af_xdp;

/// The AF_XDP port's default ring sizes, also in a build without the backend (the
/// configuration names them).
pub mod af_xdp_defaults {
    /// Descriptors in each socket's rx ring: the frames that may wait for the worker.
    pub const DEFAULT_RX_RING: u32 = 1024;
    /// Descriptors in each socket's tx ring.
    pub const DEFAULT_TX_RING: u32 = 1024;
    /// Free frames each fill ring offers: twice the rx ring.
    pub const DEFAULT_FILL_RING: u32 = 2048;
    /// Slots in each completion ring.
    pub const DEFAULT_COMPLETION_RING: u32 = 2048;
}
#[cfg(feature = "dpdk")]
pub mod dpdk;
pub mod fault;
pub mod memory;
#[cfg(feature = "ports")]
pub mod pcap;

use crate::buf::{BufPool, Burst};

/// The buffer type a port's pool hands out.
pub type BufOf<P> = <<P as Port>::Pool as BufPool>::Buf;

/// A packet I/O backend.
pub trait Port: Send {
    /// The buffer pool the worker keeps for this port type.
    type Pool: BufPool;

    /// Receives up to `max` packets, appending them to `out`.
    fn rx_burst(&mut self, pool: &mut Self::Pool, out: &mut Burst<BufOf<Self>>, max: usize);

    /// Sends packets from the front of `pkts`, removing the ones sent, and returns how
    /// many were sent. Packets that did not fit stay in `pkts`; the caller frees and counts
    /// them. Never blocks and never spins waiting for room.
    fn tx_burst(&mut self, pool: &mut Self::Pool, pkts: &mut Burst<BufOf<Self>>) -> usize;

    /// What the backend counts itself. May make a syscall: call it between bursts only.
    fn stats(&mut self) -> PortStats;
}

/// The outside end of a port that a test or a traffic generator drives: frames in, frames
/// out ([`memory::MemoryPeer`], and the DPDK ring device's peer).
pub trait Peer {
    /// Queues a frame for the port to receive. False if there is no room.
    fn push_frame(&mut self, frame: &[u8]) -> bool;
    /// Takes every frame the port has sent so far.
    fn take_frames(&mut self) -> Vec<Vec<u8>>;
}

/// Counters a backend keeps below the worker: packets lost before the worker saw them,
/// and how long they waited for it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortStats {
    /// Dropped by the kernel or NIC because the rx ring was full: the worker did not
    /// take frames as fast as they came (over capacity), or did not run for longer than
    /// the ring holds (a stall).
    pub rx_dropped: u64,
    /// Longer than a packet buffer, or truncated by the capture ring.
    pub rx_too_big: u64,
    /// No free buffer for a frame. AF_PACKET and DPDK leave it in the ring and retry on
    /// the next poll; AF_XDP's kernel drops it (the fill ring was empty).
    pub rx_no_buffer: u64,
    /// Sends the kernel or NIC refused.
    pub tx_errors: u64,
    /// Dropped unread at the head of the rx ring because they had waited longer than
    /// the port's delay limit under sustained overload (AF_PACKET's `max_delay_ms`).
    pub rx_late: u64,
    /// Frames the backend left to the kernel on purpose (AF_XDP's kernel rules).
    pub rx_to_kernel: u64,
    /// The longest any frame waited in the rx ring before the worker took it, in
    /// microseconds, where the backend can tell (AF_PACKET, from the ring's timestamps);
    /// 0 otherwise.
    pub rx_max_wait_us: u64,
}

impl PortStats {
    /// Adds `o` into `self` (the longest wait is the longer of the two).
    pub fn accumulate(&mut self, o: &PortStats) {
        self.rx_dropped += o.rx_dropped;
        self.rx_too_big += o.rx_too_big;
        self.rx_no_buffer += o.rx_no_buffer;
        self.tx_errors += o.tx_errors;
        self.rx_late += o.rx_late;
        self.rx_to_kernel += o.rx_to_kernel;
        self.rx_max_wait_us = self.rx_max_wait_us.max(o.rx_max_wait_us);
    }
}
