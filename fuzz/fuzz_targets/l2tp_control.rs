//! Any datagram as an L2TP control message: decoded with and without a secret, and
//! handed to an LNS engine (and to one that already has a tunnel); answered, counted or
//! dropped, never a panic. The same bytes as a data message go through the fast path's
//! header and PPP parsers.
#![no_main]

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use tollgate_control::core::records::WallClock;
use tollgate_control::l2tp::{L2tp, Settings, wire};
use tollgate_dataplane::time::Instant;
use tollgate_dataplane::wire::l2tp as data;
use tollgate_dataplane::{ForwardingBuilder, MacAddr, SideConfig};

fuzz_target!(|bytes: &[u8]| {
    let _ = wire::decode(bytes, None);
    let _ = wire::decode(bytes, Some(b"secret"));
    if let Ok(h) = data::Packet::new_unchecked(bytes).header() {
        let _ = data::ppp_protocol(bytes.get(h.payload_at..).unwrap_or_default());
    }
    let side = |address, m| SideConfig { mac: MacAddr([2, 0, 0, 0, 0, m]), address, prefix_len: 24 };
    let fwd = Arc::new(
        ForwardingBuilder::new(side(Ipv4Addr::new(172, 16, 0, 2), 1), side(Ipv4Addr::new(192, 0, 2, 1), 2))
            .build()
            .expect("valid table"),
    );
    let mut s = Settings::new("lns", tollgate_control::random::Seed::fixed([1; 32]));
    s.accept = true;
    s.secret = Some(b"secret".to_vec());
    let mut lns = L2tp::new(Instant(1), s, fwd, WallClock::UNIX);
    let peer = SocketAddrV4::new(Ipv4Addr::new(172, 16, 0, 1), 1701);
    let local = Ipv4Addr::new(172, 16, 0, 2);
    // A tunnel first (an SCCRQ with tunnel id 7), then the input, as the second message
    // on tunnel 0 and as one addressed to every tunnel the engine opened.
    let mut sccrq = wire::Builder::new(wire::kind::SCCRQ, 0, 0)
        .u16(true, wire::attr::PROTOCOL_VERSION, 0x0100)
        .avp(true, 0, wire::attr::HOST_NAME, b"lac")
        .u32(true, wire::attr::FRAMING_CAPABILITIES, 3)
        .u16(true, wire::attr::ASSIGNED_TUNNEL_ID, 7)
        .finish();
    wire::set_sequence(&mut sccrq, 0, 0);
    lns.on_datagram(Instant(2), peer, local, &sccrq);
    lns.on_datagram(Instant(3), peer, local, bytes);
    let ids: Vec<u16> = lns.tunnels().keys().copied().collect();
    for id in ids {
        let mut m = bytes.to_vec();
        if m.len() >= 6 {
            m[4..6].copy_from_slice(&id.to_be_bytes());
        }
        lns.on_datagram(Instant(4), peer, local, &m);
    }
    lns.tick(Instant(40_000_000_000));
    while lns.poll_output().is_some() {}
});
