//! The rating run, pure: records and a plan in, invoices out. No clock, no I/O; the same
//! inputs always give the same invoices, byte for byte.
//!
//! Two steps. [`charge_base`] sums, per invoice line, the quantities of an interval
//! (bytes, packets, seconds, bit/s × s, tunnel and line seconds, metered service use),
//! cutting time at band edges and rate activations; it is additive over any split of
//! the interval. [`rate_period`] adds what is charged once per period (fixed fees, tunnel
//! and line counts, contract fees) and turns every line's quantity into money, rounding
//! once per line.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;

use super::bandwidth::{ChangePoint, Meter, bandwidth_at, sampled};
use super::calendar::Period;
use super::invoice::{Charge, Invoice};
use super::money;
use super::tariff::{BandwidthMethod, Direction, Plan, Rate, RateKind, Tariff};
use super::usage::{BandwidthChange, Record, ServiceUsage, SessionUsage, TunnelUsage};

/// An amount or quantity that does not fit 64 bits: the one way a rating run fails.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0} does not fit in 64 bits")]
pub struct Overflow(pub String);

/// The records a rating run reads.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Records {
    /// Session usage (volume and time).
    pub sessions: Vec<SessionUsage>,
    /// Declared-bandwidth change points, in storage order.
    pub bandwidth: Vec<BandwidthChange>,
    /// When each session ended, by (user, session): the stop of its first record with
    /// a terminate cause. Ends the session's declared bandwidth.
    pub ends: HashMap<(String, String), i64>,
    /// Tunnel and line use.
    pub tunnels: Vec<TunnelUsage>,
    /// Metered supplementary-service use.
    pub services: Vec<ServiceUsage>,
}

impl Records {
    /// Sorts records by kind, in the given order, and derives the session ends.
    pub fn from_records(records: impl IntoIterator<Item = Record>) -> Records {
        let mut r = Records::default();
        for rec in records {
            match rec {
                Record::Session(s) => {
                    if s.cause.is_some() {
                        let e = r
                            .ends
                            .entry((s.user.clone(), s.session.clone()))
                            .or_insert(s.stop);
                        *e = (*e).min(s.stop);
                    }
                    r.sessions.push(s);
                }
                Record::Bandwidth(b) => r.bandwidth.push(b),
                Record::Tunnel(t) => r.tunnels.push(t),
                Record::Service(s) => r.services.push(s),
            }
        }
        r
    }
}

/// What identifies an invoice line: quantities with the same key are summed.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct LineKey {
    /// Billing account.
    pub account: String,
    /// Users first (sorted), then the account's own lines (`user` empty).
    pub account_line: bool,
    /// The user.
    pub user: String,
    /// Charge kind, in invoice order.
    pub kind: ChargeKind,
    /// Direction or contract.
    pub detail: String,
    /// Band name.
    pub band: String,
    /// Rate: price.
    pub price: u64,
    /// Rate: per.
    pub per: u64,
}

/// Kinds of charge lines, in invoice order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChargeKind {
    /// A tariff rate of this kind.
    Rate(RateKind),
    /// Metered use of a supplementary service.
    Service,
    /// A contract's fixed fee.
    Contract,
}

impl ChargeKind {
    fn name(self) -> &'static str {
        match self {
            ChargeKind::Rate(k) => k.name(),
            ChargeKind::Service => "service",
            ChargeKind::Contract => "contract",
        }
    }
}

/// Quantities per invoice line over an interval, and the records nothing could rate.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Base {
    /// Quantity per line.
    pub lines: BTreeMap<LineKey, u64>,
    /// Ids of records with no tariff (or a service without a contract), as `kind:id`.
    pub unrated: BTreeSet<String>,
    /// Users seen per account (for fixed fees).
    pub users: BTreeMap<String, BTreeSet<String>>,
}

impl Base {
    fn add(&mut self, key: LineKey, q: u64) -> Result<(), Overflow> {
        if q == 0 {
            return Ok(());
        }
        let account = key.account.clone();
        let e = self.lines.entry(key).or_insert(0);
        *e = e
            .checked_add(q)
            .ok_or_else(|| Overflow(format!("a quantity of account {account}")))?;
        Ok(())
    }

