//! Stage: NAT64 (V6-2; RFC 6146 stateful, RFC 6052 /96 prefix, RFC 7915 translation).
//! A session's IPv6 to an address inside the NAT64 prefix leaves as IPv4 from a pool
//! address and port (a binding per flow, on the endpoint-independent mapping of the
//! subscriber's address and port, [`crate::table::nat64`]); an IPv4 packet to a pool
//! address and port goes back to the binding's subscriber as IPv6 from the prefix (UDP
//! from a new sender opens a binding when `[nat64] filtering` lets it in). A destination that is a VIP goes on, translated, into the IPv4
//! service stage, which balances it like any subscriber's (the binding's pool address
//! and port are then the subscriber there) and hands the servers' answers back here.
//!
//! Translated: TCP and UDP (checksums adjusted for the pseudo-headers and the port;
//! an IPv4 UDP checksum of zero is computed in full, as IPv6 requires one), ICMPv6 echo
//! request to ICMP echo request and ICMP echo reply back (identifier as the port,
//! checksums recomputed). The IPv4 header has identification 0 and DF only over 1260
//! bytes (RFC 7915 5.1), TTL from the hop limit and the traffic class as TOS, and the
//! hop limit comes from the TTL; both are decremented once, as forwarding does. IPv6
//! too long for `[nat64] mtu` once translated is answered with Packet Too Big. ICMP
//! errors either way are translated by [`super::nat64_icmp`].
//!
//! Not translated (each a named drop): other protocols and ICMP types, fragments and
//! cut-short headers (`nat64_unsupported`).
//! Session counters and flow counters count a translated packet by its IPv4 length.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::forward::{self, Header as Header4, Route};
use super::ipv6::{self, Header as Header6, next_header};
use super::subscriber::expiry_close;
use super::{Pipeline, Verdict, access, rewrite};
use crate::buf::PacketBuf;
use crate::counters::DropReason;
use crate::fib::Forwarding;
use crate::msg::Event;
use crate::table::flow::{FlowClose, FlowRecord, FlowState, NAT64_SERVICE, NIL};
use crate::table::nat64::{BindError, Key};
use crate::table::session::Dir;
use crate::time::Instant;
use crate::types::Side;
use crate::wire::checksum;
use crate::wire::ethernet::{self, ethertype};
use crate::wire::ipv4::protocol;
use crate::wire::tcp::flags;
use crate::wire::{get_u16, put_u16};

/// ICMPv6 echo request and reply (RFC 4443).
const ICMP6_ECHO_REQUEST: u8 = 128;
const ICMP6_ECHO_REPLY: u8 = 129;
/// ICMPv6 Packet Too Big (RFC 4443 3.2).
const ICMP6_PACKET_TOO_BIG: u8 = 2;
/// ICMP echo request and reply (RFC 792).
const ICMP_ECHO_REQUEST: u8 = 8;
const ICMP_ECHO_REPLY: u8 = 0;
/// The IPv4 header the stage writes (no options).
const V4_LEN: usize = 20;

/// A downlink packet to a binding, as `nat64_down_to` looks it up.
#[derive(Clone, Copy)]
struct Down {
    /// The IPv4 end the subscriber exchanges it with (address, port; 0 for echo).
    remote: (Ipv4Addr, u16),
    /// The binding's pool port (echo: identifier).
    pool_port: u16,
    tcp_flags: u8,
    /// A VIP's answer, not yet translated from its server: the VIP's port (the
    /// source port written) and the session slot the service stage checked.
    answer: Option<(u16, u32)>,
}

/// What uplink translation needs of the upper layer: IPv4 protocol, source port (echo
/// identifier), destination port (0 for echo), TCP flags.
#[inline]
fn upper_up(ip: &[u8], h: &Header6) -> Result<(u8, u16, u16, u8), DropReason> {
    let l4 = ip.get(h.l4..h.total).ok_or(DropReason::Nat64Unsupported)?;
    match h.proto {
        next_header::UDP if l4.len() >= 8 => Ok((protocol::UDP, get_u16(l4, 0), get_u16(l4, 2), 0)),
        protocol::TCP if l4.len() >= 20 => {
            Ok((protocol::TCP, get_u16(l4, 0), get_u16(l4, 2), l4[13]))
        }
        next_header::ICMPV6 if l4.len() >= 8 => match l4[0] {
            ICMP6_ECHO_REQUEST => Ok((protocol::ICMP, get_u16(l4, 4), 0, 0)),
            // An error: translated by `nat64_icmp_up`.
            t if t < 128 => Err(DropReason::Nat64IcmpError),
            _ => Err(DropReason::Nat64Unsupported),
        },
        _ => Err(DropReason::Nat64Unsupported),
    }
}

/// The one's complement sum of an IPv6 address's words, negated (to take it out of a
/// checksum). Summed as four 32-bit words: 2^16 is 1 in one's complement arithmetic,
/// so a 32-bit word adds what its two 16-bit halves add (and its complement what
/// theirs do), and the fold gives the same checksum.
#[inline(always)]
pub(super) fn minus6(a: Ipv6Addr) -> u64 {
    let b = !a.to_bits();
    u64::from(b as u32)
        + u64::from((b >> 32) as u32)
        + u64::from((b >> 64) as u32)
        + u64::from((b >> 96) as u32)
}

