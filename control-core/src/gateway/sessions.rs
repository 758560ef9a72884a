//! The control plane's registry of subscriber sessions: who is logged in, with which id,
//! on which worker. It numbers sessions and users, turns requests into the fast path's
//! [`SessionSpec`]s, and keeps the last ended sessions for operators. Session ids count
//! up and are not reused while a session with that id is open or still shown as
//! ended: `show session N` never shows another subscriber than session N's (after
//! 2^32 - 1 sessions the count wraps and skips those ids). The fast path holds the
//! counters; a session's final record arrives as an event when it ends, whoever ended
//! it.

use std::collections::{BTreeMap, VecDeque};
use std::net::Ipv4Addr;

use hashbrown::HashMap;
use tollgate_dataplane::MacAddr;
use tollgate_dataplane::session::{
    AccessLine, Bandwidth, ClosedSession, DisconnectCause, Encap, Limits, ServiceSet, SessionId,
    SessionSpec, SessionUpdate,
};
use tollgate_dataplane::time::Instant;

/// Ended sessions kept for `show session`.
pub const RECENT: usize = 256;

/// A request to open a session (static config, `ctl session add`, a login).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRequest {
    /// The user name.
    pub user: String,
    /// The subscriber's address.
    pub address: Ipv4Addr,
    /// Its MAC, when known.
    pub mac: Option<MacAddr>,
    /// Channel id (default: the session id).
    pub channel: Option<u32>,
    /// Services it may use.
    pub services: ServiceSet,
    /// Declared bandwidth.
    pub bandwidth: Bandwidth,
    /// Disconnect conditions.
    pub limits: Limits,
    /// Flows it may have open (0: the engine default).
    pub max_flows: u32,
}

/// An open session.
#[derive(Clone, Debug)]
pub struct OpenSession {
    /// The user name.
    pub user: String,
    /// What was installed.
    pub spec: SessionSpec,
    /// The worker that owns it.
    pub worker: u16,
}

/// An ended session.
#[derive(Clone, Debug)]
pub struct EndedSession {
    /// The user name.
    pub user: String,
    /// Its MAC, given or learnt.
    pub mac: Option<MacAddr>,
    /// The fast path's final record.
    pub record: ClosedSession,
}

/// What the registry counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// Sessions opened.
    pub opened: u64,
    /// Sessions ended.
    pub ended: u64,
    /// Installs the fast path refused.
    pub install_failed: u64,
}

/// The registry.
#[derive(Debug)]
pub struct Sessions {
    workers: u16,
    /// Sessions each worker's table holds (`subscribers.max_sessions`).
    capacity: usize,
    next_id: SessionId,
    /// True once the id count has wrapped: ids are then checked against the open and
    /// the recently ended sessions.
    wrapped: bool,
    open: BTreeMap<SessionId, OpenSession>,
    by_address: HashMap<Ipv4Addr, SessionId>,
    users: HashMap<String, u64>,
    recent: VecDeque<EndedSession>,
    per_worker: Vec<usize>,
    stats: SessionStats,
}

/// Why a session could not be opened or found.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// The address already has a session.
    #[error("{0} already has session {1}")]
    AddressInUse(Ipv4Addr, SessionId),
    /// No open session matches.
    #[error("no open session {0}")]
    NotFound(String),
    /// The worker that would own the session holds as many as it can.
    #[error(
        "worker {worker}'s session table is full ({capacity} sessions, subscribers.max_sessions)"
    )]
    WorkerFull {
        /// The worker that owns the address.
        worker: u16,
        /// Sessions it holds.
        capacity: usize,
    },
    /// The address cannot be a subscriber's.
    #[error(transparent)]
    Address(#[from] super::addresses::AddressError),
    /// The user name cannot be one.
    #[error("user name {0:?}: must not be empty or contain NUL")]
    UserName(String),
}

impl Sessions {
    /// An empty registry for an engine of `workers` workers, each holding up to
    /// `capacity` sessions.
    pub fn new(workers: u16, capacity: usize) -> Sessions {
        Sessions {
            workers: workers.max(1),
            capacity,
            next_id: 1,
            wrapped: false,
            open: BTreeMap::new(),
            by_address: HashMap::new(),
            users: HashMap::new(),
            recent: VecDeque::new(),
            per_worker: vec![0; workers.max(1) as usize],
            stats: SessionStats::default(),
        }
    }

