//! DHCPv6 for IPoE subscribers in the core (issue 16, V6-1): the DHCPv6 server engine
//! ([`crate::dhcpv6::Server`]) glued to the IPv6 half's sessions.
//!
//! One session per subscriber for both families: a DHCPv6 client is its line and MAC
//! (the client link-layer address option of a relay agent, a DUID-LL/LLT's address, else
//! the frame's source), the same key as its DHCPv4 and SLAAC. A SOLICIT from a
//! subscriber whose session has its /64 is granted at once: IA_NA an address in the
//! session's /64 (its Framed-Interface-Id, else `::1`), IA_PD a delegated prefix
//! (Delegated-IPv6-Prefix, else one of `delegated_length` from `delegated_pool`), DNS
//! servers (option 23). A SOLICIT from a MAC without a session logs it in by MAC, as a
//! Router Solicitation does, and is granted once the session opens (or refused when
//! the engine's decision time runs out). At the REPLY that binds a prefix, the session's
//! worker is told to route it to the session
//! ([`Command::SessionDelegated6`]); RELEASE, DECLINE, expiry and the session's end take
//! it away. Releasing the DHCPv6 binding does not end the session (its IPv4 and SLAAC
//! go on); the session's end ends the binding (RENEW then gets zero lifetimes).
//!
//! Over PPP (a PPPoE session after IPv6CP) the client is its PPP link, not a MAC: the
//! engine's key is [`super::ipv6::ppp_subscriber`] of the link, replies go back over
//! the link, and a SOLICIT before the session has its /64 is refused (the PPP login
//! makes the session; DHCPv6 does not log in).

use std::collections::HashMap;
use std::net::Ipv6Addr;
use std::time::Duration;

use tollgate_dataplane::session::{DisconnectCause, SessionId};
use tollgate_dataplane::steer::prefix_worker;
use tollgate_dataplane::time::Instant;
use tollgate_dataplane::{Command, Frame, Side};

use super::{Core, Output, Target};
use crate::dhcp::{EndCause, LoginId};
use crate::dhcpv6::{self, Event, Grant, Server, ServerConfig};
use crate::inet::ipv6::Prefix;
use crate::ipoe::Subscriber;
use crate::radius::attrs::AcctIpv6;
use crate::wire::ethernet::Mac;

/// DHCPv6 (`[ipv6] dhcpv6 = true`).
#[derive(Clone, Debug)]
pub struct Dhcpv6Settings {
    /// Where delegated prefixes (IA_PD) come from, if anywhere.
    pub delegated_pool: Option<Prefix>,
    /// The length of each delegated prefix (at least the pool's, at most 64).
    pub delegated_length: u8,
    /// The valid lifetime of a binding (the preferred one is half of it).
    pub lease: Duration,
    /// Answer a SOLICIT with Rapid Commit by a REPLY at once.
    pub rapid_commit: bool,
    /// Relay mode instead of the server: relay to these external DHCPv6 servers
    /// (Interface-Id and Remote-Id added); the binding, and the session of a subscriber
    /// without one, start on the server's REPLY (its `mac` is set from the access port).
    pub relay: Option<dhcpv6::RelayConfig>,
}

/// The DHCPv6 engine of the gateway: its own server, or a relay to external servers.
#[derive(Debug)]
pub enum Engine {
    /// The gateway's own server.
    Server(Box<Server>),
    /// Relay mode.
    Relay(Box<dhcpv6::Relay>),
}

impl Engine {
    fn handle_packet(&mut self, now: Instant, line: crate::pppoe::Line, mac: Mac, packet: &[u8]) {
        match self {
            Engine::Server(s) => s.handle_packet(now, line, mac, packet),
            Engine::Relay(r) => r.handle_packet(now, line, mac, packet),
        }
    }

