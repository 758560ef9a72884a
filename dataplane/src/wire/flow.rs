//! The flow key of a frame: the one parser that both the look-ahead
//! ([`crate::stage::lookahead`]) and the steering code ([`crate::steer::frame_owner`]) read
//! frames with, so that the worker a frame is steered to and the table entries prefetched
//! for it come from the same reading of its headers.
//!
//! It looks through up to two VLAN tags (802.1Q `0x8100`, 802.1ad `0x88a8`, and the
//! pre-standard `0x9100` for an outer tag), a PPPoE session header (`0x8864`, RFC 2516)
//! carrying IPv4 (PPP protocol `0x0021`) or IPv6 (`0x0057`), then IPv4 (with options) or
//! IPv6 (through up to [`IPV6_MAX_EXTENSIONS`] extension headers), and reads the
//! transport ports of TCP and UDP, or the identifier of an ICMP or ICMPv6 echo.
//!
//! It validates only what it needs to read safely; it decides nothing: the stages check
//! every header again before they act. It never panics, whatever the bytes (a property
//! test feeds it arbitrary ones), and allocates nothing.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::ethernet::{self, ethertype};
use super::icmpv4;
use super::ipv4::{self, protocol};
use super::l2tp::ppp;
use super::{get_u16, tcp};

/// VLAN tags looked through at most (a third tag makes the frame unreadable).
pub const MAX_VLAN_TAGS: usize = 2;
/// The pre-standard EtherType of an outer (service) tag, still sent by some switches.
pub const QINQ_LEGACY: u16 = 0x9100;
/// Length of a PPPoE session header and the PPP protocol field after it.
pub const PPPOE_LEN: usize = 8;
/// Length of the fixed IPv6 header.
pub const IPV6_HEADER_LEN: usize = 40;
/// IPv6 extension headers skipped at most before the transport header.
pub const IPV6_MAX_EXTENSIONS: usize = 4;

/// IPv6 next-header values the parser knows (RFC 8200, RFC 4443).
pub mod next_header {
    /// Hop-by-hop options.
    pub const HOP_BY_HOP: u8 = 0;
    /// Routing header.
    pub const ROUTING: u8 = 43;
    /// Fragment header.
    pub const FRAGMENT: u8 = 44;
    /// ICMPv6.
    pub const ICMPV6: u8 = 58;
    /// Destination options.
    pub const DEST_OPTS: u8 = 60;
}

/// ICMPv6 echo types (RFC 4443).
const ICMPV6_ECHO_REQUEST: u8 = 128;
const ICMPV6_ECHO_REPLY: u8 = 129;
/// Where an echo message keeps its identifier (ICMP and ICMPv6 alike).
const ECHO_ID_AT: usize = 4;

/// The addresses of a flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Addrs {
    /// IPv4 source and destination.
    V4 {
        /// Source.
        src: Ipv4Addr,
        /// Destination.
        dst: Ipv4Addr,
    },
    /// IPv6 source and destination.
    V6 {
        /// Source.
        src: Ipv6Addr,
        /// Destination.
        dst: Ipv6Addr,
    },
}

/// The IP version of a flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

/// What identifies the flow of a frame, and how it was encapsulated.
///
/// The addresses are held as plain integers (an IPv4 address in the low 32 bits) rather
/// than as [`Addrs`], so that a key the look-ahead reads and drops stays in registers:
/// read them with [`FlowKey::addrs`] or [`FlowKey::ipv4`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowKey {
    /// VLAN ids of the tags, outer first (`None`: fewer tags).
    pub vlans: [Option<u16>; MAX_VLAN_TAGS],
    /// The PPPoE session id, when the frame is a PPPoE session frame.
    pub pppoe_session: Option<u16>,
    /// Where the IP header starts in the frame.
    pub l3: usize,
    /// The IP version.
    pub family: Family,
    src: u128,
    dst: u128,
    /// The transport protocol (IPv4 protocol, or IPv6's last next header).
    pub proto: u8,
    /// A fragment other than the first: it has no transport header.
    pub later_fragment: bool,
    /// Source and destination port of TCP and UDP; the identifier, as both, of an ICMP
    /// or ICMPv6 echo request or reply. `None` for other protocols and messages, for a
    /// later fragment, or when the bytes are not there.
    pub ports: Option<(u16, u16)>,
}

