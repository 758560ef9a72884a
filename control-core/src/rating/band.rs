//! Tariff bands (time of day and day of week, in the plan's local time: a fixed UTC
//! offset or an IANA zone with daylight saving) and the cutting of time intervals at every instant where a band starts or
//! ends, a rate becomes active, or a billing period begins, so that each piece is rated
//! at one rate.

use super::calendar::{DAY, WEEK, Zone, week_second};

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
/// two consecutive band edges. In a zone with daylight saving, local time jumps at each
/// switch, so an instant's week second is taken at the offset in force then, and time is
/// also cut at the switches (a night band 22:00-06:00 lasts 7 hours on the night clocks
/// go forward, 9 on the night they go back).
#[derive(Clone, Debug)]
pub struct BandClock {
    zone: Zone,
    /// Sorted week seconds where some band starts or ends; always holds 0.
    edges: Vec<i64>,
    /// For each edge, a bit per band (bands beyond 64 are refused by validation).
    covered: Vec<u64>,
}

/// Most bands a plan may define.
pub const MAX_BANDS: usize = 64;

impl BandClock {
    /// Builds the clock for `bands` in local time `zone`.
    pub fn new(bands: &[Band], zone: Zone) -> BandClock {
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
            zone,
            edges,
            covered,
        }
    }

    fn slot(&self, t: i64) -> (usize, i64) {
        let ws = week_second(t, self.zone.offset_at(t));
        let i = self.edges.partition_point(|e| *e <= ws) - 1;
        (i, ws)
    }

    /// Bit mask of the bands covering instant `t`.
    pub fn bands_at(&self, t: i64) -> u64 {
        self.covered[self.slot(t).0]
    }

    /// The first instant after `t` at which a band starts or ends, or the local offset
    /// changes (where a band may start or end too).
    pub fn next_edge(&self, t: i64) -> i64 {
        let (i, ws) = self.slot(t);
        let next = self.edges.get(i + 1).copied().unwrap_or(WEEK);
        let edge = t + (next - ws);
        match self.zone.next_change(t) {
            Some(c) => edge.min(c),
            None => edge,
        }
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
        let clock = BandClock::new(&bands, Zone::Fixed(7200));
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
            clock: BandClock::new(&bands, Zone::Fixed(0)),
            cuts: vec![parse_timestamp("2024-05-06T10:00:00Z").unwrap()],
        };
        let from = parse_timestamp("2024-05-06T07:00:00Z").unwrap();
        let to = parse_timestamp("2024-05-06T21:00:00Z").unwrap();
        let mut pieces = Vec::new();
        cutter.split(from, to, |a, b| pieces.push((b - a) / 3600));
        assert_eq!(pieces, vec![1, 2, 10, 1]);
    }

    /// Seconds of `[from, to)` that band `bit` covers, summed over the cutter's pieces.
    fn covered(cutter: &Cutter, bit: u64, from: &str, to: &str) -> i64 {
        let (from, to) = (parse_timestamp(from).unwrap(), parse_timestamp(to).unwrap());
        let mut sum = 0;
        cutter.split(from, to, |a, b| {
            if cutter.clock.bands_at(a) & bit != 0 {
                sum += b - a;
            }
        });
        sum
    }

    #[test]
    fn a_night_band_in_an_iana_zone_follows_daylight_saving() {
        let bands = vec![band("night", &["all"], 22, 6)];
        let berlin = Cutter {
            clock: BandClock::new(&bands, Zone::iana("Europe/Berlin").unwrap()),
            cuts: Vec::new(),
        };
        let fixed = Cutter {
            clock: BandClock::new(&bands, Zone::Fixed(3600)),
            cuts: Vec::new(),
        };
        // Saturday 22:00 to Sunday 06:00 local: clocks go forward on 2024-03-31 at 02:00
        // (7 hours) and back on 2024-10-27 at 03:00 (9 hours); an ordinary night is 8.
        let (a, b) = ("2024-03-30T12:00:00Z", "2024-03-31T12:00:00Z");
        assert_eq!(covered(&berlin, 1, a, b), 7 * 3600);
        assert_eq!(covered(&fixed, 1, a, b), 8 * 3600);
        let (a, b) = ("2024-10-26T12:00:00Z", "2024-10-27T12:00:00Z");
        assert_eq!(covered(&berlin, 1, a, b), 9 * 3600);
        assert_eq!(covered(&fixed, 1, a, b), 8 * 3600);
        // Summer: 22:00 CEST is 20:00 UTC.
        let t = parse_timestamp("2024-07-10T20:00:00Z").unwrap();
        assert_eq!(berlin.clock.bands_at(t), 1);
        assert_eq!(berlin.clock.bands_at(t - 1), 0);
        assert_eq!(berlin.clock.next_edge(t), t + 8 * 3600);
        // The band ends at 06:00 CEST on the Sunday clocks went forward (04:00 UTC).
        let end = parse_timestamp("2024-03-31T04:00:00Z").unwrap();
        assert_eq!(berlin.clock.bands_at(end - 1), 1);
        assert_eq!(berlin.clock.bands_at(end), 0);
    }
}
