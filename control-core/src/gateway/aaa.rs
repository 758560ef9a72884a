//! Logins and what follows them, sans-I/O (SES-1, SES-2, DISC-1..3, CNT-2): a login asks
//! the shell to authenticate ([`Output::Authenticate`]); an accepted login gets an address
//! (its own, Framed-IP-Address, or one from a pool), has the simultaneous-login limit
//! applied (DISC D), and is installed with its conditions as fast-path limits (A, B, C, E;
//! F as an idle limit just short of the application's timeout). Every session, however it
//! was opened, is accounted: a Start when installed, Interim-Updates at its interval, a
//! Stop with the final counters and cause when the fast path's record arrives
//! ([`Output::Account`]). The SES-1 state (Act / Dormant) follows the session's traffic:
//! dormant after `dormant` without a packet, closed after `dormant_timeout` dormant.
//!
//! Timers are exact instants on the engine clock; counters come from the owning worker
//! ([`Command::SessionQuery`]), so the answer lands a moment after the timer.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::net::Ipv4Addr;
use std::time::Duration;

use tollgate_dataplane::session::{
    AccessLine, Bandwidth, ClosedSession, DisconnectCause, Limits, RateLimit, ServiceSet,
    SessionCounters, SessionId, SessionUpdate, VolumeLimit,
};
use tollgate_dataplane::time::Instant;
use tollgate_dataplane::{Command, MacAddr};

use super::identifier::Identifier;
use super::pools::Pools;
use super::sessions::{SessionError, SessionRequest};
use super::{Core, Output, Target};
use crate::authz::{Authorization, LoginVictim};
use crate::radius::attrs::{AcctRecord, Counters, PppoeLine};
use crate::radius::coa::{Change, SessionDirectory, SessionRef};
use crate::radius::dict::{AcctStatusType, ErrorCause};

/// Names a login in progress.
pub type LoginId = u64;

/// How logins and accounting behave.
#[derive(Clone, Debug)]
pub struct AaaPolicy {
    /// Interim-Update interval when the authorization gives none (`None`: no interims).
    pub interim: Option<Duration>,
    /// SES-1 dormant timer: a session without a packet this long becomes Dormant.
    pub dormant: Option<Duration>,
    /// SES-1 session timer: a session Dormant this long is closed.
    pub dormant_timeout: Option<Duration>,
    /// DISC F: how long before the application's own timeout the session ends.
    pub app_timeout_margin: Duration,
    /// Logins waiting for authentication, at most; more are refused at once.
    pub max_pending: usize,
    /// Sessions each worker holds (a login that would not fit is refused).
    pub max_sessions_per_worker: usize,
    /// Flows per subscriber when the authorization does not say (0: engine default).
    pub max_flows: u32,
    /// Address pools and gateway nodes.
    pub pools: Pools,
    /// How often every worker reports its sessions' counters for the spool's last known
    /// counters ([`Output::LastKnown`]; `None`: only at accounting records).
    pub last_known: Option<Duration>,
    /// Put before every Acct-Session-Id: a cluster node's name and a dot, so that the
    /// ids of sessions on different nodes never meet (empty on a single node).
    pub session_prefix: String,
}

impl Default for AaaPolicy {
    fn default() -> Self {
        AaaPolicy {
            interim: None,
            dormant: None,
            dormant_timeout: None,
            app_timeout_margin: Duration::from_secs(1),
            max_pending: 1024,
            max_sessions_per_worker: usize::MAX,
            max_flows: 0,
            pools: Pools::default(),
            last_known: None,
            session_prefix: String::new(),
        }
    }
}

/// A login: seed 001 FIG. 3's access request (`ctl session login`), or the first packet
/// of an address without a session (SES-4).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoginRequest {
    /// User name (with `password`): a PAP login.
    pub user: Option<String>,
    /// Password.
    pub password: Option<String>,
    /// The subscriber's address when it has one (the first packet's source).
    pub address: Option<Ipv4Addr>,
    /// Its MAC.
    pub mac: Option<MacAddr>,
    /// A mobile device id (a returning mobile keeps its session and address).
    pub mobile_id: Option<String>,
    /// Channel (line) id.
    pub channel: Option<u32>,
    /// True for a first-packet login.
    pub first_packet: bool,
    /// A CHAP-MD5 response (a PPP subscriber's), to check instead of a password.
    pub chap: Option<ChapResponse>,
    /// The PPPoE line the subscriber came on (a PPP login; the answer goes to its PPP
    /// session, not to a ctl client).
    pub line: Option<PppoeLine>,
    /// The line of an IPoE subscriber that first came tagged (a Router Solicitation or
    /// DHCPv6 SOLICIT, or a first packet, on a VLAN): its session is installed on that
    /// line, which RADIUS sees as NAS-Port-Id.
    pub access: Option<(AccessLine, PppoeLine)>,
}

/// A CHAP-MD5 response to check (RFC 1994): right when `response` is
/// MD5(`id` || secret || `challenge`). The local store checks it with the subscriber's
/// CHAP secret; RADIUS gets CHAP-Password and CHAP-Challenge.
#[derive(Clone, PartialEq, Eq)]
pub struct ChapResponse {
    /// The Identifier of the challenge.
    pub id: u8,
    /// The challenge the gateway sent.
    pub challenge: Vec<u8>,
    /// The peer's response value (16 bytes for MD5).
    pub response: Vec<u8>,
}

impl ChapResponse {
    /// Whether the response is right for `secret`.
    pub fn verify(&self, secret: &[u8]) -> bool {
        crate::ppp::wire::chap::verify_md5(self.id, secret, &self.challenge, &self.response)
    }
}

impl std::fmt::Debug for ChapResponse {
    /// Never prints the response.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ChapResponse {{ id: {}, challenge_len: {}, response: <redacted> }}",
            self.id,
            self.challenge.len()
        )
    }
}

/// What the shell must check: credentials, or identifiers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthRequest {
    /// The login to answer with [`Core::on_auth`].
    pub login: LoginId,
    /// User name, when the login gave one.
    pub user: Option<String>,
    /// Password, when the login gave one.
    pub password: Option<String>,
    /// Identifiers to look the subscriber up by, in order (mobile id, MAC, address).
    pub identifiers: Vec<Identifier>,
    /// Calling-Station-Id for RADIUS: the mobile id or the MAC.
    pub calling_station: Option<String>,
    /// The address the subscriber has, if any.
    pub address: Option<Ipv4Addr>,
    /// A CHAP-MD5 response to check instead of a password (PPP).
    pub chap: Option<ChapResponse>,
    /// The PPPoE line of a PPP login (NAS-Port-Id, TR-101 line identification).
    pub line: Option<PppoeLine>,
}