impl FlowKey {
    /// The source and destination addresses.
    pub fn addrs(&self) -> Addrs {
        match self.family {
            Family::V4 => Addrs::V4 {
                src: Ipv4Addr::from(self.src as u32),
                dst: Ipv4Addr::from(self.dst as u32),
            },
            Family::V6 => Addrs::V6 {
                src: Ipv6Addr::from(self.src),
                dst: Ipv6Addr::from(self.dst),
            },
        }
    }

    /// The IPv4 source and destination, for an IPv4 flow.
    #[inline(always)]
    pub fn ipv4(&self) -> Option<(Ipv4Addr, Ipv4Addr)> {
        match self.family {
            Family::V4 => Some((
                Ipv4Addr::from(self.src as u32),
                Ipv4Addr::from(self.dst as u32),
            )),
            Family::V6 => None,
        }
    }

    /// True for a frame without VLAN tags or PPPoE (what the stages forward today).
    #[inline(always)]
    pub fn is_plain(&self) -> bool {
        self.vlans[0].is_none() && self.pppoe_session.is_none()
    }
}

/// The flow key of the Ethernet frame `frame`; `None` when it carries no IP packet this
/// parser reads (ARP, PPPoE discovery or LCP, a third VLAN tag, an unknown EtherType) or
/// when the headers it needs are cut short or malformed.
#[inline(always)]
pub fn parse(frame: &[u8]) -> Option<FlowKey> {
    // The common frame, untagged IPv4 without options, takes no loop and no call: this
    // runs for every packet of a burst in the look-ahead.
    if let Some(h) = frame.first_chunk::<{ ethernet::HEADER_LEN + ipv4::MIN_HEADER_LEN }>()
        && get_u16(h, 12) == ethertype::IPV4
        && h[ethernet::HEADER_LEN] == 0x45
    {
        let (family, src, dst, proto, later_fragment, ports) =
            parse_ipv4(&frame[ethernet::HEADER_LEN..])?;
        return Some(FlowKey {
            vlans: [None; MAX_VLAN_TAGS],
            pppoe_session: None,
            l3: ethernet::HEADER_LEN,
            family,
            src,
            dst,
            proto,
            later_fragment,
            ports,
        });
    }
    parse_encapsulated(frame)
}

/// [`parse`] for every other frame: tags, PPPoE, IPv6, IPv4 options, and what is not IP.
#[inline(never)]
fn parse_encapsulated(frame: &[u8]) -> Option<FlowKey> {
    let eth = frame.first_chunk::<{ ethernet::HEADER_LEN }>()?;
    let mut et = ethernet::Frame::new_unchecked(eth).ethertype();
    let mut at = ethernet::HEADER_LEN;
    let mut vlans = [None; MAX_VLAN_TAGS];
    // The common untagged frame skips both loops' bodies.
    let mut tags = 0;
    while matches!(et, ethertype::VLAN | ethertype::QINQ | QINQ_LEGACY) {
        let tag = frame.get(at..at + ethernet::VLAN_TAG_LEN)?;
        *vlans.get_mut(tags)? = Some(get_u16(tag, 0) & 0x0fff);
        et = get_u16(tag, 2);
        at += ethernet::VLAN_TAG_LEN;
        tags += 1;
    }
    let mut pppoe_session = None;
    if et == ethertype::PPPOE_SESSION {
        let h = frame.get(at..at + PPPOE_LEN)?;
        // Version 1, type 1, code 0 (session data).
        if h[0] != 0x11 || h[1] != 0 {
            return None;
        }
        pppoe_session = Some(get_u16(h, 2));
        et = match get_u16(h, 6) {
            ppp::IPV4 => ethertype::IPV4,
            ppp::IPV6 => ethertype::IPV6,
            _ => return None,
        };
        at += PPPOE_LEN;
    }
    let ip = frame.get(at..)?;
    let (family, src, dst, proto, later_fragment, ports) = match et {
        ethertype::IPV4 => parse_ipv4(ip)?,
        ethertype::IPV6 => parse_ipv6(ip)?,
        _ => return None,
    };
    Some(FlowKey {
        vlans,
        pppoe_session,
        l3: at,
        family,
        src,
        dst,
        proto,
        later_fragment,
        ports,
    })
}

type L3Key = (Family, u128, u128, u8, bool, Option<(u16, u16)>);

