//! The engine's tests, against itself through the simulated line of [`super::sim`].

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::Duration;

use super::consolidate::Capacity;
use super::sim::*;
use super::*;

const M: u64 = 1_000_000;

fn caps(sessions: u32, bandwidth: u64) -> Capacity {
    Capacity {
        sessions,
        bandwidth,
    }
}

fn open(sim: &mut Sim, i: u8, customer: &str, level: u64) -> u32 {
    let now = sim.now();
    sim.lac()
        .open(
            now,
            ChannelRequest {
                address: sub(i),
                customer: customer.into(),
                user: format!("user{i}"),
                level,
            },
        )
        .unwrap()
}

#[test]
fn tunnel_and_sessions_come_up_with_authentication_and_hidden_avps() {
    let mut sim = Sim::new(
        lac_settings(4, caps(4, 0), &[("acme", true)]),
        lns_settings(),
    );
    for i in 0..3 {
        open(&mut sim, i, "acme", M);
    }
    sim.run_for(Duration::from_secs(1));
    assert!(sim.settled());
    assert_eq!(sim.tunnels_per_customer().get("acme"), Some(&1));
    let lns = sim.lns();
    let t = lns.tunnels().values().next().unwrap();
    assert_eq!(t.state, TunnelState::Established);
    assert_eq!(t.peer_host, "lac");
    assert_eq!(t.customer_name, "acme", "the hidden Customer AVP was read");
    assert_eq!(lns.sessions().len(), 3);
    assert_eq!(lns.stats().auth_failures, 0);
    for i in 0..3 {
        sim.send_data(sub(i), 100);
    }
    sim.run_for(Duration::from_millis(10));
    for i in 0..3 {
        assert!(sim.lossless(sub(i)));
        assert_eq!(sim.got[&(sub(i), true)].len(), 1);
    }
}

#[test]
fn a_wrong_secret_is_refused_on_both_sides() {
    let mut lns = lns_settings();
    lns.secret = Some(b"other".to_vec());
    let mut sim = Sim::new(lac_settings(1, caps(4, 0), &[("acme", true)]), lns);
    open(&mut sim, 0, "acme", M);
    sim.run_for(Duration::from_secs(2));
    assert_eq!(sim.lac().stats().auth_failures, 1);
    assert!(
        sim.lac()
            .tunnels()
            .values()
            .all(|t| t.state != TunnelState::Established)
    );
    assert!(
        sim.lns()
            .tunnels()
            .values()
            .all(|t| t.state != TunnelState::Established)
    );
    assert!(!sim.settled());
}

#[test]
fn the_lns_refuses_when_not_accepting() {
    let mut lns = lns_settings();
    lns.accept = false;
    let mut sim = Sim::new(lac_settings(1, caps(4, 0), &[("acme", true)]), lns);
    open(&mut sim, 0, "acme", M);
    sim.run_for(Duration::from_secs(1));
    assert_eq!(sim.lns().stats().tunnels_refused, 1);
    let t = sim.lac().tunnels().values().next().unwrap();
    assert!(
        t.stop_reason.as_deref().unwrap().contains("not accepting"),
        "{t:?}"
    );
}

/// An IP subscriber's call (the Subscriber Address AVP of the removed IP mode, as an
/// older Tollgate LAC sends it) is refused by an LNS that has not turned `ip_calls` on
/// (the daemon never does): CDN with the reason, nothing installed, counted.
#[test]
fn an_lns_refuses_ip_subscribers_calls() {
    let mut lns = lns_settings();
    lns.ip_calls = false;
    let mut sim = Sim::new(lac_settings(1, caps(4, 0), &[("acme", true)]), lns);
    open(&mut sim, 0, "acme", M);
    sim.run_for(Duration::from_secs(2));
    assert_eq!(sim.lns().stats().ip_calls_refused, 1);
    assert_eq!(sim.lns().stats().sessions_up, 0);
    assert!(sim.lns().sessions().is_empty());
    assert_eq!(sim.lns().stats().tunnels_up, 1, "the tunnel itself is fine");
    assert_eq!(sim.lac().stats().sessions_up, 0);
    assert!(
        !sim.lac()
            .subscribers()
            .values()
            .any(|o| o.session.is_some())
    );
    assert!(sim.lns_table().is_empty(), "nothing in the LNS's fast path");
}

/// The scenario of the issue: 3 customers (two with the consolidation service), 12
/// sessions over 4 tunnels; sessions end in a scripted order; consolidation moves
/// sessions into the freed room and tears empty tunnels down. At the end every
/// consolidating customer uses the minimum number of tunnels (brute force), and a flow
/// through every moved session lost nothing.
#[test]
fn consolidation_scenario_reaches_the_minimum_without_loss() {
    let (mut sim, moved) = super::tests::scenario(0);
    let lac = sim.lac();
    assert!(lac.stats().moves_done >= 2, "{:?}", lac.stats());
    assert_eq!(lac.stats().moves_failed, 0);
    assert!(!moved.is_empty());
    for a in moved {
        assert!(sim.lossless(a), "{a}: {:?}", sim.got.get(&(a, true)));
    }
}

