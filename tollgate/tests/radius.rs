//! RADIUS against a real FreeRADIUS on loopback: Access-Request accepted and rejected,
//! Message-Authenticator checked, accounting landing in the detail file with exact
//! counters, failover from a dead server, FreeRADIUS stopped and restarted mid-run with
//! the spool delivering every record once, and radclient sending CoA/Disconnect to our
//! listener.

mod support;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use support::freeradius::{self, FreeRadius, SECRET};
use tollgate_control::aaa::udp::UdpClient;
use tollgate_control::spool::{Spool, SpoolOptions};
use tollgate_control_core::authz::LoginVictim;
use tollgate_control_core::radius::attrs::{self, AcctRecord, Counters, NasIdentity};
use tollgate_control_core::radius::dict::{AcctStatusType, DisconnectCause};
use tollgate_control_core::radius::{Client, ClientEvent, Code, Options, RequestId, ServerConfig};
use tollgate_dataplane::time::Instant;

fn nas() -> NasIdentity {
    NasIdentity {
        identifier: "tollgate-test".into(),
        ip: Some(Ipv4Addr::new(127, 0, 0, 1)),
    }
}

fn server(addr: SocketAddr) -> ServerConfig {
    ServerConfig {
        timeout: Duration::from_millis(300),
        retries: 1,
        ..ServerConfig::new(addr, SECRET)
    }
}

fn os_random() -> tollgate_control::random::Random {
    tollgate_control::random::Random::new(&tollgate_control::os_random::seed().unwrap())
}

fn udp(servers: Vec<ServerConfig>) -> UdpClient {
    let opts = Options {
        hold_down: Duration::from_secs(2),
        ..Options::default()
    };
    UdpClient::bind(
        "127.0.0.1:0".parse().unwrap(),
        Client::with_options(servers, opts, os_random()),
    )
    .unwrap()
}

