//! Rating scenarios computed by hand from the seeds, and properties: additivity over any
//! split of the period, independence from trigger timing, re-rating byte for byte,
//! interrupted runs.

use proptest::prelude::*;
use serde::Deserialize;

use tollgate_control_core::rating::calendar::parse_timestamp;
use tollgate_control_core::rating::rate::{self, Records, charge_base, rate_period};
use tollgate_control_core::rating::{Charge, bandwidth, invoice};

use super::*;

fn t(s: &str) -> i64 {
    parse_timestamp(s).unwrap()
}

fn plan(src: &str) -> Plan {
    #[derive(Deserialize)]
    struct W {
        rating: RatingConfig,
    }
    let cfg = toml::from_str::<W>(src).unwrap().rating;
    Plan::compile(&cfg).unwrap_or_else(|e| panic!("{e:?}"))
}

fn may() -> Period {
    Period::parse("2024-05").unwrap()
}

fn session(
    id: &str,
    user: &str,
    start: &str,
    stop: &str,
    tx: (u64, u64),
    rx: (u64, u64),
) -> Record {
    Record::Session(SessionUsage {
        id: id.into(),
        user: user.into(),
        account: None,
        session: format!("sess-{id}"),
        start: t(start),
        stop: t(stop),
        tx_packets: tx.0,
        tx_bytes: tx.1,
        rx_packets: rx.0,
        rx_bytes: rx.1,
        cause: Some("user-request".into()),
    })
}

fn bw(id: &str, user: &str, session: &str, at: &str, bps: u64) -> Record {
    Record::Bandwidth(BandwidthChange {
        id: id.into(),
        user: user.into(),
        account: None,
        session: session.into(),
        at: t(at),
        bps,
        reason: "coa".into(),
    })
}

fn line<'a>(inv: &'a Invoice, user: &str, kind: &str, band: &str) -> &'a Charge {
    inv.lines
        .iter()
        .find(|l| l.user == user && l.kind == kind && l.band == band)
        .unwrap_or_else(|| panic!("no {kind}/{band} line for {user:?} in {inv:#?}"))
}

const BANDWIDTH_PLAN: &str = r#"
[rating]
default_tariff = "bw"
trigger_interval_s = 3600
[[rating.band]]
name = "peak"
from = "08:00"
to = "20:00"
[[rating.band]]
name = "offpeak"
from = "20:00"
to = "08:00"
[[rating.tariff]]
name = "bw"
[[rating.tariff.rate]]
kind = "bandwidth"
band = "peak"
price = 3
per = 1000000000
[[rating.tariff.rate]]
kind = "bandwidth"
band = "offpeak"
price = 1
per = 1000000000
"#;

/// Seed 004, FIG. 5: a declared bandwidth changed four times, across both band edges
/// of the day; the session ends at 22:00.
fn bandwidth_history() -> Vec<Record> {
    let mut end = session(
        "s1",
        "u1",
        "2024-05-06T07:00:00Z",
        "2024-05-06T22:00:00Z",
        (0, 0),
        (0, 0),
    );
    if let Record::Session(s) = &mut end {
        s.session = "c1".into();
    }
    vec![
        bw("b1", "u1", "c1", "2024-05-06T07:00:00Z", 2_000_000),
        bw("b2", "u1", "c1", "2024-05-06T07:30:00Z", 10_000_000),
        bw("b3", "u1", "c1", "2024-05-06T12:00:00Z", 4_000_000),
        bw("b4", "u1", "c1", "2024-05-06T19:45:00Z", 6_000_000),
        end,
    ]
}

#[test]
fn bandwidth_integral_across_band_edges_by_hand() {
    let p = plan(BANDWIDTH_PLAN);
    let rec = Records::from_records(bandwidth_history());
    let rated = rate_period(&p, &rec, may(), i64::MAX).unwrap();
    let inv = &rated.invoices[0];
    // peak 08:00-12:00 at 10M, 12:00-19:45 at 4M, 19:45-20:00 at 6M.
    let peak = 10_000_000u64 * 14_400 + 4_000_000 * 27_900 + 6_000_000 * 900;
    // offpeak 07:00-07:30 at 2M, 07:30-08:00 at 10M, 20:00-22:00 at 6M (then stopped).
    let offpeak = 2_000_000u64 * 1800 + 10_000_000 * 1800 + 6_000_000 * 7200;
    assert_eq!(peak, 261_000_000_000);
    assert_eq!(offpeak, 64_800_000_000);
    let l = line(inv, "u1", "bandwidth", "peak");
    assert_eq!((l.quantity, l.unit.as_str(), l.amount), (peak, "bit", 783));
    let l = line(inv, "u1", "bandwidth", "offpeak");
    // 64.8 rounds half-even to 65.
    assert_eq!((l.quantity, l.amount), (offpeak, 65));
    assert_eq!(inv.total, 783 + 65);
    // The same total as the direct formula over the whole session.
    let points: Vec<bandwidth::ChangePoint> = rec
        .bandwidth
        .iter()
        .map(|b| bandwidth::ChangePoint {
            at: b.at,
            bps: b.bps,
        })
        .collect();
    assert_eq!(
        bandwidth::integral(
            &points,
            t("2024-05-06T07:00:00Z"),
            t("2024-05-06T22:00:00Z")
        ),
        u128::from(peak + offpeak)
    );
}

