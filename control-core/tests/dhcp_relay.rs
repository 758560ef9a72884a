//! Relay mode with a fake clock: option 82 and giaddr added, replies relayed back, the
//! session started by the server's ACK and ended by RELEASE, DECLINE, NAK, expiry or the
//! gateway; drops counted by name.

use core::net::Ipv4Addr;
use core::time::Duration;

use tollgate_control_core::Instant;
use tollgate_control_core::dhcp::wire::{
    self, MessageBuilder, Packet, message_type as mt, op, option,
};
use tollgate_control_core::dhcp::{
    Destination, DropReason, EndCause, Event, ExistingRelayInfo, Lease, Received, Refusal, Relay,
    RelayConfig, Restored, Transmit,
};
use tollgate_control_core::ipoe::Subscriber;
use tollgate_control_core::pppoe::Line;

const GIADDR: Ipv4Addr = Ipv4Addr::new(100, 64, 0, 1);
const KEA: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 67);
const KEA2: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 68);
const ADDR: Ipv4Addr = Ipv4Addr::new(100, 64, 3, 3);
const MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
const T0: Instant = Instant(1_000_000_000);

fn at(secs: u64) -> Instant {
    T0 + Duration::from_secs(secs)
}

fn line() -> Line {
    Line {
        port: 1,
        svlan: Some(100),
        cvlan: Some(200),
    }
}

fn relay() -> Relay {
    let mut cfg = RelayConfig::new(GIADDR, vec![KEA]);
    cfg.port_names = vec!["access0".into(), "access1".into()];
    Relay::new(cfg, T0)
}

fn client_msg(kind: u8, xid: u32, f: impl FnOnce(&mut MessageBuilder)) -> Vec<u8> {
    let mut m = MessageBuilder::new(op::BOOTREQUEST, xid, MAC);
    m.option(option::MESSAGE_TYPE, &[kind]);
    f(&mut m);
    m.finish()
}

fn from_client(r: &mut Relay, now: Instant, m: &[u8]) {
    r.handle_client(
        now,
        &Received {
            line: line(),
            src_mac: MAC,
            src_ip: Ipv4Addr::UNSPECIFIED,
            dst_ip: Ipv4Addr::BROADCAST,
            message: m,
        },
    );
}

/// The server's answer to `req` (as a relayed request).
fn server_reply(req: &[u8], kind: u8, f: impl FnOnce(&mut MessageBuilder)) -> Vec<u8> {
    let p = Packet::new_checked(req).unwrap();
    let mut m = MessageBuilder::reply_to(&p);
    m.option(option::MESSAGE_TYPE, &[kind])
        .option_ip(option::SERVER_ID, KEA);
    f(&mut m);
    // Kea echoes option 82.
    if let Ok(r) = wire::Request::parse(&p)
        && let Some(ri) = r.relay_agent_info
    {
        m.option(option::RELAY_AGENT_INFO, &ri);
    }
    m.finish()
}

fn lease_opts(m: &mut MessageBuilder) {
    m.yiaddr(ADDR)
        .option_ip(option::SUBNET_MASK, Ipv4Addr::new(255, 255, 0, 0))
        .option_ip(option::ROUTER, GIADDR)
        .option_ips(option::DNS, &[Ipv4Addr::new(9, 9, 9, 9)])
        .option_u32(option::LEASE_TIME, 600);
}

fn transmits(r: &mut Relay) -> Vec<Transmit> {
    std::iter::from_fn(|| r.poll_transmit()).collect()
}

fn events(r: &mut Relay) -> Vec<Event> {
    std::iter::from_fn(|| r.poll_event()).collect()
}

fn options(m: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let p = Packet::new_checked(m).unwrap();
    p.options()
        .map(|o| o.unwrap())
        .map(|o| (o.code, o.value.to_vec()))
        .collect()
}

