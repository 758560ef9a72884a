//! Declared-bandwidth charging (seed 004): the charge base of an interval is the integral
//! of the declared bandwidth over time, in bit/s × s (bits), exact in integers.
//!
//! * [`integral`] evaluates formulas (1)-(3) directly: for the interval `[t(i), t(i+1))`
//!   with change points `t(i1) < ... < t(im)` inside, `C(i) = X(i)(t(i1) - t(i)) +
//!   Σ X(ik)(t(i(k+1)) - t(ik)) + X(im)(t(i+1) - t(im))`.
//! * [`Meter`] is the accumulator of FIG. 1 (c): at every change and every periodic
//!   trigger it adds `B × T` (the bandwidth in force since the last trigger times the
//!   time since) to `C`; a reporting trigger hands `C` over and resets it. Rating drives
//!   one meter per session over the stored change points, with a reporting trigger at
//!   every band edge, so `C` lands in the band it was accumulated in (FIG. 1 (d)).
//! * [`sampled`] is the sampling variant (claim 2): every `T` seconds (at Unix times
//!   that are multiples of `T`) the bandwidth in force is sampled and `T × X` added.
//!
//! Before the first change point and after the session's end the bandwidth is 0.

/// From `at` on, the declared bandwidth is `bps` (until the next change point).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChangePoint {
    /// Unix seconds.
    pub at: i64,
    /// Bits per second.
    pub bps: u64,
}

/// The bandwidth in force at `t`: that of the last change point at or before `t`
/// (points sorted by time; of several at one instant the last counts).
pub fn bandwidth_at(points: &[ChangePoint], t: i64) -> u64 {
    let i = points.partition_point(|p| p.at <= t);
    if i == 0 { 0 } else { points[i - 1].bps }
}

/// Formulas (1)-(3): the exact integral of the bandwidth over `[from, to)`, in bits.
/// `points` must be sorted by time.
pub fn integral(points: &[ChangePoint], from: i64, to: i64) -> u128 {
    if to <= from {
        return 0;
    }
    // X(i): the bandwidth in force at t(i).
    let mut x = bandwidth_at(points, from);
    let mut t = from;
    let mut c: u128 = 0;
    let first = points.partition_point(|p| p.at <= from);
    for p in points[first..].iter().take_while(|p| p.at < to) {
        // X(ik) (t(i(k+1)) - t(ik)), or X(i)(t(i1) - t(i)) for the first.
        c += u128::from(x) * (p.at - t) as u128;
        x = p.bps;
        t = p.at;
    }
    // X(im) (t(i+1) - t(im)).
    c + u128::from(x) * (to - t) as u128
}

/// The sampling variant over `[from, to)`: the sum of `T × X(s)` over the sampling
/// instants `s` (multiples of `period_s`) inside.
pub fn sampled(points: &[ChangePoint], from: i64, to: i64, period_s: i64) -> u128 {
    if to <= from || period_s <= 0 {
        return 0;
    }
    let mut c = 0u128;
    // Pieces of constant bandwidth: count the sampling instants in each.
    let mut x = bandwidth_at(points, from);
    let mut t = from;
    let first = points.partition_point(|p| p.at <= from);
    for p in points[first..].iter().take_while(|p| p.at < to) {
        c += u128::from(x) * period_s as u128 * samples_in(t, p.at, period_s);
        x = p.bps;
        t = p.at;
    }
    c + u128::from(x) * period_s as u128 * samples_in(t, to, period_s)
}

/// How many multiples of `period_s` lie in `[a, b)`.
pub fn samples_in(a: i64, b: i64, period_s: i64) -> u128 {
    let ceil = |v: i64| v.div_euclid(period_s) + i64::from(v.rem_euclid(period_s) != 0);
    (ceil(b) - ceil(a)).max(0) as u128
}

/// The accumulator of FIG. 1 (c), one per session: bandwidth information `B`, time
/// information (the last trigger) and the accumulated value `C`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Meter {
    bps: u64,
    last: i64,
    c: u128,
}

impl Meter {
    /// A meter started at `at` with bandwidth `bps`.
    pub fn new(at: i64, bps: u64) -> Meter {
        Meter {
            bps,
            last: at,
            c: 0,
        }
    }

    /// The bandwidth in force.
    pub fn bandwidth(&self) -> u64 {
        self.bps
    }

    /// Steps S21-S25: `T = now - last`, `last = now`, `C += B × T`, then `B = bps`
    /// (a change trigger; a periodic trigger passes the unchanged bandwidth).
    pub fn change(&mut self, now: i64, bps: u64) {
        let t = (now - self.last).max(0) as u128;
        self.c += u128::from(self.bps) * t;
        self.last = self.last.max(now);
        self.bps = bps;
    }

