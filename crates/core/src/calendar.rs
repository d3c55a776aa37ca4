//! Working days in mainland China, and the deadlines that count them
//! (FORMAT.md § Working days).
//!
//! The Regulations on Open Government Information count in working days:
//! proactive disclosure is due within 20 working days of the information
//! being formed or changed (Article 26), a request must be answered within 20
//! working days, extendable once by 20 (Article 33). China moves weekend
//! working days around its public holidays, so "working day" needs a table:
//! [`WorkCalendar`] reads one, and [`WorkCalendar::shipped`] is the table
//! compiled into the crate from `docs/calendar/holidays-cn.txt` (the
//! normative table of FORMAT.md § 14.1, kept once, beside the spec), which
//! transcribes the State Council General Office's yearly notices
//! (国务院办公厅关于YYYY年部分节假日安排的通知) and is cross-checked day by day
//! against the PyPI package `chinesecalendar` by
//! `tests/calendar_crosscheck.rs`.
//!
//! A year the table does not cover cannot be computed:
//! [`Error::CalendarYearNotCovered`], never a guess.
//!
//! Counting convention: "within n working days of date d" means on or before
//! the n-th working day strictly after d (d itself does not count, whatever
//! day it is).
//!
//! The module also holds the two things built on working days:
//!
//! * [`RequestClock`]: the answer deadline of a disclosure request, folded
//!   event by event (clarification, third-party consultation, extension);
//! * [`Period`] and [`WorkCalendar::periods_due`]: the periods of periodic
//!   matters and the date each period's disclosure falls due.
//!
//! ```
//! use gongkai_core::calendar::WorkCalendar;
//! use gongkai_core::date::Date;
//!
//! let cal = WorkCalendar::shipped();
//! // Sunday 2024-02-04 was a working day (调休上班) before the Spring Festival.
//! assert!(cal.is_working_day(Date::parse("2024-02-04")?)?);
//! // Five working days after 2026-02-10 skip the nine-day Spring Festival.
//! let due = cal.add_working_days(Date::parse("2026-02-10")?, 5)?;
//! assert_eq!(due.to_string(), "2026-02-24");
//! # Ok::<(), gongkai_core::Error>(())
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::Error;
use crate::date::Date;

pub mod published;

/// The shipped holiday table (format described in its header).
/// The one copy is `docs/calendar/holidays-cn.txt`, part of the format.
pub const SHIPPED_TABLE: &str = include_str!("../../../docs/calendar/holidays-cn.txt");

/// Working days to answer a disclosure request (Article 33, paragraph 2).
pub const ANSWER_WORKING_DAYS: u32 = 20;

/// Working days one extension adds to a request's deadline (Article 33).
pub const EXTENSION_WORKING_DAYS: u32 = 20;

// ---------------------------------------------------------------------------
// The calendar.

/// Which days of which years are working days, read from a holiday table.
///
/// Built by [`WorkCalendar::parse`]; once built, every covered year is
/// complete and consistent. The table format is described in the header of
/// `docs/calendar/holidays-cn.txt` and in FORMAT.md.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkCalendar {
    years: BTreeMap<i32, YearDays>,
    /// Where each covered year's table comes from.
    sources: BTreeMap<i32, TableSource>,
}

/// Where the table of one year comes from: the seed compiled into the
/// binary, or a version the county published on its log (FORMAT.md
/// § 14.4). Every judgement names the sources of the years it used.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableSource {
    /// 0 for the seed table, else the published version (1, 2, …).
    pub version: u32,
    /// The notice the table transcribes (empty for the seed: its notices
    /// are cited in `holidays-cn.txt`).
    pub notice: String,
    /// Index of the county log leaf that published it (`None`: the seed).
    pub county_index: Option<u64>,
}

impl fmt::Display for TableSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.county_index {
            None => f.write_str("seed table"),
            Some(index) => write!(
                f,
                "v{} ({}, county leaf {index})",
                self.version, self.notice
            ),
        }
    }
}

/// The working-day flags of one covered year.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct YearDays {
    /// Days since the epoch of 1 January.
    jan1: i64,
    /// One flag per day of the year, 1 January first.
    working: Vec<bool>,
}

/// What a table line says about its dates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mark {
    Holiday,
    Workday,
}

/// The year block being read.
struct Block {
    year: i32,
    /// Line of the `year` statement.
    line: usize,
    days: YearDays,
    marks: BTreeMap<Date, Mark>,
    /// Last date listed so far (for the ascending-order rule).
    last: Option<Date>,
}

impl Block {
    fn new(year: i32, line: usize) -> Result<Block, Error> {
        let jan1 = Date::new(year, 1, 1).map_err(|e| Error::HolidayTable {
            line,
            reason: e.to_string(),
        })?;
        let mut working = Vec::with_capacity(366);
        let mut day = jan1;
        while day.year() == year {
            working.push(!day.weekday().is_weekend());
            if year == 9999 && day.month() == 12 && day.day() == 31 {
                break;
            }
            day = day.succ().map_err(|e| Error::HolidayTable {
                line,
                reason: e.to_string(),
            })?;
        }
        Ok(Block {
            year,
            line,
            days: YearDays {
                jan1: jan1.days_since_epoch(),
                working,
            },
            marks: BTreeMap::new(),
            last: None,
        })
    }

    fn mark(&mut self, line: usize, mark: Mark, first: Date, last: Date) -> Result<(), Error> {
        let fail = |reason: String| Error::HolidayTable { line, reason };
        if last < first {
            return Err(fail(format!("range {first}..{last} ends before it starts")));
        }
        let mut day = first;
        loop {
            if day.year() != self.year {
                return Err(fail(format!(
                    "{day} is outside the block of year {}",
                    self.year
                )));
            }
            match self.marks.get(&day) {
                Some(m) if *m == mark => return Err(fail(format!("{day} is listed twice"))),
                Some(_) => {
                    return Err(fail(format!(
                        "{day} is listed both as holiday and as workday"
                    )));
                }
                None => {}
            }
            if mark == Mark::Workday && !day.weekday().is_weekend() {
                return Err(fail(format!(
                    "workday {day} is a {:?}: only a Saturday or Sunday can be an adjusted working day",
                    day.weekday()
                )));
            }
            self.marks.insert(day, mark);
            // Index within the year; the year check above keeps it in range.
            let index = (day.days_since_epoch() - self.days.jan1) as usize;
            self.days.working[index] = mark == Mark::Workday;
            if day == last {
                break;
            }
            day = day.succ().map_err(|e| fail(e.to_string()))?;
        }
        if let Some(prev) = self.last
            && first <= prev
        {
            return Err(fail(format!(
                "dates out of ascending order: {first} comes after {prev}"
            )));
        }
        self.last = Some(last);
        Ok(())
    }
}

