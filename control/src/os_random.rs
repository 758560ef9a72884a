//! The operating system's randomness (getrandom(2)), the one place the gateway reads it:
//! seeds for the protocol engines' [`Random`](crate::random::Random) and password salts.
//! Clippy's `disallowed_methods` (`clippy.toml`) refuses `getrandom` anywhere else, so no
//! module grows its own source or a fallback to the clock.

use crate::random::Seed;

/// The OS could not give random bytes: the gateway does not start without them.
#[derive(Debug, thiserror::Error)]
#[error("the operating system gave no random bytes (getrandom: {0}); nothing weaker is used")]
pub struct NoRandomness(getrandom::Error);

/// Fills `buf` from the OS.
pub fn fill(buf: &mut [u8]) -> Result<(), NoRandomness> {
    #[allow(clippy::disallowed_methods)]
    getrandom::fill(buf).map_err(NoRandomness)
}

/// A fresh seed for a [`Random`](crate::random::Random).
pub fn seed() -> Result<Seed, NoRandomness> {
    let mut b = [0u8; 32];
    fill(&mut b)?;
    Ok(Seed::fixed(b))
}
