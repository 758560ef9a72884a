//! NAT64 bindings (V6-2, RFC 6146): a worker's table of translated IPv6 flows, each an
//! IPv6 subscriber's (address, port) towards one IPv4 (address, port) bound to a port on a
//! NAT64 pool address, and the `[nat64]` settings in the forwarding snapshot.
//!
//! Endpoint-independent mapping (RFC 4787 REQ-1, RFC 6146 3.5.1): a subscriber's
//! (address, port, protocol) gets one pool (address, port), its mapping, whatever it
//! talks to; each destination it talks to is a binding of that mapping. A binding is
//! found uplink by its full key (subscriber address and port, remote address and port,
//! protocol) through a hash index; a mapping by (subscriber address, port, protocol)
//! through a second one (to its newest binding); downlink by (pool address, protocol,
//! pool port) through a direct index, one entry per port, to the newest binding of the
//! port's mapping, whose bindings are chained (most often one), then by the remote
//! address and port along the chain. Free ports form a stack (lowest first, last freed
//! reused first); a port goes back when its mapping's last binding ends. Everything is
//! sized at start; nothing allocates per packet.

#![deny(unsafe_code)]

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::table::flow::{FlowState, NIL, Timeouts};
use crate::table::index::HashIndex;
use crate::table::session::SessionId;
use crate::time::Instant;
use crate::wire::ipv4::protocol;

/// The RFC 6052 well-known prefix, 64:ff9b::/96.
pub const WELL_KNOWN_PREFIX: Ipv6Addr = Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0);

/// `[nat64]` as the workers read it, part of the forwarding snapshot. Off by default.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Nat64Config {
    /// IPv6 from a session to the prefix is translated.
    pub on: bool,
    /// The /96 IPv4 addresses are embedded in (RFC 6052 2.2, the last 32 bits).
    pub prefix: Ipv6Addr,
    /// The IPv4 addresses translated flows leave from.
    pub pool: Vec<Ipv4Addr>,
    /// The largest IPv4 packet sent out translated (the core side's MTU): longer
    /// IPv6 is answered with Packet Too Big.
    pub mtu: u16,
    /// Endpoint-independent filtering (RFC 4787 REQ-8): UDP from any IPv4 address and
    /// port to a mapping's pool port opens a binding to it. Off: address-dependent
    /// filtering, only from an address the mapping already has a binding with.
    pub endpoint_independent_filtering: bool,
}

impl Default for Nat64Config {
    fn default() -> Self {
        Nat64Config {
            on: false,
            prefix: WELL_KNOWN_PREFIX,
            pool: Vec::new(),
            mtu: 1500,
            endpoint_independent_filtering: false,
        }
    }
}

impl Nat64Config {
    /// The IPv4 address `a` embeds, when it is inside the prefix and NAT64 is on.
    #[inline(always)]
    pub fn embedded(&self, a: Ipv6Addr) -> Option<Ipv4Addr> {
        let (a, p) = (a.to_bits(), self.prefix.to_bits());
        (self.on && a >> 32 == p >> 32).then_some(Ipv4Addr::from_bits(a as u32))
    }

    /// The IPv6 address that stands for the IPv4 address `v4`.
    #[inline(always)]
    pub fn synthesize(&self, v4: Ipv4Addr) -> Ipv6Addr {
        Ipv6Addr::from_bits(self.prefix.to_bits() >> 32 << 32 | u128::from(v4.to_bits()))
    }

    /// The index of pool address `ip`, when NAT64 is on.
    #[inline(always)]
    pub fn pool_index(&self, ip: Ipv4Addr) -> Option<u16> {
        if !self.on {
            return None;
        }
        self.pool.iter().position(|a| *a == ip).map(|i| i as u16)
    }
}

/// A binding: one translated flow.
#[derive(Clone, Copy, Debug)]
pub struct Binding {
    /// The session's slot (`NIL` while the slab entry is free).
    pub session: u32,
    /// The session's id (a slot reused by another session no longer matches).
    pub session_id: SessionId,
    /// The subscriber's IPv6 address.
    pub sub: Ipv6Addr,
    /// The subscriber's port (ICMPv6 echo identifier).
    pub sub_port: u16,
    /// The IPv4 destination.
    pub remote: Ipv4Addr,
    /// Its port (0 for ICMP).
    pub remote_port: u16,
    /// The pool address (index in [`Nat64Config::pool`]).
    pub addr: u16,
    /// The pool port.
    pub port: u16,
    /// IPv4 protocol (ICMP for ICMPv6 echo).
    pub proto: u8,
    /// Life stage (the NAT-4 states and timeouts).
    pub state: FlowState,
    /// First packet.
    pub started: Instant,
    /// Last packet.
    pub last_seen: Instant,
    /// Packets and bytes from the subscriber (IPv4 total length).
    pub up: (u64, u64),
    /// Packets and bytes to the subscriber.
    pub down: (u64, u64),
    /// The next (older) binding of the same mapping, `NIL` at the end.
    pub next: u32,
}

