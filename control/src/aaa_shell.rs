//! The I/O shell around the core's logins and accounting: the local subscriber store on
//! its own thread (an Argon2 check costs tens of milliseconds), the RADIUS authentication
//! and accounting clients, the durable spool, the RFC 5176 listener and the health
//! checks. The control loop hands it what the core produced ([`AaaShell::handle`]) and
//! lets it move what is ready ([`AaaShell::poll`]); nothing here blocks except the
//! spool's one commit per pass (an fsync).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::Context as _;
use crossbeam::channel::{Receiver, Sender, unbounded};
use serde_json::{Value, json};
use tollgate_dataplane::MacAddr;
use tollgate_dataplane::service::Policy;
use tollgate_dataplane::time::Instant;

use crate::aaa_config::AuthBackend;
use crate::config::{CheckType, Config};
use crate::core::aaa::{AuthAnswer, AuthRequest, LoginId};
use crate::core::records;
use crate::core::{Core, Output, RecordKind};
use crate::ctl::proto::Reply;
use crate::health::probe::Prober;
use crate::health::{CheckKind, Health, Scheduler, Target, TargetId};
use crate::outlets::Outlets;
use crate::radius::attrs::{self, AcctRecord, LastKnown, NasIdentity};
use crate::radius::client::{Client, ClientEvent, FailReason, RequestId};
use crate::radius::coa::{CoaClient, Listener};
use crate::radius::dict::std_attr as sa;
use crate::radius::packet::{Attribute, Code};
use crate::radius::udp::{UdpClient, UdpCoaListener};
use crate::spool::{Spool, SpoolError, SpoolId, SpoolOptions};
use crate::store::import::{self, Format, Record};
use crate::store::{Store, SubscriberView};

/// Checks a login against the local store: a password login by user name, else the first
/// identifier (mobile id, MAC, address) a subscriber has.
pub fn authenticate_local(store: &Store, req: &AuthRequest) -> AuthAnswer {
    let accept = |s: crate::store::Subscriber| AuthAnswer::Accept {
        user: s.user_id.clone(),
        authorization: Box::new(s.authorization()),
    };
    let unavailable = |e: crate::store::StoreError| AuthAnswer::Unavailable(e.to_string());
    if let Some(user) = &req.user {
        return match &req.password {
            Some(pw) => match store.verify_password(user, pw.as_bytes()) {
                Ok(Some(s)) => accept(s),
                Ok(None) => AuthAnswer::Reject("wrong user name or password".into()),
                Err(e) => unavailable(e),
            },
            // A login by name alone is for subscribers without a password.
            None => match store.get(user) {
                Ok(Some(s)) if s.password_hash.is_none() => accept(s),
                Ok(Some(_)) => AuthAnswer::Reject(format!("{user} needs a password")),
                Ok(None) => AuthAnswer::Reject(format!("no subscriber {user:?}")),
                Err(e) => unavailable(e),
            },
        };
    }
    for id in &req.identifiers {
        match store.lookup_by_identifier(id) {
            Ok(Some(s)) => return accept(s),
            Ok(None) => {}
            Err(e) => return unavailable(e),
        }
    }
    let ids: Vec<String> = req.identifiers.iter().map(|i| i.to_string()).collect();
    AuthAnswer::Reject(format!("no subscriber has {}", ids.join(" or ")))
}

/// A change to the local store asked over the control socket.
#[derive(Debug)]
pub enum StoreOp {
    /// `subscriber add`: a record as in an import file; `replace` an existing one.
    Add(Box<Record>, bool),
    /// `subscriber remove`.
    Remove(String),
    /// `subscriber show`.
    Show(String),
    /// `subscriber list`.
    List,
    /// `subscriber import`: a file's contents, its name and format.
    Import {
        /// The file's text.
        text: String,
        /// Its name (for errors).
        file: String,
        /// TOML or CSV.
        format: Format,
        /// Replace subscribers that exist.
        replace: bool,
    },
}

enum StoreJob {
    Auth(AuthRequest),
    Admin(StoreOp, Sender<Reply>),
}

