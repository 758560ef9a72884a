//! Stage: IPv4 forwarding. Validates the header, routes the destination, and decrements
//! the TTL with an incremental checksum update (RFC 1624).

use std::net::Ipv4Addr;

use crate::counters::DropReason;
use crate::fib::{Forwarding, NextHop};
use crate::types::Side;
use crate::wire::WireError;
use crate::wire::ipv4::Packet;

/// Where a valid packet goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// To the gateway itself.
    Local,
    /// Out of `side` to `next_hop`; the TTL is already decremented.
    Forward {
        /// Egress side.
        side: Side,
        /// The neighbour to send to.
        next_hop: Ipv4Addr,
    },
    /// The TTL ran out; nothing was changed.
    TtlExpired,
}

/// Routes the IPv4 packet that starts at `ip` (the buffer from the IPv4 header to the end
/// of the frame).
#[inline]
pub fn route(ip: &mut [u8], fwd: &Forwarding) -> Result<Decision, DropReason> {
    let mut p = Packet::new_checked(ip).map_err(|e| match e {
        WireError::Truncated | WireError::Malformed => DropReason::Ipv4Malformed,
    })?;
    if !p.verify_checksum() {
        return Err(DropReason::Ipv4BadChecksum);
    }
    let src = p.src();
    if src.is_multicast()
        || src.is_broadcast()
        || src.is_loopback()
        || src.is_unspecified()
        || fwd.is_ours(src)
    {
        return Err(DropReason::Ipv4MartianSource);
    }
    let dst = p.dst();
    if dst.is_multicast() || dst.is_broadcast() {
        return Err(DropReason::Ipv4NotUnicast);
    }
    let (side, next_hop) = match fwd.route(dst) {
        None => return Err(DropReason::NoRoute),
        Some(NextHop::Local) => return Ok(Decision::Local),
        Some(NextHop::Broadcast) => return Err(DropReason::Ipv4NotUnicast),
        Some(NextHop::Connected(side)) => (side, dst),
        Some(NextHop::Via { side, gateway }) => (side, gateway),
    };
    if p.ttl() <= 1 {
        return Ok(Decision::TtlExpired);
    }
    p.decrement_ttl();
    Ok(Decision::Forward { side, next_hop })
}
