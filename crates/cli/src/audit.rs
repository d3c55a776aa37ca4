//! `gongkai audit DIR`: the arguments, the report (text, JSON, Markdown,
//! HTML) and the exit code of an offline audit of an export. The audit
//! itself — every log of the export through the one check of
//! `gongkai-verify`, the county log first — is
//! [`gongkai_verify::audit::audit_export`]; FORMAT.md § 16.3 and § 17 say
//! what it checks and what each finding means.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use clap::Args;
use gongkai_core::audit::Severity;
use gongkai_core::date::Date;
use gongkai_verify::audit::audit_export;
use gongkai_verify::check::LogAudit;
use serde_json::json;

use crate::output::{Table, print_json};
use crate::verify::TrustArgs;

/// `gongkai audit`.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// The export directory (from `gongkai export`).
    pub dir: PathBuf,
    #[command(flatten)]
    pub trust: TrustArgs,
    /// Also write the report to FILE.md (Markdown) or FILE.html.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Judge open requests and due periods as of this date (default: today,
    /// China Standard Time).
    #[arg(long, value_parser = crate::input::date, value_name = "YYYY-MM-DD")]
    pub as_of: Option<Date>,
}

/// Runs `gongkai audit`; returns the exit code.
///
/// # Errors
/// An unreadable export or trust (exit 2).
pub fn run(a: AuditArgs, json: bool) -> Result<u8> {
    let trust = a.trust.load()?;
    let as_of = match a.as_of {
        Some(d) => d,
        None => Date::parse(&crate::today()).context("today's date")?,
    };
    let started = Instant::now();
    let logs = audit_export(&a.dir, &trust, as_of)?;
    let elapsed = started.elapsed();
    let violations: usize = logs.iter().map(LogAudit::violations).sum();
    if let Some(r) = &a.report {
        let html = r.extension().is_some_and(|e| e == "html" || e == "htm");
        let text = if html {
            report_html(&logs, as_of)
        } else {
            report_markdown(&logs, as_of)
        };
        crate::write_file(r, text.as_bytes(), 0o644)?;
    }
    if json {
        print_json(&json!({
            "result": if violations == 0 { "clean" } else { "violations" },
            "as_of": as_of.to_string(),
            "violations": violations,
            "logs": logs,
            "seconds": elapsed.as_secs_f64(),
        }));
    } else {
        print!("{}", report_text(&logs, as_of, elapsed));
    }
    Ok(if violations == 0 { 0 } else { 1 })
}

fn severity_name(s: Severity) -> &'static str {
    match s {
        Severity::Info => "info",
        Severity::Warning => "warning",
        Severity::Violation => "VIOLATION",
    }
}

const WHAT_IT_SHOWS: &str = "An audit shows that the export is one consistent, signed log as of its \
checkpoint. It does not show that the department recorded everything it should have: missing \
disclosures are judged only against the matters in its own catalog.";

fn report_text(logs: &[LogAudit], as_of: Date, elapsed: Duration) -> String {
    let mut t = Table::new(&[
        "LOG",
        "SIZE",
        "VERIFIED",
        "CONTENT",
        "COSIGNED",
        "VIOLATIONS",
    ]);
    for l in logs {
        t.row(vec![
            l.origin.clone(),
            l.size.to_string(),
            l.entries_verified.to_string(),
            format!(
                "{} ok, {} restricted, {} redacted",
                l.content_ok, l.content_restricted, l.content_redacted
            ),
            if l.cosignatures.is_empty() {
                "no".into()
            } else {
                l.cosignatures.len().to_string()
            },
            l.violations().to_string(),
        ]);
    }
    let mut s = t.render();
    s.push('\n');
    for l in logs {
        for f in &l.findings {
            s.push_str(&format!(
                "{:<9} {:<22} {:>8}  {}  {}{}\n",
                severity_name(f.severity),
                f.kind,
                f.index.map_or_else(|| "-".into(), |i| format!("#{i}")),
                f.file.as_deref().unwrap_or(&l.origin),
                if f.subject.is_empty() {
                    String::new()
                } else {
                    format!("[{}] ", f.subject)
                },
                f.detail
            ));
        }
    }
    s.push_str(&format!(
        "\njudged as of {as_of}; {:.2} s\n{WHAT_IT_SHOWS}\n",
        elapsed.as_secs_f64()
    ));
    s
}

fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn report_markdown(logs: &[LogAudit], as_of: Date) -> String {
    let mut s = format!(
        "# gongkai audit report\n\nJudged as of {as_of} (China Standard Time).\n\n{WHAT_IT_SHOWS}\n"
    );
    for l in logs {
        s.push_str(&format!(
            "\n## {}\n\n- checkpoint size: {}\n- entries verified: {}\n- content: {} ok, {} restricted, {} redacted\n- witness cosignatures: {}\n- violations: {}\n\n",
            l.origin, l.size, l.entries_verified, l.content_ok, l.content_restricted, l.content_redacted,
            l.cosignatures.len(), l.violations()
        ));
        s.push_str(
            "| severity | finding | index | file | subject | detail |\n|---|---|---|---|---|---|\n",
        );
        for f in &l.findings {
            s.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} |\n",
                severity_name(f.severity),
                f.kind,
                f.index.map_or_else(String::new, |i| i.to_string()),
                md_cell(f.file.as_deref().unwrap_or("")),
                md_cell(&f.subject),
                md_cell(&f.detail)
            ));
        }
    }
    s
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn report_html(logs: &[LogAudit], as_of: Date) -> String {
    let mut s = format!(
        "<!doctype html>\n<html lang=\"zh\"><head><meta charset=\"utf-8\"><title>gongkai audit report</title></head><body>\n<h1>gongkai audit report</h1>\n<p>Judged as of {as_of} (China Standard Time).</p>\n<p>{}</p>\n",
        esc(WHAT_IT_SHOWS)
    );
    for l in logs {
        s.push_str(&format!(
            "<h2>{}</h2>\n<p>checkpoint size {}; entries verified {}; content {} ok, {} restricted, {} redacted; witness cosignatures {}; violations {}</p>\n<table border=\"1\"><tr><th>severity</th><th>finding</th><th>index</th><th>file</th><th>subject</th><th>detail</th></tr>\n",
            esc(&l.origin), l.size, l.entries_verified, l.content_ok, l.content_restricted, l.content_redacted, l.cosignatures.len(), l.violations()
        ));
        for f in &l.findings {
            s.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                severity_name(f.severity),
                f.kind,
                f.index.map_or_else(String::new, |i| i.to_string()),
                esc(f.file.as_deref().unwrap_or("")),
                esc(&f.subject),
                esc(&f.detail)
            ));
        }
        s.push_str("</table>\n");
    }
    s.push_str("</body></html>\n");
    s
}
