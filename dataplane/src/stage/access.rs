//! Access lines (ACC-1, ACC-4, ACC-5): IPv4 off VLAN-tagged and PPPoE lines, and back on.
//!
//! Uplink, a PPPoE session frame is found by its line (VLANs, client MAC, session id)
//! and anti-spoofed against the session's address; then a tagged or PPPoE frame is made
//! a plain Ethernet frame in place (the MACs move forward over the tags and PPPoE
//! header; the payload does not move) and goes through the same stages as untagged IPoE.
//! What the gateway answers itself (echo replies, ICMP errors, refusals) goes back with
//! the line's headers as they came. Downlink, a session's frame gets its line's header
//! template in the buffer's headroom. TCP SYNs of a session with an MSS clamp have their
//! MSS option lowered both ways: over IPv4 to the clamp, over IPv6 (and NAT64, whose
//! subscriber side is IPv6) to the clamp less the 20 bytes IPv6's header has more.

use super::forward::Header;
use super::ipv6::Header as Header6;
use super::lookahead::Hint;
use super::parse::Line;
use super::{Pipeline, Verdict};
use crate::buf::PacketBuf;
use crate::counters::DropReason;
use crate::fib::Forwarding;
use crate::table::session::MAX_ENCAP;
use crate::time::Instant;
use crate::types::{MacAddr, Side};
use crate::wire::ethernet::{self, ethertype};
use crate::wire::ipv4::protocol;
use crate::wire::{get_u16, pppoe, put_u16, tcp};

/// Where the MACs end.
const MACS: usize = 12;

impl Pipeline {
    /// An IPv4 packet from a tagged or PPPoE access line, its header at `l3`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn access_line<B: PacketBuf>(
        &mut self,
        fwd: &Forwarding,
        buf: &mut B,
        l3: usize,
        h: Header,
        line: Line,
        mut hint: Hint,
        now: Instant,
    ) -> Verdict {
        if let Some(session) = line.pppoe {
            let frame = buf.data();
            let mac = MacAddr::from_bytes(&frame[6..MACS]);
            let found =
                (self.sessions).slot_by_pppoe_guessed(line.vlans, mac, session, hint.session);
            let Some(slot) = found else {
                return Verdict::Drop(DropReason::PppoeSessionUnknown);
            };
            // The PPPoE length covers the PPP protocol and at least the IPv4 packet.
            let p = pppoe::Packet::new_unchecked(&frame[l3 - pppoe::HEADER_LEN..l3]);
            if (p.payload_len() as usize) < h.total + pppoe::PPP_PROTOCOL_LEN as usize {
                return Verdict::Drop(DropReason::PppoeMalformed);
            }
            if self.sessions.get(slot).is_none_or(|s| s.address != h.src) {
                return Verdict::Drop(DropReason::PppoeSourceMismatch);
            }
            hint.session = slot;
        }
        // Made a plain frame: the MACs move up to just before the IPv4 header.
        let extra = l3 - ethernet::HEADER_LEN;
        let mut came = [0u8; MAX_ENCAP];
        let came = &mut came[..l3 - MACS];
        came.copy_from_slice(&buf.data()[MACS..l3]);
        buf.data_mut().copy_within(..MACS, extra);
        if !buf.strip(extra) {
            return Verdict::Drop(DropReason::EthTooShort);
        }
        put_u16(buf.data_mut(), MACS, ethertype::IPV4);
        let v = self.ipv4(
            fwd,
            Side::Access,
            buf,
            ethernet::HEADER_LEN,
            h,
            line,
            hint,
            now,
        );
        if v != Verdict::Reply {
            return v;
        }
        // The gateway's answer, built in the buffer as a plain frame: back onto the line
        // it came from.
        let Some(ip_len) = buf
            .data()
            .get(ethernet::HEADER_LEN + 2..ethernet::HEADER_LEN + 4)
        else {
            return Verdict::Drop(DropReason::EthTooShort);
        };
        let ip_len = get_u16(ip_len, 0);
        if !buf.prepend(extra) {
            return Verdict::Drop(DropReason::EncapNoRoom);
        }
        let frame = buf.data_mut();
        frame.copy_within(extra..extra + MACS, 0);
        frame[MACS..l3].copy_from_slice(came);
        if line.pppoe.is_some() {
            pppoe::Packet::new_unchecked(&mut frame[l3 - pppoe::HEADER_LEN..l3])
                .set_payload_len(ip_len + pppoe::PPP_PROTOCOL_LEN);
        }
        Verdict::Reply
    }

    /// Puts the header template of the session in `slot` on a downlink frame whose IPv4
    /// header (of `ip_len` bytes in all) is at `l3`, in the buffer's headroom.
    #[inline]
    pub(super) fn encapsulate_down<B: PacketBuf>(
        &self,
        buf: &mut B,
        slot: u32,
        l3: usize,
        ip_len: usize,
    ) -> Result<(), DropReason> {
        self.encapsulate_down_as(buf, slot, l3, ip_len).map(|_| ())
    }

    /// [`Self::encapsulate_down`], saying whether the template was a PPPoE session's
    /// (`false` too for a session that is gone).
    #[inline]
    pub(super) fn encapsulate_down_as<B: PacketBuf>(
        &self,
        buf: &mut B,
        slot: u32,
        l3: usize,
        ip_len: usize,
    ) -> Result<bool, DropReason> {
        let Some(e) = self.sessions.encapsulation(slot) else {
            return Ok(false);
        };
        // Ethernet padding after the packet goes (a PPPoE length says where it ends).
        if !buf.set_len(l3 + ip_len) || !buf.prepend(e.extra()) {
            return Err(DropReason::EncapNoRoom);
        }
        e.write(&mut buf.data_mut()[MACS..], ip_len as u16);
        Ok(e.is_pppoe())
    }
}

/// ACC-5: lowers the MSS option of a TCP SYN or SYN-ACK in the IPv4 packet at `ip` (whose
/// header `h` was validated) to `max`.
#[inline]
pub(super) fn clamp_mss(ip: &mut [u8], h: &Header, max: u16) {
    if h.proto != protocol::TCP || h.fragment {
        return;
    }
    let Some(seg) = ip.get_mut(h.hl..h.total) else {
        return;
    };
    if let Ok(mut t) = tcp::Packet::new_checked(seg) {
        t.clamp_mss(max);
    }
}

/// ACC-5 for IPv6: the MSS a session's IPv6 TCP is clamped to, from its IPv4 clamp
/// `clamp4` (the line's MTU less 40): 20 less, as an IPv6 header is 20 bytes longer
/// (PPPoE's MTU 1492: 1452 for IPv4, 1432 for IPv6). 0 (no clamp) stays 0.
#[inline(always)]
pub(super) fn mss6(clamp4: u16) -> u16 {
    clamp4.saturating_sub(20)
}

/// ACC-5: lowers the MSS option of a TCP SYN or SYN-ACK in the IPv6 packet at `ip` (whose
/// header `h` was validated: fragments never get this far) to `max`. The TCP checksum is
/// updated over the changed words only, which the pseudo-header does not change.
#[inline]
pub(super) fn clamp_mss6(ip: &mut [u8], h: &Header6, max: u16) {
    if h.proto != protocol::TCP || max == 0 {
        return;
    }
    let Some(seg) = ip.get_mut(h.l4..h.total) else {
        return;
    };
    if let Ok(mut t) = tcp::Packet::new_checked(seg) {
        t.clamp_mss(max);
    }
}
