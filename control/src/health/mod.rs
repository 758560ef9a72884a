//! Health checks' I/O (SES-3): the probes ([`probe`]) that the core's scheduler
//! (`tollgate_control_core::health`) asks for.

pub mod probe;
