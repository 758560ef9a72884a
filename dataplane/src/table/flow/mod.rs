//! Port-keyed address translation to load-balanced real servers (NAT-1..6): a worker's
//! flow table, its NAT ports, TCP state tracking and the per-flow accounting record.
//!
//! A flow is found uplink by (session, service, subscriber port) and downlink by (NAT
//! address, protocol, NAT port): the unique port on the gateway's address is what keys
//! the reverse mapping. Flows live in a slab addressed by `u32`, each also on its
//! session's doubly-linked list so that a session's end closes its flows. Everything is
//! sized at start; creating up to the configured number of flows never allocates.

#![deny(unsafe_code)]

pub mod balance;

use std::net::Ipv4Addr;

use crate::table::index::HashIndex;
use crate::table::session::SessionId;
use crate::time::Instant;
use crate::wire::ipv4::protocol;
use crate::wire::tcp::flags;

/// "No flow" in list links.
pub const NIL: u32 = u32::MAX;

/// Flow timeouts (NAT-4), in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// A TCP flow whose SYN has not been answered.
    pub tcp_syn_ms: u64,
    /// An established TCP connection.
    pub tcp_established_ms: u64,
    /// After a FIN one way.
    pub tcp_fin_ms: u64,
    /// After FINs both ways (lets the last ACK through).
    pub tcp_closing_ms: u64,
    /// A UDP flow.
    pub udp_ms: u64,
    /// An ICMP echo flow.
    pub icmp_ms: u64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            tcp_syn_ms: 30_000,
            tcp_established_ms: 7_440_000,
            tcp_fin_ms: 120_000,
            tcp_closing_ms: 10_000,
            udp_ms: 300_000,
            icmp_ms: 60_000,
        }
    }
}

/// NAT settings, part of the forwarding snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NatConfig {
    /// Source addresses for translated flows (the gateway's core address first).
    pub addresses: Vec<Ipv4Addr>,
    /// Ports to use on each address, inclusive; workers split the range.
    pub ports: (u16, u16),
    /// Flow timeouts.
    pub timeouts: Timeouts,
}

impl NatConfig {
    /// The index of NAT address `ip`.
    #[inline]
    pub fn address_index(&self, ip: Ipv4Addr) -> Option<u16> {
        self.addresses
            .iter()
            .position(|a| *a == ip)
            .map(|i| i as u16)
    }

    /// The slice of the port range worker `worker` of `workers` allocates from.
    pub fn worker_ports(&self, worker: u16, workers: u16) -> (u16, u16) {
        let (lo, hi) = self.ports;
        let n = (hi as u32 - lo as u32 + 1) / workers.max(1) as u32;
        let first = lo as u32 + n * worker as u32;
        (first as u16, (first + n.max(1) - 1) as u16)
    }
}

/// Where a flow is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlowState {
    /// UDP, open.
    Udp,
    /// UDP of a per-packet service: a request went up, its answer not yet down.
    UdpAwaitingReply,
    /// ICMP echo.
    Icmp,
    /// TCP: SYN sent, not answered.
    TcpSynSent,
    /// TCP: answered.
    TcpEstablished,
    /// TCP: FIN from the subscriber.
    TcpFinUp,
    /// TCP: FIN from the server.
    TcpFinDown,
    /// TCP: FINs both ways.
    TcpClosing,
    /// TCP: reset; the flow ends with this packet.
    TcpReset,
}

impl FlowState {
    /// The state a new flow of `proto` starts in.
    pub fn initial(proto: u8) -> FlowState {
        match proto {
            protocol::TCP => FlowState::TcpSynSent,
            protocol::ICMP => FlowState::Icmp,
            _ => FlowState::Udp,
        }
    }

    /// How long the flow may stay idle in this state.
    pub fn timeout_ms(self, t: &Timeouts) -> u64 {
        match self {
            FlowState::Udp | FlowState::UdpAwaitingReply => t.udp_ms,
            FlowState::Icmp => t.icmp_ms,
            FlowState::TcpSynSent => t.tcp_syn_ms,
            FlowState::TcpEstablished => t.tcp_established_ms,
            FlowState::TcpFinUp | FlowState::TcpFinDown => t.tcp_fin_ms,
            FlowState::TcpClosing => t.tcp_closing_ms,
            FlowState::TcpReset => 0,
        }
    }

