//! Services behind representative addresses (NAT-1): a VIP, protocol and port, the group
//! of real servers that serve it, how a server is chosen, and how long a choice sticks
//! (NAT-3). Part of the forwarding snapshot: server states and metrics change by
//! publishing a new snapshot, which workers pick up between bursts.

use std::net::Ipv4Addr;

use crate::wire::ipv4::protocol;

/// How a service's real server is chosen (NAT-1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Policy {
    /// In turn, skipping servers that are down.
    RoundRobin,
    /// In turn, in proportion to the weights (smooth weighted round robin, as nginx).
    WeightedRoundRobin,
    /// The up server with the lowest priority value; round robin among equals.
    Priority,
    /// The up server with the fewest open flows on this worker; lowest index on ties.
    LeastConnections,
    /// The up server with the lowest measured response time; lowest index on ties.
    FastestResponse,
    /// The up server with the lowest reported CPU load; lowest index on ties.
    LowestCpuLoad,
}

impl Policy {
    /// Every policy.
    pub const ALL: [Policy; 6] = [
        Policy::RoundRobin,
        Policy::WeightedRoundRobin,
        Policy::Priority,
        Policy::LeastConnections,
        Policy::FastestResponse,
        Policy::LowestCpuLoad,
    ];

    /// The config name.
    pub const fn name(self) -> &'static str {
        match self {
            Policy::RoundRobin => "round_robin",
            Policy::WeightedRoundRobin => "weighted_round_robin",
            Policy::Priority => "priority",
            Policy::LeastConnections => "least_connections",
            Policy::FastestResponse => "fastest_response",
            Policy::LowestCpuLoad => "lowest_cpu_load",
        }
    }
}

/// How long a subscriber stays with the server chosen for it (NAT-3, seed 001 FIG. 33).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SessionType {
    /// Per login: the same server for this service from login to logout, across
    /// connections.
    Login,
    /// Per service: the same server until the subscriber uses another service.
    Service,
    /// Per connection: chosen at the TCP SYN, kept to FIN/RST (or per UDP flow).
    Connection,
    /// Per packet: chosen for each uplink UDP datagram; its answer ends the choice.
    Packet,
}

impl SessionType {
    /// The config name.
    pub const fn name(self) -> &'static str {
        match self {
            SessionType::Login => "login",
            SessionType::Service => "service",
            SessionType::Connection => "connection",
            SessionType::Packet => "packet",
        }
    }
}

/// A real server of a service's group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RealServer {
    /// Its address.
    pub address: Ipv4Addr,
    /// Its port (the ICMP identifier is kept for ICMP services).
    pub port: u16,
    /// Weight for weighted round robin (at least 1).
    pub weight: u32,
    /// Priority for the priority policy (lower is preferred).
    pub priority: u32,
    /// False when a health check or an operator took it out: it gets no new flows and
    /// flows stuck to it move (NAT-5).
    pub up: bool,
    /// Measured response time in microseconds (fastest-response policy).
    pub response_us: u32,
    /// Reported CPU load in percent (lowest-CPU-load policy).
    pub cpu_load: u32,
}

impl RealServer {
    /// An up server with weight and priority 1 and no metrics.
    pub fn new(address: Ipv4Addr, port: u16) -> Self {
        RealServer {
            address,
            port,
            weight: 1,
            priority: 1,
            up: true,
            response_us: 0,
            cpu_load: 0,
        }
    }
}

/// A service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Service {
    /// The representative address.
    pub vip: Ipv4Addr,
    /// IP protocol: TCP, UDP or ICMP (echo).
    pub protocol: u8,
    /// Destination port (0 for ICMP).
    pub port: u16,
    /// How a server is chosen.
    pub policy: Policy,
    /// How long a choice sticks.
    pub session_type: SessionType,
    /// The group; at most 65535.
    pub servers: Vec<RealServer>,
}

/// The most services a snapshot may hold: a session's service set is one bit per service.
pub const MAX_SERVICES: usize = 128;

/// The services of the snapshot, indexed `0..n` (the index is the service's bit in a
/// session's service set).
#[derive(Clone, Debug, Default)]
pub struct Services {
    services: Vec<Service>,
    /// VIP address -> indexes of its services, sorted by address for binary search.
    vips: Vec<(u32, Vec<u16>)>,
}

/// Why a service table could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceError {
    /// More services than a service set can name.
    #[error("{0} services: at most 128")]
    TooMany(usize),
    /// Two services with the same VIP, protocol and port.
    #[error("services {0} and {1} both listen on the same VIP, protocol and port")]
    Duplicate(usize, usize),
    /// A service without servers.
    #[error("service {0} has no real server")]
    NoServers(usize),
    /// A protocol other than TCP, UDP or ICMP.
    #[error("service {0}: protocol {1} is not TCP, UDP or ICMP")]
    Protocol(usize, u8),
}

