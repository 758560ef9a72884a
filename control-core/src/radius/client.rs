//! The RADIUS client, sans-I/O (in the manner of `quinn-proto`): requests go in with
//! [`Client::send`], datagrams come out of [`Client::poll_transmit`] and go back in
//! through [`Client::handle_datagram`]; timers are [`Client::poll_timeout`] /
//! [`Client::handle_timeout`]; outcomes are [`Client::poll_event`]. Time is passed in.
//!
//! Each server has its own 256 identifiers; a request beyond that waits in a queue, so
//! hundreds of requests in flight cost memory only. A request is retransmitted with the
//! same identifier and authenticator (the same bytes) every `timeout`, `retries` times;
//! then its server is held down for [`Options::hold_down`] and the request moves to the
//! next server, in configured order, that it has not tried and that is not held down
//! (re-encoded: new identifier, that server's secret). When none is left the request
//! fails. A server held down comes back when the hold-down ends or when it answers.
//!
//! Every request carries a Message-Authenticator. Replies are matched by (server
//! address, identifier), then their Response Authenticator and Message-Authenticator are
//! verified; a reply that fails is dropped and counted, and the request keeps waiting.

use std::collections::{BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use hashbrown::HashMap;
use tollgate_dataplane::time::Instant;

use super::crypto::{self, VerifyError};
use super::dict::std_attr;
use super::packet::{AUTHENTICATOR_LEN, Attribute, Code, EncodeError, Packet};
use crate::random::Random;

/// Names one request for the caller.
pub type RequestId = u64;

/// One RADIUS server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerConfig {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The shared secret.
    pub secret: Vec<u8>,
    /// How long to wait for a reply before retransmitting.
    pub timeout: Duration,
    /// Retransmissions before giving up on this server.
    pub retries: u32,
    /// Require a Message-Authenticator in Accounting-Response and CoA/Disconnect
    /// replies too. Access-Accept/Reject/Challenge always need one.
    pub require_message_authenticator: bool,
}

impl ServerConfig {
    /// A server with a 3 s timeout, 2 retries, Message-Authenticator required.
    pub fn new(addr: SocketAddr, secret: impl Into<Vec<u8>>) -> ServerConfig {
        ServerConfig {
            addr,
            secret: secret.into(),
            timeout: Duration::from_secs(3),
            retries: 2,
            require_message_authenticator: true,
        }
    }
}

/// Client-wide settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// How long a server that let a request time out is skipped. Zero never skips.
    pub hold_down: Duration,
    /// Requests that may wait for a free identifier; beyond, `send` fails them.
    pub max_queue: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            hold_down: Duration::from_secs(30),
            max_queue: 65_536,
        }
    }
}

/// Why a request failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FailReason {
    /// Every server it was sent to stayed silent, and no other server is up.
    #[error("no answer from {tried} server(s)")]
    Timeout {
        /// Servers tried.
        tried: usize,
    },
    /// Servers answered, but every answer was dropped (the last one's reason): a wrong
    /// shared secret, a missing Message-Authenticator, a reply of the wrong code.
    #[error("{tried} server(s) tried, {dropped} reply(ies) dropped, the last one: {reason}")]
    BadReplies {
        /// Servers tried.
        tried: usize,
        /// Replies dropped.
        dropped: u32,
        /// Why the last one was dropped.
        reason: DroppedReply,
    },
    /// It was never sent: every server is held down (or none is configured).
    #[error("no RADIUS server is up")]
    NoServerUp,
    /// The request cannot be encoded (too long, password too long).
    #[error("cannot encode: {0}")]
    Encode(#[from] EncodeError),
    /// The waiting queue is full.
    #[error("too many requests waiting")]
    QueueFull,
}

/// An Access-Accept with its Tunnel-Password values (RFC 2868 §3.5) decrypted in place:
/// each becomes its tag octet, then the password in clear (what
/// [`super::attrs::authorization`] reads as a tunnel's secret). One that does not decrypt
/// is removed: its tunnel then has the configured secret.
fn decrypt_tunnel_passwords(mut p: Packet, secret: &[u8], request_auth: &[u8; 16]) -> Packet {
    p.attributes.retain_mut(|a| {
        if a.key != std_attr::TUNNEL_PASSWORD {
            return true;
        }
        match crypto::decrypt_tunnel_password(&a.value, secret, request_auth) {
            Ok((tag, pw)) => {
                a.value = [&[tag][..], &pw].concat();
                true
            }
            Err(_) => false,
        }
    });
    p
}

