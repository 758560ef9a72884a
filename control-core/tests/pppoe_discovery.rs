//! PPPoE discovery as an access concentrator, through the public API with a fake clock:
//! the PADI/PADO/PADR/PADS/PADT flows byte by byte, the AC-Cookie against forgery and
//! expiry, rate and session limits, TR-101 line identification, and malformed input.

use core::time::Duration;

use tollgate_control_core::Instant;
use tollgate_control_core::pppoe::wire::{self, Packet, code, tag};
use tollgate_control_core::pppoe::{
    Discovery, DiscoveryConfig, DropReason, EndedBy, Event, Line, LineId, Rate, Refusal,
    SessionInfo, Transmit,
};
use tollgate_control_core::wire::ethernet::{BROADCAST, Frame, Mac};

const AC: Mac = [0x02, 0xac, 0, 0, 0, 1];
const C1: Mac = [0x02, 0, 0, 0, 0, 1];
const C2: Mac = [0x02, 0, 0, 0, 0, 2];
const T0: Instant = Instant(50_000_000_000);
const LINE: Line = Line {
    port: 3,
    svlan: Some(100),
    cvlan: Some(7),
};

fn config() -> DiscoveryConfig {
    DiscoveryConfig {
        ac_name: "tg-test".into(),
        service_names: vec!["internet".into(), "voip".into()],
        ..DiscoveryConfig::default()
    }
}

fn engine(cfg: DiscoveryConfig) -> Discovery {
    Discovery::new(cfg, AC, [0x5a; 32], T0)
}

fn tags(extra: &[(u16, &[u8])]) -> Vec<u8> {
    let mut t = Vec::new();
    for (k, v) in extra {
        wire::put_tag(&mut t, *k, v);
    }
    t
}

fn padi(service: &[u8], host_uniq: Option<&[u8]>) -> Vec<u8> {
    let mut t = tags(&[(tag::SERVICE_NAME, service)]);
    if let Some(h) = host_uniq {
        wire::put_tag(&mut t, tag::HOST_UNIQ, h);
    }
    wire::build(code::PADI, 0, &t)
}

fn tag_values(payload: &[u8], kind: u16) -> Vec<Vec<u8>> {
    let p = Packet::new_checked(payload).unwrap();
    p.tags()
        .map(Result::unwrap)
        .filter(|t| t.kind == kind)
        .map(|t| t.value.to_vec())
        .collect()
}

fn only_transmit(d: &mut Discovery) -> Transmit {
    let t = d.poll_transmit().expect("a reply");
    assert_eq!(d.poll_transmit(), None);
    t
}

/// PADI from `mac` on `line`, returns the PADO's cookie.
fn offer(d: &mut Discovery, now: Instant, line: Line, mac: Mac, host_uniq: &[u8]) -> Vec<u8> {
    d.handle_input(now, line, mac, BROADCAST, &padi(b"", Some(host_uniq)));
    let t = only_transmit(d);
    tag_values(&t.payload, tag::AC_COOKIE).remove(0)
}

fn padr(service: &[u8], host_uniq: &[u8], cookie: &[u8], extra: &[(u16, &[u8])]) -> Vec<u8> {
    let mut t = tags(&[
        (tag::SERVICE_NAME, service),
        (tag::HOST_UNIQ, host_uniq),
        (tag::AC_COOKIE, cookie),
    ]);
    t.extend_from_slice(&tags(extra));
    wire::build(code::PADR, 0, &t)
}

fn started(d: &mut Discovery) -> SessionInfo {
    match d.poll_event() {
        Some(Event::SessionStarted(s)) => s,
        other => panic!("expected SessionStarted, got {other:?}"),
    }
}

/// Discovery for `mac` on `line`: the session.
fn connect(d: &mut Discovery, now: Instant, line: Line, mac: Mac) -> SessionInfo {
    let cookie = offer(d, now, line, mac, b"hu");
    d.handle_input(now, line, mac, AC, &padr(b"", b"hu", &cookie, &[]));
    let pads = only_transmit(d);
    let p = Packet::new_checked(&pads.payload[..]).unwrap();
    assert_eq!(p.code(), code::PADS);
    let s = started(d);
    assert_eq!(s.id, p.session_id());
    s
}

