//! IPoE subscribers by DHCPv4 in the core (issue 16, ACC-3): the DHCP server engine
//! ([`crate::dhcp::Server`]) glued to logins, pools, the fast path and accounting.
//!
//! Punted DHCP client messages (IPv4/UDP to port 67 from the access side, untagged or on
//! VLAN lines) go to the server with the line they came on. A DISCOVER of a subscriber
//! without a lease becomes a login like any other ([`Output::Authenticate`]: by MAC, or
//! by option 82's circuit-id or remote-id as user name, `[dhcp] login_by`); the answer
//! ([`Core::on_auth`]) gives the address (Framed-IP-Address, Framed-Pool or the default
//! pool) that the server OFFERs, or no OFFER. On the ACK the session is installed with
//! the client's MAC and line (VLAN tags as received) and accounted; RELEASE, DECLINE and
//! lease expiry end it (the fast path's final record gives the Stop); a session ended
//! elsewhere (DISC condition, CoA, `ctl`) ends the lease, whose renewals then get NAK.
//!
//! Leases are persisted: every start, renewal and end is a [`LeaseChange`] (the lease in
//! [`Lease::encode`]'s form, or its removal) for the shell to keep; at a start the shell
//! hands them back ([`Core::dhcp_restore`]), and each live lease logs in again to get
//! its session back with the same address, while the client keeps its lease.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::Duration;

use hashbrown::HashMap;
use tollgate_dataplane::fib::NextHop;
use tollgate_dataplane::session::{
    AccessLine, DisconnectCause, Encap, SessionId, SessionSpec, VlanTag, Vlans,
};
use tollgate_dataplane::time::Instant;
use tollgate_dataplane::{Frame, MacAddr, Side};

use super::aaa::{self, AuthAnswer, LoginRequest};
use super::pppoe::{frame, vlans_of};
use super::sessions::SessionRequest;
use super::{Core, Output};
use crate::authz::Authorization;
use crate::dhcp::{
    self, DecisionError, EndCause, Event, Grant, Lease, LoginBy, Relay, RelayConfig, RestoreError,
    Restored, Server, ServerConfig, Stats, Transmit,
};
use crate::ipoe::{MacDisplay, Subscriber};
use crate::pppoe::{Line, LineId};
use crate::radius::attrs::PppoeLine;
use crate::wire::ethernet::{Header, Mac, ethertype};

/// How the gateway serves DHCPv4 on its access side (`[dhcp]`).
#[derive(Clone, Debug)]
pub struct DhcpSettings {
    /// The server engine: server identifier (the gateway's access address), login by,
    /// rates, limits, timers.
    pub server: ServerConfig,
    /// The subnet mask given with every address.
    pub mask: Ipv4Addr,
    /// DNS servers given (option 6).
    pub dns: Vec<Ipv4Addr>,
    /// The lease time granted (a shorter Session-Timeout bounds it).
    pub lease_time: Duration,
    /// How long an address a client DECLINEd (RFC 2131 4.3.3: someone else answers
    /// for it) stays out of its pool; zero returns it at once.
    pub decline_hold: Duration,
    /// The TPID of an outer tag when a line's tags are not known from a received frame
    /// (leases restored after a restart): 0x8100, or 0x88a8 for S-VLANs.
    pub outer_tpid: u16,
    /// The access port's name in NAS-Port-Id (`access0.100.7`).
    pub port_name: String,
    /// Relay mode instead of the server: relay to these external DHCP servers (option
    /// 82 added); the session starts on the server's ACK (and its login).
    pub relay: Option<RelayConfig>,
}

/// The lease time granted: the configured one, bounded by a Session-Timeout (the
/// client comes back before the session would end under it), at least a second.
fn lease_time(configured: Duration, session_time_s: Option<u32>) -> Duration {
    match session_time_s {
        Some(s) => configured.min(Duration::from_secs(u64::from(s).max(1))),
        None => configured,
    }
}

/// The DHCP engine of the gateway: its own server, or a relay to external servers.
#[derive(Debug)]
enum Engine {
    Server(Box<Server>),
    Relay(Box<Relay>),
}

impl Engine {
    fn handle_datagram(&mut self, now: Instant, line: Line, mac: Mac, datagram: &[u8]) {
        match self {
            Engine::Server(s) => s.handle_datagram(now, line, mac, datagram),
            Engine::Relay(r) => r.handle_datagram(now, line, mac, datagram),
        }
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        match self {
            Engine::Server(s) => s.poll_transmit(),
            Engine::Relay(r) => r.poll_transmit(),
        }
    }

    fn poll_event(&mut self) -> Option<Event> {
        match self {
            Engine::Server(s) => s.poll_event(),
            Engine::Relay(r) => r.poll_event(),
        }
    }

    fn login_by(&self) -> LoginBy {
        match self {
            Engine::Server(s) => s.config().login_by,
            Engine::Relay(_) => LoginBy::Mac,
        }
    }

    fn accept(&mut self, now: Instant, id: dhcp::LoginId, g: Grant) -> Result<(), DecisionError> {
        match self {
            Engine::Server(s) => s.accept(now, id, g),
            Engine::Relay(_) => Err(DecisionError::NotPending),
        }
    }

    fn reject(&mut self, now: Instant, id: dhcp::LoginId) -> Result<(), DecisionError> {
        match self {
            Engine::Server(s) => s.reject(now, id),
            Engine::Relay(_) => Err(DecisionError::NotPending),
        }
    }

