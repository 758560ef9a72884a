//! Stage: NAT64's ICMP errors (V6-2; RFC 7915 4.2-4.3 and 5.2-5.3, RFC 6146 3.5.4).
//! An ICMP error from the IPv4 side about a translated packet (destination unreachable,
//! fragmentation needed, time exceeded, parameter problem) goes to the binding's
//! subscriber as the matching ICMPv6 error, and an ICMPv6 error from a subscriber about
//! a packet it got through a binding goes to the IPv4 host as the matching ICMP error.
//! Either way the binding is the quoted (inner) packet's, the inner packet is translated
//! as the outer one was (addresses, the binding's ports, its checksum adjusted where the
//! quote holds it), the MTU of a Packet Too Big / fragmentation needed is adjusted for
//! the 20 bytes the headers differ by (RFC 1191 plateaus when a router sent none), a
//! parameter problem's pointer is moved to the same field, and the outer checksum is
//! computed in full (ICMPv6's with its pseudo-header).
//!
//! Not translated (`nat64_icmp_error`): source quench, redirect, the codes RFC 7915 says
//! to drop, pointers to fields the other header lacks, errors about packets no binding
//! (or another session's) sent, and errors about a VIP's flows. A quote cut short of the
//! inner ports, or an inner packet with IPv6 extension headers, IPv4 options past the
//! quote or a fragment: `nat64_unsupported`. The errors themselves are not rate limited
//! (the gateway relays them); a binding's idle timer does not restart on them.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::forward::Header as Header4;
use super::ipv6::{self, Header as Header6, next_header};
use super::nat64::{minus4, minus6, plus4, plus6};
use super::{Pipeline, Verdict, rewrite};
use crate::buf::PacketBuf;
use crate::counters::DropReason;
use crate::fib::Forwarding;
use crate::table::nat64::Key;
use crate::table::session::Dir;
use crate::time::Instant;
use crate::types::Side;
use crate::wire::checksum;
use crate::wire::ethernet::{self, ethertype};
use crate::wire::ipv4::protocol;
use crate::wire::{get_u16, put_u16};

/// ICMP types (RFC 792).
mod icmp4 {
    pub const ECHO_REPLY: u8 = 0;
    pub const DEST_UNREACHABLE: u8 = 3;
    pub const ECHO_REQUEST: u8 = 8;
    pub const TIME_EXCEEDED: u8 = 11;
    pub const PARAMETER_PROBLEM: u8 = 12;
}

/// ICMPv6 types (RFC 4443).
mod icmp6 {
    pub const DEST_UNREACHABLE: u8 = 1;
    pub const PACKET_TOO_BIG: u8 = 2;
    pub const TIME_EXCEEDED: u8 = 3;
    pub const PARAMETER_PROBLEM: u8 = 4;
    pub const ECHO_REQUEST: u8 = 128;
    pub const ECHO_REPLY: u8 = 129;
}

/// The headers an error adds before its quote: IPv6 and ICMPv6, IPv4 and ICMP.
const OUTER6: usize = ipv6::HEADER_LEN + 8;
const OUTER4: usize = 20 + 8;

/// The RFC 1191 plateau MTUs, largest first.
const PLATEAUS: [u16; 11] = [
    65535, 32000, 17914, 8166, 4352, 2002, 1492, 1006, 508, 296, 68,
];

/// The ICMPv6 error (type, code, the 32 bits after the checksum) for an ICMP error
/// (type `t`, code `c`, the 32 bits after its checksum `rest`) about a packet of
/// `quoted_total` bytes (its IPv4 total length), the core side's MTU being `mtu4`
/// (RFC 7915 4.2). None: not translated.
pub fn error_4to6(t: u8, c: u8, rest: u32, quoted_total: u16, mtu4: u16) -> Option<(u8, u8, u32)> {
    use icmp6::*;
    match t {
        icmp4::DEST_UNREACHABLE => match c {
            0 | 1 | 5..=8 | 11 | 12 => Some((DEST_UNREACHABLE, 0, 0)),
            2 => Some((PARAMETER_PROBLEM, 1, 6)),
            3 => Some((DEST_UNREACHABLE, 4, 0)),
            4 => {
                let advertised = match rest as u16 {
                    // A router before RFC 1191: the largest plateau below the packet.
                    0 => PLATEAUS
                        .iter()
                        .copied()
                        .find(|p| *p < quoted_total)
                        .unwrap_or(68),
                    m => m,
                };
                let mtu = (u32::from(advertised) + 20).min(u32::from(mtu4) + 20);
                Some((PACKET_TOO_BIG, 0, mtu))
            }
            9 | 10 | 13 | 15 => Some((DEST_UNREACHABLE, 1, 0)),
            _ => None,
        },
        icmp4::TIME_EXCEEDED => Some((TIME_EXCEEDED, c, 0)),
        icmp4::PARAMETER_PROBLEM if c == 0 || c == 2 => {
            let p = match rest >> 24 {
                p @ (0 | 1) => p,
                2 | 3 => 4,
                8 => 7,
                9 => 6,
                12..=15 => 8,
                16..=19 => 24,
                _ => return None,
            };
            Some((PARAMETER_PROBLEM, 0, p))
        }
        _ => None,
    }
}