/// Pumps until `id` has an outcome (or 10 s).
fn wait_for(c: &mut UdpClient, id: RequestId) -> ClientEvent {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        c.pump(Instant::now());
        while let Some(e) = c.client.poll_event() {
            match &e {
                ClientEvent::Reply { id: i, .. } | ClientEvent::Failed { id: i, .. }
                    if *i == id =>
                {
                    return e;
                }
                _ => {}
            }
        }
        assert!(Instant::now() < deadline, "no outcome for request {id}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn reply(e: ClientEvent) -> tollgate_control_core::radius::Packet {
    match e {
        ClientEvent::Reply { packet, .. } => packet,
        other => panic!("expected a reply, got {other:?}"),
    }
}

#[test]
#[ignore = "needs FreeRADIUS: `make host-test` runs it"]
fn access_accept_carries_every_attribute() {
    let fr = FreeRadius::start();
    let mut c = udp(vec![server(fr.auth)]);
    let id = c.client.send(
        Instant::now(),
        attrs::access_request(&nas(), "alice", b"wonderland", Some("02:00:00:00:00:0a")),
    );
    let p = reply(wait_for(&mut c, id));
    assert_eq!(p.code, Code::AccessAccept, "{}", fr.log());
    // The reply passed Response Authenticator and Message-Authenticator checks.
    assert!(
        p.get(tollgate_control_core::radius::dict::std_attr::MESSAGE_AUTHENTICATOR)
            .is_some()
    );
    let a = attrs::authorization(&p).unwrap();
    assert_eq!(a.framed_ip, Some(Ipv4Addr::new(10, 10, 0, 50)));
    assert_eq!(a.conditions.session_time_s, Some(3600));
    assert_eq!(a.conditions.idle_time_s, Some(300));
    assert_eq!(a.interim_interval_s, Some(60));
    assert_eq!(a.class, vec![b"gold-class".to_vec()]);
    assert_eq!(a.conditions.volume_bytes, Some(5 * (1 << 30)));
    assert_eq!(a.bandwidth_up, Some(10_000_000));
    assert_eq!(a.bandwidth_down, Some(50_000_000));
    assert_eq!(a.services, vec!["web", "mail"]);
    assert_eq!(a.conditions.max_logins, Some(2));
    assert_eq!(a.conditions.login_victim, LoginVictim::Order);
    assert_eq!(a.conditions.rate_ratio_percent, Some(60));
    assert_eq!(a.conditions.rate_window_s, Some(10));
    assert_eq!(a.conditions.app_timeout_s, Some(120));
    let s = c.client.stats();
    assert_eq!(
        (
            s.replies,
            s.bad_message_authenticator,
            s.missing_message_authenticator
        ),
        (1, 0, 0)
    );
    // FreeRADIUS saw our Message-Authenticator and checked it.
    assert!(fr.log().contains("Message-Authenticator"), "{}", fr.log());
}

#[test]
#[ignore = "needs FreeRADIUS: `make host-test` runs it"]
fn wrong_password_is_rejected() {
    let fr = FreeRadius::start();
    let mut c = udp(vec![server(fr.auth)]);
    let id = c.client.send(
        Instant::now(),
        attrs::access_request(&nas(), "bob", b"wrong", None),
    );
    assert_eq!(reply(wait_for(&mut c, id)).code, Code::AccessReject);
    let id = c.client.send(
        Instant::now(),
        attrs::access_request(&nas(), "bob", b"builder", None),
    );
    assert_eq!(reply(wait_for(&mut c, id)).code, Code::AccessAccept);
    let id = c.client.send(
        Instant::now(),
        attrs::access_request(&nas(), "nobody", b"x", None),
    );
    assert_eq!(reply(wait_for(&mut c, id)).code, Code::AccessReject);
}

#[test]
#[ignore = "needs FreeRADIUS: `make host-test` runs it"]
fn a_client_with_the_wrong_secret_gets_nothing_it_accepts() {
    let fr = FreeRadius::start();
    let wrong = ServerConfig {
        secret: b"not-the-secret".to_vec(),
        ..server(fr.auth)
    };
    let mut c = udp(vec![wrong]);
    let id = c.client.send(
        Instant::now(),
        attrs::access_request(&nas(), "bob", b"builder", None),
    );
    // FreeRADIUS drops the request (its Message-Authenticator fails) or answers with
    // a reply we cannot verify: either way the request times out, never "accepted".
    assert!(matches!(wait_for(&mut c, id), ClientEvent::Failed { .. }));
}

fn record(
    session: &str,
    status: AcctStatusType,
    octets_up: u64,
    cause: Option<DisconnectCause>,
) -> AcctRecord {
    AcctRecord {
        status,
        session_id: session.into(),
        user_name: "alice".into(),
        framed_ip: Some(Ipv4Addr::new(10, 10, 0, 50)),
        calling_station_id: Some("02:00:00:00:00:0a".into()),
        class: vec![b"gold-class".to_vec()],
        counters: Counters {
            octets_up,
            octets_down: 12345,
            packets_up: 1000,
            packets_down: 2000,
        },
        session_time_s: 42,
        cause,
        event_time: 1_700_000_000,
        access: None,
        ipv6: None,
        tunnel: None,
    }
}

fn field<'a>(rec: &'a [(String, String)], name: &str) -> Option<&'a str> {
    rec.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