    fn end_session(&mut self, sub: &Subscriber, reason: &str) -> bool {
        match self {
            Engine::Server(s) => s.end_session(sub, reason),
            Engine::Relay(r) => r.end_session(sub, reason),
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        match self {
            Engine::Server(s) => s.poll_timeout(),
            Engine::Relay(r) => r.poll_timeout(),
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        match self {
            Engine::Server(s) => s.handle_timeout(now),
            Engine::Relay(r) => r.handle_timeout(now),
        }
    }

    fn restore(&mut self, now: Instant, lease: Lease) -> Result<Restored, RestoreError> {
        match self {
            Engine::Server(s) => s.restore(now, lease),
            Engine::Relay(r) => r.restore(now, lease),
        }
    }

    fn lease(&self, sub: &Subscriber) -> Option<&Lease> {
        match self {
            Engine::Server(s) => s.lease(sub),
            Engine::Relay(r) => r.lease(sub),
        }
    }

    fn leases_count(&self) -> usize {
        match self {
            Engine::Server(s) => s.leases().count(),
            Engine::Relay(r) => r.leases().count(),
        }
    }

    fn stats(&self) -> Stats {
        match self {
            Engine::Server(s) => s.stats(),
            Engine::Relay(r) => r.stats(),
        }
    }

    fn drops(&self) -> Vec<(dhcp::DropReason, u64)> {
        match self {
            Engine::Server(s) => s.drops().collect(),
            Engine::Relay(r) => r.drops().collect(),
        }
    }

    fn refusals(&self) -> Vec<(dhcp::Refusal, u64)> {
        dhcp::Refusal::ALL
            .into_iter()
            .map(|f| {
                let n = match self {
                    Engine::Server(s) => s.refusal_count(f),
                    Engine::Relay(r) => r.refusal_count(f),
                };
                (f, n)
            })
            .collect()
    }
}

/// Why the core dropped a punted DHCP message (the server counts its own).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum DhcpDrop {
    /// DHCP message while `[dhcp]` is off.
    Disabled,
    /// DHCP message from the core side.
    NotAccessSide,
    /// A reply did not fit the punt/inject frame size.
    TooLong,
    /// An authentication answer for a login the client gave up meanwhile.
    StaleAnswer,
    /// Relay mode: a server's datagram that is not well-formed IPv4/UDP.
    ServerMalformed,
    /// Relay mode: no route to the DHCP server, or its next hop's MAC not known yet
    /// (resolution starts; the client's retransmission goes next).
    ServerUnreachable,
}

impl DhcpDrop {
    /// Number of reasons.
    pub const COUNT: usize = 6;
    /// All, in counter order.
    pub const ALL: [DhcpDrop; DhcpDrop::COUNT] = [
        DhcpDrop::Disabled,
        DhcpDrop::NotAccessSide,
        DhcpDrop::TooLong,
        DhcpDrop::StaleAnswer,
        DhcpDrop::ServerMalformed,
        DhcpDrop::ServerUnreachable,
    ];

    /// The counter's name.
    pub fn name(self) -> &'static str {
        match self {
            DhcpDrop::Disabled => "dhcp_disabled",
            DhcpDrop::NotAccessSide => "dhcp_not_access_side",
            DhcpDrop::TooLong => "dhcp_frame_too_long",
            DhcpDrop::StaleAnswer => "dhcp_stale_auth_answer",
            DhcpDrop::ServerMalformed => "dhcp_server_malformed",
            DhcpDrop::ServerUnreachable => "dhcp_server_unreachable",
        }
    }
}

/// What the DHCP side of the core counted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DhcpStats {
    /// DHCP messages punted to the core.
    pub punted: u64,
    /// Replies sent (OFFER, ACK, NAK).
    pub frames_sent: u64,
    /// Drops by [`DhcpDrop`].
    pub drops: [u64; DhcpDrop::COUNT],
    /// Logins accepted (an address offered).
    pub auth_accepted: u64,
    /// Logins refused (rejected, unavailable, no address).
    pub auth_rejected: u64,
    /// Sessions installed in the fast path (ACK sent).
    pub installed: u64,
    /// Leases bound to the subscriber's session of the other family (IPv6 first: an RS
    /// or a DHCPv6 SOLICIT logged it in) instead of a session of their own.
    pub joined: u64,
    /// Leases restored at a start.
    pub restored: u64,
    /// Sessions ended, by [`EndCause`] name.
    pub ended: BTreeMap<&'static str, u64>,
}

/// A lease to keep or forget, for the shell's lease file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseChange {
    /// The subscriber, written `port.svlan.cvlan-mac` (no spaces).
    pub key: String,
    /// The lease in [`Lease::encode`]'s form (times as Unix seconds), or `None`: forget it.
    pub lease: Option<Vec<u8>>,
}

/// The key of `sub`'s persisted lease.
pub fn lease_key(sub: &Subscriber) -> String {
    let v = |v: Option<u16>| v.map_or("-".to_string(), |v| v.to_string());
    format!(
        "{}.{}.{}-{}",
        sub.line.port,
        v(sub.line.svlan),
        v(sub.line.cvlan),
        MacDisplay(sub.mac)
    )
}

/// What an accepted login granted, until the ACK installs the session.
#[derive(Debug)]
struct Granted {
    user: String,
    authorization: Authorization,
    address: Ipv4Addr,
    pooled: bool,
}

/// A subscriber the core follows: a login in progress, an offer, or a session.
#[derive(Debug)]
struct Client {
    /// The line's tags as received (downlink frames carry them).
    vlans: Vlans,
    /// The line as RADIUS and the accounting records name it.
    line: PppoeLine,
    /// The server's login, while one is in progress.
    dhcp_login: Option<dhcp::LoginId>,
    /// The AAA login waiting for its answer.
    login: Option<aaa::LoginId>,
    /// Accepted, offered, not yet ACKed.
    granted: Option<Granted>,
    /// A lease restored at a start, logging in again for its session.
    restoring: Option<Ipv4Addr>,
    /// The gateway session, once installed.
    session: Option<SessionId>,
    /// The lease joins the subscriber's IPv6-first session (RS, DHCPv6 SOLICIT) instead
    /// of installing one: one session for both families. Without `granted`, that
    /// session's login is still under way.
    joining: bool,
}

