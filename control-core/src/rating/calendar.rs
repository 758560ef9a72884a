//! Wall-clock arithmetic for rating: Unix seconds, civil dates at a fixed UTC offset, the
//! week, and billing periods (calendar months in local time). No time-zone database:
//! tariffs are bound to one fixed offset (`rating.timezone_offset_minutes`).

use std::fmt;

/// Seconds in a day.
pub const DAY: i64 = 86_400;
/// Seconds in a week.
pub const WEEK: i64 = 7 * DAY;
/// 1970-01-05, the first Monday after the epoch, in days.
const FIRST_MONDAY: i64 = 4;

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = i64::from(m);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date (year, month, day) of a day number since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// Seconds since local Monday 00:00 of the instant `t` (UTC seconds) at `offset_s`.
pub fn week_second(t: i64, offset_s: i64) -> i64 {
    (t + offset_s - FIRST_MONDAY * DAY).rem_euclid(WEEK)
}

/// `2024-05-01T08:00:00Z` for a UTC instant.
pub fn format_utc(t: i64) -> String {
    let (y, m, d) = civil_from_days(t.div_euclid(DAY));
    let s = t.rem_euclid(DAY);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

fn num(s: &str, what: &str) -> Result<u32, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{what} {s:?} is not a number"));
    }
    s.parse()
        .map_err(|_| format!("{what} {s:?} is out of range"))
}

/// Parses `YYYY-MM-DD` into days since the epoch.
pub fn parse_date(s: &str) -> Result<i64, String> {
    let bad = || format!("{s:?} is not a date like 2024-05-01");
    let mut it = s.split('-');
    let (Some(y), Some(m), Some(d), None) = (it.next(), it.next(), it.next(), it.next()) else {
        return Err(bad());
    };
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return Err(bad());
    }
    let (y, m, d) = (num(y, "year")?, num(m, "month")?, num(d, "day")?);
    if !(1..=12).contains(&m) || d == 0 || d > days_in_month(i64::from(y), m) {
        return Err(format!("{s:?} is not a valid date"));
    }
    Ok(days_from_civil(i64::from(y), m, d))
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
    let days = parse_date(date)?;
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

    /// The period containing the instant `t` at `offset_s`.
    pub fn containing(t: i64, offset_s: i64) -> Period {
        let (y, m, _) = civil_from_days((t + offset_s).div_euclid(DAY));
        Period {
            year: y as i32,
            month: m,
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

    /// First second of the period (UTC seconds) at `offset_s`.
    pub fn start(self, offset_s: i64) -> i64 {
        days_from_civil(i64::from(self.year), self.month, 1) * DAY - offset_s
    }

    /// First second after the period.
    pub fn end(self, offset_s: i64) -> i64 {
        self.next().start(offset_s)
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
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2024, 5, 1), 19_844);
        for z in [-800_000, -1, 0, 59, 19_844, 30_000, 2_000_000] {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
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
        assert_eq!(format_utc(may.start(0)), "2024-05-01T00:00:00Z");
        assert_eq!(format_utc(may.start(7200)), "2024-04-30T22:00:00Z");
        assert_eq!(may.end(0) - may.start(0), 31 * DAY);
        assert_eq!(Period::containing(may.start(7200), 7200), may);
        assert_eq!(
            Period::containing(may.start(7200) - 1, 7200),
            may.previous()
        );
        assert!(Period::parse("2024-13").is_err());
        assert!(Period::parse("2024-5").is_err());
    }
}
