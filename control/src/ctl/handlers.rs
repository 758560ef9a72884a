//! Answers to control-socket commands, built from the control plane's state as the
//! typed answers of [`crate::proto`]. The same builders serve the daemon and
//! `tollgate replay`'s summary.

use std::collections::BTreeMap;

use tollgate_dataplane::counters::{DropReason, SideCounters, WorkerCounters};
use tollgate_dataplane::port::PortStats;
use tollgate_dataplane::time::Instant;
use tollgate_dataplane::{Side, WorkerReport};

use crate::dispatch::DispatchStats;
use crate::proto::{self, Reply, Request};
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

/// The answer `reply` to a request that ended sessions `ids`: after their Stops are on
/// disk (at once for sessions without accounting).
fn after_stops(core: &Core, ids: &[tollgate_dataplane::session::SessionId], reply: Reply) -> Step {
    let sessions: Vec<String> = ids
        .iter()
        .filter_map(|id| core.aaa_session(*id).map(|s| s.acct_id.clone()))
        .collect();
    if sessions.is_empty() {
        Step::Reply(reply)
    } else {
        Step::AfterStops { sessions, reply }
    }
}

/// Answered at once: the answer, or the error.
fn reply<T: serde::Serialize>(r: Result<T, String>) -> Step {
    Step::Reply(Reply::of(r))
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
    match req {
        Request::TunnelSessionRemove(_) | Request::TunnelSessionLevel(_) => {
            let r = core.with_l2tp(now, |l| crate::ctl::l2tp::change(req, l, now));
            Step::Reply(r.unwrap_or_else(|| Reply::error("unknown tunnel command")))
        }
        Request::ShowStatus | Request::ShowPorts | Request::ShowWorkers | Request::ShowCounters => {
            Step::Wait(Wait {
                worker_reports: true,
                sessions: None,
            })
        }
        Request::ShowSessions => Step::Wait(Wait {
            worker_reports: false,
            sessions: Some(core.report_sessions()),
        }),
        Request::ShowSession(k) => match core.sessions().find(&k.session) {
            Ok(id) => Step::Wait(Wait {
                worker_reports: false,
                sessions: Some(core.query_session(id)),
            }),
            Err(e) => match core.sessions().find_recent(&k.session) {
                Some(ended) => reply(Ok(ended_view(core, ended.record.id))),
                // A PPPoE subscriber switched to an LNS (LAC, issue 15): by user name or
                // `lac/L2TP-SESSION`.
                None => match core.lac_find(&k.session, now) {
                    Some(v) => reply(Ok(proto::SessionView::Switched(Box::new(v)))),
                    None => reply(Err::<(), _>(e.to_string())),
                },
            },
        },
        Request::SessionAdd(s) => reply((|| {
            s.limits.check().map_err(|(f, m)| format!("{f}: {m}"))?;
            if let Some(bad) = s
                .services
                .iter()
                .flatten()
                .find(|n| core.service_index(n).is_none())
            {
                return Err(format!("no service is named {bad:?}"));
            }
            let request = crate::setup::static_session(cfg, s);
            let id = core.open_session(now, request).map_err(|e| e.to_string())?;
            Ok(proto::SessionId { session: id })
        })()),
        Request::SessionRemove(k) => match (|| {
            let cause = tollgate_control_core::gateway::sessions::cause(k.cause.as_deref())?;
            let id = core
                .close_session(&k.session, cause)
                .map_err(|e| e.to_string())?;
            Ok((
                id,
                proto::SessionRemoved {
                    session: id,
                    cause: cause.name().to_string(),
                },
            ))
        })() {
            Ok((id, v)) => after_stops(core, &[id], Reply::with(&v)),
            Err(e) => reply(Err::<(), _>(e)),
        },
        Request::SessionUpdate(c) => reply((|| {
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
                l2tp_session: None,
            };
            core.update_session(now, &c.session, update)
                .map_err(|e| e.to_string())?;
            Ok(proto::SessionId { session: id })
        })()),
        Request::ServerSet(c) => reply((|| {
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
            Ok(proto::ServerSet {
                service: c.service.clone(),
                server: idx,
            })
        })()),
        Request::SessionLogin(a) => {
            if a.user.is_none() && a.mac.is_none() && a.mobile_id.is_none() && a.address.is_none() {
                return reply(Err::<(), _>(
                    "give user (and password), or mac, mobile_id or address".into(),
                ));
            }
            if let Some(u) = a
                .user
                .as_deref()
                .filter(|u| u.is_empty() || u.contains('\0'))
            {
                return reply(Err::<(), _>(format!(
                    "user name {u:?}: must not be empty or contain NUL"
                )));
            }
            let r = tollgate_control_core::gateway::aaa::LoginRequest {
                user: a.user.clone(),
                password: a.password.clone(),
                address: a.address,
                mac: a.mac.map(|m| m.0),
                mobile_id: a.mobile_id.clone(),
                channel: a.channel,
                first_packet: false,
                ..Default::default()
            };
            match core.login(now, r) {
                Ok(id) => Step::Login(id),
                Err(e) => reply(Err::<(), _>(e)),
            }
        }
        Request::SessionLogout(a) => match (|| {
            let cause = tollgate_control_core::gateway::sessions::cause(Some(
                a.cause.as_deref().unwrap_or("user_request"),
            ))?;
            let cause_name = cause.name().to_string();
            match (&a.session, &a.user) {
                (Some(k), None) => {
                    let id = core.close_session(k, cause).map_err(|e| e.to_string())?;
                    let v = proto::LoggedOut::Sessions {
                        sessions: vec![id],
                        cause: cause_name,
                    };
                    Ok((vec![id], v))
                }
                (None, Some(u)) => match core.logout_user(u, cause) {
                    ids if ids.is_empty() => Err(format!("{u} has no open session")),
                    ids => {
                        let v = proto::LoggedOut::User {
                            user: u.clone(),
                            ended: ids.len() as u64,
                            cause: cause_name,
                        };
                        Ok((ids, v))
                    }
                },
                _ => Err("give either session (id or address) or user".into()),
            }
        })() {
            Ok((ids, v)) => after_stops(core, &ids, Reply::with(&v)),
            Err(e) => reply(Err::<(), _>(e)),
        },
        Request::SubscriberAdd(a) => {
            match serde_json::from_value::<crate::store::import::Record>(a.record.clone()) {
                Ok(r) => Step::Store(crate::aaa::StoreOp::Add(Box::new(r), a.replace)),
                Err(e) => reply(Err::<(), _>(format!("bad subscriber record: {e}"))),
            }
        }
        Request::SubscriberRemove(a) => Step::Store(crate::aaa::StoreOp::Remove(a.user.clone())),
        Request::SubscriberShow(a) => Step::Store(crate::aaa::StoreOp::Show(a.user.clone())),
        Request::SubscriberList => Step::Store(crate::aaa::StoreOp::List),
        Request::SubscriberImport(a) => match (|| {
            let format = match a.format.as_deref() {
                Some("toml") => crate::store::import::Format::Toml,
                Some("csv") => crate::store::import::Format::Csv,
                Some(f) => return Err(format!("format {f:?}: use toml or csv")),
                None => crate::store::import::Format::of(std::path::Path::new(&a.file))
                    .ok_or("cannot tell the format from the file name: give format")?,
            };
            Ok(crate::aaa::StoreOp::Import {
                text: a.text.clone(),
                file: a.file.clone(),
                format,
                replace: a.replace,
            })
        })() {
            Ok(op) => Step::Store(op),
            Err(e) => reply(Err::<(), _>(e)),
        },
        Request::LbSet(c) => reply((|| {
            let mac: tollgate_dataplane::MacAddr = c.mac.parse().map_err(|e| format!("{e}"))?;
            core.set_lb_target(mac, up_down(&c.state)?)?;
            Ok(proto::LbChange {
                mac: mac.to_string(),
                state: c.state.clone(),
            })
        })()),
        _ => Step::Wait(Wait::default()),
    }
}

