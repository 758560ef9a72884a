//! The LAC's switched calls (ACC-6, issue 15): a PPPoE subscriber whose PPP the gateway
//! hands to an LNS. The gateway ([`crate::gateway`]) decides which LNS (a realm rule),
//! takes the proxy LCP and proxy authentication from its PPP engine and asks for a call
//! ([`L2tp::switch_call`]); the engine finds or opens the tunnel to that LNS for the
//! Assignment-Id (tunnels are shared by every call to the same LNS and Assignment-Id),
//! sends ICRQ, and ICCN with the proxy AVPs (RFC 2661 4.4.5), and installs the session
//! in the fast path with its PPPoE leg, which switches the PPP frames both ways.
//!
//! [`L2tpOutput::Switched`] says a call is up (ICCN acknowledged);
//! [`L2tpOutput::SwitchEnded`] says it ended or failed before (CDN, StopCCN, a dead
//! peer): the gateway then tries the next LNS, or ends the PPPoE session with PADT.

use std::net::{Ipv4Addr, SocketAddrV4};

use tollgate_dataplane::l2tp::{L2tpCounters, PppoeLeg};
use tollgate_dataplane::time::Instant;

use super::wire::{Builder, attr, kind};
use super::{L2tp, L2tpOutput, Role, Session, SessionState, TunnelState, VENDOR_NAME};
use crate::ppp::ProxyRecord;

/// An LNS a call may go to, as a realm rule or RADIUS names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LnsChoice {
    /// The LNS (address and UDP port).
    pub peer: SocketAddrV4,
    /// Tunnel-Assignment-Id: calls with the same LNS and Assignment-Id share a tunnel.
    pub assignment: String,
    /// Tunnel-Preference: lower is tried first.
    pub preference: u32,
    /// The tunnel's secret (RADIUS Tunnel-Password, else the realm's `secret`); `None`:
    /// `l2tp.secret`. A tunnel shared by calls keeps the secret it was opened with.
    pub secret: Option<Vec<u8>>,
}

/// A realm rule: PPPoE subscribers named `user@REALM` go to these LNSes (by preference).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LacRealm {
    /// The realm, compared without regard to case.
    pub realm: String,
    /// Where its calls go; the lowest preference first, the next when a tunnel or call
    /// fails before it is up.
    pub lns: Vec<LnsChoice>,
}

impl LacRealm {
    /// True when `user` (`name@realm`) is of this realm.
    pub fn matches(&self, user: &str) -> bool {
        user.rsplit_once('@')
            .is_some_and(|(_, r)| r.eq_ignore_ascii_case(&self.realm))
    }
}

/// What the LAC forwards of a PPPoE subscriber it switches into a tunnel.
#[derive(Clone, Debug)]
pub struct SwitchedCall {
    /// The PPPoE side, for the fast path.
    pub pppoe: PppoeLeg,
    /// Proxy LCP and proxy authentication for the ICCN.
    pub proxy: ProxyRecord,
    /// Calling Number (AVP 22): the subscriber's line (NAS-Port-Id).
    pub calling_number: String,
    /// Tx Connect Speed of the ICCN, bit/s.
    pub speed: u32,
}

impl L2tp {
    /// LAC: switches a PPPoE subscriber into a session toward `lns`, in the tunnel to it
    /// for the same Assignment-Id when there is a live one, else a new one. Returns our
    /// session id.
    pub fn switch_call(
        &mut self,
        now: Instant,
        lns: &LnsChoice,
        call: SwitchedCall,
    ) -> Result<u16, String> {
        if self.closing {
            return Err("shutting down".into());
        }
        let existing = self
            .tunnels
            .values()
            .find(|t| {
                t.role == Role::Lac
                    && t.line.is_none()
                    && t.peer == lns.peer
                    && t.assignment == lns.assignment
                    && t.state.live()
            })
            .map(|t| t.id);
        let tid = match existing {
            Some(t) => t,
            None => self.open_switch_tunnel(now, lns)?,
        };
        let Some(sid) = self.alloc_session() else {
            self.stats.session_limit += 1;
            self.limit_reached(now, "sessions", self.stats.session_limit);
            return Err("no session id left (l2tp.max_sessions)".into());
        };
        let up = self
            .tunnels
            .get(&tid)
            .is_some_and(|t| t.state == TunnelState::Established);
        self.sessions.insert(
            sid,
            Session {
                id: sid,
                tunnel: tid,
                peer_id: 0,
                state: SessionState::Pending,
                subscriber: Ipv4Addr::UNSPECIFIED,
                owner: None,
                ppp: false,
                calling_number: Some(call.calling_number.clone()),
                level: call.speed as u64,
                replaces: None,
                created: now,
                established: None,
                counters: L2tpCounters::default(),
                ack: None,
                last_bytes: 0,
                switched: Some(Box::new(call)),
            },
        );
        if let Some(t) = self.tunnels.get_mut(&tid) {
            t.sessions.insert(sid);
        }
        if up {
            self.send_icrq(sid);
        }
        tracing::info!(session = sid, tunnel = tid, lns = %lns.peer, assignment = %lns.assignment, reused = existing.is_some(), "switching a PPPoE subscriber to an LNS");
        self.after(now, tid);
        self.settle(now);
        Ok(sid)
    }

