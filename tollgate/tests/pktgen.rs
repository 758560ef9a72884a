//! `tollgate pktgen` against an in-process gateway on memory ports: what the generator
//! counts equals what the gateway counts, frame for frame, both ways; and the shapes of
//! the JSON that `tollgate pktgen` and `tollgate bench` print for scripts.

use std::process::Command;

use clap::Parser;
use serde_json::Value;
use tollgate_control::config::{Config, DEFAULT_CONFIG};
use tollgate_dataplane::port::pcap::read_all;
use tollgate_tools::pktgen::{PktgenArgs, Report, run_memory};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: PktgenArgs,
}

fn args(extra: &[&str]) -> PktgenArgs {
    let mut v = vec!["pktgen"];
    v.extend_from_slice(extra);
    Cli::parse_from(v).args
}

/// The generator's frames per port equal the gateway's per port, and every stamped
/// packet that went through was forwarded (or released after ARP) exactly once.
fn check_counts_match(r: &Report) {
    let gw = r
        .gateway
        .as_ref()
        .expect("memory backend reports the gateway");
    let n = |v: &Value| v.as_u64().unwrap();
    let (acc, core) = (&r.ports[0], &r.ports[1]);
    assert_eq!(
        acc.tx,
        n(&gw["access"]["rx_packets"]),
        "access: sent = gateway rx"
    );
    assert_eq!(
        acc.rx,
        n(&gw["access"]["tx_packets"]),
        "access: received = gateway tx"
    );
    assert_eq!(
        core.tx,
        n(&gw["core"]["rx_packets"]),
        "core: sent = gateway rx"
    );
    assert_eq!(
        core.rx,
        n(&gw["core"]["tx_packets"]),
        "core: received = gateway tx"
    );
    let stamped: u64 = r.received() + r.warmup[0].received + r.warmup[1].received;
    assert_eq!(
        stamped,
        n(&gw["forwarded"]) + n(&gw["released"]),
        "every stamped packet received was forwarded once by the gateway"
    );
    assert_eq!(n(&gw["drops"]), 0);
    assert_eq!(acc.tx_refused + core.tx_refused, 0);
    assert_eq!(acc.rx_unknown + core.rx_unknown, 0);
}

#[test]
fn tcp_mix_counts_match_the_gateway() {
    let cfg = Config::embedded();
    let a = args(&[
        "--count",
        "20000",
        "--subscribers",
        "50",
        "--flows",
        "3",
        "--sizes",
        "64,200,1500",
        "--uplink-share",
        "0.25",
        "--drain-ms",
        "50",
    ]);
    let r = run_memory(&cfg, &a).unwrap();
    assert_eq!(r.flows, 150);
    assert_eq!(r.flows_learned, 150, "every flow learned in the warm-up");
    assert_eq!(r.sent(), 20_000);
    assert_eq!(r.lost(), 0);
    assert_eq!(r.dirs[0].sent, 5_000, "a quarter uplink");
    assert_eq!(r.dirs[1].sent, 15_000);
    assert_eq!(r.latency.len(), 20_000);
    let gw = r.gateway.as_ref().unwrap();
    assert_eq!(gw["flows_opened"], 150);
    // Sizes cycle per packet; 64 is raised to 70, the TCP headers and the stamp.
    let bytes = r.dirs[0].sent_bytes + r.dirs[1].sent_bytes;
    assert_eq!(bytes, 6_666 * (70 + 200 + 1500) + 70 + 200);
    check_counts_match(&r);
}

#[test]
fn udp_to_a_udp_service_counts_match() {
    let src = DEFAULT_CONFIG.replace(
        "[[service]]\nname = \"web\"",
        "[[service]]\nname = \"dns\"\nvip = \"203.0.113.20\"\nprotocol = \"udp\"\nport = 53\n\
         policy = \"round_robin\"\nsession_type = \"connection\"\n[[service.server]]\n\
         address = \"192.0.2.31\"\n\n[[service]]\nname = \"web\"",
    );
    assert_ne!(src, DEFAULT_CONFIG, "the service was added");
    let cfg = Config::parse(&src, "test").unwrap();
    let a = args(&[
        "--protocol",
        "udp",
        "--target",
        "203.0.113.20:53",
        "--count",
        "5000",
        "--subscribers",
        "20",
        "--flows",
        "2",
        "--drain-ms",
        "50",
    ]);
    let r = run_memory(&cfg, &a).unwrap();
    assert_eq!((r.flows, r.flows_learned), (40, 40));
    assert_eq!((r.sent(), r.lost()), (5_000, 0));
    check_counts_match(&r);
}

