//! Issue 12 item 21: a gateway that is stopped (SIGTERM) tells its L2TP peers: a StopCCN
//! (result 6, shutting down) goes to each while the workers still run, and the daemon
//! waits for the acknowledgement, at most `l2tp.shutdown_wait_ms`. The test is the LAC:
//! it opens a tunnel to an in-process LNS on memory ports with hand-built control
//! messages and reads what comes back.

mod support;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use support::gateway::{Gw, wait};
use tollgate_control::l2tp::wire::{self, Builder, Message, attr, kind};
use tollgate_dataplane::MacAddr;
use tollgate_testkit::frame::udp_ports;
use tollgate_testkit::lab::ACC_MAC;

const LAC: Ipv4Addr = Ipv4Addr::new(172, 16, 0, 1);
const LNS: Ipv4Addr = Ipv4Addr::new(172, 16, 0, 2);
const LAC_MAC: MacAddr = MacAddr([0x02, 0x16, 0, 0, 0, 0x01]);
const LAC_TUNNEL: u16 = 77;

fn lns(dir: &std::path::Path, shutdown_wait_ms: u64) -> Gw {
    let src = format!(
        r#"
[engine]
idle_sleep_us = 100
[control]
socket = "{d}/ctl.sock"
[access]
backend = "memory"
address = "172.16.0.2/24"
[core]
backend = "memory"
address = "192.0.2.1/24"
[[neighbor]]
address = "172.16.0.1"
mac = "02:16:00:00:00:01"
[aaa]
store = "{d}/subscribers.db"
spool = "{d}/accounting.db"
[l2tp]
enabled = true
host_name = "lns"
accept = true
shutdown_wait_ms = {shutdown_wait_ms}
"#,
        d = dir.display()
    );
    Gw::start_config(dir, &src)
}

/// Sends an L2TP control message from the LAC to the LNS.
fn send(gw: &mut Gw, msg: &[u8]) {
    assert!(
        gw.access
            .send(udp_ports(LAC_MAC, ACC_MAC, LAC, 1701, LNS, 1701, 64, msg))
    );
}

/// The next control message (not a ZLB) the LNS sends to the LAC (within 20 s).
fn receive(gw: &mut Gw) -> Message {
    let mut pending = std::collections::VecDeque::new();
    wait("an L2TP message from the LNS", || {
        pending.extend(gw.access.drain());
        while let Some(f) = pending.pop_front() {
            let Ok(p) = etherparse::SlicedPacket::from_ethernet(&f) else {
                continue;
            };
            let Some(etherparse::TransportSlice::Udp(u)) = p.transport else {
                continue;
            };
            if u.destination_port() == 1701 {
                let m = wire::decode(u.payload(), None).unwrap();
                if m.kind() != 0 {
                    return Some(m);
                }
            }
        }
        None
    })
}

/// A tunnel up between the test (LAC) and the gateway (LNS); returns the LNS's tunnel id
/// and the next Ns it will send.
fn open_tunnel(gw: &mut Gw) -> (u16, u16) {
    let mut sccrq = Builder::new(kind::SCCRQ, 0, 0)
        .u16(true, attr::PROTOCOL_VERSION, 0x0100)
        .avp(true, 0, attr::HOST_NAME, b"test-lac")
        .u32(true, attr::FRAMING_CAPABILITIES, 3)
        .u16(true, attr::ASSIGNED_TUNNEL_ID, LAC_TUNNEL)
        .finish();
    wire::set_sequence(&mut sccrq, 0, 0);
    send(gw, &sccrq);
    let sccrp = receive(gw);
    assert_eq!(sccrp.kind(), kind::SCCRP);
    assert_eq!(sccrp.tunnel, LAC_TUNNEL);
    let lns_tunnel = sccrp.u16(attr::ASSIGNED_TUNNEL_ID).unwrap();
    let mut scccn = Builder::new(kind::SCCCN, lns_tunnel, 0).finish();
    wire::set_sequence(&mut scccn, 1, sccrp.ns.wrapping_add(1));
    send(gw, &scccn);
    wait("the tunnel established", || {
        let (_, v) = gw.ctl(&["show", "tunnels"]);
        (v["tunnels"][0]["state"] == "established").then_some(())
    });
    (lns_tunnel, sccrp.ns.wrapping_add(1))
}

#[test]
fn stopping_sends_stopccn_and_waits_for_the_acknowledgement() {
    let dir = tempfile::tempdir().unwrap();
    // A long bound: if the daemon ends before it, the acknowledgement ended it.
    let mut gw = lns(dir.path(), 30_000);
    let (lns_tunnel, _) = open_tunnel(&mut gw);
    gw.signal_stop();
    let stop = receive(&mut gw);
    assert_eq!(stop.kind(), kind::STOPCCN);
    assert_eq!(stop.tunnel, LAC_TUNNEL);
    assert_eq!(stop.u16(attr::ASSIGNED_TUNNEL_ID), Some(lns_tunnel));
    let r = stop.result_code().unwrap();
    assert_eq!(r.result, 6, "shutting down: {r}");
    // Still running: waiting for our acknowledgement.
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        !gw.finished(),
        "stopped before the StopCCN was acknowledged"
    );
    let acked = Instant::now();
    send(&mut gw, &wire::zlb(lns_tunnel, 2, stop.ns.wrapping_add(1)));
    wait("the daemon to end", || gw.finished().then_some(()));
    let took = acked.elapsed();
    gw.join().unwrap();
    assert!(took < Duration::from_secs(20), "{took:?}");
    eprintln!(
        "daemon ended {} ms after the StopCCN's acknowledgement",
        took.as_millis()
    );
}

#[test]
fn a_silent_peer_delays_the_stop_only_by_shutdown_wait() {
    let dir = tempfile::tempdir().unwrap();
    let mut gw = lns(dir.path(), 1_500);
    open_tunnel(&mut gw);
    let asked = Instant::now();
    gw.signal_stop();
    assert_eq!(receive(&mut gw).kind(), kind::STOPCCN);
    wait("the daemon to end", || gw.finished().then_some(()));
    let took = asked.elapsed();
    gw.join().unwrap();
    assert!(took >= Duration::from_millis(1_500), "{took:?}");
}
