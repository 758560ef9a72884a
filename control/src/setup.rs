//! Turns a validated [`Config`] into the pieces both shells build engines from: the
//! forwarding snapshot, worker settings, and the control core's settings.

use std::net::Ipv4Addr;
use std::time::Duration;

use tollgate_dataplane::fib::FibError;
use tollgate_dataplane::lb::{LbRange, LbTable, LbTarget};
use tollgate_dataplane::nat::{NatConfig, Timeouts};
use tollgate_dataplane::service::{Policy, RealServer, Service, Services, SessionType};
use tollgate_dataplane::session::{Bandwidth, Limits, RateLimit, ServiceSet, VolumeLimit};
use tollgate_dataplane::stage::SubscriberLimits;
use tollgate_dataplane::table::neighbor::NeighborTiming;
use tollgate_dataplane::wire::ipv4::protocol;
use tollgate_dataplane::{
    Forwarding, ForwardingBuilder, MacAddr, RingSizes, Route, Side, SideConfig, Unknown,
    WorkerConfig,
};

use crate::config::{
    Config, LimitsConfig, PortConfig, ServiceProtocol, StaticSubscriber, UnknownPolicy,
};
pub use crate::config::{policy, session_type};
use tollgate_control_core::gateway::CoreConfig;
use tollgate_control_core::gateway::aaa::AaaPolicy;
use tollgate_control_core::gateway::neighbor::Timing;
use tollgate_control_core::gateway::pools::{Node, Pool, Pools, Range};
use tollgate_control_core::gateway::records::WallClock;
use tollgate_control_core::gateway::sessions::SessionRequest;

/// The MAC a memory or pcap port uses when the config gives none: locally administered,
/// `02:00:00:00:00:01` for access and `02:00:00:00:00:02` for core.
pub fn default_mac(side: Side) -> MacAddr {
    MacAddr([0x02, 0, 0, 0, 0, side.idx() as u8 + 1])
}

/// The port config of a side.
pub fn port(cfg: &Config, side: Side) -> &PortConfig {
    match side {
        Side::Access => &cfg.access,
        Side::Core => &cfg.core,
    }
}

/// The MAC a memory or pcap port uses.
pub fn configured_mac(cfg: &Config, side: Side) -> MacAddr {
    port(cfg, side).mac.map_or(default_mac(side), |m| m.0)
}

/// The MACs of memory or pcap ports, access then core.
pub fn configured_macs(cfg: &Config) -> [MacAddr; 2] {
    Side::ALL.map(|s| configured_mac(cfg, s))
}

/// The forwarding snapshot for ports whose MACs are `macs` (access, core).
pub fn forwarding(cfg: &Config, macs: [MacAddr; 2]) -> Result<Forwarding, FibError> {
    let side = |s: Side| {
        let p = port(cfg, s);
        SideConfig {
            mac: macs[s.idx()],
            address: p.address.addr,
            prefix_len: p.address.len,
        }
    };
    let mut b = ForwardingBuilder::new(side(Side::Access), side(Side::Core))
        .icmp_errors_per_s(cfg.icmp.errors_per_s)
        .services(services(cfg))
        .lb(lb(cfg))
        .nat(nat(cfg))
        .unknown(match cfg.subscribers.unknown {
            UnknownPolicy::Forward => Unknown::Forward,
            UnknownPolicy::Drop => Unknown::Drop,
            UnknownPolicy::Punt => Unknown::Punt,
        })
        .ipv6(cfg.ipv6.forwarding(macs))
        .routes6(cfg.ipv6.routes6())
        .nat64(cfg.nat64.forwarding())
        .dhcp(cfg.dhcp.punt());
    for r in &cfg.routes {
        b = b.route(Route {
            prefix: r.prefix.network(),
            len: r.prefix.len,
            via: r.via,
        });
    }
    b.build()
}