#[test]
fn padi_gets_a_pado_with_every_tag_echoed_and_a_cookie() {
    let mut d = engine(config());
    let relay = [0xab, 0xcd, 0x01];
    let mut t = tags(&[
        (tag::SERVICE_NAME, b""),
        (tag::HOST_UNIQ, &[1, 2, 3, 4]),
        (tag::RELAY_SESSION_ID, &relay),
    ]);
    // Ethernet padding after Length is ignored.
    let mut frame = wire::build(code::PADI, 0, &t);
    frame.extend_from_slice(&[0; 20]);
    d.handle_input(T0, LINE, C1, BROADCAST, &frame);
    let pado = only_transmit(&mut d);
    assert_eq!((pado.line, pado.dst), (LINE, C1));
    let p = Packet::new_checked(&pado.payload[..]).unwrap();
    assert_eq!(
        (pado.payload[0], p.code(), p.session_id()),
        (0x11, code::PADO, 0)
    );
    let cookie = tag_values(&pado.payload, tag::AC_COOKIE).remove(0);
    assert_eq!(cookie.len(), 21);
    // The whole PADO, in order: AC-Name, the requested Service-Name, the others offered,
    // Host-Uniq, Relay-Session-Id, AC-Cookie.
    t = tags(&[
        (tag::AC_NAME, b"tg-test"),
        (tag::SERVICE_NAME, b""),
        (tag::SERVICE_NAME, b"internet"),
        (tag::SERVICE_NAME, b"voip"),
        (tag::HOST_UNIQ, &[1, 2, 3, 4]),
        (tag::RELAY_SESSION_ID, &relay),
        (tag::AC_COOKIE, &cookie),
    ]);
    assert_eq!(pado.payload, wire::build(code::PADO, 0, &t));
    assert_eq!(d.stats().padi, 1);
    assert_eq!(d.stats().pado, 1);
    assert_eq!(d.poll_event(), None, "a PADI creates nothing");
}

#[test]
fn padr_with_the_cookie_gets_pads_and_starts_a_session_with_the_line_id() {
    let mut d = engine(config());
    let cookie = offer(&mut d, T0, LINE, C1, b"hu");
    let line_id = LineId {
        circuit_id: Some(b"an1 eth 1/1/1:100".to_vec()),
        remote_id: Some(b"cust42".to_vec()),
        rate_up_kbps: Some(1_000),
        rate_down_kbps: Some(16_000),
    };
    let vendor = line_id.to_vendor_tag();
    let later = T0 + Duration::from_secs(2);
    d.handle_input(
        later,
        LINE,
        C1,
        AC,
        &padr(
            b"internet",
            b"hu",
            &cookie,
            &[(tag::VENDOR_SPECIFIC, &vendor)],
        ),
    );
    let pads = only_transmit(&mut d);
    let t = tags(&[(tag::SERVICE_NAME, b"internet"), (tag::HOST_UNIQ, b"hu")]);
    assert_eq!(pads.payload, wire::build(code::PADS, 1, &t));
    let s = started(&mut d);
    assert_eq!(
        s,
        SessionInfo {
            id: 1,
            line: LINE,
            mac: C1,
            service: b"internet".to_vec(),
            host_uniq: Some(b"hu".to_vec()),
            relay_session_id: None,
            line_id: Some(line_id),
            started: later,
        }
    );
    assert_eq!(d.session(1), Some(&s));
    assert_eq!(d.len(), 1);
}

