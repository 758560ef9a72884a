//! IPv4 headers (RFC 791).

use std::net::Ipv4Addr;

use super::checksum;
use super::{WireError, get_u16, put_u16};

/// Where each field of the header lies (offsets of the 16-bit words, ranges of the
/// addresses).
pub(crate) mod field {
    use std::ops::Range;
    pub const VER_IHL: usize = 0;
    pub const TOTAL_LEN: usize = 2;
    pub const IDENT: usize = 4;
    pub const FLAGS_FRAG: usize = 6;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: usize = 10;
    pub const SRC: Range<usize> = 12..16;
    pub const DST: Range<usize> = 16..20;
}

/// Length of a header without options.
pub const MIN_HEADER_LEN: usize = 20;

/// IP protocol numbers the gateway knows.
pub mod protocol {
    /// ICMP
    pub const ICMP: u8 = 1;
    /// TCP
    pub const TCP: u8 = 6;
    /// UDP
    pub const UDP: u8 = 17;
}

/// A view of an IPv4 packet.
#[derive(Debug)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps `buffer` without checks.
    pub fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// Wraps `buffer`, checking version, header length and total length against the
    /// buffer. Bytes after the total length (Ethernet padding) are allowed.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// The checks of [`Self::new_checked`].
    pub fn check_len(&self) -> Result<(), WireError> {
        let b = self.buffer.as_ref();
        if b.len() < MIN_HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if b[field::VER_IHL] >> 4 != 4 {
            return Err(WireError::Malformed);
        }
        let hl = self.header_len();
        let total = self.total_len() as usize;
        if hl < MIN_HEADER_LEN || total < hl {
            return Err(WireError::Malformed);
        }
        if b.len() < hl || b.len() < total {
            return Err(WireError::Truncated);
        }
        Ok(())
    }

    /// Header length in bytes (IHL * 4).
    #[inline]
    pub fn header_len(&self) -> usize {
        ((self.buffer.as_ref()[field::VER_IHL] & 0x0f) as usize) * 4
    }

    /// Total length field.
    #[inline]
    pub fn total_len(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::TOTAL_LEN)
    }

    /// Identification field.
    pub fn ident(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::IDENT)
    }

    /// Fragment offset in 8-byte units.
    pub fn frag_offset(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::FLAGS_FRAG) & 0x1fff
    }

    /// More-fragments flag.
    pub fn more_frags(&self) -> bool {
        get_u16(self.buffer.as_ref(), field::FLAGS_FRAG) & 0x2000 != 0
    }

    /// Time to live.
    #[inline]
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    /// Protocol number.
    #[inline]
    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[field::PROTOCOL]
    }

    /// Header checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// Source address.
    #[inline]
    pub fn src(&self) -> Ipv4Addr {
        let b = &self.buffer.as_ref()[field::SRC];
        Ipv4Addr::new(b[0], b[1], b[2], b[3])
    }

    /// Destination address.
    #[inline]
    pub fn dst(&self) -> Ipv4Addr {
        let b = &self.buffer.as_ref()[field::DST];
        Ipv4Addr::new(b[0], b[1], b[2], b[3])
    }

    /// True when the header checksum verifies.
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        let b = self.buffer.as_ref();
        let hl = self.header_len();
        match b.first_chunk::<MIN_HEADER_LEN>() {
            // The common header without options, summed with no loop.
            Some(h) if hl == MIN_HEADER_LEN => checksum::verifies_20(h),
            _ => checksum::fold(checksum::sum(&b[..hl])) == 0xffff,
        }
    }

    /// The bytes after the header, up to the total length.
    pub fn payload(&self) -> &[u8] {
        let hl = self.header_len();
        &self.buffer.as_ref()[hl..self.total_len() as usize]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Decrements the TTL and updates the checksum incrementally (RFC 1624). Callers have
    /// checked that the TTL is above 1.
    ///
    /// The TTL is the high byte of the 16-bit word at offset 8, so the word drops by
    /// exactly 0x0100 and RFC 1624 eqn. 3, `HC' = ~(~HC + ~m + m')`, reduces to
    /// `HC' = ~(~HC + 0xfeff)` whatever the word was (`~m + m' = 0xffff - 0x0100`).
    #[inline(always)]
    pub fn decrement_ttl(&mut self) {
        let b = self.buffer.as_mut();
        b[field::TTL] = b[field::TTL].wrapping_sub(1);
        let hc = get_u16(b, field::CHECKSUM);
        put_u16(b, field::CHECKSUM, !checksum::fold(!hc as u32 + 0xfeff));
    }

    /// Sets the source address (checksum not touched).
    pub fn set_src(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::SRC].copy_from_slice(&a.octets());
    }

    /// Sets the destination address (checksum not touched).
    pub fn set_dst(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::DST].copy_from_slice(&a.octets());
    }

    /// Sets the header checksum field.
    #[inline]
    pub fn set_checksum(&mut self, v: u16) {
        put_u16(self.buffer.as_mut(), field::CHECKSUM, v)
    }

    /// Sets the TTL (checksum not touched).
    pub fn set_ttl(&mut self, ttl: u8) {
        self.buffer.as_mut()[field::TTL] = ttl;
    }

    /// Recomputes the header checksum from scratch.
    pub fn fill_checksum(&mut self) {
        let hl = self.header_len();
        let b = self.buffer.as_mut();
        put_u16(b, field::CHECKSUM, 0);
        let c = checksum::checksum(&b[..hl]);
        put_u16(b, field::CHECKSUM, c);
    }

    /// Mutable bytes after the header, up to the total length.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        let total = self.total_len() as usize;
        &mut self.buffer.as_mut()[hl..total]
    }
}

