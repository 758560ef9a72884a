//! Any Ethernet frame on an access port: the VLAN view finds the line, then the bytes go
//! to the PPPoE discovery engine as they are and, made to look like a PADI, PADR and PADT,
//! once more each (so the tag, cookie and TR-101 parsers run too). The session-stage view
//! reads them as a session frame. Answered, counted or dropped, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate_control_core::Instant;
use tollgate_control_core::pppoe::wire::{self, SessionPacket, code};
use tollgate_control_core::pppoe::{Discovery, DiscoveryConfig, Line};
use tollgate_control_core::wire::ethernet::Frame;

const AC: [u8; 6] = [2, 0xac, 0, 0, 0, 1];

fuzz_target!(|bytes: &[u8]| {
    let mut d = Discovery::new(DiscoveryConfig::default(), AC, [7; 32], Instant(1));
    let (line, src, payload) = match Frame::new_checked(bytes).and_then(|f| f.header()) {
        Ok(h) => (
            Line {
                port: 0,
                svlan: h.outer.map(|t| t.vid),
                cvlan: h.inner.map(|t| t.vid),
            },
            h.src,
            &bytes[h.payload_at..],
        ),
        Err(_) => (Line::untagged(0), [2, 0, 0, 0, 0, 1], bytes),
    };
    let _ = SessionPacket::new_checked(payload).map(|p| (p.protocol(), p.ppp_payload().len()));
    d.handle_input(Instant(2), line, src, [0xff; 6], payload);
    // The PADO's cookie makes a PADR built from the input valid enough to get far.
    let cookie = d.poll_transmit().and_then(|t| {
        let p = wire::Packet::new_checked(t.payload).ok()?;
        p.tags()
            .flatten()
            .find(|t| t.kind == wire::tag::AC_COOKIE)
            .map(|t| t.value.to_vec())
    });
    for c in [code::PADI, code::PADR, code::PADT] {
        let mut tags = payload.get(6..).unwrap_or_default().to_vec();
        if c == code::PADR
            && let Some(k) = &cookie
        {
            wire::put_tag(&mut tags, wire::tag::AC_COOKIE, k);
        }
        let sid = if c == code::PADT { 1 } else { 0 };
        let frame = wire::build(c, sid, &tags);
        let dst = if c == code::PADI { [0xff; 6] } else { AC };
        d.handle_input(Instant(3), line, src, dst, &frame);
    }
    while d.poll_transmit().is_some() {}
    while d.poll_event().is_some() {}
});
