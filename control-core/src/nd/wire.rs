//! ICMPv6 (RFC 4443) and Neighbor Discovery (RFC 4861) messages: the ICMPv6 view with its
//! checksum over the IPv6 pseudo-header, the ND messages (Router Solicitation and
//! Advertisement, Neighbor Solicitation and Advertisement, Redirect) as a parsed
//! [`Message`], the ND options (source/target link-layer address, prefix information,
//! MTU, RDNSS of RFC 8106) and a builder.

use core::net::Ipv6Addr;

use crate::inet::checksum;
use crate::inet::ipv6::{Prefix, next_header};
use crate::wire::ethernet::Mac;
use crate::wire::{WireError, get_u16, get_u32, put_u16};

/// ICMPv6 types.
pub mod icmp_type {
    /// Destination Unreachable.
    pub const DESTINATION_UNREACHABLE: u8 = 1;
    /// Packet Too Big.
    pub const PACKET_TOO_BIG: u8 = 2;
    /// Time Exceeded.
    pub const TIME_EXCEEDED: u8 = 3;
    /// Parameter Problem.
    pub const PARAMETER_PROBLEM: u8 = 4;
    /// Echo Request.
    pub const ECHO_REQUEST: u8 = 128;
    /// Echo Reply.
    pub const ECHO_REPLY: u8 = 129;
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

/// ND option types.
pub mod option {
    /// Source Link-Layer Address.
    pub const SOURCE_LL: u8 = 1;
    /// Target Link-Layer Address.
    pub const TARGET_LL: u8 = 2;
    /// Prefix Information.
    pub const PREFIX_INFO: u8 = 3;
    /// Redirected Header.
    pub const REDIRECTED_HEADER: u8 = 4;
    /// MTU.
    pub const MTU: u8 = 5;
    /// Recursive DNS Server (RFC 8106).
    pub const RDNSS: u8 = 25;
    /// DNS Search List (RFC 8106).
    pub const DNSSL: u8 = 31;
}

/// Router Advertisement flags.
pub mod ra_flag {
    /// Managed address configuration (DHCPv6 for addresses).
    pub const MANAGED: u8 = 0x80;
    /// Other configuration (DHCPv6 for other information).
    pub const OTHER: u8 = 0x40;
}

/// Neighbor Advertisement flags (the first byte of the flags word).
pub mod na_flag {
    /// The sender is a router.
    pub const ROUTER: u8 = 0x80;
    /// In answer to a solicitation.
    pub const SOLICITED: u8 = 0x40;
    /// Override an existing cache entry.
    pub const OVERRIDE: u8 = 0x20;
}

/// Prefix Information flags.
pub mod prefix_flag {
    /// On-link.
    pub const ON_LINK: u8 = 0x80;
    /// Autonomous address configuration (SLAAC).
    pub const AUTONOMOUS: u8 = 0x40;
}

mod field {
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: usize = 2;
    pub const BODY: usize = 4;
}

/// The ICMPv6 header length (type, code, checksum).
pub const HEADER_LEN: usize = field::BODY;

/// A view of an ICMPv6 message.
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