    /// The state after a TCP segment with `tcp_flags`, from the subscriber (`up`) or to it.
    #[inline]
    pub fn on_tcp(self, up: bool, tcp_flags: u8) -> FlowState {
        use FlowState::*;
        if tcp_flags & flags::RST != 0 {
            return TcpReset;
        }
        let fin = tcp_flags & flags::FIN != 0;
        match (self, up, fin) {
            (TcpSynSent, false, false) if tcp_flags & flags::ACK != 0 => TcpEstablished,
            (TcpSynSent | TcpEstablished, true, true) => TcpFinUp,
            (TcpSynSent | TcpEstablished, false, true) => TcpFinDown,
            (TcpFinUp, false, true) | (TcpFinDown, true, true) => TcpClosing,
            (s, _, _) => s,
        }
    }

    /// True when a TCP SYN from the subscriber should start a new flow in its place
    /// (the old connection is over).
    pub fn is_finished(self) -> bool {
        matches!(self, FlowState::TcpClosing | FlowState::TcpReset)
    }
}

/// Why a flow record was closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlowClose {
    /// FINs both ways.
    Fin,
    /// A TCP reset.
    Rst,
    /// Idle past its timeout.
    Timeout,
    /// A per-packet request got its answer.
    Answered,
    /// Its session ended.
    SessionEnded,
    /// The worker stopped.
    Shutdown,
}

impl FlowClose {
    /// The operator's name.
    pub const fn name(self) -> &'static str {
        match self {
            FlowClose::Fin => "fin",
            FlowClose::Rst => "rst",
            FlowClose::Timeout => "timeout",
            FlowClose::Answered => "answered",
            FlowClose::SessionEnded => "session_ended",
            FlowClose::Shutdown => "shutdown",
        }
    }
}

/// A translated flow: what a packet of it reads and writes, one cache line.
#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
pub struct Flow {
    /// The session's slot (`NIL` while the slab entry is free).
    pub session: u32,
    /// The subscriber's address (with `service` and `sub_port`, the uplink key).
    pub sub: Ipv4Addr,
    /// The service.
    pub service: u16,
    /// The real server (index in the service's group).
    pub server: u16,
    /// NAT address (index in the pool).
    pub addr: u16,
    /// The subscriber's port (ICMP identifier).
    pub sub_port: u16,
    /// The gateway's port for this flow.
    pub nat_port: u16,
    /// IP protocol.
    pub proto: u8,
    /// Life stage.
    pub state: FlowState,
    /// True once an HTTP Host was looked for.
    pub host_checked: bool,
    /// Last packet.
    pub last_seen: Instant,
    /// Packets from the subscriber.
    pub up_packets: u64,
    /// Bytes from the subscriber (IPv4 total length).
    pub up_bytes: u64,
    /// Packets to the subscriber.
    pub down_packets: u64,
    /// Bytes to the subscriber.
    pub down_bytes: u64,
}

impl Flow {
    /// When the flow expires if nothing else arrives.
    #[inline(always)]
    pub fn expires(&self, t: &Timeouts) -> Instant {
        self.last_seen.add_ms(self.state.timeout_ms(t))
    }
}

/// What a flow's packets never touch: its place on its session's list, when it started,
/// and the slot's generation. Kept apart from [`Flow`] so that a packet reads one line.
#[derive(Clone, Copy, Debug)]
struct Cold {
    /// Neighbours on the session's list (`next` also links free slots).
    prev: u32,
    next: u32,
    /// Bumped when the slot is reused, so events about an old flow are told apart.
    generation: u32,
    /// First packet.
    started: Instant,
}

