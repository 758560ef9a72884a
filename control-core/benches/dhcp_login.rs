//! DHCPv4 logins through the server engine alone (no I/O, no fast path, no real store):
//! one subscriber's DISCOVER, the login decided at once from a counter, OFFER, REQUEST,
//! ACK, then its RELEASE. `login` hands the engine DHCP messages; `login_frames` hands it
//! punted IPv4 datagrams and turns every transmit into an Ethernet frame, as the shell
//! will. `parse_only` is the reference in the same run: the same client messages built
//! and parsed (view and options), no engine.
//!
//! `cargo bench -p tollgate-control-core --bench dhcp_login`
//!
//! On a shared, loaded machine wall time says little; the binary also runs a fixed count
//! so that CPU time can be taken from outside (no clock is read here):
//! `perf stat -e task-clock target/release/deps/dhcp_login-* --count 100000 login`
//! (modes `login`, `frames`, `parse`; `--count 0` gives the fixed cost to subtract).

use std::hint::black_box;

use core::net::Ipv4Addr;
use core::time::Duration;

use criterion::{Criterion, criterion_group};
use tollgate_control_core::Instant;
use tollgate_control_core::dhcp::wire::{self, MessageBuilder, message_type as mt, op, option};
use tollgate_control_core::dhcp::{Event, Grant, Received, Server, ServerConfig};
use tollgate_control_core::inet::udp;
use tollgate_control_core::pppoe::{Line, Rate};

const GW: Ipv4Addr = Ipv4Addr::new(100, 64, 0, 1);
const GW_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0xfe];

/// The rate limits are policy, not cost: set high so that every iteration logs in.
fn server() -> Server {
    let unlimited = Rate {
        per_second: 1_000_000,
        burst: 1_000_000,
    };
    Server::new(
        ServerConfig {
            discover_rate: unlimited,
            discover_rate_per_mac: unlimited,
            ..ServerConfig::new(GW)
        },
        Instant(1_000_000_000),
    )
}

/// Subscriber `n`'s line, MAC and address.
fn who(n: u32) -> (Line, [u8; 6], Ipv4Addr) {
    let b = n.to_be_bytes();
    let line = Line {
        port: 0,
        svlan: Some(100),
        cvlan: Some((n % 4000) as u16 + 1),
    };
    let a = Ipv4Addr::from(u32::from(Ipv4Addr::new(100, 64, 0, 0)) + 2 + (n % 60_000));
    (line, [2, 0xd4, b[0], b[1], b[2], b[3]], a)
}

/// The client's three messages, as dhclient sends them (host name, parameter list).
fn client_messages(n: u32, a: Ipv4Addr, mac: [u8; 6]) -> [Vec<u8>; 3] {
    let prl = [1, 28, 2, 3, 15, 6, 119, 12, 44, 47, 26, 121, 42];
    let mut d = MessageBuilder::new(op::BOOTREQUEST, n, mac);
    d.option(option::MESSAGE_TYPE, &[mt::DISCOVER])
        .option(option::HOST_NAME, b"subscriber")
        .option(option::PARAMETER_REQUEST_LIST, &prl);
    let mut r = MessageBuilder::new(op::BOOTREQUEST, n, mac);
    r.option(option::MESSAGE_TYPE, &[mt::REQUEST])
        .option_ip(option::SERVER_ID, GW)
        .option_ip(option::REQUESTED_IP, a)
        .option(option::HOST_NAME, b"subscriber")
        .option(option::PARAMETER_REQUEST_LIST, &prl);
    let mut l = MessageBuilder::new(op::BOOTREQUEST, n.wrapping_add(1), mac);
    l.ciaddr(a)
        .option(option::MESSAGE_TYPE, &[mt::RELEASE])
        .option_ip(option::SERVER_ID, GW);
    [d.finish(), r.finish(), l.finish()]
}

fn grant(a: Ipv4Addr) -> Grant {
    Grant {
        dns: vec![Ipv4Addr::new(9, 9, 9, 9), Ipv4Addr::new(1, 1, 1, 1)],
        lease_time: Duration::from_secs(3600),
        ..Grant::new(a, Ipv4Addr::new(255, 255, 0, 0))
    }
}

/// One login and logout; returns whether the session started.
fn login(s: &mut Server, n: u32, frames: bool) -> bool {
    let (line, mac, a) = who(n);
    let now = Instant(1_000_000_000 + u64::from(n) * 1_000);
    let msgs = client_messages(n, a, mac);
    let mut started = false;
    for (i, m) in msgs.iter().enumerate() {
        let (src, dst) = if i == 2 {
            (a, GW)
        } else {
            (Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST)
        };
        if frames {
            let d = udp::ipv4_datagram(src, dst, 68, 67, 64, m);
            s.handle_datagram(now, line, mac, &d);
        } else {
            s.handle_input(
                now,
                &Received {
                    line,
                    src_mac: mac,
                    src_ip: src,
                    dst_ip: dst,
                    message: m,
                },
            );
        }
        while let Some(e) = s.poll_event() {
            match e {
                Event::Login(l) => s.accept(now, l.id, grant(a)).expect("decided"),
                Event::SessionStarted(_) => started = true,
                _ => {}
            }
        }
        while let Some(t) = s.poll_transmit() {
            if frames {
                black_box(t.frame(GW_MAC, 0x88a8));
            } else {
                black_box(t);
            }
        }
    }
    started
        && s.lease(&tollgate_control_core::ipoe::Subscriber::new(line, mac))
            .is_none()
}

/// The reference: the same messages built and parsed, no engine.
fn parse_only(n: u32) -> usize {
    let (_, mac, a) = who(n);
    let mut seen = 0;
    for m in client_messages(n, a, mac) {
        let p = wire::Packet::new_checked(&m[..]).expect("well-formed");
        let r = wire::Request::parse(&p).expect("options");
        seen += usize::from(r.message_type.is_some()) + r.parameters.map_or(0, |p| p.len());
    }
    seen
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("dhcp_login");
    for (name, frames) in [("login", false), ("login_frames", true)] {
        let mut s = server();
        let mut n = 0u32;
        assert!(login(&mut s, u32::MAX, frames), "the flow works");
        g.bench_function(name, |b| {
            b.iter(|| {
                n = n.wrapping_add(1);
                black_box(login(&mut s, n, frames))
            })
        });
        assert_eq!(s.refusals().map(|(_, c)| c).sum::<u64>(), 0);
        assert_eq!(s.drops().map(|(_, c)| c).sum::<u64>(), 0);
    }
    let mut n = 0u32;
    g.bench_function("parse_only", |b| {
        b.iter(|| {
            n = n.wrapping_add(1);
            black_box(parse_only(n))
        })
    });
    g.finish();
}

criterion_group!(benches, bench);

/// `--count N MODE`: N logins (or parses) of MODE and nothing else.
fn fixed_count(args: &[String]) -> Option<()> {
    let at = args.iter().position(|a| a == "--count")?;
    let n: u32 = args.get(at + 1)?.parse().ok()?;
    let mode = args.get(at + 2).map_or("login", String::as_str);
    let mut done = 0u32;
    match mode {
        "parse" => {
            for i in 0..n {
                black_box(parse_only(i));
                done += 1;
            }
        }
        m => {
            let mut s = server();
            for i in 0..n {
                done += u32::from(login(&mut s, i, m == "frames"));
            }
        }
    }
    assert_eq!(done, n);
    Some(())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if fixed_count(&args).is_some() {
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
