//! A fixed-size hash index from a key to a `u32` slab index, for the per-packet lookups
//! of sessions and flows (VPP bihash / DPDK rte_hash in spirit, simpler).
//!
//! The index stores no keys: an entry is the slab index packed with a few bits of the
//! key's hash (the tag), and a lookup confirms a candidate by comparing the key with the
//! slab entry itself, which the caller reads next anyway. That keeps an entry at four
//! bytes. Entries live in 64-byte buckets of 15, one cache line each, so a lookup usually
//! reads one line of index; a bucket that filled up spills into the next one and counts
//! how many of its entries passed by, so a miss stops at the first bucket nothing passed.
//!
//! Everything is sized at start for a given number of entries at a load of 7/8 at most;
//! nothing allocates, rehashes or moves afterwards. The hash's home bucket is known
//! before the bucket is read, so a burst can prefetch every packet's bucket first and
//! look up after ([`HashIndex::prefetch`]).

use std::hash::{BuildHasher, Hasher};

use crate::cpu;

const SLOTS: usize = 15;
const EMPTY: u32 = u32::MAX;

/// Fifteen entries, then the count of entries whose home is this bucket or an earlier
/// one that live further on (word [`PASSED`]).
#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
struct Bucket {
    w: [u32; SLOTS + 1],
}

const PASSED: usize = SLOTS;

const EMPTY_BUCKET: Bucket = Bucket {
    w: {
        let mut w = [EMPTY; SLOTS + 1];
        w[PASSED] = 0;
        w
    },
};

impl Bucket {
    #[cfg(test)]
    fn entries(&self) -> &[u32] {
        &self.w[..SLOTS]
    }

    #[inline(always)]
    fn entries_mut(&mut self) -> &mut [u32] {
        &mut self.w[..SLOTS]
    }

    #[inline(always)]
    fn passed(&self) -> u32 {
        self.w[PASSED]
    }

    /// A bit per entry whose bits under `and` equal `want`.
    #[inline(always)]
    fn matching(&self, and: u32, want: u32) -> u32 {
        let m = cpu::match16(&self.w, and, want);
        m & ((1 << SLOTS) - 1)
    }
}

/// A hash of a key as the index uses it: the home bucket comes from the high half, the
/// tag from the low half.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hash(u64);

/// The index.
#[derive(Debug)]
pub struct HashIndex {
    buckets: Box<[Bucket]>,
    /// Bits of an entry that hold the value; the rest hold the tag.
    value_bits: u32,
    value_mask: u32,
    capacity: usize,
    len: usize,
    seed: u64,
}

impl HashIndex {
    /// An index for up to `capacity` values, each below `capacity` (slab indexes).
    pub fn new(capacity: usize) -> HashIndex {
        // Values up to `capacity - 1`; the all-ones value is reserved for empty entries.
        let value_bits = (usize::BITS - capacity.leading_zeros()).clamp(1, 32);
        let buckets = Self::buckets_for(capacity);
        HashIndex {
            buckets: vec![EMPTY_BUCKET; buckets].into_boxed_slice(),
            value_bits,
            value_mask: if value_bits == 32 {
                u32::MAX
            } else {
                (1 << value_bits) - 1
            },
            capacity,
            len: 0,
            seed: std::collections::hash_map::RandomState::new()
                .build_hasher()
                .finish(),
        }
    }

    /// The hash of `key`.
    #[inline(always)]
    pub fn hash(&self, key: u64) -> Hash {
        let mut x = key ^ self.seed;
        x = (x ^ (x >> 32)).wrapping_mul(0xd6e8_feb8_6659_fd93);
        x = (x ^ (x >> 32)).wrapping_mul(0xd6e8_feb8_6659_fd93);
        Hash(x ^ (x >> 32))
    }

    #[inline(always)]
    fn home(&self, h: Hash) -> usize {
        // Multiply-shift range reduction: any bucket count, no division.
        (((h.0 >> 32) * self.buckets.len() as u64) >> 32) as usize
    }

