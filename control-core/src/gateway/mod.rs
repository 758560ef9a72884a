//! The control core, sans-I/O: it takes `now` and what the workers sent up (events and
//! punted frames) or what an operator asked, and returns what should go down (commands,
//! frames to inject, a new forwarding snapshot) and out (records to write). It owns the
//! control plane's state; sockets, clocks, threads and files live in the shells
//! (`tollgate_control::engine` for the daemon, `tollgate_control::replay` offline), so
//! every rule here is tested with a simulated clock.

pub mod aaa;
pub mod addresses;
pub mod dhcp;
pub mod dhcpv6;
pub mod dhcpv6_restart;
pub mod identifier;
pub mod ipv6;
pub mod lac;
pub mod lns;
pub mod neighbor;
pub mod neighbor6;
pub mod pools;
mod ppp_link;
pub mod pppoe;
pub mod records;
pub mod sessions;

use std::collections::{BTreeMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;

use hashbrown::HashMap;
use tollgate_dataplane::fib::NextHop;
use tollgate_dataplane::lb::LbTable;
use tollgate_dataplane::service::{RealServer, Services};
use tollgate_dataplane::session::{
    DisconnectCause, SessionCounters, SessionId, SessionUpdate, VlanKey,
};
use tollgate_dataplane::time::Instant;
use tollgate_dataplane::wire::arp::{self, Operation};
use tollgate_dataplane::wire::ethernet::ethertype;
use tollgate_dataplane::wire::l2tp as wire_l2tp;
use tollgate_dataplane::wire::{checksum, ipv4};
use tollgate_dataplane::{Command, Event, Forwarding, Frame, MacAddr, Side};

use self::aaa::{AaaPolicy, AaaState, LoginRequest};
use self::neighbor::{Heard, Resolver, Timing};
use self::records::WallClock;
use self::sessions::{SessionError, SessionRequest, Sessions};
use crate::l2tp::{L2tp, L2tpOutput};

/// An Ethernet/IPv4/UDP frame (UDP checksum filled), or `None` if it would not fit a
/// [`Frame`].
fn udp_frame(
    side: Side,
    dst_mac: MacAddr,
    src_mac: MacAddr,
    (src, sport): (Ipv4Addr, u16),
    (dst, dport): (Ipv4Addr, u16),
    payload: &[u8],
) -> Option<Frame> {
    let udp_len = 8 + payload.len();
    let total = 20 + udp_len;
    if 14 + total > tollgate_dataplane::msg::FRAME_MAX {
        return None;
    }
    let mut b = vec![0u8; 14 + total];
    b[0..6].copy_from_slice(&dst_mac.0);
    b[6..12].copy_from_slice(&src_mac.0);
    b[12..14].copy_from_slice(&ethertype::IPV4.to_be_bytes());
    ipv4::write_header(
        &mut b[14..],
        total as u16,
        64,
        ipv4::protocol::UDP,
        src,
        dst,
    );
    let u = &mut b[34..];
    u[0..2].copy_from_slice(&sport.to_be_bytes());
    u[2..4].copy_from_slice(&dport.to_be_bytes());
    u[4..6].copy_from_slice(&(udp_len as u16).to_be_bytes());
    u[8..].copy_from_slice(payload);
    let sum = checksum::pseudo_header_sum(src, dst, ipv4::protocol::UDP, udp_len as u16)
        + checksum::fold(checksum::sum(u)) as u32;
    let c = match !checksum::fold(sum) {
        0 => 0xffff,
        c => c,
    };
    u[6..8].copy_from_slice(&c.to_be_bytes());
    Frame::new(side, &b)
}

/// Which workers a command is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// Every worker.
    All,
    /// One worker.
    Worker(u16),
}

/// Which file a record goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordKind {
    /// A flow's accounting record (`subscribers.flow_records`).
    Flow,
    /// An ended session (`subscribers.session_log`).
    Session,
    /// A usage record for rating, in `tollgate billing import` form (`l2tp.usage_records`:
    /// tunnel use, service-level changes).
    Rating,
}

