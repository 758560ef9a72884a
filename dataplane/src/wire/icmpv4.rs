//! ICMPv4 (RFC 792): echo and the error messages the gateway sends.

use super::checksum;
use super::{WireError, put_u16};

/// Length of the fixed ICMP header (type, code, checksum, rest-of-header).
pub const HEADER_LEN: usize = 8;

/// ICMP message types the gateway handles.
pub mod kind {
    /// Echo reply
    pub const ECHO_REPLY: u8 = 0;
    /// Destination unreachable
    pub const DEST_UNREACHABLE: u8 = 3;
    /// Echo request
    pub const ECHO_REQUEST: u8 = 8;
    /// Time exceeded
    pub const TIME_EXCEEDED: u8 = 11;

    /// True for the error message types, about which no error is ever sent (RFC 1812
    /// 4.3.2.7).
    pub fn is_error(t: u8) -> bool {
        matches!(t, 3 | 4 | 5 | 11 | 12)
    }
}

/// A view of an ICMPv4 message.
#[derive(Debug)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps `buffer`, checking it holds the fixed header.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        if buffer.as_ref().len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        Ok(Packet { buffer })
    }

    /// Message type.
    pub fn kind(&self) -> u8 {
        self.buffer.as_ref()[0]
    }

    /// Message code.
    pub fn code(&self) -> u8 {
        self.buffer.as_ref()[1]
    }

    /// True when the checksum over the whole message verifies.
    pub fn verify_checksum(&self) -> bool {
        checksum::fold(checksum::sum(self.buffer.as_ref())) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Turns an echo request into its reply (type 8 -> 0), updating the checksum
    /// incrementally.
    pub fn make_echo_reply(&mut self) {
        let b = self.buffer.as_mut();
        let old = u16::from_be_bytes([b[0], b[1]]);
        b[0] = kind::ECHO_REPLY;
        let new = u16::from_be_bytes([b[0], b[1]]);
        let c = checksum::update16(u16::from_be_bytes([b[2], b[3]]), old, new);
        put_u16(b, 2, c);
    }
}

/// Writes an ICMP error header (type, code, zero rest-of-header) in front of the quoted
/// datagram already in `msg[HEADER_LEN..]`, and fills the checksum over the whole message.
pub fn write_error(msg: &mut [u8], kind: u8, code: u8) {
    msg[0] = kind;
    msg[1] = code;
    msg[2..HEADER_LEN].fill(0);
    let c = checksum::checksum(msg);
    put_u16(msg, 2, c);
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{Icmpv4Header, Icmpv4Type, icmpv4::TimeExceededCode};

    #[test]
    fn echo_reply_checksum() {
        let req = Icmpv4Header::with_checksum(
            Icmpv4Type::EchoRequest(etherparse::IcmpEchoHeader { id: 7, seq: 9 }),
            b"hello",
        );
        let mut b = req.to_bytes().to_vec();
        b.extend_from_slice(b"hello");
        let mut p = Packet::new_checked(&mut b[..]).unwrap();
        assert!(p.verify_checksum());
        p.make_echo_reply();
        assert!(p.verify_checksum());
        let expect = Icmpv4Header::with_checksum(
            Icmpv4Type::EchoReply(etherparse::IcmpEchoHeader { id: 7, seq: 9 }),
            b"hello",
        );
        assert_eq!(&b[..8], &expect.to_bytes()[..]);
    }

    #[test]
    fn error_matches_etherparse() {
        let quoted = [
            0x45u8, 0, 0, 28, 0, 0, 0, 0, 1, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, 1, 2, 3, 4, 5, 6,
            7, 8,
        ];
        let mut msg = vec![0u8; 8];
        msg.extend_from_slice(&quoted);
        write_error(&mut msg, kind::TIME_EXCEEDED, 0);
        let expect = Icmpv4Header::with_checksum(
            Icmpv4Type::TimeExceeded(TimeExceededCode::TtlExceededInTransit),
            &quoted,
        );
        assert_eq!(&msg[..8], &expect.to_bytes()[..]);
    }
}
