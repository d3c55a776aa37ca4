//! The county log part of an export (`county/`, FORMAT.md § 16.1, § 19):
//! its manifest and checkpoint, every entry bundle and hash tile against
//! the checkpoint's root, every leaf parsed as § 19 (cosigned department
//! checkpoints) or § 14.4 (published holiday tables), and the checkpoint's
//! signature by the trust file's county log key.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Instant;

use gongkai_core::audit::Severity;
use gongkai_core::calendar::published::PublishedCalendars;
use gongkai_core::checkpoint::SignedCheckpoint;
use gongkai_core::county::CountyRecord;
use gongkai_core::merkle::TreeState;
use gongkai_core::note::Verifiers;
use gongkai_core::tile::{TileBuilder, entry_bundles_iter};
use gongkai_core::types::Origin;

use crate::VerifyError;
use crate::check::{Findings, LogAudit};
use crate::layout;
use crate::source::{ExportLog, LogSource, MAX_MANIFEST, SafeDir, SourceError};
use crate::trust::Trust;

/// A department checkpoint held by a county leaf (FORMAT.md § 19).
#[derive(Debug, Clone)]
pub struct CountyNote {
    /// The entry bundle of `county/` holding the leaf, relative to the
    /// export root.
    pub file: String,
    /// The checkpoint, with its signatures and the county's cosignature.
    pub checkpoint: SignedCheckpoint,
}

/// What the export's county log holds for the department audits.
#[derive(Debug, Clone, Default)]
pub struct CountyRecords {
    /// The department checkpoints its leaves hold.
    pub notes: Vec<CountyNote>,
    /// The calendar tables it published (FORMAT.md § 14.4).
    pub calendars: PublishedCalendars,
}

/// Audits `county/` of the export at `root`. `None` when the export has
/// none; else the audit and what its leaves hold for the department audits.
///
/// # Errors
/// A county origin that cannot be a directory.
pub fn audit_county(
    root: &Path,
    trust: &Trust,
) -> Result<Option<(LogAudit, CountyRecords)>, VerifyError> {
    let dir = SafeDir::new(root);
    if !dir.is_dir(layout::COUNTY) {
        return Ok(None);
    }
    let mut out = LogAudit::new(layout::COUNTY);
    out.county = true;
    let mut cx = Findings::new(Some(layout::COUNTY));
    let manifest = dir
        .read(
            &format!("{}/{}", layout::COUNTY, layout::MANIFEST),
            MAX_MANIFEST,
        )
        .map_err(|e| e.to_string())
        .and_then(|b| String::from_utf8(b).map_err(|_| "not UTF-8".to_owned()))
        .and_then(|t| layout::parse_manifest(&t).map_err(|e| e.to_string()));
    let origin = match manifest.as_deref() {
        Ok([o]) => o.clone(),
        Ok(_) => {
            cx.violation(
                "county",
                None,
                layout::MANIFEST,
                "the county export must list exactly one log".into(),
            );
            out.findings = cx.list;
            return Ok(Some((out, CountyRecords::default())));
        }
        Err(e) => {
            cx.violation("county", None, layout::MANIFEST, e.clone());
            out.findings = cx.list;
            return Ok(Some((out, CountyRecords::default())));
        }
    };
    let mut src = ExportLog::open_county(root, &origin)?;
    let named = {
        let mut named = Findings::new(Some(src.rel()));
        named.list = cx.list;
        named
    };
    Ok(Some(audit_county_log(&mut src, &origin, named, trust)))
}

