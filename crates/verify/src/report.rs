//! Recounting the annual report from a verified log (FORMAT.md § 22).
//!
//! [`recount`] reads entries `0..size` of a source whose entries were
//! verified in the same run ([`crate::check::check_log`]) and folds them
//! with core's [`ReportFold`]; [`check_published`] compares a report a
//! department published as an item with the recount, cell by cell.

use gongkai_core::audit::Severity;
use gongkai_core::calendar::WorkCalendar;
use gongkai_core::report::{AnnualReport, FORMAT, Recount};
use gongkai_core::tile::entry_bundles_iter;

use crate::check::Findings;
use crate::layout;
use crate::source::LogSource;

/// Largest report document read (a report lists entry indexes, a few
/// bytes each; a county of 10⁶ counted entries stays well below).
pub const MAX_REPORT_LEN: usize = 64 << 20;

/// The report of `year` over entries `0..size` of `src`, a log of
/// `log_size` entries (its bundles are those of that size), with the tree
/// root at `size`. The entries must have been verified already: this only
/// decodes them.
///
/// # Errors
/// A message when an entry cannot be read or decoded, or `size` is 0.
pub fn recount(
    src: &mut dyn LogSource,
    size: u64,
    log_size: u64,
    year: i32,
    calendar: &WorkCalendar,
) -> Result<AnnualReport, String> {
    if size > log_size {
        return Err(format!("the log holds {log_size} entries, not {size}"));
    }
    if size == 0 {
        return Err("a report needs at least the genesis entry".into());
    }
    let mut recount = Recount::new(year, calendar.clone()).map_err(|e| e.to_string())?;
    for b in entry_bundles_iter(log_size) {
        if b.first_entry() >= size {
            break;
        }
        if recount.size() != b.first_entry() {
            return Err(format!("{}: entries before it are missing", b.path()));
        }
        let entries = src.bundle(&b).map_err(|e| format!("{}: {e}", b.path()))?;
        for bytes in entries {
            if recount.size() >= size {
                break;
            }
            recount.push(bytes).map_err(|e| e.to_string())?;
        }
    }
    if recount.size() != size {
        return Err(format!(
            "the log holds {} of {size} entries",
            recount.size()
        ));
    }
    Ok(recount.finish())
}

/// Parses a report document strictly: JSON of [`FORMAT`], nothing else.
///
/// # Errors
/// What is wrong with it, in words.
pub fn parse(doc: &[u8]) -> Result<AnnualReport, String> {
    if doc.len() > MAX_REPORT_LEN {
        return Err(format!("larger than {MAX_REPORT_LEN} bytes"));
    }
    let r: AnnualReport = serde_json::from_slice(doc).map_err(|e| format!("not a report: {e}"))?;
    if r.format != FORMAT {
        return Err(format!("format {:?}, expected {FORMAT:?}", r.format));
    }
    Ok(r)
}

/// Most distinct recounts (report size and year) one audit of a log makes:
/// each reads the log up to the report's size, so a hostile log publishing
/// thousands of reports at different sizes must not make its audit
/// quadratic. Reports beyond are a warning, never silently passed.
pub const MAX_RECOUNTS: usize = 16;

/// The recounts one audit of a log has made, by (size, year).
#[derive(Debug, Default)]
pub struct Recounts {
    done: std::collections::BTreeMap<(u64, i32), Result<AnnualReport, String>>,
}

/// Audit step: the report published at entry `index` (its document `doc`)
/// against a recount of the log at the size it names. Tables 二 to 四 are
/// pure counts of the log: a difference is the violation
/// `annual-report-mismatch` naming the cell. The annex also depends on the
/// work calendar the reader knows: a difference there is a warning.
pub fn check_published(
    src: &mut dyn LogSource,
    index: u64,
    doc: &[u8],
    log_size: u64,
    calendar: &WorkCalendar,
    recounts: &mut Recounts,
    cx: &mut Findings,
) {
    let file = layout::bundle_of(index, log_size).map_or_else(String::new, |b| b.path());
    let mismatch = |cx: &mut Findings, detail: String| {
        cx.violation("annual-report-mismatch", Some(index), &file, detail);
    };
    let published = match parse(doc) {
        Ok(r) => r,
        Err(e) => return mismatch(cx, format!("the annual report published here: {e}")),
    };
    if published.origin != src.origin().as_str() {
        return mismatch(
            cx,
            format!("the report is for {}, not this log", published.origin),
        );
    }
    if published.size > index {
        return mismatch(
            cx,
            format!(
                "the report claims to count {} entries, but it was published at entry {index}",
                published.size
            ),
        );
    }
    let key = (published.size, published.year);
    if !recounts.done.contains_key(&key) {
        if recounts.done.len() >= MAX_RECOUNTS {
            cx.push(
                Severity::Warning,
                "cannot-verify",
                Some(index),
                &file,
                format!(
                    "the annual report was not recounted: this log publishes reports at more \
                     than {MAX_RECOUNTS} different sizes"
                ),
            );
            return;
        }
        let r = recount(src, published.size, log_size, published.year, calendar);
        recounts.done.insert(key, r);
    }
    let fresh = match &recounts.done[&key] {
        Ok(r) => r,
        Err(e) => {
            cx.push(
                Severity::Warning,
                "cannot-verify",
                Some(index),
                &file,
                format!("the annual report could not be recounted: {e}"),
            );
            return;
        }
    };
    if !published.root.is_empty() && published.root != fresh.root {
        mismatch(
            cx,
            format!(
                "the report names root {} at size {}, the log's is {}",
                published.root, published.size, fresh.root
            ),
        );
    }
    if published.department != fresh.department {
        mismatch(
            cx,
            format!(
                "the report names the department {:?}, the log {:?}",
                published.department, fresh.department
            ),
        );
    }
    for (cell, said, counted) in published.differences(fresh) {
        let detail = format!(
            "{} report, cell {cell}: the report says {said}, the log counts {counted} \
             (entries 0..{})",
            published.year, published.size
        );
        if cell.starts_with("annex.") {
            cx.push(
                Severity::Warning,
                "annual-report-annex-differs",
                Some(index),
                &file,
                detail,
            );
        } else {
            mismatch(cx, detail);
        }
    }
}
