//! PPPoE subscribers in the core (ACC-1, ACC-2): the discovery engine
//! ([`crate::pppoe::Discovery`]) and one PPP engine ([`crate::ppp::Session`]) per PPPoE
//! session, glued to logins, pools, the fast path and accounting.
//!
//! Punted discovery frames (0x8863) go to the discovery engine on the line they came on
//! (access port + VLANs); a PADS starts a PPP engine. Punted session frames (0x8864: PPP
//! control, the fast path forwards IPv4) go to the PPP engine of their session id when
//! line and MAC match. PAP/CHAP credentials become a login ([`Output::Authenticate`],
//! with the CHAP exchange and the line for RADIUS); the answer ([`Core::on_auth`]) decides
//! the PPP authentication and gives the address (Framed-IP-Address or a pool) and DNS
//! that IPCP assigns. When IPCP opens, the session is installed like any login's, with
//! its access line (VLANs, PPPoE session id, MSS clamp) and accounted; every end sends
//! LCP Terminate-Request (or Ack) and PADT to the client, frees the PPP and discovery
//! state, and the fast path's final record gives the accounting Stop.
//!
//! Randomness (magic numbers, challenges, the cookie secret, replaced every
//! [`COOKIE_ROTATION`]) comes from the gateway's CSPRNG
//! seeded by the shell; time is the core's `now`. Malformed or misdirected frames are
//! counted by name ([`PppoeDrop`], the engines' own drop counters), never a panic.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use hashbrown::{HashMap, HashSet};
use tollgate_dataplane::session::{AccessLine, DisconnectCause, Encap, SessionId, VlanTag, Vlans};
use tollgate_dataplane::time::Instant;
use tollgate_dataplane::{Frame, MacAddr, Side};

use super::aaa::{AuthAnswer, LoginId};
use super::ppp_link::{Gate, Install, login_request};
use super::sessions::SessionRequest;
use super::{Core, Output};
use crate::authz::Authorization;
use crate::ppp::{self, EndCause, Grant};
use crate::pppoe::wire::{self as pwire, SessionPacket};
use crate::pppoe::{self, Discovery, DiscoveryConfig, Line, SessionInfo};
use crate::radius::attrs::PppoeLine;
use crate::random::{Random, Seed};
use crate::wire::ethernet::{self, Header, Mac, Tag, ethertype};

/// How the gateway terminates PPPoE (`[pppoe]`).
#[derive(Clone, Debug)]
pub struct PppoeSettings {
    /// The discovery stage: AC-Name, Service-Names, PADI rate and session limits.
    pub discovery: DiscoveryConfig,
    /// PPP: MRU, authentication order, echo keepalive, timers. `local_ipv4` is the
    /// gateway's side of every link.
    pub ppp: ppp::Config,
    /// DNS servers IPCP gives (RFC 1877).
    pub dns: [Option<Ipv4Addr>; 2],
    /// ACC-5: clamp TCP MSS to the session's MTU - 40.
    pub mss_clamp: bool,
    /// The access port's name in NAS-Port-Id (`access0.100.200`).
    pub port_name: String,
    /// Keys the CSPRNG of magic numbers, CHAP challenges and the AC-Cookie secret.
    pub seed: Seed,
}

/// PPP's protocol number of IPv6 (RFC 5072).
const PPP_IPV6: u16 = 0x0057;

/// The IPv6 half's handle of PPPoE session `id`'s link.
fn ppp_handle(id: u16) -> u64 {
    u64::from(id)
}

/// What a PPP session ended by the gateway's stop says.
const SHUTDOWN_REASON: &str = "gateway shutdown";

/// Why a punted PPPoE frame was dropped by the core (the engines count their own).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum PppoeDrop {
    /// PPPoE frame while `[pppoe]` is off.
    Disabled,
    /// PPPoE frame from the core side.
    NotAccessSide,
    /// Session frame whose PPPoE header does not parse.
    SessionMalformed,
    /// Session frame for a session id no PPP engine holds.
    UnknownSession,
    /// Session frame from another MAC or line than the session's.
    WrongLine,
    /// A frame to send did not fit the punt/inject frame size.
    TooLong,
    /// An authentication answer for a PPP session that ended meanwhile.
    StaleAnswer,
}

impl PppoeDrop {
    /// Number of reasons.
    pub const COUNT: usize = 7;
    /// All, in counter order.
    pub const ALL: [PppoeDrop; PppoeDrop::COUNT] = [
        PppoeDrop::Disabled,
        PppoeDrop::NotAccessSide,
        PppoeDrop::SessionMalformed,
        PppoeDrop::UnknownSession,
        PppoeDrop::WrongLine,
        PppoeDrop::TooLong,
        PppoeDrop::StaleAnswer,
    ];

    /// The counter's name.
    pub fn name(self) -> &'static str {
        match self {
            PppoeDrop::Disabled => "pppoe_disabled",
            PppoeDrop::NotAccessSide => "pppoe_not_access_side",
            PppoeDrop::SessionMalformed => "pppoe_session_malformed",
            PppoeDrop::UnknownSession => "pppoe_session_unknown_id",
            PppoeDrop::WrongLine => "pppoe_session_wrong_line",
            PppoeDrop::TooLong => "pppoe_frame_too_long",
            PppoeDrop::StaleAnswer => "pppoe_stale_auth_answer",
        }
    }
}

