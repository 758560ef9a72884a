//! The access-line half of a session (ACC-1, ACC-4): the header template its downlink
//! frames get between the MACs and the IPv4 header, and the key its PPPoE uplink frames
//! are found by. The template is made from the session entry's own fields (VLAN ids,
//! PPPoE session id, and the TPIDs as four flag bits: 6 bytes), so that a downlink
//! packet reads no second cache line for it and an untagged IPoE session pays nothing.

use super::spec::{AccessLine, Encap, VlanKey};
use crate::types::MacAddr;
use crate::wire::ethernet::{VLAN_TAG_LEN, ethertype};
use crate::wire::flow::QINQ_LEGACY;
use crate::wire::l2tp::ppp;
use crate::wire::pppoe;

/// Most bytes between the source MAC and the IPv4 header: two tags, the EtherType, the
/// PPPoE header and PPP protocol.
pub const MAX_ENCAP: usize = 2 * VLAN_TAG_LEN + 2 + pppoe::HEADER_LEN;

/// What a downlink frame of a session carries after its MACs, ready to copy: the tags,
/// the EtherType, and for PPPoE the session header with the PPP protocol (its length
/// field written per packet).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Encapsulation {
    bytes: [u8; MAX_ENCAP],
    len: u8,
    pppoe: bool,
}

impl Encapsulation {
    /// Plain IPoE: the EtherType alone.
    pub const PLAIN: Encapsulation = Encapsulation {
        bytes: [0x08, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        len: 2,
        pppoe: false,
    };

    /// The template of `line` (priority tags, VID 0, left out: they carry no VLAN).
    pub fn new(line: &AccessLine) -> Encapsulation {
        let tpids = tpids(line);
        let pppoe = match line.encap {
            Encap::Ipoe | Encap::L2tp { .. } => None,
            Encap::Pppoe { session } => Some(session),
        };
        Encapsulation::of(line.vlans.key(), tpids, pppoe)
    }

    /// The template of a line tagged `vlans` (TPIDs `tpids`, outer first), PPPoE session
    /// `pppoe` or IPoE.
    #[inline(always)]
    pub fn of(vlans: VlanKey, tpids: [u16; 2], pppoe: Option<u16>) -> Encapsulation {
        let mut e = Encapsulation {
            bytes: [0; MAX_ENCAP],
            len: 0,
            pppoe: false,
        };
        let (vids, n) = vlans.vids();
        for k in 0..n {
            e.push(&tpids[k].to_be_bytes());
            e.push(&vids[k].to_be_bytes());
        }
        match pppoe {
            None => e.push(&ethertype::IPV4.to_be_bytes()),
            Some(session) => {
                e.push(&ethertype::PPPOE_SESSION.to_be_bytes());
                let mut h = [0u8; pppoe::HEADER_LEN];
                pppoe::Packet::new_unchecked(&mut h[..]).emit(session, ppp::IPV4, 0);
                e.push(&h);
                e.pppoe = true;
            }
        }
        e
    }

    #[inline(always)]
    fn push(&mut self, b: &[u8]) {
        let at = self.len as usize;
        self.bytes[at..at + b.len()].copy_from_slice(b);
        self.len += b.len() as u8;
    }

    /// The bytes, from where the EtherType of an untagged frame would be.
    #[inline(always)]
    pub fn bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }

    /// True for a PPPoE session's template (its packet type is a PPP protocol).
    #[inline]
    pub fn is_pppoe(&self) -> bool {
        self.pppoe
    }

    /// Bytes it adds to an untagged Ethernet frame.
    #[inline(always)]
    pub fn extra(&self) -> usize {
        self.len as usize - 2
    }

    /// Writes it into `after_macs` (the frame from byte 12, with room for [`Self::bytes`]),
    /// for an IPv4 packet of `ip_len` bytes.
    #[inline(always)]
    pub fn write(&self, after_macs: &mut [u8], ip_len: u16) {
        let n = self.len as usize;
        after_macs[..n].copy_from_slice(self.bytes());
        if self.pppoe {
            let at = n - pppoe::HEADER_LEN;
            pppoe::Packet::new_unchecked(&mut after_macs[at..n])
                .set_payload_len(ip_len + pppoe::PPP_PROTOCOL_LEN);
        }
    }
}

