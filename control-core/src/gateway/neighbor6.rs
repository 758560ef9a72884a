//! The core side's IPv6 neighbours (issue 16 item 4), sans-I/O: which addresses the
//! gateway solicits, the MACs it learnt for them, and whether they still answer.
//!
//! Two kinds are wanted. The next hops of `[[ipv6.route]]`s are solicited from the
//! start, every `[arp] retry_ms` until an NS or NA from them gives their MAC, like
//! `[ipv6] next_hop`. Hosts of `[ipv6] connected` prefixes are solicited when a worker
//! asks (uplink to one without a MAC, `Event::Resolve6`): `[arp] retries` times, then
//! forgotten until asked again; at most [`MAX_ASKED`] are being resolved at once. What
//! is learnt goes into the forwarding snapshot's IPv6 route table (the glue in
//! `ipv6.rs` publishes it).
//!
//! Reachability, as the IPv4 resolver's (`neighbor.rs`) and in a simple form of RFC 4861
//! 7.3: a learnt neighbour is REACHABLE for `[arp] reachable_s` after it was last heard
//! (any NS or NA from it confirms it); then it is probed (PROBE, 7.3.3): a unicast NS to
//! its MAC, `retries` of them `retry` apart, while its MAC stays in use. An answer makes
//! it REACHABLE again (a new MAC replaces the old); none makes it lost
//! ([`Due::lost`]: its MAC leaves the route table): a route's next hop is then solicited
//! again from the start, a connected host forgotten until a worker asks again. The
//! STALE and DELAY states are left out: a neighbour is probed when its time runs out,
//! whether traffic goes to it or not. Configured MACs are never probed. Time is passed
//! in.

use std::collections::HashMap;
use std::net::Ipv6Addr;

use tollgate_dataplane::MacAddr;
use tollgate_dataplane::time::Instant;

use super::neighbor::Timing;

/// Connected hosts being resolved at once (asks beyond are ignored).
pub const MAX_ASKED: usize = 1024;

#[derive(Clone, Copy, Debug)]
struct Wanted {
    mac: Option<MacAddr>,
    /// When to solicit or probe next (none: configured, or nothing to do).
    next: Option<Instant>,
    /// Solicitations left while a connected host is resolved; `None` for a route's next
    /// hop (solicited until it answers).
    left: Option<u32>,
    /// A connected host (forgotten when lost), not a route's next hop.
    host: bool,
    /// Learnt and being probed: probes left after the one sent (PROBE); `None` while
    /// REACHABLE.
    probing: Option<u32>,
    /// Configured: never solicited nor probed.
    fixed: bool,
}

/// A Neighbor Solicitation to send for `target`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Solicit {
    /// The address asked about.
    pub target: Ipv6Addr,
    /// `None`: to its solicited-node group (resolving); its learnt MAC: unicast to
    /// the target itself (probing a learnt neighbour, RFC 4861 7.3.3).
    pub unicast: Option<MacAddr>,
}

/// What is due at a time: solicitations to send, neighbours lost.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Due {
    /// The NS to send, sorted by target.
    pub solicit: Vec<Solicit>,
    /// Learnt neighbours that did not answer their probes: their MACs leave the route
    /// table.
    pub lost: Vec<Ipv6Addr>,
}

/// What the neighbours count.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Neighbor6Stats {
    /// Neighbor Solicitations sent for routes' next hops and connected hosts (probes
    /// included).
    pub solicits: u64,
    /// MACs learnt (or changed).
    pub learned: u64,
    /// Connected hosts given up after `retries` solicitations.
    pub failed: u64,
    /// Asks for a connected host ignored because [`MAX_ASKED`] were being resolved.
    pub asks_ignored: u64,
    /// Unicast NS probing a learnt neighbour whose reachable time ran out.
    pub probes: u64,
    /// Probed neighbours that answered (REACHABLE again).
    pub confirmed: u64,
    /// Probed neighbours that did not answer: their MACs withdrawn.
    pub lost: u64,
}

/// The core side's IPv6 neighbours beyond the default next hop.
#[derive(Debug)]
pub struct Neighbors6 {
    timing: Timing,
    wanted: HashMap<Ipv6Addr, Wanted>,
    asked: usize,
    stats: Neighbor6Stats,
}