/// The ICMP error (type, code, the 32 bits after the checksum) for an ICMPv6 error
/// (type `t`, code `c`, the 32 bits after its checksum `rest`), the core side's MTU
/// being `mtu4` (RFC 7915 5.2). None: not translated.
pub fn error_6to4(t: u8, c: u8, rest: u32, mtu4: u16) -> Option<(u8, u8, u32)> {
    use icmp4::*;
    match t {
        icmp6::DEST_UNREACHABLE => match c {
            0 | 2 | 3 => Some((DEST_UNREACHABLE, 1, 0)),
            1 => Some((DEST_UNREACHABLE, 10, 0)),
            4 => Some((DEST_UNREACHABLE, 3, 0)),
            _ => None,
        },
        icmp6::PACKET_TOO_BIG => {
            let mtu = rest.saturating_sub(20).min(u32::from(mtu4));
            Some((DEST_UNREACHABLE, 4, mtu))
        }
        icmp6::TIME_EXCEEDED => Some((TIME_EXCEEDED, c, 0)),
        icmp6::PARAMETER_PROBLEM => match c {
            0 => {
                let p = match rest {
                    p @ (0 | 1) => p,
                    4 | 5 => 2,
                    6 => 9,
                    7 => 8,
                    8..=23 => 12,
                    24..=39 => 16,
                    _ => return None,
                };
                Some((PARAMETER_PROBLEM, 0, p << 24))
            }
            1 => Some((DEST_UNREACHABLE, 2, 0)),
            _ => None,
        },
        _ => None,
    }
}

/// A checksum `old` less the words summed in `minus` (already complemented) plus those
/// summed in `plus` (RFC 1624).
#[inline]
fn adjust(old: u16, minus: u64, plus: u64) -> u16 {
    !checksum::fold_wide(u64::from(!old) + minus + plus)
}

/// The one's complement sum of a 32-bit length's two words.
fn plus_len(n: u32) -> u64 {
    u64::from(n >> 16) + u64::from(n & 0xffff)
}

fn minus_len(n: u32) -> u64 {
    plus_len(!n)
}

/// The ICMPv6 checksum of `msg` from `src` to `dst` (RFC 4443 2.3).
fn icmp6_checksum(src: Ipv6Addr, dst: Ipv6Addr, msg: &[u8]) -> u16 {
    let s = plus6(src)
        + plus6(dst)
        + plus_len(msg.len() as u32)
        + u64::from(next_header::ICMPV6)
        + u64::from(checksum::sum(msg));
    !checksum::fold_wide(s)
}

/// Writes a 20-byte IPv4 header without options into `ip` (its checksum too). DF as
/// RFC 7915 5.1 has it: set when the packet is over 1260 bytes.
pub(super) fn write_v4(
    ip: &mut [u8],
    tos: u8,
    total: usize,
    ttl: u8,
    proto: u8,
    (src, dst): (Ipv4Addr, Ipv4Addr),
) {
    ip[0] = 0x45;
    ip[1] = tos;
    put_u16(ip, 2, total as u16);
    put_u16(ip, 4, 0);
    put_u16(ip, 6, if total > 1260 { 0x4000 } else { 0 });
    ip[8] = ttl;
    ip[9] = proto;
    put_u16(ip, 10, 0);
    ip[12..16].copy_from_slice(&src.octets());
    ip[16..20].copy_from_slice(&dst.octets());
    let c = checksum::checksum(&ip[..20]);
    put_u16(ip, 10, c);
}

