//! Stage: IPv4 forwarding. Validates the header, routes the destination, and decrements
//! the TTL with an incremental checksum update (RFC 1624).

use std::net::Ipv4Addr;

use crate::counters::DropReason;
use crate::fib::{Forwarding, NextHop};
use crate::types::Side;
use crate::wire::ipv4::{MIN_HEADER_LEN, Packet};

/// What the stages need of a validated IPv4 header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Protocol.
    pub proto: u8,
    /// Header length.
    pub hl: usize,
    /// Total length (what counters count).
    pub total: usize,
    /// Time to live.
    pub ttl: u8,
    /// True for any fragment (offset or more-fragments set).
    pub fragment: bool,
}

/// Checks the IPv4 packet that starts at `ip` (the buffer from the IPv4 header to the end
/// of the frame): lengths, checksum, unicast source and destination.
#[inline(always)]
pub fn validate(ip: &[u8], fwd: &Forwarding) -> Result<Header, DropReason> {
    let len = ip.len();
    let h = match ip.first_chunk::<MIN_HEADER_LEN>() {
        // The common case, a header without options: the view is over a fixed-size array,
        // so every field access is at a constant offset and needs no bounds check.
        Some(h) if h[0] == 0x45 => {
            let p = Packet::new_unchecked(h);
            let total = p.total_len() as usize;
            if total < MIN_HEADER_LEN || total > len {
                return Err(DropReason::Ipv4Malformed);
            }
            header(&p, total)?
        }
        _ => {
            let p = Packet::new_checked(ip).map_err(|_| DropReason::Ipv4Malformed)?;
            header(&p, p.total_len() as usize)?
        }
    };
    // By first octet: 0/8 (this network), 127/8 (loopback), 224/4 (multicast) and
    // 240/4 (reserved, with the limited broadcast) are never a unicast host.
    if matches!(h.src.octets()[0], 0 | 127 | 224..=255) || fwd.is_ours(h.src) {
        return Err(DropReason::Ipv4MartianSource);
    }
    if matches!(h.dst.octets()[0], 224..=255) {
        return Err(DropReason::Ipv4NotUnicast);
    }
    Ok(h)
}

/// The header of an IPv4 packet the gateway built itself (an answer in place): checked
/// as a header, its source not (it is ours).
pub fn header_of(ip: &[u8]) -> Result<Header, DropReason> {
    let p = Packet::new_checked(ip).map_err(|_| DropReason::Ipv4Malformed)?;
    header(&p, p.total_len() as usize)
}

#[inline(always)]
fn header<T: AsRef<[u8]>>(p: &Packet<T>, total: usize) -> Result<Header, DropReason> {
    if !p.verify_checksum() {
        return Err(DropReason::Ipv4BadChecksum);
    }
    Ok(Header {
        src: p.src(),
        dst: p.dst(),
        proto: p.protocol(),
        hl: p.header_len(),
        total,
        ttl: p.ttl(),
        fragment: p.frag_offset() != 0 || p.more_frags(),
    })
}

/// Where a destination is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// The gateway itself.
    Local,
    /// Out of `side`, to the neighbour `next_hop`.
    Out {
        /// Egress side.
        side: Side,
        /// The neighbour to send to.
        next_hop: Ipv4Addr,
    },
}

/// Routes `dst`.
#[inline]
pub fn route(fwd: &Forwarding, dst: Ipv4Addr) -> Result<Route, DropReason> {
    match fwd.route(dst) {
        None => Err(DropReason::NoRoute),
        Some(NextHop::Local) => Ok(Route::Local),
        Some(NextHop::Broadcast) => Err(DropReason::Ipv4NotUnicast),
        Some(NextHop::Connected(side)) => Ok(Route::Out {
            side,
            next_hop: dst,
        }),
        Some(NextHop::Via { side, gateway }) => Ok(Route::Out {
            side,
            next_hop: gateway,
        }),
    }
}

/// Decrements the TTL of the IPv4 packet at `ip` (checked above 1) and updates its
/// checksum.
#[inline]
pub fn decrement_ttl(ip: &mut [u8]) {
    if let Some(h) = ip.first_chunk_mut::<MIN_HEADER_LEN>() {
        Packet::new_unchecked(h).decrement_ttl();
    }
}
