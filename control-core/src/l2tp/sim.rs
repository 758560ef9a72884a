//! The engine against itself: a LAC and an LNS joined by a simulated line (latency, a
//! seeded loss pattern for control messages), each with the fast path's real
//! [`L2tpTable`] applying the commands, a fake clock, and sequence-numbered data sent
//! through whatever session each subscriber is steered into. The engine's tests use it,
//! and so do the shell's (feature `sim`: the ctl commands against a live engine).
//!
//! The removed IP mode's rows (`L2tp::open`) are still steered by subscriber address
//! here: the fast path no longer does it, so each end keeps that steering itself
//! (`Node::steered`), as the worker's table did, until those tests move to switched
//! calls.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::time::Duration;

use tollgate_dataplane::l2tp::L2tpTable;
use tollgate_dataplane::time::Instant;
use tollgate_dataplane::{Command, ForwardingBuilder, MacAddr, SideConfig};

use super::consolidate::Capacity;
use super::*;
use crate::time::WallClock;

/// The LAC's address on the line.
pub const LAC_LINE: Ipv4Addr = Ipv4Addr::new(172, 16, 0, 1);
/// The LNS's address on the line.
pub const LNS_LINE: Ipv4Addr = Ipv4Addr::new(172, 16, 0, 2);

/// Forwarding with these access and core subnets.
pub fn fwd(access: (Ipv4Addr, u8), core: (Ipv4Addr, u8)) -> Arc<Forwarding> {
    let side = |(address, prefix_len), m| SideConfig {
        mac: MacAddr([2, 0, 0, 0, 0, m]),
        address,
        prefix_len,
    };
    Arc::new(
        ForwardingBuilder::new(side(access, 1), side(core, 2))
            .build()
            .unwrap(),
    )
}

/// The address of subscriber `i`.
pub fn sub(i: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 10, 0, 20 + i)
}

/// A LAC with one line of `tunnels` tunnels of `capacity`, and customers
/// `(name, consolidate)`.
pub fn lac_settings(tunnels: u32, capacity: Capacity, customers: &[(&str, bool)]) -> Settings {
    let mut s = Settings::new("lac", Seed::fixed([11; 32]));
    s.secret = Some(b"tunnel secret".to_vec());
    s.hide_avps = true;
    s.lines = vec![LineSettings {
        name: "line1".into(),
        peer: LNS_LINE,
        peer_port: 1701,
        fallback: Vec::new(),
        tunnels,
        capacity,
    }];
    s.customers = customers
        .iter()
        .map(|(n, c)| CustomerSettings {
            name: n.to_string(),
            account: format!("acct-{n}"),
            consolidate: *c,
            lines: Vec::new(),
        })
        .collect();
    s
}

/// An LNS that accepts tunnels with the LAC's secret.
pub fn lns_settings() -> Settings {
    let mut s = Settings::new("lns", Seed::fixed([22; 32]));
    s.secret = Some(b"tunnel secret".to_vec());
    s.accept = true;
    // The simulated LAC places IP subscribers (the engine's tests of the table).
    s.ip_calls = true;
    s
}

struct Node {
    l2tp: L2tp,
    table: L2tpTable,
    /// IP subscribers (the removed IP mode's rows): the session each is steered into,
    /// only ever one of its own (what the worker's table kept before).
    steered: BTreeMap<Ipv4Addr, u16>,
    addr: Ipv4Addr,
    records: Vec<Record>,
}