/// A DECLINEd pool address held back from its pool.
#[derive(Clone, Copy, Debug)]
struct Held {
    /// When it goes back to its pool.
    until: Instant,
    /// Its session's end has handed it over (the pool's release was skipped), so the
    /// hold's end releases it.
    returned: bool,
}

/// The DHCP half of the core's state.
pub(super) struct Dhcp {
    server: Engine,
    mask: Ipv4Addr,
    dns: Vec<Ipv4Addr>,
    lease_time: Duration,
    decline_hold: Duration,
    /// Pool addresses DECLINEd, kept out of their pool until the instant given.
    held: BTreeMap<Ipv4Addr, Held>,
    outer_tpid: u16,
    port_name: String,
    ac_mac: Mac,
    clients: HashMap<Subscriber, Client>,
    by_login: HashMap<aaa::LoginId, Subscriber>,
    by_session: HashMap<SessionId, Subscriber>,
    /// The line and tags of the frame being handled (its replies keep its TPIDs).
    frame_vlans: Option<(Line, Vlans)>,
    /// The gateway is stopping: sessions that end now keep their leases (they come
    /// back at the next start).
    stopping: bool,
    stats: DhcpStats,
}

impl std::fmt::Debug for Dhcp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Dhcp({} clients)", self.clients.len())
    }
}

impl Dhcp {
    pub(super) fn new(s: DhcpSettings, ac_mac: MacAddr, now: Instant) -> Dhcp {
        Dhcp {
            server: match s.relay {
                Some(r) => Engine::Relay(Box::new(Relay::new(r, now))),
                None => Engine::Server(Box::new(Server::new(s.server, now))),
            },
            mask: s.mask,
            dns: s.dns,
            lease_time: s.lease_time,
            decline_hold: s.decline_hold,
            held: BTreeMap::new(),
            outer_tpid: s.outer_tpid,
            port_name: s.port_name,
            ac_mac: ac_mac.0,
            clients: HashMap::new(),
            by_login: HashMap::new(),
            by_session: HashMap::new(),
            frame_vlans: None,
            stopping: false,
            stats: DhcpStats::default(),
        }
    }

    fn drop(&mut self, d: DhcpDrop) {
        self.stats.drops[d as usize] += 1;
    }

    /// `line` with its option 82, as RADIUS and the records name it.
    fn radius_line(&self, line: Line, id: Option<&LineId>) -> PppoeLine {
        PppoeLine {
            nas_port_id: line.nas_port_id(&self.port_name),
            circuit_id: id.and_then(|l| l.circuit_id.clone()),
            remote_id: id.and_then(|l| l.remote_id.clone()),
            ipoe: true,
        }
    }

    /// The tags of `line`: the frame's being handled (or the client's being answered),
    /// else built from the line with the configured outer TPID.
    fn vlans_for(&self, line: Line) -> Vlans {
        if let Some((l, v)) = self.frame_vlans
            && l == line
        {
            return v;
        }
        let tag = |tpid, vid: Option<u16>| vid.map(|vid| VlanTag { tpid, vid });
        match line.cvlan {
            Some(_) => Vlans {
                outer: tag(self.outer_tpid, line.svlan),
                inner: tag(0x8100, line.cvlan),
            },
            None => Vlans {
                outer: tag(0x8100, line.svlan),
                inner: None,
            },
        }
    }
}

/// Whether the IPv4 packet at `ip` is UDP to the DHCP server port (what the fast path
/// punts as `dhcp_client`).
pub(super) fn to_server(ip: &[u8]) -> bool {
    let hl = ip.first().map_or(0, |b| usize::from(b & 0x0f) * 4);
    hl >= 20
        && ip.get(9) == Some(&crate::inet::ipv4::protocol::UDP)
        && ip.get(hl + 2..hl + 4) == Some(&dhcp::wire::SERVER_PORT.to_be_bytes()[..])
}

/// The fast path's cause for a lease's end.
fn disconnect_cause(cause: &EndCause) -> DisconnectCause {
    match cause {
        EndCause::Release | EndCause::Decline => DisconnectCause::UserRequest,
        // The client stopped renewing without a word: gone, like a PPP peer that stops
        // answering echoes.
        EndCause::Expired => DisconnectCause::LostCarrier,
        _ => DisconnectCause::NasRequest,
    }
}

impl Core {
    /// A punted DHCP message (IPv4/UDP to port 67), Ethernet header already parsed.
    pub(super) fn on_dhcp(&mut self, now: Instant, side: Side, h: Header, bytes: &[u8]) {
        let Some(d) = self.dhcp.as_mut() else {
            self.dhcp_disabled_drops += 1;
            return;
        };
        if side != Side::Access {
            // Relay mode: a server's reply to our giaddr.
            let Engine::Relay(r) = &mut d.server else {
                d.drop(DhcpDrop::NotAccessSide);
                return;
            };
            d.stats.punted += 1;
            let line = Line::untagged(0);
            match dhcp::parse_datagram(line, h.src, &bytes[h.payload_at..], dhcp::wire::SERVER_PORT)
            {
                Ok(rx) => r.handle_server(now, rx.src_ip, rx.message),
                Err(_) => d.drop(DhcpDrop::ServerMalformed),
            }
            self.dhcp_drain(now);
            return;
        }
        d.stats.punted += 1;
        let line = Line {
            port: 0,
            svlan: h.outer.map(|t| t.vid),
            cvlan: h.inner.map(|t| t.vid),
        };
        d.frame_vlans = Some((line, vlans_of(&h)));
        d.server
            .handle_datagram(now, line, h.src, &bytes[h.payload_at..]);
        self.dhcp_drain(now);
        if let Some(d) = self.dhcp.as_mut() {
            d.frame_vlans = None;
        }
    }