/// The store's thread: answers logins and store changes in order.
struct StoreThread {
    jobs: Sender<StoreJob>,
    answers: Receiver<(LoginId, AuthAnswer)>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl StoreThread {
    fn start(store: Store) -> anyhow::Result<StoreThread> {
        let (jobs, rx) = unbounded::<StoreJob>();
        let (tx, answers) = unbounded();
        let handle = std::thread::Builder::new()
            .name("tg-store".into())
            .spawn(move || {
                let mut store = store;
                while let Ok(job) = rx.recv() {
                    match job {
                        StoreJob::Auth(req) => {
                            let a = authenticate_local(&store, &req);
                            if tx.send((req.login, a)).is_err() {
                                return;
                            }
                        }
                        StoreJob::Admin(op, reply) => {
                            let _ = reply.try_send(admin(&mut store, op));
                        }
                    }
                }
            })
            .context("starting the store thread")?;
        Ok(StoreThread {
            jobs,
            answers,
            handle: Some(handle),
        })
    }
}

impl Drop for StoreThread {
    fn drop(&mut self) {
        // Closing the job channel ends the thread.
        let (dead, _) = unbounded();
        self.jobs = dead;
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn admin(store: &mut Store, op: StoreOp) -> Reply {
    let r: Result<Value, String> = (|| match op {
        StoreOp::Add(rec, replace) => {
            let s = rec
                .to_subscriber(store.password_cost())
                .map_err(|(f, m)| format!("{f}: {m}"))?;
            let exists = store.get(&s.user_id).map_err(|e| e.to_string())?.is_some();
            if exists && replace {
                store.update(&s).map_err(|e| e.to_string())?;
                Ok(json!({"user": s.user_id, "replaced": true}))
            } else {
                store.add(&s).map_err(|e| e.to_string())?;
                Ok(json!({"user": s.user_id, "replaced": false}))
            }
        }
        StoreOp::Remove(user) => {
            store.remove(&user).map_err(|e| e.to_string())?;
            Ok(json!({"user": user}))
        }
        StoreOp::Show(user) => match store.get(&user).map_err(|e| e.to_string())? {
            Some(s) => serde_json::to_value(SubscriberView::from(&s)).map_err(|e| e.to_string()),
            None => Err(format!("no subscriber {user:?}")),
        },
        StoreOp::List => {
            let list = store.list().map_err(|e| e.to_string())?;
            let views: Vec<SubscriberView> = list.iter().map(SubscriberView::from).collect();
            serde_json::to_value(views).map_err(|e| e.to_string())
        }
        StoreOp::Import {
            text,
            file,
            format,
            replace,
        } => {
            let cost = store.password_cost();
            let records = match format {
                Format::Toml => import::parse_toml(&text, &file, cost),
                Format::Csv => import::parse_csv(&text, &file, cost),
            }
            .map_err(|e| e.to_string())?;
            let s = import::import_records(store, &file, &records, replace)
                .map_err(|e| e.to_string())?;
            Ok(json!({"file": file, "added": s.added, "replaced": s.replaced}))
        }
    })();
    match r {
        Ok(v) => Reply::ok(v),
        Err(e) => Reply::error(e),
    }
}

/// What a health target stands for.
#[derive(Clone, Debug)]
enum Checked {
    Server {
        service: u16,
        server: u16,
        fastest: bool,
    },
    Node {
        name: String,
        mac: Option<MacAddr>,
    },
}

/// The health checks (SES-3) and what their results change.
struct HealthChecks {
    scheduler: Scheduler,
    prober: Prober,
    targets: HashMap<TargetId, Checked>,
}

impl HealthChecks {
    fn new(cfg: &Config, now: Instant) -> HealthChecks {
        let d = &cfg.aaa.health;
        let mut h = HealthChecks {
            scheduler: Scheduler::new(),
            prober: Prober::new(),
            targets: HashMap::new(),
        };
        let mut add = |name: String, addr: IpAddr, kind: CheckKind, what: Checked| {
            let id = h.scheduler.add(
                now,
                Target {
                    name,
                    addr,
                    kind,
                    interval: Duration::from_millis(d.interval_ms),
                    timeout: Duration::from_millis(d.timeout_ms),
                    rise: d.rise,
                    fall: d.fall,
                },
            );
            h.targets.insert(id, what);
        };
        let kind = |t: CheckType, port: Option<u16>, path: &Option<String>| match t {
            CheckType::None => None,
            CheckType::Icmp => Some(CheckKind::Icmp),
            CheckType::Tcp => Some(CheckKind::Tcp { port: port? }),
            CheckType::Http => Some(CheckKind::Http {
                port: port?,
                path: path.clone().unwrap_or_else(|| "/".into()),
                host: None,
            }),
        };
        for (i, s) in cfg.services.iter().enumerate() {
            for (j, srv) in s.servers.iter().enumerate() {
                let port = srv.port.unwrap_or(s.port);
                if let Some(k) = kind(s.check, Some(port), &s.check_path) {
                    add(
                        format!("{}/{}:{port}", s.name, srv.address),
                        IpAddr::V4(srv.check_address.unwrap_or(srv.address)),
                        k,
                        Checked::Server {
                            service: i as u16,
                            server: j as u16,
                            fastest: s.policy == Policy::FastestResponse.name(),
                        },
                    );
                }
            }
        }
        for n in &cfg.nodes {
            if let (Some(k), Some(a)) = (kind(n.check, n.check_port, &n.check_path), n.address) {
                add(
                    format!("node {}", n.name),
                    IpAddr::V4(a),
                    k,
                    Checked::Node {
                        name: n.name.clone(),
                        mac: n.mac.map(|m| m.0),
                    },
                );
            }
        }
        h
    }

    fn poll(&mut self, core: &mut Core, now: Instant) {
        while let Some(p) = self.scheduler.poll_probe(now) {
            self.prober.start(now, p);
        }
        for o in self.prober.poll(now) {
            self.scheduler.on_result(now, o.target, o.seq, o.result);
            // Lowest CPU load: a server's HTTP check may report its load (X-Load).
            if let (
                Some(Checked::Server {
                    service, server, ..
                }),
                Some(load),
            ) = (self.targets.get(&o.target), o.load)
            {
                let old = core
                    .forwarding()
                    .services
                    .get(*service)
                    .and_then(|s| s.servers.get(*server as usize))
                    .map(|r| r.cpu_load);
                if old != Some(load) {
                    let _ = core.set_server(*service, *server, |r| r.cpu_load = load);
                }
            }
            // Fastest response: feed the response-time average to the balancer when it
            // moved by more than a tenth.
            if let (
                Some(Checked::Server {
                    service,
                    server,
                    fastest: true,
                }),
                Some(rtt),
            ) = (self.targets.get(&o.target), self.scheduler.rtt(o.target))
            {
                let us = rtt.as_micros().min(u32::MAX as u128) as u32;
                let old = core
                    .forwarding()
                    .services
                    .get(*service)
                    .and_then(|s| s.servers.get(*server as usize))
                    .map_or(0, |r| r.response_us);
                if old == 0 || us.abs_diff(old) > old / 10 {
                    let _ = core.set_server(*service, *server, |r| r.response_us = us.max(1));
                }
            }
        }
        while let Some(e) = self.scheduler.poll_event() {
            if e.to == Health::Unknown {
                continue;
            }
            let up = e.to == Health::Up;
            tracing::warn!(target = %e.name, from = e.from.name(), to = e.to.name(), reason = ?e.reason, "health changed");
            match self.targets.get(&e.target) {
                Some(Checked::Server {
                    service, server, ..
                }) => {
                    let _ = core.set_server(*service, *server, |r| r.up = up);
                }
                Some(Checked::Node { name, mac }) => {
                    core.set_node(name, up);
                    if let Some(m) = mac {
                        let _ = core.set_lb_target(*m, up);
                    }
                }
                None => {}
            }
        }
    }
}

/// What the shell counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShellStats {
    /// Accounting records committed to the spool.
    pub acct_spooled: u64,
    /// Accounting records sent to RADIUS (first attempts and retries).
    pub acct_sent: u64,
    /// Accounting records acknowledged (or, without accounting servers, done).
    pub acct_done: u64,
    /// Spool commits that failed (the records stay in memory and are retried).
    pub spool_errors: u64,
    /// Authentication requests sent to RADIUS.
    pub radius_auth: u64,
    /// Access-Challenges received (logins refused: multi-round authentication is not
    /// supported).
    pub auth_challenges: u64,
    /// Usage records the rating database refused.
    pub rating_errors: u64,
    /// How long the last commit with last known counters took, microseconds.
    pub last_known_commit_us: u64,
    /// Accounting records sent without attributes that did not fit in one packet.
    pub acct_left_out: u64,
    /// Accounting records set aside because they could not be encoded at all.
    pub acct_set_aside: u64,
}

/// The rating record of a session closed at restart.
fn recovered_usage(stop: &AcctRecord) -> crate::rating::SessionUsage {
    let c = &stop.counters;
    crate::rating::SessionUsage {
        id: stop.session_id.clone(),
        user: stop.user_name.clone(),
        account: None,
        session: stop.session_id.clone(),
        start: stop.event_time as i64 - stop.session_time_s as i64,
        stop: stop.event_time as i64,
        tx_packets: c.packets_up,
        tx_bytes: c.octets_up,
        rx_packets: c.packets_down,
        rx_bytes: c.octets_down,
        cause: Some("NAS-Reboot".into()),
    }
}

/// The shell.
pub struct AaaShell {
    rater: Option<crate::rating::Rater>,
    usage: Vec<crate::rating::Record>,
    nas: NasIdentity,
    backend: AuthBackend,
    mac_password: Option<String>,
    store: StoreThread,
    radius_auth: Option<UdpClient>,
    radius_acct: Option<UdpClient>,
    /// Access-Requests in flight: the login and the User-Name sent.
    auth_ids: HashMap<RequestId, (LoginId, String)>,
    /// Accounting-Requests in flight: the record and its session.
    acct_ids: HashMap<RequestId, (SpoolId, String)>,
    spool: Spool,
    unsaved: Vec<AcctRecord>,
    /// Sessions' last known counters for the next commit (only the newest per session
    /// matters; a failed commit keeps them for the next try).
    last_known: Vec<LastKnown>,
    acks: Vec<SpoolId>,
    coa: Option<UdpCoaListener>,
    health: HealthChecks,
    ctl_logins: HashMap<LoginId, Sender<Reply>>,
    /// ctl requests that ended sessions, answered once the Stops are on disk.
    stop_waiters: Vec<StopWaiter>,
    stats: ShellStats,
}

/// How long a ctl request that ended sessions waits for their Stops to be committed
/// before it is answered with an error (a worker that does not confirm the end, a spool
/// that cannot commit).
pub const STOP_WAIT: Duration = Duration::from_secs(10);

/// A ctl request waiting for Stops to be committed.
struct StopWaiter {
    /// Acct-Session-Ids whose Stops are not yet on disk.
    sessions: Vec<String>,
    reply: Reply,
    to: Sender<Reply>,
    deadline: Instant,
}

impl std::fmt::Debug for AaaShell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AaaShell({:?})", self.stats)
    }
}

