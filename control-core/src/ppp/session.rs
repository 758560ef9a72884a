//! One PPP link, from LCP to the NCPs: the phases of RFC 1661 section 3.2 around the
//! automata of LCP, IPCP and IPv6CP and the authenticator, plus echo keepalive,
//! Protocol-Reject and the L2TP proxy hooks.

use std::collections::VecDeque;
use std::sync::Arc;

use core::net::Ipv4Addr;

use super::auth::{AuthEnd, AuthStatus, Authenticator};
use super::cp::{Cp, Negotiator, Outcome, Verdict};
use super::fsm::{Action, Event as FsmEvent, State};
use super::lcp::{DEFAULT_MRU, Lcp};
use super::ncp::{InterfaceId, Ipcp, Ipv6cp};
use super::proxy::{ProxyAuth, ProxyLcp, ProxyRecord};
use super::wire::{self, Packet, chap, code, pap, protocol};
use super::{AuthMethod, Config, DropReason, EndCause, Event, Grant, Phase, Transmit};
use crate::entropy::Entropy;
use crate::time::Instant;

/// Why a decision or hand-off was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecisionError {
    /// No credentials are waiting for a decision (already decided, timed out, or never
    /// asked).
    #[error("no authentication is pending on this session")]
    NotPending,
    /// The session has finished or was handed off.
    #[error("the session has ended")]
    Ended,
}

/// Whether an LNS used the LAC's proxy LCP.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProxyLcpUse {
    /// Not an L2TP session with proxy LCP.
    NotOffered,
    /// Accepted: LCP started Opened with the LAC's values.
    Accepted,
    /// Not acceptable: LCP renegotiated with the client.
    Renegotiated,
}

impl ProxyLcpUse {
    /// The name `ctl` shows.
    pub fn name(self) -> &'static str {
        match self {
            ProxyLcpUse::NotOffered => "none",
            ProxyLcpUse::Accepted => "accepted",
            ProxyLcpUse::Renegotiated => "renegotiated",
        }
    }
}

#[derive(Debug, Default)]
struct Echo {
    next_at: Option<Instant>,
    outstanding: u32,
}

/// One PPP link's engine (see the module docs of [`super`]).
#[derive(Debug)]
pub struct Session {
    cfg: Arc<Config>,
    phase: Phase,
    lcp: Cp<Lcp>,
    auth: Authenticator,
    grant: Option<Grant>,
    ipcp: Option<Cp<Ipcp>>,
    ipv6cp: Option<Cp<Ipv6cp>>,
    ipv4_up: bool,
    ipv6_up: bool,
    /// The peer sent a Configure-Request for IPCP, IPv6CP: the NCPs it asked for.
    peer_asked: [bool; 2],
    echo: Echo,
    cause: Option<EndCause>,
    out: Vec<Transmit>,
    events: VecDeque<Event>,
    drops: [u64; DropReason::COUNT],
    rx: u64,
    tx: u64,
    proxy_lcp: ProxyLcpUse,
}

/// A snapshot of a session's negotiation state, for `ctl show session`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    /// The phase.
    pub phase: Phase,
    /// LCP's automaton state.
    pub lcp: State,
    /// The authentication method negotiated (or offered, before LCP opened).
    pub auth_method: Option<AuthMethod>,
    /// Where authentication stands.
    pub auth: AuthStatus,
    /// The user name presented (lossy UTF-8), empty before.
    pub user: String,
    /// IPCP's state (`None` before the network phase).
    pub ipcp: Option<State>,
    /// IPv6CP's state (`None` before the network phase or when disabled).
    pub ipv6cp: Option<State>,
    /// Whether IPv6CP is enabled at all.
    pub ipv6cp_enabled: bool,
    /// The peer's granted address, once IPCP is open.
    pub address: Option<Ipv4Addr>,
    /// The peer's MRU and ours.
    pub mru: (u16, u16),
    /// Our Magic-Number and the peer's.
    pub magic: (u32, u32),
    /// Echo-Requests unanswered, and the limit.
    pub echo: (u32, u32),
    /// Whether proxy LCP was used.
    pub proxy_lcp: ProxyLcpUse,
    /// Why it ended, once it did.
    pub cause: Option<EndCause>,
    /// Control packets received and sent.
    pub packets: (u64, u64),
}

