//! IPv6 (RFC 8200): the fixed header view, the extension-header chain, the addresses the
//! access side uses (modified EUI-64 link-locals, solicited-node groups, multicast MACs)
//! and prefixes.
//!
//! The chain walk ([`walk`], [`Packet::chain`]) is the parser the fast path will use for
//! IPv6 (issue 16: hop-limit and ICMPv6 errors, anti-spoofing by prefix, punting ND and
//! DHCPv6, counting fragments): it allocates nothing, reads each header once and stops
//! after [`MAX_EXTENSION_HEADERS`]. It lives in `control-core` for now, next to the
//! engines that parse punted packets with it, and moves to the dataplane's `wire` module
//! in issue 13's refactoring.

use core::net::Ipv6Addr;

use crate::wire::ethernet::Mac;
use crate::wire::{WireError, get_u16, get_u32, put_u16};

/// Next Header values the chain walk knows (IANA "Assigned Internet Protocol Numbers").
pub mod next_header {
    /// Hop-by-Hop Options (must come first).
    pub const HOP_BY_HOP: u8 = 0;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// IPv6 in IPv6.
    pub const IPV6: u8 = 41;
    /// Routing header.
    pub const ROUTING: u8 = 43;
    /// Fragment header.
    pub const FRAGMENT: u8 = 44;
    /// Encapsulating Security Payload (the chain ends: what follows is encrypted).
    pub const ESP: u8 = 50;
    /// Authentication Header.
    pub const AH: u8 = 51;
    /// ICMPv6.
    pub const ICMPV6: u8 = 58;
    /// No Next Header.
    pub const NO_NEXT_HEADER: u8 = 59;
    /// Destination Options.
    pub const DESTINATION_OPTIONS: u8 = 60;
    /// Mobility header (RFC 6275).
    pub const MOBILITY: u8 = 135;
    /// Host Identity Protocol (RFC 7401).
    pub const HIP: u8 = 139;
    /// Shim6 (RFC 5533).
    pub const SHIM6: u8 = 140;
    /// Experimental (RFC 3692, RFC 4727).
    pub const EXPERIMENTAL_1: u8 = 253;
    /// Experimental (RFC 3692, RFC 4727).
    pub const EXPERIMENTAL_2: u8 = 254;
}

mod field {
    use core::ops::Range;
    pub const VER_TC_FL: usize = 0;
    pub const PAYLOAD_LEN: usize = 4;
    pub const NEXT_HEADER: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC: Range<usize> = 8..24;
    pub const DST: Range<usize> = 24..40;
}

/// The fixed header's length.
pub const HEADER_LEN: usize = 40;

/// The most extension headers [`walk`] reads before it gives up with
/// [`ChainError::TooLong`] (a legitimate packet has at most a handful: RFC 8200 section
/// 4.1 lists six kinds, each at most once, Destination Options twice).
pub const MAX_EXTENSION_HEADERS: usize = 8;

/// All-nodes multicast (ff02::1).
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
/// All-routers multicast (ff02::2).
pub const ALL_ROUTERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2);
/// All DHCP relay agents and servers (ff02::1:2).
pub const ALL_DHCP_AGENTS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 1, 2);

