//! Calendar dates in China Standard Time (FORMAT.md § Dates).
//!
//! A [`Date`] is a proleptic Gregorian date written `YYYY-MM-DD` (exactly ten
//! characters, years 1970 to 9999). Arithmetic goes through the number of
//! days since 1970-01-01. An event's claimed time (Unix milliseconds) maps to
//! a date in UTC+8.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::Error;

/// Seconds east of UTC of China Standard Time.
pub const CST_OFFSET_SECONDS: i64 = 8 * 3600;

/// A calendar date, 1970-01-01 to 9999-12-31.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Date {
    year: i32,
    month: u8,
    day: u8,
}

/// Day of the week.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Weekday {
    /// Monday.
    Mon,
    /// Tuesday.
    Tue,
    /// Wednesday.
    Wed,
    /// Thursday.
    Thu,
    /// Friday.
    Fri,
    /// Saturday.
    Sat,
    /// Sunday.
    Sun,
}

impl Weekday {
    /// Saturday or Sunday.
    pub fn is_weekend(self) -> bool {
        matches!(self, Weekday::Sat | Weekday::Sun)
    }
}

fn is_leap(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i32, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        _ => 28,
    }
}

impl Date {
    /// Builds a date from its parts.
    ///
    /// # Errors
    /// [`Error::InvalidDate`] if the date does not exist or is outside
    /// 1970-01-01..=9999-12-31.
    pub fn new(year: i32, month: u8, day: u8) -> Result<Date, Error> {
        let fail = |reason| Error::InvalidDate {
            text: format!("{year:04}-{month:02}-{day:02}"),
            reason,
        };
        if !(1970..=9999).contains(&year) {
            return Err(fail("year outside 1970..=9999"));
        }
        if !(1..=12).contains(&month) {
            return Err(fail("no such month"));
        }
        if day == 0 || day > days_in_month(year, month) {
            return Err(fail("no such day"));
        }
        Ok(Date { year, month, day })
    }

    /// Parses exactly `YYYY-MM-DD`.
    ///
    /// # Errors
    /// [`Error::InvalidDate`] on any other text or an impossible date.
    pub fn parse(text: &str) -> Result<Date, Error> {
        let b = text.as_bytes();
        let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
        if b.len() != 10
            || b[4] != b'-'
            || b[7] != b'-'
            || !digits(0..4)
            || !digits(5..7)
            || !digits(8..10)
        {
            return Err(Error::InvalidDate {
                text: text.chars().take(40).collect(),
                reason: "expected YYYY-MM-DD",
            });
        }
        let num =
            |r: std::ops::Range<usize>| b[r].iter().fold(0i32, |n, d| n * 10 + i32::from(d - b'0'));
        // Both values are two decimal digits, so they fit in u8.
        Date::new(num(0..4), num(5..7) as u8, num(8..10) as u8)
    }

    /// The year.
    pub fn year(self) -> i32 {
        self.year
    }

    /// The month, 1 to 12.
    pub fn month(self) -> u8 {
        self.month
    }

    /// The day of the month, 1 to 31.
    pub fn day(self) -> u8 {
        self.day
    }

