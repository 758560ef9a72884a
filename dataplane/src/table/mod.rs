//! Lookup tables owned by the fast path.

#![deny(unsafe_code)]

pub mod index;
pub mod lpm;
pub mod neighbor;
