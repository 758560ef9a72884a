//! Every request and a reply of each kind through serde, and the documented examples
//! of docs/ctl.md byte for byte.

use super::*;
use serde_json::json;

/// One request of each variant.
fn every_request() -> Vec<Request> {
    let sub: StaticSubscriber = serde_json::from_value(json!({
        "user": "alice", "address": "10.10.0.20", "services": ["web"],
        "bandwidth_up": "10M", "idle_timeout_s": 600
    }))
    .unwrap();
    vec![
        Request::Help,
        Request::ShowStatus,
        Request::ShowPorts,
        Request::ShowWorkers,
        Request::ShowCounters,
        Request::ShowNeighbors,
        Request::ShowSessions,
        Request::ShowSession(SessionArg {
            session: "10.10.0.20".into(),
        }),
        Request::ShowServices,
        Request::ShowLb,
        Request::ShowAccounting,
        Request::ShowHealth,
        Request::ShowCluster,
        Request::ShowPools,
        Request::ShowLogins,
        Request::ShowTunnels,
        Request::ShowTunnel(TunnelArg { tunnel: 38743 }),
        Request::ShowInvoice {
            account: "acme".into(),
            period: Some("2024-05".into()),
        },
        Request::ShowInvoice {
            account: "acme".into(),
            period: None,
        },
        Request::SessionAdd(Box::new(sub)),
        Request::SessionRemove(SessionEnd {
            session: "3".into(),
            cause: Some("user_request".into()),
        }),
        Request::SessionUpdate(Box::new(SessionChange {
            session: "3".into(),
            bandwidth_up: None,
            bandwidth_down: Some(Rate(100_000_000)),
            services: Some(vec!["web".into()]),
            limits: LimitsConfig {
                idle_timeout_s: Some(60),
                ..LimitsConfig::default()
            },
        })),
        Request::SessionLogin(Login {
            user: Some("bob".into()),
            password: Some("builder".into()),
            address: Some("10.10.0.30".parse().unwrap()),
            ..Login::default()
        }),
        Request::SessionLogin(Login {
            mac: Some(Mac::try_from("02:10:00:00:00:21".to_string()).unwrap()),
            mobile_id: Some("440101234567890".into()),
            channel: Some(7),
            ..Login::default()
        }),
        Request::SessionLogout(Logout {
            user: Some("bob".into()),
            cause: Some("admin_reset".into()),
            ..Logout::default()
        }),
        Request::ServerSet(ServerChange {
            service: "web".into(),
            server: "1".into(),
            state: Some("down".into()),
            response_us: Some(850),
            cpu_load: Some(40),
        }),
        Request::LbSet(LbChange {
            mac: "02:aa:00:00:00:01".into(),
            state: "down".into(),
        }),
        Request::SubscriberAdd(SubscriberAdd {
            record: json!({"user_id": "carol", "password": "s3cret"}),
            replace: true,
        }),
        Request::SubscriberRemove(UserArg {
            user: "carol".into(),
        }),
        Request::SubscriberShow(UserArg {
            user: "carol".into(),
        }),
        Request::SubscriberList,
        Request::SubscriberImport(SubscriberImport {
            text: "user_id,password\ncarol,x\n".into(),
            file: "subscribers.csv".into(),
            format: Some("csv".into()),
            replace: false,
        }),
        Request::TunnelSessionRemove(TunnelKey {
            session: "4".into(),
            level: None,
        }),
        Request::TunnelSessionLevel(TunnelKey {
            session: "10.10.0.21".into(),
            level: Some(Rate(5_000_000)),
        }),
        Request::BillingStatus,
        Request::BillingClosePeriod { period: None },
        Request::BillingClosePeriod {
            period: Some("2024-05".into()),
        },
        Request::BillingInvoice {
            account: "acme".into(),
            period: None,
        },
        Request::BillingInvoices {
            period: Some("2024-05".into()),
        },
        Request::BillingRerate {
            period: "2024-05".into(),
        },
        Request::BillingImport(BillingImport {
            records: vec![json!({"kind": "session"})],
            import: Some("ab12".into()),
            part: Some(0),
            more: Some(true),
        }),
    ]
}