impl WorkCalendar {
    /// Parses a holiday table.
    ///
    /// The format: `#` starts a comment (to the end of the line); blank lines
    /// are ignored; every other line is one statement of two tokens
    /// separated by spaces or tabs:
    ///
    /// * `year YYYY` opens the block of one year (blocks in strictly
    ///   ascending order, each with at least one date);
    /// * `holiday D` or `holiday D1..D2` (inclusive range) marks days off;
    /// * `workday D` or `workday D1..D2` marks Saturdays or Sundays that are
    ///   working days.
    ///
    /// Inside a block, dates belong to the block's year, are listed in
    /// ascending order, and appear once. A covered year's other days follow
    /// the rule "Monday to Friday work, Saturday and Sunday rest".
    ///
    /// # Errors
    /// [`Error::HolidayTable`] with the 1-based line number for any
    /// malformed statement, a date outside its year block, a duplicate date,
    /// a date both holiday and workday, a workday on Monday to Friday, dates
    /// or years out of order, an empty year block or a table with no year.
    pub fn parse(text: &str) -> Result<WorkCalendar, Error> {
        let mut years = BTreeMap::new();
        let mut block: Option<Block> = None;
        let mut lines = 0;
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            lines = line;
            let fail = |reason: String| Error::HolidayTable { line, reason };
            let content = raw.split('#').next().unwrap_or("");
            let tokens: Vec<&str> = content.split_ascii_whitespace().collect();
            let (keyword, value) = match tokens.as_slice() {
                [] => continue,
                [keyword, value] => (*keyword, *value),
                _ => {
                    return Err(fail(
                        "expected `year YYYY`, `holiday DATE[..DATE]` or `workday DATE[..DATE]`"
                            .into(),
                    ));
                }
            };
            match keyword {
                "year" => {
                    let year = parse_year(value).ok_or_else(|| {
                        fail(format!("{value:?} is not a year from 1970 to 9999"))
                    })?;
                    if let Some(done) = block.take() {
                        finish(&mut years, done)?;
                    }
                    if let Some((&prev, _)) = years.last_key_value()
                        && year <= prev
                    {
                        return Err(fail(format!(
                            "year {year} comes after year {prev}: blocks must be in ascending order, once each"
                        )));
                    }
                    block = Some(Block::new(year, line)?);
                }
                "holiday" | "workday" => {
                    let current = block
                        .as_mut()
                        .ok_or_else(|| fail(format!("`{keyword}` before any `year` line")))?;
                    let (first, last) = match value.split_once("..") {
                        Some((a, b)) => (parse_date(a, line)?, parse_date(b, line)?),
                        None => {
                            let d = parse_date(value, line)?;
                            (d, d)
                        }
                    };
                    let mark = if keyword == "holiday" {
                        Mark::Holiday
                    } else {
                        Mark::Workday
                    };
                    current.mark(line, mark, first, last)?;
                }
                other => {
                    return Err(fail(format!(
                        "unknown statement {:?}",
                        other.chars().take(40).collect::<String>()
                    )));
                }
            }
        }
        match block {
            Some(done) => finish(&mut years, done)?,
            None => {
                return Err(Error::HolidayTable {
                    line: lines.max(1),
                    reason: "the table covers no year".into(),
                });
            }
        }
        let sources = years
            .keys()
            .map(|&y| {
                let seed = TableSource {
                    version: 0,
                    notice: String::new(),
                    county_index: None,
                };
                (y, seed)
            })
            .collect();
        Ok(WorkCalendar { years, sources })
    }

    /// This calendar with the year of `table` replaced (or added) by the
    /// published table, whose source is recorded for judgements.
    pub fn overlay(&mut self, table: &published::CalendarTable, county_index: u64) {
        let year = table.year();
        self.years.insert(year, table.days().clone());
        self.sources.insert(
            year,
            TableSource {
                version: table.version(),
                notice: table.notice().to_owned(),
                county_index: Some(county_index),
            },
        );
    }

    /// The source of a covered year's table.
    pub fn source(&self, year: i32) -> Option<&TableSource> {
        self.sources.get(&year)
    }

    /// The tables a judgement about the days from `from` to `to` used, in
    /// words: `"calendar 2026 seed table, 2027 v1 (国办发明电〔2026〕N号,
    /// county leaf 41)"`. Years the calendar does not cover are left out
    /// (such a judgement could not be made).
    pub fn describe(&self, from: Date, to: Date) -> String {
        let (a, b) = if from <= to { (from, to) } else { (to, from) };
        let parts: Vec<String> = (a.year()..=b.year())
            .filter_map(|y| self.sources.get(&y).map(|s| format!("{y} {s}")))
            .collect();
        format!("calendar {}", parts.join(", "))
    }

    /// The calendar of the shipped table ([`SHIPPED_TABLE`]), parsed once.
    pub fn shipped() -> &'static WorkCalendar {
        static SHIPPED: OnceLock<WorkCalendar> = OnceLock::new();
        SHIPPED.get_or_init(|| {
            WorkCalendar::parse(SHIPPED_TABLE)
                .expect("the shipped holiday table parses (tested by calendar::tests)")
        })
    }

    /// Whether the table has the data for `year`.
    pub fn covers(&self, year: i32) -> bool {
        self.years.contains_key(&year)
    }

    /// The first covered year.
    pub fn first_year(&self) -> i32 {
        // A parsed calendar covers at least one year.
        self.years.keys().next().copied().unwrap_or_default()
    }

    /// The last covered year.
    pub fn last_year(&self) -> i32 {
        self.years.keys().next_back().copied().unwrap_or_default()
    }

    /// Every covered year, ascending.
    pub fn years(&self) -> impl Iterator<Item = i32> + '_ {
        self.years.keys().copied()
    }

    /// Whether `date` is a working day.
    ///
    /// # Errors
    /// [`Error::CalendarYearNotCovered`] if the table has no data for the
    /// date's year.
    pub fn is_working_day(&self, date: Date) -> Result<bool, Error> {
        let year = self
            .years
            .get(&date.year())
            .ok_or(Error::CalendarYearNotCovered { year: date.year() })?;
        // A covered year has one flag per day, so the index is in range.
        let index = (date.days_since_epoch() - year.jan1) as usize;
        Ok(year.working[index])
    }

    /// The `n`-th working day strictly after `date` (`date` itself never
    /// counts); `n = 0` gives `date`.
    ///
    /// # Errors
    /// [`Error::CalendarYearNotCovered`] if a day that must be examined lies
    /// in a year the table does not cover.
    pub fn add_working_days(&self, date: Date, n: u32) -> Result<Date, Error> {
        let mut day = date;
        let mut left = n;
        while left > 0 {
            day = day.succ()?;
            if self.is_working_day(day)? {
                left -= 1;
            }
        }
        Ok(day)
    }

    /// The due date of a proactive disclosure: `deadline_working_days`
    /// working days after the date the information was formed or changed
    /// (`Published.date_formed`, `Amended.date_changed`).
    ///
    /// # Errors
    /// As [`WorkCalendar::add_working_days`].
    pub fn disclosure_due(
        &self,
        formed_or_changed: Date,
        deadline_working_days: u32,
    ) -> Result<Date, Error> {
        self.add_working_days(formed_or_changed, deadline_working_days)
    }

    /// The number of working days in `(from, to]`; negative (minus the
    /// working days in `(to, from]`) when `to` is before `from`. With a due
    /// date and an answer date, a positive result is how many working days
    /// late the answer was.
    ///
    /// # Errors
    /// [`Error::CalendarYearNotCovered`] if a day in between lies in a year
    /// the table does not cover.
    pub fn working_days_between(&self, from: Date, to: Date) -> Result<i64, Error> {
        let (start, end, sign) = if from <= to {
            (from, to, 1)
        } else {
            (to, from, -1)
        };
        let mut count = 0i64;
        let mut day = start;
        while day < end {
            day = day.succ()?;
            if self.is_working_day(day)? {
                count += 1;
            }
        }
        Ok(sign * count)
    }

    /// Every period of a periodic matter whose disclosure is due on or
    /// before `as_of`, with its due date: starting with the period that
    /// contains `periods_from`, each period's due date is
    /// `deadline_working_days` working days after its last day. The auditor
    /// compares this list with the `Published` items of the matter to find
    /// missing disclosures.
    ///
    /// # Errors
    /// [`Error::CalendarYearNotCovered`] if a day up to `as_of` that must be
    /// examined lies in a year the table does not cover.
    pub fn periods_due(
        &self,
        periodicity: Periodicity,
        periods_from: Date,
        deadline_working_days: u32,
        as_of: Date,
    ) -> Result<Vec<(Period, Date)>, Error> {
        let mut due = Vec::new();
        let mut period = Period::containing(periods_from, periodicity);
        loop {
            let last = period.last_day();
            if last > as_of {
                break;
            }
            match self.walk(last, deadline_working_days, |_| false, |d| d > as_of)? {
                Some(date) => due.push((period, date)),
                None => break,
            }
            match period.next() {
                Some(next) => period = next,
                None => break,
            }
        }
        Ok(due)
    }

    /// The `n`-th working day strictly after `from` that is not `skip`ped;
    /// `None` as soon as a day to examine is one where `stop` holds.
    fn walk(
        &self,
        from: Date,
        n: u32,
        skip: impl Fn(Date) -> bool,
        stop: impl Fn(Date) -> bool,
    ) -> Result<Option<Date>, Error> {
        let mut day = from;
        let mut left = n;
        while left > 0 {
            day = day.succ()?;
            if stop(day) {
                return Ok(None);
            }
            if !skip(day) && self.is_working_day(day)? {
                left -= 1;
            }
        }
        Ok(Some(day))
    }
}

