//! The L2TP commands of the control socket: `show tunnels` (the administration table:
//! lines, customers, tunnels), `show tunnel ID` (one tunnel, its control connection and
//! its sessions), and `tunnel session remove|level` (switched PPP calls on a LAC,
//! calls a LAC opened on an LNS). docs/ctl.md shows the JSON; the answers are
//! [`proto::Tunnels`] and [`proto::TunnelDetail`].

use tollgate_dataplane::time::Instant;

use tollgate_control_core::l2tp::{L2tp, Removed, Role, SessionState};

use crate::ctl::render::{Cell, table};
use crate::proto::{self, Reply, Request};

fn off() -> Reply {
    Reply::error("L2TP is off: set [l2tp] enabled = true")
}

/// Carries out a `tunnel session ...` command; `None` if `req` is not one.
pub fn change(req: &Request, l2tp: Option<&mut L2tp>, now: Instant) -> Option<Reply> {
    if !matches!(
        req,
        Request::TunnelSessionRemove(_) | Request::TunnelSessionLevel(_)
    ) {
        return None;
    }
    let Some(l) = l2tp else {
        return Some(off());
    };
    Some(match req {
        Request::TunnelSessionRemove(k) => Reply::of(l.remove(now, &k.session).map(|r| match r {
            Removed::Subscriber(id) => proto::TunnelRemoved::Subscriber { session: id },
            Removed::Session { session, tunnel } => proto::TunnelRemoved::Session {
                session,
                tunnel,
                role: "lns".into(),
            },
        })),
        Request::TunnelSessionLevel(k) => Reply::of((|| {
            let level = k.level.ok_or("give the level, e.g. \"5M\"")?.0;
            let id = l.set_level(now, &k.session, level)?;
            Ok(proto::TunnelLevel { session: id, level })
        })()),
        _ => return None,
    })
}

/// Answers `show tunnels` and `show tunnel`; `None` if `req` is neither.
pub fn show(req: &Request, l2tp: Option<&L2tp>, now: Instant) -> Option<Reply> {
    match req {
        Request::ShowTunnels => Some(l2tp.map_or_else(off, |l| Reply::with(&tunnels(l, now)))),
        Request::ShowTunnel(a) => Some(match l2tp {
            None => off(),
            Some(l) => match tunnel(l, a.tunnel, now) {
                Some(v) => Reply::with(&v),
                None => Reply::error(format!("no tunnel {}", a.tunnel)),
            },
        }),
        _ => None,
    }
}

