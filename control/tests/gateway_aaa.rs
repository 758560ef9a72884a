//! Logins, conditions, pools, SES-1 and accounting with a fake clock: the core
//! (`tollgate_control_core::gateway`) is driven through its public inputs, set up from a
//! config the way the daemon sets it up, and a scripted worker answers its commands.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use tollgate_dataplane::session::{
    ClosedSession, DisconnectCause, Encap, SessionCounters, SessionId, SessionSpec, VlanKey,
    VlanTag, Vlans,
};
use tollgate_dataplane::time::Instant;
use tollgate_dataplane::{Command, Event, MacAddr};

use tollgate_control::config::Config;
use tollgate_control_core::authz::{Authorization, Conditions, LoginVictim};
use tollgate_control_core::gateway::aaa::*;
use tollgate_control_core::gateway::records::WallClock;
use tollgate_control_core::gateway::{Core, Output};
use tollgate_control_core::radius::attrs::AcctRecord;
use tollgate_control_core::radius::coa::{Change, SessionDirectory, SessionRef};
use tollgate_control_core::radius::dict::{
    AcctStatusType, DisconnectCause as Cause, ErrorCause, tollgate as tg,
};
use tollgate_control_core::radius::packet::Attribute;

const T0: u64 = 1_700_000_000_000_000_000;
const SEC: u64 = 1_000_000_000;

const CONFIG: &str = r#"
[engine]
workers = 2
[access]
backend = "memory"
address = "10.10.0.1/24"
[core]
backend = "memory"
address = "192.0.2.1/24"
[aaa]
dormant_s = 60
dormant_timeout_s = 120
[aaa.radius]
interim_interval_s = 300

[[node]]
name = "gw-a"
[[node]]
name = "gw-b"

[[pool]]
name = "mobile"
[[pool.range]]
first = "10.10.0.100"
last = "10.10.0.101"
node = "gw-a"
[[pool.range]]
first = "10.10.0.200"
last = "10.10.0.201"
node = "gw-b"

[[service]]
name = "web"
vip = "203.0.113.10"
protocol = "tcp"
port = 80
[[service.server]]
address = "192.0.2.21"

[[service]]
name = "mail"
vip = "203.0.113.10"
protocol = "tcp"
port = 25
[[service.server]]
address = "192.0.2.25"
"#;

fn at(s: u64) -> Instant {
    Instant(T0 + s * SEC)
}

/// The core and a pretend worker that keeps installed sessions and their counters.
struct Rig {
    core: Core,
    now: Instant,
    installed: Vec<SessionSpec>,
    updates: Vec<(SessionId, tollgate_dataplane::session::SessionUpdate)>,
    /// Counters and last packet the worker reports per session.
    traffic: std::collections::HashMap<SessionId, (SessionCounters, Instant)>,
    auth: Vec<AuthRequest>,
    account: Vec<AcctRecord>,
    done: Vec<(LoginId, Result<Login, String>)>,
    logs: Vec<serde_json::Value>,
    last_known: Vec<Vec<tollgate_control_core::radius::attrs::LastKnown>>,
}

impl Rig {
    fn new() -> Rig {
        Rig::with(CONFIG)
    }

    fn with(src: &str) -> Rig {
        let cfg = Config::parse(src, "aaa.toml").unwrap();
        let fwd = tollgate_control::setup::forwarding(
            &cfg,
            tollgate_control::setup::configured_macs(&cfg),
        )
        .unwrap();
        let now = at(0);
        let core = Core::new(
            now,
            Arc::new(fwd),
            tollgate_control::setup::core(&cfg, WallClock::UNIX).unwrap(),
        );
        let mut r = Rig {
            core,
            now,
            installed: Vec::new(),
            updates: Vec::new(),
            traffic: Default::default(),
            auth: Vec::new(),
            account: Vec::new(),
            done: Vec::new(),
            logs: Vec::new(),
            last_known: Vec::new(),
        };
        r.drain();
        r
    }

    /// Moves the clock, runs the timers, lets the worker answer.
    fn at(&mut self, s: u64) {
        self.now = at(s);
        if self.core.poll_timeout().is_some_and(|t| t <= self.now) {
            self.core.tick(self.now);
        }
        self.drain();
    }

    fn drain(&mut self) {
        // Until the core has nothing more to say.
        while let Some(first) = self.core.poll_output() {
            self.drain_from(first);
        }
    }