/// A RADIUS client's dropped replies by reason (`show accounting`).
fn replies_dropped(s: &crate::radius::client::ClientStats) -> Value {
    json!({
        "bad_authenticator": s.bad_authenticator,
        "bad_message_authenticator": s.bad_message_authenticator,
        "missing_message_authenticator": s.missing_message_authenticator,
        "malformed": s.malformed,
        "wrong_code": s.wrong_code,
        "unknown_source": s.unknown_source,
        "unmatched": s.unmatched,
    })
}

fn unix_s(core: &Core, now: Instant) -> u64 {
    (core.clock().unix_ns(now).max(0) / 1_000_000_000) as u64
}

impl AaaShell {
    /// Opens the store, the spool (closing the sessions a previous run left open, with
    /// their Stops also in the session log), the RADIUS sockets and the CoA listener.
    /// Call before the core opens any session.
    pub fn open(
        cfg: &Config,
        core: &Core,
        outlets: &mut Outlets,
        now: Instant,
        rater: Option<crate::rating::Rater>,
    ) -> anyhow::Result<AaaShell> {
        let a = &cfg.aaa;
        let store = Store::open(&a.store)
            .with_context(|| format!("opening the subscriber store {}", a.store.display()))?;
        // The spool's own errors name its path and say what to do.
        let mut spool = Spool::open(
            &a.spool,
            SpoolOptions {
                retry_min: Duration::from_millis(a.spool_retry_min_ms),
                retry_max: Duration::from_millis(a.spool_retry_max_ms),
                start_afresh: a.spool_afresh,
                ..SpoolOptions::default()
            },
        )
        .map_err(|e| match e {
            e @ (SpoolError::InUse { .. } | SpoolError::Lost { .. }) => anyhow::Error::new(e),
            e => anyhow::Error::new(e).context(format!(
                "opening the accounting spool {}",
                a.spool.display()
            )),
        })?;
        let recovered = spool
            .recover(now, unix_s(core, now))
            .context("closing the sessions of the previous run")?;
        if !recovered.is_empty() {
            let records = spool.records().context("reading the spool")?;
            let mut usage = Vec::new();
            for (_, r) in records.iter().filter(|(id, _)| recovered.contains(id)) {
                outlets.record(RecordKind::Session, records::recovered(r).to_string());
                usage.push(crate::rating::Record::Session(recovered_usage(r)));
            }
            if let Some(rater) = &rater {
                if let Err(e) = rater.import(&usage) {
                    tracing::error!(error = %e, "rating the recovered sessions");
                }
            }
            outlets.flush();
            tracing::warn!(
                sessions = recovered.len(),
                "closed the sessions the previous run left open (NAS-Reboot, last known counters)"
            );
        }
        let bind =
            |servers: Vec<crate::radius::ServerConfig>| -> anyhow::Result<Option<UdpClient>> {
                if servers.is_empty() {
                    return Ok(None);
                }
                let random = crate::random::Random::new(&crate::os_random::seed()?);
                let client = Client::with_options(servers, a.client_options(), random);
                UdpClient::bind(SocketAddr::new(a.radius.source, 0), client)
                    .map(Some)
                    .context("binding the RADIUS client socket")
            };
        let radius_auth = match a.auth {
            AuthBackend::Radius => bind(a.auth_servers())?,
            AuthBackend::Local => None,
        };
        let radius_acct = bind(a.acct_servers())?;
        let coa = match a.coa.listen {
            Some(addr) => {
                let clients = a
                    .coa
                    .clients
                    .iter()
                    .map(|c| CoaClient {
                        addr: c.address,
                        secret: c.secret.as_bytes().to_vec(),
                        require_message_authenticator: c.require_message_authenticator,
                        require_event_timestamp: c.require_event_timestamp,
                    })
                    .collect();
                Some(
                    UdpCoaListener::bind(addr, Listener::new(clients, a.nas()))
                        .with_context(|| format!("binding the CoA listener on {addr}"))?,
                )
            }
            None => None,
        };
        Ok(AaaShell {
            rater,
            usage: Vec::new(),
            nas: a.nas(),
            backend: a.auth,
            mac_password: a.mac_password.clone(),
            store: StoreThread::start(store)?,
            radius_auth,
            radius_acct,
            auth_ids: HashMap::new(),
            acct_ids: HashMap::new(),
            spool,
            unsaved: Vec::new(),
            last_known: Vec::new(),
            acks: Vec::new(),
            coa,
            health: HealthChecks::new(cfg, now),
            ctl_logins: HashMap::new(),
            stop_waiters: Vec::new(),
            stats: ShellStats::default(),
        })
    }

