//! The core's clock value: a monotonic nanosecond count that the caller reads and passes
//! in. It is the fast path's own [`Instant`] (`tollgate_dataplane::time`), so events,
//! commands and the core share one time type; the core never reads the clock
//! (`Instant::now` is forbidden here by `clippy.toml`).

pub use tollgate_dataplane::time::Instant;

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
