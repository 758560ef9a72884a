//! The daemon on AF_XDP ports (`backend = "af_xdp"`, feature `af_xdp`): attaches the XDP
//! program to the access and core interfaces, opens one socket per worker on each (the
//! worker's queue), all sharing one UMEM split into a pool per worker, and runs the
//! engine with handoff between workers (the interface's queues spread packets by the
//! NIC's hash, or the sender's queue on veth, not by who owns their state). It logs which
//! XDP mode and copy mode each interface got. See docs/config.md (`[af_xdp]`).

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::{Context as _, bail};
use tollgate_dataplane::Side;
use tollgate_dataplane::port::af_xdp::{
    AfXdpPort, InterfaceConfig, KernelRules, SocketConfig, Umem, XdpInterface, XdpMode, ZeroCopy,
};

use crate::config::{Config, XdpModeConfig, ZeroCopyConfig};
use crate::{engine, setup};

/// Runs the gateway on AF_XDP ports until `stop` is set.
pub fn run(cfg: &Config, config_name: &str, stop: Arc<AtomicBool>) -> anyhow::Result<()> {
    let x = &cfg.af_xdp;
    let workers = cfg.engine.workers;
    let mode = match x.xdp_mode {
        XdpModeConfig::Auto => XdpMode::Auto,
        XdpModeConfig::Native => XdpMode::Native,
        XdpModeConfig::Generic => XdpMode::Generic,
    };
    let kernel = KernelRules {
        ethertypes: x.kernel_ethertypes.clone(),
        prefixes: x
            .kernel_destinations
            .iter()
            .map(|n| (n.addr, n.len))
            .collect(),
    };
    let open = |side: Side| -> anyhow::Result<Arc<XdpInterface>> {
        let name = setup::port(cfg, side).interface.clone().unwrap_or_default();
        let iface = XdpInterface::open(&InterfaceConfig {
            interface: name.clone(),
            mode,
            kernel: kernel.clone(),
        })
        .with_context(|| format!("opening the {side} port ({side}.interface = {name:?})"))?;
        match iface.mode() {
            XdpMode::Generic if mode == XdpMode::Auto => tracing::warn!(
                %side,
                interface = %name,
                "the driver has no native XDP: the program runs in generic mode (slower; af_xdp.xdp_mode = \"generic\" silences this)"
            ),
            m => {
                tracing::info!(%side, interface = %name, xdp_mode = m.name(), "XDP program attached")
            }
        }
        if let Some(q) = iface.rx_queues().filter(|q| *q as usize > workers) {
            bail!(
                "the {side} interface {name} receives on {q} queues and there are {workers} workers: \
                 frames on queues {workers} to {} would go to the kernel, not to Tollgate; set \
                 `ethtool -L {name} combined {workers}` (or rx {workers}), or engine.workers = {q}",
                q - 1
            );
        }
        Ok(iface)
    };
    let access = open(Side::Access)?;
    let core = open(Side::Core)?;
    let (_umem, pools) = Umem::new(x.frames * workers, x.frame_size, workers)
        .context("allocating the AF_XDP frames (af_xdp.frames, af_xdp.frame_size)")?;
    let keep = x.keep_in_pool(
        cfg.engine.burst,
        cfg.arp.hold_packets,
        cfg.engine.handoff_ring,
        workers,
    );
    let zero_copy = match x.zero_copy {
        ZeroCopyConfig::Auto => ZeroCopy::Auto,
        ZeroCopyConfig::On => ZeroCopy::On,
        ZeroCopyConfig::Off => ZeroCopy::Off,
    };
    let mut ports = Vec::with_capacity(workers);
    let mut worker_pools = Vec::with_capacity(workers);
    for (w, mut pool) in pools.into_iter().enumerate() {
        let sc = SocketConfig {
            queue: w as u32,
            zero_copy,
            rx_ring: x.rx_ring,
            tx_ring: x.tx_ring,
            fill_ring: x.fill_ring,
            completion_ring: x.completion_ring,
            keep_in_pool: keep,
        };
        let mut open = |iface: &Arc<XdpInterface>, side: Side| -> anyhow::Result<AfXdpPort> {
            let p = AfXdpPort::open(iface, &mut pool, &sc).with_context(|| {
                format!("opening queue {w} of the {side} interface {}", iface.name())
            })?;
            if w == 0 {
                tracing::info!(
                    %side,
                    interface = iface.name(),
                    zero_copy = p.zero_copy(),
                    "AF_XDP sockets bound ({})",
                    if p.zero_copy() { "zero-copy" } else { "copy mode: the kernel copies each frame" }
                );
            }
            Ok(p)
        };
        ports.push([open(&access, Side::Access)?, open(&core, Side::Core)?]);
        worker_pools.push(pool);
    }
    let macs = [access.mac(), core.mac()];
    // serve takes one pool per worker, in worker order: the ones the ports were filled from.
    let pools = RefCell::new(worker_pools.into_iter());
    let next_pool = || {
        pools
            .borrow_mut()
            .next()
            .expect("one pool per worker, taken once each")
    };
    engine::serve(cfg, config_name, ports, macs, next_pool, workers > 1, stop)
}
