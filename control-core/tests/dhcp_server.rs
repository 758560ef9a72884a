//! The DHCPv4 server engine with a fake clock: every state transition of
//! `dhcp::server` (deciding, offered, bound, refused, closed), the replies byte by byte
//! (etherparse for IPv4/UDP, the crate's view for DHCP), leases across a restart, and
//! every drop counted by name.

#[path = "fixtures/ipoe.rs"]
mod fixtures;

use core::net::Ipv4Addr;
use core::time::Duration;

use tollgate_control_core::Instant;
use tollgate_control_core::dhcp::wire::{
    self, MessageBuilder, Packet, message_type as mt, op, option,
};
use tollgate_control_core::dhcp::{
    Cancel, DecisionError, Destination, DropReason, EndCause, Event, Grant, Lease, LoginBy,
    Received, Refusal, Restored, Server, ServerConfig, Transmit,
};
use tollgate_control_core::ipoe::Subscriber;
use tollgate_control_core::pppoe::{Line, Rate};

const GW: Ipv4Addr = Ipv4Addr::new(100, 64, 0, 1);
const ADDR: Ipv4Addr = Ipv4Addr::new(100, 64, 0, 10);
const MASK: Ipv4Addr = Ipv4Addr::new(255, 255, 0, 0);
const MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
const GW_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0xfe];
const T0: Instant = Instant(1_000_000_000);

fn at(secs: u64) -> Instant {
    T0 + Duration::from_secs(secs)
}

fn line() -> Line {
    Line {
        port: 0,
        svlan: Some(100),
        cvlan: Some(7),
    }
}

fn sub() -> Subscriber {
    Subscriber::new(line(), MAC)
}

fn grant() -> Grant {
    Grant {
        dns: vec![Ipv4Addr::new(9, 9, 9, 9), Ipv4Addr::new(1, 1, 1, 1)],
        lease_time: Duration::from_secs(600),
        ..Grant::new(ADDR, MASK)
    }
}

fn server() -> Server {
    Server::new(ServerConfig::new(GW), T0)
}

fn message(kind: u8, xid: u32, mac: [u8; 6], f: impl FnOnce(&mut MessageBuilder)) -> Vec<u8> {
    let mut m = MessageBuilder::new(op::BOOTREQUEST, xid, mac);
    m.option(option::MESSAGE_TYPE, &[kind]);
    f(&mut m);
    m.finish()
}

fn input(s: &mut Server, now: Instant, src_ip: Ipv4Addr, dst_ip: Ipv4Addr, m: &[u8]) {
    s.handle_input(
        now,
        &Received {
            line: line(),
            src_mac: MAC,
            src_ip,
            dst_ip,
            message: m,
        },
    );
}

fn events(s: &mut Server) -> Vec<Event> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

fn transmits(s: &mut Server) -> Vec<Transmit> {
    std::iter::from_fn(|| s.poll_transmit()).collect()
}

/// The message type and the options of a reply, in order.
fn options(m: &[u8]) -> (u8, Vec<(u8, Vec<u8>)>) {
    let p = Packet::new_checked(m).unwrap();
    let o: Vec<(u8, Vec<u8>)> = p
        .options()
        .map(|o| o.unwrap())
        .map(|o| (o.code, o.value.to_vec()))
        .collect();
    let t = o
        .iter()
        .find(|(c, _)| *c == option::MESSAGE_TYPE)
        .unwrap()
        .1[0];
    (t, o)
}

fn login_id(e: &[Event]) -> tollgate_control_core::dhcp::LoginId {
    match e {
        [Event::Login(l)] => l.id,
        other => panic!("expected one login, got {other:?}"),
    }
}

/// DISCOVER, accept, REQUEST: bound at `now`.
fn bind(s: &mut Server, now: Instant) -> Lease {
    let d = message(mt::DISCOVER, 1, MAC, |_| {});
    input(s, now, Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST, &d);
    let id = login_id(&events(s));
    s.accept(now, id, grant()).unwrap();
    let r = message(mt::REQUEST, 1, MAC, |m| {
        m.option_ip(option::SERVER_ID, GW)
            .option_ip(option::REQUESTED_IP, ADDR);
    });
    input(s, now, Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST, &r);
    transmits(s);
    match &events(s)[..] {
        [Event::SessionStarted(l)] => l.clone(),
        other => panic!("expected a session, got {other:?}"),
    }
}

