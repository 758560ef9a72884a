//! The DPDK port backend (feature `dpdk`): NIC-bound hosts with hugepages, and DPDK's
//! virtual devices (`net_null`, `net_ring`, `net_af_packet`, `net_af_xdp`, `net_tap`).
//!
//! * [`eal_init`] starts DPDK's environment abstraction layer once per process from the
//!   operator's EAL arguments; a failure is an error that says why, never a panic.
//! * A [`Device`] is one ethdev port configured with one rx and one tx queue per worker
//!   (RSS over the queues when the device hashes), its rx queues filled from the mbuf
//!   [`Mempool`] of the device's socket (one mempool per socket, shared by the workers).
//! * A [`DpdkPort`] is one queue pair of a device, owned by one worker. It receives
//!   straight into the worker's burst array: a packet buffer is the [`Mbuf`] itself,
//!   processed in place, and the same mbuf is handed to the driver on transmit. Packets a
//!   short tx burst leaves behind stay with the worker, which frees and counts them.
//! * [`DpdkPool`] is a worker's handle on a mempool: frees are batched and returned in
//!   bulk, and a buffer may be freed by any worker ([`BufPool::SHARED`]), so packets
//!   move between workers ([`crate::handoff`]) without copies.
//! * [`ring_device`] makes a `net_ring` device whose far end a test or a generator drives
//!   through [`RingPeer`]s.
//!
//! Workers are ordinary pinned threads, not EAL lcores: each registers itself with DPDK
//! ([`rte_thread_register`](sys::rte_thread_register)) on its first burst, so the mempool
//! keeps a per-thread cache for it.
//!
//! All of DPDK's `unsafe` for the fast path is in this file; every block says why it is
//! sound.

use std::ffi::{CStr, CString, c_char, c_int};
use std::ptr::NonNull;
use std::sync::{Arc, Mutex, OnceLock};

use dpdk_sys as sys;

use crate::buf::{BufPool, Burst, PacketBuf};
use crate::types::MacAddr;

use super::{Peer, Port, PortStats};

/// What went wrong setting DPDK up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DpdkError {
    /// `rte_eal_init` refused the arguments or could not set up memory or devices.
    #[error(
        "DPDK's EAL did not start: {reason} (EAL arguments: {args}); the EAL's own messages above say more"
    )]
    EalInit {
        /// rte_strerror of rte_errno.
        reason: String,
        /// The arguments, space-separated.
        args: String,
    },
    /// The EAL can start once per process, and it did with other arguments.
    #[error("DPDK's EAL already started in this process with other arguments ({first})")]
    EalAgain {
        /// The arguments it started with.
        first: String,
    },
    /// An argument cannot be passed to C.
    #[error("EAL argument {0:?} contains a NUL byte")]
    BadArgument(String),
    /// No ethdev port has that name, and it is not a virtual device DPDK could create.
    #[error(
        "DPDK has no port {name:?} (ports: {known}); give the PCI address of a NIC bound to vfio-pci (scripts/hugepages.sh explains), or a virtual device such as net_null0 or net_af_packet0,iface=eth1"
    )]
    NoSuchDevice {
        /// The name asked for.
        name: String,
        /// The ports DPDK has.
        known: String,
    },
    /// A step of a device's set-up failed.
    #[error("DPDK port {device}: {step}: {reason}")]
    Setup {
        /// The device.
        device: String,
        /// What was being done.
        step: &'static str,
        /// Why it failed.
        reason: String,
    },
    /// The mbuf pool could not be made.
    #[error(
        "creating the mbuf pool of socket {socket} ({mbufs} mbufs): {reason}; with --no-huge, give the EAL enough memory (-m MB), else reserve more hugepages"
    )]
    Mempool {
        /// The socket.
        socket: i32,
        /// Mbufs asked for.
        mbufs: u32,
        /// Why it failed.
        reason: String,
    },
}

/// The text of a DPDK error number.
fn strerror(errnum: c_int) -> String {
    // SAFETY: rte_strerror returns a pointer to a NUL-terminated string that stays valid
    // at least until the next call on this thread; it is copied at once.
    let s = unsafe { CStr::from_ptr(sys::rte_strerror(errnum)) };
    format!("{} (errno {errnum})", s.to_string_lossy())
}

/// The calling thread's `rte_errno`, as text.
fn last_error() -> String {
    // SAFETY: tg_errno only reads the calling thread's rte_errno.
    strerror(unsafe { sys::tg_errno() })
}

