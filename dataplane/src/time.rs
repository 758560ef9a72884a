//! Time on the fast path: a monotonic nanosecond count read once per burst.
//!
//! Workers never read the clock per packet. The daemon passes [`Instant::now`] (a vDSO
//! `CLOCK_MONOTONIC` read, no syscall) to each poll; offline replay passes the pcap
//! timestamps instead, which makes every timeout deterministic.

use std::sync::OnceLock;
use std::time::Duration;

/// Nanoseconds on the engine's monotonic clock (or the replay clock).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct Instant(pub u64);

impl Instant {
    /// Zero: the start of a replay, or "never" for deadlines compared with `>`.
    pub const ZERO: Instant = Instant(0);

    /// Reads the system monotonic clock (vDSO, no syscall): nanoseconds since the first
    /// read in this process.
    pub fn now() -> Instant {
        static ORIGIN: OnceLock<std::time::Instant> = OnceLock::new();
        let origin = *ORIGIN.get_or_init(std::time::Instant::now);
        // Offset by one second so that a real clock never reads as ZERO ("never").
        Instant(origin.elapsed().as_nanos() as u64 + 1_000_000_000)
    }

    /// From a duration since the clock's origin (pcap timestamps).
    pub fn from_duration(d: Duration) -> Instant {
        Instant(d.as_nanos() as u64)
    }

    /// As a duration since the clock's origin.
    pub fn as_duration(self) -> Duration {
        Duration::from_nanos(self.0)
    }

    /// `self + ms` milliseconds, saturating.
    pub fn add_ms(self, ms: u64) -> Instant {
        Instant(self.0.saturating_add(ms.saturating_mul(1_000_000)))
    }

    /// `self + d`, saturating.
    pub fn after(self, d: Duration) -> Instant {
        Instant(
            self.0
                .saturating_add(d.as_nanos().min(u64::MAX as u128) as u64),
        )
    }

    /// Whole seconds since the clock's origin.
    pub fn secs(self) -> u64 {
        self.0 / 1_000_000_000
    }

    /// Time elapsed from `earlier` to `self`, zero if `earlier` is later.
    pub fn since(self, earlier: Instant) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
}

impl std::ops::Add<Duration> for Instant {
    type Output = Instant;

    /// `self + d`, saturating.
    fn add(self, d: Duration) -> Instant {
        self.after(d)
    }
}