/// Answers a request, once what [`start`] waited for is there.
pub fn finish(
    req: &Request,
    ctx: &Context<'_>,
    sessions: Option<tollgate_control_core::gateway::SessionReport>,
) -> Reply {
    match req {
        Request::Help => Reply::with(&help()),
        Request::ShowStatus => Reply::with(&status(ctx)),
        Request::ShowPorts => Reply::with(&ports(ctx)),
        Request::ShowWorkers => Reply::with(&workers(ctx)),
        Request::ShowCounters => Reply::with(&counters(ctx.reports, ctx.core, ctx.dispatch)),
        Request::ShowNeighbors => Reply::with(&neighbors(&ctx.core.neighbors(), ctx.now)),
        Request::ShowSessions => Reply::with(&sessions_view(ctx.core, ctx.now, sessions.as_ref())),
        Request::ShowSession(_) => {
            let r = sessions.as_ref();
            match r.and_then(|r| r.counters.iter().next()) {
                Some((id, c)) => {
                    let c6 = r.and_then(|r| r.ipv6.get(id));
                    Reply::with(&session_view(ctx.core, *id, ctx.now, Some(c), c6))
                }
                None => Reply::error("the session ended or did not answer; try again"),
            }
        }
        Request::ShowServices => Reply::with(&services(ctx.core)),
        Request::ShowLb => Reply::with(&lb(ctx.core)),
        Request::ShowAccounting => match ctx.aaa {
            Some(a) => Reply::with(&a.accounting(ctx.now)),
            None => Reply::error("no accounting here (replay)"),
        },
        Request::ShowHealth => match ctx.aaa {
            Some(a) => Reply::with(&a.health()),
            None => Reply::with(&Vec::<proto::HealthTarget>::new()),
        },
        Request::ShowCluster => match ctx.aaa.and_then(|a| a.cluster()) {
            Some(v) => Reply::with(&v),
            None => Reply::error(
                "no cluster: it needs the PostgreSQL backend ([database] url); a single node on SQLite is not a cluster",
            ),
        },
        Request::ShowPools => Reply::with(&pools(ctx.core)),
        Request::ShowLogins => Reply::with(&logins(ctx)),
        Request::ShowTunnels | Request::ShowTunnel(_) => {
            crate::ctl::l2tp::show(req, ctx.core.l2tp(), ctx.now)
                .unwrap_or_else(|| Reply::error("unknown tunnel command"))
        }
        Request::ShowInvoice { .. }
        | Request::BillingStatus
        | Request::BillingClosePeriod { .. }
        | Request::BillingInvoice { .. }
        | Request::BillingInvoices { .. }
        | Request::BillingRerate { .. }
        | Request::BillingImport(_) => {
            crate::ctl::billing::handle(req, ctx.rater, crate::clock::unix_s())
        }
        // Carried out by `start`; not here.
        other => Reply::error(format!(
            "`{}` is not answered here; `help` lists the commands",
            other.name()
        )),
    }
}