/// The TPIDs a tag can have, by the two-bit code [`tpid_bits`] keeps: the fast path
/// parses no others (`stage::parse`).
const TPIDS: [u16; 4] = [
    ethertype::VLAN,
    ethertype::QINQ,
    QINQ_LEGACY,
    ethertype::VLAN,
];

/// [`tpids`] as two bits per tag (an index of `TPIDS`, outer first in the low bits), so
/// that the session entry keeps them in its flags. A TPID no frame could carry (the
/// parser knows only the three) reads back as 0x8100.
pub fn tpid_bits(line: &AccessLine) -> u8 {
    let code = |t: u16| TPIDS[..3].iter().position(|x| *x == t).unwrap_or(0) as u8;
    let [outer, inner] = tpids(line);
    code(outer) | code(inner) << 2
}

/// The TPIDs [`tpid_bits`] kept, in the places of [`VlanKey::vids`].
#[inline(always)]
pub fn tpids_of(bits: u8) -> [u16; 2] {
    [TPIDS[(bits & 3) as usize], TPIDS[(bits >> 2 & 3) as usize]]
}

/// The TPIDs of `line`'s tags that carry a VLAN, outer first, in the places of
/// [`VlanKey::vids`].
pub fn tpids(line: &AccessLine) -> [u16; 2] {
    let mut t = [0u16; 2];
    let tags = [line.vlans.outer, line.vlans.inner];
    for (slot, tag) in t
        .iter_mut()
        .zip(tags.into_iter().flatten().filter(|t| t.vid & 0x0fff != 0))
    {
        *slot = tag.tpid;
    }
    t
}

/// The hash key of a PPPoE session's uplink: its VLANs, client MAC and session id.
#[inline(always)]
pub fn pppoe_key(vlans: VlanKey, mac: MacAddr, session: u16) -> u64 {
    let m = mac.0;
    let mac48 = u64::from_be_bytes([0, 0, m[0], m[1], m[2], m[3], m[4], m[5]]);
    (mac48 << 16 | session as u64) ^ (vlans.0 as u64).rotate_left(23)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::session::spec::{VlanTag, Vlans};

    #[test]
    fn templates() {
        assert_eq!(
            Encapsulation::new(&AccessLine::default()),
            Encapsulation::PLAIN
        );
        let qinq_pppoe = AccessLine {
            vlans: Vlans {
                outer: Some(VlanTag {
                    tpid: 0x88a8,
                    vid: 200,
                }),
                inner: Some(VlanTag {
                    tpid: 0x8100,
                    vid: 300,
                }),
            },
            encap: Encap::Pppoe { session: 0x1234 },
            mss_clamp: 1452,
        };
        let e = Encapsulation::new(&qinq_pppoe);
        assert_eq!(e.extra(), MAX_ENCAP - 2);
        let mut b = [0u8; MAX_ENCAP];
        e.write(&mut b, 1000);
        assert_eq!(
            b,
            [
                0x88, 0xa8, 0x00, 200, 0x81, 0x00, 0x01, 0x2c, 0x88, 0x64, 0x11, 0x00, 0x12, 0x34,
                0x03, 0xea, 0x00, 0x21
            ]
        );
        // The TPIDs survive the entry's four flag bits, each of the three a frame can
        // carry, in either place.
        for (o, i) in [(0x88a8, 0x8100), (0x8100, 0x88a8), (0x9100, 0x9100), (0, 0)] {
            let mut l = qinq_pppoe;
            if let (Some(a), Some(b)) = (l.vlans.outer.as_mut(), l.vlans.inner.as_mut()) {
                (a.tpid, b.tpid) = (o, i);
            }
            let bits = tpid_bits(&l);
            assert!(bits < 16);
            let want = if o == 0 { [0x8100, 0x8100] } else { [o, i] };
            assert_eq!(tpids_of(bits), want);
        }
        assert_ne!(
            pppoe_key(VlanKey::UNTAGGED, MacAddr([2, 0, 0, 0, 0, 1]), 1),
            pppoe_key(VlanKey::UNTAGGED.push(1), MacAddr([2, 0, 0, 0, 0, 1]), 1)
        );
    }
}
