//! Any bytes as a punted IPv6 packet and as a DHCPv6 message into the DHCPv6 server,
//! directly and wrapped in a lightweight relay agent's RELAY-FORW, and as the options of
//! a message of each client type with a Client ID (and a Server ID by the first byte), so
//! that the IA and state code runs. Logins are accepted or rejected by the first byte.
//! The relay (relay mode) gets the same client messages, and the bytes as a server's
//! datagram, as the inner message of a RELAY-REPL for a transaction it relayed, and as
//! that RELAY-REPL's options, so that its RELAY-REPL parser and binding code run.
//! Answered, counted or dropped, never a panic.
#![no_main]

use core::net::Ipv6Addr;

use libfuzzer_sys::fuzz_target;
use tollgate_control_core::Instant;
use tollgate_control_core::dhcpv6::wire::{self, message_type as mt, option};
use tollgate_control_core::dhcpv6::{
    Event, Grant, Lease, Received, Relay, RelayConfig, Server, ServerConfig,
};
use tollgate_control_core::inet::ipv6;
use tollgate_control_core::ipoe::Subscriber;
use tollgate_control_core::pppoe::Line;

const GW_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0xfe];
const MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];

fuzz_target!(|bytes: &[u8]| {
    let first = bytes.first().copied().unwrap_or(0);
    let line = Line::untagged(0);
    let mut s = Server::new(ServerConfig::new(GW_MAC), Instant(1));
    let _ = Lease::decode(bytes, Instant(1), 1);
    s.handle_packet(Instant(1), line, MAC, bytes);
    let mut messages = vec![bytes.to_vec()];
    for t in [
        mt::SOLICIT,
        mt::REQUEST,
        mt::RENEW,
        mt::REBIND,
        mt::RELEASE,
        mt::DECLINE,
        mt::CONFIRM,
        mt::INFORMATION_REQUEST,
    ] {
        let mut o = Vec::new();
        wire::put_option(&mut o, option::CLIENT_ID, &wire::duid_ll(MAC));
        if first & 1 != 0 {
            wire::put_option(&mut o, option::SERVER_ID, s.duid());
        }
        o.extend_from_slice(bytes);
        messages.push(wire::message(t, 9, &o));
    }
    let ll: Ipv6Addr = "fe80::ff:fe00:1".parse().unwrap_or(Ipv6Addr::UNSPECIFIED);
    for (i, m) in messages.iter().enumerate() {
        let now = Instant(1 + i as u64 * 1_000_000_000);
        let rx = Received {
            line,
            src_mac: MAC,
            src_ip: ll,
            dst_ip: ipv6::ALL_DHCP_AGENTS,
            message: m,
        };
        s.handle_input(now, &rx);
        let mut ro = Vec::new();
        wire::put_option(&mut ro, option::INTERFACE_ID, b"fuzz");
        wire::put_option(&mut ro, option::RELAY_MSG, m);
        let relayed = wire::relay_message(mt::RELAY_FORW, 0, Ipv6Addr::UNSPECIFIED, ll, &ro);
        s.handle_input(now, &Received { message: &relayed, ..rx });
        while let Some(e) = s.poll_event() {
            if let Event::Login(l) = e {
                if first & 2 == 0 {
                    let grant = Grant::new(Some("2001:db8::10".parse().unwrap_or(ll)), "2001:db8:100::/56".parse().ok());
                    let _ = s.accept(now, l.id, grant);
                } else {
                    let _ = s.reject(now, l.id);
                }
            }
        }
        while let Some(t) = s.poll_transmit() {
            let _ = t.frame(GW_MAC, 0x8100);
        }
    }
    s.end_session(&Subscriber::new(line, MAC), "fuzz");
    s.handle_timeout(Instant(u64::MAX / 2));
    while s.poll_event().is_some() {}

    // Relay mode.
    let server: Ipv6Addr = "2001:db8::20".parse().unwrap_or(ll);
    let link: Ipv6Addr = "2001:db8::1".parse().unwrap_or(ll);
    let mut r = Relay::new(RelayConfig::new(GW_MAC, link, vec![server]), Instant(1));
    r.handle_packet(Instant(1), line, MAC, bytes);
    r.handle_server(Instant(1), server, bytes);
    for (i, m) in messages.iter().enumerate() {
        let now = Instant(1 + i as u64 * 1_000_000_000);
        let rx = Received {
            line,
            src_mac: MAC,
            src_ip: ll,
            dst_ip: ipv6::ALL_DHCP_AGENTS,
            message: m,
        };
        r.handle_client(now, &rx);
        // The bytes as the server's answer (its options after a Client ID, as REPLY and
        // ADVERTISE) to this transaction, and as the RELAY-REPL's own options.
        let mut o = Vec::new();
        wire::put_option(&mut o, option::CLIENT_ID, &wire::duid_ll(MAC));
        o.extend_from_slice(bytes);
        for inner in [
            wire::message(mt::REPLY, 9, &o),
            wire::message(mt::ADVERTISE, 9, &o),
            m.clone(),
        ] {
            let mut ro = Vec::new();
            wire::put_option(&mut ro, option::INTERFACE_ID, b"port0");
            wire::put_option(&mut ro, option::RELAY_MSG, &inner);
            let repl = wire::relay_message(mt::RELAY_REPL, 0, link, ll, &ro);
            r.handle_server(now, server, &repl);
        }
        let raw = wire::relay_message(mt::RELAY_REPL, first & 1, link, ll, bytes);
        r.handle_server(now, server, &raw);
        while r.poll_to_server().is_some() {}
        while r.poll_event().is_some() {}
        while let Some(t) = r.poll_transmit() {
            let _ = t.frame(GW_MAC, 0x8100);
        }
    }
    r.end_session(&Subscriber::new(line, MAC), "fuzz");
    r.handle_timeout(Instant(u64::MAX / 2));
    while r.poll_event().is_some() {}
});