#[inline(always)]
pub(super) fn plus6(a: Ipv6Addr) -> u64 {
    let b = a.to_bits();
    u64::from(b as u32)
        + u64::from((b >> 32) as u32)
        + u64::from((b >> 64) as u32)
        + u64::from((b >> 96) as u32)
}

#[inline(always)]
pub(super) fn plus4(a: Ipv4Addr) -> u64 {
    let b = a.to_bits();
    u64::from(b >> 16) + u64::from(b & 0xffff)
}

#[inline(always)]
pub(super) fn minus4(a: Ipv4Addr) -> u64 {
    let b = !a.to_bits();
    u64::from(b >> 16) + u64::from(b & 0xffff)
}

/// Rewrites the IPv6 packet at `l3` (header `h`, upper layer `proto4` in IPv4's
/// numbering) into an IPv4 packet from `src` to `dst` ending where it ended: the upper
/// layer stays in place and the IPv4 header goes just before it. Returns where the IPv4
/// header starts. The caller checked the upper layer's header is there
/// ([`upper_up`]).
pub fn to_ipv4(
    frame: &mut [u8],
    l3: usize,
    h: &Header6,
    proto4: u8,
    (src, port): (Ipv4Addr, u16),
    dst: Ipv4Addr,
) -> usize {
    let l4 = l3 + h.l4;
    let len = h.total - h.l4;
    let tos = (frame[l3] << 4) | (frame[l3 + 1] >> 4);
    {
        let seg = &mut frame[l4..l4 + len];
        match proto4 {
            protocol::ICMP => {
                seg[0] = ICMP_ECHO_REQUEST;
                put_u16(seg, 4, port);
                put_u16(seg, 2, 0);
                let c = checksum::checksum(seg);
                put_u16(seg, 2, c);
            }
            _ => {
                let at = if proto4 == protocol::TCP { 16 } else { 6 };
                let old = get_u16(seg, at);
                let old_port = get_u16(seg, 0);
                put_u16(seg, 0, port);
                // A UDP checksum is never 0 in IPv6; the pseudo-header's length and
                // protocol are the same number in both.
                let s = u64::from(!old)
                    + minus6(h.src)
                    + minus6(h.dst)
                    + plus4(src)
                    + plus4(dst)
                    + u64::from(!old_port)
                    + u64::from(port);
                let mut c = !checksum::fold_wide(s);
                if c == 0 && proto4 == protocol::UDP {
                    c = 0xffff;
                }
                put_u16(seg, at, c);
            }
        }
    }
    let at = l4 - V4_LEN;
    let total = (V4_LEN + len) as u16;
    // RFC 7915 5.1: DF only over 1260 bytes (a smaller packet may meet an IPv4 link
    // under 1280 and be fragmented there).
    let df: u16 = if V4_LEN + len > 1260 { 0x4000 } else { 0 };
    let ip = &mut frame[at..l4];
    ip[0] = 0x45;
    ip[1] = tos;
    put_u16(ip, 2, total);
    put_u16(ip, 4, 0);
    put_u16(ip, 6, df);
    ip[8] = h.hop_limit;
    ip[9] = proto4;
    ip[12..16].copy_from_slice(&src.octets());
    ip[16..20].copy_from_slice(&dst.octets());
    put_u16(
        ip,
        10,
        header4_checksum(tos, total, df, h.hop_limit, proto4, src, dst),
    );
    at
}

/// The longest IPv4 packet that fits a line of IPv6 MTU `mtu` once translated (the
/// IPv6 header is 20 bytes longer; no IPv4 options are carried over).
#[inline(always)]
pub(super) fn ipv4_mtu_of(mtu: u16) -> u16 {
    mtu.saturating_sub(20)
}

/// Moves the two MAC addresses (12 bytes) at `from` to `to`: a fixed-size copy the
/// compiler does in registers (`copy_within` calls `memmove`).
#[inline(always)]
fn move_macs(frame: &mut [u8], from: usize, to: usize) {
    let mut macs = [0u8; 12];
    macs.copy_from_slice(&frame[from..from + 12]);
    frame[to..to + 12].copy_from_slice(&macs);
}

/// The header checksum of the IPv4 header [`to_ipv4`] writes (no options,
/// identification 0), from its fields rather than from memory.
#[inline(always)]
pub(super) fn header4_checksum(
    tos: u8,
    total: u16,
    flags: u16,
    ttl: u8,
    proto: u8,
    src: Ipv4Addr,
    dst: Ipv4Addr,
) -> u16 {
    let s = (0x4500 | u64::from(tos))
        + u64::from(total)
        + u64::from(flags)
        + (u64::from(ttl) << 8 | u64::from(proto))
        + u64::from(src.to_bits())
        + u64::from(dst.to_bits());
    !checksum::fold_wide(s)
}