impl Binding {
    /// When the binding expires if nothing else arrives.
    #[inline(always)]
    pub fn expires(&self, t: &Timeouts) -> Instant {
        self.last_seen.add_ms(self.state.timeout_ms(t))
    }
}

/// The uplink key of a binding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Key {
    /// The subscriber's address.
    pub sub: Ipv6Addr,
    /// Its port (ICMPv6 echo identifier).
    pub sub_port: u16,
    /// The IPv4 destination.
    pub remote: Ipv4Addr,
    /// Its port (0 for ICMP).
    pub remote_port: u16,
    /// IPv4 protocol.
    pub proto: u8,
}

impl Key {
    #[inline(always)]
    fn hash_key(&self) -> u64 {
        let s = self.sub.to_bits();
        (s as u64 ^ (s >> 64) as u64)
            ^ (u64::from(self.remote.to_bits()) << 24)
            ^ (u64::from(self.sub_port) << 8 | u64::from(self.remote_port) << 40)
            ^ u64::from(self.proto)
    }

    /// The hash key of the key's mapping: (subscriber address, port, protocol).
    #[inline(always)]
    fn mapping_key(&self) -> u64 {
        let s = self.sub.to_bits();
        (s as u64 ^ (s >> 64) as u64) ^ (u64::from(self.sub_port) << 16 | u64::from(self.proto))
    }

    #[inline(always)]
    fn same_mapping(&self, b: &Binding) -> bool {
        b.sub_port == self.sub_port && b.proto == self.proto && b.sub == self.sub
    }

    #[inline(always)]
    fn is(&self, b: &Binding) -> bool {
        b.sub_port == self.sub_port
            && b.remote == self.remote
            && b.remote_port == self.remote_port
            && b.proto == self.proto
            && b.sub == self.sub
    }
}

/// Why a binding could not be created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BindError {
    /// The table is full.
    TableFull,
    /// No port left on any pool address.
    NoPort,
}

fn proto_index(proto: u8) -> usize {
    match proto {
        protocol::TCP => 0,
        protocol::UDP => 1,
        _ => 2,
    }
}

/// A down-index entry for a free port: the next free port of the list.
const FREE: u32 = 1 << 31;
/// The end of a free-port list.
const END: u32 = 1 << 16;

/// A worker's NAT64 bindings.
#[derive(Debug)]
pub struct Nat64Table {
    bindings: Vec<Binding>,
    /// Free slab slots, the last freed reused first (sized at start).
    free: Vec<u32>,
    up: HashIndex,
    /// (subscriber address, port, protocol) to the newest binding of its mapping.
    mappings: HashIndex,
    /// Per (pool address, protocol), for each port: the binding using it; for a free
    /// port of this worker's range `FREE` and the next free port; else `NIL`.
    down: Vec<[Box<[u32]>; 3]>,
    free_port: Vec<[u32; 3]>,
    next_addr: usize,
    capacity: usize,
    count: usize,
    sweep: u32,
}

impl Nat64Table {
    /// A table for up to `capacity` bindings over `addresses` pool addresses, each
    /// offering the ports `lo..=hi`.
    pub fn new(capacity: usize, addresses: usize, (lo, hi): (u16, u16)) -> Nat64Table {
        let capacity = if addresses == 0 { 0 } else { capacity };
        let down = if capacity == 0 {
            Vec::new()
        } else {
            let mut ports = vec![NIL; 1 << 16];
            if lo <= hi {
                for p in lo..hi {
                    ports[p as usize] = FREE | (p as u32 + 1);
                }
                ports[hi as usize] = FREE | END;
            }
            let ports = ports.into_boxed_slice();
            (0..addresses)
                .map(|_| std::array::from_fn(|_| ports.clone()))
                .collect()
        };
        let head = if lo <= hi { lo as u32 } else { END };
        Nat64Table {
            bindings: Vec::with_capacity(capacity),
            free: Vec::with_capacity(capacity),
            up: HashIndex::new(capacity.max(1)),
            mappings: HashIndex::new(capacity.max(1)),
            free_port: vec![[head; 3]; down.len()],
            down,
            next_addr: 0,
            capacity,
            count: 0,
            sweep: 0,
        }
    }

