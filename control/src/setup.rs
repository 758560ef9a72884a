//! Turns a validated [`Config`] into the pieces both shells build engines from: the
//! forwarding snapshot, worker settings, and the control core's settings.

use std::net::Ipv4Addr;
use std::time::Duration;

use tollgate_dataplane::fib::FibError;
use tollgate_dataplane::table::neighbor::NeighborTiming;
use tollgate_dataplane::{
    Forwarding, ForwardingBuilder, MacAddr, RingSizes, Route, Side, SideConfig, WorkerConfig,
};

use crate::config::{Config, PortConfig};
use crate::core::neighbor::Timing;

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
        .icmp_errors_per_s(cfg.icmp.errors_per_s);
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
        ..WorkerConfig::default()
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