/// Something for the shell to do. (Commands are the common case and are moved straight
/// onto a ring, so the size difference with the small variants is not worth a box.)
#[derive(Clone, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Output {
    /// A command for one or all workers.
    Command(Target, Command),
    /// A frame for a worker to send.
    Inject(u16, Box<Frame>),
    /// A record to append, one JSON line without the newline.
    Record(RecordKind, String),
    /// A new forwarding snapshot to publish.
    Publish(Box<Forwarding>),
    /// Credentials or identifiers to check (local store or RADIUS); the answer goes to
    /// [`Core::on_auth`].
    Authenticate(aaa::AuthRequest),
    /// An accounting record: commit it to the spool, then send it.
    Account(crate::radius::attrs::AcctRecord),
    /// A usage record for rating (session totals at its end, declared-bandwidth
    /// changes).
    Usage(crate::rating::Record),
    /// Open sessions' counters as their workers last reported them (the periodic
    /// checkpoint, `AaaPolicy::last_known`): for the spool, so that a Stop recovered
    /// after a crash carries them. Only sessions whose counters changed.
    LastKnown(Vec<crate::radius::attrs::LastKnown>),
    /// A DHCP lease to keep or forget (the lease file, so that leases survive a
    /// restart: [`Core::dhcp_restore`]).
    Lease(dhcp::LeaseChange),
    /// DHCPv6 relay mode: a RELAY-FORW for an external DHCPv6 server (UDP to its port
    /// 547, from the shell's socket); its answers come back through
    /// [`Core::on_dhcpv6_server`].
    Dhcpv6ToServer(crate::dhcpv6::ToServer),
    /// A login finished.
    LoginDone {
        /// Which.
        login: aaa::LoginId,
        /// Its session, or why it has none.
        result: Result<aaa::Login, String>,
    },
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
    /// Flow records written.
    pub flow_records: u64,
    /// Unknown subscribers reported by workers.
    pub unknown_subscribers: u64,
    /// Flow-limit events.
    pub flow_limits: u64,
    /// NAT port exhaustion reports from the workers (NAT-6; each worker sends at most one
    /// per protocol per second while its ports are exhausted).
    pub nat_ports_exhausted: u64,
    /// Of those, the ones logged at WARN (at most one per worker and protocol per
    /// [`NAT_EXHAUSTION_LOG_S`]).
    pub nat_ports_exhausted_logged: u64,
}

/// Seconds between two log lines about NAT port exhaustion of one worker and protocol;
/// the reports in between are counted and the next line says how many.
pub const NAT_EXHAUSTION_LOG_S: u64 = 10;

/// Counters of sessions gathered for a query or report.
#[derive(Clone, Debug, Default)]
pub struct SessionReport {
    /// Workers that have not finished answering.
    pub waiting: usize,
    /// Counters by session.
    pub counters: BTreeMap<SessionId, SessionCounters>,
    /// The IPv6 share of those counters, for sessions with (or that had) a /64.
    pub ipv6: BTreeMap<SessionId, SessionCounters>,
}

/// How the core is set up.
#[derive(Clone, Debug)]
pub struct CoreConfig {
    /// Neighbour resolution timing.
    pub arp: Timing,
    /// Static neighbours.
    pub static_neighbors: Vec<(Ipv4Addr, MacAddr)>,
    /// Workers in the engine.
    pub workers: u16,
    /// Service names, by service index.
    pub service_names: Vec<String>,
    /// Maps the engine clock to Unix time for records.
    pub clock: WallClock,
    /// Logins, pools, accounting.
    pub aaa: AaaPolicy,
    /// L2TP, when `[l2tp]` is on.
    pub l2tp: Option<crate::l2tp::Settings>,
    /// PPPoE termination, when `[pppoe]` is on.
    pub pppoe: Option<pppoe::PppoeSettings>,
    /// PPP termination of L2TP calls (LNS), when `[l2tp]` accepts tunnels.
    pub lns: Option<lns::LnsSettings>,
    /// IPv6 for IPoE sessions, when `[ipv6]` is on.
    pub ipv6: Option<ipv6::Ipv6Settings>,
    /// The DHCPv4 server, when `[dhcp]` is on.
    pub dhcp: Option<dhcp::DhcpSettings>,
}

