//! PPP over L2TP at the LNS, driven through the core with a fake clock: a foreign LAC
//! (its control channel built here from the wire codec and reliable delivery, no Tollgate
//! vendor AVPs) opens a tunnel and a call, the subscriber is the PPP client engine, its
//! frames travel as L2TP data messages punted by the fast path. Checked byte by byte: the
//! data messages the gateway sends (header, `ff 03`, protocol), the fast-path commands
//! (the L2TP session installed, then re-installed with the subscriber address, the
//! gateway session reached through it), the login, and LCP Terminate-Request before the
//! CDN on every end from our side.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use tollgate_dataplane::l2tp::{L2tpSessionSpec, TunnelRole};
use tollgate_dataplane::session::{
    ClosedSession, DisconnectCause, Encap, SessionCounters, SessionSpec,
};
use tollgate_dataplane::wire::l2tp::subscriber_mac;
use tollgate_dataplane::{Command, Event, ForwardingBuilder, Frame, MacAddr, Side, SideConfig};

use super::aaa::{AaaPolicy, AuthAnswer, AuthRequest};
use super::lns::LnsSettings;
use super::neighbor::Timing;
use super::pools::{Pool, Pools, Range};
use super::{Core, CoreConfig, Output};
use crate::authz::Authorization;
use crate::entropy::Sequence;
use crate::l2tp::Settings;
use crate::l2tp::reliable::{Channel, Timing as L2tpTiming};
use crate::l2tp::wire::{self, Builder, Message, attr, kind};
use crate::ppp::{self, AuthMethod, Client, ClientPhase};
use crate::random::Seed;
use crate::time::{Instant, WallClock};

const LNS_MAC: MacAddr = MacAddr([0x02, 0xb0, 0, 0, 0, 1]);
const LAC_MAC: MacAddr = MacAddr([0x02, 0xa0, 0, 0, 0, 1]);
const LNS: Ipv4Addr = Ipv4Addr::new(172, 16, 0, 2);
const LAC: Ipv4Addr = Ipv4Addr::new(172, 16, 0, 1);
const SEC: u64 = 1_000_000_000;
/// The LAC's tunnel and session ids.
const LAC_TUNNEL: u16 = 7;
const LAC_SESSION: u16 = 9;

fn core() -> Core {
    core_with(None)
}

/// A core whose LNS negotiates IPv6CP, with `ipv6` (then) on.
fn core_with(ipv6: Option<super::ipv6::Ipv6Settings>) -> Core {
    let fwd = ForwardingBuilder::new(
        SideConfig {
            mac: LNS_MAC,
            address: LNS,
            prefix_len: 24,
        },
        SideConfig {
            mac: MacAddr([0x02, 0xc0, 0, 0, 0, 1]),
            address: Ipv4Addr::new(192, 0, 2, 1),
            prefix_len: 24,
        },
    )
    .build()
    .unwrap();
    let mut l2tp = Settings::new("tg-lns", Seed::fixed([5; 32]));
    l2tp.accept = true;
    Core::new(
        Instant(SEC),
        Arc::new(fwd),
        CoreConfig {
            arp: Timing::default(),
            static_neighbors: vec![(LAC, LAC_MAC)],
            workers: 1,
            service_names: Vec::new(),
            clock: WallClock::UNIX,
            aaa: AaaPolicy {
                pools: Pools {
                    pools: vec![Pool {
                        name: "ppp".into(),
                        ranges: vec![Range::new(
                            Ipv4Addr::new(100, 64, 0, 1),
                            Ipv4Addr::new(100, 64, 0, 10),
                            None,
                        )],
                    }],
                    nodes: Vec::new(),
                },
                ..AaaPolicy::default()
            },
            l2tp: Some(l2tp),
            pppoe: None,
            dhcp: None,
            lns: Some(LnsSettings {
                ppp: ppp::Config {
                    auth: vec![AuthMethod::Chap],
                    local_ipv4: LNS,
                    ipv6cp: ipv6.is_some(),
                    echo_interval: Some(Duration::from_secs(10)),
                    ..ppp::Config::default()
                },
                dns: [Some(Ipv4Addr::new(192, 0, 2, 53)), None],
                mss_clamp: true,
                seed: Seed::fixed([6; 32]),
            }),
            ipv6,
        },
    )
}

/// A UDP datagram from the LAC to the LNS, as the fast path punts it.
fn punted(payload: &[u8]) -> Frame {
    let mut f = Vec::new();
    etherparse::PacketBuilder::ethernet2(LAC_MAC.0, LNS_MAC.0)
        .ipv4(LAC.octets(), LNS.octets(), 64)
        .udp(1701, 1701)
        .write(&mut f, payload)
        .unwrap();
    Frame::new(Side::Access, &f).unwrap()
}

