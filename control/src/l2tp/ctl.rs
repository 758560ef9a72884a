//! The L2TP commands of the control socket: `show tunnels` (the administration table:
//! lines, customers, tunnels), `show tunnel ID` (one tunnel, its control connection and
//! its sessions), and `tunnel session add|remove|level` (tunnelled subscribers on a
//! LAC). docs/ctl.md shows the JSON.

use serde_json::{Value, json};
use tollgate_dataplane::time::Instant;

use super::{ChannelRequest, L2tp, Removed, Role, SessionState};
use crate::config::Rate;
use crate::ctl::handlers::args;
use crate::ctl::proto::{Reply, Request};
use crate::ctl::render::{cell, rows_of as rows, table};

/// The commands, with one line each for `help`.
pub const COMMANDS: &[(&str, &str)] = &[
    (
        "show tunnels",
        "L2TP: lines, customers (tunnels and lines in use), tunnels with their load",
    ),
    (
        "show tunnel",
        "one tunnel (args: tunnel = id): control connection, sessions, traffic",
    ),
    (
        "tunnel session add",
        "tunnel a subscriber (args: address, customer, and optional user, level)",
    ),
    (
        "tunnel session remove",
        "end a tunnelled subscriber (LAC: its id or address) or a session a LAC opened (LNS: session id or subscriber address) (args: session)",
    ),
    (
        "tunnel session level",
        "set a tunnelled subscriber's service level (args: session, level)",
    ),
];

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Add {
    address: std::net::Ipv4Addr,
    customer: String,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    level: Option<Rate>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Key {
    session: String,
    #[serde(default)]
    level: Option<Rate>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TunnelArg {
    tunnel: u16,
}

fn off() -> Reply {
    Reply::error("L2TP is off: set [l2tp] enabled = true")
}

/// Carries out a `tunnel session ...` command; `None` if `req` is not one.
pub fn change(req: &Request, l2tp: Option<&mut L2tp>, now: Instant) -> Option<Reply> {
    let words = req.words();
    if words.first() != Some(&"tunnel") {
        return None;
    }
    let Some(l) = l2tp else {
        return Some(off());
    };
    let r = match words.as_slice() {
        ["tunnel", "session", "add"] => args::<Add>(req).and_then(|a| {
            let level = a.level.map_or_else(
                || {
                    l.settings()
                        .ladder
                        .steps
                        .first()
                        .copied()
                        .unwrap_or(1_000_000)
                },
                |r| l.settings().ladder.snap(r.0),
            );
            let id = l.open(
                now,
                ChannelRequest {
                    address: a.address,
                    customer: a.customer,
                    user: a.user.unwrap_or_else(|| a.address.to_string()),
                    level,
                },
            )?;
            Ok(json!({"session": id, "level": level}))
        }),
        ["tunnel", "session", "remove"] => args::<Key>(req)
            .and_then(|k| l.remove(now, &k.session))
            .map(|r| match r {
                Removed::Subscriber(id) => json!({"session": id}),
                Removed::Session { session, tunnel } => {
                    json!({"session": session, "tunnel": tunnel, "role": "lns"})
                }
            }),
        ["tunnel", "session", "level"] => args::<Key>(req).and_then(|k| {
            let level = k.level.ok_or("give the level, e.g. \"5M\"")?.0;
            let id = l.set_level(now, &k.session, level)?;
            Ok(json!({"session": id, "level": level}))
        }),
        _ => Err(format!(
            "unknown command `{}`; try tunnel session add, remove or level",
            req.cmd.trim()
        )),
    };
    Some(match r {
        Ok(v) => Reply::ok(v),
        Err(e) => Reply::error(e),
    })
}

/// Answers `show tunnels` and `show tunnel`; `None` if `req` is neither.
pub fn show(req: &Request, l2tp: Option<&L2tp>, now: Instant) -> Option<Reply> {
    match req.words().as_slice() {
        ["show", "tunnels"] => Some(l2tp.map_or_else(off, |l| Reply::ok(tunnels(l, now)))),
        ["show", "tunnel"] => Some(match (l2tp, args::<TunnelArg>(req)) {
            (None, _) => off(),
            (_, Err(e)) => Reply::error(e),
            (Some(l), Ok(a)) => match tunnel(l, a.tunnel, now) {
                Some(v) => Reply::ok(v),
                None => Reply::error(format!("no tunnel {}", a.tunnel)),
            },
        }),
        _ => None,
    }
}

/// The administration table (TUN-2): lines, customers with the tunnels and lines they
/// use now (TUN-5), tunnels with their load, subscribers waiting for a tunnel.
pub fn tunnels(l: &L2tp, now: Instant) -> Value {
    let s = l.settings();
    let live = |t: &&super::Tunnel| t.state.live();
    let lines: Vec<Value> = s
        .lines
        .iter()
        .enumerate()
        .map(|(i, ln)| {
            json!({
                "line": ln.name,
                "peer": format!("{}:{}", ln.peer, ln.peer_port),
                "tunnels": l.tunnels().values().filter(live).filter(|t| t.line == Some(i)).count(),
                "max_tunnels": ln.tunnels,
                "tunnel_sessions": ln.capacity.sessions,
                "tunnel_bandwidth": ln.capacity.bandwidth,
            })
        })
        .collect();
    let customers: Vec<Value> = s
        .customers
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mine: Vec<&super::Tunnel> = l
                .tunnels()
                .values()
                .filter(live)
                .filter(|t| t.customer == Some(i))
                .collect();
            let mut lines: Vec<usize> = mine.iter().filter_map(|t| t.line).collect();
            lines.sort_unstable();
            lines.dedup();
            json!({
                "customer": c.name,
                "account": c.account,
                "consolidate": c.consolidate,
                "tunnels": mine.len(),
                "lines": lines.len(),
                "sessions": l.subscribers().values().filter(|o| o.customer == i).count(),
            })
        })
        .collect();
    let list: Vec<Value> = l
        .tunnels()
        .values()
        .map(|t| tunnel_row(l, t, now))
        .collect();
    let waiting: Vec<Value> = l
        .subscribers()
        .values()
        .filter(|o| o.session.is_none())
        .map(|o| json!({"address": o.address.to_string(), "user": o.user, "state": if o.moving_to.is_some() { "connecting" } else { "waiting" }, "failures": o.failures, "retry_in_ms": o.retry_at.map(|t| t.since(now).as_millis() as u64)}))
        .collect();
    let st = l.stats();
    json!({
        "host_name": s.host_name,
        "accept": s.accept,
        "settled": l.is_settled(),
        "lines": lines,
        "customers": customers,
        "tunnels": list,
        "waiting": waiting,
        "stats": {
            "received": st.received,
            "malformed": st.malformed,
            "unknown_tunnel": st.unknown_tunnel,
            "wrong_peer": st.wrong_peer,
            "tunnels_refused": st.tunnels_refused,
            "tunnel_limit": st.tunnel_limit,
            "session_limit": st.session_limit,
            "redials": st.redials,
            "auth_failures": st.auth_failures,
            "unexpected": st.unexpected,
            "unknown_mandatory": st.unknown_mandatory,
            "tunnels_up": st.tunnels_up,
            "tunnels_down": st.tunnels_down,
            "tunnels_dead": st.tunnels_dead,
            "sessions_up": st.sessions_up,
            "sessions_down": st.sessions_down,
            "moves_started": st.moves_started,
            "moves_done": st.moves_done,
            "moves_failed": st.moves_failed,
            "level_changes": st.level_changes,
            "fast_path_refused": st.fast_path_refused,
        },
    })
}