    /// Steps S21-S28 for a reporting trigger: accumulate up to `now`, hand `C` over
    /// and reset it.
    pub fn report(&mut self, now: i64) -> u128 {
        self.change(now, self.bps);
        std::mem::take(&mut self.c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pts(v: &[(i64, u64)]) -> Vec<ChangePoint> {
        v.iter().map(|&(at, bps)| ChangePoint { at, bps }).collect()
    }

    #[test]
    fn formulas_one_two_three_by_hand() {
        // (1): constant 2 Mbit/s over [0, 3600): 7.2e9 bits.
        let h = pts(&[(0, 2_000_000)]);
        assert_eq!(integral(&h, 0, 3600), 7_200_000_000);
        // (2): one change inside: 2 Mbit/s for 600 s, then 10 Mbit/s for 3000 s.
        let h = pts(&[(0, 2_000_000), (600, 10_000_000)]);
        assert_eq!(integral(&h, 0, 3600), 2_000_000 * 600 + 10_000_000 * 3000);
        // (3): three changes inside [100, 1000): X(i)=1000 from before the interval.
        let h = pts(&[(0, 1000), (200, 5000), (500, 0), (700, 3000)]);
        assert_eq!(
            integral(&h, 100, 1000),
            1000 * 100 + 5000 * 300 + 3000 * 300
        );
        // Before the first change point nothing is declared.
        assert_eq!(integral(&h, -500, 0), 0);
        assert_eq!(integral(&h, 500, 500), 0);
    }

    #[test]
    fn sampling_variant_by_hand() {
        // Samples every 60 s at multiples of 60: 0, 60, ..., 540 in [0, 600).
        let h = pts(&[(0, 1000), (90, 2000)]);
        // Samples at 0 and 60 see 1000; 120..540 (8 samples) see 2000.
        assert_eq!(sampled(&h, 0, 600, 60), 60 * (2 * 1000 + 8 * 2000));
        // The exact integral differs: the change at 90 is not on a sample.
        assert_eq!(integral(&h, 0, 600), 1000 * 90 + 2000 * 510);
        assert_eq!(samples_in(-61, 0, 60), 1);
        assert_eq!(samples_in(1, 59, 60), 0);
        assert_eq!(samples_in(0, 1, 60), 1);
    }

    #[test]
    fn meter_follows_fig1() {
        let mut m = Meter::new(0, 1000);
        m.change(100, 3000); // C = 1000 × 100
        assert_eq!(m.report(150), 100_000 + 3000 * 50);
        assert_eq!(m.report(150), 0);
        m.change(200, 0);
        assert_eq!(m.report(1000), 3000 * 50);
        assert_eq!(m.bandwidth(), 0);
    }

    fn history() -> impl Strategy<Value = Vec<ChangePoint>> {
        prop::collection::vec((0i64..10_000, 0u64..10_000_000_000), 0..12).prop_map(|mut v| {
            v.sort_by_key(|p| p.0);
            v.into_iter()
                .map(|(at, bps)| ChangePoint { at, bps })
                .collect()
        })
    }

    proptest! {
        /// The integral is additive over any split of the interval.
        #[test]
        fn integral_is_additive(h in history(), a in -100i64..5000, m in 0i64..6000, l in 0i64..6000) {
            let b = a + m;
            let c = b + l;
            prop_assert_eq!(integral(&h, a, c), integral(&h, a, b) + integral(&h, b, c));
            prop_assert_eq!(sampled(&h, a, c, 7), sampled(&h, a, b, 7) + sampled(&h, b, c, 7));
        }

        /// A meter driven by the change points and any set of extra triggers reports in
        /// total exactly the integral: trigger timing does not matter.
        #[test]
        fn meter_is_independent_of_trigger_timing(
            h in history(),
            mut triggers in prop::collection::vec(0i64..12_000, 0..20),
        ) {
            let end = 12_000;
            triggers.sort_unstable();
            let mut m = Meter::new(0, 0);
            let mut reported = 0u128;
            let (mut i, mut j) = (0, 0);
            while i < h.len() || j < triggers.len() {
                if j >= triggers.len() || (i < h.len() && h[i].at <= triggers[j]) {
                    m.change(h[i].at, h[i].bps);
                    i += 1;
                } else {
                    reported += m.report(triggers[j]);
                    j += 1;
                }
            }
            reported += m.report(end);
            prop_assert_eq!(reported, integral(&h, 0, end));
        }
    }
}