    /// Adds another interval's base (for checking additivity).
    pub fn merge(&mut self, other: &Base) -> Result<(), Overflow> {
        for (k, q) in &other.lines {
            self.add(k.clone(), *q)?;
        }
        self.unrated.extend(other.unrated.iter().cloned());
        for (a, us) in &other.users {
            self.users
                .entry(a.clone())
                .or_default()
                .extend(us.iter().cloned());
        }
        Ok(())
    }
}

fn key(
    plan: &Plan,
    account: &str,
    user: &str,
    kind: ChargeKind,
    detail: &str,
    rate: &Rate,
) -> LineKey {
    LineKey {
        account: account.to_string(),
        account_line: user.is_empty(),
        user: user.to_string(),
        kind,
        detail: detail.to_string(),
        band: rate
            .band
            .map(|b| plan.bands[b].name.clone())
            .unwrap_or_default(),
        price: rate.price,
        per: rate.per,
    }
}

/// Adds the seconds of `[from, to)`, cut at band edges and activations, at the rate of
/// `kind` in force in each piece.
#[allow(clippy::too_many_arguments)]
fn add_time(
    plan: &Plan,
    base: &mut Base,
    tariff: &Tariff,
    account: &str,
    user: &str,
    kind: RateKind,
    from: i64,
    to: i64,
) -> Result<(), Overflow> {
    let mut result = Ok(());
    plan.cutter.split(from, to, |a, b| {
        let mask = plan.cutter.clock.bands_at(a);
        if let Some(rate) = tariff.rate_at(kind, Direction::Both, a, mask)
            && result.is_ok()
        {
            result = base.add(
                key(plan, account, user, ChargeKind::Rate(kind), "", rate),
                (b - a) as u64,
            );
        }
    });
    result
}

/// The charge base of `[from, to)`; open declared bandwidths are counted up to `until`.
pub fn charge_base(
    plan: &Plan,
    rec: &Records,
    from: i64,
    to: i64,
    until: i64,
) -> Result<Base, Overflow> {
    let mut base = Base::default();
    for s in &rec.sessions {
        sessions(plan, &mut base, s, from, to)?;
    }
    bandwidth(plan, &mut base, rec, from, to.min(until))?;
    tunnels(plan, &mut base, &rec.tunnels, from, to)?;
    for s in &rec.services {
        if s.at < from || s.at >= to {
            continue;
        }
        let b = plan.billed(s.user.as_deref(), Some(&s.account));
        let contract = b.configured.and_then(|a| {
            a.contracts
                .iter()
                .map(|&c| &plan.contracts[c])
                .find(|c| c.name == s.contract)
        });
        let Some(c) = contract else {
            base.unrated.insert(format!("service:{}", s.id));
            continue;
        };
        let user = s.user.clone().unwrap_or_default();
        if !user.is_empty() {
            base.users
                .entry(b.account.to_string())
                .or_default()
                .insert(user.clone());
        }
        base.add(
            LineKey {
                account: b.account.to_string(),
                account_line: user.is_empty(),
                user,
                kind: ChargeKind::Service,
                detail: c.name.clone(),
                band: String::new(),
                price: c.price,
                per: c.per,
            },
            s.quantity,
        )?;
    }
    Ok(base)
}

