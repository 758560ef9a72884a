//! PPPoE subscribers switched into L2TP tunnels (LAC, ACC-6, issue 15): the glue between
//! the PPPoE sessions ([`super::pppoe`]) and the L2TP engine's switched calls
//! ([`crate::l2tp::lac`]).
//!
//! When a PPPoE subscriber's PAP or CHAP credentials arrive and its user name's realm
//! (`user@isp.example`) matches a `[[l2tp.lac_realm]]`, its PPP engine hands the link off
//! ([`crate::ppp::Session::hand_off`]: proxy LCP and proxy authentication) instead of a
//! login, and the L2TP engine places a call to the realm's LNS of lowest preference.
//! A login whose RADIUS Access-Accept carries tunnel attributes (RFC 2868) is handed off
//! the same way, to those tunnels; when its Tunnel-Assignment-Id names a
//! `[[l2tp.customer]]`, the call goes into that customer's tunnels of the administration
//! table, as a realm with a customer places it (consolidated, moved with PPP up).
//! A tunnel or call that fails before it is up moves the call to the next LNS; when none
//! is left the PPPoE session ends with PADT. Once up, the fast path switches the PPP
//! frames both ways; the LNS negotiates authentication and IPCP with the client. Every
//! end from the PPPoE side (PADT, shutdown, an operator) sends the CDN; the LNS's CDN
//! (or its tunnel's end) ends the PPPoE session with PADT.
//!
//! A switched subscriber is accounted like any session ([`Output::Account`]): a Start
//! when its call is up, Interim-Updates at the usual interval, a Stop when it ends, with
//! the fast path's counters of its call (IPv4 payloads, IP total length, as of the last
//! `l2tp.sample_interval` sample), its PPPoE line and its tunnel (RFC 2867).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::net::SocketAddrV4;

use hashbrown::HashMap;
use tollgate_dataplane::l2tp::{L2tpCounters, PppoeLeg};
use tollgate_dataplane::time::Instant;

use super::{Core, Output};
use crate::authz::Authorization;
use crate::l2tp::lac::{LnsChoice, SwitchedCall};
use crate::radius::attrs::{AcctRecord, AcctTunnel, Counters, PppoeLine};
use crate::radius::dict::{AcctStatusType, DisconnectCause};

/// What the LAC counted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LacStats {
    /// PPPoE subscribers handed off to an LNS.
    pub handed_off: u64,
    /// Calls up (ICCN acknowledged).
    pub calls_up: u64,
    /// Calls moved to the next LNS after a failure before they were up.
    pub failovers: u64,
    /// Subscribers no LNS took (every choice failed): ended with PADT.
    pub no_lns: u64,
    /// Hand-offs refused by the PPP engine (credentials not pending).
    pub hand_off_refused: u64,
    /// Subscribers switched by RADIUS tunnel attributes (not a realm rule).
    pub radius_tunnels: u64,
    /// Calls moved to another tunnel by consolidation (TUN-3), PPP staying up.
    pub moved: u64,
    /// Calls ended, by who ended them.
    pub ended: BTreeMap<&'static str, u64>,
}

/// One switched subscriber.
#[derive(Debug)]
struct LacCall {
    /// Its PPPoE session id.
    pppoe: u16,
    /// Its user name.
    user: String,
    /// The LNS it is placed on now.
    lns: LnsChoice,
    /// The LNSes left to try, in order.
    left: Vec<LnsChoice>,
    /// What goes into the ICCN.
    call: SwitchedCall,
    /// When it was handed off.
    started: Instant,
    /// When its call came up.
    up_since: Option<Instant>,
    /// The LNS's Host Name and its tunnel and session ids, once up.
    lns_host: String,
    peer_ids: (u16, u16),
    /// Its PPPoE line (NAS-Port-Id, TR-101 ids), for accounting.
    line: PppoeLine,
    /// Its accounting, once its Start went out.
    acct: Option<LacAcct>,
    /// Acct-Interim-Interval of its Access-Accept (RADIUS tunnels), else `[aaa]`'s.
    interim: Option<std::time::Duration>,
    /// A realm with a customer: the customer and the service level its administration
    /// table places the call with (TUN-2..5); `lns` is then the LNS it came up on.
    placed: Option<(String, u64)>,
}

