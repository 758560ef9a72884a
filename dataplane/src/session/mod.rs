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

mod police;
mod spec;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::Ipv4Addr;

use hashbrown::HashMap;

pub use police::Policer;
pub use spec::{
    Bandwidth, ClosedSession, DisconnectCause, Limits, RateLimit, ServiceSet, SessionCounters,
    SessionId, SessionSpec, SessionUpdate, VolumeLimit,
};

use crate::time::Instant;
use crate::types::MacAddr;

/// "No limit" in the pre-computed limits.
const NONE: u64 = u64::MAX;

/// A subscriber session as the fast path keeps it.
#[derive(Clone, Debug)]
pub struct Session {
    /// The control plane's id.
    pub id: SessionId,
    /// The subscriber's address.
    pub address: Ipv4Addr,
    /// The subscriber's MAC, given or learned.
    pub mac: Option<MacAddr>,
    /// The user.
    pub user: u64,
    /// The channel.
    pub channel: u32,
    /// Services it may use.
    pub services: ServiceSet,
    /// When it started.
    pub started: Instant,
    /// Last packet either way.
    pub last_seen: Instant,
    /// Last packet to or from the idle-checked server.
    pub last_seen_server: Instant,
    /// Counters.
    pub counters: SessionCounters,
    /// Session-time deadline (ns; `u64::MAX` when none).
    ends_at: u64,
    /// Idle limit (ms; `u32::MAX` when none).
    idle_ms: u32,
    /// The server of the per-server idle limit, and the limit in ms.
    idle_server: Option<(Ipv4Addr, u32)>,
    /// Volume limits: tx bytes, rx bytes, total bytes, tx packets, rx packets.
    volume: [u64; 5],
    /// Rate check: window length (ms; 0 when none), bytes allowed per window, current
    /// window start, bytes in it.
    rate_window_ms: u32,
    rate_budget: u64,
    window_start: u64,
    window_bytes: u64,
    /// Policers, uplink then downlink.
    pub police: [Policer; 2],
    /// Open flows, the limit, and the head of its list of flows.
    pub flows: u32,
    /// Flows it may have open.
    pub max_flows: u32,
    /// First flow of the session's flow list (`u32::MAX` when none).
    pub flow_head: u32,
    /// Per-service stickiness: the last service used and its server, packed as
    /// `service << 16 | server` (`u32::MAX` when none).
    last_service: u32,
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
    fn new(spec: &SessionSpec, burst_of: impl Fn(u64) -> u64, default_max_flows: u32) -> Session {
        let mut s = Session {
            id: spec.id,
            address: spec.address,
            mac: spec.mac,
            user: spec.user,
            channel: spec.channel,
            services: spec.services,
            started: spec.started,
            last_seen: spec.started,
            last_seen_server: spec.started,
            counters: SessionCounters::default(),
            ends_at: NONE,
            idle_ms: u32::MAX,
            idle_server: None,
            volume: [NONE; 5],
            rate_window_ms: 0,
            rate_budget: NONE,
            window_start: spec.started.0,
            window_bytes: 0,
            police: [
                Policer::new(
                    spec.bandwidth.up_bps,
                    burst_of(spec.bandwidth.up_bps),
                    spec.started,
                ),
                Policer::new(
                    spec.bandwidth.down_bps,
                    burst_of(spec.bandwidth.down_bps),
                    spec.started,
                ),
            ],
            flows: 0,
            max_flows: if spec.max_flows == 0 {
                default_max_flows
            } else {
                spec.max_flows
            },
            flow_head: u32::MAX,
            last_service: u32::MAX,
        };
        s.set_limits(&spec.limits);
        s
    }

