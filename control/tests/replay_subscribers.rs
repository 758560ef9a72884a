//! A subscriber scenario replayed end to end through the daemon's own code paths: the
//! config file builds the services, the static session and the NAT, the pcap ports carry
//! a subscriber's two web connections and a refused one, and the control thread writes
//! the flow records and the session log. Every frame out is compared with one built by
//! etherparse from the rules, and every record field with what the scenario implies.

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use tollgate_control::config::Config;
use tollgate_control::replay::{ReplayFiles, replay};
use tollgate_dataplane::port::pcap::{read_all, write_all};
use tollgate_dataplane::time::Instant;
use tollgate_dataplane::{DropReason, MacAddr};
use tollgate_testkit::frame::{tcp, udp};
use tollgate_testkit::lab::*;

const VIP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 10);
const WEB: [Ipv4Addr; 2] = [Ipv4Addr::new(192, 0, 2, 21), Ipv4Addr::new(192, 0, 2, 22)];
const WEB_MAC: [MacAddr; 2] = [
    MacAddr([0x02, 0x20, 0, 0, 0, 0x21]),
    MacAddr([0x02, 0x20, 0, 0, 0, 0x22]),
];
const STRANGER: Ipv4Addr = Ipv4Addr::new(10, 10, 0, 99);
const BASE_MS: u64 = 1_700_000_000_000;

fn at(ms: u64) -> Instant {
    Instant((BASE_MS + ms) * 1_000_000)
}

const CONFIG: &str = r#"
[access]
backend = "pcap"
address = "10.10.0.1/24"

[core]
backend = "pcap"
address = "192.0.2.1/24"

[[neighbor]]
address = "192.0.2.21"
mac = "02:20:00:00:00:21"

[[neighbor]]
address = "192.0.2.22"
mac = "02:20:00:00:00:22"

[subscribers]
unknown = "drop"

[nat]
tcp_closing_timeout_s = 2

[[subscriber]]
user = "alice"
address = "10.10.0.11"
mac = "02:10:00:00:00:11"
channel = 77
services = ["web"]
idle_timeout_s = 20

[[service]]
name = "web"
vip = "203.0.113.10"
protocol = "tcp"
port = 80
policy = "round_robin"
[[service.server]]
address = "192.0.2.21"
port = 8080
[[service.server]]
address = "192.0.2.22"
port = 8080

[[service]]
name = "admin"
vip = "203.0.113.10"
protocol = "tcp"
port = 8443
[[service.server]]
address = "192.0.2.10"
port = 8080
"#;

const GET: &[u8] = b"GET /basket HTTP/1.1\r\nHost: shop.example\r\nAccept: */*\r\n\r\n";
const BODY: [u8; 200] = [0x42; 200];

/// What the subscriber and the servers send.
/// A capture: frames with their timestamps.
type Capture = Vec<(Instant, Vec<u8>)>;

fn inputs() -> (Capture, Capture) {
    let g = GET.len() as u32;
    let up = |sp, dp, seq, flags, ack, payload: &[u8]| {
        tcp(
            SUB_MAC, ACC_MAC, SUB, sp, VIP, dp, 64, seq, flags, ack, payload,
        )
    };
    let from_web = |i: usize, nat_port, seq, flags, ack, payload: &[u8]| {
        tcp(
            WEB_MAC[i], CORE_MAC, WEB[i], 8080, GW_CORE, nat_port, 64, seq, flags, ack, payload,
        )
    };
    let access = vec![
        (at(0), up(40001, 80, 100, "S", 0, &[])),
        (at(2), up(40001, 80, 101, "PA", 5001, GET)),
        (at(4), up(40001, 80, 101 + g, "FA", 5201, &[])),
        (at(6), up(40001, 80, 102 + g, "A", 5202, &[])),
        (at(10), up(40002, 80, 900, "S", 0, &[])),
        (at(12), up(40003, 8443, 300, "S", 0, &[])),
        (
            at(14),
            udp(SUB_MAC, ACC_MAC, STRANGER, SRV, 64, b"who am i"),
        ),
    ];
    let core = vec![
        (at(1), from_web(0, 1024, 5000, "SA", 101, &[])),
        (at(3), from_web(0, 1024, 5001, "PA", 101 + g, &BODY)),
        (at(5), from_web(0, 1024, 5201, "FA", 102 + g, &[])),
        (at(11), from_web(1, 1025, 0, "R", 0, &[])),
    ];
    (access, core)
}