/// A switched subscriber's accounting.
#[derive(Debug, Clone)]
struct LacAcct {
    /// Acct-Session-Id.
    id: String,
    /// Its tunnel's attributes.
    tunnel: AcctTunnel,
    /// Interim-Update interval.
    interim: Option<std::time::Duration>,
}

/// The LAC's switched calls, by our L2TP session id.
#[derive(Debug, Default)]
pub(super) struct Lac {
    calls: HashMap<u16, LacCall>,
    by_pppoe: HashMap<u16, u16>,
    stats: LacStats,
    /// Interim-Updates due: (when, our L2TP session id).
    interims: BinaryHeap<Reverse<(Instant, u16)>>,
}

/// What `ctl show lac` says of a switched subscriber.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LacCallView {
    /// The user name.
    pub user: String,
    /// Its PPPoE session id.
    pub pppoe_session: u16,
    /// The client's MAC.
    pub mac: String,
    /// Our L2TP tunnel and session ids.
    pub l2tp_tunnel: u16,
    /// Our session id.
    pub l2tp_session: u16,
    /// The LNS's tunnel and session ids (0 until up).
    pub lns_tunnel: u16,
    /// The LNS's session id.
    pub lns_session: u16,
    /// The LNS (address:port and Host Name).
    pub lns: String,
    /// Tunnel-Assignment-Id.
    pub assignment: String,
    /// `connecting` or `established`.
    pub state: String,
    /// Seconds since the hand-off.
    pub age_s: u64,
    /// IPv4 packets and bytes (IP total length) from the subscriber, switched to the LNS.
    pub tx_packets: u64,
    /// Bytes of those.
    pub tx_bytes: u64,
    /// IPv4 packets and bytes from the LNS, switched to the subscriber.
    pub rx_packets: u64,
    /// Bytes of those.
    pub rx_bytes: u64,
}

impl Core {
    /// The LNSes for `user`, by preference, when a realm rule names its realm, and the
    /// customer and level when the rule places its calls by the administration table.
    #[allow(clippy::type_complexity)]
    fn lac_route(&self, user: &str) -> Option<(Vec<LnsChoice>, Option<(String, u64)>)> {
        let l = self.l2tp.as_ref()?;
        let rule = l.settings().lac_realms.iter().find(|r| r.matches(user))?;
        let mut lns = rule.lns.clone();
        lns.sort_by_key(|c| c.preference);
        let placed = rule.customer.clone().map(|c| (c, rule.level));
        Some((lns, placed))
    }

    /// PPPoE session `id`'s credentials arrived: when its realm is switched, its PPP is
    /// handed off to an LNS and true is returned (no login).
    pub(super) fn lac_switch(&mut self, now: Instant, id: u16, user: &str) -> bool {
        let Some((choices, placed)) = self.lac_route(user) else {
            return false;
        };
        self.lac_hand_off(now, id, user, choices, None, placed)
    }

    /// PPPoE session `id`'s login was accepted with RADIUS tunnel attributes (RFC 2868):
    /// its PPP is handed off to those LNSes (true), unless L2TP is off. A
    /// Tunnel-Assignment-Id that names a `[[l2tp.customer]]` (whose lines lead to the
    /// tunnel's Server-Endpoint) places the call in that customer's tunnels, as a realm
    /// with that customer does ([`Core::lac_radius_customer`]).
    pub(super) fn lac_switch_tunnels(
        &mut self,
        now: Instant,
        id: u16,
        user: &str,
        authorization: &Authorization,
    ) -> bool {
        if self.l2tp.is_none() {
            return false;
        }
        let choices: Vec<LnsChoice> = authorization
            .tunnels
            .iter()
            .filter_map(|t| {
                let server = t.server?;
                Some(LnsChoice {
                    peer: SocketAddrV4::new(server, 1701),
                    assignment: t.assignment.clone().unwrap_or_else(|| server.to_string()),
                    preference: t.preference.unwrap_or(u32::MAX),
                    secret: t.password.clone(),
                })
            })
            .collect();
        if choices.is_empty() {
            return false;
        }
        self.lac.stats.radius_tunnels += 1;
        // As for a gateway session: at least 10 s, 0 none given.
        let interim = authorization
            .interim_interval_s
            .filter(|s| *s > 0)
            .map(|s| std::time::Duration::from_secs(s.max(10) as u64));
        if let Some(placed) = self.lac_radius_customer(id, &choices) {
            // The customer's lines name its LNSes and their order: no other choice.
            return self.lac_hand_off(now, id, user, Vec::new(), interim, Some(placed));
        }
        self.lac_hand_off(now, id, user, choices, interim, None)
    }

