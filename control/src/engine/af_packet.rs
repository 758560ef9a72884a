//! The AF_PACKET backend's start-up: one socket pair per worker, and with more than one
//! worker a fanout group per interface whose program gives each packet to its owner.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::Context as _;
use tollgate_dataplane::port::af_packet::{AfPacketConfig, AfPacketPort};
use tollgate_dataplane::{HeapPool, Side, steer};

use crate::config::Config;
use crate::{engine, setup};

/// Opens the AF_PACKET ports and runs the gateway on them until `stop`.
pub fn run(cfg: &Config, config_name: &str, stop: Arc<AtomicBool>) -> anyhow::Result<()> {
    let workers = cfg.engine.workers;
    let buffers = cfg.engine.buffers;
    let mut ports = Vec::with_capacity(workers);
    let nat = setup::nat(cfg);
    // The NAT64 pool's ports come from the same per-worker slices as the NAT ports.
    let mut by_port = nat.addresses.clone();
    by_port.extend(cfg.nat64.forwarding().pool);
    for _ in 0..workers {
        let open = |side: Side| -> anyhow::Result<AfPacketPort> {
            let p = setup::port(cfg, side);
            let name = p.interface.clone().unwrap_or_default();
            let mut ac = AfPacketConfig::new(&name);
            ac.block_size = cfg.af_packet.block_size;
            ac.block_count = cfg.af_packet.blocks;
            ac.block_timeout_ms = cfg.af_packet.block_timeout_ms;
            ac.max_delay_ms = cfg.af_packet.max_delay_ms;
            ac.tx_frames = cfg.af_packet.tx_frames;
            if workers > 1 {
                // One fanout group per interface, whose program gives each packet
                // to the worker that owns its subscriber or NAT port.
                ac.fanout_group = Some(
                    (std::process::id() as u16)
                        .wrapping_mul(2)
                        .wrapping_add(side.idx() as u16),
                );
                // With L2TP on, a data message to the side's address goes by the
                // packet inside (an LNS's PPP subscriber), not by the LAC's address.
                let n = workers as u16;
                let tunnel = cfg
                    .l2tp
                    .enabled
                    .then(|| setup::port(cfg, side).address.addr);
                ac.fanout_program = Some(match side {
                    Side::Access => steer::access_program_with(n, tunnel),
                    Side::Core => steer::core_program_with(n, &by_port, nat.ports, tunnel),
                });
            }
            AfPacketPort::open(&ac).with_context(|| format!("opening the {side} port"))
        };
        ports.push([open(Side::Access)?, open(Side::Core)?]);
    }
    let macs = [ports[0][0].mac(), ports[0][1].mac()];
    // The fanout programs deliver each packet to its owner: no handoff.
    engine::serve(
        cfg,
        config_name,
        ports,
        macs,
        || HeapPool::new(buffers),
        false,
        stop,
    )
}
