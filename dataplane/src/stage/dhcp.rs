//! Stage: DHCPv4 client messages from the access side (issue 16, ACC-3). A DISCOVER comes
//! from 0.0.0.0 to 255.255.255.255, so IPv4 validation would drop it as a martian; it is
//! told apart before that, by its UDP destination port, and the whole frame (with its
//! VLAN tags) goes to the control plane, whose DHCP server answers with frames it
//! injects on the access port. Rate limits (per MAC and in all) are the control plane's,
//! as for PPPoE discovery; what the punt ring cannot take is counted as
//! `punt_ring_full`. In relay mode the servers' replies come to the relay's address
//! (`giaddr`, the access address) from the core side and are punted too.

use std::net::Ipv4Addr;

use crate::wire::get_u16;
use crate::wire::ipv4::protocol;

/// The DHCP server port (RFC 2131).
pub const SERVER_PORT: u16 = 67;

/// Whether the IPv4 packet at `ip` (the frame from the IPv4 header on) is a DHCP
/// message for the gateway's server: UDP to port 67, not a fragment, to the limited
/// broadcast address or to `ours` (the access address: unicast renewals and relay
/// agents), or from 0.0.0.0. A packet this does not take goes the usual way.
#[inline(always)]
pub fn is_client_message(ip: &[u8], ours: Ipv4Addr) -> bool {
    let Some(h) = ip.first_chunk::<20>() else {
        return false;
    };
    if h[0] >> 4 != 4 || h[9] != protocol::UDP {
        return false;
    }
    // Offset or more-fragments set: not a whole DHCP message.
    if get_u16(h, 6) & 0x3fff != 0 {
        return false;
    }
    let hl = usize::from(h[0] & 0x0f) * 4;
    if hl < 20 || ip.len() < hl + 8 || get_u16(ip, hl + 2) != SERVER_PORT {
        return false;
    }
    let src = Ipv4Addr::new(h[12], h[13], h[14], h[15]);
    let dst = Ipv4Addr::new(h[16], h[17], h[18], h[19]);
    dst == Ipv4Addr::BROADCAST || dst == ours || src.is_unspecified()
}

/// Relay mode: whether the IPv4 packet at `ip` (from the core side) is a DHCP server's
/// reply to the relay: UDP to port 67 of `giaddr` (the gateway's access address), not a
/// fragment.
#[inline(always)]
pub fn is_relay_reply(ip: &[u8], giaddr: Ipv4Addr) -> bool {
    let Some(h) = ip.first_chunk::<20>() else {
        return false;
    };
    if h[9] != protocol::UDP || h[0] >> 4 != 4 || get_u16(h, 6) & 0x3fff != 0 {
        return false;
    }
    let hl = usize::from(h[0] & 0x0f) * 4;
    hl >= 20
        && ip.len() >= hl + 8
        && get_u16(ip, hl + 2) == SERVER_PORT
        && Ipv4Addr::new(h[16], h[17], h[18], h[19]) == giaddr
}

#[cfg(test)]
mod tests {
    use super::*;

    const OURS: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);

    fn udp(src: [u8; 4], dst: [u8; 4], dport: u16) -> Vec<u8> {
        let b = etherparse::PacketBuilder::ipv4(src, dst, 64).udp(68, dport);
        let mut v = Vec::new();
        b.write(&mut v, &[1u8; 300]).unwrap();
        v
    }

    #[test]
    fn discover_renewal_and_relay_are_taken() {
        assert!(is_client_message(&udp([0; 4], [255; 4], 67), OURS));
        assert!(is_client_message(
            &udp([10, 0, 0, 9], [10, 0, 0, 1], 67),
            OURS
        ));
        assert!(is_client_message(&udp([10, 0, 0, 9], [255; 4], 67), OURS));
        assert!(is_client_message(&udp([0; 4], [10, 9, 9, 9], 67), OURS));
    }

    #[test]
    fn relay_replies_are_to_the_access_address() {
        assert!(is_relay_reply(
            &udp([192, 0, 2, 20], [10, 0, 0, 1], 67),
            OURS
        ));
        assert!(!is_relay_reply(
            &udp([192, 0, 2, 20], [10, 0, 0, 9], 67),
            OURS
        ));
        assert!(!is_relay_reply(
            &udp([192, 0, 2, 20], [10, 0, 0, 1], 68),
            OURS
        ));
        let full = udp([192, 0, 2, 20], [10, 0, 0, 1], 67);
        assert!(!is_relay_reply(&full[..27], OURS));
    }

    #[test]
    fn other_traffic_is_not() {
        // DHCP to a server elsewhere is a subscriber's forwarded traffic.
        assert!(!is_client_message(
            &udp([10, 0, 0, 9], [192, 0, 2, 1], 67),
            OURS
        ));
        assert!(!is_client_message(&udp([0; 4], [255; 4], 68), OURS));
        let mut frag = udp([0; 4], [255; 4], 67);
        frag[6] = 0x20; // more fragments
        assert!(!is_client_message(&frag, OURS));
        let mut tcp = udp([0; 4], [255; 4], 67);
        tcp[9] = 6;
        assert!(!is_client_message(&tcp, OURS));
        let full = udp([0; 4], [255; 4], 67);
        assert!(!is_client_message(&full[..27], OURS));
        assert!(!is_client_message(&full[..19], OURS));
    }
}
