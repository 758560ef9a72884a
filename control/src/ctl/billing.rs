//! The `billing ...` and `show invoice ...` commands of the control socket: answers as
//! JSON (`docs/ctl.md`), and their tables for `tollgate ctl`.

use std::fmt::Write as _;

use serde_json::{Value, json};

use tollgate_control_core::rating::usage::Record;
use tollgate_control_core::rating::{Invoice, Period};

use super::render::invoice as to_table;
use crate::proto::Reply;
use crate::rating::staging::MAX_IMPORT_RECORDS;
use crate::rating::{Rater, RatingError};

/// The commands, for `help`.
pub const COMMANDS: &[(&str, &str)] = &[
    (
        "billing status",
        "rating database, stored records by kind, closed periods",
    ),
    (
        "billing close-period [PERIOD]",
        "rate a finished period (default: the last one) and store its invoices",
    ),
    (
        "billing invoice ACCOUNT [PERIOD]",
        "an account's invoice (default: this period, provisional)",
    ),
    (
        "billing invoices [PERIOD]",
        "every account's invoice of a period",
    ),
    (
        "billing rerate PERIOD",
        "rate a closed period again and compare with the stored invoices",
    ),
    (
        "billing import",
        "store usage records given in args.records, all or none (args.import, part, more: a file in parts)",
    ),
    ("show invoice ACCOUNT [PERIOD]", "same as billing invoice"),
];

fn period_arg(word: Option<&&str>, default: Period) -> Result<Period, String> {
    word.map_or(Ok(default), |w| Period::parse(w))
}

/// Answers a `billing ...` or `show invoice ...` request. `now` is the wall clock
/// (Unix seconds).
pub fn handle(words: &[&str], args: &Value, rater: Option<&Rater>, now: i64) -> Reply {
    let Some(rater) = rater else {
        return Reply::error(
            "rating is off: set rating.database in the config (docs/config.md, [rating])",
        );
    };
    let current = Period::containing(now, &rater.plan().zone);
    let result: Result<Value, String> = match words {
        ["billing", "status"] => status(rater),
        ["billing", "close-period", rest @ ..] if rest.len() <= 1 => {
            period_arg(rest.first(), current.previous()).and_then(|p| {
                rater
                    .close_period(p, now)
                    .map(|r| json!(r))
                    .map_err(|e| e.to_string())
            })
        }
        ["billing", "invoice", account, rest @ ..] | ["show", "invoice", account, rest @ ..]
            if rest.len() <= 1 =>
        {
            period_arg(rest.first(), current).and_then(|p| {
                rater
                    .invoice(account, p, now)
                    .map(|a| json!(a))
                    .map_err(|e| e.to_string())
            })
        }
        ["billing", "invoices", rest @ ..] if rest.len() <= 1 => period_arg(rest.first(), current)
            .and_then(|p| {
                rater
                    .invoices(p, now)
                    .map(|(provisional, inv)| json!({"provisional": provisional, "invoices": inv}))
                    .map_err(|e| e.to_string())
            }),
        ["billing", "rerate", p] => Period::parse(p)
            .and_then(|p| rater.rerate(p).map(|r| json!(r)).map_err(|e| e.to_string())),
        ["billing", "import"] => import(rater, args, now),
        _ => Err(format!(
            "unknown billing command `{}`; try: {}",
            words.join(" "),
            COMMANDS
                .iter()
                .map(|(c, _)| *c)
                .collect::<Vec<_>>()
                .join(", ")
        )),
    };
    match result {
        Ok(v) => Reply::ok(v),
        Err(e) => Reply::error(e),
    }
}

fn status(rater: &Rater) -> Result<Value, String> {
    let s = rater.store();
    let counts: serde_json::Map<String, Value> = s
        .counts()
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|(k, n)| (k, json!(n)))
        .collect();
    let periods: Vec<String> = s
        .periods()
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|p| p.period)
        .collect();
    let p = rater.plan();
    Ok(json!({
        "database": s.name(),
        "records": counts,
        "closed_periods": periods,
        "tariffs": p.tariffs.iter().map(|t| t.name.clone()).collect::<Vec<_>>(),
        "accounts": p.accounts.len(),
        "bandwidth_method": p.config.bandwidth_method,
        "timezone_offset_minutes": p.config.timezone_offset_minutes,
        "time_zone": p.config.time_zone,
        "currency": p.config.currency,
    }))
}

/// `billing import`'s arguments: the records, and for a file sent in parts the import's
/// id, the part's number (from 0) and whether more parts follow.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportArgs {
    records: Vec<Value>,
    #[serde(default)]
    import: Option<String>,
    #[serde(default)]
    part: u32,
    #[serde(default)]
    more: bool,
}

fn import(rater: &Rater, args: &Value, now: i64) -> Result<Value, String> {
    let a: ImportArgs = serde_json::from_value(args.clone()).map_err(|e| {
        format!(
            "billing import takes args {{\"records\": [ ... ]}} (and \"import\", \"part\", \"more\" for a file in parts): {e}"
        )
    })?;
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
    let Some(id) = a.import else {
        let records = parsed?;
        if records.len() > MAX_IMPORT_RECORDS {
            return Err(format!(
                "{} records in one import: at most {MAX_IMPORT_RECORDS}; nothing was stored",
                records.len()
            ));
        }
        return rater
            .import(&records)
            .map(|r| json!(r))
            .map_err(|e: RatingError| e.to_string());
    };
    let records = parsed.map_err(|e| {
        rater.discard_import(&id);
        format!("part {}: {e}: nothing of import {id:?} is stored", a.part)
    })?;
    match rater.import_part(&id, a.part, records, !a.more, now)? {
        Some(r) => Ok(json!(r)),
        None => Ok(json!({"import": id, "part": a.part, "held": true})),
    }
}

fn invoice_of(v: &Value) -> Option<Invoice> {
    serde_json::from_value(v.clone()).ok()
}

/// Tables for `tollgate ctl billing ...` and `tollgate ctl show invoice ...`.
pub fn render(words: &[&str], data: &Value) -> String {
    match words {
        ["billing", "invoice", ..] | ["show", "invoice", ..] => {
            let mut out = String::new();
            if data["provisional"] == true {
                out.push_str("PROVISIONAL: the period is open; charges so far\n");
            }
            match invoice_of(&data["invoice"]) {
                Some(inv) => out.push_str(&to_table(&inv)),
                None => out.push_str(&pretty(data)),
            }
            out
        }
        ["billing", "invoices", ..] => {
            let mut out = String::new();
            if data["provisional"] == true {
                out.push_str("PROVISIONAL: the period is open; charges so far\n");
            }
            let list = data["invoices"].as_array().cloned().unwrap_or_default();
            if list.is_empty() {
                out.push_str("no invoices\n");
            }
            for (i, v) in list.iter().enumerate() {
                if i > 0 {
                    out.push('\n');
                }
                match invoice_of(v) {
                    Some(inv) => out.push_str(&to_table(&inv)),
                    None => out.push_str(&pretty(v)),
                }
            }
            out
        }
        _ => key_values(data),
    }
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default() + "\n"
}

fn key_values(data: &Value) -> String {
    let Some(o) = data.as_object() else {
        return pretty(data);
    };
    let w = o.keys().map(|k| k.len()).max().unwrap_or(0);
    let mut out = String::new();
    for (k, v) in o {
        let text = match v {
            Value::String(s) => s.clone(),
            Value::Array(a) if a.iter().all(Value::is_string) => a
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(" "),
            other => other.to_string(),
        };
        let _ = writeln!(out, "{k:<w$}  {text}");
    }
    out
}
