//! AF_PACKET port: any Linux interface, a real NIC or a veth, through two rings the
//! port shares with the kernel by `mmap`.
//!
//! An [`AfPacketPort`] owns two packet sockets bound to one interface, each with its ring:
//!
//! - **Receive**: a `TPACKET_V3` ring of `block_count` blocks of `block_size` bytes. The
//!   kernel packs frames one after another into the current block, each behind a
//!   `tpacket3_hdr`, and hands the whole block over (its `block_status` gets
//!   `TP_STATUS_USER`) when the block is full or `block_timeout_ms` after its first frame.
//!   [`Port::rx_burst`] walks the blocks in ring order, copies each frame into a
//!   [`HeapBuf`] and gives a block back (`TP_STATUS_KERNEL`) once every frame in it has been
//!   copied. It may stop in the middle of a block and resume there on the next call. It
//!   makes no syscall. The socket ignores frames the host itself sends on the interface
//!   (`PACKET_IGNORE_OUTGOING`, Linux 4.20+). It can join a `PACKET_FANOUT_HASH` group,
//!   so that several workers each get one share of the interface's flows.
//! - **Send**: a `TPACKET_V2` ring of fixed `frame_size` slots. Each slot is a
//!   `tpacket2_hdr` with the frame after it at byte 32. [`Port::tx_burst`] copies packets
//!   into slots the kernel has marked `TP_STATUS_AVAILABLE` and marks them
//!   `TP_STATUS_SEND_REQUEST`. Then one non-blocking `sendto` per burst makes the kernel
//!   send every queued slot, straight to the driver (`PACKET_QDISC_BYPASS`). The kernel
//!   marks a slot available again once the driver is done with it. This socket has
//!   protocol 0, so it never receives anything.
//!
//! Ring layout (both rings): blocks are contiguous in the mapping, block `b` at byte
//! `b * block_size`. In the send ring a block holds `block_size / frame_size` slots, and
//! slot `i` is at `(i / per_block) * block_size + (i % per_block) * frame_size`.
//!
//! **Latency.** A V3 block reaches user space only when it is full or when
//! `block_timeout_ms` has passed since its first frame. Under load, blocks fill fast. At
//! idle, a lone frame can wait up to that timeout before the worker sees it.
//!
//! **How long the ring can wait for the worker.** The kernel hands over a block when it
//! is full *or* when its timeout passes, whatever it holds. So at a low rate every block
//! carries only the frames of one timeout, and the ring holds `block_count` x
//! `block_timeout_ms` of traffic, however many bytes it has; at a high rate it holds its
//! bytes' worth (`block_count` x `block_size` / bytes per frame). A worker that does not
//! run for longer than that (a loaded host's scheduler can stall it for tens or hundreds
//! of milliseconds) loses frames to a full ring (`rx_dropped`). The defaults (1024
//! blocks of 8 KiB, 1 ms: 8 MiB per socket) hold about a second at low rates, 125 ms of
//! 64-byte frames at 400 kpps, 60 ms of 1500-byte frames at 1 Gbit/s. More blocks cost
//! memory only; a longer timeout costs idle latency. The longest any frame waited is
//! reported (`rx_max_wait_us`, from the frames' kernel timestamps).
//!
//! **Overload.** A ring that rides out stalls is also a long queue: offered more than it
//! can forward, the worker would take every frame a ring's length late. So, as CoDel
//! does for a queue, the port drops at the head when waiting has lasted: once the blocks
//! it opens have held frames older than `max_delay_ms` for [`OVERLOAD_INTERVAL_MS`] in a
//! row, it gives back every block whose newest frame is older than that without reading
//! it (`rx_late`, the cheapest drop there is: one store per block), and keeps doing so
//! until the blocks have been fresh for that long again. A one-off stall drains within
//! the interval and loses nothing; sustained overload forwards at the worker's rate with
//! at most about `max_delay_ms` of queueing.
//!
//! **What the kernel changes, and what we undo.** A frame the host itself sent on a veth
//! (or through a device with checksum offload) may arrive with a *partial* TCP/UDP
//! checksum (`TP_STATUS_CSUMNOTREADY`): the field holds only the pseudo-header sum. We
//! complete it for IPv4 and IPv6 (no extension headers) with up to two VLAN tags. This
//! assumes the partial checksum is in the outermost TCP/UDP header, which holds for
//! ordinary TCP and UDP traffic. Offloaded inner checksums in tunnels are not handled.
//! The kernel also strips an 802.1Q tag into metadata (`TP_STATUS_VLAN_VALID`). We put
//! the tag back, so the stages see the frame as it was on the wire. GRO, GSO and TSO hand
//! AF_PACKET frames longer than the MTU. Those count as `rx_too_big`, so turn them off
//! on a gateway interface: `ethtool -K IF gro off gso off tso off`.
//!
//! The interface's MTU is read once, at open. A frame longer than MTU + 14 bytes (+ 4 for
//! an 802.1Q-tagged frame) is refused as a `tx_errors`, as the kernel would refuse it.

use std::ffi::CString;
use std::io;
use std::mem::{offset_of, size_of};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::buf::{BufPool, Burst, HeapBuf, HeapPool, PacketBuf};
use crate::types::MacAddr;
use crate::wire::{checksum, tcp, udp};

use super::{Port, PortStats};

/// Ring protocol versions (`enum tpacket_versions` in `linux/if_packet.h`).
const TPACKET_V2: libc::c_int = libc::tpacket_versions::TPACKET_V2 as libc::c_int;
const TPACKET_V3: libc::c_int = libc::tpacket_versions::TPACKET_V3 as libc::c_int;

/// Where a send slot's frame starts: `TPACKET2_HDRLEN - sizeof(struct sockaddr_ll)`,
/// i.e. `TPACKET_ALIGN(sizeof(struct tpacket2_hdr))` = 32 (`linux/if_packet.h`; the
/// kernel's `tpacket_parse_header` uses the same offset unless `PACKET_TX_HAS_OFF` is set).
const TX_DATA_OFFSET: usize = libc::TPACKET2_HDRLEN - size_of::<libc::sockaddr_ll>();
/// `tp_status` and `tp_len` in a `tpacket2_hdr`.
const TX_STATUS: usize = offset_of!(libc::tpacket2_hdr, tp_status);
const TX_LEN: usize = offset_of!(libc::tpacket2_hdr, tp_len);

/// Fields of a V3 block descriptor (`struct tpacket_block_desc` / `tpacket_hdr_v1`).
const BLOCK_HDR: usize = offset_of!(libc::tpacket_block_desc, hdr);
const BLOCK_STATUS: usize = BLOCK_HDR + offset_of!(libc::tpacket_hdr_v1, block_status);
const BLOCK_NUM_PKTS: usize = BLOCK_HDR + offset_of!(libc::tpacket_hdr_v1, num_pkts);
const BLOCK_FIRST_PKT: usize = BLOCK_HDR + offset_of!(libc::tpacket_hdr_v1, offset_to_first_pkt);
/// The newest frame's time in a block (seconds, then nanoseconds in V3).
const BLOCK_TS_LAST: usize = BLOCK_HDR + offset_of!(libc::tpacket_hdr_v1, ts_last_pkt);

/// Fields of a V3 frame header (`struct tpacket3_hdr`).
const PKT_HDR_LEN: usize = size_of::<libc::tpacket3_hdr>();
const PKT_NEXT: usize = offset_of!(libc::tpacket3_hdr, tp_next_offset);
const PKT_SNAPLEN: usize = offset_of!(libc::tpacket3_hdr, tp_snaplen);
const PKT_LEN: usize = offset_of!(libc::tpacket3_hdr, tp_len);
const PKT_STATUS: usize = offset_of!(libc::tpacket3_hdr, tp_status);
const PKT_SEC: usize = offset_of!(libc::tpacket3_hdr, tp_sec);
const PKT_NSEC: usize = offset_of!(libc::tpacket3_hdr, tp_nsec);
const PKT_MAC: usize = offset_of!(libc::tpacket3_hdr, tp_mac);
const PKT_HV1: usize = offset_of!(libc::tpacket3_hdr, hv1);
const PKT_VLAN_TCI: usize = PKT_HV1 + offset_of!(libc::tpacket_hdr_variant1, tp_vlan_tci);
const PKT_VLAN_TPID: usize = PKT_HV1 + offset_of!(libc::tpacket_hdr_variant1, tp_vlan_tpid);