#[test]
fn dhclient_discover_logs_in_and_gets_offer_and_ack_byte_by_byte() {
    let mut s = server();
    s.handle_datagram(T0, line(), MAC, &fixtures::DHCP_DISCOVER);
    let e = events(&mut s);
    let Event::Login(l) = &e[0] else {
        panic!("{e:?}")
    };
    assert_eq!(l.subscriber, sub());
    assert_eq!(l.user, b"02:00:00:00:00:01");
    assert_eq!(l.host_name.as_deref(), Some(&b"sub1"[..]));
    assert_eq!(
        (l.line_id.as_ref(), l.relay, l.requested_ip),
        (None, None, None)
    );
    assert!(transmits(&mut s).is_empty(), "no OFFER before the decision");
    assert_eq!(s.pending(), 1);
    assert_eq!(s.poll_timeout(), Some(at(10)), "the decision timeout");

    s.accept(T0, l.id, grant()).unwrap();
    let t = transmits(&mut s);
    assert_eq!(t.len(), 1);
    assert_eq!(
        t[0].to,
        Destination::Access {
            line: line(),
            mac: MAC
        }
    );
    let f = t[0].frame(GW_MAC, 0x88a8).unwrap();
    let e = etherparse::SlicedPacket::from_ethernet(&f).unwrap();
    let Some(etherparse::LinkSlice::Ethernet2(eth)) = &e.link else {
        panic!()
    };
    assert_eq!(
        (eth.destination(), eth.source()),
        (MAC, GW_MAC),
        "layer-2 unicast to the client"
    );
    let vids: Vec<u16> = e.vlan_ids().iter().map(|v| v.value()).collect();
    assert_eq!(vids, [100, 7]);
    let Some(etherparse::NetSlice::Ipv4(ip)) = &e.net else {
        panic!()
    };
    assert_eq!(ip.header().source_addr(), GW);
    assert_eq!(
        ip.header().destination_addr(),
        ADDR,
        "no BROADCAST flag: to yiaddr"
    );
    let Some(etherparse::TransportSlice::Udp(u)) = &e.transport else {
        panic!()
    };
    assert_eq!((u.source_port(), u.destination_port()), (67, 68));
    let ih = ip.header().to_header();
    assert_eq!(
        u.checksum(),
        u.to_header().calc_checksum_ipv4(&ih, u.payload()).unwrap()
    );
    let p = Packet::new_checked(u.payload()).unwrap();
    assert_eq!(
        (p.op(), p.xid(), p.yiaddr(), p.client_mac()),
        (op::BOOTREPLY, 0x3903_f326, ADDR, MAC)
    );
    assert_eq!(u.payload().len(), wire::MIN_LEN);
    let (kind, o) = options(u.payload());
    assert_eq!(kind, mt::OFFER);
    // Type, server id, lease, T1, T2, mask, router, DNS (asked for); no domain, no MTU.
    assert_eq!(
        o,
        [
            (53, vec![2]),
            (54, vec![100, 64, 0, 1]),
            (51, 600u32.to_be_bytes().to_vec()),
            (58, 300u32.to_be_bytes().to_vec()),
            (59, 525u32.to_be_bytes().to_vec()),
            (1, vec![255, 255, 0, 0]),
            (3, vec![100, 64, 0, 1]),
            (6, vec![9, 9, 9, 9, 1, 1, 1, 1]),
        ]
    );
    assert!(events(&mut s).is_empty());
    assert_eq!(s.poll_timeout(), Some(at(60)), "the offer hold");

    s.handle_datagram(at(1), line(), MAC, &fixtures::DHCP_REQUEST_SELECTING);
    let t = transmits(&mut s);
    let (kind, o) = options(&t[0].message);
    assert_eq!(kind, mt::ACK);
    assert_eq!(o.len(), 8, "{o:?}");
    let e = events(&mut s);
    let [Event::SessionStarted(lease)] = &e[..] else {
        panic!("{e:?}")
    };
    assert_eq!(
        (lease.address(), lease.subscriber, lease.started),
        (ADDR, sub(), at(1))
    );
    assert_eq!(lease.expires, at(601));
    assert_eq!(s.lease(&sub()), Some(lease));
    assert_eq!(s.holder(ADDR), Some(sub()));
    assert_eq!(s.poll_timeout(), Some(at(601)));
    let st = s.stats();
    assert_eq!(
        (st.discover, st.offer, st.request, st.ack, st.logins),
        (1, 1, 1, 1, 1)
    );
    assert_eq!(s.drops().map(|(_, n)| n).sum::<u64>(), 0);
}