/// The `help` answer: every command, one line each.
pub fn help() -> Vec<proto::HelpLine> {
    crate::proto::help::GATEWAY
        .iter()
        .chain(crate::proto::help::BILLING)
        .chain(crate::proto::help::L2TP)
        .map(|(c, d)| proto::HelpLine {
            command: c.to_string(),
            description: d.to_string(),
        })
        .collect()
}

fn session_counters(c: &tollgate_dataplane::session::SessionCounters) -> proto::SessionCounters {
    proto::SessionCounters {
        tx_packets: c.tx_packets,
        tx_bytes: c.tx_bytes,
        rx_packets: c.rx_packets,
        rx_bytes: c.rx_bytes,
    }
}

/// The IPv4 share of `all` once `ipv6` (its IPv6 share) is taken out.
fn ipv4_share(all: &DpCounters, ipv6: &DpCounters) -> DpCounters {
    DpCounters {
        tx_packets: all.tx_packets.saturating_sub(ipv6.tx_packets),
        tx_bytes: all.tx_bytes.saturating_sub(ipv6.tx_bytes),
        rx_packets: all.rx_packets.saturating_sub(ipv6.rx_packets),
        rx_bytes: all.rx_bytes.saturating_sub(ipv6.rx_bytes),
    }
}

type DpCounters = tollgate_dataplane::session::SessionCounters;