#[test]
fn bandwidth_with_minute_sampling_equals_integral_when_changes_are_on_samples() {
    let mut src = BANDWIDTH_PLAN.replace(
        "trigger_interval_s = 3600",
        "bandwidth_method = \"sampling\"\nsampling_period_s = 60",
    );
    let rec = Records::from_records(bandwidth_history());
    let sampled = rate_period(&plan(&src), &rec, may(), i64::MAX).unwrap();
    let exact = rate_period(&plan(BANDWIDTH_PLAN), &rec, may(), i64::MAX).unwrap();
    assert_eq!(sampled.invoices, exact.invoices);
    // With T = 7 s the samples miss the change points: a different, coarser base.
    src = src.replace("sampling_period_s = 60", "sampling_period_s = 7");
    let coarse = rate_period(&plan(&src), &rec, may(), i64::MAX).unwrap();
    let q = line(&coarse.invoices[0], "u1", "bandwidth", "peak").quantity;
    assert_ne!(q, 261_000_000_000);
    // Exactly: the sum of 7 × X(s) over the samples s = 7k in the peak hours.
    let points: Vec<bandwidth::ChangePoint> = rec
        .bandwidth
        .iter()
        .map(|b| bandwidth::ChangePoint {
            at: b.at,
            bps: b.bps,
        })
        .collect();
    let (a, b) = (t("2024-05-06T08:00:00Z"), t("2024-05-06T20:00:00Z"));
    let by_hand: u128 = (a..b)
        .filter(|s| s % 7 == 0)
        .map(|s| 7 * u128::from(bandwidth::bandwidth_at(&points, s)))
        .sum();
    assert_eq!(u128::from(q), by_hand);
}

#[test]
fn bandwidth_across_a_period_boundary_and_local_time() {
    // UTC+9: the May/June boundary is 2024-05-31T15:00:00Z.
    let src = BANDWIDTH_PLAN.replace("trigger_interval_s = 3600", "timezone_offset_minutes = 540");
    let p = plan(&src);
    let rec = Records::from_records(vec![
        bw("b1", "u2", "c9", "2024-05-31T14:00:00Z", 1_000_000),
        bw("b2", "u2", "c9", "2024-05-31T16:00:00Z", 0),
    ]);
    let may_inv = &rate_period(&p, &rec, may(), i64::MAX).unwrap().invoices[0];
    let june_inv = &rate_period(&p, &rec, may().next(), i64::MAX)
        .unwrap()
        .invoices[0];
    // 23:00-24:00 local on May 31 and 00:00-01:00 on June 1: off-peak both.
    assert_eq!(
        line(may_inv, "u2", "bandwidth", "offpeak").quantity,
        3_600_000_000
    );
    assert_eq!(
        line(june_inv, "u2", "bandwidth", "offpeak").quantity,
        3_600_000_000
    );
    // An open history (no end) is counted up to `until` (21:00-22:00 local).
    let open = Records::from_records(vec![bw("b1", "u3", "c1", "2024-05-06T12:00:00Z", 1000)]);
    let inv = &rate_period(&p, &open, may(), t("2024-05-06T13:00:00Z"))
        .unwrap()
        .invoices[0];
    assert_eq!(line(inv, "u3", "bandwidth", "offpeak").quantity, 3_600_000);
}

const VOLUME_PLAN: &str = r#"
[rating]
default_tariff = "vol"
[[rating.band]]
name = "day"
from = "08:00"
to = "20:00"
[[rating.tariff]]
name = "vol"
[[rating.tariff.rate]]
kind = "bytes"
direction = "tx"
price = 2
per = 1000000
[[rating.tariff.rate]]
kind = "bytes"
direction = "rx"
price = 1
per = 1000000
[[rating.tariff.rate]]
kind = "packets"
price = 1
per = 1000
[[rating.tariff.rate]]
kind = "time"
band = "day"
price = 1
per = 60
"#;

#[test]
fn volume_charges_are_counters_times_rates() {
    let p = plan(VOLUME_PLAN);
    // Seed 002: counters per channel at disconnect. 1000 packets of 1200 bytes sent,
    // 3000 of 1500 received; 09:00 to 10:30, of which all in the day band.
    let rec = Records::from_records(vec![session(
        "s1",
        "dial1",
        "2024-05-06T09:00:00Z",
        "2024-05-06T10:30:00Z",
        (1000, 1_200_000),
        (3000, 4_500_000),
    )]);
    let inv = &rate_period(&p, &rec, may(), i64::MAX).unwrap().invoices[0];
    let tx = inv
        .lines
        .iter()
        .find(|l| l.kind == "bytes" && l.detail == "tx")
        .unwrap();
    assert_eq!((tx.quantity, tx.amount), (1_200_000, 2)); // 2.4 -> 2
    let rx = inv
        .lines
        .iter()
        .find(|l| l.kind == "bytes" && l.detail == "rx")
        .unwrap();
    assert_eq!((rx.quantity, rx.amount), (4_500_000, 4)); // 4.5 -> 4 (half to even)
    let pk = line(inv, "dial1", "packets", "");
    assert_eq!(
        (pk.detail.as_str(), pk.quantity, pk.amount),
        ("both", 4000, 4)
    );
    let tm = line(inv, "dial1", "time", "day");
    assert_eq!((tm.quantity, tm.amount), (5400, 90));
    assert_eq!(inv.total, 2 + 4 + 4 + 90);
    assert_eq!(inv.account, "dial1"); // a personal account at the default tariff
}

