//! Thin DPDK bindings for Tollgate.
//!
//! This crate is the only place that will hold DPDK FFI: bindgen output restricted by an
//! allowlist, the flags from `pkg-config libdpdk`, and a small C shim exposing DPDK's
//! `static inline` burst functions (rx/tx burst, bulk mbuf alloc/free, prefetch).
//!
//! Without the `dpdk` feature it is empty on purpose, so that the workspace builds on any
//! machine without DPDK installed. The bindings arrive with the DPDK backend; until then
//! the `dpdk` feature exists but adds nothing.

#![no_std]
