//! Rating end to end through the `tollgate` binary: records imported from JSON lines
//! into a SQLite file, a period closed, invoices exported as JSON and CSV, re-rated,
//! a close killed mid-transaction and rerun, and the same through a running daemon's
//! control socket.

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use tollgate_control::config::Config;
use tollgate_control::engine;

/// The traffic generator's run: 1000 packets of 1200 bytes (IPv4 total length) sent by
/// the subscriber, 800 of 1500 received.
const SENT: (u64, u64) = (1000, 1200);
const RECEIVED: (u64, u64) = (800, 1500);

/// Tariff: 3 minor units per MB sent, 2 per MB received, 1 per 100 packets either
/// way, 25 per hour of session in the `day` band, a 990 monthly fee per user.
const RATING: &str = r#"
[rating]
database = "DB"
currency = "EUR"
timezone_offset_minutes = 60
default_tariff = "home"
[[rating.band]]
name = "day"
from = "07:00"
to = "23:00"
[[rating.tariff]]
name = "home"
[[rating.tariff.rate]]
kind = "bytes"
direction = "tx"
price = 3
per = 1000000
[[rating.tariff.rate]]
kind = "bytes"
direction = "rx"
price = 2
per = 1000000
[[rating.tariff.rate]]
kind = "packets"
price = 1
per = 100
[[rating.tariff.rate]]
kind = "time"
band = "day"
price = 25
per = 3600
[[rating.tariff.rate]]
kind = "fixed"
price = 990
[[rating.contract]]
name = "family-vpn"
fee = 450
[[rating.account]]
id = "family"
name = "The Smiths"
users = ["ann", "ben", "cat"]
contracts = ["family-vpn"]
"#;

struct Lab {
    dir: tempfile::TempDir,
}