    fn poll_transmit(&mut self) -> Option<dhcpv6::Transmit> {
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

    fn accept(
        &mut self,
        now: Instant,
        id: LoginId,
        g: Grant,
    ) -> Result<(), crate::dhcp::DecisionError> {
        match self {
            Engine::Server(s) => s.accept(now, id, g),
            Engine::Relay(_) => Err(crate::dhcp::DecisionError::NotPending),
        }
    }

    fn reject(&mut self, now: Instant, id: LoginId) -> Result<(), crate::dhcp::DecisionError> {
        match self {
            Engine::Server(s) => s.reject(now, id),
            Engine::Relay(_) => Err(crate::dhcp::DecisionError::NotPending),
        }
    }

    fn end_session(&mut self, sub: &Subscriber, reason: &str) -> bool {
        match self {
            Engine::Server(s) => s.end_session(sub, reason),
            Engine::Relay(r) => r.end_session(sub, reason),
        }
    }

    /// Takes back a persisted binding (`from`: its server end, relay mode only).
    pub(super) fn restore(
        &mut self,
        now: Instant,
        lease: dhcpv6::Lease,
        from: Option<dhcpv6::BindingServer>,
    ) -> Result<bool, crate::dhcp::RestoreError> {
        match self {
            Engine::Server(s) => s.restore(now, lease),
            Engine::Relay(r) => r.restore_bound(now, lease, from),
        }
    }

    /// Relay mode: the server end of `sub`'s binding `id` (persisted with it).
    pub fn binding_server(&self, sub: &Subscriber, id: LoginId) -> Option<&dhcpv6::BindingServer> {
        match self {
            Engine::Server(_) => None,
            Engine::Relay(r) => r.binding_server(sub, id),
        }
    }

    pub(super) fn poll_timeout(&self) -> Option<Instant> {
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

    /// `sub`'s binding.
    pub fn lease(&self, sub: &Subscriber) -> Option<&dhcpv6::Lease> {
        match self {
            Engine::Server(s) => s.lease(sub),
            Engine::Relay(r) => r.lease(sub),
        }
    }

    /// The bindings, in no order.
    pub fn leases(&self) -> Box<dyn Iterator<Item = &dhcpv6::Lease> + '_> {
        match self {
            Engine::Server(s) => Box::new(s.leases()),
            Engine::Relay(r) => Box::new(r.leases()),
        }
    }

    /// The message counters.
    pub fn stats(&self) -> dhcpv6::Stats {
        match self {
            Engine::Server(s) => s.stats(),
            Engine::Relay(r) => r.stats(),
        }
    }

    /// The drop counters by reason.
    pub fn drops(&self) -> Vec<(dhcpv6::DropReason, u64)> {
        match self {
            Engine::Server(s) => s.drops().collect(),
            Engine::Relay(r) => r.drops().collect(),
        }
    }

    /// One drop counter.
    pub fn drop_count(&self, d: dhcpv6::DropReason) -> u64 {
        match self {
            Engine::Server(s) => s.drop_count(d),
            Engine::Relay(r) => r.drop_count(d),
        }
    }

    /// The refusal counters by reason.
    pub fn refusals(&self) -> Vec<(dhcpv6::Refusal, u64)> {
        match self {
            Engine::Server(s) => s.refusals().collect(),
            Engine::Relay(r) => r.refusals().collect(),
        }
    }

    /// Relay mode.
    pub fn is_relay(&self) -> bool {
        matches!(self, Engine::Relay(_))
    }
}

/// What the DHCPv6 glue counts (beside the engine's messages and drops).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Dhcpv6Stats {
    /// SOLICITs granted from a session.
    pub granted: u64,
    /// SOLICITs from a MAC without a session: logins by MAC started.
    pub logins: u64,
    /// SOLICITs refused (the session has no /64).
    pub refused: u64,
    /// Prefixes delegated to sessions (bindings started with an IA_PD).
    pub delegated: u64,
    /// Delegated prefixes taken back.
    pub delegated_released: u64,
    /// IA_PD asked for while the delegated pool was exhausted.
    pub delegated_pool_exhausted: u64,
    /// Bindings taken back after a restart ([`Core::dhcpv6_restore`]).
    pub restored: u64,
    /// Interim-Updates asked for because a binding started after its session's Start.
    pub accounting_updates: u64,
    /// Relay mode: sessions logged in by MAC because the server bound a subscriber
    /// without one.
    pub relay_logins: u64,
    /// Relay mode: sessions ended because the binding that logged them in ended.
    pub relay_sessions_ended: u64,
    /// Relay mode: bindings whose IA_NA /64 the fast path steers to another worker
    /// than the session's (that session has no IPv6).
    pub relay_prefix_misplaced: u64,
}

/// Prefixes of one length out of a pool, each handed out once, to sessions on the worker
/// that the fast path steers them to ([`super::ipv6::SteeredPool`]: a delegated /56 or
/// longer lies in one /56, so all its /64s reach one worker).
#[derive(Debug)]
struct DelegatedPool {
    pool: Prefix,
    len: u8,
    slots: super::ipv6::SteeredPool,
}

