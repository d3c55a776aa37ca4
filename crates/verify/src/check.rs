//! The check of one log over any [`LogSource`], in named steps. `audit`
//! runs it over an export directory, `verify` and `monitor` over a server;
//! what a source cannot give (tiles, file listings, a consistency proof) is
//! skipped, everything else is the same code.
//!
//! 1. [`trusted_keys`]: the log must be in the trust file.
//! 2. [`read_checkpoint`]: the newest checkpoint parses and names the log.
//! 3. [`resume`] (when a verified state is given): no rollback, no fork,
//!    the new checkpoint extends the old one.
//! 4. [`known_checkpoints`] and [`read_evidence`]: the other signed
//!    checkpoints an export holds (`checkpoints/`, the county log's
//!    leaves) and its evidence, whose cosignatures count for back-dating.
//! 5. [`walk_chain`]: every entry bundle, lazily, through the engine
//!    (framing, bodies, field rules, links, keys, catalog rules, ZIP-215
//!    signatures), every hash tile against the entries.
//! 6. [`check_edge`]: partial tiles, files that are not part of the tree,
//!    the root against the checkpoint.
//! 7. [`check_checkpoint_signatures`]: the department key in force and
//!    k-of-n trusted witness cosignatures.
//! 8. [`check_other_checkpoints`] and [`check_evidence`].
//! 9. [`check_content`]: every commitment against its content, redaction
//!    and restriction judged at the end of the verified log.
//! 10. The findings of core's `audit::Review` (when asked for).
//!
//! Steps 6–9 run only on a log whose chain verified to the checkpoint:
//! after a chain failure nothing further is judged on a partial log.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use gongkai_core::Hash;
use gongkai_core::audit::{Cosigned, Finding, Review, Severity};
use gongkai_core::calendar::WorkCalendar;
use gongkai_core::chain::{ChainState, ChainVerifier};
use gongkai_core::checkpoint::SignedCheckpoint;
use gongkai_core::date::Date;
use gongkai_core::evidence::{Evidence, MAX_EVIDENCE_LEN, Misbehaviour};
use gongkai_core::keys::PublicKey;
use gongkai_core::merkle::verify_consistency;
use gongkai_core::note::MAX_NOTE_SIZE;
use gongkai_core::tile::{TileBuilder, TileId, encode_tile, entry_bundles_iter};
use gongkai_core::types::Origin;
use serde::Serialize;

use crate::content::{self, ContentUse, content_uses, is_redacted, is_restricted};
use crate::county::CountyNote;
use crate::layout;
use crate::source::content_file_digest;
use crate::source::{Fetched, LogSource, SourceError};
use crate::trust::{Trust, check_signatures, key_for_size};

/// Entries handed to the engine per read.
const CHUNK: usize = 64 * 1024;

/// The result of checking one log.
#[derive(Debug, Default, Serialize)]
pub struct LogAudit {
    /// The log.
    pub origin: String,
    /// The department's name, from the log's genesis entry (once it
    /// verified).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    /// Checkpoint size.
    pub size: u64,
    /// Entries that verified.
    pub entries_verified: u64,
    /// Entries verified this time (after a resumed state).
    pub new_entries: u64,
    /// Content blobs present and matching.
    pub content_ok: u64,
    /// Restricted content (not served to this reader, not exported).
    pub content_restricted: u64,
    /// Redacted content.
    pub content_redacted: u64,
    /// Trusted witness cosignatures on the checkpoint: name, time (s).
    pub cosignatures: Vec<(String, u64)>,
    /// Every finding.
    pub findings: Vec<Finding>,
    /// Seconds spent verifying entries (chain, signatures, tiles).
    pub verify_secs: f64,
    /// Seconds spent on content.
    pub content_secs: f64,
    /// True for the county log (`county/`), whose entries are county
    /// leaves (FORMAT.md § 19).
    pub county: bool,
    /// Why the log could not be checked at all (a source that could not be
    /// read): nothing is proven either way.
    pub error: Option<String>,
    /// The verified state to remember (checkpoint text and chain state),
    /// when the log verified with no violation.
    #[serde(skip)]
    pub verified: Option<(String, ChainState)>,
}

