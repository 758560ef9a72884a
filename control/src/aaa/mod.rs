//! The I/O shell around the core's logins and accounting: the local subscriber store on
//! its own thread (an Argon2 check costs tens of milliseconds), the RADIUS authentication
//! and accounting clients, the durable spool, the RFC 5176 listener and the health
//! checks. The router hands it what the core produced ([`crate::router::Aaa`]) and
//! lets it move what is ready ([`AaaShell::poll`]); nothing here blocks except the
//! spool's one commit per pass (an fsync).

mod health_checks;
mod store_thread;
pub mod udp;
mod views;

use self::health_checks::HealthChecks;
use self::store_thread::{StoreJob, StoreThread};
pub use self::store_thread::{StoreOp, authenticate_local};

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::Context as _;
use crossbeam::channel::{Receiver, Sender, unbounded};
use serde_json::{Value, json};
use tollgate_dataplane::MacAddr;
use tollgate_dataplane::service::Policy;
use tollgate_dataplane::time::Instant;

use crate::aaa::udp::{UdpClient, UdpCoaListener};
use crate::config::aaa::AuthBackend;
use crate::config::{CheckType, Config};
use crate::health::probe::Prober;
use crate::outlets::Outlets;
use crate::proto::Reply;
use crate::router::AaaOutput;
use crate::spool::{Spool, SpoolError, SpoolId, SpoolOptions};
use crate::store::import::{self, Format, Record};
use crate::store::{Store, SubscriberView};
use tollgate_control_core::gateway::aaa::{AuthAnswer, AuthRequest, LoginId};
use tollgate_control_core::gateway::records;
use tollgate_control_core::gateway::{Core, RecordKind};
use tollgate_control_core::health::{CheckKind, Health, Scheduler, Target, TargetId};
use tollgate_control_core::radius::attrs::{self, AcctRecord, LastKnown, NasIdentity};
use tollgate_control_core::radius::client::{Client, ClientEvent, FailReason, RequestId};
use tollgate_control_core::radius::coa::{CoaClient, Listener};
use tollgate_control_core::radius::dict::std_attr as sa;
use tollgate_control_core::radius::packet::{Attribute, Code};

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
fn recovered_usage(stop: &AcctRecord) -> tollgate_control_core::rating::SessionUsage {
    let c = &stop.counters;
    tollgate_control_core::rating::SessionUsage {
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
    usage: Vec<tollgate_control_core::rating::Record>,
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
                usage.push(tollgate_control_core::rating::Record::Session(
                    recovered_usage(r),
                ));
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
            |servers: Vec<tollgate_control_core::radius::ServerConfig>| -> anyhow::Result<Option<UdpClient>> {
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
                let mut p = match &req.chap {
                    // PPP CHAP: CHAP-Password and CHAP-Challenge (RFC 2865 5.3).
                    Some(ch) => attrs::chap_access_request(
                        &self.nas,
                        &user,
                        (ch.id, &ch.challenge, &ch.response),
                        req.calling_station.as_deref(),
                    ),
                    None => attrs::access_request(
                        &self.nas,
                        &user,
                        password.as_bytes(),
                        req.calling_station.as_deref(),
                    ),
                };
                // A PPPoE subscriber: Framed-Protocol, NAS-Port-Type, NAS-Port-Id, TR-101.
                if let Some(line) = &req.line {
                    line.push(&mut p);
                }
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

    /// At shutdown, after the last route (which committed what was left): tries to
    /// deliver it until `deadline`; what is not acknowledged by then goes out after the
    /// next start.
    pub fn finish(&mut self, core: &mut Core, deadline: Instant) {
        let now = Instant::now().min(deadline);
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
}

/// What the core produced for logins and accounting, from the router: authentication
/// requests go to the store thread or RADIUS, accounting records are committed to the
/// spool (all of a pass in one transaction, at the pass's end), finished logins answer
/// their ctl request.
impl crate::router::Aaa for AaaShell {
    fn take(&mut self, core: &mut Core, now: Instant, out: AaaOutput) {
        match out {
            AaaOutput::Authenticate(req) => self.authenticate(core, now, req),
            AaaOutput::Account(r) => self.unsaved.push(r),
            AaaOutput::LastKnown(batch) => self.last_known.extend(batch),
            AaaOutput::Usage(r) => {
                if self.rater.is_some() {
                    self.usage.push(r)
                }
            }
            AaaOutput::LoginDone(login, result) => {
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
        }
    }

    fn end_pass(&mut self, now: Instant) {
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
                        .filter(|r| {
                            r.status == tollgate_control_core::radius::dict::AcctStatusType::Stop
                        })
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
}