impl core::fmt::Display for Summary {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "phase={} lcp={}", self.phase.name(), self.lcp)?;
        match self.auth_method {
            Some(m) => write!(f, " auth={}/{}", m.name(), self.auth.name())?,
            None => write!(f, " auth=none/{}", self.auth.name())?,
        }
        if !self.user.is_empty() {
            write!(f, " user={}", self.user.escape_debug())?;
        }
        match self.ipcp {
            Some(s) => write!(f, " ipcp={s}")?,
            None => write!(f, " ipcp=-")?,
        }
        match (self.ipv6cp_enabled, self.ipv6cp) {
            (false, _) => write!(f, " ipv6cp=rejected")?,
            (true, Some(s)) => write!(f, " ipv6cp={s}")?,
            (true, None) => write!(f, " ipv6cp=-")?,
        }
        if let Some(a) = self.address {
            write!(f, " address={a}")?;
        }
        write!(
            f,
            " mru={}/{} echo={}/{}",
            self.mru.0, self.mru.1, self.echo.0, self.echo.1
        )?;
        if self.proxy_lcp != ProxyLcpUse::NotOffered {
            write!(f, " proxy_lcp={}", self.proxy_lcp.name())?;
        }
        if let Some(c) = &self.cause {
            write!(f, " cause={}", c.name())?;
        }
        Ok(())
    }
}

fn alive(s: State) -> bool {
    matches!(
        s,
        State::ReqSent | State::AckRcvd | State::AckSent | State::Opened
    )
}

impl Session {
    fn idle(cfg: Arc<Config>, rng: &mut dyn Entropy) -> Session {
        let lcp = Lcp::new(cfg.mru, cfg.auth.clone(), rng);
        let first_id = rng.next_u8();
        Session {
            lcp: Cp::new(protocol::LCP, cfg.limits, lcp, first_id),
            auth: Authenticator::new(&cfg),
            cfg,
            phase: Phase::Establish,
            grant: None,
            ipcp: None,
            ipv6cp: None,
            ipv4_up: false,
            ipv6_up: false,
            peer_asked: [false; 2],
            echo: Echo::default(),
            cause: None,
            out: Vec::new(),
            events: VecDeque::new(),
            drops: [0; DropReason::COUNT],
            rx: 0,
            tx: 0,
            proxy_lcp: ProxyLcpUse::NotOffered,
        }
    }

    /// A link whose lower layer is up (PADS sent, or ICCN received): LCP starts and the
    /// first Configure-Request is queued.
    pub fn new(cfg: Arc<Config>, now: Instant, rng: &mut dyn Entropy) -> Session {
        let mut s = Session::idle(cfg, rng);
        s.start(now, rng);
        s
    }

    fn start(&mut self, now: Instant, rng: &mut dyn Entropy) {
        let o = self.lcp.event(now, FsmEvent::Open, rng, &mut self.out);
        self.after_lcp(now, rng, o);
        let o = self.lcp.event(now, FsmEvent::Up, rng, &mut self.out);
        self.after_lcp(now, rng, o);
    }