    /// The CoA listener's address, when one listens.
    pub fn coa_addr(&self) -> Option<SocketAddr> {
        self.coa.as_ref().and_then(|c| c.local_addr().ok())
    }

    /// Answers `reply` when login `login` finishes (`ctl session login`).
    pub fn reply_on_login(&mut self, login: LoginId, reply: Sender<Reply>) {
        self.ctl_logins.insert(login, reply);
    }

    /// Answers `to` with `reply` once the Stops of `sessions` (Acct-Session-Ids) are
    /// committed to the spool (`ctl session remove`, `logout`): an acknowledged end is
    /// never lost to a crash. After [`STOP_WAIT`] it answers with an error instead.
    pub fn reply_after_stops(
        &mut self,
        sessions: Vec<String>,
        reply: Reply,
        to: Sender<Reply>,
        now: Instant,
    ) {
        self.stop_waiters.push(StopWaiter {
            sessions,
            reply,
            to,
            deadline: now + STOP_WAIT,
        });
    }

    /// Answers the waiters whose Stops are all committed (`committed`: the Stops just
    /// committed), or whose time is up (`now`), or all of them (`stopping`).
    fn answer_stop_waiters(&mut self, committed: &[&str], now: Instant, stopping: bool) {
        if self.stop_waiters.is_empty() {
            return;
        }
        for w in &mut self.stop_waiters {
            w.sessions.retain(|s| !committed.contains(&s.as_str()));
        }
        let (done, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.stop_waiters)
            .into_iter()
            .partition(|w| w.sessions.is_empty() || now >= w.deadline || stopping);
        self.stop_waiters = waiting;
        for w in done {
            let answer = if w.sessions.is_empty() {
                w.reply
            } else {
                let why = if stopping {
                    "the gateway is stopping; it commits them before it exits".to_string()
                } else if self
                    .unsaved
                    .iter()
                    .any(|r| w.sessions.contains(&r.session_id))
                {
                    format!(
                        "the spool cannot commit them ({} failed commits; see the log)",
                        self.stats.spool_errors
                    )
                } else {
                    format!(
                        "the fast path has not confirmed the end within {} s",
                        STOP_WAIT.as_secs()
                    )
                };
                Reply::error(format!(
                    "told to end, but the Stop of {} is not on disk yet: {why}",
                    w.sessions.join(", ")
                ))
            };
            let _ = w.to.try_send(answer);
        }
    }

