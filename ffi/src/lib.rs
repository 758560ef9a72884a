//! Thin DPDK bindings for Tollgate.
//!
//! The only place that holds DPDK FFI: bindgen output restricted by an allowlist (see
//! `build.rs`), the flags from `pkg-config libdpdk`, and a small C shim (`shim/`) exposing
//! DPDK's `static inline` burst functions (rx/tx burst, bulk mbuf alloc/free, prefetch)
//! one call per burst.
//!
//! Without the `dpdk` feature the crate is empty on purpose, so that the workspace builds
//! on any machine without DPDK installed. The safe wrappers live in the dataplane's DPDK
//! port backend (`tollgate_dataplane::port::dpdk`).

#![no_std]

/// The generated bindings (DPDK 22.11 names, unchanged).
#[cfg(feature = "dpdk")]
#[allow(
    non_upper_case_globals,
    non_camel_case_types,
    non_snake_case,
    dead_code,
    unsafe_op_in_unsafe_fn,
    missing_docs,
    clippy::all,
    clippy::undocumented_unsafe_blocks
)]
mod bindings {
    include!(concat!(env!("OUT_DIR"), "/bindings.rs"));
}

#[cfg(feature = "dpdk")]
pub use bindings::*;
