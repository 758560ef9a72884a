//! The DHCPv6 server engine (RFC 8415 section 18.3), sans-I/O.
//!
//! Per subscriber (line and MAC): deciding (SOLICIT asked the caller), advertised
//! (ADVERTISE sent, waiting for REQUEST), bound (REPLY sent; renewals extend it),
//! refused (the caller said no: SOLICITs are refused for `refusal_hold` without asking
//! again, each answered with status NoAddrsAvail), closed (the gateway ended the session:
//! RENEW/REBIND get the addresses and prefixes back with zero lifetimes until the old
//! binding would have expired). Expiry is the valid lifetime after the last REPLY.
//!
//! One IA_NA gets the granted address and one IA_PD the granted prefix; further IAs, or
//! IAs the grant has nothing for, get NoAddrsAvail / NoPrefixAvail. IA_TA is not served
//! (it is ignored, as the RFC allows a server without temporary addresses to).

use std::collections::{HashMap, VecDeque};

use core::net::Ipv6Addr;
use core::time::Duration;

use super::wire::{self, Ia, message_type as mt, option, status};
use super::{DropReason, Event, Grant, Lease, Login, Received, Refusal, Stats, Transmit};
use crate::dhcp::{Cancel, DecisionError, EndCause, LoginId};
use crate::inet::ipv6::{self, next_header};
use crate::inet::udp;
use crate::ipoe::{MacDisplay, Subscriber, is_unicast_mac};
use crate::pppoe::Line;
use crate::pppoe::limit::{Admit, Bucket, PerMac, Rate};
use crate::time::Instant;
use crate::timed::{Due, TimedMap};
use crate::wire::ethernet::Mac;

/// How the server answers.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// The access port's MAC: the server DUID (DUID-LL) and the link-local source of
    /// replies (modified EUI-64).
    pub mac: Mac,
    /// Answer a SOLICIT with Rapid Commit by a REPLY at once (RFC 8415 18.3.1).
    pub rapid_commit: bool,
    /// The Preference option in ADVERTISE (255: the client need not wait for others).
    pub preference: Option<u8>,
    /// How long the caller may take to decide a login.
    pub decision_timeout: Duration,
    /// How long an advertised grant waits for the client's REQUEST.
    pub advertise_hold: Duration,
    /// How long a rejected subscriber's SOLICITs are refused without asking again.
    pub refusal_hold: Duration,
    /// DNS servers for INFORMATION-REQUEST from subscribers without a binding (SLAAC
    /// hosts with the O flag).
    pub dns: Vec<Ipv6Addr>,
    /// Information Refresh Time given with INFORMATION-REQUEST replies.
    pub information_refresh: Option<Duration>,
    /// SOLICITs accepted per client MAC.
    pub solicit_rate_per_mac: Rate,
    /// SOLICITs accepted in all.
    pub solicit_rate: Rate,
    /// Client MACs whose SOLICIT rate is tracked at once.
    pub rate_table_size: usize,
    /// Subscribers the engine holds at most.
    pub max_clients: usize,
}

