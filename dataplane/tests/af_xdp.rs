//! [`AfXdpPort`] against the real kernel: veth pairs in throwaway network namespaces,
//! the XDP program in the driver's native mode.
//!
//! These tests need root, libbpf and the `af_xdp` feature, so they are `#[ignore]`d:
//! `make netns-test` runs them with `--ignored`; without root they fail. Each test makes
//! its own namespace (`tgx-PID-N`) and deletes it, with its veths, even when it fails.
//!
//! Run: `cargo test -p tollgate-dataplane --features af_xdp --test af_xdp -- --ignored --test-threads=1`
#![cfg(feature = "af_xdp")]

use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use etherparse::PacketBuilder;
use tollgate_dataplane::port::af_xdp::{
    AfXdpError, AfXdpPort, InterfaceConfig, KernelRules, SocketConfig, Umem, XdpBuf, XdpInterface,
    XdpMode, XdpPool,
};
use tollgate_dataplane::port::{Peer, PortStats};
use tollgate_dataplane::{BufPool, Burst, MacAddr, PacketBuf, Port};
use tollgate_testkit::gateway::{self, Gateway, Queue};
use tollgate_testkit::netns::{self, Netns, RawSocket};

const A: &str = "tga";
const B: &str = "tgb";
const MAC_A: MacAddr = MacAddr([0x02, 0, 0, 0, 0x0a, 0x01]);
const MAC_B: MacAddr = MacAddr([0x02, 0, 0, 0, 0x0b, 0x01]);
const ETH_P_ALL: u16 = libc::ETH_P_ALL as u16;
const WAIT: Duration = Duration::from_secs(5);

fn enabled(test: &str) -> bool {
    netns::enabled(test, "the AF_XDP port")
}

/// Frame `i` of a test sequence: IPv4/UDP from `src` to `dst`, a different length and
/// source port each time.
fn test_frame(src: MacAddr, dst: MacAddr, i: usize) -> Vec<u8> {
    let payload: Vec<u8> = (0..20 + (i * 37) % 1200).map(|k| (k + i) as u8).collect();
    let builder = PacketBuilder::ethernet2(src.0, dst.0)
        .ipv4([10, 1, 0, 2], [10, 1, 0, 1], 64)
        .udp(40000 + i as u16, 7777);
    let mut v = Vec::with_capacity(builder.size(payload.len()));
    builder.write(&mut v, &payload).expect("fits");
    v
}

/// One worker's UMEM share and a port on queue 0 of `iface`.
fn open_port(iface: &Arc<XdpInterface>, frames: usize) -> (AfXdpPort, XdpPool) {
    let (_umem, mut pools) = Umem::new(frames, 2048, 1).expect("umem");
    let mut pool = pools.pop().expect("one pool");
    let port = AfXdpPort::open(iface, &mut pool, &SocketConfig::new(0)).expect("socket");
    (port, pool)
}

/// Polls `port` until `want` frames came or the wait ran out; frees their buffers.
fn receive(port: &mut AfXdpPort, pool: &mut XdpPool, want: usize) -> Vec<Vec<u8>> {
    let deadline = Instant::now() + WAIT;
    let mut got = Vec::new();
    let mut burst = Burst::new();
    while got.len() < want && Instant::now() < deadline {
        port.rx_burst(pool, &mut burst, 32);
        if burst.is_empty() {
            std::thread::yield_now();
        }
        for b in burst.drain(..) {
            got.push(b.data().to_vec());
            pool.free(b);
        }
    }
    got
}