    /// True when login `login` is a DHCP subscriber's.
    pub(super) fn dhcp_owns_login(&self, login: aaa::LoginId) -> bool {
        self.dhcp
            .as_ref()
            .is_some_and(|d| d.by_login.contains_key(&login))
    }

    /// Sends what the server queued and acts on its events, until it is quiet.
    fn dhcp_drain(&mut self, now: Instant) {
        loop {
            let Some(d) = self.dhcp.as_mut() else {
                return;
            };
            let mut frames = Vec::new();
            let mut to_servers = Vec::new();
            while let Some(t) = d.server.poll_transmit() {
                match t.to {
                    dhcp::Destination::Access { line, mac } => {
                        let v = d.vlans_for(line);
                        frames.push(frame(mac, d.ac_mac, &v, ethertype::IPV4, &t.datagram()));
                    }
                    dhcp::Destination::Server => to_servers.push(t),
                }
            }
            let events: Vec<Event> = std::iter::from_fn(|| d.server.poll_event()).collect();
            for f in frames {
                self.dhcp_inject(&f);
            }
            for t in to_servers {
                self.dhcp_to_server(now, &t);
            }
            if events.is_empty() {
                return;
            }
            for e in events {
                self.on_dhcp_event(now, e);
            }
        }
    }

    /// Relay mode: a datagram to a DHCP server, routed out of its side to the next hop;
    /// while the next hop's MAC is not known, resolution starts and the datagram is
    /// dropped (counted): the client retransmits.
    fn dhcp_to_server(&mut self, now: Instant, t: &Transmit) {
        let (side, next_hop) = match self.fwd.route(t.dst) {
            Some(NextHop::Connected(side)) => (side, t.dst),
            Some(NextHop::Via { side, gateway }) => (side, gateway),
            _ => {
                if let Some(d) = self.dhcp.as_mut() {
                    d.drop(DhcpDrop::ServerUnreachable);
                }
                return;
            }
        };
        let Some(mac) = self.resolver.get(next_hop).and_then(|n| n.mac()) else {
            if let Some(d) = self.dhcp.as_mut() {
                d.drop(DhcpDrop::ServerUnreachable);
            }
            self.resolver.resolve(now, next_hop, side);
            self.drain_resolver();
            return;
        };
        let src = self.fwd.side(side).mac;
        let f = frame(
            mac.0,
            src.0,
            &Vlans::default(),
            ethertype::IPV4,
            &t.datagram(),
        );
        let Some(d) = self.dhcp.as_mut() else {
            return;
        };
        match Frame::new(side, &f) {
            Some(f) => {
                d.stats.frames_sent += 1;
                self.out.push_back(Output::Inject(0, Box::new(f)));
            }
            None => d.drop(DhcpDrop::TooLong),
        }
    }

    fn dhcp_inject(&mut self, bytes: &[u8]) {
        let Some(d) = self.dhcp.as_mut() else {
            return;
        };
        match Frame::new(Side::Access, bytes) {
            Some(f) => {
                d.stats.frames_sent += 1;
                self.out.push_back(Output::Inject(0, Box::new(f)));
            }
            None => d.drop(DhcpDrop::TooLong),
        }
    }

    fn on_dhcp_event(&mut self, now: Instant, e: Event) {
        match e {
            Event::Login(l) => self.dhcp_login(now, l),
            Event::LoginCancelled { subscriber, .. } => {
                self.dhcp_forget(&subscriber);
            }
            Event::SessionStarted(lease) => self.dhcp_install(now, lease),
            Event::LeaseRenewed(lease) => self.dhcp_persist(now, &lease),
            Event::SessionEnded { lease, cause } => self.dhcp_ended(now, &lease, &cause),
        }
    }

    /// A DISCOVER of a subscriber without a lease: its login.
    fn dhcp_login(&mut self, now: Instant, l: dhcp::Login) {
        let Some(d) = self.dhcp.as_mut() else {
            return;
        };
        let sub = l.subscriber;
        let vlans = d.vlans_for(sub.line);
        let line = d.radius_line(sub.line, l.line_id.as_ref());
        let by_mac = d.server.login_by() == LoginBy::Mac;
        let req = LoginRequest {
            user: (!by_mac).then(|| String::from_utf8_lossy(&l.user).into_owned()),
            mac: Some(MacAddr(sub.mac)),
            line: Some(line.clone()),
            ..LoginRequest::default()
        };
        self.dhcp_forget(&sub);
        // One session for both families: an IPv6-first session of this subscriber (its
        // RS or DHCPv6 SOLICIT came first, or its login is under way) is joined.
        let session = self.ipoe_session_of(sub);
        if session.is_some() || self.logging_in_first_packet(MacAddr(sub.mac)) {
            if let Some(d) = self.dhcp.as_mut() {
                d.clients.insert(
                    sub,
                    Client {
                        vlans,
                        line,
                        dhcp_login: Some(l.id),
                        login: None,
                        granted: None,
                        restoring: None,
                        session: None,
                        joining: true,
                    },
                );
            }
            if let Some((id, spec, _)) = session {
                self.dhcp_join(now, sub, id, spec.address);
            }
            return;
        }
        match self.login(now, req) {
            Ok(login) => {
                if let Some(d) = self.dhcp.as_mut() {
                    d.by_login.insert(login, sub);
                    d.clients.insert(
                        sub,
                        Client {
                            vlans,
                            line,
                            dhcp_login: Some(l.id),
                            login: Some(login),
                            granted: None,
                            restoring: None,
                            session: None,
                            joining: false,
                        },
                    );
                }
            }
            Err(e) => {
                tracing::info!(subscriber = %sub, error = %e, "DHCP login not started");
                if let Some(d) = self.dhcp.as_mut() {
                    d.stats.auth_rejected += 1;
                    let _ = d.server.reject(now, l.id);
                }
            }
        }
    }