impl Services {
    /// Builds the table; service `i` gets index `i`.
    pub fn new(services: Vec<Service>) -> Result<Services, ServiceError> {
        if services.len() > MAX_SERVICES {
            return Err(ServiceError::TooMany(services.len()));
        }
        let mut vips: Vec<(u32, Vec<u16>)> = Vec::new();
        for (i, s) in services.iter().enumerate() {
            if s.servers.is_empty() || s.servers.len() > u16::MAX as usize {
                return Err(ServiceError::NoServers(i));
            }
            if ![protocol::TCP, protocol::UDP, protocol::ICMP].contains(&s.protocol) {
                return Err(ServiceError::Protocol(i, s.protocol));
            }
            if let Some(j) = services[..i]
                .iter()
                .position(|o| o.vip == s.vip && o.protocol == s.protocol && o.port == s.port)
            {
                return Err(ServiceError::Duplicate(j, i));
            }
            let key = u32::from(s.vip);
            match vips.iter_mut().find(|(a, _)| *a == key) {
                Some((_, list)) => list.push(i as u16),
                None => vips.push((key, vec![i as u16])),
            }
        }
        vips.sort_by_key(|(a, _)| *a);
        Ok(Services { services, vips })
    }

    /// True if `ip` is a VIP.
    #[inline]
    pub fn is_vip(&self, ip: Ipv4Addr) -> bool {
        !self.vips.is_empty()
            && self
                .vips
                .binary_search_by_key(&u32::from(ip), |(a, _)| *a)
                .is_ok()
    }

    /// The service on `ip`, `protocol`, `port` (the port is ignored for ICMP).
    #[inline]
    pub fn find(&self, ip: Ipv4Addr, protocol: u8, port: u16) -> Option<u16> {
        let i = self
            .vips
            .binary_search_by_key(&u32::from(ip), |(a, _)| *a)
            .ok()?;
        self.vips[i].1.iter().copied().find(|s| {
            let s = &self.services[*s as usize];
            s.protocol == protocol && (protocol == protocol::ICMP || s.port == port)
        })
    }

    /// Service `i`.
    #[inline(always)]
    pub fn get(&self, i: u16) -> Option<&Service> {
        self.services.get(i as usize)
    }

    /// Every service.
    pub fn all(&self) -> &[Service] {
        &self.services
    }

    /// True if a service is of the `login` session type (per-login stickiness).
    pub fn has_login(&self) -> bool {
        self.services
            .iter()
            .any(|s| s.session_type == SessionType::Login)
    }

    /// Number of services.
    pub fn len(&self) -> usize {
        self.services.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.services.is_empty()
    }

    /// A copy with server `server` of service `service` changed by `f` (state and metrics
    /// from health checks or ctl). False if there is no such server.
    pub fn update_server(
        &mut self,
        service: u16,
        server: u16,
        f: impl FnOnce(&mut RealServer),
    ) -> bool {
        match self
            .services
            .get_mut(service as usize)
            .and_then(|s| s.servers.get_mut(server as usize))
        {
            Some(r) => {
                f(r);
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(vip: [u8; 4], proto: u8, port: u16) -> Service {
        Service {
            vip: Ipv4Addr::from(vip),
            protocol: proto,
            port,
            policy: Policy::RoundRobin,
            session_type: SessionType::Connection,
            servers: vec![RealServer::new(Ipv4Addr::new(192, 0, 2, 10), 8080)],
        }
    }

    #[test]
    fn finds_services_by_vip_protocol_port() {
        let s = Services::new(vec![
            svc([203, 0, 113, 10], protocol::TCP, 80),
            svc([203, 0, 113, 10], protocol::UDP, 53),
            svc([203, 0, 113, 11], protocol::ICMP, 0),
        ])
        .unwrap();
        let v = Ipv4Addr::new(203, 0, 113, 10);
        assert!(s.is_vip(v));
        assert_eq!(s.find(v, protocol::TCP, 80), Some(0));
        assert_eq!(s.find(v, protocol::UDP, 53), Some(1));
        assert_eq!(s.find(v, protocol::TCP, 443), None);
        assert_eq!(
            s.find(Ipv4Addr::new(203, 0, 113, 11), protocol::ICMP, 77),
            Some(2)
        );
        assert!(!s.is_vip(Ipv4Addr::new(203, 0, 113, 12)));
        assert_eq!(
            Services::new(vec![
                svc([1, 1, 1, 1], protocol::TCP, 80),
                svc([1, 1, 1, 1], protocol::TCP, 80)
            ])
            .unwrap_err(),
            ServiceError::Duplicate(0, 1)
        );
    }
}