#[test]
fn renewals_extend_the_lease_and_expiry_ends_the_session() {
    let mut s = server();
    bind(&mut s, T0);
    // RENEWING at T1: unicast from the leased address.
    let renew = message(mt::REQUEST, 2, MAC, |m| {
        m.ciaddr(ADDR);
    });
    input(&mut s, at(300), ADDR, GW, &renew);
    let t = transmits(&mut s);
    assert_eq!((t[0].dst, t[0].dst_port), (ADDR, 68), "unicast to ciaddr");
    let p = Packet::new_checked(&t[0].message[..]).unwrap();
    assert_eq!((p.yiaddr(), p.ciaddr()), (ADDR, ADDR));
    assert_eq!(options(&t[0].message).0, mt::ACK);
    let e = events(&mut s);
    let [Event::LeaseRenewed(l)] = &e[..] else {
        panic!("{e:?}")
    };
    assert_eq!(l.expires, at(900));
    // REBINDING at T2: broadcast.
    input(&mut s, at(825), ADDR, Ipv4Addr::BROADCAST, &renew);
    assert_eq!(options(&transmits(&mut s)[0].message).0, mt::ACK);
    let e = events(&mut s);
    let [Event::LeaseRenewed(l)] = &e[..] else {
        panic!("{e:?}")
    };
    assert_eq!(l.expires, at(1425));
    // Nothing more: the lease runs out.
    s.handle_timeout(at(1424));
    assert!(events(&mut s).is_empty());
    s.handle_timeout(at(1425));
    let e = events(&mut s);
    let [Event::SessionEnded { lease, cause }] = &e[..] else {
        panic!("{e:?}")
    };
    assert_eq!((lease.address(), cause), (ADDR, &EndCause::Expired));
    assert_eq!(s.lease(&sub()), None);
    assert_eq!(s.holder(ADDR), None);
    assert_eq!(s.stats().expired, 1);
    // A late renewal: the authoritative server NAKs, broadcast, and the client starts over.
    input(&mut s, at(1500), ADDR, GW, &renew);
    let t = transmits(&mut s);
    assert_eq!(
        (options(&t[0].message).0, t[0].dst),
        (mt::NAK, Ipv4Addr::BROADCAST)
    );
    assert_eq!(s.poll_timeout(), None);
}

#[test]
fn release_and_decline_end_the_session() {
    let mut s = server();
    bind(&mut s, T0);
    let release = message(mt::RELEASE, 3, MAC, |m| {
        m.ciaddr(ADDR).option_ip(option::SERVER_ID, GW);
    });
    input(&mut s, at(5), ADDR, GW, &release);
    assert!(transmits(&mut s).is_empty(), "RELEASE is not answered");
    let e = events(&mut s);
    assert!(
        matches!(
            &e[..],
            [Event::SessionEnded {
                cause: EndCause::Release,
                ..
            }]
        ),
        "{e:?}"
    );
    // Again: no lease now.
    input(&mut s, at(6), ADDR, GW, &release);
    assert_eq!(s.drop_count(DropReason::UnknownLease), 1);

    bind(&mut s, at(10));
    let decline = message(mt::DECLINE, 4, MAC, |m| {
        m.option_ip(option::SERVER_ID, GW)
            .option_ip(option::REQUESTED_IP, ADDR);
    });
    input(
        &mut s,
        at(11),
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::BROADCAST,
        &decline,
    );
    let e = events(&mut s);
    let [
        Event::SessionEnded {
            lease,
            cause: EndCause::Decline,
        },
    ] = &e[..]
    else {
        panic!("{e:?}")
    };
    assert_eq!(
        lease.address(),
        ADDR,
        "the caller holds the address back from its pool"
    );
    // A DECLINE without the address, or for another server.
    let bare = message(mt::DECLINE, 4, MAC, |_| {});
    input(
        &mut s,
        at(12),
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::BROADCAST,
        &bare,
    );
    let other = message(mt::RELEASE, 4, MAC, |m| {
        m.ciaddr(ADDR)
            .option_ip(option::SERVER_ID, Ipv4Addr::new(10, 0, 0, 9));
    });
    input(&mut s, at(12), ADDR, GW, &other);
    assert_eq!(s.drop_count(DropReason::MissingField), 1);
    assert_eq!(s.drop_count(DropReason::OtherServer), 1);
    assert_eq!((s.stats().release, s.stats().decline), (1, 1));
}

