//! The PPPoE discovery stage as an access concentrator (RFC 2516 section 5), sans-I/O.
//!
//! The caller hands in discovery frames with the line they came on
//! ([`Discovery::handle_input`]); the engine answers PADI with PADO (AC-Name, the
//! Service-Names, Host-Uniq and Relay-Session-Id echoed, an AC-Cookie), PADR with PADS
//! (a fresh session id) and reports [`Event::SessionStarted`], so the caller can start
//! the PPP engine and install the session in the fast path. A client's PADT ends a session
//! ([`Event::SessionEnded`]); [`Discovery::terminate`] sends ours.
//!
//! Policy, each refusal counted by name ([`Refusal`]): a PADI rate limit per client MAC
//! and a global one (token buckets), session limits per MAC, per line and in all, the
//! Service-Names offered, and the AC-Cookie a PADR must return (forged or expired
//! cookies get no answer). Input that does not parse is dropped and counted by name
//! ([`DropReason`]); nothing panics.
//!
//! One `Discovery` serves one access port's session-id space (ids 1..=0xfffe, unique in
//! the engine, so the fast path can look sessions up by id before checking line and MAC).

use std::collections::{HashMap, VecDeque};

use core::time::Duration;

use super::cookie::{CookieError, Cookies};
use super::limit::{Admit, Bucket, PerMac, Rate};
use super::line::{Line, LineId};
use super::wire::{self, Packet, code, tag};
use crate::time::Instant;
use crate::wire::ethernet::{self, BROADCAST, Mac, Tag as VlanTag, ethertype};

/// How the access concentrator answers.
#[derive(Clone, Debug)]
pub struct DiscoveryConfig {
    /// The AC-Name in every PADO.
    pub ac_name: String,
    /// The Service-Names offered; empty: any requested name is served.
    pub service_names: Vec<String>,
    /// How long an AC-Cookie stays valid.
    pub cookie_lifetime: Duration,
    /// PADIs accepted per client MAC.
    pub padi_rate_per_mac: Rate,
    /// PADIs accepted in all.
    pub padi_rate: Rate,
    /// Client MACs whose PADI rate is tracked at once.
    pub rate_table_size: usize,
    /// Sessions one client MAC may hold.
    pub max_sessions_per_mac: u32,
    /// Sessions one line (port + VLANs) may hold.
    pub max_sessions_per_line: u32,
    /// Sessions in all (at most 65534).
    pub max_sessions: u32,
}

impl Default for DiscoveryConfig {
    fn default() -> Self {
        DiscoveryConfig {
            ac_name: "tollgate".into(),
            service_names: Vec::new(),
            cookie_lifetime: Duration::from_secs(60),
            padi_rate_per_mac: Rate {
                per_second: 1,
                burst: 5,
            },
            padi_rate: Rate {
                per_second: 2000,
                burst: 4000,
            },
            rate_table_size: 65_536,
            max_sessions_per_mac: 1,
            max_sessions_per_line: 16,
            max_sessions: 65_534,
        }
    }
}

/// A discovery frame to send: the caller puts it in an Ethernet frame (ethertype 0x8863)
/// on `line` (re-tagged with its VLANs) to `dst`, from the port's address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// The line to send on.
    pub line: Line,
    /// The client's MAC.
    pub dst: Mac,
    /// The PPPoE packet (header and tags).
    pub payload: Vec<u8>,
}

impl Transmit {
    /// The whole Ethernet frame from `src`, tagged with the line's VLANs (`outer_tpid`
    /// for the S-VLAN, 0x8100 inside).
    pub fn frame(&self, src: Mac, outer_tpid: u16) -> Vec<u8> {
        let mut tags = Vec::with_capacity(2);
        if let Some(s) = self.line.svlan {
            tags.push(VlanTag {
                tpid: outer_tpid,
                pcp: 0,
                dei: false,
                vid: s,
            });
        }
        if let Some(c) = self.line.cvlan {
            tags.push(VlanTag {
                tpid: ethertype::VLAN,
                pcp: 0,
                dei: false,
                vid: c,
            });
        }
        let mut f = Vec::with_capacity(22 + self.payload.len());
        ethernet::write_header(&mut f, self.dst, src, &tags, ethertype::PPPOE_DISCOVERY);
        f.extend_from_slice(&self.payload);
        f
    }
}

