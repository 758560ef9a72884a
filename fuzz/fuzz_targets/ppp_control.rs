//! Any bytes as a sequence of PPP control frames (two-byte protocol, then the packet),
//! cut at length prefixes: into a PPP session that accepts every authentication, an LNS
//! session built from proxy LCP values taken from the input, and the packet views.
//! Answered, counted or dropped, never a panic.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use tollgate_control_core::Instant;
use tollgate_control_core::entropy::Sequence;
use tollgate_control_core::ppp::wire::{self, chap, pap};
use tollgate_control_core::ppp::{
    self, AuthMethod, Event, Grant, ProxyAuth, ProxyAuthType, ProxyLcp, Session,
};

fuzz_target!(|bytes: &[u8]| {
    let _ = wire::Packet::new_checked(bytes).map(|p| wire::check_options(p.data()));
    let _ = pap::PapPacket::new_checked(bytes).map(|p| (p.peer_id().len(), p.password().len()));
    let _ = chap::ChapPacket::new_checked(bytes).map(|p| (p.value().len(), p.name().len()));
    let first = bytes.first().copied().unwrap_or(0);
    let cfg = Arc::new(ppp::Config {
        auth: if first & 1 == 0 {
            vec![AuthMethod::Chap]
        } else {
            vec![AuthMethod::Pap]
        },
        ipv6cp: first & 2 != 0,
        ..ppp::Config::default()
    });
    let mut rng = Sequence::new(u64::from(first) + 1);
    let thirds = bytes.len() / 3;
    let proxy = ProxyLcp {
        initial_received: bytes[..thirds].to_vec(),
        last_sent: bytes[thirds..2 * thirds].to_vec(),
        last_received: bytes[2 * thirds..].to_vec(),
    };
    let auth = ProxyAuth {
        kind: ProxyAuthType::Chap,
        name: b"user".to_vec(),
        challenge: bytes[..thirds].to_vec(),
        id: first,
        response: bytes[thirds..].to_vec(),
    };
    let mut sessions = [
        Session::new(cfg.clone(), Instant(1), &mut rng),
        Session::from_proxy(cfg, Instant(1), &mut rng, &proxy, Some(&auth)),
    ];
    for s in &mut sessions {
        // Frames: [len][proto hi][proto lo][packet of len bytes]...
        let mut rest = bytes.get(1..).unwrap_or_default();
        let mut now = Instant(1);
        while rest.len() >= 3 {
            let len = usize::from(rest[0]).min(rest.len() - 3);
            let proto = u16::from_be_bytes([rest[1], rest[2]]);
            s.handle_input(now, &mut rng, proto, &rest[3..3 + len]);
            rest = &rest[3 + len..];
            now = now.add_ms(1_500);
            s.handle_timeout(now, &mut rng);
            while s.poll_transmit().is_some() {}
            while let Some(e) = s.poll_event() {
                if let Event::Authenticate(_) = e {
                    let _ = s.accept(now, &mut rng, Grant::new([10, 0, 0, 2].into()));
                }
            }
        }
        let _ = s.state().to_string();
        s.close(now, &mut rng, "end");
    }
});
