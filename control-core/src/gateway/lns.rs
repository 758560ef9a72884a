//! PPP over L2TP at the LNS (issue 15, ACC-6 / TUN-1): one PPP engine
//! ([`crate::ppp::Session`]) per PPP call the L2TP engine connected, glued to logins,
//! pools, the fast path and accounting exactly as a PPPoE session is
//! ([`super::pppoe`]).
//!
//! A call starts from the LAC's proxy LCP and proxy authentication when it sent them
//! and they are acceptable ([`crate::ppp::Session::from_proxy`]), else with a fresh LCP
//! negotiation. PPP control frames of the call are punted by the fast path (L2TP data
//! messages that do not carry IPv4) and go to its engine; what the engine sends goes
//! back as L2TP data messages ([`crate::l2tp::L2tp::ppp_frame`]). PAP/CHAP become a
//! login like a PPPoE subscriber's (local store or RADIUS, NAS-Port-Id `l2tp/TUNNEL/SESSION`);
//! IPCP gives the address (Framed-IP-Address or a pool); when IPCP opens, the
//! subscriber is installed as a gateway session reached through the L2TP session
//! (`Encap::L2tp`): its traffic takes the same subscriber stages as any other (services,
//! NAT, policing, counters, DISC, records). Every end from our side sends LCP
//! Terminate-Request, then the CDN; the LAC's CDN (or the tunnel's end) ends the PPP
//! session at once.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::net::Ipv4Addr;
use std::sync::Arc;

use hashbrown::{HashMap, HashSet};
use tollgate_dataplane::session::{AccessLine, DisconnectCause, Encap, SessionId, SessionUpdate};
use tollgate_dataplane::time::Instant;
use tollgate_dataplane::wire::l2tp::{self as wire_l2tp, subscriber_mac};

use super::Core;
use super::aaa::{AuthAnswer, LoginId};
use super::ppp_link::{Gate, Install, login_request};
use super::pppoe::{Granted, ppp_grant};
use crate::l2tp::call::Call;
use crate::ppp::{self, EndCause};
use crate::radius::attrs::PppoeLine;
use crate::random::{Random, Seed};

/// The IPv6 half's handles of LNS calls ([`super::ipv6`]'s PPP links): this bit set, so
/// that they never meet a PPPoE session's (its session id), and a number per call that
/// stays with it when a Tollgate LAC moves it to another L2TP session (TUN-3).
pub(super) const LNS_HANDLES: u64 = 1 << 31;

/// PPP's protocol number of IPv6 (RFC 5072).
const PPP_IPV6: u16 = 0x0057;

/// How the LNS terminates PPP (the `[pppoe]` section's PPP keys).
#[derive(Clone, Debug)]
pub struct LnsSettings {
    /// PPP: MRU, authentication order, echo keepalive, timers; `local_ipv4` is the
    /// gateway's side of every link.
    pub ppp: ppp::Config,
    /// DNS servers IPCP gives (RFC 1877).
    pub dns: [Option<Ipv4Addr>; 2],
    /// ACC-5: clamp TCP MSS to the session's MTU - 40.
    pub mss_clamp: bool,
    /// Keys the CSPRNG of magic numbers and CHAP challenges.
    pub seed: Seed,
}

/// What the LNS's PPP side counted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LnsStats {
    /// PPP frames punted from L2TP sessions.
    pub frames_received: u64,
    /// PPP frames sent in L2TP data messages.
    pub frames_sent: u64,
    /// IPv6 over PPP punted (RS, NS, DHCPv6 once IPv6CP is open).
    pub frames_received_ipv6: u64,
    /// IPv6 sent over PPP (RAs, NAs, DHCPv6 replies; counted in `frames_sent` too).
    pub frames_sent_ipv6: u64,
    /// Punted frames for no PPP call (or one from another tunnel or peer).
    pub unknown_call: u64,
    /// Punted frames whose L2TP or PPP header does not parse.
    pub malformed: u64,
    /// Calls whose PPP started from the LAC's proxy LCP.
    pub proxy_lcp_accepted: u64,
    /// Calls that renegotiated LCP (no proxy LCP, or not acceptable).
    pub lcp_negotiated: u64,
    /// Authentications accepted.
    pub auth_accepted: u64,
    /// Authentications refused (or unavailable).
    pub auth_rejected: u64,
    /// Calls a Tollgate LAC moved to another tunnel (TUN-3), PPP re-bound without
    /// renegotiation.
    pub moved: u64,
    /// Subscribers installed in the fast path (IPCP opened).
    pub installed: u64,
    /// PPP sessions ended, by [`EndCause`] name.
    pub ended: BTreeMap<&'static str, u64>,
}