impl DelegatedPool {
    fn new(pool: Prefix, len: u8, workers: u16) -> DelegatedPool {
        let base = (u128::from(pool.addr()) >> 64) as u64;
        if len < 56 && workers > 1 {
            tracing::warn!(%pool, len, workers, "delegated prefixes shorter than /56 span several /56s, which the fast path steers to different workers: only the part on the session's worker is forwarded (delegated_length 56 to 64 wanted)");
        }
        let slots = super::ipv6::SteeredPool::new(base, pool.len(), len, workers);
        let idle: Vec<u16> = (0..workers).filter(|w| !slots.serves(*w)).collect();
        if !idle.is_empty() {
            tracing::warn!(%pool, ?idle, "the delegated pool holds fewer /56s than there are workers (IPv6 is steered by the /56): sessions on these workers get no delegated prefix");
        }
        DelegatedPool { pool, len, slots }
    }

    fn prefix(&self, i: u64) -> Option<Prefix> {
        let base = u128::from(self.pool.addr());
        let a = base | (u128::from(i) << (128 - u32::from(self.len)));
        Prefix::new(Ipv6Addr::from(a), self.len)
    }

    /// A free prefix for a session on `worker`.
    fn allocate(&mut self, worker: u16) -> Option<Prefix> {
        let i = self.slots.allocate(worker)?;
        self.prefix(i)
    }

    /// Takes `p` out of the pool (a restored binding's); false if handed out already.
    fn claim(&mut self, p: Prefix) -> bool {
        if p.len() != self.len || !self.pool.contains(p.addr()) {
            return true;
        }
        let off = u128::from(p.addr()) ^ u128::from(self.pool.addr());
        self.slots
            .claim((off >> (128 - u32::from(self.len))) as u64)
    }

    fn release(&mut self, p: Prefix) {
        if p.len() != self.len || !self.pool.contains(p.addr()) {
            return;
        }
        let off = u128::from(p.addr()) ^ u128::from(self.pool.addr());
        self.slots
            .release((off >> (128 - u32::from(self.len))) as u64);
    }
}

/// The DHCPv6 state of the IPv6 half.
#[derive(Debug)]
pub struct Dhcpv6 {
    s: Dhcpv6Settings,
    pub(super) server: Engine,
    pool: Option<DelegatedPool>,
    dns: Vec<Ipv6Addr>,
    /// SOLICITs waiting for their subscriber's session (a login by MAC under way), and
    /// whether they asked for an address and a prefix.
    waiting: HashMap<Subscriber, (LoginId, Wants)>,
    /// Bindings with a delegated prefix routed to a session.
    routed: HashMap<Subscriber, (SessionId, u16, Prefix)>,
    /// Bindings restored after a restart whose session has not come back yet, with the
    /// /64 it had (`gateway::dhcpv6_restart`).
    pub(super) restored: HashMap<Subscriber, Option<u64>>,
    /// The gateway is stopping: sessions that end keep their bindings.
    pub(super) stopping: bool,
    /// Relay mode: subscribers whose session the relayed binding logged in (an
    /// IPv6-first subscriber): the binding's end ends the session.
    relay_logins: std::collections::HashSet<Subscriber>,
    pub(super) stats: Dhcpv6Stats,
}

impl Dhcpv6 {
    pub(super) fn new(
        s: Dhcpv6Settings,
        mac: Mac,
        dns: Vec<Ipv6Addr>,
        workers: u16,
        now: Instant,
    ) -> Dhcpv6 {
        let mut cfg = ServerConfig::new(mac);
        cfg.rapid_commit = s.rapid_commit;
        cfg.dns = dns.clone();
        let server = match s.relay.clone() {
            Some(mut r) => {
                r.mac = mac;
                Engine::Relay(Box::new(dhcpv6::Relay::new(r, now)))
            }
            None => Engine::Server(Box::new(Server::new(cfg, now))),
        };
        Dhcpv6 {
            pool: s
                .delegated_pool
                .map(|p| DelegatedPool::new(p, s.delegated_length, workers)),
            server,
            dns,
            waiting: HashMap::new(),
            routed: HashMap::new(),
            restored: HashMap::new(),
            stopping: false,
            relay_logins: Default::default(),
            stats: Dhcpv6Stats::default(),
            s,
        }
    }

    /// What it counted.
    pub fn stats(&self) -> Dhcpv6Stats {
        self.stats
    }

    /// The engine (its bindings, message and drop counters).
    pub fn server(&self) -> &Engine {
        &self.server
    }

