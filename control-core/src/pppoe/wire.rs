//! The PPPoE header (RFC 2516 section 4): version/type 0x11, code, session id, length, and
//! for discovery packets the tags (type, length, value) that follow. The same six bytes
//! start session-stage frames (code 0), which carry a PPP frame: [`SessionPacket`] is the
//! view the fast path will use for decapsulation (it belongs in the dataplane's `wire`
//! once issue 14's fast path lands; see docs/ppp.md).
//!
//! Octets after Length are Ethernet padding and ignored.

use crate::wire::{WireError, get_u16, put_u16};

/// Discovery codes.
pub mod code {
    /// PPPoE Active Discovery Initiation.
    pub const PADI: u8 = 0x09;
    /// PPPoE Active Discovery Offer.
    pub const PADO: u8 = 0x07;
    /// PPPoE Active Discovery Request.
    pub const PADR: u8 = 0x19;
    /// PPPoE Active Discovery Session-confirmation.
    pub const PADS: u8 = 0x65;
    /// PPPoE Active Discovery Terminate.
    pub const PADT: u8 = 0xa7;
    /// Session stage.
    pub const SESSION: u8 = 0x00;

    /// The name of a code, for logs and counters.
    pub fn name(c: u8) -> &'static str {
        match c {
            PADI => "padi",
            PADO => "pado",
            PADR => "padr",
            PADS => "pads",
            PADT => "padt",
            SESSION => "session",
            _ => "unknown",
        }
    }
}

/// Tag types (RFC 2516 appendix A, RFC 4638).
pub mod tag {
    /// End-Of-List.
    pub const END_OF_LIST: u16 = 0x0000;
    /// Service-Name.
    pub const SERVICE_NAME: u16 = 0x0101;
    /// AC-Name.
    pub const AC_NAME: u16 = 0x0102;
    /// Host-Uniq.
    pub const HOST_UNIQ: u16 = 0x0103;
    /// AC-Cookie.
    pub const AC_COOKIE: u16 = 0x0104;
    /// Vendor-Specific (TR-101 line identification with vendor id 3561).
    pub const VENDOR_SPECIFIC: u16 = 0x0105;
    /// Relay-Session-Id.
    pub const RELAY_SESSION_ID: u16 = 0x0110;
    /// PPP-Max-Payload (RFC 4638).
    pub const PPP_MAX_PAYLOAD: u16 = 0x0120;
    /// Service-Name-Error.
    pub const SERVICE_NAME_ERROR: u16 = 0x0201;
    /// AC-System-Error.
    pub const AC_SYSTEM_ERROR: u16 = 0x0202;
    /// Generic-Error.
    pub const GENERIC_ERROR: u16 = 0x0203;
}

/// The version/type byte of RFC 2516 (version 1, type 1).
pub const VERSION_TYPE: u8 = 0x11;

mod field {
    pub const VER_TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const SESSION: usize = 2;
    pub const LENGTH: usize = 4;
    pub const PAYLOAD: usize = 6;
}

/// The header length.
pub const HEADER_LEN: usize = field::PAYLOAD;

/// A view of a PPPoE packet (the Ethernet payload).
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps `buffer` without checks.
    pub fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// Wraps `buffer`, checking the header, the version/type and that Length fits.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// A header, version 1 type 1, and Length within the buffer.
    pub fn check_len(&self) -> Result<(), WireError> {
        let b = self.buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if b[field::VER_TYPE] != VERSION_TYPE {
            return Err(WireError::Malformed);
        }
        if HEADER_LEN + get_u16(b, field::LENGTH) as usize > b.len() {
            return Err(WireError::Truncated);
        }
        Ok(())
    }

    /// The Code field.
    pub fn code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    /// The SESSION_ID field.
    pub fn session_id(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::SESSION)
    }

    /// The LENGTH field (of the payload).
    pub fn length(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::LENGTH)
    }

    /// The payload (tags, or the PPP frame), padding excluded.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..HEADER_LEN + self.length() as usize]
    }

    /// The tags of a discovery packet's payload.
    pub fn tags(&self) -> Tags<'_> {
        tags(self.payload())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the Code field.
    pub fn set_code(&mut self, v: u8) {
        self.buffer.as_mut()[field::CODE] = v;
    }

    /// Sets the SESSION_ID field.
    pub fn set_session_id(&mut self, v: u16) {
        put_u16(self.buffer.as_mut(), field::SESSION, v);
    }

    /// Sets the LENGTH field.
    pub fn set_length(&mut self, v: u16) {
        put_u16(self.buffer.as_mut(), field::LENGTH, v);
    }
}

