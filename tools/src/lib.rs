//! Tollgate's measuring tools, on top of the control plane: [`pktgen`] generates
//! subscriber traffic through a gateway (its own engine on memory ports, a running one
//! over AF_PACKET, or a DPDK device) and measures what comes back; [`bench`] runs the
//! full pipeline on in-memory ports at 1k to 10M flows. `tollgate pktgen` and
//! `tollgate bench` are these. They are the only users of `tollgate-testkit` outside
//! tests: its scenarios and frame writers are shared with the criterion benches.

pub mod bench;
pub mod pktgen;