fn tunnel_row(l: &L2tp, t: &super::Tunnel, now: Instant) -> Value {
    let sessions: Vec<&super::Session> = t
        .sessions
        .iter()
        .filter_map(|s| l.sessions().get(s))
        .filter(|s| s.state != SessionState::Closing)
        .collect();
    json!({
        "tunnel": t.id,
        "peer_tunnel": t.peer_id,
        "role": match t.role { Role::Lac => "lac", Role::Lns => "lns" },
        "state": t.state.name(),
        "peer": t.peer.to_string(),
        "local": t.local.to_string(),
        "peer_host": t.peer_host,
        "line": t.line.and_then(|i| l.settings().lines.get(i)).map(|ln| ln.name.clone()),
        "customer": (!t.customer_name.is_empty()).then(|| t.customer_name.clone()),
        "sessions": sessions.len(),
        "max_sessions": t.capacity.sessions,
        "bandwidth": sessions.iter().map(|s| s.level).sum::<u64>(),
        "max_bandwidth": t.capacity.bandwidth,
        "age_s": now.since(t.created).as_secs(),
        "stop_reason": t.stop_reason,
    })
}

/// One tunnel with its control connection and sessions.
pub fn tunnel(l: &L2tp, id: u16, now: Instant) -> Option<Value> {
    let t = l.tunnels().get(&id)?;
    let mut v = tunnel_row(l, t, now);
    let (ns, nr) = t.chan.sequence();
    let c = t.chan.stats;
    v["control"] = json!({
        "ns": ns,
        "nr": nr,
        "unacked": t.chan.unacked(),
        "peer_window": t.chan.peer_window(),
        "sent": c.sent,
        "retransmits": c.retransmits,
        "zlbs": c.zlbs,
        "delivered": c.delivered,
        "duplicates": c.duplicates,
        "reordered": c.reordered,
        "idle_s": now.since(t.last_rx).as_secs(),
        "established_s": t.established.map(|e| now.since(e).as_secs()),
    });
    v["session_list"] = Value::Array(
        t.sessions
            .iter()
            .filter_map(|s| l.sessions().get(s))
            .map(|s| {
                let owner = s.owner.and_then(|o| l.subscribers().get(&o));
                json!({
                    "session": s.id,
                    "peer_session": s.peer_id,
                    "state": s.state.name(),
                    "subscriber": (!s.subscriber.is_unspecified()).then(|| s.subscriber.to_string()),
                    "user": owner.map(|o| o.user.clone()),
                    "level": s.level,
                    "rate_bps": owner.map(|o| o.tracker.rate),
                    "replaces": s.replaces,
                    "encap_packets": s.counters.encap_packets,
                    "encap_bytes": s.counters.encap_bytes,
                    "decap_packets": s.counters.decap_packets,
                    "decap_bytes": s.counters.decap_bytes,
                    "age_s": now.since(s.created).as_secs(),
                })
            })
            .collect(),
    );
    Some(v)
}