impl ServerConfig {
    /// Defaults for a server on a port with `mac`.
    pub fn new(mac: Mac) -> ServerConfig {
        ServerConfig {
            mac,
            rapid_commit: true,
            preference: Some(255),
            decision_timeout: Duration::from_secs(10),
            advertise_hold: Duration::from_secs(60),
            refusal_hold: Duration::from_secs(10),
            dns: Vec::new(),
            information_refresh: Some(Duration::from_secs(86_400)),
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
}

/// A lightweight relay agent's envelope, to wrap the reply in.
#[derive(Clone, Debug)]
struct RelayEnvelope {
    hop_count: u8,
    link: Ipv6Addr,
    peer: Ipv6Addr,
    interface_id: Option<Vec<u8>>,
    remote_id: Option<Vec<u8>>,
}

/// Where replies go.
#[derive(Clone, Debug)]
struct Via {
    line: Line,
    src_mac: Mac,
    src_ip: Ipv6Addr,
    relay: Option<RelayEnvelope>,
}

/// The parts of a client message the server reads.
#[derive(Debug, Default)]
pub(super) struct Req<'a> {
    pub(super) msg_type: u8,
    pub(super) transaction_id: u32,
    pub(super) client_id: Option<&'a [u8]>,
    pub(super) server_id: Option<&'a [u8]>,
    pub(super) ia_na: Vec<Ia<'a>>,
    pub(super) ia_pd: Vec<Ia<'a>>,
    oro: Option<&'a [u8]>,
    rapid_commit: bool,
    /// The DNS Recursive Name Server option (a server's REPLY, read by the relay).
    pub(super) dns: Option<&'a [u8]>,
}

impl<'a> Req<'a> {
    pub(super) fn parse(m: &'a [u8]) -> Result<Req<'a>, DropReason> {
        let p = wire::Packet::new_checked(m).map_err(|_| DropReason::Truncated)?;
        let mut r = Req {
            msg_type: p.msg_type(),
            transaction_id: p.transaction_id(),
            ..Req::default()
        };
        // The options borrow from `m`, not from the view.
        for o in wire::options(&m[wire::HEADER_LEN..]) {
            let o = o.map_err(|_| DropReason::BadOption)?;
            match o.code {
                option::CLIENT_ID => r.client_id = Some(o.value),
                option::SERVER_ID => r.server_id = Some(o.value),
                option::IA_NA => r
                    .ia_na
                    .push(Ia::parse(o.value).map_err(|_| DropReason::BadOption)?),
                option::IA_PD => r
                    .ia_pd
                    .push(Ia::parse(o.value).map_err(|_| DropReason::BadOption)?),
                option::ORO => r.oro = Some(o.value),
                option::RAPID_COMMIT => r.rapid_commit = true,
                option::DNS_SERVERS => r.dns = Some(o.value),
                _ => {}
            }
        }
        Ok(r)
    }

    fn requests(&self, code: u16) -> bool {
        self.oro.is_none_or(|o| {
            o.chunks_exact(2)
                .any(|c| u16::from_be_bytes([c[0], c[1]]) == code)
        })
    }
}

#[derive(Clone, Debug)]
struct LoginInfo {
    id: LoginId,
    duid: Vec<u8>,
}

#[derive(Clone, Debug)]
enum State {
    Deciding {
        info: LoginInfo,
        request: Vec<u8>,
        via: Box<Via>,
        deadline: Instant,
    },
    Advertised {
        info: LoginInfo,
        grant: Grant,
        deadline: Instant,
    },
    Bound(Box<Lease>),
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
            State::Deciding { deadline, .. } | State::Advertised { deadline, .. } => *deadline,
            State::Bound(l) => l.expires,
            State::Refused { until } | State::Closed { until } => *until,
        }
    }
}