/// The authentication's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthAnswer {
    /// Accepted: the user name and what the login grants.
    Accept {
        /// The subscriber's user name.
        user: String,
        /// What it grants.
        authorization: Box<Authorization>,
    },
    /// Refused (wrong password, unknown subscriber).
    Reject(String),
    /// Nobody could answer (RADIUS servers down, store unreadable).
    Unavailable(String),
}

/// A login's outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Login {
    /// The session.
    pub session: SessionId,
    /// The user.
    pub user: String,
    /// Its address.
    pub address: Ipv4Addr,
    /// True when a returning mobile found its session still open.
    pub resumed: bool,
}

/// SES-1 states of an open session (None and Close are before and after).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SesState {
    /// In session.
    Act,
    /// No packet for the dormant time.
    Dormant,
}

impl SesState {
    /// The operator's name.
    pub fn name(self) -> &'static str {
        match self {
            SesState::Act => "act",
            SesState::Dormant => "dormant",
        }
    }
}

/// What the core keeps per session besides the fast-path spec.
#[derive(Clone, Debug)]
pub struct AaaSession {
    /// Unique for the daemon's life (session ids are reused).
    pub serial: u64,
    /// Acct-Session-Id.
    pub acct_id: String,
    /// The user.
    pub user: String,
    /// Who its logins count against (DISC D): the billing account, else the user.
    pub group: String,
    /// What the login granted (or, for static sessions, an empty authorization).
    pub authorization: Authorization,
    /// Calling-Station-Id.
    pub calling_station: Option<String>,
    /// The mobile id it logged in with.
    pub mobile_id: Option<String>,
    /// When it started.
    pub start: Instant,
    /// Act or Dormant.
    pub state: SesState,
    /// When it became Dormant.
    pub dormant_since: Option<Instant>,
    /// The last packet either way, as last reported.
    pub last_seen: Instant,
    /// Counters as last reported.
    pub counters: SessionCounters,
    /// Its Interim-Update interval.
    pub interim: Option<Duration>,
    /// True when the idle limit installed is DISC F's (an idle end is an application
    /// timeout).
    pub app_idle: bool,
    /// True when its address came from (or is reserved in) a pool.
    pub pooled: bool,
    /// True once the core asked the fast path to end it.
    pub closing: bool,
    /// Declared-bandwidth changes reported for rating.
    pub bandwidth_changes: u32,
    /// The counters the spool last got for it (in a record or as last known).
    pub spooled: SessionCounters,
    /// The PPPoE line of a PPP session, for its accounting records.
    pub line: Option<PppoeLine>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum TimerKind {
    Interim,
    Dormancy,
    /// A one-off Interim-Update for a change RADIUS should learn at once (a DHCPv6
    /// binding after the Start); the periodic schedule stays as it was.
    Update,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Timer {
    at: Instant,
    serial: u64,
    id: SessionId,
    kind: TimerKind,
}

/// What logins and accounting counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AaaStats {
    /// Logins asked for.
    pub logins: u64,
    /// Logins that got a session (or found theirs, for a returning mobile).
    pub accepted: u64,
    /// Refused by the authenticator.
    pub rejected: u64,
    /// No authenticator answered.
    pub unavailable: u64,
    /// Refused at once: too many logins waiting.
    pub busy: u64,
    /// Refused after acceptance: no address, address in use, limit, table full.
    pub failed: u64,
    /// Returning mobiles that kept their session.
    pub resumed: u64,
    /// Logins answered here and placed on another cluster node (CLU-2, source-range
    /// placement): that node opens the session.
    pub placed_elsewhere: u64,
    /// Sessions opened here for logins another cluster node placed on this one.
    pub placed_here: u64,
    /// Sessions ended to make room under a simultaneous-login limit.
    pub login_victims: u64,
    /// Accounting records produced, by kind.
    pub starts: u64,
    /// Interim-Updates.
    pub interims: u64,
    /// Stops.
    pub stops: u64,
    /// Act -> Dormant transitions.
    pub dormant: u64,
    /// Last-known-counters rounds asked of the workers.
    pub last_known_rounds: u64,
    /// Sessions' last known counters handed to the spool.
    pub last_known: u64,
}

struct Pending {
    req: LoginRequest,
}

/// The AAA half of the core's state.
pub(super) struct AaaState {
    policy: AaaPolicy,
    next_login: LoginId,
    pending: HashMap<LoginId, Pending>,
    pending_addresses: HashSet<Ipv4Addr>,
    sessions: HashMap<SessionId, AaaSession>,
    groups: HashMap<String, Vec<SessionId>>,
    mobiles: HashMap<String, SessionId>,
    timers: BinaryHeap<Reverse<Timer>>,
    queries: HashMap<u64, (SessionId, u64, TimerKind)>,
    next_serial: u64,
    boot: String,
    stats: AaaStats,
    /// When the next last-known-counters round is due.
    next_last_known: Option<Instant>,
    /// The round in progress (its report tag) and what it gathered so far.
    last_known_seq: Option<u64>,
    last_known_batch: Vec<crate::radius::attrs::LastKnown>,
}

impl std::fmt::Debug for AaaState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "AaaState({} sessions, {} logins pending)",
            self.sessions.len(),
            self.pending.len()
        )
    }
}

impl AaaState {
    /// `boot_unix_ms` makes Acct-Session-Ids unique across restarts.
    pub(super) fn new(policy: AaaPolicy, boot_unix_ms: u64) -> AaaState {
        AaaState {
            next_login: 1,
            pending: HashMap::new(),
            pending_addresses: HashSet::new(),
            sessions: HashMap::new(),
            groups: HashMap::new(),
            mobiles: HashMap::new(),
            timers: BinaryHeap::new(),
            queries: HashMap::new(),
            next_serial: 1,
            boot: format!("{}{boot_unix_ms:x}", policy.session_prefix),
            stats: AaaStats::default(),
            next_last_known: None,
            last_known_seq: None,
            last_known_batch: Vec::new(),
            policy,
        }
    }

    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        let timer = self.timers.peek().map(|Reverse(t)| t.at);
        match (timer, self.next_last_known) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Arms the first last-known-counters round (the core calls it once, with its start).
    pub(super) fn start(&mut self, now: Instant) {
        self.next_last_known = self.policy.last_known.map(|d| now + d);
    }