/// A flow as [`FlowTable::remove`] hands it back.
#[derive(Clone, Copy, Debug)]
pub struct Removed {
    /// The flow.
    pub flow: Flow,
    /// When it started.
    pub started: Instant,
    /// Its slot's generation.
    pub generation: u32,
    /// Its neighbours on its session's list (already linked to each other); `prev` is
    /// `NIL` when it was the head.
    pub prev: u32,
    /// See `prev`.
    pub next: u32,
}

/// The uplink key of a flow: the subscriber (address, and the session's slot that
/// confirms it), the service and the subscriber's port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UpKey {
    /// The subscriber's address.
    pub sub: Ipv4Addr,
    /// Its session's slot.
    pub session: u32,
    /// The service.
    pub service: u16,
    /// The subscriber's port.
    pub sub_port: u16,
}

#[inline(always)]
fn up_hash_key(sub: Ipv4Addr, service: u16, sub_port: u16) -> u64 {
    (u32::from(sub) as u64) << 32 | (service as u64) << 16 | sub_port as u64
}

/// The accounting record of a flow (CNT-3), sent when the flow ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowRecord {
    /// The session.
    pub session: SessionId,
    /// Its user.
    pub user: u64,
    /// The service.
    pub service: u16,
    /// IP protocol.
    pub protocol: u8,
    /// Subscriber address and port.
    pub subscriber: (Ipv4Addr, u16),
    /// A NAT64 subscriber's IPv6 address (its port is `subscriber`'s, whose address is
    /// then the NAT64 pool address).
    pub subscriber6: Option<std::net::Ipv6Addr>,
    /// The VIP and port the subscriber addressed.
    pub vip: (Ipv4Addr, u16),
    /// The real server and port.
    pub server: (Ipv4Addr, u16),
    /// The gateway's address and port.
    pub nat: (Ipv4Addr, u16),
    /// First packet.
    pub started: Instant,
    /// Its last packet, however it closed (FIN, reset, timeout, session end): the
    /// closing timer's expiry is not part of the flow.
    pub ended: Instant,
    /// Packets and bytes from the subscriber.
    pub up: (u64, u64),
    /// Packets and bytes to the subscriber.
    pub down: (u64, u64),
    /// Why it ended.
    pub close: FlowClose,
    /// The flow's slot and generation (matches [`crate::msg::Event::FlowHost`]).
    pub flow: (u32, u32),
}

/// The service of a NAT64 binding's record to an IPv4 destination that is not a VIP
/// (`vip` and `server` are then that destination).
pub const NAT64_SERVICE: u16 = u16::MAX;

/// Why a flow could not be created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlowError {
    /// The worker's table is full.
    TableFull,
    /// No NAT port left on any address.
    NoPort,
}

fn proto_index(proto: u8) -> usize {
    match proto {
        protocol::TCP => 0,
        protocol::UDP => 1,
        _ => 2,
    }
}

/// A down-index entry for a port that is free: the next free port of the list.
const FREE: u32 = 1 << 31;
/// The end of a free-port list.
const END: u32 = 1 << 16;

/// A worker's flows.
#[derive(Debug)]
pub struct FlowTable {
    flows: Vec<Flow>,
    cold: Vec<Cold>,
    /// First free slab slot (freed slots are reused last-freed first).
    free_head: u32,
    up: HashIndex,
    /// Per (address, protocol), for each port: the flow using it; for a free port of
    /// this worker's range, `FREE` and the next free port (a list used as a stack, so
    /// ports are handed out lowest first and reused last-freed first); else `NIL`. A
    /// direct index: 256 KiB per address and protocol, no hashing on the downlink, and
    /// the free ports cost nothing extra.
    down: Vec<[Box<[u32]>; 3]>,
    /// First free port per (address, protocol), `END` when none.
    free_port: Vec<[u32; 3]>,
    next_addr: usize,
    capacity: usize,
    count: usize,
    sweep: u32,
}