/// Rewrites the IPv4 packet at `l3` (header `h`) in `buf` into an IPv6 packet from `src`
/// to `(dst, port)`, the IPv6 header put where the IPv4 header ended less 40 bytes, the
/// Ethernet header just before it (its MACs kept, for the caller to rewrite). The frame
/// ends with the packet. Returns the IPv6 packet's length; an error when the buffer
/// has no room or the upper layer is not one translated.
///
/// `src_port`, for TCP and UDP: a new source port too (a VIP's answer, translated from
/// its server in the same pass).
pub fn to_ipv6<B: PacketBuf>(
    buf: &mut B,
    l3: usize,
    h: &Header4,
    (src, src_port): (Ipv6Addr, Option<u16>),
    (dst, port): (Ipv6Addr, u16),
) -> Result<usize, DropReason> {
    let len = h.total - h.hl;
    if !buf.set_len(l3 + h.total) {
        return Err(DropReason::Nat64Unsupported);
    }
    let frame = buf.data_mut();
    let (tos, ttl) = (frame[l3 + 1], frame[l3 + 8]);
    let l4 = l3 + h.hl;
    let nh = {
        let seg = &mut frame[l4..l4 + len];
        match h.proto {
            protocol::ICMP => {
                seg[0] = match seg[0] {
                    ICMP_ECHO_REPLY => ICMP6_ECHO_REPLY,
                    _ => ICMP6_ECHO_REQUEST,
                };
                put_u16(seg, 4, port);
                next_header::ICMPV6
            }
            p => {
                let at = if p == protocol::TCP { 16 } else { 6 };
                let old = get_u16(seg, at);
                let old_port = get_u16(seg, 2);
                put_u16(seg, 2, port);
                // The source port's change (none unless asked).
                let old_src = get_u16(seg, 0);
                let new_src = src_port.unwrap_or(old_src);
                put_u16(seg, 0, new_src);
                if old != 0 || p == protocol::TCP {
                    let s = u64::from(!old)
                        + minus4(h.src)
                        + minus4(h.dst)
                        + plus6(src)
                        + plus6(dst)
                        + u64::from(!old_port)
                        + u64::from(port)
                        + u64::from(!old_src)
                        + u64::from(new_src);
                    let mut c = !checksum::fold_wide(s);
                    if c == 0 && p == protocol::UDP {
                        c = 0xffff;
                    }
                    put_u16(seg, at, c);
                }
                p
            }
        }
    };
    // The IPv6 header ends where the IPv4 header did; the MACs move to just before it.
    let grow = ipv6::HEADER_LEN as isize - h.hl as isize - (l3 - ethernet::HEADER_LEN) as isize;
    let macs = if grow >= 0 {
        if !buf.prepend(grow as usize) {
            return Err(DropReason::EncapNoRoom);
        }
        grow as usize
    } else {
        let cut = (-grow) as usize;
        move_macs(buf.data_mut(), 0, cut);
        if !buf.strip(cut) {
            return Err(DropReason::Nat64Unsupported);
        }
        0
    };
    let frame = buf.data_mut();
    move_macs(frame, macs, 0);
    put_u16(frame, 12, ethertype::IPV6);
    let ip = &mut frame[ethernet::HEADER_LEN..ethernet::HEADER_LEN + ipv6::HEADER_LEN];
    ip[0] = 0x60 | tos >> 4;
    ip[1] = tos << 4;
    ip[2] = 0;
    ip[3] = 0;
    put_u16(ip, 4, len as u16);
    ip[6] = nh;
    ip[7] = ttl.saturating_sub(1);
    ip[8..24].copy_from_slice(&src.octets());
    ip[24..40].copy_from_slice(&dst.octets());
    let l4 = ethernet::HEADER_LEN + ipv6::HEADER_LEN;
    let full = match nh {
        next_header::ICMPV6 => Some(2),
        protocol::UDP if get_u16(frame, l4 + 6) == 0 => Some(6),
        _ => None,
    };
    if let Some(at) = full {
        // ICMPv6's checksum covers a pseudo-header ICMP's does not; a UDP checksum
        // IPv4 left out is one IPv6 needs.
        put_u16(frame, l4 + at, 0);
        let pseudo = checksum::add(
            checksum::sum(&frame[ethernet::HEADER_LEN + 8..l4]),
            len as u32 + u32::from(nh),
        );
        let c = !checksum::fold(checksum::add(pseudo, checksum::sum(&frame[l4..l4 + len])));
        let c = if c == 0 && nh == protocol::UDP {
            0xffff
        } else {
            c
        };
        put_u16(frame, l4 + at, c);
    }
    Ok(ipv6::HEADER_LEN + len)
}

