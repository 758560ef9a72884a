//! IPv6 Neighbor Discovery on the access side (RFC 4861), sans-I/O: the gateway as the
//! subscribers' router (issue 16, SPEC V6-1).
//!
//! [`Router`] answers Neighbor Solicitations for the gateway's addresses (the link-local
//! fe80:: address derived from the port MAC, and the global ones configured), sends
//! Router Advertisements (M/O flags by config, MTU, RDNSS of RFC 8106, and each
//! subscriber's own /64 from the caller: periodic and solicited, unicast per subscriber
//! as RFC 8273 describes for shared lines, and multicast on dedicated 1:1 lines), and is
//! the RA guard: RAs and Redirects from subscribers are counted drops. PPP sessions
//! (after IPv6CP) get the same RAs over the PPP link, without link-layer options.
//!
//! [`wire`] holds the ICMPv6/ND views and builders.

pub mod router;
pub mod wire;

pub use router::{
    Advert, DropReason, Event, LineMode, Link, Peer, Router, RouterConfig, Stats, Transmit,
};
