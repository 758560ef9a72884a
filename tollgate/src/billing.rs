//! The command-line shells of rating: `tollgate billing ...` works on the database
//! directly, without the daemon; `tollgate ctl billing ...` asks a running daemon.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};
use serde_json::Value;

use tollgate_control::config::Config;
use tollgate_control::ctl::client;
use tollgate_control::ctl::proto::{Answer, BillingImport, Imported, Invoices, Request};
use tollgate_control::ctl::render::invoice as to_table;
use tollgate_control::rating::{CloseStep, InvoiceAnswer, Rater, RatingError, Store, read_jsonl};
use tollgate_control_core::rating::invoice::{Invoice, to_csv};
use tollgate_control_core::rating::{Period, Plan, RatingConfig};

/// `tollgate billing`: rate and invoice from the rating database, without the daemon.
#[derive(Args, Debug)]
pub struct BillingArgs {
    /// The rating database file [default: the ledger of --config: its [database]
    /// (PostgreSQL) or rating.database].
    #[arg(long, global = true)]
    pub db: Option<PathBuf>,
    /// Config file whose [rating] section is the plan (needed to close a period or to
    /// see a provisional invoice).
    #[arg(long, short, global = true)]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    command: BillingCmd,
}

#[derive(Subcommand, Debug)]
enum BillingCmd {
    /// Store usage records from a JSON-lines file (one record per line; docs/rating.md).
    /// All or nothing; records already stored are skipped.
    Import {
        /// The file (`-` reads standard input).
        file: PathBuf,
    },
    /// Rate a finished period and store its invoices [default: the last finished one].
    ClosePeriod {
        /// `YYYY-MM`.
        period: Option<String>,
    },
    /// Print an account's invoice.
    Invoice {
        /// The billing account.
        account: String,
        /// `YYYY-MM` [default: the current period, provisional].
        period: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Print every invoice of a period.
    Invoices {
        /// `YYYY-MM` [default: the current period, provisional].
        period: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Rate a closed period again and compare with its stored invoices (exit 1 if any
    /// differs).
    Rerate {
        /// `YYYY-MM`.
        period: String,
    },
    /// Records by kind and closed periods.
    Status,
}

/// How invoices are printed.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// A table for people.
    Table,
    /// CSV, one row per line plus a total row (amounts in minor units).
    Csv,
    /// JSON (the stored canonical form).
    Json,
}

fn fail(msg: &str, code: u8) -> ExitCode {
    eprintln!("tollgate: {msg}");
    ExitCode::from(code)
}

/// Runs `tollgate billing ...`.
pub fn run(args: BillingArgs) -> ExitCode {
    let (rating, cluster, have_plan) = match &args.config {
        Some(c) => match Config::load(c) {
            Ok(cfg) => (cfg.rating, cfg.database, true),
            Err(e) => return fail(&e.to_string(), 2),
        },
        None => (RatingConfig::default(), None, false),
    };
    let plan = match Plan::compile(&rating) {
        Ok(p) => p,
        Err((k, m)) => return fail(&format!("key `{k}`: {m}"), 2),
    };
    // --db names a file; without it the config's ledger: [database] or rating.database.
    let opened = match (args.db.clone(), cluster, rating.database.clone()) {
        (Some(db), _, _) | (None, None, Some(db)) => Store::open(&db),
        (None, Some(cluster), _) => Store::open_postgres(&cluster),
        (None, None, None) => {
            return fail(
                "no rating database: give --db FILE, or --config FILE with rating.database or [database]",
                2,
            );
        }
    };
    let store = match opened {
        Ok(s) => s,
        Err(e) => return fail(&e.to_string(), 1),
    };
    let rater = Rater::with_store(plan, store);
    // Tests close the current period by saying when "now" is (docs/rating.md).
    let now = match std::env::var("TOLLGATE_BILLING_NOW") {
        Err(_) => tollgate_control::clock::unix_s(),
        Ok(s) => match s.parse::<i64>() {
            Ok(t) => t,
            Err(_) => return fail(&format!("TOLLGATE_BILLING_NOW={s:?}: not Unix seconds"), 2),
        },
    };
    let need_plan = || {
        fail(
            "this needs the plan: give --config FILE (its [rating] section)",
            2,
        )
    };
    match args.command {
        BillingCmd::Import { file } => match read_jsonl(&file) {
            Err(e) => fail(&e, 2),
            Ok(records) => match rater.import(&records) {
                Ok(r) => {
                    println!(
                        "{}: {} records stored, {} already there",
                        file.display(),
                        r.stored,
                        r.duplicates
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e.to_string(), 1),
            },
        },
        BillingCmd::ClosePeriod { period } => {
            if !have_plan {
                return need_plan();
            }
            let p = match period.map(|p| Period::parse(&p)) {
                None => Period::containing(now, &rater.plan().zone).previous(),
                Some(Ok(p)) => p,
                Some(Err(e)) => return fail(&e, 2),
            };
            let abort_at = std::env::var("TOLLGATE_BILLING_ABORT_AT").ok();
            let mut hook = |s: CloseStep| -> Result<(), RatingError> {
                if abort_at.as_deref() == Some(s.name()) {
                    // Fault injection for tests: die as a crash would, mid-transaction.
                    std::process::abort();
                }
                Ok(())
            };
            match rater.close_period_with(p, now, &mut hook) {
                Ok(r) => {
                    println!(
                        "{} {}: {} invoices, total {} {} ({} records unrated)",
                        r.period,
                        if r.closed_now {
                            "closed"
                        } else {
                            "was already closed"
                        },
                        r.invoices,
                        tollgate_control_core::rating::money::format_minor(
                            r.total,
                            rater.plan().config.minor_digits
                        ),
                        rater.plan().config.currency,
                        r.unrated_count
                    );
                    for u in &r.unrated {
                        println!("unrated: {u}");
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e.to_string(), 1),
            }
        }
        BillingCmd::Invoice {
            account,
            period,
            format,
        } => {
            let p = match period.as_deref().map(Period::parse) {
                None => Period::containing(now, &rater.plan().zone),
                Some(Ok(p)) => p,
                Some(Err(e)) => return fail(&e, 2),
            };
            if !have_plan
                && rater
                    .store()
                    .period(&p.to_string())
                    .ok()
                    .flatten()
                    .is_none()
            {
                return need_plan();
            }
            match rater.invoice(&account, p, now) {
                Ok(a) => {
                    print!("{}", format_answer(&a, format));
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e.to_string(), 1),
            }
        }
        BillingCmd::Invoices { period, format } => {
            let p = match period.as_deref().map(Period::parse) {
                None => Period::containing(now, &rater.plan().zone),
                Some(Ok(p)) => p,
                Some(Err(e)) => return fail(&e, 2),
            };
            if !have_plan
                && rater
                    .store()
                    .period(&p.to_string())
                    .ok()
                    .flatten()
                    .is_none()
            {
                return need_plan();
            }
            match rater.invoices(p, now) {
                Ok((provisional, list)) => {
                    print!("{}", format_list(provisional, &list, format));
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e.to_string(), 1),
            }
        }
        BillingCmd::Rerate { period } => {
            let p = match Period::parse(&period) {
                Ok(p) => p,
                Err(e) => return fail(&e, 2),
            };
            match rater.rerate(p) {
                Ok(r) => {
                    println!(
                        "{}: {} invoices re-rated: {}; {} late records not rated",
                        r.period,
                        r.invoices,
                        if r.identical {
                            "identical, byte for byte".to_string()
                        } else {
                            format!("DIFFERENT for {}", r.differing.join(", "))
                        },
                        r.late_records
                    );
                    if r.identical {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::from(1)
                    }
                }
                Err(e) => fail(&e.to_string(), 1),
            }
        }
        BillingCmd::Status => {
            let s = rater.store();
            let counts = match s.counts() {
                Ok(c) => c,
                Err(e) => return fail(&e.to_string(), 1),
            };
            println!("database  {}", s.name());
            for (k, n) in counts {
                println!("records   {k:<10} {n}");
            }
            match s.periods() {
                Ok(ps) => {
                    for p in ps {
                        println!("closed    {}", p.period);
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e.to_string(), 1),
            }
        }
    }
}

fn format_answer(a: &InvoiceAnswer, format: Format) -> String {
    match format {
        Format::Json => serde_json::to_string_pretty(a).unwrap_or_default() + "\n",
        Format::Csv => to_csv(std::slice::from_ref(&a.invoice)),
        Format::Table => {
            let head = if a.provisional {
                "PROVISIONAL: the period is open; charges so far\n"
            } else {
                ""
            };
            format!("{head}{}", to_table(&a.invoice))
        }
    }
}

fn format_list(provisional: bool, list: &[Invoice], format: Format) -> String {
    match format {
        Format::Json => {
            // The daemon's `billing invoices` answer, the same JSON.
            let answer = Invoices {
                provisional,
                invoices: list.to_vec(),
            };
            serde_json::to_value(&answer)
                .and_then(|v| serde_json::to_string_pretty(&v))
                .unwrap_or_default()
                + "\n"
        }
        Format::Csv => to_csv(list),
        Format::Table => {
            let mut out = String::new();
            if provisional {
                out.push_str("PROVISIONAL: the period is open; charges so far\n");
            }
            for (i, inv) in list.iter().enumerate() {
                if i > 0 {
                    out.push('\n');
                }
                out.push_str(&to_table(inv));
            }
            if list.is_empty() {
                out.push_str("no invoices\n");
            }
            out
        }
    }
}

/// `tollgate ctl billing`: the same questions, asked of the running daemon.
#[derive(Subcommand, Debug)]
pub enum CtlBilling {
    /// Rating database, record counts, closed periods.
    Status,
    /// Rate a finished period and store its invoices [default: the last finished one].
    ClosePeriod {
        /// `YYYY-MM`.
        period: Option<String>,
    },
    /// An account's invoice [default period: the current one, provisional].
    Invoice {
        /// The billing account.
        account: String,
        /// `YYYY-MM`.
        period: Option<String>,
        /// Output format (`--json` prints the daemon's answer as is).
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Every invoice of a period.
    Invoices {
        /// `YYYY-MM`.
        period: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Re-rate a closed period and compare with its stored invoices.
    Rerate {
        /// `YYYY-MM`.
        period: String,
    },
    /// Send usage records from a JSON-lines file to the daemon.
    Import {
        /// The file (`-` reads standard input).
        file: PathBuf,
    },
}

const CTL_TIMEOUT: Duration = Duration::from_secs(60);
/// Records per import request (the socket takes lines up to 64 KiB).
const IMPORT_BYTES: usize = 48 * 1024;

/// Runs `tollgate ctl billing ...` against the daemon at `socket`.
pub fn run_ctl(socket: &Path, json_out: bool, cmd: CtlBilling) -> ExitCode {
    let (req, format) = match &cmd {
        CtlBilling::Status => (Request::BillingStatus, Format::Table),
        CtlBilling::ClosePeriod { period } => (
            Request::BillingClosePeriod {
                period: period.clone(),
            },
            Format::Table,
        ),
        CtlBilling::Invoice {
            account,
            period,
            format,
        } => (
            Request::BillingInvoice {
                account: account.clone(),
                period: period.clone(),
            },
            *format,
        ),
        CtlBilling::Invoices { period, format } => (
            Request::BillingInvoices {
                period: period.clone(),
            },
            *format,
        ),
        CtlBilling::Rerate { period } => (
            Request::BillingRerate {
                period: period.clone(),
            },
            Format::Table,
        ),
        CtlBilling::Import { file } => return ctl_import(socket, file, json_out),
    };
    let reply = match client::call(socket, &req, CTL_TIMEOUT) {
        Ok(r) if r.ok => r,
        Ok(r) => {
            return crate::ctl_fail(json_out, r.error.as_deref().unwrap_or("failed"), 1);
        }
        Err(e) => return crate::ctl_fail(json_out, &e, 1),
    };
    if json_out || format == Format::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(&reply.data).unwrap_or_default()
        );
        return ExitCode::SUCCESS;
    }
    let answer = match Answer::parse(&req, reply.data) {
        Ok(a) => a,
        Err(e) => return fail(&format!("unreadable answer to `{}`: {e}", req.name()), 1),
    };
    match (&answer, format) {
        (Answer::Invoice(a), Format::Csv) => print!("{}", to_csv(std::slice::from_ref(&a.invoice))),
        (Answer::Invoices(a), Format::Csv) => print!("{}", to_csv(&a.invoices)),
        _ => {
            print!("{}", tollgate_control::ctl::billing::render(&answer));
            if let Answer::Rerated(r) = &answer
                && !r.identical
            {
                return ExitCode::from(1);
            }
        }
    }
    ExitCode::SUCCESS
}

/// Sends a file to the daemon: in one request when it fits, else in numbered parts of
/// one import that the daemon holds until the last and stores in one transaction. Either
/// way the file is stored whole or not at all.
fn ctl_import(socket: &Path, file: &Path, json_out: bool) -> ExitCode {
    let records = match read_jsonl(file) {
        Ok(r) => r,
        Err(e) => return crate::ctl_fail(json_out, &e, 2),
    };
    let mut parts: Vec<Vec<Value>> = vec![Vec::new()];
    let mut size = 0;
    for r in &records {
        let Ok(v) = serde_json::to_value(r) else {
            continue;
        };
        let len = v.to_string().len();
        if size + len > IMPORT_BYTES && !parts.last().is_some_and(Vec::is_empty) {
            parts.push(Vec::new());
            size = 0;
        }
        size += len;
        if let Some(p) = parts.last_mut() {
            p.push(v);
        }
    }
    let id = import_id();
    let n = parts.len();
    let mut last = None;
    for (i, records) in parts.into_iter().enumerate() {
        let args = if n == 1 {
            BillingImport {
                records,
                import: None,
                part: None,
                more: None,
            }
        } else {
            BillingImport {
                records,
                import: Some(id.clone()),
                part: Some(i as u32),
                more: Some(i + 1 < n),
            }
        };
        match client::ask(socket, &Request::BillingImport(args), CTL_TIMEOUT) {
            Ok(Answer::Imported(Imported::Stored(r))) => last = Some(r),
            Ok(_) => {}
            Err(e) => return crate::ctl_fail(json_out, &format!("{}: {e}", file.display()), 1),
        }
    }
    let last = last.unwrap_or_default();
    println!(
        "{}: {} records stored, {} already there",
        file.display(),
        last.stored,
        last.duplicates
    );
    ExitCode::SUCCESS
}

/// A name for one import sent in parts: random, so two clients never share one.
fn import_id() -> String {
    let mut b = [0u8; 8];
    if tollgate_control::os_random::fill(&mut b).is_err() {
        b = (std::process::id() as u64 ^ tollgate_control::clock::unix_s() as u64).to_be_bytes();
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}
