//! Holiday tables the county publishes on its log (FORMAT.md § 14.4).
//!
//! The State Council announces each year's holidays in November of the
//! year before; a county cannot wait for a new release of gongkai. So the
//! table of a year is data: the county (the office in charge of 政务公开)
//! appends it to the county log as a leaf of its own kind, which the county
//! log's signed checkpoints, and the witnesses that cosign them, commit to.
//! Every verifier reads the same tables from the same log; an amendment is
//! a new version with its reason, never an overwrite.
//!
//! ```text
//! leaf = "gongkai/calendar/v1\n"
//!        "version " <N> "\n"            N >= 1, decimal, no leading zeros
//!        "notice " <text> "\n"          the notice the table transcribes
//!        ["reason " <text> "\n"]        required when N > 1; on version 1
//!                                       only when it replaces the seed
//!        "\n"
//!        <table>                        one year block, canonical (below)
//! ```
//!
//! The calendar in force after a county log prefix is the seed table
//! compiled into the binary (2024–2026) with each year replaced by the
//! newest version published for it ([`PublishedCalendars::in_force`]).

use std::collections::BTreeMap;

use super::{TableSource, WorkCalendar, YearDays};
use crate::Error;
use crate::date::Date;

/// The first bytes of every calendar leaf.
pub const LEAF_MAGIC: &[u8] = b"gongkai/calendar/v1\n";

/// Longest `notice` or `reason`, bytes.
pub const MAX_TEXT_LEN: usize = 256;

/// One published version of one year's table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CalendarTable {
    version: u32,
    notice: String,
    reason: String,
    year: i32,
    days: YearDays,
    /// The canonical table text.
    table: String,
}

fn bad(reason: impl Into<String>) -> Error {
    Error::MalformedCalendarTable(reason.into())
}

fn check_text(what: &str, text: &str) -> Result<(), Error> {
    if text.is_empty() {
        return Err(bad(format!("the {what} is empty")));
    }
    if text.len() > MAX_TEXT_LEN {
        return Err(bad(format!(
            "the {what} has {} bytes, more than {MAX_TEXT_LEN}",
            text.len()
        )));
    }
    if text.chars().any(char::is_control) {
        return Err(bad(format!("the {what} contains a control character")));
    }
    if text.trim() != text {
        return Err(bad(format!("the {what} starts or ends with a space")));
    }
    Ok(())
}

impl CalendarTable {
    /// Version `version` of a year's table: `table` is a holiday table in
    /// the format of § 14.1 (comments and ranges allowed) with exactly one
    /// year block; it is kept in canonical form.
    ///
    /// # Errors
    /// [`Error::HolidayTable`] for a malformed table (a date outside its
    /// year, a day both holiday and working day, …);
    /// [`Error::MalformedCalendarTable`] for a table of no or several
    /// years, version 0, a notice or reason that is empty, too long or has
    /// control characters, or a later version without a reason.
    pub fn new(
        version: u32,
        notice: &str,
        reason: &str,
        table: &str,
    ) -> Result<CalendarTable, Error> {
        if version == 0 {
            return Err(bad("versions count from 1"));
        }
        check_text("notice", notice)?;
        if version > 1 || !reason.is_empty() {
            check_text("reason (an amendment must say why)", reason)?;
        }
        let parsed = WorkCalendar::parse(table)?;
        let mut years = parsed.years.into_iter();
        let (year, days) = match (years.next(), years.next()) {
            (Some(one), None) => one,
            _ => return Err(bad("a published table holds exactly one year")),
        };
        Ok(CalendarTable {
            version,
            notice: notice.to_owned(),
            reason: reason.to_owned(),
            year,
            table: canonical(year, &days),
            days,
        })
    }