    /// Type, code and checksum.
    pub fn check_len(&self) -> Result<(), WireError> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        Ok(())
    }

    /// The type.
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }

    /// The code.
    pub fn code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    /// The checksum field.
    pub fn checksum(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// What follows the checksum.
    pub fn body(&self) -> &[u8] {
        &self.buffer.as_ref()[field::BODY..]
    }

    /// Whether the checksum is right for a packet from `src` to `dst`.
    pub fn checksum_ok(&self, src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        let b = self.buffer.as_ref();
        checksum::fold(checksum::sum(
            b,
            checksum::pseudo_v6(src, dst, next_header::ICMPV6, b.len()),
        )) == 0
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Computes and fills the checksum for a packet from `src` to `dst`.
    pub fn fill_checksum(&mut self, src: Ipv6Addr, dst: Ipv6Addr) {
        let b = self.buffer.as_mut();
        put_u16(b, field::CHECKSUM, 0);
        let c = checksum::upper_v6(src, dst, next_header::ICMPV6, b);
        put_u16(b, field::CHECKSUM, c);
    }
}

/// One ND option.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NdOption<'a> {
    /// Source Link-Layer Address (Ethernet).
    SourceLinkLayer(Mac),
    /// Target Link-Layer Address (Ethernet).
    TargetLinkLayer(Mac),
    /// Prefix Information.
    PrefixInfo {
        /// The prefix.
        prefix: Prefix,
        /// [`prefix_flag`] bits.
        flags: u8,
        /// Valid lifetime (seconds; 0xffffffff = infinity).
        valid: u32,
        /// Preferred lifetime (seconds).
        preferred: u32,
    },
    /// MTU.
    Mtu(u32),
    /// Recursive DNS Server: lifetime and the addresses' bytes (16 each).
    Rdnss {
        /// Lifetime (seconds).
        lifetime: u32,
        /// The addresses, 16 bytes each.
        addresses: &'a [u8],
    },
    /// Another option (or a link-layer option that is not 6 bytes).
    Other {
        /// The type.
        kind: u8,
        /// The bytes after type and length.
        data: &'a [u8],
    },
}

impl NdOption<'_> {
    /// The RDNSS addresses.
    pub fn rdnss_addresses(&self) -> impl Iterator<Item = Ipv6Addr> + '_ {
        let a: &[u8] = match self {
            NdOption::Rdnss { addresses, .. } => addresses,
            _ => &[],
        };
        a.chunks_exact(16)
            .map(|c| Ipv6Addr::from(<[u8; 16]>::try_from(c).unwrap_or([0; 16])))
    }
}

/// Iterates over ND options: a zero length or one running past the data is an error
/// (RFC 4861 4.6: such packets are discarded), then stops.
#[derive(Clone, Debug)]
pub struct Options<'a> {
    rest: &'a [u8],
}

/// The options in `data`.
pub fn options(data: &[u8]) -> Options<'_> {
    Options { rest: data }
}

fn mac(b: &[u8]) -> Mac {
    let mut m = [0u8; 6];
    m.copy_from_slice(&b[..6]);
    m
}

fn addr(b: &[u8]) -> Ipv6Addr {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[..16]);
    Ipv6Addr::from(a)
}

impl<'a> Iterator for Options<'a> {
    type Item = Result<NdOption<'a>, WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let len = match self.rest {
            [_, l, ..] if *l != 0 && usize::from(*l) * 8 <= self.rest.len() => usize::from(*l) * 8,
            [_, 0, ..] => {
                self.rest = &[];
                return Some(Err(WireError::Malformed));
            }
            _ => {
                self.rest = &[];
                return Some(Err(WireError::Truncated));
            }
        };
        let (o, rest) = self.rest.split_at(len);
        self.rest = rest;
        let data = &o[2..];
        Some(Ok(match o[0] {
            option::SOURCE_LL if len == 8 => NdOption::SourceLinkLayer(mac(data)),
            option::TARGET_LL if len == 8 => NdOption::TargetLinkLayer(mac(data)),
            option::PREFIX_INFO if len == 32 => match Prefix::new(addr(&data[14..30]), data[0]) {
                Some(prefix) => NdOption::PrefixInfo {
                    prefix,
                    flags: data[1],
                    valid: get_u32(data, 2),
                    preferred: get_u32(data, 6),
                },
                None => return Some(Err(WireError::Malformed)),
            },
            option::MTU if len == 8 => NdOption::Mtu(get_u32(data, 2)),
            option::RDNSS if len >= 24 && (len - 8) % 16 == 0 => NdOption::Rdnss {
                lifetime: get_u32(data, 2),
                addresses: &data[6..],
            },
            kind => NdOption::Other { kind, data },
        }))
    }
}

