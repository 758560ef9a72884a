//! PPPoE subscribers switched into L2TP tunnels (LAC), driven through the core with a
//! fake clock: the subscriber is the PPP client engine behind PPPoE discovery on a QinQ
//! line; the LNSes are built here from the L2TP wire codec and reliable delivery. Checked
//! on the wire: the SCCRQ to the LNS of lowest preference, the ICCN's proxy LCP and
//! proxy authentication AVPs (the very Configure-Requests and PAP request exchanged),
//! the fast-path session with its PPPoE leg, one tunnel for two subscribers, failover to
//! the next LNS, and the ends both ways (CDN and PADT).

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::time::Duration;

use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use tollgate_dataplane::l2tp::{L2tpCounters, L2tpSessionSpec, PppoeLeg, TunnelRole};
use tollgate_dataplane::session::{VlanTag, Vlans};
use tollgate_dataplane::{Command, Event, ForwardingBuilder, Frame, MacAddr, Side, SideConfig};

use super::aaa::{AaaPolicy, AuthRequest};
use super::lac::LacCallView;
use super::neighbor::Timing;
use super::pppoe::PppoeSettings;
use super::{Core, CoreConfig, Output};
use crate::entropy::Sequence;
use crate::l2tp::Settings;
use crate::l2tp::lac::{LacRealm, LnsChoice};
use crate::l2tp::reliable::{Channel, Timing as L2tpTiming};
use crate::l2tp::wire::{self, Builder, Message, attr, kind};
use crate::ppp::{self, AuthMethod, Client};
use crate::pppoe::DiscoveryConfig;
use crate::pppoe::line::LineId;
use crate::pppoe::wire::{self as pwire, SessionPacket, code, tag};
use crate::radius::attrs::{AcctRecord, AcctTunnel, Counters, PppoeLine};
use crate::radius::dict::{AcctStatusType, DisconnectCause};
use crate::random::Seed;
use crate::time::{Instant, WallClock};
use crate::wire::ethernet::{self, Tag};

const AC_MAC: [u8; 6] = [0x02, 0xac, 0, 0, 0, 1];
const CORE_MAC: MacAddr = MacAddr([0x02, 0xc0, 0, 0, 0, 1]);
const LNS_MAC: MacAddr = MacAddr([0x02, 0xb0, 0, 0, 0, 1]);
const LAC: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const LNS1: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 11);
const LNS2: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 12);
const SEC: u64 = 1_000_000_000;
/// The Challenge an LNS with a secret sends in its SCCRP.
const LNS_CHALLENGE: [u8; 16] = [0x5a; 16];

fn core() -> Core {
    core_with(AaaPolicy::default())
}

fn core_with(aaa: AaaPolicy) -> Core {
    core_tweaked(aaa, |_| {})
}

/// The LAC core with its L2TP settings changed by `tweak` (lines, customers).
fn core_tweaked(aaa: AaaPolicy, tweak: impl FnOnce(&mut Settings)) -> Core {
    let fwd = ForwardingBuilder::new(
        SideConfig {
            mac: MacAddr(AC_MAC),
            address: Ipv4Addr::new(10, 10, 0, 1),
            prefix_len: 24,
        },
        SideConfig {
            mac: CORE_MAC,
            address: LAC,
            prefix_len: 24,
        },
    )
    .build()
    .unwrap();
    let mut l2tp = Settings::new("tg-lac", Seed::fixed([5; 32]));
    let choice = |ip, preference| LnsChoice {
        peer: SocketAddrV4::new(ip, 1701),
        assignment: "isp".into(),
        preference,
        secret: None,
    };
    // Listed out of order: preference decides.
    l2tp.lac_realms = vec![LacRealm {
        realm: "isp.example".into(),
        lns: vec![choice(LNS2, 20), choice(LNS1, 10)],
        customer: None,
        level: 0,
    }];
    tweak(&mut l2tp);
    Core::new(
        Instant(SEC),
        Arc::new(fwd),
        CoreConfig {
            arp: Timing::default(),
            static_neighbors: vec![(LNS1, LNS_MAC), (LNS2, LNS_MAC)],
            workers: 1,
            service_names: Vec::new(),
            clock: WallClock::UNIX,
            aaa,
            l2tp: Some(l2tp),
            pppoe: Some(PppoeSettings {
                discovery: DiscoveryConfig {
                    ac_name: "tg-ac".into(),
                    ..DiscoveryConfig::default()
                },
                ppp: ppp::Config {
                    auth: vec![AuthMethod::Pap],
                    local_ipv4: Ipv4Addr::new(10, 10, 0, 1),
                    echo_interval: Some(Duration::from_secs(10)),
                    ..ppp::Config::default()
                },
                dns: [None, None],
                mss_clamp: true,
                port_name: "access0".into(),
                seed: Seed::fixed([7; 32]),
            }),
            lns: None,
            ipv6: None,
            dhcp: None,
        },
    )
}

fn qinq() -> Vec<Tag> {
    vec![
        Tag {
            tpid: 0x88a8,
            pcp: 0,
            dei: false,
            vid: 100,
        },
        Tag {
            tpid: 0x8100,
            pcp: 0,
            dei: false,
            vid: 7,
        },
    ]
}

/// One PPPoE subscriber: discovery by hand, PPP by the client engine.
struct Subscriber {
    mac: [u8; 6],
    client: Client,
    session_id: u16,
    /// Every PPP frame it sent and received: (from the client, protocol, packet).
    ppp: Vec<(bool, u16, Vec<u8>)>,
    padt: bool,
}

/// One LNS: its control channel per tunnel (one tunnel here).
struct Lns {
    ip: Ipv4Addr,
    chan: Channel,
    /// Our tunnel id (given in SCCRP).
    tunnel: u16,
    /// The LAC's tunnel id.
    lac_tunnel: u16,
    /// Control messages received, in order.
    control: Vec<Message>,
    /// Answer SCCRQ (else it stays silent: a dead LNS).
    answers: bool,
    /// Its tunnel secret: it answers the LAC's Challenge and challenges back.
    secret: Option<Vec<u8>>,
    /// It says it is a Tollgate (Vendor Name in SCCRP): the LAC may move calls.
    tollgate: bool,
    /// Data messages received: (session, PPP frame after ff 03).
    data: Vec<(u16, Vec<u8>)>,
    /// Control messages received, as they came on the wire.
    raw: Vec<Vec<u8>>,
    next_session: u16,
}

struct Rig {
    core: Core,
    now: Instant,
    subs: Vec<Subscriber>,
    lns: Vec<Lns>,
    auth: Vec<AuthRequest>,
    commands: Vec<Command>,
    /// Accounting records, in order.
    acct: Vec<AcctRecord>,
    /// What the fast path counted, by our L2TP session id (answers its reports).
    fast: Vec<(u16, L2tpCounters)>,
    /// The TR-101 Vendor-Specific tag value the access node puts in PADI and PADR.
    tr101: Option<Vec<u8>>,
}