const SHARED_PLAN: &str = r#"
[rating]
currency = "JPY"
minor_digits = 0
[[rating.band]]
name = "peak"
days = ["weekdays"]
from = "08:00"
to = "20:00"
[[rating.tariff]]
name = "biz"
[[rating.tariff.rate]]
kind = "fixed"
price = 1000
[[rating.tariff.rate]]
kind = "bytes"
price = 5
per = 1000000
[[rating.tariff.rate]]
kind = "time"
band = "peak"
price = 1
per = 60
[[rating.tariff.rate]]
kind = "tunnel"
price = 700
[[rating.tariff.rate]]
kind = "line"
price = 1500
[[rating.contract]]
name = "shared-line"
fee = 2500
price = 10
unit = "h"
[[rating.account]]
id = "acme"
name = "ACME Trading"
tariff = "biz"
users = ["alice", "bob", "carol"]
contracts = ["shared-line"]
"#;

fn shared_records() -> Vec<Record> {
    vec![
        // Monday, peak: 10 MB both ways, 3600 s.
        session(
            "a1",
            "alice",
            "2024-05-06T09:00:00Z",
            "2024-05-06T10:00:00Z",
            (10, 3_000_000),
            (20, 7_000_000),
        ),
        // Friday evening, off-peak: no time charge.
        session(
            "b1",
            "bob",
            "2024-05-10T20:00:00Z",
            "2024-05-10T21:00:00Z",
            (5, 1_000_000),
            (5, 1_000_000),
        ),
        Record::Service(ServiceUsage {
            id: "v1".into(),
            account: "acme".into(),
            user: Some("bob".into()),
            contract: "shared-line".into(),
            at: t("2024-05-12T10:00:00Z"),
            quantity: 3,
        }),
    ]
}

#[test]
fn shared_account_with_three_users_and_a_contract() {
    // Seed 000, claims 17-19: one claim per period totalling every user's charges and
    // the contract fee (fixed and metered).
    let p = plan(SHARED_PLAN);
    let rated = rate_period(
        &p,
        &Records::from_records(shared_records()),
        may(),
        i64::MAX,
    )
    .unwrap();
    assert_eq!(rated.invoices.len(), 1);
    let inv = &rated.invoices[0];
    assert_eq!(
        (inv.account.as_str(), inv.name.as_str()),
        ("acme", "ACME Trading")
    );
    let amounts: Vec<(&str, &str, &str, u64, i64)> = inv
        .lines
        .iter()
        .map(|l| {
            (
                l.user.as_str(),
                l.kind.as_str(),
                l.detail.as_str(),
                l.quantity,
                l.amount,
            )
        })
        .collect();
    assert_eq!(
        amounts,
        vec![
            ("alice", "bytes", "both", 10_000_000, 50),
            ("alice", "time", "", 3600, 60),
            ("alice", "fixed", "", 1, 1000),
            ("bob", "bytes", "both", 2_000_000, 10),
            ("bob", "fixed", "", 1, 1000),
            ("bob", "service", "shared-line", 3, 30),
            ("carol", "fixed", "", 1, 1000),
            ("", "contract", "shared-line", 1, 2500),
        ]
    );
    assert_eq!(inv.total, 5650);
    assert_eq!(
        inv.subtotals(),
        vec![
            ("alice".to_string(), 1110),
            ("bob".to_string(), 1040),
            ("carol".to_string(), 1000),
            (String::new(), 2500)
        ]
    );
    let csv = invoice::to_csv(std::slice::from_ref(inv));
    assert!(csv.starts_with(invoice::CSV_HEADER), "{csv}");
    assert!(
        csv.contains("2024-05,acme,alice,bytes,both,,10000000,byte,5,1000000,50,JPY\n"),
        "{csv}"
    );
    assert!(
        csv.ends_with("2024-05,acme,,total,,,,,,,5650,JPY\n"),
        "{csv}"
    );
    let table = crate::ctl::render::invoice(inv);
    assert!(
        table.contains("TOTAL") && table.contains("5650 JPY"),
        "{table}"
    );
}

