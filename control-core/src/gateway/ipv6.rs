//! IPv6 for IPoE subscribers (issue 16, SPEC V6-1), the control half: neighbour
//! discovery the fast path punts goes to two [`nd::Router`]s, one per side (the access
//! one answers NS for the gateway's link-local and configured addresses and sends each
//! subscriber's RAs with its /64; the core one answers NS for the core address), and
//! each IPoE session gets a /64 from the IPv6 pool.
//!
//! One session per subscriber for both families: an IPoE subscriber is its line and MAC.
//! Every IPoE session installed while `[ipv6]` is on gets a /64 at once
//! ([`Command::SessionPrefix6`]) and, once its MAC is known, RAs. A Router Solicitation
//! from a MAC that has no session is an IPv6-first subscriber: it is logged in by MAC as
//! the IPv4 first-packet login does (local store or RADIUS decides; its IPv4 address
//! comes from the pools), and its session gets the /64 like any other. The core side's
//! IPv6 next hop is configured, or resolved here: NS to it until a NS or NA from it
//! gives its MAC, which goes into the forwarding snapshot.
//!
//! A session's /64 is chosen so that the fast path's steering
//! ([`prefix_worker`](tollgate_dataplane::steer::prefix_worker)) takes
//! its IPv6 to the worker that holds the session (the worker of its IPv4 address).

use std::collections::HashMap;
use std::net::Ipv6Addr;
use std::time::Duration;

use tollgate_dataplane::session::{
    AccessLine, Encap, SessionId, SessionSpec, VlanKey, VlanTag, Vlans,
};
use tollgate_dataplane::table::route6::{Route6, Routes6, Target6};
use tollgate_dataplane::time::Instant;
use tollgate_dataplane::{Command, Frame, MacAddr, Side};

use super::aaa::LoginRequest;
use super::{Core, Output, Target};
use crate::inet::ipv6::{self as ip6, Prefix, next_header};
use crate::ipoe::Subscriber;
use crate::nd::{self, Advert, Peer, Router, RouterConfig, wire::Builder};
use crate::pppoe::Line;
use crate::radius::attrs::PppoeLine;
use crate::random::{Random, Seed};
use crate::wire::ethernet::{Header, Mac};

/// How long an IPv6-first login by MAC is not started again for the same MAC.
const LOGIN_RETRY: Duration = Duration::from_secs(5);
/// How often the core side's next hop is solicited while its MAC is unknown.
const SOLICIT_EVERY: Duration = Duration::from_secs(1);

/// IPv6 (`[ipv6]`).
#[derive(Clone, Debug)]
pub struct Ipv6Settings {
    /// Where sessions' /64s come from (a /64 or shorter). None only in DHCPv6 relay
    /// mode, where an IPoE session's /64 is its binding's: a session without one (a
    /// PPP session's IPv6CP, an RS login) then gets no /64.
    pub pool: Option<Prefix>,
    /// The gateway's global addresses on the access side (answered in NS; the
    /// link-local one from the port MAC always is).
    pub access_addresses: Vec<Ipv6Addr>,
    /// The gateway's address on the core side (answered in NS there).
    pub core_address: Option<Ipv6Addr>,
    /// The core side's IPv6 next hop: every uplink IPv6 packet goes to it.
    pub next_hop: Option<Ipv6Addr>,
    /// Its MAC, when configured (otherwise resolved by NS).
    pub next_hop_mac: Option<MacAddr>,
    /// DNS servers in RAs (RDNSS, RFC 8106).
    pub dns: Vec<Ipv6Addr>,
    /// Shortest and longest interval between unsolicited RAs.
    pub ra_interval: (Duration, Duration),
    /// Log in a MAC without a session on its first Router Solicitation.
    pub login_on_rs: bool,
    /// Keys the RA interval jitter.
    pub seed: Seed,
    /// The DHCPv6 server, when on (RAs then carry the M and O flags).
    pub dhcpv6: Option<super::dhcpv6::Dhcpv6Settings>,
    /// Static routes of the core side (`[[ipv6.route]]`): prefix and next hop (resolved
    /// by NS like `next_hop`). Longer than the default `next_hop`.
    pub routes: Vec<(Prefix, Ipv6Addr)>,
    /// Connected prefixes of the core side (`[ipv6] connected`): their hosts are
    /// reached directly, each resolved by NS when traffic first goes to it.
    pub connected: Vec<Prefix>,
}

impl Ipv6Settings {
    /// The forwarding snapshot's IPv6 route table of [`routes`](Self::routes) and
    /// [`connected`](Self::connected) ([`routes6`]).
    pub fn routes6(&self) -> Routes6 {
        routes6(
            &self.routes,
            &self.connected,
            self.next_hop.zip(self.next_hop_mac),
        )
    }
}

/// The IPv6 route table of static `routes`, `connected` prefixes and the default next
/// hop's configured MAC (no other MACs yet: the core resolves them). For an equal prefix
/// a connected one wins, as for IPv4.
pub fn routes6(
    routes: &[(Prefix, Ipv6Addr)],
    connected: &[Prefix],
    default: Option<(Ipv6Addr, MacAddr)>,
) -> Routes6 {
    let connected = connected.iter().map(|p| Route6 {
        prefix: p.addr(),
        len: p.len(),
        target: Target6::Connected,
    });
    let vias = routes.iter().map(|(p, via)| Route6 {
        prefix: p.addr(),
        len: p.len(),
        target: Target6::Via(*via),
    });
    let mut t = Routes6::new(&connected.chain(vias).collect::<Vec<_>>());
    if let Some((a, mac)) = default {
        t.set_neighbor(a, Some(mac));
    }
    t
}