/// The proof that DPDK's EAL runs in this process.
#[derive(Debug)]
pub struct Eal {
    args: Vec<String>,
}

static EAL: OnceLock<Result<Eal, DpdkError>> = OnceLock::new();

/// Starts DPDK's EAL with `args` (as on a DPDK application's command line, without the
/// program name), or returns the running one if it started with the same arguments.
/// DPDK's EAL starts once per process: a failed start cannot be retried.
pub fn eal_init(args: &[String]) -> Result<&'static Eal, DpdkError> {
    let eal = EAL.get_or_init(|| start_eal(args));
    match eal {
        Ok(e) if e.args == args => Ok(e),
        Ok(e) => Err(DpdkError::EalAgain {
            first: e.args.join(" "),
        }),
        Err(err) => Err(err.clone()),
    }
}

fn start_eal(args: &[String]) -> Result<Eal, DpdkError> {
    let mut argv: Vec<*mut c_char> = Vec::with_capacity(args.len() + 2);
    for a in std::iter::once("tollgate").chain(args.iter().map(String::as_str)) {
        let c = CString::new(a).map_err(|_| DpdkError::BadArgument(a.to_string()))?;
        // The EAL may keep pointers into argv (device arguments, the program name) for the
        // life of the process, so the strings are never freed.
        argv.push(c.into_raw());
    }
    let argc = argv.len() as c_int;
    argv.push(std::ptr::null_mut());
    // The EAL may also keep (and permute) the array itself.
    let argv = argv.leak();
    // The EAL pins the thread that starts it to the main lcore. That thread is the control
    // thread, not a forwarding one, and the workers it starts would inherit the pinning:
    // its affinity is put back afterwards (workers are pinned by `engine.cores`).
    // SAFETY: an all-zero cpu_set_t is an empty set, filled by sched_getaffinity.
    let mut cpus: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::cpu_set_t>();
    // SAFETY: pid 0 is the calling thread; the set is writable and `size` bytes long.
    let saved = unsafe { libc::sched_getaffinity(0, size, &mut cpus) } == 0;
    // SAFETY: argv holds argc valid NUL-terminated strings followed by a null pointer, all
    // leaked so that they outlive the EAL; the OnceLock runs this at most once per process.
    let ret = unsafe { sys::rte_eal_init(argc, argv.as_mut_ptr()) };
    if saved {
        // SAFETY: the set read above, for the calling thread.
        unsafe { libc::sched_setaffinity(0, size, &cpus) };
    }
    if ret < 0 {
        return Err(DpdkError::EalInit {
            reason: last_error(),
            args: args.join(" "),
        });
    }
    Ok(Eal {
        args: args.to_vec(),
    })
}

/// Registers the calling thread with DPDK if it is not an EAL thread already, so that
/// mempool operations use a per-thread cache. Without it they still work, uncached.
fn ensure_thread_registered() {
    // SAFETY: both read the calling thread's lcore id; rte_thread_register only runs for
    // a thread DPDK does not know yet (registering twice would waste an lcore id), after
    // the EAL started (the caller holds a port, which needs the EAL).
    unsafe {
        if sys::tg_lcore_id() == sys::tg_lcore_id_any() {
            // On failure (all lcore ids taken) the thread runs uncached.
            let _ = sys::rte_thread_register();
        }
    }
}

/// An mbuf pool (`rte_mempool`) of one socket. Safe to share: DPDK's mempools are
/// multi-producer, multi-consumer.
#[derive(Debug)]
pub struct Mempool {
    ptr: NonNull<sys::rte_mempool>,
    socket: i32,
    size: u32,
}

// SAFETY: an rte_mempool is designed for concurrent get/put from many threads; the
// pointer is never freed while a handle exists (mempools live as long as the process).
unsafe impl Send for Mempool {}
// SAFETY: as above; &Mempool only allows the thread-safe get/put/count operations.
unsafe impl Sync for Mempool {}

static MEMPOOLS: Mutex<Vec<Arc<Mempool>>> = Mutex::new(Vec::new());

/// Sizes of a socket's mbuf pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolConfig {
    /// Mbufs in the pool (2^n - 1 is best).
    pub mbufs: u32,
    /// Mbufs each thread caches (at most 512).
    pub cache: u32,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            mbufs: 32767,
            cache: 256,
        }
    }
}

