//! The rating ledger (SPEC RATE-1..5, TUN-5): where the rules of
//! `tollgate_control_core::rating` meet SQLite. [`store`] keeps records, plans and
//! invoices; [`Rater`] ties the plan of the config and the store together for the daemon
//! (`ctl::billing`) and the command line (`tollgate billing`); [`staging`] holds imports
//! that arrive over the control socket in parts. Time is Unix seconds, passed in;
//! `docs/rating.md` explains the model.

pub mod delivery;
pub mod staging;
pub mod store;

use std::io::BufRead;
use std::path::Path;

use serde::{Deserialize, Serialize};
use tollgate_control_core::rating::{
    BandwidthChange, Invoice, Overflow, Period, Plan, RatingConfig, Record, ServiceUsage,
    SessionUsage, TunnelUsage,
};

pub use self::store::{CloseStep, Store, Stored};

/// What can go wrong in rating.
#[derive(Debug, thiserror::Error)]
pub enum RatingError {
    /// The database refused an operation.
    #[error("{context}: {source}")]
    Db {
        /// What was being done.
        context: String,
        /// The database's error.
        source: crate::database::backend::BackendError,
    },
    /// The ledger was written by a newer Tollgate.
    #[error(
        "rating ledger {file}: schema version {found} is newer than this build knows \
         ({supported}); it was written by a newer Tollgate"
    )]
    SchemaTooNew {
        /// The ledger file.
        file: String,
        /// Version in the file.
        found: i64,
        /// Newest this build knows.
        supported: i64,
    },
    /// The cluster's database cannot be used (unreachable, refusing, a URL that does not
    /// read).
    #[error("rating ledger: {0}")]
    Database(crate::database::DatabaseError),
    /// The ledger's schema could not be brought up to date (the error names the file).
    #[error("rating ledger {0}")]
    Migration(crate::migrate::MigrateError),
    /// A file or directory could not be used.
    #[error("{path}: {message}")]
    Io {
        /// The path.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// A record is malformed.
    #[error("{kind} record {id:?}: {message}")]
    InvalidRecord {
        /// Its kind.
        kind: &'static str,
        /// Its id.
        id: String,
        /// What is wrong.
        message: String,
    },
    /// A record id is already used by a different record.
    #[error("a {kind} record with id {id:?} is already stored with different content")]
    Conflict {
        /// Its kind.
        kind: &'static str,
        /// Its id.
        id: String,
    },
    /// Stored data cannot be read back.
    #[error("{what}: {message}")]
    Corrupt {
        /// What.
        what: String,
        /// Why.
        message: String,
    },
    /// An amount or quantity does not fit 64 bits.
    #[error("{0} does not fit in 64 bits")]
    Overflow(String),
    /// The period has not ended yet.
    #[error("period {period} ends at {ends}; it cannot be closed before then")]
    PeriodOpen {
        /// The period.
        period: String,
        /// Its end (RFC 3339).
        ends: String,
    },
    /// The period was never closed.
    #[error("period {0} is not closed")]
    NotClosed(String),
    /// No invoice for this account and period.
    #[error("no invoice for account {account:?} in {period}")]
    NoInvoice {
        /// Account.
        account: String,
        /// Period.
        period: String,
    },
    /// A close was interrupted at a step (fault injection).
    #[error("closing {period} was interrupted after step {step}; nothing of it was kept")]
    Interrupted {
        /// The period.
        period: String,
        /// The step.
        step: &'static str,
    },
}

impl From<Overflow> for RatingError {
    fn from(o: Overflow) -> RatingError {
        RatingError::Overflow(o.0)
    }
}

