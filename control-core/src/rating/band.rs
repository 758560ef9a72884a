//! Tariff bands (time of day and day of week, in local time at the plan's fixed UTC
//! offset) and the cutting of time intervals at every instant where a band starts or
//! ends, a rate becomes active, or a billing period begins, so that each piece is rated
//! at one rate.

use super::calendar::{DAY, WEEK, week_second};

/// Day names, Monday first, as written in the config.
pub const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// A named band: on the listed days, from `from` to `to` (local time). When `to` is not
/// after `from` the band runs past midnight into the next day (22:00-06:00); `from ==
/// to` covers the whole day.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Band {
    /// The operator's name (`peak`, `night`).
    pub name: String,
    /// Days on which the band starts, Monday first.
    pub days: [bool; 7],
    /// Start, minutes after local midnight.
    pub from_min: u32,
    /// End, minutes after local midnight (1440 = 24:00).
    pub to_min: u32,
}

impl Band {
    /// Parses the `days` list: day names (`mon`..`sun`), `weekdays`, `weekend` or `all`.
    pub fn parse_days(list: &[String]) -> Result<[bool; 7], String> {
        let mut days = [false; 7];
        if list.is_empty() {
            return Err("list at least one day (mon..sun, weekdays, weekend or all)".into());
        }
        for d in list {
            let d = d.to_ascii_lowercase();
            match d.as_str() {
                "all" => days = [true; 7],
                "weekdays" => days[..5].iter_mut().for_each(|x| *x = true),
                "weekend" => days[5..].iter_mut().for_each(|x| *x = true),
                _ => match DAY_NAMES.iter().position(|n| *n == d) {
                    Some(i) => days[i] = true,
                    None => {
                        return Err(format!(
                            "{d:?} is not a day: use mon, tue, wed, thu, fri, sat, sun, weekdays, weekend or all"
                        ));
                    }
                },
            }
        }
        Ok(days)
    }

    /// The pieces of the week the band covers, as `[start, end)` seconds after local
    /// Monday 00:00, each within `0..WEEK`.
    pub fn week_intervals(&self) -> Vec<(i64, i64)> {
        let from = i64::from(self.from_min) * 60;
        let to = i64::from(self.to_min) * 60;
        let len = if to > from {
            to - from
        } else {
            DAY - from + to
        };
        let mut out = Vec::new();
        for (d, on) in self.days.iter().enumerate() {
            if !on {
                continue;
            }
            let s = d as i64 * DAY + from;
            let e = s + len;
            if e <= WEEK {
                out.push((s, e));
            } else {
                out.push((s, WEEK));
                out.push((0, e - WEEK));
            }
        }
        out
    }

    /// True if the band covers local week second `ws` (`0..WEEK`).
    pub fn covers(&self, ws: i64) -> bool {
        self.week_intervals()
            .iter()
            .any(|(s, e)| *s <= ws && ws < *e)
    }

    /// True if the two bands cover a common minute.
    pub fn overlaps(&self, other: &Band) -> bool {
        let a = self.week_intervals();
        let b = other.week_intervals();
        a.iter()
            .any(|(s1, e1)| b.iter().any(|(s2, e2)| s1 < e2 && s2 < e1))
    }
}

/// Which band covers an instant, fast: the band set of each piece of the week between
/// two consecutive band edges.
#[derive(Clone, Debug)]
pub struct BandClock {
    offset_s: i64,
    /// Sorted week seconds where some band starts or ends; always holds 0.
    edges: Vec<i64>,
    /// For each edge, a bit per band (bands beyond 64 are refused by validation).
    covered: Vec<u64>,
}

/// Most bands a plan may define.
pub const MAX_BANDS: usize = 64;

impl BandClock {
    /// Builds the clock for `bands` at `offset_s` seconds east of UTC.
    pub fn new(bands: &[Band], offset_s: i64) -> BandClock {
        let mut edges = vec![0];
        for b in bands {
            for (s, e) in b.week_intervals() {
                edges.push(s);
                edges.push(e % WEEK);
            }
        }
        edges.sort_unstable();
        edges.dedup();
        let covered = edges
            .iter()
            .map(|&ws| {
                bands
                    .iter()
                    .enumerate()
                    .filter(|(_, b)| b.covers(ws))
                    .fold(0u64, |m, (i, _)| m | (1 << i))
            })
            .collect();
        BandClock {
            offset_s,
            edges,
            covered,
        }
    }