/// What `ctl show session` adds for an LNS subscriber (flattened into its answer).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct L2tpCallFields {
    /// Our tunnel id.
    pub l2tp_tunnel: u16,
    /// Our session id.
    pub l2tp_session: u16,
    /// The LAC (address:port) and its Host Name.
    pub lac: String,
    /// NAS-Port-Id (`l2tp/TUNNEL/SESSION`).
    pub nas_port_id: String,
    /// `accepted` when PPP started from the LAC's proxy LCP, `renegotiated` otherwise.
    pub proxy_lcp: String,
    /// IPv6CP's state, or `rejected` while IPv6 is not offered (`[ipv6]` off).
    pub ipv6cp: Option<String>,
    /// The PPP engine's summary line (phase, LCP, authentication, IPCP, MRU, echo).
    pub ppp: String,
}

/// One PPP call: what the L2TP engine said of it and its PPP engine.
#[derive(Debug)]
struct CallLink {
    call: Call,
    ppp: ppp::Session,
    login: Option<LoginId>,
    granted: Option<Granted>,
    session: Option<SessionId>,
    /// IPv6CP is open: the session gets its /64 and RAs over the link once installed.
    ipv6: bool,
    /// Its PPP link's handle for the IPv6 half ([`LNS_HANDLES`]).
    handle: u64,
    /// When the subscriber is installed ([`super::ppp_link`]).
    gate: Gate,
}

/// The LNS's PPP half of the core.
pub(super) struct Lns {
    cfg: Arc<ppp::Config>,
    dns: [Option<Ipv4Addr>; 2],
    mss_clamp: bool,
    calls: HashMap<u16, CallLink>,
    by_login: HashMap<LoginId, u16>,
    by_session: HashMap<SessionId, u16>,
    /// Calls by their IPv6 handle.
    by_handle: HashMap<u64, u16>,
    next_handle: u64,
    pub(super) granted: HashSet<Ipv4Addr>,
    rng: Random,
    stats: LnsStats,
    ppp_drops: [u64; ppp::DropReason::COUNT],
    timers: BinaryHeap<Reverse<(Instant, u16)>>,
}

impl std::fmt::Debug for Lns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Lns({} calls)", self.calls.len())
    }
}

impl Lns {
    /// The LNS's PPP half; `access_mac` is the access port's (its modified EUI-64 is our
    /// IPv6CP Interface-Identifier, so that fe80::<it>, the source of RAs over PPP, is the
    /// gateway's link-local address, as over PPPoE).
    pub(super) fn new(mut s: LnsSettings, access_mac: tollgate_dataplane::MacAddr) -> Lns {
        if s.ppp.ipv6cp && s.ppp.ipv6_interface_id.is_none() {
            s.ppp.ipv6_interface_id = Some(crate::inet::ipv6::interface_id(access_mac.0));
        }
        Lns {
            cfg: Arc::new(s.ppp),
            dns: s.dns,
            mss_clamp: s.mss_clamp,
            calls: HashMap::new(),
            by_login: HashMap::new(),
            by_session: HashMap::new(),
            by_handle: HashMap::new(),
            next_handle: 0,
            granted: HashSet::new(),
            rng: Random::new(&s.seed),
            stats: LnsStats::default(),
            ppp_drops: [0; ppp::DropReason::COUNT],
            timers: BinaryHeap::new(),
        }
    }

