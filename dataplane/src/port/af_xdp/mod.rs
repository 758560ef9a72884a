//! AF_XDP port (feature `af_xdp`): any Linux interface through XDP sockets, the frames
//! received straight into memory the worker processes in place and sends from.
//!
//! The pieces, and who owns them:
//!
//! - [`XdpInterface`]: one per interface. It loads Tollgate's XDP program
//!   (`ffi/xdp/bpf/xsk_redirect.bpf.c`, through libbpf), tells it which frames stay with
//!   the kernel ([`KernelRules`], none by default) and attaches it in the driver's native
//!   mode, or in generic mode where the driver has none ([`XdpMode`]). The program sends
//!   every other frame to the socket of the queue it arrived on. It is detached when the
//!   last port on the interface is dropped, or when the process dies (a BPF link).
//! - [`Umem`]: one region of frames shared by every socket of the engine, split into one
//!   [`XdpPool`] per worker ([`umem`]).
//! - [`AfXdpPort`]: one socket, bound to one queue of one interface, owned by one worker,
//!   with its four rings. [`Port::rx_burst`] takes the frames the kernel wrote (the
//!   buffer is the frame: no copy) and tops up the fill ring from the worker's pool;
//!   [`Port::tx_burst`] puts frames on the tx ring and kicks the kernel once
//!   (`sendto`), and the frames come back to the pool through the completion ring.
//!
//! **Modes.** In native mode the driver runs the program on its receive path; with
//! zero-copy ([`ZeroCopy`]) the NIC reads and writes the frames itself. veth has native
//! XDP but no zero-copy: the kernel copies each frame once into the UMEM, and sending
//! builds a packet from the frame. On veth the program runs in the softirq of the sending
//! side (whichever CPU sent to the peer), not on the gateway's core.
//!
//! **Queues.** A socket receives only from the queue it is bound to. One worker serves
//! one queue number on each interface, so an interface needs as many queues as there are
//! workers (a NIC: `ethtool -L IF combined N`; veth: `numrxqueues`/`numtxqueues`). A NIC
//! spreads flows over its queues by its own hash, and veth delivers on the queue the
//! sender used, so a packet can reach a worker that does not own its state: the workers
//! hand such packets to their owners ([`crate::handoff`]).
//!
//! **Overload.** Frames that arrive faster than the worker takes them are dropped by the
//! kernel when the rx ring is full (`rx_dropped`), or when the fill ring has no free
//! frame (`rx_no_buffer`): before they cost the worker anything. The rx ring's size
//! bounds the queueing delay (1024 frames are 1 ms at 1 Mpps); there are no per-frame
//! timestamps to drop late frames at the head by, as the AF_PACKET port does.
//!
//! **What the kernel gives.** The frame as the driver received it. Offloads that change
//! frames for the stack (a VLAN tag in metadata, a checksum left partial by a sender on
//! the same host) are not undone here as the AF_PACKET port undoes them: a NIC delivers
//! complete frames, and on veth a local sender must not leave checksums to offload
//! (`ethtool -K IF tx off` on the sending side).

mod netif;
mod program;
mod ring;
pub mod umem;

use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;
use std::sync::Arc;

pub use umem::{FRAME_HEADROOM, Umem, UmemError, XdpBuf, XdpPool};

use crate::buf::{BufPool, Burst, PacketBuf};
use crate::types::MacAddr;

use super::{Port, PortStats};
use program::Program;
use ring::{Consumer, Producer, RingMap};

/// Ethernet header, and what an 802.1Q tag adds.
const ETH_HLEN: usize = 14;
const VLAN_HLEN: usize = 4;
const ETHERTYPE_VLAN: u16 = 0x8100;
/// Fewest free fill slots worth a refill.
const REFILL_BATCH: u32 = 32;
/// Most `sendto` calls one tx burst makes in copy mode (the kernel sends up to 32 frames
/// per call).
const MAX_KICKS: usize = 8;
/// How long binding waits for a queue that a closed socket is still leaving.
const BUSY_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

/// How the XDP program is attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XdpMode {
    /// Native where the driver has it, else generic (the port says which it got).
    Auto,
    /// In the driver (`XDP_FLAGS_DRV_MODE`); an error where the driver has none.
    Native,
    /// In the kernel's generic receive path (`XDP_FLAGS_SKB_MODE`): any interface, slower.
    Generic,
}

impl XdpMode {
    /// The config spelling.
    pub fn name(self) -> &'static str {
        match self {
            XdpMode::Auto => "auto",
            XdpMode::Native => "native",
            XdpMode::Generic => "generic",
        }
    }
}

/// Whether sockets use zero-copy (the NIC reads and writes the frames).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ZeroCopy {
    /// Zero-copy where the driver supports it, else copy.
    Auto,
    /// Zero-copy or an error.
    On,
    /// Always copy.
    Off,
}

