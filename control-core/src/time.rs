//! The core's clock value: a monotonic nanosecond count that the caller reads and passes
//! in. It is the fast path's own [`Instant`] (`tollgate_dataplane::time`), so events,
//! commands and the core share one time type; the core never reads the clock
//! (`Instant::now` is forbidden here by `clippy.toml`). [`WallClock`] maps it to Unix
//! time for records (the offset is the caller's reading of the system clock).

use jiff::Timestamp;
use jiff::tz::Offset;
pub use tollgate_dataplane::time::Instant;

/// Maps engine instants to Unix nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WallClock {
    /// Unix nanoseconds minus engine nanoseconds.
    pub offset_ns: i128,
}

impl WallClock {
    /// For an engine clock that is Unix time (replay).
    pub const UNIX: WallClock = WallClock { offset_ns: 0 };

    /// The clock on which `now` (engine clock) reads `unix_ns` (Unix nanoseconds): the
    /// daemon passes the system's current time, read by the shell.
    pub fn at(now: Instant, unix_ns: i128) -> WallClock {
        WallClock {
            offset_ns: unix_ns - now.0 as i128,
        }
    }

    /// Unix nanoseconds of `t`.
    pub fn unix_ns(&self, t: Instant) -> i128 {
        t.0 as i128 + self.offset_ns
    }

    /// `t` as RFC 3339 UTC with milliseconds, e.g. `2026-11-23T08:02:00.123Z`.
    pub fn rfc3339(&self, t: Instant) -> String {
        rfc3339(self.unix_ns(t))
    }
}

/// Unix nanoseconds as RFC 3339 UTC with milliseconds (years beyond jiff's -9999 to
/// 9999 saturate).
pub fn rfc3339(unix_ns: i128) -> String {
    let ms = unix_ns.div_euclid(1_000_000);
    let secs =
        i64::try_from(ms.div_euclid(1000)).unwrap_or(if ms < 0 { i64::MIN } else { i64::MAX });
    let secs = secs.clamp(Timestamp::MIN.as_second(), Timestamp::MAX.as_second());
    let t = Timestamp::from_second(secs).unwrap_or(Timestamp::UNIX_EPOCH);
    let dt = Offset::UTC.to_datetime(t);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second(),
        ms.rem_euclid(1000)
    )
}

#[cfg(test)]
mod tests {
    use core::time::Duration;

    use super::*;

    #[test]
    fn arithmetic_saturates() {
        let t = Instant(u64::MAX - 5);
        assert_eq!(t.add_ms(1), Instant(u64::MAX));
        assert_eq!(t + Duration::from_secs(1), Instant(u64::MAX));
        assert_eq!(t.after(Duration::MAX), Instant(u64::MAX));
        assert_eq!(Instant(5).since(Instant(9)), Duration::ZERO);
        assert_eq!(Instant(3_500_000_000).secs(), 3);
    }
}