    /// True while `sub`'s DHCPv4 login is under way (DISCOVER to ACK): its session is
    /// coming, an IPv6-first login of the same subscriber would make a second one.
    pub(super) fn dhcp_logging_in(&self, sub: &Subscriber) -> bool {
        self.dhcp
            .as_ref()
            .and_then(|d| d.clients.get(sub))
            .is_some_and(|c| c.session.is_none() && !c.joining)
    }

    /// Offers `sub`, joining its IPv6-first session `id`, that session's `address`: no
    /// login of its own (the session's user and authorization), nothing from the pools.
    fn dhcp_join(&mut self, now: Instant, sub: Subscriber, id: SessionId, address: Ipv4Addr) {
        let Some(a) = self.aaa_session(id) else {
            return;
        };
        let g = Granted {
            user: a.user.clone(),
            authorization: a.authorization.clone(),
            address,
            pooled: false,
        };
        let Some(login) = self
            .dhcp
            .as_ref()
            .and_then(|d| d.clients.get(&sub))
            .and_then(|c| c.dhcp_login)
        else {
            return;
        };
        if let Some(e) = self.dhcp_offer(now, sub, login, g) {
            tracing::info!(subscriber = %sub, error = %e, "DHCP join refused");
            if let Some(d) = self.dhcp.as_mut() {
                d.stats.auth_rejected += 1;
                d.clients.remove(&sub);
                let _ = d.server.reject(now, login);
            }
        }
        self.dhcp_drain(now);
    }

    /// An IPoE session was installed: a DHCPv4 login of its subscriber that waited for
    /// it (the IPv6-first login was under way at the DISCOVER) is offered its address.
    pub(super) fn dhcp_session_opened(&mut self, now: Instant, spec: &SessionSpec) {
        let Some(d) = self.dhcp.as_ref() else {
            return;
        };
        let (Some(mac), Encap::Ipoe) = (spec.mac, spec.access.encap) else {
            return;
        };
        let sub = Subscriber::new(super::ipv6::line_of_key(spec.access.vlans.key()), mac.0);
        let waiting = d
            .clients
            .get(&sub)
            .is_some_and(|c| c.joining && c.granted.is_none() && c.session.is_none());
        if waiting {
            self.dhcp_join(now, sub, spec.id, spec.address);
        }
    }

    /// Forgets what the core held for `sub` before a session (a login in progress, a
    /// granted address).
    fn dhcp_forget(&mut self, sub: &Subscriber) {
        let Some(d) = self.dhcp.as_mut() else {
            return;
        };
        let Some(c) = d.clients.get(sub) else {
            return;
        };
        if c.session.is_some() {
            return;
        }
        let Some(c) = d.clients.remove(sub) else {
            return;
        };
        if let Some(l) = c.login {
            d.by_login.remove(&l);
        }
        if let Some(g) = c.granted
            && g.pooled
        {
            self.aaa_release(g.address);
        }
    }

    /// The authentication answer of a DHCP login (from [`Core::on_auth`]).
    pub(super) fn dhcp_auth_answer(
        &mut self,
        now: Instant,
        login: aaa::LoginId,
        answer: AuthAnswer,
    ) {
        let Some(d) = self.dhcp.as_mut() else {
            return;
        };
        let Some(sub) = d.by_login.remove(&login) else {
            d.drop(DhcpDrop::StaleAnswer);
            return;
        };
        let Some(c) = d.clients.get_mut(&sub) else {
            d.drop(DhcpDrop::StaleAnswer);
            return;
        };
        c.login = None;
        let restoring = c.restoring;
        let dhcp_login = c.dhcp_login;
        let refused = match answer {
            AuthAnswer::Accept {
                user,
                authorization,
            } => {
                let address = match restoring {
                    Some(ip) => Ok((ip, self.aaa_reserve(ip))),
                    None => self.ppp_address(&authorization),
                };
                match address {
                    Ok((address, pooled)) => {
                        self.aaa_accepted_ppp();
                        let g = Granted {
                            user,
                            authorization: *authorization,
                            address,
                            pooled,
                        };
                        match (restoring, dhcp_login) {
                            (Some(_), _) => {
                                self.dhcp_open(now, sub, g);
                                None
                            }
                            (None, Some(id)) => self.dhcp_offer(now, sub, id, g),
                            (None, None) => None,
                        }
                    }
                    Err(e) => {
                        self.aaa_failed_ppp();
                        Some(e)
                    }
                }
            }
            AuthAnswer::Reject(why) => {
                self.aaa_rejected_ppp(false);
                Some(format!("rejected: {why}"))
            }
            AuthAnswer::Unavailable(why) => {
                self.aaa_rejected_ppp(true);
                Some(format!("authentication unavailable: {why}"))
            }
        };
        if let Some(why) = refused {
            tracing::info!(subscriber = %sub, reason = %why, "DHCP login refused");
            let Some(d) = self.dhcp.as_mut() else {
                return;
            };
            d.stats.auth_rejected += 1;
            match (restoring, dhcp_login) {
                (Some(_), _) => {
                    d.clients.remove(&sub);
                    d.server.end_session(&sub, &why);
                }
                (None, Some(id)) => {
                    d.clients.remove(&sub);
                    let _ = d.server.reject(now, id);
                }
                (None, None) => {}
            }
        }
        self.dhcp_drain(now);
    }

