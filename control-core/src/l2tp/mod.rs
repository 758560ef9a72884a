//! L2TPv2 tunnels (TUN-1..5, seed 000), sans-I/O: control connections in both roles,
//! the administration table, consolidation with session switchover, service levels
//! that follow traffic, and usage records for rating.
//!
//! [`L2tp`] takes `now` and what arrives (control messages the workers punted, their
//! per-session counters, operator requests) and returns what to do
//! ([`L2tpOutput`]): datagrams to send (the control core injects them through a worker),
//! fast-path commands (install, steer, remove a session), records. The pieces:
//! [`wire`] (codec, hidden AVPs, Challenge/Response), [`reliable`] (Ns/Nr, window,
//! retransmission, ZLB), [`consolidate`] (placement and the moves that gather a
//! customer's sessions), [`level`] (service levels from measured traffic). The shell
//! reads `[l2tp]` into [`Settings`] (`tollgate_control::config::l2tp`) and answers the
//! operator's `show tunnels`, `show tunnel ID`, `tunnel session ...`
//! (`tollgate_control::ctl::l2tp`).
//!
//! Roles: as LAC the gateway opens tunnels on its configured lines for the tunnelled
//! subscribers it places (the administration table of lines, tunnels and sessions lives
//! here) and is the one that decides moves; as LNS (`accept`) it answers, and carries
//! out a switchover a LAC asks for. A move is make-before-break: a new session in the
//! target tunnel whose ICRQ carries the Switchover AVP; once its ICCN is acknowledged the
//! subscriber is steered into it (one fast-path command) and the old session is closed
//! with a CDN; a tunnel left empty is closed with StopCCN.

pub mod call;
pub mod consolidate;
pub mod lac;
pub mod level;
pub mod reliable;
#[cfg(any(test, feature = "sim"))]
pub mod sim;
pub mod wire;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::time::Duration;

use hashbrown::HashMap;
use tollgate_dataplane::fib::NextHop;
use tollgate_dataplane::l2tp::{L2tpCounters, L2tpSessionSpec, TunnelRole};
use tollgate_dataplane::time::Instant;
use tollgate_dataplane::{Command, Forwarding};

use self::consolidate::{Bin, Capacity, Target};
use self::level::{Ladder, Tracker};
use self::reliable::{Channel, Timing};
use self::wire::{Builder, Message, attr, kind, result, vendor};
use crate::random::{Random, Seed};
use crate::rating::usage::{BandwidthChange, Record, TunnelUsage};
use crate::time::WallClock;

/// A physical line: where its tunnels go, how many, and each one's capacity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineSettings {
    /// Its name.
    pub name: String,
    /// The LNS.
    pub peer: Ipv4Addr,
    /// The LNS's port.
    pub peer_port: u16,
    /// The LNSes tried after `peer`, in order (issue 15 item 2: failover): when a tunnel
    /// to the line's LNS fails before it is up (no answer to SCCRQ, StopCCN), the line's
    /// next tunnels go to the next LNS, after the last to `peer` again.
    pub fallback: Vec<SocketAddrV4>,
    /// Tunnels it may carry.
    pub tunnels: u32,
    /// Each tunnel's capacity.
    pub capacity: Capacity,
}

/// A customer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CustomerSettings {
    /// Its name.
    pub name: String,
    /// Its billing account.
    pub account: String,
    /// The consolidation contract.
    pub consolidate: bool,
    /// The lines its tunnels may use, by index (empty: any). A customer's tunnels go to
    /// its own LNS: the lines that lead there.
    pub lines: Vec<usize>,
}

/// An IP subscriber to place in a tunnel, without PPP: what the removed IP mode placed
/// (issue 15 item 5). Only the engine's tests and the simulation ([`sim`]) place them,
/// to exercise the administration table, consolidation and levels; neither the config
/// nor the control socket can (docs/l2tp.md, "Migration from IP subscribers").
#[cfg(any(test, feature = "sim"))]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelRequest {
    /// Its address.
    pub address: Ipv4Addr,
    /// Its customer's name.
    pub customer: String,
    /// Its user name.
    pub user: String,
    /// Its service level, bit/s.
    pub level: u64,
}

/// Everything the engine is set up with.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Host Name AVP.
    pub host_name: String,
    /// Tunnel secret.
    pub secret: Option<Vec<u8>>,
    /// Hide Calling Number and the vendor AVPs.
    pub hide_avps: bool,
    /// Accept tunnels (LNS).
    pub accept: bool,
    /// Accept only from these (empty: any).
    pub accept_from: Vec<Ipv4Addr>,
    /// Our session ids are 1 to this.
    pub max_sessions: u16,
    /// Tunnels held at once (any state); an SCCRQ beyond is refused.
    pub max_tunnels: u16,
    /// Reliable delivery.
    pub timing: Timing,
    /// HELLO after this long without a message.
    pub hello_interval: Duration,
    /// Wait before placing a subscriber whose tunnel failed; doubled after each failure
    /// in a row, up to `redial_max`.
    pub redial: Duration,
    /// The longest wait before placing a subscriber again; a session that stays up this
    /// long resets the wait to `redial`.
    pub redial_max: Duration,
    /// At shutdown, how long the shell waits for the peers to acknowledge the StopCCNs.
    pub shutdown_wait: Duration,
    /// How often counters are read.
    pub sample_interval: Duration,
    /// Interim tunnel-use records.
    pub usage_interval: Duration,
    /// Workers answering each counter report.
    pub workers: u16,
    /// Keys the CSPRNG of tunnel ids, Challenges and Random Vectors (from the OS in the
    /// daemon).
    pub seed: Seed,
    /// Lines (LAC).
    pub lines: Vec<LineSettings>,
    /// Customers.
    pub customers: Vec<CustomerSettings>,
    /// Service levels.
    pub ladder: Ladder,
    /// LAC: PPPoE subscribers whose user name has one of these realms are switched into
    /// a tunnel to the realm's LNS (`[[l2tp.lac_realm]]`).
    pub lac_realms: Vec<lac::LacRealm>,
    /// LNS: accept calls that carry the Tollgate Subscriber Address AVP, IP subscribers
    /// without PPP (the removed IP mode, issue 15 item 5). Off (the daemon's config,
    /// [`Settings::new`]): such an ICRQ gets a CDN. On only for the engine's tests and
    /// the simulation, whose LAC still places IP subscribers ([`ChannelRequest`]).
    pub ip_calls: bool,
}

impl Settings {
    /// Settings for tests and tools: a LAC or LNS with default timers and no lines.
    pub fn new(host_name: &str, seed: Seed) -> Settings {
        Settings {
            host_name: host_name.into(),
            secret: None,
            hide_avps: false,
            accept: false,
            accept_from: Vec::new(),
            max_sessions: 4096,
            max_tunnels: 1024,
            timing: Timing::default(),
            hello_interval: Duration::from_secs(60),
            redial: Duration::from_secs(10),
            redial_max: Duration::from_secs(300),
            shutdown_wait: Duration::from_secs(2),
            sample_interval: Duration::from_secs(1),
            usage_interval: Duration::from_secs(900),
            workers: 1,
            seed,
            lines: Vec::new(),
            customers: Vec::new(),
            ladder: Ladder::default(),
            lac_realms: Vec::new(),
            ip_calls: false,
        }
    }
}

/// What [`L2tp::remove`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Removed {
    /// A tunnelled subscriber of this LAC, by id.
    Subscriber(u32),
    /// A session a LAC opened to this LNS.
    Session {
        /// Our session id.
        session: u16,
        /// Our tunnel id.
        tunnel: u16,
    },
}

/// What the engine wants done.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum L2tpOutput {
    /// Send a datagram from `local:1701` to `peer`.
    Send {
        /// Our address.
        local: Ipv4Addr,
        /// The peer.
        peer: SocketAddrV4,
        /// The UDP payload.
        bytes: Vec<u8>,
    },
    /// A command for every worker.
    Command(Command),
    /// A usage record for rating (TUN-5, TUN-4).
    Record(Record),
    /// LNS: a PPP call is connected (ICCN); the gateway terminates its PPP.
    Call(call::Call),
    /// LNS: a PPP call ended (CDN either way, its tunnel gone): the gateway forgets its
    /// PPP session and removes its subscriber.
    CallEnded {
        /// Our session id.
        session: u16,
        /// Why.
        why: String,
    },
    /// LAC: a switched call is up (its ICCN acknowledged).
    Switched {
        /// Our session id.
        session: u16,
        /// Our tunnel id.
        tunnel: u16,
        /// The LNS's session id.
        peer_session: u16,
        /// The LNS's tunnel id.
        peer_tunnel: u16,
        /// The LNS.
        lns: SocketAddrV4,
        /// The LNS's Host Name.
        lns_host: String,
    },
    /// LAC: a switched call was moved to another tunnel (a consolidation switchover,
    /// TUN-3): the gateway knows it as `to` from now on.
    SwitchMoved {
        /// Our session id it had.
        from: u16,
        /// Our session id it has now.
        to: u16,
        /// Our tunnel id now.
        tunnel: u16,
        /// The LNS's tunnel id now.
        peer_tunnel: u16,
        /// The LNS's session id now.
        peer_session: u16,
    },
    /// LNS: a PPP call was moved by its LAC to another L2TP session (a switchover with
    /// Tollgate's Switchover AVP): its PPP session goes on, re-bound to `to`, without
    /// renegotiation.
    CallMoved {
        /// Our session id it had.
        from: u16,
        /// Our session id it has now.
        to: u16,
        /// Our tunnel id now.
        tunnel: u16,
    },
    /// LAC: a switched call ended, or failed before it was up (CDN either way, the
    /// tunnel refused, stopped or dead).
    SwitchEnded {
        /// Our session id.
        session: u16,
        /// True when it had been up.
        was_up: bool,
        /// Why.
        why: String,
        /// Its counters at the last sample (`l2tp.sample_interval`), for its Stop.
        counters: L2tpCounters,
    },
}

/// Why a session `tunnel session remove` ended says (a switched call's Stop is then the
/// operator's, Admin-Reset).
pub const REMOVED_BY_OPERATOR: &str = "removed by the operator";

/// What the engine counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Control messages received.
    pub received: u64,
    /// Messages that could not be decoded.
    pub malformed: u64,
    /// For a tunnel we do not have.
    pub unknown_tunnel: u64,
    /// From an address other than the tunnel's peer.
    pub wrong_peer: u64,
    /// Tunnels refused (not accepting, not allowed, bad version, no secret, the limit).
    pub tunnels_refused: u64,
    /// Of those, refused because `l2tp.max_tunnels` tunnels were held (or, as a LAC,
    /// tunnels not opened for it).
    pub tunnel_limit: u64,
    /// Sessions refused or not started because every session id was in use
    /// (`l2tp.max_sessions`).
    pub session_limit: u64,
    /// Subscribers placed again after a failure (each wait doubling up to
    /// `redial_max`).
    pub redials: u64,
    /// Challenge/Response failures.
    pub auth_failures: u64,
    /// Unexpected messages (answered with StopCCN or CDN, or dropped).
    pub unexpected: u64,
    /// Unknown mandatory AVPs or message types (answered with StopCCN or CDN).
    pub unknown_mandatory: u64,
    /// Tunnels established.
    pub tunnels_up: u64,
    /// Tunnels closed (StopCCN either way).
    pub tunnels_down: u64,
    /// Tunnels whose peer stopped answering.
    pub tunnels_dead: u64,
    /// A line's LNS failed before its tunnel was up (no answer to SCCRQ, StopCCN): the
    /// line went on to its next LNS (`[[l2tp.line]] peer` with several).
    pub lns_failovers: u64,
    /// Sessions established.
    pub sessions_up: u64,
    /// Sessions closed.
    pub sessions_down: u64,
    /// Moves started.
    pub moves_started: u64,
    /// Moves completed (subscriber steered into the new session).
    pub moves_done: u64,
    /// Moves abandoned (the peer refused, a tunnel failed).
    pub moves_failed: u64,
    /// Tunnels of the administration table to an LNS that is not a Tollgate (no Vendor
    /// Name `Tollgate` in its SCCRP): no switchover with it, so consolidation is off for
    /// them.
    pub consolidation_off: u64,
    /// LNS: calls refused because they carried the Subscriber Address AVP (an IP
    /// subscriber of the removed IP mode, from an older Tollgate LAC).
    pub ip_calls_refused: u64,
    /// Service-level changes.
    pub level_changes: u64,
    /// Commands the fast path refused.
    pub fast_path_refused: u64,
}