fn write_v6(
    ip: &mut [u8],
    tc: u8,
    payload: usize,
    nh: u8,
    hop: u8,
    (src, dst): (Ipv6Addr, Ipv6Addr),
) {
    ip[0] = 0x60 | tc >> 4;
    ip[1] = tc << 4;
    ip[2] = 0;
    ip[3] = 0;
    put_u16(ip, 4, payload as u16);
    ip[6] = nh;
    ip[7] = hop;
    ip[8..24].copy_from_slice(&src.octets());
    ip[24..40].copy_from_slice(&dst.octets());
}

fn v6_addr(b: &[u8]) -> Ipv6Addr {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[..16]);
    Ipv6Addr::from(a)
}

fn v4_addr(b: &[u8]) -> Ipv4Addr {
    Ipv4Addr::new(b[0], b[1], b[2], b[3])
}

impl Pipeline {
    /// An ICMP error (`h`, at `l3`) to pool address `addr` (its index): to the
    /// subscriber whose binding sent the packet it quotes, as ICMPv6.
    #[cold]
    #[inline(never)]
    pub(super) fn nat64_icmp_down<B: PacketBuf>(
        &mut self,
        fwd: &Forwarding,
        buf: &mut B,
        l3: usize,
        h: &Header4,
        addr: u16,
        now: Instant,
    ) -> Verdict {
        let msg = &buf.data()[l3 + h.hl..l3 + h.total];
        // The quoted packet: an IPv4 header and at least the ports (or echo header).
        let Some(inner) = msg.get(8..) else {
            return Verdict::Drop(DropReason::Nat64Unsupported);
        };
        let ihl = usize::from(inner.first().copied().unwrap_or(0) & 0x0f) * 4;
        if inner.first().is_none_or(|v| v >> 4 != 4) || ihl < 20 || inner.len() < ihl + 8 {
            return Verdict::Drop(DropReason::Nat64Unsupported);
        }
        let (pool, remote) = (v4_addr(&inner[12..]), v4_addr(&inner[16..]));
        let proto = inner[9];
        if get_u16(inner, 6) & 0x1fff != 0 || pool != h.dst {
            return Verdict::Drop(DropReason::Nat64Unsupported);
        }
        let l4 = &inner[ihl..];
        let (port, remote_port) = match proto {
            protocol::TCP | protocol::UDP => (get_u16(l4, 0), get_u16(l4, 2)),
            protocol::ICMP if l4[0] == icmp4::ECHO_REQUEST => (get_u16(l4, 4), 0),
            _ => return Verdict::Drop(DropReason::Nat64Unsupported),
        };
        let Some(i) = self
            .nat64
            .find_down(addr, proto, port, (remote, remote_port))
        else {
            return Verdict::Drop(DropReason::Nat64NoBinding);
        };
        let Some(b) = self.nat64.get(i).copied() else {
            return Verdict::Drop(DropReason::Nat64NoBinding);
        };
        if b.expires(&fwd.nat.timeouts) <= now {
            return Verdict::Drop(DropReason::Nat64NoBinding);
        }
        if fwd.services.is_vip(b.remote) {
            return Verdict::Drop(DropReason::Nat64IcmpError);
        }
        let rest = u32::from_be_bytes([msg[4], msg[5], msg[6], msg[7]]);
        let Some((t6, c6, rest6)) =
            error_4to6(msg[0], msg[1], rest, get_u16(inner, 2), fwd.nat64.mtu)
        else {
            return Verdict::Drop(DropReason::Nat64IcmpError);
        };
        let (mac, plain) = match self.sessions.get(b.session) {
            Some(s) if s.id == b.session_id => (s.mac, s.is_plain()),
            _ => return Verdict::Drop(DropReason::Ipv6NoSession),
        };
        let Some(mac) = mac else {
            return Verdict::Drop(DropReason::Ipv6NoSession);
        };
        if h.ttl <= 1 {
            return Verdict::Drop(DropReason::TtlExpired);
        }
        if let Err(r) = self.admit(fwd, Some(b.session), Dir::Down, h.total, now) {
            return Verdict::Drop(r);
        }
        // Built aside (a cold path), then put in the buffer: the IPv6 error is 40 bytes
        // longer than the IPv4 one, at most the IPv6 minimum MTU.
        let mut out = [0u8; ipv6::MIN_MTU];
        let quote = (l4.len()).min(ipv6::MIN_MTU - OUTER6 - ipv6::HEADER_LEN);
        let inner_payload = usize::from(get_u16(inner, 2)).saturating_sub(ihl);
        let from = fwd.nat64.synthesize(h.src);
        let remote6 = fwd.nat64.synthesize(b.remote);
        let total6 = OUTER6 + ipv6::HEADER_LEN + quote;
        {
            let q = &mut out[OUTER6 + ipv6::HEADER_LEN..total6];
            q.copy_from_slice(&l4[..quote]);
            match proto {
                protocol::ICMP => {
                    // Echo request to ICMPv6: its checksum gains the pseudo-header.
                    q[0] = icmp6::ECHO_REQUEST;
                    put_u16(q, 4, b.sub_port);
                    let c = adjust(
                        get_u16(q, 2),
                        u64::from(!u16::from_be_bytes([icmp4::ECHO_REQUEST, 0])) + u64::from(!port),
                        u64::from(u16::from_be_bytes([icmp6::ECHO_REQUEST, 0]))
                            + u64::from(b.sub_port)
                            + plus6(b.sub)
                            + plus6(remote6)
                            + plus_len(inner_payload as u32)
                            + u64::from(next_header::ICMPV6),
                    );
                    put_u16(q, 2, c);
                }
                p => {
                    put_u16(q, 0, b.sub_port);
                    let at = if p == protocol::TCP { 16 } else { 6 };
                    if q.len() >= at + 2 && !(p == protocol::UDP && get_u16(q, at) == 0) {
                        let c = adjust(
                            get_u16(q, at),
                            minus4(pool) + minus4(remote) + u64::from(!port),
                            plus6(b.sub) + plus6(remote6) + u64::from(b.sub_port),
                        );
                        put_u16(
                            q,
                            at,
                            if c == 0 && p == protocol::UDP {
                                0xffff
                            } else {
                                c
                            },
                        );
                    }
                }
            }
        }
        let nh = if proto == protocol::ICMP {
            next_header::ICMPV6
        } else {
            proto
        };
        write_v6(
            &mut out[OUTER6..],
            inner[1],
            inner_payload,
            nh,
            inner[8],
            (b.sub, remote6),
        );
        out[ipv6::HEADER_LEN] = t6;
        out[ipv6::HEADER_LEN + 1] = c6;
        out[ipv6::HEADER_LEN + 4..OUTER6].copy_from_slice(&rest6.to_be_bytes());
        let c = icmp6_checksum(from, b.sub, &out[ipv6::HEADER_LEN..total6]);
        put_u16(&mut out, ipv6::HEADER_LEN + 2, c);
        let tos = buf.data()[l3 + 1];
        write_v6(
            &mut out,
            tos,
            total6 - ipv6::HEADER_LEN,
            next_header::ICMPV6,
            h.ttl - 1,
            (from, b.sub),
        );
        // The Ethernet header just before the packet, any tags gone.
        let e = ethernet::HEADER_LEN;
        if l3 > e {
            buf.data_mut().copy_within(0..12, l3 - e);
            if !buf.strip(l3 - e) {
                return Verdict::Drop(DropReason::EthTooShort);
            }
        }
        if !buf.set_len(e + total6) {
            return Verdict::Drop(DropReason::Nat64Unsupported);
        }
        let frame = buf.data_mut();
        frame[e..e + total6].copy_from_slice(&out[..total6]);
        put_u16(frame, 12, ethertype::IPV6);
        if !plain {
            if let Err(r) = self.encapsulate_down(buf, b.session, e, total6) {
                return Verdict::Drop(r);
            }
            let at = buf.len() - total6 - 2;
            put_u16(buf.data_mut(), at, ethertype::IPV6);
        }
        if let Some(s) = self.sessions.get_mut(b.session) {
            s.count(Dir::Down, h.total as u64, now, h.src);
        }
        self.counters.nat64_down += 1;
        self.counters.nat64_icmp_errors += 1;
        rewrite::l2(buf.data_mut(), mac, fwd.side(Side::Access).mac);
        Verdict::Forward(Side::Access)
    }

