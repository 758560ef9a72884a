//! A worker's L2TP sessions (TUN-1 fast-path half): what to decapsulate and, at a LAC,
//! which session each switched PPPoE call goes into.
//!
//! The control plane assigns local session ids itself, densely and unique across all
//! tunnels, so decapsulation finds a session by indexing an array with the id the peer
//! put in the packet (then checks the tunnel id and the peer's address). A switched
//! PPPoE session finds its L2TP session by its PPPoE session id, client MAC and VLANs.
//! Installing a session and switching a call into it are separate commands: a session
//! moved to another tunnel (make-before-break, TUN-3) is installed first, so both the old
//! and the new one decapsulate, then one [`crate::Command::L2tpSteer`] switches the leg
//! between two bursts, then the old session is removed. Everything is sized at start:
//! nothing here allocates per packet or per command.
//!
//! The index of steered subscribers by address (`steered_session`, `steered_to`) is the
//! removed IP mode's: the worker no longer reads it; only the L2TP engine's simulation
//! does, until its tests move to switched calls.

#![deny(unsafe_code)]

use std::net::Ipv4Addr;

use crate::table::index::HashIndex;
use crate::table::session::{VlanKey, Vlans};
use crate::types::MacAddr;
use crate::wire::l2tp::Encap;

/// A LAC's PPPoE side of a switched session (ACC-6): the PPPoE session whose PPP frames
/// the fast path switches into the L2TP session and back, without terminating PPP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PppoeLeg {
    /// The PPPoE session id.
    pub session: u16,
    /// The client's MAC address.
    pub client: MacAddr,
    /// The access line's VLAN tags (as the client sends them).
    pub vlans: Vlans,
    /// ACC-5: TCP MSS of SYNs both ways clamped to this (0: off).
    pub mss_clamp: u16,
}

/// Which end of the tunnel the gateway is for a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TunnelRole {
    /// Access concentrator: the subscriber is on this side; its uplink (by source
    /// address, from the access port) is encapsulated, the downlink decapsulated.
    Lac,
    /// Network server: the subscriber is behind the tunnel; traffic to it (by
    /// destination address) is encapsulated, its uplink decapsulated.
    Lns,
}

/// An L2TP session as the control plane installs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct L2tpSessionSpec {
    /// Our tunnel id (what the peer puts in data messages to us).
    pub tunnel: u16,
    /// Our session id: indexes the worker's table (1 to its capacity).
    pub session: u16,
    /// The peer's tunnel id.
    pub peer_tunnel: u16,
    /// The peer's session id.
    pub peer_session: u16,
    /// Our address, the source of the encapsulation.
    pub local: Ipv4Addr,
    /// The peer's address.
    pub peer: Ipv4Addr,
    /// The peer's UDP port.
    pub peer_port: u16,
    /// The subscriber whose traffic the session carries.
    pub subscriber: Ipv4Addr,
    /// Which end we are.
    pub role: TunnelRole,
    /// LAC: the PPPoE session switched into this one (then `subscriber` is unspecified:
    /// PPP, and so the address, is the LNS's).
    pub pppoe: Option<PppoeLeg>,
}

/// Packets and bytes (IPv4 total length, or IPv6 header and payload, of the carried
/// packet) through one session.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct L2tpCounters {
    /// Packets encapsulated.
    pub encap_packets: u64,
    /// Bytes encapsulated.
    pub encap_bytes: u64,
    /// Packets decapsulated.
    pub decap_packets: u64,
    /// Bytes decapsulated.
    pub decap_bytes: u64,
}

/// One installed session.
#[derive(Clone, Debug)]
pub struct L2tpEntry {
    /// What was installed.
    pub spec: L2tpSessionSpec,
    /// The encapsulation toward the peer.
    pub encap: Encap,
    /// Its counters.
    pub counters: L2tpCounters,
}