impl Pipeline {
    /// Uplink IPv6 from the session in `slot` to `dst` (embedded in the NAT64 prefix):
    /// through its binding, translated, routed (or to a VIP's service) as IPv4.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn nat64_up<B: PacketBuf>(
        &mut self,
        fwd: &Forwarding,
        buf: &mut B,
        l3: usize,
        h: &Header6,
        slot: u32,
        dst: Ipv4Addr,
        now: Instant,
    ) -> Verdict {
        let (proto, sport, dport, tcp_flags) = match upper_up(&buf.data()[l3..], h) {
            Ok(u) => u,
            Err(DropReason::Nat64IcmpError) => {
                let vip = fwd.services.is_vip(dst);
                return match self.nat64_route(fwd, dst, vip) {
                    Ok(route) => self.nat64_icmp_up(fwd, buf, l3, h, slot, dst, route, now),
                    Err(r) => Verdict::Drop(r),
                };
            }
            Err(r) => return Verdict::Drop(r),
        };
        let Some(session) = self.sessions.get(slot) else {
            return Verdict::Drop(DropReason::Ipv6NoSession);
        };
        let (session_id, clamp) = (session.id, session.mss_clamp);
        let vip = fwd.services.is_vip(dst);
        // Routed before a binding opens; a VIP's server is routed by the service stage.
        let route = match self.nat64_route(fwd, dst, vip) {
            Ok(r) => r,
            Err(r) => return Verdict::Drop(r),
        };
        // Too big for the core side once translated: Packet Too Big, the MTU the IPv6
        // header's 20 more bytes (RFC 7915 5.1; never under the IPv6 minimum).
        if V4_LEN + h.total - h.l4 > usize::from(fwd.nat64.mtu) {
            return self.nat64_too_big(fwd, buf, l3, h, now);
        }
        // The service stage would answer a refusal with IPv4: refuse here instead.
        let service = if vip {
            match fwd.services.find(dst, proto, dport) {
                None => return Verdict::Drop(DropReason::NoService),
                Some(i) if !session.allows(i) => {
                    return Verdict::Drop(DropReason::ServiceRefused);
                }
                Some(i) => Some(i),
            }
        } else {
            None
        };
        let key = Key {
            sub: h.src,
            sub_port: sport,
            remote: dst,
            remote_port: dport,
            proto,
        };
        let syn_only = tcp_flags & (flags::SYN | flags::ACK | flags::RST) == flags::SYN;
        let mut found = self.nat64.find_up(&key);
        if let Some(i) = found {
            // The fields asked for, not a copy of the binding.
            let Some((stale, state)) = self.nat64.get(i).map(|b| {
                let stale = b.expires(&fwd.nat.timeouts) <= now
                    || b.session_id != session_id
                    || (proto == protocol::TCP && syn_only && b.state.is_finished());
                (stale, b.state)
            }) else {
                return Verdict::Drop(DropReason::Nat64NoBinding);
            };
            if stale {
                self.close_binding(fwd, i, expiry_close(state));
                found = None;
            }
        }
        let i = match found {
            Some(i) => i,
            None if proto == protocol::TCP && !syn_only => {
                return Verdict::Drop(DropReason::Nat64NoBinding);
            }
            None => match self.nat64.create(key, (slot, session_id), now) {
                Ok(i) => {
                    self.counters.nat64_bindings_opened += 1;
                    i
                }
                Err(BindError::TableFull) => return Verdict::Drop(DropReason::Nat64TableFull),
                Err(BindError::NoPort) => return Verdict::Drop(DropReason::Nat64NoPort),
            },
        };
        let Some((addr, port)) = self.nat64.get(i).map(|b| (b.addr, b.port)) else {
            return Verdict::Drop(DropReason::Nat64NoBinding);
        };
        let Some(pool) = fwd.nat64.pool.get(addr as usize).copied() else {
            return Verdict::Drop(DropReason::Nat64NoBinding);
        };
        // ACC-5: the subscriber's side is IPv6, whatever the server's is: its SYN's
        // MSS is clamped for IPv6 (the IPv4 side's clamp, later, then leaves it).
        if clamp != 0 {
            access::clamp_mss6(&mut buf.data_mut()[l3..], h, access::mss6(clamp));
        }
        let at = to_ipv4(buf.data_mut(), l3, h, proto, (pool, port), dst);
        // The MACs move up to just before the IPv4 header, over the IPv6 header and any
        // VLAN tags.
        let cut = at - ethernet::HEADER_LEN;
        move_macs(buf.data_mut(), 0, cut);
        if !buf.strip(cut) {
            return Verdict::Drop(DropReason::EthTooShort);
        }
        let l3 = ethernet::HEADER_LEN;
        put_u16(buf.data_mut(), 12, ethertype::IPV4);
        let h4 = Header4 {
            src: pool,
            dst,
            proto,
            hl: V4_LEN,
            total: V4_LEN + h.total - h.l4,
            ttl: h.hop_limit,
            fragment: false,
        };
        let v = if let Some(service) = service {
            self.service_up(fwd, buf, l3, &h4, Some(slot), (NIL, Some(service)), now)
        } else {
            if let Err(r) = self.admit(fwd, Some(slot), Dir::Up, h4.total, now) {
                return Verdict::Drop(r);
            }
            self.finish(
                fwd,
                buf,
                l3,
                &h4,
                route,
                Dir::Up,
                Some(slot),
                None,
                dst,
                now,
            )
        };
        if !matches!(v, Verdict::Drop(_)) {
            self.counters.nat64_up += 1;
            let mut reset = false;
            if let Some(b) = self.nat64.get_mut(i) {
                b.last_seen = now;
                b.up.0 += 1;
                b.up.1 += h4.total as u64;
                if proto == protocol::TCP {
                    b.state = b.state.on_tcp(true, tcp_flags);
                }
                reset = b.state == FlowState::TcpReset;
            }
            if reset {
                self.close_binding(fwd, i, FlowClose::Rst);
            }
        }
        v
    }

    /// Downlink IPv4 to pool address `addr` (its index) at `l3` (header `h`): back to
    /// its binding's subscriber as IPv6.
    pub(super) fn nat64_down<B: PacketBuf>(
        &mut self,
        fwd: &Forwarding,
        buf: &mut B,
        l3: usize,
        h: &Header4,
        addr: u16,
        now: Instant,
    ) -> Verdict {
        let l4 = &buf.data()[l3 + h.hl..l3 + h.total];
        if h.fragment {
            return Verdict::Drop(DropReason::Nat64Unsupported);
        }
        let (sport, dport, tcp_flags) = match h.proto {
            protocol::UDP if l4.len() >= 8 => (get_u16(l4, 0), get_u16(l4, 2), 0),
            protocol::TCP if l4.len() >= 20 => (get_u16(l4, 0), get_u16(l4, 2), l4[13]),
            protocol::ICMP if l4.len() >= 8 => match l4[0] {
                ICMP_ECHO_REPLY => (0, get_u16(l4, 4), 0),
                3 | 11 | 12 => return self.nat64_icmp_down(fwd, buf, l3, h, addr, now),
                // Source quench and redirect (RFC 7915 4.2: dropped).
                4 | 5 => return Verdict::Drop(DropReason::Nat64IcmpError),
                _ => return Verdict::Drop(DropReason::Nat64Unsupported),
            },
            _ => return Verdict::Drop(DropReason::Nat64Unsupported),
        };
        let down = Down {
            remote: (h.src, sport),
            pool_port: dport,
            tcp_flags,
            answer: None,
        };
        self.nat64_down_to(fwd, buf, l3, h, addr, down, now)
    }

    /// A VIP's answer to pool address `addr` (its index), as a real server sent it
    /// (header `h`; the service stage found its flow, checked its session in `slot`
    /// and policed it): back to its binding's subscriber as IPv6 from the VIP's
    /// address and port (`from`) and to the binding's port (its flow's, `pool_port`),
    /// in one translation.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn nat64_answer<B: PacketBuf>(
        &mut self,
        fwd: &Forwarding,
        buf: &mut B,
        l3: usize,
        h: &Header4,
        addr: u16,
        (from, pool_port, tcp_flags): ((Ipv4Addr, u16), u16, u8),
        slot: u32,
        now: Instant,
    ) -> Verdict {
        let remote = match h.proto {
            // Only an echo reply goes back (identifier as the port, remote port 0).
            protocol::ICMP => match buf.data().get(l3 + h.hl) {
                Some(&ICMP_ECHO_REPLY) => (from.0, 0),
                _ => return Verdict::Drop(DropReason::Nat64Unsupported),
            },
            _ => from,
        };
        let down = Down {
            remote,
            pool_port,
            tcp_flags,
            answer: Some((from.1, slot)),
        };
        self.nat64_down_to(fwd, buf, l3, h, addr, down, now)
    }

    /// The downlink to a binding: [`Self::nat64_down`]'s and [`Self::nat64_answer`]'s
    /// common part.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn nat64_down_to<B: PacketBuf>(
        &mut self,
        fwd: &Forwarding,
        buf: &mut B,
        l3: usize,
        h: &Header4,
        addr: u16,
        down: Down,
        now: Instant,
    ) -> Verdict {
        let i = match self
            .nat64
            .find_down(addr, h.proto, down.pool_port, down.remote)
        {
            Some(i) => i,
            None => {
                match self.nat64_inbound(fwd, addr, h.proto, (down.remote, down.pool_port), now) {
                    Some(i) => i,
                    None => return Verdict::Drop(DropReason::Nat64NoBinding),
                }
            }
        };
        // The fields asked for, not a copy of the binding.
        let Some((expires, state, slot, session_id, sub)) = self.nat64.get(i).map(|b| {
            (
                b.expires(&fwd.nat.timeouts),
                b.state,
                b.session,
                b.session_id,
                (b.sub, b.sub_port),
            )
        }) else {
            return Verdict::Drop(DropReason::Nat64NoBinding);
        };
        if expires <= now {
            self.close_binding(fwd, i, expiry_close(state));
            return Verdict::Drop(DropReason::Nat64NoBinding);
        }
        // A VIP's answer's session was asked whether it is due by the service stage,
        // for this packet: not again.
        let checked = down.answer.is_some_and(|(_, s)| s == slot);
        let (mac, plain, clamp, line_mtu, l2tp) = match self.sessions.get(slot) {
            Some(s) if s.id == session_id => match if checked { None } else { s.due(now) } {
                Some((t, cause)) => {
                    self.close_session(fwd, slot, t, cause);
                    self.close_binding(fwd, i, FlowClose::SessionEnded);
                    return Verdict::Drop(DropReason::Ipv6NoSession);
                }
                None => (
                    s.mac,
                    s.is_plain(),
                    s.mss_clamp,
                    s.line_mtu(),
                    s.l2tp_session(),
                ),
            },
            _ => {
                self.close_binding(fwd, i, FlowClose::SessionEnded);
                return Verdict::Drop(DropReason::Ipv6NoSession);
            }
        };
        let Some(mac) = mac else {
            return Verdict::Drop(DropReason::Ipv6NoSession);
        };
        if h.ttl <= 1 {
            return self.ttl_expired(fwd, Side::Core, buf, l3, now);
        }
        if down.answer.is_none() {
            // Too long for the session's line once 20 bytes longer as IPv6: with DF,
            // fragmentation-needed with the line's MTU less 20 (RFC 7915 4.1, RFC 6146
            // 3.5; a VIP's answer was checked so by the service stage).
            if let Some(mtu) = line_mtu.map(ipv4_mtu_of)
                && h.total > usize::from(mtu)
            {
                return self.line_too_big(fwd, buf, l3, mtu, now);
            }
            if let Err(r) = self.admit(fwd, Some(slot), Dir::Down, h.total, now) {
                return Verdict::Drop(r);
            }
        }
        // ACC-5: a SYN-ACK's MSS, clamped for the subscriber's IPv6 line (before the
        // translation, which carries the checksum over).
        if clamp != 0 && h.proto == protocol::TCP {
            access::clamp_mss(&mut buf.data_mut()[l3..], h, access::mss6(clamp));
        }
        let from = fwd.nat64.synthesize(down.remote.0);
        let src_port = down.answer.map(|(port, _)| port);
        let total6 = match to_ipv6(buf, l3, h, (from, src_port), sub) {
            Ok(n) => n,
            Err(r) => return Verdict::Drop(r),
        };
        // The template ends in IPv4's type: IPv6's (PPP's 0x0057 on PPPoE) instead. An
        // LNS's PPP subscriber is reached through its L2TP session (below).
        if l2tp.is_none()
            && !plain
            && let Err(r) = self.encapsulate_down6(buf, slot, ethernet::HEADER_LEN, total6)
        {
            return Verdict::Drop(r);
        }
        if let Some(s) = self.sessions.get_mut(slot) {
            s.count(Dir::Down, h.total as u64, now, down.remote.0);
        }
        self.counters.nat64_down += 1;
        let mut reset = false;
        if let Some(b) = self.nat64.get_mut(i) {
            b.last_seen = now;
            b.down.0 += 1;
            b.down.1 += h.total as u64;
            if h.proto == protocol::TCP {
                b.state = b.state.on_tcp(false, down.tcp_flags);
                reset = b.state == FlowState::TcpReset;
            }
        }
        if reset {
            self.close_binding(fwd, i, FlowClose::Rst);
        }
        if let Some(session) = l2tp {
            return self.encapsulate6(fwd, buf, ethernet::HEADER_LEN, total6, session, now);
        }
        rewrite::l2(buf.data_mut(), mac, fwd.side(Side::Access).mac);
        Verdict::Forward(Side::Access)
    }

    /// UDP from `remote` (address, port) to pool port `dport` of pool address `addr` that no
    /// binding has: a new binding of the port's mapping when the filtering lets it in
    /// (RFC 4787 REQ-8; RFC 6146 3.5.1): endpoint-independent, from anywhere;
    /// address-dependent (the default), from an address the mapping already has a
    /// binding with. TCP and ICMP need their own binding.
    #[cold]
    #[inline(never)]
    fn nat64_inbound(
        &mut self,
        fwd: &Forwarding,
        addr: u16,
        proto: u8,
        ((remote, sport), dport): ((Ipv4Addr, u16), u16),
        now: Instant,
    ) -> Option<u32> {
        if proto != protocol::UDP {
            return None;
        }
        let head = self.nat64.mapping_down(addr, proto, dport)?;
        let hb = self.nat64.get(head).copied()?;
        if hb.expires(&fwd.nat.timeouts) <= now || fwd.services.is_vip(hb.remote) {
            return None;
        }
        if !fwd.nat64.endpoint_independent_filtering && !self.nat64.mapping_has_remote(head, remote)
        {
            return None;
        }
        let key = Key {
            sub: hb.sub,
            sub_port: hb.sub_port,
            remote,
            remote_port: sport,
            proto,
        };
        let i = self
            .nat64
            .create(key, (hb.session, hb.session_id), now)
            .ok()?;
        self.counters.nat64_bindings_opened += 1;
        Some(i)
    }

    /// Where IPv4 to `dst`, embedded in the prefix, goes: dropped when not unicast,
    /// the gateway's own or a pool address, or routed to the access side (no
    /// hairpinning, RFC 6146 3.8); a VIP goes to the core side (its server is routed by
    /// the service stage).
    /// `vip`: whether `dst` is a VIP (the caller asked already).
    #[inline(always)]
    fn nat64_route(
        &self,
        fwd: &Forwarding,
        dst: Ipv4Addr,
        vip: bool,
    ) -> Result<(Side, Ipv4Addr), DropReason> {
        if dst.is_unspecified()
            || dst.is_loopback()
            || dst.is_multicast()
            || dst.is_broadcast()
            || fwd.is_ours(dst)
            || fwd.nat64.pool_index(dst).is_some()
        {
            return Err(DropReason::Nat64BadDestination);
        }
        if vip {
            return Ok((Side::Core, dst));
        }
        match forward::route(fwd, dst) {
            Ok(Route::Out {
                side: Side::Access, ..
            }) => Err(DropReason::Nat64BadDestination),
            Ok(Route::Out { side, next_hop }) => Ok((side, next_hop)),
            Ok(Route::Local) => Err(DropReason::LocalUnsupported),
            Err(r) => Err(r),
        }
    }

    /// An uplink packet too big for `[nat64] mtu` once translated: dropped
    /// (`nat64_packet_too_big`), and answered with ICMPv6 Packet Too Big from the
    /// access side's error source, paced by the ICMP error bucket.
    #[cold]
    #[inline(never)]
    fn nat64_too_big<B: PacketBuf>(
        &mut self,
        fwd: &Forwarding,
        buf: &mut B,
        l3: usize,
        h: &Header6,
        now: Instant,
    ) -> Verdict {
        let r = DropReason::Nat64PacketTooBig;
        let Some(from) = fwd.ipv6.error_sources[Side::Access.idx()] else {
            return Verdict::Drop(r);
        };
        if !self.icmp_limit.take(now) {
            self.counters.icmp_rate_limited += 1;
            return Verdict::Drop(r);
        }
        let mac = fwd.side(Side::Access).mac;
        if !ipv6::error_in_place(buf, l3, h, from, mac, (ICMP6_PACKET_TOO_BIG, 0)) {
            return Verdict::Drop(r);
        }
        // The checksum was made over a zero MTU: add it in (it fits the low word).
        let mtu = (fwd.nat64.mtu + 20).max(ipv6::MIN_MTU as u16);
        let at = l3 + ipv6::HEADER_LEN;
        let frame = buf.data_mut();
        let c = checksum::update16(get_u16(frame, at + 2), 0, mtu);
        put_u16(frame, at + 2, c);
        put_u16(frame, at + 6, mtu);
        self.counters.drop(r);
        self.counters.icmp_errors += 1;
        Verdict::Reply
    }

    /// Ends binding `i` and sends its record, which ends at its last packet; its port
    /// goes back to the pool.
    pub(crate) fn close_binding(&mut self, fwd: &Forwarding, i: u32, close: FlowClose) {
        let Some(b) = self.nat64.remove(i) else {
            return;
        };
        self.counters.nat64_bindings_closed += 1;
        // A binding towards a VIP is recorded by its service's flow.
        if fwd.services.is_vip(b.remote) {
            return;
        }
        let user = match self.sessions.get(b.session) {
            Some(s) if s.id == b.session_id => s.user(),
            _ => 0,
        };
        let pool = fwd
            .nat64
            .pool
            .get(b.addr as usize)
            .copied()
            .unwrap_or(Ipv4Addr::UNSPECIFIED);
        let remote = (
            b.remote,
            if b.proto == protocol::ICMP {
                b.sub_port
            } else {
                b.remote_port
            },
        );
        self.emit(Event::FlowRecord(FlowRecord {
            session: b.session_id,
            user,
            service: NAT64_SERVICE,
            protocol: b.proto,
            subscriber: (pool, b.sub_port),
            subscriber6: Some(b.sub),
            vip: remote,
            server: remote,
            nat: (pool, b.port),
            started: b.started,
            ended: b.last_seen,
            up: b.up,
            down: b.down,
            close,
            // No slot of the NAT flows' (whose hosts are matched by slot).
            flow: (NIL, i),
        }));
    }

    /// Ends every binding (the worker is stopping).
    pub(crate) fn close_all_bindings(&mut self, fwd: &Forwarding) {
        let live: Vec<u32> = self.nat64.live().collect();
        for i in live {
            self.close_binding(fwd, i, FlowClose::Shutdown);
        }
    }

    /// Per-poll work: a few bindings looked at for expiry.
    pub(crate) fn nat64_tick(&mut self, fwd: &Forwarding, now: Instant) {
        if self.nat64.is_empty() {
            return;
        }
        let mut batch: arrayvec::ArrayVec<u32, 256> = arrayvec::ArrayVec::new();
        let n = self.sweep_per_poll.min(batch.capacity());
        self.nat64
            .sweep_expired(n, &fwd.nat.timeouts, now, &mut |i| batch.push(i));
        for &i in &batch {
            if let Some(b) = self
                .nat64
                .get(i)
                .filter(|b| b.expires(&fwd.nat.timeouts) <= now)
            {
                let close = expiry_close(b.state);
                self.close_binding(fwd, i, close);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::buf::{BufPool, HeapPool};
    use crate::table::nat64::Nat64Config;
    use crate::wire::nat as natwire;

    /// The one's complement sum of an address's 16-bit words, as RFC 1071 sums.
    fn words16(a: Ipv6Addr) -> u64 {
        a.segments().iter().map(|w| u64::from(*w)).sum()
    }

    /// An IPv4/TCP or IPv4/UDP packet from `src` to `dst` in an Ethernet frame, its
    /// checksums right (a UDP checksum of zero when `udp_zero`).
    fn frame4(
        proto: u8,
        (src, sport): (Ipv4Addr, u16),
        (dst, dport): (Ipv4Addr, u16),
        (ttl, tos): (u8, u8),
        payload: &[u8],
        udp_zero: bool,
    ) -> Vec<u8> {
        let b = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]).ip(
            etherparse::IpHeaders::Ipv4(
                {
                    let mut h = etherparse::Ipv4Header::new(
                        0,
                        ttl,
                        etherparse::IpNumber(proto),
                        src.octets(),
                        dst.octets(),
                    )
                    .unwrap();
                    h.dscp = etherparse::IpDscp::try_new(tos >> 2).unwrap();
                    h.ecn = etherparse::IpEcn::try_new(tos & 3).unwrap();
                    h
                },
                Default::default(),
            ),
        );
        let mut v = Vec::new();
        if proto == protocol::TCP {
            b.tcp(sport, dport, 7, 1000)
                .ack(3)
                .write(&mut v, payload)
                .unwrap();
        } else {
            b.udp(sport, dport).write(&mut v, payload).unwrap();
            if udp_zero {
                let at = ethernet::HEADER_LEN + V4_LEN + 6;
                v[at..at + 2].copy_from_slice(&[0, 0]);
            }
        }
        v
    }

    fn header4(frame: &[u8]) -> Header4 {
        let ip = &frame[ethernet::HEADER_LEN..];
        Header4 {
            src: Ipv4Addr::from_bits(u32::from_be_bytes(ip[12..16].try_into().unwrap())),
            dst: Ipv4Addr::from_bits(u32::from_be_bytes(ip[16..20].try_into().unwrap())),
            proto: ip[9],
            hl: V4_LEN,
            total: ip.len(),
            ttl: ip[8],
            fragment: false,
        }
    }

    proptest! {
        /// Summing an address as 32-bit words folds to what its 16-bit words fold to,
        /// complemented or not.
        #[test]
        fn address_sums_by_32_bit_words_fold_as_16_bit_ones(a in any::<u128>(), b in any::<u128>()) {
            let (a, b) = (Ipv6Addr::from_bits(a), Ipv6Addr::from_bits(b));
            prop_assert_eq!(checksum::fold_wide(plus6(a) + plus6(b)), checksum::fold_wide(words16(a) + words16(b)));
            let minus16: u64 = a.segments().iter().map(|w| u64::from(!*w)).sum();
            prop_assert_eq!(checksum::fold_wide(minus6(a) + plus6(b)), checksum::fold_wide(minus16 + words16(b)));
        }

        /// The IPv4 header checksum made from the fields is the one a full sum over the
        /// written header gives.
        #[test]
        fn header_checksum_from_fields_equals_a_full_recompute(
            tos in any::<u8>(), total in 20u16.., df in any::<bool>(), ttl in any::<u8>(),
            proto in any::<u8>(), src in any::<u32>(), dst in any::<u32>(),
        ) {
            let (src, dst) = (Ipv4Addr::from_bits(src), Ipv4Addr::from_bits(dst));
            let flags = if df { 0x4000 } else { 0 };
            let mut ip = [0u8; 20];
            ip[0] = 0x45;
            ip[1] = tos;
            put_u16(&mut ip, 2, total);
            put_u16(&mut ip, 6, flags);
            ip[8] = ttl;
            ip[9] = proto;
            ip[12..16].copy_from_slice(&src.octets());
            ip[16..20].copy_from_slice(&dst.octets());
            let full = checksum::checksum(&ip);
            prop_assert_eq!(header4_checksum(tos, total, flags, ttl, proto, src, dst), full);
        }

        /// A VIP's answer translated in one pass (server to IPv6, source port too) is
        /// byte for byte the two passes it replaced: the service stage's NAT rewrite,
        /// then the IPv4 to IPv6 translation; and its checksum verifies.
        #[test]
        fn one_pass_answer_equals_nat_then_translation(
            tcp in any::<bool>(), udp_zero in any::<bool>(),
            server in any::<u32>(), nat in any::<u32>(), vip in any::<u32>(), pool in any::<u32>(),
            sport in any::<u16>(), dport in any::<u16>(), vip_port in any::<u16>(),
            pool_port in any::<u16>(), sub_port in any::<u16>(), sub in any::<u128>(),
            ttl in 2u8.., tos in any::<u8>(), payload in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let proto = if tcp { protocol::TCP } else { protocol::UDP };
            let (server, nat, vip, pool) = (
                Ipv4Addr::from_bits(server),
                Ipv4Addr::from_bits(nat),
                Ipv4Addr::from_bits(vip),
                Ipv4Addr::from_bits(pool),
            );
            let sub = Ipv6Addr::from_bits(sub);
            let cfg = Nat64Config::default();
            let from = cfg.synthesize(vip);
            let frame = frame4(proto, (server, sport), (nat, dport), (ttl, tos), &payload, udp_zero && !tcp);
            let mut pool_bufs = HeapPool::new(2);
            // Two passes, as before: NAT to (VIP, pool), then translated.
            let mut two = pool_bufs.alloc().unwrap();
            prop_assert!(two.fill(&frame));
            let h = header4(&frame);
            natwire::translate(
                &mut two.data_mut()[ethernet::HEADER_LEN..],
                V4_LEN,
                proto,
                (vip, vip_port),
                (pool, pool_port),
            );
            let h2 = Header4 { src: vip, dst: pool, ..h };
            let n2 = to_ipv6(&mut two, ethernet::HEADER_LEN, &h2, (from, None), (sub, sub_port)).unwrap();
            // One pass from the server's packet.
            let mut one = pool_bufs.alloc().unwrap();
            prop_assert!(one.fill(&frame));
            let n1 = to_ipv6(&mut one, ethernet::HEADER_LEN, &h, (from, Some(vip_port)), (sub, sub_port)).unwrap();
            prop_assert_eq!(n1, n2);
            prop_assert_eq!(one.data(), two.data());
            // The checksum verifies (a full recompute over the IPv6 pseudo-header).
            let p = etherparse::SlicedPacket::from_ethernet(one.data()).unwrap();
            let Some(etherparse::NetSlice::Ipv6(ip6)) = &p.net else {
                return Err(TestCaseError::fail("not IPv6"));
            };
            let (s6, d6) = (ip6.header().source(), ip6.header().destination());
            prop_assert_eq!(s6, from.octets());
            prop_assert_eq!(d6, sub.octets());
            match &p.transport {
                Some(etherparse::TransportSlice::Tcp(t)) => {
                    prop_assert_eq!((t.source_port(), t.destination_port()), (vip_port, sub_port));
                    let want = t.to_header().calc_checksum_ipv6_raw(s6, d6, t.payload()).unwrap();
                    prop_assert_eq!(t.checksum(), want);
                }
                Some(etherparse::TransportSlice::Udp(u)) => {
                    prop_assert_eq!((u.source_port(), u.destination_port()), (vip_port, sub_port));
                    let want = u.to_header().calc_checksum_ipv6_raw(s6, d6, u.payload()).unwrap();
                    prop_assert_eq!(u.checksum(), want);
                }
                _ => return Err(TestCaseError::fail("no transport")),
            }
        }
    }
}