impl Node {
    fn apply(&mut self, c: &Command) {
        match *c {
            Command::L2tpSessionSet(spec) => {
                // A replaced session keeps its steered subscriber only if it is the same.
                self.steered
                    .retain(|sub, s| *s != spec.session || *sub == spec.subscriber);
                self.table.install(&spec).unwrap()
            }
            Command::L2tpSteer {
                subscriber,
                session,
            } => {
                let e = self
                    .table
                    .get(session)
                    .expect("steered into an installed session");
                assert_eq!(e.spec.subscriber, subscriber);
                if e.spec.pppoe.is_some() {
                    self.table.steer(subscriber, session).unwrap();
                } else {
                    self.steered.insert(subscriber, session);
                }
            }
            Command::L2tpSessionRemove { session } => {
                self.steered.retain(|_, s| *s != session);
                self.table.remove(session);
            }
            Command::L2tpReport { .. } => {}
            ref other => panic!("unexpected command {other:?}"),
        }
    }
}

/// Everything in flight on the line: (arrival, to the LNS?, datagram).
type Wire = Vec<(Instant, bool, Vec<u8>)>;

/// Two engines, a line between them and a fake clock.
pub struct Sim {
    now: Instant,
    lac: Node,
    lns: Node,
    wire: Wire,
    /// Data in flight: (arrival, up?, subscriber, session at the receiver, peer tunnel, seq).
    data: Vec<(Instant, bool, Ipv4Addr, u16, u16, u32)>,
    latency: Duration,
    /// Control datagrams lost per million.
    pub loss_ppm: u64,
    rng: u64,
    /// Control datagrams lost.
    pub lost: u64,
    /// Control datagrams sent.
    pub sent: u64,
    /// LAC datagrams to an address other than the LNS's: nobody answers them.
    pub unanswered: u64,
    /// Sequence numbers received per (subscriber, up?).
    pub got: BTreeMap<(Ipv4Addr, bool), Vec<u32>>,
    next_seq: BTreeMap<(Ipv4Addr, bool), u32>,
    /// LNS, PPP calls as its gateway would hold them: by the L2TP session that carries
    /// each now, its call number (in order of ICCN) and the address IPCP gave.
    pub ppp_calls: BTreeMap<u16, (u32, Ipv4Addr)>,
    /// LNS: what happened to PPP calls (`up N`, `moved N FROM->TO`, `ended N`), in order.
    pub ppp_events: Vec<String>,
    /// LAC: the switched calls' outputs, in order.
    pub switch_events: Vec<L2tpOutput>,
    ipcp_due: Vec<u16>,
    /// PPP data in flight: (arrival, up?, PPPoE session, session at the receiver, tunnel
    /// at the receiver, seq).
    ppp_data: Vec<(Instant, bool, u16, u16, u16, u32)>,
    /// Sequence numbers received per (PPPoE session, up?).
    pub ppp_got: BTreeMap<(u16, bool), Vec<u32>>,
    ppp_next: BTreeMap<(u16, bool), u32>,
}

impl Sim {
    /// The LNS's fast-path L2TP table (what its commands built).
    pub fn lns_table(&self) -> &L2tpTable {
        &self.lns.table
    }

    /// A LAC and an LNS with these settings, started at a fixed instant.
    pub fn new(lac: Settings, lns: Settings) -> Sim {
        let now = Instant(1_000_000_000);
        let clock = WallClock {
            offset_ns: 1_700_000_000_000_000_000,
        };
        let lac_fwd = fwd((Ipv4Addr::new(10, 10, 0, 1), 24), (LAC_LINE, 24));
        let lns_fwd = fwd((LNS_LINE, 24), (Ipv4Addr::new(192, 0, 2, 1), 24));
        let (lm, nm) = (lac.max_sessions, lns.max_sessions);
        Sim {
            now,
            lac: Node {
                l2tp: L2tp::new(now, lac, lac_fwd, clock),
                table: L2tpTable::new(lm, 1500),
                steered: BTreeMap::new(),
                addr: LAC_LINE,
                records: Vec::new(),
            },
            lns: Node {
                l2tp: L2tp::new(now, lns, lns_fwd, clock),
                table: L2tpTable::new(nm, 1500),
                steered: BTreeMap::new(),
                addr: LNS_LINE,
                records: Vec::new(),
            },
            wire: Vec::new(),
            data: Vec::new(),
            latency: Duration::from_millis(1),
            loss_ppm: 0,
            rng: 0x1234_5678_9abc_def1,
            lost: 0,
            sent: 0,
            unanswered: 0,
            got: BTreeMap::new(),
            next_seq: BTreeMap::new(),
            ppp_calls: BTreeMap::new(),
            ppp_events: Vec::new(),
            switch_events: Vec::new(),
            ipcp_due: Vec::new(),
            ppp_data: Vec::new(),
            ppp_got: BTreeMap::new(),
            ppp_next: BTreeMap::new(),
        }
    }