/// What must come out: translated both ways, TTL decremented.
fn expected_core_out() -> Vec<Vec<u8>> {
    let g = GET.len() as u32;
    let to_web = |i: usize, nat_port, seq, flags, ack, payload: &[u8]| {
        tcp(
            CORE_MAC, WEB_MAC[i], GW_CORE, nat_port, WEB[i], 8080, 63, seq, flags, ack, payload,
        )
    };
    vec![
        to_web(0, 1024, 100, "S", 0, &[]),
        to_web(0, 1024, 101, "PA", 5001, GET),
        to_web(0, 1024, 101 + g, "FA", 5201, &[]),
        to_web(0, 1024, 102 + g, "A", 5202, &[]),
        to_web(1, 1025, 900, "S", 0, &[]),
    ]
}

fn expected_access_out() -> Vec<Vec<u8>> {
    let g = GET.len() as u32;
    let to_sub = |sp, seq, flags, ack, payload: &[u8]| {
        tcp(
            ACC_MAC, SUB_MAC, VIP, 80, SUB, sp, 63, seq, flags, ack, payload,
        )
    };
    vec![
        to_sub(40001, 5000, "SA", 101, &[]),
        to_sub(40001, 5001, "PA", 101 + g, &BODY),
        to_sub(40001, 5201, "FA", 102 + g, &[]),
        to_sub(40002, 0, "R", 0, &[]),
    ]
}

/// Checks the gateway's reset for the refused SYN field by field, checksums included.
fn check_reset(frame: &[u8]) {
    let p = etherparse::SlicedPacket::from_ethernet(frame).expect("a frame");
    let Some(etherparse::LinkSlice::Ethernet2(eth)) = &p.link else {
        panic!("not Ethernet");
    };
    assert_eq!((eth.source(), eth.destination()), (ACC_MAC.0, SUB_MAC.0));
    let Some(etherparse::NetSlice::Ipv4(ip)) = &p.net else {
        panic!("not IPv4");
    };
    let iph = ip.header().to_header();
    assert_eq!((iph.source, iph.destination), (VIP.octets(), SUB.octets()));
    assert_eq!(iph.header_checksum, iph.calc_header_checksum());
    let Some(etherparse::TransportSlice::Tcp(t)) = &p.transport else {
        panic!("not TCP");
    };
    assert_eq!((t.source_port(), t.destination_port()), (8443, 40003));
    assert!(t.rst() && t.ack() && !t.syn());
    assert_eq!((t.sequence_number(), t.acknowledgment_number()), (0, 301));
    let th = t.to_header();
    assert_eq!(
        th.checksum,
        th.calc_checksum_ipv4(&iph, t.payload()).unwrap(),
        "TCP checksum"
    );
}

fn run(dir: &Path) -> tollgate_control::replay::ReplaySummary {
    let (acc, core) = inputs();
    write_all(&dir.join("acc.pcap"), &acc).unwrap();
    write_all(&dir.join("core.pcap"), &core).unwrap();
    let cfg = Config::parse(CONFIG, "scenario.toml").unwrap();
    let files = ReplayFiles {
        access_in: dir.join("acc.pcap"),
        core_in: Some(dir.join("core.pcap")),
        access_out: dir.join("acc-out.pcap"),
        core_out: dir.join("core-out.pcap"),
        flow_records: Some(dir.join("flows.jsonl")),
        session_log: Some(dir.join("sessions.jsonl")),
    };
    replay(&cfg, &files, Duration::from_secs(30)).unwrap()
}

