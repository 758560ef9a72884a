//! Ethernet II frames with up to two VLAN tags (802.1Q, and QinQ with an 802.1ad 0x88a8 or
//! 0x8100 outer tag; 0x9100 is accepted as an outer TPID too, as many access nodes use it).
//! Priority-tagged frames (VID 0) are tags like any other: the caller decides what VID 0
//! means for the line (ACC-4 accepts them as untagged).

use super::{WireError, get_u16, put_u16};

/// An Ethernet address.
pub type Mac = [u8; 6];

/// The broadcast address.
pub const BROADCAST: Mac = [0xff; 6];

/// Ethertypes the access side knows.
pub mod ethertype {
    /// IPv4.
    pub const IPV4: u16 = 0x0800;
    /// ARP.
    pub const ARP: u16 = 0x0806;
    /// 802.1Q customer tag.
    pub const VLAN: u16 = 0x8100;
    /// 802.1ad service tag.
    pub const QINQ: u16 = 0x88a8;
    /// Pre-standard QinQ outer tag.
    pub const QINQ_9100: u16 = 0x9100;
    /// IPv6.
    pub const IPV6: u16 = 0x86dd;
    /// PPPoE discovery stage.
    pub const PPPOE_DISCOVERY: u16 = 0x8863;
    /// PPPoE session stage.
    pub const PPPOE_SESSION: u16 = 0x8864;
}

mod field {
    use core::ops::Range;
    pub const DST: Range<usize> = 0..6;
    pub const SRC: Range<usize> = 6..12;
    pub const TYPE: usize = 12;
    pub const HEADER_LEN: usize = 14;
    pub const TAG_LEN: usize = 4;
}

/// One VLAN tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Tag {
    /// The tag protocol identifier (0x8100, 0x88a8 or 0x9100).
    pub tpid: u16,
    /// Priority code point (0..=7).
    pub pcp: u8,
    /// Drop eligible indicator.
    pub dei: bool,
    /// VLAN id (0..=4095; 0 = priority-tagged).
    pub vid: u16,
}

impl Tag {
    fn from_tci(tpid: u16, tci: u16) -> Tag {
        Tag {
            tpid,
            pcp: (tci >> 13) as u8,
            dei: tci & 0x1000 != 0,
            vid: tci & 0x0fff,
        }
    }

    fn tci(&self) -> u16 {
        (u16::from(self.pcp & 7) << 13) | (u16::from(self.dei) << 12) | (self.vid & 0x0fff)
    }
}

/// The parsed L2 header of an access frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Destination address.
    pub dst: Mac,
    /// Source address.
    pub src: Mac,
    /// The outer tag (the S-VLAN of QinQ, or the only tag).
    pub outer: Option<Tag>,
    /// The inner tag (the C-VLAN of QinQ).
    pub inner: Option<Tag>,
    /// The ethertype after the tags.
    pub ethertype: u16,
    /// Where the payload starts.
    pub payload_at: usize,
}

/// A view of an Ethernet frame.
#[derive(Debug)]
pub struct Frame<T: AsRef<[u8]>> {
    buffer: T,
}

fn is_tpid(t: u16) -> bool {
    matches!(t, ethertype::VLAN | ethertype::QINQ | ethertype::QINQ_9100)
}

impl<T: AsRef<[u8]>> Frame<T> {
    /// Wraps `buffer` without checks.
    pub fn new_unchecked(buffer: T) -> Self {
        Frame { buffer }
    }

    /// Wraps `buffer`, checking that [`Self::header`] succeeds.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let f = Self::new_unchecked(buffer);
        f.header()?;
        Ok(f)
    }

    /// Parses the header: at most two tags; the inner one must be 0x8100, and a third tag
    /// is malformed (no access line has three).
    pub fn header(&self) -> Result<Header, WireError> {
        let b = self.buffer.as_ref();
        if b.len() < field::HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let mut dst = [0u8; 6];
        let mut src = [0u8; 6];
        dst.copy_from_slice(&b[field::DST]);
        src.copy_from_slice(&b[field::SRC]);
        let mut at = field::TYPE;
        let mut tags = [None, None];
        for slot in tags.iter_mut() {
            let t = get_u16(b, at);
            if !is_tpid(t) {
                break;
            }
            if b.len() < at + field::TAG_LEN + 2 {
                return Err(WireError::Truncated);
            }
            *slot = Some(Tag::from_tci(t, get_u16(b, at + 2)));
            at += field::TAG_LEN;
        }
        let ethertype = get_u16(b, at);
        if is_tpid(ethertype) {
            return Err(WireError::Malformed);
        }
        if let Some(inner) = tags[1]
            && inner.tpid != ethertype::VLAN
        {
            return Err(WireError::Malformed);
        }
        Ok(Header {
            dst,
            src,
            outer: tags[0],
            inner: tags[1],
            ethertype,
            payload_at: at + 2,
        })
    }

    /// The payload after the header (empty if the header does not parse).
    pub fn payload(&self) -> &[u8] {
        match self.header() {
            Ok(h) => &self.buffer.as_ref()[h.payload_at..],
            Err(_) => &[],
        }
    }
}

