//! Stage 1: classify a frame by its Ethernet header.

use crate::counters::DropReason;
use crate::types::MacAddr;
use crate::wire::ethernet::{self, ethertype};

/// The layer 3 protocols the gateway handles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum L3Kind {
    /// ARP
    Arp,
    /// IPv4
    Ipv4,
}

/// Checks the Ethernet header of `frame` received on a port whose MAC is `port_mac`, and
/// returns the layer 3 protocol and where its header starts.
#[inline]
pub fn ethernet(frame: &[u8], port_mac: MacAddr) -> Result<(L3Kind, usize), DropReason> {
    // Over a fixed-size array the view's field reads need no bounds checks.
    let h = frame
        .first_chunk::<{ ethernet::HEADER_LEN }>()
        .ok_or(DropReason::EthTooShort)?;
    let f = ethernet::Frame::new_unchecked(h);
    let dst = f.dst();
    if !dst.is_multicast() && dst != port_mac {
        return Err(DropReason::EthNotForUs);
    }
    match f.ethertype() {
        ethertype::IPV4 => Ok((L3Kind::Ipv4, ethernet::HEADER_LEN)),
        ethertype::ARP => Ok((L3Kind::Arp, ethernet::HEADER_LEN)),
        ethertype::VLAN => {
            // Parsed through (so a short tag is told apart), but not forwarded yet.
            ethernet::Frame::new_unchecked(frame)
                .l3()
                .map_err(|_| DropReason::EthTooShort)?;
            Err(DropReason::VlanNotConfigured)
        }
        _ => Err(DropReason::UnsupportedEthertype),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);

    fn frame(dst: [u8; 6], ethertype: [u8; 2]) -> Vec<u8> {
        let mut f = dst.to_vec();
        f.extend_from_slice(&[2, 0, 0, 0, 0, 9]);
        f.extend_from_slice(&ethertype);
        f.resize(60, 0);
        f
    }

    #[test]
    fn classifies() {
        assert_eq!(ethernet(&frame(MAC.0, [8, 0]), MAC), Ok((L3Kind::Ipv4, 14)));
        assert_eq!(
            ethernet(&frame([0xff; 6], [8, 6]), MAC),
            Ok((L3Kind::Arp, 14))
        );
        assert_eq!(
            ethernet(&frame([2, 0, 0, 0, 0, 7], [8, 0]), MAC),
            Err(DropReason::EthNotForUs)
        );
        assert_eq!(
            ethernet(&frame(MAC.0, [0x86, 0xdd]), MAC),
            Err(DropReason::UnsupportedEthertype)
        );
        assert_eq!(
            ethernet(&frame(MAC.0, [0x81, 0x00]), MAC),
            Err(DropReason::VlanNotConfigured)
        );
        assert_eq!(ethernet(&[0u8; 13], MAC), Err(DropReason::EthTooShort));
    }
}
