//! The XDP program on one interface: loaded from `xdp_sys::PROGRAM` with libbpf,
//! configured (which frames stay with the kernel), attached through a BPF link, and
//! removed when the last port on the interface is dropped.
//!
//! The attachment is a BPF link, not a netlink attachment: the kernel detaches the
//! program when the link's descriptor is closed, so a gateway that is killed does not
//! leave its program on the interface, and the next start does not find it busy. No BPF
//! filesystem is needed (nothing is pinned), which matters under `ip netns exec`, where
//! none is mounted.

use std::ffi::{CStr, c_char, c_int, c_void};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;

use xdp_sys as sys;

use super::{AfXdpError, KernelRules, XdpMode};

/// The program, its maps and its attachment.
pub(super) struct Program {
    /// Always `Some` until dropped: closing it detaches the program.
    link: Option<OwnedFd>,
    obj: NonNull<sys::bpf_object>,
    xsks: RawFd,
    to_kernel: RawFd,
    mode: XdpMode,
}

// SAFETY: after loading, the object is only used through its map descriptors (bpf()
// syscalls, which the kernel serialises) and freed once, on drop; libbpf keeps no
// thread-local state for it.
unsafe impl Send for Program {}
// SAFETY: shared access only updates and reads map elements through the kernel.
unsafe impl Sync for Program {}

impl Program {
    /// Loads the program, writes `rules` into it and attaches it to `ifindex` in `mode`
    /// (`Auto`: native, else generic). Returns it with the mode it got.
    pub(super) fn attach(
        interface: &str,
        ifindex: u32,
        mode: XdpMode,
        rules: &KernelRules,
    ) -> Result<Program, AfXdpError> {
        // SAFETY: installs the shim's print callback; safe at any time.
        unsafe { sys::tg_xdp_log_capture() };
        // SAFETY: PROGRAM is a static byte array that outlives the object (libbpf copies
        // what it keeps); null options are the defaults.
        let obj = unsafe {
            sys::bpf_object__open_mem(
                sys::PROGRAM.as_ptr().cast::<c_void>(),
                sys::PROGRAM.len(),
                std::ptr::null(),
            )
        };
        let Some(obj) = NonNull::new(obj) else {
            return Err(AfXdpError::Load {
                interface: interface.to_string(),
                source: std::io::Error::last_os_error(),
                log: take_log(),
            });
        };
        // From here the object is freed on every path by this guard, or by Program.
        let guard = ObjectGuard(obj);
        // SAFETY: a valid, opened object.
        let rc = unsafe { sys::bpf_object__load(obj.as_ptr()) };
        if rc < 0 {
            let source = std::io::Error::from_raw_os_error(-rc);
            return Err(match -rc {
                libc::EPERM | libc::EACCES => AfXdpError::PermissionDenied {
                    what: "loading the XDP program",
                    source,
                },
                _ => AfXdpError::Load {
                    interface: interface.to_string(),
                    source,
                    log: take_log(),
                },
            });
        }
        let prog = program_fd(obj)?;
        let xsks = map_fd(obj, c"xsks")?;
        let rules_fd = map_fd(obj, c"rules")?;
        let to_kernel = map_fd(obj, c"to_kernel")?;
        let raw = rules.to_raw();
        let key = 0u32;
        // SAFETY: the key and value have the map's sizes (u32, struct tg_rules, mirrored
        // by xdp_sys::Rules); the kernel copies both.
        let rc = unsafe {
            sys::bpf_map_update_elem(
                rules_fd,
                (&raw const key).cast(),
                (&raw const raw).cast(),
                sys::BPF_ANY as u64,
            )
        };
        if rc < 0 {
            return Err(AfXdpError::Map {
                interface: interface.to_string(),
                what: "writing the kernel rules",
                source: std::io::Error::from_raw_os_error(-rc),
            });
        }
        let (link, mode) = match mode {
            XdpMode::Native => (
                link(interface, ifindex, prog, XdpMode::Native)?,
                XdpMode::Native,
            ),
            XdpMode::Generic => (
                link(interface, ifindex, prog, XdpMode::Generic)?,
                XdpMode::Generic,
            ),
            XdpMode::Auto => match link(interface, ifindex, prog, XdpMode::Native) {
                Ok(l) => (l, XdpMode::Native),
                Err(AfXdpError::NoNativeXdp { .. }) => (
                    link(interface, ifindex, prog, XdpMode::Generic)?,
                    XdpMode::Generic,
                ),
                Err(e) => return Err(e),
            },
        };
        let obj = guard.keep();
        Ok(Program {
            link: Some(link),
            obj,
            xsks,
            to_kernel,
            mode,
        })
    }

    /// The mode the program runs in (never `Auto`).
    pub(super) fn mode(&self) -> XdpMode {
        self.mode
    }

    /// Directs queue `queue`'s frames to socket `fd`.
    pub(super) fn add_socket(&self, queue: u32, fd: RawFd) -> std::io::Result<()> {
        let value = fd as u32;
        // SAFETY: key and value are the u32s the XSKMAP expects; the kernel copies them.
        let rc = unsafe {
            sys::bpf_map_update_elem(
                self.xsks,
                (&raw const queue).cast(),
                (&raw const value).cast(),
                sys::BPF_ANY as u64,
            )
        };
        if rc < 0 {
            return Err(std::io::Error::from_raw_os_error(-rc));
        }
        Ok(())
    }

