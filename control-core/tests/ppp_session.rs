//! The PPP engine through its public API, with a fake clock: LCP, PAP, CHAP, IPCP,
//! IPv6CP, echo, Protocol-Reject, termination, the proxy hooks of L2TP. Packets the
//! engine sends are checked byte by byte where the format matters.

use std::sync::Arc;

use core::net::Ipv4Addr;
use core::time::Duration;

use tollgate_control_core::entropy::Sequence;
use tollgate_control_core::ppp::wire::{
    self, Packet, chap, code, ipcp_option, lcp_option, pap, protocol,
};
use tollgate_control_core::ppp::{
    AuthMethod, AuthRequest, AuthStatus, Client, ClientPhase, Config, Credentials, DecisionError,
    DropReason, EndCause, Event, Grant, Phase, ProxyAuthType, ProxyLcp, ProxyLcpUse, Session,
    State, Transmit,
};
use tollgate_control_core::{Entropy, Instant};

const T0: Instant = Instant(1_000_000_000);

fn cfg(auth: &[AuthMethod]) -> Config {
    Config {
        auth: auth.to_vec(),
        local_ipv4: Ipv4Addr::new(10, 0, 0, 1),
        ..Config::default()
    }
}

fn grant() -> Grant {
    Grant {
        dns: [
            Some(Ipv4Addr::new(192, 0, 2, 53)),
            Some(Ipv4Addr::new(192, 0, 2, 54)),
        ],
        ..Grant::new(Ipv4Addr::new(100, 64, 0, 7))
    }
}

/// A session and a client joined back to back, with every packet logged.
struct Link {
    s: Session,
    c: Client,
    rng: Sequence,
    now: Instant,
    events: Vec<Event>,
    /// Packets the server sent, in order.
    sent: Vec<Transmit>,
    /// Whether the client hears the server (false: a dead peer).
    deliver: bool,
}

impl Link {
    fn new(config: Config, user: &[u8], secret: &[u8]) -> Link {
        Link::with_client(config, |rng| Client::new(user, secret, rng))
    }

    fn with_client(config: Config, client: impl FnOnce(&mut Sequence) -> Client) -> Link {
        let mut rng = Sequence::new(42);
        let mut c = client(&mut rng);
        let s = Session::new(Arc::new(config), T0, &mut rng);
        c.start();
        Link {
            s,
            c,
            rng,
            now: T0,
            events: Vec::new(),
            sent: Vec::new(),
            deliver: true,
        }
    }

    /// Exchanges packets until both sides are quiet.
    fn pump(&mut self) {
        for _ in 0..1000 {
            let mut moved = false;
            while let Some(t) = self.s.poll_transmit() {
                if self.deliver {
                    self.c.handle_input(t.protocol, &t.packet);
                }
                self.sent.push(t);
                moved = true;
            }
            while let Some(t) = self.c.poll_transmit() {
                if self.deliver {
                    self.s
                        .handle_input(self.now, &mut self.rng, t.protocol, &t.packet);
                }
                moved = true;
            }
            while let Some(e) = self.s.poll_event() {
                self.events.push(e);
            }
            if !moved {
                return;
            }
        }
        panic!("the link never went quiet");
    }

    /// Server packets queued now (not delivered; also logged in `sent`).
    fn take_sent(&mut self) -> Vec<Transmit> {
        let mut now = Vec::new();
        while let Some(t) = self.s.poll_transmit() {
            self.sent.push(t.clone());
            now.push(t);
        }
        while let Some(e) = self.s.poll_event() {
            self.events.push(e);
        }
        now
    }

    /// Feeds the server a packet as if from the peer.
    fn inject(&mut self, proto: u16, packet: &[u8]) {
        self.s.handle_input(self.now, &mut self.rng, proto, packet);
        while let Some(e) = self.s.poll_event() {
            self.events.push(e);
        }
    }

    /// Runs the server's timers up to `until`, pumping after each.
    fn run_until(&mut self, until: Instant) {
        while let Some(t) = self.s.poll_timeout() {
            if t > until {
                break;
            }
            self.now = t;
            self.s.handle_timeout(self.now, &mut self.rng);
            self.pump();
        }
        self.now = until;
    }

    fn auth_request(&self) -> AuthRequest {
        self.events
            .iter()
            .rev()
            .find_map(|e| match e {
                Event::Authenticate(r) => Some(r.clone()),
                _ => None,
            })
            .expect("an Authenticate event")
    }

    fn accept(&mut self, g: Grant) {
        self.s.accept(self.now, &mut self.rng, g).unwrap();
        self.pump();
    }

    fn finished(&self) -> Option<EndCause> {
        self.events.iter().find_map(|e| match e {
            Event::Finished { cause } => Some(cause.clone()),
            _ => None,
        })
    }

    fn up(config: Config) -> Link {
        let mut l = Link::new(config, b"alice", b"s3cret");
        l.pump();
        l.accept(grant());
        assert_eq!(l.c.phase(), ClientPhase::Up);
        l.events.clear();
        l.sent.clear();
        l
    }
}

fn lcp_packets(t: &[Transmit], c: u8) -> Vec<Packet<Vec<u8>>> {
    t.iter()
        .filter(|t| t.protocol == protocol::LCP)
        .map(|t| Packet::new_checked(t.packet.clone()).unwrap())
        .filter(|p| p.code() == c)
        .collect()
}

// ---- LCP ----

#[test]
fn first_lcp_request_asks_for_mru_1492_chap_and_a_magic_number() {
    let mut rng = Sequence::new(1);
    let mut s = Session::new(Arc::new(cfg(&[AuthMethod::Chap])), T0, &mut rng);
    let t = s.poll_transmit().unwrap();
    assert_eq!(t.protocol, protocol::LCP);
    let p = Packet::new_checked(&t.packet[..]).unwrap();
    assert_eq!(
        (p.code(), p.length()),
        (code::CONFIGURE_REQUEST, 4 + 4 + 5 + 6)
    );
    let magic = s.state().magic.0;
    assert_ne!(magic, 0);
    let mut want = vec![
        0x01, 0x04, 0x05, 0xd4, 0x03, 0x05, 0xc2, 0x23, 0x05, 0x05, 0x06,
    ];
    want.extend_from_slice(&magic.to_be_bytes());
    assert_eq!(p.data(), want);
    assert_eq!(s.poll_transmit(), None);
    assert_eq!(s.poll_timeout(), Some(T0 + Duration::from_secs(3)));
    assert_eq!(s.state().lcp, State::ReqSent);
    assert_eq!(t.frame()[..2], [0xc0, 0x21]);
}

