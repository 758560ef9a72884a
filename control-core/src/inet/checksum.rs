//! The Internet checksum (RFC 1071): a one's-complement sum of 16-bit big-endian words,
//! with the IPv4 and IPv6 pseudo-headers of UDP and ICMPv6.

use core::net::{Ipv4Addr, Ipv6Addr};

/// Adds `data` as big-endian 16-bit words (an odd last byte padded with zero) to `acc`.
pub fn sum(data: &[u8], mut acc: u64) -> u64 {
    let mut chunks = data.chunks_exact(2);
    for w in &mut chunks {
        acc += u64::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [last] = chunks.remainder() {
        acc += u64::from(u16::from_be_bytes([*last, 0]));
    }
    acc
}

/// Folds a sum to 16 bits and complements it.
pub fn fold(mut acc: u64) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// The checksum of `data` (an IPv4 header with its checksum field zero, say). Data that
/// holds a correct checksum gives 0.
pub fn checksum(data: &[u8]) -> u16 {
    fold(sum(data, 0))
}

/// The sum of the IPv4 pseudo-header (RFC 768).
pub fn pseudo_v4(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, len: usize) -> u64 {
    let acc = sum(&src.octets(), 0);
    let acc = sum(&dst.octets(), acc);
    acc + u64::from(protocol) + len as u64
}

/// The sum of the IPv6 pseudo-header (RFC 8200 section 8.1).
pub fn pseudo_v6(src: Ipv6Addr, dst: Ipv6Addr, next_header: u8, len: usize) -> u64 {
    let acc = sum(&src.octets(), 0);
    let acc = sum(&dst.octets(), acc);
    acc + u64::from(next_header) + len as u64
}

/// The checksum of an upper-layer packet (`data`, its checksum field zero) over IPv6:
/// UDP and ICMPv6. A UDP result of 0 is sent as 0xffff (RFC 8200 section 8.1); callers
/// that build UDP do that.
pub fn upper_v6(src: Ipv6Addr, dst: Ipv6Addr, next_header: u8, data: &[u8]) -> u16 {
    fold(sum(data, pseudo_v6(src, dst, next_header, data.len())))
}

/// The same over IPv4 (UDP).
pub fn upper_v4(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, data: &[u8]) -> u16 {
    fold(sum(data, pseudo_v4(src, dst, protocol, data.len())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example_and_odd_lengths() {
        // RFC 1071 section 3: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2.
        assert_eq!(
            checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            !0xddf2
        );
        assert_eq!(checksum(&[0xab]), !0xab00);
        assert_eq!(checksum(&[]), 0xffff);
        // A header holding its checksum sums to zero.
        let mut h = [
            0x45, 0, 0, 0x1c, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        let c = checksum(&h);
        h[10..12].copy_from_slice(&c.to_be_bytes());
        assert_eq!(checksum(&h), 0);
    }
}
