//! Stage: IPv4 forwarding. Validates the header, routes the destination, and decrements
//! the TTL with an incremental checksum update (RFC 1624).

use std::net::Ipv4Addr;

use crate::counters::DropReason;
use crate::fib::{Forwarding, NextHop};
use crate::types::Side;
use crate::wire::ipv4::{MIN_HEADER_LEN, Packet};

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
    let len = ip.len();
    match ip.first_chunk_mut::<MIN_HEADER_LEN>() {
        // The common case, a header without options: the view is over a fixed-size array,
        // so every field access is at a constant offset and needs no bounds check.
        Some(h) if h[0] == 0x45 => {
            let p = Packet::new_unchecked(h);
            if (p.total_len() as usize) < MIN_HEADER_LEN || p.total_len() as usize > len {
                return Err(DropReason::Ipv4Malformed);
            }
            decide(p, fwd)
        }
        _ => decide(
            Packet::new_checked(ip).map_err(|_| DropReason::Ipv4Malformed)?,
            fwd,
        ),
    }
}

/// Checks and routes a header that passed its length checks.
#[inline(always)]
fn decide<T: AsRef<[u8]> + AsMut<[u8]>>(
    mut p: Packet<T>,
    fwd: &Forwarding,
) -> Result<Decision, DropReason> {
    if !p.verify_checksum() {
        return Err(DropReason::Ipv4BadChecksum);
    }
    // By first octet: 0/8 (this network), 127/8 (loopback), 224/4 (multicast) and
    // 240/4 (reserved, with the limited broadcast) are never a unicast host.
    let src = p.src();
    if matches!(src.octets()[0], 0 | 127 | 224..=255) || fwd.is_ours(src) {
        return Err(DropReason::Ipv4MartianSource);
    }
    let dst = p.dst();
    if matches!(dst.octets()[0], 224..=255) {
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
