//! The `billing ...` and `show invoice ...` commands of the control socket: their
//! answers (the rating engine's reports, [`proto::BillingStatus`], [`proto::Invoices`],
//! [`proto::Imported`]; JSON in `docs/ctl.md`), and their tables for `tollgate ctl`.

use std::fmt::Write as _;

use serde_json::Value;

use tollgate_control_core::rating::Period;
use tollgate_control_core::rating::usage::Record;

use super::render::{Cell, invoice as to_table};
use crate::proto::{self, Answer, Reply, Request};
use crate::rating::staging::MAX_IMPORT_RECORDS;
use crate::rating::{Rater, RatingError};

fn period_arg(word: Option<&String>, default: Period) -> Result<Period, String> {
    word.map_or(Ok(default), |w| Period::parse(w))
}

/// Answers a `billing ...` or `show invoice ...` request. `now` is the wall clock
/// (Unix seconds).
pub fn handle(req: &Request, rater: Option<&Rater>, now: i64) -> Reply {
    let Some(rater) = rater else {
        return Reply::error(
            "rating is off: set rating.database or [database] in the config (docs/config.md)",
        );
    };
    let current = Period::containing(now, &rater.plan().zone);
    let err = |e: RatingError| e.to_string();
    match req {
        Request::BillingStatus => Reply::of(status(rater)),
        Request::BillingClosePeriod { period } => Reply::of(
            period_arg(period.as_ref(), current.previous())
                .and_then(|p| rater.close_period(p, now).map_err(err)),
        ),
        Request::BillingInvoice { account, period } | Request::ShowInvoice { account, period } => {
            Reply::of(
                period_arg(period.as_ref(), current)
                    .and_then(|p| rater.invoice(account, p, now).map_err(err)),
            )
        }
        Request::BillingInvoices { period } => {
            Reply::of(period_arg(period.as_ref(), current).and_then(|p| {
                rater
                    .invoices(p, now)
                    .map(|(provisional, invoices)| proto::Invoices {
                        provisional,
                        invoices,
                    })
                    .map_err(err)
            }))
        }
        Request::BillingRerate { period } => {
            Reply::of(Period::parse(period).and_then(|p| rater.rerate(p).map_err(err)))
        }
        Request::BillingImport(a) => Reply::of(import(rater, a, now)),
        other => Reply::error(format!(
            "`{}` is not a billing command; try: {}",
            other.name(),
            crate::proto::help::BILLING
                .iter()
                .map(|(c, _)| *c)
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

fn status(rater: &Rater) -> Result<proto::BillingStatus, String> {
    let s = rater.store();
    let records = s
        .counts()
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|(k, n)| (k, n as u64))
        .collect();
    let closed_periods: Vec<String> = s
        .periods()
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|p| p.period)
        .collect();
    let p = rater.plan();
    Ok(proto::BillingStatus {
        database: s.name().to_string(),
        records,
        closed_periods,
        tariffs: p.tariffs.iter().map(|t| t.name.clone()).collect(),
        accounts: p.accounts.len() as u64,
        bandwidth_method: serde_json::to_value(p.config.bandwidth_method)
            .map_err(|e| e.to_string())?,
        timezone_offset_minutes: p.config.timezone_offset_minutes,
        time_zone: p.config.time_zone.clone(),
        currency: p.config.currency.clone(),
    })
}

fn import(rater: &Rater, a: &proto::BillingImport, now: i64) -> Result<proto::Imported, String> {
    let parsed = a
        .records
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let r: Record =
                serde_json::from_value(v.clone()).map_err(|e| format!("records[{i}]: {e}"))?;
            r.validate()
                .map_err(|m| format!("records[{i}] ({} {:?}): {m}", r.kind(), r.id()))?;
            Ok(r)
        })
        .collect::<Result<Vec<Record>, String>>();
    let part = a.part.unwrap_or(0);
    let Some(id) = &a.import else {
        let records = parsed?;
        if records.len() > MAX_IMPORT_RECORDS {
            return Err(format!(
                "{} records in one import: at most {MAX_IMPORT_RECORDS}; nothing was stored",
                records.len()
            ));
        }
        return rater
            .import(&records)
            .map(proto::Imported::Stored)
            .map_err(|e: RatingError| e.to_string());
    };
    let records = parsed.map_err(|e| {
        rater.discard_import(id);
        format!("part {part}: {e}: nothing of import {id:?} is stored")
    })?;
    match rater.import_part(id, part, records, !a.more.unwrap_or(false), now)? {
        Some(r) => Ok(proto::Imported::Stored(r)),
        None => Ok(proto::Imported::Held(proto::ImportHeld {
            import: id.clone(),
            part,
            held: true,
        })),
    }
}

const PROVISIONAL: &str = "PROVISIONAL: the period is open; charges so far\n";

/// Tables for `tollgate ctl billing ...` and `tollgate ctl show invoice ...`.
pub fn render(answer: &Answer) -> String {
    match answer {
        Answer::Invoice(a) => {
            let mut out = String::new();
            if a.provisional {
                out.push_str(PROVISIONAL);
            }
            out.push_str(&to_table(&a.invoice));
            out
        }
        Answer::Invoices(a) => {
            let mut out = String::new();
            if a.provisional {
                out.push_str(PROVISIONAL);
            }
            if a.invoices.is_empty() {
                out.push_str("no invoices\n");
            }
            for (i, inv) in a.invoices.iter().enumerate() {
                if i > 0 {
                    out.push('\n');
                }
                out.push_str(&to_table(inv));
            }
            out
        }
        Answer::BillingStatus(s) => key_values(s),
        Answer::Closed(r) => key_values(r),
        Answer::Rerated(r) => key_values(r),
        Answer::Imported(r) => key_values(r),
        other => super::render::pretty(other),
    }
}

/// A report's fields, `name  value` a line; lists of words joined by spaces.
fn key_values<T: serde::Serialize>(data: &T) -> String {
    let Ok(Value::Object(o)) = serde_json::to_value(data) else {
        return super::render::pretty(data);
    };
    let w = o.keys().map(|k| k.len()).max().unwrap_or(0);
    let mut out = String::new();
    for (k, v) in &o {
        let text = match v {
            Value::Array(a) if a.iter().all(Value::is_string) => a
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(" "),
            Value::String(_) => v.cell(),
            other => other.to_string(),
        };
        let _ = writeln!(out, "{k:<w$}  {text}");
    }
    out
}