#[test]
fn lcp_gives_up_after_max_configure_requests() {
    let mut l = Link::new(cfg(&[AuthMethod::Chap]), b"a", b"b");
    l.deliver = false;
    l.pump();
    l.run_until(T0 + Duration::from_secs(60));
    let crs = lcp_packets(&l.sent, code::CONFIGURE_REQUEST);
    assert_eq!(crs.len(), 10, "Max-Configure requests");
    // Each retransmission has a fresh identifier.
    assert!(
        crs.windows(2)
            .all(|w| w[0].identifier() != w[1].identifier())
    );
    assert_eq!(l.finished(), Some(EndCause::LcpFailed));
    assert_eq!(l.s.phase(), Phase::Dead);
    assert_eq!(l.s.poll_timeout(), None);
}

#[test]
fn peer_options_we_do_not_do_are_rejected_and_small_mru_naked() {
    let mut l = Link::new(cfg(&[AuthMethod::Chap]), b"a", b"b");
    l.take_sent();
    // MRU 100, PFC, ACFC, Auth-Protocol PAP, Quality: Rejects win over the Nak.
    let opts = [
        0x01, 0x04, 0x00, 0x64, 0x07, 0x02, 0x08, 0x02, 0x03, 0x04, 0xc0, 0x23, 0x04, 0x08, 0xc0,
        0x25, 0, 0, 0, 10,
    ];
    l.inject(
        protocol::LCP,
        &wire::build(code::CONFIGURE_REQUEST, 9, &opts),
    );
    let sent = l.take_sent();
    let rej = lcp_packets(&sent, code::CONFIGURE_REJECT);
    assert_eq!(rej.len(), 1);
    assert_eq!(rej[0].identifier(), 9);
    assert_eq!(rej[0].data(), &opts[4..]);
    // Only the small MRU left: Nak'ed up to 128.
    l.inject(
        protocol::LCP,
        &wire::build(code::CONFIGURE_REQUEST, 10, &opts[..4]),
    );
    let nak = lcp_packets(&l.take_sent(), code::CONFIGURE_NAK);
    assert_eq!(nak[0].data(), [0x01, 0x04, 0x00, 0x80]);
    assert_eq!(l.s.state().lcp, State::ReqSent);
    // ACCM and a good MRU: acknowledged as sent.
    let good = [0x01, 0x04, 0x05, 0xd4, 0x02, 0x06, 0, 0, 0, 0];
    l.inject(
        protocol::LCP,
        &wire::build(code::CONFIGURE_REQUEST, 11, &good),
    );
    let ack = lcp_packets(&l.take_sent(), code::CONFIGURE_ACK);
    assert_eq!((ack[0].identifier(), ack[0].data()), (11, &good[..]));
    assert_eq!(l.s.state().lcp, State::AckSent);
}

#[test]
fn malformed_lcp_is_counted_not_answered() {
    let mut l = Link::new(cfg(&[AuthMethod::Chap]), b"a", b"b");
    l.take_sent();
    l.inject(protocol::LCP, &[0x01, 0x01, 0x00]);
    l.inject(
        protocol::LCP,
        &[0x01, 0x01, 0x00, 0x09, 0x01, 0x01, 0x05, 0xd4, 0],
    );
    l.inject(protocol::LCP, &[0x01, 0x01, 0x00, 0x20, 0x01]);
    assert_eq!(l.s.drop_count(DropReason::Malformed), 3);
    // A Configure-Ack that does not match our request.
    l.inject(protocol::LCP, &wire::build(code::CONFIGURE_ACK, 0x77, &[]));
    assert_eq!(l.s.drop_count(DropReason::BadIdentifier), 1);
    assert!(l.take_sent().is_empty());
    assert_eq!(l.s.state().lcp, State::ReqSent);
}

#[test]
fn peer_nak_of_chap_switches_to_pap_and_reject_of_auth_ends() {
    let mut l = Link::new(cfg(&[AuthMethod::Chap, AuthMethod::Pap]), b"a", b"b");
    let first = l.take_sent();
    let cr = Packet::new_checked(&first[0].packet[..]).unwrap();
    // The peer wants PAP.
    l.inject(
        protocol::LCP,
        &wire::build(
            code::CONFIGURE_NAK,
            cr.identifier(),
            &[lcp_option::AUTH, 4, 0xc0, 0x23],
        ),
    );
    let again = lcp_packets(&l.take_sent(), code::CONFIGURE_REQUEST);
    let auth: Vec<_> = wire::options(again[0].data())
        .filter_map(Result::ok)
        .filter(|o| o.kind == lcp_option::AUTH)
        .map(|o| o.value.to_vec())
        .collect();
    assert_eq!(auth, [vec![0xc0, 0x23]]);
    assert_ne!(again[0].identifier(), cr.identifier());
    // Then it rejects authentication altogether.
    l.inject(
        protocol::LCP,
        &wire::build(
            code::CONFIGURE_REJECT,
            again[0].identifier(),
            &[lcp_option::AUTH, 4, 0xc0, 0x23],
        ),
    );
    let tr = lcp_packets(&l.take_sent(), code::TERMINATE_REQUEST);
    assert_eq!(tr.len(), 1);
    assert_eq!(tr[0].data(), b"authentication required");
    l.inject(
        protocol::LCP,
        &wire::build(code::TERMINATE_ACK, tr[0].identifier(), &[]),
    );
    assert_eq!(l.finished(), Some(EndCause::AuthRefused));
}

#[test]
fn a_reject_naming_options_we_did_not_send_is_discarded() {
    let mut l = Link::new(cfg(&[AuthMethod::Chap]), b"a", b"b");
    let cr = l.take_sent();
    let id = Packet::new_checked(&cr[0].packet[..]).unwrap().identifier();
    l.inject(
        protocol::LCP,
        &wire::build(code::CONFIGURE_REJECT, id, &[lcp_option::PFC, 2]),
    );
    assert_eq!(l.s.drop_count(DropReason::Malformed), 1);
    assert!(l.take_sent().is_empty());
}

