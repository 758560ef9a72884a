//! DHCPv6 relay mode (RFC 8415 section 19) with a fake clock: the RELAY-FORW the relay
//! builds (checked byte by byte: hop count, Link-Address, Peer-Address, Interface-Id,
//! Remote-Id, client link-layer address, the client's message), the RELAY-REPL's inner
//! message delivered to the client, bindings started, renewed and ended by the server's
//! REPLY, the client's RELEASE, expiry and the gateway's own end (a RELEASE to the
//! server, NoBinding to the client's RENEW), the gateway's RELEASE after a restart (the
//! binding and its server end persisted and restored) byte for byte, and malformed
//! RELAY-REPLs as named drops.

use core::net::Ipv6Addr;
use core::time::Duration;

use tollgate_control_core::Instant;
use tollgate_control_core::dhcp::{EndCause, LoginId};
use tollgate_control_core::dhcpv6::wire::{self, Ia, message_type as mt, option, status};
use tollgate_control_core::dhcpv6::{
    BindingServer, DropReason, Event, Lease, Received, Refusal, Relay, RelayConfig, ToServer,
};
use tollgate_control_core::inet::ipv6::{self, Prefix};
use tollgate_control_core::ipoe::Subscriber;
use tollgate_control_core::pppoe::Line;

const GW_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0xfe];
const MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
const DUID: [u8; 10] = [0, 3, 0, 1, 2, 0, 0, 0, 0, 1];
const SERVER_DUID: [u8; 10] = [0, 3, 0, 1, 2, 0, 0, 0, 0, 0x20];
const T0: Instant = Instant(1_000_000_000);

fn at(secs: u64) -> Instant {
    T0 + Duration::from_secs(secs)
}

fn line() -> Line {
    Line {
        port: 0,
        svlan: Some(100),
        cvlan: Some(200),
    }
}

fn client_ll() -> Ipv6Addr {
    "fe80::ff:fe00:1".parse().unwrap()
}

fn link() -> Ipv6Addr {
    "2001:db8:100:1::1".parse().unwrap()
}

fn server() -> Ipv6Addr {
    "2001:db8:ff::20".parse().unwrap()
}

fn addr() -> Ipv6Addr {
    "2001:db8:100:1::1000".parse().unwrap()
}

fn prefix() -> Prefix {
    "2001:db8:200:100::/56".parse().unwrap()
}

fn relay() -> Relay {
    let mut c = RelayConfig::new(GW_MAC, link(), vec![server()]);
    c.port_names = vec!["access0".into()];
    Relay::new(c, T0)
}

fn ia_na_request(iaid: u32) -> Vec<u8> {
    wire::option_bytes(option::IA_NA, &wire::ia(iaid, 0, 0, &[]))
}

fn ia_pd_request(iaid: u32) -> Vec<u8> {
    wire::option_bytes(option::IA_PD, &wire::ia(iaid, 0, 0, &[]))
}

/// A client message of `t` with our DUID, IA_NA 1 and IA_PD 2 (and `extra`).
fn client_msg(t: u8, xid: u32, extra: &[u8]) -> Vec<u8> {
    let mut o = wire::option_bytes(option::CLIENT_ID, &DUID);
    o.extend_from_slice(&ia_na_request(1));
    o.extend_from_slice(&ia_pd_request(2));
    o.extend_from_slice(extra);
    wire::message(t, xid, &o)
}

fn rx(message: &[u8]) -> Received<'_> {
    Received {
        line: line(),
        src_mac: MAC,
        src_ip: client_ll(),
        dst_ip: "ff02::1:2".parse().unwrap(),
        message,
    }
}

