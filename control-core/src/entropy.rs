//! Random bytes, supplied by the caller. The core never asks the OS: magic numbers,
//! CHAP challenges and packet identifiers come from whatever [`Entropy`] the shell passes
//! (its CSPRNG in production, a fixed sequence in tests).

/// A source of random bytes.
pub trait Entropy {
    /// Fills `dst` with random bytes.
    fn fill(&mut self, dst: &mut [u8]);

    /// A random `u32`.
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill(&mut b);
        u32::from_be_bytes(b)
    }

    /// A random byte.
    fn next_u8(&mut self) -> u8 {
        let mut b = [0u8; 1];
        self.fill(&mut b);
        b[0]
    }
}

impl<F: FnMut(&mut [u8])> Entropy for F {
    fn fill(&mut self, dst: &mut [u8]) {
        self(dst)
    }
}

/// A deterministic generator (xorshift64*), for tests, benches and fuzzing. Not for
/// production: CHAP challenges and cookies need the shell's CSPRNG.
#[derive(Clone, Debug)]
pub struct Sequence(u64);

impl Sequence {
    /// A generator started from `seed` (zero is replaced by a fixed non-zero value).
    pub fn new(seed: u64) -> Sequence {
        Sequence(if seed == 0 {
            0x9e37_79b9_7f4a_7c15
        } else {
            seed
        })
    }

    fn step(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

impl Entropy for Sequence {
    fn fill(&mut self, dst: &mut [u8]) {
        for chunk in dst.chunks_mut(8) {
            let v = self.step().to_be_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_is_deterministic_and_fills_odd_lengths() {
        let (mut a, mut b) = (Sequence::new(7), Sequence::new(7));
        let (mut x, mut y) = ([0u8; 13], [0u8; 13]);
        a.fill(&mut x);
        b.fill(&mut y);
        assert_eq!(x, y);
        assert_ne!(x, [0u8; 13]);
        let mut calls = 0;
        let mut f = |d: &mut [u8]| {
            calls += 1;
            d.fill(0xab)
        };
        assert_eq!(f.next_u32(), 0xabab_abab);
        assert_eq!(calls, 1);
    }
}
