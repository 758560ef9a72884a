//! Stage: IPv6 (V6-1). Validates the header and walks its extension headers; sends the
//! control plane what it answers (from the access side neighbour discovery, RS, NS, NA,
//! and DHCPv6 to port 547; from the core side NS and NA); drops Router Advertisements and
//! Redirects from subscribers (RA guard); and forwards the IPv6 of sessions with a /64:
//! uplink from the session's /64 (anti-spoofed by /64, MAC and line) to the core side's
//! IPv6 next hop (by the longest IPv6 route that holds the destination, else the default
//! `next_hop`), downlink by destination /64 to its session, with the hop limit
//! decremented (IPv6 has no header checksum to update). A session's packet and byte
//! counters count both families; bytes are the IPv6 header and payload; the IPv6 share
//! is kept apart too, in the session table's IPv6 side table (the per-family split).
//!
//! IPv6 over PPPoE (PPP protocol 0x0057, after IPv6CP) takes the same path: uplink the
//! session is found by its line (VLANs, client MAC, PPPoE session id) and the source must
//! lie in its /64 or delegated prefix; the PPPoE header goes with the MACs' move; RS and
//! DHCPv6 go to the control plane in their PPPoE frame; what the gateway answers in place
//! (echo replies, ICMPv6 errors) goes back in the PPPoE header it came in, its length
//! set. Downlink a PPPoE session's packet gets its line's template with PPP protocol
//! 0x0057; one longer than the session's MTU is `pppoe_too_big` and answered with
//! Packet Too Big carrying the MTU.
//!
//! An LNS's PPP subscriber's IPv6 (0x0057 in L2TP) is decapsulated by the tunnel stage
//! and joins the uplink at `forward_up6`; downlink it leaves into its L2TP
//! session (`l2tp_down6`), the tunnel's MTU less 38 bytes being its limit.
//!
//! Not forwarded (each a named drop): fragments, more than [`MAX_EXTENSION_HEADERS`]
//! extension headers, multicast and link-local beyond neighbour discovery, packets for
//! the gateway's own addresses (but Echo Requests to them are answered). Downlink to a /64 no session
//! holds is answered with Destination Unreachable (no route), an expired hop limit with
//! Time Exceeded, both paced by the ICMP error bucket IPv4 shares.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::parse::Line;
use super::{Pipeline, Verdict, access, rewrite};
use crate::buf::PacketBuf;
use crate::counters::DropReason;
use crate::fib::Forwarding;
use crate::msg::Event;
use crate::table::route6::Hop6;
use crate::table::session::{Dir, SessionId};
use crate::time::Instant;
use crate::types::{MacAddr, Side};
use crate::wire::checksum;
use crate::wire::ethernet::{self, ethertype};
use crate::wire::l2tp::ppp::IPV6 as PPP_IPV6;
use crate::wire::{get_u16, pppoe, put_u16};

/// The fixed header's length.
pub const HEADER_LEN: usize = 40;

/// Extension headers walked before the upper layer; a longer chain is
/// `ipv6_ext_chain_too_long`.
pub const MAX_EXTENSION_HEADERS: usize = 4;

/// An ICMPv6 error fits the IPv6 minimum MTU (RFC 4443 2.4 (c)): it quotes at most this
/// much less its own headers of the packet it is about.
pub const MIN_MTU: usize = 1280;

/// ICMPv6 Destination Unreachable (code 0: no route to destination).
const DEST_UNREACHABLE: u8 = 1;
/// ICMPv6 Packet Too Big.
const PACKET_TOO_BIG: u8 = 2;
/// ICMPv6 Time Exceeded.
const TIME_EXCEEDED: u8 = 3;
/// ICMPv6 Echo Request and Reply (RFC 4443 4).
const ECHO_REQUEST: u8 = 128;
const ECHO_REPLY: u8 = 129;

/// The DHCPv6 server port (RFC 8415).
pub const DHCPV6_SERVER_PORT: u16 = 547;

