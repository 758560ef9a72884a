//! Tollgate's sans-I/O control core: the rules of subscriber access, as state machines
//! that take inputs, the time and random bytes from their caller and hand back what to
//! send and what happened. No sockets, files, clocks, sleeps or threads: the shell
//! (`control/`) owns those and drives these engines (see `docs/ppp.md`, `docs/ipoe.md`).
//!
//! What this crate owns (issue 13 moved the sans-I/O rules of `control/` here):
//!
//! - [`gateway`]: the gateway core: sessions, logins and accounting (AAA), address pools,
//!   neighbours, usage and flow records; [`authz`]: the authorisation check.
//! - [`radius`]: the RADIUS codec, the client state machine (retries, failover, hold
//!   down) and CoA / Disconnect (RFC 5176) with its replay cache.
//! - [`l2tp`]: L2TPv2 tunnels and sessions (LAC and LNS), the reliable control channel,
//!   the administration table, consolidation and levels.
//! - [`health`]: health-check scheduling; [`rating`]: tariffs, bands, usage rating and
//!   invoices (the SQLite rater is the shell's).
//! - [`pppoe`]: PPPoE discovery (RFC 2516) as an access concentrator: PADI/PADO/PADR/PADS/
//!   PADT, the AC-Cookie, PADI rate limits, per-MAC and per-line session limits, the
//!   line identification of TR-101 (Agent-Circuit-Id / Agent-Remote-Id), and the wire views
//!   of the PPPoE discovery and session headers.
//! - [`ppp`]: the PPP engine (RFC 1661 option negotiation automaton) with LCP, PAP
//!   (RFC 1334) and CHAP-MD5 (RFC 1994) as authenticator, IPCP (RFC 1332, RFC 1877 DNS) and
//!   IPv6CP (RFC 5072), echo keepalive and dead-peer detection, and the proxy LCP /
//!   proxy authentication hooks of L2TP (RFC 2661 4.4.5), with the wire views of their
//!   packets.
//! - [`dhcp`]: DHCPv4 (RFC 2131/2132) on the access side: the server engine of the IPoE
//!   login (option 82, RFC 3046), relay mode towards external servers, persistent leases.
//! - [`dhcpv6`]: the DHCPv6 server (RFC 8415: IA_NA, IA_PD, Rapid Commit, RFC 3646 DNS,
//!   RFC 6939 client link-layer address).
//! - [`nd`]: the access side's IPv6 router: NS/NA for the gateway, per-subscriber Router
//!   Advertisements (RFC 4861, RFC 8106 RDNSS, RFC 8273), RA guard.
//! - [`ipoe`]: the IPoE subscriber key (line + MAC) both families share; [`inet`]: the
//!   checksum, IPv4/UDP and the IPv6 header and extension-chain views (docs/ipoe.md).
//! - [`wire`]: the Ethernet frame view with 802.1Q / QinQ tags the discovery engine's caller
//!   uses to find the line of a punted frame.
//! - [`timed`]: the per-client state map with its due-instant index the DHCP engines
//!   share.
//! - [`time`], [`entropy`] and [`random`]: the clock value, the random-byte source and the
//!   ChaCha20 CSPRNG (keyed with a seed the caller reads from the OS) the engines take.
//!
//! Tooling keeps I/O out: `#![deny(unsafe_code)]`, and `clippy.toml` in this crate forbids
//! `SystemTime::now`, `Instant::now`, `std::fs`, `std::net` sockets, `std::process`,
//! `thread::sleep` and the like (`scripts/check-core-lints.sh` proves the lint fires).

#![deny(unsafe_code)]
#![deny(clippy::disallowed_methods, clippy::disallowed_types)]

pub mod authz;
mod codec;
pub mod dhcp;
pub mod dhcpv6;
pub mod entropy;
pub mod gateway;
pub mod health;
pub mod inet;
pub mod ipoe;
pub mod l2tp;
pub mod nd;
pub mod ppp;
pub mod pppoe;
pub mod radius;
pub mod random;
pub mod rating;
pub mod time;
pub mod timed;
pub mod wire;

pub use entropy::Entropy;
pub use time::Instant;