struct Rig {
    core: Core,
    now: Instant,
    chan: Channel,
    /// The LNS's tunnel and session ids, once known.
    tunnel: u16,
    session: u16,
    client: Client,
    /// Control messages the LAC received, in order.
    control: Vec<Message>,
    /// PPP frames the LAC received on the session: (protocol, packet).
    ppp: Vec<(u16, Vec<u8>)>,
    /// Every data message's bytes, as sent.
    data: Vec<Vec<u8>>,
    /// The order of what the LAC received: "ppp" or the control message's name.
    order: Vec<String>,
    auth: Vec<AuthRequest>,
    commands: Vec<Command>,
    account: Vec<crate::radius::attrs::AcctRecord>,
    /// Deliver PPP frames to the client.
    deliver: bool,
    /// A PPP protocol not delivered to the client.
    withhold: Option<u16>,
    /// The client starts LCP at ICCN (not when the LAC negotiated it already).
    start_client: bool,
    /// The LAC's session id data messages must carry (the call's, or where it moved).
    lac_session: u16,
}

impl Rig {
    fn new() -> Rig {
        let mut rng = Sequence::new(3);
        Rig {
            core: core(),
            now: Instant(SEC),
            chan: Channel::new(L2tpTiming::default()),
            tunnel: 0,
            session: 0,
            client: Client::new(b"alice", b"s3cret", &mut rng),
            control: Vec::new(),
            ppp: Vec::new(),
            data: Vec::new(),
            order: Vec::new(),
            auth: Vec::new(),
            commands: Vec::new(),
            account: Vec::new(),
            deliver: true,
            withhold: None,
            start_client: true,
            lac_session: LAC_SESSION,
        }
    }

    fn send_control(&mut self, b: Vec<u8>) {
        self.chan.send(b);
        self.flush();
    }

    fn flush(&mut self) {
        while let Some(bytes) = self.chan.poll_transmit(self.now) {
            let f = punted(&bytes);
            self.core.on_punt(self.now, 0, &f);
        }
    }

    fn send_ppp(&mut self, protocol: u16, packet: &[u8]) {
        let m = crate::l2tp::call::data_message(self.tunnel, self.session, protocol, packet);
        self.core.on_punt(self.now, 0, &punted(&m));
    }

    /// Moves outputs, the LAC's acknowledgements and the client's answers until quiet.
    fn pump(&mut self) {
        loop {
            let mut progressed = false;
            while let Some(o) = self.core.poll_output() {
                progressed = true;
                match o {
                    Output::Inject(_, f) => self.received(&f),
                    Output::Authenticate(a) => self.auth.push(a),
                    Output::Command(_, c) => self.commands.push(c),
                    Output::Account(a) => self.account.push(a),
                    _ => {}
                }
            }
            while let Some(t) = self.client.poll_transmit() {
                progressed = true;
                self.send_ppp(t.protocol, &t.packet);
            }
            self.now = Instant(self.now.0 + 200_000_000);
            self.flush();
            if !progressed {
                return;
            }
        }
    }

    fn received(&mut self, f: &Frame) {
        let p = SlicedPacket::from_ethernet(f.bytes()).unwrap();
        let Some(NetSlice::Ipv4(ip)) = &p.net else {
            panic!("not IPv4")
        };
        assert_eq!(
            (ip.header().source_addr(), ip.header().destination_addr()),
            (LNS, LAC)
        );
        assert_eq!(&f.bytes()[..6], &LAC_MAC.0);
        let Some(TransportSlice::Udp(u)) = &p.transport else {
            panic!("not UDP")
        };
        assert_eq!((u.source_port(), u.destination_port()), (1701, 1701));
        let l2tp = u.payload().to_vec();
        if l2tp[0] & 0x80 == 0 {
            // Data: no length, no sequence numbers, the LAC's ids, then ff 03.
            assert_eq!(&l2tp[..2], &[0x00, 0x02]);
            assert_eq!(u16::from_be_bytes([l2tp[2], l2tp[3]]), LAC_TUNNEL);
            assert_eq!(u16::from_be_bytes([l2tp[4], l2tp[5]]), self.lac_session);
            assert_eq!(&l2tp[6..8], &[0xff, 0x03]);
            let proto = u16::from_be_bytes([l2tp[8], l2tp[9]]);
            self.ppp.push((proto, l2tp[10..].to_vec()));
            self.order.push("ppp".into());
            if self.deliver && self.withhold != Some(proto) {
                self.client.handle_input(proto, &l2tp[10..]);
            }
            self.data.push(l2tp);
            return;
        }
        let m = wire::decode(&l2tp, None).unwrap();
        for m in self.chan.receive(self.now, m) {
            if m.kind() == kind::SCCRP {
                let t = m.u16(attr::ASSIGNED_TUNNEL_ID).unwrap();
                self.chan.set_peer(t, None);
            }
            self.order.push(kind::name(m.kind()).into());
            self.control.push(m);
        }
    }

    fn last_control(&self, k: u16) -> &Message {
        self.control
            .iter()
            .rev()
            .find(|m| m.kind() == k)
            .expect("message")
    }