    /// Every counter by name (`show counters`' `ipv6`, `dhcpv6_*`).
    pub fn counters(&self) -> Vec<(String, u64)> {
        let s = &self.stats;
        let m = self.server.stats();
        let mut out: Vec<(String, u64)> = [
            ("dhcpv6_solicit", m.solicit),
            ("dhcpv6_advertise", m.advertise),
            ("dhcpv6_request", m.request),
            ("dhcpv6_renew", m.renew),
            ("dhcpv6_rebind", m.rebind),
            ("dhcpv6_reply", m.reply),
            ("dhcpv6_release", m.release),
            ("dhcpv6_decline", m.decline),
            ("dhcpv6_confirm", m.confirm),
            ("dhcpv6_information_request", m.information_request),
            ("dhcpv6_expired", m.expired),
            ("dhcpv6_relayed", m.relayed),
            ("dhcpv6_granted", s.granted),
            ("dhcpv6_logins", s.logins),
            ("dhcpv6_refused", s.refused),
            ("dhcpv6_delegated", s.delegated),
            ("dhcpv6_delegated_released", s.delegated_released),
            (
                "dhcpv6_delegated_pool_exhausted",
                s.delegated_pool_exhausted,
            ),
            ("dhcpv6_bindings", self.server.leases().count() as u64),
            ("dhcpv6_bindings_restored", s.restored),
            ("dhcpv6_accounting_updates", s.accounting_updates),
            ("dhcpv6_relayed_to_server", m.relayed_to_server),
            ("dhcpv6_relayed_to_client", m.relayed_to_client),
            ("dhcpv6_relay_logins", s.relay_logins),
            ("dhcpv6_relay_sessions_ended", s.relay_sessions_ended),
            ("dhcpv6_relay_prefix_misplaced", s.relay_prefix_misplaced),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        for (d, n) in self.server.drops() {
            out.push((d.name().to_string(), n));
        }
        for (r, n) in self.server.refusals() {
            out.push((r.name().to_string(), n));
        }
        out
    }

    /// The binding a session's subscriber holds.
    pub fn lease(&self, sub: &Subscriber) -> Option<&dhcpv6::Lease> {
        self.server.lease(sub)
    }

    /// Takes a restored binding's delegated prefix out of the pool; false if it is
    /// handed out already (one outside the pool, RADIUS's, is always fine).
    pub(super) fn claim_delegated(&mut self, p: Prefix) -> bool {
        match self.pool.as_mut() {
            Some(pool) => pool.claim(p),
            None => true,
        }
    }
}

/// What a SOLICIT asked for: an address (IA_NA), a prefix (IA_PD).
type Wants = (bool, bool);

/// The IPv6 a session was given by AAA (Framed-Interface-Id, Delegated-IPv6-Prefix).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SessionIpv6 {
    /// Its /64 (Framed-IPv6-Prefix), instead of one from the pool.
    pub framed_prefix: Option<Prefix>,
    /// The interface id of its IA_NA address (the low 64 bits).
    pub interface_id: Option<u64>,
    /// The prefix to delegate.
    pub delegated: Option<Prefix>,
}

impl Core {
    /// A punted DHCPv6 message from the access side (the IPv6 packet, its line and
    /// source MAC).
    pub(super) fn on_dhcpv6(&mut self, now: Instant, sub: Subscriber, packet: &[u8]) {
        let Some(d) = self.ipv6.as_mut().and_then(|v| v.dhcp.as_mut()) else {
            return;
        };
        d.server.handle_packet(now, sub.line, sub.mac, packet);
        self.dhcpv6_drain(now);
    }

    /// DHCPv6 relay mode: a datagram to the relay's UDP port 547 from `src` (a server's
    /// RELAY-REPL), from the shell's socket.
    pub fn on_dhcpv6_server(&mut self, now: Instant, src: Ipv6Addr, message: &[u8]) {
        let Some(d) = self.ipv6.as_mut().and_then(|v| v.dhcp.as_mut()) else {
            return;
        };
        if let Engine::Relay(r) = &mut d.server {
            r.handle_server(now, src, message);
        }
        self.dhcpv6_drain(now);
    }

    /// The engine's packets and events.
    pub(super) fn dhcpv6_drain(&mut self, now: Instant) {
        loop {
            let Some(v6) = self.ipv6.as_mut() else {
                return;
            };
            let Some(d) = v6.dhcp.as_mut() else {
                return;
            };
            if let Some(t) = d.server.poll_transmit() {
                if let Some(h) =
                    super::ipv6::ppp_link_of(&crate::ipoe::Subscriber::new(t.line, t.dst_mac))
                {
                    self.ppp_send_ipv6(now, h, &t.packet());
                    continue;
                }
                let tpid = v6.tpids.get(&t.line).copied().unwrap_or(0x8100);
                let bytes = t.frame(self.fwd.side(Side::Access).mac.0, tpid);
                match Frame::new(Side::Access, &bytes) {
                    Some(f) => self.out.push_back(Output::Inject(0, Box::new(f))),
                    None => {
                        tracing::debug!(len = bytes.len(), "a DHCPv6 reply does not fit a frame")
                    }
                }
                continue;
            }
            if let Engine::Relay(r) = &mut d.server
                && let Some(t) = r.poll_to_server()
            {
                self.out.push_back(Output::Dhcpv6ToServer(t));
                continue;
            }
            let Some(e) = d.server.poll_event() else {
                return;
            };
            self.on_dhcpv6_event(now, e);
        }
    }