/// The server's REPLY (or ADVERTISE) binding `addr` and `prefix` for `valid` seconds.
fn server_msg(t: u8, xid: u32, valid: u32) -> Vec<u8> {
    let mut o = wire::option_bytes(option::CLIENT_ID, &DUID);
    o.extend_from_slice(&wire::option_bytes(option::SERVER_ID, &SERVER_DUID));
    let mut na = Vec::new();
    wire::ia_addr_option(&mut na, addr(), valid / 2, valid);
    o.extend_from_slice(&wire::option_bytes(
        option::IA_NA,
        &wire::ia(1, valid / 4, valid / 2, &na),
    ));
    let mut pd = Vec::new();
    wire::ia_prefix_option(&mut pd, prefix(), valid / 2, valid);
    o.extend_from_slice(&wire::option_bytes(
        option::IA_PD,
        &wire::ia(2, valid / 4, valid / 2, &pd),
    ));
    o.extend_from_slice(&wire::option_bytes(
        option::DNS_SERVERS,
        &"2001:db8::53".parse::<Ipv6Addr>().unwrap().octets(),
    ));
    wire::message(t, xid, &o)
}

/// `inner` in a RELAY-REPL to our Link-Address and the client, with `interface_id`.
fn relay_repl(inner: &[u8], interface_id: Option<&[u8]>) -> Vec<u8> {
    relay_repl_to(client_ll(), inner, interface_id)
}

/// `inner` in a RELAY-REPL to our Link-Address and the client at `peer`.
fn relay_repl_to(peer: Ipv6Addr, inner: &[u8], interface_id: Option<&[u8]>) -> Vec<u8> {
    let mut o = Vec::new();
    if let Some(i) = interface_id {
        o.extend_from_slice(&wire::option_bytes(option::INTERFACE_ID, i));
    }
    o.extend_from_slice(&wire::option_bytes(option::RELAY_MSG, inner));
    wire::relay_message(mt::RELAY_REPL, 0, link(), peer, &o)
}

fn forwards(r: &mut Relay) -> Vec<ToServer> {
    std::iter::from_fn(|| r.poll_to_server()).collect()
}

fn events(r: &mut Relay) -> Vec<Event> {
    std::iter::from_fn(|| r.poll_event()).collect()
}

/// SOLICIT, ADVERTISE, REQUEST, REPLY: bound with `addr()` and `prefix()`.
fn bind(r: &mut Relay) {
    r.handle_client(at(0), &rx(&client_msg(mt::SOLICIT, 0x10, &[])));
    forwards(r);
    r.handle_server(
        at(0),
        server(),
        &relay_repl(
            &server_msg(mt::ADVERTISE, 0x10, 600),
            Some(b"access0.100.200"),
        ),
    );
    r.handle_client(
        at(1),
        &rx(&client_msg(
            mt::REQUEST,
            0x11,
            &wire::option_bytes(option::SERVER_ID, &SERVER_DUID),
        )),
    );
    forwards(r);
    r.handle_server(
        at(1),
        server(),
        &relay_repl(&server_msg(mt::REPLY, 0x11, 600), Some(b"access0.100.200")),
    );
    while r.poll_transmit().is_some() {}
}

#[test]
fn a_solicit_goes_to_the_server_in_a_relay_forw_byte_by_byte() {
    let mut r = relay();
    let solicit = client_msg(mt::SOLICIT, 0x0a0b0c, &[]);
    r.handle_client(at(0), &rx(&solicit));
    let f = forwards(&mut r);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].dst, server());
    let m = &f[0].message;
    let mut want = vec![mt::RELAY_FORW, 0];
    want.extend_from_slice(&link().octets());
    want.extend_from_slice(&client_ll().octets());
    // Interface-Id: the line's NAS-Port-Id.
    want.extend_from_slice(&[0, 18, 0, 15]);
    want.extend_from_slice(b"access0.100.200");
    // Remote-Id: enterprise number 0, the MAC.
    want.extend_from_slice(&[0, 37, 0, 21, 0, 0, 0, 0]);
    want.extend_from_slice(b"02:00:00:00:00:01");
    // Client link-layer address: Ethernet, the MAC.
    want.extend_from_slice(&[0, 79, 0, 8, 0, 1, 2, 0, 0, 0, 0, 1]);
    want.extend_from_slice(&[0, 9]);
    want.extend_from_slice(&(solicit.len() as u16).to_be_bytes());
    want.extend_from_slice(&solicit);
    assert_eq!(m, &want);
    assert_eq!(r.stats().relayed_to_server, 1);
    assert_eq!(r.stats().solicit, 1);
    assert_eq!(r.open_transactions(), 1);
}