#[inline(always)]
fn parse_ipv4(ip: &[u8]) -> Option<L3Key> {
    let h = ip.first_chunk::<{ ipv4::MIN_HEADER_LEN }>()?;
    let p = ipv4::Packet::new_unchecked(h);
    let hl = p.header_len();
    if h[0] >> 4 != 4 || hl < ipv4::MIN_HEADER_LEN {
        return None;
    }
    // The transport header: after the options, up to the total length (not into the
    // Ethernet padding), and no further than the bytes there are.
    let end = (p.total_len() as usize).min(ip.len());
    let later_fragment = p.frag_offset() != 0;
    let ports = match ip.get(hl..end) {
        Some(l4) if !later_fragment => ports(p.protocol(), l4, false),
        _ => None,
    };
    let (src, dst) = (u32::from(p.src()), u32::from(p.dst()));
    Some((
        Family::V4,
        src as u128,
        dst as u128,
        p.protocol(),
        later_fragment,
        ports,
    ))
}

#[inline(always)]
fn parse_ipv6(ip: &[u8]) -> Option<L3Key> {
    let h = ip.first_chunk::<IPV6_HEADER_LEN>()?;
    if h[0] >> 4 != 6 {
        return None;
    }
    let addr = |at: usize| {
        let mut a = [0u8; 16];
        a.copy_from_slice(&h[at..at + 16]);
        u128::from_be_bytes(a)
    };
    let (src, dst) = (addr(8), addr(24));
    // A payload length of 0 is a jumbogram's (RFC 2675): up to the end of the frame.
    let payload_len = get_u16(h, 4) as usize;
    let end = match payload_len {
        0 => ip.len(),
        n => (IPV6_HEADER_LEN + n).min(ip.len()),
    };
    let mut next = h[6];
    let mut at = IPV6_HEADER_LEN;
    let mut later_fragment = false;
    for _ in 0..IPV6_MAX_EXTENSIONS {
        match next {
            next_header::HOP_BY_HOP | next_header::ROUTING | next_header::DEST_OPTS => {
                let e = ip.get(at..at + 2)?;
                next = e[0];
                at += (e[1] as usize + 1) * 8;
            }
            next_header::FRAGMENT => {
                let e = ip.get(at..at + 8)?;
                next = e[0];
                later_fragment |= get_u16(e, 2) & 0xfff8 != 0;
                at += 8;
            }
            _ => break,
        }
    }
    let ports = match ip.get(at..end) {
        Some(l4) if !later_fragment => ports(next, l4, true),
        _ => None,
    };
    Some((Family::V6, src, dst, next, later_fragment, ports))
}