    /// Starts loading the up-index bucket of `key` (look-ahead).
    #[inline]
    pub fn prefetch_up(&self, key: &Key) {
        if self.count != 0 {
            self.up.prefetch(self.up.hash(key.hash_key()));
        }
    }

    /// Prefetches the likely binding of `key`, whose bucket was prefetched.
    #[inline]
    pub fn prefetch_up_binding(&self, key: &Key) {
        if self.count == 0 {
            return;
        }
        if let Some(b) = self
            .up
            .candidate(self.up.hash(key.hash_key()))
            .and_then(|i| self.bindings.get(i as usize))
        {
            crate::cpu::read_all(b);
        }
    }

    /// The binding of `key`.
    #[inline]
    pub fn find_up(&self, key: &Key) -> Option<u32> {
        if self.count == 0 {
            return None;
        }
        let h = self.up.hash(key.hash_key());
        self.up.find(h, |i| self.get(i).is_some_and(|b| key.is(b)))
    }

    /// The newest binding of the mapping of (pool address, protocol, pool port).
    #[inline]
    pub fn mapping_down(&self, addr: u16, proto: u8, port: u16) -> Option<u32> {
        let i = *self.down.get(addr as usize)?[proto_index(proto)].get(port as usize)?;
        (i < FREE).then_some(i)
    }

    /// The binding of (pool address, protocol, pool port) with `remote` and its port.
    #[inline]
    pub fn find_down(
        &self,
        addr: u16,
        proto: u8,
        port: u16,
        (remote, remote_port): (Ipv4Addr, u16),
    ) -> Option<u32> {
        let mut i = self.mapping_down(addr, proto, port)?;
        loop {
            let b = self.bindings.get(i as usize)?;
            if b.remote == remote && b.remote_port == remote_port {
                return Some(i);
            }
            if b.next >= FREE {
                return None;
            }
            i = b.next;
        }
    }

    /// True if the mapping whose newest binding is `head` has a binding with `remote`
    /// (address-dependent filtering).
    pub fn mapping_has_remote(&self, head: u32, remote: Ipv4Addr) -> bool {
        let mut i = head;
        while let Some(b) = self.bindings.get(i as usize) {
            if b.remote == remote {
                return true;
            }
            i = b.next;
        }
        false
    }

    /// Binding `i`.
    #[inline(always)]
    pub fn get(&self, i: u32) -> Option<&Binding> {
        self.bindings.get(i as usize).filter(|b| b.session != NIL)
    }