    /// The worker that owns the subscriber at `ip`.
    pub fn owner(&self, ip: Ipv4Addr) -> u16 {
        tollgate_dataplane::steer::subscriber_worker(ip, self.workers)
    }

    /// Sessions open on `worker`.
    pub fn on_worker(&self, worker: u16) -> usize {
        self.per_worker.get(worker as usize).copied().unwrap_or(0)
    }

    /// The numeric id of `user` (stable for the daemon's life).
    pub fn user_id(&mut self, user: &str) -> u64 {
        let n = self.users.len() as u64 + 1;
        *self.users.entry(user.to_string()).or_insert(n)
    }

    /// Opens a session: returns the spec to install and the worker to install it on.
    pub fn open(
        &mut self,
        now: Instant,
        req: SessionRequest,
    ) -> Result<(SessionSpec, u16), SessionError> {
        self.open_with(now, req, AccessLine::default())
    }

    /// [`Self::open`] for a subscriber on an `access` line (VLANs, PPPoE).
    pub fn open_with(
        &mut self,
        now: Instant,
        req: SessionRequest,
        access: AccessLine,
    ) -> Result<(SessionSpec, u16), SessionError> {
        if let Some(id) = self.by_address.get(&req.address) {
            return Err(SessionError::AddressInUse(req.address, *id));
        }
        let worker = self.owner(req.address);
        if self.on_worker(worker) >= self.capacity {
            // The worker's count falls only when a session's final record arrives,
            // after the worker freed its entry: never below what the worker holds.
            return Err(SessionError::WorkerFull {
                worker,
                capacity: self.capacity,
            });
        }
        let id = self.take_id();
        let spec = SessionSpec {
            id,
            user: self.user_id(&req.user),
            channel: req.channel.unwrap_or(id),
            address: req.address,
            mac: req.mac,
            started: now,
            limits: req.limits,
            bandwidth: req.bandwidth,
            services: req.services,
            max_flows: req.max_flows,
            access,
        };
        self.per_worker[worker as usize] += 1;
        self.by_address.insert(req.address, id);
        self.open.insert(
            id,
            OpenSession {
                user: req.user,
                spec,
                worker,
            },
        );
        self.stats.opened += 1;
        Ok((spec, worker))
    }

    /// The next id: one no open or recently ended session has.
    fn take_id(&mut self) -> SessionId {
        loop {
            let id = self.next_id;
            self.next_id = match self.next_id.checked_add(1) {
                Some(n) if n != SessionId::MAX => n,
                _ => {
                    self.wrapped = true;
                    1
                }
            };
            if !self.wrapped || (!self.open.contains_key(&id) && self.recent(id).is_none()) {
                return id;
            }
        }
    }

    /// The open session named by `key`: its id, or its address.
    pub fn find(&self, key: &str) -> Result<SessionId, SessionError> {
        let key = key.trim();
        if let Ok(ip) = key.parse::<Ipv4Addr>() {
            return self
                .by_address
                .get(&ip)
                .copied()
                .ok_or_else(|| SessionError::NotFound(key.into()));
        }
        key.parse::<SessionId>()
            .ok()
            .filter(|id| self.open.contains_key(id))
            .ok_or_else(|| SessionError::NotFound(key.into()))
    }

    /// An open session.
    pub fn get(&self, id: SessionId) -> Option<&OpenSession> {
        self.open.get(&id)
    }

    /// Records a live change in the session's spec (what `show session` reports).
    pub fn update(&mut self, id: SessionId, u: &SessionUpdate) {
        if let Some(s) = self.open.get_mut(&id) {
            if let Some(l) = u.limits {
                s.spec.limits = l;
            }
            if let Some(b) = u.bandwidth {
                s.spec.bandwidth = b;
            }
            if let Some(v) = u.services {
                s.spec.services = v;
            }
            if let Some(l) = u.l2tp_session
                && matches!(s.spec.access.encap, Encap::L2tp { .. })
            {
                s.spec.access.encap = Encap::L2tp { session: l };
            }
        }
    }