impl Mempool {
    /// The mbuf pool of `socket` (`-1`: any), made on first use with `cfg`'s sizes.
    pub fn of_socket(_eal: &Eal, socket: i32, cfg: PoolConfig) -> Result<Arc<Mempool>, DpdkError> {
        let mut pools = MEMPOOLS.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = pools.iter().find(|p| p.socket == socket) {
            return Ok(p.clone());
        }
        let name = CString::new(format!("tollgate_s{}", socket.max(-1) + 1)).expect("no NUL");
        // SAFETY: the EAL runs (we hold &Eal); name is a valid C string; DPDK copies it.
        let ptr = unsafe {
            sys::rte_pktmbuf_pool_create(
                name.as_ptr(),
                cfg.mbufs,
                cfg.cache.min(512),
                0,
                sys::tg_mbuf_default_buf_size(),
                socket,
            )
        };
        let ptr = NonNull::new(ptr).ok_or_else(|| DpdkError::Mempool {
            socket,
            mbufs: cfg.mbufs,
            reason: last_error(),
        })?;
        let pool = Arc::new(Mempool {
            ptr,
            socket,
            size: cfg.mbufs,
        });
        pools.push(pool.clone());
        Ok(pool)
    }

    /// Mbufs in the pool, cached by threads included (not those in use).
    pub fn available(&self) -> usize {
        // SAFETY: the mempool is valid for the life of the process; counting is read-only.
        unsafe { sys::rte_mempool_avail_count(self.ptr.as_ptr()) as usize }
    }

    /// Mbufs the pool was made with.
    pub fn size(&self) -> usize {
        self.size as usize
    }

    /// The socket it lives on (`-1`: any).
    pub fn socket(&self) -> i32 {
        self.socket
    }
}

/// A packet buffer that is a DPDK mbuf, owned by exactly one holder at a time (a worker's
/// burst, the hold queue, a handoff ring, the driver). Single-segment only: the port
/// drops multi-segment packets on receive.
#[repr(transparent)]
pub struct Mbuf(NonNull<sys::rte_mbuf>);

// SAFETY: an Mbuf is the only handle on its rte_mbuf (it is not Clone and the driver gives
// each mbuf to one receiver), so moving it to another thread moves the ownership.
unsafe impl Send for Mbuf {}

impl std::fmt::Debug for Mbuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Mbuf({:p}, {} bytes)", self.0, self.len())
    }
}

impl Mbuf {
    #[inline(always)]
    fn m(&self) -> &sys::rte_mbuf {
        // SAFETY: the pointer is to a live mbuf that this handle owns (see the type).
        unsafe { self.0.as_ref() }
    }

    #[inline(always)]
    fn m_mut(&mut self) -> &mut sys::rte_mbuf {
        // SAFETY: as in `m`, and &mut self makes this the only reference.
        unsafe { self.0.as_mut() }
    }

    #[inline(always)]
    fn set_data(&mut self, off: u16, len: u16) {
        let m = self.m_mut();
        m.data_off = off;
        m.data_len = len;
        m.pkt_len = len as u32;
    }

    /// The raw mbuf (tests, the ring peer).
    pub fn as_ptr(&self) -> *mut sys::rte_mbuf {
        self.0.as_ptr()
    }
}

impl PacketBuf for Mbuf {
    #[inline(always)]
    fn data(&self) -> &[u8] {
        let m = self.m();
        // SAFETY: buf_addr points to buf_len bytes owned with the mbuf; DPDK and the
        // setters below keep data_off + data_len <= buf_len.
        unsafe {
            std::slice::from_raw_parts(
                (m.buf_addr as *const u8).add(m.data_off as usize),
                m.data_len as usize,
            )
        }
    }

    #[inline(always)]
    fn data_mut(&mut self) -> &mut [u8] {
        let m = self.m();
        let (addr, off, len) = (m.buf_addr as *mut u8, m.data_off, m.data_len);
        // SAFETY: as in `data`; &mut self makes this the only view of the bytes.
        unsafe { std::slice::from_raw_parts_mut(addr.add(off as usize), len as usize) }
    }

    #[inline(always)]
    fn len(&self) -> usize {
        self.m().data_len as usize
    }

    fn set_len(&mut self, len: usize) -> bool {
        if len > self.capacity() {
            return false;
        }
        let off = self.m().data_off;
        self.set_data(off, len as u16);
        true
    }

    fn prepend(&mut self, n: usize) -> bool {
        let (off, len) = (self.m().data_off as usize, self.len());
        if n > off {
            return false;
        }
        self.set_data((off - n) as u16, (len + n) as u16);
        true
    }

    fn strip(&mut self, n: usize) -> bool {
        let (off, len) = (self.m().data_off as usize, self.len());
        if n > len {
            return false;
        }
        self.set_data((off + n) as u16, (len - n) as u16);
        true
    }

