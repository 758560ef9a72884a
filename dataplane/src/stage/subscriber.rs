//! Stages of subscriber traffic: classify (session lookup, anti-spoofing, SES-4),
//! policy (authorisation and refusals, policing), translate (NAT to a load-balanced real
//! server and back), count and check (CNT-1, CNT-3, DISC fast-path half), and the L2
//! next hop (load-balancing range or neighbour).
//!
//! Uplink is what comes in on the access side, downlink what comes in on the core side.
//! Session counters are from the subscriber's point of view: uplink is `tx`.

use std::net::Ipv4Addr;

use arrayvec::ArrayVec;

use super::forward::{self, Header, Route};
use super::lookahead::Hint;
use super::parse::Line;
use super::{Pipeline, Verdict, access, http, icmp, refuse, rewrite};
use crate::buf::PacketBuf;
use crate::counters::DropReason;
use crate::fib::{Forwarding, Unknown};
use crate::msg::{Event, HOST_MAX, InstallFailure};
use crate::service::{Service, SessionType};
use crate::table::flow::{FlowClose, FlowError, FlowRecord, FlowState, NIL, UpKey};
use crate::table::lb::LbChoice;
use crate::table::session::{
    Check, Dir, DisconnectCause, InstallError, SessionId, SessionSpec, SessionUpdate, VlanKey,
};
use crate::time::Instant;
use crate::types::{MacAddr, Side};
use crate::wire::ipv4::protocol;
use crate::wire::nat as natwire;
use crate::wire::tcp::{self, flags};
use crate::wire::udp;