#[test]
fn a_session_ended_by_the_gateway_is_refused_at_renew_then_logs_in_anew() {
    let mut s = server();
    let first = bind(&mut s, T0);
    assert!(s.end_session(&sub(), "coa disconnect"));
    let e = events(&mut s);
    let [Event::SessionEnded { lease, cause }] = &e[..] else {
        panic!("{e:?}")
    };
    assert_eq!(lease.id, first.id);
    assert_eq!(cause, &EndCause::Closed("coa disconnect".into()));
    assert_eq!(cause.name(), "closed");
    assert!(!s.end_session(&sub(), "again"), "no lease any more");
    assert_eq!(s.lease(&sub()), None);
    let renew = message(mt::REQUEST, 5, MAC, |m| {
        m.ciaddr(ADDR);
    });
    input(&mut s, at(300), ADDR, GW, &renew);
    let t = transmits(&mut s);
    let (kind, o) = options(&t[0].message);
    assert_eq!(kind, mt::NAK);
    assert!(o.contains(&(option::MESSAGE, b"session ended".to_vec())));
    assert_eq!(
        (t[0].dst, t[0].to),
        (
            Ipv4Addr::BROADCAST,
            Destination::Access {
                line: line(),
                mac: MAC
            }
        )
    );
    assert!(events(&mut s).is_empty());
    // The client goes back to DISCOVER: a new login, a new id.
    input(
        &mut s,
        at(301),
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::BROADCAST,
        &message(mt::DISCOVER, 6, MAC, |_| {}),
    );
    let id = login_id(&events(&mut s));
    assert_ne!(id, first.id);
    assert_eq!(s.stats().nak, 1);
}

#[test]
fn a_rejected_login_gets_no_offer_and_is_not_asked_again_for_the_hold() {
    let mut s = server();
    let d = message(mt::DISCOVER, 1, MAC, |_| {});
    input(&mut s, T0, Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST, &d);
    let id = login_id(&events(&mut s));
    s.reject(T0, id).unwrap();
    assert_eq!(s.reject(T0, id), Err(DecisionError::NotPending));
    assert_eq!(s.accept(T0, id, grant()), Err(DecisionError::NotPending));
    assert!(transmits(&mut s).is_empty());
    input(
        &mut s,
        at(9),
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::BROADCAST,
        &d,
    );
    assert!(events(&mut s).is_empty());
    assert_eq!(s.refusal_count(Refusal::Rejected), 1);
    assert_eq!(s.refusal_count(Refusal::RecentlyRejected), 1);
    // A REQUEST meanwhile: NAK.
    let r = message(mt::REQUEST, 1, MAC, |m| {
        m.option_ip(option::SERVER_ID, GW)
            .option_ip(option::REQUESTED_IP, ADDR);
    });
    input(
        &mut s,
        at(9),
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::BROADCAST,
        &r,
    );
    assert_eq!(options(&transmits(&mut s)[0].message).0, mt::NAK);
    s.handle_timeout(at(10));
    input(
        &mut s,
        at(10),
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::BROADCAST,
        &d,
    );
    login_id(&events(&mut s));
}

#[test]
fn decision_timeout_and_offer_expiry_cancel_the_login() {
    let mut s = server();
    let d = message(mt::DISCOVER, 1, MAC, |_| {});
    input(&mut s, T0, Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST, &d);
    let id = login_id(&events(&mut s));
    s.handle_timeout(at(10));
    let e = events(&mut s);
    assert_eq!(
        e,
        [Event::LoginCancelled {
            id,
            subscriber: sub(),
            address: None,
            why: Cancel::DecisionTimeout
        }]
    );
    assert_eq!(
        s.accept(at(11), id, grant()),
        Err(DecisionError::NotPending)
    );
    assert_eq!(s.pending(), 0);
    // Offered, never requested.
    input(
        &mut s,
        at(20),
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::BROADCAST,
        &d,
    );
    let id = login_id(&events(&mut s));
    s.accept(at(20), id, grant()).unwrap();
    assert_eq!(
        s.holder(ADDR),
        Some(sub()),
        "the offer reserves the address"
    );
    s.handle_timeout(at(79));
    assert!(events(&mut s).is_empty());
    s.handle_timeout(at(80));
    assert_eq!(
        events(&mut s),
        [Event::LoginCancelled {
            id,
            subscriber: sub(),
            address: Some(ADDR),
            why: Cancel::OfferExpired
        }]
    );
    assert_eq!(s.holder(ADDR), None);
    assert_eq!(Cancel::OfferExpired.name(), "offer_expired");
}

#[test]
fn a_request_for_another_server_or_address_cancels_the_offer() {
    let mut s = server();
    let d = message(mt::DISCOVER, 1, MAC, |_| {});
    for (server_id, requested, why, nak) in [
        (Ipv4Addr::new(10, 9, 9, 9), ADDR, Cancel::OtherServer, false),
        (
            GW,
            Ipv4Addr::new(100, 64, 0, 99),
            Cancel::RequestMismatch,
            true,
        ),
    ] {
        input(&mut s, T0, Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST, &d);
        let id = login_id(&events(&mut s));
        s.accept(T0, id, grant()).unwrap();
        transmits(&mut s);
        let r = message(mt::REQUEST, 1, MAC, |m| {
            m.option_ip(option::SERVER_ID, server_id)
                .option_ip(option::REQUESTED_IP, requested);
        });
        input(&mut s, T0, Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST, &r);
        let e = events(&mut s);
        assert_eq!(
            e,
            [Event::LoginCancelled {
                id,
                subscriber: sub(),
                address: Some(ADDR),
                why
            }]
        );
        let t = transmits(&mut s);
        assert_eq!(t.len(), usize::from(nak));
        if nak {
            assert_eq!(options(&t[0].message).0, mt::NAK);
        }
    }
    assert_eq!(s.drop_count(DropReason::OtherServer), 1);
}