    fn slot(&self, t: i64) -> (usize, i64) {
        let ws = week_second(t, self.offset_s);
        let i = self.edges.partition_point(|e| *e <= ws) - 1;
        (i, ws)
    }

    /// Bit mask of the bands covering instant `t`.
    pub fn bands_at(&self, t: i64) -> u64 {
        self.covered[self.slot(t).0]
    }

    /// The first instant after `t` at which a band starts or ends.
    pub fn next_edge(&self, t: i64) -> i64 {
        let (i, ws) = self.slot(t);
        let next = self.edges.get(i + 1).copied().unwrap_or(WEEK);
        t + (next - ws)
    }
}

/// Cuts intervals into pieces on which nothing that rating depends on changes: band
/// edges, rate activation instants, and any extra cut points (period starts).
#[derive(Clone, Debug)]
pub struct Cutter {
    /// The bands.
    pub clock: BandClock,
    /// Sorted absolute instants (rate activations).
    pub cuts: Vec<i64>,
}

impl Cutter {
    /// Calls `f(a, b)` for consecutive pieces `[a, b)` covering `[from, to)`, cut at
    /// every band edge and every activation instant inside.
    pub fn split(&self, from: i64, to: i64, mut f: impl FnMut(i64, i64)) {
        let mut a = from;
        let mut k = self.cuts.partition_point(|c| *c <= a);
        while a < to {
            while self.cuts.get(k).is_some_and(|c| *c <= a) {
                k += 1;
            }
            let mut b = self.clock.next_edge(a).min(to);
            if let Some(&c) = self.cuts.get(k) {
                b = b.min(c);
            }
            f(a, b);
            a = b;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rating::calendar::parse_timestamp;

    fn band(name: &str, days: &[&str], from: u32, to: u32) -> Band {
        Band {
            name: name.into(),
            days: Band::parse_days(&days.iter().map(|d| d.to_string()).collect::<Vec<_>>())
                .unwrap(),
            from_min: from * 60,
            to_min: to * 60,
        }
    }

    #[test]
    fn night_band_wraps_past_midnight_and_sunday() {
        let night = band("night", &["all"], 22, 6);
        let iv = night.week_intervals();
        assert!(iv.contains(&(6 * DAY + 22 * 3600, WEEK)));
        assert!(iv.contains(&(0, 6 * 3600)));
        assert!(night.covers(3 * 3600));
        assert!(!night.covers(12 * 3600));
        let peak = band("peak", &["weekdays"], 8, 20);
        assert!(!peak.overlaps(&night));
        assert!(peak.overlaps(&band("x", &["fri"], 19, 23)));
        assert!(Band::parse_days(&["mon".into(), "funday".into()]).is_err());
    }

    #[test]
    fn clock_finds_bands_and_edges_at_an_offset() {
        let bands = vec![
            band("peak", &["weekdays"], 8, 20),
            band("night", &["all"], 20, 8),
        ];
        // UTC+2: Monday 2024-05-06 08:00 local is 06:00 UTC.
        let clock = BandClock::new(&bands, 7200);
        let t = parse_timestamp("2024-05-06T06:00:00Z").unwrap();
        assert_eq!(clock.bands_at(t), 0b01);
        assert_eq!(clock.bands_at(t - 1), 0b10);
        assert_eq!(clock.next_edge(t - 1), t);
        assert_eq!(clock.next_edge(t), t + 12 * 3600);
        // Saturday noon local is in no band.
        let sat = parse_timestamp("2024-05-11T10:00:00Z").unwrap();
        assert_eq!(clock.bands_at(sat), 0);
    }

    #[test]
    fn cutter_cuts_at_edges_and_activations() {
        let bands = vec![band("peak", &["weekdays"], 8, 20)];
        let cutter = Cutter {
            clock: BandClock::new(&bands, 0),
            cuts: vec![parse_timestamp("2024-05-06T10:00:00Z").unwrap()],
        };
        let from = parse_timestamp("2024-05-06T07:00:00Z").unwrap();
        let to = parse_timestamp("2024-05-06T21:00:00Z").unwrap();
        let mut pieces = Vec::new();
        cutter.split(from, to, |a, b| pieces.push((b - a) / 3600));
        assert_eq!(pieces, vec![1, 2, 10, 1]);
    }
}
