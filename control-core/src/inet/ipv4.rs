//! The IPv4 header (RFC 791), as far as the DHCPv4 engines need it: the view of a punted
//! datagram (addresses, protocol, fragments, the header checksum) and a builder for the
//! datagrams they send. Options are skipped, never interpreted.

use core::net::Ipv4Addr;

use super::checksum;
use crate::wire::{WireError, get_u16, put_u16};

/// Protocol numbers.
pub mod protocol {
    /// UDP.
    pub const UDP: u8 = 17;
}

mod field {
    use core::ops::Range;
    pub const VER_IHL: usize = 0;
    pub const TOS: usize = 1;
    pub const LENGTH: usize = 2;
    pub const IDENT: usize = 4;
    pub const FLAGS_FRAG: usize = 6;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: usize = 10;
    pub const SRC: Range<usize> = 12..16;
    pub const DST: Range<usize> = 16..20;
}

/// The header length without options.
pub const HEADER_LEN: usize = 20;

/// A view of an IPv4 datagram.
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

    /// Version 4, a header length of at least 20 within the buffer, and a Total Length
    /// between the header length and the buffer's (bytes past it are link padding).
    pub fn check_len(&self) -> Result<(), WireError> {
        let b = self.buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if b[field::VER_IHL] >> 4 != 4 {
            return Err(WireError::Malformed);
        }
        let ihl = self.header_len();
        if ihl < HEADER_LEN {
            return Err(WireError::Malformed);
        }
        let total = self.total_len() as usize;
        if ihl > b.len() || total > b.len() {
            return Err(WireError::Truncated);
        }
        if total < ihl {
            return Err(WireError::Malformed);
        }
        Ok(())
    }

    /// The header length in bytes (IHL * 4).
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }

    /// Total Length.
    pub fn total_len(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::LENGTH)
    }

    /// The type-of-service byte.
    pub fn tos(&self) -> u8 {
        self.buffer.as_ref()[field::TOS]
    }

    /// Time to live.
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    /// The protocol of the payload.
    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[field::PROTOCOL]
    }

    /// Whether this is a fragment (More Fragments set, or a non-zero offset).
    pub fn is_fragment(&self) -> bool {
        get_u16(self.buffer.as_ref(), field::FLAGS_FRAG) & 0x3fff != 0
    }

    /// The source address.
    pub fn src_addr(&self) -> Ipv4Addr {
        let b = self.buffer.as_ref();
        Ipv4Addr::new(b[12], b[13], b[14], b[15])
    }

    /// The destination address.
    pub fn dst_addr(&self) -> Ipv4Addr {
        let b = self.buffer.as_ref();
        Ipv4Addr::new(b[16], b[17], b[18], b[19])
    }

    /// Whether the header checksum is right.
    pub fn checksum_ok(&self) -> bool {
        checksum::checksum(&self.buffer.as_ref()[..self.header_len()]) == 0
    }

    /// The payload (after options, up to Total Length).
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..self.total_len() as usize]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the TTL (the checksum is not updated: call [`Self::fill_checksum`]).
    pub fn set_ttl(&mut self, v: u8) {
        self.buffer.as_mut()[field::TTL] = v;
    }

    /// Recomputes the header checksum.
    pub fn fill_checksum(&mut self) {
        let n = self.header_len();
        let b = self.buffer.as_mut();
        put_u16(b, field::CHECKSUM, 0);
        let c = checksum::checksum(&b[..n]);
        put_u16(b, field::CHECKSUM, c);
    }
}

/// An IPv4 header of 20 bytes with `payload_len` bytes to follow, the checksum filled.
pub fn header(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    protocol: u8,
    ttl: u8,
    payload_len: usize,
) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[field::VER_IHL] = 0x45;
    put_u16(
        &mut h,
        field::LENGTH,
        (HEADER_LEN + payload_len).min(0xffff) as u16,
    );
    put_u16(&mut h, field::IDENT, 0);
    h[field::TTL] = ttl;
    h[field::PROTOCOL] = protocol;
    h[field::SRC].copy_from_slice(&src.octets());
    h[field::DST].copy_from_slice(&dst.octets());
    let c = checksum::checksum(&h);
    put_u16(&mut h, field::CHECKSUM, c);
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_through_etherparse() {
        let h = header(
            Ipv4Addr::new(100, 64, 0, 1),
            Ipv4Addr::BROADCAST,
            protocol::UDP,
            64,
            8,
        );
        let mut d = h.to_vec();
        d.extend_from_slice(&[0; 8]);
        let (e, _) = etherparse::Ipv4Header::from_slice(&d).unwrap();
        assert_eq!(e.header_checksum, e.calc_header_checksum());
        assert_eq!(e.total_len, 28);
        assert_eq!(e.protocol, etherparse::IpNumber::UDP);
        let p = Packet::new_checked(&d[..]).unwrap();
        assert!(p.checksum_ok());
        assert!(!p.is_fragment());
        assert_eq!((p.ttl(), p.protocol(), p.payload().len()), (64, 17, 8));
        assert_eq!(p.src_addr(), Ipv4Addr::new(100, 64, 0, 1));
        assert_eq!(p.dst_addr(), Ipv4Addr::BROADCAST);
        let mut m = Packet::new_unchecked(d.clone());
        m.set_ttl(1);
        assert!(!m.checksum_ok());
        m.fill_checksum();
        assert!(m.checksum_ok());
    }

    #[test]
    fn bad_headers_are_refused() {
        let mut d = header(Ipv4Addr::LOCALHOST, Ipv4Addr::LOCALHOST, 17, 1, 0).to_vec();
        assert!(Packet::new_checked(&d[..19]).is_err());
        d[0] = 0x65;
        assert_eq!(
            Packet::new_checked(&d[..]).err(),
            Some(WireError::Malformed)
        );
        d[0] = 0x44;
        assert_eq!(
            Packet::new_checked(&d[..]).err(),
            Some(WireError::Malformed)
        );
        d[0] = 0x46;
        assert_eq!(
            Packet::new_checked(&d[..]).err(),
            Some(WireError::Truncated)
        );
        d[0] = 0x45;
        d[3] = 21;
        assert_eq!(
            Packet::new_checked(&d[..]).err(),
            Some(WireError::Truncated)
        );
        d[3] = 19;
        assert_eq!(
            Packet::new_checked(&d[..]).err(),
            Some(WireError::Malformed)
        );
        d[3] = 20;
        d[6] = 0x20; // More Fragments
        assert!(Packet::new_checked(&d[..]).unwrap().is_fragment());
    }
}
