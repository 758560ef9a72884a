//! A map of per-client states, each with the instant it is next due (an offer expiring,
//! a lease running out, a refusal hold ending), and the timer index that finds the due
//! ones in order. The DHCPv4 server and relay and the DHCPv6 server keep their clients
//! in one; the index follows every insert and removal, so an engine cannot leave a timer
//! behind for a state it dropped.

use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;

use crate::time::Instant;

/// A state that is due at an instant.
pub trait Due {
    /// When the engine must look at this state again.
    fn due(&self) -> Instant;
}

/// States by key, with their due instants ordered.
#[derive(Debug)]
pub struct TimedMap<K, S> {
    states: HashMap<K, S>,
    timers: BTreeSet<(Instant, K)>,
}

impl<K, S> Default for TimedMap<K, S> {
    fn default() -> Self {
        TimedMap {
            states: HashMap::new(),
            timers: BTreeSet::new(),
        }
    }
}

impl<K: Copy + Ord + Hash, S: Due> TimedMap<K, S> {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key`'s state (and its timer); returns the state it replaces.
    pub fn insert(&mut self, key: K, state: S) -> Option<S> {
        let due = state.due();
        let old = self.states.insert(key, state);
        if let Some(old) = &old {
            self.timers.remove(&(old.due(), key));
        }
        self.timers.insert((due, key));
        old
    }

    /// Removes `key`'s state and its timer.
    pub fn remove(&mut self, key: &K) -> Option<S> {
        let s = self.states.remove(key)?;
        self.timers.remove(&(s.due(), *key));
        Some(s)
    }

    /// `key`'s state.
    pub fn get(&self, key: &K) -> Option<&S> {
        self.states.get(key)
    }

    /// `key`'s state, to change what it holds besides its due instant (which keys the
    /// timer index: to move it, [`Self::insert`] the new state).
    pub fn get_mut(&mut self, key: &K) -> Option<&mut S> {
        self.states.get_mut(key)
    }

    /// Whether `key` has a state.
    pub fn contains_key(&self, key: &K) -> bool {
        self.states.contains_key(key)
    }

    /// How many states there are.
    pub fn len(&self) -> usize {
        self.states.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.states.is_empty()
    }

    /// Every state, in no order.
    pub fn values(&self) -> impl Iterator<Item = &S> {
        self.states.values()
    }

    /// The earliest due instant.
    pub fn next_due(&self) -> Option<Instant> {
        self.timers.first().map(|(t, _)| *t)
    }

    /// Removes and returns the earliest state due at or before `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<(K, S)> {
        let &(t, key) = self.timers.first().filter(|(t, _)| *t <= now)?;
        self.timers.remove(&(t, key));
        let s = self.states.remove(&key)?;
        Some((key, s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct At(u64, &'static str);

    impl Due for At {
        fn due(&self) -> Instant {
            Instant(self.0 * 1_000_000)
        }
    }

    #[test]
    fn due_states_come_out_in_time_order_and_a_replaced_state_leaves_no_timer() {
        let mut m = TimedMap::new();
        m.insert(1u32, At(30, "a"));
        m.insert(2, At(10, "b"));
        m.insert(3, At(20, "c"));
        // Replacing 1's state moves its timer from 30 to 5.
        assert_eq!(m.insert(1, At(5, "a2")), Some(At(30, "a")));
        assert_eq!(m.next_due(), Some(Instant(5_000_000)));
        assert_eq!(m.pop_due(Instant(4_000_000)), None);
        assert_eq!(m.pop_due(Instant(15_000_000)), Some((1, At(5, "a2"))));
        assert_eq!(m.pop_due(Instant(15_000_000)), Some((2, At(10, "b"))));
        assert_eq!(m.pop_due(Instant(15_000_000)), None);
        assert_eq!(m.remove(&3), Some(At(20, "c")));
        // Nothing is left behind: no stale timer for the replaced or removed states.
        assert_eq!(m.next_due(), None);
        assert!(m.is_empty());
    }
}