/// Frames the XDP program leaves to the kernel instead of the gateway: frames whose
/// ethertype (outer, or inner behind one VLAN tag) is listed, and IPv4 frames to a listed
/// destination prefix. At most [`xdp_sys::MAX_RULES`] of each.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KernelRules {
    /// Ethertypes, e.g. 0x88cc (LLDP).
    pub ethertypes: Vec<u16>,
    /// IPv4 destination prefixes (address, length), e.g. the host's management address.
    pub prefixes: Vec<(Ipv4Addr, u8)>,
}

impl KernelRules {
    /// Checks the counts and prefix lengths.
    ///
    /// # Errors
    /// What is wrong, in words.
    pub fn check(&self) -> Result<(), String> {
        let max = xdp_sys::MAX_RULES;
        if self.ethertypes.len() > max || self.prefixes.len() > max {
            return Err(format!("at most {max} ethertypes and {max} prefixes"));
        }
        if let Some((a, l)) = self.prefixes.iter().find(|(_, l)| *l > 32) {
            return Err(format!("{a}/{l}: a prefix length is at most 32"));
        }
        Ok(())
    }

    fn to_raw(&self) -> xdp_sys::Rules {
        let mut r = xdp_sys::Rules::default();
        for (d, e) in r.ethertype.iter_mut().zip(&self.ethertypes) {
            *d = e.to_be();
            r.ethertypes += 1;
        }
        for (d, (addr, len)) in r.prefix.iter_mut().zip(&self.prefixes) {
            let mask = crate::fib::prefix_mask(*len);
            *d = [(u32::from(*addr) & mask).to_be(), mask.to_be()];
            r.prefixes += 1;
        }
        r
    }
}

/// Settings of an [`XdpInterface`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InterfaceConfig {
    /// The interface, e.g. `acc0`.
    pub interface: String,
    /// How to attach the program.
    pub mode: XdpMode,
    /// Frames left to the kernel.
    pub kernel: KernelRules,
}

impl InterfaceConfig {
    /// Defaults for `interface`: native mode where the driver has it, nothing for the
    /// kernel.
    pub fn new(interface: impl Into<String>) -> Self {
        InterfaceConfig {
            interface: interface.into(),
            mode: XdpMode::Auto,
            kernel: KernelRules::default(),
        }
    }
}

pub use super::af_xdp_defaults::*;

/// Settings of one [`AfXdpPort`]'s socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SocketConfig {
    /// The queue to bind to (the worker's index).
    pub queue: u32,
    /// Zero-copy or copy.
    pub zero_copy: ZeroCopy,
    /// Descriptors in the rx ring (a power of two): the frames that may wait for the
    /// worker.
    pub rx_ring: u32,
    /// Descriptors in the tx ring (a power of two).
    pub tx_ring: u32,
    /// Slots in the fill ring (a power of two): free frames the kernel can receive into.
    pub fill_ring: u32,
    /// Slots in the completion ring (a power of two, at least `tx_ring`).
    pub completion_ring: u32,
    /// Frames the fill ring leaves in the worker's pool for sending, holding and handing
    /// off.
    pub keep_in_pool: usize,
}

impl SocketConfig {
    /// Defaults for `queue`: 1024 rx and tx descriptors, 2048 fill and completion slots,
    /// zero-copy where supported, 512 frames kept in the pool. The fill ring is twice the
    /// rx ring so that a worker that falls behind shows as a full rx ring, not as a fill
    /// ring drained into it.
    pub fn new(queue: u32) -> Self {
        SocketConfig {
            queue,
            zero_copy: ZeroCopy::Auto,
            rx_ring: DEFAULT_RX_RING,
            tx_ring: DEFAULT_TX_RING,
            fill_ring: DEFAULT_FILL_RING,
            completion_ring: DEFAULT_COMPLETION_RING,
            keep_in_pool: 512,
        }
    }
}

