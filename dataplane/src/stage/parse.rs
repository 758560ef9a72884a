//! Stage 1: classify a frame by its Ethernet header: on the core side plain Ethernet; on
//! the access side also through up to two VLAN tags (ACC-4) and a PPPoE session header
//! (ACC-1), with PPPoE discovery and PPP control frames for the control plane.

use crate::counters::DropReason;
use crate::table::session::VlanKey;
use crate::types::MacAddr;
use crate::wire::ethernet::{self, ethertype};
use crate::wire::flow::{MAX_VLAN_TAGS, QINQ_LEGACY};
use crate::wire::l2tp::ppp;
use crate::wire::{get_u16, pppoe};

/// The layer 3 protocols the gateway handles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum L3Kind {
    /// ARP
    Arp,
    /// IPv4
    Ipv4,
    /// IPv6 (forwarded only while `[ipv6]` is on)
    Ipv6,
    /// PPPoE discovery, or a PPPoE session frame carrying PPP other than IPv4 and IPv6
    /// (LCP, authentication, IPCP, IPv6CP, ...): the whole frame goes to the control
    /// plane.
    PppoeControl,
}

/// The access line a frame came in on, as read off its headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Line {
    /// Its VLAN tags.
    pub vlans: VlanKey,
    /// The PPPoE session id of a PPPoE session frame.
    pub pppoe: Option<u16>,
}

impl Line {
    /// An untagged IPoE frame.
    pub const PLAIN: Line = Line {
        vlans: VlanKey::UNTAGGED,
        pppoe: None,
    };

    /// True for an untagged frame without PPPoE.
    #[inline(always)]
    pub fn is_plain(&self) -> bool {
        self.vlans.is_untagged() && self.pppoe.is_none()
    }
}

/// A frame from the access side, classified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Access {
    /// What it carries.
    pub kind: L3Kind,
    /// Where the layer 3 header (or, for [`L3Kind::PppoeControl`], the PPPoE header)
    /// starts.
    pub l3: usize,
    /// The line it came in on.
    pub line: Line,
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
        ethertype::IPV6 => Ok((L3Kind::Ipv6, ethernet::HEADER_LEN)),
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

/// Checks the headers of `frame` received on the access port whose MAC is `port_mac`:
/// [`ethernet`], plus VLAN tags and PPPoE.
#[inline]
pub fn access(frame: &[u8], port_mac: MacAddr) -> Result<Access, DropReason> {
    let h = frame
        .first_chunk::<{ ethernet::HEADER_LEN }>()
        .ok_or(DropReason::EthTooShort)?;
    let f = ethernet::Frame::new_unchecked(h);
    let dst = f.dst();
    if !dst.is_multicast() && dst != port_mac {
        return Err(DropReason::EthNotForUs);
    }
    let kind = match f.ethertype() {
        ethertype::IPV4 => L3Kind::Ipv4,
        ethertype::ARP => L3Kind::Arp,
        ethertype::IPV6 => L3Kind::Ipv6,
        et => return access_encapsulated(frame, et),
    };
    Ok(Access {
        kind,
        l3: ethernet::HEADER_LEN,
        line: Line::PLAIN,
    })
}