/// A view of an IPv6 packet.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps `buffer` without checks.
    pub fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// Wraps `buffer`, checking [`Self::check_len`].
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// A fixed header, version 6, and a Payload Length within the buffer (bytes past it
    /// are link padding). Jumbograms (Payload Length 0 with a Jumbo Payload option) are
    /// not supported: their payload reads as empty.
    pub fn check_len(&self) -> Result<(), WireError> {
        let b = self.buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if b[field::VER_TC_FL] >> 4 != 6 {
            return Err(WireError::Malformed);
        }
        if HEADER_LEN + self.payload_len() as usize > b.len() {
            return Err(WireError::Truncated);
        }
        Ok(())
    }

    /// The traffic class.
    pub fn traffic_class(&self) -> u8 {
        (get_u16(self.buffer.as_ref(), 0) >> 4) as u8
    }

    /// The flow label.
    pub fn flow_label(&self) -> u32 {
        get_u32(self.buffer.as_ref(), 0) & 0x000f_ffff
    }

    /// Payload Length.
    pub fn payload_len(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::PAYLOAD_LEN)
    }

    /// The first Next Header.
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[field::NEXT_HEADER]
    }

    /// Hop Limit.
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_LIMIT]
    }

    /// The source address.
    pub fn src_addr(&self) -> Ipv6Addr {
        addr(&self.buffer.as_ref()[field::SRC])
    }

    /// The destination address.
    pub fn dst_addr(&self) -> Ipv6Addr {
        addr(&self.buffer.as_ref()[field::DST])
    }

    /// The payload (extension headers and upper layer), up to Payload Length.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..HEADER_LEN + self.payload_len() as usize]
    }

    /// Walks the extension-header chain of the payload.
    pub fn chain(&self) -> Result<Chain, ChainError> {
        walk(self.next_header(), self.payload())
    }

    /// The upper-layer protocol and its bytes, if the chain parses and this is not a
    /// non-first fragment.
    pub fn upper_layer(&self) -> Option<(u8, &[u8])> {
        let c = self.chain().ok()?;
        let (p, at) = c.upper_layer()?;
        Some((p, &self.payload()[at..]))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets Hop Limit (the forwarding decrement; IPv6 has no header checksum).
    pub fn set_hop_limit(&mut self, v: u8) {
        self.buffer.as_mut()[field::HOP_LIMIT] = v;
    }

    /// Sets Payload Length.
    pub fn set_payload_len(&mut self, v: u16) {
        put_u16(self.buffer.as_mut(), field::PAYLOAD_LEN, v);
    }

    /// Sets the source address.
    pub fn set_src_addr(&mut self, a: Ipv6Addr) {
        self.buffer.as_mut()[field::SRC].copy_from_slice(&a.octets());
    }

    /// Sets the destination address.
    pub fn set_dst_addr(&mut self, a: Ipv6Addr) {
        self.buffer.as_mut()[field::DST].copy_from_slice(&a.octets());
    }
}

fn addr(b: &[u8]) -> Ipv6Addr {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[..16]);
    Ipv6Addr::from(a)
}

/// A fixed header for `payload_len` bytes of `next_header` (traffic class and flow label
/// zero).
pub fn header(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    next_header: u8,
    hop_limit: u8,
    payload_len: usize,
) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[field::VER_TC_FL] = 0x60;
    put_u16(&mut h, field::PAYLOAD_LEN, payload_len.min(0xffff) as u16);
    h[field::NEXT_HEADER] = next_header;
    h[field::HOP_LIMIT] = hop_limit;
    h[field::SRC].copy_from_slice(&src.octets());
    h[field::DST].copy_from_slice(&dst.octets());
    h
}

/// A whole packet: the fixed header and `payload`.
pub fn packet(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    next_header: u8,
    hop_limit: u8,
    payload: &[u8],
) -> Vec<u8> {
    let mut p = Vec::with_capacity(HEADER_LEN + payload.len());
    p.extend_from_slice(&header(src, dst, next_header, hop_limit, payload.len()));
    p.extend_from_slice(payload);
    p
}

/// A fragment header's facts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fragment {
    /// Fragment Offset, in 8-octet units.
    pub offset: u16,
    /// The M flag: more fragments follow.
    pub more: bool,
    /// Identification.
    pub id: u32,
}

impl Fragment {
    /// The first fragment (offset 0): it carries the whole header chain (RFC 7112).
    pub fn is_first(&self) -> bool {
        self.offset == 0
    }

    /// An atomic fragment (offset 0, no more fragments: RFC 6946), a whole packet.
    pub fn is_atomic(&self) -> bool {
        self.offset == 0 && !self.more
    }
}

/// A routing header's facts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Routing {
    /// Routing Type (0 is deprecated by RFC 5095; 4 is SRv6).
    pub kind: u8,
    /// Segments Left.
    pub segments_left: u8,
}

