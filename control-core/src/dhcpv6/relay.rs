//! Relay mode (RFC 8415 section 19), sans-I/O: the gateway relays its subscribers'
//! DHCPv6 messages to external servers (Kea, say) and follows the exchange to know the
//! bindings, as [`crate::dhcp::Relay`] does for DHCPv4.
//!
//! From the access side: a client message (SOLICIT, REQUEST, CONFIRM, RENEW, REBIND,
//! RELEASE, DECLINE, INFORMATION-REQUEST) goes to every configured server inside a
//! RELAY-FORW: hop count 0, Link-Address the configured address of the access link (the
//! server picks the subnet by it), Peer-Address the client's link-local source, and the
//! line named by Interface-Id (option 18: the line's NAS-Port-Id, `access0.100.200`),
//! Remote-Id (option 37, RFC 4649: the client MAC, by config) and the Client Link-Layer
//! Address (option 79, RFC 6939). A RELAY-REPL from a configured server for a
//! transaction it relayed (the inner message's transaction id and the Peer-Address; the
//! Interface-Id, when the server echoes it, must name the client's line) has its inner
//! message delivered to the client on its line. A REPLY that binds an IA_NA address or
//! an IA_PD prefix starts the binding ([`Event::SessionStarted`]: the address and prefix
//! are the server's) or renews it; one that binds nothing to a renewing client ends it;
//! the client's RELEASE or DECLINE ends it, and so does expiry (the longest valid
//! lifetime given) without a renewing REPLY.
//!
//! The caller's [`Relay::end_session`] (DISC, CoA) sends the server a RELEASE for the
//! client, so that its address and prefix are free again, and answers the client's
//! RENEW and REBIND itself with NoBinding (in the server's name) until the old binding
//! would have run out or the client starts over with a SOLICIT (forwarding them would
//! let the server renew a binding the gateway ended). SOLICITs are rate-limited like
//! the server's. A malformed or unexpected message from either side is a counted drop
//! ([`DropReason`]), never a panic.
//!
//! Over a restart of the gateway the caller keeps, beside each binding's [`Lease`], its
//! [`BindingServer`] (the server's DUID and address, the client's Peer-Address:
//! [`Relay::binding_server`], [`BindingServer::encode`]) and hands both back to
//! [`Relay::restore_bound`], so that the gateway's own RELEASE after the restart is the
//! one it would have sent before (RFC 8415 18.3.7: a server discards a RELEASE without
//! its Server Identifier).

use std::collections::{HashMap, VecDeque};

use core::net::Ipv6Addr;
use core::time::Duration;

use super::server::{Req, parse_packet};
use super::wire::{self, Ia, RelayPacket, message_type as mt, option, status};
use super::{DropReason, Event, Grant, Lease, Received, Refusal, Stats, Transmit};
use crate::codec::{Reader, Writer};
use crate::dhcp::{EndCause, LoginId};
use crate::inet::ipv6;
use crate::ipoe::{MacDisplay, Subscriber, is_unicast_mac};
use crate::pppoe::Line;
use crate::pppoe::limit::{Admit, Bucket, PerMac, Rate};
use crate::time::Instant;
use crate::timed::{Due, TimedMap};
use crate::wire::WireError;
use crate::wire::ethernet::Mac;

/// How the relay works.
#[derive(Clone, Debug)]
pub struct RelayConfig {
    /// The access port's MAC: the link-local source of what the relay delivers to
    /// clients (modified EUI-64).
    pub mac: Mac,
    /// The Link-Address of RELAY-FORW: an address of the access link, by which the
    /// server chooses the subnet (RFC 8415 19.1.1).
    pub link_address: Ipv6Addr,
    /// The DHCPv6 servers (each gets every client message, to UDP port 547).
    pub servers: Vec<Ipv6Addr>,
    /// Access port names, by port index, for the Interface-Id (`name.svlan.cvlan`); a
    /// port without a name is `portN`.
    pub port_names: Vec<String>,
    /// Add the Remote-Id option (RFC 4649) with the client MAC.
    pub remote_id_mac: bool,
    /// The enterprise number of the Remote-Id (RFC 4649; 0 when none is assigned).
    pub enterprise: u32,
    /// How long a relayed transaction waits for the server's reply.
    pub transaction_timeout: Duration,
    /// SOLICITs accepted per client MAC.
    pub solicit_rate_per_mac: Rate,
    /// SOLICITs accepted in all.
    pub solicit_rate: Rate,
    /// Client MACs whose SOLICIT rate is tracked at once.
    pub rate_table_size: usize,
    /// Bindings and open transactions held at most.
    pub max_clients: usize,
}