/// Reads a JSON-lines file of records; errors name the line. Blank lines and lines
/// starting with `#` are skipped.
pub fn read_jsonl(path: &Path) -> Result<Vec<Record>, String> {
    let reader: Box<dyn BufRead> = if path.as_os_str() == "-" {
        Box::new(std::io::BufReader::new(std::io::stdin()))
    } else {
        let f = std::fs::File::open(path)
            .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
        Box::new(std::io::BufReader::new(f))
    };
    let mut out = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let at = || format!("{}: line {}", path.display(), i + 1);
        let line = line.map_err(|e| format!("{}: {e}", at()))?;
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let r: Record = serde_json::from_str(t).map_err(|e| format!("{}: {e}", at()))?;
        r.validate()
            .map_err(|m| format!("{}: {} record {:?}: {m}", at(), r.kind(), r.id()))?;
        if out.len() == staging::MAX_IMPORT_RECORDS {
            return Err(format!(
                "{}: more than {} records in one file: nothing was stored; split it",
                at(),
                staging::MAX_IMPORT_RECORDS
            ));
        }
        out.push(r);
    }
    Ok(out)
}

/// What an import stored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportReport {
    /// Records stored now.
    pub stored: u64,
    /// Records that were already there.
    pub duplicates: u64,
}

/// What closing a period did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloseReport {
    /// The period.
    pub period: String,
    /// False when it had been closed before (nothing was done).
    pub closed_now: bool,
    /// When it was closed.
    pub closed_at: i64,
    /// Invoices written.
    pub invoices: u64,
    /// Sum of their totals, minor units.
    pub total: i64,
    /// Records nothing could rate (`kind:id`, at most 20 listed).
    pub unrated: Vec<String>,
    /// How many records were unrated.
    pub unrated_count: u64,
}

/// What a re-rating found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RerateReport {
    /// The period.
    pub period: String,
    /// True when every invoice came out byte for byte as stored.
    pub identical: bool,
    /// Invoices compared.
    pub invoices: u64,
    /// Accounts whose invoice differs (or is missing on one side).
    pub differing: Vec<String>,
    /// Records stored after the close that fall into the period (not rated).
    pub late_records: i64,
}

/// An invoice as answered: stored (closed period) or computed now (provisional).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceAnswer {
    /// True when the period is not closed: charges so far, may still change.
    pub provisional: bool,
    /// The invoice.
    pub invoice: Invoice,
}

/// The rating engine of a gateway: the plan from the config and the store. The control
/// plane calls [`Rater::record_session`] and friends as usage is accounted.
#[derive(Debug)]
pub struct Rater {
    plan: Plan,
    store: Store,
    /// Imports arriving in parts over the control socket.
    staging: std::cell::RefCell<staging::Staging>,
}

impl Rater {
    /// Opens the database at `path` with the plan of `cfg`.
    pub fn open(path: &Path, cfg: &RatingConfig) -> Result<Rater, RatingError> {
        let plan = Plan::compile(cfg).map_err(|(k, m)| RatingError::Corrupt {
            what: format!("key `{k}`"),
            message: m,
        })?;
        Ok(Rater::with_store(plan, Store::open(path)?))
    }

    /// Opens the ledger in the cluster's PostgreSQL (`[database]`) with the plan of `cfg`.
    pub fn open_postgres(
        db: &crate::database::DatabaseConfig,
        cfg: &RatingConfig,
    ) -> Result<Rater, RatingError> {
        let plan = Plan::compile(cfg).map_err(|(k, m)| RatingError::Corrupt {
            what: format!("key `{k}`"),
            message: m,
        })?;
        Ok(Rater::with_store(plan, Store::open_postgres(db)?))
    }

    /// A rater over an existing store.
    pub fn with_store(plan: Plan, store: Store) -> Rater {
        Rater {
            plan,
            store,
            staging: Default::default(),
        }
    }

    /// The plan in use.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Stores a session's counters (at Stop, or an interim difference).
    pub fn record_session(&self, r: &SessionUsage) -> Result<Stored, RatingError> {
        self.store.insert(&Record::Session(r.clone()))
    }

    /// Stores a change of a session's declared bandwidth (config, ctl, CoA,
    /// service-level change): a change point of the integral.
    pub fn record_bandwidth_change(&self, r: &BandwidthChange) -> Result<Stored, RatingError> {
        self.store.insert(&Record::Bandwidth(r.clone()))
    }

    /// Stores a customer's use of a tunnel and physical line.
    pub fn record_tunnel_usage(&self, r: &TunnelUsage) -> Result<Stored, RatingError> {
        self.store.insert(&Record::Tunnel(r.clone()))
    }