/// Audits the county log `origin` read from `src` (an export directory,
/// or the static files of a portal or bucket): its checkpoint under the
/// trusted county key (and witness quorum), every county leaf, the tiles,
/// and the root. `cx` holds findings made before (the manifest's).
pub fn audit_county_log(
    src: &mut dyn LogSource,
    origin: &Origin,
    mut cx: Findings,
    trust: &Trust,
) -> (LogAudit, CountyRecords) {
    let mut out = LogAudit::new(layout::COUNTY);
    out.county = true;
    out.origin = origin.to_string();
    let parsed = src
        .checkpoint()
        .map_err(|e| format!("cannot read the county checkpoint: {e}"))
        .and_then(|b| SignedCheckpoint::from_bytes(&b).map_err(|e| format!("does not parse: {e}")));
    let cp = match parsed {
        Ok(cp) if cp.checkpoint().origin == *origin => cp,
        Ok(cp) => {
            cx.violation(
                "checkpoint",
                None,
                layout::CHECKPOINT,
                format!("checkpoint of log {}", cp.checkpoint().origin),
            );
            out.findings = cx.list;
            return (out, CountyRecords::default());
        }
        Err(e) => {
            cx.violation("checkpoint", None, layout::CHECKPOINT, e);
            out.findings = cx.list;
            return (out, CountyRecords::default());
        }
    };
    let size = cp.checkpoint().size;
    out.size = size;
    // The signature first: without a trusted county key nothing below is
    // anchored to the county, but department notes still carry their own
    // signatures.
    match &trust.county_log {
        Some(key) => {
            if let Err(e) = cp.verify(key, &Verifiers::default(), 0) {
                cx.violation(
                    "checkpoint-signature",
                    None,
                    layout::CHECKPOINT,
                    format!("not validly signed by the trusted county log key {key}: {e}"),
                );
            } else if trust.quorum > 0 {
                // The independent witnesses cosign the county log too
                // (FORMAT.md § 21.1): k of n, as for a department log.
                let verdict = crate::trust::check_signatures(&cp, &[*key.public_key()], trust);
                if let Some(v) = verdict.violation {
                    cx.violation("checkpoint-signature", None, layout::CHECKPOINT, v);
                }
                if let Some(c) = verdict.cosign_issue {
                    cx.violation("not-cosigned", None, layout::CHECKPOINT, c);
                }
            }
        }
        None => cx.push(
            Severity::Warning,
            "county-unverified",
            None,
            layout::CHECKPOINT,
            "the trust file names no county log key (county_log): the county log was not verified"
                .into(),
        ),
    }
    let started = Instant::now();
    let mut tree = TreeState::new();
    let mut tiles = TileBuilder::new();
    let mut expected: BTreeSet<String> = BTreeSet::new();
    let mut notes = Vec::new();
    let mut calendars = PublishedCalendars::new();
    let mut complete = true;
    // Lazily: a checkpoint claiming more leaves than there are bundles
    // costs only the bundles that exist.
    for b in entry_bundles_iter(size) {
        let path = b.path();
        expected.insert(path.clone());
        let leaves = match src.bundle(&b) {
            Ok(l) => l,
            Err(e) => {
                let kind = match e {
                    SourceError::Malformed(_) => "malformed-bundle",
                    _ => "missing-file",
                };
                cx.violation(
                    kind,
                    Some(b.first_entry()),
                    &path,
                    format!("entry bundle: {e}"),
                );
                complete = false;
                break;
            }
        };
        for (i, leaf) in leaves.iter().enumerate() {
            let index = b.first_entry() + i as u64;
            let h = gongkai_core::hash::leaf_hash(leaf);
            tree.append_leaf(h);
            for (id, hashes) in tiles.push(h) {
                crate::check::compare_tile(src, &mut cx, &id, &hashes, index);
                expected.insert(id.path());
            }
            match CountyRecord::decode(leaf) {
                Ok(CountyRecord::Checkpoints(l)) => {
                    out.entries_verified += 1;
                    let file = cx.name(&path);
                    notes.extend(l.checkpoints.into_iter().map(|checkpoint| CountyNote {
                        file: file.clone(),
                        checkpoint,
                    }));
                }
                Ok(CountyRecord::Calendar(t)) => {
                    out.entries_verified += 1;
                    let (kind, what) = if t.version() == 1 {
                        ("calendar-published", "published")
                    } else {
                        ("calendar-amended", "amended")
                    };
                    let mut detail = format!(
                        "holiday table for {} {what}, version {} ({})",
                        t.year(),
                        t.version(),
                        t.notice()
                    );
                    if !t.reason().is_empty() {
                        detail.push_str(&format!(": {}", t.reason()));
                    }
                    match calendars.apply(index, t) {
                        Ok(()) => cx.push(Severity::Info, kind, Some(index), &path, detail),
                        Err(e) => {
                            cx.violation("calendar-version", Some(index), &path, e.to_string());
                        }
                    }
                }
                Err(e) => cx.violation(
                    "county-leaf",
                    Some(index),
                    &path,
                    format!("not a county leaf (FORMAT.md § 14.4, § 19): {e}"),
                ),
            }
        }
    }
    if complete {
        for (id, hashes) in tiles.partial_tiles() {
            crate::check::compare_tile(src, &mut cx, &id, &hashes, size.saturating_sub(1));
            expected.insert(id.path());
        }
        match src.files("tile") {
            Ok(files) => {
                for f in files.unwrap_or_default() {
                    let rel = format!("tile/{f}");
                    if !expected.contains(&rel) {
                        cx.violation(
                            "unexpected-file",
                            None,
                            &rel,
                            format!("not part of the county tree of size {size}"),
                        );
                    }
                }
            }
            Err(e) => cx.violation("unexpected-file", None, "tile", e.to_string()),
        }
        if tree.root() != cp.checkpoint().root {
            cx.violation(
                "root-mismatch",
                None,
                layout::CHECKPOINT,
                format!(
                    "the county leaves give root {} for size {size}, the checkpoint says {}",
                    tree.root(),
                    cp.checkpoint().root
                ),
            );
        }
    }
    out.verify_secs = started.elapsed().as_secs_f64();
    out.findings = cx.list;
    (out, CountyRecords { notes, calendars })
}
