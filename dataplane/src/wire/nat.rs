//! Address and port rewriting for NAT, with incremental checksum updates (RFC 1624): the
//! IPv4 header checksum for the address, and the TCP/UDP checksum for the address (it is
//! in the pseudo-header) and the port. For ICMP echo the identifier plays the port and
//! the ICMP checksum covers no pseudo-header.

use std::net::Ipv4Addr;

use super::checksum::{fold_wide, update16, update32};
use super::icmpv4::{self, kind};
use super::ipv4::{self, protocol};
use super::{get_u16, put_u16, tcp, udp};

/// Which end of a packet to rewrite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// Source address and port.
    Src,
    /// Destination address and port.
    Dst,
}

// TCP and UDP keep their ports in the same place, so that one read and one rewrite of
// the port pair serve both.
const _: () = assert!(
    tcp::field::SRC_PORT.start == udp::field::SRC_PORT.start
        && tcp::field::DST_PORT.start == udp::field::DST_PORT.start
        && tcp::field::DST_PORT.start == tcp::field::SRC_PORT.end
);
/// The source and destination ports of a TCP or UDP header, together.
const PORTS: std::ops::Range<usize> = tcp::field::SRC_PORT.start..tcp::field::DST_PORT.end;
/// Where ICMP echo keeps its checksum and its identifier (RFC 792).
const ICMP_CHECKSUM: usize = 2;
const ICMP_ECHO_ID: usize = 4;

/// The (source, destination) ports of a packet whose transport header is `l4`, for
/// TCP, UDP and ICMP echo (identifier as both); `None` when too short or another ICMP
/// type. Only the ports need to be there (the stages check the rest of the header).
#[inline]
pub fn ports(proto: u8, l4: &[u8]) -> Option<(u16, u16)> {
    match proto {
        // The ports are the first field of both views.
        // Both keep their ports in the same place (asserted above): one read serves both,
        // over the four bytes of the ports, with no bounds checks.
        protocol::TCP | protocol::UDP => {
            let t = tcp::Packet::new_unchecked(l4.first_chunk::<{ PORTS.end }>()?);
            Some((t.src_port(), t.dst_port()))
        }
        protocol::ICMP
            if l4.len() >= icmpv4::HEADER_LEN
                && matches!(l4[0], kind::ECHO_REQUEST | kind::ECHO_REPLY) =>
        {
            let id = get_u16(l4, ICMP_ECHO_ID);
            Some((id, id))
        }
        _ => None,
    }
}

/// Rewrites one end of the IPv4 packet `ip` (header at 0, header length `hl`, protocol
/// `proto`) to `addr` and `port`. A transport header too short for its checksum field
/// keeps its port (only the address changes).
#[inline]
pub fn rewrite(ip: &mut [u8], hl: usize, proto: u8, end: End, addr: Ipv4Addr, port: u16) {
    let (old_addr, new_addr) = {
        let mut p = ipv4::Packet::new_unchecked(&mut *ip);
        let old = match end {
            End::Src => p.src(),
            End::Dst => p.dst(),
        };
        match end {
            End::Src => p.set_src(addr),
            End::Dst => p.set_dst(addr),
        }
        let c = update32(p.checksum(), u32::from(old), u32::from(addr));
        p.set_checksum(c);
        (u32::from(old), u32::from(addr))
    };
    let Some(l4) = ip.get_mut(hl..) else {
        return;
    };
    match proto {
        protocol::TCP if l4.len() >= tcp::field::CHECKSUM.end => {
            let mut t = tcp::Packet::new_unchecked(l4);
            let old_port = match end {
                End::Src => t.src_port(),
                End::Dst => t.dst_port(),
            };
            match end {
                End::Src => t.set_src_port(port),
                End::Dst => t.set_dst_port(port),
            }
            let c = update16(update32(t.checksum(), old_addr, new_addr), old_port, port);
            t.set_checksum(c);
        }
        protocol::UDP if l4.len() >= udp::HEADER_LEN => {
            let mut u = udp::Packet::new_unchecked(l4);
            let old_port = match end {
                End::Src => u.src_port(),
                End::Dst => u.dst_port(),
            };
            match end {
                End::Src => u.set_src_port(port),
                End::Dst => u.set_dst_port(port),
            }
            let c = u.checksum();
            if c != 0 {
                let c = update16(update32(c, old_addr, new_addr), old_port, port);
                u.set_checksum(if c == 0 { 0xffff } else { c });
            }
        }
        // Echo request and reply: the identifier, for both ends.
        protocol::ICMP if l4.len() >= icmpv4::HEADER_LEN => {
            let old_port = get_u16(l4, ICMP_ECHO_ID);
            put_u16(l4, ICMP_ECHO_ID, port);
            let c = update16(get_u16(l4, ICMP_CHECKSUM), old_port, port);
            put_u16(l4, ICMP_CHECKSUM, c);
        }
        _ => {}
    }
}