    /// Stores metered use of a supplementary service.
    pub fn record_service_usage(&self, r: &ServiceUsage) -> Result<Stored, RatingError> {
        self.store.insert(&Record::Service(r.clone()))
    }

    /// Part `part` of import `id` (a file sent in parts): held until the `last` part,
    /// then the whole import is stored in one transaction, all or none. `None` while
    /// parts are still to come. An error discards the whole import.
    pub fn import_part(
        &self,
        id: &str,
        part: u32,
        records: Vec<Record>,
        last: bool,
        now: i64,
    ) -> Result<Option<ImportReport>, String> {
        let all = self
            .staging
            .borrow_mut()
            .add(id, part, records, last, now)
            .map_err(|e| e.to_string())?;
        match all {
            None => Ok(None),
            Some(all) => self
                .import(&all)
                .map(Some)
                .map_err(|e| format!("{e}: nothing of import {id:?} was stored")),
        }
    }

    /// Forgets the parts held of import `id` (a later part was refused).
    pub fn discard_import(&self, id: &str) {
        self.staging.borrow_mut().discard(id);
    }

    /// Stores many records in one transaction: all or none.
    pub fn import(&self, records: &[Record]) -> Result<ImportReport, RatingError> {
        let tx = self.store.begin()?;
        let mut rep = ImportReport::default();
        for r in records {
            match self.store.insert(r)? {
                Stored::New => rep.stored += 1,
                Stored::Duplicate => rep.duplicates += 1,
            }
        }
        tx.commit("the import")?;
        Ok(rep)
    }

    /// Closes `period` at `now`: rates it and stores its invoices, in one transaction.
    /// Closing a closed period again changes nothing and answers what was stored.
    pub fn close_period(&self, period: Period, now: i64) -> Result<CloseReport, RatingError> {
        self.close_period_with(period, now, &mut |_| Ok(()))
    }

    /// [`Rater::close_period`], calling `step` after each step; an error from it
    /// abandons the run (fault injection: everything done so far is rolled back).
    pub fn close_period_with(
        &self,
        period: Period,
        now: i64,
        step: &mut dyn FnMut(CloseStep) -> Result<(), RatingError>,
    ) -> Result<CloseReport, RatingError> {
        let name = period.to_string();
        let end = period.end(&self.plan.zone);
        if now < end {
            return Err(RatingError::PeriodOpen {
                period: name,
                ends: tollgate_control_core::rating::calendar::format_utc(end),
            });
        }
        let tx = self.store.begin_close()?;
        if let Some(report) = self.store.period_report(&name)? {
            let mut r: CloseReport =
                serde_json::from_str(&report).map_err(|e| RatingError::Corrupt {
                    what: format!("the report of period {name}"),
                    message: e.to_string(),
                })?;
            r.closed_now = false;
            return Ok(r);
        }
        let watermark = self.store.watermark()?;
        let plan_id = self.store.plan_id(&self.plan.to_json())?;
        step(CloseStep::PlanStored)?;
        let from = period.start(&self.plan.zone);
        let records = self.store.load(from, end, watermark)?;
        let rated =
            tollgate_control_core::rating::rate::rate_period(&self.plan, &records, period, end)?;
        step(CloseStep::Rated)?;
        let total = rated
            .invoices
            .iter()
            .try_fold(0i64, |s, i| s.checked_add(i.total))
            .ok_or_else(|| RatingError::Overflow(format!("the total of {name}")))?;
        let report = CloseReport {
            period: name.clone(),
            closed_now: true,
            closed_at: now,
            invoices: rated.invoices.len() as u64,
            total,
            unrated: rated.unrated.iter().take(20).cloned().collect(),
            unrated_count: rated.unrated.len() as u64,
        };
        self.store.insert_period(
            &store::ClosedPeriod {
                period: name.clone(),
                plan: plan_id,
                closed_at: now,
                watermark,
            },
            &serde_json::to_string(&report).unwrap_or_default(),
        )?;
        for (i, inv) in rated.invoices.iter().enumerate() {
            self.store
                .insert_invoice(&name, &inv.account, inv.total, &inv.to_json())?;
            if i == 0 {
                step(CloseStep::InvoicesWritten)?;
            }
        }
        step(CloseStep::BeforeCommit)?;
        tx.commit(&format!("period {name}"))?;
        Ok(report)
    }