    pub(super) fn owns_login(&self, login: LoginId) -> bool {
        self.by_login.contains_key(&login)
    }

    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((t, _))| *t)
    }

    /// A handle no live call has.
    fn new_handle(&mut self) -> u64 {
        loop {
            let h = LNS_HANDLES | (self.next_handle & (LNS_HANDLES - 1));
            self.next_handle = self.next_handle.wrapping_add(1);
            if !self.by_handle.contains_key(&h) {
                return h;
            }
        }
    }

    fn arm(&mut self, id: u16) {
        if let Some(t) = self.calls.get(&id).and_then(|l| l.ppp.poll_timeout()) {
            self.timers.push(Reverse((t, id)));
        }
    }
}

/// NAS-Port-Id of a call: `l2tp/TUNNEL/SESSION` (our ids).
fn nas_port_id(c: &Call) -> String {
    format!("l2tp/{}/{}", c.tunnel, c.session)
}

impl Core {
    /// The L2TP engine connected a PPP call: its PPP engine starts (from the proxy LCP
    /// when acceptable).
    pub(super) fn lns_call(&mut self, now: Instant, call: Call) {
        let Some(l) = self.lns.as_mut() else {
            tracing::warn!(
                session = call.session,
                "PPP call without PPP termination configured"
            );
            return;
        };
        let id = call.session;
        let ppp = match &call.proxy_lcp {
            Some(lcp) => ppp::Session::from_proxy(
                l.cfg.clone(),
                now,
                &mut l.rng,
                lcp,
                call.proxy_auth.as_ref(),
            ),
            None => ppp::Session::new(l.cfg.clone(), now, &mut l.rng),
        };
        if ppp.state().proxy_lcp == ppp::ProxyLcpUse::Accepted {
            l.stats.proxy_lcp_accepted += 1;
        } else {
            l.stats.lcp_negotiated += 1;
        }
        tracing::info!(
            session = id,
            tunnel = call.tunnel,
            lac = %call.peer,
            proxy_lcp = call.proxy_lcp.is_some(),
            proxy_auth = ?call.proxy_auth.as_ref().map(|a| a.kind),
            "PPP call connected"
        );
        let handle = l.new_handle();
        l.by_handle.insert(handle, id);
        l.calls.insert(
            id,
            CallLink {
                call,
                ppp,
                login: None,
                granted: None,
                session: None,
                ipv6: false,
                handle,
                gate: Gate::default(),
            },
        );
        self.lns_drain(now, id);
    }

    /// The L2TP engine moved PPP call `from` to session `to` of tunnel `tunnel` (a
    /// Tollgate LAC's switchover, TUN-3): the PPP session is re-bound as it is (no LCP,
    /// no authentication, same address), its frames go out on `to`, and its subscriber's
    /// downlink takes `to` from the next burst (one session update).
    pub(super) fn lns_call_moved(&mut self, now: Instant, from: u16, to: u16, tunnel: u16) {
        let Some(l) = self.lns.as_mut() else {
            return;
        };
        let Some(mut link) = l.calls.remove(&from) else {
            return;
        };
        link.call.session = to;
        link.call.tunnel = tunnel;
        if let Some(login) = link.login {
            l.by_login.insert(login, to);
        }
        let sid = link.session;
        if let Some(sid) = sid {
            l.by_session.insert(sid, to);
        }
        l.by_handle.insert(link.handle, to);
        l.calls.insert(to, link);
        l.stats.moved += 1;
        l.arm(to);
        tracing::info!(from, to, tunnel, subscriber = ?sid, "PPP call moved to another tunnel; PPP goes on");
        if let Some(sid) = sid {
            let update = SessionUpdate {
                l2tp_session: Some(to),
                ..SessionUpdate::default()
            };
            self.update_session_silently(now, sid, update);
        }
    }