impl LogAudit {
    /// An empty report on `origin`.
    pub fn new(origin: impl Into<String>) -> LogAudit {
        LogAudit {
            origin: origin.into(),
            ..LogAudit::default()
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

/// What the check needs besides the source.
#[derive(Debug, Clone, Copy)]
pub struct Options<'a> {
    /// The keys trusted.
    pub trust: &'a Trust,
    /// Judge the log's duties as of this date with this calendar (core's
    /// `Review`); `None` checks integrity only.
    pub review: Option<(Date, &'a WorkCalendar)>,
    /// Department checkpoints the county log holds (those of other logs are
    /// ignored): checked like `checkpoints/<m>`, and their cosignatures
    /// count for back-dating.
    pub county_notes: &'a [CountyNote],
    /// A state verified before (checkpoint text, chain state): the check
    /// continues from it and first proves the new checkpoint extends it.
    pub resume: Option<(&'a str, &'a ChainState)>,
}

/// Findings, with files named from the export root.
pub struct Findings {
    /// The log's directory relative to the export root (none: a server).
    dir: Option<String>,
    /// The findings so far.
    pub list: Vec<Finding>,
}

impl Findings {
    /// Findings about the log in `dir` (relative to the export root).
    pub fn new(dir: Option<&str>) -> Findings {
        Findings {
            dir: dir.map(str::to_owned),
            list: Vec::new(),
        }
    }

    /// `rel` (relative to the log's directory) named from the export root;
    /// empty for a server.
    pub fn name(&self, rel: &str) -> String {
        match &self.dir {
            Some(d) if !rel.is_empty() => format!("{d}/{rel}"),
            _ => String::new(),
        }
    }

    /// A finding about `file` (relative to the log; empty: the log).
    pub fn push(
        &mut self,
        s: Severity,
        kind: &'static str,
        index: Option<u64>,
        file: &str,
        detail: String,
    ) {
        let full = self.name(file);
        self.push_at(s, kind, index, full, detail);
    }

    /// A violation about `file` (relative to the log).
    pub fn violation(
        &mut self,
        kind: &'static str,
        index: Option<u64>,
        file: &str,
        detail: String,
    ) {
        self.push(Severity::Violation, kind, index, file, detail);
    }

    /// A finding about `file`, already named in full.
    pub fn push_at(
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
        self.list.push(f);
    }
}

/// The kind of finding for a chain error (FORMAT.md § 17).
pub fn error_kind(e: &gongkai_core::Error) -> &'static str {
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

/// Checks one log from `src`. Never fails: what is wrong with what the
/// source holds is a finding; what could not be read is `error`.
pub fn check_log(src: &mut dyn LogSource, opts: &Options<'_>) -> LogAudit {
    let origin = src.origin().clone();
    let mut out = LogAudit::new(origin.to_string());
    let mut cx = Findings::new(src.dir());
    let finish = |mut out: LogAudit, cx: Findings| {
        out.findings = cx.list;
        out
    };
    let Some(genesis_keys) = trusted_keys(opts.trust, &origin, &mut cx) else {
        return finish(out, cx);
    };
    let (text, cp) = match read_checkpoint(src, &mut cx) {
        Ok(Some(c)) => c,
        Ok(None) => return finish(out, cx),
        Err(e) => {
            out.error = Some(e);
            return finish(out, cx);
        }
    };
    let size = cp.checkpoint().size;
    out.size = size;
    let verifier = match opts.resume {
        None => ChainVerifier::new(origin.clone(), &genesis_keys),
        Some(r) => match resume(src, r, &cp, &mut cx) {
            Ok(Some(v)) => v,
            Ok(None) => return finish(out, cx),
            Err(e) => {
                out.error = Some(e);
                return finish(out, cx);
            }
        },
    };
    let start = verifier.size();
    let mut cosigned = Vec::new();
    let known = known_checkpoints(src, &cp, opts, &mut cosigned, &mut cx);
    let evidence = read_evidence(src, opts.trust, &mut cosigned, &mut cx);
    let started = Instant::now();
    let wanted: BTreeSet<u64> = known
        .iter()
        .map(|k| k.checkpoint.checkpoint().size)
        .collect();
    let review = opts
        .review
        .map(|(as_of, calendar)| Review::new(as_of, &cosigned).with_calendar(calendar.clone()));
    let walk = walk_chain(src, verifier, size, &wanted, review, &mut cx);
    out.entries_verified = walk.verifier.size();
    out.department.clone_from(&walk.department);
    out.new_entries = walk.verifier.size().saturating_sub(start);
    out.error.clone_from(&walk.unavailable);
    let complete = walk.complete;
    if complete {
        check_edge(src, &walk, &cp, &mut cx);
        out.cosignatures = check_checkpoint_signatures(&cp, &walk.verifier, opts.trust, &mut cx);
    }
    check_other_checkpoints(&known, size, &walk, &mut cx);
    check_evidence(&evidence, &genesis_keys, &walk.verifier, &mut cx);
    out.verify_secs = started.elapsed().as_secs_f64();
    let Walk {
        verifier,
        uses,
        review,
        ..
    } = walk;
    if complete {
        let started = Instant::now();
        match check_content(src, &uses, verifier.state(), &mut cx) {
            Ok(t) => {
                out.content_ok = t.ok;
                out.content_restricted = t.restricted;
                out.content_redacted = t.redacted;
                let calendar = opts
                    .review
                    .map_or_else(|| WorkCalendar::shipped().clone(), |(_, c)| c.clone());
                let mut recounts = crate::report::Recounts::default();
                for (index, doc) in &t.reports {
                    crate::report::check_published(
                        src,
                        *index,
                        doc,
                        size,
                        &calendar,
                        &mut recounts,
                        &mut cx,
                    );
                }
            }
            Err(e) => out.error = Some(e),
        }
        out.content_secs = started.elapsed().as_secs_f64();
    }
    if let Some(review) = review {
        for mut f in review.finish() {
            if let Some(i) = f.index
                && let Some(b) = layout::bundle_of(i, size)
            {
                let file = cx.name(&b.path());
                if !file.is_empty() {
                    f.file = Some(file);
                }
            }
            cx.list.push(f);
        }
    }
    let out = finish(out, cx);
    let mut out = out;
    if complete && out.violations() == 0 && out.error.is_none() {
        out.verified = Some((text, verifier.into_state()));
    }
    out
}

/// Step 1: the keys the trust file gives for the log's genesis; a
/// violation when it lists none.
pub fn trusted_keys(trust: &Trust, origin: &Origin, cx: &mut Findings) -> Option<Vec<PublicKey>> {
    match trust.genesis_keys(origin) {
        Ok(k) => Some(k),
        Err(e) => {
            cx.violation("untrusted-log", None, "", e.to_string());
            None
        }
    }
}

/// Step 2: the newest checkpoint, parsed, naming the log. `Ok(None)` after
/// a violation.
///
/// # Errors
/// The source could not be read (network, local I/O).
pub fn read_checkpoint(
    src: &mut dyn LogSource,
    cx: &mut Findings,
) -> Result<Option<(String, SignedCheckpoint)>, String> {
    let bytes = match src.checkpoint() {
        Ok(b) => b,
        Err(SourceError::Unavailable(e)) => {
            return Err(format!("cannot read the checkpoint: {e}"));
        }
        Err(e) => {
            cx.violation(
                "missing-file",
                None,
                layout::CHECKPOINT,
                format!("cannot read the checkpoint: {e}"),
            );
            return Ok(None);
        }
    };
    match SignedCheckpoint::from_bytes(&bytes) {
        Ok(cp) if cp.checkpoint().origin == *src.origin() => {
            Ok(Some((String::from_utf8_lossy(&bytes).into_owned(), cp)))
        }
        Ok(cp) => {
            cx.violation(
                "checkpoint",
                None,
                layout::CHECKPOINT,
                format!("checkpoint of log {}", cp.checkpoint().origin),
            );
            Ok(None)
        }
        Err(e) => {
            cx.violation(
                "checkpoint",
                None,
                layout::CHECKPOINT,
                format!("does not parse: {e}"),
            );
            Ok(None)
        }
    }
}

/// Step 3: continues from a state verified before. The new checkpoint must
/// not be smaller (rollback), not differ at the same size (fork), and —
/// when the source serves consistency proofs — extend the old one; the
/// walk from the old state then proves it entry by entry. `Ok(None)` after
/// a violation.
///
/// # Errors
/// A state that does not parse, a source that could not be read.
pub fn resume(
    src: &mut dyn LogSource,
    (old_text, state): (&str, &ChainState),
    cp: &SignedCheckpoint,
    cx: &mut Findings,
) -> Result<Option<ChainVerifier>, String> {
    let old_cp = SignedCheckpoint::parse(old_text)
        .map_err(|e| format!("the state file's checkpoint does not parse: {e}"))?;
    let (old, new) = (old_cp.checkpoint(), cp.checkpoint());
    if new.size < old.size {
        cx.violation(
            "rollback",
            None,
            layout::CHECKPOINT,
            format!(
                "the checkpoint has size {} (root {}), but size {} (root {}) was verified before",
                new.size, new.root, old.size, old.root
            ),
        );
        return Ok(None);
    }
    if new.size == old.size && new.root != old.root {
        cx.violation(
            "fork",
            None,
            layout::CHECKPOINT,
            format!(
                "two checkpoints of size {} with different roots: {} verified before, {} now",
                new.size, old.root, new.root
            ),
        );
        return Ok(None);
    }
    if new.size > old.size {
        match src.consistency(old.size, new.size) {
            Ok(None) => {}
            Ok(Some(proof)) => {
                if let Err(e) = verify_consistency(old.size, new.size, &old.root, &new.root, &proof)
                {
                    cx.violation(
                        "fork",
                        None,
                        layout::CHECKPOINT,
                        format!(
                            "the checkpoint of size {} (root {}) does not extend the one of size {} (root {}) verified before: {e}",
                            new.size, new.root, old.size, old.root
                        ),
                    );
                    return Ok(None);
                }
            }
            Err(SourceError::Unavailable(e)) => return Err(e),
            Err(e) => {
                cx.violation(
                    "fork",
                    None,
                    layout::CHECKPOINT,
                    format!("no consistency proof from size {}: {e}", old.size),
                );
                return Ok(None);
            }
        }
    }
    let v = ChainVerifier::resume(state.clone())
        .map_err(|e| format!("the state file's chain state: {e}"))?;
    if v.size() != old.size || v.root() != old.root {
        return Err("the state file's chain state does not match its checkpoint".into());
    }
    Ok(Some(v))
}

/// Another signed checkpoint of the log.
pub struct Known {
    /// The file it came from, named in full.
    pub file: String,
    /// The checkpoint.
    pub checkpoint: SignedCheckpoint,
    /// Whether a size above the newest checkpoint's is a violation: it is
    /// for the log's own `checkpoints/`; a county leaf may be newer than
    /// an export written elsewhere.
    pub newer_is_violation: bool,
}

/// The trusted witness cosignatures of `cp`, added to `cosigned` (a bad
/// one is a violation about `file`, named in full).
fn cosignatures_of(
    trust: &Trust,
    cp: &SignedCheckpoint,
    file: &str,
    cosigned: &mut Vec<Cosigned>,
    cx: &mut Findings,
) {
    match cp.note().verify(&trust.witnesses) {
        Ok(sigs) => cosigned.extend(sigs.iter().map(|s| Cosigned {
            size: cp.checkpoint().size,
            time_secs: s.timestamp.unwrap_or(0),
        })),
        Err(gongkai_core::Error::NoteQuorum { .. }) => {}
        Err(e) => cx.push_at(
            Severity::Violation,
            "bad-cosignature",
            None,
            file.to_owned(),
            e.to_string(),
        ),
    }
}

/// Step 4a: the log's other signed checkpoints — `checkpoints/<m>` of an
/// export (the name must be the size) and those the county log's leaves
/// hold — parsed here and compared with the log once the walk gave its
/// roots. Their trusted cosignatures (and those of `newest`) go to
/// `cosigned`, for back-dating.
pub fn known_checkpoints(
    src: &mut dyn LogSource,
    newest: &SignedCheckpoint,
    opts: &Options<'_>,
    cosigned: &mut Vec<Cosigned>,
    cx: &mut Findings,
) -> Vec<Known> {
    let origin = src.origin().clone();
    let mut out = Vec::new();
    // The newest checkpoint's cosignatures count too (it was read and
    // parsed in step 2; not read again).
    let file = cx.name(layout::CHECKPOINT);
    cosignatures_of(opts.trust, newest, &file, cosigned, cx);
    let files = match src.files(layout::CHECKPOINTS) {
        Ok(f) => f.unwrap_or_default(),
        Err(e) => {
            cx.violation("checkpoint", None, layout::CHECKPOINTS, e.to_string());
            Vec::new()
        }
    };
    for f in files {
        let file = format!("{}/{f}", layout::CHECKPOINTS);
        let parsed = src
            .read_listed(&file, MAX_NOTE_SIZE as u64)
            .map_err(|e| e.to_string())
            .and_then(|b| SignedCheckpoint::from_bytes(&b).map_err(|e| e.to_string()));
        match parsed {
            Ok(c) if c.checkpoint().origin == origin => {
                if f != c.checkpoint().size.to_string() {
                    cx.violation(
                        "checkpoint",
                        None,
                        &file,
                        format!("holds a checkpoint of size {}", c.checkpoint().size),
                    );
                }
                let full = cx.name(&file);
                cosignatures_of(opts.trust, &c, &full, cosigned, cx);
                out.push(Known {
                    file: full,
                    checkpoint: c,
                    newer_is_violation: true,
                });
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
    for n in opts.county_notes {
        if n.checkpoint.checkpoint().origin == origin {
            cosignatures_of(opts.trust, &n.checkpoint, &n.file, cosigned, cx);
            out.push(Known {
                file: n.file.clone(),
                checkpoint: n.checkpoint.clone(),
                newer_is_violation: false,
            });
        }
    }
    out
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

/// Step 4b: the evidence files (FORMAT.md § 20), parsed; their
/// checkpoints' trusted cosignatures go to `cosigned`. Verified in
/// [`check_evidence`] once the walk gave the keys.
pub fn read_evidence(
    src: &mut dyn LogSource,
    trust: &Trust,
    cosigned: &mut Vec<Cosigned>,
    cx: &mut Findings,
) -> Vec<(String, Evidence)> {
    let origin = src.origin().clone();
    let files = match src.files(layout::EVIDENCE) {
        Ok(f) => f.unwrap_or_default(),
        Err(e) => {
            cx.violation("evidence-malformed", None, layout::EVIDENCE, e.to_string());
            Vec::new()
        }
    };
    let mut out = Vec::new();
    for f in files {
        let file = format!("{}/{f}", layout::EVIDENCE);
        let parsed = src
            .read_listed(&file, MAX_EVIDENCE_LEN as u64)
            .map_err(|e| e.to_string())
            .and_then(|b| String::from_utf8(b).map_err(|_| "not UTF-8 text".to_owned()))
            .and_then(|t| Evidence::parse(&t).map_err(|e| e.to_string()));
        match parsed {
            Ok(e) if e.origin == origin => {
                let full = cx.name(&file);
                for c in evidence_checkpoints(&e) {
                    cosignatures_of(trust, c, &full, cosigned, cx);
                }
                out.push((file, e));
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
    out
}

/// What [`walk_chain`] leaves for the later steps.
pub struct Walk {
    /// The verifier, at the last entry that verified.
    pub verifier: ChainVerifier,
    /// Whether the chain verified to the checkpoint's size.
    pub complete: bool,
    /// Why the source could not be read to the end (nothing proven).
    pub unavailable: Option<String>,
    /// The roots at the sizes asked for.
    pub roots: BTreeMap<u64, Hash>,
    /// Every content commitment, in log order.
    pub uses: Vec<ContentUse>,
    /// The review, having observed every verified entry.
    pub review: Option<Review>,
    /// The tile builder (when walking from the start), for the edge.
    tiles: Option<TileBuilder>,
    /// Every bundle and full tile path walked.
    expected: BTreeSet<String>,
    /// The department named by the genesis entry, if it was walked.
    pub department: Option<String>,
}

/// Compares a hash tile with what the entries give; nothing when the
/// source serves no tiles.
pub(crate) fn compare_tile(
    src: &mut dyn LogSource,
    cx: &mut Findings,
    id: &TileId,
    hashes: &[Hash],
    index: u64,
) {
    let path = id.path();
    match src.tile(id) {
        Ok(None) => {}
        Ok(Some(b)) if b == encode_tile(hashes) => {}
        Ok(Some(_)) => cx.violation(
            "tile-mismatch",
            Some(index),
            &path,
            "hash tile differs from the hashes of the entries".into(),
        ),
        Err(e) => cx.violation(
            "missing-file",
            Some(index),
            &path,
            format!("hash tile: {e}"),
        ),
    }
}

/// Step 5: every entry from the verifier's size to `size`, bundle by
/// bundle and lazily (a checkpoint claiming 2^64 - 1 entries costs only
/// the bundles that exist), through the engine; every full hash tile
/// against the entries (from the start only); the roots at the sizes in
/// `wanted`; the content commitments; the review.
pub fn walk_chain(
    src: &mut dyn LogSource,
    mut verifier: ChainVerifier,
    size: u64,
    wanted: &BTreeSet<u64>,
    mut review: Option<Review>,
    cx: &mut Findings,
) -> Walk {
    let from = verifier.size();
    let mut roots = BTreeMap::new();
    if wanted.contains(&0) {
        roots.insert(0, gongkai_core::hash::empty_root());
    }
    if from > 0 && wanted.contains(&from) {
        roots.insert(from, verifier.root());
    }
    let mut tiles = (from == 0).then(TileBuilder::new);
    let mut uses: Vec<ContentUse> = Vec::new();
    let mut department = None;
    let mut expected: BTreeSet<String> = BTreeSet::new();
    // Tiles completed on the workers, compared on this thread before the
    // next read (the source is read only here).
    let pending: Mutex<Vec<(TileId, Vec<Hash>, u64)>> = Mutex::new(Vec::new());
    let mut bundles =
        entry_bundles_iter(size).skip_while(|b| b.first_entry() + u64::from(b.width()) <= from);
    // A bundle that cannot be read ends the stream: (kind, first index,
    // path, detail), reported after it if nothing failed before.
    let mut unreadable: Option<(&'static str, u64, String, String)> = None;
    let mut unavailable: Option<String> = None;
    let result = {
        let next = || {
            if unreadable.is_some() || unavailable.is_some() {
                // Nothing after the first unreadable bundle.
                return None;
            }
            let done = std::mem::take(&mut *pending.lock().unwrap_or_else(PoisonError::into_inner));
            for (id, hashes, index) in done {
                compare_tile(src, cx, &id, &hashes, index);
                expected.insert(id.path());
            }
            let mut chunk: Vec<Vec<u8>> = Vec::new();
            while chunk.len() < CHUNK {
                let Some(b) = bundles.next() else { break };
                let path = b.path();
                expected.insert(path.clone());
                match src.bundle(&b) {
                    Ok(entries) if entries.len() == usize::from(b.width()) => {
                        let skip = usize::try_from(from.saturating_sub(b.first_entry()))
                            .unwrap_or(usize::MAX);
                        chunk.extend(entries.into_iter().skip(skip));
                    }
                    Ok(entries) => {
                        unreadable = Some((
                            "malformed-bundle",
                            b.first_entry(),
                            path,
                            format!("{} entries, the bundle holds {}", entries.len(), b.width()),
                        ));
                        break;
                    }
                    Err(SourceError::Missing(e)) => {
                        unreadable = Some((
                            "missing-file",
                            b.first_entry(),
                            path,
                            format!("entry bundle: {e}"),
                        ));
                        break;
                    }
                    Err(SourceError::Malformed(e)) => {
                        unreadable = Some(("malformed-bundle", b.first_entry(), path, e));
                        break;
                    }
                    Err(SourceError::Unavailable(e)) => {
                        unavailable = Some(format!("entries from {}: {e}", b.first_entry()));
                        break;
                    }
                }
            }
            (!chunk.is_empty()).then_some(chunk)
        };
        crate::engine::verify_stream(&mut verifier, next, crate::engine::threads(), |p, v| {
            if let gongkai_core::event::Kind::Genesis(g) = &p.event.kind {
                department = Some(g.department.clone());
            }
            if let Some(r) = review.as_mut() {
                r.observe(&p.event);
            }
            uses.extend(content_uses(&p.event));
            if let Some(t) = tiles.as_mut() {
                let done = t.push(p.leaf_hash);
                if !done.is_empty() {
                    let mut q = pending.lock().unwrap_or_else(PoisonError::into_inner);
                    q.extend(done.into_iter().map(|(id, h)| (id, h, p.event.index)));
                }
            }
            if wanted.contains(&v.size()) {
                roots.insert(v.size(), v.root());
            }
        })
    };
    for (id, hashes, index) in pending.into_inner().unwrap_or_else(PoisonError::into_inner) {
        compare_tile(src, cx, &id, &hashes, index);
        expected.insert(id.path());
    }
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
        // Entries before the bad bundle verified; the log is broken from
        // there (unless an entry before it already failed).
        if complete {
            cx.violation(kind, Some(first), &path, detail);
        }
        complete = false;
    }
    if unavailable.is_some() || verifier.size() != size {
        complete = false;
    }
    Walk {
        verifier,
        complete,
        unavailable,
        roots,
        uses,
        review,
        tiles,
        expected,
        department,
    }
}

/// Step 6: the right edge of the tree — partial tiles against the entries,
/// no file in `tile/` that the checkpoint's tree does not have — and the
/// root against the checkpoint.
pub fn check_edge(src: &mut dyn LogSource, walk: &Walk, cp: &SignedCheckpoint, cx: &mut Findings) {
    let size = cp.checkpoint().size;
    let mut expected = walk.expected.clone();
    if let Some(tiles) = &walk.tiles {
        for (id, hashes) in tiles.partial_tiles() {
            compare_tile(src, cx, &id, &hashes, size.saturating_sub(1));
            expected.insert(id.path());
        }
        match src.files("tile") {
            Ok(Some(files)) => {
                for f in files {
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
            }
            Ok(None) => {}
            Err(e) => cx.violation("unexpected-file", None, "tile", e.to_string()),
        }
    }
    if let Err(e) = walk.verifier.check_checkpoint(cp.checkpoint()) {
        cx.violation("root-mismatch", None, layout::CHECKPOINT, e.to_string());
    }
}

/// Step 7: the checkpoint's department signature by the key in force at
/// its size, and k-of-n cosignatures by the trusted witnesses (a
/// violation when the trust requires a quorum, else a warning). Returns
/// the trusted cosignatures.
pub fn check_checkpoint_signatures(
    cp: &SignedCheckpoint,
    verifier: &ChainVerifier,
    trust: &Trust,
    cx: &mut Findings,
) -> Vec<(String, u64)> {
    let keys = key_for_size(&verifier.state().keys, cp.checkpoint().size);
    let verdict = check_signatures(cp, &keys, trust);
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
    verdict.cosignatures
}

/// Step 8a: every other signed checkpoint against the log: a validly
/// signed one with another root at its size is a fork; one larger than
/// the newest checkpoint in the log's own `checkpoints/` means the newest
/// was replaced by an older one.
pub fn check_other_checkpoints(known: &[Known], size: u64, walk: &Walk, cx: &mut Findings) {
    for k in known {
        let c = &k.checkpoint;
        let s = c.checkpoint().size;
        let keys = key_for_size(&walk.verifier.state().keys, s);
        let signed = check_signatures(c, &keys, &Trust::default())
            .violation
            .is_none();
        if s > size {
            if k.newer_is_violation {
                cx.push_at(
                    Severity::Violation,
                    "checkpoint-newer",
                    None,
                    k.file.clone(),
                    format!("size {s} is larger than the export's checkpoint ({size}): was the checkpoint replaced by an older one?"),
                );
            }
        } else if let Some(root) = walk.roots.get(&s) {
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
                    k.file.clone(),
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
                    k.file.clone(),
                    format!(
                        "checkpoint of size {s} not validly signed by a department key of the log"
                    ),
                );
            }
        }
    }
}

/// Step 8b: evidence under the trusted keys and those the chain rotated
/// to: proven misbehaviour is a violation, evidence that proves nothing a
/// warning.
pub fn check_evidence(
    evidence: &[(String, Evidence)],
    genesis_keys: &[PublicKey],
    verifier: &ChainVerifier,
    cx: &mut Findings,
) {
    let mut keys: Vec<PublicKey> = genesis_keys.to_vec();
    for k in &verifier.state().keys {
        if !keys.contains(&k.key) {
            keys.push(k.key);
        }
    }
    for (file, e) in evidence {
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
}

/// Content counted by [`check_content`].
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ContentTally {
    /// Present and matching.
    pub ok: u64,
    /// Restricted, not given to this reader.
    pub restricted: u64,
    /// Redacted.
    pub redacted: u64,
    /// Published annual reports (FORMAT.md § 22.5): entry index and the
    /// document, to recount.
    pub reports: Vec<(u64, Vec<u8>)>,
}

/// Step 9: every content commitment (each digest once) against what the
/// source gives, judged at the end of the verified log: redacted content
/// must be gone, restricted content may be withheld, everything else must
/// be present and match (length, then digest); files in `content/` that no
/// entry commits to are a warning.
///
/// # Errors
/// The source could not be read (nothing is proven).
pub fn check_content(
    src: &mut dyn LogSource,
    uses: &[ContentUse],
    state: &ChainState,
    cx: &mut Findings,
) -> Result<ContentTally, String> {
    let mut t = ContentTally::default();
    let mut referenced = BTreeSet::new();
    for u in uses {
        if !referenced.insert(u.digest) {
            continue;
        }
        let rel = layout::content_path(&u.digest);
        let at = Some(u.index);
        let got = match src.content(u) {
            Ok(g) => g,
            Err(SourceError::Unavailable(e)) => return Err(format!("{}: {e}", u.what())),
            Err(e) => {
                if is_redacted(state, u.item.as_deref(), &u.digest) {
                    t.redacted += 1;
                    cx.violation(
                        "redacted-content-present",
                        at,
                        &rel,
                        format!("content removed by a Redacted event is still there ({e})"),
                    );
                } else {
                    cx.violation("content-mismatch", at, &rel, format!("{}: {e}", u.what()));
                }
                continue;
            }
        };
        if is_redacted(state, u.item.as_deref(), &u.digest) {
            t.redacted += 1;
            if matches!(got, Fetched::Blob(_)) {
                cx.violation(
                    "redacted-content-present",
                    at,
                    &rel,
                    "content removed by a Redacted event is still there".into(),
                );
            }
            continue;
        }
        match got {
            Fetched::Blob(b) => match content::check_blob(&u.digest, u.length, &b) {
                Ok(doc) => {
                    t.ok += 1;
                    if u.report {
                        t.reports.push((u.index, doc.to_vec()));
                    }
                }
                Err(m) => cx.violation(
                    "content-mismatch",
                    at,
                    &rel,
                    format!(
                        "does not match the commitment of entry {} ({} bytes): {m}",
                        u.index, u.length
                    ),
                ),
            },
            Fetched::Restricted if is_restricted(state, u.item.as_deref()) => t.restricted += 1,
            Fetched::NotFound(_) if is_restricted(state, u.item.as_deref()) => t.restricted += 1,
            Fetched::Restricted => cx.violation(
                "content-withheld",
                at,
                &rel,
                format!("{}: withheld, but its matter is public", u.what()),
            ),
            Fetched::NotFound(m) if u.item.is_none() => cx.violation(
                "content-missing",
                at,
                &rel,
                format!(
                    "content of the answer at entry {} is missing ({m}); an answer's content cannot be redacted",
                    u.index
                ),
            ),
            Fetched::NotFound(m) => cx.violation(
                "content-missing",
                at,
                &rel,
                format!(
                    "content of item {} is missing without a Redacted event ({m})",
                    u.item.as_deref().unwrap_or("")
                ),
            ),
        }
    }
    match src.files(layout::CONTENT) {
        Ok(Some(files)) => {
            for f in files {
                if !content_file_digest(&f).is_some_and(|h| referenced.contains(&h)) {
                    cx.push(
                        Severity::Warning,
                        "unexpected-file",
                        None,
                        &format!("{}/{f}", layout::CONTENT),
                        "content no entry commits to".into(),
                    );
                }
            }
        }
        Ok(None) => {}
        Err(e) => cx.push(
            Severity::Warning,
            "unexpected-file",
            None,
            layout::CONTENT,
            e.to_string(),
        ),
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    //! Each step on its own, over an in-memory source (a fake is fine
    //! here: the export directory source has its own tests and the
    //! hostile-export suite).
    use gongkai_core::checkpoint::Checkpoint;
    use gongkai_core::event::{Kind, content_message, pb};
    use gongkai_core::keys::SigningKey;
    use gongkai_core::merkle::TreeState;
    use gongkai_core::note::{KeyType, VerifierKey, Verifiers};
    use gongkai_core::tile::{BundleId, decode_bundle, encode_bundle, entry_bundles_for_size};
    use gongkai_core::types::ContentRef;
    use gongkai_core::types::KeyName;
    use gongkai_core::writer::LogWriter;

    use super::*;

    const ORIGIN: &str = "gongkai.example/510122/finance";

    fn key() -> SigningKey {
        SigningKey::from_seed([5; 32])
    }

    fn origin() -> Origin {
        Origin::new(ORIGIN).unwrap()
    }

    fn trust() -> Trust {
        let vk = Checkpoint::log_verifier_key(&origin(), &key().public_key());
        Trust::from_vkeys(&[vk]).unwrap()
    }

    /// A log source in memory: files by path, as an export lays them out,
    /// and an optional consistency proof to serve.
    #[derive(Clone, Default)]
    struct Mem {
        files: BTreeMap<String, Vec<u8>>,
        consistency: Option<Vec<Hash>>,
        restricted: bool,
        down: bool,
    }

    impl LogSource for Mem {
        fn origin(&self) -> &Origin {
            static O: std::sync::OnceLock<Origin> = std::sync::OnceLock::new();
            O.get_or_init(origin)
        }
        fn checkpoint(&mut self) -> Result<Vec<u8>, SourceError> {
            if self.down {
                return Err(SourceError::Unavailable("connection refused".into()));
            }
            self.get(layout::CHECKPOINT)
        }
        fn bundle(&mut self, id: &BundleId) -> Result<Vec<Vec<u8>>, SourceError> {
            let b = self.get(&id.path())?;
            decode_bundle(&b, usize::from(id.width()))
                .map(|v| v.into_iter().map(<[u8]>::to_vec).collect())
                .map_err(|e| SourceError::Malformed(e.to_string()))
        }
        fn tile(&mut self, id: &TileId) -> Result<Option<Vec<u8>>, SourceError> {
            self.get(&id.path()).map(Some)
        }
        fn content(&mut self, u: &ContentUse) -> Result<Fetched, SourceError> {
            if self.restricted {
                return Ok(Fetched::Restricted);
            }
            match self.get(&layout::content_path(&u.digest)) {
                Ok(b) => Ok(Fetched::Blob(b)),
                Err(_) => Ok(Fetched::NotFound("no such file".into())),
            }
        }
        fn files(&mut self, sub: &str) -> Result<Option<Vec<String>>, SourceError> {
            let p = format!("{sub}/");
            Ok(Some(
                self.files
                    .keys()
                    .filter_map(|k| k.strip_prefix(&p).map(str::to_owned))
                    .collect(),
            ))
        }
        fn read_listed(&mut self, rel: &str, _max: u64) -> Result<Vec<u8>, SourceError> {
            self.get(rel)
        }
        fn consistency(&mut self, _old: u64, _new: u64) -> Result<Option<Vec<Hash>>, SourceError> {
            Ok(self.consistency.clone())
        }
        fn dir(&self) -> Option<&str> {
            Some("logs/x")
        }
    }

    impl Mem {
        fn get(&self, rel: &str) -> Result<Vec<u8>, SourceError> {
            self.files
                .get(rel)
                .cloned()
                .ok_or_else(|| SourceError::Missing(format!("{rel}: no such file")))
        }
        fn sign(&mut self, size: u64, root: Hash) -> SignedCheckpoint {
            let cp =
                SignedCheckpoint::sign(&Checkpoint::new(origin(), size, root), &key()).unwrap();
            self.files
                .insert(layout::CHECKPOINT.into(), cp.to_string().into_bytes());
            cp
        }
    }

    /// A log of `n` entries (a public item with content at 2) laid out in
    /// memory, its checkpoint signed; and the content's digest.
    fn log(n: u64) -> (Mem, Vec<Vec<u8>>, Hash) {
        let mut w = LogWriter::new(origin(), key());
        let salt = [3u8; 32];
        let c = ContentRef::commit(&salt, b"budget", "text/plain").unwrap();
        let mut entries = Vec::new();
        for i in 0..n {
            let kind = match i {
                0 => Kind::Genesis(pb::Genesis {
                    department: "某某县财政局".into(),
                    division_code: "510122".into(),
                }),
                1 => Kind::MatterDefined(pb::MatterDefined {
                    matter_id: "m".into(),
                    matter: Some(pb::Matter {
                        category: "财政".into(),
                        level1: "预算".into(),
                        level2: "部门预算".into(),
                        elements: vec!["预算表".into()],
                        legal_basis: "条例".into(),
                        deadline_working_days: 366,
                        responsible_body: "财政局".into(),
                        channels: vec!["网站".into()],
                        audience: pb::Audience::Public as i32,
                        mode: pb::DisclosureMode::Proactive as i32,
                        ..Default::default()
                    }),
                }),
                2 => Kind::Published(pb::Published {
                    item_id: "budget".into(),
                    matter_id: "m".into(),
                    title: "预算".into(),
                    content: Some(content_message(&c)),
                    date_formed: "2026-03-02".into(),
                    ..Default::default()
                }),
                _ => Kind::RequestReceived(pb::RequestReceived {
                    applicant: 0,
                    request_id: format!("r{i}"),
                    date_received: "2026-03-02".into(),
                    subject: "请求公开".into(),
                }),
            };
            entries.push(w.append(kind, 1_772_413_200_000 + i).unwrap().into_bytes());
        }
        let mut m = Mem::default();
        let mut blob = salt.to_vec();
        blob.extend_from_slice(b"budget");
        m.files.insert(layout::content_path(c.digest()), blob);
        let root = lay_out(&mut m, &entries);
        m.sign(n, root);
        (m, entries, *c.digest())
    }

    /// Writes bundles and tiles of `entries`; returns the root.
    fn lay_out(m: &mut Mem, entries: &[Vec<u8>]) -> Hash {
        m.files.retain(|k, _| !k.starts_with("tile/"));
        let mut tree = TreeState::new();
        let mut tiles = TileBuilder::new();
        for b in entry_bundles_for_size(entries.len() as u64) {
            let first = usize::try_from(b.first_entry()).unwrap();
            let part: Vec<&[u8]> = entries[first..first + usize::from(b.width())]
                .iter()
                .map(Vec::as_slice)
                .collect();
            m.files.insert(b.path(), encode_bundle(&part).unwrap());
            for e in part {
                let h = gongkai_core::hash::leaf_hash(e);
                tree.append_leaf(h);
                for (id, t) in tiles.push(h) {
                    m.files.insert(id.path(), encode_tile(&t));
                }
            }
        }
        for (id, t) in tiles.partial_tiles() {
            m.files.insert(id.path(), encode_tile(&t));
        }
        tree.root()
    }

    fn opts(trust: &Trust) -> Options<'_> {
        Options {
            trust,
            review: None,
            county_notes: &[],
            resume: None,
        }
    }

    fn kinds(a: &LogAudit) -> Vec<&'static str> {
        a.findings
            .iter()
            .filter(|f| f.severity == Severity::Violation)
            .map(|f| f.kind)
            .collect()
    }

    #[test]
    fn a_clean_log_verifies_and_gives_its_state() {
        let (mut m, _, _) = log(300);
        let t = trust();
        let a = check_log(&mut m, &opts(&t));
        assert_eq!(kinds(&a), Vec::<&str>::new(), "{:?}", a.findings);
        assert_eq!((a.size, a.entries_verified, a.content_ok), (300, 300, 1));
        assert!(a.verified.is_some());
    }

    #[test]
    fn step_1_an_untrusted_log_is_a_violation_and_nothing_else_is_read() {
        let (mut m, _, _) = log(3);
        let a = check_log(&mut m, &opts(&Trust::default()));
        assert_eq!(kinds(&a), ["untrusted-log"]);
        assert_eq!(a.size, 0);
    }

    #[test]
    fn step_2_a_checkpoint_of_another_log_or_garbage_is_a_violation_an_outage_is_not() {
        let t = trust();
        let (mut m, _, _) = log(3);
        let other = SignedCheckpoint::sign(
            &Checkpoint::new(
                Origin::new("gongkai.example/510122/edu").unwrap(),
                3,
                Hash::ZERO,
            ),
            &key(),
        )
        .unwrap();
        m.files
            .insert(layout::CHECKPOINT.into(), other.to_string().into_bytes());
        assert_eq!(kinds(&check_log(&mut m, &opts(&t))), ["checkpoint"]);
        m.files
            .insert(layout::CHECKPOINT.into(), b"garbage".to_vec());
        assert_eq!(kinds(&check_log(&mut m, &opts(&t))), ["checkpoint"]);
        m.down = true;
        let a = check_log(&mut m, &opts(&t));
        assert_eq!(kinds(&a), Vec::<&str>::new());
        assert!(a.error.unwrap().contains("connection refused"));
    }

    #[test]
    fn step_3_resume_catches_rollback_fork_and_a_failed_consistency_proof() {
        let t = trust();
        let (mut old, entries, _) = log(10);
        let first = check_log(&mut old, &opts(&t));
        let (text, state) = first.verified.unwrap();
        let resumed = |m: &mut Mem| {
            check_log(
                m,
                &Options {
                    resume: Some((&text, &state)),
                    ..opts(&t)
                },
            )
        };
        // Grown: only the new entries are walked.
        let (mut grown, _, _) = log(20);
        let a = resumed(&mut grown);
        assert_eq!(kinds(&a), Vec::<&str>::new(), "{:?}", a.findings);
        assert_eq!((a.new_entries, a.entries_verified), (10, 20));
        // Smaller: a rollback.
        let (mut small, _, _) = log(5);
        assert_eq!(kinds(&resumed(&mut small)), ["rollback"]);
        // The same size, another root: a fork.
        let mut other = old.clone();
        other.sign(10, Hash([1; 32]));
        assert_eq!(kinds(&resumed(&mut other)), ["fork"]);
        // Larger, with a consistency proof that does not hold: a fork.
        grown.consistency = Some(vec![Hash([2; 32])]);
        assert_eq!(kinds(&resumed(&mut grown)), ["fork"]);
        // Larger on another history without proofs: the walk from the
        // remembered state breaks at the first new entry.
        let mut forked = entries.clone();
        let (mut long, long_entries, _) = log(12);
        forked.extend(long_entries[10..].iter().cloned());
        forked[10] = long_entries[9].clone();
        let root = lay_out(&mut long, &forked);
        long.sign(12, root);
        let k = kinds(&resumed(&mut long));
        assert_eq!(k, ["chain-broken"], "{k:?}");
    }

    #[test]
    fn step_4_other_checkpoints_named_for_their_size_and_forks_against_the_log() {
        let t = trust();
        let (mut m, _, _) = log(10);
        // checkpoints/7 holding a checkpoint of size 6.
        let six = check_log(&mut log(6).0, &opts(&t)).verified.unwrap().0;
        m.files
            .insert("checkpoints/7".into(), six.clone().into_bytes());
        assert_eq!(kinds(&check_log(&mut m, &opts(&t))), ["checkpoint"]);
        // The department signed another tree of size 6: a fork.
        m.files.remove("checkpoints/7");
        let fork =
            SignedCheckpoint::sign(&Checkpoint::new(origin(), 6, Hash([9; 32])), &key()).unwrap();
        m.files
            .insert("checkpoints/6".into(), fork.to_string().into_bytes());
        let a = check_log(&mut m, &opts(&t));
        assert_eq!(kinds(&a), ["fork"]);
        let fork = a.findings.iter().find(|f| f.kind == "fork").unwrap();
        assert_eq!(fork.file.as_deref(), Some("logs/x/checkpoints/6"));
        // One larger than the newest: the newest was replaced.
        m.files.remove("checkpoints/6");
        let big = check_log(&mut log(12).0, &opts(&t)).verified.unwrap().0;
        m.files.insert("checkpoints/12".into(), big.into_bytes());
        assert_eq!(kinds(&check_log(&mut m, &opts(&t))), ["checkpoint-newer"]);
        // Malformed evidence is a warning, not a violation.
        m.files.remove("checkpoints/12");
        m.files
            .insert("evidence/0011".into(), b"not evidence".to_vec());
        let a = check_log(&mut m, &opts(&t));
        assert_eq!(kinds(&a), Vec::<&str>::new());
        assert!(a.findings.iter().any(|f| f.kind == "evidence-malformed"));
    }

    #[test]
    fn step_5_the_walk_reports_tiles_missing_bundles_and_bad_entries_by_index() {
        let t = trust();
        let (m, entries, _) = log(300);
        let mut bad_tile = m.clone();
        bad_tile.files.insert("tile/0/000".into(), vec![0; 8192]);
        assert_eq!(
            kinds(&check_log(&mut bad_tile, &opts(&t))),
            ["tile-mismatch"]
        );
        let mut missing = m.clone();
        missing.files.remove("tile/entries/001.p/44");
        let a = check_log(&mut missing, &opts(&t));
        assert_eq!(kinds(&a), ["missing-file"]);
        assert_eq!(a.findings[0].index, Some(256));
        assert_eq!(a.entries_verified, 256);
        let mut broken = m.clone();
        let mut bad = entries.clone();
        let last = bad[100].len() - 1;
        bad[100][last] ^= 1;
        let root = lay_out(&mut broken, &bad);
        broken.sign(300, root);
        let a = check_log(&mut broken, &opts(&t));
        assert_eq!(kinds(&a), ["bad-signature"]);
        assert_eq!(a.findings[0].index, Some(100));
        assert_eq!(
            a.findings[0].file.as_deref(),
            Some("logs/x/tile/entries/000")
        );
    }

    #[test]
    fn step_6_and_7_stray_tiles_the_root_and_the_quorum() {
        let t = trust();
        let (m, _, _) = log(300);
        let mut stray = m.clone();
        stray.files.insert("tile/0/000.p/9".into(), vec![0; 288]);
        assert_eq!(
            kinds(&check_log(&mut stray, &opts(&t))),
            ["unexpected-file"]
        );
        let mut wrong_root = m.clone();
        wrong_root.sign(300, Hash([4; 32]));
        assert_eq!(
            kinds(&check_log(&mut wrong_root, &opts(&t))),
            ["root-mismatch"]
        );
        let mut unsigned = m.clone();
        let other = SigningKey::from_seed([6; 32]);
        let cp = check_log(&mut m.clone(), &opts(&t)).verified.unwrap().0;
        let root = SignedCheckpoint::parse(&cp).unwrap().checkpoint().root;
        let by_other =
            SignedCheckpoint::sign(&Checkpoint::new(origin(), 300, root), &other).unwrap();
        unsigned
            .files
            .insert(layout::CHECKPOINT.into(), by_other.to_string().into_bytes());
        assert_eq!(
            kinds(&check_log(&mut unsigned, &opts(&t))),
            ["checkpoint-signature"]
        );
        // One witness required, none cosigned: a violation; with no
        // witness in the trust, a warning that nothing was checked.
        let w = SigningKey::from_seed([8; 32]);
        let wk = VerifierKey::new(
            KeyName::new("witness.example").unwrap(),
            KeyType::CosignatureV1,
            w.public_key(),
        );
        let mut strict = t.clone();
        strict.witnesses = Verifiers::new([wk]).unwrap();
        strict.quorum = 1;
        assert_eq!(
            kinds(&check_log(&mut m.clone(), &opts(&strict))),
            ["not-cosigned"]
        );
        let a = check_log(&mut m.clone(), &opts(&t));
        assert_eq!(kinds(&a), Vec::<&str>::new());
        assert!(a.findings.iter().any(|f| f.kind == "not-cosigned"));
    }

    #[test]
    fn step_9_content_missing_mismatched_withheld_and_unreferenced() {
        let t = trust();
        let (m, _, digest) = log(10);
        let rel = layout::content_path(&digest);
        let mut missing = m.clone();
        missing.files.remove(&rel);
        assert_eq!(
            kinds(&check_log(&mut missing, &opts(&t))),
            ["content-missing"]
        );
        let mut changed = m.clone();
        changed.files.get_mut(&rel).unwrap().push(b'!');
        assert_eq!(
            kinds(&check_log(&mut changed, &opts(&t))),
            ["content-mismatch"]
        );
        let mut withheld = m.clone();
        withheld.restricted = true;
        assert_eq!(
            kinds(&check_log(&mut withheld, &opts(&t))),
            ["content-withheld"]
        );
        let mut extra = m.clone();
        extra
            .files
            .insert(layout::content_path(&Hash([1; 32])), vec![0; 40]);
        let a = check_log(&mut extra, &opts(&t));
        assert_eq!(kinds(&a), Vec::<&str>::new());
        assert!(
            a.findings
                .iter()
                .any(|f| f.kind == "unexpected-file" && f.severity == Severity::Warning)
        );
    }
}