    /// The invoice of `account` for `period`: as stored when the period is closed, else
    /// computed from the records so far (provisional).
    pub fn invoice(
        &self,
        account: &str,
        period: Period,
        now: i64,
    ) -> Result<InvoiceAnswer, RatingError> {
        let name = period.to_string();
        if self.store.period(&name)?.is_some() {
            let body =
                self.store
                    .invoice(&name, account)?
                    .ok_or_else(|| RatingError::NoInvoice {
                        account: account.to_string(),
                        period: name.clone(),
                    })?;
            return Ok(InvoiceAnswer {
                provisional: false,
                invoice: Invoice::from_json(&body).map_err(|m| RatingError::Corrupt {
                    what: format!("the invoice of {account} for {name}"),
                    message: m,
                })?,
            });
        }
        let rated = self.rate_open(period, now)?;
        rated
            .invoices
            .into_iter()
            .find(|i| i.account == account)
            .map(|invoice| InvoiceAnswer {
                provisional: true,
                invoice,
            })
            .ok_or(RatingError::NoInvoice {
                account: account.to_string(),
                period: name,
            })
    }

    /// Every invoice of `period` (stored, or provisional when it is open).
    pub fn invoices(&self, period: Period, now: i64) -> Result<(bool, Vec<Invoice>), RatingError> {
        let name = period.to_string();
        if self.store.period(&name)?.is_some() {
            let mut out = Vec::new();
            for (account, body) in self.store.invoices(&name)? {
                out.push(Invoice::from_json(&body).map_err(|m| RatingError::Corrupt {
                    what: format!("the invoice of {account} for {name}"),
                    message: m,
                })?);
            }
            return Ok((false, out));
        }
        Ok((true, self.rate_open(period, now)?.invoices))
    }

    fn rate_open(
        &self,
        period: Period,
        now: i64,
    ) -> Result<tollgate_control_core::rating::rate::Rated, RatingError> {
        let from = period.start(&self.plan.zone);
        let to = period.end(&self.plan.zone);
        let records = self.store.load(from, to, self.store.watermark()?)?;
        Ok(tollgate_control_core::rating::rate::rate_period(
            &self.plan,
            &records,
            period,
            now.min(to),
        )?)
    }

    /// Rates a closed period again from the stored records (up to its watermark) with
    /// the stored plan, and compares with the stored invoices byte for byte.
    pub fn rerate(&self, period: Period) -> Result<RerateReport, RatingError> {
        let name = period.to_string();
        let closed = self
            .store
            .period(&name)?
            .ok_or_else(|| RatingError::NotClosed(name.clone()))?;
        let plan = Plan::from_json(&self.store.plan_body(closed.plan)?).map_err(|m| {
            RatingError::Corrupt {
                what: format!("the plan of period {name}"),
                message: m,
            }
        })?;
        let from = period.start(&plan.zone);
        let to = period.end(&plan.zone);
        let records = self.store.load(from, to, closed.watermark)?;
        let rated = tollgate_control_core::rating::rate::rate_period(&plan, &records, period, to)?;
        let stored = self.store.invoices(&name)?;
        let fresh: Vec<(String, String)> = rated
            .invoices
            .iter()
            .map(|i| (i.account.clone(), i.to_json()))
            .collect();
        let mut differing: Vec<String> = Vec::new();
        for (a, body) in &fresh {
            if stored.iter().find(|(s, _)| s == a).map(|(_, b)| b) != Some(body) {
                differing.push(a.clone());
            }
        }
        for (a, _) in &stored {
            if !fresh.iter().any(|(f, _)| f == a) {
                differing.push(a.clone());
            }
        }
        differing.sort();
        differing.dedup();
        Ok(RerateReport {
            period: name,
            identical: differing.is_empty(),
            invoices: fresh.len() as u64,
            differing,
            late_records: self.store.late(from, to, closed.watermark)?,
        })
    }
}

#[cfg(test)]
mod tests;
