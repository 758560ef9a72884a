//! Service levels that follow traffic (TUN-4, seed 000 claims 10-11), sans-I/O.
//!
//! A session's service level is one step of a ladder of bandwidths. Its measured rate
//! (bytes both ways per sample interval) is compared with the level: when every sample
//! of a whole window is below `low_percent` of the level, the level goes one step down;
//! when every sample of a window is above `high_percent`, one step up. The window and
//! the gap between the two thresholds are the hysteresis: a level changes at most once
//! per window, and a rate between the thresholds changes nothing.

use std::time::Duration;

use tollgate_dataplane::time::Instant;

/// `[l2tp.levels]`, compiled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ladder {
    /// The levels, bit/s, ascending (empty: levels never change).
    pub steps: Vec<u64>,
    /// Below this share of the level for a window: one step down.
    pub low_percent: u8,
    /// Above this share for a window: one step up.
    pub high_percent: u8,
    /// How long the rate must stay beyond a threshold.
    pub window: Duration,
}

impl Default for Ladder {
    fn default() -> Self {
        Ladder {
            steps: Vec::new(),
            low_percent: 20,
            high_percent: 90,
            window: Duration::from_secs(10),
        }
    }
}

impl Ladder {
    /// The step at or above `bps` (the highest if none is), or `bps` itself when the
    /// ladder is empty.
    pub fn snap(&self, bps: u64) -> u64 {
        match self.steps.iter().find(|s| **s >= bps) {
            Some(s) => *s,
            None => self.steps.last().copied().unwrap_or(bps),
        }
    }

    fn neighbour(&self, level: u64, up: bool) -> Option<u64> {
        if up {
            self.steps.iter().copied().find(|s| *s > level)
        } else {
            self.steps.iter().rev().copied().find(|s| *s < level)
        }
    }
}

/// Where a session's rate has been since the window started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Trend {
    /// Neither always below nor always above.
    #[default]
    Mixed,
    /// Below the low threshold since the instant.
    Low(Instant),
    /// Above the high threshold since the instant.
    High(Instant),
}

/// One session's tracker.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tracker {
    trend: Trend,
    /// The last measured rate, bit/s.
    pub rate: u64,
    last: Option<Instant>,
}

impl Tracker {
    /// Takes a sample: `bytes` carried since the previous sample, at `now`. Returns the
    /// new level when it changes.
    pub fn sample(&mut self, ladder: &Ladder, level: u64, now: Instant, bytes: u64) -> Option<u64> {
        let last = self.last.replace(now)?;
        let dt = now.since(last);
        if dt.is_zero() {
            return None;
        }
        self.rate = (bytes as u128 * 8 * 1_000_000_000 / dt.as_nanos()) as u64;
        if ladder.steps.is_empty() || level == 0 {
            return None;
        }
        let pct = (self.rate as u128 * 100 / level as u128) as u64;
        // A window starts at the sample before the first one beyond the threshold (the
        // rate was measured over the interval that ends now).
        self.trend = if pct < ladder.low_percent as u64 {
            match self.trend {
                Trend::Low(t) => Trend::Low(t),
                _ => Trend::Low(last),
            }
        } else if pct > ladder.high_percent as u64 {
            match self.trend {
                Trend::High(t) => Trend::High(t),
                _ => Trend::High(last),
            }
        } else {
            Trend::Mixed
        };
        let (since, up) = match self.trend {
            Trend::Low(t) => (t, false),
            Trend::High(t) => (t, true),
            Trend::Mixed => return None,
        };
        if now.since(since) < ladder.window {
            return None;
        }
        self.trend = Trend::Mixed;
        ladder.neighbour(level, up)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: u64 = 1_000_000;

    fn ladder() -> Ladder {
        Ladder {
            steps: vec![M, 2 * M, 5 * M, 10 * M],
            low_percent: 20,
            high_percent: 90,
            window: Duration::from_secs(5),
        }
    }

    fn at(s: u64) -> Instant {
        Instant(1_000_000_000 * (s + 1))
    }

    /// bytes in one second at `bps`.
    fn sec(bps: u64) -> u64 {
        bps / 8
    }

    #[test]
    fn down_after_a_quiet_window_up_after_a_busy_one() {
        let l = ladder();
        let mut t = Tracker::default();
        let mut level = 5 * M;
        assert_eq!(
            t.sample(&l, level, at(0), 0),
            None,
            "the first sample sets the clock"
        );
        // 0.5 Mbit/s = 10% of 5M: down after 5 s of it.
        for s in 1..5 {
            assert_eq!(t.sample(&l, level, at(s), sec(M / 2)), None, "{s}");
        }
        assert_eq!(t.rate, M / 2);
        level = t.sample(&l, level, at(5), sec(M / 2)).unwrap();
        assert_eq!(level, 2 * M);
        // 1.9 Mbit/s = 95% of 2M for 5 s: up.
        for s in 6..10 {
            assert_eq!(t.sample(&l, level, at(s), sec(19 * M / 10)), None);
        }
        assert_eq!(t.sample(&l, level, at(10), sec(19 * M / 10)), Some(5 * M));
    }

    #[test]
    fn hysteresis_resets_on_a_sample_between_the_thresholds() {
        let l = ladder();
        let mut t = Tracker::default();
        let level = 5 * M;
        t.sample(&l, level, at(0), 0);
        for s in 1..5 {
            t.sample(&l, level, at(s), 0);
        }
        // 50%: between the thresholds; the quiet window starts over.
        assert_eq!(t.sample(&l, level, at(5), sec(5 * M / 2)), None);
        for s in 6..10 {
            assert_eq!(t.sample(&l, level, at(s), 0), None);
        }
        // Quiet over 5..10: a whole window since the reset.
        assert_eq!(t.sample(&l, level, at(10), 0), Some(2 * M));
        // Nothing below the lowest step, nothing above the highest.
        let mut t = Tracker::default();
        t.sample(&l, M, at(0), 0);
        for s in 1..=6 {
            assert_eq!(t.sample(&l, M, at(s), 0), None);
        }
    }

    #[test]
    fn snap_to_the_ladder() {
        let l = ladder();
        assert_eq!(l.snap(1), M);
        assert_eq!(l.snap(3 * M), 5 * M);
        assert_eq!(l.snap(100 * M), 10 * M);
        assert_eq!(Ladder::default().snap(3 * M), 3 * M);
    }
}