    /// Days since 1970-01-01 (Howard Hinnant's `days_from_civil`).
    pub fn days_since_epoch(self) -> i64 {
        let y = i64::from(self.year) - i64::from(self.month <= 2);
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let m = i64::from(self.month);
        let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(self.day) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    /// The date `days` days after 1970-01-01.
    ///
    /// # Errors
    /// [`Error::InvalidDate`] outside the supported range.
    pub fn from_days_since_epoch(days: i64) -> Result<Date, Error> {
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        let year = i32::try_from(year).map_err(|_| Error::InvalidDate {
            text: format!("day {days}"),
            reason: "year out of range",
        })?;
        // month is 1..=12 and day 1..=31 by construction.
        Date::new(year, month as u8, day as u8)
    }

    /// The calendar date in China Standard Time of a Unix time in milliseconds.
    ///
    /// # Errors
    /// [`Error::InvalidDate`] past 9999-12-31.
    pub fn from_unix_ms_cst(ms: u64) -> Result<Date, Error> {
        let secs = i64::try_from(ms / 1000).unwrap_or(i64::MAX / 2) + CST_OFFSET_SECONDS;
        Date::from_days_since_epoch(secs.div_euclid(86_400))
    }

    /// Unix milliseconds of midnight at the start of this date, CST.
    pub fn start_unix_ms_cst(self) -> i64 {
        (self.days_since_epoch() * 86_400 - CST_OFFSET_SECONDS) * 1000
    }

    /// The day of the week.
    pub fn weekday(self) -> Weekday {
        // 1970-01-01 was a Thursday.
        const DAYS: [Weekday; 7] = [
            Weekday::Thu,
            Weekday::Fri,
            Weekday::Sat,
            Weekday::Sun,
            Weekday::Mon,
            Weekday::Tue,
            Weekday::Wed,
        ];
        DAYS[self.days_since_epoch().rem_euclid(7) as usize]
    }

    /// The next day.
    ///
    /// # Errors
    /// [`Error::InvalidDate`] after 9999-12-31.
    pub fn succ(self) -> Result<Date, Error> {
        // Deadlines walk day by day, so avoid the round trip through days
        // since the epoch: only the last day of a month needs more.
        if self.day < days_in_month(self.year, self.month) {
            return Ok(Date {
                day: self.day + 1,
                ..self
            });
        }
        if self.month < 12 {
            return Ok(Date {
                month: self.month + 1,
                day: 1,
                ..self
            });
        }
        Date::new(self.year + 1, 1, 1)
    }

    /// The date `n` calendar days later (or earlier, for negative `n`).
    ///
    /// # Errors
    /// [`Error::InvalidDate`] outside the supported range.
    pub fn add_days(self, n: i64) -> Result<Date, Error> {
        Date::from_days_since_epoch(self.days_since_epoch() + n)
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

impl fmt::Debug for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Date({self})")
    }
}

impl std::str::FromStr for Date {
    type Err = Error;
    fn from_str(s: &str) -> Result<Date, Error> {
        Date::parse(s)
    }
}

impl Serialize for Date {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Date {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Date, D::Error> {
        let text = String::deserialize(d)?;
        Date::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_print() {
        let d = Date::parse("2024-02-29").unwrap();
        assert_eq!((d.year(), d.month(), d.day()), (2024, 2, 29));
        assert_eq!(d.to_string(), "2024-02-29");
        for bad in [
            "2023-02-29",
            "2024-13-01",
            "2024-00-10",
            "2024-1-01",
            "2024-01-1",
            "2024/01/01",
            "20240101",
            "2024-01-01 ",
            "+024-01-01",
            "1969-12-31",
            "2024-04-31",
        ] {
            assert!(Date::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn epoch_round_trip_every_day() {
        let mut d = Date::new(1970, 1, 1).unwrap();
        for n in 0..(366 * 80) {
            assert_eq!(d.days_since_epoch(), n);
            assert_eq!(Date::from_days_since_epoch(n).unwrap(), d);
            d = d.succ().unwrap();
        }
        // `succ` steps within the month without the round trip; at the end
        // of the range it fails like the round trip does.
        assert!(Date::new(9999, 12, 31).unwrap().succ().is_err());
        assert_eq!(
            Date::new(9998, 12, 31).unwrap().succ().unwrap(),
            Date::new(9999, 1, 1).unwrap()
        );
    }

    #[test]
    fn weekdays_and_cst() {
        assert_eq!(Date::parse("2026-11-27").unwrap().weekday(), Weekday::Fri);
        assert_eq!(Date::parse("2024-10-01").unwrap().weekday(), Weekday::Tue);
        // 2026-01-01T16:00:00Z is already 2026-01-02 in Beijing.
        assert_eq!(
            Date::from_unix_ms_cst(1_767_283_200_000)
                .unwrap()
                .to_string(),
            "2026-01-02"
        );
        assert_eq!(
            Date::from_unix_ms_cst(1_767_283_199_999)
                .unwrap()
                .to_string(),
            "2026-01-01"
        );
        let d = Date::parse("2026-01-02").unwrap();
        assert_eq!(d.start_unix_ms_cst(), 1_767_283_200_000);
    }
}
