//! `gongkai audit DIR`: verify an export completely offline, then report
//! what the inspection office must see (FORMAT.md § 16–17).
//!
//! Integrity, per log: every entry bundle present and well-formed; every
//! entry through core's chain verifier (framing, canonical body, field
//! rules, chain links, keys, catalog rules, ZIP-215 signatures, batched on
//! all cores); every hash tile equal to what the entries give; no file in
//! `tile/` that the checkpoint's tree does not have; the root against the
//! checkpoint; the checkpoint's department signature by the key in force
//! and k-of-n witness cosignatures from the trust file; every other signed
//! checkpoint in `checkpoints/` consistent with the log (a validly signed
//! one with another root is a fork); every `evidence/` file through core's
//! evidence checker under the trusted keys (proven misbehaviour is a
//! violation); every non-redacted, non-restricted content blob present and
//! matching its commitment, request answers' content included.
//!
//! `county/`, when present, is the county log as a log of its own: its
//! tiles and bundles against its checkpoint, the checkpoint's signature by
//! the trust file's county log key, every leaf parsed as FORMAT.md § 19;
//! the department checkpoints in its leaves are checked like
//! `checkpoints/<m>` of their log (a fork is a violation naming the
//! county bundle) and their cosignatures count for back-dating.
//!
//! Then the findings of [`gongkai_core::audit::Review`]. Every finding
//! names the index and the file it concerns.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use clap::Args;
use gongkai_core::Hash;
use gongkai_core::audit::{Cosigned, Finding, Review, Severity};
use gongkai_core::calendar::WorkCalendar;
use gongkai_core::calendar::published::PublishedCalendars;
use gongkai_core::chain::ChainVerifier;
use gongkai_core::checkpoint::SignedCheckpoint;
use gongkai_core::county::CountyRecord;
use gongkai_core::date::Date;
use gongkai_core::evidence::{Evidence, Misbehaviour};
use gongkai_core::keys::PublicKey;
use gongkai_core::merkle::TreeState;
use gongkai_core::note::Verifiers;
use gongkai_core::tile::{TileBuilder, decode_bundle, encode_tile, entry_bundles_for_size};
use gongkai_core::types::{Origin, content_digest};
use serde::Serialize;
use serde_json::json;

use crate::export::files_under;
use crate::layout;
use crate::output::{Table, print_json};
use crate::trust::{Trust, check_signatures, key_for_size};
use crate::verify::{ContentUse, TrustArgs, content_uses, is_redacted, is_restricted};

/// Entries verified per hand-off to the worker threads.
const CHUNK: usize = 64 * 1024;

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

/// The audit of one log.
#[derive(Debug, Serialize)]
pub struct LogAudit {
    /// The log.
    pub origin: String,
    /// Checkpoint size.
    pub size: u64,
    /// Entries that verified.
    pub entries_verified: u64,
    /// Content blobs present and matching.
    pub content_ok: u64,
    /// Restricted content (not in a public export).
    pub content_restricted: u64,
    /// Redacted content.
    pub content_redacted: u64,
    /// Witness cosignatures on the checkpoint.
    pub cosignatures: Vec<(String, u64)>,
    /// Every finding.
    pub findings: Vec<Finding>,
    /// Seconds spent verifying entries (chain, signatures, tiles).
    pub verify_secs: f64,
    /// Seconds spent hashing content.
    pub content_secs: f64,
    /// True for the county log (`county/`), whose entries are county
    /// leaves (FORMAT.md § 19).
    pub county: bool,
}

impl LogAudit {
    fn new(origin: String) -> LogAudit {
        LogAudit {
            origin,
            size: 0,
            entries_verified: 0,
            content_ok: 0,
            content_restricted: 0,
            content_redacted: 0,
            cosignatures: Vec::new(),
            findings: Vec::new(),
            verify_secs: 0.0,
            content_secs: 0.0,
            county: false,
        }
    }

    /// Number of violations.
    pub fn violations(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Violation)
            .count()
    }
}

struct Ctx {
    rel: String,
    findings: Vec<Finding>,
}

