//! A worker's subscriber sessions (CNT-1, DISC-1 fast-path half, policing).
//!
//! Sessions live in a slab addressed by `u32` slot, found per packet by subscriber
//! address and per command by the control plane's [`SessionId`]. Everything is sized at
//! start: installing up to the configured number of sessions never allocates.
//!
//! Time-based conditions (session time, idle time) are checked two ways, both exact: a
//! packet for a session whose deadline has passed finds it closed, stamped with the
//! deadline; and a heap of deadlines closes sessions no packet touches. The heap is lazy:
//! an entry is re-checked when it comes due, since packets move idle deadlines later
//! without touching the heap.

#![deny(unsafe_code)]

mod delegated;
mod line;
mod police;
mod spec;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::Ipv4Addr;

pub use delegated::Delegated;
pub use line::{Encapsulation, MAX_ENCAP};
pub use police::{Policer, Policers};
pub use spec::{
    AccessLine, Bandwidth, ClosedSession, DisconnectCause, Encap, Limits, RateLimit, ServiceSet,
    SessionCounters, SessionId, SessionSpec, SessionUpdate, VlanKey, VlanTag, Vlans, VolumeLimit,
};

use crate::table::index::{self, HashIndex};
use crate::table::sticky::StickyTable;
use crate::time::Instant;
use crate::types::MacAddr;

/// "None" in slot links.
const NIL: u32 = u32::MAX;

/// The MTU of a PPPoE session without an MSS clamp: Ethernet's 1500 less the PPPoE
/// header and PPP protocol (RFC 2516 7).
const PPPOE_MTU: u16 = 1492;

/// "No limit" in the pre-computed limits.
const NONE: u64 = u64::MAX;

/// `Session::flags`: the slab entry is free.
const VACANT: u8 = 1;
/// `Session::flags`: the subscriber is reached over PPPoE (session id in `pppoe`).
const PPPOE: u8 = 2;
/// `Session::flags`: the subscriber is behind an L2TP session of this LNS (its id in
/// `pppoe`).
const L2TP: u8 = 4;
/// `Session::flags`: from this bit up, the TPIDs of its line's tags as
/// [`line::tpid_bits`] codes (two bits per tag, outer first), for the downlink template.
const TPIDS_SHIFT: u32 = 3;

/// A subscriber session as the fast path keeps it: 232 bytes, what every packet reads
/// first (about two cache lines), then what opening flows reads, then the record's and
/// the optional limits' fields.
#[derive(Clone, Debug)]
#[repr(C)]
pub struct Session {
    /// The subscriber's address.
    pub address: Ipv4Addr,
    /// The subscriber's MAC, given or learned.
    pub mac: Option<MacAddr>,
    flags: u8,
    /// Idle limit (ms; `u32::MAX` when none).
    idle_ms: u32,
    /// The VLANs of its access line.
    vlans: VlanKey,
    /// The PPPoE session id (when `flags` has `PPPOE`).
    pppoe: u16,
    /// ACC-5: the largest TCP MSS its SYNs may carry (0: no clamping).
    pub mss_clamp: u16,
    /// Last packet either way.
    pub last_seen: Instant,
    /// Session-time deadline (ns; `u64::MAX` when none).
    ends_at: u64,
    /// Counters.
    pub counters: SessionCounters,
    /// Services it may use ([`ServiceSet`] as two words, so the entry needs no 16-byte
    /// alignment).
    services: [u64; 2],
    /// Policers, uplink then downlink.
    pub police: Policers,
    /// Open flows.
    pub flows: u32,
    /// Flows it may have open.
    pub max_flows: u32,
    /// First flow of the session's flow list (`u32::MAX` when none; the next free slot
    /// while the entry is free).
    pub flow_head: u32,
    /// Per-service stickiness: the last service used and its server, packed as
    /// `service << 16 | server` (`u32::MAX` when none).
    last_service: u32,
    /// The control plane's id.
    pub id: SessionId,
    /// The channel.
    pub channel: u32,
    /// When it started.
    pub started: Instant,
    /// Last packet to or from the idle-checked server.
    pub last_seen_server: Instant,
    /// The server of the per-server idle limit, and the limit in ms (`u32::MAX`: none).
    idle_server: (u32, u32),
    /// Volume limits: tx bytes, rx bytes, total bytes, tx packets, rx packets.
    volume: [u64; 5],
    /// Rate check: window length (ms; 0 when none), bytes allowed per window, bytes in
    /// the current window. Windows are fixed slices of time from the session's start;
    /// the current one is the one holding the last counted packet (`last_seen`).
    rate_window_ms: u32,
    /// The user: the control core numbers users densely from 1, one per name it holds,
    /// so 32 bits hold any (a larger id would be kept as `u32::MAX`). Read by flow and
    /// session records only, so it sits with the cold fields.
    user: u32,
    rate_budget: u64,
    window_bytes: u64,
}

/// What a volume or rate check found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// Within every limit.
    Ok,
    /// This packet would break the limit: drop it and end the session for `cause`.
    End(DisconnectCause),
}

/// Direction of a packet relative to the subscriber.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    /// From the subscriber.
    Up = 0,
    /// To the subscriber.
    Down = 1,
}

impl Session {
    fn new(spec: &SessionSpec, burst_ms: u64, default_max_flows: u32) -> Session {
        let mut s = Session {
            address: spec.address,
            mac: spec.mac,
            flags: match spec.access.encap {
                Encap::Ipoe => 0,
                Encap::Pppoe { .. } => PPPOE,
                Encap::L2tp { .. } => L2TP,
            } | line::tpid_bits(&spec.access) << TPIDS_SHIFT,
            idle_ms: u32::MAX,
            vlans: spec.access.vlans.key(),
            pppoe: match spec.access.encap {
                Encap::Ipoe => 0,
                Encap::Pppoe { session } | Encap::L2tp { session } => session,
            },
            mss_clamp: spec.access.mss_clamp,
            last_seen: spec.started,
            ends_at: NONE,
            counters: SessionCounters::default(),
            services: [spec.services.0 as u64, (spec.services.0 >> 64) as u64],
            police: Policers::new(
                [spec.bandwidth.up_bps, spec.bandwidth.down_bps],
                burst_ms,
                spec.started,
            ),
            flows: 0,
            max_flows: if spec.max_flows == 0 {
                default_max_flows
            } else {
                spec.max_flows
            },
            flow_head: u32::MAX,
            last_service: u32::MAX,
            id: spec.id,
            channel: spec.channel,
            started: spec.started,
            last_seen_server: spec.started,
            idle_server: (0, u32::MAX),
            volume: [NONE; 5],
            rate_window_ms: 0,
            user: u32::try_from(spec.user).unwrap_or(u32::MAX),
            rate_budget: NONE,
            window_bytes: 0,
        };
        s.set_limits(&spec.limits);
        s
    }