    /// An LNS's session from the LAC's proxy LCP (RFC 2661 4.4.5). When the LAC's
    /// negotiation is one we would have made (the client's last request acceptable as
    /// is, the LAC's request one we could have sent: MRU within ours, an authentication
    /// method we offer, a Magic-Number, nothing else but ACCM), LCP starts Opened with
    /// those values and authentication uses `auth` if it fits the method (the caller gets
    /// [`Event::Authenticate`] with `proxied` set, and the Success/Ack goes to the client
    /// with the LAC's Identifier); otherwise the client must authenticate again (a new
    /// challenge). When the proxy LCP is not acceptable, LCP renegotiates from scratch.
    pub fn from_proxy(
        cfg: Arc<Config>,
        now: Instant,
        rng: &mut dyn Entropy,
        proxy: &ProxyLcp,
        auth: Option<&ProxyAuth>,
    ) -> Session {
        let mut s = Session::idle(cfg.clone(), rng);
        let well_formed = wire::check_options(&proxy.last_sent).is_ok()
            && wire::check_options(&proxy.last_received).is_ok()
            && wire::check_options(&proxy.initial_received).is_ok();
        let acceptable = well_formed
            && s.lcp.neg.check(&proxy.last_received, false, rng) == Verdict::Ack
            && s.lcp.neg.adopt_ours(&proxy.last_sent)
            && (s.lcp.neg.magic == 0 || s.lcp.neg.magic != s.lcp.neg.peer_candidate_magic());
        if acceptable {
            s.lcp.neg.commit_peer();
            s.lcp.open_by_proxy(
                &proxy.last_sent,
                &proxy.initial_received,
                &proxy.last_received,
            );
            s.proxy_lcp = ProxyLcpUse::Accepted;
            s.link_up(now, rng, auth);
        } else {
            s = Session::idle(cfg, rng);
            s.proxy_lcp = ProxyLcpUse::Renegotiated;
            s.start(now, rng);
        }
        s
    }

    // ---- inputs ----

    /// A PPP frame from the peer: `protocol` and the packet after it (as read from the
    /// PPPoE session payload, or after `ff 03` in L2TP).
    pub fn handle_input(
        &mut self,
        now: Instant,
        rng: &mut dyn Entropy,
        protocol: u16,
        payload: &[u8],
    ) {
        if matches!(self.phase, Phase::Dead | Phase::HandedOff) {
            self.drop(DropReason::AfterEnd);
            return;
        }
        self.rx += 1;
        // Anything from the peer shows it is alive.
        self.echo.outstanding = 0;
        match protocol {
            protocol::LCP => self.lcp_input(now, rng, payload),
            protocol::PAP | protocol::CHAP => self.auth_input(protocol, payload),
            protocol::IPCP => self.ncp_input(now, rng, false, payload),
            protocol::IPV6CP if self.cfg.ipv6cp => self.ncp_input(now, rng, true, payload),
            protocol::IPV4 | protocol::IPV6 => self.drop(DropReason::DataInControl),
            _ => self.protocol_reject(protocol, payload),
        }
        self.check_lcp_flags(now, rng);
    }

    /// The fast path saw traffic from the peer: it is alive, postpone the next echo.
    pub fn peer_alive(&mut self, now: Instant) {
        self.echo.outstanding = 0;
        if self.echo.next_at.is_some()
            && let Some(i) = self.cfg.echo_interval
        {
            self.echo.next_at = Some(now + i);
        }
    }

    /// The caller accepted the credentials: Ack/Success goes out and the NCPs start with
    /// what `grant` gives.
    pub fn accept(
        &mut self,
        now: Instant,
        rng: &mut dyn Entropy,
        grant: Grant,
    ) -> Result<(), DecisionError> {
        self.pending()?;
        self.auth.accept(&grant.message, &mut self.out);
        self.phase = Phase::Network;
        let limits = self.cfg.limits;
        let mut ipcp = Cp::new(
            protocol::IPCP,
            limits,
            Ipcp::new(self.cfg.local_ipv4, grant.address, grant.dns),
            rng.next_u8(),
        );
        ipcp.event(now, FsmEvent::Open, rng, &mut self.out);
        ipcp.event(now, FsmEvent::Up, rng, &mut self.out);
        self.ipcp = Some(ipcp);
        if self.cfg.ipv6cp {
            let mut v6 = Cp::new(
                protocol::IPV6CP,
                limits,
                Ipv6cp::new(grant.interface_id, self.cfg.ipv6_interface_id, rng),
                rng.next_u8(),
            );
            v6.event(now, FsmEvent::Open, rng, &mut self.out);
            v6.event(now, FsmEvent::Up, rng, &mut self.out);
            self.ipv6cp = Some(v6);
        }
        self.grant = Some(grant);
        Ok(())
    }