#[test]
fn init_reboot_is_acked_for_the_lease_and_naked_or_ignored_otherwise() {
    let mut s = server();
    bind(&mut s, T0);
    let reboot = |a: Ipv4Addr| {
        message(mt::REQUEST, 9, MAC, |m| {
            m.option_ip(option::REQUESTED_IP, a);
        })
    };
    input(
        &mut s,
        at(50),
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::BROADCAST,
        &reboot(ADDR),
    );
    assert_eq!(options(&transmits(&mut s)[0].message).0, mt::ACK);
    assert!(matches!(&events(&mut s)[..], [Event::LeaseRenewed(l)] if l.expires == at(650)));
    input(
        &mut s,
        at(51),
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::BROADCAST,
        &reboot(Ipv4Addr::new(100, 64, 0, 11)),
    );
    assert_eq!(options(&transmits(&mut s)[0].message).0, mt::NAK);
    assert!(
        s.lease(&sub()).is_some(),
        "a wrong INIT-REBOOT does not end the lease"
    );
    // Another client, unknown: NAK (authoritative) ...
    let other = [2, 0, 0, 0, 0, 2];
    let m = message(mt::REQUEST, 9, other, |m| {
        m.option_ip(option::REQUESTED_IP, ADDR);
    });
    let rx = Received {
        line: line(),
        src_mac: other,
        src_ip: Ipv4Addr::UNSPECIFIED,
        dst_ip: Ipv4Addr::BROADCAST,
        message: &m,
    };
    s.handle_input(at(52), &rx);
    assert_eq!(options(&transmits(&mut s)[0].message).0, mt::NAK);
    // ... or silence when not authoritative.
    let mut quiet = Server::new(
        ServerConfig {
            authoritative: false,
            ..ServerConfig::new(GW)
        },
        T0,
    );
    quiet.handle_input(at(52), &rx);
    assert!(transmits(&mut quiet).is_empty());
    assert_eq!(quiet.drop_count(DropReason::UnknownClient), 1);
    // Neither requested address nor ciaddr: malformed.
    input(
        &mut s,
        at(53),
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::BROADCAST,
        &message(mt::REQUEST, 9, MAC, |_| {}),
    );
    assert_eq!(s.drop_count(DropReason::MissingField), 1);
}

#[test]
fn option_82_names_the_login_and_is_echoed_last() {
    let mut s = Server::new(
        ServerConfig {
            login_by: LoginBy::CircuitId,
            ..ServerConfig::new(GW)
        },
        T0,
    );
    s.handle_datagram(T0, line(), MAC, &fixtures::DHCP_DISCOVER_82);
    let e = events(&mut s);
    let [Event::Login(l)] = &e[..] else {
        panic!("{e:?}")
    };
    assert_eq!(l.user, b"an1 eth 1/1/1:100");
    let id = l.line_id.clone().unwrap();
    assert_eq!(id.remote_id.as_deref(), Some(&b"cust42"[..]));
    s.accept(T0, l.id, grant()).unwrap();
    let t = transmits(&mut s);
    assert_eq!(t[0].dst, Ipv4Addr::BROADCAST, "the BROADCAST flag");
    assert_eq!(
        t[0].to,
        Destination::Access {
            line: line(),
            mac: MAC
        },
        "still layer-2 unicast"
    );
    let (_, o) = options(&t[0].message);
    let (code, value) = o.last().unwrap();
    assert_eq!(*code, option::RELAY_AGENT_INFO);
    assert_eq!(value, &wire::relay_agent_info(&id));
    // Without option 82 the login cannot be named.
    let plain = message(mt::DISCOVER, 2, [2, 0, 0, 0, 0, 3], |_| {});
    s.handle_input(
        T0,
        &Received {
            line: line(),
            src_mac: [2, 0, 0, 0, 0, 3],
            src_ip: Ipv4Addr::UNSPECIFIED,
            dst_ip: Ipv4Addr::BROADCAST,
            message: &plain,
        },
    );
    assert!(events(&mut s).is_empty());
    assert_eq!(s.refusal_count(Refusal::NoLineId), 1);
    // By remote id.
    let mut r = Server::new(
        ServerConfig {
            login_by: LoginBy::RemoteId,
            ..ServerConfig::new(GW)
        },
        T0,
    );
    r.handle_datagram(T0, line(), MAC, &fixtures::DHCP_DISCOVER_82);
    assert!(matches!(&events(&mut r)[..], [Event::Login(l)] if l.user == b"cust42"));
}

