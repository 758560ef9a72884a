//! The access side's IPv6 router with a fake clock: NS/NA for the gateway's addresses
//! (and DAD defence), RAs per subscriber (unicast, its /64, RDNSS), periodic and
//! solicited timing, final RAs, dedicated lines, PPP peers, and RA guard; packets
//! checked byte by byte (etherparse agrees on checksums).

#[path = "fixtures/ipoe.rs"]
mod fixtures;

use core::net::Ipv6Addr;
use core::time::Duration;

use tollgate_control_core::Instant;
use tollgate_control_core::entropy::Sequence;
use tollgate_control_core::inet::ipv6::{self, Prefix};
use tollgate_control_core::ipoe::Subscriber;
use tollgate_control_core::nd::wire::{self, Builder, Message, NdOption, icmp_type, na_flag};
use tollgate_control_core::nd::{
    Advert, DropReason, Event, LineMode, Link, Peer, Router, RouterConfig, Transmit,
};
use tollgate_control_core::pppoe::Line;

const GW_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0xfe];
const MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
const T0: Instant = Instant(1_000_000_000);

fn at(ms: u64) -> Instant {
    T0.add_ms(ms)
}

fn line() -> Line {
    Line {
        port: 0,
        svlan: Some(10),
        cvlan: Some(20),
    }
}

fn peer() -> Peer {
    Peer::Ipoe(Subscriber::new(line(), MAC))
}

fn gw_ll() -> Ipv6Addr {
    "fe80::ff:fe00:fe".parse().unwrap()
}

fn client_ll() -> Ipv6Addr {
    "fe80::ff:fe00:1".parse().unwrap()
}

fn global() -> Ipv6Addr {
    "2001:db8:ffff::1".parse().unwrap()
}

fn prefix() -> Prefix {
    "2001:db8:0:42::/64".parse().unwrap()
}

fn router() -> Router {
    Router::new(RouterConfig {
        addresses: vec![global()],
        rdnss: vec!["2001:db8::53".parse().unwrap()],
        ..RouterConfig::new(GW_MAC)
    })
}

fn transmits(r: &mut Router) -> Vec<Transmit> {
    std::iter::from_fn(|| r.poll_transmit()).collect()
}

/// The IPv6 header facts and the ICMPv6 bytes of a transmit, checksum checked by
/// etherparse.
fn icmp(t: &Transmit) -> (Ipv6Addr, Ipv6Addr, u8, Vec<u8>) {
    let ip = ipv6::Packet::new_checked(&t.packet[..]).unwrap();
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    assert_eq!(ip.next_header(), 58);
    let body = ip.payload().to_vec();
    let e = etherparse::Icmpv6Slice::from_slice(&body).unwrap();
    assert!(e.is_checksum_valid(src.octets(), dst.octets()), "checksum");
    (src, dst, ip.hop_limit(), body)
}

/// An ND packet from the subscriber.
fn nd_packet(src: Ipv6Addr, dst: Ipv6Addr, hop_limit: u8, b: &mut Builder) -> Vec<u8> {
    let m = b.finish(src, dst);
    ipv6::packet(src, dst, 58, hop_limit, &m)
}

fn options(body: &[u8]) -> Vec<NdOption<'_>> {
    let p = wire::Packet::new_unchecked(body);
    let off = match p.msg_type() {
        icmp_type::ROUTER_ADVERT => 16,
        _ => 24,
    };
    wire::options(&body[off..]).map(Result::unwrap).collect()
}

