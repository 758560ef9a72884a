//! Per-login stickiness (NAT-3, `login` session type): the server a session's flows to
//! a service go to, chosen by the first flow and kept until the session ends.
//!
//! Keyed by (session slot, service). Entries live in a slab sized at start, found
//! through a fixed [`HashIndex`]: one entry per session fits (a session that uses
//! several `login` services takes one entry per service). Nothing grows on the packet
//! that makes the first choice; when every entry is taken, the choice is made but not
//! remembered, and counted (`sticky_full`), so the next flow of that login is balanced
//! again instead of the table growing.

#![deny(unsafe_code)]

use super::index::HashIndex;

/// The end of the free list.
const NIL: u32 = u32::MAX;

#[derive(Clone, Copy, Debug)]
struct Entry {
    /// `slot << 16 | service`; the next free entry's index while free.
    key: u64,
    server: u16,
    used: bool,
}

/// The table.
#[derive(Debug)]
pub struct StickyTable {
    index: HashIndex,
    entries: Box<[Entry]>,
    free_head: u32,
    len: usize,
}

/// Why a choice was not remembered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StickyFull;

#[inline(always)]
fn key(slot: u32, service: u16) -> u64 {
    (slot as u64) << 16 | service as u64
}

impl StickyTable {
    /// A table for up to `capacity` (session, service) choices.
    pub fn new(capacity: usize) -> StickyTable {
        let capacity = capacity.clamp(1, NIL as usize - 1);
        let entries = (0..capacity)
            .map(|i| Entry {
                key: if i + 1 < capacity {
                    i as u64 + 1
                } else {
                    NIL as u64
                },
                server: 0,
                used: false,
            })
            .collect();
        StickyTable {
            index: HashIndex::new(capacity),
            entries,
            free_head: 0,
            len: 0,
        }
    }

    fn find(&self, k: u64) -> Option<u32> {
        if self.len == 0 {
            return None;
        }
        self.index.find(self.index.hash(k), |i| {
            self.entries
                .get(i as usize)
                .is_some_and(|e| e.used && e.key == k)
        })
    }

    /// The server chosen for `service` by the session in `slot`.
    #[inline]
    pub fn get(&self, slot: u32, service: u16) -> Option<u16> {
        let i = self.find(key(slot, service))?;
        self.entries.get(i as usize).map(|e| e.server)
    }

    /// Remembers `server` for `service` of the session in `slot` (replacing an earlier
    /// choice). `Err` when the table is full: nothing is remembered.
    pub fn set(&mut self, slot: u32, service: u16, server: u16) -> Result<(), StickyFull> {
        let k = key(slot, service);
        if let Some(e) = self.find(k).and_then(|i| self.entries.get_mut(i as usize)) {
            e.server = server;
            return Ok(());
        }
        let i = self.free_head;
        let Some(e) = self.entries.get_mut(i as usize) else {
            return Err(StickyFull);
        };
        let next = e.key as u32;
        if !self.index.insert(self.index.hash(k), i) {
            return Err(StickyFull);
        }
        *e = Entry {
            key: k,
            server,
            used: true,
        };
        self.free_head = next;
        self.len += 1;
        Ok(())
    }

    /// Forgets the choice for `service` of the session in `slot`.
    pub fn remove(&mut self, slot: u32, service: u16) {
        let k = key(slot, service);
        let Some(i) = self.find(k) else {
            return;
        };
        self.index.remove(self.index.hash(k), i);
        if let Some(e) = self.entries.get_mut(i as usize) {
            *e = Entry {
                key: self.free_head as u64,
                server: 0,
                used: false,
            };
            self.free_head = i;
            self.len -= 1;
        }
    }

    /// Choices remembered.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when none is.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Choices it can remember.
    pub fn capacity(&self) -> usize {
        self.entries.len()
    }

    /// Bytes a table for `capacity` choices allocates.
    pub fn bytes_for(capacity: usize) -> usize {
        let capacity = capacity.clamp(1, NIL as usize - 1);
        HashIndex::bytes_for(capacity)
            .saturating_add(capacity.saturating_mul(std::mem::size_of::<Entry>()))
    }

    /// Bytes allocated.
    pub fn memory_bytes(&self) -> usize {
        self.index.memory_bytes() + std::mem::size_of_val(&*self.entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_replaces_forgets_and_refuses_when_full() {
        let mut t = StickyTable::new(3);
        assert_eq!(t.get(1, 2), None);
        assert_eq!(t.set(1, 2, 7), Ok(()));
        assert_eq!(t.set(1, 3, 8), Ok(()));
        assert_eq!(t.set(9, 2, 1), Ok(()));
        assert_eq!(
            (t.get(1, 2), t.get(1, 3), t.get(9, 2)),
            (Some(7), Some(8), Some(1))
        );
        // Full: a new choice is refused, a changed one is not.
        assert_eq!(t.set(4, 4, 4), Err(StickyFull));
        assert_eq!(t.get(4, 4), None);
        assert_eq!(t.set(1, 2, 5), Ok(()));
        assert_eq!(t.get(1, 2), Some(5));
        assert_eq!(t.len(), 3);
        // A freed entry is reused.
        t.remove(1, 3);
        t.remove(1, 3);
        assert_eq!((t.get(1, 3), t.len()), (None, 2));
        assert_eq!(t.set(4, 4, 4), Ok(()));
        assert_eq!(t.get(4, 4), Some(4));
        assert_eq!(t.capacity(), 3);
    }

    #[test]
    fn never_grows() {
        let mut t = StickyTable::new(1000);
        let bytes = t.memory_bytes();
        for round in 0..5u32 {
            for s in 0..1200u32 {
                let _ = t.set(s + round, (s % 3) as u16, s as u16);
            }
            assert_eq!(t.len(), 1000);
            for s in 0..1200u32 {
                t.remove(s + round, (s % 3) as u16);
            }
            assert!(t.is_empty());
        }
        assert_eq!(t.memory_bytes(), bytes);
        assert_eq!(StickyTable::bytes_for(1000), bytes);
    }
}
