//! The access side's IPv6 router: NS/NA for the gateway's addresses, Router
//! Advertisements (periodic, solicited, final), RA guard.
//!
//! Peers are IPoE subscribers (line and MAC) and PPP sessions (a handle the caller
//! chooses). The caller adds a peer with its [`Advert`] (its /64 for SLAAC, DNS) when the
//! session has IPv6, and removes it at the end (a final RA with router lifetime 0 and the
//! prefix deprecated goes out). RAs to a subscriber go to its MAC at layer 2 and to
//! ff02::1 (RFC 6085), or to its link-local address once known, so that on an N:1 line no
//! other subscriber learns its prefix (RFC 8273). On lines the caller marks
//! [`LineMode::Dedicated`] (1:1 VLANs), an RA without prefix also goes to all nodes
//! periodically, so that hosts not yet known learn the M/O flags and the router.
//!
//! Timing follows RFC 4861 section 6.2: unsolicited RAs at a random interval between the
//! configured minimum and maximum, the first three at most 16 s apart; a solicited RA at
//! most once per `solicit_interval` per peer (RS floods are counted drops).

use std::collections::{BTreeSet, HashMap, VecDeque};

use core::net::Ipv6Addr;
use core::time::Duration;

use super::wire::{self, Builder, Message, icmp_type, na_flag, prefix_flag, ra_flag};
use crate::entropy::Entropy;
use crate::inet::ipv6::{self, Prefix, next_header};
use crate::ipoe::{self, Subscriber};
use crate::pppoe::Line;
use crate::time::Instant;
use crate::wire::ethernet::{Mac, ethertype};

/// At most this many initial RAs go out at the shorter interval (RFC 4861 10).
const MAX_INITIAL_RTR_ADVERTISEMENTS: u32 = 3;
/// The longest interval between the initial RAs (RFC 4861 10).
const MAX_INITIAL_RTR_ADVERT_INTERVAL: Duration = Duration::from_secs(16);

/// How the router advertises.
#[derive(Clone, Debug)]
pub struct RouterConfig {
    /// The access port's MAC: the link-local address (modified EUI-64) and the
    /// link-layer options.
    pub mac: Mac,
    /// The gateway's global addresses on the access side, answered in NS.
    pub addresses: Vec<Ipv6Addr>,
    /// The M flag: addresses by DHCPv6 (IA_NA).
    pub managed: bool,
    /// The O flag: other configuration (DNS) by DHCPv6.
    pub other: bool,
    /// Cur Hop Limit advertised.
    pub hop_limit: u8,
    /// Router Lifetime.
    pub router_lifetime: Duration,
    /// The MTU option, if any.
    pub mtu: Option<u32>,
    /// The shortest interval between unsolicited RAs.
    pub min_interval: Duration,
    /// The longest interval between unsolicited RAs.
    pub max_interval: Duration,
    /// Valid lifetime of advertised prefixes.
    pub prefix_valid: Duration,
    /// Preferred lifetime of advertised prefixes.
    pub prefix_preferred: Duration,
    /// The L flag of advertised prefixes.
    pub on_link: bool,
    /// DNS servers (RDNSS) when a peer's advert names none.
    pub rdnss: Vec<Ipv6Addr>,
    /// RDNSS lifetime (RFC 8106 recommends three times the maximum interval).
    pub rdnss_lifetime: Duration,
    /// The least time between solicited RAs to one peer.
    pub solicit_interval: Duration,
}

impl RouterConfig {
    /// Defaults for a port with `mac`: SLAAC (M and O clear), lifetime 1800 s, RAs every
    /// 200..600 s.
    pub fn new(mac: Mac) -> RouterConfig {
        RouterConfig {
            mac,
            addresses: Vec::new(),
            managed: false,
            other: false,
            hop_limit: 64,
            router_lifetime: Duration::from_secs(1800),
            mtu: None,
            min_interval: Duration::from_secs(200),
            max_interval: Duration::from_secs(600),
            prefix_valid: Duration::from_secs(86_400),
            prefix_preferred: Duration::from_secs(14_400),
            on_link: true,
            rdnss: Vec::new(),
            rdnss_lifetime: Duration::from_secs(1800),
            solicit_interval: Duration::from_secs(3),
        }
    }
}

