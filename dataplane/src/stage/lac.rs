//! Stage: PPP switched between PPPoE and L2TP at a LAC (ACC-6, issue 15). A PPPoE
//! subscriber the control plane handed to an LNS keeps its PPP end to end: its session
//! frames (IPv4 and PPP control alike) lose their Ethernet and PPPoE headers and take
//! IPv4/UDP/L2TP toward the tunnel's peer; the LNS's data messages for the session lose
//! theirs and take the PPPoE header template of the subscriber's line. Nothing of PPP is
//! terminated here.
//!
//! Counted to the L2TP session as at the LNS: packets and bytes (the IP total length)
//! of IPv4 and IPv6 frames (PPP protocols 0x0021 and 0x0057); PPP control frames are switched and counted
//! by the worker (`lac_switched_to_lns` / `lac_switched_to_client`), not to the session.
//! TCP SYNs both ways have their MSS clamped to the session's (ACC-5).

#![deny(unsafe_code)]

use crate::buf::PacketBuf;
use crate::counters::DropReason;
use crate::fib::Forwarding;
use crate::table::l2tp::PppoeLeg;
use crate::time::Instant;
use crate::types::{MacAddr, Side};
use crate::wire::ethernet::{self, ethertype};
use crate::wire::ipv4::protocol;
use crate::wire::l2tp::{ENCAP_LEN, ppp};
use crate::wire::{get_u16, pppoe, put_u16};

use super::forward::{self, Header, Route};
use super::parse::{L3Kind, Line};
use super::{Pipeline, Verdict, access, rewrite};

/// The PPPoE header without the PPP protocol field.
const PPPOE_LEN: usize = pppoe::HEADER_LEN - pppoe::PPP_PROTOCOL_LEN as usize;

/// What the LAC counts of a switched IPv4 packet: its header, read without the checks
/// the gateway's own forwarding makes (the packet is the LNS's business), but with
/// lengths that add up. `None` when it does not parse.
#[inline]
fn ipv4_header(ip: &[u8]) -> Option<Header> {
    let b = ip.first_chunk::<20>()?;
    let hl = ((b[0] & 0x0f) as usize) * 4;
    let total = get_u16(b, 2) as usize;
    if b[0] >> 4 != 4 || hl < 20 || total < hl || total > ip.len() {
        return None;
    }
    Some(Header {
        src: [b[12], b[13], b[14], b[15]].into(),
        dst: [b[16], b[17], b[18], b[19]].into(),
        proto: b[9],
        hl,
        total,
        ttl: b[8],
        fragment: get_u16(b, 6) & 0x3fff != 0,
    })
}

/// What the LAC counts of a switched IPv6 packet: its fixed header's length and payload
/// length, when version and length add up (the rest is the LNS's business).
#[inline]
fn ipv6_total(ip: &[u8]) -> Option<u64> {
    let b = ip.first_chunk::<40>()?;
    let total = 40 + get_u16(b, 4) as usize;
    (b[0] >> 4 == 6 && total <= ip.len()).then_some(total as u64)
}

/// The PPP protocol at the start of `frame` and its length (1 when compressed).
#[inline]
fn protocol_of(frame: &[u8]) -> Option<(u16, usize)> {
    let first = *frame.first()?;
    if first & 1 == 1 {
        return Some((first as u16, 1));
    }
    Some((get_u16(frame.get(..2)?, 0), 2))
}

/// For an IPv4 frame (`frame` from the PPP protocol on): its total length, after
/// clamping a SYN's MSS to `mss` (0: off); for an IPv6 one (0x0057, after IPv6CP) its
/// header and payload length. `Err` when the IP header does not parse; `Ok(None)` for
/// PPP control.
#[inline]
fn ipv4_payload(frame: &mut [u8], mss: u16) -> Result<Option<u64>, DropReason> {
    let Some((proto, plen)) = protocol_of(frame) else {
        return Err(DropReason::LacMalformed);
    };
    if proto == ppp::IPV6 {
        return ipv6_total(&frame[plen..])
            .map(Some)
            .ok_or(DropReason::LacMalformed);
    }
    if proto != ppp::IPV4 {
        return Ok(None);
    }
    let ip = &mut frame[plen..];
    let h = ipv4_header(ip).ok_or(DropReason::LacMalformed)?;
    if mss != 0 && h.proto == protocol::TCP {
        access::clamp_mss(ip, &h, mss);
    }
    Ok(Some(h.total as u64))
}

impl Pipeline {
    /// A frame from the access side of a PPPoE session switched into L2TP: into its
    /// tunnel. `None` for anything else (it takes the usual path). Out of line: only a
    /// LAC calls it, and inlined it made `process` too large for LLVM to keep the other
    /// stages inline.
    #[inline(never)]
    pub(super) fn lac_uplink<B: PacketBuf>(
        &mut self,
        fwd: &Forwarding,
        buf: &mut B,
        kind: L3Kind,
        l3: usize,
        line: Line,
        now: Instant,
    ) -> Option<Verdict> {
        let frame = buf.data();
        let at = match (kind, line.pppoe) {
            (L3Kind::Ipv4 | L3Kind::Ipv6, Some(_)) => l3.checked_sub(pppoe::HEADER_LEN)?,
            (L3Kind::PppoeControl, _)
                if l3 >= 2 && get_u16(frame, l3 - 2) == ethertype::PPPOE_SESSION =>
            {
                l3
            }
            _ => return None,
        };
        let p = pppoe::Packet::new_checked(frame.get(at..)?).ok()?;
        let client = MacAddr::from_bytes(frame.get(6..12)?);
        let s = self
            .l2tp
            .switched_session(p.session(), client, line.vlans)?;
        let ppp_len = p.payload_len() as usize;
        Some(self.lac_switch_up(fwd, buf, at + PPPOE_LEN, ppp_len, s, now))
    }

