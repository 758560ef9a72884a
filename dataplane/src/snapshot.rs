//! Read-mostly state published by the control plane as immutable snapshots.
//!
//! The control plane builds a new value and [`Publisher::publish`]es it; each worker's
//! [`Reader`] notices the new version between bursts (one relaxed load per poll) and
//! swaps its `Arc`. A worker never sees a half-updated table, and never takes a lock.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwap;

struct Shared<T> {
    value: ArcSwap<T>,
    version: AtomicU64,
}

/// The control plane's end: publishes new versions.
pub struct Publisher<T> {
    shared: Arc<Shared<T>>,
}

/// A worker's end: holds the version in use and picks up newer ones on request.
pub struct Reader<T> {
    shared: Arc<Shared<T>>,
    current: Arc<T>,
    version: u64,
}

impl<T> Publisher<T> {
    /// A publisher with `initial` as version 1.
    pub fn new(initial: T) -> Self {
        Publisher {
            shared: Arc::new(Shared {
                value: ArcSwap::from_pointee(initial),
                version: AtomicU64::new(1),
            }),
        }
    }

    /// Makes `value` the current version.
    pub fn publish(&self, value: T) {
        self.shared.value.store(Arc::new(value));
        self.shared.version.fetch_add(1, Ordering::Release);
    }

    /// A new reader, starting at the current version.
    pub fn reader(&self) -> Reader<T> {
        let version = self.shared.version.load(Ordering::Acquire);
        Reader {
            current: self.shared.value.load_full(),
            shared: self.shared.clone(),
            version,
        }
    }

    /// The current version.
    pub fn current(&self) -> Arc<T> {
        self.shared.value.load_full()
    }
}

impl<T> Reader<T> {
    /// Picks up a newer version if one was published. True if it changed.
    #[inline]
    pub fn refresh(&mut self) -> bool {
        let v = self.shared.version.load(Ordering::Acquire);
        if v == self.version {
            return false;
        }
        self.current = self.shared.value.load_full();
        self.version = v;
        true
    }

    /// The version in use.
    #[inline(always)]
    pub fn get(&self) -> &T {
        &self.current
    }
}

impl<T> std::fmt::Debug for Reader<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Reader(v{})", self.version)
    }
}

impl<T> std::fmt::Debug for Publisher<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Publisher(v{})",
            self.shared.version.load(Ordering::Relaxed)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_sees_new_version_only_on_refresh() {
        let p = Publisher::new(1);
        let mut r = p.reader();
        assert_eq!(*r.get(), 1);
        p.publish(2);
        assert_eq!(*r.get(), 1, "no change mid-burst");
        assert!(r.refresh());
        assert_eq!(*r.get(), 2);
        assert!(!r.refresh());
    }
}
