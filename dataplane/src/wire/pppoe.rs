//! PPPoE session-stage headers (RFC 2516 §4, §6) with the PPP protocol field that follows:
//! what the fast path reads off a subscriber's uplink and writes on its downlink. The
//! discovery stage (0x8863) is the control plane's; the fast path only punts it.

use super::{WireError, get_u16, put_u16};

/// Where each field lies (byte offsets from the start of the PPPoE header).
pub mod field {
    /// Version (high nibble) and type (low nibble): 0x11.
    pub const VER_TYPE: usize = 0;
    /// Code: 0 for session data.
    pub const CODE: usize = 1;
    /// Session id.
    pub const SESSION: usize = 2;
    /// Length of the PPPoE payload (the PPP protocol field and what follows).
    pub const LENGTH: usize = 4;
    /// The PPP protocol field (RFC 1661 §2).
    pub const PROTOCOL: usize = 6;
}

/// Length of the PPPoE header and the PPP protocol field.
pub const HEADER_LEN: usize = 8;
/// Version 1, type 1.
pub const VER_TYPE: u8 = 0x11;
/// The code of a session data frame.
pub const CODE_SESSION: u8 = 0;
/// Bytes a PPPoE payload counts beyond the IP packet: the PPP protocol field.
pub const PPP_PROTOCOL_LEN: u16 = 2;

/// A view of a PPPoE session header and the PPP protocol field.
#[derive(Debug)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps `buffer` without checks: the accessors panic on fewer than [`HEADER_LEN`]
    /// bytes.
    #[inline(always)]
    pub fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// Wraps `buffer`, checking it holds the header and that it is a version 1, type 1
    /// session data header.
    #[inline(always)]
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        if p.ver_type() != VER_TYPE || p.code() != CODE_SESSION {
            return Err(WireError::Malformed);
        }
        Ok(p)
    }

    /// Checks the buffer holds the header.
    #[inline(always)]
    pub fn check_len(&self) -> Result<(), WireError> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            Err(WireError::Truncated)
        } else {
            Ok(())
        }
    }

    /// Version and type byte.
    #[inline(always)]
    pub fn ver_type(&self) -> u8 {
        self.buffer.as_ref()[field::VER_TYPE]
    }

    /// Code.
    #[inline(always)]
    pub fn code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    /// Session id.
    #[inline(always)]
    pub fn session(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::SESSION)
    }

    /// PPPoE payload length.
    #[inline(always)]
    pub fn payload_len(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::LENGTH)
    }

    /// PPP protocol.
    #[inline(always)]
    pub fn protocol(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::PROTOCOL)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Writes a whole session data header: version 1, type 1, code 0, `session`, a
    /// payload of `protocol` and `ip_len` bytes.
    #[inline(always)]
    pub fn emit(&mut self, session: u16, protocol: u16, ip_len: u16) {
        let b = self.buffer.as_mut();
        b[field::VER_TYPE] = VER_TYPE;
        b[field::CODE] = CODE_SESSION;
        put_u16(b, field::SESSION, session);
        put_u16(b, field::LENGTH, ip_len + PPP_PROTOCOL_LEN);
        put_u16(b, field::PROTOCOL, protocol);
    }

    /// Sets the payload length.
    #[inline(always)]
    pub fn set_payload_len(&mut self, len: u16) {
        put_u16(self.buffer.as_mut(), field::LENGTH, len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_writes_a_session_header() {
        // Session 0x1234, 60 bytes of IPv4 after the protocol field.
        let b = [0x11, 0x00, 0x12, 0x34, 0x00, 62, 0x00, 0x21];
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(
            (p.session(), p.payload_len(), p.protocol()),
            (0x1234, 62, 0x21)
        );
        let mut w = [0u8; HEADER_LEN];
        Packet::new_unchecked(&mut w[..]).emit(0x1234, 0x21, 60);
        assert_eq!(w, b);
        assert_eq!(
            Packet::new_checked(&b[..7]).unwrap_err(),
            WireError::Truncated
        );
        let discovery_code = [0x11, 0x09, 0, 0, 0, 2, 0, 0x21];
        assert_eq!(
            Packet::new_checked(&discovery_code[..]).unwrap_err(),
            WireError::Malformed
        );
        let version_2 = [0x21, 0, 0, 1, 0, 2, 0, 0x21];
        assert_eq!(
            Packet::new_checked(&version_2[..]).unwrap_err(),
            WireError::Malformed
        );
    }
}