impl Ctx {
    fn violation(&mut self, kind: &'static str, index: Option<u64>, file: &str, detail: String) {
        self.push(Severity::Violation, kind, index, file, detail);
    }

    fn push(
        &mut self,
        s: Severity,
        kind: &'static str,
        index: Option<u64>,
        file: &str,
        detail: String,
    ) {
        let full = if file.is_empty() {
            String::new()
        } else {
            self.full(file)
        };
        self.push_at(s, kind, index, full, detail);
    }

    /// A finding about `file`, a path relative to the export root (empty:
    /// the log as a whole).
    fn push_at(
        &mut self,
        s: Severity,
        kind: &'static str,
        index: Option<u64>,
        file: String,
        detail: String,
    ) {
        let mut f = Finding::new(s, kind, index, "", detail);
        if !file.is_empty() {
            f.file = Some(file);
        }
        self.findings.push(f);
    }

    /// `file` (relative to the log directory) relative to the export root.
    fn full(&self, file: &str) -> String {
        format!("{}/{file}", self.rel)
    }
}

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

/// The signed checkpoints inside a piece of evidence.
fn evidence_checkpoints(e: &Evidence) -> Vec<&SignedCheckpoint> {
    match &e.what {
        Misbehaviour::CheckpointFork { a, b } => vec![a, b],
        Misbehaviour::NotExtension { old, new, .. } => old.iter().chain([new]).collect(),
        Misbehaviour::Inconsistent {
            larger, smaller, ..
        } => vec![larger, smaller],
        Misbehaviour::EntryFork { .. } | Misbehaviour::BrokenLink { .. } => Vec::new(),
    }
}

fn error_kind(e: &gongkai_core::Error) -> &'static str {
    use gongkai_core::Error as E;
    match e {
        E::MalformedEntry { .. } => "malformed-entry",
        E::NonCanonicalBody { .. } => "non-canonical-body",
        E::InvalidField { .. } => "invalid-field",
        E::ChainBroken { .. } => "chain-broken",
        E::WrongSigner { .. } => "wrong-signer",
        E::BadSignature { .. } => "bad-signature",
        E::BadRotationProof { .. } => "bad-rotation-proof",
        E::UntrustedGenesisKey { .. } => "untrusted-genesis-key",
        E::RuleViolation { .. } => "rule-violation",
        _ => "invalid-entry",
    }
}

