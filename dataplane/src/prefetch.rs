//! Software prefetch: a hint that a cache line will be read soon. A burst looks up every
//! packet's table buckets and entries in stages, prefetching what the next stage reads,
//! so that the cache misses of 32 packets overlap instead of following one another
//! (VPP's dual/quad loops). A hint never changes what the program computes.

/// Starts loading the cache line holding `p` (and nothing else) into all cache levels.
#[inline(always)]
pub fn read<T>(p: &T) {
    line((p as *const T).cast::<u8>());
}

/// Starts loading every cache line `p` spans (a slab entry larger than one line).
#[inline(always)]
pub fn read_all<T>(p: &T) {
    let size = std::mem::size_of::<T>();
    let start = (p as *const T).cast::<u8>();
    let mut off = 0;
    while off < size {
        line(start.wrapping_add(off));
        off += 64;
    }
    // The last line, when the object does not start on a line boundary.
    if size > 0 && (start as usize) % 64 + size > off {
        line(start.wrapping_add(size - 1));
    }
}

#[inline(always)]
fn line(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        // SAFETY: a prefetch does not access memory architecturally and cannot fault;
        // `p` points into an object the caller holds a reference to in any case.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(p.cast::<i8>()) }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}