    /// Runs a store change on the store thread; it answers `reply` itself.
    pub fn store_op(&self, op: StoreOp, reply: Sender<Reply>) {
        if let Err(e) = self.store.jobs.send(StoreJob::Admin(op, reply)) {
            if let StoreJob::Admin(_, reply) = e.0 {
                let _ = reply.try_send(Reply::error("the store thread has stopped"));
            }
        }
    }

    /// Acts on what the core produced: authentication requests go to the store thread
    /// or RADIUS, accounting records are committed to the spool (all of a pass in one
    /// transaction), finished logins answer their ctl request.
    pub fn handle(&mut self, core: &mut Core, outlets: &mut Outlets, now: Instant) {
        for o in std::mem::take(&mut outlets.aaa) {
            match o {
                Output::Authenticate(req) => self.authenticate(core, now, req),
                Output::Account(r) => self.unsaved.push(r),
                Output::LastKnown(batch) => self.last_known.extend(batch),
                Output::Usage(r) if self.rater.is_some() => self.usage.push(r),
                Output::LoginDone { login, result } => {
                    if let Some(reply) = self.ctl_logins.remove(&login) {
                        let _ = reply.try_send(match result {
                            Ok(l) => Reply::ok(json!({
                                "session": l.session,
                                "user": l.user,
                                "address": l.address.to_string(),
                                "resumed": l.resumed,
                                "acct_session_id": core.aaa_session(l.session).map(|s| s.acct_id.clone()),
                            })),
                            Err(e) => Reply::error(e),
                        });
                    }
                }
                _ => {}
            }
        }
        if let (Some(rater), false) = (&self.rater, self.usage.is_empty()) {
            // One transaction per pass; if one record is refused, the others still go in.
            if rater.import(&self.usage).is_err() {
                for r in &self.usage {
                    if let Err(e) = rater.import(std::slice::from_ref(r)) {
                        self.stats.rating_errors += 1;
                        tracing::error!(error = %e, record = ?r, "the rating database refused a usage record (the spool keeps the accounting)");
                    }
                }
            }
            self.usage.clear();
        }
        if !self.unsaved.is_empty() || !self.last_known.is_empty() {
            let started = std::time::Instant::now();
            match self.spool.commit(now, &self.unsaved, &self.last_known) {
                Ok(_) => {
                    let took = started.elapsed();
                    if !self.last_known.is_empty() {
                        self.stats.last_known_commit_us = took.as_micros() as u64;
                    }
                    self.stats.acct_spooled += self.unsaved.len() as u64;
                    let unsaved = std::mem::take(&mut self.unsaved);
                    let stops: Vec<&str> = unsaved
                        .iter()
                        .filter(|r| r.status == crate::radius::dict::AcctStatusType::Stop)
                        .map(|r| r.session_id.as_str())
                        .collect();
                    self.answer_stop_waiters(&stops, now, false);
                    self.last_known.clear();
                }
                Err(e) => {
                    self.stats.spool_errors += 1;
                    if self.stats.spool_errors == 1 || self.stats.spool_errors % 1000 == 0 {
                        tracing::error!(error = %e, waiting = self.unsaved.len(), "cannot commit accounting records; keeping them in memory and retrying");
                    }
                }
            }
        }
    }

