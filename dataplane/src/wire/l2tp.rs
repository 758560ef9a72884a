//! L2TPv2 headers (RFC 2661 section 3.1) and the PPP header of the frames they carry
//! (RFC 1661, with the address/control field of RFC 1662 and protocol-field compression).
//!
//! The fast path reads data messages (tunnel and session ids, where the PPP frame
//! starts) and writes the fixed encapsulation of [`Encap`]; control messages are only
//! recognised here and handed to the control plane, which has its own codec.

use std::net::Ipv4Addr;

use super::{WireError, checksum, get_u16, ipv4, put_u16, udp};

/// The UDP port of L2TP.
pub const PORT: u16 = 1701;

/// Header flag bits (first 16 bits of the header).
pub mod flags {
    /// Type: control message.
    pub const T: u16 = 0x8000;
    /// Length field present.
    pub const L: u16 = 0x4000;
    /// Ns and Nr present.
    pub const S: u16 = 0x0800;
    /// Offset size present.
    pub const O: u16 = 0x0200;
    /// Priority (data messages).
    pub const P: u16 = 0x0100;
    /// The version nibble.
    pub const VERSION_MASK: u16 = 0x000f;
}

/// PPP protocol numbers the gateway knows.
pub mod ppp {
    /// IPv4.
    pub const IPV4: u16 = 0x0021;
    /// IPv6.
    pub const IPV6: u16 = 0x0057;
    /// Link Control Protocol.
    pub const LCP: u16 = 0xc021;
}

/// The fields of an L2TPv2 header, parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// A control message (T bit).
    pub control: bool,
    /// Tunnel id (the receiver's).
    pub tunnel: u16,
    /// Session id (the receiver's).
    pub session: u16,
    /// Ns and Nr, when the S bit is set.
    pub sequence: Option<(u16, u16)>,
    /// The Length field, when the L bit is set.
    pub length: Option<u16>,
    /// Where the payload starts (header and offset padding skipped).
    pub payload_at: usize,
}

/// A view of an L2TPv2 message (the UDP payload).
#[derive(Debug)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps `buffer` without checks.
    pub fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// Wraps `buffer`, checking that [`Self::header`] succeeds.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let p = Self::new_unchecked(buffer);
        p.header()?;
        Ok(p)
    }

    /// Parses the header: version 2, every optional field within the buffer, a Length
    /// (when present) that is neither shorter than the header nor longer than the buffer,
    /// and a control message with L and S set and no offset (RFC 2661 3.1).
    #[inline]
    pub fn header(&self) -> Result<Header, WireError> {
        let b = self.buffer.as_ref();
        if b.len() < 6 {
            return Err(WireError::Truncated);
        }
        let f = get_u16(b, 0);
        if f & flags::VERSION_MASK != 2 {
            return Err(WireError::Malformed);
        }
        let control = f & flags::T != 0;
        if control && (f & (flags::L | flags::S) != flags::L | flags::S || f & flags::O != 0) {
            return Err(WireError::Malformed);
        }
        let mut at = 2;
        let length = if f & flags::L != 0 {
            let l = get_u16(b, at);
            at += 2;
            Some(l)
        } else {
            None
        };
        if b.len() < at + 4 {
            return Err(WireError::Truncated);
        }
        let tunnel = get_u16(b, at);
        let session = get_u16(b, at + 2);
        at += 4;
        let sequence = if f & flags::S != 0 {
            if b.len() < at + 4 {
                return Err(WireError::Truncated);
            }
            let s = (get_u16(b, at), get_u16(b, at + 2));
            at += 4;
            Some(s)
        } else {
            None
        };
        if f & flags::O != 0 {
            if b.len() < at + 2 {
                return Err(WireError::Truncated);
            }
            at += 2 + get_u16(b, at) as usize;
        }
        let end = match length {
            Some(l) => {
                if (l as usize) > b.len() {
                    return Err(WireError::Truncated);
                }
                l as usize
            }
            None => b.len(),
        };
        if at > end {
            return Err(WireError::Malformed);
        }
        Ok(Header {
            control,
            tunnel,
            session,
            sequence,
            length,
            payload_at: at,
        })
    }
}