/// Why an AF_XDP port could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum AfXdpError {
    /// The name cannot be an interface name.
    #[error("invalid interface name {0:?}: expected 1 to 15 bytes without NUL")]
    InvalidName(String),
    /// No interface of that name in this network namespace.
    #[error("interface {interface} not found: {source}")]
    NotFound {
        /// The interface.
        interface: String,
        /// The OS error.
        source: io::Error,
    },
    /// Not an Ethernet interface.
    #[error(
        "interface {interface} is not an Ethernet interface (ARPHRD type {hw_type}); AF_XDP ports need Ethernet framing"
    )]
    NotEthernet {
        /// The interface.
        interface: String,
        /// `ARPHRD_*`.
        hw_type: u16,
    },
    /// Reading the interface's MAC or MTU failed.
    #[error("reading the {what} of interface {interface} failed: {source}")]
    InterfaceQuery {
        /// The interface.
        interface: String,
        /// What.
        what: &'static str,
        /// The OS error.
        source: io::Error,
    },
    /// The interface's frames do not fit a UMEM frame.
    #[error(
        "interface {interface} has MTU {mtu}: frames up to {frame} bytes do not fit a {frame_size}-byte AF_XDP frame after its {FRAME_HEADROOM}-byte headroom; set af_xdp.frame_size = 4096 or lower the MTU"
    )]
    MtuTooLargeForFrames {
        /// The interface.
        interface: String,
        /// Its MTU.
        mtu: usize,
        /// Its longest frame (MTU, Ethernet header, one VLAN tag).
        frame: usize,
        /// The UMEM's frame size.
        frame_size: usize,
    },
    /// No privilege for a step.
    #[error("{what} needs root, or CAP_NET_ADMIN, CAP_BPF and CAP_NET_RAW: {source}")]
    PermissionDenied {
        /// The step.
        what: &'static str,
        /// The OS error.
        source: io::Error,
    },
    /// The frames could not be pinned: the memory-lock limit is too low.
    #[error("registering {} MiB of AF_XDP frames was refused: without CAP_IPC_LOCK (root has it) they count against the memory-lock limit; raise it (ulimit -l, LimitMEMLOCK= in a systemd unit) or lower af_xdp.frames: {source}", bytes >> 20)]
    MemoryLock {
        /// The UMEM's size.
        bytes: usize,
        /// The OS error.
        source: io::Error,
    },
    /// The kernel has no XDP sockets.
    #[error(
        "this kernel has no AF_XDP sockets (CONFIG_XDP_SOCKETS, Linux 5.10 or later needed); use backend = \"af_packet\": {source}"
    )]
    NoXdpSockets {
        /// The OS error.
        source: io::Error,
    },
    /// libbpf could not open or load the program.
    #[error("loading the XDP program for {interface} failed: {source}{}", if log.is_empty() { String::new() } else { format!("; libbpf said:\n{log}") })]
    Load {
        /// The interface.
        interface: String,
        /// The error.
        source: io::Error,
        /// libbpf's messages (the verifier's log among them).
        log: String,
    },
    /// Writing a map of the program failed.
    #[error("{what} of the XDP program for {interface} failed: {source}")]
    Map {
        /// The interface.
        interface: String,
        /// The step.
        what: &'static str,
        /// The OS error.
        source: io::Error,
    },
    /// Native mode was asked for and the driver has none.
    #[error(
        "the driver of {interface} has no native XDP: set af_xdp.xdp_mode = \"generic\" (or \"auto\", which falls back to it), or use backend = \"af_packet\""
    )]
    NoNativeXdp {
        /// The interface.
        interface: String,
    },
    /// Another XDP program is on the interface.
    #[error("interface {interface} already has an XDP program{}: another gateway or tool owns it; remove it (ip link set dev {interface} xdp off) or stop its owner", program.map_or(String::new(), |p| format!(" (id {p}, see bpftool prog show id {p})")))]
    InterfaceBusy {
        /// The interface.
        interface: String,
        /// The attached program's id.
        program: Option<u32>,
    },
    /// The MTU is too large for XDP on this driver.
    #[error("the driver of {interface} refuses XDP at this MTU (lower it, e.g. to 1500): {source}")]
    MtuTooLarge {
        /// The interface.
        interface: String,
        /// The OS error.
        source: io::Error,
    },
    /// veth: the peer has more tx queues than this end has rx queues.
    #[error(
        "veth {interface} has fewer receive queues than its peer has transmit queues, which XDP refuses: create both ends with the same numrxqueues and numtxqueues"
    )]
    PeerQueues {
        /// The interface.
        interface: String,
    },
    /// Attaching failed otherwise.
    #[error("attaching the XDP program to {interface} in {mode} mode failed: {source}")]
    Attach {
        /// The interface.
        interface: String,
        /// The mode tried.
        mode: &'static str,
        /// The OS error.
        source: io::Error,
    },
    /// Something that cannot happen with the program Tollgate builds.
    #[error("internal error in the AF_XDP port: {0}")]
    Broken(&'static str),
    /// A socket step failed.
    #[error("{step} for queue {queue} of {interface} failed: {source}")]
    Socket {
        /// The interface.
        interface: String,
        /// The queue.
        queue: u32,
        /// The step.
        step: &'static str,
        /// The OS error.
        source: io::Error,
    },
    /// The ring sizes are invalid.
    #[error("invalid AF_XDP ring sizes: {0}")]
    InvalidRing(String),
    /// Another socket is bound to the queue.
    #[error(
        "queue {queue} of {interface} is busy: another AF_XDP socket (another gateway, or a tool such as xdpsock) is bound to it"
    )]
    QueueBusy {
        /// The interface.
        interface: String,
        /// The queue.
        queue: u32,
    },
    /// The interface has no such queue.
    #[error(
        "interface {interface} has no queue {queue}: each worker needs its own queue; give the interface more (ethtool -L {interface} combined N; veth: numrxqueues and numtxqueues when created) or run fewer workers"
    )]
    NoSuchQueue {
        /// The interface.
        interface: String,
        /// The queue.
        queue: u32,
    },
    /// Zero-copy was asked for and the driver cannot.
    #[error(
        "the driver of {interface} has no AF_XDP zero-copy: set af_xdp.zero_copy = \"auto\" or \"off\""
    )]
    NoZeroCopy {
        /// The interface.
        interface: String,
    },
}

/// The XDP program on one interface, shared by that interface's ports. See the
/// [module docs](self).
pub struct XdpInterface {
    name: String,
    ifindex: u32,
    mac: MacAddr,
    mtu: usize,
    rx_queues: Option<u32>,
    program: Program,
}