/// Next Header values the stage knows.
pub mod next_header {
    /// Hop-by-Hop Options.
    pub const HOP_BY_HOP: u8 = 0;
    /// UDP.
    pub const UDP: u8 = 17;
    /// Routing header.
    pub const ROUTING: u8 = 43;
    /// Fragment header.
    pub const FRAGMENT: u8 = 44;
    /// Authentication header.
    pub const AH: u8 = 51;
    /// ICMPv6.
    pub const ICMPV6: u8 = 58;
    /// Destination Options.
    pub const DEST_OPTS: u8 = 60;
}

/// ICMPv6 neighbour discovery types (RFC 4861).
pub mod nd {
    /// Router Solicitation.
    pub const ROUTER_SOLICIT: u8 = 133;
    /// Router Advertisement.
    pub const ROUTER_ADVERT: u8 = 134;
    /// Neighbor Solicitation.
    pub const NEIGHBOR_SOLICIT: u8 = 135;
    /// Neighbor Advertisement.
    pub const NEIGHBOR_ADVERT: u8 = 136;
    /// Redirect.
    pub const REDIRECT: u8 = 137;
}

mod field {
    pub const PAYLOAD_LEN: usize = 4;
    pub const NEXT_HEADER: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC: usize = 8;
    pub const DST: usize = 24;
}

/// What the stages need of a validated IPv6 header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Source address.
    pub src: Ipv6Addr,
    /// Destination address.
    pub dst: Ipv6Addr,
    /// The upper-layer protocol, past the extension headers.
    pub proto: u8,
    /// Where the upper-layer header starts, from the IPv6 header.
    pub l4: usize,
    /// Header and payload length (what counters count).
    pub total: usize,
    /// Hop limit.
    pub hop_limit: u8,
}

/// Checks the IPv6 packet that starts at `ip` (the buffer from the IPv6 header to the end
/// of the frame): version, lengths, and the extension header chain.
#[inline]
pub fn validate(ip: &[u8]) -> Result<Header, DropReason> {
    let h = ip
        .first_chunk::<HEADER_LEN>()
        .ok_or(DropReason::Ipv6Truncated)?;
    if h[0] >> 4 != 6 {
        return Err(DropReason::Ipv6BadVersion);
    }
    let total = HEADER_LEN + get_u16(h, field::PAYLOAD_LEN) as usize;
    if total > ip.len() {
        return Err(DropReason::Ipv6Truncated);
    }
    let mut proto = h[field::NEXT_HEADER];
    let mut at = HEADER_LEN;
    let mut walked = 0;
    loop {
        let len = match proto {
            next_header::HOP_BY_HOP | next_header::ROUTING | next_header::DEST_OPTS => {
                let e = ip.get(at..at + 2).ok_or(DropReason::Ipv6Truncated)?;
                (e[1] as usize + 1) * 8
            }
            next_header::AH => {
                let e = ip.get(at..at + 2).ok_or(DropReason::Ipv6Truncated)?;
                (e[1] as usize + 2) * 4
            }
            next_header::FRAGMENT => return Err(DropReason::Ipv6Fragment),
            _ => break,
        };
        if walked == MAX_EXTENSION_HEADERS {
            return Err(DropReason::Ipv6ExtChainTooLong);
        }
        if at + len > total {
            return Err(DropReason::Ipv6Truncated);
        }
        proto = ip[at];
        at += len;
        walked += 1;
    }
    Ok(Header {
        src: address(h, field::SRC),
        dst: address(h, field::DST),
        proto,
        l4: at,
        total,
        hop_limit: h[field::HOP_LIMIT],
    })
}

/// The address at `at` (a constant inside the fixed header).
#[inline(always)]
fn address(h: &[u8; HEADER_LEN], at: usize) -> Ipv6Addr {
    let mut a = [0u8; 16];
    a.copy_from_slice(&h[at..at + 16]);
    Ipv6Addr::from(a)
}

/// What a validated IPv6 packet is to the gateway.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// Neighbour discovery or DHCPv6 for the control plane.
    Control,
    /// A Router Advertisement or Redirect from a subscriber.
    RaGuard,
    /// Anything else: forwarded if it may be.
    Data,
}