/// Sends `frames` in bursts of 32 (retrying what a full ring leaves).
fn send_all(port: &mut AfXdpPort, pool: &mut XdpPool, frames: &[Vec<u8>]) {
    for chunk in frames.chunks(32) {
        let mut burst: Burst<XdpBuf> = Burst::new();
        for f in chunk {
            let mut b = pool.alloc().expect("a free frame");
            assert!(b.set_len(f.len()));
            b.data_mut().copy_from_slice(f);
            burst.push(b);
        }
        let deadline = Instant::now() + WAIT;
        while !burst.is_empty() {
            let before = burst.len();
            let sent = port.tx_burst(pool, &mut burst);
            assert_eq!(
                sent,
                before - burst.len(),
                "tx_burst removes what it reports sent"
            );
            assert!(Instant::now() < deadline, "the tx ring never drained");
        }
    }
}

/// Waits until every frame the port sent has come back to the pool.
fn wait_completed(port: &mut AfXdpPort, pool: &mut XdpPool, free: usize) {
    let deadline = Instant::now() + WAIT;
    let mut burst = Burst::new();
    while pool.available() + port.frames_held() != free || port.frames_in_flight() != 0 {
        assert!(Instant::now() < deadline, "sent frames never completed");
        port.rx_burst(pool, &mut burst, 32);
        assert!(burst.is_empty(), "nothing was sent to the port");
    }
}

/// What `ip link show` says about the XDP program on `dev`.
fn xdp_attached(ns: &Netns, dev: &str) -> bool {
    ns.ip_output(&format!("link show dev {dev}"))
        .contains("xdp")
}

#[test]
#[ignore = "needs root and network namespaces: `make netns-test` runs it"]
fn frames_cross_both_ways_byte_for_byte_in_native_mode() {
    if !enabled("frames_cross_both_ways_byte_for_byte_in_native_mode") {
        return;
    }
    let ns = Netns::new("tgx");
    ns.veth_pair(A, MAC_A, B, MAC_B, 1);
    ns.enter(|| {
        let iface = XdpInterface::open(&InterfaceConfig {
            mode: XdpMode::Native,
            ..InterfaceConfig::new(A)
        })
        .expect("native XDP on veth");
        assert_eq!(iface.mode(), XdpMode::Native);
        assert_eq!(iface.mac(), MAC_A);
        let (mut port, mut pool) = open_port(&iface, 4096);
        assert!(!port.zero_copy(), "veth has no zero-copy");
        let total = pool.available() + port.frames_held();
        assert_eq!(total, 4096);

        // In: 300 frames from the peer, every one as it was sent, in order.
        let peer = RawSocket::bind(B, 0);
        let sent: Vec<Vec<u8>> = (0..300).map(|i| test_frame(MAC_B, MAC_A, i)).collect();
        for f in &sent {
            peer.send(f);
        }
        let got = receive(&mut port, &mut pool, sent.len());
        assert_eq!(got.len(), sent.len(), "every frame arrived");
        for (i, (g, s)) in got.iter().zip(&sent).enumerate() {
            assert_eq!(g, s, "frame {i} byte for byte");
        }

        // Out: 300 frames to the peer, byte for byte, then every frame back in the pool.
        let listener = RawSocket::bind(B, ETH_P_ALL);
        let out: Vec<Vec<u8>> = (0..300).map(|i| test_frame(MAC_A, MAC_B, i + 7)).collect();
        send_all(&mut port, &mut pool, &out);
        let heard = listener.recv_n(out.len(), Duration::from_secs(2));
        assert_eq!(heard.len(), out.len(), "every frame left");
        for (i, (h, o)) in heard.iter().zip(&out).enumerate() {
            assert_eq!(h, o, "frame {i} byte for byte");
        }
        wait_completed(&mut port, &mut pool, total);

        // A frame longer than the MTU allows is refused and counted, not sent.
        let mut big: Burst<XdpBuf> = Burst::new();
        let mut b = pool.alloc().expect("frame");
        assert!(b.set_len(1515));
        b.data_mut().copy_from_slice(&vec![0x5a; 1515]);
        big.push(b);
        assert_eq!(port.tx_burst(&mut pool, &mut big), 1);
        assert!(big.is_empty());
        assert!(listener.recv(Duration::from_millis(200)).is_none());
        assert_eq!(
            port.stats(),
            PortStats {
                tx_errors: 1,
                ..PortStats::default()
            },
            "nothing lost on the way in, one refusal on the way out"
        );
        assert_eq!(
            pool.available() + port.frames_held(),
            total,
            "no frame leaked"
        );
        drop(port);
        assert!(
            xdp_attached(&ns, A),
            "still attached while the interface is held"
        );
        drop(iface);
        assert!(!xdp_attached(&ns, A), "the program left with the last port");
    });
}