/// What the IPv6 half counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ipv6Stats {
    /// Punted IPv6 frames handled.
    pub punts: u64,
    /// DHCPv6 messages punted while the DHCPv6 server is off (dropped).
    pub dhcpv6_ignored: u64,
    /// /64s attached to sessions.
    pub prefixes_attached: u64,
    /// /64s given back at a session's end.
    pub prefixes_released: u64,
    /// Sessions left without IPv6 because the pool was exhausted.
    pub pool_exhausted: u64,
    /// Sessions that needed a /64 from the pool where there is none (DHCPv6 relay mode
    /// without `pool`: a PPP session's IPv6CP): IPv4 only.
    pub no_pool: u64,
    /// IPv6-first logins by MAC started on a Router Solicitation or a DHCPv6 SOLICIT.
    pub logins: u64,
    /// Neighbor Solicitations sent for the core side's next hop.
    pub next_hop_solicits: u64,
    /// Times the next hop's MAC was learnt (or changed).
    pub next_hop_learned: u64,
}

use super::neighbor::Timing;
use super::neighbor6::{Neighbors6, Solicit};

/// Prefixes of one length out of a pool, handed out per worker: one for a session on
/// worker `w` of `n` is owned by `w` under the fast path's steering
/// ([`prefix_worker`](tollgate_dataplane::steer::prefix_worker): by the /56 that holds
/// it). The pool is cut into blocks, each the items of one /56 (or the whole pool when it
/// is longer than a /56); consecutive blocks go round the workers. A pool longer than
/// /56 is one block: all of it belongs to one worker, and sessions on the others get
/// none (counted as exhaustion, warned at start). Items shorter than a /56 span several
/// /56s and cannot be steered to one worker: any worker's session gets them (right
/// with one worker only; warned at start). Items are numbered from the pool's start.
#[derive(Debug)]
pub(super) struct SteeredPool {
    /// Items per block, as a shift.
    block: u32,
    /// Blocks in the pool.
    blocks: u64,
    /// Workers the blocks go round (1 when items cannot be steered).
    workers: u64,
    /// The worker of block 0.
    first: u64,
    used: std::collections::HashSet<u64>,
    /// Per worker, the slot (its items in order) to try first.
    next: Vec<u64>,
}

impl SteeredPool {
    /// Items of length `len` (56 to 64, or shorter: not steered) in `pool`, whose upper
    /// 64 bits are `base`, for `workers` workers.
    pub(super) fn new(base: u64, pool_len: u8, len: u8, workers: u16) -> SteeredPool {
        let items = u32::from(len.saturating_sub(pool_len)).min(63);
        let steered = len >= 56;
        let block = if steered {
            items.min(u32::from(len - 56))
        } else {
            0
        };
        let workers = if steered {
            u64::from(workers.max(1))
        } else {
            1
        };
        SteeredPool {
            block,
            blocks: 1u64 << (items - block),
            workers,
            first: u64::from(tollgate_dataplane::steer::prefix_worker(
                base,
                workers as u16,
            )),
            used: Default::default(),
            next: vec![0; workers as usize],
        }
    }

    /// Items in the pool.
    pub(super) fn count(&self) -> u64 {
        self.blocks << self.block
    }

    /// Whether worker `w` owns any of the pool.
    pub(super) fn serves(&self, worker: u16) -> bool {
        let w = u64::from(worker) % self.workers;
        (w + self.workers - self.first) % self.workers < self.blocks
    }

    /// A free item (its number) for a session on `worker`.
    pub(super) fn allocate(&mut self, worker: u16) -> Option<u64> {
        let n = self.workers;
        let w = u64::from(worker) % n;
        let b0 = (w + n - self.first) % n;
        if b0 >= self.blocks {
            return None;
        }
        let slots = (self.blocks - b0).div_ceil(n) << self.block;
        let mask = (1u64 << self.block) - 1;
        let mut s = self.next[w as usize];
        // At most `used` items are taken: one more try finds a free one if any is.
        for _ in 0..slots.min(self.used.len() as u64 + 1) {
            if s >= slots {
                s = 0;
            }
            let i = ((b0 + (s >> self.block) * n) << self.block) | (s & mask);
            if self.used.insert(i) {
                self.next[w as usize] = s + 1;
                return Some(i);
            }
            s += 1;
        }
        None
    }

    /// Takes item `i` out of the pool; false if it is handed out already.
    pub(super) fn claim(&mut self, i: u64) -> bool {
        i >= self.count() || self.used.insert(i)
    }

    pub(super) fn release(&mut self, i: u64) {
        self.used.remove(&i);
    }
}

/// The /64s of a pool, handed out per worker ([`SteeredPool`]), so that the fast path's
/// steering takes a session's IPv6 to the worker that holds it.
#[derive(Debug)]
struct PrefixPool {
    base: u64,
    workers: u64,
    /// None: no pool (DHCPv6 relay mode without `pool`), nothing to hand out.
    slots: Option<SteeredPool>,
}

impl PrefixPool {
    fn new(pool: Option<Prefix>, workers: u16) -> PrefixPool {
        let base = pool.map_or(0, |p| (u128::from(p.addr()) >> 64) as u64);
        let slots = pool.map(|p| SteeredPool::new(base, p.len().min(64), 64, workers));
        PrefixPool {
            base,
            workers: u64::from(workers.max(1)),
            slots,
        }
    }

    /// A free /64 (upper 64 bits) for a session on `worker`.
    fn allocate(&mut self, worker: u16) -> Option<u64> {
        let base = self.base;
        self.slots.as_mut()?.allocate(worker).map(|i| base | i)
    }

    /// Takes `prefix` (upper 64 bits) out of the pool if it is in it; false if it is
    /// handed out already.
    fn claim(&mut self, prefix: u64) -> bool {
        let base = self.base;
        self.slots
            .as_mut()
            .is_none_or(|s| s.claim(prefix.wrapping_sub(base)))
    }

    fn release(&mut self, prefix: u64) {
        let base = self.base;
        if let Some(s) = self.slots.as_mut() {
            s.release(prefix.wrapping_sub(base));
        }
    }
}

/// A session's IPv6.
#[derive(Clone, Copy, Debug)]
pub(super) struct Attached {
    pub(super) prefix: u64,
    /// The subscriber RAs go to, once its MAC is known.
    peer: Option<Subscriber>,
    vlans: VlanKey,
    /// The PPP link its RAs go over (a PPP session's, after IPv6CP).
    pub(super) ppp: Option<u64>,
}

