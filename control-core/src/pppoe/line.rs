//! The subscriber line: the access port and VLANs a frame came on, and the line
//! identification an access node inserts in discovery packets (TR-101 section 3.9.3:
//! a Vendor-Specific tag with the Broadband Forum's vendor id 3561 holding Agent-Circuit-Id
//! and Agent-Remote-Id sub-options, as in DHCP option 82, RFC 4679).

use crate::wire::{WireError, get_u32};

/// The Broadband Forum's (ex DSL Forum's) IANA enterprise number.
pub const BBF_VENDOR_ID: u32 = 3561;

/// Sub-option types of the TR-101 tag (RFC 4679 section 3).
pub mod sub {
    /// Agent-Circuit-Id.
    pub const CIRCUIT_ID: u8 = 0x01;
    /// Agent-Remote-Id.
    pub const REMOTE_ID: u8 = 0x02;
    /// Actual-Data-Rate-Upstream (kbit/s).
    pub const RATE_UP: u8 = 0x81;
    /// Actual-Data-Rate-Downstream (kbit/s).
    pub const RATE_DOWN: u8 = 0x82;
}

/// Where a subscriber is attached: the access port and the VLAN tags (S-VLAN outer,
/// C-VLAN inner; a single tag is an S-VLAN here, as the line's only VLAN).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Line {
    /// The access port (the engine's port index).
    pub port: u16,
    /// The outer VLAN id.
    pub svlan: Option<u16>,
    /// The inner VLAN id.
    pub cvlan: Option<u16>,
}

impl Line {
    /// An untagged line on `port`.
    pub fn untagged(port: u16) -> Line {
        Line {
            port,
            svlan: None,
            cvlan: None,
        }
    }

    /// The NAS-Port-Id RADIUS and records carry: `port`, `port.svlan` or
    /// `port.svlan.cvlan` (`port` is the caller's port name).
    pub fn nas_port_id(&self, port: &str) -> String {
        match (self.svlan, self.cvlan) {
            (None, _) => port.to_string(),
            (Some(s), None) => format!("{port}.{s}"),
            (Some(s), Some(c)) => format!("{port}.{s}.{c}"),
        }
    }
}

impl core::fmt::Display for Line {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "port {}", self.port)?;
        if let Some(s) = self.svlan {
            write!(f, " s-vlan {s}")?;
        }
        if let Some(c) = self.cvlan {
            write!(f, " c-vlan {c}")?;
        }
        Ok(())
    }
}

/// The access node's identification of a line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LineId {
    /// Agent-Circuit-Id (e.g. `"an1 eth 1/1/1:100"`).
    pub circuit_id: Option<Vec<u8>>,
    /// Agent-Remote-Id (e.g. the subscriber's contract id).
    pub remote_id: Option<Vec<u8>>,
    /// Actual data rate upstream, kbit/s.
    pub rate_up_kbps: Option<u32>,
    /// Actual data rate downstream, kbit/s.
    pub rate_down_kbps: Option<u32>,
}

impl LineId {
    /// Parses a Vendor-Specific tag value: `Ok(None)` for another vendor's tag, an error
    /// for a TR-101 tag whose sub-options run past it.
    pub fn from_vendor_tag(value: &[u8]) -> Result<Option<LineId>, WireError> {
        if value.len() < 4 {
            return Err(WireError::Truncated);
        }
        if get_u32(value, 0) != BBF_VENDOR_ID {
            return Ok(None);
        }
        let mut id = LineId::default();
        let mut rest = &value[4..];
        while !rest.is_empty() {
            if rest.len() < 2 {
                return Err(WireError::Truncated);
            }
            let (kind, len) = (rest[0], rest[1] as usize);
            if 2 + len > rest.len() {
                return Err(WireError::Truncated);
            }
            let v = &rest[2..2 + len];
            match kind {
                sub::CIRCUIT_ID => id.circuit_id = Some(v.to_vec()),
                sub::REMOTE_ID => id.remote_id = Some(v.to_vec()),
                sub::RATE_UP if len == 4 => id.rate_up_kbps = Some(get_u32(v, 0)),
                sub::RATE_DOWN if len == 4 => id.rate_down_kbps = Some(get_u32(v, 0)),
                _ => {}
            }
            rest = &rest[2 + len..];
        }
        Ok(Some(id))
    }

    /// The tag value for this identification (what an access node inserts; used by the
    /// traffic generator and tests).
    pub fn to_vendor_tag(&self) -> Vec<u8> {
        let mut v = BBF_VENDOR_ID.to_be_bytes().to_vec();
        let mut put = |k: u8, d: &[u8]| {
            let d = &d[..d.len().min(255)];
            v.push(k);
            v.push(d.len() as u8);
            v.extend_from_slice(d);
        };
        if let Some(c) = &self.circuit_id {
            put(sub::CIRCUIT_ID, c);
        }
        if let Some(r) = &self.remote_id {
            put(sub::REMOTE_ID, r);
        }
        if let Some(r) = self.rate_up_kbps {
            put(sub::RATE_UP, &r.to_be_bytes());
        }
        if let Some(r) = self.rate_down_kbps {
            put(sub::RATE_DOWN, &r.to_be_bytes());
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A TR-101 tag value as an access node inserts it: vendor 3561, circuit
    /// "an1 eth 1/1/1:100", remote "cust42", 16 Mbit/s down.
    fn fixture() -> Vec<u8> {
        let mut v = vec![0x00, 0x00, 0x0d, 0xe9];
        v.extend_from_slice(&[0x01, 17]);
        v.extend_from_slice(b"an1 eth 1/1/1:100");
        v.extend_from_slice(&[0x02, 6]);
        v.extend_from_slice(b"cust42");
        v.extend_from_slice(&[0x82, 4, 0x00, 0x00, 0x3e, 0x80]);
        v.extend_from_slice(&[0x90, 1, 0xff]); // unknown sub-option, skipped
        v
    }

    #[test]
    fn tr101_tag_fixture() {
        let id = LineId::from_vendor_tag(&fixture()).unwrap().unwrap();
        assert_eq!(id.circuit_id.as_deref(), Some(&b"an1 eth 1/1/1:100"[..]));
        assert_eq!(id.remote_id.as_deref(), Some(&b"cust42"[..]));
        assert_eq!((id.rate_up_kbps, id.rate_down_kbps), (None, Some(16_000)));
        assert_eq!(&id.to_vendor_tag()[..], &fixture()[..fixture().len() - 3]);
    }

    #[test]
    fn other_vendors_and_broken_tags() {
        assert_eq!(LineId::from_vendor_tag(&[0, 0, 0, 9, 1, 1, 0]), Ok(None));
        assert_eq!(
            LineId::from_vendor_tag(&[0, 0, 0x0d]),
            Err(WireError::Truncated)
        );
        let mut f = fixture();
        f[5] = 200;
        assert_eq!(LineId::from_vendor_tag(&f), Err(WireError::Truncated));
        assert_eq!(
            LineId::from_vendor_tag(&[0, 0, 0x0d, 0xe9, 1]),
            Err(WireError::Truncated)
        );
    }

    #[test]
    fn line_names() {
        let l = Line {
            port: 1,
            svlan: Some(100),
            cvlan: Some(200),
        };
        assert_eq!(l.to_string(), "port 1 s-vlan 100 c-vlan 200");
        assert_eq!(l.nas_port_id("access0"), "access0.100.200");
        assert_eq!(Line::untagged(2).nas_port_id("access1"), "access1");
    }
}