    /// The rating engine, when `rating.database` is set.
    pub fn rater(&self) -> Option<&crate::rating::Rater> {
        self.rater.as_ref()
    }

    fn authenticate(&mut self, core: &mut Core, now: Instant, req: AuthRequest) {
        match (&self.backend, self.radius_auth.as_mut()) {
            (AuthBackend::Radius, Some(c)) => {
                let (user, password) = match (&req.user, &req.password) {
                    (Some(u), p) => (u.clone(), p.clone().unwrap_or_default()),
                    // First-packet and identifier logins: User-Name is the MAC (or the
                    // address), as RADIUS MAC authentication does.
                    (None, _) => {
                        let name = req
                            .identifiers
                            .first()
                            .map(|i| i.value())
                            .unwrap_or_default();
                        let pw = self.mac_password.clone().unwrap_or_else(|| name.clone());
                        (name, pw)
                    }
                };
                let mut p = attrs::access_request(
                    &self.nas,
                    &user,
                    password.as_bytes(),
                    req.calling_station.as_deref(),
                );
                if let Some(ip) = req.address {
                    p.push(Attribute::ipv4(sa::FRAMED_IP_ADDRESS, ip));
                }
                let id = c.client.send(now, p);
                self.stats.radius_auth += 1;
                self.auth_ids.insert(id, (req.login, user));
            }
            (AuthBackend::Radius, None) => core.on_auth(
                now,
                req.login,
                AuthAnswer::Unavailable("no RADIUS authentication server".into()),
            ),
            (AuthBackend::Local, _) => {
                let login = req.login;
                if self.store.jobs.send(StoreJob::Auth(req)).is_err() {
                    core.on_auth(
                        now,
                        login,
                        AuthAnswer::Unavailable("the store thread has stopped".into()),
                    );
                }
            }
        }
    }

    /// Moves what is ready: store answers, RADIUS replies and timers, spooled records
    /// out, CoA requests, health checks. Results reach the core at once.
    pub fn poll(&mut self, core: &mut Core, now: Instant) {
        while let Ok((login, answer)) = self.store.answers.try_recv() {
            core.on_auth(now, login, answer);
        }
        if let Some(c) = self.radius_auth.as_mut() {
            c.pump(now);
            while let Some(ev) = c.client.poll_event() {
                match ev {
                    ClientEvent::Reply { id, packet, .. } => {
                        let Some((login, user)) = self.auth_ids.remove(&id) else {
                            continue;
                        };
                        let answer = match packet.code {
                            Code::AccessAccept => match attrs::authorization(&packet) {
                                // The server may rename the user (User-Name in the Accept).
                                Ok(a) => AuthAnswer::Accept {
                                    user: packet
                                        .get(sa::USER_NAME)
                                        .and_then(|u| u.as_text().ok())
                                        .map_or(user, str::to_string),
                                    authorization: Box::new(a),
                                },
                                Err(e) => AuthAnswer::Reject(format!(
                                    "Access-Accept with a bad attribute: {e}"
                                )),
                            },
                            Code::AccessChallenge => {
                                // Not a refusal: the server wants another round, which
                                // no login path here can carry.
                                self.stats.auth_challenges += 1;
                                tracing::warn!(%user, "RADIUS Access-Challenge: multi-round authentication is not supported; login refused");
                                AuthAnswer::Unavailable(
                                    "the RADIUS server sent an Access-Challenge (multi-round authentication is not supported)".into(),
                                )
                            }
                            _ => AuthAnswer::Reject(
                                packet
                                    .get(sa::REPLY_MESSAGE)
                                    .and_then(|m| m.as_text().ok())
                                    .map_or_else(
                                        || "Access-Reject".into(),
                                        |m| format!("Access-Reject: {m}"),
                                    ),
                            ),
                        };
                        core.on_auth(now, login, answer);
                    }
                    ClientEvent::Failed { id, reason } => {
                        if let Some((login, user)) = self.auth_ids.remove(&id) {
                            tracing::warn!(%user, %reason, "RADIUS authentication failed");
                            core.on_auth(now, login, AuthAnswer::Unavailable(reason.to_string()));
                        }
                    }
                    ClientEvent::ServerDown(s) => {
                        tracing::warn!(server = %s, "RADIUS authentication server held down")
                    }
                    ClientEvent::ServerUp(s) => {
                        tracing::info!(server = %s, "RADIUS authentication server answers again")
                    }
                }
            }
        }
        self.deliver(core, now);
        self.answer_stop_waiters(&[], now, false);
        if let Some(l) = self.coa.as_mut() {
            let now_unix = unix_s(core, now);
            l.pump(now_unix, &mut core.coa_directory(now));
        }
        self.health.poll(core, now);
    }

