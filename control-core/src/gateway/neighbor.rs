//! Neighbour resolution by ARP, sans-I/O: the authoritative neighbour table.
//!
//! Workers ask for a next hop they cannot reach ([`Resolver::resolve`]); the resolver
//! sends ARP requests, retries, and tells every worker the answer or the failure. It
//! learns from the ARP replies and requests that workers punt ([`Resolver::learn`]),
//! re-probes entries older than `reachable`, and forgets those that stop answering.
//! Static neighbours from the config are installed at start and never expire. Time is
//! passed in; outputs queue in [`Resolver::poll_output`].

use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::time::Duration;

use hashbrown::HashMap;
use tollgate_dataplane::time::Instant;
use tollgate_dataplane::{MacAddr, Side};

/// Resolver timing, from `[arp]`.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// Between requests while resolving or probing.
    pub retry: Duration,
    /// Requests before giving up.
    pub retries: u32,
    /// How long a learned entry is trusted before it is probed.
    pub reachable: Duration,
    /// How long a failed entry is remembered.
    pub failed: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            retry: Duration::from_secs(1),
            retries: 3,
            reachable: Duration::from_secs(300),
            failed: Duration::from_secs(3),
        }
    }
}

/// What the resolver wants done.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Broadcast an ARP request for `ip` on `side`.
    Request {
        /// Who to ask about.
        ip: Ipv4Addr,
        /// Which port.
        side: Side,
    },
    /// Tell every worker `ip` is at `mac`.
    Set {
        /// The neighbour.
        ip: Ipv4Addr,
        /// Its MAC.
        mac: MacAddr,
    },
    /// Tell every worker resolving `ip` failed.
    Failed {
        /// The neighbour.
        ip: Ipv4Addr,
    },
    /// Tell every worker to forget `ip`.
    Delete {
        /// The neighbour.
        ip: Ipv4Addr,
    },
}

/// How an ARP packet that taught us something was sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Heard {
    /// A reply to someone.
    Reply,
    /// A request for one of our addresses.
    RequestForUs,
    /// A gratuitous announcement.
    Announcement,
}

/// A neighbour's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Requests sent, no answer yet.
    Incomplete {
        /// Requests sent.
        sent: u32,
        /// When to send the next one (or give up).
        next: Instant,
    },
    /// Answered recently.
    Reachable {
        /// The MAC.
        mac: MacAddr,
        /// When it was last heard from.
        confirmed: Instant,
    },
    /// Old: being asked again, still used meanwhile.
    Probing {
        /// The MAC in use.
        mac: MacAddr,
        /// Probes sent.
        sent: u32,
        /// When to send the next one (or give up).
        next: Instant,
    },
    /// No answer; not asked about again until `until`.
    Failed {
        /// End of the quiet period.
        until: Instant,
    },
    /// From the config; never expires.
    Static {
        /// The MAC.
        mac: MacAddr,
    },
}

/// One row of the table, for `show neighbors`.
#[derive(Clone, Debug)]
pub struct Neighbor {
    /// Address.
    pub ip: Ipv4Addr,
    /// Side it is on.
    pub side: Side,
    /// State.
    pub state: State,
    /// When the state last changed.
    pub since: Instant,
}

impl Neighbor {
    /// The MAC, when known.
    pub fn mac(&self) -> Option<MacAddr> {
        match self.state {
            State::Reachable { mac, .. } | State::Probing { mac, .. } | State::Static { mac } => {
                Some(mac)
            }
            _ => None,
        }
    }

    /// The state's name as operators see it.
    pub fn state_name(&self) -> &'static str {
        match self.state {
            State::Incomplete { .. } => "incomplete",
            State::Reachable { .. } => "reachable",
            State::Probing { .. } => "probing",
            State::Failed { .. } => "failed",
            State::Static { .. } => "static",
        }
    }
}

/// The resolver.
#[derive(Debug)]
pub struct Resolver {
    table: HashMap<Ipv4Addr, Neighbor>,
    timing: Timing,
    out: VecDeque<Output>,
}

impl Resolver {
    /// An empty resolver.
    pub fn new(timing: Timing) -> Self {
        Resolver {
            table: HashMap::new(),
            timing,
            out: VecDeque::new(),
        }
    }

    /// Installs a static neighbour and tells the workers.
    pub fn add_static(&mut self, now: Instant, ip: Ipv4Addr, side: Side, mac: MacAddr) {
        self.table.insert(
            ip,
            Neighbor {
                ip,
                side,
                state: State::Static { mac },
                since: now,
            },
        );
        self.out.push_back(Output::Set { ip, mac });
    }

