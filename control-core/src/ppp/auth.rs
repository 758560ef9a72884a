//! The authenticator side of PAP (RFC 1334) and CHAP-MD5 (RFC 1994). The engine never
//! decides: it hands the peer's credentials to the caller ([`AuthRequest`], through
//! [`super::Event::Authenticate`]) and answers the peer when the caller's decision comes
//! back ([`super::Session::accept`] / [`super::Session::reject`]).
//!
//! CHAP: a Challenge of `challenge_len` random bytes with a fresh Identifier, resent every
//! restart interval (same Identifier and value) up to Max-Configure times while no
//! Response comes. PAP: waits for the peer's Authenticate-Request. Both: the whole phase
//! (decision included) is bounded by `auth_timeout`; a retransmitted request or response
//! after the decision gets the same answer again (the peer lost ours); after a rejection
//! the peer may try again while `auth_attempts` lasts (CHAP sends a new challenge).

use super::proxy::{ProxyAuth, ProxyAuthType};
use super::wire::{chap, pap};
use super::{AuthMethod, Config, DropReason, Transmit};
use crate::entropy::Entropy;
use crate::time::Instant;

/// The credentials a peer presented.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// No authentication was negotiated: the caller decides by line or MAC.
    None,
    /// PAP: the password in clear.
    Pap {
        /// The password.
        password: Vec<u8>,
    },
    /// CHAP-MD5: check `response == MD5(id || secret || challenge)`
    /// ([`Credentials::verify_chap`]), or send CHAP-Password / CHAP-Challenge to RADIUS.
    Chap {
        /// The Identifier of the challenge.
        id: u8,
        /// The challenge value.
        challenge: Vec<u8>,
        /// The peer's response value.
        response: Vec<u8>,
    },
}

impl Credentials {
    /// For CHAP credentials, whether the response is right for `secret`; false otherwise.
    pub fn verify_chap(&self, secret: &[u8]) -> bool {
        match self {
            Credentials::Chap {
                id,
                challenge,
                response,
            } => chap::verify_md5(*id, secret, challenge, response),
            _ => false,
        }
    }
}

impl core::fmt::Debug for Credentials {
    /// Never prints a password or response.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Credentials::None => f.write_str("None"),
            Credentials::Pap { .. } => f.write_str("Pap { password: <redacted> }"),
            Credentials::Chap { id, challenge, .. } => write!(
                f,
                "Chap {{ id: {id}, challenge_len: {}, response: <redacted> }}",
                challenge.len()
            ),
        }
    }
}

/// What the engine asks the caller to decide.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthRequest {
    /// The method negotiated (`None` when LCP negotiated no authentication).
    pub method: Option<AuthMethod>,
    /// The PAP Peer-ID or CHAP Name, as the peer sent it.
    pub user: Vec<u8>,
    /// The credentials.
    pub credentials: Credentials,
    /// Whether they came from an L2TP LAC's proxy authentication AVPs.
    pub proxied: bool,
}

impl AuthRequest {
    /// The user name as text (invalid UTF-8 replaced).
    pub fn user_lossy(&self) -> String {
        String::from_utf8_lossy(&self.user).into_owned()
    }
}

/// Where authentication stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AuthStatus {
    /// LCP not opened yet.
    NotStarted,
    /// Waiting for the peer's request (PAP) or response (CHAP).
    WaitingForPeer,
    /// The caller is deciding.
    Pending,
    /// The caller accepted.
    Accepted,
    /// The caller rejected (the link is closing, or the peer may retry).
    Rejected,
}

impl AuthStatus {
    /// The name `ctl show session` prints.
    pub fn name(self) -> &'static str {
        match self {
            AuthStatus::NotStarted => "not-started",
            AuthStatus::WaitingForPeer => "waiting",
            AuthStatus::Pending => "pending",
            AuthStatus::Accepted => "accepted",
            AuthStatus::Rejected => "rejected",
        }
    }
}

/// The outcome of a timeout or a rejection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AuthEnd {
    /// No answer in time (retries or `auth_timeout` exhausted).
    Timeout,
    /// Rejected with no attempt left.
    Failed,
}

/// The authenticator.
#[derive(Debug)]
pub(crate) struct Authenticator {
    pub method: Option<AuthMethod>,
    pub status: AuthStatus,
    pub user: Vec<u8>,
    id: u8,
    challenge: Vec<u8>,
    retransmit_at: Option<Instant>,
    retries_left: u32,
    deadline: Option<Instant>,
    attempts_left: u32,
    reply: Vec<u8>,
    /// The exchange as a LAC forwards it (set when a request/response arrives).
    pub exchange: Option<ProxyAuth>,
    pub proxied: bool,
}