    /// The fast path learnt the MAC of a session installed without one (its first
    /// uplink frame): `show session` reports it from now on. False if the session is
    /// gone or already had a MAC.
    pub fn learned_mac(&mut self, id: SessionId, mac: MacAddr) -> bool {
        match self.open.get_mut(&id) {
            Some(s) if s.spec.mac.is_none() => {
                s.spec.mac = Some(mac);
                true
            }
            _ => false,
        }
    }

    /// Every open session, by id.
    pub fn all(&self) -> impl Iterator<Item = (&SessionId, &OpenSession)> {
        self.open.iter()
    }

    /// Sessions open.
    pub fn len(&self) -> usize {
        self.open.len()
    }

    /// True when none is open.
    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }

    /// A session ended (its final record arrived): forget it, keep the record.
    pub fn ended(&mut self, record: ClosedSession) -> Option<EndedSession> {
        let open = self.open.remove(&record.id)?;
        self.by_address.remove(&open.spec.address);
        self.per_worker[open.worker as usize] -= 1;
        self.stats.ended += 1;
        let e = EndedSession {
            user: open.user,
            mac: open.spec.mac,
            record,
        };
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back(e.clone());
        Some(e)
    }

    /// The fast path refused to install a session: forget it.
    pub fn install_failed(&mut self, id: SessionId) -> Option<OpenSession> {
        let open = self.open.remove(&id)?;
        self.by_address.remove(&open.spec.address);
        self.per_worker[open.worker as usize] -= 1;
        self.stats.install_failed += 1;
        Some(open)
    }

    /// A recently ended session.
    pub fn recent(&self, id: SessionId) -> Option<&EndedSession> {
        self.recent.iter().rev().find(|e| e.record.id == id)
    }

    /// The recently ended session named by `key`: its id, or its address (the last
    /// session that ended there).
    pub fn find_recent(&self, key: &str) -> Option<&EndedSession> {
        let key = key.trim();
        if let Ok(ip) = key.parse::<Ipv4Addr>() {
            return self.recent.iter().rev().find(|e| e.record.address == ip);
        }
        key.parse::<SessionId>().ok().and_then(|id| self.recent(id))
    }

    /// The name of user `uid`.
    pub fn user_name(&self, uid: u64) -> Option<&str> {
        self.users
            .iter()
            .find(|(_, v)| **v == uid)
            .map(|(k, _)| k.as_str())
    }

    /// What the registry counted.
    pub fn stats(&self) -> SessionStats {
        self.stats
    }
}

