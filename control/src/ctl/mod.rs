//! The operator interface: a Unix socket speaking JSON lines (`docs/ctl.md`).
//!
//! [`server`] accepts connections and hands each request to the control thread;
//! [`handlers`] builds the typed answers of [`crate::proto`] from the control plane's state; [`client`] is
//! `tollgate ctl`, which sends one request and renders the answer with [`render`].
//! No `unsafe` anywhere under here (`forbid`): the server polls through rustix.

#![forbid(unsafe_code)]

/// The wire format, typed ([`crate::proto`]): here too for the callers that name it so.
pub use crate::proto;

pub mod billing;
pub mod client;
pub mod handlers;
pub mod l2tp;
pub mod render;
pub mod server;