fn open_session(
    core: &Core,
    id: u32,
    now: Instant,
    c: Option<&DpCounters>,
    c6: Option<&DpCounters>,
) -> Option<proto::OpenSession> {
    let s = core.sessions().get(id)?;
    let names = core.service_names();
    let services: Vec<String> = (0..names.len() as u16)
        .filter(|i| s.spec.services.allows(*i))
        .map(|i| names[i as usize].clone())
        .collect();
    Some(proto::OpenSession {
        session: id,
        ses_state: core.aaa_session(id).map(|a| a.state.name().to_string()),
        acct_session_id: core.aaa_session(id).map(|a| a.acct_id.clone()),
        user: s.user.clone(),
        address: s.spec.address.to_string(),
        mac: s.spec.mac.map(|m| m.to_string()),
        channel: s.spec.channel,
        worker: s.worker,
        start: core.clock().rfc3339(s.spec.started),
        age_s: now.since(s.spec.started).as_secs(),
        bandwidth_up: s.spec.bandwidth.up_bps,
        bandwidth_down: s.spec.bandwidth.down_bps,
        services,
        counters: c.map(session_counters),
        counters_ipv4: c
            .zip(c6)
            .map(|(all, v6)| session_counters(&ipv4_share(all, v6))),
        counters_ipv6: c.and(c6).map(session_counters),
        ipv6_prefix: core
            .ipv6()
            .and_then(|v| v.prefix_of(id))
            .map(|p| p.to_string()),
        ipv6_address: core
            .ipv6()
            .and_then(|v| v.dhcpv6_lease_of(id))
            .and_then(|l| l.grant.address)
            .map(|a| a.to_string()),
        delegated_prefix: core
            .ipv6()
            .and_then(|v| v.dhcpv6_lease_of(id))
            .and_then(|l| l.grant.prefix)
            .map(|p| p.to_string()),
        // A PPPoE subscriber's PPP state (issue 14).
        ppp: core.ppp_view(id).map(|p| p.fields()),
        // An LNS subscriber's L2TP call and PPP state (issue 15).
        l2tp_call: core.lns_call_fields(id),
    })
}

fn session_view(
    core: &Core,
    id: u32,
    now: Instant,
    c: Option<&DpCounters>,
    c6: Option<&DpCounters>,
) -> proto::SessionView {
    match open_session(core, id, now, c, c6) {
        Some(s) => proto::SessionView::Open(Box::new(s)),
        None => ended_view(core, id),
    }
}

fn ended_view(core: &Core, id: u32) -> proto::SessionView {
    match core.sessions().recent(id) {
        Some(e) => {
            let r = &e.record;
            proto::SessionView::Ended(proto::EndedSession {
                session: id,
                user: e.user.clone(),
                address: r.address.to_string(),
                mac: e.mac.map(|m| m.to_string()),
                channel: r.channel,
                start: core.clock().rfc3339(r.started),
                stop: core.clock().rfc3339(r.stopped),
                cause: r.cause.name().to_string(),
                counters: session_counters(&r.counters),
            })
        }
        None => proto::SessionView::Unknown { session: id },
    }
}

fn sessions_view(
    core: &Core,
    now: Instant,
    report: Option<&tollgate_control_core::gateway::SessionReport>,
) -> Vec<proto::SessionView> {
    core.sessions()
        .all()
        .filter_map(|(id, _)| {
            let c = report.and_then(|r| r.counters.get(id));
            open_session(core, *id, now, c, report.and_then(|r| r.ipv6.get(id)))
        })
        .map(|s| proto::SessionView::Open(Box::new(s)))
        .collect()
}

fn up_or_down(up: bool) -> String {
    if up { "up" } else { "down" }.to_string()
}

fn services(core: &Core) -> Vec<proto::Service> {
    let names = core.service_names();
    core.forwarding()
        .services
        .all()
        .iter()
        .enumerate()
        .map(|(i, s)| proto::Service {
            service: names.get(i).cloned().unwrap_or_default(),
            vip: s.vip.to_string(),
            protocol: match s.protocol {
                6 => "tcp",
                17 => "udp",
                _ => "icmp",
            }
            .to_string(),
            port: s.port,
            policy: s.policy.name().to_string(),
            session_type: s.session_type.name().to_string(),
            servers: s
                .servers
                .iter()
                .enumerate()
                .map(|(j, r)| proto::Server {
                    server: j as u64,
                    address: r.address.to_string(),
                    port: r.port,
                    state: up_or_down(r.up),
                    weight: r.weight.into(),
                    priority: r.priority.into(),
                    response_us: r.response_us.into(),
                    cpu_load: r.cpu_load.into(),
                })
                .collect(),
        })
        .collect()
}

