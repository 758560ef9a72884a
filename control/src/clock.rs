//! The wall clock, read here and nowhere else in the control plane: the core takes its
//! times from the shells, which take them from this module (Unix time for records,
//! rating and RADIUS Event-Timestamps) and from `tollgate_dataplane::time::Instant::now`
//! (the monotonic engine clock).

use std::time::{SystemTime, UNIX_EPOCH};

use tollgate_control_core::gateway::records::WallClock;
use tollgate_dataplane::time::Instant;

/// Unix time now, nanoseconds (0 if the system clock is before 1970).
pub fn unix_ns() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128)
}

/// Unix time now, seconds.
pub fn unix_s() -> i64 {
    (unix_ns() / 1_000_000_000) as i64
}

/// For the daemon: the wall clock on which `now` (engine clock) is the system's current
/// time.
pub fn system(now: Instant) -> WallClock {
    WallClock::at(now, unix_ns())
}
