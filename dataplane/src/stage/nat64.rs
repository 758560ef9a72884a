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
use super::{Pipeline, Verdict, rewrite};
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
/// checksum).
#[inline(always)]
pub(super) fn minus6(a: Ipv6Addr) -> u64 {
    a.segments().iter().map(|w| u64::from(!*w)).sum()
}

#[inline(always)]
pub(super) fn plus6(a: Ipv6Addr) -> u64 {
    a.segments().iter().map(|w| u64::from(*w)).sum()
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
    let ip = &mut frame[at..l4];
    ip[0] = 0x45;
    ip[1] = tos;
    put_u16(ip, 2, (V4_LEN + len) as u16);
    put_u16(ip, 4, 0);
    // RFC 7915 5.1: DF only over 1260 bytes (a smaller packet may meet an IPv4 link
    // under 1280 and be fragmented there).
    put_u16(ip, 6, if V4_LEN + len > 1260 { 0x4000 } else { 0 });
    ip[8] = h.hop_limit;
    ip[9] = proto4;
    put_u16(ip, 10, 0);
    ip[12..16].copy_from_slice(&src.octets());
    ip[16..20].copy_from_slice(&dst.octets());
    let c = checksum::checksum(ip);
    put_u16(ip, 10, c);
    at
}

/// Rewrites the IPv4 packet at `l3` (header `h`) in `buf` into an IPv6 packet from `src`
/// to `(dst, port)`, the IPv6 header put where the IPv4 header ended less 40 bytes, the
/// Ethernet header just before it (its MACs kept, for the caller to rewrite). The frame
/// ends with the packet. Returns the IPv6 packet's length; an error when the buffer
/// has no room or the upper layer is not one translated.
pub fn to_ipv6<B: PacketBuf>(
    buf: &mut B,
    l3: usize,
    h: &Header4,
    src: Ipv6Addr,
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
                if old != 0 || p == protocol::TCP {
                    let old_port = get_u16(seg, 2);
                    put_u16(seg, 2, port);
                    let s = u64::from(!old)
                        + minus4(h.src)
                        + minus4(h.dst)
                        + plus6(src)
                        + plus6(dst)
                        + u64::from(!old_port)
                        + u64::from(port);
                    let mut c = !checksum::fold_wide(s);
                    if c == 0 && p == protocol::UDP {
                        c = 0xffff;
                    }
                    put_u16(seg, at, c);
                } else {
                    put_u16(seg, 2, port);
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
        buf.data_mut().copy_within(0..12, cut);
        if !buf.strip(cut) {
            return Err(DropReason::Nat64Unsupported);
        }
        0
    };
    let frame = buf.data_mut();
    frame.copy_within(macs..macs + 12, 0);
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
                return match self.nat64_route(fwd, dst) {
                    Ok(route) => self.nat64_icmp_up(fwd, buf, l3, h, slot, dst, route, now),
                    Err(r) => Verdict::Drop(r),
                };
            }
            Err(r) => return Verdict::Drop(r),
        };
        let Some(session_id) = self.sessions.get(slot).map(|s| s.id) else {
            return Verdict::Drop(DropReason::Ipv6NoSession);
        };
        let vip = fwd.services.is_vip(dst);
        // Routed before a binding opens; a VIP's server is routed by the service stage.
        let route = match self.nat64_route(fwd, dst) {
            Ok(r) => r,
            Err(r) => return Verdict::Drop(r),
        };
        // Too big for the core side once translated: Packet Too Big, the MTU the IPv6
        // header's 20 more bytes (RFC 7915 5.1; never under the IPv6 minimum).
        if V4_LEN + h.total - h.l4 > usize::from(fwd.nat64.mtu) {
            return self.nat64_too_big(fwd, buf, l3, h, now);
        }
        if vip {
            // The service stage would answer a refusal with IPv4: refuse here instead.
            match fwd.services.find(dst, proto, dport) {
                None => return Verdict::Drop(DropReason::NoService),
                Some(i) if !self.sessions.get(slot).is_some_and(|s| s.allows(i)) => {
                    return Verdict::Drop(DropReason::ServiceRefused);
                }
                Some(_) => {}
            }
        }
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
            let Some(b) = self.nat64.get(i).copied() else {
                return Verdict::Drop(DropReason::Nat64NoBinding);
            };
            if b.expires(&fwd.nat.timeouts) <= now
                || b.session_id != session_id
                || (proto == protocol::TCP && syn_only && b.state.is_finished())
            {
                self.close_binding(fwd, i, expiry_close(b.state));
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
        let Some(b) = self.nat64.get(i).copied() else {
            return Verdict::Drop(DropReason::Nat64NoBinding);
        };
        let Some(pool) = fwd.nat64.pool.get(b.addr as usize).copied() else {
            return Verdict::Drop(DropReason::Nat64NoBinding);
        };
        let at = to_ipv4(buf.data_mut(), l3, h, proto, (pool, b.port), dst);
        // The MACs move up to just before the IPv4 header, over the IPv6 header and any
        // VLAN tags.
        let cut = at - ethernet::HEADER_LEN;
        buf.data_mut().copy_within(0..12, cut);
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
        let v = if vip {
            self.service_up(fwd, buf, l3, &h4, Some(slot), NIL, now)
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
            if let Some(b) = self.nat64.get_mut(i) {
                b.last_seen = now;
                b.up.0 += 1;
                b.up.1 += h4.total as u64;
                if proto == protocol::TCP {
                    b.state = b.state.on_tcp(true, tcp_flags);
                }
            }
            if self
                .nat64
                .get(i)
                .is_some_and(|b| b.state == FlowState::TcpReset)
            {
                self.close_binding(fwd, i, FlowClose::Rst);
            }
        }
        v
    }

    /// Downlink IPv4 to pool address `addr` (its index) at `l3` (header `h`): back to
    /// its binding's subscriber as IPv6. `admitted`: the service stage already policed
    /// it (a VIP's answer it translated back to the pool address).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn nat64_down<B: PacketBuf>(
        &mut self,
        fwd: &Forwarding,
        buf: &mut B,
        l3: usize,
        h: &Header4,
        addr: u16,
        admitted: bool,
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
        let i = match self.nat64.find_down(addr, h.proto, dport, (h.src, sport)) {
            Some(i) => i,
            None => match self.nat64_inbound(fwd, addr, h, (sport, dport), now) {
                Some(i) => i,
                None => return Verdict::Drop(DropReason::Nat64NoBinding),
            },
        };
        let Some(b) = self.nat64.get(i).copied() else {
            return Verdict::Drop(DropReason::Nat64NoBinding);
        };
        if b.expires(&fwd.nat.timeouts) <= now {
            self.close_binding(fwd, i, expiry_close(b.state));
            return Verdict::Drop(DropReason::Nat64NoBinding);
        }
        let slot = b.session;
        let (mac, plain, l2tp) = match self.sessions.get(slot) {
            Some(s) if s.id == b.session_id => match s.due(now) {
                Some((t, cause)) => {
                    self.close_session(fwd, slot, t, cause);
                    self.close_binding(fwd, i, FlowClose::SessionEnded);
                    return Verdict::Drop(DropReason::Ipv6NoSession);
                }
                None => (s.mac, s.is_plain(), s.l2tp_session()),
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
        if !admitted && let Err(r) = self.admit(fwd, Some(slot), Dir::Down, h.total, now) {
            return Verdict::Drop(r);
        }
        let from = fwd.nat64.synthesize(h.src);
        let total6 = match to_ipv6(buf, l3, h, from, (b.sub, b.sub_port)) {
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
            s.count(Dir::Down, h.total as u64, now, h.src);
        }
        self.counters.nat64_down += 1;
        let mut reset = false;
        if let Some(b) = self.nat64.get_mut(i) {
            b.last_seen = now;
            b.down.0 += 1;
            b.down.1 += h.total as u64;
            if h.proto == protocol::TCP {
                b.state = b.state.on_tcp(false, tcp_flags);
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

    /// UDP from (`h.src`, `sport`) to pool port `dport` of pool address `addr` that no
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
        h: &Header4,
        (sport, dport): (u16, u16),
        now: Instant,
    ) -> Option<u32> {
        if h.proto != protocol::UDP {
            return None;
        }
        let head = self.nat64.mapping_down(addr, h.proto, dport)?;
        let hb = self.nat64.get(head).copied()?;
        if hb.expires(&fwd.nat.timeouts) <= now || fwd.services.is_vip(hb.remote) {
            return None;
        }
        if !fwd.nat64.endpoint_independent_filtering && !self.nat64.mapping_has_remote(head, h.src)
        {
            return None;
        }
        let key = Key {
            sub: hb.sub,
            sub_port: hb.sub_port,
            remote: h.src,
            remote_port: sport,
            proto: h.proto,
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
    fn nat64_route(&self, fwd: &Forwarding, dst: Ipv4Addr) -> Result<(Side, Ipv4Addr), DropReason> {
        if dst.is_unspecified()
            || dst.is_loopback()
            || dst.is_multicast()
            || dst.is_broadcast()
            || fwd.is_ours(dst)
            || fwd.nat64.pool_index(dst).is_some()
        {
            return Err(DropReason::Nat64BadDestination);
        }
        if fwd.services.is_vip(dst) {
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
        self.nat64.sweep_batch(n, &mut |i| batch.push(i));
        for i in batch {
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