    fn lose(&mut self) -> bool {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng % 1_000_000 < self.loss_ppm
    }

    fn drain(&mut self, to_lns: bool) {
        loop {
            let node = if to_lns { &mut self.lac } else { &mut self.lns };
            let Some(o) = node.l2tp.poll_output() else {
                break;
            };
            match o {
                L2tpOutput::Send { local, peer, bytes } => {
                    assert_eq!(local, node.addr);
                    assert_eq!(peer.port(), 1701);
                    if to_lns && *peer.ip() != LNS_LINE {
                        // No LNS there (a line's failed LNS): nothing answers.
                        self.unanswered += 1;
                        continue;
                    }
                    self.sent += 1;
                    if self.lose() {
                        self.lost += 1;
                    } else {
                        self.wire.push((self.now + self.latency, to_lns, bytes));
                    }
                }
                L2tpOutput::Command(Command::L2tpReport { seq }) => {
                    let entries: Vec<_> = node
                        .table
                        .sessions_from(0)
                        .map(|e| (e.spec.session, e.counters))
                        .collect();
                    for (s, c) in entries {
                        node.l2tp.on_counters(seq, s, c);
                    }
                    node.l2tp.on_reported(self.now, seq);
                }
                L2tpOutput::Command(c) => node.apply(&c),
                L2tpOutput::Record(r) => node.records.push(r),
                // The LNS's gateway: a PPP call's IPCP opens at once.
                L2tpOutput::Call(c) => {
                    let n = self.ppp_calls.len() as u32 + self.ppp_events.len() as u32;
                    let address = Ipv4Addr::new(10, 77, 0, 1 + (n % 250) as u8);
                    self.ppp_calls.insert(c.session, (n, address));
                    self.ppp_events.push(format!("up {n}"));
                    self.ipcp_due.push(c.session);
                }
                L2tpOutput::CallMoved { from, to, .. } => {
                    if let Some(c) = self.ppp_calls.remove(&from) {
                        self.ppp_events.push(format!("moved {} {from}->{to}", c.0));
                        self.ppp_calls.insert(to, c);
                    }
                }
                L2tpOutput::CallEnded { session, .. } => {
                    if let Some(c) = self.ppp_calls.remove(&session) {
                        self.ppp_events.push(format!("ended {}", c.0));
                    }
                }
                o @ (L2tpOutput::Switched { .. }
                | L2tpOutput::SwitchMoved { .. }
                | L2tpOutput::SwitchEnded { .. }) => self.switch_events.push(o),
            }
        }
    }

    fn pump(&mut self) {
        self.drain(true);
        self.drain(false);
        for sid in std::mem::take(&mut self.ipcp_due) {
            if let Some((_, a)) = self.ppp_calls.get(&sid).copied() {
                self.lns.l2tp.set_call_address(sid, Some(a));
            }
        }
        self.drain(false);
        self.drain(true);
    }