    /// The PPPoE session id, for a subscriber reached over PPPoE.
    #[inline(always)]
    pub fn pppoe_session(&self) -> Option<u16> {
        (self.flags & PPPOE != 0).then_some(self.pppoe)
    }

    /// The longest IPv4 packet its line carries downlink, for a PPPoE session (None
    /// for IPoE: as long as the access port's). The entry keeps no MTU field: the
    /// control core clamps a PPPoE session's MSS to its MTU less 40 (ACC-5), so the MTU
    /// is read back from the clamp; without one, RFC 2516's 1492.
    #[inline(always)]
    pub fn line_mtu(&self) -> Option<u16> {
        (self.flags & PPPOE != 0).then(|| match self.mss_clamp {
            0 => PPPOE_MTU,
            c => c.saturating_add(40),
        })
    }

    /// The L2TP session it is reached through (LNS), if any.
    #[inline(always)]
    pub fn l2tp_session(&self) -> Option<u16> {
        (self.flags & L2TP != 0).then_some(self.pppoe)
    }

    /// The VLANs of its access line.
    #[inline(always)]
    pub fn vlans(&self) -> VlanKey {
        self.vlans
    }

    /// The header its downlink frames get after the MACs.
    #[inline(always)]
    pub fn encapsulation(&self) -> Encapsulation {
        let tpids = line::tpids_of(self.flags >> TPIDS_SHIFT);
        Encapsulation::of(self.vlans, tpids, self.pppoe_session())
    }

    /// The user (the control core's number).
    #[inline]
    pub fn user(&self) -> u64 {
        self.user as u64
    }

    /// True for an untagged IPoE session (downlink frames need no template).
    #[inline(always)]
    pub fn is_plain(&self) -> bool {
        self.flags & PPPOE == 0 && self.vlans.is_untagged()
    }

    /// Services it may use.
    #[inline(always)]
    pub fn services(&self) -> ServiceSet {
        ServiceSet(self.services[0] as u128 | (self.services[1] as u128) << 64)
    }

    /// True if it may use service `i`.
    #[inline(always)]
    pub fn allows(&self, i: u16) -> bool {
        (i as usize) < ServiceSet::MAX && self.services[i as usize >> 6] >> (i & 63) & 1 == 1
    }

    fn idle_server(&self) -> Option<(Ipv4Addr, u32)> {
        (self.idle_server.1 != u32::MAX)
            .then_some((Ipv4Addr::from(self.idle_server.0), self.idle_server.1))
    }

    /// Start of the rate window holding the last counted packet.
    #[inline]
    fn window_start(&self, window_ns: u64) -> u64 {
        let s = self.started.0;
        s + (self.last_seen.0.saturating_sub(s)) / window_ns * window_ns
    }

    fn set_limits(&mut self, l: &Limits) {
        let ms32 = |ms: u64| ms.min(u32::MAX as u64 - 1) as u32;
        self.ends_at = l.session_timeout_ms.map_or(NONE, |ms| {
            self.started.0.saturating_add(ms.saturating_mul(1_000_000))
        });
        self.idle_ms = l.idle_timeout_ms.map_or(u32::MAX, ms32);
        self.idle_server = l
            .idle_server
            .map_or((0, u32::MAX), |(ip, ms)| (u32::from(ip), ms32(ms)));
        let v = &l.volume;
        self.volume = [
            v.tx_bytes,
            v.rx_bytes,
            v.total_bytes,
            v.tx_packets,
            v.rx_packets,
        ]
        .map(|x| x.unwrap_or(NONE));
        match l.rate {
            Some(r) if r.window_ms > 0 && r.path_bps > 0 => {
                self.rate_window_ms = r.window_ms;
                // percent of path_bps for window_ms, in bytes.
                self.rate_budget = (r.path_bps as u128 * r.percent as u128 * r.window_ms as u128
                    / (8 * 100 * 1000)) as u64;
            }
            _ => {
                self.rate_window_ms = 0;
                self.rate_budget = NONE;
            }
        }
    }

    /// The earliest instant a time condition ends the session, with its cause.
    pub fn deadline(&self) -> Option<(Instant, DisconnectCause)> {
        let mut best: Option<(u64, DisconnectCause)> = None;
        let mut consider = |t: u64, c| {
            if t != NONE && best.is_none_or(|(b, _)| t < b) {
                best = Some((t, c));
            }
        };
        consider(self.ends_at, DisconnectCause::SessionTimeout);
        if self.idle_ms != u32::MAX {
            consider(
                self.last_seen.add_ms(self.idle_ms as u64).0,
                DisconnectCause::IdleTimeout,
            );
        }
        if let Some((_, ms)) = self.idle_server() {
            consider(
                self.last_seen_server.add_ms(ms as u64).0,
                DisconnectCause::ServerIdleTimeout,
            );
        }
        best.map(|(t, c)| (Instant(t), c))
    }

    /// True (with the deadline and cause) if a time condition has fallen due by `now`.
    #[inline]
    pub fn due(&self, now: Instant) -> Option<(Instant, DisconnectCause)> {
        // Every packet asks: the earliest instant alone first (an absent condition is
        // `NONE`, after any `now`), and which condition it is only when one fell due.
        let idle = match self.idle_ms {
            u32::MAX => NONE,
            ms => self.last_seen.add_ms(ms as u64).0,
        };
        let server = match self.idle_server.1 {
            u32::MAX => NONE,
            ms => self.last_seen_server.add_ms(ms as u64).0,
        };
        if self.ends_at.min(idle).min(server) > now.0 {
            return None;
        }
        self.deadline().filter(|(t, _)| *t <= now)
    }

    /// Checks a packet of `bytes` against the volume and rate limits, without counting it.
    #[inline]
    pub fn check(&self, dir: Dir, bytes: u64, now: Instant) -> Check {
        let c = &self.counters;
        let over = match dir {
            Dir::Up => c.tx_bytes + bytes > self.volume[0] || c.tx_packets + 1 > self.volume[3],
            Dir::Down => c.rx_bytes + bytes > self.volume[1] || c.rx_packets + 1 > self.volume[4],
        } || c.tx_bytes + c.rx_bytes + bytes > self.volume[2];
        if over {
            return Check::End(DisconnectCause::VolumeLimit);
        }
        if self.rate_window_ms != 0 {
            let window_ns = self.rate_window_ms as u64 * 1_000_000;
            let in_window = if now.0 >= self.window_start(window_ns) + window_ns {
                0
            } else {
                self.window_bytes
            };
            if in_window + bytes > self.rate_budget {
                return Check::End(DisconnectCause::RateExceeded);
            }
        }
        Check::Ok
    }

