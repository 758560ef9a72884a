//! The spool survives `kill -9`: a child process (this test binary, re-run with
//! `TOLLGATE_SPOOL_CHILD` set) enqueues and acknowledges records and reports each commit
//! on stdout; the parent kills it with SIGKILL at a random moment, 50 times over the same
//! file, and checks that every record reported committed is there exactly once, that
//! every record reported acknowledged is gone, that nothing is half-written, and that
//! recovery closes exactly the sessions left open.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use tollgate_control::spool::{Spool, SpoolOptions};
use tollgate_control_core::radius::attrs::{AcctRecord, Counters};
use tollgate_control_core::radius::dict::{AcctStatusType, DisconnectCause};
use tollgate_dataplane::time::Instant;

const CHILD_ENV: &str = "TOLLGATE_SPOOL_CHILD";

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn record(round: usize, seq: u64, status: AcctStatusType) -> AcctRecord {
    AcctRecord {
        status,
        session_id: format!("r{round}-s{}", seq / 4),
        user_name: format!("user{seq}"),
        framed_ip: None,
        calling_station_id: None,
        class: vec![format!("class-{round}-{seq}").into_bytes()],
        counters: Counters {
            octets_up: seq * 1000,
            octets_down: seq * 2000,
            packets_up: seq,
            packets_down: seq,
        },
        session_time_s: seq as u32,
        cause: (status == AcctStatusType::Stop).then_some(DisconnectCause::Logout),
        event_time: 1_700_000_000 + seq,
        access: None,
        ipv6: None,
        tunnel: None,
    }
}

/// The child: Start, Interim, Interim, Stop per session, acking some, forever.
fn child(db: &Path, round: usize) {
    let mut spool = Spool::open(db, SpoolOptions::default()).expect("open");
    let out = std::io::stdout();
    let mut rng = Rng(SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1);
    let now = Instant::now();
    for seq in 0u64.. {
        let status = match seq % 4 {
            0 => AcctStatusType::Start,
            3 => AcctStatusType::Stop,
            _ => AcctStatusType::InterimUpdate,
        };
        let id = spool
            .enqueue(now, &record(round, seq, status))
            .expect("enqueue");
        writeln!(out.lock(), "COMMITTED {id} {round} {seq}").unwrap();
        if rng.next().is_multiple_of(3)
            && let Some(due) = spool.next_due(now).expect("due")
        {
            writeln!(out.lock(), "ACKING {}", due.id).unwrap();
            spool.ack(now, due.id).expect("ack");
            writeln!(out.lock(), "ACKED {}", due.id).unwrap();
        }
    }
}

#[test]
fn child_entry() {
    // Only does something when run as the child.
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        let (db, round) = spec.rsplit_once('|').unwrap();
        child(Path::new(db), round.parse().unwrap());
    }
}

