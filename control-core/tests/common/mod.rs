//! A PPPoE subscriber end to end through both engines, glued the way the shell will glue
//! them (docs/ppp.md): discovery frames to [`Discovery`], session frames (0x8864) by
//! session id to that session's [`Session`], AAA decisions from a local table of CHAP
//! secrets, PADT when the PPP engine finishes. Shared by the access-flow tests and the
//! set-up bench.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::Arc;

use core::net::Ipv4Addr;

use tollgate_control_core::Instant;
use tollgate_control_core::entropy::Sequence;
use tollgate_control_core::ppp::{self, Client, ClientPhase, Credentials, Grant, Session};
use tollgate_control_core::pppoe::wire::{self as pwire, SessionPacket, code, tag};
use tollgate_control_core::pppoe::{self, Discovery, Line};
use tollgate_control_core::wire::ethernet::{BROADCAST, Mac};

pub const AC: Mac = [0x02, 0xac, 0, 0, 0, 1];

/// The gateway side: discovery, PPP sessions by id, a user table.
pub struct Gateway {
    pub discovery: Discovery,
    pub sessions: HashMap<u16, Session>,
    pub users: HashMap<Vec<u8>, Vec<u8>>,
    pub ppp: Arc<ppp::Config>,
    pub rng: Sequence,
    pub next_address: u32,
    pub events: Vec<(u16, ppp::Event)>,
    /// Frames to the subscriber: (dst, ethertype, payload).
    pub out: Vec<(Mac, u16, Vec<u8>)>,
}

impl Gateway {
    pub fn new(ppp_cfg: ppp::Config, now: Instant) -> Gateway {
        Gateway::with_discovery(ppp_cfg, pppoe::DiscoveryConfig::default(), now)
    }

    pub fn with_discovery(
        ppp_cfg: ppp::Config,
        disc: pppoe::DiscoveryConfig,
        now: Instant,
    ) -> Gateway {
        Gateway {
            discovery: Discovery::new(disc, AC, [9; 32], now),
            sessions: HashMap::new(),
            users: HashMap::new(),
            ppp: Arc::new(ppp_cfg),
            rng: Sequence::new(1),
            next_address: u32::from(Ipv4Addr::new(100, 64, 0, 1)),
            events: Vec::new(),
            out: Vec::new(),
        }
    }

    /// A frame from a subscriber on `line`.
    pub fn input(&mut self, now: Instant, line: Line, src: Mac, ethertype: u16, payload: &[u8]) {
        if ethertype == 0x8863 {
            self.discovery.handle_input(now, line, src, AC, payload);
        } else if let Ok(p) = SessionPacket::new_checked(payload) {
            let id = p.session_id();
            // The fast path would check line and MAC; so does the shell here.
            let known = self
                .discovery
                .session(id)
                .is_some_and(|s| s.mac == src && s.line == line);
            if let (true, Some(s)) = (known, self.sessions.get_mut(&id)) {
                s.handle_input(now, &mut self.rng, p.protocol(), p.ppp_payload());
            }
        }
        self.drive(now);
    }

    /// Runs timers due at `now`.
    pub fn tick(&mut self, now: Instant) {
        let ids: Vec<u16> = self.sessions.keys().copied().collect();
        for id in ids {
            if let Some(s) = self.sessions.get_mut(&id)
                && s.poll_timeout().is_some_and(|t| t <= now)
            {
                s.handle_timeout(now, &mut self.rng);
            }
        }
        self.drive(now);
    }

    /// Routes every engine output: the shell's loop.
    pub fn drive(&mut self, now: Instant) {
        while let Some(e) = self.discovery.poll_event() {
            match e {
                pppoe::Event::SessionStarted(info) => {
                    let s = Session::new(self.ppp.clone(), now, &mut self.rng);
                    self.sessions.insert(info.id, s);
                }
                pppoe::Event::SessionEnded { info, .. } => {
                    if let Some(mut s) = self.sessions.remove(&info.id) {
                        s.lower_down();
                    }
                }
            }
        }
        while let Some(t) = self.discovery.poll_transmit() {
            self.out.push((t.dst, 0x8863, t.payload));
        }
        let ids: Vec<u16> = self.sessions.keys().copied().collect();
        for id in ids {
            let mut finished = false;
            let Some(s) = self.sessions.get_mut(&id) else {
                continue;
            };
            let mac = self.discovery.session(id).map_or(BROADCAST, |i| i.mac);
            while let Some(t) = s.poll_transmit() {
                self.out
                    .push((mac, 0x8864, pwire::session_frame(id, t.protocol, &t.packet)));
            }
            while let Some(e) = s.poll_event() {
                match &e {
                    ppp::Event::Authenticate(req) => {
                        // The local store: CHAP needs the secret itself.
                        let ok = match (&req.credentials, self.users.get(&req.user)) {
                            (Credentials::Chap { .. }, Some(secret)) => {
                                req.credentials.verify_chap(secret)
                            }
                            (Credentials::Pap { password }, Some(secret)) => password == secret,
                            _ => false,
                        };
                        if ok {
                            let address = Ipv4Addr::from(self.next_address);
                            self.next_address += 1;
                            let _ = s.accept(now, &mut self.rng, Grant::new(address));
                        } else {
                            let _ = s.reject(now, &mut self.rng, "authentication failed");
                        }
                    }
                    ppp::Event::Finished { .. } => finished = true,
                    _ => {}
                }
                self.events.push((id, e));
            }
            // A decision queues packets too.
            while let Some(t) = s.poll_transmit() {
                self.out
                    .push((mac, 0x8864, pwire::session_frame(id, t.protocol, &t.packet)));
            }
            if finished {
                self.sessions.remove(&id);
                if let Some(info) = self.discovery.terminate(id, "") {
                    let _ = info;
                }
                while let Some(t) = self.discovery.poll_transmit() {
                    self.out.push((t.dst, 0x8863, t.payload));
                }
            }
        }
    }
}