impl std::fmt::Debug for XdpInterface {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "XdpInterface({}, {} mode)",
            self.name,
            self.program.mode().name()
        )
    }
}

impl XdpInterface {
    /// Loads, configures and attaches the XDP program on `cfg.interface`. Needs root, or
    /// CAP_NET_ADMIN and CAP_BPF.
    ///
    /// # Errors
    /// A missing or non-Ethernet interface, no privilege, a driver without native XDP
    /// when `Native` was asked for, another program on the interface; each says what to
    /// do.
    pub fn open(cfg: &InterfaceConfig) -> Result<Arc<XdpInterface>, AfXdpError> {
        let name = cfg.interface.as_str();
        let cname =
            netif::checked_name(name).ok_or_else(|| AfXdpError::InvalidName(name.to_string()))?;
        let ifindex = netif::index(&cname).map_err(|source| AfXdpError::NotFound {
            interface: name.to_string(),
            source,
        })?;
        let query = |what, source| AfXdpError::InterfaceQuery {
            interface: name.to_string(),
            what,
            source,
        };
        let (hw_type, mac) = netif::hw_address(&cname).map_err(|e| query("MAC address", e))?;
        if hw_type != libc::ARPHRD_ETHER {
            return Err(AfXdpError::NotEthernet {
                interface: name.to_string(),
                hw_type,
            });
        }
        let mtu = netif::mtu(&cname).map_err(|e| query("MTU", e))?;
        cfg.kernel
            .check()
            .map_err(|_| AfXdpError::Broken("kernel rules not checked"))?;
        let program = Program::attach(name, ifindex, cfg.mode, &cfg.kernel)?;
        Ok(Arc::new(XdpInterface {
            name: name.to_string(),
            ifindex,
            mac,
            mtu,
            rx_queues: netif::rx_queues(&cname),
            program,
        }))
    }

    /// The interface's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its MAC address, read at open.
    pub fn mac(&self) -> MacAddr {
        self.mac
    }

    /// The mode the program got (never `Auto`).
    pub fn mode(&self) -> XdpMode {
        self.program.mode()
    }

    /// Receive queues in use, where the driver says (`ethtool -l`).
    pub fn rx_queues(&self) -> Option<u32> {
        self.rx_queues
    }

    /// Frames a kernel rule has passed to the kernel so far.
    pub fn to_kernel(&self) -> u64 {
        self.program.to_kernel()
    }

    /// The longest frame the interface sends untagged: MTU + Ethernet header.
    fn max_frame(&self) -> usize {
        self.mtu + ETH_HLEN
    }
}

/// A socket on one queue of an interface. See the [module docs](self).
pub struct AfXdpPort {
    rx: Consumer<libc::xdp_desc>,
    tx: Producer<libc::xdp_desc>,
    fill: Producer<u64>,
    completion: Consumer<u64>,
    fd: OwnedFd,
    iface: Arc<XdpInterface>,
    umem: Arc<Umem>,
    base: NonNull<u8>,
    frame_size: usize,
    queue: u32,
    zero_copy: bool,
    keep_in_pool: usize,
    /// The longest untagged frame the interface sends (MTU + Ethernet header).
    max_frame: usize,
    /// Frames this port took from pools and has not given back (in its rings or the
    /// kernel).
    held: usize,
    /// Of these, frames put on the tx ring and not completed yet.
    in_flight: usize,
    /// Frames queued on the tx ring that the last kicks did not get the kernel to take.
    tx_pending: bool,
    /// What the port counts itself.
    own: PortStats,
}

// SAFETY: the port is the only user of its socket and rings (single producer and
// consumer on our side), and its frames are its own (umem module docs); `base` is the
// UMEM's, kept alive by the Arc. Moving the port moves all of that with it.
unsafe impl Send for AfXdpPort {}

impl std::fmt::Debug for AfXdpPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AfXdpPort({} queue {})", self.iface.name, self.queue)
    }
}

