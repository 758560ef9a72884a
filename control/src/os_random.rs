//! The operating system's randomness, for the random values the sans-I/O engines take
//! from their caller (RADIUS Request Authenticators).

use std::sync::atomic::{AtomicU64, Ordering};

use tollgate_control_core::entropy::Entropy;

/// Random bytes from getrandom(2). Should the OS have none, a digest of the clock, a
/// counter and the process id stands in, so that two requests never share an
/// authenticator.
#[derive(Debug, Default)]
pub struct OsEntropy;

impl Entropy for OsEntropy {
    fn fill(&mut self, dst: &mut [u8]) {
        if getrandom::fill(dst).is_ok() {
            return;
        }
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        use md5::Digest;
        let mut done = 0;
        while done < dst.len() {
            let mut h = md5::Md5::new();
            h.update(crate::clock::unix_ns().to_be_bytes());
            h.update(COUNTER.fetch_add(1, Ordering::Relaxed).to_be_bytes());
            h.update(std::process::id().to_be_bytes());
            let d: [u8; 16] = h.finalize().into();
            let n = (dst.len() - done).min(16);
            dst[done..done + n].copy_from_slice(&d[..n]);
            done += n;
        }
    }
}