    /// The caller rejected the credentials: Nak/Failure goes out with `message`; the
    /// link closes unless the peer has attempts left.
    pub fn reject(
        &mut self,
        now: Instant,
        rng: &mut dyn Entropy,
        message: &str,
    ) -> Result<(), DecisionError> {
        self.pending()?;
        let cfg = self.cfg.clone();
        if let Some(AuthEnd::Failed) =
            self.auth
                .reject(now, message.as_bytes(), &cfg, rng, &mut self.out)
        {
            self.close_with(now, rng, EndCause::AuthFailed, message.as_bytes());
        }
        Ok(())
    }

    fn pending(&self) -> Result<(), DecisionError> {
        match self.phase {
            Phase::Dead | Phase::HandedOff => Err(DecisionError::Ended),
            Phase::Authenticate if self.auth.status == AuthStatus::Pending => Ok(()),
            _ => Err(DecisionError::NotPending),
        }
    }

    /// Ends the link: LCP Terminate-Request with `reason` (resent up to Max-Terminate
    /// times), then [`Event::Finished`] with [`EndCause::Closed`]. Does nothing if the
    /// link is already ending.
    pub fn close(&mut self, now: Instant, rng: &mut dyn Entropy, reason: &str) {
        self.close_with(
            now,
            rng,
            EndCause::Closed(reason.to_string()),
            reason.as_bytes(),
        );
    }

    /// The lower layer is gone (PADT received, tunnel or session torn down): the link
    /// finishes at once, nothing is sent.
    pub fn lower_down(&mut self) {
        self.lcp.fsm.reset();
        self.finish(EndCause::LowerDown);
    }

    /// Hands the link to an L2TP tunnel (LAC): returns what the ICCN's proxy AVPs carry
    /// and stops the engine (no more packets, events or timers). Only while the peer's
    /// credentials await a decision.
    pub fn hand_off(&mut self) -> Result<ProxyRecord, DecisionError> {
        self.pending()?;
        let record = self.proxy_record().ok_or(DecisionError::NotPending)?;
        self.phase = Phase::HandedOff;
        self.echo.next_at = None;
        Ok(record)
    }

    /// What a LAC would forward now: the LCP requests exchanged and the authentication
    /// exchange (once the peer sent credentials).
    pub fn proxy_record(&self) -> Option<ProxyRecord> {
        let auth = self.auth.exchange.clone()?;
        Some(ProxyRecord {
            lcp: ProxyLcp {
                initial_received: self.lcp.first_peer_req.clone().unwrap_or_default(),
                last_sent: self.lcp.last_request().to_vec(),
                last_received: self.lcp.last_peer_req.clone().unwrap_or_default(),
            },
            auth,
        })
    }

    // ---- outputs ----