/// Why an L2TP command could not be carried out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum L2tpError {
    /// The session id is 0 or beyond the table's capacity.
    OutOfRange,
    /// No session has this id (steer).
    NoSession,
}

/// A worker's L2TP sessions.
#[derive(Debug)]
pub struct L2tpTable {
    entries: Vec<Option<L2tpEntry>>,
    /// Steered subscribers' sessions by subscriber address: only the steered session of
    /// each, confirmed against the entry's subscriber (the fixed index of the session
    /// and flow tables; nothing allocates after start).
    by_subscriber: HashIndex,
    /// Switched sessions by PPPoE session id (confirmed against the entry's leg).
    by_pppoe: HashIndex,
    switched: u32,
    steered: [u32; 2],
    len: usize,
    /// Longest IPv4 packet (outer) the encapsulation may produce.
    pub mtu: u16,
}

impl L2tpTable {
    /// A table for session ids 1 to `capacity` (0: L2TP off), producing packets of at
    /// most `mtu` bytes.
    pub fn new(capacity: u16, mtu: u16) -> L2tpTable {
        let n = capacity as usize;
        L2tpTable {
            entries: if n == 0 {
                Vec::new()
            } else {
                vec![None; n + 1]
            },
            by_subscriber: HashIndex::new(n + 1),
            by_pppoe: HashIndex::new(n + 1),
            switched: 0,
            steered: [0; 2],
            len: 0,
            mtu,
        }
    }

    /// True when L2TP is on (the table has room for sessions).
    #[inline(always)]
    pub fn is_on(&self) -> bool {
        !self.entries.is_empty()
    }

    /// Sessions installed.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no session is installed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The session with our id `session`.
    #[inline(always)]
    pub fn get(&self, session: u16) -> Option<&L2tpEntry> {
        self.entries.get(session as usize)?.as_ref()
    }

    /// The session with our id `session`, writable.
    #[inline(always)]
    pub fn get_mut(&mut self, session: u16) -> Option<&mut L2tpEntry> {
        self.entries.get_mut(session as usize)?.as_mut()
    }

    /// True when a PPPoE session is switched into an L2TP session (LAC).
    #[inline(always)]
    pub fn switching(&self) -> bool {
        self.switched > 0
    }

    /// The L2TP session PPPoE session `pppoe` of `client` on line `vlans` is switched
    /// into, if any.
    #[inline]
    pub fn switched_session(&self, pppoe: u16, client: MacAddr, vlans: VlanKey) -> Option<u16> {
        let h = self.by_pppoe.hash(pppoe as u64);
        let s = self.by_pppoe.find(h, |s| {
            self.get(s as u16)
                .and_then(|e| e.spec.pppoe)
                .is_some_and(|l| l.session == pppoe && l.client == client && l.vlans.key() == vlans)
        })?;
        Some(s as u16)
    }

    /// The session a packet from `src` (arriving from the access side when
    /// `from_access`) or to `dst` is steered into, if any.
    #[inline]
    pub fn steered_session(&self, from_access: bool, src: Ipv4Addr, dst: Ipv4Addr) -> Option<u16> {
        if from_access
            && self.steered[TunnelRole::Lac as usize] > 0
            && let Some(s) = self.steered_to(src, TunnelRole::Lac)
        {
            return Some(s);
        }
        if self.steered[TunnelRole::Lns as usize] > 0 {
            return self.steered_to(dst, TunnelRole::Lns);
        }
        None
    }

    /// The session `subscriber` is steered into, if it has role `role`.
    #[inline]
    pub fn steered_to(&self, subscriber: Ipv4Addr, role: TunnelRole) -> Option<u16> {
        let h = self.by_subscriber.hash(u32::from(subscriber) as u64);
        let s = self.by_subscriber.find(h, |s| {
            self.get(s as u16)
                .is_some_and(|e| e.spec.subscriber == subscriber)
        })? as u16;
        self.get(s).filter(|e| e.spec.role == role).map(|_| s)
    }