    /// A punted L2TP data message (UDP payload from `src`) carrying PPP control.
    pub(super) fn lns_frame(&mut self, now: Instant, src: Ipv4Addr, msg: &[u8]) {
        let Some(l) = self.lns.as_mut() else {
            return;
        };
        l.stats.frames_received += 1;
        let Ok(h) = wire_l2tp::Packet::new_unchecked(msg).header() else {
            l.stats.malformed += 1;
            return;
        };
        let end = h.length.map_or(msg.len(), |n| n as usize).min(msg.len());
        let Some(ppp_frame) = msg.get(h.payload_at..end) else {
            l.stats.malformed += 1;
            return;
        };
        let Ok((protocol, at)) = wire_l2tp::ppp_protocol(ppp_frame) else {
            l.stats.malformed += 1;
            return;
        };
        // A frame still in flight on the session a call was moved from is the call's.
        let moved = self
            .l2tp
            .as_ref()
            .and_then(|t| t.sessions().get(&h.session))
            .and_then(|s| Some((s.moved_to?, s.tunnel)));
        let (id, tunnel) = match moved {
            Some((to, old_tunnel)) if old_tunnel == h.tunnel => {
                (to, l.calls.get(&to).map_or(0, |c| c.call.tunnel))
            }
            _ => (h.session, h.tunnel),
        };
        let Some(link) = l
            .calls
            .get_mut(&id)
            .filter(|c| c.call.tunnel == tunnel && *c.call.peer.ip() == src)
        else {
            l.stats.unknown_call += 1;
            return;
        };
        // IPv6 the fast path punts (RS, NS, DHCPv6) once IPv6CP is open; before, the
        // engine counts it (`data_in_control`).
        if protocol == PPP_IPV6 && link.ipv6 {
            l.stats.frames_received_ipv6 += 1;
            let handle = link.handle;
            self.on_ppp_ipv6(now, handle, &ppp_frame[at..]);
            return;
        }
        link.ppp
            .handle_input(now, &mut l.rng, protocol, &ppp_frame[at..]);
        self.lns_drain(now, id);
    }

    /// An IPv6 packet from the gateway over the PPP link of handle `handle` (an LNS
    /// call's): an L2TP data message with PPP protocol 0x0057 to its LAC.
    pub(super) fn lns_send_ipv6(&mut self, now: Instant, handle: u64, packet: &[u8]) {
        let Some(&id) = self.lns.as_ref().and_then(|l| l.by_handle.get(&handle)) else {
            return;
        };
        let Some((local, peer, bytes)) = self
            .l2tp
            .as_ref()
            .and_then(|t| t.ppp_frame(id, PPP_IPV6, packet))
        else {
            return;
        };
        if let Some(l) = self.lns.as_mut() {
            l.stats.frames_sent += 1;
            l.stats.frames_sent_ipv6 += 1;
        }
        self.send_udp(now, local, peer, &bytes);
    }

    /// Sends what call `id`'s PPP engine queued, as L2TP data messages.
    fn lns_send_queued(&mut self, now: Instant, id: u16) {
        let Some(link) = self.lns.as_mut().and_then(|l| l.calls.get_mut(&id)) else {
            return;
        };
        let frames: Vec<ppp::Transmit> = std::iter::from_fn(|| link.ppp.poll_transmit()).collect();
        self.lns_send(now, id, frames);
    }

    fn lns_send(&mut self, now: Instant, id: u16, frames: Vec<ppp::Transmit>) {
        for t in frames {
            let Some((local, peer, bytes)) = self
                .l2tp
                .as_ref()
                .and_then(|l| l.ppp_frame(id, t.protocol, &t.packet))
            else {
                continue;
            };
            if let Some(l) = self.lns.as_mut() {
                l.stats.frames_sent += 1;
            }
            self.send_udp(now, local, peer, &bytes);
        }
    }

    /// Sends what call `id` queued and acts on its events until it is quiet.
    fn lns_drain(&mut self, now: Instant, id: u16) {
        loop {
            self.lns_send_queued(now, id);
            let Some(l) = self.lns.as_mut() else {
                return;
            };
            let Some(link) = l.calls.get_mut(&id) else {
                return;
            };
            let events: Vec<ppp::Event> = std::iter::from_fn(|| link.ppp.poll_event()).collect();
            if events.is_empty() {
                l.arm(id);
                return;
            }
            for e in events {
                self.lns_event(now, id, e);
            }
        }
    }