/// Runs the scenario with `loss_ppm` of control messages lost; returns the sim and the
/// subscribers whose session moved. Checks the end state against brute force.
pub(crate) fn scenario(loss_ppm: u64) -> (Sim, Vec<Ipv4Addr>) {
    let mut sim = Sim::new(
        lac_settings(
            8,
            caps(4, 10 * M),
            &[("acme", true), ("globex", true), ("initech", false)],
        ),
        lns_settings(),
    );
    sim.loss_ppm = loss_ppm;
    // acme: 6 sessions (2 tunnels), globex: 3 (1), initech: 3 (1, no service).
    let plan: [(u8, &str, u64); 12] = [
        (0, "acme", 2 * M),
        (1, "acme", 2 * M),
        (2, "acme", 2 * M),
        (3, "acme", 2 * M),
        (4, "acme", 2 * M),
        (5, "acme", M),
        (6, "globex", 2 * M),
        (7, "globex", 2 * M),
        (8, "globex", 5 * M),
        (9, "initech", M),
        (10, "initech", M),
        (11, "initech", M),
    ];
    let mut ids = BTreeMap::new();
    for (i, c, l) in plan {
        ids.insert(i, open(&mut sim, i, c, l));
    }
    let settle = |sim: &mut Sim| {
        for _ in 0..600 {
            for (i, _, _) in plan {
                sim.send_data(sub(i), 1000);
            }
            sim.run_for(Duration::from_millis(100));
            if sim.settled() {
                break;
            }
        }
        assert!(sim.settled(), "settles");
    };
    settle(&mut sim);
    assert_eq!(
        sim.tunnels_per_customer().values().sum::<usize>(),
        4,
        "12 sessions over 4 tunnels: {:?}",
        sim.tunnels_per_customer()
    );
    let tunnel_of = |sim: &mut Sim, i: u8| {
        let lac = sim.lac();
        let o = &lac.subscribers()[&lac.find(&sub(i).to_string()).unwrap()];
        lac.sessions()[&o.session.unwrap()].tunnel
    };
    let before: BTreeMap<u8, u16> = (0..12).map(|i| (i, tunnel_of(&mut sim, i))).collect();
    // Sessions end: two of acme's first tunnel, one of globex, one of initech.
    let mut ended = Vec::new();
    for i in [0u8, 1, 6, 9] {
        let now = sim.now();
        sim.lac().close(now, &sub(i).to_string()).unwrap();
        ended.push(i);
        settle(&mut sim);
    }
    let alive: Vec<u8> = (0..12).filter(|i| !ended.contains(i)).collect();
    let moved: Vec<Ipv4Addr> = alive
        .iter()
        .filter(|i| tunnel_of(&mut sim, **i) != before[i])
        .map(|i| sub(*i))
        .collect();
    // Brute force per consolidating customer.
    for (name, levels) in [
        ("acme", vec![2 * M, 2 * M, 2 * M, M]),
        ("globex", vec![2 * M, 5 * M]),
    ] {
        let best = consolidate::tests::brute_force_min(&levels, caps(4, 10 * M));
        assert_eq!(
            sim.tunnels_per_customer().get(name).copied().unwrap_or(0),
            best,
            "{name}: {:?}",
            sim.tunnels_per_customer()
        );
    }
    assert_eq!(sim.tunnels_per_customer().get("initech"), Some(&1));
    (sim, moved)
}

#[test]
fn ten_percent_control_loss_still_converges() {
    let (mut sim, moved) = scenario(100_000);
    assert!(sim.lost > 0, "some control messages were lost");
    let lac = sim
        .lac()
        .tunnels()
        .values()
        .map(|t| t.chan.stats.retransmits)
        .sum::<u64>();
    assert!(lac > 0);
    for a in moved {
        assert!(sim.lossless(a), "{a}");
    }
}

#[test]
fn a_dead_lns_is_detected_and_subscribers_wait() {
    let mut sim = Sim::new(
        lac_settings(1, caps(4, 0), &[("acme", true)]),
        lns_settings(),
    );
    open(&mut sim, 0, "acme", M);
    sim.run_for(Duration::from_secs(1));
    assert!(sim.settled());
    sim.loss_ppm = 1_000_000;
    // HELLO after 60 s idle, then 31 s of retransmissions.
    sim.run_for(Duration::from_secs(95));
    let lac = sim.lac();
    assert_eq!(lac.stats().tunnels_dead, 1);
    let o = lac.subscribers().values().next().unwrap();
    assert!(o.session.is_none());
    assert!(o.retry_at.is_some() || o.moving_to.is_some());
    // The line comes back: the subscriber is placed again.
    sim.loss_ppm = 0;
    sim.run_for(Duration::from_secs(60));
    assert!(sim.settled());
}

#[test]
fn service_levels_follow_traffic_and_drive_moves() {
    let mut s = lac_settings(4, caps(8, 10 * M), &[("acme", true)]);
    s.ladder = Ladder {
        steps: vec![M, 2 * M, 5 * M, 8 * M],
        low_percent: 20,
        high_percent: 90,
        window: Duration::from_secs(3),
    };
    let mut sim = Sim::new(s, lns_settings());
    open(&mut sim, 0, "acme", 5 * M);
    open(&mut sim, 1, "acme", 5 * M);
    sim.run_for(Duration::from_secs(1));
    assert!(sim.settled());
    assert_eq!(sim.tunnels_per_customer()["acme"], 1);
    // Subscriber 0 sends next to nothing: down to 1M, one step per window.
    for _ in 0..80 {
        sim.send_data(sub(0), 100);
        // Subscriber 1 sends 9.5 Mbit/s in 100 ms steps (both ways counted: half each).
        sim.send_data(sub(1), 9_500_000 / 8 / 10 / 2);
        sim.run_for(Duration::from_millis(100));
    }
    let lac = sim.lac();
    let lvl = |l: &L2tp, i: u8| l.subscribers()[&l.find(&sub(i).to_string()).unwrap()].level;
    assert_eq!(lvl(lac, 0), M);
    assert_eq!(lvl(lac, 1), 8 * M, "5M -> 8M");
    assert!(lac.stats().level_changes >= 3);
    // 1M + 8M fit one 10M tunnel; the levels are recorded for rating.
    assert_eq!(sim.tunnels_per_customer()["acme"], 1);
    let bw: Vec<_> = sim
        .lac_records()
        .iter()
        .filter_map(|r| match r {
            Record::Bandwidth(b) if b.reason == "service-level" => Some(b.bps),
            _ => None,
        })
        .collect();
    assert!(bw.contains(&M) && bw.contains(&(8 * M)), "{bw:?}");
}

