//! TCP headers (RFC 9293): the fields the gateway reads and rewrites.

use super::checksum;
use super::{WireError, get_u16, put_u16};

/// Where each field of the header lies (byte ranges from the start of the header).
pub mod field {
    use std::ops::Range;
    /// Source port.
    pub const SRC_PORT: Range<usize> = 0..2;
    /// Destination port.
    pub const DST_PORT: Range<usize> = 2..4;
    /// Sequence number.
    pub const SEQ_NUM: Range<usize> = 4..8;
    /// Acknowledgement number.
    pub const ACK_NUM: Range<usize> = 8..12;
    /// Data offset (high nibble, in 32-bit words).
    pub const DATA_OFF: usize = 12;
    /// Flag bits.
    pub const FLAGS: usize = 13;
    /// Receive window.
    pub const WINDOW: Range<usize> = 14..16;
    /// Checksum (over the pseudo-header, header and payload).
    pub const CHECKSUM: Range<usize> = 16..18;
    /// Urgent pointer.
    pub const URGENT: Range<usize> = 18..20;
}

/// Length of a header without options.
pub const MIN_HEADER_LEN: usize = 20;

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
    /// Wraps `buffer` without checks: the getters and setters panic on a buffer shorter
    /// than the fixed header, and [`Self::payload`] on a data offset past its end.
    #[inline(always)]
    pub fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// Wraps `buffer`, checking the fixed header and the data offset.
    #[inline(always)]
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// The checks of [`Self::new_checked`]: the fixed header fits, the data offset is at
    /// least the fixed header and the header it declares fits.
    #[inline(always)]
    pub fn check_len(&self) -> Result<(), WireError> {
        let b = self.buffer.as_ref();
        if b.len() < MIN_HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let hl = self.header_len();
        if hl < MIN_HEADER_LEN {
            return Err(WireError::Malformed);
        }
        if hl > b.len() {
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

    /// Sequence number.
    pub fn seq(&self) -> u32 {
        get_u32(self.buffer.as_ref(), field::SEQ_NUM.start)
    }

    /// Acknowledgement number.
    pub fn ack(&self) -> u32 {
        get_u32(self.buffer.as_ref(), field::ACK_NUM.start)
    }

    /// Header length in bytes (the data offset times 4), as the header says.
    #[inline(always)]
    pub fn header_len(&self) -> usize {
        (self.buffer.as_ref()[field::DATA_OFF] >> 4) as usize * 4
    }

    /// The flag bits.
    #[inline(always)]
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[field::FLAGS]
    }

    /// Receive window.
    pub fn window(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::WINDOW.start)
    }

    /// The checksum field.
    pub fn checksum(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::CHECKSUM.start)
    }

    /// Urgent pointer.
    pub fn urgent(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::URGENT.start)
    }

    /// The payload after the header.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
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

    /// Sets the sequence number.
    pub fn set_seq(&mut self, v: u32) {
        self.buffer.as_mut()[field::SEQ_NUM].copy_from_slice(&v.to_be_bytes());
    }

    /// Sets the acknowledgement number.
    pub fn set_ack(&mut self, v: u32) {
        self.buffer.as_mut()[field::ACK_NUM].copy_from_slice(&v.to_be_bytes());
    }

    /// Sets the header length in bytes (a multiple of 4, 20..=60); the reserved bits
    /// are cleared.
    pub fn set_header_len(&mut self, len: usize) {
        self.buffer.as_mut()[field::DATA_OFF] = ((len / 4) as u8) << 4;
    }

    /// Sets the flag bits.
    pub fn set_flags(&mut self, v: u8) {
        self.buffer.as_mut()[field::FLAGS] = v;
    }

    /// Sets the receive window.
    pub fn set_window(&mut self, v: u16) {
        put_u16(self.buffer.as_mut(), field::WINDOW.start, v)
    }

    /// Sets the checksum field.
    #[inline(always)]
    pub fn set_checksum(&mut self, v: u16) {
        put_u16(self.buffer.as_mut(), field::CHECKSUM.start, v)
    }

    /// Sets the urgent pointer.
    pub fn set_urgent(&mut self, v: u16) {
        put_u16(self.buffer.as_mut(), field::URGENT.start, v)
    }

    /// The payload after the header, mutable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        &mut self.buffer.as_mut()[hl..]
    }

    /// ACC-5: lowers the MSS option of a SYN or SYN-ACK to `max` when it is larger,
    /// updating the checksum incrementally (RFC 1624). Returns true if it changed the
    /// segment. Options that do not parse end the search and leave the segment alone.
    /// Needs [`Self::check_len`] to have passed.
    pub fn clamp_mss(&mut self, max: u16) -> bool {
        if self.flags() & flags::SYN == 0 {
            return false;
        }
        let hl = self.header_len();
        let b = self.buffer.as_mut();
        let mut at = MIN_HEADER_LEN;
        while at < hl {
            match b[at] {
                option::END => break,
                option::NOP => at += 1,
                kind => {
                    let len = match b.get(at + 1) {
                        Some(&l) if l >= 2 && at + l as usize <= hl => l as usize,
                        _ => break,
                    };
                    if kind == option::MSS && len == option::MSS_LEN {
                        let value = at + 2;
                        if get_u16(b, value) <= max {
                            return false;
                        }
                        // The value may sit at an odd offset: update over the one or two
                        // 16-bit words of the segment it covers.
                        let (first, end) = (value & !1, (value + 3) & !1);
                        let old = [get_u16(b, first), get_u16(b, end - 2)];
                        put_u16(b, value, max);
                        let mut c = get_u16(b, field::CHECKSUM.start);
                        c = checksum::update16(c, old[0], get_u16(b, first));
                        if end - first == 4 {
                            c = checksum::update16(c, old[1], get_u16(b, end - 2));
                        }
                        put_u16(b, field::CHECKSUM.start, c);
                        return true;
                    }
                    at += len;
                }
            }
        }
        false
    }
}