    fn lns_event(&mut self, now: Instant, id: u16, e: ppp::Event) {
        match e {
            ppp::Event::Authenticate(req) => self.lns_login(now, id, req),
            ppp::Event::Ipv4Up { .. } => self.lns_ncp_up(now, id),
            ppp::Event::Finished { cause } => self.lns_teardown(now, id, cause, None),
            ppp::Event::Ipv6Up { .. } => {
                let Some(link) = self.lns.as_mut().and_then(|l| l.calls.get_mut(&id)) else {
                    return;
                };
                link.ipv6 = true;
                match link.session {
                    Some(sid) => self.lns_ipv6_up(now, id, sid),
                    None => self.lns_ncp_up(now, id),
                }
            }
            // The /64 stays with the session until it ends (IPv6CP may open again).
            ppp::Event::Ipv6Down => {
                if let Some(link) = self.lns.as_mut().and_then(|l| l.calls.get_mut(&id)) {
                    link.ipv6 = false;
                }
            }
            ppp::Event::LinkUp { .. } | ppp::Event::Ipv4Down => {}
        }
    }

    /// Call `id` (gateway session `sid`) has IPv6CP open and is installed: its /64 (and
    /// DHCPv6) and RAs over the link, as a PPPoE session's.
    fn lns_ipv6_up(&mut self, now: Instant, id: u16, sid: SessionId) {
        let Some(handle) = self
            .lns
            .as_ref()
            .and_then(|l| l.calls.get(&id))
            .map(|c| c.handle)
        else {
            return;
        };
        let Some(o) = self.sessions.get(sid) else {
            return;
        };
        let (worker, vlans) = (o.worker, o.spec.access.vlans.key());
        self.ipv6_ppp_opened(now, sid, worker, vlans, handle);
    }

    fn lns_login(&mut self, now: Instant, id: u16, req: ppp::AuthRequest) {
        let Some(link) = self.lns.as_ref().and_then(|l| l.calls.get(&id)) else {
            return;
        };
        let line = PppoeLine {
            nas_port_id: nas_port_id(&link.call),
            circuit_id: link.call.calling_number.clone().map(String::into_bytes),
            remote_id: None,
            ipoe: false,
        };
        let login = login_request(&req, subscriber_mac(id), line);
        match self.login(now, login) {
            Ok(login) => {
                if let Some(l) = self.lns.as_mut() {
                    l.by_login.insert(login, id);
                    if let Some(link) = l.calls.get_mut(&id) {
                        link.login = Some(login);
                    }
                }
            }
            Err(e) => {
                tracing::info!(session = id, error = %e, "PPP login over L2TP not started");
                if let Some(l) = self.lns.as_mut()
                    && let Some(link) = l.calls.get_mut(&id)
                {
                    let _ = link.ppp.reject(now, &mut l.rng, &e);
                }
            }
        }
    }

    /// The authentication answer of a login of an LNS call.
    pub(super) fn lns_auth_answer(&mut self, now: Instant, login: LoginId, answer: AuthAnswer) {
        let Some(id) = self.lns.as_mut().and_then(|l| l.by_login.remove(&login)) else {
            return;
        };
        match answer {
            AuthAnswer::Accept {
                user,
                authorization,
            } => match self.ppp_address(&authorization) {
                Ok((address, pooled)) => {
                    let Some(l) = self.lns.as_mut() else {
                        return;
                    };
                    let Some(link) = l.calls.get_mut(&id) else {
                        if pooled {
                            self.aaa_release(address);
                        }
                        return;
                    };
                    link.login = None;
                    let grant = ppp_grant(address, l.dns, &authorization);
                    if link.ppp.accept(now, &mut l.rng, grant).is_ok() {
                        l.stats.auth_accepted += 1;
                        l.granted.insert(address);
                        tracing::info!(session = id, %user, %address, "PPP login over L2TP accepted");
                        link.granted = Some(Granted {
                            user,
                            authorization: *authorization,
                            address,
                            pooled,
                        });
                        self.aaa_accepted_ppp();
                    } else if pooled {
                        self.aaa_release(address);
                    }
                }
                Err(e) => {
                    tracing::info!(session = id, %user, error = %e, "PPP login over L2TP refused");
                    self.aaa_failed_ppp();
                    self.lns_reject(now, id, &e);
                }
            },
            AuthAnswer::Reject(why) => {
                tracing::info!(session = id, reason = %why, "PPP login over L2TP rejected");
                self.aaa_rejected_ppp(false);
                self.lns_reject(now, id, "authentication failed");
            }
            AuthAnswer::Unavailable(why) => {
                tracing::warn!(session = id, reason = %why, "PPP login over L2TP: authentication unavailable");
                self.aaa_rejected_ppp(true);
                self.lns_reject(now, id, "authentication unavailable");
            }
        }
        self.lns_drain(now, id);
    }