#[test]
fn looped_back_link_is_detected_by_magic_number() {
    let mut rng = Sequence::new(5);
    let mut s = Session::new(Arc::new(cfg(&[AuthMethod::Chap])), T0, &mut rng);
    let mut events = Vec::new();
    // Everything we send comes back to us (a looped line).
    for _ in 0..50 {
        let Some(t) = s.poll_transmit() else { break };
        s.handle_input(T0, &mut rng, t.protocol, &t.packet);
        while let Some(e) = s.poll_event() {
            events.push(e);
        }
    }
    assert!(
        events.contains(&Event::Finished {
            cause: EndCause::LoopedBack
        }),
        "{events:?}"
    );
}

#[test]
fn lcp_renegotiation_after_authentication_ends_the_session() {
    let mut l = Link::up(cfg(&[AuthMethod::Chap]));
    l.inject(
        protocol::LCP,
        &wire::build(code::CONFIGURE_REQUEST, 0x55, &[0x01, 0x04, 0x05, 0xd4]),
    );
    let sent = l.take_sent();
    assert_eq!(lcp_packets(&sent, code::TERMINATE_REQUEST).len(), 1);
    assert!(l.events.contains(&Event::Ipv4Down));
    l.run_until(l.now + Duration::from_secs(10));
    assert_eq!(l.finished(), Some(EndCause::LinkRenegotiated));
}

// ---- authentication ----

#[test]
fn chap_session_comes_up_with_address_and_dns() {
    let mut l = Link::new(cfg(&[AuthMethod::Chap]), b"alice", b"s3cret");
    l.pump();
    assert!(matches!(
        l.events[0],
        Event::LinkUp {
            peer_mru: 1492,
            local_mru: 1492,
            ..
        }
    ));
    let req = l.auth_request();
    assert_eq!(req.method, Some(AuthMethod::Chap));
    assert_eq!(req.user_lossy(), "alice");
    assert!(!req.proxied);
    assert!(req.credentials.verify_chap(b"s3cret"));
    assert!(!req.credentials.verify_chap(b"wrong"));
    let Credentials::Chap { challenge, .. } = &req.credentials else {
        panic!("chap")
    };
    assert_eq!(challenge.len(), 16);
    assert_eq!(l.s.state().auth, AuthStatus::Pending);
    l.accept(grant());
    assert_eq!(l.c.phase(), ClientPhase::Up);
    assert_eq!(l.c.address(), Some(Ipv4Addr::new(100, 64, 0, 7)));
    assert_eq!(
        l.c.dns(),
        [Ipv4Addr::new(192, 0, 2, 53), Ipv4Addr::new(192, 0, 2, 54)]
    );
    assert!(l.events.contains(&Event::Ipv4Up {
        local: Ipv4Addr::new(10, 0, 0, 1),
        peer: Ipv4Addr::new(100, 64, 0, 7),
        dns: grant().dns,
        mtu: 1492,
    }));
    let st = l.s.state();
    assert_eq!(
        st.to_string(),
        "phase=network lcp=opened auth=chap/accepted user=alice ipcp=opened \
         ipv6cp=rejected address=100.64.0.7 mru=1492/1492 echo=0/3"
    );
    // The Success carries the challenge's identifier and the grant's message.
    let ok: Vec<_> = l
        .sent
        .iter()
        .filter(|t| t.protocol == protocol::CHAP)
        .map(|t| chap::ChapPacket::new_checked(t.packet.clone()).unwrap())
        .collect();
    assert_eq!(ok.len(), 2);
    assert_eq!(ok[0].code(), chap::CHALLENGE);
    assert_eq!(ok[0].name(), b"tollgate");
    assert_eq!(
        (ok[1].code(), ok[1].message()),
        (chap::SUCCESS, &b"Welcome"[..])
    );
    assert_eq!(ok[1].identifier(), ok[0].identifier());
}

#[test]
fn pap_session_comes_up_and_a_lost_ack_is_answered_again() {
    let mut l = Link::new(cfg(&[AuthMethod::Pap]), b"bob", b"pw");
    l.pump();
    let req = l.auth_request();
    assert_eq!(
        req.credentials,
        Credentials::Pap {
            password: b"pw".to_vec()
        }
    );
    assert_eq!(
        format!("{:?}", req.credentials),
        "Pap { password: <redacted> }"
    );
    l.accept(grant());
    assert_eq!(l.c.phase(), ClientPhase::Up);
    l.take_sent();
    // The peer did not get the Ack and asks again.
    l.inject(protocol::PAP, &pap::request(9, b"bob", b"pw"));
    let again = l.take_sent();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].packet, pap::reply(pap::ACK, 9, b"Welcome"));
    // Not a second decision.
    assert_eq!(
        l.events
            .iter()
            .filter(|e| matches!(e, Event::Authenticate(_)))
            .count(),
        1
    );
}

#[test]
fn rejected_credentials_get_failure_then_terminate() {
    let mut l = Link::new(cfg(&[AuthMethod::Chap]), b"alice", b"wrong");
    l.pump();
    assert!(!l.auth_request().credentials.verify_chap(b"s3cret"));
    l.s.reject(l.now, &mut l.rng, "bad password").unwrap();
    let sent = l.take_sent();
    assert_eq!(sent.len(), 2);
    let f = chap::ChapPacket::new_checked(&sent[0].packet[..]).unwrap();
    assert_eq!(
        (f.code(), f.message()),
        (chap::FAILURE, &b"bad password"[..])
    );
    let tr = Packet::new_checked(&sent[1].packet[..]).unwrap();
    assert_eq!(
        (tr.code(), tr.data()),
        (code::TERMINATE_REQUEST, &b"bad password"[..])
    );
    l.inject(
        protocol::LCP,
        &wire::build(code::TERMINATE_ACK, tr.identifier(), &[]),
    );
    assert_eq!(l.finished(), Some(EndCause::AuthFailed));
    assert_eq!(
        l.s.accept(l.now, &mut l.rng, grant()),
        Err(DecisionError::Ended)
    );
}