/// The smallest `frame_size`: room for a slot header and a minimum-size Ethernet frame.
const MIN_FRAME_SIZE: usize = 128;
/// Ethernet header, and what an 802.1Q tag adds.
const ETH_HLEN: usize = 14;
const VLAN_HLEN: usize = 4;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_QINQ: u16 = 0x88a8;
const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;

/// Default bytes per receive block.
pub const DEFAULT_BLOCK_SIZE: usize = 8 << 10;
/// Default receive blocks.
pub const DEFAULT_BLOCK_COUNT: usize = 1024;
/// Default block timeout, milliseconds.
pub const DEFAULT_BLOCK_TIMEOUT_MS: u32 = 1;
/// Default head-drop delay, milliseconds.
pub const DEFAULT_MAX_DELAY_MS: u32 = 5;
/// How long the head of the ring must have been late before the port drops there.
pub const OVERLOAD_INTERVAL_MS: u64 = 100;

/// Settings for an [`AfPacketPort`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AfPacketConfig {
    /// The interface, e.g. `tg-acc0`.
    pub interface: String,
    /// Join this `PACKET_FANOUT_HASH` group, so several workers on one interface each
    /// receive a share of its flows. Every member must use the same id. Group ids belong
    /// to the network namespace. `None`: this port receives everything.
    pub fanout_group: Option<u16>,
    /// With a fanout group: the classic BPF program that picks each frame's member
    /// (`PACKET_FANOUT_CBPF`; see [`crate::steer`]) instead of a flow hash. Members are
    /// numbered in the order they joined.
    pub fanout_program: Option<Vec<crate::steer::Insn>>,
    /// Bytes per receive block: a multiple of the page size, at least `frame_size`.
    pub block_size: usize,
    /// Receive blocks in the ring.
    pub block_count: usize,
    /// Send slot size (a frame may be `frame_size - 32` bytes), and the nominal receive
    /// frame size the kernel asks for. A multiple of 16, at least 128.
    pub frame_size: usize,
    /// Send slots in the ring (rounded up to fill the last page).
    pub tx_frames: usize,
    /// How long the kernel waits before it hands over a receive block that is not full
    /// (`tp_retire_blk_tov`, milliseconds). This is the worst idle-time latency. 0 lets
    /// the kernel choose from the link speed (about 8 ms).
    pub block_timeout_ms: u32,
    /// Under sustained overload, blocks whose newest frame waited longer than this
    /// (milliseconds) are dropped at the head of the ring (see the module docs). 0: never
    /// (a traffic generator, which must count every frame).
    pub max_delay_ms: u32,
}

impl AfPacketConfig {
    /// Defaults for `interface`, the gateway's: 1024 receive blocks of 8 KiB (8 MiB, about
    /// a second of a low rate, see the module docs), 2048-byte frames, 1024 send slots
    /// (2 MiB), a 1 ms block timeout, a 5 ms head-drop delay and no fanout.
    pub fn new(interface: impl Into<String>) -> Self {
        AfPacketConfig {
            interface: interface.into(),
            fanout_group: None,
            fanout_program: None,
            block_size: DEFAULT_BLOCK_SIZE,
            block_count: DEFAULT_BLOCK_COUNT,
            frame_size: 2048,
            tx_frames: 1024,
            block_timeout_ms: DEFAULT_BLOCK_TIMEOUT_MS,
            max_delay_ms: DEFAULT_MAX_DELAY_MS,
        }
    }
}

/// Why an [`AfPacketPort`] could not be opened, or an interface queried.
#[derive(Debug, thiserror::Error)]
pub enum AfPacketError {
    /// The name cannot be an interface name: empty, longer than 15 bytes, or with a NUL.
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
    /// The interface does not use Ethernet framing (loopback, tun, ...).
    #[error(
        "interface {interface} is not an Ethernet interface (ARPHRD type {hw_type}); \
         AF_PACKET ports need Ethernet framing"
    )]
    NotEthernet {
        /// The interface.
        interface: String,
        /// The hardware type the kernel reports (`ARPHRD_*`).
        hw_type: u16,
    },
    /// Reading an attribute of the interface (its MAC or MTU) failed.
    #[error("reading the {what} of interface {interface} failed: {source}")]
    InterfaceQuery {
        /// The interface.
        interface: String,
        /// What was being read.
        what: &'static str,
        /// The OS error.
        source: io::Error,
    },
    /// The process may not open packet sockets.
    #[error("opening an AF_PACKET socket needs root or CAP_NET_RAW: {source}")]
    PermissionDenied {
        /// The OS error.
        source: io::Error,
    },
    /// Creating a socket failed for another reason (descriptor limit, no AF_PACKET).
    #[error("creating a socket for interface {interface} failed: {source}")]
    Socket {
        /// The interface.
        interface: String,
        /// The OS error.
        source: io::Error,
    },
    /// The ring settings are invalid. This is checked before asking the kernel.
    #[error("invalid AF_PACKET ring settings for interface {interface}: {reason}")]
    InvalidRing {
        /// The interface.
        interface: String,
        /// What is wrong.
        reason: String,
    },
    /// The kernel refused a socket option the port needs.
    #[error("setting {option} on the AF_PACKET socket for {interface} failed: {source}")]
    SocketOption {
        /// The interface.
        interface: String,
        /// The option, e.g. `PACKET_VERSION`.
        option: &'static str,
        /// The OS error.
        source: io::Error,
    },
    /// The kernel cannot leave our own transmissions out of what we receive.
    #[error(
        "the kernel refused PACKET_IGNORE_OUTGOING on {interface} (needs Linux 4.20 or \
         later): {source}"
    )]
    IgnoreOutgoingUnsupported {
        /// The interface.
        interface: String,
        /// The OS error.
        source: io::Error,
    },
    /// The kernel could not set up a ring, usually for lack of memory.
    #[error(
        "setting up the {ring} ring for {interface} ({bytes} bytes) failed; try a \
         smaller block_size, block_count or tx_frames: {source}"
    )]
    RingSetup {
        /// The interface.
        interface: String,
        /// `receive` or `send`.
        ring: &'static str,
        /// The ring's size.
        bytes: usize,
        /// The OS error.
        source: io::Error,
    },
    /// Mapping a ring into memory failed.
    #[error("mapping the {ring} ring of {interface} ({bytes} bytes) into memory failed: {source}")]
    Mmap {
        /// The interface.
        interface: String,
        /// `receive` or `send`.
        ring: &'static str,
        /// The ring's size.
        bytes: usize,
        /// The OS error.
        source: io::Error,
    },
    /// Binding a socket to the interface failed.
    #[error("binding the AF_PACKET socket to interface {interface} failed: {source}")]
    Bind {
        /// The interface.
        interface: String,
        /// The OS error.
        source: io::Error,
    },
    /// Joining the fanout group failed.
    #[error(
        "joining fanout group {group} on interface {interface} failed (the interface must \
         be up, and every member of a group must use the same fanout mode): {source}"
    )]
    Fanout {
        /// The interface.
        interface: String,
        /// The group id.
        group: u16,
        /// The OS error.
        source: io::Error,
    },
}

/// A port on a Linux interface through AF_PACKET rings. See the [module docs](self).
pub struct AfPacketPort {
    rx: RxRing,
    tx: TxRing,
    stats: PortStats,
    interface: String,
    ifindex: i32,
    mac: MacAddr,
    /// The longest untagged frame the interface sends: MTU + Ethernet header.
    max_frame: usize,
}

