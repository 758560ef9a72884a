//! The tables a worker looks up per packet, each sized at start so that nothing grows,
//! rehashes or moves on the fast path (see each module for how it keeps that).
//!
//! | module | owns | written by | read per packet by |
//! |---|---|---|---|
//! | [`session`] | the worker's subscriber sessions: slab, by-address and by-id indexes, deadline heap, policers, counters | session commands | the subscriber stage (uplink by source, downlink by destination) |
//! | [`flow`] | the worker's NAT flows: slab, uplink index, NAT-port down index and free-port lists, TCP state, per-flow counters; and the balancers' per-worker state ([`flow::balance`]) | the subscriber stage (a first packet opens a flow), expiry, session ends | the subscriber stage, the look-ahead |
//! | [`nat64`] | the worker's NAT64 bindings: slab, uplink index, pool-port down index and free-port lists; and `[nat64]` as the snapshot holds it | the NAT64 stage (a first packet opens a binding), expiry | the NAT64 stage |
//! | [`l2tp`] | the worker's L2TP sessions: the array by local session id, the subscriber-to-session steering index, prebuilt encapsulations, counters | L2TP commands | the tunnel stage |
//! | [`lb`] | the L2 load-balancing ranges and their targets' states (inside the forwarding snapshot, read-only to workers) | the control plane, by publishing a snapshot | the subscriber stage |
//! | [`sticky`] | per-login stickiness: the server a session's flows to a `login`-type service go to, in a slab with a fixed index (held by the session table, sized and counted with it, made at the first snapshot with a `login` service) | the subscriber stage (a first flow's choice), session ends | the subscriber stage |
//! | [`neighbor`] | next hop to MAC, with the cache in front and the pending-resolution marks | neighbour commands, misses | the forwarding tail |
//! | [`lpm`] | the IPv4 routes (inside the forwarding snapshot) | the control plane, by publishing a snapshot | route lookup |
//! | [`route6`] | the core side's IPv6 routes and the MACs of their neighbours (inside the forwarding snapshot) | the control plane, by publishing a snapshot | the IPv6 stage (uplink) |
//! | [`index`] | the fixed bucketised hash index under the session, flow and L2TP tables | those tables | those tables |
//!
//! The crate root re-exports `session`, `l2tp`, `lb` and `flow` (as `nat`) at the paths
//! they had before they moved here.

#![deny(unsafe_code)]

pub mod flow;
pub mod index;
pub mod l2tp;
pub mod lb;
pub mod lpm;
pub mod nat64;
pub mod neighbor;
pub mod route6;
pub mod session;
pub mod sticky;