impl AfXdpPort {
    /// Opens a socket on queue `cfg.queue` of `iface`, sharing `pool`'s UMEM, fills its
    /// fill ring from `pool` and directs the queue's frames to it.
    ///
    /// # Errors
    /// Invalid ring sizes, no privilege, no XDP sockets in the kernel, a busy or missing
    /// queue, zero-copy asked for and unsupported, a frame size too small for the MTU.
    pub fn open(
        iface: &Arc<XdpInterface>,
        pool: &mut XdpPool,
        cfg: &SocketConfig,
    ) -> Result<AfXdpPort, AfXdpError> {
        let umem = pool.umem().clone();
        let name = iface.name.as_str();
        check_rings(cfg)?;
        let frame_size = umem.frame_size();
        if iface.max_frame() + VLAN_HLEN > frame_size - FRAME_HEADROOM {
            return Err(AfXdpError::MtuTooLargeForFrames {
                interface: name.to_string(),
                mtu: iface.mtu,
                frame: iface.max_frame() + VLAN_HLEN,
                frame_size,
            });
        }
        let queue = cfg.queue;
        let sock_err = |step, source| AfXdpError::Socket {
            interface: name.to_string(),
            queue,
            step,
            source,
        };
        // SAFETY: a plain syscall.
        let fd = unsafe { libc::socket(libc::AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            let source = io::Error::last_os_error();
            return Err(match source.raw_os_error() {
                Some(libc::EPERM | libc::EACCES) => AfXdpError::PermissionDenied {
                    what: "opening an AF_XDP socket",
                    source,
                },
                Some(libc::EAFNOSUPPORT) => AfXdpError::NoXdpSockets { source },
                _ => sock_err("creating the socket", source),
            });
        }
        // SAFETY: a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let raw = fd.as_raw_fd();
        // One registration and bind at a time per UMEM: whether to register the region
        // or share it depends on which sockets are bound.
        let mut bound = umem.bound.lock().unwrap_or_else(|p| p.into_inner());
        if bound.iter().any(|b| (b.1, b.2) == (iface.ifindex, queue)) {
            // The kernel would take this as sharing the other socket's rings.
            return Err(AfXdpError::QueueBusy {
                interface: name.to_string(),
                queue,
            });
        }
        let share_with = bound.first().map(|b| b.0);
        if share_with.is_none() {
            let reg = libc::xdp_umem_reg {
                addr: umem.base().as_ptr() as u64,
                len: umem.len() as u64,
                chunk_size: frame_size as u32,
                headroom: 0,
                flags: 0,
                tx_metadata_len: 0,
            };
            set_xdp_option(raw, libc::XDP_UMEM_REG, &reg).map_err(|source| {
                match source.raw_os_error() {
                    // The pinned frames count against RLIMIT_MEMLOCK without CAP_IPC_LOCK.
                    Some(libc::ENOBUFS | libc::EPERM) => AfXdpError::MemoryLock {
                        bytes: umem.len(),
                        source,
                    },
                    _ => sock_err("registering the UMEM", source),
                }
            })?;
        }
        set_xdp_option(raw, libc::XDP_UMEM_FILL_RING, &cfg.fill_ring)
            .map_err(|e| sock_err("sizing the fill ring", e))?;
        set_xdp_option(raw, libc::XDP_UMEM_COMPLETION_RING, &cfg.completion_ring)
            .map_err(|e| sock_err("sizing the completion ring", e))?;
        set_xdp_option(raw, libc::XDP_RX_RING, &cfg.rx_ring)
            .map_err(|e| sock_err("sizing the rx ring", e))?;
        set_xdp_option(raw, libc::XDP_TX_RING, &cfg.tx_ring)
            .map_err(|e| sock_err("sizing the tx ring", e))?;
        // In copy mode a sent frame is completed only when the packet built from it is
        // freed downstream, and those packets count against the socket's send buffer:
        // the default (about 300 small packets) would throttle sending long before the
        // tx ring is full. Room for the whole ring in flight; SO_SNDBUFFORCE passes the
        // sysctl cap with CAP_NET_ADMIN, SO_SNDBUF is the fallback; either failing only
        // leaves the default.
        let sndbuf = libc::c_int::try_from(cfg.tx_ring as usize * frame_size * 2)
            .unwrap_or(libc::c_int::MAX);
        if set_socket_option(raw, libc::SO_SNDBUFFORCE, &sndbuf).is_err() {
            let _ = set_socket_option(raw, libc::SO_SNDBUF, &sndbuf);
        }
        let off = mmap_offsets(raw).map_err(|e| sock_err("reading the ring offsets", e))?;
        let desc = std::mem::size_of::<libc::xdp_desc>();
        let map = |pgoff: u64, o: &libc::xdp_ring_offset, size: u32, entry: usize, step| {
            RingMap::map(raw, pgoff, o, size, entry).map_err(|e| sock_err(step, e))
        };
        let rx = map(
            libc::XDP_PGOFF_RX_RING as u64,
            &off.rx,
            cfg.rx_ring,
            desc,
            "mapping the rx ring",
        )?;
        let tx = map(
            libc::XDP_PGOFF_TX_RING as u64,
            &off.tx,
            cfg.tx_ring,
            desc,
            "mapping the tx ring",
        )?;
        let fill = map(
            libc::XDP_UMEM_PGOFF_FILL_RING,
            &off.fr,
            cfg.fill_ring,
            8,
            "mapping the fill ring",
        )?;
        let completion = map(
            libc::XDP_UMEM_PGOFF_COMPLETION_RING,
            &off.cr,
            cfg.completion_ring,
            8,
            "mapping the completion ring",
        )?;
        let flags = match share_with {
            Some(_) => libc::XDP_SHARED_UMEM,
            None => {
                libc::XDP_USE_NEED_WAKEUP
                    | match cfg.zero_copy {
                        ZeroCopy::Auto => 0,
                        ZeroCopy::On => libc::XDP_ZEROCOPY,
                        ZeroCopy::Off => libc::XDP_COPY,
                    }
            }
        };
        let addr = libc::sockaddr_xdp {
            sxdp_family: libc::AF_XDP as u16,
            sxdp_flags: flags,
            sxdp_ifindex: iface.ifindex,
            sxdp_queue_id: queue,
            sxdp_shared_umem_fd: share_with.unwrap_or(0) as u32,
        };
        // A socket closed a moment ago (a restart) leaves its queue in a few
        // milliseconds: the kernel releases it from a work queue. Busy for longer is busy.
        let deadline = std::time::Instant::now() + BUSY_WAIT;
        let rc = loop {
            // SAFETY: a valid sockaddr_xdp and its size.
            let rc = unsafe {
                libc::bind(
                    raw,
                    (&raw const addr).cast(),
                    std::mem::size_of::<libc::sockaddr_xdp>() as libc::socklen_t,
                )
            };
            let busy = rc < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EBUSY);
            if !busy || std::time::Instant::now() >= deadline {
                break rc;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        };
        if rc < 0 {
            let source = io::Error::last_os_error();
            let interface = name.to_string();
            return Err(match source.raw_os_error() {
                Some(libc::EBUSY) => AfXdpError::QueueBusy { interface, queue },
                Some(libc::EINVAL) => AfXdpError::NoSuchQueue { interface, queue },
                Some(libc::EOPNOTSUPP) if cfg.zero_copy == ZeroCopy::On => {
                    AfXdpError::NoZeroCopy { interface }
                }
                Some(libc::EPERM | libc::EACCES) => AfXdpError::PermissionDenied {
                    what: "binding an AF_XDP socket",
                    source,
                },
                _ => sock_err("binding the socket", source),
            });
        }
        let zero_copy = xdp_options(raw).map_err(|e| sock_err("reading the socket's mode", e))?
            & libc::XDP_OPTIONS_ZEROCOPY
            != 0;
        bound.push((raw, iface.ifindex, queue));
        drop(bound);
        let mut port = AfXdpPort {
            rx: Consumer::new(rx),
            tx: Producer::new(tx),
            fill: Producer::new(fill),
            completion: Consumer::new(completion),
            fd,
            iface: iface.clone(),
            base: umem.base(),
            umem,
            frame_size,
            queue,
            zero_copy,
            keep_in_pool: cfg.keep_in_pool,
            max_frame: iface.max_frame(),
            held: 0,
            in_flight: 0,
            tx_pending: false,
            own: PortStats::default(),
        };
        port.refill(pool);
        iface
            .program
            .add_socket(queue, raw)
            .map_err(|source| AfXdpError::Map {
                interface: name.to_string(),
                what: "adding the socket to the queue map",
                source,
            })?;
        Ok(port)
    }

    /// Whether the socket runs in zero-copy mode.
    pub fn zero_copy(&self) -> bool {
        self.zero_copy
    }

    /// The interface (its MAC, mode).
    pub fn interface(&self) -> &Arc<XdpInterface> {
        &self.iface
    }

    /// The queue this socket is bound to.
    pub fn queue(&self) -> u32 {
        self.queue
    }

    /// Frames the port holds (its fill, rx, tx and completion rings, and the kernel):
    /// with its pool's free frames, the pool's whole share.
    pub fn frames_held(&self) -> usize {
        self.held
    }

    /// Frames sent and not yet given back by the kernel.
    pub fn frames_in_flight(&self) -> usize {
        self.in_flight
    }

    /// The UMEM address of `buf`'s packet.
    #[inline(always)]
    fn addr_of(&self, buf: &XdpBuf) -> u64 {
        (buf.frame_ptr() as usize - self.base.as_ptr() as usize + buf.start()) as u64
    }

    /// Tops the fill ring up from `pool`, leaving `keep_in_pool` frames there.
    #[inline]
    fn refill(&mut self, pool: &mut XdpPool) {
        let free = self.fill.free(REFILL_BATCH);
        if free < REFILL_BATCH {
            return;
        }
        let n = (free as usize).min(pool.available().saturating_sub(self.keep_in_pool)) as u32;
        let mut put = 0;
        while put < n {
            let Some(addr) = pool.take_addr() else {
                break;
            };
            self.fill.write(put, addr);
            put += 1;
        }
        if put > 0 {
            self.fill.submit(put);
            self.held += put as usize;
        }
    }

    /// Takes the frames the kernel finished sending back into `pool`.
    #[inline]
    fn reclaim(&mut self, pool: &mut XdpPool) {
        let n = self.completion.ready(u32::MAX);
        if n == 0 {
            return;
        }
        for i in 0..n {
            pool.put_addr(self.completion.read(i));
        }
        self.completion.release(n);
        self.held -= n as usize;
        self.in_flight -= n as usize;
    }

    /// Whether the kernel would take `frame`: an Ethernet header at least, at most the
    /// MTU (+4 bytes with an 802.1Q tag).
    #[inline(always)]
    fn sendable(&self, frame: &[u8]) -> bool {
        let len = frame.len();
        let max = self.max_frame;
        len >= ETH_HLEN
            && (len <= max
                || (len <= max + VLAN_HLEN
                    && u16::from_be_bytes([frame[12], frame[13]]) == ETHERTYPE_VLAN))
    }

    /// Makes the kernel send what is on the tx ring. Never blocks. In copy mode each call
    /// sends up to 32 frames, so it repeats (a few times at most) while frames are left.
    fn kick(&mut self) {
        if !self.tx.needs_wakeup() {
            self.tx_pending = false;
            return;
        }
        let kicks = if self.zero_copy { 1 } else { MAX_KICKS };
        for _ in 0..kicks {
            // SAFETY: a plain syscall on our socket; with no buffer it only makes the
            // kernel process the tx ring.
            let rc = unsafe {
                libc::sendto(
                    self.fd.as_raw_fd(),
                    std::ptr::null(),
                    0,
                    libc::MSG_DONTWAIT,
                    std::ptr::null(),
                    0,
                )
            };
            if rc < 0 {
                match io::Error::last_os_error().raw_os_error().unwrap_or(0) {
                    // More to send (the per-call budget) or the device is busy: retry.
                    libc::EAGAIN | libc::EINTR | libc::ENOBUFS => {}
                    // The device dropped a frame (it is completed, not sent).
                    libc::EBUSY => self.own.tx_errors += 1,
                    _ => {
                        self.own.tx_errors += 1;
                        break;
                    }
                }
            }
            if self.zero_copy || self.tx.pending() == 0 {
                break;
            }
        }
        self.tx_pending = !self.zero_copy && self.tx.pending() > 0;
    }
}

impl Port for AfXdpPort {
    type Pool = XdpPool;