/// A parsed ND message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Message<'a> {
    /// Router Solicitation.
    RouterSolicit {
        /// Options.
        options: &'a [u8],
    },
    /// Router Advertisement.
    RouterAdvert {
        /// Cur Hop Limit.
        hop_limit: u8,
        /// [`ra_flag`] bits.
        flags: u8,
        /// Router Lifetime (seconds; 0 = not a default router).
        router_lifetime: u16,
        /// Reachable Time (ms).
        reachable_time: u32,
        /// Retrans Timer (ms).
        retrans_timer: u32,
        /// Options.
        options: &'a [u8],
    },
    /// Neighbor Solicitation.
    NeighborSolicit {
        /// The address asked about.
        target: Ipv6Addr,
        /// Options.
        options: &'a [u8],
    },
    /// Neighbor Advertisement.
    NeighborAdvert {
        /// [`na_flag`] bits.
        flags: u8,
        /// The address advertised.
        target: Ipv6Addr,
        /// Options.
        options: &'a [u8],
    },
    /// Redirect.
    Redirect {
        /// The better first hop.
        target: Ipv6Addr,
        /// The destination redirected.
        destination: Ipv6Addr,
        /// Options.
        options: &'a [u8],
    },
}

impl<'a> Message<'a> {
    /// Parses an ICMPv6 message as ND: one of the five types, code 0, long enough, and
    /// options that all parse. Other types are `Malformed`.
    pub fn parse<T: AsRef<[u8]>>(p: &'a Packet<T>) -> Result<Message<'a>, WireError> {
        if p.code() != 0 {
            return Err(WireError::Malformed);
        }
        let b = p.body();
        let need = match p.msg_type() {
            icmp_type::ROUTER_SOLICIT => 4,
            icmp_type::ROUTER_ADVERT => 12,
            icmp_type::NEIGHBOR_SOLICIT | icmp_type::NEIGHBOR_ADVERT => 20,
            icmp_type::REDIRECT => 36,
            _ => return Err(WireError::Malformed),
        };
        if b.len() < need {
            return Err(WireError::Truncated);
        }
        let opts = &b[need..];
        for o in options(opts) {
            o?;
        }
        Ok(match p.msg_type() {
            icmp_type::ROUTER_SOLICIT => Message::RouterSolicit { options: opts },
            icmp_type::ROUTER_ADVERT => Message::RouterAdvert {
                hop_limit: b[0],
                flags: b[1],
                router_lifetime: get_u16(b, 2),
                reachable_time: get_u32(b, 4),
                retrans_timer: get_u32(b, 8),
                options: opts,
            },
            icmp_type::NEIGHBOR_SOLICIT => Message::NeighborSolicit {
                target: addr(&b[4..20]),
                options: opts,
            },
            icmp_type::NEIGHBOR_ADVERT => Message::NeighborAdvert {
                flags: b[0],
                target: addr(&b[4..20]),
                options: opts,
            },
            _ => Message::Redirect {
                target: addr(&b[4..20]),
                destination: addr(&b[20..36]),
                options: opts,
            },
        })
    }

    /// The options.
    pub fn options(&self) -> Options<'a> {
        match self {
            Message::RouterSolicit { options }
            | Message::RouterAdvert { options, .. }
            | Message::NeighborSolicit { options, .. }
            | Message::NeighborAdvert { options, .. }
            | Message::Redirect { options, .. } => self::options(options),
        }
    }

    /// The Source Link-Layer Address option, if any.
    pub fn source_link_layer(&self) -> Option<Mac> {
        self.options().map_while(Result::ok).find_map(|o| match o {
            NdOption::SourceLinkLayer(m) => Some(m),
            _ => None,
        })
    }
}

/// Writes an ICMPv6 message: header, fixed body, options; [`Self::finish`] fills the
/// checksum.
#[derive(Clone, Debug)]
pub struct Builder {
    buf: Vec<u8>,
}

impl Builder {
    /// A message of `msg_type` with code 0 and `body` after the checksum.
    pub fn new(msg_type: u8, body: &[u8]) -> Builder {
        let mut buf = Vec::with_capacity(128);
        buf.extend_from_slice(&[msg_type, 0, 0, 0]);
        buf.extend_from_slice(body);
        Builder { buf }
    }