/// The subscriber side: PPPoE discovery by hand, then the PPP client.
pub struct Subscriber {
    pub mac: Mac,
    pub line: Line,
    pub session_id: u16,
    pub client: Client,
    pub padt_received: bool,
}

impl Subscriber {
    pub fn new(mac: Mac, line: Line, user: &[u8], secret: &[u8], rng: &mut Sequence) -> Self {
        Subscriber {
            mac,
            line,
            session_id: 0,
            client: Client::new(user, secret, rng),
            padt_received: false,
        }
    }

    /// The PADI.
    pub fn padi(&self) -> Vec<u8> {
        let mut t = Vec::new();
        pwire::put_tag(&mut t, tag::SERVICE_NAME, b"");
        pwire::put_tag(&mut t, tag::HOST_UNIQ, &self.mac);
        pwire::build(code::PADI, 0, &t)
    }

    /// A frame from the gateway; returns frames to send back (ethertype, payload).
    pub fn input(&mut self, ethertype: u16, payload: &[u8]) -> Vec<(u16, Vec<u8>)> {
        let mut out = Vec::new();
        if ethertype == 0x8863 {
            let Ok(p) = pwire::Packet::new_checked(payload) else {
                return out;
            };
            match p.code() {
                code::PADO => {
                    let mut t = Vec::new();
                    pwire::put_tag(&mut t, tag::SERVICE_NAME, b"");
                    pwire::put_tag(&mut t, tag::HOST_UNIQ, &self.mac);
                    for tg in p.tags().flatten() {
                        if tg.kind == tag::AC_COOKIE {
                            pwire::put_tag(&mut t, tag::AC_COOKIE, tg.value);
                        }
                    }
                    out.push((0x8863, pwire::build(code::PADR, 0, &t)));
                }
                code::PADS if p.session_id() != 0 => {
                    self.session_id = p.session_id();
                    self.client.start();
                }
                code::PADT => self.padt_received = true,
                _ => {}
            }
        } else if let Ok(p) = SessionPacket::new_checked(payload) {
            self.client.handle_input(p.protocol(), p.ppp_payload());
        }
        while let Some(t) = self.client.poll_transmit() {
            out.push((
                0x8864,
                pwire::session_frame(self.session_id, t.protocol, &t.packet),
            ));
        }
        out
    }

    pub fn up(&self) -> bool {
        self.client.phase() == ClientPhase::Up
    }
}

/// Brings `subs` up against `gw` at `now`; returns the frames exchanged.
pub fn connect_all(gw: &mut Gateway, subs: &mut [Subscriber], now: Instant) -> usize {
    let mut frames = 0;
    let by_mac: HashMap<Mac, usize> = subs.iter().enumerate().map(|(i, s)| (s.mac, i)).collect();
    let mut inbox: Vec<(usize, u16, Vec<u8>)> = Vec::new();
    for (i, s) in subs.iter().enumerate() {
        inbox.push((i, 0x8863, s.padi()));
    }
    while !inbox.is_empty() {
        for (i, et, p) in inbox.drain(..) {
            frames += 1;
            let (line, mac) = (subs[i].line, subs[i].mac);
            gw.input(now, line, mac, et, &p);
        }
        for (dst, et, p) in gw.out.drain(..) {
            frames += 1;
            if let Some(&i) = by_mac.get(&dst) {
                for (et2, p2) in subs[i].input(et, &p) {
                    inbox.push((i, et2, p2));
                }
            }
        }
    }
    frames
}
