//! The daemon on DPDK ports (`backend = "dpdk"`, feature `dpdk`): starts the EAL from
//! `dpdk.eal_args`, opens the access and core devices with one queue pair per worker,
//! and runs the engine with handoff between workers (RSS spreads packets over the
//! queues by their 5-tuple, not by who owns their state). See docs/dpdk.md.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::Context as _;
use tollgate_dataplane::port::dpdk::DpdkPort;
use tollgate_dataplane::port::dpdk::{self, Device, DeviceConfig, PoolConfig};
use tollgate_dataplane::{MacAddr, Side};

use crate::config::Config;
use crate::{engine, setup};

/// Runs the gateway on DPDK ports until `stop` is set.
pub fn run(cfg: &Config, config_name: &str, stop: Arc<AtomicBool>) -> anyhow::Result<()> {
    let d = &cfg.dpdk;
    let eal = dpdk::eal_init(&d.eal_args).context("starting DPDK (check dpdk.eal_args)")?;
    let workers = cfg.engine.workers as u16;
    let dc = DeviceConfig {
        queues: workers,
        rx_descriptors: d.rx_descriptors,
        tx_descriptors: d.tx_descriptors,
        pool: PoolConfig {
            mbufs: d.mbufs,
            cache: d.mbuf_cache,
        },
        promiscuous: d.promiscuous,
    };
    let open = |side: Side| -> anyhow::Result<Device> {
        let spec = setup::port(cfg, side).device.as_deref().unwrap_or_default();
        let dev = Device::open(eal, spec, &dc)
            .with_context(|| format!("opening the {side} port ({side}.device = {spec:?})"))?;
        tracing::info!(
            %side,
            device = spec,
            port = dev.port_id(),
            queues = dev.queues(),
            rss = dev.rss(),
            mac = %dev.mac(),
            "DPDK port started"
        );
        if dev.mac() == MacAddr::ZERO {
            tracing::warn!(
                %side,
                device = spec,
                "the device has no MAC address (00:00:00:00:00:00): neighbours cannot reach the gateway on this side"
            );
        }
        Ok(dev)
    };
    let access = open(Side::Access)?;
    let core = open(Side::Core)?;
    let ports: Vec<[DpdkPort; 2]> = (0..workers)
        .map(|q| [access.port(q), core.port(q)])
        .collect();
    let macs = [access.mac(), core.mac()];
    engine::serve(cfg, config_name, ports, macs, || access.pool(), true, stop)
}