fn sessions(
    plan: &Plan,
    base: &mut Base,
    s: &SessionUsage,
    from: i64,
    to: i64,
) -> Result<(), Overflow> {
    // Volume belongs to the last second the counters cover.
    let last = s.start.max(s.stop - 1);
    let volume = from <= last && last < to;
    let (a, b) = (s.start.max(from), s.stop.min(to));
    if !volume && a >= b {
        return Ok(());
    }
    let billed = plan.billed(Some(&s.user), s.account.as_deref());
    let Some(tariff) = billed.tariff else {
        base.unrated.insert(format!("session:{}", s.id));
        return Ok(());
    };
    base.users
        .entry(billed.account.to_string())
        .or_default()
        .insert(s.user.clone());
    if a < b {
        add_time(
            plan,
            base,
            tariff,
            billed.account,
            &s.user,
            RateKind::Time,
            a,
            b,
        )?;
    }
    if volume {
        let mask = plan.cutter.clock.bands_at(last);
        for (kind, tx, rx) in [
            (RateKind::Bytes, s.tx_bytes, s.rx_bytes),
            (RateKind::Packets, s.tx_packets, s.rx_packets),
        ] {
            for (dir, q) in [
                (Direction::Tx, tx),
                (Direction::Rx, rx),
                (Direction::Both, tx.saturating_add(rx)),
            ] {
                if let Some(rate) = tariff.rate_at(kind, dir, last, mask) {
                    base.add(
                        key(
                            plan,
                            billed.account,
                            &s.user,
                            ChargeKind::Rate(kind),
                            dir.name(),
                            rate,
                        ),
                        q,
                    )?;
                }
            }
        }
    }
    Ok(())
}

fn bandwidth(
    plan: &Plan,
    base: &mut Base,
    rec: &Records,
    from: i64,
    to: i64,
) -> Result<(), Overflow> {
    // Group the change points by session, keeping storage order among equal times.
    let mut groups: BTreeMap<(&str, &str), Vec<&BandwidthChange>> = BTreeMap::new();
    for b in &rec.bandwidth {
        groups.entry((&b.user, &b.session)).or_default().push(b);
    }
    let cfg = &plan.config;
    for ((user, session), mut changes) in groups {
        changes.sort_by_key(|c| c.at);
        let points: Vec<ChangePoint> = changes
            .iter()
            .map(|c| ChangePoint {
                at: c.at,
                bps: c.bps,
            })
            .collect();
        let end = rec
            .ends
            .get(&(user.to_string(), session.to_string()))
            .copied()
            .unwrap_or(i64::MAX);
        let a = from.max(points[0].at);
        let b = to.min(end);
        if a >= b {
            continue;
        }
        let account = changes.iter().rev().find_map(|c| c.account.as_deref());
        let billed = plan.billed(Some(user), account);
        let Some(tariff) = billed.tariff else {
            base.unrated.insert(format!("bandwidth:{}", changes[0].id));
            continue;
        };
        base.users
            .entry(billed.account.to_string())
            .or_default()
            .insert(user.to_string());
        let mut err = Ok(());
        let mut add = |base: &mut Base, p: i64, c: u128| {
            let mask = plan.cutter.clock.bands_at(p);
            if let Some(rate) = tariff.rate_at(RateKind::Bandwidth, Direction::Both, p, mask) {
                let q = u64::try_from(c).map_err(|_| Overflow(format!("bandwidth of {user}")));
                if err.is_ok() {
                    err = q.and_then(|q| {
                        base.add(
                            key(
                                plan,
                                billed.account,
                                user,
                                ChargeKind::Rate(RateKind::Bandwidth),
                                "",
                                rate,
                            ),
                            q,
                        )
                    });
                }
            }
        };
        match cfg.bandwidth_method {
            BandwidthMethod::Sampling => {
                let t = cfg.sampling_period_s as i64;
                plan.cutter
                    .split(a, b, |p, q| add(base, p, sampled(&points, p, q, t)));
            }
            BandwidthMethod::Integral => {
                // FIG. 1: a meter per session, changed at every change point, with a
                // periodic trigger every `trigger_interval_s` and a reporting trigger
                // at every band edge, so C is added to the band it accrued in.
                let every = cfg.trigger_interval_s as i64;
                let mut meter = Meter::new(a, bandwidth_at(&points, a));
                let mut next = points.partition_point(|p| p.at <= a);
                plan.cutter.split(a, b, |p, q| {
                    let mut c = 0u128;
                    let mut tick = (p.div_euclid(every) + 1) * every;
                    loop {
                        let change = points.get(next).map(|x| x.at).filter(|&t| t < q);
                        match change {
                            Some(t) if t <= tick => {
                                meter.change(t, points[next].bps);
                                next += 1;
                            }
                            _ if tick < q => {
                                c += meter.report(tick);
                                tick += every;
                            }
                            _ => break,
                        }
                    }
                    c += meter.report(q);
                    add(base, p, c);
                });
            }
        }
        err?;
    }
    Ok(())
}

