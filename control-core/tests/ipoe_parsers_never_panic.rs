//! Arbitrary bytes into every IPoE parser and engine input (DHCPv4 server and relay,
//! DHCPv6, ND, the IPv6 chain, lease records): no panic, and views that pass their check
//! answer every accessor within the buffer.

use core::net::{Ipv4Addr, Ipv6Addr};
use core::time::Duration;

use proptest::prelude::*;

use tollgate_control_core::Instant;
use tollgate_control_core::dhcp::{self, wire as w4};
use tollgate_control_core::dhcpv6::{self, wire as w6};
use tollgate_control_core::entropy::Sequence;
use tollgate_control_core::inet::{ipv4, ipv6, udp};
use tollgate_control_core::ipoe::Subscriber;
use tollgate_control_core::nd::{self, wire as wnd};
use tollgate_control_core::pppoe::Line;

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..max)
}

/// A DHCPv4 message with a valid header and cookie, a known type and random options, so
/// that the engines get past the first checks often.
fn dhcp4_message() -> impl Strategy<Value = Vec<u8>> {
    (1u8..9, any::<bool>(), bytes(80), any::<u8>()).prop_map(|(t, relayed, opts, sel)| {
        let mut m = w4::MessageBuilder::new(
            w4::op::BOOTREQUEST,
            u32::from(sel & 3),
            [2, 0, 0, 0, 0, sel & 3],
        );
        m.option(w4::option::MESSAGE_TYPE, &[t]);
        if sel & 4 != 0 {
            m.option_ip(w4::option::SERVER_ID, Ipv4Addr::new(100, 64, 0, 1));
        }
        if sel & 8 != 0 {
            m.option_ip(w4::option::REQUESTED_IP, Ipv4Addr::new(100, 64, 0, 10));
        }
        if sel & 16 != 0 {
            m.ciaddr(Ipv4Addr::new(100, 64, 0, 10));
        }
        if relayed {
            m.giaddr(Ipv4Addr::new(100, 64, 255, 1));
        }
        m.raw_options(&opts);
        m.finish()
    })
}

