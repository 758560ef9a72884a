//! Stage: ARP. The worker answers requests for the gateway's own addresses on the port's
//! side (its address, and on the core side the NAT addresses) at once, in the request's
//! buffer; it sends the control plane a copy of those requests and every reply or
//! gratuitous announcement, from which the control plane learns neighbours.

use std::net::Ipv4Addr;

use crate::counters::DropReason;
use crate::types::MacAddr;
use crate::wire::arp::{Operation, Packet};
use crate::wire::ethernet;

/// What to do with an ARP packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// A request for our address `.0`: answer it, and copy it to the control plane.
    ReplyAndLearn(Ipv4Addr),
    /// A reply or an announcement: the control plane learns from it.
    Punt,
    /// Not ours, or malformed.
    Drop(DropReason),
}

/// Decides what to do with the ARP packet at `l3` in `frame`; `ours` says which
/// addresses the gateway answers for on this port.
pub fn classify(frame: &[u8], l3: usize, ours: impl Fn(Ipv4Addr) -> bool) -> Action {
    let Ok(p) = Packet::new_checked(&frame[l3..]) else {
        return Action::Drop(DropReason::ArpMalformed);
    };
    let (spa, tpa) = (p.sender_ip(), p.target_ip());
    match p.operation() {
        Some(Operation::Request) if spa != tpa && ours(tpa) => Action::ReplyAndLearn(tpa),
        Some(Operation::Request) if spa == tpa => Action::Punt,
        Some(Operation::Reply) => Action::Punt,
        _ => Action::Drop(DropReason::ArpNotForUs),
    }
}

/// Turns the request at `l3` into our reply for `ip` at `mac`, Ethernet header included.
pub fn reply_in_place(frame: &mut [u8], l3: usize, mac: MacAddr, ip: Ipv4Addr) {
    let requester = ethernet::Frame::new_unchecked(&*frame).src();
    if let Ok(mut p) = Packet::new_checked(&mut frame[l3..]) {
        p.make_reply(mac, ip);
    }
    ethernet::rewrite_macs(frame, requester, mac);
}
