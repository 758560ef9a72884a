//! Wall-clock arithmetic for rating: Unix seconds, civil dates (jiff's proleptic
//! Gregorian calendar, the same one `crate::time` prints records with), the week, and
//! billing periods (calendar months in local time). Local time is a [`Zone`]: a fixed
//! offset (`rating.timezone_offset_minutes`) or an IANA zone (`rating.time_zone`) from
//! jiff's embedded copy of the time-zone database, so the core reads no file and an
//! invoice does not depend on the host's `/usr/share/zoneinfo`.

use std::fmt;

use jiff::Timestamp;
use jiff::civil::{Date, Time};
use jiff::tz::{Offset, TimeZone, TimeZoneDatabase};

/// Seconds in a day.
pub const DAY: i64 = 86_400;
/// Seconds in a week.
pub const WEEK: i64 = 7 * DAY;
/// 1970-01-05, the first Monday after the epoch, in days.
const FIRST_MONDAY: i64 = 4;

/// The jiff instant of Unix second `t`, saturated to jiff's range (years -9999 to 9999).
fn instant(t: i64) -> Timestamp {
    let t = t.clamp(Timestamp::MIN.as_second(), Timestamp::MAX.as_second());
    Timestamp::from_second(t).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// Days since 1970-01-01 of a date.
pub fn epoch_days(d: Date) -> i64 {
    let t = Offset::UTC
        .to_timestamp(d.to_datetime(Time::midnight()))
        .unwrap_or(Timestamp::MIN);
    t.as_second().div_euclid(DAY)
}

/// The UTC date of Unix day `days`.
pub fn date_of_days(days: i64) -> Date {
    Offset::UTC
        .to_datetime(instant(days.saturating_mul(DAY)))
        .date()
}

/// Local time of a rating plan: bands, activation dates and billing periods are in it.
#[derive(Clone, Debug, PartialEq)]
pub enum Zone {
    /// A fixed offset, seconds east of UTC: no daylight-saving changes.
    Fixed(i64),
    /// An IANA zone (`Europe/Berlin`) with its daylight-saving rules.
    Iana(TimeZone),
}

impl Zone {
    /// The IANA zone `name` from jiff's embedded database (case-insensitive).
    pub fn iana(name: &str) -> Result<Zone, String> {
        TimeZoneDatabase::bundled()
            .get(name)
            .map(Zone::Iana)
            .map_err(|_| format!("{name:?} is not an IANA time zone name like \"Europe/Berlin\""))
    }

    /// Local offset from UTC at the instant `t`, seconds east.
    pub fn offset_at(&self, t: i64) -> i64 {
        match self {
            Zone::Fixed(o) => *o,
            Zone::Iana(tz) => i64::from(tz.to_offset(instant(t)).seconds()),
        }
    }

    /// The first instant after `t` at which the local offset changes (a daylight-saving
    /// switch), if any.
    pub fn next_change(&self, t: i64) -> Option<i64> {
        match self {
            Zone::Fixed(_) => None,
            Zone::Iana(tz) => tz
                .following(instant(t))
                .map(|tr| tr.timestamp().as_second())
                .find(|s| *s > t),
        }
    }

    /// The local date of the instant `t`.
    pub fn date_of(&self, t: i64) -> Date {
        match self {
            Zone::Fixed(o) => date_of_days(t.saturating_add(*o).div_euclid(DAY)),
            Zone::Iana(tz) => tz.to_datetime(instant(t)).date(),
        }
    }

    /// The first instant of local date `d` (UTC seconds). Where a daylight-saving switch
    /// skips midnight, the day starts at the first local time after the gap.
    pub fn start_of(&self, d: Date) -> i64 {
        match self {
            Zone::Fixed(o) => epoch_days(d) * DAY - o,
            Zone::Iana(tz) => tz
                .to_ambiguous_timestamp(d.to_datetime(Time::midnight()))
                .compatible()
                .map_or(i64::MAX, |t| t.as_second()),
        }
    }
}

/// Seconds since local Monday 00:00 of the instant `t` (UTC seconds) at `offset_s`.
pub fn week_second(t: i64, offset_s: i64) -> i64 {
    (t + offset_s - FIRST_MONDAY * DAY).rem_euclid(WEEK)
}

/// `2024-05-01T08:00:00Z` for a UTC instant.
pub fn format_utc(t: i64) -> String {
    let dt = Offset::UTC.to_datetime(instant(t));
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    )
}

fn num(s: &str, what: &str) -> Result<u32, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{what} {s:?} is not a number"));
    }
    s.parse()
        .map_err(|_| format!("{what} {s:?} is out of range"))
}

