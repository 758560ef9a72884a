//! What the fast path tells the control thread, end to end through the daemon on memory
//! ports (the test holds the far ends and sends real frames, the control socket is
//! driven with the `tollgate` binary): the MAC a session learnt from its first uplink
//! frame (`show session`), and NAT port exhaustion (`show counters`).

mod support;

use support::gateway::{Gw, wait};
use tollgate_testkit::frame::udp_ports;
use tollgate_testkit::lab::*;

const VIP: std::net::Ipv4Addr = std::net::Ipv4Addr::new(203, 0, 113, 10);

/// The daemon's store and spool in the test's own directory.
fn own_state(d: &std::path::Path) -> String {
    format!(
        "[aaa]\nstore = \"{d}/subscribers.db\"\nspool = \"{d}/accounting.db\"\n",
        d = d.display()
    )
}

#[test]
fn show_session_reports_the_mac_learnt_from_the_first_uplink_frame() {
    let dir = tempfile::tempdir().unwrap();
    let mut gw = Gw::start(dir.path(), &own_state(dir.path()));
    let (ok, v) = gw.ctl(&["session", "add", "--user", "bob", "--address", "10.10.0.11"]);
    assert!(ok, "{v}");
    let id = v["session"].as_u64().unwrap().to_string();
    let s = gw.wait_open("10.10.0.11");
    assert_eq!(
        s["mac"],
        serde_json::Value::Null,
        "no MAC given, none seen yet"
    );

    let up = udp_ports(SUB_MAC, ACC_MAC, SUB, 40000, SRV, 5001, 64, b"first");
    assert!(gw.access.send(up));
    let out = wait("the frame forwarded", || {
        let f = gw.core.drain();
        (!f.is_empty()).then_some(f)
    });
    assert_eq!(
        out,
        vec![udp_ports(
            CORE_MAC, SRV_MAC, SUB, 40000, SRV, 5001, 63, b"first"
        )]
    );
    let s = wait("the learnt MAC shown", || {
        let (_, s) = gw.ctl(&["show", "session", &id]);
        (s["mac"] != serde_json::Value::Null).then_some(s)
    });
    assert_eq!(s["mac"], "02:10:00:00:00:11");
    assert_eq!(s["counters"]["tx_packets"], 1);
    let (_, list) = gw.ctl(&["show", "sessions"]);
    assert_eq!(list[0]["mac"], "02:10:00:00:00:11");

    // Ended, it still shows the MAC it kept to.
    let (ok, v) = gw.ctl(&["session", "remove", &id]);
    assert!(ok, "{v}");
    let s = wait("the session ended", || {
        let (_, s) = gw.ctl(&["show", "session", &id]);
        (s["state"] == "ended").then_some(s)
    });
    assert_eq!(s["mac"], "02:10:00:00:00:11");
    gw.stop();
}

#[test]
fn nat_port_exhaustion_reaches_the_control_thread() {
    let dir = tempfile::tempdir().unwrap();
    let extra = r#"
[nat]
port_min = 2000
port_max = 2015
[[service]]
name = "dns"
vip = "203.0.113.10"
protocol = "udp"
port = 53
[[service.server]]
address = "192.0.2.10"
"#;
    let mut gw = Gw::start(dir.path(), &format!("{}{extra}", own_state(dir.path())));
    let (ok, v) = gw.ctl(&[
        "session",
        "add",
        "--user",
        "bob",
        "--address",
        "10.10.0.11",
        "--services",
        "dns",
    ]);
    assert!(ok, "{v}");
    gw.wait_open("10.10.0.11");
    // Sixteen ports: sixteen requests get one each and stay open (UDP, 300 s).
    for i in 0..16u16 {
        assert!(gw.access.send(udp_ports(
            SUB_MAC,
            ACC_MAC,
            SUB,
            5000 + i,
            VIP,
            53,
            64,
            b"q"
        )));
    }
    let mut out = Vec::new();
    wait("sixteen requests translated", || {
        out.extend(gw.core.drain());
        (out.len() == 16).then_some(())
    });
    out.sort();
    let want: Vec<Vec<u8>> = (0..16u16)
        .map(|i| udp_ports(CORE_MAC, SRV_MAC, GW_CORE, 2000 + i, SRV, 53, 63, b"q"))
        .collect();
    let mut want = want;
    want.sort();
    assert_eq!(out, want);

    // The seventeenth finds no port: a counted drop and one event.
    assert!(
        gw.access
            .send(udp_ports(SUB_MAC, ACC_MAC, SUB, 6000, VIP, 53, 64, b"q"))
    );
    let c = wait("the exhaustion counted", || {
        let (_, c) = gw.ctl(&["show", "counters"]);
        (c["control"]["nat_ports_exhausted"] == 1).then_some(c)
    });
    assert_eq!(c["drops"]["nat_no_port"], 1);
    assert_eq!(c["drops_total"], 1);
    assert_eq!(c["engine"]["flows_opened"], 16);
    assert!(gw.core.drain().is_empty());
    gw.stop();
}