/// [`access`] for every frame but untagged IPv4 and ARP.
#[inline(never)]
fn access_encapsulated(frame: &[u8], mut et: u16) -> Result<Access, DropReason> {
    let mut at = ethernet::HEADER_LEN;
    let mut vlans = VlanKey::UNTAGGED;
    let mut tags = 0;
    while matches!(et, ethertype::VLAN | ethertype::QINQ | QINQ_LEGACY) {
        if tags == MAX_VLAN_TAGS {
            return Err(DropReason::VlanNotConfigured);
        }
        let tag = frame
            .get(at..at + ethernet::VLAN_TAG_LEN)
            .ok_or(DropReason::EthTooShort)?;
        vlans = vlans.push(get_u16(tag, 0));
        et = get_u16(tag, 2);
        at += ethernet::VLAN_TAG_LEN;
        tags += 1;
    }
    let mut line = Line { vlans, pppoe: None };
    let kind = match et {
        ethertype::IPV4 => L3Kind::Ipv4,
        ethertype::ARP => L3Kind::Arp,
        ethertype::IPV6 => L3Kind::Ipv6,
        ethertype::PPPOE_DISCOVERY => L3Kind::PppoeControl,
        ethertype::PPPOE_SESSION => {
            let h = frame.get(at..).ok_or(DropReason::PppoeMalformed)?;
            let p = pppoe::Packet::new_checked(h).map_err(|_| DropReason::PppoeMalformed)?;
            let kind = match p.protocol() {
                ppp::IPV4 => L3Kind::Ipv4,
                ppp::IPV6 => L3Kind::Ipv6,
                _ => {
                    return Ok(Access {
                        kind: L3Kind::PppoeControl,
                        l3: at,
                        line,
                    });
                }
            };
            line.pppoe = Some(p.session());
            at += pppoe::HEADER_LEN;
            kind
        }
        _ => return Err(DropReason::UnsupportedEthertype),
    };
    Ok(Access { kind, l3: at, line })
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
            Ok((L3Kind::Ipv6, 14))
        );
        assert_eq!(
            ethernet(&frame(MAC.0, [0x88, 0xcc]), MAC),
            Err(DropReason::UnsupportedEthertype)
        );
        assert_eq!(
            ethernet(&frame(MAC.0, [0x81, 0x00]), MAC),
            Err(DropReason::VlanNotConfigured)
        );
        assert_eq!(ethernet(&[0u8; 13], MAC), Err(DropReason::EthTooShort));
    }

    #[test]
    fn classifies_access_lines() {
        let plain = access(&frame(MAC.0, [8, 0]), MAC).unwrap();
        assert_eq!(
            (plain.kind, plain.l3, plain.line),
            (L3Kind::Ipv4, 14, Line::PLAIN)
        );
        // QinQ, then PPPoE discovery.
        let mut f = frame([0xff; 6], [0x88, 0xa8]);
        f[14..22].copy_from_slice(&[0x00, 0x64, 0x81, 0x00, 0x20, 0x05, 0x88, 0x63]);
        let a = access(&f, MAC).unwrap();
        assert_eq!((a.kind, a.l3), (L3Kind::PppoeControl, 22));
        assert_eq!(a.line.vlans, VlanKey::UNTAGGED.push(100).push(5));
        // A priority tag, then LCP in a session frame.
        let mut f = frame(MAC.0, [0x81, 0x00]);
        f[14..26].copy_from_slice(&[0xe0, 0x00, 0x88, 0x64, 0x11, 0, 0, 7, 0, 2, 0xc0, 0x21]);
        let a = access(&f, MAC).unwrap();
        assert_eq!(
            (a.kind, a.l3, a.line),
            (L3Kind::PppoeControl, 18, Line::PLAIN)
        );
        // IPv6, untagged and in a C-tag.
        let a = access(&frame([0x33, 0x33, 0, 0, 0, 2], [0x86, 0xdd]), MAC).unwrap();
        assert_eq!((a.kind, a.l3, a.line), (L3Kind::Ipv6, 14, Line::PLAIN));
        let mut v6 = frame(MAC.0, [0x81, 0x00]);
        v6[14..18].copy_from_slice(&[0x00, 0x07, 0x86, 0xdd]);
        let a = access(&v6, MAC).unwrap();
        assert_eq!((a.kind, a.l3), (L3Kind::Ipv6, 18));
        assert_eq!(a.line.vlans, VlanKey::UNTAGGED.push(7));
        // IPv6 (PPP protocol 0x0057) in a session frame on QinQ: the line has the
        // session id, the IPv6 header follows the PPP protocol.
        let mut p6 = frame(MAC.0, [0x88, 0xa8]);
        p6[14..30].copy_from_slice(&[
            0x00, 0x64, 0x81, 0x00, 0x00, 0x07, 0x88, 0x64, 0x11, 0, 0, 9, 0, 42, 0x00, 0x57,
        ]);
        let a = access(&p6, MAC).unwrap();
        assert_eq!((a.kind, a.l3, a.line.pppoe), (L3Kind::Ipv6, 30, Some(9)));
        assert_eq!(a.line.vlans, VlanKey::UNTAGGED.push(100).push(7));
        // A session header cut short.
        assert_eq!(access(&f[..25], MAC), Err(DropReason::PppoeMalformed));
        // A tag cut short.
        assert_eq!(access(&f[..17], MAC), Err(DropReason::EthTooShort));
    }
}
