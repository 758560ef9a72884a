//! Reliable delivery of one tunnel's control messages (RFC 2661 5.8), sans-I/O.
//!
//! Each message gets the next Ns; Nr tells the peer what has arrived. At most the peer's
//! receive window of messages is unacknowledged at once; the rest wait. An
//! unacknowledged message is sent again after a timeout that doubles up to a cap; after
//! the configured retries the peer is declared dead. Messages that arrive in order are
//! delivered; duplicates are dropped and acknowledged again (the peer lost our ack);
//! messages ahead of a gap are kept while they are inside our window. When nothing is
//! sent for a short while after something arrived, a ZLB carries the acknowledgement.
//! Time is passed in.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use tollgate_dataplane::time::Instant;

use super::wire::{self, Message};

/// Timers and window, from `[l2tp]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// First retransmission timeout.
    pub initial: Duration,
    /// The longest retransmission timeout (the timeout doubles up to it).
    pub max: Duration,
    /// Retransmissions before the peer is declared dead.
    pub retries: u32,
    /// How long an acknowledgement waits for a message to ride on before a ZLB is sent.
    pub ack_delay: Duration,
    /// Our receive window (advertised in SCCRQ/SCCRP).
    pub window: u16,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(8),
            retries: 5,
            ack_delay: Duration::from_millis(100),
            window: 8,
        }
    }
}

impl Timing {
    /// The longest a message can stay unacknowledged before its peer is declared dead:
    /// every timeout of the retransmission schedule added up. A tunnel that received a
    /// StopCCN is kept this long, to acknowledge retransmissions of it.
    pub fn full_cycle(&self) -> Duration {
        (0..=self.retries).map(|i| self.timeout(i)).sum()
    }

    fn timeout(&self, tries: u32) -> Duration {
        self.initial
            .checked_mul(1u32 << tries.min(16))
            .unwrap_or(self.max)
            .min(self.max)
    }
}

/// What a channel counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Messages queued to send (not ZLBs).
    pub sent: u64,
    /// Retransmissions.
    pub retransmits: u64,
    /// ZLB acknowledgements sent.
    pub zlbs: u64,
    /// Messages delivered in order.
    pub delivered: u64,
    /// Duplicates received (acknowledged again, dropped).
    pub duplicates: u64,
    /// Messages received ahead of a gap and kept.
    pub reordered: u64,
    /// Messages beyond our window, dropped.
    pub outside_window: u64,
}

#[derive(Debug)]
struct InFlight {
    ns: u16,
    bytes: Vec<u8>,
    next_at: Instant,
    tries: u32,
}

/// `a` comes before `b` in sequence-number space (RFC 1982 style, 16 bits).
pub fn seq_lt(a: u16, b: u16) -> bool {
    a != b && b.wrapping_sub(a) < 0x8000
}

/// One tunnel's reliable control channel.
#[derive(Debug)]
pub struct Channel {
    timing: Timing,
    tunnel: u16,
    ns: u16,
    nr: u16,
    peer_window: u16,
    in_flight: VecDeque<InFlight>,
    waiting: VecDeque<(u16, Vec<u8>)>,
    ahead: BTreeMap<u16, Message>,
    ack_at: Option<Instant>,
    dead: bool,
    /// What it counted.
    pub stats: Stats,
}

impl Channel {
    /// A new channel; ZLBs go to the peer's `tunnel` (0 until it is known).
    pub fn new(timing: Timing) -> Channel {
        Channel {
            timing,
            tunnel: 0,
            ns: 0,
            nr: 0,
            peer_window: 4,
            in_flight: VecDeque::new(),
            waiting: VecDeque::new(),
            ahead: BTreeMap::new(),
            ack_at: None,
            dead: false,
            stats: Stats::default(),
        }
    }

    /// Sets the peer's tunnel id (for ZLBs) and receive window (RFC default 4).
    pub fn set_peer(&mut self, tunnel: u16, window: Option<u16>) {
        self.tunnel = tunnel;
        if let Some(w) = window.filter(|w| *w > 0) {
            self.peer_window = w;
        }
    }

    /// The peer's receive window.
    pub fn peer_window(&self) -> u16 {
        self.peer_window
    }

    /// Queues an encoded message; returns its Ns.
    pub fn send(&mut self, mut bytes: Vec<u8>) -> u16 {
        let ns = self.ns;
        self.ns = self.ns.wrapping_add(1);
        wire::set_sequence(&mut bytes, ns, self.nr);
        self.waiting.push_back((ns, bytes));
        self.stats.sent += 1;
        ns
    }