fn finish(years: &mut BTreeMap<i32, YearDays>, block: Block) -> Result<(), Error> {
    if block.marks.is_empty() {
        return Err(Error::HolidayTable {
            line: block.line,
            reason: format!("year {} lists no date", block.year),
        });
    }
    years.insert(block.year, block.days);
    Ok(())
}

fn parse_year(text: &str) -> Option<i32> {
    if text.len() != 4 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let year: i32 = text.parse().ok()?;
    (1970..=9999).contains(&year).then_some(year)
}

fn parse_date(text: &str, line: usize) -> Result<Date, Error> {
    Date::parse(text).map_err(|e| Error::HolidayTable {
        line,
        reason: e.to_string(),
    })
}

// ---------------------------------------------------------------------------
// Periods of periodic matters.

/// How often a periodic matter is disclosed (`Matter.periodicity`, without
/// its "not periodic" value).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Periodicity {
    /// Every month: periods `YYYY-01` to `YYYY-12`.
    Monthly,
    /// Every quarter: `YYYY-Q1` to `YYYY-Q4`.
    Quarterly,
    /// Every half year: `YYYY-H1`, `YYYY-H2`.
    HalfYearly,
    /// Every year: `YYYY`.
    Yearly,
}

impl Periodicity {
    /// Months in one period.
    pub fn months(self) -> u8 {
        match self {
            Periodicity::Monthly => 1,
            Periodicity::Quarterly => 3,
            Periodicity::HalfYearly => 6,
            Periodicity::Yearly => 12,
        }
    }

    /// Periods in one year.
    pub fn periods_per_year(self) -> u8 {
        12 / self.months()
    }
}

/// One period of a periodic matter, written as in `Published.period`:
/// `2026` (yearly), `2026-H1`/`H2`, `2026-Q1`..`Q4`, `2026-01`..`12`.
///
/// Serialized as its label.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Period {
    year: i32,
    periodicity: Periodicity,
    /// 1-based position within the year.
    index: u8,
}

impl Period {
    /// Parses a period label, strictly: exactly one of the four forms, years
    /// 1970 to 9999, upper-case `H`/`Q`, two-digit months.
    ///
    /// # Errors
    /// [`Error::InvalidPeriod`] for anything else.
    pub fn parse(label: &str) -> Result<Period, Error> {
        let fail = |reason| Error::InvalidPeriod {
            label: label.chars().take(40).collect(),
            reason,
        };
        let year_text = label.get(..4).ok_or(fail("expected YYYY[-Hn|-Qn|-MM]"))?;
        let year = parse_year(year_text).ok_or(fail("expected a year from 1970 to 9999"))?;
        let rest = &label[4..];
        let (periodicity, index) = match rest.as_bytes() {
            [] => (Periodicity::Yearly, 1),
            [b'-', b'H', n] => match n {
                b'1' | b'2' => (Periodicity::HalfYearly, n - b'0'),
                _ => return Err(fail("no such half-year (H1 or H2)")),
            },
            [b'-', b'Q', n] => match n {
                b'1'..=b'4' => (Periodicity::Quarterly, n - b'0'),
                _ => return Err(fail("no such quarter (Q1 to Q4)")),
            },
            [b'-', a, b] if a.is_ascii_digit() && b.is_ascii_digit() => {
                let month = (a - b'0') * 10 + (b - b'0');
                if !(1..=12).contains(&month) {
                    return Err(fail("no such month (01 to 12)"));
                }
                (Periodicity::Monthly, month)
            }
            _ => return Err(fail("expected YYYY, YYYY-Hn, YYYY-Qn or YYYY-MM")),
        };
        Ok(Period {
            year,
            periodicity,
            index,
        })
    }

    /// The period of the given periodicity that contains `date`.
    pub fn containing(date: Date, periodicity: Periodicity) -> Period {
        Period {
            year: date.year(),
            periodicity,
            index: (date.month() - 1) / periodicity.months() + 1,
        }
    }

    /// The year.
    pub fn year(self) -> i32 {
        self.year
    }

    /// The periodicity this period belongs to.
    pub fn periodicity(self) -> Periodicity {
        self.periodicity
    }

    /// The first day of the period.
    pub fn first_day(self) -> Date {
        let month = (self.index - 1) * self.periodicity.months() + 1;
        Date::new(self.year, month, 1)
            .expect("a period's year is 1970..=9999 and its months 1..=12")
    }

    /// The last day of the period.
    pub fn last_day(self) -> Date {
        let end_month = self.index * self.periodicity.months();
        let date = if end_month == 12 {
            Date::new(self.year, 12, 31)
        } else {
            Date::new(self.year, end_month + 1, 1).and_then(|d| d.add_days(-1))
        };
        date.expect("a period's year is 1970..=9999 and its months 1..=12")
    }

    /// The period that follows, or `None` after 9999.
    pub fn next(self) -> Option<Period> {
        if self.index < self.periodicity.periods_per_year() {
            Some(Period {
                index: self.index + 1,
                ..self
            })
        } else if self.year < 9999 {
            Some(Period {
                year: self.year + 1,
                index: 1,
                ..self
            })
        } else {
            None
        }
    }

    /// Whether `date` lies in this period.
    pub fn contains(self, date: Date) -> bool {
        self.first_day() <= date && date <= self.last_day()
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.periodicity {
            Periodicity::Yearly => write!(f, "{:04}", self.year),
            Periodicity::HalfYearly => write!(f, "{:04}-H{}", self.year, self.index),
            Periodicity::Quarterly => write!(f, "{:04}-Q{}", self.year, self.index),
            Periodicity::Monthly => write!(f, "{:04}-{:02}", self.year, self.index),
        }
    }
}

impl fmt::Debug for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Period({self})")
    }
}

impl std::str::FromStr for Period {
    type Err = Error;
    fn from_str(s: &str) -> Result<Period, Error> {
        Period::parse(s)
    }
}