    /// Sends spooled records to the accounting servers and deletes the acknowledged ones;
    /// without accounting servers a record is done once it is on disk (the spool still
    /// keeps the open sessions for a restart).
    fn deliver(&mut self, core: &Core, now: Instant) {
        let now_unix = unix_s(core, now);
        loop {
            let due = match self.spool.next_due(now) {
                Ok(Some(d)) => d,
                Ok(None) => break,
                Err(e) => {
                    tracing::error!(error = %e, "reading the accounting spool");
                    break;
                }
            };
            match self.radius_acct.as_mut() {
                Some(c) => {
                    let (request, left) = due.record.to_request_fitted(&self.nas, now_unix);
                    if !left.is_empty() && due.attempts == 0 {
                        self.stats.acct_left_out += 1;
                        tracing::warn!(
                            record = due.id,
                            session = %due.record.session_id,
                            status = due.record.status.name(),
                            class_left_out = left.class,
                            class_octets_left_out = left.class_octets,
                            attributes_left_out = left.attributes,
                            values_cut = left.cut,
                            "accounting record too big for one RADIUS packet (4096 octets): sent without what did not fit"
                        );
                    }
                    let id = c.client.send(now, request);
                    self.acct_ids.insert(id, (due.id, due.record.session_id));
                    self.stats.acct_sent += 1;
                }
                None => self.acks.push(due.id),
            }
        }
        if let Some(c) = self.radius_acct.as_mut() {
            c.pump(now);
            while let Some(ev) = c.client.poll_event() {
                match ev {
                    ClientEvent::Reply { id, .. } => {
                        if let Some((s, _)) = self.acct_ids.remove(&id) {
                            self.acks.push(s);
                        }
                    }
                    ClientEvent::Failed {
                        id,
                        reason: reason @ FailReason::Encode(_),
                    } => {
                        // It would fail the same way every time: out of the queue, so the
                        // session's later records (its Stop) go out.
                        if let Some((s, session)) = self.acct_ids.remove(&id) {
                            self.stats.acct_set_aside += 1;
                            tracing::error!(record = s, %session, %reason, "accounting record cannot be sent: set aside in the spool");
                            if let Err(e) = self.spool.set_aside(now, s, &reason.to_string()) {
                                tracing::error!(record = s, error = %e, "setting an accounting record aside");
                                self.spool.failed(now, s);
                            }
                        }
                    }
                    ClientEvent::Failed { id, reason } => {
                        if let Some((s, _)) = self.acct_ids.remove(&id) {
                            if matches!(reason, FailReason::BadReplies { .. }) {
                                tracing::warn!(record = s, %reason, "accounting record not acknowledged; retrying later");
                            } else {
                                tracing::debug!(record = s, %reason, "accounting record not acknowledged; retrying later");
                            }
                            self.spool.failed(now, s);
                        }
                    }
                    ClientEvent::ServerDown(s) => {
                        tracing::warn!(server = %s, "RADIUS accounting server held down")
                    }
                    ClientEvent::ServerUp(s) => {
                        tracing::info!(server = %s, "RADIUS accounting server answers again")
                    }
                }
            }
        }
        if !self.acks.is_empty() {
            match self.spool.ack_many(now, &self.acks) {
                Ok(()) => {
                    self.stats.acct_done += self.acks.len() as u64;
                    self.acks.clear();
                }
                Err(e) => tracing::error!(error = %e, "deleting acknowledged accounting records"),
            }
        }
    }

