//! Randomness for the protocol engines, sans-I/O: L2TP tunnel ids, Challenges and
//! hidden-AVP Random Vectors, RADIUS Request Authenticators.
//!
//! Every such value comes from [`Random`], a ChaCha20 CSPRNG keyed with a [`Seed`] of 32
//! bytes that the caller takes from the operating system ([`crate::os_random::seed`], the
//! only reader of OS randomness; clippy's `disallowed_methods` in `clippy.toml` keeps it
//! so). There is no weaker fallback: without OS randomness the gateway does not start.
//! Tests and fuzz targets use [`Seed::fixed`] for repeatable runs.

use std::fmt;

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};

/// 32 random bytes that key a [`Random`]. Its `Debug` does not show them.
#[derive(Clone, PartialEq, Eq)]
pub struct Seed([u8; 32]);

impl Seed {
    /// A seed of these bytes: from the OS in the daemon, fixed in tests.
    pub const fn fixed(bytes: [u8; 32]) -> Seed {
        Seed(bytes)
    }
}

impl fmt::Debug for Seed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Seed(..)")
    }
}

/// A CSPRNG (ChaCha20) keyed with a [`Seed`].
pub struct Random(ChaCha20Rng);

impl Random {
    /// The generator keyed with `seed`.
    pub fn new(seed: &Seed) -> Random {
        Random(ChaCha20Rng::from_seed(seed.0))
    }

    /// Fills `buf`.
    pub fn fill(&mut self, buf: &mut [u8]) {
        self.0.fill_bytes(buf);
    }

    /// 8 random bytes as a number.
    pub fn u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// 16 random bytes (a Challenge, a Random Vector, an authenticator).
    pub fn bytes16(&mut self) -> [u8; 16] {
        let mut b = [0u8; 16];
        self.fill(&mut b);
        b
    }
}

/// The PPP and PPPoE engines take their magic numbers, CHAP challenges and cookie
/// secrets from the gateway's CSPRNG.
impl crate::entropy::Entropy for Random {
    fn fill(&mut self, dst: &mut [u8]) {
        Random::fill(self, dst)
    }
}

impl fmt::Debug for Random {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Random(ChaCha20)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_seed_one_stream_and_no_seed_in_debug() {
        let s = Seed::fixed([7; 32]);
        let (mut a, mut b) = (Random::new(&s), Random::new(&s));
        assert_eq!(a.bytes16(), b.bytes16());
        assert_ne!(a.bytes16(), a.bytes16());
        let mut c = Random::new(&Seed::fixed([8; 32]));
        assert_ne!(a.u64(), c.u64());
        assert_eq!(format!("{s:?}"), "Seed(..)");
    }

    /// The RFC 8439 §2.3.2 / ChaCha20 keystream for the all-zero key and nonce starts
    /// with these bytes (RFC 8439 A.1 test vector 1): the generator is ChaCha20.
    #[test]
    fn it_is_chacha20() {
        let mut r = Random::new(&Seed::fixed([0; 32]));
        let mut b = [0u8; 16];
        r.fill(&mut b);
        assert_eq!(
            b,
            [
                0x76, 0xb8, 0xe0, 0xad, 0xa0, 0xf1, 0x3d, 0x90, 0x40, 0x5d, 0x6a, 0xe5, 0x53, 0x86,
                0xbd, 0x28
            ]
        );
    }
}
