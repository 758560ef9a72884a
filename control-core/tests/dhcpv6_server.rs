//! The DHCPv6 server engine with a fake clock: SOLICIT/ADVERTISE/REQUEST/REPLY, Rapid
//! Commit, RENEW/REBIND, RELEASE/DECLINE, CONFIRM, INFORMATION-REQUEST, IA_NA and IA_PD,
//! a lightweight relay agent's RELAY-FORW (RFC 6221, RFC 6939), the end of a binding by
//! the gateway, restart, and drops by name. Replies are checked byte by byte.

#[path = "fixtures/ipoe.rs"]
mod fixtures;

use core::net::Ipv6Addr;
use core::time::Duration;

use tollgate_control_core::Instant;
use tollgate_control_core::dhcp::{Cancel, DecisionError, EndCause, LoginId};
use tollgate_control_core::dhcpv6::wire::{self, Ia, message_type as mt, option, status};
use tollgate_control_core::dhcpv6::{
    DropReason, Event, Grant, Lease, Received, Refusal, Server, ServerConfig, Transmit,
};
use tollgate_control_core::inet::ipv6::{self, Prefix};
use tollgate_control_core::ipoe::Subscriber;
use tollgate_control_core::pppoe::Line;

const GW_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0xfe];
const MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
const T0: Instant = Instant(1_000_000_000);

fn at(secs: u64) -> Instant {
    T0 + Duration::from_secs(secs)
}

fn line() -> Line {
    Line {
        port: 0,
        svlan: Some(300),
        cvlan: None,
    }
}

fn sub() -> Subscriber {
    Subscriber::new(line(), MAC)
}

fn client_ll() -> Ipv6Addr {
    "fe80::ff:fe00:1".parse().unwrap()
}

fn addr() -> Ipv6Addr {
    "2001:db8:1::10".parse().unwrap()
}

fn prefix() -> Prefix {
    "2001:db8:100::/56".parse().unwrap()
}

fn dns() -> Ipv6Addr {
    "2001:db8::53".parse().unwrap()
}

fn grant() -> Grant {
    Grant {
        dns: vec![dns()],
        ..Grant::new(Some(addr()), Some(prefix()))
    }
}

fn server(rapid: bool) -> Server {
    Server::new(
        ServerConfig {
            rapid_commit: rapid,
            dns: vec!["2001:db8::54".parse().unwrap()],
            ..ServerConfig::new(GW_MAC)
        },
        T0,
    )
}

fn duid() -> Vec<u8> {
    wire::duid_ll(MAC)
}

/// A client message with Client ID, `ia_na`/`ia_pd` IAIDs (empty IAs), the DNS ORO, and
/// `extra` options.
fn msg(
    kind: u8,
    trid: u32,
    server_id: Option<&[u8]>,
    na: Option<u32>,
    pd: Option<u32>,
    extra: &[u8],
) -> Vec<u8> {
    let mut o = Vec::new();
    wire::put_option(&mut o, option::CLIENT_ID, &duid());
    if let Some(s) = server_id {
        wire::put_option(&mut o, option::SERVER_ID, s);
    }
    if let Some(i) = na {
        wire::put_option(&mut o, option::IA_NA, &wire::ia(i, 0, 0, &[]));
    }
    if let Some(i) = pd {
        wire::put_option(&mut o, option::IA_PD, &wire::ia(i, 0, 0, &[]));
    }
    wire::put_option(&mut o, option::ORO, &[0, 23]);
    o.extend_from_slice(extra);
    wire::message(kind, trid, &o)
}

fn input(s: &mut Server, now: Instant, m: &[u8]) {
    s.handle_input(
        now,
        &Received {
            line: line(),
            src_mac: MAC,
            src_ip: client_ll(),
            dst_ip: ipv6::ALL_DHCP_AGENTS,
            message: m,
        },
    );
}

fn transmits(s: &mut Server) -> Vec<Transmit> {
    std::iter::from_fn(|| s.poll_transmit()).collect()
}

fn events(s: &mut Server) -> Vec<Event> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

fn options(m: &[u8]) -> Vec<(u16, Vec<u8>)> {
    wire::options(&m[4..])
        .map(|o| o.unwrap())
        .map(|o| (o.code, o.value.to_vec()))
        .collect()
}