#[test]
fn a_retransmitted_padr_gets_the_same_pads() {
    let mut d = engine(config());
    let cookie = offer(&mut d, T0, LINE, C1, b"hu");
    let req = padr(b"", b"hu", &cookie, &[]);
    d.handle_input(T0, LINE, C1, AC, &req);
    let first = only_transmit(&mut d);
    started(&mut d);
    d.handle_input(T0 + Duration::from_secs(3), LINE, C1, AC, &req);
    assert_eq!(only_transmit(&mut d), first);
    assert_eq!(d.poll_event(), None);
    assert_eq!((d.len(), d.stats().padr_retransmit), (1, 1));
}

#[test]
fn client_padt_ends_the_session_and_frees_its_limits() {
    let mut d = engine(config());
    let s = connect(&mut d, T0, LINE, C1);
    // From the wrong MAC or line, or for no session: dropped.
    let padt = wire::build(code::PADT, s.id, &[]);
    d.handle_input(T0, LINE, C2, AC, &padt);
    d.handle_input(T0, Line::untagged(3), C1, AC, &padt);
    d.handle_input(T0, LINE, C1, AC, &wire::build(code::PADT, 999, &[]));
    assert_eq!(d.drop_count(DropReason::UnknownSession), 3);
    d.handle_input(T0, LINE, C1, AC, &wire::build(code::PADT, 0, &[]));
    assert_eq!(d.drop_count(DropReason::ZeroSessionId), 1);
    assert_eq!(d.len(), 1);
    d.handle_input(T0, LINE, C1, AC, &padt);
    assert_eq!(
        d.poll_event(),
        Some(Event::SessionEnded {
            info: s,
            by: EndedBy::Client
        })
    );
    assert!(d.is_empty());
    assert_eq!(d.poll_transmit(), None, "no answer to a PADT");
    // The MAC may connect again (limit 1 per MAC).
    let again = connect(&mut d, T0 + Duration::from_secs(1), LINE, C1);
    assert_eq!(again.id, 2);
}

#[test]
fn terminate_sends_padt_with_the_reason() {
    let mut d = engine(config());
    let s = connect(&mut d, T0, LINE, C1);
    let gone = d.terminate(s.id, "session timeout").unwrap();
    assert_eq!(gone, s);
    let padt = only_transmit(&mut d);
    let t = tags(&[
        (tag::HOST_UNIQ, b"hu"),
        (tag::GENERIC_ERROR, b"session timeout"),
    ]);
    assert_eq!((padt.line, padt.dst), (LINE, C1));
    assert_eq!(padt.payload, wire::build(code::PADT, s.id, &t));
    assert!(d.is_empty());
    assert_eq!(d.terminate(s.id, "again"), None);
    assert_eq!(d.stats().padt_sent, 1);
    // A frame for the line, QinQ-tagged.
    let f = padt.frame(AC, 0x88a8);
    let h = Frame::new_checked(&f[..]).unwrap().header().unwrap();
    assert_eq!(
        (h.dst, h.src, h.ethertype),
        (C1, AC, 0x8863),
        "ethernet header"
    );
    assert_eq!(h.outer.map(|t| (t.tpid, t.vid)), Some((0x88a8, 100)));
    assert_eq!(h.inner.map(|t| (t.tpid, t.vid)), Some((0x8100, 7)));
    assert_eq!(&f[h.payload_at..], &padt.payload[..]);
}