/// DISCOVER/OFFER/REQUEST/ACK through the relay; returns the lease.
fn bind(r: &mut Relay, now: Instant) -> Lease {
    from_client(r, now, &client_msg(mt::DISCOVER, 1, |_| {}));
    let d = transmits(r).remove(0);
    r.handle_server(now, KEA, &server_reply(&d.message, mt::OFFER, lease_opts));
    transmits(r);
    from_client(
        r,
        now,
        &client_msg(mt::REQUEST, 1, |m| {
            m.option_ip(option::SERVER_ID, KEA)
                .option_ip(option::REQUESTED_IP, ADDR);
        }),
    );
    let q = transmits(r).remove(0);
    r.handle_server(now, KEA, &server_reply(&q.message, mt::ACK, lease_opts));
    transmits(r);
    match &events(r)[..] {
        [Event::SessionStarted(l)] => l.clone(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_relay_adds_option_82_and_giaddr_and_the_ack_starts_the_session() {
    let mut r = Relay::new(
        RelayConfig {
            port_names: vec!["access0".into(), "access1".into()],
            ..RelayConfig::new(GIADDR, vec![KEA, KEA2])
        },
        T0,
    );
    let discover = client_msg(mt::DISCOVER, 0xabcd, |m| {
        m.option(option::HOST_NAME, b"sub1");
    });
    from_client(&mut r, T0, &discover);
    let t = transmits(&mut r);
    assert_eq!(t.len(), 2, "to each server");
    assert_eq!((t[0].dst, t[1].dst), (KEA, KEA2));
    assert_eq!(
        (t[0].to, t[0].src, t[0].src_port, t[0].dst_port),
        (Destination::Server, GIADDR, 67, 67)
    );
    assert_eq!(t[0].frame([2; 6], 0x8100), None);
    let p = Packet::new_checked(&t[0].message[..]).unwrap();
    assert_eq!(
        (p.giaddr(), p.hops(), p.xid(), p.client_mac()),
        (GIADDR, 1, 0xabcd, MAC)
    );
    assert_eq!(
        &t[0].message[..236],
        &{
            let mut want = discover[..236].to_vec();
            want[3] = 1;
            want[24..28].copy_from_slice(&GIADDR.octets());
            want
        }[..]
    );
    let o = options(&t[0].message);
    assert_eq!(o[..2], [(53, vec![1]), (12, b"sub1".to_vec())]);
    let mut ri = vec![1, 15];
    ri.extend_from_slice(b"access1.100.200");
    ri.extend_from_slice(&[2, 17]);
    ri.extend_from_slice(b"02:00:00:00:00:01");
    assert_eq!(o[2], (option::RELAY_AGENT_INFO, ri));
    assert_eq!(o.len(), 3);
    assert!(events(&mut r).is_empty(), "no session before the ACK");
    // A UDP datagram from giaddr:67 to the server.
    let dg = t[0].datagram();
    let e = etherparse::SlicedPacket::from_ip(&dg).unwrap();
    let Some(etherparse::TransportSlice::Udp(u)) = e.transport else {
        panic!()
    };
    assert_eq!(
        (u.source_port(), u.destination_port(), u.payload()),
        (67, 67, &t[0].message[..])
    );

    // The OFFER comes back: relayed to the client without our option 82.
    r.handle_server(T0, KEA, &server_reply(&t[0].message, mt::OFFER, lease_opts));
    let back = transmits(&mut r);
    assert_eq!(back.len(), 1);
    assert_eq!(
        back[0].to,
        Destination::Access {
            line: line(),
            mac: MAC
        }
    );
    assert_eq!(
        (back[0].src, back[0].dst, back[0].src_port, back[0].dst_port),
        (GIADDR, ADDR, 67, 68)
    );
    assert!(
        options(&back[0].message)
            .iter()
            .all(|(c, _)| *c != option::RELAY_AGENT_INFO)
    );
    assert_eq!(
        Packet::new_checked(&back[0].message[..]).unwrap().yiaddr(),
        ADDR
    );

    let req = client_msg(mt::REQUEST, 0xabcd, |m| {
        m.option_ip(option::SERVER_ID, KEA)
            .option_ip(option::REQUESTED_IP, ADDR);
    });
    from_client(&mut r, at(1), &req);
    let q = transmits(&mut r);
    r.handle_server(
        at(1),
        KEA,
        &server_reply(&q[0].message, mt::ACK, lease_opts),
    );
    assert_eq!(transmits(&mut r).len(), 1);
    let e = events(&mut r);
    let [Event::SessionStarted(l)] = &e[..] else {
        panic!("{e:?}")
    };
    assert_eq!(
        (l.address(), l.server, l.expires),
        (ADDR, Some(KEA), at(601))
    );
    assert_eq!(l.grant.dns, [Ipv4Addr::new(9, 9, 9, 9)]);
    assert_eq!(l.grant.router, Some(GIADDR));
    assert_eq!(
        l.line_id.as_ref().unwrap().circuit_id.as_deref(),
        Some(&b"access1.100.200"[..])
    );
    assert_eq!(r.lease(&Subscriber::new(line(), MAC)), Some(l));
    // The second server's late ACK for the same transaction: a renewal of the same
    // address, not a second session.
    r.handle_server(
        at(1),
        KEA2,
        &server_reply(&q[1].message, mt::ACK, lease_opts),
    );
    assert!(matches!(&events(&mut r)[..], [Event::LeaseRenewed(_)]));
    let s = r.stats();
    assert_eq!(
        (
            s.discover,
            s.request,
            s.offer,
            s.ack,
            s.relayed_to_server,
            s.relayed_to_client
        ),
        (1, 1, 1, 2, 4, 3)
    );
}

#[test]
fn renewal_nak_release_decline_and_expiry_end_sessions() {
    let mut r = relay();
    bind(&mut r, T0);
    // Renewal ACKed.
    let renew = client_msg(mt::REQUEST, 2, |m| {
        m.ciaddr(ADDR);
    });
    from_client(&mut r, at(300), &renew);
    let q = transmits(&mut r).remove(0);
    r.handle_server(
        at(300),
        KEA,
        &server_reply(&q.message, mt::ACK, |m| {
            lease_opts(m);
            m.ciaddr(ADDR);
        }),
    );
    let t = transmits(&mut r);
    assert_eq!((t[0].dst, t[0].dst_port), (ADDR, 68), "to ciaddr");
    assert!(matches!(&events(&mut r)[..], [Event::LeaseRenewed(l)] if l.expires == at(900)));
    // Renewal NAKed: the session ends.
    from_client(&mut r, at(600), &renew);
    let q = transmits(&mut r).remove(0);
    r.handle_server(at(600), KEA, &server_reply(&q.message, mt::NAK, |_| {}));
    assert_eq!(transmits(&mut r)[0].dst, Ipv4Addr::BROADCAST);
    assert!(matches!(
        &events(&mut r)[..],
        [Event::SessionEnded {
            cause: EndCause::Nak,
            ..
        }]
    ));

    bind(&mut r, at(700));
    from_client(
        &mut r,
        at(701),
        &client_msg(mt::RELEASE, 3, |m| {
            m.ciaddr(ADDR).option_ip(option::SERVER_ID, KEA);
        }),
    );
    assert_eq!(
        transmits(&mut r).len(),
        1,
        "the RELEASE goes on to the server"
    );
    assert!(matches!(
        &events(&mut r)[..],
        [Event::SessionEnded {
            cause: EndCause::Release,
            ..
        }]
    ));

    bind(&mut r, at(800));
    from_client(
        &mut r,
        at(801),
        &client_msg(mt::DECLINE, 4, |m| {
            m.option_ip(option::REQUESTED_IP, ADDR)
                .option_ip(option::SERVER_ID, KEA);
        }),
    );
    assert_eq!(transmits(&mut r).len(), 1);
    assert!(matches!(
        &events(&mut r)[..],
        [Event::SessionEnded {
            cause: EndCause::Decline,
            ..
        }]
    ));

    r.handle_timeout(at(899));
    bind(&mut r, at(900));
    assert_eq!(
        r.poll_timeout(),
        Some(at(930)),
        "the open transaction first"
    );
    r.handle_timeout(at(930));
    assert_eq!(r.open_transactions(), 0);
    assert_eq!(r.poll_timeout(), Some(at(1500)));
    r.handle_timeout(at(1500));
    assert!(matches!(
        &events(&mut r)[..],
        [Event::SessionEnded {
            cause: EndCause::Expired,
            ..
        }]
    ));
    assert_eq!(r.leases().count(), 0);
    assert_eq!(r.stats().expired, 1);
}

#[test]
fn a_session_ended_by_the_gateway_is_released_at_the_server_and_naked_at_renew() {
    let mut r = relay();
    let lease = bind(&mut r, T0);
    assert!(r.end_session(&lease.subscriber, "disc: idle"));
    let t = transmits(&mut r);
    assert_eq!((t.len(), t[0].dst, t[0].to), (1, KEA, Destination::Server));
    let p = Packet::new_checked(&t[0].message[..]).unwrap();
    assert_eq!(
        (p.ciaddr(), p.giaddr(), p.client_mac()),
        (ADDR, GIADDR, MAC)
    );
    let o = options(&t[0].message);
    assert_eq!(o[0], (53, vec![mt::RELEASE]));
    assert!(o.contains(&(54, KEA.octets().to_vec())));
    assert!(
        matches!(&events(&mut r)[..], [Event::SessionEnded { cause: EndCause::Closed(c), .. }] if c == "disc: idle")
    );
    // The client's renewal is NAKed by the relay, not forwarded.
    from_client(
        &mut r,
        at(300),
        &client_msg(mt::REQUEST, 5, |m| {
            m.ciaddr(ADDR);
        }),
    );
    let t = transmits(&mut r);
    assert_eq!(t.len(), 1);
    assert_eq!(
        t[0].to,
        Destination::Access {
            line: line(),
            mac: MAC
        }
    );
    let o = options(&t[0].message);
    assert_eq!(o[..2], [(53, vec![mt::NAK]), (54, KEA.octets().to_vec())]);
    assert_eq!(r.stats().nak, 1);
    // The client starts over: its DISCOVER and the new exchange are relayed, and the
    // server's ACK starts a new session.
    let lease2 = bind(&mut r, at(301));
    assert_ne!(lease2.id, lease.id);
    assert_eq!(r.lease(&lease.subscriber).map(|l| l.address()), Some(ADDR));
    // Cut off again; once the old lease would have expired, a renewal is relayed again.
    assert!(r.end_session(&lease.subscriber, "again"));
    transmits(&mut r);
    events(&mut r);
    r.handle_timeout(at(901));
    from_client(
        &mut r,
        at(902),
        &client_msg(mt::REQUEST, 7, |m| {
            m.ciaddr(ADDR);
        }),
    );
    assert_eq!(transmits(&mut r)[0].to, Destination::Server);
}

#[test]
fn option_82_from_an_access_node_is_kept_replaced_or_refused() {
    let node_82 = [1u8, 3, b'a', b'n', b'1'];
    let m = client_msg(mt::DISCOVER, 9, |m| {
        m.option(option::RELAY_AGENT_INFO, &node_82);
    });
    for (policy, want) in [
        (ExistingRelayInfo::Keep, Some(node_82.to_vec())),
        (
            ExistingRelayInfo::Replace,
            Some(b"\x01\x0dport1.100.200\x02\x1102:00:00:00:00:01".to_vec()),
        ),
        (ExistingRelayInfo::Drop, None),
    ] {
        let mut r = Relay::new(
            RelayConfig {
                existing: policy,
                ..RelayConfig::new(GIADDR, vec![KEA])
            },
            T0,
        );
        from_client(&mut r, T0, &m);
        let t = transmits(&mut r);
        match want {
            Some(v) => {
                let o = options(&t[0].message);
                assert_eq!(o.iter().filter(|(c, _)| *c == 82).count(), 1);
                assert_eq!(o.last(), Some(&(82, v)), "{policy:?}");
                // The node's option 82 stays in the reply (the node strips it); ours is removed.
                r.handle_server(T0, KEA, &server_reply(&t[0].message, mt::OFFER, lease_opts));
                let back = transmits(&mut r);
                let has = options(&back[0].message).iter().any(|(c, _)| *c == 82);
                assert_eq!(has, policy == ExistingRelayInfo::Keep);
            }
            None => {
                assert!(t.is_empty());
                assert_eq!(r.drop_count(DropReason::UntrustedRelayInfo), 1);
            }
        }
    }
}

#[test]
fn bad_input_is_counted_by_name() {
    let mut r = relay();
    from_client(&mut r, T0, &client_msg(mt::DISCOVER, 1, |_| {}));
    let d = transmits(&mut r).remove(0);
    // A reply from a host that is not a configured server.
    r.handle_server(
        T0,
        Ipv4Addr::new(192, 0, 2, 99),
        &server_reply(&d.message, mt::OFFER, lease_opts),
    );
    // A reply for a transaction never relayed.
    let mut other = MessageBuilder::new(op::BOOTREPLY, 77, MAC);
    other
        .giaddr(GIADDR)
        .option(option::MESSAGE_TYPE, &[mt::OFFER]);
    r.handle_server(T0, KEA, &other.finish());
    // A client message on the server side and vice versa.
    r.handle_server(T0, KEA, &d.message);
    from_client(&mut r, T0, &server_reply(&d.message, mt::OFFER, lease_opts));
    // A message that came through another relay.
    from_client(
        &mut r,
        T0,
        &client_msg(mt::DISCOVER, 1, |m| {
            m.giaddr(Ipv4Addr::new(10, 1, 1, 1));
        }),
    );
    // An ACK without a lease time.
    from_client(
        &mut r,
        T0,
        &client_msg(mt::REQUEST, 1, |m| {
            m.option_ip(option::SERVER_ID, KEA)
                .option_ip(option::REQUESTED_IP, ADDR);
        }),
    );
    let q = transmits(&mut r).remove(0);
    r.handle_server(
        T0,
        KEA,
        &server_reply(&q.message, mt::ACK, |m| {
            m.yiaddr(ADDR);
        }),
    );
    // A DISCOVER flood from one MAC: 5 relayed (burst), then refused.
    for i in 0..7 {
        from_client(&mut r, at(1), &client_msg(mt::DISCOVER, 100 + i, |_| {}));
    }
    // The MAC's burst of 5 less the first DISCOVER's token, plus one refilled a second
    // later.
    assert_eq!(transmits(&mut r).len(), 5);
    assert_eq!(r.refusal_count(Refusal::DiscoverRateMac), 2);
    assert_eq!(r.drop_count(DropReason::UnknownServer), 1);
    assert_eq!(r.drop_count(DropReason::UnknownTransaction), 1);
    assert_eq!(r.drop_count(DropReason::WrongOp), 2);
    assert_eq!(r.drop_count(DropReason::Relayed), 1);
    assert_eq!(r.drop_count(DropReason::MissingField), 1);
    assert!(events(&mut r).is_empty());
}

#[test]
fn relayed_leases_survive_a_restart() {
    let mut r = relay();
    let lease = bind(&mut r, T0);
    let saved = lease.encode(at(10), 1_000_010);
    let now = Instant(5);
    let mut r = relay();
    let back = Lease::decode(&saved, now, 1_000_100).unwrap();
    assert_eq!(back.server, Some(KEA));
    assert_eq!(r.restore(now, back), Ok(Restored::Live));
    assert_eq!(r.leases().count(), 1);
    // Expiry is 600 s after T0 = 590 s after the save = 500 s after the restore.
    assert_eq!(r.poll_timeout(), Some(now + Duration::from_secs(500)));
}