    /// The customer of the administration table that RADIUS tunnel attributes name, with
    /// the service level its calls are placed with (the lowest `[l2tp.levels]` step, else
    /// 1 Mbit/s, as a realm's default): the first tunnel by preference whose
    /// Tunnel-Assignment-Id is a `[[l2tp.customer]]`'s name and whose
    /// Tunnel-Server-Endpoint is an LNS of one of that customer's lines. An Assignment-Id
    /// that names a customer whose lines do not lead to the endpoint is said at WARN and
    /// names none (the call goes where RADIUS said, in a plain tunnel).
    fn lac_radius_customer(&self, pppoe: u16, choices: &[LnsChoice]) -> Option<(String, u64)> {
        let s = self.l2tp.as_ref()?.settings();
        choices.iter().find_map(|choice| {
            let c = s.customers.iter().find(|c| c.name == choice.assignment)?;
            let leads_there = s.lines.iter().enumerate().any(|(i, line)| {
                (c.lines.is_empty() || c.lines.contains(&i))
                    && std::iter::once(SocketAddrV4::new(line.peer, line.peer_port))
                        .chain(line.fallback.iter().copied())
                        .any(|lns| *lns.ip() == *choice.peer.ip())
            });
            if !leads_there {
                tracing::warn!(pppoe_session = pppoe, customer = %c.name, lns = %choice.peer, "Tunnel-Assignment-Id names a customer whose lines do not lead to the Tunnel-Server-Endpoint: a plain tunnel, not the administration table");
                return None;
            }
            let level = s.ladder.steps.first().copied().unwrap_or(1_000_000);
            Some((c.name.clone(), level))
        })
    }

    /// Hands PPPoE session `id`'s PPP off to `choices` (in order).
    fn lac_hand_off(
        &mut self,
        now: Instant,
        id: u16,
        user: &str,
        choices: Vec<LnsChoice>,
        interim: Option<std::time::Duration>,
        placed: Option<(String, u64)>,
    ) -> bool {
        let Some((proxy, leg, line)) = self.pppoe_hand_off(id) else {
            self.lac.stats.hand_off_refused += 1;
            return false;
        };
        self.lac.stats.handed_off += 1;
        tracing::info!(pppoe_session = id, %user, "PPP handed off to an LNS (LAC)");
        let mut left = choices.into_iter();
        let first = match (&placed, left.next()) {
            (_, Some(first)) => first,
            // The customer's lines name the LNS; known once the call is up.
            (Some((customer, _)), None) => LnsChoice {
                peer: SocketAddrV4::new(std::net::Ipv4Addr::UNSPECIFIED, 1701),
                assignment: customer.clone(),
                preference: 0,
                // The customer's tunnels are the administration table's: `l2tp.secret`.
                secret: None,
            },
            (None, None) => return false,
        };
        let call = LacCall {
            pppoe: id,
            user: user.to_string(),
            lns: first,
            left: left.collect(),
            call: SwitchedCall {
                pppoe: leg,
                proxy,
                calling_number: line.nas_port_id.clone(),
                speed: 1_000_000_000,
                circuit_id: line.circuit_id.clone(),
                remote_id: line.remote_id.clone(),
            },
            started: now,
            up_since: None,
            lns_host: String::new(),
            peer_ids: (0, 0),
            line,
            acct: None,
            interim,
            placed,
        };
        self.lac_dial(now, call);
        true
    }

    /// Places `call` on its LNS, or the next that takes it; none left: PADT.
    fn lac_dial(&mut self, now: Instant, mut call: LacCall) {
        loop {
            let placed = match (self.l2tp.as_mut(), &call.placed) {
                (Some(l), Some((customer, level))) => {
                    l.switch_call_placed(now, customer, *level, call.call.clone())
                }
                (Some(l), None) => l.switch_call(now, &call.lns, call.call.clone()),
                (None, _) => Err("L2TP is off".into()),
            };
            match placed {
                Ok(sid) => {
                    self.lac.by_pppoe.insert(call.pppoe, sid);
                    self.lac.calls.insert(sid, call);
                    self.drain_l2tp(now);
                    return;
                }
                Err(e) => {
                    tracing::warn!(pppoe_session = call.pppoe, lns = %call.lns.peer, error = %e, "LNS not reachable for a switched call");
                    if call.left.is_empty() || call.placed.is_some() {
                        break;
                    }
                    self.lac.stats.failovers += 1;
                    call.lns = call.left.remove(0);
                }
            }
        }
        self.lac.stats.no_lns += 1;
        self.lac.by_pppoe.remove(&call.pppoe);
        self.pppoe_end_switched(now, call.pppoe, "no LNS took the call");
    }