    /// Counts a forwarded packet of `bytes` and notes the time and the remote end.
    #[inline(always)]
    pub fn count(&mut self, dir: Dir, bytes: u64, now: Instant, remote: Ipv4Addr) {
        let c = &mut self.counters;
        match dir {
            Dir::Up => {
                c.tx_packets += 1;
                c.tx_bytes += bytes;
            }
            Dir::Down => {
                c.rx_packets += 1;
                c.rx_bytes += bytes;
            }
        }
        if self.rate_window_ms != 0 {
            let window_ns = self.rate_window_ms as u64 * 1_000_000;
            if now.0 >= self.window_start(window_ns) + window_ns {
                self.window_bytes = 0;
            }
            self.window_bytes += bytes;
        }
        self.last_seen = now;
        if self.idle_server.1 != u32::MAX && self.idle_server.0 == u32::from(remote) {
            self.last_seen_server = now;
        }
    }

    /// The service used last and its server (per-service stickiness).
    #[inline]
    pub fn last_service(&self) -> Option<(u16, u16)> {
        (self.last_service != u32::MAX)
            .then_some(((self.last_service >> 16) as u16, self.last_service as u16))
    }

    /// Notes the service used last and its server.
    #[inline]
    pub fn set_last_service(&mut self, service: u16, server: u16) {
        self.last_service = (service as u32) << 16 | server as u32;
    }

    /// Notes an authorised packet to `service`: the per-service choice of any other
    /// service is forgotten, so that service chooses again when next used (NAT-3: sticky until
    /// the subscriber uses another service, of whatever session type).
    #[inline(always)]
    pub fn used_service(&mut self, service: u16) {
        // "None" (`u32::MAX`) reads as service 0xffff, which is never one: it stays.
        let keep = (self.last_service >> 16) as u16 == service;
        self.last_service = if keep { self.last_service } else { u32::MAX };
    }

    /// Applies a live change.
    pub fn update(&mut self, u: &SessionUpdate, burst_ms: u64) {
        if let Some(l) = &u.limits {
            self.set_limits(l);
        }
        if let Some(b) = u.bandwidth {
            self.police.set_rate(0, b.up_bps, burst_ms);
            self.police.set_rate(1, b.down_bps, burst_ms);
        }
        if let Some(s) = u.services {
            self.services = [s.0 as u64, (s.0 >> 64) as u64];
        }
        if let Some(l) = u.l2tp_session
            && self.flags & L2TP != 0
        {
            self.pppoe = l;
        }
    }

    /// The record sent when it ends.
    pub fn closed(&self, stopped: Instant, cause: DisconnectCause) -> ClosedSession {
        ClosedSession {
            id: self.id,
            user: self.user as u64,
            channel: self.channel,
            address: self.address,
            started: self.started,
            stopped,
            cause,
            counters: self.counters,
        }
    }
}

/// Why a session could not be installed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InstallError {
    /// The table is full.
    Full,
    /// Another session has the id, the address, or (PPPoE) the line, MAC and session id.
    Duplicate,
    /// A PPPoE session without the client's MAC.
    MacRequired,
}

/// A deadline in the heap: (instant, slot), 12 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Deadline {
    /// The instant, high word first so that the array orders like the `u64`.
    at: [u32; 2],
    slot: u32,
}

impl Deadline {
    fn new(t: u64, slot: u32) -> Deadline {
        Deadline {
            at: [(t >> 32) as u32, t as u32],
            slot,
        }
    }

    fn t(&self) -> u64 {
        (self.at[0] as u64) << 32 | self.at[1] as u64
    }
}

/// PPPoE sessions' share of the table, sized for the table's capacity.
#[derive(Debug)]
struct Lines {
    /// PPPoE sessions by [`line::pppoe_key`].
    by_pppoe: HashIndex,
}

impl Lines {
    fn new(capacity: usize) -> Lines {
        Lines {
            by_pppoe: HashIndex::new(capacity),
        }
    }

    fn bytes_for(capacity: usize) -> usize {
        HashIndex::bytes_for(capacity)
    }

    /// The index hash of a PPPoE session.
    fn pppoe_hash(&self, s: &Session) -> Option<index::Hash> {
        let (session, mac) = (s.pppoe_session()?, s.mac?);
        Some(self.by_pppoe.hash(line::pppoe_key(s.vlans, mac, session)))
    }
}

/// IPv6's share of the table (V6-1): each session's /64 (its upper 64 bits; 0 for none,
/// as ::/64 is never a subscriber's) and the index by /64, made at the first /64 attached
/// so that a gateway without IPv6 pays nothing for it. Kept beside the slab rather than in
/// the entry, which stays at its size.
#[derive(Debug)]
struct Prefixes {
    by_slot: Vec<u64>,
    index: HashIndex,
    /// The IPv6 share of each session's counters (issue 16: the per-family split; the
    /// entry's counters count both families), zeroed when the session ends.
    counters: Vec<SessionCounters>,
}

impl Prefixes {
    fn new(capacity: usize) -> Prefixes {
        Prefixes {
            by_slot: vec![0; capacity],
            index: HashIndex::new(capacity),
            counters: vec![SessionCounters::default(); capacity],
        }
    }

    fn bytes_for(capacity: usize) -> usize {
        capacity * (std::mem::size_of::<u64>() + std::mem::size_of::<SessionCounters>())
            + HashIndex::bytes_for(capacity)
    }

    fn memory_bytes(&self) -> usize {
        self.by_slot.capacity() * std::mem::size_of::<u64>()
            + self.index.memory_bytes()
            + self.counters.capacity() * std::mem::size_of::<SessionCounters>()
    }

    /// Takes `slot`'s /64 off the index.
    fn clear(&mut self, slot: u32) {
        let Some(p) = self.by_slot.get_mut(slot as usize) else {
            return;
        };
        let old = std::mem::replace(p, 0);
        if old != 0 {
            let h = self.index.hash(old);
            self.index.remove(h, slot);
        }
    }
}

