//! Throwaway network namespaces with veth pairs, and a plain AF_PACKET socket, for the
//! tests that run ports against the real kernel (root; `#[ignore]`d, run by `make netns-test`).
//!
//! A [`Netns`] is named after its prefix, the process and a sequence number, and is
//! deleted with everything in it when dropped, also when the test fails. Code runs
//! inside it on a thread of its own ([`Netns::enter`], `setns`), so the harness's other
//! threads stay where they are; sockets keep the namespace they were made in.

use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tollgate_dataplane::MacAddr;

/// True, once it is sure the test can run: the tests that call it are `#[ignore]`d (so
/// `cargo test` lists them as ignored, never as passed), and `make netns-test` runs them
/// with `--ignored`; one that runs without root fails instead of passing unrun. `what`
/// names what the test needs root for.
pub fn enabled(test: &str, what: &str) -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "{test} is not running as root (euid {euid}): it creates network namespaces to test \
         {what}"
    );
    true
}

/// Runs a command, panicking with its stderr if it fails.
pub fn run(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A network namespace, deleted with everything in it when dropped.
pub struct Netns {
    name: String,
}

impl Netns {
    /// A new namespace `PREFIX-PID-N`, with IPv6 off (router solicitations and MLD
    /// reports would be frames the tests do not expect).
    pub fn new(prefix: &str) -> Netns {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "{prefix}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        run(&["ip", "netns", "add", &name]);
        let ns = Netns { name };
        ns.enter(|| {
            for p in ["all", "default"] {
                let _ = std::fs::write(format!("/proc/sys/net/ipv6/conf/{p}/disable_ipv6"), "1");
            }
        });
        ns
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip -n NAME ARGS...` (ARGS split at whitespace).
    pub fn ip(&self, args: &str) {
        let mut all = vec!["ip", "-n", &self.name];
        all.extend(args.split_whitespace());
        run(&all);
    }

    /// What `ip -n NAME ARGS...` prints.
    pub fn ip_output(&self, args: &str) -> String {
        let mut all = vec!["-n", &self.name];
        all.extend(args.split_whitespace());
        let out = Command::new("ip").args(&all).output().expect("ip runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A veth pair `a` (MAC `mac_a`) <-> `b` (`mac_b`), both up, each end with `queues`
    /// receive and transmit queues.
    pub fn veth_pair(&self, a: &str, mac_a: MacAddr, b: &str, mac_b: MacAddr, queues: u32) {
        self.ip(&format!(
            "link add {a} numtxqueues {queues} numrxqueues {queues} type veth peer name {b} \
             numtxqueues {queues} numrxqueues {queues}"
        ));
        self.ip(&format!("link set {a} address {mac_a}"));
        self.ip(&format!("link set {b} address {mac_b}"));
        self.ip(&format!("link set {a} up"));
        self.ip(&format!("link set {b} up"));
    }

    /// Runs `f` on a new thread inside the namespace and returns what it returns.
    pub fn enter<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let path = format!("/var/run/netns/{}", self.name);
        std::thread::scope(|s| {
            let thread = s.spawn(move || {
                let ns = File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
                // SAFETY: `ns` is an open namespace file; setns only changes this thread.
                let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
                assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
                f()
            });
            thread
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// A plain (unmapped) AF_PACKET socket on one interface, independent of the ports' code.
pub struct RawSocket(OwnedFd);

impl RawSocket {
    /// Bound to `ifname`: receives `protocol` (host order; 0 = nothing, it only sends).
    pub fn bind(ifname: &str, protocol: u16) -> RawSocket {
        // SAFETY: a plain syscall.
        let fd = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                i32::from(protocol.to_be()),
            )
        };
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        // SAFETY: a fresh descriptor nobody else owns.
        let sock = RawSocket(unsafe { OwnedFd::from_raw_fd(fd) });
        // Room for thousands of frames the test reads later (root may pass the cap).
        let bytes: libc::c_int = 32 << 20;
        // SAFETY: a readable int and its size.
        unsafe {
            libc::setsockopt(
                sock.0.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUFFORCE,
                (&raw const bytes).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
        let name = std::ffi::CString::new(ifname).expect("no NUL");
        // SAFETY: a NUL-terminated string that outlives the call.
        let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
        assert!(ifindex > 0, "no interface {ifname}");
        let addr = libc::sockaddr_ll {
            sll_family: libc::AF_PACKET as u16,
            sll_protocol: protocol.to_be(),
            sll_ifindex: ifindex as i32,
            sll_hatype: 0,
            sll_pkttype: 0,
            sll_halen: 0,
            sll_addr: [0; 8],
        };
        // SAFETY: a valid sockaddr_ll and its size.
        let rc = unsafe {
            libc::bind(
                sock.0.as_raw_fd(),
                (&raw const addr).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        assert_eq!(rc, 0, "bind: {}", std::io::Error::last_os_error());
        sock
    }

    /// Sends one frame.
    pub fn send(&self, frame: &[u8]) {
        // SAFETY: `frame` is readable for its length.
        let n = unsafe { libc::send(self.0.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
        assert_eq!(
            n,
            frame.len() as isize,
            "send: {}",
            std::io::Error::last_os_error()
        );
    }

    /// The next frame, or `None` after `timeout`.
    pub fn recv(&self, timeout: Duration) -> Option<Vec<u8>> {
        let mut pfd = libc::pollfd {
            fd: self.0.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let ready = unsafe { libc::poll(&mut pfd, 1, timeout.as_millis() as i32) };
        if ready <= 0 {
            return None;
        }
        let mut buf = vec![0u8; 65536];
        // SAFETY: `buf` is writable for its length.
        let n = unsafe {
            libc::recv(
                self.0.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT,
            )
        };
        if n < 0 {
            return None;
        }
        buf.truncate(n as usize);
        Some(buf)
    }

    /// Frames until `want` came or `timeout` passed since the last one.
    pub fn recv_n(&self, want: usize, timeout: Duration) -> Vec<Vec<u8>> {
        let mut got = Vec::new();
        while got.len() < want {
            match self.recv(timeout) {
                Some(f) => got.push(f),
                None => break,
            }
        }
        got
    }
}
