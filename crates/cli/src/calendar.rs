//! `gongkai calendar …`: the working-day calendar as data (FORMAT.md
//! § 14.4). The county publishes each year's holiday table on its log;
//! every verifier judges deadlines with the same tables.
//!
//! The file an operator writes (TOML):
//!
//! ```toml
//! year = 2027
//! notice = "国办发明电〔2026〕N号"
//! # Days off, single days or inclusive ranges (weekends inside a range
//! # may be listed or not).
//! holidays = ["2027-01-01", "2027-02-06..2027-02-13"]
//! # Saturdays or Sundays that are working days (调休上班).
//! workdays = ["2027-02-14"]
//! ```

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use clap::Subcommand;
use gongkai_core::calendar::WorkCalendar;
use gongkai_core::calendar::published::{CalendarTable, PublishedCalendars};
use gongkai_core::date::Date;
use gongkai_proto::v1;
use serde::Deserialize;

use crate::client::{Connection, status_failure};

/// `gongkai calendar …`.
#[derive(Debug, Subcommand)]
pub enum CalendarCommand {
    /// Publish a year's holiday table on the county log (needs the county's
    /// admin token, --token or GONGKAI_TOKEN; --server is the county).
    Publish {
        /// The year the file describes (checked against the file).
        #[arg(long)]
        year: i32,
        /// The table (TOML: year, notice, holidays, workdays; see
        /// docs/OPERATIONS.md § The working-day calendar).
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
    },
    /// Publish a new version of a year in force, e.g. after the State
    /// Council corrects its notice (admin token). The old version stays on
    /// the log; audits list the amendment.
    Amend {
        /// The year.
        #[arg(long)]
        year: i32,
        /// The corrected table (same format as for publish).
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
        /// Why the table changes (kept on the log).
        #[arg(long)]
        reason: String,
    },
    /// Check a table file without publishing it, and print it as it would
    /// be published.
    Check {
        /// The table file.
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Print the calendar in force at the county (--server): each year and
    /// where its table comes from; with --year, that year's days off and
    /// working weekends.
    Show {
        /// One year's days.
        #[arg(long)]
        year: Option<i32>,
        /// Only the seed table built into this binary (no server needed).
        #[arg(long)]
        seed: bool,
    },
}

/// The operator's table file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TableFile {
    year: i32,
    notice: String,
    #[serde(default)]
    holidays: Vec<String>,
    #[serde(default)]
    workdays: Vec<String>,
}

/// Reads a table file into the holiday-table text of § 14.1, checked by
/// the same parser every verifier uses. Errors name the file entry.
fn read_table(path: &Path, year: Option<i32>) -> Result<(String, String)> {
    let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    let f: TableFile = toml::from_str(&text).with_context(|| {
        format!(
            "{} is not a calendar file (TOML with year, notice, holidays, workdays)",
            path.display()
        )
    })?;
    if let Some(y) = year
        && y != f.year
    {
        bail!(
            "--year {y} but {} describes year {}",
            path.display(),
            f.year
        );
    }
    // Each entry: (first date, statement, what the user wrote).
    let mut lines = Vec::new();
    for (keyword, list, field) in [
        ("holiday", &f.holidays, "holidays"),
        ("workday", &f.workdays, "workdays"),
    ] {
        for entry in list {
            let first = entry.split("..").next().unwrap_or_default();
            let date = Date::parse(first)
                .map_err(|e| anyhow::anyhow!("`{field}` entry {entry:?}: {e}"))?;
            lines.push((
                date,
                format!("{keyword} {entry}"),
                format!("`{field}` entry {entry:?}"),
            ));
        }
    }
    lines.sort_by_key(|l| l.0);
    let mut table = format!("year {}\n", f.year);
    for (_, line, _) in &lines {
        table.push_str(line);
        table.push('\n');
    }
    if let Err(e) = WorkCalendar::parse(&table) {
        // Line 1 is `year`; line n + 1 is the n-th sorted entry.
        let what = match &e {
            gongkai_core::Error::HolidayTable { line, reason } => {
                match lines.get(line.wrapping_sub(2)) {
                    Some((_, _, entry)) => format!("{entry}: {reason}"),
                    None => reason.clone(),
                }
            }
            other => other.to_string(),
        };
        bail!("{}: {what}", path.display());
    }
    Ok((f.notice, table))
}

/// Runs `gongkai calendar …`.
///
/// # Errors
/// A bad file, an unreachable county, or the county's refusal (which says
/// why, e.g. the year is already published).
pub async fn run(conn: &Connection, cmd: CalendarCommand, json: bool) -> Result<()> {
    let fail = |s: tonic::Status| anyhow::Error::from(status_failure(&conn.server, &s));
    match cmd {
        CalendarCommand::Check { file } => {
            let (notice, table) = read_table(&file, None)?;
            let t = CalendarTable::new(1, &notice, "", &table)?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({ "year": t.year(), "notice": t.notice(), "table": t.table() })
                );
            } else {
                println!(
                    "{} is a valid table of {} ({notice}):",
                    file.display(),
                    t.year()
                );
                print!("{}", t.table());
            }
            Ok(())
        }
        CalendarCommand::Publish { year, file } => {
            publish(conn, &file, year, "", false, json).await
        }
        CalendarCommand::Amend { year, file, reason } => {
            publish(conn, &file, year, &reason, true, json).await
        }
        CalendarCommand::Show { year, seed } => {
            let calendar = if seed {
                WorkCalendar::shipped().clone()
            } else {
                let mut client = crate::county::connect(conn)?;
                let list = client
                    .list_calendar(v1::ListCalendarRequest {})
                    .await
                    .map_err(fail)?
                    .into_inner();
                let mut published = PublishedCalendars::new();
                for l in list.published {
                    let t = CalendarTable::decode(&l.leaf).with_context(|| {
                        format!(
                            "the county's calendar leaf {} does not decode",
                            l.county_index
                        )
                    })?;
                    published.apply(l.county_index, t)?;
                }
                published.in_force()
            };
            show(&calendar, year, json)
        }
    }
}