fn frames(path: &Path) -> Vec<Vec<u8>> {
    read_all(path)
        .unwrap()
        .into_iter()
        .map(|(_, f)| f)
        .collect()
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn ns(ms: u64) -> i64 {
    at(ms).0 as i64
}

fn time(ms: u64) -> String {
    tollgate_control::core::records::rfc3339(ns(ms) as i128)
}

#[test]
fn frames_records_and_session_log_follow_the_rules() {
    let dir = tempfile::tempdir().unwrap();
    let s = run(dir.path());

    assert_eq!(
        frames(&dir.path().join("core-out.pcap")),
        expected_core_out()
    );
    let mut acc = frames(&dir.path().join("acc-out.pcap"));
    // The refused SYN (t=12) is answered between the reset from web 2 (t=11) and the end.
    assert_eq!(acc.len(), 5);
    check_reset(&acc.remove(4));
    assert_eq!(acc, expected_access_out());

    let c = &s.report.counters;
    assert_eq!(c.dropped(DropReason::ServiceRefused), 1);
    assert_eq!(c.dropped(DropReason::UnknownSubscriber), 1);
    assert_eq!(c.tcp_resets, 1);
    assert_eq!((c.flows_opened, c.flows_closed), (2, 2));
    assert_eq!((c.sessions_installed, c.sessions_closed), (1, 1));

    let g = GET.len() as u64;
    let flows = lines(&dir.path().join("flows.jsonl"));
    let session = flows[0]["session"].clone();
    let flow = |port: u16,
                server: &str,
                nat: &str,
                (start, end): (u64, u64),
                up: (u64, u64),
                down: (u64, u64),
                close: &str,
                host: Value| {
        json!({
            "type": "flow", "session": session, "user": "alice", "service": "web",
            "protocol": "tcp", "subscriber": format!("10.10.0.11:{port}"),
            "vip": "203.0.113.10:80", "server": server, "nat": nat,
            "start": time(start),
            "end": time(end),
            "start_ns": ns(start), "end_ns": ns(end),
            "up_packets": up.0, "up_bytes": up.1, "down_packets": down.0, "down_bytes": down.1,
            "close": close, "host": host,
        })
    };
    assert_eq!(
        flows,
        vec![
            // The reset from web 2 ends the second flow at once...
            flow(
                40002,
                "192.0.2.22:8080",
                "192.0.2.1:1025",
                (10, 11),
                (1, 40),
                (1, 40),
                "rst",
                Value::Null
            ),
            // ... the first is kept the closing time (2 s) after its last packet, and
            // ends with that packet.
            flow(
                40001,
                "192.0.2.21:8080",
                "192.0.2.1:1024",
                (0, 6),
                (4, 40 * 3 + 40 + g),
                (3, 40 * 2 + 240),
                "fin",
                json!("shop.example")
            ),
        ]
    );

    // Idle for 20 s after the last packet it exchanged (the reset at t=11; the refused SYN
    // and the stranger are not the session's traffic).
    let sessions = lines(&dir.path().join("sessions.jsonl"));
    assert_eq!(
        sessions,
        vec![json!({
            "type": "session", "session": session, "user": "alice", "channel": 77,
            // The Acct-Session-Id: the start of the run in Unix ms, then a serial.
            "acct_session_id": format!("{BASE_MS:x}-1"),
            "address": "10.10.0.11",
            "start": time(0),
            "stop": time(20_011),
            "start_ns": ns(0), "stop_ns": ns(20_011), "session_time_s": 20,
            "cause": "idle_timeout", "acct_terminate_cause": 4,
            "tx_packets": 5, "tx_bytes": 40 * 4 + 40 + g,
            "rx_packets": 4, "rx_bytes": 40 * 3 + 240,
        })]
    );
    // The summary keeps the same records, in the order they were written.
    assert_eq!(s.records.len(), 3);
    assert_eq!(s.records[2], sessions[0]);
}

#[test]
fn the_same_capture_gives_the_same_records() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    run(a.path());
    run(b.path());
    for f in [
        "flows.jsonl",
        "sessions.jsonl",
        "acc-out.pcap",
        "core-out.pcap",
    ] {
        assert_eq!(
            std::fs::read(a.path().join(f)).unwrap(),
            std::fs::read(b.path().join(f)).unwrap(),
            "{f}"
        );
    }
}

