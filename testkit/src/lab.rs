//! The lab's addressing plan (scripts/lab.sh, config/default.toml), with fixed MACs for
//! the hosts so that expected frames can be written down.

use std::net::Ipv4Addr;

use tollgate_dataplane::MacAddr;

/// The access port (the default MAC of a memory or pcap port).
pub const ACC_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x01]);
/// The core port (the default MAC of a memory or pcap port).
pub const CORE_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x02]);
/// Subscriber 1.
pub const SUB_MAC: MacAddr = MacAddr([0x02, 0x10, 0, 0, 0, 0x11]);
/// Server 1.
pub const SRV_MAC: MacAddr = MacAddr([0x02, 0x20, 0, 0, 0, 0x10]);
/// The core-side router.
pub const RTR_MAC: MacAddr = MacAddr([0x02, 0x20, 0, 0, 0, 0xfe]);

/// The gateway on the access side.
pub const GW_ACC: Ipv4Addr = Ipv4Addr::new(10, 10, 0, 1);
/// The gateway on the core side.
pub const GW_CORE: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// Subscriber 1.
pub const SUB: Ipv4Addr = Ipv4Addr::new(10, 10, 0, 11);
/// Server 1.
pub const SRV: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
/// The core-side router (next hop of 198.51.100.0/24).
pub const RTR: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 254);
/// A host behind the router.
pub const FAR: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);
