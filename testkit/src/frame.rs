//! Whole Ethernet frames, built with etherparse (checksums computed by it, not by the
//! code under test).

use std::net::Ipv4Addr;

pub use etherparse::ArpOperation;
use etherparse::{
    ArpHardwareId, ArpPacket, EtherType, Ethernet2Header, Icmpv4Header, Icmpv4Type, IpNumber,
    Ipv4Header, PacketBuilder, icmpv4::TimeExceededCode,
};
use tollgate_dataplane::MacAddr;

/// A UDP datagram from port 40000 to 5001.
pub fn udp(
    src_mac: MacAddr,
    dst_mac: MacAddr,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ttl: u8,
    payload: &[u8],
) -> Vec<u8> {
    udp_ports(src_mac, dst_mac, src, 40000, dst, 5001, ttl, payload)
}

/// A UDP datagram with explicit ports.
#[allow(clippy::too_many_arguments)]
pub fn udp_ports(
    src_mac: MacAddr,
    dst_mac: MacAddr,
    src: Ipv4Addr,
    sport: u16,
    dst: Ipv4Addr,
    dport: u16,
    ttl: u8,
    payload: &[u8],
) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ethernet2(src_mac.0, dst_mac.0)
        .ipv4(src.octets(), dst.octets(), ttl)
        .udp(sport, dport)
        .write(&mut v, payload)
        .expect("frame builds");
    v
}

/// A TCP SYN from 40001 to 80.
pub fn tcp_syn(
    src_mac: MacAddr,
    dst_mac: MacAddr,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ttl: u8,
) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ethernet2(src_mac.0, dst_mac.0)
        .ipv4(src.octets(), dst.octets(), ttl)
        .tcp(40001, 80, 0x1234_5678, 64240)
        .syn()
        .write(&mut v, &[])
        .expect("frame builds");
    v
}

/// The SYN-ACK answering [`tcp_syn`], from 80 to 40001.
pub fn tcp_syn_ack(
    src_mac: MacAddr,
    dst_mac: MacAddr,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ttl: u8,
) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ethernet2(src_mac.0, dst_mac.0)
        .ipv4(src.octets(), dst.octets(), ttl)
        .tcp(80, 40001, 0x0a0b_0c0d, 65160)
        .syn()
        .ack(0x1234_5679)
        .write(&mut v, &[])
        .expect("frame builds");
    v
}

/// A TCP segment with the given flags (`S`, `A`, `F`, `R`, `P` letters).
#[allow(clippy::too_many_arguments)]
pub fn tcp(
    src_mac: MacAddr,
    dst_mac: MacAddr,
    src: Ipv4Addr,
    sp: u16,
    dst: Ipv4Addr,
    dp: u16,
    ttl: u8,
    seq: u32,
    flags: &str,
    ack: u32,
    payload: &[u8],
) -> Vec<u8> {
    let mut b = PacketBuilder::ethernet2(src_mac.0, dst_mac.0)
        .ipv4(src.octets(), dst.octets(), ttl)
        .tcp(sp, dp, seq, 64000);
    for f in flags.chars() {
        b = match f {
            'S' => b.syn(),
            'A' => b.ack(ack),
            'F' => b.fin(),
            'R' => b.rst(),
            'P' => b.psh(),
            _ => b,
        };
    }
    let mut v = Vec::new();
    b.write(&mut v, payload).expect("frame builds");
    v
}

/// An ICMP echo request (`reply == false`) or reply, id 1 seq 1.
#[allow(clippy::too_many_arguments)]
pub fn echo(
    src_mac: MacAddr,
    dst_mac: MacAddr,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ttl: u8,
    reply: bool,
    payload: &[u8],
) -> Vec<u8> {
    let mut v = Vec::new();
    let b = PacketBuilder::ethernet2(src_mac.0, dst_mac.0).ipv4(src.octets(), dst.octets(), ttl);
    let b = if reply {
        b.icmpv4_echo_reply(1, 1)
    } else {
        b.icmpv4_echo_request(1, 1)
    };
    b.write(&mut v, payload).expect("frame builds");
    v
}

/// An Ethernet/IPv4 ARP packet padded to 60 bytes.
pub fn arp(
    op: ArpOperation,
    src_mac: MacAddr,
    dst_mac: MacAddr,
    sha: MacAddr,
    spa: Ipv4Addr,
    tha: MacAddr,
    tpa: Ipv4Addr,
) -> Vec<u8> {
    let mut v = Ethernet2Header {
        source: src_mac.0,
        destination: dst_mac.0,
        ether_type: EtherType::ARP,
    }
    .to_bytes()
    .to_vec();
    let a = ArpPacket::new(
        ArpHardwareId::ETHERNET,
        EtherType::IPV4,
        op,
        &sha.0,
        &spa.octets(),
        &tha.0,
        &tpa.octets(),
    )
    .expect("valid ARP");
    v.extend_from_slice(&a.to_bytes());
    v.resize(60, 0);
    v
}

/// A broadcast who-has `tpa` from `mac`/`spa`.
pub fn arp_request(mac: MacAddr, spa: Ipv4Addr, tpa: Ipv4Addr) -> Vec<u8> {
    arp(
        ArpOperation::REQUEST,
        mac,
        MacAddr::BROADCAST,
        mac,
        spa,
        MacAddr::ZERO,
        tpa,
    )
}

/// `spa` is-at `mac`, sent to `to_mac`/`tpa`.
pub fn arp_reply(mac: MacAddr, spa: Ipv4Addr, to_mac: MacAddr, tpa: Ipv4Addr) -> Vec<u8> {
    arp(ArpOperation::REPLY, mac, to_mac, mac, spa, to_mac, tpa)
}

/// The ICMP time-exceeded a router at `from`/`src_mac` sends about the IPv4 frame `orig`:
/// the original header and 8 bytes quoted (RFC 792), TTL 64, DF clear.
pub fn time_exceeded(src_mac: MacAddr, dst_mac: MacAddr, from: Ipv4Addr, orig: &[u8]) -> Vec<u8> {
    let hl = ((orig[14] & 0x0f) as usize) * 4;
    let quote = &orig[14..14 + hl + 8];
    let to = Ipv4Addr::new(orig[26], orig[27], orig[28], orig[29]);
    let icmp = Icmpv4Header::with_checksum(
        Icmpv4Type::TimeExceeded(TimeExceededCode::TtlExceededInTransit),
        quote,
    );
    let mut ip = Ipv4Header::new(
        (8 + quote.len()) as u16,
        64,
        IpNumber::ICMP,
        from.octets(),
        to.octets(),
    )
    .expect("valid header");
    ip.dont_fragment = false;
    ip.header_checksum = ip.calc_header_checksum();
    let mut v = Ethernet2Header {
        source: src_mac.0,
        destination: dst_mac.0,
        ether_type: EtherType::IPV4,
    }
    .to_bytes()
    .to_vec();
    v.extend_from_slice(&ip.to_bytes());
    v.extend_from_slice(&icmp.to_bytes());
    v.extend_from_slice(quote);
    v
}
