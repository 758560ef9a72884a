//! Handing a packet to the worker that owns its state.
//!
//! Workers share nothing: a subscriber's session lives on [`steer::subscriber_worker`], a
//! NAT flow on the worker whose slice of the NAT ports holds its port
//! ([`steer::nat_port_worker`]). When the port cannot deliver each packet to its owner
//! (RSS hashes on the 5-tuple, vdevs do not steer at all), the worker that received a
//! packet hands it to the owner through a bounded SPSC ring; a full ring is a counted drop
//! ([`crate::DropReason::HandoffFull`]), never a wait. Every pair of workers has one ring
//! each way, so each ring keeps the single-producer/single-consumer ownership of
//! [`crate::ring`].
//!
//! Buffers move with their packets. A shared pool (DPDK: an mbuf goes back to its own
//! mempool whoever frees it) needs nothing more. A private pool ([`crate::HeapPool`]) must
//! stay balanced, so the owner gives back one empty buffer of its own for every packet it
//! takes, on a second ring; it takes a packet only when it can give one back, so no pool
//! ever holds more buffers than it was made with.
//!
//! [`steer::subscriber_worker`]: crate::steer::subscriber_worker
//! [`steer::nat_port_worker`]: crate::steer::nat_port_worker

#![deny(unsafe_code)]

use crate::ring::{Consumer, Producer, ring};
use crate::types::Side;

/// A packet on its way to its owner, with the side it came in on.
pub struct Handed<B> {
    /// The side it was received on (where it is processed as if received by the owner).
    pub side: Side,
    /// The packet.
    pub buf: B,
}

/// One worker's ends of the handoff mesh.
pub struct Handoff<B> {
    me: u16,
    workers: u16,
    /// `to[w]`: packets for worker `w` (none for ourselves).
    to: Box<[Option<Producer<Handed<B>>>]>,
    /// `from[w]`: packets from worker `w`.
    from: Box<[Option<Consumer<Handed<B>>>]>,
    /// `repay_to[w]`: empty buffers we give `w` for the packets it handed us.
    repay_to: Box<[Option<Producer<B>>]>,
    /// `repaid_by[w]`: empty buffers `w` gives us for the packets we handed it.
    repaid_by: Box<[Option<Consumer<B>>]>,
}

impl<B> std::fmt::Debug for Handoff<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Handoff(worker {} of {})", self.me, self.workers)
    }
}

/// The ends of a full mesh of handoff rings between `workers` workers, `capacity` packets
/// per ring; element `i` goes to worker `i`.
pub fn mesh<B>(workers: u16, capacity: usize) -> Vec<Handoff<B>> {
    let n = workers.max(1) as usize;
    let mut ends: Vec<Handoff<B>> = (0..n)
        .map(|me| Handoff {
            me: me as u16,
            workers: n as u16,
            to: (0..n).map(|_| None).collect(),
            from: (0..n).map(|_| None).collect(),
            repay_to: (0..n).map(|_| None).collect(),
            repaid_by: (0..n).map(|_| None).collect(),
        })
        .collect();
    for a in 0..n {
        for b in (0..n).filter(|b| *b != a) {
            let (p, c) = ring(capacity);
            ends[a].to[b] = Some(p);
            ends[b].from[a] = Some(c);
            // Never more than `capacity` buffers are owed: b takes a packet only when it
            // has room here.
            let (p, c) = ring(capacity);
            ends[b].repay_to[a] = Some(p);
            ends[a].repaid_by[b] = Some(c);
        }
    }
    ends
}

impl<B> Handoff<B> {
    /// This worker's index.
    #[inline]
    pub fn me(&self) -> u16 {
        self.me
    }

    /// Workers in the mesh.
    #[inline]
    pub fn workers(&self) -> u16 {
        self.workers
    }

    /// Hands a packet to worker `owner`; gives it back if that ring is full (or `owner`
    /// is this worker or out of range).
    #[inline]
    pub fn send(&mut self, owner: u16, side: Side, buf: B) -> Result<(), B> {
        match self.to.get_mut(owner as usize).and_then(Option::as_mut) {
            Some(p) => p.push(Handed { side, buf }).map_err(|h| h.buf),
            None => Err(buf),
        }
    }

    /// Packets waiting from worker `from`.
    #[inline]
    pub fn waiting(&self, from: usize) -> usize {
        self.from[from].as_ref().map_or(0, Consumer::len)
    }

    /// Takes the oldest packet from worker `from`.
    #[inline]
    pub fn recv(&mut self, from: usize) -> Option<Handed<B>> {
        self.from[from].as_mut()?.pop()
    }

    /// Room for empty buffers owed to worker `to`.
    #[inline]
    pub fn repay_room(&self, to: usize) -> usize {
        self.repay_to[to].as_ref().map_or(0, Producer::free)
    }

    /// Gives worker `to` an empty buffer for a packet it handed us. Hands the buffer back
    /// if there is no room (callers check [`Self::repay_room`] first).
    #[inline]
    pub fn repay(&mut self, to: usize, buf: B) -> Result<(), B> {
        match self.repay_to[to].as_mut() {
            Some(p) => p.push(buf),
            None => Err(buf),
        }
    }

    /// Takes the empty buffers other workers gave back, passing each to `put`.
    pub fn collect_repaid(&mut self, mut put: impl FnMut(B)) {
        for c in self.repaid_by.iter_mut().flatten() {
            while let Some(b) = c.pop() {
                put(b);
            }
        }
    }

    /// Packets handed to other workers and still in their rings (not yet taken).
    pub fn in_flight(&self) -> usize {
        self.to
            .iter()
            .flatten()
            .map(|p| p.capacity() - p.free())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mesh_connects_every_pair_both_ways() {
        let mut ends = mesh::<u32>(3, 2);
        assert_eq!(ends[1].me(), 1);
        assert_eq!(ends[1].workers(), 3);
        assert_eq!(ends[0].send(0, Side::Access, 7), Err(7), "not to ourselves");
        assert_eq!(ends[0].send(3, Side::Access, 7), Err(7), "no such worker");
        assert_eq!(ends[0].send(2, Side::Core, 1), Ok(()));
        assert_eq!(ends[0].send(2, Side::Core, 2), Ok(()));
        assert_eq!(ends[0].send(2, Side::Core, 3), Err(3), "ring full");
        assert_eq!(ends[0].in_flight(), 2);
        assert_eq!(ends[2].waiting(0), 2);
        assert_eq!(ends[2].waiting(1), 0);
        let h = ends[2].recv(0).unwrap();
        assert_eq!((h.side, h.buf), (Side::Core, 1));
        assert_eq!(ends[2].repay_room(0), 2);
        assert_eq!(ends[2].repay(0, 100), Ok(()));
        let mut back = Vec::new();
        ends[0].collect_repaid(|b| back.push(b));
        assert_eq!(back, vec![100]);
        assert_eq!(ends[1].send(0, Side::Access, 9), Ok(()));
        assert_eq!(ends[0].recv(1).map(|h| h.buf), Some(9));
    }
}
