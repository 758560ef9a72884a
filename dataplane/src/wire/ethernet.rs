//! Ethernet II frames, with at most one 802.1Q tag.

use super::{WireError, get_u16, put_u16};
use crate::types::MacAddr;

mod field {
    use std::ops::Range;
    pub const DST: Range<usize> = 0..6;
    pub const SRC: Range<usize> = 6..12;
    pub const ETHERTYPE: usize = 12;
    pub const VLAN_TCI: usize = 14;
    pub const VLAN_ETHERTYPE: usize = 16;
}

/// Length of an untagged Ethernet header.
pub const HEADER_LEN: usize = 14;
/// Length of an 802.1Q tag.
pub const VLAN_TAG_LEN: usize = 4;

/// EtherType values the gateway knows.
pub mod ethertype {
    /// IPv4
    pub const IPV4: u16 = 0x0800;
    /// ARP
    pub const ARP: u16 = 0x0806;
    /// 802.1Q VLAN tag
    pub const VLAN: u16 = 0x8100;
    /// 802.1ad service tag
    pub const QINQ: u16 = 0x88a8;
    /// IPv6
    pub const IPV6: u16 = 0x86dd;
    /// PPPoE discovery stage (RFC 2516)
    pub const PPPOE_DISCOVERY: u16 = 0x8863;
    /// PPPoE session stage (RFC 2516)
    pub const PPPOE_SESSION: u16 = 0x8864;
}

/// A view of an Ethernet frame.
#[derive(Debug)]
pub struct Frame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Frame<T> {
    /// Wraps `buffer` without checks.
    pub fn new_unchecked(buffer: T) -> Self {
        Frame { buffer }
    }

    /// Wraps `buffer`, checking it holds at least an untagged header.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let f = Self::new_unchecked(buffer);
        f.check_len()?;
        Ok(f)
    }

    /// Checks the buffer holds an untagged header.
    pub fn check_len(&self) -> Result<(), WireError> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            Err(WireError::Truncated)
        } else {
            Ok(())
        }
    }

    /// Destination MAC.
    pub fn dst(&self) -> MacAddr {
        MacAddr::from_bytes(&self.buffer.as_ref()[field::DST])
    }

    /// Source MAC.
    pub fn src(&self) -> MacAddr {
        MacAddr::from_bytes(&self.buffer.as_ref()[field::SRC])
    }

    /// The outer EtherType (0x8100 for a tagged frame).
    pub fn ethertype(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::ETHERTYPE)
    }

    /// Where the layer 3 header starts and its EtherType, looking through one 802.1Q tag.
    /// `Err(Truncated)` if the tag is cut short.
    pub fn l3(&self) -> Result<L3, WireError> {
        let b = self.buffer.as_ref();
        let outer = self.ethertype();
        if outer == ethertype::VLAN {
            if b.len() < HEADER_LEN + VLAN_TAG_LEN {
                return Err(WireError::Truncated);
            }
            Ok(L3 {
                offset: HEADER_LEN + VLAN_TAG_LEN,
                ethertype: get_u16(b, field::VLAN_ETHERTYPE),
                vlan: Some(get_u16(b, field::VLAN_TCI) & 0x0fff),
            })
        } else {
            Ok(L3 {
                offset: HEADER_LEN,
                ethertype: outer,
                vlan: None,
            })
        }
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Frame<T> {
    /// Sets the destination MAC.
    pub fn set_dst(&mut self, mac: MacAddr) {
        self.buffer.as_mut()[field::DST].copy_from_slice(&mac.0);
    }

    /// Sets the source MAC.
    pub fn set_src(&mut self, mac: MacAddr) {
        self.buffer.as_mut()[field::SRC].copy_from_slice(&mac.0);
    }

    /// Sets the outer EtherType.
    pub fn set_ethertype(&mut self, v: u16) {
        put_u16(self.buffer.as_mut(), field::ETHERTYPE, v)
    }
}

/// Where layer 3 starts in a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct L3 {
    /// Byte offset of the layer 3 header.
    pub offset: usize,
    /// The inner EtherType.
    pub ethertype: u16,
    /// The VLAN id when the frame carries an 802.1Q tag.
    pub vlan: Option<u16>,
}

/// Writes both MACs of the frame in `b` (at least 12 bytes): the L2 rewrite.
#[inline(always)]
pub fn rewrite_macs(b: &mut [u8], dst: MacAddr, src: MacAddr) {
    b[field::DST].copy_from_slice(&dst.0);
    b[field::SRC].copy_from_slice(&src.0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn untagged_and_tagged() {
        let mut b = [0u8; 18];
        b[0..6].copy_from_slice(&[0xff; 6]);
        b[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        b[12..14].copy_from_slice(&[0x08, 0x06]);
        let f = Frame::new_checked(&b[..]).unwrap();
        assert!(f.dst().is_broadcast());
        assert_eq!(f.src(), MacAddr([2, 0, 0, 0, 0, 1]));
        assert_eq!(
            f.l3().unwrap(),
            L3 {
                offset: 14,
                ethertype: ethertype::ARP,
                vlan: None
            }
        );

        b[12..18].copy_from_slice(&[0x81, 0x00, 0x20, 0x0a, 0x08, 0x00]);
        let f = Frame::new_checked(&b[..]).unwrap();
        assert_eq!(
            f.l3().unwrap(),
            L3 {
                offset: 18,
                ethertype: ethertype::IPV4,
                vlan: Some(10)
            }
        );
        assert_eq!(
            Frame::new_checked(&b[..16]).unwrap().l3(),
            Err(WireError::Truncated)
        );
        assert_eq!(
            Frame::new_checked(&b[..13]).unwrap_err(),
            WireError::Truncated
        );
    }
}