/// DISC-2 with combined conditions: the first condition met ends the session, once,
/// with its cause; the others never fire afterwards.
#[test]
fn combined_conditions_end_a_session_once_by_the_first_met() {
    const SUB2: Ipv4Addr = Ipv4Addr::new(10, 10, 0, 12);
    let sub2_mac = MacAddr([0x02, 0x10, 0, 0, 0, 0x12]);
    let cfg = r#"
[access]
backend = "pcap"
address = "10.10.0.1/24"
[core]
backend = "pcap"
address = "192.0.2.1/24"
[[neighbor]]
address = "192.0.2.10"
mac = "02:20:00:00:00:10"

# Volume (1000 bytes both ways) before its session time (10 s).
[[subscriber]]
user = "vol"
address = "10.10.0.11"
mac = "02:10:00:00:00:11"
session_timeout_s = 10
volume_total_bytes = 1000

# Session time (8 s) before its idle time (5 s, never reached: a packet every 2 s).
[[subscriber]]
user = "time"
address = "10.10.0.12"
mac = "02:10:00:00:00:12"
idle_timeout_s = 5
session_timeout_s = 8
"#;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // 172 bytes of payload: 200 bytes of IPv4.
    let payload = [7u8; 172];
    let mut acc: Capture = (0..6)
        .map(|s| (at(s * 1000), udp(SUB_MAC, ACC_MAC, SUB, SRV, 64, &payload)))
        .collect();
    acc.extend([0, 2, 4, 6, 9].map(|s| {
        (
            at(s * 1000 + 500),
            udp(sub2_mac, ACC_MAC, SUB2, SRV, 64, b"t"),
        )
    }));
    acc.sort_by_key(|(t, _)| *t);
    write_all(&d.join("acc.pcap"), &acc).unwrap();
    let files = ReplayFiles {
        access_in: d.join("acc.pcap"),
        core_in: None,
        access_out: d.join("acc-out.pcap"),
        core_out: d.join("core-out.pcap"),
        flow_records: None,
        session_log: Some(d.join("sessions.jsonl")),
    };
    let s = replay(
        &Config::parse(cfg, "conditions.toml").unwrap(),
        &files,
        Duration::from_secs(30),
    )
    .unwrap();
    let log = lines(&d.join("sessions.jsonl"));
    assert_eq!(log.len(), 2, "one record each: {log:?}");
    let vol = log.iter().find(|r| r["user"] == "vol").unwrap();
    assert_eq!(vol["cause"], "volume_limit");
    assert_eq!(vol["stop_ns"], ns(5000), "at the packet that would go over");
    assert_eq!(
        (&vol["tx_packets"], &vol["tx_bytes"]),
        (&json!(5), &json!(1000)),
        "the limit reached exactly is allowed"
    );
    let time = log.iter().find(|r| r["user"] == "time").unwrap();
    assert_eq!(time["cause"], "session_timeout");
    assert_eq!(time["stop_ns"], ns(8000), "exactly 8 s after the start");
    assert_eq!(time["tx_packets"], 4);
    let c = &s.report.counters;
    assert_eq!(c.dropped(DropReason::SessionLimit), 1);
    assert_eq!(
        c.dropped(DropReason::UnknownSubscriber),
        1,
        "time's packet after its end"
    );
    assert_eq!(c.sessions_closed, 2);
    // The Stops match.
    let stops: Vec<_> = s
        .accounting
        .iter()
        .filter(|r| r.status == tollgate_control::radius::dict::AcctStatusType::Stop)
        .map(|r| (r.user_name.as_str(), r.cause.map(|c| c.name())))
        .collect();
    assert_eq!(
        stops,
        vec![("vol", Some("Volume")), ("time", Some("Session-Time"))]
    );
}

