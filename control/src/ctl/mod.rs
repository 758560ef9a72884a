//! The operator interface: a Unix socket speaking JSON lines (`docs/ctl.md`).
//!
//! [`server`] accepts connections and hands each request to the control thread;
//! [`handlers`] builds the JSON answers from the control plane's state; [`client`] is
//! `tollgate ctl`, which sends one request and renders the answer with [`render`].

pub mod billing;
pub mod client;
pub mod handlers;
pub mod l2tp;
pub mod proto;
pub mod render;
pub mod server;
