//! The UDP header (RFC 768): the view of a punted datagram's UDP part, its checksum over
//! either family's pseudo-header, and builders for the IPv4 and IPv6 datagrams the DHCP
//! engines send.

use core::net::{Ipv4Addr, Ipv6Addr};

use super::{checksum, ipv4, ipv6};
use crate::wire::{WireError, get_u16, put_u16};

mod field {
    pub const SRC_PORT: usize = 0;
    pub const DST_PORT: usize = 2;
    pub const LENGTH: usize = 4;
    pub const CHECKSUM: usize = 6;
}

/// The header length.
pub const HEADER_LEN: usize = 8;

/// The UDP protocol / next-header number.
pub const PROTOCOL: u8 = 17;

/// A view of a UDP datagram.
#[derive(Debug, Clone)]
pub struct Datagram<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Datagram<T> {
    /// Wraps `buffer` without checks.
    pub fn new_unchecked(buffer: T) -> Self {
        Datagram { buffer }
    }

    /// Wraps `buffer`, checking [`Self::check_len`].
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let d = Self::new_unchecked(buffer);
        d.check_len()?;
        Ok(d)
    }

    /// A header, and a Length of at least 8 within the buffer.
    pub fn check_len(&self) -> Result<(), WireError> {
        let b = self.buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let len = self.len() as usize;
        if len < HEADER_LEN {
            return Err(WireError::Malformed);
        }
        if len > b.len() {
            return Err(WireError::Truncated);
        }
        Ok(())
    }

    /// The source port.
    pub fn src_port(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::SRC_PORT)
    }

    /// The destination port.
    pub fn dst_port(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::DST_PORT)
    }

    /// The Length field (header and payload).
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::LENGTH)
    }

    /// The Checksum field (0 over IPv4: none sent).
    pub fn checksum(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// The payload, up to Length.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.len() as usize]
    }

    /// Whether the checksum is right over IPv4 (a zero checksum means none was sent).
    pub fn checksum_ok_v4(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        let d = &self.buffer.as_ref()[..self.len() as usize];
        self.checksum() == 0
            || checksum::fold(checksum::sum(
                d,
                checksum::pseudo_v4(src, dst, PROTOCOL, d.len()),
            )) == 0
    }

    /// Whether the checksum is right over IPv6 (where it is mandatory).
    pub fn checksum_ok_v6(&self, src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        let d = &self.buffer.as_ref()[..self.len() as usize];
        self.checksum() != 0
            && checksum::fold(checksum::sum(
                d,
                checksum::pseudo_v6(src, dst, PROTOCOL, d.len()),
            )) == 0
    }
}

fn udp(sport: u16, dport: u16, payload: &[u8], sum: impl FnOnce(&[u8]) -> u16) -> Vec<u8> {
    let len = (HEADER_LEN + payload.len()).min(0xffff);
    let mut u = Vec::with_capacity(len);
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&(len as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(&payload[..len - HEADER_LEN]);
    let c = match sum(&u) {
        0 => 0xffff,
        c => c,
    };
    put_u16(&mut u, field::CHECKSUM, c);
    u
}

/// An IPv4 datagram (TTL `ttl`) carrying a UDP datagram with `payload`, both checksums
/// filled.
pub fn ipv4_datagram(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    sport: u16,
    dport: u16,
    ttl: u8,
    payload: &[u8],
) -> Vec<u8> {
    let u = udp(sport, dport, payload, |d| {
        checksum::upper_v4(src, dst, PROTOCOL, d)
    });
    let mut p = Vec::with_capacity(ipv4::HEADER_LEN + u.len());
    p.extend_from_slice(&ipv4::header(src, dst, PROTOCOL, ttl, u.len()));
    p.extend_from_slice(&u);
    p
}

/// An IPv6 packet (hop limit `hop_limit`) carrying a UDP datagram with `payload`.
pub fn ipv6_datagram(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    sport: u16,
    dport: u16,
    hop_limit: u8,
    payload: &[u8],
) -> Vec<u8> {
    let u = udp(sport, dport, payload, |d| {
        checksum::upper_v6(src, dst, PROTOCOL, d)
    });
    ipv6::packet(src, dst, PROTOCOL, hop_limit, &u)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datagrams_check_out_with_etherparse() {
        let (s, d) = (Ipv4Addr::new(100, 64, 0, 1), Ipv4Addr::new(100, 64, 0, 9));
        let p = ipv4_datagram(s, d, 67, 68, 64, b"hello");
        let e = etherparse::SlicedPacket::from_ip(&p).unwrap();
        let Some(etherparse::TransportSlice::Udp(u)) = e.transport else {
            panic!("not udp")
        };
        let eh = etherparse::Ipv4Header::from_slice(&p).unwrap().0;
        assert_eq!(
            u.checksum(),
            u.to_header().calc_checksum_ipv4(&eh, b"hello").unwrap()
        );
        assert_eq!((u.source_port(), u.destination_port()), (67, 68));
        let v = Datagram::new_checked(&p[20..]).unwrap();
        assert!(v.checksum_ok_v4(s, d));
        assert!(!v.checksum_ok_v4(s, Ipv4Addr::BROADCAST));
        assert_eq!(v.payload(), b"hello");

        let (s6, d6): (Ipv6Addr, Ipv6Addr) =
            ("fe80::1".parse().unwrap(), "fe80::2".parse().unwrap());
        let p6 = ipv6_datagram(s6, d6, 547, 546, 255, b"x");
        let eh = etherparse::Ipv6Header::from_slice(&p6).unwrap().0;
        let u = Datagram::new_checked(&p6[40..]).unwrap();
        let eu = etherparse::UdpHeader::from_slice(&p6[40..]).unwrap().0;
        assert_eq!(eu.checksum, eu.calc_checksum_ipv6(&eh, b"x").unwrap());
        assert!(u.checksum_ok_v6(s6, d6));
        assert_eq!((eh.hop_limit, eh.payload_length), (255, 9));
    }

    #[test]
    fn short_and_lying_lengths() {
        assert_eq!(
            Datagram::new_checked(&[0u8; 7][..]).err(),
            Some(WireError::Truncated)
        );
        assert_eq!(
            Datagram::new_checked(&[0, 1, 0, 2, 0, 7, 0, 0][..]).err(),
            Some(WireError::Malformed)
        );
        assert_eq!(
            Datagram::new_checked(&[0, 1, 0, 2, 0, 9, 0, 0][..]).err(),
            Some(WireError::Truncated)
        );
        let d = Datagram::new_checked(&[0, 1, 0, 2, 0, 8, 0, 0, 0xee][..]).unwrap();
        assert_eq!(d.payload(), b"");
    }
}
