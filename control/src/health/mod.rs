//! Health checks' I/O (SES-3): the probes ([`probe`]) that the core's scheduler
//! (`tollgate_control_core::health`) asks for. Sockets come from socket2, so this module
//! needs no `unsafe`; the attribute keeps it that way.

#![forbid(unsafe_code)]

pub mod probe;