impl Neighbors6 {
    /// Routes' next hops `vias` (solicited from `now`; `known` MACs are configured and
    /// never solicited), with `[arp]`'s `timing`.
    pub fn new(
        now: Instant,
        vias: impl IntoIterator<Item = Ipv6Addr>,
        known: &[(Ipv6Addr, MacAddr)],
        timing: Timing,
    ) -> Neighbors6 {
        let mut n = Neighbors6 {
            timing,
            wanted: HashMap::new(),
            asked: 0,
            stats: Neighbor6Stats::default(),
        };
        for a in vias {
            let mac = known.iter().find(|(k, _)| *k == a).map(|(_, m)| *m);
            n.wanted.insert(
                a,
                Wanted {
                    mac,
                    next: mac.is_none().then_some(now),
                    left: None,
                    host: false,
                    probing: None,
                    fixed: mac.is_some(),
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
                left: Some(self.timing.retries.max(1)),
                host: true,
                probing: None,
                fixed: false,
            },
        );
        true
    }

    /// `a` sent an NS or NA from `mac` at `now`: learnt if it is wanted, and REACHABLE
    /// for `reachable` from now (a probed one is confirmed). True if its MAC is new or
    /// changed (the snapshot is then published).
    pub fn learn(&mut self, now: Instant, a: Ipv6Addr, mac: MacAddr) -> bool {
        let reachable = self.timing.reachable;
        let Some(w) = self.wanted.get_mut(&a) else {
            return false;
        };
        if w.fixed && w.mac == Some(mac) {
            return false;
        }
        if w.probing.take().is_some() {
            self.stats.confirmed += 1;
        }
        w.next = (!w.fixed).then_some(now + reachable);
        if w.mac == Some(mac) {
            return false;
        }
        if w.mac.is_none() && w.host {
            self.asked -= 1;
        }
        w.mac = Some(mac);
        w.left = None;
        self.stats.learned += 1;
        true
    }

    /// What is due at `now`: NS to send (each then scheduled `retry` later; a
    /// connected host given up after its last try), and learnt neighbours lost after
    /// their last probe.
    pub fn due(&mut self, now: Instant) -> Due {
        let Timing { retry, retries, .. } = self.timing;
        let retries = retries.max(1);
        let mut d = Due::default();
        let mut gone = Vec::new();
        for (a, w) in &mut self.wanted {
            if w.next.is_none_or(|t| t > now) {
                continue;
            }
            if let Some(mac) = w.mac {
                // Learnt, its reachable time over: probe it, or it is lost.
                match w.probing {
                    Some(0) => {
                        self.stats.lost += 1;
                        d.lost.push(*a);
                        if w.host {
                            gone.push(*a);
                            continue;
                        }
                        // A route's next hop: resolved again from the start.
                        w.mac = None;
                        w.probing = None;
                        d.solicit.push(Solicit {
                            target: *a,
                            unicast: None,
                        });
                    }
                    Some(ref mut n) => {
                        *n -= 1;
                        self.stats.probes += 1;
                        d.solicit.push(Solicit {
                            target: *a,
                            unicast: Some(mac),
                        });
                    }
                    None => {
                        w.probing = Some(retries - 1);
                        self.stats.probes += 1;
                        d.solicit.push(Solicit {
                            target: *a,
                            unicast: Some(mac),
                        });
                    }
                }
                w.next = Some(now + retry);
                continue;
            }
            match &mut w.left {
                Some(0) => {
                    gone.push(*a);
                    self.asked -= 1;
                    self.stats.failed += 1;
                    continue;
                }
                Some(n) => *n -= 1,
                None => {}
            }
            w.next = Some(now + retry);
            d.solicit.push(Solicit {
                target: *a,
                unicast: None,
            });
        }
        for a in gone {
            self.wanted.remove(&a);
        }
        d.solicit.sort_unstable();
        d.lost.sort_unstable();
        self.stats.solicits += d.solicit.len() as u64;
        d
    }

    /// When [`due`](Self::due) has something next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.wanted.values().filter_map(|w| w.next).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::time::Duration;

    const SEC: u64 = 1_000_000_000;

    fn a(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    fn at(secs: u64) -> Instant {
        Instant(secs * SEC)
    }

    /// The targets of what is due, multicast only.
    fn targets(d: &Due) -> Vec<Ipv6Addr> {
        assert!(d.solicit.iter().all(|s| s.unicast.is_none()), "{d:?}");
        d.solicit.iter().map(|s| s.target).collect()
    }

    fn probe(t: &str, m: MacAddr) -> Solicit {
        Solicit {
            target: a(t),
            unicast: Some(m),
        }
    }

    #[test]
    fn next_hops_until_they_answer_hosts_three_times() {
        let m = MacAddr([2, 0, 0, 0, 0, 7]);
        let t0 = at(1);
        let mut n = Neighbors6::new(
            t0,
            [a("fe80::2"), a("fe80::3")],
            &[(a("fe80::3"), m)],
            Timing::default(),
        );
        assert_eq!(n.mac(a("fe80::3")), Some(m));
        assert_eq!(targets(&n.due(t0)), vec![a("fe80::2")]);
        assert!(n.due(Instant(SEC + SEC / 2)).solicit.is_empty());
        assert!(n.ask(at(2), a("2001:db8:ff::10")));
        assert!(!n.ask(at(2), a("2001:db8:ff::10")));
        assert_eq!(n.poll_timeout(), Some(at(2)));
        for s in 2..5 {
            assert_eq!(
                targets(&n.due(at(s))),
                vec![a("2001:db8:ff::10"), a("fe80::2")],
                "second {s}"
            );
        }
        // Three tries, then the host is given up; the next hop goes on.
        assert_eq!(targets(&n.due(at(5))), vec![a("fe80::2")]);
        assert_eq!(n.stats().failed, 1);
        assert!(n.ask(at(6), a("2001:db8:ff::10")));
        assert!(n.learn(at(6), a("2001:db8:ff::10"), m));
        assert!(!n.learn(at(6), a("2001:db8:ff::10"), m));
        assert!(!n.learn(at(6), a("2001:db8:ff::99"), m));
        assert!(n.learn(at(6), a("fe80::2"), m));
        // Both learnt: nothing before their reachable time (300 s) runs out.
        assert_eq!(n.poll_timeout(), Some(at(306)));
        assert_eq!(n.due(at(60)), Due::default());
        assert_eq!(n.stats().solicits, 8);
        assert_eq!(n.stats().learned, 2);
        assert_eq!(n.asked, 0);
    }

    /// RFC 4861 7.3 in a simple form: REACHABLE for `reachable`, then PROBE (unicast NS
    /// to the learnt MAC, `retries` times `retry` apart); an answer confirms it, a new
    /// MAC replaces the old; no answer loses it: a route's next hop is solicited again
    /// from the start, a connected host forgotten. Configured MACs are never probed.
    #[test]
    fn learnt_neighbours_are_probed_confirmed_or_lost() {
        let timing = Timing {
            retry: Duration::from_secs(1),
            retries: 3,
            reachable: Duration::from_secs(30),
            failed: Duration::from_secs(3),
        };
        let m = MacAddr([2, 0, 0, 0, 0, 2]);
        let m2 = MacAddr([2, 0, 0, 0, 0, 0x22]);
        let hm = MacAddr([2, 0, 0, 0, 0, 0x10]);
        let fixed = MacAddr([2, 0, 0, 0, 0, 9]);
        let host = "2001:db8:ff::10";
        let mut n = Neighbors6::new(
            at(0),
            [a("fe80::2"), a("fe80::9")],
            &[(a("fe80::9"), fixed)],
            timing,
        );
        assert_eq!(targets(&n.due(at(0))), vec![a("fe80::2")]);
        assert!(n.learn(at(0), a("fe80::2"), m));
        assert!(n.ask(at(0), a(host)));
        assert_eq!(targets(&n.due(at(0))), vec![a(host)]);
        assert!(n.learn(at(0), a(host), hm));
        assert_eq!(n.poll_timeout(), Some(at(30)));
        assert_eq!(n.due(at(29)), Due::default());
        // Reachable time over: both probed by unicast to their MACs, the configured
        // one never.
        let d = n.due(at(30));
        assert_eq!(d.solicit, vec![probe(host, hm), probe("fe80::2", m)]);
        assert!(d.lost.is_empty());
        assert_eq!(n.mac(a("fe80::2")), Some(m), "still in use while probed");
        // The next hop answers the second probe (any NS or NA from it): confirmed,
        // reachable for 30 s from the answer.
        assert_eq!(
            n.due(at(31)).solicit,
            vec![probe(host, hm), probe("fe80::2", m)]
        );
        assert!(
            !n.learn(at(31), a("fe80::2"), m),
            "the same MAC: nothing to publish"
        );
        assert_eq!(n.stats().confirmed, 1);
        // The host does not: its third probe, then it is lost and forgotten.
        assert_eq!(n.due(at(32)).solicit, vec![probe(host, hm)]);
        let d = n.due(at(33));
        assert_eq!(
            d,
            Due {
                solicit: vec![],
                lost: vec![a(host)]
            }
        );
        assert_eq!(n.mac(a(host)), None);
        assert_eq!(n.poll_timeout(), Some(at(61)));
        // Asked again, it is resolved again from the start (multicast).
        assert!(n.ask(at(40), a(host)));
        assert_eq!(targets(&n.due(at(40))), vec![a(host)]);
        assert!(n.learn(at(40), a(host), hm));
        // The next hop's next probe round: it answers from another MAC (replaced).
        assert_eq!(n.due(at(61)).solicit, vec![probe("fe80::2", m)]);
        assert!(n.learn(at(61), a("fe80::2"), m2));
        assert_eq!(n.mac(a("fe80::2")), Some(m2));
        // Then it stops answering, and so does the host (reachable until 70 s, probed
        // from 91 s here): three probes each, both lost; the next hop is solicited again
        // from the start (multicast, every second, until it answers).
        let mut probes = Vec::new();
        for s in 91..=93 {
            let d = n.due(at(s));
            assert!(d.lost.is_empty());
            probes.extend(d.solicit.into_iter().filter(|p| p.target == a("fe80::2")));
        }
        assert_eq!(probes, vec![probe("fe80::2", m2); 3]);
        let d = n.due(at(94));
        assert_eq!(d.lost, vec![a(host), a("fe80::2")]);
        assert_eq!(
            d.solicit,
            vec![Solicit {
                target: a("fe80::2"),
                unicast: None
            }]
        );
        assert_eq!(n.mac(a("fe80::2")), None);
        assert_eq!(targets(&n.due(at(95))), vec![a("fe80::2")]);
        assert!(n.learn(at(95), a("fe80::2"), m2));
        assert_eq!(n.mac(a("fe80::9")), Some(fixed));
        let st = n.stats();
        assert_eq!((st.probes, st.confirmed, st.lost), (12, 2, 3));
        assert_eq!(st.learned, 5);
        assert_eq!(n.asked, 0);
    }
}