    /// Installs `spec`, replacing the session with the same id (a subscriber steered to
    /// the replaced session stays steered only if it is the same subscriber).
    pub fn install(&mut self, spec: &L2tpSessionSpec) -> Result<(), L2tpError> {
        let i = spec.session as usize;
        if i == 0 || i >= self.entries.len() {
            return Err(L2tpError::OutOfRange);
        }
        if let Some(old) = self.entries[i].take() {
            self.len -= 1;
            self.unswitch(&old.spec);
            if old.spec.subscriber != spec.subscriber || old.spec.role != spec.role {
                self.unsteer(old.spec.subscriber, spec.session, old.spec.role);
            }
        }
        self.entries[i] = Some(L2tpEntry {
            spec: *spec,
            encap: Encap::new(
                spec.local,
                spec.peer,
                spec.peer_port,
                spec.peer_tunnel,
                spec.peer_session,
            ),
            counters: L2tpCounters::default(),
        });
        self.len += 1;
        // The PPPoE leg switches into this session unless another session holds it: a
        // switched call moving to another tunnel (TUN-3) is installed first, so both
        // decapsulate, and [`Self::steer`] then switches the leg between two bursts.
        if let Some(l) = spec.pppoe
            && self
                .switched_session(l.session, l.client, l.vlans.key())
                .is_none()
        {
            let h = self.by_pppoe.hash(l.session as u64);
            // Room for every session id is reserved at start, so this cannot fail.
            let _ = self.by_pppoe.insert(h, spec.session as u32);
            self.switched += 1;
        }
        Ok(())
    }

    /// Steers the session's subscriber into it: from now on its packets take this
    /// session (the atomic map switch of a move).
    /// For a LAC's switched session (a PPPoE leg, `subscriber` unspecified) it is the
    /// leg that is switched: from now on the PPPoE session's frames take this session.
    pub fn steer(&mut self, subscriber: Ipv4Addr, session: u16) -> Result<(), L2tpError> {
        let (role, leg) = match self.get(session) {
            Some(e) if e.spec.subscriber == subscriber => (e.spec.role, e.spec.pppoe),
            _ => return Err(L2tpError::NoSession),
        };
        if let Some(l) = leg {
            let h = self.by_pppoe.hash(l.session as u64);
            if let Some(prev) = self.switched_session(l.session, l.client, l.vlans.key()) {
                self.by_pppoe.remove(h, prev as u32);
                self.switched -= 1;
            }
            // Room for every session id is reserved at start, so this cannot fail.
            let _ = self.by_pppoe.insert(h, session as u32);
            self.switched += 1;
            return Ok(());
        }
        let h = self.by_subscriber.hash(u32::from(subscriber) as u64);
        let prev = self.by_subscriber.find(h, |s| {
            self.get(s as u16)
                .is_some_and(|e| e.spec.subscriber == subscriber)
        });
        if let Some(prev) = prev {
            self.by_subscriber.remove(h, prev);
            if let Some(p) = self.get(prev as u16).map(|e| e.spec.role) {
                self.steered[p as usize] -= 1;
            }
        }
        // Room for every session id is reserved at start, so this cannot fail.
        let _ = self.by_subscriber.insert(h, session as u32);
        self.steered[role as usize] += 1;
        Ok(())
    }

    /// Removes session `session`; its subscriber stops being tunnelled if it was steered
    /// here. Returns the final counters.
    pub fn remove(&mut self, session: u16) -> Option<L2tpEntry> {
        let e = self.entries.get_mut(session as usize)?.take()?;
        self.len -= 1;
        self.unswitch(&e.spec);
        self.unsteer(e.spec.subscriber, session, e.spec.role);
        Some(e)
    }

    /// Forgets the PPPoE leg of a session being replaced or removed.
    fn unswitch(&mut self, spec: &L2tpSessionSpec) {
        if let Some(l) = spec.pppoe {
            let h = self.by_pppoe.hash(l.session as u64);
            if self.by_pppoe.remove(h, spec.session as u32) {
                self.switched -= 1;
            }
        }
    }