    /// Binding `i`, writable.
    #[inline(always)]
    pub fn get_mut(&mut self, i: u32) -> Option<&mut Binding> {
        self.bindings
            .get_mut(i as usize)
            .filter(|b| b.session != NIL)
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

    /// Creates a binding for `key` of the session in `slot` with a fresh pool port.
    pub fn create(
        &mut self,
        key: Key,
        (slot, session_id): (u32, SessionId),
        now: Instant,
    ) -> Result<u32, BindError> {
        if self.count >= self.capacity {
            return Err(BindError::TableFull);
        }
        let pi = proto_index(key.proto);
        // The subscriber's mapping, if it has one: its pool address and port again.
        let mh = self.mappings.hash(key.mapping_key());
        let head = if self.count == 0 {
            None
        } else {
            self.mappings
                .find(mh, |i| self.get(i).is_some_and(|b| key.same_mapping(b)))
        };
        let (addr, port) = match head.and_then(|h| self.get(h)) {
            Some(h) => (h.addr as usize, h.port),
            None => self.take_port(pi).ok_or(BindError::NoPort)?,
        };
        let b = Binding {
            session: slot,
            session_id,
            sub: key.sub,
            sub_port: key.sub_port,
            remote: key.remote,
            remote_port: key.remote_port,
            addr: addr as u16,
            port,
            proto: key.proto,
            state: FlowState::initial(key.proto),
            started: now,
            last_seen: now,
            up: (0, 0),
            down: (0, 0),
            next: head.unwrap_or(NIL),
        };
        let i = match self.free.pop() {
            Some(i) => {
                self.bindings[i as usize] = b;
                i
            }
            None => {
                self.bindings.push(b);
                (self.bindings.len() - 1) as u32
            }
        };
        // Cannot fail: the index has room for the table's capacity.
        let _ = self.up.insert(self.up.hash(key.hash_key()), i);
        if let Some(h) = head {
            self.mappings.remove(mh, h);
        }
        let _ = self.mappings.insert(mh, i);
        self.down[addr][pi][port as usize] = i;
        self.count += 1;
        Ok(i)
    }

    /// Removes binding `i`; its port goes back to the pool.
    pub fn remove(&mut self, i: u32) -> Option<Binding> {
        let b = *self.get(i)?;
        let key = Key {
            sub: b.sub,
            sub_port: b.sub_port,
            remote: b.remote,
            remote_port: b.remote_port,
            proto: b.proto,
        };
        self.up.remove(self.up.hash(key.hash_key()), i);
        let pi = proto_index(b.proto);
        let (a, p) = (b.addr as usize, b.port as usize);
        let head = self.down[a][pi][p];
        if head == i {
            let mh = self.mappings.hash(key.mapping_key());
            self.mappings.remove(mh, i);
            if b.next >= FREE {
                // The mapping's last binding: its port goes back.
                self.down[a][pi][p] = FREE | self.free_port[a][pi];
                self.free_port[a][pi] = p as u32;
            } else {
                self.down[a][pi][p] = b.next;
                let _ = self.mappings.insert(mh, b.next);
            }
        } else {
            let mut j = head;
            while let Some(o) = self.bindings.get(j as usize).map(|o| o.next) {
                if o == i {
                    self.bindings[j as usize].next = b.next;
                    break;
                }
                j = o;
            }
        }
        self.bindings[i as usize].session = NIL;
        self.free.push(i);
        self.count -= 1;
        Some(b)
    }

    /// The idle sweep's next `n` slots, resuming where the last call stopped: each live
    /// binding among them that has expired by `now` (under `timeouts`) is handed to `out`.
    /// The expiry is read here, with the slot, rather than by the caller afterwards.
    pub fn sweep_expired(
        &mut self,
        n: usize,
        timeouts: &Timeouts,
        now: Instant,
        out: &mut impl FnMut(u32),
    ) {
        let len = self.bindings.len() as u32;
        if len == 0 || self.count == 0 {
            return;
        }
        let mut at = self.sweep;
        for _ in 0..n.min(len as usize) {
            at += 1;
            if at >= len {
                at = 0;
            }
            let e = &self.bindings[at as usize];
            if e.session != NIL && e.expires(timeouts) <= now {
                out(at);
            }
        }
        self.sweep = at;
    }

    /// Every live binding (shutdown).
    pub fn live(&self) -> impl Iterator<Item = u32> + '_ {
        self.bindings
            .iter()
            .enumerate()
            .filter(|(_, b)| b.session != NIL)
            .map(|(i, _)| i as u32)
    }