    fn on_dhcpv6_event(&mut self, now: Instant, e: Event) {
        match e {
            Event::Login(l) => self.dhcpv6_login(now, l),
            Event::LoginCancelled {
                subscriber, grant, ..
            } => {
                let Some(d) = self.ipv6.as_mut().and_then(|v| v.dhcp.as_mut()) else {
                    return;
                };
                d.waiting.remove(&subscriber);
                if let (Some(p), Some(pool)) = (grant.and_then(|g| g.prefix), d.pool.as_mut()) {
                    pool.release(p);
                }
            }
            Event::SessionStarted(lease) => {
                self.dhcpv6_persist(now, &lease);
                let sub = lease.subscriber;
                if self.dhcpv6_relay() {
                    self.dhcpv6_relay_bound(now, &lease);
                }
                // Bound after the session's Start: RADIUS hears of the address and
                // prefix at once, not at the next interim.
                if let Some((id, _, _)) = self.ipoe_session_of(sub)
                    && self.aaa_update_now(id)
                    && let Some(d) = self.ipv6.as_mut().and_then(|v| v.dhcp.as_mut())
                {
                    d.stats.accounting_updates += 1;
                }
                self.dhcpv6_route_delegated(sub);
            }
            Event::LeaseRenewed(lease) => self.dhcpv6_persist(now, &lease),
            Event::SessionEnded { lease, cause } => {
                self.dhcpv6_forget(&lease.subscriber);
                self.dhcpv6_unroute(&lease);
                if self.dhcpv6_relay() {
                    self.dhcpv6_relay_unbound(now, &lease, &cause);
                }
            }
        }
    }

    /// `lease` ended: its delegated prefix is no longer routed to the session, and goes
    /// back to the pool (a restored binding's /64 too, if its session never came back).
    fn dhcpv6_unroute(&mut self, lease: &dhcpv6::Lease) {
        let Some(v6) = self.ipv6.as_mut() else {
            return;
        };
        // Restored, its session never came back: its /64 goes back too.
        let waiting = v6
            .dhcp
            .as_mut()
            .and_then(|d| d.restored.remove(&lease.subscriber));
        if let Some(Some(hi)) = waiting {
            v6.release_prefix(hi);
        }
        let Some(d) = v6.dhcp.as_mut() else {
            return;
        };
        if let Some((id, worker, _)) = d.routed.remove(&lease.subscriber) {
            d.stats.delegated_released += 1;
            self.out.push_back(Output::Command(
                Target::Worker(worker),
                Command::SessionDelegated6 { id, prefix: None },
            ));
        }
        if let (Some(p), Some(pool)) = (lease.grant.prefix, d.pool.as_mut()) {
            pool.release(p);
        }
    }

    /// A SOLICIT from a subscriber without a binding.
    fn dhcpv6_login(&mut self, now: Instant, l: dhcpv6::Login) {
        let sub = l.subscriber;
        let wants = (l.wants_address, l.wants_prefix);
        if let Some((id, _)) = self.dhcpv6_session_of(sub) {
            self.dhcpv6_grant(now, id, sub, l.id, wants);
            return;
        }
        let Some(d) = self.ipv6.as_mut().and_then(|v| v.dhcp.as_mut()) else {
            return;
        };
        if super::ipv6::ppp_link_of(&sub).is_some() {
            // A PPP link whose session has no /64 (yet): refused; it asks again.
            d.stats.refused += 1;
            let _ = d.server.reject(now, l.id);
            return;
        }
        d.waiting.insert(sub, (l.id, wants));
        d.stats.logins += 1;
        self.ipv6_login_by_mac(now, sub);
    }

    /// Session `id` (of `sub`) has its /64: a SOLICIT waiting for it is granted.
    pub(super) fn dhcpv6_session_ready(&mut self, now: Instant, id: SessionId, sub: Subscriber) {
        let Some(d) = self.ipv6.as_mut().and_then(|v| v.dhcp.as_mut()) else {
            return;
        };
        if let Some((login, wants)) = d.waiting.remove(&sub) {
            self.dhcpv6_grant(now, id, sub, login, wants);
            self.dhcpv6_drain(now);
        }
        if self.dhcpv6_relay() {
            // The server's binding came before the session: its prefix now.
            self.dhcpv6_route_delegated(sub);
            return;
        }
        self.dhcpv6_session_back(id, sub);
    }

