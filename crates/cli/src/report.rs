//! `gongkai report annual`: the statutory annual report (政府信息公开工作年度
//! 报告) of one department, or summed over the county, computed from a
//! verified export (FORMAT.md § 22).

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use gongkai_core::calendar::WorkCalendar;
use gongkai_core::report::AnnualReport;
use gongkai_core::types::Origin;
use gongkai_verify::audit::read_manifest;
use gongkai_verify::check::{LogAudit, Options, check_log};
use gongkai_verify::county::audit_county;
use gongkai_verify::source::ExportLog;

use crate::verify::TrustArgs;

/// Reports.
#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// The annual report (政府信息公开工作年度报告) of one year, in the
    /// national format (国办公开办函〔2021〕30号), computed from an export
    /// that verifies; each number lists the log entries it counts.
    Annual(AnnualArgs),
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Printable HTML (A4, Chinese, the national table layout).
    Html,
    /// Markdown tables.
    Md,
    /// One line per cell: id, value, printed value, entries.
    Csv,
    /// The report itself (publish this as an item: `audit` recounts it).
    Json,
}

/// `gongkai report annual`.
#[derive(Debug, Args)]
pub struct AnnualArgs {
    /// The export directory (from `gongkai export`).
    pub dir: PathBuf,
    /// The calendar year.
    #[arg(long, value_parser = clap::value_parser!(i32).range(2000..=2100))]
    pub year: i32,
    /// Sum every department of the export (the county's report) instead
    /// of the one named by --origin.
    #[arg(long)]
    pub all: bool,
    /// Output format (default: from --out's extension, else Markdown).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Write to FILE instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub trust: TrustArgs,
}

/// Runs `gongkai report annual`; returns the exit code (0 written, 1 the
/// export does not verify: no report is made from it).
///
/// # Errors
/// Bad arguments, an unreadable export or trust file (exit 2).
pub fn run(c: ReportCommand, origin: Option<&Origin>) -> Result<u8> {
    let ReportCommand::Annual(a) = c;
    let trust = a.trust.load()?;
    let origins =
        read_manifest(&a.dir).with_context(|| format!("reading the export {}", a.dir.display()))?;
    let chosen: Vec<Origin> = match (a.all, origin) {
        (true, _) => origins.clone(),
        (false, Some(o)) if origins.contains(o) => vec![o.clone()],
        (false, Some(o)) => bail!(
            "the export holds no log {o} (it holds: {})",
            names(&origins)
        ),
        (false, None) => bail!(
            "name the department with --origin, or give --all for the county (the export holds: {})",
            names(&origins)
        ),
    };
    // The work calendar the county published, as the audit uses it.
    let calendar = match audit_county(&a.dir, &trust) {
        Ok(Some((c, r))) if c.violations() == 0 => r.calendars.in_force(),
        _ => WorkCalendar::shipped().clone(),
    };
    let mut reports = Vec::new();
    for o in &chosen {
        let mut src = ExportLog::open(&a.dir, o)?;
        let opts = Options {
            trust: &trust,
            review: None,
            county_notes: &[],
            resume: None,
        };
        let audit = check_log(&mut src, &opts);
        if let Some(why) = refusal(&audit) {
            eprintln!("error: {o}: {why}; no report is computed from a log that does not verify");
            return Ok(1);
        }
        let r =
            gongkai_verify::report::recount(&mut src, audit.size, audit.size, a.year, &calendar)
                .map_err(|e| anyhow::anyhow!("{o}: {e}"))?;
        reports.push(r);
    }
    let report = if a.all {
        AnnualReport::sum("county", "全县合计", a.year, &reports)
    } else {
        reports.remove(0)
    };
    let format = a.format.unwrap_or_else(|| format_of(a.out.as_deref()));
    let text = match format {
        Format::Html => gongkai_portal::annual::html_document(&report),
        Format::Md => gongkai_portal::annual::markdown(&report),
        Format::Csv => gongkai_portal::annual::csv(&report),
        Format::Json => {
            let mut s = serde_json::to_string_pretty(&report)?;
            s.push('\n');
            s
        }
    };
    match &a.out {
        Some(p) => {
            crate::write_file(p, text.as_bytes(), 0o644)?;
            eprintln!(
                "wrote {} ({} {}, {} entries counted)",
                p.display(),
                report.department,
                report.year,
                report.size
            );
        }
        None => print!("{text}"),
    }
    Ok(0)
}

fn names(origins: &[Origin]) -> String {
    origins
        .iter()
        .map(Origin::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Why a log's audit forbids reporting from it.
fn refusal(a: &LogAudit) -> Option<String> {
    if let Some(e) = &a.error {
        return Some(format!("could not be verified ({e})"));
    }
    let v = a.violations();
    (v > 0).then(|| {
        let first = a
            .findings
            .iter()
            .find(|f| f.severity == gongkai_core::audit::Severity::Violation)
            .map_or_else(String::new, |f| format!(": {} {}", f.kind, f.detail));
        format!("{v} violation(s){first}")
    })
}

fn format_of(out: Option<&Path>) -> Format {
    match out.and_then(Path::extension).and_then(|e| e.to_str()) {
        Some("html" | "htm") => Format::Html,
        Some("csv") => Format::Csv,
        Some("json") => Format::Json,
        _ => Format::Md,
    }
}
