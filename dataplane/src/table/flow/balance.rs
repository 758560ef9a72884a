//! Choosing a real server (NAT-1): the per-worker state of each balancing policy.
//!
//! Round-robin cursors, smooth weighted round-robin weights and open-flow counts are the
//! worker's own (shared-nothing), so least-connections sees this worker's flows; with
//! traffic spread evenly over workers that is the same ordering as a global count.

use crate::service::{Policy, Service, Services};

/// Per-service state.
#[derive(Clone, Debug, Default)]
struct ServiceState {
    cursor: usize,
    current: Vec<i64>,
    open: Vec<u32>,
}

/// A worker's balancing state for every service of the snapshot.
#[derive(Clone, Debug, Default)]
pub struct Balancer {
    services: Vec<ServiceState>,
}

impl Balancer {
    /// State for `services`, keeping what matches from before (server counts unchanged).
    pub fn resize(&mut self, services: &Services) {
        let mut next = Vec::with_capacity(services.len());
        for (i, s) in services.all().iter().enumerate() {
            let n = s.servers.len();
            match self.services.get(i) {
                Some(old) if old.open.len() == n => next.push(old.clone()),
                _ => next.push(ServiceState {
                    cursor: 0,
                    current: vec![0; n],
                    open: vec![0; n],
                }),
            }
        }
        self.services = next;
    }

    /// Chooses an up server of service `idx`, or `None` if all are down.
    pub fn choose(&mut self, idx: u16, svc: &Service) -> Option<u16> {
        let st = self.services.get_mut(idx as usize)?;
        let servers = &svc.servers;
        let n = servers.len();
        if n == 0 || st.open.len() != n {
            return None;
        }
        let up = |i: usize| servers[i].up;
        let pick = match svc.policy {
            Policy::RoundRobin => round_robin(&mut st.cursor, n, up),
            Policy::Priority => {
                let best = (0..n)
                    .filter(|&i| up(i))
                    .map(|i| servers[i].priority)
                    .min()?;
                round_robin(&mut st.cursor, n, |i| up(i) && servers[i].priority == best)
            }
            Policy::WeightedRoundRobin => {
                // Smooth weighted round robin: raise every up server by its weight, take
                // the highest, lower it by the total.
                let mut total = 0i64;
                let mut best: Option<usize> = None;
                for i in (0..n).filter(|&i| up(i)) {
                    let w = servers[i].weight.max(1) as i64;
                    st.current[i] += w;
                    total += w;
                    if best.is_none_or(|b| st.current[i] > st.current[b]) {
                        best = Some(i);
                    }
                }
                let b = best?;
                st.current[b] -= total;
                Some(b)
            }
            Policy::LeastConnections => min_by(n, up, |i| st.open[i] as u64),
            Policy::FastestResponse => min_by(n, up, |i| servers[i].response_us as u64),
            Policy::LowestCpuLoad => min_by(n, up, |i| servers[i].cpu_load as u64),
        };
        pick.map(|i| i as u16)
    }

    /// A flow to `server` of service `idx` opened.
    pub fn opened(&mut self, idx: u16, server: u16) {
        if let Some(c) = self
            .services
            .get_mut(idx as usize)
            .and_then(|s| s.open.get_mut(server as usize))
        {
            *c += 1;
        }
    }

    /// A flow to `server` of service `idx` closed.
    pub fn closed(&mut self, idx: u16, server: u16) {
        if let Some(c) = self
            .services
            .get_mut(idx as usize)
            .and_then(|s| s.open.get_mut(server as usize))
        {
            *c = c.saturating_sub(1);
        }
    }

    /// Open flows per server of service `idx`.
    pub fn open(&self, idx: u16) -> &[u32] {
        self.services.get(idx as usize).map_or(&[], |s| &s.open)
    }
}

fn round_robin(cursor: &mut usize, n: usize, ok: impl Fn(usize) -> bool) -> Option<usize> {
    for k in 0..n {
        let i = (*cursor + k) % n;
        if ok(i) {
            *cursor = (i + 1) % n;
            return Some(i);
        }
    }
    None
}

