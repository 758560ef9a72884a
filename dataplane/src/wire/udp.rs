//! UDP headers (RFC 768).

use super::{WireError, get_u16, put_u16};

/// Where each field of the header lies (byte ranges from the start of the header).
pub mod field {
    use std::ops::Range;
    /// Source port.
    pub const SRC_PORT: Range<usize> = 0..2;
    /// Destination port.
    pub const DST_PORT: Range<usize> = 2..4;
    /// Length of header and payload.
    pub const LENGTH: Range<usize> = 4..6;
    /// Checksum (0: none sent).
    pub const CHECKSUM: Range<usize> = 6..8;
}

/// Length of the header.
pub const HEADER_LEN: usize = 8;

/// A view of a UDP datagram.
#[derive(Debug)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps `buffer` without checks: the getters and setters panic on a buffer shorter
    /// than the header, and [`Self::payload`] on a length field past its end.
    #[inline(always)]
    pub fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// Wraps `buffer`, checking it holds the header and that the length field covers
    /// the header and fits the buffer. Bytes after the length are allowed (padding).
    #[inline(always)]
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// The checks of [`Self::new_checked`].
    #[inline(always)]
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

    /// Source port.
    #[inline(always)]
    pub fn src_port(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::SRC_PORT.start)
    }

    /// Destination port.
    #[inline(always)]
    pub fn dst_port(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::DST_PORT.start)
    }

    /// The length field: header and payload.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::LENGTH.start)
    }

    /// The checksum field.
    #[inline(always)]
    pub fn checksum(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::CHECKSUM.start)
    }

    /// The payload, up to the length field.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.len() as usize]
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the source port (checksum not touched).
    #[inline(always)]
    pub fn set_src_port(&mut self, v: u16) {
        put_u16(self.buffer.as_mut(), field::SRC_PORT.start, v)
    }

    /// Sets the destination port (checksum not touched).
    #[inline(always)]
    pub fn set_dst_port(&mut self, v: u16) {
        put_u16(self.buffer.as_mut(), field::DST_PORT.start, v)
    }

    /// Sets the length field.
    pub fn set_len(&mut self, v: u16) {
        put_u16(self.buffer.as_mut(), field::LENGTH.start, v)
    }

    /// Sets the checksum field.
    #[inline(always)]
    pub fn set_checksum(&mut self, v: u16) {
        put_u16(self.buffer.as_mut(), field::CHECKSUM.start, v)
    }

    /// The payload, up to the length field, mutable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let len = self.len() as usize;
        &mut self.buffer.as_mut()[HEADER_LEN..len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::UdpHeader;

    fn datagram(payload: &[u8]) -> Vec<u8> {
        let h = UdpHeader {
            source_port: 40000,
            destination_port: 53,
            length: (HEADER_LEN + payload.len()) as u16,
            checksum: 0xcafe,
        };
        let mut v = h.to_bytes().to_vec();
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn getters_read_what_etherparse_wrote() {
        let mut v = datagram(b"query");
        v.extend_from_slice(&[0, 0]); // padding after the datagram
        let u = Packet::new_checked(&v[..]).unwrap();
        assert_eq!((u.src_port(), u.dst_port()), (40000, 53));
        assert_eq!((u.len(), u.checksum()), (13, 0xcafe));
        assert_eq!(u.payload(), b"query");
    }

    #[test]
    fn setters_write_what_etherparse_reads() {
        let mut v = datagram(b"query");
        let mut u = Packet::new_checked(&mut v[..]).unwrap();
        u.set_src_port(1024);
        u.set_dst_port(5353);
        u.set_checksum(0);
        u.payload_mut().copy_from_slice(b"QUERY");
        u.set_len(12);
        let (h, _) = UdpHeader::from_slice(&v).unwrap();
        assert_eq!(
            h,
            UdpHeader {
                source_port: 1024,
                destination_port: 5353,
                length: 12,
                checksum: 0
            }
        );
        assert_eq!(&v[8..], b"QUERY");
    }

    #[test]
    fn new_checked_validates_lengths() {
        let v = datagram(b"query");
        assert_eq!(
            Packet::new_checked(&v[..7]).unwrap_err(),
            WireError::Truncated
        );
        assert_eq!(
            Packet::new_checked(&v[..12]).unwrap_err(),
            WireError::Truncated,
            "length field says 13"
        );
        let mut bad = v.clone();
        bad[field::LENGTH].copy_from_slice(&7u16.to_be_bytes());
        assert_eq!(
            Packet::new_checked(&bad[..]).unwrap_err(),
            WireError::Malformed
        );
    }
}