    /// True once the message with `ns` was acknowledged.
    pub fn acked(&self, ns: u16) -> bool {
        !self.in_flight.iter().any(|m| m.ns == ns) && !self.waiting.iter().any(|m| m.0 == ns)
    }

    /// True when everything sent was acknowledged.
    pub fn idle(&self) -> bool {
        self.in_flight.is_empty() && self.waiting.is_empty()
    }

    /// True once a message went unacknowledged through every retry.
    pub fn is_dead(&self) -> bool {
        self.dead
    }

    /// Messages not yet acknowledged (in flight and waiting for the window).
    pub fn unacked(&self) -> usize {
        self.in_flight.len() + self.waiting.len()
    }

    /// Next Ns to send and next Nr expected.
    pub fn sequence(&self) -> (u16, u16) {
        (self.ns, self.nr)
    }

    /// Takes a received message: its Nr acknowledges what we sent; returns the messages
    /// that are now deliverable, in order (none for a ZLB, a duplicate or a gap).
    pub fn receive(&mut self, now: Instant, m: Message) -> Vec<Message> {
        self.ack(m.nr);
        if m.is_zlb() {
            return Vec::new();
        }
        if m.ns == self.nr {
            let mut out = vec![m];
            self.nr = self.nr.wrapping_add(1);
            while let Some(next) = self.ahead.remove(&self.nr) {
                out.push(next);
                self.nr = self.nr.wrapping_add(1);
            }
            self.stats.delivered += out.len() as u64;
            self.ack_soon(now + self.timing.ack_delay);
            out
        } else if seq_lt(m.ns, self.nr) {
            // The peer did not see our acknowledgement: say it again now.
            self.stats.duplicates += 1;
            self.ack_soon(now);
            Vec::new()
        } else if m.ns.wrapping_sub(self.nr) < self.timing.window {
            self.stats.reordered += 1;
            self.ahead.insert(m.ns, m);
            self.ack_soon(now);
            Vec::new()
        } else {
            self.stats.outside_window += 1;
            Vec::new()
        }
    }

    fn ack_soon(&mut self, at: Instant) {
        self.ack_at = Some(self.ack_at.map_or(at, |a| a.min(at)));
    }

    /// Drops what `nr` acknowledges: every message with an Ns before it. An Nr that
    /// acknowledges something never sent is ignored.
    fn ack(&mut self, nr: u16) {
        if seq_lt(self.ns, nr) {
            return;
        }
        while self.in_flight.front().is_some_and(|m| seq_lt(m.ns, nr)) {
            self.in_flight.pop_front();
        }
    }