type Spans = Vec<(i64, i64)>;

/// Merges intervals per key and adds their seconds.
fn tunnels(
    plan: &Plan,
    base: &mut Base,
    recs: &[TunnelUsage],
    from: i64,
    to: i64,
) -> Result<(), Overflow> {
    for (kind, pick) in [
        (
            RateKind::TunnelTime,
            (|t: &TunnelUsage| t.tunnel.as_str()) as fn(&TunnelUsage) -> &str,
        ),
        (RateKind::LineTime, |t: &TunnelUsage| t.line.as_str()),
    ] {
        // (account, user, tunnel or line) -> intervals of use.
        let mut spans: BTreeMap<(&str, &str, &str), Spans> = BTreeMap::new();
        for t in recs {
            let (a, b) = (t.start.max(from), t.stop.min(to));
            if a < b {
                spans
                    .entry((&t.account, t.user.as_deref().unwrap_or(""), pick(t)))
                    .or_default()
                    .push((a, b));
            }
        }
        for ((account, user, _), mut v) in spans {
            let billed = plan.billed((!user.is_empty()).then_some(user), Some(account));
            let Some(tariff) = billed.tariff else {
                continue; // counted as unrated below, once per record
            };
            v.sort_unstable();
            let mut merged: Vec<(i64, i64)> = Vec::new();
            for (a, b) in v {
                match merged.last_mut() {
                    Some(last) if a <= last.1 => last.1 = last.1.max(b),
                    _ => merged.push((a, b)),
                }
            }
            for (a, b) in merged {
                add_time(plan, base, tariff, billed.account, user, kind, a, b)?;
            }
        }
    }
    for t in recs {
        if used_in(t, from, to) {
            let billed = plan.billed(t.user.as_deref(), Some(&t.account));
            if billed.tariff.is_none() {
                base.unrated.insert(format!("tunnel:{}", t.id));
            } else if let Some(u) = &t.user {
                base.users
                    .entry(billed.account.to_string())
                    .or_default()
                    .insert(u.clone());
            }
        }
    }
    Ok(())
}

fn used_in(t: &TunnelUsage, from: i64, to: i64) -> bool {
    if t.start == t.stop {
        from <= t.start && t.start < to
    } else {
        t.start < to && t.stop > from
    }
}

/// What a rating run produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rated {
    /// One invoice per account, sorted by account.
    pub invoices: Vec<Invoice>,
    /// Records nothing could rate (`kind:id`).
    pub unrated: Vec<String>,
}