impl RelayConfig {
    /// Defaults: relay from the access port `mac`, link `link_address`, to `servers`.
    pub fn new(mac: Mac, link_address: Ipv6Addr, servers: Vec<Ipv6Addr>) -> RelayConfig {
        RelayConfig {
            mac,
            link_address,
            servers,
            port_names: Vec::new(),
            remote_id_mac: true,
            enterprise: 0,
            transaction_timeout: Duration::from_secs(30),
            solicit_rate_per_mac: Rate {
                per_second: 1,
                burst: 5,
            },
            solicit_rate: Rate {
                per_second: 2000,
                burst: 4000,
            },
            rate_table_size: 65_536,
            max_clients: 262_144,
        }
    }

    /// The Interface-Id of `line`: its NAS-Port-Id.
    pub fn interface_id(&self, line: Line) -> Vec<u8> {
        let name = match self.port_names.get(usize::from(line.port)) {
            Some(n) => n.clone(),
            None => format!("port{}", line.port),
        };
        line.nas_port_id(&name).into_bytes()
    }
}

/// A RELAY-FORW for a server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToServer {
    /// The server (UDP port 547).
    pub dst: Ipv6Addr,
    /// The RELAY-FORW message.
    pub message: Vec<u8>,
}

/// A transaction relayed to the servers, waiting for replies.
#[derive(Clone, Debug)]
struct Transaction {
    sub: Subscriber,
    kind: u8,
    duid: Vec<u8>,
    deadline: Instant,
}

/// The server end of a relayed binding: what the gateway's own RELEASE needs beside
/// the [`Lease`], kept with it over a restart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BindingServer {
    /// The server's DUID (the Server Identifier of its REPLY; empty if it sent none).
    pub server_id: Vec<u8>,
    /// The server that gave the binding.
    pub server: Ipv6Addr,
    /// The client's link-local address (the Peer-Address of the RELAY-FORW).
    pub peer: Ipv6Addr,
}

const SERVER_KIND: u8 = 0x67;
const SERVER_VERSION: u8 = 1;

impl BindingServer {
    /// The persisted form: kind `0x67`, version 1, the DUID (length-prefixed), the
    /// server's address, the Peer-Address.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(SERVER_KIND, SERVER_VERSION);
        w.bytes(&self.server_id)
            .raw(&self.server.octets())
            .raw(&self.peer.octets());
        w.finish()
    }

    /// Reads [`Self::encode`]'s bytes back (refused if a byte is missing or left over).
    pub fn decode(b: &[u8]) -> Result<BindingServer, WireError> {
        let mut r = Reader::new(b, SERVER_KIND, SERVER_VERSION)?;
        let server_id = r.bytes()?.to_vec();
        let server = Ipv6Addr::from(r.array::<16>()?);
        let peer = Ipv6Addr::from(r.array::<16>()?);
        r.finish()?;
        Ok(BindingServer {
            server_id,
            server,
            peer,
        })
    }
}

/// A binding the relay follows, with what ending it from our side needs.
#[derive(Clone, Debug)]
struct Bound {
    lease: Lease,
    from: BindingServer,
}

#[derive(Clone, Debug)]
enum State {
    Bound(Box<Bound>),
    Closed { server_id: Vec<u8>, until: Instant },
}

impl Due for State {
    fn due(&self) -> Instant {
        match self {
            State::Bound(b) => b.lease.expires,
            State::Closed { until, .. } => *until,
        }
    }
}

