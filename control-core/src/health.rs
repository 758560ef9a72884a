//! Health checks of gateway nodes and real servers (SES-3), sans-I/O: the [`Scheduler`]
//! decides when each target is probed, counts consecutive successes and failures
//! against its rise/fall thresholds, reports Up/Down changes as [`HealthEvent`]s, and
//! keeps a response-time EWMA per target (for the "fastest response" balancing policy).
//! The probes themselves (ICMP echo, TCP connect, HTTP GET) are the shell's
//! (`tollgate_control::health::probe`): they run without blocking and without a thread
//! per probe, and report back through [`Scheduler::on_result`].

use std::collections::VecDeque;
use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tollgate_dataplane::time::Instant;

/// How a target is checked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum CheckKind {
    /// ICMP echo request; up when the echo reply comes back.
    Icmp,
    /// TCP connect; up when the handshake completes.
    Tcp {
        /// The port.
        port: u16,
    },
    /// HTTP/1.1 GET; up when the status is 2xx or 3xx.
    Http {
        /// The port.
        port: u16,
        /// The path, e.g. `/health`.
        path: String,
        /// The Host header (default: the address).
        #[serde(default)]
        host: Option<String>,
    },
}

/// One thing to check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The operator's name for it (a gateway node or a real server).
    pub name: String,
    /// Its address.
    pub addr: IpAddr,
    /// How to check it.
    pub kind: CheckKind,
    /// Between the starts of two checks.
    pub interval: Duration,
    /// How long a check may take.
    pub timeout: Duration,
    /// Consecutive successes that bring it up.
    pub rise: u32,
    /// Consecutive failures that take it down.
    pub fall: u32,
}

/// A target's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// Not checked enough yet.
    Unknown,
    /// Passing.
    Up,
    /// Failing.
    Down,
}

impl Health {
    /// Its name as operators see it.
    pub fn name(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Up => "up",
            Health::Down => "down",
        }
    }
}

/// Names a target in a [`Scheduler`].
pub type TargetId = usize;

/// A check to run now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Probe {
    /// Which target.
    pub target: TargetId,
    /// Which check of it (results of older checks are ignored).
    pub seq: u64,
    /// Where.
    pub addr: IpAddr,
    /// How.
    pub kind: CheckKind,
    /// Give up after.
    pub timeout: Duration,
}

/// How a check went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeResult {
    /// It passed, in this time.
    Passed(Duration),
    /// It failed; why, for the log.
    Failed(String),
}

/// A target changed state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthEvent {
    /// Which target.
    pub target: TargetId,
    /// Its name.
    pub name: String,
    /// Before.
    pub from: Health,
    /// Now.
    pub to: Health,
    /// The last failure's reason, when going down.
    pub reason: Option<String>,
}

/// A target's state as `show health` prints it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetStatus {
    /// The target.
    pub target: Target,
    /// Up, down or unknown.
    pub health: Health,
    /// Response-time EWMA, when any check passed.
    pub rtt_ewma: Option<Duration>,
    /// Checks passed and failed.
    pub passed: u64,
    /// Checks failed.
    pub failed: u64,
    /// Last failure reason.
    pub last_error: Option<String>,
}

#[derive(Debug)]
struct Tracked {
    target: Target,
    health: Health,
    successes: u32,
    failures: u32,
    next: Instant,
    seq: u64,
    in_flight: bool,
    rtt_ewma_ns: Option<u64>,
    passed: u64,
    failed: u64,
    last_error: Option<String>,
}

/// The scheduler.
#[derive(Debug, Default)]
pub struct Scheduler {
    targets: Vec<Option<Tracked>>,
    events: VecDeque<HealthEvent>,
}

impl Scheduler {
    /// An empty scheduler.
    pub fn new() -> Scheduler {
        Scheduler::default()
    }

    /// Adds a target, first checked at once.
    pub fn add(&mut self, now: Instant, target: Target) -> TargetId {
        let t = Tracked {
            target,
            health: Health::Unknown,
            successes: 0,
            failures: 0,
            next: now,
            seq: 0,
            in_flight: false,
            rtt_ewma_ns: None,
            passed: 0,
            failed: 0,
            last_error: None,
        };
        self.targets.push(Some(t));
        self.targets.len() - 1
    }

