//! Stage: L2TPv2 tunnels (TUN-1). Data messages to the gateway's address are
//! decapsulated: at an LNS, PPP carrying IPv4 (or IPv6 after IPv6CP: `l2tp_up6`) goes
//! through the subscriber stages of the gateway session the L2TP session carries, or is
//! dropped (`l2tp_no_session`) when that session is not on this worker; at a LAC, the PPP
//! frame of a switched call goes to its PPPoE leg as it is (`stage::lac`). Control
//! messages, and data messages carrying PPP control (LCP, PAP, CHAP, IPCP, ...) of an
//! installed session, are punted to the control plane (which terminates PPP as an LNS).
//! The LNS's downlink to a PPP subscriber is encapsulated toward the LAC after the
//! subscriber stages (`encapsulate`, IPv4/UDP 1701/L2TP/PPP, [`ENCAP_LEN`]
//! bytes in the headroom; IPv6 with `encapsulate6`).

use std::net::Ipv4Addr;

use crate::buf::PacketBuf;
use crate::counters::DropReason;
use crate::fib::Forwarding;
use crate::msg::Event;
use crate::table::l2tp::L2tpSessionSpec;
use crate::table::l2tp::TunnelRole;
use crate::table::session::Dir;
use crate::time::Instant;
use crate::types::Side;
use crate::wire::checksum;
use crate::wire::ethernet::{self, ethertype};
use crate::wire::icmpv4::kind;
use crate::wire::ipv4::protocol;
use crate::wire::l2tp::{self, ENCAP_LEN, ppp};
use crate::wire::udp;
use crate::wire::{get_u16, put_u16};

use super::forward::{self, Header, Route};
use super::ipv6::{self as ip6, Class};
use super::lookahead::Hint;
use super::parse::Line;
use super::{Pipeline, Verdict, icmp, rewrite};

impl Pipeline {
    /// L2TP for a validated IPv4 packet; `None` when the packet is not L2TP to the
    /// gateway, and takes the usual path.
    #[inline]
    pub(super) fn tunnel<B: PacketBuf>(
        &mut self,
        fwd: &Forwarding,
        side: Side,
        buf: &mut B,
        l3: usize,
        h: &Header,
        now: Instant,
    ) -> Option<Verdict> {
        if h.proto == protocol::UDP && h.dst == fwd.side(side).address {
            return self.l2tp_in(fwd, side, buf, l3, h, now);
        }
        None
    }

