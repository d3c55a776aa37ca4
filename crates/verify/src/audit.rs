//! `audit`: an export directory checked completely, offline (FORMAT.md
//! § 16.3, § 17): the county log first (its leaves give the department
//! checkpoints it cosigned and the holiday tables it published), then
//! every log the manifest lists through [`check::check_log`] with the
//! review of the log's duties.

use std::path::Path;

use gongkai_core::calendar::WorkCalendar;
use gongkai_core::date::Date;
use gongkai_core::types::Origin;

use crate::VerifyError;
use crate::check::{self, LogAudit, Options};
use crate::county::{CountyRecords, audit_county};
use crate::layout;
use crate::source::{ExportLog, LogSource, MAX_MANIFEST, SafeDir};
use crate::trust::Trust;

/// Reads and parses the manifest of the export at `root`.
///
/// # Errors
/// No manifest, or one that does not parse (FORMAT.md § 16.2).
pub fn read_manifest(root: &Path) -> Result<Vec<Origin>, VerifyError> {
    let bytes = SafeDir::new(root)
        .read(layout::MANIFEST, MAX_MANIFEST)
        .map_err(|e| {
            VerifyError::Layout(format!("{} is not a gongkai export ({e})", root.display()))
        })?;
    let text = String::from_utf8(bytes).map_err(|_| {
        VerifyError::Layout(format!(
            "{}/{}: not UTF-8",
            root.display(),
            layout::MANIFEST
        ))
    })?;
    layout::parse_manifest(&text)
        .map_err(|e| VerifyError::Layout(format!("{}/{}: {e}", root.display(), layout::MANIFEST)))
}

/// Audits the export at `root`: every log of its manifest, judged as of
/// `as_of`, then the county log (last in the list) when there is one.
///
/// The county's holiday tables count only from a county log that verified
/// under a trusted county key; else the shipped table alone.
///
/// # Errors
/// No usable manifest; an origin that cannot be a directory.
pub fn audit_export(root: &Path, trust: &Trust, as_of: Date) -> Result<Vec<LogAudit>, VerifyError> {
    let origins = read_manifest(root)?;
    let county = audit_county(root, trust)?;
    audit_logs(county, &origins, trust, as_of, |o| {
        Ok(Box::new(ExportLog::open(root, o)?))
    })
}

/// Audits the logs `origins`, each read from the source `open` gives (an
/// export directory, or the static files of a portal or bucket), judged as
/// of `as_of` over the cosigned checkpoints and holiday tables of the
/// audited county log `county`; the county's audit goes last in the list.
///
/// The county's holiday tables count only from a county log that verified
/// under a trusted county key; else the shipped table alone.
///
/// # Errors
/// What `open` returns.
pub fn audit_logs<'a>(
    county: Option<(LogAudit, CountyRecords)>,
    origins: &[Origin],
    trust: &Trust,
    as_of: Date,
    mut open: impl FnMut(&Origin) -> Result<Box<dyn LogSource + 'a>, VerifyError>,
) -> Result<Vec<LogAudit>, VerifyError> {
    let notes = county.as_ref().map_or(&[][..], |(_, r)| r.notes.as_slice());
    let calendar = match &county {
        Some((c, r))
            if c.violations() == 0 && !c.findings.iter().any(|f| f.kind == "county-unverified") =>
        {
            r.calendars.in_force()
        }
        _ => WorkCalendar::shipped().clone(),
    };
    let mut logs = Vec::new();
    for o in origins {
        let mut src = open(o)?;
        let opts = Options {
            trust,
            review: Some((as_of, &calendar)),
            county_notes: notes,
            resume: None,
        };
        logs.push(check::check_log(src.as_mut(), &opts));
    }
    if let Some((c, _)) = county {
        logs.push(c);
    }
    Ok(logs)
}
