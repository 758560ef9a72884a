//! The core side's IPv6 neighbours (issue 16 item 4), sans-I/O: which addresses the
//! gateway solicits, and the MACs it learnt for them.
//!
//! Two kinds are wanted. The next hops of `[[ipv6.route]]`s are solicited from the
//! start, every second until an NS or NA from them gives their MAC, and are then kept
//! (a later NS or NA with another MAC replaces it), like `[ipv6] next_hop`. Hosts of
//! `[ipv6] connected` prefixes are solicited when a worker asks (uplink to one without a
//! MAC, `Event::Resolve6`): [`RETRIES`] times a second apart, then forgotten until asked
//! again; at most [`MAX_ASKED`] are being resolved at once. What is learnt goes into the
//! forwarding snapshot's IPv6 route table (the glue in `ipv6.rs` publishes it).

use std::collections::HashMap;
use std::net::Ipv6Addr;
use std::time::Duration;

use tollgate_dataplane::MacAddr;
use tollgate_dataplane::time::Instant;

/// Between solicitations of an address not resolved yet.
pub const SOLICIT_EVERY: Duration = Duration::from_secs(1);
/// Solicitations of a connected host before it is given up.
pub const RETRIES: u32 = 3;
/// Connected hosts being resolved at once (asks beyond are ignored).
pub const MAX_ASKED: usize = 1024;

#[derive(Clone, Copy, Debug)]
struct Wanted {
    mac: Option<MacAddr>,
    /// When to solicit next (none once resolved).
    next: Option<Instant>,
    /// Solicitations left; `None` for a route's next hop (solicited until it answers).
    left: Option<u32>,
}

/// What the neighbours count.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Neighbor6Stats {
    /// Neighbor Solicitations sent for routes' next hops and connected hosts.
    pub solicits: u64,
    /// MACs learnt (or changed).
    pub learned: u64,
    /// Connected hosts given up after [`RETRIES`] solicitations.
    pub failed: u64,
    /// Asks for a connected host ignored because [`MAX_ASKED`] were being resolved.
    pub asks_ignored: u64,
}

/// The core side's IPv6 neighbours beyond the default next hop.
#[derive(Debug, Default)]
pub struct Neighbors6 {
    wanted: HashMap<Ipv6Addr, Wanted>,
    asked: usize,
    stats: Neighbor6Stats,
}

impl Neighbors6 {
    /// Routes' next hops `vias` (solicited from `now`; `known` MACs are configured and
    /// never solicited).
    pub fn new(
        now: Instant,
        vias: impl IntoIterator<Item = Ipv6Addr>,
        known: &[(Ipv6Addr, MacAddr)],
    ) -> Neighbors6 {
        let mut n = Neighbors6::default();
        for a in vias {
            let mac = known.iter().find(|(k, _)| *k == a).map(|(_, m)| *m);
            n.wanted.insert(
                a,
                Wanted {
                    mac,
                    next: mac.is_none().then_some(now),
                    left: None,
                },
            );
        }
        n
    }

    /// What they counted.
    pub fn stats(&self) -> Neighbor6Stats {
        self.stats
    }

    /// The MAC learnt for `a`.
    pub fn mac(&self, a: Ipv6Addr) -> Option<MacAddr> {
        self.wanted.get(&a).and_then(|w| w.mac)
    }

    /// A worker asks for connected host `a`: true if it is now to be solicited (it was
    /// neither resolved nor being resolved).
    pub fn ask(&mut self, now: Instant, a: Ipv6Addr) -> bool {
        if self.wanted.contains_key(&a) {
            return false;
        }
        if self.asked >= MAX_ASKED {
            self.stats.asks_ignored += 1;
            return false;
        }
        self.asked += 1;
        self.wanted.insert(
            a,
            Wanted {
                mac: None,
                next: Some(now),
                left: Some(RETRIES),
            },
        );
        true
    }

    /// `a` sent an NS or NA from `mac`: learnt if it is wanted. True if its MAC is new
    /// or changed (the snapshot is then published).
    pub fn learn(&mut self, a: Ipv6Addr, mac: MacAddr) -> bool {
        let Some(w) = self.wanted.get_mut(&a) else {
            return false;
        };
        if w.mac == Some(mac) {
            return false;
        }
        if w.mac.is_none() && w.left.is_some() {
            self.asked -= 1;
        }
        w.mac = Some(mac);
        w.next = None;
        self.stats.learned += 1;
        true
    }

    /// The addresses to solicit at `now` (each then scheduled a second later, or given
    /// up after its last try).
    pub fn due(&mut self, now: Instant) -> Vec<Ipv6Addr> {
        let mut out = Vec::new();
        let mut gone = Vec::new();
        for (a, w) in &mut self.wanted {
            if w.next.is_none_or(|t| t > now) {
                continue;
            }
            match &mut w.left {
                Some(0) => {
                    gone.push(*a);
                    continue;
                }
                Some(n) => *n -= 1,
                None => {}
            }
            w.next = Some(now + SOLICIT_EVERY);
            out.push(*a);
        }
        for a in gone {
            self.wanted.remove(&a);
            self.asked -= 1;
            self.stats.failed += 1;
        }
        out.sort_unstable();
        self.stats.solicits += out.len() as u64;
        out
    }

    /// When [`due`](Self::due) has something next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.wanted.values().filter_map(|w| w.next).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u64 = 1_000_000_000;

    fn a(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    #[test]
    fn next_hops_until_they_answer_hosts_three_times() {
        let m = MacAddr([2, 0, 0, 0, 0, 7]);
        let t0 = Instant(SEC);
        let mut n = Neighbors6::new(t0, [a("fe80::2"), a("fe80::3")], &[(a("fe80::3"), m)]);
        assert_eq!(n.mac(a("fe80::3")), Some(m));
        assert_eq!(n.due(t0), vec![a("fe80::2")]);
        assert!(n.due(Instant(SEC + SEC / 2)).is_empty());
        assert!(n.ask(Instant(2 * SEC), a("2001:db8:ff::10")));
        assert!(!n.ask(Instant(2 * SEC), a("2001:db8:ff::10")));
        assert_eq!(n.poll_timeout(), Some(Instant(2 * SEC)));
        for s in 2..5 {
            assert_eq!(
                n.due(Instant(s * SEC)),
                vec![a("2001:db8:ff::10"), a("fe80::2")],
                "second {s}"
            );
        }
        // Three tries, then the host is given up; the next hop goes on.
        assert_eq!(n.due(Instant(5 * SEC)), vec![a("fe80::2")]);
        assert_eq!(n.stats().failed, 1);
        assert!(n.ask(Instant(6 * SEC), a("2001:db8:ff::10")));
        assert!(n.learn(a("2001:db8:ff::10"), m));
        assert!(!n.learn(a("2001:db8:ff::10"), m));
        assert!(!n.learn(a("2001:db8:ff::99"), m));
        assert!(n.learn(a("fe80::2"), m));
        assert_eq!(n.poll_timeout(), None);
        assert!(n.due(Instant(60 * SEC)).is_empty());
        assert_eq!(n.stats().solicits, 8);
        assert_eq!(n.stats().learned, 2);
        assert_eq!(n.asked, 0);
    }
}