impl Authenticator {
    pub(crate) fn new(cfg: &Config) -> Authenticator {
        Authenticator {
            method: None,
            status: AuthStatus::NotStarted,
            user: Vec::new(),
            id: 0,
            challenge: Vec::new(),
            retransmit_at: None,
            retries_left: 0,
            deadline: None,
            attempts_left: cfg.auth_attempts.max(1),
            reply: Vec::new(),
            exchange: None,
            proxied: false,
        }
    }

    /// LCP opened with `method`: challenge (CHAP) or wait (PAP). With no method, the
    /// request goes straight to the caller.
    pub(crate) fn start(
        &mut self,
        now: Instant,
        method: Option<AuthMethod>,
        cfg: &Config,
        rng: &mut dyn Entropy,
        out: &mut Vec<Transmit>,
    ) -> Option<AuthRequest> {
        self.method = method;
        self.deadline = Some(now + cfg.auth_timeout);
        match method {
            None => {
                self.status = AuthStatus::Pending;
                Some(AuthRequest {
                    method: None,
                    user: Vec::new(),
                    credentials: Credentials::None,
                    proxied: false,
                })
            }
            Some(AuthMethod::Pap) => {
                self.status = AuthStatus::WaitingForPeer;
                None
            }
            Some(AuthMethod::Chap) => {
                self.id = rng.next_u8();
                self.challenge(now, cfg, rng, out);
                None
            }
        }
    }

    /// Credentials from an LNS's proxy authentication, if they fit the method LCP
    /// negotiated (CHAP with a challenge and response, or PAP).
    pub(crate) fn start_proxied(
        &mut self,
        now: Instant,
        method: Option<AuthMethod>,
        proxy: &ProxyAuth,
        cfg: &Config,
    ) -> Option<AuthRequest> {
        let credentials = match (method, proxy.kind) {
            (Some(AuthMethod::Chap), ProxyAuthType::Chap)
                if !proxy.challenge.is_empty() && !proxy.response.is_empty() =>
            {
                Credentials::Chap {
                    id: proxy.id,
                    challenge: proxy.challenge.clone(),
                    response: proxy.response.clone(),
                }
            }
            (Some(AuthMethod::Pap), ProxyAuthType::Pap) => Credentials::Pap {
                password: proxy.response.clone(),
            },
            _ => return None,
        };
        self.method = method;
        self.deadline = Some(now + cfg.auth_timeout);
        self.status = AuthStatus::Pending;
        self.id = proxy.id;
        self.challenge = proxy.challenge.clone();
        self.user = proxy.name.clone();
        self.proxied = true;
        self.exchange = Some(proxy.clone());
        Some(AuthRequest {
            method,
            user: proxy.name.clone(),
            credentials,
            proxied: true,
        })
    }

    fn challenge(
        &mut self,
        now: Instant,
        cfg: &Config,
        rng: &mut dyn Entropy,
        out: &mut Vec<Transmit>,
    ) {
        self.id = self.id.wrapping_add(1);
        self.challenge = vec![0u8; cfg.challenge_len.clamp(8, 64)];
        rng.fill(&mut self.challenge);
        self.status = AuthStatus::WaitingForPeer;
        self.retries_left = cfg.limits.max_configure.saturating_sub(1);
        self.retransmit_at = Some(now + cfg.limits.restart);
        self.send_challenge(cfg, out);
    }

    fn send_challenge(&self, cfg: &Config, out: &mut Vec<Transmit>) {
        out.push(Transmit {
            protocol: AuthMethod::Chap.protocol(),
            packet: chap::challenge_or_response(
                chap::CHALLENGE,
                self.id,
                &self.challenge,
                &cfg.host_name,
            ),
        });
    }

    /// A PAP packet from the peer.
    pub(crate) fn input_pap(
        &mut self,
        p: &pap::PapPacket<&[u8]>,
        out: &mut Vec<Transmit>,
    ) -> Result<Option<AuthRequest>, DropReason> {
        if self.method != Some(AuthMethod::Pap) || p.code() != pap::REQUEST {
            return Err(DropReason::UnexpectedAuth);
        }
        self.id = p.identifier();
        match self.status {
            AuthStatus::WaitingForPeer => {
                self.status = AuthStatus::Pending;
                self.user = p.peer_id().to_vec();
                self.exchange = Some(ProxyAuth {
                    kind: ProxyAuthType::Pap,
                    name: p.peer_id().to_vec(),
                    challenge: Vec::new(),
                    id: p.identifier(),
                    response: p.password().to_vec(),
                });
                Ok(Some(AuthRequest {
                    method: self.method,
                    user: p.peer_id().to_vec(),
                    credentials: Credentials::Pap {
                        password: p.password().to_vec(),
                    },
                    proxied: false,
                }))
            }
            AuthStatus::Accepted => {
                out.push(pap_reply(pap::ACK, self.id, &self.reply));
                Ok(None)
            }
            _ => Err(DropReason::Retransmission),
        }
    }