    /// The year.
    pub fn year(&self) -> i32 {
        self.year
    }
    /// The version (1 for the first publication of the year).
    pub fn version(&self) -> u32 {
        self.version
    }
    /// The notice the table transcribes.
    pub fn notice(&self) -> &str {
        &self.notice
    }
    /// Why this version replaces the previous one (or, on version 1, the
    /// seed table); empty on a first publication that agrees with the seed
    /// or of a year the seed does not cover.
    pub fn reason(&self) -> &str {
        &self.reason
    }
    /// The table in canonical form.
    pub fn table(&self) -> &str {
        &self.table
    }
    pub(crate) fn days(&self) -> &YearDays {
        &self.days
    }

    /// Whether both say the same about every day of the year.
    pub fn same_days(&self, other: &CalendarTable) -> bool {
        self.year == other.year && self.days == other.days
    }

    /// Whether this table says the same about every day as `calendar`
    /// does for the year.
    pub fn same_days_as(&self, calendar: &WorkCalendar) -> bool {
        calendar.years.get(&self.year) == Some(&self.days)
    }

    /// The leaf bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(LEAF_MAGIC.len() + 64 + self.table.len());
        out.extend_from_slice(LEAF_MAGIC);
        out.extend_from_slice(format!("version {}\n", self.version).as_bytes());
        out.extend_from_slice(format!("notice {}\n", self.notice).as_bytes());
        if !self.reason.is_empty() {
            out.extend_from_slice(format!("reason {}\n", self.reason).as_bytes());
        }
        out.push(b'\n');
        out.extend_from_slice(self.table.as_bytes());
        out
    }

    /// Decodes a leaf, strictly: the bytes must be exactly the encoding of
    /// what they say (canonical table included), so that no two readers
    /// can read one leaf two ways.
    ///
    /// # Errors
    /// [`Error::MalformedCalendarTable`] (or [`Error::HolidayTable`] for the
    /// table) naming what is wrong.
    pub fn decode(bytes: &[u8]) -> Result<CalendarTable, Error> {
        let rest = bytes
            .strip_prefix(LEAF_MAGIC)
            .ok_or_else(|| bad("not a calendar leaf (magic)"))?;
        let text = std::str::from_utf8(rest).map_err(|_| bad("not UTF-8"))?;
        let (header, table) = text
            .split_once("\n\n")
            .ok_or_else(|| bad("no blank line after the header"))?;
        let mut lines = header.split('\n');
        let field = |line: Option<&str>, name: &str| -> Result<String, Error> {
            line.and_then(|l| l.strip_prefix(name))
                .and_then(|l| l.strip_prefix(' '))
                .map(str::to_owned)
                .ok_or_else(|| bad(format!("expected the `{name}` line")))
        };
        let version_text = field(lines.next(), "version")?;
        let version: u32 = version_text
            .parse()
            .map_err(|_| bad(format!("version {version_text:?} is not a number")))?;
        let notice = field(lines.next(), "notice")?;
        let reason = match lines.next() {
            Some(line) => field(Some(line), "reason")?,
            None => String::new(),
        };
        if lines.next().is_some() {
            return Err(bad("unexpected header line"));
        }
        let t = CalendarTable::new(version, &notice, &reason, table)?;
        if t.encode() != bytes {
            return Err(bad(
                "not in canonical form (decimal without leading zeros, canonical table)",
            ));
        }
        Ok(t)
    }
}

/// The canonical text of one year's table: `year YYYY`, then, in date
/// order, one line per run of consecutive days that are all Monday-to-
/// Friday holidays (`holiday A` or `holiday A..B`) or all weekend working
/// days (`workday A` or `workday A..B`); every line ends in `\n`.
fn canonical(year: i32, days: &YearDays) -> String {
    let mut out = format!("year {year}\n");
    let mut run: Option<(&str, Date, Date)> = None;
    let flush = |out: &mut String, run: Option<(&str, Date, Date)>| {
        if let Some((mark, a, b)) = run {
            if a == b {
                out.push_str(&format!("{mark} {a}\n"));
            } else {
                out.push_str(&format!("{mark} {a}..{b}\n"));
            }
        }
    };
    for (i, &working) in days.working.iter().enumerate() {
        let Ok(day) = Date::from_days_since_epoch(days.jan1 + i as i64) else {
            break;
        };
        let weekend = day.weekday().is_weekend();
        let mark = match (weekend, working) {
            (false, false) => Some("holiday"),
            (true, true) => Some("workday"),
            _ => None,
        };
        match (mark, run) {
            (Some(m), Some((rm, a, b))) if m == rm && b.succ().ok() == Some(day) => {
                run = Some((rm, a, day));
            }
            (Some(m), _) => {
                flush(&mut out, run);
                run = Some((m, day, day));
            }
            (None, _) => {
                flush(&mut out, run);
                run = None;
            }
        }
    }
    flush(&mut out, run);
    out
}