/// Rewrites both ends of the IPv4 packet `ip` at once (the translation of one packet):
/// source to `src`, destination to `dst`, each an address and a port (for ICMP echo the
/// identifier takes the source's port). One checksum delta is summed for all the words
/// that change and applied once to each checksum (RFC 1624 eqn. 3).
///
/// The sums are taken over the words as they lie in memory, not converted to host
/// order: a one's complement sum of byte-swapped words is the byte-swapped sum (RFC
/// 1071 §2 B), so the checksum comes out in network order with no swap at all. The
/// addresses and the port pair are summed as 32-bit words, which fold to the sum of
/// their 16-bit halves. That is why this function reads the fields through the views'
/// `field` ranges instead of their getters, which convert to host order.
#[inline(always)]
pub fn translate(ip: &mut [u8], hl: usize, proto: u8, src: (Ipv4Addr, u16), dst: (Ipv4Addr, u16)) {
    let Some(h) = ip.first_chunk_mut::<{ ipv4::MIN_HEADER_LEN }>() else {
        return;
    };
    // A 16-bit word as it lies in memory, and its one's complement.
    let w = |b: &[u8], i: usize| u16::from_ne_bytes([b[i], b[i + 1]]) as u64;
    let nw = |b: &[u8], i: usize| !w(b, i) & 0xffff;
    // A 32-bit word as it lies in memory and its one's complement, widened for sums.
    let w32 = |b: [u8; 4]| u32::from_ne_bytes(b) as u64;
    let nw32 = |b: [u8; 4]| !u32::from_ne_bytes(b) as u64;
    let (s, d) = (src.0.octets(), dst.0.octets());
    let old =
        |r: std::ops::Range<usize>| [h[r.start], h[r.start + 1], h[r.start + 2], h[r.start + 3]];
    let addr_delta = nw32(old(ipv4::field::SRC)) + nw32(old(ipv4::field::DST)) + w32(s) + w32(d);
    h[ipv4::field::SRC].copy_from_slice(&s);
    h[ipv4::field::DST].copy_from_slice(&d);
    let ip_csum = !fold_wide(nw(h, ipv4::field::CHECKSUM) + addr_delta);
    h[ipv4::field::CHECKSUM..ipv4::field::CHECKSUM + 2].copy_from_slice(&ip_csum.to_ne_bytes());

    let Some(l4) = ip.get_mut(hl..) else { return };
    // A port as the word that lies in memory.
    let port = |p: u16| p.to_be() as u64;
    match proto {
        protocol::TCP | protocol::UDP => {
            let csum = if proto == protocol::TCP {
                tcp::field::CHECKSUM
            } else {
                udp::field::CHECKSUM
            };
            let Some(t) = l4.get_mut(..csum.end) else {
                return;
            };
            let Some(old_ports) = t.first_chunk::<{ PORTS.end }>().copied() else {
                return;
            };
            let new_ports = concat_ports(src.1, dst.1);
            t[PORTS].copy_from_slice(&new_ports);
            let c = w(t, csum.start);
            if proto == protocol::UDP && c == 0 {
                return;
            }
            let delta = addr_delta + nw32(old_ports) + w32(new_ports);
            let mut c = !fold_wide((!c & 0xffff) + delta);
            if proto == protocol::UDP && c == 0 {
                c = 0xffff;
            }
            t[csum].copy_from_slice(&c.to_ne_bytes());
        }
        protocol::ICMP => {
            let Some(t) = l4.get_mut(..icmpv4::HEADER_LEN) else {
                return;
            };
            let old = nw(t, ICMP_ECHO_ID);
            t[ICMP_ECHO_ID..ICMP_ECHO_ID + 2].copy_from_slice(&src.1.to_be_bytes());
            let c = !fold_wide(nw(t, ICMP_CHECKSUM) + old + port(src.1));
            t[ICMP_CHECKSUM..ICMP_CHECKSUM + 2].copy_from_slice(&c.to_ne_bytes());
        }
        _ => {}
    }
}