/// A peer of the router.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Peer {
    /// An IPoE subscriber.
    Ipoe(Subscriber),
    /// A PPP session (after IPv6CP), by the caller's handle.
    Ppp(u64),
}

/// Where a packet goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    /// An Ethernet frame on `line` to `mac`.
    Ethernet {
        /// The line.
        line: Line,
        /// The destination MAC (a subscriber's, or 33:33:00:00:00:01).
        mac: Mac,
    },
    /// Over a PPP session (protocol 0x0057).
    Ppp(u64),
}

/// An IPv6 packet to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// Where.
    pub to: Link,
    /// The IPv6 packet (header and ICMPv6).
    pub packet: Vec<u8>,
}

impl Transmit {
    /// The Ethernet frame from `src_mac` (`outer_tpid` for the S-VLAN); `None` over PPP.
    pub fn frame(&self, src_mac: Mac, outer_tpid: u16) -> Option<Vec<u8>> {
        match self.to {
            Link::Ethernet { line, mac } => Some(ipoe::frame(
                line,
                mac,
                src_mac,
                outer_tpid,
                ethertype::IPV6,
                &self.packet,
            )),
            Link::Ppp(_) => None,
        }
    }
}

/// What a peer's RAs carry beyond the router's config.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Advert {
    /// The peer's own prefix (a /64 for SLAAC: the A flag is set only on /64s).
    pub prefix: Option<Prefix>,
    /// DNS servers (empty: the config's).
    pub rdnss: Vec<Ipv6Addr>,
}

/// How a line's RAs go out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum LineMode {
    /// N:1: several subscribers share the line; RAs are unicast per subscriber only.
    #[default]
    Shared,
    /// 1:1: a line per subscriber; an RA without prefix also goes to all nodes.
    Dedicated,
}

/// What happened, for the caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A Router Solicitation from a peer the router does not advertise to: the caller may
    /// log it in (an IPv6-first SLAAC subscriber) and call [`Router::add_peer`]. It got a
    /// generic RA (flags, MTU, DNS, no prefix).
    Solicited {
        /// The peer.
        peer: Peer,
        /// The RS's source address (:: or its link-local).
        source: Ipv6Addr,
    },
}

/// Why an ICMPv6 packet from the access side was dropped (counted by name).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum DropReason {
    /// Not an IPv6 packet, or its extension headers do not parse, or a fragment.
    BadIp,
    /// Not ICMPv6.
    NotIcmpv6,
    /// A wrong ICMPv6 checksum.
    BadChecksum,
    /// An ND message with hop limit other than 255 (it crossed a router: RFC 4861 forbids).
    HopLimit,
    /// Malformed ND: code, length, a zero-length or overrunning option.
    Malformed,
    /// An ICMPv6 type the router does not handle here (echo, errors: the shell's).
    NotNd,
    /// RA guard: a Router Advertisement from a subscriber.
    RaGuard,
    /// A Redirect from a subscriber.
    Redirect,
    /// A source the message may not have: multicast, or :: with a link-layer option or
    /// not to a solicited-node group.
    BadSource,
    /// A Neighbor Solicitation for an address that is not the gateway's.
    NotOurTarget,
    /// A Router Solicitation within `solicit_interval` of the last solicited RA.
    RsRate,
    /// A Neighbor Advertisement (the router does not resolve subscribers' addresses:
    /// their MAC is known from the session).
    NeighborAdvert,
}

impl DropReason {
    /// Number of reasons.
    pub const COUNT: usize = 12;

    /// All reasons, in counter order.
    pub const ALL: [DropReason; DropReason::COUNT] = [
        DropReason::BadIp,
        DropReason::NotIcmpv6,
        DropReason::BadChecksum,
        DropReason::HopLimit,
        DropReason::Malformed,
        DropReason::NotNd,
        DropReason::RaGuard,
        DropReason::Redirect,
        DropReason::BadSource,
        DropReason::NotOurTarget,
        DropReason::RsRate,
        DropReason::NeighborAdvert,
    ];