/// Classifies the IPv6 packet `ip` (header `h`) received on `side`.
#[inline]
pub fn classify(ip: &[u8], h: &Header, side: Side) -> Class {
    match h.proto {
        next_header::ICMPV6 => match (ip.get(h.l4).copied(), side) {
            (
                Some(nd::ROUTER_SOLICIT | nd::NEIGHBOR_SOLICIT | nd::NEIGHBOR_ADVERT),
                Side::Access,
            ) => Class::Control,
            (Some(nd::NEIGHBOR_SOLICIT | nd::NEIGHBOR_ADVERT), Side::Core) => Class::Control,
            (Some(nd::ROUTER_ADVERT | nd::REDIRECT), Side::Access) => Class::RaGuard,
            _ => Class::Data,
        },
        next_header::UDP
            if side == Side::Access
                && h.l4 + 4 <= h.total
                && get_u16(ip, h.l4 + 2) == DHCPV6_SERVER_PORT =>
        {
            Class::Control
        }
        _ => Class::Data,
    }
}

/// Replaces the IPv6 packet at `l3` (header `h`) in `buf` with an ICMPv6 error of `kind`
/// and `code` about it from `from`, quoting as much of it as fits [`MIN_MTU`] (and the
/// buffer), sent back to where it came from (the frame's source MAC, the same tags).
/// False, and nothing sent, for an error about an ICMPv6 error (RFC 4443 2.4 (e)) or when
/// the buffer cannot hold one.
pub fn error_in_place<B: PacketBuf>(
    buf: &mut B,
    l3: usize,
    h: &Header,
    from: Ipv6Addr,
    our_mac: MacAddr,
    (kind, code): (u8, u8),
) -> bool {
    error_in_place_with(buf, l3, h, from, our_mac, (kind, code, 0))
}

/// [`error_in_place`] with the message's 32-bit field after the checksum (a Packet Too
/// Big's MTU, RFC 4443 3.2).
pub fn error_in_place_with<B: PacketBuf>(
    buf: &mut B,
    l3: usize,
    h: &Header,
    from: Ipv6Addr,
    our_mac: MacAddr,
    (kind, code, param): (u8, u8, u32),
) -> bool {
    if h.proto == next_header::ICMPV6 && buf.data().get(l3 + h.l4).is_none_or(|t| *t < 128) {
        return false;
    }
    let hdrs = HEADER_LEN + 8;
    let mut quote = h.total.min(MIN_MTU - hdrs);
    if !buf.set_len(l3 + hdrs + quote) {
        // No tailroom: quote less, in the frame's own length.
        quote = h.total.saturating_sub(hdrs);
        if quote == 0 || !buf.set_len(l3 + hdrs + quote) {
            return false;
        }
    }
    let frame = buf.data_mut();
    frame.copy_within(l3..l3 + quote, l3 + hdrs);
    let len = (8 + quote) as u16;
    let ip = &mut frame[l3..l3 + hdrs];
    ip[..4].copy_from_slice(&[0x60, 0, 0, 0]);
    put_u16(ip, field::PAYLOAD_LEN, len);
    ip[field::NEXT_HEADER] = next_header::ICMPV6;
    ip[field::HOP_LIMIT] = 64;
    ip[field::SRC..field::SRC + 16].copy_from_slice(&from.octets());
    ip[field::DST..field::DST + 16].copy_from_slice(&h.src.octets());
    let p = param.to_be_bytes();
    ip[HEADER_LEN..hdrs].copy_from_slice(&[kind, code, 0, 0, p[0], p[1], p[2], p[3]]);
    // The checksum over the pseudo-header (RFC 8200 8.1) and the message.
    let pseudo = checksum::add(
        checksum::sum(&frame[l3 + field::SRC..l3 + HEADER_LEN]),
        u32::from(len) + u32::from(next_header::ICMPV6),
    );
    let sum = checksum::add(
        pseudo,
        checksum::sum(&frame[l3 + HEADER_LEN..l3 + hdrs + quote]),
    );
    put_u16(frame, l3 + HEADER_LEN + 2, !checksum::fold(sum));
    let sender = ethernet::Frame::new_unchecked(&*frame).src();
    rewrite::l2(frame, sender, our_mac);
    true
}

/// The /64 of `a`: its upper 64 bits.
#[inline(always)]
pub fn prefix64(a: Ipv6Addr) -> u64 {
    (a.to_bits() >> 64) as u64
}

/// fe80::/10.
#[inline(always)]
pub(super) fn is_link_local(a: Ipv6Addr) -> bool {
    a.segments()[0] & 0xffc0 == 0xfe80
}