/// A worker's sessions.
#[derive(Debug)]
pub struct SessionTable {
    /// The slab: sized at start, free entries marked and linked through `flow_head`.
    slots: Vec<Session>,
    free_head: u32,
    by_ip: HashIndex,
    by_id: HashIndex,
    /// The PPPoE index, made at the first PPPoE install (so that a gateway without PPPoE
    /// subscribers pays nothing for it).
    lines: Option<Lines>,
    /// The IPv6 /64s, made at the first one attached.
    prefixes: Option<Prefixes>,
    /// The delegated IPv6 prefixes (IA_PD), made at the first one.
    delegated: Option<delegated::DelegatedPrefixes>,
    /// Time conditions, lazily: an entry is a lower bound of its session's deadline (or
    /// stale, for a session that has gone), re-checked when it comes due.
    deadlines: BinaryHeap<Reverse<Deadline>>,
    /// Per-login stickiness, keyed by slot: it goes with the sessions (sized with them,
    /// counted in their memory), made when the first snapshot with a `login` service
    /// arrives ([`Self::enable_sticky`]), so that a gateway without one pays nothing.
    sticky: Option<StickyTable>,
    capacity: usize,
    len: usize,
    /// Burst of a policer as milliseconds of its rate (at least 3000 bytes).
    burst_ms: u64,
    default_max_flows: u32,
}

impl SessionTable {
    /// A table for up to `capacity` sessions.
    pub fn new(capacity: usize, burst_ms: u64, default_max_flows: u32) -> SessionTable {
        SessionTable {
            slots: Vec::with_capacity(capacity),
            free_head: NIL,
            by_ip: HashIndex::new(capacity),
            by_id: HashIndex::new(capacity),
            lines: None,
            prefixes: None,
            delegated: None,
            deadlines: BinaryHeap::with_capacity(capacity),
            sticky: None,
            capacity,
            len: 0,
            burst_ms,
            default_max_flows,
        }
    }

    /// Policer burst, in milliseconds of the rate.
    #[inline(always)]
    pub fn burst_ms(&self) -> u64 {
        self.burst_ms
    }

    #[inline(always)]
    fn ip_hash(&self, ip: Ipv4Addr) -> index::Hash {
        self.by_ip.hash(u32::from(ip) as u64)
    }

    /// Installs a session.
    pub fn install(&mut self, spec: &SessionSpec) -> Result<u32, InstallError> {
        if self.slot_by_id(spec.id).is_some() || self.slot_by_ip(spec.address).is_some() {
            return Err(InstallError::Duplicate);
        }
        if let Encap::Pppoe { session } = spec.access.encap {
            let Some(mac) = spec.mac else {
                return Err(InstallError::MacRequired);
            };
            if self
                .slot_by_pppoe(spec.access.vlans.key(), mac, session)
                .is_some()
            {
                return Err(InstallError::Duplicate);
            }
        }
        let s = Session::new(spec, self.burst_ms, self.default_max_flows);
        let pppoe = s.pppoe_session().is_some();
        let slot = if self.free_head != NIL {
            let i = self.free_head;
            self.free_head = self.slots[i as usize].flow_head;
            self.slots[i as usize] = s;
            i
        } else if self.slots.len() < self.capacity {
            self.slots.push(s);
            (self.slots.len() - 1) as u32
        } else {
            return Err(InstallError::Full);
        };
        if pppoe && self.lines.is_none() {
            // Once, on a command: the first PPPoE session.
            self.lines = Some(Lines::new(self.capacity));
        }
        let s = &self.slots[slot as usize];
        let deadline = s.deadline();
        let (hi, hd) = (self.ip_hash(s.address), self.by_id.hash(s.id as u64));
        let hp = self.lines.as_ref().and_then(|l| l.pppoe_hash(s));
        // Cannot fail: the indexes have room for the table's capacity.
        let _ = self.by_ip.insert(hi, slot);
        let _ = self.by_id.insert(hd, slot);
        if let (Some(h), Some(l)) = (hp, self.lines.as_mut()) {
            let _ = l.by_pppoe.insert(h, slot);
        }
        self.len += 1;
        if let Some((t, _)) = deadline {
            self.arm(t.0, slot);
        }
        Ok(slot)
    }

    /// Adds a heap entry. The heap is sized for one entry per session; when stale
    /// entries have filled it, they are dropped first (and only then may it grow, on a
    /// control command, never on a packet).
    fn arm(&mut self, t: u64, slot: u32) {
        if self.deadlines.len() == self.deadlines.capacity() {
            let mut v = std::mem::take(&mut self.deadlines).into_vec();
            let slots = &self.slots;
            // Entries of `slot` itself go too: the one pushed below is exact.
            v.retain(|Reverse(d)| {
                d.slot != slot
                    && slots
                        .get(d.slot as usize)
                        .is_some_and(|s| s.flags & VACANT == 0)
            });
            // One entry per slot, the earliest: still a lower bound of its deadline.
            v.sort_unstable_by_key(|Reverse(d)| (d.slot, d.at));
            v.dedup_by_key(|Reverse(d)| d.slot);
            self.deadlines = BinaryHeap::from(v);
        }
        self.deadlines.push(Reverse(Deadline::new(t, slot)));
    }

    /// Removes a session and returns it.
    pub fn remove(&mut self, slot: u32) -> Option<Session> {
        let s = self.get(slot)?.clone();
        let (hi, hd) = (self.ip_hash(s.address), self.by_id.hash(s.id as u64));
        self.by_ip.remove(hi, slot);
        self.by_id.remove(hd, slot);
        if let Some(l) = self.lines.as_mut()
            && let Some(h) = l.pppoe_hash(&s)
        {
            l.by_pppoe.remove(h, slot);
        }
        if let Some(p) = self.prefixes.as_mut() {
            p.clear(slot);
            if let Some(c) = p.counters.get_mut(slot as usize) {
                *c = SessionCounters::default();
            }
        }
        if let Some(d) = self.delegated.as_mut() {
            d.clear(slot);
        }
        let e = &mut self.slots[slot as usize];
        e.flags |= VACANT;
        e.flow_head = self.free_head;
        self.free_head = slot;
        self.len -= 1;
        Some(s)
    }

    /// The slot of the PPPoE session `session` of the client `mac` on the line tagged
    /// `vlans`.
    #[inline]
    pub fn slot_by_pppoe(&self, vlans: VlanKey, mac: MacAddr, session: u16) -> Option<u32> {
        let by_pppoe = &self.lines.as_ref()?.by_pppoe;
        let h = by_pppoe.hash(line::pppoe_key(vlans, mac, session));
        by_pppoe.find(h, |slot| {
            self.get(slot).is_some_and(|s| {
                s.pppoe_session() == Some(session) && s.vlans == vlans && s.mac == Some(mac)
            })
        })
    }

    /// [`Self::slot_by_pppoe`], trying `guess` (the look ahead's candidate by address,
    /// `NIL` for none) first: a right guess saves the index's bucket, a cache miss with
    /// many sessions.
    #[inline(always)]
    pub fn slot_by_pppoe_guessed(
        &self,
        vlans: VlanKey,
        mac: MacAddr,
        session: u16,
        guess: u32,
    ) -> Option<u32> {
        if self.get(guess).is_some_and(|s| {
            s.pppoe_session() == Some(session) && s.vlans == vlans && s.mac == Some(mac)
        }) {
            return Some(guess);
        }
        self.slot_by_pppoe(vlans, mac, session)
    }