impl Lab {
    fn new() -> Lab {
        Lab {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn config(&self, db: &str, socket: &str) -> PathBuf {
        // The daemon's spool and store in the test's directory, not in /var/lib.
        let src = format!(
            "[control]\nsocket = \"{}\"\n\n[access]\nbackend = \"memory\"\naddress = \"10.10.0.1/24\"\n\n[core]\nbackend = \"memory\"\naddress = \"192.0.2.1/24\"\n\n[aaa]\nstore = \"{d}/{db}.subscribers\"\nspool = \"{d}/{db}.spool\"\n{}",
            self.path(socket).display(),
            RATING.replace("DB", &self.path(db).display().to_string()),
            d = self.dir.path().display(),
        );
        let p = self.path(&format!("{db}.toml"));
        std::fs::write(&p, src).unwrap();
        p
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

fn tollgate(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tollgate"));
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "failed: {}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// One Stop record of the generator's session (09:00 to 09:30 local, UTC+1), and
/// a bandwidth change and a session of another member of the family.
fn records() -> String {
    let (tp, tl) = SENT;
    let (rp, rl) = RECEIVED;
    format!(
        "# the lab session\n\
         {{\"type\":\"session\",\"id\":\"gw1/0001\",\"user\":\"ann\",\"session\":\"0001\",\"start\":\"2024-05-06T08:00:00Z\",\"stop\":\"2024-05-06T08:30:00Z\",\"tx_packets\":{tp},\"tx_bytes\":{},\"rx_packets\":{rp},\"rx_bytes\":{},\"cause\":\"user-request\"}}\n\
         \n\
         {{\"type\":\"session\",\"id\":\"gw1/0002\",\"user\":\"ben\",\"session\":\"0002\",\"start\":1715000000,\"stop\":1715000000,\"tx_packets\":0,\"tx_bytes\":0,\"rx_packets\":0,\"rx_bytes\":0}}\n",
        tp * tl,
        rp * rl
    )
}

/// What the invoice must say, computed from the generator's counters and the tariff,
/// in invoice order (kind, then direction by name).
fn expected_ann() -> Vec<(&'static str, &'static str, u64, i64)> {
    let tx_bytes = SENT.0 * SENT.1; // 1 200 000
    let rx_bytes = RECEIVED.0 * RECEIVED.1; // 1 200 000
    let packets = SENT.0 + RECEIVED.0; // 1800
    vec![
        ("bytes", "rx", rx_bytes, 2),     // 1.2 MB × 2 = 2.4 -> 2
        ("bytes", "tx", tx_bytes, 4),     // 1.2 MB × 3 = 3.6 -> 4
        ("packets", "both", packets, 18), // 1800 / 100
        ("time", "", 1800, 12),           // 0.5 h × 25 = 12.5 -> 12 (half to even)
        ("fixed", "", 1, 990),
    ]
}

#[test]
fn import_close_export_rerate() {
    let lab = Lab::new();
    let cfg = lab.config("billing.db", "ctl.sock");
    let file = lab.write("records.jsonl", &records());
    let out = ok(&tollgate(
        &["billing", "--config", s(&cfg), "import", s(&file)],
        &[],
    ));
    assert!(out.contains("2 records stored, 0 already there"), "{out}");
    // Importing again stores nothing new.
    let out = ok(&tollgate(
        &["billing", "--config", s(&cfg), "import", s(&file)],
        &[],
    ));
    assert!(out.contains("0 records stored, 2 already there"), "{out}");

    let out = ok(&tollgate(
        &["billing", "--config", s(&cfg), "close-period", "2024-05"],
        &[],
    ));
    assert!(out.contains("2024-05 closed: 1 invoices"), "{out}");

    // The offline invoice works from the database alone.
    let db = lab.path("billing.db");
    let json = ok(&tollgate(
        &[
            "billing",
            "invoice",
            "family",
            "2024-05",
            "--format",
            "json",
            "--db",
            s(&db),
        ],
        &[],
    ));
    let v: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["provisional"], false);
    let inv = &v["invoice"];
    let ann: Vec<(&str, &str, u64, i64)> = inv["lines"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["user"] == "ann")
        .map(|l| {
            (
                l["kind"].as_str().unwrap(),
                l["detail"].as_str().unwrap(),
                l["quantity"].as_u64().unwrap(),
                l["amount"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(ann, expected_ann());
    let ann_total: i64 = expected_ann().iter().map(|l| l.3).sum();
    // ann, ben and cat pay the monthly fee; the family pays the contract.
    assert_eq!(inv["total"], ann_total + 990 + 990 + 450);

    let csv = ok(&tollgate(
        &[
            "billing",
            "invoice",
            "family",
            "2024-05",
            "--format",
            "csv",
            "--db",
            s(&db),
        ],
        &[],
    ));
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("period,account,user,kind,detail,band,quantity,unit,price,per,amount,currency")
    );
    assert!(
        csv.contains("2024-05,family,ann,bytes,tx,,1200000,byte,3,1000000,4,EUR\n"),
        "{csv}"
    );
    assert!(
        csv.contains("2024-05,family,ann,time,,day,1800,s,25,3600,12,EUR\n"),
        "{csv}"
    );
    assert!(
        csv.contains("2024-05,family,,contract,family-vpn,,1,period,450,1,450,EUR\n"),
        "{csv}"
    );
    assert!(
        csv.ends_with(&format!(
            "2024-05,family,,total,,,,,,,{},EUR\n",
            ann_total + 2430
        )),
        "{csv}"
    );

    let table = ok(&tollgate(
        &["billing", "invoice", "family", "2024-05", "--db", s(&db)],
        &[],
    ));
    assert!(
        table.contains("The Smiths") && table.contains("TOTAL"),
        "{table}"
    );

    let out = ok(&tollgate(
        &["billing", "rerate", "2024-05", "--db", s(&db)],
        &[],
    ));
    assert!(out.contains("identical, byte for byte"), "{out}");
    let out = ok(&tollgate(&["billing", "status", "--db", s(&db)], &[]));
    assert!(out.contains("closed    2024-05"), "{out}");
}

#[test]
fn a_close_killed_mid_transaction_reruns_to_the_same_invoice() {
    let lab = Lab::new();
    let file = lab.write("records.jsonl", &records());
    let reference = lab.config("ref.db", "a.sock");
    ok(&tollgate(
        &["billing", "-c", s(&reference), "import", s(&file)],
        &[],
    ));
    ok(&tollgate(
        &["billing", "-c", s(&reference), "close-period", "2024-05"],
        &[],
    ));
    let want = ok(&tollgate(
        &[
            "billing",
            "-c",
            s(&reference),
            "invoices",
            "2024-05",
            "--format",
            "json",
        ],
        &[],
    ));

    let cfg = lab.config("crash.db", "b.sock");
    ok(&tollgate(
        &["billing", "-c", s(&cfg), "import", s(&file)],
        &[],
    ));
    for step in ["plan-stored", "rated", "invoices-written", "before-commit"] {
        let o = tollgate(
            &["billing", "-c", s(&cfg), "close-period", "2024-05"],
            &[("TOLLGATE_BILLING_ABORT_AT", step)],
        );
        assert!(!o.status.success(), "{step}: the close should have died");
        let st = ok(&tollgate(&["billing", "-c", s(&cfg), "status"], &[]));
        assert!(!st.contains("closed"), "{step}: {st}");
    }
    let out = ok(&tollgate(
        &["billing", "-c", s(&cfg), "close-period", "2024-05"],
        &[],
    ));
    assert!(out.contains("closed: 1 invoices"), "{out}");
    let got = ok(&tollgate(
        &[
            "billing",
            "-c",
            s(&cfg),
            "invoices",
            "2024-05",
            "--format",
            "json",
        ],
        &[],
    ));
    assert_eq!(got, want);
}

#[test]
fn bad_records_and_bad_tariffs_say_where() {
    let lab = Lab::new();
    let cfg = lab.config("bad.db", "c.sock");
    let file = lab.write(
        "bad.jsonl",
        "{\"type\":\"service\",\"id\":\"v1\",\"account\":\"family\",\"contract\":\"family-vpn\",\"at\":0,\"quantity\":1}\n\
         {\"type\":\"session\",\"id\":\"x\",\"user\":\"ann\",\"session\":\"1\",\"start\":10,\"stop\":5,\"tx_packets\":0,\"tx_bytes\":0,\"rx_packets\":0,\"rx_bytes\":0}\n",
    );
    let o = tollgate(&["billing", "-c", s(&cfg), "import", s(&file)], &[]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("bad.jsonl: line 2") && err.contains("before `start`"),
        "{err}"
    );
    // Nothing of the file was stored.
    let st = ok(&tollgate(&["billing", "-c", s(&cfg), "status"], &[]));
    assert!(!st.contains("records"), "{st}");

    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        "kind = \"time\"\nband = \"day\"",
        "kind = \"time\"\nband = \"dusk\"",
    );
    let bad_cfg = lab.write("badcfg.toml", &text);
    let o = tollgate(&["check-config", s(&bad_cfg)], &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("key `rating.tariff[0].rate[3].band`") && err.contains("\"dusk\""),
        "{err}"
    );
    assert!(err.contains(": line "), "{err}");

    let o = tollgate(&["billing", "-c", s(&cfg), "close-period", "2999-01"], &[]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot be closed before"));
}

struct Daemon {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<anyhow::Result<()>>>,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn start_daemon(cfg_path: &Path, socket: &Path) -> Daemon {
    let cfg = Config::load(cfg_path).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let s2 = stop.clone();
    let thread = std::thread::spawn(move || engine::run_until(&cfg, "rating.toml", s2));
    let deadline = Instant::now() + Duration::from_secs(10);
    while UnixStream::connect(socket).is_err() {
        assert!(Instant::now() < deadline, "daemon did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    Daemon {
        stop,
        thread: Some(thread),
    }
}

#[test]
fn the_daemon_answers_billing_commands() {
    let lab = Lab::new();
    let cfg = lab.config("daemon.db", "ctl.sock");
    let socket = lab.path("ctl.sock");
    let file = lab.write("records.jsonl", &records());
    let d = start_daemon(&cfg, &socket);
    let ctl = |args: &[&str]| {
        let mut a = vec!["ctl", "--socket", s(&socket)];
        a.extend_from_slice(args);
        tollgate(&a, &[])
    };
    let out = ok(&ctl(&["billing", "import", s(&file)]));
    assert!(out.contains("2 records stored"), "{out}");
    let out = ok(&ctl(&["billing", "close-period", "2024-05"]));
    assert!(out.contains("closed_now") && out.contains("true"), "{out}");
    let out = ok(&ctl(&["show", "invoice", "family", "2024-05"]));
    assert!(out.contains("ann") && out.contains("TOTAL"), "{out}");
    assert!(!out.contains("PROVISIONAL"), "{out}");
    let v: Value = serde_json::from_str(&ok(&ctl(&[
        "--json", "show", "invoice", "family", "2024-05",
    ])))
    .unwrap();
    let ann_total: i64 = expected_ann().iter().map(|l| l.3).sum();
    assert_eq!(v["invoice"]["total"], ann_total + 2430);
    let csv = ok(&ctl(&[
        "billing", "invoice", "family", "2024-05", "--format", "csv",
    ]));
    assert!(
        csv.contains("2024-05,family,ann,packets,both,,1800,packet,1,100,18,EUR"),
        "{csv}"
    );
    let out = ok(&ctl(&["billing", "rerate", "2024-05"]));
    assert!(out.contains("identical") && out.contains("true"), "{out}");
    // The current period is open: a provisional invoice.
    let out = ok(&ctl(&["billing", "invoice", "family"]));
    assert!(out.contains("PROVISIONAL"), "{out}");
    let o = ctl(&["billing", "invoice", "nobody", "2024-05"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("no invoice for account \"nobody\""));
    let help = ok(&ctl(&["help"]));
    assert!(help.contains("billing close-period"), "{help}");
    drop(d);
}

/// `n` session records of ann, each about 250 bytes: 601 of them take several
/// control requests.
fn many_records(n: usize) -> String {
    (0..n)
        .map(|i| {
            format!(
                "{{\"type\":\"session\",\"id\":\"bulk/{i:05}\",\"user\":\"ann\",\"session\":\"{i}\",\"start\":1715000000,\"stop\":1715000600,\"tx_packets\":{i},\"tx_bytes\":{},\"rx_packets\":1,\"rx_bytes\":1,\"cause\":\"user-request\"}}\n",
                i * 100
            )
        })
        .collect()
}

fn stored_sessions(ctl_status: &str) -> i64 {
    let v: Value = serde_json::from_str(ctl_status).unwrap();
    v["records"]["session"].as_i64().unwrap_or(0)
}

/// A file whose last record conflicts with one stored before (same id, other content)
/// stores nothing, offline and through the daemon, however many requests it takes.
#[test]
fn an_import_with_a_conflict_in_its_last_record_stores_nothing() {
    let lab = Lab::new();
    let cfg = lab.config("all-or-none.db", "ctl.sock");
    let socket = lab.path("ctl.sock");
    let first = lab.write("first.jsonl", &many_records(1));
    // 600 new records, then bulk/00000 again with other counters.
    let mut text = many_records(601)
        .lines()
        .skip(1)
        .map(|l| format!("{l}\n"))
        .collect::<String>();
    text.push_str(&many_records(1).replace("\"tx_packets\":0", "\"tx_packets\":7"));
    let file = lab.write("conflict.jsonl", &text);
    assert_eq!(text.lines().count(), 601);
    assert!(
        text.len() > 2 * 48 * 1024,
        "{} bytes: three requests",
        text.len()
    );

    ok(&tollgate(
        &["billing", "-c", s(&cfg), "import", s(&first)],
        &[],
    ));
    let o = tollgate(&["billing", "-c", s(&cfg), "import", s(&file)], &[]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("bulk/00000") && err.contains("different content"),
        "{err}"
    );
    let d = start_daemon(&cfg, &socket);
    let ctl = |args: &[&str]| {
        let mut a = vec!["ctl", "--socket", s(&socket)];
        a.extend_from_slice(args);
        tollgate(&a, &[])
    };
    let o = ctl(&["billing", "import", s(&file)]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("different content"), "{err}");
    assert!(err.contains("nothing of import"), "{err}");
    let v = ok(&ctl(&["--json", "billing", "status"]));
    assert_eq!(
        stored_sessions(&v),
        1,
        "only the first file's record, after the offline and the ctl import: {v}"
    );
    // Without the conflict the same file goes in whole, in several parts.
    let good = lab.write(
        "good.jsonl",
        &text.replace(
            "\"id\":\"bulk/00000\",\"user\":\"ann\",\"session\":\"0\"",
            "\"id\":\"bulk/99999\",\"user\":\"ann\",\"session\":\"0\"",
        ),
    );
    let out = ok(&ctl(&["billing", "import", s(&good)]));
    assert!(out.contains("601 records stored, 0 already there"), "{out}");
    let v = ok(&ctl(&["--json", "billing", "status"]));
    assert_eq!(stored_sessions(&v), 602, "{v}");
    drop(d);
}