/// Settings of worker `id`.
pub fn worker(cfg: &Config, id: u16) -> WorkerConfig {
    WorkerConfig {
        id,
        burst: cfg.engine.burst,
        neighbor_capacity: cfg.arp.table_size,
        neighbor_timing: NeighborTiming {
            retry_ms: cfg.arp.retry_ms,
            failed_ms: cfg.arp.failed_ms,
        },
        hold_capacity: cfg.arp.hold_packets,
        hold_timeout_ms: cfg.arp.hold_timeout_ms,
        workers: cfg.engine.workers as u16,
        l2tp_sessions: if cfg.l2tp.enabled {
            cfg.l2tp.max_sessions
        } else {
            0
        },
        l2tp_mtu: cfg.l2tp.mtu,
        subscribers: SubscriberLimits {
            sessions: cfg.subscribers.max_sessions,
            flows: cfg.subscribers.max_flows,
            flows_per_subscriber: cfg.subscribers.flows_per_subscriber,
            burst_ms: cfg.subscribers.policer_burst_ms,
            ..SubscriberLimits::default()
        },
        ..WorkerConfig::default()
    }
}

/// The services of the config (validated), indexed in config order.
pub fn services(cfg: &Config) -> Services {
    let list = cfg
        .services
        .iter()
        .map(|s| Service {
            vip: s.vip,
            protocol: match s.protocol {
                ServiceProtocol::Tcp => protocol::TCP,
                ServiceProtocol::Udp => protocol::UDP,
                ServiceProtocol::Icmp => protocol::ICMP,
            },
            port: s.port,
            policy: policy(&s.policy).unwrap_or(Policy::RoundRobin),
            session_type: session_type(&s.session_type).unwrap_or(SessionType::Connection),
            servers: s
                .servers
                .iter()
                .map(|r| RealServer {
                    weight: r.weight,
                    priority: r.priority,
                    ..RealServer::new(r.address, r.port.unwrap_or(s.port))
                })
                .collect(),
        })
        .collect();
    // Validation has checked what Services::new checks.
    Services::new(list).unwrap_or_default()
}

/// Service names by index.
pub fn service_names(cfg: &Config) -> Vec<String> {
    cfg.services.iter().map(|s| s.name.clone()).collect()
}

/// The load-balancing ranges of the config (validated).
pub fn lb(cfg: &Config) -> LbTable {
    let ranges = cfg
        .lb_ranges
        .iter()
        .filter_map(|r| {
            let (first, last) = r.bounds()?;
            let targets = std::iter::once(r.primary)
                .chain(r.substitutes.iter().copied())
                .map(|m| LbTarget { mac: m.0, up: true })
                .collect();
            Some(LbRange {
                first,
                last,
                targets,
            })
        })
        .collect();
    LbTable::new(ranges).unwrap_or_default()
}

/// NAT settings.
pub fn nat(cfg: &Config) -> NatConfig {
    let n = &cfg.nat;
    NatConfig {
        addresses: if n.addresses.is_empty() {
            vec![cfg.core.address.addr]
        } else {
            n.addresses.clone()
        },
        ports: (n.port_min, n.port_max),
        timeouts: Timeouts {
            tcp_syn_ms: n.tcp_syn_timeout_s * 1000,
            tcp_established_ms: n.tcp_established_timeout_s * 1000,
            tcp_fin_ms: n.tcp_fin_timeout_s * 1000,
            tcp_closing_ms: n.tcp_closing_timeout_s * 1000,
            udp_ms: n.udp_timeout_s * 1000,
            icmp_ms: n.icmp_timeout_s * 1000,
        },
    }
}

/// The fast path's limits from the config's, with the downlink bandwidth as the rate
/// check's path when the config names none.
pub fn limits(l: &LimitsConfig, bandwidth: Bandwidth) -> Limits {
    Limits {
        session_timeout_ms: l.session_timeout_s.map(|s| s * 1000),
        idle_timeout_ms: l.idle_timeout_s.map(|s| s * 1000),
        idle_server: l.idle_server.zip(l.idle_server_timeout_s.map(|s| s * 1000)),
        volume: VolumeLimit {
            tx_bytes: l.volume_tx_bytes,
            rx_bytes: l.volume_rx_bytes,
            total_bytes: l.volume_total_bytes,
            tx_packets: l.volume_tx_packets,
            rx_packets: l.volume_rx_packets,
        },
        rate: l.rate_percent.map(|percent| RateLimit {
            percent,
            path_bps: l.rate_path.map_or(bandwidth.down_bps, |r| r.0),
            window_ms: l.rate_window_ms.unwrap_or(1000),
        }),
    }
}