    /// The L2TP engine says switched call `session` is up.
    pub(super) fn lac_up(
        &mut self,
        now: Instant,
        session: u16,
        peer_ids: (u16, u16),
        host: String,
        lns: SocketAddrV4,
    ) {
        if let Some(c) = self.lac.calls.get_mut(&session) {
            c.up_since = Some(now);
            c.peer_ids = peer_ids;
            c.lns_host = host;
            c.lns.peer = lns;
            self.lac.stats.calls_up += 1;
            tracing::info!(session, pppoe_session = c.pppoe, user = %c.user, lns = %c.lns.peer, "switched call up");
        } else {
            return;
        }
        self.lac_acct_start(now, session, peer_ids);
    }

    /// The L2TP engine moved switched call `from` to session `to` (consolidation, TUN-3):
    /// it is known by `to` from now on; its accounting goes on (same Acct-Session-Id,
    /// counters carried over), naming the new tunnel.
    pub(super) fn lac_moved(
        &mut self,
        now: Instant,
        from: u16,
        to: u16,
        tunnel: u16,
        peer_ids: (u16, u16),
    ) {
        let Some(mut c) = self.lac.calls.remove(&from) else {
            return;
        };
        c.peer_ids = peer_ids;
        if let Some(a) = c.acct.as_mut() {
            a.tunnel.connection = format!("{tunnel}/{to}-{}/{}", peer_ids.0, peer_ids.1);
            if let (Some(i), Some(start)) = (a.interim, c.up_since) {
                let n = now.since(start).as_nanos() / i.as_nanos() + 1;
                self.lac.interims.push(Reverse((start + i * n as u32, to)));
            }
        }
        self.lac.by_pppoe.insert(c.pppoe, to);
        tracing::info!(from, to, tunnel, pppoe_session = c.pppoe, user = %c.user, "switched call moved to another tunnel");
        // A call not up yet was re-keyed by a failover to its line's next LNS: no move.
        if c.up_since.is_some() {
            self.lac.stats.moved += 1;
        }
        self.lac.calls.insert(to, c);
    }

    /// Switched call `session` is up: its accounting starts (Start, first interim armed).
    fn lac_acct_start(&mut self, now: Instant, session: u16, peer_ids: (u16, u16)) {
        let id = self.aaa_new_acct_id();
        let default_interim = self.aaa_interim();
        let (tunnel, local, host) = self
            .l2tp
            .as_ref()
            .map(|l| {
                let tid = l.sessions().get(&session).map_or(0, |s| s.tunnel);
                let local = l.tunnels().get(&tid).map(|t| t.local);
                (tid, local, l.settings().host_name.clone())
            })
            .unwrap_or_default();
        let Some(c) = self.lac.calls.get_mut(&session) else {
            return;
        };
        let some = |s: &str| Some(s.to_string()).filter(|s| !s.is_empty());
        let interim = c.interim.or(default_interim);
        c.acct = Some(LacAcct {
            id,
            tunnel: AcctTunnel {
                connection: format!("{tunnel}/{session}-{}/{}", peer_ids.0, peer_ids.1),
                client_endpoint: local.filter(|a| !a.is_unspecified()),
                server_endpoint: Some(*c.lns.peer.ip()),
                assignment: some(&c.lns.assignment),
                client_auth_id: some(&host),
                server_auth_id: some(&c.lns_host),
            },
            interim,
        });
        if let Some(i) = interim {
            self.lac.interims.push(Reverse((now + i, session)));
        }
        self.lac_account(now, session, AcctStatusType::Start, None, None);
    }

    /// Sends switched call `session`'s record of `status`, with `counters` (else those of
    /// the engine's last sample).
    fn lac_account(
        &mut self,
        now: Instant,
        session: u16,
        status: AcctStatusType,
        counters: Option<L2tpCounters>,
        cause: Option<DisconnectCause>,
    ) {
        let n = counters.unwrap_or_else(|| self.lac_sample(session));
        let event_time = (self.clock.unix_ns(now).max(0) / 1_000_000_000) as u64;
        let Some(c) = self.lac.calls.get(&session) else {
            return;
        };
        if let Some(r) = lac_record(c, status, now, n, cause, event_time) {
            self.out.push_back(Output::Account(r));
        }
    }