    /// A worker needs `ip` on `side`.
    pub fn resolve(&mut self, now: Instant, ip: Ipv4Addr, side: Side) {
        match self.table.get_mut(&ip) {
            Some(n) => match n.state {
                State::Incomplete { .. } => {}
                State::Failed { until } if now < until => self.out.push_back(Output::Failed { ip }),
                // A worker missed the answer (or joined later): tell everyone again.
                State::Reachable { mac, .. }
                | State::Probing { mac, .. }
                | State::Static { mac } => self.out.push_back(Output::Set { ip, mac }),
                State::Failed { .. } => {
                    n.state = State::Incomplete {
                        sent: 1,
                        next: now + self.timing.retry,
                    };
                    n.since = now;
                    self.out.push_back(Output::Request { ip, side });
                }
            },
            None => {
                let state = self.start_incomplete(now, ip, side);
                self.table.insert(
                    ip,
                    Neighbor {
                        ip,
                        side,
                        state,
                        since: now,
                    },
                );
            }
        }
    }

    fn start_incomplete(&mut self, now: Instant, ip: Ipv4Addr, side: Side) -> State {
        self.out.push_back(Output::Request { ip, side });
        State::Incomplete {
            sent: 1,
            next: now + self.timing.retry,
        }
    }

    /// An ARP packet on `side` said `ip` is at `mac`. Replies and requests for us create
    /// entries (as Linux does); announcements only refresh existing ones.
    pub fn learn(&mut self, now: Instant, side: Side, ip: Ipv4Addr, mac: MacAddr, heard: Heard) {
        if mac.is_multicast() || mac == MacAddr::ZERO || ip.is_unspecified() {
            return;
        }
        let reachable = State::Reachable {
            mac,
            confirmed: now,
        };
        match self.table.get_mut(&ip) {
            Some(n) => {
                let old_mac = n.mac();
                match n.state {
                    State::Static { mac: m } => {
                        if m != mac {
                            tracing::warn!(%ip, static_mac = %m, heard_mac = %mac, "ARP disagrees with a static neighbour; keeping the static MAC");
                        }
                        return;
                    }
                    _ => {
                        n.state = reachable;
                        n.side = side;
                    }
                }
                if old_mac != Some(mac) {
                    n.since = now;
                    if let Some(old) = old_mac {
                        tracing::info!(%ip, %old, new = %mac, "neighbour changed MAC");
                    }
                    self.out.push_back(Output::Set { ip, mac });
                }
            }
            None if heard == Heard::Announcement => {}
            None => {
                self.table.insert(
                    ip,
                    Neighbor {
                        ip,
                        side,
                        state: reachable,
                        since: now,
                    },
                );
                self.out.push_back(Output::Set { ip, mac });
            }
        }
    }

    /// Runs the timers due at `now`.
    pub fn tick(&mut self, now: Instant) {
        let t = self.timing;
        let mut forget = Vec::new();
        for n in self.table.values_mut() {
            let ip = n.ip;
            match n.state {
                State::Incomplete { sent, next } if now >= next => {
                    if sent < t.retries {
                        self.out.push_back(Output::Request { ip, side: n.side });
                        n.state = State::Incomplete {
                            sent: sent + 1,
                            next: now + t.retry,
                        };
                    } else {
                        tracing::info!(%ip, side = %n.side, "neighbour did not answer ARP");
                        self.out.push_back(Output::Failed { ip });
                        n.state = State::Failed {
                            until: now + t.failed,
                        };
                        n.since = now;
                    }
                }
                State::Reachable { mac, confirmed } if now >= confirmed + t.reachable => {
                    self.out.push_back(Output::Request { ip, side: n.side });
                    n.state = State::Probing {
                        mac,
                        sent: 1,
                        next: now + t.retry,
                    };
                }
                State::Probing { mac, sent, next } if now >= next => {
                    if sent < t.retries {
                        self.out.push_back(Output::Request { ip, side: n.side });
                        n.state = State::Probing {
                            mac,
                            sent: sent + 1,
                            next: now + t.retry,
                        };
                    } else {
                        tracing::info!(%ip, %mac, "neighbour stopped answering ARP; forgetting it");
                        self.out.push_back(Output::Delete { ip });
                        forget.push(ip);
                    }
                }
                State::Failed { until } if now >= until => forget.push(ip),
                _ => {}
            }
        }
        for ip in forget {
            self.table.remove(&ip);
        }
    }