/// What the PPPoE side counted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PppoeStats {
    /// Discovery frames punted.
    pub discovery_frames: u64,
    /// Session (PPP control) frames punted.
    pub session_frames: u64,
    /// Frames sent (discovery and PPP).
    pub frames_sent: u64,
    /// IPv6 over PPP punted (RS, NS, DHCPv6 once IPv6CP is open).
    pub session_frames_ipv6: u64,
    /// IPv6 sent over PPP (RAs, NAs, DHCPv6 replies; counted in `frames_sent` too).
    pub frames_sent_ipv6: u64,
    /// Drops by [`PppoeDrop`].
    pub drops: [u64; PppoeDrop::COUNT],
    /// PPP sessions started (PADS sent).
    pub started: u64,
    /// Authentications accepted / rejected (or unavailable).
    pub auth_accepted: u64,
    /// Authentications refused.
    pub auth_rejected: u64,
    /// Sessions installed in the fast path (IPCP opened).
    pub installed: u64,
    /// AC-Cookie secrets replaced ([`COOKIE_ROTATION`]).
    pub cookie_rotations: u64,
    /// PPP sessions ended, by [`EndCause`] name.
    pub ended: BTreeMap<&'static str, u64>,
}

/// A PPP session's state for `ctl show session`.
#[derive(Clone, Debug)]
pub struct PppView {
    /// The PPPoE session id.
    pub pppoe_session: u16,
    /// The client's MAC.
    pub mac: MacAddr,
    /// The line (port and VLANs).
    pub line: Line,
    /// NAS-Port-Id.
    pub nas_port_id: String,
    /// The PPP engine's summary (phase, LCP/auth/IPCP/IPv6CP states, MRUs, echo).
    pub ppp: ppp::Summary,
    /// The gateway session, once IPCP opened.
    pub session: Option<SessionId>,
}

/// What `ctl show session` adds for a PPP subscriber (flattened into its answer).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PppFields {
    /// The PPPoE session id.
    pub pppoe_session: u16,
    /// The client's MAC.
    pub pppoe_mac: String,
    /// `untagged`, `S` or `S.C`.
    pub vlans: String,
    /// NAS-Port-Id.
    pub nas_port_id: String,
    /// The PPP phase.
    pub ppp_phase: String,
    /// LCP's state.
    pub lcp: String,
    /// `method/state` of the authentication.
    pub auth: String,
    /// IPCP's state, once started.
    pub ipcp: Option<String>,
    /// IPv6CP's state, or `rejected` while IPv6 is not offered.
    pub ipv6cp: Option<String>,
    /// `peer/ours` MRU.
    pub mru: String,
    /// `unanswered/limit` Echo-Requests.
    pub echo: String,
    /// The whole summary line.
    pub ppp: String,
}

impl PppView {
    /// The fields `ctl show session` adds for a PPP subscriber: PPPoE session id, MAC,
    /// VLANs, NAS-Port-Id, the PPP phase, LCP / authentication / IPCP / IPv6CP states,
    /// MRUs, echo, and the whole summary line.
    pub fn fields(&self) -> PppFields {
        let p = &self.ppp;
        let vlans = match (self.line.svlan, self.line.cvlan) {
            (None, _) => "untagged".to_string(),
            (Some(s), None) => s.to_string(),
            (Some(s), Some(c)) => format!("{s}.{c}"),
        };
        let auth = match p.auth_method {
            Some(m) => format!("{}/{}", m.name(), p.auth.name()),
            None => format!("none/{}", p.auth.name()),
        };
        PppFields {
            pppoe_session: self.pppoe_session,
            pppoe_mac: self.mac.to_string(),
            vlans,
            nas_port_id: self.nas_port_id.clone(),
            ppp_phase: p.phase.name().to_string(),
            lcp: p.lcp.to_string(),
            auth,
            ipcp: p.ipcp.map(|s| s.to_string()),
            ipv6cp: if p.ipv6cp_enabled {
                p.ipv6cp.map(|s| s.to_string())
            } else {
                Some("rejected".to_string())
            },
            mru: format!("{}/{}", p.mru.0, p.mru.1),
            echo: format!("{}/{}", p.echo.0, p.echo.1),
            ppp: p.to_string(),
        }
    }
}

/// What an accepted login granted, until IPCP opens and the session is installed.
#[derive(Debug)]
pub(super) struct Granted {
    pub(super) user: String,
    pub(super) authorization: Authorization,
    pub(super) address: Ipv4Addr,
    pub(super) pooled: bool,
}

/// One PPPoE session: its discovery record, VLAN tags as received, its PPP engine.
#[derive(Debug)]
struct Link {
    info: SessionInfo,
    vlans: Vlans,
    ppp: ppp::Session,
    login: Option<LoginId>,
    granted: Option<Granted>,
    session: Option<SessionId>,
    /// IPv6CP is open: the session gets its /64 and RAs over the link once installed.
    ipv6: bool,
    /// When the subscriber is installed ([`super::ppp_link`]).
    gate: Gate,
}

/// The PPPoE half of the core's state.
pub(super) struct Pppoe {
    cfg: Arc<ppp::Config>,
    dns: [Option<Ipv4Addr>; 2],
    mss_clamp: bool,
    port_name: String,
    ac_mac: Mac,
    discovery: Discovery,
    links: HashMap<u16, Link>,
    by_login: HashMap<LoginId, u16>,
    by_session: HashMap<SessionId, u16>,
    granted: HashSet<Ipv4Addr>,
    rng: Random,
    stats: PppoeStats,
    /// PPP drop counters of ended sessions (live ones are added when read).
    ppp_drops: [u64; ppp::DropReason::COUNT],
    /// The VLAN tags of the discovery frame being handled (its answers keep its TPIDs).
    frame_vlans: Vlans,
    /// When PPP sessions want `handle_timeout`: an entry each time a session settles
    /// (stale ones, whose session moved its timer or ended, are skipped when due), so
    /// that neither `poll_timeout` nor `tick` scans every session.
    timers: BinaryHeap<Reverse<(Instant, u16)>>,
    /// When the AC-Cookie secret is next replaced.
    next_rotation: Instant,
    /// How often: [`COOKIE_ROTATION`], or the cookie lifetime if longer, so that a cookie
    /// outlives at most one rotation (discovery keeps the previous secret for it).
    rotation_every: Duration,
}