    fn arm(&mut self, at: Instant, s: &AaaSession, id: SessionId, kind: TimerKind) {
        self.timers.push(Reverse(Timer {
            at,
            serial: s.serial,
            id,
            kind,
        }));
    }
}

/// The fast-path limits for DISC-1 A, B, C, E and F, and whether the idle limit is F's.
pub fn limits(a: &Authorization, app_margin: Duration) -> (Limits, bool) {
    let c = &a.conditions;
    let ms = |s: u32| s as u64 * 1000;
    let idle = c.idle_time_s.map(ms);
    let app = c
        .app_timeout_s
        .map(|s| ms(s).saturating_sub(app_margin.as_millis() as u64).max(1));
    let (idle, app_idle) = match (idle, app) {
        (Some(i), Some(f)) if f < i => (Some(f), true),
        (None, Some(f)) => (Some(f), true),
        (i, _) => (i, false),
    };
    let mut l = Limits {
        session_timeout_ms: c.session_time_s.map(ms),
        volume: VolumeLimit {
            tx_bytes: c.volume_bytes_up,
            rx_bytes: c.volume_bytes_down,
            total_bytes: c.volume_bytes,
            tx_packets: c.volume_packets_up,
            rx_packets: c.volume_packets_down,
        },
        ..Limits::default()
    };
    match (c.idle_server, idle) {
        (Some(server), Some(i)) => l.idle_server = Some((server, i)),
        (_, i) => l.idle_timeout_ms = i,
    }
    if let (Some(p), Some(path)) = (c.rate_ratio_percent, a.bandwidth_down.filter(|b| *b > 0)) {
        l.rate = Some(RateLimit {
            percent: p.clamp(1, 100) as u8,
            path_bps: path,
            window_ms: c.rate_window_s.map_or(1000, |s| ms(s).max(1) as u32),
        });
    }
    (l, app_idle)
}

pub(super) fn bandwidth(a: &Authorization) -> Bandwidth {
    Bandwidth {
        up_bps: a.bandwidth_up.unwrap_or(0),
        down_bps: a.bandwidth_down.unwrap_or(0),
    }
}

fn counters(c: &SessionCounters) -> Counters {
    Counters {
        octets_up: c.tx_bytes,
        octets_down: c.rx_bytes,
        packets_up: c.tx_packets,
        packets_down: c.rx_packets,
    }
}

impl Core {
    /// The services an authorization allows (all when it names none; unknown names are
    /// logged and ignored).
    pub(super) fn service_set(&self, a: &Authorization) -> ServiceSet {
        if a.services.is_empty() {
            return ServiceSet::ALL;
        }
        ServiceSet::from_indexes(a.services.iter().filter_map(|n| {
            let i = self.service_index(n);
            if i.is_none() {
                tracing::warn!(service = %n, "authorization names an unknown service");
            }
            i
        }))
    }

    /// The authorization a session opened without a login amounts to (so a CoA can be
    /// applied over it).
    pub(super) fn authorization_of(&self, req: &SessionRequest) -> Authorization {
        let l = &req.limits;
        let s = |ms: u64| (ms / 1000).min(u32::MAX as u64) as u32;
        let mut a = Authorization {
            bandwidth_up: Some(req.bandwidth.up_bps).filter(|b| *b > 0),
            bandwidth_down: Some(req.bandwidth.down_bps).filter(|b| *b > 0),
            ..Authorization::default()
        };
        if req.services != ServiceSet::ALL {
            a.services = (0..self.service_names.len() as u16)
                .filter(|i| req.services.allows(*i))
                .map(|i| self.service_names[i as usize].clone())
                .collect();
        }
        let c = &mut a.conditions;
        c.session_time_s = l.session_timeout_ms.map(s);
        c.idle_time_s = l.idle_timeout_ms.map(s);
        if let Some((server, ms)) = l.idle_server {
            c.idle_server = Some(server);
            c.idle_time_s = Some(s(ms));
        }
        c.volume_bytes = l.volume.total_bytes;
        c.volume_bytes_up = l.volume.tx_bytes;
        c.volume_bytes_down = l.volume.rx_bytes;
        c.volume_packets_up = l.volume.tx_packets;
        c.volume_packets_down = l.volume.rx_packets;
        if let Some(r) = l.rate {
            c.rate_ratio_percent = Some(r.percent as u32);
            c.rate_window_s = Some(r.window_ms.div_ceil(1000));
        }
        a
    }

    /// The pools, to allocate from.
    pub(super) fn pools_mut(&mut self) -> &mut Pools {
        &mut self.aaa.policy.pools
    }

    /// DISC F's margin.
    pub(super) fn aaa_app_margin(&self) -> Duration {
        self.aaa.policy.app_timeout_margin
    }

    /// The Interim-Update interval of sessions whose authorization gives none.
    pub(super) fn aaa_interim(&self) -> Option<Duration> {
        self.aaa.policy.interim
    }

    /// A new Acct-Session-Id, from the same series as the gateway sessions' (node
    /// prefix, boot time, serial): for a session accounted outside the registry (a
    /// subscriber switched to an LNS).
    pub(super) fn aaa_new_acct_id(&mut self) -> String {
        let a = &mut self.aaa;
        let serial = a.next_serial;
        a.next_serial += 1;
        format!("{}-{serial:x}", a.boot)
    }

    /// Flows per subscriber when the authorization does not say.
    pub(super) fn aaa_max_flows(&self) -> u32 {
        self.aaa.policy.max_flows
    }

    /// A PPP login was accepted (counted as logins are).
    pub(super) fn aaa_accepted_ppp(&mut self) {
        self.aaa.stats.accepted += 1;
    }

    /// A PPP login was accepted but got no address.
    pub(super) fn aaa_failed_ppp(&mut self) {
        self.aaa.stats.failed += 1;
    }

    /// A PPP login was rejected, or nobody could answer.
    pub(super) fn aaa_rejected_ppp(&mut self, unavailable: bool) {
        if unavailable {
            self.aaa.stats.unavailable += 1;
        } else {
            self.aaa.stats.rejected += 1;
        }
    }

    /// Reserves `ip` in its pool range, if one holds it.
    pub(super) fn aaa_reserve(&mut self, ip: Ipv4Addr) -> bool {
        self.aaa.policy.pools.reserve(ip)
    }

    /// Whether session `id`'s address came from a pool.
    pub(super) fn aaa_pooled(&self, id: SessionId) -> bool {
        self.aaa.sessions.get(&id).is_some_and(|s| s.pooled)
    }