    /// SCCRQ .. SCCCN, ICRQ .. ICCN (with `iccn_extra` AVPs in the ICCN).
    fn call(&mut self, iccn_extra: impl FnOnce(Builder) -> Builder) {
        let b = Builder::new(kind::SCCRQ, 0, 0)
            .u16(true, attr::PROTOCOL_VERSION, 0x0100)
            .avp(true, 0, attr::HOST_NAME, b"foreign-lac")
            .u32(true, attr::FRAMING_CAPABILITIES, 3)
            .u16(true, attr::ASSIGNED_TUNNEL_ID, LAC_TUNNEL)
            .finish();
        self.send_control(b);
        self.pump();
        self.tunnel = self
            .last_control(kind::SCCRP)
            .u16(attr::ASSIGNED_TUNNEL_ID)
            .unwrap();
        self.send_control(Builder::new(kind::SCCCN, self.tunnel, 0).finish());
        let b = Builder::new(kind::ICRQ, self.tunnel, 0)
            .u16(true, attr::ASSIGNED_SESSION_ID, LAC_SESSION)
            .u32(true, attr::CALL_SERIAL_NUMBER, 1)
            .avp(false, 0, attr::CALLING_NUMBER, b"line-17")
            .finish();
        self.send_control(b);
        self.pump();
        self.session = self
            .last_control(kind::ICRP)
            .u16(attr::ASSIGNED_SESSION_ID)
            .unwrap();
        let b = Builder::new(kind::ICCN, self.tunnel, self.session)
            .u32(true, attr::TX_CONNECT_SPEED, 10_000_000)
            .u32(true, attr::FRAMING_TYPE, 1);
        self.send_control(iccn_extra(b).finish());
        if self.start_client {
            self.client.start();
        }
        self.pump();
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

    fn accept(&mut self) {
        let login = self.auth.last().unwrap().login;
        self.core.on_auth(
            self.now,
            login,
            AuthAnswer::Accept {
                user: "alice".into(),
                authorization: Box::new(Authorization::default()),
            },
        );
        self.pump();
    }

    fn installed(&self) -> Vec<SessionSpec> {
        self.commands
            .iter()
            .filter_map(|c| match c {
                Command::SessionAdd(s) => Some(*s),
                _ => None,
            })
            .collect()
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

    /// A subscriber up: the call, CHAP, IPCP, installed.
    fn up() -> Rig {
        let mut r = Rig::new();
        r.call(|b| b);
        assert_eq!(r.auth.len(), 1);
        r.accept();
        assert_eq!(r.client.phase(), ClientPhase::Up);
        r
    }

    /// The gateway's LCP Terminate-Request carrying `text`, then a CDN, in that order,
    /// both after `from` in what the LAC received.
    fn assert_terminate_then_cdn(&self, from: usize, text: &[u8]) {
        let order = &self.order[from..];
        let term = order.iter().position(|o| o == "ppp").expect("a PPP frame");
        let cdn = order.iter().position(|o| o == "CDN").expect("a CDN");
        assert!(term < cdn, "{order:?}");
        let (proto, p) = self.ppp.last().unwrap();
        assert_eq!((*proto, p[0]), (0xc021, 5), "Terminate-Request");
        assert_eq!(&p[4..], text);
        let cdn = self.last_control(kind::CDN);
        assert_eq!(cdn.session, LAC_SESSION);
        assert_eq!(cdn.result_code().unwrap().result, 3);
        assert_eq!(cdn.u16(attr::ASSIGNED_SESSION_ID), Some(self.session));
    }
}

#[test]
fn a_foreign_lacs_call_is_negotiated_authenticated_and_installed() {
    let mut r = Rig::new();
    r.call(|b| b);
    // The L2TP session is installed for decapsulation (PPP control is punted) at ICRQ,
    // before the subscriber has an address.
    let specs = r.l2tp_specs();
    assert_eq!(
        specs[0],
        L2tpSessionSpec {
            tunnel: r.tunnel,
            session: r.session,
            peer_tunnel: LAC_TUNNEL,
            peer_session: LAC_SESSION,
            local: LNS,
            peer: LAC,
            peer_port: 1701,
            subscriber: Ipv4Addr::UNSPECIFIED,
            role: TunnelRole::Lns,
            pppoe: None,
        }
    );
    // No proxy LCP: the gateway's first PPP frame is its LCP Configure-Request: MRU
    // 1492, CHAP-MD5, a Magic-Number.
    let first = &r.data[0];
    assert_eq!(
        &first[..10],
        &[0x00, 0x02, 0, 7, 0, 9, 0xff, 0x03, 0xc0, 0x21]
    );
    assert_eq!(first[10], 1, "Configure-Request");
    assert_eq!(&first[12..14], &[0, 19]);
    assert_eq!(&first[14..23], &[1, 4, 0x05, 0xd4, 3, 5, 0xc2, 0x23, 5]);
    assert_eq!(&first[23..25], &[5, 6]);
    // CHAP: the login carries the exchange, NAS-Port-Id names the call.
    assert_eq!(r.auth.len(), 1);
    let a = r.auth[0].clone();
    assert_eq!(a.user.as_deref(), Some("alice"));
    assert!(a.chap.as_ref().unwrap().verify(b"s3cret"));
    assert_eq!(
        a.calling_station,
        Some(subscriber_mac(r.session).to_string())
    );
    let line = a.line.clone().unwrap();
    assert_eq!(line.nas_port_id, format!("l2tp/{}/{}", r.tunnel, r.session));
    assert_eq!(line.circuit_id.as_deref(), Some(&b"line-17"[..]));
    r.accept();
    assert_eq!(r.client.phase(), ClientPhase::Up);
    assert_eq!(r.client.address(), Some(Ipv4Addr::new(100, 64, 0, 1)));
    // The session re-installed with the subscriber address (source check), then the
    // gateway session reached through it.
    let specs = r.l2tp_specs();
    assert_eq!(specs.len(), 2);
    assert_eq!(specs[1].subscriber, Ipv4Addr::new(100, 64, 0, 1));
    let s = r.installed();
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].address, Ipv4Addr::new(100, 64, 0, 1));
    assert_eq!(s[0].mac, Some(subscriber_mac(r.session)));
    assert_eq!(s[0].access.encap, Encap::L2tp { session: r.session });
    assert_eq!(s[0].access.mss_clamp, 1452);
    let c = r.core.lns_stats().unwrap();
    assert_eq!((c.lcp_negotiated, c.auth_accepted, c.installed), (1, 1, 1));
    assert_eq!(c.unknown_call + c.malformed, 0);
    let calls = r.core.lns_calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].1.user, "alice");
}

