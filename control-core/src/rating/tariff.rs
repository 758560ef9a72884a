//! The rating plan: the `[rating]` config section (tariffs, bands, supplementary-service
//! contracts, billing accounts) and its compiled form, [`Plan`], that rating reads.
//! Validation returns the key path and what is wrong, like the rest of the config.

use std::collections::HashMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::band::{Band, BandClock, Cutter, MAX_BANDS};
use super::calendar::{DAY, Zone, parse_clock, parse_date};

/// `[rating]`: everything rating needs. Documented in `docs/config.md`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RatingConfig {
    /// The SQLite file holding records, plans and invoices; none turns rating off in the
    /// daemon. Not part of the stored plan.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<PathBuf>,
    /// The fixed offset of local time from UTC, minutes east (Tokyo 540, New York -300).
    pub timezone_offset_minutes: i32,
    /// An IANA time zone (`Europe/Berlin`) instead of the fixed offset: local time with
    /// its daylight-saving rules. Not set, the plan is stored exactly as before.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    /// Currency code printed on invoices.
    pub currency: String,
    /// Decimal digits of the minor unit (2 for cents): only for printing.
    pub minor_digits: u8,
    /// `integral` (formulas 1-3) or `sampling` (T × X summed).
    pub bandwidth_method: BandwidthMethod,
    /// The sampling period T of the sampling variant, seconds.
    pub sampling_period_s: u64,
    /// Seconds between periodic triggers of the bandwidth accumulator.
    pub trigger_interval_s: u64,
    /// Tariff for users and accounts not listed in `[[rating.account]]`; without it their
    /// records are left unrated (and counted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_tariff: Option<String>,
    /// `[[rating.band]]`
    #[serde(rename = "band")]
    pub bands: Vec<BandConfig>,
    /// `[[rating.tariff]]`
    #[serde(rename = "tariff")]
    pub tariffs: Vec<TariffConfig>,
    /// `[[rating.contract]]`
    #[serde(rename = "contract")]
    pub contracts: Vec<ContractConfig>,
    /// `[[rating.account]]`
    #[serde(rename = "account")]
    pub accounts: Vec<AccountConfig>,
}

impl Default for RatingConfig {
    fn default() -> Self {
        RatingConfig {
            database: None,
            timezone_offset_minutes: 0,
            time_zone: None,
            currency: "EUR".into(),
            minor_digits: 2,
            bandwidth_method: BandwidthMethod::Integral,
            sampling_period_s: 1,
            trigger_interval_s: 3600,
            default_tariff: None,
            bands: Vec::new(),
            tariffs: Vec::new(),
            contracts: Vec::new(),
            accounts: Vec::new(),
        }
    }
}

/// How the declared-bandwidth charge base is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BandwidthMethod {
    /// The exact integral over the change points (formulas 1-3).
    Integral,
    /// The sampling variant: every `sampling_period_s`, T × X.
    Sampling,
}

/// `[[rating.band]]`
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BandConfig {
    /// Name rates refer to.
    pub name: String,
    /// Days the band starts on: `mon`..`sun`, `weekdays`, `weekend`, `all`.
    #[serde(default = "all_days")]
    pub days: Vec<String>,
    /// Local start time `HH:MM`.
    #[serde(default = "midnight")]
    pub from: String,
    /// Local end time `HH:MM` (`24:00` allowed; not after `from` runs past midnight).
    #[serde(default = "midnight")]
    pub to: String,
}

fn all_days() -> Vec<String> {
    vec!["all".into()]
}

fn midnight() -> String {
    "00:00".into()
}

fn one() -> u64 {
    1
}

/// `[[rating.tariff]]`
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TariffConfig {
    /// Name accounts refer to.
    pub name: String,
    /// `[[rating.tariff.rate]]`
    #[serde(default, rename = "rate")]
    pub rates: Vec<RateConfig>,
}