#[test]
fn a_relayed_discover_is_answered_to_the_relay_agent() {
    let mut s = server();
    let agent = Ipv4Addr::new(100, 64, 255, 1);
    let agent_mac = [2, 0, 0, 0, 0xaa, 0xaa];
    let d = message(mt::DISCOVER, 1, MAC, |m| {
        m.giaddr(agent).hops(1);
    });
    let rx = Received {
        line: line(),
        src_mac: agent_mac,
        src_ip: agent,
        dst_ip: GW,
        message: &d,
    };
    s.handle_input(T0, &rx);
    let e = events(&mut s);
    let [Event::Login(l)] = &e[..] else {
        panic!("{e:?}")
    };
    assert_eq!((l.relay, l.subscriber), (Some(agent), sub()));
    s.accept(T0, l.id, grant()).unwrap();
    let t = transmits(&mut s);
    assert_eq!((t[0].dst, t[0].dst_port), (agent, 67));
    assert_eq!(
        t[0].to,
        Destination::Access {
            line: line(),
            mac: agent_mac
        }
    );
    assert_eq!(
        Packet::new_checked(&t[0].message[..]).unwrap().giaddr(),
        agent
    );
    // Too many hops.
    let far = message(mt::DISCOVER, 1, MAC, |m| {
        m.giaddr(agent).hops(17);
    });
    s.handle_input(
        T0,
        &Received {
            message: &far,
            ..rx
        },
    );
    assert_eq!(s.drop_count(DropReason::TooManyHops), 1);
    // Without a relay, chaddr must be the frame's source.
    let spoof = message(mt::DISCOVER, 1, [2, 0, 0, 0, 0, 9], |_| {});
    s.handle_input(
        T0,
        &Received {
            message: &spoof,
            src_ip: Ipv4Addr::UNSPECIFIED,
            ..rx
        },
    );
    assert_eq!(s.drop_count(DropReason::ChaddrMismatch), 1);
}

#[test]
fn a_discover_flood_is_limited_per_mac_and_in_all() {
    let mut s = Server::new(
        ServerConfig {
            discover_rate: Rate {
                per_second: 10,
                burst: 8,
            },
            ..ServerConfig::new(GW)
        },
        T0,
    );
    let d = message(mt::DISCOVER, 1, MAC, |_| {});
    for _ in 0..7 {
        input(&mut s, T0, Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST, &d);
    }
    // One login; four retransmissions while deciding; two over the MAC's burst of 5.
    assert_eq!(events(&mut s).len(), 1);
    assert_eq!(s.drop_count(DropReason::DecisionPending), 4);
    assert_eq!(s.refusal_count(Refusal::DiscoverRateMac), 2);
    // Other MACs: the global bucket (8) has 3 tokens left.
    for i in 0..5u8 {
        let mac = [2, 0, 0, 0, 1, i];
        let m = message(mt::DISCOVER, 1, mac, |_| {});
        s.handle_input(
            T0,
            &Received {
                line: line(),
                src_mac: mac,
                src_ip: Ipv4Addr::UNSPECIFIED,
                dst_ip: Ipv4Addr::BROADCAST,
                message: &m,
            },
        );
    }
    assert_eq!(events(&mut s).len(), 3);
    assert_eq!(s.refusal_count(Refusal::DiscoverRate), 2);
    assert_eq!(s.stats().discover, 12);
    let names: Vec<&str> = s
        .refusals()
        .filter(|(_, n)| *n > 0)
        .map(|(r, _)| r.name())
        .collect();
    assert_eq!(names, ["dhcp_discover_rate_mac", "dhcp_discover_rate"]);
}