    /// Returns `ip` to its pool range.
    pub(super) fn aaa_release(&mut self, ip: Ipv4Addr) {
        self.aaa.policy.pools.release(ip)
    }

    /// Starts a login; the answer comes as [`Output::LoginDone`]. Refused at once when
    /// too many are waiting, or when the same address is already logging in.
    pub fn login(&mut self, _now: Instant, req: LoginRequest) -> Result<LoginId, String> {
        self.aaa.stats.logins += 1;
        if let Some(Err(e)) = req.address.map(|ip| self.subscriber_addresses().check(ip)) {
            self.aaa.stats.failed += 1;
            return Err(e.to_string());
        }
        let a = &mut self.aaa;
        if a.pending.len() >= a.policy.max_pending {
            a.stats.busy += 1;
            return Err(format!(
                "{} logins are waiting for authentication; try again",
                a.pending.len()
            ));
        }
        if let Some(ip) = req.address
            && !a.pending_addresses.insert(ip)
        {
            a.stats.busy += 1;
            return Err(format!("{ip} is already logging in"));
        }
        let login = a.next_login;
        a.next_login += 1;
        let mut identifiers = Vec::new();
        if let Some(m) = &req.mobile_id {
            identifiers.push(Identifier::MobileId(m.clone()));
        }
        if let Some(m) = req.mac {
            identifiers.push(Identifier::Mac(m));
        }
        if let Some(ip) = req.address {
            identifiers.push(Identifier::Ip(ip));
        }
        let auth = super::aaa::AuthRequest {
            login,
            user: req.user.clone(),
            password: req.password.clone(),
            identifiers,
            calling_station: req
                .mobile_id
                .clone()
                .or_else(|| req.mac.map(|m| m.to_string())),
            address: req.address,
            chap: req.chap.clone(),
            line: req
                .line
                .clone()
                .or_else(|| req.access.as_ref().map(|a| a.1.clone())),
        };
        a.pending.insert(login, Pending { req });
        self.out.push_back(Output::Authenticate(auth));
        Ok(login)
    }

    /// True while a login of `ip` waits for authentication.
    pub fn logging_in(&self, ip: Ipv4Addr) -> bool {
        self.aaa.pending_addresses.contains(&ip)
    }

    /// True while a first-packet login of `mac` (an IPv6-first subscriber's: RS or
    /// DHCPv6 SOLICIT) waits for authentication: its session is coming.
    pub(super) fn logging_in_first_packet(&self, mac: MacAddr) -> bool {
        self.aaa
            .pending
            .values()
            .any(|p| p.req.first_packet && p.req.mac == Some(mac))
    }

    /// Logins waiting for authentication.
    pub fn logins_pending(&self) -> usize {
        self.aaa.pending.len()
    }

    /// CLU-2 source-range placement: the mobile id of login `login` when it waits for its
    /// answer and a cluster may place it on any node (a `ctl session login` without an
    /// address of its own: not a first packet, a PPP, DHCP or VLAN-line login, whose
    /// subscriber is attached to this node). `Some(None)`: placeable, no mobile id.
    pub fn placeable_login(&self, login: LoginId) -> Option<Option<String>> {
        let p = self.aaa.pending.get(&login)?;
        let r = &p.req;
        let attached = r.address.is_some()
            || r.first_packet
            || r.line.is_some()
            || r.access.is_some()
            || self.dhcp_owns_login(login);
        (!attached).then(|| r.mobile_id.clone())
    }

    /// Login `login` was accepted and placed on another cluster node, which opens its
    /// session: it is done here without one. False when it was not waiting.
    pub fn login_placed_elsewhere(&mut self, login: LoginId) -> bool {
        if self.aaa.pending.remove(&login).is_none() {
            return false;
        }
        self.aaa.stats.accepted += 1;
        self.aaa.stats.placed_elsewhere += 1;
        true
    }

    /// Opens the session of a login another cluster node accepted and placed on this one
    /// with `address` from this node's range (CLU-2): as an accepted login with that
    /// address (a returning mobile whose session is open here resumes it).
    pub fn open_placed(
        &mut self,
        now: Instant,
        user: String,
        mobile_id: Option<String>,
        address: Ipv4Addr,
        authorization: Authorization,
    ) -> Result<Login, String> {
        self.aaa.stats.logins += 1;
        let req = LoginRequest {
            user: Some(user.clone()),
            address: Some(address),
            mobile_id,
            ..LoginRequest::default()
        };
        let r = self.accepted(now, &req, user, authorization);
        if r.is_ok() {
            self.aaa.stats.placed_here += 1;
        }
        r
    }

    /// The authenticator answered login `login`.
    pub fn on_auth(&mut self, now: Instant, login: LoginId, answer: AuthAnswer) {
        let Some(p) = self.aaa.pending.remove(&login) else {
            return;
        };
        if let Some(ip) = p.req.address {
            self.aaa.pending_addresses.remove(&ip);
        }
        if self.dhcp_owns_login(login) {
            self.dhcp_auth_answer(now, login, answer);
            return;
        }
        if p.req.line.is_some() {
            self.ppp_auth_answer(now, login, answer);
            return;
        }
        let result = match answer {
            AuthAnswer::Accept {
                user,
                authorization,
            } => self.accepted(now, &p.req, user, *authorization),
            AuthAnswer::Reject(why) => {
                self.aaa.stats.rejected += 1;
                Err(format!("rejected: {why}"))
            }
            AuthAnswer::Unavailable(why) => {
                self.aaa.stats.unavailable += 1;
                Err(format!("authentication unavailable: {why}"))
            }
        };
        match &result {
            Ok(l) => {
                tracing::info!(login, user = %l.user, address = %l.address, session = l.session, resumed = l.resumed, "login")
            }
            Err(e) => {
                tracing::info!(login, address = ?p.req.address, mac = ?p.req.mac, user = ?p.req.user, error = %e, "login refused")
            }
        }
        self.out.push_back(Output::LoginDone { login, result });
    }