/// Replays `access` (and `core`) through `cfg` with `linger`, records in `d`.
fn replay_in(
    d: &Path,
    cfg: &str,
    access: &Capture,
    core: &Capture,
    linger: Duration,
) -> tollgate_control::replay::ReplaySummary {
    write_all(&d.join("acc.pcap"), access).unwrap();
    write_all(&d.join("core.pcap"), core).unwrap();
    let files = ReplayFiles {
        access_in: d.join("acc.pcap"),
        core_in: Some(d.join("core.pcap")),
        access_out: d.join("acc-out.pcap"),
        core_out: d.join("core-out.pcap"),
        flow_records: Some(d.join("flows.jsonl")),
        session_log: Some(d.join("sessions.jsonl")),
    };
    replay(&Config::parse(cfg, "replay.toml").unwrap(), &files, linger).unwrap()
}

/// Static sessions, however many, are all installed before the capture's first frame is
/// read: 100 subscribers (more than a worker applies commands per poll) each sending at
/// the first instant, the last configured first, all pass.
#[test]
fn static_sessions_are_in_place_before_the_first_frame() {
    const N: u8 = 100;
    let mut cfg = String::from(
        r#"
[access]
backend = "pcap"
address = "10.10.0.1/24"
[core]
backend = "pcap"
address = "192.0.2.1/24"
[[neighbor]]
address = "192.0.2.10"
mac = "02:20:00:00:00:10"
[subscribers]
unknown = "drop"
"#,
    );
    let sub = |i: u8| Ipv4Addr::new(10, 10, 0, 100 + i);
    let mac = |i: u8| MacAddr([0x02, 0x10, 0, 0, 1, i]);
    for i in 0..N {
        cfg.push_str(&format!(
            "[[subscriber]]\nuser = \"sub{i}\"\naddress = \"{}\"\nmac = \"{}\"\n",
            sub(i),
            mac(i)
        ));
    }
    let access: Capture = (0..N)
        .rev()
        .map(|i| (at(0), udp(mac(i), ACC_MAC, sub(i), SRV, 64, &[i; 10])))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let s = replay_in(dir.path(), &cfg, &access, &vec![], Duration::ZERO);
    let c = &s.report.counters;
    assert_eq!(c.dropped(DropReason::UnknownSubscriber), 0);
    let want: Vec<Vec<u8>> = (0..N)
        .rev()
        .map(|i| udp(CORE_MAC, SRV_MAC, sub(i), SRV, 63, &[i; 10]))
        .collect();
    assert_eq!(frames(&dir.path().join("core-out.pcap")), want);
    assert_eq!(c.total_drops(), 0);
    assert_eq!(c.forwarded, N as u64);
    assert_eq!(c.sessions_installed, N as u64);
    let log = lines(&dir.path().join("sessions.jsonl"));
    assert_eq!(log.len(), N as usize, "each ends at the end of the run");
    assert!(
        log.iter()
            .all(|r| r["tx_packets"] == 1 && r["tx_bytes"] == 38 && r["start_ns"] == ns(0)),
        "{log:?}"
    );
}