    /// An accepted login: the server OFFERs its address. Returns why not, if it cannot.
    fn dhcp_offer(
        &mut self,
        now: Instant,
        sub: Subscriber,
        id: dhcp::LoginId,
        g: Granted,
    ) -> Option<String> {
        let d = self.dhcp.as_mut()?;
        let mut grant = Grant::new(g.address, d.mask);
        grant.dns = d.dns.clone();
        grant.lease_time = lease_time(d.lease_time, g.authorization.conditions.session_time_s);
        grant.mtu = g.authorization.framed_mtu;
        let vlans = d.clients.get(&sub).map(|c| c.vlans);
        d.frame_vlans = vlans.map(|v| (sub.line, v));
        let r = d.server.accept(now, id, grant);
        d.frame_vlans = None;
        match r {
            Ok(()) => {
                d.stats.auth_accepted += 1;
                tracing::info!(subscriber = %sub, user = %g.user, address = %g.address, "DHCP login accepted");
                if let Some(c) = d.clients.get_mut(&sub) {
                    c.granted = Some(g);
                }
                None
            }
            Err(e) => {
                if g.pooled {
                    self.aaa_release(g.address);
                }
                Some(e.to_string())
            }
        }
    }

    /// ACK sent for a lease that joins the subscriber's session: the lease is that
    /// session's from now on (its RELEASE or expiry ends it). If the session ended
    /// meanwhile, so does the lease (the client's next REQUEST gets NAK).
    fn dhcp_bind_joined(&mut self, now: Instant, sub: Subscriber, address: Ipv4Addr) {
        let session = self
            .ipoe_session_of(sub)
            .filter(|(_, spec, _)| spec.address == address)
            .map(|(id, _, _)| id);
        let Some(d) = self.dhcp.as_mut() else {
            return;
        };
        match session {
            Some(sid) => {
                tracing::info!(session = sid, subscriber = %sub, %address, "DHCP lease joins the session");
                d.stats.joined += 1;
                d.by_session.insert(sid, sub);
                if let Some(c) = d.clients.get_mut(&sub) {
                    c.session = Some(sid);
                    c.dhcp_login = None;
                    c.joining = false;
                }
            }
            None => {
                d.clients.remove(&sub);
                d.server
                    .end_session(&sub, "the session it joined has ended");
                self.dhcp_drain(now);
            }
        }
    }

    /// ACK sent: the session goes into the fast path and is accounted; if it cannot, the
    /// lease ends (the client's next REQUEST gets NAK).
    fn dhcp_install(&mut self, now: Instant, lease: Lease) {
        let sub = lease.subscriber;
        let g = self
            .dhcp
            .as_mut()
            .and_then(|d| d.clients.get_mut(&sub))
            .and_then(|c| c.granted.take());
        self.dhcp_persist(now, &lease);
        match g {
            Some(g) => self.dhcp_open(now, sub, g),
            // Relay mode: the external server gave the address; the login authorizes
            // the session, which opens with that address.
            None => {
                self.dhcp_login_for_lease(now, &lease);
            }
        }
    }

    /// Installs `sub`'s session with what `g` granted.
    fn dhcp_open(&mut self, now: Instant, sub: Subscriber, g: Granted) {
        let joined = self
            .dhcp
            .as_ref()
            .and_then(|d| d.clients.get(&sub))
            .is_some_and(|c| c.joining);
        if joined {
            self.dhcp_bind_joined(now, sub, g.address);
            return;
        }
        let Some(d) = self.dhcp.as_ref() else {
            return;
        };
        let (vlans, line) = match d.clients.get(&sub) {
            Some(c) => (c.vlans, c.line.clone()),
            None => (d.vlans_for(sub.line), d.radius_line(sub.line, None)),
        };
        let access = AccessLine {
            vlans,
            encap: Encap::Ipoe,
            mss_clamp: 0,
        };
        let mac = MacAddr(sub.mac);
        let address = g.address;
        let user = g.user.clone();
        let auth = g.authorization;
        let release = |core: &mut Core| {
            if g.pooled {
                core.aaa_release(address);
            }
        };
        let group = auth.billing_account.clone().unwrap_or_else(|| user.clone());
        let mut result = Ok(());
        if let Some(max) = auth.conditions.max_logins {
            result = self.make_room(&group, max, &auth);
        }
        let result = result.and_then(|()| {
            let (limits, app_idle) = aaa::limits(&auth, self.aaa_app_margin());
            let request = SessionRequest {
                user: user.clone(),
                address,
                mac: Some(mac),
                channel: None,
                services: self.service_set(&auth),
                bandwidth: aaa::bandwidth(&auth),
                limits,
                max_flows: self.aaa_max_flows(),
            };
            self.install(
                now,
                request,
                auth,
                Some(mac.to_string()),
                app_idle,
                g.pooled,
                Some((access, Some(line))),
            )
            .map_err(|e| e.to_string())
        });
        match result {
            Ok(sid) => {
                tracing::info!(session = sid, subscriber = %sub, %user, %address, "DHCP session started");
                if let Some(d) = self.dhcp.as_mut() {
                    d.stats.installed += 1;
                    d.by_session.insert(sid, sub);
                    if let Some(c) = d.clients.get_mut(&sub) {
                        c.session = Some(sid);
                        c.restoring = None;
                        c.dhcp_login = None;
                    }
                }
            }
            Err(e) => {
                release(self);
                tracing::warn!(subscriber = %sub, error = %e, "DHCP session not installed");
                if let Some(d) = self.dhcp.as_mut() {
                    d.clients.remove(&sub);
                    d.server.end_session(&sub, &e);
                }
                self.dhcp_drain(now);
            }
        }
    }