    /// The next datagram to send at `now`: a retransmission that is due, a waiting
    /// message the window has room for, or a ZLB that is due.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Vec<u8>> {
        if self.dead {
            return None;
        }
        let nr = self.nr;
        if let Some(m) = self.in_flight.iter_mut().find(|m| m.next_at <= now) {
            if m.tries >= self.timing.retries {
                self.dead = true;
                return None;
            }
            m.tries += 1;
            m.next_at = now + self.timing.timeout(m.tries);
            wire::set_sequence(&mut m.bytes, m.ns, nr);
            self.stats.retransmits += 1;
            self.ack_at = None;
            return Some(m.bytes.clone());
        }
        if self.in_flight.len() < self.peer_window as usize
            && let Some((ns, mut bytes)) = self.waiting.pop_front()
        {
            wire::set_sequence(&mut bytes, ns, nr);
            self.in_flight.push_back(InFlight {
                ns,
                bytes: bytes.clone(),
                next_at: now + self.timing.timeout(0),
                tries: 0,
            });
            self.ack_at = None;
            return Some(bytes);
        }
        if self.ack_at.is_some_and(|t| t <= now) {
            self.ack_at = None;
            self.stats.zlbs += 1;
            return Some(wire::zlb(self.tunnel, self.ns, nr));
        }
        None
    }

    /// When [`Self::poll_transmit`] next has something to send.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.dead {
            return None;
        }
        let window_room =
            !self.waiting.is_empty() && self.in_flight.len() < self.peer_window as usize;
        let resend = self.in_flight.iter().map(|m| m.next_at).min();
        [resend, self.ack_at, window_room.then_some(Instant::ZERO)]
            .into_iter()
            .flatten()
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::l2tp::wire::{Builder, decode, kind};

    fn t(ms: u64) -> Instant {
        Instant(1_000_000_000 + ms * 1_000_000)
    }

    fn hello() -> Vec<u8> {
        Builder::new(kind::HELLO, 7, 0).finish()
    }

    fn msg(ns: u16, nr: u16) -> Message {
        let mut b = hello();
        wire::set_sequence(&mut b, ns, nr);
        decode(&b, None).unwrap()
    }

    fn zlb(nr: u16) -> Message {
        decode(&wire::zlb(7, 0, nr), None).unwrap()
    }

    #[test]
    fn retransmits_with_backoff_then_declares_the_peer_dead() {
        let mut c = Channel::new(Timing::default());
        c.send(hello());
        let first = c.poll_transmit(t(0)).unwrap();
        assert_eq!(wire::ns_of(&first), 0);
        assert!(c.poll_transmit(t(0)).is_none());
        // 1 s, then 2, 4, 8, 8: five retransmissions, then dead.
        let mut at = 0;
        let mut sent_at = Vec::new();
        for gap in [1000, 2000, 4000, 8000, 8000] {
            at += gap;
            assert!(c.poll_transmit(t(at - 1)).is_none(), "not before {at} ms");
            assert_eq!(c.poll_timeout(), Some(t(at)));
            assert!(c.poll_transmit(t(at)).is_some());
            sent_at.push(at);
        }
        assert_eq!(c.stats.retransmits, 5);
        at += 8000;
        assert!(c.poll_transmit(t(at)).is_none());
        assert!(c.is_dead());
        assert_eq!(Timing::default().full_cycle(), Duration::from_secs(31));
    }

    #[test]
    fn ack_stops_retransmission_and_window_limits_in_flight() {
        let mut c = Channel::new(Timing::default());
        c.set_peer(7, Some(2));
        for _ in 0..3 {
            c.send(hello());
        }
        assert!(c.poll_transmit(t(0)).is_some());
        assert!(c.poll_transmit(t(0)).is_some());
        assert!(c.poll_transmit(t(0)).is_none(), "window of 2 is full");
        assert!(!c.acked(0));
        // A ZLB acknowledging Ns 0 opens the window for Ns 2.
        assert!(c.receive(t(10), zlb(1)).is_empty());
        assert!(c.acked(0) && !c.acked(1));
        let third = c.poll_transmit(t(10)).unwrap();
        assert_eq!(wire::ns_of(&third), 2);
        // Nr acknowledging something never sent is ignored.
        c.receive(t(11), zlb(9));
        assert!(!c.acked(1));
        c.receive(t(12), zlb(3));
        assert!(c.idle());
        assert_eq!(c.poll_timeout(), None);
    }

    #[test]
    fn in_order_reorder_duplicate_and_delayed_zlb() {
        let mut c = Channel::new(Timing::default());
        c.set_peer(7, None);
        assert_eq!(c.receive(t(0), msg(0, 0)).len(), 1);
        // Nothing to ride on: a ZLB after the ack delay, with Nr 1.
        assert!(c.poll_transmit(t(50)).is_none());
        let z = decode(&c.poll_transmit(t(100)).unwrap(), None).unwrap();
        assert!(z.is_zlb());
        assert_eq!((z.tunnel, z.nr), (7, 1));
        // Ns 2 before Ns 1: kept, then both delivered in order.
        assert!(c.receive(t(200), msg(2, 0)).is_empty());
        let got = c.receive(t(201), msg(1, 0));
        assert_eq!(got.iter().map(|m| m.ns).collect::<Vec<_>>(), [1, 2]);
        // A duplicate is acknowledged at once.
        c.poll_transmit(t(400));
        assert!(c.receive(t(500), msg(1, 0)).is_empty());
        assert_eq!(c.stats.duplicates, 1);
        let z = decode(&c.poll_transmit(t(500)).unwrap(), None).unwrap();
        assert_eq!(z.nr, 3);
        // An outgoing message carries the ack: no ZLB after it.
        c.receive(t(600), msg(3, 0));
        c.send(hello());
        let m = decode(&c.poll_transmit(t(600)).unwrap(), None).unwrap();
        assert_eq!((m.ns, m.nr), (0, 4));
        assert!(c.poll_transmit(t(800)).is_none());
        // Far ahead of the window: dropped.
        assert!(c.receive(t(900), msg(200, 0)).is_empty());
        assert_eq!(c.stats.outside_window, 1);
    }

    #[test]
    fn sequence_numbers_wrap() {
        assert!(seq_lt(65535, 0));
        assert!(!seq_lt(0, 65535));
        assert!(seq_lt(1, 2) && !seq_lt(2, 2));
        let mut c = Channel::new(Timing::default());
        c.ns = 65535;
        c.send(hello());
        c.send(hello());
        c.poll_transmit(t(0));
        c.poll_transmit(t(0));
        c.receive(t(1), zlb(1));
        assert!(c.idle());
    }
}