/// `--linger-ms` runs every timer after the last frame, flow timeouts included: a UDP
/// flow idle for its timeout within the linger closes as `timeout`, ending at its last
/// packet; one whose timeout falls after the linger closes at shutdown.
#[test]
fn linger_runs_flow_timers_as_well_as_session_timers() {
    let cfg = r#"
[access]
backend = "pcap"
address = "10.10.0.1/24"
[core]
backend = "pcap"
address = "192.0.2.1/24"
[[neighbor]]
address = "192.0.2.21"
mac = "02:20:00:00:00:21"
[subscribers]
unknown = "drop"
[nat]
udp_timeout_s = 5
tcp_closing_timeout_s = 2
[[subscriber]]
user = "alice"
address = "10.10.0.11"
mac = "02:10:00:00:00:11"
services = ["dns", "web"]
idle_timeout_s = 60
[[service]]
name = "dns"
vip = "203.0.113.10"
protocol = "udp"
port = 53
[[service.server]]
address = "192.0.2.21"
[[service]]
name = "web"
vip = "203.0.113.10"
protocol = "tcp"
port = 80
[[service.server]]
address = "192.0.2.21"
port = 8080
"#;
    let up_tcp = |seq, flags, ack| {
        tcp(
            SUB_MAC,
            ACC_MAC,
            SUB,
            40001,
            VIP,
            80,
            64,
            seq,
            flags,
            ack,
            &[],
        )
    };
    let from_web = |seq, flags, ack| {
        tcp(
            WEB_MAC[0],
            CORE_MAC,
            WEB[0],
            8080,
            GW_CORE,
            1024,
            64,
            seq,
            flags,
            ack,
            &[],
        )
    };
    let access: Capture = vec![
        (
            at(0),
            udp_ports_(SUB_MAC, ACC_MAC, SUB, 5353, VIP, 53, b"q"),
        ),
        (at(100), up_tcp(1, "S", 0)),
        (at(300), up_tcp(2, "FA", 6)),
        (at(500), up_tcp(3, "A", 7)),
    ];
    let core: Capture = vec![
        (
            at(1000),
            udp_ports_(WEB_MAC[0], CORE_MAC, WEB[0], 53, GW_CORE, 1024, b"a"),
        ),
        (at(200), from_web(5, "SA", 2)),
        (at(400), from_web(6, "FA", 3)),
    ];
    let mut core = core;
    core.sort_by_key(|(t, _)| *t);
    let record = |d: &Path, proto: &str| -> Value {
        lines(&d.join("flows.jsonl"))
            .into_iter()
            .find(|r| r["protocol"] == proto)
            .unwrap_or_else(|| panic!("a {proto} record"))
    };

    // Linger 10 s: the UDP flow times out 5 s after its last packet (t=1 s), the TCP flow
    // 2 s after its FINs; each ends at its last packet.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let s = replay_in(d, cfg, &access, &core, Duration::from_secs(10));
    let udp_rec = record(d, "udp");
    assert_eq!(
        (&udp_rec["close"], &udp_rec["start_ns"], &udp_rec["end_ns"]),
        (&json!("timeout"), &json!(ns(0)), &json!(ns(1000)))
    );
    let tcp_rec = record(d, "tcp");
    assert_eq!(
        (&tcp_rec["close"], &tcp_rec["start_ns"], &tcp_rec["end_ns"]),
        (&json!("fin"), &json!(ns(100)), &json!(ns(500)))
    );
    assert_eq!(
        (
            s.report.counters.flows_opened,
            s.report.counters.flows_closed
        ),
        (2, 2)
    );
    // The session outlives the linger (idle 60 s): it ends when the replay stops, at the
    // last timer that fired within the linger (the UDP flow's, t=6 s).
    let log = lines(&d.join("sessions.jsonl"));
    assert_eq!(log[0]["stop_ns"], ns(6000));
    assert_eq!(log[0]["cause"], "nas_request");

    // Linger 3 s: the TCP flow's closing timer (t=2.5 s) fires within it; the UDP flow's
    // (t=6 s) does not, and it closes when the replay stops, still ending at its last
    // packet.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    replay_in(d, cfg, &access, &core, Duration::from_secs(3));
    let udp_rec = record(d, "udp");
    assert_eq!(
        (&udp_rec["close"], &udp_rec["end_ns"]),
        (&json!("shutdown"), &json!(ns(1000)))
    );
    assert_eq!(record(d, "tcp")["close"], "fin");
}

/// A UDP datagram with explicit ports and TTL 64.
fn udp_ports_(
    src_mac: MacAddr,
    dst_mac: MacAddr,
    src: Ipv4Addr,
    sport: u16,
    dst: Ipv4Addr,
    dport: u16,
    payload: &[u8],
) -> Vec<u8> {
    tollgate_testkit::frame::udp_ports(src_mac, dst_mac, src, sport, dst, dport, 64, payload)
}