#[test]
fn forged_and_expired_cookies_get_no_answer() {
    let mut d = engine(config());
    let cookie = offer(&mut d, T0, LINE, C1, b"hu");
    // Missing.
    d.handle_input(
        T0,
        LINE,
        C1,
        AC,
        &wire::build(code::PADR, 0, &tags(&[(tag::SERVICE_NAME, b"")])),
    );
    assert_eq!(d.refusal_count(Refusal::CookieMissing), 1);
    // Another client replaying C1's cookie, C1 from another line, a flipped bit, a
    // cookie from another AC's secret.
    d.handle_input(T0, LINE, C2, AC, &padr(b"", b"hu", &cookie, &[]));
    d.handle_input(
        T0,
        Line::untagged(3),
        C1,
        AC,
        &padr(b"", b"hu", &cookie, &[]),
    );
    let mut flipped = cookie.clone();
    flipped[10] ^= 0x80;
    d.handle_input(T0, LINE, C1, AC, &padr(b"", b"hu", &flipped, &[]));
    let mut other = Discovery::new(config(), AC, [0x11; 32], T0);
    let foreign = offer(&mut other, T0, LINE, C1, b"hu");
    d.handle_input(T0, LINE, C1, AC, &padr(b"", b"hu", &foreign, &[]));
    d.handle_input(T0, LINE, C1, AC, &padr(b"", b"hu", b"short", &[]));
    assert_eq!(d.refusal_count(Refusal::CookieForged), 5);
    // Expired: valid for 60 s.
    d.handle_input(
        T0 + Duration::from_secs(61),
        LINE,
        C1,
        AC,
        &padr(b"", b"hu", &cookie, &[]),
    );
    assert_eq!(d.refusal_count(Refusal::CookieExpired), 1);
    assert_eq!(d.poll_transmit(), None);
    assert_eq!(d.poll_event(), None);
    assert!(d.is_empty());
    // Within the window it works.
    d.handle_input(
        T0 + Duration::from_secs(60),
        LINE,
        C1,
        AC,
        &padr(b"", b"hu", &cookie, &[]),
    );
    started(&mut d);
}

#[test]
fn cookies_survive_one_secret_rotation() {
    let mut d = engine(config());
    let cookie = offer(&mut d, T0, LINE, C1, b"hu");
    d.rotate_secret([0x77; 32]);
    d.handle_input(T0, LINE, C1, AC, &padr(b"", b"hu", &cookie, &[]));
    started(&mut d);
}

#[test]
fn padi_rate_limits_per_mac_and_global() {
    let cfg = DiscoveryConfig {
        padi_rate_per_mac: Rate {
            per_second: 1,
            burst: 2,
        },
        padi_rate: Rate {
            per_second: 10,
            burst: 4,
        },
        ..config()
    };
    let mut d = engine(cfg);
    let p = padi(b"", None);
    for _ in 0..3 {
        d.handle_input(T0, LINE, C1, BROADCAST, &p);
    }
    assert_eq!(d.stats().pado, 2);
    assert_eq!(d.refusal_count(Refusal::PadiRateMac), 1);
    // A second later C1 has one more.
    d.handle_input(T0 + Duration::from_secs(1), LINE, C1, BROADCAST, &p);
    assert_eq!(d.stats().pado, 3);
    // Other MACs: the global bucket (4, refilled by 10 in that second to 4) runs out.
    let t = T0 + Duration::from_secs(1);
    for i in 0..5u8 {
        d.handle_input(t, LINE, [2, 0, 0, 1, 0, i], BROADCAST, &p);
    }
    assert_eq!(d.stats().pado, 6);
    assert_eq!(d.refusal_count(Refusal::PadiRate), 2);
    assert_eq!(d.stats().padi, 9);
}

