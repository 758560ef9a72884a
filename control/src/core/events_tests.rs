//! What the workers tell the core about NAT port exhaustion and learnt MACs, with a
//! fake clock.

use std::sync::Arc;

use tollgate_dataplane::session::{ClosedSession, DisconnectCause, SessionCounters};
use tollgate_dataplane::time::Instant;
use tollgate_dataplane::wire::ipv4::protocol;
use tollgate_dataplane::{Event, MacAddr};

use super::records::WallClock;
use super::sessions::SessionRequest;
use super::{Core, NAT_EXHAUSTION_LOG_S};
use crate::config::Config;

const T0: u64 = 1_700_000_000_000_000_000;

fn at(ms: u64) -> Instant {
    Instant(T0 + ms * 1_000_000)
}

fn core() -> Core {
    let cfg = Config::parse(
        r#"
[engine]
workers = 2
[access]
backend = "memory"
address = "10.10.0.1/24"
[core]
backend = "memory"
address = "192.0.2.1/24"
"#,
        "events.toml",
    )
    .unwrap();
    let fwd = crate::setup::forwarding(&cfg, crate::setup::configured_macs(&cfg)).unwrap();
    Core::new(
        at(0),
        Arc::new(fwd),
        crate::setup::core(&cfg, WallClock::UNIX).unwrap(),
    )
}

fn exhausted(c: &mut Core, worker: u16, proto: u8, drops: u64, ms: u64) {
    c.on_event(
        at(ms),
        worker,
        Event::NatPortsExhausted {
            protocol: proto,
            drops,
            at: at(ms),
        },
    );
}

#[test]
fn nat_port_exhaustion_is_counted_and_logged_at_most_every_10_s_per_worker_and_protocol() {
    assert_eq!(NAT_EXHAUSTION_LOG_S, 10);
    let mut c = core();
    // Worker 0, UDP: a report a second for 25 s (what a worker sends while exhausted).
    for s in 0..25 {
        exhausted(&mut c, 0, protocol::UDP, 100 * (s + 1), s * 1000);
    }
    let st = c.stats();
    assert_eq!(st.nat_ports_exhausted, 25);
    assert_eq!(st.nat_ports_exhausted_logged, 3, "at 0 s, 10 s and 20 s");
    // Another protocol and another worker have their own pace.
    exhausted(&mut c, 0, protocol::TCP, 1, 24_500);
    exhausted(&mut c, 1, protocol::UDP, 1, 24_600);
    exhausted(&mut c, 1, protocol::UDP, 2, 25_600);
    let st = c.stats();
    assert_eq!(st.nat_ports_exhausted, 28);
    assert_eq!(st.nat_ports_exhausted_logged, 5);
    // 10 s after the last line exactly: logged again.
    exhausted(&mut c, 0, protocol::UDP, 9999, 30_000);
    assert_eq!(c.stats().nat_ports_exhausted_logged, 6);
    assert_eq!(c.stats().events, 29);
}

#[test]
fn a_mac_learnt_on_the_fast_path_is_what_the_registry_shows() {
    let mut c = core();
    let req = SessionRequest {
        user: "bob".into(),
        address: "10.10.0.20".parse().unwrap(),
        mac: None,
        channel: None,
        services: Default::default(),
        bandwidth: Default::default(),
        limits: Default::default(),
        max_flows: 0,
    };
    let id = c.open_session(at(0), req).unwrap();
    assert_eq!(c.sessions().get(id).unwrap().spec.mac, None);
    let mac = MacAddr([0x02, 0x10, 0, 0, 0, 0x20]);
    c.on_event(at(1), 0, Event::SessionMac { id, mac });
    assert_eq!(c.sessions().get(id).unwrap().spec.mac, Some(mac));
    // Once learnt it stays (the worker enforces it); a stray report changes nothing, and
    // one for a session that is not open is ignored.
    let other = MacAddr([0x02, 0x66, 0, 0, 0, 1]);
    c.on_event(at(2), 0, Event::SessionMac { id, mac: other });
    c.on_event(at(2), 0, Event::SessionMac { id: id + 7, mac });
    assert_eq!(c.sessions().get(id).unwrap().spec.mac, Some(mac));
    // An ended session keeps it for `show session`.
    c.on_event(
        at(3000),
        0,
        Event::SessionClosed(ClosedSession {
            id,
            user: 1,
            channel: id,
            address: "10.10.0.20".parse().unwrap(),
            started: at(0),
            stopped: at(3000),
            cause: DisconnectCause::UserRequest,
            counters: SessionCounters::default(),
        }),
    );
    assert!(c.sessions().get(id).is_none());
    assert_eq!(c.sessions().recent(id).unwrap().mac, Some(mac));
}