    /// Runs the clock to `until`, event by event.
    pub fn run_until(&mut self, until: Instant) {
        loop {
            self.pump();
            let next = [
                self.wire.iter().map(|w| w.0).min(),
                self.data.iter().map(|d| d.0).min(),
                self.ppp_data.iter().map(|d| d.0).min(),
                self.lac.l2tp.poll_timeout(),
                self.lns.l2tp.poll_timeout(),
            ]
            .into_iter()
            .flatten()
            .min()
            .map(|t| t.max(self.now));
            // Nothing left to happen before `until` (or at all: then the clock jumps).
            let Some(next) = next.filter(|t| *t <= until) else {
                self.now = until;
                self.lac.l2tp.tick(self.now);
                self.lns.l2tp.tick(self.now);
                self.pump();
                return;
            };
            self.now = next;
            let now = self.now;
            let (due, rest): (Wire, Wire) = self.wire.drain(..).partition(|w| w.0 <= now);
            self.wire = rest;
            for (_, to_lns, bytes) in due {
                let (from, node) = if to_lns {
                    (LAC_LINE, &mut self.lns)
                } else {
                    (LNS_LINE, &mut self.lac)
                };
                let dst = node.addr;
                node.l2tp
                    .on_datagram(now, SocketAddrV4::new(from, 1701), dst, &bytes);
                self.pump();
            }
            let (due, rest): (Vec<_>, Vec<_>) = self.data.drain(..).partition(|d| d.0 <= now);
            self.data = rest;
            for (_, up, subscriber, session, tunnel, seq) in due {
                let node = if up { &mut self.lns } else { &mut self.lac };
                let ok = node
                    .table
                    .get(session)
                    .is_some_and(|e| e.spec.tunnel == tunnel && e.spec.subscriber == subscriber);
                if ok {
                    self.got.entry((subscriber, up)).or_default().push(seq);
                }
            }
            let (due, rest): (Vec<_>, Vec<_>) = self.ppp_data.drain(..).partition(|d| d.0 <= now);
            self.ppp_data = rest;
            for (_, up, pppoe, session, tunnel, seq) in due {
                let node = if up { &self.lns } else { &self.lac };
                let Some(e) = node.table.get(session).filter(|e| e.spec.tunnel == tunnel) else {
                    continue;
                };
                // Up: the LNS's gateway takes it when the session is its call's (or the
                // one its call was moved from) and the source is the call's address.
                // Down: the LAC switches it to the session's PPPoE leg.
                let ok = if up {
                    let call = self.lns.l2tp.sessions().get(&session).and_then(|s| {
                        self.ppp_calls
                            .get(&session)
                            .or_else(|| self.ppp_calls.get(&s.moved_to?))
                    });
                    call.is_some_and(|c| c.1 == e.spec.subscriber)
                } else {
                    e.spec.pppoe.is_some_and(|l| l.session == pppoe)
                };
                if ok {
                    self.ppp_got.entry((pppoe, up)).or_default().push(seq);
                }
            }
            self.lac.l2tp.tick(now);
            self.lns.l2tp.tick(now);
        }
    }

    /// Sends one PPP data frame each way for the PPPoE session `pppoe` of MAC `client`
    /// (a switched call): up through the session the LAC's fast path switches its leg
    /// into, down through the session the LNS's gateway has its call on.
    pub fn send_ppp(&mut self, pppoe: u16, client: MacAddr) {
        let up = self
            .lac
            .table
            .switched_session(pppoe, client, Default::default())
            .and_then(|s| self.lac.table.get(s))
            .map(|e| (e.spec.peer_session, e.spec.peer_tunnel, e.spec.session));
        let down = up.and_then(|(peer_session, _, _)| {
            let (&sid, _) = self.ppp_calls.iter().find(|(sid, _)| {
                **sid == peer_session
                    || self
                        .lns
                        .l2tp
                        .sessions()
                        .get(&peer_session)
                        .is_some_and(|s| s.moved_to == Some(**sid))
            })?;
            let e = self.lns.table.get(sid)?;
            Some((e.spec.peer_session, e.spec.peer_tunnel, sid))
        });
        if let Some(e) = up.and_then(|(_, _, s)| self.lac.table.get_mut(s)) {
            e.counters.encap_packets += 1;
            e.counters.encap_bytes += 100;
        }
        for (dir, path) in [(true, up), (false, down)] {
            let Some((session, tunnel, _)) = path else {
                continue;
            };
            let seq = self.ppp_next.entry((pppoe, dir)).or_default();
            let n = *seq;
            *seq += 1;
            self.ppp_data
                .push((self.now + self.latency, dir, pppoe, session, tunnel, n));
        }
    }