/// The administration table (TUN-2): lines, customers with the tunnels and lines they
/// use now (TUN-5), tunnels with their load, subscribers waiting for a tunnel.
pub fn tunnels(l: &L2tp, now: Instant) -> proto::Tunnels {
    let s = l.settings();
    let live = |t: &&tollgate_control_core::l2tp::Tunnel| t.state.live();
    let lines = s
        .lines
        .iter()
        .enumerate()
        .map(|(i, ln)| proto::Line {
            line: ln.name.clone(),
            peer: format!("{}:{}", ln.peer, ln.peer_port),
            tunnels: l
                .tunnels()
                .values()
                .filter(live)
                .filter(|t| t.line == Some(i))
                .count() as u64,
            max_tunnels: ln.tunnels.into(),
            tunnel_sessions: ln.capacity.sessions.into(),
            tunnel_bandwidth: ln.capacity.bandwidth,
        })
        .collect();
    let customers = s
        .customers
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mine: Vec<&tollgate_control_core::l2tp::Tunnel> = l
                .tunnels()
                .values()
                .filter(live)
                .filter(|t| t.customer == Some(i))
                .collect();
            let mut lines: Vec<usize> = mine.iter().filter_map(|t| t.line).collect();
            lines.sort_unstable();
            lines.dedup();
            proto::Customer {
                customer: c.name.clone(),
                account: c.account.clone(),
                consolidate: c.consolidate,
                tunnels: mine.len() as u64,
                lines: lines.len() as u64,
                sessions: l.subscribers().values().filter(|o| o.customer == i).count() as u64,
            }
        })
        .collect();
    let list = l
        .tunnels()
        .values()
        .map(|t| tunnel_row(l, t, now))
        .collect();
    let waiting = l
        .subscribers()
        .values()
        .filter(|o| o.session.is_none())
        .map(|o| proto::Waiting {
            call: o.id,
            address: o.address.to_string(),
            user: o.user.clone(),
            state: if o.moving_to.is_some() {
                "connecting"
            } else {
                "waiting"
            }
            .into(),
            failures: o.failures.into(),
            retry_in_ms: o.retry_at.map(|t| t.since(now).as_millis() as u64),
        })
        .collect();
    let st = l.stats();
    proto::Tunnels {
        host_name: s.host_name.clone(),
        accept: s.accept,
        settled: l.is_settled(),
        lines,
        customers,
        tunnels: list,
        waiting,
        stats: proto::L2tpStats {
            received: st.received,
            malformed: st.malformed,
            unknown_tunnel: st.unknown_tunnel,
            wrong_peer: st.wrong_peer,
            tunnels_refused: st.tunnels_refused,
            tunnel_limit: st.tunnel_limit,
            session_limit: st.session_limit,
            redials: st.redials,
            auth_failures: st.auth_failures,
            unexpected: st.unexpected,
            unknown_mandatory: st.unknown_mandatory,
            tunnels_up: st.tunnels_up,
            tunnels_down: st.tunnels_down,
            tunnels_dead: st.tunnels_dead,
            lns_failovers: st.lns_failovers,
            sessions_up: st.sessions_up,
            sessions_down: st.sessions_down,
            moves_started: st.moves_started,
            moves_done: st.moves_done,
            moves_failed: st.moves_failed,
            consolidation_off: st.consolidation_off,
            ip_calls_refused: st.ip_calls_refused,
            level_changes: st.level_changes,
            fast_path_refused: st.fast_path_refused,
        },
    }
}

fn tunnel_row(l: &L2tp, t: &tollgate_control_core::l2tp::Tunnel, now: Instant) -> proto::TunnelRow {
    let sessions: Vec<&tollgate_control_core::l2tp::Session> = t
        .sessions
        .iter()
        .filter_map(|s| l.sessions().get(s))
        .filter(|s| s.state != SessionState::Closing)
        .collect();
    proto::TunnelRow {
        tunnel: t.id,
        peer_tunnel: t.peer_id,
        role: match t.role {
            Role::Lac => "lac",
            Role::Lns => "lns",
        }
        .into(),
        state: t.state.name().into(),
        peer: t.peer.to_string(),
        local: t.local.to_string(),
        peer_host: t.peer_host.clone(),
        line: t
            .line
            .and_then(|i| l.settings().lines.get(i))
            .map(|ln| ln.name.clone()),
        customer: (!t.customer_name.is_empty()).then(|| t.customer_name.clone()),
        sessions: sessions.len() as u64,
        max_sessions: t.capacity.sessions.into(),
        bandwidth: sessions.iter().map(|s| s.level).sum::<u64>(),
        max_bandwidth: t.capacity.bandwidth,
        age_s: now.since(t.created).as_secs(),
        stop_reason: t.stop_reason.clone(),
        consolidation: match (t.role, t.customer) {
            (Role::Lac, Some(_)) if t.peer_id == 0 => "pending".into(),
            (Role::Lac, Some(_)) if t.peer_is_tollgate() => "on".into(),
            (Role::Lac, Some(_)) => "off: the LNS is not a Tollgate".into(),
            _ => "-".into(),
        },
    }
}

