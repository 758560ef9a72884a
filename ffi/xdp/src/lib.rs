//! Thin libbpf bindings, and the XDP program, for Tollgate's AF_XDP port.
//!
//! The only place that holds libbpf FFI: bindgen output restricted by an allowlist (see
//! `build.rs`), the flags from `pkg-config libbpf`, a small C shim (`shim/`) for libbpf's
//! print callback and option macros, and [`PROGRAM`], the object file of
//! `bpf/xsk_redirect.bpf.c` compiled for the `bpf` target. libbpf is used at set-up only
//! (load, configure, attach); the AF_XDP rings are shared memory the port reads and
//! writes itself.
//!
//! Without the `xdp` feature the crate is empty on purpose, so that the workspace builds
//! on any machine without libbpf or clang. The safe wrappers live in the dataplane's
//! AF_XDP port (`tollgate_dataplane::port::af_xdp`).

#![no_std]

/// The generated bindings (libbpf names, unchanged).
#[cfg(feature = "xdp")]
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

#[cfg(feature = "xdp")]
pub use bindings::*;

/// The XDP program's ELF object (`bpf/xsk_redirect.bpf.c`): program `tollgate_xsk`, maps
/// `xsks` (queue -> socket), `rules` (one [`Rules`]) and `to_kernel` (per-CPU count of
/// frames a rule passed to the kernel).
#[cfg(feature = "xdp")]
pub static PROGRAM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/xsk_redirect.bpf.o"));

/// The program's name in [`PROGRAM`].
pub const PROGRAM_NAME: &core::ffi::CStr = c"tollgate_xsk";

/// Entries of each list in [`Rules`].
pub const MAX_RULES: usize = 8;

/// Queues the `xsks` map has room for.
pub const MAX_QUEUES: u32 = 256;

/// `struct tg_rules` of the program: which frames it leaves to the kernel. Every field
/// is in network byte order except the counts.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rules {
    /// Entries of `ethertype` in use.
    pub ethertypes: u32,
    /// Entries of `prefix` in use.
    pub prefixes: u32,
    /// Ethertypes (big-endian) whose frames go to the kernel.
    pub ethertype: [u16; MAX_RULES],
    /// IPv4 destinations (address, mask; big-endian, the address already masked) whose
    /// frames go to the kernel.
    pub prefix: [[u32; 2]; MAX_RULES],
}