#[test]
fn a_neighbor_solicitation_for_the_gateway_is_answered_byte_by_byte() {
    let mut r = router();
    assert_eq!(r.link_local(), gw_ll());
    r.handle_packet(T0, peer(), &fixtures::ND_NS_GATEWAY);
    let t = transmits(&mut r);
    assert_eq!(t.len(), 1);
    assert_eq!(
        t[0].to,
        Link::Ethernet {
            line: line(),
            mac: MAC
        }
    );
    let f = t[0].frame(GW_MAC, 0x88a8).unwrap();
    let e = etherparse::SlicedPacket::from_ethernet(&f).unwrap();
    assert_eq!(
        e.vlan_ids().iter().map(|v| v.value()).collect::<Vec<_>>(),
        [10, 20]
    );
    let (src, dst, hl, body) = icmp(&t[0]);
    assert_eq!((src, dst, hl), (gw_ll(), client_ll(), 255));
    let mut want = vec![136, 0, 0, 0, 0xe0, 0, 0, 0];
    want.extend_from_slice(&gw_ll().octets());
    want.extend_from_slice(&[2, 1, 2, 0, 0, 0, 0, 0xfe]);
    assert_eq!(&body[..2], &want[..2]);
    assert_eq!(
        &body[4..],
        &want[4..],
        "R|S|O, the target, TLLA = the port MAC"
    );
    // The global address too.
    let ns = nd_packet(
        client_ll(),
        ipv6::solicited_node(global()),
        255,
        Builder::neighbor_solicit(global()).source_link_layer(MAC),
    );
    r.handle_packet(T0, peer(), &ns);
    let (src, _, _, body) = icmp(&transmits(&mut r)[0]);
    assert_eq!(src, global());
    assert_eq!(
        Message::parse(&wire::Packet::new_unchecked(&body[..])),
        Ok(Message::NeighborAdvert {
            flags: na_flag::ROUTER | na_flag::SOLICITED | na_flag::OVERRIDE,
            target: global(),
            options: &body[24..],
        })
    );
    // Someone else's address: not answered (no proxy ND).
    let other: Ipv6Addr = "fe80::ff:fe00:2".parse().unwrap();
    let ns = nd_packet(
        client_ll(),
        ipv6::solicited_node(other),
        255,
        &mut Builder::neighbor_solicit(other),
    );
    r.handle_packet(T0, peer(), &ns);
    assert!(transmits(&mut r).is_empty());
    assert_eq!(r.drop_count(DropReason::NotOurTarget), 1);
    assert_eq!((r.stats().ns, r.stats().na), (2, 2));
}

#[test]
fn a_duplicate_address_probe_for_the_gateways_address_is_defended() {
    let mut r = router();
    let dad = nd_packet(
        Ipv6Addr::UNSPECIFIED,
        ipv6::solicited_node(gw_ll()),
        255,
        &mut Builder::neighbor_solicit(gw_ll()),
    );
    r.handle_packet(T0, peer(), &dad);
    let t = transmits(&mut r);
    assert_eq!(
        t[0].to,
        Link::Ethernet {
            line: line(),
            mac: [0x33, 0x33, 0, 0, 0, 1]
        }
    );
    let (_, dst, _, body) = icmp(&t[0]);
    assert_eq!(
        (dst, body[4]),
        (ipv6::ALL_NODES, na_flag::ROUTER | na_flag::OVERRIDE)
    );
    // DAD rules: to the solicited-node group, and no source link-layer option.
    let wrong_dst = nd_packet(
        Ipv6Addr::UNSPECIFIED,
        gw_ll(),
        255,
        &mut Builder::neighbor_solicit(gw_ll()),
    );
    let with_slla = nd_packet(
        Ipv6Addr::UNSPECIFIED,
        ipv6::solicited_node(gw_ll()),
        255,
        Builder::neighbor_solicit(gw_ll()).source_link_layer(MAC),
    );
    r.handle_packet(T0, peer(), &wrong_dst);
    r.handle_packet(T0, peer(), &with_slla);
    assert_eq!(r.drop_count(DropReason::BadSource), 2);
}

#[test]
fn a_router_solicitation_from_an_unknown_subscriber_gets_a_generic_ra_and_an_event() {
    let mut r = Router::new(RouterConfig {
        managed: true,
        other: true,
        mtu: Some(1500),
        ..RouterConfig::new(GW_MAC)
    });
    r.handle_packet(T0, peer(), &fixtures::ND_RS);
    assert_eq!(
        r.poll_event(),
        Some(Event::Solicited {
            peer: peer(),
            source: client_ll()
        })
    );
    let t = transmits(&mut r);
    assert_eq!(
        t[0].to,
        Link::Ethernet {
            line: line(),
            mac: MAC
        }
    );
    let (src, dst, hl, body) = icmp(&t[0]);
    assert_eq!((src, dst, hl), (gw_ll(), client_ll(), 255));
    assert_eq!(&body[..2], &[134, 0]);
    assert_eq!(
        &body[4..16],
        &[64, 0xc0, 0x07, 0x08, 0, 0, 0, 0, 0, 0, 0, 0],
        "hop limit 64, M|O, lifetime 1800"
    );
    assert_eq!(
        options(&body),
        [NdOption::SourceLinkLayer(GW_MAC), NdOption::Mtu(1500)],
        "no prefix for a stranger"
    );
    // Again within 3 s: counted, not answered.
    r.handle_packet(at(2999), peer(), &fixtures::ND_RS);
    assert!(transmits(&mut r).is_empty());
    assert_eq!(r.drop_count(DropReason::RsRate), 1);
    r.handle_packet(at(3000), peer(), &fixtures::ND_RS);
    assert_eq!(transmits(&mut r).len(), 1);
    assert_eq!((r.stats().rs, r.stats().ra_solicited), (3, 2));
}