/// Reads the PPP header at the start of `frame`: the optional address/control field
/// (`ff 03`) and a one- or two-byte protocol. Returns the protocol and the header length.
#[inline]
pub fn ppp_protocol(frame: &[u8]) -> Result<(u16, usize), WireError> {
    let at = if frame.starts_with(&[0xff, 0x03]) {
        2
    } else {
        0
    };
    let first = *frame.get(at).ok_or(WireError::Truncated)?;
    if first & 1 == 1 {
        // Protocol-field compression: a single odd byte.
        return Ok((first as u16, at + 1));
    }
    let second = *frame.get(at + 1).ok_or(WireError::Truncated)?;
    if second & 1 == 0 {
        return Err(WireError::Malformed);
    }
    Ok((u16::from_be_bytes([first, second]), at + 2))
}

/// The MAC an LNS's PPP subscriber has in the fast path (its session's `mac`, the source
/// MAC its decapsulated packets get): locally administered, `02:00:4c:32` and our L2TP
/// session id, so `ctl show session` tells which L2TP session carries it.
pub const fn subscriber_mac(session: u16) -> crate::types::MacAddr {
    let [hi, lo] = session.to_be_bytes();
    crate::types::MacAddr([0x02, 0x00, 0x4c, 0x32, hi, lo])
}

/// Bytes the encapsulation adds in front of an IPv4 packet: IPv4 (20), UDP (8), L2TP
/// without length or sequence numbers (6), PPP with address/control (4).
pub const ENCAP_LEN: usize = 38;

/// The encapsulation of one session, built once when the session is installed: every
/// packet copies it and fills in two lengths and the IPv4 checksum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Encap {
    bytes: [u8; ENCAP_LEN],
    /// One's-complement sum of the IPv4 header with zero length and checksum.
    ip_sum: u32,
}

impl Encap {
    /// The encapsulation from `local:PORT` to `peer:peer_port` into the peer's tunnel and
    /// session. No UDP checksum (allowed for IPv4, and what every LAC and LNS sends), no
    /// DF: a router between LAC and LNS may fragment.
    pub fn new(
        local: Ipv4Addr,
        peer: Ipv4Addr,
        peer_port: u16,
        peer_tunnel: u16,
        peer_session: u16,
    ) -> Encap {
        let mut b = [0u8; ENCAP_LEN];
        b[0] = 0x45;
        b[8] = 64;
        b[9] = super::ipv4::protocol::UDP;
        b[12..16].copy_from_slice(&local.octets());
        b[16..20].copy_from_slice(&peer.octets());
        let mut u = udp::Packet::new_unchecked(&mut b[ipv4::MIN_HEADER_LEN..]);
        u.set_src_port(PORT);
        u.set_dst_port(peer_port);
        put_u16(&mut b, 28, 0x0002);
        put_u16(&mut b, 30, peer_tunnel);
        put_u16(&mut b, 32, peer_session);
        b[34..38].copy_from_slice(&[0xff, 0x03, 0x00, 0x21]);
        let ip_sum = checksum::fold(checksum::sum(&b[..20])) as u32;
        Encap { bytes: b, ip_sum }
    }

    /// Writes the encapsulation of an IPv4 packet of `inner_len` bytes into `out` (the
    /// [`ENCAP_LEN`] bytes in front of it).
    #[inline(always)]
    pub fn write(&self, out: &mut [u8; ENCAP_LEN], inner_len: u16) {
        self.write_ppp(out, inner_len, ppp::IPV4);
    }

