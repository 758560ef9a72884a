//! How long [`AfPacketPort`]'s receive ring can wait for its worker, and what it does
//! when waiting lasts: a stalled worker is simulated by not polling for a fixed time
//! while frames arrive at a fixed rate, so the results do not depend on the machine's
//! load. Veth pairs in throwaway namespaces (`tgr-PID-N`). They need root, so they are
//! `#[ignore]`d: `make netns-test` runs them with `--ignored`; without root they fail.
//!
//! Run: `cargo test -p tollgate-dataplane --test af_packet_ring -- --ignored --test-threads=1`

use std::time::{Duration, Instant};

use etherparse::PacketBuilder;
use tollgate_dataplane::port::af_packet::{AfPacketConfig, AfPacketPort};
use tollgate_dataplane::{BufPool, Burst, HeapPool, MacAddr, PacketBuf, Port};
use tollgate_testkit::netns::{self, Netns, RawSocket};

const A: &str = "tga";
const B: &str = "tgb";
const MAC_A: MacAddr = MacAddr([0x02, 0, 0, 0, 0x0a, 0x01]);
const MAC_B: MacAddr = MacAddr([0x02, 0, 0, 0, 0x0b, 0x01]);

fn enabled(test: &str) -> bool {
    netns::enabled(test, "the AF_PACKET port's receive ring")
}

/// Frame number `i`: 64-byte IPv4/UDP from B to A, `i` in its payload.
fn frame(i: u32) -> Vec<u8> {
    let payload = [i.to_be_bytes().as_slice(), &[0xa5; 14]].concat();
    let b = PacketBuilder::ethernet2(MAC_B.0, MAC_A.0)
        .ipv4([10, 1, 0, 2], [10, 1, 0, 1], 64)
        .udp(40000, 7777);
    let mut v = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut v, &payload).expect("fits");
    v
}

/// The sequence number in a frame built by [`frame`].
fn seq(f: &[u8]) -> u32 {
    u32::from_be_bytes(f[42..46].try_into().expect("4 bytes"))
}

/// Sends frames `first..first + n` at `pps` on a schedule (late sends catch up at once).
fn send_at(sock: &RawSocket, first: u32, n: u32, pps: u32) {
    let start = Instant::now();
    for k in 0..n {
        let due = start + Duration::from_secs_f64(k as f64 / pps as f64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        sock.send(&frame(first + k));
    }
}

/// Takes frames until `want` came or nothing came for a second (frames the ring holds
/// are handed over within one block timeout).
fn drain(port: &mut AfPacketPort, pool: &mut HeapPool, want: usize) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    let mut burst = Burst::new();
    let mut last = Instant::now();
    while got.len() < want && last.elapsed() < Duration::from_secs(1) {
        port.rx_burst(pool, &mut burst, 256);
        if !burst.is_empty() {
            last = Instant::now();
        }
        for b in burst.drain(..) {
            got.push(b.data().to_vec());
            pool.free(b);
        }
    }
    got
}

/// 12.23: at 4 kpps, a worker that does not run for 500 ms loses nothing with the
/// gateway's default ring (1024 blocks of 8 KiB, 1 ms timeout: a second at a low rate);
/// every frame arrives, in order, byte for byte, and the port says how long the
/// first one waited. (The head drop is off here: it is what the next tests are about.)
#[test]
#[ignore = "needs root and network namespaces: `make netns-test` runs it"]
fn the_default_ring_rides_out_a_half_second_stall_at_4_kpps() {
    if !enabled("the_default_ring_rides_out_a_half_second_stall_at_4_kpps") {
        return;
    }
    let ns = Netns::new("tgr");
    ns.veth_pair(A, MAC_A, B, MAC_B, 1);
    ns.enter(|| {
        let cfg = AfPacketConfig {
            max_delay_ms: 0,
            ..AfPacketConfig::new(A)
        };
        let mut port = AfPacketPort::open(&cfg).expect("port");
        let mut pool = HeapPool::new(512);
        let sock = RawSocket::bind(B, 0);
        let n = 2400;
        let stalled = Instant::now();
        // 600 ms of 4 kpps while the "worker" does not poll.
        send_at(&sock, 0, n, 4000);
        if let Some(rest) = Duration::from_millis(500).checked_sub(stalled.elapsed()) {
            std::thread::sleep(rest);
        }
        let got = drain(&mut port, &mut pool, n as usize);
        let st = port.stats();
        assert_eq!(st.rx_dropped, 0, "the ring was never full: {st:?}");
        assert_eq!(got.len(), n as usize, "every frame arrived");
        for (i, f) in got.iter().enumerate() {
            assert_eq!(f, &frame(i as u32), "frame {i} in order, byte for byte");
        }
        assert!(
            st.rx_max_wait_us >= 400_000,
            "the first frames waited for the stalled worker: {st:?}"
        );
    });
}