/// How the IAs of a reply are filled.
#[derive(Clone, Copy)]
enum IaMode<'a> {
    /// The grant's address and prefix with their lifetimes.
    Assign(&'a Grant),
    /// The client's own addresses and prefixes with zero lifetimes (stop using them).
    Zero,
    /// Each IA with a status and no addresses.
    Status(u16, &'static str),
}

/// The DHCPv6 server of one or more access lines.
#[derive(Debug)]
pub struct Server {
    cfg: ServerConfig,
    duid: Vec<u8>,
    link_local: Ipv6Addr,
    clients: TimedMap<Subscriber, State>,
    pending: HashMap<LoginId, Subscriber>,
    mac_rates: PerMac,
    global: Bucket,
    next_id: u64,
    out: VecDeque<Transmit>,
    events: VecDeque<Event>,
    drops: [u64; DropReason::COUNT],
    refusals: [u64; Refusal::COUNT],
    stats: Stats,
}

impl Server {
    /// A server with no bindings at `now`.
    pub fn new(cfg: ServerConfig, now: Instant) -> Server {
        Server {
            duid: wire::duid_ll(cfg.mac),
            link_local: ipv6::link_local(cfg.mac),
            mac_rates: PerMac::new(cfg.solicit_rate_per_mac, cfg.rate_table_size),
            global: Bucket::full(cfg.solicit_rate, now),
            cfg,
            clients: TimedMap::new(),
            pending: HashMap::new(),
            next_id: 1,
            out: VecDeque::new(),
            events: VecDeque::new(),
            drops: [0; DropReason::COUNT],
            refusals: [0; Refusal::COUNT],
            stats: Stats::default(),
        }
    }

    /// The server's DUID (DUID-LL of the port's MAC).
    pub fn duid(&self) -> &[u8] {
        &self.duid
    }

    /// The link-local address replies come from.
    pub fn link_local(&self) -> Ipv6Addr {
        self.link_local
    }

    /// A punted IPv6 packet (UDP to port 547) from `src_mac` on `line`.
    pub fn handle_packet(&mut self, now: Instant, line: Line, src_mac: Mac, packet: &[u8]) {
        match parse_packet(line, src_mac, packet) {
            Ok(rx) => self.handle_input(now, &rx),
            Err(d) => self.drops[d as usize] += 1,
        }
    }

    /// A DHCPv6 message from a client (or a lightweight relay agent).
    pub fn handle_input(&mut self, now: Instant, rx: &Received<'_>) {
        if let Err(d) = self.input(now, rx) {
            self.drops[d as usize] += 1;
        }
    }

    fn input(&mut self, now: Instant, rx: &Received<'_>) -> Result<(), DropReason> {
        if !is_unicast_mac(rx.src_mac) {
            return Err(DropReason::NoClientMac);
        }
        let first = *rx.message.first().ok_or(DropReason::Truncated)?;
        let mut via = Via {
            line: rx.line,
            src_mac: rx.src_mac,
            src_ip: rx.src_ip,
            relay: None,
        };
        let (message, mac) = if first == mt::RELAY_FORW {
            let rp =
                wire::RelayPacket::new_checked(rx.message).map_err(|_| DropReason::Truncated)?;
            let mut inner = None;
            let mut interface_id = None;
            let mut remote_id = None;
            let mut mac = None;
            for o in wire::options(&rx.message[wire::RELAY_HEADER_LEN..]) {
                let o = o.map_err(|_| DropReason::BadOption)?;
                match o.code {
                    option::RELAY_MSG => inner = Some(o.value),
                    option::INTERFACE_ID => interface_id = Some(o.value.to_vec()),
                    // RFC 4649: an enterprise number, then the remote-id.
                    option::REMOTE_ID if o.value.len() > 4 => {
                        remote_id = Some(o.value[4..].to_vec())
                    }
                    option::CLIENT_LINKLAYER_ADDR => mac = wire::client_linklayer_mac(o.value),
                    _ => {}
                }
            }
            let inner = inner.ok_or(DropReason::BadRelay)?;
            if inner.first() == Some(&mt::RELAY_FORW) {
                return Err(DropReason::BadRelay);
            }
            // Without the RFC 6939 option, a DUID-LL/LLT's address is the best we have.
            let mac = mac
                .or_else(|| {
                    Req::parse(inner)
                        .ok()
                        .and_then(|r| r.client_id.and_then(wire::duid_mac))
                })
                .filter(|m| is_unicast_mac(*m))
                .ok_or(DropReason::NoClientMac)?;
            via.relay = Some(RelayEnvelope {
                hop_count: rp.hop_count(),
                link: rp.link_address(),
                peer: rp.peer_address(),
                interface_id,
                remote_id,
            });
            self.stats.relayed += 1;
            (inner, mac)
        } else {
            (rx.message, rx.src_mac)
        };
        let r = Req::parse(message)?;
        let sub = Subscriber::new(rx.line, mac);
        let ours = |s: Option<&[u8]>| s == Some(&self.duid[..]);
        let duid = r.client_id.ok_or(DropReason::NoClientId);
        match r.msg_type {
            mt::SOLICIT => {
                let duid = duid?;
                if r.server_id.is_some() {
                    return Err(DropReason::ServerIdRule);
                }
                self.solicit(now, sub, message, &r, duid, via)
            }
            mt::REQUEST | mt::RENEW | mt::RELEASE | mt::DECLINE => {
                let duid = duid?;
                if r.server_id.is_none() {
                    return Err(DropReason::ServerIdRule);
                }
                if !ours(r.server_id) {
                    if r.msg_type == mt::REQUEST
                        && let Some(State::Advertised { .. }) = self.clients.get(&sub)
                    {
                        self.cancel(&sub, Cancel::OtherServer);
                    }
                    return Err(DropReason::OtherServer);
                }
                match r.msg_type {
                    mt::REQUEST => self.request(now, sub, &r, duid, &via),
                    mt::RENEW => {
                        self.stats.renew += 1;
                        self.renew(now, sub, &r, duid, &via)
                    }
                    _ => self.release(sub, &r, duid, &via),
                }
            }
            mt::REBIND => {
                let duid = duid?;
                if r.server_id.is_some() {
                    return Err(DropReason::ServerIdRule);
                }
                self.stats.rebind += 1;
                self.renew(now, sub, &r, duid, &via)
            }
            mt::CONFIRM => {
                let duid = duid?;
                if r.server_id.is_some() {
                    return Err(DropReason::ServerIdRule);
                }
                self.stats.confirm += 1;
                let lease = match self.clients.get(&sub) {
                    Some(State::Bound(l)) if l.duid == duid => l,
                    _ => return Err(DropReason::UnknownClient),
                };
                let on_link = r
                    .ia_na
                    .iter()
                    .flat_map(|ia| ia.addresses())
                    .all(|a| Some(a.address) == lease.grant.address);
                let mut o = Vec::new();
                if on_link {
                    wire::status_option(&mut o, status::SUCCESS, "on link");
                } else {
                    wire::status_option(&mut o, status::NOT_ON_LINK, "not on link");
                }
                self.reply(mt::REPLY, &r, &o, &via);
                Ok(())
            }
            mt::INFORMATION_REQUEST => {
                if !r.ia_na.is_empty() || !r.ia_pd.is_empty() {
                    return Err(DropReason::IaInInformationRequest);
                }
                if r.server_id.is_some() && !ours(r.server_id) {
                    return Err(DropReason::OtherServer);
                }
                self.stats.information_request += 1;
                let dns = match self.clients.get(&sub) {
                    Some(State::Bound(l)) if !l.grant.dns.is_empty() => l.grant.dns.clone(),
                    _ => self.cfg.dns.clone(),
                };
                let mut o = Vec::new();
                if r.requests(option::DNS_SERVERS) && !dns.is_empty() {
                    dns_option(&mut o, &dns);
                }
                if let Some(t) = self.cfg.information_refresh {
                    let secs = t.as_secs().clamp(600, u64::from(u32::MAX)) as u32;
                    wire::put_option(
                        &mut o,
                        option::INFORMATION_REFRESH_TIME,
                        &secs.to_be_bytes(),
                    );
                }
                self.reply(mt::REPLY, &r, &o, &via);
                Ok(())
            }
            _ => Err(DropReason::UnexpectedType),
        }
    }

    fn solicit(
        &mut self,
        now: Instant,
        sub: Subscriber,
        message: &[u8],
        r: &Req<'_>,
        duid: &[u8],
        via: Via,
    ) -> Result<(), DropReason> {
        self.stats.solicit += 1;
        match self.mac_rates.take(sub.mac, now) {
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
        match self.clients.get_mut(&sub) {
            Some(State::Bound(l)) => {
                // The client lost its state: its binding again.
                l.duid = duid.to_vec();
                let lease = (**l).clone();
                if self.rapid(r) {
                    self.assign(
                        now,
                        sub,
                        r,
                        &via,
                        lease.grant.clone(),
                        LoginInfo {
                            id: lease.id,
                            duid: duid.to_vec(),
                        },
                    );
                } else {
                    self.advertise(r, &lease.grant, &via);
                }
                return Ok(());
            }
            Some(State::Advertised { grant, info, .. }) => {
                info.duid = duid.to_vec();
                let g = grant.clone();
                self.advertise(r, &g, &via);
                return Ok(());
            }
            Some(State::Deciding {
                request,
                via: v,
                info,
                ..
            }) => {
                *request = message.to_vec();
                **v = via;
                info.duid = duid.to_vec();
                return Err(DropReason::DecisionPending);
            }
            Some(State::Refused { until }) if now < *until => {
                self.refusals[Refusal::RecentlyRejected as usize] += 1;
                let mut o = Vec::new();
                wire::status_option(&mut o, status::NO_ADDRS_AVAIL, "refused");
                self.reply(mt::ADVERTISE, r, &o, &via);
                return Ok(());
            }
            Some(_) => {}
            None => {
                if self.clients.len() >= self.cfg.max_clients {
                    self.refusals[Refusal::Limit as usize] += 1;
                    return Ok(());
                }
            }
        }
        let id = LoginId(self.next_id);
        self.next_id += 1;
        self.stats.logins += 1;
        let login = Login {
            id,
            subscriber: sub,
            user: MacDisplay(sub.mac).to_string().into_bytes(),
            duid: duid.to_vec(),
            wants_address: !r.ia_na.is_empty(),
            wants_prefix: !r.ia_pd.is_empty(),
            prefix_len_hint: r
                .ia_pd
                .iter()
                .flat_map(|ia| ia.prefixes())
                .map(|p| p.prefix.len())
                .find(|l| *l != 0),
            interface_id: via.relay.as_ref().and_then(|e| e.interface_id.clone()),
            remote_id: via.relay.as_ref().and_then(|e| e.remote_id.clone()),
        };
        self.pending.insert(id, sub);
        self.set(
            sub,
            State::Deciding {
                info: LoginInfo {
                    id,
                    duid: duid.to_vec(),
                },
                request: message.to_vec(),
                via: Box::new(via),
                deadline: now + self.cfg.decision_timeout,
            },
        );
        self.events.push_back(Event::Login(login));
        Ok(())
    }

    fn rapid(&self, r: &Req<'_>) -> bool {
        self.cfg.rapid_commit && r.rapid_commit
    }

    fn advertise(&mut self, r: &Req<'_>, grant: &Grant, via: &Via) {
        let mut o = Vec::new();
        if let Some(p) = self.cfg.preference {
            wire::put_option(&mut o, option::PREFERENCE, &[p]);
        }
        ias(&mut o, r, IaMode::Assign(grant));
        if r.requests(option::DNS_SERVERS) && !grant.dns.is_empty() {
            dns_option(&mut o, &grant.dns);
        }
        self.stats.advertise += 1;
        self.reply(mt::ADVERTISE, r, &o, via);
    }

    /// REPLY with the grant; the subscriber becomes bound (`SessionStarted`, or
    /// `LeaseRenewed` if it was).
    fn assign(
        &mut self,
        now: Instant,
        sub: Subscriber,
        r: &Req<'_>,
        via: &Via,
        grant: Grant,
        info: LoginInfo,
    ) {
        let mut o = Vec::new();
        if r.msg_type == mt::SOLICIT {
            wire::put_option(&mut o, option::RAPID_COMMIT, &[]);
        }
        ias(&mut o, r, IaMode::Assign(&grant));
        if r.requests(option::DNS_SERVERS) && !grant.dns.is_empty() {
            dns_option(&mut o, &grant.dns);
        }
        self.reply(mt::REPLY, r, &o, via);
        let iaid_na = grant.address.and(r.ia_na.first().map(|ia| ia.iaid));
        let iaid_pd = grant.prefix.and(r.ia_pd.first().map(|ia| ia.iaid));
        let expires = now + Duration::from_secs(u64::from(grant.valid_secs()));
        let (lease, renewed) = match self.clients.get(&sub) {
            Some(State::Bound(l)) => {
                let mut l = (**l).clone();
                l.grant = grant;
                l.duid = info.duid;
                l.iaid_na = iaid_na.or(l.iaid_na);
                l.iaid_pd = iaid_pd.or(l.iaid_pd);
                l.expires = expires;
                (l, true)
            }
            _ => (
                Lease {
                    id: info.id,
                    subscriber: sub,
                    duid: info.duid,
                    grant,
                    iaid_na,
                    iaid_pd,
                    started: now,
                    expires,
                },
                false,
            ),
        };
        self.set(sub, State::Bound(Box::new(lease.clone())));
        self.events.push_back(if renewed {
            Event::LeaseRenewed(lease)
        } else {
            Event::SessionStarted(lease)
        });
    }

    fn request(
        &mut self,
        now: Instant,
        sub: Subscriber,
        r: &Req<'_>,
        duid: &[u8],
        via: &Via,
    ) -> Result<(), DropReason> {
        self.stats.request += 1;
        match self.clients.get(&sub).cloned() {
            Some(State::Advertised { info, grant, .. }) => {
                if info.duid != duid {
                    return Err(DropReason::DuidMismatch);
                }
                self.assign(now, sub, r, via, grant, info);
                Ok(())
            }
            Some(State::Bound(l)) => {
                if l.duid != duid {
                    return Err(DropReason::DuidMismatch);
                }
                let info = LoginInfo {
                    id: l.id,
                    duid: l.duid.clone(),
                };
                self.assign(now, sub, r, via, l.grant.clone(), info);
                Ok(())
            }
            Some(State::Deciding { .. }) => Err(DropReason::DecisionPending),
            _ => {
                let mut o = Vec::new();
                ias(
                    &mut o,
                    r,
                    IaMode::Status(status::NO_ADDRS_AVAIL, "no binding; solicit"),
                );
                self.reply(mt::REPLY, r, &o, via);
                Ok(())
            }
        }
    }

    fn renew(
        &mut self,
        now: Instant,
        sub: Subscriber,
        r: &Req<'_>,
        duid: &[u8],
        via: &Via,
    ) -> Result<(), DropReason> {
        match self.clients.get(&sub).cloned() {
            Some(State::Bound(l)) if l.duid == duid => {
                let info = LoginInfo {
                    id: l.id,
                    duid: l.duid.clone(),
                };
                self.assign(now, sub, r, via, l.grant.clone(), info);
            }
            Some(State::Bound(_)) => return Err(DropReason::DuidMismatch),
            Some(State::Deciding { .. }) => return Err(DropReason::DecisionPending),
            Some(State::Closed { .. }) => {
                let mut o = Vec::new();
                ias(&mut o, r, IaMode::Zero);
                self.reply(mt::REPLY, r, &o, via);
            }
            _ if r.msg_type == mt::REBIND => {
                // RFC 8415 18.3.5: addresses not appropriate for the link go back with
                // zero lifetimes; this authoritative server knows them all.
                let mut o = Vec::new();
                ias(&mut o, r, IaMode::Zero);
                self.reply(mt::REPLY, r, &o, via);
            }
            _ => {
                let mut o = Vec::new();
                ias(&mut o, r, IaMode::Status(status::NO_BINDING, "no binding"));
                self.reply(mt::REPLY, r, &o, via);
            }
        }
        Ok(())
    }

    fn release(
        &mut self,
        sub: Subscriber,
        r: &Req<'_>,
        duid: &[u8],
        via: &Via,
    ) -> Result<(), DropReason> {
        let decline = r.msg_type == mt::DECLINE;
        let mut o = Vec::new();
        match self.clients.get(&sub) {
            Some(State::Bound(l)) if l.duid == duid => {
                if decline {
                    self.stats.decline += 1;
                } else {
                    self.stats.release += 1;
                }
                if let Some(State::Bound(lease)) = self.remove(&sub) {
                    self.events.push_back(Event::SessionEnded {
                        lease: *lease,
                        cause: if decline {
                            EndCause::Decline
                        } else {
                            EndCause::Release
                        },
                    });
                }
                wire::status_option(&mut o, status::SUCCESS, "released");
            }
            Some(State::Bound(_)) => return Err(DropReason::DuidMismatch),
            _ => {
                wire::status_option(&mut o, status::SUCCESS, "released");
                ias(&mut o, r, IaMode::Status(status::NO_BINDING, "no binding"));
            }
        }
        self.reply(mt::REPLY, r, &o, via);
        Ok(())
    }

    /// Sends `msg_type` with Client ID, Server ID and `body` to the client (wrapped in a
    /// RELAY-REPL when it came through a relay agent).
    fn reply(&mut self, msg_type: u8, r: &Req<'_>, body: &[u8], via: &Via) {
        let mut o = Vec::with_capacity(64 + body.len());
        if let Some(c) = r.client_id {
            wire::put_option(&mut o, option::CLIENT_ID, c);
        }
        wire::put_option(&mut o, option::SERVER_ID, &self.duid);
        o.extend_from_slice(body);
        let m = wire::message(msg_type, r.transaction_id, &o);
        if msg_type == mt::REPLY {
            self.stats.reply += 1;
        }
        let (message, dst_port) = match &via.relay {
            None => (m, wire::CLIENT_PORT),
            Some(e) => {
                let mut ro = Vec::with_capacity(m.len() + 32);
                if let Some(i) = &e.interface_id {
                    wire::put_option(&mut ro, option::INTERFACE_ID, i);
                }
                wire::put_option(&mut ro, option::RELAY_MSG, &m);
                (
                    wire::relay_message(mt::RELAY_REPL, e.hop_count, e.link, e.peer, &ro),
                    wire::SERVER_PORT,
                )
            }
        };
        self.out.push_back(Transmit {
            line: via.line,
            dst_mac: via.src_mac,
            src: self.link_local,
            dst: via.src_ip,
            dst_port,
            message,
        });
    }

    fn cancel(&mut self, sub: &Subscriber, why: Cancel) {
        let (id, grant) = match self.clients.get(sub) {
            Some(State::Advertised { info, grant, .. }) => (info.id, Some(grant.clone())),
            Some(State::Deciding { info, .. }) => (info.id, None),
            _ => return,
        };
        self.remove(sub);
        self.events.push_back(Event::LoginCancelled {
            id,
            subscriber: *sub,
            grant,
            why,
        });
    }

    /// The caller's answer to [`Event::Login`]: ADVERTISE `grant` (or REPLY with it at
    /// once if the client asked for Rapid Commit and the config allows it).
    pub fn accept(&mut self, now: Instant, id: LoginId, grant: Grant) -> Result<(), DecisionError> {
        let sub = *self.pending.get(&id).ok_or(DecisionError::NotPending)?;
        let Some(State::Deciding {
            info, request, via, ..
        }) = self.clients.get(&sub).cloned()
        else {
            return Err(DecisionError::NotPending);
        };
        self.pending.remove(&id);
        let Ok(r) = Req::parse(&request) else {
            return Err(DecisionError::NotPending);
        };
        if self.rapid(&r) {
            self.assign(now, sub, &r, &via, grant, info);
        } else {
            self.advertise(&r, &grant, &via);
            self.set(
                sub,
                State::Advertised {
                    info,
                    grant,
                    deadline: now + self.cfg.advertise_hold,
                },
            );
        }
        Ok(())
    }

    /// The caller's answer to [`Event::Login`]: ADVERTISE with status NoAddrsAvail, and
    /// SOLICITs within `refusal_hold` get the same without asking again.
    pub fn reject(&mut self, now: Instant, id: LoginId) -> Result<(), DecisionError> {
        let sub = self.pending.remove(&id).ok_or(DecisionError::NotPending)?;
        if let Some(State::Deciding { request, via, .. }) = self.clients.get(&sub).cloned()
            && let Ok(r) = Req::parse(&request)
        {
            let mut o = Vec::new();
            wire::status_option(&mut o, status::NO_ADDRS_AVAIL, "refused");
            self.reply(mt::ADVERTISE, &r, &o, &via);
        }
        self.refusals[Refusal::Rejected as usize] += 1;
        self.set(
            sub,
            State::Refused {
                until: now + self.cfg.refusal_hold,
            },
        );
        Ok(())
    }

    /// Ends `sub`'s binding from our side: `SessionEnded` ([`EndCause::Closed`]); until
    /// it would have expired, RENEW and REBIND get its addresses with zero lifetimes.
    /// Returns false if `sub` has no binding.
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
            lease: *lease,
            cause: EndCause::Closed(reason.to_string()),
        });
        true
    }

    /// Takes back a persisted binding after a restart ([`Lease::decode`]); one that ran
    /// out meanwhile queues `SessionEnded` (expired) and returns false.
    pub fn restore(
        &mut self,
        now: Instant,
        lease: Lease,
    ) -> Result<bool, crate::dhcp::RestoreError> {
        let sub = lease.subscriber;
        if self.clients.contains_key(&sub) {
            return Err(crate::dhcp::RestoreError::Duplicate);
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
        self.set(sub, State::Bound(Box::new(lease)));
        Ok(true)
    }

    fn set(&mut self, sub: Subscriber, state: State) {
        self.clients.insert(sub, state);
    }

    fn remove(&mut self, sub: &Subscriber) -> Option<State> {
        let s = self.clients.remove(sub)?;
        self.forget(&s);
        Some(s)
    }

    /// Drops the decision index of a state that has left `clients`.
    fn forget(&mut self, s: &State) {
        if let State::Deciding { info, .. } = s {
            self.pending.remove(&info.id);
        }
    }

    /// When [`Self::handle_timeout`] is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.clients.next_due()
    }

    /// Runs what is due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some((sub, s)) = self.clients.pop_due(now) {
            self.forget(&s);
            match s {
                State::Deciding { info, .. } => self.events.push_back(Event::LoginCancelled {
                    id: info.id,
                    subscriber: sub,
                    grant: None,
                    why: Cancel::DecisionTimeout,
                }),
                State::Advertised { info, grant, .. } => {
                    self.events.push_back(Event::LoginCancelled {
                        id: info.id,
                        subscriber: sub,
                        grant: Some(grant),
                        why: Cancel::OfferExpired,
                    })
                }
                State::Bound(lease) => {
                    self.stats.expired += 1;
                    self.events.push_back(Event::SessionEnded {
                        lease: *lease,
                        cause: EndCause::Expired,
                    });
                }
                State::Refused { .. } | State::Closed { .. } => {}
            }
        }
    }

    /// The next message to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// `sub`'s binding, if bound.
    pub fn lease(&self, sub: &Subscriber) -> Option<&Lease> {
        match self.clients.get(sub) {
            Some(State::Bound(l)) => Some(l),
            _ => None,
        }
    }

    /// The bindings, in no order.
    pub fn leases(&self) -> impl Iterator<Item = &Lease> {
        self.clients.values().filter_map(|s| match s {
            State::Bound(l) => Some(&**l),
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
            .map(|d| (d, self.drops[d as usize]))
    }

    /// One drop counter.
    pub fn drop_count(&self, d: DropReason) -> u64 {
        self.drops[d as usize]
    }

    /// One refusal counter.
    pub fn refusal_count(&self, r: Refusal) -> u64 {
        self.refusals[r as usize]
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

fn dns_option(out: &mut Vec<u8>, dns: &[Ipv6Addr]) {
    let v: Vec<u8> = dns.iter().flat_map(|a| a.octets()).collect();
    wire::put_option(out, option::DNS_SERVERS, &v);
}

/// The IA_NA and IA_PD options of a reply to `r`.
fn ias(out: &mut Vec<u8>, r: &Req<'_>, mode: IaMode<'_>) {
    for (i, ia) in r.ia_na.iter().enumerate() {
        let mut inner = Vec::new();
        let (t1, t2) = match mode {
            IaMode::Assign(g) => match g.address {
                Some(a) if i == 0 => {
                    wire::ia_addr_option(&mut inner, a, g.preferred_secs(), g.valid_secs());
                    t1_t2(g)
                }
                _ => {
                    wire::status_option(&mut inner, status::NO_ADDRS_AVAIL, "no address");
                    (0, 0)
                }
            },
            IaMode::Zero => {
                for a in ia.addresses() {
                    wire::ia_addr_option(&mut inner, a.address, 0, 0);
                }
                (0, 0)
            }
            IaMode::Status(code, text) => {
                wire::status_option(&mut inner, code, text);
                (0, 0)
            }
        };
        wire::put_option(out, option::IA_NA, &wire::ia(ia.iaid, t1, t2, &inner));
    }
    for (i, ia) in r.ia_pd.iter().enumerate() {
        let mut inner = Vec::new();
        let (t1, t2) = match mode {
            IaMode::Assign(g) => match g.prefix {
                Some(p) if i == 0 => {
                    wire::ia_prefix_option(&mut inner, p, g.preferred_secs(), g.valid_secs());
                    t1_t2(g)
                }
                _ => {
                    wire::status_option(&mut inner, status::NO_PREFIX_AVAIL, "no prefix");
                    (0, 0)
                }
            },
            IaMode::Zero => {
                for p in ia.prefixes() {
                    wire::ia_prefix_option(&mut inner, p.prefix, 0, 0);
                }
                (0, 0)
            }
            IaMode::Status(code, text) => {
                let code = if code == status::NO_ADDRS_AVAIL {
                    status::NO_PREFIX_AVAIL
                } else {
                    code
                };
                wire::status_option(&mut inner, code, text);
                (0, 0)
            }
        };
        wire::put_option(out, option::IA_PD, &wire::ia(ia.iaid, t1, t2, &inner));
    }
}

/// T1 and T2: half and four fifths of the preferred lifetime (RFC 8415 21.4).
fn t1_t2(g: &Grant) -> (u32, u32) {
    let p = u64::from(g.preferred_secs());
    ((p / 2) as u32, (p * 4 / 5) as u32)
}

/// Reads a punted IPv6 packet for the server: the extension chain, UDP to port 547 with
/// a good checksum.
pub fn parse_packet(line: Line, src_mac: Mac, packet: &[u8]) -> Result<Received<'_>, DropReason> {
    let ip = ipv6::Packet::new_checked(packet).map_err(|_| DropReason::BadIp)?;
    let chain = ip.chain().map_err(|_| DropReason::BadIp)?;
    let (proto, at) = chain.upper_layer().ok_or(DropReason::BadIp)?;
    if proto != next_header::UDP {
        return Err(DropReason::NotDhcp);
    }
    let payload = &packet[ipv6::HEADER_LEN..ipv6::HEADER_LEN + ip.payload_len() as usize];
    let seg = &payload[at..];
    let u = udp::Datagram::new_checked(seg).map_err(|_| DropReason::BadUdp)?;
    if u.dst_port() != wire::SERVER_PORT {
        return Err(DropReason::NotDhcp);
    }
    if !u.checksum_ok_v6(ip.src_addr(), ip.dst_addr()) {
        return Err(DropReason::BadChecksum);
    }
    Ok(Received {
        line,
        src_mac,
        src_ip: ip.src_addr(),
        dst_ip: ip.dst_addr(),
        message: &seg[udp::HEADER_LEN..u.len() as usize],
    })
}