#[test]
fn a_second_attempt_gets_a_new_challenge() {
    let config = Config {
        auth_attempts: 2,
        ..cfg(&[AuthMethod::Chap])
    };
    let mut l = Link::new(config, b"alice", b"s3cret");
    l.pump();
    let first = l.auth_request();
    l.s.reject(l.now, &mut l.rng, "try again").unwrap();
    l.pump();
    let second = l.auth_request();
    let (
        Credentials::Chap {
            id: a,
            challenge: ca,
            ..
        },
        Credentials::Chap {
            id: b,
            challenge: cb,
            ..
        },
    ) = (&first.credentials, &second.credentials)
    else {
        panic!("chap")
    };
    assert_ne!(a, b);
    assert_ne!(ca, cb);
    l.accept(grant());
    assert_eq!(l.c.phase(), ClientPhase::Up);
}

#[test]
fn chap_challenge_is_resent_then_the_session_times_out() {
    let mut l2 = Link::with_client(cfg(&[AuthMethod::Chap]), |rng| {
        Client::new(b"alice", b"s3cret", rng)
    });
    // LCP comes up; the client's CHAP responses are lost.
    for _ in 0..10 {
        while let Some(t) = l2.s.poll_transmit() {
            l2.c.handle_input(t.protocol, &t.packet);
            l2.sent.push(t);
        }
        while let Some(t) = l2.c.poll_transmit() {
            if t.protocol != protocol::CHAP {
                l2.s.handle_input(l2.now, &mut l2.rng, t.protocol, &t.packet);
            }
        }
    }
    l2.sent.clear();
    l2.deliver = false;
    l2.run_until(T0 + Duration::from_secs(29));
    let challenges: Vec<_> = l2
        .sent
        .iter()
        .filter(|t| t.protocol == protocol::CHAP)
        .collect();
    // The first challenge went out with LCP; 9 retransmissions at 3 s, same bytes.
    assert_eq!(challenges.len(), 9);
    assert!(challenges.windows(2).all(|w| w[0].packet == w[1].packet));
    l2.run_until(T0 + Duration::from_secs(60));
    assert_eq!(l2.finished(), Some(EndCause::AuthTimeout));
    assert_eq!(lcp_packets(&l2.sent, code::TERMINATE_REQUEST).len(), 2);
}

#[test]
fn no_decision_in_time_closes_and_late_decisions_are_refused() {
    let mut l = Link::new(cfg(&[AuthMethod::Pap]), b"bob", b"pw");
    l.pump();
    assert_eq!(l.s.state().auth, AuthStatus::Pending);
    assert_eq!(
        l.s.accept(l.now, &mut l.rng, grant()).map(|_| ()),
        Ok(()),
        "sanity: a decision in time works"
    );
    let mut l = Link::new(cfg(&[AuthMethod::Pap]), b"bob", b"pw");
    l.pump();
    l.deliver = false;
    l.run_until(T0 + Duration::from_secs(31));
    assert_eq!(
        l.s.accept(l.now, &mut l.rng, grant()),
        Err(DecisionError::NotPending)
    );
    l.run_until(T0 + Duration::from_secs(40));
    assert_eq!(l.finished(), Some(EndCause::AuthTimeout));
    assert_eq!(
        l.s.reject(l.now, &mut l.rng, "late"),
        Err(DecisionError::Ended)
    );
}

#[test]
fn decisions_without_a_pending_request_are_refused() {
    let mut l = Link::new(cfg(&[AuthMethod::Chap]), b"a", b"b");
    assert_eq!(
        l.s.accept(l.now, &mut l.rng, grant()),
        Err(DecisionError::NotPending)
    );
    // Wrong-method and wrong-identifier packets are counted.
    l.pump();
    l.inject(protocol::PAP, &pap::request(1, b"a", b"b"));
    assert_eq!(l.s.drop_count(DropReason::UnexpectedAuth), 1);
    l.inject(
        protocol::CHAP,
        &chap::challenge_or_response(chap::RESPONSE, 0, &[1; 16], b"a"),
    );
    l.inject(
        protocol::CHAP,
        &chap::challenge_or_response(chap::RESPONSE, 0, &[1; 16], b"a"),
    );
    assert!(
        l.s.drop_count(DropReason::BadIdentifier) + l.s.drop_count(DropReason::Retransmission) >= 2
    );
    l.inject(protocol::CHAP, &[2, 1, 0, 5, 0]);
    assert_eq!(l.s.drop_count(DropReason::Malformed), 1);
}

#[test]
fn no_authentication_configured_asks_the_caller_anyway() {
    let mut l = Link::new(cfg(&[]), b"", b"");
    l.pump();
    let req = l.auth_request();
    assert_eq!((req.method, &req.credentials), (None, &Credentials::None));
    l.accept(grant());
    // Without authentication the client reached its network phase at once, and its IPCP
    // request arrived while the gateway still waited for the decision; it goes again
    // when the client's retransmission timer fires (the client only Acks the gateway's
    // request, RFC 1661 Req-Sent + RCR).
    l.c.retransmit();
    l.pump();
    assert_eq!(l.c.phase(), ClientPhase::Up);
}

#[test]
fn auth_packets_before_lcp_opens_are_discarded() {
    let mut l = Link::new(cfg(&[AuthMethod::Pap]), b"a", b"b");
    l.take_sent();
    l.inject(protocol::PAP, &pap::request(1, b"a", b"b"));
    l.inject(
        protocol::IPCP,
        &wire::build(code::CONFIGURE_REQUEST, 1, &[]),
    );
    assert_eq!(l.s.drop_count(DropReason::WrongPhase), 2);
    assert!(l.take_sent().is_empty());
}

// ---- IPCP ----

fn ipcp_reply(l: &mut Link, opts: &[u8]) -> Packet<Vec<u8>> {
    l.inject(
        protocol::IPCP,
        &wire::build(code::CONFIGURE_REQUEST, 0x31, opts),
    );
    let sent = l.take_sent();
    let t = sent
        .iter()
        .rfind(|t| t.protocol == protocol::IPCP)
        .expect("an IPCP reply");
    Packet::new_checked(t.packet.clone()).unwrap()
}

/// A link authenticated (grant given) whose client keeps quiet on IPCP.
fn at_network_phase(g: Grant) -> Link {
    let mut l = Link::new(cfg(&[AuthMethod::Chap]), b"alice", b"s3cret");
    l.pump();
    l.deliver = false;
    l.s.accept(l.now, &mut l.rng, g).unwrap();
    l.take_sent();
    l
}