#[test]
fn proxy_lcp_and_chap_from_the_lac_skip_the_negotiation() {
    // The LAC's negotiation with the client: MRU 1492 + Magic both ways, CHAP asked by
    // the LAC, and the client's CHAP response to the LAC's challenge.
    let mut rng = Sequence::new(9);
    let challenge = [0x5a; 16];
    let response = crate::ppp::wire::chap::md5_response(0x21, b"s3cret", &challenge);
    let client = [1, 4, 0x05, 0xd4, 5, 6, 0x11, 0x22, 0x33, 0x44];
    let lac = [
        1, 4, 0x05, 0xd4, 3, 5, 0xc2, 0x23, 5, 5, 6, 0xaa, 0xbb, 0xcc, 0xdd,
    ];
    let mut r = Rig::new();
    r.client = Client::new(b"alice", b"s3cret", &mut rng);
    r.deliver = false;
    r.start_client = false;
    r.call(|b| {
        b.avp(false, 0, attr::INITIAL_RECEIVED_LCP_CONFREQ, &client)
            .avp(false, 0, attr::LAST_SENT_LCP_CONFREQ, &lac)
            .avp(false, 0, attr::LAST_RECEIVED_LCP_CONFREQ, &client)
            .u16(false, attr::PROXY_AUTHEN_TYPE, 2)
            .avp(false, 0, attr::PROXY_AUTHEN_NAME, b"alice")
            .avp(false, 0, attr::PROXY_AUTHEN_CHALLENGE, &challenge)
            .u16(false, attr::PROXY_AUTHEN_ID, 0x21)
            .avp(false, 0, attr::PROXY_AUTHEN_RESPONSE, &response)
    });
    // No LCP from the gateway: it asks AAA with the LAC's CHAP exchange at once.
    assert!(r.ppp.is_empty(), "{:?}", r.ppp);
    assert_eq!(r.auth.len(), 1);
    let chap = r.auth[0].chap.clone().unwrap();
    assert_eq!((chap.id, &chap.challenge[..]), (0x21, &challenge[..]));
    assert!(chap.verify(b"s3cret"));
    r.accept();
    // CHAP Success with the LAC's identifier, then our IPCP Configure-Request.
    assert_eq!(r.ppp[0].0, 0xc223);
    assert_eq!(&r.ppp[0].1[..2], &[3, 0x21]);
    assert_eq!(r.ppp[1].0, 0x8021);
    assert_eq!(r.ppp[1].1[0], 1);
    let c = r.core.lns_stats().unwrap();
    assert_eq!((c.proxy_lcp_accepted, c.lcp_negotiated), (1, 0));
}

#[test]
fn every_end_from_our_side_sends_terminate_request_before_the_cdn() {
    // The fast path ended the subscriber (DISC, ctl session remove): its final record.
    let mut r = Rig::up();
    let from = r.order.len();
    let spec = r.installed()[0];
    r.core.on_event(
        r.now,
        0,
        Event::SessionClosed(ClosedSession {
            id: spec.id,
            user: spec.user,
            channel: spec.channel,
            address: spec.address,
            started: spec.started,
            stopped: r.now,
            cause: DisconnectCause::IdleTimeout,
            counters: SessionCounters::default(),
        }),
    );
    r.pump();
    r.assert_terminate_then_cdn(from, b"idle_timeout");
    assert!(
        r.commands
            .contains(&Command::L2tpSessionRemove { session: r.session })
    );
    assert!(r.core.lns_calls().is_empty());

    // The daemon stops.
    let mut r = Rig::up();
    let from = r.order.len();
    assert_eq!(r.core.pppoe_shutdown(r.now), 1);
    r.pump();
    r.assert_terminate_then_cdn(from, b"gateway shutdown");
    let spec = r.installed()[0];
    assert!(r.commands.contains(&Command::SessionRemove {
        id: spec.id,
        cause: DisconnectCause::NasReboot
    }));

    // The operator removes the L2TP session (`tunnel session remove`).
    let mut r = Rig::up();
    let from = r.order.len();
    let now = r.now;
    let sid = r.session;
    r.core
        .with_l2tp(now, |l| l.unwrap().remove(now, &sid.to_string()))
        .unwrap();
    r.pump();
    r.assert_terminate_then_cdn(from, b"removed by the operator");
    let spec = r.installed()[0];
    assert!(
        r.commands
            .iter()
            .any(|c| matches!(c, Command::SessionRemove { id, .. } if *id == spec.id))
    );
}