    /// Bindings open.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when none are open.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(port: u16) -> Key {
        Key {
            sub: "2001:db8::11".parse().unwrap(),
            sub_port: port,
            remote: Ipv4Addr::new(192, 0, 2, 10),
            remote_port: 80,
            proto: protocol::TCP,
        }
    }

    #[test]
    fn the_prefix_embeds_and_synthesizes_the_last_32_bits() {
        let c = Nat64Config {
            on: true,
            pool: vec![Ipv4Addr::new(198, 51, 100, 64)],
            ..Nat64Config::default()
        };
        let a: Ipv6Addr = "64:ff9b::192.0.2.10".parse().unwrap();
        assert_eq!(c.embedded(a), Some(Ipv4Addr::new(192, 0, 2, 10)));
        assert_eq!(c.synthesize(Ipv4Addr::new(192, 0, 2, 10)), a);
        assert_eq!(c.embedded("64:ff9c::192.0.2.10".parse().unwrap()), None);
        assert_eq!(c.pool_index(Ipv4Addr::new(198, 51, 100, 64)), Some(0));
        let off = Nat64Config::default();
        assert_eq!(off.embedded(a), None);
    }

    #[test]
    fn ports_are_handed_out_lowest_first_and_found_both_ways() {
        let mut t = Nat64Table::new(4, 1, (2000, 2002));
        let a = t.create(key(40000), (0, 7), Instant::ZERO).unwrap();
        let b = t.create(key(40001), (0, 7), Instant::ZERO).unwrap();
        assert_eq!(t.get(a).unwrap().port, 2000);
        assert_eq!(t.get(b).unwrap().port, 2001);
        assert_eq!(t.find_up(&key(40001)), Some(b));
        let srv = (Ipv4Addr::new(192, 0, 2, 10), 80);
        assert_eq!(t.find_down(0, protocol::TCP, 2001, srv), Some(b));
        assert_eq!(t.find_down(0, protocol::UDP, 2001, srv), None);
        t.create(key(40002), (0, 7), Instant::ZERO).unwrap();
        assert_eq!(
            t.create(key(40003), (0, 7), Instant::ZERO),
            Err(BindError::NoPort)
        );
        t.remove(a).unwrap();
        assert_eq!(t.find_up(&key(40000)), None);
        assert_eq!(t.find_down(0, protocol::TCP, 2000, srv), None);
        let c = t.create(key(40004), (0, 7), Instant::ZERO).unwrap();
        assert_eq!(t.get(c).unwrap().port, 2000);
        assert_eq!(t.len(), 3);
    }

    #[test]
    fn a_subscriber_port_keeps_its_mapping_whatever_it_talks_to() {
        let mut t = Nat64Table::new(8, 1, (2000, 2003));
        let to = |port: u16, remote: [u8; 4], remote_port: u16| Key {
            remote: Ipv4Addr::from(remote),
            remote_port,
            ..key(port)
        };
        let a = t
            .create(to(40000, [192, 0, 2, 10], 80), (0, 7), Instant::ZERO)
            .unwrap();
        let b = t
            .create(to(40000, [192, 0, 2, 11], 80), (0, 7), Instant::ZERO)
            .unwrap();
        let c = t
            .create(to(40000, [192, 0, 2, 11], 81), (0, 7), Instant::ZERO)
            .unwrap();
        let d = t
            .create(to(40001, [192, 0, 2, 10], 80), (0, 7), Instant::ZERO)
            .unwrap();
        let port = |t: &Nat64Table, i| t.get(i).unwrap().port;
        assert_eq!(
            [port(&t, a), port(&t, b), port(&t, c), port(&t, d)],
            [2000, 2000, 2000, 2001]
        );
        let r = |x: [u8; 4], p| (Ipv4Addr::from(x), p);
        assert_eq!(
            t.find_down(0, protocol::TCP, 2000, r([192, 0, 2, 10], 80)),
            Some(a)
        );
        assert_eq!(
            t.find_down(0, protocol::TCP, 2000, r([192, 0, 2, 11], 80)),
            Some(b)
        );
        assert_eq!(
            t.find_down(0, protocol::TCP, 2000, r([192, 0, 2, 11], 81)),
            Some(c)
        );
        assert_eq!(
            t.find_down(0, protocol::TCP, 2000, r([192, 0, 2, 12], 80)),
            None
        );
        let head = t.mapping_down(0, protocol::TCP, 2000).unwrap();
        assert!(t.mapping_has_remote(head, Ipv4Addr::new(192, 0, 2, 11)));
        assert!(!t.mapping_has_remote(head, Ipv4Addr::new(192, 0, 2, 12)));
        // The middle one, then the newest, then the last: the port is held until then.
        t.remove(b).unwrap();
        assert_eq!(
            t.find_down(0, protocol::TCP, 2000, r([192, 0, 2, 11], 81)),
            Some(c)
        );
        assert_eq!(
            t.find_down(0, protocol::TCP, 2000, r([192, 0, 2, 10], 80)),
            Some(a)
        );
        t.remove(c).unwrap();
        assert_eq!(
            t.find_down(0, protocol::TCP, 2000, r([192, 0, 2, 10], 80)),
            Some(a)
        );
        let e = t
            .create(to(40000, [192, 0, 2, 13], 80), (0, 7), Instant::ZERO)
            .unwrap();
        assert_eq!(port(&t, e), 2000);
        t.remove(a).unwrap();
        t.remove(e).unwrap();
        assert_eq!(t.mapping_down(0, protocol::TCP, 2000), None);
        // Port 2000 was freed last: the next new mapping takes it.
        let f = t
            .create(to(40002, [192, 0, 2, 10], 80), (0, 7), Instant::ZERO)
            .unwrap();
        assert_eq!(port(&t, f), 2000);
        assert_eq!(t.len(), 2);
    }
}