/// The services a named list allows (`None`: all).
pub fn service_set(cfg: &Config, names: Option<&[String]>) -> ServiceSet {
    match names {
        None => ServiceSet::ALL,
        Some(list) => ServiceSet::from_indexes(list.iter().filter_map(|n| {
            cfg.services
                .iter()
                .position(|s| &s.name == n)
                .map(|i| i as u16)
        })),
    }
}

/// The session request of a static subscriber.
pub fn static_session(cfg: &Config, s: &StaticSubscriber) -> SessionRequest {
    let bandwidth = Bandwidth {
        up_bps: s.bandwidth_up.0,
        down_bps: s.bandwidth_down.0,
    };
    SessionRequest {
        user: s.user.clone(),
        address: s.address,
        mac: s.mac.map(|m| m.0),
        channel: s.channel,
        services: service_set(cfg, s.services.as_deref()),
        bandwidth,
        limits: limits(&s.limits, bandwidth),
        max_flows: s.max_flows.unwrap_or(0),
    }
}

/// The control core's settings; the L2TP engine's CSPRNG is keyed from the OS (an error
/// when the OS gives no random bytes: nothing weaker is used).
pub fn core(cfg: &Config, clock: WallClock) -> Result<CoreConfig, crate::os_random::NoRandomness> {
    let l2tp = cfg
        .l2tp
        .settings(cfg.engine.workers as u16, crate::os_random::seed()?);
    Ok(CoreConfig {
        arp: arp_timing(cfg),
        static_neighbors: static_neighbors(cfg),
        workers: cfg.engine.workers as u16,
        service_names: service_names(cfg),
        clock,
        aaa: aaa_policy(cfg),
        l2tp,
        pppoe: cfg.pppoe.settings(cfg, crate::os_random::seed()?),
        lns: cfg.pppoe.lns_settings(cfg, crate::os_random::seed()?),
        ipv6: cfg
            .ipv6
            .for_node(cfg.cluster_node().as_deref())
            .settings(crate::os_random::seed()?)
            .map(|mut s| {
                // DHCPv6 relay mode names the line in Interface-Id as DHCPv4 does.
                if let Some(r) = s.dhcpv6.as_mut().and_then(|d| d.relay.as_mut()) {
                    r.port_names = vec![
                        cfg.dhcp
                            .port_name
                            .clone()
                            .or_else(|| cfg.access.interface.clone())
                            .unwrap_or_else(|| "access".into()),
                    ];
                }
                s
            }),
        dhcp: cfg.dhcp.settings(cfg),
    })
}

/// Logins, pools and accounting settings of the control core.
pub fn aaa_policy(cfg: &Config) -> AaaPolicy {
    let a = &cfg.aaa;
    let secs = |s: u64| (s > 0).then(|| Duration::from_secs(s));
    AaaPolicy {
        interim: secs(a.radius.interim_interval_s as u64),
        dormant: secs(a.dormant_s),
        dormant_timeout: secs(a.dormant_timeout_s),
        app_timeout_margin: Duration::from_millis(a.app_timeout_margin_ms),
        max_pending: a.max_pending_logins,
        max_sessions_per_worker: cfg.subscribers.max_sessions,
        max_flows: 0,
        pools: pools(cfg),
        last_known: secs(a.spool_counters_s),
        session_prefix: cfg
            .cluster_node()
            .map(|n| format!("{n}."))
            .unwrap_or_default(),
    }
}

/// Whether a `[[pool.range]]` is this node's: every range on a single node; in a
/// cluster the ranges whose `node` is this node's name or that name no node.
fn range_is_mine(cfg: &Config, node: &Option<String>) -> bool {
    match (cfg.cluster_node(), node) {
        (Some(me), Some(n)) => &me == n,
        _ => true,
    }
}