#[test]
fn the_clients_terminate_and_the_lacs_cdn_end_the_call() {
    // The client's Terminate-Request: Terminate-Ack, then CDN, subscriber removed.
    let mut r = Rig::up();
    let from = r.order.len();
    r.client.terminate();
    r.pump();
    // The gateway finishes once its restart timer runs out in Stopping (RFC 1661).
    r.run(4_000);
    let order = &r.order[from..];
    assert_eq!(order.first().map(String::as_str), Some("ppp"));
    assert!(order.iter().any(|o| o == "CDN"), "{order:?}");
    assert_eq!(r.ppp.last().unwrap().1[0], 6, "Terminate-Ack");
    let spec = r.installed()[0];
    assert!(r.commands.contains(&Command::SessionRemove {
        id: spec.id,
        cause: DisconnectCause::UserRequest
    }));

    // The LAC's CDN: nothing more is sent on the session, the subscriber is removed.
    let mut r = Rig::up();
    let from = r.order.len();
    let b = Builder::new(kind::CDN, r.tunnel, r.session)
        .result(3, 0, "")
        .u16(true, attr::ASSIGNED_SESSION_ID, LAC_SESSION)
        .finish();
    r.send_control(b);
    r.pump();
    assert!(
        !r.order[from..].iter().any(|o| o == "ppp"),
        "{:?}",
        &r.order[from..]
    );
    let spec = r.installed()[0];
    assert!(r.commands.contains(&Command::SessionRemove {
        id: spec.id,
        cause: DisconnectCause::UserRequest
    }));
    assert!(r.core.lns_calls().is_empty());
    assert_eq!(
        r.core.lns_stats().unwrap().ended.get("lower_down"),
        Some(&1)
    );
}

#[test]
fn stray_and_malformed_ppp_is_counted() {
    let mut r = Rig::up();
    // Another session id, and a frame cut before its protocol.
    let m = crate::l2tp::call::data_message(r.tunnel, r.session + 1, 0xc021, &[9, 1, 0, 4]);
    r.core.on_punt(r.now, 0, &punted(&m));
    r.core.on_punt(
        r.now,
        0,
        &punted(&[
            0x00,
            0x02,
            0,
            r.tunnel as u8,
            0,
            r.session as u8,
            0xff,
            0x03,
        ]),
    );
    let c = r.core.lns_stats().unwrap();
    assert_eq!((c.unknown_call, c.malformed), (1, 1));
}

/// Issue 15 item 3: a Tollgate LAC moves the call to another L2TP session (ICRQ with
/// Tollgate's Switchover AVP naming our tunnel and session). The PPP session is re-bound
/// as it is: no PPP frame is sent (no LCP renegotiation, no new authentication), the
/// client stays up with its address, the new session is installed with that address
/// before the ICRP, the gateway session's downlink takes the new session (one session
/// update), the LAC's CDN for the old session ends nothing, and the PPP engine answers on
/// the new session.
#[test]
fn a_call_moved_by_a_tollgate_lac_keeps_its_ppp_session() {
    use crate::l2tp::wire::vendor;
    let mut r = Rig::up();
    let (old, address) = (r.session, Ipv4Addr::new(100, 64, 0, 1));
    let gw = r.installed()[0].id;
    let (frames, commands) = (r.ppp.len(), r.commands.len());
    let mut sw = [0u8; 4];
    sw[..2].copy_from_slice(&r.tunnel.to_be_bytes());
    sw[2..].copy_from_slice(&old.to_be_bytes());
    let b = Builder::new(kind::ICRQ, r.tunnel, 0)
        .u16(true, attr::ASSIGNED_SESSION_ID, 10)
        .u32(true, attr::CALL_SERIAL_NUMBER, 2)
        .avp(false, 0, attr::CALLING_NUMBER, b"line-17")
        .avp(false, vendor::TOLLGATE, vendor::SWITCHOVER, &sw)
        .finish();
    r.send_control(b);
    r.pump();
    let new = r
        .last_control(kind::ICRP)
        .u16(attr::ASSIGNED_SESSION_ID)
        .unwrap();
    assert_ne!(new, old);
    // Installed for decapsulation with the subscriber's address (source check) at ICRQ.
    let spec = *r.l2tp_specs().last().unwrap();
    assert_eq!((spec.session, spec.peer_session), (new, 10));
    assert_eq!(spec.subscriber, address);
    let b = Builder::new(kind::ICCN, r.tunnel, new)
        .u32(true, attr::TX_CONNECT_SPEED, 10_000_000)
        .u32(true, attr::FRAMING_TYPE, 1)
        .finish();
    r.send_control(b);
    r.pump();
    assert_eq!(r.ppp.len(), frames, "no PPP frame: no renegotiation");
    assert_eq!(r.client.phase(), ClientPhase::Up);
    assert_eq!(r.client.address(), Some(address));
    // After the ICRP's install: exactly one session update, the downlink's new session.
    let after: Vec<&Command> = r.commands[commands..]
        .iter()
        .filter(|c| !matches!(c, Command::L2tpSessionSet(_) | Command::L2tpReport { .. }))
        .collect();
    assert_eq!(
        after,
        [&Command::SessionUpdate {
            id: gw,
            update: tollgate_dataplane::session::SessionUpdate {
                l2tp_session: Some(new),
                ..Default::default()
            },
        }]
    );
    let f = r.core.lns_call_fields(gw).unwrap();
    assert_eq!((f.l2tp_tunnel, f.l2tp_session), (r.tunnel, new));
    // The LAC's CDN for the old session (result 3, moved) ends nothing.
    let b = Builder::new(kind::CDN, r.tunnel, old)
        .result(3, 0, "moved to tunnel 7")
        .u16(true, attr::ASSIGNED_SESSION_ID, LAC_SESSION)
        .finish();
    r.send_control(b);
    r.run(500);
    assert_eq!(r.ppp.len(), frames, "no Terminate-Request");
    assert!(
        !r.commands
            .iter()
            .any(|c| matches!(c, Command::SessionRemove { .. })),
        "the subscriber stays"
    );
    let st = r.core.lns_stats().unwrap();
    assert_eq!(st.moved, 1);
    assert!(st.ended.is_empty(), "{:?}", st.ended);
    let calls = r.core.lns_calls();
    assert_eq!(calls.len(), 1);
    assert_eq!((calls[0].0, calls[0].2), (new, Some(gw)));
    // The PPP engine answers on the new session: an LCP Echo-Request from the client
    // gets the Echo-Reply in a data message to the LAC's new session, byte for byte.
    r.session = new;
    r.lac_session = 10;
    r.deliver = false;
    r.send_ppp(0xc021, &[9, 0x42, 0, 8, 0x11, 0x22, 0x33, 0x44]);
    r.pump();
    assert_eq!(r.ppp.len(), frames + 1);
    let reply = r.data.last().unwrap();
    assert_eq!(
        &reply[..14],
        &[
            0x00, 0x02, 0, 7, 0, 10, 0xff, 0x03, 0xc0, 0x21, 10, 0x42, 0, 8
        ]
    );
}