impl FlowTable {
    /// A table for up to `capacity` flows over `addresses` NAT addresses, each offering
    /// the ports `lo..=hi`.
    pub fn new(capacity: usize, addresses: usize, (lo, hi): (u16, u16)) -> FlowTable {
        let mut ports = vec![NIL; 1 << 16];
        if lo <= hi {
            for p in lo..hi {
                ports[p as usize] = FREE | (p as u32 + 1);
            }
            ports[hi as usize] = FREE | END;
        }
        let ports = ports.into_boxed_slice();
        let head = if lo <= hi { lo as u32 } else { END };
        FlowTable {
            flows: Vec::with_capacity(capacity),
            cold: Vec::with_capacity(capacity),
            free_head: NIL,
            up: HashIndex::new(capacity),
            down: (0..addresses)
                .map(|_| std::array::from_fn(|_| ports.clone()))
                .collect(),
            free_port: vec![[head; 3]; addresses],
            next_addr: 0,
            capacity,
            count: 0,
            sweep: 0,
        }
    }

    /// The flow of `key`.
    #[inline]
    pub fn find_up(&self, key: &UpKey) -> Option<u32> {
        if self.count == 0 {
            return None;
        }
        let h = self
            .up
            .hash(up_hash_key(key.sub, key.service, key.sub_port));
        self.up.find(h, |i| {
            self.flows.get(i as usize).is_some_and(|f| {
                f.session == key.session && f.service == key.service && f.sub_port == key.sub_port
            })
        })
    }

    /// [`Self::find_up`], trying `guess` (a look ahead's candidate, `NIL` for none)
    /// first.
    #[inline]
    pub fn find_up_guessed(&self, key: &UpKey, guess: u32) -> Option<u32> {
        if self.get(guess).is_some_and(|f| {
            f.session == key.session && f.service == key.service && f.sub_port == key.sub_port
        }) {
            return Some(guess);
        }
        self.find_up(key)
    }

    /// Prefetches the index bucket of an uplink key (first stage of a burst).
    #[inline]
    pub fn prefetch_up(&self, sub: Ipv4Addr, service: u16, sub_port: u16) {
        self.up
            .prefetch(self.up.hash(up_hash_key(sub, service, sub_port)));
    }

    /// Prefetches the likely flow of an uplink key, whose bucket was prefetched, and
    /// returns it (`NIL` if none is likely).
    #[inline]
    pub fn prefetch_up_flow(&self, sub: Ipv4Addr, service: u16, sub_port: u16) -> u32 {
        match self
            .up
            .candidate(self.up.hash(up_hash_key(sub, service, sub_port)))
        {
            Some(i) => {
                self.prefetch(i);
                i
            }
            None => NIL,
        }
    }

    /// Prefetches flow `i`.
    #[inline(always)]
    pub fn prefetch(&self, i: u32) {
        if let Some(f) = self.flows.get(i as usize) {
            crate::cpu::read(f);
        }
    }

    /// Prefetches the down-index entry of (NAT address, protocol, NAT port).
    #[inline]
    pub fn prefetch_down(&self, addr: u16, proto: u8, port: u16) {
        if let Some(d) = self.down.get(addr as usize) {
            crate::cpu::read(&d[proto_index(proto)][port as usize]);
        }
    }

    /// The flow of (NAT address, protocol, NAT port).
    #[inline]
    pub fn find_down(&self, addr: u16, proto: u8, port: u16) -> Option<u32> {
        let i = *self.down.get(addr as usize)?[proto_index(proto)].get(port as usize)?;
        (i < FREE).then_some(i)
    }

    /// Flow `i`.
    #[inline(always)]
    pub fn get(&self, i: u32) -> Option<&Flow> {
        self.flows.get(i as usize).filter(|f| f.session != NIL)
    }

    /// Flow `i`, writable.
    #[inline(always)]
    pub fn get_mut(&mut self, i: u32) -> Option<&mut Flow> {
        self.flows.get_mut(i as usize).filter(|f| f.session != NIL)
    }

    /// The flow after `i` on its session's list (`NIL` at the end).
    pub fn next_of(&self, i: u32) -> u32 {
        match self.get(i) {
            Some(_) => self.cold[i as usize].next,
            None => NIL,
        }
    }

