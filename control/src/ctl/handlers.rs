//! Answers to control-socket commands, as JSON, built from the control plane's state.
//! The same builders serve the daemon and `tollgate replay`'s summary.

use serde_json::{Value, json};
use tollgate_dataplane::counters::{DropReason, SideCounters, WorkerCounters};
use tollgate_dataplane::port::PortStats;
use tollgate_dataplane::time::Instant;
use tollgate_dataplane::{Side, WorkerReport};

use crate::dispatch::DispatchStats;
use crate::proto::{Reply, Request};
use tollgate_control_core::gateway::{Core, neighbor::Neighbor};

/// What does not change while the daemon runs.
#[derive(Clone, Debug)]
pub struct EngineInfo {
    /// Where the config came from.
    pub config: String,
    /// When the engine started, on the engine clock.
    pub started: Instant,
    /// Process id.
    pub pid: u32,
    /// The control socket path.
    pub socket: String,
    /// Per side, indexed by [`Side::idx`].
    pub ports: [PortInfo; 2],
    /// Per worker.
    pub workers: Vec<WorkerInfo>,
}

/// A port as configured.
#[derive(Clone, Debug)]
pub struct PortInfo {
    /// Backend name.
    pub backend: String,
    /// Interface (af_packet).
    pub interface: Option<String>,
    /// MAC in use.
    pub mac: String,
    /// Address/prefix.
    pub address: String,
}

/// A worker as started.
#[derive(Clone, Debug)]
pub struct WorkerInfo {
    /// Index.
    pub id: u16,
    /// Core it is pinned to.
    pub cpu: Option<usize>,
}

/// Everything a handler may read.
pub struct Context<'a> {
    /// Now, on the engine clock.
    pub now: Instant,
    /// Static facts.
    pub info: &'a EngineInfo,
    /// Latest report per worker.
    pub reports: &'a [Option<WorkerReport>],
    /// The control core.
    pub core: &'a Core,
    /// Ring delivery counters.
    pub dispatch: DispatchStats,
    /// The rating engine, when `rating.database` is set.
    pub rater: Option<&'a crate::rating::Rater>,
    /// Logins and accounting I/O (the daemon's; none in replay).
    pub aaa: Option<&'a crate::aaa::AaaShell>,
}

/// The commands, with one line each for `help`.
pub const COMMANDS: &[(&str, &str)] = &[
    ("help", "list the commands"),
    ("show status", "version, uptime, config, totals"),
    (
        "show ports",
        "per port: backend, interface, MAC, address, packets, bytes, backend drops",
    ),
    (
        "show workers",
        "per worker: core, polls, busy share, packets, drops, held packets, sessions, flows",
    ),
    (
        "show counters",
        "packets and bytes per side, drops by reason, engine and control counters",
    ),
    (
        "show neighbors",
        "the neighbour table: address, side, MAC, state, age",
    ),
    ("show sessions", "open sessions with their counters"),
    (
        "show session",
        "one session (args: session = id or address), open or recently ended",
    ),
    (
        "show services",
        "services, their real servers, states and metrics",
    ),
    ("show lb", "load-balancing ranges, their targets and states"),
    (
        "session add",
        "open a session (args: user, address, and optional mac, services, bandwidth_up/down, limits)",
    ),
    (
        "session remove",
        "end a session (args: session = id or address, cause)",
    ),
    (
        "session update",
        "change a session live (args: session, bandwidth_up/down, services, limits)",
    ),
    (
        "server set",
        "change a real server (args: service, server = index or address[:port], state, response_us, cpu_load)",
    ),
    (
        "lb set",
        "mark a load-balancing target up or down (args: mac, state)",
    ),
    (
        "session login",
        "log a subscriber in like a NAS access request (args: user, password, address, mac, mobile_id, channel); answers when the session is installed",
    ),
    (
        "session logout",
        "end sessions (args: session = id or address, or user = name; cause)",
    ),
    (
        "subscriber add",
        "add a subscriber to the local store (args: an import record, replace)",
    ),
    ("subscriber remove", "remove a subscriber (args: user)"),
    (
        "subscriber show",
        "one subscriber of the store (args: user)",
    ),
    ("subscriber list", "every subscriber of the store"),
    (
        "subscriber import",
        "import subscribers (args: text, file, format = toml or csv, replace): all or none",
    ),
    (
        "show accounting",
        "authentication backend, accounting spool, RADIUS servers, CoA listener",
    ),
    (
        "show health",
        "health-checked servers and nodes: state, response time",
    ),
    (
        "show pools",
        "address pools: ranges, nodes, assigned addresses",
    ),
    ("show logins", "login and accounting counters"),
];