/// What a REPLY bound: the first IA_NA address and IA_PD prefix with a valid lifetime.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Binding {
    address: Option<(u32, wire::IaAddr)>,
    prefix: Option<(u32, wire::IaPrefix)>,
}

fn bound_ia<T>(ias: &[Ia<'_>], items: impl Fn(&Ia<'_>) -> Option<T>) -> Option<(u32, T)> {
    ias.iter()
        .filter(|ia| ia.status().is_none_or(|s| s == status::SUCCESS))
        .find_map(|ia| items(ia).map(|x| (ia.iaid, x)))
}

impl Binding {
    fn of(r: &Req<'_>) -> Binding {
        Binding {
            address: bound_ia(&r.ia_na, |ia| ia.addresses().find(|a| a.valid > 0)),
            prefix: bound_ia(&r.ia_pd, |ia| ia.prefixes().find(|p| p.valid > 0)),
        }
    }

    fn is_empty(&self) -> bool {
        self.address.is_none() && self.prefix.is_none()
    }
}

/// The DHCPv6 relay of one or more access lines.
#[derive(Debug)]
pub struct Relay {
    cfg: RelayConfig,
    link_local: Ipv6Addr,
    transactions: HashMap<(u32, Ipv6Addr), Transaction>,
    transaction_order: VecDeque<(Instant, (u32, Ipv6Addr))>,
    clients: TimedMap<Subscriber, State>,
    mac_rates: PerMac,
    global: Bucket,
    next_id: u64,
    out: VecDeque<Transmit>,
    to_servers: VecDeque<ToServer>,
    events: VecDeque<Event>,
    drops: [u64; DropReason::COUNT],
    refusals: [u64; Refusal::COUNT],
    stats: Stats,
}