    fn rx_burst(&mut self, pool: &mut XdpPool, out: &mut Burst<XdpBuf>, max: usize) {
        self.reclaim(pool);
        if self.tx_pending {
            self.kick();
        }
        let room = max.min(out.remaining_capacity()) as u32;
        let n = self.rx.ready(room);
        let (size, len) = (self.frame_size, self.umem.len());
        for i in 0..n {
            let d = self.rx.read(i);
            let addr = d.addr as usize;
            let off = addr & (size - 1);
            let frame = addr - off;
            if frame >= len || off + d.len as usize > size {
                // The kernel never writes such a descriptor; do not trust it, and do
                // not recycle a frame we cannot name.
                self.own.rx_too_big += 1;
                continue;
            }
            // SAFETY: `frame` is a frame of our UMEM (checked) that the kernel returned
            // on our rx ring, so it is ours from now; the packet lies inside it (checked).
            let buf = unsafe {
                XdpBuf::from_frame(
                    NonNull::new_unchecked(self.base.as_ptr().add(frame)),
                    off,
                    d.len as usize,
                    size,
                )
            };
            out.push(buf);
        }
        if n > 0 {
            self.rx.release(n);
            self.held -= n as usize;
        } else if self.fill.needs_wakeup() {
            // A zero-copy driver waits for a syscall once it ran out of fill frames.
            // SAFETY: a plain syscall on our socket with no buffer.
            unsafe {
                libc::recvfrom(
                    self.fd.as_raw_fd(),
                    std::ptr::null_mut(),
                    0,
                    libc::MSG_DONTWAIT,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                );
            }
        }
        self.refill(pool);
    }