/// The control core.
#[derive(Debug)]
pub struct Core {
    fwd: Arc<Forwarding>,
    resolver: Resolver,
    out: VecDeque<Output>,
    stats: CoreStats,
    sessions: Sessions,
    service_names: Vec<String>,
    clock: WallClock,
    workers: u16,
    hosts: HashMap<(u16, u32, u32), String>,
    reports: HashMap<u64, SessionReport>,
    next_seq: u64,
    aaa: AaaState,
    l2tp: Option<L2tp>,
    /// L2TP control frames waiting for their next hop's MAC (next hop, frame).
    l2tp_waiting: Vec<(Ipv4Addr, Frame)>,
    /// NAT port exhaustion per (worker, protocol): when it was last logged, and the
    /// reports since that were not.
    no_port_logged: HashMap<(u16, u8), (Option<Instant>, u64)>,
    /// PPPoE discovery and PPP sessions, when `[pppoe]` is on.
    pppoe: Option<pppoe::Pppoe>,
    /// PPPoE frames punted while `[pppoe]` is off.
    pppoe_disabled_drops: u64,
    /// PPP calls over L2TP (LNS), when configured.
    lns: Option<lns::Lns>,
    /// While a PPP subscriber whose IPv6CP is open is installed: its PPP link's handle,
    /// so that its /64 is attached before the Accounting Start is built.
    ppp_ipv6_installing: Option<u64>,
    /// PPPoE subscribers switched into L2TP tunnels (LAC).
    lac: lac::Lac,
    /// IPv6 neighbour discovery and sessions' /64s, when `[ipv6]` is on.
    ipv6: Option<ipv6::Ipv6>,
    /// IPoE subscribers by DHCPv4, when `[dhcp]` is on.
    dhcp: Option<dhcp::Dhcp>,
    /// DHCP messages punted while `[dhcp]` is off.
    dhcp_disabled_drops: u64,
}

impl Core {
    /// A core for the given forwarding state, with static neighbours installed.
    pub fn new(now: Instant, fwd: Arc<Forwarding>, cfg: CoreConfig) -> Core {
        let mut core = Core {
            resolver: Resolver::new(cfg.arp),
            fwd,
            out: VecDeque::new(),
            stats: CoreStats::default(),
            sessions: Sessions::new(cfg.workers, cfg.aaa.max_sessions_per_worker),
            service_names: cfg.service_names,
            clock: cfg.clock,
            workers: cfg.workers.max(1),
            hosts: HashMap::new(),
            reports: HashMap::new(),
            next_seq: 1 << 32,
            aaa: AaaState::new(cfg.aaa, (cfg.clock.unix_ns(now).max(0) / 1_000_000) as u64),
            l2tp: None,
            l2tp_waiting: Vec::new(),
            no_port_logged: HashMap::new(),
            pppoe: None,
            pppoe_disabled_drops: 0,
            lns: None,
            ppp_ipv6_installing: None,
            lac: lac::Lac::default(),
            ipv6: None,
            dhcp: None,
            dhcp_disabled_drops: 0,
        };
        if let Some(s) = cfg.ipv6 {
            let (a, c) = (
                core.fwd.side(Side::Access).mac,
                core.fwd.side(Side::Core).mac,
            );
            core.ipv6 = Some(ipv6::Ipv6::new(s, a, c, core.workers, cfg.arp, now));
        }
        if let Some(s) = cfg.dhcp {
            let mac = core.fwd.side(Side::Access).mac;
            core.dhcp = Some(dhcp::Dhcp::new(s, mac, now));
        }
        if let Some(s) = cfg.pppoe {
            let mac = core.fwd.side(Side::Access).mac;
            core.pppoe = Some(pppoe::Pppoe::new(s, mac, now));
        }
        if let Some(s) = cfg.lns {
            core.lns = Some(lns::Lns::new(s, core.fwd.side(Side::Access).mac));
        }
        core.aaa.start(now);
        for &(ip, mac) in &cfg.static_neighbors {
            let side = core.side_of(ip).unwrap_or(Side::Core);
            core.resolver.add_static(now, ip, side, mac);
        }
        core.drain_resolver();
        if let Some(s) = cfg.l2tp {
            core.l2tp = Some(L2tp::new(now, s, core.fwd.clone(), core.clock));
            core.drain_l2tp(now);
        }
        core
    }

    /// The connected side `ip` is on.
    fn side_of(&self, ip: Ipv4Addr) -> Option<Side> {
        Side::ALL
            .into_iter()
            .find(|s| self.fwd.side(*s).contains(ip))
    }

    /// The rule every subscriber address is checked against ([`addresses`]): the
    /// access subnet, the gateway's own addresses and the pools.
    pub fn subscriber_addresses(&self) -> addresses::SubscriberAddresses {
        let access = self.fwd.side(Side::Access);
        let gateway = Side::ALL
            .iter()
            .map(|s| self.fwd.side(*s).address)
            .chain(self.fwd.nat.addresses.iter().copied())
            .collect();
        addresses::SubscriberAddresses {
            access: (access.address, access.prefix_len),
            gateway,
            pools: self
                .pools()
                .pools
                .iter()
                .flat_map(|p| p.ranges.iter().map(|r| (r.first, r.last)))
                .collect(),
        }
    }