/// What the chain walk found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chain {
    /// Extension headers read.
    pub extensions: u8,
    /// The protocol after the chain (the last Next Header): the upper layer, or ESP or
    /// No Next Header, or, for a non-first fragment, the fragmented protocol.
    pub protocol: u8,
    /// Where, in the payload, `protocol`'s bytes start.
    pub offset: usize,
    /// A Hop-by-Hop Options header was present.
    pub hop_by_hop: bool,
    /// The Router Alert option's value (RFC 2711; 0 = MLD), from Hop-by-Hop Options.
    pub router_alert: Option<u16>,
    /// The routing header, if any.
    pub routing: Option<Routing>,
    /// The fragment header, if any.
    pub fragment: Option<Fragment>,
}

impl Chain {
    /// The upper-layer protocol and its offset in the payload; `None` for a non-first
    /// fragment (its bytes are the middle of a datagram).
    pub fn upper_layer(&self) -> Option<(u8, usize)> {
        match self.fragment {
            Some(f) if !f.is_first() => None,
            _ => Some((self.protocol, self.offset)),
        }
    }
}

/// Why a chain could not be walked; each is a named drop for the fast path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[repr(u8)]
pub enum ChainError {
    /// A header runs past the payload (in a first fragment: the chain was split across
    /// fragments, which RFC 7112 forbids).
    #[error("extension header truncated")]
    Truncated,
    /// More than [`MAX_EXTENSION_HEADERS`] extension headers.
    #[error("extension header chain too long")]
    TooLong,
    /// Hop-by-Hop Options anywhere but first (RFC 8200 section 4.3).
    #[error("hop-by-hop options not first")]
    HopByHopNotFirst,
    /// A fragment, routing or authentication header twice, or Destination Options more
    /// than twice.
    #[error("extension header repeated")]
    Repeated,
    /// An option in Hop-by-Hop or Destination Options runs past its header.
    #[error("bad extension header option")]
    BadOption,
}

impl ChainError {
    /// The drop counter's name.
    pub fn name(self) -> &'static str {
        match self {
            ChainError::Truncated => "ipv6_ext_truncated",
            ChainError::TooLong => "ipv6_ext_chain_too_long",
            ChainError::HopByHopNotFirst => "ipv6_hop_by_hop_not_first",
            ChainError::Repeated => "ipv6_ext_repeated",
            ChainError::BadOption => "ipv6_ext_bad_option",
        }
    }
}

/// Whether `nh` is an extension header the walk steps over.
fn is_extension(nh: u8) -> bool {
    use next_header::*;
    matches!(
        nh,
        HOP_BY_HOP
            | ROUTING
            | FRAGMENT
            | AH
            | DESTINATION_OPTIONS
            | MOBILITY
            | HIP
            | SHIM6
            | EXPERIMENTAL_1
            | EXPERIMENTAL_2
    )
}

/// Checks the TLV options of a Hop-by-Hop or Destination Options header (`opts`: the
/// bytes after Next Header and Hdr Ext Len); returns the Router Alert value if present.
fn options(opts: &[u8]) -> Result<Option<u16>, ChainError> {
    let mut alert = None;
    let mut rest = opts;
    while let [kind, tail @ ..] = rest {
        if *kind == 0 {
            rest = tail;
            continue;
        }
        let [len, data @ ..] = tail else {
            return Err(ChainError::BadOption);
        };
        let len = usize::from(*len);
        if len > data.len() {
            return Err(ChainError::BadOption);
        }
        if *kind == 0x05 && len == 2 {
            alert = Some(get_u16(data, 0));
        }
        rest = &data[len..];
    }
    Ok(alert)
}