    /// Switched call `session`'s counters at the engine's last sample.
    fn lac_sample(&self, session: u16) -> L2tpCounters {
        self.l2tp
            .as_ref()
            .map_or(L2tpCounters::default(), |l| l.call_counters(session))
    }

    /// When the next Interim-Update of a switched call is due.
    pub(super) fn lac_poll_timeout(&self) -> Option<Instant> {
        self.lac.interims.peek().map(|Reverse((at, _))| *at)
    }

    /// Sends the Interim-Updates due at `now` and arms the next ones (at the next
    /// multiple of the interval from the call's start).
    pub(super) fn lac_tick(&mut self, now: Instant) {
        while let Some(Reverse((at, session))) = self.lac.interims.peek().copied() {
            if at > now {
                break;
            }
            self.lac.interims.pop();
            let Some((start, i)) = self.lac.calls.get(&session).and_then(|c| {
                let i = c.acct.as_ref()?.interim?;
                Some((c.up_since?, i))
            }) else {
                continue;
            };
            self.lac_account(now, session, AcctStatusType::InterimUpdate, None, None);
            let n = now.since(start).as_nanos() / i.as_nanos() + 1;
            self.lac
                .interims
                .push(Reverse((start + i * n as u32, session)));
        }
    }

    /// The L2TP engine says switched call `session` ended (or failed before it was up):
    /// the next LNS, or PADT.
    pub(super) fn lac_ended(
        &mut self,
        now: Instant,
        session: u16,
        was_up: bool,
        why: &str,
        counters: L2tpCounters,
    ) {
        // The LNS (or the tunnel's end) ended it: the subscriber's own end, as far as
        // we know (a client's Terminate-Request reaches the LNS, not us); or an operator
        // (`tunnel session remove`).
        let cause = if why == crate::l2tp::REMOVED_BY_OPERATOR {
            DisconnectCause::Admin
        } else {
            DisconnectCause::Logout
        };
        self.lac_account(
            now,
            session,
            AcctStatusType::Stop,
            Some(counters),
            Some(cause),
        );
        let Some(mut call) = self.lac.calls.remove(&session) else {
            return;
        };
        self.lac.by_pppoe.remove(&call.pppoe);
        if !was_up && !call.left.is_empty() {
            self.lac.stats.failovers += 1;
            tracing::info!(pppoe_session = call.pppoe, lns = %call.lns.peer, reason = why, "switched call failed; trying the next LNS");
            call.lns = call.left.remove(0);
            self.lac_dial(now, call);
            return;
        }
        if !was_up {
            self.lac.stats.no_lns += 1;
        }
        *self.lac.stats.ended.entry("by_lns").or_default() += 1;
        tracing::info!(pppoe_session = call.pppoe, user = %call.user, reason = why, "switched call ended by the LNS side");
        self.pppoe_end_switched(now, call.pppoe, why);
    }

    /// PPPoE session `id` ends (PADT, shutdown, an operator): its switched call, if it
    /// has one, ends with a CDN.
    pub(super) fn lac_pppoe_ended(
        &mut self,
        now: Instant,
        id: u16,
        why: &str,
        cause: DisconnectCause,
    ) {
        let Some(sid) = self.lac.by_pppoe.remove(&id) else {
            return;
        };
        self.lac_account(now, sid, AcctStatusType::Stop, None, Some(cause));
        self.lac.calls.remove(&sid);
        *self.lac.stats.ended.entry("here").or_default() += 1;
        if let Some(l) = self.l2tp.as_mut() {
            l.end_switched(now, sid, why);
        }
        self.drain_l2tp(now);
    }

    /// True when PPPoE session `id` is switched to an LNS.
    pub(super) fn lac_owns(&self, id: u16) -> bool {
        self.lac.by_pppoe.contains_key(&id)
    }

    /// What the LAC counted.
    pub fn lac_stats(&self) -> &LacStats {
        &self.lac.stats
    }

