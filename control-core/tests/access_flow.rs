//! PPPoE subscribers end to end through the discovery engine and the PPP engine, glued
//! as the shell will glue them (tests/common): discovery, LCP, CHAP against a local
//! table, IPCP, then the gateway's Terminate-Request and PADT, or the client's PADT.

mod common;

use core::net::Ipv4Addr;

use common::{Gateway, Subscriber, connect_all};
use tollgate_control_core::Instant;
use tollgate_control_core::entropy::Sequence;
use tollgate_control_core::ppp::{self, AuthMethod, EndCause, Event};
use tollgate_control_core::pppoe::Line;
use tollgate_control_core::pppoe::wire::{self as pwire, code};

const T0: Instant = Instant(7_000_000_000);

fn gateway(auth: AuthMethod) -> Gateway {
    let mut gw = Gateway::new(
        ppp::Config {
            auth: vec![auth],
            ..ppp::Config::default()
        },
        T0,
    );
    gw.users.insert(b"alice".to_vec(), b"s3cret".to_vec());
    gw
}

fn qinq(c: u16) -> Line {
    Line {
        port: 0,
        svlan: Some(100),
        cvlan: Some(c),
    }
}

fn finished(gw: &Gateway, id: u16) -> Option<EndCause> {
    gw.events.iter().find_map(|(i, e)| match e {
        Event::Finished { cause } if *i == id => Some(cause.clone()),
        _ => None,
    })
}

#[test]
fn chap_subscriber_on_qinq_comes_up_and_the_gateway_ends_it_with_padt() {
    let mut gw = gateway(AuthMethod::Chap);
    let mut rng = Sequence::new(3);
    let mut subs = [Subscriber::new(
        [2, 0, 0, 0, 0, 1],
        qinq(7),
        b"alice",
        b"s3cret",
        &mut rng,
    )];
    connect_all(&mut gw, &mut subs, T0);
    assert!(subs[0].up());
    assert_eq!(subs[0].client.address(), Some(Ipv4Addr::new(100, 64, 0, 1)));
    let id = subs[0].session_id;
    assert_eq!(id, 1);
    assert!(gw.events.iter().any(|(i, e)| *i == id
        && matches!(e, Event::Ipv4Up { peer, mtu: 1492, .. } if *peer == Ipv4Addr::new(100, 64, 0, 1))));
    assert_eq!(gw.discovery.session(id).map(|s| s.line), Some(qinq(7)));
    // A DISC condition: the shell closes the PPP session.
    gw.sessions
        .get_mut(&id)
        .unwrap()
        .close(T0, &mut gw.rng, "session timeout");
    gw.drive(T0);
    let (dst, et, tr) = gw.out.remove(0);
    assert_eq!((dst, et), ([2, 0, 0, 0, 0, 1], 0x8864));
    // 11 00 <id> <len> c0 21 05 <ident> <len> "session timeout"
    assert_eq!(&tr[..2], [0x11, 0x00]);
    assert_eq!(&tr[6..9], [0xc0, 0x21, 0x05]);
    assert_eq!(&tr[12..], b"session timeout");
    // The subscriber acks; the gateway finishes and sends PADT.
    for (et, p) in subs[0].input(et, &tr) {
        gw.input(T0, qinq(7), [2, 0, 0, 0, 0, 1], et, &p);
    }
    assert_eq!(
        finished(&gw, id),
        Some(EndCause::Closed("session timeout".into()))
    );
    let (_, et, padt) = gw.out.pop().unwrap();
    assert_eq!(et, 0x8863);
    let p = pwire::Packet::new_checked(&padt[..]).unwrap();
    assert_eq!((p.code(), p.session_id()), (code::PADT, id));
    subs[0].input(et, &padt);
    assert!(subs[0].padt_received);
    assert!(gw.discovery.is_empty() && gw.sessions.is_empty());
}

#[test]
fn wrong_secret_is_rejected_and_the_session_ends_with_padt() {
    let mut gw = gateway(AuthMethod::Chap);
    let mut rng = Sequence::new(3);
    let mut subs = [Subscriber::new(
        [2, 0, 0, 0, 0, 1],
        qinq(7),
        b"alice",
        b"guess",
        &mut rng,
    )];
    connect_all(&mut gw, &mut subs, T0);
    assert!(!subs[0].up());
    assert_eq!(finished(&gw, 1), Some(EndCause::AuthFailed));
    assert!(subs[0].padt_received);
    assert!(gw.discovery.is_empty());
}

#[test]
fn pap_subscriber_comes_up() {
    let mut gw = gateway(AuthMethod::Pap);
    let mut rng = Sequence::new(3);
    let mut subs = [Subscriber::new(
        [2, 0, 0, 0, 0, 1],
        Line::untagged(1),
        b"alice",
        b"s3cret",
        &mut rng,
    )];
    connect_all(&mut gw, &mut subs, T0);
    assert!(subs[0].up());
}

#[test]
fn client_padt_takes_the_ppp_session_down() {
    let mut gw = gateway(AuthMethod::Chap);
    let mut rng = Sequence::new(3);
    let mut subs = [Subscriber::new(
        [2, 0, 0, 0, 0, 1],
        qinq(7),
        b"alice",
        b"s3cret",
        &mut rng,
    )];
    connect_all(&mut gw, &mut subs, T0);
    let id = subs[0].session_id;
    gw.input(
        T0,
        qinq(7),
        [2, 0, 0, 0, 0, 1],
        0x8863,
        &pwire::build(code::PADT, id, &[]),
    );
    assert!(gw.sessions.is_empty());
    assert!(gw.discovery.is_empty());
}

#[test]
fn a_hundred_subscribers_on_their_own_c_vlans() {
    let mut gw = gateway(AuthMethod::Chap);
    let mut rng = Sequence::new(3);
    let mut subs: Vec<Subscriber> = (0..100u16)
        .map(|i| {
            let b = i.to_be_bytes();
            Subscriber::new(
                [2, 0, 0, 1, b[0], b[1]],
                qinq(i + 1),
                b"alice",
                b"s3cret",
                &mut rng,
            )
        })
        .collect();
    connect_all(&mut gw, &mut subs, T0);
    assert!(subs.iter().all(Subscriber::up));
    let mut addrs: Vec<_> = subs.iter().filter_map(|s| s.client.address()).collect();
    addrs.sort();
    addrs.dedup();
    assert_eq!(addrs.len(), 100);
    let mut ids: Vec<_> = subs.iter().map(|s| s.session_id).collect();
    ids.sort();
    assert_eq!(ids, (1..=100).collect::<Vec<u16>>());
    // Frames on the wrong line for a session go nowhere.
    let stray = pwire::session_frame(1, 0xc021, &[9, 1, 0, 8, 0, 0, 0, 0]);
    gw.input(T0, qinq(2), [2, 0, 0, 1, 0, 0], 0x8864, &stray);
    assert!(gw.out.is_empty());
}