/// How often the AC-Cookie secret is replaced: a secret that leaked (or was worked out
/// from cookies) is good for minutes, not for the gateway's uptime.
pub const COOKIE_ROTATION: Duration = Duration::from_secs(600);

impl std::fmt::Debug for Pppoe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pppoe({} sessions)", self.links.len())
    }
}

impl Pppoe {
    pub(super) fn new(mut s: PppoeSettings, ac_mac: MacAddr, now: Instant) -> Pppoe {
        // Our IPv6CP Interface-Identifier: the access MAC's modified EUI-64, so that
        // fe80::<it>, the source of RAs over PPP, is the gateway's link-local address.
        if s.ppp.ipv6cp && s.ppp.ipv6_interface_id.is_none() {
            s.ppp.ipv6_interface_id = Some(crate::inet::ipv6::interface_id(ac_mac.0));
        }
        let mut rng = Random::new(&s.seed);
        let mut secret = [0u8; 32];
        rng.fill(&mut secret);
        let rotation_every = COOKIE_ROTATION.max(s.discovery.cookie_lifetime);
        Pppoe {
            cfg: Arc::new(s.ppp),
            dns: s.dns,
            mss_clamp: s.mss_clamp,
            port_name: s.port_name,
            ac_mac: ac_mac.0,
            discovery: Discovery::new(s.discovery, ac_mac.0, secret, now),
            links: HashMap::new(),
            by_login: HashMap::new(),
            by_session: HashMap::new(),
            granted: HashSet::new(),
            rng,
            stats: PppoeStats::default(),
            ppp_drops: [0; ppp::DropReason::COUNT],
            frame_vlans: Vlans::default(),
            timers: BinaryHeap::new(),
            next_rotation: now + rotation_every,
            rotation_every,
        }
    }

    fn drop(&mut self, d: PppoeDrop) {
        self.stats.drops[d as usize] += 1;
    }

    fn pppoe_line(&self, info: &SessionInfo) -> PppoeLine {
        PppoeLine {
            nas_port_id: info.line.nas_port_id(&self.port_name),
            circuit_id: info.line_id.as_ref().and_then(|l| l.circuit_id.clone()),
            remote_id: info.line_id.as_ref().and_then(|l| l.remote_id.clone()),
            ipoe: false,
        }
    }

    /// The earliest timer entry (possibly stale, then `tick` only drops it).
    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        let ppp = self.timers.peek().map(|Reverse((t, _))| *t);
        Some(ppp.map_or(self.next_rotation, |t| t.min(self.next_rotation)))
    }

    /// Notes session `id`'s next timer.
    fn arm(&mut self, id: u16) {
        if let Some(t) = self.links.get(&id).and_then(|l| l.ppp.poll_timeout()) {
            self.timers.push(Reverse((t, id)));
        }
    }
}

/// The Ethernet tags of `vlans`, outer first.
fn tags(vlans: &Vlans) -> Vec<Tag> {
    [vlans.outer, vlans.inner]
        .into_iter()
        .flatten()
        .map(|t| Tag {
            tpid: t.tpid,
            pcp: 0,
            dei: false,
            vid: t.vid,
        })
        .collect()
}

/// A whole frame to `dst` on a line tagged `vlans`.
impl Link {
    /// What the PPP engine of session `id` queued, as PPPoE session frames to the client.
    fn queued_frames(&mut self, id: u16, ac_mac: Mac) -> Vec<Vec<u8>> {
        std::iter::from_fn(|| self.ppp.poll_transmit())
            .map(|t| {
                let s = pwire::session_frame(id, t.protocol, &t.packet);
                frame(
                    self.info.mac,
                    ac_mac,
                    &self.vlans,
                    ethertype::PPPOE_SESSION,
                    &s,
                )
            })
            .collect()
    }
}

pub(super) fn frame(dst: Mac, src: Mac, vlans: &Vlans, ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(22 + payload.len());
    ethernet::write_header(&mut f, dst, src, &tags(vlans), ethertype);
    f.extend_from_slice(payload);
    f
}

pub(super) fn vlans_of(h: &Header) -> Vlans {
    let t = |t: Tag| VlanTag {
        tpid: t.tpid,
        vid: t.vid,
    };
    Vlans {
        outer: h.outer.map(t),
        inner: h.inner.map(t),
    }
}

/// What an accepted PPP login is given, over PPPoE or L2TP: its address, the DNS servers,
/// Framed-MTU, and the Reply-Message (or "Welcome") as the Authenticate-Ack's text.
pub(super) fn ppp_grant(
    address: Ipv4Addr,
    dns: [Option<Ipv4Addr>; 2],
    authorization: &Authorization,
) -> Grant {
    Grant {
        address,
        dns,
        mtu: authorization.framed_mtu,
        // Framed-Interface-Id: IPv6CP gives the peer this identifier.
        interface_id: authorization.framed_interface_id.map(u64::to_be_bytes),
        message: authorization
            .reply_message
            .clone()
            .unwrap_or_else(|| "Welcome".into())
            .into_bytes(),
    }
}

/// The fast path's cause for a PPP end the client or the link caused.
fn disconnect_cause(cause: &EndCause) -> DisconnectCause {
    match cause {
        EndCause::PeerTerminated | EndCause::LowerDown => DisconnectCause::UserRequest,
        EndCause::PeerDead => DisconnectCause::LostCarrier,
        _ => DisconnectCause::NasRequest,
    }
}

impl Core {
    /// The access port's name in NAS-Port-Id, when PPPoE is on.
    pub(super) fn pppoe_port_name(&self) -> Option<&str> {
        self.pppoe.as_ref().map(|p| p.port_name.as_str())
    }
}

