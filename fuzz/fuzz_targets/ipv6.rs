//! Any bytes as an IPv6 packet (header and extension-header chain, the parser the fast
//! path will use), as a chain after each first Next Header, as ICMPv6 ND, and into the ND
//! router from an IPoE subscriber and a PPP session, also wrapped in an IPv6 header with
//! hop limit 255 and a correct checksum so that the ND code runs. Never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate_control_core::Instant;
use tollgate_control_core::entropy::Sequence;
use tollgate_control_core::inet::ipv6::{self, next_header};
use tollgate_control_core::ipoe::Subscriber;
use tollgate_control_core::nd::wire::{self, Message};
use tollgate_control_core::nd::{Advert, LineMode, Peer, Router, RouterConfig};
use tollgate_control_core::pppoe::Line;

fuzz_target!(|bytes: &[u8]| {
    if let Ok(p) = ipv6::Packet::new_checked(bytes) {
        if let Ok(c) = p.chain() {
            assert!(c.offset <= p.payload().len());
        }
        let _ = p.upper_layer();
    }
    let first = bytes.first().copied().unwrap_or(0);
    let rest = bytes.get(1..).unwrap_or_default();
    for nh in [
        first,
        next_header::HOP_BY_HOP,
        next_header::ROUTING,
        next_header::FRAGMENT,
        next_header::DESTINATION_OPTIONS,
        next_header::AH,
    ] {
        if let Ok(c) = ipv6::walk(nh, rest) {
            assert!(c.offset <= rest.len());
        }
    }
    if let Ok(p) = wire::Packet::new_checked(bytes)
        && let Ok(m) = Message::parse(&p)
    {
        let _ = m.source_link_layer();
        for o in m.options().flatten() {
            let _ = o.rdnss_addresses().count();
        }
    }
    let line = Line::untagged(0);
    let mut rng = Sequence::new(u64::from(first) + 1);
    let mut r = Router::new(RouterConfig::new([2, 0, 0, 0, 0, 0xfe]));
    let sub = Peer::Ipoe(Subscriber::new(line, [2, 0, 0, 0, 0, 1]));
    if first & 1 != 0 {
        r.add_peer(Instant(0), sub, Advert { prefix: "2001:db8::/64".parse().ok(), rdnss: Vec::new() }, &mut rng);
        r.set_line(Instant(0), line, LineMode::Dedicated, &mut rng);
    }
    let gw = r.link_local();
    let src = if first & 2 == 0 { "fe80::1".parse().unwrap_or(gw) } else { core::net::Ipv6Addr::UNSPECIFIED };
    let dst = if first & 4 == 0 { gw } else { ipv6::solicited_node(gw) };
    let mut icmp = rest.to_vec();
    if icmp.len() >= 4 {
        wire::Packet::new_unchecked(&mut icmp[..]).fill_checksum(src, dst);
    }
    let wrapped = ipv6::packet(src, dst, next_header::ICMPV6, 255, &icmp);
    for peer in [sub, Peer::Ppp(1)] {
        r.handle_packet(Instant(1), peer, bytes);
        r.handle_packet(Instant(1), peer, &wrapped);
    }
    r.handle_timeout(Instant(100_000_000_000), &mut rng);
    r.remove_peer(sub);
    while let Some(t) = r.poll_transmit() {
        let _ = t.frame([2, 0, 0, 0, 0, 0xfe], 0x8100);
    }
    while r.poll_event().is_some() {}
});
