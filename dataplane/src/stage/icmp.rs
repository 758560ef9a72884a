//! Stage: the gateway's own ICMP. Echo requests to its addresses are answered in place;
//! packets whose TTL ran out are turned into time-exceeded errors (RFC 792, RFC 1812
//! 4.3.2.7 for when not to), and packets too long for a PPPoE line into
//! fragmentation-needed (RFC 1191), paced by a token bucket.

use std::net::Ipv4Addr;

use crate::buf::PacketBuf;
use crate::counters::DropReason;
use crate::time::Instant;
use crate::types::MacAddr;
use crate::wire::ethernet;
use crate::wire::icmpv4::{self, kind};
use crate::wire::ipv4::{self, protocol};

/// Answers the echo request at `l3` in `frame` (already validated as IPv4 to one of our
/// addresses), in place: addresses and MACs swapped, type 0, TTL 64.
pub fn echo_reply(frame: &mut [u8], l3: usize, our_mac: MacAddr) -> Result<(), DropReason> {
    let mut ip =
        ipv4::Packet::new_checked(&mut frame[l3..]).map_err(|_| DropReason::Ipv4Malformed)?;
    if ip.protocol() != protocol::ICMP || ip.frag_offset() != 0 || ip.more_frags() {
        return Err(DropReason::LocalUnsupported);
    }
    {
        let mut icmp =
            icmpv4::Packet::new_checked(ip.payload_mut()).map_err(|_| DropReason::IcmpMalformed)?;
        if icmp.kind() != kind::ECHO_REQUEST {
            return Err(DropReason::LocalUnsupported);
        }
        if !icmp.verify_checksum() {
            return Err(DropReason::IcmpMalformed);
        }
        icmp.make_echo_reply();
    }
    let (src, dst) = (ip.src(), ip.dst());
    ip.set_src(dst);
    ip.set_dst(src);
    ip.set_ttl(64);
    ip.fill_checksum();
    let requester = ethernet::Frame::new_unchecked(&*frame).src();
    ethernet::rewrite_macs(frame, requester, our_mac);
    Ok(())
}

/// True if an ICMP error may be sent about the IPv4 packet at `l3`: not about an ICMP
/// error, and not about a fragment other than the first.
pub fn may_report(frame: &[u8], l3: usize) -> bool {
    let Ok(ip) = ipv4::Packet::new_checked(&frame[l3..]) else {
        return false;
    };
    if ip.frag_offset() != 0 {
        return false;
    }
    if ip.protocol() == protocol::ICMP {
        return ip.payload().first().is_some_and(|t| !kind::is_error(*t));
    }
    true
}

/// Replaces the IPv4 packet at `l3` in `buf` with an ICMP error (`kind`, `code`) about
/// it, from `from`, quoting its header and first 8 payload bytes, sent back to where it
/// came from. False if the buffer cannot hold the error.
pub fn error_in_place<B: PacketBuf>(
    buf: &mut B,
    l3: usize,
    from: Ipv4Addr,
    our_mac: MacAddr,
    kind: u8,
    code: u8,
) -> bool {
    let (orig_src, quote_len) = {
        let Ok(ip) = ipv4::Packet::new_checked(&buf.data()[l3..]) else {
            return false;
        };
        (ip.src(), (ip.header_len() + 8).min(ip.total_len() as usize))
    };
    let hdrs = ipv4::MIN_HEADER_LEN + icmpv4::HEADER_LEN;
    let total = hdrs + quote_len;
    if !buf.set_len(l3 + total) {
        return false;
    }
    let frame = buf.data_mut();
    frame.copy_within(l3..l3 + quote_len, l3 + hdrs);
    ipv4::write_header(
        &mut frame[l3..],
        total as u16,
        64,
        protocol::ICMP,
        from,
        orig_src,
    );
    icmpv4::write_error(
        &mut frame[l3 + ipv4::MIN_HEADER_LEN..l3 + total],
        kind,
        code,
    );
    let sender = ethernet::Frame::new_unchecked(&*frame).src();
    ethernet::rewrite_macs(frame, sender, our_mac);
    true
}

/// An ICMP time-exceeded (in transit) from `our_ip`: see [`error_in_place`].
pub fn time_exceeded<B: PacketBuf>(
    buf: &mut B,
    l3: usize,
    our_ip: Ipv4Addr,
    our_mac: MacAddr,
) -> bool {
    error_in_place(buf, l3, our_ip, our_mac, kind::TIME_EXCEEDED, 0)
}

/// An ICMP fragmentation-needed (destination unreachable, code 4) from `our_ip`
/// carrying the next-hop MTU `mtu` (RFC 1191): see [`error_in_place`].
pub fn frag_needed<B: PacketBuf>(
    buf: &mut B,
    l3: usize,
    our_ip: Ipv4Addr,
    our_mac: MacAddr,
    mtu: u16,
) -> bool {
    if !error_in_place(buf, l3, our_ip, our_mac, kind::DEST_UNREACHABLE, 4) {
        return false;
    }
    // The checksum was made over a zero MTU field: add the MTU in.
    let at = l3 + ipv4::MIN_HEADER_LEN;
    let Some(m) = buf.data_mut().get_mut(at..at + icmpv4::HEADER_LEN) else {
        return false;
    };
    let c = crate::wire::checksum::update16(u16::from_be_bytes([m[2], m[3]]), 0, mtu);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    m[6..8].copy_from_slice(&mtu.to_be_bytes());
    true
}

/// A token bucket of `rate` tokens per second, holding at most `rate` tokens.
#[derive(Clone, Debug)]
pub struct TokenBucket {
    rate: u64,
    /// Tokens scaled by 1e9, so refills need no division.
    nano_tokens: u64,
    last: Instant,
}

const NANO: u64 = 1_000_000_000;

impl TokenBucket {
    /// A full bucket of `rate` per second.
    pub fn new(rate: u32) -> Self {
        TokenBucket {
            rate: rate as u64,
            nano_tokens: rate as u64 * NANO,
            last: Instant::ZERO,
        }
    }

    /// Changes the rate, keeping the tokens (capped at the new rate).
    pub fn set_rate(&mut self, rate: u32) {
        self.rate = rate as u64;
        self.nano_tokens = self.nano_tokens.min(self.rate * NANO);
    }

    /// Takes a token if one is there.
    pub fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.0.saturating_sub(self.last.0);
        self.last = self.last.max(now);
        self.nano_tokens = self
            .nano_tokens
            .saturating_add(elapsed.saturating_mul(self.rate))
            .min(self.rate * NANO);
        if self.nano_tokens >= NANO {
            self.nano_tokens -= NANO;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_paces() {
        let mut b = TokenBucket::new(2);
        let t0 = Instant(5 * NANO);
        assert!(b.take(t0));
        assert!(b.take(t0));
        assert!(!b.take(t0));
        assert!(!b.take(Instant(t0.0 + NANO / 2 - 1)));
        assert!(b.take(Instant(t0.0 + NANO / 2)));
        let mut off = TokenBucket::new(0);
        assert!(!off.take(t0));
    }
}