impl std::fmt::Debug for AfPacketPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "AfPacketPort({}, ifindex {})",
            self.interface, self.ifindex
        )
    }
}

impl AfPacketPort {
    /// Opens the receive and send rings on `cfg.interface`. Needs root or `CAP_NET_RAW`.
    ///
    /// # Errors
    /// Invalid ring settings or interface name, a missing or non-Ethernet interface, no
    /// privilege, or a kernel that refuses a step (too old, out of memory); the error says
    /// which step and carries the OS error.
    pub fn open(cfg: &AfPacketConfig) -> Result<AfPacketPort, AfPacketError> {
        let name = cfg.interface.as_str();
        let geometry = Geometry::new(cfg, page_size())?;
        let ifindex = interface_index(name)?;
        let mac = interface_mac(name)?;
        let mtu = interface_mtu(name)?;
        let rx = RxRing::open(cfg, ifindex, &geometry)?;
        let tx = TxRing::open(name, ifindex, &geometry)?;
        Ok(AfPacketPort {
            rx,
            tx,
            stats: PortStats::default(),
            interface: cfg.interface.clone(),
            ifindex,
            mac,
            max_frame: mtu + ETH_HLEN,
        })
    }

    /// The interface's MAC address, read at open.
    pub fn mac(&self) -> MacAddr {
        self.mac
    }

    /// The interface's index.
    pub fn ifindex(&self) -> i32 {
        self.ifindex
    }

    /// The interface's name.
    pub fn interface(&self) -> &str {
        &self.interface
    }

    /// Whether the kernel would take `frame` for sending: at least an Ethernet header,
    /// no longer than a slot holds or the MTU allows (+4 bytes if it carries an 802.1Q tag,
    /// as the kernel's `packet_extra_vlan_len_allowed` accepts).
    fn sendable(&self, frame: &[u8]) -> bool {
        let len = frame.len();
        if len < ETH_HLEN || len > self.tx.max_len {
            return false;
        }
        len <= self.max_frame
            || (len <= self.max_frame + VLAN_HLEN
                && u16::from_be_bytes([frame[12], frame[13]]) == ETHERTYPE_VLAN)
    }
}

impl Port for AfPacketPort {
    type Pool = HeapPool;

    fn rx_burst(&mut self, pool: &mut HeapPool, out: &mut Burst<HeapBuf>, max: usize) {
        let room = max.min(out.remaining_capacity());
        let rx = &mut self.rx;
        let stats = &mut self.stats;
        let mut taken = 0;
        // The wall clock (the kernel stamps frames with it), read once per burst and
        // only when a block is opened.
        let mut now = None;
        while taken < room {
            if !rx.open {
                if rx.block_status(rx.block).load(Ordering::Acquire) & libc::TP_STATUS_USER == 0 {
                    if rx.head_drop.dropping {
                        // Caught up with the kernel: as good as a fresh block.
                        let t = *now.get_or_insert_with(realtime_ns);
                        rx.head_drop.drop_block(t, t);
                    }
                    break;
                }
                // SAFETY: we just saw TP_STATUS_USER with acquire ordering: the kernel has
                // handed the block over and does not touch it until we store
                // TP_STATUS_KERNEL; `rx.block < rx.block_count`.
                let block = unsafe { rx.user_block(rx.block) };
                let (count, first) = (
                    ne_u32(block, BLOCK_NUM_PKTS),
                    ne_u32(block, BLOCK_FIRST_PKT),
                );
                let t = *now.get_or_insert_with(realtime_ns);
                if let Some(oldest) = frame_time(block, first as usize) {
                    let waited = t.saturating_sub(oldest) / 1000;
                    stats.rx_max_wait_us = stats.rx_max_wait_us.max(waited);
                }
                if rx.head_drop.drop_block(t, timestamp(block, BLOCK_TS_LAST)) {
                    // Late under sustained overload: dropped unread, where it is cheapest.
                    stats.rx_late += u64::from(count);
                    rx.release_block();
                    continue;
                }
                rx.left = count;
                rx.next = first as usize;
                rx.open = true;
            }
            if rx.left == 0 {
                rx.release_block();
                continue;
            }
            // SAFETY: `rx.open` means we saw TP_STATUS_USER on this block and have not
            // given it back; `rx.block < rx.block_count`.
            let block = unsafe { rx.user_block(rx.block) };
            let Some(frame) = RxFrame::parse(block, rx.next) else {
                // A descriptor pointing outside the block: the kernel never writes one,
                // but do not trust it. Skip the rest of the block.
                stats.rx_dropped += u64::from(rx.left);
                rx.release_block();
                continue;
            };
            let data = &block[frame.data.clone()];
            if frame.truncated {
                stats.rx_too_big += 1;
            } else {
                let Some(mut buf) = pool.alloc() else {
                    // Leave the frame in the ring; the next poll retries it.
                    stats.rx_no_buffer += 1;
                    break;
                };
                if frame.copy_into(data, &mut buf) {
                    out.push(buf);
                    taken += 1;
                } else {
                    stats.rx_too_big += 1;
                    pool.free(buf);
                }
            }
            rx.left -= 1;
            if rx.left == 0 {
                rx.release_block();
            } else if frame.next_offset == 0 {
                // Frames left but no link to the next: as above, do not trust the block.
                stats.rx_dropped += u64::from(rx.left);
                rx.release_block();
            } else {
                rx.next += frame.next_offset as usize;
            }
        }
    }

    /// Queues packets from the front of `pkts` into free slots and kicks the kernel once.
    /// A packet the kernel would refuse (see `sendable`) is counted in `tx_errors` and
    /// removed like a sent one, so the return value is always how many left `pkts`.
    fn tx_burst(&mut self, pool: &mut HeapPool, pkts: &mut Burst<HeapBuf>) -> usize {
        let mut done = 0;
        let mut queued = 0;
        for buf in pkts.iter() {
            let frame = buf.data();
            if !self.sendable(frame) {
                // The kernel would drop it; count it here, where we can see it.
                self.stats.tx_errors += 1;
                done += 1;
                continue;
            }
            let tx = &mut self.tx;
            let slot = tx.slot_offset(tx.next);
            match tx.status(slot).load(Ordering::Acquire) {
                libc::TP_STATUS_AVAILABLE => {}
                // Only without PACKET_LOSS, which we set; count and reuse it if seen.
                libc::TP_STATUS_WRONG_FORMAT => self.stats.tx_errors += 1,
                // Queued or being sent: the ring is full.
                _ => break,
            }
            tx.fill_slot(slot, frame);
            tx.next = if tx.next + 1 == tx.frame_count {
                0
            } else {
                tx.next + 1
            };
            done += 1;
            queued += 1;
        }
        for buf in pkts.drain(..done) {
            pool.free(buf);
        }
        if queued > 0 || self.tx.unsent {
            self.kick();
        }
        done
    }

    fn stats(&mut self) -> PortStats {
        let mut st = libc::tpacket_stats_v3 {
            tp_packets: 0,
            tp_drops: 0,
            tp_freeze_q_cnt: 0,
        };
        let mut len = size_of::<libc::tpacket_stats_v3>() as libc::socklen_t;
        // SAFETY: `st` is a writable tpacket_stats_v3 and `len` its size; the kernel writes
        // at most `len` bytes (and resets its counters, so we accumulate).
        let rc = unsafe {
            libc::getsockopt(
                self.rx.fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                (&raw mut st).cast(),
                &mut len,
            )
        };
        if rc == 0 {
            self.stats.rx_dropped += u64::from(st.tp_drops);
        }
        // Frames left queued by a kick that could not send everything (socket buffer
        // full): retry here too, as the worker only calls tx_burst with something to send.
        if self.tx.unsent {
            self.kick();
        }
        self.stats
    }
}