#[test]
#[ignore = "needs FreeRADIUS: `make host-test` runs it"]
fn accounting_lands_in_the_detail_file() {
    let fr = FreeRadius::start();
    let mut c = udp(vec![server(fr.acct)]);
    let big = 5 * (1u64 << 32) + 1234; // > 4 GiB: needs Gigawords
    let recs = [
        record("acct-1", AcctStatusType::Start, 0, None),
        record("acct-1", AcctStatusType::InterimUpdate, 1 << 20, None),
        record(
            "acct-1",
            AcctStatusType::Stop,
            big,
            Some(DisconnectCause::IdleTime),
        ),
    ];
    for r in &recs {
        let id = c
            .client
            .send(Instant::now(), r.to_request(&nas(), 1_700_000_003));
        match wait_for(&mut c, id) {
            ClientEvent::Reply { packet, .. } => assert_eq!(packet.code, Code::AccountingResponse),
            e => panic!("{e:?} {:?}\n{}", c.client.stats(), fr.log()),
        }
    }
    let detail = fr.detail();
    assert_eq!(detail.len(), 3, "{detail:?}");
    let stop = &detail[2];
    assert_eq!(field(stop, "Acct-Status-Type"), Some("Stop"));
    assert_eq!(field(stop, "Acct-Session-Id"), Some("acct-1"));
    assert_eq!(field(stop, "Acct-Input-Gigawords"), Some("5"));
    assert_eq!(field(stop, "Acct-Input-Octets"), Some("1234"));
    assert_eq!(field(stop, "Acct-Output-Octets"), Some("12345"));
    assert_eq!(field(stop, "Acct-Input-Packets"), Some("1000"));
    assert_eq!(field(stop, "Acct-Session-Time"), Some("42"));
    assert_eq!(field(stop, "Acct-Terminate-Cause"), Some("Idle-Timeout"));
    assert_eq!(field(stop, "Tollgate-Disconnect-Cause"), Some("Idle-Time"));
    assert_eq!(field(stop, "Class"), Some("0x676f6c642d636c617373"));
    assert_eq!(field(stop, "Acct-Delay-Time"), Some("3"));
    assert_eq!(field(stop, "NAS-Identifier"), Some("tollgate-test"));
    assert_eq!(
        field(&detail[1], "Acct-Status-Type"),
        Some("Interim-Update")
    );
    assert_eq!(field(&detail[1], "Acct-Input-Octets"), Some("1048576"));
    assert_eq!(field(&detail[0], "Acct-Status-Type"), Some("Start"));
}

#[test]
#[ignore = "needs FreeRADIUS: `make host-test` runs it"]
fn failover_from_a_dead_server() {
    let fr = FreeRadius::start();
    let dead = SocketAddr::from(([127, 0, 0, 1], freeradius::free_port()));
    let mut c = udp(vec![server(dead), server(fr.auth)]);
    let start = std::time::Instant::now();
    let id = c.client.send(
        Instant::now(),
        attrs::access_request(&nas(), "bob", b"builder", None),
    );
    match wait_for(&mut c, id) {
        ClientEvent::Reply { server, packet, .. } => {
            assert_eq!(server, fr.auth);
            assert_eq!(packet.code, Code::AccessAccept);
        }
        e => panic!("{e:?}"),
    }
    // Two tries of 300 ms on the dead server first.
    assert!(
        start.elapsed() >= Duration::from_millis(600),
        "{:?}",
        start.elapsed()
    );
    let s = c.client.stats();
    assert_eq!((s.retransmits, s.failovers), (1, 1));
    // The dead one is held down: the next request goes straight to FreeRADIUS.
    let t = std::time::Instant::now();
    let id = c.client.send(
        Instant::now(),
        attrs::access_request(&nas(), "bob", b"builder", None),
    );
    assert!(matches!(wait_for(&mut c, id), ClientEvent::Reply { .. }));
    assert!(t.elapsed() < Duration::from_millis(300));
}

/// One control-loop pass of the accounting path: spool -> client -> spool.
fn pump_accounting(spool: &mut Spool, c: &mut UdpClient, flight: &mut BTreeMap<RequestId, i64>) {
    let now = Instant::now();
    while let Some(due) = spool.next_due(now).unwrap() {
        let id = c
            .client
            .send(now, due.record.to_request(&nas(), 1_700_000_000));
        flight.insert(id, due.id);
    }
    c.pump(now);
    while let Some(e) = c.client.poll_event() {
        match e {
            ClientEvent::Reply { id, .. } => {
                if let Some(sid) = flight.remove(&id) {
                    spool.ack(now, sid).unwrap();
                }
            }
            ClientEvent::Failed { id, .. } => {
                if let Some(sid) = flight.remove(&id) {
                    spool.failed(now, sid);
                }
            }
            _ => {}
        }
    }
}

