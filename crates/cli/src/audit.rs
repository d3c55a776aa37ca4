//! `gongkai audit DIR`: the arguments, the report (text, JSON, Markdown,
//! HTML) and the exit code of an offline audit of an export. The audit
//! itself — every log of the export through the one check of
//! `gongkai-verify`, the county log first — is
//! [`gongkai_verify::audit::audit_export`]; FORMAT.md § 16.3 and § 17 say
//! what it checks and what each finding means.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
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
    /// The export directory (from `gongkai export`). Or, with --url, no
    /// directory: the logs are read as static files.
    #[arg(required_unless_present = "url", conflicts_with = "url")]
    pub dir: Option<PathBuf>,
    #[command(flatten)]
    pub trust: TrustArgs,
    /// Audit the logs the trust file lists, and the county log when it
    /// names the county's key, read as static files (FORMAT.md § 9.4) from
    /// a county portal, a CDN or a bucket, instead of from an export.
    #[command(flatten)]
    pub statics: crate::verify::StaticArgs,
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
pub fn run(a: AuditArgs, json: bool, ca: Option<&Path>) -> Result<u8> {
    let trust = a.trust.load()?;
    let as_of = match a.as_of {
        Some(d) => d,
        None => Date::parse(&crate::today()).context("today's date")?,
    };
    let started = Instant::now();
    let logs = match (&a.dir, a.statics.site(ca)?) {
        (_, Some(site)) => audit_site(&site, &trust, as_of)?,
        (Some(dir), None) => audit_export(dir, &trust, as_of)?,
        (None, None) => bail!("give the export directory, or --url"),
    };
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

/// The audit of the logs at a static site: the county log first (when the
/// trust names its key; its leaves give the department checkpoints it
/// cosigned and the holiday tables in force), then every department log
/// the trust lists.
fn audit_site(
    site: &crate::static_http::Site,
    trust: &gongkai_verify::trust::Trust,
    as_of: Date,
) -> Result<Vec<LogAudit>> {
    if trust.logs.is_empty() {
        bail!("the trust lists no department log to audit");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the async runtime")?;
    let hidden = indicatif::ProgressBar::hidden;
    let county = match &trust.county_log {
        Some(key) => {
            let origin = gongkai_core::types::Origin::new(key.name().as_str())
                .with_context(|| format!("the county log key's name {}", key.name()))?;
            let mut src = site.log(origin.clone(), runtime.handle().clone(), hidden());
            Some(gongkai_verify::county::audit_county_log(
                &mut src,
                &origin,
                gongkai_verify::check::Findings::new(None),
                trust,
            ))
        }
        None => None,
    };
    let origins: Vec<_> = trust.logs.keys().cloned().collect();
    Ok(gongkai_verify::audit::audit_logs(
        county,
        &origins,
        trust,
        as_of,
        |o| {
            Ok(Box::new(site.log(
                o.clone(),
                runtime.handle().clone(),
                hidden(),
            )))
        },
    )?)
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

/// What an audit shows, in Chinese (the report is bilingual).
const WHAT_IT_SHOWS_ZH: &str = "审计证明导出的台账在其检查点处是一份前后一致、签名有效的记录；\
它不能证明部门记录了所有应记录的事项：缺漏只能对照其自己目录中的事项判断。";

fn severity_zh(s: Severity) -> &'static str {
    match s {
        Severity::Info => "信息 info",
        Severity::Warning => "警告 warning",
        Severity::Violation => "违规 VIOLATION",
    }
}

/// The audit as a report an inspection office can print and file: the
/// verdict and counts first, in Chinese and English, departments by name,
/// violations highlighted, file paths in an appendix.
fn report_html(logs: &[LogAudit], as_of: Date) -> String {
    use std::fmt::Write as _;
    let violations: usize = logs.iter().map(LogAudit::violations).sum();
    let unreadable = logs.iter().filter(|l| l.error.is_some()).count();
    let name = |l: &LogAudit| {
        l.department.clone().unwrap_or_else(|| {
            if l.county {
                "县级日志 county log".into()
            } else {
                "（名称未核验 name not verified）".into()
            }
        })
    };
    let mut s = String::from(
        "<!doctype html>\n<html lang=\"zh-CN\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>政府信息公开台账审计报告 Audit report</title><style>\
         @page{size:A4;margin:15mm 12mm}\
         body{font:15px/1.6 system-ui,\"Noto Sans CJK SC\",\"Microsoft YaHei\",sans-serif;max-width:60rem;margin:1rem auto;padding:0 1rem;color:#1d1d1f}\
         table{border-collapse:collapse;width:100%;margin:.5rem 0}th,td{border:1px solid #999;padding:.25rem .4rem;text-align:left;vertical-align:top}\
         th{background:#f2f2f2}.verdict{border:3px solid;padding:.6rem 1rem;font-size:1.2rem;margin:1rem 0}\
         .clean{border-color:#137333;color:#137333}.bad{border-color:#b3261e;color:#b3261e}.unknown{border-color:#8a5a00;color:#8a5a00}\
         tr.violation td{background:#fce8e6}tr.warning td{background:#fff4e0}td.n{text-align:right;white-space:nowrap}\
         .note{color:#555;font-size:.9em}code{overflow-wrap:anywhere}tr{break-inside:avoid}\
         </style></head><body>\n<h1>政府信息公开台账审计报告<br><small>Audit report of the disclosure ledger</small></h1>\n",
    );
    let (class, zh, en) = if violations > 0 {
        (
            "bad",
            format!("结论：发现 {violations} 项违规。"),
            format!("Verdict: {violations} violation(s) found."),
        )
    } else if unreadable > 0 {
        (
            "unknown",
            format!("结论：{unreadable} 份日志无法读取，未能得出结论。"),
            format!("Verdict: {unreadable} log(s) could not be read; nothing is proven."),
        )
    } else {
        (
            "clean",
            "结论：未发现违规。".to_owned(),
            "Verdict: clean, no violation found.".to_owned(),
        )
    };
    let _ = writeln!(
        s,
        "<div class=\"verdict {class}\"><strong>{}</strong><br>{}</div>\n\
         <p>判断日期（北京时间）Judged as of: {as_of}</p>",
        esc(&zh),
        esc(&en)
    );
    s.push_str(
        "<table><tr><th>部门 Department</th><th>台账记录 Entries</th><th>已核验 Verified</th>\
         <th>见证副署 Cosignatures</th><th>违规 Violations</th><th>警告 Warnings</th></tr>\n",
    );
    for l in logs {
        let warnings = l
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Warning)
            .count();
        let _ = writeln!(
            s,
            "<tr{}><td>{}<br><code>{}</code>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            if l.violations() > 0 {
                " class=\"violation\""
            } else {
                ""
            },
            esc(&name(l)),
            esc(&l.origin),
            l.error.as_ref().map_or_else(String::new, |e| format!(
                "<br>无法读取 unreadable: {}",
                esc(e)
            )),
            l.size,
            l.entries_verified,
            l.cosignatures.len(),
            l.violations(),
            warnings
        );
    }
    s.push_str("</table>\n");
    let _ = writeln!(
        s,
        "<p class=\"note\">{}<br>{}</p>",
        esc(WHAT_IT_SHOWS_ZH),
        esc(WHAT_IT_SHOWS)
    );
    // Findings, violations first; each numbered so the appendix can give
    // its file.
    let mut files = Vec::new();
    for l in logs {
        let _ = writeln!(
            s,
            "<h2>{} <small><code>{}</code></small></h2>",
            esc(&name(l)),
            esc(&l.origin)
        );
        if l.findings.is_empty() {
            s.push_str("<p>无发现 No findings.</p>\n");
            continue;
        }
        s.push_str(
            "<table><tr><th>#</th><th>严重程度 Severity</th><th>类型 Finding</th><th>记录序号 Entry</th>\
             <th>对象 Subject</th><th>说明 Detail</th></tr>\n",
        );
        let mut sorted: Vec<_> = l.findings.iter().collect();
        sorted.sort_by_key(|f| std::cmp::Reverse(f.severity));
        for f in sorted {
            files.push((files.len() + 1, f.file.clone().unwrap_or_default()));
            let class = match f.severity {
                Severity::Violation => " class=\"violation\"",
                Severity::Warning => " class=\"warning\"",
                Severity::Info => "",
            };
            let _ = writeln!(
                s,
                "<tr{class}><td class=\"n\">{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td><td>{}</td><td>{}</td></tr>",
                files.len(),
                severity_zh(f.severity),
                f.kind,
                f.index.map_or_else(String::new, |i| i.to_string()),
                esc(&f.subject),
                esc(&f.detail)
            );
        }
        s.push_str("</table>\n");
    }
    if files.iter().any(|(_, f)| !f.is_empty()) {
        s.push_str("<h2>附录：文件位置 Appendix: files</h2>\n<table><tr><th>#</th><th>导出目录中的文件 File in the export</th></tr>\n");
        for (n, f) in files.iter().filter(|(_, f)| !f.is_empty()) {
            let _ = writeln!(
                s,
                "<tr><td class=\"n\">{n}</td><td><code>{}</code></td></tr>",
                esc(f)
            );
        }
        s.push_str("</table>\n");
    }
    s.push_str("</body></html>\n");
    s
}