impl AfPacketPort {
    /// Makes the kernel send the queued slots. Never blocks.
    fn kick(&mut self) {
        let tx = &mut self.tx;
        // SAFETY: a plain syscall on our socket. With a send ring and no buffer the kernel
        // sends from the ring (`tpacket_snd`); MSG_DONTWAIT keeps it from waiting.
        let rc = unsafe {
            libc::sendto(
                tx.fd.as_raw_fd(),
                std::ptr::null(),
                0,
                libc::MSG_DONTWAIT,
                std::ptr::null(),
                0,
            )
        };
        if rc < 0 {
            let err = io::Error::last_os_error().raw_os_error().unwrap_or(0);
            if !matches!(err, libc::EAGAIN | libc::ENOBUFS | libc::EINTR) {
                self.stats.tx_errors += 1;
            }
        }
        // The kernel sends slots in order and stops at the first one not queued. If the
        // last slot we queued is still queued, it stopped early (socket buffer full, driver
        // busy, link down): kick again next time.
        let last = if tx.next == 0 {
            tx.frame_count - 1
        } else {
            tx.next - 1
        };
        tx.unsent =
            tx.status(tx.slot_offset(last)).load(Ordering::Acquire) == libc::TP_STATUS_SEND_REQUEST;
    }
}

/// The sizes of both rings, checked.
struct Geometry {
    rx_block_size: usize,
    rx_block_count: usize,
    rx_frame_count: usize,
    frame_size: usize,
    tx_block_size: usize,
    tx_block_count: usize,
    tx_per_block: usize,
    block_timeout_ms: u32,
}

impl Geometry {
    fn new(cfg: &AfPacketConfig, page: usize) -> Result<Geometry, AfPacketError> {
        let bad = |reason: String| AfPacketError::InvalidRing {
            interface: cfg.interface.clone(),
            reason,
        };
        let frame = cfg.frame_size;
        if frame < MIN_FRAME_SIZE || !frame.is_multiple_of(libc::TPACKET_ALIGNMENT) {
            return Err(bad(format!(
                "frame_size {frame} must be a multiple of {} and at least {MIN_FRAME_SIZE}",
                libc::TPACKET_ALIGNMENT
            )));
        }
        let block = cfg.block_size;
        if block == 0 || !block.is_multiple_of(page) || block < frame {
            return Err(bad(format!(
                "block_size {block} must be a multiple of the page size ({page}) and at \
                 least frame_size ({frame})"
            )));
        }
        if cfg.block_count == 0 || cfg.tx_frames == 0 {
            return Err(bad("block_count and tx_frames must be at least 1".into()));
        }
        let tx_block = frame.div_ceil(page) * page;
        let tx_per_block = tx_block / frame;
        let tx_block_count = cfg.tx_frames.div_ceil(tx_per_block);
        let rx_frame_count = (block / frame).checked_mul(cfg.block_count);
        let fits = |n: Option<usize>| n.is_some_and(|n| u32::try_from(n).is_ok());
        let sizes_fit = fits(Some(block))
            && fits(Some(cfg.block_count))
            && fits(rx_frame_count)
            && fits(block.checked_mul(cfg.block_count))
            && fits(tx_block.checked_mul(tx_block_count));
        let Some(rx_frame_count) = rx_frame_count.filter(|_| sizes_fit) else {
            return Err(bad("the rings are too large (over 4 GiB)".into()));
        };
        Ok(Geometry {
            rx_block_size: block,
            rx_block_count: cfg.block_count,
            rx_frame_count,
            frame_size: frame,
            tx_block_size: tx_block,
            tx_block_count,
            tx_per_block,
            block_timeout_ms: cfg.block_timeout_ms,
        })
    }
}

/// The receive socket and its V3 ring, with a cursor into it.
struct RxRing {
    // Field order is drop order: unmap, then close.
    map: Mapping,
    fd: OwnedFd,
    block_size: usize,
    block_count: usize,
    /// The block being read, or the next to read.
    block: usize,
    /// Whether `block` is ours (seen with TP_STATUS_USER and not given back).
    open: bool,
    /// Frames of `block` not yet taken.
    left: u32,
    /// Offset in `block` of the next frame's header.
    next: usize,
    /// When to drop at the head under overload.
    head_drop: HeadDrop,
}

impl RxRing {
    fn open(cfg: &AfPacketConfig, ifindex: i32, g: &Geometry) -> Result<RxRing, AfPacketError> {
        let name = cfg.interface.as_str();
        // Protocol 0 until bind: a socket created with ETH_P_ALL would start receiving from
        // every interface before it is bound to ours.
        let fd = packet_socket(name, 0)?;
        let raw = fd.as_raw_fd();
        set_int_option(raw, libc::PACKET_VERSION, TPACKET_V3)
            .map_err(|e| option_error(name, "PACKET_VERSION (TPACKET_V3)", e))?;
        set_int_option(raw, libc::PACKET_IGNORE_OUTGOING, 1).map_err(|source| {
            AfPacketError::IgnoreOutgoingUnsupported {
                interface: name.to_string(),
                source,
            }
        })?;
        let bytes = g.rx_block_size * g.rx_block_count;
        let req = libc::tpacket_req3 {
            tp_block_size: g.rx_block_size as u32,
            tp_block_nr: g.rx_block_count as u32,
            tp_frame_size: g.frame_size as u32,
            tp_frame_nr: g.rx_frame_count as u32,
            tp_retire_blk_tov: g.block_timeout_ms,
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        };
        set_option(raw, libc::PACKET_RX_RING, &req).map_err(|source| AfPacketError::RingSetup {
            interface: name.to_string(),
            ring: "receive",
            bytes,
            source,
        })?;
        let map = Mapping::new(raw, bytes).map_err(|source| AfPacketError::Mmap {
            interface: name.to_string(),
            ring: "receive",
            bytes,
            source,
        })?;
        bind_socket(raw, ifindex, libc::ETH_P_ALL as u16).map_err(|source| {
            AfPacketError::Bind {
                interface: name.to_string(),
                source,
            }
        })?;
        if let Some(group) = cfg.fanout_group {
            let fanout_err = |source| AfPacketError::Fanout {
                interface: name.to_string(),
                group,
                source,
            };
            // PACKET_FANOUT takes the group id in the low 16 bits and the mode above.
            let mode = match cfg.fanout_program {
                Some(_) => PACKET_FANOUT_CBPF,
                None => libc::PACKET_FANOUT_HASH,
            };
            let arg = (u32::from(group) | (mode << 16)) as libc::c_int;
            set_int_option(raw, libc::PACKET_FANOUT, arg).map_err(fanout_err)?;
            if let Some(prog) = &cfg.fanout_program {
                attach_fanout_program(raw, prog).map_err(fanout_err)?;
            }
        }
        Ok(RxRing {
            map,
            fd,
            block_size: g.rx_block_size,
            block_count: g.rx_block_count,
            block: 0,
            open: false,
            left: 0,
            next: 0,
            head_drop: HeadDrop::new(cfg.max_delay_ms),
        })
    }

    /// The status word of block `i`, shared with the kernel.
    fn block_status(&self, i: usize) -> &AtomicU32 {
        debug_assert!(i < self.block_count);
        self.map.status(i * self.block_size + BLOCK_STATUS)
    }

    /// Block `i` as bytes.
    ///
    /// # Safety
    /// `i < block_count`, and the block belongs to user space: its status was seen with
    /// `TP_STATUS_USER` (acquire) and has not been given back, for as long as the slice
    /// lives.
    unsafe fn user_block(&self, i: usize) -> &[u8] {
        debug_assert!(i < self.block_count);
        // SAFETY: in bounds because block_count * block_size is the mapping's length; the
        // caller guarantees the kernel does not write the block meanwhile.
        unsafe { self.map.bytes(i * self.block_size, self.block_size) }
    }