#[test]
fn the_servers_reply_reaches_the_client_and_starts_the_binding() {
    let mut r = relay();
    r.handle_client(at(0), &rx(&client_msg(mt::SOLICIT, 0x10, &[])));
    forwards(&mut r);
    let adv = server_msg(mt::ADVERTISE, 0x10, 600);
    r.handle_server(at(0), server(), &relay_repl(&adv, Some(b"access0.100.200")));
    let t = r.poll_transmit().expect("the ADVERTISE goes to the client");
    assert_eq!(t.line, line());
    assert_eq!(t.dst_mac, MAC);
    assert_eq!(t.src, ipv6::link_local(GW_MAC));
    assert_eq!(t.dst, client_ll());
    assert_eq!(t.dst_port, 546);
    assert_eq!(t.message, adv, "the inner message as the server sent it");
    assert!(events(&mut r).is_empty(), "an ADVERTISE binds nothing");

    r.handle_client(
        at(1),
        &rx(&client_msg(
            mt::REQUEST,
            0x11,
            &wire::option_bytes(option::SERVER_ID, &SERVER_DUID),
        )),
    );
    assert_eq!(forwards(&mut r).len(), 1);
    let reply = server_msg(mt::REPLY, 0x11, 600);
    r.handle_server(
        at(1),
        server(),
        &relay_repl(&reply, Some(b"access0.100.200")),
    );
    assert_eq!(r.poll_transmit().map(|t| t.message), Some(reply));
    let e = events(&mut r);
    let [Event::SessionStarted(l)] = &e[..] else {
        panic!("{e:?}");
    };
    assert_eq!(l.subscriber, Subscriber::new(line(), MAC));
    assert_eq!(l.duid, DUID);
    assert_eq!(l.grant.address, Some(addr()));
    assert_eq!(l.grant.prefix, Some(prefix()));
    assert_eq!(
        l.grant.dns,
        vec!["2001:db8::53".parse::<Ipv6Addr>().unwrap()]
    );
    assert_eq!(l.grant.valid, Duration::from_secs(600));
    assert_eq!((l.iaid_na, l.iaid_pd), (Some(1), Some(2)));
    assert_eq!(l.expires, at(601));
    assert_eq!(r.stats().relayed_to_client, 2);

    // RENEW, REPLY: renewed (same address and prefix), no new binding.
    r.handle_client(at(300), &rx(&client_msg(mt::RENEW, 0x12, &[])));
    assert_eq!(forwards(&mut r).len(), 1);
    r.handle_server(
        at(300),
        server(),
        &relay_repl(&server_msg(mt::REPLY, 0x12, 600), None),
    );
    let e = events(&mut r);
    let [Event::LeaseRenewed(l)] = &e[..] else {
        panic!("{e:?}");
    };
    assert_eq!(l.expires, at(900));
    // Expiry without renewal ends it.
    r.handle_timeout(at(899));
    assert!(events(&mut r).is_empty());
    r.handle_timeout(at(900));
    let e = events(&mut r);
    assert!(
        matches!(
            &e[..],
            [Event::SessionEnded {
                cause: EndCause::Expired,
                ..
            }]
        ),
        "{e:?}"
    );
    assert_eq!(r.leases().count(), 0);
}