    /// Opens a session without a login (static subscribers, `ctl session add`) and
    /// installs it on its worker; it is accounted like any other. Refused, with
    /// nothing installed or accounted, when the user name is empty or holds NUL, when
    /// the address cannot be a subscriber's, is in use, or its worker's table is full.
    pub fn open_session(
        &mut self,
        now: Instant,
        req: SessionRequest,
    ) -> Result<SessionId, SessionError> {
        if req.user.is_empty() || req.user.contains('\0') {
            return Err(SessionError::UserName(req.user));
        }
        if let Ok(id) = self.sessions.find(&req.address.to_string()) {
            return Err(SessionError::AddressInUse(req.address, id));
        }
        let auth = self.authorization_of(&req);
        let pooled = self.aaa_reserve(req.address);
        let calling = req.mac.map(|m| m.to_string());
        let address = req.address;
        self.install(now, req, auth, calling, false, pooled, None)
            .inspect_err(|_| {
                if pooled {
                    self.aaa_release(address);
                }
            })
    }

    /// Starts a first-packet login for a stranger the fast path reported.
    fn login_stranger(&mut self, now: Instant, ip: Ipv4Addr, mac: MacAddr, vlans: VlanKey) {
        // Its login is under way, or its session is on the way to the worker: the
        // report is a later packet of the same stranger.
        if self.logging_in(ip) || self.sessions.find(&ip.to_string()).is_ok() {
            return;
        }
        // A first packet on a VLAN line: the session is installed on that line (the
        // fast path compares VLAN ids; an S-tag is taken to be 802.1ad).
        let (vids, n) = vlans.vids();
        let line = crate::pppoe::Line {
            port: 0,
            svlan: (n > 0).then(|| vids[0]),
            cvlan: (n > 1).then(|| vids[1]),
        };
        let req = LoginRequest {
            address: Some(ip),
            mac: Some(mac),
            first_packet: true,
            access: self.ipoe_line(line, None),
            ..LoginRequest::default()
        };
        if let Err(e) = self.login(now, req) {
            tracing::debug!(%ip, %mac, error = %e, "first-packet login not started");
        }
    }

    /// Ends the session named by `key` (its id or address); its record follows as an
    /// event.
    pub fn close_session(
        &mut self,
        key: &str,
        cause: DisconnectCause,
    ) -> Result<SessionId, SessionError> {
        let id = self.sessions.find(key)?;
        let worker = self.sessions.get(id).map_or(0, |s| s.worker);
        self.out.push_back(Output::Command(
            Target::Worker(worker),
            Command::SessionRemove { id, cause },
        ));
        Ok(id)
    }

    /// Changes a session live.
    pub fn update_session(
        &mut self,
        now: Instant,
        key: &str,
        update: SessionUpdate,
    ) -> Result<SessionId, SessionError> {
        let id = self.sessions.find(key)?;
        self.apply_update(now, id, update, "ctl");
        Ok(id)
    }

    /// Sends session `id`'s owner a change that is no operator's or AAA's (no record,
    /// no bandwidth change): an LNS subscriber's L2TP session after a move.
    pub(super) fn update_session_silently(
        &mut self,
        _now: Instant,
        id: SessionId,
        update: SessionUpdate,
    ) {
        let Some(worker) = self.sessions.get(id).map(|s| s.worker) else {
            return;
        };
        self.sessions.update(id, &update);
        self.out.push_back(Output::Command(
            Target::Worker(worker),
            Command::SessionUpdate { id, update },
        ));
    }

    fn apply_update(&mut self, now: Instant, id: SessionId, update: SessionUpdate, why: &str) {
        let Some(old) = self.sessions.get(id).map(|s| (s.worker, s.spec.bandwidth)) else {
            return;
        };
        if let Some(b) = update.bandwidth.filter(|b| *b != old.1) {
            self.bandwidth_changed(now, id, b, why);
        }
        self.sessions.update(id, &update);
        self.out.push_back(Output::Command(
            Target::Worker(old.0),
            Command::SessionUpdate { id, update },
        ));
    }

    /// Asks the owner of session `id` for its counters; see [`Self::report`].
    pub fn query_session(&mut self, id: SessionId) -> u64 {
        let seq = self.seq();
        let worker = self.sessions.get(id).map_or(0, |s| s.worker);
        self.reports.insert(
            seq,
            SessionReport {
                waiting: 1,
                ..SessionReport::default()
            },
        );
        self.out.push_back(Output::Command(
            Target::Worker(worker),
            Command::SessionQuery { id, seq },
        ));
        seq
    }