    /// A CHAP packet from the peer.
    pub(crate) fn input_chap(
        &mut self,
        p: &chap::ChapPacket<&[u8]>,
        out: &mut Vec<Transmit>,
    ) -> Result<Option<AuthRequest>, DropReason> {
        if self.method != Some(AuthMethod::Chap) || p.code() != chap::RESPONSE {
            return Err(DropReason::UnexpectedAuth);
        }
        if p.identifier() != self.id {
            return Err(DropReason::BadIdentifier);
        }
        match self.status {
            AuthStatus::WaitingForPeer => {
                self.status = AuthStatus::Pending;
                self.retransmit_at = None;
                self.user = p.name().to_vec();
                self.exchange = Some(ProxyAuth {
                    kind: ProxyAuthType::Chap,
                    name: p.name().to_vec(),
                    challenge: self.challenge.clone(),
                    id: self.id,
                    response: p.value().to_vec(),
                });
                Ok(Some(AuthRequest {
                    method: self.method,
                    user: p.name().to_vec(),
                    credentials: Credentials::Chap {
                        id: self.id,
                        challenge: self.challenge.clone(),
                        response: p.value().to_vec(),
                    },
                    proxied: false,
                }))
            }
            AuthStatus::Accepted => {
                out.push(chap_reply(chap::SUCCESS, self.id, &self.reply));
                Ok(None)
            }
            _ => Err(DropReason::Retransmission),
        }
    }

    /// The caller accepted: Authenticate-Ack / Success.
    pub(crate) fn accept(&mut self, message: &[u8], out: &mut Vec<Transmit>) {
        self.status = AuthStatus::Accepted;
        self.deadline = None;
        self.retransmit_at = None;
        self.reply = message.to_vec();
        match self.method {
            Some(AuthMethod::Pap) => out.push(pap_reply(pap::ACK, self.id, message)),
            Some(AuthMethod::Chap) => out.push(chap_reply(chap::SUCCESS, self.id, message)),
            None => {}
        }
    }

    /// The caller rejected: Authenticate-Nak / Failure, then either another attempt or
    /// the end.
    pub(crate) fn reject(
        &mut self,
        now: Instant,
        message: &[u8],
        cfg: &Config,
        rng: &mut dyn Entropy,
        out: &mut Vec<Transmit>,
    ) -> Option<AuthEnd> {
        match self.method {
            Some(AuthMethod::Pap) => out.push(pap_reply(pap::NAK, self.id, message)),
            Some(AuthMethod::Chap) => out.push(chap_reply(chap::FAILURE, self.id, message)),
            None => {}
        }
        self.attempts_left = self.attempts_left.saturating_sub(1);
        self.status = AuthStatus::Rejected;
        if self.attempts_left == 0 || self.proxied || self.method.is_none() {
            self.deadline = None;
            return Some(AuthEnd::Failed);
        }
        match self.method {
            Some(AuthMethod::Chap) => self.challenge(now, cfg, rng, out),
            _ => self.status = AuthStatus::WaitingForPeer,
        }
        None
    }

    /// Retransmits the challenge, or ends the phase when time is up.
    pub(crate) fn handle_timeout(
        &mut self,
        now: Instant,
        cfg: &Config,
        out: &mut Vec<Transmit>,
    ) -> Option<AuthEnd> {
        if let Some(d) = self.deadline
            && d <= now
        {
            self.deadline = None;
            self.retransmit_at = None;
            return Some(AuthEnd::Timeout);
        }
        if let Some(t) = self.retransmit_at
            && t <= now
        {
            if self.retries_left == 0 {
                self.retransmit_at = None;
                return Some(AuthEnd::Timeout);
            }
            self.retries_left -= 1;
            self.retransmit_at = Some(now + cfg.limits.restart);
            self.send_challenge(cfg, out);
        }
        None
    }

    /// The next deadline.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        [self.deadline, self.retransmit_at]
            .into_iter()
            .flatten()
            .min()
    }
}

fn pap_reply(code: u8, id: u8, message: &[u8]) -> Transmit {
    Transmit {
        protocol: AuthMethod::Pap.protocol(),
        packet: pap::reply(code, id, message),
    }
}

fn chap_reply(code: u8, id: u8, message: &[u8]) -> Transmit {
    Transmit {
        protocol: AuthMethod::Chap.protocol(),
        packet: chap::result(code, id, message),
    }
}
