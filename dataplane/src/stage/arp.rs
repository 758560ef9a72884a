//! Stage: ARP. The worker answers requests for the gateway's own address on the port's
//! side at once, in the request's buffer; it sends the control plane a copy of those
//! requests and every reply or gratuitous announcement, from which the control plane
//! learns neighbours.

use crate::counters::DropReason;
use crate::fib::SideConfig;
use crate::wire::arp::{Operation, Packet};
use crate::wire::ethernet;

/// What to do with an ARP packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// A request for our address: answer it, and copy it to the control plane.
    ReplyAndLearn,
    /// A reply or an announcement: the control plane learns from it.
    Punt,
    /// Not ours, or malformed.
    Drop(DropReason),
}

/// Decides what to do with the ARP packet at `l3` in `frame`, received on a port whose
/// identity is `port`.
pub fn classify(frame: &[u8], l3: usize, port: &SideConfig) -> Action {
    let Ok(p) = Packet::new_checked(&frame[l3..]) else {
        return Action::Drop(DropReason::ArpMalformed);
    };
    let (spa, tpa) = (p.sender_ip(), p.target_ip());
    match p.operation() {
        Some(Operation::Request) if tpa == port.address && spa != tpa => Action::ReplyAndLearn,
        Some(Operation::Request) if spa == tpa => Action::Punt,
        Some(Operation::Reply) => Action::Punt,
        _ => Action::Drop(DropReason::ArpNotForUs),
    }
}

/// Turns the request at `l3` into our reply, Ethernet header included.
pub fn reply_in_place(frame: &mut [u8], l3: usize, port: &SideConfig) {
    let requester = ethernet::Frame::new_unchecked(&*frame).src();
    if let Ok(mut p) = Packet::new_checked(&mut frame[l3..]) {
        p.make_reply(port.mac, port.address);
    }
    ethernet::rewrite_macs(frame, requester, port.mac);
}