#[test]
fn a_raised_level_that_overflows_moves_the_session_out() {
    let mut sim = Sim::new(
        lac_settings(4, caps(8, 10 * M), &[("acme", true)]),
        lns_settings(),
    );
    open(&mut sim, 0, "acme", 5 * M);
    open(&mut sim, 1, "acme", 5 * M);
    sim.run_for(Duration::from_secs(1));
    assert_eq!(sim.tunnels_per_customer()["acme"], 1);
    let now = sim.now();
    sim.lac()
        .set_level(now, &sub(1).to_string(), 8 * M)
        .unwrap();
    for _ in 0..20 {
        sim.send_data(sub(0), 100);
        sim.send_data(sub(1), 100);
        sim.run_for(Duration::from_millis(100));
    }
    assert!(sim.settled());
    assert_eq!(sim.tunnels_per_customer()["acme"], 2);
    assert!(sim.lossless(sub(0)) && sim.lossless(sub(1)));
}

#[test]
fn tunnel_use_is_recorded_for_rating() {
    let mut s = lac_settings(4, caps(4, 0), &[("acme", true)]);
    s.usage_interval = Duration::from_secs(60);
    let mut sim = Sim::new(s, lns_settings());
    open(&mut sim, 0, "acme", M);
    sim.run_for(Duration::from_secs(150));
    let now = sim.now();
    sim.lac().close(now, &sub(0).to_string()).unwrap();
    sim.run_for(Duration::from_secs(5));
    assert!(
        sim.lac().tunnels().is_empty(),
        "the empty tunnel was torn down"
    );
    let t: Vec<&TunnelUsage> = sim
        .lac_records()
        .iter()
        .filter_map(|r| match r {
            Record::Tunnel(t) => Some(t),
            _ => None,
        })
        .collect();
    assert_eq!(t.len(), 3, "two interim records and the last one: {t:?}");
    assert!(
        t.iter()
            .all(|r| r.account == "acct-acme" && r.line == "line1")
    );
    assert!(
        t.windows(2)
            .all(|w| w[0].stop == w[1].start && w[0].tunnel == w[1].tunnel)
    );
    let total: i64 = t.iter().map(|r| r.stop - r.start).sum();
    assert!((149..=151).contains(&total), "{total}");
    let ids: std::collections::BTreeSet<_> = t.iter().map(|r| &r.id).collect();
    assert_eq!(ids.len(), 3);
}

/// Bad input to an LNS: garbage, unknown tunnels, an unknown mandatory AVP, a message
/// out of order: counted, answered per the RFC, never a panic.
#[test]
fn malformed_and_unexpected_messages() {
    let mut sim = Sim::new(
        lac_settings(1, caps(4, 0), &[("acme", true)]),
        lns_settings(),
    );
    open(&mut sim, 0, "acme", M);
    sim.run_for(Duration::from_secs(1));
    let now = sim.now();
    let from = SocketAddrV4::new(LAC_LINE, 1701);
    let lns = sim.lns();
    lns.on_datagram(now, from, LNS_LINE, b"garbage");
    lns.on_datagram(now, from, LNS_LINE, &wire::zlb(999, 0, 0));
    assert_eq!(lns.stats().malformed, 1);
    assert_eq!(lns.stats().unknown_tunnel, 1);
    let tid = *lns.tunnels().keys().next().unwrap();
    let (ns, nr) = lns.tunnels()[&tid].chan.sequence();
    // From another address: dropped.
    let mut b = Builder::new(kind::HELLO, tid, 0).finish();
    wire::set_sequence(&mut b, nr, ns);
    lns.on_datagram(
        now,
        SocketAddrV4::new(Ipv4Addr::new(172, 16, 0, 9), 1701),
        LNS_LINE,
        &b,
    );
    assert_eq!(lns.stats().wrong_peer, 1);
    // An unknown mandatory AVP in a tunnel message: StopCCN.
    let mut b = Builder::new(kind::HELLO, tid, 0)
        .avp(true, 0, 250, b"?")
        .finish();
    wire::set_sequence(&mut b, nr, ns);
    lns.on_datagram(now, from, LNS_LINE, &b);
    assert_eq!(lns.stats().unknown_mandatory, 1);
    assert!(matches!(lns.tunnels()[&tid].state, TunnelState::Stopping));
    let mut out = Vec::new();
    while let Some(o) = lns.poll_output() {
        out.push(o);
    }
    let stop = out.iter().find_map(|o| match o {
        L2tpOutput::Send { bytes, .. } if wire::kind_of(bytes) == kind::STOPCCN => {
            Some(wire::decode(bytes, None).unwrap())
        }
        _ => None,
    });
    let rc = stop.expect("StopCCN sent").result_code().unwrap();
    assert_eq!((rc.result, rc.error), (2, Some(8)));
}

#[test]
fn an_unexpected_session_message_gets_a_cdn() {
    let mut sim = Sim::new(
        lac_settings(1, caps(4, 0), &[("acme", true)]),
        lns_settings(),
    );
    open(&mut sim, 0, "acme", M);
    sim.run_for(Duration::from_secs(1));
    let now = sim.now();
    let lns = sim.lns();
    let (&sid, s) = lns.sessions().iter().next().unwrap();
    let tid = s.tunnel;
    let (ns, nr) = lns.tunnels()[&tid].chan.sequence();
    // An ICRP to an LNS session: wrong direction.
    let mut b = Builder::new(kind::ICRP, tid, sid)
        .u16(true, attr::ASSIGNED_SESSION_ID, 77)
        .finish();
    wire::set_sequence(&mut b, nr, ns);
    lns.on_datagram(now, SocketAddrV4::new(LAC_LINE, 1701), LNS_LINE, &b);
    assert_eq!(lns.stats().unexpected, 1);
    assert_eq!(lns.sessions()[&sid].state, SessionState::Closing);
}

