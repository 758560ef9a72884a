//! The health checks (SES-3): the scheduler's targets, the probes, and what a state
//! change does to the core (a real server or a node up or down).

use super::*;

/// What a health target stands for.
#[derive(Clone, Debug)]
pub(super) enum Checked {
    Server {
        service: u16,
        server: u16,
        fastest: bool,
    },
    Node {
        name: String,
        mac: Option<MacAddr>,
    },
}

/// The health checks (SES-3) and what their results change.
pub(super) struct HealthChecks {
    pub(super) scheduler: Scheduler,
    prober: Prober,
    targets: HashMap<TargetId, Checked>,
}

impl HealthChecks {
    pub(super) fn new(cfg: &Config, now: Instant) -> HealthChecks {
        let d = &cfg.aaa.health;
        let mut h = HealthChecks {
            scheduler: Scheduler::new(),
            prober: Prober::new(),
            targets: HashMap::new(),
        };
        let mut add = |name: String, addr: IpAddr, kind: CheckKind, what: Checked| {
            let id = h.scheduler.add(
                now,
                Target {
                    name,
                    addr,
                    kind,
                    interval: Duration::from_millis(d.interval_ms),
                    timeout: Duration::from_millis(d.timeout_ms),
                    rise: d.rise,
                    fall: d.fall,
                },
            );
            h.targets.insert(id, what);
        };
        let kind = |t: CheckType, port: Option<u16>, path: &Option<String>| match t {
            CheckType::None => None,
            CheckType::Icmp => Some(CheckKind::Icmp),
            CheckType::Tcp => Some(CheckKind::Tcp { port: port? }),
            CheckType::Http => Some(CheckKind::Http {
                port: port?,
                path: path.clone().unwrap_or_else(|| "/".into()),
                host: None,
            }),
        };
        for (i, s) in cfg.services.iter().enumerate() {
            for (j, srv) in s.servers.iter().enumerate() {
                let port = srv.port.unwrap_or(s.port);
                if let Some(k) = kind(s.check, Some(port), &s.check_path) {
                    add(
                        format!("{}/{}:{port}", s.name, srv.address),
                        IpAddr::V4(srv.check_address.unwrap_or(srv.address)),
                        k,
                        Checked::Server {
                            service: i as u16,
                            server: j as u16,
                            fastest: s.policy == Policy::FastestResponse.name(),
                        },
                    );
                }
            }
        }
        for n in &cfg.nodes {
            if let (Some(k), Some(a)) = (kind(n.check, n.check_port, &n.check_path), n.address) {
                add(
                    format!("node {}", n.name),
                    IpAddr::V4(a),
                    k,
                    Checked::Node {
                        name: n.name.clone(),
                        mac: n.mac.map(|m| m.0),
                    },
                );
            }
        }
        h
    }

    pub(super) fn poll(&mut self, core: &mut Core, now: Instant) {
        while let Some(p) = self.scheduler.poll_probe(now) {
            self.prober.start(now, p);
        }
        for o in self.prober.poll(now) {
            self.scheduler.on_result(now, o.target, o.seq, o.result);
            // Lowest CPU load: a server's HTTP check may report its load (X-Load).
            if let (
                Some(Checked::Server {
                    service, server, ..
                }),
                Some(load),
            ) = (self.targets.get(&o.target), o.load)
            {
                let old = core
                    .forwarding()
                    .services
                    .get(*service)
                    .and_then(|s| s.servers.get(*server as usize))
                    .map(|r| r.cpu_load);
                if old != Some(load) {
                    let _ = core.set_server(*service, *server, |r| r.cpu_load = load);
                }
            }
            // Fastest response: feed the response-time average to the balancer when it
            // moved by more than a tenth.
            if let (
                Some(Checked::Server {
                    service,
                    server,
                    fastest: true,
                }),
                Some(rtt),
            ) = (self.targets.get(&o.target), self.scheduler.rtt(o.target))
            {
                let us = rtt.as_micros().min(u32::MAX as u128) as u32;
                let old = core
                    .forwarding()
                    .services
                    .get(*service)
                    .and_then(|s| s.servers.get(*server as usize))
                    .map_or(0, |r| r.response_us);
                if old == 0 || us.abs_diff(old) > old / 10 {
                    let _ = core.set_server(*service, *server, |r| r.response_us = us.max(1));
                }
            }
        }
        while let Some(e) = self.scheduler.poll_event() {
            if e.to == Health::Unknown {
                continue;
            }
            let up = e.to == Health::Up;
            tracing::warn!(target = %e.name, from = e.from.name(), to = e.to.name(), reason = ?e.reason, "health changed");
            match self.targets.get(&e.target) {
                Some(Checked::Server {
                    service, server, ..
                }) => {
                    let _ = core.set_server(*service, *server, |r| r.up = up);
                }
                Some(Checked::Node { name, mac }) => {
                    core.set_node(name, up);
                    if let Some(m) = mac {
                        let _ = core.set_lb_target(*m, up);
                    }
                }
                None => {}
            }
        }
    }
}