    /// A restored binding's session is back: its delegated prefix is routed to it again.
    fn dhcpv6_session_back(&mut self, id: SessionId, sub: Subscriber) {
        let worker = self.ipoe_session_of(sub).map_or(0, |(_, _, w)| w);
        let Some(d) = self.ipv6.as_mut().and_then(|v| v.dhcp.as_mut()) else {
            return;
        };
        if d.restored.remove(&sub).is_none() {
            return;
        }
        let Some(prefix) = d.server.lease(&sub).and_then(|l| l.grant.prefix) else {
            return;
        };
        d.routed.insert(sub, (id, worker, prefix));
        tracing::info!(session = id, %prefix, "restored delegated prefix routed again");
        self.out.push_back(Output::Command(
            Target::Worker(worker),
            Command::SessionDelegated6 {
                id,
                prefix: Some(((u128::from(prefix.addr()) >> 64) as u64, prefix.len())),
            },
        ));
    }

    /// Answers login `login` of `sub` from session `id`: its /64 and AAA's IPv6.
    fn dhcpv6_grant(
        &mut self,
        now: Instant,
        id: SessionId,
        sub: Subscriber,
        login: LoginId,
        (want_address, want_prefix): Wants,
    ) {
        let worker = self.dhcpv6_session_of(sub).map_or(0, |(_, w)| w);
        let Some(v6) = self.ipv6.as_mut() else {
            return;
        };
        let aaa = v6.aaa.get(&id).copied().unwrap_or_default();
        let workers = v6.pool_workers();
        let prefix64 = v6.sessions.get(&id).map(|a| a.prefix);
        let Some(d) = v6.dhcp.as_mut() else {
            return;
        };
        let Some(prefix64) = prefix64 else {
            d.stats.refused += 1;
            let _ = d.server.reject(now, login);
            return;
        };
        let iid = aaa.interface_id.unwrap_or(1);
        let address = Ipv6Addr::from((u128::from(prefix64) << 64) | u128::from(iid));
        let prefix = if want_prefix {
            match aaa.delegated {
                Some(p) => {
                    let hi = (u128::from(p.addr()) >> 64) as u64;
                    if p.len() < 56 || prefix_worker(hi, workers) != worker {
                        tracing::warn!(session = id, prefix = %p, worker, "Delegated-IPv6-Prefix is not within one /56 steered to the session's worker: only its /64s steered there are forwarded");
                    }
                    Some(p)
                }
                None => {
                    let p = d.pool.as_mut().and_then(|p| p.allocate(worker));
                    if p.is_none() && d.pool.is_some() {
                        d.stats.delegated_pool_exhausted += 1;
                    }
                    p
                }
            }
        } else {
            None
        };
        let mut g = Grant::new(want_address.then_some(address), prefix);
        g.dns = d.dns.clone();
        g.valid = d.s.lease;
        g.preferred = d.s.lease / 2;
        d.stats.granted += 1;
        if let Err(e) = d.server.accept(now, login, g) {
            tracing::debug!(error = ?e, mac = ?sub.mac, "DHCPv6 grant not taken");
            if let (Some(p), Some(pool)) = (prefix, d.pool.as_mut()) {
                pool.release(p);
            }
        }
    }

    /// The session of DHCPv6 client `sub` and its worker: a PPP link's (by the link), or
    /// an IPoE subscriber's (by line and MAC).
    fn dhcpv6_session_of(&self, sub: Subscriber) -> Option<(SessionId, u16)> {
        match super::ipv6::ppp_link_of(&sub) {
            Some(h) => {
                let id = *self.ipv6.as_ref()?.peers_ppp.get(&h)?;
                Some((id, self.sessions.get(id)?.worker))
            }
            None => self.ipoe_session_of(sub).map(|(id, _, w)| (id, w)),
        }
    }

    /// What AAA gave session `id` for IPv6, kept for its /64 and its DHCPv6 grant.
    pub(super) fn ipv6_authorized(&mut self, id: SessionId, a: &crate::authz::Authorization) {
        let Some(v6) = self.ipv6.as_mut() else {
            return;
        };
        let s = SessionIpv6 {
            framed_prefix: a
                .framed_ipv6_prefix
                .and_then(|(addr, len)| Prefix::new(addr, len)),
            interface_id: a.framed_interface_id,
            delegated: a
                .delegated_ipv6_prefix
                .and_then(|(addr, len)| Prefix::new(addr, len)),
        };
        if s == SessionIpv6::default() {
            v6.aaa.remove(&id);
        } else {
            v6.aaa.insert(id, s);
        }
    }