#[test]
fn the_clients_release_ends_the_binding_and_is_relayed() {
    let mut r = relay();
    bind(&mut r);
    events(&mut r);
    r.handle_client(at(10), &rx(&client_msg(mt::RELEASE, 0x20, &[])));
    assert_eq!(forwards(&mut r).len(), 1, "the RELEASE goes to the server");
    let e = events(&mut r);
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
    assert_eq!(r.stats().release, 1);
}

#[test]
fn a_renewal_the_server_refuses_ends_the_binding() {
    let mut r = relay();
    bind(&mut r);
    events(&mut r);
    r.handle_client(at(300), &rx(&client_msg(mt::RENEW, 0x30, &[])));
    forwards(&mut r);
    let mut o = wire::option_bytes(option::CLIENT_ID, &DUID);
    o.extend_from_slice(&wire::option_bytes(option::SERVER_ID, &SERVER_DUID));
    let mut st = Vec::new();
    wire::status_option(&mut st, status::NO_BINDING, "no binding");
    o.extend_from_slice(&wire::option_bytes(option::IA_NA, &wire::ia(1, 0, 0, &st)));
    r.handle_server(
        at(300),
        server(),
        &relay_repl(&wire::message(mt::REPLY, 0x30, &o), None),
    );
    let e = events(&mut r);
    assert!(
        matches!(
            &e[..],
            [Event::SessionEnded {
                cause: EndCause::Nak,
                ..
            }]
        ),
        "{e:?}"
    );
}

#[test]
fn the_gateway_ends_a_binding_with_a_release_to_the_server_and_no_binding_to_the_client() {
    let mut r = relay();
    bind(&mut r);
    events(&mut r);
    assert!(r.end_session(&Subscriber::new(line(), MAC), "admin"));
    let e = events(&mut r);
    assert!(
        matches!(
            &e[..],
            [Event::SessionEnded {
                cause: EndCause::Closed(_),
                ..
            }]
        ),
        "{e:?}"
    );
    let f = forwards(&mut r);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].dst, server());
    let rp = wire::RelayPacket::new_checked(&f[0].message[..]).unwrap();
    assert_eq!(rp.msg_type(), mt::RELAY_FORW);
    assert_eq!(rp.peer_address(), client_ll());
    let inner = rp
        .options()
        .map(Result::unwrap)
        .find(|o| o.code == option::RELAY_MSG)
        .unwrap()
        .value;
    let p = wire::Packet::new_checked(inner).unwrap();
    assert_eq!(p.msg_type(), mt::RELEASE);
    let opts: Vec<_> = p.options().map(Result::unwrap).collect();
    assert_eq!(opts[0].value, DUID);
    assert_eq!(opts[1].value, SERVER_DUID);
    let na = Ia::parse(opts[2].value).unwrap();
    assert_eq!(na.addresses().next().map(|a| a.address), Some(addr()));
    let pd = Ia::parse(opts[3].value).unwrap();
    assert_eq!(pd.prefixes().next().map(|p| p.prefix), Some(prefix()));

    // The client's RENEW is answered by the relay: NoBinding, in the server's name.
    r.handle_client(at(20), &rx(&client_msg(mt::RENEW, 0x40, &[])));
    assert!(forwards(&mut r).is_empty(), "not relayed");
    let t = r.poll_transmit().unwrap();
    let p = wire::Packet::new_checked(&t.message[..]).unwrap();
    assert_eq!((p.msg_type(), p.transaction_id()), (mt::REPLY, 0x40));
    let opts: Vec<_> = p.options().map(Result::unwrap).collect();
    assert_eq!(opts[1].value, SERVER_DUID);
    assert_eq!(
        Ia::parse(opts[2].value).unwrap().status(),
        Some(status::NO_BINDING)
    );
    assert_eq!(
        Ia::parse(opts[3].value).unwrap().status(),
        Some(status::NO_BINDING)
    );
    // A SOLICIT starts over: relayed again.
    r.handle_client(at(21), &rx(&client_msg(mt::SOLICIT, 0x41, &[])));
    assert_eq!(forwards(&mut r).len(), 1);
}