/// A session the discovery stage created.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionInfo {
    /// The PPPoE session id.
    pub id: u16,
    /// The line.
    pub line: Line,
    /// The client's MAC.
    pub mac: Mac,
    /// The Service-Name the client asked for.
    pub service: Vec<u8>,
    /// The client's Host-Uniq, if any.
    pub host_uniq: Option<Vec<u8>>,
    /// The Relay-Session-Id a relay added, if any.
    pub relay_session_id: Option<Vec<u8>>,
    /// The access node's line identification (TR-101), for RADIUS and records.
    pub line_id: Option<LineId>,
    /// When the PADS went out.
    pub started: Instant,
}

/// Who ended a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EndedBy {
    /// The client sent PADT.
    Client,
}

/// What happened, for the caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// PADS sent: start the PPP engine and the fast-path session.
    SessionStarted(SessionInfo),
    /// The client ended the session with PADT: tell the PPP engine its lower layer is
    /// down and remove the fast-path session.
    SessionEnded {
        /// The session.
        info: SessionInfo,
        /// Who ended it.
        by: EndedBy,
    },
}

/// Why a discovery frame was dropped as malformed or misdirected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum DropReason {
    /// Shorter than its header or its Length.
    Truncated,
    /// Version/type other than 0x11.
    BadVersion,
    /// A tag runs past the packet.
    BadTag,
    /// PADI or PADR without exactly one Service-Name.
    ServiceNameCount,
    /// PADI or PADR with a session id other than 0.
    NonzeroSessionId,
    /// PADT with session id 0.
    ZeroSessionId,
    /// A multicast or broadcast source address.
    BadSource,
    /// A unicast frame for another access concentrator.
    NotForUs,
    /// A code an access concentrator does not receive (PADO, PADS) or does not know.
    UnexpectedCode,
    /// PADT for a session that does not exist, or not from its client and line.
    UnknownSession,
}

impl DropReason {
    /// Number of reasons.
    pub const COUNT: usize = 10;

    /// All reasons, in counter order.
    pub const ALL: [DropReason; DropReason::COUNT] = [
        DropReason::Truncated,
        DropReason::BadVersion,
        DropReason::BadTag,
        DropReason::ServiceNameCount,
        DropReason::NonzeroSessionId,
        DropReason::ZeroSessionId,
        DropReason::BadSource,
        DropReason::NotForUs,
        DropReason::UnexpectedCode,
        DropReason::UnknownSession,
    ];

    /// The counter's name.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::Truncated => "pppoe_truncated",
            DropReason::BadVersion => "pppoe_bad_version",
            DropReason::BadTag => "pppoe_bad_tag",
            DropReason::ServiceNameCount => "pppoe_service_name_count",
            DropReason::NonzeroSessionId => "pppoe_nonzero_session_id",
            DropReason::ZeroSessionId => "pppoe_zero_session_id",
            DropReason::BadSource => "pppoe_bad_source",
            DropReason::NotForUs => "pppoe_not_for_us",
            DropReason::UnexpectedCode => "pppoe_unexpected_code",
            DropReason::UnknownSession => "pppoe_unknown_session",
        }
    }
}

/// Why a well-formed request was refused by policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Refusal {
    /// PADI over the client MAC's rate (no PADO).
    PadiRateMac,
    /// PADI over the global rate (no PADO).
    PadiRate,
    /// A Service-Name we do not offer (no PADO; PADS with Service-Name-Error).
    ServiceUnavailable,
    /// The client MAC holds its maximum of sessions.
    SessionLimitMac,
    /// The line holds its maximum of sessions.
    SessionLimitLine,
    /// The engine holds its maximum of sessions (or no session id is free).
    SessionLimit,
    /// PADR without an AC-Cookie (no answer).
    CookieMissing,
    /// PADR with a cookie we did not give this client on this line (no answer).
    CookieForged,
    /// PADR with an expired cookie (no answer: the client starts over with PADI).
    CookieExpired,
}

impl Refusal {
    /// Number of reasons.
    pub const COUNT: usize = 9;

    /// All reasons, in counter order.
    pub const ALL: [Refusal; Refusal::COUNT] = [
        Refusal::PadiRateMac,
        Refusal::PadiRate,
        Refusal::ServiceUnavailable,
        Refusal::SessionLimitMac,
        Refusal::SessionLimitLine,
        Refusal::SessionLimit,
        Refusal::CookieMissing,
        Refusal::CookieForged,
        Refusal::CookieExpired,
    ];