/// Overload where it is cheapest: a worker that does not poll leaves frames in its rx
/// ring; once the ring is full, the kernel drops the next ones before they cost the
/// worker anything, and counts each (`rx_dropped`). The ring keeps the oldest frames in
/// order, and the port takes traffic again as soon as the worker polls.
#[test]
#[ignore = "needs root and network namespaces: `make netns-test` runs it"]
fn a_full_rx_ring_drops_the_excess_and_counts_every_frame() {
    if !enabled("a_full_rx_ring_drops_the_excess_and_counts_every_frame") {
        return;
    }
    const RING: usize = 64;
    const SENT: usize = 400;
    let ns = Netns::new("tgx");
    ns.veth_pair(A, MAC_A, B, MAC_B, 1);
    ns.enter(|| {
        let iface = XdpInterface::open(&InterfaceConfig {
            mode: XdpMode::Native,
            ..InterfaceConfig::new(A)
        })
        .expect("native XDP on veth");
        let (_umem, mut pools) = Umem::new(4096, 2048, 1).expect("umem");
        let mut pool = pools.pop().expect("one pool");
        let cfg = SocketConfig {
            rx_ring: RING as u32,
            ..SocketConfig::new(0)
        };
        let mut port = AfXdpPort::open(&iface, &mut pool, &cfg).expect("socket");
        let peer = RawSocket::bind(B, 0);
        let frames: Vec<Vec<u8>> = (0..SENT).map(|i| test_frame(MAC_B, MAC_A, i)).collect();
        // The worker is stalled: nothing polls while the frames arrive. Sent in steps of
        // 16 (veth's own queue towards XDP holds 256), each step past the ring's size
        // waited for until the kernel has counted it, so no frame is lost elsewhere.
        for (k, chunk) in frames.chunks(16).enumerate() {
            for f in chunk {
                peer.send(f);
            }
            let sent = ((k + 1) * 16).min(SENT);
            if sent > RING {
                let deadline = Instant::now() + WAIT;
                while port.stats().rx_dropped != (sent - RING) as u64 {
                    assert!(
                        Instant::now() < deadline,
                        "after {sent} frames into a ring of {RING}: {:?}",
                        port.stats()
                    );
                    std::thread::yield_now();
                }
            }
        }
        let got = receive(&mut port, &mut pool, RING);
        assert_eq!(
            got[..],
            frames[..RING],
            "the ring held the oldest frames, in order"
        );
        // Every frame was counted before the worker polled: nothing more is coming.
        let mut rest = Burst::new();
        port.rx_burst(&mut pool, &mut rest, 32);
        assert!(
            rest.is_empty(),
            "{} frames beyond the ring's size",
            rest.len()
        );
        assert_eq!(
            port.stats(),
            PortStats {
                rx_dropped: (SENT - RING) as u64,
                ..PortStats::default()
            },
            "every frame the ring could not take is counted, and as ring full"
        );
        // The worker polls again: traffic flows at once.
        let more: Vec<Vec<u8>> = (0..10)
            .map(|i| test_frame(MAC_B, MAC_A, SENT + i))
            .collect();
        for f in &more {
            peer.send(f);
        }
        assert_eq!(receive(&mut port, &mut pool, more.len()), more);
        assert_eq!(port.stats().rx_dropped, (SENT - RING) as u64);
    });
}