    /// The tag of `h` in place in an entry (the value bits zero). Never all ones, so
    /// that an empty entry never matches.
    #[inline(always)]
    fn tag(&self, h: Hash) -> u32 {
        let t = (h.0 as u32) & !self.value_mask;
        if t == !self.value_mask && t != 0 {
            t - (1 << self.value_bits)
        } else {
            t
        }
    }

    #[inline(always)]
    fn next(&self, b: usize) -> usize {
        if b + 1 == self.buckets.len() {
            0
        } else {
            b + 1
        }
    }

    /// Starts loading the home bucket of `h` into the cache.
    #[inline(always)]
    pub fn prefetch(&self, h: Hash) {
        cpu::read(&self.buckets[self.home(h)]);
    }

    #[inline(always)]
    fn candidates(&self, b: &Bucket, h: Hash) -> u32 {
        b.matching(!self.value_mask, self.tag(h))
    }

    /// The first value in the home bucket of `h` whose tag matches, unconfirmed: what a
    /// burst prefetches the slab entry of.
    #[inline]
    pub fn candidate(&self, h: Hash) -> Option<u32> {
        let b = &self.buckets[self.home(h)];
        let m = self.candidates(b, h);
        (m != 0).then(|| b.w[m.trailing_zeros() as usize] & self.value_mask)
    }

    /// The value for the key hashed to `h`, confirmed by `is_key(value)`.
    #[inline]
    pub fn find(&self, h: Hash, mut is_key: impl FnMut(u32) -> bool) -> Option<u32> {
        let mut b = self.home(h);
        loop {
            let bucket = &self.buckets[b];
            let mut m = self.candidates(bucket, h);
            while m != 0 {
                let v = bucket.w[m.trailing_zeros() as usize] & self.value_mask;
                if is_key(v) {
                    return Some(v);
                }
                m &= m - 1;
            }
            if bucket.passed() == 0 {
                return None;
            }
            b = self.next(b);
        }
    }

    /// Adds `value` for the key hashed to `h` (the caller has checked the key is not in
    /// the index). False if the index is full or `value` is out of range.
    pub fn insert(&mut self, h: Hash, value: u32) -> bool {
        if self.len >= self.capacity || value >= self.value_mask {
            return false;
        }
        let entry = value | self.tag(h);
        let home = self.home(h);
        let mut b = home;
        loop {
            if let Some(e) = self.buckets[b]
                .entries_mut()
                .iter_mut()
                .find(|e| **e == EMPTY)
            {
                *e = entry;
                break;
            }
            b = self.next(b);
            if b == home {
                return false; // cannot happen below the capacity
            }
        }
        // Count the entry on every bucket it passed.
        let mut p = home;
        while p != b {
            self.buckets[p].w[PASSED] += 1;
            p = self.next(p);
        }
        self.len += 1;
        true
    }

    /// Removes `value`, which was inserted for the key hashed to `h`. False if absent.
    pub fn remove(&mut self, h: Hash, value: u32) -> bool {
        let home = self.home(h);
        let mut b = home;
        loop {
            let mask = self.value_mask;
            if let Some(e) = self.buckets[b]
                .entries_mut()
                .iter_mut()
                .find(|e| **e != EMPTY && **e & mask == value)
            {
                *e = EMPTY;
                break;
            }
            if self.buckets[b].passed() == 0 {
                return false;
            }
            b = self.next(b);
            if b == home {
                return false;
            }
        }
        let mut p = home;
        while p != b {
            self.buckets[p].w[PASSED] -= 1;
            p = self.next(p);
        }
        self.len -= 1;
        true
    }