impl Pipeline {
    /// A packet from the access side (`line`: the access line it came in on).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    pub(super) fn uplink<B: PacketBuf>(
        &mut self,
        fwd: &Forwarding,
        buf: &mut B,
        l3: usize,
        h: Header,
        line: Line,
        hint: Hint,
        now: Instant,
    ) -> Verdict {
        if fwd.is_ours(h.dst) {
            return self.local(fwd, Side::Access, buf, l3);
        }
        let src_mac = MacAddr::from_bytes(&buf.data()[6..12]);
        let slot = match self.classify_up(fwd, &h, src_mac, line, hint.session, now) {
            Ok(s) => s,
            Err(r) => return Verdict::Drop(r),
        };
        if h.ttl <= 1 {
            return self.ttl_expired(fwd, Side::Access, buf, l3, now);
        }
        if fwd.services.is_vip(h.dst) {
            return self.service_up(fwd, buf, l3, &h, slot, (hint.flow, None), now);
        }
        let route = match forward::route(fwd, h.dst) {
            Ok(Route::Out { side, next_hop }) => (side, next_hop),
            Ok(Route::Local) => return Verdict::Drop(DropReason::LocalUnsupported),
            Err(r) => return Verdict::Drop(r),
        };
        if let Err(r) = self.admit(fwd, slot, Dir::Up, h.total, now) {
            return Verdict::Drop(r);
        }
        self.finish(fwd, buf, l3, &h, route, Dir::Up, slot, None, h.dst, now)
    }

    /// A packet from the core side.
    #[inline(always)]
    pub(super) fn downlink<B: PacketBuf>(
        &mut self,
        fwd: &Forwarding,
        buf: &mut B,
        l3: usize,
        h: Header,
        now: Instant,
    ) -> Verdict {
        if let Some(addr) = fwd.nat64.pool_index(h.dst) {
            return self.nat64_down(fwd, buf, l3, &h, addr, now);
        }
        if let Some(addr) = fwd.nat_address(h.dst) {
            if let Some(v) = self.service_down(fwd, buf, l3, &h, addr, now) {
                return v;
            }
            if to_nat_port(fwd, buf.data(), l3, &h) {
                // A server's answer after its flow ended (or to a port no flow holds).
                return Verdict::Drop(DropReason::NatNoFlow);
            }
        }
        if fwd.is_ours(h.dst) {
            return self.local(fwd, Side::Core, buf, l3);
        }
        if h.ttl <= 1 {
            return self.ttl_expired(fwd, Side::Core, buf, l3, now);
        }
        let (out, next_hop) = match forward::route(fwd, h.dst) {
            Ok(Route::Out { side, next_hop }) => (side, next_hop),
            Ok(Route::Local) => return Verdict::Drop(DropReason::LocalUnsupported),
            Err(r) => return Verdict::Drop(r),
        };
        let slot = if out == Side::Access {
            match self.live_session(fwd, h.dst, NIL, now) {
                Some(slot) => Some(slot),
                None if fwd.unknown == Unknown::Forward => None,
                None => return Verdict::Drop(DropReason::NoSession),
            }
        } else {
            None
        };
        if let Some(v) = slot.and_then(|s| self.too_big_for_line(fwd, buf, l3, &h, s, now)) {
            return v;
        }
        if let Err(r) = self.admit(fwd, slot, Dir::Down, h.total, now) {
            return Verdict::Drop(r);
        }
        self.finish(
            fwd,
            buf,
            l3,
            &h,
            (out, next_hop),
            Dir::Down,
            slot,
            None,
            h.src,
            now,
        )
    }

    /// A downlink packet longer than its session's line carries (PPPoE: its MTU), or
    /// `None` when it fits. Not fragmented: dropped (`pppoe_too_big`), and with DF
    /// answered from the core side with fragmentation-needed carrying the MTU (RFC
    /// 1191), paced by the ICMP error bucket.
    #[inline(always)]
    fn too_big_for_line<B: PacketBuf>(
        &mut self,
        fwd: &Forwarding,
        buf: &mut B,
        l3: usize,
        h: &Header,
        slot: u32,
        now: Instant,
    ) -> Option<Verdict> {
        let mtu = self.sessions.get(slot)?.line_mtu()?;
        if h.total <= mtu as usize {
            return None;
        }
        Some(self.line_too_big(fwd, buf, l3, mtu, now))
    }

    /// [`Self::too_big_for_line`]'s answer, out of line: the packet at `l3` is longer
    /// than `mtu`.
    #[cold]
    #[inline(never)]
    pub(super) fn line_too_big<B: PacketBuf>(
        &mut self,
        fwd: &Forwarding,
        buf: &mut B,
        l3: usize,
        mtu: u16,
        now: Instant,
    ) -> Verdict {
        let df = buf.data().get(l3 + 6).is_some_and(|f| f & 0x40 != 0);
        if !df || !icmp::may_report(buf.data(), l3) {
            return Verdict::Drop(DropReason::PppoeTooBig);
        }
        if !self.icmp_limit.take(now) {
            self.counters.icmp_rate_limited += 1;
            return Verdict::Drop(DropReason::PppoeTooBig);
        }
        let ours = fwd.side(Side::Core);
        if !icmp::frag_needed(buf, l3, ours.address, ours.mac, mtu) {
            return Verdict::Drop(DropReason::PppoeTooBig);
        }
        // As for an expired TTL: the packet is a counted drop, the error in its buffer a
        // generated packet sent back.
        self.counters.drop(DropReason::PppoeTooBig);
        self.counters.icmp_errors += 1;
        Verdict::Reply
    }

    /// The session of the subscriber at `ip`, closing it first if a time condition fell
    /// due (stamped with the deadline).
    /// `guess` is the slot a look ahead found likely (`NIL`: none).
    #[inline(always)]
    fn live_session(
        &mut self,
        fwd: &Forwarding,
        ip: Ipv4Addr,
        guess: u32,
        now: Instant,
    ) -> Option<u32> {
        let slot = self.sessions.slot_by_ip_guessed(ip, guess)?;
        match self.sessions.get(slot)?.due(now) {
            Some((t, cause)) => {
                self.close_session(fwd, slot, t, cause);
                None
            }
            None => Some(slot),
        }
    }

    /// Classify: the uplink source's session, with anti-spoofing (MAC and access line)
    /// and SES-4 for strangers.
    #[inline(always)]
    fn classify_up(
        &mut self,
        fwd: &Forwarding,
        h: &Header,
        src_mac: MacAddr,
        line: Line,
        guess: u32,
        now: Instant,
    ) -> Result<Option<u32>, DropReason> {
        match self.live_session(fwd, h.src, guess, now) {
            Some(slot) => {
                let Some(s) = self.sessions.get_mut(slot) else {
                    return Err(DropReason::UnknownSubscriber);
                };
                // IPoE from a PPPoE subscriber's address (a PPPoE frame was matched to
                // its session by its line already).
                if s.pppoe_session() != line.pppoe {
                    return Err(DropReason::SourceSpoofed);
                }
                if s.vlans() != line.vlans {
                    return Err(DropReason::VlanMismatch);
                }
                match s.mac {
                    Some(m) if m != src_mac => Err(DropReason::SourceSpoofed),
                    Some(_) => Ok(Some(slot)),
                    None => {
                        s.mac = Some(src_mac);
                        let id = s.id;
                        // Once per session: the control plane shows it (`show session`).
                        self.emit(Event::SessionMac { id, mac: src_mac });
                        Ok(Some(slot))
                    }
                }
            }
            // A tagged line without a session is not one the gateway knows: a plain
            // router forwards untagged IPoE only.
            None if fwd.unknown == Unknown::Forward && !line.is_plain() => {
                Err(DropReason::VlanNotConfigured)
            }
            None => match fwd.unknown {
                Unknown::Forward => Ok(None),
                Unknown::Drop => Err(DropReason::UnknownSubscriber),
                Unknown::Punt => {
                    self.report_unknown(h.src, src_mac, line.vlans, now);
                    Err(DropReason::UnknownSubscriber)
                }
            },
        }
    }

    /// Tells the control plane about a stranger, at most once per address per second.
    fn report_unknown(&mut self, ip: Ipv4Addr, mac: MacAddr, vlans: VlanKey, now: Instant) {
        let a = u32::from(ip);
        let e = &mut self.unknown_seen[(a ^ a >> 8 ^ a >> 16) as usize & 0xff];
        if e.0 == a && now < e.1.add_ms(1000) {
            return;
        }
        if self
            .events
            .push(Event::UnknownSubscriber {
                ip,
                mac,
                vlans,
                at: now,
            })
            .is_ok()
        {
            *e = (a, now);
            self.counters.unknown_reported += 1;
        } else {
            self.counters.event_ring_full += 1;
        }
    }

    /// Policy: the session's policer and its volume and rate limits. A packet that would
    /// break a limit ends the session.
    #[inline(always)]
    pub(super) fn admit(
        &mut self,
        fwd: &Forwarding,
        slot: Option<u32>,
        dir: Dir,
        bytes: usize,
        now: Instant,
    ) -> Result<(), DropReason> {
        let Some(slot) = slot else {
            return Ok(());
        };
        let burst_ms = self.sessions.burst_ms();
        let Some(s) = self.sessions.get_mut(slot) else {
            return Err(DropReason::NoSession);
        };
        if !s.police.admit(dir as usize, now, bytes as u64, burst_ms) {
            return Err(DropReason::Policed);
        }
        match s.check(dir, bytes as u64, now) {
            Check::Ok => Ok(()),
            Check::End(cause) => {
                self.close_session(fwd, slot, now, cause);
                Err(DropReason::SessionLimit)
            }
        }
    }

    /// The tail of every forwarded packet: L2 next hop (load-balancing range for uplink
    /// sources in one, the session's MAC downlink, else the neighbour), counting, TTL,
    /// MACs. `remote` is the address the subscriber exchanges the packet with.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    pub(super) fn finish<B: PacketBuf>(
        &mut self,
        fwd: &Forwarding,
        buf: &mut B,
        l3: usize,
        h: &Header,
        (out, next_hop): (Side, Ipv4Addr),
        dir: Dir,
        slot: Option<u32>,
        flow: Option<u32>,
        remote: Ipv4Addr,
        now: Instant,
    ) -> Verdict {
        // An LNS's PPP subscriber: downlink goes into its L2TP session (which routes to
        // the LAC, decrements the TTL and writes the MACs itself). Downlink to an
        // access line goes to the session's MAC. One read of the session for both.
        let (l2tp, session_mac) = match slot.and_then(|i| self.sessions.get(i)) {
            Some(s) if dir == Dir::Down => match s.l2tp_session() {
                Some(l) => (Some(l), None),
                None if out == Side::Access => (None, s.mac),
                None => (None, None),
            },
            _ => (None, None),
        };
        // LB-2: uplink toward the core goes to its source range's gateway node.
        let lb = if dir == Dir::Up && out == Side::Core {
            fwd.lb.choose(h.src)
        } else {
            LbChoice::NotBalanced
        };
        let next = match (session_mac, lb) {
            _ if l2tp.is_some() => Ok(MacAddr::ZERO),
            (Some(mac), _) => Ok(mac),
            (None, LbChoice::To(mac)) => Ok(mac),
            (None, LbChoice::AllDown) => return Verdict::Drop(DropReason::LbAllDown),
            (None, LbChoice::NotBalanced) => self.neighbor(out, next_hop, now),
        };
        if let Err(Verdict::Drop(r)) = next {
            return Verdict::Drop(r);
        }
        if l2tp.is_none() {
            forward::decrement_ttl(&mut buf.data_mut()[l3..]);
        }
        // Accepted: count it (a held packet is counted now, as it is sent when its
        // neighbour resolves); a downlink packet to a tagged or PPPoE line gets its
        // headers first, and is counted only once they are on.
        let bytes = h.total as u64;
        if let Some(slot) = slot {
            let mut encapsulate = false;
            if let Some(s) = self.sessions.get_mut(slot) {
                if s.mss_clamp != 0 {
                    access::clamp_mss(&mut buf.data_mut()[l3..], h, s.mss_clamp);
                }
                encapsulate = dir == Dir::Down && out == Side::Access && !s.is_plain();
                if !encapsulate {
                    s.count(dir, bytes, now, remote);
                }
            }
            if encapsulate {
                if let Err(r) = self.encapsulate_down(buf, slot, l3, h.total) {
                    return Verdict::Drop(r);
                }
                if let Some(s) = self.sessions.get_mut(slot) {
                    s.count(dir, bytes, now, remote);
                }
            }
            if let Some(f) = flow.and_then(|i| self.flows.get_mut(i)) {
                f.last_seen = now;
                match dir {
                    Dir::Up => {
                        f.up_packets += 1;
                        f.up_bytes += bytes;
                    }
                    Dir::Down => {
                        f.down_packets += 1;
                        f.down_bytes += bytes;
                    }
                }
            }
        }
        if let Some(session) = l2tp {
            return self.encapsulate(fwd, Side::Core, buf, l3, h, session, now);
        }
        match next {
            Ok(mac) => {
                rewrite::l2(buf.data_mut(), mac, fwd.side(out).mac);
                Verdict::Forward(out)
            }
            Err(v) => v,
        }
    }

    /// An uplink packet to a VIP: authorise, find or open its flow, translate. `guess`:
    /// the look-ahead's flow (or `NIL`); `service`: the service, when the caller found
    /// it already.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn service_up<B: PacketBuf>(
        &mut self,
        fwd: &Forwarding,
        buf: &mut B,
        l3: usize,
        h: &Header,
        slot: Option<u32>,
        (guess, service): (u32, Option<u16>),
        now: Instant,
    ) -> Verdict {
        let l4 = &buf.data()[l3 + h.hl..l3 + h.total];
        let ports = natwire::ports(h.proto, l4);
        let (tcp_flags, payload_at) = match h.proto {
            protocol::TCP => tcp_flags_and_payload(l4),
            _ => (0, 0),
        };
        if h.fragment || l4_cut_short(h.proto, l4.len()) {
            return Verdict::Drop(DropReason::NatUnsupported);
        }
        let Some((sport, dport)) = ports else {
            return Verdict::Drop(DropReason::NatUnsupported);
        };
        let Some(svc_idx) = service.or_else(|| fwd.services.find(h.dst, h.proto, dport)) else {
            return self.refuse(fwd, buf, l3, h, DropReason::NoService, now);
        };
        // AUTHZ-1; and an authorised packet is a use of the service (NAT-3: a
        // `service`-type choice of another service ends with it, whatever this one's
        // session type).
        let Some(slot) = slot.filter(|&s| match self.sessions.get_mut(s) {
            Some(s) if s.allows(svc_idx) => {
                s.used_service(svc_idx);
                true
            }
            _ => false,
        }) else {
            return self.refuse(fwd, buf, l3, h, DropReason::ServiceRefused, now);
        };
        let Some(svc) = fwd.services.get(svc_idx) else {
            return Verdict::Drop(DropReason::NoService);
        };
        let syn_only = tcp_flags & (flags::SYN | flags::ACK | flags::RST) == flags::SYN;

        let key = UpKey {
            sub: h.src,
            session: slot,
            service: svc_idx,
            sub_port: sport,
        };
        let mut fi = self.flows.find_up_guessed(&key, guess);
        if let Some(i) = fi {
            let Some(f) = self.flows.get(i) else {
                return Verdict::Drop(DropReason::NatNoFlow);
            };
            let (expires, state) = (f.expires(&fwd.nat.timeouts), f.state);
            // Past its timeout, or a new connection on the port of one that is over.
            if expires <= now || (h.proto == protocol::TCP && syn_only && state.is_finished()) {
                self.close_flow(fwd, i, expiry_close(state));
                fi = None;
            }
        }
        if let Err(r) = self.admit(fwd, Some(slot), Dir::Up, h.total, now) {
            return Verdict::Drop(r);
        }
        let i = match fi {
            Some(i) => i,
            None if h.proto == protocol::TCP && !syn_only => {
                return Verdict::Drop(DropReason::NatNoFlow);
            }
            None => match self.open_flow(svc, key, h.proto, now) {
                Ok(i) => i,
                Err(r) => return Verdict::Drop(r),
            },
        };
        // NAT-5: a flow stuck to a server that went down moves; a per-packet service
        // chooses again for every request.
        let Some((cur, answered_before)) = self.flows.get(i).map(|f| (f.server, f.up_packets > 0))
        else {
            return Verdict::Drop(DropReason::NatNoFlow);
        };
        let rechoose = !svc.servers.get(cur as usize).is_some_and(|r| r.up)
            || (svc.session_type == SessionType::Packet
                && h.proto == protocol::UDP
                && answered_before);
        if rechoose {
            let Some(next) = self.choose_server(svc_idx, svc, slot) else {
                return Verdict::Drop(DropReason::NoServerUp);
            };
            self.balancer.closed(svc_idx, cur);
            self.balancer.opened(svc_idx, next);
            if let Some(f) = self.flows.get_mut(i) {
                f.server = next;
            }
        }
        let Some(f) = self.flows.get_mut(i) else {
            return Verdict::Drop(DropReason::NatNoFlow);
        };
        if h.proto == protocol::TCP {
            f.state = f.state.on_tcp(true, tcp_flags);
        } else if svc.session_type == SessionType::Packet {
            f.state = FlowState::UdpAwaitingReply;
        }
        let (server_ix, nat_addr_ix, nat_port, state) = (f.server, f.addr, f.nat_port, f.state);
        let host_due = h.proto == protocol::TCP && !f.host_checked && l4.len() > payload_at;
        if host_due {
            f.host_checked = true;
            let generation = self.flows.generation(i);
            if let Some(host) = http::host(&l4[payload_at..]) {
                let mut bytes = [0u8; HOST_MAX];
                bytes[..host.len()].copy_from_slice(host);
                self.emit(Event::FlowHost {
                    flow: (i, generation),
                    len: host.len() as u8,
                    host: bytes,
                });
            }
        }
        let Some(server) = svc.servers.get(server_ix as usize).copied() else {
            return Verdict::Drop(DropReason::NoServerUp);
        };
        let nat_addr = fwd
            .nat
            .addresses
            .get(nat_addr_ix as usize)
            .copied()
            .unwrap_or(fwd.side(Side::Core).address);
        {
            let ip = &mut buf.data_mut()[l3..l3 + h.total];
            natwire::translate(
                ip,
                h.hl,
                h.proto,
                (nat_addr, nat_port),
                (server.address, server.port),
            );
        }
        let route = match forward::route(fwd, server.address) {
            Ok(Route::Out { side, next_hop }) => (side, next_hop),
            Ok(Route::Local) => return Verdict::Drop(DropReason::LocalUnsupported),
            Err(r) => return Verdict::Drop(r),
        };
        let v = self.finish(
            fwd,
            buf,
            l3,
            h,
            route,
            Dir::Up,
            Some(slot),
            Some(i),
            h.dst,
            now,
        );
        if state == FlowState::TcpReset && !matches!(v, Verdict::Drop(_)) {
            self.close_flow(fwd, i, FlowClose::Rst);
        }
        v
    }

    /// A downlink packet to a NAT address: the answer of a real server, translated back.
    /// `None` when it belongs to no flow (then it is for the gateway itself).
    #[inline(never)]
    fn service_down<B: PacketBuf>(
        &mut self,
        fwd: &Forwarding,
        buf: &mut B,
        l3: usize,
        h: &Header,
        addr: u16,
        now: Instant,
    ) -> Option<Verdict> {
        if self.flows.is_empty() {
            return None;
        }
        let l4 = &buf.data()[l3 + h.hl..l3 + h.total];
        let (sport, dport) = natwire::ports(h.proto, l4)?;
        let (tcp_flags, _) = tcp_flags_and_payload(l4);
        let i = self.flows.find_down(addr, h.proto, dport)?;
        let f = *self.flows.get(i)?;
        let Some(svc) = fwd.services.get(f.service) else {
            self.close_flow(fwd, i, FlowClose::Timeout);
            return Some(Verdict::Drop(DropReason::NatNoFlow));
        };
        let server = svc.servers.get(f.server as usize).copied()?;
        if h.src != server.address || (h.proto != protocol::ICMP && sport != server.port) {
            return Some(Verdict::Drop(DropReason::NatNoFlow));
        }
        let expires = f.expires(&fwd.nat.timeouts);
        if expires <= now {
            self.close_flow(fwd, i, expiry_close(f.state));
            return Some(Verdict::Drop(DropReason::NatNoFlow));
        }
        if h.fragment || l4_cut_short(h.proto, l4.len()) {
            return Some(Verdict::Drop(DropReason::NatUnsupported));
        }
        let slot = f.session;
        // A NAT64 binding's flow: its pool address stands for the subscriber.
        let nat64 = fwd.nat64.pool_index(f.sub);
        let (sub_ip, mtu) = match self.sessions.get(slot) {
            Some(s) => match s.due(now) {
                Some((t, cause)) => {
                    self.close_session(fwd, slot, t, cause);
                    return Some(Verdict::Drop(DropReason::NoSession));
                }
                // A NAT64 subscriber's line carries the answer as IPv6, 20 bytes longer.
                None => match nat64 {
                    None => (s.address, s.line_mtu()),
                    Some(_) => (f.sub, s.line_mtu().map(super::nat64::ipv4_mtu_of)),
                },
            },
            None => return Some(Verdict::Drop(DropReason::NoSession)),
        };
        if h.ttl <= 1 {
            return Some(self.ttl_expired(fwd, Side::Core, buf, l3, now));
        }
        // Before translation: an error quotes what the server sent.
        if let Some(mtu) = mtu
            && h.total > mtu as usize
        {
            return Some(self.line_too_big(fwd, buf, l3, mtu, now));
        }
        if let Err(r) = self.admit(fwd, Some(slot), Dir::Down, h.total, now) {
            return Some(Verdict::Drop(r));
        }
        let mut close = None;
        if let Some(f) = self.flows.get_mut(i) {
            if h.proto == protocol::TCP {
                f.state = f.state.on_tcp(false, tcp_flags);
                if f.state == FlowState::TcpReset {
                    close = Some(FlowClose::Rst);
                }
            } else if f.state == FlowState::UdpAwaitingReply {
                close = Some(FlowClose::Answered);
            }
        }
        let src_port = if h.proto == protocol::ICMP {
            f.sub_port
        } else {
            svc.port
        };
        if let Some(pool) = nat64 {
            // On through the NAT64 stage, which translates it from the server straight
            // to IPv6 (from the VIP, to its binding: the flow's pool address and port)
            // and counts it for the session.
            if let Some(f) = self.flows.get_mut(i) {
                f.last_seen = now;
                f.down_packets += 1;
                f.down_bytes += h.total as u64;
            }
            let answer = ((svc.vip, src_port), f.sub_port, tcp_flags);
            let v = self.nat64_answer(fwd, buf, l3, h, pool, answer, slot, now);
            if let Some(c) = close.filter(|_| !matches!(v, Verdict::Drop(_))) {
                self.close_flow(fwd, i, c);
            }
            return Some(v);
        }
        {
            let ip = &mut buf.data_mut()[l3..l3 + h.total];
            natwire::translate(ip, h.hl, h.proto, (svc.vip, src_port), (sub_ip, f.sub_port));
        }
        let route = match forward::route(fwd, sub_ip) {
            Ok(Route::Out { side, next_hop }) => (side, next_hop),
            Ok(Route::Local) => return Some(Verdict::Drop(DropReason::LocalUnsupported)),
            Err(r) => return Some(Verdict::Drop(r)),
        };
        let v = self.finish(
            fwd,
            buf,
            l3,
            h,
            route,
            Dir::Down,
            Some(slot),
            Some(i),
            svc.vip,
            now,
        );
        if let Some(c) = close.filter(|_| !matches!(v, Verdict::Drop(_))) {
            self.close_flow(fwd, i, c);
        }
        Some(v)
    }

    /// Policy: a refused (or unknown) service gets a reset or an ICMP unreachable from the
    /// VIP, paced with the ICMP errors.
    fn refuse<B: PacketBuf>(
        &mut self,
        fwd: &Forwarding,
        buf: &mut B,
        l3: usize,
        h: &Header,
        reason: DropReason,
        now: Instant,
    ) -> Verdict {
        if !matches!(h.proto, protocol::TCP | protocol::UDP) || h.fragment {
            return Verdict::Drop(reason);
        }
        if !self.icmp_limit.take(now) {
            self.counters.icmp_rate_limited += 1;
            return Verdict::Drop(reason);
        }
        let reset = refuse::is_reset(h);
        if !refuse::answer(buf, l3, h, fwd.side(Side::Access).mac) {
            return Verdict::Drop(reason);
        }
        self.counters.drop(reason);
        if reset {
            self.counters.tcp_resets += 1;
        } else {
            self.counters.icmp_errors += 1;
        }
        Verdict::Reply
    }

    /// Chooses a server of `svc` for the session in `slot`, by the service's session type.
    fn choose_server(&mut self, svc_idx: u16, svc: &Service, slot: u32) -> Option<u16> {
        let up = |s: u16| svc.servers.get(s as usize).is_some_and(|r| r.up);
        match svc.session_type {
            SessionType::Login => {
                // The table exists whenever the snapshot has a `login` service
                // (`Pipeline::services_changed`); without it the choice is not kept.
                let sticky = self.sessions.sticky_mut();
                if let Some(s) = sticky
                    .as_ref()
                    .and_then(|t| t.get(slot, svc_idx))
                    .filter(|s| up(*s))
                {
                    return Some(s);
                }
                let s = self.balancer.choose(svc_idx, svc)?;
                let kept = self
                    .sessions
                    .sticky_mut()
                    .is_some_and(|t| t.set(slot, svc_idx, s).is_ok());
                if !kept {
                    self.counters.sticky_full += 1;
                }
                Some(s)
            }
            SessionType::Service => {
                let session = self.sessions.get_mut(slot)?;
                if let Some((svc_last, s)) = session.last_service()
                    && svc_last == svc_idx
                    && up(s)
                {
                    return Some(s);
                }
                let s = self.balancer.choose(svc_idx, svc)?;
                if let Some(session) = self.sessions.get_mut(slot) {
                    session.set_last_service(svc_idx, s);
                }
                Some(s)
            }
            SessionType::Connection | SessionType::Packet => self.balancer.choose(svc_idx, svc),
        }
    }

    /// Opens a flow for the session and service of `key` (NAT-6 limits).
    fn open_flow(
        &mut self,
        svc: &Service,
        key: UpKey,
        proto: u8,
        now: Instant,
    ) -> Result<u32, DropReason> {
        let (slot, svc_idx) = (key.session, key.service);
        let (flows, max, head) = self
            .sessions
            .get(slot)
            .map_or((0, 0, NIL), |s| (s.flows, s.max_flows, s.flow_head));
        if flows >= max {
            self.flow_limit(slot, false, now);
            return Err(DropReason::FlowLimit);
        }
        let server = self
            .choose_server(svc_idx, svc, slot)
            .ok_or(DropReason::NoServerUp)?;
        let i = match self.flows.create(key, server, proto, now, head) {
            Ok(i) => i,
            Err(FlowError::TableFull) => {
                self.flow_limit(slot, true, now);
                return Err(DropReason::FlowTableFull);
            }
            Err(FlowError::NoPort) => {
                self.ports_exhausted(proto, now);
                return Err(DropReason::NatNoPort);
            }
        };
        if let Some(s) = self.sessions.get_mut(slot) {
            s.flow_head = i;
            s.flows += 1;
        }
        self.balancer.opened(svc_idx, server);
        self.counters.flows_opened += 1;
        Ok(i)
    }

    /// Tells the control plane a subscriber hit a flow limit, at most once per session
    /// per second (paced through a small direct-mapped table, like unknown subscribers).
    fn flow_limit(&mut self, slot: u32, table_full: bool, now: Instant) {
        let Some(session) = self.sessions.get(slot).map(|s| s.id) else {
            return;
        };
        let e = &mut self.limit_seen[(session as usize ^ (session as usize >> 8)) & 0xff];
        if e.0 == session && e.1 != Instant::ZERO && now < e.1.add_ms(1000) {
            return;
        }
        *e = (session, now);
        if self
            .events
            .push(Event::FlowLimit {
                session,
                table_full,
            })
            .is_err()
        {
            self.counters.event_ring_full += 1;
        }
    }

    /// Tells the control plane this worker ran out of NAT ports for `proto`, at most once
    /// per protocol per second while it lasts (NAT-6). The drop itself is counted by the
    /// caller, so the event carries the count with this one included.
    #[cold]
    fn ports_exhausted(&mut self, proto: u8, now: Instant) {
        let k = match proto {
            protocol::TCP => 0,
            protocol::UDP => 1,
            _ => 2,
        };
        if self.no_port_seen[k].is_some_and(|t| now < t.add_ms(1000)) {
            return;
        }
        self.no_port_seen[k] = Some(now);
        let drops = self.counters.dropped(DropReason::NatNoPort) + 1;
        if self
            .events
            .push(Event::NatPortsExhausted {
                protocol: proto,
                drops,
                at: now,
            })
            .is_err()
        {
            self.counters.event_ring_full += 1;
        }
    }

    /// Ends flow `i` and sends its record, which ends at the flow's last packet.
    pub(crate) fn close_flow(&mut self, fwd: &Forwarding, i: u32, close: FlowClose) {
        let Some(r) = self.flows.remove(i) else {
            return;
        };
        let f = r.flow;
        if r.prev == NIL
            && let Some(s) = self
                .sessions
                .get_mut(f.session)
                .filter(|s| s.flow_head == i)
        {
            s.flow_head = r.next;
        }
        self.balancer.closed(f.service, f.server);
        self.counters.flows_closed += 1;
        let Some(s) = self.sessions.get_mut(f.session) else {
            return;
        };
        s.flows = s.flows.saturating_sub(1);
        let (session, user, sub_ip) = (s.id, s.user(), s.address);
        let svc = fwd.services.get(f.service);
        let server = svc
            .and_then(|v| v.servers.get(f.server as usize))
            .map_or((Ipv4Addr::UNSPECIFIED, 0), |r| (r.address, r.port));
        let nat = fwd
            .nat
            .addresses
            .get(f.addr as usize)
            .copied()
            .unwrap_or(Ipv4Addr::UNSPECIFIED);
        let is_icmp = f.proto == protocol::ICMP;
        self.emit(Event::FlowRecord(FlowRecord {
            session,
            user,
            service: f.service,
            protocol: f.proto,
            // A NAT64 binding's flow: the pool address stood for the subscriber.
            subscriber: (
                if fwd.nat64.pool_index(f.sub).is_some() {
                    f.sub
                } else {
                    sub_ip
                },
                f.sub_port,
            ),
            subscriber6: None,
            vip: svc.map_or((Ipv4Addr::UNSPECIFIED, 0), |v| {
                (v.vip, if is_icmp { f.sub_port } else { v.port })
            }),
            server: if is_icmp {
                (server.0, f.sub_port)
            } else {
                server
            },
            nat: (nat, f.nat_port),
            started: r.started,
            ended: f.last_seen,
            up: (f.up_packets, f.up_bytes),
            down: (f.down_packets, f.down_bytes),
            close,
            flow: (i, r.generation),
        }));
    }

    /// Ends the session in `slot` at `stopped`: its flows' records, then its own.
    pub(crate) fn close_session(
        &mut self,
        fwd: &Forwarding,
        slot: u32,
        stopped: Instant,
        cause: DisconnectCause,
    ) {
        let mut fi = self.sessions.get(slot).map_or(NIL, |s| s.flow_head);
        while self.flows.get(fi).is_some() {
            let next = self.flows.next_of(fi);
            self.close_flow(fwd, fi, FlowClose::SessionEnded);
            fi = next;
        }
        let Some(s) = self.sessions.remove(slot) else {
            return;
        };
        if let Some(sticky) = self.sessions.sticky_mut()
            && !sticky.is_empty()
        {
            for svc in 0..fwd.services.len() as u16 {
                sticky.remove(slot, svc);
            }
        }
        self.counters.sessions_closed += 1;
        self.emit(Event::SessionClosed(s.closed(stopped, cause)));
    }

    /// [`Command::SessionAdd`](crate::msg::Command::SessionAdd)(crate::msg::Command::SessionAdd): installs a session, or says why not.
    pub fn session_add(&mut self, spec: &SessionSpec) {
        match self.sessions.install(spec) {
            Ok(_) => self.counters.sessions_installed += 1,
            Err(e) => self.emit(Event::SessionInstallFailed {
                id: spec.id,
                reason: match e {
                    InstallError::Full => InstallFailure::TableFull,
                    InstallError::Duplicate => InstallFailure::Duplicate,
                    InstallError::MacRequired => InstallFailure::MacRequired,
                },
            }),
        }
    }

    /// [`Command::SessionRemove`](crate::msg::Command::SessionRemove)(crate::msg::Command::SessionRemove): ends a session (its records follow as events).
    pub fn session_remove(
        &mut self,
        fwd: &Forwarding,
        id: SessionId,
        cause: DisconnectCause,
        now: Instant,
    ) {
        if let Some(slot) = self.sessions.slot_by_id(id) {
            self.close_session(fwd, slot, now, cause);
        }
    }

    /// [`Command::SessionUpdate`](crate::msg::Command::SessionUpdate)(crate::msg::Command::SessionUpdate): changes a session's limits, bandwidth or services.
    pub fn session_update(&mut self, id: SessionId, update: &SessionUpdate) {
        self.sessions.update(id, update);
    }

    /// [`Command::SessionQuery`](crate::msg::Command::SessionQuery)(crate::msg::Command::SessionQuery): one session's counters, then the report's end.
    pub fn session_query(&mut self, id: SessionId, seq: u64, now: Instant) {
        let found = self.sessions.slot_by_id(id).and_then(|slot| {
            let s = self.sessions.get(slot)?;
            Some((s.counters, s.last_seen, self.sessions.counters6(slot)))
        });
        if let Some((counters, last_seen, ipv6)) = found {
            self.emit(Event::SessionCounters {
                id,
                seq,
                at: now,
                counters,
                last_seen,
                ipv6,
            });
        }
        self.emit(Event::SessionsReported {
            seq,
            sessions: found.is_some() as u32,
        });
    }

    /// [`Command::ReportSessions`](crate::msg::Command::ReportSessions)(crate::msg::Command::ReportSessions): starts a report of every session, sent over as many
    /// polls as the event ring needs.
    pub fn report_sessions(&mut self, seq: u64) {
        self.report = Some((seq, 0, 0));
    }

    /// Per-poll work of the subscriber stages: sessions whose time ran out, idle flows,
    /// a session report in progress, backlogged records.
    pub fn tick(&mut self, fwd: &Forwarding, now: Instant) {
        self.flush_backlog();
        self.nat64_tick(fwd, now);
        while let Some((slot, t, cause)) = self.sessions.next_due(now) {
            self.close_session(fwd, slot, t, cause);
        }
        if !self.flows.is_empty() {
            let mut batch: ArrayVec<u32, 256> = ArrayVec::new();
            let n = self.sweep_per_poll.min(batch.capacity());
            self.flows
                .sweep_expired(n, &fwd.nat.timeouts, now, &mut |i| batch.push(i));
            for &i in &batch {
                let Some(f) = self.flows.get(i).copied() else {
                    continue;
                };
                let expires = f.expires(&fwd.nat.timeouts);
                if expires <= now {
                    self.close_flow(fwd, i, expiry_close(f.state));
                }
            }
        }
        if let Some((seq, mut next, mut sent)) = self.report {
            // Leave room on the ring for records; resume next poll.
            let budget = self.events.free().saturating_sub(64).min(256);
            let mut finished = true;
            let mut pushed = 0;
            while let Some(slot) = self.sessions.slots_from(next).next() {
                let Some(s) = self.sessions.get(slot) else {
                    break;
                };
                let ev = Event::SessionCounters {
                    id: s.id,
                    seq,
                    at: now,
                    counters: s.counters,
                    last_seen: s.last_seen,
                    ipv6: self.sessions.counters6(slot),
                };
                if pushed >= budget || self.events.push(ev).is_err() {
                    finished = false;
                    break;
                }
                pushed += 1;
                sent += 1;
                next = slot + 1;
            }
            self.report = if finished
                && self
                    .events
                    .push(Event::SessionsReported {
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

    /// Ends every flow and session (the worker is stopping).
    pub fn close_all(&mut self, fwd: &Forwarding, now: Instant) {
        self.close_all_bindings(fwd);
        let flows: Vec<u32> = self.flows.live_flows().collect();
        for i in flows {
            self.close_flow(fwd, i, FlowClose::Shutdown);
        }
        let slots: Vec<u32> = self.sessions.slots_from(0).collect();
        for slot in slots {
            self.close_session(fwd, slot, now, DisconnectCause::NasRequest);
        }
    }

    /// The earliest instant a session condition may fall due (for replay's clock).
    pub fn next_deadline(&self) -> Option<Instant> {
        self.sessions.next_deadline()
    }

    /// The earliest instant an open flow's timeout falls due: a walk over every flow, for
    /// replay's clock after the last frame (the per-poll sweep looks at a few at a time).
    pub fn next_flow_deadline(&self, fwd: &Forwarding) -> Option<Instant> {
        self.flows
            .live_flows()
            .filter_map(|i| self.flows.get(i))
            .map(|f| f.expires(&fwd.nat.timeouts))
            .min()
    }

    /// Closes every flow whose timeout fell due by `now`, at once rather than a sweep's
    /// batch at a time (replay, once the clock moves by timers alone).
    pub fn expire_flows(&mut self, fwd: &Forwarding, now: Instant) {
        let due: Vec<u32> = self
            .flows
            .live_flows()
            .filter(|&i| {
                self.flows
                    .get(i)
                    .is_some_and(|f| f.expires(&fwd.nat.timeouts) <= now)
            })
            .collect();
        for i in due {
            if let Some(state) = self.flows.get(i).map(|f| f.state) {
                self.close_flow(fwd, i, expiry_close(state));
            }
        }
    }
}

/// True when a packet to a NAT address is aimed at a NAT port: TCP or UDP to a port of
/// the NAT range, or an ICMP echo reply whose identifier is in it (an echo request is
/// for the gateway itself). Fragments are not looked into.
#[cold]
fn to_nat_port(fwd: &Forwarding, frame: &[u8], l3: usize, h: &Header) -> bool {
    if h.fragment {
        return false;
    }
    let Some(l4) = frame.get(l3 + h.hl..l3 + h.total) else {
        return false;
    };
    let port = match h.proto {
        protocol::TCP | protocol::UDP => natwire::ports(h.proto, l4).map(|(_, d)| d),
        protocol::ICMP if l4.first() == Some(&crate::wire::icmpv4::kind::ECHO_REPLY) => {
            natwire::ports(h.proto, l4).map(|(_, d)| d)
        }
        _ => None,
    };
    let (lo, hi) = fwd.nat.ports;
    port.is_some_and(|p| (lo..=hi).contains(&p))
}

/// True when a TCP or UDP header does not fit in the `len` bytes the IPv4 total length
/// leaves for it. (ICMP shorter than an echo header has no ports and is refused before.)
#[inline(always)]
fn l4_cut_short(proto: u8, len: usize) -> bool {
    match proto {
        protocol::TCP => len < tcp::MIN_HEADER_LEN,
        protocol::UDP => len < udp::HEADER_LEN,
        _ => false,
    }
}

/// The flag bits of the TCP segment `l4` and where its payload starts (after the header
/// its data offset declares, at least the fixed header). A segment shorter than the
/// fixed header has no flags (its packet is dropped by [`l4_cut_short`] before they
/// matter). Lenient on a data offset below 5: the payload is then taken to start after
/// the fixed header, as a receiver that reads no options would.
#[inline(always)]
fn tcp_flags_and_payload(l4: &[u8]) -> (u8, usize) {
    match l4.first_chunk::<{ tcp::MIN_HEADER_LEN }>() {
        Some(h) => {
            let t = tcp::Packet::new_unchecked(h);
            (t.flags(), t.header_len().max(tcp::MIN_HEADER_LEN))
        }
        None => (0, tcp::MIN_HEADER_LEN),
    }
}

/// How a flow that expired in `state` is recorded.
pub(super) fn expiry_close(state: FlowState) -> FlowClose {
    match state {
        FlowState::TcpClosing => FlowClose::Fin,
        FlowState::TcpReset => FlowClose::Rst,
        _ => FlowClose::Timeout,
    }
}
