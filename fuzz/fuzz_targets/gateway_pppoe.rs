//! PPPoE through the gateway core: a subscriber is brought to the point where its CHAP
//! response waits for the AAA answer (discovery done, a PPP engine live), then the input
//! is split into frames punted to `Core::on_punt` as discovery frames, as session frames
//! of the live session, and as whatever Ethernet it is, with the clock moving between
//! them. Answered, counted or dropped, never a panic.
#![no_main]

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use tollgate_control_core::gateway::aaa::AaaPolicy;
use tollgate_control_core::gateway::neighbor::Timing;
use tollgate_control_core::gateway::pppoe::PppoeSettings;
use tollgate_control_core::gateway::{Core, CoreConfig, Output};
use tollgate_control_core::ppp;
use tollgate_control_core::pppoe::DiscoveryConfig;
use tollgate_control_core::pppoe::wire::{self, code, tag};
use tollgate_control_core::random::Seed;
use tollgate_control_core::time::WallClock;
use tollgate_control_core::wire::ethernet::write_header;
use tollgate_dataplane::time::Instant;
use tollgate_dataplane::{ForwardingBuilder, Frame, MacAddr, Side, SideConfig};

const AC: [u8; 6] = [2, 0xac, 0, 0, 0, 1];
const SUB: [u8; 6] = [2, 0, 0, 0, 0, 0x42];

fn core() -> Core {
    let side = |mac, a| SideConfig {
        mac: MacAddr(mac),
        address: a,
        prefix_len: 24,
    };
    let fwd = ForwardingBuilder::new(
        side(AC, Ipv4Addr::new(10, 10, 0, 1)),
        side([2, 0xc0, 0, 0, 0, 1], Ipv4Addr::new(192, 0, 2, 1)),
    )
    .build()
    .expect("forwarding");
    Core::new(
        Instant(1),
        Arc::new(fwd),
        CoreConfig {
            arp: Timing::default(),
            static_neighbors: Vec::new(),
            workers: 1,
            service_names: Vec::new(),
            clock: WallClock::UNIX,
            aaa: AaaPolicy::default(),
            l2tp: None,
            pppoe: Some(PppoeSettings {
                discovery: DiscoveryConfig::default(),
                ppp: ppp::Config::default(),
                dns: [None, None],
                mss_clamp: true,
                port_name: "access0".into(),
                seed: Seed::fixed([3; 32]),
            }),
            lns: None,
            ipv6: None,
            dhcp: None,
        },
    )
}

fn punt(c: &mut Core, now: Instant, dst: [u8; 6], ethertype: u16, payload: &[u8]) {
    let mut b = Vec::new();
    write_header(&mut b, dst, SUB, &[], ethertype);
    b.extend_from_slice(payload);
    if let Some(f) = Frame::new(Side::Access, &b) {
        c.on_punt(now, 0, &f);
    }
}

/// The payloads of the frames the core injected.
fn sent(c: &mut Core) -> Vec<Vec<u8>> {
    std::iter::from_fn(|| c.poll_output())
        .filter_map(|o| match o {
            Output::Inject(_, f) => Some(f.bytes()[14..].to_vec()),
            _ => None,
        })
        .collect()
}

fuzz_target!(|bytes: &[u8]| {
    let mut c = core();
    let mut now = Instant(2);
    let mut t = Vec::new();
    wire::put_tag(&mut t, tag::SERVICE_NAME, b"");
    punt(&mut c, now, [0xff; 6], 0x8863, &wire::build(code::PADI, 0, &t));
    let cookie = sent(&mut c).into_iter().find_map(|p| {
        let p = wire::Packet::new_checked(p).ok()?;
        p.tags()
            .flatten()
            .find(|t| t.kind == tag::AC_COOKIE)
            .map(|t| t.value.to_vec())
    });
    if let Some(k) = cookie {
        wire::put_tag(&mut t, tag::AC_COOKIE, &k);
    }
    punt(&mut c, now, AC, 0x8863, &wire::build(code::PADR, 0, &t));
    let _ = sent(&mut c);
    for chunk in bytes.chunks(64) {
        let (kind, rest) = chunk.split_first().unwrap_or((&0, &[]));
        match kind % 3 {
            0 => punt(&mut c, now, AC, 0x8863, rest),
            1 => {
                let proto = u16::from_be_bytes([
                    rest.first().copied().unwrap_or(0xc0),
                    rest.get(1).copied().unwrap_or(0x21),
                ]);
                let f = wire::session_frame(1, proto, rest.get(2..).unwrap_or_default());
                punt(&mut c, now, AC, 0x8864, &f);
            }
            _ => {
                if let Some(f) = Frame::new(Side::Access, rest) {
                    c.on_punt(now, 0, &f);
                }
            }
        }
        let _ = sent(&mut c);
        now = now + Duration::from_millis(u64::from(*kind) * 40);
        c.tick(now);
        let _ = sent(&mut c);
    }
    let _ = c.pppoe_counters();
});