#[test]
fn kill_dash_nine_loses_nothing() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("spool.db");
    let exe = std::env::current_exe().unwrap();
    let mut rng = Rng(0x9e3779b97f4a7c15);
    // Everything ever reported committed / acked, by spool id: (round, seq).
    let mut committed: BTreeMap<i64, (usize, u64)> = BTreeMap::new();
    let mut acked: BTreeSet<i64> = BTreeSet::new();
    // Acks begun; the kill may have come before or after the delete.
    let mut acking: BTreeSet<i64> = BTreeSet::new();
    for round in 0..50 {
        let mut child = Command::new(&exe)
            .args(["child_entry", "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, format!("{}|{round}", db.display()))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        // Let it commit a random number of records (sometimes none), then SIGKILL it
        // while it keeps writing.
        let target = rng.next() % 40;
        let mut heard = Vec::new();
        while heard.len() < target as usize {
            match lines.next() {
                Some(Ok(l)) if l.contains("COMMITTED") || l.contains("ACK") => heard.push(l),
                Some(Ok(_)) => {}
                _ => break,
            }
        }
        if rng.next().is_multiple_of(2) {
            std::thread::sleep(Duration::from_micros(rng.next() % 3000));
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        // What it reported before dying (including lines still in the pipe).
        for l in heard.into_iter().chain(lines.map_while(Result::ok)) {
            // libtest prints "test child_entry ... " without a newline before the
            // child's first line.
            let from = ["COMMITTED", "ACK"].iter().filter_map(|m| l.find(m)).min();
            let Some(from) = from else { continue };
            let w: Vec<&str> = l[from..].split_whitespace().collect();
            match w.as_slice() {
                ["COMMITTED", id, r, s] => {
                    committed.insert(
                        id.parse().unwrap(),
                        (r.parse().unwrap(), s.parse().unwrap()),
                    );
                }
                ["ACKED", id] => {
                    acked.insert(id.parse().unwrap());
                }
                ["ACKING", id] => {
                    acking.insert(id.parse().unwrap());
                }
                _ => {}
            }
        }
        // The file opens and every row reads back whole.
        let spool = Spool::open(&db, SpoolOptions::default()).expect("reopen after kill -9");
        let records = spool.records().expect("every record reads back");
        let mut ids = BTreeSet::new();
        for (id, rec) in &records {
            assert!(ids.insert(*id), "record {id} twice");
            if let Some((r, s)) = committed.get(id).filter(|(r, _)| *r != usize::MAX) {
                let status = rec.status;
                assert_eq!(rec, &record(*r, *s, status), "record {id} differs");
            }
        }
        for (id, rs) in &committed {
            if acked.contains(id) {
                assert!(!ids.contains(id), "acked record {id} {rs:?} is back");
            } else if acking.contains(id) {
                // Killed during the ack: either way is right.
            } else {
                assert!(ids.contains(id), "committed record {id} {rs:?} is lost");
            }
        }
        // At most the one record being written when the kill came is there unreported.
        let unreported = ids.iter().filter(|i| !committed.contains_key(i)).count();
        assert!(
            unreported <= 1,
            "round {round}: {unreported} unreported records: {:?}; reported {:?}",
            ids.iter()
                .filter(|i| !committed.contains_key(i))
                .collect::<Vec<_>>(),
            committed.keys().rev().take(5).collect::<Vec<_>>()
        );
        let unknown: Vec<i64> = ids
            .iter()
            .filter(|i| !committed.contains_key(i))
            .copied()
            .collect();
        for id in unknown {
            committed.insert(id, (usize::MAX, 0)); // present; content unknown to us
        }
    }
    // Recovery closes exactly the sessions with a Start or Interim and no Stop.
    let mut spool = Spool::open(&db, SpoolOptions::default()).unwrap();
    let open: BTreeSet<String> = spool
        .open_sessions()
        .unwrap()
        .into_iter()
        .map(|o| o.last.session_id)
        .collect();
    let mut expect_open = BTreeSet::new();
    for (r, s) in committed.values().filter(|(r, _)| *r != usize::MAX) {
        let sid = format!("r{r}-s{}", s / 4);
        if s % 4 == 3 {
            expect_open.remove(&sid);
        } else {
            expect_open.insert(sid);
        }
    }
    // An unreported commit may have opened or closed one session per round.
    assert!(
        open.symmetric_difference(&expect_open).count() <= 50,
        "open {open:?} vs {expect_open:?}"
    );
    let stops = spool.recover(Instant::now(), 1_900_000_000).unwrap();
    assert_eq!(stops.len(), open.len());
    assert!(spool.open_sessions().unwrap().is_empty());
    let recs = spool.records().unwrap();
    for id in stops {
        let (_, r) = recs.iter().find(|(i, _)| *i == id).unwrap();
        assert_eq!(r.cause, Some(DisconnectCause::Restart));
        assert_eq!(r.status, AcctStatusType::Stop);
    }
}