/// What a rate charges for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RateKind {
    /// Bytes (IPv4 total length), by direction.
    Bytes,
    /// Packets, by direction.
    Packets,
    /// Session seconds.
    Time,
    /// Declared bandwidth over time, bit/s × s.
    Bandwidth,
    /// Seconds a tunnel was in use.
    TunnelTime,
    /// Seconds a physical line was in use.
    LineTime,
    /// Once per user per period.
    Fixed,
    /// Per tunnel used in the period.
    Tunnel,
    /// Per physical line used in the period.
    Line,
}

impl RateKind {
    /// The config spelling.
    pub fn name(self) -> &'static str {
        match self {
            RateKind::Bytes => "bytes",
            RateKind::Packets => "packets",
            RateKind::Time => "time",
            RateKind::Bandwidth => "bandwidth",
            RateKind::TunnelTime => "tunnel_time",
            RateKind::LineTime => "line_time",
            RateKind::Fixed => "fixed",
            RateKind::Tunnel => "tunnel",
            RateKind::Line => "line",
        }
    }

    /// The unit of its quantity.
    pub fn unit(self) -> &'static str {
        match self {
            RateKind::Bytes => "byte",
            RateKind::Packets => "packet",
            RateKind::Time | RateKind::TunnelTime | RateKind::LineTime => "s",
            RateKind::Bandwidth => "bit",
            RateKind::Fixed => "period",
            RateKind::Tunnel => "tunnel",
            RateKind::Line => "line",
        }
    }

    /// Charged once per period (not bound to bands).
    pub fn per_period(self) -> bool {
        matches!(self, RateKind::Fixed | RateKind::Tunnel | RateKind::Line)
    }

    /// Takes a direction.
    pub fn directed(self) -> bool {
        matches!(self, RateKind::Bytes | RateKind::Packets)
    }
}

/// Which way traffic went, from the subscriber's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Sent by the subscriber.
    Tx,
    /// Received by the subscriber.
    Rx,
    /// Both ways together.
    Both,
}

impl Direction {
    /// The config spelling.
    pub fn name(self) -> &'static str {
        match self {
            Direction::Tx => "tx",
            Direction::Rx => "rx",
            Direction::Both => "both",
        }
    }
}

/// `[[rating.tariff.rate]]`: `price` minor units per `per` units of the kind's quantity.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RateConfig {
    /// What is charged.
    pub kind: RateKind,
    /// For `bytes` and `packets`: `tx`, `rx` or `both` (default `both`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<Direction>,
    /// The band the rate applies in; none: at all times.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub band: Option<String>,
    /// Activation date `YYYY-MM-DD` (local midnight); from then on this rate replaces
    /// the one of the same kind, direction and band with an earlier date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// Minor units...
    pub price: u64,
    /// ...per this many units.
    #[serde(default = "one")]
    pub per: u64,
}

/// `[[rating.contract]]`: a supplementary-service contract (seed 000, claims 17-19).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ContractConfig {
    /// Name accounts and service records refer to.
    pub name: String,
    /// Fixed fee per period, minor units.
    #[serde(default)]
    pub fee: u64,
    /// Metered fee: minor units...
    #[serde(default)]
    pub price: u64,
    /// ...per this many units of use.
    #[serde(default = "one")]
    pub per: u64,
    /// The unit of use, for invoices.
    #[serde(default = "unit")]
    pub unit: String,
}

fn unit() -> String {
    "unit".into()
}

/// `[[rating.account]]`: a billing account that several users may share.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AccountConfig {
    /// Account id (as on invoices and in records).
    pub id: String,
    /// Holder's name, for invoices.
    #[serde(default)]
    pub name: String,
    /// Tariff of the account's users; default `rating.default_tariff`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tariff: Option<String>,
    /// Users charged to this account.
    #[serde(default)]
    pub users: Vec<String>,
    /// Supplementary-service contracts the account holds.
    #[serde(default)]
    pub contracts: Vec<String>,
}