    /// A UDP datagram to the gateway: L2TP if to port 1701.
    fn l2tp_in<B: PacketBuf>(
        &mut self,
        fwd: &Forwarding,
        side: Side,
        buf: &mut B,
        l3: usize,
        h: &Header,
        now: Instant,
    ) -> Option<Verdict> {
        let l4 = l3 + h.hl;
        let seg = buf.data().get(l4..l3 + h.total)?;
        if seg.len() < udp::HEADER_LEN || udp::Packet::new_unchecked(seg).dst_port() != l2tp::PORT {
            return None;
        }
        let dgram = match udp::Packet::new_checked(seg) {
            Ok(d) if !h.fragment => d,
            _ => return Some(Verdict::Drop(DropReason::L2tpMalformed)),
        };
        let msg = dgram.payload();
        let Ok(hdr) = l2tp::Packet::new_unchecked(msg).header() else {
            return Some(Verdict::Drop(DropReason::L2tpMalformed));
        };
        if hdr.control {
            let v = self.punt(side, buf.data());
            if v == Verdict::Punted {
                self.counters.l2tp_control += 1;
            }
            return Some(v);
        }
        let end = hdr.length.map_or(msg.len(), |l| l as usize);
        let Some(e) = self.l2tp.get(hdr.session) else {
            return Some(Verdict::Drop(DropReason::L2tpUnknownSession));
        };
        if e.spec.tunnel != hdr.tunnel || e.spec.peer != h.src {
            return Some(Verdict::Drop(DropReason::L2tpUnknownSession));
        }
        let (subscriber, role) = (e.spec.subscriber, e.spec.role);
        if let Some(leg) = e.spec.pppoe {
            // LAC: the PPP frame goes to its PPPoE subscriber as it is (ACC-6).
            let at = l4 + udp::HEADER_LEN;
            let (ppp_at, end) = (at + hdr.payload_at, at + end);
            return Some(self.lac_switch_down(fwd, buf, ppp_at, end, hdr.session, leg));
        }
        if role == TunnelRole::Lac {
            // A LAC carries switched calls only (the IP mode is gone).
            return Some(Verdict::Drop(DropReason::L2tpUnknownSession));
        }
        let (proto, ppp_len) = match l2tp::ppp_protocol(&msg[hdr.payload_at..end]) {
            Ok(p) => p,
            Err(_) => return Some(Verdict::Drop(DropReason::L2tpMalformed)),
        };
        if proto == ppp::IPV6 {
            if !fwd.ipv6.on {
                return Some(Verdict::Drop(DropReason::L2tpNotIpv4));
            }
            let at = l4 + udp::HEADER_LEN;
            let inner = (at + hdr.payload_at + ppp_len, at + end);
            return Some(self.l2tp_up6(fwd, side, buf, inner, hdr.session, subscriber, now));
        }
        if proto != ppp::IPV4 {
            // PPP control (LCP, PAP, CHAP, IPCP, ...): the control plane terminates PPP.
            // Bounded like every punt, by the punt ring.
            let v = self.punt(side, buf.data());
            if v == Verdict::Punted {
                self.counters.l2tp_ppp_control += 1;
            }
            return Some(v);
        }
        // The inner packet becomes the frame: an Ethernet header is written over the end
        // of the outer headers, in front of it.
        let inner_at = l4 + udp::HEADER_LEN + hdr.payload_at + ppp_len;
        let inner_end = l4 + udp::HEADER_LEN + end;
        if !buf.set_len(inner_end) || !buf.strip(inner_at - ethernet::HEADER_LEN) {
            return Some(Verdict::Drop(DropReason::L2tpMalformed));
        }
        let frame = buf.data_mut();
        frame[12..14].copy_from_slice(&ethertype::IPV4.to_be_bytes());
        let ih = match forward::validate(&frame[ethernet::HEADER_LEN..], fwd) {
            Ok(ih) => ih,
            Err(r) => return Some(Verdict::Drop(r)),
        };
        if ih.src != subscriber {
            return Some(Verdict::Drop(DropReason::SourceSpoofed));
        }
        // The subscriber's gateway session, or nothing would count, police or NAT the
        // packet (its L2TP session installed before its session reached this worker).
        let Some(slot) = self.l2tp_subscriber_slot(subscriber) else {
            return Some(Verdict::Drop(DropReason::L2tpNoSession));
        };
        let mac = match self.sessions.get(slot) {
            Some(s) => s.mac.unwrap_or_else(|| l2tp::subscriber_mac(hdr.session)),
            None => return Some(Verdict::Drop(DropReason::L2tpNoSession)),
        };
        buf.set_len(ethernet::HEADER_LEN + ih.total);
        if let Some(e) = self.l2tp.get_mut(hdr.session) {
            e.counters.decap_packets += 1;
            e.counters.decap_bytes += ih.total as u64;
        }
        self.counters.l2tp_decapsulated += 1;
        // A PPP subscriber terminated here: through the subscriber stages (services, NAT,
        // policing, counters, DISC) as if it came from the access side, from the MAC its
        // session was installed with.
        // Any L2TP session whose subscriber it is (checked above) may carry it: the one it
        // was moved from (TUN-3) still decapsulates what was in flight.
        let frame = buf.data_mut();
        frame[..6].copy_from_slice(&fwd.side(Side::Access).mac.0);
        frame[6..12].copy_from_slice(&mac.0);
        let hint = Hint {
            session: slot,
            flow: Hint::NONE.flow,
        };
        let v = self.uplink(fwd, buf, ethernet::HEADER_LEN, ih, Line::PLAIN, hint, now);
        Some(self.l2tp_answer4(fwd, buf, v, hdr.session, now))
    }