/// A foreign LNS (another Vendor Name) gets no Tollgate vendor AVPs: some read them by
/// attribute number as the IETF AVP of that number (xl2tpd takes attribute 2 for a
/// Protocol Version and drops the tunnel).
#[test]
fn a_foreign_lns_gets_no_vendor_avps() {
    let mut s = lac_settings(1, caps(4, 0), &[("acme", true)]);
    s.secret = None;
    s.hide_avps = false;
    let now = Instant(1_000_000_000);
    let lac_fwd = fwd((Ipv4Addr::new(10, 10, 0, 1), 24), (LAC_LINE, 24));
    let mut lac = L2tp::new(now, s, lac_fwd, WallClock::UNIX);
    lac.open(
        now,
        ChannelRequest {
            address: sub(0),
            customer: "acme".into(),
            user: "u".into(),
            level: M,
        },
    )
    .unwrap();
    let sent = |l: &mut L2tp| -> Vec<Message> {
        std::iter::from_fn(|| l.poll_output())
            .filter_map(|o| match o {
                L2tpOutput::Send { bytes, .. } => Some(wire::decode(&bytes, None).unwrap()),
                _ => None,
            })
            .collect()
    };
    lac.tick(now);
    let sccrq = sent(&mut lac)
        .into_iter()
        .find(|m| m.kind() == kind::SCCRQ)
        .unwrap();
    assert_eq!(
        sccrq.text(attr::VENDOR_NAME).as_deref(),
        Some(VENDOR_NAME),
        "we say who we are"
    );
    let ours = sccrq.u16(attr::ASSIGNED_TUNNEL_ID).unwrap();
    let mut b = Builder::new(kind::SCCRP, ours, 0)
        .u16(true, attr::PROTOCOL_VERSION, 0x0100)
        .avp(true, 0, attr::HOST_NAME, b"xl2tpd")
        .avp(false, 0, attr::VENDOR_NAME, b"xelerance.com")
        .u32(true, attr::FRAMING_CAPABILITIES, 3)
        .u16(true, attr::ASSIGNED_TUNNEL_ID, 77)
        .finish();
    wire::set_sequence(&mut b, 0, 1);
    lac.on_datagram(now, SocketAddrV4::new(LNS_LINE, 1701), LAC_LINE, &b);
    let out = sent(&mut lac);
    let icrq = out.iter().find(|m| m.kind() == kind::ICRQ).expect("ICRQ");
    assert!(icrq.avps.iter().all(|a| a.vendor == 0), "{icrq:?}");
    assert_eq!(icrq.tunnel, 77);
    // And consolidation is off for its tunnel, counted (and said at INFO).
    assert_eq!(lac.stats().consolidation_off, 1);
    assert!(!lac.tunnels().values().next().unwrap().peer_is_tollgate());
}

/// A PPPoE subscriber's switched call of customer `customer` (PPPoE session `pppoe`).
fn ppp_call(pppoe: u16) -> lac::SwitchedCall {
    lac::SwitchedCall {
        pppoe: tollgate_dataplane::l2tp::PppoeLeg {
            session: pppoe,
            client: ppp_client(pppoe),
            vlans: Default::default(),
            mss_clamp: 0,
        },
        proxy: crate::ppp::ProxyRecord {
            lcp: Default::default(),
            auth: crate::ppp::ProxyAuth {
                kind: crate::ppp::ProxyAuthType::Pap,
                name: format!("user{pppoe}@isp.example").into_bytes(),
                challenge: Vec::new(),
                id: 1,
                response: b"secret".to_vec(),
            },
        },
        calling_number: format!("access0.10.{pppoe}"),
        speed: 1_000_000_000,
        circuit_id: None,
        remote_id: None,
    }
}

fn ppp_client(pppoe: u16) -> tollgate_dataplane::MacAddr {
    tollgate_dataplane::MacAddr([2, 0, 0, 0, 9, pppoe as u8])
}

