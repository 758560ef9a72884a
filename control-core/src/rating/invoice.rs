//! Invoices (claims): one per billing account and period, a line per user and per charge
//! kind (and band, and rate), the account's contract fees, and the total. Rendered as
//! canonical JSON (what is stored, so a re-rating can be compared byte for byte) or CSV;
//! the table for people is the ctl renderer's (`tollgate_control::ctl::render::invoice`).

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

/// One charge line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Charge {
    /// The user; empty for the account's own charges (contract fees, shared tunnels).
    pub user: String,
    /// `bytes`, `packets`, `time`, `bandwidth`, `tunnel_time`, `line_time`, `service`,
    /// `fixed`, `tunnel`, `line` or `contract`.
    pub kind: String,
    /// Direction (`tx`, `rx`, `both`) for volume, the contract's name for `service` and
    /// `contract`, else empty.
    pub detail: String,
    /// The band, empty when the rate has none.
    pub band: String,
    /// How much, in `unit`.
    pub quantity: u64,
    /// `byte`, `packet`, `s`, `bit` (bit/s × s), `period`, `tunnel`, `line`, or the
    /// contract's unit.
    pub unit: String,
    /// Minor units...
    pub price: u64,
    /// ...per this many units.
    pub per: u64,
    /// `quantity × price / per`, rounded half to even once.
    pub amount: i64,
}

/// A billing account's claim for one period.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invoice {
    /// The period, `YYYY-MM`.
    pub period: String,
    /// The billing account.
    pub account: String,
    /// The holder's name.
    pub name: String,
    /// The tariff its users were rated at (empty if none).
    pub tariff: String,
    /// Currency code.
    pub currency: String,
    /// Decimal digits of the minor unit.
    pub minor_digits: u8,
    /// First second of the period (Unix seconds).
    pub from: i64,
    /// First second after it.
    pub to: i64,
    /// The lines, ordered by user (account lines last), kind, detail, band, rate.
    pub lines: Vec<Charge>,
    /// Sum of the line amounts, minor units.
    pub total: i64,
}

impl Invoice {
    /// The canonical JSON form (stored; compared when re-rating).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads the canonical form back.
    pub fn from_json(s: &str) -> Result<Invoice, String> {
        serde_json::from_str(s).map_err(|e| format!("stored invoice unreadable: {e}"))
    }

    /// Each user's subtotal, in line order (the account's own lines under `""`).
    pub fn subtotals(&self) -> Vec<(String, i64)> {
        let mut out: Vec<(String, i64)> = Vec::new();
        for l in &self.lines {
            match out.last_mut() {
                Some((u, s)) if *u == l.user => *s += l.amount,
                _ => out.push((l.user.clone(), l.amount)),
            }
        }
        out
    }
}

/// The CSV header of [`to_csv`].
pub const CSV_HEADER: &str =
    "period,account,user,kind,detail,band,quantity,unit,price,per,amount,currency";

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The invoices as CSV: a header, one row per line, and a `total` row per invoice.
/// Amounts are minor units (integers).
pub fn to_csv(invoices: &[Invoice]) -> String {
    let mut out = String::from(CSV_HEADER);
    out.push('\n');
    for inv in invoices {
        for l in &inv.lines {
            let _ = writeln!(
                out,
                "{},{},{},{},{},{},{},{},{},{},{},{}",
                csv_field(&inv.period),
                csv_field(&inv.account),
                csv_field(&l.user),
                csv_field(&l.kind),
                csv_field(&l.detail),
                csv_field(&l.band),
                l.quantity,
                csv_field(&l.unit),
                l.price,
                l.per,
                l.amount,
                csv_field(&inv.currency)
            );
        }
        let _ = writeln!(
            out,
            "{},{},,total,,,,,,,{},{}",
            csv_field(&inv.period),
            csv_field(&inv.account),
            inv.total,
            csv_field(&inv.currency)
        );
    }
    out
}