#[test]
fn a_subscriber_gets_its_own_prefix_by_unicast_ras_at_rfc_4861_intervals() {
    let mut r = router();
    let mut rng = Sequence::new(3);
    r.add_peer(
        T0,
        peer(),
        Advert {
            prefix: Some(prefix()),
            rdnss: Vec::new(),
        },
        &mut rng,
    );
    let t = transmits(&mut r);
    assert_eq!(t.len(), 1);
    assert_eq!(
        t[0].to,
        Link::Ethernet {
            line: line(),
            mac: MAC
        },
        "layer-2 unicast (RFC 6085)"
    );
    let (_, dst, _, body) = icmp(&t[0]);
    assert_eq!(dst, ipv6::ALL_NODES, "link-local not known yet");
    let o = options(&body);
    assert_eq!(o[0], NdOption::SourceLinkLayer(GW_MAC));
    assert_eq!(
        o[1],
        NdOption::PrefixInfo {
            prefix: prefix(),
            flags: 0xc0,
            valid: 86_400,
            preferred: 14_400
        }
    );
    assert_eq!(
        o[2].rdnss_addresses().collect::<Vec<_>>(),
        ["2001:db8::53".parse::<Ipv6Addr>().unwrap()]
    );
    assert!(matches!(o[2], NdOption::Rdnss { lifetime: 1800, .. }));
    // Three initial RAs at most 16 s apart, then every 200..600 s.
    let mut now = T0;
    let mut gaps = Vec::new();
    for _ in 0..6 {
        let next = r.poll_timeout().unwrap();
        gaps.push(next.since(now));
        r.handle_timeout(next, &mut rng);
        assert_eq!(transmits(&mut r).len(), 1);
        now = next;
    }
    assert!(
        gaps[..2].iter().all(|g| *g <= Duration::from_secs(16)),
        "{gaps:?}"
    );
    assert!(
        gaps[2..]
            .iter()
            .all(|g| (Duration::from_secs(200)..Duration::from_secs(600)).contains(g)),
        "{gaps:?}"
    );
    assert_eq!(r.stats().ra_unsolicited, 7);
    // Its RS (from its link-local) gets the same RA, now to that address.
    r.handle_packet(now, peer(), &fixtures::ND_RS);
    assert_eq!(r.poll_event(), None, "a known peer raises no event");
    let (_, dst, _, body) = icmp(&transmits(&mut r)[0]);
    assert_eq!(dst, client_ll());
    assert!(
        options(&body)
            .iter()
            .any(|o| matches!(o, NdOption::PrefixInfo { .. }))
    );
    // Another subscriber on the same line never sees it: nothing else was sent.
    assert_eq!(r.peers().count(), 1);
}

#[test]
fn removing_a_subscriber_sends_a_final_ra() {
    let mut r = router();
    let mut rng = Sequence::new(4);
    r.add_peer(
        T0,
        peer(),
        Advert {
            prefix: Some(prefix()),
            rdnss: Vec::new(),
        },
        &mut rng,
    );
    transmits(&mut r);
    assert!(r.remove_peer(peer()));
    let (_, _, _, body) = icmp(&transmits(&mut r)[0]);
    assert_eq!(&body[6..8], &[0, 0], "router lifetime 0");
    let o = options(&body);
    assert_eq!(
        o[1],
        NdOption::PrefixInfo {
            prefix: prefix(),
            flags: 0xc0,
            valid: 0,
            preferred: 0
        }
    );
    assert!(matches!(o[2], NdOption::Rdnss { lifetime: 0, .. }));
    assert_eq!(r.poll_timeout(), None);
    assert!(!r.remove_peer(peer()));
    assert_eq!(r.stats().ra_final, 1);
}

