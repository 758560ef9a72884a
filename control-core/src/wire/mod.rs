//! Wire views the control core needs that the dataplane does not have yet, in smoltcp's
//! style: a `Packet<T: AsRef<[u8]>>` view with byte ranges in a private `field` module,
//! `new_checked`, and accessors that never panic once the check passed.
//!
//! The protocol-specific views live next to their engines ([`crate::pppoe::wire`],
//! [`crate::ppp::wire`]); this module holds the Ethernet + VLAN view that finds the line of
//! a punted access frame. When issue 13/14 give the dataplane its VLAN-aware parser, this
//! view moves there (see docs/ppp.md).

pub mod ethernet;

/// Why a view could not be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Fewer bytes than the header (or its declared length) needs.
    #[error("truncated")]
    Truncated,
    /// A field holds a value the header cannot have (version, length, type).
    #[error("malformed")]
    Malformed,
}

/// Reads a big-endian u16 at `at`. Callers have checked the length.
#[inline]
pub(crate) fn get_u16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// Writes a big-endian u16 at `at`. Callers have checked the length.
#[inline]
pub(crate) fn put_u16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

/// Reads a big-endian u32 at `at`. Callers have checked the length.
#[inline]
pub(crate) fn get_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
