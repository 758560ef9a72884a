//! The four rings of an AF_XDP socket, as the kernel maps them: single-producer,
//! single-consumer arrays of `u64` frame addresses (fill, completion) or `xdp_desc`
//! descriptors (rx, tx), with a producer and a consumer index the two sides publish with
//! release stores and read with acquire loads.
//!
//! We produce on the fill and tx rings and consume from the rx and completion rings. Each
//! end keeps a cached copy of the other side's index and reads the shared one only when
//! the cache says there is not enough, as libxdp does; indexes run freely and wrap at
//! 2^32, a slot is `index & mask`.

use std::io;
use std::os::fd::RawFd;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};

/// One mapped ring.
pub(super) struct RingMap {
    map: NonNull<u8>,
    map_len: usize,
    producer: NonNull<AtomicU32>,
    consumer: NonNull<AtomicU32>,
    flags: NonNull<AtomicU32>,
    desc: NonNull<u8>,
    mask: u32,
    size: u32,
}

// SAFETY: the mapping belongs to one socket, which belongs to one port, owned by one
// worker; moving the port moves sole access. The kernel's side of the sharing is
// synchronised by the index words (acquire/release), which does not depend on the thread.
unsafe impl Send for RingMap {}

impl RingMap {
    /// Maps the ring of `size` entries of `entry` bytes at page offset `pgoff` of socket
    /// `fd`, laid out as `off` says.
    pub(super) fn map(
        fd: RawFd,
        pgoff: u64,
        off: &libc::xdp_ring_offset,
        size: u32,
        entry: usize,
    ) -> io::Result<RingMap> {
        let map_len = off.desc as usize + size as usize * entry;
        // SAFETY: a fresh shared mapping of the socket's ring at an address the kernel
        // picks; nothing else refers to it.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                fd,
                pgoff as libc::off_t,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let map =
            NonNull::new(ptr.cast::<u8>()).ok_or_else(|| io::Error::other("mmap returned NULL"))?;
        let at = |o: u64| {
            assert!(
                (o as usize) < map_len && o.is_multiple_of(4),
                "ring offset outside the mapping"
            );
            // SAFETY: inside the mapping (checked), which is page aligned.
            unsafe { NonNull::new_unchecked(map.as_ptr().add(o as usize)) }
        };
        Ok(RingMap {
            map,
            map_len,
            producer: at(off.producer).cast(),
            consumer: at(off.consumer).cast(),
            flags: at(off.flags).cast(),
            desc: at(off.desc),
            mask: size - 1,
            size,
        })
    }

    #[inline(always)]
    fn producer(&self) -> &AtomicU32 {
        // SAFETY: a 4-byte aligned word inside the mapping, alive as long as self; the
        // kernel accesses it atomically too, and we only through this AtomicU32.
        unsafe { self.producer.as_ref() }
    }

    #[inline(always)]
    fn consumer(&self) -> &AtomicU32 {
        // SAFETY: as in `producer`.
        unsafe { self.consumer.as_ref() }
    }

    /// Whether the kernel asks for a syscall to make progress (`XDP_RING_NEED_WAKEUP`).
    #[inline(always)]
    pub(super) fn needs_wakeup(&self) -> bool {
        // SAFETY: as in `producer`.
        let flags = unsafe { self.flags.as_ref() };
        flags.load(Ordering::Relaxed) & libc::XDP_RING_NEED_WAKEUP != 0
    }
}

impl Drop for RingMap {
    fn drop(&mut self) {
        // SAFETY: we mapped exactly this range, and nothing refers into it past self.
        unsafe {
            libc::munmap(self.map.as_ptr().cast(), self.map_len);
        }
    }
}

/// A ring we fill and the kernel empties (fill, tx), of entries `T`.
pub(super) struct Producer<T> {
    ring: RingMap,
    /// Our next index.
    head: u32,
    /// The kernel's consumer index as last read.
    cached_cons: u32,
    _entry: std::marker::PhantomData<T>,
}

