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

/// Whether the IPv4 packet at `ip` (the frame from the IPv4 header on) is a DHCP client
/// message: UDP to port 67, not a fragment, to any destination: broadcast, the gateway
/// (unicast renewals, relay agents), and in relay mode the external server's address
/// (a client's unicast RENEW or RELEASE names the server that gave its lease, and the
/// relay must see it). Subscribers do not reach other DHCP servers through the gateway.
#[inline(always)]
pub fn is_client_message(ip: &[u8]) -> bool {
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
    hl >= 20 && ip.len() >= hl + 8 && get_u16(ip, hl + 2) == SERVER_PORT
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
        assert!(is_client_message(&udp([0; 4], [255; 4], 67)));
        assert!(is_client_message(&udp([10, 0, 0, 9], [10, 0, 0, 1], 67)));
        assert!(is_client_message(&udp([10, 0, 0, 9], [255; 4], 67)));
        assert!(is_client_message(&udp([0; 4], [10, 9, 9, 9], 67)));
        // Relay mode: a unicast RELEASE to the external server that leased.
        assert!(is_client_message(&udp([10, 0, 0, 9], [192, 0, 2, 1], 67)));
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
        assert!(!is_client_message(&udp([0; 4], [255; 4], 68)));
        let mut frag = udp([0; 4], [255; 4], 67);
        frag[6] = 0x20; // more fragments
        assert!(!is_client_message(&frag));
        let mut tcp = udp([0; 4], [255; 4], 67);
        tcp[9] = 6;
        assert!(!is_client_message(&tcp));
        let full = udp([0; 4], [255; 4], 67);
        assert!(!is_client_message(&full[..27]));
        assert!(!is_client_message(&full[..19]));
    }
}