    fn capacity(&self) -> usize {
        let m = self.m();
        m.buf_len as usize - m.data_off as usize
    }
}

/// Frees batched per worker before they go back to the mempool in bulk.
const FREE_BATCH: usize = 64;

/// A worker's handle on a mempool: allocations come from it, frees are gathered and
/// returned in bulk (each mbuf to its own mempool).
pub struct DpdkPool {
    mempool: Arc<Mempool>,
    pending: [*mut sys::rte_mbuf; FREE_BATCH],
    n: usize,
}

// SAFETY: the pending mbufs are owned by this pool alone (see Mbuf), and the mempool is
// thread-safe; the pool moves to its worker's thread with the worker.
unsafe impl Send for DpdkPool {}

impl std::fmt::Debug for DpdkPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DpdkPool({} pending, {:?})", self.n, self.mempool)
    }
}

impl DpdkPool {
    /// A handle on `mempool`.
    pub fn new(mempool: Arc<Mempool>) -> DpdkPool {
        DpdkPool {
            mempool,
            pending: [std::ptr::null_mut(); FREE_BATCH],
            n: 0,
        }
    }

    /// Returns the gathered frees to their mempools.
    #[inline]
    pub fn flush(&mut self) {
        if self.n > 0 {
            // SAFETY: pending[..n] are mbufs this pool owns (freed into it), each freed
            // once: n is reset right after.
            unsafe { sys::tg_free_bulk(self.pending.as_mut_ptr(), self.n as u32) };
            self.n = 0;
        }
    }

    /// The mempool.
    pub fn mempool(&self) -> &Arc<Mempool> {
        &self.mempool
    }
}

impl Drop for DpdkPool {
    fn drop(&mut self) {
        self.flush();
    }
}

impl BufPool for DpdkPool {
    type Buf = Mbuf;
    const SHARED: bool = true;

    fn alloc(&mut self) -> Option<Mbuf> {
        let mut m: *mut sys::rte_mbuf = std::ptr::null_mut();
        // SAFETY: room for one mbuf pointer; the mempool is valid. On success the mbuf is
        // reset (default headroom, no data) and ours.
        let ret = unsafe { sys::tg_alloc_bulk(self.mempool.ptr.as_ptr(), &mut m, 1) };
        if ret != 0 {
            return None;
        }
        NonNull::new(m).map(Mbuf)
    }

    #[inline]
    fn free(&mut self, buf: Mbuf) {
        if self.n == FREE_BATCH {
            self.flush();
        }
        self.pending[self.n] = buf.0.as_ptr();
        self.n += 1;
    }

    fn available(&self) -> usize {
        self.n + self.mempool.available()
    }
}

/// How a [`Device`] is set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceConfig {
    /// Rx and tx queues: one each per worker.
    pub queues: u16,
    /// Rx descriptors per queue (the driver may adjust).
    pub rx_descriptors: u16,
    /// Tx descriptors per queue (the driver may adjust).
    pub tx_descriptors: u16,
    /// The mempool's sizes, if this device's socket has none yet.
    pub pool: PoolConfig,
    /// Receive frames for every MAC address.
    pub promiscuous: bool,
}

impl Default for DeviceConfig {
    fn default() -> Self {
        DeviceConfig {
            queues: 1,
            rx_descriptors: 1024,
            tx_descriptors: 1024,
            pool: PoolConfig::default(),
            promiscuous: false,
        }
    }
}

struct DeviceInner {
    port: u16,
    name: String,
    queues: u16,
    mac: MacAddr,
    rss: bool,
    mempool: Arc<Mempool>,
    /// Rings a ring device was made from, freed after the port closes.
    rings: Vec<NonNull<sys::rte_ring>>,
}

// SAFETY: the inner data is the port id, plain values and pointers to objects DPDK shares
// between threads (mempool, rings); the port is stopped and closed once, in Drop.
unsafe impl Send for DeviceInner {}
// SAFETY: shared access only reads statistics, which DPDK allows from any thread.
unsafe impl Sync for DeviceInner {}

impl Drop for DeviceInner {
    fn drop(&mut self) {
        // SAFETY: the last handle on the port is going away (every DpdkPort and RingPeer
        // holds one), so no queue is in use; stop, close, then free the rings it used.
        unsafe {
            sys::rte_eth_dev_stop(self.port);
            sys::rte_eth_dev_close(self.port);
            for r in &self.rings {
                sys::rte_ring_free(r.as_ptr());
            }
        }
    }
}