    /// Frames a rule passed to the kernel, summed over CPUs.
    pub(super) fn to_kernel(&self) -> u64 {
        // SAFETY: a plain libbpf call.
        let cpus = unsafe { sys::libbpf_num_possible_cpus() };
        let Ok(cpus) = usize::try_from(cpus) else {
            return 0;
        };
        let mut values = vec![0u64; cpus.max(1)];
        let key = 0u32;
        // SAFETY: a per-CPU array lookup writes one u64 per possible CPU into `values`,
        // which has that many.
        let rc = unsafe {
            sys::bpf_map_lookup_elem(
                self.to_kernel,
                (&raw const key).cast(),
                values.as_mut_ptr().cast(),
            )
        };
        if rc < 0 {
            return 0;
        }
        values.iter().sum()
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        // The link first: the program leaves the interface. Then libbpf frees the
        // object and closes the program's and maps' descriptors.
        drop(self.link.take());
        // SAFETY: the object is valid and freed exactly once, here; the descriptors we
        // copied out of it are not used after this.
        unsafe { sys::bpf_object__close(self.obj.as_ptr()) };
    }
}

/// Frees a loaded object unless kept.
struct ObjectGuard(NonNull<sys::bpf_object>);

impl ObjectGuard {
    /// The object, no longer freed by the guard.
    fn keep(self) -> NonNull<sys::bpf_object> {
        std::mem::ManuallyDrop::new(self).0
    }
}

impl Drop for ObjectGuard {
    fn drop(&mut self) {
        // SAFETY: an object opened by bpf_object__open_mem and not freed elsewhere (keep
        // skips this drop).
        unsafe { sys::bpf_object__close(self.0.as_ptr()) };
    }
}

fn program_fd(obj: NonNull<sys::bpf_object>) -> Result<RawFd, AfXdpError> {
    // SAFETY: a loaded object and a NUL-terminated name.
    let prog =
        unsafe { sys::bpf_object__find_program_by_name(obj.as_ptr(), sys::PROGRAM_NAME.as_ptr()) };
    if prog.is_null() {
        return Err(AfXdpError::Broken(
            "the XDP object has no program tollgate_xsk",
        ));
    }
    // SAFETY: a program of the loaded object.
    let fd = unsafe { sys::bpf_program__fd(prog) };
    if fd < 0 {
        return Err(AfXdpError::Broken(
            "the XDP program has no descriptor after loading",
        ));
    }
    Ok(fd)
}

fn map_fd(obj: NonNull<sys::bpf_object>, name: &CStr) -> Result<RawFd, AfXdpError> {
    // SAFETY: a loaded object and a NUL-terminated name.
    let map = unsafe { sys::bpf_object__find_map_by_name(obj.as_ptr(), name.as_ptr()) };
    if map.is_null() {
        return Err(AfXdpError::Broken("the XDP object lacks one of its maps"));
    }
    // SAFETY: a map of the loaded object.
    let fd = unsafe { sys::bpf_map__fd(map) };
    if fd < 0 {
        return Err(AfXdpError::Broken(
            "an XDP map has no descriptor after loading",
        ));
    }
    Ok(fd)
}

/// Attaches `prog` to `ifindex` in `mode` (Native or Generic) through a BPF link.
fn link(interface: &str, ifindex: u32, prog: RawFd, mode: XdpMode) -> Result<OwnedFd, AfXdpError> {
    let flags = match mode {
        XdpMode::Generic => sys::XDP_FLAGS_SKB_MODE,
        _ => sys::XDP_FLAGS_DRV_MODE,
    };
    let Ok(index) = c_int::try_from(ifindex) else {
        return Err(AfXdpError::Broken("interface index out of range"));
    };
    // SAFETY: plain descriptors and flags; libbpf makes one bpf() call.
    let fd = unsafe { sys::tg_xdp_link(prog, index, flags) };
    if fd >= 0 {
        // SAFETY: a fresh link descriptor that nothing else owns.
        return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
    }
    let errno = -fd;
    let source = std::io::Error::from_raw_os_error(errno);
    let interface = interface.to_string();
    Err(match errno {
        libc::EPERM | libc::EACCES => AfXdpError::PermissionDenied {
            what: "attaching the XDP program",
            source,
        },
        libc::EOPNOTSUPP if mode != XdpMode::Generic => AfXdpError::NoNativeXdp { interface },
        libc::EBUSY | libc::EEXIST => AfXdpError::InterfaceBusy {
            program: attached_program(ifindex),
            interface,
        },
        libc::ERANGE => AfXdpError::MtuTooLarge { interface, source },
        libc::ENOSPC => AfXdpError::PeerQueues { interface },
        _ => AfXdpError::Attach {
            interface,
            mode: mode.name(),
            source,
        },
    })
}

/// The id of the XDP program attached to `ifindex` in any mode, if any.
fn attached_program(ifindex: u32) -> Option<u32> {
    let mut id = 0u32;
    // SAFETY: a plain query that writes one u32.
    let rc = unsafe { sys::bpf_xdp_query_id(ifindex as c_int, 0, &raw mut id) };
    (rc == 0 && id != 0).then_some(id)
}

/// What libbpf said since the load started (the verifier's log among it).
fn take_log() -> String {
    let mut buf = vec![0 as c_char; 8192];
    // SAFETY: `buf` is writable for its length; the shim NUL-terminates within it.
    let n = unsafe { sys::tg_xdp_log_take(buf.as_mut_ptr(), buf.len()) };
    let bytes: Vec<u8> = buf[..n].iter().map(|&c| c as u8).collect();
    String::from_utf8_lossy(&bytes).trim().to_string()
}