/// One tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tag<'a> {
    /// TAG_TYPE.
    pub kind: u16,
    /// TAG_VALUE.
    pub value: &'a [u8],
}

/// Iterates over tags; stops at End-Of-List, yields an error (then stops) at a tag that
/// runs past the payload.
#[derive(Clone, Debug)]
pub struct Tags<'a> {
    rest: &'a [u8],
    done: bool,
}

/// The tags in `payload`.
pub fn tags(payload: &[u8]) -> Tags<'_> {
    Tags {
        rest: payload,
        done: false,
    }
}

impl<'a> Iterator for Tags<'a> {
    type Item = Result<Tag<'a>, WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.rest.is_empty() {
            return None;
        }
        if self.rest.len() < 4 {
            self.done = true;
            return Some(Err(WireError::Truncated));
        }
        let kind = get_u16(self.rest, 0);
        let len = get_u16(self.rest, 2) as usize;
        if kind == tag::END_OF_LIST {
            self.done = true;
            return None;
        }
        if 4 + len > self.rest.len() {
            self.done = true;
            return Some(Err(WireError::Truncated));
        }
        let value = &self.rest[4..4 + len];
        self.rest = &self.rest[4 + len..];
        Some(Ok(Tag { kind, value }))
    }
}

/// Appends a tag to `out` (values are cut to what a 16-bit length holds).
pub fn put_tag(out: &mut Vec<u8>, kind: u16, value: &[u8]) {
    let v = &value[..value.len().min(u16::MAX as usize)];
    out.extend_from_slice(&kind.to_be_bytes());
    out.extend_from_slice(&(v.len() as u16).to_be_bytes());
    out.extend_from_slice(v);
}

/// Builds a PPPoE packet: header and `payload`.
pub fn build(code: u8, session_id: u16, payload: &[u8]) -> Vec<u8> {
    let p = &payload[..payload.len().min(u16::MAX as usize)];
    let mut out = Vec::with_capacity(HEADER_LEN + p.len());
    out.push(VERSION_TYPE);
    out.push(code);
    out.extend_from_slice(&session_id.to_be_bytes());
    out.extend_from_slice(&(p.len() as u16).to_be_bytes());
    out.extend_from_slice(p);
    out
}

/// A session-stage frame: code 0 and a PPP frame of at least the protocol field.
#[derive(Debug, Clone)]
pub struct SessionPacket<T: AsRef<[u8]>> {
    inner: Packet<T>,
}

impl<T: AsRef<[u8]>> SessionPacket<T> {
    /// Checks the header, code 0, a non-reserved session id and a two-byte protocol
    /// (RFC 2516 section 7: no protocol-field compression over PPPoE is assumed here).
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let inner = Packet::new_checked(buffer)?;
        if inner.code() != code::SESSION || matches!(inner.session_id(), 0 | 0xffff) {
            return Err(WireError::Malformed);
        }
        if inner.length() < 2 {
            return Err(WireError::Truncated);
        }
        Ok(SessionPacket { inner })
    }

    /// The session id.
    pub fn session_id(&self) -> u16 {
        self.inner.session_id()
    }

    /// The PPP protocol field.
    pub fn protocol(&self) -> u16 {
        get_u16(self.inner.payload(), 0)
    }

    /// The PPP packet after the protocol field.
    pub fn ppp_payload(&self) -> &[u8] {
        &self.inner.payload()[2..]
    }
}

