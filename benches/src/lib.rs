//! Shared fixtures for the benches: a forwarding table like the lab's and template
//! frames built with etherparse.

use std::net::Ipv4Addr;

use etherparse::PacketBuilder;
use tollgate_dataplane::{Forwarding, ForwardingBuilder, Route, SideConfig};

pub use tollgate_testkit::lab::{ACC_MAC, CORE_MAC, SRV, SRV_MAC, SUB_MAC};

/// The lab's forwarding table: access 10.10.0.1/24, core 192.0.2.1/24, one static route.
pub fn lab_forwarding() -> Forwarding {
    ForwardingBuilder::new(
        SideConfig {
            mac: ACC_MAC,
            address: Ipv4Addr::new(10, 10, 0, 1),
            prefix_len: 24,
        },
        SideConfig {
            mac: CORE_MAC,
            address: Ipv4Addr::new(192, 0, 2, 1),
            prefix_len: 24,
        },
    )
    .route(Route {
        prefix: Ipv4Addr::new(198, 51, 100, 0),
        len: 24,
        via: Ipv4Addr::new(192, 0, 2, 254),
    })
    .build()
    .expect("valid lab table")
}

/// `n` uplink UDP frames of `size` bytes (Ethernet header included, no FCS) from `n`
/// subscribers of the access subnet to the server.
pub fn uplink_frames(n: usize, size: usize) -> Vec<Vec<u8>> {
    let overhead = 14 + 20 + 8;
    (0..n)
        .map(|i| {
            let src = Ipv4Addr::new(10, 10, 0, 2 + (i % 250) as u8);
            let mut v = Vec::with_capacity(size);
            PacketBuilder::ethernet2(SUB_MAC.0, ACC_MAC.0)
                .ipv4(src.octets(), SRV.octets(), 64)
                .udp(10_000 + i as u16, 5001)
                .write(&mut v, &vec![0x5a; size.saturating_sub(overhead)])
                .expect("frame builds");
            v
        })
        .collect()
}

/// The full-pipeline scenario (shared with `tollgate bench`): see
/// [`tollgate_testkit::scenario`].
pub use tollgate_testkit::scenario as pipeline;