impl Pipeline {
    /// An IPv6 packet, its header at `l3`, that came in on `side` (`line`: the access
    /// line). An answer built in place in a PPPoE frame gets its PPPoE length.
    #[inline(always)]
    pub(super) fn ipv6<B: PacketBuf>(
        &mut self,
        fwd: &Forwarding,
        side: Side,
        buf: &mut B,
        l3: usize,
        line: Line,
        now: Instant,
    ) -> Verdict {
        let v = self.ipv6_packet(fwd, side, buf, l3, line, now);
        if v == Verdict::Reply && line.pppoe.is_some() {
            let len = buf.len().saturating_sub(l3) as u16 + pppoe::PPP_PROTOCOL_LEN;
            if let Some(h) = buf.data_mut().get_mut(l3 - pppoe::HEADER_LEN..l3) {
                pppoe::Packet::new_unchecked(h).set_payload_len(len);
            }
        }
        v
    }

    #[inline(always)]
    fn ipv6_packet<B: PacketBuf>(
        &mut self,
        fwd: &Forwarding,
        side: Side,
        buf: &mut B,
        l3: usize,
        line: Line,
        now: Instant,
    ) -> Verdict {
        if !fwd.ipv6.on {
            return Verdict::Drop(DropReason::UnsupportedEthertype);
        }
        let h = match validate(&buf.data()[l3..]) {
            Ok(h) => h,
            Err(r) => return Verdict::Drop(r),
        };
        match classify(&buf.data()[l3..], &h, side) {
            Class::Control => {
                let v = self.punt(side, buf.data());
                if v == Verdict::Punted {
                    self.counters.ipv6_control += 1;
                }
                return v;
            }
            Class::RaGuard => return Verdict::Drop(DropReason::Ipv6RaGuard),
            Class::Data => {}
        }
        if h.src.is_multicast() || h.src.is_unspecified() || h.src.is_loopback() {
            return Verdict::Drop(DropReason::Ipv6MartianSource);
        }
        // The gateway's own addresses first: its link-local ones are pinged too.
        if fwd.ipv6.is_ours(h.dst) {
            return self.local6(fwd, side, buf, l3, &h);
        }
        if h.dst.is_multicast() || is_link_local(h.dst) || is_link_local(h.src) {
            return Verdict::Drop(DropReason::Ipv6NotForwarded);
        }
        match side {
            Side::Access => self.uplink6(fwd, buf, l3, &h, line, now),
            Side::Core => self.downlink6(fwd, buf, l3, &h, now),
        }
    }

    /// The session of the /64 `prefix` (its own, or inside its delegated prefix), closing it first if a time condition fell due.
    pub(super) fn live_session6(
        &mut self,
        fwd: &Forwarding,
        prefix: u64,
        now: Instant,
    ) -> Option<u32> {
        let slot = self.sessions.slot_by_prefix6_or_delegated(prefix)?;
        match self.sessions.get(slot)?.due(now) {
            Some((t, cause)) => {
                self.close_session(fwd, slot, t, cause);
                None
            }
            None => Some(slot),
        }
    }

    fn uplink6<B: PacketBuf>(
        &mut self,
        fwd: &Forwarding,
        buf: &mut B,
        l3: usize,
        h: &Header,
        line: Line,
        now: Instant,
    ) -> Verdict {
        let src_mac = MacAddr::from_bytes(&buf.data()[6..12]);
        // The session of the source's /64 must be this line's, MAC's and PPPoE
        // session's; then it is the one the PPPoE index would find, so the index is
        // asked only to name a refusal.
        let Some(slot) = self.live_session6(fwd, prefix64(h.src), now) else {
            let r = self.refused_up6(buf, l3, h, line, src_mac, DropReason::Ipv6SourceSpoofed);
            return Verdict::Drop(r);
        };
        let Some(s) = self.sessions.get(slot) else {
            let r = self.refused_up6(buf, l3, h, line, src_mac, DropReason::Ipv6SourceSpoofed);
            return Verdict::Drop(r);
        };
        if s.mac != Some(src_mac) || s.pppoe_session() != line.pppoe {
            let r = self.refused_up6(buf, l3, h, line, src_mac, DropReason::Ipv6SourceSpoofed);
            return Verdict::Drop(r);
        }
        if s.vlans() != line.vlans {
            let r = self.refused_up6(buf, l3, h, line, src_mac, DropReason::VlanMismatch);
            return Verdict::Drop(r);
        }
        if line.pppoe.is_some() && !pppoe_covers(buf, l3, h) {
            return Verdict::Drop(DropReason::PppoeMalformed);
        }
        let clamp = s.mss_clamp;
        self.forward_up6(fwd, buf, l3, h, (slot, clamp), now)
    }