impl Rig {
    fn new() -> Rig {
        let lns = |ip, tunnel| Lns {
            ip,
            chan: Channel::new(L2tpTiming::default()),
            tunnel,
            lac_tunnel: 0,
            control: Vec::new(),
            answers: true,
            secret: None,
            tollgate: false,
            data: Vec::new(),
            raw: Vec::new(),
            next_session: 0x100,
        };
        Rig {
            core: core(),
            now: Instant(SEC),
            subs: Vec::new(),
            lns: vec![lns(LNS1, 0x11), lns(LNS2, 0x22)],
            auth: Vec::new(),
            commands: Vec::new(),
            acct: Vec::new(),
            fast: Vec::new(),
            tr101: None,
        }
    }

    fn with_policy(aaa: AaaPolicy) -> Rig {
        Rig {
            core: core_with(aaa),
            ..Rig::new()
        }
    }

    fn access_frame(&self, mac: [u8; 6], dst: [u8; 6], ethertype: u16, payload: &[u8]) -> Frame {
        let mut b = Vec::new();
        ethernet::write_header(&mut b, dst, mac, &qinq(), ethertype);
        b.extend_from_slice(payload);
        Frame::new(Side::Access, &b).unwrap()
    }

    /// A new subscriber `user` sends PADI; everything runs until quiet.
    fn dial(&mut self, last: u8, user: &[u8]) -> usize {
        let mut rng = Sequence::new(11 + last as u64);
        self.subs.push(Subscriber {
            mac: [0x02, 0, 0, 0, 0, last],
            client: Client::new(user, b"s3cret", &mut rng),
            session_id: 0,
            ppp: Vec::new(),
            padt: false,
        });
        let i = self.subs.len() - 1;
        let mut t = Vec::new();
        pwire::put_tag(&mut t, tag::SERVICE_NAME, b"");
        if let Some(v) = &self.tr101 {
            pwire::put_tag(&mut t, tag::VENDOR_SPECIFIC, v);
        }
        let p = pwire::build(code::PADI, 0, &t);
        let f = self.access_frame(self.subs[i].mac, [0xff; 6], 0x8863, &p);
        self.core.on_punt(self.now, 0, &f);
        self.pump();
        i
    }

    /// Moves outputs, the subscribers' and LNSes' answers until quiet.
    fn pump(&mut self) {
        loop {
            let mut progressed = false;
            while let Some(o) = self.core.poll_output() {
                progressed = true;
                match o {
                    Output::Inject(_, f) if f.side == Side::Access => {
                        self.deliver_to_subscriber(&f)
                    }
                    Output::Inject(_, f) => self.deliver_to_lns(&f),
                    Output::Authenticate(a) => self.auth.push(a),
                    Output::Account(r) => self.acct.push(r),
                    Output::Command(_, Command::L2tpReport { seq }) => {
                        // The one worker reports what it counted.
                        for (session, counters) in self.fast.clone() {
                            let ev = Event::L2tpCounters {
                                session,
                                tunnel: 0,
                                seq,
                                counters,
                            };
                            self.core.on_event(self.now, 0, ev);
                        }
                        let ev = Event::L2tpReported {
                            seq,
                            sessions: self.fast.len() as u32,
                        };
                        self.core.on_event(self.now, 0, ev);
                    }
                    Output::Command(_, c) => self.commands.push(c),
                    _ => {}
                }
            }
            for i in 0..self.subs.len() {
                while let Some(t) = self.subs[i].client.poll_transmit() {
                    progressed = true;
                    let s = &mut self.subs[i];
                    s.ppp.push((true, t.protocol, t.packet.clone()));
                    let p = pwire::session_frame(s.session_id, t.protocol, &t.packet);
                    let f = self.access_frame(self.subs[i].mac, AC_MAC, 0x8864, &p);
                    self.core.on_punt(self.now, 0, &f);
                }
            }
            for i in 0..self.lns.len() {
                while let Some(bytes) = self.lns[i].chan.poll_transmit(self.now) {
                    progressed = true;
                    let f = self.lns_datagram(i, &bytes);
                    self.core.on_punt(self.now, 0, &f);
                }
            }
            if !progressed {
                return;
            }
        }
    }

    /// A UDP datagram from LNS `i` to the LAC, as the fast path punts it.
    fn lns_datagram(&self, i: usize, payload: &[u8]) -> Frame {
        let mut f = Vec::new();
        etherparse::PacketBuilder::ethernet2(LNS_MAC.0, CORE_MAC.0)
            .ipv4(self.lns[i].ip.octets(), LAC.octets(), 64)
            .udp(1701, 1701)
            .write(&mut f, payload)
            .unwrap();
        Frame::new(Side::Core, &f).unwrap()
    }

    fn deliver_to_subscriber(&mut self, f: &Frame) {
        let b = f.bytes();
        let h = ethernet::Frame::new_checked(b).unwrap().header().unwrap();
        let Some(s) = self
            .subs
            .iter_mut()
            .find(|s| s.mac == h.dst || h.dst == [0xff; 6])
        else {
            panic!("a frame for no subscriber");
        };
        assert_eq!(h.src, AC_MAC);
        let payload = &b[h.payload_at..];
        if h.ethertype == 0x8863 {
            let p = pwire::Packet::new_checked(payload).unwrap();
            match p.code() {
                code::PADO => {
                    let mut t = Vec::new();
                    pwire::put_tag(&mut t, tag::SERVICE_NAME, b"");
                    for tg in p.tags().flatten() {
                        if tg.kind == tag::AC_COOKIE {
                            pwire::put_tag(&mut t, tag::AC_COOKIE, tg.value);
                        }
                    }
                    if let Some(v) = &self.tr101 {
                        pwire::put_tag(&mut t, tag::VENDOR_SPECIFIC, v);
                    }
                    let padr = pwire::build(code::PADR, 0, &t);
                    let mac = s.mac;
                    let f = self.access_frame(mac, AC_MAC, 0x8863, &padr);
                    self.core.on_punt(self.now, 0, &f);
                }
                code::PADS => {
                    s.session_id = p.session_id();
                    s.client.start();
                }
                code::PADT => s.padt = true,
                _ => {}
            }
        } else {
            let p = SessionPacket::new_checked(payload).unwrap();
            s.ppp.push((false, p.protocol(), p.ppp_payload().to_vec()));
            s.client.handle_input(p.protocol(), p.ppp_payload());
        }
    }

    fn deliver_to_lns(&mut self, f: &Frame) {
        let p = SlicedPacket::from_ethernet(f.bytes()).unwrap();
        let Some(NetSlice::Ipv4(ip)) = &p.net else {
            panic!("not IPv4")
        };
        assert_eq!(ip.header().source_addr(), LAC);
        assert_eq!(&f.bytes()[..6], &LNS_MAC.0);
        let dst = ip.header().destination_addr();
        let Some(TransportSlice::Udp(u)) = &p.transport else {
            panic!("not UDP")
        };
        assert_eq!((u.source_port(), u.destination_port()), (1701, 1701));
        let l2tp = u.payload().to_vec();
        // Several tunnels to one LNS are several entries of `lns` with its address: by
        // the header's tunnel id, an SCCRQ (tunnel 0) to the first without a tunnel yet.
        let at = if l2tp[0] & 0x40 != 0 { 4 } else { 2 };
        let tid = u16::from_be_bytes([l2tp[at], l2tp[at + 1]]);
        let Some(i) = (self.lns.iter())
            .position(|l| l.ip == dst && tid != 0 && l.tunnel == tid)
            .or_else(|| {
                (self.lns.iter()).position(|l| l.ip == dst && tid == 0 && l.lac_tunnel == 0)
            })
            .or_else(|| self.lns.iter().position(|l| l.ip == dst))
        else {
            panic!("to no LNS: {dst}");
        };
        if l2tp[0] & 0x80 == 0 {
            let s = u16::from_be_bytes([l2tp[4], l2tp[5]]);
            self.lns[i].data.push((s, l2tp[8..].to_vec()));
            return;
        }
        let m = wire::decode(&l2tp, None).unwrap();
        self.lns[i].raw.push(l2tp.clone());
        for m in self.lns[i].chan.receive(self.now, m) {
            self.lns_handle(i, m);
        }
    }