/// Audits one log of the export at `root`. `county_notes` are the
/// department checkpoints the export's county log holds (those of other
/// logs are ignored): each is checked like a `checkpoints/<m>` file, and
/// its cosignatures count for back-dating. Deadlines are judged with
/// `calendar` (the seed and the tables the county log published).
///
/// # Errors
/// Only an origin that cannot be a directory; everything wrong with the
/// files is a finding.
pub fn audit_log(
    root: &Path,
    origin: &Origin,
    trust: &Trust,
    as_of: Date,
    county_notes: &[CountyNote],
    calendar: &WorkCalendar,
) -> Result<LogAudit> {
    let dir = layout::log_dir(root, origin)?;
    let mut cx = Ctx {
        rel: layout::log_rel(origin)?,
        findings: Vec::new(),
    };
    let mut out = LogAudit::new(origin.to_string());
    let genesis_keys = match trust.genesis_keys(origin) {
        Ok(k) => k,
        Err(e) => {
            cx.violation("untrusted-log", None, "", format!("{e:#}"));
            out.findings = cx.findings;
            return Ok(out);
        }
    };
    // 1. The checkpoint.
    let cp = match std::fs::read(dir.join(layout::CHECKPOINT)) {
        Err(e) => {
            cx.violation(
                "missing-file",
                None,
                layout::CHECKPOINT,
                format!("cannot read the checkpoint: {e}"),
            );
            out.findings = cx.findings;
            return Ok(out);
        }
        Ok(b) => match SignedCheckpoint::from_bytes(&b) {
            Ok(cp) if &cp.checkpoint().origin == origin => cp,
            Ok(cp) => {
                cx.violation(
                    "checkpoint",
                    None,
                    layout::CHECKPOINT,
                    format!("checkpoint of log {}", cp.checkpoint().origin),
                );
                out.findings = cx.findings;
                return Ok(out);
            }
            Err(e) => {
                cx.violation(
                    "checkpoint",
                    None,
                    layout::CHECKPOINT,
                    format!("does not parse: {e}"),
                );
                out.findings = cx.findings;
                return Ok(out);
            }
        },
    };
    let size = cp.checkpoint().size;
    out.size = size;
    // 2. Every other signed checkpoint, and the trusted cosignatures.
    // `others`: (file relative to the export root, checkpoint, whether a
    // size above the export's is a violation).
    let mut others: Vec<(String, SignedCheckpoint, bool)> = Vec::new();
    let mut cosigned: Vec<Cosigned> = Vec::new();
    let mut note_cosigs = |cx: &mut Ctx, file: &str, cp: &SignedCheckpoint| -> Vec<(String, u64)> {
        match cp.note().verify(&trust.witnesses) {
            Ok(sigs) => {
                let mut v = Vec::new();
                for s in sigs {
                    let t = s.timestamp.unwrap_or(0);
                    cosigned.push(Cosigned {
                        size: cp.checkpoint().size,
                        time_secs: t,
                    });
                    v.push((s.name.to_string(), t));
                }
                v
            }
            Err(gongkai_core::Error::NoteQuorum { .. }) => Vec::new(),
            Err(e) => {
                cx.push_at(
                    Severity::Violation,
                    "bad-cosignature",
                    None,
                    file.to_owned(),
                    format!("{e}"),
                );
                Vec::new()
            }
        }
    };
    let full = cx.full(layout::CHECKPOINT);
    note_cosigs(&mut cx, &full, &cp);
    for f in files_under(&dir.join(layout::CHECKPOINTS)) {
        let file = format!("{}/{f}", layout::CHECKPOINTS);
        let parsed = std::fs::read(dir.join(&file))
            .map_err(|e| e.to_string())
            .and_then(|b| SignedCheckpoint::from_bytes(&b).map_err(|e| e.to_string()));
        match parsed {
            Ok(c) if &c.checkpoint().origin == origin => {
                if f != c.checkpoint().size.to_string() {
                    cx.violation(
                        "checkpoint",
                        None,
                        &file,
                        format!("holds a checkpoint of size {}", c.checkpoint().size),
                    );
                }
                let full = cx.full(&file);
                note_cosigs(&mut cx, &full, &c);
                others.push((full, c, true));
            }
            Ok(c) => cx.violation(
                "checkpoint",
                None,
                &file,
                format!("checkpoint of log {}", c.checkpoint().origin),
            ),
            Err(e) => cx.violation(
                "checkpoint",
                None,
                &file,
                format!("does not parse as a signed checkpoint: {e}"),
            ),
        }
    }
    // Evidence (FORMAT.md § 20): parsed now, its checkpoints' cosignatures
    // count for back-dating; verified once the chain gave the keys.
    let mut evidence: Vec<(String, Evidence)> = Vec::new();
    for f in files_under(&dir.join(layout::EVIDENCE)) {
        let file = format!("{}/{f}", layout::EVIDENCE);
        let path = dir.join(&file);
        let parsed = std::fs::metadata(&path)
            .map_err(|e| e.to_string())
            .and_then(|m| {
                // Not read at all when larger than any evidence may be.
                if m.len() > gongkai_core::evidence::MAX_EVIDENCE_LEN as u64 {
                    Err("larger than 64 MiB".to_owned())
                } else {
                    std::fs::read(&path).map_err(|e| e.to_string())
                }
            })
            .and_then(|b| String::from_utf8(b).map_err(|_| "not UTF-8 text".to_owned()))
            .and_then(|t| Evidence::parse(&t).map_err(|e| e.to_string()));
        match parsed {
            Ok(e) if &e.origin == origin => {
                let full = cx.full(&file);
                for c in evidence_checkpoints(&e) {
                    note_cosigs(&mut cx, &full, c);
                }
                evidence.push((file, e));
            }
            Ok(e) => cx.push(
                Severity::Warning,
                "evidence-unproven",
                None,
                &file,
                format!(
                    "evidence against {}, not this log: proves nothing here",
                    e.origin
                ),
            ),
            Err(e) => cx.push(
                Severity::Warning,
                "evidence-malformed",
                None,
                &file,
                format!("does not parse as gongkai-evidence/v1: {e}"),
            ),
        }
    }
    // The department checkpoints the county log holds (FORMAT.md § 19).
    for n in county_notes {
        if &n.checkpoint.checkpoint().origin == origin {
            note_cosigs(&mut cx, &n.file, &n.checkpoint);
            others.push((n.file.clone(), n.checkpoint.clone(), false));
        }
    }
    let wanted: BTreeSet<u64> = others.iter().map(|(_, c, _)| c.checkpoint().size).collect();
    let mut roots: BTreeMap<u64, Hash> = BTreeMap::new();
    if wanted.contains(&0) {
        roots.insert(0, gongkai_core::hash::empty_root());
    }
    // 3. Walk the entries.
    let started = Instant::now();
    let mut verifier = ChainVerifier::new(origin.clone(), &genesis_keys);
    let mut review = Review::new(as_of, &cosigned).with_calendar(calendar.clone());
    let mut tiles = TileBuilder::new();
    let mut expected: BTreeSet<String> = BTreeSet::new();
    let mut uses: Vec<ContentUse> = Vec::new();
    let threads = crate::engine::threads();
    let mut bundles = entry_bundles_for_size(size).into_iter();
    // A bundle that cannot be read ends the stream; reported after it.
    let mut unreadable: Option<(&'static str, u64, String, String)> = None;
    let next = || {
        let mut chunk: Vec<Vec<u8>> = Vec::new();
        while chunk.len() < CHUNK {
            let Some(b) = bundles.next() else { break };
            let path = b.path();
            let read = std::fs::read(dir.join(&path));
            let failed = match &read {
                Err(e) => Some(("missing-file", format!("entry bundle: {e}"))),
                Ok(bytes) => match decode_bundle(bytes, usize::from(b.width())) {
                    Ok(entries) => {
                        chunk.extend(entries.into_iter().map(<[u8]>::to_vec));
                        None
                    }
                    Err(e) => Some(("malformed-bundle", e.to_string())),
                },
            };
            if let Some((kind, detail)) = failed {
                unreadable = Some((kind, b.first_entry(), path, detail));
                bundles = Vec::new().into_iter();
                break;
            }
        }
        (!chunk.is_empty()).then_some(chunk)
    };
    let mut expected_bundles: BTreeSet<String> = entry_bundles_for_size(size)
        .iter()
        .map(|b| b.path())
        .collect();
    expected.append(&mut expected_bundles);
    let result = crate::engine::verify_stream(&mut verifier, next, threads, |p, v| {
        review.observe(&p.event);
        uses.extend(content_uses(&p.event));
        for (id, hashes) in tiles.push(p.leaf_hash) {
            compare_tile(&dir, &mut cx, &id.path(), &hashes, p.event.index);
            expected.insert(id.path());
        }
        if wanted.contains(&v.size()) {
            roots.insert(v.size(), v.root());
        }
    });
    let mut complete = true;
    if let Err(e) = result {
        let index = e.index();
        let file = index
            .and_then(|i| layout::bundle_of(i, size))
            .map_or_else(String::new, |b| b.path());
        cx.violation(error_kind(&e), index, &file, e.to_string());
        complete = false;
    }
    if let Some((kind, first, path, detail)) = unreadable {
        // Entries before the bad bundle were verified; the log is broken
        // from there.
        if complete {
            cx.violation(kind, Some(first), &path, detail);
        }
        complete = false;
    }
    out.entries_verified = verifier.size();
    // 4. The edge of the tree, stray files, the root and signatures.
    if complete {
        for (id, hashes) in tiles.partial_tiles() {
            compare_tile(&dir, &mut cx, &id.path(), &hashes, size.saturating_sub(1));
            expected.insert(id.path());
        }
        for f in files_under(&dir.join("tile")) {
            let rel = format!("tile/{f}");
            if !expected.contains(&rel) {
                cx.violation(
                    "unexpected-file",
                    None,
                    &rel,
                    format!("not part of the tree of size {size} (is the checkpoint older than the tiles?)"),
                );
            }
        }
        if let Err(e) = verifier.check_checkpoint(cp.checkpoint()) {
            cx.violation("root-mismatch", None, layout::CHECKPOINT, e.to_string());
        }
        let keys = key_for_size(&verifier.state().keys, size);
        let verdict = check_signatures(&cp, &keys, trust);
        out.cosignatures = verdict.cosignatures;
        if let Some(v) = verdict.violation {
            cx.violation("checkpoint-signature", None, layout::CHECKPOINT, v);
        }
        if let Some(c) = verdict.cosign_issue {
            let s = if trust.quorum > 0 {
                Severity::Violation
            } else {
                Severity::Warning
            };
            cx.push(s, "not-cosigned", None, layout::CHECKPOINT, c);
        }
    }
    for (file, c, newer_is_violation) in &others {
        let s = c.checkpoint().size;
        let keys = key_for_size(&verifier.state().keys, s);
        let signed = check_signatures(c, &keys, &Trust::default())
            .violation
            .is_none();
        if s > size {
            // A county leaf may hold a checkpoint newer than an export
            // written from elsewhere: nothing to compare it with.
            if *newer_is_violation {
                cx.push_at(
                    Severity::Violation,
                    "checkpoint-newer",
                    None,
                    file.clone(),
                    format!("size {s} is larger than the export's checkpoint ({size}): was the checkpoint replaced by an older one?"),
                );
            }
        } else if let Some(root) = roots.get(&s) {
            if *root != c.checkpoint().root {
                let what = if signed {
                    "fork: the department signed a different tree"
                } else {
                    "a checkpoint not signed by the department, with a different root"
                };
                cx.push_at(
                    Severity::Violation,
                    "fork",
                    None,
                    file.clone(),
                    format!(
                        "{what} of size {s}: root {} vs {} from the entries",
                        c.checkpoint().root,
                        root
                    ),
                );
            } else if !signed {
                cx.push_at(
                    Severity::Violation,
                    "checkpoint-signature",
                    None,
                    file.clone(),
                    format!(
                        "checkpoint of size {s} not validly signed by a department key of the log"
                    ),
                );
            }
        }
    }
    // Evidence, under the trusted keys and those the chain rotated to.
    let mut keys: Vec<PublicKey> = genesis_keys.clone();
    for k in &verifier.state().keys {
        if !keys.contains(&k.key) {
            keys.push(k.key);
        }
    }
    for (file, e) in &evidence {
        let kind = e.what.kind();
        let index = match &e.what {
            Misbehaviour::EntryFork { index, .. } | Misbehaviour::BrokenLink { index, .. } => {
                Some(*index)
            }
            _ => None,
        };
        match e.verify(&keys) {
            Ok(()) => cx.violation(
                "misbehaviour",
                index,
                file,
                format!(
                    "{kind} evidence (observed at {}): the department's key signed conflicting statements",
                    e.observed_secs
                ),
            ),
            Err(err) => cx.push(
                Severity::Warning,
                "evidence-unproven",
                index,
                file,
                format!("{kind} evidence that proves nothing under the trusted keys: {err}"),
            ),
        }
    }
    out.verify_secs = started.elapsed().as_secs_f64();
    // 5. Content.
    let started = Instant::now();
    let state = verifier.state();
    let mut referenced = BTreeSet::new();
    for u in &uses {
        let rel = layout::content_path(&u.digest);
        if !referenced.insert(u.digest) {
            continue;
        }
        let bytes = std::fs::read(dir.join(&rel)).ok();
        let at = Some(u.index);
        if is_redacted(state, u.item.as_deref(), &u.digest) {
            out.content_redacted += 1;
            if bytes.is_some() {
                cx.violation(
                    "redacted-content-present",
                    at,
                    &rel,
                    "content removed by a Redacted event is still in the export".into(),
                );
            }
            continue;
        }
        match bytes {
            Some(b) => {
                let ok = b.len() >= 32
                    && b.len() as u64 - 32 == u.length
                    && <[u8; 32]>::try_from(&b[..32])
                        .is_ok_and(|salt| content_digest(&salt, &b[32..]) == u.digest);
                if ok {
                    out.content_ok += 1;
                } else {
                    cx.violation(
                        "content-mismatch",
                        at,
                        &rel,
                        format!(
                            "does not match the commitment of entry {} ({} bytes)",
                            u.index, u.length
                        ),
                    );
                }
            }
            None if is_restricted(state, u.item.as_deref()) => out.content_restricted += 1,
            None if u.item.is_none() => cx.violation(
                "content-missing",
                at,
                &rel,
                format!(
                    "content of the answer at entry {} is missing (an answer's content cannot be redacted)",
                    u.index
                ),
            ),
            None => cx.violation(
                "content-missing",
                at,
                &rel,
                format!(
                    "content of item {} is missing without a Redacted event",
                    u.item.as_deref().unwrap_or("")
                ),
            ),
        }
    }
    for f in files_under(&dir.join(layout::CONTENT)) {
        if !Hash::from_hex(&f).is_ok_and(|h| referenced.contains(&h)) {
            cx.push(
                Severity::Warning,
                "unexpected-file",
                None,
                &format!("{}/{f}", layout::CONTENT),
                "content no entry commits to".into(),
            );
        }
    }
    out.content_secs = started.elapsed().as_secs_f64();
    // 6. The findings of the review.
    for mut f in review.finish() {
        if let Some(i) = f.index
            && let Some(b) = layout::bundle_of(i, size)
        {
            f.file = Some(format!("{}/{}", cx.rel, b.path()));
        }
        cx.findings.push(f);
    }
    out.findings = cx.findings;
    Ok(out)
}

/// Audits `county/`, the county log exported as a log of its own
/// (FORMAT.md § 16.1, § 16.3): its manifest and checkpoint, every entry
/// bundle and hash tile against the checkpoint's root, every leaf parsed as
/// § 19, and the checkpoint's signature by the trust file's county log key
/// (a warning when the trust names none). Returns `None` when the export
/// has no `county/`, else the audit and the department checkpoints its
/// leaves hold, for [`audit_log`].
///
/// # Errors
/// Only a county origin that cannot be a directory.
pub fn audit_county(root: &Path, trust: &Trust) -> Result<Option<(LogAudit, CountyRecords)>> {
    let base = root.join(layout::COUNTY);
    if !base.is_dir() {
        return Ok(None);
    }
    let mut out = LogAudit::new(layout::COUNTY.to_owned());
    out.county = true;
    let mut cx = Ctx {
        rel: layout::COUNTY.to_owned(),
        findings: Vec::new(),
    };
    let origins = std::fs::read_to_string(base.join(layout::MANIFEST))
        .map_err(|e| e.to_string())
        .and_then(|t| layout::parse_manifest(&t).map_err(|e| format!("{e:#}")));
    let origin = match origins.as_deref() {
        Ok([o]) => o.clone(),
        Ok(_) => {
            cx.violation(
                "county",
                None,
                layout::MANIFEST,
                "the county export must list exactly one log".into(),
            );
            out.findings = cx.findings;
            return Ok(Some((out, CountyRecords::default())));
        }
        Err(e) => {
            cx.violation("county", None, layout::MANIFEST, e.clone());
            out.findings = cx.findings;
            return Ok(Some((out, CountyRecords::default())));
        }
    };
    out.origin = origin.to_string();
    let dir = layout::log_dir(&base, &origin)?;
    cx.rel = format!("{}/{}", layout::COUNTY, layout::log_rel(&origin)?);
    let cp = match std::fs::read(dir.join(layout::CHECKPOINT))
        .map_err(|e| format!("cannot read the county checkpoint: {e}"))
        .and_then(|b| SignedCheckpoint::from_bytes(&b).map_err(|e| format!("does not parse: {e}")))
    {
        Ok(cp) if cp.checkpoint().origin == origin => cp,
        Ok(cp) => {
            cx.violation(
                "checkpoint",
                None,
                layout::CHECKPOINT,
                format!("checkpoint of log {}", cp.checkpoint().origin),
            );
            out.findings = cx.findings;
            return Ok(Some((out, CountyRecords::default())));
        }
        Err(e) => {
            cx.violation("checkpoint", None, layout::CHECKPOINT, e);
            out.findings = cx.findings;
            return Ok(Some((out, CountyRecords::default())));
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
    for b in entry_bundles_for_size(size) {
        let path = b.path();
        expected.insert(path.clone());
        let bytes = match std::fs::read(dir.join(&path)) {
            Ok(b) => b,
            Err(e) => {
                cx.violation(
                    "missing-file",
                    Some(b.first_entry()),
                    &path,
                    format!("entry bundle: {e}"),
                );
                complete = false;
                break;
            }
        };
        let leaves = match decode_bundle(&bytes, usize::from(b.width())) {
            Ok(l) => l,
            Err(e) => {
                cx.violation(
                    "malformed-bundle",
                    Some(b.first_entry()),
                    &path,
                    e.to_string(),
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
                compare_tile(&dir, &mut cx, &id.path(), &hashes, index);
                expected.insert(id.path());
            }
            match CountyRecord::decode(leaf) {
                Ok(CountyRecord::Checkpoints(l)) => {
                    out.entries_verified += 1;
                    notes.extend(l.checkpoints.into_iter().map(|checkpoint| CountyNote {
                        file: cx.full(&path),
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
                            cx.violation("calendar-version", Some(index), &path, e.to_string())
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
            compare_tile(&dir, &mut cx, &id.path(), &hashes, size.saturating_sub(1));
            expected.insert(id.path());
        }
        for f in files_under(&dir.join("tile")) {
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
    out.findings = cx.findings;
    Ok(Some((out, CountyRecords { notes, calendars })))
}

fn compare_tile(dir: &Path, cx: &mut Ctx, path: &str, hashes: &[Hash], index: u64) {
    match std::fs::read(dir.join(path)) {
        Ok(b) if b == encode_tile(hashes) => {}
        Ok(_) => cx.violation(
            "tile-mismatch",
            Some(index),
            path,
            "hash tile differs from the hashes of the entries".into(),
        ),
        Err(e) => cx.violation("missing-file", Some(index), path, format!("hash tile: {e}")),
    }
}

/// Runs `gongkai audit`; returns the exit code.
///
/// # Errors
/// An unreadable export or trust (exit 2).
pub fn run(a: AuditArgs, json: bool) -> Result<u8> {
    let trust = a.trust.load()?;
    let manifest = std::fs::read_to_string(a.dir.join(layout::MANIFEST)).with_context(|| {
        format!(
            "{} is not a gongkai export (no {})",
            a.dir.display(),
            layout::MANIFEST
        )
    })?;
    let origins = layout::parse_manifest(&manifest)
        .with_context(|| format!("{}/{}", a.dir.display(), layout::MANIFEST))?;
    let as_of = match a.as_of {
        Some(d) => d,
        None => Date::parse(&crate::today()).context("today's date")?,
    };
    let started = Instant::now();
    let county = audit_county(&a.dir, &trust)?;
    let notes = county.as_ref().map_or(&[][..], |(_, r)| r.notes.as_slice());
    // The county's calendar tables count only from a county log that
    // verified under a trusted county key; else the seed table alone.
    let calendar = match &county {
        Some((c, r))
            if c.violations() == 0 && !c.findings.iter().any(|f| f.kind == "county-unverified") =>
        {
            r.calendars.in_force()
        }
        _ => WorkCalendar::shipped().clone(),
    };
    let mut logs = Vec::new();
    for o in &origins {
        logs.push(audit_log(&a.dir, o, &trust, as_of, notes, &calendar)?);
    }
    if let Some((c, _)) = county {
        logs.push(c);
    }
    let elapsed = started.elapsed();
    let violations: usize = logs.iter().map(LogAudit::violations).sum();
    if let Some(r) = &a.report {
        let html = r.extension().is_some_and(|e| e == "html" || e == "htm");
        let text = if html {
            report_html(&logs, as_of)
        } else {
            report_markdown(&logs, as_of)
        };
        crate::verify::write_atomic(r, text.as_bytes(), 0o644)?;
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