/// Rates `period`: every configured account gets an invoice, and so does every other
/// account with charges. Open declared bandwidths are counted up to `until`.
pub fn rate_period(
    plan: &Plan,
    rec: &Records,
    period: Period,
    until: i64,
) -> Result<Rated, Overflow> {
    let from = period.start(&plan.zone);
    let to = period.end(&plan.zone);
    let mut base = charge_base(plan, rec, from, to, until)?;

    // Accounts: the configured ones and any with usage.
    let mut accounts: BTreeSet<String> = plan.accounts.iter().map(|a| a.id.clone()).collect();
    accounts.extend(base.lines.keys().map(|k| k.account.clone()));
    accounts.extend(base.users.keys().cloned());

    // Charged once per period: fixed fees per user, tunnels and lines used, contracts.
    let mut counts: BTreeMap<(String, String, RateKind), BTreeSet<&str>> = BTreeMap::new();
    for t in rec.tunnels.iter().filter(|t| used_in(t, from, to)) {
        let billed = plan.billed(t.user.as_deref(), Some(&t.account));
        let user = t.user.clone().unwrap_or_default();
        counts
            .entry((billed.account.to_string(), user.clone(), RateKind::Tunnel))
            .or_default()
            .insert(&t.tunnel);
        counts
            .entry((billed.account.to_string(), user, RateKind::Line))
            .or_default()
            .insert(&t.line);
        if billed.tariff.is_some() || billed.configured.is_some() {
            accounts.insert(billed.account.to_string());
        }
    }
    let mut invoices = Vec::new();
    for account in &accounts {
        let billed = plan.billed(None, Some(account));
        let configured = billed.configured;
        if let Some(tariff) = billed.tariff {
            let mut users: BTreeSet<String> = configured
                .map(|a| a.users.iter().cloned().collect())
                .unwrap_or_default();
            users.extend(base.users.get(account).into_iter().flatten().cloned());
            if let Some(rate) = tariff.rate_at(RateKind::Fixed, Direction::Both, from, 0) {
                for u in &users {
                    base.add(
                        key(
                            plan,
                            account,
                            u,
                            ChargeKind::Rate(RateKind::Fixed),
                            "",
                            rate,
                        ),
                        1,
                    )?;
                }
            }
            for ((a, user, kind), set) in
                counts.range((account.clone(), String::new(), RateKind::Bytes)..)
            {
                if a != account {
                    break;
                }
                if let Some(rate) = tariff.rate_at(*kind, Direction::Both, from, 0) {
                    base.add(
                        key(plan, account, user, ChargeKind::Rate(*kind), "", rate),
                        set.len() as u64,
                    )?;
                }
            }
        }
        if let Some(a) = configured {
            for &c in &a.contracts {
                let c = &plan.contracts[c];
                if c.fee > 0 {
                    base.add(
                        LineKey {
                            account: account.clone(),
                            account_line: true,
                            user: String::new(),
                            kind: ChargeKind::Contract,
                            detail: c.name.clone(),
                            band: String::new(),
                            price: c.fee,
                            per: 1,
                        },
                        1,
                    )?;
                }
            }
        }
        let lines_of = base
            .lines
            .range(account_start(account)..)
            .take_while(|(k, _)| k.account == *account)
            .map(|(k, &q)| {
                let unit = match k.kind {
                    ChargeKind::Rate(r) => r.unit().to_string(),
                    ChargeKind::Contract => "period".to_string(),
                    ChargeKind::Service => plan
                        .contracts
                        .iter()
                        .find(|c| c.name == k.detail)
                        .map(|c| c.unit.clone())
                        .unwrap_or_default(),
                };
                let amount = money::charge(q, k.price, k.per).ok_or_else(|| {
                    Overflow(format!("the {} charge of account {account}", k.kind.name()))
                })?;
                Ok(Charge {
                    user: k.user.clone(),
                    kind: k.kind.name().to_string(),
                    detail: k.detail.clone(),
                    band: k.band.clone(),
                    quantity: q,
                    unit,
                    price: k.price,
                    per: k.per,
                    amount,
                })
            })
            .collect::<Result<Vec<_>, Overflow>>()?;
        let total = lines_of
            .iter()
            .try_fold(0i64, |s, l| s.checked_add(l.amount))
            .ok_or_else(|| Overflow(format!("the total of account {account}")))?;
        invoices.push(Invoice {
            period: period.to_string(),
            account: account.clone(),
            name: configured.map(|a| a.name.clone()).unwrap_or_default(),
            tariff: billed.tariff.map(|t| t.name.clone()).unwrap_or_default(),
            currency: plan.config.currency.clone(),
            minor_digits: plan.config.minor_digits,
            from,
            to,
            lines: lines_of,
            total,
        });
    }
    Ok(Rated {
        invoices,
        unrated: base.unrated.into_iter().collect(),
    })
}

fn account_start(account: &str) -> LineKey {
    LineKey {
        account: account.to_string(),
        account_line: false,
        user: String::new(),
        kind: ChargeKind::Rate(RateKind::Bytes),
        detail: String::new(),
        band: String::new(),
        price: 0,
        per: 0,
    }
}