/// The ring's capacity at a low rate is blocks x timeout, not its bytes: 32 blocks of
/// 1 ms hold 32 ms of 4 kpps, so a one-second stall loses frames, which the port counts
/// (`rx_dropped`): received + dropped = sent, exactly.
#[test]
#[ignore = "needs root and network namespaces: `make netns-test` runs it"]
fn at_a_low_rate_the_ring_holds_blocks_times_the_timeout() {
    if !enabled("at_a_low_rate_the_ring_holds_blocks_times_the_timeout") {
        return;
    }
    let ns = Netns::new("tgr");
    ns.veth_pair(A, MAC_A, B, MAC_B, 1);
    ns.enter(|| {
        let cfg = AfPacketConfig {
            block_count: 32,
            max_delay_ms: 0,
            ..AfPacketConfig::new(A)
        };
        let mut port = AfPacketPort::open(&cfg).expect("port");
        let mut pool = HeapPool::new(512);
        let sock = RawSocket::bind(B, 0);
        let n = 4000;
        send_at(&sock, 0, n, 4000);
        let got = drain(&mut port, &mut pool, n as usize);
        let st = port.stats();
        // 32 blocks of 8 KiB hold at most 32 x 64 small frames, whatever the timing.
        assert!(
            got.len() <= 32 * 64,
            "{} frames fit in 32 blocks?",
            got.len()
        );
        assert!(st.rx_dropped > 0);
        assert_eq!(
            got.len() as u64 + st.rx_dropped,
            n as u64,
            "every frame is received or counted: {st:?}"
        );
        // What arrived is the start of the sequence (the ring filled, then the kernel
        // dropped the rest).
        for (i, f) in got.iter().enumerate() {
            assert_eq!(seq(f), i as u32);
        }
    });
}

/// Late at the head for longer than the interval (100 ms) is overload, not a stall: the
/// port drops the blocks whose frames all waited longer than `max_delay_ms`, unread, and
/// counts them (`rx_late`); fresh frames that come after are all delivered.
#[test]
#[ignore = "needs root and network namespaces: `make netns-test` runs it"]
fn lasting_lateness_is_dropped_at_the_head_and_counted() {
    if !enabled("lasting_lateness_is_dropped_at_the_head_and_counted") {
        return;
    }
    let ns = Netns::new("tgr");
    ns.veth_pair(A, MAC_A, B, MAC_B, 1);
    ns.enter(|| {
        let cfg = AfPacketConfig {
            max_delay_ms: 5,
            ..AfPacketConfig::new(A)
        };
        let mut port = AfPacketPort::open(&cfg).expect("port");
        let mut pool = HeapPool::new(512);
        let sock = RawSocket::bind(B, 0);
        let old = 400u32;
        for i in 0..old {
            sock.send(&frame(i));
        }
        // The worker falls 300 ms behind, reads one frame, and is still late 150 ms on.
        std::thread::sleep(Duration::from_millis(300));
        let mut burst = Burst::new();
        let deadline = Instant::now() + Duration::from_secs(5);
        while burst.is_empty() {
            assert!(Instant::now() < deadline, "the first block never came");
            port.rx_burst(&mut pool, &mut burst, 1);
        }
        let mut got: Vec<Vec<u8>> = burst.drain(..).map(|b| b.data().to_vec()).collect();
        std::thread::sleep(Duration::from_millis(150));
        got.extend(drain(&mut port, &mut pool, old as usize));
        let st = port.stats();
        assert!(st.rx_late > 0, "late blocks were dropped: {st:?}");
        assert_eq!(st.rx_dropped, 0);
        assert_eq!(got.len() as u64 + st.rx_late, old as u64, "{st:?}");
        for (i, f) in got.iter().enumerate() {
            assert_eq!(
                seq(f),
                i as u32,
                "what was delivered is the start, in order"
            );
        }
        // Fresh frames after that are delivered, every one.
        for i in old..old + 100 {
            sock.send(&frame(i));
        }
        let fresh = drain(&mut port, &mut pool, 100);
        assert_eq!(fresh.len(), 100);
        for (k, f) in fresh.iter().enumerate() {
            assert_eq!(f, &frame(old + k as u32));
        }
        assert_eq!(
            port.stats().rx_late,
            st.rx_late,
            "no fresh frame was dropped"
        );
    });
}