/// The IPv6 state of the core.
#[derive(Debug)]
pub struct Ipv6 {
    s: Ipv6Settings,
    access: Router,
    core: Router,
    rng: Random,
    pool: PrefixPool,
    pub(super) sessions: HashMap<SessionId, Attached>,
    peers: HashMap<Subscriber, SessionId>,
    /// The sessions of PPP links with IPv6 (by the PPP side's handle).
    pub(super) peers_ppp: HashMap<u64, SessionId>,
    /// The outer TPID last seen on each tagged line (RAs go out with it).
    pub(super) tpids: HashMap<Line, u16>,
    /// The DHCPv6 server and its bindings, when on.
    pub(super) dhcp: Option<super::dhcpv6::Dhcpv6>,
    /// What AAA gave sessions for IPv6 (Framed-Interface-Id, Delegated-IPv6-Prefix).
    pub(super) aaa: HashMap<SessionId, super::dhcpv6::SessionIpv6>,
    logins: HashMap<Mac, Instant>,
    next_hop_mac: Option<MacAddr>,
    next_solicit: Option<Instant>,
    /// Routes' next hops and connected hosts ([`Neighbors6`]).
    pub(super) neighbors: Neighbors6,
    stats: Ipv6Stats,
}

/// The port of the DHCPv6 server's key for PPP links: no Ethernet line has it.
const PPP_PORT: u16 = u16::MAX;

/// The DHCPv6 server's key of PPP link `h` (its bindings are per subscriber, a line and
/// MAC): a line on [`PPP_PORT`] and a locally administered MAC that carries the handle.
pub(super) fn ppp_subscriber(h: u64) -> Subscriber {
    let b = (h as u32).to_be_bytes();
    Subscriber::new(
        Line::untagged(PPP_PORT),
        [0x02, 0x00, b[0], b[1], b[2], b[3]],
    )
}

/// The PPP link of a DHCPv6 key made by [`ppp_subscriber`].
pub(super) fn ppp_link_of(sub: &Subscriber) -> Option<u64> {
    (sub.line.port == PPP_PORT).then(|| {
        u64::from(u32::from_be_bytes([
            sub.mac[2], sub.mac[3], sub.mac[4], sub.mac[5],
        ]))
    })
}

/// The modified EUI-64 link-local address of `mac`.
pub fn link_local(mac: MacAddr) -> Ipv6Addr {
    ip6::link_local(mac.0)
}

impl Ipv6 {
    /// Takes /64 `hi` out of the pool (a restored binding's); false if handed out.
    pub(super) fn claim_prefix(&mut self, hi: u64) -> bool {
        self.pool.claim(hi)
    }

    /// Gives /64 `hi` back to the pool.
    pub(super) fn release_prefix(&mut self, hi: u64) {
        self.pool.release(hi);
    }

    /// The workers IPv6 is steered over.
    pub(super) fn pool_workers(&self) -> u16 {
        self.pool.workers as u16
    }

    pub(super) fn new(
        s: Ipv6Settings,
        access_mac: MacAddr,
        core_mac: MacAddr,
        workers: u16,
        arp: Timing,
        now: Instant,
    ) -> Ipv6 {
        let mut a = RouterConfig::new(access_mac.0);
        a.addresses = s.access_addresses.clone();
        a.rdnss = s.dns.clone();
        a.min_interval = s.ra_interval.0;
        a.max_interval = s.ra_interval.1;
        // With DHCPv6: addresses (M) and other configuration (O) from it too.
        a.managed = s.dhcpv6.is_some();
        a.other = s.dhcpv6.is_some();
        let dhcp = s
            .dhcpv6
            .clone()
            .map(|d| super::dhcpv6::Dhcpv6::new(d, access_mac.0, s.dns.clone(), workers, now));
        let pool = PrefixPool::new(s.pool, workers);
        let idle: Vec<u16> = (0..workers)
            .filter(|w| pool.slots.as_ref().is_some_and(|p| !p.serves(*w)))
            .collect();
        if let (Some(p), false) = (s.pool, idle.is_empty()) {
            tracing::warn!(pool = %p, ?idle, "the IPv6 pool holds fewer /56s than there are workers (IPv6 is steered by the /56): sessions on these workers get no /64 (a /56 or more per worker wanted)");
        }
        let mut c = RouterConfig::new(core_mac.0);
        c.addresses = s.core_address.into_iter().collect();
        let resolve = s.next_hop.is_some() && s.next_hop_mac.is_none();
        Ipv6 {
            access: Router::new(a),
            core: Router::new(c),
            rng: Random::new(&s.seed),
            pool,
            sessions: HashMap::new(),
            peers: HashMap::new(),
            peers_ppp: HashMap::new(),
            tpids: HashMap::new(),
            dhcp,
            aaa: HashMap::new(),
            logins: HashMap::new(),
            next_hop_mac: s.next_hop_mac,
            next_solicit: resolve.then_some(now),
            neighbors: Neighbors6::new(
                now,
                s.routes.iter().map(|(_, via)| *via),
                &s.next_hop
                    .zip(s.next_hop_mac)
                    .into_iter()
                    .collect::<Vec<_>>(),
                arp,
            ),
            stats: Ipv6Stats::default(),
            s,
        }
    }

    /// What it counted.
    pub fn stats(&self) -> Ipv6Stats {
        self.stats
    }

    /// The access side's router (its message and drop counters).
    pub fn access_router(&self) -> &Router {
        &self.access
    }

    /// The core side's router.
    pub fn core_router(&self) -> &Router {
        &self.core
    }

    /// The /64 of session `id`.
    pub fn prefix_of(&self, id: SessionId) -> Option<Prefix> {
        let a = self.sessions.get(&id)?;
        Prefix::new(Ipv6Addr::from(u128::from(a.prefix) << 64), 64)
    }