    /// The uplink IPv6 packet at `l3` (header `h`) of the session in `slot`, checked
    /// against it already: hop limit, NAT64 or the next hop, admission, then out of the
    /// core side, counted to both families and the IPv6 share. Shared by the access
    /// line's uplink and an LNS's decapsulated PPP (whose frame is plain by then). The
    /// callers hold the session already and pass its MSS clamp with the slot.
    #[inline(always)]
    pub(super) fn forward_up6<B: PacketBuf>(
        &mut self,
        fwd: &Forwarding,
        buf: &mut B,
        l3: usize,
        h: &Header,
        (slot, clamp): (u32, u16),
        now: Instant,
    ) -> Verdict {
        if h.hop_limit <= 1 {
            return self.hop_limit_exceeded(fwd, Side::Access, buf, l3, h, now);
        }
        if let Some(dst) = fwd.nat64.embedded(h.dst) {
            return self.nat64_up(fwd, buf, l3, h, slot, dst, now);
        }
        let next_hop = match self.next_hop6(fwd, h.dst, now) {
            Ok(mac) => mac,
            Err(r) => return Verdict::Drop(r),
        };
        if let Err(r) = self.admit(fwd, Some(slot), Dir::Up, h.total, now) {
            return Verdict::Drop(r);
        }
        buf.data_mut()[l3 + field::HOP_LIMIT] -= 1;
        if clamp != 0 {
            access::clamp_mss6(&mut buf.data_mut()[l3..], h, access::mss6(clamp));
        }
        // Off a tagged line: the MACs move up to just before the IPv6 header, over the
        // tags (the EtherType there is already IPv6; after PPPoE it is set).
        let extra = l3 - ethernet::HEADER_LEN;
        if extra != 0 {
            buf.data_mut().copy_within(..12, extra);
            if !buf.strip(extra) {
                return Verdict::Drop(DropReason::EthTooShort);
            }
            put_u16(buf.data_mut(), 12, ethertype::IPV6);
        }
        if let Some(s) = self.sessions.get_mut(slot) {
            s.count(Dir::Up, h.total as u64, now, Ipv4Addr::UNSPECIFIED);
        }
        self.sessions.count6(slot, Dir::Up, h.total as u64);
        rewrite::l2(buf.data_mut(), next_hop, fwd.side(Side::Core).mac);
        Verdict::Forward(Side::Core)
    }

    /// The MAC uplink IPv6 to `dst` goes to: by the longest of the core side's IPv6
    /// routes that holds it, else the default `next_hop`. A connected host without a
    /// MAC is asked about (at most once a second per address) and the packet dropped.
    #[inline(always)]
    fn next_hop6(
        &mut self,
        fwd: &Forwarding,
        dst: Ipv6Addr,
        now: Instant,
    ) -> Result<MacAddr, DropReason> {
        if fwd.routes6.is_empty() {
            return fwd
                .ipv6
                .next_hop_mac
                .ok_or(DropReason::Ipv6NextHopUnresolved);
        }
        match fwd.routes6.lookup(dst) {
            Some(Hop6::Mac(mac)) => Ok(mac),
            Some(Hop6::Unresolved {
                neighbor,
                connected,
            }) => {
                if connected {
                    self.ask_resolve6(neighbor, now);
                }
                Err(DropReason::Ipv6NextHopUnresolved)
            }
            None if fwd.ipv6.next_hop.is_none() => Err(DropReason::Ipv6NoRoute),
            None => fwd
                .ipv6
                .next_hop_mac
                .ok_or(DropReason::Ipv6NextHopUnresolved),
        }
    }

