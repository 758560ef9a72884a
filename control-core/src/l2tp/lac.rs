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

use super::level::Tracker;
use super::wire::{Builder, attr, kind, result};
use super::{L2tp, L2tpOutput, Role, Session, SessionState, Subscriber, TunnelState, VENDOR_NAME};
use crate::ppp::ProxyRecord;
use tollgate_dataplane::Command;

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
    /// The customer whose administration table places its calls (TUN-2..5): on the
    /// customer's lines (which lead to its LNS), consolidated when it has the contract.
    /// `None`: a tunnel per LNS and Assignment-Id, no consolidation.
    pub customer: Option<String>,
    /// Its calls' service level, bit/s (with a customer).
    pub level: u64,
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
    /// The line's TR-101 Agent-Circuit-Id (from the PADI/PADR), sent in the ICRQ as the
    /// RFC 5515 AVP (vendor 3561, type 1) when the access node inserted one.
    pub circuit_id: Option<Vec<u8>>,
    /// The line's TR-101 Agent-Remote-Id (RFC 5515 type 2), likewise.
    pub remote_id: Option<Vec<u8>>,
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
                moved_to: None,
                carried: L2tpCounters::default(),
                release_after: None,
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

    /// LAC: switches a PPPoE subscriber into the administration table of `customer`
    /// (a realm with a customer): a session in one of the customer's tunnels on its
    /// lines, placed and later moved by consolidation (TUN-3) like any tunnelled
    /// subscriber, at service level `level`. Returns our session id (the gateway's key
    /// for the call until a [`L2tpOutput::SwitchMoved`]).
    pub fn switch_call_placed(
        &mut self,
        now: Instant,
        customer: &str,
        level: u64,
        call: SwitchedCall,
    ) -> Result<u16, String> {
        if self.closing {
            return Err("shutting down".into());
        }
        let c = self
            .s
            .customers
            .iter()
            .position(|c| c.name == customer)
            .ok_or_else(|| format!("no customer is named {customer:?}"))?;
        if self.s.lines.is_empty() {
            return Err("no [[l2tp.line]] to open tunnels on".into());
        }
        if level == 0 {
            return Err("the service level must not be 0".into());
        }
        let id = self.next_subscriber;
        self.next_subscriber += 1;
        let user = String::from_utf8_lossy(&call.proxy.auth.name).into_owned();
        self.subscribers.insert(
            id,
            Subscriber {
                id,
                address: Ipv4Addr::UNSPECIFIED,
                customer: c,
                user: user.clone(),
                level,
                session: None,
                moving_to: None,
                retry_at: None,
                failures: 0,
                up_since: None,
                tracker: Tracker::default(),
                started: now,
                call: Some(Box::new(call)),
                lns_failures: 0,
                failover_from: None,
            },
        );
        self.place(now, id);
        let Some(sid) = self.subscribers.get(&id).and_then(|o| o.moving_to) else {
            self.subscribers.remove(&id);
            return Err("no tunnel has room and no line can open one".into());
        };
        self.bandwidth_record(now, id, "start");
        tracing::info!(session = sid, subscriber = id, %user, customer, "switching a PPPoE subscriber through the administration table");
        self.settle(now);
        Ok(sid)
    }

    /// LAC: ends switched call `session` from our side with a CDN (result 3, `why`).
    pub fn end_switched(&mut self, now: Instant, session: u16, why: &str) {
        if let Some(owner) = self
            .sessions
            .get(&session)
            .filter(|s| s.switched.is_some() && s.state != SessionState::Closing)
            .and_then(|s| s.owner)
        {
            self.end_owned_call(now, owner, None, why);
            self.settle(now);
            return;
        }
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

    /// Switched call `session`'s counters as of the last sample, with what the sessions
    /// it was moved from carried.
    pub fn call_counters(&self, session: u16) -> L2tpCounters {
        self.sessions
            .get(&session)
            .map_or_else(L2tpCounters::default, |s| {
                let mut c = s.carried;
                add_counters(&mut c, &s.counters);
                c
            })
    }

    /// An administration-table call `owner` ends (the gateway, the operator, the LNS):
    /// its row goes, a `SwitchEnded` for the session the gateway knows it by, CDNs for
    /// its sessions but `except` (being closed already), and its customer's sessions are
    /// consolidated into the room it leaves.
    pub(super) fn end_owned_call(
        &mut self,
        now: Instant,
        owner: u32,
        except: Option<u16>,
        why: &str,
    ) {
        let Some(o) = self.subscribers.remove(&owner) else {
            return;
        };
        self.level_record(now, &o, 0, "stop");
        let key = o.session.or(o.moving_to);
        if let Some(k) = key {
            let was_up = o.session.is_some();
            let counters = self.call_counters(k);
            self.out.push_back(L2tpOutput::SwitchEnded {
                session: k,
                was_up,
                why: why.to_string(),
                counters,
            });
        }
        let freed = o
            .session
            .and_then(|s| self.sessions.get(&s))
            .map(|s| s.tunnel);
        for s in [o.session, o.moving_to].into_iter().flatten() {
            if Some(s) != except {
                self.close_session(now, s, result::CDN_ADMIN, why);
                if let Some(t) = self.sessions.get(&s).map(|s| s.tunnel) {
                    self.after(now, t);
                }
            }
        }
        tracing::info!(subscriber = owner, user = %o.user, reason = why, "switched call ended");
        self.replan(now, o.customer, freed);
    }

    /// Session `sid` of administration-table call `owner` no longer carries it (closed
    /// either way, its tunnel gone): a failed move is abandoned (the call stays where it
    /// is), the old session of a finished move goes quietly, else the call ends.
    pub(super) fn detach_owned_call(&mut self, now: Instant, sid: u16, owner: u32, why: &str) {
        let Some(o) = self.subscribers.get_mut(&owner) else {
            // Its row is gone: the call's end was said already (or the gateway is
            // stopping, and ended its PPPoE sessions first).
            return;
        };
        if o.moving_to == Some(sid) && o.session.is_some() {
            o.moving_to = None;
            self.stats.moves_failed += 1;
            tracing::warn!(
                subscriber = owner,
                session = sid,
                reason = why,
                "move of a switched call abandoned"
            );
            return;
        }
        if o.session != Some(sid) && o.moving_to != Some(sid) {
            return;
        }
        let (up, customer, failures) = (o.session.is_some(), o.customer, o.lns_failures);
        if !up && self.fail_over(now, sid, owner, (customer, failures), why) {
            return;
        }
        self.end_owned_call(now, owner, Some(sid), why);
    }

    /// Failover (issue 15 item 2): switched call `owner`, not up yet, lost its session
    /// `sid` because the LNS did not bring the tunnel up (the line has gone on to its
    /// next LNS): while its customer's lines have an LNS it has not tried, it is placed
    /// again (at the next tick). True when it will be.
    fn fail_over(
        &mut self,
        now: Instant,
        sid: u16,
        owner: u32,
        (customer, failures): (usize, u32),
        why: &str,
    ) -> bool {
        let tunnel_failed = self
            .sessions
            .get(&sid)
            .and_then(|s| self.tunnels.get(&s.tunnel))
            .is_some_and(|t| {
                t.role == Role::Lac
                    && t.established.is_none()
                    && t.line
                        .and_then(|l| self.s.lines.get(l))
                        .is_some_and(|l| !l.fallback.is_empty())
            });
        if !tunnel_failed || self.closing || failures as usize + 1 >= self.lns_choices(customer) {
            return false;
        }
        let Some(o) = self.subscribers.get_mut(&owner) else {
            return false;
        };
        // Placed again at the next tick, once the failed tunnel is gone (it must not be
        // chosen again); `place` tells the gateway the call's new session id.
        o.moving_to = None;
        o.lns_failures += 1;
        o.failover_from = Some(sid);
        o.retry_at = Some(now);
        tracing::info!(
            subscriber = owner,
            session = sid,
            reason = why,
            "switched call's LNS did not bring the tunnel up; placing it on the line's next LNS"
        );
        true
    }

    /// LAC: the ICCN of switched session `sid` was acknowledged. A first session: the
    /// call is up. A move (it replaces a session): the PPPoE leg is switched into it
    /// (one fast-path command), the gateway re-keys the call, and the old session gets
    /// its CDN but still decapsulates what is in flight until the CDN is acknowledged.
    pub(super) fn activate_switched(
        &mut self,
        now: Instant,
        sid: u16,
        owner: Option<u32>,
        replaces: Option<u16>,
    ) {
        let tid = self.sessions.get(&sid).map_or(0, |s| s.tunnel);
        let mut customer = None;
        if let Some(o) = owner.and_then(|o| self.subscribers.get_mut(&o)) {
            if o.session.is_none() {
                o.up_since = Some(now);
            }
            o.session = Some(sid);
            o.moving_to = None;
            o.retry_at = None;
            customer = Some(o.customer);
        }
        match replaces.filter(|o| self.sessions.contains_key(o)) {
            None => {
                tracing::info!(tunnel = tid, session = sid, "switched call established");
                self.switched_up(sid);
            }
            Some(old) => {
                self.out.push_back(L2tpOutput::Command(Command::L2tpSteer {
                    subscriber: Ipv4Addr::UNSPECIFIED,
                    session: sid,
                }));
                let mut carried = L2tpCounters::default();
                if let Some(o) = self.sessions.get_mut(&old) {
                    o.moved_to = Some(sid);
                    carried = o.carried;
                    add_counters(&mut carried, &o.counters);
                }
                let (peer_tunnel, peer_session) = (
                    self.peer_id(tid),
                    self.sessions.get(&sid).map_or(0, |s| s.peer_id),
                );
                if let Some(n) = self.sessions.get_mut(&sid) {
                    n.carried = carried;
                }
                self.stats.moves_done += 1;
                let from = self.sessions.get(&old).map(|s| s.tunnel);
                tracing::info!(session = sid, from_tunnel = ?from, to_tunnel = tid, "switched call moved");
                self.out.push_back(L2tpOutput::SwitchMoved {
                    from: old,
                    to: sid,
                    tunnel: tid,
                    peer_tunnel,
                    peer_session,
                });
                let why = format!("moved to tunnel {tid}");
                self.close_session_keeping(now, old, result::CDN_ADMIN, &why);
            }
        }
        if let Some(c) = customer {
            self.replan_due.insert(c);
        }
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

/// `a - b`, field by field (counters only grow; a reset worker counts from zero).
pub(super) fn counters_since(a: &L2tpCounters, b: &L2tpCounters) -> L2tpCounters {
    L2tpCounters {
        encap_packets: a.encap_packets.saturating_sub(b.encap_packets),
        encap_bytes: a.encap_bytes.saturating_sub(b.encap_bytes),
        decap_packets: a.decap_packets.saturating_sub(b.decap_packets),
        decap_bytes: a.decap_bytes.saturating_sub(b.decap_bytes),
    }
}

/// Adds `b` into `a`.
pub(super) fn add_counters(a: &mut L2tpCounters, b: &L2tpCounters) {
    a.encap_packets += b.encap_packets;
    a.encap_bytes += b.encap_bytes;
    a.decap_packets += b.decap_packets;
    a.decap_bytes += b.decap_bytes;
}