    /// The downlink header template of the session in `slot`.
    #[inline(always)]
    pub fn encapsulation(&self, slot: u32) -> Option<Encapsulation> {
        self.get(slot).map(Session::encapsulation)
    }

    /// The slot of the session whose subscriber address is `ip`.
    #[inline]
    pub fn slot_by_ip(&self, ip: Ipv4Addr) -> Option<u32> {
        if self.len == 0 {
            return None;
        }
        self.by_ip.find(self.ip_hash(ip), |slot| {
            self.slots
                .get(slot as usize)
                .is_some_and(|s| s.address == ip)
        })
    }

    /// [`Self::slot_by_ip`], trying `guess` (a look ahead's candidate, `NIL` for none)
    /// first: a right guess saves the hash and the bucket scan.
    #[inline(always)]
    pub fn slot_by_ip_guessed(&self, ip: Ipv4Addr, guess: u32) -> Option<u32> {
        if self.get(guess).is_some_and(|s| s.address == ip) {
            return Some(guess);
        }
        self.slot_by_ip(ip)
    }

    /// Prefetches the index bucket of `ip` (first stage of a burst).
    #[inline]
    pub fn prefetch_ip(&self, ip: Ipv4Addr) {
        self.by_ip.prefetch(self.ip_hash(ip));
    }

    /// Prefetches the likely session of `ip`, whose bucket was prefetched, and returns
    /// its slot (`NIL` if none is likely).
    #[inline]
    pub fn prefetch_session_of(&self, ip: Ipv4Addr) -> u32 {
        match self.by_ip.candidate(self.ip_hash(ip)) {
            Some(slot) => {
                self.prefetch(slot);
                slot
            }
            None => NIL,
        }
    }

    /// Prefetches the session in `slot`.
    #[inline]
    pub fn prefetch(&self, slot: u32) {
        if let Some(s) = self.slots.get(slot as usize) {
            crate::cpu::read_all(s);
        }
    }

    /// Attaches the IPv6 /64 `prefix` (its upper 64 bits) to the session in `slot`, or
    /// with `None` takes its /64 away (V6-1: one session for both families; a PPPoE
    /// session's after IPv6CP). Refused when another session holds the /64: false then,
    /// and nothing changed.
    pub fn set_prefix6(&mut self, slot: u32, prefix: Option<u64>) -> bool {
        if self.get(slot).is_none() {
            return false;
        }
        if let Some(p) = prefix
            && self.slot_by_prefix6(p).is_some_and(|other| other != slot)
        {
            return false;
        }
        let capacity = self.capacity;
        // Once, on a command: the first /64.
        let table = self.prefixes.get_or_insert_with(|| Prefixes::new(capacity));
        table.clear(slot);
        if let Some(p) = prefix.filter(|p| *p != 0) {
            let h = table.index.hash(p);
            // Cannot fail: the index has room for the table's capacity.
            let _ = table.index.insert(h, slot);
            if let Some(e) = table.by_slot.get_mut(slot as usize) {
                *e = p;
            }
        }
        true
    }

    /// The IPv6 /64 (upper 64 bits) of the session in `slot`.
    #[inline]
    pub fn prefix6(&self, slot: u32) -> Option<u64> {
        let p = *self.prefixes.as_ref()?.by_slot.get(slot as usize)?;
        (p != 0).then_some(p)
    }

    /// Starts loading the index bucket of IPv6 /64 `prefix` (look-ahead).
    #[inline]
    pub fn prefetch_prefix6(&self, prefix: u64) {
        if let Some(t) = self.prefixes.as_ref() {
            t.index.prefetch(t.index.hash(prefix));
        }
    }

    /// Prefetches the likely session of /64 `prefix`, whose bucket was prefetched, and
    /// the /64 it holds (the lookup confirms against it).
    #[inline]
    pub fn prefetch_session_of_prefix6(&self, prefix: u64) {
        let Some(t) = self.prefixes.as_ref() else {
            return;
        };
        if let Some(slot) = t.index.candidate(t.index.hash(prefix)) {
            self.prefetch(slot);
            if let Some(p) = t.by_slot.get(slot as usize) {
                crate::cpu::read_all(p);
            }
        }
    }

    /// The slot of the session whose IPv6 /64 is `prefix` (upper 64 bits).
    #[inline]
    pub fn slot_by_prefix6(&self, prefix: u64) -> Option<u32> {
        let t = self.prefixes.as_ref()?;
        t.index.find(t.index.hash(prefix), |slot| {
            t.by_slot.get(slot as usize) == Some(&prefix)
        })
    }

    /// Counts an IPv6 packet of `bytes` in the IPv6 share of the session in `slot`'s
    /// counters (which [`Session::count`] counts too).
    #[inline(always)]
    pub fn count6(&mut self, slot: u32, dir: Dir, bytes: u64) {
        let Some(c) = self
            .prefixes
            .as_mut()
            .and_then(|p| p.counters.get_mut(slot as usize))
        else {
            return;
        };
        match dir {
            Dir::Up => {
                c.tx_packets += 1;
                c.tx_bytes += bytes;
            }
            Dir::Down => {
                c.rx_packets += 1;
                c.rx_bytes += bytes;
            }
        }
    }

    /// The IPv6 share of the counters of the session in `slot`: `None` while it has no
    /// /64 and has carried no IPv6.
    pub fn counters6(&self, slot: u32) -> Option<SessionCounters> {
        let p = self.prefixes.as_ref()?;
        let c = *p.counters.get(slot as usize)?;
        (p.by_slot.get(slot as usize).is_some_and(|x| *x != 0) || c != SessionCounters::default())
            .then_some(c)
    }

    /// Delegates the IPv6 prefix `d` (upper 64 bits, length 32 to 64: DHCPv6 IA_PD) to
    /// the session in `slot`, or with `None` takes its prefix away: packets from inside
    /// it are the session's uplink, packets to it its downlink. Refused (false, nothing
    /// changed) for a length out of range or a prefix overlapping another session's.
    pub fn set_delegated6(&mut self, slot: u32, d: Option<Delegated>) -> bool {
        if self.get(slot).is_none() {
            return false;
        }
        let Some(d) = d else {
            if let Some(t) = self.delegated.as_mut() {
                t.clear(slot);
            }
            return true;
        };
        let Some(d) = delegated::normalise(d) else {
            return false;
        };
        let capacity = self.capacity;
        let t = self
            .delegated
            .get_or_insert_with(|| delegated::DelegatedPrefixes::new(capacity));
        if t.overlaps(slot, d) {
            return false;
        }
        t.set(slot, d)
    }

