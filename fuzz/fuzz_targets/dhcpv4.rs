//! Any bytes as a punted IPv4 datagram and as a DHCP message into the DHCPv4 server and
//! the relay (both sides), and made to look like a DHCP message of each type (fixed
//! fields and cookie, the input as options) so that the option, option-82 and state
//! code runs. Logins are accepted or rejected by the input's first byte. Answered,
//! counted or dropped, never a panic.
#![no_main]

use core::net::Ipv4Addr;

use libfuzzer_sys::fuzz_target;
use tollgate_control_core::Instant;
use tollgate_control_core::dhcp::wire::{self, MessageBuilder, message_type as mt, op, option};
use tollgate_control_core::dhcp::{
    Event, Grant, Lease, Received, Relay, RelayConfig, Server, ServerConfig,
};
use tollgate_control_core::ipoe::Subscriber;
use tollgate_control_core::pppoe::Line;

const GW: Ipv4Addr = Ipv4Addr::new(100, 64, 0, 1);
const KEA: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 67);
const MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];

fuzz_target!(|bytes: &[u8]| {
    let first = bytes.first().copied().unwrap_or(0);
    let line = Line::untagged(0);
    let mut s = Server::new(ServerConfig::new(GW), Instant(1));
    let mut r = Relay::new(RelayConfig::new(GW, vec![KEA]), Instant(1));
    let _ = wire::parse_relay_agent_info(bytes);
    let _ = Lease::decode(bytes, Instant(1), 1);
    s.handle_datagram(Instant(1), line, MAC, bytes);
    r.handle_datagram(Instant(1), line, MAC, bytes);
    r.handle_server(Instant(1), KEA, bytes);
    let mut messages = vec![bytes.to_vec()];
    for t in [mt::DISCOVER, mt::REQUEST, mt::RELEASE, mt::DECLINE, mt::INFORM] {
        let mut m = MessageBuilder::new(op::BOOTREQUEST, 7, MAC);
        m.option(option::MESSAGE_TYPE, &[t]);
        if first & 1 != 0 {
            m.option_ip(option::SERVER_ID, GW).option_ip(option::REQUESTED_IP, Ipv4Addr::new(100, 64, 0, 10));
        }
        m.raw_options(bytes);
        messages.push(m.finish());
    }
    for (i, m) in messages.iter().enumerate() {
        let now = Instant(1 + i as u64 * 1_000_000_000);
        let rx = Received {
            line,
            src_mac: MAC,
            src_ip: Ipv4Addr::UNSPECIFIED,
            dst_ip: Ipv4Addr::BROADCAST,
            message: m,
        };
        s.handle_input(now, &rx);
        r.handle_client(now, &rx);
        while let Some(e) = s.poll_event() {
            if let Event::Login(l) = e {
                if first & 2 == 0 {
                    let _ = s.accept(now, l.id, Grant::new(Ipv4Addr::new(100, 64, 0, 10), Ipv4Addr::new(255, 255, 0, 0)));
                } else {
                    let _ = s.reject(now, l.id);
                }
            }
        }
        // The server's side of the relay: the relayed message answered as if by Kea.
        while let Some(t) = r.poll_transmit() {
            let mut reply = t.message.clone();
            if let Some(b) = reply.first_mut() {
                *b = op::BOOTREPLY;
            }
            r.handle_server(now, KEA, &reply);
        }
        while let Some(t) = s.poll_transmit() {
            let _ = t.frame([2, 0, 0, 0, 0, 0xfe], 0x8100);
        }
    }
    let sub = Subscriber::new(line, MAC);
    s.end_session(&sub, "fuzz");
    r.end_session(&sub, "fuzz");
    s.handle_timeout(Instant(u64::MAX / 2));
    r.handle_timeout(Instant(u64::MAX / 2));
    while s.poll_event().is_some() {}
    while r.poll_event().is_some() {}
});