/// Which end of a tunnel we are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// We opened it (LAC).
    Lac,
    /// The peer opened it (LNS).
    Lns,
}

/// A tunnel's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TunnelState {
    /// LNS: SCCRQ received, not answered yet.
    Idle,
    /// LAC: SCCRQ sent.
    WaitReply,
    /// LNS: SCCRP sent.
    WaitConnect,
    /// Up.
    Established,
    /// StopCCN sent, waiting for its acknowledgement.
    Stopping,
    /// StopCCN received: kept until `until` to acknowledge retransmissions.
    Closed {
        /// When it is forgotten.
        until: Instant,
    },
}

impl TunnelState {
    /// The operator's name.
    pub fn name(self) -> &'static str {
        match self {
            TunnelState::Idle => "idle",
            TunnelState::WaitReply => "wait-ctl-reply",
            TunnelState::WaitConnect => "wait-ctl-conn",
            TunnelState::Established => "established",
            TunnelState::Stopping => "stopping",
            TunnelState::Closed { .. } => "closed",
        }
    }

    /// True while the tunnel is not going down or gone (it carries or will carry
    /// sessions).
    pub fn live(self) -> bool {
        matches!(
            self,
            TunnelState::Idle
                | TunnelState::WaitReply
                | TunnelState::WaitConnect
                | TunnelState::Established
        )
    }
}

/// A tunnel.
#[derive(Debug)]
pub struct Tunnel {
    /// Our tunnel id.
    pub id: u16,
    /// The peer's tunnel id.
    pub peer_id: u16,
    /// The peer.
    pub peer: SocketAddrV4,
    /// Our address.
    pub local: Ipv4Addr,
    /// Our role.
    pub role: Role,
    /// State.
    pub state: TunnelState,
    /// Reliable delivery.
    pub chan: Channel,
    /// The peer's Host Name.
    pub peer_host: String,
    /// LAC, switched calls: the Tunnel-Assignment-Id the tunnel was opened for (calls to
    /// the same LNS and Assignment-Id share it).
    pub assignment: String,
    /// The peer's Vendor Name. Tollgate's vendor AVPs (and so switchover) are sent only
    /// to a peer that calls itself Tollgate: some implementations read a vendor AVP by
    /// its attribute number alone, as the IETF AVP of that number.
    pub peer_vendor: String,
    /// The line (LAC).
    pub line: Option<usize>,
    /// The customer (LAC).
    pub customer: Option<usize>,
    /// The customer's name (LAC; LNS from the Customer AVP).
    pub customer_name: String,
    /// Its capacity (LAC: the line's).
    pub capacity: Capacity,
    /// Our challenge, until the response is checked.
    challenge: Option<[u8; 16]>,
    /// LAC, switched calls: the tunnel's own secret (RADIUS Tunnel-Password, the realm's
    /// `secret`) instead of `l2tp.secret`.
    pub secret: Option<Vec<u8>>,
    /// When it was created.
    pub created: Instant,
    /// When it was established.
    pub established: Option<Instant>,
    /// Last message from the peer.
    pub last_rx: Instant,
    /// Its sessions.
    pub sessions: BTreeSet<u16>,
    /// Start of the tunnel-use period not yet recorded.
    usage_mark: Instant,
    /// Why it stopped.
    pub stop_reason: Option<String>,
}

impl Tunnel {
    /// True when the peer announced Vendor Name `Tollgate`: it reads Tollgate's vendor
    /// AVPs, and carries out a switchover.
    pub fn peer_is_tollgate(&self) -> bool {
        self.peer_vendor == VENDOR_NAME
    }
}

/// Our Vendor Name AVP.
pub const VENDOR_NAME: &str = "Tollgate";

/// A session's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionState {
    /// LAC: waiting for its tunnel.
    Pending,
    /// LAC: ICRQ sent.
    WaitReply,
    /// LNS: ICRP sent.
    WaitConnect,
    /// LAC: ICCN sent, not yet acknowledged.
    Connecting,
    /// Up.
    Established,
    /// CDN sent, waiting for its acknowledgement.
    Closing,
}