/// Walks the extension headers of `payload`, the first of type `first`.
pub fn walk(first: u8, payload: &[u8]) -> Result<Chain, ChainError> {
    use next_header::*;
    let mut c = Chain {
        extensions: 0,
        protocol: first,
        offset: 0,
        hop_by_hop: false,
        router_alert: None,
        routing: None,
        fragment: None,
    };
    let mut dest_opts = 0u8;
    let mut ah = false;
    while is_extension(c.protocol) {
        if usize::from(c.extensions) == MAX_EXTENSION_HEADERS {
            return Err(ChainError::TooLong);
        }
        let at = c.offset;
        let h = payload.get(at..at + 2).ok_or(ChainError::Truncated)?;
        let (next, hlen) = (h[0], h[1]);
        let len = match c.protocol {
            FRAGMENT => 8,
            AH => (usize::from(hlen) + 2) * 4,
            _ => (usize::from(hlen) + 1) * 8,
        };
        let body = payload.get(at..at + len).ok_or(ChainError::Truncated)?;
        match c.protocol {
            HOP_BY_HOP => {
                if c.extensions != 0 {
                    return Err(ChainError::HopByHopNotFirst);
                }
                c.hop_by_hop = true;
                c.router_alert = options(&body[2..])?;
            }
            DESTINATION_OPTIONS => {
                dest_opts += 1;
                if dest_opts > 2 {
                    return Err(ChainError::Repeated);
                }
                options(&body[2..])?;
            }
            ROUTING => {
                if c.routing.is_some() {
                    return Err(ChainError::Repeated);
                }
                c.routing = Some(Routing {
                    kind: body.get(2).copied().unwrap_or(0),
                    segments_left: body.get(3).copied().unwrap_or(0),
                });
            }
            FRAGMENT => {
                if c.fragment.is_some() {
                    return Err(ChainError::Repeated);
                }
                let v = get_u16(body, 2);
                let f = Fragment {
                    offset: v >> 3,
                    more: v & 1 != 0,
                    id: get_u32(body, 4),
                };
                c.fragment = Some(f);
                if !f.is_first() {
                    c.extensions += 1;
                    c.protocol = next;
                    c.offset = at + len;
                    return Ok(c);
                }
            }
            AH => {
                if ah {
                    return Err(ChainError::Repeated);
                }
                ah = true;
            }
            _ => {}
        }
        c.extensions += 1;
        c.protocol = next;
        c.offset = at + len;
    }
    if c.offset > payload.len() {
        return Err(ChainError::Truncated);
    }
    Ok(c)
}

/// The modified EUI-64 interface identifier of `mac` (RFC 4291 appendix A).
pub fn interface_id(mac: Mac) -> [u8; 8] {
    [
        mac[0] ^ 0x02,
        mac[1],
        mac[2],
        0xff,
        0xfe,
        mac[3],
        mac[4],
        mac[5],
    ]
}

/// The link-local address fe80::/64 with `mac`'s modified EUI-64 identifier.
pub fn link_local(mac: Mac) -> Ipv6Addr {
    let mut a = [0u8; 16];
    a[0] = 0xfe;
    a[1] = 0x80;
    a[8..].copy_from_slice(&interface_id(mac));
    Ipv6Addr::from(a)
}

/// Whether `a` is link-local unicast (fe80::/10).
pub fn is_link_local(a: Ipv6Addr) -> bool {
    a.segments()[0] & 0xffc0 == 0xfe80
}

/// The solicited-node multicast group of `a` (ff02::1:ffXX:XXXX, RFC 4291 2.7.1).
pub fn solicited_node(a: Ipv6Addr) -> Ipv6Addr {
    let o = a.octets();
    Ipv6Addr::from([
        0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff, o[13], o[14], o[15],
    ])
}

/// The Ethernet address of multicast group `a` (33:33 and its last 32 bits, RFC 2464).
pub fn multicast_mac(a: Ipv6Addr) -> Mac {
    let o = a.octets();
    [0x33, 0x33, o[12], o[13], o[14], o[15]]
}

/// An IPv6 prefix: the address with the bits past `len` cleared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Prefix {
    addr: Ipv6Addr,
    len: u8,
}

impl Prefix {
    /// `addr/len`, host bits cleared; `None` if `len` is over 128.
    pub fn new(addr: Ipv6Addr, len: u8) -> Option<Prefix> {
        if len > 128 {
            return None;
        }
        let mask = if len == 0 {
            0
        } else {
            u128::MAX << (128 - u32::from(len))
        };
        Some(Prefix {
            addr: Ipv6Addr::from(u128::from(addr) & mask),
            len,
        })
    }

    /// The network address.
    pub fn addr(&self) -> Ipv6Addr {
        self.addr
    }

    /// The prefix length.
    pub fn len(&self) -> u8 {
        self.len
    }