/// Two ports as the four bytes that lie in a TCP or UDP header.
#[inline(always)]
fn concat_ports(src: u16, dst: u16) -> [u8; 4] {
    let (s, d) = (src.to_be_bytes(), dst.to_be_bytes());
    [s[0], s[1], d[0], d[1]]
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{PacketBuilder, SlicedPacket, TransportSlice};

    fn build(proto: u8) -> Vec<u8> {
        let b = PacketBuilder::ipv4([10, 10, 0, 11], [203, 0, 113, 10], 64);
        let mut v = Vec::new();
        match proto {
            protocol::TCP => b
                .tcp(40001, 80, 7, 1000)
                .syn()
                .write(&mut v, b"GET / HTTP/1.1\r\n")
                .unwrap(),
            protocol::UDP => b.udp(40000, 53).write(&mut v, b"query").unwrap(),
            _ => b
                .icmpv4_echo_request(777, 1)
                .write(&mut v, b"ping")
                .unwrap(),
        }
        v
    }

    fn verify(v: &[u8]) {
        let p = SlicedPacket::from_ip(v).unwrap();
        let ip = match p.net.unwrap() {
            etherparse::InternetSlice::Ipv4(h) => h,
            _ => unreachable!(),
        };
        let h = ip.header().to_header();
        assert_eq!(h.header_checksum, h.calc_header_checksum(), "ip checksum");
        let payload = ip.payload().payload;
        match p.transport.unwrap() {
            TransportSlice::Tcp(t) => {
                let c = t.to_header().calc_checksum_ipv4(&h, t.payload()).unwrap();
                assert_eq!(t.checksum(), c, "tcp checksum");
            }
            TransportSlice::Udp(u) => {
                let c = u.to_header().calc_checksum_ipv4(&h, u.payload()).unwrap();
                assert_eq!(u.checksum(), c, "udp checksum");
            }
            TransportSlice::Icmpv4(i) => {
                assert_eq!(
                    i.checksum(),
                    i.header().icmp_type.calc_checksum(i.payload()),
                    "icmp checksum"
                );
                let _ = payload;
            }
            _ => unreachable!(),
        }
    }

    #[test]
    fn rewrites_keep_every_checksum_valid() {
        for proto in [protocol::TCP, protocol::UDP, protocol::ICMP] {
            let mut v = build(proto);
            verify(&v);
            let (sp, dp) = ports(proto, &v[20..]).unwrap();
            rewrite(
                &mut v,
                20,
                proto,
                End::Dst,
                Ipv4Addr::new(192, 0, 2, 10),
                if proto == protocol::ICMP { dp } else { 8080 },
            );
            verify(&v);
            rewrite(
                &mut v,
                20,
                proto,
                End::Src,
                Ipv4Addr::new(192, 0, 2, 1),
                61000 + sp % 7,
            );
            verify(&v);
            assert_eq!(&v[12..20], &[192, 0, 2, 1, 192, 0, 2, 10]);
            let (sp2, dp2) = ports(proto, &v[20..]).unwrap();
            if proto == protocol::ICMP {
                assert_eq!((sp2, dp2), (61000 + sp % 7, 61000 + sp % 7));
            } else {
                assert_eq!((sp2, dp2), (61000 + sp % 7, 8080));
            }
        }
    }

    #[test]
    fn translate_equals_two_rewrites() {
        for proto in [protocol::TCP, protocol::UDP, protocol::ICMP] {
            let mut a = build(proto);
            let mut b = a.clone();
            let (sp, _) = ports(proto, &a[20..]).unwrap();
            let dport = if proto == protocol::ICMP { 61003 } else { 8080 };
            rewrite(
                &mut a,
                20,
                proto,
                End::Dst,
                Ipv4Addr::new(192, 0, 2, 10),
                if proto == protocol::ICMP { sp } else { dport },
            );
            rewrite(
                &mut a,
                20,
                proto,
                End::Src,
                Ipv4Addr::new(192, 0, 2, 1),
                61003,
            );
            translate(
                &mut b,
                20,
                proto,
                (Ipv4Addr::new(192, 0, 2, 1), 61003),
                (Ipv4Addr::new(192, 0, 2, 10), dport),
            );
            assert_eq!(a, b, "proto {proto}");
            verify(&b);
        }
    }

    #[test]
    fn udp_without_checksum_stays_without() {
        let mut v = build(protocol::UDP);
        v[26] = 0;
        v[27] = 0;
        rewrite(
            &mut v,
            20,
            protocol::UDP,
            End::Src,
            Ipv4Addr::new(192, 0, 2, 1),
            1234,
        );
        assert_eq!(&v[26..28], &[0, 0]);
    }

    proptest::proptest! {
        #[test]
        fn any_rewrite_keeps_tcp_and_udp_checksums(
            tcp_not_udp in proptest::bool::ANY,
            a in proptest::num::u32::ANY, p in proptest::num::u16::ANY,
            dst in proptest::bool::ANY,
            payload in proptest::collection::vec(proptest::num::u8::ANY, 0..64),
        ) {
            let b = PacketBuilder::ipv4([10, 10, 0, 11], [203, 0, 113, 10], 64);
            let mut v = Vec::new();
            let proto = if tcp_not_udp {
                b.tcp(40001, 80, 7, 1000).ack(9).write(&mut v, &payload).unwrap();
                protocol::TCP
            } else {
                b.udp(40000, 53).write(&mut v, &payload).unwrap();
                protocol::UDP
            };
            rewrite(&mut v, 20, proto, if dst { End::Dst } else { End::Src }, Ipv4Addr::from(a), p);
            verify(&v);
        }

        #[test]
        fn any_translation_keeps_every_checksum_and_writes_both_ends(
            proto in proptest::sample::select(vec![protocol::TCP, protocol::UDP, protocol::ICMP]),
            src in proptest::num::u32::ANY, sport in proptest::num::u16::ANY,
            dst in proptest::num::u32::ANY, dport in proptest::num::u16::ANY,
            payload in proptest::collection::vec(proptest::num::u8::ANY, 0..64),
        ) {
            let b = PacketBuilder::ipv4([10, 10, 0, 11], [203, 0, 113, 10], 64);
            let mut v = Vec::new();
            match proto {
                protocol::TCP => b.tcp(40001, 80, 7, 1000).ack(9).write(&mut v, &payload).unwrap(),
                protocol::UDP => b.udp(40000, 53).write(&mut v, &payload).unwrap(),
                _ => b.icmpv4_echo_request(777, 1).write(&mut v, &payload).unwrap(),
            }
            let (src, dst) = (Ipv4Addr::from(src), Ipv4Addr::from(dst));
            translate(&mut v, 20, proto, (src, sport), (dst, dport));
            verify(&v);
            proptest::prop_assert_eq!(&v[12..16], &src.octets());
            proptest::prop_assert_eq!(&v[16..20], &dst.octets());
            let want = if proto == protocol::ICMP { (sport, sport) } else { (sport, dport) };
            proptest::prop_assert_eq!(ports(proto, &v[20..]), Some(want));
        }
    }
}