/// An ethdev port, configured and started, with one queue pair per worker.
#[derive(Clone)]
pub struct Device {
    inner: Arc<DeviceInner>,
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Device({} port {}, {} queues)",
            self.inner.name, self.inner.port, self.inner.queues
        )
    }
}

/// Port-wide statistics of a device.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeviceStats {
    /// Packets received.
    pub rx_packets: u64,
    /// Packets sent.
    pub tx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Dropped by the NIC: rx queue full (imissed) or bad frames (ierrors).
    pub rx_dropped: u64,
    /// Receive mbuf allocation failures.
    pub rx_no_mbuf: u64,
    /// Failed transmits.
    pub tx_errors: u64,
}

fn port_names() -> String {
    let mut names = Vec::new();
    for port in 0..sys::RTE_MAX_ETHPORTS as u16 {
        let mut buf = [0 as c_char; 64];
        // SAFETY: the buffer has RTE_ETH_NAME_MAX_LEN (64) bytes; valid ports only.
        let ok = unsafe {
            sys::rte_eth_dev_is_valid_port(port) == 1
                && sys::rte_eth_dev_get_name_by_port(port, buf.as_mut_ptr()) == 0
        };
        if ok {
            // SAFETY: DPDK wrote a NUL-terminated name into buf.
            let name = unsafe { CStr::from_ptr(buf.as_ptr()) };
            names.push(name.to_string_lossy().into_owned());
        }
    }
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

impl Device {
    /// Opens the device `spec`: an ethdev name (`0000:03:00.0`, `net_null0` given with
    /// `--vdev`), or a virtual device to create, with its arguments after a comma
    /// (`net_af_packet0,iface=eth1`). Configures `cfg.queues` queue pairs and starts it.
    pub fn open(eal: &Eal, spec: &str, cfg: &DeviceConfig) -> Result<Device, DpdkError> {
        let (name, args) = spec.split_once(',').unwrap_or((spec, ""));
        let port = match find_port(name) {
            Some(p) => p,
            None if name.starts_with("net_") => {
                let cname = CString::new(name).map_err(|_| DpdkError::BadArgument(spec.into()))?;
                let cargs = CString::new(args).map_err(|_| DpdkError::BadArgument(spec.into()))?;
                // SAFETY: the EAL runs; both strings are valid C strings DPDK copies.
                let ret = unsafe { sys::rte_vdev_init(cname.as_ptr(), cargs.as_ptr()) };
                if ret < 0 {
                    return Err(setup_error(spec, "creating the virtual device", -ret));
                }
                find_port(name).ok_or_else(|| DpdkError::NoSuchDevice {
                    name: spec.into(),
                    known: port_names(),
                })?
            }
            None => {
                return Err(DpdkError::NoSuchDevice {
                    name: spec.into(),
                    known: port_names(),
                });
            }
        };
        Device::configure(eal, port, name, cfg, Vec::new())
    }

    fn configure(
        eal: &Eal,
        port: u16,
        name: &str,
        cfg: &DeviceConfig,
        rings: Vec<NonNull<sys::rte_ring>>,
    ) -> Result<Device, DpdkError> {
        let err = |step, ret: c_int| setup_error(name, step, -ret);
        // SAFETY: zeroed is a valid rte_eth_dev_info (plain C data), filled by DPDK.
        let mut info: sys::rte_eth_dev_info = unsafe { std::mem::zeroed() };
        // SAFETY: valid port id and a pointer to a writable rte_eth_dev_info.
        let ret = unsafe { sys::rte_eth_dev_info_get(port, &mut info) };
        if ret != 0 {
            return Err(err("reading the device's capabilities", ret));
        }
        let queues = cfg.queues.max(1);
        if queues > info.max_rx_queues || queues > info.max_tx_queues {
            return Err(DpdkError::Setup {
                device: name.into(),
                step: "configuring one queue pair per worker",
                reason: format!(
                    "{queues} workers need {queues} rx and tx queues; the device has {} rx and {} tx",
                    info.max_rx_queues, info.max_tx_queues
                ),
            });
        }
        // SAFETY: an all-zero rte_eth_conf is DPDK's documented default configuration.
        let mut conf: sys::rte_eth_conf = unsafe { std::mem::zeroed() };
        // SAFETY: tg_rss_hf only returns a constant.
        let rss_hf = unsafe { sys::tg_rss_hf() } & info.flow_type_rss_offloads;
        let rss = queues > 1 && rss_hf != 0;
        if rss {
            conf.rxmode.mq_mode = sys::RTE_ETH_MQ_RX_RSS;
            conf.rx_adv_conf.rss_conf.rss_hf = rss_hf;
        }
        // SAFETY: valid port, stopped (fresh or closed state), conf initialised above.
        let ret = unsafe { sys::rte_eth_dev_configure(port, queues, queues, &conf) };
        if ret != 0 {
            return Err(err("configuring", ret));
        }
        let (mut rxd, mut txd) = (cfg.rx_descriptors, cfg.tx_descriptors);
        // SAFETY: valid configured port; DPDK adjusts the two counts in place.
        let ret = unsafe { sys::rte_eth_dev_adjust_nb_rx_tx_desc(port, &mut rxd, &mut txd) };
        if ret != 0 {
            return Err(err("adjusting the descriptor counts", ret));
        }
        // SAFETY: valid port id.
        let socket = unsafe { sys::rte_eth_dev_socket_id(port) };
        let socket = if socket < 0 {
            sys::SOCKET_ID_ANY
        } else {
            socket
        };
        let mempool = Mempool::of_socket(eal, socket, cfg.pool)?;
        for q in 0..queues {
            // SAFETY: valid configured port and queue index; default queue configuration
            // (null); the mempool outlives the port (mempools are never freed).
            let ret = unsafe {
                sys::rte_eth_rx_queue_setup(
                    port,
                    q,
                    rxd,
                    socket as u32,
                    std::ptr::null(),
                    mempool.ptr.as_ptr(),
                )
            };
            if ret != 0 {
                return Err(err("setting up an rx queue", ret));
            }
            // SAFETY: as above.
            let ret = unsafe {
                sys::rte_eth_tx_queue_setup(port, q, txd, socket as u32, std::ptr::null())
            };
            if ret != 0 {
                return Err(err("setting up a tx queue", ret));
            }
        }
        // SAFETY: valid port with every queue set up.
        let ret = unsafe { sys::rte_eth_dev_start(port) };
        if ret != 0 {
            return Err(err("starting", ret));
        }
        if cfg.promiscuous {
            // SAFETY: valid started port. Some drivers cannot; frames to our MAC still come.
            let _ = unsafe { sys::rte_eth_promiscuous_enable(port) };
        }
        let mut mac = sys::rte_ether_addr::default();
        // SAFETY: valid port, writable address.
        let ret = unsafe { sys::rte_eth_macaddr_get(port, &mut mac) };
        if ret != 0 {
            return Err(err("reading the MAC address", ret));
        }
        Ok(Device {
            inner: Arc::new(DeviceInner {
                port,
                name: name.into(),
                queues,
                mac: MacAddr(mac.addr_bytes),
                rss,
                mempool,
                rings,
            }),
        })
    }

    /// Queue pair `queue` as a port for one worker.
    pub fn port(&self, queue: u16) -> DpdkPort {
        assert!(queue < self.inner.queues, "queue {queue} not configured");
        DpdkPort {
            dev: self.inner.clone(),
            port: self.inner.port,
            queue,
            registered: false,
            rx_too_big: 0,
        }
    }

    /// A worker's handle on this device's mempool.
    pub fn pool(&self) -> DpdkPool {
        DpdkPool::new(self.inner.mempool.clone())
    }

    /// The mempool its rx queues fill from.
    pub fn mempool(&self) -> &Arc<Mempool> {
        &self.inner.mempool
    }

    /// Its MAC address.
    pub fn mac(&self) -> MacAddr {
        self.inner.mac
    }

    /// Its ethdev port id.
    pub fn port_id(&self) -> u16 {
        self.inner.port
    }

    /// Queue pairs configured.
    pub fn queues(&self) -> u16 {
        self.inner.queues
    }

    /// True if the device spreads received packets over its queues by RSS.
    pub fn rss(&self) -> bool {
        self.inner.rss
    }

    /// Port-wide statistics.
    pub fn stats(&self) -> DeviceStats {
        let mut s = sys::rte_eth_stats::default();
        // SAFETY: valid port, writable statistics.
        if unsafe { sys::rte_eth_stats_get(self.inner.port, &mut s) } != 0 {
            return DeviceStats::default();
        }
        DeviceStats {
            rx_packets: s.ipackets,
            tx_packets: s.opackets,
            rx_bytes: s.ibytes,
            tx_bytes: s.obytes,
            rx_dropped: s.imissed + s.ierrors,
            rx_no_mbuf: s.rx_nombuf,
            tx_errors: s.oerrors,
        }
    }
}

fn find_port(name: &str) -> Option<u16> {
    let cname = CString::new(name).ok()?;
    let mut port = 0u16;
    // SAFETY: valid C string, writable port id.
    let ret = unsafe { sys::rte_eth_dev_get_port_by_name(cname.as_ptr(), &mut port) };
    (ret == 0).then_some(port)
}

fn setup_error(device: &str, step: &'static str, errnum: c_int) -> DpdkError {
    DpdkError::Setup {
        device: device.into(),
        step,
        reason: strerror(errnum),
    }
}

/// One queue pair of a [`Device`], owned by one worker.
pub struct DpdkPort {
    dev: Arc<DeviceInner>,
    port: u16,
    queue: u16,
    registered: bool,
    rx_too_big: u64,
}

impl std::fmt::Debug for DpdkPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DpdkPort({} queue {})", self.dev.name, self.queue)
    }
}