    /// Values in the index.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes allocated.
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of_val(&*self.buckets)
    }

    fn buckets_for(capacity: usize) -> usize {
        (capacity.saturating_mul(8) / 7).div_ceil(SLOTS).max(1) + 1
    }

    /// Bytes an index for `capacity` values allocates (what [`Self::memory_bytes`]
    /// will say), for sizing before anything is allocated.
    pub fn bytes_for(capacity: usize) -> usize {
        Self::buckets_for(capacity).saturating_mul(std::mem::size_of::<Bucket>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    #[test]
    fn bucket_is_a_cache_line() {
        assert_eq!(std::mem::size_of::<Bucket>(), 64);
        assert_eq!(std::mem::align_of::<Bucket>(), 64);
    }

    #[test]
    fn fills_to_capacity_and_spills() {
        let n = 1000;
        let mut ix = HashIndex::new(n);
        let keys: Vec<u64> = (0..n as u64).map(|k| k * 7919).collect();
        for (v, k) in keys.iter().enumerate() {
            assert!(ix.insert(ix.hash(*k), v as u32));
        }
        assert!(!ix.insert(ix.hash(1), 0), "full");
        for (v, k) in keys.iter().enumerate() {
            assert_eq!(
                ix.find(ix.hash(*k), |x| keys[x as usize] == *k),
                Some(v as u32)
            );
        }
        assert_eq!(ix.find(ix.hash(3), |x| keys[x as usize] == 3), None);
        for (v, k) in keys.iter().enumerate().step_by(2) {
            assert!(ix.remove(ix.hash(*k), v as u32));
        }
        for (v, k) in keys.iter().enumerate() {
            let want = (v % 2 == 1).then_some(v as u32);
            assert_eq!(ix.find(ix.hash(*k), |x| keys[x as usize] == *k), want);
        }
        assert_eq!(ix.len(), n / 2);
        assert!(ix.buckets.iter().all(|b| b.passed() <= n as u32));
    }

    #[test]
    fn every_bucket_in_one_chain() {
        // Keys that all hash to the same bucket: the chain wraps around the table.
        let mut ix = HashIndex::new(60);
        let h = ix.hash(42);
        for v in 0..60 {
            assert!(ix.insert(h, v));
        }
        for v in 0..60 {
            assert_eq!(ix.find(h, |x| x == v), Some(v));
        }
        for v in (0..60).rev() {
            assert!(ix.remove(h, v));
            assert_eq!(ix.find(h, |x| x == v), None);
        }
        assert!(ix.buckets.iter().all(|b| b.passed() == 0));
        assert!(
            ix.buckets
                .iter()
                .all(|b| b.entries().iter().all(|e| *e == EMPTY))
        );
    }

    #[derive(Clone, Debug)]
    enum Op {
        Insert(u16),
        Remove(u16),
        Find(u16),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u16..300).prop_map(Op::Insert),
            (0u16..300).prop_map(Op::Remove),
            (0u16..300).prop_map(Op::Find),
        ]
    }

    proptest! {
        /// The index against a HashMap model: slab values are allocated and freed the
        /// way the session and flow tables do, keys are confirmed through the "slab".
        #[test]
        fn matches_a_map(cap in 1usize..200, ops in proptest::collection::vec(op(), 1..400)) {
            let mut ix = HashIndex::new(cap);
            let mut model: HashMap<u16, u32> = HashMap::new();
            let mut slab: Vec<Option<u16>> = vec![None; cap];
            for o in ops {
                match o {
                    Op::Insert(k) => {
                        if model.contains_key(&k) { continue; }
                        match slab.iter().position(Option::is_none) {
                            Some(v) => {
                                prop_assert!(ix.insert(ix.hash(k as u64), v as u32));
                                slab[v] = Some(k);
                                model.insert(k, v as u32);
                            }
                            None => prop_assert!(!ix.insert(ix.hash(k as u64), 0)),
                        }
                    }
                    Op::Remove(k) => {
                        let h = ix.hash(k as u64);
                        match model.remove(&k) {
                            Some(v) => {
                                prop_assert!(ix.remove(h, v));
                                slab[v as usize] = None;
                            }
                            None => prop_assert!(
                                ix.find(h, |x| slab[x as usize] == Some(k)).is_none()
                            ),
                        }
                    }
                    Op::Find(k) => {
                        let got = ix.find(ix.hash(k as u64), |x| slab[x as usize] == Some(k));
                        prop_assert_eq!(got, model.get(&k).copied());
                    }
                }
                prop_assert_eq!(ix.len(), model.len());
            }
        }
    }
}
