//! The IPv6 header and extension-header chain view (`inet::ipv6`) on scapy-built packets
//! and on crafted bad chains: what the fast path will read (upper layer, fragments,
//! router alert, routing) and every refusal by name.

#[path = "fixtures/ipoe.rs"]
mod fixtures;

use tollgate_control_core::inet::ipv6::{
    self, Chain, ChainError, Fragment, MAX_EXTENSION_HEADERS, Routing, next_header,
};
use tollgate_control_core::wire::WireError;

#[test]
fn a_full_chain_is_walked_to_the_upper_layer() {
    let p = ipv6::Packet::new_checked(&fixtures::IPV6_CHAIN[..]).unwrap();
    assert_eq!(
        (p.hop_limit(), p.next_header()),
        (64, next_header::HOP_BY_HOP)
    );
    let c = p.chain().unwrap();
    assert_eq!(
        c,
        Chain {
            extensions: 4,
            protocol: next_header::UDP,
            offset: 32,
            hop_by_hop: true,
            router_alert: Some(0),
            routing: Some(Routing {
                kind: 0,
                segments_left: 0
            }),
            fragment: Some(Fragment {
                offset: 0,
                more: true,
                id: 0x1234_5678
            }),
        }
    );
    let (proto, udp) = p.upper_layer().unwrap();
    assert_eq!((proto, &udp[..4]), (17, &[0x03, 0xe8, 0x07, 0xd0][..]));
    // etherparse agrees on where the upper layer starts.
    let e = etherparse::SlicedPacket::from_ip(&fixtures::IPV6_CHAIN).unwrap();
    let Some(etherparse::NetSlice::Ipv6(v6)) = &e.net else {
        panic!()
    };
    assert_eq!(v6.extensions().slice().len(), c.offset);
    assert!(v6.is_payload_fragmented());
}

#[test]
fn a_later_fragment_has_no_upper_layer() {
    let p = ipv6::Packet::new_checked(&fixtures::IPV6_LATER_FRAGMENT[..]).unwrap();
    let c = p.chain().unwrap();
    assert_eq!(
        c.fragment,
        Some(Fragment {
            offset: 185,
            more: false,
            id: 0x1234_5678
        })
    );
    assert!(!c.fragment.unwrap().is_first() && !c.fragment.unwrap().is_atomic());
    assert_eq!((c.protocol, c.offset), (17, 8));
    assert_eq!(c.upper_layer(), None);
    assert_eq!(p.upper_layer(), None);
    let atomic = Fragment {
        offset: 0,
        more: false,
        id: 1,
    };
    assert!(atomic.is_atomic());
}

#[test]
fn a_packet_without_extensions() {
    let p = ipv6::Packet::new_checked(&fixtures::IPV6_ECHO[..]).unwrap();
    let c = p.chain().unwrap();
    assert_eq!(
        (c.extensions, c.protocol, c.offset, c.hop_by_hop),
        (0, 58, 0, false)
    );
    assert_eq!(p.hop_limit(), 1);
}

/// A generic extension header of `len8` 8-octet units after the first.
fn ext(next: u8, len8: u8) -> Vec<u8> {
    let mut h = vec![next, len8];
    h.resize(8 * (usize::from(len8) + 1), 0);
    // Fill with PadN so option checks pass.
    if h.len() > 2 {
        h[2] = 1;
        h[3] = (h.len() - 4) as u8;
    }
    h
}

#[test]
fn bad_chains_are_refused_by_name() {
    use next_header::*;
    // Too long: nine destination-options-like headers (MOBILITY repeats are allowed).
    let mut long = Vec::new();
    for _ in 0..=MAX_EXTENSION_HEADERS {
        long.extend_from_slice(&ext(MOBILITY, 0));
    }
    assert_eq!(ipv6::walk(MOBILITY, &long), Err(ChainError::TooLong));
    // Hop-by-hop second.
    let mut hbh2 = ext(HOP_BY_HOP, 0);
    hbh2.extend_from_slice(&ext(UDP, 0));
    assert_eq!(
        ipv6::walk(DESTINATION_OPTIONS, &hbh2),
        Err(ChainError::HopByHopNotFirst)
    );
    // Two fragment headers; three destination options.
    let frag = [FRAGMENT, 0, 0, 1, 0, 0, 0, 1];
    let mut two = frag.to_vec();
    two.extend_from_slice(&[UDP, 0, 0, 1, 0, 0, 0, 1]);
    assert_eq!(ipv6::walk(FRAGMENT, &two), Err(ChainError::Repeated));
    let mut three = Vec::new();
    three.extend_from_slice(&ext(DESTINATION_OPTIONS, 0));
    three.extend_from_slice(&ext(DESTINATION_OPTIONS, 0));
    three.extend_from_slice(&ext(UDP, 0));
    assert_eq!(
        ipv6::walk(DESTINATION_OPTIONS, &three),
        Err(ChainError::Repeated)
    );
    // An option running past its header.
    let bad_opt = [UDP, 0, 1, 9, 0, 0, 0, 0];
    assert_eq!(ipv6::walk(HOP_BY_HOP, &bad_opt), Err(ChainError::BadOption));
    let lone = [UDP, 0, 0, 0, 0, 0, 0, 0x05];
    assert_eq!(
        ipv6::walk(DESTINATION_OPTIONS, &lone),
        Err(ChainError::BadOption)
    );
    // Truncated: a header longer than the payload, and the chain cut in a first fragment.
    assert_eq!(
        ipv6::walk(ROUTING, &ext(UDP, 1)[..10]),
        Err(ChainError::Truncated)
    );
    assert_eq!(ipv6::walk(HOP_BY_HOP, &[UDP]), Err(ChainError::Truncated));
    let mut cut = vec![ROUTING, 0, 0, 0, 0, 0, 0, 1];
    cut.extend_from_slice(&[UDP, 2]);
    assert_eq!(ipv6::walk(FRAGMENT, &cut), Err(ChainError::Truncated));
    // AH: (len + 2) * 4 bytes.
    let mut ah = vec![UDP, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    ah.extend_from_slice(&[0; 8]);
    let c = ipv6::walk(AH, &ah).unwrap();
    assert_eq!((c.protocol, c.offset), (UDP, 12));
    // ESP ends the walk.
    assert_eq!(
        ipv6::walk(ESP, &[1, 2, 3]).map(|c| (c.protocol, c.offset)),
        Ok((ESP, 0))
    );
    // The names the fast path counts.
    assert_eq!(ChainError::TooLong.name(), "ipv6_ext_chain_too_long");
    // A packet with a lying payload length.
    let mut p = fixtures::IPV6_ECHO.to_vec();
    p[5] += 1;
    assert_eq!(
        ipv6::Packet::new_checked(&p[..]).err(),
        Some(WireError::Truncated)
    );
}