#[test]
fn every_request_goes_through_the_wire_and_back() {
    let all = every_request();
    for r in &all {
        let line = r.to_line();
        let back = parse_request(&line).unwrap_or_else(|e| panic!("{line}: {e}"));
        assert_eq!(back.to_line(), line, "{r:?}");
        assert_eq!(back.name(), r.name());
        assert!(line.contains(&format!("\"cmd\":\"{}", r.name())), "{line}");
        // serde's own entry points agree with to_line/parse_request.
        assert_eq!(serde_json::to_string(r).unwrap(), line);
        let de: Request = serde_json::from_str(&line).unwrap();
        assert_eq!(de.to_line(), line);
    }
    // Every command of `help` has a variant (the billing ones are words + arguments).
    let names: Vec<&str> = all.iter().map(Request::name).collect();
    for (c, _) in crate::proto::help::GATEWAY
        .iter()
        .chain(crate::proto::help::L2TP)
        .chain(crate::proto::help::BILLING)
    {
        let name = c
            .split_whitespace()
            .take_while(|w| {
                !w.chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_uppercase() || c == '[')
            })
            .collect::<Vec<_>>()
            .join(" ");
        assert!(names.contains(&name.as_str()), "{c}: no variant");
    }
}

/// The request lines docs/ctl.md shows, byte for byte as `tollgate ctl` sends them
/// (arguments in the order of their names, as the client always sent them).
#[test]
fn documented_requests_byte_for_byte() {
    assert_eq!(
        Request::ShowCounters.to_line(),
        r#"{"cmd":"show counters"}"#
    );
    assert_eq!(Request::ShowStatus.to_line(), r#"{"cmd":"show status"}"#);
    let set = parse_request(
        r#"{"cmd": "server set", "args": {"service": "web", "server": "1", "state": "down"}}"#,
    )
    .unwrap();
    assert_eq!(
        set.to_line(),
        r#"{"cmd":"server set","args":{"server":"1","service":"web","state":"down"}}"#
    );
    let login = parse_request(
        r#"{"cmd": "session login", "args": {"user": "bob", "password": "builder", "address": "10.10.0.30"}}"#,
    )
    .unwrap();
    assert_eq!(
        login.to_line(),
        r#"{"cmd":"session login","args":{"address":"10.10.0.30","password":"builder","user":"bob"}}"#
    );
    let lb = Request::LbSet(LbChange {
        mac: "02:aa:00:00:00:01".into(),
        state: "down".into(),
    });
    assert_eq!(
        lb.to_line(),
        r#"{"cmd":"lb set","args":{"mac":"02:aa:00:00:00:01","state":"down"}}"#
    );
    let inv = Request::ShowInvoice {
        account: "acme".into(),
        period: Some("2024-05".into()),
    };
    assert_eq!(inv.to_line(), r#"{"cmd":"show invoice acme 2024-05"}"#);
    let part = Request::BillingImport(BillingImport {
        records: vec![],
        import: Some("ID".into()),
        part: Some(0),
        more: Some(true),
    });
    assert_eq!(
        part.to_line(),
        r#"{"cmd":"billing import","args":{"import":"ID","more":true,"part":0,"records":[]}}"#
    );
    // The session add of the docs: rates as text or numbers, the config's keys.
    let add = parse_request(
        r#"{"cmd": "session add", "args": {"user": "alice", "address": "10.10.0.20", "services": ["web"], "bandwidth_up": "10M", "idle_timeout_s": 600}}"#,
    )
    .unwrap();
    let Request::SessionAdd(s) = add else {
        panic!("{add:?}")
    };
    assert_eq!(s.bandwidth_up, Rate(10_000_000));
    assert_eq!(s.limits.idle_timeout_s, Some(600));
    assert_eq!(s.services.as_deref(), Some(&["web".to_string()][..]));
}

#[test]
fn words_spaces_and_args_as_before() {
    let r = parse_request(r#"{"cmd":"  show   status ","args":{}}"#).unwrap();
    assert_eq!(r.name(), "show status");
    // A command without arguments does not look at them.
    assert!(parse_request(r#"{"cmd":"show neighbors","args":{"x":1}}"#).is_ok());
    assert_eq!(
        parse_request(r#"{"cmd":"show neighbours"}"#)
            .unwrap()
            .name(),
        "show neighbors"
    );
    let r = parse_request(r#"{"cmd":"billing close-period"}"#).unwrap();
    assert!(matches!(r, Request::BillingClosePeriod { period: None }));
    // Logout's arguments are all optional: no args at all is an empty object.
    assert!(matches!(
        parse_request(r#"{"cmd":"session logout"}"#).unwrap(),
        Request::SessionLogout(_)
    ));
}

#[test]
fn refusals_say_what_is_wrong() {
    let err = |l: &str| parse_request(l).unwrap_err();
    assert!(err("not json").starts_with("malformed request"));
    assert_eq!(err(r#"{"cmd":""}"#), "malformed request: `cmd` is empty");
    assert!(err(r#"{"cmd":"show status","extra":1}"#).starts_with("malformed request"));
    assert!(err(r#"{"cmd":5}"#).starts_with("malformed request"));
    assert!(err("[1]").starts_with("malformed request"));
    assert_eq!(
        err(r#"{"cmd":"frobnicate"}"#),
        "unknown command `frobnicate`; `help` lists the commands"
    );
    assert!(err(r#"{"cmd":"show nonsense"}"#).contains("try status, ports"));
    assert!(err(r#"{"cmd":"tunnel go"}"#).contains("try tunnel session remove or level"));
    // An older client's `tunnel session add` (the removed IP mode) is told why and where
    // to look, whatever its arguments.
    assert_eq!(
        err(r#"{"cmd":"tunnel session add","args":{"address":"10.10.0.21","customer":"acme"}}"#),
        TUNNEL_SESSION_ADD_REMOVED
    );
    assert!(TUNNEL_SESSION_ADD_REMOVED.contains("Migration from IP subscribers"));
    assert!(
        err(r#"{"cmd":"billing frob"}"#)
            .starts_with("unknown billing command `billing frob`; try: billing status")
    );
    assert!(err(r#"{"cmd":"billing rerate"}"#).starts_with("unknown billing command"));
    let e = err(r#"{"cmd":"session remove","args":{"session":"1","bogus":2}}"#);
    assert!(
        e.starts_with("bad arguments for `session remove`: unknown field `bogus`"),
        "{e}"
    );
    let e = err(r#"{"cmd":"show session"}"#);
    assert!(
        e.starts_with("bad arguments for `show session`: missing field `session`"),
        "{e}"
    );
    let e = err(
        r#"{"cmd":"session add","args":{"user":"a","address":"10.0.0.1","bandwidth_up":"10X"}}"#,
    );
    assert!(e.contains("is not a rate"), "{e}");
    let e = err(r#"{"cmd":"billing import","args":{}}"#);
    assert!(e.starts_with("billing import takes args"), "{e}");
    let r = Reply::error("nope");
    assert_eq!(r.to_line(), r#"{"ok":false,"error":"nope"}"#);
}

/// A reply of each kind: the daemon's JSON read back into its type gives the same JSON.
fn round_trip(req: &Request, data: Value) {
    let line = Reply::ok(data.clone()).to_line();
    let reply: Reply = serde_json::from_str(&line).unwrap();
    let a = Answer::parse(req, reply.data).unwrap_or_else(|e| panic!("{}: {e}", req.name()));
    assert_eq!(
        serde_json::to_value(&a).unwrap(),
        data,
        "{}: {a:?}",
        req.name()
    );
    assert_eq!(Reply::with(&a).to_line(), line, "{}", req.name());
}

fn doc(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

#[test]
fn a_reply_of_each_kind_round_trips() {
    let status = doc(
        r#"{"version": "0.1.0", "pid": 4242, "config": "<embedded default>",
 "socket": "/run/tollgate/ctl.sock", "uptime_s": 73, "workers": 1, "backend": "af_packet",
 "rx_packets": 41233, "tx_packets": 41230, "drops": 3, "neighbors": 4}"#,
    );
    round_trip(&Request::ShowStatus, status);
    round_trip(
        &Request::Help,
        json!([{"command": "help", "description": "list the commands"}]),
    );
    round_trip(
        &Request::ShowPorts,
        json!([{"side": "access", "backend": "af_packet", "interface": "acc0", "mac": "1a:2b:3c:4d:5e:6f",
  "address": "10.10.0.1/24", "rx_packets": 20110, "rx_bytes": 1407700, "tx_packets": 21120,
  "tx_bytes": 31680000, "rx_dropped": 560, "rx_late": 0, "rx_too_big": 0, "rx_no_buffer": 0,
  "rx_to_kernel": 0, "rx_max_wait_ms": 212.4, "tx_errors": 0, "rx_loss": "560 dropped"},
  {"side": "core", "backend": "af_packet", "interface": null, "mac": "1a:2b:3c:4d:5e:70",
  "address": "192.0.2.1/24", "rx_packets": 0, "rx_bytes": 0, "tx_packets": 0,
  "tx_bytes": 0, "rx_dropped": 0, "rx_late": 0, "rx_too_big": 0, "rx_no_buffer": 0,
  "rx_to_kernel": 0, "rx_max_wait_ms": 0.0, "tx_errors": 0, "rx_loss": null}]),
    );
    round_trip(
        &Request::ShowWorkers,
        json!([{"worker": 0, "cpu": 1, "reported": true, "polls": 1882211, "busy_polls": 10032,
  "busy_pct": 0.5, "rx_packets": 41233, "tx_packets": 41230, "drops": 3, "held": 0,
  "neighbors": 4, "sessions": 2, "flows": 3, "report_age_ms": 0},
  {"worker": 1, "cpu": null, "reported": false}]),
    );
    round_trip(
        &Request::ShowCounters,
        json!({"sides": {"access": {"rx_packets": 1, "rx_bytes": 2, "tx_packets": 3, "tx_bytes": 4},
           "core":   {"rx_packets": 5, "rx_bytes": 6, "tx_packets": 7, "tx_bytes": 8}},
 "drops": {"eth_too_short": 0, "no_route": 2}, "drops_total": 2,
 "engine": {"forwarded": 9, "held_now": 0},
 "control": {"punts": 0, "punts_malformed": 0, "events": 0, "arp_requests": 0,
             "neighbors_installed": 0, "flow_limits": 0, "nat_ports_exhausted": 0,
             "command_retries": 0, "commands_dropped": 0, "injects_dropped": 0}}),
    );
    round_trip(
        &Request::ShowNeighbors,
        doc(
            r#"[{"address": "10.10.0.11", "side": "access", "mac": "02:10:00:00:00:11",
  "state": "reachable", "age_s": 12},
 {"address": "192.0.2.254", "side": "core", "mac": null, "state": "failed", "age_s": 1}]"#,
        ),
    );
    let open = json!({"session": 1, "state": "open", "user": "sub1", "address": "10.10.0.11",
 "mac": "02:10:00:00:00:11", "channel": 1, "worker": 0,
 "start": "2026-11-23T09:12:00.000Z", "age_s": 42,
 "bandwidth_up": 0, "bandwidth_down": 0, "services": ["web"],
 "ses_state": "act", "acct_session_id": "19aa0c3e1f2-1",
 "counters": {"tx_packets": 10, "tx_bytes": 840, "rx_packets": 9, "rx_bytes": 7020}});
    let key = Request::ShowSession(SessionArg {
        session: "1".into(),
    });
    round_trip(&key, open.clone());
    round_trip(&Request::ShowSessions, json!([open]));
    // With IPv6 (issue 16): the per-family shares beside the total.
    let mut dual = open.clone();
    dual["counters_ipv4"] =
        json!({"tx_packets": 8, "tx_bytes": 640, "rx_packets": 9, "rx_bytes": 7020});
    dual["counters_ipv6"] =
        json!({"tx_packets": 2, "tx_bytes": 200, "rx_packets": 0, "rx_bytes": 0});
    round_trip(&key, dual);
    round_trip(
        &key,
        json!({"session": 2, "state": "ended", "user": "sub1", "address": "10.10.0.11",
 "mac": null, "channel": 2, "start": "2026-11-23T09:12:00.000Z",
 "stop": "2026-11-23T09:13:00.000Z", "cause": "admin_reset",
 "counters": {"tx_packets": 0, "tx_bytes": 0, "rx_packets": 0, "rx_bytes": 0}}),
    );
    round_trip(&key, json!({"session": 9, "state": "unknown"}));
    round_trip(
        &Request::ShowServices,
        json!([{"service": "web", "vip": "198.51.100.10", "protocol": "tcp", "port": 80,
        "policy": "round_robin", "session_type": "login",
        "servers": [{"server": 0, "address": "192.0.2.21", "port": 8080, "state": "up",
                     "weight": 1, "priority": 0, "response_us": 0, "cpu_load": 0}]}]),
    );
    round_trip(
        &Request::ShowLb,
        json!([{"first": "10.10.0.100", "last": "10.10.0.199", "chosen": null,
        "targets": [{"mac": "02:aa:00:00:00:01", "state": "down"}]}]),
    );
    round_trip(
        &Request::ShowAccounting,
        json!({"auth": "radius",
        "spool": {"pending": 2, "in_flight": 1, "enqueued": 40, "acked": 37, "failed_attempts": 3,
          "recovered": 0, "unsaved": 0, "set_aside": 0, "left_out": 0, "last_known": 5,
          "last_known_commits": 12, "last_known_commit_us": 840, "commit_errors": 0},
        "radius_auth_servers": [{"server": "192.0.2.10:1812", "state": "up"}],
        "radius_acct_servers": [{"server": "192.0.2.10:1813", "state": "held_down"}],
        "radius_auth": {"requests": 9, "replies": 9, "retransmits": 0, "failed": 0,
          "challenges": 0, "replies_dropped": {"bad_authenticator": 0,
          "bad_message_authenticator": 0, "missing_message_authenticator": 0, "malformed": 0,
          "wrong_code": 0, "unknown_source": 0, "unmatched": 0}},
        "radius_acct": {"requests": 40, "replies": 37, "retransmits": 6, "failed": 3,
          "replies_dropped": {"bad_authenticator": 1, "bad_message_authenticator": 0,
          "missing_message_authenticator": 0, "malformed": 0, "wrong_code": 0,
          "unknown_source": 0, "unmatched": 2}},
        "coa": {"listen": "0.0.0.0:3799", "requests": 2, "acks": 1, "naks": 1, "dropped": 0,
          "duplicates": 0, "cache_full": 0}}),
    );
    round_trip(
        &Request::ShowHealth,
        json!([{"target": "web0", "address": "192.0.2.21", "check": "tcp:8080", "state": "up",
        "rtt_us": 120, "passed": 3, "failed": 0, "last_error": null}]),
    );
    round_trip(
        &Request::ShowPools,
        json!([{"pool": "main", "ranges": [{"first": "10.10.1.0", "last": "10.10.1.255",
        "size": 256, "assigned": 3, "node": null, "node_state": null}]}]),
    );
    round_trip(
        &Request::ShowLogins,
        json!({"sessions": {"act": 2, "dormant": 1}, "logins_pending": 0, "logins": 5,
        "accepted": 4, "rejected": 1, "unavailable": 0, "busy": 0, "failed": 0, "resumed": 0,
        "login_victims": 0, "accounting": {"starts": 4, "interims": 0, "stops": 1,
        "spooled": 5, "sent": 5, "done": 5, "last_known_rounds": 0, "last_known": 0},
        "dormant_transitions": 1}),
    );
    let row = json!({"tunnel": 38743, "peer_tunnel": 19089, "role": "lac", "state": "established",
              "peer": "172.16.0.2:1701", "local": "172.16.0.1", "peer_host": "tollgate-lns",
              "line": "line1", "customer": "acme", "sessions": 4, "max_sessions": 4,
              "bandwidth": 7000000, "max_bandwidth": 10000000, "age_s": 40,
              "stop_reason": null, "consolidation": "on"});
    round_trip(
        &Request::ShowTunnels,
        json!({"host_name": "tollgate-lac", "accept": false, "settled": true,
 "lines": [{"line": "line1", "peer": "172.16.0.2:1701", "tunnels": 3, "max_tunnels": 8,
            "tunnel_sessions": 4, "tunnel_bandwidth": 10000000}],
 "customers": [{"customer": "acme", "account": "acme", "consolidate": true,
                "sessions": 4, "tunnels": 1, "lines": 1}],
 "tunnels": [row.clone()],
 "waiting": [{"call": 3, "address": "10.10.0.21", "user": "u", "state": "waiting", "failures": 2,
              "retry_in_ms": 4000}],
 "stats": serde_json::to_value(L2tpStats::default()).unwrap()}),
    );
    let mut detail = row;
    detail["control"] = json!({"ns": 5, "nr": 4, "unacked": 0, "peer_window": 4, "sent": 5,
        "retransmits": 0, "zlbs": 1, "delivered": 4, "duplicates": 0, "reordered": 0,
        "idle_s": 1, "established_s": 39});
    detail["session_list"] = json!([{"session": 7, "call": 3, "peer_session": 9, "state": "established",
        "subscriber": "10.10.0.21", "user": "u", "level": 2000000, "rate_bps": 0,
        "replaces": null, "encap_packets": 1, "encap_bytes": 2, "decap_packets": 3,
        "decap_bytes": 4, "age_s": 5}]);
    round_trip(&Request::ShowTunnel(TunnelArg { tunnel: 38743 }), detail);
    let all = every_request();
    let find = |name: &str| all.iter().find(|r| r.name() == name).unwrap().clone();
    round_trip(&find("session add"), json!({"session": 3}));
    round_trip(&find("session update"), json!({"session": 3}));
    round_trip(
        &find("session remove"),
        json!({"session": 3, "cause": "admin_reset"}),
    );
    round_trip(
        &find("session login"),
        json!({"session": 4, "user": "bob", "address": "10.10.0.30", "resumed": false,
               "acct_session_id": "19aa0c3e1f2-4"}),
    );
    round_trip(
        &find("session logout"),
        json!({"sessions": [4], "cause": "user_request"}),
    );
    round_trip(
        &find("session logout"),
        json!({"user": "bob", "ended": 2, "cause": "user_request"}),
    );
    round_trip(&find("server set"), json!({"service": "web", "server": 1}));
    round_trip(
        &find("lb set"),
        json!({"mac": "02:aa:00:00:00:01", "state": "down"}),
    );
    round_trip(
        &find("subscriber add"),
        json!({"user": "carol", "replaced": false}),
    );
    round_trip(&find("subscriber remove"), json!({"user": "carol"}));
    round_trip(
        &find("subscriber import"),
        json!({"file": "s.csv", "added": 2, "replaced": 0}),
    );
    round_trip(
        &find("tunnel session level"),
        json!({"session": 1, "level": 5000000}),
    );
    round_trip(&find("tunnel session remove"), json!({"session": 1}));
    round_trip(
        &find("tunnel session remove"),
        json!({"session": 7, "tunnel": 3, "role": "lns"}),
    );
    round_trip(
        &find("billing status"),
        json!({"database": "r.db", "records": {"session": 3}, "closed_periods": ["2024-04"],
        "tariffs": ["business"], "accounts": 1, "bandwidth_method": "peak",
        "timezone_offset_minutes": 540, "time_zone": null, "currency": "JPY"}),
    );
    round_trip(
        &find("billing import"),
        json!({"stored": 3, "duplicates": 1}),
    );
    round_trip(
        &find("billing import"),
        json!({"import": "ab12", "part": 0, "held": true}),
    );
    let invoice = doc(r#"{"provisional": false,
 "invoice": {"period": "2024-05", "account": "acme", "name": "ACME Trading",
   "tariff": "business", "currency": "JPY", "minor_digits": 0,
   "from": 1714489200, "to": 1717167600,
   "lines": [
     {"user": "alice", "kind": "bytes", "detail": "both", "band": "", "quantity": 10000000,
      "unit": "byte", "price": 5, "per": 1000000, "amount": 50},
     {"user": "", "kind": "contract", "detail": "shared-line", "band": "", "quantity": 1,
      "unit": "period", "price": 2500, "per": 1, "amount": 2500}],
   "total": 2550}}"#);
    let Answer::Invoice(a) = Answer::parse(&find("show invoice"), invoice.clone()).unwrap() else {
        panic!("not an invoice")
    };
    assert_eq!(a.invoice.total, 2550);
    assert_eq!(a.invoice.lines.len(), 2);
    let list = json!({"provisional": true, "invoices": [invoice["invoice"]]});
    let Answer::Invoices(l) = Answer::parse(&find("billing invoices"), list).unwrap() else {
        panic!("not invoices")
    };
    assert!(l.provisional);
    assert_eq!(l.invoices[0].account, "acme");
}

/// The socket line of a documented answer, byte for byte (`data`'s keys in order).
#[test]
fn documented_answers_byte_for_byte() {
    let status = Status {
        version: "0.1.0".into(),
        pid: 4242,
        config: "<embedded default>".into(),
        socket: "/run/tollgate/ctl.sock".into(),
        uptime_s: 73,
        workers: 1,
        backend: "af_packet".into(),
        rx_packets: 41233,
        tx_packets: 41230,
        drops: 3,
        neighbors: 4,
    };
    assert_eq!(
        Reply::with(&status).to_line(),
        r#"{"ok":true,"data":{"backend":"af_packet","config":"<embedded default>","drops":3,"neighbors":4,"pid":4242,"rx_packets":41233,"socket":"/run/tollgate/ctl.sock","tx_packets":41230,"uptime_s":73,"version":"0.1.0","workers":1}}"#
    );
    let n = vec![Neighbor {
        address: "192.0.2.254".into(),
        side: "core".into(),
        mac: None,
        state: "failed".into(),
        age_s: 1,
    }];
    assert_eq!(
        Reply::with(&n).to_line(),
        r#"{"ok":true,"data":[{"address":"192.0.2.254","age_s":1,"mac":null,"side":"core","state":"failed"}]}"#
    );
    let login = LoggedIn {
        session: 4,
        user: "bob".into(),
        address: "10.10.0.30".into(),
        resumed: false,
        acct_session_id: Some("19aa0c3e1f2-4".into()),
        node: None,
    };
    assert_eq!(
        Reply::with(&login).to_line(),
        r#"{"ok":true,"data":{"acct_session_id":"19aa0c3e1f2-4","address":"10.10.0.30","resumed":false,"session":4,"user":"bob"}}"#
    );
}