    /// The counter's name.
    pub fn name(self) -> &'static str {
        match self {
            Refusal::PadiRateMac => "pppoe_padi_rate_mac",
            Refusal::PadiRate => "pppoe_padi_rate",
            Refusal::ServiceUnavailable => "pppoe_service_unavailable",
            Refusal::SessionLimitMac => "pppoe_session_limit_mac",
            Refusal::SessionLimitLine => "pppoe_session_limit_line",
            Refusal::SessionLimit => "pppoe_session_limit",
            Refusal::CookieMissing => "pppoe_cookie_missing",
            Refusal::CookieForged => "pppoe_cookie_forged",
            Refusal::CookieExpired => "pppoe_cookie_expired",
        }
    }
}

/// Frames and notes counted by the engine.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// PADIs received (well-formed).
    pub padi: u64,
    /// PADOs sent.
    pub pado: u64,
    /// PADRs received (well-formed).
    pub padr: u64,
    /// PADSs sent with a session (errors excluded).
    pub pads: u64,
    /// PADSs sent with an error tag (session id 0).
    pub pads_error: u64,
    /// A PADR retransmitted for a session already created: the same PADS again.
    pub padr_retransmit: u64,
    /// PADTs received for a session.
    pub padt_received: u64,
    /// PADTs sent.
    pub padt_sent: u64,
    /// TR-101 tags that did not parse (the request is served without line id).
    pub line_id_malformed: u64,
    /// PADIs whose MAC was not rate-tracked because the table was full.
    pub rate_untracked: u64,
}

/// The tags of a PADI/PADR that matter.
#[derive(Default)]
struct Request<'a> {
    service: Option<&'a [u8]>,
    services: u32,
    host_uniq: Option<&'a [u8]>,
    relay: Option<&'a [u8]>,
    cookie: Option<&'a [u8]>,
    vendor: Option<&'a [u8]>,
}

/// A session and the cookie of the PADR that created it (a retransmitted PADR carries
/// the same one, and the same Host-Uniq).
#[derive(Debug)]
struct Entry {
    info: SessionInfo,
    cookie: Vec<u8>,
}

/// The access concentrator's discovery engine.
#[derive(Debug)]
pub struct Discovery {
    cfg: DiscoveryConfig,
    ac_mac: Mac,
    cookies: Cookies,
    sessions: HashMap<u16, Entry>,
    per_mac: HashMap<Mac, u32>,
    per_line: HashMap<Line, u32>,
    by_client: HashMap<(Mac, Line), Vec<u16>>,
    next_id: u16,
    global: Bucket,
    mac_rates: PerMac,
    out: VecDeque<Transmit>,
    events: VecDeque<Event>,
    drops: [u64; DropReason::COUNT],
    refusals: [u64; Refusal::COUNT],
    stats: Stats,
}

impl Discovery {
    /// An engine answering as `ac_mac`, with the cookie secret `secret` (random, from the
    /// caller).
    pub fn new(cfg: DiscoveryConfig, ac_mac: Mac, secret: [u8; 32], now: Instant) -> Discovery {
        Discovery {
            cookies: Cookies::new(secret, cfg.cookie_lifetime.as_secs()),
            global: Bucket::full(cfg.padi_rate, now),
            mac_rates: PerMac::new(cfg.padi_rate_per_mac, cfg.rate_table_size),
            cfg,
            ac_mac,
            sessions: HashMap::new(),
            per_mac: HashMap::new(),
            per_line: HashMap::new(),
            by_client: HashMap::new(),
            next_id: 1,
            out: VecDeque::new(),
            events: VecDeque::new(),
            drops: [0; DropReason::COUNT],
            refusals: [0; Refusal::COUNT],
            stats: Stats::default(),
        }
    }

    /// Installs a new cookie secret (cookies under the previous one stay valid until
    /// they expire).
    pub fn rotate_secret(&mut self, secret: [u8; 32]) {
        self.cookies.rotate(secret);
    }

    /// A discovery packet (`payload`: the Ethernet payload after ethertype 0x8863) from
    /// `src` to `dst` on `line`.
    pub fn handle_input(&mut self, now: Instant, line: Line, src: Mac, dst: Mac, payload: &[u8]) {
        if let Err(d) = self.input(now, line, src, dst, payload) {
            self.drops[d as usize] += 1;
        }
    }