    fn drain_from(&mut self, first: Output) {
        let mut events = Vec::new();
        let mut next = Some(first);
        while let Some(o) = next.take().or_else(|| self.core.poll_output()) {
            match o {
                Output::Command(_, Command::SessionAdd(spec)) => {
                    self.traffic
                        .insert(spec.id, (SessionCounters::default(), spec.started));
                    self.installed.push(spec);
                }
                Output::Command(_, Command::SessionUpdate { id, update }) => {
                    self.updates.push((id, update))
                }
                Output::Command(_, Command::SessionQuery { id, seq }) => {
                    let found = self.traffic.get(&id).copied();
                    if let Some((counters, last_seen)) = found {
                        events.push(Event::SessionCounters {
                            id,
                            seq,
                            at: self.now,
                            counters,
                            last_seen,
                            ipv6: None,
                        });
                    }
                    events.push(Event::SessionsReported {
                        seq,
                        sessions: found.is_some() as u32,
                    });
                }
                Output::Command(_, Command::SessionRemove { id, cause }) => {
                    if let Some((counters, _)) = self.traffic.remove(&id) {
                        let spec = self.installed.iter().rev().find(|s| s.id == id).unwrap();
                        events.push(Event::SessionClosed(ClosedSession {
                            id,
                            user: spec.user,
                            channel: spec.channel,
                            address: spec.address,
                            started: spec.started,
                            stopped: self.now,
                            cause,
                            counters,
                        }));
                    }
                }
                Output::Command(_, Command::ReportSessions { seq }) => {
                    let mut ids: Vec<_> = self.traffic.keys().copied().collect();
                    ids.sort();
                    for id in &ids {
                        let (counters, last_seen) = self.traffic[id];
                        events.push(Event::SessionCounters {
                            id: *id,
                            seq,
                            at: self.now,
                            counters,
                            last_seen,
                            ipv6: None,
                        });
                    }
                    events.push(Event::SessionsReported {
                        seq,
                        sessions: ids.len() as u32,
                    });
                }
                Output::LastKnown(b) => self.last_known.push(b),
                Output::Authenticate(a) => self.auth.push(a),
                Output::Account(r) => self.account.push(r),
                Output::LoginDone { login, result } => self.done.push((login, result)),
                Output::Record(tollgate_control_core::gateway::RecordKind::Session, line) => {
                    self.logs.push(serde_json::from_str(&line).unwrap())
                }
                _ => {}
            }
        }
        for e in events {
            self.core.on_event(self.now, 0, e);
        }
    }

    /// The fast path ends a session by itself (a check fired).
    fn fast_path_ends(&mut self, id: SessionId, cause: DisconnectCause) {
        let (counters, _) = self.traffic.remove(&id).unwrap();
        let spec = *self.installed.iter().rev().find(|s| s.id == id).unwrap();
        self.core.on_event(
            self.now,
            0,
            Event::SessionClosed(ClosedSession {
                id,
                user: spec.user,
                channel: spec.channel,
                address: spec.address,
                started: spec.started,
                stopped: self.now,
                cause,
                counters,
            }),
        );
        self.drain();
    }

    fn traffic(&mut self, id: SessionId, tx: u64, rx: u64) {
        let e = self.traffic.get_mut(&id).unwrap();
        e.0.tx_packets += 1;
        e.0.tx_bytes += tx;
        e.0.rx_packets += 1;
        e.0.rx_bytes += rx;
        e.1 = self.now;
    }

    /// Logs in and answers the authentication with `auth`.
    fn login(
        &mut self,
        req: LoginRequest,
        user: &str,
        auth: Authorization,
    ) -> Result<Login, String> {
        let id = self.core.login(self.now, req)?;
        self.drain();
        assert_eq!(self.auth.last().unwrap().login, id);
        self.core.on_auth(
            self.now,
            id,
            AuthAnswer::Accept {
                user: user.into(),
                authorization: Box::new(auth),
            },
        );
        self.drain();
        let (l, r) = self.done.pop().unwrap();
        assert_eq!(l, id);
        r
    }

    fn spec(&self, id: SessionId) -> SessionSpec {
        *self.installed.iter().rev().find(|s| s.id == id).unwrap()
    }