/// Issue 15 item 3: PPP sessions (switched calls of a realm with a customer) are placed
/// by the administration table and consolidated between two Tollgates. Three calls in
/// tunnels of two sessions (2 + 1); the first call ends; of the two tunnels left with
/// one call each, one call moves into the other (Switchover AVP; the LNS re-binds its PPP session: no second ICCN call, no
/// renegotiation, same address) and its tunnel is torn down. PPP frames sent every
/// millisecond both ways through the move all arrive, once, in order, and the moved
/// call's counters carry over.
#[test]
fn ppp_sessions_are_consolidated_without_loss_and_stay_up() {
    for loss_ppm in [0, 100_000] {
        let mut sim = Sim::new(
            lac_settings(4, caps(2, 0), &[("acme", true)]),
            lns_settings(),
        );
        sim.loss_ppm = loss_ppm;
        let mut sid = BTreeMap::new();
        for p in 1..=3u16 {
            let now = sim.now();
            let s = sim
                .lac()
                .switch_call_placed(now, "acme", M, ppp_call(p))
                .unwrap();
            sid.insert(p, s);
            sim.run_for(Duration::from_millis(5));
        }
        sim.run_for(Duration::from_secs(20));
        assert_eq!(
            sim.tunnels_per_customer().get("acme"),
            Some(&2),
            "{loss_ppm}"
        );
        let up: Vec<_> = sim.ppp_events.clone();
        assert_eq!(up, ["up 0", "up 2", "up 4"], "{loss_ppm}");
        let address = |sim: &Sim, n: u32| sim.ppp_calls.values().find(|c| c.0 == n).unwrap().1;
        let addresses = [address(&sim, 2), address(&sim, 4)];
        let t = |sim: &mut Sim, p: u16| sim.lac().sessions()[&sid[&p]].tunnel;
        let (t1, t2, t3) = (t(&mut sim, 1), t(&mut sim, 2), t(&mut sim, 3));
        assert_eq!(t1, t2);
        assert_ne!(t1, t3);
        // Traffic both ways, every millisecond, through the end of call 1 and the move.
        for i in 0..4000u32 {
            for p in [2, 3] {
                sim.send_ppp(p, ppp_client(p));
            }
            if i == 1000 {
                let now = sim.now();
                sim.lac().end_switched(now, sid[&1], "PADT from the client");
            }
            sim.run_for(Duration::from_millis(1));
        }
        sim.run_for(Duration::from_secs(20));
        for p in [2, 3] {
            assert!(
                sim.ppp_lossless(p),
                "{loss_ppm}: call {p}: {:?}",
                sim.ppp_got.get(&(p, true)).map(|g| g.len())
            );
        }
        // The LNS: call 1 ended, call 3 moved (PPP re-bound, same address), never a
        // second call (that would be a new PPP negotiation).
        let ev = &sim.ppp_events;
        assert_eq!(ev.len(), 5, "{loss_ppm}: {ev:?}");
        assert_eq!(ev[3], "ended 0");
        let (mover, stays, n) = if ev[4].starts_with("moved 4 ") {
            (3, 2, 4)
        } else {
            assert!(ev[4].starts_with("moved 2 "), "{ev:?}");
            (2, 3, 2)
        };
        let (&lns_now, c) = sim.ppp_calls.iter().find(|c| c.1.0 == n).unwrap();
        assert_eq!(c.1, addresses[(n / 2 - 1) as usize], "same address");
        assert_eq!(sim.lns_table().get(lns_now).unwrap().spec.subscriber, c.1);
        assert_eq!(sim.lns().stats().moves_done, 1);
        // The LAC: one tunnel left, the gateway told of the move.
        assert_eq!(
            sim.tunnels_per_customer().get("acme"),
            Some(&1),
            "{loss_ppm}"
        );
        assert!(sim.lac().is_settled());
        let moved: Vec<_> = sim
            .switch_events
            .iter()
            .filter_map(|e| match e {
                L2tpOutput::SwitchMoved { from, to, .. } => Some((*from, *to)),
                _ => None,
            })
            .collect();
        assert_eq!(moved.len(), 1, "{loss_ppm}");
        assert_eq!(moved[0].0, sid[&mover]);
        let now3 = moved[0].1;
        let t2 = sim.lac().sessions()[&sid[&stays]].tunnel;
        assert_eq!(sim.lac().sessions()[&now3].tunnel, t2);
        let ended: Vec<_> = sim
            .switch_events
            .iter()
            .filter_map(|e| match e {
                L2tpOutput::SwitchEnded { session, .. } => Some(*session),
                _ => None,
            })
            .collect();
        assert_eq!(ended, [sid[&1]], "only call 1 ended");
        assert_eq!(sim.lac().stats().moves_done, 1);
        assert_eq!(sim.lac().stats().moves_failed, 0);
        // Every frame the LAC switched up for the moved call, before and after the move.
        let c = sim.lac().call_counters(now3);
        assert_eq!(c.encap_packets, 4000, "{loss_ppm}: {c:?}");
        assert_eq!(c.encap_bytes, 4000 * 100);
    }
}

#[test]
fn shutdown_records_every_tunnel_and_ends_every_level() {
    let mut sim = Sim::new(
        lac_settings(4, caps(4, 0), &[("acme", true)]),
        lns_settings(),
    );
    open(&mut sim, 0, "acme", M);
    open(&mut sim, 1, "acme", 2 * M);
    sim.run_for(Duration::from_secs(3));
    let now = sim.now();
    sim.lac().shutdown(now);
    sim.run_for(Duration::from_secs(1));
    let r = sim.lac_records();
    let tunnels = r.iter().filter(|r| matches!(r, Record::Tunnel(_))).count();
    let (starts, stops) = r.iter().fold((0, 0), |(a, b), r| match r {
        Record::Bandwidth(x) if x.reason == "start" => (a + 1, b),
        Record::Bandwidth(x) if x.reason == "stop" && x.bps == 0 => (a, b + 1),
        _ => (a, b),
    });
    assert_eq!((tunnels, starts, stops), (1, 2, 2));
    assert!(sim.lac().subscribers().is_empty());
    assert!(
        sim.lns()
            .tunnels()
            .values()
            .all(|t| t.state != TunnelState::Established)
    );
}