/// A rate, compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rate {
    /// What it charges.
    pub kind: RateKind,
    /// Direction (`Both` for undirected kinds).
    pub direction: Direction,
    /// Index into [`Plan::bands`]; none: always.
    pub band: Option<usize>,
    /// In force from (Unix seconds; `i64::MIN` when no date was given).
    pub since: i64,
    /// Minor units...
    pub price: u64,
    /// ...per this many units.
    pub per: u64,
}

/// A tariff, compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tariff {
    /// Its name.
    pub name: String,
    /// Its rates.
    pub rates: Vec<Rate>,
}

impl Tariff {
    /// The rate of `kind` and `direction` in force at `t`, given the mask of bands
    /// covering `t`: of the rates whose band covers `t` and that are active, the one
    /// activated last.
    pub fn rate_at(
        &self,
        kind: RateKind,
        direction: Direction,
        t: i64,
        mask: u64,
    ) -> Option<&Rate> {
        self.rates
            .iter()
            .filter(|r| {
                r.kind == kind
                    && r.direction == direction
                    && r.since <= t
                    && r.band.is_none_or(|b| mask & (1 << b) != 0)
            })
            .max_by_key(|r| r.since)
    }
}

/// A contract, compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contract {
    /// Its name.
    pub name: String,
    /// Fixed fee per period.
    pub fee: u64,
    /// Metered price...
    pub price: u64,
    /// ...per.
    pub per: u64,
    /// Unit of use.
    pub unit: String,
}

/// A billing account, compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Id.
    pub id: String,
    /// Holder.
    pub name: String,
    /// Tariff index, if any.
    pub tariff: Option<usize>,
    /// Users listed in the config.
    pub users: Vec<String>,
    /// Contract indexes.
    pub contracts: Vec<usize>,
}

/// The compiled plan: what a rating run reads.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The config it was compiled from (stored with every closed period).
    pub config: RatingConfig,
    /// Local time: the fixed offset or the IANA zone.
    pub zone: Zone,
    /// Bands.
    pub bands: Vec<Band>,
    /// Cuts intervals at band edges and rate activations.
    pub cutter: Cutter,
    /// Tariffs.
    pub tariffs: Vec<Tariff>,
    /// Contracts.
    pub contracts: Vec<Contract>,
    /// Configured accounts, sorted by id.
    pub accounts: Vec<Account>,
    default_tariff: Option<usize>,
    account_index: HashMap<String, usize>,
    user_account: HashMap<String, usize>,
}

/// Where a record's charges go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Billed<'a> {
    /// The account id.
    pub account: &'a str,
    /// The configured account, if it is one.
    pub configured: Option<&'a Account>,
    /// The tariff, if any.
    pub tariff: Option<&'a Tariff>,
}