fn pools(core: &Core) -> Vec<proto::Pool> {
    let p = core.pools();
    p.pools
        .iter()
        .map(|pool| proto::Pool {
            pool: pool.name.clone(),
            ranges: pool
                .ranges
                .iter()
                .map(|r| {
                    let node = r.node.and_then(|n| p.nodes.get(n));
                    proto::PoolRange {
                        first: r.first.to_string(),
                        last: r.last.to_string(),
                        size: r.size() as u64,
                        assigned: r.assigned as u64,
                        node: node.map(|n| n.name.clone()),
                        node_state: node.map(|n| up_or_down(n.up)),
                    }
                })
                .collect(),
        })
        .collect()
}

fn logins(ctx: &Context<'_>) -> proto::Logins {
    let s = ctx.core.aaa_stats();
    let (mut act, mut dormant) = (0, 0);
    for (id, _) in ctx.core.sessions().all() {
        match ctx.core.aaa_session(*id).map(|a| a.state) {
            Some(tollgate_control_core::gateway::aaa::SesState::Dormant) => dormant += 1,
            _ => act += 1,
        }
    }
    let shell = ctx.aaa.map(|a| a.stats());
    proto::Logins {
        sessions: proto::SesStates { act, dormant },
        logins_pending: ctx.core.logins_pending() as u64,
        logins: s.logins,
        accepted: s.accepted,
        rejected: s.rejected,
        unavailable: s.unavailable,
        busy: s.busy,
        failed: s.failed,
        resumed: s.resumed,
        login_victims: s.login_victims,
        accounting: proto::AccountingCounts {
            starts: s.starts,
            interims: s.interims,
            stops: s.stops,
            spooled: shell.map(|x| x.acct_spooled),
            sent: shell.map(|x| x.acct_sent),
            done: shell.map(|x| x.acct_done),
            last_known_rounds: s.last_known_rounds,
            last_known: s.last_known,
        },
        dormant_transitions: s.dormant,
    }
}