    /// Asks the control plane to solicit connected host `ip`, at most once a second.
    #[cold]
    #[inline(never)]
    fn ask_resolve6(&mut self, ip: Ipv6Addr, now: Instant) {
        let a = ip.to_bits();
        let k = (a ^ a >> 32 ^ a >> 64) as usize % self.resolve6_seen.len();
        let e = &mut self.resolve6_seen[k];
        if e.0 == a && now < e.1.add_ms(1000) {
            return;
        }
        if self.events.push(Event::Resolve6 { ip }).is_ok() {
            *e = (a, now);
        } else {
            self.counters.event_ring_full += 1;
        }
    }

    fn downlink6<B: PacketBuf>(
        &mut self,
        fwd: &Forwarding,
        buf: &mut B,
        l3: usize,
        h: &Header,
        now: Instant,
    ) -> Verdict {
        let Some(slot) = self.live_session6(fwd, prefix64(h.dst), now) else {
            return self.no_route6(fwd, buf, l3, h, now);
        };
        let Some((mac, plain, mtu, clamp, l2tp)) = self.sessions.get(slot).map(|s| {
            (
                s.mac,
                s.is_plain(),
                s.line_mtu(),
                s.mss_clamp,
                s.l2tp_session(),
            )
        }) else {
            return Verdict::Drop(DropReason::Ipv6NoSession);
        };
        let Some(mac) = mac else {
            return Verdict::Drop(DropReason::Ipv6NoSession);
        };
        if h.hop_limit <= 1 {
            return self.hop_limit_exceeded(fwd, Side::Core, buf, l3, h, now);
        }
        if let Some(session) = l2tp {
            if clamp != 0 {
                access::clamp_mss6(&mut buf.data_mut()[l3..], h, access::mss6(clamp));
            }
            return self.l2tp_down6(fwd, buf, l3, h, slot, session, now);
        }
        if let Some(m) = mtu.filter(|m| h.total > *m as usize) {
            return self.too_big6(fwd, buf, l3, h, (m, DropReason::PppoeTooBig), now);
        }
        if let Err(r) = self.admit(fwd, Some(slot), Dir::Down, h.total, now) {
            return Verdict::Drop(r);
        }
        buf.data_mut()[l3 + field::HOP_LIMIT] -= 1;
        if clamp != 0 {
            access::clamp_mss6(&mut buf.data_mut()[l3..], h, access::mss6(clamp));
        }
        if !plain && let Err(r) = self.encapsulate_down6(buf, slot, l3, h.total) {
            return Verdict::Drop(r);
        }
        if let Some(s) = self.sessions.get_mut(slot) {
            s.count(Dir::Down, h.total as u64, now, Ipv4Addr::UNSPECIFIED);
        }
        self.sessions.count6(slot, Dir::Down, h.total as u64);
        rewrite::l2(buf.data_mut(), mac, fwd.side(Side::Access).mac);
        Verdict::Forward(Side::Access)
    }

    /// Why an uplink IPv6 packet from `mac` on `line` is refused, `otherwise` being the
    /// reason its /64's session gave: from a PPPoE session the line does not have, or
    /// whose length does not cover the packet, the PPPoE reason comes first.
    #[cold]
    #[inline(never)]
    fn refused_up6<B: PacketBuf>(
        &self,
        buf: &B,
        l3: usize,
        h: &Header,
        line: Line,
        mac: MacAddr,
        otherwise: DropReason,
    ) -> DropReason {
        match line.pppoe {
            Some(id) if self.sessions.slot_by_pppoe(line.vlans, mac, id).is_none() => {
                DropReason::PppoeSessionUnknown
            }
            Some(_) if !pppoe_covers(buf, l3, h) => DropReason::PppoeMalformed,
            _ => otherwise,
        }
    }

    /// Puts the line template of the session in `slot` on a downlink IPv6 packet (at
    /// `l3`, `total` bytes): its tags with EtherType IPv6, or its PPPoE header with PPP
    /// protocol 0x0057 (the template ends in IPv4's).
    #[inline]
    pub(super) fn encapsulate_down6<B: PacketBuf>(
        &self,
        buf: &mut B,
        slot: u32,
        l3: usize,
        total: usize,
    ) -> Result<(), DropReason> {
        let pppoe = self.encapsulate_down_as(buf, slot, l3, total)?;
        // The frame now ends with the packet (padding cut), the type just before.
        let at = buf.len() - total - 2;
        let t = if pppoe { PPP_IPV6 } else { ethertype::IPV6 };
        put_u16(buf.data_mut(), at, t);
        Ok(())
    }

