//! Tollgate's control plane shell: everything that does I/O around the sans-I/O rules of
//! `tollgate-control-core`.
//!
//! [`config`] reads and validates the TOML; [`setup`] turns it into engine pieces and core
//! settings. Two shells drive the core: [`engine`] (the daemon: ports, worker threads,
//! the control loop, signals) and [`replay`] (pcap files, the capture's clock).
//! [`dispatch`] moves messages between the core and the workers' rings, [`outlets`]
//! publishes snapshots and writes records; [`aaa`] is the I/O of logins and accounting
//! (the local store's thread, RADIUS and CoA sockets, the [`spool`]); [`health`] runs
//! the probes; [`store`] is the local subscriber store and [`rating`] the rating ledger
//! (SQLite); [`metrics`] serves Prometheus; [`ctl`] is the operator interface (server,
//! client, renderer) and [`proto`] its wire format, typed; [`logging`], [`clock`] and [`os_random`] are the process's log,
//! wall clock and OS randomness.

pub mod aaa;
pub mod clock;
pub mod config;
pub mod ctl;
pub mod database;
pub mod dispatch;
pub mod engine;
pub mod health;
pub mod leases;
pub mod logging;
pub mod metrics;
pub mod migrate;
pub mod os_random;
/// The protocol engines' CSPRNG lives in the core (keyed here by [`os_random`]).
pub use tollgate_control_core::random;
pub mod outlets;
pub mod proto;
pub mod rating;
pub mod relay6;
pub mod replay;
pub mod router;
pub mod setup;
pub mod sizing;
pub mod spool;
pub mod store;