// ---- dual stack (issue 16): IPv6CP, the /64, RA and DHCPv6 over the L2TP PPP link ----

/// fe80::<the modified EUI-64 of LNS_MAC>: our IPv6CP identifier's link-local address,
/// the source of RAs and DHCPv6 replies over PPP.
const LNS_IID: [u8; 8] = [0x00, 0xb0, 0x00, 0xff, 0xfe, 0x00, 0x00, 0x01];

fn link_local(iid: [u8; 8]) -> std::net::Ipv6Addr {
    let mut a = [0u8; 16];
    a[..2].copy_from_slice(&[0xfe, 0x80]);
    a[8..].copy_from_slice(&iid);
    a.into()
}

impl Rig {
    /// A CHAP subscriber whose client negotiates IPv6CP too, against an LNS with
    /// `[ipv6]` (and DHCPv6 when `dhcpv6`).
    fn dual_stack(dhcpv6: bool) -> Rig {
        let mut r = Rig::new();
        r.core = core_with(Some(super::pppoe_tests::ipv6_settings(dhcpv6)));
        let mut rng = Sequence::new(11);
        r.client = Client::new(b"alice", b"s3cret", &mut rng).with_ipv6(true);
        r
    }

    /// The PPP packets of protocol `proto` the LAC received.
    fn ppp_of(&self, proto: u16) -> Vec<Vec<u8>> {
        self.ppp
            .iter()
            .filter(|(p, _)| *p == proto)
            .map(|(_, b)| b.clone())
            .collect()
    }

    fn prefix_commands(&self) -> Vec<Command> {
        self.commands
            .iter()
            .filter(|c| {
                matches!(
                    c,
                    Command::SessionPrefix6 { .. } | Command::SessionDelegated6 { .. }
                )
            })
            .cloned()
            .collect()
    }
}

/// The fields of an RA over PPP: (source, destination, M/O flags, the /64 of its prefix
/// option).
fn ra_fields(
    p: &[u8],
) -> (
    std::net::Ipv6Addr,
    std::net::Ipv6Addr,
    u8,
    std::net::Ipv6Addr,
) {
    let h = etherparse::Ipv6Header::from_slice(p).unwrap().0;
    assert_eq!(
        (h.next_header, h.hop_limit),
        (etherparse::IpNumber::IPV6_ICMP, 255)
    );
    let icmp = &p[40..];
    assert_eq!(icmp[0], 134, "a Router Advertisement");
    let mut at = 16;
    let mut prefix = None;
    while at + 2 <= icmp.len() {
        let (ty, len) = (icmp[at], icmp[at + 1] as usize * 8);
        assert_ne!(ty, 1, "no source link-layer option over PPP");
        if ty == 3 {
            let b: [u8; 16] = icmp[at + 16..at + 32].try_into().unwrap();
            prefix = Some(b.into());
        }
        at += len.max(8);
    }
    (
        h.source.into(),
        h.destination.into(),
        icmp[5] & 0xc0,
        prefix.expect("a prefix option"),
    )
}