#[test]
fn tunnels_and_lines_are_counted_per_customer() {
    // TUN-5: three tunnels on two physical lines; a tunnel used twice counts once.
    let p = plan(SHARED_PLAN);
    let tun = |id: &str, tunnel: &str, line: &str, a: &str, b: &str| {
        Record::Tunnel(TunnelUsage {
            id: id.into(),
            account: "acme".into(),
            user: None,
            tunnel: tunnel.into(),
            line: line.into(),
            start: t(a),
            stop: t(b),
        })
    };
    let rec = Records::from_records(vec![
        tun(
            "t1",
            "T1",
            "L1",
            "2024-05-02T00:00:00Z",
            "2024-05-03T00:00:00Z",
        ),
        tun(
            "t2",
            "T1",
            "L1",
            "2024-05-20T00:00:00Z",
            "2024-05-21T00:00:00Z",
        ),
        tun(
            "t3",
            "T2",
            "L1",
            "2024-05-02T00:00:00Z",
            "2024-05-03T00:00:00Z",
        ),
        tun(
            "t4",
            "T3",
            "L2",
            "2024-04-30T00:00:00Z",
            "2024-05-01T00:00:01Z",
        ),
        tun(
            "t5",
            "T4",
            "L3",
            "2024-04-01T00:00:00Z",
            "2024-04-02T00:00:00Z",
        ), // April only
    ]);
    let inv = &rate_period(&p, &rec, may(), i64::MAX).unwrap().invoices[0];
    let l = line(inv, "", "tunnel", "");
    assert_eq!((l.quantity, l.amount), (3, 2100));
    let l = line(inv, "", "line", "");
    assert_eq!((l.quantity, l.amount), (2, 3000));
    assert_eq!(inv.total, 3 * 1000 + 2100 + 3000 + 2500);
}

#[test]
fn unrated_records_are_reported_not_dropped_silently() {
    let p = plan(SHARED_PLAN); // no default tariff
    let rec = Records::from_records(vec![session(
        "x1",
        "stranger",
        "2024-05-06T09:00:00Z",
        "2024-05-06T10:00:00Z",
        (1, 1),
        (1, 1),
    )]);
    let rated = rate_period(&p, &rec, may(), i64::MAX).unwrap();
    assert_eq!(rated.unrated, vec!["session:x1".to_string()]);
    assert_eq!(rated.invoices.len(), 1); // acme's fixed fees and contract only
}

/// Where a test's ledgers live: the same tests run on both backends (the SQLite ones in
/// `cargo test`, the PostgreSQL ones in `the_ledger_tests_on_postgresql`).
enum On<'a> {
    Sqlite,
    Postgres(&'a tollgate_testkit::postgres::Postgres),
}

/// A fresh ledger with the plan of `src` (in PostgreSQL: in a database of its own).
fn rater_on(on: &On, src: &str) -> Rater {
    static DATABASES: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let store = match on {
        On::Sqlite => Store::in_memory().unwrap(),
        On::Postgres(pg) => {
            let name = format!(
                "ledger{}",
                DATABASES.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            );
            pg.create_database(&name);
            let store = Store::open_postgres(&crate::database::DatabaseConfig::new(&pg.url(&name)))
                .unwrap();
            assert!(store.is_postgres());
            store
        }
    };
    Rater::with_store(plan(src), store)
}

#[test]
fn records_are_stored_once_and_conflicts_refused() {
    records_are_stored_once_and_conflicts_refused_on(&On::Sqlite);
}

fn records_are_stored_once_and_conflicts_refused_on(on: &On) {
    let r = rater_on(on, SHARED_PLAN);
    let rec = shared_records();
    assert_eq!(r.import(&rec).unwrap().stored, 3);
    let again = r.import(&rec).unwrap();
    assert_eq!((again.stored, again.duplicates), (0, 3));
    let Record::Session(mut s) = rec[0].clone() else {
        unreachable!()
    };
    assert_eq!(r.record_session(&s).unwrap(), Stored::Duplicate);
    s.tx_bytes += 1;
    let e = r.record_session(&s).unwrap_err();
    assert!(matches!(e, RatingError::Conflict { .. }), "{e}");
    // A failed import keeps nothing of itself.
    let mut bad = shared_records();
    bad.push(session(
        "zz",
        "alice",
        "2024-05-07T00:00:00Z",
        "2024-05-07T01:00:00Z",
        (1, 1),
        (1, 1),
    ));
    bad.push(Record::Session(s));
    assert!(r.import(&bad).is_err());
    assert_eq!(r.store().watermark().unwrap(), 3);
}

#[test]
fn close_rerate_and_provisional_invoice() {
    close_rerate_and_provisional_invoice_on(&On::Sqlite);
}