    fn input(
        &mut self,
        now: Instant,
        line: Line,
        src: Mac,
        dst: Mac,
        payload: &[u8],
    ) -> Result<(), DropReason> {
        let p = Packet::new_checked(payload).map_err(|e| match e {
            crate::wire::WireError::Truncated => DropReason::Truncated,
            crate::wire::WireError::Malformed => DropReason::BadVersion,
        })?;
        if src[0] & 1 != 0 {
            return Err(DropReason::BadSource);
        }
        let c = p.code();
        match c {
            code::PADI if dst != BROADCAST && dst != self.ac_mac => {
                return Err(DropReason::NotForUs);
            }
            code::PADR | code::PADT if dst != self.ac_mac => return Err(DropReason::NotForUs),
            code::PADI | code::PADR | code::PADT => {}
            _ => return Err(DropReason::UnexpectedCode),
        }
        let mut r = Request::default();
        for t in p.tags() {
            let t = t.map_err(|_| DropReason::BadTag)?;
            match t.kind {
                tag::SERVICE_NAME => {
                    r.services += 1;
                    r.service = Some(t.value);
                }
                tag::HOST_UNIQ => r.host_uniq = Some(t.value),
                tag::RELAY_SESSION_ID => r.relay = Some(t.value),
                tag::AC_COOKIE => r.cookie = Some(t.value),
                // The first TR-101 tag counts; other vendors' tags are skipped.
                tag::VENDOR_SPECIFIC
                    if r.vendor.is_none()
                        && t.value.get(..4) == Some(&super::line::BBF_VENDOR_ID.to_be_bytes()) =>
                {
                    r.vendor = Some(t.value);
                }
                _ => {}
            }
        }
        match c {
            code::PADI => {
                if p.session_id() != 0 {
                    return Err(DropReason::NonzeroSessionId);
                }
                if r.services != 1 {
                    return Err(DropReason::ServiceNameCount);
                }
                self.padi(now, line, src, &r);
            }
            code::PADR => {
                if p.session_id() != 0 {
                    return Err(DropReason::NonzeroSessionId);
                }
                if r.services != 1 {
                    return Err(DropReason::ServiceNameCount);
                }
                self.padr(now, line, src, &r);
            }
            _ => {
                let id = p.session_id();
                if id == 0 {
                    return Err(DropReason::ZeroSessionId);
                }
                match self.sessions.get(&id) {
                    Some(e) if e.info.mac == src && e.info.line == line => {}
                    _ => return Err(DropReason::UnknownSession),
                }
                self.stats.padt_received += 1;
                if let Some(info) = self.remove(id) {
                    self.events.push_back(Event::SessionEnded {
                        info,
                        by: EndedBy::Client,
                    });
                }
            }
        }
        Ok(())
    }

    fn refuse(&mut self, r: Refusal) {
        self.refusals[r as usize] += 1;
    }

    fn offers(&self, service: &[u8]) -> bool {
        service.is_empty()
            || self.cfg.service_names.is_empty()
            || self
                .cfg
                .service_names
                .iter()
                .any(|s| s.as_bytes() == service)
    }

    fn limit(&self, line: Line, mac: Mac) -> Option<Refusal> {
        if self.per_mac.get(&mac).copied().unwrap_or(0) >= self.cfg.max_sessions_per_mac {
            Some(Refusal::SessionLimitMac)
        } else if self.per_line.get(&line).copied().unwrap_or(0) >= self.cfg.max_sessions_per_line {
            Some(Refusal::SessionLimitLine)
        } else if self.sessions.len() as u64 >= u64::from(self.cfg.max_sessions.min(65_534)) {
            Some(Refusal::SessionLimit)
        } else {
            None
        }
    }