    /// The generation of flow `i`'s slot.
    pub fn generation(&self, i: u32) -> u32 {
        self.cold.get(i as usize).map_or(0, |c| c.generation)
    }

    /// When flow `i` started.
    pub fn started(&self, i: u32) -> Option<Instant> {
        self.get(i).map(|_| self.cold[i as usize].started)
    }

    fn take_port(&mut self, pi: usize) -> Option<(usize, u16)> {
        let n = self.free_port.len();
        let addr = (0..n)
            .map(|k| (self.next_addr + k) % n)
            .find(|a| self.free_port[*a][pi] != END)?;
        let port = self.free_port[addr][pi];
        self.free_port[addr][pi] = self.down[addr][pi][port as usize] & !FREE;
        self.next_addr = (addr + 1) % n.max(1);
        Some((addr, port as u16))
    }

    /// Creates a flow with a fresh NAT port and puts it at the head of its session's
    /// list, before `head` (the session's current first flow, `NIL` if none).
    pub fn create(
        &mut self,
        key: UpKey,
        server: u16,
        proto: u8,
        now: Instant,
        head: u32,
    ) -> Result<u32, FlowError> {
        if self.count >= self.capacity {
            return Err(FlowError::TableFull);
        }
        let pi = proto_index(proto);
        let (addr, port) = self.take_port(pi).ok_or(FlowError::NoPort)?;
        let flow = Flow {
            session: key.session,
            sub: key.sub,
            service: key.service,
            server,
            addr: addr as u16,
            sub_port: key.sub_port,
            nat_port: port,
            proto,
            state: FlowState::initial(proto),
            host_checked: false,
            last_seen: now,
            up_packets: 0,
            up_bytes: 0,
            down_packets: 0,
            down_bytes: 0,
        };
        let cold = Cold {
            prev: NIL,
            next: head,
            generation: 0,
            started: now,
        };
        let i = if self.free_head != NIL {
            let i = self.free_head;
            let c = &mut self.cold[i as usize];
            self.free_head = c.next;
            *c = Cold {
                generation: c.generation.wrapping_add(1),
                ..cold
            };
            self.flows[i as usize] = flow;
            i
        } else {
            self.flows.push(flow);
            self.cold.push(cold);
            (self.flows.len() - 1) as u32
        };
        if self.get(head).is_some() {
            self.cold[head as usize].prev = i;
        }
        let h = self
            .up
            .hash(up_hash_key(key.sub, key.service, key.sub_port));
        // Cannot fail: the index has room for the table's capacity.
        let _ = self.up.insert(h, i);
        self.down[addr][pi][port as usize] = i;
        self.count += 1;
        Ok(i)
    }

    /// Removes flow `i`: it leaves its session's list (the caller moves the session's
    /// head if it was first) and its port goes back to the pool.
    pub fn remove(&mut self, i: u32) -> Option<Removed> {
        let f = *self.get(i)?;
        let c = self.cold[i as usize];
        if self.get(c.prev).is_some() {
            self.cold[c.prev as usize].next = c.next;
        }
        if self.get(c.next).is_some() {
            self.cold[c.next as usize].prev = c.prev;
        }
        let h = self.up.hash(up_hash_key(f.sub, f.service, f.sub_port));
        self.up.remove(h, i);
        let pi = proto_index(f.proto);
        let (a, p) = (f.addr as usize, f.nat_port as usize);
        self.down[a][pi][p] = FREE | self.free_port[a][pi];
        self.free_port[a][pi] = p as u32;
        self.flows[i as usize].session = NIL;
        self.cold[i as usize].next = self.free_head;
        self.free_head = i;
        self.count -= 1;
        Some(Removed {
            flow: f,
            started: c.started,
            generation: c.generation,
            prev: if self.get(c.prev).is_some() {
                c.prev
            } else {
                NIL
            },
            next: c.next,
        })
    }

