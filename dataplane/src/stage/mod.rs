//! The fast-path stages, and the [`Pipeline`] that runs a packet through them.
//!
//! Each stage is a module with plain functions over packet bytes: [`parse`] classifies
//! the frame, [`arp`] answers for the gateway's addresses, [`forward`] validates, routes
//! and decrements the TTL, [`icmp`] answers echo requests and reports expired TTLs,
//! [`rewrite`] writes the MACs. The pipeline owns the per-worker state the stages use
//! (neighbour table, counters, the up-rings) and returns one [`Verdict`] per packet; the
//! worker loop does the I/O.

#![deny(unsafe_code)]

pub mod arp;
pub mod forward;
pub mod icmp;
pub mod parse;
pub mod rewrite;

use std::net::Ipv4Addr;

use crate::buf::PacketBuf;
use crate::counters::{DropReason, WorkerCounters};
use crate::fib::Forwarding;
use crate::msg::{Event, Frame};
use crate::ring::Producer;
use crate::table::neighbor::{Lookup, NeighborTable};
use crate::time::Instant;
use crate::types::Side;

/// What happens to a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Send it on this side's port (routed and rewritten).
    Forward(Side),
    /// Send it back out of the port it came in on (the gateway's own answer, built in
    /// the packet's buffer).
    Reply,
    /// Free it and count the reason.
    Drop(DropReason),
    /// It was copied to the control plane; free it.
    Punted,
    /// Keep it until `next_hop` on `side` is resolved.
    Hold(Side, Ipv4Addr),
}

/// The per-worker state the stages use.
#[derive(Debug)]
pub struct Pipeline {
    /// Next hops resolved by the control plane.
    pub neighbors: NeighborTable,
    /// This worker's counters.
    pub counters: WorkerCounters,
    /// Events for the control plane.
    pub events: Producer<Event>,
    /// Frames for the control plane.
    pub punt: Producer<Frame>,
    /// Paces ICMP errors.
    pub icmp_limit: icmp::TokenBucket,
}

impl Pipeline {
    /// Runs one received packet through the stages.
    #[inline]
    pub fn process<B: PacketBuf>(
        &mut self,
        fwd: &Forwarding,
        side: Side,
        buf: &mut B,
        now: Instant,
    ) -> Verdict {
        let port = fwd.side(side);
        match parse::ethernet(buf.data(), port.mac) {
            Err(r) => Verdict::Drop(r),
            Ok((parse::L3Kind::Arp, l3)) => self.arp(fwd, side, buf.data_mut(), l3),
            Ok((parse::L3Kind::Ipv4, l3)) => self.ipv4(fwd, side, buf, l3, now),
        }
    }

    fn arp(&mut self, fwd: &Forwarding, side: Side, frame: &mut [u8], l3: usize) -> Verdict {
        match arp::classify(frame, l3, fwd.side(side)) {
            arp::Action::Drop(r) => Verdict::Drop(r),
            arp::Action::Punt => self.punt(side, frame),
            arp::Action::ReplyAndLearn => {
                self.punt_copy(side, frame);
                arp::reply_in_place(frame, l3, fwd.side(side));
                Verdict::Reply
            }
        }
    }

    fn ipv4<B: PacketBuf>(
        &mut self,
        fwd: &Forwarding,
        side: Side,
        buf: &mut B,
        l3: usize,
        now: Instant,
    ) -> Verdict {
        let decision = match forward::route(&mut buf.data_mut()[l3..], fwd) {
            Ok(d) => d,
            Err(r) => return Verdict::Drop(r),
        };
        match decision {
            forward::Decision::Local => {
                match icmp::echo_reply(buf.data_mut(), l3, fwd.side(side).mac) {
                    Ok(()) => Verdict::Reply,
                    Err(r) => Verdict::Drop(r),
                }
            }
            forward::Decision::TtlExpired => {
                let ours = fwd.side(side);
                if !icmp::may_report(buf.data(), l3) {
                    return Verdict::Drop(DropReason::TtlExpired);
                }
                if !self.icmp_limit.take(now) {
                    self.counters.icmp_rate_limited += 1;
                    return Verdict::Drop(DropReason::TtlExpired);
                }
                if !icmp::time_exceeded(buf, l3, ours.address, ours.mac) {
                    return Verdict::Drop(DropReason::TtlExpired);
                }
                // The expired packet is dropped and counted; the error that replaces it
                // in the same buffer is generated and sent back.
                self.counters.drop(DropReason::TtlExpired);
                self.counters.icmp_errors += 1;
                Verdict::Reply
            }
            forward::Decision::Forward {
                side: out,
                next_hop,
            } => match self.neighbors.lookup(next_hop, now) {
                Lookup::Mac(mac) => {
                    rewrite::l2(buf.data_mut(), mac, fwd.side(out).mac);
                    Verdict::Forward(out)
                }
                Lookup::Ask => {
                    if self
                        .events
                        .push(Event::Resolve {
                            ip: next_hop,
                            side: out,
                        })
                        .is_err()
                    {
                        self.counters.event_ring_full += 1;
                        self.neighbors.unask(next_hop);
                    }
                    Verdict::Hold(out, next_hop)
                }
                Lookup::Pending => Verdict::Hold(out, next_hop),
                Lookup::Failed => Verdict::Drop(DropReason::NeighborUnresolved),
                Lookup::Full => Verdict::Drop(DropReason::NeighborTableFull),
            },
        }
    }

    /// Hands the frame to the control plane; the packet is consumed.
    fn punt(&mut self, side: Side, frame: &[u8]) -> Verdict {
        if Frame::new(side, frame).is_some_and(|f| self.punt.push(f).is_ok()) {
            Verdict::Punted
        } else {
            Verdict::Drop(DropReason::PuntRingFull)
        }
    }

    /// Sends the control plane a copy of a frame the worker also handles itself.
    fn punt_copy(&mut self, side: Side, frame: &[u8]) {
        if Frame::new(side, frame).is_some_and(|f| self.punt.push(f).is_ok()) {
            self.counters.punt_copies += 1;
        } else {
            self.counters.punt_copies_lost += 1;
        }
    }
}