impl Core {
    /// A punted PPPoE frame (discovery or PPP control), header already parsed.
    pub(super) fn on_pppoe(&mut self, now: Instant, side: Side, h: Header, bytes: &[u8]) {
        let Some(p) = self.pppoe.as_mut() else {
            self.pppoe_disabled_drops += 1;
            return;
        };
        if side != Side::Access {
            p.drop(PppoeDrop::NotAccessSide);
            return;
        }
        let line = Line {
            port: 0,
            svlan: h.outer.map(|t| t.vid),
            cvlan: h.inner.map(|t| t.vid),
        };
        let payload = &bytes[h.payload_at..];
        if h.ethertype == ethertype::PPPOE_DISCOVERY {
            p.stats.discovery_frames += 1;
            p.frame_vlans = vlans_of(&h);
            p.discovery.handle_input(now, line, h.src, h.dst, payload);
            self.pppoe_drain(now);
            return;
        }
        p.stats.session_frames += 1;
        let Ok(sp) = SessionPacket::new_checked(payload) else {
            p.drop(PppoeDrop::SessionMalformed);
            return;
        };
        let id = sp.session_id();
        let Some(link) = p.links.get_mut(&id) else {
            p.drop(PppoeDrop::UnknownSession);
            return;
        };
        if link.info.line != line || link.info.mac != h.src {
            p.drop(PppoeDrop::WrongLine);
            return;
        }
        // IPv6 the fast path punts (RS, NS, DHCPv6) once IPv6CP is open; before, the
        // engine counts it (`data_in_control`).
        if sp.protocol() == PPP_IPV6 && link.ipv6 {
            p.stats.session_frames_ipv6 += 1;
            self.on_ppp_ipv6(now, ppp_handle(id), sp.ppp_payload());
            return;
        }
        link.ppp
            .handle_input(now, &mut p.rng, sp.protocol(), sp.ppp_payload());
        self.pppoe_drain_link(now, id);
    }

    fn inject_access(&mut self, bytes: &[u8]) {
        let Some(p) = self.pppoe.as_mut() else {
            return;
        };
        match Frame::new(Side::Access, bytes) {
            Some(f) => {
                p.stats.frames_sent += 1;
                self.out.push_back(Output::Inject(0, Box::new(f)));
            }
            None => p.drop(PppoeDrop::TooLong),
        }
    }

    /// Discovery's events (sessions started or ended by PADT) and frames; `vlans` tags
    /// the frames of a session ended from our side (else the frame being handled's).
    fn pppoe_drain_discovery(&mut self, now: Instant, vlans: Option<Vlans>) {
        loop {
            let Some(p) = self.pppoe.as_mut() else {
                return;
            };
            let mut frames = Vec::new();
            while let Some(t) = p.discovery.poll_transmit() {
                let v = vlans.unwrap_or(p.frame_vlans);
                frames.push(frame(
                    t.dst,
                    p.ac_mac,
                    &v,
                    ethertype::PPPOE_DISCOVERY,
                    &t.payload,
                ));
            }
            let events: Vec<pppoe::Event> =
                std::iter::from_fn(|| p.discovery.poll_event()).collect();
            for f in frames {
                self.inject_access(&f);
            }
            if events.is_empty() {
                return;
            }
            for e in events {
                match e {
                    pppoe::Event::SessionStarted(info) => self.pppoe_start(now, info),
                    pppoe::Event::SessionEnded { info, .. } => {
                        // A switched session's PPP engine was handed off: it ends here.
                        if self.lac_owns(info.id) {
                            self.pppoe_teardown(now, info.id, EndCause::LowerDown, None);
                            continue;
                        }
                        if let Some(l) = self.pppoe.as_mut().and_then(|p| p.links.get_mut(&info.id))
                        {
                            l.ppp.lower_down();
                        }
                        self.pppoe_drain_link(now, info.id);
                    }
                }
            }
        }
    }

    fn pppoe_drain(&mut self, now: Instant) {
        self.pppoe_drain_discovery(now, None);
    }

    /// PADS went out: a PPP engine for the session, LCP starts.
    fn pppoe_start(&mut self, now: Instant, info: SessionInfo) {
        let Some(p) = self.pppoe.as_mut() else {
            return;
        };
        let id = info.id;
        let ppp = ppp::Session::new(p.cfg.clone(), now, &mut p.rng);
        p.stats.started += 1;
        tracing::debug!(pppoe_session = id, mac = %MacAddr(info.mac), line = %info.line, "PPPoE session started");
        p.links.insert(
            id,
            Link {
                info,
                vlans: p.frame_vlans,
                ppp,
                login: None,
                granted: None,
                session: None,
                ipv6: false,
                gate: Gate::default(),
            },
        );
        self.pppoe_drain_link(now, id);
    }

    /// Sends what PPP session `id` queued and acts on its events, until it is quiet.
    fn pppoe_drain_link(&mut self, now: Instant, id: u16) {
        loop {
            let Some(p) = self.pppoe.as_mut() else {
                return;
            };
            let Some(link) = p.links.get_mut(&id) else {
                return;
            };
            let frames = link.queued_frames(id, p.ac_mac);
            let events: Vec<ppp::Event> = std::iter::from_fn(|| link.ppp.poll_event()).collect();
            if events.is_empty() {
                p.arm(id);
            }
            for f in frames {
                self.inject_access(&f);
            }
            if events.is_empty() {
                return;
            }
            for e in events {
                self.on_ppp_event(now, id, e);
            }
        }
    }