#[test]
fn ra_guard_and_other_bad_input_are_counted_by_name() {
    let mut r = router();
    r.handle_packet(T0, peer(), &fixtures::ND_RA_ROGUE);
    let redirect = nd_packet(
        client_ll(),
        gw_ll(),
        255,
        &mut Builder::new(icmp_type::REDIRECT, &[0u8; 36]),
    );
    let far = nd_packet(
        client_ll(),
        ipv6::solicited_node(gw_ll()),
        64,
        &mut Builder::neighbor_solicit(gw_ll()),
    );
    let mut bad_sum = fixtures::ND_NS_GATEWAY;
    bad_sum[43] ^= 1;
    let na = nd_packet(
        client_ll(),
        gw_ll(),
        255,
        &mut Builder::neighbor_advert(0, client_ll()),
    );
    let mut zero_opt = nd_packet(
        client_ll(),
        ipv6::ALL_ROUTERS,
        255,
        Builder::router_solicit().source_link_layer(MAC),
    );
    zero_opt[40 + 9] = 0;
    let fixed = {
        let mut p = wire::Packet::new_unchecked(&mut zero_opt[40..]);
        p.fill_checksum(client_ll(), ipv6::ALL_ROUTERS);
        zero_opt.clone()
    };
    let multicast_src = nd_packet(
        "ff02::9".parse().unwrap(),
        ipv6::ALL_ROUTERS,
        255,
        &mut Builder::router_solicit(),
    );
    let unspecified_slla = nd_packet(
        Ipv6Addr::UNSPECIFIED,
        ipv6::ALL_ROUTERS,
        255,
        Builder::router_solicit().source_link_layer(MAC),
    );
    let udp =
        tollgate_control_core::inet::udp::ipv6_datagram(client_ll(), gw_ll(), 1, 2, 255, b"x");
    for p in [
        &redirect[..],
        &far,
        &bad_sum,
        &na,
        &fixed,
        &multicast_src,
        &unspecified_slla,
        &udp,
        &fixtures::IPV6_ECHO,
        &fixtures::ND_RS[..30],
    ] {
        r.handle_packet(T0, peer(), p);
    }
    let got: Vec<(&str, u64)> = r
        .drops()
        .filter(|(_, n)| *n > 0)
        .map(|(d, n)| (d.name(), n))
        .collect();
    assert_eq!(
        got,
        [
            ("nd_bad_ip", 1),
            ("nd_not_icmpv6", 1),
            ("nd_bad_checksum", 1),
            ("nd_hop_limit", 1),
            ("nd_malformed", 1),
            ("nd_not_nd", 1),
            ("nd_ra_guard", 1),
            ("nd_redirect", 1),
            ("nd_bad_source", 2),
            ("nd_neighbor_advert", 1),
        ]
    );
    assert!(transmits(&mut r).is_empty());
    assert_eq!(r.poll_event(), None);
}

#[test]
fn a_ppp_session_gets_ras_without_link_layer_options() {
    let mut r = router();
    let mut rng = Sequence::new(5);
    let ppp = Peer::Ppp(7);
    r.add_peer(
        T0,
        ppp,
        Advert {
            prefix: Some(prefix()),
            rdnss: Vec::new(),
        },
        &mut rng,
    );
    let t = transmits(&mut r);
    assert_eq!(t[0].to, Link::Ppp(7));
    assert_eq!(t[0].frame(GW_MAC, 0x8100), None);
    let (src, dst, _, body) = icmp(&t[0]);
    assert_eq!((src, dst), (gw_ll(), ipv6::ALL_NODES));
    let o = options(&body);
    assert!(
        matches!(o[0], NdOption::PrefixInfo { .. }),
        "no SLLA over PPP: {o:?}"
    );
    // An NS over the PPP link: NA without TLLA.
    let ns = nd_packet(
        "fe80::1234".parse().unwrap(),
        gw_ll(),
        255,
        &mut Builder::neighbor_solicit(gw_ll()),
    );
    r.handle_packet(T0, ppp, &ns);
    let t = transmits(&mut r);
    let (_, _, _, body) = icmp(&t[0]);
    assert_eq!((t[0].to, body.len()), (Link::Ppp(7), 24));
}

#[test]
fn a_dedicated_line_gets_multicast_ras_without_prefix() {
    let mut r = router();
    let mut rng = Sequence::new(6);
    r.set_line(T0, line(), LineMode::Dedicated, &mut rng);
    let t = transmits(&mut r);
    assert_eq!(
        t[0].to,
        Link::Ethernet {
            line: line(),
            mac: [0x33, 0x33, 0, 0, 0, 1]
        }
    );
    let (_, dst, _, body) = icmp(&t[0]);
    assert_eq!(dst, ipv6::ALL_NODES);
    assert!(
        options(&body)
            .iter()
            .all(|o| !matches!(o, NdOption::PrefixInfo { .. }))
    );
    let next = r.poll_timeout().unwrap();
    assert!(next.since(T0) <= Duration::from_secs(16));
    r.handle_timeout(next, &mut rng);
    assert_eq!(transmits(&mut r).len(), 1);
    // Shared again: no more multicast RAs.
    r.set_line(next, line(), LineMode::Shared, &mut rng);
    assert_eq!(r.poll_timeout(), None);
    assert!(transmits(&mut r).is_empty());
}