    /// A Router Advertisement's header.
    pub fn router_advert(
        hop_limit: u8,
        flags: u8,
        router_lifetime: u16,
        reachable_ms: u32,
        retrans_ms: u32,
    ) -> Builder {
        let mut b = [0u8; 12];
        b[0] = hop_limit;
        b[1] = flags;
        b[2..4].copy_from_slice(&router_lifetime.to_be_bytes());
        b[4..8].copy_from_slice(&reachable_ms.to_be_bytes());
        b[8..12].copy_from_slice(&retrans_ms.to_be_bytes());
        Builder::new(icmp_type::ROUTER_ADVERT, &b)
    }

    /// A Neighbor Advertisement's header.
    pub fn neighbor_advert(flags: u8, target: Ipv6Addr) -> Builder {
        let mut b = [0u8; 20];
        b[0] = flags;
        b[4..].copy_from_slice(&target.octets());
        Builder::new(icmp_type::NEIGHBOR_ADVERT, &b)
    }

    /// A Neighbor Solicitation's header.
    pub fn neighbor_solicit(target: Ipv6Addr) -> Builder {
        let mut b = [0u8; 20];
        b[4..].copy_from_slice(&target.octets());
        Builder::new(icmp_type::NEIGHBOR_SOLICIT, &b)
    }

    /// A Router Solicitation's header.
    pub fn router_solicit() -> Builder {
        Builder::new(icmp_type::ROUTER_SOLICIT, &[0; 4])
    }

    fn option(&mut self, kind: u8, data: &[u8]) -> &mut Self {
        // Type, length in 8-octet units, data, padded to a multiple of 8.
        let len = (2 + data.len()).div_ceil(8);
        self.buf.push(kind);
        self.buf.push(len as u8);
        self.buf.extend_from_slice(data);
        self.buf
            .resize(self.buf.len() + len * 8 - 2 - data.len(), 0);
        self
    }

    /// A Source Link-Layer Address option.
    pub fn source_link_layer(&mut self, m: Mac) -> &mut Self {
        self.option(option::SOURCE_LL, &m)
    }

    /// A Target Link-Layer Address option.
    pub fn target_link_layer(&mut self, m: Mac) -> &mut Self {
        self.option(option::TARGET_LL, &m)
    }

    /// An MTU option.
    pub fn mtu(&mut self, mtu: u32) -> &mut Self {
        let mut d = [0u8; 6];
        d[2..].copy_from_slice(&mtu.to_be_bytes());
        self.option(option::MTU, &d)
    }

    /// A Prefix Information option.
    pub fn prefix_info(
        &mut self,
        prefix: Prefix,
        flags: u8,
        valid: u32,
        preferred: u32,
    ) -> &mut Self {
        let mut d = [0u8; 30];
        d[0] = prefix.len();
        d[1] = flags;
        d[2..6].copy_from_slice(&valid.to_be_bytes());
        d[6..10].copy_from_slice(&preferred.to_be_bytes());
        d[14..30].copy_from_slice(&prefix.addr().octets());
        self.option(option::PREFIX_INFO, &d)
    }

    /// A Recursive DNS Server option (nothing if `servers` is empty).
    pub fn rdnss(&mut self, lifetime: u32, servers: &[Ipv6Addr]) -> &mut Self {
        if servers.is_empty() {
            return self;
        }
        let mut d = Vec::with_capacity(6 + 16 * servers.len());
        d.extend_from_slice(&[0, 0]);
        d.extend_from_slice(&lifetime.to_be_bytes());
        for s in servers.iter().take(127) {
            d.extend_from_slice(&s.octets());
        }
        self.option(option::RDNSS, &d)
    }