    /// The counter's name.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::BadIp => "nd_bad_ip",
            DropReason::NotIcmpv6 => "nd_not_icmpv6",
            DropReason::BadChecksum => "nd_bad_checksum",
            DropReason::HopLimit => "nd_hop_limit",
            DropReason::Malformed => "nd_malformed",
            DropReason::NotNd => "nd_not_nd",
            DropReason::RaGuard => "nd_ra_guard",
            DropReason::Redirect => "nd_redirect",
            DropReason::BadSource => "nd_bad_source",
            DropReason::NotOurTarget => "nd_not_our_target",
            DropReason::RsRate => "nd_rs_rate",
            DropReason::NeighborAdvert => "nd_neighbor_advert",
        }
    }
}

/// Message counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Router Solicitations received (answered or not).
    pub rs: u64,
    /// RAs sent in answer to an RS.
    pub ra_solicited: u64,
    /// RAs sent periodically (or when a peer was added).
    pub ra_unsolicited: u64,
    /// Final RAs (router lifetime 0) for removed peers.
    pub ra_final: u64,
    /// Neighbor Solicitations for our addresses.
    pub ns: u64,
    /// Neighbor Advertisements sent.
    pub na: u64,
}

#[derive(Clone, Debug)]
struct PeerState {
    advert: Advert,
    link_local: Option<Ipv6Addr>,
    initial_left: u32,
    next: Instant,
    last_solicited: Option<Instant>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Due {
    Peer(Peer),
    Line(Line),
}

#[derive(Clone, Copy, Debug)]
struct LineState {
    initial_left: u32,
    next: Instant,
}

/// The router of one access port.
#[derive(Debug)]
pub struct Router {
    cfg: RouterConfig,
    link_local: Ipv6Addr,
    peers: HashMap<Peer, PeerState>,
    lines: HashMap<Line, LineState>,
    unknown_rs: HashMap<Peer, Instant>,
    timers: BTreeSet<(Instant, Due)>,
    out: VecDeque<Transmit>,
    events: VecDeque<Event>,
    drops: [u64; DropReason::COUNT],
    stats: Stats,
}

fn secs(d: Duration) -> u32 {
    d.as_secs().min(u64::from(u32::MAX)) as u32
}

impl Router {
    /// A router with no peers.
    pub fn new(cfg: RouterConfig) -> Router {
        Router {
            link_local: ipv6::link_local(cfg.mac),
            cfg,
            peers: HashMap::new(),
            lines: HashMap::new(),
            unknown_rs: HashMap::new(),
            timers: BTreeSet::new(),
            out: VecDeque::new(),
            events: VecDeque::new(),
            drops: [0; DropReason::COUNT],
            stats: Stats::default(),
        }
    }

    /// The gateway's link-local address on the port.
    pub fn link_local(&self) -> Ipv6Addr {
        self.link_local
    }

    /// Whether `a` is one of the gateway's addresses.
    pub fn is_ours(&self, a: Ipv6Addr) -> bool {
        a == self.link_local || self.cfg.addresses.contains(&a)
    }

    fn interval(&self, initial: bool, rng: &mut dyn Entropy) -> Duration {
        let (min, max) = (
            self.cfg.min_interval,
            self.cfg.max_interval.max(self.cfg.min_interval),
        );
        let span = max.saturating_sub(min).as_millis() as u64;
        let d = min
            + Duration::from_millis(if span == 0 {
                0
            } else {
                u64::from(rng.next_u32()) % span
            });
        if initial {
            d.min(MAX_INITIAL_RTR_ADVERT_INTERVAL)
        } else {
            d
        }
    }

