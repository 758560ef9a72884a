//! Header views over packet bytes, in the two levels of smoltcp's `wire`: a `Packet<T>`
//! view whose accessors never panic once `new_checked` succeeded, and plain functions for
//! checksums. Views over `&mut [u8]` get setters; the fast path rewrites headers in place.
//!
//! Test packets are built with `etherparse`; these views exist because the fast path needs
//! zero-copy *mutable* access that a parsing crate does not give.

#![deny(unsafe_code)]

pub mod arp;
pub mod checksum;
pub mod ethernet;
pub mod flow;
pub mod icmpv4;
pub mod ipv4;
pub mod l2tp;
pub mod nat;
pub mod pppoe;
pub mod tcp;
pub mod udp;

/// Why a header view could not be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireError {
    /// Fewer bytes than the header (or its declared length) needs.
    Truncated,
    /// A field holds a value the header cannot have (version, length, types).
    Malformed,
}

/// Reads a big-endian u16 at `at`. Callers have checked the length.
#[inline(always)]
pub(crate) fn get_u16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// Writes a big-endian u16 at `at`. Callers have checked the length.
#[inline(always)]
pub(crate) fn put_u16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}