    /// Asks every worker for the counters of all its sessions; see [`Self::report`].
    pub fn report_sessions(&mut self) -> u64 {
        let seq = self.seq();
        self.reports.insert(
            seq,
            SessionReport {
                waiting: self.workers as usize,
                ..SessionReport::default()
            },
        );
        self.out.push_back(Output::Command(
            Target::All,
            Command::ReportSessions { seq },
        ));
        seq
    }

    /// A report in progress or complete (`waiting == 0`).
    pub fn report(&self, seq: u64) -> Option<&SessionReport> {
        self.reports.get(&seq)
    }

    /// Forgets a report.
    pub fn take_report(&mut self, seq: u64) -> Option<SessionReport> {
        self.reports.remove(&seq)
    }

    fn seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    /// The session registry.
    pub fn sessions(&self) -> &Sessions {
        &self.sessions
    }

    /// Service names by index.
    pub fn service_names(&self) -> &[String] {
        &self.service_names
    }

    /// The index of the service named `name`.
    pub fn service_index(&self, name: &str) -> Option<u16> {
        self.service_names
            .iter()
            .position(|n| n == name)
            .map(|i| i as u16)
    }

    /// The wall clock of records.
    pub fn clock(&self) -> &WallClock {
        &self.clock
    }

    /// Changes a real server (state or metrics) and publishes the new snapshot (LB-3,
    /// NAT-5; health checks use this too).
    pub fn set_server(
        &mut self,
        service: u16,
        server: u16,
        f: impl FnOnce(&mut RealServer),
    ) -> Result<(), String> {
        let mut services: Services = self.fwd.services.clone();
        if !services.update_server(service, server, f) {
            return Err(format!("service {service} has no server {server}"));
        }
        let mut next = (*self.fwd).clone();
        next.services = services;
        self.publish(next);
        Ok(())
    }

    /// Marks every load-balancing target with `mac` up or down and publishes (LB-3).
    pub fn set_lb_target(&mut self, mac: MacAddr, up: bool) -> Result<(), String> {
        let lb: LbTable = self
            .fwd
            .lb
            .with_state(mac, up)
            .ok_or_else(|| format!("no load-balancing range has a target {mac}"))?;
        let mut next = (*self.fwd).clone();
        next.lb = lb;
        self.publish(next);
        Ok(())
    }

    fn publish(&mut self, next: Forwarding) {
        self.fwd = Arc::new(next.clone());
        if let Some(l) = self.l2tp.as_mut() {
            l.set_forwarding(self.fwd.clone());
        }
        self.out.push_back(Output::Publish(Box::new(next)));
    }