impl DpdkPort {
    /// The queue this port uses.
    pub fn queue(&self) -> u16 {
        self.queue
    }
}

impl Port for DpdkPort {
    type Pool = DpdkPool;

    #[inline]
    fn rx_burst(&mut self, pool: &mut DpdkPool, out: &mut Burst<Mbuf>, max: usize) {
        if !self.registered {
            ensure_thread_registered();
            self.registered = true;
        }
        pool.flush();
        let start = out.len();
        let room = max.min(out.remaining_capacity()).min(u16::MAX as usize);
        // SAFETY: Mbuf is a transparent NonNull<rte_mbuf>, so the burst's spare capacity
        // is room for `room` mbuf pointers, which the driver fills with mbufs it hands to
        // us (never null). The length is set to cover exactly those.
        let n = unsafe {
            let spare = out.as_mut_ptr().add(start) as *mut *mut sys::rte_mbuf;
            let n = sys::tg_rx_burst(self.port, self.queue, spare, room as u16) as usize;
            out.set_len(start + n);
            n
        };
        // A packet larger than one mbuf arrives as a chain; the stages see one segment.
        if n > 0 && out[start..].iter().any(|m| m.m().nb_segs != 1) {
            let mut i = start;
            while i < out.len() {
                if out[i].m().nb_segs != 1 {
                    self.rx_too_big += 1;
                    pool.free(out.remove(i));
                } else {
                    i += 1;
                }
            }
        }
    }