/// The cause named `s` (for ctl), defaulting to `admin_reset`.
pub fn cause(s: Option<&str>) -> Result<DisconnectCause, String> {
    match s {
        None => Ok(DisconnectCause::AdminReset),
        Some(n) => DisconnectCause::from_name(n).ok_or_else(|| {
            format!(
                "unknown cause {n:?}; one of: {}",
                DisconnectCause::ALL
                    .iter()
                    .map(|c| c.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(user: &str, ip: [u8; 4]) -> SessionRequest {
        SessionRequest {
            user: user.into(),
            address: Ipv4Addr::from(ip),
            mac: None,
            channel: None,
            services: ServiceSet::ALL,
            bandwidth: Bandwidth::default(),
            limits: Limits::default(),
            max_flows: 0,
        }
    }

    #[test]
    fn ids_users_and_owners() {
        let mut s = Sessions::new(2, 16);
        let (a, wa) = s.open(Instant(1), req("alice", [10, 10, 0, 11])).unwrap();
        let (b, wb) = s.open(Instant(1), req("bob", [10, 10, 0, 12])).unwrap();
        assert_eq!((a.id, b.id), (1, 2));
        assert_eq!((wa, wb), (1, 0), "owner by address");
        assert_eq!(a.channel, 1);
        assert_ne!(a.user, b.user);
        assert!(matches!(
            s.open(Instant(1), req("carol", [10, 10, 0, 11])),
            Err(SessionError::AddressInUse(..))
        ));
        assert_eq!(s.find("10.10.0.12"), Ok(2));
        assert_eq!(s.find("1"), Ok(1));
        assert!(s.find("9").is_err());
        let rec = ClosedSession {
            id: 1,
            user: a.user,
            channel: 1,
            address: a.address,
            started: Instant(1),
            stopped: Instant(2),
            cause: DisconnectCause::UserRequest,
            counters: Default::default(),
        };
        assert_eq!(s.ended(rec).unwrap().user, "alice");
        assert!(s.ended(rec).is_none(), "once");
        let (c, _) = s.open(Instant(3), req("alice", [10, 10, 0, 13])).unwrap();
        assert_eq!(c.id, 3, "ids are not reused");
        assert_eq!(c.user, a.user, "same user, same user id");
        assert_eq!(s.recent(1).unwrap().record.stopped, Instant(2));
        assert_eq!(s.find_recent("1").unwrap().user, "alice");
        assert_eq!(
            s.find_recent("10.10.0.11").unwrap().record.id,
            1,
            "an ended session is found by its address too"
        );
        assert!(s.find_recent("10.10.0.12").is_none(), "still open");
    }

    fn closed(spec: &SessionSpec) -> ClosedSession {
        ClosedSession {
            id: spec.id,
            user: spec.user,
            channel: spec.channel,
            address: spec.address,
            started: spec.started,
            stopped: spec.started,
            cause: DisconnectCause::UserRequest,
            counters: Default::default(),
        }
    }

    #[test]
    fn ids_wrap_around_the_open_and_recently_ended_sessions() {
        let mut s = Sessions::new(1, 1000);
        s.next_id = SessionId::MAX - 3;
        let a = s.open(Instant(1), req("a", [10, 0, 0, 1])).unwrap().0;
        let b = s.open(Instant(1), req("b", [10, 0, 0, 2])).unwrap().0;
        assert_eq!((a.id, b.id), (SessionId::MAX - 3, SessionId::MAX - 2));
        s.ended(closed(&a));
        let c = s.open(Instant(1), req("c", [10, 0, 0, 3])).unwrap().0;
        assert_eq!(c.id, SessionId::MAX - 1);
        // Wrapped (u32::MAX is never an id): 1, 2 and 3 were never given out, the
        // next pass meets the open and the still-shown ended ones.
        let ids: Vec<SessionId> = (4..7)
            .map(|i| s.open(Instant(1), req("d", [10, 0, 0, i])).unwrap().0.id)
            .collect();
        assert_eq!(ids, vec![1, 2, 3]);
        s.next_id = SessionId::MAX - 3;
        let e = s.open(Instant(1), req("e", [10, 0, 0, 9])).unwrap().0;
        assert_eq!(
            e.id, 4,
            "MAX-3 is shown as ended, MAX-2 and MAX-1 are open, 1-3 too"
        );
        // Once it has gone from the recent list, its id may come back.
        for i in 0..RECENT {
            let x = s
                .open(Instant(1), req("x", [10, 1, (i >> 8) as u8, i as u8]))
                .unwrap()
                .0;
            s.ended(closed(&x));
        }
        assert!(s.recent(SessionId::MAX - 3).is_none());
        s.next_id = SessionId::MAX - 3;
        let f = s.open(Instant(1), req("f", [10, 0, 0, 10])).unwrap().0;
        assert_eq!(f.id, SessionId::MAX - 3);
    }

    #[test]
    fn a_full_worker_refuses_a_session() {
        let mut s = Sessions::new(2, 1);
        // 10.10.0.12 and 10.10.0.14 belong to worker 0, 10.10.0.11 to worker 1.
        s.open(Instant(1), req("a", [10, 10, 0, 12])).unwrap();
        s.open(Instant(1), req("b", [10, 10, 0, 11])).unwrap();
        assert_eq!(
            s.open(Instant(1), req("c", [10, 10, 0, 14])),
            Err(SessionError::WorkerFull {
                worker: 0,
                capacity: 1
            })
        );
        assert_eq!(s.len(), 2);
        assert_eq!(s.stats().opened, 2);
    }
}