#[test]
fn ipcp_naks_to_the_granted_address_and_dns_and_rejects_the_rest() {
    let mut l = at_network_phase(grant());
    // IP 0.0.0.0, DNS 0.0.0.0, NBNS, VJ compression: the unknowns are rejected first.
    let opts = [
        3, 6, 0, 0, 0, 0, 129, 6, 0, 0, 0, 0, 130, 6, 0, 0, 0, 0, 2, 6, 0, 0x2d, 0x0f, 0x01,
    ];
    let r = ipcp_reply(&mut l, &opts);
    assert_eq!((r.code(), r.identifier()), (code::CONFIGURE_REJECT, 0x31));
    assert_eq!(r.data(), &opts[12..]);
    let r = ipcp_reply(&mut l, &opts[..12]);
    assert_eq!(r.code(), code::CONFIGURE_NAK);
    assert_eq!(r.data(), [3, 6, 100, 64, 0, 7, 129, 6, 192, 0, 2, 53]);
    let good = [
        3, 6, 100, 64, 0, 7, 129, 6, 192, 0, 2, 53, 131, 6, 192, 0, 2, 54,
    ];
    let r = ipcp_reply(&mut l, &good);
    assert_eq!((r.code(), r.data()), (code::CONFIGURE_ACK, &good[..]));
}

#[test]
fn ipcp_without_granted_dns_rejects_dns_and_hints_a_missing_address() {
    let mut l = at_network_phase(Grant::new(Ipv4Addr::new(100, 64, 0, 9)));
    let r = ipcp_reply(&mut l, &[3, 6, 0, 0, 0, 0, 129, 6, 0, 0, 0, 0]);
    assert_eq!(
        (r.code(), r.data()),
        (code::CONFIGURE_REJECT, &[129, 6, 0, 0, 0, 0][..])
    );
    let r = ipcp_reply(&mut l, &[]);
    assert_eq!(
        (r.code(), r.data()),
        (code::CONFIGURE_NAK, &[3, 6, 100, 64, 0, 9][..])
    );
}

#[test]
fn ipcp_naks_become_rejects_after_max_failure() {
    let mut l = at_network_phase(grant());
    let want = [3, 6, 1, 2, 3, 4];
    for _ in 0..5 {
        assert_eq!(ipcp_reply(&mut l, &want).code(), code::CONFIGURE_NAK);
    }
    let r = ipcp_reply(&mut l, &want);
    assert_eq!((r.code(), r.data()), (code::CONFIGURE_REJECT, &want[..]));
}

#[test]
fn our_ipcp_request_carries_the_gateway_address_and_survives_a_nak() {
    let mut l = Link::new(cfg(&[AuthMethod::Chap]), b"alice", b"s3cret");
    l.pump();
    l.deliver = false;
    l.s.accept(l.now, &mut l.rng, grant()).unwrap();
    let sent = l.take_sent();
    let cr = sent
        .iter()
        .filter(|t| t.protocol == protocol::IPCP)
        .map(|t| Packet::new_checked(t.packet.clone()).unwrap())
        .next()
        .unwrap();
    assert_eq!(cr.code(), code::CONFIGURE_REQUEST);
    assert_eq!(cr.data(), [ipcp_option::IP_ADDRESS, 6, 10, 0, 0, 1]);
    l.inject(
        protocol::IPCP,
        &wire::build(code::CONFIGURE_NAK, cr.identifier(), &[3, 6, 9, 9, 9, 9]),
    );
    let again = l.take_sent();
    let p = Packet::new_checked(&again[0].packet[..]).unwrap();
    assert_eq!(
        p.data(),
        [3, 6, 10, 0, 0, 1],
        "the gateway's address is not negotiable"
    );
}

#[test]
fn framed_mtu_lowers_the_reported_mtu() {
    let mut l = Link::new(cfg(&[AuthMethod::Chap]), b"alice", b"s3cret");
    l.pump();
    l.accept(Grant {
        mtu: Some(1400),
        ..grant()
    });
    assert!(
        l.events
            .iter()
            .any(|e| matches!(e, Event::Ipv4Up { mtu: 1400, .. }))
    );
}

#[test]
fn ipcp_that_never_converges_ends_the_session() {
    let mut l = at_network_phase(grant());
    l.run_until(l.now + Duration::from_secs(40));
    assert_eq!(l.finished(), Some(EndCause::NoNetworkProtocol));
}

// ---- IPv6CP and unknown protocols ----

#[test]
fn ipv6cp_is_protocol_rejected_when_disabled() {
    let mut l = Link::up(cfg(&[AuthMethod::Chap]));
    let v6cr = wire::build(code::CONFIGURE_REQUEST, 1, &[1, 10, 1, 2, 3, 4, 5, 6, 7, 8]);
    l.inject(protocol::IPV6CP, &v6cr);
    let pr = lcp_packets(&l.take_sent(), code::PROTOCOL_REJECT);
    assert_eq!(pr.len(), 1);
    let mut want = vec![0x80, 0x57];
    want.extend_from_slice(&v6cr);
    assert_eq!(pr[0].data(), want);
    // CCP too; IP datagrams are counted, not rejected.
    l.inject(0x80fd, &[1, 1, 0, 4]);
    assert_eq!(lcp_packets(&l.take_sent(), code::PROTOCOL_REJECT).len(), 1);
    l.inject(protocol::IPV4, &[0x45, 0, 0, 20]);
    assert!(l.take_sent().is_empty());
    assert_eq!(l.s.drop_count(DropReason::DataInControl), 1);
    assert_eq!(l.s.drop_count(DropReason::ProtocolRejected), 2);
}

#[test]
fn unknown_protocols_before_lcp_opens_are_only_counted() {
    let mut l = Link::new(cfg(&[AuthMethod::Chap]), b"a", b"b");
    l.take_sent();
    l.inject(0x80fd, &[1, 1, 0, 4]);
    assert!(l.take_sent().is_empty());
    assert_eq!(l.s.drop_count(DropReason::ProtocolRejected), 1);
}