/// The calendar tables published on a county log, folded in log order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PublishedCalendars {
    /// Every version, in log order, with its county leaf index.
    history: Vec<(u64, CalendarTable)>,
    /// Per year, the position in `history` of the newest version.
    latest: BTreeMap<i32, usize>,
}

impl PublishedCalendars {
    /// No table published.
    pub fn new() -> PublishedCalendars {
        PublishedCalendars::default()
    }

    /// The version the next publication of `year` must carry.
    pub fn next_version(&self, year: i32) -> u32 {
        self.latest(year).map_or(1, |(_, t)| t.version + 1)
    }

    /// The newest version of `year`, with its county leaf index.
    pub fn latest(&self, year: i32) -> Option<(u64, &CalendarTable)> {
        self.latest
            .get(&year)
            .map(|&i| (self.history[i].0, &self.history[i].1))
    }

    /// Every version, in log order, with its county leaf index.
    pub fn history(&self) -> &[(u64, CalendarTable)] {
        &self.history
    }

    /// Applies the calendar leaf at county index `county_index`.
    ///
    /// # Errors
    /// [`Error::CalendarVersion`] if its version is not the next one of its
    /// year (versions count 1, 2, … in log order, each once).
    pub fn apply(&mut self, county_index: u64, table: CalendarTable) -> Result<(), Error> {
        let expected = self.next_version(table.year);
        if table.version != expected {
            return Err(Error::CalendarVersion {
                county_index,
                year: table.year,
                expected,
                found: table.version,
            });
        }
        self.latest.insert(table.year, self.history.len());
        self.history.push((county_index, table));
        Ok(())
    }

    /// The calendar in force: the seed table with every published year
    /// replaced by its newest version.
    pub fn in_force(&self) -> WorkCalendar {
        let mut calendar = WorkCalendar::shipped().clone();
        for &i in self.latest.values() {
            let (index, table) = &self.history[i];
            calendar.overlay(table, *index);
        }
        calendar
    }
}

