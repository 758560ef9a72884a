//! Tollgate's control plane and the `tollgate` binary's commands.
//!
//! The control core ([`core`]) is sans-I/O: it takes `now` and what workers sent up, and
//! returns what goes down. Two shells drive it: [`engine`] (the daemon: threads, the
//! control socket, signals) and [`replay`] (pcap files, the capture's clock). [`config`]
//! reads and validates the TOML; [`setup`] turns it into engine pieces; [`dispatch`]
//! moves messages between the core and the workers' rings; [`ctl`] is the operator
//! interface; [`rating`] turns usage records into charges and invoices; [`l2tp`] runs
//! tunnels.

pub mod aaa_config;
pub mod aaa_shell;
#[cfg(feature = "af_xdp")]
pub mod af_xdp;
pub mod authz;
pub mod bench;
pub mod config;
pub mod core;
pub mod ctl;
pub mod dispatch;
#[cfg(feature = "dpdk")]
pub mod dpdk;
pub mod engine;
pub mod health;
pub mod l2tp;
pub mod logging;
pub mod metrics;
pub mod os_random;
pub mod outlets;
pub mod pktgen;
pub mod radius;
pub mod random;
pub mod rating;
pub mod replay;
pub mod setup;
pub mod sizing;
pub mod spool;
pub mod store;
