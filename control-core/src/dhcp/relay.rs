//! Relay mode (RFC 2131 section 4.1, RFC 1542, RFC 3046), sans-I/O: the gateway relays
//! its subscribers' DHCP messages to external servers (Kea, say) and follows the
//! exchange to know the sessions.
//!
//! From the access side: the relay sets `giaddr` to its own access address, adds one
//! hop, inserts the Relay Agent Information option (Agent Circuit ID = the line's
//! NAS-Port-Id, `access0.100.200`; Agent Remote ID = the client MAC, by config) unless
//! an access node already inserted one ([`ExistingRelayInfo`]), and sends the message
//! to every configured server. From a server: a reply for a transaction it relayed goes
//! back to the client on its line (the option 82 it inserted removed); an ACK to a
//! REQUEST starts the session ([`Event::SessionStarted`]) or renews it; a NAK, a RELEASE
//! or a DECLINE ends it, and so does expiry without a renewing ACK.
//!
//! The caller's [`Relay::end_session`] (DISC, CoA) sends a RELEASE to the server for the
//! client, so that the address is free again, and NAKs the client's REQUESTs itself
//! until the old lease would have run out or the client starts over with a DISCOVER
//! (forwarding them would let the server renew a lease the gateway ended). DISCOVERs are
//! rate-limited like the server's.

use std::collections::{HashMap, VecDeque};

use core::net::Ipv4Addr;
use core::time::Duration;

use super::wire::{self, MessageBuilder, Packet, message_type as mt, op, option};
use super::{
    Counters, Destination, DropReason, EndCause, Event, Grant, Lease, LoginId, Received, Refusal,
    Stats, Transmit, check_message, view,
};
use crate::ipoe::{MacDisplay, Subscriber, is_unicast_mac};
use crate::pppoe::limit::{Admit, Bucket, PerMac, Rate};
use crate::pppoe::{Line, LineId};
use crate::time::Instant;
use crate::timed::{Due, TimedMap};
use crate::wire::ethernet::Mac;

/// What the relay does with a client message that already carries option 82 (an access
/// node acting as a layer-2 relay agent inserted it, TR-101).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ExistingRelayInfo {
    /// Forward it as it is, add none (the access node's line id reaches the server).
    #[default]
    Keep,
    /// Replace it with ours.
    Replace,
    /// Drop the message (no option 82 may come from the access side).
    Drop,
}

/// How the relay works.
#[derive(Clone, Debug)]
pub struct RelayConfig {
    /// The gateway's address on the access side: `giaddr`, and the source of replies to
    /// clients and of messages to servers.
    pub giaddr: Ipv4Addr,
    /// The DHCP servers (each gets every client message).
    pub servers: Vec<Ipv4Addr>,
    /// Access port names, by port index, for the Agent Circuit ID (`name.svlan.cvlan`);
    /// a port without a name is `portN`.
    pub port_names: Vec<String>,
    /// Put the client MAC in the Agent Remote ID.
    pub remote_id_mac: bool,
    /// What to do with option 82 from the access side.
    pub existing: ExistingRelayInfo,
    /// How long a relayed transaction waits for the server's reply.
    pub transaction_timeout: Duration,
    /// DISCOVERs accepted per client MAC.
    pub discover_rate_per_mac: Rate,
    /// DISCOVERs accepted in all.
    pub discover_rate: Rate,
    /// Client MACs whose DISCOVER rate is tracked at once.
    pub rate_table_size: usize,
    /// Leases and open transactions held at most.
    pub max_clients: usize,
    /// Relay hops accepted from the client side (the relay adds one).
    pub max_hops: u8,
}

impl RelayConfig {
    /// Defaults: relay from `giaddr` to `servers`.
    pub fn new(giaddr: Ipv4Addr, servers: Vec<Ipv4Addr>) -> RelayConfig {
        RelayConfig {
            giaddr,
            servers,
            port_names: Vec::new(),
            remote_id_mac: true,
            existing: ExistingRelayInfo::Keep,
            transaction_timeout: Duration::from_secs(30),
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
            max_hops: 15,
        }
    }