fn lb(core: &Core) -> Vec<proto::LbRange> {
    core.forwarding()
        .lb
        .ranges()
        .iter()
        .map(|r| proto::LbRange {
            first: r.first.to_string(),
            last: r.last.to_string(),
            chosen: r.chosen().map(|m| m.to_string()),
            targets: r
                .targets
                .iter()
                .map(|t| proto::LbTarget {
                    mac: t.mac.to_string(),
                    state: up_or_down(t.up),
                })
                .collect(),
        })
        .collect()
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

fn status(ctx: &Context<'_>) -> proto::Status {
    let (c, _) = total(ctx.reports);
    proto::Status {
        version: env!("CARGO_PKG_VERSION").to_string(),
        pid: ctx.info.pid,
        config: ctx.info.config.clone(),
        socket: ctx.info.socket.clone(),
        uptime_s: ctx.now.since(ctx.info.started).as_secs(),
        workers: ctx.info.workers.len() as u64,
        backend: ctx.info.ports[0].backend.clone(),
        rx_packets: c.rx_packets(),
        tx_packets: c.tx_packets(),
        drops: c.total_drops(),
        neighbors: ctx.core.neighbors().len() as u64,
    }
}

fn side(s: &SideCounters) -> proto::SideCounters {
    proto::SideCounters {
        rx_packets: s.rx_packets,
        rx_bytes: s.rx_bytes,
        tx_packets: s.tx_packets,
        tx_bytes: s.tx_bytes,
    }
}

fn ports(ctx: &Context<'_>) -> Vec<proto::Port> {
    let (c, p) = total(ctx.reports);
    Side::ALL
        .iter()
        .map(|s| {
            let i = &ctx.info.ports[s.idx()];
            let n = &c.sides[s.idx()];
            let ps = &p[s.idx()];
            proto::Port {
                side: s.name().to_string(),
                backend: i.backend.clone(),
                interface: i.interface.clone(),
                mac: i.mac.clone(),
                address: i.address.clone(),
                rx_packets: n.rx_packets,
                rx_bytes: n.rx_bytes,
                tx_packets: n.tx_packets,
                tx_bytes: n.tx_bytes,
                rx_dropped: ps.rx_dropped,
                rx_late: ps.rx_late,
                rx_too_big: ps.rx_too_big,
                rx_no_buffer: ps.rx_no_buffer,
                rx_to_kernel: ps.rx_to_kernel,
                rx_max_wait_ms: ps.rx_max_wait_us as f64 / 1000.0,
                tx_errors: ps.tx_errors,
                rx_loss: rx_loss(&i.backend, ps),
            }
        })
        .collect()
}

/// Why a port lost frames below the workers, in words (`None` if it lost none).
pub(crate) fn rx_loss(backend: &str, ps: &PortStats) -> Option<String> {
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
    (!why.is_empty()).then(|| why.join("; "))
}

fn workers(ctx: &Context<'_>) -> Vec<proto::Worker> {
    ctx.info
        .workers
        .iter()
        .map(|w| {
            let r = ctx.reports.get(w.id as usize).and_then(|r| r.as_ref());
            proto::Worker {
                worker: w.id,
                cpu: w.cpu.map(|c| c as u64),
                reported: r.is_some(),
                report: r.map(|r| {
                    let c = &r.counters;
                    let busy = if c.polls == 0 {
                        0.0
                    } else {
                        100.0 * c.busy_polls as f64 / c.polls as f64
                    };
                    proto::WorkerNumbers {
                        polls: c.polls,
                        busy_polls: c.busy_polls,
                        busy_pct: (busy * 10.0).round() / 10.0,
                        rx_packets: c.rx_packets(),
                        tx_packets: c.tx_packets(),
                        drops: c.total_drops(),
                        held: r.held_now as u64,
                        neighbors: r.neighbors as u64,
                        sessions: r.sessions as u64,
                        flows: r.flows as u64,
                        report_age_ms: ctx.now.since(r.at).as_millis() as u64,
                    }
                }),
            }
        })
        .collect()
}

/// The `show counters` answer: per side, drops by reason (all of them), engine counters,
/// and what the control thread counts.
pub fn counters(
    reports: &[Option<WorkerReport>],
    core: &Core,
    dispatch: DispatchStats,
) -> proto::Counters {
    let (c, _) = total(reports);
    let held: u64 = reports.iter().flatten().map(|r| r.held_now as u64).sum();
    let drops: BTreeMap<String, u64> = DropReason::ALL
        .iter()
        .map(|r| (r.name().to_string(), c.dropped(*r)))
        .collect();
    let engine: BTreeMap<String, u64> = c
        .named()
        .iter()
        .map(|(k, v)| (k.to_string(), *v))
        .chain(std::iter::once(("held_now".to_string(), held)))
        .collect();
    let cs = core.stats();
    proto::Counters {
        sides: proto::Sides {
            access: side(&c.sides[0]),
            core: side(&c.sides[1]),
        },
        drops,
        drops_total: c.total_drops(),
        engine,
        control: proto::ControlCounters {
            punts: cs.punts,
            punts_malformed: cs.punts_malformed,
            events: cs.events,
            arp_requests: cs.arp_requests,
            neighbors_installed: cs.neighbors_installed,
            flow_limits: cs.flow_limits,
            nat_ports_exhausted: cs.nat_ports_exhausted,
            command_retries: dispatch.command_retries,
            commands_dropped: dispatch.commands_dropped,
            injects_dropped: dispatch.injects_dropped,
        },
        pppoe: core
            .pppoe_counters()
            .into_iter()
            .chain(core.lns_counters())
            .chain(core.lac_counters())
            .collect(),
        ipv6: core
            .ipv6()
            .map(|v| v.counters().into_iter().collect())
            .unwrap_or_default(),
        dhcp: core.dhcp_counters().into_iter().collect(),
    }
}

/// The `show neighbors` answer.
pub fn neighbors(list: &[Neighbor], now: Instant) -> Vec<proto::Neighbor> {
    list.iter()
        .map(|n| proto::Neighbor {
            address: n.ip.to_string(),
            side: n.side.name().to_string(),
            mac: n.mac().map(|m| m.to_string()),
            state: n.state_name().to_string(),
            age_s: now.since(n.since).as_secs(),
        })
        .collect()
}