    /// Every LAC counter by name (`lac_*`), for `show counters` and the metrics.
    pub fn lac_counters(&self) -> Vec<(String, u64)> {
        let s = &self.lac.stats;
        let mut out: Vec<(String, u64)> = [
            ("lac_handed_off", s.handed_off),
            ("lac_calls_up", s.calls_up),
            ("lac_failovers", s.failovers),
            ("lac_no_lns", s.no_lns),
            ("lac_hand_off_refused", s.hand_off_refused),
            ("lac_radius_tunnels", s.radius_tunnels),
            ("lac_moved", s.moved),
            ("lac_calls_open", self.lac.calls.len() as u64),
        ]
        .into_iter()
        .map(|(n, v)| (n.to_string(), v))
        .collect();
        for (c, n) in &s.ended {
            out.push((format!("lac_ended_{c}"), *n));
        }
        out
    }

    /// Every switched subscriber, by our L2TP session id, with the counters of the last
    /// sample (`l2tp.sample_interval`).
    pub fn lac_calls(&self, now: Instant) -> Vec<LacCallView> {
        let mut v: Vec<LacCallView> = self
            .lac
            .calls
            .iter()
            .map(|(sid, c)| {
                let (tunnel, counters) = self
                    .l2tp
                    .as_ref()
                    .and_then(|l| Some((l.sessions().get(sid)?.tunnel, l.call_counters(*sid))))
                    .unwrap_or_default();
                lac_view(*sid, tunnel, c, counters, now)
            })
            .collect();
        v.sort_by_key(|c| c.l2tp_session);
        v
    }

    /// The switched subscriber `key` names: its user name or `lac/L2TP-SESSION`.
    pub fn lac_find(&self, key: &str, now: Instant) -> Option<LacCallView> {
        let by_id = key.strip_prefix("lac/").and_then(|k| k.parse::<u16>().ok());
        self.lac_calls(now)
            .into_iter()
            .find(|c| Some(c.l2tp_session) == by_id || c.user == key)
    }

    /// The PPPoE leg of a switched subscriber as the fast path sees it (tests).
    pub fn lac_leg(&self, session: u16) -> Option<PppoeLeg> {
        self.lac.calls.get(&session).map(|c| c.call.pppoe)
    }

    /// The LNS a switched call is placed on now (tests, ctl).
    pub fn lac_lns(&self, session: u16) -> Option<SocketAddrV4> {
        self.lac.calls.get(&session).map(|c| c.lns.peer)
    }
}

fn lac_view(sid: u16, tunnel: u16, c: &LacCall, n: L2tpCounters, now: Instant) -> LacCallView {
    LacCallView {
        user: c.user.clone(),
        pppoe_session: c.pppoe,
        mac: c.call.pppoe.client.to_string(),
        l2tp_tunnel: tunnel,
        l2tp_session: sid,
        lns_tunnel: c.peer_ids.0,
        lns_session: c.peer_ids.1,
        lns: format!("{} {}", c.lns.peer, c.lns_host),
        assignment: c.lns.assignment.clone(),
        state: if c.up_since.is_some() {
            "established".into()
        } else {
            "connecting".into()
        },
        age_s: now.since(c.started).as_secs(),
        tx_packets: n.encap_packets,
        tx_bytes: n.encap_bytes,
        rx_packets: n.decap_packets,
        rx_bytes: n.decap_bytes,
    }
}

/// Call `c`'s accounting record of `status` (none before its Start): counters from the
/// subscriber's side (what it sent went into the tunnel).
fn lac_record(
    c: &LacCall,
    status: AcctStatusType,
    now: Instant,
    n: L2tpCounters,
    cause: Option<DisconnectCause>,
    event_time: u64,
) -> Option<AcctRecord> {
    let a = c.acct.as_ref()?;
    let start = c.up_since.unwrap_or(c.started);
    Some(AcctRecord {
        status,
        session_id: a.id.clone(),
        user_name: c.user.clone(),
        framed_ip: None,
        calling_station_id: Some(c.call.pppoe.client.to_string()),
        class: Vec::new(),
        counters: if status == AcctStatusType::Start {
            Counters::default()
        } else {
            Counters {
                octets_up: n.encap_bytes,
                octets_down: n.decap_bytes,
                packets_up: n.encap_packets,
                packets_down: n.decap_packets,
            }
        },
        session_time_s: now.since(start).as_secs().min(u32::MAX as u64) as u32,
        cause,
        event_time,
        access: Some(c.line.clone()),
        ipv6: None,
        tunnel: Some(a.tunnel.clone()),
    })
}