/// Why a reply that matched a request in flight was not taken as its answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DroppedReply {
    /// It did not verify with the server's secret.
    #[error("{0}")]
    Verify(#[from] VerifyError),
    /// Its code does not answer the request's (e.g. an Accounting-Response to an
    /// Access-Request).
    #[error("a {got} does not answer a {sent}")]
    WrongCode {
        /// The request's code.
        sent: &'static str,
        /// The reply's code.
        got: &'static str,
    },
}

/// What happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientEvent {
    /// A verified reply.
    Reply {
        /// The request.
        id: RequestId,
        /// The server that answered.
        server: SocketAddr,
        /// The reply (an Access-Accept's Tunnel-Passwords decrypted: tag octet, then the
        /// password).
        packet: Packet,
    },
    /// The request is given up.
    Failed {
        /// The request.
        id: RequestId,
        /// Why.
        reason: FailReason,
    },
    /// A server let a request time out and is held down.
    ServerDown(SocketAddr),
    /// A server held down answered again.
    ServerUp(SocketAddr),
}

/// What the client counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClientStats {
    /// Requests accepted by `send`.
    pub requests: u64,
    /// Datagrams sent for the first time to a server.
    pub sent: u64,
    /// Retransmissions.
    pub retransmits: u64,
    /// Requests moved to another server.
    pub failovers: u64,
    /// Verified replies.
    pub replies: u64,
    /// Requests failed.
    pub failed: u64,
    /// Datagrams from an address that is not a configured server.
    pub unknown_source: u64,
    /// Replies matching no request in flight (late, duplicate).
    pub unmatched: u64,
    /// Replies that are not RADIUS.
    pub malformed: u64,
    /// Replies whose Response Authenticator is wrong.
    pub bad_authenticator: u64,
    /// Replies without a required Message-Authenticator.
    pub missing_message_authenticator: u64,
    /// Replies whose Message-Authenticator is wrong.
    pub bad_message_authenticator: u64,
    /// Replies whose code does not answer the request's.
    pub wrong_code: u64,
}

#[derive(Debug)]
struct Server {
    cfg: ServerConfig,
    slots: Box<[Option<RequestId>; 256]>,
    next_ident: u8,
    in_flight: usize,
    held_until: Option<Instant>,
}

impl Server {
    fn is_up(&self, now: Instant) -> bool {
        self.held_until.is_none_or(|t| now >= t)
    }

    fn allocate(&mut self, id: RequestId) -> Option<u8> {
        for _ in 0..256 {
            let i = self.next_ident;
            self.next_ident = self.next_ident.wrapping_add(1);
            if self.slots[i as usize].is_none() {
                self.slots[i as usize] = Some(id);
                self.in_flight += 1;
                return Some(i);
            }
        }
        None
    }

    fn free(&mut self, ident: u8) {
        if self.slots[ident as usize].take().is_some() {
            self.in_flight -= 1;
        }
    }
}

#[derive(Debug)]
struct InFlight {
    server: usize,
    ident: u8,
    authenticator: [u8; AUTHENTICATOR_LEN],
    bytes: Vec<u8>,
    attempts: u32,
    deadline: Instant,
}

#[derive(Debug)]
struct Pending {
    request: Packet,
    submitted: Instant,
    delay_base: Option<u32>,
    tried: Vec<bool>,
    flight: Option<InFlight>,
    /// Replies to it dropped so far, and why the last one was.
    dropped: u32,
    last_dropped: Option<DroppedReply>,
}

/// The RADIUS client.
#[derive(Debug)]
pub struct Client {
    servers: Vec<Server>,
    opts: Options,
    pending: HashMap<RequestId, Pending>,
    waiting: VecDeque<RequestId>,
    deadlines: BTreeSet<(Instant, RequestId)>,
    transmit: VecDeque<(SocketAddr, Vec<u8>)>,
    events: VecDeque<ClientEvent>,
    next_id: RequestId,
    stats: ClientStats,
    random: Random,
}

impl Client {
    /// A client for these servers, tried in this order, with default [`Options`];
    /// `random` gives the Request Authenticators of Access-Request and Status-Server.
    pub fn new(servers: Vec<ServerConfig>, random: Random) -> Client {
        Client::with_options(servers, Options::default(), random)
    }