    fn accepted(
        &mut self,
        now: Instant,
        req: &LoginRequest,
        user: String,
        auth: Authorization,
    ) -> Result<Login, String> {
        // SES-2: a returning mobile with its session open keeps it.
        if let Some(&id) = req.mobile_id.as_ref().and_then(|m| self.aaa.mobiles.get(m))
            && let Some(s) = self.aaa.sessions.get_mut(&id).filter(|s| !s.closing)
        {
            let address = self.sessions.get(id).map(|o| o.spec.address);
            if let Some(address) = address {
                if s.state == SesState::Dormant {
                    s.state = SesState::Act;
                    s.dormant_since = None;
                }
                self.aaa.stats.accepted += 1;
                self.aaa.stats.resumed += 1;
                return Ok(Login {
                    session: id,
                    user: s.user.clone(),
                    address,
                    resumed: true,
                });
            }
        }
        let fail = |core: &mut Core, e: String| {
            core.aaa.stats.failed += 1;
            Err(e)
        };
        // The address: the one the subscriber has, the one the authorization gives, or
        // one from a pool.
        let (address, pooled) = match req.address.or(auth.framed_ip) {
            Some(ip) => (ip, self.aaa.policy.pools.reserve(ip)),
            None => match self.aaa.policy.pools.allocate(auth.pool.as_deref()) {
                Ok(ip) => (ip, true),
                Err(e) => return fail(self, e.to_string()),
            },
        };
        let release = |core: &mut Core| {
            if pooled {
                core.aaa.policy.pools.release(address);
            }
        };
        if let Err(e) = self.subscriber_addresses().check(address) {
            release(self);
            return fail(self, e.to_string());
        }
        let worker = self.sessions.owner(address);
        if self.sessions.on_worker(worker) >= self.aaa.policy.max_sessions_per_worker {
            release(self);
            return fail(self, format!("worker {worker}'s session table is full"));
        }
        // DISC D: one login too many ends the earliest, or the highest in the stored
        // order (which may be this one).
        let group = auth.billing_account.clone().unwrap_or_else(|| user.clone());
        if let Some(max) = auth.conditions.max_logins
            && let Err(e) = self.make_room(&group, max, &auth)
        {
            release(self);
            return fail(self, e);
        }
        let (limits, app_idle) = limits(&auth, self.aaa.policy.app_timeout_margin);
        let request = SessionRequest {
            user: user.clone(),
            address,
            mac: req.mac,
            channel: req.channel,
            services: self.service_set(&auth),
            bandwidth: bandwidth(&auth),
            limits,
            max_flows: self.aaa.policy.max_flows,
        };
        let calling_station = req
            .mobile_id
            .clone()
            .or_else(|| req.mac.map(|m| m.to_string()));
        let line = req.access.clone().map(|(a, l)| (a, Some(l)));
        let id = match self.install(now, request, auth, calling_station, app_idle, pooled, line) {
            Ok(id) => id,
            Err(e) => {
                release(self);
                return fail(self, e.to_string());
            }
        };
        if let Some(m) = &req.mobile_id {
            self.aaa.mobiles.insert(m.clone(), id);
            if let Some(s) = self.aaa.sessions.get_mut(&id) {
                s.mobile_id = Some(m.clone());
            }
        }
        self.aaa.stats.accepted += 1;
        Ok(Login {
            session: id,
            user,
            address,
            resumed: false,
        })
    }

    /// Ends enough of `group`'s sessions for one more login under `max`.
    pub(super) fn make_room(
        &mut self,
        group: &str,
        max: u32,
        auth: &Authorization,
    ) -> Result<(), String> {
        let live: Vec<SessionId> = self
            .aaa
            .groups
            .get(group)
            .into_iter()
            .flatten()
            .copied()
            .filter(|id| self.aaa.sessions.get(id).is_some_and(|s| !s.closing))
            .collect();
        let excess = (live.len() + 1).saturating_sub(max as usize);
        if excess == 0 {
            return Ok(());
        }
        // Candidates as (order, start, id); the new login is (its order, now, None).
        let order_of = |a: &Authorization| match a.conditions.login_victim {
            LoginVictim::Order => a.conditions.login_order.unwrap_or(0),
            LoginVictim::Earliest => 0,
        };
        let mut candidates: Vec<(u32, Option<Instant>, Option<SessionId>)> = live
            .iter()
            .filter_map(|id| {
                let s = self.aaa.sessions.get(id)?;
                Some((order_of(&s.authorization), Some(s.start), Some(*id)))
            })
            .collect();
        let victim_rule = auth.conditions.login_victim;
        if victim_rule == LoginVictim::Order {
            candidates.push((order_of(auth), None, None));
            // Highest order first; equal orders: the earliest login first.
            candidates.sort_by(|a, b| {
                b.0.cmp(&a.0).then(
                    a.1.unwrap_or(Instant(u64::MAX))
                        .cmp(&b.1.unwrap_or(Instant(u64::MAX))),
                )
            });
        } else {
            candidates.sort_by_key(|c| c.1);
        }
        let victims: Vec<_> = candidates.into_iter().take(excess).collect();
        if victims.iter().any(|v| v.2.is_none()) {
            return Err(format!(
                "{group} has {} of {max} simultaneous logins and this one is last in the stored order",
                live.len()
            ));
        }
        for (_, _, id) in victims {
            let id = id.expect("checked above");
            tracing::info!(
                session = id,
                group,
                max,
                "ending a login over the simultaneous-login limit"
            );
            self.aaa.stats.login_victims += 1;
            self.end(id, DisconnectCause::SimultaneousLogins);
        }
        Ok(())
    }

    /// Asks the owning worker to end session `id` (its record follows as an event).
    pub(super) fn end(&mut self, id: SessionId, cause: DisconnectCause) {
        let worker = self.sessions.get(id).map_or(0, |s| s.worker);
        if let Some(s) = self.aaa.sessions.get_mut(&id) {
            s.closing = true;
        }
        self.out.push_back(Output::Command(
            Target::Worker(worker),
            Command::SessionRemove { id, cause },
        ));
    }

