//! TCP headers (RFC 9293): the fields the gateway reads and rewrites.

use super::{WireError, get_u16, put_u16};

mod field {
    pub const SRC_PORT: usize = 0;
    pub const DST_PORT: usize = 2;
    pub const SEQ: usize = 4;
    pub const ACK: usize = 8;
    pub const DATA_OFF: usize = 12;
    pub const FLAGS: usize = 13;
    pub const CHECKSUM: usize = 16;
}

/// Length of a header without options.
pub const MIN_HEADER_LEN: usize = 20;
/// Offset of the checksum field.
pub const CHECKSUM_AT: usize = field::CHECKSUM;

/// TCP flag bits.
pub mod flags {
    /// FIN
    pub const FIN: u8 = 0x01;
    /// SYN
    pub const SYN: u8 = 0x02;
    /// RST
    pub const RST: u8 = 0x04;
    /// PSH
    pub const PSH: u8 = 0x08;
    /// ACK
    pub const ACK: u8 = 0x10;
}

/// A view of a TCP segment (header and payload).
#[derive(Debug)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps `buffer`, checking the fixed header and the data offset.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let b = buffer.as_ref();
        if b.len() < MIN_HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let hl = (b[field::DATA_OFF] >> 4) as usize * 4;
        if hl < MIN_HEADER_LEN {
            return Err(WireError::Malformed);
        }
        if hl > b.len() {
            return Err(WireError::Truncated);
        }
        Ok(Packet { buffer })
    }

    /// Source port.
    pub fn src_port(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::SRC_PORT)
    }

    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::DST_PORT)
    }

    /// Sequence number.
    pub fn seq(&self) -> u32 {
        let b = self.buffer.as_ref();
        u32::from_be_bytes([
            b[field::SEQ],
            b[field::SEQ + 1],
            b[field::SEQ + 2],
            b[field::SEQ + 3],
        ])
    }

    /// Acknowledgement number.
    pub fn ack(&self) -> u32 {
        let b = self.buffer.as_ref();
        u32::from_be_bytes([
            b[field::ACK],
            b[field::ACK + 1],
            b[field::ACK + 2],
            b[field::ACK + 3],
        ])
    }

    /// Header length in bytes.
    pub fn header_len(&self) -> usize {
        (self.buffer.as_ref()[field::DATA_OFF] >> 4) as usize * 4
    }

    /// The flag bits.
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[field::FLAGS]
    }

    /// The payload after the header.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
}

/// Writes a 20-byte header with no options at `b[..20]`; the checksum is left zero.
pub fn write_header(
    b: &mut [u8],
    src_port: u16,
    dst_port: u16,
    seq: u32,
    ack: u32,
    flag_bits: u8,
    window: u16,
) {
    let h = &mut b[..MIN_HEADER_LEN];
    put_u16(h, field::SRC_PORT, src_port);
    put_u16(h, field::DST_PORT, dst_port);
    h[field::SEQ..field::SEQ + 4].copy_from_slice(&seq.to_be_bytes());
    h[field::ACK..field::ACK + 4].copy_from_slice(&ack.to_be_bytes());
    h[field::DATA_OFF] = (MIN_HEADER_LEN as u8 / 4) << 4;
    h[field::FLAGS] = flag_bits;
    put_u16(h, 14, window);
    put_u16(h, field::CHECKSUM, 0);
    put_u16(h, 18, 0);
}