    fn set_limits(&mut self, l: &Limits) {
        let ms32 = |ms: u64| ms.min(u32::MAX as u64 - 1) as u32;
        self.ends_at = l.session_timeout_ms.map_or(NONE, |ms| {
            self.started.0.saturating_add(ms.saturating_mul(1_000_000))
        });
        self.idle_ms = l.idle_timeout_ms.map_or(u32::MAX, ms32);
        self.idle_server = l.idle_server.map(|(ip, ms)| (ip, ms32(ms)));
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
        if let Some((_, ms)) = self.idle_server {
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
            let in_window = if now.0 >= self.window_start + window_ns {
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
    #[inline]
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
        self.last_seen = now;
        if self.idle_server.is_some_and(|(ip, _)| ip == remote) {
            self.last_seen_server = now;
        }
        if self.rate_window_ms != 0 {
            let window_ns = self.rate_window_ms as u64 * 1_000_000;
            if now.0 >= self.window_start + window_ns {
                // Windows are fixed slices of time from the session's start.
                let n = (now.0 - self.window_start) / window_ns;
                self.window_start += n * window_ns;
                self.window_bytes = 0;
            }
            self.window_bytes += bytes;
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

    /// Applies a live change.
    pub fn update(&mut self, u: &SessionUpdate, burst_of: impl Fn(u64) -> u64) {
        if let Some(l) = &u.limits {
            self.set_limits(l);
        }
        if let Some(b) = u.bandwidth {
            self.police[0].set_rate(b.up_bps, burst_of(b.up_bps));
            self.police[1].set_rate(b.down_bps, burst_of(b.down_bps));
        }
        if let Some(s) = u.services {
            self.services = s;
        }
    }

    /// The record sent when it ends.
    pub fn closed(&self, stopped: Instant, cause: DisconnectCause) -> ClosedSession {
        ClosedSession {
            id: self.id,
            user: self.user,
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
    /// Another session has the id or the address.
    Duplicate,
}

/// A worker's sessions.
#[derive(Debug)]
pub struct SessionTable {
    slots: Vec<Option<Session>>,
    free: Vec<u32>,
    by_ip: HashMap<Ipv4Addr, u32>,
    by_id: HashMap<SessionId, u32>,
    deadlines: BinaryHeap<Reverse<(u64, u32, SessionId)>>,
    capacity: usize,
    /// Burst of a policer as milliseconds of its rate (at least 3000 bytes).
    burst_ms: u64,
    default_max_flows: u32,
}

impl SessionTable {
    /// A table for up to `capacity` sessions.
    pub fn new(capacity: usize, burst_ms: u64, default_max_flows: u32) -> SessionTable {
        SessionTable {
            slots: Vec::with_capacity(capacity),
            free: Vec::with_capacity(capacity),
            by_ip: HashMap::with_capacity(capacity * 2),
            by_id: HashMap::with_capacity(capacity * 2),
            deadlines: BinaryHeap::with_capacity(capacity * 2),
            capacity,
            burst_ms,
            default_max_flows,
        }
    }

    fn burst_of(burst_ms: u64) -> impl Fn(u64) -> u64 {
        move |bps| (bps / 8 * burst_ms / 1000).max(3000)
    }

    /// Installs a session.
    pub fn install(&mut self, spec: &SessionSpec) -> Result<u32, InstallError> {
        if self.by_id.contains_key(&spec.id) || self.by_ip.contains_key(&spec.address) {
            return Err(InstallError::Duplicate);
        }
        let s = Session::new(spec, Self::burst_of(self.burst_ms), self.default_max_flows);
        let slot = match self.free.pop() {
            Some(i) => i,
            None if self.slots.len() < self.capacity => {
                self.slots.push(None);
                (self.slots.len() - 1) as u32
            }
            None => return Err(InstallError::Full),
        };
        if let Some((t, _)) = s.deadline() {
            self.deadlines.push(Reverse((t.0, slot, s.id)));
        }
        self.by_ip.insert(s.address, slot);
        self.by_id.insert(s.id, slot);
        self.slots[slot as usize] = Some(s);
        Ok(slot)
    }

    /// Removes a session and returns it.
    pub fn remove(&mut self, slot: u32) -> Option<Session> {
        let s = self.slots.get_mut(slot as usize)?.take()?;
        self.by_ip.remove(&s.address);
        self.by_id.remove(&s.id);
        self.free.push(slot);
        Some(s)
    }

    /// The slot of the session whose subscriber address is `ip`.
    #[inline]
    pub fn slot_by_ip(&self, ip: Ipv4Addr) -> Option<u32> {
        if self.by_ip.is_empty() {
            return None;
        }
        self.by_ip.get(&ip).copied()
    }

    /// The slot of session `id`.
    pub fn slot_by_id(&self, id: SessionId) -> Option<u32> {
        self.by_id.get(&id).copied()
    }

    /// The session in `slot`.
    #[inline(always)]
    pub fn get(&self, slot: u32) -> Option<&Session> {
        self.slots.get(slot as usize).and_then(Option::as_ref)
    }

    /// The session in `slot`, writable.
    #[inline(always)]
    pub fn get_mut(&mut self, slot: u32) -> Option<&mut Session> {
        self.slots.get_mut(slot as usize).and_then(Option::as_mut)
    }

    /// Applies a live change to session `id`; false if there is none.
    pub fn update(&mut self, id: SessionId, u: &SessionUpdate) -> bool {
        let Some(slot) = self.slot_by_id(id) else {
            return false;
        };
        let burst = Self::burst_of(self.burst_ms);
        let Some(s) = self.get_mut(slot) else {
            return false;
        };
        s.update(u, burst);
        if let Some((t, _)) = s.deadline() {
            let id = s.id;
            self.deadlines.push(Reverse((t.0, slot, id)));
        }
        true
    }

    /// The next session whose time condition is due at `now`: its slot, the deadline and
    /// the cause. Re-arms entries that packets moved later. Call until `None`.
    pub fn next_due(&mut self, now: Instant) -> Option<(u32, Instant, DisconnectCause)> {
        while let Some(&Reverse((t, slot, id))) = self.deadlines.peek() {
            if t > now.0 {
                return None;
            }
            self.deadlines.pop();
            let Some(s) = self.get(slot).filter(|s| s.id == id) else {
                continue; // gone, or the slot was reused
            };
            match s.deadline() {
                Some((d, cause)) if d <= now => return Some((slot, d, cause)),
                Some((d, _)) if d.0 != t => self.deadlines.push(Reverse((d.0, slot, id))),
                _ => {}
            }
        }
        None
    }

    /// The earliest entry of the deadline heap (a lower bound of the next time condition).
    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.peek().map(|Reverse((t, _, _))| Instant(*t))
    }

    /// Sessions installed.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Slots in use, in slot order, starting at `from` (for reports that resume).
    pub fn slots_from(&self, from: u32) -> impl Iterator<Item = u32> + '_ {
        self.slots
            .iter()
            .enumerate()
            .skip(from as usize)
            .filter(|(_, s)| s.is_some())
            .map(|(i, _)| i as u32)
    }

    /// Bytes of state per session (the slab entry; the two index maps add about 2 x 16
    /// bytes per session more).
    pub const fn bytes_per_session() -> usize {
        std::mem::size_of::<Option<Session>>()
    }

    /// Sessions the table can hold.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Bytes the table has allocated: slab, free list, index maps and deadline heap.
    pub fn memory_bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<Option<Session>>()
            + self.free.capacity() * 4
            + self.by_ip.allocation_size()
            + self.by_id.allocation_size()
            + self.deadlines.capacity() * std::mem::size_of::<Reverse<(u64, u32, SessionId)>>()
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
}