    /// A worker reported an event.
    pub fn on_event(&mut self, now: Instant, worker: u16, ev: Event) {
        self.stats.events += 1;
        match ev {
            Event::Resolve { ip, side } => {
                self.resolver.resolve(now, ip, side);
                self.drain_resolver();
            }
            Event::Resolve6 { ip } => self.ipv6_resolve(now, ip),
            Event::SessionClosed(mut rec) => {
                self.pppoe_session_closed(now, rec.id, rec.cause.name());
                self.dhcp_session_closed(now, rec.id, rec.cause.name());
                // The Stop names the session's IPv6, which goes after it.
                let acct_id = self.aaa_closed(&mut rec);
                self.ipv6_session_closed(now, rec.id);
                if let Some(e) = self.sessions.ended(rec) {
                    tracing::info!(
                        session = rec.id,
                        user = %e.user,
                        address = %rec.address,
                        cause = rec.cause.name(),
                        tx_bytes = rec.counters.tx_bytes,
                        rx_bytes = rec.counters.rx_bytes,
                        "session ended"
                    );
                    let line = records::session(&self.clock, &e, acct_id.as_deref()).to_string();
                    self.out
                        .push_back(Output::Record(RecordKind::Session, line));
                }
            }
            Event::SessionInstallFailed { id, reason } => {
                self.pppoe_session_closed(now, id, "not installed");
                self.ipv6_session_closed(now, id);
                self.dhcp_session_closed(now, id, "not installed");
                if let Some(address) = self.sessions.get(id).map(|s| s.spec.address) {
                    self.aaa_install_failed(now, id, address);
                }
                if let Some(s) = self.sessions.install_failed(id) {
                    tracing::warn!(session = id, user = %s.user, address = %s.spec.address, ?reason, "the fast path refused the session");
                }
            }
            Event::SessionCounters {
                id,
                seq,
                counters,
                at,
                last_seen,
                ipv6,
            } => {
                if self.aaa_counters(seq, at, counters, last_seen)
                    || self.aaa_last_known(seq, id, at, counters, last_seen)
                {
                    return;
                }
                if let Some(r) = self.reports.get_mut(&seq) {
                    r.counters.insert(id, counters);
                    if let Some(c) = ipv6 {
                        r.ipv6.insert(id, c);
                    }
                }
            }
            Event::SessionsReported { seq, sessions } => {
                if self.aaa_last_known_reported(seq) {
                    return;
                }
                self.aaa_reported(seq, sessions);
                if let Some(r) = self.reports.get_mut(&seq) {
                    r.waiting = r.waiting.saturating_sub(1);
                }
            }
            Event::UnknownSubscriber { ip, mac, vlans, .. } => {
                self.stats.unknown_subscribers += 1;
                tracing::debug!(%ip, %mac, worker, "traffic from an address without a session");
                self.login_stranger(now, ip, mac, vlans);
            }
            Event::FlowHost { flow, len, host } => {
                let h = String::from_utf8_lossy(&host[..len as usize]).into_owned();
                self.hosts.insert((worker, flow.0, flow.1), h);
            }
            Event::FlowRecord(r) => {
                self.stats.flow_records += 1;
                let host = self.hosts.remove(&(worker, r.flow.0, r.flow.1));
                // A flow's record may come after its session ended: the id still names
                // that session (ids are not reused while it is shown).
                let user = self
                    .sessions
                    .get(r.session)
                    .map(|s| s.user.clone())
                    .or_else(|| self.sessions.recent(r.session).map(|e| e.user.clone()))
                    .unwrap_or_else(|| format!("session-{}", r.session));
                let service = match r.service {
                    tollgate_dataplane::nat::NAT64_SERVICE => "nat64".to_string(),
                    _ => self
                        .service_names
                        .get(r.service as usize)
                        .cloned()
                        .unwrap_or_else(|| format!("service-{}", r.service)),
                };
                let line =
                    records::flow(&self.clock, &r, &user, &service, host.as_deref()).to_string();
                self.out.push_back(Output::Record(RecordKind::Flow, line));
            }
            Event::FlowLimit {
                session,
                table_full,
            } => {
                self.stats.flow_limits += 1;
                tracing::warn!(session, table_full, "flow limit reached");
            }
            Event::NatPortsExhausted {
                protocol,
                drops,
                at,
            } => self.nat_ports_exhausted(worker, protocol, drops, at),
            Event::SessionMac { id, mac } => {
                if self.sessions.learned_mac(id, mac) {
                    tracing::debug!(session = id, %mac, "session learnt its MAC");
                }
                self.ipv6_mac_known(now, id, mac);
            }
            Event::L2tpRefused { session } => {
                if let Some(l) = self.l2tp.as_mut() {
                    l.on_refused(session);
                }
            }
            Event::L2tpCounters {
                session,
                seq,
                counters,
                ..
            } => {
                if let Some(l) = self.l2tp.as_mut() {
                    l.on_counters(seq, session, counters);
                }
            }
            Event::L2tpReported { seq, .. } => {
                if let Some(l) = self.l2tp.as_mut() {
                    l.on_reported(now, seq);
                }
                self.drain_l2tp(now);
            }
        }
    }

    /// A worker ran out of NAT ports for `protocol`: counted, and logged at WARN at most
    /// once per worker and protocol every [`NAT_EXHAUSTION_LOG_S`] seconds.
    fn nat_ports_exhausted(&mut self, worker: u16, protocol: u8, drops: u64, at: Instant) {
        self.stats.nat_ports_exhausted += 1;
        let e = self
            .no_port_logged
            .entry((worker, protocol))
            .or_insert((None, 0));
        if e.0
            .is_some_and(|t| at < t.add_ms(NAT_EXHAUSTION_LOG_S * 1000))
        {
            e.1 += 1;
            return;
        }
        let not_logged = e.1;
        *e = (Some(at), 0);
        self.stats.nat_ports_exhausted_logged += 1;
        let protocol = match protocol {
            ipv4::protocol::TCP => "tcp",
            ipv4::protocol::UDP => "udp",
            _ => "icmp",
        };
        tracing::warn!(
            worker,
            protocol,
            nat_no_port = drops,
            reports_not_logged = not_logged,
            "NAT ports exhausted: new flows are dropped (nat_no_port); widen nat.ports or add nat.addresses"
        );
    }