    /// The Agent Circuit ID of `line`.
    pub fn circuit_id(&self, line: Line) -> Vec<u8> {
        let name = match self.port_names.get(usize::from(line.port)) {
            Some(n) => n.clone(),
            None => format!("port{}", line.port),
        };
        line.nas_port_id(&name).into_bytes()
    }
}

/// A transaction relayed to the servers, waiting for replies.
#[derive(Clone, Debug)]
struct Transaction {
    sub: Subscriber,
    src_mac: Mac,
    kind: u8,
    inserted: bool,
    line_id: Option<LineId>,
    client_id: Option<Vec<u8>>,
    deadline: Instant,
}

#[derive(Clone, Debug)]
enum State {
    Bound(Box<Lease>),
    Closed {
        server: Option<Ipv4Addr>,
        until: Instant,
    },
}

impl Due for State {
    fn due(&self) -> Instant {
        match self {
            State::Bound(l) => l.expires,
            State::Closed { until, .. } => *until,
        }
    }
}

/// The DHCP relay of one or more access lines.
#[derive(Debug)]
pub struct Relay {
    cfg: RelayConfig,
    transactions: HashMap<(u32, Mac), Transaction>,
    transaction_order: VecDeque<(Instant, (u32, Mac))>,
    clients: TimedMap<Subscriber, State>,
    mac_rates: PerMac,
    global: Bucket,
    next_id: u64,
    out: VecDeque<Transmit>,
    events: VecDeque<Event>,
    c: Counters,
}

