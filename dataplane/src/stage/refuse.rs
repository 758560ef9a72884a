//! Stage: proxy answers for refused services (AUTHZ-2). A TCP segment to a service the
//! subscriber may not use is answered with a reset from the VIP (RFC 9293 §3.10.7.1:
//! sequence from the segment's ACK, or ACK of everything it carried); a UDP datagram with
//! ICMP port unreachable quoting it. Both are built in the refused packet's buffer.

use crate::buf::PacketBuf;
use crate::types::MacAddr;
use crate::wire::checksum;
use crate::wire::ethernet;
use crate::wire::icmpv4;
use crate::wire::ipv4::{self, protocol};
use crate::wire::tcp::{self, flags};

use super::forward::Header;
use super::icmp;

/// Answers the refused packet at `l3` (validated as `h`) in place, from the address it
/// was sent to. False when there is nothing to answer (a reset, another protocol).
pub fn answer<B: PacketBuf>(buf: &mut B, l3: usize, h: &Header, our_mac: MacAddr) -> bool {
    match h.proto {
        protocol::TCP => tcp_reset(buf, l3, h, our_mac),
        protocol::UDP => {
            icmp::error_in_place(buf, l3, h.dst, our_mac, icmpv4::kind::DEST_UNREACHABLE, 3)
        }
        _ => false,
    }
}

/// True when the answer is a TCP reset (else ICMP).
pub fn is_reset(h: &Header) -> bool {
    h.proto == protocol::TCP
}

fn tcp_reset<B: PacketBuf>(buf: &mut B, l3: usize, h: &Header, our_mac: MacAddr) -> bool {
    let (sport, dport, seq, ack, fl, payload) = {
        let Some(seg) = buf.data().get(l3 + h.hl..l3 + h.total) else {
            return false;
        };
        let Ok(t) = tcp::Packet::new_checked(seg) else {
            return false;
        };
        (
            t.src_port(),
            t.dst_port(),
            t.seq(),
            t.ack(),
            t.flags(),
            t.payload().len() as u32,
        )
    };
    if fl & flags::RST != 0 {
        return false;
    }
    let (rst_seq, rst_ack, rst_flags) = if fl & flags::ACK != 0 {
        (ack, 0, flags::RST)
    } else {
        let len = payload + (fl & flags::SYN != 0) as u32 + (fl & flags::FIN != 0) as u32;
        (0, seq.wrapping_add(len), flags::RST | flags::ACK)
    };
    let total = ipv4::MIN_HEADER_LEN + tcp::MIN_HEADER_LEN;
    if !buf.set_len(l3 + total) {
        return false;
    }
    let frame = buf.data_mut();
    ipv4::write_header(
        &mut frame[l3..],
        total as u16,
        64,
        protocol::TCP,
        h.dst,
        h.src,
    );
    let seg = &mut frame[l3 + ipv4::MIN_HEADER_LEN..l3 + total];
    tcp::write_header(seg, dport, sport, rst_seq, rst_ack, rst_flags, 0);
    let pseudo =
        checksum::pseudo_header_sum(h.dst, h.src, protocol::TCP, tcp::MIN_HEADER_LEN as u16);
    let sum = checksum::add(pseudo, checksum::sum(seg));
    tcp::Packet::new_unchecked(seg).set_checksum(!checksum::fold(sum));
    let sender = ethernet::Frame::new_unchecked(&*frame).src();
    ethernet::rewrite_macs(frame, sender, our_mac);
    true
}