#[test]
fn session_limits_per_mac_per_line_and_in_all() {
    let cfg = DiscoveryConfig {
        max_sessions_per_mac: 1,
        max_sessions_per_line: 2,
        max_sessions: 3,
        ..config()
    };
    let mut d = engine(cfg);
    // Two offers to C1 before it has a session; the second PADR is over its limit.
    let c_a = offer(&mut d, T0, LINE, C1, b"a");
    let c_b = offer(&mut d, T0, LINE, C1, b"b");
    d.handle_input(T0, LINE, C1, AC, &padr(b"", b"a", &c_a, &[]));
    only_transmit(&mut d);
    started(&mut d);
    d.handle_input(T0, LINE, C1, AC, &padr(b"", b"b", &c_b, &[]));
    let err = only_transmit(&mut d);
    let p = Packet::new_checked(&err.payload[..]).unwrap();
    assert_eq!((p.code(), p.session_id()), (code::PADS, 0));
    assert_eq!(
        tag_values(&err.payload, tag::AC_SYSTEM_ERROR),
        [b"session limit reached".to_vec()]
    );
    assert_eq!(tag_values(&err.payload, tag::HOST_UNIQ), [b"b".to_vec()]);
    assert_eq!(d.refusal_count(Refusal::SessionLimitMac), 1);
    assert_eq!(d.stats().pads_error, 1);
    // And a PADI from C1 now gets no offer.
    d.handle_input(T0, LINE, C1, BROADCAST, &padi(b"", None));
    assert_eq!(d.poll_transmit(), None);
    assert_eq!(d.refusal_count(Refusal::SessionLimitMac), 2);
    // The line takes one more MAC, then refuses.
    connect(&mut d, T0, LINE, C2);
    d.handle_input(T0, LINE, [2, 0, 0, 0, 0, 3], BROADCAST, &padi(b"", None));
    assert_eq!(d.poll_transmit(), None);
    assert_eq!(d.refusal_count(Refusal::SessionLimitLine), 1);
    // Another line: the third session in all, then the engine is full.
    let other = Line::untagged(4);
    connect(&mut d, T0, other, [2, 0, 0, 0, 0, 4]);
    d.handle_input(T0, other, [2, 0, 0, 0, 0, 5], BROADCAST, &padi(b"", None));
    assert_eq!(d.poll_transmit(), None);
    assert_eq!(d.refusal_count(Refusal::SessionLimit), 1);
    let ids: Vec<u16> = {
        let mut v: Vec<u16> = d.sessions().map(|s| s.id).collect();
        v.sort();
        v
    };
    assert_eq!(ids, [1, 2, 3]);
}

#[test]
fn service_names_not_offered_are_refused() {
    let mut d = engine(config());
    d.handle_input(T0, LINE, C1, BROADCAST, &padi(b"video", None));
    assert_eq!(d.poll_transmit(), None);
    assert_eq!(d.refusal_count(Refusal::ServiceUnavailable), 1);
    d.handle_input(T0, LINE, C1, BROADCAST, &padi(b"voip", None));
    let pado = only_transmit(&mut d);
    assert_eq!(
        tag_values(&pado.payload, tag::SERVICE_NAME),
        [b"voip".to_vec(), b"internet".to_vec()]
    );
    let cookie = tag_values(&pado.payload, tag::AC_COOKIE).remove(0);
    d.handle_input(T0, LINE, C1, AC, &padr(b"video", b"x", &cookie, &[]));
    let err = only_transmit(&mut d);
    assert_eq!(
        tag_values(&err.payload, tag::SERVICE_NAME_ERROR),
        [b"service unavailable".to_vec()]
    );
    assert_eq!(d.refusal_count(Refusal::ServiceUnavailable), 2);
    // With no list configured, anything is served.
    let mut any = engine(DiscoveryConfig::default());
    any.handle_input(T0, LINE, C1, BROADCAST, &padi(b"whatever", None));
    assert!(any.poll_transmit().is_some());
}

#[test]
fn malformed_line_id_is_counted_and_the_session_served_without_it() {
    let mut d = engine(config());
    let cookie = offer(&mut d, T0, LINE, C1, b"hu");
    let broken = [0, 0, 0x0d, 0xe9, 0x01, 50, b'x'];
    d.handle_input(
        T0,
        LINE,
        C1,
        AC,
        &padr(b"", b"hu", &cookie, &[(tag::VENDOR_SPECIFIC, &broken)]),
    );
    only_transmit(&mut d);
    assert_eq!(started(&mut d).line_id, None);
    assert_eq!(d.stats().line_id_malformed, 1);
}