    /// LAC: ends switched call `session` from our side with a CDN (result 3, `why`).
    pub fn end_switched(&mut self, now: Instant, session: u16, why: &str) {
        let Some(tid) = self
            .sessions
            .get(&session)
            .filter(|s| s.switched.is_some() && s.state != SessionState::Closing)
            .map(|s| s.tunnel)
        else {
            return;
        };
        self.close_session(now, session, super::result::CDN_ADMIN, why);
        self.after(now, tid);
        self.settle(now);
    }

    /// The switched call of session `session`, if it is one.
    pub fn switched(&self, session: u16) -> Option<&SwitchedCall> {
        self.sessions.get(&session)?.switched.as_deref()
    }

    /// Opens a tunnel to `lns` for switched calls (SCCRQ).
    fn open_switch_tunnel(&mut self, now: Instant, lns: &LnsChoice) -> Result<u16, String> {
        if self.tunnels.len() >= self.s.max_tunnels as usize {
            self.stats.tunnel_limit += 1;
            self.limit_reached(now, "tunnels", self.stats.tunnel_limit);
            return Err("no tunnel left (l2tp.max_tunnels)".into());
        }
        let local = self
            .local_for(*lns.peer.ip())
            .ok_or_else(|| format!("no route to the LNS {}", lns.peer.ip()))?;
        let tid = self
            .new_tunnel(now, Role::Lac, lns.peer, local)
            .ok_or("no tunnel id free")?;
        let challenge = (lns.secret.is_some() || self.s.secret.is_some()).then(|| self.random16());
        if let Some(t) = self.tunnels.get_mut(&tid) {
            t.assignment = lns.assignment.clone();
            t.challenge = challenge;
            t.secret = lns.secret.clone();
        }
        let mut b = Builder::new(kind::SCCRQ, 0, 0)
            .u16(true, attr::PROTOCOL_VERSION, 0x0100)
            .avp(true, 0, attr::HOST_NAME, self.s.host_name.as_bytes())
            .u32(true, attr::FRAMING_CAPABILITIES, 3)
            .u32(false, attr::BEARER_CAPABILITIES, 0)
            .u16(true, attr::ASSIGNED_TUNNEL_ID, tid)
            .u16(true, attr::RECEIVE_WINDOW_SIZE, self.s.timing.window)
            .u16(false, attr::FIRMWARE_REVISION, 1)
            .avp(false, 0, attr::VENDOR_NAME, VENDOR_NAME.as_bytes());
        if let Some(c) = challenge {
            b = b.avp(true, 0, attr::CHALLENGE, &c);
        }
        self.send(tid, b.finish());
        tracing::info!(tunnel = tid, lns = %lns.peer, assignment = %lns.assignment, "opening a tunnel for switched calls");
        Ok(tid)
    }

    /// The ICCN of switched call `sid`: framing, speed, and the proxy AVPs.
    pub(super) fn switched_iccn(&mut self, tid: u16, peer_sid: u16, sid: u16) -> Option<Vec<u8>> {
        let c = self.sessions.get(&sid)?.switched.as_deref()?.clone();
        let lcp = &c.proxy.lcp;
        let auth = &c.proxy.auth;
        let mut b = self
            .builder(kind::ICCN, tid, peer_sid)
            .u32(true, attr::TX_CONNECT_SPEED, c.speed)
            .u32(true, attr::FRAMING_TYPE, 1)
            .u32(false, attr::RX_CONNECT_SPEED, c.speed);
        if !lcp.initial_received.is_empty() && !lcp.last_received.is_empty() {
            b = b
                .avp(
                    false,
                    0,
                    attr::INITIAL_RECEIVED_LCP_CONFREQ,
                    &lcp.initial_received,
                )
                .avp(false, 0, attr::LAST_SENT_LCP_CONFREQ, &lcp.last_sent)
                .avp(
                    false,
                    0,
                    attr::LAST_RECEIVED_LCP_CONFREQ,
                    &lcp.last_received,
                );
        }
        b = b.u16(false, attr::PROXY_AUTHEN_TYPE, auth.kind as u16).avp(
            false,
            0,
            attr::PROXY_AUTHEN_NAME,
            &auth.name,
        );
        if !auth.challenge.is_empty() {
            b = b.avp(false, 0, attr::PROXY_AUTHEN_CHALLENGE, &auth.challenge);
        }
        b = b.u16(false, attr::PROXY_AUTHEN_ID, auth.id as u16).hidden(
            false,
            0,
            attr::PROXY_AUTHEN_RESPONSE,
            &auth.response,
        );
        Some(b.finish())
    }

    /// The call is up (its ICCN acknowledged): the gateway accounts it.
    pub(super) fn switched_up(&mut self, sid: u16) {
        let Some(s) = self.sessions.get(&sid) else {
            return;
        };
        if let Some(t) = self.tunnels.get(&s.tunnel) {
            self.out.push_back(L2tpOutput::Switched {
                session: sid,
                tunnel: s.tunnel,
                peer_session: s.peer_id,
                peer_tunnel: t.peer_id,
                lns: t.peer,
                lns_host: t.peer_host.clone(),
            });
        }
    }
}