    /// True when every PPP frame sent so far for PPPoE session `pppoe` arrived, once,
    /// in order, both ways (and some were sent each way).
    pub fn ppp_lossless(&self, pppoe: u16) -> bool {
        [true, false].iter().all(|up| {
            let sent = self.ppp_next.get(&(pppoe, *up)).copied().unwrap_or(0);
            let got = self.ppp_got.get(&(pppoe, *up)).cloned().unwrap_or_default();
            sent > 0 && got == (0..sent).collect::<Vec<_>>()
        })
    }

    /// Runs for `d` more.
    pub fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        self.run_until(until);
    }

    /// Sends `bytes` of data each way for `subscriber` through its steered sessions.
    pub fn send_data(&mut self, subscriber: Ipv4Addr, bytes: u64) {
        for up in [true, false] {
            let (from, _) = if up {
                (&mut self.lac, ())
            } else {
                (&mut self.lns, ())
            };
            let Some(&s) = from.steered.get(&subscriber) else {
                continue;
            };
            let Some(e) = from.table.get_mut(s) else {
                continue;
            };
            e.counters.encap_bytes += bytes;
            let (peer_session, peer_tunnel) = (e.spec.peer_session, e.spec.peer_tunnel);
            let seq = self.next_seq.entry((subscriber, up)).or_default();
            let n = *seq;
            *seq += 1;
            self.data.push((
                self.now + self.latency,
                up,
                subscriber,
                peer_session,
                peer_tunnel,
                n,
            ));
        }
    }

    /// True when every packet sent so far for `subscriber` arrived, once, in order.
    pub fn lossless(&self, subscriber: Ipv4Addr) -> bool {
        [true, false].iter().all(|up| {
            let sent = self.next_seq.get(&(subscriber, *up)).copied().unwrap_or(0);
            let got = self
                .got
                .get(&(subscriber, *up))
                .cloned()
                .unwrap_or_default();
            got == (0..sent).collect::<Vec<_>>()
        })
    }

    /// The LAC's engine.
    pub fn lac(&mut self) -> &mut L2tp {
        &mut self.lac.l2tp
    }

    /// The LNS's engine.
    pub fn lns(&mut self) -> &mut L2tp {
        &mut self.lns.l2tp
    }

    /// The simulated time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// The usage records the LAC produced.
    pub fn lac_records(&self) -> &[Record] {
        &self.lac.records
    }

    /// The LAC's live tunnels per customer name.
    pub fn tunnels_per_customer(&self) -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for t in self.lac.l2tp.tunnels().values() {
            if t.state == TunnelState::Established {
                *m.entry(t.customer_name.clone()).or_default() += 1;
            }
        }
        m
    }

    /// Every subscriber carried by an established session, steered on both ends into
    /// the two halves of one session, and no move in flight.
    pub fn settled(&self) -> bool {
        let lac = &self.lac.l2tp;
        lac.subscribers().values().filter(|o| o.call.is_none()).all(|o| {
            o.moving_to.is_none()
                && o.session.is_some_and(|sid| {
                    let Some(s) = lac.sessions().get(&sid) else {
                        return false;
                    };
                    s.state == SessionState::Established
                        && self.lac.steered.get(&o.address) == Some(&sid)
                        && self.lns.steered.get(&o.address) == Some(&s.peer_id)
                })
        }) && self.lac.l2tp.replan_due.is_empty()
            // Moved-from sessions closed and emptied tunnels torn down too: counting
            // tunnels while a lost CDN acknowledgement is retransmitted sees one more.
            && self.lac.l2tp.is_settled()
    }
}