fn close_rerate_and_provisional_invoice_on(on: &On) {
    let r = rater_on(on, SHARED_PLAN);
    r.import(&shared_records()).unwrap();
    let now = t("2024-06-02T00:00:00Z");
    // Open periods cannot be closed.
    assert!(matches!(
        r.close_period(may().next(), now).unwrap_err(),
        RatingError::PeriodOpen { .. }
    ));
    let provisional = r.invoice("acme", may(), t("2024-05-20T00:00:00Z")).unwrap();
    assert!(provisional.provisional);
    let rep = r.close_period(may(), now).unwrap();
    assert!(rep.closed_now);
    assert_eq!((rep.invoices, rep.total), (1, 5650));
    let stored = r.invoice("acme", may(), now).unwrap();
    assert!(!stored.provisional);
    assert_eq!(stored.invoice.total, 5650);
    assert_eq!(provisional.invoice, stored.invoice);
    // Closing again changes nothing.
    let again = r.close_period(may(), now).unwrap();
    assert!(!again.closed_now);
    assert_eq!(again.total, 5650);
    // Re-rating reproduces it; a late record is not rated into the closed period.
    r.import(&[session(
        "late",
        "carol",
        "2024-05-30T09:00:00Z",
        "2024-05-30T10:00:00Z",
        (1, 1_000_000),
        (1, 0),
    )])
    .unwrap();
    let rr = r.rerate(may()).unwrap();
    assert!(rr.identical, "{rr:?}");
    assert_eq!(rr.late_records, 1);
    assert_eq!(r.invoice("acme", may(), now).unwrap().invoice.total, 5650);
}

#[test]
fn an_interrupted_close_keeps_nothing_and_a_rerun_gives_the_same_invoices() {
    an_interrupted_close_keeps_nothing_and_a_rerun_gives_the_same_invoices_on(&On::Sqlite);
}

fn an_interrupted_close_keeps_nothing_and_a_rerun_gives_the_same_invoices_on(on: &On) {
    for step in [
        CloseStep::PlanStored,
        CloseStep::Rated,
        CloseStep::InvoicesWritten,
        CloseStep::BeforeCommit,
    ] {
        let r = rater_on(on, SHARED_PLAN);
        r.import(&shared_records()).unwrap();
        let now = t("2024-06-02T00:00:00Z");
        let e = r
            .close_period_with(may(), now, &mut |s| {
                if s == step {
                    Err(RatingError::Interrupted {
                        period: "2024-05".into(),
                        step: s.name(),
                    })
                } else {
                    Ok(())
                }
            })
            .unwrap_err();
        assert!(matches!(e, RatingError::Interrupted { .. }));
        assert!(r.store().period("2024-05").unwrap().is_none());
        assert!(r.store().invoices("2024-05").unwrap().is_empty());
        let rep = r.close_period(may(), now).unwrap();
        assert!(rep.closed_now);
        assert_eq!(rep.total, 5650);
    }
}

const NIGHT_PLAN: &str = r#"
[rating]
time_zone = "Europe/Berlin"
default_tariff = "night"
[[rating.band]]
name = "night"
days = ["sat"]
from = "22:00"
to = "06:00"
[[rating.tariff]]
name = "night"
[[rating.tariff.rate]]
kind = "time"
band = "night"
price = 100
per = 3600
"#;

/// A session from Saturday noon to Sunday noon (UTC) over the night band, rated in
/// `period` of `src`: the night band's seconds.
fn night_seconds(src: &str, period: &str, from: &str, to: &str) -> (u64, i64) {
    let p = plan(src);
    let rec = Records::from_records(vec![session("n1", "u1", from, to, (0, 0), (0, 0))]);
    let period = Period::parse(period).unwrap();
    let inv = &rate_period(&p, &rec, period, i64::MAX).unwrap().invoices[0];
    let l = line(inv, "u1", "time", "night");
    (l.quantity, l.amount)
}

#[test]
fn a_night_band_in_europe_berlin_bills_the_hours_the_clock_shows() {
    // 22:00-06:00 local on the last Saturday night of March: clocks go forward at 02:00,
    // 7 hours; of October: back at 03:00, 9 hours. 1.00 per hour.
    let (mar_from, mar_to) = ("2024-03-30T12:00:00Z", "2024-03-31T12:00:00Z");
    let (oct_from, oct_to) = ("2024-10-26T12:00:00Z", "2024-10-27T12:00:00Z");
    assert_eq!(
        night_seconds(NIGHT_PLAN, "2024-03", mar_from, mar_to),
        (7 * 3600, 700)
    );
    assert_eq!(
        night_seconds(NIGHT_PLAN, "2024-10", oct_from, oct_to),
        (9 * 3600, 900)
    );
    // An ordinary Saturday night in summer: 8 hours, 22:00 CEST = 20:00 UTC.
    assert_eq!(
        night_seconds(
            NIGHT_PLAN,
            "2024-07",
            "2024-07-13T20:00:00Z",
            "2024-07-14T04:00:00Z"
        ),
        (8 * 3600, 800)
    );
    // The fixed offset of winter time keeps 8 hours on both nights (today's behaviour).
    let fixed = NIGHT_PLAN.replace(
        "time_zone = \"Europe/Berlin\"",
        "timezone_offset_minutes = 60",
    );
    assert_eq!(
        night_seconds(&fixed, "2024-03", mar_from, mar_to),
        (8 * 3600, 800)
    );
    assert_eq!(
        night_seconds(&fixed, "2024-10", oct_from, oct_to),
        (8 * 3600, 800)
    );
}