    /// Gives the current block back to the kernel and moves to the next.
    fn release_block(&mut self) {
        self.block_status(self.block)
            .store(libc::TP_STATUS_KERNEL, Ordering::Release);
        self.block = if self.block + 1 == self.block_count {
            0
        } else {
            self.block + 1
        };
        self.open = false;
        self.left = 0;
    }
}

/// The head-drop rule of the module docs (CoDel's, per block), on wall-clock times in
/// nanoseconds. Sans-I/O: the port passes the times in.
#[derive(Debug)]
struct HeadDrop {
    /// 0: never drop.
    max_delay_ns: u64,
    interval_ns: u64,
    /// Since when every block opened has been late (none fresh in between).
    late_since: Option<u64>,
    /// While dropping: since when every block opened has been fresh.
    fresh_since: Option<u64>,
    /// Late blocks are dropped on sight.
    dropping: bool,
}

impl HeadDrop {
    fn new(max_delay_ms: u32) -> HeadDrop {
        HeadDrop {
            max_delay_ns: u64::from(max_delay_ms) * 1_000_000,
            interval_ns: OVERLOAD_INTERVAL_MS * 1_000_000,
            late_since: None,
            fresh_since: None,
            dropping: false,
        }
    }

    /// Whether to drop a block opened at `now` whose newest frame the kernel stamped
    /// `newest`: late (older than the delay) while the head has been late for the
    /// interval, or while dropping. Dropping ends after an interval of fresh blocks.
    fn drop_block(&mut self, now: u64, newest: u64) -> bool {
        if self.max_delay_ns == 0 {
            return false;
        }
        if now.saturating_sub(newest) <= self.max_delay_ns {
            self.late_since = None;
            if self.dropping {
                let since = *self.fresh_since.get_or_insert(now);
                if now.saturating_sub(since) >= self.interval_ns {
                    self.dropping = false;
                    self.fresh_since = None;
                }
            }
            return false;
        }
        self.fresh_since = None;
        if self.dropping {
            return true;
        }
        let since = *self.late_since.get_or_insert(now);
        if now.saturating_sub(since) >= self.interval_ns {
            self.dropping = true;
        }
        self.dropping
    }
}

/// The wall clock in nanoseconds (the kernel stamps ring frames with CLOCK_REALTIME).
fn realtime_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a writable timespec; CLOCK_REALTIME always exists (a vDSO call).
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// A (seconds, nanoseconds) stamp at `at` in `b`, in nanoseconds.
fn timestamp(b: &[u8], at: usize) -> u64 {
    u64::from(ne_u32(b, at)) * 1_000_000_000 + u64::from(ne_u32(b, at + 4))
}

/// The kernel's stamp of the frame whose header is at `at` in `block`, if it lies inside.
fn frame_time(block: &[u8], at: usize) -> Option<u64> {
    let hdr = block.get(at..at.checked_add(PKT_HDR_LEN)?)?;
    Some(u64::from(ne_u32(hdr, PKT_SEC)) * 1_000_000_000 + u64::from(ne_u32(hdr, PKT_NSEC)))
}

/// One frame in a receive block, from its `tpacket3_hdr`.
struct RxFrame {
    status: u32,
    /// The captured bytes, as a range of the block.
    data: std::ops::Range<usize>,
    /// Captured fewer bytes than the frame had.
    truncated: bool,
    /// Offset from this header to the next one's (0 for the last).
    next_offset: u32,
    /// TPID and TCI of a tag the kernel stripped.
    vlan: Option<(u16, u16)>,
}

impl RxFrame {
    /// Reads the header at `at`; `None` if it or its data lie outside the block.
    fn parse(block: &[u8], at: usize) -> Option<RxFrame> {
        let hdr = block.get(at..at.checked_add(PKT_HDR_LEN)?)?;
        let status = ne_u32(hdr, PKT_STATUS);
        let snaplen = ne_u32(hdr, PKT_SNAPLEN) as usize;
        let start = at + ne_u16(hdr, PKT_MAC) as usize;
        let end = start.checked_add(snaplen)?;
        if end > block.len() {
            return None;
        }
        let vlan = (status & libc::TP_STATUS_VLAN_VALID != 0).then(|| {
            let tpid = if status & libc::TP_STATUS_VLAN_TPID_VALID != 0 {
                ne_u16(hdr, PKT_VLAN_TPID)
            } else {
                ETHERTYPE_VLAN
            };
            (tpid, ne_u32(hdr, PKT_VLAN_TCI) as u16)
        });
        Some(RxFrame {
            status,
            data: start..end,
            truncated: snaplen < ne_u32(hdr, PKT_LEN) as usize,
            next_offset: ne_u32(hdr, PKT_NEXT),
            vlan,
        })
    }

    /// Copies the frame (`data`, its bytes in the ring) into `buf` as it was on the wire:
    /// with the VLAN tag the kernel stripped, and its checksum complete. False if it does
    /// not fit.
    fn copy_into(&self, data: &[u8], buf: &mut HeapBuf) -> bool {
        match self.vlan {
            Some((tpid, tci)) if data.len() >= 12 => {
                if !buf.set_len(data.len() + VLAN_HLEN) {
                    return false;
                }
                let out = buf.data_mut();
                out[..12].copy_from_slice(&data[..12]);
                out[12..14].copy_from_slice(&tpid.to_be_bytes());
                out[14..16].copy_from_slice(&tci.to_be_bytes());
                out[16..].copy_from_slice(&data[12..]);
            }
            _ => {
                if !buf.fill(data) {
                    return false;
                }
            }
        }
        if self.status & libc::TP_STATUS_CSUMNOTREADY != 0 {
            complete_offloaded_checksum(buf.data_mut());
        }
        true
    }
}

/// Completes a TCP or UDP checksum that the sending host left partial (only the
/// pseudo-header sum in the field, `CHECKSUM_PARTIAL`). It handles IPv4, and IPv6 without
/// extension headers, behind at most two VLAN tags, and unfragmented packets only (the
/// kernel never leaves a fragment's checksum partial). The L4 length comes from the IP
/// header, so Ethernet padding is not summed. False, with the frame unchanged, if the
/// frame is none of these.
fn complete_offloaded_checksum(frame: &mut [u8]) -> bool {
    let be16 = |b: &[u8], at: usize| u16::from_be_bytes([b[at], b[at + 1]]);
    if frame.len() < ETH_HLEN {
        return false;
    }
    let mut l3 = ETH_HLEN;
    let mut ethertype = be16(frame, 12);
    for _ in 0..2 {
        if ethertype != ETHERTYPE_VLAN && ethertype != ETHERTYPE_QINQ {
            break;
        }
        if frame.len() < l3 + VLAN_HLEN {
            return false;
        }
        ethertype = be16(frame, l3 + 2);
        l3 += VLAN_HLEN;
    }
    let ip = &frame[l3..];
    let (l4, protocol) = match ethertype {
        ETHERTYPE_IPV4 => {
            if ip.len() < 20 || ip[0] >> 4 != 4 {
                return false;
            }
            let ihl = usize::from(ip[0] & 0x0f) * 4;
            let total = usize::from(be16(ip, 2));
            let fragment = be16(ip, 6) & 0x3fff;
            if ihl < 20 || total < ihl || total > ip.len() || fragment != 0 {
                return false;
            }
            (l3 + ihl..l3 + total, ip[9])
        }
        ETHERTYPE_IPV6 => {
            if ip.len() < 40 || ip[0] >> 4 != 6 {
                return false;
            }
            let payload = usize::from(be16(ip, 4));
            if 40 + payload > ip.len() {
                return false;
            }
            (l3 + 40..l3 + 40 + payload, ip[6])
        }
        _ => return false,
    };
    match protocol {
        IPPROTO_TCP => {
            checksum::complete_partial(&mut frame[l4], tcp::field::CHECKSUM.start, false)
        }
        IPPROTO_UDP => checksum::complete_partial(&mut frame[l4], udp::field::CHECKSUM.start, true),
        _ => false,
    }
}