impl<T: Copy> Producer<T> {
    pub(super) fn new(ring: RingMap) -> Self {
        Producer {
            cached_cons: ring.consumer().load(Ordering::Acquire),
            head: ring.producer().load(Ordering::Relaxed),
            ring,
            _entry: std::marker::PhantomData,
        }
    }

    /// Free slots, reading the kernel's index when fewer than `want` seem free.
    #[inline(always)]
    pub(super) fn free(&mut self, want: u32) -> u32 {
        let free = self.ring.size - self.head.wrapping_sub(self.cached_cons);
        if free >= want {
            return free;
        }
        self.cached_cons = self.ring.consumer().load(Ordering::Acquire);
        self.ring.size - self.head.wrapping_sub(self.cached_cons)
    }

    /// Writes `v` at the `i`-th slot after the head (not yet published). The caller
    /// checked `i < free()`.
    #[inline(always)]
    pub(super) fn write(&mut self, i: u32, v: T) {
        let slot = (self.head.wrapping_add(i) & self.ring.mask) as usize;
        // SAFETY: the slot is inside the descriptor array (masked index), and free()
        // said the kernel is done with it: until we publish it, it is ours alone.
        unsafe {
            self.ring
                .desc
                .as_ptr()
                .cast::<T>()
                .add(slot)
                .write_volatile(v)
        };
    }

    /// Publishes `n` written slots to the kernel.
    #[inline(always)]
    pub(super) fn submit(&mut self, n: u32) {
        self.head = self.head.wrapping_add(n);
        self.ring.producer().store(self.head, Ordering::Release);
    }

    /// Slots published that the kernel has not taken yet (reads its index).
    pub(super) fn pending(&mut self) -> u32 {
        self.cached_cons = self.ring.consumer().load(Ordering::Acquire);
        self.head.wrapping_sub(self.cached_cons)
    }

    pub(super) fn needs_wakeup(&self) -> bool {
        self.ring.needs_wakeup()
    }
}

/// A ring the kernel fills and we empty (rx, completion), of entries `T`.
pub(super) struct Consumer<T> {
    ring: RingMap,
    /// Our next index.
    tail: u32,
    /// The kernel's producer index as last read.
    cached_prod: u32,
    _entry: std::marker::PhantomData<T>,
}

impl<T: Copy> Consumer<T> {
    pub(super) fn new(ring: RingMap) -> Self {
        Consumer {
            cached_prod: ring.producer().load(Ordering::Acquire),
            tail: ring.consumer().load(Ordering::Relaxed),
            ring,
            _entry: std::marker::PhantomData,
        }
    }

    /// Entries ready, up to `max`, reading the kernel's index when fewer seem ready.
    #[inline(always)]
    pub(super) fn ready(&mut self, max: u32) -> u32 {
        let mut n = self.cached_prod.wrapping_sub(self.tail);
        if n < max {
            self.cached_prod = self.ring.producer().load(Ordering::Acquire);
            n = self.cached_prod.wrapping_sub(self.tail);
        }
        n.min(max)
    }

    /// The `i`-th entry after the tail. The caller checked `i < ready()`.
    #[inline(always)]
    pub(super) fn read(&self, i: u32) -> T {
        let slot = (self.tail.wrapping_add(i) & self.ring.mask) as usize;
        // SAFETY: the slot is inside the descriptor array (masked index), and ready()
        // saw the kernel publish it (acquire): it does not change until we release it.
        unsafe {
            self.ring
                .desc
                .as_ptr()
                .cast::<T>()
                .add(slot)
                .read_volatile()
        }
    }

    /// Gives `n` read entries back to the kernel.
    #[inline(always)]
    pub(super) fn release(&mut self, n: u32) {
        self.tail = self.tail.wrapping_add(n);
        self.ring.consumer().store(self.tail, Ordering::Release);
    }
}