async fn publish(
    conn: &Connection,
    file: &Path,
    year: i32,
    reason: &str,
    amend: bool,
    json: bool,
) -> Result<()> {
    let (notice, table) = read_table(file, Some(year))?;
    // Checked here too, so a bad notice or reason is said before any
    // network round trip.
    CalendarTable::new(if amend { 2 } else { 1 }, &notice, reason, &table)?;
    let Some(token) = &conn.token else {
        bail!("publishing a calendar needs the county's admin token (--token or GONGKAI_TOKEN)");
    };
    let mut client = crate::county::connect(conn)?;
    let mut req = tonic::Request::new(v1::PublishCalendarRequest {
        notice,
        reason: reason.to_owned(),
        table,
        amend,
    });
    crate::client::put_bearer(&mut req, &conn.server, token)?;
    let r = client
        .publish_calendar(req)
        .await
        .map_err(|s| anyhow::Error::from(status_failure(&conn.server, &s)))?
        .into_inner();
    if json {
        println!(
            "{}",
            serde_json::json!({
                "year": year, "version": r.version, "county_index": r.county_index,
                "checkpoint": r.checkpoint,
            })
        );
    } else {
        println!(
            "published the {year} holiday table, version {}, as county log leaf {}; \
             deadlines touching {year} are judged with it from now on",
            r.version, r.county_index
        );
    }
    Ok(())
}

fn show(calendar: &WorkCalendar, year: Option<i32>, json: bool) -> Result<()> {
    if let Some(y) = year {
        let Some(table) = calendar.canonical_table(y) else {
            bail!(
                "no holiday table for {y}: judgements that need it say \"cannot judge yet\" until \
                 the county publishes it (gongkai calendar publish --year {y} --file FILE)"
            );
        };
        let source = calendar
            .source(y)
            .map(ToString::to_string)
            .unwrap_or_default();
        if json {
            println!(
                "{}",
                serde_json::json!({ "year": y, "source": source, "table": table })
            );
        } else {
            println!("{y}: {source}");
            print!("{table}");
        }
        return Ok(());
    }
    if json {
        let years: Vec<_> = calendar
            .sources()
            .map(|(y, s)| {
                serde_json::json!({
                    "year": y, "version": s.version, "notice": s.notice,
                    "county_index": s.county_index, "source": s.to_string(),
                })
            })
            .collect();
        println!("{}", serde_json::json!({ "years": years }));
    } else {
        for (y, s) in calendar.sources() {
            println!("{y}  {s}");
        }
        let next = calendar.last_year() + 1;
        println!(
            "{next} and later: no table yet (\"cannot judge yet\"); publish with \
             gongkai calendar publish --year {next} --file FILE"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("2027.toml");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn a_table_file_reads_in_any_order_and_errors_name_the_entry() {
        let (_d, p) = file(
            "year = 2027\nnotice = \"通知\"\nholidays = [\"2027-02-08..2027-02-12\", \"2027-01-01\"]\nworkdays = [\"2027-02-07\"]\n",
        );
        let (notice, table) = read_table(&p, Some(2027)).unwrap();
        assert_eq!(notice, "通知");
        assert_eq!(
            table,
            "year 2027\nholiday 2027-01-01\nworkday 2027-02-07\nholiday 2027-02-08..2027-02-12\n"
        );
        assert!(
            read_table(&p, Some(2028))
                .unwrap_err()
                .to_string()
                .contains("--year 2028")
        );
        for (bad, says) in [
            (
                "holidays = [\"2028-01-03\"]",
                "`holidays` entry \"2028-01-03\"",
            ),
            (
                "holidays = [\"2027-02-06\"]\nworkdays = [\"2027-02-06\"]",
                "2027-02-06",
            ),
            (
                "workdays = [\"2027-02-08\"]",
                "`workdays` entry \"2027-02-08\"",
            ),
            ("holidays = [\"2027-13-01\"]", "2027-13-01"),
        ] {
            let (_d, p) = file(&format!("year = 2027\nnotice = \"通知\"\n{bad}\n"));
            let e = format!("{:#}", read_table(&p, None).unwrap_err());
            assert!(e.contains(says), "{bad}: {e}");
        }
        let (_d, p) = file("year = 2027\nnotice = \"通知\"\nholiday = [\"2027-01-01\"]\n");
        assert!(format!("{:#}", read_table(&p, None).unwrap_err()).contains("holiday"));
    }
}