#[test]
fn a_time_zone_sets_local_periods_and_activation_dates() {
    let p = plan(NIGHT_PLAN);
    // April starts at local midnight CEST, March at CET.
    let april = Period::parse("2024-04").unwrap();
    assert_eq!(april.start(&p.zone), t("2024-03-31T22:00:00Z"));
    assert_eq!(april.previous().start(&p.zone), t("2024-02-29T23:00:00Z"));
    let since = NIGHT_PLAN.replace(
        "per = 3600\n",
        "per = 3600\n[[rating.tariff.rate]]\nkind = \"time\"\nband = \"night\"\nsince = \"2024-07-01\"\nprice = 200\nper = 3600\n",
    );
    let p = plan(&since);
    assert_eq!(p.cutter.cuts, vec![t("2024-06-30T22:00:00Z")]);
}

#[test]
fn a_time_zone_is_refused_with_a_fixed_offset_or_an_unknown_name() {
    #[derive(Deserialize)]
    struct W {
        rating: RatingConfig,
    }
    let compile = |src: &str| Plan::compile(&toml::from_str::<W>(src).unwrap().rating);
    let both = NIGHT_PLAN.replace("[rating]\n", "[rating]\ntimezone_offset_minutes = 60\n");
    let (key, msg) = compile(&both).unwrap_err();
    assert_eq!(key, "rating.time_zone");
    assert!(msg.contains("not both"), "{msg}");
    let unknown = NIGHT_PLAN.replace("Europe/Berlin", "Europe/Atlantis");
    let (key, msg) = compile(&unknown).unwrap_err();
    assert_eq!(key, "rating.time_zone");
    assert!(
        msg.contains("\"Europe/Atlantis\" is not an IANA time zone"),
        "{msg}"
    );
    // Without a zone the stored plan is exactly today's: no `time_zone` key.
    let fixed = NIGHT_PLAN.replace(
        "time_zone = \"Europe/Berlin\"",
        "timezone_offset_minutes = 60",
    );
    let stored = plan(&fixed).to_json();
    assert!(!stored.contains("time_zone"), "{stored}");
    assert!(
        stored.contains("\"timezone_offset_minutes\":60"),
        "{stored}"
    );
}

// ---- properties ----

const PROP_PLAN: &str = r#"
[rating]
timezone_offset_minutes = 120
default_tariff = "all"
trigger_interval_s = 3600
[[rating.band]]
name = "peak"
days = ["weekdays"]
from = "08:00"
to = "18:30"
[[rating.band]]
name = "night"
days = ["all"]
from = "23:00"
to = "06:00"
[[rating.tariff]]
name = "all"
[[rating.tariff.rate]]
kind = "bytes"
direction = "tx"
band = "peak"
price = 7
per = 1000000
[[rating.tariff.rate]]
kind = "bytes"
direction = "rx"
price = 3
per = 1000000
[[rating.tariff.rate]]
kind = "bytes"
direction = "rx"
since = "2024-05-15"
price = 4
per = 1000000
[[rating.tariff.rate]]
kind = "packets"
direction = "tx"
price = 1
per = 333
[[rating.tariff.rate]]
kind = "time"
band = "night"
price = 1
per = 7
[[rating.tariff.rate]]
kind = "time"
band = "peak"
price = 5
per = 60
[[rating.tariff.rate]]
kind = "bandwidth"
band = "peak"
price = 3
per = 1000000000
[[rating.tariff.rate]]
kind = "bandwidth"
band = "night"
since = "2024-05-10"
price = 1
per = 999999937
[[rating.tariff.rate]]
kind = "tunnel_time"
price = 1
per = 3600
[[rating.tariff.rate]]
kind = "line_time"
band = "night"
price = 2
per = 3600
[[rating.tariff.rate]]
kind = "fixed"
price = 999
[[rating.tariff.rate]]
kind = "tunnel"
price = 100
[[rating.contract]]
name = "vpn"
fee = 500
price = 3
per = 2
[[rating.account]]
id = "shared"
users = ["u0", "u1", "u2"]
contracts = ["vpn"]
"#;