    /// A worker punted a frame.
    pub fn on_punt(&mut self, now: Instant, _worker: u16, frame: &Frame) {
        self.stats.punts += 1;
        let bytes = frame.bytes();
        if let Ok(h) = crate::wire::ethernet::Frame::new_unchecked(bytes).header()
            && matches!(
                h.ethertype,
                crate::wire::ethernet::ethertype::PPPOE_DISCOVERY
                    | crate::wire::ethernet::ethertype::PPPOE_SESSION
            )
        {
            self.on_pppoe(now, frame.side, h, bytes);
            self.drain_resolver();
            return;
        }
        if let Ok(h) = crate::wire::ethernet::Frame::new_unchecked(bytes).header()
            && h.ethertype == crate::wire::ethernet::ethertype::IPV6
        {
            self.on_ipv6(now, frame.side, h, bytes);
            return;
        }
        if let Ok(h) = crate::wire::ethernet::Frame::new_unchecked(bytes).header()
            && h.ethertype == crate::wire::ethernet::ethertype::IPV4
            && dhcp::to_server(&bytes[h.payload_at..])
        {
            self.on_dhcp(now, frame.side, h, bytes);
            return;
        }
        // Past every tag of the line (QinQ included), as for the punts above.
        match crate::wire::ethernet::Frame::new_unchecked(bytes).header() {
            Ok(h) if h.ethertype == ethertype::ARP => {
                self.on_arp(now, frame.side, &bytes[h.payload_at..])
            }
            Ok(h) if h.ethertype == ethertype::IPV4 && self.l2tp.is_some() => {
                self.on_l2tp(now, &bytes[h.payload_at..])
            }
            _ => self.stats.punts_malformed += 1,
        }
        self.drain_resolver();
    }