impl Plan {
    /// Compiles and validates; the error is `(key path, message)`.
    pub fn compile(cfg: &RatingConfig) -> Result<Plan, (String, String)> {
        let e = |k: String, m: String| Err((k, m));
        if cfg.timezone_offset_minutes.abs() > 14 * 60 {
            return e(
                "rating.timezone_offset_minutes".into(),
                format!(
                    "{} minutes is not a UTC offset (-840 to 840)",
                    cfg.timezone_offset_minutes
                ),
            );
        }
        let zone = match &cfg.time_zone {
            None => Zone::Fixed(i64::from(cfg.timezone_offset_minutes) * 60),
            // Which offset would the operator mean in winter? Refuse rather than guess.
            Some(_) if cfg.timezone_offset_minutes != 0 => {
                return e(
                    "rating.time_zone".into(),
                    "set either time_zone or timezone_offset_minutes, not both (the zone's \
                     daylight-saving rules decide the offset)"
                        .into(),
                );
            }
            Some(name) => Zone::iana(name).map_err(|m| ("rating.time_zone".to_string(), m))?,
        };
        if cfg.currency.trim().is_empty() {
            return e("rating.currency".into(), "must not be empty".into());
        }
        if cfg.minor_digits > 6 {
            return e("rating.minor_digits".into(), "must be 0 to 6".into());
        }
        if cfg.sampling_period_s == 0 || cfg.sampling_period_s > DAY as u64 {
            return e(
                "rating.sampling_period_s".into(),
                "must be 1 to 86400 seconds".into(),
            );
        }
        if cfg.trigger_interval_s == 0 || cfg.trigger_interval_s > DAY as u64 {
            return e(
                "rating.trigger_interval_s".into(),
                "must be 1 to 86400 seconds".into(),
            );
        }
        if cfg.bands.len() > MAX_BANDS {
            return e("rating.band".into(), format!("at most {MAX_BANDS} bands"));
        }
        let mut bands = Vec::new();
        for (i, b) in cfg.bands.iter().enumerate() {
            let k = |f: &str| format!("rating.band[{i}].{f}");
            if b.name.trim().is_empty() {
                return e(k("name"), "must not be empty".into());
            }
            if cfg.bands[..i].iter().any(|o| o.name == b.name) {
                return e(k("name"), format!("band {:?} is defined twice", b.name));
            }
            let days = Band::parse_days(&b.days).map_err(|m| (k("days"), m))?;
            let from_min = parse_clock(&b.from).map_err(|m| (k("from"), m))?;
            let to_min = parse_clock(&b.to).map_err(|m| (k("to"), m))?;
            if from_min == 1440 {
                return e(k("from"), "a band cannot start at 24:00; use 00:00".into());
            }
            bands.push(Band {
                name: b.name.clone(),
                days,
                from_min,
                to_min,
            });
        }
        let mut cuts = Vec::new();
        let mut tariffs: Vec<Tariff> = Vec::new();
        for (i, t) in cfg.tariffs.iter().enumerate() {
            if t.name.trim().is_empty() {
                return e(
                    format!("rating.tariff[{i}].name"),
                    "must not be empty".into(),
                );
            }
            if cfg.tariffs[..i].iter().any(|o| o.name == t.name) {
                return e(
                    format!("rating.tariff[{i}].name"),
                    format!("tariff {:?} is defined twice", t.name),
                );
            }
            let mut rates: Vec<Rate> = Vec::new();
            for (j, r) in t.rates.iter().enumerate() {
                let k = |f: &str| format!("rating.tariff[{i}].rate[{j}].{f}");
                let direction = match (r.kind.directed(), r.direction) {
                    (true, d) => d.unwrap_or(Direction::Both),
                    (false, None) => Direction::Both,
                    (false, Some(_)) => {
                        return e(
                            k("direction"),
                            format!("a {} rate has no direction; remove it", r.kind.name()),
                        );
                    }
                };
                let band = match &r.band {
                    None => None,
                    Some(_) if r.kind.per_period() => {
                        return e(
                            k("band"),
                            format!(
                                "a {} rate is charged once per period and takes no band",
                                r.kind.name()
                            ),
                        );
                    }
                    Some(name) => {
                        Some(bands.iter().position(|b| &b.name == name).ok_or_else(|| {
                            (k("band"), format!("no [[rating.band]] is named {name:?}"))
                        })?)
                    }
                };
                let since = match &r.since {
                    None => i64::MIN,
                    Some(d) => {
                        let s = zone.start_of(parse_date(d).map_err(|m| (k("since"), m))?);
                        cuts.push(s);
                        s
                    }
                };
                if r.per == 0 {
                    return e(k("per"), "must be at least 1".into());
                }
                let rate = Rate {
                    kind: r.kind,
                    direction,
                    band,
                    since,
                    price: r.price,
                    per: r.per,
                };
                for o in &rates {
                    if o.kind != rate.kind {
                        continue;
                    }
                    let dir_overlap = o.direction == rate.direction
                        || o.direction == Direction::Both
                        || rate.direction == Direction::Both;
                    if !dir_overlap {
                        continue;
                    }
                    let same_slot = o.direction == rate.direction && o.band == rate.band;
                    if same_slot && o.since == rate.since {
                        return e(
                            k("since"),
                            format!(
                                "tariff {:?} already has a {} rate for this direction, band and date",
                                t.name,
                                r.kind.name()
                            ),
                        );
                    }
                    if same_slot {
                        continue; // a later version of the same rate
                    }
                    let band_overlap = match (o.band, rate.band) {
                        (Some(a), Some(b)) => bands[a].overlaps(&bands[b]),
                        _ => true,
                    };
                    if band_overlap {
                        return e(
                            k("band"),
                            format!(
                                "overlaps another {} rate of tariff {:?} in time and direction: the same usage would be charged twice",
                                r.kind.name(),
                                t.name
                            ),
                        );
                    }
                }
                rates.push(rate);
            }
            tariffs.push(Tariff {
                name: t.name.clone(),
                rates,
            });
        }
        let tariff_index = |name: &str| tariffs.iter().position(|t| t.name == name);
        let default_tariff = match &cfg.default_tariff {
            None => None,
            Some(n) => Some(tariff_index(n).ok_or_else(|| {
                (
                    "rating.default_tariff".to_string(),
                    format!("no [[rating.tariff]] is named {n:?}"),
                )
            })?),
        };
        let mut contracts = Vec::new();
        for (i, c) in cfg.contracts.iter().enumerate() {
            let k = |f: &str| format!("rating.contract[{i}].{f}");
            if c.name.trim().is_empty() {
                return e(k("name"), "must not be empty".into());
            }
            if cfg.contracts[..i].iter().any(|o| o.name == c.name) {
                return e(k("name"), format!("contract {:?} is defined twice", c.name));
            }
            if c.per == 0 {
                return e(k("per"), "must be at least 1".into());
            }
            contracts.push(Contract {
                name: c.name.clone(),
                fee: c.fee,
                price: c.price,
                per: c.per,
                unit: c.unit.clone(),
            });
        }
        let mut accounts = Vec::new();
        let mut user_account = HashMap::new();
        for (i, a) in cfg.accounts.iter().enumerate() {
            let k = |f: &str| format!("rating.account[{i}].{f}");
            if a.id.trim().is_empty() {
                return e(k("id"), "must not be empty".into());
            }
            if cfg.accounts[..i].iter().any(|o| o.id == a.id) {
                return e(k("id"), format!("account {:?} is defined twice", a.id));
            }
            let tariff = match &a.tariff {
                Some(n) => Some(tariff_index(n).ok_or_else(|| {
                    (k("tariff"), format!("no [[rating.tariff]] is named {n:?}"))
                })?),
                None => default_tariff,
            };
            let mut cs = Vec::new();
            for (j, c) in a.contracts.iter().enumerate() {
                let idx = contracts.iter().position(|x| &x.name == c).ok_or_else(|| {
                    (
                        format!("rating.account[{i}].contracts[{j}]"),
                        format!("no [[rating.contract]] is named {c:?}"),
                    )
                })?;
                if cs.contains(&idx) {
                    return e(
                        format!("rating.account[{i}].contracts[{j}]"),
                        format!("contract {c:?} is listed twice"),
                    );
                }
                cs.push(idx);
            }
            for (j, u) in a.users.iter().enumerate() {
                if u.trim().is_empty() {
                    return e(
                        format!("rating.account[{i}].users[{j}]"),
                        "empty user name".into(),
                    );
                }
                if let Some(prev) = user_account.insert(u.clone(), a.id.clone()) {
                    return e(
                        format!("rating.account[{i}].users[{j}]"),
                        format!("user {u:?} is already charged to account {prev:?}"),
                    );
                }
            }
            accounts.push(Account {
                id: a.id.clone(),
                name: a.name.clone(),
                tariff,
                users: a.users.clone(),
                contracts: cs,
            });
        }
        accounts.sort_by(|a, b| a.id.cmp(&b.id));
        let account_index: HashMap<String, usize> = accounts
            .iter()
            .enumerate()
            .map(|(i, a)| (a.id.clone(), i))
            .collect();
        let user_account = user_account
            .into_iter()
            .map(|(u, a)| {
                let i = account_index[&a];
                (u, i)
            })
            .collect();
        cuts.sort_unstable();
        cuts.dedup();
        let mut config = cfg.clone();
        config.database = None;
        Ok(Plan {
            config,
            cutter: Cutter {
                clock: BandClock::new(&bands, zone.clone()),
                cuts,
            },
            zone,
            bands,
            tariffs,
            contracts,
            accounts,
            default_tariff,
            account_index,
            user_account,
        })
    }