/// Appends an Ethernet header with `tags` (outer first) and `ethertype` to `out`; returns
/// its length. The downlink of a line re-tags with the line's VLANs this way.
pub fn write_header(out: &mut Vec<u8>, dst: Mac, src: Mac, tags: &[Tag], ethertype: u16) -> usize {
    let start = out.len();
    out.extend_from_slice(&dst);
    out.extend_from_slice(&src);
    for t in tags {
        let mut b = [0u8; 4];
        put_u16(&mut b, 0, t.tpid);
        put_u16(&mut b, 2, t.tci());
        out.extend_from_slice(&b);
    }
    out.extend_from_slice(&ethertype.to_be_bytes());
    out.len() - start
}

#[cfg(test)]
mod tests {
    use super::*;

    const QINQ_PADI: [u8; 24] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // dst
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // src
        0x88, 0xa8, 0x20, 0x64, // S-VLAN 100, pcp 1
        0x81, 0x00, 0x00, 0xc8, // C-VLAN 200
        0x88, 0x63, // PPPoE discovery
        0x11, 0x09, // payload starts
    ];

    #[test]
    fn qinq_frame_parses_both_tags() {
        let f = Frame::new_checked(&QINQ_PADI[..]).unwrap();
        let h = f.header().unwrap();
        assert_eq!(h.dst, BROADCAST);
        assert_eq!(h.src, [2, 0, 0, 0, 0, 1]);
        assert_eq!(
            h.outer,
            Some(Tag {
                tpid: 0x88a8,
                pcp: 1,
                dei: false,
                vid: 100
            })
        );
        assert_eq!(h.inner.map(|t| t.vid), Some(200));
        assert_eq!(h.ethertype, ethertype::PPPOE_DISCOVERY);
        assert_eq!(h.payload_at, 22);
        assert_eq!(f.payload(), &[0x11, 0x09]);
    }

    #[test]
    fn untagged_and_priority_tagged_frames() {
        let mut b = QINQ_PADI[..12].to_vec();
        b.extend_from_slice(&[0x88, 0x64, 0xaa]);
        let h = Frame::new_checked(&b[..]).unwrap().header().unwrap();
        assert_eq!(
            (h.outer, h.inner, h.ethertype, h.payload_at),
            (None, None, 0x8864, 14)
        );
        let mut p = QINQ_PADI[..12].to_vec();
        p.extend_from_slice(&[0x81, 0x00, 0xa0, 0x00, 0x08, 0x00]);
        let h = Frame::new_checked(&p[..]).unwrap().header().unwrap();
        assert_eq!(h.outer.map(|t| (t.vid, t.pcp)), Some((0, 5)));
    }

    #[test]
    fn malformed_tag_stacks_are_refused() {
        assert_eq!(
            Frame::new_checked(&QINQ_PADI[..13]).err(),
            Some(WireError::Truncated)
        );
        assert_eq!(
            Frame::new_checked(&QINQ_PADI[..17]).err(),
            Some(WireError::Truncated)
        );
        let mut three = QINQ_PADI[..20].to_vec();
        three.extend_from_slice(&[0x81, 0x00, 0x00, 0x01, 0x88, 0x63]);
        assert_eq!(
            Frame::new_checked(&three[..]).err(),
            Some(WireError::Malformed)
        );
        let mut bad_inner = QINQ_PADI.to_vec();
        bad_inner[16] = 0x88;
        bad_inner[17] = 0xa8;
        assert_eq!(
            Frame::new_checked(&bad_inner[..]).err(),
            Some(WireError::Malformed)
        );
    }

    #[test]
    fn etherparse_reads_what_write_header_writes() {
        let tags = [
            Tag {
                tpid: ethertype::QINQ,
                pcp: 3,
                dei: false,
                vid: 100,
            },
            Tag {
                tpid: ethertype::VLAN,
                pcp: 0,
                dei: false,
                vid: 7,
            },
        ];
        let mut out = Vec::new();
        write_header(
            &mut out,
            [2, 0, 0, 0, 0, 9],
            [2, 0, 0, 0, 0, 1],
            &tags,
            0x8863,
        );
        out.extend_from_slice(&[0x11, 0x09, 0, 0, 0, 0]);
        let p = etherparse::SlicedPacket::from_ethernet(&out).unwrap();
        let ids: Vec<u16> = p.vlan_ids().iter().map(|v| v.value()).collect();
        assert_eq!(ids, [100, 7]);
        assert_eq!(p.payload_ether_type(), Some(etherparse::EtherType(0x8863)));
        let h = Frame::new_checked(&out[..]).unwrap().header().unwrap();
        assert_eq!((h.outer, h.inner), (Some(tags[0]), Some(tags[1])));
    }

    #[test]
    fn write_header_round_trips() {
        let tags = [
            Tag {
                tpid: 0x88a8,
                pcp: 1,
                dei: false,
                vid: 100,
            },
            Tag {
                tpid: 0x8100,
                pcp: 0,
                dei: true,
                vid: 200,
            },
        ];
        let mut out = Vec::new();
        let n = write_header(&mut out, BROADCAST, [2, 0, 0, 0, 0, 1], &tags, 0x8863);
        assert_eq!(n, 22);
        assert_eq!(&out[..16], &QINQ_PADI[..16]);
        assert_eq!(&out[16..22], &[0x81, 0x00, 0x10, 0xc8, 0x88, 0x63]);
        let h = Frame::new_checked(&out[..]).unwrap().header().unwrap();
        assert_eq!(h.inner, Some(tags[1]));
    }
}