    /// Opens a session in the registry and on its worker, with its accounting state, and
    /// sends the Start.
    // Each argument is one fact about the session from its three callers (static, login,
    // PPP); a struct for them would only move the list.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn install(
        &mut self,
        now: Instant,
        req: SessionRequest,
        authorization: Authorization,
        calling_station: Option<String>,
        app_idle: bool,
        pooled: bool,
        line: Option<(AccessLine, Option<PppoeLine>)>,
    ) -> Result<SessionId, SessionError> {
        self.subscriber_addresses().check(req.address)?;
        let user = req.user.clone();
        let (access, line) = line.unwrap_or_default();
        let (spec, worker) = self.sessions.open_with(now, req, access)?;
        self.out.push_back(Output::Command(
            Target::Worker(worker),
            Command::SessionAdd(spec),
        ));
        self.ipv6_authorized(spec.id, &authorization);
        self.ipv6_session_opened(now, &spec, worker);
        let a = &mut self.aaa;
        let serial = a.next_serial;
        a.next_serial += 1;
        let group = authorization
            .billing_account
            .clone()
            .unwrap_or_else(|| user.clone());
        let interim = authorization
            .interim_interval_s
            .filter(|s| *s > 0)
            .map(|s| Duration::from_secs(s.max(10) as u64))
            .or(a.policy.interim);
        let s = AaaSession {
            serial,
            acct_id: format!("{}-{serial:x}", a.boot),
            user,
            group: group.clone(),
            authorization,
            calling_station,
            mobile_id: None,
            start: now,
            state: SesState::Act,
            dormant_since: None,
            last_seen: now,
            counters: SessionCounters::default(),
            interim,
            app_idle,
            pooled,
            closing: false,
            bandwidth_changes: 0,
            spooled: SessionCounters::default(),
            line,
        };
        if let Some(i) = interim {
            a.arm(now + i, &s, spec.id, TimerKind::Interim);
        }
        if let Some(d) = a.policy.dormant {
            a.arm(now + d, &s, spec.id, TimerKind::Dormancy);
        }
        a.groups.entry(group).or_default().push(spec.id);
        a.stats.starts += 1;
        let record = self
            .acct_record(&s, spec.address, AcctStatusType::Start, now, None)
            .with_ipv6(self.acct_ipv6(spec.id));
        self.aaa.sessions.insert(spec.id, s);
        self.out.push_back(Output::Account(record));
        // A DHCPv4 DISCOVER that came while this (IPv6-first) session logged in joins it.
        self.dhcp_session_opened(now, &spec);
        if spec.bandwidth.up_bps > 0 || spec.bandwidth.down_bps > 0 {
            self.bandwidth_changed(now, spec.id, spec.bandwidth, "start");
        }
        Ok(spec.id)
    }

    /// Reports a session's declared bandwidth for rating (RATE-2): the downlink rate, or
    /// the uplink one when only that is declared.
    pub(super) fn bandwidth_changed(
        &mut self,
        now: Instant,
        id: SessionId,
        b: Bandwidth,
        reason: &str,
    ) {
        let at = (self.clock.unix_ns(now).max(0) / 1_000_000_000) as i64;
        let Some(s) = self.aaa.sessions.get_mut(&id) else {
            return;
        };
        s.bandwidth_changes += 1;
        let r = crate::rating::BandwidthChange {
            id: format!("{}-bw{}", s.acct_id, s.bandwidth_changes),
            user: s.user.clone(),
            account: s.authorization.billing_account.clone(),
            session: s.acct_id.clone(),
            at,
            bps: if b.down_bps > 0 { b.down_bps } else { b.up_bps },
            reason: reason.into(),
        };
        self.out
            .push_back(Output::Usage(crate::rating::Record::Bandwidth(r)));
    }

    fn acct_record(
        &self,
        s: &AaaSession,
        address: Ipv4Addr,
        status: AcctStatusType,
        at: Instant,
        cause: Option<DisconnectCause>,
    ) -> AcctRecord {
        AcctRecord {
            status,
            session_id: s.acct_id.clone(),
            user_name: s.user.clone(),
            framed_ip: Some(address),
            calling_station_id: s.calling_station.clone(),
            class: s.authorization.class.clone(),
            counters: counters(&s.counters),
            session_time_s: at.since(s.start).as_secs().min(u32::MAX as u64) as u32,
            cause: cause.map(Into::into),
            event_time: (self.clock.unix_ns(at).max(0) / 1_000_000_000) as u64,
            access: s.line.clone(),
            ipv6: None,
            tunnel: None,
        }
    }

    /// A session's final record arrived: fix its cause (DISC F), send the Stop, free its
    /// address and group slot. Returns its Acct-Session-Id.
    pub(super) fn aaa_closed(&mut self, rec: &mut ClosedSession) -> Option<String> {
        let mut s = self.aaa.sessions.remove(&rec.id)?;
        if s.app_idle
            && matches!(
                rec.cause,
                DisconnectCause::IdleTimeout | DisconnectCause::ServerIdleTimeout
            )
        {
            rec.cause = DisconnectCause::ApplicationTimeout;
        }
        if let Some(ids) = self.aaa.groups.get_mut(&s.group) {
            ids.retain(|i| *i != rec.id);
            if ids.is_empty() {
                self.aaa.groups.remove(&s.group);
            }
        }
        if let Some(m) = &s.mobile_id
            && self.aaa.mobiles.get(m) == Some(&rec.id)
        {
            self.aaa.mobiles.remove(m);
        }
        if s.pooled && self.dhcp_releases(rec.address) {
            self.aaa.policy.pools.release(rec.address);
        }
        s.counters = rec.counters;
        s.start = rec.started;
        self.aaa.stats.stops += 1;
        let secs = |t: Instant| (self.clock.unix_ns(t).max(0) / 1_000_000_000) as i64;
        let usage = crate::rating::SessionUsage {
            id: s.acct_id.clone(),
            user: s.user.clone(),
            account: s.authorization.billing_account.clone(),
            session: s.acct_id.clone(),
            start: secs(rec.started),
            stop: secs(rec.stopped),
            tx_packets: rec.counters.tx_packets,
            tx_bytes: rec.counters.tx_bytes,
            rx_packets: rec.counters.rx_packets,
            rx_bytes: rec.counters.rx_bytes,
            cause: Some(
                crate::radius::dict::DisconnectCause::from(rec.cause)
                    .terminate_cause()
                    .name()
                    .to_string(),
            ),
        };
        self.out
            .push_back(Output::Usage(crate::rating::Record::Session(usage)));
        let stop = self
            .acct_record(
                &s,
                rec.address,
                AcctStatusType::Stop,
                rec.stopped,
                Some(rec.cause),
            )
            .with_ipv6(self.acct_ipv6(rec.id));
        self.out.push_back(Output::Account(stop));
        Some(s.acct_id)
    }

    /// The fast path refused to install session `id`: undo its accounting with a Stop.
    pub(super) fn aaa_install_failed(&mut self, now: Instant, id: SessionId, address: Ipv4Addr) {
        let rec = &mut ClosedSession {
            id,
            user: 0,
            channel: 0,
            address,
            started: now,
            stopped: now,
            cause: DisconnectCause::NasRequest,
            counters: SessionCounters::default(),
        };
        if let Some(s) = self.aaa.sessions.get(&id) {
            rec.started = s.start;
        }
        self.aaa_closed(rec);
    }

    /// Runs the AAA timers due at `now`: each asks the owning worker for counters.
    pub(super) fn aaa_tick(&mut self, now: Instant) {
        self.last_known_tick(now);
        while let Some(Reverse(t)) = self.aaa.timers.peek().copied() {
            if t.at > now {
                break;
            }
            self.aaa.timers.pop();
            let live = self
                .aaa
                .sessions
                .get(&t.id)
                .is_some_and(|s| s.serial == t.serial && !s.closing);
            if !live {
                continue;
            }
            let seq = self.seq();
            self.aaa.queries.insert(seq, (t.id, t.serial, t.kind));
            let worker = self.sessions.get(t.id).map_or(0, |s| s.worker);
            self.out.push_back(Output::Command(
                Target::Worker(worker),
                Command::SessionQuery { id: t.id, seq },
            ));
        }
    }

    /// Sends session `id` an Interim-Update now (after its counters are read), when its
    /// Start went out already: what it names changed (issue 16: a DHCPv6 binding's
    /// address and delegated prefix). Returns whether one was asked for.
    pub(super) fn aaa_update_now(&mut self, id: SessionId) -> bool {
        let Some(s) = self.aaa.sessions.get(&id).filter(|s| !s.closing) else {
            return false;
        };
        let serial = s.serial;
        let seq = self.seq();
        self.aaa
            .queries
            .insert(seq, (id, serial, TimerKind::Update));
        let worker = self.sessions.get(id).map_or(0, |s| s.worker);
        self.out.push_back(Output::Command(
            Target::Worker(worker),
            Command::SessionQuery { id, seq },
        ));
        true
    }

    /// A worker answered an AAA query; false when `seq` is not one.
    pub(super) fn aaa_counters(
        &mut self,
        seq: u64,
        at: Instant,
        counters: SessionCounters,
        last_seen: Instant,
    ) -> bool {
        let Some((id, serial, kind)) = self.aaa.queries.remove(&seq) else {
            return false;
        };
        let address = self.sessions.get(id).map(|o| o.spec.address);
        let policy_dormant = self.aaa.policy.dormant;
        let dormant_timeout = self.aaa.policy.dormant_timeout;
        let Some(s) = self
            .aaa
            .sessions
            .get_mut(&id)
            .filter(|s| s.serial == serial && !s.closing)
        else {
            return true;
        };
        let active = last_seen > s.last_seen;
        s.counters = counters;
        s.last_seen = s.last_seen.max(last_seen);
        if active && s.state == SesState::Dormant {
            tracing::info!(session = id, user = %s.user, "session active again");
            s.state = SesState::Act;
            s.dormant_since = None;
        }
        let s = s.clone();
        match kind {
            TimerKind::Interim => {
                if let (Some(i), Some(address)) = (s.interim, address) {
                    self.aaa.stats.interims += 1;
                    let r = self
                        .acct_record(&s, address, AcctStatusType::InterimUpdate, at, None)
                        .with_ipv6(self.acct_ipv6(id));
                    self.out.push_back(Output::Account(r));
                    if let Some(e) = self.aaa.sessions.get_mut(&id) {
                        e.spooled = s.counters;
                    }
                    // The next one at the next multiple of the interval from the start.
                    let n = at.since(s.start).as_nanos() / i.as_nanos() + 1;
                    let next = s.start + i * n as u32;
                    self.aaa.arm(next, &s, id, TimerKind::Interim);
                }
            }
            TimerKind::Update => {
                if let Some(address) = address {
                    self.aaa.stats.interims += 1;
                    let r = self
                        .acct_record(&s, address, AcctStatusType::InterimUpdate, at, None)
                        .with_ipv6(self.acct_ipv6(id));
                    self.out.push_back(Output::Account(r));
                    if let Some(e) = self.aaa.sessions.get_mut(&id) {
                        e.spooled = s.counters;
                    }
                }
            }
            TimerKind::Dormancy => {
                let Some(d) = policy_dormant else {
                    return true;
                };
                match s.state {
                    SesState::Act => {
                        let due = s.last_seen + d;
                        if at >= due {
                            self.aaa.stats.dormant += 1;
                            tracing::info!(session = id, user = %s.user, "session dormant");
                            if let Some(e) = self.aaa.sessions.get_mut(&id) {
                                e.state = SesState::Dormant;
                                e.dormant_since = Some(due);
                            }
                            self.aaa.arm(
                                at + d.min(dormant_timeout.unwrap_or(d)),
                                &s,
                                id,
                                TimerKind::Dormancy,
                            );
                        } else {
                            self.aaa.arm(due, &s, id, TimerKind::Dormancy);
                        }
                    }
                    SesState::Dormant => {
                        let since = s.dormant_since.unwrap_or(at);
                        match dormant_timeout {
                            Some(t) if at >= since + t => {
                                self.end(id, DisconnectCause::DormantTimeout)
                            }
                            Some(t) => {
                                self.aaa
                                    .arm((at + d).min(since + t), &s, id, TimerKind::Dormancy)
                            }
                            None => self.aaa.arm(at + d, &s, id, TimerKind::Dormancy),
                        }
                    }
                }
            }
        }
        true
    }

    /// Starts a last-known-counters round when one is due: every worker reports the
    /// counters of all its sessions ([`Self::aaa_last_known`]).
    fn last_known_tick(&mut self, now: Instant) {
        let Some(every) = self.aaa.policy.last_known else {
            return;
        };
        if self.aaa.next_last_known.is_some_and(|t| t > now) {
            return;
        }
        self.aaa.next_last_known = Some(now + every);
        // What a round that did not finish (a worker that did not answer) gathered.
        self.flush_last_known();
        if self.aaa.sessions.is_empty() {
            self.aaa.last_known_seq = None;
            return;
        }
        let seq = self.seq();
        self.aaa.last_known_seq = Some(seq);
        self.aaa.stats.last_known_rounds += 1;
        self.out.push_back(Output::Command(
            Target::All,
            Command::ReportSessions { seq },
        ));
    }

    /// A worker's counters for the last-known round `seq`; false when `seq` is not one.
    /// Notes the counters (and the traffic, for SES-1) and, when they moved since the
    /// spool last got them, queues them for it.
    pub(super) fn aaa_last_known(
        &mut self,
        seq: u64,
        id: SessionId,
        at: Instant,
        counters: SessionCounters,
        last_seen: Instant,
    ) -> bool {
        if self.aaa.last_known_seq != Some(seq) {
            return false;
        }
        let at_unix = (self.clock.unix_ns(at).max(0) / 1_000_000_000) as u64;
        let Some(s) = self.aaa.sessions.get_mut(&id).filter(|s| !s.closing) else {
            return true;
        };
        if last_seen > s.last_seen && s.state == SesState::Dormant {
            tracing::info!(session = id, user = %s.user, "session active again");
            s.state = SesState::Act;
            s.dormant_since = None;
        }
        s.last_seen = s.last_seen.max(last_seen);
        s.counters = counters;
        if s.spooled != counters {
            s.spooled = counters;
            self.aaa
                .last_known_batch
                .push(crate::radius::attrs::LastKnown {
                    session_id: s.acct_id.clone(),
                    counters: self::counters(&counters),
                    at_unix,
                });
        }
        true
    }

    /// A worker finished its part of a last-known round: what it reported goes to the
    /// spool in one batch. False when `seq` is not such a round.
    pub(super) fn aaa_last_known_reported(&mut self, seq: u64) -> bool {
        if self.aaa.last_known_seq != Some(seq) {
            return false;
        }
        self.flush_last_known();
        true
    }

    fn flush_last_known(&mut self) {
        if !self.aaa.last_known_batch.is_empty() {
            let batch = std::mem::take(&mut self.aaa.last_known_batch);
            self.aaa.stats.last_known += batch.len() as u64;
            self.out.push_back(Output::LastKnown(batch));
        }
    }

    /// A worker finished answering `seq` (with `sessions` counters): an AAA query for a
    /// session that is gone is dropped.
    pub(super) fn aaa_reported(&mut self, seq: u64, sessions: u32) {
        if sessions == 0 {
            self.aaa.queries.remove(&seq);
        }
    }

    /// Ends every open session of `user` (a logout by name); how many.
    pub fn logout_user(&mut self, user: &str, cause: DisconnectCause) -> Vec<SessionId> {
        let ids: Vec<SessionId> = self
            .aaa
            .sessions
            .iter()
            .filter(|(_, s)| s.user == user && !s.closing)
            .map(|(id, _)| *id)
            .collect();
        for id in &ids {
            self.end(*id, cause);
        }
        ids
    }

    /// The accounting state of session `id`.
    pub fn aaa_session(&self, id: SessionId) -> Option<&AaaSession> {
        self.aaa.sessions.get(&id)
    }

    /// What logins and accounting counted.
    pub fn aaa_stats(&self) -> AaaStats {
        self.aaa.stats
    }

    /// Address pools and gateway nodes.
    pub fn pools(&self) -> &Pools {
        &self.aaa.policy.pools
    }

    /// A gateway node's health changed: its ranges stop (or start) giving addresses.
    pub fn set_node(&mut self, name: &str, up: bool) -> bool {
        self.aaa.policy.pools.set_node(name, up)
    }

    /// Applies an authorization change to session `id` (CoA, ctl): limits, bandwidth,
    /// services and the interim interval follow.
    pub fn reauthorize(&mut self, now: Instant, id: SessionId, auth: Authorization) {
        let margin = self.aaa.policy.app_timeout_margin;
        let (limits, app_idle) = limits(&auth, margin);
        let update = SessionUpdate {
            limits: Some(limits),
            bandwidth: Some(bandwidth(&auth)),
            services: Some(self.service_set(&auth)),
            l2tp_session: None,
        };
        let default_interim = self.aaa.policy.interim;
        let Some(s) = self.aaa.sessions.get_mut(&id) else {
            return;
        };
        let interim = auth
            .interim_interval_s
            .filter(|s| *s > 0)
            .map(|s| Duration::from_secs(s.max(10) as u64))
            .or(default_interim);
        let rearm = interim != s.interim;
        s.interim = interim;
        s.app_idle = app_idle;
        s.authorization = auth;
        if rearm {
            // A new serial drops the old timers.
            s.serial = self.aaa.next_serial;
            self.aaa.next_serial += 1;
            let s = s.clone();
            if let Some(i) = interim {
                self.aaa.arm(now + i, &s, id, TimerKind::Interim);
            }
            if let Some(d) = self.aaa.policy.dormant {
                self.aaa.arm(now + d, &s, id, TimerKind::Dormancy);
            }
        }
        self.apply_update(now, id, update, "coa");
    }

    /// The open sessions a CoA or Disconnect request names: every attribute it carries
    /// must match.
    pub fn sessions_matching(&self, who: &SessionRef) -> Vec<SessionId> {
        self.aaa
            .sessions
            .iter()
            .filter(|(id, s)| {
                !s.closing
                    && who.session_id.as_ref().is_none_or(|x| *x == s.acct_id)
                    && who.user_name.as_ref().is_none_or(|x| *x == s.user)
                    && who
                        .calling_station_id
                        .as_ref()
                        .is_none_or(|x| Some(x) == s.calling_station.as_ref())
                    && who.framed_ip.is_none_or(|ip| {
                        self.sessions
                            .get(**id)
                            .is_some_and(|o| o.spec.address == ip)
                    })
            })
            .map(|(id, _)| *id)
            .collect()
    }

    /// The core as the RFC 5176 listener's session directory, at `now`.
    pub fn coa_directory(&mut self, now: Instant) -> CoaDirectory<'_> {
        CoaDirectory { core: self, now }
    }
}