    /// A client with explicit options.
    pub fn with_options(servers: Vec<ServerConfig>, opts: Options, random: Random) -> Client {
        Client {
            servers: servers
                .into_iter()
                .map(|cfg| Server {
                    cfg,
                    slots: Box::new([None; 256]),
                    next_ident: 0,
                    in_flight: 0,
                    held_until: None,
                })
                .collect(),
            opts,
            pending: HashMap::new(),
            waiting: VecDeque::new(),
            deadlines: BTreeSet::new(),
            transmit: VecDeque::new(),
            events: VecDeque::new(),
            next_id: 1,
            stats: ClientStats::default(),
            random,
        }
    }

    /// Queues a request (Access-, Accounting-, CoA-, Disconnect-Request or
    /// Status-Server); the client fills in the identifier, authenticator and
    /// Message-Authenticator, and hides User-Password. If the request has an
    /// Acct-Delay-Time, each server it goes to sees it grown by the time since `send`.
    pub fn send(&mut self, now: Instant, request: Packet) -> RequestId {
        let id = self.next_id;
        self.next_id += 1;
        self.stats.requests += 1;
        let delay_base = request
            .get(std_attr::ACCT_DELAY_TIME)
            .and_then(|a| a.as_u32().ok());
        self.pending.insert(
            id,
            Pending {
                request,
                submitted: now,
                delay_base,
                tried: vec![false; self.servers.len()],
                flight: None,
                dropped: 0,
                last_dropped: None,
            },
        );
        self.start(now, id);
        id
    }

    /// Forgets a request; a late reply to it is counted as unmatched.
    pub fn cancel(&mut self, now: Instant, id: RequestId) {
        if let Some(p) = self.pending.remove(&id) {
            if let Some(f) = p.flight {
                self.servers[f.server].free(f.ident);
                self.deadlines.remove(&(f.deadline, id));
            }
            self.waiting.retain(|w| *w != id);
            self.drain_waiting(now);
        }
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        self.transmit.pop_front()
    }