#[test]
fn a_dual_stack_call_gets_ipv6cp_its_64_and_ras_over_l2tp() {
    let mut r = Rig::dual_stack(false);
    r.call(|b| b);
    r.accept();
    assert_eq!(r.client.phase(), ClientPhase::Up);
    assert!(r.client.ipv6_up(), "IPv6CP opened both ways");
    // Our Configure-Request: Interface-Identifier = the access MAC's EUI-64.
    let v6cp = r.ppp_of(0x8057);
    let req = v6cp
        .iter()
        .find(|p| p[0] == 1)
        .expect("IPv6CP Configure-Request");
    let mut want = vec![0x01, req[1], 0x00, 0x0e, 0x01, 0x0a];
    want.extend_from_slice(&LNS_IID);
    assert_eq!(req, &want);
    // The session's /64 from the pool, to its worker.
    let spec = r.installed()[0];
    assert_eq!(
        r.prefix_commands(),
        vec![Command::SessionPrefix6 {
            id: spec.id,
            prefix: Some(0x2001_0db8_0100_0000),
        }]
    );
    // The first RA at once, in an L2TP data message to the LAC's session (checked by
    // `received`), to all nodes from our link-local; no M/O without DHCPv6.
    let prefix: std::net::Ipv6Addr = "2001:db8:100::".parse().unwrap();
    let ras = r.ppp_of(0x0057);
    assert_eq!(ras.len(), 1);
    assert_eq!(
        ra_fields(&ras[0]),
        (link_local(LNS_IID), "ff02::1".parse().unwrap(), 0, prefix)
    );
    // A Router Solicitation from the client's link-local, over L2TP: an RA to it.
    let client_iid: [u8; 8] = v6cp.iter().find(|p| p[0] == 2).expect("Configure-Ack")[6..14]
        .try_into()
        .unwrap();
    let ll = link_local(client_iid);
    let mut rs = Vec::new();
    etherparse::PacketBuilder::ipv6(
        ll.octets(),
        "ff02::2".parse::<std::net::Ipv6Addr>().unwrap().octets(),
        255,
    )
    .icmpv6(etherparse::Icmpv6Type::Unknown {
        type_u8: 133,
        code_u8: 0,
        bytes5to8: [0; 4],
    })
    .write(&mut rs, &[])
    .unwrap();
    r.send_ppp(0x0057, &rs);
    r.pump();
    let ras = r.ppp_of(0x0057);
    assert_eq!(ras.len(), 2);
    assert_eq!(ra_fields(&ras[1]), (link_local(LNS_IID), ll, 0, prefix));
    let c: std::collections::HashMap<String, u64> = r.core.lns_counters().into_iter().collect();
    assert_eq!(
        (c["lns_ppp_ipv6_frames"], c["lns_ppp_ipv6_frames_sent"]),
        (1, 2)
    );
    // `ctl show session`: IPv6CP opened; the /64 is the session's.
    let f = r.core.lns_call_fields(spec.id).unwrap();
    assert_eq!(f.ipv6cp.as_deref(), Some("opened"));
    assert_eq!(
        r.core.ipv6().unwrap().prefix_of(spec.id),
        Some("2001:db8:100::/64".parse().unwrap())
    );
    // The session's end: the Stop carries Framed-IPv6-Prefix, the /64 goes back.
    r.core.on_event(
        r.now,
        0,
        Event::SessionClosed(ClosedSession {
            id: spec.id,
            user: spec.user,
            channel: spec.channel,
            address: spec.address,
            started: spec.started,
            stopped: r.now,
            cause: DisconnectCause::UserRequest,
            counters: SessionCounters::default(),
        }),
    );
    r.pump();
    let stop = r.account.last().unwrap();
    assert_eq!(stop.status, crate::radius::dict::AcctStatusType::Stop);
    assert_eq!(
        stop.ipv6.as_ref().and_then(|i| i.framed_prefix),
        Some((prefix, 64))
    );
    assert_eq!(r.core.ipv6().unwrap().stats().prefixes_released, 1);
    assert!(r.core.lns_calls().is_empty());
}

#[test]
fn dhcpv6_over_l2tp_gives_the_address_and_the_delegated_prefix() {
    let mut r = Rig::dual_stack(true);
    r.call(|b| b);
    r.accept();
    assert!(r.client.ipv6_up());
    let spec = r.installed()[0];
    // With DHCPv6 the RA carries M and O.
    let ras = r.ppp_of(0x0057);
    assert_eq!(ras.len(), 1);
    assert_eq!(ra_fields(&ras[0]).2, 0xc0);
    r.ppp.clear();
    let ll = link_local([0x02, 0, 0, 0xff, 0xfe, 0, 0, 0x42]);
    r.send_ppp(0x0057, &super::pppoe_tests::solicit(ll));
    r.pump();
    // One REPLY over L2TP, from our link-local to the client's, UDP 547 -> 546.
    let out = r.ppp_of(0x0057);
    assert_eq!(out.len(), 1, "one REPLY");
    let reply = &out[0];
    let msg = &reply[48..];
    let mut want = Vec::new();
    etherparse::PacketBuilder::ipv6(link_local(LNS_IID).octets(), ll.octets(), 255)
        .udp(547, 546)
        .write(&mut want, msg)
        .unwrap();
    assert_eq!(reply, &want);
    assert_eq!(&msg[..4], &[7, 0x12, 0x34, 0x56]);
    let lease = r.core.ipv6().unwrap().dhcpv6_lease_of(spec.id).unwrap();
    let addr: std::net::Ipv6Addr = "2001:db8:100::1".parse().unwrap();
    assert_eq!(lease.grant.address, Some(addr));
    let delegated: std::net::Ipv6Addr = "2001:db8:200::".parse().unwrap();
    assert_eq!(
        lease.grant.prefix.map(|p| (p.addr(), p.len())),
        Some((delegated, 60))
    );
    // The delegated prefix is routed to the session (into its L2TP session downlink).
    assert!(r.prefix_commands().contains(&Command::SessionDelegated6 {
        id: spec.id,
        prefix: Some((0x2001_0db8_0200_0000, 60)),
    }));
    // Interim: Framed-IPv6-Prefix, Framed-Interface-Id and Delegated-IPv6-Prefix.
    let ipv6 = r.core.acct_ipv6(spec.id).unwrap();
    assert_eq!(
        ipv6.framed_prefix,
        Some(("2001:db8:100::".parse().unwrap(), 64))
    );
    assert_eq!(ipv6.interface_id, Some(1));
    assert_eq!(ipv6.delegated_prefix, Some((delegated, 60)));
}