fn records() -> impl Strategy<Value = Vec<Record>> {
    // Around May 2024 (UTC+2), a few days either side.
    let base = t("2024-04-28T00:00:00Z");
    let span = 38 * 86_400i64;
    let sess = (
        0usize..5,
        0..span,
        0i64..200_000,
        any::<(u16, u32, u16, u32)>(),
        any::<bool>(),
    )
        .prop_map(move |(u, s, d, (tp, tb, rp, rb), fin)| {
            (u, base + s, base + s + d, tp, tb, rp, rb, fin)
        });
    let bwc = (0usize..5, 0usize..3, 0..span, 0u64..5_000_000_000);
    let tun = (0usize..3, 0usize..3, 0..span, 0i64..300_000);
    let svc = (0usize..4, 0..span, 0u64..1000);
    (
        prop::collection::vec(sess, 0..12),
        prop::collection::vec(bwc, 0..16),
        prop::collection::vec(tun, 0..6),
        prop::collection::vec(svc, 0..4),
    )
        .prop_map(move |(ss, bs, ts, vs)| {
            let mut out = Vec::new();
            for (i, (u, a, b, tp, tb, rp, rb, fin)) in ss.into_iter().enumerate() {
                out.push(Record::Session(SessionUsage {
                    id: format!("s{i}"),
                    user: format!("u{u}"),
                    account: None,
                    session: format!("c{}", i % 3),
                    start: a,
                    stop: b,
                    tx_packets: u64::from(tp),
                    tx_bytes: u64::from(tb),
                    rx_packets: u64::from(rp),
                    rx_bytes: u64::from(rb),
                    cause: fin.then(|| "idle-timeout".to_string()),
                }));
            }
            for (i, (u, c, at, bps)) in bs.into_iter().enumerate() {
                out.push(Record::Bandwidth(BandwidthChange {
                    id: format!("b{i}"),
                    user: format!("u{u}"),
                    account: None,
                    session: format!("c{c}"),
                    at: base + at,
                    bps,
                    reason: "coa".into(),
                }));
            }
            for (i, (tn, ln, a, d)) in ts.into_iter().enumerate() {
                out.push(Record::Tunnel(TunnelUsage {
                    id: format!("t{i}"),
                    account: "shared".into(),
                    user: (i % 2 == 0).then(|| "u1".to_string()),
                    tunnel: format!("T{tn}"),
                    line: format!("L{ln}"),
                    start: base + a,
                    stop: base + a + d,
                }));
            }
            for (i, (u, at, q)) in vs.into_iter().enumerate() {
                out.push(Record::Service(ServiceUsage {
                    id: format!("v{i}"),
                    account: "shared".into(),
                    user: Some(format!("u{u}")),
                    contract: if u == 3 { "none".into() } else { "vpn".into() },
                    at: base + at,
                    quantity: q,
                }));
            }
            out
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// The charge base of a period is the sum of the charge bases of any split of it.
    #[test]
    fn rating_is_additive_over_any_split_of_the_period(
        recs in records(),
        cuts in prop::collection::vec(0i64..(31 * 86_400), 1..4),
    ) {
        let p = plan(PROP_PLAN);
        let rec = Records::from_records(recs);
        let (from, to) = (may().start(&p.zone), may().end(&p.zone));
        let whole = charge_base(&p, &rec, from, to, i64::MAX).unwrap();
        let mut points: Vec<i64> = cuts.iter().map(|c| from + c).collect();
        points.push(from);
        points.push(to);
        points.sort_unstable();
        let mut sum = rate::Base::default();
        for w in points.windows(2) {
            sum.merge(&charge_base(&p, &rec, w[0], w[1], i64::MAX).unwrap()).unwrap();
        }
        prop_assert_eq!(&sum.lines, &whole.lines);
        prop_assert_eq!(&sum.unrated, &whole.unrated);
    }

    /// When the periodic trigger fires does not change any invoice.
    #[test]
    fn rating_is_independent_of_trigger_timing(recs in records(), every in 1u64..86_400) {
        let rec = Records::from_records(recs);
        let hourly = rate_period(&plan(PROP_PLAN), &rec, may(), i64::MAX).unwrap();
        let src = PROP_PLAN.replace("trigger_interval_s = 3600", &format!("trigger_interval_s = {every}"));
        let other = rate_period(&plan(&src), &rec, may(), i64::MAX).unwrap();
        prop_assert_eq!(hourly, other);
    }

    /// Closing, re-rating from the store, and rating the records afresh give the same
    /// invoices byte for byte, and an interrupted close rerun gives them too.
    #[test]
    fn rerating_and_interrupted_runs_reproduce_invoices(recs in records(), stop_at in 0usize..5) {
        rerating_and_interrupted_runs_reproduce_invoices_on(&On::Sqlite, &recs, stop_at)?;
    }
}

/// Closing, re-rating from the store, and rating the records afresh give the same
/// invoices byte for byte, and an interrupted close rerun gives them too.
fn rerating_and_interrupted_runs_reproduce_invoices_on(
    on: &On,
    recs: &[Record],
    stop_at: usize,
) -> Result<(), TestCaseError> {
    let now = t("2024-07-01T00:00:00Z");
    let a = rater_on(on, PROP_PLAN);
    a.import(recs).unwrap();
    a.close_period(may(), now).unwrap();
    let stored: Vec<String> = a
        .store()
        .invoices("2024-05")
        .unwrap()
        .into_iter()
        .map(|(_, b)| b)
        .collect();
    let fresh: Vec<String> = rate_period(
        a.plan(),
        &Records::from_records(recs.to_vec()),
        may(),
        i64::MAX,
    )
    .unwrap()
    .invoices
    .iter()
    .map(Invoice::to_json)
    .collect();
    prop_assert_eq!(&stored, &fresh);
    prop_assert!(a.rerate(may()).unwrap().identical);

    let b = rater_on(on, PROP_PLAN);
    b.import(recs).unwrap();
    let steps = [
        CloseStep::PlanStored,
        CloseStep::Rated,
        CloseStep::InvoicesWritten,
        CloseStep::BeforeCommit,
    ];
    if let Some(&step) = steps.get(stop_at) {
        let res = b.close_period_with(may(), now, &mut |s| {
            if s == step {
                Err(RatingError::Interrupted {
                    period: "2024-05".into(),
                    step: s.name(),
                })
            } else {
                Ok(())
            }
        });
        // With no invoice at all the InvoicesWritten step never comes.
        prop_assert!(res.is_err() || (step == CloseStep::InvoicesWritten && stored.is_empty()));
    }
    b.close_period(may(), now).unwrap();
    let again: Vec<String> = b
        .store()
        .invoices("2024-05")
        .unwrap()
        .into_iter()
        .map(|(_, b)| b)
        .collect();
    prop_assert_eq!(&again, &stored);
    Ok(())
}

/// Two nodes (two connections to one ledger) close the same period at the same moment:
/// the advisory lock lets one close it; the other waits, finds it closed and answers the
/// stored report. One set of invoices, byte for byte those of a lone close.
fn two_nodes_closing_at_once_close_the_period_once(pg: &tollgate_testkit::postgres::Postgres) {
    pg.create_database("closers");
    let open = || {
        let store = Store::open_postgres(&crate::database::DatabaseConfig::new(&pg.url("closers")))
            .unwrap();
        Rater::with_store(plan(SHARED_PLAN), store)
    };
    let (a, b) = (open(), open());
    a.import(&shared_records()).unwrap();
    let now = t("2024-06-02T00:00:00Z");
    let start = std::sync::Barrier::new(2);
    let ((a, ra), (b, rb)) = std::thread::scope(|s| {
        let close = |r: Rater| {
            let start = &start;
            move || {
                start.wait();
                let rep = r.close_period(may(), now).unwrap();
                (r, rep)
            }
        };
        let ha = s.spawn(close(a));
        let hb = s.spawn(close(b));
        (ha.join().unwrap(), hb.join().unwrap())
    });
    assert!(
        ra.closed_now != rb.closed_now,
        "exactly one closes: {ra:?} {rb:?}"
    );
    assert_eq!((ra.invoices, ra.total), (rb.invoices, rb.total));
    assert_eq!((ra.invoices, ra.total), (1, 5650));
    let lone = rater_on(&On::Sqlite, SHARED_PLAN);
    lone.import(&shared_records()).unwrap();
    lone.close_period(may(), now).unwrap();
    assert_eq!(
        a.store().invoices("2024-05").unwrap(),
        lone.store().invoices("2024-05").unwrap()
    );
    assert_eq!(b.store().periods().unwrap().len(), 1);
}

/// The ledger tests above on a real PostgreSQL 15, started by the test (root; `make
/// host-test`): each on a database of its own.
#[test]
#[ignore = "needs root and PostgreSQL 15 (make deps): make host-test"]
fn the_ledger_tests_on_postgresql() {
    let pg = tollgate_testkit::postgres::Postgres::start();
    let on = On::Postgres(&pg);
    records_are_stored_once_and_conflicts_refused_on(&on);
    close_rerate_and_provisional_invoice_on(&on);
    an_interrupted_close_keeps_nothing_and_a_rerun_gives_the_same_invoices_on(&on);
    two_nodes_closing_at_once_close_the_period_once(&pg);
    // A plan of many accounts is many kilobytes: more than a PostgreSQL index row holds.
    let big = rater_on(&on, SHARED_PLAN);
    // (Varied text: PostgreSQL compresses a repetitive one below the limit.)
    let mut x = 1u64;
    let accounts: String = (0..2_000)
        .map(|_| {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            format!("{:08x},", x >> 32)
        })
        .collect();
    let body = format!("{{\"accounts\": \"{accounts}\"}}");
    let id = big.store().plan_id(&body).unwrap();
    assert_eq!(big.store().plan_id(&body).unwrap(), id);
    assert_eq!(big.store().plan_body(id).unwrap(), body);
    let mut runner = proptest::test_runner::TestRunner::new(proptest::test_runner::Config {
        cases: 8,
        ..Default::default()
    });
    runner
        .run(&(records(), 0usize..5), |(recs, stop_at)| {
            rerating_and_interrupted_runs_reproduce_invoices_on(&on, &recs, stop_at)
        })
        .unwrap();
}

#[test]
fn a_file_over_the_import_limit_is_refused_whole() {
    let dir = tempfile::tempdir().unwrap();
    let line = |i: usize| {
        format!(
            "{{\"type\":\"service\",\"id\":\"s{i}\",\"account\":\"a\",\"contract\":\"c\",\"at\":1700000000,\"quantity\":1}}\n"
        )
    };
    let at_limit: String = (0..staging::MAX_IMPORT_RECORDS).map(line).collect();
    let ok = dir.path().join("ok.jsonl");
    std::fs::write(&ok, &at_limit).unwrap();
    assert_eq!(read_jsonl(&ok).unwrap().len(), staging::MAX_IMPORT_RECORDS);
    let over = dir.path().join("over.jsonl");
    std::fs::write(&over, at_limit + &line(staging::MAX_IMPORT_RECORDS)).unwrap();
    let e = read_jsonl(&over).unwrap_err();
    assert!(
        e.contains("line 100001: more than 100000 records in one file: nothing was stored"),
        "{e}"
    );
}
