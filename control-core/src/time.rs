//! The core's clock value: a monotonic nanosecond count that the caller reads and passes
//! in. It has the same representation as `tollgate_dataplane::time::Instant` (the shell
//! converts with `Instant(dp.0)`), without a way to read the clock here.

use core::time::Duration;

/// Nanoseconds on the caller's monotonic clock (or a test's fake clock).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct Instant(pub u64);

impl Instant {
    /// The clock's origin.
    pub const ZERO: Instant = Instant(0);

    /// `self + d`, saturating.
    pub fn after(self, d: Duration) -> Instant {
        Instant(
            self.0
                .saturating_add(d.as_nanos().min(u64::MAX as u128) as u64),
        )
    }

    /// `self + ms` milliseconds, saturating.
    pub fn add_ms(self, ms: u64) -> Instant {
        Instant(self.0.saturating_add(ms.saturating_mul(1_000_000)))
    }

    /// Time from `earlier` to `self`, zero if `earlier` is later.
    pub fn since(self, earlier: Instant) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }

    /// Whole seconds since the clock's origin.
    pub fn secs(self) -> u64 {
        self.0 / 1_000_000_000
    }
}

impl core::ops::Add<Duration> for Instant {
    type Output = Instant;

    /// `self + d`, saturating.
    fn add(self, d: Duration) -> Instant {
        self.after(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates() {
        let t = Instant(u64::MAX - 5);
        assert_eq!(t.add_ms(1), Instant(u64::MAX));
        assert_eq!(t + Duration::from_secs(1), Instant(u64::MAX));
        assert_eq!(Instant(5).since(Instant(9)), Duration::ZERO);
        assert_eq!(Instant(3_500_000_000).secs(), 3);
    }
}