/// Issue 12 item 13: tunnel ids and Challenges come from the ChaCha20 CSPRNG keyed with
/// the settings' seed (32 bytes from the OS in the daemon), not from a 64-bit xorshift:
/// the SCCRQ carries exactly the generator's first outputs.
#[test]
fn tunnel_ids_and_challenges_come_from_the_csprng() {
    let s = lac_settings(4, caps(4, 0), &[("acme", true)]);
    let mut expect = crate::random::Random::new(&s.seed);
    let now = Instant(1_000_000_000);
    let lac_fwd = fwd((Ipv4Addr::new(10, 10, 0, 1), 24), (LAC_LINE, 24));
    let mut lac = L2tp::new(now, s, lac_fwd, WallClock::UNIX);
    lac.open(
        now,
        ChannelRequest {
            address: sub(0),
            customer: "acme".into(),
            user: "u".into(),
            level: M,
        },
    )
    .unwrap();
    lac.tick(now);
    let sccrq = std::iter::from_fn(|| lac.poll_output())
        .find_map(|o| match o {
            L2tpOutput::Send { bytes, .. } => Some(bytes),
            _ => None,
        })
        .expect("an SCCRQ");
    let m = wire::decode(&sccrq, Some(b"tunnel secret")).unwrap();
    assert_eq!(m.kind(), wire::kind::SCCRQ);
    let mut id = 0;
    while id == 0 {
        id = expect.u64() as u16;
    }
    assert_eq!(m.u16(wire::attr::ASSIGNED_TUNNEL_ID), Some(id));
    let challenge = expect.bytes16();
    assert_eq!(m.get(wire::attr::CHALLENGE).unwrap().value, challenge);
}

/// Runs the sim in 50 ms steps until `f` holds (at most `limit`); returns how long.
fn run_until_true(sim: &mut Sim, limit: Duration, mut f: impl FnMut(&mut Sim) -> bool) -> Duration {
    let start = sim.now();
    while !f(sim) {
        assert!(sim.now().since(start) < limit, "not within {limit:?}");
        sim.run_for(Duration::from_millis(50));
    }
    sim.now().since(start)
}

fn lac_carries(sim: &mut Sim, i: u8) -> bool {
    let lac = sim.lac();
    let Ok(id) = lac.find(&sub(i).to_string()) else {
        return false;
    };
    let o = &lac.subscribers()[&id];
    o.session
        .is_some_and(|s| lac.sessions()[&s].state == SessionState::Established)
}

/// Issue 12 item 21: the StopCCN of a shutdown reaches the peer (which clears the
/// tunnel and its sessions, in its fast path too), and `shutdown_done` says when it was
/// acknowledged, so the shell can stop the workers then and not before.
#[test]
fn shutdown_sends_stopccn_and_says_when_it_is_acknowledged() {
    let mut sim = Sim::new(
        lac_settings(4, caps(4, 0), &[("acme", true)]),
        lns_settings(),
    );
    open(&mut sim, 0, "acme", M);
    open(&mut sim, 1, "acme", M);
    sim.run_for(Duration::from_secs(1));
    assert!(sim.settled());
    assert_eq!(sim.lns_table().len(), 2);
    assert!(sim.lac().shutdown_done(), "nothing to wait for yet");
    let now = sim.now();
    sim.lac().shutdown(now);
    assert!(
        !sim.lac().shutdown_done(),
        "the StopCCN is not acknowledged yet"
    );
    let took = run_until_true(&mut sim, Duration::from_secs(1), |s| {
        s.lac().shutdown_done()
    });
    // The LNS's ZLB waits ack_delay (100 ms) for a message to ride on; no retransmission.
    assert!(took < Duration::from_millis(500), "{took:?}");
    let t = sim.lns().tunnels().values().next().unwrap();
    assert_eq!(t.state.name(), "closed");
    assert_eq!(
        t.stop_reason.as_deref(),
        Some("StopCCN: result 6 error 0 (shutting down)")
    );
    assert!(sim.lns().sessions().is_empty());
    assert_eq!(sim.lns_table().len(), 0, "the LNS's fast path cleared");
    // A peer that never answers: not done until the StopCCN's retransmissions end.
    let mut sim = Sim::new(
        lac_settings(4, caps(4, 0), &[("acme", true)]),
        lns_settings(),
    );
    open(&mut sim, 0, "acme", M);
    sim.run_for(Duration::from_secs(1));
    sim.loss_ppm = 1_000_000;
    let now = sim.now();
    sim.lac().shutdown(now);
    sim.run_for(Duration::from_secs(5));
    assert!(!sim.lac().shutdown_done());
    // Nothing new is opened while shutting down.
    let now = sim.now();
    assert!(
        sim.lac()
            .open(
                now,
                ChannelRequest {
                    address: sub(5),
                    customer: "acme".into(),
                    user: "late".into(),
                    level: M,
                }
            )
            .is_ok()
    );
    sim.run_for(Duration::from_secs(1));
    assert_eq!(
        sim.lac().tunnels().len(),
        1,
        "no tunnel opened after shutdown"
    );
}

/// Issue 12 item 21: `tunnel session remove` on an LNS ends a session a LAC opened, by
/// subscriber address or session id, with a CDN; unknown keys are an error.
#[test]
fn an_lns_removes_a_session_by_address_or_id() {
    let mut sim = Sim::new(
        lac_settings(4, caps(4, 0), &[("acme", true)]),
        lns_settings(),
    );
    open(&mut sim, 0, "acme", M);
    open(&mut sim, 1, "acme", M);
    sim.run_for(Duration::from_secs(1));
    assert!(sim.settled());
    let now = sim.now();
    let r = sim.lns().remove(now, &sub(0).to_string()).unwrap();
    let Removed::Session { session, .. } = r else {
        panic!("{r:?}")
    };
    sim.run_for(Duration::from_micros(1));
    assert!(
        sim.lns_table().get(session).is_none(),
        "out of the fast path at once"
    );
    sim.run_for(Duration::from_millis(100));
    assert!(!lac_carries(&mut sim, 0), "the LAC got the CDN");
    assert!(lac_carries(&mut sim, 1));
    let by_id = sim
        .lns()
        .sessions()
        .values()
        .find(|s| s.subscriber == sub(1))
        .unwrap()
        .id;
    let now = sim.now();
    assert!(matches!(
        sim.lns().remove(now, &by_id.to_string()),
        Ok(Removed::Session { session, .. }) if session == by_id
    ));
    let now = sim.now();
    let e = sim.lns().remove(now, "10.99.0.1").unwrap_err();
    assert!(e.contains("no session a LAC opened"), "{e}");
    sim.run_for(Duration::from_millis(100));
    assert!(sim.lns().sessions().is_empty());
}