    /// The LNS's answers: SCCRP to SCCRQ, ICRP to ICRQ; everything else is acknowledged.
    fn lns_handle(&mut self, i: usize, m: Message) {
        let l = &mut self.lns[i];
        match m.kind() {
            kind::SCCRQ if l.answers => {
                l.lac_tunnel = m.u16(attr::ASSIGNED_TUNNEL_ID).unwrap();
                l.chan.set_peer(l.lac_tunnel, None);
                let mut b = Builder::new(kind::SCCRP, l.lac_tunnel, 0)
                    .u16(true, attr::PROTOCOL_VERSION, 0x0100)
                    .avp(true, 0, attr::HOST_NAME, b"foreign-lns")
                    .u32(true, attr::FRAMING_CAPABILITIES, 3)
                    .u16(true, attr::ASSIGNED_TUNNEL_ID, l.tunnel);
                if l.tollgate {
                    b = b.avp(false, 0, attr::VENDOR_NAME, b"Tollgate");
                }
                if let (Some(secret), Some(c)) = (&l.secret, m.get(attr::CHALLENGE)) {
                    let r = wire::challenge_response(kind::SCCRP, secret, &c.value);
                    b = b.avp(true, 0, attr::CHALLENGE_RESPONSE, &r).avp(
                        true,
                        0,
                        attr::CHALLENGE,
                        &LNS_CHALLENGE,
                    );
                }
                l.chan.send(b.finish());
            }
            kind::ICRQ => {
                let lac_session = m.u16(attr::ASSIGNED_SESSION_ID).unwrap();
                l.next_session += 1;
                let b = Builder::new(kind::ICRP, l.lac_tunnel, lac_session)
                    .u16(true, attr::ASSIGNED_SESSION_ID, l.next_session)
                    .finish();
                l.chan.send(b);
            }
            _ => {}
        }
        l.control.push(m);
    }

    fn control(&self, i: usize, k: u16) -> Vec<&Message> {
        self.lns[i]
            .control
            .iter()
            .filter(|m| m.kind() == k)
            .collect()
    }

    /// Runs the clock `ms` further, timers included, in 100 ms steps.
    fn run(&mut self, ms: u64) {
        let end = self.now.0 + ms * 1_000_000;
        while self.now.0 < end {
            self.now = Instant(self.now.0 + 100_000_000);
            self.core.tick(self.now);
            self.pump();
        }
    }

    fn l2tp_specs(&self) -> Vec<L2tpSessionSpec> {
        self.commands
            .iter()
            .filter_map(|c| match c {
                Command::L2tpSessionSet(s) => Some(*s),
                _ => None,
            })
            .collect()
    }

    fn removed(&self) -> Vec<u16> {
        self.commands
            .iter()
            .filter_map(|c| match c {
                Command::L2tpSessionRemove { session } => Some(*session),
                _ => None,
            })
            .collect()
    }
}

/// The options of the Configure-Requests (LCP code 1) in `frames` (from the client when
/// `from_client`).
fn lcp_requests(frames: &[(bool, u16, Vec<u8>)], from_client: bool) -> Vec<Vec<u8>> {
    frames
        .iter()
        .filter(|(c, p, pkt)| *c == from_client && *p == 0xc021 && pkt[0] == 1)
        .map(|(_, _, pkt)| pkt[4..].to_vec())
        .collect()
}

#[test]
fn a_realm_subscriber_is_switched_to_the_preferred_lns_with_proxy_avps() {
    let mut r = Rig::new();
    let s = r.dial(0x42, b"alice@ISP.example");
    // No login at the LAC: the PPP is handed off.
    assert!(r.auth.is_empty(), "{:?}", r.auth);
    // The LNS of lowest preference, whatever the listed order; the other is not asked.
    assert_eq!(r.control(0, kind::SCCRQ).len(), 1);
    assert!(r.lns[1].control.is_empty());
    let sccrq = r.control(0, kind::SCCRQ)[0];
    assert_eq!(sccrq.text(attr::HOST_NAME).as_deref(), Some("tg-lac"));
    assert_eq!(r.control(0, kind::SCCCN).len(), 1);
    let icrq = r.control(0, kind::ICRQ)[0];
    let lac_session = icrq.u16(attr::ASSIGNED_SESSION_ID).unwrap();
    // Calling Number: the subscriber's line; no Tollgate AVP to a foreign LNS.
    assert_eq!(
        icrq.text(attr::CALLING_NUMBER).as_deref(),
        Some("access0.100.7")
    );
    assert!(icrq.avps.iter().all(|a| a.vendor == 0));
    let iccn = r.control(0, kind::ICCN)[0];
    assert_eq!(iccn.session, 0x101, "to the LNS's session id");
    assert_eq!(iccn.get(attr::FRAMING_TYPE).and_then(|a| a.u32()), Some(1));
    // Proxy LCP: exactly the Configure-Requests exchanged on the PPPoE session.
    let sub = &r.subs[s];
    let (sub_session, sub_mac) = (sub.session_id, sub.mac);
    let client_reqs = lcp_requests(&sub.ppp, true);
    let our_reqs = lcp_requests(&sub.ppp, false);
    let v = |a: u16| iccn.get(a).map(|a| a.value.clone());
    assert_eq!(
        v(attr::INITIAL_RECEIVED_LCP_CONFREQ).as_ref(),
        client_reqs.first()
    );
    assert_eq!(
        v(attr::LAST_RECEIVED_LCP_CONFREQ).as_ref(),
        client_reqs.last()
    );
    assert_eq!(v(attr::LAST_SENT_LCP_CONFREQ).as_ref(), our_reqs.last());
    // The client asked MRU 1492 and a magic number; we asked PAP (c0 23).
    assert_eq!(&client_reqs[0][..4], &[0x01, 0x04, 0x05, 0xd4]);
    assert!(
        our_reqs
            .last()
            .unwrap()
            .windows(4)
            .any(|w| w == [0x03, 0x04, 0xc0, 0x23])
    );
    // Proxy authentication: PAP (3), the name, the PAP request's id, the password.
    let pap = sub
        .ppp
        .iter()
        .find(|(c, p, _)| *c && *p == 0xc023)
        .map(|(_, _, pkt)| pkt.clone())
        .unwrap();
    assert_eq!(iccn.u16(attr::PROXY_AUTHEN_TYPE), Some(3));
    assert_eq!(
        v(attr::PROXY_AUTHEN_NAME).as_deref(),
        Some(&b"alice@ISP.example"[..])
    );
    assert_eq!(iccn.u16(attr::PROXY_AUTHEN_ID), Some(pap[1] as u16));
    assert_eq!(
        v(attr::PROXY_AUTHEN_RESPONSE).as_deref(),
        Some(&b"s3cret"[..])
    );
    assert!(iccn.get(attr::PROXY_AUTHEN_CHALLENGE).is_none());
    // The fast path switches the PPPoE session into the L2TP session.
    let spec = *r.l2tp_specs().last().unwrap();
    assert_eq!(
        spec,
        L2tpSessionSpec {
            tunnel: spec.tunnel,
            session: lac_session,
            peer_tunnel: 0x11,
            peer_session: 0x101,
            local: LAC,
            peer: LNS1,
            peer_port: 1701,
            subscriber: Ipv4Addr::UNSPECIFIED,
            role: TunnelRole::Lac,
            pppoe: Some(PppoeLeg {
                session: sub_session,
                client: MacAddr(sub_mac),
                vlans: Vlans {
                    outer: Some(VlanTag {
                        tpid: 0x88a8,
                        vid: 100
                    }),
                    inner: Some(VlanTag {
                        tpid: 0x8100,
                        vid: 7
                    }),
                },
                mss_clamp: 1452,
            }),
        }
    );
    assert_eq!(spec.tunnel, sccrq.u16(attr::ASSIGNED_TUNNEL_ID).unwrap());
    // Up once the ICCN is acknowledged.
    r.run(1000);
    let calls = r.core.lac_calls(r.now);
    assert_eq!(calls.len(), 1);
    assert_eq!(
        (
            calls[0].state.as_str(),
            calls[0].user.as_str(),
            calls[0].pppoe_session,
            calls[0].lns_tunnel,
            calls[0].lns_session
        ),
        ("established", "alice@ISP.example", sub_session, 0x11, 0x101)
    );
    let c = r.core.lac_counters();
    let get = |n: &str| c.iter().find(|(k, _)| k == n).map(|(_, v)| *v);
    assert_eq!(get("lac_handed_off"), Some(1));
    assert_eq!(get("lac_calls_up"), Some(1));
    assert_eq!(get("lac_calls_open"), Some(1));
}