fn min_by(n: usize, up: impl Fn(usize) -> bool, key: impl Fn(usize) -> u64) -> Option<usize> {
    (0..n).filter(|&i| up(i)).min_by_key(|&i| (key(i), i))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::{RealServer, SessionType};
    use std::net::Ipv4Addr;

    fn service(policy: Policy, servers: Vec<RealServer>) -> Services {
        Services::new(vec![Service {
            vip: Ipv4Addr::new(203, 0, 113, 10),
            protocol: 6,
            port: 80,
            policy,
            session_type: SessionType::Connection,
            servers,
        }])
        .unwrap()
    }

    fn servers(n: u8) -> Vec<RealServer> {
        (0..n)
            .map(|i| RealServer::new(Ipv4Addr::new(192, 0, 2, 10 + i), 8080))
            .collect()
    }

    fn picks(b: &mut Balancer, s: &Services, k: usize) -> Vec<u16> {
        (0..k)
            .map(|_| b.choose(0, s.get(0).unwrap()).unwrap())
            .collect()
    }

    #[test]
    fn round_robin_skips_down_servers() {
        let mut srv = servers(3);
        let s = service(Policy::RoundRobin, srv.clone());
        let mut b = Balancer::default();
        b.resize(&s);
        assert_eq!(picks(&mut b, &s, 7), vec![0, 1, 2, 0, 1, 2, 0]);
        srv[1].up = false;
        let s = service(Policy::RoundRobin, srv.clone());
        b.resize(&s);
        assert_eq!(picks(&mut b, &s, 4), vec![2, 0, 2, 0]);
        srv.iter_mut().for_each(|r| r.up = false);
        let s = service(Policy::RoundRobin, srv);
        assert_eq!(b.choose(0, s.get(0).unwrap()), None);
    }

    #[test]
    fn weighted_round_robin_is_smooth() {
        let mut srv = servers(3);
        srv[0].weight = 5;
        let s = service(Policy::WeightedRoundRobin, srv);
        let mut b = Balancer::default();
        b.resize(&s);
        // nginx's example: weights 5, 1, 1 give a a b a c a a.
        assert_eq!(picks(&mut b, &s, 7), vec![0, 0, 1, 0, 2, 0, 0]);
    }

    #[test]
    fn priority_least_connections_fastest_lowest_cpu() {
        let mut srv = servers(3);
        srv[0].priority = 2;
        srv[1].priority = 1;
        srv[2].priority = 1;
        let s = service(Policy::Priority, srv.clone());
        let mut b = Balancer::default();
        b.resize(&s);
        assert_eq!(picks(&mut b, &s, 4), vec![1, 2, 1, 2]);
        srv[1].up = false;
        srv[2].up = false;
        let s = service(Policy::Priority, srv);
        assert_eq!(
            picks(&mut b, &s, 2),
            vec![0, 0],
            "the next priority when the best are down"
        );

        let s = service(Policy::LeastConnections, servers(3));
        let mut b = Balancer::default();
        b.resize(&s);
        let mut seq = vec![];
        for _ in 0..5 {
            let i = b.choose(0, s.get(0).unwrap()).unwrap();
            b.opened(0, i);
            seq.push(i);
        }
        assert_eq!(seq, vec![0, 1, 2, 0, 1]);
        b.closed(0, 2);
        b.closed(0, 2);
        assert_eq!(b.choose(0, s.get(0).unwrap()), Some(2));

        let mut srv = servers(3);
        srv[0].response_us = 900;
        srv[1].response_us = 300;
        srv[2].response_us = 500;
        let s = service(Policy::FastestResponse, srv.clone());
        b.resize(&s);
        assert_eq!(picks(&mut b, &s, 2), vec![1, 1]);
        srv[0].cpu_load = 10;
        srv[1].cpu_load = 90;
        srv[2].cpu_load = 10;
        let s = service(Policy::LowestCpuLoad, srv);
        assert_eq!(picks(&mut b, &s, 2), vec![0, 0], "lowest index on ties");
    }
}