    fn on_ppp_event(&mut self, now: Instant, id: u16, e: ppp::Event) {
        match e {
            ppp::Event::Authenticate(req) => {
                // ACC-6: a realm switched to an LNS takes no login here.
                if req.method.is_some() && self.lac_switch(now, id, &req.user_lossy()) {
                    return;
                }
                let Some(p) = self.pppoe.as_mut() else {
                    return;
                };
                let Some(link) = p.links.get(&id) else {
                    return;
                };
                let line = p.pppoe_line(&link.info);
                let mac = MacAddr(link.info.mac);
                let login = login_request(&req, mac, line);
                match self.login(now, login) {
                    Ok(l) => {
                        if let Some(p) = self.pppoe.as_mut() {
                            p.by_login.insert(l, id);
                            if let Some(link) = p.links.get_mut(&id) {
                                link.login = Some(l);
                            }
                        }
                    }
                    Err(e) => {
                        tracing::info!(pppoe_session = id, %mac, error = %e, "PPP login not started");
                        if let Some(p) = self.pppoe.as_mut()
                            && let Some(link) = p.links.get_mut(&id)
                        {
                            let _ = link.ppp.reject(now, &mut p.rng, &e);
                        }
                    }
                }
            }
            ppp::Event::Ipv4Up { .. } => self.pppoe_ncp_up(now, id),
            ppp::Event::Finished { cause } => self.pppoe_teardown(now, id, cause, None),
            ppp::Event::Ipv6Up { .. } => {
                let Some(link) = self.pppoe.as_mut().and_then(|p| p.links.get_mut(&id)) else {
                    return;
                };
                link.ipv6 = true;
                match link.session {
                    Some(sid) => self.pppoe_ipv6_up(now, id, sid),
                    None => self.pppoe_ncp_up(now, id),
                }
            }
            // The /64 stays with the session until it ends (IPv6CP may open again).
            ppp::Event::Ipv6Down => {
                if let Some(link) = self.pppoe.as_mut().and_then(|p| p.links.get_mut(&id)) {
                    link.ipv6 = false;
                }
            }
            ppp::Event::LinkUp { .. } | ppp::Event::Ipv4Down => {}
        }
    }