    fn padi(&mut self, now: Instant, line: Line, src: Mac, r: &Request<'_>) {
        self.stats.padi += 1;
        match self.mac_rates.take(src, now) {
            Admit::Yes => {}
            Admit::No => return self.refuse(Refusal::PadiRateMac),
            Admit::Untracked => self.stats.rate_untracked += 1,
        }
        if !self.global.take(self.cfg.padi_rate, now) {
            return self.refuse(Refusal::PadiRate);
        }
        let service = r.service.unwrap_or_default();
        if !self.offers(service) {
            return self.refuse(Refusal::ServiceUnavailable);
        }
        if let Some(refusal) = self.limit(line, src) {
            return self.refuse(refusal);
        }
        let mut t = Vec::with_capacity(128);
        wire::put_tag(&mut t, tag::AC_NAME, self.cfg.ac_name.as_bytes());
        wire::put_tag(&mut t, tag::SERVICE_NAME, service);
        for s in &self.cfg.service_names {
            if s.as_bytes() != service {
                wire::put_tag(&mut t, tag::SERVICE_NAME, s.as_bytes());
            }
        }
        if let Some(h) = r.host_uniq {
            wire::put_tag(&mut t, tag::HOST_UNIQ, h);
        }
        if let Some(rs) = r.relay {
            wire::put_tag(&mut t, tag::RELAY_SESSION_ID, rs);
        }
        wire::put_tag(&mut t, tag::AC_COOKIE, &self.cookies.mint(now, src, line));
        self.stats.pado += 1;
        self.out.push_back(Transmit {
            line,
            dst: src,
            payload: wire::build(code::PADO, 0, &t),
        });
    }

    fn pads_error(&mut self, line: Line, src: Mac, r: &Request<'_>, kind: u16, text: &str) {
        let mut t = Vec::with_capacity(64);
        wire::put_tag(&mut t, tag::SERVICE_NAME, r.service.unwrap_or_default());
        if let Some(h) = r.host_uniq {
            wire::put_tag(&mut t, tag::HOST_UNIQ, h);
        }
        if let Some(rs) = r.relay {
            wire::put_tag(&mut t, tag::RELAY_SESSION_ID, rs);
        }
        wire::put_tag(&mut t, kind, text.as_bytes());
        self.stats.pads_error += 1;
        self.out.push_back(Transmit {
            line,
            dst: src,
            payload: wire::build(code::PADS, 0, &t),
        });
    }

    fn pads(&mut self, s: &SessionInfo) {
        let mut t = Vec::with_capacity(64);
        wire::put_tag(&mut t, tag::SERVICE_NAME, &s.service);
        if let Some(h) = &s.host_uniq {
            wire::put_tag(&mut t, tag::HOST_UNIQ, h);
        }
        if let Some(rs) = &s.relay_session_id {
            wire::put_tag(&mut t, tag::RELAY_SESSION_ID, rs);
        }
        self.stats.pads += 1;
        self.out.push_back(Transmit {
            line: s.line,
            dst: s.mac,
            payload: wire::build(code::PADS, s.id, &t),
        });
    }

    fn padr(&mut self, now: Instant, line: Line, src: Mac, r: &Request<'_>) {
        self.stats.padr += 1;
        let Some(cookie) = r.cookie else {
            return self.refuse(Refusal::CookieMissing);
        };
        match self.cookies.verify(cookie, now, src, line) {
            Ok(()) => {}
            Err(CookieError::Forged) => return self.refuse(Refusal::CookieForged),
            Err(CookieError::Expired) => return self.refuse(Refusal::CookieExpired),
        }
        // A retransmitted PADR (our PADS was lost): the same session again.
        let host_uniq = r.host_uniq.map(<[u8]>::to_vec);
        let service = r.service.unwrap_or_default();
        if let Some(info) = self
            .by_client
            .get(&(src, line))
            .into_iter()
            .flatten()
            .filter_map(|id| self.sessions.get(id))
            .find(|e| e.cookie == cookie && e.info.host_uniq == host_uniq)
            .map(|e| e.info.clone())
        {
            self.stats.padr_retransmit += 1;
            return self.pads(&info);
        }
        if !self.offers(service) {
            self.refuse(Refusal::ServiceUnavailable);
            return self.pads_error(line, src, r, tag::SERVICE_NAME_ERROR, "service unavailable");
        }
        if let Some(refusal) = self.limit(line, src) {
            self.refuse(refusal);
            return self.pads_error(line, src, r, tag::AC_SYSTEM_ERROR, "session limit reached");
        }
        let Some(id) = self.allocate_id() else {
            self.refuse(Refusal::SessionLimit);
            return self.pads_error(line, src, r, tag::AC_SYSTEM_ERROR, "no session id free");
        };
        let line_id = match r.vendor.map(LineId::from_vendor_tag) {
            Some(Ok(id)) => id,
            Some(Err(_)) => {
                self.stats.line_id_malformed += 1;
                None
            }
            None => None,
        };
        let info = SessionInfo {
            id,
            line,
            mac: src,
            service: service.to_vec(),
            host_uniq,
            relay_session_id: r.relay.map(<[u8]>::to_vec),
            line_id,
            started: now,
        };
        *self.per_mac.entry(src).or_default() += 1;
        *self.per_line.entry(line).or_default() += 1;
        self.by_client.entry((src, line)).or_default().push(id);
        self.sessions.insert(
            id,
            Entry {
                info: info.clone(),
                cookie: cookie.to_vec(),
            },
        );
        self.pads(&info);
        self.events.push_back(Event::SessionStarted(info));
    }