/// What a request needs before it can be answered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Wait {
    /// Fresh worker reports (counters).
    pub worker_reports: bool,
    /// A session report of the core, by tag.
    pub sessions: Option<u64>,
}

/// The first step of handling a request.
#[derive(Debug)]
pub enum Step {
    /// Answered at once.
    Reply(Reply),
    /// Answer with [`finish`] when what it waits for is there.
    Wait(Wait),
    /// A login was started: answer when it finishes (the shell knows how).
    Login(tollgate_control_core::gateway::aaa::LoginId),
    /// A change to the local store, for the store thread.
    Store(crate::aaa::StoreOp),
    /// Sessions were told to end: answer `reply` once their Stops (by Acct-Session-Id)
    /// are committed to the spool, so that an acknowledged end survives a crash.
    AfterStops {
        /// The Acct-Session-Ids whose Stops must be on disk first.
        sessions: Vec<String>,
        /// The answer.
        reply: Reply,
    },
}

/// The answer `v` to a request that ended sessions `ids`: after their Stops are on disk
/// (at once for sessions without accounting).
fn after_stops(core: &Core, ids: &[tollgate_dataplane::session::SessionId], v: Value) -> Step {
    let sessions: Vec<String> = ids
        .iter()
        .filter_map(|id| core.aaa_session(*id).map(|s| s.acct_id.clone()))
        .collect();
    if sessions.is_empty() {
        Step::Reply(Reply::ok(v))
    } else {
        Step::AfterStops {
            sessions,
            reply: Reply::ok(v),
        }
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginArgs {
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    address: Option<std::net::Ipv4Addr>,
    #[serde(default)]
    mac: Option<crate::config::Mac>,
    #[serde(default)]
    mobile_id: Option<String>,
    #[serde(default)]
    channel: Option<u32>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct LogoutArgs {
    #[serde(default)]
    session: Option<String>,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    cause: Option<String>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct UserArg {
    user: String,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct AddArgs {
    record: serde_json::Value,
    #[serde(default)]
    replace: bool,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportArgs {
    text: String,
    file: String,
    #[serde(default)]
    format: Option<String>,
    #[serde(default)]
    replace: bool,
}

/// The request's arguments as `T` (none: an empty object).
pub(crate) fn args<T: serde::de::DeserializeOwned>(req: &Request) -> Result<T, String> {
    let v = if req.args.is_null() {
        json!({})
    } else {
        req.args.clone()
    };
    serde_json::from_value(v).map_err(|e| format!("bad arguments for `{}`: {e}", req.cmd.trim()))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SessionKey {
    session: String,
    #[serde(default)]
    cause: Option<String>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SessionChange {
    session: String,
    #[serde(default)]
    bandwidth_up: Option<crate::config::Rate>,
    #[serde(default)]
    bandwidth_down: Option<crate::config::Rate>,
    #[serde(default)]
    services: Option<Vec<String>>,
    #[serde(flatten)]
    limits: crate::config::LimitsConfig,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ServerChange {
    service: String,
    server: String,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    response_us: Option<u32>,
    #[serde(default)]
    cpu_load: Option<u32>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct LbChange {
    mac: String,
    state: String,
}

fn up_down(s: &str) -> Result<bool, String> {
    match s {
        "up" => Ok(true),
        "down" => Ok(false),
        other => Err(format!("state {other:?}: use up or down")),
    }
}

/// Starts handling a request: commands that change something are carried out here (they
/// need `cfg` for service names and defaults); shows that need counters say what to
/// wait for.
pub fn start(req: &Request, core: &mut Core, cfg: &crate::config::Config, now: Instant) -> Step {
    let reply = |r: Result<Value, String>| {
        Step::Reply(match r {
            Ok(v) => Reply::ok(v),
            Err(e) => Reply::error(e),
        })
    };
    if req.words().first() == Some(&"tunnel") {
        // A tunnelled subscriber's address follows the rule of every other.
        if req.words() == ["tunnel", "session", "add"] {
            if let Some(Err(e)) = req
                .args
                .get("address")
                .and_then(|a| a.as_str())
                .and_then(|a| a.parse().ok())
                .map(|a| core.subscriber_addresses().check(a))
            {
                return Step::Reply(Reply::error(e.to_string()));
            }
        }
        let r = core.with_l2tp(now, |l| crate::ctl::l2tp::change(req, l, now));
        if let Some(r) = r {
            return Step::Reply(r);
        }
    }
    match req.words().as_slice() {
        ["show", "status" | "ports" | "workers" | "counters"] => Step::Wait(Wait {
            worker_reports: true,
            sessions: None,
        }),
        ["show", "sessions"] => Step::Wait(Wait {
            worker_reports: false,
            sessions: Some(core.report_sessions()),
        }),
        ["show", "session"] => match args::<SessionKey>(req) {
            Err(e) => reply(Err(e)),
            Ok(k) => match core.sessions().find(&k.session) {
                Ok(id) => Step::Wait(Wait {
                    worker_reports: false,
                    sessions: Some(core.query_session(id)),
                }),
                Err(e) => match core.sessions().find_recent(&k.session) {
                    Some(ended) => reply(Ok(ended_json(core, ended.record.id))),
                    None => reply(Err(e.to_string())),
                },
            },
        },
        ["session", "add"] => reply(args::<crate::config::StaticSubscriber>(req).and_then(|s| {
            s.limits.check().map_err(|(f, m)| format!("{f}: {m}"))?;
            if let Some(bad) = s
                .services
                .iter()
                .flatten()
                .find(|n| core.service_index(n).is_none())
            {
                return Err(format!("no service is named {bad:?}"));
            }
            let request = crate::setup::static_session(cfg, &s);
            let id = core.open_session(now, request).map_err(|e| e.to_string())?;
            Ok(json!({"session": id}))
        })),
        ["session", "remove"] => match args::<SessionKey>(req).and_then(|k| {
            let cause = tollgate_control_core::gateway::sessions::cause(k.cause.as_deref())?;
            let id = core
                .close_session(&k.session, cause)
                .map_err(|e| e.to_string())?;
            Ok((id, json!({"session": id, "cause": cause.name()})))
        }) {
            Ok((id, v)) => after_stops(core, &[id], v),
            Err(e) => reply(Err(e)),
        },
        ["session", "update"] => reply(args::<SessionChange>(req).and_then(|c| {
            c.limits.check().map_err(|(f, m)| format!("{f}: {m}"))?;
            let id = core
                .sessions()
                .find(&c.session)
                .map_err(|e| e.to_string())?;
            let old = core.sessions().get(id).map(|s| s.spec).ok_or("gone")?;
            let bandwidth = tollgate_dataplane::session::Bandwidth {
                up_bps: c.bandwidth_up.map_or(old.bandwidth.up_bps, |r| r.0),
                down_bps: c.bandwidth_down.map_or(old.bandwidth.down_bps, |r| r.0),
            };
            let update = tollgate_dataplane::session::SessionUpdate {
                limits: (c.limits != crate::config::LimitsConfig::default())
                    .then(|| crate::setup::limits(&c.limits, bandwidth)),
                bandwidth: (c.bandwidth_up.is_some() || c.bandwidth_down.is_some())
                    .then_some(bandwidth),
                services: c
                    .services
                    .as_deref()
                    .map(|n| crate::setup::service_set(cfg, Some(n))),
            };
            core.update_session(now, &c.session, update)
                .map_err(|e| e.to_string())?;
            Ok(json!({"session": id}))
        })),
        ["server", "set"] => reply(args::<ServerChange>(req).and_then(|c| {
            let svc = core
                .service_index(&c.service)
                .ok_or_else(|| format!("no service is named {:?}", c.service))?;
            let servers = &core.forwarding().services.get(svc).ok_or("gone")?.servers;
            let idx = match c.server.parse::<u16>() {
                Ok(i) if (i as usize) < servers.len() => i,
                _ => servers
                    .iter()
                    .position(|r| {
                        c.server == r.address.to_string()
                            || c.server == format!("{}:{}", r.address, r.port)
                    })
                    .map(|i| i as u16)
                    .ok_or_else(|| {
                        format!("service {:?} has no server {:?}", c.service, c.server)
                    })?,
            };
            let up = c.state.as_deref().map(up_down).transpose()?;
            core.set_server(svc, idx, |r| {
                if let Some(u) = up {
                    r.up = u;
                }
                if let Some(v) = c.response_us {
                    r.response_us = v;
                }
                if let Some(v) = c.cpu_load {
                    r.cpu_load = v;
                }
            })?;
            Ok(json!({"service": c.service, "server": idx}))
        })),
        ["session", "login"] => match args::<LoginArgs>(req) {
            Err(e) => reply(Err(e)),
            Ok(a)
                if a.user.is_none()
                    && a.mac.is_none()
                    && a.mobile_id.is_none()
                    && a.address.is_none() =>
            {
                reply(Err(
                    "give user (and password), or mac, mobile_id or address".into(),
                ))
            }
            Ok(a)
                if a.user
                    .as_deref()
                    .is_some_and(|u| u.is_empty() || u.contains('\0')) =>
            {
                reply(Err(format!(
                    "user name {:?}: must not be empty or contain NUL",
                    a.user.unwrap_or_default()
                )))
            }
            Ok(a) => {
                let r = tollgate_control_core::gateway::aaa::LoginRequest {
                    user: a.user,
                    password: a.password,
                    address: a.address,
                    mac: a.mac.map(|m| m.0),
                    mobile_id: a.mobile_id,
                    channel: a.channel,
                    first_packet: false,
                    ..Default::default()
                };
                match core.login(now, r) {
                    Ok(id) => Step::Login(id),
                    Err(e) => reply(Err(e)),
                }
            }
        },
        ["session", "logout"] => match args::<LogoutArgs>(req).and_then(|a| {
            let cause = tollgate_control_core::gateway::sessions::cause(Some(
                a.cause.as_deref().unwrap_or("user_request"),
            ))?;
            match (a.session, a.user) {
                (Some(k), None) => {
                    let id = core.close_session(&k, cause).map_err(|e| e.to_string())?;
                    Ok((vec![id], json!({"sessions": [id], "cause": cause.name()})))
                }
                (None, Some(u)) => match core.logout_user(&u, cause) {
                    ids if ids.is_empty() => Err(format!("{u} has no open session")),
                    ids => {
                        let v = json!({"user": u, "ended": ids.len(), "cause": cause.name()});
                        Ok((ids, v))
                    }
                },
                _ => Err("give either session (id or address) or user".into()),
            }
        }) {
            Ok((ids, v)) => after_stops(core, &ids, v),
            Err(e) => reply(Err(e)),
        },
        ["subscriber", "add"] => match args::<AddArgs>(req).and_then(|a| {
            let r: crate::store::import::Record = serde_json::from_value(a.record)
                .map_err(|e| format!("bad subscriber record: {e}"))?;
            Ok(crate::aaa::StoreOp::Add(Box::new(r), a.replace))
        }) {
            Ok(op) => Step::Store(op),
            Err(e) => reply(Err(e)),
        },
        ["subscriber", "remove" | "show"] => match args::<UserArg>(req) {
            Ok(a) if req.words()[1] == "remove" => Step::Store(crate::aaa::StoreOp::Remove(a.user)),
            Ok(a) => Step::Store(crate::aaa::StoreOp::Show(a.user)),
            Err(e) => reply(Err(e)),
        },
        ["subscriber", "list"] => Step::Store(crate::aaa::StoreOp::List),
        ["subscriber", "import"] => match args::<ImportArgs>(req).and_then(|a| {
            let format = match a.format.as_deref() {
                Some("toml") => crate::store::import::Format::Toml,
                Some("csv") => crate::store::import::Format::Csv,
                Some(f) => return Err(format!("format {f:?}: use toml or csv")),
                None => crate::store::import::Format::of(std::path::Path::new(&a.file))
                    .ok_or("cannot tell the format from the file name: give format")?,
            };
            Ok(crate::aaa::StoreOp::Import {
                text: a.text,
                file: a.file,
                format,
                replace: a.replace,
            })
        }) {
            Ok(op) => Step::Store(op),
            Err(e) => reply(Err(e)),
        },
        ["lb", "set"] => reply(args::<LbChange>(req).and_then(|c| {
            let mac: tollgate_dataplane::MacAddr = c.mac.parse().map_err(|e| format!("{e}"))?;
            core.set_lb_target(mac, up_down(&c.state)?)?;
            Ok(json!({"mac": mac.to_string(), "state": c.state}))
        })),
        _ => Step::Wait(Wait::default()),
    }
}

/// Answers a request, once what [`start`] waited for is there.
pub fn finish(
    req: &Request,
    ctx: &Context<'_>,
    sessions: Option<tollgate_control_core::gateway::SessionReport>,
) -> Reply {
    match req.words().as_slice() {
        ["help"] => Reply::ok(json!(
            COMMANDS
                .iter()
                .chain(crate::ctl::billing::COMMANDS)
                .chain(crate::ctl::l2tp::COMMANDS)
                .map(|(c, d)| json!({"command": c, "description": d}))
                .collect::<Vec<_>>()
        )),
        ["show", "status"] => Reply::ok(status(ctx)),
        ["show", "ports"] => Reply::ok(ports(ctx)),
        ["show", "workers"] => Reply::ok(workers(ctx)),
        ["show", "counters"] => Reply::ok(counters(ctx.reports, ctx.core, ctx.dispatch)),
        ["show", "neighbors" | "neighbours"] => {
            Reply::ok(neighbors(&ctx.core.neighbors(), ctx.now))
        }
        ["show", "sessions"] => Reply::ok(sessions_json(ctx.core, ctx.now, sessions.as_ref())),
        ["show", "session"] => {
            let r = sessions.as_ref();
            match r.and_then(|r| r.counters.iter().next()) {
                Some((id, c)) => Reply::ok(open_json(ctx.core, *id, ctx.now, Some(c))),
                None => Reply::error("the session ended or did not answer; try again"),
            }
        }
        ["show", "services"] => Reply::ok(services_json(ctx.core)),
        ["show", "lb"] => Reply::ok(lb_json(ctx.core)),
        ["show", "accounting"] => match ctx.aaa {
            Some(a) => Reply::ok(a.accounting_json(ctx.now)),
            None => Reply::error("no accounting here (replay)"),
        },
        ["show", "health"] => match ctx.aaa {
            Some(a) => Reply::ok(a.health_json()),
            None => Reply::ok(json!([])),
        },
        ["show", "pools"] => Reply::ok(pools_json(ctx.core)),
        ["show", "logins"] => Reply::ok(logins_json(ctx)),
        ["show", "tunnels" | "tunnel"] => crate::ctl::l2tp::show(req, ctx.core.l2tp(), ctx.now)
            .unwrap_or_else(|| Reply::error("unknown tunnel command")),
        ["billing", ..] | ["show", "invoice", ..] => {
            crate::ctl::billing::handle(&req.words(), &req.args, ctx.rater, crate::clock::unix_s())
        }
        ["show", what] => Reply::error(format!(
            "unknown command `show {what}`; try status, ports, workers, counters, neighbors, sessions, session, services, lb, accounting, health, pools, logins, tunnels or tunnel"
        )),
        _ => Reply::error(format!(
            "unknown command `{}`; `help` lists the commands",
            req.cmd.trim()
        )),
    }
}

fn counters_json(c: &tollgate_dataplane::session::SessionCounters) -> Value {
    json!({"tx_packets": c.tx_packets, "tx_bytes": c.tx_bytes, "rx_packets": c.rx_packets, "rx_bytes": c.rx_bytes})
}

fn open_json(
    core: &Core,
    id: u32,
    now: Instant,
    c: Option<&tollgate_dataplane::session::SessionCounters>,
) -> Value {
    let Some(s) = core.sessions().get(id) else {
        return ended_json(core, id);
    };
    let names = core.service_names();
    let services: Vec<&str> = (0..names.len() as u16)
        .filter(|i| s.spec.services.allows(*i))
        .map(|i| names[i as usize].as_str())
        .collect();
    let mut v = json!({
        "session": id,
        "state": "open",
        "ses_state": core.aaa_session(id).map(|a| a.state.name()),
        "acct_session_id": core.aaa_session(id).map(|a| a.acct_id.clone()),
        "user": s.user,
        "address": s.spec.address.to_string(),
        "mac": s.spec.mac.map(|m| m.to_string()),
        "channel": s.spec.channel,
        "worker": s.worker,
        "start": core.clock().rfc3339(s.spec.started),
        "age_s": now.since(s.spec.started).as_secs(),
        "bandwidth_up": s.spec.bandwidth.up_bps,
        "bandwidth_down": s.spec.bandwidth.down_bps,
        "services": services,
        "counters": c.map(counters_json),
    });
    // A PPPoE subscriber's PPP state (issue 14).
    if let (Some(p), Some(o)) = (core.ppp_view(id), v.as_object_mut()) {
        o.extend(p.fields());
    }
    v
}

fn ended_json(core: &Core, id: u32) -> Value {
    match core.sessions().recent(id) {
        Some(e) => {
            let r = &e.record;
            json!({
                "session": id,
                "state": "ended",
                "user": e.user,
                "address": r.address.to_string(),
                "mac": e.mac.map(|m| m.to_string()),
                "channel": r.channel,
                "start": core.clock().rfc3339(r.started),
                "stop": core.clock().rfc3339(r.stopped),
                "cause": r.cause.name(),
                "counters": counters_json(&r.counters),
            })
        }
        None => json!({"session": id, "state": "unknown"}),
    }
}

fn sessions_json(
    core: &Core,
    now: Instant,
    report: Option<&tollgate_control_core::gateway::SessionReport>,
) -> Value {
    Value::Array(
        core.sessions()
            .all()
            .map(|(id, _)| open_json(core, *id, now, report.and_then(|r| r.counters.get(id))))
            .collect(),
    )
}

fn services_json(core: &Core) -> Value {
    let names = core.service_names();
    Value::Array(
        core.forwarding()
            .services
            .all()
            .iter()
            .enumerate()
            .map(|(i, s)| {
                json!({
                    "service": names.get(i).cloned().unwrap_or_default(),
                    "vip": s.vip.to_string(),
                    "protocol": match s.protocol { 6 => "tcp", 17 => "udp", _ => "icmp" },
                    "port": s.port,
                    "policy": s.policy.name(),
                    "session_type": s.session_type.name(),
                    "servers": s.servers.iter().enumerate().map(|(j, r)| json!({
                        "server": j,
                        "address": r.address.to_string(),
                        "port": r.port,
                        "state": if r.up { "up" } else { "down" },
                        "weight": r.weight,
                        "priority": r.priority,
                        "response_us": r.response_us,
                        "cpu_load": r.cpu_load,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect(),
    )
}

fn pools_json(core: &Core) -> Value {
    let p = core.pools();
    Value::Array(
        p.pools
            .iter()
            .map(|pool| {
                json!({
                    "pool": pool.name,
                    "ranges": pool.ranges.iter().map(|r| {
                        let node = r.node.and_then(|n| p.nodes.get(n));
                        json!({
                            "first": r.first.to_string(),
                            "last": r.last.to_string(),
                            "size": r.size(),
                            "assigned": r.assigned,
                            "node": node.map(|n| n.name.clone()),
                            "node_state": node.map(|n| if n.up { "up" } else { "down" }),
                        })
                    }).collect::<Vec<_>>(),
                })
            })
            .collect(),
    )
}

fn logins_json(ctx: &Context<'_>) -> Value {
    let s = ctx.core.aaa_stats();
    let (mut act, mut dormant) = (0, 0);
    for (id, _) in ctx.core.sessions().all() {
        match ctx.core.aaa_session(*id).map(|a| a.state) {
            Some(tollgate_control_core::gateway::aaa::SesState::Dormant) => dormant += 1,
            _ => act += 1,
        }
    }
    let shell = ctx.aaa.map(|a| a.stats());
    json!({
        "sessions": {"act": act, "dormant": dormant},
        "logins_pending": ctx.core.logins_pending(),
        "logins": s.logins, "accepted": s.accepted, "rejected": s.rejected,
        "unavailable": s.unavailable, "busy": s.busy, "failed": s.failed,
        "resumed": s.resumed, "login_victims": s.login_victims,
        "accounting": {
            "starts": s.starts, "interims": s.interims, "stops": s.stops,
            "spooled": shell.map(|x| x.acct_spooled), "sent": shell.map(|x| x.acct_sent),
            "done": shell.map(|x| x.acct_done),
            "last_known_rounds": s.last_known_rounds, "last_known": s.last_known,
        },
        "dormant_transitions": s.dormant,
    })
}

fn lb_json(core: &Core) -> Value {
    Value::Array(
        core.forwarding()
            .lb
            .ranges()
            .iter()
            .map(|r| {
                json!({
                    "first": r.first.to_string(),
                    "last": r.last.to_string(),
                    "chosen": r.chosen().map(|m| m.to_string()),
                    "targets": r.targets.iter().map(|t| json!({
                        "mac": t.mac.to_string(),
                        "state": if t.up { "up" } else { "down" },
                    })).collect::<Vec<_>>(),
                })
            })
            .collect(),
    )
}

fn total(reports: &[Option<WorkerReport>]) -> (WorkerCounters, [PortStats; 2]) {
    let mut c = WorkerCounters::default();
    let mut p = [PortStats::default(); 2];
    for r in reports.iter().flatten() {
        c.accumulate(&r.counters);
        p[0].accumulate(&r.ports[0]);
        p[1].accumulate(&r.ports[1]);
    }
    (c, p)
}

fn status(ctx: &Context<'_>) -> Value {
    let (c, _) = total(ctx.reports);
    json!({
        "version": env!("CARGO_PKG_VERSION"),
        "pid": ctx.info.pid,
        "config": ctx.info.config,
        "socket": ctx.info.socket,
        "uptime_s": ctx.now.since(ctx.info.started).as_secs(),
        "workers": ctx.info.workers.len(),
        "backend": ctx.info.ports[0].backend,
        "rx_packets": c.rx_packets(),
        "tx_packets": c.tx_packets(),
        "drops": c.total_drops(),
        "neighbors": ctx.core.neighbors().len(),
    })
}

fn side_json(s: &SideCounters) -> Value {
    json!({
        "rx_packets": s.rx_packets,
        "rx_bytes": s.rx_bytes,
        "tx_packets": s.tx_packets,
        "tx_bytes": s.tx_bytes,
    })
}

fn ports(ctx: &Context<'_>) -> Value {
    let (c, p) = total(ctx.reports);
    Value::Array(
        Side::ALL
            .iter()
            .map(|s| {
                let i = &ctx.info.ports[s.idx()];
                let n = &c.sides[s.idx()];
                let ps = &p[s.idx()];
                json!({
                    "side": s.name(),
                    "backend": i.backend,
                    "interface": i.interface,
                    "mac": i.mac,
                    "address": i.address,
                    "rx_packets": n.rx_packets,
                    "rx_bytes": n.rx_bytes,
                    "tx_packets": n.tx_packets,
                    "tx_bytes": n.tx_bytes,
                    "rx_dropped": ps.rx_dropped,
                    "rx_late": ps.rx_late,
                    "rx_too_big": ps.rx_too_big,
                    "rx_no_buffer": ps.rx_no_buffer,
                    "rx_to_kernel": ps.rx_to_kernel,
                    "rx_max_wait_ms": ps.rx_max_wait_us as f64 / 1000.0,
                    "tx_errors": ps.tx_errors,
                    "rx_loss": rx_loss(&i.backend, ps),
                })
            })
            .collect(),
    )
}

/// Why a port lost frames below the workers, in words (`null` if it lost none).
pub(crate) fn rx_loss(backend: &str, ps: &PortStats) -> Value {
    let mut why = Vec::new();
    if ps.rx_dropped > 0 {
        let waited = if ps.rx_max_wait_us > 0 {
            format!(
                "; frames waited up to {:.1} ms for a worker",
                ps.rx_max_wait_us as f64 / 1000.0
            )
        } else {
            String::new()
        };
        let hint = if backend == "af_packet" {
            ": a worker did not run for longer than the ring holds (a stalled, overloaded host: more af_packet.blocks, or af_packet.block_timeout_ms, hold longer) or could not keep up"
        } else {
            ": a worker could not keep up, or did not run for a while"
        };
        why.push(format!(
            "{} dropped by the kernel, rx ring full{waited}{hint}",
            ps.rx_dropped
        ));
    }
    if ps.rx_late > 0 {
        why.push(format!(
            "{} dropped at the head of the rx ring under sustained overload (waited longer than af_packet.max_delay_ms)",
            ps.rx_late
        ));
    }
    if ps.rx_no_buffer > 0 && backend == "af_xdp" {
        why.push(format!(
            "{} dropped by the kernel, no free frame in the fill ring: the worker's frames were all waiting in its rx ring or on their way out (af_xdp.fill_ring, af_xdp.frames)",
            ps.rx_no_buffer
        ));
    }
    if ps.rx_too_big > 0 {
        why.push(format!(
            "{} longer than a buffer (GRO/GSO/TSO on the interface, or jumbo frames)",
            ps.rx_too_big
        ));
    }
    if why.is_empty() {
        Value::Null
    } else {
        Value::String(why.join("; "))
    }
}

fn workers(ctx: &Context<'_>) -> Value {
    Value::Array(
        ctx.info
            .workers
            .iter()
            .map(|w| {
                let r = ctx.reports.get(w.id as usize).and_then(|r| r.as_ref());
                match r {
                    None => json!({"worker": w.id, "cpu": w.cpu, "reported": false}),
                    Some(r) => {
                        let c = &r.counters;
                        let busy = if c.polls == 0 {
                            0.0
                        } else {
                            100.0 * c.busy_polls as f64 / c.polls as f64
                        };
                        json!({
                            "worker": w.id,
                            "cpu": w.cpu,
                            "reported": true,
                            "polls": c.polls,
                            "busy_polls": c.busy_polls,
                            "busy_pct": (busy * 10.0).round() / 10.0,
                            "rx_packets": c.rx_packets(),
                            "tx_packets": c.tx_packets(),
                            "drops": c.total_drops(),
                            "held": r.held_now,
                            "neighbors": r.neighbors,
                            "sessions": r.sessions,
                            "flows": r.flows,
                            "report_age_ms": ctx.now.since(r.at).as_millis() as u64,
                        })
                    }
                }
            })
            .collect(),
    )
}

/// The `show counters` answer: per side, drops by reason (all of them), engine counters,
/// and what the control thread counts.
pub fn counters(reports: &[Option<WorkerReport>], core: &Core, dispatch: DispatchStats) -> Value {
    let (c, _) = total(reports);
    let held: u64 = reports.iter().flatten().map(|r| r.held_now as u64).sum();
    let drops: serde_json::Map<String, Value> = DropReason::ALL
        .iter()
        .map(|r| (r.name().to_string(), json!(c.dropped(*r))))
        .collect();
    let engine: serde_json::Map<String, Value> = c
        .named()
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .chain(std::iter::once(("held_now".to_string(), json!(held))))
        .collect();
    let cs = core.stats();
    json!({
        "sides": {
            "access": side_json(&c.sides[0]),
            "core": side_json(&c.sides[1]),
        },
        "drops": drops,
        "drops_total": c.total_drops(),
        "engine": engine,
        "control": {
            "punts": cs.punts,
            "punts_malformed": cs.punts_malformed,
            "events": cs.events,
            "arp_requests": cs.arp_requests,
            "neighbors_installed": cs.neighbors_installed,
            "flow_limits": cs.flow_limits,
            "nat_ports_exhausted": cs.nat_ports_exhausted,
            "command_retries": dispatch.command_retries,
            "commands_dropped": dispatch.commands_dropped,
            "injects_dropped": dispatch.injects_dropped,
        },
        "pppoe": core
            .pppoe_counters()
            .into_iter()
            .map(|(k, n)| (k, json!(n)))
            .collect::<serde_json::Map<String, Value>>(),
    })
}

/// The `show neighbors` answer.
pub fn neighbors(list: &[Neighbor], now: Instant) -> Value {
    Value::Array(
        list.iter()
            .map(|n| {
                json!({
                    "address": n.ip.to_string(),
                    "side": n.side.name(),
                    "mac": n.mac().map(|m| m.to_string()),
                    "state": n.state_name(),
                    "age_s": now.since(n.since).as_secs(),
                })
            })
            .collect(),
    )
}
