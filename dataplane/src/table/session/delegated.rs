//! Delegated IPv6 prefixes (DHCPv6 IA_PD, Delegated-IPv6-Prefix; V6-1): a session may
//! hold one prefix of /32 to /64 beside its /64, routed to it downlink and accepted as a
//! source uplink. Made at the first one delegated, so that a gateway without prefix
//! delegation pays nothing for it.
//!
//! A lookup masks the /64 it has (upper 64 bits of an address) to each prefix length
//! in use, longest first, and finds the masked value in one index: one probe when every
//! delegated prefix has the same length, as from one pool.

use crate::table::index::HashIndex;

/// A delegated prefix: its upper 64 bits (the bits past its length zero) and length.
pub type Delegated = (u64, u8);

/// The shortest delegated prefix the table takes.
pub const MIN_LEN: u8 = 32;

/// The upper 64 bits of `prefix64` masked to `len` (32 to 64).
#[inline(always)]
fn mask(prefix64: u64, len: u8) -> u64 {
    prefix64 & (u64::MAX << (64 - u32::from(len)))
}

#[derive(Debug)]
pub(super) struct DelegatedPrefixes {
    by_slot: Vec<Delegated>,
    index: HashIndex,
    /// How many prefixes of each length (index `len - MIN_LEN`) are held.
    lengths: [u32; 33],
    /// The lengths held, longest first.
    in_use: Vec<u8>,
}

impl DelegatedPrefixes {
    pub(super) fn new(capacity: usize) -> DelegatedPrefixes {
        DelegatedPrefixes {
            by_slot: vec![(0, 0); capacity],
            index: HashIndex::new(capacity),
            lengths: [0; 33],
            in_use: Vec::with_capacity(33),
        }
    }

    pub(super) fn memory_bytes(&self) -> usize {
        self.by_slot.capacity() * std::mem::size_of::<Delegated>()
            + self.index.memory_bytes()
            + self.in_use.capacity()
    }

    fn recount(&mut self) {
        self.in_use.clear();
        for len in (MIN_LEN..=64).rev() {
            if self.lengths[usize::from(len - MIN_LEN)] > 0 {
                self.in_use.push(len);
            }
        }
    }

    /// The prefix of `slot`.
    pub(super) fn of(&self, slot: u32) -> Option<Delegated> {
        self.by_slot
            .get(slot as usize)
            .copied()
            .filter(|d| d.1 != 0)
    }

    /// The slot whose prefix holds the /64 `prefix64`.
    #[inline]
    pub(super) fn find(&self, prefix64: u64) -> Option<u32> {
        for &len in &self.in_use {
            let key = mask(prefix64, len);
            let found = self.index.find(self.index.hash(key), |slot| {
                self.by_slot.get(slot as usize) == Some(&(key, len))
            });
            if found.is_some() {
                return found;
            }
        }
        None
    }

    /// Takes `slot`'s prefix away.
    pub(super) fn clear(&mut self, slot: u32) {
        let Some(e) = self.by_slot.get_mut(slot as usize) else {
            return;
        };
        let (p, len) = std::mem::take(e);
        if len != 0 {
            let h = self.index.hash(p);
            self.index.remove(h, slot);
            self.lengths[usize::from(len - MIN_LEN)] -= 1;
            self.recount();
        }
    }

    /// Gives `slot` the prefix `d` (already checked: normalised, free, length in range).
    pub(super) fn set(&mut self, slot: u32, d: Delegated) -> bool {
        self.clear(slot);
        let h = self.index.hash(d.0);
        if !self.index.insert(h, slot) {
            return false;
        }
        if let Some(e) = self.by_slot.get_mut(slot as usize) {
            *e = d;
        }
        self.lengths[usize::from(d.1 - MIN_LEN)] += 1;
        self.recount();
        true
    }

    /// Whether `d` overlaps a prefix another slot holds.
    pub(super) fn overlaps(&self, slot: u32, d: Delegated) -> bool {
        // A shorter or equal one held holds `d`'s first /64; a longer one lies inside
        // `d` and is found by scanning (rare: only with mixed lengths).
        if self.find(d.0).is_some_and(|s| s != slot) {
            return true;
        }
        self.in_use.iter().any(|&len| len > d.1)
            && self
                .by_slot
                .iter()
                .enumerate()
                .any(|(s, e)| s as u32 != slot && e.1 > d.1 && mask(e.0, d.1) == d.0)
    }
}

/// `d` normalised (bits past its length cleared), or `None` for a length out of
/// [`MIN_LEN`]..=64.
pub fn normalise(d: Delegated) -> Option<Delegated> {
    (MIN_LEN..=64).contains(&d.1).then(|| (mask(d.0, d.1), d.1))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lookups mask to each length in use, longest first; overlaps are found both ways
    /// (a shorter prefix holding the new one, a longer one inside it); clearing a slot
    /// forgets its length.
    #[test]
    fn lookups_and_overlaps_with_mixed_lengths() {
        let mut t = DelegatedPrefixes::new(8);
        let p56 = normalise((0x2001_0db8_0200_01ff, 56)).unwrap();
        assert_eq!(p56, (0x2001_0db8_0200_0100, 56));
        assert!(t.set(1, p56));
        // Every /64 of the /56, and none outside it.
        assert_eq!(t.find(0x2001_0db8_0200_0100), Some(1));
        assert_eq!(t.find(0x2001_0db8_0200_01ff), Some(1));
        assert_eq!(t.find(0x2001_0db8_0200_0200), None);
        // A /60 inside it overlaps (found by the lookup); a /48 around it overlaps (found
        // by the scan); a /56 beside it does not.
        assert!(t.overlaps(2, (0x2001_0db8_0200_0140, 60)));
        assert!(t.overlaps(2, (0x2001_0db8_0200_0000, 48)));
        assert!(!t.overlaps(2, (0x2001_0db8_0200_0200, 56)));
        assert!(!t.overlaps(1, p56), "its own prefix again is no overlap");
        // A /64 elsewhere and a /48 elsewhere: the longest in use wins.
        assert!(t.set(2, (0x2001_0db8_0300_0000, 48)));
        assert!(t.set(3, (0x2001_0db8_0300_0007, 64)));
        assert_eq!(t.in_use, vec![64, 56, 48]);
        assert_eq!(t.find(0x2001_0db8_0300_0007), Some(3));
        assert_eq!(t.find(0x2001_0db8_0300_0008), Some(2));
        t.clear(3);
        assert_eq!(t.in_use, vec![56, 48]);
        assert_eq!(t.find(0x2001_0db8_0300_0007), Some(2));
        assert_eq!(t.of(3), None);
        assert_eq!(t.of(1), Some(p56));
        // Lengths out of range are refused.
        assert_eq!(normalise((0x2001_0db8_0000_0000, 31)), None);
        assert_eq!(normalise((0x2001_0db8_0000_0000, 65)), None);
        assert_eq!(
            normalise((0x2001_0db8_ffff_ffff, 32)),
            Some((0x2001_0db8_0000_0000, 32))
        );
    }
}