    /// Marks `line` as 1:1: periodic RAs without prefix go to all nodes on it.
    pub fn set_line(&mut self, now: Instant, line: Line, mode: LineMode, rng: &mut dyn Entropy) {
        if let Some(old) = self.lines.remove(&line) {
            self.timers.remove(&(old.next, Due::Line(line)));
        }
        if mode == LineMode::Dedicated {
            self.send_ra(
                Link::Ethernet {
                    line,
                    mac: ipv6::multicast_mac(ipv6::ALL_NODES),
                },
                ipv6::ALL_NODES,
                None,
                false,
            );
            self.stats.ra_unsolicited += 1;
            let next = now + self.interval(true, rng);
            self.lines.insert(
                line,
                LineState {
                    initial_left: MAX_INITIAL_RTR_ADVERTISEMENTS - 1,
                    next,
                },
            );
            self.timers.insert((next, Due::Line(line)));
        }
    }

    /// Starts advertising to `peer` (its session has IPv6): an RA goes out at once.
    /// Adding a peer again replaces its advert (and sends an RA with it).
    pub fn add_peer(&mut self, now: Instant, peer: Peer, advert: Advert, rng: &mut dyn Entropy) {
        let link_local = self.peers.get(&peer).and_then(|p| p.link_local);
        if let Some(old) = self.peers.remove(&peer) {
            self.timers.remove(&(old.next, Due::Peer(peer)));
        }
        self.unknown_rs.remove(&peer);
        let next = now + self.interval(true, rng);
        self.peers.insert(
            peer,
            PeerState {
                advert,
                link_local,
                initial_left: MAX_INITIAL_RTR_ADVERTISEMENTS - 1,
                next,
                last_solicited: None,
            },
        );
        self.timers.insert((next, Due::Peer(peer)));
        self.stats.ra_unsolicited += 1;
        self.advertise(peer, false);
    }

    /// Stops advertising to `peer` (its session ended): a final RA with router lifetime 0
    /// and its prefix deprecated (preferred and valid lifetime 0). Returns false if the
    /// peer was not known.
    pub fn remove_peer(&mut self, peer: Peer) -> bool {
        let Some(old) = self.peers.get(&peer).cloned() else {
            return false;
        };
        self.stats.ra_final += 1;
        self.advertise(peer, true);
        self.peers.remove(&peer);
        self.timers.remove(&(old.next, Due::Peer(peer)));
        true
    }

    /// The peers advertised to.
    pub fn peers(&self) -> impl Iterator<Item = (&Peer, &Advert)> {
        self.peers.iter().map(|(p, s)| (p, &s.advert))
    }

    /// Where a packet to `peer` goes and its IPv6 destination for an RA.
    fn link_of(&self, peer: Peer) -> (Link, Ipv6Addr) {
        let dst = self
            .peers
            .get(&peer)
            .and_then(|p| p.link_local)
            .unwrap_or(ipv6::ALL_NODES);
        match peer {
            Peer::Ipoe(s) => (
                Link::Ethernet {
                    line: s.line,
                    mac: s.mac,
                },
                dst,
            ),
            Peer::Ppp(h) => (Link::Ppp(h), dst),
        }
    }

    fn advertise(&mut self, peer: Peer, last: bool) {
        let (link, dst) = self.link_of(peer);
        let advert = self.peers.get(&peer).map(|p| p.advert.clone());
        self.send_ra(link, dst, advert.as_ref(), last);
    }

    fn send_ra(&mut self, link: Link, dst: Ipv6Addr, advert: Option<&Advert>, last: bool) {
        let c = &self.cfg;
        let flags =
            if c.managed { ra_flag::MANAGED } else { 0 } | if c.other { ra_flag::OTHER } else { 0 };
        let lifetime = if last {
            0
        } else {
            secs(c.router_lifetime).min(9000) as u16
        };
        let mut b = Builder::router_advert(c.hop_limit, flags, lifetime, 0, 0);
        if matches!(link, Link::Ethernet { .. }) {
            b.source_link_layer(c.mac);
        }
        if let Some(m) = c.mtu {
            b.mtu(m);
        }
        if let Some(p) = advert.and_then(|a| a.prefix) {
            let mut f = if c.on_link { prefix_flag::ON_LINK } else { 0 };
            if p.len() == 64 {
                f |= prefix_flag::AUTONOMOUS;
            }
            let (valid, preferred) = if last {
                (0, 0)
            } else {
                (
                    secs(c.prefix_valid),
                    secs(c.prefix_preferred.min(c.prefix_valid)),
                )
            };
            b.prefix_info(p, f, valid, preferred);
        }
        let dns = match advert {
            Some(a) if !a.rdnss.is_empty() => &a.rdnss,
            _ => &c.rdnss,
        };
        let dns_lifetime = if last { 0 } else { secs(c.rdnss_lifetime) };
        b.rdnss(dns_lifetime, dns);
        let icmp = b.finish(self.link_local, dst);
        self.out.push_back(Transmit {
            to: link,
            packet: ipv6::packet(self.link_local, dst, next_header::ICMPV6, 255, &icmp),
        });
    }