    /// The configured account with this id.
    pub fn account(&self, id: &str) -> Option<&Account> {
        self.account_index.get(id).map(|&i| &self.accounts[i])
    }

    /// Where charges of `user` (and a record's `account`, when it names one) go: the
    /// record's account, else the account listing the user, else a personal account
    /// named after the user. Unlisted accounts are rated at `default_tariff`.
    pub fn billed<'a>(&'a self, user: Option<&'a str>, account: Option<&'a str>) -> Billed<'a> {
        let configured = match account {
            Some(a) => self.account(a),
            None => user
                .and_then(|u| self.user_account.get(u))
                .map(|&i| &self.accounts[i]),
        };
        match configured {
            Some(a) => Billed {
                account: &a.id,
                configured: Some(a),
                tariff: a.tariff.map(|t| &self.tariffs[t]),
            },
            None => Billed {
                account: account.or(user).unwrap_or(""),
                configured: None,
                tariff: self.default_tariff.map(|t| &self.tariffs[t]),
            },
        }
    }

    /// The plan as stored: canonical JSON of the config (without the database path).
    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.config).unwrap_or_default()
    }

    /// Compiles a stored plan.
    pub fn from_json(s: &str) -> Result<Plan, String> {
        let cfg: RatingConfig =
            serde_json::from_str(s).map_err(|e| format!("stored plan unreadable: {e}"))?;
        Plan::compile(&cfg).map_err(|(k, m)| format!("stored plan invalid: {k}: {m}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(src: &str) -> RatingConfig {
        #[derive(Deserialize)]
        struct W {
            rating: RatingConfig,
        }
        toml::from_str::<W>(src).unwrap().rating
    }

    #[test]
    fn compiles_and_resolves_accounts() {
        let c = cfg(r#"
[rating]
default_tariff = "basic"
[[rating.band]]
name = "peak"
days = ["weekdays"]
from = "08:00"
to = "20:00"
[[rating.tariff]]
name = "basic"
[[rating.tariff.rate]]
kind = "bytes"
price = 1
per = 1000
[[rating.tariff]]
name = "biz"
[[rating.tariff.rate]]
kind = "time"
band = "peak"
price = 2
[[rating.contract]]
name = "vpn"
fee = 500
[[rating.account]]
id = "acme"
tariff = "biz"
users = ["alice", "bob"]
contracts = ["vpn"]
"#);
        let p = Plan::compile(&c).unwrap();
        let b = p.billed(Some("alice"), None);
        assert_eq!(b.account, "acme");
        assert_eq!(b.tariff.unwrap().name, "biz");
        let b = p.billed(Some("zoe"), None);
        assert_eq!(
            (b.account, b.tariff.unwrap().name.as_str()),
            ("zoe", "basic")
        );
        let b = p.billed(Some("zoe"), Some("acme"));
        assert_eq!(b.account, "acme");
        let back = Plan::from_json(&p.to_json()).unwrap();
        assert_eq!(back.config, p.config);
    }

    #[test]
    fn refuses_overlaps_and_bad_references() {
        let base = r#"
[rating]
[[rating.band]]
name = "peak"
days = ["weekdays"]
from = "08:00"
to = "20:00"
[[rating.band]]
name = "evening"
days = ["fri"]
from = "19:00"
to = "23:00"
[[rating.tariff]]
name = "t"
"#;
        let check = |extra: &str| Plan::compile(&cfg(&format!("{base}{extra}"))).map(|_| ());
        let err = check("[[rating.tariff.rate]]\nkind = \"time\"\nband = \"peak\"\nprice = 1\n[[rating.tariff.rate]]\nkind = \"time\"\nband = \"evening\"\nprice = 1\n").unwrap_err();
        assert_eq!(err.0, "rating.tariff[0].rate[1].band", "{err:?}");
        assert!(err.1.contains("charged twice"), "{err:?}");
        // tx and rx do not overlap; both overlaps tx.
        assert!(check("[[rating.tariff.rate]]\nkind = \"bytes\"\ndirection = \"tx\"\nprice = 1\n[[rating.tariff.rate]]\nkind = \"bytes\"\ndirection = \"rx\"\nprice = 1\n").is_ok());
        assert!(check("[[rating.tariff.rate]]\nkind = \"bytes\"\ndirection = \"tx\"\nprice = 1\n[[rating.tariff.rate]]\nkind = \"bytes\"\nprice = 1\n").is_err());
        // A later version of the same rate is fine; the same date twice is not.
        assert!(check("[[rating.tariff.rate]]\nkind = \"time\"\nprice = 1\n[[rating.tariff.rate]]\nkind = \"time\"\nsince = \"2024-06-01\"\nprice = 2\n").is_ok());
        assert!(check("[[rating.tariff.rate]]\nkind = \"time\"\nprice = 1\n[[rating.tariff.rate]]\nkind = \"time\"\nprice = 2\n").is_err());
        let err = check("[[rating.tariff.rate]]\nkind = \"fixed\"\nband = \"peak\"\nprice = 1\n")
            .unwrap_err();
        assert!(err.1.contains("no band"), "{err:?}");
        let err = check("[[rating.tariff.rate]]\nkind = \"time\"\nband = \"lunch\"\nprice = 1\n")
            .unwrap_err();
        assert!(err.1.contains("\"lunch\""), "{err:?}");
        let err =
            check("[[rating.tariff.rate]]\nkind = \"time\"\nprice = 1\nper = 0\n").unwrap_err();
        assert_eq!(err.0, "rating.tariff[0].rate[0].per");
        let err = check("[[rating.account]]\nid = \"a\"\ntariff = \"nope\"\n").unwrap_err();
        assert_eq!(err.0, "rating.account[0].tariff");
        let err = check("[[rating.account]]\nid = \"a\"\nusers = [\"u\"]\n[[rating.account]]\nid = \"b\"\nusers = [\"u\"]\n").unwrap_err();
        assert_eq!(err.0, "rating.account[1].users[0]");
    }

    #[test]
    fn later_rate_versions_take_over() {
        let c = cfg(r#"
[rating]
[[rating.tariff]]
name = "t"
[[rating.tariff.rate]]
kind = "time"
price = 1
[[rating.tariff.rate]]
kind = "time"
since = "2024-06-01"
price = 3
"#);
        let p = Plan::compile(&c).unwrap();
        let june = super::super::calendar::epoch_days(parse_date("2024-06-01").unwrap()) * DAY;
        let t = &p.tariffs[0];
        assert_eq!(
            t.rate_at(RateKind::Time, Direction::Both, june - 1, 0)
                .unwrap()
                .price,
            1
        );
        assert_eq!(
            t.rate_at(RateKind::Time, Direction::Both, june, 0)
                .unwrap()
                .price,
            3
        );
        assert_eq!(p.cutter.cuts, vec![june]);
    }
}