    /// Every counter by name (`show counters`' `ipv6`): the core's, then both routers'
    /// messages and drops (`nd_*` on the access side, `core_nd_*` on the core side).
    pub fn counters(&self) -> Vec<(String, u64)> {
        let s = &self.stats;
        let mut out: Vec<(String, u64)> = [
            ("ipv6_punts", s.punts),
            ("dhcpv6_ignored", s.dhcpv6_ignored),
            ("ipv6_prefixes_attached", s.prefixes_attached),
            ("ipv6_prefixes_released", s.prefixes_released),
            ("ipv6_pool_exhausted", s.pool_exhausted),
            ("ipv6_no_pool", s.no_pool),
            ("ipv6_logins", s.logins),
            ("ipv6_next_hop_solicits", s.next_hop_solicits),
            ("ipv6_next_hop_learned", s.next_hop_learned),
            ("ipv6_neighbor_solicits", self.neighbors.stats().solicits),
            ("ipv6_neighbor_learned", self.neighbors.stats().learned),
            ("ipv6_neighbor_failed", self.neighbors.stats().failed),
            ("ipv6_neighbor_probes", self.neighbors.stats().probes),
            ("ipv6_neighbor_confirmed", self.neighbors.stats().confirmed),
            ("ipv6_neighbor_lost", self.neighbors.stats().lost),
            (
                "ipv6_neighbor_asks_ignored",
                self.neighbors.stats().asks_ignored,
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        for (prefix, r) in [("", &self.access), ("core_", &self.core)] {
            let m = r.stats();
            for (k, v) in [
                ("nd_rs", m.rs),
                ("nd_ra_solicited", m.ra_solicited),
                ("nd_ra_unsolicited", m.ra_unsolicited),
                ("nd_ra_final", m.ra_final),
                ("nd_ns", m.ns),
                ("nd_na", m.na),
            ] {
                out.push((format!("{prefix}{k}"), v));
            }
            for (d, n) in r.drops() {
                out.push((format!("{prefix}{}", d.name()), n));
            }
        }
        if let Some(d) = &self.dhcp {
            out.extend(d.counters());
        }
        out
    }

    /// The DHCPv6 binding of session `id`'s subscriber (IA_NA address, IA_PD prefix).
    pub fn dhcpv6_lease_of(&self, id: SessionId) -> Option<&crate::dhcpv6::Lease> {
        let a = self.sessions.get(&id)?;
        let sub = a.peer.or_else(|| a.ppp.map(ppp_subscriber))?;
        self.dhcp.as_ref()?.lease(&sub)
    }

    /// The DHCPv6 server's state, when on.
    pub fn dhcpv6(&self) -> Option<&super::dhcpv6::Dhcpv6> {
        self.dhcp.as_ref()
    }

    /// The core side's next hop MAC, configured or learnt.
    pub fn next_hop_mac(&self) -> Option<MacAddr> {
        self.next_hop_mac
    }

    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        [
            self.access.poll_timeout(),
            self.next_solicit,
            self.neighbors.poll_timeout(),
            self.dhcp.as_ref().and_then(|d| d.server.poll_timeout()),
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

/// The line of a punted frame's tags.
fn line_of(h: &Header) -> Line {
    Line {
        port: 0,
        svlan: h.outer.map(|t| t.vid),
        cvlan: h.inner.map(|t| t.vid),
    }
}

/// The fast path's key of `line`'s VLANs.
fn vlan_key(line: Line) -> VlanKey {
    [line.svlan, line.cvlan]
        .into_iter()
        .flatten()
        .fold(VlanKey::UNTAGGED, |k, v| k.push(v))
}

/// The line of a session's VLANs (the reverse of [`vlan_key`]).
pub(super) fn line_of_key(k: VlanKey) -> Line {
    let (vids, n) = k.vids();
    Line {
        port: 0,
        svlan: (n > 0).then(|| vids[0]),
        cvlan: (n > 1).then(|| vids[1]),
    }
}

impl Core {
    /// An IPoE subscriber's line as its session and RADIUS see it, for a login that did
    /// not come through DHCPv4: the tags of `line` (an S-tag's TPID as received when
    /// known, else 802.1ad), NAS-Port-Id after the access port's name. `None` for an
    /// untagged line (the default).
    pub(super) fn ipoe_line(
        &self,
        line: Line,
        outer_tpid: Option<u16>,
    ) -> Option<(AccessLine, PppoeLine)> {
        line.svlan?;
        let tag = |tpid, vid: Option<u16>| vid.map(|vid| VlanTag { tpid, vid });
        let vlans = match line.cvlan {
            Some(_) => Vlans {
                outer: tag(outer_tpid.unwrap_or(0x88a8), line.svlan),
                inner: tag(0x8100, line.cvlan),
            },
            None => Vlans {
                outer: tag(outer_tpid.unwrap_or(0x8100), line.svlan),
                inner: None,
            },
        };
        let port = self
            .dhcp_port_name()
            .or_else(|| self.pppoe_port_name())
            .unwrap_or("access");
        let radius = PppoeLine {
            nas_port_id: line.nas_port_id(port),
            circuit_id: None,
            remote_id: None,
            ipoe: true,
        };
        let access = AccessLine {
            vlans,
            encap: Encap::Ipoe,
            mss_clamp: 0,
        };
        Some((access, radius))
    }

    /// The IPv6 half, when `[ipv6]` is on.
    pub fn ipv6(&self) -> Option<&Ipv6> {
        self.ipv6.as_ref()
    }

    /// A punted IPv6 frame (neighbour discovery, DHCPv6), its Ethernet header parsed.
    pub(super) fn on_ipv6(&mut self, now: Instant, side: Side, h: Header, bytes: &[u8]) {
        let Some(v6) = self.ipv6.as_mut() else {
            self.stats.punts_malformed += 1;
            return;
        };
        v6.stats.punts += 1;
        let packet = &bytes[h.payload_at..];
        let Ok(ip) = ip6::Packet::new_checked(packet) else {
            self.stats.punts_malformed += 1;
            return;
        };
        let upper = ip.chain().ok().and_then(|c| c.upper_layer());
        if upper.is_some_and(|(p, _)| p == next_header::UDP) {
            if side == Side::Access && v6.dhcp.is_some() {
                let line = line_of(&h);
                if let Some(t) = h.outer {
                    v6.tpids.insert(line, t.tpid);
                }
                self.on_dhcpv6(now, Subscriber::new(line, h.src), packet);
            } else {
                v6.stats.dhcpv6_ignored += 1;
            }
            return;
        }
        match side {
            Side::Access => {
                let line = line_of(&h);
                if let Some(t) = h.outer {
                    v6.tpids.insert(line, t.tpid);
                }
                let sub = Subscriber::new(line, h.src);
                v6.access.handle_packet(now, Peer::Ipoe(sub), packet);
                let events: Vec<nd::Event> =
                    std::iter::from_fn(|| v6.access.poll_event()).collect();
                for nd::Event::Solicited { peer, .. } in events {
                    if let Peer::Ipoe(s) = peer {
                        self.ipv6_solicited(now, s);
                    }
                }
            }
            Side::Core => {
                // The next hop is learnt from whatever it sends us (its NS for our
                // address, its NA to ours).
                if v6.s.next_hop == Some(ip.src_addr())
                    && v6.s.next_hop_mac.is_none()
                    && v6.next_hop_mac != Some(MacAddr(h.src))
                {
                    v6.next_hop_mac = Some(MacAddr(h.src));
                    v6.next_solicit = None;
                    v6.stats.next_hop_learned += 1;
                    tracing::info!(next_hop = %ip.src_addr(), mac = %MacAddr(h.src), "IPv6 next hop resolved");
                    let mut next = (*self.fwd).clone();
                    next.ipv6.next_hop_mac = Some(MacAddr(h.src));
                    // In a connected prefix too, it is a known host there.
                    next.routes6
                        .set_neighbor(ip.src_addr(), Some(MacAddr(h.src)));
                    self.publish(next);
                }
                self.ipv6_neighbor_heard(now, ip.src_addr(), MacAddr(h.src));
                if let Some(v6) = self.ipv6.as_mut() {
                    v6.core.handle_packet(
                        now,
                        Peer::Ipoe(Subscriber::new(line_of(&h), h.src)),
                        packet,
                    );
                }
            }
        }
        self.drain_ipv6(now);
    }

    /// A Router Solicitation from a subscriber the access router does not advertise to:
    /// its session (IPv4 first) gets RAs, or it is logged in by MAC (IPv6 first).
    fn ipv6_solicited(&mut self, now: Instant, sub: Subscriber) {
        let mac = MacAddr(sub.mac);
        if let Some((id, spec, worker)) = self.ipoe_session_of(sub) {
            let attached = self
                .ipv6
                .as_ref()
                .is_some_and(|v| v.sessions.contains_key(&id));
            if !attached {
                self.ipv6_session_opened(now, &spec, worker);
            } else {
                self.ipv6_mac_known(now, id, mac);
            }
            return;
        }
        self.ipv6_login_by_mac(now, sub);
    }

    /// The IPoE session of `sub` (its line and MAC), its spec and worker.
    pub(super) fn ipoe_session_of(&self, sub: Subscriber) -> Option<(SessionId, SessionSpec, u16)> {
        let key = vlan_key(sub.line);
        let mac = MacAddr(sub.mac);
        self.sessions
            .all()
            .find(|(_, o)| {
                o.spec.mac == Some(mac)
                    && o.spec.access.encap == Encap::Ipoe
                    && o.spec.access.vlans.key() == key
            })
            .map(|(id, o)| (*id, o.spec, o.worker))
    }

    /// An IPv6-first subscriber (a Router Solicitation or a DHCPv6 SOLICIT from a MAC
    /// without a session): logged in by MAC, at most once per [`LOGIN_RETRY`].
    pub(super) fn ipv6_login_by_mac(&mut self, now: Instant, sub: Subscriber) {
        let mac = MacAddr(sub.mac);
        let Some(v6) = self.ipv6.as_mut() else {
            return;
        };
        if !v6.s.login_on_rs
            || v6
                .logins
                .get(&sub.mac)
                .is_some_and(|t| now.since(*t) < LOGIN_RETRY)
        {
            return;
        }
        if self.dhcp_logging_in(&sub) {
            // Its DHCPv4 login (DISCOVER first) makes the session: one for both families.
            // A SOLICIT waits for it; an RS got its generic RA, the session's RAs follow.
            return;
        }
        let Some(v6) = self.ipv6.as_mut() else {
            return;
        };
        if v6.logins.len() >= 4096 {
            v6.logins.retain(|_, t| now.since(*t) < LOGIN_RETRY);
        }
        v6.logins.insert(sub.mac, now);
        v6.stats.logins += 1;
        let outer_tpid = v6.tpids.get(&sub.line).copied();
        let req = LoginRequest {
            mac: Some(mac),
            first_packet: true,
            // On a VLAN line, the session is installed on it.
            access: self.ipoe_line(sub.line, outer_tpid),
            ..LoginRequest::default()
        };
        if let Err(e) = self.login(now, req) {
            tracing::debug!(%mac, error = %e, "IPv6-first login not started");
        }
    }

    /// A session was installed: an IPoE one gets a /64 (and RAs once its MAC is known);
    /// a PPP one whose IPv6CP is open already (its link's handle in
    /// `ppp_ipv6_installing`) its /64 and RAs over the link.
    pub(super) fn ipv6_session_opened(&mut self, now: Instant, spec: &SessionSpec, worker: u16) {
        if spec.access.encap != Encap::Ipoe {
            if let Some(h) = self.ppp_ipv6_installing.take() {
                self.ipv6_ppp_opened(now, spec.id, worker, spec.access.vlans.key(), h);
            }
            return;
        }
        // A restored DHCPv6 binding's /64: the client holds addresses in it.
        let restored = spec.mac.and_then(|mac| {
            let sub = Subscriber::new(line_of_key(spec.access.vlans.key()), mac.0);
            self.dhcpv6_restored_prefix(&sub)
        });
        // DHCPv6 relay mode: the /64 is the server's (its IA_NA address's), and a
        // session without a binding has no IPv6 until one comes.
        if self.dhcpv6_relay() && !self.dhcpv6_relay_prefix_usable(spec.id, restored, worker) {
            return;
        }
        if !self.ipv6_attach(spec.id, spec.access.vlans.key(), worker, restored) {
            return;
        }
        if let Some(mac) = spec.mac {
            self.ipv6_mac_known(now, spec.id, mac);
        }
    }

    /// A PPP session's IPv6CP opened: the session (`id`, on `worker`, its line's
    /// `vlans`) gets a /64 like an IPoE one, and RAs over its PPP link `ppp` (the
    /// caller's handle) from now on, the first at once.
    pub(super) fn ipv6_ppp_opened(
        &mut self,
        now: Instant,
        id: SessionId,
        worker: u16,
        vlans: VlanKey,
        ppp: u64,
    ) {
        if self.ipv6.is_none() {
            return;
        }
        let attached = self
            .ipv6
            .as_ref()
            .is_some_and(|v| v.sessions.contains_key(&id));
        if !attached && !self.ipv6_attach(id, vlans, worker, None) {
            return;
        }
        let Some(v6) = self.ipv6.as_mut() else {
            return;
        };
        let Some(a) = v6.sessions.get_mut(&id) else {
            return;
        };
        a.ppp = Some(ppp);
        let prefix = Prefix::new(Ipv6Addr::from(u128::from(a.prefix) << 64), 64);
        v6.peers_ppp.insert(ppp, id);
        let advert = Advert {
            prefix,
            rdnss: Vec::new(),
        };
        v6.access.add_peer(now, Peer::Ppp(ppp), advert, &mut v6.rng);
        self.drain_ipv6(now);
    }

    /// An IPv6 packet a PPP link (`ppp`, the caller's handle) sent the gateway over
    /// PPP (RS, NS, DHCPv6: what the fast path punts).
    pub(super) fn on_ppp_ipv6(&mut self, now: Instant, ppp: u64, packet: &[u8]) {
        let Some(v6) = self.ipv6.as_mut() else {
            return;
        };
        v6.stats.punts += 1;
        let Ok(ip) = ip6::Packet::new_checked(packet) else {
            self.stats.punts_malformed += 1;
            return;
        };
        let upper = ip.chain().ok().and_then(|c| c.upper_layer());
        if upper.is_some_and(|(p, _)| p == next_header::UDP) {
            match v6.peers_ppp.get(&ppp).copied() {
                Some(_) if v6.dhcp.is_some() => {
                    self.on_dhcpv6(now, ppp_subscriber(ppp), packet);
                }
                _ => v6.stats.dhcpv6_ignored += 1,
            }
            return;
        }
        v6.access.handle_packet(now, Peer::Ppp(ppp), packet);
        // A PPP link's RS before its session has IPv6 got a generic RA; nothing to log
        // in (the PPP login did).
        while v6.access.poll_event().is_some() {}
        self.drain_ipv6(now);
    }

    /// Attaches a /64 to session `id` (on `worker`, its line's `vlans`): its
    /// `restored` DHCPv6 binding's /64, its Framed-IPv6-Prefix or one from the pool.
    /// False when none is left.
    fn ipv6_attach(
        &mut self,
        id: SessionId,
        vlans: VlanKey,
        worker: u16,
        restored: Option<u64>,
    ) -> bool {
        let Some(v6) = self.ipv6.as_mut() else {
            return false;
        };
        if v6.sessions.contains_key(&id) {
            return false;
        }
        // A restored DHCPv6 binding's /64 (claimed at the restore already), else
        // Framed-IPv6-Prefix, when a /64 the session's worker is steered (and not
        // handed out from the pool already); else one from the pool.
        let restored = restored.filter(|hi| {
            let usable =
                tollgate_dataplane::steer::prefix_worker(*hi, v6.pool.workers as u16) == worker;
            if !usable {
                tracing::warn!(
                    session = id,
                    "a restored DHCPv6 binding's /64 is another worker's: one from the pool instead"
                );
                v6.pool.release(*hi);
            }
            usable
        });
        let framed = v6
            .aaa
            .get(&id)
            .filter(|_| restored.is_none())
            .and_then(|a| a.framed_prefix)
            .and_then(|p| {
                let hi = (u128::from(p.addr()) >> 64) as u64;
                let usable = p.len() == 64
                    && tollgate_dataplane::steer::prefix_worker(hi, v6.pool.workers as u16)
                        == worker
                    && v6.pool.claim(hi);
                if !usable {
                    tracing::warn!(session = id, prefix = %p, "Framed-IPv6-Prefix not usable (not a /64, another worker's, or in use): one from the pool instead");
                }
                usable.then_some(hi)
            });
        let Some(prefix) = restored.or(framed).or_else(|| v6.pool.allocate(worker)) else {
            if v6.pool.slots.is_none() {
                v6.stats.no_pool += 1;
                tracing::warn!(
                    session = id,
                    "no [ipv6] pool (DHCPv6 relay mode): the session has IPv4 only"
                );
                return false;
            }
            v6.stats.pool_exhausted += 1;
            tracing::warn!(
                session = id,
                "the IPv6 pool is exhausted: the session has IPv4 only"
            );
            return false;
        };
        v6.stats.prefixes_attached += 1;
        v6.sessions.insert(
            id,
            Attached {
                prefix,
                peer: None,
                vlans,
                ppp: None,
            },
        );
        self.out.push_back(Output::Command(
            Target::Worker(worker),
            Command::SessionPrefix6 {
                id,
                prefix: Some(prefix),
            },
        ));
        true
    }

    /// Session `id`'s MAC is known: its RAs start.
    pub(super) fn ipv6_mac_known(&mut self, now: Instant, id: SessionId, mac: MacAddr) {
        let Some(v6) = self.ipv6.as_mut() else {
            return;
        };
        let Some(a) = v6.sessions.get_mut(&id) else {
            return;
        };
        let sub = Subscriber::new(line_of_key(a.vlans), mac.0);
        if a.peer == Some(sub) {
            return;
        }
        if let Some(old) = a.peer.replace(sub) {
            v6.peers.remove(&old);
            v6.access.remove_peer(Peer::Ipoe(old));
        }
        v6.peers.insert(sub, id);
        let prefix = Prefix::new(Ipv6Addr::from(u128::from(a.prefix) << 64), 64);
        let advert = Advert {
            prefix,
            rdnss: Vec::new(),
        };
        v6.access
            .add_peer(now, Peer::Ipoe(sub), advert, &mut v6.rng);
        self.drain_ipv6(now);
        self.dhcpv6_session_ready(now, id, sub);
    }

    /// Session `id` (on `worker`) loses its IPv6 half and keeps its IPv4 (DHCPv6 relay
    /// mode: its binding ended, or the server gave it another /64): the /64 is taken
    /// from it in the fast path, and its subscriber gets a final RA.
    pub(super) fn ipv6_detach(&mut self, now: Instant, id: SessionId, worker: u16) {
        if !self
            .ipv6
            .as_ref()
            .is_some_and(|v| v.sessions.contains_key(&id))
        {
            return;
        }
        self.out.push_back(Output::Command(
            Target::Worker(worker),
            Command::SessionPrefix6 { id, prefix: None },
        ));
        self.ipv6_session_closed(now, id);
    }

    /// Relay mode: whether `prefix`, the /64 of a session's binding, can be the session's
    /// (it has one, and the fast path steers it to the session's `worker`).
    fn dhcpv6_relay_prefix_usable(
        &mut self,
        id: SessionId,
        prefix: Option<u64>,
        worker: u16,
    ) -> bool {
        let Some(hi) = prefix else {
            return false;
        };
        let Some(v6) = self.ipv6.as_mut() else {
            return false;
        };
        if tollgate_dataplane::steer::prefix_worker(hi, v6.pool_workers()) == worker {
            return true;
        }
        tracing::warn!(
            session = id,
            worker,
            "the /64 of the DHCPv6 server's IA_NA address is steered to another worker (IPv6 is steered by the /56): the session has no IPv6"
        );
        if let Some(d) = v6.dhcp.as_mut() {
            d.stats.relay_prefix_misplaced += 1;
        }
        false
    }

    /// Session `id` ended (or was never installed): its /64 goes back to the pool, and
    /// its subscriber gets a final RA.
    pub(super) fn ipv6_session_closed(&mut self, now: Instant, id: SessionId) {
        let Some(v6) = self.ipv6.as_mut() else {
            return;
        };
        v6.aaa.remove(&id);
        let Some(a) = v6.sessions.remove(&id) else {
            return;
        };
        let ppp_own = a.ppp.filter(|h| v6.peers_ppp.get(h) == Some(&id));
        if let Some(sub) = a.peer.or_else(|| ppp_own.map(ppp_subscriber)) {
            self.dhcpv6_session_closed(now, sub);
        }
        let Some(v6) = self.ipv6.as_mut() else {
            return;
        };
        v6.pool.release(a.prefix);
        v6.stats.prefixes_released += 1;
        if let Some(sub) = a.peer {
            v6.peers.remove(&sub);
            v6.access.remove_peer(Peer::Ipoe(sub));
            v6.logins.remove(&sub.mac);
        }
        // A PPPoE session id may already be another session's link: only its own goes.
        if let Some(h) = a.ppp
            && v6.peers_ppp.get(&h) == Some(&id)
        {
            v6.peers_ppp.remove(&h);
            v6.access.remove_peer(Peer::Ppp(h));
        }
        self.drain_ipv6(now);
    }

    /// The IPv6 timers due at `now`: periodic RAs, NS for the next hop.
    pub(super) fn ipv6_tick(&mut self, now: Instant) {
        self.dhcpv6_tick(now);
        let Some(v6) = self.ipv6.as_mut() else {
            return;
        };
        v6.access.handle_timeout(now, &mut v6.rng);
        let mut targets = Vec::new();
        if let (Some(t), Some(target)) = (v6.next_solicit, v6.s.next_hop)
            && t <= now
        {
            v6.next_solicit = Some(now + SOLICIT_EVERY);
            v6.stats.next_hop_solicits += 1;
            targets.push(Solicit {
                target,
                unicast: None,
            });
        }
        let due = v6.neighbors.due(now);
        targets.extend(due.solicit);
        // A route through the default next hop: one NS for both.
        targets.sort_unstable();
        targets.dedup_by_key(|s| s.target);
        for s in targets {
            self.solicit6(s);
        }
        self.neighbors6_lost(&due.lost);
        self.drain_ipv6(now);
    }

    /// Neighbours that did not answer their probes: their MACs leave the route table
    /// (a worker then asks for a connected host again; a route's next hop is solicited
    /// again).
    fn neighbors6_lost(&mut self, lost: &[Ipv6Addr]) {
        if lost.is_empty() {
            return;
        }
        let mut next = (*self.fwd).clone();
        let mut changed = false;
        for ip in lost {
            tracing::info!(neighbor = %ip, "IPv6 neighbour lost: no answer to its probes");
            changed |= next.routes6.set_neighbor(*ip, None);
        }
        if changed {
            self.publish(next);
        }
    }

    /// A Neighbor Solicitation for `s.target` out of the core side, from
    /// `core_address` (else the core link-local address): to its solicited-node group,
    /// or a probe unicast to the target at its learnt MAC.
    fn solicit6(&mut self, s: Solicit) {
        let Some(v6) = self.ipv6.as_ref() else {
            return;
        };
        let target = s.target;
        let mac = self.fwd.side(Side::Core).mac;
        let src = v6.s.core_address.unwrap_or_else(|| link_local(mac));
        let (dst, dst_mac) = match s.unicast {
            Some(m) => (target, m.0),
            None => {
                let g = ip6::solicited_node(target);
                (g, ip6::multicast_mac(g))
            }
        };
        let mut b = Builder::neighbor_solicit(target);
        b.source_link_layer(mac.0);
        let icmp = b.finish(src, dst);
        let packet = ip6::packet(src, dst, next_header::ICMPV6, 255, &icmp);
        let frame = crate::ipoe::frame(
            Line::untagged(0),
            dst_mac,
            mac.0,
            0x88a8,
            crate::wire::ethernet::ethertype::IPV6,
            &packet,
        );
        if let Some(f) = Frame::new(Side::Core, &frame) {
            self.out.push_back(Output::Inject(0, Box::new(f)));
        }
    }

    /// A worker asks for connected host `ip` ([`Event::Resolve6`]): solicited now if it
    /// is in a connected prefix and not resolved or being resolved already.
    ///
    /// [`Event::Resolve6`]: tollgate_dataplane::Event::Resolve6
    pub(super) fn ipv6_resolve(&mut self, now: Instant, ip: Ipv6Addr) {
        if !self.fwd.routes6.is_connected(ip) {
            return;
        }
        let Some(v6) = self.ipv6.as_mut() else {
            return;
        };
        if let Some(mac) = v6.neighbors.mac(ip) {
            // Learnt, but the worker's snapshot lacked it: publish it again.
            self.publish_neighbor6(ip, mac);
            return;
        }
        if v6.neighbors.ask(now, ip) {
            let due = v6.neighbors.due(now);
            for s in due.solicit {
                self.solicit6(s);
            }
            self.neighbors6_lost(&due.lost);
        }
    }

    /// An NS or NA on the core side from `ip` at `mac`: a wanted neighbour's MAC is
    /// learnt (or confirmed reachable) and published in the route table.
    fn ipv6_neighbor_heard(&mut self, now: Instant, ip: Ipv6Addr, mac: MacAddr) {
        let Some(v6) = self.ipv6.as_mut() else {
            return;
        };
        if v6.neighbors.learn(now, ip, mac) {
            tracing::info!(neighbor = %ip, %mac, "IPv6 neighbour resolved");
            self.publish_neighbor6(ip, mac);
        }
    }

    /// Publishes a snapshot whose IPv6 route table has `ip` at `mac`.
    fn publish_neighbor6(&mut self, ip: Ipv6Addr, mac: MacAddr) {
        if self.fwd.routes6.neighbor(ip) == Some(mac) {
            return;
        }
        let mut next = (*self.fwd).clone();
        next.routes6.set_neighbor(ip, Some(mac));
        self.publish(next);
    }

    /// The routers' packets as frames to inject.
    fn drain_ipv6(&mut self, now: Instant) {
        let Some(v6) = self.ipv6.as_mut() else {
            return;
        };
        let macs = [
            self.fwd.side(Side::Access).mac,
            self.fwd.side(Side::Core).mac,
        ];
        let mut over_ppp = Vec::new();
        for (side, router) in [(Side::Access, &mut v6.access), (Side::Core, &mut v6.core)] {
            while let Some(t) = router.poll_transmit() {
                let tpid = match t.to {
                    nd::Link::Ethernet { line, .. } => {
                        v6.tpids.get(&line).copied().unwrap_or(0x8100)
                    }
                    nd::Link::Ppp(h) => {
                        over_ppp.push((h, t.packet));
                        continue;
                    }
                };
                let Some(bytes) = t.frame(macs[side.idx()].0, tpid) else {
                    continue;
                };
                match Frame::new(side, &bytes) {
                    Some(f) => self.out.push_back(Output::Inject(0, Box::new(f))),
                    None => {
                        tracing::debug!(len = bytes.len(), "an IPv6 ND frame does not fit a frame")
                    }
                }
            }
        }
        for (h, packet) in over_ppp {
            self.ppp_send_ipv6(now, h, &packet);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tollgate_dataplane::steer::prefix_worker;

    /// Every /64 handed out for worker `w` is one steering gives to `w`, until the
    /// worker's share of the pool runs out; a released one comes back (after the others:
    /// the cursor goes round, so a /64 is not handed out again at once).
    #[test]
    fn prefixes_follow_their_worker() {
        for (pool, workers, share) in [
            ("2001:db8:100::/48", 3u16, 40u64),
            // 4 /56s: 2 per worker, 512 /64s each, all of them handed out.
            ("2001:db8:100::/54", 2, 512),
            ("2001:db8::/64", 1, 1),
        ] {
            let p: Prefix = pool.parse().unwrap();
            let mut pool = PrefixPool::new(Some(p), workers);
            let count = pool.slots.as_ref().unwrap().count();
            for w in 0..workers {
                let mut got = Vec::new();
                while let Some(x) = pool.allocate(w) {
                    assert_eq!(prefix_worker(x, workers), w, "{x:x}");
                    assert_eq!(x & !(count - 1), pool.base);
                    got.push(x);
                    if got.len() as u64 == share {
                        break;
                    }
                }
                assert_eq!(got.len() as u64, share, "worker {w}");
                let mut d = got.clone();
                d.sort_unstable();
                d.dedup();
                assert_eq!(d.len(), got.len(), "no /64 twice");
            }
        }
        // A /54 of 2 workers is used up exactly: 512 each, then none.
        let mut whole = PrefixPool::new(Some("2001:db8:100::/54".parse().unwrap()), 2);
        for w in 0..2 {
            assert_eq!(std::iter::from_fn(|| whole.allocate(w)).count(), 512);
        }
        // A /62 has 4 /64s in one /56: all on one worker (worker 0 here), none for the
        // other (its sessions have IPv4 only, counted as exhaustion).
        let mut small = PrefixPool::new(Some("2001:db8:1::/62".parse().unwrap()), 2);
        let slots = small.slots.as_ref().unwrap();
        assert!(!slots.serves(1) && slots.serves(0));
        assert_eq!(small.allocate(1), None);
        let a = small.allocate(0).unwrap();
        assert_eq!(std::iter::from_fn(|| small.allocate(0)).count(), 3);
        assert_eq!(small.allocate(0), None);
        small.release(a);
        assert_eq!(small.allocate(0), Some(a));
        // No pool (DHCPv6 relay mode without one): nothing handed out, any /64 (a
        // binding's) claimed, none held.
        let mut none = PrefixPool::new(None, 2);
        assert_eq!((none.allocate(0), none.allocate(1)), (None, None));
        assert!(none.claim(0x2001_0db8_0100_0001) && none.claim(0x2001_0db8_0100_0001));
        none.release(0x2001_0db8_0100_0001);
    }
}