#[test]
fn protocol_reject_is_cut_to_the_peer_mru() {
    let mut l = Link::up(cfg(&[AuthMethod::Chap]));
    l.inject(0x80fd, &[0u8; 3000]);
    let pr = lcp_packets(&l.take_sent(), code::PROTOCOL_REJECT);
    assert_eq!(pr[0].length(), 1492);
}

#[test]
fn ipv6cp_negotiates_interface_identifiers_when_enabled() {
    let config = Config {
        ipv6cp: true,
        ..cfg(&[AuthMethod::Chap])
    };
    let mut l = Link::with_client(config, |rng| {
        Client::new(b"alice", b"s3cret", rng).with_ipv6(true)
    });
    l.pump();
    l.accept(grant());
    assert!(l.c.ipv6_up());
    let up = l
        .events
        .iter()
        .find_map(|e| match e {
            Event::Ipv6Up { local, peer } => Some((*local, *peer)),
            _ => None,
        })
        .expect("Ipv6Up");
    assert_ne!(up.0, up.1);
    assert_ne!(up.1, [0; 8]);
    assert_eq!(l.s.state().ipv6cp, Some(State::Opened));
    // A zero identifier is Nak'ed with a usable one.
    l.inject(
        protocol::IPV6CP,
        &wire::build(code::CONFIGURE_REQUEST, 7, &[1, 10, 0, 0, 0, 0, 0, 0, 0, 0]),
    );
    let nak = l
        .take_sent()
        .into_iter()
        .filter(|t| t.protocol == protocol::IPV6CP)
        .map(|t| Packet::new_checked(t.packet).unwrap())
        .find(|p| p.code() == code::CONFIGURE_NAK)
        .expect("a Nak");
    assert_eq!(&nak.data()[..2], [1, 10]);
    assert_ne!(&nak.data()[2..], [0; 8]);
}

#[test]
fn granted_interface_id_is_enforced() {
    let config = Config {
        ipv6cp: true,
        ..cfg(&[AuthMethod::Chap])
    };
    let mut l = Link::with_client(config, |rng| {
        Client::new(b"alice", b"s3cret", rng).with_ipv6(true)
    });
    l.pump();
    let iid = [0, 0, 0, 0, 0, 0, 0, 0x42];
    l.accept(Grant {
        interface_id: Some(iid),
        ..grant()
    });
    let peer = l.events.iter().find_map(|e| match e {
        Event::Ipv6Up { peer, .. } => Some(*peer),
        _ => None,
    });
    assert_eq!(
        peer,
        Some(iid),
        "the client took the granted identifier after a Nak"
    );
}

#[test]
fn peer_protocol_reject_of_ipv6cp_leaves_ipv4_up() {
    let config = Config {
        ipv6cp: true,
        ..cfg(&[AuthMethod::Chap])
    };
    let mut l = Link::new(config, b"alice", b"s3cret");
    l.pump();
    l.accept(grant());
    assert_eq!(l.c.phase(), ClientPhase::Up);
    l.inject(
        protocol::LCP,
        &wire::build(code::PROTOCOL_REJECT, 3, &[0x80, 0x57, 1, 1, 0, 4]),
    );
    assert_eq!(l.s.state().ipcp, Some(State::Opened));
    assert_ne!(l.s.state().ipv6cp, Some(State::ReqSent));
    assert_eq!(l.finished(), None);
    // Rejecting IPCP too leaves no network protocol.
    l.inject(
        protocol::LCP,
        &wire::build(code::PROTOCOL_REJECT, 4, &[0x80, 0x21, 1, 1, 0, 4]),
    );
    assert!(l.events.contains(&Event::Ipv4Down));
    l.run_until(l.now + Duration::from_secs(20));
    assert_eq!(l.finished(), Some(EndCause::NoNetworkProtocol));
}

// ---- echo ----

#[test]
fn echo_requests_every_interval_and_a_dead_peer_is_detected() {
    let mut l = Link::up(cfg(&[AuthMethod::Chap]));
    let t_up = l.now;
    let magic = l.s.state().magic.0;
    // A live peer answers: no end.
    l.run_until(t_up + Duration::from_secs(95));
    let echoes = lcp_packets(&l.sent, code::ECHO_REQUEST);
    assert_eq!(echoes.len(), 3);
    assert_eq!(echoes[0].data(), magic.to_be_bytes());
    assert_eq!(l.finished(), None);
    assert_eq!(l.s.state().echo, (0, 3));
    // The peer dies.
    l.deliver = false;
    l.sent.clear();
    let dead_from = l.now;
    l.run_until(dead_from + Duration::from_secs(200));
    let sent = std::mem::take(&mut l.sent);
    assert_eq!(lcp_packets(&sent, code::ECHO_REQUEST).len(), 3);
    assert_eq!(lcp_packets(&sent, code::TERMINATE_REQUEST).len(), 1);
    assert_eq!(l.finished(), Some(EndCause::PeerDead));
    assert!(l.events.contains(&Event::Ipv4Down));
    // Echo at 90 (answered), then 120, 150, 180 unanswered, dead at 210 after LCP up.
    assert_eq!(l.now, dead_from + Duration::from_secs(200));
    assert_eq!(l.s.poll_timeout(), None);
}

#[test]
fn fast_path_traffic_postpones_the_echo() {
    let mut l = Link::up(cfg(&[AuthMethod::Chap]));
    let t = l.now;
    l.run_until(t + Duration::from_secs(20));
    l.s.peer_alive(l.now);
    assert_eq!(l.s.poll_timeout(), Some(t + Duration::from_secs(50)));
}

#[test]
fn peer_echo_requests_are_answered_with_our_magic() {
    let mut l = Link::up(cfg(&[AuthMethod::Chap]));
    let ours = l.s.state().magic.0;
    l.inject(
        protocol::LCP,
        &wire::build(code::ECHO_REQUEST, 0x44, &[0xde, 0xad, 0xbe, 0xef, 1, 2]),
    );
    let rep = lcp_packets(&l.take_sent(), code::ECHO_REPLY);
    let mut want = ours.to_be_bytes().to_vec();
    want.extend_from_slice(&[1, 2]);
    assert_eq!((rep[0].identifier(), rep[0].data()), (0x44, &want[..]));
    // Discard-Request and Identification need no answer.
    l.inject(
        protocol::LCP,
        &wire::build(code::DISCARD_REQUEST, 1, &[0, 0, 0, 1]),
    );
    l.inject(
        protocol::LCP,
        &wire::build(code::IDENTIFICATION, 2, &[0, 0, 0, 1, b'x']),
    );
    assert!(l.take_sent().is_empty());
    // An echo with our own magic is a loop sign, not answered.
    l.inject(
        protocol::LCP,
        &wire::build(code::ECHO_REQUEST, 3, &ours.to_be_bytes()),
    );
    assert!(l.take_sent().is_empty());
}