impl Relay {
    /// A relay with no leases at `now`.
    pub fn new(cfg: RelayConfig, now: Instant) -> Relay {
        Relay {
            mac_rates: PerMac::new(cfg.discover_rate_per_mac, cfg.rate_table_size),
            global: Bucket::full(cfg.discover_rate, now),
            cfg,
            transactions: HashMap::new(),
            transaction_order: VecDeque::new(),
            clients: TimedMap::new(),
            next_id: 1,
            out: VecDeque::new(),
            events: VecDeque::new(),
            c: Counters::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &RelayConfig {
        &self.cfg
    }

    /// A punted IPv4 datagram (UDP to port 67) from a client on `line`.
    pub fn handle_datagram(&mut self, now: Instant, line: Line, src_mac: Mac, datagram: &[u8]) {
        match super::parse_datagram(line, src_mac, datagram, wire::SERVER_PORT) {
            Ok(rx) => self.handle_client(now, &rx),
            Err(d) => self.c.drop(d),
        }
    }

    /// A DHCP message from a client on an access line.
    pub fn handle_client(&mut self, now: Instant, rx: &Received<'_>) {
        if let Err(d) = self.client(now, rx) {
            self.c.drop(d);
        }
    }

    fn client(&mut self, now: Instant, rx: &Received<'_>) -> Result<(), DropReason> {
        let p = view(rx.message)?;
        let (r, t) = check_message(&p, op::BOOTREQUEST)?;
        let mac = p.client_mac();
        if !is_unicast_mac(rx.src_mac) || mac != rx.src_mac {
            return Err(DropReason::ChaddrMismatch);
        }
        if !p.giaddr().is_unspecified() {
            return Err(DropReason::Relayed);
        }
        if p.hops() > self.cfg.max_hops {
            return Err(DropReason::TooManyHops);
        }
        let sub = Subscriber::new(rx.line, mac);
        match t {
            mt::DISCOVER => {
                self.c.stats.discover += 1;
                // A client the gateway cut off starts over: its new exchange is relayed
                // (the NAKs were for the old lease).
                if let Some(State::Closed { .. }) = self.clients.get(&sub) {
                    self.clients.remove(&sub);
                }
                match self.mac_rates.take(mac, now) {
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
            }
            mt::REQUEST => {
                self.c.stats.request += 1;
                if let Some(State::Closed { server, .. }) = self.clients.get(&sub) {
                    // The gateway ended this session: the server must not renew it.
                    let server = server.unwrap_or(self.cfg.giaddr);
                    self.nak(&p, &r, rx, server);
                    return Ok(());
                }
            }
            mt::RELEASE | mt::DECLINE => {
                let address = if t == mt::DECLINE {
                    r.requested_ip.unwrap_or(Ipv4Addr::UNSPECIFIED)
                } else {
                    p.ciaddr()
                };
                if let Some(State::Bound(l)) = self.clients.get(&sub)
                    && l.address() == address
                {
                    let cause = if t == mt::DECLINE {
                        self.c.stats.decline += 1;
                        EndCause::Decline
                    } else {
                        self.c.stats.release += 1;
                        EndCause::Release
                    };
                    if let Some(State::Bound(lease)) = self.clients.remove(&sub) {
                        self.events.push_back(Event::SessionEnded {
                            lease: *lease,
                            cause,
                        });
                    }
                }
            }
            mt::INFORM => {}
            _ => return Err(DropReason::UnexpectedType),
        }
        let existing = r.relay_agent_info.is_some();
        let (line_id, add) = match (existing, self.cfg.existing) {
            (true, ExistingRelayInfo::Drop) => return Err(DropReason::UntrustedRelayInfo),
            (true, ExistingRelayInfo::Keep) => (
                r.relay_agent_info
                    .as_deref()
                    .and_then(|v| wire::parse_relay_agent_info(v).ok()),
                None,
            ),
            _ => {
                let id = LineId {
                    circuit_id: Some(self.cfg.circuit_id(rx.line)),
                    remote_id: self
                        .cfg
                        .remote_id_mac
                        .then(|| MacDisplay(mac).to_string().into_bytes()),
                    rate_up_kbps: None,
                    rate_down_kbps: None,
                };
                let v = wire::relay_agent_info(&id);
                (Some(id), Some(v))
            }
        };
        if self.transactions.len() >= self.cfg.max_clients
            && !self.transactions.contains_key(&(p.xid(), mac))
        {
            self.c.refuse(Refusal::LeaseLimit);
            return Ok(());
        }
        let mut m = wire::rewrite_options(
            &p,
            if add.is_some() {
                &[option::RELAY_AGENT_INFO]
            } else {
                &[]
            },
            add.as_deref().map(|v| (option::RELAY_AGENT_INFO, v)),
        );
        {
            let mut w = Packet::new_unchecked(&mut m[..]);
            w.set_giaddr(self.cfg.giaddr);
            w.set_hops(p.hops().saturating_add(1));
        }
        let deadline = now + self.cfg.transaction_timeout;
        self.transactions.insert(
            (p.xid(), mac),
            Transaction {
                sub,
                src_mac: rx.src_mac,
                kind: t,
                inserted: add.is_some(),
                line_id,
                client_id: r.client_id.as_deref().map(<[u8]>::to_vec),
                deadline,
            },
        );
        self.transaction_order.push_back((deadline, (p.xid(), mac)));
        for s in &self.cfg.servers {
            self.c.stats.relayed_to_server += 1;
            self.out.push_back(Transmit {
                to: Destination::Server,
                src: self.cfg.giaddr,
                dst: *s,
                src_port: wire::SERVER_PORT,
                dst_port: wire::SERVER_PORT,
                message: m.clone(),
            });
        }
        Ok(())
    }

    /// A NAK from the relay itself (for a session the gateway ended), in the server's
    /// name.
    fn nak(
        &mut self,
        p: &Packet<&[u8]>,
        r: &wire::Request<'_>,
        rx: &Received<'_>,
        server: Ipv4Addr,
    ) {
        let mut m = MessageBuilder::reply_to(p);
        m.option(option::MESSAGE_TYPE, &[mt::NAK])
            .option_ip(option::SERVER_ID, server)
            .option(option::MESSAGE, b"session ended");
        if let Some(ri) = &r.relay_agent_info {
            m.option(option::RELAY_AGENT_INFO, ri);
        }
        self.c.stats.nak += 1;
        self.out.push_back(Transmit {
            to: Destination::Access {
                line: rx.line,
                mac: p.client_mac(),
            },
            src: self.cfg.giaddr,
            dst: Ipv4Addr::BROADCAST,
            src_port: wire::SERVER_PORT,
            dst_port: wire::CLIENT_PORT,
            message: m.finish(),
        });
    }

    /// A DHCP message from a server (`src`: its address), to the relay's port 67.
    pub fn handle_server(&mut self, now: Instant, src: Ipv4Addr, message: &[u8]) {
        if let Err(d) = self.server(now, src, message) {
            self.c.drop(d);
        }
    }

    fn server(&mut self, now: Instant, src: Ipv4Addr, message: &[u8]) -> Result<(), DropReason> {
        if !self.cfg.servers.contains(&src) {
            return Err(DropReason::UnknownServer);
        }
        let p = view(message)?;
        let (r, t) = check_message(&p, op::BOOTREPLY)?;
        if p.giaddr() != self.cfg.giaddr {
            return Err(DropReason::UnknownTransaction);
        }
        let key = (p.xid(), p.client_mac());
        let tx = self
            .transactions
            .get(&key)
            .cloned()
            .ok_or(DropReason::UnknownTransaction)?;
        let sub = tx.sub;
        match t {
            mt::OFFER => {}
            mt::ACK if tx.kind == mt::REQUEST => {
                let lease_time = r.lease_time.ok_or(DropReason::MissingField)?;
                let server = r.server_id.unwrap_or(src);
                let grant = Grant {
                    address: p.yiaddr(),
                    mask: r.subnet_mask.unwrap_or(Ipv4Addr::BROADCAST),
                    router: r.routers.as_deref().and_then(|v| wire::addresses(v).next()),
                    dns: r
                        .dns
                        .as_deref()
                        .map(|v| wire::addresses(v).collect())
                        .unwrap_or_default(),
                    lease_time: Duration::from_secs(u64::from(lease_time)),
                    domain_name: None,
                    mtu: None,
                };
                let expires = now + Duration::from_secs(u64::from(lease_time));
                match self.clients.get(&sub).cloned() {
                    Some(State::Bound(mut l)) if l.address() == grant.address => {
                        l.grant = grant;
                        l.expires = expires;
                        l.server = Some(server);
                        self.set(sub, State::Bound(l.clone()));
                        self.events.push_back(Event::LeaseRenewed(*l));
                    }
                    old => {
                        if let Some(State::Bound(lease)) = old {
                            self.clients.remove(&sub);
                            self.events.push_back(Event::SessionEnded {
                                lease: *lease,
                                cause: EndCause::Replaced,
                            });
                        }
                        let id = LoginId(self.next_id);
                        self.next_id += 1;
                        let lease = Lease {
                            id,
                            subscriber: sub,
                            user: MacDisplay(sub.mac).to_string().into_bytes(),
                            grant,
                            client_id: tx.client_id.clone(),
                            line_id: tx.line_id.clone(),
                            relay: None,
                            server: Some(server),
                            started: now,
                            expires,
                        };
                        self.set(sub, State::Bound(Box::new(lease.clone())));
                        self.events.push_back(Event::SessionStarted(lease));
                    }
                }
            }
            mt::ACK => {}
            mt::NAK => {
                if let Some(State::Bound(_)) = self.clients.get(&sub)
                    && let Some(State::Bound(lease)) = self.clients.remove(&sub)
                {
                    self.events.push_back(Event::SessionEnded {
                        lease: *lease,
                        cause: EndCause::Nak,
                    });
                }
            }
            _ => return Err(DropReason::UnexpectedType),
        }
        match t {
            mt::ACK => self.c.stats.ack += 1,
            mt::NAK => self.c.stats.nak += 1,
            _ => self.c.stats.offer += 1,
        }
        let m = if tx.inserted {
            wire::rewrite_options(&p, &[option::RELAY_AGENT_INFO], None)
        } else {
            p.as_bytes().to_vec()
        };
        let (dst, mac) = if t == mt::NAK {
            (Ipv4Addr::BROADCAST, p.client_mac())
        } else if !p.ciaddr().is_unspecified() {
            (p.ciaddr(), tx.src_mac)
        } else if p.broadcast() || p.yiaddr().is_unspecified() {
            (Ipv4Addr::BROADCAST, p.client_mac())
        } else {
            (p.yiaddr(), p.client_mac())
        };
        self.c.stats.relayed_to_client += 1;
        self.out.push_back(Transmit {
            to: Destination::Access {
                line: sub.line,
                mac,
            },
            src: self.cfg.giaddr,
            dst,
            src_port: wire::SERVER_PORT,
            dst_port: wire::CLIENT_PORT,
            message: m,
        });
        Ok(())
    }

    /// Ends `sub`'s session from our side: `SessionEnded` ([`EndCause::Closed`]), a
    /// RELEASE to the server for the client, and NAKs to the client's REQUESTs until the
    /// old lease would have expired. Returns false if `sub` has no lease.
    pub fn end_session(&mut self, sub: &Subscriber, reason: &str) -> bool {
        let Some(State::Bound(lease)) = self.clients.get(sub).cloned() else {
            return false;
        };
        self.set(
            *sub,
            State::Closed {
                server: lease.server,
                until: lease.expires,
            },
        );
        let mut m = MessageBuilder::new(op::BOOTREQUEST, lease.id.0 as u32, sub.mac);
        m.ciaddr(lease.address())
            .giaddr(self.cfg.giaddr)
            .hops(1)
            .option(option::MESSAGE_TYPE, &[mt::RELEASE]);
        if let Some(s) = lease.server {
            m.option_ip(option::SERVER_ID, s);
        }
        if let Some(c) = &lease.client_id {
            m.option(option::CLIENT_ID, c);
        }
        if let Some(id) = &lease.line_id {
            m.option(option::RELAY_AGENT_INFO, &wire::relay_agent_info(id));
        }
        let message = m.finish();
        let targets: Vec<Ipv4Addr> = match lease.server {
            Some(s) if self.cfg.servers.contains(&s) => vec![s],
            _ => self.cfg.servers.clone(),
        };
        for s in targets {
            self.c.stats.relayed_to_server += 1;
            self.out.push_back(Transmit {
                to: Destination::Server,
                src: self.cfg.giaddr,
                dst: s,
                src_port: wire::SERVER_PORT,
                dst_port: wire::SERVER_PORT,
                message: message.clone(),
            });
        }
        self.events.push_back(Event::SessionEnded {
            lease: *lease,
            cause: EndCause::Closed(reason.to_string()),
        });
        true
    }

    /// Takes back a persisted lease after a restart (see [`super::Server::restore`]).
    pub fn restore(
        &mut self,
        now: Instant,
        lease: Lease,
    ) -> Result<super::server::Restored, super::server::RestoreError> {
        use super::server::{RestoreError, Restored};
        let sub = lease.subscriber;
        if self.clients.contains_key(&sub) {
            return Err(RestoreError::Duplicate);
        }
        if self.leases().any(|l| l.address() == lease.address()) {
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
        self.set(sub, State::Bound(Box::new(lease)));
        Ok(Restored::Live)
    }

    fn set(&mut self, sub: Subscriber, state: State) {
        self.clients.insert(sub, state);
    }

    /// When [`Self::handle_timeout`] is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let lease = self.clients.next_due();
        let tx = self.transaction_order.front().map(|(t, _)| *t);
        match (lease, tx) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Expires leases and forgets transactions that are due.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(&(t, key)) = self.transaction_order.front() {
            if t > now {
                break;
            }
            self.transaction_order.pop_front();
            if self.transactions.get(&key).is_some_and(|x| x.deadline == t) {
                self.transactions.remove(&key);
            }
        }
        while let Some((_, s)) = self.clients.pop_due(now) {
            match s {
                State::Bound(lease) => {
                    self.c.stats.expired += 1;
                    self.events.push_back(Event::SessionEnded {
                        lease: *lease,
                        cause: EndCause::Expired,
                    });
                }
                State::Closed { .. } => {}
            }
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
            Some(State::Bound(l)) => Some(&**l),
            _ => None,
        }
    }

    /// The bound leases, in no order.
    pub fn leases(&self) -> impl Iterator<Item = &Lease> {
        self.clients.values().filter_map(|s| match s {
            State::Bound(l) => Some(&**l),
            _ => None,
        })
    }

    /// Transactions waiting for a server's reply.
    pub fn open_transactions(&self) -> usize {
        self.transactions.len()
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

    /// One refusal counter.
    pub fn refusal_count(&self, r: Refusal) -> u64 {
        self.c.refusals[r as usize]
    }

    /// The message counters.
    pub fn stats(&self) -> Stats {
        self.c.stats
    }
}
