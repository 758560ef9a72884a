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

use hashbrown::HashMap;

use crate::session::SessionId;
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

/// A translated flow.
#[derive(Clone, Copy, Debug)]
pub struct Flow {
    /// The session's slot.
    pub session: u32,
    /// The service.
    pub service: u16,
    /// The real server (index in the service's group).
    pub server: u16,
    /// IP protocol.
    pub proto: u8,
    /// Life stage.
    pub state: FlowState,
    /// True once an HTTP Host was looked for.
    pub host_checked: bool,
    /// NAT address (index in the pool).
    pub addr: u16,
    /// The subscriber's port (ICMP identifier).
    pub sub_port: u16,
    /// The gateway's port for this flow.
    pub nat_port: u16,
    /// Bumped when the slot is reused, so events about an old flow are told apart.
    pub generation: u32,
    /// Neighbours on the session's list.
    pub prev: u32,
    /// Neighbours on the session's list.
    pub next: u32,
    /// First packet.
    pub started: Instant,
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
    #[inline]
    pub fn expires(&self, t: &Timeouts) -> Instant {
        self.last_seen.add_ms(self.state.timeout_ms(t))
    }
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
    /// The VIP and port the subscriber addressed.
    pub vip: (Ipv4Addr, u16),
    /// The real server and port.
    pub server: (Ipv4Addr, u16),
    /// The gateway's address and port.
    pub nat: (Ipv4Addr, u16),
    /// First packet.
    pub started: Instant,
    /// Last packet, or the instant the flow expired.
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

#[inline(always)]
fn up_key(session: u32, service: u16, sub_port: u16) -> u64 {
    (session as u64) << 32 | (service as u64) << 16 | sub_port as u64
}

/// A worker's flows.
#[derive(Debug)]
pub struct FlowTable {
    flows: Vec<Flow>,
    live: Vec<bool>,
    free: Vec<u32>,
    up: HashMap<u64, u32>,
    /// The flow of each (address, protocol, port): a direct index, `NIL` when free,
    /// 256 KiB per address and protocol (cheaper than a map per flow once the pool is
    /// in use, and no hashing on the downlink).
    down: Vec<[Box<[u32]>; 3]>,
    /// Free ports per (address, protocol), used as stacks.
    ports: Vec<[Vec<u16>; 3]>,
    next_addr: usize,
    capacity: usize,
    count: usize,
    sweep: u32,
}

impl FlowTable {
    /// A table for up to `capacity` flows over `addresses` NAT addresses, each offering
    /// the ports `lo..=hi`.
    pub fn new(capacity: usize, addresses: usize, (lo, hi): (u16, u16)) -> FlowTable {
        let range: Vec<u16> = (lo..=hi).rev().collect();
        FlowTable {
            flows: Vec::with_capacity(capacity),
            live: Vec::with_capacity(capacity),
            free: Vec::with_capacity(capacity),
            up: HashMap::with_capacity(capacity * 2),
            down: (0..addresses)
                .map(|_| std::array::from_fn(|_| vec![NIL; 1 << 16].into_boxed_slice()))
                .collect(),
            ports: (0..addresses)
                .map(|_| [range.clone(), range.clone(), range.clone()])
                .collect(),
            next_addr: 0,
            capacity,
            count: 0,
            sweep: 0,
        }
    }

    /// The flow of (session, service, subscriber port).
    #[inline]
    pub fn find_up(&self, session: u32, service: u16, sub_port: u16) -> Option<u32> {
        if self.count == 0 {
            return None;
        }
        self.up.get(&up_key(session, service, sub_port)).copied()
    }

    /// The flow of (NAT address, protocol, NAT port).
    #[inline]
    pub fn find_down(&self, addr: u16, proto: u8, port: u16) -> Option<u32> {
        if self.count == 0 {
            return None;
        }
        let i = *self.down.get(addr as usize)?[proto_index(proto)].get(port as usize)?;
        (i != NIL).then_some(i)
    }

    /// Flow `i`.
    #[inline(always)]
    pub fn get(&self, i: u32) -> Option<&Flow> {
        self.flows.get(i as usize).filter(|_| self.live[i as usize])
    }

    /// Flow `i`, writable.
    #[inline(always)]
    pub fn get_mut(&mut self, i: u32) -> Option<&mut Flow> {
        if !self.live.get(i as usize).copied().unwrap_or(false) {
            return None;
        }
        self.flows.get_mut(i as usize)
    }

