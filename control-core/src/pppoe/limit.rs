//! Token buckets for the PADI rate limits: one global, one per client MAC (kept in a
//! bounded table so that a flood of random MACs costs bounded memory).

use std::collections::HashMap;

use crate::time::Instant;
use crate::wire::ethernet::Mac;

/// A rate: `per_second` tokens a second, at most `burst` saved up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    /// Tokens added per second.
    pub per_second: u32,
    /// Bucket size.
    pub burst: u32,
}

const MILLI: u64 = 1000;

/// A token bucket in thousandths of a token, refilled from the elapsed time.
#[derive(Clone, Copy, Debug)]
pub struct Bucket {
    milli_tokens: u64,
    last: Instant,
}

impl Bucket {
    /// A full bucket at `now`.
    pub fn full(rate: Rate, now: Instant) -> Bucket {
        Bucket {
            milli_tokens: u64::from(rate.burst) * MILLI,
            last: now,
        }
    }

    fn refill(&mut self, rate: Rate, now: Instant) {
        let ns = now.0.saturating_sub(self.last.0);
        let add = (u128::from(ns) * u128::from(rate.per_second) * u128::from(MILLI) / 1_000_000_000)
            as u64;
        if add > 0 {
            self.milli_tokens =
                (self.milli_tokens.saturating_add(add)).min(u64::from(rate.burst) * MILLI);
            self.last = now;
        } else if now < self.last {
            self.last = now;
        }
    }

    /// Takes a token if there is one.
    pub fn take(&mut self, rate: Rate, now: Instant) -> bool {
        self.refill(rate, now);
        if self.milli_tokens >= MILLI {
            self.milli_tokens -= MILLI;
            true
        } else {
            false
        }
    }

    /// Whether the bucket is full at `now` (then it is the same as no entry at all).
    fn is_full(&mut self, rate: Rate, now: Instant) -> bool {
        self.refill(rate, now);
        self.milli_tokens >= u64::from(rate.burst) * MILLI
    }
}

/// Per-MAC buckets in a table of at most `capacity` entries.
#[derive(Debug)]
pub struct PerMac {
    rate: Rate,
    capacity: usize,
    buckets: HashMap<Mac, Bucket>,
    last_sweep: Option<Instant>,
}

/// The verdict of [`PerMac::take`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admit {
    /// A token was taken.
    Yes,
    /// The MAC is over its rate.
    No,
    /// The table is full of MACs with recent requests: this one is not tracked (only
    /// the global limit applies to it).
    Untracked,
}

impl PerMac {
    /// An empty table.
    pub fn new(rate: Rate, capacity: usize) -> PerMac {
        PerMac {
            rate,
            capacity: capacity.max(1),
            buckets: HashMap::new(),
            last_sweep: None,
        }
    }

    /// Takes a token for `mac`.
    pub fn take(&mut self, mac: Mac, now: Instant) -> Admit {
        let rate = self.rate;
        if !self.buckets.contains_key(&mac) && self.buckets.len() >= self.capacity {
            // Full buckets carry no state: forget them. The sweep walks the whole table,
            // so it runs at most once a second, or a flood of new MACs would make every
            // PADI cost a walk.
            let due = self
                .last_sweep
                .is_none_or(|t| now.since(t) >= core::time::Duration::from_secs(1));
            if due {
                self.last_sweep = Some(now);
                self.buckets.retain(|_, b| !b.is_full(rate, now));
            }
            if self.buckets.len() >= self.capacity {
                return Admit::Untracked;
            }
        }
        let b = self
            .buckets
            .entry(mac)
            .or_insert_with(|| Bucket::full(rate, now));
        if b.take(rate, now) {
            Admit::Yes
        } else {
            Admit::No
        }
    }

    /// Entries in the table.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_burst_then_rate() {
        let r = Rate {
            per_second: 2,
            burst: 3,
        };
        let t = Instant(1_000_000_000);
        let mut b = Bucket::full(r, t);
        assert!(b.take(r, t) && b.take(r, t) && b.take(r, t));
        assert!(!b.take(r, t));
        assert!(!b.take(r, t.add_ms(499)));
        assert!(b.take(r, t.add_ms(500)));
        assert!(!b.take(r, t.add_ms(500)));
        // Never more than the burst, however long the pause.
        let later = t.add_ms(3_600_000);
        assert!((0..3).all(|_| b.take(r, later)));
        assert!(!b.take(r, later));
    }

    #[test]
    fn per_mac_table_is_bounded_and_forgets_idle_macs() {
        let r = Rate {
            per_second: 1,
            burst: 1,
        };
        let t = Instant(1_000_000_000);
        let mut p = PerMac::new(r, 2);
        assert_eq!(p.take([1; 6], t), Admit::Yes);
        assert_eq!(p.take([1; 6], t), Admit::No);
        assert_eq!(p.take([2; 6], t), Admit::Yes);
        assert_eq!(p.take([3; 6], t), Admit::Untracked);
        assert_eq!(p.len(), 2);
        // A second later both buckets are full again and can be forgotten.
        assert_eq!(p.take([3; 6], t.add_ms(1_000)), Admit::Yes);
        assert_eq!(p.len(), 1);
        // The table is full again; the next sweep waits a second.
        assert_eq!(p.take([4; 6], t.add_ms(1_000)), Admit::Yes);
        assert_eq!(p.take([5; 6], t.add_ms(1_500)), Admit::Untracked);
        assert_eq!(p.take([5; 6], t.add_ms(2_000)), Admit::Yes);
    }
}