/// Writes a 20-byte header without options into `b` (checksum filled).
pub fn write_header(
    b: &mut [u8],
    total_len: u16,
    ttl: u8,
    protocol: u8,
    src: Ipv4Addr,
    dst: Ipv4Addr,
) {
    let h = &mut b[..MIN_HEADER_LEN];
    h[0] = 0x45;
    h[1] = 0;
    put_u16(h, field::TOTAL_LEN, total_len);
    put_u16(h, field::IDENT, 0);
    put_u16(h, field::FLAGS_FRAG, 0);
    h[field::TTL] = ttl;
    h[field::PROTOCOL] = protocol;
    h[field::SRC].copy_from_slice(&src.octets());
    h[field::DST].copy_from_slice(&dst.octets());
    put_u16(h, field::CHECKSUM, 0);
    let c = checksum::checksum(h);
    put_u16(h, field::CHECKSUM, c);
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{IpNumber, Ipv4Header};

    fn header(ttl: u8) -> Vec<u8> {
        let mut h = Ipv4Header::new(8, ttl, IpNumber::UDP, [10, 0, 0, 1], [192, 0, 2, 10]).unwrap();
        h.header_checksum = h.calc_header_checksum();
        let mut b = h.to_bytes().to_vec();
        b.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        b
    }

    #[test]
    fn fields_and_checksum() {
        let b = header(64);
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.header_len(), 20);
        assert_eq!(p.total_len(), 28);
        assert_eq!(p.ttl(), 64);
        assert_eq!(p.protocol(), protocol::UDP);
        assert_eq!(p.src(), Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(p.dst(), Ipv4Addr::new(192, 0, 2, 10));
        assert!(p.verify_checksum());
        assert_eq!(p.payload(), &[1, 2, 3, 4, 5, 6, 7, 8]);
    }

    #[test]
    fn ttl_decrement_keeps_checksum_valid() {
        for ttl in 2..=255u8 {
            let mut b = header(ttl);
            let mut p = Packet::new_checked(&mut b[..]).unwrap();
            p.decrement_ttl();
            assert_eq!(p.ttl(), ttl - 1);
            assert!(p.verify_checksum(), "ttl {ttl}");
            let expect = header(ttl - 1);
            assert_eq!(b, expect, "byte-exact against a fresh header, ttl {ttl}");
        }
    }

    #[test]
    fn rejects_bad_headers() {
        let b = header(64);
        assert_eq!(
            Packet::new_checked(&b[..19]).unwrap_err(),
            WireError::Truncated
        );
        assert_eq!(
            Packet::new_checked(&b[..27]).unwrap_err(),
            WireError::Truncated
        );
        let mut v6 = b.clone();
        v6[0] = 0x65;
        assert_eq!(
            Packet::new_checked(&v6[..]).unwrap_err(),
            WireError::Malformed
        );
        let mut short_ihl = b.clone();
        short_ihl[0] = 0x44;
        assert_eq!(
            Packet::new_checked(&short_ihl[..]).unwrap_err(),
            WireError::Malformed
        );
        let mut long_ihl = b.clone();
        long_ihl[0] = 0x4f; // 60-byte header in a 28-byte packet
        assert!(Packet::new_checked(&long_ihl[..]).is_err());
        let mut small_total = b;
        small_total[2..4].copy_from_slice(&10u16.to_be_bytes());
        assert_eq!(
            Packet::new_checked(&small_total[..]).unwrap_err(),
            WireError::Malformed
        );
    }

    #[test]
    fn write_header_matches_etherparse() {
        let mut b = [0u8; 20];
        write_header(
            &mut b,
            48,
            64,
            protocol::ICMP,
            Ipv4Addr::new(10, 0, 0, 1),
            Ipv4Addr::new(10, 0, 0, 2),
        );
        let (h, _) = Ipv4Header::from_slice(&b).unwrap();
        assert_eq!(h.total_len, 48);
        assert_eq!(h.header_checksum, h.calc_header_checksum());
    }
}