/// One tunnel with its control connection and sessions.
pub fn tunnel(l: &L2tp, id: u16, now: Instant) -> Option<proto::TunnelDetail> {
    let t = l.tunnels().get(&id)?;
    let (ns, nr) = t.chan.sequence();
    let c = t.chan.stats;
    Some(proto::TunnelDetail {
        row: tunnel_row(l, t, now),
        control: proto::ControlChannel {
            ns,
            nr,
            unacked: t.chan.unacked() as u64,
            peer_window: t.chan.peer_window().into(),
            sent: c.sent,
            retransmits: c.retransmits,
            zlbs: c.zlbs,
            delivered: c.delivered,
            duplicates: c.duplicates,
            reordered: c.reordered,
            idle_s: now.since(t.last_rx).as_secs(),
            established_s: t.established.map(|e| now.since(e).as_secs()),
        },
        session_list: t
            .sessions
            .iter()
            .filter_map(|s| l.sessions().get(s))
            .map(|s| {
                let owner = s.owner.and_then(|o| l.subscribers().get(&o));
                proto::TunnelSession {
                    session: s.id,
                    call: owner.map(|o| o.id),
                    peer_session: s.peer_id,
                    state: s.state.name().into(),
                    subscriber: (!s.subscriber.is_unspecified()).then(|| s.subscriber.to_string()),
                    user: owner.map(|o| o.user.clone()),
                    level: s.level,
                    rate_bps: owner.map(|o| o.tracker.rate),
                    replaces: s.replaces,
                    encap_packets: s.counters.encap_packets,
                    encap_bytes: s.counters.encap_bytes,
                    decap_packets: s.counters.decap_packets,
                    decap_bytes: s.counters.decap_bytes,
                    age_s: now.since(s.created).as_secs(),
                }
            })
            .collect(),
    })
}

const TUNNEL_HEADS: [&str; 12] = [
    "TUNNEL", "PEER-ID", "ROLE", "STATE", "PEER", "LINE", "CUSTOMER", "SESS", "MAX", "BW",
    "MAX-BW", "AGE-S",
];

fn tunnel_cells(t: &proto::TunnelRow) -> Vec<String> {
    vec![
        t.tunnel.cell(),
        t.peer_tunnel.cell(),
        t.role.cell(),
        t.state.cell(),
        t.peer.cell(),
        t.line.cell(),
        t.customer.cell(),
        t.sessions.cell(),
        t.max_sessions.cell(),
        t.bandwidth.cell(),
        t.max_bandwidth.cell(),
        t.age_s.cell(),
    ]
}

/// `show tunnels` for a terminal.
pub fn render_tunnels(data: &proto::Tunnels) -> String {
    let mut out = String::new();
    out += &table(
        &["LINE", "PEER", "TUNNELS", "MAX", "SESS/TUNNEL", "BW/TUNNEL"],
        &data
            .lines
            .iter()
            .map(|l| {
                vec![
                    l.line.cell(),
                    l.peer.cell(),
                    l.tunnels.cell(),
                    l.max_tunnels.cell(),
                    l.tunnel_sessions.cell(),
                    l.tunnel_bandwidth.cell(),
                ]
            })
            .collect::<Vec<_>>(),
    );
    out += "\n";
    out += &table(
        &[
            "CUSTOMER",
            "ACCOUNT",
            "CONSOLIDATE",
            "SESSIONS",
            "TUNNELS",
            "LINES",
        ],
        &data
            .customers
            .iter()
            .map(|c| {
                vec![
                    c.customer.cell(),
                    c.account.cell(),
                    c.consolidate.cell(),
                    c.sessions.cell(),
                    c.tunnels.cell(),
                    c.lines.cell(),
                ]
            })
            .collect::<Vec<_>>(),
    );
    out += "\n";
    out += &table(
        &TUNNEL_HEADS,
        &data.tunnels.iter().map(tunnel_cells).collect::<Vec<_>>(),
    );
    if !data.waiting.is_empty() {
        out += "\n";
        out += &table(
            &["CALL", "WAITING", "USER", "STATE"],
            &data
                .waiting
                .iter()
                .map(|w| {
                    vec![
                        w.call.cell(),
                        w.address.cell(),
                        w.user.cell(),
                        w.state.cell(),
                    ]
                })
                .collect::<Vec<_>>(),
        );
    }
    out
}