    /// Downlink IPv6 longer than its PPPoE session's (or its L2TP tunnel's) MTU `mtu`:
    /// dropped (`r`: `pppoe_too_big`, `l2tp_too_big`; routers do not fragment IPv6), and
    /// answered with Packet Too Big carrying the MTU (RFC 4443 3.2) from the core side's
    /// error source, paced by the ICMP error bucket.
    #[cold]
    #[inline(never)]
    pub(super) fn too_big6<B: PacketBuf>(
        &mut self,
        fwd: &Forwarding,
        buf: &mut B,
        l3: usize,
        h: &Header,
        (mtu, r): (u16, DropReason),
        now: Instant,
    ) -> Verdict {
        let Some(from) = fwd.ipv6.error_sources[Side::Core.idx()] else {
            return Verdict::Drop(r);
        };
        if h.proto == next_header::ICMPV6 && buf.data().get(l3 + h.l4).is_none_or(|t| *t < 128) {
            return Verdict::Drop(r);
        }
        if !self.icmp_limit.take(now) {
            self.counters.icmp_rate_limited += 1;
            return Verdict::Drop(r);
        }
        let mac = fwd.side(Side::Core).mac;
        if !error_in_place_with(buf, l3, h, from, mac, (PACKET_TOO_BIG, 0, u32::from(mtu))) {
            return Verdict::Drop(r);
        }
        self.counters.drop(r);
        self.counters.icmp_errors += 1;
        Verdict::Reply
    }

    /// A packet whose hop limit ran out: dropped, and answered with an ICMPv6 Time
    /// Exceeded when the side has an error source and the rate allows (the same bucket
    /// as IPv4's errors).
    pub(super) fn hop_limit_exceeded<B: PacketBuf>(
        &mut self,
        fwd: &Forwarding,
        side: Side,
        buf: &mut B,
        l3: usize,
        h: &Header,
        now: Instant,
    ) -> Verdict {
        let Some(from) = fwd.ipv6.error_sources[side.idx()] else {
            return Verdict::Drop(DropReason::Ipv6HopLimitExceeded);
        };
        if !self.icmp_limit.take(now) {
            self.counters.icmp_rate_limited += 1;
            return Verdict::Drop(DropReason::Ipv6HopLimitExceeded);
        }
        let mac = fwd.side(side).mac;
        if !error_in_place(buf, l3, h, from, mac, (TIME_EXCEEDED, 0)) {
            return Verdict::Drop(DropReason::Ipv6HopLimitExceeded);
        }
        // As for IPv4: the expired packet is a counted drop, the error in its buffer a
        // generated packet sent back.
        self.counters.drop(DropReason::Ipv6HopLimitExceeded);
        self.counters.icmp_errors += 1;
        Verdict::Reply
    }

    /// Downlink IPv6 to a /64 no session holds (nothing else is routed toward the
    /// access side): dropped (`ipv6_no_session`), and answered with Destination
    /// Unreachable, no route (RFC 4443 3.1, code 0) from the core side's error source,
    /// paced by the ICMP error bucket.
    #[cold]
    #[inline(never)]
    fn no_route6<B: PacketBuf>(
        &mut self,
        fwd: &Forwarding,
        buf: &mut B,
        l3: usize,
        h: &Header,
        now: Instant,
    ) -> Verdict {
        let r = DropReason::Ipv6NoSession;
        let Some(from) = fwd.ipv6.error_sources[Side::Core.idx()] else {
            return Verdict::Drop(r);
        };
        if h.proto == next_header::ICMPV6 && buf.data().get(l3 + h.l4).is_none_or(|t| *t < 128) {
            // Not about an error (RFC 4443 2.4 (e)), and no token spent on it.
            return Verdict::Drop(r);
        }
        if !self.icmp_limit.take(now) {
            self.counters.icmp_rate_limited += 1;
            return Verdict::Drop(r);
        }
        let mac = fwd.side(Side::Core).mac;
        if !error_in_place(buf, l3, h, from, mac, (DEST_UNREACHABLE, 0)) {
            return Verdict::Drop(r);
        }
        self.counters.drop(r);
        self.counters.icmp_errors += 1;
        Verdict::Reply
    }

