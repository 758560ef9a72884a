//! Arbitrary bytes into every parser and engine input of the crate: no panic, and views
//! that pass their check answer every accessor within the buffer.

use std::sync::Arc;

use proptest::prelude::*;

use tollgate_control_core::Instant;
use tollgate_control_core::entropy::Sequence;
use tollgate_control_core::ppp::wire::{self, chap, pap};
use tollgate_control_core::ppp::{
    self, AuthMethod, Grant, ProxyAuth, ProxyAuthType, ProxyLcp, Session,
};
use tollgate_control_core::pppoe::cookie::Cookies;
use tollgate_control_core::pppoe::wire as pwire;
use tollgate_control_core::pppoe::{Discovery, DiscoveryConfig, Line, LineId};
use tollgate_control_core::wire::ethernet::Frame;

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..max)
}

/// PPP protocols the engine handles, plus anything.
fn protocol() -> impl Strategy<Value = u16> {
    prop_oneof![
        Just(wire::protocol::LCP),
        Just(wire::protocol::PAP),
        Just(wire::protocol::CHAP),
        Just(wire::protocol::IPCP),
        Just(wire::protocol::IPV6CP),
        Just(wire::protocol::IPV4),
        any::<u16>(),
    ]
}

/// Control packets with a plausible header and random data, so that the engines get
/// past the length check often.
fn control_packet() -> impl Strategy<Value = Vec<u8>> {
    (1u8..14, any::<u8>(), bytes(64)).prop_map(|(c, id, data)| wire::build(c, id, &data))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn ppp_views(b in bytes(300)) {
        if let Ok(p) = wire::Packet::new_checked(&b[..]) {
            let _ = (p.code(), p.identifier(), p.length(), p.packet().len());
            for o in wire::options(p.data()).flatten() {
                let _ = (o.kind, o.u16(), o.u32(), o.value.len());
            }
            let _ = wire::check_options(p.data());
        }
        if let Ok(p) = pap::PapPacket::new_checked(&b[..]) {
            let _ = (p.code(), p.identifier(), p.peer_id(), p.password(), p.message());
        }
        if let Ok(p) = chap::ChapPacket::new_checked(&b[..]) {
            let _ = (p.code(), p.identifier(), p.value(), p.name(), p.message());
        }
    }

    #[test]
    fn pppoe_views(b in bytes(300)) {
        if let Ok(p) = pwire::Packet::new_checked(&b[..]) {
            let _ = (p.code(), p.session_id(), p.payload().len());
            for t in p.tags().flatten() {
                let _ = (t.kind, t.value.len());
                let _ = LineId::from_vendor_tag(t.value);
            }
        }
        if let Ok(p) = pwire::SessionPacket::new_checked(&b[..]) {
            let _ = (p.session_id(), p.protocol(), p.ppp_payload().len());
        }
        let _ = LineId::from_vendor_tag(&b);
        let c = Cookies::new([1; 32], 60);
        let _ = c.verify(&b, Instant(0), [0; 6], Line::untagged(0));
    }

    #[test]
    fn ethernet_view(b in bytes(64)) {
        if let Ok(f) = Frame::new_checked(&b[..]) {
            let h = f.header().unwrap();
            prop_assert!(h.payload_at <= b.len());
            prop_assert_eq!(f.payload().len(), b.len() - h.payload_at);
        }
    }

    #[test]
    fn discovery_engine(frames in prop::collection::vec((any::<u8>(), bytes(120)), 1..20)) {
        let mut d = Discovery::new(DiscoveryConfig::default(), [2, 1, 1, 1, 1, 1], [3; 32], Instant(0));
        for (i, (sel, mut payload)) in frames.into_iter().enumerate() {
            // Often a real header with a known code, so the tag code runs.
            if sel & 1 == 0 && payload.len() >= 6 {
                payload[0] = 0x11;
                payload[1] = [0x09, 0x19, 0xa7, 0x07][usize::from(sel >> 1) % 4];
                let len = (payload.len() - 6) as u16;
                payload[4..6].copy_from_slice(&len.to_be_bytes());
            }
            let src = [2, 0, 0, 0, 0, sel & 3];
            let dst = if sel & 4 == 0 { [0xff; 6] } else { [2, 1, 1, 1, 1, 1] };
            d.handle_input(Instant(i as u64 * 1_000_000), Line::untagged(0), src, dst, &payload);
            while d.poll_transmit().is_some() {}
            while d.poll_event().is_some() {}
        }
    }

    #[test]
    fn ppp_engine(
        inputs in prop::collection::vec((protocol(), prop_oneof![control_packet(), bytes(80)]), 1..30),
        decide in any::<u8>(),
        ipv6 in any::<bool>(),
    ) {
        let cfg = Arc::new(ppp::Config {
            ipv6cp: ipv6,
            auth: if decide & 1 == 0 { vec![AuthMethod::Chap] } else { vec![AuthMethod::Pap] },
            ..ppp::Config::default()
        });
        let mut rng = Sequence::new(u64::from(decide) + 1);
        let mut s = Session::new(cfg, Instant(0), &mut rng);
        for (i, (proto, payload)) in inputs.into_iter().enumerate() {
            let now = Instant(i as u64 * 700_000_000);
            s.handle_input(now, &mut rng, proto, &payload);
            s.handle_timeout(now, &mut rng);
            while s.poll_transmit().is_some() {}
            while let Some(e) = s.poll_event() {
                if let ppp::Event::Authenticate(_) = e {
                    let _ = if decide & 2 == 0 {
                        s.accept(now, &mut rng, Grant::new([10, 0, 0, 2].into()))
                    } else {
                        s.reject(now, &mut rng, "no")
                    };
                }
            }
            let _ = s.state().to_string();
        }
        s.close(Instant(u64::MAX / 2), &mut rng, "end");
        let _ = s.proxy_record();
    }

    #[test]
    fn proxy_lcp_of_any_shape(
        a in bytes(40), b in bytes(40), c in bytes(40),
        kind in 1u16..6, name in bytes(20), challenge in bytes(20), id in any::<u8>(), response in bytes(20),
    ) {
        let mut rng = Sequence::new(5);
        let lcp = ProxyLcp { initial_received: a, last_sent: b, last_received: c };
        let auth = ProxyAuth {
            kind: ProxyAuthType::from_u16(kind).unwrap(),
            name, challenge, id, response,
        };
        let mut s = Session::from_proxy(Arc::new(ppp::Config::default()), Instant(0), &mut rng, &lcp, Some(&auth));
        while s.poll_transmit().is_some() {}
        while s.poll_event().is_some() {}
        s.handle_timeout(Instant(10_000_000_000), &mut rng);
    }
}