/// This node's pool ranges, for the cluster's `cluster_range` table.
pub fn cluster_ranges(cfg: &Config) -> Vec<crate::database::cluster::NodeRange> {
    cfg.pools
        .iter()
        .flat_map(|p| {
            p.ranges
                .iter()
                .filter(|r| range_is_mine(cfg, &r.node))
                .filter_map(|r| r.bounds())
                .map(|(f, l)| crate::database::cluster::NodeRange {
                    pool: p.name.clone(),
                    first: f.into(),
                    last: l.into(),
                })
        })
        .chain(
            cfg.ipv6
                .node_ranges()
                .into_iter()
                .filter(|(node, _)| cfg.ipv6.enabled && cfg.cluster_node().as_ref() == Some(node))
                .map(|(_, p)| {
                    let first = u128::from(p.addr());
                    let host = u128::MAX.checked_shr(u32::from(p.len())).unwrap_or(0);
                    crate::database::cluster::NodeRange {
                        pool: IPV6_POOL.to_string(),
                        first: p.addr().into(),
                        last: std::net::Ipv6Addr::from(first | host).into(),
                    }
                }),
        )
        .collect()
}

/// The pool name of the `[[ipv6.range]]`s in `cluster_range` and `show cluster`.
pub const IPV6_POOL: &str = "ipv6";

/// The address pools and gateway nodes (all nodes up until checked).
pub fn pools(cfg: &Config) -> Pools {
    let node = |name: &Option<String>| {
        name.as_ref()
            .and_then(|n| cfg.nodes.iter().position(|x| &x.name == n))
    };
    Pools {
        pools: cfg
            .pools
            .iter()
            .map(|p| Pool {
                name: p.name.clone(),
                ranges: p
                    .ranges
                    .iter()
                    .filter(|r| range_is_mine(cfg, &r.node))
                    .filter_map(|r| {
                        let (f, l) = r.bounds()?;
                        Some(Range::new(f, l, node(&r.node)))
                    })
                    .collect(),
            })
            .collect(),
        nodes: cfg
            .nodes
            .iter()
            .map(|n| Node {
                name: n.name.clone(),
                up: true,
            })
            .collect(),
    }
}

/// Ring sizes.
pub fn rings(cfg: &Config) -> RingSizes {
    RingSizes {
        messages: cfg.engine.ring_messages,
        frames: cfg.engine.ring_frames,
    }
}

/// The neighbour resolver's timing.
pub fn arp_timing(cfg: &Config) -> Timing {
    Timing {
        retry: Duration::from_millis(cfg.arp.retry_ms),
        retries: cfg.arp.retries,
        reachable: Duration::from_secs(cfg.arp.reachable_s),
        failed: Duration::from_millis(cfg.arp.failed_ms),
    }
}

/// Static neighbours.
pub fn static_neighbors(cfg: &Config) -> Vec<(Ipv4Addr, MacAddr)> {
    cfg.neighbors.iter().map(|n| (n.address, n.mac.0)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
[access]
backend = "memory"
address = "10.10.0.1/24"

[core]
backend = "memory"
address = "192.0.2.1/24"
"#;

    fn parse(extra: &str) -> Result<Config, crate::config::ConfigError> {
        Config::parse(&format!("{BASE}{extra}"), "test.toml")
    }

    #[test]
    fn a_cluster_node_takes_only_its_ranges_and_prefixes_its_session_ids() {
        let src = "[database]\nurl = \"postgres://tg@localhost/x\"\n[cluster]\nnode = \"gw1\"\nheartbeat_ms = 500\nlease_ms = 4000\n[[pool]]\nname = \"m\"\n[[pool.range]]\nfirst = \"10.10.0.10\"\nlast = \"10.10.0.19\"\nnode = \"gw1\"\n[[pool.range]]\nfirst = \"10.10.0.20\"\nlast = \"10.10.0.29\"\nnode = \"gw2\"\n";
        let c = parse(src).unwrap();
        assert_eq!(c.database.as_ref().unwrap().node_name(), "gw1");
        assert_eq!(c.cluster_node().as_deref(), Some("gw1"));
        let p = aaa_policy(&c);
        assert_eq!(p.session_prefix, "gw1.");
        // Only gw1's range hands out addresses here; gw2's is gw2's.
        let ranges: Vec<_> = p.pools.pools[0]
            .ranges
            .iter()
            .map(|r| (r.first.to_string(), r.last.to_string()))
            .collect();
        assert_eq!(
            ranges,
            [("10.10.0.10".to_string(), "10.10.0.19".to_string())]
        );
        assert_eq!(cluster_ranges(&c).len(), 1);
        // Without a cluster the prefix is empty and every range is the node's.
        assert_eq!(aaa_policy(&parse("").unwrap()).session_prefix, "");
    }
}