    /// The authentication answer of a PPP login (from [`Core::on_auth`]).
    pub(super) fn ppp_auth_answer(&mut self, now: Instant, login: LoginId, answer: AuthAnswer) {
        if self.lns.as_ref().is_some_and(|l| l.owns_login(login)) {
            self.lns_auth_answer(now, login, answer);
            return;
        }
        let Some(id) = self.pppoe.as_mut().and_then(|p| p.by_login.remove(&login)) else {
            if let Some(p) = self.pppoe.as_mut() {
                p.drop(PppoeDrop::StaleAnswer);
            }
            return;
        };
        match answer {
            // ACC-6: RADIUS tunnel attributes switch the PPP to an LNS (LAC).
            AuthAnswer::Accept {
                user,
                authorization,
            } if !authorization.tunnels.is_empty() => {
                if let Some(link) = self.pppoe.as_mut().and_then(|p| p.links.get_mut(&id)) {
                    link.login = None;
                }
                if self.lac_switch_tunnels(now, id, &user, &authorization) {
                    tracing::info!(pppoe_session = id, %user, "PPP login accepted with tunnel attributes: switched to an LNS");
                    self.aaa_accepted_ppp();
                } else {
                    tracing::warn!(pppoe_session = id, %user, "PPP login accepted with tunnel attributes, but no tunnel can be placed (l2tp off?)");
                    self.aaa_failed_ppp();
                    self.ppp_reject(now, id, "no tunnel for this login");
                }
            }
            AuthAnswer::Accept {
                user,
                authorization,
            } => match self.ppp_address(&authorization) {
                Ok((address, pooled)) => {
                    let live = self
                        .pppoe
                        .as_ref()
                        .is_some_and(|p| p.links.contains_key(&id));
                    let Some(p) = self.pppoe.as_mut().filter(|_| live) else {
                        if pooled {
                            self.aaa_release(address);
                        }
                        return;
                    };
                    let Some(link) = p.links.get_mut(&id) else {
                        return;
                    };
                    link.login = None;
                    let grant = ppp_grant(address, p.dns, &authorization);
                    if link.ppp.accept(now, &mut p.rng, grant).is_ok() {
                        p.stats.auth_accepted += 1;
                        p.granted.insert(address);
                        tracing::info!(pppoe_session = id, %user, %address, "PPP login accepted");
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
                    tracing::info!(pppoe_session = id, %user, error = %e, "PPP login refused");
                    self.aaa_failed_ppp();
                    self.ppp_reject(now, id, &e);
                }
            },
            AuthAnswer::Reject(why) => {
                tracing::info!(pppoe_session = id, reason = %why, "PPP login rejected");
                self.aaa_rejected_ppp(false);
                self.ppp_reject(now, id, "authentication failed");
            }
            AuthAnswer::Unavailable(why) => {
                tracing::warn!(pppoe_session = id, reason = %why, "PPP login: authentication unavailable");
                self.aaa_rejected_ppp(true);
                self.ppp_reject(now, id, "authentication unavailable");
            }
        }
        self.pppoe_drain_link(now, id);
    }

    fn ppp_reject(&mut self, now: Instant, id: u16, message: &str) {
        let Some(p) = self.pppoe.as_mut() else {
            return;
        };
        if let Some(link) = p.links.get_mut(&id) {
            link.login = None;
            p.stats.auth_rejected += 1;
            let _ = link.ppp.reject(now, &mut p.rng, message);
        }
    }

    /// The address of an accepted PPP login: Framed-IP-Address (reserved in its pool if
    /// one holds it) or one from the pool the authorization names.
    pub(super) fn ppp_address(&mut self, a: &Authorization) -> Result<(Ipv4Addr, bool), String> {
        let (address, pooled) = match a.framed_ip {
            Some(ip) => {
                let taken = self.sessions.find(&ip.to_string()).is_ok()
                    || self.pppoe.as_ref().is_some_and(|p| p.granted.contains(&ip))
                    || self.lns.as_ref().is_some_and(|l| l.granted.contains(&ip));
                if taken {
                    return Err(format!("{ip} is in use"));
                }
                (ip, self.aaa_reserve(ip))
            }
            None => (
                self.pools_mut()
                    .allocate(a.pool.as_deref())
                    .map_err(|e| e.to_string())?,
                true,
            ),
        };
        if let Err(e) = self.subscriber_addresses().check(address) {
            if pooled {
                self.aaa_release(address);
            }
            return Err(e.to_string());
        }
        Ok((address, pooled))
    }

    /// An NCP of PPP session `id` opened (or its wait ran out): the subscriber is
    /// installed when [`Gate`] says so, else its timer is armed.
    fn pppoe_ncp_up(&mut self, now: Instant, id: u16) {
        let Some(p) = self.pppoe.as_mut() else {
            return;
        };
        let Some(link) = p.links.get_mut(&id) else {
            return;
        };
        if link.granted.is_none() || link.session.is_some() {
            return;
        }
        match link.gate.decide(&link.ppp, now) {
            Install::Now => self.pppoe_install(now, id),
            Install::At(t) => p.timers.push(Reverse((t, id))),
            Install::NotYet => {}
        }
    }

    /// The NCPs the client asked for are open (or the first, and the wait ran out): the
    /// session goes into the fast path with its access line and is accounted; if it
    /// cannot, the PPP session ends.
    fn pppoe_install(&mut self, now: Instant, id: u16) {
        let Some(p) = self.pppoe.as_mut() else {
            return;
        };
        let mss_clamp = p.mss_clamp;
        let Some(link) = p.links.get_mut(&id) else {
            return;
        };
        let Some(g) = link.granted.take() else {
            return;
        };
        let mtu = link.ppp.mtu();
        let ipv6 = link.ipv6.then_some(ppp_handle(id));
        p.granted.remove(&g.address);
        let access = AccessLine {
            vlans: link.vlans,
            encap: Encap::Pppoe { session: id },
            mss_clamp: if mss_clamp { mtu.saturating_sub(40) } else { 0 },
        };
        let mac = MacAddr(link.info.mac);
        let info = link.info.clone();
        let line = p.pppoe_line(&info);
        let result = self.ppp_open_session(now, g, mac, (access, line), ipv6);
        match result {
            Ok(sid) => {
                if let Some(p) = self.pppoe.as_mut() {
                    p.stats.installed += 1;
                    p.by_session.insert(sid, id);
                    if let Some(l) = p.links.get_mut(&id) {
                        l.session = Some(sid);
                    }
                }
            }
            Err(e) => {
                tracing::warn!(pppoe_session = id, error = %e, "PPP session not installed");
                self.pppoe_close(now, id, &e);
            }
        }
    }

    /// PPP session `id` (gateway session `sid`) has IPv6CP open and is installed: its
    /// /64 and RAs over the link.
    fn pppoe_ipv6_up(&mut self, now: Instant, id: u16, sid: SessionId) {
        let Some(o) = self.sessions.get(sid) else {
            return;
        };
        let (worker, vlans) = (o.worker, o.spec.access.vlans.key());
        self.ipv6_ppp_opened(now, sid, worker, vlans, ppp_handle(id));
    }

    /// An IPv6 packet from the gateway over PPP link `handle`: a PPPoE session's gets a
    /// PPPoE session frame with PPP protocol 0x0057 to its client, an LNS call's an L2TP
    /// data message ([`Core::lns_send_ipv6`]).
    pub(super) fn ppp_send_ipv6(&mut self, now: Instant, handle: u64, packet: &[u8]) {
        if handle & super::lns::LNS_HANDLES != 0 {
            self.lns_send_ipv6(now, handle, packet);
            return;
        }
        let Some(p) = self.pppoe.as_mut() else {
            return;
        };
        let Ok(id) = u16::try_from(handle) else {
            return;
        };
        let Some(link) = p.links.get(&id) else {
            return;
        };
        let s = pwire::session_frame(id, PPP_IPV6, packet);
        let f = frame(
            link.info.mac,
            p.ac_mac,
            &link.vlans,
            ethertype::PPPOE_SESSION,
            &s,
        );
        p.stats.frames_sent_ipv6 += 1;
        self.inject_access(&f);
    }

    /// Installs an accepted PPP subscriber (PPPoE or LNS) and sends its Start; `ipv6`:
    /// its link's handle when IPv6CP is open already (its /64 is attached first, so the
    /// Start carries Framed-IPv6-Prefix).
    pub(super) fn ppp_open_session(
        &mut self,
        now: Instant,
        g: Granted,
        mac: MacAddr,
        (access, line): (AccessLine, PppoeLine),
        ipv6: Option<u64>,
    ) -> Result<SessionId, String> {
        let release = |core: &mut Core| {
            if g.pooled {
                core.aaa_release(g.address);
            }
        };
        let auth = g.authorization;
        let group = auth
            .billing_account
            .clone()
            .unwrap_or_else(|| g.user.clone());
        if let Some(max) = auth.conditions.max_logins
            && let Err(e) = self.make_room(&group, max, &auth)
        {
            release(self);
            return Err(e);
        }
        let (limits, app_idle) = super::aaa::limits(&auth, self.aaa_app_margin());
        let request = SessionRequest {
            user: g.user,
            address: g.address,
            mac: Some(mac),
            channel: None,
            services: self.service_set(&auth),
            bandwidth: super::aaa::bandwidth(&auth),
            limits,
            max_flows: self.aaa_max_flows(),
        };
        self.ppp_ipv6_installing = ipv6;
        let r = self
            .install(
                now,
                request,
                auth,
                Some(mac.to_string()),
                app_idle,
                g.pooled,
                Some((access, Some(line))),
            )
            .map_err(|e| {
                release(self);
                e.to_string()
            });
        self.ppp_ipv6_installing = None;
        r
    }

    /// Ends PPP session `id` from our side: Terminate-Request, then PADT.
    fn pppoe_close(&mut self, now: Instant, id: u16, reason: &str) {
        let Some(p) = self.pppoe.as_mut() else {
            return;
        };
        let Some(link) = p.links.get_mut(&id) else {
            return;
        };
        link.ppp.close(now, &mut p.rng, reason);
        self.pppoe_teardown(now, id, EndCause::Closed(reason.to_string()), None);
    }

    /// Frees PPP session `id`: what its engine still queued (Terminate-Request or Ack)
    /// goes out, then PADT (unless the client's PADT ended it); a login in progress is
    /// forgotten, a granted address returned, an installed session removed from the fast
    /// path with `cause` (its record brings the Stop) unless it is already going.
    fn pppoe_teardown(
        &mut self,
        now: Instant,
        id: u16,
        cause: EndCause,
        already_removed: Option<SessionId>,
    ) {
        let Some(p) = self.pppoe.as_mut() else {
            return;
        };
        let Some(mut link) = p.links.remove(&id) else {
            return;
        };
        let frames = link.queued_frames(id, p.ac_mac);
        for (d, n) in link.ppp.drops() {
            p.ppp_drops[d as usize] += n;
        }
        *p.stats.ended.entry(cause.name()).or_default() += 1;
        if let Some(l) = link.login {
            p.by_login.remove(&l);
        }
        let reason = match &cause {
            EndCause::Closed(r) => r.clone(),
            c => c.name().to_string(),
        };
        p.discovery.terminate(id, &reason);
        self.lac_pppoe_ended(now, id, &reason, lac_cause(&cause));
        tracing::info!(
            pppoe_session = id,
            mac = %MacAddr(link.info.mac),
            line = %link.info.line,
            cause = cause.name(),
            session = ?link.session,
            "PPPoE session ended"
        );
        for f in frames {
            self.inject_access(&f);
        }
        self.pppoe_drain_discovery(now, Some(link.vlans));
        if let Some(g) = link.granted {
            if let Some(p) = self.pppoe.as_mut() {
                p.granted.remove(&g.address);
            }
            if g.pooled {
                self.aaa_release(g.address);
            }
        }
        if let Some(sid) = link.session {
            if let Some(p) = self.pppoe.as_mut() {
                p.by_session.remove(&sid);
            }
            if already_removed != Some(sid) && self.sessions.get(sid).is_some() {
                self.end(sid, disconnect_cause(&cause));
            }
        }
    }

    /// LAC: hands PPPoE session `id`'s PPP off to an LNS: what its ICCN carries, its
    /// leg for the fast path and its line (Calling Number). `None` when its engine
    /// cannot hand off.
    pub(super) fn pppoe_hand_off(
        &mut self,
        id: u16,
    ) -> Option<(
        ppp::ProxyRecord,
        tollgate_dataplane::l2tp::PppoeLeg,
        PppoeLine,
    )> {
        let p = self.pppoe.as_mut()?;
        let mss_clamp = p.mss_clamp;
        let line = {
            let link = p.links.get(&id)?;
            p.pppoe_line(&link.info)
        };
        let link = p.links.get_mut(&id)?;
        let mru = link.ppp.state().mru;
        let proxy = link.ppp.hand_off().ok()?;
        let leg = tollgate_dataplane::l2tp::PppoeLeg {
            session: id,
            client: MacAddr(link.info.mac),
            vlans: link.vlans,
            mss_clamp: if mss_clamp {
                mru.0.min(mru.1).saturating_sub(40)
            } else {
                0
            },
        };
        Some((proxy, leg, line))
    }

    /// LAC: ends switched PPPoE session `id` with PADT (its LNS ended the call, or none
    /// took it).
    pub(super) fn pppoe_end_switched(&mut self, now: Instant, id: u16, why: &str) {
        self.pppoe_teardown(now, id, EndCause::Closed(why.to_string()), None);
    }

    /// A gateway session ended (its final record arrived, or the fast path refused it):
    /// if it is a PPP session's, the client gets Terminate-Request and PADT.
    pub(super) fn pppoe_session_closed(&mut self, now: Instant, sid: SessionId, why: &str) {
        if self.lns_session_closed(now, sid, why) {
            return;
        }
        let Some(id) = self.pppoe.as_mut().and_then(|p| p.by_session.remove(&sid)) else {
            return;
        };
        let Some(p) = self.pppoe.as_mut() else {
            return;
        };
        if let Some(link) = p.links.get_mut(&id) {
            link.ppp.close(now, &mut p.rng, why);
        }
        self.pppoe_teardown(now, id, EndCause::Closed(why.to_string()), Some(sid));
    }

    /// The gateway stops: every PPP session gets Terminate-Request and PADT (an L2TP
    /// call's: Terminate-Request and CDN), and its fast-path session is removed (cause
    /// NAS reboot). Returns how many ended.
    pub fn pppoe_shutdown(&mut self, now: Instant) -> usize {
        let calls = self.lns_shutdown(now);
        let Some(p) = self.pppoe.as_mut() else {
            return calls;
        };
        let ids: Vec<u16> = p.links.keys().copied().collect();
        let n = ids.len() + calls;
        for id in ids {
            let Some(p) = self.pppoe.as_mut() else {
                return n;
            };
            let Some(link) = p.links.get_mut(&id) else {
                continue;
            };
            link.ppp.close(now, &mut p.rng, SHUTDOWN_REASON);
            let sid = link.session.take();
            if let Some(sid) = sid {
                p.by_session.remove(&sid);
            }
            self.pppoe_teardown(now, id, EndCause::Closed(SHUTDOWN_REASON.into()), None);
            if let Some(sid) = sid
                && self.sessions.get(sid).is_some()
            {
                self.end(sid, DisconnectCause::NasReboot);
            }
        }
        n
    }

    /// Runs the PPP timers due at `now` (retransmissions, echo, auth timeouts).
    pub(super) fn pppoe_tick(&mut self, now: Instant) {
        let Some(p) = self.pppoe.as_mut() else {
            return;
        };
        if now >= p.next_rotation {
            let mut secret = [0u8; 32];
            p.rng.fill(&mut secret);
            p.discovery.rotate_secret(secret);
            p.next_rotation = now + p.rotation_every;
            p.stats.cookie_rotations += 1;
        }
        let mut due = Vec::new();
        while let Some(Reverse((t, id))) = p.timers.peek().copied() {
            if t > now {
                break;
            }
            p.timers.pop();
            due.push(id);
        }
        due.sort_unstable();
        due.dedup();
        for id in due {
            if let Some(p) = self.pppoe.as_mut()
                && let Some(link) = p.links.get_mut(&id)
                && link.ppp.poll_timeout().is_some_and(|t| t <= now)
            {
                link.ppp.handle_timeout(now, &mut p.rng);
            }
            // Sends what the timeout queued and notes the session's next timer.
            self.pppoe_drain_link(now, id);
            // A subscriber waiting for its other NCP: installed once the wait ran out.
            if self
                .pppoe
                .as_ref()
                .and_then(|p| p.links.get(&id))
                .and_then(|l| l.gate.deadline())
                .is_some_and(|t| t <= now)
            {
                self.pppoe_ncp_up(now, id);
            }
        }
    }

    /// The PPP state of gateway session `sid`, if it is a PPPoE subscriber's.
    pub fn ppp_view(&self, sid: SessionId) -> Option<PppView> {
        let p = self.pppoe.as_ref()?;
        let id = p.by_session.get(&sid)?;
        p.links.get(id).map(|l| view(p, l))
    }

    /// Every PPP session, installed or not yet (by PPPoE session id).
    pub fn ppp_views(&self) -> Vec<PppView> {
        let Some(p) = self.pppoe.as_ref() else {
            return Vec::new();
        };
        let mut v: Vec<PppView> = p.links.values().map(|l| view(p, l)).collect();
        v.sort_by_key(|v| v.pppoe_session);
        v
    }

    /// What the PPPoE side counted (`None` when `[pppoe]` is off).
    pub fn pppoe_stats(&self) -> Option<&PppoeStats> {
        self.pppoe.as_ref().map(|p| &p.stats)
    }

    /// Every PPPoE and PPP counter by name, for `show counters` and the metrics:
    /// the core's drops, discovery's frames, drops and refusals (`pppoe_*`), PPP's drops
    /// (`ppp_drop_*`, ended and live sessions), sessions by end cause (`ppp_ended_*`). Empty when `[pppoe]` is off, but for
    /// frames dropped because of that.
    pub fn pppoe_counters(&self) -> Vec<(String, u64)> {
        let mut out = Vec::new();
        let Some(p) = self.pppoe.as_ref() else {
            out.push((
                PppoeDrop::Disabled.name().to_string(),
                self.pppoe_disabled_drops,
            ));
            return out;
        };
        let s = &p.stats;
        for d in PppoeDrop::ALL {
            out.push((d.name().to_string(), s.drops[d as usize]));
        }
        let ds = p.discovery.stats();
        for (n, v) in [
            ("padi", ds.padi),
            ("pado", ds.pado),
            ("padr", ds.padr),
            ("pads", ds.pads),
            ("pads_error", ds.pads_error),
            ("padr_retransmit", ds.padr_retransmit),
            ("padt_received", ds.padt_received),
            ("padt_sent", ds.padt_sent),
            ("line_id_malformed", ds.line_id_malformed),
            ("cookie_rotations", s.cookie_rotations),
        ] {
            out.push((format!("pppoe_{n}"), v));
        }
        for (d, n) in p.discovery.drops() {
            out.push((d.name().to_string(), n));
        }
        for (r, n) in p.discovery.refusals() {
            out.push((r.name().to_string(), n));
        }
        let mut ppp = p.ppp_drops;
        for l in p.links.values() {
            for (d, n) in l.ppp.drops() {
                ppp[d as usize] += n;
            }
        }
        for d in ppp::DropReason::ALL {
            out.push((format!("ppp_drop_{}", d.name()), ppp[d as usize]));
        }
        for (n, v) in [
            ("pppoe_discovery_frames", s.discovery_frames),
            ("pppoe_session_frames", s.session_frames),
            ("pppoe_frames_sent", s.frames_sent),
            ("ppp_ipv6_frames", s.session_frames_ipv6),
            ("ppp_ipv6_frames_sent", s.frames_sent_ipv6),
            ("ppp_sessions_started", s.started),
            ("ppp_auth_accepted", s.auth_accepted),
            ("ppp_auth_rejected", s.auth_rejected),
            ("ppp_sessions_installed", s.installed),
            ("ppp_sessions_open", p.links.len() as u64),
        ] {
            out.push((n.to_string(), v));
        }
        for (c, n) in &s.ended {
            out.push((format!("ppp_ended_{c}"), *n));
        }
        out
    }
}

fn view(p: &Pppoe, l: &Link) -> PppView {
    PppView {
        pppoe_session: l.info.id,
        mac: MacAddr(l.info.mac),
        line: l.info.line,
        nas_port_id: l.info.line.nas_port_id(&p.port_name),
        ppp: l.ppp.state(),
        session: l.session,
    }
}

/// The Acct-Terminate-Cause of a switched subscriber whose PPPoE side ended: the
/// client's PADT or Terminate-Request is its own, a dead link lost carrier, the
/// gateway's stop a shutdown, anything else closed here an operator's.
fn lac_cause(cause: &EndCause) -> crate::radius::dict::DisconnectCause {
    use crate::radius::dict::DisconnectCause as D;
    match cause {
        EndCause::LowerDown | EndCause::PeerTerminated => D::Logout,
        EndCause::PeerDead => D::LostCarrier,
        EndCause::Closed(r) if r == SHUTDOWN_REASON => D::Shutdown,
        _ => D::Admin,
    }
}