    fn last(&self, status: AcctStatusType) -> &AcctRecord {
        self.account
            .iter()
            .rev()
            .find(|r| r.status == status)
            .unwrap()
    }
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn with_address(a: &str) -> LoginRequest {
    LoginRequest {
        address: Some(ip(a)),
        ..LoginRequest::default()
    }
}

#[test]
fn first_packet_login_installs_a_session_and_starts_accounting() {
    let mut r = Rig::new();
    let mac = MacAddr([2, 0x10, 0, 0, 0, 0x11]);
    r.core.on_event(
        r.now,
        1,
        Event::UnknownSubscriber {
            ip: ip("10.10.0.11"),
            mac,
            vlans: VlanKey::UNTAGGED,
            at: r.now,
        },
    );
    r.drain();
    let a = r.auth.pop().unwrap();
    assert_eq!(
        a.identifiers,
        vec![
            tollgate_control_core::gateway::identifier::Identifier::Mac(mac),
            tollgate_control_core::gateway::identifier::Identifier::Ip(ip("10.10.0.11"))
        ]
    );
    assert_eq!(a.calling_station.as_deref(), Some("02:10:00:00:00:11"));
    // The worker reports the stranger again while the login is pending: not twice.
    r.core.on_event(
        r.now,
        1,
        Event::UnknownSubscriber {
            ip: ip("10.10.0.11"),
            mac,
            vlans: VlanKey::UNTAGGED,
            at: r.now,
        },
    );
    r.drain();
    assert!(r.auth.is_empty());
    assert_eq!(r.core.logins_pending(), 1);
    assert_eq!(
        r.core.aaa_stats().busy,
        0,
        "a repeat report is not a refused login"
    );

    r.at(1);
    r.core.on_auth(
        r.now,
        a.login,
        AuthAnswer::Accept {
            user: "alice".into(),
            authorization: Box::new(Authorization {
                services: vec!["web".into()],
                bandwidth_down: Some(10_000_000),
                ..Authorization::default()
            }),
        },
    );
    r.drain();
    let (_, done) = r.done.pop().unwrap();
    let login = done.unwrap();
    assert_eq!(
        (login.address, login.user.as_str(), login.resumed),
        (ip("10.10.0.11"), "alice", false)
    );
    let spec = r.spec(login.session);
    assert_eq!(spec.address, ip("10.10.0.11"));
    assert_eq!(spec.mac, Some(mac));
    assert_eq!(spec.started, at(1));
    assert!(
        spec.services.allows(0) && !spec.services.allows(1),
        "web only"
    );
    assert_eq!(spec.bandwidth.down_bps, 10_000_000);
    let start = r.last(AcctStatusType::Start).clone();
    assert_eq!(start.user_name, "alice");
    assert_eq!(start.framed_ip, Some(ip("10.10.0.11")));
    assert_eq!(
        start.calling_station_id.as_deref(),
        Some("02:10:00:00:00:11")
    );
    assert_eq!(start.event_time, T0 / SEC + 1);
    assert_eq!(r.core.aaa_stats().accepted, 1);
    // A packet that left before the worker installed the session: no second login.
    r.core.on_event(
        r.now,
        1,
        Event::UnknownSubscriber {
            ip: ip("10.10.0.11"),
            mac,
            vlans: VlanKey::UNTAGGED,
            at: r.now,
        },
    );
    r.drain();
    assert!(r.auth.is_empty());
    assert_eq!(r.core.aaa_stats().logins, 1);
}

/// A stranger on a QinQ line (ACC-4): RADIUS sees the line as NAS-Port-Id and the session
/// is installed on it (S-tag 802.1ad), so its uplink matches and its downlink is tagged.
#[test]
fn a_first_packet_on_a_vlan_line_installs_the_session_on_that_line() {
    let mut r = Rig::new();
    let mac = MacAddr([2, 0x10, 0, 0, 0, 0x12]);
    r.core.on_event(
        r.now,
        1,
        Event::UnknownSubscriber {
            ip: ip("10.10.0.12"),
            mac,
            vlans: VlanKey::UNTAGGED.push(100).push(7),
            at: r.now,
        },
    );
    r.drain();
    let a = r.auth.pop().unwrap();
    let line = a.line.clone().expect("the line goes to RADIUS");
    assert_eq!(line.nas_port_id, "access.100.7");
    assert!(line.ipoe, "no Framed-Protocol PPP");
    r.core.on_auth(
        r.now,
        a.login,
        AuthAnswer::Accept {
            user: "bob".into(),
            authorization: Box::default(),
        },
    );
    r.drain();
    let (_, done) = r.done.pop().unwrap();
    let spec = r.spec(done.unwrap().session);
    assert_eq!(spec.access.encap, Encap::Ipoe);
    assert_eq!(
        spec.access.vlans,
        Vlans {
            outer: Some(VlanTag {
                tpid: 0x88a8,
                vid: 100
            }),
            inner: Some(VlanTag {
                tpid: 0x8100,
                vid: 7
            }),
        }
    );
    assert_eq!(
        r.last(AcctStatusType::Start)
            .access
            .as_ref()
            .map(|l| l.nas_port_id.as_str()),
        Some("access.100.7")
    );
}

#[test]
fn refused_unavailable_and_busy_logins_get_no_session() {
    let src = CONFIG.replace("dormant_s = 60", "dormant_s = 60\nmax_pending_logins = 2");
    let mut r = Rig::with(&src);
    let a = r.core.login(r.now, with_address("10.10.0.20")).unwrap();
    let b = r.core.login(r.now, with_address("10.10.0.21")).unwrap();
    assert!(
        r.core
            .login(r.now, with_address("10.10.0.22"))
            .unwrap_err()
            .contains("waiting")
    );
    r.core
        .on_auth(r.now, a, AuthAnswer::Reject("unknown subscriber".into()));
    r.core.on_auth(
        r.now,
        b,
        AuthAnswer::Unavailable("no server answered".into()),
    );
    r.drain();
    assert!(r.done.iter().all(|(_, d)| d.is_err()), "{:?}", r.done);
    assert!(r.installed.is_empty() && r.account.is_empty());
    let s = r.core.aaa_stats();
    assert_eq!((s.logins, s.rejected, s.unavailable, s.busy), (3, 1, 1, 1));
    // An answer for a login that is no longer waiting is ignored.
    r.core.on_auth(r.now, a, AuthAnswer::Reject("again".into()));
    r.drain();
    assert_eq!(r.done.len(), 2);
}

#[test]
fn conditions_become_fast_path_limits() {
    let auth = Authorization {
        bandwidth_down: Some(8_000_000),
        conditions: Conditions {
            session_time_s: Some(3600),
            idle_time_s: Some(600),
            volume_bytes: Some(1 << 30),
            volume_bytes_up: Some(5),
            volume_packets_down: Some(7),
            rate_ratio_percent: Some(50),
            rate_window_s: Some(10),
            ..Conditions::default()
        },
        ..Authorization::default()
    };
    let (l, app) = limits(&auth, Duration::from_secs(1));
    assert!(!app);
    assert_eq!(l.session_timeout_ms, Some(3_600_000));
    assert_eq!(l.idle_timeout_ms, Some(600_000));
    assert_eq!(l.idle_server, None);
    assert_eq!(l.volume.total_bytes, Some(1 << 30));
    assert_eq!(l.volume.tx_bytes, Some(5));
    assert_eq!(l.volume.rx_packets, Some(7));
    let rate = l.rate.unwrap();
    assert_eq!(
        (rate.percent, rate.path_bps, rate.window_ms),
        (50, 8_000_000, 10_000)
    );

    // F shorter than B: the idle limit is F's, towards the idle server when one is named.
    let mut f = auth.clone();
    f.conditions.app_timeout_s = Some(300);
    f.conditions.idle_server = Some(ip("192.0.2.21"));
    let (l, app) = limits(&f, Duration::from_secs(1));
    assert!(app);
    assert_eq!(l.idle_timeout_ms, None);
    assert_eq!(l.idle_server, Some((ip("192.0.2.21"), 299_000)));
    // F longer than B: B stays.
    f.conditions.app_timeout_s = Some(900);
    assert!(!limits(&f, Duration::from_secs(1)).1);
}

#[test]
fn application_timeout_is_reported_as_such_and_the_stop_carries_final_counters() {
    let mut r = Rig::new();
    let auth = Authorization {
        class: vec![b"gold".to_vec()],
        conditions: Conditions {
            app_timeout_s: Some(30),
            ..Conditions::default()
        },
        ..Authorization::default()
    };
    let l = r.login(with_address("10.10.0.30"), "bob", auth).unwrap();
    assert_eq!(r.spec(l.session).limits.idle_timeout_ms, Some(29_000));
    r.at(5);
    r.traffic(l.session, 100, 1500);
    r.traffic(l.session, 60, 0);
    r.at(34);
    r.fast_path_ends(l.session, DisconnectCause::IdleTimeout);
    let stop = r.last(AcctStatusType::Stop).clone();
    assert_eq!(stop.cause, Some(Cause::AppTimeout));
    assert_eq!(stop.session_time_s, 34);
    assert_eq!(stop.class, vec![b"gold".to_vec()]);
    assert_eq!(
        (
            stop.counters.octets_up,
            stop.counters.octets_down,
            stop.counters.packets_up,
            stop.counters.packets_down
        ),
        (160, 1500, 2, 2)
    );
    assert_eq!(stop.session_id, r.last(AcctStatusType::Start).session_id);
    let log = r.logs.last().unwrap();
    assert_eq!(log["cause"], "application_timeout");
    assert_eq!(log["acct_session_id"], stop.session_id.as_str());
    assert_eq!(log["tx_bytes"], 160);
}

#[test]
fn simultaneous_logins_end_the_earliest() {
    let mut r = Rig::new();
    let auth = Authorization {
        conditions: Conditions {
            max_logins: Some(2),
            ..Conditions::default()
        },
        ..Authorization::default()
    };
    let a = r
        .login(with_address("10.10.0.40"), "carol", auth.clone())
        .unwrap();
    r.at(1);
    let b = r
        .login(with_address("10.10.0.41"), "carol", auth.clone())
        .unwrap();
    // Someone else's logins do not count.
    r.login(with_address("10.10.0.49"), "dave", auth.clone())
        .unwrap();
    r.at(2);
    let c = r
        .login(with_address("10.10.0.42"), "carol", auth.clone())
        .unwrap();
    let stops: Vec<_> = r
        .account
        .iter()
        .filter(|x| x.status == AcctStatusType::Stop)
        .collect();
    assert_eq!(stops.len(), 1);
    assert_eq!(stops[0].framed_ip, Some(ip("10.10.0.40")));
    assert_eq!(stops[0].cause, Some(Cause::SimultaneousLogins));
    assert!(r.core.sessions().get(a.session).is_none());
    assert!(
        r.core.sessions().get(b.session).is_some() && r.core.sessions().get(c.session).is_some()
    );
    assert_eq!(r.core.aaa_stats().login_victims, 1);
}

#[test]
fn a_stored_order_picks_the_victim_across_a_billing_account() {
    let mut r = Rig::new();
    let member = |order: u32| Authorization {
        billing_account: Some("acme".into()),
        conditions: Conditions {
            max_logins: Some(2),
            login_victim: LoginVictim::Order,
            login_order: Some(order),
            ..Conditions::default()
        },
        ..Authorization::default()
    };
    let low = r
        .login(with_address("10.10.0.50"), "ann", member(1))
        .unwrap();
    let high = r
        .login(with_address("10.10.0.51"), "ben", member(9))
        .unwrap();
    // A third member with order 5: ben (9) goes.
    let mid = r
        .login(with_address("10.10.0.52"), "cid", member(5))
        .unwrap();
    assert!(r.core.sessions().get(high.session).is_none());
    assert!(r.core.sessions().get(low.session).is_some());
    // A fourth with the highest order is itself the one that goes: refused.
    let e = r
        .login(with_address("10.10.0.53"), "dan", member(20))
        .unwrap_err();
    assert!(e.contains("acme") && e.contains("stored order"), "{e}");
    assert!(r.core.sessions().get(mid.session).is_some());
    assert_eq!(r.core.sessions().len(), 2);
}

#[test]
fn pools_follow_node_health_and_mobiles_keep_their_address() {
    let mut r = Rig::new();
    let mobile = |id: &str| LoginRequest {
        mobile_id: Some(id.into()),
        ..LoginRequest::default()
    };
    let a = r
        .login(mobile("imsi-1"), "m1", Authorization::default())
        .unwrap();
    let b = r
        .login(mobile("imsi-2"), "m2", Authorization::default())
        .unwrap();
    assert_eq!(
        (a.address, b.address),
        (ip("10.10.0.100"), ip("10.10.0.200"))
    );
    // gw-a goes down: its range gives no more addresses.
    assert!(r.core.set_node("gw-a", false));
    let c = r
        .login(mobile("imsi-3"), "m3", Authorization::default())
        .unwrap();
    assert_eq!(c.address, ip("10.10.0.201"));
    let e = r
        .login(mobile("imsi-4"), "m4", Authorization::default())
        .unwrap_err();
    assert!(e.contains("no free address"), "{e}");
    // A returning mobile finds its session and address.
    let again = r
        .login(mobile("imsi-1"), "m1", Authorization::default())
        .unwrap();
    assert_eq!(
        (again.session, again.address, again.resumed),
        (a.session, a.address, true)
    );
    assert_eq!(r.installed.len(), 3, "no new session");
    // Its address goes back to the pool when it ends.
    r.core.set_node("gw-a", true);
    r.core.logout_user("m1", DisconnectCause::UserRequest);
    r.drain();
    let d = r
        .login(mobile("imsi-5"), "m5", Authorization::default())
        .unwrap();
    assert_eq!(d.address, ip("10.10.0.100"));
    // Framed-Pool naming a pool that does not exist.
    let bad = Authorization {
        pool: Some("nope".into()),
        ..Authorization::default()
    };
    assert!(
        r.login(mobile("imsi-6"), "m6", bad)
            .unwrap_err()
            .contains("nope")
    );
    // An address outside the access subnet is refused.
    let outside = Authorization {
        framed_ip: Some(ip("172.16.0.1")),
        ..Authorization::default()
    };
    assert!(
        r.login(mobile("imsi-7"), "m7", outside)
            .unwrap_err()
            .contains("access subnet")
    );
}

#[test]
fn interim_updates_at_each_interval_with_the_counters_then() {
    let mut r = Rig::new();
    let auth = Authorization {
        interim_interval_s: Some(60),
        ..Authorization::default()
    };
    let l = r.login(with_address("10.10.0.60"), "erin", auth).unwrap();
    for s in 1..=130 {
        r.at(s);
        if s % 10 == 0 {
            r.traffic(l.session, 1000, 2000);
        }
    }
    let interims: Vec<_> = r
        .account
        .iter()
        .filter(|x| x.status == AcctStatusType::InterimUpdate)
        .collect();
    assert_eq!(interims.len(), 2);
    // The interim at 60 s reads the counters before that second's traffic: 10..=50 s.
    assert_eq!(
        (interims[0].session_time_s, interims[0].counters.octets_up),
        (60, 5000)
    );
    assert_eq!(
        (interims[1].session_time_s, interims[1].counters.octets_down),
        (120, 22_000)
    );
    assert_eq!(interims[1].event_time, T0 / SEC + 120);
}

#[test]
fn dormant_then_active_then_closed_by_the_session_timer() {
    let mut r = Rig::new();
    let l = r
        .login(with_address("10.10.0.70"), "fay", Authorization::default())
        .unwrap();
    let state = |r: &Rig| r.core.aaa_session(l.session).map(|s| s.state);
    r.at(10);
    r.traffic(l.session, 1, 1);
    r.at(69);
    assert_eq!(state(&r), Some(SesState::Act));
    r.at(70);
    assert_eq!(
        state(&r),
        Some(SesState::Dormant),
        "60 s after the last packet"
    );
    assert_eq!(
        r.core.aaa_session(l.session).unwrap().dormant_since,
        Some(at(70))
    );
    // Traffic again: Act at the next check.
    r.at(100);
    r.traffic(l.session, 1, 1);
    r.at(130);
    assert_eq!(state(&r), Some(SesState::Act));
    // Silent from 100: dormant at 160, closed 120 s later.
    for s in 131..=280 {
        r.at(s);
        if s == 160 {
            assert_eq!(state(&r), Some(SesState::Dormant));
        }
    }
    assert_eq!(state(&r), None, "closed");
    let stop = r.last(AcctStatusType::Stop);
    assert_eq!(stop.cause, Some(Cause::DormantTimeout));
    assert_eq!(stop.session_time_s, 280);
    assert_eq!(r.core.aaa_stats().dormant, 2);
    assert_eq!(r.logs.last().unwrap()["cause"], "dormant_timeout");
}

#[test]
fn coa_disconnects_and_changes_sessions_it_names() {
    let mut r = Rig::new();
    let l = r
        .login(with_address("10.10.0.80"), "gus", Authorization::default())
        .unwrap();
    let acct = r.last(AcctStatusType::Start).session_id.clone();
    let now = r.now;
    let mut dir = r.core.coa_directory(now);
    let nobody = SessionRef {
        user_name: Some("nobody".into()),
        ..SessionRef::default()
    };
    assert_eq!(
        dir.disconnect(&nobody),
        Err(ErrorCause::SessionContextNotFound)
    );
    let who = SessionRef {
        session_id: Some(acct.clone()),
        framed_ip: Some(ip("10.10.0.80")),
        ..SessionRef::default()
    };
    let wrong_ip = SessionRef {
        framed_ip: Some(ip("10.10.0.81")),
        ..who.clone()
    };
    assert_eq!(
        dir.disconnect(&wrong_ip),
        Err(ErrorCause::SessionContextNotFound)
    );
    let change = Change {
        attributes: vec![Attribute::u64(tg::BANDWIDTH_DOWN, 20_000_000)],
    };
    assert_eq!(dir.change(&who, &change), Ok(()));
    r.drain();
    let (id, u) = r.updates.pop().unwrap();
    assert_eq!(id, l.session);
    assert_eq!(u.bandwidth.unwrap().down_bps, 20_000_000);
    assert_eq!(
        r.core
            .sessions()
            .get(l.session)
            .unwrap()
            .spec
            .bandwidth
            .down_bps,
        20_000_000
    );
    let mut dir = r.core.coa_directory(now);
    assert_eq!(dir.disconnect(&who), Ok(()));
    r.drain();
    assert_eq!(r.last(AcctStatusType::Stop).cause, Some(Cause::Admin));
    let mut dir = r.core.coa_directory(now);
    assert_eq!(
        dir.disconnect(&who),
        Err(ErrorCause::SessionContextNotFound)
    );
}

#[test]
fn static_sessions_are_accounted_and_reserve_pool_addresses() {
    let mut r = Rig::new();
    let req = tollgate_control_core::gateway::sessions::SessionRequest {
        user: "static".into(),
        address: ip("10.10.0.100"),
        mac: None,
        channel: None,
        services: tollgate_dataplane::session::ServiceSet::ALL,
        bandwidth: Default::default(),
        limits: Default::default(),
        max_flows: 0,
    };
    let id = r.core.open_session(r.now, req.clone()).unwrap();
    r.drain();
    assert_eq!(r.last(AcctStatusType::Start).user_name, "static");
    assert!(r.core.open_session(r.now, req).is_err(), "address in use");
    let m = r
        .login(
            LoginRequest {
                mobile_id: Some("x".into()),
                ..LoginRequest::default()
            },
            "mob",
            Authorization::default(),
        )
        .unwrap();
    assert_eq!(
        m.address,
        ip("10.10.0.200"),
        "10.10.0.100 is taken, and gw-a is busier"
    );
    r.core.on_event(
        r.now,
        0,
        Event::SessionInstallFailed {
            id,
            reason: tollgate_dataplane::msg::InstallFailure::TableFull,
        },
    );
    r.drain();
    let stop = r.last(AcctStatusType::Stop);
    assert_eq!(stop.user_name, "static");
    assert_eq!(stop.cause, Some(Cause::Shutdown));
}

#[test]
fn last_known_counters_go_to_the_spool_each_round_when_they_moved() {
    // The default config: a round every 10 s (`[aaa] spool_counters_s`).
    let mut r = Rig::new();
    let a = r
        .login(with_address("10.10.0.70"), "kim", Authorization::default())
        .unwrap();
    let b = r
        .login(with_address("10.10.0.71"), "lou", Authorization::default())
        .unwrap();
    let acct = |r: &Rig, id: SessionId| r.core.aaa_session(id).unwrap().acct_id.clone();
    let (acct_a, acct_b) = (acct(&r, a.session), acct(&r, b.session));
    for s in 1..=35 {
        r.at(s);
        if s <= 12 {
            r.traffic(a.session, 100, 200);
        }
        if s == 25 {
            r.traffic(b.session, 7, 9);
        }
    }
    // Rounds at 10, 20 and 30 s (each reads before that second's traffic): a moved by
    // the first (9 s of traffic), again by the second (3 s more), then not; b only by
    // the third. One batch per round.
    let rounds: Vec<Vec<(String, u64, u64)>> = r
        .last_known
        .iter()
        .map(|b| {
            b.iter()
                .map(|k| (k.session_id.clone(), k.counters.octets_up, k.at_unix))
                .collect()
        })
        .collect();
    let t = |s: u64| T0 / SEC + s;
    assert_eq!(
        rounds,
        vec![
            vec![(acct_a.clone(), 900, t(10))],
            vec![(acct_a, 1200, t(20))],
            vec![(acct_b, 7, t(30))],
        ]
    );
    assert_eq!(r.core.aaa_stats().last_known_rounds, 3);
    assert_eq!(r.core.aaa_stats().last_known, 3);
    // No accounting record came of it: the checkpoint is for the spool only.
    assert!(r.account.iter().all(|x| x.status == AcctStatusType::Start));
}

fn static_request(
    user: &str,
    address: &str,
) -> tollgate_control_core::gateway::sessions::SessionRequest {
    tollgate_control_core::gateway::sessions::SessionRequest {
        user: user.into(),
        address: ip(address),
        mac: None,
        channel: None,
        services: tollgate_dataplane::session::ServiceSet::ALL,
        bandwidth: Default::default(),
        limits: Default::default(),
        max_flows: 0,
    }
}

fn count(r: &Rig, status: AcctStatusType) -> usize {
    r.account.iter().filter(|a| a.status == status).count()
}

#[test]
fn a_session_past_its_workers_capacity_is_refused_with_no_records() {
    let cfg = CONFIG.replace("[aaa]\n", "[subscribers]\nmax_sessions = 1\n[aaa]\n");
    let mut r = Rig::with(&cfg);
    // Two workers: 10.10.0.12, .14 and .16 belong to worker 0.
    r.core
        .open_session(r.now, static_request("a", "10.10.0.12"))
        .unwrap();
    r.drain();
    let e = r
        .core
        .open_session(r.now, static_request("b", "10.10.0.14"))
        .unwrap_err();
    assert_eq!(
        e,
        tollgate_control_core::gateway::sessions::SessionError::WorkerFull {
            worker: 0,
            capacity: 1
        }
    );
    assert_eq!(
        e.to_string(),
        "worker 0's session table is full (1 sessions, subscribers.max_sessions)"
    );
    let e = r
        .login(with_address("10.10.0.16"), "c", Authorization::default())
        .unwrap_err();
    assert!(e.contains("worker 0's session table is full"), "{e}");
    r.drain();
    assert_eq!(r.installed.len(), 1, "nothing more went to the worker");
    assert_eq!(count(&r, AcctStatusType::Start), 1);
    assert_eq!(count(&r, AcctStatusType::Stop), 0);
    assert!(r.logs.is_empty(), "no session record");
    assert_eq!(r.core.sessions().len(), 1);
    // Worker 1 has room.
    r.core
        .open_session(r.now, static_request("d", "10.10.0.13"))
        .unwrap();
    r.drain();
    assert_eq!(count(&r, AcctStatusType::Start), 2);
}

#[test]
fn every_path_checks_subscriber_addresses_alike() {
    let mut r = Rig::new();
    for (bad, why) in [
        ("10.10.0.1", "the gateway's own address"),
        ("192.0.2.1", "the gateway's own address"),
        (
            "10.10.0.0",
            "network address of the access subnet 10.10.0.0/24",
        ),
        (
            "10.10.0.255",
            "broadcast address of the access subnet 10.10.0.0/24",
        ),
        (
            "10.10.1.7",
            "outside the access subnet 10.10.0.0/24 and every address pool",
        ),
        ("224.0.0.9", "not a unicast address"),
        ("255.255.255.255", "not a unicast address"),
    ] {
        // ctl session add and static config sessions.
        let e = r
            .core
            .open_session(r.now, static_request("x", bad))
            .unwrap_err();
        assert!(e.to_string().contains(why), "{bad}: {e}");
        // A login with its own address (ctl session login, first packet).
        let e = r.core.login(r.now, with_address(bad)).unwrap_err();
        assert!(e.contains(why), "{bad}: {e}");
        // RADIUS Framed-IP-Address (or the local store's framed_ip).
        let e = r
            .login(
                LoginRequest {
                    user: Some("y".into()),
                    password: Some("pw".into()),
                    ..LoginRequest::default()
                },
                "y",
                Authorization {
                    framed_ip: Some(ip(bad)),
                    ..Authorization::default()
                },
            )
            .unwrap_err();
        assert!(e.contains(why), "{bad}: {e}");
    }
    for user in ["", "a\0b"] {
        let e = r
            .core
            .open_session(r.now, static_request(user, "10.10.0.20"))
            .unwrap_err();
        assert!(
            e.to_string().contains("must not be empty or contain NUL"),
            "{e}"
        );
    }
    r.drain();
    assert!(r.installed.is_empty());
    assert!(r.account.is_empty(), "no Start, no Stop");
    assert_eq!(
        r.core.pools().pools[0].ranges[0].assigned,
        0,
        "nothing held"
    );
    // A pool address and a host of the subnet are fine, however they come.
    r.core
        .open_session(r.now, static_request("s", "10.10.0.100"))
        .unwrap();
    let l = r
        .login(
            LoginRequest {
                user: Some("y".into()),
                ..LoginRequest::default()
            },
            "y",
            Authorization {
                framed_ip: Some(ip("10.10.0.254")),
                ..Authorization::default()
            },
        )
        .unwrap();
    assert_eq!(l.address, ip("10.10.0.254"));
}