#[test]
#[ignore = "needs FreeRADIUS: `make host-test` runs it"]
fn server_restart_mid_run_delivers_every_record_once() {
    let mut fr = FreeRadius::start();
    let dir = tempfile::tempdir().unwrap();
    let mut spool = Spool::open(
        &dir.path().join("spool.db"),
        SpoolOptions {
            retry_min: Duration::from_millis(200),
            retry_max: Duration::from_millis(800),
            ..SpoolOptions::default()
        },
    )
    .unwrap();
    let mut c = udp(vec![server(fr.acct)]);
    let mut flight = BTreeMap::new();
    let mut expected = Vec::new();
    for round in 0..3 {
        for s in 0..20 {
            let sid = format!("r{round}-s{s}");
            for (status, cause) in [
                (AcctStatusType::Start, None),
                (AcctStatusType::InterimUpdate, None),
                (AcctStatusType::Stop, Some(DisconnectCause::Logout)),
            ] {
                spool
                    .enqueue(Instant::now(), &record(&sid, status, s, cause))
                    .unwrap();
                expected.push((sid.clone(), status.name().to_string()));
            }
            pump_accounting(&mut spool, &mut c, &mut flight);
        }
        if round == 0 {
            // Stop FreeRADIUS while records are in flight; keep producing.
            fr.stop();
        }
        if round == 1 {
            // Let some requests time out and back off, then bring it back.
            let until = std::time::Instant::now() + Duration::from_millis(1500);
            while std::time::Instant::now() < until {
                pump_accounting(&mut spool, &mut c, &mut flight);
                std::thread::sleep(Duration::from_millis(2));
            }
            fr.run();
        }
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while spool.pending().unwrap() > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "{} records left",
            spool.pending().unwrap()
        );
        pump_accounting(&mut spool, &mut c, &mut flight);
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(spool.stats().failed_attempts > 0, "the outage was noticed");
    let mut got: Vec<(String, String)> = fr
        .detail()
        .iter()
        .map(|r| {
            (
                field(r, "Acct-Session-Id").unwrap_or("").to_string(),
                field(r, "Acct-Status-Type").unwrap_or("").to_string(),
            )
        })
        .collect();
    // A request FreeRADIUS logged but whose answer was lost when it stopped could be
    // sent again; the detail file then has it twice. Count exact duplicates separately.
    let total = got.len();
    got.sort();
    got.dedup();
    expected.sort();
    assert_eq!(got, expected, "every record reached the server");
    assert_eq!(total, expected.len(), "and each exactly once");
}

/// A SessionDirectory for the CoA test: one live session.
struct OneSession {
    live: Option<String>,
    changed: Vec<tollgate_control_core::authz::Authorization>,
}