#[test]
fn code_reject_of_echo_is_harmless_but_of_configure_is_fatal() {
    let mut l = Link::up(cfg(&[AuthMethod::Chap]));
    l.inject(
        protocol::LCP,
        &wire::build(
            code::CODE_REJECT,
            1,
            &[code::ECHO_REQUEST, 1, 0, 8, 0, 0, 0, 0],
        ),
    );
    assert_eq!(l.s.state().lcp, State::Opened);
    l.inject(
        protocol::LCP,
        &wire::build(code::CODE_REJECT, 2, &[code::CONFIGURE_REQUEST, 1, 0, 4]),
    );
    assert_eq!(l.s.state().lcp, State::Stopping);
    assert_eq!(
        lcp_packets(&l.take_sent(), code::TERMINATE_REQUEST).len(),
        1
    );
    l.run_until(l.now + Duration::from_secs(10));
    assert_eq!(l.finished(), Some(EndCause::LcpFailed));
}

#[test]
fn unknown_lcp_code_gets_code_reject() {
    let mut l = Link::up(cfg(&[AuthMethod::Chap]));
    let odd = wire::build(0x20, 7, &[1, 2, 3]);
    l.inject(protocol::LCP, &odd);
    let cj = lcp_packets(&l.take_sent(), code::CODE_REJECT);
    assert_eq!(cj[0].data(), odd);
}

// ---- termination ----

#[test]
fn close_sends_terminate_request_and_finishes_on_the_ack() {
    let mut l = Link::up(cfg(&[AuthMethod::Chap]));
    l.s.close(l.now, &mut l.rng, "session timeout");
    let sent = l.take_sent();
    let tr = lcp_packets(&sent, code::TERMINATE_REQUEST);
    assert_eq!(tr[0].data(), b"session timeout");
    assert_eq!(l.events, [Event::Ipv4Down]);
    assert_eq!(l.s.phase(), Phase::Terminate);
    // A second close does nothing.
    l.s.close(l.now, &mut l.rng, "again");
    assert!(l.take_sent().is_empty());
    l.inject(
        protocol::LCP,
        &wire::build(code::TERMINATE_ACK, tr[0].identifier(), &[]),
    );
    assert_eq!(
        l.finished(),
        Some(EndCause::Closed("session timeout".into()))
    );
    assert_eq!(l.s.state().cause.map(|c| c.name()), Some("closed"));
}

#[test]
fn close_without_an_ack_gives_up_after_max_terminate() {
    let mut l = Link::up(cfg(&[AuthMethod::Chap]));
    l.deliver = false;
    let t = l.now;
    l.s.close(l.now, &mut l.rng, "admin");
    l.run_until(t + Duration::from_secs(5));
    assert_eq!(l.finished(), None);
    l.run_until(t + Duration::from_secs(6));
    assert_eq!(lcp_packets(&l.sent, code::TERMINATE_REQUEST).len(), 2);
    assert_eq!(l.finished(), Some(EndCause::Closed("admin".into())));
}

#[test]
fn peer_terminate_request_is_acked_and_finishes_after_a_restart_period() {
    let mut l = Link::up(cfg(&[AuthMethod::Chap]));
    let t = l.now;
    l.inject(
        protocol::LCP,
        &wire::build(code::TERMINATE_REQUEST, 0x66, b"bye"),
    );
    let ta = lcp_packets(&l.take_sent(), code::TERMINATE_ACK);
    assert_eq!(ta[0].identifier(), 0x66);
    assert!(l.events.contains(&Event::Ipv4Down));
    assert_eq!(l.finished(), None);
    l.run_until(t + Duration::from_secs(3));
    assert_eq!(l.finished(), Some(EndCause::PeerTerminated));
}

#[test]
fn lower_down_finishes_at_once_silently() {
    let mut l = Link::up(cfg(&[AuthMethod::Chap]));
    l.s.lower_down();
    assert!(l.take_sent().is_empty());
    assert_eq!(
        l.events,
        [
            Event::Ipv4Down,
            Event::Finished {
                cause: EndCause::LowerDown
            }
        ]
    );
    l.inject(protocol::LCP, &[1, 1, 0, 4]);
    assert_eq!(l.s.drop_count(DropReason::AfterEnd), 1);
    assert_eq!(l.s.poll_timeout(), None);
}

// ---- L2TP proxy hooks ----

/// A LAC's session up to the client's credentials, with its proxy record.
fn lac(method: AuthMethod) -> (Link, tollgate_control_core::ppp::ProxyRecord) {
    let mut l = Link::new(cfg(&[method]), b"alice@isp.example", b"s3cret");
    l.pump();
    let rec = l.s.proxy_record().expect("credentials arrived");
    (l, rec)
}

#[test]
fn lac_exposes_the_exchange_and_hands_off() {
    let (mut l, rec) = lac(AuthMethod::Chap);
    // The client's requests as it sent them (MRU 1492 + its magic), ours as sent.
    let mut client_req = vec![0x01, 0x04, 0x05, 0xd4, 0x05, 0x06];
    client_req.extend_from_slice(&l.c.magic().to_be_bytes());
    assert_eq!(rec.lcp.initial_received, client_req);
    assert_eq!(rec.lcp.last_received, client_req);
    let ours = Packet::new_checked(&l.sent[0].packet[..]).unwrap();
    assert_eq!(rec.lcp.last_sent, ours.data());
    assert_eq!(rec.auth.kind, ProxyAuthType::Chap);
    assert_eq!(rec.auth.name, b"alice@isp.example");
    assert_eq!(rec.auth.challenge.len(), 16);
    assert_eq!(
        rec.auth.response,
        chap::md5_response(rec.auth.id, b"s3cret", &rec.auth.challenge)
    );
    assert_eq!(l.s.hand_off(), Ok(rec));
    assert_eq!(l.s.phase(), Phase::HandedOff);
    assert_eq!(l.s.poll_timeout(), None);
    l.inject(protocol::LCP, &[9, 1, 0, 8, 0, 0, 0, 0]);
    assert!(l.take_sent().is_empty());
    assert_eq!(l.s.drop_count(DropReason::AfterEnd), 1);
    assert_eq!(l.s.hand_off(), Err(DecisionError::Ended));
}