impl WorkCalendar {
    /// The source of every covered year, ascending.
    pub fn sources(&self) -> impl Iterator<Item = (i32, &TableSource)> + '_ {
        self.sources.iter().map(|(y, s)| (*y, s))
    }

    /// The canonical table text of a covered year (§ 14.4), as a published
    /// version of it would hold.
    pub fn canonical_table(&self, year: i32) -> Option<String> {
        self.years.get(&year).map(|days| canonical(year, days))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE_2027: &str = "\
# An invented year for tests (no notice for 2027 was out when this was written).
year 2027
holiday 2027-01-01
workday 2027-02-07
holiday 2027-02-08..2027-02-12 # the weekend inside is listed nowhere
workday 2027-02-20
";

    fn table(version: u32, reason: &str) -> CalendarTable {
        CalendarTable::new(version, "测试通知〔2026〕1号", reason, TABLE_2027).unwrap()
    }

    #[test]
    fn encodes_canonically_and_decodes_strictly() {
        let t = table(1, "");
        assert_eq!(
            t.table(),
            "year 2027\nholiday 2027-01-01\nworkday 2027-02-07\nholiday 2027-02-08..2027-02-12\nworkday 2027-02-20\n"
        );
        let bytes = t.encode();
        assert!(bytes.starts_with(b"gongkai/calendar/v1\nversion 1\nnotice "));
        assert_eq!(CalendarTable::decode(&bytes).unwrap(), t);
        // Any other spelling of the same table is refused.
        for (from, to) in [
            ("version 1", "version 01"),
            (
                "holiday 2027-02-08..2027-02-12",
                "holiday 2027-02-08..2027-02-14",
            ),
            ("holiday 2027-01-01\n", "holiday 2027-01-01 \n"),
            ("workday 2027-02-20\n", "workday 2027-02-20\n# done\n"),
        ] {
            let text = String::from_utf8(bytes.clone())
                .unwrap()
                .replacen(from, to, 1);
            assert!(CalendarTable::decode(text.as_bytes()).is_err(), "{to}");
        }
        let amended = table(2, "通知更正了春节调休日期");
        let back = CalendarTable::decode(&amended.encode()).unwrap();
        assert_eq!(back.reason(), "通知更正了春节调休日期");
    }

    #[test]
    fn bad_tables_are_refused_with_the_reason() {
        let err = |v, notice: &str, reason: &str, t: &str| {
            CalendarTable::new(v, notice, reason, t)
                .unwrap_err()
                .to_string()
        };
        let n = "通知";
        assert!(err(1, n, "", "year 2027\nholiday 2028-01-03\n").contains("outside"));
        assert!(
            err(
                1,
                n,
                "",
                "year 2027\nholiday 2027-02-06\nworkday 2027-02-06\n"
            )
            .contains("2027-02-06")
        );
        assert!(err(1, n, "", "year 2027\nworkday 2027-02-08\n").contains("Saturday or Sunday"));
        assert!(
            err(
                1,
                n,
                "",
                "year 2026\nholiday 2026-01-01\nyear 2027\nholiday 2027-01-01\n"
            )
            .contains("exactly one year")
        );
        assert!(err(1, "", "", TABLE_2027).contains("notice"));
        assert!(err(1, "a\nb", "", TABLE_2027).contains("control"));
        assert!(CalendarTable::new(1, n, "替换内置表", TABLE_2027).is_ok());
        assert!(err(2, n, "", TABLE_2027).contains("must say why"));
        assert!(err(0, n, "", TABLE_2027).contains("from 1"));
    }

    #[test]
    fn versions_count_up_and_the_newest_is_in_force() {
        let mut p = PublishedCalendars::new();
        assert!(!p.in_force().covers(2027));
        assert!(matches!(
            p.apply(3, table(2, "x")),
            Err(Error::CalendarVersion {
                expected: 1,
                found: 2,
                ..
            })
        ));
        p.apply(3, table(1, "")).unwrap();
        assert!(p.apply(4, table(1, "")).is_err(), "a version once");
        let cal = p.in_force();
        let d = |s| Date::parse(s).unwrap();
        assert_eq!(cal.is_working_day(d("2027-02-07")), Ok(true));
        assert_eq!(cal.is_working_day(d("2027-02-09")), Ok(false));
        assert_eq!(cal.source(2027).unwrap().county_index, Some(3));
        assert!(cal.source(2026).unwrap().county_index.is_none());
        let amended = CalendarTable::new(
            2,
            "测试通知〔2026〕2号",
            "更正",
            "year 2027\nholiday 2027-01-01\n",
        )
        .unwrap();
        p.apply(9, amended).unwrap();
        let cal = p.in_force();
        assert_eq!(cal.is_working_day(d("2027-02-09")), Ok(true));
        assert_eq!(
            cal.describe(d("2026-12-20"), d("2027-01-10")),
            "calendar 2026 seed table, 2027 v2 (测试通知〔2026〕2号, county leaf 9)"
        );
        assert_eq!(p.history().len(), 2);
    }

    /// The seed years re-render canonically and parse back to the same
    /// days, so publishing a seed year unchanged is detectable.
    #[test]
    fn seed_years_render_canonically() {
        let seed = WorkCalendar::shipped();
        for year in seed.years() {
            let text = seed.canonical_table(year).unwrap();
            let t = CalendarTable::new(1, "通知", "", &text).unwrap();
            assert!(t.same_days_as(seed), "{year}");
            assert_eq!(t.table(), text);
        }
    }
}