/// Parses `YYYY-MM-DD`.
pub fn parse_date(s: &str) -> Result<Date, String> {
    let bad = || format!("{s:?} is not a date like 2024-05-01");
    let mut it = s.split('-');
    let (Some(y), Some(m), Some(d), None) = (it.next(), it.next(), it.next(), it.next()) else {
        return Err(bad());
    };
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return Err(bad());
    }
    let (y, m, d) = (num(y, "year")?, num(m, "month")?, num(d, "day")?);
    // Four digits and two digits: in range of i16 and i8.
    Date::new(y as i16, m as i8, d as i8).map_err(|_| format!("{s:?} is not a valid date"))
}

/// Parses `HH:MM` (00:00 to 24:00) into minutes after midnight.
pub fn parse_clock(s: &str) -> Result<u32, String> {
    let bad = || format!("{s:?} is not a time of day like 08:00 (00:00 to 24:00)");
    let (h, m) = s.split_once(':').ok_or_else(bad)?;
    if h.len() != 2 || m.len() != 2 {
        return Err(bad());
    }
    let (h, m) = (
        num(h, "hour").map_err(|_| bad())?,
        num(m, "minute").map_err(|_| bad())?,
    );
    if m >= 60 || h > 24 || (h == 24 && m != 0) {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

/// Parses a record time: RFC 3339 (`2024-05-01T08:00:00Z`, `2024-05-01T10:00:00+02:00`)
/// into Unix seconds. Fractions of a second are refused (rating counts whole seconds).
pub fn parse_timestamp(s: &str) -> Result<i64, String> {
    let bad = || format!("{s:?} is not a time like 2024-05-01T08:00:00Z");
    if s.len() < 20 {
        return Err(bad());
    }
    let (date, rest) = s.split_at(10);
    let days = epoch_days(parse_date(date)?);
    let rest = rest.strip_prefix(['T', 't', ' ']).ok_or_else(bad)?;
    if rest.len() < 9 {
        return Err(bad());
    }
    let (clock, zone) = rest.split_at(8);
    let b = clock.as_bytes();
    if b[2] != b':' || b[5] != b':' {
        return Err(bad());
    }
    let h = num(&clock[0..2], "hour").map_err(|_| bad())?;
    let mi = num(&clock[3..5], "minute").map_err(|_| bad())?;
    let se = num(&clock[6..8], "second").map_err(|_| bad())?;
    if h > 23 || mi > 59 || se > 59 {
        return Err(bad());
    }
    let offset = match zone {
        "Z" | "z" => 0,
        z if z.len() == 6 && (z.starts_with('+') || z.starts_with('-')) => {
            let m = parse_clock(&z[1..]).map_err(|_| bad())?;
            let m = i64::from(m) * 60;
            if z.starts_with('-') { -m } else { m }
        }
        _ => return Err(bad()),
    };
    Ok(days * DAY + i64::from(h * 3600 + mi * 60 + se) - offset)
}

/// A billing period: one calendar month in local time (`2024-05`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Period {
    /// Year.
    pub year: i32,
    /// Month, 1 to 12.
    pub month: u32,
}

impl Period {
    /// Parses `YYYY-MM`.
    pub fn parse(s: &str) -> Result<Period, String> {
        let bad = || format!("{s:?} is not a billing period like 2024-05");
        let (y, m) = s.split_once('-').ok_or_else(bad)?;
        if y.len() != 4 || m.len() != 2 {
            return Err(bad());
        }
        let year = num(y, "year").map_err(|_| bad())? as i32;
        let month = num(m, "month").map_err(|_| bad())?;
        if !(1..=12).contains(&month) {
            return Err(bad());
        }
        Ok(Period { year, month })
    }

    /// The period containing the instant `t` in `zone`.
    pub fn containing(t: i64, zone: &Zone) -> Period {
        let d = zone.date_of(t);
        Period {
            year: i32::from(d.year()),
            month: d.month() as u32,
        }
    }

    /// The period before this one.
    pub fn previous(self) -> Period {
        if self.month == 1 {
            Period {
                year: self.year - 1,
                month: 12,
            }
        } else {
            Period {
                year: self.year,
                month: self.month - 1,
            }
        }
    }

    /// The period after this one.
    pub fn next(self) -> Period {
        if self.month == 12 {
            Period {
                year: self.year + 1,
                month: 1,
            }
        } else {
            Period {
                year: self.year,
                month: self.month + 1,
            }
        }
    }

    /// First second of the period (UTC seconds) in `zone`.
    pub fn start(self, zone: &Zone) -> i64 {
        let first = i16::try_from(self.year)
            .ok()
            .and_then(|y| Date::new(y, self.month as i8, 1).ok());
        match first {
            Some(d) => zone.start_of(d),
            None if self.year < 0 => i64::MIN,
            None => i64::MAX,
        }
    }

    /// First second after the period.
    pub fn end(self, zone: &Zone) -> i64 {
        self.next().start(zone)
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip() {
        assert_eq!(epoch_days(parse_date("1970-01-01").unwrap()), 0);
        assert_eq!(epoch_days(parse_date("2024-05-01").unwrap()), 19_844);
        for z in [-800_000, -1, 0, 59, 19_844, 30_000, 2_000_000] {
            assert_eq!(epoch_days(date_of_days(z)), z);
        }
        assert_eq!(date_of_days(19_844).to_string(), "2024-05-01");
        assert!(parse_date("2023-02-29").is_err());
        assert!(parse_date("2024-02-29").is_ok());
        assert!(parse_date("2100-02-29").is_err());
        assert!(parse_date("2000-02-29").is_ok());
    }

    #[test]
    fn week_and_formats() {
        // 2024-05-06 was a Monday.
        let monday = parse_timestamp("2024-05-06T00:00:00Z").unwrap();
        assert_eq!(week_second(monday, 0), 0);
        assert_eq!(week_second(monday + 3600, 0), 3600);
        // At UTC+9, Sunday 2024-05-05 15:00 UTC is Monday 00:00 local.
        assert_eq!(week_second(monday - 9 * 3600, 9 * 3600), 0);
        assert_eq!(format_utc(monday), "2024-05-06T00:00:00Z");
        assert_eq!(
            parse_timestamp("2024-05-06T02:00:00+02:00").unwrap(),
            monday
        );
        assert!(parse_timestamp("2024-05-06T00:00:00.5Z").is_err());
        assert!(parse_timestamp("2024-02-30T00:00:00Z").is_err());
        assert_eq!(parse_clock("24:00").unwrap(), 1440);
        assert!(parse_clock("24:01").is_err());
        assert!(parse_clock("8:00").is_err());
    }

    #[test]
    fn periods() {
        let p = Period::parse("2024-12").unwrap();
        assert_eq!(p.to_string(), "2024-12");
        assert_eq!(p.next().to_string(), "2025-01");
        assert_eq!(p.next().previous(), p);
        let may = Period::parse("2024-05").unwrap();
        let (utc, plus2) = (&Zone::Fixed(0), &Zone::Fixed(7200));
        assert_eq!(format_utc(may.start(utc)), "2024-05-01T00:00:00Z");
        assert_eq!(format_utc(may.start(plus2)), "2024-04-30T22:00:00Z");
        assert_eq!(may.end(utc) - may.start(utc), 31 * DAY);
        assert_eq!(Period::containing(may.start(plus2), plus2), may);
        assert_eq!(
            Period::containing(may.start(plus2) - 1, plus2),
            may.previous()
        );
        assert!(Period::parse("2024-13").is_err());
        assert!(Period::parse("2024-5").is_err());
    }

    #[test]
    fn an_iana_zone_follows_daylight_saving() {
        let berlin = &Zone::iana("Europe/Berlin").unwrap();
        assert!(Zone::iana("Europe/Nowhere").is_err());
        // March 2024 starts at CET (+01:00), April at CEST (+02:00).
        let march = Period::parse("2024-03").unwrap();
        assert_eq!(format_utc(march.start(berlin)), "2024-02-29T23:00:00Z");
        assert_eq!(format_utc(march.end(berlin)), "2024-03-31T22:00:00Z");
        // 31 days less the hour skipped on 2024-03-31.
        assert_eq!(march.end(berlin) - march.start(berlin), 31 * DAY - 3600);
        let switch = parse_timestamp("2024-03-31T01:00:00Z").unwrap();
        assert_eq!(berlin.offset_at(switch - 1), 3600);
        assert_eq!(berlin.offset_at(switch), 7200);
        assert_eq!(berlin.next_change(switch - 3600), Some(switch));
        assert_eq!(
            berlin.next_change(switch),
            Some(parse_timestamp("2024-10-27T01:00:00Z").unwrap())
        );
        assert_eq!(Zone::Fixed(3600).next_change(switch), None);
        assert_eq!(Period::containing(march.end(berlin) - 1, berlin), march);
        assert_eq!(Period::containing(march.end(berlin), berlin), march.next());
    }
}