/// Issue 12 item 21: a LAC whose peer closes each session soon after it comes up dials
/// again after 10, 20, 40, 80, 80 s (redial doubled, capped at redial_max), not every
/// 10 s; a session that stays up for redial_max starts the count again.
#[test]
fn redial_backs_off_exponentially_to_a_cap() {
    let mut lac = lac_settings(4, caps(4, 0), &[("acme", true)]);
    lac.redial_max = Duration::from_secs(80);
    let mut sim = Sim::new(lac, lns_settings());
    open(&mut sim, 0, "acme", M);
    run_until_true(&mut sim, Duration::from_secs(2), |s| lac_carries(s, 0));
    let mut waits = Vec::new();
    for _ in 0..5 {
        sim.run_for(Duration::from_secs(1));
        let now = sim.now();
        sim.lns().remove(now, &sub(0).to_string()).unwrap();
        run_until_true(&mut sim, Duration::from_secs(1), |s| !lac_carries(s, 0));
        let w = run_until_true(&mut sim, Duration::from_secs(200), |s| lac_carries(s, 0));
        waits.push(w.as_secs());
    }
    assert_eq!(waits, [10, 20, 40, 80, 80]);
    assert_eq!(sim.lac().stats().redials, 5);
    // Up for redial_max: the next failure waits the base time again.
    sim.run_for(Duration::from_secs(80));
    let now = sim.now();
    sim.lns().remove(now, &sub(0).to_string()).unwrap();
    run_until_true(&mut sim, Duration::from_secs(1), |s| !lac_carries(s, 0));
    let w = run_until_true(&mut sim, Duration::from_secs(200), |s| lac_carries(s, 0));
    assert_eq!(w.as_secs(), 10);
}

/// An SCCRQ from `peer_tunnel`, as a LAC sends it first (Ns 0).
fn sccrq(peer_tunnel: u16) -> Vec<u8> {
    let mut b = Builder::new(kind::SCCRQ, 0, 0)
        .u16(true, attr::PROTOCOL_VERSION, 0x0100)
        .avp(true, 0, attr::HOST_NAME, b"flood")
        .u32(true, attr::FRAMING_CAPABILITIES, 3)
        .u16(true, attr::ASSIGNED_TUNNEL_ID, peer_tunnel)
        .finish();
    wire::set_sequence(&mut b, 0, 0);
    b
}

/// Issue 12 item 14: 20 000 SCCRQs made 19 732 tunnels. The tunnel table is bounded by
/// `max_tunnels` (default 1024); each SCCRQ beyond is answered with a StopCCN (result 2,
/// error 4: insufficient resources) that keeps no state, and counted.
#[test]
fn tunnels_beyond_max_tunnels_are_refused_and_counted() {
    let mut s = Settings::new("lns", Seed::fixed([3; 32]));
    s.accept = true;
    let max = s.max_tunnels as usize;
    assert_eq!(max, 1024);
    let lns_fwd = fwd((LNS_LINE, 24), (Ipv4Addr::new(192, 0, 2, 1), 24));
    let now = Instant(1_000_000_000);
    let mut lns = L2tp::new(now, s, lns_fwd, WallClock::UNIX);
    let peer = SocketAddrV4::new(LAC_LINE, 1701);
    let mut refusals = 0;
    for i in 0..20_000u32 {
        let peer_tunnel = (i % 65_535 + 1) as u16;
        lns.on_datagram(now, peer, LNS_LINE, &sccrq(peer_tunnel));
        while let Some(o) = lns.poll_output() {
            if let L2tpOutput::Send { bytes, .. } = o {
                let m = wire::decode(&bytes, None).unwrap();
                if m.kind() == kind::STOPCCN {
                    refusals += 1;
                    assert_eq!(m.tunnel, peer_tunnel);
                    assert_eq!((m.ns, m.nr), (0, 1));
                    let r = m.result_code().unwrap();
                    assert_eq!((r.result, r.error), (2, Some(4)), "{r}");
                }
            }
        }
    }
    assert_eq!(lns.tunnels().len(), max);
    let st = lns.stats();
    assert_eq!(st.tunnel_limit, 20_000 - max as u64);
    assert_eq!(st.tunnels_refused, 20_000 - max as u64);
    assert_eq!(refusals, 20_000 - max);
}

/// Issue 12 item 14: a session beyond `max_sessions` is refused with a CDN (result 4,
/// error 4) and counted, on the LNS; the LAC's subscriber waits and dials again.
#[test]
fn sessions_beyond_max_sessions_are_refused_and_counted() {
    let mut lns = lns_settings();
    lns.max_sessions = 2;
    let mut sim = Sim::new(lac_settings(4, caps(4, 0), &[("acme", true)]), lns);
    for i in 0..3 {
        open(&mut sim, i, "acme", M);
    }
    sim.run_for(Duration::from_secs(1));
    assert_eq!(sim.lns().sessions().len(), 2);
    assert_eq!(sim.lns().stats().session_limit, 1);
    let carried = (0..3).filter(|i| lac_carries(&mut sim, *i)).count();
    assert_eq!(carried, 2);
    let waiting = sim
        .lac()
        .subscribers()
        .values()
        .find(|o| o.session.is_none())
        .unwrap();
    assert_eq!(waiting.failures, 1);
    assert!(waiting.retry_at.is_some());
}