    /// Whether this is ::/0.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether `a` is inside the prefix.
    pub fn contains(&self, a: Ipv6Addr) -> bool {
        Prefix::new(a, self.len) == Some(*self)
    }
}

impl core::fmt::Display for Prefix {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl core::str::FromStr for Prefix {
    type Err = WireError;

    /// `2001:db8::/64`.
    fn from_str(s: &str) -> Result<Prefix, WireError> {
        let (a, l) = s.split_once('/').ok_or(WireError::Malformed)?;
        let a: Ipv6Addr = a.parse().map_err(|_| WireError::Malformed)?;
        let l: u8 = l.parse().map_err(|_| WireError::Malformed)?;
        Prefix::new(a, l).ok_or(WireError::Malformed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_of_a_mac() {
        let mac = [0x00, 0x1b, 0x21, 0xaa, 0xbb, 0xcc];
        assert_eq!(
            link_local(mac),
            "fe80::21b:21ff:feaa:bbcc".parse::<Ipv6Addr>().unwrap()
        );
        assert!(is_link_local(link_local(mac)));
        assert!(!is_link_local("fec0::1".parse().unwrap()));
        let a: Ipv6Addr = "2001:db8::1:2:3".parse().unwrap();
        assert_eq!(
            solicited_node(a),
            "ff02::1:ff02:3".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(
            multicast_mac(solicited_node(a)),
            [0x33, 0x33, 0xff, 0x02, 0x00, 0x03]
        );
        assert_eq!(multicast_mac(ALL_NODES), [0x33, 0x33, 0, 0, 0, 1]);
    }

    #[test]
    fn prefixes() {
        let p: Prefix = "2001:db8:1:2:3::/48".parse().unwrap();
        assert_eq!(p.to_string(), "2001:db8:1::/48");
        assert!(p.contains("2001:db8:1:ffff::1".parse().unwrap()));
        assert!(!p.contains("2001:db8:2::1".parse().unwrap()));
        assert_eq!(Prefix::new(Ipv6Addr::UNSPECIFIED, 129), None);
        let all = Prefix::new("::1".parse().unwrap(), 0).unwrap();
        assert!(all.is_empty() && all.contains("2001::1".parse().unwrap()));
        assert!("2001:db8::".parse::<Prefix>().is_err());
        assert!("2001:db8::/200".parse::<Prefix>().is_err());
        let host = Prefix::new("2001:db8::7".parse().unwrap(), 128).unwrap();
        assert!(host.contains("2001:db8::7".parse().unwrap()));
        assert!(!host.contains("2001:db8::8".parse().unwrap()));
    }

    #[test]
    fn header_fields() {
        let s: Ipv6Addr = "fe80::1".parse().unwrap();
        let mut p = packet(s, ALL_NODES, next_header::ICMPV6, 255, &[1, 2, 3]);
        p.extend_from_slice(&[0, 0]); // link padding
        let v = Packet::new_checked(&p[..]).unwrap();
        assert_eq!(
            (v.payload_len(), v.next_header(), v.hop_limit()),
            (3, 58, 255)
        );
        assert_eq!((v.src_addr(), v.dst_addr()), (s, ALL_NODES));
        assert_eq!((v.traffic_class(), v.flow_label()), (0, 0));
        assert_eq!(v.payload(), &[1, 2, 3]);
        assert_eq!(v.upper_layer(), Some((58, &[1u8, 2, 3][..])));
        let mut m = Packet::new_unchecked(p.clone());
        m.set_hop_limit(63);
        m.set_src_addr(ALL_ROUTERS);
        m.set_dst_addr(s);
        m.set_payload_len(2);
        assert_eq!(
            (m.hop_limit(), m.src_addr(), m.dst_addr(), m.payload().len()),
            (63, ALL_ROUTERS, s, 2)
        );
        assert_eq!(
            Packet::new_checked(&p[..39]).err(),
            Some(WireError::Truncated)
        );
        p[0] = 0x40;
        assert_eq!(
            Packet::new_checked(&p[..]).err(),
            Some(WireError::Malformed)
        );
        p[0] = 0x60;
        p[5] = 6;
        assert_eq!(
            Packet::new_checked(&p[..]).err(),
            Some(WireError::Truncated)
        );
    }
}
