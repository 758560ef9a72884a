//! The shell's start: the subscriber store's thread, the spool (closing the sessions a
//! previous run left open), the RADIUS client sockets and the CoA listener.

use super::*;

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
        let store = match &cfg.database {
            Some(db) => Store::open_postgres(db).with_context(|| {
                format!(
                    "opening the subscriber store in the cluster database {}",
                    db.target()
                )
            })?,
            None => Store::open(&a.store)
                .with_context(|| format!("opening the subscriber store {}", a.store.display()))?,
        };
        let spool = open_spool(cfg, core, outlets, now, rater.is_some())?;
        let radius_auth = match a.auth {
            AuthBackend::Radius => bind(cfg, a.auth_servers())?,
            AuthBackend::Local => None,
        };
        let radius_acct = bind(cfg, a.acct_servers())?;
        let database = match &cfg.database {
            Some(db) => Some(
                crate::database::accounting::Delivery::start(db, spool.identity())
                    .context("opening the cluster database for accounting records")?,
            ),
            None => None,
        };
        let cluster = match &cfg.database {
            Some(db) => Some(
                crate::database::cluster::Cluster::start(
                    db,
                    &cfg.cluster.clone().unwrap_or_default(),
                    crate::setup::cluster_ranges(cfg),
                )
                .context("starting the cluster heartbeat")?,
            ),
            None => None,
        };
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
        let ledger = match (&rater, &cfg.database, &cfg.rating.database) {
            (None, _, _) => None,
            (Some(_), Some(db), _) => Some(crate::rating::delivery::Ledger::Postgres(db.clone())),
            (Some(_), None, Some(path)) => {
                Some(crate::rating::delivery::Ledger::Sqlite(path.clone()))
            }
            (Some(_), None, None) => None,
        };
        let ledger = match ledger {
            Some(l) => Some(LedgerQueue {
                delivery: crate::rating::delivery::UsageDelivery::start(l)
                    .context("starting the rating ledger's delivery thread")?,
                in_flight: Vec::new(),
                attempts: 0,
                next: now,
                retry_min: Duration::from_millis(a.spool_retry_min_ms),
                retry_max: Duration::from_millis(a.spool_retry_max_ms),
            }),
            None => None,
        };
        Ok(AaaShell {
            rater,
            usage: Vec::new(),
            ledger,
            nas: a.nas(),
            backend: a.auth,
            mac_password: a.mac_password.clone(),
            store: StoreThread::start(store, Duration::from_secs(cfg.pppoe.auth_timeout_s))?,
            radius_auth,
            radius_acct,
            auth_ids: HashMap::new(),
            acct_ids: HashMap::new(),
            spool,
            unsaved: Vec::new(),
            last_known: Vec::new(),
            acks: Vec::new(),
            database,
            to_database: HashMap::new(),
            cluster,
            coa,
            health: HealthChecks::new(cfg, now),
            ctl_logins: HashMap::new(),
            placing: Default::default(),
            stop_waiters: StopWaiters::default(),
            stats: ShellStats::default(),
        })
    }
}

/// Opens the spool and closes the sessions a previous run left open: their Stops (with
/// the last known counters) go to the spool and the session log, and with rating on
/// their usage records to the spool in the same transaction (the ledger gets them from
/// there).
fn open_spool(
    cfg: &Config,
    core: &Core,
    outlets: &mut Outlets,
    now: Instant,
    rated: bool,
) -> anyhow::Result<Spool> {
    let a = &cfg.aaa;
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
        .recover_rated(now, unix_s(core, now), |stop| {
            rated.then(|| tollgate_control_core::rating::Record::Session(recovered_usage(stop)))
        })
        .context("closing the sessions of the previous run")?;
    if !recovered.is_empty() {
        let records = spool.records().context("reading the spool")?;
        for (_, r) in records.iter().filter(|(id, _)| recovered.contains(id)) {
            outlets.record(RecordKind::Session, records::recovered(r).to_string());
        }
        outlets.flush();
        tracing::warn!(
            sessions = recovered.len(),
            "closed the sessions the previous run left open (NAS-Reboot, last known counters)"
        );
    }
    Ok(spool)
}

/// A RADIUS client of `servers` on its own socket (none without servers).
fn bind(
    cfg: &Config,
    servers: Vec<tollgate_control_core::radius::ServerConfig>,
) -> anyhow::Result<Option<UdpClient>> {
    if servers.is_empty() {
        return Ok(None);
    }
    let a = &cfg.aaa;
    let random = crate::random::Random::new(&crate::os_random::seed()?);
    let client = Client::with_options(servers, a.client_options(), random);
    UdpClient::bind(SocketAddr::new(a.radius.source, 0), client)
        .map(Some)
        .context("binding the RADIUS client socket")
}

/// The rating record of a session closed at restart.
pub(super) fn recovered_usage(stop: &AcctRecord) -> tollgate_control_core::rating::SessionUsage {
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