    /// The next time [`Self::tick`] has something to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.table
            .values()
            .filter_map(|n| match n.state {
                State::Incomplete { next, .. } | State::Probing { next, .. } => Some(next),
                State::Reachable { confirmed, .. } => Some(confirmed + self.timing.reachable),
                State::Failed { until } => Some(until),
                State::Static { .. } => None,
            })
            .min()
    }

    /// Next thing to do.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// Every neighbour, sorted by address.
    pub fn neighbors(&self) -> Vec<Neighbor> {
        let mut v: Vec<_> = self.table.values().cloned().collect();
        v.sort_by_key(|n| n.ip);
        v
    }

    /// One neighbour.
    pub fn get(&self, ip: Ipv4Addr) -> Option<&Neighbor> {
        self.table.get(&ip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
    const MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x10]);

    fn t(ms: u64) -> Instant {
        Instant(1_000_000_000 + ms * 1_000_000)
    }

    fn drain(r: &mut Resolver) -> Vec<Output> {
        std::iter::from_fn(|| r.poll_output()).collect()
    }

    #[test]
    fn resolves_with_retries_then_fails() {
        let mut r = Resolver::new(Timing::default());
        r.resolve(t(0), IP, Side::Core);
        r.resolve(t(10), IP, Side::Core);
        assert_eq!(
            drain(&mut r),
            vec![Output::Request {
                ip: IP,
                side: Side::Core
            }],
            "one request, not two"
        );
        assert_eq!(r.poll_timeout(), Some(t(1000)));
        r.tick(t(999));
        assert!(drain(&mut r).is_empty());
        r.tick(t(1000));
        r.tick(t(2000));
        assert_eq!(drain(&mut r).len(), 2, "second and third request");
        r.tick(t(3000));
        assert_eq!(drain(&mut r), vec![Output::Failed { ip: IP }]);
        assert_eq!(r.get(IP).unwrap().state_name(), "failed");
        r.resolve(t(3500), IP, Side::Core);
        assert_eq!(
            drain(&mut r),
            vec![Output::Failed { ip: IP }],
            "still quiet"
        );
        r.tick(t(6000));
        assert!(r.get(IP).is_none(), "forgotten after the quiet period");
    }

    #[test]
    fn reply_installs_and_refresh_probes() {
        let mut r = Resolver::new(Timing::default());
        r.resolve(t(0), IP, Side::Core);
        drain(&mut r);
        r.learn(t(5), Side::Core, IP, MAC, Heard::Reply);
        assert_eq!(drain(&mut r), vec![Output::Set { ip: IP, mac: MAC }]);
        r.learn(t(6), Side::Core, IP, MAC, Heard::Reply);
        assert!(drain(&mut r).is_empty(), "same MAC again: nothing to tell");
        r.resolve(t(7), IP, Side::Core);
        assert_eq!(
            drain(&mut r),
            vec![Output::Set { ip: IP, mac: MAC }],
            "a worker that asks is told again"
        );

        // Confirmed last at t(6), when the second reply came.
        r.tick(t(6 + 299_999));
        assert!(drain(&mut r).is_empty());
        r.tick(t(6 + 300_000));
        assert_eq!(
            drain(&mut r),
            vec![Output::Request {
                ip: IP,
                side: Side::Core
            }]
        );
        assert_eq!(
            r.get(IP).unwrap().mac(),
            Some(MAC),
            "still used while probing"
        );
        r.tick(t(6 + 301_000));
        r.tick(t(6 + 302_000));
        r.tick(t(6 + 303_000));
        let out = drain(&mut r);
        assert_eq!(out.last(), Some(&Output::Delete { ip: IP }), "{out:?}");
        assert!(r.get(IP).is_none());
    }

    #[test]
    fn announcements_only_refresh_and_statics_stay() {
        let mut r = Resolver::new(Timing::default());
        r.learn(t(0), Side::Access, IP, MAC, Heard::Announcement);
        assert!(r.get(IP).is_none());
        r.learn(t(0), Side::Access, IP, MAC, Heard::RequestForUs);
        assert!(r.get(IP).is_some());
        let other = Ipv4Addr::new(192, 0, 2, 20);
        r.add_static(t(0), other, Side::Core, MAC);
        r.learn(
            t(1),
            Side::Core,
            other,
            MacAddr([2, 0, 0, 0, 0, 0x99]),
            Heard::Reply,
        );
        assert_eq!(r.get(other).unwrap().mac(), Some(MAC));
        r.tick(t(10_000_000));
        assert!(r.get(other).is_some());
    }
}