    fn lns_reject(&mut self, now: Instant, id: u16, message: &str) {
        if let Some(l) = self.lns.as_mut()
            && let Some(link) = l.calls.get_mut(&id)
        {
            link.login = None;
            l.stats.auth_rejected += 1;
            let _ = link.ppp.reject(now, &mut l.rng, message);
        }
    }

    /// An NCP of call `id` opened (or its wait ran out): the subscriber is installed
    /// when [`Gate`] says so, else its timer is armed.
    fn lns_ncp_up(&mut self, now: Instant, id: u16) {
        let Some(l) = self.lns.as_mut() else {
            return;
        };
        let Some(link) = l.calls.get_mut(&id) else {
            return;
        };
        if link.granted.is_none() || link.session.is_some() {
            return;
        }
        match link.gate.decide(&link.ppp, now) {
            Install::Now => self.lns_install(now, id),
            Install::At(t) => l.timers.push(Reverse((t, id))),
            Install::NotYet => {}
        }
    }

    /// The NCPs the client asked for are open (or the first, and the wait ran out): the
    /// subscriber goes into the fast path behind its L2TP session and is accounted; if
    /// it cannot, the call ends.
    fn lns_install(&mut self, now: Instant, id: u16) {
        let Some(l) = self.lns.as_mut() else {
            return;
        };
        let mss_clamp = l.mss_clamp;
        let Some(link) = l.calls.get_mut(&id) else {
            return;
        };
        let Some(g) = link.granted.take() else {
            return;
        };
        l.granted.remove(&g.address);
        let mtu = link.ppp.mtu();
        let ipv6 = link.ipv6.then_some(link.handle);
        let address = g.address;
        let access = AccessLine {
            vlans: Default::default(),
            encap: Encap::L2tp { session: id },
            mss_clamp: if mss_clamp { mtu.saturating_sub(40) } else { 0 },
        };
        let line = PppoeLine {
            nas_port_id: nas_port_id(&link.call),
            circuit_id: link.call.calling_number.clone().map(String::into_bytes),
            remote_id: None,
            ipoe: false,
        };
        // The fast path checks what comes out of the session against the address.
        if let Some(t) = self.l2tp.as_mut() {
            t.set_call_address(id, Some(address));
        }
        self.drain_l2tp(now);
        match self.ppp_open_session(now, g, subscriber_mac(id), (access, line), ipv6) {
            Ok(sid) => {
                if let Some(l) = self.lns.as_mut() {
                    l.stats.installed += 1;
                    l.by_session.insert(sid, id);
                    if let Some(c) = l.calls.get_mut(&id) {
                        c.session = Some(sid);
                    }
                }
            }
            Err(e) => {
                tracing::warn!(session = id, error = %e, "PPP subscriber over L2TP not installed");
                self.lns_close(now, id, &e);
            }
        }
    }

    /// Ends call `id` from our side: LCP Terminate-Request, then the CDN.
    fn lns_close(&mut self, now: Instant, id: u16, reason: &str) {
        let Some(l) = self.lns.as_mut() else {
            return;
        };
        let Some(link) = l.calls.get_mut(&id) else {
            return;
        };
        link.ppp.close(now, &mut l.rng, reason);
        self.lns_teardown(now, id, EndCause::Closed(reason.to_string()), None);
    }

