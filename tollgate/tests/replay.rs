//! The replay golden test: a scripted capture (ARP, forwarding both ways, a next hop
//! resolved mid-stream, one that never answers, the gateway's own ICMP, damaged frames)
//! replayed through the pipeline; the outputs are checked frame by frame against what
//! the scenario must produce, and byte for byte against the committed golden captures.
//!
//! The inputs are the bundled sample in `config/samples/`. `UPDATE_GOLDEN=1 cargo test
//! -p tollgate-control --test replay` rewrites inputs and goldens after a deliberate
//! change.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tollgate_control::config::Config;
use tollgate_control::replay::{ReplayFiles, replay};
use tollgate_dataplane::port::pcap::{read_all, write_all};
use tollgate_dataplane::time::Instant;
use tollgate_dataplane::{DropReason, MacAddr, Side};
use tollgate_testkit::frame::{ArpOperation, arp, echo, tcp_syn, tcp_syn_ack, time_exceeded, udp};
use tollgate_testkit::lab::*;

fn at(ms: u64) -> Instant {
    Instant(1_700_000_000_000_000_000 + ms * 1_000_000)
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A capture: frames with their timestamps.
type Capture = Vec<(Instant, Vec<u8>)>;

fn inputs() -> (Capture, Capture) {
    let mut bad_csum = udp(SUB_MAC, ACC_MAC, SUB, SRV, 64, b"bad");
    bad_csum[24] ^= 0x55;
    let mut ipv6 = udp(SUB_MAC, ACC_MAC, SUB, SRV, 64, b"v6");
    ipv6[12..14].copy_from_slice(&[0x86, 0xdd]);
    let access = vec![
        (
            at(0),
            arp(
                ArpOperation::REQUEST,
                SUB_MAC,
                MacAddr::BROADCAST,
                SUB_MAC,
                SUB,
                MacAddr::ZERO,
                GW_ACC,
            ),
        ),
        (
            at(1),
            udp(
                SUB_MAC,
                ACC_MAC,
                SUB,
                SRV,
                64,
                b"first, held until the server resolves",
            ),
        ),
        (at(10), tcp_syn(SUB_MAC, ACC_MAC, SUB, SRV, 64)),
        (
            at(20),
            echo(SUB_MAC, ACC_MAC, SUB, GW_ACC, 64, false, b"abcdefgh"),
        ),
        (at(30), udp(SUB_MAC, ACC_MAC, SUB, SRV, 1, b"ttl one")),
        (
            at(40),
            udp(
                SUB_MAC,
                ACC_MAC,
                SUB,
                FAR,
                64,
                b"to a router that never answers",
            ),
        ),
        (at(50), ipv6),
        (at(60), bad_csum),
        (at(5000), vec![0u8; 10]),
    ];
    let core = vec![
        (
            at(5),
            arp(
                ArpOperation::REPLY,
                SRV_MAC,
                CORE_MAC,
                SRV_MAC,
                SRV,
                CORE_MAC,
                GW_CORE,
            ),
        ),
        (at(11), tcp_syn_ack(SRV_MAC, CORE_MAC, SRV, SUB, 64)),
    ];
    (access, core)
}

/// What the scenario must send, derived from the rules rather than from a previous run.
fn expected() -> (Capture, Capture) {
    let arp_req = |tpa| {
        arp(
            ArpOperation::REQUEST,
            CORE_MAC,
            MacAddr::BROADCAST,
            CORE_MAC,
            GW_CORE,
            MacAddr::ZERO,
            tpa,
        )
    };
    let access = vec![
        (
            at(0),
            arp(
                ArpOperation::REPLY,
                ACC_MAC,
                SUB_MAC,
                ACC_MAC,
                GW_ACC,
                SUB_MAC,
                SUB,
            ),
        ),
        (at(11), tcp_syn_ack(ACC_MAC, SUB_MAC, SRV, SUB, 63)),
        (
            at(20),
            echo(ACC_MAC, SUB_MAC, GW_ACC, SUB, 64, true, b"abcdefgh"),
        ),
        (
            at(30),
            time_exceeded(
                ACC_MAC,
                SUB_MAC,
                GW_ACC,
                &udp(SUB_MAC, ACC_MAC, SUB, SRV, 1, b"ttl one"),
            ),
        ),
    ];
    let core = vec![
        (at(1), arp_req(SRV)),
        (
            at(5),
            udp(
                CORE_MAC,
                SRV_MAC,
                SUB,
                SRV,
                63,
                b"first, held until the server resolves",
            ),
        ),
        (at(10), tcp_syn(CORE_MAC, SRV_MAC, SUB, SRV, 63)),
        (at(40), arp_req(RTR)),
        (at(1040), arp_req(RTR)),
        (at(2040), arp_req(RTR)),
    ];
    (access, core)
}

fn update() -> bool {
    std::env::var("UPDATE_GOLDEN").is_ok_and(|v| v == "1")
}

fn check_or_write(path: &Path, frames: &[(Instant, Vec<u8>)]) {
    if update() {
        write_all(path, frames).unwrap();
    }
    let on_disk = read_all(path).unwrap_or_else(|e| panic!("{e} (UPDATE_GOLDEN=1 writes it)"));
    assert_eq!(
        on_disk,
        frames,
        "{} differs from the scenario",
        path.display()
    );
}

fn sample_files(out: &Path) -> ReplayFiles {
    let samples = root().join("config/samples");
    ReplayFiles {
        access_in: samples.join("access-in.pcap"),
        core_in: Some(samples.join("core-in.pcap")),
        access_out: out.join("access-out.pcap"),
        core_out: out.join("core-out.pcap"),
        flow_records: None,
        session_log: None,
    }
}

#[test]
fn sample_replay_matches_scenario_and_golden() {
    let samples = root().join("config/samples");
    let (acc_in, core_in) = inputs();
    check_or_write(&samples.join("access-in.pcap"), &acc_in);
    check_or_write(&samples.join("core-in.pcap"), &core_in);

    let cfg = Config::load(&samples.join("replay.toml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let files = sample_files(dir.path());
    let s = replay(&cfg, &files, Duration::ZERO).unwrap();

    let acc_out = read_all(&files.access_out).unwrap();
    let core_out = read_all(&files.core_out).unwrap();
    let (exp_acc, exp_core) = expected();
    assert_eq!(acc_out, exp_acc, "access side output");
    assert_eq!(core_out, exp_core, "core side output");

    let golden = root().join("tollgate/tests/golden");
    for name in ["access-out.pcap", "core-out.pcap"] {
        let got = std::fs::read(dir.path().join(name)).unwrap();
        if update() {
            std::fs::write(golden.join(name), &got).unwrap();
        }
        let want = std::fs::read(golden.join(name)).unwrap();
        assert!(
            got == want,
            "{name} differs from the golden file byte for byte"
        );
    }

    let c = &s.report.counters;
    assert_eq!(c.sides[Side::Access.idx()].rx_packets, 9);
    assert_eq!(c.sides[Side::Core.idx()].rx_packets, 2);
    assert_eq!(c.sides[Side::Access.idx()].tx_packets, 4);
    assert_eq!(c.sides[Side::Core.idx()].tx_packets, 6);
    assert_eq!(
        (c.forwarded, c.replied, c.punted, c.punt_copies),
        (2, 3, 1, 1)
    );
    assert_eq!(
        (c.held, c.released, c.injected, c.icmp_errors),
        (2, 1, 4, 1)
    );
    assert_eq!(c.dropped(DropReason::TtlExpired), 1);
    assert_eq!(c.dropped(DropReason::NeighborUnresolved), 1);
    assert_eq!(c.dropped(DropReason::UnsupportedEthertype), 1);
    assert_eq!(c.dropped(DropReason::Ipv4BadChecksum), 1);
    assert_eq!(c.dropped(DropReason::EthTooShort), 1);
    assert_eq!(c.total_drops(), 5);
    assert_eq!(c.balance(0).0, c.balance(0).1);
    assert_eq!(s.written, [4, 6]);

    // The control plane learned the subscriber (from its request) and the server (from
    // its reply); the router failed.
    let n = &s.neighbors;
    let state = |ip: &str| n.iter().find(|e| e.address == ip).map(|e| e.state.clone());
    assert_eq!(state("10.10.0.11").as_deref(), Some("reachable"));
    assert_eq!(state("192.0.2.10").as_deref(), Some("reachable"));
    assert_eq!(state("192.0.2.254").as_deref(), Some("failed"));
}

#[test]
fn replay_is_deterministic() {
    let cfg = Config::load(&root().join("config/samples/replay.toml")).unwrap();
    let run = || {
        let dir = tempfile::tempdir().unwrap();
        let files = sample_files(dir.path());
        replay(&cfg, &files, Duration::ZERO).unwrap();
        (
            std::fs::read(&files.access_out).unwrap(),
            std::fs::read(&files.core_out).unwrap(),
        )
    };
    assert_eq!(run(), run());
}

#[test]
fn linger_lets_timers_fire_after_the_last_frame() {
    // Only the frame to the silent router: without linger the replay stops at once.
    let dir = tempfile::tempdir().unwrap();
    let inp = dir.path().join("in.pcap");
    write_all(&inp, &[(at(0), udp(SUB_MAC, ACC_MAC, SUB, FAR, 64, b"x"))]).unwrap();
    let cfg = Config::load(&root().join("config/samples/replay.toml")).unwrap();
    let files = ReplayFiles {
        access_in: inp,
        core_in: None,
        access_out: dir.path().join("a.pcap"),
        core_out: dir.path().join("c.pcap"),
        flow_records: None,
        session_log: None,
    };
    let s = replay(&cfg, &files, Duration::ZERO).unwrap();
    assert_eq!(s.written[1], 1, "one ARP request");
    assert_eq!(
        s.report.counters.dropped(DropReason::Shutdown),
        1,
        "still held at the end"
    );
    let s = replay(&cfg, &files, Duration::from_secs(5)).unwrap();
    assert_eq!(s.written[1], 3, "three ARP requests");
    assert_eq!(s.report.counters.dropped(DropReason::NeighborUnresolved), 1);
    let times: Vec<_> = read_all(&files.core_out)
        .unwrap()
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    assert_eq!(times, vec![at(0), at(1000), at(2000)]);
}

#[test]
fn cli_prints_counters_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let files = sample_files(dir.path());
    let out = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .arg("replay")
        .arg("--config")
        .arg(root().join("config/samples/replay.toml"))
        .arg("--access-in")
        .arg(&files.access_in)
        .arg("--core-in")
        .arg(files.core_in.as_ref().unwrap())
        .arg("--access-out")
        .arg(&files.access_out)
        .arg("--core-out")
        .arg(&files.core_out)
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["counters"]["sides"]["access"]["rx_packets"], 9);
    assert_eq!(v["counters"]["drops"]["ttl_expired"], 1);
    assert_eq!(v["counters"]["drops_total"], 5);
    assert_eq!(v["replay"]["written"]["core"], 6);

    let human = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["replay", "--config"])
        .arg(root().join("config/samples/replay.toml"))
        .arg("--access-in")
        .arg(&files.access_in)
        .arg("--access-out")
        .arg(&files.access_out)
        .arg("--core-out")
        .arg(&files.core_out)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(human.status.success());
    assert!(
        text.contains("DROP REASON") && text.contains("ipv4_bad_checksum"),
        "{text}"
    );
}

#[test]
fn cli_reports_a_bad_capture() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.pcap");
    std::fs::write(&junk, "nope").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["replay", "--config"])
        .arg(root().join("config/samples/replay.toml"))
        .arg("--access-in")
        .arg(&junk)
        .arg("--access-out")
        .arg(dir.path().join("a"))
        .arg("--core-out")
        .arg(dir.path().join("c"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("junk.pcap") && err.contains("not a readable pcap"),
        "{err}"
    );
}