/// The RELAY-FORW of the gateway's RELEASE for the binding of `bind` (login 1: xid 1),
/// written out byte by byte, the client at `peer`.
fn gateway_release(peer: Ipv6Addr) -> Vec<u8> {
    let mut release = vec![mt::RELEASE, 0, 0, 1];
    release.extend_from_slice(&[0, 1, 0, 10]);
    release.extend_from_slice(&DUID);
    release.extend_from_slice(&[0, 2, 0, 10]);
    release.extend_from_slice(&SERVER_DUID);
    // IA_NA: IAID 1, T1 0, T2 0, IAADDR with zero lifetimes.
    release.extend_from_slice(&[0, 3, 0, 40, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
    release.extend_from_slice(&[0, 5, 0, 24]);
    release.extend_from_slice(&addr().octets());
    release.extend_from_slice(&[0; 8]);
    // IA_PD: IAID 2, T1 0, T2 0, IAPREFIX with zero lifetimes, /56.
    release.extend_from_slice(&[0, 25, 0, 41, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0]);
    release.extend_from_slice(&[0, 26, 0, 25, 0, 0, 0, 0, 0, 0, 0, 0, 56]);
    release.extend_from_slice(&prefix().addr().octets());
    assert_eq!(release.len(), 121);
    let mut want = vec![mt::RELAY_FORW, 0];
    want.extend_from_slice(&link().octets());
    want.extend_from_slice(&peer.octets());
    want.extend_from_slice(&[0, 18, 0, 15]);
    want.extend_from_slice(b"access0.100.200");
    want.extend_from_slice(&[0, 37, 0, 21, 0, 0, 0, 0]);
    want.extend_from_slice(b"02:00:00:00:00:01");
    want.extend_from_slice(&[0, 79, 0, 8, 0, 1, 2, 0, 0, 0, 0, 1]);
    want.extend_from_slice(&[0, 9, 0, 121]);
    want.extend_from_slice(&release);
    want
}

#[test]
fn after_a_restart_the_gateways_release_names_the_server_byte_for_byte() {
    // The client's link-local address is a stable-privacy one, not the MAC's EUI-64:
    // the Peer-Address must come from the record, not be guessed from the MAC.
    let peer: Ipv6Addr = "fe80::1c2d:3e4f:5a6b:7c8d".parse().unwrap();
    let mut r = relay();
    let sub = Subscriber::new(line(), MAC);
    let e = bind_at(&mut r, peer);
    let [Event::SessionStarted(lease)] = &e[..] else {
        panic!("{e:?}");
    };
    // What the gateway keeps: the lease and its server end, as bytes.
    let from = r.binding_server(&sub, lease.id).cloned().unwrap();
    assert_eq!(
        from,
        BindingServer {
            server_id: SERVER_DUID.to_vec(),
            server: server(),
            peer,
        }
    );
    assert!(
        r.binding_server(&sub, LoginId(lease.id.0 + 1)).is_none(),
        "another login's"
    );
    let unix = 1_796_000_000;
    let kept = (lease.encode(at(1), unix), from.encode());
    let mut want = vec![0x67, 1, 0, 10];
    want.extend_from_slice(&SERVER_DUID);
    want.extend_from_slice(&server().octets());
    want.extend_from_slice(&peer.octets());
    assert_eq!(kept.1, want, "the server end's record");
    for n in 0..kept.1.len() {
        assert!(BindingServer::decode(&kept.1[..n]).is_err(), "cut at {n}");
    }
    let mut longer = kept.1.clone();
    longer.push(0);
    assert!(BindingServer::decode(&longer).is_err(), "a byte left over");

    // The restart: a new relay, 100 s later on a clock of its own, takes both back.
    let before = {
        let mut x = relay();
        bind_at(&mut x, peer);
        x.end_session(&sub, "admin");
        forwards(&mut x)
    };
    let t = Instant(7_000_000_000);
    let mut r2 = relay();
    let lease2 = Lease::decode(&kept.0, t, unix + 100).unwrap();
    assert_eq!(lease2.expires, t + Duration::from_secs(500));
    let from2 = BindingServer::decode(&kept.1).unwrap();
    assert_eq!(r2.restore_bound(t, lease2, Some(from2)), Ok(true));
    assert_eq!(r2.lease(&sub).map(|l| l.grant.address), Some(Some(addr())));
    assert!(r2.end_session(&sub, "admin"));
    let f = forwards(&mut r2);
    assert_eq!(f.len(), 1, "to the server that gave the binding only");
    assert_eq!(f[0].dst, server());
    assert_eq!(f[0].message, gateway_release(peer), "byte for byte");
    assert_eq!(f, before, "the RELEASE the gateway sends without a restart");
    let e = events(&mut r2);
    assert!(
        matches!(
            &e[..],
            [Event::SessionEnded {
                cause: EndCause::Closed(_),
                ..
            }]
        ),
        "{e:?}"
    );
    // The client's RENEW is answered in the server's name after the restart too.
    let renew = client_msg(mt::RENEW, 0x40, &[]);
    r2.handle_client(
        t + Duration::from_secs(1),
        &Received {
            src_ip: peer,
            ..rx(&renew)
        },
    );
    let reply = r2.poll_transmit().unwrap();
    let p = wire::Packet::new_checked(&reply.message[..]).unwrap();
    let opts: Vec<_> = p.options().map(Result::unwrap).collect();
    assert_eq!(
        (opts[1].code, opts[1].value),
        (option::SERVER_ID, &SERVER_DUID[..])
    );

    // A record kept before the server end was: the RELEASE has no Server Identifier and
    // goes to every server, the Peer-Address the MAC's EUI-64 link-local address.
    let mut c = RelayConfig::new(
        GW_MAC,
        link(),
        vec![server(), "2001:db8:ff::21".parse().unwrap()],
    );
    c.port_names = vec!["access0".into()];
    let mut r3 = Relay::new(c, t);
    let lease3 = Lease::decode(&kept.0, t, unix + 100).unwrap();
    assert_eq!(r3.restore(t, lease3), Ok(true));
    assert!(r3.end_session(&sub, "admin"));
    let f = forwards(&mut r3);
    assert_eq!(f.len(), 2);
    let rp = wire::RelayPacket::new_checked(&f[0].message[..]).unwrap();
    assert_eq!(rp.peer_address(), ipv6::link_local(MAC));
    let inner = rp
        .options()
        .map(Result::unwrap)
        .find(|o| o.code == option::RELAY_MSG)
        .unwrap()
        .value;
    let p = wire::Packet::new_checked(inner).unwrap();
    assert!(
        p.options()
            .map(Result::unwrap)
            .all(|o| o.code != option::SERVER_ID)
    );
}

/// `bind` with the client at `peer`: the events.
fn bind_at(r: &mut Relay, peer: Ipv6Addr) -> Vec<Event> {
    let solicit = client_msg(mt::SOLICIT, 0x10, &[]);
    r.handle_client(
        at(0),
        &Received {
            src_ip: peer,
            ..rx(&solicit)
        },
    );
    r.handle_server(
        at(0),
        server(),
        &relay_repl_to(peer, &server_msg(mt::ADVERTISE, 0x10, 600), None),
    );
    let request = client_msg(
        mt::REQUEST,
        0x11,
        &wire::option_bytes(option::SERVER_ID, &SERVER_DUID),
    );
    r.handle_client(
        at(1),
        &Received {
            src_ip: peer,
            ..rx(&request)
        },
    );
    r.handle_server(
        at(1),
        server(),
        &relay_repl_to(peer, &server_msg(mt::REPLY, 0x11, 600), None),
    );
    assert_eq!(forwards(r).len(), 2);
    while r.poll_transmit().is_some() {}
    events(r)
}

#[test]
fn malformed_or_unexpected_relay_replies_are_named_drops() {
    let mut r = relay();
    r.handle_client(at(0), &rx(&client_msg(mt::SOLICIT, 0x10, &[])));
    forwards(&mut r);
    let adv = server_msg(mt::ADVERTISE, 0x10, 600);
    let good = relay_repl(&adv, Some(b"access0.100.200"));
    // From an address that is not a server.
    r.handle_server(at(0), "2001:db8:ff::66".parse().unwrap(), &good);
    assert_eq!(r.drop_count(DropReason::UnknownServer), 1);
    // Shorter than the relay header.
    r.handle_server(at(0), server(), &good[..33]);
    assert_eq!(r.drop_count(DropReason::Truncated), 1);
    // Not a RELAY-REPL.
    r.handle_server(at(0), server(), &adv);
    assert_eq!(r.drop_count(DropReason::UnexpectedType), 1);
    // An option that runs past the end.
    let mut bad = good.clone();
    bad[34 + 3] = 0xff;
    r.handle_server(at(0), server(), &bad);
    assert_eq!(r.drop_count(DropReason::BadOption), 1);
    // No Relay Message; a hop count we did not send.
    r.handle_server(
        at(0),
        server(),
        &wire::relay_message(mt::RELAY_REPL, 0, link(), client_ll(), &[]),
    );
    let mut hop = good.clone();
    hop[1] = 1;
    r.handle_server(at(0), server(), &hop);
    assert_eq!(r.drop_count(DropReason::BadRelay), 2);
    // Another line's Interface-Id.
    r.handle_server(at(0), server(), &relay_repl(&adv, Some(b"access0.100.201")));
    assert_eq!(r.drop_count(DropReason::InterfaceIdMismatch), 1);
    // A transaction never relayed.
    r.handle_server(
        at(0),
        server(),
        &relay_repl(&server_msg(mt::ADVERTISE, 0x99, 600), None),
    );
    assert_eq!(r.drop_count(DropReason::UnknownTransaction), 1);
    // Every truncation of a good one: a drop, never a panic, nothing delivered.
    for n in 0..good.len() {
        r.handle_server(at(0), server(), &good[..n]);
    }
    assert!(r.poll_transmit().is_none());
    assert!(events(&mut r).is_empty());
    // The good one still goes through; then the transaction times out.
    r.handle_server(at(0), server(), &good);
    assert!(r.poll_transmit().is_some());
    r.handle_timeout(at(31));
    assert_eq!(r.open_transactions(), 0);
    r.handle_server(at(31), server(), &good);
    assert_eq!(r.drop_count(DropReason::UnknownTransaction), 2);
}

#[test]
fn relayed_messages_from_the_access_side_and_solicit_floods_are_refused() {
    let mut r = relay();
    let inner = client_msg(mt::SOLICIT, 1, &[]);
    let forw = wire::relay_message(
        mt::RELAY_FORW,
        0,
        Ipv6Addr::UNSPECIFIED,
        client_ll(),
        &wire::option_bytes(option::RELAY_MSG, &inner),
    );
    r.handle_client(at(0), &rx(&forw));
    assert_eq!(r.drop_count(DropReason::BadRelay), 1);
    r.handle_client(at(0), &rx(&wire::message(mt::SOLICIT, 2, &[])));
    assert_eq!(r.drop_count(DropReason::NoClientId), 1);
    // Burst 5 per MAC, then refused.
    for x in 0..8 {
        r.handle_client(at(0), &rx(&client_msg(mt::SOLICIT, 100 + x, &[])));
    }
    assert_eq!(forwards(&mut r).len(), 5);
    assert_eq!(
        r.refusals()
            .find(|(k, _)| *k == Refusal::SolicitRateMac)
            .map(|x| x.1),
        Some(3)
    );
}
