//! Stage 7: L2 rewrite. Destination MAC from the neighbour table, source MAC of the
//! egress port. (The load-balancing range table joins here with the fast-path issue.)

use crate::types::MacAddr;
use crate::wire::ethernet;

/// Writes the neighbour's MAC as destination and the egress port's MAC as source.
#[inline(always)]
pub fn l2(frame: &mut [u8], neighbor: MacAddr, egress: MacAddr) {
    ethernet::rewrite_macs(frame, neighbor, egress);
}
