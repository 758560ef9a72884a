//! [`AfPacketPort`] against the real kernel: veth pairs in throwaway network namespaces.
//!
//! These tests need root and iproute2 (`ip`), so they are `#[ignore]`d: `cargo test`
//! lists them as ignored, and `make netns-test` runs them with `--ignored` (as CI does).
//! Run without root, they fail. Each test makes its own
//! namespace, named after the process id, and deletes it, and the veths inside it, even
//! when the test fails. A test enters its namespace on a thread of its own (`setns`), so
//! the harness's other threads stay where they are. Sockets keep the namespace they were
//! made in, so a port opened there works from any thread.
//!
//! Run: `cargo test -p tollgate-dataplane --test af_packet -- --ignored --test-threads=1`

use std::net::{TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use etherparse::{NetHeaders, PacketBuilder, PacketHeaders, TransportHeader};
use tollgate_dataplane::port::af_packet::{
    AfPacketConfig, AfPacketError, AfPacketPort, interface_mac,
};
use tollgate_dataplane::{BufPool, Burst, HeapPool, MacAddr, PacketBuf, Port};
use tollgate_testkit::netns::{self, Netns, RawSocket};

/// The two ends of every test's veth pair, and their MACs.
const A: &str = "tga";
const B: &str = "tgb";
const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0x0a, 0x01];
const MAC_B: [u8; 6] = [0x02, 0, 0, 0, 0x0b, 0x01];
const ETH_P_ALL: u16 = libc::ETH_P_ALL as u16;

/// Frame `i` of a test sequence: IPv4/UDP, a different length and source port each time.
fn test_frame(src: [u8; 6], dst: [u8; 6], i: usize) -> Vec<u8> {
    let payload: Vec<u8> = (0..20 + (i * 37) % 200).map(|k| (k + i) as u8).collect();
    let builder = PacketBuilder::ethernet2(src, dst)
        .ipv4([10, 1, 0, 2], [10, 1, 0, 1], 64)
        .udp(40000 + i as u16, 7777);
    let mut v = Vec::with_capacity(builder.size(payload.len()));
    builder.write(&mut v, &payload).unwrap();
    v
}

/// A frame from tga to tgb of exactly `len` bytes, with a local-experimental ethertype
/// (or as much of that header as fits).
fn sized_frame(len: usize, fill: u8) -> Vec<u8> {
    let mut header = MAC_B.to_vec();
    header.extend_from_slice(&MAC_A);
    header.extend_from_slice(&0x88b5u16.to_be_bytes());
    let mut v = vec![fill; len];
    let n = len.min(header.len());
    v[..n].copy_from_slice(&header[..n]);
    v
}

/// Polls `port` in bursts of `max` until `want` frames came or `timeout` passed.
fn receive(
    port: &mut AfPacketPort,
    pool: &mut HeapPool,
    want: usize,
    max: usize,
    timeout: Duration,
) -> Vec<Vec<u8>> {
    let deadline = Instant::now() + timeout;
    let mut got = Vec::new();
    let mut burst = Burst::new();
    while got.len() < want && Instant::now() < deadline {
        port.rx_burst(pool, &mut burst, max);
        if burst.is_empty() {
            std::thread::sleep(Duration::from_micros(200));
        }
        for b in burst.drain(..) {
            got.push(b.data().to_vec());
            pool.free(b);
        }
    }
    got
}

/// Everything `port` receives during `time` (several block timeouts).
fn drain(port: &mut AfPacketPort, pool: &mut HeapPool, time: Duration) -> Vec<Vec<u8>> {
    receive(port, pool, usize::MAX, 64, time)
}