    #[inline]
    fn tx_burst(&mut self, _pool: &mut DpdkPool, pkts: &mut Burst<Mbuf>) -> usize {
        let n = pkts.len().min(u16::MAX as usize);
        if n == 0 {
            return 0;
        }
        // SAFETY: pkts[..n] are mbufs we own, laid out as rte_mbuf pointers (transparent
        // Mbuf). The driver takes ownership of the first `sent`.
        let sent = unsafe {
            sys::tg_tx_burst(
                self.port,
                self.queue,
                pkts.as_mut_ptr() as *mut *mut sys::rte_mbuf,
                n as u16,
            ) as usize
        };
        // The driver owns the sent mbufs now: forget our handles (Mbuf has no Drop). The
        // rest stay for the caller to free and count.
        pkts.drain(..sent);
        sent
    }

    fn stats(&mut self) -> PortStats {
        let mut s = PortStats {
            rx_too_big: self.rx_too_big,
            ..PortStats::default()
        };
        // The device's counters are port-wide: queue 0 reports them, so that the sum
        // over workers counts each once.
        if self.queue == 0 {
            let d = Device {
                inner: self.dev.clone(),
            }
            .stats();
            s.rx_dropped = d.rx_dropped;
            s.rx_no_buffer = d.rx_no_mbuf;
            s.tx_errors = d.tx_errors;
        }
        s
    }
}