impl Serialize for Period {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Period {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Period, D::Error> {
        let text = String::deserialize(d)?;
        Period::parse(&text).map_err(serde::de::Error::custom)
    }
}

// ---------------------------------------------------------------------------
// The request clock.

/// A dated step of a request's lifecycle, as the clock sees it (from
/// `RequestClarification`, `ThirdPartyConsultation`, `RequestExtended` and
/// `RequestAnswered`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", content = "date", rename_all = "snake_case")]
pub enum ClockEvent {
    /// The department asked the applicant to correct the request
    /// (`CLARIFICATION_STAGE_ASKED`): the clock stops.
    ClarificationAsked(Date),
    /// The corrected request arrived (`CLARIFICATION_STAGE_CORRECTED`): a new
    /// period counts from this date (Article 30).
    ClarificationCorrected(Date),
    /// A third party is consulted (`CONSULTATION_STAGE_STARTED`).
    ConsultationStarted(Date),
    /// The consultation ended (`CONSULTATION_STAGE_ENDED`); the working days
    /// from its start to this date, inclusive, are not counted (Article 32).
    ConsultationEnded(Date),
    /// The deadline is extended by [`EXTENSION_WORKING_DAYS`] (Article 33).
    Extended(Date),
    /// The request is answered.
    Answered(Date),
}

impl ClockEvent {
    /// The date the event carries.
    pub fn date(self) -> Date {
        match self {
            ClockEvent::ClarificationAsked(d)
            | ClockEvent::ClarificationCorrected(d)
            | ClockEvent::ConsultationStarted(d)
            | ClockEvent::ConsultationEnded(d)
            | ClockEvent::Extended(d)
            | ClockEvent::Answered(d) => d,
        }
    }

    /// A short stable name, as used in errors.
    pub fn name(self) -> &'static str {
        match self {
            ClockEvent::ClarificationAsked(_) => "clarification_asked",
            ClockEvent::ClarificationCorrected(_) => "clarification_corrected",
            ClockEvent::ConsultationStarted(_) => "consultation_started",
            ClockEvent::ConsultationEnded(_) => "consultation_ended",
            ClockEvent::Extended(_) => "extended",
            ClockEvent::Answered(_) => "answered",
        }
    }
}

/// Whether the clock is counting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ClockStatus {
    /// Counting working days.
    Running,
    /// Stopped since the department asked for a correction.
    AwaitingCorrection {
        /// The date of the request for correction.
        since: Date,
    },
    /// Paused since a third-party consultation started.
    Consulting {
        /// The date the consultation started.
        since: Date,
    },
}

/// The answer deadline in force, when the clock is not stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "deadline", rename_all = "snake_case")]
pub enum Deadline {
    /// The request must be answered on or before this date.
    Due {
        /// The last day to answer.
        date: Date,
    },
    /// A consultation open since `since` pauses the count before the
    /// deadline was reached: the deadline is not determined until it ends
    /// (and an answer meanwhile is in time).
    Paused {
        /// The date the open consultation started.
        since: Date,
    },
}

/// The answer clock of one disclosure request, folded event by event.
///
/// Rules (Regulations on Open Government Information, Articles 30 to 33):
///
/// * the request is due [`ANSWER_WORKING_DAYS`] working days after the
///   date it counts from: the date received, or the date of the latest
///   corrected request;
/// * a request for correction stops the clock: there is no deadline
///   ([`RequestClock::deadline`] gives `None`) until the corrected request
///   arrives, and then a new period counts from the correction date
///   (consultations before it no longer matter; an extension already
///   granted stays granted);
/// * working days from a consultation's start to its end, inclusive, are
///   not counted; while a consultation is open and the deadline was not
///   reached before it started, the deadline is [`Deadline::Paused`];
/// * one extension adds [`EXTENSION_WORKING_DAYS`]; it is valid only on or
///   before the deadline in force, not while a correction is awaited, and
///   only once;
/// * events are dated on or after the previous event; nothing follows the
///   answer.
///
/// The clock is serde-serializable, so a verifier can keep it per open
/// request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestClock {
    received: Date,
    counts_from: Date,
    /// Closed consultations after `counts_from`, inclusive ranges.
    excluded: Vec<(Date, Date)>,
    status: ClockStatus,
    extended_on: Option<Date>,
    /// The deadline rule in force when the extension was recorded, to judge
    /// later whether it came in time. Absent in clocks stored before it was
    /// kept; such an extension was checked when it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    extension_basis: Option<ExtensionBasis>,
    answered_on: Option<Date>,
    last_event: Date,
}

/// What the deadline in force counted from when an extension was recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExtensionBasis {
    counts_from: Date,
    excluded: Vec<(Date, Date)>,
    /// Start of the consultation open at the time, if any.
    consulting_since: Option<Date>,
}

impl RequestClock {
    /// The clock of a request received on `received` (`RequestReceived`).
    pub fn new(received: Date) -> RequestClock {
        RequestClock {
            received,
            counts_from: received,
            excluded: Vec::new(),
            status: ClockStatus::Running,
            extended_on: None,
            extension_basis: None,
            answered_on: None,
            last_event: received,
        }
    }

    /// The date the request was received.
    pub fn received(&self) -> Date {
        self.received
    }

    /// The date the current period counts from (received or corrected).
    pub fn counts_from(&self) -> Date {
        self.counts_from
    }

    /// Whether the clock runs, is stopped or paused.
    pub fn status(&self) -> ClockStatus {
        self.status
    }

    /// The date of the extension, if any.
    pub fn extended_on(&self) -> Option<Date> {
        self.extended_on
    }

    /// The date of the answer, if any.
    pub fn answered_on(&self) -> Option<Date> {
        self.answered_on
    }

    /// Applies the next event of the request. Needs no calendar: what the
    /// ledger accepts never depends on holiday data (FORMAT.md § Working
    /// days). Whether an extension came in time is a judgement
    /// ([`RequestClock::extension_in_time`]).
    ///
    /// # Errors
    /// [`Error::RequestClock`] (and the clock is unchanged) if the event is
    /// dated before the previous one, follows the answer, does not fit the
    /// status (a correction nobody asked for, a consultation ending that
    /// never started, a clarification or consultation while the clock is
    /// already stopped or paused), or is an extension that is a second one
    /// or comes while a correction is awaited.
    pub fn apply(&mut self, event: ClockEvent) -> Result<(), Error> {
        let date = event.date();
        let refuse = |reason| Error::RequestClock {
            event: event.name(),
            date,
            reason,
        };
        if self.answered_on.is_some() {
            return Err(refuse("the request is already answered"));
        }
        if date < self.last_event {
            return Err(refuse("dated before the previous event of the request"));
        }
        match (event, self.status) {
            (ClockEvent::ClarificationAsked(_), ClockStatus::Running) => {
                self.status = ClockStatus::AwaitingCorrection { since: date };
            }
            (ClockEvent::ClarificationAsked(_), _) => {
                return Err(refuse("the clock is already stopped or paused"));
            }
            (ClockEvent::ClarificationCorrected(_), ClockStatus::AwaitingCorrection { .. }) => {
                self.counts_from = date;
                self.excluded.clear();
                self.status = ClockStatus::Running;
            }
            (ClockEvent::ClarificationCorrected(_), _) => {
                return Err(refuse("no correction was asked for"));
            }
            (ClockEvent::ConsultationStarted(_), ClockStatus::Running) => {
                self.status = ClockStatus::Consulting { since: date };
            }
            (ClockEvent::ConsultationStarted(_), _) => {
                return Err(refuse("the clock is already stopped or paused"));
            }
            (ClockEvent::ConsultationEnded(_), ClockStatus::Consulting { since }) => {
                self.excluded.push((since, date));
                self.status = ClockStatus::Running;
            }
            (ClockEvent::ConsultationEnded(_), _) => {
                return Err(refuse("no consultation is open"));
            }
            (ClockEvent::Extended(_), _) => {
                if self.extended_on.is_some() {
                    return Err(refuse("the request was already extended once"));
                }
                if let ClockStatus::AwaitingCorrection { .. } = self.status {
                    return Err(refuse("the clock is stopped awaiting a correction"));
                }
                self.extension_basis = Some(ExtensionBasis {
                    counts_from: self.counts_from,
                    excluded: self.excluded.clone(),
                    consulting_since: match self.status {
                        ClockStatus::Consulting { since } => Some(since),
                        _ => None,
                    },
                });
                self.extended_on = Some(date);
            }
            (ClockEvent::Answered(_), _) => {
                self.answered_on = Some(date);
            }
        }
        self.last_event = date;
        Ok(())
    }