    /// The next free session id: 1..=0xfffe, not in use (RFC 2516 reserves 0 and
    /// 0xffff).
    fn allocate_id(&mut self) -> Option<u16> {
        for _ in 0..0xfffe {
            let id = self.next_id;
            self.next_id = if id >= 0xfffe { 1 } else { id + 1 };
            if !self.sessions.contains_key(&id) {
                return Some(id);
            }
        }
        None
    }

    fn remove(&mut self, id: u16) -> Option<SessionInfo> {
        let s = self.sessions.remove(&id)?.info;
        if let Some(n) = self.per_mac.get_mut(&s.mac) {
            *n -= 1;
            if *n == 0 {
                self.per_mac.remove(&s.mac);
            }
        }
        if let Some(n) = self.per_line.get_mut(&s.line) {
            *n -= 1;
            if *n == 0 {
                self.per_line.remove(&s.line);
            }
        }
        let key = (s.mac, s.line);
        if let Some(ids) = self.by_client.get_mut(&key) {
            ids.retain(|x| *x != id);
            if ids.is_empty() {
                self.by_client.remove(&key);
            }
        }
        Some(s)
    }

    /// Ends session `id` from our side: PADT to the client (with `reason` as a
    /// Generic-Error tag) and the session forgotten. Returns it, or `None` if unknown.
    pub fn terminate(&mut self, id: u16, reason: &str) -> Option<SessionInfo> {
        let s = self.remove(id)?;
        let mut t = Vec::with_capacity(32);
        if let Some(h) = &s.host_uniq {
            wire::put_tag(&mut t, tag::HOST_UNIQ, h);
        }
        if let Some(rs) = &s.relay_session_id {
            wire::put_tag(&mut t, tag::RELAY_SESSION_ID, rs);
        }
        if !reason.is_empty() {
            wire::put_tag(&mut t, tag::GENERIC_ERROR, reason.as_bytes());
        }
        self.stats.padt_sent += 1;
        self.out.push_back(Transmit {
            line: s.line,
            dst: s.mac,
            payload: wire::build(code::PADT, id, &t),
        });
        Some(s)
    }

    /// The next frame to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// A session by id.
    pub fn session(&self, id: u16) -> Option<&SessionInfo> {
        self.sessions.get(&id).map(|e| &e.info)
    }

    /// The sessions, in no order.
    pub fn sessions(&self) -> impl Iterator<Item = &SessionInfo> {
        self.sessions.values().map(|e| &e.info)
    }

    /// Sessions held.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Whether no session is held.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
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

    /// One refusal counter.
    pub fn refusal_count(&self, r: Refusal) -> u64 {
        self.refusals[r as usize]
    }

    /// The frame counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_skip_0_0xffff_and_ids_in_use() {
        let mut d = Discovery::new(DiscoveryConfig::default(), [2; 6], [0; 32], Instant(0));
        let info = |id| SessionInfo {
            id,
            line: Line::untagged(0),
            mac: [2, 0, 0, 0, 0, 9],
            service: Vec::new(),
            host_uniq: None,
            relay_session_id: None,
            line_id: None,
            started: Instant(0),
        };
        for id in [1, 2, 0xfffe] {
            d.sessions.insert(
                id,
                Entry {
                    info: info(id),
                    cookie: Vec::new(),
                },
            );
        }
        d.next_id = 0xfffd;
        assert_eq!(d.allocate_id(), Some(0xfffd));
        // 0xfffe in use, 0xffff and 0 never, 1 and 2 in use.
        assert_eq!(d.allocate_id(), Some(3));
        d.sessions.clear();
        for id in 1..=0xfffe {
            d.sessions.insert(
                id,
                Entry {
                    info: info(id),
                    cookie: Vec::new(),
                },
            );
        }
        assert_eq!(d.allocate_id(), None);
    }
}