#[test]
fn other_realms_log_in_here_and_a_second_subscriber_shares_the_tunnel() {
    let mut r = Rig::new();
    r.dial(0x41, b"bob@elsewhere.example");
    assert_eq!(r.auth.len(), 1, "another realm is a login here");
    assert!(r.lns.iter().all(|l| l.control.is_empty()));
    r.dial(0x42, b"alice@isp.example");
    r.run(500);
    r.dial(0x43, b"carol@isp.example");
    r.run(500);
    // One tunnel (one SCCRQ), two calls in it.
    assert_eq!(r.control(0, kind::SCCRQ).len(), 1);
    let icrqs = r.control(0, kind::ICRQ);
    assert_eq!(icrqs.len(), 2);
    assert!(icrqs.iter().all(|m| m.tunnel == 0x11));
    let specs = r.l2tp_specs();
    assert_eq!(specs.len(), 2);
    assert_eq!(specs[0].tunnel, specs[1].tunnel);
    assert_ne!(specs[0].session, specs[1].session);
    assert_eq!(
        (specs[0].peer_session, specs[1].peer_session),
        (0x101, 0x102)
    );
    assert_eq!(
        specs
            .iter()
            .map(|s| s.pppoe.unwrap().session)
            .collect::<Vec<_>>(),
        vec![r.subs[1].session_id, r.subs[2].session_id]
    );
    assert_eq!(r.core.lac_calls(r.now).len(), 2);
}

#[test]
fn a_silent_lns_fails_over_to_the_next_preference() {
    let mut r = Rig::new();
    r.lns[0].answers = false;
    r.dial(0x42, b"alice@isp.example");
    assert_eq!(r.control(0, kind::SCCRQ).len(), 1);
    assert!(r.lns[1].control.is_empty());
    // The SCCRQ is retransmitted until the peer is declared dead, then LNS2 is asked.
    r.run(60_000);
    assert_eq!(r.control(1, kind::SCCRQ).len(), 1);
    assert_eq!(r.control(1, kind::ICCN).len(), 1);
    let spec = *r.l2tp_specs().last().unwrap();
    assert_eq!((spec.peer, spec.peer_tunnel), (LNS2, 0x22));
    let calls = r.core.lac_calls(r.now);
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].state, "established");
    assert!(calls[0].lns.starts_with("192.0.2.12:1701"));
    let c = r.core.lac_counters();
    assert!(c.contains(&("lac_failovers".to_string(), 1)), "{c:?}");
    assert!(!r.subs[0].padt);
}

#[test]
fn no_lns_left_ends_the_pppoe_session_with_padt() {
    let mut r = Rig::new();
    r.lns[0].answers = false;
    r.lns[1].answers = false;
    r.dial(0x42, b"alice@isp.example");
    r.run(120_000);
    assert!(r.subs[0].padt, "PADT once every LNS failed");
    assert!(r.core.lac_calls(r.now).is_empty());
    let c = r.core.lac_counters();
    assert!(c.contains(&("lac_no_lns".to_string(), 1)), "{c:?}");
}

#[test]
fn the_lns_cdn_sends_padt_and_the_clients_padt_sends_a_cdn() {
    let mut r = Rig::new();
    r.dial(0x42, b"alice@isp.example");
    r.dial(0x43, b"carol@isp.example");
    r.run(500);
    let specs = r.l2tp_specs();
    // The LNS ends the first call: PADT to its subscriber, and the fast path forgets it.
    let (l, lac_session) = (&mut r.lns[0], specs[0].session);
    let b = Builder::new(kind::CDN, l.lac_tunnel, lac_session)
        .result(3, 0, "admin")
        .u16(true, attr::ASSIGNED_SESSION_ID, 0x101)
        .finish();
    l.chan.send(b);
    r.pump();
    assert!(r.subs[0].padt);
    assert!(!r.subs[1].padt);
    assert_eq!(r.removed(), vec![specs[0].session]);
    assert_eq!(r.core.lac_calls(r.now).len(), 1);
    // The second subscriber sends PADT: a CDN to the LNS for its call.
    let padt = pwire::build(code::PADT, r.subs[1].session_id, &[]);
    let f = r.access_frame(r.subs[1].mac, AC_MAC, 0x8863, &padt);
    r.core.on_punt(r.now, 0, &f);
    r.pump();
    let cdns = r.control(0, kind::CDN);
    assert_eq!(cdns.len(), 1);
    assert_eq!(cdns[0].session, 0x102);
    assert_eq!(cdns[0].result_code().unwrap().result, 3);
    assert_eq!(
        cdns[0].u16(attr::ASSIGNED_SESSION_ID),
        Some(specs[1].session)
    );
    assert_eq!(r.removed(), vec![specs[0].session, specs[1].session]);
    assert!(r.core.lac_calls(r.now).is_empty());
    // The tunnel, empty now, is stopped.
    r.run(500);
    assert_eq!(r.control(0, kind::STOPCCN).len(), 1);
}