    /// The PPP frame of `ppp_len` bytes at `ppp_at` into L2TP session `s`.
    fn lac_switch_up<B: PacketBuf>(
        &mut self,
        fwd: &Forwarding,
        buf: &mut B,
        ppp_at: usize,
        ppp_len: usize,
        s: u16,
        now: Instant,
    ) -> Verdict {
        let end = ppp_at + ppp_len;
        if ppp_len < 2 || end > buf.data().len() {
            return Verdict::Drop(DropReason::LacMalformed);
        }
        let Some((peer, mss)) = self
            .l2tp
            .get(s)
            .map(|e| (e.spec.peer, e.spec.pppoe.map_or(0, |l| l.mss_clamp)))
        else {
            return Verdict::Drop(DropReason::L2tpUnknownSession);
        };
        if ppp_len + ENCAP_LEN - 2 > self.l2tp.mtu as usize {
            return Verdict::Drop(DropReason::LacTooBig);
        }
        let ip_bytes = match ipv4_payload(&mut buf.data_mut()[ppp_at..end], mss) {
            Ok(b) => b,
            Err(r) => return Verdict::Drop(r),
        };
        let (out, next_hop) = match forward::route(fwd, peer) {
            Ok(Route::Out { side, next_hop }) => (side, next_hop),
            Ok(Route::Local) => return Verdict::Drop(DropReason::LocalUnsupported),
            Err(r) => return Verdict::Drop(r),
        };
        let mac = match self.neighbor(out, next_hop, now) {
            Ok(mac) => Some(mac),
            Err(Verdict::Drop(r)) => return Verdict::Drop(r),
            Err(_) => None,
        };
        // Ethernet + IPv4/UDP/L2TP/ff 03 in front of the PPP protocol field, whose first
        // two bytes the encapsulation's (IPv4) protocol overwrites and are put back.
        let first = [buf.data()[ppp_at], buf.data()[ppp_at + 1]];
        let head = ethernet::HEADER_LEN + ENCAP_LEN - 2;
        if !buf.set_len(end) || !buf.strip(ppp_at) || !buf.prepend(head) {
            return Verdict::Drop(DropReason::EncapNoRoom);
        }
        let Some(e) = self.l2tp.get_mut(s) else {
            return Verdict::Drop(DropReason::L2tpUnknownSession);
        };
        let frame = buf.data_mut();
        put_u16(frame, 12, ethertype::IPV4);
        if let Some(outer) = frame[ethernet::HEADER_LEN..].first_chunk_mut::<ENCAP_LEN>() {
            e.encap.write(outer, (ppp_len - 2) as u16);
        }
        frame[head..head + 2].copy_from_slice(&first);
        match ip_bytes {
            Some(b) => {
                e.counters.encap_packets += 1;
                e.counters.encap_bytes += b;
            }
            None => self.counters.lac_control_to_lns += 1,
        }
        self.counters.lac_switched_to_lns += 1;
        match mac {
            Some(mac) => {
                rewrite::l2(frame, mac, fwd.side(out).mac);
                Verdict::Forward(out)
            }
            None => Verdict::Hold(out, next_hop),
        }
    }

    /// An L2TP data message of switched session `s` (its PPP frame, from the address and
    /// control field if present, at `ppp_at` up to `end`): to the subscriber behind the
    /// PPPoE session `leg`.
    pub(super) fn lac_switch_down<B: PacketBuf>(
        &mut self,
        fwd: &Forwarding,
        buf: &mut B,
        ppp_at: usize,
        end: usize,
        s: u16,
        leg: PppoeLeg,
    ) -> Verdict {
        let mut at = ppp_at;
        if buf.data().get(at..at + 2) == Some(&[0xff, 0x03]) {
            at += 2;
        }
        if end <= at || end > buf.data().len() {
            return Verdict::Drop(DropReason::LacMalformed);
        }
        let ppp_len = end - at;
        let ip_bytes = match ipv4_payload(&mut buf.data_mut()[at..end], leg.mss_clamp) {
            Ok(b) => b,
            Err(r) => return Verdict::Drop(r),
        };
        let tags = [leg.vlans.outer, leg.vlans.inner];
        let n_tags = tags.iter().flatten().count();
        let head = 2 * 6 + n_tags * ethernet::VLAN_TAG_LEN + 2 + PPPOE_LEN;
        if !buf.set_len(end) || !buf.strip(at) || !buf.prepend(head) {
            return Verdict::Drop(DropReason::EncapNoRoom);
        }
        let frame = buf.data_mut();
        frame[..6].copy_from_slice(&leg.client.0);
        frame[6..12].copy_from_slice(&fwd.side(Side::Access).mac.0);
        let mut w = 12;
        for t in tags.into_iter().flatten() {
            put_u16(frame, w, t.tpid);
            put_u16(frame, w + 2, t.vid);
            w += ethernet::VLAN_TAG_LEN;
        }
        put_u16(frame, w, ethertype::PPPOE_SESSION);
        frame[w + 2] = pppoe::VER_TYPE;
        frame[w + 3] = pppoe::CODE_SESSION;
        put_u16(frame, w + 4, leg.session);
        put_u16(frame, w + 6, ppp_len as u16);
        match ip_bytes {
            Some(b) => {
                if let Some(e) = self.l2tp.get_mut(s) {
                    e.counters.decap_packets += 1;
                    e.counters.decap_bytes += b;
                }
            }
            None => self.counters.lac_control_to_client += 1,
        }
        self.counters.lac_switched_to_client += 1;
        Verdict::Forward(Side::Access)
    }
}