/// TCP option kinds (RFC 9293 §3.2).
pub mod option {
    /// End of the option list.
    pub const END: u8 = 0;
    /// No operation (padding).
    pub const NOP: u8 = 1;
    /// Maximum segment size.
    pub const MSS: u8 = 2;
    /// Length of the MSS option.
    pub const MSS_LEN: usize = 4;
}

#[inline(always)]
fn get_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
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
    let mut t = Packet::new_unchecked(&mut b[..MIN_HEADER_LEN]);
    t.set_src_port(src_port);
    t.set_dst_port(dst_port);
    t.set_seq(seq);
    t.set_ack(ack);
    t.set_header_len(MIN_HEADER_LEN);
    t.set_flags(flag_bits);
    t.set_window(window);
    t.set_checksum(0);
    t.set_urgent(0);
}

#[cfg(test)]
mod tests {

    /// A SYN with MSS 1460 (at an even or, after one NOP, an odd offset) is clamped to
    /// 1452 with a checksum that verifies, recomputed from scratch.
    #[test]
    fn clamps_mss_with_a_checksum_that_verifies() {
        use crate::wire::checksum::pseudo_header_sum;
        use std::net::Ipv4Addr;
        let (src, dst) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(192, 0, 2, 1));
        let build = |opts: &[u8], syn: bool| {
            let mut seg = vec![0u8; MIN_HEADER_LEN];
            write_header(
                &mut seg,
                1000,
                80,
                7,
                0,
                if syn { flags::SYN } else { flags::ACK },
                65535,
            );
            seg.extend_from_slice(opts);
            seg.extend_from_slice(b"data");
            Packet::new_unchecked(&mut seg[..]).set_header_len(MIN_HEADER_LEN + opts.len());
            let c = crate::wire::checksum::fold(crate::wire::checksum::add(
                pseudo_header_sum(src, dst, 6, seg.len() as u16),
                crate::wire::checksum::sum(&seg),
            ));
            Packet::new_unchecked(&mut seg[..]).set_checksum(!c);
            seg
        };
        let verifies = |seg: &[u8]| {
            crate::wire::checksum::fold(crate::wire::checksum::add(
                pseudo_header_sum(src, dst, 6, seg.len() as u16),
                crate::wire::checksum::sum(seg),
            )) == 0xffff
        };
        let even = [2, 4, 0x05, 0xb4, 1, 3, 3, 7]; // MSS 1460, NOP, window scale 7
        let odd = [1, 2, 4, 0x05, 0xb4, 3, 3, 7]; // NOP, MSS 1460, window scale 7
        for opts in [even, odd] {
            let mut seg = build(&opts, true);
            assert!(verifies(&seg));
            assert!(Packet::new_unchecked(&mut seg[..]).clamp_mss(1452));
            let at = opts.iter().position(|&k| k == 2).unwrap() + MIN_HEADER_LEN;
            assert_eq!(&seg[at..at + 4], &[2, 4, 0x05, 0xac]);
            assert!(verifies(&seg));
            let mut again = seg.clone();
            assert!(!Packet::new_unchecked(&mut again[..]).clamp_mss(1452));
            assert_eq!(again, seg);
            // Not a SYN: untouched.
            let mut ack = build(&opts, false);
            let before = ack.clone();
            assert!(!Packet::new_unchecked(&mut ack[..]).clamp_mss(1452));
            assert_eq!(ack, before);
        }
        // An option length running past the header: left alone.
        let mut bad = build(&[3, 9, 0, 0, 2, 4, 5, 0xb4], true);
        let before = bad.clone();
        assert!(!Packet::new_unchecked(&mut bad[..]).clamp_mss(1452));
        assert_eq!(bad, before);
    }
    use super::*;
    use etherparse::{TcpHeader, TcpOptionElement};

    fn segment(payload: &[u8]) -> Vec<u8> {
        let mut h = TcpHeader::new(40001, 80, 0x0102_0304, 4096);
        h.acknowledgment_number = 0xa0b0_c0d0;
        h.ack = true;
        h.psh = true;
        h.urgent_pointer = 7;
        h.set_options(&[TcpOptionElement::MaximumSegmentSize(1460)])
            .unwrap();
        h.checksum = 0xbeef;
        let mut v = h.to_bytes().to_vec();
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn getters_read_what_etherparse_wrote() {
        let v = segment(b"data");
        let t = Packet::new_checked(&v[..]).unwrap();
        assert_eq!(t.src_port(), 40001);
        assert_eq!(t.dst_port(), 80);
        assert_eq!(t.seq(), 0x0102_0304);
        assert_eq!(t.ack(), 0xa0b0_c0d0);
        assert_eq!(t.header_len(), 24, "one 4-byte option");
        assert_eq!(t.flags(), flags::ACK | flags::PSH);
        assert_eq!(t.window(), 4096);
        assert_eq!(t.checksum(), 0xbeef);
        assert_eq!(t.urgent(), 7);
        assert_eq!(t.payload(), b"data");
    }

    #[test]
    fn setters_write_what_etherparse_reads() {
        let mut v = segment(b"data");
        let mut t = Packet::new_checked(&mut v[..]).unwrap();
        t.set_src_port(1024);
        t.set_dst_port(443);
        t.set_seq(9);
        t.set_ack(10);
        t.set_flags(flags::SYN | flags::ACK);
        t.set_window(512);
        t.set_checksum(0x1234);
        t.set_urgent(0);
        t.payload_mut().copy_from_slice(b"DATA");
        let (h, rest) = TcpHeader::from_slice(&v).unwrap();
        assert_eq!((h.source_port, h.destination_port), (1024, 443));
        assert_eq!((h.sequence_number, h.acknowledgment_number), (9, 10));
        assert!(h.syn && h.ack && !h.psh && !h.fin && !h.rst);
        assert_eq!(
            (h.window_size, h.checksum, h.urgent_pointer),
            (512, 0x1234, 0)
        );
        assert_eq!(h.header_len(), 24, "options kept");
        assert_eq!(rest, b"DATA");
    }

    #[test]
    fn write_header_is_byte_exact() {
        let mut b = [0xffu8; 20];
        write_header(&mut b, 80, 40001, 5, 6, flags::RST | flags::ACK, 0);
        let mut h = TcpHeader::new(80, 40001, 5, 0);
        h.acknowledgment_number = 6;
        h.rst = true;
        h.ack = true;
        assert_eq!(&b[..], &h.to_bytes()[..]);
    }

    #[test]
    fn new_checked_validates_lengths() {
        let v = segment(b"");
        assert_eq!(
            Packet::new_checked(&v[..19]).unwrap_err(),
            WireError::Truncated
        );
        // The header declares 24 bytes; 22 are there.
        assert_eq!(
            Packet::new_checked(&v[..22]).unwrap_err(),
            WireError::Truncated
        );
        let mut bad = v.clone();
        bad[field::DATA_OFF] = 4 << 4;
        assert_eq!(
            Packet::new_checked(&bad[..]).unwrap_err(),
            WireError::Malformed
        );
        assert!(Packet::new_checked(&v[..]).is_ok());
    }
}