    /// The message with its checksum for `src` to `dst`.
    pub fn finish(&mut self, src: Ipv6Addr, dst: Ipv6Addr) -> Vec<u8> {
        let mut b = core::mem::take(&mut self.buf);
        Packet::new_unchecked(&mut b[..]).fill_checksum(src, dst);
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn router_advert_round_trips_and_etherparse_agrees_on_the_checksum() {
        let src: Ipv6Addr = "fe80::1".parse().unwrap();
        let dst: Ipv6Addr = "ff02::1".parse().unwrap();
        let p: Prefix = "2001:db8:7::/64".parse().unwrap();
        let dns: Ipv6Addr = "2001:db8::53".parse().unwrap();
        let m = Builder::router_advert(64, ra_flag::OTHER, 1800, 0, 0)
            .source_link_layer([2, 0, 0, 0, 0, 1])
            .mtu(1500)
            .prefix_info(
                p,
                prefix_flag::ON_LINK | prefix_flag::AUTONOMOUS,
                86400,
                14400,
            )
            .rdnss(1800, &[dns])
            .finish(src, dst);
        assert_eq!(m.len(), 16 + 8 + 8 + 32 + 24);
        let v = Packet::new_checked(&m[..]).unwrap();
        assert!(v.checksum_ok(src, dst));
        assert!(!v.checksum_ok(src, "ff02::2".parse().unwrap()));
        let e = etherparse::Icmpv6Slice::from_slice(&m).unwrap();
        assert!(e.is_checksum_valid(src.octets(), dst.octets()));
        let msg = Message::parse(&v).unwrap();
        let Message::RouterAdvert {
            hop_limit,
            flags,
            router_lifetime,
            ..
        } = msg
        else {
            panic!()
        };
        assert_eq!((hop_limit, flags, router_lifetime), (64, 0x40, 1800));
        let o: Vec<_> = msg.options().map(Result::unwrap).collect();
        assert_eq!(o[0], NdOption::SourceLinkLayer([2, 0, 0, 0, 0, 1]));
        assert_eq!(o[1], NdOption::Mtu(1500));
        assert_eq!(
            o[2],
            NdOption::PrefixInfo {
                prefix: p,
                flags: 0xc0,
                valid: 86400,
                preferred: 14400
            }
        );
        assert_eq!(o[3].rdnss_addresses().collect::<Vec<_>>(), [dns]);
        assert_eq!(msg.source_link_layer(), Some([2, 0, 0, 0, 0, 1]));
    }

    #[test]
    fn bad_nd_messages() {
        let src: Ipv6Addr = "fe80::1".parse().unwrap();
        let na = Builder::neighbor_advert(na_flag::SOLICITED, src)
            .target_link_layer([2; 6])
            .finish(src, src);
        let v = Packet::new_checked(&na[..]).unwrap();
        assert!(matches!(
            Message::parse(&v),
            Ok(Message::NeighborAdvert { flags: 0x40, .. })
        ));
        // Truncated body, code not 0, zero-length option, option past the end, not ND.
        assert_eq!(
            Message::parse(&Packet::new_checked(&na[..20]).unwrap()),
            Err(WireError::Truncated)
        );
        let mut c = na.clone();
        c[1] = 1;
        assert_eq!(
            Message::parse(&Packet::new_checked(&c[..]).unwrap()),
            Err(WireError::Malformed)
        );
        let mut z = na.clone();
        z[25] = 0;
        assert_eq!(
            Message::parse(&Packet::new_checked(&z[..]).unwrap()),
            Err(WireError::Malformed)
        );
        let mut o = na.clone();
        o[25] = 2;
        assert_eq!(
            Message::parse(&Packet::new_checked(&o[..]).unwrap()),
            Err(WireError::Truncated)
        );
        let echo = Builder::new(icmp_type::ECHO_REQUEST, &[0, 1, 0, 1]).finish(src, src);
        assert_eq!(
            Message::parse(&Packet::new_checked(&echo[..]).unwrap()),
            Err(WireError::Malformed)
        );
        assert!(Packet::new_checked(&na[..3]).is_err());
        let bad_pfx = [
            3u8, 4, 200, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            0, 0, 0, 0,
        ];
        assert_eq!(options(&bad_pfx).next(), Some(Err(WireError::Malformed)));
    }
}
