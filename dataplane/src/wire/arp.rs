//! ARP for IPv4 over Ethernet (RFC 826).

use std::net::Ipv4Addr;

use super::{WireError, get_u16, put_u16};
use crate::types::MacAddr;

mod field {
    use std::ops::Range;
    pub const HTYPE: usize = 0;
    pub const PTYPE: usize = 2;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: usize = 6;
    pub const SHA: Range<usize> = 8..14;
    pub const SPA: Range<usize> = 14..18;
    pub const THA: Range<usize> = 18..24;
    pub const TPA: Range<usize> = 24..28;
}

/// Length of an Ethernet/IPv4 ARP packet.
pub const PACKET_LEN: usize = 28;

/// ARP operation codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// who-has
    Request,
    /// is-at
    Reply,
}

/// A view of an Ethernet/IPv4 ARP packet.
#[derive(Debug)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps `buffer` without checks.
    pub fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// Wraps `buffer`, checking the length and that it is Ethernet/IPv4 ARP with a known
    /// operation.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        let b = p.buffer.as_ref();
        if get_u16(b, field::HTYPE) != 1
            || get_u16(b, field::PTYPE) != 0x0800
            || b[field::HLEN] != 6
            || b[field::PLEN] != 4
            || p.operation().is_none()
        {
            return Err(WireError::Malformed);
        }
        Ok(p)
    }

    /// Checks the buffer holds a whole packet.
    pub fn check_len(&self) -> Result<(), WireError> {
        if self.buffer.as_ref().len() < PACKET_LEN {
            Err(WireError::Truncated)
        } else {
            Ok(())
        }
    }

    /// The operation, if it is a request or a reply.
    pub fn operation(&self) -> Option<Operation> {
        match get_u16(self.buffer.as_ref(), field::OPER) {
            1 => Some(Operation::Request),
            2 => Some(Operation::Reply),
            _ => None,
        }
    }

    /// Sender hardware address.
    pub fn sender_mac(&self) -> MacAddr {
        MacAddr::from_bytes(&self.buffer.as_ref()[field::SHA])
    }

    /// Sender protocol address.
    pub fn sender_ip(&self) -> Ipv4Addr {
        ip_at(self.buffer.as_ref(), field::SPA.start)
    }

    /// Target hardware address.
    pub fn target_mac(&self) -> MacAddr {
        MacAddr::from_bytes(&self.buffer.as_ref()[field::THA])
    }

    /// Target protocol address.
    pub fn target_ip(&self) -> Ipv4Addr {
        ip_at(self.buffer.as_ref(), field::TPA.start)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Turns a request into our reply in place: we become the sender, the requester the
    /// target.
    pub fn make_reply(&mut self, our_mac: MacAddr, our_ip: Ipv4Addr) {
        let sha = self.sender_mac();
        let spa = self.sender_ip();
        let b = self.buffer.as_mut();
        put_u16(b, field::OPER, 2);
        b[field::THA].copy_from_slice(&sha.0);
        b[field::TPA].copy_from_slice(&spa.octets());
        b[field::SHA].copy_from_slice(&our_mac.0);
        b[field::SPA].copy_from_slice(&our_ip.octets());
    }
}

fn ip_at(b: &[u8], at: usize) -> Ipv4Addr {
    Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3])
}

/// Writes a complete broadcast ARP request frame (Ethernet header included, padded to the
/// 60-byte minimum) into `out`, returning its length. `out` must hold 60 bytes.
pub fn build_request(
    out: &mut [u8],
    our_mac: MacAddr,
    our_ip: Ipv4Addr,
    target_ip: Ipv4Addr,
) -> usize {
    const LEN: usize = 60;
    let b = &mut out[..LEN];
    b.fill(0);
    b[0..6].copy_from_slice(&MacAddr::BROADCAST.0);
    b[6..12].copy_from_slice(&our_mac.0);
    b[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
    let a = &mut b[14..14 + PACKET_LEN];
    put_u16(a, field::HTYPE, 1);
    put_u16(a, field::PTYPE, 0x0800);
    a[field::HLEN] = 6;
    a[field::PLEN] = 4;
    put_u16(a, field::OPER, 1);
    a[field::SHA].copy_from_slice(&our_mac.0);
    a[field::SPA].copy_from_slice(&our_ip.octets());
    a[field::TPA].copy_from_slice(&target_ip.octets());
    LEN
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_reply_round_trip() {
        let mac = MacAddr([2, 0, 0, 0, 0, 1]);
        let mut frame = [0u8; 60];
        let n = build_request(
            &mut frame,
            mac,
            Ipv4Addr::new(10, 0, 0, 1),
            Ipv4Addr::new(10, 0, 0, 2),
        );
        assert_eq!(n, 60);
        let p = Packet::new_checked(&mut frame[14..]).unwrap();
        assert_eq!(p.operation(), Some(Operation::Request));
        assert_eq!(p.sender_ip(), Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(p.target_ip(), Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(p.sender_mac(), mac);

        let mut p = p;
        let other = MacAddr([2, 0, 0, 0, 0, 2]);
        p.make_reply(other, Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(p.operation(), Some(Operation::Reply));
        assert_eq!(p.sender_mac(), other);
        assert_eq!(p.target_mac(), mac);
        assert_eq!(p.target_ip(), Ipv4Addr::new(10, 0, 0, 1));
    }

    #[test]
    fn rejects_non_ethernet_ipv4() {
        let mut b = [0u8; 28];
        b[0..2].copy_from_slice(&[0, 6]); // IEEE 802 hardware type
        assert_eq!(
            Packet::new_checked(&b[..]).unwrap_err(),
            WireError::Malformed
        );
        assert_eq!(
            Packet::new_checked(&b[..27]).unwrap_err(),
            WireError::Truncated
        );
    }
}