impl Relay {
    /// A relay with no bindings at `now`.
    pub fn new(cfg: RelayConfig, now: Instant) -> Relay {
        Relay {
            link_local: ipv6::link_local(cfg.mac),
            mac_rates: PerMac::new(cfg.solicit_rate_per_mac, cfg.rate_table_size),
            global: Bucket::full(cfg.solicit_rate, now),
            cfg,
            transactions: HashMap::new(),
            transaction_order: VecDeque::new(),
            clients: TimedMap::new(),
            next_id: 1,
            out: VecDeque::new(),
            to_servers: VecDeque::new(),
            events: VecDeque::new(),
            drops: [0; DropReason::COUNT],
            refusals: [0; Refusal::COUNT],
            stats: Stats::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &RelayConfig {
        &self.cfg
    }

    /// A punted IPv6 packet (UDP to port 547) from `src_mac` on `line`.
    pub fn handle_packet(&mut self, now: Instant, line: Line, src_mac: Mac, packet: &[u8]) {
        match parse_packet(line, src_mac, packet) {
            Ok(rx) => self.handle_client(now, &rx),
            Err(d) => self.drops[d as usize] += 1,
        }
    }

    /// A DHCPv6 message from a client on an access line.
    pub fn handle_client(&mut self, now: Instant, rx: &Received<'_>) {
        if let Err(d) = self.client(now, rx) {
            self.drops[d as usize] += 1;
        }
    }

    fn client(&mut self, now: Instant, rx: &Received<'_>) -> Result<(), DropReason> {
        if !is_unicast_mac(rx.src_mac) {
            return Err(DropReason::NoClientMac);
        }
        let first = *rx.message.first().ok_or(DropReason::Truncated)?;
        if first == mt::RELAY_FORW || first == mt::RELAY_REPL {
            // A relay agent below us: not in relay mode (the line is ours to name).
            return Err(DropReason::BadRelay);
        }
        let r = Req::parse(rx.message)?;
        let duid = r.client_id.ok_or(DropReason::NoClientId)?;
        let sub = Subscriber::new(rx.line, rx.src_mac);
        match r.msg_type {
            mt::SOLICIT => {
                self.stats.solicit += 1;
                // A client the gateway cut off starts over: its new exchange is relayed.
                if let Some(State::Closed { .. }) = self.clients.get(&sub) {
                    self.clients.remove(&sub);
                }
                match self.mac_rates.take(rx.src_mac, now) {
                    Admit::Yes => {}
                    Admit::No => {
                        self.refusals[Refusal::SolicitRateMac as usize] += 1;
                        return Ok(());
                    }
                    Admit::Untracked => self.stats.rate_untracked += 1,
                }
                if !self.global.take(self.cfg.solicit_rate, now) {
                    self.refusals[Refusal::SolicitRate as usize] += 1;
                    return Ok(());
                }
            }
            mt::REQUEST => self.stats.request += 1,
            mt::CONFIRM => self.stats.confirm += 1,
            mt::INFORMATION_REQUEST => self.stats.information_request += 1,
            mt::RENEW | mt::REBIND => {
                if r.msg_type == mt::RENEW {
                    self.stats.renew += 1;
                } else {
                    self.stats.rebind += 1;
                }
                if let Some(State::Closed { server_id, .. }) = self.clients.get(&sub) {
                    // The gateway ended this binding: the server must not renew it.
                    let server_id = server_id.clone();
                    self.no_binding(&r, rx, &server_id);
                    return Ok(());
                }
            }
            mt::RELEASE | mt::DECLINE => {
                let cause = if r.msg_type == mt::RELEASE {
                    self.stats.release += 1;
                    EndCause::Release
                } else {
                    self.stats.decline += 1;
                    EndCause::Decline
                };
                if let Some(State::Bound(b)) = self.clients.get(&sub)
                    && b.lease.duid == duid
                    && let Some(State::Bound(b)) = self.clients.remove(&sub)
                {
                    self.events.push_back(Event::SessionEnded {
                        lease: b.lease,
                        cause,
                    });
                }
            }
            _ => return Err(DropReason::UnexpectedType),
        }
        let key = (r.transaction_id, rx.src_ip);
        if self.transactions.len() >= self.cfg.max_clients && !self.transactions.contains_key(&key)
        {
            self.refusals[Refusal::Limit as usize] += 1;
            return Ok(());
        }
        let m = self.relay_forw(rx.line, rx.src_mac, rx.src_ip, rx.message);
        let deadline = now + self.cfg.transaction_timeout;
        self.transactions.insert(
            key,
            Transaction {
                sub,
                kind: r.msg_type,
                duid: duid.to_vec(),
                deadline,
            },
        );
        self.transaction_order.push_back((deadline, key));
        for s in &self.cfg.servers {
            self.stats.relayed_to_server += 1;
            self.to_servers.push_back(ToServer {
                dst: *s,
                message: m.clone(),
            });
        }
        Ok(())
    }

    /// `message` from the client at `peer` (`mac`, on `line`) in a RELAY-FORW.
    fn relay_forw(&self, line: Line, mac: Mac, peer: Ipv6Addr, message: &[u8]) -> Vec<u8> {
        let mut o = Vec::with_capacity(64 + message.len());
        wire::put_option(&mut o, option::INTERFACE_ID, &self.cfg.interface_id(line));
        if self.cfg.remote_id_mac {
            let mut v = self.cfg.enterprise.to_be_bytes().to_vec();
            v.extend_from_slice(MacDisplay(mac).to_string().as_bytes());
            wire::put_option(&mut o, option::REMOTE_ID, &v);
        }
        let mut ll = wire::HW_ETHERNET.to_be_bytes().to_vec();
        ll.extend_from_slice(&mac);
        wire::put_option(&mut o, option::CLIENT_LINKLAYER_ADDR, &ll);
        wire::put_option(&mut o, option::RELAY_MSG, message);
        wire::relay_message(mt::RELAY_FORW, 0, self.cfg.link_address, peer, &o)
    }

    /// A REPLY from the relay itself to a RENEW or REBIND of a binding the gateway
    /// ended: every IA NoBinding, in the server's name (the client starts over).
    fn no_binding(&mut self, r: &Req<'_>, rx: &Received<'_>, server_id: &[u8]) {
        let mut o = Vec::new();
        if let Some(c) = r.client_id {
            wire::put_option(&mut o, option::CLIENT_ID, c);
        }
        if !server_id.is_empty() {
            wire::put_option(&mut o, option::SERVER_ID, server_id);
        }
        for (code, ias) in [(option::IA_NA, &r.ia_na), (option::IA_PD, &r.ia_pd)] {
            for ia in ias {
                let mut inner = Vec::new();
                wire::status_option(&mut inner, status::NO_BINDING, "session ended");
                wire::put_option(&mut o, code, &wire::ia(ia.iaid, 0, 0, &inner));
            }
        }
        self.stats.reply += 1;
        self.out.push_back(Transmit {
            line: rx.line,
            dst_mac: rx.src_mac,
            src: self.link_local,
            dst: rx.src_ip,
            dst_port: wire::CLIENT_PORT,
            message: wire::message(mt::REPLY, r.transaction_id, &o),
        });
    }

    /// A datagram from a server (`src`: its address) to the relay's port 547.
    pub fn handle_server(&mut self, now: Instant, src: Ipv6Addr, message: &[u8]) {
        if let Err(d) = self.server(now, src, message) {
            self.drops[d as usize] += 1;
        }
    }

    fn server(&mut self, now: Instant, src: Ipv6Addr, message: &[u8]) -> Result<(), DropReason> {
        if !self.cfg.servers.contains(&src) {
            return Err(DropReason::UnknownServer);
        }
        let rp = RelayPacket::new_checked(message).map_err(|_| DropReason::Truncated)?;
        if rp.msg_type() != mt::RELAY_REPL {
            return Err(DropReason::UnexpectedType);
        }
        if rp.hop_count() != 0 {
            // We relay with hop count 0: deeper nesting is not ours.
            return Err(DropReason::BadRelay);
        }
        let mut inner = None;
        let mut interface_id = None;
        for o in rp.options() {
            let o = o.map_err(|_| DropReason::BadOption)?;
            match o.code {
                option::RELAY_MSG => inner = Some(o.value),
                option::INTERFACE_ID => interface_id = Some(o.value),
                _ => {}
            }
        }
        let inner = inner.ok_or(DropReason::BadRelay)?;
        let r = Req::parse(inner)?;
        let peer = rp.peer_address();
        let tx = self
            .transactions
            .get(&(r.transaction_id, peer))
            .cloned()
            .ok_or(DropReason::UnknownTransaction)?;
        if interface_id.is_some_and(|i| i != self.cfg.interface_id(tx.sub.line).as_slice()) {
            return Err(DropReason::InterfaceIdMismatch);
        }
        if r.client_id != Some(tx.duid.as_slice()) {
            return Err(DropReason::DuidMismatch);
        }
        match r.msg_type {
            mt::ADVERTISE => self.stats.advertise += 1,
            mt::REPLY => {
                self.stats.reply += 1;
                self.replied(now, src, peer, &tx, &r);
            }
            _ => return Err(DropReason::UnexpectedType),
        }
        self.stats.relayed_to_client += 1;
        self.out.push_back(Transmit {
            line: tx.sub.line,
            dst_mac: tx.sub.mac,
            src: self.link_local,
            dst: peer,
            dst_port: wire::CLIENT_PORT,
            message: inner.to_vec(),
        });
        Ok(())
    }

    /// A server's REPLY to transaction `tx`: the binding starts, renews or ends.
    fn replied(
        &mut self,
        now: Instant,
        server: Ipv6Addr,
        peer: Ipv6Addr,
        tx: &Transaction,
        r: &Req<'_>,
    ) {
        let sub = tx.sub;
        let binds = matches!(tx.kind, mt::SOLICIT | mt::REQUEST | mt::RENEW | mt::REBIND);
        if !binds {
            return;
        }
        let b = Binding::of(r);
        let old = match self.clients.get(&sub) {
            Some(State::Bound(x)) => Some(x.lease.clone()),
            _ => None,
        };
        if b.is_empty() {
            // Renewing a binding the server no longer has (NoBinding, zero lifetimes).
            if matches!(tx.kind, mt::RENEW | mt::REBIND)
                && old.is_some()
                && let Some(State::Bound(x)) = self.clients.remove(&sub)
            {
                self.events.push_back(Event::SessionEnded {
                    lease: x.lease,
                    cause: EndCause::Nak,
                });
            }
            return;
        }
        let dns = r
            .dns
            .map(|v| wire::dns_servers(v).collect())
            .unwrap_or_default();
        let (preferred, valid) = [
            b.address.map(|(_, a)| (a.preferred, a.valid)),
            b.prefix.map(|(_, p)| (p.preferred, p.valid)),
        ]
        .into_iter()
        .flatten()
        .fold((0, 0), |(p, v), (p2, v2)| (p.max(p2), v.max(v2)));
        let grant = Grant {
            address: b.address.map(|(_, a)| a.address),
            prefix: b.prefix.map(|(_, p)| p.prefix),
            dns,
            preferred: Duration::from_secs(u64::from(preferred)),
            valid: Duration::from_secs(u64::from(valid)),
        };
        let expires = now + grant.valid;
        let server_id = r.server_id.map(<[u8]>::to_vec).unwrap_or_default();
        let bound = |lease: Lease| {
            State::Bound(Box::new(Bound {
                lease,
                from: BindingServer {
                    server_id: server_id.clone(),
                    server,
                    peer,
                },
            }))
        };
        match old {
            Some(mut l)
                if l.grant.address == grant.address
                    && l.grant.prefix == grant.prefix
                    && l.duid == tx.duid =>
            {
                l.grant = grant;
                l.expires = expires;
                self.clients.insert(sub, bound(l.clone()));
                self.events.push_back(Event::LeaseRenewed(l));
            }
            old => {
                if old.is_some()
                    && let Some(State::Bound(x)) = self.clients.remove(&sub)
                {
                    self.events.push_back(Event::SessionEnded {
                        lease: x.lease,
                        cause: EndCause::Replaced,
                    });
                }
                let id = LoginId(self.next_id);
                self.next_id += 1;
                let lease = Lease {
                    id,
                    subscriber: sub,
                    duid: tx.duid.clone(),
                    grant,
                    iaid_na: b.address.map(|(i, _)| i),
                    iaid_pd: b.prefix.map(|(i, _)| i),
                    started: now,
                    expires,
                };
                self.clients.insert(sub, bound(lease.clone()));
                self.events.push_back(Event::SessionStarted(lease));
            }
        }
    }

    /// Ends `sub`'s binding from our side: `SessionEnded` ([`EndCause::Closed`]), a
    /// RELEASE to the server for the client, and NoBinding to the client's RENEW and
    /// REBIND until the old binding would have expired. False if `sub` has none.
    pub fn end_session(&mut self, sub: &Subscriber, reason: &str) -> bool {
        let Some(State::Bound(b)) = self.clients.get(sub).cloned() else {
            return false;
        };
        self.clients.insert(
            *sub,
            State::Closed {
                server_id: b.from.server_id.clone(),
                until: b.lease.expires,
            },
        );
        let l = &b.lease;
        let mut o = Vec::new();
        wire::put_option(&mut o, option::CLIENT_ID, &l.duid);
        if !b.from.server_id.is_empty() {
            wire::put_option(&mut o, option::SERVER_ID, &b.from.server_id);
        }
        if let (Some(iaid), Some(a)) = (l.iaid_na, l.grant.address) {
            let mut inner = Vec::new();
            wire::ia_addr_option(&mut inner, a, 0, 0);
            wire::put_option(&mut o, option::IA_NA, &wire::ia(iaid, 0, 0, &inner));
        }
        if let (Some(iaid), Some(p)) = (l.iaid_pd, l.grant.prefix) {
            let mut inner = Vec::new();
            wire::ia_prefix_option(&mut inner, p, 0, 0);
            wire::put_option(&mut o, option::IA_PD, &wire::ia(iaid, 0, 0, &inner));
        }
        let release = wire::message(mt::RELEASE, (l.id.0 as u32) & 0x00ff_ffff, &o);
        let m = self.relay_forw(sub.line, sub.mac, b.from.peer, &release);
        let targets: Vec<Ipv6Addr> = if self.cfg.servers.contains(&b.from.server) {
            vec![b.from.server]
        } else {
            self.cfg.servers.clone()
        };
        for dst in targets {
            self.stats.relayed_to_server += 1;
            self.to_servers.push_back(ToServer {
                dst,
                message: m.clone(),
            });
        }
        self.events.push_back(Event::SessionEnded {
            lease: b.lease,
            cause: EndCause::Closed(reason.to_string()),
        });
        true
    }

    /// Takes back a persisted binding after a restart without its server end (a record
    /// kept before the server end was): [`Self::restore_bound`] with none.
    pub fn restore(
        &mut self,
        now: Instant,
        lease: Lease,
    ) -> Result<bool, crate::dhcp::RestoreError> {
        self.restore_bound(now, lease, None)
    }

    /// Takes back a persisted binding after a restart, with its server end as
    /// [`Self::binding_server`] gave it: [`Self::end_session`] then sends the RELEASE it
    /// would have sent before the restart. Without one, the RELEASE goes without a
    /// Server Identifier to every configured server, the Peer-Address the MAC's
    /// EUI-64 link-local address. True if the binding is live again; one that ran out
    /// meanwhile ends ([`Event::SessionEnded`], expired) and is false.
    pub fn restore_bound(
        &mut self,
        now: Instant,
        lease: Lease,
        from: Option<BindingServer>,
    ) -> Result<bool, crate::dhcp::RestoreError> {
        use crate::dhcp::RestoreError;
        let sub = lease.subscriber;
        if self.clients.contains_key(&sub) {
            return Err(RestoreError::Duplicate);
        }
        self.next_id = self.next_id.max(lease.id.0.saturating_add(1));
        if lease.expires <= now {
            self.stats.expired += 1;
            self.events.push_back(Event::SessionEnded {
                lease,
                cause: EndCause::Expired,
            });
            return Ok(false);
        }
        let from = from.unwrap_or_else(|| BindingServer {
            server_id: Vec::new(),
            // Not one of ours: the RELEASE goes to every configured server.
            server: Ipv6Addr::UNSPECIFIED,
            peer: ipv6::link_local(sub.mac),
        });
        self.clients
            .insert(sub, State::Bound(Box::new(Bound { lease, from })));
        Ok(true)
    }

    /// The server end of `sub`'s binding `id` (to persist with its lease), if bound.
    pub fn binding_server(&self, sub: &Subscriber, id: LoginId) -> Option<&BindingServer> {
        match self.clients.get(sub) {
            Some(State::Bound(b)) if b.lease.id == id => Some(&b.from),
            _ => None,
        }
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

    /// Expires bindings and forgets transactions that are due.
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
            if let State::Bound(b) = s {
                self.stats.expired += 1;
                self.events.push_back(Event::SessionEnded {
                    lease: b.lease,
                    cause: EndCause::Expired,
                });
            }
        }
    }

    /// The next message for a client.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.pop_front()
    }

    /// The next RELAY-FORW for a server.
    pub fn poll_to_server(&mut self) -> Option<ToServer> {
        self.to_servers.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// `sub`'s binding, if bound.
    pub fn lease(&self, sub: &Subscriber) -> Option<&Lease> {
        match self.clients.get(sub) {
            Some(State::Bound(b)) => Some(&b.lease),
            _ => None,
        }
    }

    /// The bindings, in no order.
    pub fn leases(&self) -> impl Iterator<Item = &Lease> {
        self.clients.values().filter_map(|s| match s {
            State::Bound(b) => Some(&b.lease),
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
            .map(|d| (d, self.drops[d as usize]))
    }

    /// One drop counter.
    pub fn drop_count(&self, d: DropReason) -> u64 {
        self.drops[d as usize]
    }

    /// The refusal counters by reason.
    pub fn refusals(&self) -> impl Iterator<Item = (Refusal, u64)> + '_ {
        Refusal::ALL
            .into_iter()
            .map(|r| (r, self.refusals[r as usize]))
    }

    /// The message counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }
}
