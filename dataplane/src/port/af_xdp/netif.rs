//! What the AF_XDP port reads about an interface: its index, MAC, MTU and queue count.
//! All through sockets made in the calling thread's network namespace (not sysfs, which
//! shows the namespace it was mounted in).

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::types::MacAddr;

/// `ETHTOOL_GCHANNELS` (`linux/ethtool.h`).
const ETHTOOL_GCHANNELS: u32 = 0x3c;

/// `struct ethtool_channels`.
#[repr(C)]
#[derive(Default)]
struct EthtoolChannels {
    cmd: u32,
    max_rx: u32,
    max_tx: u32,
    max_other: u32,
    max_combined: u32,
    rx_count: u32,
    tx_count: u32,
    other_count: u32,
    combined_count: u32,
}

/// A NUL-terminated interface name, if `name` can be one.
pub(super) fn checked_name(name: &str) -> Option<CString> {
    if name.is_empty() || name.len() >= libc::IFNAMSIZ {
        return None;
    }
    CString::new(name).ok()
}

/// The index of interface `name`.
pub(super) fn index(name: &CString) -> io::Result<u32> {
    // SAFETY: a NUL-terminated string that outlives the call.
    let i = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if i == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(i)
}

/// The hardware type (`ARPHRD_*`) and address of interface `name`.
pub(super) fn hw_address(name: &CString) -> io::Result<(u16, MacAddr)> {
    let req = ioctl(name, libc::SIOCGIFHWADDR, std::ptr::null_mut())?;
    // SAFETY: SIOCGIFHWADDR succeeded, so the kernel filled in `ifru_hwaddr`.
    let hw = unsafe { req.ifr_ifru.ifru_hwaddr };
    let mut mac = [0u8; 6];
    for (m, &b) in mac.iter_mut().zip(hw.sa_data.iter()) {
        *m = b as u8;
    }
    Ok((hw.sa_family, MacAddr(mac)))
}

/// The MTU of interface `name`.
pub(super) fn mtu(name: &CString) -> io::Result<usize> {
    let req = ioctl(name, libc::SIOCGIFMTU, std::ptr::null_mut())?;
    // SAFETY: SIOCGIFMTU succeeded, so the kernel filled in `ifru_mtu`.
    let mtu = unsafe { req.ifr_ifru.ifru_mtu };
    Ok(usize::try_from(mtu).unwrap_or(0))
}

/// How many receive queues interface `name` has in use (rx + combined channels), or
/// `None` if its driver does not say (`ETHTOOL_GCHANNELS` unsupported).
pub(super) fn rx_queues(name: &CString) -> Option<u32> {
    let mut ch = EthtoolChannels {
        cmd: ETHTOOL_GCHANNELS,
        ..EthtoolChannels::default()
    };
    ioctl(name, libc::SIOCETHTOOL, (&raw mut ch).cast()).ok()?;
    let n = ch.rx_count + ch.combined_count;
    (n > 0).then_some(n)
}

/// Runs an interface ioctl on a throwaway datagram socket; `data`, if not null, goes in
/// `ifr_data` (and must point to what the request expects).
fn ioctl(
    name: &CString,
    request: libc::c_ulong,
    data: *mut libc::c_char,
) -> io::Result<libc::ifreq> {
    // SAFETY: ifreq is plain data, for which all-zero bytes are a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, &s) in req.ifr_name.iter_mut().zip(name.as_bytes_with_nul()) {
        *d = s as libc::c_char;
    }
    if !data.is_null() {
        req.ifr_ifru.ifru_data = data;
    }
    // SAFETY: a plain syscall.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor that nothing else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: `req` is a valid ifreq with a NUL-terminated name; the requests we pass
    // write within it or within `data`, which the caller made the right type.
    let rc = unsafe { libc::ioctl(sock.as_raw_fd(), request as _, &raw mut req) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(req)
}