/// A Tunnel-Password in the Access-Accept is that tunnel's secret (none is configured
/// in `l2tp.secret` here): the SCCRQ challenges, the LNS's Challenge Response is checked
/// with it and its Challenge answered with it in the SCCCN; the call comes up. A realm's
/// `secret` works the same way (LnsChoice::secret, set from the config).
#[test]
fn a_tunnel_password_is_that_tunnels_secret() {
    use super::aaa::AuthAnswer;
    use crate::authz::{Authorization, TunnelAssignment};
    let mut r = Rig::new();
    r.lns[1].secret = Some(b"lns2 secret".to_vec());
    r.dial(0x45, b"erin@radius.example");
    let login = r.auth[0].login;
    r.core.on_auth(
        r.now,
        login,
        AuthAnswer::Accept {
            user: "erin@radius.example".into(),
            authorization: Box::new(Authorization {
                tunnels: vec![TunnelAssignment {
                    tag: 1,
                    server: Some(LNS2),
                    password: Some(b"lns2 secret".to_vec()),
                    ..TunnelAssignment::default()
                }],
                ..Authorization::default()
            }),
        },
    );
    r.pump();
    let sccrq = r.control(1, kind::SCCRQ)[0];
    assert_eq!(sccrq.get(attr::CHALLENGE).map(|c| c.value.len()), Some(16));
    let scccn = r.control(1, kind::SCCCN)[0];
    assert_eq!(
        scccn.get(attr::CHALLENGE_RESPONSE).map(|a| a.value.clone()),
        Some(wire::challenge_response(kind::SCCCN, b"lns2 secret", &LNS_CHALLENGE).to_vec())
    );
    assert_eq!(r.control(1, kind::ICCN).len(), 1);
    r.run(500);
    let calls = r.core.lac_calls(r.now);
    assert_eq!(calls[0].state.as_str(), "established");
    // The LNS answering with another secret: refused (StopCCN), no SCCCN.
    let mut r = Rig::new();
    r.lns[1].secret = Some(b"not the secret".to_vec());
    r.dial(0x46, b"erin@radius.example");
    let login = r.auth[0].login;
    r.core.on_auth(
        r.now,
        login,
        AuthAnswer::Accept {
            user: "erin@radius.example".into(),
            authorization: Box::new(Authorization {
                tunnels: vec![TunnelAssignment {
                    tag: 1,
                    server: Some(LNS2),
                    password: Some(b"lns2 secret".to_vec()),
                    ..TunnelAssignment::default()
                }],
                ..Authorization::default()
            }),
        },
    );
    r.pump();
    assert!(r.control(1, kind::SCCCN).is_empty());
    assert_eq!(r.control(1, kind::STOPCCN).len(), 1);
}

#[test]
fn radius_tunnel_attributes_switch_a_login_to_their_lns() {
    use super::aaa::AuthAnswer;
    use crate::authz::{Authorization, TunnelAssignment};
    let mut r = Rig::new();
    // Not a configured realm: a login; the Accept names two tunnels.
    r.dial(0x44, b"dave@radius.example");
    assert_eq!(r.auth.len(), 1);
    assert!(r.lns.iter().all(|l| l.control.is_empty()));
    let tunnel = |server, preference| TunnelAssignment {
        tag: 1,
        server: Some(server),
        assignment: Some("from-radius".into()),
        preference: Some(preference),
        ..TunnelAssignment::default()
    };
    let login = r.auth[0].login;
    r.core.on_auth(
        r.now,
        login,
        AuthAnswer::Accept {
            user: "dave@radius.example".into(),
            authorization: Box::new(Authorization {
                tunnels: vec![tunnel(LNS2, 1), tunnel(LNS1, 2)],
                interim_interval_s: Some(30),
                ..Authorization::default()
            }),
        },
    );
    r.pump();
    // To the first tunnel RADIUS gave, with the proxy authentication of the login.
    assert!(r.lns[0].control.is_empty());
    assert_eq!(r.control(1, kind::SCCRQ).len(), 1);
    let iccn = r.control(1, kind::ICCN)[0];
    assert_eq!(
        iccn.get(attr::PROXY_AUTHEN_NAME).map(|a| a.value.clone()),
        Some(b"dave@radius.example".to_vec())
    );
    let spec = *r.l2tp_specs().last().unwrap();
    assert_eq!((spec.peer, spec.peer_tunnel), (LNS2, 0x22));
    assert_eq!(spec.pppoe.unwrap().session, r.subs[0].session_id);
    r.run(500);
    let calls = r.core.lac_calls(r.now);
    assert_eq!(
        (calls[0].state.as_str(), calls[0].assignment.as_str()),
        ("established", "from-radius")
    );
    let c = r.core.lac_counters();
    assert!(c.contains(&("lac_radius_tunnels".to_string(), 1)), "{c:?}");
    // Accounted with RADIUS's tunnel, at the Accept's Acct-Interim-Interval (none in
    // `[aaa]` here).
    assert_eq!(r.acct.len(), 1);
    let t = r.acct[0].tunnel.clone().unwrap();
    assert_eq!(
        (t.server_endpoint, t.assignment.as_deref()),
        (Some(LNS2), Some("from-radius"))
    );
    r.run(30_000);
    assert_eq!(r.acct.len(), 2);
    assert_eq!(
        (r.acct[1].status, r.acct[1].session_time_s),
        (AcctStatusType::InterimUpdate, 30)
    );
    // No gateway session was opened for it.
    assert!(
        !r.commands
            .iter()
            .any(|c| matches!(c, Command::SessionAdd(_)))
    );
}

#[test]
fn shutdown_sends_padt_to_every_switched_subscriber_and_a_cdn_for_each_call() {
    let mut r = Rig::new();
    r.dial(0x42, b"alice@isp.example");
    r.dial(0x43, b"carol@isp.example");
    r.run(500);
    assert_eq!(r.core.lac_calls(r.now).len(), 2);
    // The shell ends the PPP sessions first (then the StopCCNs).
    assert_eq!(r.core.pppoe_shutdown(r.now), 2);
    r.pump();
    assert!(r.subs.iter().all(|s| s.padt));
    let mut cdns: Vec<u16> = r.control(0, kind::CDN).iter().map(|m| m.session).collect();
    cdns.sort_unstable();
    assert_eq!(cdns, vec![0x101, 0x102]);
    assert!(r.core.lac_calls(r.now).is_empty());
    let c = r.core.lac_counters();
    assert!(c.contains(&("lac_ended_here".to_string(), 2)), "{c:?}");
}