    /// The delegated IPv6 prefix of the session in `slot`.
    pub fn delegated6(&self, slot: u32) -> Option<Delegated> {
        self.delegated.as_ref()?.of(slot)
    }

    /// The slot of the session whose /64 is `prefix` (upper 64 bits), or whose delegated
    /// prefix holds it.
    #[inline]
    pub fn slot_by_prefix6_or_delegated(&self, prefix: u64) -> Option<u32> {
        self.slot_by_prefix6(prefix)
            .or_else(|| self.delegated.as_ref()?.find(prefix))
    }

    /// Bytes a table of `capacity` sessions allocates more, once, at its first IPv6 /64.
    pub fn ipv6_bytes_for(capacity: usize) -> usize {
        Prefixes::bytes_for(capacity)
    }

    /// The slot of session `id`.
    pub fn slot_by_id(&self, id: SessionId) -> Option<u32> {
        self.by_id.find(self.by_id.hash(id as u64), |slot| {
            self.get(slot).is_some_and(|s| s.id == id)
        })
    }

    /// The session in `slot`.
    #[inline(always)]
    pub fn get(&self, slot: u32) -> Option<&Session> {
        self.slots
            .get(slot as usize)
            .filter(|s| s.flags & VACANT == 0)
    }

    /// The session in `slot`, writable.
    #[inline(always)]
    pub fn get_mut(&mut self, slot: u32) -> Option<&mut Session> {
        self.slots
            .get_mut(slot as usize)
            .filter(|s| s.flags & VACANT == 0)
    }

    /// Applies a live change to session `id`; false if there is none.
    pub fn update(&mut self, id: SessionId, u: &SessionUpdate) -> bool {
        let Some(slot) = self.slot_by_id(id) else {
            return false;
        };
        let burst_ms = self.burst_ms;
        let Some(s) = self.get_mut(slot) else {
            return false;
        };
        s.update(u, burst_ms);
        if let Some((t, _)) = s.deadline() {
            self.arm(t.0, slot);
        }
        true
    }

    /// The next session whose time condition is due at `now`: its slot, the deadline and
    /// the cause. Re-arms entries that packets moved later. Call until `None`.
    pub fn next_due(&mut self, now: Instant) -> Option<(u32, Instant, DisconnectCause)> {
        while let Some(&Reverse(d)) = self.deadlines.peek() {
            let (t, slot) = (d.t(), d.slot);
            if t > now.0 {
                return None;
            }
            self.deadlines.pop();
            // Gone, or the slot was reused: then the entry is checked against the new
            // session, for which it is still a lower bound.
            let Some(s) = self.get(slot) else {
                continue;
            };
            match s.deadline() {
                Some((d, cause)) if d <= now => return Some((slot, d, cause)),
                Some((d, _)) if d.0 != t => self.arm(d.0, slot),
                _ => {}
            }
        }
        None
    }