/// [`SessionDirectory`] over the core: Disconnect-Request ends the matching sessions
/// (Admin-Reset), CoA-Request re-authorizes them.
pub struct CoaDirectory<'a> {
    core: &'a mut Core,
    now: Instant,
}

impl SessionDirectory for CoaDirectory<'_> {
    fn disconnect(&mut self, who: &SessionRef) -> Result<(), ErrorCause> {
        let ids = self.core.sessions_matching(who);
        if ids.is_empty() {
            return Err(ErrorCause::SessionContextNotFound);
        }
        for id in ids {
            tracing::info!(session = id, "Disconnect-Request");
            self.core.end(id, DisconnectCause::AdminReset);
        }
        Ok(())
    }

    fn change(&mut self, who: &SessionRef, change: &Change) -> Result<(), ErrorCause> {
        let ids = self.core.sessions_matching(who);
        if ids.is_empty() {
            return Err(ErrorCause::SessionContextNotFound);
        }
        // Check every session first: all change or none.
        let mut next = Vec::with_capacity(ids.len());
        for id in &ids {
            let mut a = self.core.aaa.sessions[id].authorization.clone();
            change
                .apply(&mut a)
                .map_err(|_| ErrorCause::InvalidAttributeValue)?;
            next.push((*id, a));
        }
        for (id, a) in next {
            tracing::info!(session = id, "CoA-Request applied");
            self.core.reauthorize(self.now, id, a);
        }
        Ok(())
    }
}