    /// Queues packets from the front of `pkts` on the tx ring and kicks the kernel. A
    /// packet the kernel would refuse is counted in `tx_errors` and removed like a sent
    /// one (its frame goes back to the pool); what does not fit stays in `pkts`.
    fn tx_burst(&mut self, pool: &mut XdpPool, pkts: &mut Burst<XdpBuf>) -> usize {
        self.reclaim(pool);
        let free = self.tx.free(pkts.len() as u32);
        let mut done = 0;
        let mut queued = 0u32;
        for buf in pkts.iter() {
            if !self.sendable(buf.data()) {
                self.own.tx_errors += 1;
                done += 1;
                continue;
            }
            if queued == free {
                break;
            }
            let desc = libc::xdp_desc {
                addr: self.addr_of(buf),
                len: buf.len() as u32,
                options: 0,
            };
            self.tx.write(queued, desc);
            queued += 1;
            done += 1;
        }
        for buf in pkts.drain(..done) {
            // Queued frames are the kernel's now (they come back on the completion ring);
            // refused ones go back to the pool.
            if !self.sendable(buf.data()) {
                pool.free(buf);
            }
        }
        if queued > 0 {
            self.tx.submit(queued);
            self.held += queued as usize;
            self.in_flight += queued as usize;
        }
        if queued > 0 || self.tx_pending {
            self.kick();
        }
        done
    }