    /// Hands the shell `lease` to keep.
    fn dhcp_persist(&mut self, now: Instant, lease: &Lease) {
        let unix = (self.clock.unix_ns(now).max(0) / 1_000_000_000) as u64;
        self.out.push_back(Output::Lease(LeaseChange {
            key: lease_key(&lease.subscriber),
            lease: Some(lease.encode(now, unix)),
        }));
    }

    /// A lease ended: the shell forgets it, the session (if any and not already going)
    /// is removed from the fast path, whose final record brings the Stop.
    fn dhcp_ended(&mut self, now: Instant, lease: &Lease, cause: &EndCause) {
        let sub = lease.subscriber;
        self.out.push_back(Output::Lease(LeaseChange {
            key: lease_key(&sub),
            lease: None,
        }));
        let Some(d) = self.dhcp.as_mut() else {
            return;
        };
        *d.stats.ended.entry(cause.name()).or_default() += 1;
        let Some(c) = d.clients.remove(&sub) else {
            return;
        };
        if let Some(l) = c.login {
            d.by_login.remove(&l);
        }
        tracing::info!(subscriber = %sub, address = %lease.address(), cause = cause.name(), session = ?c.session, "DHCP lease ended");
        if let Some(sid) = c.session {
            d.by_session.remove(&sid);
            if self.sessions.get(sid).is_some() {
                let pooled = self.aaa_pooled(sid);
                let Some(d) = self.dhcp.as_mut() else {
                    return;
                };
                if matches!(cause, EndCause::Decline) && pooled && !d.decline_hold.is_zero() {
                    let until = now + d.decline_hold;
                    tracing::warn!(address = %lease.address(), subscriber = %sub, "DHCP client declined its address: another host answers for it; held back from the pool");
                    d.held.insert(
                        lease.address(),
                        Held {
                            until,
                            returned: false,
                        },
                    );
                }
                self.end(sid, disconnect_cause(cause));
            }
        }
    }

    /// A session's pool address is being released: false when a DECLINE holds it back
    /// (the hold's end releases it).
    pub(super) fn dhcp_releases(&mut self, address: Ipv4Addr) -> bool {
        match self.dhcp.as_mut().and_then(|d| d.held.get_mut(&address)) {
            Some(h) => {
                h.returned = true;
                false
            }
            None => true,
        }
    }

    /// Returns the held addresses whose hold ended to their pools.
    fn dhcp_unhold(&mut self, now: Instant) {
        let Some(d) = self.dhcp.as_mut() else {
            return;
        };
        let due: Vec<(Ipv4Addr, Held)> = d
            .held
            .iter()
            .filter(|(_, h)| h.until <= now)
            .map(|(a, h)| (*a, *h))
            .collect();
        for (address, _) in &due {
            d.held.remove(address);
        }
        for (address, h) in due {
            if h.returned {
                self.aaa_release(address);
            }
        }
    }

    /// A gateway session ended (its final record arrived, or the fast path refused it):
    /// if it is a DHCP subscriber's, its lease ends and renewals get NAK.
    pub(super) fn dhcp_session_closed(&mut self, now: Instant, sid: SessionId, why: &str) {
        let Some(d) = self.dhcp.as_mut() else {
            return;
        };
        let Some(sub) = d.by_session.remove(&sid) else {
            return;
        };
        if d.stopping {
            // The lease stays bound and in the lease file.
            d.clients.remove(&sub);
            return;
        }
        if let Some(c) = d.clients.get_mut(&sub) {
            c.session = None;
        }
        if !d.server.end_session(&sub, why) {
            d.clients.remove(&sub);
        }
        self.dhcp_drain(now);
    }

    /// The gateway stops: the sessions the workers end from now on keep their leases,
    /// which the lease file brings back at the next start ([`Core::dhcp_restore`]).
    /// The clients are not told (they keep their addresses and renew as usual).
    /// The access port's name in NAS-Port-Id, when the DHCP server is on.
    pub(super) fn dhcp_port_name(&self) -> Option<&str> {
        self.dhcp.as_ref().map(|d| d.port_name.as_str())
    }

    pub fn dhcp_stopping(&mut self) {
        if let Some(d) = self.dhcp.as_mut() {
            d.stopping = true;
        }
        // DHCPv6 bindings too (`dhcpv6_restart`).
        if let Some(d) = self.ipv6.as_mut().and_then(|v| v.dhcp.as_mut()) {
            d.stopping = true;
        }
    }

    /// True if the DHCP side follows `sub` (a lease logging in again, an offer, a
    /// session).
    pub(super) fn dhcp_follows(&self, sub: &Subscriber) -> bool {
        self.dhcp
            .as_ref()
            .is_some_and(|d| d.clients.contains_key(sub))
    }

    /// Runs the server's timers due at `now` (decision and offer timeouts, lease expiry).
    pub(super) fn dhcp_tick(&mut self, now: Instant) {
        self.dhcp_unhold(now);
        let Some(d) = self.dhcp.as_mut() else {
            return;
        };
        if d.server.poll_timeout().is_some_and(|t| t <= now) {
            d.server.handle_timeout(now);
            self.dhcp_drain(now);
        }
    }

    /// When the server's next timer is due.
    pub(super) fn dhcp_poll_timeout(&self) -> Option<Instant> {
        let d = self.dhcp.as_ref()?;
        let hold = d.held.values().map(|h| h.until).min();
        [d.server.poll_timeout(), hold].into_iter().flatten().min()
    }