#[test]
fn malformed_messages_are_counted_by_name() {
    let mut s = server();
    let good = message(mt::DISCOVER, 1, MAC, |_| {});
    let mut cases: Vec<(Vec<u8>, DropReason)> = vec![
        (good[..200].to_vec(), DropReason::Truncated),
        (
            {
                let mut b = good.clone();
                b[236] = 0;
                b
            },
            DropReason::BadCookie,
        ),
        (
            {
                let mut b = good[..240].to_vec();
                b.extend_from_slice(&[53, 1, 1, 12, 40, b'x']);
                b
            },
            DropReason::BadOption,
        ),
        (
            {
                let mut b = good.clone();
                b[0] = op::BOOTREPLY;
                b
            },
            DropReason::WrongOp,
        ),
        (
            {
                let mut b = good.clone();
                b[2] = 16;
                b
            },
            DropReason::BadHardware,
        ),
        (
            {
                let mut b = good[..240].to_vec();
                b.push(255);
                b
            },
            DropReason::NoMessageType,
        ),
        (
            message(mt::OFFER, 1, MAC, |_| {}),
            DropReason::UnexpectedType,
        ),
        (
            message(mt::DISCOVER, 1, [2, 0, 0, 0, 0, 9], |_| {}),
            DropReason::ChaddrMismatch,
        ),
        (
            message(mt::DISCOVER, 1, [3, 0, 0, 0, 0, 1], |_| {}),
            DropReason::ChaddrMismatch,
        ),
        (
            message(mt::INFORM, 1, MAC, |m| {
                m.ciaddr(ADDR);
            }),
            DropReason::UnknownLease,
        ),
    ];
    for (m, _) in &cases {
        input(&mut s, T0, Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST, m);
    }
    // IP and UDP level, through handle_datagram.
    let mut bad_sum = fixtures::DHCP_DISCOVER;
    bad_sum[26] ^= 0xff;
    let mut frag = fixtures::DHCP_DISCOVER;
    frag[6] = 0x20;
    frag[10] = 0;
    frag[11] = 0;
    let c = tollgate_control_core::inet::checksum::checksum(&frag[..20]);
    frag[10..12].copy_from_slice(&c.to_be_bytes());
    let mut port = fixtures::DHCP_DISCOVER;
    port[23] = 0x44;
    let datagrams: [(&[u8], DropReason); 5] = [
        (&fixtures::DHCP_DISCOVER[..19], DropReason::BadIp),
        (&bad_sum, DropReason::BadChecksum),
        (&frag, DropReason::Fragment),
        (&port, DropReason::NotDhcp),
        (&fixtures::DHCP_DISCOVER[..25], DropReason::BadIp),
    ];
    for (d, _) in &datagrams {
        s.handle_datagram(T0, line(), MAC, d);
    }
    cases.extend(datagrams.iter().map(|(d, r)| (d.to_vec(), *r)));
    for r in DropReason::ALL {
        let want = cases.iter().filter(|(_, c)| *c == r).count() as u64;
        assert_eq!(s.drop_count(r), want, "{}", r.name());
    }
    assert!(transmits(&mut s).is_empty());
    assert!(events(&mut s).is_empty());
}

#[test]
fn leases_survive_a_restart_of_the_gateway() {
    let mut s = server();
    let lease = bind(&mut s, T0);
    // Persisted at T0 + 100 s = Unix 1_700_000_100.
    let saved = s.lease(&sub()).unwrap().encode(at(100), 1_700_000_100);
    let other = Lease {
        subscriber: Subscriber::new(line(), [2, 0, 0, 0, 0, 2]),
        grant: Grant::new(Ipv4Addr::new(100, 64, 0, 11), MASK),
        expires: at(50),
        ..lease.clone()
    };
    let stale = other.encode(at(100), 1_700_000_100);
    // A new process: its clock starts again; it is Unix 1_700_000_400 (5 minutes later).
    let now = Instant(7_000_000_000);
    let mut s = server();
    let back = Lease::decode(&saved, now, 1_700_000_400).unwrap();
    assert_eq!(back.expires, now + Duration::from_secs(200));
    assert_eq!(s.restore(now, back.clone()), Ok(Restored::Live));
    assert_eq!(
        s.restore(now, back.clone()),
        Err(tollgate_control_core::dhcp::RestoreError::Duplicate)
    );
    assert_eq!(
        s.restore(now, Lease::decode(&stale, now, 1_700_000_400).unwrap()),
        Ok(Restored::Expired)
    );
    let e = events(&mut s);
    assert!(
        matches!(&e[..], [Event::SessionEnded { cause: EndCause::Expired, lease }] if lease.subscriber.mac[5] == 2)
    );
    // The client renews as if nothing happened.
    let renew = message(mt::REQUEST, 7, MAC, |m| {
        m.ciaddr(ADDR);
    });
    input(&mut s, now, ADDR, GW, &renew);
    assert_eq!(options(&transmits(&mut s)[0].message).0, mt::ACK);
    let e = events(&mut s);
    let [Event::LeaseRenewed(l)] = &e[..] else {
        panic!("{e:?}")
    };
    assert_eq!((l.id, l.started), (lease.id, back.started));
    // Login ids go on after the restored ones.
    let d = message(mt::DISCOVER, 1, [2, 0, 0, 0, 0, 5], |_| {});
    s.handle_input(
        now,
        &Received {
            line: line(),
            src_mac: [2, 0, 0, 0, 0, 5],
            src_ip: Ipv4Addr::UNSPECIFIED,
            dst_ip: Ipv4Addr::BROADCAST,
            message: &d,
        },
    );
    assert!(login_id(&events(&mut s)).0 > lease.id.0);
}