    /// Session `id`'s IPv6 for its accounting records: its /64, its DHCPv6 address's
    /// interface id and delegated prefix.
    pub(super) fn acct_ipv6(&self, id: SessionId) -> Option<AcctIpv6> {
        let v6 = self.ipv6.as_ref()?;
        let lease = v6.dhcpv6_lease_of(id);
        let a = AcctIpv6 {
            framed_prefix: v6.prefix_of(id).map(|p| (p.addr(), p.len())),
            interface_id: lease
                .and_then(|l| l.grant.address)
                .map(|a| u128::from(a) as u64),
            delegated_prefix: lease
                .and_then(|l| l.grant.prefix)
                .map(|p| (p.addr(), p.len())),
        };
        (a != AcctIpv6::default()).then_some(a)
    }

    /// Session `id` of `sub` ended: its binding ends (and its prefix goes back).
    pub(super) fn dhcpv6_session_closed(&mut self, now: Instant, sub: Subscriber) {
        let Some(d) = self.ipv6.as_mut().and_then(|v| v.dhcp.as_mut()) else {
            return;
        };
        d.waiting.remove(&sub);
        d.relay_logins.remove(&sub);
        if d.stopping {
            // The binding stays bound and in the lease file (`dhcpv6_restart`).
            return;
        }
        d.server.end_session(&sub, "session ended");
        self.dhcpv6_drain(now);
    }

    /// Routes the delegated prefix of `sub`'s binding to its session (once).
    fn dhcpv6_route_delegated(&mut self, sub: Subscriber) {
        let Some((id, worker)) = self.dhcpv6_session_of(sub) else {
            return;
        };
        let Some(d) = self.ipv6.as_mut().and_then(|v| v.dhcp.as_mut()) else {
            return;
        };
        let Some(prefix) = d.server.lease(&sub).and_then(|l| l.grant.prefix) else {
            return;
        };
        if d.routed.get(&sub) == Some(&(id, worker, prefix)) {
            return;
        }
        d.stats.delegated += 1;
        d.routed.insert(sub, (id, worker, prefix));
        tracing::info!(session = id, %prefix, "prefix delegated");
        self.out.push_back(Output::Command(
            Target::Worker(worker),
            Command::SessionDelegated6 {
                id,
                prefix: Some(((u128::from(prefix.addr()) >> 64) as u64, prefix.len())),
            },
        ));
    }

    /// Relay mode.
    pub(super) fn dhcpv6_relay(&self) -> bool {
        self.ipv6
            .as_ref()
            .and_then(|v| v.dhcp.as_ref())
            .is_some_and(|d| d.server.is_relay())
    }

    /// Relay mode: the /64 of `sub`'s binding's IA_NA address (the session's /64).
    pub(super) fn dhcpv6_relay_prefix(&self, sub: &Subscriber) -> Option<u64> {
        let d = self.ipv6.as_ref()?.dhcp.as_ref()?;
        let a = d.server.lease(sub)?.grant.address?;
        Some((u128::from(a) >> 64) as u64)
    }

    /// Relay mode: the server bound `lease`. The subscriber's session takes the IA_NA
    /// address's /64 (replacing another it had); a subscriber without a session is
    /// logged in by MAC, and the session takes it when it opens.
    fn dhcpv6_relay_bound(&mut self, now: Instant, lease: &dhcpv6::Lease) {
        let sub = lease.subscriber;
        if super::ipv6::ppp_link_of(&sub).is_some() {
            return;
        }
        let Some((id, spec, worker)) = self.ipoe_session_of(sub) else {
            let Some(d) = self.ipv6.as_mut().and_then(|v| v.dhcp.as_mut()) else {
                return;
            };
            d.relay_logins.insert(sub);
            d.stats.relay_logins += 1;
            self.ipv6_login_by_mac(now, sub);
            return;
        };
        let want = self.dhcpv6_relay_prefix(&sub);
        let have = self
            .ipv6
            .as_ref()
            .and_then(|v| v.sessions.get(&id))
            .map(|a| a.prefix);
        if have == want {
            return;
        }
        if have.is_some() {
            self.ipv6_detach(now, id, worker);
        }
        if want.is_some() {
            self.ipv6_session_opened(now, &spec, worker);
        }
    }