/// Renders `show tunnels` and `show tunnel` for a terminal; `None` for other commands.
pub fn render(words: &[&str], data: &Value) -> Option<String> {
    let tunnel_keys = [
        "tunnel",
        "peer_tunnel",
        "role",
        "state",
        "peer",
        "line",
        "customer",
        "sessions",
        "max_sessions",
        "bandwidth",
        "max_bandwidth",
        "age_s",
    ];
    let tunnel_heads = [
        "TUNNEL", "PEER-ID", "ROLE", "STATE", "PEER", "LINE", "CUSTOMER", "SESS", "MAX", "BW",
        "MAX-BW", "AGE-S",
    ];
    match words {
        ["show", "tunnels"] => {
            let mut out = String::new();
            out += &table(
                &["LINE", "PEER", "TUNNELS", "MAX", "SESS/TUNNEL", "BW/TUNNEL"],
                &rows(
                    &data["lines"],
                    &[
                        "line",
                        "peer",
                        "tunnels",
                        "max_tunnels",
                        "tunnel_sessions",
                        "tunnel_bandwidth",
                    ],
                ),
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
                &rows(
                    &data["customers"],
                    &[
                        "customer",
                        "account",
                        "consolidate",
                        "sessions",
                        "tunnels",
                        "lines",
                    ],
                ),
            );
            out += "\n";
            out += &table(&tunnel_heads, &rows(&data["tunnels"], &tunnel_keys));
            if data["waiting"].as_array().is_some_and(|a| !a.is_empty()) {
                out += "\n";
                out += &table(
                    &["WAITING", "USER", "STATE"],
                    &rows(&data["waiting"], &["address", "user", "state"]),
                );
            }
            Some(out)
        }
        ["show", "tunnel"] => {
            let mut out = table(
                &tunnel_heads,
                &rows(&Value::Array(vec![data.clone()]), &tunnel_keys),
            );
            if let Some(c) = data["control"].as_object() {
                out += "\ncontrol:";
                for (k, v) in c {
                    out += &format!(" {k}={}", cell(v));
                }
                out += "\n\n";
            }
            out += &table(
                &[
                    "SESSION",
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
                &rows(
                    &data["session_list"],
                    &[
                        "session",
                        "peer_session",
                        "state",
                        "subscriber",
                        "user",
                        "level",
                        "rate_bps",
                        "encap_packets",
                        "decap_packets",
                        "age_s",
                    ],
                ),
            );
            Some(out)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::l2tp::consolidate::Capacity;
    use crate::l2tp::tests::{Sim, lac_settings, lns_settings, sub};

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
        let add = Request {
            cmd: "tunnel session add".into(),
            args: json!({"address": sub(1).to_string(), "customer": "acme", "level": "3M"}),
        };
        let r = change(&add, Some(sim.lac()), now).unwrap();
        assert!(r.ok, "{r:?}");
        assert_eq!(r.data["level"], 3_000_000);
        let again = change(&add, Some(sim.lac()), now).unwrap();
        assert!(again.error.unwrap().contains("already tunnelled"));
        let bad = Request {
            cmd: "tunnel session add".into(),
            args: json!({"address": "10.10.0.99", "customer": "nobody"}),
        };
        assert!(
            change(&bad, Some(sim.lac()), now)
                .unwrap()
                .error
                .unwrap()
                .contains("nobody")
        );
        sim.run_for(std::time::Duration::from_secs(1));
        let now = sim.now();
        let v = tunnels(sim.lac(), now);
        assert_eq!(v["customers"][0]["tunnels"], 1);
        assert_eq!(v["customers"][0]["lines"], 1);
        assert_eq!(v["tunnels"][0]["state"], "established");
        assert_eq!(v["tunnels"][0]["sessions"], 1);
        let id = v["tunnels"][0]["tunnel"].as_u64().unwrap() as u16;
        let one = tunnel(sim.lac(), id, now).unwrap();
        assert_eq!(one["session_list"][0]["subscriber"], sub(1).to_string());
        assert_eq!(one["session_list"][0]["state"], "established");
        let text = render(&["show", "tunnels"], &v).unwrap();
        assert!(text.contains("acme") && text.contains("line1"), "{text}");
        let text = render(&["show", "tunnel"], &one).unwrap();
        assert!(
            text.contains("SUBSCRIBER") && text.contains("10.10.0.21"),
            "{text}"
        );
        let req = Request {
            cmd: "show tunnel".into(),
            args: json!({"tunnel": 1}),
        };
        let r = show(&req, Some(sim.lac()), now).unwrap();
        assert!(!r.ok || id == 1);
        let req = Request::new("show tunnels");
        assert!(
            show(&req, None, now)
                .unwrap()
                .error
                .unwrap()
                .contains("L2TP is off")
        );
        let rm = Request {
            cmd: "tunnel session remove".into(),
            args: json!({"session": sub(1).to_string()}),
        };
        assert!(change(&rm, Some(sim.lac()), now).unwrap().ok);
        assert!(change(&rm, Some(sim.lac()), now).unwrap().error.is_some());
    }
}