#[test]
fn inform_gets_the_parameters_without_a_lease_time() {
    let mut s = server();
    bind(&mut s, T0);
    let inform = message(mt::INFORM, 8, MAC, |m| {
        m.ciaddr(ADDR)
            .option(option::PARAMETER_REQUEST_LIST, &[1, 3, 6]);
    });
    input(&mut s, at(1), ADDR, Ipv4Addr::BROADCAST, &inform);
    let t = transmits(&mut s);
    assert_eq!((t[0].dst, t[0].dst_port), (ADDR, 68));
    let p = Packet::new_checked(&t[0].message[..]).unwrap();
    assert_eq!((p.yiaddr(), p.ciaddr()), (Ipv4Addr::UNSPECIFIED, ADDR));
    let (kind, o) = options(&t[0].message);
    assert_eq!(kind, mt::ACK);
    let codes: Vec<u8> = o.iter().map(|(c, _)| *c).collect();
    assert_eq!(codes, [53, 54, 1, 3, 6]);
    assert!(events(&mut s).is_empty(), "INFORM changes no session");
    assert_eq!(s.stats().inform, 1);
}

#[test]
fn a_discover_retransmitted_while_deciding_is_answered_once_with_its_xid() {
    let mut s = server();
    input(
        &mut s,
        T0,
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::BROADCAST,
        &message(mt::DISCOVER, 1, MAC, |_| {}),
    );
    let id = login_id(&events(&mut s));
    input(
        &mut s,
        at(4),
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::BROADCAST,
        &message(mt::DISCOVER, 2, MAC, |_| {}),
    );
    assert!(events(&mut s).is_empty());
    s.accept(at(5), id, grant()).unwrap();
    let t = transmits(&mut s);
    assert_eq!(t.len(), 1);
    assert_eq!(Packet::new_checked(&t[0].message[..]).unwrap().xid(), 2);
    // A DISCOVER after the OFFER: the same offer again, no new login.
    input(
        &mut s,
        at(6),
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::BROADCAST,
        &message(mt::DISCOVER, 3, MAC, |_| {}),
    );
    let t = transmits(&mut s);
    assert_eq!(
        (
            options(&t[0].message).0,
            Packet::new_checked(&t[0].message[..]).unwrap().yiaddr()
        ),
        (mt::OFFER, ADDR)
    );
    assert!(events(&mut s).is_empty());
    assert_eq!(s.stats().logins, 1);
}

#[test]
fn a_bound_client_that_lost_its_state_gets_its_lease_offered_again() {
    let mut s = server();
    bind(&mut s, T0);
    input(
        &mut s,
        at(30),
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::BROADCAST,
        &message(mt::DISCOVER, 4, MAC, |_| {}),
    );
    assert!(events(&mut s).is_empty(), "no new login");
    let t = transmits(&mut s);
    assert_eq!(
        Packet::new_checked(&t[0].message[..]).unwrap().yiaddr(),
        ADDR
    );
    let r = message(mt::REQUEST, 4, MAC, |m| {
        m.option_ip(option::SERVER_ID, GW)
            .option_ip(option::REQUESTED_IP, ADDR);
    });
    input(
        &mut s,
        at(31),
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::BROADCAST,
        &r,
    );
    assert!(matches!(&events(&mut s)[..], [Event::LeaseRenewed(l)] if l.expires == at(631)));
}

#[test]
fn an_address_held_by_another_subscriber_cannot_be_granted() {
    let mut s = server();
    bind(&mut s, T0);
    let other = [2, 0, 0, 0, 0, 2];
    let d = message(mt::DISCOVER, 1, other, |_| {});
    s.handle_input(
        T0,
        &Received {
            line: line(),
            src_mac: other,
            src_ip: Ipv4Addr::UNSPECIFIED,
            dst_ip: Ipv4Addr::BROADCAST,
            message: &d,
        },
    );
    let id = login_id(&events(&mut s));
    assert_eq!(s.accept(T0, id, grant()), Err(DecisionError::AddressInUse));
    assert_eq!(
        s.pending(),
        1,
        "the login still waits for a usable decision"
    );
    s.accept(T0, id, Grant::new(Ipv4Addr::new(100, 64, 0, 11), MASK))
        .unwrap();
    assert_eq!(s.leases().count(), 1);
}