    /// An ICMPv6 error (`h`, at `l3`) from the session in `slot` to `dst` (embedded in
    /// the NAT64 prefix): to the IPv4 host the binding of the quoted packet talks to,
    /// as ICMP, routed like the binding's packets.
    #[cold]
    #[inline(never)]
    #[allow(clippy::too_many_arguments)]
    pub(super) fn nat64_icmp_up<B: PacketBuf>(
        &mut self,
        fwd: &Forwarding,
        buf: &mut B,
        l3: usize,
        h: &Header6,
        slot: u32,
        dst: Ipv4Addr,
        route: (Side, Ipv4Addr),
        now: Instant,
    ) -> Verdict {
        let Some(session_id) = self.sessions.get(slot).map(|s| s.id) else {
            return Verdict::Drop(DropReason::Ipv6NoSession);
        };
        let msg = &buf.data()[l3 + h.l4..l3 + h.total];
        if msg.len() < 8 + ipv6::HEADER_LEN + 8 {
            return Verdict::Drop(DropReason::Nat64Unsupported);
        }
        let inner = &msg[8..];
        if inner[0] >> 4 != 6 {
            return Verdict::Drop(DropReason::Nat64Unsupported);
        }
        let (isrc, idst) = (v6_addr(&inner[8..]), v6_addr(&inner[24..]));
        let l4 = &inner[ipv6::HEADER_LEN..];
        let (proto, remote_port, sub_port) = match inner[6] {
            protocol::TCP => (protocol::TCP, get_u16(l4, 0), get_u16(l4, 2)),
            next_header::UDP => (protocol::UDP, get_u16(l4, 0), get_u16(l4, 2)),
            next_header::ICMPV6 if l4[0] == icmp6::ECHO_REPLY => {
                (protocol::ICMP, 0, get_u16(l4, 4))
            }
            _ => return Verdict::Drop(DropReason::Nat64Unsupported),
        };
        let Some(remote) = fwd.nat64.embedded(isrc) else {
            return Verdict::Drop(DropReason::Nat64NoBinding);
        };
        let key = Key {
            sub: idst,
            sub_port,
            remote,
            remote_port,
            proto,
        };
        let Some(b) = self
            .nat64
            .find_up(&key)
            .and_then(|i| self.nat64.get(i))
            .copied()
        else {
            return Verdict::Drop(DropReason::Nat64NoBinding);
        };
        if b.session_id != session_id || b.expires(&fwd.nat.timeouts) <= now {
            return Verdict::Drop(DropReason::Nat64NoBinding);
        }
        if fwd.services.is_vip(b.remote) {
            return Verdict::Drop(DropReason::Nat64IcmpError);
        }
        let rest = u32::from_be_bytes([msg[4], msg[5], msg[6], msg[7]]);
        let Some((t4, c4, rest4)) = error_6to4(msg[0], msg[1], rest, fwd.nat64.mtu) else {
            return Verdict::Drop(DropReason::Nat64IcmpError);
        };
        let Some(pool) = fwd.nat64.pool.get(b.addr as usize).copied() else {
            return Verdict::Drop(DropReason::Nat64NoBinding);
        };
        let mut out = [0u8; ipv6::MIN_MTU];
        let quote = l4.len().min(ipv6::MIN_MTU - OUTER4 - 20);
        let inner_payload = usize::from(get_u16(inner, 4));
        let total4 = OUTER4 + 20 + quote;
        {
            let q = &mut out[OUTER4 + 20..total4];
            q.copy_from_slice(&l4[..quote]);
            match proto {
                protocol::ICMP => {
                    // ICMPv6 echo reply to ICMP: its checksum loses the pseudo-header.
                    q[0] = icmp4::ECHO_REPLY;
                    put_u16(q, 4, b.port);
                    let c = adjust(
                        get_u16(q, 2),
                        u64::from(!u16::from_be_bytes([icmp6::ECHO_REPLY, 0]))
                            + u64::from(!sub_port)
                            + minus6(isrc)
                            + minus6(idst)
                            + minus_len(inner_payload as u32)
                            + u64::from(!u16::from(next_header::ICMPV6)),
                        u64::from(u16::from_be_bytes([icmp4::ECHO_REPLY, 0])) + u64::from(b.port),
                    );
                    put_u16(q, 2, c);
                }
                p => {
                    put_u16(q, 2, b.port);
                    let at = if p == protocol::TCP { 16 } else { 6 };
                    if q.len() >= at + 2 {
                        let c = adjust(
                            get_u16(q, at),
                            minus6(isrc) + minus6(idst) + u64::from(!sub_port),
                            plus4(b.remote) + plus4(pool) + u64::from(b.port),
                        );
                        put_u16(
                            q,
                            at,
                            if c == 0 && p == protocol::UDP {
                                0xffff
                            } else {
                                c
                            },
                        );
                    }
                }
            }
        }
        let tc = (inner[0] << 4) | (inner[1] >> 4);
        write_v4(
            &mut out[OUTER4..],
            tc,
            20 + inner_payload,
            inner[7],
            proto,
            (b.remote, pool),
        );
        out[20] = t4;
        out[21] = c4;
        out[24..OUTER4].copy_from_slice(&rest4.to_be_bytes());
        let c = checksum::checksum(&out[20..total4]);
        put_u16(&mut out, 22, c);
        let tos = (buf.data()[l3] << 4) | (buf.data()[l3 + 1] >> 4);
        write_v4(
            &mut out,
            tos,
            total4,
            h.hop_limit,
            protocol::ICMP,
            (pool, dst),
        );
        let e = ethernet::HEADER_LEN;
        if l3 > e {
            buf.data_mut().copy_within(0..12, l3 - e);
            if !buf.strip(l3 - e) {
                return Verdict::Drop(DropReason::EthTooShort);
            }
        }
        if !buf.set_len(e + total4) {
            return Verdict::Drop(DropReason::Nat64Unsupported);
        }
        let frame = buf.data_mut();
        frame[e..e + total4].copy_from_slice(&out[..total4]);
        put_u16(frame, 12, ethertype::IPV4);
        let h4 = Header4 {
            src: pool,
            dst,
            proto: protocol::ICMP,
            hl: 20,
            total: total4,
            ttl: h.hop_limit,
            fragment: false,
        };
        if let Err(r) = self.admit(fwd, Some(slot), Dir::Up, total4, now) {
            return Verdict::Drop(r);
        }
        let v = self.finish(fwd, buf, e, &h4, route, Dir::Up, Some(slot), None, dst, now);
        if !matches!(v, Verdict::Drop(_)) {
            self.counters.nat64_up += 1;
            self.counters.nat64_icmp_errors += 1;
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_7915_maps_types_codes_mtus_and_pointers() {
        // Fragmentation needed: the MTU grows by 20, capped by the core's own + 20; a
        // router that sent none gets the plateau below the packet.
        assert_eq!(error_4to6(3, 4, 1400, 1500, 1500), Some((2, 0, 1420)));
        assert_eq!(error_4to6(3, 4, 1400, 1500, 1300), Some((2, 0, 1320)));
        assert_eq!(error_4to6(3, 4, 0, 1500, 1500), Some((2, 0, 1512)));
        assert_eq!(error_4to6(3, 3, 0, 100, 1500), Some((1, 4, 0)));
        assert_eq!(error_4to6(3, 2, 0, 100, 1500), Some((4, 1, 6)));
        assert_eq!(error_4to6(3, 13, 0, 100, 1500), Some((1, 1, 0)));
        assert_eq!(error_4to6(3, 14, 0, 100, 1500), None);
        assert_eq!(error_4to6(11, 1, 0, 100, 1500), Some((3, 1, 0)));
        assert_eq!(error_4to6(12, 0, 9 << 24, 100, 1500), Some((4, 0, 6)));
        assert_eq!(error_4to6(12, 0, 16 << 24, 100, 1500), Some((4, 0, 24)));
        assert_eq!(error_4to6(12, 0, 10 << 24, 100, 1500), None);
        assert_eq!(error_4to6(4, 0, 0, 100, 1500), None);
        assert_eq!(error_4to6(5, 0, 0, 100, 1500), None);
        assert_eq!(error_6to4(2, 0, 1400, 1500), Some((3, 4, 1380)));
        assert_eq!(error_6to4(2, 0, 9000, 1500), Some((3, 4, 1500)));
        assert_eq!(error_6to4(1, 4, 0, 1500), Some((3, 3, 0)));
        assert_eq!(error_6to4(1, 1, 0, 1500), Some((3, 10, 0)));
        assert_eq!(error_6to4(3, 0, 0, 1500), Some((11, 0, 0)));
        assert_eq!(error_6to4(4, 0, 7, 1500), Some((12, 0, 8 << 24)));
        assert_eq!(error_6to4(4, 0, 30, 1500), Some((12, 0, 16 << 24)));
        assert_eq!(error_6to4(4, 0, 2, 1500), None);
        assert_eq!(error_6to4(4, 1, 0, 1500), Some((3, 2, 0)));
        assert_eq!(error_6to4(4, 2, 0, 1500), None);
    }
}