    /// The next packet to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        if self.out.is_empty() {
            return None;
        }
        self.tx += 1;
        Some(self.out.remove(0))
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Session::handle_timeout`] wants to run next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if matches!(self.phase, Phase::Dead | Phase::HandedOff) {
            return None;
        }
        let auth = (self.phase == Phase::Authenticate)
            .then(|| self.auth.poll_timeout())
            .flatten();
        let echo = self.echo_runs().then_some(self.echo.next_at).flatten();
        [
            self.lcp.fsm.deadline(),
            self.ipcp.as_ref().and_then(|c| c.fsm.deadline()),
            self.ipv6cp.as_ref().and_then(|c| c.fsm.deadline()),
            auth,
            echo,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Runs what is due at `now`: retransmissions, give-ups, echo, auth timeouts.
    pub fn handle_timeout(&mut self, now: Instant, rng: &mut dyn Entropy) {
        if matches!(self.phase, Phase::Dead | Phase::HandedOff) {
            return;
        }
        let o = self.lcp.handle_timeout(now, rng, &mut self.out);
        self.after_lcp(now, rng, o);
        if let Some(o) = self
            .ipcp
            .as_mut()
            .map(|c| c.handle_timeout(now, rng, &mut self.out))
        {
            self.after_ncp(now, rng, false, o);
        }
        if let Some(o) = self
            .ipv6cp
            .as_mut()
            .map(|c| c.handle_timeout(now, rng, &mut self.out))
        {
            self.after_ncp(now, rng, true, o);
        }
        if self.phase == Phase::Authenticate {
            let cfg = self.cfg.clone();
            if self.auth.handle_timeout(now, &cfg, &mut self.out).is_some() {
                self.close_with(now, rng, EndCause::AuthTimeout, b"authentication timeout");
            }
        }
        if self.echo_runs()
            && let Some(t) = self.echo.next_at
            && t <= now
        {
            if self.echo.outstanding >= self.cfg.echo_failures {
                self.dead_peer(now, rng);
            } else {
                let id = self.lcp.next_identifier();
                let magic = self.lcp.neg.magic.to_be_bytes();
                self.out.push(Transmit {
                    protocol: protocol::LCP,
                    packet: wire::build(code::ECHO_REQUEST, id, &magic),
                });
                self.echo.outstanding += 1;
                self.echo.next_at = self.cfg.echo_interval.map(|i| now + i);
            }
        }
    }

    // ---- state ----

    /// The phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The state summary `ctl show session` renders.
    pub fn state(&self) -> Summary {
        Summary {
            phase: self.phase,
            lcp: self.lcp.state(),
            auth_method: self.lcp.neg.auth(),
            auth: self.auth.status,
            user: String::from_utf8_lossy(&self.auth.user).into_owned(),
            ipcp: self.ipcp.as_ref().map(|c| c.state()),
            ipv6cp: self.ipv6cp.as_ref().map(|c| c.state()),
            ipv6cp_enabled: self.cfg.ipv6cp,
            address: self
                .ipv4_up
                .then(|| self.ipcp.as_ref().map(|c| c.neg.peer))
                .flatten(),
            mru: (self.peer_mru(), self.local_mru()),
            magic: (self.lcp.neg.magic, self.lcp.neg.peer.magic),
            echo: (self.echo.outstanding, self.cfg.echo_failures),
            proxy_lcp: self.proxy_lcp,
            cause: self.cause.clone(),
            packets: (self.rx, self.tx),
        }
    }

    /// The drop counters, by reason.
    pub fn drops(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        DropReason::ALL
            .into_iter()
            .map(|d| (d, self.drops[d as usize]))
    }

    /// The count of one drop reason.
    pub fn drop_count(&self, d: DropReason) -> u64 {
        self.drops[d as usize]
    }

    /// The grant the caller gave, once accepted.
    pub fn grant(&self) -> Option<&Grant> {
        self.grant.as_ref()
    }

    /// Whether IPCP (`v6` false) or IPv6CP is open.
    pub fn ncp_open(&self, v6: bool) -> bool {
        if v6 { self.ipv6_up } else { self.ipv4_up }
    }

    /// Whether the peer asked for IPCP (`v6` false) or IPv6CP: it sent a
    /// Configure-Request for it (an NCP it only rejects or ignores, it did not).
    pub fn ncp_requested(&self, v6: bool) -> bool {
        self.peer_asked[usize::from(v6)]
    }

    /// The link's MTU: the smaller MRU and the grant's Framed-MTU.
    pub fn mtu(&self) -> u16 {
        [
            Some(self.peer_mru()),
            Some(self.local_mru()),
            self.grant.as_ref().and_then(|g| g.mtu),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(DEFAULT_MRU)
    }

    fn peer_mru(&self) -> u16 {
        self.lcp.neg.peer.mru.unwrap_or(DEFAULT_MRU)
    }

    fn local_mru(&self) -> u16 {
        self.lcp.neg.mru.unwrap_or(DEFAULT_MRU)
    }

    fn drop(&mut self, d: DropReason) {
        self.drops[d as usize] += 1;
    }

    fn echo_runs(&self) -> bool {
        self.lcp.state() == State::Opened
            && matches!(self.phase, Phase::Authenticate | Phase::Network)
    }

    // ---- LCP ----

    fn lcp_input(&mut self, now: Instant, rng: &mut dyn Entropy, payload: &[u8]) {
        let Ok(p) = Packet::new_checked(payload) else {
            self.drop(DropReason::Malformed);
            return;
        };
        match p.code() {
            code::PROTOCOL_REJECT => {
                if self.lcp.state() != State::Opened {
                    self.drop(DropReason::WrongPhase);
                    return;
                }
                let d = p.data();
                if d.len() < 2 {
                    self.drop(DropReason::Malformed);
                    return;
                }
                let rejected = u16::from_be_bytes([d[0], d[1]]);
                if rejected == protocol::LCP {
                    let o = self.lcp.event(now, FsmEvent::RxjBad, rng, &mut self.out);
                    self.cause.get_or_insert(EndCause::LcpFailed);
                    self.after_lcp(now, rng, o);
                } else {
                    self.protocol_rejected_by_peer(now, rng, rejected);
                }
            }
            code::ECHO_REQUEST | code::ECHO_REPLY | code::DISCARD_REQUEST => {
                let d = p.data();
                if d.len() < 4 {
                    self.drop(DropReason::Malformed);
                    return;
                }
                let magic = u32::from_be_bytes([d[0], d[1], d[2], d[3]]);
                if self.lcp.neg.magic != 0 && magic == self.lcp.neg.magic {
                    // Our own packet came back: the link is looped.
                    self.lcp.neg.collisions += 1;
                    return;
                }
                let o = self.lcp.event(now, FsmEvent::Rxr, rng, &mut self.out);
                if o.has(Action::Ser) && p.code() == code::ECHO_REQUEST {
                    let mut reply = self.lcp.neg.magic.to_be_bytes().to_vec();
                    reply.extend_from_slice(&d[4..]);
                    self.out.push(Transmit {
                        protocol: protocol::LCP,
                        packet: wire::build(code::ECHO_REPLY, p.identifier(), &reply),
                    });
                }
            }
            // RFC 1570: informational, nothing to answer.
            code::IDENTIFICATION | code::TIME_REMAINING => {}
            _ => match self.lcp.input(now, &p, true, rng, &mut self.out) {
                Ok(o) => self.after_lcp(now, rng, o),
                Err(d) => self.drop(d),
            },
        }
    }

    fn check_lcp_flags(&mut self, now: Instant, rng: &mut dyn Entropy) {
        if self.lcp.neg.collisions > self.cfg.limits.max_failure {
            self.finish(EndCause::LoopedBack);
        } else if self.lcp.neg.auth_refused && self.lcp.neg.requires_auth() {
            self.close_with(now, rng, EndCause::AuthRefused, b"authentication required");
        }
    }

    fn after_lcp(&mut self, now: Instant, rng: &mut dyn Entropy, o: Outcome) {
        match o.event {
            Some(FsmEvent::Rtr) => {
                self.cause.get_or_insert(EndCause::PeerTerminated);
            }
            Some(FsmEvent::RxjBad) => {
                self.cause.get_or_insert(EndCause::LcpFailed);
            }
            _ => {}
        }
        for a in o.actions.iter() {
            match a {
                Action::Tld => self.link_down(now, rng, o.event),
                Action::Tlu => self.link_up(now, rng, None),
                Action::Tlf => {
                    let cause = self.cause.clone().unwrap_or(EndCause::LcpFailed);
                    self.finish(cause);
                }
                _ => {}
            }
        }
    }

    fn link_up(&mut self, now: Instant, rng: &mut dyn Entropy, proxy: Option<&ProxyAuth>) {
        self.phase = Phase::Authenticate;
        self.events.push_back(Event::LinkUp {
            peer_mru: self.peer_mru(),
            local_mru: self.local_mru(),
            magic: self.lcp.neg.magic,
            peer_magic: self.lcp.neg.peer.magic,
        });
        self.echo = Echo {
            next_at: self.cfg.echo_interval.map(|i| now + i),
            outstanding: 0,
        };
        let method = self.lcp.neg.auth();
        let cfg = self.cfg.clone();
        let proxied = proxy.and_then(|p| self.auth.start_proxied(now, method, p, &cfg));
        let req = match proxied {
            Some(r) => Some(r),
            None => self.auth.start(now, method, &cfg, rng, &mut self.out),
        };
        if let Some(r) = req {
            self.events.push_back(Event::Authenticate(r));
        }
    }

    fn link_down(&mut self, now: Instant, rng: &mut dyn Entropy, event: Option<FsmEvent>) {
        self.ncps_down();
        self.echo.next_at = None;
        match event {
            Some(FsmEvent::Close) | Some(FsmEvent::Down) => {}
            Some(FsmEvent::Rtr) | Some(FsmEvent::RxjBad) => self.phase = Phase::Terminate,
            _ => {
                // The peer renegotiates LCP after it opened: the authentication and
                // the addresses no longer hold (BNG practice: end the session).
                self.phase = Phase::Establish;
                self.close_with(now, rng, EndCause::LinkRenegotiated, b"LCP renegotiated");
            }
        }
    }

    fn close_with(&mut self, now: Instant, rng: &mut dyn Entropy, cause: EndCause, text: &[u8]) {
        if matches!(
            self.phase,
            Phase::Dead | Phase::HandedOff | Phase::Terminate
        ) {
            return;
        }
        self.cause.get_or_insert(cause.clone());
        self.ncps_down();
        self.phase = Phase::Terminate;
        let o = self.lcp.close(now, text, rng, &mut self.out);
        self.after_lcp(now, rng, o);
        if self.phase != Phase::Dead
            && matches!(
                self.lcp.state(),
                State::Initial | State::Closed | State::Stopped
            )
        {
            self.finish(self.cause.clone().unwrap_or(cause));
        }
    }

    fn dead_peer(&mut self, now: Instant, rng: &mut dyn Entropy) {
        // One Terminate-Request as a courtesy; waiting for an Ack from a dead peer
        // would only hold the session (and its address) longer.
        self.cause.get_or_insert(EndCause::PeerDead);
        self.ncps_down();
        let id = self.lcp.next_identifier();
        self.out.push(Transmit {
            protocol: protocol::LCP,
            packet: wire::build(code::TERMINATE_REQUEST, id, b"peer not responding"),
        });
        let _ = (now, rng);
        self.lcp.fsm.reset();
        self.finish(EndCause::PeerDead);
    }

    fn finish(&mut self, cause: EndCause) {
        if matches!(self.phase, Phase::Dead | Phase::HandedOff) {
            return;
        }
        self.ncps_down();
        self.phase = Phase::Dead;
        self.echo.next_at = None;
        let cause = self.cause.clone().unwrap_or(cause);
        self.cause = Some(cause.clone());
        self.events.push_back(Event::Finished { cause });
    }

    fn protocol_reject(&mut self, proto: u16, payload: &[u8]) {
        self.drop(DropReason::ProtocolRejected);
        if self.lcp.state() != State::Opened || self.phase == Phase::Terminate {
            return;
        }
        // Rejected-Protocol and as much of the packet as the peer's MRU allows.
        let room = usize::from(self.peer_mru()).saturating_sub(wire::HEADER_LEN + 2);
        let mut d = Vec::with_capacity(2 + payload.len().min(room));
        d.extend_from_slice(&proto.to_be_bytes());
        d.extend_from_slice(&payload[..payload.len().min(room)]);
        let id = self.lcp.next_identifier();
        self.out.push(Transmit {
            protocol: protocol::LCP,
            packet: wire::build(code::PROTOCOL_REJECT, id, &d),
        });
    }

    fn protocol_rejected_by_peer(&mut self, now: Instant, rng: &mut dyn Entropy, proto: u16) {
        match proto {
            protocol::IPCP | protocol::IPV6CP => {
                let v6 = proto == protocol::IPV6CP;
                let o = if v6 {
                    self.ipv6cp
                        .as_mut()
                        .map(|c| c.event(now, FsmEvent::RxjBad, rng, &mut self.out))
                } else {
                    self.ipcp
                        .as_mut()
                        .map(|c| c.event(now, FsmEvent::RxjBad, rng, &mut self.out))
                };
                if let Some(o) = o {
                    self.after_ncp(now, rng, v6, o);
                }
            }
            protocol::PAP | protocol::CHAP => {
                self.close_with(now, rng, EndCause::AuthRefused, b"authentication required");
            }
            _ => {}
        }
    }

    // ---- authentication ----

    fn auth_input(&mut self, proto: u16, payload: &[u8]) {
        if !matches!(self.phase, Phase::Authenticate | Phase::Network) {
            self.drop(DropReason::WrongPhase);
            return;
        }
        let r = if proto == protocol::PAP {
            match pap::PapPacket::new_checked(payload) {
                Ok(p) => self.auth.input_pap(&p, &mut self.out),
                Err(_) => Err(DropReason::Malformed),
            }
        } else {
            match chap::ChapPacket::new_checked(payload) {
                Ok(p) => self.auth.input_chap(&p, &mut self.out),
                Err(_) => Err(DropReason::Malformed),
            }
        };
        match r {
            Ok(Some(req)) => self.events.push_back(Event::Authenticate(req)),
            Ok(None) => {}
            Err(d) => self.drop(d),
        }
    }

    // ---- NCPs ----

    fn ncp_input(&mut self, now: Instant, rng: &mut dyn Entropy, v6: bool, payload: &[u8]) {
        let Ok(p) = Packet::new_checked(payload) else {
            self.drop(DropReason::Malformed);
            return;
        };
        if p.code() == code::CONFIGURE_REQUEST {
            self.peer_asked[usize::from(v6)] = true;
        }
        if self.phase != Phase::Network {
            self.drop(DropReason::WrongPhase);
            return;
        }
        let r = if v6 {
            match self.ipv6cp.as_mut() {
                Some(c) => c.input(now, &p, false, rng, &mut self.out),
                None => Err(DropReason::WrongPhase),
            }
        } else {
            match self.ipcp.as_mut() {
                Some(c) => c.input(now, &p, false, rng, &mut self.out),
                None => Err(DropReason::WrongPhase),
            }
        };
        match r {
            Ok(o) => self.after_ncp(now, rng, v6, o),
            Err(d) => self.drop(d),
        }
    }

    fn after_ncp(&mut self, now: Instant, rng: &mut dyn Entropy, v6: bool, o: Outcome) {
        for a in o.actions.iter() {
            match a {
                Action::Tlu => {
                    if v6 {
                        if let Some(c) = &self.ipv6cp {
                            self.ipv6_up = true;
                            let peer: InterfaceId = c.neg.peer.unwrap_or_default();
                            self.events.push_back(Event::Ipv6Up {
                                local: c.neg.local,
                                peer,
                            });
                        }
                    } else if let Some(c) = &self.ipcp {
                        self.ipv4_up = true;
                        let mtu = self.mtu();
                        self.events.push_back(Event::Ipv4Up {
                            local: c.neg.local(),
                            peer: c.neg.peer,
                            dns: c.neg.dns(),
                            mtu,
                        });
                    }
                }
                Action::Tld => self.ncp_went_down(v6),
                Action::Tlf => {
                    let live = [
                        self.ipcp.as_ref().map(|c| c.state()),
                        self.ipv6cp.as_ref().map(|c| c.state()),
                    ]
                    .into_iter()
                    .flatten()
                    .any(alive);
                    if self.phase == Phase::Network && !live {
                        self.close_with(
                            now,
                            rng,
                            EndCause::NoNetworkProtocol,
                            b"no network protocol",
                        );
                    }
                }
                _ => {}
            }
        }
    }

    fn ncp_went_down(&mut self, v6: bool) {
        if v6 && self.ipv6_up {
            self.ipv6_up = false;
            self.events.push_back(Event::Ipv6Down);
        } else if !v6 && self.ipv4_up {
            self.ipv4_up = false;
            self.events.push_back(Event::Ipv4Down);
        }
    }

    fn ncps_down(&mut self) {
        self.ncp_went_down(false);
        self.ncp_went_down(true);
        for c in [
            self.ipcp.as_mut().map(|c| &mut c.fsm),
            self.ipv6cp.as_mut().map(|c| &mut c.fsm),
        ]
        .into_iter()
        .flatten()
        {
            c.reset();
        }
    }
}