/// Makes a `net_ring` device named `name` with `queues` queue pairs whose far ends are
/// the returned [`RingPeer`]s (one per queue): what a peer sends, the device receives on
/// that queue; what the device sends on that queue, the peer takes. `ring_size` (a power
/// of two) bounds each direction; a full tx ring is a short tx burst.
pub fn ring_device(
    eal: &Eal,
    name: &str,
    cfg: &DeviceConfig,
    ring_size: u32,
) -> Result<(Device, Vec<RingPeer>), DpdkError> {
    let queues = cfg.queues.max(1);
    let mut rings = Vec::with_capacity(2 * queues as usize);
    let mut make = |dir: &str, q: u16| -> Result<NonNull<sys::rte_ring>, DpdkError> {
        let rname = CString::new(format!("{name}_{dir}{q}"))
            .map_err(|_| DpdkError::BadArgument(name.into()))?;
        // SAFETY: the EAL runs; DPDK copies the name. One producer and one consumer per
        // ring: the worker owning the queue and the peer.
        let r = unsafe {
            sys::rte_ring_create(
                rname.as_ptr(),
                ring_size,
                sys::SOCKET_ID_ANY,
                sys::RING_F_SP_ENQ | sys::RING_F_SC_DEQ,
            )
        };
        let r = NonNull::new(r).ok_or_else(|| setup_error(name, "creating a ring", -1))?;
        rings.push(r);
        Ok(r)
    };
    let mut rx = Vec::new();
    let mut tx = Vec::new();
    for q in 0..queues {
        rx.push(make("rx", q)?.as_ptr());
        tx.push(make("tx", q)?.as_ptr());
    }
    let cname = CString::new(name).map_err(|_| DpdkError::BadArgument(name.into()))?;
    // SAFETY: `queues` valid rings each way; DPDK keeps the pointers, and the rings are
    // freed only after the port closes (DeviceInner's Drop).
    let port = unsafe {
        sys::rte_eth_from_rings(
            cname.as_ptr(),
            rx.as_ptr(),
            queues as u32,
            tx.as_ptr(),
            queues as u32,
            0,
        )
    };
    if port < 0 {
        for r in &rings {
            // SAFETY: rings made above and not used by any port.
            unsafe { sys::rte_ring_free(r.as_ptr()) };
        }
        return Err(DpdkError::Setup {
            device: name.into(),
            step: "creating the ring device",
            reason: last_error(),
        });
    }
    let dev = Device::configure(eal, port as u16, name, cfg, rings)?;
    let peers = (0..queues as usize)
        .map(|q| RingPeer {
            dev: dev.inner.clone(),
            to_port: NonNull::new(rx[q]).expect("made above"),
            from_port: NonNull::new(tx[q]).expect("made above"),
        })
        .collect();
    Ok((dev, peers))
}

/// The far end of one queue of a [`ring_device`]: frames in, frames out, copied in and
/// out of mbufs from the device's mempool.
pub struct RingPeer {
    dev: Arc<DeviceInner>,
    to_port: NonNull<sys::rte_ring>,
    from_port: NonNull<sys::rte_ring>,
}

// SAFETY: the peer is the only producer of `to_port` and the only consumer of
// `from_port`; it is not Clone, so moving it moves that role to the other thread.
unsafe impl Send for RingPeer {}

impl std::fmt::Debug for RingPeer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RingPeer({})", self.dev.name)
    }
}

impl RingPeer {
    /// Frames waiting for the port to receive them.
    pub fn queued(&self) -> usize {
        // SAFETY: a valid ring (freed only after every handle is gone); read-only.
        unsafe { sys::tg_ring_count(self.to_port.as_ptr()) as usize }
    }
}

impl Peer for RingPeer {
    fn push_frame(&mut self, frame: &[u8]) -> bool {
        let mut pool = DpdkPool::new(self.dev.mempool.clone());
        let Some(mut m) = pool.alloc() else {
            return false;
        };
        if !m.set_len(frame.len()) {
            pool.free(m);
            return false;
        }
        m.data_mut().copy_from_slice(frame);
        let obj = m.as_ptr() as *mut std::ffi::c_void;
        // SAFETY: a valid ring of which we are the only producer; on success the ring
        // (then the port) owns the mbuf.
        let n = unsafe { sys::tg_ring_enqueue_burst(self.to_port.as_ptr(), &obj, 1) };
        if n == 1 {
            // The ring owns the mbuf now; the handle goes (Mbuf has no Drop).
            true
        } else {
            pool.free(m);
            false
        }
    }

    fn take_frames(&mut self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut pool = DpdkPool::new(self.dev.mempool.clone());
        loop {
            let mut objs = [std::ptr::null_mut::<std::ffi::c_void>(); 32];
            // SAFETY: a valid ring of which we are the only consumer; room for 32.
            let n = unsafe {
                sys::tg_ring_dequeue_burst(self.from_port.as_ptr(), objs.as_mut_ptr(), 32)
            } as usize;
            for o in &objs[..n] {
                let m = Mbuf(NonNull::new(*o as *mut sys::rte_mbuf).expect("rings hold mbufs"));
                out.push(m.data().to_vec());
                pool.free(m);
            }
            if n < 32 {
                return out;
            }
        }
    }
}