    /// IPv6 to one of the gateway's own addresses: an Echo Request is answered in place
    /// (RFC 4443 4.2: the data returned as it came); anything else is
    /// `local_unsupported`.
    #[cold]
    #[inline(never)]
    pub(super) fn local6<B: PacketBuf>(
        &mut self,
        fwd: &Forwarding,
        side: Side,
        buf: &mut B,
        l3: usize,
        h: &Header,
    ) -> Verdict {
        let at = l3 + h.l4;
        let end = l3 + h.total;
        if h.proto != next_header::ICMPV6
            || h.l4 != HEADER_LEN
            || end < at + 8
            || buf.data().get(at) != Some(&ECHO_REQUEST)
            || buf.data().get(at + 1) != Some(&0)
        {
            return Verdict::Drop(DropReason::LocalUnsupported);
        }
        let Some(ip) = buf.data().get(l3..end) else {
            return Verdict::Drop(DropReason::Ipv6Truncated);
        };
        // A request whose checksum does not verify is not answered.
        let pseudo = checksum::add(
            checksum::sum(&ip[field::SRC..HEADER_LEN]),
            (h.total - HEADER_LEN) as u32 + u32::from(next_header::ICMPV6),
        );
        if checksum::fold(checksum::add(pseudo, checksum::sum(&ip[HEADER_LEN..]))) != 0xffff {
            return Verdict::Drop(DropReason::LocalUnsupported);
        }
        // Padding after the packet goes; addresses swap (the pseudo-header sum does not
        // change), the type goes 128 -> 129, hop limit 64.
        if !buf.set_len(end) {
            return Verdict::Drop(DropReason::Ipv6Truncated);
        }
        let frame = buf.data_mut();
        let (src, dst) = (h.src.octets(), h.dst.octets());
        frame[l3 + field::SRC..l3 + field::SRC + 16].copy_from_slice(&dst);
        frame[l3 + field::DST..l3 + field::DST + 16].copy_from_slice(&src);
        frame[l3 + field::HOP_LIMIT] = 64;
        frame[at] = ECHO_REPLY;
        let c = checksum::update16(
            get_u16(frame, at + 2),
            u16::from_be_bytes([ECHO_REQUEST, 0]),
            u16::from_be_bytes([ECHO_REPLY, 0]),
        );
        put_u16(frame, at + 2, c);
        let sender = ethernet::Frame::new_unchecked(&*frame).src();
        rewrite::l2(frame, sender, fwd.side(side).mac);
        Verdict::Reply
    }

    /// [`Command::SessionPrefix6`](crate::msg::Command::SessionPrefix6): attaches (or
    /// takes away) a session's IPv6 /64.
    pub fn session_prefix6(&mut self, id: SessionId, prefix: Option<u64>) {
        // The control plane hands out each /64 once; a /64
        // refused here (held by another session) leaves the session
        // without IPv6, and its packets are `ipv6_source_spoofed` / `ipv6_no_session`.
        if let Some(slot) = self.sessions.slot_by_id(id) {
            self.sessions.set_prefix6(slot, prefix);
        }
    }

    /// [`Command::SessionDelegated6`](crate::msg::Command::SessionDelegated6): delegates
    /// (or takes away) a session's IPv6 prefix; one refused (overlapping another's, a
    /// length out of /32../64) leaves the session without it.
    pub fn session_delegated6(&mut self, id: SessionId, prefix: Option<(u64, u8)>) {
        if let Some(slot) = self.sessions.slot_by_id(id) {
            self.sessions.set_delegated6(slot, prefix);
        }
    }
}

/// Whether the PPPoE header before `l3` says a payload long enough for the IPv6 packet
/// `h` and the PPP protocol field (padding after it is cut).
#[inline]
fn pppoe_covers<B: PacketBuf>(buf: &B, l3: usize, h: &Header) -> bool {
    let p = pppoe::Packet::new_unchecked(&buf.data()[l3 - pppoe::HEADER_LEN..l3]);
    p.payload_len() as usize >= h.total + pppoe::PPP_PROTOCOL_LEN as usize
}