#[test]
fn switched_subscribers_are_accounted_start_interims_and_stop() {
    let mut r = Rig::with_policy(AaaPolicy {
        interim: Some(Duration::from_secs(60)),
        session_prefix: "n1.".into(),
        ..AaaPolicy::default()
    });
    r.dial(0x42, b"alice@isp.example");
    r.dial(0x43, b"carol@isp.example");
    r.run(500);
    let specs = r.l2tp_specs();
    let (alice, carol) = (specs[0], specs[1]);
    // One record of each call, as RADIUS and the spool get it.
    let record = |user: &str, mac: u8, serial: u8, spec: L2tpSessionSpec| AcctRecord {
        status: AcctStatusType::Start,
        // The gateway sessions' series: node prefix, boot time (1000 ms), serial.
        session_id: format!("n1.3e8-{serial}"),
        user_name: user.into(),
        framed_ip: None,
        calling_station_id: Some(format!("02:00:00:00:00:{mac:02x}")),
        class: Vec::new(),
        counters: Counters::default(),
        session_time_s: 0,
        cause: None,
        event_time: 1,
        access: Some(PppoeLine {
            nas_port_id: "access0.100.7".into(),
            circuit_id: None,
            remote_id: None,
            ipoe: false,
        }),
        ipv6: None,
        tunnel: Some(AcctTunnel {
            connection: format!(
                "{}/{}-{}/{}",
                spec.tunnel, spec.session, spec.peer_tunnel, spec.peer_session
            ),
            client_endpoint: Some(LAC),
            server_endpoint: Some(LNS1),
            assignment: Some("isp".into()),
            client_auth_id: Some("tg-lac".into()),
            server_auth_id: Some("foreign-lns".into()),
        }),
    };
    let a0 = record("alice@isp.example", 0x42, 1, alice);
    let c0 = record("carol@isp.example", 0x43, 2, carol);
    assert_eq!(
        (alice.peer_tunnel, alice.peer_session, carol.peer_session),
        (0x11, 0x101, 0x102)
    );
    assert_eq!(r.acct, vec![a0.clone(), c0.clone()]);
    // The fast path counts alice's traffic; the interims carry its last sample.
    let counted = |p: u64, b: u64, dp: u64, db: u64| L2tpCounters {
        encap_packets: p,
        encap_bytes: b,
        decap_packets: dp,
        decap_bytes: db,
    };
    r.fast = vec![(alice.session, counted(3, 252, 2, 1540))];
    r.run(60_000);
    let interim = |base: &AcctRecord, c: Counters| AcctRecord {
        status: AcctStatusType::InterimUpdate,
        counters: c,
        session_time_s: 60,
        event_time: 61,
        ..base.clone()
    };
    let a_counters = Counters {
        octets_up: 252,
        octets_down: 1540,
        packets_up: 3,
        packets_down: 2,
    };
    assert_eq!(
        r.acct[2..],
        [interim(&a0, a_counters), interim(&c0, Counters::default())]
    );
    // Alice's client sends PADT: her Stop (User-Request), her last sample's counters.
    r.fast = vec![(alice.session, counted(5, 352, 4, 3040))];
    r.run(1_500);
    let padt = pwire::build(code::PADT, r.subs[0].session_id, &[]);
    let f = r.access_frame(r.subs[0].mac, AC_MAC, 0x8863, &padt);
    r.core.on_punt(r.now, 0, &f);
    r.pump();
    let stop = |base: &AcctRecord, c: Counters, t: u32, cause| AcctRecord {
        status: AcctStatusType::Stop,
        counters: c,
        session_time_s: t,
        event_time: 1 + t as u64,
        cause: Some(cause),
        ..base.clone()
    };
    let a_stop = Counters {
        octets_up: 352,
        octets_down: 3040,
        packets_up: 5,
        packets_down: 4,
    };
    assert_eq!(
        r.acct[4..],
        [stop(&a0, a_stop, 62, DisconnectCause::Logout)]
    );
    // Carol's LNS ends her call with a CDN: her Stop, with the counters the engine had.
    r.fast = vec![(carol.session, counted(1, 84, 1, 84))];
    r.run(1_500);
    let (l, lac_session) = (&mut r.lns[0], carol.session);
    let b = Builder::new(kind::CDN, l.lac_tunnel, lac_session)
        .result(3, 0, "admin")
        .u16(true, attr::ASSIGNED_SESSION_ID, 0x102)
        .finish();
    l.chan.send(b);
    r.pump();
    let c_stop = Counters {
        octets_up: 84,
        octets_down: 84,
        packets_up: 1,
        packets_down: 1,
    };
    assert_eq!(
        r.acct[5..],
        [stop(&c0, c_stop, 63, DisconnectCause::Logout)]
    );
    // Nothing more: no interim of an ended call.
    r.run(120_000);
    assert_eq!(r.acct.len(), 6);
}

#[test]
fn shutdown_and_the_operator_stop_the_accounting_of_switched_subscribers() {
    let mut r = Rig::with_policy(AaaPolicy::default());
    r.dial(0x42, b"alice@isp.example");
    r.dial(0x43, b"carol@isp.example");
    r.run(500);
    assert_eq!(r.acct.len(), 2);
    // `ctl tunnel session remove` of carol's call: Admin-Reset.
    let carol = r.l2tp_specs()[1].session;
    let now = r.now;
    r.core
        .with_l2tp(now, |l| l.map(|l| l.remove(now, &carol.to_string())))
        .unwrap()
        .unwrap();
    r.pump();
    assert_eq!(r.acct.len(), 3);
    assert_eq!(
        (r.acct[2].status, &r.acct[2].session_id, r.acct[2].cause),
        (
            AcctStatusType::Stop,
            &r.acct[1].session_id,
            Some(DisconnectCause::Admin)
        )
    );
    assert!(r.subs[1].padt);
    // SIGTERM: alice's Stop says shutdown.
    r.core.pppoe_shutdown(r.now);
    r.pump();
    assert_eq!(r.acct.len(), 4);
    assert_eq!(
        (r.acct[3].status, &r.acct[3].session_id, r.acct[3].cause),
        (
            AcctStatusType::Stop,
            &r.acct[0].session_id,
            Some(DisconnectCause::Shutdown)
        )
    );
}

#[test]
fn a_call_that_never_came_up_is_not_accounted() {
    let mut r = Rig::new();
    for l in &mut r.lns {
        l.answers = false;
    }
    r.dial(0x42, b"alice@isp.example");
    r.run(120_000);
    assert!(r.subs[0].padt);
    assert!(r.acct.is_empty(), "{:?}", r.acct);
}

