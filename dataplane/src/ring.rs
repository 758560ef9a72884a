//! Bounded single-producer/single-consumer rings between threads.
//!
//! The ends are types: a [`Producer`] and a [`Consumer`] are `Send` but neither `Clone`
//! nor `Sync`, so one thread owns each end and SPSC is enforced by ownership, not by
//! convention. Neither end ever blocks: a push into a full ring hands the item back.

use std::cell::Cell;
use std::marker::PhantomData;

use ringbuf::traits::{Consumer as _, Observer as _, Producer as _, Split as _};
use ringbuf::{HeapCons, HeapProd, HeapRb};

/// Makes `!Sync` without affecting `Send`.
type NotSync = PhantomData<Cell<()>>;

/// The writing end of a ring.
pub struct Producer<T> {
    inner: HeapProd<T>,
    _not_sync: NotSync,
}

/// The reading end of a ring.
pub struct Consumer<T> {
    inner: HeapCons<T>,
    _not_sync: NotSync,
}

/// A ring of `capacity` items (at least 1), split into its two ends.
pub fn ring<T>(capacity: usize) -> (Producer<T>, Consumer<T>) {
    let (p, c) = HeapRb::<T>::new(capacity.max(1)).split();
    (
        Producer {
            inner: p,
            _not_sync: PhantomData,
        },
        Consumer {
            inner: c,
            _not_sync: PhantomData,
        },
    )
}

impl<T> Producer<T> {
    /// Pushes `item`, or hands it back if the ring is full.
    #[inline]
    pub fn push(&mut self, item: T) -> Result<(), T> {
        self.inner.try_push(item)
    }

    /// Free slots.
    pub fn free(&self) -> usize {
        self.inner.vacant_len()
    }

    /// Total slots.
    pub fn capacity(&self) -> usize {
        self.inner.capacity().get()
    }
}

impl<T> Consumer<T> {
    /// Pops the oldest item, if any.
    #[inline]
    pub fn pop(&mut self) -> Option<T> {
        self.inner.try_pop()
    }

    /// Items waiting.
    pub fn len(&self) -> usize {
        self.inner.occupied_len()
    }

    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }
}

impl<T> std::fmt::Debug for Producer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Producer({}/{} free)", self.free(), self.capacity())
    }
}

impl<T> std::fmt::Debug for Consumer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Consumer({} waiting)", self.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>() {}

    #[test]
    fn full_ring_hands_item_back() {
        assert_send::<Producer<u32>>();
        assert_send::<Consumer<u32>>();
        let (mut p, mut c) = ring::<u32>(2);
        assert_eq!(p.push(1), Ok(()));
        assert_eq!(p.push(2), Ok(()));
        assert_eq!(p.push(3), Err(3));
        assert_eq!(c.len(), 2);
        assert_eq!(c.pop(), Some(1));
        assert_eq!(p.push(3), Ok(()));
        assert_eq!(c.pop(), Some(2));
        assert_eq!(c.pop(), Some(3));
        assert_eq!(c.pop(), None);
    }

    #[test]
    fn across_threads_in_order() {
        let (mut p, mut c) = ring::<u64>(64);
        let t = std::thread::spawn(move || {
            let mut i = 0;
            while i < 100_000 {
                if p.push(i).is_ok() {
                    i += 1;
                }
            }
        });
        let mut next = 0;
        while next < 100_000 {
            if let Some(v) = c.pop() {
                assert_eq!(v, next);
                next += 1;
            }
        }
        t.join().unwrap();
    }
}