    /// [`Encap::write`] for a packet of PPP protocol `protocol` (IPv6's 0x0057 after
    /// IPv6CP): the template's last two bytes.
    #[inline(always)]
    pub fn write_ppp(&self, out: &mut [u8; ENCAP_LEN], inner_len: u16, protocol: u16) {
        *out = self.bytes;
        put_u16(out, ENCAP_LEN - 2, protocol);
        let total = inner_len.wrapping_add(ENCAP_LEN as u16);
        put_u16(out, 2, total);
        let udp_len = total - ipv4::MIN_HEADER_LEN as u16;
        put_u16(
            out,
            ipv4::MIN_HEADER_LEN + udp::field::LENGTH.start,
            udp_len,
        );
        put_u16(out, 10, !checksum::fold(self.ip_sum + total as u32));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{Ipv4HeaderSlice, UdpHeaderSlice};

    #[test]
    fn data_header_minimal_and_with_every_option() {
        let h = Packet::new_checked(&[0x00, 0x02, 0, 7, 0, 9, 0xff][..])
            .unwrap()
            .header()
            .unwrap();
        assert_eq!(
            (h.control, h.tunnel, h.session, h.payload_at),
            (false, 7, 9, 6)
        );
        // L, S and O: length 20, ids, Ns/Nr, offset 2 with two pad bytes, then payload.
        let b = [
            0x4a, 0x02, 0, 20, 0, 1, 0, 2, 0, 3, 0, 4, 0, 2, 0xaa, 0xbb, 0xff, 0x03, 0, 0x21,
        ];
        let h = Packet::new_checked(&b[..]).unwrap().header().unwrap();
        assert_eq!(h.sequence, Some((3, 4)));
        assert_eq!(h.length, Some(20));
        assert_eq!(h.payload_at, 16);
        assert_eq!(ppp_protocol(&b[16..]), Ok((ppp::IPV4, 4)));
    }

    #[test]
    fn control_header_rules() {
        let zlb = [0xc8, 0x02, 0, 12, 0, 5, 0, 0, 0, 1, 0, 2];
        let h = Packet::new_checked(&zlb[..]).unwrap().header().unwrap();
        assert!(h.control);
        assert_eq!(h.sequence, Some((1, 2)));
        // Control without S, version 3, a length past the end, a truncated header.
        assert!(Packet::new_checked(&[0xc0, 0x02, 0, 8, 0, 5, 0, 0][..]).is_err());
        assert!(Packet::new_checked(&[0xc8, 0x03, 0, 12, 0, 5, 0, 0, 0, 1, 0, 2][..]).is_err());
        assert!(Packet::new_checked(&[0xc8, 0x02, 0, 40, 0, 5, 0, 0, 0, 1, 0, 2][..]).is_err());
        assert!(Packet::new_checked(&[0xc8, 0x02, 0][..]).is_err());
        // An offset pointing past the declared length.
        assert!(Packet::new_checked(&[0x42, 0x02, 0, 8, 0, 1, 0, 2, 0, 9][..]).is_err());
    }

    #[test]
    fn ppp_forms() {
        assert_eq!(ppp_protocol(&[0x21, 0x45]), Ok((0x21, 1)));
        assert_eq!(ppp_protocol(&[0xc0, 0x21, 1]), Ok((ppp::LCP, 2)));
        assert_eq!(ppp_protocol(&[0xff, 0x03]), Err(WireError::Truncated));
        assert_eq!(ppp_protocol(&[0x00, 0x20]), Err(WireError::Malformed));
    }

    #[test]
    fn encap_is_valid_ipv4_udp() {
        let e = Encap::new(
            Ipv4Addr::new(172, 16, 0, 1),
            Ipv4Addr::new(172, 16, 0, 2),
            1701,
            0x1234,
            0x0042,
        );
        let mut out = [0u8; ENCAP_LEN];
        e.write(&mut out, 84);
        let ip = Ipv4HeaderSlice::from_slice(&out[..20]).unwrap();
        assert_eq!(ip.total_len(), 122);
        assert_eq!(ip.header_checksum(), ip.to_header().calc_header_checksum());
        let udp = UdpHeaderSlice::from_slice(&out[20..28]).unwrap();
        assert_eq!((udp.source_port(), udp.destination_port()), (1701, 1701));
        assert_eq!(udp.length(), 102);
        let h = Packet::new_checked(&out[28..]).unwrap().header().unwrap();
        assert_eq!((h.tunnel, h.session, h.control), (0x1234, 0x42, false));
        assert_eq!(ppp_protocol(&out[34..]), Ok((ppp::IPV4, 4)));
    }
}