    /// Creates a flow with a fresh NAT port, at the head of nothing (the caller links it
    /// to its session).
    #[allow(clippy::too_many_arguments)]
    pub fn create(
        &mut self,
        session: u32,
        service: u16,
        server: u16,
        proto: u8,
        sub_port: u16,
        now: Instant,
    ) -> Result<u32, FlowError> {
        if self.count >= self.capacity {
            return Err(FlowError::TableFull);
        }
        let pi = proto_index(proto);
        let n = self.ports.len();
        let (addr, port) = (0..n)
            .map(|k| (self.next_addr + k) % n)
            .find_map(|a| self.ports[a][pi].pop().map(|p| (a, p)))
            .ok_or(FlowError::NoPort)?;
        self.next_addr = (addr + 1) % n.max(1);
        let flow = Flow {
            session,
            service,
            server,
            proto,
            state: FlowState::initial(proto),
            host_checked: false,
            addr: addr as u16,
            sub_port,
            nat_port: port,
            generation: 0,
            prev: NIL,
            next: NIL,
            started: now,
            last_seen: now,
            up_packets: 0,
            up_bytes: 0,
            down_packets: 0,
            down_bytes: 0,
        };
        let i = match self.free.pop() {
            Some(i) => {
                let generation = self.flows[i as usize].generation.wrapping_add(1);
                self.flows[i as usize] = Flow { generation, ..flow };
                self.live[i as usize] = true;
                i
            }
            None => {
                self.flows.push(flow);
                self.live.push(true);
                (self.flows.len() - 1) as u32
            }
        };
        self.up.insert(up_key(session, service, sub_port), i);
        self.down[addr][pi][port as usize] = i;
        self.count += 1;
        Ok(i)
    }

    /// Removes flow `i` (its port goes back to the pool) and returns it; the caller
    /// unlinks it from its session's list first.
    pub fn remove(&mut self, i: u32) -> Option<Flow> {
        let f = *self.get(i)?;
        self.live[i as usize] = false;
        self.up.remove(&up_key(f.session, f.service, f.sub_port));
        self.down[f.addr as usize][proto_index(f.proto)][f.nat_port as usize] = NIL;
        self.ports[f.addr as usize][proto_index(f.proto)].push(f.nat_port);
        self.free.push(i);
        self.count -= 1;
        Some(f)
    }

    /// Up to `n` live flows for the idle sweep, resuming where the last call stopped.
    pub fn sweep_batch(&mut self, n: usize, out: &mut impl FnMut(u32)) {
        let len = self.flows.len() as u32;
        if len == 0 || self.count == 0 {
            return;
        }
        for _ in 0..n.min(len as usize) {
            self.sweep = (self.sweep + 1) % len;
            if self.live[self.sweep as usize] {
                out(self.sweep);
            }
        }
    }

    /// Every live flow (shutdown).
    pub fn live_flows(&self) -> impl Iterator<Item = u32> + '_ {
        self.live
            .iter()
            .enumerate()
            .filter(|(_, l)| **l)
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

    /// Bytes of state per flow: the slab entry and liveness byte (the two index maps add
    /// about 2 x 16 bytes per flow more, at their load factor).
    pub const fn bytes_per_flow() -> usize {
        std::mem::size_of::<Flow>() + 1
    }

    /// Flows the table can hold.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Bytes the table has allocated: slab, liveness, free list, the up map, the down
    /// index and the NAT port pools.
    pub fn memory_bytes(&self) -> usize {
        self.flows.capacity() * std::mem::size_of::<Flow>()
            + self.live.capacity()
            + self.free.capacity() * 4
            + self.up.allocation_size()
            + self
                .down
                .iter()
                .flatten()
                .map(|d| d.len() * 4)
                .sum::<usize>()
            + self
                .ports
                .iter()
                .flatten()
                .map(|p| p.capacity() * 2)
                .sum::<usize>()
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

    #[test]
    fn create_find_remove_and_ports() {
        let mut t = FlowTable::new(3, 2, (1000, 1001));
        let now = Instant(5);
        let a = t.create(7, 1, 0, protocol::TCP, 40000, now).unwrap();
        let b = t.create(7, 1, 0, protocol::TCP, 40001, now).unwrap();
        let fa = *t.get(a).unwrap();
        let fb = *t.get(b).unwrap();
        assert_ne!(
            (fa.addr, fa.nat_port),
            (fb.addr, fb.nat_port),
            "unique NAT endpoint"
        );
        assert_eq!(t.find_up(7, 1, 40000), Some(a));
        assert_eq!(t.find_down(fb.addr, protocol::TCP, fb.nat_port), Some(b));
        assert_eq!(t.find_down(fb.addr, protocol::UDP, fb.nat_port), None);
        t.create(8, 1, 0, protocol::TCP, 1, now).unwrap();
        assert_eq!(
            t.create(9, 1, 0, protocol::TCP, 1, now),
            Err(FlowError::TableFull)
        );
        t.remove(a).unwrap();
        assert_eq!(t.find_up(7, 1, 40000), None);
        let c = t.create(9, 1, 0, protocol::UDP, 1, now).unwrap();
        assert_eq!(c, a, "slot reused");
        assert_eq!(t.get(c).unwrap().generation, 1);

        let mut small = FlowTable::new(10, 1, (5000, 5001));
        small.create(1, 0, 0, protocol::UDP, 1, now).unwrap();
        small.create(1, 0, 0, protocol::UDP, 2, now).unwrap();
        assert_eq!(
            small.create(1, 0, 0, protocol::UDP, 3, now),
            Err(FlowError::NoPort)
        );
        assert!(
            small.create(1, 0, 0, protocol::TCP, 3, now).is_ok(),
            "ports are per protocol"
        );
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