    /// When [`Self::poll`] next has timed work (RADIUS retransmissions, spool retries,
    /// health checks).
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.radius_auth
                .as_ref()
                .and_then(|c| c.client.poll_timeout()),
            self.radius_acct
                .as_ref()
                .and_then(|c| c.client.poll_timeout()),
            self.spool.poll_timeout(),
            self.health.scheduler.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// At shutdown: commits what is left and tries to deliver it until `deadline`; what
    /// is not acknowledged by then goes out after the next start.
    pub fn finish(&mut self, core: &mut Core, outlets: &mut Outlets, deadline: Instant) {
        let now = Instant::now().min(deadline);
        self.handle(core, outlets, now);
        self.answer_stop_waiters(&[], now, true);
        loop {
            let now = Instant::now();
            self.poll(core, now);
            let pending = self.spool.pending().unwrap_or(0);
            if pending == 0 || now >= deadline || self.radius_acct.is_none() {
                if pending > 0 {
                    tracing::warn!(
                        records = pending,
                        "accounting records left in the spool for the next start"
                    );
                }
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// What the shell counted.
    pub fn stats(&self) -> ShellStats {
        self.stats
    }

    /// `show accounting`: the spool and the servers.
    pub fn accounting_json(&self, now: Instant) -> Value {
        let servers = |c: &Option<UdpClient>| -> Value {
            c.as_ref().map_or(json!([]), |c| {
                Value::Array(
                    c.client
                        .servers(now)
                        .into_iter()
                        .map(|(a, up)| json!({"server": a.to_string(), "state": if up { "up" } else { "held_down" }}))
                        .collect(),
                )
            })
        };
        let auth_stats = self.radius_auth.as_ref().map(|c| c.client.stats());
        let acct_stats = self.radius_acct.as_ref().map(|c| c.client.stats());
        let sp = self.spool.stats();
        json!({
            "auth": match self.backend { AuthBackend::Local => "local", AuthBackend::Radius => "radius" },
            "spool": {
                "pending": self.spool.pending().unwrap_or(0),
                "in_flight": self.spool.in_flight(),
                "enqueued": sp.enqueued,
                "acked": sp.acked,
                "failed_attempts": sp.failed_attempts,
                "recovered": sp.recovered,
                "unsaved": self.unsaved.len(),
                "set_aside": sp.set_aside,
                "left_out": self.stats.acct_left_out,
                "last_known": sp.last_known,
                "last_known_commits": sp.last_known_commits,
                "last_known_commit_us": self.stats.last_known_commit_us,
                "commit_errors": self.stats.spool_errors,
            },
            "radius_auth_servers": servers(&self.radius_auth),
            "radius_acct_servers": servers(&self.radius_acct),
            "radius_auth": auth_stats.map(|s| json!({"requests": s.requests, "replies": s.replies, "retransmits": s.retransmits, "failed": s.failed, "replies_dropped": replies_dropped(&s), "challenges": self.stats.auth_challenges})),
            "radius_acct": acct_stats.map(|s| json!({"requests": s.requests, "replies": s.replies, "retransmits": s.retransmits, "failed": s.failed, "replies_dropped": replies_dropped(&s)})),
            "coa": self.coa.as_ref().map(|c| {
                let s = c.listener.stats();
                json!({"listen": c.local_addr().ok().map(|a| a.to_string()), "requests": s.requests, "acks": s.acks, "naks": s.naks, "dropped": s.unknown_client + s.bad_authenticator + s.bad_message_authenticator + s.missing_message_authenticator + s.malformed + s.wrong_code + s.stale + s.missing_event_timestamp, "duplicates": s.duplicates, "cache_full": s.cache_full})
            }),
        })
    }

    /// `show health`: every checked target.
    pub fn health_json(&self) -> Value {
        let mut list: Vec<_> = self.health.scheduler.status();
        list.sort_by_key(|(id, _)| *id);
        Value::Array(
            list.into_iter()
                .map(|(_, t)| {
                    json!({
                        "target": t.target.name,
                        "address": t.target.addr.to_string(),
                        "check": match &t.target.kind {
                            CheckKind::Icmp => "icmp".to_string(),
                            CheckKind::Tcp { port } => format!("tcp:{port}"),
                            CheckKind::Http { port, path, .. } => format!("http:{port}{path}"),
                        },
                        "state": t.health.name(),
                        "rtt_us": t.rtt_ewma.map(|d| d.as_micros() as u64),
                        "passed": t.passed,
                        "failed": t.failed,
                        "last_error": t.last_error,
                    })
                })
                .collect(),
        )
    }

    /// Fills the AAA families of a metrics rendering.
    pub fn metrics(&self, r: &mut crate::metrics::Registry) {
        if let Some(c) = &self.radius_auth {
            crate::metrics::aaa::radius_client(r, "auth", &c.client.stats());
            r.counter(
                "tollgate_radius_access_challenges_total",
                "Access-Challenges received: logins refused, multi-round authentication is not supported.",
            )
            .value(&[], self.stats.auth_challenges);
        }
        if let Some(c) = &self.radius_acct {
            crate::metrics::aaa::radius_client(r, "acct", &c.client.stats());
        }
        if let Some(c) = &self.coa {
            crate::metrics::aaa::coa_listener(r, &c.listener.stats());
        }
        crate::metrics::aaa::spool(
            r,
            &self.spool.stats(),
            self.spool.pending().unwrap_or(0),
            self.spool.in_flight(),
        );
        r.counter(
            "tollgate_accounting_left_out_total",
            "Accounting records sent without attributes that did not fit in 4096 octets.",
        )
        .value(&[], self.stats.acct_left_out);
        let status: Vec<_> = self
            .health
            .scheduler
            .status()
            .into_iter()
            .map(|(_, s)| s)
            .collect();
        crate::metrics::aaa::health(r, &status);
    }
}