    fn stats(&mut self) -> PortStats {
        let mut st = PortStats {
            // The program counts per interface: queue 0's socket reports it, so the sum
            // over workers counts it once.
            rx_to_kernel: if self.queue == 0 {
                self.iface.to_kernel()
            } else {
                0
            },
            ..self.own
        };
        if let Ok(x) = xdp_statistics(self.fd.as_raw_fd()) {
            // Cumulative counters: the kernel's `rx_dropped` counts the fill ring running
            // empty and frames longer than a frame.
            st.rx_dropped += x.rx_ring_full;
            st.rx_no_buffer += x.rx_fill_ring_empty_descs;
            st.rx_too_big += x.rx_dropped.saturating_sub(x.rx_fill_ring_empty_descs);
            st.tx_errors += x.tx_invalid_descs;
        }
        if self.tx_pending {
            self.kick();
        }
        st
    }
}

impl Drop for AfXdpPort {
    fn drop(&mut self) {
        let raw = self.fd.as_raw_fd();
        let mut bound = self.umem.bound.lock().unwrap_or_else(|p| p.into_inner());
        bound.retain(|b| b.0 != raw);
        drop(bound);
        // The socket closes after this (field order: rings unmapped, then the
        // descriptor), which also takes it out of the program's queue map. The frames it
        // held are lost to the pools but accounted for, so the UMEM can be unmapped.
        self.umem.returned(self.held);
    }
}

/// Checks ring sizes before the kernel sees them.
fn check_rings(cfg: &SocketConfig) -> Result<(), AfXdpError> {
    for (name, n) in [
        ("rx_ring", cfg.rx_ring),
        ("tx_ring", cfg.tx_ring),
        ("fill_ring", cfg.fill_ring),
        ("completion_ring", cfg.completion_ring),
    ] {
        if !n.is_power_of_two() || !(64..=1 << 16).contains(&n) {
            return Err(AfXdpError::InvalidRing(format!(
                "{name} {n} must be a power of two from 64 to 65536"
            )));
        }
    }
    if cfg.completion_ring < cfg.tx_ring {
        return Err(AfXdpError::InvalidRing(format!(
            "completion_ring {} must be at least tx_ring {}",
            cfg.completion_ring, cfg.tx_ring
        )));
    }
    Ok(())
}

/// `setsockopt(fd, SOL_XDP, option, value)`.
fn set_xdp_option<T>(fd: RawFd, option: libc::c_int, value: &T) -> io::Result<()> {
    // SAFETY: `value` points to a readable T and we pass its size; the kernel only reads.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_XDP,
            option,
            (value as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `setsockopt(fd, SOL_SOCKET, option, value)`.
fn set_socket_option(fd: RawFd, option: libc::c_int, value: &libc::c_int) -> io::Result<()> {
    // SAFETY: `value` points to a readable int and we pass its size; the kernel only reads.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            option,
            (value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `getsockopt(fd, SOL_XDP, option)` into a zeroed `T`.
fn get_xdp_option<T>(fd: RawFd, option: libc::c_int) -> io::Result<T> {
    // SAFETY: every T used here is plain C data (integers), valid when zeroed.
    let mut v: T = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<T>() as libc::socklen_t;
    // SAFETY: `v` is writable for `len` bytes; the kernel writes at most that.
    let rc = unsafe { libc::getsockopt(fd, libc::SOL_XDP, option, (&raw mut v).cast(), &mut len) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(v)
}

fn mmap_offsets(fd: RawFd) -> io::Result<libc::xdp_mmap_offsets> {
    get_xdp_option(fd, libc::XDP_MMAP_OFFSETS)
}

fn xdp_options(fd: RawFd) -> io::Result<u32> {
    get_xdp_option::<libc::xdp_options>(fd, libc::XDP_OPTIONS).map(|o| o.flags)
}

fn xdp_statistics(fd: RawFd) -> io::Result<libc::xdp_statistics> {
    get_xdp_option(fd, libc::XDP_STATISTICS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_rules_in_the_programs_byte_order() {
        let r = KernelRules {
            ethertypes: vec![0x88cc, 0x0806],
            prefixes: vec![(Ipv4Addr::new(192, 0, 2, 77), 24)],
        };
        assert!(r.check().is_ok());
        let raw = r.to_raw();
        assert_eq!((raw.ethertypes, raw.prefixes), (2, 1));
        assert_eq!(raw.ethertype[0].to_ne_bytes(), [0x88, 0xcc]);
        assert_eq!(raw.prefix[0][0].to_ne_bytes(), [192, 0, 2, 0]);
        assert_eq!(raw.prefix[0][1].to_ne_bytes(), [255, 255, 255, 0]);
        let too_many = KernelRules {
            ethertypes: vec![1; 9],
            ..KernelRules::default()
        };
        assert!(too_many.check().is_err());
        let bad_len = KernelRules {
            prefixes: vec![(Ipv4Addr::UNSPECIFIED, 33)],
            ..KernelRules::default()
        };
        assert!(bad_len.check().is_err());
    }

    #[test]
    fn ring_sizes_are_checked() {
        assert!(check_rings(&SocketConfig::new(0)).is_ok());
        for bad in [
            SocketConfig {
                rx_ring: 1000,
                ..SocketConfig::new(0)
            },
            SocketConfig {
                fill_ring: 32,
                ..SocketConfig::new(0)
            },
            SocketConfig {
                completion_ring: 1024,
                ..SocketConfig::new(0)
            },
        ] {
            assert!(
                matches!(check_rings(&bad), Err(AfXdpError::InvalidRing(_))),
                "{bad:?}"
            );
        }
    }
}