    /// Frees call `id`: what its engine still queued (Terminate-Request or Ack) goes out,
    /// then the CDN (unless the L2TP session is already gone); a login in progress is
    /// forgotten, a granted address returned, an installed subscriber removed from the
    /// fast path with `cause` (its record brings the Stop) unless it is already going.
    fn lns_teardown(
        &mut self,
        now: Instant,
        id: u16,
        cause: EndCause,
        already_removed: Option<SessionId>,
    ) {
        self.lns_send_queued(now, id);
        let Some(l) = self.lns.as_mut() else {
            return;
        };
        let Some(link) = l.calls.remove(&id) else {
            return;
        };
        for (d, n) in link.ppp.drops() {
            l.ppp_drops[d as usize] += n;
        }
        *l.stats.ended.entry(cause.name()).or_default() += 1;
        if let Some(login) = link.login {
            l.by_login.remove(&login);
        }
        let reason = match &cause {
            EndCause::Closed(r) => r.clone(),
            c => c.name().to_string(),
        };
        tracing::info!(
            session = id,
            tunnel = link.call.tunnel,
            cause = cause.name(),
            subscriber = ?link.session,
            "PPP call ended"
        );
        if let Some(g) = &link.granted {
            l.granted.remove(&g.address);
        }
        if let Some(sid) = link.session {
            l.by_session.remove(&sid);
        }
        l.by_handle.remove(&link.handle);
        if let Some(t) = self.l2tp.as_mut() {
            t.end_call(now, id, &reason);
        }
        self.drain_l2tp(now);
        if let Some(g) = link.granted
            && g.pooled
        {
            self.aaa_release(g.address);
        }
        if let Some(sid) = link.session
            && already_removed != Some(sid)
            && self.sessions.get(sid).is_some()
        {
            let cause = match cause {
                EndCause::PeerTerminated | EndCause::LowerDown => DisconnectCause::UserRequest,
                _ => DisconnectCause::NasRequest,
            };
            self.end(sid, cause);
        }
    }

    /// The L2TP engine ended call `id` (the LAC's CDN, the tunnel's end, or ours): its PPP
    /// session ends; a Terminate-Request still goes out where the L2TP session is not
    /// gone yet (an operator's `tunnel session remove`).
    pub(super) fn lns_call_ended(&mut self, now: Instant, id: u16, why: &str) {
        let Some(l) = self.lns.as_mut() else {
            return;
        };
        let Some(link) = l.calls.get_mut(&id) else {
            return;
        };
        link.ppp.close(now, &mut l.rng, why);
        self.lns_teardown(now, id, EndCause::LowerDown, None);
    }

    /// A gateway session ended (its final record, or the fast path refused it): if it is
    /// an LNS subscriber's, Terminate-Request and CDN. True when it was one.
    pub(super) fn lns_session_closed(&mut self, now: Instant, sid: SessionId, why: &str) -> bool {
        let Some(id) = self.lns.as_mut().and_then(|l| l.by_session.remove(&sid)) else {
            return false;
        };
        if let Some(l) = self.lns.as_mut()
            && let Some(link) = l.calls.get_mut(&id)
        {
            link.ppp.close(now, &mut l.rng, why);
        }
        self.lns_teardown(now, id, EndCause::Closed(why.to_string()), Some(sid));
        true
    }

    /// The gateway stops: every call gets Terminate-Request and CDN, and its subscriber
    /// is removed (NAS reboot). Returns how many ended.
    pub(super) fn lns_shutdown(&mut self, now: Instant) -> usize {
        let Some(l) = self.lns.as_ref() else {
            return 0;
        };
        let ids: Vec<u16> = l.calls.keys().copied().collect();
        for &id in &ids {
            let Some(l) = self.lns.as_mut() else {
                break;
            };
            let Some(link) = l.calls.get_mut(&id) else {
                continue;
            };
            link.ppp.close(now, &mut l.rng, "gateway shutdown");
            let sid = link.session.take();
            if let Some(sid) = sid {
                l.by_session.remove(&sid);
            }
            self.lns_teardown(now, id, EndCause::Closed("gateway shutdown".into()), None);
            if let Some(sid) = sid
                && self.sessions.get(sid).is_some()
            {
                self.end(sid, DisconnectCause::NasReboot);
            }
        }
        ids.len()
    }