#[test]
fn lac_pap_record_carries_the_password_as_response() {
    let (_l, rec) = lac(AuthMethod::Pap);
    assert_eq!(rec.auth.kind, ProxyAuthType::Pap);
    assert_eq!(rec.auth.response, b"s3cret");
    assert!(rec.auth.challenge.is_empty());
}

#[test]
fn lns_accepts_proxy_lcp_and_auth_and_the_client_comes_up_through_it() {
    // LAC negotiates and authenticates the client, then hands it off.
    let (mut lac_link, rec) = lac(AuthMethod::Chap);
    lac_link.s.hand_off().unwrap();
    // The LNS starts from the AVPs; the client is the same one (the LAC's frames now
    // flow to the LNS unterminated).
    let mut rng = Sequence::new(77);
    let mut lns = Session::from_proxy(
        Arc::new(cfg(&[AuthMethod::Chap])),
        T0,
        &mut rng,
        &rec.lcp,
        Some(&rec.auth),
    );
    assert_eq!(lns.state().proxy_lcp, ProxyLcpUse::Accepted);
    assert_eq!(lns.state().lcp, State::Opened);
    assert_eq!(lns.poll_transmit(), None, "no renegotiation");
    let mut events = Vec::new();
    while let Some(e) = lns.poll_event() {
        events.push(e);
    }
    assert!(matches!(events[0], Event::LinkUp { .. }));
    let Event::Authenticate(req) = &events[1] else {
        panic!("{events:?}")
    };
    assert!(req.proxied);
    assert!(req.credentials.verify_chap(b"s3cret"));
    lns.accept(T0, &mut rng, grant()).unwrap();
    // Success with the LAC's identifier, then IPCP.
    let mut c = lac_link.c;
    let mut guard = 0;
    loop {
        guard += 1;
        assert!(guard < 100);
        let mut moved = false;
        while let Some(t) = lns.poll_transmit() {
            c.handle_input(t.protocol, &t.packet);
            moved = true;
        }
        while let Some(t) = c.poll_transmit() {
            lns.handle_input(T0, &mut rng, t.protocol, &t.packet);
            moved = true;
        }
        if !moved {
            break;
        }
    }
    assert_eq!(c.address(), Some(Ipv4Addr::new(100, 64, 0, 7)));
    assert_eq!(lns.state().mru, (1492, 1492));
}

#[test]
fn lns_renegotiates_unacceptable_proxy_lcp() {
    let (_l, rec) = lac(AuthMethod::Chap);
    let mut rng = Sequence::new(3);
    let config = Arc::new(cfg(&[AuthMethod::Chap]));
    // The client asked for PFC (which we reject).
    let mut pfc = rec.lcp.clone();
    pfc.last_received.extend_from_slice(&[lcp_option::PFC, 2]);
    // The LAC asked for a larger MRU than ours.
    let mut big = rec.lcp.clone();
    big.last_sent[2..4].copy_from_slice(&1500u16.to_be_bytes());
    // The LAC authenticated with PAP, which this LNS does not offer.
    let mut pap_lcp = rec.lcp.clone();
    pap_lcp.last_sent = vec![0x03, 0x04, 0xc0, 0x23];
    // Not well-formed.
    let broken = ProxyLcp {
        last_sent: vec![1, 9],
        ..rec.lcp.clone()
    };
    for p in [pfc, big, pap_lcp, broken] {
        let mut s = Session::from_proxy(config.clone(), T0, &mut rng, &p, Some(&rec.auth));
        assert_eq!(s.state().proxy_lcp, ProxyLcpUse::Renegotiated, "{p:?}");
        let t = s.poll_transmit().unwrap();
        let cr = Packet::new_checked(&t.packet[..]).unwrap();
        assert_eq!(
            (t.protocol, cr.code()),
            (protocol::LCP, code::CONFIGURE_REQUEST)
        );
        assert_eq!(s.poll_event(), None);
    }
}

#[test]
fn lns_challenges_again_when_proxy_auth_does_not_fit() {
    let (_l, rec) = lac(AuthMethod::Chap);
    let mut rng = Sequence::new(3);
    let mut auth = rec.auth.clone();
    auth.kind = ProxyAuthType::MsChapV1;
    let mut s = Session::from_proxy(
        Arc::new(cfg(&[AuthMethod::Chap])),
        T0,
        &mut rng,
        &rec.lcp,
        Some(&auth),
    );
    assert_eq!(s.state().proxy_lcp, ProxyLcpUse::Accepted);
    let t = s.poll_transmit().unwrap();
    assert_eq!(t.protocol, protocol::CHAP);
    assert_eq!(
        chap::ChapPacket::new_checked(&t.packet[..]).unwrap().code(),
        chap::CHALLENGE
    );
    assert!(matches!(s.poll_event(), Some(Event::LinkUp { .. })));
    assert_eq!(s.poll_event(), None);
}

#[test]
fn caller_entropy_drives_every_random_value() {
    // Two sessions from the same seed are identical; the engine reads nothing else.
    let run = |seed| {
        let mut rng = Sequence::new(seed);
        let mut s = Session::new(Arc::new(cfg(&[AuthMethod::Chap])), T0, &mut rng);
        let t = s.poll_transmit().unwrap();
        (t, s.state().magic.0)
    };
    assert_eq!(run(9), run(9));
    assert_ne!(run(9).1, run(10).1);
    let mut zeros_then_ones = {
        let mut n = 0u8;
        move |d: &mut [u8]| {
            n = n.wrapping_add(1);
            d.fill(if n < 3 { 0 } else { n });
        }
    };
    let s = Session::new(Arc::new(cfg(&[AuthMethod::Chap])), T0, &mut zeros_then_ones);
    assert_ne!(s.state().magic.0, 0, "a zero magic is never used");
    let _ = zeros_then_ones.next_u32();
}
