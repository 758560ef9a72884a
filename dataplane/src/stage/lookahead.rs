//! Looking ahead over a burst: before the packets run through the stages one by one,
//! each packet's table lookups are started for the whole burst in stages, each stage
//! prefetching what the next one reads (VPP's dual/quad loops, burst-wide). Uplink: the
//! session and flow index buckets, then the session and flow entries. Downlink: the
//! NAT port's down-index entry, then the flow, then its session. With many subscribers
//! these are cache misses; started together they overlap instead of following one
//! another. Nothing here decides anything: a wrong guess costs a wasted prefetch.

use std::net::{Ipv4Addr, Ipv6Addr};

use arrayvec::ArrayVec;

use super::Pipeline;
use crate::buf::{MAX_BURST, PacketBuf};
use crate::fib::Forwarding;
use crate::table::flow::NIL;
use crate::table::nat64::Key as Nat64Key;
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

/// An untagged IPv6 frame's source and destination, and for TCP and UDP right after the
/// fixed header its protocol and ports (zero otherwise).
#[inline(always)]
fn peek6(frame: &[u8]) -> Option<(Ipv6Addr, Ipv6Addr, u8, u16, u16)> {
    if frame.get(12..14)? != [0x86, 0xdd] {
        return None;
    }
    let ip = frame.get(14..54)?;
    let a = |at: usize| -> Option<Ipv6Addr> {
        let b: [u8; 16] = ip.get(at..at + 16)?.try_into().ok()?;
        Some(Ipv6Addr::from(b))
    };
    let (src, dst) = (a(8)?, a(24)?);
    let (proto, sport, dport) = match (ip[6], frame.get(54..58)) {
        (p @ (6 | 17), Some(l4)) => (
            p,
            u16::from_be_bytes([l4[0], l4[1]]),
            u16::from_be_bytes([l4[2], l4[3]]),
        ),
        _ => (0, 0, 0),
    };
    Some((src, dst, proto, sport, dport))
}

/// The /64 of `a`.
#[inline(always)]
fn prefix64(a: Ipv6Addr) -> u64 {
    (a.to_bits() >> 64) as u64
}

impl Pipeline {
    /// Looks ahead over the IPv6 frames of a burst (none in most): received on the
    /// access side, their session by source /64 and, to the NAT64 prefix, their binding;
    /// on the core side their session by destination /64. Two passes, as for IPv4.
    fn prefetch6<B: PacketBuf>(&self, fwd: &Forwarding, side: Side, burst: &[B]) {
        let mut keys: ArrayVec<(u64, Option<Nat64Key>), MAX_BURST> = ArrayVec::new();
        for b in burst.iter().take(MAX_BURST) {
            let Some((src, dst, proto, sport, dport)) = peek6(b.data()) else {
                continue;
            };
            let (prefix, key) = match side {
                Side::Access => {
                    let key = match fwd.nat64.embedded(dst) {
                        Some(remote) if proto != 0 => Some(Nat64Key {
                            sub: src,
                            sub_port: sport,
                            remote,
                            remote_port: dport,
                            proto,
                        }),
                        _ => None,
                    };
                    (prefix64(src), key)
                }
                Side::Core => (prefix64(dst), None),
            };
            self.sessions.prefetch_prefix6(prefix);
            if let Some(k) = &key {
                self.nat64.prefetch_up(k);
            }
            keys.push((prefix, key));
        }
        for (prefix, key) in &keys {
            self.sessions.prefetch_session_of_prefix6(*prefix);
            if let Some(k) = key {
                self.nat64.prefetch_up_binding(k);
            }
        }
    }

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
        if fwd.ipv6.on {
            self.prefetch6(fwd, side, burst);
        }
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