/// `show tunnel` for a terminal.
pub fn render_tunnel(data: &proto::TunnelDetail) -> String {
    let mut out = table(&TUNNEL_HEADS, &[tunnel_cells(&data.row)]);
    let c = &data.control;
    out += &format!(
        "\ncontrol: delivered={} duplicates={} established_s={} idle_s={} nr={} ns={} peer_window={} reordered={} retransmits={} sent={} unacked={} zlbs={}\n\n",
        c.delivered,
        c.duplicates,
        c.established_s.cell(),
        c.idle_s,
        c.nr,
        c.ns,
        c.peer_window,
        c.reordered,
        c.retransmits,
        c.sent,
        c.unacked,
        c.zlbs
    );
    out += &table(
        &[
            "SESSION",
            "CALL",
            "PEER-ID",
            "STATE",
            "SUBSCRIBER",
            "USER",
            "LEVEL",
            "RATE",
            "ENCAP-PKTS",
            "DECAP-PKTS",
            "AGE-S",
        ],
        &data
            .session_list
            .iter()
            .map(|s| {
                vec![
                    s.session.cell(),
                    s.call.cell(),
                    s.peer_session.cell(),
                    s.state.cell(),
                    s.subscriber.cell(),
                    s.user.cell(),
                    s.level.cell(),
                    s.rate_bps.cell(),
                    s.encap_packets.cell(),
                    s.decap_packets.cell(),
                    s.age_s.cell(),
                ]
            })
            .collect::<Vec<_>>(),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use tollgate_control_core::l2tp::consolidate::Capacity;
    use tollgate_control_core::l2tp::sim::{Sim, lac_settings, lns_settings, sub};

    #[test]
    fn show_and_change_through_requests() {
        let mut sim = Sim::new(
            lac_settings(
                2,
                Capacity {
                    sessions: 4,
                    bandwidth: 0,
                },
                &[("acme", true)],
            ),
            lns_settings(),
        );
        let now = sim.now();
        // Placed by the engine's test-only entry (the IP mode has no command any more).
        let req = tollgate_control_core::l2tp::ChannelRequest {
            address: sub(1),
            customer: "acme".into(),
            user: sub(1).to_string(),
            level: 3_000_000,
        };
        sim.lac().open(now, req).unwrap();
        let lvl = Request::TunnelSessionLevel(proto::TunnelKey {
            session: sub(1).to_string(),
            level: Some(crate::config::Rate(2_000_000)),
        });
        let r = change(&lvl, Some(sim.lac()), now).unwrap();
        assert!(r.ok, "{r:?}");
        assert_eq!(r.data["level"], 2_000_000);
        let bad = Request::TunnelSessionLevel(proto::TunnelKey {
            session: "10.10.0.99".into(),
            level: Some(crate::config::Rate(2_000_000)),
        });
        assert!(
            change(&bad, Some(sim.lac()), now)
                .unwrap()
                .error
                .unwrap()
                .contains("10.10.0.99")
        );
        sim.run_for(std::time::Duration::from_secs(1));
        let now = sim.now();
        let v = tunnels(sim.lac(), now);
        assert_eq!(v.customers[0].tunnels, 1);
        assert_eq!(v.customers[0].lines, 1);
        assert_eq!(v.tunnels[0].state, "established");
        assert_eq!(v.tunnels[0].sessions, 1);
        let id = v.tunnels[0].tunnel;
        let one = tunnel(sim.lac(), id, now).unwrap();
        assert_eq!(
            one.session_list[0].subscriber.as_deref(),
            Some(sub(1).to_string().as_str())
        );
        assert_eq!(one.session_list[0].state, "established");
        let text = render_tunnels(&v);
        assert!(text.contains("acme") && text.contains("line1"), "{text}");
        let text = render_tunnel(&one);
        assert!(
            text.contains("SUBSCRIBER") && text.contains("10.10.0.21"),
            "{text}"
        );
        let req = Request::ShowTunnel(proto::TunnelArg { tunnel: 1 });
        let r = show(&req, Some(sim.lac()), now).unwrap();
        assert!(!r.ok || id == 1);
        let req = Request::ShowTunnels;
        assert!(
            show(&req, None, now)
                .unwrap()
                .error
                .unwrap()
                .contains("L2TP is off")
        );
        let rm = Request::TunnelSessionRemove(proto::TunnelKey {
            session: sub(1).to_string(),
            level: None,
        });
        assert!(change(&rm, Some(sim.lac()), now).unwrap().ok);
        assert!(change(&rm, Some(sim.lac()), now).unwrap().error.is_some());
    }

    /// The id `tunnel session level` takes is printed: `show tunnel ID` gives each
    /// switched PPP call's `call` (the administration table's id, a CALL column in the
    /// table), and that id changes the call's level, which `show tunnel` then shows.
    #[test]
    fn show_tunnel_prints_the_call_id_that_tunnel_session_level_takes() {
        use tollgate_control_core::l2tp::lac::SwitchedCall;
        use tollgate_control_core::ppp::{ProxyAuth, ProxyAuthType, ProxyRecord};
        use tollgate_dataplane::MacAddr;
        use tollgate_dataplane::l2tp::PppoeLeg;

        let mut sim = Sim::new(
            lac_settings(
                2,
                Capacity {
                    sessions: 4,
                    bandwidth: 0,
                },
                &[("acme", true)],
            ),
            lns_settings(),
        );
        let mut sids = Vec::new();
        for p in 1..=2u16 {
            let call = SwitchedCall {
                pppoe: PppoeLeg {
                    session: p,
                    client: MacAddr([2, 0, 0, 0, 9, p as u8]),
                    vlans: Default::default(),
                    mss_clamp: 0,
                },
                proxy: ProxyRecord {
                    lcp: Default::default(),
                    auth: ProxyAuth {
                        kind: ProxyAuthType::Pap,
                        name: format!("user{p}@isp.example").into_bytes(),
                        challenge: Vec::new(),
                        id: 1,
                        response: b"secret".to_vec(),
                    },
                },
                calling_number: format!("access0.10.{p}"),
                speed: 1_000_000_000,
                circuit_id: None,
                remote_id: None,
            };
            let now = sim.now();
            sids.push(
                sim.lac()
                    .switch_call_placed(now, "acme", 1_000_000, call)
                    .unwrap(),
            );
        }
        sim.run_for(std::time::Duration::from_secs(2));
        let now = sim.now();
        let v = tunnels(sim.lac(), now);
        assert_eq!(v.tunnels.len(), 1, "{v:?}");
        let id = v.tunnels[0].tunnel;
        let one = tunnel(sim.lac(), id, now).unwrap();
        assert_eq!(one.session_list.len(), 2);
        let second = one
            .session_list
            .iter()
            .find(|s| s.user.as_deref() == Some("user2@isp.example"))
            .unwrap();
        assert_eq!(second.session, sids[1]);
        let call = second.call.expect("a LAC's call has its id");
        let first = one.session_list.iter().find(|s| s.session == sids[0]);
        assert_ne!(first.unwrap().call, Some(call), "ids are the calls' own");
        let text = render_tunnel(&one);
        let row = text
            .lines()
            .find(|l| l.contains("user2@isp.example"))
            .unwrap();
        assert!(text.contains("CALL"), "{text}");
        assert_eq!(
            row.split_whitespace().nth(1),
            Some(call.to_string().as_str()),
            "{text}"
        );
        // That id is what the command takes.
        let lvl = Request::TunnelSessionLevel(proto::TunnelKey {
            session: call.to_string(),
            level: Some(crate::config::Rate(3_000_000)),
        });
        let r = change(&lvl, Some(sim.lac()), now).unwrap();
        assert!(r.ok, "{r:?}");
        assert_eq!(r.data["session"], call);
        assert_eq!(r.data["level"], 3_000_000);
        sim.run_for(std::time::Duration::from_secs(1));
        let now = sim.now();
        let one = tunnel(sim.lac(), id, now).unwrap();
        let levels: Vec<(Option<u32>, u64)> =
            one.session_list.iter().map(|s| (s.call, s.level)).collect();
        assert!(levels.contains(&(Some(call), 3_000_000)), "{levels:?}");
        assert_eq!(
            levels.iter().map(|l| l.1).sum::<u64>(),
            4_000_000,
            "only that call changed: {levels:?}"
        );
        // The LNS's sessions have no call id of the LAC's table.
        let lns_tunnel = *sim.lns().tunnels().keys().next().unwrap();
        let lns = tunnel(sim.lns(), lns_tunnel, now).unwrap();
        assert!(lns.session_list.iter().all(|s| s.call.is_none()));
    }
}
