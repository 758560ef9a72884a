//! The core's clock value: a monotonic nanosecond count that the caller reads and passes
//! in. It is the fast path's own [`Instant`] (`tollgate_dataplane::time`), so events,
//! commands and the core share one time type; the core never reads the clock
//! (`Instant::now` is forbidden here by `clippy.toml`). [`WallClock`] maps it to Unix
//! time for records (the offset is the caller's reading of the system clock).

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

/// Unix nanoseconds as RFC 3339 UTC with milliseconds.
pub fn rfc3339(unix_ns: i128) -> String {
    let ms = unix_ns.div_euclid(1_000_000);
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60,
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
