//! The DHCPv4 server engine (RFC 2131 section 4.3), sans-I/O.
//!
//! Per subscriber (line and `chaddr`) the engine is in one of these states:
//!
//! | state | entered by | left by |
//! |---|---|---|
//! | deciding | DISCOVER, no session | `accept` (OFFER sent: offered), `reject` (refused), decision timeout (`LoginCancelled`) |
//! | offered | `accept` | REQUEST for the address (ACK: bound, `SessionStarted`), REQUEST for another server or address (`LoginCancelled`), offer hold over (`LoginCancelled`) |
//! | bound | ACK | RELEASE, DECLINE, lease expiry, `end_session` (`SessionEnded`) |
//! | refused | `reject` | `refusal_hold` over (a DISCOVER before that is refused without asking) |
//! | closed | `end_session` | the old lease's expiry; any REQUEST meanwhile gets NAK |
//!
//! A DISCOVER from a bound subscriber (a client that lost its state) gets the same
//! lease offered again without a new login; REQUEST in the INIT-REBOOT, RENEWING and
//! REBINDING states extends a bound lease (`LeaseRenewed`) or gets NAK. The server is
//! authoritative by default: a REQUEST from a client it has no record of gets NAK, so
//! that the client goes back to DISCOVER and logs in.
//!
//! Replies go to `giaddr` (port 67) when a relay agent forwarded the request, to
//! `ciaddr` when the client has an address, else to 255.255.255.255 or `yiaddr` by the
//! BROADCAST bit; at layer 2 they are always unicast, to the client's (or the relay's)
//! MAC: on an N:1 line other subscribers must not see them.

use std::collections::{HashMap, VecDeque};

use core::net::Ipv4Addr;
use core::time::Duration;

use super::wire::{self, MessageBuilder, Packet, message_type as mt, op, option};
use super::{
    Cancel, Counters, DecisionError, Destination, DropReason, EndCause, Event, Grant, Lease, Login,
    LoginBy, LoginId, Received, Refusal, Stats, Transmit, check_message, view,
};
use crate::ipoe::{MacDisplay, Subscriber, is_unicast_mac};
use crate::pppoe::limit::{Admit, Bucket, PerMac, Rate};
use crate::pppoe::{Line, LineId};
use crate::time::Instant;
use crate::timed::{Due, TimedMap};
use crate::wire::ethernet::Mac;

/// How the server answers.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// The gateway's address on the access side: the Server Identifier, the source of
    /// replies, and the router given when a grant names none.
    pub server_id: Ipv4Addr,
    /// What names the subscriber to AAA.
    pub login_by: LoginBy,
    /// NAK REQUESTs from clients the server has no record of (the gateway is the only
    /// DHCP server of its access lines).
    pub authoritative: bool,
    /// How long the caller may take to decide a login.
    pub decision_timeout: Duration,
    /// How long an offered address waits for the client's REQUEST.
    pub offer_hold: Duration,
    /// How long a rejected subscriber's DISCOVERs are refused without asking again.
    pub refusal_hold: Duration,
    /// DISCOVERs accepted per client MAC.
    pub discover_rate_per_mac: Rate,
    /// DISCOVERs accepted in all.
    pub discover_rate: Rate,
    /// Client MACs whose DISCOVER rate is tracked at once.
    pub rate_table_size: usize,
    /// Subscribers the engine holds (logins, offers, leases, refusals) at most.
    pub max_clients: usize,
    /// Relay hops accepted.
    pub max_hops: u8,
}

impl ServerConfig {
    /// Defaults around `server_id`.
    pub fn new(server_id: Ipv4Addr) -> ServerConfig {
        ServerConfig {
            server_id,
            login_by: LoginBy::Mac,
            authoritative: true,
            decision_timeout: Duration::from_secs(10),
            offer_hold: Duration::from_secs(60),
            refusal_hold: Duration::from_secs(10),
            discover_rate_per_mac: Rate {
                per_second: 1,
                burst: 5,
            },
            discover_rate: Rate {
                per_second: 2000,
                burst: 4000,
            },
            rate_table_size: 65_536,
            max_clients: 262_144,
            max_hops: 16,
        }
    }
}