#[test]
fn malformed_and_misdirected_frames_are_dropped_by_name() {
    let mut d = engine(config());
    let ok = padi(b"", None);
    let cases: Vec<(Vec<u8>, Mac, Mac, DropReason)> = vec![
        (ok[..5].to_vec(), C1, BROADCAST, DropReason::Truncated),
        (
            {
                let mut v = ok.clone();
                v[5] += 1;
                v
            },
            C1,
            BROADCAST,
            DropReason::Truncated,
        ),
        (
            {
                let mut v = ok.clone();
                v[0] = 0x12;
                v
            },
            C1,
            BROADCAST,
            DropReason::BadVersion,
        ),
        (
            wire::build(code::PADI, 0, &[1, 1, 0, 9, 0]),
            C1,
            BROADCAST,
            DropReason::BadTag,
        ),
        (
            wire::build(code::PADI, 0, &[]),
            C1,
            BROADCAST,
            DropReason::ServiceNameCount,
        ),
        (
            wire::build(
                code::PADI,
                0,
                &tags(&[(tag::SERVICE_NAME, b""), (tag::SERVICE_NAME, b"a")]),
            ),
            C1,
            BROADCAST,
            DropReason::ServiceNameCount,
        ),
        (
            wire::build(code::PADI, 7, &tags(&[(tag::SERVICE_NAME, b"")])),
            C1,
            BROADCAST,
            DropReason::NonzeroSessionId,
        ),
        (
            wire::build(code::PADR, 7, &tags(&[(tag::SERVICE_NAME, b"")])),
            C1,
            AC,
            DropReason::NonzeroSessionId,
        ),
        (
            ok.clone(),
            [0x01, 0, 0x5e, 0, 0, 1],
            BROADCAST,
            DropReason::BadSource,
        ),
        (ok.clone(), C1, [2, 9, 9, 9, 9, 9], DropReason::NotForUs),
        (
            wire::build(code::PADR, 0, &[]),
            C1,
            BROADCAST,
            DropReason::NotForUs,
        ),
        (
            wire::build(code::PADO, 0, &[]),
            C1,
            AC,
            DropReason::UnexpectedCode,
        ),
        (
            wire::build(code::PADS, 1, &[]),
            C1,
            AC,
            DropReason::UnexpectedCode,
        ),
        (
            wire::build(0x00, 1, &[0xc0, 0x21]),
            C1,
            AC,
            DropReason::UnexpectedCode,
        ),
    ];
    let n = cases.len();
    for (frame, src, dst, want) in cases {
        let before = d.drop_count(want);
        d.handle_input(T0, LINE, src, dst, &frame);
        assert_eq!(d.drop_count(want), before + 1, "{want:?} for {frame:02x?}");
    }
    assert_eq!(d.drops().map(|(_, n)| n).sum::<u64>(), n as u64);
    assert_eq!(d.poll_transmit(), None);
    assert_eq!(d.stats().padi, 0);
    // A PADI sent unicast to us is fine.
    d.handle_input(T0, LINE, C1, AC, &ok);
    assert!(d.poll_transmit().is_some());
    // Names are unique and prefixed.
    let names: std::collections::HashSet<_> = DropReason::ALL
        .iter()
        .map(|d| d.name())
        .chain(Refusal::ALL.iter().map(|r| r.name()))
        .collect();
    assert_eq!(names.len(), DropReason::COUNT + Refusal::COUNT);
    assert!(names.iter().all(|n| n.starts_with("pppoe_")));
}

#[test]
fn a_padi_flood_from_random_macs_costs_bounded_memory() {
    let cfg = DiscoveryConfig {
        rate_table_size: 100,
        padi_rate: Rate {
            per_second: 1_000_000,
            burst: 1_000_000,
        },
        ..config()
    };
    let mut d = engine(cfg);
    let p = padi(b"", None);
    for i in 0..10_000u32 {
        let b = i.to_be_bytes();
        d.handle_input(T0, LINE, [2, 0xf0, b[0], b[1], b[2], b[3]], BROADCAST, &p);
        while d.poll_transmit().is_some() {}
    }
    assert_eq!(d.stats().padi, 10_000);
    assert_eq!(d.stats().rate_untracked, 9_900);
    assert!(d.is_empty(), "PADIs create no state");
}