    /// An IPv6 packet from `peer` (an IPoE subscriber: its line and the frame's source
    /// MAC; or a PPP session) that the fast path punted as ICMPv6 ND.
    pub fn handle_packet(&mut self, now: Instant, peer: Peer, packet: &[u8]) {
        if let Err(d) = self.input(now, peer, packet) {
            self.drops[d as usize] += 1;
        }
    }

    fn input(&mut self, now: Instant, peer: Peer, packet: &[u8]) -> Result<(), DropReason> {
        let ip = ipv6::Packet::new_checked(packet).map_err(|_| DropReason::BadIp)?;
        let (proto, at) = ip
            .chain()
            .map_err(|_| DropReason::BadIp)?
            .upper_layer()
            .ok_or(DropReason::BadIp)?;
        if proto != next_header::ICMPV6 {
            return Err(DropReason::NotIcmpv6);
        }
        let (src, dst) = (ip.src_addr(), ip.dst_addr());
        let icmp = &packet[ipv6::HEADER_LEN + at..ipv6::HEADER_LEN + ip.payload_len() as usize];
        let p = wire::Packet::new_checked(icmp).map_err(|_| DropReason::Malformed)?;
        if !matches!(
            p.msg_type(),
            icmp_type::ROUTER_SOLICIT
                | icmp_type::ROUTER_ADVERT
                | icmp_type::NEIGHBOR_SOLICIT
                | icmp_type::NEIGHBOR_ADVERT
                | icmp_type::REDIRECT
        ) {
            return Err(DropReason::NotNd);
        }
        if !p.checksum_ok(src, dst) {
            return Err(DropReason::BadChecksum);
        }
        if ip.hop_limit() != 255 {
            return Err(DropReason::HopLimit);
        }
        let m = Message::parse(&p).map_err(|_| DropReason::Malformed)?;
        if src.is_multicast() {
            return Err(DropReason::BadSource);
        }
        match m {
            Message::RouterAdvert { .. } => Err(DropReason::RaGuard),
            Message::Redirect { .. } => Err(DropReason::Redirect),
            Message::NeighborAdvert { .. } => Err(DropReason::NeighborAdvert),
            Message::RouterSolicit { .. } => {
                if src.is_unspecified() && m.source_link_layer().is_some() {
                    return Err(DropReason::BadSource);
                }
                self.stats.rs += 1;
                self.solicited(now, peer, src)
            }
            Message::NeighborSolicit { target, .. } => {
                if target.is_multicast() {
                    return Err(DropReason::Malformed);
                }
                let dad = src.is_unspecified();
                if dad && (dst != ipv6::solicited_node(target) || m.source_link_layer().is_some()) {
                    return Err(DropReason::BadSource);
                }
                if !self.is_ours(target) {
                    return Err(DropReason::NotOurTarget);
                }
                self.stats.ns += 1;
                self.stats.na += 1;
                // Answer to the solicitor; a DAD probe for our address is defended to all
                // nodes (RFC 4861 7.2.4).
                let (na_dst, flags) = if dad {
                    (ipv6::ALL_NODES, na_flag::ROUTER | na_flag::OVERRIDE)
                } else {
                    (
                        src,
                        na_flag::ROUTER | na_flag::SOLICITED | na_flag::OVERRIDE,
                    )
                };
                let mut b = Builder::neighbor_advert(flags, target);
                let link = match peer {
                    Peer::Ipoe(s) => {
                        b.target_link_layer(self.cfg.mac);
                        let mac = if dad {
                            ipv6::multicast_mac(ipv6::ALL_NODES)
                        } else {
                            s.mac
                        };
                        Link::Ethernet { line: s.line, mac }
                    }
                    Peer::Ppp(h) => Link::Ppp(h),
                };
                let icmp = b.finish(target, na_dst);
                self.out.push_back(Transmit {
                    to: link,
                    packet: ipv6::packet(target, na_dst, next_header::ICMPV6, 255, &icmp),
                });
                Ok(())
            }
        }
    }

