//! The IPoE subscriber: a line and a MAC address. The DHCPv4 server and relay
//! ([`crate::dhcp`]), the DHCPv6 server ([`crate::dhcpv6`]) and the router-advertisement
//! engine ([`crate::nd`]) all key a subscriber this way, so that one session holds both
//! families (issue 16, SPEC V6-1): whichever family logs in first creates it, the other
//! joins it (docs/ipoe.md).
//!
//! Also here: the downlink Ethernet frame every IPoE engine's transmits go out in.

use crate::pppoe::Line;
use crate::wire::ethernet::{self, Mac, Tag, ethertype};

/// An IPoE subscriber: the line it is attached to and its MAC address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Subscriber {
    /// The access port and VLANs.
    pub line: Line,
    /// The subscriber's MAC (DHCPv4 `chaddr`, the Ethernet source, or the DHCPv6 client
    /// link-layer address option).
    pub mac: Mac,
}

impl Subscriber {
    /// `mac` on `line`.
    pub fn new(line: Line, mac: Mac) -> Subscriber {
        Subscriber { line, mac }
    }
}

impl core::fmt::Display for Subscriber {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{} mac {}", self.line, MacDisplay(self.mac))
    }
}

/// A MAC address written `02:00:5e:00:00:01` (the Calling-Station-Id and the default
/// User-Name of an IPoE login).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MacDisplay(pub Mac);

impl core::fmt::Display for MacDisplay {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

/// Whether `mac` is a unicast address (group bit clear) and not all zeros.
pub fn is_unicast_mac(mac: Mac) -> bool {
    mac[0] & 1 == 0 && mac != [0; 6]
}

/// The Ethernet frame for `payload` (of `ether_type`) to `dst` on `line`, from `src`,
/// tagged with the line's VLANs (`outer_tpid` for the S-VLAN, 0x8100 inside).
pub fn frame(
    line: Line,
    dst: Mac,
    src: Mac,
    outer_tpid: u16,
    ether_type: u16,
    payload: &[u8],
) -> Vec<u8> {
    let mut tags = [Tag {
        tpid: 0,
        pcp: 0,
        dei: false,
        vid: 0,
    }; 2];
    let mut n = 0;
    if let Some(s) = line.svlan {
        tags[n] = Tag {
            tpid: outer_tpid,
            pcp: 0,
            dei: false,
            vid: s,
        };
        n += 1;
    }
    if let Some(c) = line.cvlan {
        tags[n] = Tag {
            tpid: ethertype::VLAN,
            pcp: 0,
            dei: false,
            vid: c,
        };
        n += 1;
    }
    let mut f = Vec::with_capacity(22 + payload.len());
    ethernet::write_header(&mut f, dst, src, &tags[..n], ether_type);
    f.extend_from_slice(payload);
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscriber_names_and_frames() {
        let s = Subscriber::new(
            Line {
                port: 1,
                svlan: Some(100),
                cvlan: Some(7),
            },
            [2, 0, 0x5e, 0, 0, 0xa1],
        );
        assert_eq!(
            s.to_string(),
            "port 1 s-vlan 100 c-vlan 7 mac 02:00:5e:00:00:a1"
        );
        let f = frame(s.line, s.mac, [2, 0, 0, 0, 0, 1], 0x88a8, 0x0800, &[0x45]);
        assert_eq!(
            f,
            [
                2, 0, 0x5e, 0, 0, 0xa1, 2, 0, 0, 0, 0, 1, 0x88, 0xa8, 0x00, 0x64, 0x81, 0x00, 0x00,
                0x07, 0x08, 0x00, 0x45
            ]
        );
        let u = frame(Line::untagged(0), [0xff; 6], [2; 6], 0x8100, 0x86dd, &[]);
        assert_eq!(u.len(), 14);
        assert!(is_unicast_mac([2, 0, 0, 0, 0, 1]));
        assert!(!is_unicast_mac([0x33, 0x33, 0, 0, 0, 1]));
        assert!(!is_unicast_mac([0; 6]));
    }
}