#[test]
fn subscribers_outside_the_access_subnet_are_refused() {
    // The embedded access subnet is 10.10.0.0/24: from .100, the 156th subscriber would
    // be the broadcast address and the gateway could not route its answers back.
    let a = args(&["--subscribers", "156", "--count", "100"]);
    let e = run_memory(&Config::embedded(), &a).unwrap_err().to_string();
    assert!(
        e.contains("subscriber 156 (10.10.0.255)") && e.contains("10.10.0.1/24"),
        "{e}"
    );
    let a = args(&["--subscribers", "155", "--count", "620", "--drain-ms", "20"]);
    let r = run_memory(&Config::embedded(), &a).unwrap();
    assert_eq!(r.lost(), 0);
    let gw = r.gateway.as_ref().unwrap();
    assert_eq!(gw["drops"], 0, "{gw}");
    assert_eq!(gw["drops_by_reason"], serde_json::json!({}));
}

#[test]
fn without_sessions_nothing_gets_through() {
    // The embedded config drops traffic from unknown subscribers: the generator sees
    // all of it lost, and no flow learned.
    let a = args(&["--no-sessions", "--count", "1000", "--drain-ms", "20"]);
    let r = run_memory(&Config::embedded(), &a).unwrap();
    assert_eq!(r.flows_learned, 0);
    assert_eq!(r.received(), 0);
    assert_eq!(r.down_unready, 500, "half the mix could not go down");
    assert!(r.gateway.as_ref().unwrap()["drops"].as_u64().unwrap() > 0);
}