    /// Runs the PPP timers of calls due at `now`.
    pub(super) fn lns_tick(&mut self, now: Instant) {
        let Some(l) = self.lns.as_mut() else {
            return;
        };
        let mut due = Vec::new();
        while let Some(Reverse((t, id))) = l.timers.peek().copied() {
            if t > now {
                break;
            }
            l.timers.pop();
            due.push(id);
        }
        due.sort_unstable();
        due.dedup();
        for id in due {
            if let Some(l) = self.lns.as_mut()
                && let Some(link) = l.calls.get_mut(&id)
                && link.ppp.poll_timeout().is_some_and(|t| t <= now)
            {
                link.ppp.handle_timeout(now, &mut l.rng);
            }
            self.lns_drain(now, id);
            // A subscriber waiting for its other NCP: installed once the wait ran out.
            if self
                .lns
                .as_ref()
                .and_then(|l| l.calls.get(&id))
                .and_then(|c| c.gate.deadline())
                .is_some_and(|t| t <= now)
            {
                self.lns_ncp_up(now, id);
            }
        }
    }

    /// The L2TP call and PPP state of gateway session `sid`, if it is an LNS subscriber.
    pub fn lns_call_fields(&self, sid: SessionId) -> Option<L2tpCallFields> {
        let l = self.lns.as_ref()?;
        let id = l.by_session.get(&sid)?;
        let c = l.calls.get(id)?;
        let p = c.ppp.state();
        Some(L2tpCallFields {
            l2tp_tunnel: c.call.tunnel,
            l2tp_session: c.call.session,
            lac: format!("{} {}", c.call.peer, c.call.peer_host),
            nas_port_id: nas_port_id(&c.call),
            proxy_lcp: match p.proxy_lcp {
                ppp::ProxyLcpUse::Accepted => "accepted".into(),
                _ => "renegotiated".into(),
            },
            ipv6cp: if p.ipv6cp_enabled {
                p.ipv6cp.map(|s| s.to_string())
            } else {
                Some("rejected".to_string())
            },
            ppp: p.to_string(),
        })
    }

    /// What the LNS's PPP side counted (`None` without L2TP PPP termination).
    pub fn lns_stats(&self) -> Option<&LnsStats> {
        self.lns.as_ref().map(|l| &l.stats)
    }

    /// The PPP summary of every call, by our L2TP session id, with its subscriber.
    pub fn lns_calls(&self) -> Vec<(u16, ppp::Summary, Option<SessionId>)> {
        let Some(l) = self.lns.as_ref() else {
            return Vec::new();
        };
        let mut v: Vec<_> = l
            .calls
            .iter()
            .map(|(id, c)| (*id, c.ppp.state(), c.session))
            .collect();
        v.sort_by_key(|c| c.0);
        v
    }

    /// Every LNS counter by name (`lns_*`, `lns_ppp_drop_*`, `lns_ended_*`), for `show
    /// counters` and the metrics.
    pub fn lns_counters(&self) -> Vec<(String, u64)> {
        let Some(l) = self.lns.as_ref() else {
            return Vec::new();
        };
        let s = &l.stats;
        let mut out: Vec<(String, u64)> = [
            ("lns_ppp_frames_received", s.frames_received),
            ("lns_ppp_frames_sent", s.frames_sent),
            ("lns_ppp_ipv6_frames", s.frames_received_ipv6),
            ("lns_ppp_ipv6_frames_sent", s.frames_sent_ipv6),
            ("lns_unknown_call", s.unknown_call),
            ("lns_malformed", s.malformed),
            ("lns_proxy_lcp_accepted", s.proxy_lcp_accepted),
            ("lns_lcp_negotiated", s.lcp_negotiated),
            ("lns_auth_accepted", s.auth_accepted),
            ("lns_auth_rejected", s.auth_rejected),
            ("lns_calls_moved", s.moved),
            ("lns_sessions_installed", s.installed),
            ("lns_calls_open", l.calls.len() as u64),
        ]
        .into_iter()
        .map(|(n, v)| (n.to_string(), v))
        .collect();
        let mut ppp = l.ppp_drops;
        for c in l.calls.values() {
            for (d, n) in c.ppp.drops() {
                ppp[d as usize] += n;
            }
        }
        for d in ppp::DropReason::ALL {
            out.push((format!("lns_ppp_drop_{}", d.name()), ppp[d as usize]));
        }
        for (c, n) in &s.ended {
            out.push((format!("lns_ended_{c}"), *n));
        }
        out
    }
}