    /// The earliest entry of the deadline heap (a lower bound of the next time condition).
    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.peek().map(|Reverse(d)| Instant(d.t()))
    }

    /// Sessions installed.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Slots in use, in slot order, starting at `from` (for reports that resume).
    pub fn slots_from(&self, from: u32) -> impl Iterator<Item = u32> + '_ {
        self.slots
            .iter()
            .enumerate()
            .skip(from as usize)
            .filter(|(_, s)| s.flags & VACANT == 0)
            .map(|(i, _)| i as u32)
    }

    /// Bytes of a session's slab entry.
    pub const fn bytes_per_session() -> usize {
        std::mem::size_of::<Session>()
    }

    /// Sessions the table can hold.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Bytes a table of `capacity` sessions allocates more, once, at its first PPPoE
    /// session: the PPPoE index.
    pub fn access_line_bytes_for(capacity: usize) -> usize {
        Lines::bytes_for(capacity)
    }

    /// Bytes a table of `capacity` untagged IPoE sessions allocates once full (what
    /// [`Self::memory_bytes`] then says), for sizing before anything is allocated.
    pub fn bytes_for(capacity: usize) -> usize {
        capacity
            .saturating_mul(
                std::mem::size_of::<Session>() + std::mem::size_of::<Reverse<Deadline>>(),
            )
            .saturating_add(HashIndex::bytes_for(capacity).saturating_mul(2))
    }

    /// Bytes the table has allocated: slab, the two indexes, the deadline heap, the
    /// per-login stickiness, and the access-line half once made.
    pub fn memory_bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<Session>()
            + self.by_ip.memory_bytes()
            + self.by_id.memory_bytes()
            + self.lines.as_ref().map_or(0, |l| l.by_pppoe.memory_bytes())
            + self.prefixes.as_ref().map_or(0, Prefixes::memory_bytes)
            + self
                .delegated
                .as_ref()
                .map_or(0, delegated::DelegatedPrefixes::memory_bytes)
            + self.deadlines.capacity() * std::mem::size_of::<Reverse<Deadline>>()
            + self.sticky.as_ref().map_or(0, StickyTable::memory_bytes)
    }

    /// The per-login stickiness table, once made.
    pub fn sticky(&self) -> Option<&StickyTable> {
        self.sticky.as_ref()
    }

    /// [`Self::sticky`], mutably.
    #[inline]
    pub fn sticky_mut(&mut self) -> Option<&mut StickyTable> {
        self.sticky.as_mut()
    }

    /// Makes the per-login stickiness table, once (on a snapshot with a `login`
    /// service: a control event, never a packet). It stays when such services go.
    pub fn enable_sticky(&mut self) {
        if self.sticky.is_none() {
            self.sticky = Some(StickyTable::new(self.capacity));
        }
    }

    /// Bytes a table of `capacity` sessions allocates more, once, for per-login
    /// stickiness ([`Self::enable_sticky`]).
    pub fn sticky_bytes_for(capacity: usize) -> usize {
        StickyTable::bytes_for(capacity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(id: u32, limits: Limits) -> SessionSpec {
        SessionSpec {
            id,
            user: 100 + id as u64,
            channel: id,
            address: Ipv4Addr::new(10, 10, 0, id as u8),
            mac: None,
            started: Instant(1_000_000_000),
            limits,
            bandwidth: Bandwidth::default(),
            services: ServiceSet::ALL,
            max_flows: 0,
            access: Default::default(),
        }
    }

    fn ms(n: u64) -> Instant {
        Instant(1_000_000_000 + n * 1_000_000)
    }

    #[test]
    fn install_lookup_remove() {
        let mut t = SessionTable::new(2, 20, 100);
        let a = t.install(&spec(1, Limits::default())).unwrap();
        assert_eq!(
            t.install(&spec(1, Limits::default())),
            Err(InstallError::Duplicate)
        );
        let b = t.install(&spec(2, Limits::default())).unwrap();
        assert_eq!(
            t.install(&spec(3, Limits::default())),
            Err(InstallError::Full)
        );
        assert_eq!(t.slot_by_ip(Ipv4Addr::new(10, 10, 0, 2)), Some(b));
        assert_eq!(t.remove(a).unwrap().id, 1);
        assert_eq!(t.slot_by_id(1), None);
        assert_eq!(t.install(&spec(3, Limits::default())), Ok(a), "slot reused");
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn idle_and_session_time_fall_due_exactly() {
        let mut t = SessionTable::new(4, 20, 100);
        let l = Limits {
            session_timeout_ms: Some(10_000),
            idle_timeout_ms: Some(3_000),
            ..Limits::default()
        };
        let slot = t.install(&spec(1, l)).unwrap();
        assert_eq!(t.next_due(ms(2_999)), None);
        // A packet at 2.5 s moves the idle deadline to 5.5 s.
        t.get_mut(slot)
            .unwrap()
            .count(Dir::Up, 100, ms(2_500), Ipv4Addr::new(192, 0, 2, 10));
        assert_eq!(t.next_due(ms(3_000)), None, "re-armed, not due");
        assert_eq!(t.next_due(ms(5_499)), None);
        assert_eq!(
            t.next_due(ms(5_500)),
            Some((slot, ms(5_500), DisconnectCause::IdleTimeout))
        );
        // Kept busy, the session time ends it at exactly 10 s.
        let mut t = SessionTable::new(4, 20, 100);
        let slot = t.install(&spec(1, l)).unwrap();
        for i in 1..=9 {
            t.get_mut(slot).unwrap().count(
                Dir::Down,
                1,
                ms(i * 1_000),
                Ipv4Addr::new(192, 0, 2, 10),
            );
            assert_eq!(t.next_due(ms(i * 1_000)), None);
        }
        assert_eq!(
            t.get(slot).unwrap().due(ms(10_000)),
            Some((ms(10_000), DisconnectCause::SessionTimeout))
        );
        assert_eq!(
            t.next_due(ms(10_200)),
            Some((slot, ms(10_000), DisconnectCause::SessionTimeout))
        );
    }

    #[test]
    fn volume_is_exact_at_the_boundary() {
        let l = Limits {
            volume: VolumeLimit {
                tx_bytes: Some(1_000),
                rx_packets: Some(2),
                ..VolumeLimit::default()
            },
            ..Limits::default()
        };
        let mut t = SessionTable::new(4, 20, 100);
        let slot = t.install(&spec(1, l)).unwrap();
        let s = t.get_mut(slot).unwrap();
        let remote = Ipv4Addr::new(192, 0, 2, 10);
        for _ in 0..10 {
            assert_eq!(s.check(Dir::Up, 100, ms(1)), Check::Ok);
            s.count(Dir::Up, 100, ms(1), remote);
        }
        assert_eq!(
            s.counters.tx_bytes, 1_000,
            "exactly at the limit is allowed"
        );
        assert_eq!(
            s.check(Dir::Up, 1, ms(1)),
            Check::End(DisconnectCause::VolumeLimit)
        );
        assert_eq!(s.check(Dir::Down, 1, ms(1)), Check::Ok);
        s.count(Dir::Down, 1, ms(1), remote);
        s.count(Dir::Down, 1, ms(1), remote);
        assert_eq!(
            s.check(Dir::Down, 1, ms(1)),
            Check::End(DisconnectCause::VolumeLimit)
        );
    }

    #[test]
    fn rate_ratio_over_windows() {
        // 50 % of 8 Mbit/s over 100 ms windows: 50 000 bytes per window.
        let l = Limits {
            rate: Some(RateLimit {
                percent: 50,
                path_bps: 8_000_000,
                window_ms: 100,
            }),
            ..Limits::default()
        };
        let mut t = SessionTable::new(4, 20, 100);
        let slot = t.install(&spec(1, l)).unwrap();
        let s = t.get_mut(slot).unwrap();
        let remote = Ipv4Addr::new(192, 0, 2, 10);
        for i in 0..50 {
            assert_eq!(s.check(Dir::Up, 1_000, ms(i)), Check::Ok);
            s.count(Dir::Up, 1_000, ms(i), remote);
        }
        assert_eq!(
            s.check(Dir::Up, 1, ms(99)),
            Check::End(DisconnectCause::RateExceeded)
        );
        assert_eq!(s.check(Dir::Up, 1_000, ms(100)), Check::Ok, "a new window");
        s.count(Dir::Up, 1_000, ms(250), remote);
        assert_eq!(s.check(Dir::Up, 49_000, ms(299)), Check::Ok);
        assert_eq!(
            s.check(Dir::Up, 49_001, ms(299)),
            Check::End(DisconnectCause::RateExceeded)
        );
    }

    /// The IPv6 share: made at the first /64 (a table without IPv6 pays nothing), one
    /// session per /64, none for PPPoE sessions, forgotten with the session.
    #[test]
    fn ipv6_prefixes_by_slot() {
        let mut t = SessionTable::new(4, 20, 16);
        let a = t.install(&spec(1, Limits::default())).unwrap();
        let b = t.install(&spec(2, Limits::default())).unwrap();
        assert_eq!(t.memory_bytes(), SessionTable::bytes_for(4));
        assert_eq!(t.slot_by_prefix6(0x2001_0db8_0000_0001), None);
        assert!(t.set_prefix6(a, Some(0x2001_0db8_0000_0001)));
        assert_eq!(
            t.memory_bytes(),
            SessionTable::bytes_for(4) + SessionTable::ipv6_bytes_for(4)
        );
        assert_eq!(t.slot_by_prefix6(0x2001_0db8_0000_0001), Some(a));
        assert_eq!(t.prefix6(a), Some(0x2001_0db8_0000_0001));
        // Another session may not take it; its own /64 may change.
        assert!(!t.set_prefix6(b, Some(0x2001_0db8_0000_0001)));
        assert_eq!(t.prefix6(b), None);
        assert!(t.set_prefix6(a, Some(0x2001_0db8_0000_0002)));
        assert_eq!(t.slot_by_prefix6(0x2001_0db8_0000_0001), None);
        assert_eq!(t.slot_by_prefix6(0x2001_0db8_0000_0002), Some(a));
        // PPPoE sessions get theirs after IPv6CP.
        let mut p = spec(3, Limits::default());
        p.mac = Some(MacAddr([2, 0, 0, 0, 0, 3]));
        p.access.encap = Encap::Pppoe { session: 3 };
        let c = t.install(&p).unwrap();
        assert!(t.set_prefix6(c, Some(0x2001_0db8_0000_0003)));
        assert_eq!(t.slot_by_prefix6(0x2001_0db8_0000_0003), Some(c));
        // Gone with its session, and the slot's next session starts without one.
        t.remove(a);
        assert_eq!(t.slot_by_prefix6(0x2001_0db8_0000_0002), None);
        let d = t.install(&spec(4, Limits::default())).unwrap();
        assert_eq!((d, t.prefix6(d)), (a, None));
        assert!(t.set_prefix6(d, Some(0x2001_0db8_0000_0002)));
        assert!(t.set_prefix6(d, None));
        assert_eq!(t.slot_by_prefix6(0x2001_0db8_0000_0002), None);
    }

    /// The access-line half: made at the first PPPoE install (an IPoE-only table pays
    /// nothing for it), found by line, forgotten with the session.
    #[test]
    fn pppoe_sessions_by_line() {
        let mut t = SessionTable::new(4, 20, 100);
        t.install(&spec(1, Limits::default())).unwrap();
        assert_eq!(t.memory_bytes(), SessionTable::bytes_for(4));
        let mac = MacAddr([2, 0, 0, 0, 0, 2]);
        let vlans = Vlans {
            outer: Some(VlanTag {
                tpid: 0x88a8,
                vid: 7,
            }),
            inner: None,
        };
        let mut p = spec(2, Limits::default());
        p.mac = Some(mac);
        p.access = AccessLine {
            vlans,
            encap: Encap::Pppoe { session: 9 },
            mss_clamp: 1452,
        };
        let slot = t.install(&p).unwrap();
        assert_eq!(
            t.memory_bytes(),
            SessionTable::bytes_for(4) + SessionTable::access_line_bytes_for(4)
        );
        assert_eq!(t.slot_by_pppoe(vlans.key(), mac, 9), Some(slot));
        assert_eq!(t.slot_by_pppoe(VlanKey::UNTAGGED, mac, 9), None);
        assert_eq!(t.slot_by_pppoe(vlans.key(), mac, 8), None);
        assert_eq!(
            t.encapsulation(slot).unwrap(),
            Encapsulation::new(&p.access)
        );
        assert_eq!(t.encapsulation(slot).unwrap().extra(), 4 + 8);
        assert_eq!(t.get(slot).unwrap().pppoe_session(), Some(9));
        // The slot goes to an IPoE session: the line finds nothing.
        t.remove(slot).unwrap();
        let again = t.install(&spec(3, Limits::default())).unwrap();
        assert_eq!(again, slot);
        assert_eq!(t.slot_by_pppoe(vlans.key(), mac, 9), None);
        assert!(t.get(again).unwrap().is_plain());
    }

    #[test]
    fn entry_size() {
        // IPoE's state stays within 256 bytes: 232 before access lines; the line (VLAN
        // key, PPPoE session id, MSS clamp: 8 bytes) was paid for by the user id in 32
        // bits, and its TPIDs are flag bits.
        assert_eq!(std::mem::size_of::<Session>(), 232);
    }

    #[test]
    fn stale_deadlines_do_not_grow_the_heap() {
        // Sessions come and go with long idle limits: their heap entries outlive them,
        // and are dropped when the heap would have to grow.
        let mut t = SessionTable::new(8, 20, 100);
        let l = Limits {
            idle_timeout_ms: Some(3_600_000),
            ..Limits::default()
        };
        let cap = t.deadlines.capacity();
        for n in 0..1000u32 {
            let mut sp = spec(n, l);
            sp.address = Ipv4Addr::from(0x0a0a_0000 + n);
            let slot = t.install(&sp).unwrap();
            if n % 8 != 0 {
                t.remove(slot).unwrap();
            }
            if t.len() == 8 {
                let first = t.slots_from(0).next().unwrap();
                t.remove(first).unwrap();
            }
        }
        assert_eq!(t.deadlines.capacity(), cap);
        // The survivors still time out exactly.
        let due = std::iter::from_fn(|| t.next_due(ms(3_600_000))).count();
        assert_eq!(due, t.len());
    }

    use proptest::prelude::*;

    #[derive(Clone, Debug)]
    enum Op {
        Install(u8, u8),
        Remove(u8),
    }

    proptest! {
        /// Slots, lookups by address and id, and slot reuse (last freed first) against
        /// a model of the slab.
        #[test]
        fn matches_a_slab_model(cap in 1usize..16, ops in proptest::collection::vec(
            prop_oneof![
                (0u8..24, 0u8..24).prop_map(|(i, a)| Op::Install(i, a)),
                (0u8..32).prop_map(Op::Remove),
            ],
            1..200,
        )) {
            let mut t = SessionTable::new(cap, 20, 100);
            let mut slab: Vec<Option<(u32, Ipv4Addr)>> = Vec::new();
            let mut free: Vec<u32> = Vec::new();
            for o in ops {
                match o {
                    Op::Install(id, a) => {
                        let mut sp = spec(id as u32, Limits::default());
                        sp.address = Ipv4Addr::new(10, 10, 1, a);
                        let dup = slab.iter().flatten().any(|(i, ip)| *i == sp.id || *ip == sp.address);
                        let want = if dup {
                            Err(InstallError::Duplicate)
                        } else if let Some(s) = free.pop() {
                            Ok(s)
                        } else if slab.len() < cap {
                            slab.push(None);
                            Ok(slab.len() as u32 - 1)
                        } else {
                            Err(InstallError::Full)
                        };
                        if let Ok(s) = want {
                            slab[s as usize] = Some((sp.id, sp.address));
                        }
                        prop_assert_eq!(t.install(&sp), want);
                    }
                    Op::Remove(k) => {
                        let live: Vec<u32> = t.slots_from(0).collect();
                        if live.is_empty() { continue; }
                        let slot = live[k as usize % live.len()];
                        let (id, _) = slab[slot as usize].take().unwrap();
                        free.push(slot);
                        prop_assert_eq!(t.remove(slot).map(|s| s.id), Some(id));
                        prop_assert!(t.remove(slot).is_none());
                    }
                }
                prop_assert_eq!(t.len(), slab.iter().flatten().count());
                for (slot, e) in slab.iter().enumerate() {
                    if let Some((id, ip)) = e {
                        prop_assert_eq!(t.slot_by_id(*id), Some(slot as u32));
                        prop_assert_eq!(t.slot_by_ip(*ip), Some(slot as u32));
                    }
                }
                for id in 0..24u32 {
                    if !slab.iter().flatten().any(|(i, _)| *i == id) {
                        prop_assert_eq!(t.slot_by_id(id), None);
                    }
                }
            }
        }
    }
}