/// A LAC whose line lists `first` (nobody answers there) before the LNS: its customer
/// `acme` places switched calls on it.
fn failover_settings(first: Ipv4Addr, more: &[Ipv4Addr]) -> Settings {
    let mut lac = lac_settings(2, caps(4, 0), &[("acme", true)]);
    let line = &mut lac.lines[0];
    line.peer = first;
    line.fallback = more
        .iter()
        .map(|a| std::net::SocketAddrV4::new(*a, 1701))
        .collect();
    lac
}

/// Issue 15 item 2: a customer's line lists its LNSes by preference. The first does not
/// answer SCCRQ: after the retransmissions (1+2+4+8+8+8 s) its tunnel is given up, the
/// line goes on to the second LNS, and both calls waiting in that tunnel are placed in
/// a tunnel to it, the gateway told their new session ids; no call ends, PPP comes up
/// at the second LNS, and later tunnels of the line go there too.
#[test]
fn a_customers_calls_fail_over_to_the_lines_next_lns() {
    let dead = Ipv4Addr::new(172, 16, 0, 9);
    let mut sim = Sim::new(failover_settings(dead, &[LNS_LINE]), lns_settings());
    let mut first = Vec::new();
    for p in 1..=2u16 {
        let now = sim.now();
        first.push(
            sim.lac()
                .switch_call_placed(now, "acme", M, ppp_call(p))
                .unwrap(),
        );
    }
    let t0 = sim.lac().sessions()[&first[0]].tunnel;
    assert_eq!(
        sim.lac().tunnels()[&t0].peer,
        std::net::SocketAddrV4::new(dead, 1701)
    );
    sim.run_for(Duration::from_secs(20));
    assert!(
        sim.ppp_events.is_empty(),
        "nothing up before the first LNS is given up"
    );
    assert_eq!(sim.lac().stats().lns_failovers, 0);
    sim.run_for(Duration::from_secs(20));
    // SCCRQ and its 5 retransmissions, all to the first LNS; nothing else went there.
    assert_eq!(sim.unanswered, 6);
    let st = sim.lac().stats();
    assert_eq!((st.tunnels_dead, st.lns_failovers), (1, 1), "{st:?}");
    assert_eq!(sim.ppp_events, ["up 0", "up 2"]);
    let moved: BTreeMap<u16, u16> = sim
        .switch_events
        .iter()
        .filter_map(|e| match e {
            L2tpOutput::SwitchMoved { from, to, .. } => Some((*from, *to)),
            _ => None,
        })
        .collect();
    assert_eq!(moved.keys().copied().collect::<Vec<_>>(), {
        let mut f = first.clone();
        f.sort_unstable();
        f
    });
    let up: Vec<u16> = sim
        .switch_events
        .iter()
        .filter_map(|e| match e {
            L2tpOutput::Switched { session, .. } => Some(*session),
            L2tpOutput::SwitchEnded { .. } => panic!("no call ends: {e:?}"),
            _ => None,
        })
        .collect();
    let mut want: Vec<u16> = moved.values().copied().collect();
    want.sort_unstable();
    let mut up = up;
    up.sort_unstable();
    assert_eq!(up, want, "each call up once, under its new id");
    let lac = sim.lac();
    // (Session ids are reused, lowest first: a new id may be another call's old one.)
    assert_eq!(lac.sessions().len(), 2);
    for to in moved.values() {
        let t = lac.sessions()[to].tunnel;
        assert_eq!(
            lac.tunnels()[&t].peer,
            std::net::SocketAddrV4::new(LNS_LINE, 1701)
        );
        assert_eq!(lac.tunnels()[&t].state, TunnelState::Established);
    }
    assert!(lac.subscribers().values().all(|o| o.lns_failures == 1));
    assert!(lac.is_settled());
    // A later call goes straight to the second LNS.
    let now = sim.now();
    let third = sim
        .lac()
        .switch_call_placed(now, "acme", M, ppp_call(3))
        .unwrap();
    sim.run_for(Duration::from_secs(2));
    let t = sim.lac().sessions()[&third].tunnel;
    assert_eq!(
        sim.lac().tunnels()[&t].peer,
        std::net::SocketAddrV4::new(LNS_LINE, 1701)
    );
    assert_eq!(sim.ppp_events.len(), 3);
    assert_eq!(sim.unanswered, 6);
}

/// No LNS of the line answers: the call is tried on each once, then ends (the gateway
/// sends PADT) under the id it was last told; the line is back at its first LNS.
#[test]
fn a_call_ends_when_no_lns_of_its_lines_answers() {
    let (a, b) = (Ipv4Addr::new(172, 16, 0, 8), Ipv4Addr::new(172, 16, 0, 9));
    let mut sim = Sim::new(failover_settings(a, &[b]), lns_settings());
    let now = sim.now();
    let sid = sim
        .lac()
        .switch_call_placed(now, "acme", M, ppp_call(1))
        .unwrap();
    sim.run_for(Duration::from_secs(80));
    assert_eq!(sim.unanswered, 12, "6 to each LNS");
    assert_eq!(sim.lac().stats().lns_failovers, 2);
    // The call is moved (re-keyed; the new session may reuse the freed id) once, then
    // ends under the id the move told the gateway.
    let ev = &sim.switch_events;
    assert_eq!(ev.len(), 2, "{ev:?}");
    let L2tpOutput::SwitchMoved { from, to, .. } = ev[0] else {
        panic!("first a move: {ev:?}");
    };
    assert_eq!(from, sid);
    assert!(
        matches!(ev[1], L2tpOutput::SwitchEnded { session, was_up: false, .. } if session == to),
        "then the end of the moved call: {ev:?}"
    );
    assert!(sim.lac().subscribers().is_empty());
    assert!(sim.lac().sessions().is_empty());
    assert!(sim.ppp_events.is_empty());
}