#[test]
fn ipv6_before_ipv6cp_opens_and_without_ipv6_is_the_engines_drop() {
    // [ipv6] off: IPv6CP is refused (Protocol-Reject), IPv6 not looked at.
    let mut r = Rig::up();
    r.send_ppp(0x8057, &[1, 1, 0, 4]);
    r.pump();
    let rejects: Vec<_> = r.ppp_of(0xc021).into_iter().filter(|p| p[0] == 8).collect();
    assert_eq!(rejects.len(), 1, "Protocol-Reject");
    assert_eq!(&rejects[0][4..6], &[0x80, 0x57]);
    r.send_ppp(0x0057, &[0x60, 0, 0, 0, 0, 0, 59, 64]);
    r.pump();
    let c: std::collections::HashMap<String, u64> = r.core.lns_counters().into_iter().collect();
    assert_eq!(c["lns_ppp_ipv6_frames"], 0);
    assert_eq!(c["lns_ppp_drop_data_in_control"], 1);
    let f = r.core.lns_call_fields(r.installed()[0].id).unwrap();
    assert_eq!(f.ipv6cp.as_deref(), Some("rejected"));
}

/// Issue 16 item 2 at the LNS: an IPv6-only client (IPCP Protocol-Rejected) is installed
/// at IPv6CP, its Start carries Framed-IPv6-Prefix; and when the client asked for IPv6CP
/// but it does not open, the subscriber waits for it at most NCP_SETTLE after IPCP, then
/// is installed with IPv4 (the Start without IPv6) and gets its /64 when IPv6CP opens.
#[test]
fn an_ipv6_only_call_and_the_start_waiting_for_ipv6cp() {
    let mut r = Rig::dual_stack(false);
    let mut rng = Sequence::new(12);
    r.client = Client::new(b"alice", b"s3cret", &mut rng)
        .with_ipv6(true)
        .with_ipv4(false);
    r.call(|b| b);
    r.accept();
    assert_eq!(r.client.phase(), ClientPhase::Up);
    assert_eq!(r.client.address(), None, "no IPCP");
    let s = r.installed();
    assert_eq!(s.len(), 1, "installed at IPv6CP");
    assert_eq!(s[0].address, Ipv4Addr::new(100, 64, 0, 1));
    let start = &r.account[0];
    assert_eq!(start.status, crate::radius::dict::AcctStatusType::Start);
    assert_eq!(start.framed_ip, Some(Ipv4Addr::new(100, 64, 0, 1)));
    assert_eq!(
        start.ipv6.as_ref().and_then(|i| i.framed_prefix),
        Some(("2001:db8:100::".parse().unwrap(), 64))
    );
    // The fast path checks the call's IPv4 source against the granted address too.
    assert_eq!(
        r.l2tp_specs().last().unwrap().subscriber,
        Ipv4Addr::new(100, 64, 0, 1)
    );
    let f = r.core.lns_call_fields(s[0].id).unwrap();
    assert_eq!(f.ipv6cp.as_deref(), Some("opened"));

    // IPv6CP asked for but stuck (our requests do not reach the client).
    let mut r = Rig::dual_stack(false);
    r.withhold = Some(0x8057);
    r.call(|b| b);
    r.accept();
    assert_eq!(r.client.phase(), ClientPhase::Up, "IPCP is up");
    assert!(r.installed().is_empty(), "waiting for IPv6CP");
    assert!(r.account.is_empty());
    r.run(1500);
    assert!(r.installed().is_empty(), "still waiting");
    r.run(700);
    assert_eq!(r.installed().len(), 1, "installed after NCP_SETTLE");
    let start = &r.account[0];
    assert_eq!(start.framed_ip, r.client.address());
    assert_eq!(start.ipv6, None);
    // IPv6CP opens after all: the /64 and the RA then.
    // (Our Ack of its request was lost with the rest; its Ack of our retransmitted
    // request opens IPv6CP on our side.)
    r.withhold = None;
    r.run(4000);
    assert_eq!(
        r.core.lns_calls()[0].1.ipv6cp,
        Some(crate::ppp::State::Opened)
    );
    let sid = r.installed()[0].id;
    assert!(r.prefix_commands().contains(&Command::SessionPrefix6 {
        id: sid,
        prefix: Some(0x2001_0db8_0100_0000)
    }));
    assert_eq!(r.installed().len(), 1);
}