/// The send socket and its V2 ring, with the next slot to fill.
struct TxRing {
    // Field order is drop order: unmap, then close.
    map: Mapping,
    fd: OwnedFd,
    frame_size: usize,
    block_size: usize,
    per_block: usize,
    frame_count: usize,
    /// The longest frame a slot holds.
    max_len: usize,
    /// The next slot to fill.
    next: usize,
    /// Slots are queued that the last kick did not send.
    unsent: bool,
}

impl TxRing {
    fn open(name: &str, ifindex: i32, g: &Geometry) -> Result<TxRing, AfPacketError> {
        // Protocol 0: this socket only sends, and receives nothing.
        let fd = packet_socket(name, 0)?;
        let raw = fd.as_raw_fd();
        set_int_option(raw, libc::PACKET_VERSION, TPACKET_V2)
            .map_err(|e| option_error(name, "PACKET_VERSION (TPACKET_V2)", e))?;
        set_int_option(raw, libc::PACKET_QDISC_BYPASS, 1)
            .map_err(|e| option_error(name, "PACKET_QDISC_BYPASS", e))?;
        // Without PACKET_LOSS a frame the kernel refuses stays in its slot marked
        // TP_STATUS_WRONG_FORMAT and the kernel stops there, stalling the ring until we
        // come round to that slot again. With it, the kernel skips such a frame. We refuse
        // what we know the kernel would refuse before queuing it (`sendable`).
        set_int_option(raw, libc::PACKET_LOSS, 1)
            .map_err(|e| option_error(name, "PACKET_LOSS", e))?;
        let frame_count = g.tx_block_count * g.tx_per_block;
        let bytes = g.tx_block_size * g.tx_block_count;
        // Room for the whole ring in flight: the kernel charges ring frames to the send
        // buffer and stops a kick early when it is full. SO_SNDBUFFORCE passes the sysctl
        // cap but needs CAP_NET_ADMIN; SO_SNDBUF is the fallback. Either failing is fine.
        let sndbuf =
            libc::c_int::try_from(frame_count * g.frame_size * 2).unwrap_or(libc::c_int::MAX);
        if set_socket_option(raw, libc::SOL_SOCKET, libc::SO_SNDBUFFORCE, &sndbuf).is_err() {
            let _ = set_socket_option(raw, libc::SOL_SOCKET, libc::SO_SNDBUF, &sndbuf);
        }
        let req = libc::tpacket_req {
            tp_block_size: g.tx_block_size as u32,
            tp_block_nr: g.tx_block_count as u32,
            tp_frame_size: g.frame_size as u32,
            tp_frame_nr: frame_count as u32,
        };
        set_option(raw, libc::PACKET_TX_RING, &req).map_err(|source| AfPacketError::RingSetup {
            interface: name.to_string(),
            ring: "send",
            bytes,
            source,
        })?;
        let map = Mapping::new(raw, bytes).map_err(|source| AfPacketError::Mmap {
            interface: name.to_string(),
            ring: "send",
            bytes,
            source,
        })?;
        bind_socket(raw, ifindex, 0).map_err(|source| AfPacketError::Bind {
            interface: name.to_string(),
            source,
        })?;
        Ok(TxRing {
            map,
            fd,
            frame_size: g.frame_size,
            block_size: g.tx_block_size,
            per_block: g.tx_per_block,
            frame_count,
            max_len: g.frame_size - TX_DATA_OFFSET,
            next: 0,
            unsent: false,
        })
    }

    /// Where slot `i` starts in the mapping.
    fn slot_offset(&self, i: usize) -> usize {
        debug_assert!(i < self.frame_count);
        (i / self.per_block) * self.block_size + (i % self.per_block) * self.frame_size
    }

    /// The status word of the slot at `slot`, shared with the kernel.
    fn status(&self, slot: usize) -> &AtomicU32 {
        self.map.status(slot + TX_STATUS)
    }

    /// Copies `frame` into the slot at `slot` and queues it. The slot must be ours
    /// (available, or wrong-format), and `frame` no longer than `max_len`.
    fn fill_slot(&mut self, slot: usize, frame: &[u8]) {
        debug_assert!(frame.len() <= self.max_len);
        {
            // SAFETY: the slot lies in the mapping (slot_offset of a valid index), the range
            // skips its status word, and the kernel neither reads nor writes a slot that is
            // not marked TP_STATUS_SEND_REQUEST: it is ours until we mark it so, below,
            // after this borrow ends.
            let body = unsafe { self.map.bytes_mut(slot + TX_LEN, self.frame_size - TX_LEN) };
            let data = TX_DATA_OFFSET - TX_LEN;
            body[data..data + frame.len()].copy_from_slice(frame);
            body[..4].copy_from_slice(&(frame.len() as u32).to_ne_bytes());
        }
        self.status(slot)
            .store(libc::TP_STATUS_SEND_REQUEST, Ordering::Release);
    }
}

/// A ring mapped from a packet socket, unmapped on drop.
struct Mapping {
    base: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is owned by exactly one ring, which is owned by one port; the
// pointer is never shared or copied out, so moving the port to another thread moves sole
// access with it. The kernel's side of the sharing is synchronised through the status
// words (acquire/release), which does not depend on which thread we run on.
unsafe impl Send for Mapping {}

impl Mapping {
    /// Maps `len` bytes of `fd`'s ring(s), read-write, shared with the kernel.
    fn new(fd: RawFd, len: usize) -> io::Result<Mapping> {
        // SAFETY: a fresh mapping at an address the kernel picks; nothing else refers to it.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                fd,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let base =
            NonNull::new(ptr.cast::<u8>()).ok_or_else(|| io::Error::other("mmap returned NULL"))?;
        Ok(Mapping { base, len })
    }

    /// The 32-bit status word at byte `at`, which the kernel reads and writes concurrently.
    fn status(&self, at: usize) -> &AtomicU32 {
        assert!(
            at.is_multiple_of(4) && at + 4 <= self.len,
            "status word outside the ring"
        );
        // SAFETY: in bounds and 4-byte aligned (checked; the mapping is page aligned), valid
        // for as long as `self`; the kernel accesses it with atomic-width accesses too, and
        // we only ever access it through this AtomicU32.
        unsafe { AtomicU32::from_ptr(self.base.as_ptr().add(at).cast::<u32>()) }
    }

    /// `len` bytes at `at`.
    ///
    /// # Safety
    /// The range lies in the mapping, and nothing writes it while the slice lives: the
    /// kernel has handed it to us.
    unsafe fn bytes(&self, at: usize, len: usize) -> &[u8] {
        debug_assert!(at + len <= self.len);
        // SAFETY: the caller guarantees bounds and that nothing writes the range meanwhile.
        unsafe { std::slice::from_raw_parts(self.base.as_ptr().add(at), len) }
    }