    /// The idle sweep's next `n` slots, resuming where the last call stopped: each live
    /// flow among them that has expired by `now` (under `timeouts`) is handed to `out`.
    /// The expiry is read here, with the slot, rather than by the caller afterwards.
    pub fn sweep_expired(
        &mut self,
        n: usize,
        timeouts: &Timeouts,
        now: Instant,
        out: &mut impl FnMut(u32),
    ) {
        let len = self.flows.len() as u32;
        if len == 0 || self.count == 0 {
            return;
        }
        let mut at = self.sweep;
        for _ in 0..n.min(len as usize) {
            at += 1;
            if at >= len {
                at = 0;
            }
            let e = &self.flows[at as usize];
            if e.session != NIL && e.expires(timeouts) <= now {
                out(at);
            }
        }
        self.sweep = at;
    }

    /// Every live flow (shutdown).
    pub fn live_flows(&self) -> impl Iterator<Item = u32> + '_ {
        self.flows
            .iter()
            .enumerate()
            .filter(|(_, f)| f.session != NIL)
            .map(|(i, _)| i as u32)
    }

    /// Flows open.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when none are open.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Bytes of a flow's slab entry (the hot line and the cold part).
    pub const fn bytes_per_flow() -> usize {
        std::mem::size_of::<Flow>() + std::mem::size_of::<Cold>()
    }

    /// Flows the table can hold.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Bytes a table of `capacity` flows over `addresses` NAT addresses allocates once
    /// full (what [`Self::memory_bytes`] then says), for sizing before anything is
    /// allocated.
    pub fn bytes_for(capacity: usize, addresses: usize) -> usize {
        capacity
            .saturating_mul(std::mem::size_of::<Flow>() + std::mem::size_of::<Cold>())
            .saturating_add(HashIndex::bytes_for(capacity))
            .saturating_add(addresses.saturating_mul(3 * 4 * (1 << 16) + 12))
    }

    /// Bytes the table has allocated: slab, the up index, and the down index (which
    /// holds the free NAT ports too).
    pub fn memory_bytes(&self) -> usize {
        self.flows.capacity() * std::mem::size_of::<Flow>()
            + self.cold.capacity() * std::mem::size_of::<Cold>()
            + self.up.memory_bytes()
            + self
                .down
                .iter()
                .flatten()
                .map(|d| d.len() * 4)
                .sum::<usize>()
            + self.free_port.capacity() * 12
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_states() {
        use FlowState::*;
        let s = FlowState::initial(protocol::TCP);
        assert_eq!(s, TcpSynSent);
        let s = s.on_tcp(false, flags::SYN | flags::ACK);
        assert_eq!(s, TcpEstablished);
        assert_eq!(s.on_tcp(true, flags::ACK), TcpEstablished);
        let s = s.on_tcp(true, flags::FIN | flags::ACK);
        assert_eq!(s, TcpFinUp);
        assert_eq!(s.on_tcp(true, flags::ACK), TcpFinUp);
        let s = s.on_tcp(false, flags::FIN | flags::ACK);
        assert_eq!(s, TcpClosing);
        assert!(s.is_finished());
        assert_eq!(TcpEstablished.on_tcp(false, flags::RST), TcpReset);
        assert_eq!(
            TcpSynSent.on_tcp(false, flags::FIN | flags::ACK),
            TcpFinDown
        );
    }

    fn key(session: u32, service: u16, sub_port: u16) -> UpKey {
        UpKey {
            sub: Ipv4Addr::from(0x0a00_0000 + session),
            session,
            service,
            sub_port,
        }
    }

    #[test]
    fn flow_is_one_cache_line() {
        assert_eq!(std::mem::size_of::<Flow>(), 64);
    }

    #[test]
    fn create_find_remove_and_ports() {
        let mut t = FlowTable::new(3, 2, (1000, 1001));
        let now = Instant(5);
        let a = t
            .create(key(7, 1, 40000), 0, protocol::TCP, now, NIL)
            .unwrap();
        let b = t
            .create(key(7, 1, 40001), 0, protocol::TCP, now, a)
            .unwrap();
        let fa = *t.get(a).unwrap();
        let fb = *t.get(b).unwrap();
        assert_ne!(
            (fa.addr, fa.nat_port),
            (fb.addr, fb.nat_port),
            "unique NAT endpoint"
        );
        assert_eq!((fa.addr, fa.nat_port), (0, 1000));
        assert_eq!((fb.addr, fb.nat_port), (1, 1000), "addresses in turn");
        assert_eq!(t.find_up(&key(7, 1, 40000)), Some(a));
        assert_eq!(t.find_up(&key(8, 1, 40000)), None);
        assert_eq!(t.find_down(fb.addr, protocol::TCP, fb.nat_port), Some(b));
        assert_eq!(t.find_down(fb.addr, protocol::UDP, fb.nat_port), None);
        assert_eq!(
            t.find_down(0, protocol::TCP, 999),
            None,
            "outside the range"
        );
        assert_eq!((t.next_of(b), t.next_of(a)), (a, NIL), "session list");
        t.create(key(8, 1, 1), 0, protocol::TCP, now, NIL).unwrap();
        assert_eq!(
            t.create(key(9, 1, 1), 0, protocol::TCP, now, NIL)
                .unwrap_err(),
            FlowError::TableFull
        );
        let r = t.remove(a).unwrap();
        assert_eq!((r.prev, r.next), (b, NIL));
        assert_eq!(t.next_of(b), NIL, "unlinked");
        assert_eq!(t.find_up(&key(7, 1, 40000)), None);
        assert_eq!(t.find_down(0, protocol::TCP, 1000), None);
        let c = t.create(key(9, 1, 1), 0, protocol::UDP, now, NIL).unwrap();
        assert_eq!(c, a, "slot reused");
        assert_eq!(t.generation(c), 1);

        let mut small = FlowTable::new(10, 1, (5000, 5001));
        small
            .create(key(1, 0, 1), 0, protocol::UDP, now, NIL)
            .unwrap();
        small
            .create(key(1, 0, 2), 0, protocol::UDP, now, NIL)
            .unwrap();
        assert_eq!(
            small
                .create(key(1, 0, 3), 0, protocol::UDP, now, NIL)
                .unwrap_err(),
            FlowError::NoPort
        );
        assert!(
            small
                .create(key(1, 0, 3), 0, protocol::TCP, now, NIL)
                .is_ok(),
            "ports are per protocol"
        );
    }

    /// The table as it was before the direct free-port lists and the hash index: port
    /// stacks, a map, a slab with a free stack. The new one must hand out the same slots
    /// and the same NAT endpoints in the same order.
    #[derive(Default)]
    struct Model {
        flows: Vec<Option<(UpKey, u8, usize, u16)>>,
        free: Vec<u32>,
        ports: Vec<[Vec<u16>; 3]>,
        next_addr: usize,
        capacity: usize,
    }

    impl Model {
        fn new(capacity: usize, addresses: usize, (lo, hi): (u16, u16)) -> Model {
            let range: Vec<u16> = (lo..=hi).rev().collect();
            Model {
                ports: (0..addresses)
                    .map(|_| [range.clone(), range.clone(), range.clone()])
                    .collect(),
                capacity,
                ..Model::default()
            }
        }

        fn live(&self) -> usize {
            self.flows.iter().flatten().count()
        }

        fn create(&mut self, k: UpKey, proto: u8) -> Result<(u32, usize, u16), FlowError> {
            if self.live() >= self.capacity {
                return Err(FlowError::TableFull);
            }
            let pi = proto_index(proto);
            let n = self.ports.len();
            let (a, p) = (0..n)
                .map(|j| (self.next_addr + j) % n)
                .find_map(|a| self.ports[a][pi].pop().map(|p| (a, p)))
                .ok_or(FlowError::NoPort)?;
            self.next_addr = (a + 1) % n;
            let i = match self.free.pop() {
                Some(i) => i,
                None => {
                    self.flows.push(None);
                    (self.flows.len() - 1) as u32
                }
            };
            self.flows[i as usize] = Some((k, proto, a, p));
            Ok((i, a, p))
        }

        fn remove(&mut self, i: u32) {
            if let Some((_, proto, a, p)) = self.flows[i as usize].take() {
                self.ports[a][proto_index(proto)].push(p);
                self.free.push(i);
            }
        }

        fn find_up(&self, k: &UpKey) -> Option<u32> {
            self.flows
                .iter()
                .position(|f| {
                    f.is_some_and(|(fk, ..)| {
                        (fk.session, fk.service, fk.sub_port) == (k.session, k.service, k.sub_port)
                    })
                })
                .map(|i| i as u32)
        }
    }

    #[derive(Clone, Debug)]
    enum Op {
        Create(u32, u16, u8),
        Remove(usize),
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        prop_oneof![
            3 => (0u32..4, 0u16..12, prop_oneof![Just(protocol::TCP), Just(protocol::UDP), Just(protocol::ICMP)])
                .prop_map(|(s, p, pr)| Op::Create(s, p, pr)),
            2 => (0usize..64).prop_map(Op::Remove),
        ]
    }

    proptest::proptest! {
        #[test]
        fn matches_the_reference_model(
            cap in 1usize..24,
            addresses in 1usize..3,
            ops in proptest::collection::vec(op(), 1..200),
        ) {
            let now = Instant(1);
            let mut t = FlowTable::new(cap, addresses, (2000, 2004));
            let mut m = Model::new(cap, addresses, (2000, 2004));
            let mut heads = [NIL; 4];
            for o in ops {
                match o {
                    Op::Create(s, port, proto) => {
                        let k = key(s, 0, port);
                        if m.find_up(&k).is_some() {
                            continue;
                        }
                        let want = m.create(k, proto);
                        let got = t.create(k, 0, proto, now, heads[s as usize]);
                        match (want, got) {
                            (Ok((i, a, p)), Ok(j)) => {
                                proptest::prop_assert_eq!(i, j);
                                let f = t.get(j).unwrap();
                                proptest::prop_assert_eq!((f.addr as usize, f.nat_port), (a, p));
                                heads[s as usize] = j;
                            }
                            (Err(e), Err(g)) => proptest::prop_assert_eq!(e, g),
                            (w, g) => proptest::prop_assert!(false, "{:?} vs {:?}", w, g),
                        }
                    }
                    Op::Remove(n) => {
                        let live: Vec<u32> = t.live_flows().collect();
                        if live.is_empty() {
                            continue;
                        }
                        let i = live[n % live.len()];
                        let s = t.get(i).unwrap().session as usize;
                        let r = t.remove(i).unwrap();
                        if r.prev == NIL {
                            heads[s] = r.next;
                        }
                        m.remove(i);
                    }
                }
                proptest::prop_assert_eq!(t.len(), m.live());
                for (i, f) in m.flows.iter().enumerate() {
                    if let Some((k, proto, a, p)) = f {
                        proptest::prop_assert_eq!(t.find_up(k), Some(i as u32));
                        proptest::prop_assert_eq!(t.find_down(*a as u16, *proto, *p), Some(i as u32));
                    }
                }
                // Each session's list holds exactly its flows.
                for (s, head) in heads.iter().enumerate() {
                    let mut n = 0;
                    let mut i = *head;
                    while i != NIL {
                        proptest::prop_assert_eq!(t.get(i).unwrap().session as usize, s);
                        i = t.next_of(i);
                        n += 1;
                    }
                    let want = m.flows.iter().flatten().filter(|(k, ..)| k.session as usize == s).count();
                    proptest::prop_assert_eq!(n, want);
                }
            }
        }
    }

    #[test]
    fn worker_port_slices() {
        let c = NatConfig {
            addresses: vec![Ipv4Addr::new(192, 0, 2, 1)],
            ports: (1024, 65535),
            timeouts: Timeouts::default(),
        };
        assert_eq!(c.worker_ports(0, 1), (1024, 65535));
        assert_eq!(c.worker_ports(0, 2), (1024, 33279));
        assert_eq!(c.worker_ports(1, 2), (33280, 65535));
    }
}