/// Where replies to a subscriber go at layer 2.
#[derive(Clone, Copy, Debug)]
struct Via {
    line: Line,
    src_mac: Mac,
}

/// What a login carries from DISCOVER to the lease.
#[derive(Clone, Debug)]
struct LoginInfo {
    id: LoginId,
    user: Vec<u8>,
    line_id: Option<LineId>,
    client_id: Option<Vec<u8>>,
    relay: Option<Ipv4Addr>,
}

#[derive(Clone, Debug)]
enum State {
    Deciding {
        info: LoginInfo,
        request: Vec<u8>,
        via: Via,
        deadline: Instant,
    },
    Offered {
        info: LoginInfo,
        grant: Grant,
        deadline: Instant,
    },
    Bound(Lease),
    Refused {
        until: Instant,
    },
    Closed {
        until: Instant,
    },
}

impl Due for State {
    fn due(&self) -> Instant {
        match self {
            State::Deciding { deadline, .. } | State::Offered { deadline, .. } => *deadline,
            State::Bound(l) => l.expires,
            State::Refused { until } | State::Closed { until } => *until,
        }
    }
}

impl State {
    fn address(&self) -> Option<Ipv4Addr> {
        match self {
            State::Offered { grant, .. } => Some(grant.address),
            State::Bound(l) => Some(l.address()),
            _ => None,
        }
    }
}