impl SessionState {
    /// The operator's name.
    pub fn name(self) -> &'static str {
        match self {
            SessionState::Pending => "pending",
            SessionState::WaitReply => "wait-reply",
            SessionState::WaitConnect => "wait-connect",
            SessionState::Connecting => "connecting",
            SessionState::Established => "established",
            SessionState::Closing => "closing",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AckAction {
    /// ICCN acknowledged: steer the subscriber into the session.
    Activate,
    /// CDN acknowledged: forget the session.
    Release,
}

/// An L2TP session.
#[derive(Debug)]
pub struct Session {
    /// Our session id.
    pub id: u16,
    /// Our tunnel id.
    pub tunnel: u16,
    /// The peer's session id (0 until known).
    pub peer_id: u16,
    /// State.
    pub state: SessionState,
    /// The subscriber's address (unspecified when unknown).
    pub subscriber: Ipv4Addr,
    /// The tunnelled subscriber (LAC).
    pub owner: Option<u32>,
    /// LNS: a PPP call (opened without Tollgate's Subscriber Address AVP), terminated by
    /// the gateway's PPP engine.
    pub ppp: bool,
    /// Calling Number (AVP 22) of the ICRQ (LNS).
    pub calling_number: Option<String>,
    /// Service level, bit/s.
    pub level: u64,
    /// The session it replaces (a move).
    pub replaces: Option<u16>,
    /// When it was created.
    pub created: Instant,
    /// When it was established.
    pub established: Option<Instant>,
    /// Counters from the fast path (all workers), at the last sample.
    pub counters: L2tpCounters,
    ack: Option<(u16, AckAction)>,
    last_bytes: u64,
    /// LAC: the PPPoE subscriber switched into this session.
    pub switched: Option<Box<lac::SwitchedCall>>,
    /// A switched or PPP call moved out of this session (TUN-3): the session that
    /// carries it now.
    pub moved_to: Option<u16>,
    /// LAC, switched call: what the sessions it was moved from carried (its counters
    /// are these plus its own).
    pub carried: L2tpCounters,
    /// LAC, a switched call's old session: forgotten once the counter sample after
    /// this one is in (what it carried last is added to its successor).
    release_after: Option<u64>,
}

/// A tunnelled subscriber on the LAC: a row of the administration table.
#[derive(Debug)]
pub struct Subscriber {
    /// Its id.
    pub id: u32,
    /// Its address.
    pub address: Ipv4Addr,
    /// Its customer.
    pub customer: usize,
    /// Its user name.
    pub user: String,
    /// Service level, bit/s.
    pub level: u64,
    /// The session carrying it.
    pub session: Option<u16>,
    /// The session it is moving to.
    pub moving_to: Option<u16>,
    /// When it is placed again (after a failure).
    pub retry_at: Option<Instant>,
    /// Failures in a row (set-up failed, session or tunnel lost): the redial wait is
    /// `redial` doubled this many times less one, at most `redial_max`.
    pub failures: u32,
    /// Since when a session has carried it without a break.
    pub up_since: Option<Instant>,
    /// Its traffic.
    pub tracker: Tracker,
    /// When it was opened.
    pub started: Instant,
    /// A PPPoE subscriber's switched call (a `[[l2tp.lac_realm]]` with a customer): its
    /// sessions switch the PPP of this PPPoE leg (no address here: IPCP is the LNS's).
    pub call: Option<Box<lac::SwitchedCall>>,
    /// A switched call: LNSes that failed its set-up so far (each time it is placed
    /// again, on the line's next LNS, while its customer's lines have one left).
    pub lns_failures: u32,
    /// A switched call being placed on the next LNS: the session id the gateway knows it
    /// by (told the new one once it is placed, or the call's end if none can be).
    pub failover_from: Option<u16>,
}

#[derive(Debug, Default)]
struct Sample {
    seq: u64,
    waiting: u16,
    next_at: Option<Instant>,
    totals: HashMap<u16, L2tpCounters>,
}

/// The L2TP engine.
#[derive(Debug)]
pub struct L2tp {
    s: Settings,
    fwd: Arc<Forwarding>,
    clock: WallClock,
    tunnels: BTreeMap<u16, Tunnel>,
    sessions: BTreeMap<u16, Session>,
    free_sessions: Vec<u16>,
    subscribers: BTreeMap<u32, Subscriber>,
    by_address: HashMap<Ipv4Addr, u32>,
    next_subscriber: u32,
    replan_due: BTreeSet<usize>,
    out: VecDeque<L2tpOutput>,
    rng: Random,
    serial: u32,
    sample: Sample,
    stats: Stats,
    /// Shutting down: no new tunnel or session.
    closing: bool,
    /// When a limit was last said at WARN (at most one line per [`LIMIT_LOG_EVERY`]).
    limit_logged: Option<Instant>,
    /// Per line, which of its LNSes new tunnels go to (0: `peer`, then `fallback`).
    line_lns: Vec<usize>,
}

/// The CDN's message to an ICRQ with the Subscriber Address AVP (the removed IP mode).
pub const IP_CALL_REFUSED: &str =
    "IP subscribers without PPP are not accepted (the IP mode was removed): send PPP calls";

/// The least time between two WARN lines about a limit reached.
const LIMIT_LOG_EVERY: Duration = Duration::from_secs(10);

/// A subscriber's address, for the log.
fn o_address(l: &L2tp, id: u32) -> String {
    l.subscribers
        .get(&id)
        .map_or_else(|| "-".into(), |o| o.address.to_string())
}

/// Our session ids, lowest first.
fn session_ids(max: u16) -> Vec<u16> {
    (1..=max.max(1)).rev().collect()
}

impl L2tp {
    /// An engine.
    pub fn new(_now: Instant, s: Settings, fwd: Arc<Forwarding>, clock: WallClock) -> L2tp {
        L2tp {
            free_sessions: session_ids(s.max_sessions),
            rng: Random::new(&s.seed),
            s,
            fwd,
            clock,
            tunnels: BTreeMap::new(),
            sessions: BTreeMap::new(),
            subscribers: BTreeMap::new(),
            by_address: HashMap::new(),
            next_subscriber: 1,
            replan_due: BTreeSet::new(),
            out: VecDeque::new(),
            serial: 0,
            sample: Sample::default(),
            stats: Stats::default(),
            closing: false,
            limit_logged: None,
            line_lns: Vec::new(),
        }
    }

    /// Uses a new forwarding snapshot (for the local address of new tunnels).
    pub fn set_forwarding(&mut self, fwd: Arc<Forwarding>) {
        self.fwd = fwd;
    }

    // ---- views (ctl) ----

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.s
    }

    /// Tunnels by our id.
    pub fn tunnels(&self) -> &BTreeMap<u16, Tunnel> {
        &self.tunnels
    }

    /// Sessions by our id.
    pub fn sessions(&self) -> &BTreeMap<u16, Session> {
        &self.sessions
    }

    /// Tunnelled subscribers by id.
    pub fn subscribers(&self) -> &BTreeMap<u32, Subscriber> {
        &self.subscribers
    }

    /// What the engine counted.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// True when nothing is changing: every tunnelled subscriber is carried, no session or
    /// tunnel is being set up or torn down, and no consolidation is pending.
    pub fn is_settled(&self) -> bool {
        self.replan_due.is_empty()
            && self
                .subscribers
                .values()
                .all(|o| o.session.is_some() && o.moving_to.is_none())
            && self
                .sessions
                .values()
                .all(|s| s.state == SessionState::Established)
            && self.tunnels.values().all(|t| match t.state {
                TunnelState::Established => t.role == Role::Lns || !t.sessions.is_empty(),
                TunnelState::Closed { .. } => true,
                _ => false,
            })
    }

    /// The subscriber named by `key`: its id or its address.
    pub fn find(&self, key: &str) -> Result<u32, String> {
        if let Ok(ip) = key.parse::<Ipv4Addr>() {
            return self
                .by_address
                .get(&ip)
                .copied()
                .ok_or_else(|| format!("no tunnelled subscriber has address {ip}"));
        }
        match key.parse::<u32>() {
            Ok(id) if self.subscribers.contains_key(&id) => Ok(id),
            _ => Err(format!(
                "no tunnelled subscriber {key:?}: give its id or its address"
            )),
        }
    }

    // ---- operator and config requests ----

    /// Places an IP subscriber in a tunnel (LAC), without PPP: the removed IP mode, kept
    /// for the engine's tests and the simulation only ([`ChannelRequest`]).
    #[cfg(any(test, feature = "sim"))]
    pub fn open(&mut self, now: Instant, req: ChannelRequest) -> Result<u32, String> {
        let customer = self
            .s
            .customers
            .iter()
            .position(|c| c.name == req.customer)
            .ok_or_else(|| format!("no customer is named {:?}", req.customer))?;
        if self.s.lines.is_empty() {
            return Err("no [[l2tp.line]] to open tunnels on".into());
        }
        if self.by_address.contains_key(&req.address) {
            return Err(format!("{} is already tunnelled", req.address));
        }
        if req.level == 0 {
            return Err("the service level must not be 0".into());
        }
        let id = self.next_subscriber;
        self.next_subscriber += 1;
        self.subscribers.insert(
            id,
            Subscriber {
                id,
                address: req.address,
                customer,
                user: req.user,
                level: req.level,
                session: None,
                moving_to: None,
                retry_at: None,
                failures: 0,
                up_since: None,
                tracker: Tracker::default(),
                started: now,
                call: None,
                lns_failures: 0,
                failover_from: None,
            },
        );
        self.by_address.insert(req.address, id);
        self.bandwidth_record(now, id, "start");
        self.place(now, id);
        self.settle(now);
        Ok(id)
    }

    /// Ends a tunnelled subscriber (LAC): its sessions are closed, and its customer's
    /// sessions consolidated into the room it leaves.
    pub fn close(&mut self, now: Instant, key: &str) -> Result<u32, String> {
        let id = self.find(key)?;
        let Some(sub) = self.subscribers.remove(&id) else {
            return Err("gone".into());
        };
        self.by_address.remove(&sub.address);
        self.level_record(now, &sub, 0, "stop");
        let freed = sub
            .session
            .and_then(|s| self.sessions.get(&s))
            .map(|s| s.tunnel);
        for s in [sub.session, sub.moving_to].into_iter().flatten() {
            self.close_session(now, s, result::CDN_ADMIN, "subscriber logged out");
        }
        tracing::info!(subscriber = id, address = %sub.address, user = %sub.user, "tunnelled subscriber ended");
        self.replan(now, sub.customer, freed);
        self.settle(now);
        Ok(id)
    }

    /// Ends what the operator names (`tunnel session remove`): a tunnelled subscriber of
    /// this LAC (its id or address, as [`Self::close`]) or else a session a LAC opened to
    /// us (LNS: our session id, or the subscriber's address the LAC gave). An LNS session
    /// is closed with a CDN (result 3, administrative) and leaves the fast path at once;
    /// the LAC decides whether to dial it again.
    pub fn remove(&mut self, now: Instant, key: &str) -> Result<Removed, String> {
        // A switched call of the administration table, by our session id.
        if let Some((sid, tid, owner)) = key.parse::<u16>().ok().and_then(|k| {
            let s = self.sessions.get(&k).filter(|s| s.switched.is_some())?;
            Some((s.id, s.tunnel, s.owner?))
        }) {
            self.end_owned_call(now, owner, None, REMOVED_BY_OPERATOR);
            self.settle(now);
            return Ok(Removed::Session {
                session: sid,
                tunnel: tid,
            });
        }
        let lac_error = match self.close(now, key) {
            Ok(id) => return Ok(Removed::Subscriber(id)),
            Err(e) => e,
        };
        let by_address = key.parse::<Ipv4Addr>().ok();
        let by_id = key.parse::<u16>().ok();
        let found = self
            .sessions
            .values()
            .filter(|s| {
                s.owner.is_none() && s.state != SessionState::Closing && s.moved_to.is_none()
            })
            .find(|s| {
                by_address.is_some_and(|a| a == s.subscriber && !a.is_unspecified())
                    || by_id == Some(s.id)
            })
            .map(|s| (s.id, s.tunnel));
        let Some((sid, tid)) = found else {
            return Err(if self.sessions.values().any(|s| s.owner.is_none()) {
                format!("{lac_error}, and no session a LAC opened has id or address {key}")
            } else {
                lac_error
            });
        };
        self.close_session(now, sid, result::CDN_ADMIN, REMOVED_BY_OPERATOR);
        tracing::info!(
            session = sid,
            tunnel = tid,
            "L2TP session removed by the operator"
        );
        self.after(now, tid);
        self.settle(now);
        Ok(Removed::Session {
            session: sid,
            tunnel: tid,
        })
    }

    /// LNS: the data message that carries PPP frame `protocol` + `packet` on PPP call
    /// `session`, with our address and the LAC's (`None` for no such call).
    pub fn ppp_frame(
        &self,
        session: u16,
        protocol: u16,
        packet: &[u8],
    ) -> Option<(Ipv4Addr, SocketAddrV4, Vec<u8>)> {
        let s = self.sessions.get(&session).filter(|s| s.ppp)?;
        let t = self.tunnels.get(&s.tunnel)?;
        let bytes = call::data_message(t.peer_id, s.peer_id, protocol, packet);
        Some((t.local, t.peer, bytes))
    }

    /// LNS: PPP call `session`'s subscriber address, once IPCP opened (or `None` when it
    /// closed): the fast path checks the source of what comes out of the session.
    pub fn set_call_address(&mut self, session: u16, address: Option<Ipv4Addr>) {
        let Some(s) = self.sessions.get_mut(&session).filter(|s| s.ppp) else {
            return;
        };
        s.subscriber = address.unwrap_or(Ipv4Addr::UNSPECIFIED);
        if s.state != SessionState::Closing
            && let Some(spec) = self.spec(session)
        {
            self.out
                .push_back(L2tpOutput::Command(Command::L2tpSessionSet(spec)));
        }
    }

    /// LNS: ends PPP call `session` from our side with a CDN (result 3, `why`); the
    /// gateway sent the LCP Terminate-Request first.
    pub fn end_call(&mut self, now: Instant, session: u16, why: &str) {
        let Some(tid) = self
            .sessions
            .get(&session)
            .filter(|s| s.ppp && s.state != SessionState::Closing)
            .map(|s| s.tunnel)
        else {
            return;
        };
        self.close_session(now, session, result::CDN_ADMIN, why);
        self.after(now, tid);
        self.settle(now);
    }

    /// Sets a subscriber's service level (operator, or TUN-4).
    pub fn set_level(&mut self, now: Instant, key: &str, bps: u64) -> Result<u32, String> {
        if bps == 0 {
            return Err("the service level must not be 0".into());
        }
        let id = self.find(key)?;
        self.change_level(now, id, bps, "ctl");
        self.settle(now);
        Ok(id)
    }

    /// Closes every tunnel (the gateway is stopping): a StopCCN (result 6, shutting down)
    /// to each peer, which clears the tunnel's sessions on both sides (RFC 2661 §5.7:
    /// no CDN is needed). The shell keeps the workers running until
    /// [`Self::shutdown_done`] or `shutdown_wait`. No tunnel or session is opened after.
    pub fn shutdown(&mut self, now: Instant) {
        self.closing = true;
        let ids: Vec<u16> = self.tunnels.keys().copied().collect();
        for t in ids {
            if self.tunnels.get(&t).is_some_and(|t| t.state.live()) {
                self.stop_tunnel(now, t, result::SHUTTING_DOWN, 0, "shutting down");
                self.after(now, t);
            }
        }
        // Every subscriber's service level ends with it (rating's bandwidth records).
        let subs: Vec<u32> = self.subscribers.keys().copied().collect();
        for id in subs {
            if let Some(o) = self.subscribers.remove(&id) {
                self.by_address.remove(&o.address);
                self.level_record(now, &o, 0, "stop");
            }
        }
    }

    /// True once every StopCCN we sent was acknowledged (or its peer declared dead).
    pub fn shutdown_done(&self) -> bool {
        !self
            .tunnels
            .values()
            .any(|t| t.state == TunnelState::Stopping)
    }

    // ---- inputs ----

    /// A control message from `src` to our address `dst`.
    pub fn on_datagram(&mut self, now: Instant, src: SocketAddrV4, dst: Ipv4Addr, payload: &[u8]) {
        self.stats.received += 1;
        // The tunnel id (after flags and length) names the secret hidden AVPs are under.
        let secret = payload
            .get(4..6)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
            .and_then(|t| self.secret_of(t).map(<[u8]>::to_vec));
        let m = match wire::decode(payload, secret.as_deref()) {
            Ok(m) => m,
            Err(e) => {
                self.stats.malformed += 1;
                tracing::debug!(peer = %src, error = %e, "L2TP control message dropped");
                return;
            }
        };
        let tid = if m.tunnel != 0 {
            match self.tunnels.get(&m.tunnel) {
                Some(t) if *t.peer.ip() == *src.ip() => m.tunnel,
                Some(_) => {
                    self.stats.wrong_peer += 1;
                    return;
                }
                None => {
                    self.stats.unknown_tunnel += 1;
                    tracing::debug!(peer = %src, tunnel = m.tunnel, "L2TP message for a tunnel we do not have");
                    return;
                }
            }
        } else if m.kind() == kind::SCCRQ {
            let Some(peer_id) = m.u16(attr::ASSIGNED_TUNNEL_ID).filter(|t| *t != 0) else {
                self.stats.malformed += 1;
                return;
            };
            let existing = self
                .tunnels
                .values()
                .find(|t| t.role == Role::Lns && t.peer_id == peer_id && t.peer.ip() == src.ip());
            match existing {
                Some(t) => t.id,
                None if self.closing => {
                    self.refuse_sccrq(src, dst, &m, result::SHUTTING_DOWN, 0, "shutting down");
                    return;
                }
                None if self.tunnels.len() >= self.s.max_tunnels as usize => {
                    self.stats.tunnel_limit += 1;
                    let why = "no tunnel left (l2tp.max_tunnels)";
                    self.refuse_sccrq(
                        src,
                        dst,
                        &m,
                        result::GENERAL_ERROR,
                        result::ERR_RESOURCES,
                        why,
                    );
                    self.limit_reached(now, "tunnels", self.stats.tunnel_limit);
                    return;
                }
                None => match self.new_tunnel(now, Role::Lns, src, dst) {
                    Some(t) => t,
                    None => {
                        self.stats.tunnel_limit += 1;
                        let why = "no tunnel id free";
                        self.refuse_sccrq(
                            src,
                            dst,
                            &m,
                            result::GENERAL_ERROR,
                            result::ERR_RESOURCES,
                            why,
                        );
                        return;
                    }
                },
            }
        } else {
            self.stats.unknown_tunnel += 1;
            return;
        };
        let Some(t) = self.tunnels.get_mut(&tid) else {
            return;
        };
        if t.peer.port() != src.port() {
            t.peer = src;
        }
        t.last_rx = now;
        for msg in t.chan.receive(now, m) {
            self.handle(now, tid, msg);
            if !self.tunnels.contains_key(&tid) {
                break;
            }
        }
        self.after(now, tid);
        self.settle(now);
    }

    /// A worker's counters of session `session` for the current sample.
    pub fn on_counters(&mut self, seq: u64, session: u16, c: L2tpCounters) {
        if seq != self.sample.seq {
            return;
        }
        let t = self.sample.totals.entry(session).or_default();
        t.encap_packets += c.encap_packets;
        t.encap_bytes += c.encap_bytes;
        t.decap_packets += c.decap_packets;
        t.decap_bytes += c.decap_bytes;
    }

    /// A worker finished a counter report.
    pub fn on_reported(&mut self, now: Instant, seq: u64) {
        if seq != self.sample.seq || self.sample.waiting == 0 {
            return;
        }
        self.sample.waiting -= 1;
        if self.sample.waiting == 0 {
            self.finish_sample(now);
            self.settle(now);
        }
    }

    /// The fast path refused a command about `session`.
    pub fn on_refused(&mut self, session: u16) {
        self.stats.fast_path_refused += 1;
        tracing::warn!(
            session,
            "the fast path refused an L2TP session (l2tp.max_sessions?)"
        );
    }

    /// Runs the timers due at `now`.
    pub fn tick(&mut self, now: Instant) {
        let ids: Vec<u16> = self.tunnels.keys().copied().collect();
        for tid in ids {
            let Some(t) = self.tunnels.get_mut(&tid) else {
                continue;
            };
            match t.state {
                TunnelState::Closed { until } if until <= now => {
                    self.tunnels.remove(&tid);
                    continue;
                }
                TunnelState::Established
                    if t.chan.idle() && now >= t.last_rx + self.s.hello_interval =>
                {
                    t.last_rx = now;
                    let b = Builder::new(kind::HELLO, t.peer_id, 0).finish();
                    t.chan.send(b);
                }
                _ => {}
            }
            if let Some(t) = self.tunnels.get(&tid)
                && t.established.is_some()
                && t.customer.is_some()
                && t.state.live()
                && now >= t.usage_mark + self.s.usage_interval
            {
                self.usage_record(now, tid);
            }
            self.after(now, tid);
        }
        let due: Vec<u32> = self
            .subscribers
            .values()
            .filter(|s| s.retry_at.is_some_and(|t| t <= now))
            .map(|s| s.id)
            .collect();
        for id in due {
            if let Some(s) = self.subscribers.get_mut(&id) {
                s.retry_at = None;
            }
            self.place(now, id);
        }
        if self.sample.next_at.is_some_and(|t| t <= now) || self.sample.next_at.is_none() {
            self.start_sample(now);
        }
        self.settle(now);
    }

    /// When [`Self::tick`] next has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let tunnels = self.tunnels.values().flat_map(|t| {
            let hello = (t.state == TunnelState::Established && t.chan.idle())
                .then(|| t.last_rx + self.s.hello_interval);
            let closed = match t.state {
                TunnelState::Closed { until } => Some(until),
                _ => None,
            };
            let usage = (t.established.is_some() && t.customer.is_some() && t.state.live())
                .then(|| t.usage_mark + self.s.usage_interval);
            [t.chan.poll_timeout(), hello, closed, usage]
        });
        let retries = self.subscribers.values().map(|s| s.retry_at);
        let sample = if self.sessions.is_empty() && self.sample.waiting == 0 {
            None
        } else {
            Some(self.sample.next_at.unwrap_or(Instant::ZERO))
        };
        tunnels.chain(retries).chain([sample]).flatten().min()
    }

    /// The next thing to do.
    pub fn poll_output(&mut self) -> Option<L2tpOutput> {
        self.out.pop_front()
    }

    // ---- tunnels ----

    fn random(&mut self) -> u64 {
        self.rng.u64()
    }

    fn random16(&mut self) -> [u8; 16] {
        self.rng.bytes16()
    }

    /// Our address toward `peer`.
    fn local_for(&self, peer: Ipv4Addr) -> Option<Ipv4Addr> {
        match self.fwd.route(peer)? {
            NextHop::Connected(side) | NextHop::Via { side, .. } => {
                Some(self.fwd.side(side).address)
            }
            NextHop::Local | NextHop::Broadcast => None,
        }
    }

    fn new_tunnel(
        &mut self,
        now: Instant,
        role: Role,
        peer: SocketAddrV4,
        local: Ipv4Addr,
    ) -> Option<u16> {
        let mut id = None;
        for _ in 0..64 {
            let c = self.random() as u16;
            if c != 0 && !self.tunnels.contains_key(&c) {
                id = Some(c);
                break;
            }
        }
        let id = id?;
        self.tunnels.insert(
            id,
            Tunnel {
                id,
                peer_id: 0,
                peer,
                local,
                role,
                state: match role {
                    Role::Lac => TunnelState::WaitReply,
                    Role::Lns => TunnelState::Idle,
                },
                chan: Channel::new(self.s.timing),
                peer_host: String::new(),
                peer_vendor: String::new(),
                assignment: String::new(),
                line: None,
                customer: None,
                customer_name: String::new(),
                capacity: Capacity::default(),
                challenge: None,
                secret: None,
                created: now,
                established: None,
                last_rx: now,
                sessions: BTreeSet::new(),
                usage_mark: now,
                stop_reason: None,
            },
        );
        Some(id)
    }

    /// Answers an SCCRQ we keep no tunnel for with a StopCCN sent once, without state (a
    /// flood of SCCRQs costs no memory); the LAC's retransmissions get one each.
    fn refuse_sccrq(
        &mut self,
        src: SocketAddrV4,
        dst: Ipv4Addr,
        m: &Message,
        res: u16,
        err: u16,
        why: &str,
    ) {
        self.stats.tunnels_refused += 1;
        let Some(peer_id) = m.u16(attr::ASSIGNED_TUNNEL_ID) else {
            return;
        };
        let mut bytes = Builder::new(kind::STOPCCN, peer_id, 0)
            .u16(true, attr::ASSIGNED_TUNNEL_ID, 0)
            .result(res, err, why)
            .finish();
        wire::set_sequence(&mut bytes, 0, m.ns.wrapping_add(1));
        tracing::debug!(peer = %src, reason = why, "tunnel refused");
        self.out.push_back(L2tpOutput::Send {
            local: dst,
            peer: src,
            bytes,
        });
    }

    /// Says at WARN that a limit was reached, at most once per [`LIMIT_LOG_EVERY`].
    fn limit_reached(&mut self, now: Instant, what: &str, count: u64) {
        if self.limit_logged.is_none_or(|t| now >= t + LIMIT_LOG_EVERY) {
            self.limit_logged = Some(now);
            let (tunnels, max_tunnels, max_sessions) =
                (self.tunnels.len(), self.s.max_tunnels, self.s.max_sessions);
            tracing::warn!(
                what,
                refused = count,
                tunnels,
                max_tunnels,
                max_sessions,
                "L2TP limit reached: refused (l2tp.max_tunnels, l2tp.max_sessions)"
            );
        }
    }

    /// The secret of tunnel `tid`: its own (LAC, switched calls), else `l2tp.secret`.
    fn secret_of(&self, tid: u16) -> Option<&[u8]> {
        self.tunnels
            .get(&tid)
            .and_then(|t| t.secret.as_deref())
            .or(self.s.secret.as_deref())
    }

    /// A builder for a message in tunnel `tid` (to the peer's `session`) that hides with
    /// the tunnel's secret when `hide_avps` is on.
    fn builder(&mut self, k: u16, tid: u16, session: u16) -> Builder {
        let b = Builder::new(k, self.peer_id(tid), session);
        match (self.secret_of(tid).map(<[u8]>::to_vec), self.s.hide_avps) {
            (Some(secret), true) => {
                let v = self.random16();
                b.hiding(&secret, v)
            }
            _ => b,
        }
    }

    fn send(&mut self, tid: u16, bytes: Vec<u8>) -> u16 {
        match self.tunnels.get_mut(&tid) {
            Some(t) => t.chan.send(bytes),
            None => 0,
        }
    }

    /// The LNS new tunnels on `line` go to: its `peer`, or after failures one of its
    /// `fallback` LNSes.
    fn line_peer(&self, line: usize) -> SocketAddrV4 {
        let ls = &self.s.lines[line];
        match self.line_lns.get(line).copied().unwrap_or(0) {
            0 => SocketAddrV4::new(ls.peer, ls.peer_port),
            i => ls
                .fallback
                .get(i - 1)
                .copied()
                .unwrap_or(SocketAddrV4::new(ls.peer, ls.peer_port)),
        }
    }

    /// A LAC tunnel of `line` to `peer` failed before it was up: if `peer` is the LNS
    /// the line uses now and it has others, the line goes on to the next (after the
    /// last, `peer` again).
    fn line_failed(&mut self, line: usize, peer: SocketAddrV4) {
        let Some(ls) = self.s.lines.get(line) else {
            return;
        };
        if ls.fallback.is_empty() || self.line_peer(line) != peer {
            return;
        }
        let n = ls.fallback.len() + 1;
        if self.line_lns.len() <= line {
            self.line_lns.resize(line + 1, 0);
        }
        self.line_lns[line] = (self.line_lns[line] + 1) % n;
        self.stats.lns_failovers += 1;
        let next = self.line_peer(line);
        tracing::warn!(line = %self.s.lines[line].name, failed = %peer, %next, "the line's LNS did not bring its tunnel up; trying the next");
    }

    /// How many LNSes `customer`'s calls may be tried on (its lines' LNSes).
    fn lns_choices(&self, customer: usize) -> usize {
        let allowed = &self.s.customers[customer].lines;
        self.s
            .lines
            .iter()
            .enumerate()
            .filter(|(i, _)| allowed.is_empty() || allowed.contains(i))
            .map(|(_, l)| 1 + l.fallback.len())
            .sum()
    }

    /// Opens a tunnel on a line for `customer` (LAC).
    fn open_tunnel(&mut self, now: Instant, customer: usize) -> Option<u16> {
        let used = |l: usize, me: &L2tp| {
            me.tunnels
                .values()
                .filter(|t| t.line == Some(l) && t.state.live())
                .count() as u32
        };
        let mine = |l: usize, me: &L2tp| {
            me.tunnels
                .values()
                .any(|t| t.line == Some(l) && t.customer == Some(customer) && t.state.live())
        };
        let allowed = &self.s.customers[customer].lines;
        let line = (0..self.s.lines.len())
            .filter(|l| allowed.is_empty() || allowed.contains(l))
            .filter(|l| used(*l, self) < self.s.lines[*l].tunnels)
            .min_by_key(|l| {
                (
                    !mine(*l, self),
                    std::cmp::Reverse(self.s.lines[*l].tunnels - used(*l, self)),
                    *l,
                )
            })?;
        if self.closing {
            return None;
        }
        if self.tunnels.len() >= self.s.max_tunnels as usize {
            self.stats.tunnel_limit += 1;
            self.limit_reached(now, "tunnels", self.stats.tunnel_limit);
            return None;
        }
        let ls = self.s.lines[line].clone();
        let peer = self.line_peer(line);
        let Some(local) = self.local_for(*peer.ip()) else {
            tracing::warn!(line = %ls.name, %peer, "no route to the line's LNS");
            return None;
        };
        let tid = self.new_tunnel(now, Role::Lac, peer, local)?;
        let challenge = self.s.secret.is_some().then(|| self.random16());
        let cname = self.s.customers[customer].name.clone();
        if let Some(t) = self.tunnels.get_mut(&tid) {
            t.line = Some(line);
            t.customer = Some(customer);
            t.customer_name = cname.clone();
            t.capacity = ls.capacity;
            t.challenge = challenge;
        }
        let mut b = Builder::new(kind::SCCRQ, 0, 0)
            .u16(true, attr::PROTOCOL_VERSION, 0x0100)
            .avp(true, 0, attr::HOST_NAME, self.s.host_name.as_bytes())
            .u32(true, attr::FRAMING_CAPABILITIES, 3)
            .u32(false, attr::BEARER_CAPABILITIES, 0)
            .u16(true, attr::ASSIGNED_TUNNEL_ID, tid)
            .u16(true, attr::RECEIVE_WINDOW_SIZE, self.s.timing.window)
            .u16(false, attr::FIRMWARE_REVISION, 1)
            .avp(false, 0, attr::VENDOR_NAME, VENDOR_NAME.as_bytes());
        if let Some(c) = challenge {
            b = b.avp(true, 0, attr::CHALLENGE, &c);
        }
        self.send(tid, b.finish());
        tracing::info!(tunnel = tid, line = %ls.name, peer = %ls.peer, customer = %cname, "opening tunnel");
        Some(tid)
    }

    /// Sends StopCCN and closes the tunnel's sessions.
    fn stop_tunnel(&mut self, now: Instant, tid: u16, res: u16, err: u16, why: &str) {
        let Some(t) = self.tunnels.get(&tid) else {
            return;
        };
        let peer_id = t.peer_id;
        let b = Builder::new(kind::STOPCCN, peer_id, 0)
            .u16(true, attr::ASSIGNED_TUNNEL_ID, tid)
            .result(res, err, why)
            .finish();
        self.send(tid, b);
        self.end_tunnel(now, tid, TunnelState::Stopping, why);
    }

    /// The tunnel goes down: its sessions end, its use is recorded, it takes `state`
    /// (or is forgotten when `state` is `Idle`).
    fn end_tunnel(&mut self, now: Instant, tid: u16, state: TunnelState, why: &str) {
        let Some(t) = self.tunnels.get_mut(&tid) else {
            return;
        };
        let was_live = t.state.live();
        t.state = state;
        t.stop_reason = Some(why.to_string());
        let sessions: Vec<u16> = t.sessions.iter().copied().collect();
        let (customer, role, est) = (t.customer, t.role, t.established);
        let (line, peer) = (t.line, t.peer);
        // Failover (issue 15 item 2): the LNS did not bring the tunnel up (no answer to
        // SCCRQ, or a StopCCN); not when we stop it ourselves.
        if role == Role::Lac
            && est.is_none()
            && was_live
            && state != TunnelState::Stopping
            && let Some(l) = line
        {
            self.line_failed(l, peer);
        }
        if was_live {
            self.stats.tunnels_down += 1;
            tracing::info!(tunnel = tid, reason = why, "tunnel down");
            if est.is_some() && customer.is_some() {
                self.usage_record(now, tid);
            }
        }
        for s in sessions {
            self.drop_session(now, s, why);
        }
        if state == TunnelState::Idle {
            self.tunnels.remove(&tid);
        }
        if role == Role::Lac
            && let Some(c) = customer
        {
            self.replan_due.insert(c);
        }
    }

    /// Fires acknowledged actions, sends what is due, and handles a dead peer or a
    /// finished StopCCN.
    fn after(&mut self, now: Instant, tid: u16) {
        let Some(t) = self.tunnels.get(&tid) else {
            return;
        };
        let due: Vec<(u16, AckAction)> = t
            .sessions
            .iter()
            .filter_map(|s| self.sessions.get(s))
            .filter_map(|s| {
                s.ack
                    .filter(|(ns, _)| t.chan.acked(*ns))
                    .map(|a| (s.id, a.1))
            })
            .collect();
        for (sid, action) in due {
            if let Some(s) = self.sessions.get_mut(&sid) {
                s.ack = None;
            }
            match action {
                AckAction::Activate => self.activate(now, sid),
                AckAction::Release => {
                    let moved = self
                        .sessions
                        .get(&sid)
                        .is_some_and(|s| s.switched.is_some() && s.moved_to.is_some());
                    if moved {
                        // Its last packets are counted to the call before it is forgotten.
                        let seq = self.sample.seq;
                        if let Some(s) = self.sessions.get_mut(&sid) {
                            s.release_after = Some(seq);
                        }
                    } else {
                        self.release(sid);
                    }
                }
            }
        }
        let Some(t) = self.tunnels.get_mut(&tid) else {
            return;
        };
        while let Some(bytes) = t.chan.poll_transmit(now) {
            self.out.push_back(L2tpOutput::Send {
                local: t.local,
                peer: t.peer,
                bytes,
            });
        }
        let dead = t.chan.is_dead();
        let stopped = t.state == TunnelState::Stopping && t.chan.idle();
        let empty =
            t.role == Role::Lac && t.state == TunnelState::Established && t.sessions.is_empty();
        let peer = t.peer;
        if dead {
            self.stats.tunnels_dead += 1;
            tracing::warn!(tunnel = tid, %peer, "L2TP peer stopped answering");
            self.end_tunnel(now, tid, TunnelState::Idle, "peer dead");
        } else if stopped {
            self.tunnels.remove(&tid);
        } else if empty {
            // A tunnel left empty is torn down.
            self.stop_tunnel(now, tid, result::STOP_CLEAR, 0, "no sessions left");
            self.after(now, tid);
        }
    }

    // ---- messages ----

    fn handle(&mut self, now: Instant, tid: u16, m: Message) {
        let k = m.kind();
        let session_scoped = matches!(k, kind::ICRQ | kind::ICRP | kind::ICCN | kind::CDN);
        if let Some(a) = m.unknown_mandatory() {
            self.stats.unknown_mandatory += 1;
            let why = format!("unknown mandatory AVP {} of vendor {}", a.attr, a.vendor);
            if session_scoped && m.session != 0 && self.sessions.contains_key(&m.session) {
                self.close_session(now, m.session, result::GENERAL_ERROR, &why);
            } else {
                let e = result::ERR_UNKNOWN_MANDATORY;
                self.stop_tunnel(now, tid, result::GENERAL_ERROR, e, &why);
            }
            return;
        }
        let state = self.tunnels.get(&tid).map(|t| t.state);
        match (k, state) {
            (kind::SCCRQ, Some(TunnelState::Idle)) => self.on_sccrq(now, tid, &m),
            (kind::SCCRP, Some(TunnelState::WaitReply)) => self.on_sccrp(now, tid, &m),
            (kind::SCCCN, Some(TunnelState::WaitConnect)) => self.on_scccn(now, tid, &m),
            (kind::STOPCCN, Some(_)) => {
                let why = m
                    .result_code()
                    .map_or("StopCCN".to_string(), |r| format!("StopCCN: {r}"));
                let until = now + self.s.timing.full_cycle();
                self.end_tunnel(now, tid, TunnelState::Closed { until }, &why);
            }
            (kind::HELLO | kind::WEN | kind::SLI, _) => {}
            (_, Some(TunnelState::Stopping | TunnelState::Closed { .. })) => {}
            (kind::ICRQ, Some(TunnelState::Established)) => self.on_icrq(now, tid, &m),
            (kind::ICRP | kind::ICCN | kind::CDN, Some(TunnelState::Established)) => {
                self.on_session_message(now, tid, &m)
            }
            (kind::OCRQ, Some(TunnelState::Established)) => {
                // Outgoing calls are not offered: refused as RFC 2661 6.7 allows.
                if let Some(peer_sid) = m.u16(attr::ASSIGNED_SESSION_ID) {
                    let b = Builder::new(kind::CDN, self.peer_id(tid), peer_sid)
                        .result(result::CDN_NO_FACILITIES, 0, "no outgoing calls")
                        .u16(true, attr::ASSIGNED_SESSION_ID, 0)
                        .finish();
                    self.send(tid, b);
                }
            }
            (k, _) if !kind::known(k) && !m.kind_mandatory() => {}
            (k, _) => {
                self.stats.unexpected += 1;
                let why = format!(
                    "unexpected {} in state {}",
                    kind::name(k),
                    state.map_or("-", |s| s.name())
                );
                tracing::debug!(tunnel = tid, "{why}");
                if session_scoped && m.session != 0 && self.sessions.contains_key(&m.session) {
                    self.close_session(now, m.session, result::GENERAL_ERROR, &why);
                } else {
                    self.stop_tunnel(now, tid, result::FSM_ERROR, 0, &why);
                }
            }
        }
    }

    fn peer_id(&self, tid: u16) -> u16 {
        self.tunnels.get(&tid).map_or(0, |t| t.peer_id)
    }

    /// Checks the Challenge Response in `m` against our challenge of tunnel `tid`.
    fn response_ok(&self, tid: u16, m: &Message, carried_in: u16) -> bool {
        let Some(t) = self.tunnels.get(&tid) else {
            return false;
        };
        match (t.challenge, self.secret_of(tid)) {
            (None, _) => true,
            (Some(c), Some(secret)) => m
                .get(attr::CHALLENGE_RESPONSE)
                .is_some_and(|r| r.value == wire::challenge_response(carried_in, secret, &c)),
            (Some(_), None) => false,
        }
    }

    fn on_sccrq(&mut self, now: Instant, tid: u16, m: &Message) {
        let peer_id = m.u16(attr::ASSIGNED_TUNNEL_ID).unwrap_or(0);
        let window = m.u16(attr::RECEIVE_WINDOW_SIZE);
        let peer_host = m.text(attr::HOST_NAME).unwrap_or_default();
        let src = self.tunnels.get(&tid).map(|t| *t.peer.ip());
        if let Some(t) = self.tunnels.get_mut(&tid) {
            t.peer_id = peer_id;
            t.peer_host = peer_host.clone();
            t.peer_vendor = m.text(attr::VENDOR_NAME).unwrap_or_default();
            t.chan.set_peer(peer_id, window);
        }
        let refuse = if !self.s.accept {
            Some((result::GENERAL_ERROR, "not accepting tunnels"))
        } else if !self.s.accept_from.is_empty()
            && !src.is_some_and(|s| self.s.accept_from.contains(&s))
        {
            Some((result::NOT_AUTHORIZED, "not an allowed LAC"))
        } else if m.u16(attr::PROTOCOL_VERSION) != Some(0x0100) {
            Some((result::BAD_VERSION, "protocol version 1.0 only"))
        } else if m.get(attr::HOST_NAME).is_none() || m.get(attr::FRAMING_CAPABILITIES).is_none() {
            Some((
                result::GENERAL_ERROR,
                "SCCRQ without Host Name or Framing Capabilities",
            ))
        } else if m.get(attr::CHALLENGE).is_some() && self.s.secret.is_none() {
            Some((
                result::NOT_AUTHORIZED,
                "challenged, but no secret is configured",
            ))
        } else {
            None
        };
        if let Some((res, why)) = refuse {
            self.stats.tunnels_refused += 1;
            tracing::info!(tunnel = tid, peer = ?src, host = %peer_host, reason = why, "tunnel refused");
            self.stop_tunnel(now, tid, res, 0, why);
            return;
        }
        let mut b = Builder::new(kind::SCCRP, peer_id, 0)
            .u16(true, attr::PROTOCOL_VERSION, 0x0100)
            .u32(true, attr::FRAMING_CAPABILITIES, 3)
            .u32(false, attr::BEARER_CAPABILITIES, 0)
            .u16(false, attr::FIRMWARE_REVISION, 1)
            .avp(true, 0, attr::HOST_NAME, self.s.host_name.as_bytes())
            .avp(false, 0, attr::VENDOR_NAME, VENDOR_NAME.as_bytes())
            .u16(true, attr::ASSIGNED_TUNNEL_ID, tid)
            .u16(true, attr::RECEIVE_WINDOW_SIZE, self.s.timing.window);
        if let (Some(c), Some(secret)) = (m.get(attr::CHALLENGE), &self.s.secret) {
            let r = wire::challenge_response(kind::SCCRP, secret, &c.value);
            b = b.avp(true, 0, attr::CHALLENGE_RESPONSE, &r);
        }
        if self.s.secret.is_some() {
            let c = self.random16();
            if let Some(t) = self.tunnels.get_mut(&tid) {
                t.challenge = Some(c);
            }
            b = b.avp(true, 0, attr::CHALLENGE, &c);
        }
        self.send(tid, b.finish());
        if let Some(t) = self.tunnels.get_mut(&tid) {
            t.state = TunnelState::WaitConnect;
        }
    }

    fn on_sccrp(&mut self, now: Instant, tid: u16, m: &Message) {
        let Some(peer_id) = m.u16(attr::ASSIGNED_TUNNEL_ID).filter(|t| *t != 0) else {
            self.stop_tunnel(
                now,
                tid,
                result::GENERAL_ERROR,
                result::ERR_LENGTH,
                "SCCRP without Assigned Tunnel ID",
            );
            return;
        };
        if let Some(t) = self.tunnels.get_mut(&tid) {
            t.peer_id = peer_id;
            t.peer_host = m.text(attr::HOST_NAME).unwrap_or_default();
            t.peer_vendor = m.text(attr::VENDOR_NAME).unwrap_or_default();
            t.chan.set_peer(peer_id, m.u16(attr::RECEIVE_WINDOW_SIZE));
        }
        if m.u16(attr::PROTOCOL_VERSION) != Some(0x0100) {
            self.stop_tunnel(
                now,
                tid,
                result::BAD_VERSION,
                0,
                "protocol version 1.0 only",
            );
            return;
        }
        if !self.response_ok(tid, m, kind::SCCRP) {
            self.stats.auth_failures += 1;
            tracing::warn!(
                tunnel = tid,
                "the LNS's Challenge Response does not match the secret"
            );
            self.stop_tunnel(
                now,
                tid,
                result::NOT_AUTHORIZED,
                0,
                "challenge response mismatch",
            );
            return;
        }
        let mut b = Builder::new(kind::SCCCN, peer_id, 0);
        if let Some(c) = m.get(attr::CHALLENGE) {
            let Some(secret) = self.secret_of(tid).map(<[u8]>::to_vec) else {
                self.stats.auth_failures += 1;
                self.stop_tunnel(
                    now,
                    tid,
                    result::NOT_AUTHORIZED,
                    0,
                    "challenged, but no secret is configured",
                );
                return;
            };
            let r = wire::challenge_response(kind::SCCCN, &secret, &c.value);
            b = b.avp(true, 0, attr::CHALLENGE_RESPONSE, &r);
        }
        self.send(tid, b.finish());
        if let Some(t) = self
            .tunnels
            .get(&tid)
            .filter(|t| t.customer.is_some() && !t.peer_is_tollgate())
        {
            self.stats.consolidation_off += 1;
            tracing::info!(tunnel = tid, peer = %t.peer, host = %t.peer_host, vendor = %t.peer_vendor, "the LNS is not a Tollgate: no switchover with it, consolidation is off for this tunnel");
        }
        self.established(now, tid);
    }

    fn on_scccn(&mut self, now: Instant, tid: u16, m: &Message) {
        if !self.response_ok(tid, m, kind::SCCCN) {
            self.stats.auth_failures += 1;
            tracing::warn!(
                tunnel = tid,
                "the LAC's Challenge Response does not match the secret"
            );
            self.stop_tunnel(
                now,
                tid,
                result::NOT_AUTHORIZED,
                0,
                "challenge response mismatch",
            );
            return;
        }
        self.established(now, tid);
    }

    fn established(&mut self, now: Instant, tid: u16) {
        let Some(t) = self.tunnels.get_mut(&tid) else {
            return;
        };
        t.state = TunnelState::Established;
        t.established = Some(now);
        t.usage_mark = now;
        t.challenge = None;
        self.stats.tunnels_up += 1;
        tracing::info!(tunnel = tid, peer = %t.peer, peer_tunnel = t.peer_id, host = %t.peer_host, "tunnel established");
        let pending: Vec<u16> = t
            .sessions
            .iter()
            .copied()
            .filter(|s| {
                self.sessions
                    .get(s)
                    .is_some_and(|s| s.state == SessionState::Pending)
            })
            .collect();
        for s in pending {
            self.send_icrq(s);
        }
    }

    // ---- sessions ----

    fn alloc_session(&mut self) -> Option<u16> {
        self.free_sessions.pop()
    }

    fn spec(&self, sid: u16) -> Option<L2tpSessionSpec> {
        let s = self.sessions.get(&sid)?;
        let t = self.tunnels.get(&s.tunnel)?;
        Some(L2tpSessionSpec {
            tunnel: t.id,
            session: sid,
            peer_tunnel: t.peer_id,
            peer_session: s.peer_id,
            local: t.local,
            peer: *t.peer.ip(),
            peer_port: t.peer.port(),
            subscriber: s.subscriber,
            role: match t.role {
                Role::Lac => TunnelRole::Lac,
                Role::Lns => TunnelRole::Lns,
            },
            pppoe: s.switched.as_ref().map(|c| c.pppoe),
        })
    }

    fn send_icrq(&mut self, sid: u16) {
        let Some(s) = self.sessions.get(&sid) else {
            return;
        };
        let (tid, sub, level, replaces, owner) =
            (s.tunnel, s.subscriber, s.level, s.replaces, s.owner);
        // A switched call: Calling Number is the subscriber's line; PPP goes to the LNS
        // as it is, so no Tollgate AVP (a Tollgate LNS terminates its PPP).
        let switched = s.switched.is_some();
        // RFC 5515: the PPPoE line's TR-101 identifiers, as the access node gave them.
        let access_line = s
            .switched
            .as_deref()
            .map(|c| (c.circuit_id.clone(), c.remote_id.clone()))
            .unwrap_or_default();
        let calling = match &s.calling_number {
            Some(c) if switched => c.clone(),
            _ => sub.to_string(),
        };
        let (customer, tollgate) = self
            .tunnels
            .get(&tid)
            .map(|t| (t.customer_name.clone(), t.peer_is_tollgate()))
            .unwrap_or_default();
        let ours = tollgate && !switched;
        let old = replaces.and_then(|o| {
            let os = self.sessions.get(&o)?;
            Some((self.tunnels.get(&os.tunnel)?.peer_id, os.peer_id))
        });
        self.serial = self.serial.wrapping_add(1);
        let serial = self.serial;
        let mut b = self
            .builder(kind::ICRQ, tid, 0)
            .u16(true, attr::ASSIGNED_SESSION_ID, sid)
            .u32(true, attr::CALL_SERIAL_NUMBER, serial)
            .u32(false, attr::BEARER_TYPE, 0)
            .hidden(false, 0, attr::CALLING_NUMBER, calling.as_bytes());
        for (a, v) in [
            (wire::access_line::AGENT_CIRCUIT_ID, access_line.0),
            (wire::access_line::AGENT_REMOTE_ID, access_line.1),
        ] {
            if let Some(v) = v.filter(|v| !v.is_empty()) {
                b = b.hidden(false, wire::access_line::VENDOR, a, &v);
            }
        }
        if ours {
            b = b
                .hidden(
                    false,
                    vendor::TOLLGATE,
                    vendor::SUBSCRIBER_ADDRESS,
                    &sub.octets(),
                )
                .hidden(
                    false,
                    vendor::TOLLGATE,
                    vendor::CUSTOMER,
                    customer.as_bytes(),
                )
                .hidden(
                    false,
                    vendor::TOLLGATE,
                    vendor::SERVICE_LEVEL,
                    &level.to_be_bytes(),
                );
        }
        // A move names the session it replaces, for an IP subscriber or a switched PPP
        // call alike (the LNS re-binds the call's PPP to the new session).
        if let (Some((ot, os)), true) = (old, tollgate) {
            let mut v = [0u8; 4];
            v[..2].copy_from_slice(&ot.to_be_bytes());
            v[2..].copy_from_slice(&os.to_be_bytes());
            b = b.hidden(false, vendor::TOLLGATE, vendor::SWITCHOVER, &v);
        }
        self.send(tid, b.finish());
        if let Some(s) = self.sessions.get_mut(&sid) {
            s.state = SessionState::WaitReply;
        }
        tracing::debug!(session = sid, tunnel = tid, subscriber = ?owner, switchover = ?old, "ICRQ sent");
    }

    /// Starts a session for subscriber `owner` in tunnel `tid` (LAC).
    fn start_session(
        &mut self,
        now: Instant,
        tid: u16,
        owner: u32,
        replaces: Option<u16>,
    ) -> Option<u16> {
        let sub = self.subscribers.get(&owner)?;
        let (address, level, call) = (sub.address, sub.level, sub.call.clone());
        let Some(sid) = self.alloc_session() else {
            self.stats.session_limit += 1;
            self.limit_reached(now, "sessions", self.stats.session_limit);
            return None;
        };
        let up = self.tunnels.get(&tid)?.state == TunnelState::Established;
        self.sessions.insert(
            sid,
            Session {
                id: sid,
                tunnel: tid,
                peer_id: 0,
                state: SessionState::Pending,
                subscriber: address,
                owner: Some(owner),
                ppp: false,
                calling_number: call.as_ref().map(|c| c.calling_number.clone()),
                level,
                replaces,
                created: now,
                established: None,
                counters: L2tpCounters::default(),
                ack: None,
                last_bytes: 0,
                switched: call,
                moved_to: None,
                carried: L2tpCounters::default(),
                release_after: None,
            },
        );
        if let Some(t) = self.tunnels.get_mut(&tid) {
            t.sessions.insert(sid);
        }
        if up {
            self.send_icrq(sid);
        }
        Some(sid)
    }

    fn on_icrq(&mut self, now: Instant, tid: u16, m: &Message) {
        let Some(peer_sid) = m.u16(attr::ASSIGNED_SESSION_ID).filter(|s| *s != 0) else {
            self.stats.unexpected += 1;
            return;
        };
        let peer_tid = self.peer_id(tid);
        let refuse = |me: &mut L2tp, res: u16, err: u16, why: &str| {
            let b = Builder::new(kind::CDN, peer_tid, peer_sid)
                .result(res, err, why)
                .u16(true, attr::ASSIGNED_SESSION_ID, 0)
                .finish();
            me.send(tid, b);
            tracing::info!(
                tunnel = tid,
                peer_session = peer_sid,
                reason = why,
                "incoming call refused"
            );
        };
        // A retransmitted ICRQ whose first copy was already answered is a duplicate the
        // reliable layer dropped; a second ICRQ for a session we have is the peer's error.
        if self.tunnels.get(&tid).is_some_and(|t| {
            t.sessions
                .iter()
                .any(|s| self.sessions.get(s).is_some_and(|s| s.peer_id == peer_sid))
        }) {
            refuse(
                self,
                result::GENERAL_ERROR,
                result::ERR_SESSION,
                "session id in use",
            );
            return;
        }
        let tg = |a: u16| m.vendor_get(vendor::TOLLGATE, a);
        let mut subscriber = tg(vendor::SUBSCRIBER_ADDRESS)
            .and_then(|a| <[u8; 4]>::try_from(&a.value[..]).ok())
            .map_or(Ipv4Addr::UNSPECIFIED, Ipv4Addr::from);
        if !subscriber.is_unspecified() && !self.s.ip_calls {
            // An older Tollgate LAC's IP subscriber: its address would be trusted without
            // PPP. The LAC is told why; its PPPoE subscribers' calls carry no such AVP.
            self.stats.ip_calls_refused += 1;
            refuse(
                self,
                result::GENERAL_ERROR,
                result::ERR_SESSION,
                IP_CALL_REFUSED,
            );
            return;
        }
        let level = tg(vendor::SERVICE_LEVEL).and_then(|a| a.u64()).unwrap_or(0);
        let customer = tg(vendor::CUSTOMER).map(|a| String::from_utf8_lossy(&a.value).into_owned());
        let mut replaces = None;
        let mut moved_ppp = false;
        if let Some(sw) = tg(vendor::SWITCHOVER) {
            let v = &sw.value;
            let old = (v.len() == 4).then(|| {
                (
                    u16::from_be_bytes([v[0], v[1]]),
                    u16::from_be_bytes([v[2], v[3]]),
                )
            });
            let peer_ip = self.tunnels.get(&tid).map(|t| *t.peer.ip());
            let found = old.and_then(|(ot, os)| {
                let s = self.sessions.get(&os)?;
                let t = self.tunnels.get(&ot)?;
                (s.tunnel == ot && Some(*t.peer.ip()) == peer_ip && s.moved_to.is_none())
                    .then_some((s.id, s.subscriber, s.ppp))
            });
            match found {
                Some((id, sub, ppp)) if subscriber.is_unspecified() || sub == subscriber => {
                    subscriber = sub;
                    replaces = Some(id);
                    moved_ppp = ppp;
                }
                _ => {
                    refuse(
                        self,
                        result::GENERAL_ERROR,
                        result::ERR_SESSION,
                        "switchover names no session of this LAC",
                    );
                    return;
                }
            }
        }
        if self.closing {
            refuse(self, result::CDN_ADMIN, 0, "shutting down");
            return;
        }
        let Some(sid) = self.alloc_session() else {
            self.stats.session_limit += 1;
            refuse(
                self,
                result::CDN_NO_FACILITIES,
                result::ERR_RESOURCES,
                "no session id left (l2tp.max_sessions)",
            );
            self.limit_reached(now, "sessions", self.stats.session_limit);
            return;
        };
        if let (Some(c), Some(t)) = (customer, self.tunnels.get_mut(&tid)) {
            t.customer_name = c;
        }
        // No subscriber address from a Tollgate LAC: the call carries PPP, which the
        // gateway terminates (its frames are punted from the session once installed).
        // A PPP call moved here (TUN-3) stays one: its PPP session is re-bound at ICCN.
        let ppp = (subscriber.is_unspecified() && replaces.is_none()) || moved_ppp;
        self.sessions.insert(
            sid,
            Session {
                id: sid,
                tunnel: tid,
                peer_id: peer_sid,
                state: SessionState::WaitConnect,
                subscriber,
                owner: None,
                ppp,
                calling_number: m.text(attr::CALLING_NUMBER),
                level,
                replaces,
                created: now,
                established: None,
                counters: L2tpCounters::default(),
                ack: None,
                last_bytes: 0,
                switched: None,
                moved_to: None,
                carried: L2tpCounters::default(),
                release_after: None,
            },
        );
        if let Some(t) = self.tunnels.get_mut(&tid) {
            t.sessions.insert(sid);
        }
        // Decapsulation is ready before the LAC can send on the session.
        if (ppp || !subscriber.is_unspecified())
            && let Some(spec) = self.spec(sid)
        {
            self.out
                .push_back(L2tpOutput::Command(Command::L2tpSessionSet(spec)));
        }
        let b = self
            .builder(kind::ICRP, tid, peer_sid)
            .u16(true, attr::ASSIGNED_SESSION_ID, sid)
            .finish();
        self.send(tid, b);
    }

    fn on_session_message(&mut self, now: Instant, tid: u16, m: &Message) {
        let k = m.kind();
        let Some(s) = self.sessions.get(&m.session).filter(|s| s.tunnel == tid) else {
            if k != kind::CDN {
                self.stats.unexpected += 1;
            }
            return;
        };
        let (sid, state) = (s.id, s.state);
        match (k, state) {
            (kind::CDN, _) => {
                let why = m
                    .result_code()
                    .map_or("CDN".to_string(), |r| format!("CDN: {r}"));
                self.drop_session(now, sid, &why);
            }
            (kind::ICRP, SessionState::WaitReply) => {
                let Some(peer_sid) = m.u16(attr::ASSIGNED_SESSION_ID).filter(|s| *s != 0) else {
                    self.close_session(
                        now,
                        sid,
                        result::GENERAL_ERROR,
                        "ICRP without Assigned Session ID",
                    );
                    return;
                };
                let level = s.level;
                if let Some(s) = self.sessions.get_mut(&sid) {
                    s.peer_id = peer_sid;
                }
                if let Some(spec) = self.spec(sid) {
                    self.out
                        .push_back(L2tpOutput::Command(Command::L2tpSessionSet(spec)));
                }
                if let Some(b) = self.switched_iccn(tid, peer_sid, sid) {
                    let ns = self.send(tid, b);
                    if let Some(s) = self.sessions.get_mut(&sid) {
                        s.state = SessionState::Connecting;
                        s.ack = Some((ns, AckAction::Activate));
                    }
                    return;
                }
                let b = self
                    .builder(kind::ICCN, tid, peer_sid)
                    .u32(
                        true,
                        attr::TX_CONNECT_SPEED,
                        level.min(u32::MAX as u64) as u32,
                    )
                    .u32(true, attr::FRAMING_TYPE, 1)
                    .u32(
                        false,
                        attr::RX_CONNECT_SPEED,
                        level.min(u32::MAX as u64) as u32,
                    )
                    .finish();
                let ns = self.send(tid, b);
                if let Some(s) = self.sessions.get_mut(&sid) {
                    s.state = SessionState::Connecting;
                    s.ack = Some((ns, AckAction::Activate));
                }
            }
            (kind::ICCN, SessionState::WaitConnect) => {
                let sub = s.subscriber;
                let replaces = s.replaces;
                if let Some(s) = self.sessions.get_mut(&sid) {
                    s.state = SessionState::Established;
                    s.established = Some(now);
                }
                self.stats.sessions_up += 1;
                let ppp = self.sessions.get(&sid).is_some_and(|s| s.ppp);
                if !sub.is_unspecified() && !ppp {
                    self.out.push_back(L2tpOutput::Command(Command::L2tpSteer {
                        subscriber: sub,
                        session: sid,
                    }));
                }
                if let (true, Some(old)) = (ppp, replaces) {
                    // A PPP call moved by its LAC: the gateway re-binds its PPP session
                    // (the subscriber's downlink takes the new session); the old one
                    // still decapsulates until the LAC's CDN, and ends no call.
                    if let Some(o) = self.sessions.get_mut(&old) {
                        o.ppp = false;
                        o.moved_to = Some(sid);
                    }
                    self.stats.moves_done += 1;
                    self.out.push_back(L2tpOutput::CallMoved {
                        from: old,
                        to: sid,
                        tunnel: tid,
                    });
                    tracing::info!(
                        tunnel = tid,
                        session = sid,
                        replaces = old,
                        "PPP call moved (switchover)"
                    );
                } else if let Some(s) = self.sessions.get(&sid).filter(|s| s.ppp)
                    && let Some(t) = self.tunnels.get(&tid)
                {
                    self.out.push_back(L2tpOutput::Call(call::Call {
                        session: sid,
                        tunnel: tid,
                        peer: t.peer,
                        peer_host: t.peer_host.clone(),
                        proxy_lcp: call::proxy_lcp(m),
                        proxy_auth: call::proxy_auth(m),
                        calling_number: s.calling_number.clone(),
                    }));
                }
                tracing::info!(tunnel = tid, session = sid, subscriber = %sub, replaces = ?replaces, "session established");
            }
            (k, st) => {
                self.stats.unexpected += 1;
                let why = format!(
                    "unexpected {} in session state {}",
                    kind::name(k),
                    st.name()
                );
                self.close_session(now, sid, result::GENERAL_ERROR, &why);
            }
        }
    }

    /// LAC: the ICCN was acknowledged; the subscriber is steered into the session, and a
    /// session it replaces is closed.
    fn activate(&mut self, now: Instant, sid: u16) {
        let Some(s) = self.sessions.get_mut(&sid) else {
            return;
        };
        s.state = SessionState::Established;
        s.established = Some(now);
        let (sub, owner, replaces, tid) = (s.subscriber, s.owner, s.replaces, s.tunnel);
        self.stats.sessions_up += 1;
        if s.switched.is_some() {
            self.activate_switched(now, sid, owner, replaces);
            return;
        }
        self.out.push_back(L2tpOutput::Command(Command::L2tpSteer {
            subscriber: sub,
            session: sid,
        }));
        if let Some(o) = owner.and_then(|o| self.subscribers.get_mut(&o)) {
            if o.session.is_none() {
                o.up_since = Some(now);
            }
            o.session = Some(sid);
            o.moving_to = None;
            o.retry_at = None;
        }
        match replaces {
            Some(old) => {
                self.stats.moves_done += 1;
                let from = self.sessions.get(&old).map(|s| s.tunnel);
                tracing::info!(subscriber = %sub, from_tunnel = ?from, to_tunnel = tid, session = sid, "session moved");
                let why = format!("moved to tunnel {tid}");
                self.close_session_keeping(now, old, result::CDN_ADMIN, &why);
            }
            None => {
                tracing::info!(subscriber = %sub, tunnel = tid, session = sid, "session established");
            }
        }
        if let Some(c) = owner
            .and_then(|o| self.subscribers.get(&o))
            .map(|o| o.customer)
        {
            self.replan_due.insert(c);
        }
    }

    /// Closes a session with a CDN; the fast path stops carrying it at once.
    fn close_session(&mut self, now: Instant, sid: u16, res: u16, why: &str) {
        self.out
            .push_back(L2tpOutput::Command(Command::L2tpSessionRemove {
                session: sid,
            }));
        self.close_session_keeping(now, sid, res, why);
    }

    /// Closes a session with a CDN; the fast path keeps decapsulating it until the CDN is
    /// acknowledged (a moved session: packets in flight still arrive).
    fn close_session_keeping(&mut self, now: Instant, sid: u16, res: u16, why: &str) {
        let Some(s) = self.sessions.get(&sid) else {
            return;
        };
        let (tid, peer_sid, state) = (s.tunnel, s.peer_id, s.state);
        if matches!(state, SessionState::Closing) {
            return;
        }
        if state == SessionState::Pending {
            self.release(sid);
            return;
        }
        let b = Builder::new(kind::CDN, self.peer_id(tid), peer_sid)
            .result(res, 0, why)
            .u16(true, attr::ASSIGNED_SESSION_ID, sid)
            .finish();
        let ns = self.send(tid, b);
        self.stats.sessions_down += 1;
        tracing::debug!(session = sid, tunnel = tid, reason = why, "CDN sent");
        self.detach(now, sid, why);
        if let Some(s) = self.sessions.get_mut(&sid) {
            s.state = SessionState::Closing;
            s.ack = Some((ns, AckAction::Release));
        }
    }

    /// A session ended by the peer or with its tunnel: gone at once.
    fn drop_session(&mut self, now: Instant, sid: u16, why: &str) {
        if !self.sessions.contains_key(&sid) {
            return;
        }
        self.out
            .push_back(L2tpOutput::Command(Command::L2tpSessionRemove {
                session: sid,
            }));
        if self
            .sessions
            .get(&sid)
            .is_some_and(|s| s.state != SessionState::Closing)
        {
            self.stats.sessions_down += 1;
        }
        tracing::info!(session = sid, reason = why, "session closed");
        self.detach(now, sid, why);
        self.release(sid);
    }

    /// A session no longer carries its subscriber: a subscriber left without a session
    /// is placed again after `redial`; a failed move is abandoned.
    fn detach(&mut self, now: Instant, sid: u16, why: &str) {
        if let Some(owner) = self
            .sessions
            .get(&sid)
            .filter(|s| s.switched.is_some())
            .and_then(|s| s.owner)
        {
            self.detach_owned_call(now, sid, owner, why);
            return;
        }
        if let Some(s) = self.sessions.get(&sid).filter(|s| s.switched.is_some()) {
            self.out.push_back(L2tpOutput::SwitchEnded {
                session: sid,
                was_up: s.established.is_some(),
                why: why.to_string(),
                counters: s.counters,
            });
            return;
        }
        if self.sessions.get(&sid).is_some_and(|s| s.ppp) {
            self.out.push_back(L2tpOutput::CallEnded {
                session: sid,
                why: why.to_string(),
            });
        }
        let Some(owner) = self.sessions.get(&sid).and_then(|s| s.owner) else {
            return;
        };
        let Some(o) = self.subscribers.get_mut(&owner) else {
            return;
        };
        if o.moving_to == Some(sid) {
            o.moving_to = None;
            if o.session.is_some() {
                self.stats.moves_failed += 1;
                tracing::warn!(subscriber = %o.address, reason = why, "move abandoned");
            } else {
                let wait = self.redial_later(now, owner);
                tracing::info!(subscriber = %o_address(self, owner), reason = why, wait_s = wait.as_secs(), "session set-up failed; placing again later");
            }
        } else if o.session == Some(sid) {
            o.session = None;
            if let Some(next) = o.moving_to.take() {
                // The old session went before the new one was connected: the new one
                // takes over when it is (no replacement left to close).
                o.moving_to = Some(next);
                if let Some(n) = self.sessions.get_mut(&next) {
                    n.replaces = None;
                }
            } else {
                let wait = self.redial_later(now, owner);
                tracing::info!(subscriber = %o_address(self, owner), reason = why, wait_s = wait.as_secs(), "tunnelled subscriber lost its session; placing again later");
            }
        }
    }

    /// Schedules subscriber `id` to be placed again after a failure: `redial`, doubled
    /// for each failure in a row, at most `redial_max`. A session that had carried it for
    /// `redial_max` or longer was no failure streak: the count starts again. Returns the
    /// wait.
    fn redial_later(&mut self, now: Instant, id: u32) -> Duration {
        let (base, cap) = (self.s.redial, self.s.redial_max.max(self.s.redial));
        let Some(o) = self.subscribers.get_mut(&id) else {
            return base;
        };
        if o.up_since.take().is_some_and(|t| now.since(t) >= cap) {
            o.failures = 0;
        }
        o.failures = o.failures.saturating_add(1);
        let doublings = o.failures.saturating_sub(1).min(20);
        let wait = base.saturating_mul(1 << doublings).min(cap);
        o.retry_at = Some(now + wait);
        self.stats.redials += 1;
        wait
    }

    /// Forgets a session: its id is free again, its tunnel may be left empty.
    fn release(&mut self, sid: u16) {
        let Some(s) = self.sessions.remove(&sid) else {
            return;
        };
        self.free_sessions.push(sid);
        if let Some(t) = self.tunnels.get_mut(&s.tunnel) {
            t.sessions.remove(&sid);
        }
        // The LNS side's replacements no longer point at it.
        for other in self.sessions.values_mut() {
            if other.replaces == Some(sid) {
                other.replaces = None;
            }
        }
    }

    // ---- the administration table and consolidation (LAC) ----

    /// The customer's tunnels as bins: live tunnels of the customer with their
    /// sessions that are not closing, each counted at its subscriber's level.
    fn bins(&self, customer: usize) -> Vec<Bin> {
        self.tunnels
            .values()
            .filter(|t| t.customer == Some(customer) && t.state.live())
            .map(|t| Bin {
                id: t.id,
                capacity: t.capacity,
                items: t
                    .sessions
                    .iter()
                    .filter_map(|s| self.sessions.get(s))
                    .filter(|s| s.state != SessionState::Closing)
                    .filter_map(|s| {
                        let o = self.subscribers.get(&s.owner?)?;
                        Some((o.id, o.level))
                    })
                    .collect(),
            })
            .collect()
    }

    /// Finds a tunnel for a subscriber without a session, opening one if needed.
    fn place(&mut self, now: Instant, id: u32) {
        let Some(sub) = self.subscribers.get(&id) else {
            return;
        };
        if sub.session.is_some() || sub.moving_to.is_some() {
            return;
        }
        let (customer, level) = (sub.customer, sub.level);
        let consolidate = self.s.customers[customer].consolidate;
        let target = consolidate::place(&self.bins(customer), level, consolidate);
        let tid = match target {
            Some(t) => Some(t),
            None => self.open_tunnel(now, customer),
        };
        let sid = tid.and_then(|t| self.start_session(now, t, id, None));
        match (sid, self.subscribers.get_mut(&id)) {
            (Some(s), Some(o)) => {
                o.moving_to = Some(s);
                if let Some(from) = o.failover_from.take() {
                    // Failover to the line's next LNS: the gateway re-keys the call.
                    self.out.push_back(L2tpOutput::SwitchMoved {
                        from,
                        to: s,
                        tunnel: tid.unwrap_or(0),
                        peer_tunnel: 0,
                        peer_session: 0,
                    });
                }
            }
            // Failing over, no tunnel could be opened: the call ends (PADT).
            (None, Some(o)) if o.failover_from.is_some() => {
                o.moving_to = o.failover_from.take();
                let from = o.moving_to;
                self.end_owned_call(now, id, from, "no LNS left to try");
            }
            // A switched call is not placed again: the gateway tries its next LNS.
            (None, Some(o)) if o.call.is_some() => {}
            (None, Some(o)) => {
                let address = o.address;
                let wait = self.redial_later(now, id);
                tracing::warn!(%address, wait_s = wait.as_secs(), "no tunnel has room and no line can open one; placing again later");
            }
            _ => {}
        }
    }

    /// True while the customer's table is changing: a session or tunnel being set up.
    fn busy(&self, customer: usize) -> bool {
        self.subscribers
            .values()
            .any(|s| s.customer == customer && s.moving_to.is_some())
            || self
                .tunnels
                .values()
                .any(|t| t.customer == Some(customer) && matches!(t.state, TunnelState::WaitReply))
    }

    /// Consolidates the customer's sessions: carries out the plan's first move (the
    /// plan is made again once it is done).
    fn replan(&mut self, now: Instant, customer: usize, freed: Option<u16>) {
        if self.busy(customer) {
            self.replan_due.insert(customer);
            return;
        }
        // Every move is a switchover: only with peers that carry one out.
        if !self
            .tunnels
            .values()
            .filter(|t| t.customer == Some(customer) && t.state.live())
            .all(Tunnel::peer_is_tollgate)
        {
            return;
        }
        let consolidate = self.s.customers[customer].consolidate;
        let bins = self.bins(customer);
        let Some(m) = consolidate::plan(&bins, freed, consolidate)
            .into_iter()
            .next()
        else {
            return;
        };
        let Some(old) = self.subscribers.get(&m.item).and_then(|s| s.session) else {
            return;
        };
        let to = match m.to {
            Target::Tunnel(t) => Some(t),
            Target::New => self.open_tunnel(now, customer),
        };
        let Some(to) = to else {
            return;
        };
        if let Some(new) = self.start_session(now, to, m.item, Some(old)) {
            self.stats.moves_started += 1;
            if let Some(o) = self.subscribers.get_mut(&m.item) {
                o.moving_to = Some(new);
                tracing::info!(subscriber = %o.address, from_tunnel = m.from, to_tunnel = to, "moving session (switchover)");
            }
        }
    }

    /// Re-plans the customers whose tables settled.
    fn settle(&mut self, now: Instant) {
        let due: Vec<usize> = self.replan_due.iter().copied().collect();
        for c in due {
            if !self.busy(c) {
                self.replan_due.remove(&c);
                self.replan(now, c, None);
            }
        }
    }

    // ---- service levels (TUN-4) ----

    fn start_sample(&mut self, now: Instant) {
        self.sample.next_at = Some(now + self.s.sample_interval);
        if self.sessions.is_empty() {
            return;
        }
        if self.sample.waiting > 0 {
            // The last report never finished (a worker busy or stopped): start over.
            self.sample.totals.clear();
        }
        self.sample.seq += 1;
        self.sample.waiting = self.s.workers.max(1);
        self.out.push_back(L2tpOutput::Command(Command::L2tpReport {
            seq: self.sample.seq,
        }));
    }

    fn finish_sample(&mut self, now: Instant) {
        let totals = std::mem::take(&mut self.sample.totals);
        let mut bytes_of: HashMap<u32, u64> = HashMap::new();
        let finished = self.sample.seq;
        for (sid, c) in totals {
            let Some(s) = self.sessions.get_mut(&sid) else {
                continue;
            };
            // A moved call's old session: what it carried since the last sample goes to
            // the session that carries the call now.
            if let Some(next) = s.moved_to.filter(|_| s.switched.is_some()) {
                let d = lac::counters_since(&c, &s.counters);
                s.counters = c;
                if let Some(n) = self.sessions.get_mut(&next) {
                    lac::add_counters(&mut n.carried, &d);
                }
                continue;
            }
            s.counters = c;
            let total = c.encap_bytes + c.decap_bytes;
            let delta = total.saturating_sub(s.last_bytes);
            s.last_bytes = total;
            if let Some(o) = s.owner {
                *bytes_of.entry(o).or_default() += delta;
            }
        }
        let done: Vec<u16> = self
            .sessions
            .values()
            .filter(|s| s.release_after.is_some_and(|a| a < finished))
            .map(|s| s.id)
            .collect();
        for sid in done {
            // The fast path decapsulated it until now (packets in flight); its leg was
            // steered into the new session at the move.
            self.out
                .push_back(L2tpOutput::Command(Command::L2tpSessionRemove {
                    session: sid,
                }));
            self.release(sid);
        }
        let ids: Vec<u32> = self.subscribers.keys().copied().collect();
        for id in ids {
            let Some(o) = self.subscribers.get_mut(&id) else {
                continue;
            };
            if o.session.is_none() {
                continue;
            }
            let bytes = bytes_of.get(&id).copied().unwrap_or(0);
            if let Some(new) = o.tracker.sample(&self.s.ladder, o.level, now, bytes) {
                self.change_level(now, id, new, "service-level");
            }
        }
    }

    fn change_level(&mut self, now: Instant, id: u32, bps: u64, reason: &'static str) {
        let Some(o) = self.subscribers.get_mut(&id) else {
            return;
        };
        if o.level == bps {
            return;
        }
        let old = o.level;
        o.level = bps;
        let customer = o.customer;
        for s in [o.session, o.moving_to].into_iter().flatten() {
            if let Some(s) = self.sessions.get_mut(&s) {
                s.level = bps;
            }
        }
        self.stats.level_changes += 1;
        tracing::info!(
            subscriber = id,
            old,
            new = bps,
            reason,
            "service level changed"
        );
        self.bandwidth_record(now, id, reason);
        self.replan(now, customer, None);
    }

    // ---- records (TUN-5) ----

    fn unix(&self, t: Instant) -> i64 {
        (self.clock.unix_ns(t).div_euclid(1_000_000_000)) as i64
    }

    /// The customer's use of tunnel `tid` since the last record.
    fn usage_record(&mut self, now: Instant, tid: u16) {
        let Some(t) = self.tunnels.get_mut(&tid) else {
            return;
        };
        let (Some(c), Some(est)) = (t.customer, t.established) else {
            return;
        };
        let start = t.usage_mark;
        t.usage_mark = now;
        let line = t
            .line
            .and_then(|l| self.s.lines.get(l))
            .map_or(String::new(), |l| l.name.clone());
        let Some(cust) = self.s.customers.get(c) else {
            return;
        };
        let name = format!("{}/{}/t{}@{}", self.s.host_name, line, tid, self.unix(est));
        let (start, stop) = (self.unix(start), self.unix(now));
        if stop <= start {
            return;
        }
        self.out
            .push_back(L2tpOutput::Record(Record::Tunnel(TunnelUsage {
                id: format!("{name}/{start}"),
                account: cust.account.clone(),
                user: None,
                tunnel: name,
                line,
                start,
                stop,
            })));
    }

    fn bandwidth_record(&mut self, now: Instant, id: u32, reason: &str) {
        if let Some(o) = self.subscribers.get(&id) {
            let rec = self.level_record_of(now, o, o.level, reason);
            self.out.push_back(L2tpOutput::Record(rec));
        }
    }

    fn level_record(&mut self, now: Instant, o: &Subscriber, bps: u64, reason: &str) {
        let rec = self.level_record_of(now, o, bps, reason);
        self.out.push_back(L2tpOutput::Record(rec));
    }

    fn level_record_of(&self, now: Instant, o: &Subscriber, bps: u64, reason: &str) -> Record {
        let at = self.unix(now);
        let session = format!(
            "{}/l2tp/{}@{}",
            self.s.host_name,
            o.id,
            self.unix(o.started)
        );
        Record::Bandwidth(BandwidthChange {
            id: format!("{session}/{}/{}", self.clock.unix_ns(now), bps),
            user: o.user.clone(),
            account: self.s.customers.get(o.customer).map(|c| c.account.clone()),
            session,
            at,
            bps,
            reason: reason.to_string(),
        })
    }
}

#[cfg(test)]
mod tests;