impl tollgate_control_core::radius::coa::SessionDirectory for OneSession {
    fn disconnect(
        &mut self,
        who: &tollgate_control_core::radius::coa::SessionRef,
    ) -> Result<(), tollgate_control_core::radius::dict::ErrorCause> {
        if who.session_id.is_some() && who.session_id == self.live {
            self.live = None;
            Ok(())
        } else {
            Err(tollgate_control_core::radius::dict::ErrorCause::SessionContextNotFound)
        }
    }
    fn change(
        &mut self,
        who: &tollgate_control_core::radius::coa::SessionRef,
        change: &tollgate_control_core::radius::coa::Change,
    ) -> Result<(), tollgate_control_core::radius::dict::ErrorCause> {
        if who.session_id.is_none() || who.session_id != self.live {
            return Err(tollgate_control_core::radius::dict::ErrorCause::SessionContextNotFound);
        }
        let mut a = tollgate_control_core::authz::Authorization::default();
        change
            .apply(&mut a)
            .map_err(|_| tollgate_control_core::radius::dict::ErrorCause::InvalidAttributeValue)?;
        self.changed.push(a);
        Ok(())
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Runs radclient against our listener while the listener is pumped; returns its
/// output. The request carries an Event-Timestamp of now when `stamped`.
fn radclient(
    listener: &mut tollgate_control::aaa::udp::UdpCoaListener,
    sessions: &mut OneSession,
    dict_dir: &std::path::Path,
    kind: &str,
    secret: &str,
    attrs: &str,
    stamped: bool,
) -> (bool, String) {
    use std::io::Write;
    let attrs = if stamped {
        format!("{attrs}Event-Timestamp = {}\n", unix_now())
    } else {
        attrs.to_string()
    };
    let addr = listener.local_addr().unwrap();
    let mut child = std::process::Command::new("radclient")
        .args(["-x", "-r", "1", "-t", "1", "-d"])
        .arg(dict_dir)
        .arg(addr.to_string())
        .arg(kind)
        .arg(secret)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("radclient");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(attrs.as_bytes())
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        listener.pump(unix_now(), sessions);
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "radclient hangs");
        std::thread::sleep(Duration::from_millis(1));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
#[ignore = "needs radclient (freeradius-utils): `make host-test` runs it"]
fn radclient_coa_and_disconnect() {
    assert!(
        which("radclient").is_some(),
        "radclient is not installed (apt-get install freeradius-utils)"
    );
    use tollgate_control::aaa::udp::UdpCoaListener;
    use tollgate_control_core::radius::coa::{CoaClient, Listener};
    // radclient needs a dictionary directory: ours plus FreeRADIUS's standard one.
    let dict_dir = tempfile::tempdir().unwrap();
    let ours =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/dictionary.tollgate");
    std::fs::write(
        dict_dir.path().join("dictionary"),
        format!(
            "$INCLUDE /usr/share/freeradius/dictionary\n$INCLUDE {}\n",
            ours.canonicalize().unwrap().display()
        ),
    )
    .unwrap();
    let listener = Listener::new(
        vec![CoaClient {
            addr: "127.0.0.1".parse().unwrap(),
            secret: b"coa-secret".to_vec(),
            require_message_authenticator: false,
            require_event_timestamp: true,
        }],
        nas(),
    );
    let mut l = UdpCoaListener::bind("127.0.0.1:0".parse().unwrap(), listener).unwrap();
    let mut sessions = OneSession {
        live: Some("sess-42".into()),
        changed: Vec::new(),
    };
    // CoA for the live session: ACK, with the new limits applied.
    let (ok, out) = radclient(
        &mut l,
        &mut sessions,
        dict_dir.path(),
        "coa",
        "coa-secret",
        "Acct-Session-Id = \"sess-42\"\nTollgate-Bandwidth-Down = 2000000\nSession-Timeout = 600\n",
        true,
    );
    assert!(ok && out.contains("CoA-ACK"), "{out}");
    assert_eq!(sessions.changed[0].bandwidth_down, Some(2_000_000));
    assert_eq!(sessions.changed[0].conditions.session_time_s, Some(600));
    // Disconnect for an unknown session: NAK with Error-Cause 503.
    let (_, out) = radclient(
        &mut l,
        &mut sessions,
        dict_dir.path(),
        "disconnect",
        "coa-secret",
        "Acct-Session-Id = \"no-such\"\n",
        true,
    );
    assert!(out.contains("Disconnect-NAK"), "{out}");
    assert!(out.contains("Session-Context-Not-Found"), "{out}");
    // Disconnect for the live one: ACK, and it is gone.
    let (ok, out) = radclient(
        &mut l,
        &mut sessions,
        dict_dir.path(),
        "disconnect",
        "coa-secret",
        "Acct-Session-Id = \"sess-42\"\nUser-Name = \"alice\"\n",
        true,
    );
    assert!(ok && out.contains("Disconnect-ACK"), "{out}");
    assert_eq!(sessions.live, None);
    // Wrong secret: no answer at all, counted.
    sessions.live = Some("sess-43".into());
    let (ok, out) = radclient(
        &mut l,
        &mut sessions,
        dict_dir.path(),
        "disconnect",
        "wrong-secret",
        "Acct-Session-Id = \"sess-43\"\n",
        true,
    );
    assert!(!ok, "{out}");
    assert!(
        !out.contains("Disconnect-ACK") && !out.contains("Disconnect-NAK"),
        "{out}"
    );
    assert_eq!(sessions.live.as_deref(), Some("sess-43"));
    // No Event-Timestamp: no answer either (replay protection, required by default).
    let (ok, out) = radclient(
        &mut l,
        &mut sessions,
        dict_dir.path(),
        "disconnect",
        "coa-secret",
        "Acct-Session-Id = \"sess-43\"\n",
        false,
    );
    assert!(!ok && !out.contains("Disconnect-ACK"), "{out}");
    assert_eq!(sessions.live.as_deref(), Some("sess-43"));
    let st = l.listener.stats();
    assert!(st.bad_authenticator >= 1, "{st:?}");
    assert!(st.missing_event_timestamp >= 1, "{st:?}");
    assert_eq!((st.acks, st.naks), (2, 1));
}

fn which(cmd: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(cmd))
            .find(|p| p.exists())
    })
}