    /// Takes back the leases the shell kept ([`LeaseChange`]) after a restart: each live
    /// one logs in again and, accepted, gets its session with the same address; a
    /// refused one ends (renewals get NAK); one that ran out meanwhile ends at once.
    /// Returns how many are live again (logging in); undecodable ones are skipped.
    pub fn dhcp_restore(&mut self, now: Instant, leases: &[Vec<u8>]) -> usize {
        let unix = (self.clock.unix_ns(now).max(0) / 1_000_000_000) as u64;
        let mut live = 0;
        for b in leases {
            let Some(d) = self.dhcp.as_mut() else {
                return 0;
            };
            let lease = match Lease::decode(b, now, unix) {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(error = ?e, "a persisted DHCP lease does not decode; skipped");
                    continue;
                }
            };
            let sub = lease.subscriber;
            let kept = lease.clone();
            match d.server.restore(now, lease) {
                Ok(dhcp::Restored::Live) => {}
                Ok(dhcp::Restored::Expired) => continue,
                Err(e) => {
                    tracing::warn!(subscriber = %sub, error = %e, "a persisted DHCP lease not restored");
                    continue;
                }
            }
            d.stats.restored += 1;
            if self.dhcp_login_for_lease(now, &kept) {
                live += 1;
            }
        }
        self.dhcp_drain(now);
        live
    }

    /// A login for a lease the engine holds already (restored at a start, or ACKed by
    /// the server in relay mode): accepted, its session opens with the lease's address;
    /// refused, the lease ends. Returns whether the login started.
    fn dhcp_login_for_lease(&mut self, now: Instant, lease: &Lease) -> bool {
        let Some(d) = self.dhcp.as_mut() else {
            return false;
        };
        let sub = lease.subscriber;
        let by_mac = d.server.login_by() == LoginBy::Mac;
        let line = d.radius_line(sub.line, lease.line_id.as_ref());
        let vlans = match d.clients.get(&sub) {
            Some(c) => c.vlans,
            None => d.vlans_for(sub.line),
        };
        let req = LoginRequest {
            user: (!by_mac).then(|| String::from_utf8_lossy(&lease.user).into_owned()),
            mac: Some(MacAddr(sub.mac)),
            line: Some(line.clone()),
            ..LoginRequest::default()
        };
        match self.login(now, req) {
            Ok(login) => {
                if let Some(d) = self.dhcp.as_mut() {
                    d.by_login.insert(login, sub);
                    d.clients.insert(
                        sub,
                        Client {
                            vlans,
                            line,
                            dhcp_login: None,
                            login: Some(login),
                            granted: None,
                            restoring: Some(lease.address()),
                            session: None,
                            joining: false,
                        },
                    );
                }
                true
            }
            Err(e) => {
                tracing::warn!(subscriber = %sub, error = %e, "DHCP lease: login not started");
                if let Some(d) = self.dhcp.as_mut() {
                    d.server.end_session(&sub, &e);
                }
                false
            }
        }
    }

    /// The lease of gateway session `sid`, if it is a DHCP subscriber's.
    pub fn dhcp_lease(&self, sid: SessionId) -> Option<&Lease> {
        let d = self.dhcp.as_ref()?;
        d.server.lease(d.by_session.get(&sid)?)
    }

    /// What the DHCP side counted (`None` when `[dhcp]` is off).
    pub fn dhcp_stats(&self) -> Option<&DhcpStats> {
        self.dhcp.as_ref().map(|d| &d.stats)
    }

    /// Every DHCP counter by name, for `show counters` and the metrics: the core's
    /// drops, the server's messages (`dhcp_discover`, ...), drops and refusals, logins,
    /// sessions by end cause (`dhcp_ended_*`). Only `dhcp_disabled` when `[dhcp]` is off.
    pub fn dhcp_counters(&self) -> Vec<(String, u64)> {
        let mut out = Vec::new();
        let Some(d) = self.dhcp.as_ref() else {
            out.push((
                DhcpDrop::Disabled.name().to_string(),
                self.dhcp_disabled_drops,
            ));
            return out;
        };
        let s = &d.stats;
        for r in DhcpDrop::ALL {
            out.push((r.name().to_string(), s.drops[r as usize]));
        }
        let m = d.server.stats();
        for (n, v) in [
            ("discover", m.discover),
            ("offer", m.offer),
            ("request", m.request),
            ("ack", m.ack),
            ("nak", m.nak),
            ("release", m.release),
            ("decline", m.decline),
            ("inform", m.inform),
            ("expired", m.expired),
            ("logins", m.logins),
            ("line_id_malformed", m.line_id_malformed),
            ("rate_untracked", m.rate_untracked),
            ("relayed_to_server", m.relayed_to_server),
            ("relayed_to_client", m.relayed_to_client),
        ] {
            out.push((format!("dhcp_{n}"), v));
        }
        for (r, n) in d.server.drops().into_iter() {
            out.push((r.name().to_string(), n));
        }
        for (r, n) in d.server.refusals().into_iter() {
            out.push((r.name().to_string(), n));
        }
        for (n, v) in [
            ("dhcp_punted", s.punted),
            ("dhcp_frames_sent", s.frames_sent),
            ("dhcp_auth_accepted", s.auth_accepted),
            ("dhcp_auth_rejected", s.auth_rejected),
            ("dhcp_sessions_installed", s.installed),
            ("dhcp_sessions_joined", s.joined),
            ("dhcp_leases_restored", s.restored),
            ("dhcp_leases", d.server.leases_count() as u64),
            ("dhcp_addresses_held", d.held.len() as u64),
        ] {
            out.push((n.to_string(), v));
        }
        for (c, n) in &s.ended {
            out.push((format!("dhcp_ended_{c}"), *n));
        }
        out
    }
}