/// A DHCPv6 message with a Client ID and random options.
fn dhcp6_message() -> impl Strategy<Value = Vec<u8>> {
    (1u8..14, bytes(80), any::<u8>()).prop_map(|(t, opts, sel)| {
        let mut o = Vec::new();
        w6::put_option(
            &mut o,
            w6::option::CLIENT_ID,
            &w6::duid_ll([2, 0, 0, 0, 0, sel & 3]),
        );
        if sel & 4 != 0 {
            w6::put_option(
                &mut o,
                w6::option::SERVER_ID,
                &w6::duid_ll([2, 0, 0, 0, 0, 0xfe]),
            );
        }
        if sel & 8 != 0 {
            w6::put_option(&mut o, w6::option::IA_NA, &w6::ia(1, 0, 0, &[]));
        }
        o.extend_from_slice(&opts);
        w6::message(t, 1, &o)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn dhcp4_views(b in bytes(400)) {
        if let Ok(p) = w4::Packet::new_checked(&b[..]) {
            let _ = (p.op(), p.htype(), p.hlen(), p.hops(), p.xid(), p.secs(), p.flags(), p.broadcast());
            let _ = (p.ciaddr(), p.yiaddr(), p.siaddr(), p.giaddr(), p.chaddr(), p.client_mac());
            let _ = (p.sname().len(), p.file().len(), p.options_field().len());
            for o in p.options().flatten() {
                let _ = w4::parse_relay_agent_info(o.value);
                let _ = w4::addresses(o.value).count();
            }
            if let Ok(r) = w4::Request::parse(&p) {
                let _ = r.requests(6);
            }
            let _ = w4::rewrite_options(&p, &[82], Some((82, &b[..b.len().min(300)])));
        }
        let _ = w4::parse_relay_agent_info(&b);
        let _ = dhcp::Lease::decode(&b, Instant(0), 0);
        let _ = dhcpv6::Lease::decode(&b, Instant(0), 0);
    }

    #[test]
    fn ip_views(b in bytes(200), first in any::<u8>()) {
        if let Ok(p) = ipv4::Packet::new_checked(&b[..]) {
            let _ = (p.header_len(), p.total_len(), p.ttl(), p.protocol(), p.is_fragment(), p.checksum_ok());
            let _ = (p.src_addr(), p.dst_addr(), p.payload().len(), p.tos());
        }
        if let Ok(d) = udp::Datagram::new_checked(&b[..]) {
            let _ = (d.src_port(), d.dst_port(), d.payload().len(), d.checksum());
            let _ = d.checksum_ok_v4(Ipv4Addr::LOCALHOST, Ipv4Addr::LOCALHOST);
            let _ = d.checksum_ok_v6(Ipv6Addr::LOCALHOST, Ipv6Addr::LOCALHOST);
        }
        if let Ok(p) = ipv6::Packet::new_checked(&b[..]) {
            let _ = (p.traffic_class(), p.flow_label(), p.hop_limit(), p.src_addr(), p.dst_addr());
            if let Ok(c) = p.chain() {
                prop_assert!(c.offset <= p.payload().len());
                prop_assert!(usize::from(c.extensions) <= ipv6::MAX_EXTENSION_HEADERS);
            }
            let _ = p.upper_layer();
        }
        if let Ok(c) = ipv6::walk(first, &b) {
            prop_assert!(c.offset <= b.len());
        }
    }

    #[test]
    fn dhcp6_and_nd_views(b in bytes(300)) {
        if let Ok(p) = w6::Packet::new_checked(&b[..]) {
            let _ = (p.msg_type(), p.transaction_id());
            for o in p.options().flatten() {
                if let Ok(ia) = w6::Ia::parse(o.value) {
                    let _ = (ia.addresses().count(), ia.prefixes().count(), ia.status());
                }
                let _ = (w6::duid_mac(o.value), w6::client_linklayer_mac(o.value), w6::dns_servers(o.value).count());
                let _ = (w6::IaAddr::parse(o.value), w6::IaPrefix::parse(o.value));
            }
        }
        if let Ok(p) = w6::RelayPacket::new_checked(&b[..]) {
            let _ = (p.hop_count(), p.link_address(), p.peer_address(), p.options().count());
        }
        if let Ok(p) = wnd::Packet::new_checked(&b[..]) {
            let _ = (p.msg_type(), p.code(), p.checksum(), p.body().len());
            let _ = p.checksum_ok(Ipv6Addr::LOCALHOST, Ipv6Addr::LOCALHOST);
            if let Ok(m) = wnd::Message::parse(&p) {
                let _ = m.source_link_layer();
                for o in m.options().flatten() {
                    let _ = o.rdnss_addresses().count();
                }
            }
        }
        for o in wnd::options(&b).flatten() {
            let _ = o.rdnss_addresses().count();
        }
    }

    #[test]
    fn dhcp4_server_and_relay(
        inputs in prop::collection::vec((prop_oneof![dhcp4_message(), bytes(300)], any::<u8>()), 1..20),
    ) {
        let line = Line::untagged(0);
        let mut s = dhcp::Server::new(dhcp::ServerConfig::new(Ipv4Addr::new(100, 64, 0, 1)), Instant(0));
        let mut r = dhcp::Relay::new(dhcp::RelayConfig::new(Ipv4Addr::new(100, 64, 0, 1), vec![Ipv4Addr::new(192, 0, 2, 1)]), Instant(0));
        for (i, (m, sel)) in inputs.into_iter().enumerate() {
            let now = Instant(i as u64 * 3_000_000_000);
            let mac = if sel & 1 == 0 { [2, 0, 0, 0, 0, sel & 3] } else { [2, 0, 0, 0, 0, 0xaa] };
            let rx = dhcp::Received { line, src_mac: mac, src_ip: Ipv4Addr::UNSPECIFIED, dst_ip: Ipv4Addr::BROADCAST, message: &m };
            s.handle_input(now, &rx);
            s.handle_datagram(now, line, mac, &m);
            r.handle_client(now, &rx);
            let mut reply = m.clone();
            if reply.len() >= 28 {
                reply[0] = 2;
                reply[24..28].copy_from_slice(&[100, 64, 0, 1]);
            }
            r.handle_server(now, Ipv4Addr::new(192, 0, 2, 1), &reply);
            while let Some(e) = s.poll_event() {
                if let dhcp::Event::Login(l) = e {
                    if sel & 2 == 0 {
                        let _ = s.accept(now, l.id, dhcp::Grant::new(Ipv4Addr::new(100, 64, 0, 10), Ipv4Addr::new(255, 255, 0, 0)));
                    } else {
                        let _ = s.reject(now, l.id);
                    }
                }
            }
            if sel & 8 != 0 {
                s.end_session(&Subscriber::new(line, mac), "x");
                r.end_session(&Subscriber::new(line, mac), "x");
            }
            s.handle_timeout(now);
            r.handle_timeout(now);
            while let Some(t) = s.poll_transmit() {
                let _ = t.frame([2; 6], 0x8100);
            }
            while r.poll_transmit().is_some() {}
            while r.poll_event().is_some() {}
        }
        for l in s.leases() {
            prop_assert!(dhcp::Lease::decode(&l.encode(Instant(5), 99), Instant(5), 99).is_ok());
        }
    }

    #[test]
    fn dhcp6_server(
        inputs in prop::collection::vec((prop_oneof![dhcp6_message(), bytes(200)], any::<u8>()), 1..20),
    ) {
        let line = Line::untagged(0);
        let mut s = dhcpv6::Server::new(dhcpv6::ServerConfig::new([2, 0, 0, 0, 0, 0xfe]), Instant(0));
        for (i, (m, sel)) in inputs.into_iter().enumerate() {
            let now = Instant(i as u64 * 3_000_000_000);
            let mac = [2, 0, 0, 0, 0, sel & 3];
            let rx = dhcpv6::Received { line, src_mac: mac, src_ip: "fe80::1".parse().unwrap(), dst_ip: ipv6::ALL_DHCP_AGENTS, message: &m };
            s.handle_input(now, &rx);
            s.handle_packet(now, line, mac, &m);
            // The same message wrapped by a relay agent.
            let mut o = Vec::new();
            w6::put_option(&mut o, w6::option::CLIENT_LINKLAYER_ADDR, &[0, 1, 2, 0, 0, 0, 0, sel]);
            w6::put_option(&mut o, w6::option::RELAY_MSG, &m);
            let relayed = w6::relay_message(12, 0, Ipv6Addr::UNSPECIFIED, "fe80::1".parse().unwrap(), &o);
            s.handle_input(now, &dhcpv6::Received { message: &relayed, ..rx });
            while let Some(e) = s.poll_event() {
                if let dhcpv6::Event::Login(l) = e {
                    if sel & 4 == 0 {
                        let _ = s.accept(now, l.id, dhcpv6::Grant::new(Some("2001:db8::1".parse().unwrap()), "2001:db8:1::/56".parse().ok()));
                    } else {
                        let _ = s.reject(now, l.id);
                    }
                }
            }
            if sel & 8 != 0 {
                s.end_session(&Subscriber::new(line, mac), "x");
            }
            s.handle_timeout(now + Duration::from_secs(u64::from(sel)));
            while let Some(t) = s.poll_transmit() {
                let _ = t.frame([2; 6], 0x8100);
            }
        }
        for l in s.leases() {
            prop_assert!(dhcpv6::Lease::decode(&l.encode(Instant(5), 99), Instant(5), 99).is_ok());
        }
    }

    #[test]
    fn nd_router(
        inputs in prop::collection::vec((bytes(120), any::<u8>(), 0u8..6), 1..20),
    ) {
        let line = Line::untagged(0);
        let mut rng = Sequence::new(1);
        let mut r = nd::Router::new(nd::RouterConfig::new([2, 0, 0, 0, 0, 0xfe]));
        let gw = r.link_local();
        for (i, (body, sel, kind)) in inputs.into_iter().enumerate() {
            let now = Instant(i as u64 * 1_000_000_000);
            let peer = if sel & 1 == 0 { nd::Peer::Ipoe(Subscriber::new(line, [2, 0, 0, 0, 0, sel & 6])) } else { nd::Peer::Ppp(u64::from(sel)) };
            // An ICMPv6 ND message of a known type with a good checksum and random body,
            // and the raw bytes as a packet.
            let t = [133u8, 134, 135, 136, 137, 128][usize::from(kind)];
            let src: Ipv6Addr = if sel & 8 == 0 { "fe80::1".parse().unwrap() } else { Ipv6Addr::UNSPECIFIED };
            let dst = if sel & 16 == 0 { gw } else { ipv6::solicited_node(gw) };
            let mut b = wnd::Builder::new(t, &body);
            let icmp = b.finish(src, dst);
            r.handle_packet(now, peer, &ipv6::packet(src, dst, 58, 255, &icmp));
            r.handle_packet(now, peer, &body);
            if sel & 32 != 0 {
                r.add_peer(now, peer, nd::Advert { prefix: "2001:db8::/64".parse().ok(), rdnss: Vec::new() }, &mut rng);
            }
            if sel & 64 != 0 {
                r.remove_peer(peer);
                r.set_line(now, line, nd::LineMode::Dedicated, &mut rng);
            }
            r.handle_timeout(now, &mut rng);
            while let Some(t) = r.poll_transmit() {
                let _ = t.frame([2; 6], 0x8100);
            }
            while r.poll_event().is_some() {}
        }
    }
}