    /// Stops checking a target; a result still in flight is ignored.
    pub fn remove(&mut self, id: TargetId) {
        if let Some(slot) = self.targets.get_mut(id) {
            *slot = None;
        }
    }

    /// The next check due at `now`, if any (call until `None`).
    pub fn poll_probe(&mut self, now: Instant) -> Option<Probe> {
        for (id, t) in self.targets.iter_mut().enumerate() {
            let Some(t) = t else { continue };
            if t.in_flight || t.next > now {
                continue;
            }
            t.seq += 1;
            t.in_flight = true;
            t.next = now + t.target.interval;
            return Some(Probe {
                target: id,
                seq: t.seq,
                addr: t.target.addr,
                kind: t.target.kind.clone(),
                timeout: t.target.timeout,
            });
        }
        None
    }

    /// When the next check is due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.targets
            .iter()
            .flatten()
            .filter(|t| !t.in_flight)
            .map(|t| t.next)
            .min()
    }

    /// A check finished.
    pub fn on_result(&mut self, _now: Instant, id: TargetId, seq: u64, result: ProbeResult) {
        let Some(Some(t)) = self.targets.get_mut(id) else {
            return;
        };
        if seq != t.seq {
            return;
        }
        t.in_flight = false;
        let before = t.health;
        let mut reason = None;
        match result {
            ProbeResult::Passed(rtt) => {
                t.passed += 1;
                t.successes = t.successes.saturating_add(1);
                t.failures = 0;
                let ns = rtt.as_nanos().min(u64::MAX as u128) as u64;
                // EWMA with weight 1/4 for the new sample.
                t.rtt_ewma_ns = Some(match t.rtt_ewma_ns {
                    None => ns,
                    Some(prev) => prev - prev / 4 + ns / 4,
                });
                if t.successes >= t.target.rise {
                    t.health = Health::Up;
                }
            }
            ProbeResult::Failed(why) => {
                t.failed += 1;
                t.failures = t.failures.saturating_add(1);
                t.successes = 0;
                if t.failures >= t.target.fall {
                    t.health = Health::Down;
                }
                reason = Some(why.clone());
                t.last_error = Some(why);
            }
        }
        if t.health != before {
            tracing::info!(target_name = %t.target.name, addr = %t.target.addr, from = before.name(), to = t.health.name(), reason = ?reason, "health check state changed");
            self.events.push_back(HealthEvent {
                target: id,
                name: t.target.name.clone(),
                from: before,
                to: t.health,
                reason: if t.health == Health::Down {
                    reason
                } else {
                    None
                },
            });
        }
    }

    /// The next state change.
    pub fn poll_event(&mut self) -> Option<HealthEvent> {
        self.events.pop_front()
    }

    /// A target's health.
    pub fn health(&self, id: TargetId) -> Option<Health> {
        self.targets.get(id)?.as_ref().map(|t| t.health)
    }

    /// A target's response-time EWMA.
    pub fn rtt(&self, id: TargetId) -> Option<Duration> {
        self.targets
            .get(id)?
            .as_ref()?
            .rtt_ewma_ns
            .map(Duration::from_nanos)
    }

    /// Every target's status, by id.
    pub fn status(&self) -> Vec<(TargetId, TargetStatus)> {
        self.targets
            .iter()
            .enumerate()
            .filter_map(|(id, t)| {
                let t = t.as_ref()?;
                Some((
                    id,
                    TargetStatus {
                        target: t.target.clone(),
                        health: t.health,
                        rtt_ewma: t.rtt_ewma_ns.map(Duration::from_nanos),
                        passed: t.passed,
                        failed: t.failed,
                        last_error: t.last_error.clone(),
                    },
                ))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(rise: u32, fall: u32) -> Target {
        Target {
            name: "pgw1".into(),
            addr: "192.0.2.10".parse().unwrap(),
            kind: CheckKind::Tcp { port: 80 },
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(1),
            rise,
            fall,
        }
    }

    fn t(s: u64) -> Instant {
        Instant(1_000_000_000 + s * 1_000_000_000)
    }

    fn run(s: &mut Scheduler, at: u64, ok: bool) {
        let p = s.poll_probe(t(at)).expect("a probe is due");
        let r = if ok {
            ProbeResult::Passed(Duration::from_millis(10))
        } else {
            ProbeResult::Failed("refused".into())
        };
        s.on_result(t(at), p.target, p.seq, r);
    }

    #[test]
    fn rise_and_fall() {
        let mut s = Scheduler::new();
        let id = s.add(t(0), target(2, 3));
        run(&mut s, 0, true);
        assert_eq!(s.health(id), Some(Health::Unknown));
        assert!(s.poll_probe(t(4)).is_none(), "not before the interval");
        assert_eq!(s.poll_timeout(), Some(t(5)));
        run(&mut s, 5, true);
        assert_eq!(s.health(id), Some(Health::Up));
        let e = s.poll_event().unwrap();
        assert_eq!((e.from, e.to), (Health::Unknown, Health::Up));
        run(&mut s, 10, false);
        run(&mut s, 15, false);
        assert_eq!(s.health(id), Some(Health::Up));
        run(&mut s, 20, false);
        assert_eq!(s.health(id), Some(Health::Down));
        let e = s.poll_event().unwrap();
        assert_eq!((e.to, e.reason.as_deref()), (Health::Down, Some("refused")));
        // A single success does not bring it back with rise 2.
        run(&mut s, 25, true);
        assert_eq!(s.health(id), Some(Health::Down));
        run(&mut s, 30, true);
        assert_eq!(s.health(id), Some(Health::Up));
        assert!(s.poll_event().is_some());
        assert!(s.poll_event().is_none());
    }

    #[test]
    fn one_probe_in_flight_and_stale_results_ignored() {
        let mut s = Scheduler::new();
        let id = s.add(t(0), target(1, 1));
        let p = s.poll_probe(t(0)).unwrap();
        assert!(s.poll_probe(t(100)).is_none(), "still in flight");
        s.on_result(t(1), id, p.seq + 7, ProbeResult::Passed(Duration::ZERO));
        assert_eq!(s.health(id), Some(Health::Unknown));
        s.on_result(
            t(1),
            id,
            p.seq,
            ProbeResult::Passed(Duration::from_millis(8)),
        );
        assert_eq!(s.health(id), Some(Health::Up));
    }

    #[test]
    fn rtt_ewma() {
        let mut s = Scheduler::new();
        let id = s.add(t(0), target(1, 1));
        for (i, ms) in [8u64, 16, 16, 16].into_iter().enumerate() {
            let p = s.poll_probe(t(i as u64 * 5)).unwrap();
            s.on_result(
                t(0),
                id,
                p.seq,
                ProbeResult::Passed(Duration::from_millis(ms)),
            );
        }
        // 8, then 8*3/4 + 16/4 = 10, 11.5, 12.625
        assert_eq!(s.rtt(id), Some(Duration::from_micros(12_625)));
    }

    #[test]
    fn removed_targets_are_not_probed() {
        let mut s = Scheduler::new();
        let a = s.add(t(0), target(1, 1));
        let b = s.add(t(0), target(1, 1));
        s.remove(a);
        let p = s.poll_probe(t(0)).unwrap();
        assert_eq!(p.target, b);
        assert!(s.poll_probe(t(0)).is_none());
        s.on_result(t(0), a, 1, ProbeResult::Passed(Duration::ZERO));
        assert_eq!(s.status().len(), 1);
    }

    #[test]
    fn check_kinds_read_from_toml() {
        #[derive(Deserialize)]
        struct W {
            check: Vec<CheckKind>,
        }
        let w: W = toml::from_str(
            "[[check]]\nkind = \"icmp\"\n[[check]]\nkind = \"tcp\"\nport = 443\n[[check]]\nkind = \"http\"\nport = 8080\npath = \"/health\"\n",
        )
        .unwrap();
        assert_eq!(w.check[1], CheckKind::Tcp { port: 443 });
        assert!(matches!(&w.check[2], CheckKind::Http { path, .. } if path == "/health"));
    }
}