    /// Stops steering `subscriber` if `session` (whose entry may be gone already) is its
    /// steered session: the index holds at most one session per subscriber, and a
    /// session only under its own subscriber, so the session id alone confirms it.
    fn unsteer(&mut self, subscriber: Ipv4Addr, session: u16, role: TunnelRole) {
        let h = self.by_subscriber.hash(u32::from(subscriber) as u64);
        if self.by_subscriber.remove(h, session as u32) {
            self.steered[role as usize] -= 1;
        }
    }

    /// Installed sessions with id `from` or above, in id order.
    pub fn sessions_from(&self, from: u32) -> impl Iterator<Item = &L2tpEntry> {
        self.entries
            .iter()
            .skip(from as usize)
            .filter_map(Option::as_ref)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(session: u16, sub: [u8; 4], role: TunnelRole) -> L2tpSessionSpec {
        L2tpSessionSpec {
            tunnel: 1,
            session,
            peer_tunnel: 7,
            peer_session: 70 + session,
            local: Ipv4Addr::new(172, 16, 0, 1),
            peer: Ipv4Addr::new(172, 16, 0, 2),
            peer_port: 1701,
            subscriber: Ipv4Addr::from(sub),
            role,
            pppoe: None,
        }
    }

    #[test]
    fn install_steer_move_remove() {
        let sub = Ipv4Addr::new(10, 10, 0, 11);
        let mut t = L2tpTable::new(8, 1500);
        assert!(t.is_on());
        assert_eq!(
            t.install(&spec(9, sub.octets(), TunnelRole::Lac)),
            Err(L2tpError::OutOfRange)
        );
        assert_eq!(
            t.install(&spec(0, sub.octets(), TunnelRole::Lac)),
            Err(L2tpError::OutOfRange)
        );
        t.install(&spec(1, sub.octets(), TunnelRole::Lac)).unwrap();
        assert_eq!(
            t.steered_session(true, sub, sub),
            None,
            "installed, not steered"
        );
        t.steer(sub, 1).unwrap();
        assert_eq!(t.steered_session(true, sub, sub), Some(1));
        assert_eq!(
            t.steered_session(false, sub, sub),
            None,
            "LAC matches the access side only"
        );
        // A move: the new session is installed, the subscriber switched, the old removed.
        t.install(&spec(2, sub.octets(), TunnelRole::Lac)).unwrap();
        assert_eq!(t.steered_session(true, sub, sub), Some(1));
        t.steer(sub, 2).unwrap();
        assert_eq!(t.steered_session(true, sub, sub), Some(2));
        assert!(t.remove(1).is_some());
        assert_eq!(
            t.steered_session(true, sub, sub),
            Some(2),
            "removing the old keeps the new"
        );
        assert_eq!(t.len(), 1);
        assert!(t.remove(2).is_some());
        assert_eq!(t.steered_session(true, sub, sub), None);
        assert_eq!(t.steered, [0, 0]);
        assert_eq!(t.steer(sub, 2), Err(L2tpError::NoSession));
    }

    #[test]
    fn lns_matches_destination_and_replacing_unsteers() {
        let sub = Ipv4Addr::new(10, 10, 0, 12);
        let other = Ipv4Addr::new(10, 10, 0, 13);
        let mut t = L2tpTable::new(4, 1500);
        t.install(&spec(3, sub.octets(), TunnelRole::Lns)).unwrap();
        t.steer(sub, 3).unwrap();
        assert_eq!(t.steered_session(false, other, sub), Some(3));
        assert_eq!(t.steered_session(true, sub, other), None);
        t.install(&spec(3, other.octets(), TunnelRole::Lns))
            .unwrap();
        assert_eq!(t.steered_session(false, other, sub), None);
        assert_eq!(t.steered, [0, 0]);
        assert!(!L2tpTable::new(0, 1500).is_on());
    }
}