    /// The next outcome.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// When [`Self::handle_timeout`] next has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadlines.first().map(|(t, _)| *t)
    }

    /// Requests in flight (sent, unanswered) and waiting for an identifier.
    pub fn outstanding(&self) -> (usize, usize) {
        (self.pending.len() - self.waiting.len(), self.waiting.len())
    }

    /// What the client counted.
    pub fn stats(&self) -> ClientStats {
        self.stats
    }

    /// Each server and whether it is up at `now`.
    pub fn servers(&self, now: Instant) -> Vec<(SocketAddr, bool)> {
        self.servers
            .iter()
            .map(|s| (s.cfg.addr, s.is_up(now)))
            .collect()
    }

    /// Retransmits, fails over and fails what is due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(&(t, id)) = self.deadlines.first() {
            if t > now {
                break;
            }
            self.deadlines.remove(&(t, id));
            let Some(p) = self.pending.get_mut(&id) else {
                continue;
            };
            let Some(f) = p.flight.as_mut() else { continue };
            let server = &self.servers[f.server];
            if f.attempts <= server.cfg.retries {
                f.attempts += 1;
                f.deadline = now + server.cfg.timeout;
                self.deadlines.insert((f.deadline, id));
                self.transmit.push_back((server.cfg.addr, f.bytes.clone()));
                self.stats.retransmits += 1;
                continue;
            }
            // This server has had every try: hold it down and move on.
            let (si, ident) = (f.server, f.ident);
            p.flight = None;
            self.servers[si].free(ident);
            self.hold_down(now, si);
            self.stats.failovers += 1;
            self.start(now, id);
            self.drain_waiting(now);
        }
    }

    /// A datagram arrived from `from`.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        let Some(si) = self.servers.iter().position(|s| s.cfg.addr == from) else {
            self.stats.unknown_source += 1;
            return;
        };
        if bytes.len() < 20 {
            self.stats.malformed += 1;
            return;
        }
        let Some(id) = self.servers[si].slots[bytes[1] as usize] else {
            self.stats.unmatched += 1;
            return;
        };
        let Some(p) = self.pending.get(&id) else {
            self.stats.unmatched += 1;
            return;
        };
        let Some(f) = p.flight.as_ref().filter(|f| f.server == si) else {
            self.stats.unmatched += 1;
            return;
        };
        let cfg = &self.servers[si].cfg;
        let access = p.request.code == Code::AccessRequest;
        let require = access || cfg.require_message_authenticator;
        let sent = p.request.code;
        let reply = match crypto::verify_reply(bytes, &f.authenticator, &cfg.secret, require) {
            Ok(r) if r.code == Code::AccessAccept => {
                decrypt_tunnel_passwords(r, &cfg.secret, &f.authenticator)
            }
            Ok(r) => r,
            Err(e) => {
                match e {
                    VerifyError::Malformed(_) => self.stats.malformed += 1,
                    VerifyError::BadAuthenticator => self.stats.bad_authenticator += 1,
                    VerifyError::MissingMessageAuthenticator => {
                        self.stats.missing_message_authenticator += 1
                    }
                    VerifyError::BadMessageAuthenticator => {
                        self.stats.bad_message_authenticator += 1
                    }
                }
                self.dropped(id, from, sent, DroppedReply::Verify(e));
                return;
            }
        };
        if !sent.is_answered_by(reply.code) {
            self.stats.wrong_code += 1;
            let got = reply.code.name();
            let why = DroppedReply::WrongCode {
                sent: sent.name(),
                got,
            };
            self.dropped(id, from, sent, why);
            return;
        }
        let (ident, deadline) = (f.ident, f.deadline);
        self.pending.remove(&id);
        self.deadlines.remove(&(deadline, id));
        self.servers[si].free(ident);
        if self.servers[si].held_until.take().is_some() {
            self.events.push_back(ClientEvent::ServerUp(from));
        }
        self.stats.replies += 1;
        self.events.push_back(ClientEvent::Reply {
            id,
            server: from,
            packet: reply,
        });
        self.drain_waiting(now);
    }

    /// A reply to request `id` was dropped: said at WARN the first time for the request
    /// (later ones at DEBUG: a flood of forgeries does not flood the log), remembered
    /// for the failure's reason.
    fn dropped(&mut self, id: RequestId, from: SocketAddr, sent: Code, why: DroppedReply) {
        let Some(p) = self.pending.get_mut(&id) else {
            return;
        };
        p.dropped += 1;
        if p.dropped == 1 {
            tracing::warn!(server = %from, request = sent.name(), reason = %why, "RADIUS reply dropped");
        } else {
            tracing::debug!(server = %from, request = sent.name(), reason = %why, "RADIUS reply dropped");
        }
        p.last_dropped = Some(why);
    }

    fn hold_down(&mut self, now: Instant, si: usize) {
        if self.opts.hold_down.is_zero() {
            return;
        }
        let s = &mut self.servers[si];
        if s.is_up(now) {
            s.held_until = Some(now + self.opts.hold_down);
            tracing::warn!(server = %s.cfg.addr, hold_down_s = self.opts.hold_down.as_secs(), "RADIUS server not answering: held down");
            self.events.push_back(ClientEvent::ServerDown(s.cfg.addr));
        }
    }

    fn fail(&mut self, id: RequestId, reason: FailReason) {
        self.pending.remove(&id);
        self.stats.failed += 1;
        self.events.push_back(ClientEvent::Failed { id, reason });
    }

    /// Sends `id` to the first untried server that is up, or queues it for a free
    /// identifier, or fails it.
    fn start(&mut self, now: Instant, id: RequestId) {
        let Some(p) = self.pending.get(&id) else {
            return;
        };
        let choice = (0..self.servers.len()).find(|&i| !p.tried[i] && self.servers[i].is_up(now));
        let Some(si) = choice else {
            let tried = p.tried.iter().filter(|t| **t).count();
            let reason = match (&p.last_dropped, tried) {
                (_, 0) => FailReason::NoServerUp,
                (Some(why), _) => FailReason::BadReplies {
                    tried,
                    dropped: p.dropped,
                    reason: why.clone(),
                },
                (None, _) => FailReason::Timeout { tried },
            };
            self.fail(id, reason);
            return;
        };
        if self.servers[si].in_flight >= 256 {
            if self.waiting.len() >= self.opts.max_queue {
                self.fail(id, FailReason::QueueFull);
            } else {
                self.waiting.push_back(id);
            }
            return;
        }
        let authenticator = self.random.bytes16();
        let server = &mut self.servers[si];
        let Some(ident) = server.allocate(id) else {
            self.waiting.push_back(id);
            return;
        };
        let Some(p) = self.pending.get_mut(&id) else {
            return;
        };
        let mut packet = p.request.clone();
        packet.identifier = ident;
        packet.authenticator = authenticator;
        if let Some(base) = p.delay_base {
            let grown = base.saturating_add(now.since(p.submitted).as_secs() as u32);
            for a in &mut packet.attributes {
                if a.key == std_attr::ACCT_DELAY_TIME {
                    *a = Attribute::u32(std_attr::ACCT_DELAY_TIME, grown);
                }
            }
        }
        let bytes = match crypto::sign_request(&packet, &server.cfg.secret) {
            Ok(b) => b,
            Err(e) => {
                server.free(ident);
                self.fail(id, FailReason::Encode(e));
                return;
            }
        };
        // The authenticator the reply is computed over: random for Access-Request,
        // computed (and now in the header) for the others.
        let mut sent_auth = [0u8; AUTHENTICATOR_LEN];
        sent_auth.copy_from_slice(&bytes[4..20]);
        let deadline = now + server.cfg.timeout;
        self.transmit.push_back((server.cfg.addr, bytes.clone()));
        self.stats.sent += 1;
        p.tried[si] = true;
        p.flight = Some(InFlight {
            server: si,
            ident,
            authenticator: sent_auth,
            bytes,
            attempts: 1,
            deadline,
        });
        self.deadlines.insert((deadline, id));
    }

    fn drain_waiting(&mut self, now: Instant) {
        let mut rounds = self.waiting.len();
        while rounds > 0 {
            rounds -= 1;
            let Some(id) = self.waiting.pop_front() else {
                break;
            };
            let before = self.waiting.len();
            self.start(now, id);
            if self.waiting.len() > before {
                // Still no identifier free: keep the order and stop for now.
                if let Some(back) = self.waiting.pop_back() {
                    self.waiting.push_front(back);
                }
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::radius::crypto::{sign_reply, unhide_password, verify_request};

    const SECRET: &[u8] = b"s3cret";

    fn rng() -> Random {
        Random::new(&crate::random::Seed::fixed([5; 32]))
    }

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn server(port: u16) -> ServerConfig {
        ServerConfig {
            timeout: Duration::from_secs(1),
            retries: 2,
            ..ServerConfig::new(addr(port), SECRET)
        }
    }

    fn access(user: &str) -> Packet {
        let mut p = Packet::new(Code::AccessRequest, 0);
        p.push(Attribute::text(std_attr::USER_NAME, user));
        p.push(Attribute::text(std_attr::USER_PASSWORD, "pw"));
        p
    }

    /// A server's answer to a request datagram, signed with `secret`.
    fn answer(bytes: &[u8], code: Code, secret: &[u8]) -> Vec<u8> {
        let req = verify_request(bytes, SECRET, true).unwrap();
        let mut r = Packet::new(code, req.identifier);
        r.push(Attribute::u32(std_attr::SESSION_TIMEOUT, 60));
        sign_reply(&r, &req.authenticator, secret).unwrap()
    }

    fn t(ms: u64) -> Instant {
        Instant(1_000_000_000 + ms * 1_000_000)
    }

    /// An Access-Accept's Tunnel-Passwords come out decrypted with the secret and the
    /// request's authenticator (tag, then the password); one that does not decrypt is
    /// removed; an Access-Reject's are left alone.
    #[test]
    fn tunnel_passwords_are_decrypted() {
        use crate::radius::crypto::encrypt_tunnel_password;
        let mut c = Client::new(vec![server(1812)], rng());
        let id = c.send(t(0), access("alice@isp.example"));
        let (_, bytes) = c.poll_transmit().unwrap();
        let req = verify_request(&bytes, SECRET, true).unwrap();
        let enc = |tag, pw: &[u8], auth: &[u8; 16]| {
            encrypt_tunnel_password(tag, pw, [0x31, 0x07], SECRET, auth).unwrap()
        };
        let mut r = Packet::new(Code::AccessAccept, req.identifier);
        r.push(Attribute::octets(
            std_attr::TUNNEL_PASSWORD,
            enc(1, b"lns-1 secret", &req.authenticator),
        ));
        // Encrypted for another request: its length octet is garbage, or (1 in 16) a
        // wrong password; here the fixed salt makes it garbage.
        r.push(Attribute::octets(
            std_attr::TUNNEL_PASSWORD,
            enc(2, b"x", &[0xee; 16]),
        ));
        let reply = sign_reply(&r, &req.authenticator, SECRET).unwrap();
        c.handle_datagram(t(1), addr(1812), &reply);
        let Some(ClientEvent::Reply {
            id: got, packet, ..
        }) = c.poll_event()
        else {
            panic!("no reply")
        };
        assert_eq!(got, id);
        let pws: Vec<&[u8]> = packet
            .attributes
            .iter()
            .filter(|a| a.key == std_attr::TUNNEL_PASSWORD)
            .map(|a| &a.value[..])
            .collect();
        assert_eq!(pws, vec![&b"\x01lns-1 secret"[..]]);
    }

    #[test]
    fn request_and_verified_reply() {
        let mut c = Client::new(vec![server(1812)], rng());
        let id = c.send(t(0), access("alice"));
        let (to, bytes) = c.poll_transmit().unwrap();
        assert_eq!(to, addr(1812));
        let req = verify_request(&bytes, SECRET, true).unwrap();
        let pw = &req.get(std_attr::USER_PASSWORD).unwrap().value;
        assert_eq!(
            unhide_password(pw, SECRET, &req.authenticator).unwrap(),
            b"pw"
        );
        c.handle_datagram(
            t(5),
            addr(1812),
            &answer(&bytes, Code::AccessAccept, SECRET),
        );
        match c.poll_event() {
            Some(ClientEvent::Reply {
                id: got, packet, ..
            }) => {
                assert_eq!(got, id);
                assert_eq!(packet.code, Code::AccessAccept);
            }
            e => panic!("{e:?}"),
        }
        assert_eq!(c.poll_timeout(), None);
        assert_eq!(c.outstanding(), (0, 0));
    }

    /// Issue 12 item 13: Request Authenticators are the CSPRNG's output (ChaCha20 keyed
    /// with 32 bytes from the OS in the daemon); there is no clock-and-counter fallback.
    #[test]
    fn request_authenticators_come_from_the_csprng() {
        let mut c = Client::new(vec![server(1812)], rng());
        let mut expect = rng();
        for user in ["a", "b", "c"] {
            c.send(t(0), access(user));
            let (_, bytes) = c.poll_transmit().unwrap();
            assert_eq!(bytes[4..20], expect.bytes16(), "{user}");
        }
    }

    /// Issue 12 item 14: a request whose every reply was dropped fails with the reason
    /// (not "no answer"), so the login refusal says what is wrong.
    #[test]
    fn a_request_answered_only_with_bad_replies_fails_with_the_reason() {
        let mut c = Client::new(vec![server(1812)], rng());
        let id = c.send(t(0), access("bob"));
        let mut now = 0;
        let mut sent = 0;
        let reason = loop {
            while let Some((_, bytes)) = c.poll_transmit() {
                sent += 1;
                // Every copy is answered, with the wrong secret.
                let r = answer(&bytes, Code::AccessAccept, b"not-the-secret");
                c.handle_datagram(t(now), addr(1812), &r);
            }
            if let Some(e) = c.poll_event() {
                match e {
                    ClientEvent::Failed { id: i, reason } if i == id => break reason,
                    ClientEvent::ServerDown(_) => continue,
                    e => panic!("{e:?}"),
                }
            }
            now += 1000;
            c.handle_timeout(t(now));
            assert!(now < 60_000, "never failed");
        };
        assert_eq!(sent, 3, "the first try and 2 retries");
        assert_eq!(
            reason,
            FailReason::BadReplies {
                tried: 1,
                dropped: 3,
                reason: DroppedReply::Verify(VerifyError::BadAuthenticator),
            }
        );
        assert_eq!(
            reason.to_string(),
            "1 server(s) tried, 3 reply(ies) dropped, the last one: authenticator does not match (wrong secret?)"
        );
        assert_eq!(c.stats().bad_authenticator, 3);
        // Silence is still "no answer".
        let mut c = Client::new(vec![server(1812)], rng());
        let id = c.send(t(0), access("bob"));
        let mut now = 0;
        let reason = loop {
            while c.poll_transmit().is_some() {}
            if let Some(ClientEvent::Failed { id: i, reason }) = c.poll_event() {
                assert_eq!(i, id);
                break reason;
            }
            now += 1000;
            c.handle_timeout(t(now));
            assert!(now < 60_000, "never failed");
        };
        assert_eq!(reason.to_string(), "no answer from 1 server(s)");
    }

    #[test]
    fn bad_replies_are_dropped_and_counted() {
        let mut c = Client::new(vec![server(1812)], rng());
        let id = c.send(t(0), access("bob"));
        let (_, bytes) = c.poll_transmit().unwrap();
        // Wrong secret.
        c.handle_datagram(
            t(1),
            addr(1812),
            &answer(&bytes, Code::AccessAccept, b"other"),
        );
        // From an address that is not the server.
        c.handle_datagram(
            t(1),
            addr(9999),
            &answer(&bytes, Code::AccessAccept, SECRET),
        );
        // No Message-Authenticator (signed the RFC 2865 way only).
        let req = Packet::decode(&bytes).unwrap();
        let mut r = Packet::new(Code::AccessAccept, req.identifier)
            .encode()
            .unwrap();
        r[4..20].copy_from_slice(&req.authenticator);
        let auth: [u8; 16] = {
            use md5::Digest;
            let mut h = md5::Md5::new();
            h.update(&r);
            h.update(SECRET);
            h.finalize().into()
        };
        r[4..20].copy_from_slice(&auth);
        c.handle_datagram(t(1), addr(1812), &r);
        // Garbage.
        c.handle_datagram(t(1), addr(1812), &[1, 2, 3]);
        // An answer of the wrong kind.
        c.handle_datagram(t(1), addr(1812), &answer(&bytes, Code::CoaAck, SECRET));
        let s = c.stats();
        assert_eq!(s.bad_authenticator, 1);
        assert_eq!(s.unknown_source, 1);
        assert_eq!(s.missing_message_authenticator, 1);
        assert_eq!(s.malformed, 1);
        assert_eq!(s.wrong_code, 1);
        assert!(c.poll_event().is_none());
        // The request still waits, and the real answer still works.
        c.handle_datagram(
            t(2),
            addr(1812),
            &answer(&bytes, Code::AccessReject, SECRET),
        );
        assert!(matches!(c.poll_event(), Some(ClientEvent::Reply { id: i, .. }) if i == id));
        // A duplicate is unmatched.
        c.handle_datagram(
            t(2),
            addr(1812),
            &answer(&bytes, Code::AccessReject, SECRET),
        );
        assert_eq!(c.stats().unmatched, 1);
    }

    #[test]
    fn retransmits_same_bytes_then_fails_over() {
        let mut c = Client::new(vec![server(1), server(2)], rng());
        let id = c.send(t(0), access("carol"));
        let (_, first) = c.poll_transmit().unwrap();
        assert_eq!(c.poll_timeout(), Some(t(1000)));
        c.handle_timeout(t(1000));
        let (to, again) = c.poll_transmit().unwrap();
        assert_eq!(
            (to, &again),
            (addr(1), &first),
            "same identifier and authenticator"
        );
        c.handle_timeout(t(2000));
        assert_eq!(c.poll_transmit().unwrap().1, first);
        c.handle_timeout(t(3000));
        // Retries exhausted: server 1 held down, the request goes to server 2.
        assert_eq!(c.poll_event(), Some(ClientEvent::ServerDown(addr(1))));
        let (to, moved) = c.poll_transmit().unwrap();
        assert_eq!(to, addr(2));
        assert_ne!(moved[4..20], first[4..20]);
        c.handle_datagram(
            t(3100),
            addr(2),
            &answer(&moved, Code::AccessAccept, SECRET),
        );
        assert!(
            matches!(c.poll_event(), Some(ClientEvent::Reply { id: i, server, .. }) if i == id && server == addr(2))
        );
        let s = c.stats();
        assert_eq!((s.retransmits, s.failovers, s.sent), (2, 1, 2));
        // While server 1 is held down, new requests go straight to server 2.
        c.send(t(4000), access("dave"));
        assert_eq!(c.poll_transmit().unwrap().0, addr(2));
        // After the hold-down, server 1 is first again.
        c.send(t(3000 + 30_000), access("erin"));
        assert_eq!(c.poll_transmit().unwrap().0, addr(1));
    }

    #[test]
    fn all_servers_silent_fails_then_no_server_up() {
        let mut c = Client::new(vec![server(1), server(2)], rng());
        let id = c.send(t(0), access("x"));
        let mut now = 0;
        while let Some(d) = c.poll_timeout() {
            now = (d.0 - t(0).0) / 1_000_000;
            c.handle_timeout(d);
        }
        assert_eq!(now, 6000, "3 tries of 1 s on each of 2 servers");
        let evs: Vec<_> = std::iter::from_fn(|| c.poll_event()).collect();
        assert!(evs.contains(&ClientEvent::Failed {
            id,
            reason: FailReason::Timeout { tried: 2 }
        }));
        let id2 = c.send(t(6001), access("y"));
        assert_eq!(
            c.poll_event(),
            Some(ClientEvent::Failed {
                id: id2,
                reason: FailReason::NoServerUp
            })
        );
    }

    #[test]
    fn a_late_answer_from_a_held_down_server_brings_it_back() {
        let opts = Options {
            hold_down: Duration::from_secs(60),
            ..Options::default()
        };
        let mut c = Client::with_options(vec![server(1), server(2)], opts, rng());
        c.send(t(0), access("a"));
        let (_, a) = c.poll_transmit().unwrap();
        for s in 1..=3 {
            c.handle_timeout(t(s * 1000));
        }
        while c.poll_transmit().is_some() {}
        assert_eq!(c.servers(t(3000)), vec![(addr(1), false), (addr(2), true)]);
        // Another request to server 1 cannot happen now; but suppose server 2 also
        // fails and a reply to the first request arrives late from server 1: unmatched.
        c.handle_datagram(t(3500), addr(1), &answer(&a, Code::AccessAccept, SECRET));
        assert_eq!(c.stats().unmatched, 1);
    }

    #[test]
    fn identifiers_run_out_and_requests_queue() {
        let mut c = Client::new(vec![server(1)], rng());
        let ids: Vec<_> = (0..300)
            .map(|i| c.send(t(0), access(&format!("u{i}"))))
            .collect();
        assert_eq!(c.outstanding(), (256, 44));
        let mut sent = Vec::new();
        while let Some((_, b)) = c.poll_transmit() {
            sent.push(b);
        }
        assert_eq!(sent.len(), 256);
        let idents: std::collections::HashSet<u8> = sent.iter().map(|b| b[1]).collect();
        assert_eq!(idents.len(), 256);
        // Answer the first 100: 44 queued ones go out.
        for b in &sent[..100] {
            c.handle_datagram(t(10), addr(1), &answer(b, Code::AccessAccept, SECRET));
        }
        let more: Vec<_> = std::iter::from_fn(|| c.poll_transmit()).collect();
        assert_eq!(more.len(), 44);
        assert_eq!(c.outstanding(), (200, 0));
        for (_, b) in more.iter().chain(
            sent[100..]
                .iter()
                .map(|b| (addr(1), b.clone()))
                .collect::<Vec<_>>()
                .iter(),
        ) {
            c.handle_datagram(t(20), addr(1), &answer(b, Code::AccessAccept, SECRET));
        }
        let replied: std::collections::HashSet<_> = std::iter::from_fn(|| c.poll_event())
            .filter_map(|e| match e {
                ClientEvent::Reply { id, .. } => Some(id),
                _ => None,
            })
            .collect();
        assert_eq!(replied, ids.into_iter().collect());
    }

    #[test]
    fn accounting_delay_grows_on_failover_only() {
        let mut c = Client::new(vec![server(1), server(2)], rng());
        let mut p = Packet::new(Code::AccountingRequest, 0);
        p.push(Attribute::u32(std_attr::ACCT_STATUS_TYPE, 1));
        p.push(Attribute::u32(std_attr::ACCT_DELAY_TIME, 7));
        c.send(t(0), p);
        let (_, b1) = c.poll_transmit().unwrap();
        let d = |b: &[u8]| {
            Packet::decode(b)
                .unwrap()
                .get(std_attr::ACCT_DELAY_TIME)
                .unwrap()
                .as_u32()
                .unwrap()
        };
        assert_eq!(d(&b1), 7);
        for s in 1..=3 {
            c.handle_timeout(t(s * 1000));
        }
        let all: Vec<_> = std::iter::from_fn(|| c.poll_transmit()).collect();
        let (to, b2) = all.last().unwrap();
        assert_eq!(*to, addr(2));
        assert_eq!(d(b2), 10);
        assert!(verify_request(b2, SECRET, true).is_ok());
    }

    #[test]
    fn cancel_frees_the_identifier() {
        let mut c = Client::new(vec![server(1)], rng());
        let id = c.send(t(0), access("a"));
        c.cancel(t(1), id);
        assert_eq!(c.outstanding(), (0, 0));
        assert_eq!(c.poll_timeout(), None);
    }
}