fn find(m: &[u8], code: u16) -> Option<Vec<u8>> {
    options(m)
        .into_iter()
        .find(|(c, _)| *c == code)
        .map(|(_, v)| v)
}

/// An IA of a reply, owned.
#[derive(Debug)]
struct IaView {
    iaid: u32,
    status: Option<u16>,
    addrs: Vec<wire::IaAddr>,
}

fn ia_of(m: &[u8], code: u16) -> IaView {
    let v = find(m, code).unwrap();
    let ia = Ia::parse(&v).unwrap();
    IaView {
        iaid: ia.iaid,
        status: ia.status(),
        addrs: ia.addresses().collect(),
    }
}

fn login(e: &[Event]) -> LoginId {
    match e {
        [Event::Login(l)] => l.id,
        other => panic!("expected a login, got {other:?}"),
    }
}

/// SOLICIT (no rapid commit), accept, REQUEST: bound at `now`.
fn bind(s: &mut Server, now: Instant) -> Lease {
    input(s, now, &msg(mt::SOLICIT, 1, None, Some(5), Some(6), &[]));
    let id = login(&events(s));
    s.accept(now, id, grant()).unwrap();
    transmits(s);
    let sid = s.duid().to_vec();
    input(
        s,
        now,
        &msg(mt::REQUEST, 2, Some(&sid), Some(5), Some(6), &[]),
    );
    transmits(s);
    match &events(s)[..] {
        [Event::SessionStarted(l)] => l.clone(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_rapid_commit_solicit_gets_address_prefix_and_dns_byte_by_byte() {
    let mut s = server(true);
    s.handle_packet(T0, line(), MAC, &fixtures::DHCPV6_SOLICIT);
    let e = events(&mut s);
    let [Event::Login(l)] = &e[..] else {
        panic!("{e:?}")
    };
    assert_eq!(l.subscriber, sub());
    assert_eq!(l.user, b"02:00:00:00:00:01");
    assert_eq!(l.duid, duid());
    assert!(l.wants_address && l.wants_prefix);
    assert_eq!((l.interface_id.as_ref(), l.prefix_len_hint), (None, None));
    assert!(transmits(&mut s).is_empty());
    s.accept(T0, l.id, grant()).unwrap();
    let t = transmits(&mut s);
    assert_eq!(t.len(), 1);
    let f = t[0].frame(GW_MAC, 0x8100);
    let p = etherparse::SlicedPacket::from_ethernet(&f).unwrap();
    let Some(etherparse::LinkSlice::Ethernet2(eth)) = &p.link else {
        panic!()
    };
    assert_eq!((eth.destination(), eth.source()), (MAC, GW_MAC));
    assert_eq!(
        p.vlan_ids().iter().map(|v| v.value()).collect::<Vec<_>>(),
        [300]
    );
    let Some(etherparse::NetSlice::Ipv6(ip)) = &p.net else {
        panic!()
    };
    let h = ip.header().to_header();
    assert_eq!(
        h.source,
        "fe80::ff:fe00:fe".parse::<Ipv6Addr>().unwrap().octets()
    );
    assert_eq!(h.destination, client_ll().octets());
    assert_eq!(h.hop_limit, 255);
    let Some(etherparse::TransportSlice::Udp(u)) = &p.transport else {
        panic!()
    };
    assert_eq!((u.source_port(), u.destination_port()), (547, 546));
    assert_eq!(
        u.checksum(),
        u.to_header().calc_checksum_ipv6(&h, u.payload()).unwrap()
    );
    let m = u.payload();
    assert_eq!(&m[..4], &[mt::REPLY, 0x0a, 0x0b, 0x0c]);
    let o = options(m);
    let codes: Vec<u16> = o.iter().map(|(c, _)| *c).collect();
    assert_eq!(
        codes,
        [
            option::CLIENT_ID,
            option::SERVER_ID,
            option::RAPID_COMMIT,
            option::IA_NA,
            option::IA_PD,
            option::DNS_SERVERS
        ]
    );
    assert_eq!(o[0].1, duid());
    assert_eq!(
        o[1].1,
        [0, 3, 0, 1, 2, 0, 0, 0, 0, 0xfe],
        "DUID-LL of the gateway MAC"
    );
    let mut want_na = vec![0x0c, 0x0d, 0x0e, 0x0f, 0, 0, 0x07, 0x08, 0, 0, 0x0b, 0x40];
    want_na.extend_from_slice(&[0, 5, 0, 24]);
    want_na.extend_from_slice(&addr().octets());
    want_na.extend_from_slice(&[0, 0, 0x0e, 0x10, 0, 0, 0x1c, 0x20]);
    assert_eq!(o[3].1, want_na, "IA_NA: T1 1800, T2 2880, IAADDR 3600/7200");
    let pd = Ia::parse(&o[4].1).unwrap();
    assert_eq!((pd.iaid, pd.t1, pd.t2), (1, 1800, 2880));
    let pfx: Vec<_> = pd.prefixes().collect();
    assert_eq!(
        (pfx[0].prefix, pfx[0].preferred, pfx[0].valid),
        (prefix(), 3600, 7200)
    );
    assert_eq!(o[5].1, dns().octets());
    let e = events(&mut s);
    let [Event::SessionStarted(lease)] = &e[..] else {
        panic!("{e:?}")
    };
    assert_eq!((lease.iaid_na, lease.iaid_pd), (Some(0x0c0d_0e0f), Some(1)));
    assert_eq!((lease.started, lease.expires), (T0, at(7200)));
    assert_eq!(s.lease(&sub()), Some(lease));
    assert_eq!(s.stats().reply, 1);
}

#[test]
fn solicit_advertise_request_reply_binds_and_a_request_elsewhere_cancels() {
    let mut s = server(false);
    input(&mut s, T0, &msg(mt::SOLICIT, 1, None, Some(5), None, &[]));
    let id = login(&events(&mut s));
    s.accept(T0, id, Grant::new(Some(addr()), None)).unwrap();
    let t = transmits(&mut s);
    assert_eq!(t[0].message[0], mt::ADVERTISE);
    assert_eq!(find(&t[0].message, option::PREFERENCE), Some(vec![255]));
    assert!(find(&t[0].message, option::RAPID_COMMIT).is_none());
    assert!(events(&mut s).is_empty());
    assert_eq!(s.poll_timeout(), Some(at(60)));
    // The client asked for a prefix in the REQUEST that the grant does not have.
    let sid = s.duid().to_vec();
    input(
        &mut s,
        at(1),
        &msg(mt::REQUEST, 2, Some(&sid), Some(5), Some(9), &[]),
    );
    let t = transmits(&mut s);
    assert_eq!(t[0].message[0], mt::REPLY);
    let pd = ia_of(&t[0].message, option::IA_PD);
    assert_eq!((pd.iaid, pd.status), (9, Some(status::NO_PREFIX_AVAIL)));
    let e = events(&mut s);
    assert!(
        matches!(&e[..], [Event::SessionStarted(l)] if l.iaid_na == Some(5) && l.iaid_pd.is_none()),
        "{e:?}"
    );

    // Another subscriber chooses another server after our ADVERTISE.
    let other = [2, 0, 0, 0, 0, 2];
    let rx = |m: &[u8]| {
        let m = m.to_vec();
        move |s: &mut Server| {
            s.handle_input(
                at(2),
                &Received {
                    line: line(),
                    src_mac: other,
                    src_ip: "fe80::2".parse().unwrap(),
                    dst_ip: ipv6::ALL_DHCP_AGENTS,
                    message: &m,
                },
            )
        }
    };
    rx(&msg(mt::SOLICIT, 3, None, Some(5), None, &[]))(&mut s);
    let id = login(&events(&mut s));
    s.accept(
        at(2),
        id,
        Grant::new(Some("2001:db8:1::11".parse().unwrap()), None),
    )
    .unwrap();
    transmits(&mut s);
    rx(&msg(
        mt::REQUEST,
        4,
        Some(&wire::duid_ll([2, 9, 9, 9, 9, 9])),
        Some(5),
        None,
        &[],
    ))(&mut s);
    let e = events(&mut s);
    assert!(
        matches!(
            &e[..],
            [Event::LoginCancelled {
                why: Cancel::OtherServer,
                grant: Some(_),
                ..
            }]
        ),
        "{e:?}"
    );
    assert_eq!(s.drop_count(DropReason::OtherServer), 1);
}

#[test]
fn renew_and_rebind_extend_and_the_valid_lifetime_ends_the_binding() {
    let mut s = server(false);
    bind(&mut s, T0);
    let sid = s.duid().to_vec();
    input(
        &mut s,
        at(1800),
        &msg(mt::RENEW, 7, Some(&sid), Some(5), Some(6), &[]),
    );
    let t = transmits(&mut s);
    assert_eq!(t[0].message[..4], [mt::REPLY, 0, 0, 7]);
    let na = ia_of(&t[0].message, option::IA_NA);
    assert_eq!(
        na.addrs.first().map(|a| (a.address, a.valid)),
        Some((addr(), 7200))
    );
    assert!(matches!(&events(&mut s)[..], [Event::LeaseRenewed(l)] if l.expires == at(9000)));
    input(
        &mut s,
        at(2880),
        &msg(mt::REBIND, 8, None, Some(5), Some(6), &[]),
    );
    assert!(matches!(&events(&mut s)[..], [Event::LeaseRenewed(l)] if l.expires == at(10080)));
    transmits(&mut s);
    s.handle_timeout(at(10079));
    assert!(events(&mut s).is_empty());
    s.handle_timeout(at(10080));
    let e = events(&mut s);
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
    // An unknown client's RENEW: NoBinding; its REBIND: zero lifetimes.
    let mut with_addr = Vec::new();
    wire::ia_addr_option(&mut with_addr, addr(), 100, 200);
    let mut ia_opt = Vec::new();
    wire::put_option(&mut ia_opt, option::IA_NA, &wire::ia(5, 0, 0, &with_addr));
    input(
        &mut s,
        at(10081),
        &msg(mt::RENEW, 9, Some(&sid), None, None, &ia_opt),
    );
    let na = ia_of(&transmits(&mut s)[0].message, option::IA_NA);
    assert_eq!(na.status, Some(status::NO_BINDING));
    input(
        &mut s,
        at(10082),
        &msg(mt::REBIND, 10, None, None, None, &ia_opt),
    );
    let na = ia_of(&transmits(&mut s)[0].message, option::IA_NA);
    assert_eq!(
        na.addrs.first().map(|a| (a.address, a.preferred, a.valid)),
        Some((addr(), 0, 0))
    );
    assert_eq!(
        (s.stats().renew, s.stats().rebind, s.stats().expired),
        (2, 2, 1)
    );
}

#[test]
fn release_decline_and_the_gateway_end_bindings() {
    let mut s = server(false);
    let sid = s.duid().to_vec();
    bind(&mut s, T0);
    input(
        &mut s,
        at(5),
        &msg(mt::RELEASE, 11, Some(&sid), Some(5), Some(6), &[]),
    );
    let t = transmits(&mut s);
    assert_eq!(
        find(&t[0].message, option::STATUS_CODE).unwrap()[..2],
        [0, 0]
    );
    assert!(matches!(
        &events(&mut s)[..],
        [Event::SessionEnded {
            cause: EndCause::Release,
            ..
        }]
    ));
    bind(&mut s, at(10));
    input(
        &mut s,
        at(11),
        &msg(mt::DECLINE, 12, Some(&sid), Some(5), None, &[]),
    );
    transmits(&mut s);
    assert!(
        matches!(&events(&mut s)[..], [Event::SessionEnded { cause: EndCause::Decline, lease }] if lease.grant.address == Some(addr()))
    );
    bind(&mut s, at(20));
    assert!(s.end_session(&sub(), "coa"));
    assert!(
        matches!(&events(&mut s)[..], [Event::SessionEnded { cause: EndCause::Closed(r), .. }] if r == "coa")
    );
    let mut with_addr = Vec::new();
    wire::ia_addr_option(&mut with_addr, addr(), 3600, 7200);
    let mut ia_opt = Vec::new();
    wire::put_option(&mut ia_opt, option::IA_NA, &wire::ia(5, 0, 0, &with_addr));
    input(
        &mut s,
        at(1800),
        &msg(mt::RENEW, 13, Some(&sid), None, None, &ia_opt),
    );
    let na = ia_of(&transmits(&mut s)[0].message, option::IA_NA);
    assert_eq!(
        na.addrs.first().map(|a| (a.preferred, a.valid)),
        Some((0, 0)),
        "the client stops using it"
    );
    assert!(events(&mut s).is_empty());
    assert!(!s.end_session(&sub(), "again"));
    assert_eq!((s.stats().release, s.stats().decline), (1, 1));
}

#[test]
fn a_rejected_login_is_advertised_no_addresses_and_held() {
    let mut s = server(true);
    let solicit = msg(mt::SOLICIT, 1, None, Some(5), None, &[]);
    input(&mut s, T0, &solicit);
    let id = login(&events(&mut s));
    s.reject(T0, id).unwrap();
    assert_eq!(s.accept(T0, id, grant()), Err(DecisionError::NotPending));
    let t = transmits(&mut s);
    assert_eq!(t[0].message[0], mt::ADVERTISE);
    assert_eq!(
        find(&t[0].message, option::STATUS_CODE).unwrap()[..2],
        [0, status::NO_ADDRS_AVAIL as u8]
    );
    input(&mut s, at(5), &solicit);
    assert!(events(&mut s).is_empty());
    assert_eq!(transmits(&mut s).len(), 1);
    assert_eq!(s.refusal_count(Refusal::RecentlyRejected), 1);
    assert_eq!(s.refusal_count(Refusal::Rejected), 1);
    s.handle_timeout(at(10));
    input(&mut s, at(10), &solicit);
    login(&events(&mut s));
    // Not decided in time.
    s.handle_timeout(at(20));
    assert!(matches!(
        &events(&mut s)[..],
        [Event::LoginCancelled {
            why: Cancel::DecisionTimeout,
            grant: None,
            ..
        }]
    ));
    assert_eq!(s.pending(), 0);
}

#[test]
fn information_request_and_confirm() {
    let mut s = server(false);
    input(
        &mut s,
        T0,
        &msg(mt::INFORMATION_REQUEST, 21, None, None, None, &[]),
    );
    let t = transmits(&mut s);
    assert_eq!(
        find(&t[0].message, option::DNS_SERVERS),
        Some(
            "2001:db8::54"
                .parse::<Ipv6Addr>()
                .unwrap()
                .octets()
                .to_vec()
        )
    );
    assert_eq!(
        find(&t[0].message, option::INFORMATION_REFRESH_TIME),
        Some(86_400u32.to_be_bytes().to_vec())
    );
    assert_eq!(s.stats().information_request, 1);
    input(
        &mut s,
        T0,
        &msg(mt::INFORMATION_REQUEST, 22, None, Some(1), None, &[]),
    );
    assert_eq!(s.drop_count(DropReason::IaInInformationRequest), 1);
    // CONFIRM: silence without a binding, Success / NotOnLink with one.
    let confirm = |a: Ipv6Addr| {
        let mut inner = Vec::new();
        wire::ia_addr_option(&mut inner, a, 0, 0);
        let mut o = Vec::new();
        wire::put_option(&mut o, option::IA_NA, &wire::ia(5, 0, 0, &inner));
        msg(mt::CONFIRM, 23, None, None, None, &o)
    };
    input(&mut s, T0, &confirm(addr()));
    assert_eq!(s.drop_count(DropReason::UnknownClient), 1);
    bind(&mut s, T0);
    input(&mut s, at(1), &confirm(addr()));
    input(&mut s, at(1), &confirm("2001:db8:9::1".parse().unwrap()));
    let t = transmits(&mut s);
    let code = |m: &[u8]| {
        u16::from_be_bytes(
            find(m, option::STATUS_CODE).unwrap()[..2]
                .try_into()
                .unwrap(),
        )
    };
    assert_eq!(
        (code(&t[0].message), code(&t[1].message)),
        (status::SUCCESS, status::NOT_ON_LINK)
    );
    // A bound client gets its own DNS servers.
    input(
        &mut s,
        at(2),
        &msg(mt::INFORMATION_REQUEST, 24, None, None, None, &[]),
    );
    assert_eq!(
        find(&transmits(&mut s)[0].message, option::DNS_SERVERS),
        Some(dns().octets().to_vec())
    );
}

#[test]
fn a_lightweight_relay_agents_relay_forw_is_keyed_by_the_client_link_layer_option() {
    let mut s = server(true);
    let inner = msg(
        mt::SOLICIT,
        31,
        None,
        Some(5),
        None,
        &wire::option_bytes(option::RAPID_COMMIT, &[]),
    );
    let mut ro = Vec::new();
    wire::put_option(&mut ro, option::INTERFACE_ID, b"an1 eth 1/1/1:300");
    wire::put_option(&mut ro, option::REMOTE_ID, b"\x00\x00\x0d\xe9cust42");
    wire::put_option(
        &mut ro,
        option::CLIENT_LINKLAYER_ADDR,
        &[0, 1, 2, 0, 0, 0, 0, 0x42],
    );
    wire::put_option(&mut ro, option::RELAY_MSG, &inner);
    let relayed = wire::relay_message(mt::RELAY_FORW, 0, Ipv6Addr::UNSPECIFIED, client_ll(), &ro);
    let agent_mac = [2, 0, 0, 0, 0xaa, 0xaa];
    let agent_ll: Ipv6Addr = "fe80::aa".parse().unwrap();
    let packet = tollgate_control_core::inet::udp::ipv6_datagram(
        agent_ll,
        ipv6::ALL_DHCP_AGENTS,
        547,
        547,
        8,
        &relayed,
    );
    s.handle_packet(T0, line(), agent_mac, &packet);
    let e = events(&mut s);
    let [Event::Login(l)] = &e[..] else {
        panic!("{e:?}")
    };
    assert_eq!(
        l.subscriber,
        Subscriber::new(line(), [2, 0, 0, 0, 0, 0x42]),
        "keyed by RFC 6939's MAC, not the agent's"
    );
    assert_eq!(l.interface_id.as_deref(), Some(&b"an1 eth 1/1/1:300"[..]));
    assert_eq!(
        l.remote_id.as_deref(),
        Some(&b"cust42"[..]),
        "RFC 4649: after the enterprise number"
    );
    s.accept(T0, l.id, grant()).unwrap();
    let t = transmits(&mut s);
    assert_eq!(
        (t[0].dst, t[0].dst_port, t[0].dst_mac),
        (agent_ll, 547, agent_mac)
    );
    let rp = wire::RelayPacket::new_checked(&t[0].message[..]).unwrap();
    assert_eq!(
        (rp.msg_type(), rp.peer_address()),
        (mt::RELAY_REPL, client_ll())
    );
    let ro: Vec<_> = rp.options().map(Result::unwrap).collect();
    assert_eq!(
        (ro[0].code, ro[0].value),
        (option::INTERFACE_ID, &b"an1 eth 1/1/1:300"[..])
    );
    assert_eq!(ro[1].code, option::RELAY_MSG);
    assert_eq!(ro[1].value[..4], [mt::REPLY, 0, 0, 31]);
    assert_eq!(s.stats().relayed, 1);
    // A relay message inside a relay message, and one without a Relay Message.
    let mut nested = Vec::new();
    wire::put_option(&mut nested, option::RELAY_MSG, &relayed);
    let twice = wire::relay_message(mt::RELAY_FORW, 1, Ipv6Addr::UNSPECIFIED, agent_ll, &nested);
    let empty = wire::relay_message(mt::RELAY_FORW, 0, Ipv6Addr::UNSPECIFIED, client_ll(), &[]);
    for m in [&twice, &empty] {
        s.handle_input(
            T0,
            &Received {
                line: line(),
                src_mac: agent_mac,
                src_ip: agent_ll,
                dst_ip: ipv6::ALL_DHCP_AGENTS,
                message: m,
            },
        );
    }
    assert_eq!(s.drop_count(DropReason::BadRelay), 2);
}

#[test]
fn malformed_messages_are_counted_by_name() {
    let mut s = server(true);
    let sid = s.duid().to_vec();
    let mut no_client = Vec::new();
    wire::put_option(&mut no_client, option::IA_NA, &wire::ia(1, 0, 0, &[]));
    let cases: Vec<(Vec<u8>, DropReason)> = vec![
        (vec![1, 0, 0], DropReason::Truncated),
        (
            wire::message(mt::SOLICIT, 1, &[0, 1, 0, 40, 0]),
            DropReason::BadOption,
        ),
        (
            wire::message(mt::SOLICIT, 1, &wire::option_bytes(option::IA_NA, &[0; 5])),
            DropReason::BadOption,
        ),
        (
            wire::message(mt::SOLICIT, 1, &no_client),
            DropReason::NoClientId,
        ),
        (
            msg(mt::SOLICIT, 1, Some(&sid), Some(1), None, &[]),
            DropReason::ServerIdRule,
        ),
        (
            msg(mt::REQUEST, 1, None, Some(1), None, &[]),
            DropReason::ServerIdRule,
        ),
        (
            msg(
                mt::RENEW,
                1,
                Some(&[0, 3, 0, 1, 9, 9, 9, 9, 9, 9]),
                Some(1),
                None,
                &[],
            ),
            DropReason::OtherServer,
        ),
        (
            msg(mt::ADVERTISE, 1, None, None, None, &[]),
            DropReason::UnexpectedType,
        ),
        (
            msg(mt::RELAY_REPL, 1, None, None, None, &[]),
            DropReason::UnexpectedType,
        ),
    ];
    for (m, _) in &cases {
        input(&mut s, T0, m);
    }
    // A multicast source MAC.
    s.handle_input(
        T0,
        &Received {
            line: line(),
            src_mac: [0x33, 0x33, 0, 1, 0, 2],
            src_ip: client_ll(),
            dst_ip: ipv6::ALL_DHCP_AGENTS,
            message: &msg(mt::SOLICIT, 1, None, Some(1), None, &[]),
        },
    );
    // Packet level.
    let mut bad_sum = fixtures::DHCPV6_SOLICIT;
    bad_sum[47] ^= 1;
    let mut other_port = fixtures::DHCPV6_SOLICIT;
    other_port[43] = 0x24;
    s.handle_packet(T0, line(), MAC, &bad_sum);
    s.handle_packet(T0, line(), MAC, &other_port);
    s.handle_packet(T0, line(), MAC, &fixtures::DHCPV6_SOLICIT[..30]);
    s.handle_packet(T0, line(), MAC, &fixtures::ND_RS);
    let mut want = [0u64; DropReason::COUNT];
    for (_, r) in &cases {
        want[*r as usize] += 1;
    }
    want[DropReason::NoClientMac as usize] += 1;
    want[DropReason::BadChecksum as usize] += 1;
    want[DropReason::NotDhcp as usize] += 2;
    want[DropReason::BadIp as usize] += 1;
    for r in DropReason::ALL {
        assert_eq!(s.drop_count(r), want[r as usize], "{}", r.name());
    }
    assert!(events(&mut s).is_empty());
    assert!(transmits(&mut s).is_empty());
}

#[test]
fn bindings_survive_a_restart() {
    let mut s = server(false);
    let lease = bind(&mut s, T0);
    let saved = lease.encode(at(100), 1_800_000_100);
    let now = Instant(3_000_000_000);
    let back = Lease::decode(&saved, now, 1_800_000_200).unwrap();
    assert_eq!(back.grant, lease.grant);
    assert_eq!(
        (back.iaid_na, back.iaid_pd, &back.duid),
        (lease.iaid_na, lease.iaid_pd, &lease.duid)
    );
    assert_eq!(back.expires, now + Duration::from_secs(7200 - 200));
    let mut s = server(false);
    assert_eq!(s.restore(now, back.clone()), Ok(true));
    assert!(s.restore(now, back).is_err());
    let sid = s.duid().to_vec();
    input(
        &mut s,
        now,
        &msg(mt::RENEW, 40, Some(&sid), Some(5), Some(6), &[]),
    );
    assert!(matches!(&events(&mut s)[..], [Event::LeaseRenewed(l)] if l.id == lease.id));
    assert!(Lease::decode(&saved[..saved.len() - 2], now, 0).is_err());
}
