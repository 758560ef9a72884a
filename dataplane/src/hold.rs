//! The hold queue: packets waiting for their next hop to be resolved.
//!
//! Small and bounded (VPP holds one packet per incomplete adjacency, Linux three per
//! neighbour). When full, or when a packet has waited too long, packets are dropped and
//! counted as `neighbor_unresolved`.

use std::net::Ipv4Addr;

use arrayvec::ArrayVec;

use crate::time::Instant;
use crate::types::Side;

/// The most packets a hold queue can be configured to keep.
pub const HOLD_MAX: usize = 256;

/// A held packet.
#[derive(Debug)]
pub struct Held<B> {
    /// The packet, already routed and TTL-decremented.
    pub buf: B,
    /// Egress side.
    pub side: Side,
    /// The next hop being resolved.
    pub next_hop: Ipv4Addr,
    /// When it was held.
    pub since: Instant,
}

/// A bounded queue of held packets.
#[derive(Debug)]
pub struct HoldQueue<B> {
    items: ArrayVec<Held<B>, HOLD_MAX>,
    capacity: usize,
}

impl<B> HoldQueue<B> {
    /// A queue for up to `capacity` packets (at most [`HOLD_MAX`]).
    pub fn new(capacity: usize) -> Self {
        HoldQueue {
            items: ArrayVec::new(),
            capacity: capacity.min(HOLD_MAX),
        }
    }

    /// Holds a packet, or hands it back when the queue is full.
    pub fn push(&mut self, h: Held<B>) -> Result<(), B> {
        if self.items.len() >= self.capacity {
            return Err(h.buf);
        }
        self.items.push(h);
        Ok(())
    }

    /// Removes and passes to `f` every packet waiting for `ip`, oldest first.
    pub fn take_for(&mut self, ip: Ipv4Addr, mut f: impl FnMut(Held<B>)) {
        let mut i = 0;
        while i < self.items.len() {
            if self.items[i].next_hop == ip {
                f(self.items.remove(i));
            } else {
                i += 1;
            }
        }
    }

    /// Removes and passes to `f` every packet held since before `deadline`.
    pub fn take_older(&mut self, deadline: Instant, mut f: impl FnMut(Held<B>)) {
        let mut i = 0;
        while i < self.items.len() {
            if self.items[i].since < deadline {
                f(self.items.remove(i));
            } else {
                i += 1;
            }
        }
    }

    /// Removes everything.
    pub fn take_all(&mut self, f: impl FnMut(Held<B>)) {
        self.items.drain(..).for_each(f);
    }

    /// When the oldest packet was held.
    pub fn oldest(&self) -> Option<Instant> {
        self.items.iter().map(|h| h.since).min()
    }

    /// Packets held.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(v: u32, ip: u8, t: u64) -> Held<u32> {
        Held {
            buf: v,
            side: Side::Core,
            next_hop: Ipv4Addr::new(10, 0, 0, ip),
            since: Instant(t),
        }
    }

    #[test]
    fn bounded_and_released_by_neighbour_or_age() {
        let mut q = HoldQueue::new(3);
        q.push(held(1, 1, 10)).unwrap();
        q.push(held(2, 2, 20)).unwrap();
        q.push(held(3, 1, 30)).unwrap();
        assert_eq!(q.push(held(4, 1, 40)), Err(4));
        let mut got = vec![];
        q.take_for(Ipv4Addr::new(10, 0, 0, 1), |h| got.push(h.buf));
        assert_eq!(got, vec![1, 3]);
        assert_eq!(q.oldest(), Some(Instant(20)));
        let mut old = vec![];
        q.take_older(Instant(21), |h| old.push(h.buf));
        assert_eq!(old, vec![2]);
        assert!(q.is_empty());
    }
}
