//! Issue 13 item 3: one route per pass. An answer the shell gives on the spot (replay's
//! local store) is routed in the same drain as the request that asked for it: the
//! login's session reaches the worker's command ring, the login's result reaches the
//! shell, and nothing is left parked in the core for a second pump.

use tollgate_control::config::Config;
use tollgate_control::dispatch::Dispatcher;
use tollgate_control::outlets::Outlets;
use tollgate_control::router::{self, Aaa, AaaOutput, NoAaa};
use tollgate_control::setup;
use tollgate_control_core::authz::Authorization;
use tollgate_control_core::gateway::Core;
use tollgate_control_core::gateway::aaa::{AuthAnswer, LoginRequest};
use tollgate_control_core::gateway::records::WallClock;
use tollgate_dataplane::snapshot::Publisher;
use tollgate_dataplane::time::Instant;
use tollgate_dataplane::{Command, worker_rings};

const CONFIG: &str = r#"
[engine]
workers = 1
[access]
backend = "memory"
address = "10.10.0.1/24"
[core]
backend = "memory"
address = "192.0.2.1/24"
"#;

/// Accepts every login at once and notes what it was given, in order.
#[derive(Default)]
struct AcceptAll {
    seen: Vec<&'static str>,
    results: Vec<Result<String, String>>,
    passes: usize,
}

impl Aaa for AcceptAll {
    fn take(&mut self, core: &mut Core, now: Instant, out: AaaOutput) {
        match out {
            AaaOutput::Authenticate(req) => {
                self.seen.push("authenticate");
                core.on_auth(
                    now,
                    req.login,
                    AuthAnswer::Accept {
                        user: "alice".into(),
                        authorization: Box::new(Authorization::default()),
                    },
                );
            }
            AaaOutput::LoginDone(_, result) => {
                self.seen.push("login done");
                self.results.push(result.map(|l| l.user));
            }
            AaaOutput::Account(_) => self.seen.push("account"),
            AaaOutput::Usage(_) => self.seen.push("usage"),
            AaaOutput::LastKnown(_) => self.seen.push("last known"),
        }
    }

    fn end_pass(&mut self, _now: Instant) {
        self.passes += 1;
    }
}

#[test]
fn an_answer_given_on_the_spot_is_routed_in_the_same_pass() {
    let cfg = Config::parse(CONFIG, "router.toml").unwrap();
    let fwd = setup::forwarding(&cfg, setup::configured_macs(&cfg)).unwrap();
    let now = Instant(1_700_000_000_000_000_000);
    let publisher = Publisher::new(fwd);
    let mut core = Core::new(
        now,
        publisher.current(),
        setup::core(&cfg, WallClock::UNIX).unwrap(),
    );
    let (mut worker, control) = worker_rings(setup::rings(&cfg));
    let mut workers = Dispatcher::new(vec![control]);
    let mut outlets = Outlets::new(publisher, "".as_ref(), "".as_ref()).unwrap();
    // Whatever start-up produced (neighbour commands, snapshots) goes first.
    router::route(&mut core, now, &mut workers, &mut outlets, &mut NoAaa);
    while worker.commands.pop().is_some() {}

    let login = LoginRequest {
        address: Some("10.10.0.20".parse().unwrap()),
        ..LoginRequest::default()
    };
    core.login(now, login).unwrap();
    let mut aaa = AcceptAll::default();
    let down = router::route(&mut core, now, &mut workers, &mut outlets, &mut aaa);

    assert!(down, "the session went down to the worker");
    assert_eq!(aaa.passes, 1);
    // The Start is accounted before the login's result goes out.
    assert_eq!(aaa.seen, ["authenticate", "account", "login done"]);
    assert_eq!(aaa.results, [Ok("alice".to_string())]);
    let mut added = 0;
    while let Some(c) = worker.commands.pop() {
        if let Command::SessionAdd(spec) = c {
            assert_eq!(
                spec.address,
                "10.10.0.20".parse::<std::net::Ipv4Addr>().unwrap()
            );
            added += 1;
        }
    }
    assert_eq!(
        added, 1,
        "the session's install is on the ring after one route"
    );
    assert!(
        core.poll_output().is_none(),
        "nothing parked for a second pump"
    );
}