    /// `len` bytes at `at`, writable.
    ///
    /// # Safety
    /// The range lies in the mapping, and nothing else reads or writes it while the slice
    /// lives: the kernel has handed it to us and we hold no other reference into it.
    #[allow(clippy::mut_from_ref)] // the memory is the kernel's and ours, not Rust's
    unsafe fn bytes_mut(&self, at: usize, len: usize) -> &mut [u8] {
        debug_assert!(at + len <= self.len);
        // SAFETY: the caller guarantees bounds and exclusive access meanwhile.
        unsafe { std::slice::from_raw_parts_mut(self.base.as_ptr().add(at), len) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: we mapped exactly this range and no reference into it outlives `self`.
        unsafe {
            libc::munmap(self.base.as_ptr().cast(), self.len);
        }
    }
}

/// The MAC address of interface `name`, read with `SIOCGIFHWADDR`. Needs no privilege.
///
/// # Errors
/// [`AfPacketError::InvalidName`], [`AfPacketError::NotFound`],
/// [`AfPacketError::NotEthernet`], or [`AfPacketError::InterfaceQuery`] with the OS error.
pub fn interface_mac(name: &str) -> Result<MacAddr, AfPacketError> {
    let req = interface_ioctl(name, libc::SIOCGIFHWADDR, "MAC address")?;
    // SAFETY: SIOCGIFHWADDR succeeded, so the kernel filled in `ifru_hwaddr`.
    let hw = unsafe { req.ifr_ifru.ifru_hwaddr };
    if hw.sa_family != libc::ARPHRD_ETHER {
        return Err(AfPacketError::NotEthernet {
            interface: name.to_string(),
            hw_type: hw.sa_family,
        });
    }
    let mut mac = [0u8; 6];
    for (m, &b) in mac.iter_mut().zip(hw.sa_data.iter()) {
        *m = b as u8;
    }
    Ok(MacAddr(mac))
}

/// The MTU of interface `name`, read with `SIOCGIFMTU`.
fn interface_mtu(name: &str) -> Result<usize, AfPacketError> {
    let req = interface_ioctl(name, libc::SIOCGIFMTU, "MTU")?;
    // SAFETY: SIOCGIFMTU succeeded, so the kernel filled in `ifru_mtu`.
    let mtu = unsafe { req.ifr_ifru.ifru_mtu };
    Ok(usize::try_from(mtu).unwrap_or(0))
}

/// The index of interface `name`.
fn interface_index(name: &str) -> Result<i32, AfPacketError> {
    let cname = checked_name(name)?;
    // SAFETY: `cname` is a NUL-terminated string that outlives the call.
    let index = unsafe { libc::if_nametoindex(cname.as_ptr()) };
    if index == 0 {
        return Err(AfPacketError::NotFound {
            interface: name.to_string(),
            source: io::Error::last_os_error(),
        });
    }
    i32::try_from(index).map_err(|_| AfPacketError::NotFound {
        interface: name.to_string(),
        source: io::Error::from_raw_os_error(libc::ENODEV),
    })
}

fn checked_name(name: &str) -> Result<CString, AfPacketError> {
    if name.is_empty() || name.len() >= libc::IFNAMSIZ {
        return Err(AfPacketError::InvalidName(name.to_string()));
    }
    CString::new(name).map_err(|_| AfPacketError::InvalidName(name.to_string()))
}

/// Runs a `SIOCGIF*` ioctl for `name` on a throwaway datagram socket.
fn interface_ioctl(
    name: &str,
    request: libc::c_ulong,
    what: &'static str,
) -> Result<libc::ifreq, AfPacketError> {
    let cname = checked_name(name)?;
    // SAFETY: ifreq is plain data (a name and a union of plain fields and a pointer), for
    // which all-zero bytes are a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, &s) in req.ifr_name.iter_mut().zip(cname.as_bytes_with_nul()) {
        *d = s as libc::c_char;
    }
    // SAFETY: a plain syscall.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(AfPacketError::Socket {
            interface: name.to_string(),
            source: io::Error::last_os_error(),
        });
    }
    // SAFETY: `fd` is a fresh descriptor that nothing else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: `req` is a valid ifreq with a NUL-terminated name; the SIOCGIF* requests we
    // pass write only within it.
    let rc = unsafe { libc::ioctl(sock.as_raw_fd(), request as _, &raw mut req) };
    if rc < 0 {
        let source = io::Error::last_os_error();
        return Err(if source.raw_os_error() == Some(libc::ENODEV) {
            AfPacketError::NotFound {
                interface: name.to_string(),
                source,
            }
        } else {
            AfPacketError::InterfaceQuery {
                interface: name.to_string(),
                what,
                source,
            }
        });
    }
    Ok(req)
}

/// A new `AF_PACKET`/`SOCK_RAW` socket for `protocol` (host order).
fn packet_socket(name: &str, protocol: u16) -> Result<OwnedFd, AfPacketError> {
    // SAFETY: a plain syscall.
    let fd = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::c_int::from(protocol.to_be()),
        )
    };
    if fd < 0 {
        let source = io::Error::last_os_error();
        return Err(match source.raw_os_error() {
            Some(libc::EPERM | libc::EACCES) => AfPacketError::PermissionDenied { source },
            _ => AfPacketError::Socket {
                interface: name.to_string(),
                source,
            },
        });
    }
    // SAFETY: `fd` is a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Binds a packet socket to interface `ifindex` for `protocol` (host order; 0 = none).