    /// The deadline in force: `None` while the clock is stopped awaiting a
    /// correction.
    ///
    /// # Errors
    /// [`Error::CalendarYearNotCovered`] if counting needs a year the
    /// calendar does not cover.
    pub fn deadline(&self, calendar: &WorkCalendar) -> Result<Option<Deadline>, Error> {
        let n = self.working_days(calendar)?;
        let excluded = |d: Date| self.excluded.iter().any(|&(a, b)| a <= d && d <= b);
        match self.status {
            ClockStatus::AwaitingCorrection { .. } => Ok(None),
            ClockStatus::Running => {
                let due = calendar.walk(self.counts_from, n, excluded, |_| false)?;
                Ok(due.map(|date| Deadline::Due { date }))
            }
            ClockStatus::Consulting { since } => {
                let due = calendar.walk(self.counts_from, n, excluded, |d| d >= since)?;
                Ok(Some(match due {
                    Some(date) => Deadline::Due { date },
                    None => Deadline::Paused { since },
                }))
            }
        }
    }

    /// The deadline in force if it falls on or before `limit`; `None` if
    /// the clock is stopped, paused before reaching it, or the deadline is
    /// after `limit`. Counts only days up to `limit`, so a question about a
    /// date the holiday table covers never needs a year it does not cover.
    fn due_by(&self, calendar: &WorkCalendar, limit: Date) -> Result<Option<Date>, Error> {
        let n = self.working_days(calendar)?;
        let excluded = |d: Date| self.excluded.iter().any(|&(a, b)| a <= d && d <= b);
        let paused_from = match self.status {
            ClockStatus::AwaitingCorrection { .. } => return Ok(None),
            ClockStatus::Running => None,
            ClockStatus::Consulting { since } => Some(since),
        };
        calendar.walk(self.counts_from, n, excluded, |d| {
            d > limit || paused_from.is_some_and(|s| d >= s)
        })
    }

    /// Working days the request has: [`ANSWER_WORKING_DAYS`], plus
    /// [`EXTENSION_WORKING_DAYS`] for an extension made in time.
    fn working_days(&self, calendar: &WorkCalendar) -> Result<u32, Error> {
        Ok(ANSWER_WORKING_DAYS
            + if self.extension_in_time(calendar)? == Some(true) {
                EXTENSION_WORKING_DAYS
            } else {
                0
            })
    }

    /// Whether the extension, if any, came on or before the deadline in
    /// force when it was made (Article 33): `None` without an extension.
    /// A late extension is void: it adds no working days.
    ///
    /// # Errors
    /// [`Error::CalendarYearNotCovered`] if a day up to the extension's date
    /// is in a year the calendar does not cover.
    pub fn extension_in_time(&self, calendar: &WorkCalendar) -> Result<Option<bool>, Error> {
        let Some(on) = self.extended_on else {
            return Ok(None);
        };
        let Some(basis) = &self.extension_basis else {
            // Recorded before the basis was kept, when the ledger refused
            // late extensions: it was in time.
            return Ok(Some(true));
        };
        let excluded = |d: Date| basis.excluded.iter().any(|&(a, b)| a <= d && d <= b);
        let due = calendar.walk(basis.counts_from, ANSWER_WORKING_DAYS, excluded, |d| {
            d > on || basis.consulting_since.is_some_and(|s| d >= s)
        })?;
        Ok(Some(due.is_none_or(|due| on <= due)))
    }

    /// Whether an answer on `answer` is late: after the deadline in force.
    /// Never late while the clock is stopped or paused.
    ///
    /// # Errors
    /// [`Error::CalendarYearNotCovered`] if a day up to `answer` is in a
    /// year the calendar does not cover.
    pub fn is_late(&self, calendar: &WorkCalendar, answer: Date) -> Result<bool, Error> {
        Ok(self
            .due_by(calendar, answer)?
            .is_some_and(|due| answer > due))
    }

    /// Whether an extension dated `date` would be valid: not yet extended,
    /// not answered, not awaiting a correction, and `date` on or before the
    /// deadline in force (always, while an open consultation pauses it).
    ///
    /// # Errors
    /// As [`RequestClock::is_late`], for days up to `date`.
    pub fn can_extend_on(&self, calendar: &WorkCalendar, date: Date) -> Result<bool, Error> {
        if self.extended_on.is_some() || self.answered_on.is_some() {
            return Ok(false);
        }
        if matches!(self.status, ClockStatus::AwaitingCorrection { .. }) {
            return Ok(false);
        }
        Ok(self.due_by(calendar, date)?.is_none_or(|due| date <= due))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(text: &str) -> Date {
        Date::parse(text).unwrap()
    }

    fn cal() -> &'static WorkCalendar {
        WorkCalendar::shipped()
    }

    #[test]
    fn decisions_need_only_the_days_they_are_about() {
        // Received mid-December of the last covered year: the deadline
        // itself falls in an uncovered year, but an extension the next day
        // and an answer a week later are decided by covered days alone.
        let last = cal().last_year();
        let received = Date::new(last, 12, 15).unwrap();
        let clock = RequestClock::new(received);
        assert!(clock.deadline(cal()).is_err());
        assert!(
            clock
                .can_extend_on(cal(), received.add_days(1).unwrap())
                .unwrap()
        );
        assert!(!clock.is_late(cal(), received.add_days(7).unwrap()).unwrap());
        // A date in the uncovered year still cannot be judged.
        assert!(
            clock
                .is_late(cal(), Date::new(last + 1, 1, 20).unwrap())
                .is_err()
        );
    }

    fn working(text: &str) -> bool {
        cal().is_working_day(d(text)).unwrap()
    }