/// A session-stage frame carrying `protocol` and `packet` (the PPP engine's transmits).
pub fn session_frame(session_id: u16, protocol: u16, packet: &[u8]) -> Vec<u8> {
    let mut payload = Vec::with_capacity(2 + packet.len());
    payload.extend_from_slice(&protocol.to_be_bytes());
    payload.extend_from_slice(packet);
    build(code::SESSION, session_id, &payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PADI as rp-pppoe's `pppoe -A` sends it: an empty Service-Name and a Host-Uniq,
    /// then Ethernet padding.
    const PADI: [u8; 24] = [
        0x11, 0x09, 0x00, 0x00, 0x00, 0x0c, // header, length 12
        0x01, 0x01, 0x00, 0x00, // Service-Name ""
        0x01, 0x03, 0x00, 0x04, 0xde, 0xad, 0xbe, 0xef, // Host-Uniq
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // padding
    ];

    #[test]
    fn padi_fixture() {
        let p = Packet::new_checked(&PADI[..]).unwrap();
        assert_eq!((p.code(), p.session_id(), p.length()), (code::PADI, 0, 12));
        let t: Vec<_> = p.tags().map(Result::unwrap).collect();
        assert_eq!(
            t,
            [
                Tag {
                    kind: tag::SERVICE_NAME,
                    value: b""
                },
                Tag {
                    kind: tag::HOST_UNIQ,
                    value: &[0xde, 0xad, 0xbe, 0xef]
                }
            ]
        );
        let mut payload = Vec::new();
        put_tag(&mut payload, tag::SERVICE_NAME, b"");
        put_tag(&mut payload, tag::HOST_UNIQ, &[0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(build(code::PADI, 0, &payload), PADI[..18]);
        assert_eq!(code::name(p.code()), "padi");
    }

    #[test]
    fn bad_headers_and_tags_are_refused() {
        assert_eq!(
            Packet::new_checked(&PADI[..5]).err(),
            Some(WireError::Truncated)
        );
        let mut v = PADI;
        v[0] = 0x21;
        assert_eq!(
            Packet::new_checked(&v[..]).err(),
            Some(WireError::Malformed)
        );
        let mut long = PADI;
        long[5] = 19;
        assert_eq!(
            Packet::new_checked(&long[..]).err(),
            Some(WireError::Truncated)
        );
        // A tag running past Length.
        let mut over = PADI;
        over[13] = 0x09;
        let p = Packet::new_checked(&over[..]).unwrap();
        let r: Vec<_> = p.tags().collect();
        assert_eq!(r.last(), Some(&Err(WireError::Truncated)));
        assert_eq!(tags(&[1, 1, 0]).next(), Some(Err(WireError::Truncated)));
        // End-Of-List stops.
        assert_eq!(tags(&[0, 0, 0, 0, 1, 1, 0, 0]).count(), 0);
        let mut m = Packet::new_checked(PADI).unwrap();
        m.set_code(code::PADT);
        m.set_session_id(0x1234);
        m.set_length(0);
        assert_eq!(
            (m.code(), m.session_id(), m.payload()),
            (code::PADT, 0x1234, &[][..])
        );
    }

    #[test]
    fn session_frame_fixture() {
        // Session 0x0042 carrying LCP Echo-Request.
        let f = session_frame(0x42, 0xc021, &[0x09, 0x01, 0x00, 0x08, 1, 2, 3, 4]);
        assert_eq!(
            f,
            [
                0x11, 0x00, 0x00, 0x42, 0x00, 0x0a, 0xc0, 0x21, 0x09, 0x01, 0x00, 0x08, 1, 2, 3, 4
            ]
        );
        let s = SessionPacket::new_checked(&f[..]).unwrap();
        assert_eq!((s.session_id(), s.protocol()), (0x42, 0xc021));
        assert_eq!(s.ppp_payload().len(), 8);
        let mut zero = f.clone();
        zero[3] = 0;
        assert_eq!(
            SessionPacket::new_checked(&zero[..]).err(),
            Some(WireError::Malformed)
        );
        let short = build(code::SESSION, 1, &[0xc0]);
        assert_eq!(
            SessionPacket::new_checked(&short[..]).err(),
            Some(WireError::Truncated)
        );
        assert!(SessionPacket::new_checked(&PADI[..]).is_err());
    }
}