/// The ports (or echo identifier) of the transport header `l4` of protocol `proto`.
#[inline(always)]
fn ports(proto: u8, l4: &[u8], v6: bool) -> Option<(u16, u16)> {
    match proto {
        // TCP and UDP keep their ports in the same place (asserted in `wire::nat`), so one
        // read serves both; over the four bytes of the ports it needs no bounds checks.
        protocol::TCP | protocol::UDP => {
            let t = tcp::Packet::new_unchecked(l4.first_chunk::<{ tcp::field::DST_PORT.end }>()?);
            Some((t.src_port(), t.dst_port()))
        }
        protocol::ICMP
            if !v6
                && l4.len() >= icmpv4::HEADER_LEN
                && matches!(l4[0], icmpv4::kind::ECHO_REQUEST | icmpv4::kind::ECHO_REPLY) =>
        {
            let id = get_u16(l4, ECHO_ID_AT);
            Some((id, id))
        }
        next_header::ICMPV6
            if v6
                && l4.len() >= icmpv4::HEADER_LEN
                && matches!(l4[0], ICMPV6_ECHO_REQUEST | ICMPV6_ECHO_REPLY) =>
        {
            let id = get_u16(l4, ECHO_ID_AT);
            Some((id, id))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{IpHeaders, PacketBuilder, PacketBuilderStep, VlanId};

    const SRC_MAC: [u8; 6] = [2, 0, 0, 0, 0, 9];
    const DST_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const V4_SRC: [u8; 4] = [10, 10, 0, 11];
    const V4_DST: [u8; 4] = [203, 0, 113, 10];
    const V6_SRC: [u8; 16] = [
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x11,
    ];
    const V6_DST: [u8; 16] = [
        0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0a,
    ];

    fn v4() -> Addrs {
        Addrs::V4 {
            src: Ipv4Addr::from(V4_SRC),
            dst: Ipv4Addr::from(V4_DST),
        }
    }

    fn v6() -> Addrs {
        Addrs::V6 {
            src: Ipv6Addr::from(V6_SRC),
            dst: Ipv6Addr::from(V6_DST),
        }
    }

    fn key(l3: usize, addrs: Addrs, proto: u8, ports: Option<(u16, u16)>) -> FlowKey {
        let (family, src, dst) = match addrs {
            Addrs::V4 { src, dst } => (Family::V4, u32::from(src) as u128, u32::from(dst) as u128),
            Addrs::V6 { src, dst } => (Family::V6, u128::from(src), u128::from(dst)),
        };
        let k = FlowKey {
            vlans: [None, None],
            pppoe_session: None,
            l3,
            family,
            src,
            dst,
            proto,
            later_fragment: false,
            ports,
        };
        assert_eq!(k.addrs(), addrs, "the addresses read back as they went in");
        k
    }

    /// A transport segment on top of an IP builder step: TCP 40001 -> 80, UDP 40000 ->
    /// 53, or an echo request with identifier 777.
    fn transport(s: PacketBuilderStep<IpHeaders>, proto: u8) -> Vec<u8> {
        let mut v = Vec::new();
        match proto {
            protocol::TCP => s.tcp(40001, 80, 1, 1000).write(&mut v, b"x").unwrap(),
            protocol::UDP => s.udp(40000, 53).write(&mut v, b"query").unwrap(),
            protocol::ICMP => s.icmpv4_echo_request(777, 1).write(&mut v, b"p").unwrap(),
            _ => s.icmpv6_echo_request(777, 1).write(&mut v, b"p").unwrap(),
        }
        v
    }

    fn ipv4_packet(proto: u8) -> Vec<u8> {
        transport(PacketBuilder::ipv4(V4_SRC, V4_DST, 64), proto)
    }

    fn ipv6_packet(proto: u8) -> Vec<u8> {
        transport(PacketBuilder::ipv6(V6_SRC, V6_DST, 64), proto)
    }

    /// An Ethernet header (with `tags`: 0x88a8 outer, 0x8100 inner) and a PPPoE session
    /// header in front of the IP packet `ip`.
    fn pppoe(tags: &[u16], session: u16, ppp_proto: u16, ip: &[u8]) -> Vec<u8> {
        let mut f = [DST_MAC, SRC_MAC].concat();
        let tpids: &[u16] = if tags.len() == 2 {
            &[0x88a8, 0x8100]
        } else {
            &[0x8100]
        };
        for (tpid, vid) in tpids.iter().zip(tags) {
            f.extend_from_slice(&tpid.to_be_bytes());
            f.extend_from_slice(&vid.to_be_bytes());
        }
        f.extend_from_slice(&ethertype::PPPOE_SESSION.to_be_bytes());
        f.extend_from_slice(&[0x11, 0x00]);
        f.extend_from_slice(&session.to_be_bytes());
        f.extend_from_slice(&(ip.len() as u16 + 2).to_be_bytes());
        f.extend_from_slice(&ppp_proto.to_be_bytes());
        f.extend_from_slice(ip);
        f
    }

    fn eth() -> PacketBuilderStep<etherparse::Ethernet2Header> {
        PacketBuilder::ethernet2(SRC_MAC, DST_MAC)
    }

    fn vid(v: u16) -> VlanId {
        VlanId::try_new(v).unwrap()
    }

    #[test]
    fn untagged_ipv4_tcp_udp_and_echo() {
        for (proto, ports) in [
            (protocol::TCP, (40001, 80)),
            (protocol::UDP, (40000, 53)),
            (protocol::ICMP, (777, 777)),
        ] {
            let f = transport(eth().ipv4(V4_SRC, V4_DST, 64), proto);
            assert_eq!(
                parse(&f),
                Some(key(14, v4(), proto, Some(ports))),
                "{proto}"
            );
        }
    }

    #[test]
    fn single_and_double_vlan_tags() {
        let f = transport(
            eth().single_vlan(vid(10)).ipv4(V4_SRC, V4_DST, 64),
            protocol::TCP,
        );
        let want = FlowKey {
            vlans: [Some(10), None],
            ..key(18, v4(), protocol::TCP, Some((40001, 80)))
        };
        assert_eq!(parse(&f), Some(want));

        let f = transport(
            eth()
                .double_vlan(vid(100), vid(4094))
                .ipv4(V4_SRC, V4_DST, 64),
            protocol::UDP,
        );
        assert_eq!(&f[12..14], &[0x88, 0xa8], "etherparse tags QinQ 802.1ad");
        let want = FlowKey {
            vlans: [Some(100), Some(4094)],
            ..key(22, v4(), protocol::UDP, Some((40000, 53)))
        };
        assert_eq!(parse(&f), Some(want));

        // The pre-standard outer TPID reads the same.
        let mut legacy = f.clone();
        legacy[12..14].copy_from_slice(&QINQ_LEGACY.to_be_bytes());
        assert_eq!(parse(&legacy), Some(want));

        // A third tag is more than the parser looks through.
        let mut triple = f[..12].to_vec();
        triple.extend_from_slice(&[0x88, 0xa8, 0, 1, 0x81, 0x00, 0, 2]);
        triple.extend_from_slice(&f[12..]);
        assert_eq!(parse(&triple), None);
    }

    #[test]
    fn ipv6_untagged_and_tagged() {
        for (proto, ports) in [
            (protocol::TCP, (40001, 80)),
            (protocol::UDP, (40000, 53)),
            (next_header::ICMPV6, (777, 777)),
        ] {
            let f = transport(eth().ipv6(V6_SRC, V6_DST, 64), proto);
            assert_eq!(
                parse(&f),
                Some(key(14, v6(), proto, Some(ports))),
                "{proto}"
            );
        }
        let f = transport(
            eth().single_vlan(vid(7)).ipv6(V6_SRC, V6_DST, 64),
            protocol::UDP,
        );
        let want = FlowKey {
            vlans: [Some(7), None],
            ..key(18, v6(), protocol::UDP, Some((40000, 53)))
        };
        assert_eq!(parse(&f), Some(want));
    }

    #[test]
    fn ipv6_extension_headers_are_skipped() {
        // Hop-by-hop (8 bytes) then a first fragment, in front of UDP.
        let udp = ipv6_packet(protocol::UDP);
        let mut ip = udp[..IPV6_HEADER_LEN].to_vec();
        ip[6] = next_header::HOP_BY_HOP;
        let payload = &udp[IPV6_HEADER_LEN..];
        ip[4..6].copy_from_slice(&((payload.len() + 16) as u16).to_be_bytes());
        ip.extend_from_slice(&[next_header::FRAGMENT, 0, 1, 4, 0, 0, 0, 0]);
        ip.extend_from_slice(&[protocol::UDP, 0, 0x00, 0x01, 0, 0, 0, 9]);
        ip.extend_from_slice(payload);
        let mut f = [DST_MAC, SRC_MAC].concat();
        f.extend_from_slice(&[0x86, 0xdd]);
        f.extend_from_slice(&ip);
        assert_eq!(
            parse(&f),
            Some(key(14, v6(), protocol::UDP, Some((40000, 53))))
        );
        // The same fragment header with offset 8: no transport header.
        f[14 + 40 + 8 + 2..14 + 40 + 8 + 4].copy_from_slice(&[0x00, 0x08]);
        let later = FlowKey {
            later_fragment: true,
            ..key(14, v6(), protocol::UDP, None)
        };
        assert_eq!(parse(&f), Some(later));
    }

    #[test]
    fn pppoe_sessions_carry_ipv4_and_ipv6() {
        let f = pppoe(&[], 0x1234, ppp::IPV4, &ipv4_packet(protocol::TCP));
        let want = FlowKey {
            pppoe_session: Some(0x1234),
            ..key(22, v4(), protocol::TCP, Some((40001, 80)))
        };
        assert_eq!(parse(&f), Some(want));

        let f = pppoe(&[], 7, ppp::IPV6, &ipv6_packet(protocol::UDP));
        let want = FlowKey {
            pppoe_session: Some(7),
            ..key(22, v6(), protocol::UDP, Some((40000, 53)))
        };
        assert_eq!(parse(&f), Some(want));

        // PPPoE in QinQ, as a BNG sees it.
        let f = pppoe(&[300, 12], 9, ppp::IPV4, &ipv4_packet(protocol::ICMP));
        let want = FlowKey {
            vlans: [Some(300), Some(12)],
            pppoe_session: Some(9),
            ..key(30, v4(), protocol::ICMP, Some((777, 777)))
        };
        assert_eq!(parse(&f), Some(want));

        // LCP, discovery, and a session header that is not version 1 type 1 code 0.
        assert_eq!(parse(&pppoe(&[], 1, ppp::LCP, &[0; 20])), None);
        let mut disc = pppoe(&[], 1, ppp::IPV4, &ipv4_packet(protocol::TCP));
        disc[12..14].copy_from_slice(&ethertype::PPPOE_DISCOVERY.to_be_bytes());
        assert_eq!(parse(&disc), None);
        let mut padt = pppoe(&[], 1, ppp::IPV4, &ipv4_packet(protocol::TCP));
        padt[15] = 0xa7;
        assert_eq!(parse(&padt), None);
    }

    #[test]
    fn ipv4_options_fragments_and_padding() {
        // A header with 4 bytes of options (NOPs and an end) in front of TCP.
        let p = ipv4_packet(protocol::TCP);
        let mut ip = vec![0x46];
        ip.extend_from_slice(&p[1..20]);
        ip[2..4].copy_from_slice(&(p.len() as u16 + 4).to_be_bytes());
        ip.extend_from_slice(&[1, 1, 1, 0]);
        ip.extend_from_slice(&p[20..]);
        let mut f = [DST_MAC, SRC_MAC].concat();
        f.extend_from_slice(&[0x08, 0x00]);
        f.extend_from_slice(&ip);
        assert_eq!(
            parse(&f),
            Some(key(14, v4(), protocol::TCP, Some((40001, 80))))
        );
        // A later fragment has no ports; the first (MF set, offset 0) has.
        let mut frag = transport(eth().ipv4(V4_SRC, V4_DST, 64), protocol::UDP);
        frag[14 + 6..14 + 8].copy_from_slice(&0x2000u16.to_be_bytes());
        assert_eq!(
            parse(&frag).unwrap().ports,
            Some((40000, 53)),
            "first fragment"
        );
        frag[14 + 6..14 + 8].copy_from_slice(&0x0004u16.to_be_bytes());
        let later = FlowKey {
            later_fragment: true,
            ..key(14, v4(), protocol::UDP, None)
        };
        assert_eq!(parse(&frag), Some(later));
        // A total length that ends before the ports: the padding is not read as ports.
        let mut short = transport(eth().ipv4(V4_SRC, V4_DST, 64), protocol::UDP);
        short[14 + 2..14 + 4].copy_from_slice(&22u16.to_be_bytes());
        assert_eq!(parse(&short).unwrap().ports, None);
    }

    #[test]
    fn not_ip_cut_short_or_malformed() {
        let f = transport(eth().ipv4(V4_SRC, V4_DST, 64), protocol::TCP);
        let mut arp = f.clone();
        arp[12..14].copy_from_slice(&ethertype::ARP.to_be_bytes());
        assert_eq!(parse(&arp), None);
        assert_eq!(parse(&f[..13]), None);
        assert_eq!(parse(&f[..14 + 19]), None, "IPv4 header cut short");
        let mut v5 = f.clone();
        v5[14] = 0x55;
        assert_eq!(parse(&v5), None, "version 5");
        let mut ihl = f.clone();
        ihl[14] = 0x44;
        assert_eq!(parse(&ihl), None, "IHL below 5");
        // Ports cut short: the key without them.
        assert_eq!(
            parse(&f[..14 + 20 + 3]),
            Some(key(14, v4(), protocol::TCP, None))
        );
        let t = transport(
            eth().single_vlan(vid(5)).ipv4(V4_SRC, V4_DST, 64),
            protocol::TCP,
        );
        assert_eq!(parse(&t[..16]), None, "tag cut short");
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..160)) {
            let _ = parse(&bytes);
        }

        /// Valid frames of every encapsulation with bytes changed and cut: no panic, and
        /// what comes out lies inside the frame.
        #[test]
        fn never_panics_on_damaged_frames(
            which in 0usize..6,
            flips in proptest::collection::vec((0usize..120, proptest::prelude::any::<u8>()), 0..6),
            cut in 0usize..130,
        ) {
            let mut f = match which {
                0 => transport(eth().ipv4(V4_SRC, V4_DST, 64), protocol::TCP),
                1 => transport(eth().single_vlan(vid(10)).ipv4(V4_SRC, V4_DST, 64), protocol::UDP),
                2 => transport(eth().double_vlan(vid(1), vid(2)).ipv6(V6_SRC, V6_DST, 64), protocol::TCP),
                3 => pppoe(&[], 3, ppp::IPV4, &ipv4_packet(protocol::ICMP)),
                4 => pppoe(&[7, 8], 3, ppp::IPV6, &ipv6_packet(next_header::ICMPV6)),
                _ => transport(eth().ipv6(V6_SRC, V6_DST, 64), protocol::UDP),
            };
            for (at, v) in flips {
                if let Some(b) = f.get_mut(at) {
                    *b = v;
                }
            }
            f.truncate(cut.max(1));
            if let Some(k) = parse(&f) {
                proptest::prop_assert!(k.l3 < f.len());
            }
        }
    }
}