    fn solicited(&mut self, now: Instant, peer: Peer, src: Ipv6Addr) -> Result<(), DropReason> {
        let interval = self.cfg.solicit_interval;
        let recent = |t: Option<Instant>| t.is_some_and(|t| now.since(t) < interval);
        if let Some(p) = self.peers.get_mut(&peer) {
            if recent(p.last_solicited) {
                return Err(DropReason::RsRate);
            }
            p.last_solicited = Some(now);
            if ipv6::is_link_local(src) {
                p.link_local = Some(src);
            }
            self.stats.ra_solicited += 1;
            self.advertise(peer, false);
            return Ok(());
        }
        if recent(self.unknown_rs.get(&peer).copied()) {
            return Err(DropReason::RsRate);
        }
        // Bounded: forget answers older than the interval when the table grows.
        if self.unknown_rs.len() >= 65_536 {
            self.unknown_rs.retain(|_, t| now.since(*t) < interval);
        }
        self.unknown_rs.insert(peer, now);
        let (link, _) = self.link_of(peer);
        let dst = if ipv6::is_link_local(src) {
            src
        } else {
            ipv6::ALL_NODES
        };
        self.stats.ra_solicited += 1;
        self.send_ra(link, dst, None, false);
        self.events
            .push_back(Event::Solicited { peer, source: src });
        Ok(())
    }

    /// When [`Self::handle_timeout`] is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.first().map(|(t, _)| *t)
    }

    /// Sends the periodic RAs due at `now`.
    pub fn handle_timeout(&mut self, now: Instant, rng: &mut dyn Entropy) {
        while let Some(&(t, due)) = self.timers.first() {
            if t > now {
                break;
            }
            self.timers.remove(&(t, due));
            match due {
                Due::Peer(peer) => {
                    // `initial_left` counts the initial RAs still to come, this one
                    // included: the gap to the next is short while one remains.
                    let Some(p) = self.peers.get(&peer) else {
                        continue;
                    };
                    let left = p.initial_left.saturating_sub(1);
                    let next = now + self.interval(left > 0, rng);
                    if let Some(p) = self.peers.get_mut(&peer) {
                        p.initial_left = left;
                        p.next = next;
                    }
                    self.timers.insert((next, due));
                    self.stats.ra_unsolicited += 1;
                    self.advertise(peer, false);
                }
                Due::Line(line) => {
                    let Some(l) = self.lines.get(&line).copied() else {
                        continue;
                    };
                    let left = l.initial_left.saturating_sub(1);
                    let next = now + self.interval(left > 0, rng);
                    self.lines.insert(
                        line,
                        LineState {
                            initial_left: left,
                            next,
                        },
                    );
                    self.timers.insert((next, due));
                    self.stats.ra_unsolicited += 1;
                    self.send_ra(
                        Link::Ethernet {
                            line,
                            mac: ipv6::multicast_mac(ipv6::ALL_NODES),
                        },
                        ipv6::ALL_NODES,
                        None,
                        false,
                    );
                }
            }
        }
    }

    /// The next packet to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The drop counters by reason.
    pub fn drops(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        DropReason::ALL
            .into_iter()
            .map(|d| (d, self.drops[d as usize]))
    }

    /// One drop counter.
    pub fn drop_count(&self, d: DropReason) -> u64 {
        self.drops[d as usize]
    }

    /// The message counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }
}
