//! Looking ahead over a burst: before the packets run through the stages one by one,
//! each packet's table lookups are started for the whole burst in stages, each stage
//! prefetching what the next one reads (VPP's dual/quad loops, burst-wide). Uplink: the
//! session and flow index buckets, then the session and flow entries. Downlink: the
//! NAT port's down-index entry, then the flow, then its session. With many subscribers
//! these are cache misses; started together they overlap instead of following one
//! another. Nothing here decides anything: a wrong guess costs a wasted prefetch.

use std::net::Ipv4Addr;

use arrayvec::ArrayVec;

use super::Pipeline;
use crate::buf::{MAX_BURST, PacketBuf};
use crate::fib::Forwarding;
use crate::table::flow::NIL;
use crate::types::Side;
use crate::wire::flow;

/// Below this many sessions and flows together the tables stay in the core's own caches
/// (a few hundred KiB), a lookup does not miss, and looking ahead costs more than it
/// saves (about 60 instructions per packet): measured with `tollgate bench` and
/// callgrind at 1k and 100k flows.
pub const LOOK_AHEAD_FROM: usize = 8192;

/// What the look ahead guessed for a packet: the likely session slot and flow of an
/// uplink packet (`NIL` for none). Confirmed against the entry before use, so a wrong
/// guess only costs the full lookup it would have cost anyway.
#[derive(Clone, Copy, Debug)]
pub struct Hint {
    /// The likely session slot.
    pub session: u32,
    /// The likely flow.
    pub flow: u32,
}

impl Hint {
    /// No guess.
    pub const NONE: Hint = Hint {
        session: NIL,
        flow: NIL,
    };
}

/// What a lookup needs of a packet, read without validation.
#[derive(Clone, Copy)]
struct Peek {
    /// Uplink: the subscriber's address. Downlink: the destination.
    addr: Ipv4Addr,
    /// Uplink: the service (`u16::MAX`: none). Downlink: the NAT address (`u16::MAX`:
    /// none).
    ix: u16,
    proto: u8,
    /// Uplink: source port. Downlink: destination port.
    port: u16,
    /// False when the frame could not be read.
    valid: bool,
}

const NO_PEEK: Peek = Peek {
    addr: Ipv4Addr::UNSPECIFIED,
    ix: u16::MAX,
    proto: 0,
    port: 0,
    valid: false,
};

/// The addresses, protocol and ports of an IPv4 frame, as the flow-key parser that the
/// steering code shares reads them ([`flow::parse`]).
#[inline(always)]
fn peek(frame: &[u8]) -> Option<(Ipv4Addr, Ipv4Addr, u8, u16, u16)> {
    let key = flow::parse(frame)?;
    let (src, dst) = key.ipv4()?;
    let (sport, dport) = key.ports?;
    Some((src, dst, key.proto, sport, dport))
}

impl Pipeline {
    /// The hint for the next packet processed (in the order the burst was prefetched).
    #[inline(always)]
    pub(crate) fn take_hint(&mut self) -> Hint {
        let i = self.hint_next;
        if i < self.hint_len {
            self.hint_next = i + 1;
            self.hints[i]
        } else {
            Hint::NONE
        }
    }

    /// Prefetches what the packets of `burst`, received on `side`, will look up, and
    /// notes what it guessed for each for [`Pipeline::process`], which must then be
    /// called for the packets of `burst` in order.
    pub fn prefetch<B: PacketBuf>(&mut self, fwd: &Forwarding, side: Side, burst: &[B]) {
        self.hint_next = 0;
        if self.sessions.len() + self.flows.len() < LOOK_AHEAD_FROM {
            self.hint_len = 0;
            return;
        }
        let mut peeks: ArrayVec<Peek, MAX_BURST> = ArrayVec::new();
        self.hint_len = burst.len().min(MAX_BURST);
        match side {
            Side::Access => {
                for b in burst {
                    let Some((src, dst, proto, sport, dport)) = peek(b.data()) else {
                        peeks.push(NO_PEEK);
                        continue;
                    };
                    self.sessions.prefetch_ip(src);
                    let svc = fwd.services.find(dst, proto, dport).unwrap_or(u16::MAX);
                    if svc != u16::MAX {
                        self.flows.prefetch_up(src, svc, sport);
                    }
                    peeks.push(Peek {
                        addr: src,
                        ix: svc,
                        proto,
                        port: sport,
                        valid: true,
                    });
                }
                for (p, hint) in peeks.iter().zip(self.hints.iter_mut()) {
                    *hint = Hint::NONE;
                    if !p.valid {
                        continue;
                    }
                    hint.session = self.sessions.prefetch_session_of(p.addr);
                    if p.ix != u16::MAX {
                        hint.flow = self.flows.prefetch_up_flow(p.addr, p.ix, p.port);
                    }
                }
            }
            Side::Core => {
                for h in self.hints[..self.hint_len].iter_mut() {
                    *h = Hint::NONE;
                }
                for b in burst {
                    let Some((_, dst, proto, _, dport)) = peek(b.data()) else {
                        continue;
                    };
                    let ix = match fwd.nat_address(dst) {
                        Some(a) => {
                            self.flows.prefetch_down(a, proto, dport);
                            a
                        }
                        None => {
                            self.sessions.prefetch_ip(dst);
                            u16::MAX
                        }
                    };
                    peeks.push(Peek {
                        addr: dst,
                        ix,
                        proto,
                        port: dport,
                        valid: true,
                    });
                }
                for p in peeks.iter_mut() {
                    if p.ix == u16::MAX {
                        self.sessions.prefetch_session_of(p.addr);
                        p.valid = false;
                        continue;
                    }
                    match self.flows.find_down(p.ix, p.proto, p.port) {
                        Some(i) => {
                            self.flows.prefetch(i);
                            // Keep the flow for the next pass.
                            p.addr = Ipv4Addr::from(i);
                        }
                        None => p.valid = false,
                    }
                }
                for p in &peeks {
                    if p.valid
                        && let Some(f) = self.flows.get(u32::from(p.addr))
                    {
                        self.sessions.prefetch(f.session);
                    }
                }
            }
        }
    }
}