/// Sends `frames` in bursts of 32, retrying what a full ring leaves. Returns how many
/// calls could not take their whole burst.
fn send_all(port: &mut AfPacketPort, pool: &mut HeapPool, frames: &[Vec<u8>]) -> usize {
    let mut short = 0;
    for chunk in frames.chunks(32) {
        let mut burst = Burst::new();
        for f in chunk {
            let mut buf = pool.alloc().expect("pool");
            assert!(buf.fill(f));
            burst.push(buf);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while !burst.is_empty() {
            let before = burst.len();
            let sent = port.tx_burst(pool, &mut burst);
            assert_eq!(
                sent,
                before - burst.len(),
                "tx_burst removes what it reports sent"
            );
            if !burst.is_empty() {
                short += 1;
                assert!(Instant::now() < deadline, "the send ring never drained");
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
    short
}

/// For an IPv4 TCP or UDP frame: the protocol, and whether its checksum is right.
fn l4_checksum(frame: &[u8]) -> Option<(u8, bool)> {
    let h = PacketHeaders::from_ethernet_slice(frame).ok()?;
    let Some(NetHeaders::Ipv4(ip, _)) = &h.net else {
        return None;
    };
    let payload = h.payload.slice();
    match &h.transport {
        Some(TransportHeader::Udp(u)) => {
            Some((17, u.calc_checksum_ipv4(ip, payload).ok()? == u.checksum))
        }
        Some(TransportHeader::Tcp(t)) => {
            Some((6, t.calc_checksum_ipv4(ip, payload).ok()? == t.checksum))
        }
        _ => None,
    }
}

#[test]
#[ignore = "needs root and network namespaces: `make netns-test` runs it"]
fn rx_delivers_injected_frames_in_order() {
    if !netns::enabled("rx_delivers_injected_frames_in_order", "AF_PACKET sockets") {
        return;
    }
    let ns = Netns::new("tg-afp");
    ns.veth_pair(A, MacAddr(MAC_A), B, MacAddr(MAC_B), 1);
    let frames: Vec<Vec<u8>> = (0..100).map(|i| test_frame(MAC_B, MAC_A, i)).collect();
    ns.enter(|| {
        // Small blocks, few of them: 100 frames in rounds of 10 go round the ring ~3 times.
        let cfg = AfPacketConfig {
            block_size: 4096,
            block_count: 4,
            ..AfPacketConfig::new(A)
        };
        let mut port = AfPacketPort::open(&cfg).expect("open tga");
        assert_eq!(port.interface(), A);
        assert!(port.ifindex() > 0);
        assert_eq!(port.mac(), MacAddr(MAC_A));
        assert_eq!(interface_mac(A).unwrap(), MacAddr(MAC_A));

        let injector = RawSocket::bind(B, 0);
        let mut pool = HeapPool::new(256);
        let mut got = Vec::new();
        for (round, chunk) in frames.chunks(10).enumerate() {
            for f in chunk {
                injector.send(f);
            }
            if round == 0 {
                // No buffers: the port counts it and leaves the frames in the ring.
                let mut empty = HeapPool::new(0);
                let mut burst = Burst::new();
                let deadline = Instant::now() + Duration::from_secs(2);
                while port.stats().rx_no_buffer == 0 {
                    assert!(Instant::now() < deadline, "no block reached the port");
                    port.rx_burst(&mut empty, &mut burst, 32);
                    assert!(burst.is_empty());
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
            // Bursts of 7 stop in the middle of blocks and resume there.
            got.extend(receive(&mut port, &mut pool, 10, 7, Duration::from_secs(5)));
        }
        got.extend(drain(&mut port, &mut pool, Duration::from_millis(50)));
        assert_eq!(got.len(), frames.len(), "frames received");
        for (i, (g, f)) in got.iter().zip(&frames).enumerate() {
            assert_eq!(g, f, "frame {i} differs");
        }
        let stats = port.stats();
        assert_eq!(stats.rx_dropped, 0, "{stats:?}");
        assert_eq!(stats.rx_too_big, 0, "{stats:?}");
        assert!(stats.rx_no_buffer >= 1, "{stats:?}");
        assert_eq!(pool.available(), 256, "every buffer came back");
    });
}

#[test]
#[ignore = "needs root and network namespaces: `make netns-test` runs it"]
fn tx_sends_bursts_byte_for_byte_and_does_not_hear_itself() {
    if !netns::enabled(
        "tx_sends_bursts_byte_for_byte_and_does_not_hear_itself",
        "AF_PACKET sockets",
    ) {
        return;
    }
    let ns = Netns::new("tg-afp");
    ns.veth_pair(A, MacAddr(MAC_A), B, MacAddr(MAC_B), 1);
    let frames: Vec<Vec<u8>> = (0..100).map(|i| test_frame(MAC_A, MAC_B, i)).collect();
    ns.enter(|| {
        // 16 slots for bursts of 32: the ring fills, wraps, and tx_burst comes back short.
        let cfg = AfPacketConfig {
            tx_frames: 16,
            ..AfPacketConfig::new(A)
        };
        let mut a = AfPacketPort::open(&cfg).expect("open tga");
        let mut b = AfPacketPort::open(&AfPacketConfig::new(B)).expect("open tgb");
        let mut pool = HeapPool::new(512);

        let short = send_all(&mut a, &mut pool, &frames);
        assert!(short > 0, "a 16-slot ring took 32 frames at once");
        let got = receive(&mut b, &mut pool, 100, 32, Duration::from_secs(5));
        assert_eq!(got.len(), frames.len(), "frames received on tgb");
        for (i, (g, f)) in got.iter().zip(&frames).enumerate() {
            assert_eq!(g, f, "frame {i} differs");
        }
        let echo = drain(&mut a, &mut pool, Duration::from_millis(50));
        assert!(
            echo.is_empty(),
            "tga received {} of its own frames",
            echo.len()
        );

        // Frames the kernel would refuse leave the burst as errors; the rest go out.
        let ok1 = test_frame(MAC_A, MAC_B, 100);
        let ok2 = test_frame(MAC_A, MAC_B, 101);
        let refused = [
            sized_frame(1515, 1), // over MTU 1500 + 14, untagged
            sized_frame(2040, 2), // over a 2048-byte slot
            sized_frame(10, 3),   // shorter than an Ethernet header
        ];
        let mut burst = Burst::new();
        for f in [&refused[0], &ok1, &refused[1], &refused[2], &ok2] {
            let mut buf = pool.alloc().unwrap();
            assert!(buf.fill(f));
            burst.push(buf);
        }
        assert_eq!(a.tx_burst(&mut pool, &mut burst), 5);
        assert!(burst.is_empty());
        assert_eq!(a.stats().tx_errors, 3);
        let got = receive(&mut b, &mut pool, 2, 32, Duration::from_secs(5));
        assert_eq!(got, vec![ok1, ok2]);
        assert!(drain(&mut b, &mut pool, Duration::from_millis(20)).is_empty());

        assert_eq!(b.stats().rx_dropped, 0);
        assert_eq!(b.stats().rx_too_big, 0);
        assert_eq!(pool.available(), 512, "every buffer came back");
    });
}

#[test]
#[ignore = "needs root and network namespaces: `make netns-test` runs it"]
fn vlan_tag_the_kernel_strips_is_put_back() {
    if !netns::enabled(
        "vlan_tag_the_kernel_strips_is_put_back",
        "AF_PACKET sockets",
    ) {
        return;
    }
    let ns = Netns::new("tg-afp");
    ns.veth_pair(A, MacAddr(MAC_A), B, MacAddr(MAC_B), 1);
    let tagged = |payload_len: usize| {
        let builder = PacketBuilder::ethernet2(MAC_A, MAC_B)
            .single_vlan(etherparse::VlanId::try_new(42).unwrap())
            .ipv4([10, 1, 0, 1], [10, 1, 0, 2], 64)
            .udp(5000, 6000);
        let payload = vec![0x5au8; payload_len];
        let mut v = Vec::new();
        builder.write(&mut v, &payload).unwrap();
        v
    };
    // A small tagged frame, and one of 1518 bytes: MTU + 14 + the 4 a tag may add.
    let frames = vec![tagged(100), tagged(1500 - 28)];
    assert_eq!(frames[1].len(), 1518);
    ns.enter(|| {
        let mut a = AfPacketPort::open(&AfPacketConfig::new(A)).expect("open tga");
        let mut b = AfPacketPort::open(&AfPacketConfig::new(B)).expect("open tgb");
        let mut pool = HeapPool::new(64);
        send_all(&mut a, &mut pool, &frames);
        assert_eq!(a.stats().tx_errors, 0);
        let got = receive(&mut b, &mut pool, 2, 32, Duration::from_secs(5));
        assert_eq!(got, frames, "tagged frames arrive as sent, tag in place");
    });
}

#[test]
#[ignore = "needs root and network namespaces: `make netns-test` runs it"]
fn frames_longer_than_a_buffer_are_counted_not_delivered() {
    if !netns::enabled(
        "frames_longer_than_a_buffer_are_counted_not_delivered",
        "AF_PACKET sockets",
    ) {
        return;
    }
    let ns = Netns::new("tg-afp");
    ns.veth_pair(A, MacAddr(MAC_A), B, MacAddr(MAC_B), 1);
    ns.ip(&format!("link set {A} mtu 9000"));
    ns.ip(&format!("link set {B} mtu 9000"));
    let ok = [test_frame(MAC_B, MAC_A, 1), test_frame(MAC_B, MAC_A, 2)];
    ns.enter(|| {
        // 4 KiB blocks: an 8000-byte frame does not fit one and the ring truncates it.
        let cfg = AfPacketConfig {
            block_size: 4096,
            block_count: 8,
            ..AfPacketConfig::new(A)
        };
        let mut port = AfPacketPort::open(&cfg).expect("open tga");
        let injector = RawSocket::bind(B, 0);
        injector.send(&sized_frame(3000, 1)); // longer than a 2048-byte buffer
        injector.send(&ok[0]);
        injector.send(&sized_frame(8000, 2)); // truncated by the ring
        injector.send(&ok[1]);
        let mut pool = HeapPool::new(16);
        let mut got = receive(&mut port, &mut pool, 2, 32, Duration::from_secs(5));
        got.extend(drain(&mut port, &mut pool, Duration::from_millis(20)));
        assert_eq!(got, ok.to_vec());
        let stats = port.stats();
        assert_eq!(stats.rx_too_big, 2, "{stats:?}");
        assert_eq!(stats.rx_dropped, 0, "{stats:?}");
        assert_eq!(pool.available(), 16);
    });
}

#[test]
#[ignore = "needs root and network namespaces: `make netns-test` runs it"]
fn partial_checksums_from_the_host_stack_are_completed() {
    if !netns::enabled(
        "partial_checksums_from_the_host_stack_are_completed",
        "AF_PACKET sockets",
    ) {
        return;
    }
    let ns = Netns::new("tg-afp");
    ns.veth_pair(A, MacAddr(MAC_A), B, MacAddr(MAC_B), 1);
    // tgb's stack sends to a peer behind tgb whose MAC is tga's. veth has tx checksum
    // offload on by default, so these frames leave with partial checksums.
    ns.ip(&format!("addr add 10.99.0.1/24 dev {B}"));
    ns.ip(&format!(
        "neigh add 10.99.0.2 lladdr {} dev {B} nud permanent",
        MacAddr(MAC_A)
    ));
    ns.enter(|| {
        let mut a = AfPacketPort::open(&AfPacketConfig::new(A)).expect("open tga");
        let mut b = AfPacketPort::open(&AfPacketConfig::new(B)).expect("open tgb");
        let raw = RawSocket::bind(A, ETH_P_ALL);
        let mut pool = HeapPool::new(64);

        let udp = UdpSocket::bind("10.99.0.1:0").unwrap();
        udp.send_to(b"complete my checksum, please", "10.99.0.2:9999")
            .unwrap();
        // Nobody answers: the SYN goes out and the connect times out.
        let _ = TcpStream::connect_timeout(
            &"10.99.0.2:80".parse().unwrap(),
            Duration::from_millis(200),
        );

        // Precondition: the kernel really handed these frames over with partial checksums.
        let mut raw_seen = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(2);
        while raw_seen.len() < 2 && Instant::now() < deadline {
            let seen = raw.recv(Duration::from_millis(100));
            if let Some((proto, ok)) = seen.as_deref().and_then(l4_checksum)
                && !raw_seen.iter().any(|&(p, _)| p == proto)
            {
                raw_seen.push((proto, ok));
            }
        }
        raw_seen.sort();
        assert_eq!(
            raw_seen,
            vec![(6, false), (17, false)],
            "a plain AF_PACKET socket should see partial (wrong) TCP and UDP checksums; is tx \
             checksum offload off on {B}?"
        );

        // Through the port, both checksums verify.
        let mut checked = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(2);
        while checked.len() < 2 && Instant::now() < deadline {
            for f in receive(&mut a, &mut pool, 1, 32, Duration::from_millis(100)) {
                if let Some((proto, ok)) = l4_checksum(&f)
                    && !checked.iter().any(|&(p, _)| p == proto)
                {
                    checked.push((proto, ok));
                }
            }
        }
        checked.sort();
        assert_eq!(
            checked,
            vec![(6, true), (17, true)],
            "TCP and UDP checksums as received"
        );

        // PACKET_IGNORE_OUTGOING: tgb's own port does not see what tgb's stack sent.
        let echo = drain(&mut b, &mut pool, Duration::from_millis(20));
        assert!(
            echo.is_empty(),
            "tgb received {} of its own frames",
            echo.len()
        );
        assert_eq!(pool.available(), 64);
    });
}

#[test]
#[ignore = "needs root and network namespaces: `make netns-test` runs it"]
fn fanout_splits_flows_between_ports() {
    if !netns::enabled("fanout_splits_flows_between_ports", "AF_PACKET sockets") {
        return;
    }
    let ns = Netns::new("tg-afp");
    ns.veth_pair(A, MacAddr(MAC_A), B, MacAddr(MAC_B), 1);
    let frames: Vec<Vec<u8>> = (0..100).map(|i| test_frame(MAC_B, MAC_A, i)).collect();
    ns.enter(|| {
        let cfg = AfPacketConfig {
            fanout_group: Some(7),
            ..AfPacketConfig::new(A)
        };
        let mut ports = [
            AfPacketPort::open(&cfg).expect("open tga, fanout member 1"),
            AfPacketPort::open(&cfg).expect("open tga, fanout member 2"),
        ];
        let injector = RawSocket::bind(B, 0);
        for f in &frames {
            injector.send(f);
        }
        let mut pool = HeapPool::new(256);
        let mut got: [Vec<Vec<u8>>; 2] = Default::default();
        let deadline = Instant::now() + Duration::from_secs(5);
        while got[0].len() + got[1].len() < frames.len() && Instant::now() < deadline {
            for (port, got) in ports.iter_mut().zip(got.iter_mut()) {
                got.extend(receive(port, &mut pool, 1, 32, Duration::from_millis(5)));
            }
        }
        for (i, g) in got.iter().enumerate() {
            assert!(!g.is_empty(), "member {i} got no flows");
            // Each member sees its share in the order sent.
            let mut sent = frames.iter();
            assert!(
                g.iter().all(|f| sent.any(|s| s == f)),
                "member {i}: frames out of order or unknown"
            );
        }
        let mut all: Vec<_> = got.concat();
        all.sort();
        let mut want = frames.clone();
        want.sort();
        assert_eq!(all, want, "the members together got every frame once");
    });
}

#[test]
#[ignore = "needs root and network namespaces: `make netns-test` runs it"]
fn steering_programs_deliver_each_packet_to_its_owner() {
    if !netns::enabled(
        "steering_programs_deliver_each_packet_to_its_owner",
        "AF_PACKET sockets",
    ) {
        return;
    }
    use std::net::Ipv4Addr;
    use tollgate_dataplane::steer::{
        access_program, core_program, nat_port_worker, subscriber_worker,
    };
    let ns = Netns::new("tg-afp");
    ns.veth_pair(A, MacAddr(MAC_A), B, MacAddr(MAC_B), 1);
    let ip = |src: [u8; 4], dst: [u8; 4], tcp_port: Option<u16>| {
        let b = etherparse::PacketBuilder::ethernet2(MAC_B, MAC_A).ipv4(src, dst, 64);
        let mut v = Vec::new();
        match tcp_port {
            Some(p) => b.tcp(80, p, 1, 1000).write(&mut v, &[]).unwrap(),
            None => b.udp(5000, 6000).write(&mut v, b"x").unwrap(),
        }
        v
    };
    let nat = [Ipv4Addr::new(192, 0, 2, 1)];
    let ports = (1024u16, 65535u16);
    let workers = 3u16;
    // Uplink by source; downlink to a subscriber by destination; to a NAT address by port.
    let mut cases: Vec<(Vec<u8>, u16, bool)> = Vec::new();
    for last in 1..=30u8 {
        let sub = Ipv4Addr::new(10, 10, 0, last);
        let w = subscriber_worker(sub, workers);
        cases.push((ip(sub.octets(), [192, 0, 2, 10], None), w, true));
        cases.push((ip([192, 0, 2, 10], sub.octets(), None), w, false));
    }
    for port in [
        1024u16, 5000, 22_000, 22_861, 22_862, 44_699, 44_700, 65_000,
    ] {
        cases.push((
            ip([192, 0, 2, 10], nat[0].octets(), Some(port)),
            nat_port_worker(port, ports, workers),
            false,
        ));
    }
    for (group, access) in [(21u16, true), (22u16, false)] {
        ns.enter(|| {
            let program = if access {
                access_program(workers)
            } else {
                core_program(workers, &nat, ports)
            };
            let cfg = AfPacketConfig {
                fanout_group: Some(group),
                fanout_program: Some(program),
                ..AfPacketConfig::new(A)
            };
            let mut members: Vec<AfPacketPort> = (0..workers)
                .map(|_| AfPacketPort::open(&cfg).expect("open member"))
                .collect();
            let injector = RawSocket::bind(B, 0);
            let mine: Vec<_> = cases.iter().filter(|c| c.2 == access).collect();
            for c in &mine {
                injector.send(&c.0);
            }
            let mut pool = HeapPool::new(256);
            let mut got: Vec<Vec<Vec<u8>>> = vec![Vec::new(); workers as usize];
            let deadline = Instant::now() + Duration::from_secs(5);
            while got.iter().map(Vec::len).sum::<usize>() < mine.len() && Instant::now() < deadline
            {
                for (port, g) in members.iter_mut().zip(got.iter_mut()) {
                    g.extend(receive(port, &mut pool, 1, 32, Duration::from_millis(5)));
                }
            }
            for c in &mine {
                assert!(
                    got[c.1 as usize].contains(&c.0),
                    "{} frame went elsewhere than worker {}",
                    if access { "access" } else { "core" },
                    c.1
                );
            }
            assert_eq!(got.iter().map(Vec::len).sum::<usize>(), mine.len());
        });
    }
}

/// The access fanout program against the real kernel, which takes an 802.1Q or 802.1ad
/// outer tag off into metadata before fanout: tagged, QinQ and PPPoE uplink frames reach
/// the worker of the IPv4 source inside them, and arrive as sent (tag put back); PPP
/// control goes to worker 0.
#[test]
#[ignore = "needs root and network namespaces: `make netns-test` runs it"]
fn steering_follows_vlan_tags_and_pppoe() {
    if !netns::enabled("steering_follows_vlan_tags_and_pppoe", "AF_PACKET sockets") {
        return;
    }
    use std::net::Ipv4Addr;
    use tollgate_dataplane::steer::{access_program, subscriber_worker};
    let ns = Netns::new("tg-afp");
    ns.veth_pair(A, MacAddr(MAC_A), B, MacAddr(MAC_B), 1);
    // `tags` (TPID, TCI), then PPPoE session 7 with `ppp` protocol, or IPv4.
    let frame = |src: [u8; 4], tags: &[(u16, u16)], ppp: Option<u16>| {
        let mut ip = Vec::new();
        PacketBuilder::ipv4(src, [192, 0, 2, 10], 64)
            .udp(5000, 6000)
            .write(&mut ip, b"x")
            .unwrap();
        let mut f = MAC_A.to_vec();
        f.extend_from_slice(&MAC_B);
        for (tpid, tci) in tags {
            f.extend_from_slice(&tpid.to_be_bytes());
            f.extend_from_slice(&tci.to_be_bytes());
        }
        match ppp {
            Some(proto) => {
                f.extend_from_slice(&[0x88, 0x64, 0x11, 0x00, 0x00, 0x07]);
                f.extend_from_slice(&(ip.len() as u16 + 2).to_be_bytes());
                f.extend_from_slice(&proto.to_be_bytes());
            }
            None => f.extend_from_slice(&[0x08, 0x00]),
        }
        f.extend_from_slice(&ip);
        f
    };
    let lines: [&[(u16, u16)]; 4] = [
        &[],
        &[(0x8100, 100)],
        &[(0x88a8, 200), (0x8100, 300)],
        &[(0x8100, 201), (0x8100, 301)],
    ];
    let workers = 3u16;
    let mut cases: Vec<(Vec<u8>, u16)> = Vec::new();
    for last in 1..=12u8 {
        let sub = Ipv4Addr::new(10, 10, 0, last);
        let w = subscriber_worker(sub, workers);
        for tags in lines {
            if !tags.is_empty() {
                cases.push((frame(sub.octets(), tags, None), w));
            }
            cases.push((frame(sub.octets(), tags, Some(0x0021)), w));
        }
    }
    // LCP, untagged and QinQ: worker 0.
    cases.push((frame([10, 10, 0, 1], lines[0], Some(0xc021)), 0));
    cases.push((frame([10, 10, 0, 1], lines[2], Some(0xc021)), 0));
    ns.enter(|| {
        let cfg = AfPacketConfig {
            fanout_group: Some(23),
            fanout_program: Some(access_program(workers)),
            ..AfPacketConfig::new(A)
        };
        let mut members: Vec<AfPacketPort> = (0..workers)
            .map(|_| AfPacketPort::open(&cfg).expect("open member"))
            .collect();
        let injector = RawSocket::bind(B, 0);
        for c in &cases {
            injector.send(&c.0);
        }
        let mut pool = HeapPool::new(256);
        let mut got: Vec<Vec<Vec<u8>>> = vec![Vec::new(); workers as usize];
        let deadline = Instant::now() + Duration::from_secs(5);
        while got.iter().map(Vec::len).sum::<usize>() < cases.len() && Instant::now() < deadline {
            for (port, g) in members.iter_mut().zip(got.iter_mut()) {
                g.extend(receive(port, &mut pool, 1, 32, Duration::from_millis(5)));
            }
        }
        for c in &cases {
            assert!(
                got[c.1 as usize].contains(&c.0),
                "frame {:02x?} went elsewhere than worker {}",
                &c.0[12..24],
                c.1
            );
        }
        assert_eq!(got.iter().map(Vec::len).sum::<usize>(), cases.len());
    });
}

/// The fanout programs with L2TP on, against the real kernel (which checks the program,
/// scratch memory included, when it is attached): an LNS's L2TP data messages, all from
/// one LAC, reach the worker of the subscriber inside them (IPv4 by source, IPv6 by the
/// /56 of its source), whatever optional L2TP fields and PPP header form they have;
/// PPP control goes by the outer header. Access and core programs alike.
#[test]
#[ignore = "needs root and network namespaces: `make netns-test` runs it"]
fn steering_takes_l2tp_data_to_the_subscriber_s_worker() {
    if !netns::enabled(
        "steering_takes_l2tp_data_to_the_subscriber_s_worker",
        "AF_PACKET sockets",
    ) {
        return;
    }
    use std::net::Ipv4Addr;
    use tollgate_dataplane::steer::{
        access_program_with, core_program_with, prefix_worker, subscriber_worker,
    };
    let lac = Ipv4Addr::new(172, 16, 0, 1);
    let tunnel = Ipv4Addr::new(172, 16, 0, 2);
    let ns = Netns::new("s10c-afp");
    ns.veth_pair(A, MacAddr(MAC_A), B, MacAddr(MAC_B), 1);
    // L2TP `flags` (L: Length after them) with `extra` after the ids, then `ppp`, `inner`.
    let frame = |flags: u16, extra: &[u8], ppp: &[u8], inner: &[u8]| {
        let mut m = (flags | 2).to_be_bytes().to_vec();
        if flags & 0x4000 != 0 {
            let len = 8 + extra.len() + ppp.len() + inner.len();
            m.extend_from_slice(&(len as u16).to_be_bytes());
        }
        m.extend_from_slice(&[0, 20, 0, 5]);
        m.extend_from_slice(extra);
        m.extend_from_slice(ppp);
        m.extend_from_slice(inner);
        let mut f = Vec::new();
        PacketBuilder::ethernet2(MAC_B, MAC_A)
            .ipv4(lac.octets(), tunnel.octets(), 64)
            .udp(1701, 1701)
            .write(&mut f, &m)
            .unwrap();
        f
    };
    let workers = 3u16;
    let mut cases: Vec<(Vec<u8>, u16)> = Vec::new();
    for last in 1..=9u8 {
        let sub = Ipv4Addr::new(100, 64, 0, last);
        let mut v4 = Vec::new();
        PacketBuilder::ipv4(sub.octets(), [192, 0, 2, 10], 64)
            .udp(5000, 53)
            .write(&mut v4, &[last])
            .unwrap();
        let prefix = 0x2001_0db8_0100_0000u64 | u64::from(last) << 8;
        let mut src6 = [0u8; 16];
        src6[..8].copy_from_slice(&prefix.to_be_bytes());
        src6[15] = 1;
        let mut v6 = Vec::new();
        PacketBuilder::ipv6(src6, [0x20; 16], 64)
            .udp(5000, 53)
            .write(&mut v6, &[last])
            .unwrap();
        let (w4, w6) = (
            subscriber_worker(sub, workers),
            prefix_worker(prefix, workers),
        );
        cases.push((frame(0, &[], &[0xff, 0x03, 0x00, 0x21], &v4), w4));
        cases.push((frame(0, &[], &[0x57], &v6), w6));
        let extra = [0, 9, 0, 4, 0, 3, 0xee, 0xee, 0xee];
        cases.push((frame(0x4a00, &extra, &[0x21], &v4), w4));
        cases.push((frame(0x4a00, &extra, &[0xff, 0x03, 0x00, 0x57], &v6), w6));
    }
    let lcp = frame(0, &[], &[0xff, 0x03, 0xc0, 0x21], &[1, 1, 0, 4]);
    for (group, access) in [(24u16, true), (25u16, false)] {
        // PPP control by the outer header: its source on the access side, its
        // destination on the core side.
        let mut cases = cases.clone();
        let outer = if access { lac } else { tunnel };
        cases.push((lcp.clone(), subscriber_worker(outer, workers)));
        ns.enter(|| {
            let program = if access {
                access_program_with(workers, Some(tunnel))
            } else {
                core_program_with(workers, &[], (1024, 65535), Some(tunnel))
            };
            let cfg = AfPacketConfig {
                fanout_group: Some(group),
                fanout_program: Some(program),
                ..AfPacketConfig::new(A)
            };
            let mut members: Vec<AfPacketPort> = (0..workers)
                .map(|_| AfPacketPort::open(&cfg).expect("open member"))
                .collect();
            let injector = RawSocket::bind(B, 0);
            for c in &cases {
                injector.send(&c.0);
            }
            let mut pool = HeapPool::new(256);
            let mut got: Vec<Vec<Vec<u8>>> = vec![Vec::new(); workers as usize];
            let deadline = Instant::now() + Duration::from_secs(5);
            while got.iter().map(Vec::len).sum::<usize>() < cases.len() && Instant::now() < deadline
            {
                for (port, g) in members.iter_mut().zip(got.iter_mut()) {
                    g.extend(receive(port, &mut pool, 1, 32, Duration::from_millis(5)));
                }
            }
            for (i, c) in cases.iter().enumerate() {
                assert!(
                    got[c.1 as usize].contains(&c.0),
                    "access {access}: case {i} went elsewhere than worker {}",
                    c.1
                );
            }
            assert_eq!(got.iter().map(Vec::len).sum::<usize>(), cases.len());
        });
    }
}

#[test]
fn open_reports_a_missing_interface_by_name() {
    // Needs neither root nor a namespace: the name is looked up before any socket opens.
    let name = format!("tgmiss{}", std::process::id());
    let err = AfPacketPort::open(&AfPacketConfig::new(&name)).unwrap_err();
    assert!(
        matches!(&err, AfPacketError::NotFound { interface, .. } if *interface == name),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!("interface {name} not found: ")),
        "{msg}"
    );
    assert!(
        matches!(interface_mac(&name), Err(AfPacketError::NotFound { .. })),
        "interface_mac"
    );
    for bad in ["", "a-name-longer-than-15"] {
        let err = AfPacketPort::open(&AfPacketConfig::new(bad)).unwrap_err();
        assert!(
            matches!(err, AfPacketError::InvalidName(_)),
            "{bad:?}: {err:?}"
        );
    }
    let cfg = AfPacketConfig {
        block_size: 5000,
        ..AfPacketConfig::new(&name)
    };
    let err = AfPacketPort::open(&cfg).unwrap_err();
    assert!(matches!(err, AfPacketError::InvalidRing { .. }), "{err:?}");
}