    /// A punted L2TP control message (IPv4/UDP to port 1701).
    fn on_l2tp(&mut self, now: Instant, ip: &[u8]) {
        let Ok(p) = ipv4::Packet::new_checked(ip) else {
            self.stats.punts_malformed += 1;
            return;
        };
        let (src, dst) = (p.src(), p.dst());
        let udp = p.payload();
        let ulen = udp
            .get(4..6)
            .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]) as usize);
        if p.protocol() != ipv4::protocol::UDP || ulen < 8 || ulen > udp.len() {
            self.stats.punts_malformed += 1;
            return;
        }
        let sport = u16::from_be_bytes([udp[0], udp[1]]);
        // A data message (T bit clear): PPP control of a call, punted by the fast path.
        if udp.get(8).is_some_and(|b| b & 0x80 == 0) {
            self.lns_frame(now, src, &udp[8..ulen]);
            return;
        }
        if let Some(l) = self.l2tp.as_mut() {
            l.on_datagram(now, SocketAddrV4::new(src, sport), dst, &udp[8..ulen]);
        }
        self.drain_l2tp(now);
    }

    /// Moves the L2TP engine's outputs to the core's: datagrams become frames to inject
    /// (waiting for the next hop's MAC if it is not known yet), commands go to every
    /// worker, records to the rating file.
    fn drain_l2tp(&mut self, now: Instant) {
        let Some(l) = self.l2tp.as_mut() else {
            return;
        };
        let outs: Vec<L2tpOutput> = std::iter::from_fn(|| l.poll_output()).collect();
        for o in outs {
            match o {
                L2tpOutput::Send { local, peer, bytes } => self.send_udp(now, local, peer, &bytes),
                L2tpOutput::Command(c) => self.out.push_back(Output::Command(Target::All, c)),
                L2tpOutput::Call(c) => self.lns_call(now, c),
                L2tpOutput::CallEnded { session, why } => self.lns_call_ended(now, session, &why),
                L2tpOutput::Switched {
                    session,
                    peer_session,
                    peer_tunnel,
                    lns_host,
                    lns,
                    ..
                } => self.lac_up(now, session, (peer_tunnel, peer_session), lns_host, lns),
                L2tpOutput::SwitchMoved {
                    from,
                    to,
                    tunnel,
                    peer_tunnel,
                    peer_session,
                } => self.lac_moved(now, from, to, tunnel, (peer_tunnel, peer_session)),
                L2tpOutput::CallMoved { from, to, tunnel } => {
                    self.lns_call_moved(now, from, to, tunnel)
                }
                L2tpOutput::SwitchEnded {
                    session,
                    was_up,
                    why,
                    counters,
                } => self.lac_ended(now, session, was_up, &why, counters),
                L2tpOutput::Record(r) => {
                    match serde_json::to_string(&r) {
                        Ok(line) => self.out.push_back(Output::Record(RecordKind::Rating, line)),
                        Err(e) => tracing::error!(error = %e, "cannot encode a usage record"),
                    }
                    // And to the rater, where the daemon rates (`rating.database`); the
                    // file stays for sites that rate elsewhere (its ids make a second
                    // import of the same record a duplicate, not a second charge).
                    self.out.push_back(Output::Usage(r));
                }
            }
        }
        self.drain_resolver();
    }

    /// Sends a UDP datagram from `local:1701` to `peer` through worker 0.
    fn send_udp(&mut self, now: Instant, local: Ipv4Addr, peer: SocketAddrV4, payload: &[u8]) {
        let (side, next_hop) = match self.fwd.route(*peer.ip()) {
            Some(NextHop::Connected(side)) => (side, *peer.ip()),
            Some(NextHop::Via { side, gateway }) => (side, gateway),
            _ => {
                tracing::warn!(%peer, "no route to the L2TP peer");
                return;
            }
        };
        let mac = self.resolver.get(next_hop).and_then(|n| n.mac());
        let port = self.fwd.side(side);
        let Some(frame) = udp_frame(
            side,
            mac.unwrap_or(MacAddr::ZERO),
            port.mac,
            (local, wire_l2tp::PORT),
            (*peer.ip(), peer.port()),
            payload,
        ) else {
            return;
        };
        match mac {
            Some(_) => self.out.push_back(Output::Inject(0, Box::new(frame))),
            None => {
                // Retransmission covers a frame lost here; a few wait for the answer.
                if self.l2tp_waiting.len() < 64 {
                    self.l2tp_waiting.push((next_hop, frame));
                }
                self.resolver.resolve(now, next_hop, side);
            }
        }
    }

    /// The L2TP engine, when `[l2tp]` is on.
    pub fn l2tp(&self) -> Option<&L2tp> {
        self.l2tp.as_ref()
    }

    /// Carries out a change to the L2TP engine, then what it decided.
    pub fn with_l2tp<T>(&mut self, now: Instant, f: impl FnOnce(Option<&mut L2tp>) -> T) -> T {
        let r = f(self.l2tp.as_mut());
        self.drain_l2tp(now);
        r
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
            Some(Operation::Request) if self.fwd.answers_arp(side, tpa) => Heard::RequestForUs,
            _ => return,
        };
        self.resolver.learn(now, side, spa, sha, heard);
    }

    /// Runs the timers due at `now`.
    pub fn tick(&mut self, now: Instant) {
        self.resolver.tick(now);
        self.drain_resolver();
        self.aaa_tick(now);
        self.lac_tick(now);
        self.pppoe_tick(now);
        self.lns_tick(now);
        self.ipv6_tick(now);
        self.dhcp_tick(now);
        if let Some(l) = self.l2tp.as_mut() {
            l.tick(now);
            self.drain_l2tp(now);
        }
    }

    /// When [`Self::tick`] next has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let l2tp = self.l2tp.as_ref().and_then(L2tp::poll_timeout);
        let pppoe = self.pppoe.as_ref().and_then(pppoe::Pppoe::poll_timeout);
        let lns = self.lns.as_ref().and_then(lns::Lns::poll_timeout);
        let ipv6 = self.ipv6.as_ref().and_then(ipv6::Ipv6::poll_timeout);
        [
            lns,
            self.resolver.poll_timeout(),
            self.aaa.poll_timeout(),
            self.lac_poll_timeout(),
            l2tp,
            pppoe,
            ipv6,
            self.dhcp_poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
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
                    let mut i = 0;
                    while i < self.l2tp_waiting.len() {
                        if self.l2tp_waiting[i].0 == ip {
                            let (_, f) = self.l2tp_waiting.swap_remove(i);
                            let mut b = f.bytes().to_vec();
                            b[..6].copy_from_slice(&mac.0);
                            if let Some(f) = Frame::new(f.side, &b) {
                                self.out.push_back(Output::Inject(0, Box::new(f)));
                            }
                        } else {
                            i += 1;
                        }
                    }
                    Output::Command(Target::All, Command::NeighborSet { ip, mac })
                }
                neighbor::Output::Failed { ip } => {
                    self.l2tp_waiting.retain(|w| w.0 != ip);
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

#[cfg(test)]
mod ipv6_tests;
#[cfg(test)]
mod lns_tests;
#[cfg(test)]
mod pppoe_tests;

#[cfg(test)]
mod dhcp_tests;

#[cfg(test)]
mod lac_tests;