/// Found in the BNG Blaster trial (docs/l2tp.md, "Interop: BNG Blaster as LNS"): its LNS
/// reads RFC 5515's Agent-Circuit-Id and Agent-Remote-Id from a LAC's calls, and ours came
/// without them although the clients' PADR carried TR-101 ids. The PPPoE line's ids go
/// into the ICRQ as the Broadband Forum's AVPs (vendor 3561, types 1 and 2, not
/// mandatory), byte for byte as on the wire; a line without them sends none (the first
/// test above: only vendor 0 AVPs).
#[test]
fn the_lines_tr101_ids_go_into_the_icrq_as_rfc_5515_avps() {
    let mut r = Rig::new();
    let circuit = b"0.0.0.0/0.0.0.0 eth 100:7";
    let remote = b"DEU.S10A.1";
    r.tr101 = Some(
        LineId {
            circuit_id: Some(circuit.to_vec()),
            remote_id: Some(remote.to_vec()),
            rate_up_kbps: Some(1024),
            ..LineId::default()
        }
        .to_vendor_tag(),
    );
    r.dial(0x42, b"alice@isp.example");
    let icrq = r.control(0, kind::ICRQ)[0];
    let bbf: Vec<(bool, bool, u16, u16, &[u8])> = icrq
        .avps
        .iter()
        .filter(|a| a.vendor != 0)
        .map(|a| (a.mandatory, a.hidden, a.vendor, a.attr, &a.value[..]))
        .collect();
    assert_eq!(
        bbf,
        [
            (false, false, 3561, 1, &circuit[..]),
            (false, false, 3561, 2, &remote[..])
        ]
    );
    // On the wire: length 6 + value (M and H clear), vendor 0x0de9, type, value.
    let raw = r.lns[0]
        .raw
        .iter()
        .find(|b| wire::decode(b, None).is_ok_and(|m| m.kind() == kind::ICRQ))
        .unwrap();
    let mut aci = vec![0x00, 6 + circuit.len() as u8, 0x0d, 0xe9, 0x00, 0x01];
    aci.extend_from_slice(circuit);
    let mut ari = vec![0x00, 6 + remote.len() as u8, 0x0d, 0xe9, 0x00, 0x02];
    ari.extend_from_slice(remote);
    let at = |needle: &[u8]| raw.windows(needle.len()).position(|w| w == needle);
    let (a, b) = (at(&aci).unwrap(), at(&ari).unwrap());
    assert_eq!(b, a + aci.len(), "ARI right after ACI");
    // The call still comes up.
    r.run(1000);
    assert_eq!(r.core.lac_calls(r.now)[0].state, "established");
}

/// A customer "acme" (consolidating) whose one line leads to LNS1, tunnels of two
/// sessions.
fn acme_on_line1(s: &mut Settings) {
    use crate::l2tp::consolidate::Capacity;
    use crate::l2tp::{CustomerSettings, LineSettings};
    s.lines = vec![LineSettings {
        name: "line1".into(),
        peer: LNS1,
        peer_port: 1701,
        fallback: Vec::new(),
        tunnels: 4,
        capacity: Capacity {
            sessions: 2,
            bandwidth: 0,
        },
    }];
    s.customers = vec![CustomerSettings {
        name: "acme".into(),
        account: "acme-billing".into(),
        consolidate: true,
        lines: Vec::new(),
    }];
}

/// Subscriber `user` dials; its login is accepted with one RADIUS tunnel to `server`
/// with Tunnel-Assignment-Id `assignment`.
fn accept(r: &mut Rig, last: u8, user: &str, server: Ipv4Addr, assignment: &str) {
    use super::aaa::AuthAnswer;
    use crate::authz::{Authorization, TunnelAssignment};
    r.dial(last, user.as_bytes());
    let login = r.auth.last().unwrap().login;
    r.core.on_auth(
        r.now,
        login,
        AuthAnswer::Accept {
            user: user.into(),
            authorization: Box::new(Authorization {
                tunnels: vec![TunnelAssignment {
                    tag: 1,
                    server: Some(server),
                    assignment: Some(assignment.into()),
                    preference: Some(1),
                    ..TunnelAssignment::default()
                }],
                ..Authorization::default()
            }),
        },
    );
    r.pump();
    r.run(500);
}