    /// The normative seed table is `docs/calendar/holidays-cn.txt`
    /// (FORMAT.md § 14.1), compiled in byte for byte; no other copy lives
    /// in the crate.
    #[test]
    fn the_seed_table_is_the_file_in_docs() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let docs = root.join("../../docs/calendar/holidays-cn.txt");
        assert_eq!(std::fs::read_to_string(docs).unwrap(), SHIPPED_TABLE);
        assert!(!root.join("data/holidays-cn.txt").exists());
    }

    #[test]
    fn shipped_table_parses_and_covers_2024_to_2026() {
        let parsed = WorkCalendar::parse(SHIPPED_TABLE).unwrap();
        assert_eq!(&parsed, cal());
        assert_eq!((cal().first_year(), cal().last_year()), (2024, 2026));
        assert_eq!(cal().years().collect::<Vec<_>>(), [2024, 2025, 2026]);
        assert!(!cal().covers(2023));
        assert!(!cal().covers(2027));
    }

    #[test]
    fn known_days() {
        // 2024: Sunday 2024-02-04 worked before the Spring Festival.
        assert!(working("2024-02-04"));
        for day in 1..=7 {
            assert!(!working(&format!("2024-10-{day:02}")), "2024-10-{day:02}");
        }
        assert!(working("2024-10-08"));
        assert!(working("2024-10-12")); // a Saturday
        assert!(!working("2024-10-13")); // an ordinary Sunday
        // 2025: the first Spring Festival from 除夕, eight days.
        assert!(working("2025-01-26"));
        assert!(!working("2025-01-28"));
        assert!(!working("2025-02-04"));
        assert!(working("2025-02-05"));
        assert!(working("2025-02-08"));
        assert!(!working("2025-10-08"));
        // 2026: nine days of Spring Festival, worked Saturdays either side.
        assert!(working("2026-02-14"));
        for day in 15..=23 {
            assert!(!working(&format!("2026-02-{day:02}")), "2026-02-{day}");
        }
        assert!(working("2026-02-28"));
        assert!(!working("2026-01-02"));
        assert!(working("2026-01-04"));
        assert!(!working("2026-03-07")); // an ordinary Saturday
        assert!(working("2026-03-09")); // an ordinary Monday
        assert!(!working("2026-09-25")); // 中秋节
        assert!(working("2026-11-27")); // a Friday
    }

    #[test]
    fn uncovered_years_cannot_be_computed() {
        fn not_covered<T>(year: i32) -> Result<T, Error> {
            Err(Error::CalendarYearNotCovered { year })
        }
        assert_eq!(cal().is_working_day(d("2027-01-04")), not_covered(2027));
        assert_eq!(cal().is_working_day(d("2023-12-29")), not_covered(2023));
        assert_eq!(
            cal().add_working_days(d("2026-12-20"), 20),
            not_covered(2027)
        );
        assert_eq!(
            cal().working_days_between(d("2023-12-31"), d("2024-01-05")),
            Ok(4)
        );
        assert_eq!(
            cal().working_days_between(d("2023-12-28"), d("2024-01-05")),
            not_covered(2023)
        );
        // The answer never depends on a guess, even when the start day's year
        // is uncovered: the start day itself is not examined.
        assert_eq!(
            cal().add_working_days(d("2023-12-31"), 1),
            Ok(d("2024-01-02"))
        );
    }

    #[test]
    fn add_working_days_across_spring_festival() {
        assert_eq!(
            cal().add_working_days(d("2026-02-10"), 5),
            Ok(d("2026-02-24"))
        );
        assert_eq!(
            cal().add_working_days(d("2026-02-10"), 0),
            Ok(d("2026-02-10"))
        );
        // 20 working days from Monday 2025-01-20, counting Sunday 01-26 and
        // Saturday 02-08, skipping 01-28..02-04.
        assert_eq!(
            cal().add_working_days(d("2025-01-20"), 20),
            Ok(d("2025-02-21"))
        );
        assert_eq!(
            cal().disclosure_due(d("2025-01-20"), 20),
            Ok(d("2025-02-21"))
        );
        // Formed on a holiday: the count starts the next working day.
        assert_eq!(
            cal().add_working_days(d("2024-10-03"), 1),
            Ok(d("2024-10-08"))
        );
        assert_eq!(
            cal().working_days_between(d("2026-02-10"), d("2026-02-24")),
            Ok(5)
        );
        assert_eq!(
            cal().working_days_between(d("2026-02-24"), d("2026-02-10")),
            Ok(-5)
        );
        assert_eq!(
            cal().working_days_between(d("2026-02-10"), d("2026-02-10")),
            Ok(0)
        );
        // Across a year end.
        assert_eq!(
            cal().add_working_days(d("2025-12-31"), 1),
            Ok(d("2026-01-04"))
        );
    }

    #[test]
    fn working_days_per_year() {
        // 2024: 262 weekdays - 19 weekday holidays + 8 worked weekend days.
        let count = |y: i32| {
            let jan1 = d(&format!("{y}-01-01"));
            i64::from(cal().is_working_day(jan1).unwrap())
                + cal()
                    .working_days_between(jan1, d(&format!("{y}-12-31")))
                    .unwrap()
        };
        assert_eq!(count(2024), 251);
        assert_eq!(count(2025), 248);
        assert_eq!(count(2026), 248);
    }

    fn table_error(text: &str) -> (usize, String) {
        match WorkCalendar::parse(text) {
            Err(Error::HolidayTable { line, reason }) => (line, reason),
            other => panic!("expected a table error, got {other:?}"),
        }
    }

    #[test]
    fn parser_rejects_malformed_tables() {
        let cases: &[(&str, usize, &str)] = &[
            ("", 1, "covers no year"),
            ("# only a comment\n", 1, "covers no year"),
            ("holiday 2024-01-01\n", 1, "before any `year`"),
            ("year 2024\n", 1, "lists no date"),
            (
                "year 2024\nyear 2025\nholiday 2025-01-01\n",
                1,
                "lists no date",
            ),
            ("year 24\n", 1, "not a year"),
            ("year 2024\nholiday\n", 2, "expected `year"),
            ("year 2024\nholiday 2024-01-01 extra\n", 2, "expected `year"),
            ("year 2024\nholliday 2024-01-01\n", 2, "unknown statement"),
            ("year 2024\nholiday 2024-13-01\n", 2, "invalid date"),
            ("year 2024\nholiday 2024/01/01\n", 2, "invalid date"),
            ("year 2024\nholiday 2025-01-01\n", 2, "outside the block"),
            (
                "year 2024\nholiday 2024-12-31..2025-01-01\n",
                2,
                "outside the block",
            ),
            (
                "year 2024\nholiday 2024-01-03..2024-01-01\n",
                2,
                "ends before",
            ),
            (
                "year 2024\nholiday 2024-01-01\n\nholiday 2024-01-01\n",
                4,
                "listed twice",
            ),
            (
                "year 2024\nholiday 2024-02-01..2024-02-04\nworkday 2024-02-04\n",
                3,
                "both as holiday and as workday",
            ),
            (
                "year 2024\nholiday 2024-05-01\nholiday 2024-04-04\n",
                3,
                "ascending order",
            ),
            ("year 2024\nworkday 2024-02-05\n", 2, "is a Mon"),
            (
                "year 2025\nholiday 2025-01-01\nyear 2024\nholiday 2024-01-01\n",
                3,
                "ascending order",
            ),
            (
                "year 2024\nholiday 2024-01-01\nyear 2024\nholiday 2024-01-02\n",
                3,
                "ascending order",
            ),
        ];
        for (text, line, reason) in cases {
            let (found_line, found_reason) = table_error(text);
            assert_eq!(found_line, *line, "{text:?}: {found_reason}");
            assert!(
                found_reason.contains(reason),
                "{text:?}: {found_reason:?} does not say {reason:?}"
            );
        }
    }

    #[test]
    fn parser_accepts_comments_tabs_and_gaps() {
        let cal = WorkCalendar::parse(
            "# header\nyear 2024 # trailing\n\tholiday\t2024-01-01\nyear 2026\nworkday 2026-01-04\n",
        )
        .unwrap();
        assert!(cal.covers(2024) && !cal.covers(2025) && cal.covers(2026));
        assert_eq!(cal.is_working_day(d("2024-01-01")), Ok(false));
        assert_eq!(cal.is_working_day(d("2024-01-02")), Ok(true));
        assert_eq!(cal.is_working_day(d("2026-01-04")), Ok(true));
        assert_eq!(
            cal.add_working_days(d("2024-12-30"), 5),
            Err(Error::CalendarYearNotCovered { year: 2025 })
        );
    }

    #[test]
    fn period_labels_round_trip() {
        for (label, periodicity, first, last) in [
            ("2026", Periodicity::Yearly, "2026-01-01", "2026-12-31"),
            (
                "2026-H1",
                Periodicity::HalfYearly,
                "2026-01-01",
                "2026-06-30",
            ),
            (
                "2026-H2",
                Periodicity::HalfYearly,
                "2026-07-01",
                "2026-12-31",
            ),
            (
                "2026-Q1",
                Periodicity::Quarterly,
                "2026-01-01",
                "2026-03-31",
            ),
            (
                "2024-Q1",
                Periodicity::Quarterly,
                "2024-01-01",
                "2024-03-31",
            ),
            (
                "2026-Q3",
                Periodicity::Quarterly,
                "2026-07-01",
                "2026-09-30",
            ),
            (
                "2026-Q4",
                Periodicity::Quarterly,
                "2026-10-01",
                "2026-12-31",
            ),
            ("2026-01", Periodicity::Monthly, "2026-01-01", "2026-01-31"),
            ("2024-02", Periodicity::Monthly, "2024-02-01", "2024-02-29"),
            ("2026-02", Periodicity::Monthly, "2026-02-01", "2026-02-28"),
            ("2026-12", Periodicity::Monthly, "2026-12-01", "2026-12-31"),
        ] {
            let p = Period::parse(label).unwrap();
            assert_eq!(p.to_string(), label);
            assert_eq!(p.periodicity(), periodicity);
            assert_eq!(p.year(), label[..4].parse::<i32>().unwrap());
            assert_eq!(p.first_day(), d(first), "{label}");
            assert_eq!(p.last_day(), d(last), "{label}");
            assert_eq!(Period::containing(d(first), periodicity), p);
            assert_eq!(Period::containing(d(last), periodicity), p);
            assert!(p.contains(d(first)) && p.contains(d(last)));
            assert!(!p.contains(d(last).succ().unwrap()));
            let json = serde_json::to_string(&p).unwrap();
            assert_eq!(json, format!("\"{label}\""));
            assert_eq!(serde_json::from_str::<Period>(&json).unwrap(), p);
        }
    }

    #[test]
    fn period_labels_rejected() {
        for bad in [
            "2026-Q5",
            "2026-Q0",
            "2026-H3",
            "2026-H0",
            "2026-13",
            "2026-00",
            "26-Q1",
            "2026-q1",
            "2026-h1",
            "2026-1",
            "2026-001",
            "2026Q1",
            "2026-Q1 ",
            " 2026",
            "1969",
            "20261",
            "2026-",
            "",
            "２０２６",
            "2026-M1",
            "+026",
        ] {
            assert!(
                matches!(Period::parse(bad), Err(Error::InvalidPeriod { .. })),
                "{bad:?} accepted"
            );
        }
        assert!(serde_json::from_str::<Period>("\"2026-Q5\"").is_err());
    }

    #[test]
    fn periods_follow_each_other() {
        let next = |label: &str| Period::parse(label).unwrap().next().unwrap().to_string();
        assert_eq!(next("2026"), "2027");
        assert_eq!(next("2026-H1"), "2026-H2");
        assert_eq!(next("2026-H2"), "2027-H1");
        assert_eq!(next("2026-Q3"), "2026-Q4");
        assert_eq!(next("2026-Q4"), "2027-Q1");
        assert_eq!(next("2026-09"), "2026-10");
        assert_eq!(next("2026-12"), "2027-01");
        assert_eq!(Period::parse("9999-12").unwrap().next(), None);
        assert_eq!(Period::parse("9999").unwrap().last_day(), d("9999-12-31"));
    }

    #[test]
    fn periods_due_lists_every_period_whose_due_date_passed() {
        let labels = |as_of: &str| {
            cal()
                .periods_due(Periodicity::Quarterly, d("2025-02-10"), 20, d(as_of))
                .unwrap()
                .into_iter()
                .map(|(p, due)| format!("{p}:{due}"))
                .collect::<Vec<_>>()
        };
        let all = [
            "2025-Q1:2025-04-28", // 04-04..06 off, Sunday 04-27 worked
            "2025-Q2:2025-07-28",
            "2025-Q3:2025-11-04", // 10-01..08 off, Saturday 10-11 worked
            "2025-Q4:2026-01-29", // 2026-01-01..03 off, Sunday 01-04 worked
        ];
        assert_eq!(labels("2026-01-29"), all);
        assert_eq!(labels("2026-01-28"), all[..3]);
        assert_eq!(labels("2025-04-27"), Vec::<String>::new());
        assert_eq!(labels("2025-04-28"), all[..1]);
        // Monthly, with the deadline falling in an uncovered year only when
        // as_of needs it.
        let monthly = cal()
            .periods_due(Periodicity::Monthly, d("2026-10-15"), 5, d("2026-12-31"))
            .unwrap();
        assert_eq!(
            monthly
                .iter()
                .map(|(p, due)| format!("{p}:{due}"))
                .collect::<Vec<_>>(),
            ["2026-10:2026-11-06", "2026-11:2026-12-07"]
        );
        assert_eq!(
            cal().periods_due(Periodicity::Yearly, d("2026-01-01"), 20, d("2027-02-01")),
            Err(Error::CalendarYearNotCovered { year: 2027 })
        );
        assert_eq!(
            cal().periods_due(
                Periodicity::HalfYearly,
                d("2023-03-01"),
                20,
                d("2024-03-01")
            ),
            Err(Error::CalendarYearNotCovered { year: 2023 })
        );
    }

    fn clock(events: &[ClockEvent]) -> RequestClock {
        let mut c = RequestClock::new(d("2026-03-02"));
        for e in events {
            c.apply(*e).unwrap();
        }
        c
    }

    fn due(c: &RequestClock) -> Option<Deadline> {
        c.deadline(cal()).unwrap()
    }

    fn due_on(text: &str) -> Option<Deadline> {
        Some(Deadline::Due { date: d(text) })
    }

    #[test]
    fn request_clock_plain() {
        // Received Monday 2026-03-02: 20 working days end Monday 03-30.
        let c = clock(&[]);
        assert_eq!(due(&c), due_on("2026-03-30"));
        assert_eq!(c.is_late(cal(), d("2026-03-30")), Ok(false));
        assert_eq!(c.is_late(cal(), d("2026-03-31")), Ok(true));
        let answered = clock(&[ClockEvent::Answered(d("2026-03-20"))]);
        assert_eq!(answered.answered_on(), Some(d("2026-03-20")));
        assert_eq!(due(&answered), due_on("2026-03-30"));
        assert_eq!(answered.can_extend_on(cal(), d("2026-03-21")), Ok(false));
    }

    #[test]
    fn request_clock_extension() {
        let c = clock(&[]);
        assert_eq!(c.can_extend_on(cal(), d("2026-03-30")), Ok(true));
        assert_eq!(c.can_extend_on(cal(), d("2026-03-31")), Ok(false));
        // Extended on the last day: 20 more working days, over 清明 04-04..06.
        let extended = clock(&[ClockEvent::Extended(d("2026-03-30"))]);
        assert_eq!(extended.extended_on(), Some(d("2026-03-30")));
        assert_eq!(due(&extended), due_on("2026-04-28"));
        assert_eq!(extended.can_extend_on(cal(), d("2026-04-01")), Ok(false));
        let mut again = extended.clone();
        assert!(matches!(
            again.apply(ClockEvent::Extended(d("2026-04-01"))),
            Err(Error::RequestClock {
                event: "extended",
                reason: "the request was already extended once",
                ..
            })
        ));
        assert_eq!(again, extended, "a refused event changes nothing");
        assert_eq!(extended.extension_in_time(cal()), Ok(Some(true)));
        assert_eq!(clock(&[]).extension_in_time(cal()), Ok(None));
        // One day too late: the ledger records it (no holiday data decides
        // what is recorded), the judgement finds it void: no extra days.
        let late = clock(&[ClockEvent::Extended(d("2026-03-31"))]);
        assert_eq!(late.extended_on(), Some(d("2026-03-31")));
        assert_eq!(late.extension_in_time(cal()), Ok(Some(false)));
        assert_eq!(due(&late), due_on("2026-03-30"));
        assert_eq!(late.is_late(cal(), d("2026-04-01")), Ok(true));
    }

    #[test]
    fn extension_is_judged_by_the_rule_in_force_when_it_was_made() {
        // Extended during a consultation (the count is paused, so any date
        // is in time); the consultation ends later.
        let c = clock(&[
            ClockEvent::ConsultationStarted(d("2026-03-10")),
            ClockEvent::Extended(d("2026-04-20")),
            ClockEvent::ConsultationEnded(d("2026-04-21")),
        ]);
        assert_eq!(c.extension_in_time(cal()), Ok(Some(true)));
        // Extended in time, then a correction restarts the period: the
        // extension stays granted.
        let c = clock(&[
            ClockEvent::Extended(d("2026-03-05")),
            ClockEvent::ClarificationAsked(d("2026-03-06")),
            ClockEvent::ClarificationCorrected(d("2026-05-06")),
        ]);
        assert_eq!(c.extension_in_time(cal()), Ok(Some(true)));
        // An extension in a year without a holiday table cannot be judged
        // yet, and neither can the deadline; recording it still works.
        let next = cal().last_year() + 1;
        let mut c = RequestClock::new(Date::new(next, 1, 5).unwrap());
        c.apply(ClockEvent::Extended(Date::new(next, 1, 6).unwrap()))
            .unwrap();
        assert_eq!(
            c.extension_in_time(cal()),
            Err(Error::CalendarYearNotCovered { year: next })
        );
        assert!(c.deadline(cal()).is_err());
    }

    /// A clock stored before the extension basis was kept still reads, and
    /// its extension counts (it was checked when recorded).
    #[test]
    fn clock_stored_without_extension_basis_reads() {
        let stored = r#"{"received":"2026-03-02","counts_from":"2026-03-02","excluded":[],"status":{"state":"running"},"extended_on":"2026-03-30","answered_on":null,"last_event":"2026-03-30"}"#;
        let c: RequestClock = serde_json::from_str(stored).unwrap();
        assert_eq!(c.extension_in_time(cal()), Ok(Some(true)));
        assert_eq!(due(&c), due_on("2026-04-28"));
    }

    #[test]
    fn request_clock_clarification_restarts() {
        let asked = clock(&[ClockEvent::ClarificationAsked(d("2026-03-04"))]);
        assert_eq!(due(&asked), None);
        assert_eq!(asked.is_late(cal(), d("2026-06-01")), Ok(false));
        assert_eq!(asked.can_extend_on(cal(), d("2026-03-05")), Ok(false));
        let mut refused = asked.clone();
        assert!(
            refused
                .apply(ClockEvent::Extended(d("2026-03-05")))
                .is_err()
        );
        // The corrected request arrives on 03-16: a fresh 20 working days.
        let corrected = clock(&[
            ClockEvent::ClarificationAsked(d("2026-03-04")),
            ClockEvent::ClarificationCorrected(d("2026-03-16")),
        ]);
        assert_eq!(corrected.counts_from(), d("2026-03-16"));
        assert_eq!(corrected.received(), d("2026-03-02"));
        assert_eq!(due(&corrected), due_on("2026-04-14"));
        assert_eq!(corrected.status(), ClockStatus::Running);
        // A correction nobody asked for.
        let mut c = clock(&[]);
        assert!(
            c.apply(ClockEvent::ClarificationCorrected(d("2026-03-05")))
                .is_err()
        );
    }

    #[test]
    fn request_clock_consultation_pauses() {
        let open = clock(&[ClockEvent::ConsultationStarted(d("2026-03-10"))]);
        assert_eq!(
            due(&open),
            Some(Deadline::Paused {
                since: d("2026-03-10")
            })
        );
        assert_eq!(open.is_late(cal(), d("2026-05-01")), Ok(false));
        assert_eq!(open.can_extend_on(cal(), d("2026-04-15")), Ok(true));
        // 03-10, 03-11, 03-12 are not counted: three working days later.
        let closed = clock(&[
            ClockEvent::ConsultationStarted(d("2026-03-10")),
            ClockEvent::ConsultationEnded(d("2026-03-12")),
        ]);
        assert_eq!(due(&closed), due_on("2026-04-02"));
        assert_eq!(closed.is_late(cal(), d("2026-04-02")), Ok(false));
        assert_eq!(closed.is_late(cal(), d("2026-04-03")), Ok(true));
        // A consultation over a weekend excludes only its working days.
        let weekend = clock(&[
            ClockEvent::ConsultationStarted(d("2026-03-13")),
            ClockEvent::ConsultationEnded(d("2026-03-16")),
        ]);
        assert_eq!(due(&weekend), due_on("2026-04-01"));
        // Started after the deadline had passed: the deadline stays.
        let after = clock(&[ClockEvent::ConsultationStarted(d("2026-04-01"))]);
        assert_eq!(due(&after), due_on("2026-03-30"));
        assert_eq!(after.can_extend_on(cal(), d("2026-04-01")), Ok(false));
        // Ending what never started.
        let mut c = clock(&[]);
        assert!(
            c.apply(ClockEvent::ConsultationEnded(d("2026-03-05")))
                .is_err()
        );
    }

    #[test]
    fn request_clock_refuses_disorder_and_events_after_the_answer() {
        let mut c = clock(&[ClockEvent::ConsultationStarted(d("2026-03-10"))]);
        assert!(matches!(
            c.apply(ClockEvent::ConsultationEnded(d("2026-03-09"))),
            Err(Error::RequestClock {
                reason: "dated before the previous event of the request",
                ..
            })
        ));
        assert!(
            c.apply(ClockEvent::ClarificationAsked(d("2026-03-11")))
                .is_err()
        );
        c.apply(ClockEvent::Answered(d("2026-03-20"))).unwrap();
        assert!(matches!(
            c.apply(ClockEvent::Answered(d("2026-03-21"))),
            Err(Error::RequestClock {
                reason: "the request is already answered",
                ..
            })
        ));
    }

    #[test]
    fn request_clock_serde_round_trip() {
        let c = clock(&[
            ClockEvent::ConsultationStarted(d("2026-03-10")),
            ClockEvent::ConsultationEnded(d("2026-03-12")),
            ClockEvent::Extended(d("2026-03-20")),
            ClockEvent::ClarificationAsked(d("2026-03-23")),
        ]);
        let json = serde_json::to_string(&c).unwrap();
        let back: RequestClock = serde_json::from_str(&json).unwrap();
        assert_eq!(back, c);
        let event = ClockEvent::Extended(d("2026-03-20"));
        let json = serde_json::to_string(&event).unwrap();
        assert_eq!(json, r#"{"event":"extended","date":"2026-03-20"}"#);
        assert_eq!(serde_json::from_str::<ClockEvent>(&json).unwrap(), event);
    }

    proptest::proptest! {
        #[test]
        fn add_and_count_agree(offset in 0i64..1000, n in 0u32..60) {
            let start = d("2024-01-01").add_days(offset).unwrap();
            match cal().add_working_days(start, n) {
                Ok(end) => {
                    proptest::prop_assert_eq!(
                        cal().working_days_between(start, end),
                        Ok(i64::from(n))
                    );
                    if n > 0 {
                        proptest::prop_assert!(cal().is_working_day(end).unwrap());
                    }
                }
                Err(e) => proptest::prop_assert_eq!(
                    e,
                    Error::CalendarYearNotCovered { year: 2027 }
                ),
            }
        }

        #[test]
        fn period_round_trip(offset in 0i64..3_000_000, kind in 0usize..4) {
            let kinds = [
                Periodicity::Monthly,
                Periodicity::Quarterly,
                Periodicity::HalfYearly,
                Periodicity::Yearly,
            ];
            let date = d("1970-01-01").add_days(offset % 2_900_000).unwrap();
            let p = Period::containing(date, kinds[kind]);
            proptest::prop_assert!(p.contains(date));
            proptest::prop_assert_eq!(Period::parse(&p.to_string()), Ok(p));
            if let Some(next) = p.next() {
                proptest::prop_assert_eq!(next.first_day(), p.last_day().succ().unwrap());
            }
        }
    }
}
