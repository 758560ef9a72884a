//! The control core, sans-I/O: it takes `now` and what the workers sent up (events and
//! punted frames), and returns what should go down (commands and frames to inject). It
//! owns the control plane's state; sockets, clocks, threads and files live in the shells
//! ([`crate::engine`] for the daemon, [`crate::replay`] offline), so every rule here is
//! tested with a simulated clock.

pub mod neighbor;

use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::sync::Arc;

use tollgate_dataplane::time::Instant;
use tollgate_dataplane::wire::arp::{self, Operation};
use tollgate_dataplane::wire::ethernet::{self, ethertype};
use tollgate_dataplane::{Command, Event, Forwarding, Frame, MacAddr, Side};

use self::neighbor::{Heard, Resolver, Timing};

/// Which workers a command is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// Every worker.
    All,
    /// One worker.
    Worker(u16),
}

/// Something for the shell to deliver.
#[derive(Clone, Debug)]
pub enum Output {
    /// A command for one or all workers.
    Command(Target, Command),
    /// A frame for a worker to send.
    Inject(u16, Box<Frame>),
}

/// What the control core counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CoreStats {
    /// Punted frames handled.
    pub punts: u64,
    /// Punted frames that could not be parsed.
    pub punts_malformed: u64,
    /// ARP requests sent.
    pub arp_requests: u64,
    /// Neighbour entries installed or changed.
    pub neighbors_installed: u64,
    /// Events handled.
    pub events: u64,
}

/// The control core.
#[derive(Debug)]
pub struct Core {
    fwd: Arc<Forwarding>,
    resolver: Resolver,
    out: VecDeque<Output>,
    stats: CoreStats,
}

impl Core {
    /// A core for the given forwarding state, with static neighbours installed.
    pub fn new(
        now: Instant,
        fwd: Arc<Forwarding>,
        timing: Timing,
        statics: &[(Ipv4Addr, MacAddr)],
    ) -> Core {
        let mut core = Core {
            resolver: Resolver::new(timing),
            fwd,
            out: VecDeque::new(),
            stats: CoreStats::default(),
        };
        for &(ip, mac) in statics {
            let side = core.side_of(ip).unwrap_or(Side::Core);
            core.resolver.add_static(now, ip, side, mac);
        }
        core.drain_resolver();
        core
    }

    /// The connected side `ip` is on.
    fn side_of(&self, ip: Ipv4Addr) -> Option<Side> {
        Side::ALL
            .into_iter()
            .find(|s| self.fwd.side(*s).contains(ip))
    }

    /// A worker reported an event.
    pub fn on_event(&mut self, now: Instant, _worker: u16, ev: Event) {
        self.stats.events += 1;
        match ev {
            Event::Resolve { ip, side } => self.resolver.resolve(now, ip, side),
        }
        self.drain_resolver();
    }

    /// A worker punted a frame.
    pub fn on_punt(&mut self, now: Instant, _worker: u16, frame: &Frame) {
        self.stats.punts += 1;
        let bytes = frame.bytes();
        let Ok(eth) = ethernet::Frame::new_checked(bytes) else {
            self.stats.punts_malformed += 1;
            return;
        };
        match eth.l3() {
            Ok(l3) if l3.ethertype == ethertype::ARP => {
                self.on_arp(now, frame.side, &bytes[l3.offset..])
            }
            _ => self.stats.punts_malformed += 1,
        }
        self.drain_resolver();
    }

    fn on_arp(&mut self, now: Instant, side: Side, bytes: &[u8]) {
        let Ok(p) = arp::Packet::new_checked(bytes) else {
            self.stats.punts_malformed += 1;
            return;
        };
        let port = self.fwd.side(side);
        let (spa, sha, tpa) = (p.sender_ip(), p.sender_mac(), p.target_ip());
        if self.fwd.is_ours(spa) {
            tracing::warn!(%side, ip = %spa, mac = %sha, "another host claims the gateway's address");
            return;
        }
        if !port.contains(spa) {
            return;
        }
        let heard = match p.operation() {
            Some(Operation::Reply) => Heard::Reply,
            Some(Operation::Request) if spa == tpa => Heard::Announcement,
            Some(Operation::Request) if tpa == port.address => Heard::RequestForUs,
            _ => return,
        };
        self.resolver.learn(now, side, spa, sha, heard);
    }

    /// Runs the timers due at `now`.
    pub fn tick(&mut self, now: Instant) {
        self.resolver.tick(now);
        self.drain_resolver();
    }

    /// When [`Self::tick`] next has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.resolver.poll_timeout()
    }

    /// The next thing to deliver.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// The neighbour table.
    pub fn neighbors(&self) -> Vec<neighbor::Neighbor> {
        self.resolver.neighbors()
    }

    /// What the core counted.
    pub fn stats(&self) -> CoreStats {
        self.stats
    }

    /// The forwarding state in use.
    pub fn forwarding(&self) -> &Arc<Forwarding> {
        &self.fwd
    }

    fn drain_resolver(&mut self) {
        while let Some(o) = self.resolver.poll_output() {
            let out = match o {
                neighbor::Output::Request { ip, side } => {
                    let port = self.fwd.side(side);
                    let mut buf = [0u8; 60];
                    let n = arp::build_request(&mut buf, port.mac, port.address, ip);
                    self.stats.arp_requests += 1;
                    match Frame::new(side, &buf[..n]) {
                        Some(f) => Output::Inject(0, Box::new(f)),
                        None => continue,
                    }
                }
                neighbor::Output::Set { ip, mac } => {
                    self.stats.neighbors_installed += 1;
                    Output::Command(Target::All, Command::NeighborSet { ip, mac })
                }
                neighbor::Output::Failed { ip } => {
                    Output::Command(Target::All, Command::NeighborFailed { ip })
                }
                neighbor::Output::Delete { ip } => {
                    Output::Command(Target::All, Command::NeighborDelete { ip })
                }
            };
            self.out.push_back(out);
        }
    }
}