/// The rules leave LLDP and one /24 to the kernel: those frames reach a kernel socket and
/// not the port, and are counted; everything else reaches the port.
#[test]
#[ignore = "needs root and network namespaces: `make netns-test` runs it"]
fn kernel_rules_leave_chosen_frames_to_the_kernel() {
    if !enabled("kernel_rules_leave_chosen_frames_to_the_kernel") {
        return;
    }
    let ns = Netns::new("tgx");
    ns.veth_pair(A, MAC_A, B, MAC_B, 1);
    ns.enter(|| {
        let iface = XdpInterface::open(&InterfaceConfig {
            kernel: KernelRules {
                ethertypes: vec![0x88cc],
                prefixes: vec![(Ipv4Addr::new(10, 9, 9, 0), 24)],
            },
            ..InterfaceConfig::new(A)
        })
        .expect("attach");
        let (mut port, mut pool) = open_port(&iface, 1024);
        let kernel = RawSocket::bind(A, ETH_P_ALL);
        let peer = RawSocket::bind(B, 0);
        let mut lldp = MAC_A.0.to_vec();
        lldp.extend_from_slice(&MAC_B.0);
        lldp.extend_from_slice(&[0x88, 0xcc]);
        lldp.extend_from_slice(&[0u8; 46]);
        let mut to_mgmt = Vec::new();
        PacketBuilder::ethernet2(MAC_B.0, MAC_A.0)
            .ipv4([10, 1, 0, 2], [10, 9, 9, 200], 64)
            .udp(1, 22)
            .write(&mut to_mgmt, b"ssh")
            .expect("fits");
        let ordinary = test_frame(MAC_B, MAC_A, 1);
        for f in [&lldp, &to_mgmt, &ordinary] {
            peer.send(f);
        }
        assert_eq!(receive(&mut port, &mut pool, 1), vec![ordinary.clone()]);
        let seen = kernel.recv_n(2, Duration::from_secs(2));
        assert_eq!(
            seen,
            vec![lldp, to_mgmt],
            "the kernel got the two ruled frames"
        );
        assert!(kernel.recv(Duration::from_millis(100)).is_none());
        assert_eq!(port.stats().rx_to_kernel, 2);
    });
}

#[test]
#[ignore = "needs root and network namespaces: `make netns-test` runs it"]
fn set_up_errors_say_what_is_wrong() {
    if !enabled("set_up_errors_say_what_is_wrong") {
        return;
    }
    let ns = Netns::new("tgx");
    ns.veth_pair(A, MAC_A, B, MAC_B, 1);
    ns.ip("link add tgbr type bridge");
    ns.ip("link set tgbr up");
    ns.enter(|| {
        // No interface.
        let e = XdpInterface::open(&InterfaceConfig::new("tgnone")).unwrap_err();
        assert!(matches!(e, AfXdpError::NotFound { .. }), "{e}");
        assert!(e.to_string().contains("tgnone"), "{e}");

        // A bridge has no native XDP: asked for, an error; in auto mode, generic.
        let e = XdpInterface::open(&InterfaceConfig {
            mode: XdpMode::Native,
            ..InterfaceConfig::new("tgbr")
        })
        .unwrap_err();
        assert!(matches!(e, AfXdpError::NoNativeXdp { .. }), "{e}");
        assert!(e.to_string().contains("xdp_mode = \"generic\""), "{e}");
        let br = XdpInterface::open(&InterfaceConfig::new("tgbr")).expect("generic XDP");
        assert_eq!(br.mode(), XdpMode::Generic);
        drop(br);

        // A second program on the same interface: busy, with the first one's id.
        let iface = XdpInterface::open(&InterfaceConfig::new(A)).expect("attach");
        let e = XdpInterface::open(&InterfaceConfig::new(A)).unwrap_err();
        match &e {
            AfXdpError::InterfaceBusy { program, .. } => assert!(program.is_some(), "{e}"),
            _ => panic!("expected InterfaceBusy, got {e}"),
        }

        // A queue another socket has bound, and a queue the interface does not have.
        let (umem_port, mut pool) = open_port(&iface, 1024);
        let e = AfXdpPort::open(&iface, &mut pool, &SocketConfig::new(0)).unwrap_err();
        assert!(matches!(e, AfXdpError::QueueBusy { queue: 0, .. }), "{e}");
        let (_other, mut others) = Umem::new(1024, 2048, 1).expect("umem");
        let e = AfXdpPort::open(&iface, &mut others[0], &SocketConfig::new(0)).unwrap_err();
        assert!(matches!(e, AfXdpError::QueueBusy { queue: 0, .. }), "{e}");
        assert!(e.to_string().contains("another AF_XDP socket"), "{e}");
        let e = AfXdpPort::open(&iface, &mut pool, &SocketConfig::new(1)).unwrap_err();
        assert!(matches!(e, AfXdpError::NoSuchQueue { queue: 1, .. }), "{e}");
        assert!(e.to_string().contains("numrxqueues"), "{e}");
        // Zero-copy asked for on veth.
        drop(umem_port);
        let (_u, mut pools) = Umem::new(1024, 2048, 1).expect("umem");
        let e = AfXdpPort::open(
            &iface,
            &mut pools[0],
            &SocketConfig {
                zero_copy: tollgate_dataplane::port::af_xdp::ZeroCopy::On,
                ..SocketConfig::new(0)
            },
        )
        .unwrap_err();
        assert!(matches!(e, AfXdpError::NoZeroCopy { .. }), "{e}");
        drop(iface);
        assert!(!xdp_attached(&ns, A));
    });
}