    /// Relay mode: `lease` ended (`cause`). The session it logged in ends with it (the
    /// Stop says why); another session (IPv4 first) loses its IPv6 half. A binding the
    /// server replaced keeps the session: the new binding follows.
    fn dhcpv6_relay_unbound(&mut self, now: Instant, lease: &dhcpv6::Lease, cause: &EndCause) {
        let sub = lease.subscriber;
        if super::ipv6::ppp_link_of(&sub).is_some() {
            return;
        }
        let Some((id, _, worker)) = self.ipoe_session_of(sub) else {
            return;
        };
        let Some(d) = self.ipv6.as_mut().and_then(|v| v.dhcp.as_mut()) else {
            return;
        };
        if matches!(cause, EndCause::Closed(_)) || d.stopping {
            // The session's end ended the binding (or the gateway stops).
            return;
        }
        if *cause != EndCause::Replaced && d.relay_logins.remove(&sub) {
            d.stats.relay_sessions_ended += 1;
            tracing::info!(session = id, subscriber = %sub, cause = cause.name(), "DHCPv6 binding ended: its session ends");
            let why = match cause {
                EndCause::Release | EndCause::Decline => DisconnectCause::UserRequest,
                EndCause::Expired => DisconnectCause::LostCarrier,
                _ => DisconnectCause::NasRequest,
            };
            self.end(id, why);
            return;
        }
        self.ipv6_detach(now, id, worker);
    }

    /// The DHCPv6 timers due at `now` (decision and advertise holds, expiry).
    pub(super) fn dhcpv6_tick(&mut self, now: Instant) {
        let Some(d) = self.ipv6.as_mut().and_then(|v| v.dhcp.as_mut()) else {
            return;
        };
        d.server.handle_timeout(now);
        self.dhcpv6_drain(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delegated_pool_hands_out_each_prefix_once() {
        let mut p = DelegatedPool::new("2001:db8:200::/54".parse().unwrap(), 56, 1);
        let got: Vec<Prefix> = std::iter::from_fn(|| p.allocate(0)).collect();
        let want: Vec<Prefix> = [
            "2001:db8:200::/56",
            "2001:db8:200:100::/56",
            "2001:db8:200:200::/56",
            "2001:db8:200:300::/56",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        assert_eq!(got, want);
        p.release(want[2]);
        // Not from the pool, or another length: ignored.
        p.release("2001:db8:300::/56".parse().unwrap());
        p.release("2001:db8:200::/60".parse().unwrap());
        assert_eq!(p.allocate(0), Some(want[2]));
        assert_eq!(p.allocate(0), None);
    }

    /// With several workers, a session gets a delegated prefix in a /56 that the fast
    /// path steers to its worker (so all its /64s reach it); consecutive /56s go round.
    #[test]
    fn delegated_prefixes_follow_their_worker() {
        let pfx = |s: &str| -> Prefix { s.parse().unwrap() };
        let mut p = DelegatedPool::new(pfx("2001:db8:200::/54"), 56, 2);
        let w0: Vec<Prefix> = std::iter::from_fn(|| p.allocate(0)).collect();
        let w1: Vec<Prefix> = std::iter::from_fn(|| p.allocate(1)).collect();
        assert_eq!(w0, [pfx("2001:db8:200::/56"), pfx("2001:db8:200:200::/56")]);
        assert_eq!(
            w1,
            [pfx("2001:db8:200:100::/56"), pfx("2001:db8:200:300::/56")]
        );
        // Every /64 of each is steered to the worker it was handed to.
        for (w, got) in [(0u16, &w0), (1, &w1)] {
            for d in got {
                let hi = (u128::from(d.addr()) >> 64) as u64;
                for low in 0..256u64 {
                    assert_eq!(prefix_worker(hi | low, 2), w, "{d} /64 {low}");
                }
            }
        }
        // /60s: 16 per /56, 32 per worker of 2 in a /54, each within a /56 of its worker.
        let mut p = DelegatedPool::new(pfx("2001:db8:200::/54"), 60, 2);
        for w in [1u16, 0] {
            let got: Vec<Prefix> = std::iter::from_fn(|| p.allocate(w)).collect();
            assert_eq!(got.len(), 32);
            for d in &got {
                let hi = (u128::from(d.addr()) >> 64) as u64;
                assert_eq!(prefix_worker(hi, 2), w, "{d}");
                assert_eq!(prefix_worker(hi | 0xf, 2), w, "{d}");
            }
        }
        // A pool smaller than a /56 per worker: the workers without one get none.
        let mut p = DelegatedPool::new(pfx("2001:db8:200::/58"), 60, 2);
        assert_eq!(p.allocate(1), None);
        assert_eq!(p.allocate(0), Some(pfx("2001:db8:200::/60")));
    }
}