/// Runs `tollgate ...`, which must succeed, and parses what it printed as JSON.
fn json_of(cmd: &mut Command) -> Value {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn pcap_backend_writes_the_uplink_mix() {
    let dir = tempfile::tempdir().unwrap();
    let (up, down) = (dir.path().join("up.pcap"), dir.path().join("down.pcap"));
    let v = json_of(
        Command::new(env!("CARGO_BIN_EXE_tollgate"))
            .args([
                "pktgen",
                "--backend",
                "pcap",
                "--count",
                "100",
                "--subscribers",
                "5",
            ])
            .args([
                "--flows",
                "2",
                "--uplink-share",
                "1",
                "--drain-ms",
                "1",
                "--json",
            ])
            .arg("--access-out")
            .arg(&up)
            .arg("--core-out")
            .arg(&down),
    );
    assert_eq!(v["sent"], 100);
    // Three warm-up rounds of 10 SYNs (nothing answers), then the measured 100.
    assert_eq!(read_all(&up).unwrap().len(), 130);
    assert!(read_all(&down).unwrap().is_empty());
}

#[test]
fn pktgen_json_shape() {
    let v = json_of(Command::new(env!("CARGO_BIN_EXE_tollgate")).args([
        "pktgen",
        "--count",
        "2000",
        "--drain-ms",
        "20",
        "--json",
    ]));
    for k in ["sent", "received", "lost", "tx_mpps", "rx_mpps", "seconds"] {
        assert!(v[k].is_number(), "{k}: {v}");
    }
    for k in ["p50", "p90", "p99", "p999", "max", "samples"] {
        assert!(v["latency_us"][k].is_number(), "latency {k}");
    }
    for d in ["uplink", "downlink"] {
        for k in ["sent", "received", "lost", "sent_bytes"] {
            assert!(v[d][k].is_u64(), "{d}.{k}");
        }
    }
    assert_eq!(v["sent"], 2000);
    assert_eq!(v["lost"], 0);
    assert!(v["gateway"]["forwarded"].is_u64());
}

#[test]
fn bench_json_shape() {
    let v = json_of(
        Command::new(env!("CARGO_BIN_EXE_tollgate"))
            .args([
                "bench",
                "--flows",
                "1k,2k",
                "--seconds",
                "0.02",
                "--runs",
                "1",
            ])
            .arg("--json"),
    );
    assert_eq!(v["packet_bytes"], 64);
    assert_eq!(v["burst"], 32);
    assert!(v["machine"]["cpus"].as_u64().unwrap() >= 1);
    let rows = v["results"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    for (r, flows) in rows.iter().zip([1000, 2000]) {
        assert_eq!(r["flows"], flows);
        assert_eq!(r["sessions"], flows);
        assert_eq!(r["drops"], 0);
        for k in [
            "mpps",
            "ns_per_packet",
            "io_only_ns_per_packet",
            "vs_io_only",
            "bytes_per_session",
            "bytes_per_flow",
            "rss_mib",
            "setup_s",
        ] {
            assert!(r[k].as_f64().is_some_and(|x| x > 0.0), "{k}: {r}");
        }
        assert!(r["bytes_per_session"].as_f64().unwrap() <= 256.0 + 64.0);
    }
}

/// The PPPoE checks every run must pass: each session came up, its traffic came back
/// packet for packet both ways, it ended with Terminate-Ack and PADT, and the gateway
/// holds none of them at the end (only the embedded config's two static subscribers)
/// and accounted a Stop for each PPP session's Start.
fn check_pppoe(r: &Report, subscribers: u32) {
    let p = r.pppoe.as_ref().expect("a PPPoE report");
    assert_eq!(p.subscribers, subscribers);
    assert_eq!(p.up, subscribers, "every session came up: {p:?}");
    assert!(p.failed.is_empty(), "{:?}", p.failed);
    assert_eq!(p.sessions_exact, subscribers, "{:?}", p.sessions_with_loss);
    assert!(p.sessions_with_loss.is_empty());
    assert_eq!(p.ended, subscribers, "every session ended");
    assert_eq!(p.padt_sent + p.padt_received, subscribers);
    assert_eq!(r.flows, (subscribers * 2) as usize);
    assert_eq!(r.flows_learned, r.flows);
    assert_eq!(r.lost(), 0);
    let gw = r.gateway.as_ref().unwrap();
    let statics = 2;
    assert_eq!(gw["sessions_open"], statics, "{gw}");
    assert_eq!(gw["accounting"]["starts"], subscribers + statics, "{gw}");
    assert_eq!(gw["accounting"]["stops"], subscribers, "{gw}");
    assert_eq!(gw["accounting"]["stops_at_gateway_stop"], statics, "{gw}");
    assert_eq!(gw["logins"]["accepted"], subscribers);
    assert_eq!(gw["logins"]["refused"], 0);
    let c = &gw["pppoe"];
    assert_eq!(c["ppp_sessions_installed"], subscribers, "{c}");
    assert_eq!(c["pppoe_padi"], subscribers, "one PADI each: {c}");
    assert_eq!(c["pppoe_padt_received"], p.padt_sent, "{c}");
    assert_eq!(c["ppp_ended_peer_terminated"], subscribers, "{c}");
    assert!(
        c.get("ppp_sessions_open").is_none(),
        "no PPP session left: {c}"
    );
    assert_eq!(gw["drops"], 0, "{gw}");
    // The gateway's ports counted what the generator's did (control frames included).
    let n = |v: &Value| v.as_u64().unwrap();
    assert_eq!(r.ports[0].tx, n(&gw["access"]["rx_packets"]));
    assert_eq!(r.ports[0].rx, n(&gw["access"]["tx_packets"]));
    assert_eq!(r.ports[0].rx_unknown + r.ports[1].rx_unknown, 0);
}

#[test]
fn pppoe_chap_subscribers_over_qinq_come_up_forward_exactly_and_end() {
    let a = args(&[
        "--pppoe",
        // No retransmission even when the machine stalls the test for seconds: the
        // counts below are exact.
        "--pppoe-retry-ms",
        "30000",
        "--auth",
        "chap",
        "--subscribers",
        "50",
        "--svlan",
        "100-101",
        "--cvlan",
        "1-30",
        "--flows",
        "2",
        "--protocol",
        "udp",
        "--target",
        "192.0.2.21:8080",
        "--count",
        "4000",
        "--sizes",
        "64,1506",
        "--drain-ms",
        "50",
    ]);
    let cfg = tollgate_tools::pktgen::pppoe_config(tollgate_tools::pktgen::PppAuth::Chap).unwrap();
    let r = run_memory(&cfg, &a).unwrap();
    check_pppoe(&r, 50);
    assert_eq!((r.sent(), r.received()), (4000, 4000));
    let p = r.pppoe.as_ref().unwrap();
    assert_eq!(p.retransmits, 0, "nothing was lost in memory");
    // 1:1 QinQ: the 50 lines are S-VLAN 100 C-VLAN 1..30, then S-VLAN 101 C-VLAN 1..20,
    // each its own (port, S-VLAN, C-VLAN) at the gateway.
    let gw = r.gateway.as_ref().unwrap();
    assert_eq!(gw["pppoe"]["pppoe_pads"], 50);
}

#[test]
fn pppoe_pap_subscribers_come_up_through_the_argon2_hash() {
    let a = args(&[
        "--pppoe",
        // No retransmission even when the machine stalls the test for seconds: the
        // counts below are exact.
        "--pppoe-retry-ms",
        "30000",
        "--auth",
        "pap",
        "--subscribers",
        "4",
        "--svlan",
        "200",
        "--cvlan",
        "10-13",
        "--flows",
        "2",
        "--count",
        "400",
        "--drain-ms",
        "50",
    ]);
    let cfg = tollgate_tools::pktgen::pppoe_config(tollgate_tools::pktgen::PppAuth::Pap).unwrap();
    let r = run_memory(&cfg, &a).unwrap();
    check_pppoe(&r, 4);
    assert_eq!((r.sent(), r.received()), (400, 400));
    let gw = r.gateway.as_ref().unwrap();
    assert!(
        gw["logins"]["store_seconds"].as_f64().unwrap() > 0.0,
        "the store checked the hash"
    );
}

#[test]
fn pppoe_with_a_wrong_secret_counts_failures_and_sends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("subscribers.db");
    // A store whose users have another CHAP secret than the generator's.
    {
        let mut st = tollgate_control::store::Store::open(&store).unwrap();
        for i in 0..3 {
            let mut s = tollgate_control::store::Subscriber::new(&format!("pktgen{i}"));
            s.chap_secret = Some(tollgate_control::store::ChapSecret(b"other".to_vec()));
            st.add(&s).unwrap();
        }
    }
    let a = args(&[
        "--pppoe",
        // No retransmission even when the machine stalls the test for seconds: the
        // counts below are exact.
        "--pppoe-retry-ms",
        "30000",
        "--subscribers",
        "3",
        "--count",
        "100",
        "--drain-ms",
        "20",
        "--store",
        store.to_str().unwrap(),
    ]);
    let cfg = tollgate_tools::pktgen::pppoe_config(tollgate_tools::pktgen::PppAuth::Chap).unwrap();
    let r = run_memory(&cfg, &a).unwrap();
    let p = r.pppoe.as_ref().unwrap();
    assert_eq!(p.up, 0);
    assert_eq!(p.failed, vec![("authentication refused".to_string(), 3)]);
    assert_eq!((r.flows, r.sent()), (0, 0), "no session, no traffic");
    let gw = r.gateway.as_ref().unwrap();
    assert_eq!(gw["logins"]["refused"], 3);
    assert_eq!(gw["sessions_open"], 2, "the static subscribers only");
}

#[test]
fn pppoe_json_shape() {
    let v = json_of(Command::new(env!("CARGO_BIN_EXE_tollgate")).args([
        "pktgen",
        "--pppoe",
        // No retransmission even when the machine stalls the test for seconds: the
        // counts below are exact.
        "--pppoe-retry-ms",
        "30000",
        "--subscribers",
        "5",
        "--cvlan",
        "7-11",
        "--count",
        "200",
        "--drain-ms",
        "20",
        "--json",
    ]));
    let p = &v["pppoe"];
    assert_eq!(p["subscribers"], 5);
    assert_eq!(p["up"], 5);
    assert_eq!(p["ended"], 5);
    assert_eq!(p["sessions_exact"], 5);
    for k in [
        "setup_seconds",
        "setup_per_second",
        "teardown_seconds",
        "teardown_per_second",
    ] {
        assert!(p[k].is_number(), "{k}: {p}");
    }
    assert!(p["setup_ms"]["p50"].is_number());
    assert_eq!(v["gateway"]["sessions_open"], 2);
    assert_eq!(v["lost"], 0);
}
