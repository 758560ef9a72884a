//! The fast path's two uses of CPU intrinsics, the only `unsafe` outside ports and ffi.
//!
//! Software prefetch: a hint that a cache line will be read soon. A burst looks up every
//! packet's table buckets and entries in stages, prefetching what the next stage reads,
//! so that the cache misses of 32 packets overlap instead of following one another
//! (VPP's dual/quad loops). A hint never changes what the program computes.
//!
//! A sixteen-lane compare ([`match16`]): which words of a hash bucket (one cache line)
//! hold a given tag, in a dozen SSE2 instructions rather than sixteen compares.

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

/// Bit `k` set for each `w[k]` with `w[k] & and == want`.
#[inline(always)]
pub fn match16(w: &[u32; 16], and: u32, want: u32) -> u32 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: SSE2 is part of the x86_64 baseline, so the function's target feature
        // is always present; it reads only the array it is given.
        unsafe { match16_sse2(w, and, want) }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let mut m = 0;
        for (k, x) in w.iter().enumerate() {
            m |= (((x & and) == want) as u32) << k;
        }
        m
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse2")]
fn match16_sse2(w: &[u32; 16], and: u32, want: u32) -> u32 {
    use std::arch::x86_64::{
        __m128i, _mm_and_si128, _mm_castsi128_ps, _mm_cmpeq_epi32, _mm_loadu_si128,
        _mm_movemask_ps, _mm_set1_epi32,
    };
    let a = _mm_set1_epi32(and as i32);
    let x = _mm_set1_epi32(want as i32);
    let mut m = 0u32;
    for q in 0..4 {
        let p = w[q * 4..q * 4 + 4].as_ptr().cast::<__m128i>();
        // SAFETY: `p` points at four u32 of `w` (16 bytes); the load is unaligned.
        let v = unsafe { _mm_loadu_si128(p) };
        let c = _mm_cmpeq_epi32(_mm_and_si128(v, a), x);
        m |= (_mm_movemask_ps(_mm_castsi128_ps(c)) as u32) << (q * 4);
    }
    m
}

#[cfg(test)]
mod tests {
    #[test]
    fn match16_finds_every_lane() {
        let mut w = [0u32; 16];
        for (k, x) in w.iter_mut().enumerate() {
            *x = (k as u32 % 5) << 24 | k as u32;
        }
        for tag in 0..6u32 {
            let want: u32 = (0..16).filter(|k| k % 5 == tag).map(|k| 1u32 << k).sum();
            assert_eq!(super::match16(&w, 0xff00_0000, tag << 24), want);
        }
    }
}