    /// LNS: the slot of `subscriber`'s gateway session when it is reached through L2TP
    /// (PPP terminated here), the session the packets of its L2TP sessions go through.
    fn l2tp_subscriber_slot(&self, subscriber: Ipv4Addr) -> Option<u32> {
        let slot = self.sessions.slot_by_ip(subscriber)?;
        let s = self.sessions.get(slot)?;
        s.l2tp_session().is_some().then_some(slot)
    }

    /// Encapsulates the IPv4 packet at `l3` into L2TP session `s` toward its peer.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn encapsulate<B: PacketBuf>(
        &mut self,
        fwd: &Forwarding,
        side: Side,
        buf: &mut B,
        l3: usize,
        h: &Header,
        s: u16,
        now: Instant,
    ) -> Verdict {
        if l3 != ethernet::HEADER_LEN {
            return Verdict::Drop(DropReason::VlanNotConfigured);
        }
        if h.ttl <= 1 {
            return self.ttl_expired(fwd, side, buf, l3, now);
        }
        self.encapsulate4(fwd, side, buf, (l3, h), s, true, now)
    }

    /// An answer the gateway built in place of a decapsulated IPv4 packet (`v` is
    /// [`Verdict::Reply`]: an Echo Reply, Time Exceeded, an unreachable) goes back into
    /// L2TP session `session`, its TTL as the gateway set it; any other verdict stands.
    fn l2tp_answer4<B: PacketBuf>(
        &mut self,
        fwd: &Forwarding,
        buf: &mut B,
        v: Verdict,
        session: u16,
        now: Instant,
    ) -> Verdict {
        if v != Verdict::Reply {
            return v;
        }
        let l3 = ethernet::HEADER_LEN;
        // The gateway's own packet: its source is ours, which `validate` refuses.
        let h = match forward::header_of(&buf.data()[l3..]) {
            Ok(h) => h,
            Err(r) => return Verdict::Drop(r),
        };
        self.encapsulate4(fwd, Side::Access, buf, (l3, &h), session, false, now)
    }

    /// [`Self::encapsulate`] once the TTL is checked: into L2TP session `s`, the TTL
    /// decremented when `forwarded` (not for the gateway's own answers).
    #[allow(clippy::too_many_arguments)]
    fn encapsulate4<B: PacketBuf>(
        &mut self,
        fwd: &Forwarding,
        side: Side,
        buf: &mut B,
        (l3, h): (usize, &Header),
        s: u16,
        forwarded: bool,
        now: Instant,
    ) -> Verdict {
        let Some(peer) = self.l2tp.get(s).map(|e| e.spec.peer) else {
            return Verdict::Drop(DropReason::L2tpUnknownSession);
        };
        if h.total + ENCAP_LEN > self.l2tp.mtu as usize {
            return self.too_big(fwd, side, buf, l3, now);
        }
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
        if forwarded {
            forward::decrement_ttl(&mut buf.data_mut()[l3..]);
        }
        if !buf.set_len(l3 + h.total) || !buf.prepend(ENCAP_LEN) {
            return Verdict::Drop(DropReason::L2tpTooBig);
        }
        let Some(e) = self.l2tp.get_mut(s) else {
            return Verdict::Drop(DropReason::L2tpUnknownSession);
        };
        let frame = buf.data_mut();
        frame[12..14].copy_from_slice(&ethertype::IPV4.to_be_bytes());
        if let Some(outer) = frame[l3..].first_chunk_mut::<ENCAP_LEN>() {
            e.encap.write(outer, h.total as u16);
        }
        e.counters.encap_packets += 1;
        e.counters.encap_bytes += h.total as u64;
        self.counters.l2tp_encapsulated += 1;
        match mac {
            Some(mac) => {
                rewrite::l2(frame, mac, fwd.side(out).mac);
                Verdict::Forward(out)
            }
            None => Verdict::Hold(out, next_hop),
        }
    }

    /// IPv6 in PPP (0x0057) of LNS session `session` (carrying `subscriber`), the packet
    /// at `inner` (start, end) of the datagram: neighbour discovery and DHCPv6 go to the
    /// control plane in their L2TP datagram (the PPP link's, like PPP control); anything
    /// else is decapsulated and, from a /64 or delegated prefix of the session the L2TP
    /// session carries, forwarded as any session's uplink IPv6 (NAT64 included). What the
    /// gateway answers in place (Echo Reply, Time Exceeded) goes back into the tunnel.
    #[allow(clippy::too_many_arguments)]
    fn l2tp_up6<B: PacketBuf>(
        &mut self,
        fwd: &Forwarding,
        side: Side,
        buf: &mut B,
        (inner_at, inner_end): (usize, usize),
        session: u16,
        subscriber: Ipv4Addr,
        now: Instant,
    ) -> Verdict {
        let Some(ip) = buf.data().get(inner_at..inner_end) else {
            return Verdict::Drop(DropReason::L2tpMalformed);
        };
        let h = match ip6::validate(ip) {
            Ok(h) => h,
            Err(r) => return Verdict::Drop(r),
        };
        match ip6::classify(ip, &h, Side::Access) {
            Class::Control => {
                let v = self.punt(side, buf.data());
                if v == Verdict::Punted {
                    self.counters.ipv6_control += 1;
                }
                return v;
            }
            Class::RaGuard => return Verdict::Drop(DropReason::Ipv6RaGuard),
            Class::Data => {}
        }
        if h.src.is_multicast() || h.src.is_unspecified() || h.src.is_loopback() {
            return Verdict::Drop(DropReason::Ipv6MartianSource);
        }
        // No gateway session for the L2TP session's subscriber on this worker: as for IPv4,
        // not a spoofed source but a subscriber not (yet) here.
        if self.l2tp_subscriber_slot(subscriber).is_none() {
            return Verdict::Drop(DropReason::L2tpNoSession);
        }
        // The packet becomes a plain frame, from the session's MAC to the access side's.
        if !buf.set_len(inner_at + h.total) || !buf.strip(inner_at - ethernet::HEADER_LEN) {
            return Verdict::Drop(DropReason::L2tpMalformed);
        }
        put_u16(buf.data_mut(), 12, ethertype::IPV6);
        let l3 = ethernet::HEADER_LEN;
        if fwd.ipv6.is_ours(h.dst) {
            let v = self.local6(fwd, Side::Access, buf, l3, &h);
            return self.l2tp_answer6(fwd, buf, v, session, now);
        }
        if h.dst.is_multicast() || ip6::is_link_local(h.dst) || ip6::is_link_local(h.src) {
            return Verdict::Drop(DropReason::Ipv6NotForwarded);
        }
        // Anti-spoofing: the source's /64 (or delegated prefix) is a session's that this
        // L2TP session carries (the one it was moved from, TUN-3, still decapsulates).
        let Some(slot) = self.live_session6(fwd, ip6::prefix64(h.src), now) else {
            return Verdict::Drop(DropReason::Ipv6SourceSpoofed);
        };
        let Some((mac, clamp)) = self
            .sessions
            .get(slot)
            .filter(|s| s.l2tp_session().is_some() && s.address == subscriber)
            .map(|s| {
                let mac = s.mac.unwrap_or_else(|| l2tp::subscriber_mac(session));
                (mac, s.mss_clamp)
            })
        else {
            return Verdict::Drop(DropReason::Ipv6SourceSpoofed);
        };
        if let Some(e) = self.l2tp.get_mut(session) {
            e.counters.decap_packets += 1;
            e.counters.decap_bytes += h.total as u64;
        }
        self.counters.l2tp_decapsulated += 1;
        let frame = buf.data_mut();
        frame[..6].copy_from_slice(&fwd.side(Side::Access).mac.0);
        frame[6..12].copy_from_slice(&mac.0);
        let v = self.forward_up6(fwd, buf, l3, &h, (slot, clamp), now);
        self.l2tp_answer6(fwd, buf, v, session, now)
    }

    /// An answer the gateway built in place of a decapsulated IPv6 packet (`v` is
    /// [`Verdict::Reply`]) goes back into L2TP session `session`; any other verdict stands.
    fn l2tp_answer6<B: PacketBuf>(
        &mut self,
        fwd: &Forwarding,
        buf: &mut B,
        v: Verdict,
        session: u16,
        now: Instant,
    ) -> Verdict {
        if v != Verdict::Reply {
            return v;
        }
        let l3 = ethernet::HEADER_LEN;
        let total = match buf.data().get(l3 + 4..l3 + 6) {
            Some(p) => ip6::HEADER_LEN + get_u16(p, 0) as usize,
            None => return Verdict::Drop(DropReason::Ipv6Truncated),
        };
        self.encapsulate6(fwd, buf, l3, total, session, now)
    }

    /// Downlink IPv6 (header `h` at `l3`, hop limit checked) to the session in `slot`, an
    /// LNS's PPP subscriber: into its L2TP session `session` with PPP protocol 0x0057,
    /// counted to the session (both families and the IPv6 share) and the L2TP session.
    /// Longer than the tunnel's MTU allows: `l2tp_too_big`, answered with Packet Too Big.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn l2tp_down6<B: PacketBuf>(
        &mut self,
        fwd: &Forwarding,
        buf: &mut B,
        l3: usize,
        h: &ip6::Header,
        slot: u32,
        session: u16,
        now: Instant,
    ) -> Verdict {
        let room = (self.l2tp.mtu as usize).saturating_sub(ENCAP_LEN);
        if h.total > room {
            let mtu = (room as u16, DropReason::L2tpTooBig);
            return self.too_big6(fwd, buf, l3, h, mtu, now);
        }
        if let Err(r) = self.admit(fwd, Some(slot), Dir::Down, h.total, now) {
            return Verdict::Drop(r);
        }
        // Hop limit: at offset 7 of the IPv6 header.
        buf.data_mut()[l3 + 7] -= 1;
        let v = self.encapsulate6(fwd, buf, l3, h.total, session, now);
        if matches!(v, Verdict::Forward(_) | Verdict::Hold(..)) {
            if let Some(s) = self.sessions.get_mut(slot) {
                s.count(Dir::Down, h.total as u64, now, Ipv4Addr::UNSPECIFIED);
            }
            self.sessions.count6(slot, Dir::Down, h.total as u64);
        }
        v
    }

    /// Encapsulates the IPv6 packet at `l3` (`total` bytes, hop limit already handled)
    /// into L2TP session `s` toward its peer, PPP protocol 0x0057.
    pub(super) fn encapsulate6<B: PacketBuf>(
        &mut self,
        fwd: &Forwarding,
        buf: &mut B,
        l3: usize,
        total: usize,
        s: u16,
        now: Instant,
    ) -> Verdict {
        if l3 != ethernet::HEADER_LEN {
            return Verdict::Drop(DropReason::VlanNotConfigured);
        }
        let Some(peer) = self.l2tp.get(s).map(|e| e.spec.peer) else {
            return Verdict::Drop(DropReason::L2tpUnknownSession);
        };
        if total + ENCAP_LEN > self.l2tp.mtu as usize {
            return Verdict::Drop(DropReason::L2tpTooBig);
        }
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
        if !buf.set_len(l3 + total) || !buf.prepend(ENCAP_LEN) {
            return Verdict::Drop(DropReason::L2tpTooBig);
        }
        let Some(e) = self.l2tp.get_mut(s) else {
            return Verdict::Drop(DropReason::L2tpUnknownSession);
        };
        let frame = buf.data_mut();
        frame[12..14].copy_from_slice(&ethertype::IPV4.to_be_bytes());
        if let Some(outer) = frame[l3..].first_chunk_mut::<ENCAP_LEN>() {
            e.encap.write_ppp(outer, total as u16, ppp::IPV6);
        }
        e.counters.encap_packets += 1;
        e.counters.encap_bytes += total as u64;
        self.counters.l2tp_encapsulated += 1;
        match mac {
            Some(mac) => {
                rewrite::l2(frame, mac, fwd.side(out).mac);
                Verdict::Forward(out)
            }
            None => Verdict::Hold(out, next_hop),
        }
    }

    /// A packet that would not fit `l2tp.mtu` once encapsulated: dropped, and answered
    /// with fragmentation-needed (carrying the MTU that fits) when DF is set and the rate
    /// allows, so the sender's path-MTU discovery adapts.
    fn too_big<B: PacketBuf>(
        &mut self,
        fwd: &Forwarding,
        side: Side,
        buf: &mut B,
        l3: usize,
        now: Instant,
    ) -> Verdict {
        let df = buf.data().get(l3 + 6).is_some_and(|f| f & 0x40 != 0);
        if !df || !icmp::may_report(buf.data(), l3) {
            return Verdict::Drop(DropReason::L2tpTooBig);
        }
        if !self.icmp_limit.take(now) {
            self.counters.icmp_rate_limited += 1;
            return Verdict::Drop(DropReason::L2tpTooBig);
        }
        let ours = fwd.side(side);
        if !icmp::error_in_place(buf, l3, ours.address, ours.mac, kind::DEST_UNREACHABLE, 4) {
            return Verdict::Drop(DropReason::L2tpTooBig);
        }
        let mtu = self.l2tp.mtu.saturating_sub(ENCAP_LEN as u16);
        if let Some(m) = buf.data_mut().get_mut(l3 + 20..l3 + 28) {
            let c = checksum::update16(u16::from_be_bytes([m[2], m[3]]), 0, mtu);
            m[2..4].copy_from_slice(&c.to_be_bytes());
            m[6..8].copy_from_slice(&mtu.to_be_bytes());
        }
        self.counters.drop(DropReason::L2tpTooBig);
        self.counters.icmp_errors += 1;
        Verdict::Reply
    }

    /// [`Command::L2tpSessionSet`](crate::msg::Command::L2tpSessionSet): installs (or replaces) an L2TP session.
    pub fn l2tp_session_set(&mut self, spec: &L2tpSessionSpec) {
        if self.l2tp.install(spec).is_err() {
            self.emit(Event::L2tpRefused {
                session: spec.session,
            });
        }
    }

    /// [`Command::L2tpSteer`](crate::msg::Command::L2tpSteer): switches a switched call's PPPoE leg into an installed L2TP session.
    pub fn l2tp_steer(&mut self, subscriber: Ipv4Addr, session: u16) {
        if self.l2tp.steer(subscriber, session).is_err() {
            self.emit(Event::L2tpRefused { session });
        }
    }

    /// [`Command::L2tpSessionRemove`](crate::msg::Command::L2tpSessionRemove): removes an L2TP session.
    pub fn l2tp_session_remove(&mut self, session: u16) {
        self.l2tp.remove(session);
    }

    /// [`Command::L2tpReport`](crate::msg::Command::L2tpReport): starts a report of every L2TP session's counters.
    pub fn l2tp_report(&mut self, seq: u64) {
        self.l2tp_report = Some((seq, 1, 0));
    }

    /// Per-poll L2TP work: a counter report in progress.
    pub fn l2tp_tick(&mut self) {
        let Some((seq, mut next, mut sent)) = self.l2tp_report else {
            return;
        };
        // Leave room on the ring for records; resume next poll.
        let budget = self.events.free().saturating_sub(64).min(256);
        let mut finished = true;
        for (pushed, e) in self.l2tp.sessions_from(next).enumerate() {
            let ev = Event::L2tpCounters {
                session: e.spec.session,
                tunnel: e.spec.tunnel,
                seq,
                counters: e.counters,
            };
            if pushed >= budget || self.events.push(ev).is_err() {
                finished = false;
                break;
            }
            sent += 1;
            next = e.spec.session as u32 + 1;
        }
        self.l2tp_report = if finished
            && self
                .events
                .push(Event::L2tpReported {
                    seq,
                    sessions: sent,
                })
                .is_ok()
        {
            None
        } else {
            Some((seq, next, sent))
        };
    }
}