/// Issue 15, test 4 (sans-I/O part): an Access-Accept whose Tunnel-Assignment-Id names a
/// `[[l2tp.customer]]` (and whose Server-Endpoint is its line's LNS) puts the call in that
/// customer's tunnels, placed by the administration table exactly as a realm with that
/// customer places it, and it is consolidated: three such calls on a line of tunnels of
/// two sessions fill two tunnels (2 + 1); the first ends (PADT); one of the two left is
/// moved into the other's tunnel make-before-break (ICRQ with the Switchover AVP naming
/// its old session by the LNS's ids, ICCN, `L2tpSteer`, CDN of the old session), its
/// PPPoE session staying up (no PADT, no second Start), and the emptied tunnel is
/// stopped. A fourth Accept whose Assignment-Id names no customer goes, as before, into a
/// plain tunnel to its Server-Endpoint, outside the table.
#[test]
fn radius_tunnels_naming_a_customer_are_placed_and_consolidated_by_its_table() {
    use crate::l2tp::wire::vendor;
    let mut r = Rig::new();
    r.core = core_tweaked(AaaPolicy::default(), acme_on_line1);
    // LNS1 is a Tollgate and takes two tunnels (entries 0 and 2); LNS2 is foreign.
    r.lns[0].tollgate = true;
    let second = Lns {
        ip: LNS1,
        chan: Channel::new(L2tpTiming::default()),
        tunnel: 0x33,
        lac_tunnel: 0,
        control: Vec::new(),
        answers: true,
        secret: None,
        tollgate: true,
        data: Vec::new(),
        raw: Vec::new(),
        next_session: 0x200,
    };
    r.lns.push(second);
    accept(&mut r, 0x51, "ann@radius.example", LNS1, "acme");
    accept(&mut r, 0x52, "ben@radius.example", LNS1, "acme");
    accept(&mut r, 0x53, "cat@radius.example", LNS1, "acme");
    accept(&mut r, 0x54, "dan@radius.example", LNS2, "wholesale");
    assert_eq!(
        r.auth.len(),
        4,
        "every one a login whose Accept switched it"
    );

    // Placed by the table: two tunnels of acme to LNS1 (2 + 1), one SCCRQ each, the
    // calls in them; nothing of acme's to LNS2.
    assert_eq!(r.control(0, kind::SCCRQ).len(), 1);
    assert_eq!(r.control(2, kind::SCCRQ).len(), 1);
    assert_eq!(r.control(0, kind::ICRQ).len(), 2);
    assert_eq!(r.control(2, kind::ICRQ).len(), 1);
    let calls = r.core.lac_calls(r.now);
    let by_user = |calls: &[LacCallView], u: &str| calls.iter().find(|c| c.user == u).cloned();
    let ann = by_user(&calls, "ann@radius.example").unwrap();
    let ben = by_user(&calls, "ben@radius.example").unwrap();
    let cat = by_user(&calls, "cat@radius.example").unwrap();
    let dan = by_user(&calls, "dan@radius.example").unwrap();
    for c in [&ann, &ben, &cat, &dan] {
        assert_eq!(c.state, "established", "{c:?}");
    }
    assert_eq!(
        [&ann, &ben, &cat].map(|c| (c.assignment.as_str(), c.lns_tunnel)),
        [("acme", 0x11), ("acme", 0x11), ("acme", 0x33)]
    );
    assert_eq!(ann.l2tp_tunnel, ben.l2tp_tunnel);
    assert_ne!(ann.l2tp_tunnel, cat.l2tp_tunnel);
    assert_eq!(
        (dan.assignment.as_str(), dan.lns_tunnel, dan.lns_session),
        ("wholesale", 0x22, 0x101)
    );
    // `show tunnels` reads these: acme's tunnels with their calls (our session ids),
    // the customer's rows; dan's tunnel is nobody's and he is no row.
    let l2tp = r.core.l2tp().unwrap();
    let tunnel_of = |sid: u16| l2tp.sessions()[&sid].tunnel;
    let t = |id: u16| &l2tp.tunnels()[&id];
    assert_eq!(t(ann.l2tp_tunnel).customer_name, "acme");
    assert_eq!(t(cat.l2tp_tunnel).customer_name, "acme");
    assert_eq!(t(dan.l2tp_tunnel).customer_name, "");
    assert_eq!(t(ann.l2tp_tunnel).line, Some(0));
    assert_eq!(t(dan.l2tp_tunnel).line, None);
    assert!(t(ann.l2tp_tunnel).peer_is_tollgate());
    assert_eq!(
        t(ann.l2tp_tunnel).sessions,
        [ann.l2tp_session, ben.l2tp_session].into()
    );
    assert_eq!(t(cat.l2tp_tunnel).sessions, [cat.l2tp_session].into());
    assert_eq!(tunnel_of(dan.l2tp_session), dan.l2tp_tunnel);
    let mut rows: Vec<(String, usize, Option<u16>)> = l2tp
        .subscribers()
        .values()
        .map(|o| (o.user.clone(), o.customer, o.session))
        .collect();
    rows.sort();
    assert_eq!(
        rows,
        [
            ("ann@radius.example".to_string(), 0, Some(ann.l2tp_session)),
            ("ben@radius.example".to_string(), 0, Some(ben.l2tp_session)),
            ("cat@radius.example".to_string(), 0, Some(cat.l2tp_session)),
        ]
    );
    assert!(
        l2tp.subscribers().values().all(|o| o.level == 1_000_000),
        "the default level"
    );
    let c = r.core.lac_counters();
    for (name, n) in [
        ("lac_radius_tunnels", 4),
        ("lac_calls_up", 4),
        ("lac_moved", 0),
    ] {
        assert!(c.contains(&(name.to_string(), n)), "{name}: {c:?}");
    }
    assert!(
        (r.lns.iter().flat_map(|l| &l.control))
            .filter(|m| m.kind() == kind::ICRQ)
            .all(|m| m.vendor_get(vendor::TOLLGATE, vendor::SWITCHOVER).is_none())
    );
    let starts = |r: &Rig| {
        (r.acct.iter())
            .filter(|a| a.status == AcctStatusType::Start)
            .count()
    };
    assert_eq!(starts(&r), 4);

    // Ann leaves (PADT): her CDN; then one of ben and cat moves into the other's tunnel.
    let padt = pwire::build(code::PADT, r.subs[0].session_id, &[]);
    let f = r.access_frame(r.subs[0].mac, AC_MAC, 0x8863, &padt);
    r.core.on_punt(r.now, 0, &f);
    r.pump();
    r.run(5_000);
    let switchovers: Vec<(usize, Vec<u8>)> = (0..r.lns.len())
        .flat_map(|i| {
            r.control(i, kind::ICRQ)
                .into_iter()
                .filter_map(|m| m.vendor_get(vendor::TOLLGATE, vendor::SWITCHOVER))
                .map(move |a| (i, a.value.clone()))
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(switchovers.len(), 1, "one move: {switchovers:?}");
    let (into, value) = switchovers[0].clone();
    // Which of the two moves is the planner's choice; either way the ICRQ goes into the
    // other one's tunnel and names the mover's session by the LNS's ids.
    let (mover, stayer, from_entry) = if into == 2 {
        (&ben, &cat, 0)
    } else {
        assert_eq!(into, 0);
        (&cat, &ben, 2)
    };
    let mut v = r.lns[from_entry].tunnel.to_be_bytes().to_vec();
    v.extend_from_slice(&mover.lns_session.to_be_bytes());
    assert_eq!(value, v);
    let calls = r.core.lac_calls(r.now);
    assert_eq!(calls.len(), 3);
    let moved = by_user(&calls, &mover.user).unwrap();
    assert_ne!(moved.l2tp_session, mover.l2tp_session, "re-keyed");
    assert_eq!(moved.l2tp_tunnel, stayer.l2tp_tunnel);
    assert_eq!(moved.state, "established");
    assert_eq!(moved.pppoe_session, mover.pppoe_session);
    // The PPPoE leg was steered into the new session once, and the old one removed.
    let steers: Vec<u16> = (r.commands.iter())
        .filter_map(|c| match c {
            Command::L2tpSteer { session, .. } => Some(*session),
            _ => None,
        })
        .collect();
    assert_eq!(steers, [moved.l2tp_session]);
    let removed = r.removed();
    assert!(removed.contains(&mover.l2tp_session), "{removed:?}");
    assert!(removed.contains(&ann.l2tp_session), "{removed:?}");
    assert!(!removed.contains(&moved.l2tp_session));
    // The old session got its CDN (result 3), the emptied tunnel its StopCCN.
    let cdns = r.control(from_entry, kind::CDN);
    assert!(
        cdns.iter()
            .any(|m| m.session == mover.lns_session && m.result_code().unwrap().result == 3),
        "{cdns:?}"
    );
    assert_eq!(r.control(from_entry, kind::STOPCCN).len(), 1);
    assert!(r.control(into, kind::STOPCCN).is_empty());
    // The PPPoE sessions stay up: only ann's went (her own PADT), no second Start.
    assert!(r.subs.iter().all(|s| !s.padt));
    assert_eq!(starts(&r), 4);
    let c = r.core.lac_counters();
    for (name, n) in [("lac_moved", 1), ("lac_calls_open", 3)] {
        assert!(c.contains(&(name.to_string(), n)), "{name}: {c:?}");
    }
    let l2tp = r.core.l2tp().unwrap();
    assert_eq!(l2tp.stats().moves_done, 1);
    assert_eq!(l2tp.stats().moves_failed, 0);
    let acme: Vec<_> = (l2tp.tunnels().values())
        .filter(|t| t.customer_name == "acme" && t.state.live())
        .collect();
    assert_eq!(acme.len(), 1);
    assert_eq!(
        acme[0].sessions,
        [stayer.l2tp_session, moved.l2tp_session].into(),
        "the old sessions are forgotten once their CDNs are acknowledged"
    );
}

/// An Assignment-Id that names a customer whose lines do not lead to the tunnel's
/// Server-Endpoint names none: the call goes where RADIUS said, in a plain tunnel (as
/// before), and the administration table does not see it.
#[test]
fn a_customer_named_for_another_lns_is_a_plain_tunnel() {
    let mut r = Rig::new();
    r.core = core_tweaked(AaaPolicy::default(), acme_on_line1);
    accept(&mut r, 0x61, "eve@radius.example", LNS2, "acme");
    assert!(r.lns[0].control.is_empty());
    assert_eq!(r.control(1, kind::SCCRQ).len(), 1);
    let calls = r.core.lac_calls(r.now);
    assert_eq!(
        (
            calls.len(),
            calls[0].state.as_str(),
            calls[0].assignment.as_str(),
            calls[0].lns_tunnel
        ),
        (1, "established", "acme", 0x22)
    );
    let l2tp = r.core.l2tp().unwrap();
    assert!(l2tp.subscribers().is_empty());
    assert_eq!(l2tp.tunnels()[&calls[0].l2tp_tunnel].customer_name, "");
    assert_eq!(l2tp.tunnels()[&calls[0].l2tp_tunnel].line, None);
}