fn bind_socket(fd: RawFd, ifindex: i32, protocol: u16) -> io::Result<()> {
    let addr = libc::sockaddr_ll {
        sll_family: libc::AF_PACKET as u16,
        sll_protocol: protocol.to_be(),
        sll_ifindex: ifindex,
        sll_hatype: 0,
        sll_pkttype: 0,
        sll_halen: 0,
        sll_addr: [0; 8],
    };
    // SAFETY: `addr` is a valid sockaddr_ll and we pass its size.
    let rc = unsafe {
        libc::bind(
            fd,
            (&raw const addr).cast(),
            size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `PACKET_FANOUT_CBPF` (`linux/if_packet.h`).
const PACKET_FANOUT_CBPF: u32 = 6;
/// `PACKET_FANOUT_DATA` (`linux/if_packet.h`).
const PACKET_FANOUT_DATA: libc::c_int = 22;

/// Gives a fanout group of mode `PACKET_FANOUT_CBPF` its program.
fn attach_fanout_program(fd: RawFd, prog: &[crate::steer::Insn]) -> io::Result<()> {
    let mut filter: Vec<libc::sock_filter> = prog
        .iter()
        .map(|i| libc::sock_filter {
            code: i.code,
            jt: i.jt,
            jf: i.jf,
            k: i.k,
        })
        .collect();
    let fprog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_mut_ptr(),
    };
    // The kernel copies the program during the call; `filter` outlives it.
    set_socket_option(fd, libc::SOL_PACKET, PACKET_FANOUT_DATA, &fprog)
}

fn set_int_option(fd: RawFd, option: libc::c_int, value: libc::c_int) -> io::Result<()> {
    set_option(fd, option, &value)
}

/// `setsockopt(fd, SOL_PACKET, option, value)`.
fn set_option<T: Copy>(fd: RawFd, option: libc::c_int, value: &T) -> io::Result<()> {
    set_socket_option(fd, libc::SOL_PACKET, option, value)
}

fn set_socket_option<T: Copy>(
    fd: RawFd,
    level: libc::c_int,
    option: libc::c_int,
    value: &T,
) -> io::Result<()> {
    // SAFETY: `value` points to a readable T and we pass its size; the kernel only reads it.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            option,
            (value as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn option_error(name: &str, option: &'static str, source: io::Error) -> AfPacketError {
    AfPacketError::SocketOption {
        interface: name.to_string(),
        option,
        source,
    }
}

fn page_size() -> usize {
    // SAFETY: a plain libc call with no pointers.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(page)
        .ok()
        .filter(|&p| p > 0)
        .unwrap_or(4096)
}

/// A native-endian u32 at `at` (ring headers are in host order).
fn ne_u32(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// A native-endian u16 at `at`.
fn ne_u16(b: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([b[at], b[at + 1]])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn udp_ipv4(payload_len: usize, pad: usize, vlan: bool) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f[..6].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
        if vlan {
            f.extend_from_slice(&[0x81, 0x00, 0x00, 0x07]);
        }
        f.extend_from_slice(&[0x08, 0x00]);
        let total = 20 + 8 + payload_len;
        let mut ip = vec![
            0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        ip[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        let c = checksum::checksum(&ip);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        f.extend_from_slice(&ip);
        let l4_len = (8 + payload_len) as u16;
        let pseudo =
            checksum::pseudo_header_sum([10, 0, 0, 1].into(), [10, 0, 0, 2].into(), 17, l4_len);
        let mut udp = vec![0x30, 0x39, 0x00, 0x35, 0, 0, 0, 0];
        udp[4..6].copy_from_slice(&l4_len.to_be_bytes());
        // CHECKSUM_PARTIAL: the field holds the folded pseudo-header sum, not complemented.
        udp[6..8].copy_from_slice(&checksum::fold(pseudo).to_be_bytes());
        f.extend_from_slice(&udp);
        f.extend((0..payload_len).map(|i| i as u8 ^ 0x5a));
        f.extend(std::iter::repeat_n(0xee, pad));
        f
    }

    fn udp_checksum_ok(frame: &[u8], l3: usize) -> bool {
        let ip = &frame[l3..];
        let total = u16::from_be_bytes([ip[2], ip[3]]) as usize;
        let l4 = &ip[20..total];
        let pseudo = checksum::pseudo_header_sum(
            [ip[12], ip[13], ip[14], ip[15]].into(),
            [ip[16], ip[17], ip[18], ip[19]].into(),
            17,
            l4.len() as u16,
        );
        checksum::fold(checksum::add(pseudo, checksum::sum(l4))) == 0xffff
    }

    #[test]
    fn completes_partial_udp_ignoring_padding() {
        let mut f = udp_ipv4(5, 13, false);
        assert!(!udp_checksum_ok(&f, 14));
        assert!(complete_offloaded_checksum(&mut f));
        assert!(udp_checksum_ok(&f, 14));
        assert!(f.ends_with(&[0xee; 13]), "padding untouched");
    }

    #[test]
    fn completes_partial_behind_a_vlan_tag() {
        let mut f = udp_ipv4(40, 0, true);
        assert!(complete_offloaded_checksum(&mut f));
        assert!(udp_checksum_ok(&f, 18));
    }

    #[test]
    fn leaves_other_frames_alone() {
        let mut arp = vec![0xffu8; 12];
        arp.extend_from_slice(&[0x08, 0x06]);
        arp.extend_from_slice(&[0; 28]);
        let copy = arp.clone();
        assert!(!complete_offloaded_checksum(&mut arp));
        assert_eq!(arp, copy);
        // Total length beyond the frame: a truncated frame is not touched.
        let mut f = udp_ipv4(40, 0, false);
        f.truncate(50);
        let copy = f.clone();
        assert!(!complete_offloaded_checksum(&mut f));
        assert_eq!(f, copy);
        let mut short = vec![0u8; 5];
        assert!(!complete_offloaded_checksum(&mut short));
    }

    #[test]
    fn reinserts_a_stripped_vlan_tag() {
        let tagged = udp_ipv4(10, 0, true);
        let mut stripped = tagged[..12].to_vec();
        stripped.extend_from_slice(&tagged[16..]);
        let frame = RxFrame {
            status: libc::TP_STATUS_USER | libc::TP_STATUS_VLAN_VALID,
            data: 0..stripped.len(),
            truncated: false,
            next_offset: 0,
            vlan: Some((0x8100, 7)),
        };
        let mut pool = HeapPool::new(1);
        let mut buf = pool.alloc().unwrap();
        assert!(frame.copy_into(&stripped, &mut buf));
        assert_eq!(buf.data(), &tagged[..]);
    }

    #[test]
    fn parses_a_frame_header_and_refuses_one_outside_the_block() {
        let mut block = vec![0u8; 4096];
        let at = 64;
        let put = |b: &mut [u8], off: usize, v: u32| {
            b[at + off..at + off + 4].copy_from_slice(&v.to_ne_bytes())
        };
        put(&mut block, PKT_NEXT, 128);
        put(&mut block, PKT_SNAPLEN, 60);
        put(&mut block, PKT_LEN, 70);
        put(&mut block, PKT_STATUS, libc::TP_STATUS_USER);
        block[at + PKT_MAC..at + PKT_MAC + 2].copy_from_slice(&80u16.to_ne_bytes());
        let f = RxFrame::parse(&block, at).unwrap();
        assert_eq!(f.data, at + 80..at + 140);
        assert!(f.truncated);
        assert_eq!(f.next_offset, 128);
        assert!(f.vlan.is_none());
        put(&mut block, PKT_SNAPLEN, 5000);
        assert!(RxFrame::parse(&block, at).is_none());
        assert!(RxFrame::parse(&block, 4090).is_none());
    }

    #[test]
    fn head_drop_rides_out_a_stall_and_drops_under_sustained_overload() {
        const MS: u64 = 1_000_000;
        let mut h = HeadDrop::new(5);
        let t0 = 1_000 * MS;
        // A 300 ms stall: the first blocks after it are late, then fresh ones come
        // within the interval: nothing is dropped.
        assert!(!h.drop_block(t0, t0 - 300 * MS));
        assert!(!h.drop_block(t0 + MS, t0 - 200 * MS));
        assert!(!h.drop_block(t0 + 2 * MS, t0 + MS));
        assert!(!h.dropping);
        // Sustained: late for the whole interval; from then on late blocks are dropped,
        // fresh ones are not.
        let t1 = 2_000 * MS;
        assert!(!h.drop_block(t1, t1 - 50 * MS));
        assert!(!h.drop_block(t1 + 99 * MS, t1 + 80 * MS));
        assert!(h.drop_block(t1 + 100 * MS, t1 + 80 * MS));
        assert!(h.drop_block(t1 + 100 * MS, t1 + 90 * MS));
        assert!(!h.drop_block(t1 + 100 * MS, t1 + 99 * MS));
        assert!(
            h.drop_block(t1 + 110 * MS, t1 + 100 * MS),
            "late again: dropped at once"
        );
        // Fresh for a whole interval: back to riding out.
        assert!(!h.drop_block(t1 + 120 * MS, t1 + 119 * MS));
        assert!(!h.drop_block(t1 + 220 * MS, t1 + 219 * MS));
        assert!(!h.dropping);
        assert!(!h.drop_block(t1 + 300 * MS, t1 + 100 * MS), "a stall again");
        // Off.
        let mut off = HeadDrop::new(0);
        assert!(!off.drop_block(t1 + 10_000 * MS, t1));
    }

    #[test]
    fn geometry_checks() {
        let page = 4096;
        let g = Geometry::new(&AfPacketConfig::new("x"), page).unwrap();
        assert_eq!(g.rx_frame_count, 4 * 1024);
        assert_eq!(
            (g.tx_block_size, g.tx_per_block, g.tx_block_count),
            (4096, 2, 512)
        );
        let odd = AfPacketConfig {
            frame_size: 1536,
            tx_frames: 5,
            ..AfPacketConfig::new("x")
        };
        let g = Geometry::new(&odd, page).unwrap();
        assert_eq!(
            (g.tx_block_size, g.tx_per_block, g.tx_block_count),
            (4096, 2, 3)
        );
        for bad in [
            AfPacketConfig {
                block_size: 5000,
                ..AfPacketConfig::new("x")
            },
            AfPacketConfig {
                frame_size: 2050,
                ..AfPacketConfig::new("x")
            },
            AfPacketConfig {
                frame_size: 64,
                ..AfPacketConfig::new("x")
            },
            AfPacketConfig {
                block_count: 0,
                ..AfPacketConfig::new("x")
            },
            AfPacketConfig {
                tx_frames: 0,
                ..AfPacketConfig::new("x")
            },
            AfPacketConfig {
                block_size: 4096,
                frame_size: 8192,
                ..AfPacketConfig::new("x")
            },
            AfPacketConfig {
                block_size: 1 << 30,
                block_count: 8,
                ..AfPacketConfig::new("x")
            },
        ] {
            assert!(
                matches!(
                    Geometry::new(&bad, page),
                    Err(AfPacketError::InvalidRing { .. })
                ),
                "{bad:?}"
            );
        }
    }
}