/// What goes into a reply besides the message type.
enum Body<'a> {
    Offer(&'a Grant),
    Ack(&'a Grant),
    Inform(&'a Grant),
    Nak(&'a str),
}

/// Why a lease could not be restored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RestoreError {
    /// The subscriber already has a lease or a login in the engine.
    #[error("the subscriber already has a lease")]
    Duplicate,
    /// Another subscriber holds the address.
    #[error("another subscriber holds the address")]
    AddressInUse,
}

/// What [`Server::restore`] did with a lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Restored {
    /// The lease is live again.
    Live,
    /// It ran out while the gateway was down: `SessionEnded` (expired) was queued.
    Expired,
}

/// The DHCPv4 server of one or more access lines.
#[derive(Debug)]
pub struct Server {
    cfg: ServerConfig,
    clients: TimedMap<Subscriber, State>,
    pending: HashMap<LoginId, Subscriber>,
    by_address: HashMap<Ipv4Addr, Subscriber>,
    mac_rates: PerMac,
    global: Bucket,
    next_id: u64,
    out: VecDeque<Transmit>,
    events: VecDeque<Event>,
    c: Counters,
}

impl Server {
    /// A server with no leases at `now`.
    pub fn new(cfg: ServerConfig, now: Instant) -> Server {
        Server {
            mac_rates: PerMac::new(cfg.discover_rate_per_mac, cfg.rate_table_size),
            global: Bucket::full(cfg.discover_rate, now),
            cfg,
            clients: TimedMap::new(),
            pending: HashMap::new(),
            by_address: HashMap::new(),
            next_id: 1,
            out: VecDeque::new(),
            events: VecDeque::new(),
            c: Counters::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ServerConfig {
        &self.cfg
    }

    /// A punted IPv4 datagram (UDP to port 67) from `src_mac` on `line`.
    pub fn handle_datagram(&mut self, now: Instant, line: Line, src_mac: Mac, datagram: &[u8]) {
        match super::parse_datagram(line, src_mac, datagram, wire::SERVER_PORT) {
            Ok(rx) => self.handle_input(now, &rx),
            Err(d) => self.c.drop(d),
        }
    }

    /// A DHCP message from a client (or a relay agent).
    pub fn handle_input(&mut self, now: Instant, rx: &Received<'_>) {
        if let Err(d) = self.input(now, rx) {
            self.c.drop(d);
        }
    }

    fn input(&mut self, now: Instant, rx: &Received<'_>) -> Result<(), DropReason> {
        let p = view(rx.message)?;
        let (r, t) = check_message(&p, op::BOOTREQUEST)?;
        let mac = p.client_mac();
        if !is_unicast_mac(rx.src_mac) || !is_unicast_mac(mac) {
            return Err(DropReason::ChaddrMismatch);
        }
        if p.hops() > self.cfg.max_hops {
            return Err(DropReason::TooManyHops);
        }
        let relayed = !p.giaddr().is_unspecified();
        // A client on the line logs in its own MAC only; behind a relay agent the frame
        // comes from the agent. Renewals may be routed, so they are not checked here
        // (they must name the lease's address).
        let adjacent = || relayed || mac == rx.src_mac;
        let sub = Subscriber::new(rx.line, mac);
        let via = Via {
            line: rx.line,
            src_mac: rx.src_mac,
        };
        match t {
            mt::DISCOVER => {
                if !adjacent() {
                    return Err(DropReason::ChaddrMismatch);
                }
                self.discover(now, sub, &p, &r, via)
            }
            mt::REQUEST => {
                self.c.stats.request += 1;
                self.request(now, sub, &p, &r, via, adjacent())
            }
            mt::DECLINE | mt::RELEASE => {
                if r.server_id.is_some_and(|s| s != self.cfg.server_id) {
                    return Err(DropReason::OtherServer);
                }
                let address = if t == mt::DECLINE {
                    r.requested_ip.ok_or(DropReason::MissingField)?
                } else {
                    p.ciaddr()
                };
                match self.clients.get(&sub) {
                    Some(State::Bound(l)) if l.address() == address => {}
                    _ => return Err(DropReason::UnknownLease),
                }
                let cause = if t == mt::DECLINE {
                    self.c.stats.decline += 1;
                    EndCause::Decline
                } else {
                    self.c.stats.release += 1;
                    EndCause::Release
                };
                if let Some(State::Bound(lease)) = self.remove(&sub) {
                    self.events.push_back(Event::SessionEnded { lease, cause });
                }
                Ok(())
            }
            mt::INFORM => {
                let grant = match self.clients.get(&sub) {
                    Some(State::Bound(l)) if l.address() == p.ciaddr() => l.grant.clone(),
                    _ => return Err(DropReason::UnknownLease),
                };
                self.c.stats.inform += 1;
                self.send(&p, &r, Body::Inform(&grant), via);
                Ok(())
            }
            _ => Err(DropReason::UnexpectedType),
        }
    }

    fn discover(
        &mut self,
        now: Instant,
        sub: Subscriber,
        p: &Packet<&[u8]>,
        r: &wire::Request<'_>,
        via: Via,
    ) -> Result<(), DropReason> {
        self.c.stats.discover += 1;
        match self.mac_rates.take(sub.mac, now) {
            Admit::Yes => {}
            Admit::No => {
                self.c.refuse(Refusal::DiscoverRateMac);
                return Ok(());
            }
            Admit::Untracked => self.c.stats.rate_untracked += 1,
        }
        if !self.global.take(self.cfg.discover_rate, now) {
            self.c.refuse(Refusal::DiscoverRate);
            return Ok(());
        }
        match self.clients.get_mut(&sub) {
            Some(State::Bound(l)) => {
                let g = l.grant.clone();
                self.send(p, r, Body::Offer(&g), via);
                return Ok(());
            }
            Some(State::Offered { grant, .. }) => {
                let g = grant.clone();
                self.send(p, r, Body::Offer(&g), via);
                return Ok(());
            }
            Some(State::Deciding {
                request, via: v, ..
            }) => {
                // The client retransmitted: answer this one when the decision comes.
                *request = p.as_bytes().to_vec();
                *v = via;
                return Err(DropReason::DecisionPending);
            }
            Some(State::Refused { until }) if now < *until => {
                self.c.refuse(Refusal::RecentlyRejected);
                return Ok(());
            }
            Some(_) => {}
            None => {
                if self.clients.len() >= self.cfg.max_clients {
                    self.c.refuse(Refusal::LeaseLimit);
                    return Ok(());
                }
            }
        }
        let line_id = match r
            .relay_agent_info
            .as_deref()
            .map(wire::parse_relay_agent_info)
        {
            Some(Ok(id)) => Some(id),
            Some(Err(_)) => {
                self.c.stats.line_id_malformed += 1;
                None
            }
            None => None,
        };
        let user = match self.cfg.login_by {
            LoginBy::Mac => Some(MacDisplay(sub.mac).to_string().into_bytes()),
            LoginBy::CircuitId => line_id.as_ref().and_then(|l| l.circuit_id.clone()),
            LoginBy::RemoteId => line_id.as_ref().and_then(|l| l.remote_id.clone()),
        };
        let Some(user) = user else {
            self.c.refuse(Refusal::NoLineId);
            return Ok(());
        };
        let id = LoginId(self.next_id);
        self.next_id += 1;
        let relay = Some(p.giaddr()).filter(|a| !a.is_unspecified());
        let info = LoginInfo {
            id,
            user: user.clone(),
            line_id: line_id.clone(),
            client_id: r.client_id.as_deref().map(<[u8]>::to_vec),
            relay,
        };
        self.c.stats.logins += 1;
        self.pending.insert(id, sub);
        self.set(
            sub,
            State::Deciding {
                info,
                request: p.as_bytes().to_vec(),
                via,
                deadline: now + self.cfg.decision_timeout,
            },
        );
        self.events.push_back(Event::Login(Login {
            id,
            subscriber: sub,
            user,
            line_id,
            client_id: r.client_id.as_deref().map(<[u8]>::to_vec),
            host_name: r.host_name.as_deref().map(<[u8]>::to_vec),
            vendor_class: r.vendor_class.as_deref().map(<[u8]>::to_vec),
            requested_ip: r.requested_ip,
            relay,
        }));
        Ok(())
    }

    fn request(
        &mut self,
        now: Instant,
        sub: Subscriber,
        p: &Packet<&[u8]>,
        r: &wire::Request<'_>,
        via: Via,
        adjacent: bool,
    ) -> Result<(), DropReason> {
        let ciaddr = p.ciaddr();
        if let Some(server) = r.server_id {
            // SELECTING: the client chose an offer.
            let requested = r.requested_ip.ok_or(DropReason::MissingField)?;
            if !adjacent {
                return Err(DropReason::ChaddrMismatch);
            }
            if server != self.cfg.server_id {
                if let Some(State::Offered { .. }) = self.clients.get(&sub) {
                    self.cancel(&sub, Cancel::OtherServer);
                }
                return Err(DropReason::OtherServer);
            }
            return match self.clients.get(&sub) {
                Some(State::Offered { grant, .. }) if grant.address == requested => {
                    self.bind(now, sub, p, r, via);
                    Ok(())
                }
                Some(State::Bound(l)) if l.address() == requested => {
                    self.renew(now, sub, p, r, via);
                    Ok(())
                }
                Some(State::Deciding { .. }) => Err(DropReason::DecisionPending),
                Some(State::Offered { .. }) => {
                    self.cancel(&sub, Cancel::RequestMismatch);
                    self.send(p, r, Body::Nak("address not offered"), via);
                    Ok(())
                }
                Some(State::Closed { .. }) => {
                    self.send(p, r, Body::Nak("session ended"), via);
                    Ok(())
                }
                _ => {
                    self.send(p, r, Body::Nak("no offer"), via);
                    Ok(())
                }
            };
        }
        let address = match (r.requested_ip, ciaddr.is_unspecified()) {
            // INIT-REBOOT: a client that kept its address asks to confirm it.
            (Some(a), true) => {
                if !adjacent {
                    return Err(DropReason::ChaddrMismatch);
                }
                a
            }
            // RENEWING (unicast) or REBINDING (broadcast).
            (None, false) => ciaddr,
            _ => return Err(DropReason::MissingField),
        };
        match self.clients.get(&sub) {
            Some(State::Bound(l)) if l.address() == address => {
                self.renew(now, sub, p, r, via);
                Ok(())
            }
            Some(State::Offered { grant, .. }) if grant.address == address => {
                self.bind(now, sub, p, r, via);
                Ok(())
            }
            Some(State::Deciding { .. }) => Err(DropReason::DecisionPending),
            Some(State::Bound(_)) | Some(State::Offered { .. }) => {
                self.send(p, r, Body::Nak("wrong address"), via);
                Ok(())
            }
            Some(State::Closed { .. }) => {
                self.send(p, r, Body::Nak("session ended"), via);
                Ok(())
            }
            Some(State::Refused { .. }) | None if self.cfg.authoritative => {
                self.send(p, r, Body::Nak("no lease"), via);
                Ok(())
            }
            _ => Err(DropReason::UnknownClient),
        }
    }

    /// Offered -> bound: ACK, `SessionStarted`.
    fn bind(
        &mut self,
        now: Instant,
        sub: Subscriber,
        p: &Packet<&[u8]>,
        r: &wire::Request<'_>,
        via: Via,
    ) {
        let Some(State::Offered { info, grant, .. }) = self.clients.get(&sub).cloned() else {
            return;
        };
        self.send(p, r, Body::Ack(&grant), via);
        let lease = Lease {
            id: info.id,
            subscriber: sub,
            user: info.user,
            expires: now + Duration::from_secs(u64::from(grant.lease_secs())),
            grant,
            client_id: info.client_id,
            line_id: info.line_id,
            relay: info.relay,
            server: None,
            started: now,
        };
        self.set(sub, State::Bound(lease.clone()));
        self.events.push_back(Event::SessionStarted(lease));
    }

    /// Bound: ACK with the lease extended, `LeaseRenewed`.
    fn renew(
        &mut self,
        now: Instant,
        sub: Subscriber,
        p: &Packet<&[u8]>,
        r: &wire::Request<'_>,
        via: Via,
    ) {
        let Some(State::Bound(mut lease)) = self.clients.get(&sub).cloned() else {
            return;
        };
        self.send(p, r, Body::Ack(&lease.grant), via);
        lease.expires = now + Duration::from_secs(u64::from(lease.grant.lease_secs()));
        if let Some(a) = Some(p.giaddr()).filter(|a| !a.is_unspecified()) {
            lease.relay = Some(a);
        }
        self.set(sub, State::Bound(lease.clone()));
        self.events.push_back(Event::LeaseRenewed(lease));
    }

    /// Forgets an offer and tells the caller.
    fn cancel(&mut self, sub: &Subscriber, why: Cancel) {
        let (id, address) = match self.clients.get(sub) {
            Some(State::Offered { info, grant, .. }) => (info.id, Some(grant.address)),
            Some(State::Deciding { info, .. }) => (info.id, None),
            _ => return,
        };
        self.remove(sub);
        self.events.push_back(Event::LoginCancelled {
            id,
            subscriber: *sub,
            address,
            why,
        });
    }

    /// The caller's answer to [`Event::Login`]: OFFER `grant`.
    pub fn accept(&mut self, now: Instant, id: LoginId, grant: Grant) -> Result<(), DecisionError> {
        let sub = *self.pending.get(&id).ok_or(DecisionError::NotPending)?;
        let Some(State::Deciding {
            info, request, via, ..
        }) = self.clients.get(&sub).cloned()
        else {
            return Err(DecisionError::NotPending);
        };
        if self
            .by_address
            .get(&grant.address)
            .is_some_and(|s| *s != sub)
        {
            return Err(DecisionError::AddressInUse);
        }
        self.pending.remove(&id);
        let p = Packet::new_unchecked(&request[..]);
        // The request parsed when it was stored.
        if let Ok(r) = wire::Request::parse(&p) {
            self.send(&p, &r, Body::Offer(&grant), via);
        }
        self.set(
            sub,
            State::Offered {
                info,
                grant,
                deadline: now + self.cfg.offer_hold,
            },
        );
        Ok(())
    }

    /// The caller's answer to [`Event::Login`]: no OFFER; DISCOVERs within
    /// `refusal_hold` are refused without asking again.
    pub fn reject(&mut self, now: Instant, id: LoginId) -> Result<(), DecisionError> {
        let sub = self.pending.remove(&id).ok_or(DecisionError::NotPending)?;
        self.c.refuse(Refusal::Rejected);
        self.set(
            sub,
            State::Refused {
                until: now + self.cfg.refusal_hold,
            },
        );
        Ok(())
    }

    /// Ends `sub`'s session from our side (DISC condition, CoA Disconnect, `ctl`,
    /// shutdown): `SessionEnded` with [`EndCause::Closed`]; until the old lease would
    /// have expired, the client's REQUESTs get NAK (then it DISCOVERs and logs in
    /// anew). Returns false if `sub` has no lease.
    pub fn end_session(&mut self, sub: &Subscriber, reason: &str) -> bool {
        let Some(State::Bound(lease)) = self.clients.get(sub).cloned() else {
            return false;
        };
        self.set(
            *sub,
            State::Closed {
                until: lease.expires,
            },
        );
        self.events.push_back(Event::SessionEnded {
            lease,
            cause: EndCause::Closed(reason.to_string()),
        });
        true
    }

    /// Takes back a persisted lease after a restart ([`Lease::decode`]). A lease that ran
    /// out meanwhile queues `SessionEnded` (expired) so that the caller stops its
    /// accounting the usual way.
    pub fn restore(&mut self, now: Instant, lease: Lease) -> Result<Restored, RestoreError> {
        let sub = lease.subscriber;
        if self.clients.contains_key(&sub) {
            return Err(RestoreError::Duplicate);
        }
        if self.by_address.contains_key(&lease.address()) {
            return Err(RestoreError::AddressInUse);
        }
        self.next_id = self.next_id.max(lease.id.0.saturating_add(1));
        if lease.expires <= now {
            self.c.stats.expired += 1;
            self.events.push_back(Event::SessionEnded {
                lease,
                cause: EndCause::Expired,
            });
            return Ok(Restored::Expired);
        }
        self.set(sub, State::Bound(lease));
        Ok(Restored::Live)
    }

    fn set(&mut self, sub: Subscriber, state: State) {
        let address = state.address();
        if let Some(old) = self.clients.insert(sub, state)
            && let Some(a) = old.address()
            && Some(a) != address
        {
            self.by_address.remove(&a);
        }
        if let Some(a) = address {
            self.by_address.insert(a, sub);
        }
    }

    fn remove(&mut self, sub: &Subscriber) -> Option<State> {
        let s = self.clients.remove(sub)?;
        self.forget(&s);
        Some(s)
    }

    /// Drops the address and decision indexes of a state that has left `clients`.
    fn forget(&mut self, s: &State) {
        if let Some(a) = s.address() {
            self.by_address.remove(&a);
        }
        if let State::Deciding { info, .. } = s {
            self.pending.remove(&info.id);
        }
    }

    /// When [`Self::handle_timeout`] is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.clients.next_due()
    }

    /// Runs what is due at `now`: decision timeouts, expired offers and leases, the end
    /// of refusal and closed holds.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some((sub, s)) = self.clients.pop_due(now) {
            self.forget(&s);
            match s {
                State::Deciding { info, .. } => self.events.push_back(Event::LoginCancelled {
                    id: info.id,
                    subscriber: sub,
                    address: None,
                    why: Cancel::DecisionTimeout,
                }),
                State::Offered { info, grant, .. } => {
                    self.events.push_back(Event::LoginCancelled {
                        id: info.id,
                        subscriber: sub,
                        address: Some(grant.address),
                        why: Cancel::OfferExpired,
                    })
                }
                State::Bound(lease) => {
                    self.c.stats.expired += 1;
                    self.events.push_back(Event::SessionEnded {
                        lease,
                        cause: EndCause::Expired,
                    });
                }
                State::Refused { .. } | State::Closed { .. } => {}
            }
        }
    }

    fn send(&mut self, req: &Packet<&[u8]>, r: &wire::Request<'_>, body: Body<'_>, via: Via) {
        let mut m = MessageBuilder::reply_to(req);
        let kind = match body {
            Body::Offer(_) => mt::OFFER,
            Body::Ack(_) | Body::Inform(_) => mt::ACK,
            Body::Nak(_) => mt::NAK,
        };
        m.option(option::MESSAGE_TYPE, &[kind]);
        m.option_ip(option::SERVER_ID, self.cfg.server_id);
        let giaddr = req.giaddr();
        match body {
            Body::Offer(g) | Body::Ack(g) => {
                m.yiaddr(g.address);
                if matches!(body, Body::Ack(_)) {
                    // RFC 2131 table 3: an ACK carries the request's ciaddr.
                    m.ciaddr(req.ciaddr());
                }
                let secs = g.lease_secs();
                m.option_u32(option::LEASE_TIME, secs);
                m.option_u32(option::RENEWAL_TIME, secs / 2);
                m.option_u32(option::REBINDING_TIME, (u64::from(secs) * 7 / 8) as u32);
                self.parameters(&mut m, r, g);
            }
            Body::Inform(g) => {
                m.ciaddr(req.ciaddr());
                self.parameters(&mut m, r, g);
            }
            Body::Nak(text) => {
                m.option(option::MESSAGE, text.as_bytes());
                if !giaddr.is_unspecified() {
                    m.flags(wire::BROADCAST_FLAG);
                }
            }
        }
        if let Some(ri) = &r.relay_agent_info {
            m.option(option::RELAY_AGENT_INFO, ri);
        }
        let message = m.finish();
        let client = req.client_mac();
        let (dst, dst_port, mac) = if !giaddr.is_unspecified() {
            (giaddr, wire::SERVER_PORT, via.src_mac)
        } else if kind == mt::NAK {
            (Ipv4Addr::BROADCAST, wire::CLIENT_PORT, client)
        } else if !req.ciaddr().is_unspecified() {
            (req.ciaddr(), wire::CLIENT_PORT, via.src_mac)
        } else if req.broadcast() {
            (Ipv4Addr::BROADCAST, wire::CLIENT_PORT, client)
        } else {
            let y = match body {
                Body::Offer(g) | Body::Ack(g) => g.address,
                _ => Ipv4Addr::BROADCAST,
            };
            (y, wire::CLIENT_PORT, client)
        };
        match kind {
            mt::OFFER => self.c.stats.offer += 1,
            mt::NAK => self.c.stats.nak += 1,
            _ => self.c.stats.ack += 1,
        }
        self.out.push_back(Transmit {
            to: Destination::Access {
                line: via.line,
                mac,
            },
            src: self.cfg.server_id,
            dst,
            src_port: wire::SERVER_PORT,
            dst_port,
            message,
        });
    }

    /// Mask and router always; DNS, domain name and MTU when granted and asked for (or
    /// when the client sent no Parameter Request List).
    fn parameters(&self, m: &mut MessageBuilder, r: &wire::Request<'_>, g: &Grant) {
        let wants = |c: u8| r.parameters.is_none() || r.requests(c);
        m.option_ip(option::SUBNET_MASK, g.mask);
        m.option_ip(option::ROUTER, g.router.unwrap_or(self.cfg.server_id));
        if wants(option::DNS) {
            m.option_ips(option::DNS, &g.dns);
        }
        if let Some(d) = &g.domain_name
            && wants(option::DOMAIN_NAME)
        {
            m.option(option::DOMAIN_NAME, d);
        }
        if let Some(mtu) = g.mtu
            && wants(option::MTU)
        {
            m.option(option::MTU, &mtu.to_be_bytes());
        }
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// `sub`'s lease, if bound.
    pub fn lease(&self, sub: &Subscriber) -> Option<&Lease> {
        match self.clients.get(sub) {
            Some(State::Bound(l)) => Some(l),
            _ => None,
        }
    }

    /// The subscriber holding or offered `address`.
    pub fn holder(&self, address: Ipv4Addr) -> Option<Subscriber> {
        self.by_address.get(&address).copied()
    }

    /// The bound leases, in no order.
    pub fn leases(&self) -> impl Iterator<Item = &Lease> {
        self.clients.values().filter_map(|s| match s {
            State::Bound(l) => Some(l),
            _ => None,
        })
    }

    /// Logins waiting for the caller's decision.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// The drop counters by reason.
    pub fn drops(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        DropReason::ALL
            .into_iter()
            .map(|d| (d, self.c.drops[d as usize]))
    }

    /// One drop counter.
    pub fn drop_count(&self, d: DropReason) -> u64 {
        self.c.drops[d as usize]
    }

    /// The refusal counters by reason.
    pub fn refusals(&self) -> impl Iterator<Item = (Refusal, u64)> + '_ {
        Refusal::ALL
            .into_iter()
            .map(|r| (r, self.c.refusals[r as usize]))
    }

    /// One refusal counter.
    pub fn refusal_count(&self, r: Refusal) -> u64 {
        self.c.refusals[r as usize]
    }

    /// The message counters.
    pub fn stats(&self) -> Stats {
        self.c.stats
    }
}