/// Capabilities are per thread: this thread gives up all of its own, as an unprivileged
/// gateway would run, and the port says what it needs.
#[test]
#[ignore = "needs root and network namespaces: `make netns-test` runs it"]
fn without_privilege_the_error_names_the_capabilities() {
    if !enabled("without_privilege_the_error_names_the_capabilities") {
        return;
    }
    let ns = Netns::new("tgx");
    ns.veth_pair(A, MAC_A, B, MAC_B, 1);
    ns.enter(|| {
        drop_all_capabilities();
        let e = XdpInterface::open(&InterfaceConfig::new(A)).unwrap_err();
        assert!(matches!(e, AfXdpError::PermissionDenied { .. }), "{e}");
        assert!(e.to_string().contains("CAP_BPF"), "{e}");
    });
    assert!(!xdp_attached(&ns, A));
}

/// Empties the calling thread's capability sets (effective, permitted, inheritable).
fn drop_all_capabilities() {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let header = Header {
        version: 0x2008_0522, // _LINUX_CAPABILITY_VERSION_3
        pid: 0,
    };
    let data = [Data {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    // SAFETY: capset reads a header and two data structs of the version-3 layout; pid 0
    // is the calling thread only.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &raw const header, data.as_ptr()) };
    assert_eq!(rc, 0, "capset: {}", std::io::Error::last_os_error());
}

/// The far end of a gateway port in the multi-worker test: an AF_XDP socket on the same
/// queue of the peer interface, so that what it sends arrives on exactly that queue of
/// the gateway's interface (veth delivers on the sender's queue), and what the gateway's
/// worker sends on its queue arrives here.
struct XdpPeer {
    port: AfXdpPort,
    pool: XdpPool,
}

impl Peer for XdpPeer {
    fn push_frame(&mut self, frame: &[u8]) -> bool {
        let Some(mut b) = self.pool.alloc() else {
            return false;
        };
        assert!(b.set_len(frame.len()));
        b.data_mut().copy_from_slice(frame);
        let mut burst: Burst<XdpBuf> = Burst::new();
        burst.push(b);
        self.port.tx_burst(&mut self.pool, &mut burst) == 1
    }

    fn take_frames(&mut self) -> Vec<Vec<u8>> {
        let mut got = Vec::new();
        let mut burst = Burst::new();
        loop {
            self.port.rx_burst(&mut self.pool, &mut burst, 64);
            if burst.is_empty() {
                return got;
            }
            for b in burst.drain(..) {
                got.push(b.data().to_vec());
                self.pool.free(b);
            }
        }
    }
}

/// Two workers, each on its own queue of the access and the core veth: a packet sent to
/// a worker that does not own its subscriber or NAT port is handed to its owner, and
/// frames, counters, session totals and flow records are exact.
#[test]
#[ignore = "needs root and network namespaces: `make netns-test` runs it"]
fn two_workers_on_two_queues_hand_off_and_stay_exact() {
    if !enabled("two_workers_on_two_queues_hand_off_and_stay_exact") {
        return;
    }
    let ns = Netns::new("tgx");
    let acc = MacAddr([0x02, 0, 0, 0, 0, 0x01]);
    let core = MacAddr([0x02, 0, 0, 0, 0, 0x02]);
    ns.veth_pair("tgacc", acc, "tgsub", MAC_B, 2);
    ns.veth_pair(
        "tgcore",
        core,
        "tgsrv",
        MacAddr([0x02, 0, 0, 0, 0x0c, 1]),
        2,
    );
    ns.enter(|| {
        let open = |name: &str| XdpInterface::open(&InterfaceConfig::new(name)).expect("attach");
        let (gw_acc, gw_core, sub, srv) =
            (open("tgacc"), open("tgcore"), open("tgsub"), open("tgsrv"));
        assert_eq!(gw_acc.rx_queues(), Some(2));
        let (_gw_umem, gw_pools) = Umem::new(2 * 4096, 2048, 2).expect("umem");
        let (_peer_umem, peer_pools) = Umem::new(4 * 2048, 2048, 4).expect("umem");
        let mut peer_pools = peer_pools.into_iter();
        let mut peer = |iface: &Arc<XdpInterface>, q: u32| {
            let mut pool = peer_pools.next().expect("pool");
            let port = AfXdpPort::open(iface, &mut pool, &SocketConfig::new(q)).expect("peer");
            XdpPeer { port, pool }
        };
        let queues: Vec<Queue<AfXdpPort, XdpPeer>> = gw_pools
            .into_iter()
            .enumerate()
            .map(|(q, mut pool)| {
                let q = q as u32;
                let access =
                    AfXdpPort::open(&gw_acc, &mut pool, &SocketConfig::new(q)).expect("port");
                let core =
                    AfXdpPort::open(&gw_core, &mut pool, &SocketConfig::new(q)).expect("port");
                Queue {
                    access,
                    core,
                    pool,
                    access_peer: peer(&sub, q),
                    core_peer: peer(&srv, q),
                }
            })
            .collect();
        let mut g = Gateway::new([acc, core], queues, 1024).waiting_for_frames(WAIT);
        gateway::check_exact_translation(&mut g);
        for w in &mut g.workers {
            for s in w.port_stats() {
                assert_eq!(s, PortStats::default(), "nothing lost below the workers");
            }
        }
    });
}

/// The command-line view an operator has: `ip link` shows the program while a port is
/// open, in driver mode (`xdpdrv`) on veth.
#[test]
#[ignore = "needs root and network namespaces: `make netns-test` runs it"]
fn ip_link_shows_the_program_in_driver_mode() {
    if !enabled("ip_link_shows_the_program_in_driver_mode") {
        return;
    }
    let ns = Netns::new("tgx");
    ns.veth_pair(A, MAC_A, B, MAC_B, 1);
    let iface = ns.enter(|| XdpInterface::open(&InterfaceConfig::new(A)).expect("attach"));
    let out = Command::new("ip")
        .args(["-n", ns.name(), "-d", "link", "show", "dev", A])
        .output()
        .expect("ip");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("xdp"), "{text}");
    assert!(text.contains("prog/xdp"), "{text}");
    drop(iface);
    assert!(!xdp_attached(&ns, A));
}
