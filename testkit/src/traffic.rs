//! Frames written straight into a buffer, for generating millions of them: the same
//! bytes etherparse builds (the tests below check that), without a `Vec` per frame.
//! Used by the pipeline scenario ([`crate::scenario`]) and by `tollgate pktgen`.

use std::net::Ipv4Addr;

use tollgate_dataplane::MacAddr;
use tollgate_dataplane::wire::checksum::{add, fold, pseudo_header_sum, sum};

/// Ethernet + IPv4 header bytes (no options).
pub const L3_AT: usize = 14;
/// Where the transport header starts.
pub const L4_AT: usize = L3_AT + 20;
/// The shortest frame the generator writes (Ethernet minimum without FCS).
pub const MIN_FRAME: usize = 60;

/// TCP flags, as on the wire.
pub mod tcp_flags {
    /// FIN.
    pub const FIN: u8 = 0x01;
    /// SYN.
    pub const SYN: u8 = 0x02;
    /// RST.
    pub const RST: u8 = 0x04;
    /// PSH.
    pub const PSH: u8 = 0x08;
    /// ACK.
    pub const ACK: u8 = 0x10;
}

/// The two ends of a frame: MACs, addresses and ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ends {
    /// Source MAC.
    pub src_mac: MacAddr,
    /// Destination MAC.
    pub dst_mac: MacAddr,
    /// Source address and port.
    pub src: (Ipv4Addr, u16),
    /// Destination address and port.
    pub dst: (Ipv4Addr, u16),
}

fn ethernet_ipv4(f: &mut [u8], e: &Ends, proto: u8, ttl: u8, ip_len: usize) {
    f[0..6].copy_from_slice(&e.dst_mac.0);
    f[6..12].copy_from_slice(&e.src_mac.0);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    let h = &mut f[L3_AT..L4_AT];
    h[0] = 0x45;
    h[1] = 0;
    h[2..4].copy_from_slice(&(ip_len as u16).to_be_bytes());
    h[4..6].copy_from_slice(&[0, 0]);
    // Don't fragment, as etherparse writes it.
    h[6..8].copy_from_slice(&[0x40, 0x00]);
    h[8] = ttl;
    h[9] = proto;
    h[10..12].copy_from_slice(&[0, 0]);
    h[12..16].copy_from_slice(&e.src.0.octets());
    h[16..20].copy_from_slice(&e.dst.0.octets());
    let c = !fold(sum(h));
    h[10..12].copy_from_slice(&c.to_be_bytes());
}

/// Writes a TCP segment with a 20-byte header and `payload_len` bytes of payload (left
/// as they are in `f`, so a caller may have written them first) into `f`; returns the
/// frame length, or `None` if `f` is too short.
#[allow(clippy::too_many_arguments)]
pub fn tcp(
    f: &mut [u8],
    e: &Ends,
    ttl: u8,
    seq: u32,
    ack: u32,
    flags: u8,
    window: u16,
    payload_len: usize,
) -> Option<usize> {
    let l4_len = 20 + payload_len;
    let len = L4_AT + l4_len;
    let f = f.get_mut(..len)?;
    ethernet_ipv4(f, e, 6, ttl, 20 + l4_len);
    let t = &mut f[L4_AT..];
    t[0..2].copy_from_slice(&e.src.1.to_be_bytes());
    t[2..4].copy_from_slice(&e.dst.1.to_be_bytes());
    t[4..8].copy_from_slice(&seq.to_be_bytes());
    t[8..12].copy_from_slice(&ack.to_be_bytes());
    t[12] = 5 << 4;
    t[13] = flags;
    t[14..16].copy_from_slice(&window.to_be_bytes());
    t[16..20].copy_from_slice(&[0, 0, 0, 0]);
    let c = !fold(add(
        sum(t),
        pseudo_header_sum(e.src.0, e.dst.0, 6, l4_len as u16),
    ));
    t[16..18].copy_from_slice(&c.to_be_bytes());
    Some(len)
}

/// Writes a UDP datagram with `payload_len` bytes of payload (left as they are in `f`)
/// into `f`; returns the frame length, or `None` if `f` is too short.
pub fn udp(f: &mut [u8], e: &Ends, ttl: u8, payload_len: usize) -> Option<usize> {
    let l4_len = 8 + payload_len;
    let len = L4_AT + l4_len;
    let f = f.get_mut(..len)?;
    ethernet_ipv4(f, e, 17, ttl, 20 + l4_len);
    let t = &mut f[L4_AT..];
    t[0..2].copy_from_slice(&e.src.1.to_be_bytes());
    t[2..4].copy_from_slice(&e.dst.1.to_be_bytes());
    t[4..6].copy_from_slice(&(l4_len as u16).to_be_bytes());
    t[6..8].copy_from_slice(&[0, 0]);
    let mut c = !fold(add(
        sum(t),
        pseudo_header_sum(e.src.0, e.dst.0, 17, l4_len as u16),
    ));
    if c == 0 {
        c = 0xffff;
    }
    t[6..8].copy_from_slice(&c.to_be_bytes());
    Some(len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    const A: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
    const B: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);

    fn ends() -> Ends {
        Ends {
            src_mac: A,
            dst_mac: B,
            src: (Ipv4Addr::new(10, 0, 0, 2), 10_000),
            dst: (Ipv4Addr::new(203, 0, 113, 10), 80),
        }
    }

    #[test]
    fn tcp_matches_etherparse() {
        let mut want = Vec::new();
        PacketBuilder::ethernet2(A.0, B.0)
            .ipv4([10, 0, 0, 2], [203, 0, 113, 10], 64)
            .tcp(10_000, 80, 2, 1000)
            .ack(1)
            .write(&mut want, &[0x5a; 10])
            .unwrap();
        let mut f = [0x5a; 128];
        let n = tcp(&mut f, &ends(), 64, 2, 1, tcp_flags::ACK, 1000, 10).unwrap();
        assert_eq!(&f[..n], &want[..]);

        let mut want = Vec::new();
        PacketBuilder::ethernet2(A.0, B.0)
            .ipv4([10, 0, 0, 2], [203, 0, 113, 10], 64)
            .tcp(10_000, 80, 1, 1000)
            .syn()
            .write(&mut want, &[])
            .unwrap();
        let n = tcp(&mut f, &ends(), 64, 1, 0, tcp_flags::SYN, 1000, 0).unwrap();
        assert_eq!(&f[..n], &want[..]);
    }

    #[test]
    fn udp_matches_etherparse() {
        let mut want = Vec::new();
        PacketBuilder::ethernet2(A.0, B.0)
            .ipv4([10, 0, 0, 2], [203, 0, 113, 10], 64)
            .udp(10_000, 80)
            .write(&mut want, b"0123456789abc")
            .unwrap();
        let mut f = [0u8; 128];
        f[L4_AT + 8..L4_AT + 8 + 13].copy_from_slice(b"0123456789abc");
        let n = udp(&mut f, &ends(), 64, 13).unwrap();
        assert_eq!(&f[..n], &want[..]);
        assert_eq!(udp(&mut f[..40], &ends(), 64, 13), None);
    }
}
