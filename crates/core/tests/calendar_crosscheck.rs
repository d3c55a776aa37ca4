//! Cross-checks the shipped holiday table against an independent
//! transcription of the same State Council notices: the PyPI package
//! `chinesecalendar` (module `chinese_calendar`), listed in
//! `scripts/requirements-test.txt`.
//!
//! Every day of every covered year must agree. The test also fails when
//! `chinesecalendar` knows a year after the table's last one: a new notice
//! is out and the table is stale.
//!
//! Without `python3` or the module the test fails when `CI` is set, and
//! otherwise prints a loud skip notice (install with
//! `pip install -r scripts/requirements-test.txt`).

use std::io::Write;
use std::process::Command;

use gongkai_core::calendar::WorkCalendar;
use gongkai_core::date::Date;

/// Prints the module's version and last year with data, then one line
/// `YYYY-MM-DD 0|1` per day of each year given as an argument.
const DUMP: &str = r#"
import datetime, sys
import chinese_calendar as cc
from chinese_calendar import constants
version = getattr(cc, "__version__", "unknown")
last = max(d.year for d in list(constants.holidays) + list(constants.workdays))
print("version", version)
print("last_year", last)
for year in map(int, sys.argv[1:]):
    day = datetime.date(year, 1, 1)
    while day.year == year:
        print(day.isoformat(), 1 if cc.is_workday(day) else 0)
        day += datetime.timedelta(days=1)
"#;

fn unavailable(why: &str) {
    let message = format!(
        "calendar cross-check cannot run: {why}\n\
         install it with `pip install -r scripts/requirements-test.txt`"
    );
    if std::env::var_os("CI").is_some() {
        panic!("{message}");
    }
    // Straight to the process's stderr: libtest captures `eprintln!` of
    // passing tests, and this notice must be seen.
    let banner = "!".repeat(72);
    let _ = writeln!(
        std::io::stderr(),
        "\n{banner}\n!!! SKIPPED: {message}\n{banner}\n"
    );
}

#[test]
fn shipped_table_agrees_with_chinesecalendar_on_every_day() {
    let calendar = WorkCalendar::shipped();
    let years: Vec<i32> = calendar.years().collect();
    let output = match Command::new("python3")
        .arg("-c")
        .arg(DUMP)
        .args(years.iter().map(i32::to_string))
        .output()
    {
        Ok(output) => output,
        Err(e) => return unavailable(&format!("python3 does not run ({e})")),
    };
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        if stderr.contains("No module named") {
            return unavailable("the Python module chinese_calendar is not installed");
        }
        panic!("chinesecalendar failed (does it cover all of {years:?}?):\n{stderr}");
    }
    let stdout = String::from_utf8(output.stdout).expect("python prints ASCII");
    let mut lines = stdout.lines();
    let version = lines.next().unwrap_or_default();
    let last_year: i32 = lines
        .next()
        .and_then(|l| l.strip_prefix("last_year "))
        .and_then(|y| y.parse().ok())
        .expect("the script prints last_year");
    eprintln!("cross-checking {years:?} against chinesecalendar ({version})");

    let mut days = 0;
    let mut disagreements = Vec::new();
    for line in lines {
        let (date, flag) = line.split_once(' ').expect("`date flag` lines");
        let date = Date::parse(date).expect("python prints ISO dates");
        let theirs = flag == "1";
        let ours = calendar
            .is_working_day(date)
            .expect("the table covers the years it was asked about");
        if ours != theirs {
            disagreements.push(format!("{date}: table {ours}, chinesecalendar {theirs}"));
        }
        days += 1;
    }
    assert!(
        disagreements.is_empty(),
        "the holiday table disagrees with chinesecalendar on {} days:\n{}",
        disagreements.len(),
        disagreements.join("\n")
    );
    let expected_days: i64 = years
        .iter()
        .map(|&y| {
            let first = Date::new(y, 1, 1).unwrap();
            let next = Date::new(y + 1, 1, 1).unwrap();
            next.days_since_epoch() - first.days_since_epoch()
        })
        .sum();
    assert_eq!(
        days, expected_days,
        "every day of every covered year compared"
    );
    assert!(
        last_year <= calendar.last_year(),
        "chinesecalendar has data up to {last_year} but the table stops at {}: \
         transcribe the newer State Council notice",
        calendar.last_year()
    );
}
