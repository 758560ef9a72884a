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
//! The removed IP mode's steering of subscribers by address is gone.

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
    /// No session has this id and subscriber, or it carries no PPPoE leg to switch
    /// (steer).
    NoSession,
}

/// A worker's L2TP sessions.
#[derive(Debug)]
pub struct L2tpTable {
    entries: Vec<Option<L2tpEntry>>,
    /// Switched sessions by PPPoE session id, confirmed against the entry's leg (the
    /// fixed index of the session and flow tables; nothing allocates after start).
    by_pppoe: HashIndex,
    switched: u32,
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
            by_pppoe: HashIndex::new(n + 1),
            switched: 0,
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

    /// Installs `spec`, replacing the session with the same id.
    pub fn install(&mut self, spec: &L2tpSessionSpec) -> Result<(), L2tpError> {
        let i = spec.session as usize;
        if i == 0 || i >= self.entries.len() {
            return Err(L2tpError::OutOfRange);
        }
        if let Some(old) = self.entries[i].take() {
            self.len -= 1;
            self.unswitch(&old.spec);
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

    /// Switches the PPPoE leg of LAC session `session` (of `subscriber`, unspecified for
    /// a switched call) into it: from now on the PPPoE session's frames take this session
    /// (the atomic map switch of a move, TUN-3). A session without a leg has nothing to
    /// switch: the removed IP mode's steering by subscriber address is gone.
    pub fn steer(&mut self, subscriber: Ipv4Addr, session: u16) -> Result<(), L2tpError> {
        let Some(l) = self
            .get(session)
            .filter(|e| e.spec.subscriber == subscriber)
            .and_then(|e| e.spec.pppoe)
        else {
            return Err(L2tpError::NoSession);
        };
        let h = self.by_pppoe.hash(l.session as u64);
        if let Some(prev) = self.switched_session(l.session, l.client, l.vlans.key()) {
            self.by_pppoe.remove(h, prev as u32);
            self.switched -= 1;
        }
        // Room for every session id is reserved at start, so this cannot fail.
        let _ = self.by_pppoe.insert(h, session as u32);
        self.switched += 1;
        Ok(())
    }

    /// Removes session `session` (its PPPoE leg stops being switched if it was switched
    /// into it). Returns the final counters.
    pub fn remove(&mut self, session: u16) -> Option<L2tpEntry> {
        let e = self.entries.get_mut(session as usize)?.take()?;
        self.len -= 1;
        self.unswitch(&e.spec);
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

    fn leg(session: u16) -> PppoeLeg {
        PppoeLeg {
            session,
            client: MacAddr([2, 0, 0, 0, 0, 1]),
            vlans: Vlans::default(),
            mss_clamp: 0,
        }
    }

    #[test]
    fn install_switch_move_remove() {
        let mut t = L2tpTable::new(8, 1500);
        assert!(t.is_on());
        assert!(!L2tpTable::new(0, 1500).is_on());
        let any = Ipv4Addr::UNSPECIFIED;
        for bad in [0, 9] {
            let s = spec(bad, [0; 4], TunnelRole::Lac);
            assert_eq!(t.install(&s), Err(L2tpError::OutOfRange));
        }
        let switched =
            |t: &L2tpTable| t.switched_session(0x2a, leg(0x2a).client, Default::default());
        let with_leg = |session| L2tpSessionSpec {
            pppoe: Some(leg(0x2a)),
            ..spec(session, [0; 4], TunnelRole::Lac)
        };
        t.install(&with_leg(1)).unwrap();
        assert_eq!(switched(&t), Some(1), "the first session takes the leg");
        // A move: the new session is installed (the leg stays), switched, the old removed.
        t.install(&with_leg(2)).unwrap();
        assert_eq!(switched(&t), Some(1));
        t.steer(any, 2).unwrap();
        assert_eq!(switched(&t), Some(2));
        assert!(t.remove(1).is_some());
        assert_eq!(switched(&t), Some(2), "removing the old keeps the new");
        assert_eq!((t.len(), t.switched), (1, 1));
        // Without a leg (the removed IP mode), or another subscriber: nothing to switch.
        let sub = Ipv4Addr::new(10, 10, 0, 11);
        t.install(&spec(3, sub.octets(), TunnelRole::Lac)).unwrap();
        assert_eq!(t.steer(sub, 3), Err(L2tpError::NoSession));
        assert_eq!(t.steer(sub, 2), Err(L2tpError::NoSession));
        assert!(t.remove(2).is_some());
        assert_eq!((switched(&t), t.switched, t.len()), (None, 0, 1));
        assert_eq!(t.steer(any, 2), Err(L2tpError::NoSession));
    }
}
