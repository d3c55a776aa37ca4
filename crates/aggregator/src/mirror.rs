//! One department's mirror: verification of pushes, staging, the atomic
//! commit with the cosignature, and evidence.
//!
//! The mirror's data directory has the node's format (journal, content),
//! but its projection is one tree of a database all mirrors share
//! ([`open_projections`]); the node's [`LogView`] serves it. Per origin, one lock
//! serializes pushes; inside it:
//!
//! 1. a package of at most 256 entries continuing the staged end is checked
//!    without touching any state — framing, canonical body and field rules
//!    and every signature (batch-verified) in one pass split over the
//!    cores, then in log order origin, index, `prev_hash` links, time not
//!    ahead of the county clock, canonical key and `R` encodings, signer =
//!    key in force, and the signature verdict — then folded into the
//!    running chain state (catalog rules) and staged in memory (bounded);
//! 2. with a checkpoint, the department's signature is checked, then the
//!    root of mirror + staged at its size against the checkpoint's root and
//!    consistency with the checkpoint last cosigned; then the commit, in
//!    this order: **journal append (fdatasync)** → the projection handed to
//!    the mirror's projector ([`crate::projector`]) → **cosigned record**
//!    (sled compare-and-swap, then fdatasync) → the cosigned checkpoint
//!    handed to the projector, which serves it once the projection before
//!    it is stored. A crash after the journal sync leaves verified entries
//!    beyond the cosigned size, which the next checkpoint covers (and whose
//!    projection the next open replays); a cosignature never leaves before
//!    both the entries and the record it commits to are durable.
//!
//! A rejected push changes nothing (staged entries of a failed checkpoint
//! are dropped; the node pushes them again). Misbehaviour that proves
//! itself becomes evidence ([`gongkai_core::evidence`]) and suspends
//! cosigning for the origin.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use gongkai_core::Hash;
use gongkai_core::audit::BACK_DATE_TOLERANCE_MS;
use gongkai_core::catalog::{Catalog, Touched};
use gongkai_core::chain::{ChainVerifier, Prepared, prepare};
use gongkai_core::checkpoint::{Checkpoint, SignedCheckpoint};
use gongkai_core::county;
use gongkai_core::event::Kind;
use gongkai_core::evidence::{Evidence, Misbehaviour};
use gongkai_core::keys::{PublicKey, SigningKey};
use gongkai_core::merkle::{self, TreeState};
use gongkai_core::note::{Cosigner, Note, VerifierKey, Verifiers};
use gongkai_core::types::{KeyName, Origin};
use gongkai_node::view::LogView;
use gongkai_node::working::{MaybeKnown, WorkingSet};
use gongkai_store::projection::{Applied, Projection};
use gongkai_store::{DataDir, JournalOptions};
use gongkai_verify::engine::{check_package, walk};

use crate::projector::{Job, PART, Part, Projector};
use crate::state::{DepartmentRecord, Durability, EvidenceRecord, State};
use crate::{AggregatorError, now_ms};

/// Most entries in one push.
pub const MAX_PACKAGE: usize = 256;

/// What a mirror needs from the county.
pub struct Context {
    /// The county database.
    pub state: Arc<State>,
    /// The county's cosigning key.
    pub cosigner: Cosigner,
    /// Bytes staged per origin at most.
    pub max_staged_bytes: u64,
    /// Entries this far ahead of the county clock are refused (ms).
    pub max_future_ms: u64,
    /// Re-cosign an unchanged checkpoint after this long (ms).
    pub recosign_interval_ms: u64,
    /// With independent witnesses: a newly cosigned size is served only
    /// once the witnesses had their chance to cosign it (the collector is
    /// woken here and publishes it, crate::witnessing).
    pub witness_notify: Option<Arc<tokio::sync::Notify>>,
}

/// The mutable part of a mirror, under its lock.
pub struct Staging {
    /// Chain state at the staged end (links, keys; not the catalog).
    chain: ChainVerifier,
    /// The mirror's tree at the journal's size.
    tree: TreeState,
    /// The catalog records the rules read, at the staged end: those
    /// changed by staged or not yet projected entries, and those loaded
    /// from the projection for them.
    working: WorkingSet,
    /// Verified entries after the journal, waiting for a checkpoint.
    staged: Vec<Prepared>,
    staged_bytes: u64,
}

/// One mirrored department.
pub struct Mirror {
    /// The department's origin.
    pub origin: Origin,
    /// Its verifier key (genesis key) from the config.
    pub vkey: VerifierKey,
    /// The read side.
    pub view: Arc<LogView>,
    /// Serializes pushes.
    pub staging: Arc<tokio::sync::Mutex<Staging>>,
    /// Stores the projection of committed entries and publishes them.
    projector: Projector,
    /// The size of the cosigned checkpoint served.
    published: std::sync::atomic::AtomicU64,
}

/// What the county tells a pusher about a mirror.
#[derive(Clone, Debug, Default)]
pub struct MirrorReport {
    /// Entries durable in the mirror.
    pub mirrored: u64,
    /// Staged end.
    pub staged_end: u64,
    /// The cosigned record.
    pub record: DepartmentRecord,
}

fn invalid(m: impl Into<String>) -> AggregatorError {
    AggregatorError::Invalid(m.into())
}

/// The database every mirror's projection is a tree of
/// ([`Projection::open_shared`]), in `data_dir`, with a page cache of at
/// most `cache_bytes`.
///
/// # Errors
/// [`AggregatorError::Fatal`] if sled cannot open it.
pub fn open_projections(data_dir: &Path, cache_bytes: u64) -> Result<sled::Db, AggregatorError> {
    let path = projections_dir(data_dir);
    gongkai_store::open_sled(&sled::Config::new().path(&path).cache_capacity(cache_bytes))
        .map_err(|e| AggregatorError::Fatal(format!("{}: {e}", path.display())))
}

/// Where [`open_projections`] keeps the mirrors' projections.
pub fn projections_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("projections")
}

/// Moves a mirror's projection out of its own database (where mirrors
/// kept it before they shared one) into `to`, its tree of the shared one,
/// then removes the old database: copied and made durable first, renamed
/// away, then removed, so a crash at any point either copies again or
/// finds only a directory to remove.
fn move_own_projection(
    dir: &Path,
    projections: &Path,
    to: &Projection,
    origin: &Origin,
) -> Result<(), AggregatorError> {
    let fatal = |what: &str, p: &Path, e: std::io::Error| {
        AggregatorError::Fatal(format!("{what} {}: {e}", p.display()))
    };
    let (own, moved) = (dir.join("projection"), dir.join("projection.moved"));
    let remove_moved = || {
        if moved.exists() {
            std::fs::remove_dir_all(&moved).map_err(|e| fatal("remove", &moved, e))?;
        }
        Ok::<_, AggregatorError>(())
    };
    remove_moved()?;
    if own.exists() {
        let from = Projection::open_unindexed(&own, origin.as_str(), 1 << 20)?;
        let records = to.copy_from(&from)?;
        drop(from);
        crate::state::sync_sled_files(projections)?;
        std::fs::rename(&own, &moved).map_err(|e| fatal("rename", &own, e))?;
        tracing::info!(%origin, records, "moved the mirror's projection into the shared database");
        remove_moved()?;
    }
    Ok(())
}

/// The mirror directory of `origin` under `data_dir` (`/` escaped).
pub fn mirror_dir(data_dir: &Path, origin: &Origin) -> PathBuf {
    data_dir
        .join("mirrors")
        .join(origin.as_str().replace('%', "%25").replace('/', "%2F"))
}

fn genesis_key(vkey: &VerifierKey) -> PublicKey {
    *vkey.public_key()
}

/// An error while walking the journal: an entry that does not verify
/// (named for the mirror by the caller) or the store.
enum Walking {
    Core(gongkai_core::Error),
    Store(AggregatorError),
}

impl From<gongkai_core::Error> for Walking {
    fn from(e: gongkai_core::Error) -> Walking {
        Walking::Core(e)
    }
}

impl From<AggregatorError> for Walking {
    fn from(e: AggregatorError) -> Walking {
        Walking::Store(e)
    }
}

/// Item and request records a mirror's working catalog holds before it
/// waits for its projector (about 2 MB; a county holds many mirrors).
pub const MAX_HELD: usize = 8_192;

/// Reads, verifies and (re)folds the whole mirror journal, replaying what
/// the projection lacks (and checking the catalog rules of those entries
/// over the records the projection holds before them). Signatures are
/// checked at open (`at_open`); a rebuild after a refused push skips them
/// (every stored entry was verified before it was written).
/// At open the projection was opened unindexed, and the leaf hashes of the entries it holds are indexed here, from the journal
/// read anyway, rather than read back through sled's cache from the tiles
/// (which sled 0.34 does not keep within its cache bound: several MB per
/// mirror, for a county of many mirrors).
///
/// The catalog is not kept: the projection holds it, and the mirror reads
/// the records a push names into its [`WorkingSet`] (see the node's
/// `working` module), so a mirror's memory does not grow with its log.
fn fold_journal(
    view: &LogView,
    genesis: PublicKey,
    at_open: bool,
) -> Result<(ChainVerifier, TreeState, WorkingSet), AggregatorError> {
    let journal = view.journal();
    let len = journal.len();
    let applied = view.projection().applied()?;
    if applied > len {
        return Err(AggregatorError::Fatal(format!(
            "mirror of {}: the projection holds {applied} entries, the journal {len}",
            view.origin()
        )));
    }
    let mut chain = ChainVerifier::new(view.origin().clone(), &[genesis]).without_catalog_rules();
    let mut tree = TreeState::new();
    let mut known = MaybeKnown::default();
    let store = |e: gongkai_store::StoreError| Walking::Store(e.into());
    let fatal = |e: gongkai_core::Error| {
        AggregatorError::Fatal(format!("mirror of {}: {e}", view.origin()))
    };
    walk(
        &mut chain,
        len,
        at_open,
        |start, end| {
            journal
                .read_range(start, end)
                .map_err(|e| Walking::Store(e.into()))
        },
        |prepared, _| {
            let mut nodes = Vec::new();
            let mut to_apply = Vec::new();
            let mut working = Catalog::new();
            let start = prepared.first().map_or(0, |p| p.event.index);
            let mut stored_leaves = Vec::new();
            for p in prepared {
                let completed = tree.append(p.leaf_hash);
                known.insert_created(&p.event);
                if p.event.index < applied {
                    stored_leaves.push(p.leaf_hash);
                } else {
                    view.projection()
                        .load_catalog(&Touched::of(&p.event), &mut working)
                        .map_err(store)?;
                    working.apply(&p.event)?;
                    nodes.extend(completed);
                    to_apply.push(Applied {
                        index: p.event.index,
                        leaf_hash: p.leaf_hash,
                        event: &p.event,
                    });
                }
            }
            if at_open {
                view.projection()
                    .index_leaves(start, &stored_leaves)
                    .map_err(store)?;
            }
            view.projection()
                .apply(&to_apply, &nodes, &[])
                .map_err(store)?;
            Ok(())
        },
    )
    .map_err(|e| match e {
        Walking::Core(e) => fatal(e),
        Walking::Store(e) => e,
    })?;
    Ok((chain, tree, WorkingSet::with_max_held(known, MAX_HELD)))
}

impl Mirror {
    /// Opens (or creates) the mirror of a department, its projection a tree
    /// of `projections` ([`open_projections`]): verifies its whole
    /// journal (chain, rules, signatures from the configured genesis key)
    /// and replays what the projection lacks.
    ///
    /// # Errors
    /// [`AggregatorError::Fatal`] naming what is wrong.
    pub fn open(
        data_dir: &Path,
        projections: &sled::Db,
        origin: Origin,
        vkey: VerifierKey,
        reserve_bytes: u64,
        record: &DepartmentRecord,
    ) -> Result<Mirror, AggregatorError> {
        let dir = mirror_dir(data_dir, &origin);
        std::fs::create_dir_all(&dir)
            .map_err(|e| AggregatorError::Fatal(format!("{}: {e}", dir.display())))?;
        let data = DataDir::open(&dir)?;
        let journal = data.journal(origin.as_str(), JournalOptions::default())?;
        let content = data.content()?.with_reserve(reserve_bytes);
        // Indexed by `fold_journal`, which reads every entry anyway.
        let projection = Projection::open_shared(projections, origin.as_str())?;
        move_own_projection(&dir, &projections_dir(data_dir), &projection, &origin)?;
        let len = journal.len();
        if len < record.cosigned_size {
            return Err(AggregatorError::Fatal(format!(
                "mirror of {origin} holds {len} entries but the county cosigned size {}: the mirror's data directory is older than the county state",
                record.cosigned_size
            )));
        }
        let view = LogView::new(origin.clone(), journal, projection, content, len);
        let (chain, tree, working) = fold_journal(&view, genesis_key(&vkey), true)?;
        if !record.cosigned_note.is_empty() {
            view.projection()
                .put_checkpoint(record.cosigned_size, &record.cosigned_note)?;
            view.set_checkpoint(record.cosigned_size, record.cosigned_note.clone());
            view.set_cosigned(record.cosigned_size, record.cosigned_note.clone());
        }
        let view = Arc::new(view);
        Ok(Mirror {
            origin,
            vkey,
            projector: Projector::start(Arc::clone(&view))?,
            view,
            published: std::sync::atomic::AtomicU64::new(record.cosigned_size),
            staging: Arc::new(tokio::sync::Mutex::new(Staging {
                chain,
                tree,
                working,
                staged: Vec::new(),
                staged_bytes: 0,
            })),
        })
    }

    /// The keys the department's chain has authorized (genesis and every
    /// rotation), for checkpoint signatures and evidence.
    fn keys(&self, st: &Staging) -> Vec<PublicKey> {
        let mut keys: Vec<PublicKey> = st.chain.state().keys.iter().map(|k| k.key).collect();
        let genesis = genesis_key(&self.vkey);
        if !keys.contains(&genesis) {
            keys.push(genesis);
        }
        keys
    }

    /// Notes as missing the content of every mirrored request answer the
    /// county does not hold. Mirrors written before answers' content was
    /// mirrored never asked their node for it; run at start, this makes
    /// the node push it. Returns how many were noted.
    ///
    /// # Errors
    /// Storage errors.
    pub fn note_answer_content(&self, state: &State) -> Result<usize, AggregatorError> {
        let origin = self.origin.as_str();
        let mut noted = 0;
        for rec in self.view.projection().answered_with_content() {
            let Some(c) = rec?.answer_content else {
                continue;
            };
            if !self.view.content().contains(&c.digest)?
                && state.missing_length(origin, &c.digest)?.is_none()
            {
                state.add_missing(origin, &c.digest, c.length)?;
                noted += 1;
            }
        }
        Ok(noted)
    }

    /// The state a pusher needs.
    ///
    /// # Errors
    /// Storage errors.
    pub fn report(&self, st: &Staging, ctx: &Context) -> Result<MirrorReport, AggregatorError> {
        let mirrored = self.view.journal().len();
        let record = ctx.state.record(self.origin.as_str())?;
        Ok(MirrorReport {
            mirrored,
            staged_end: mirrored + st.staged.len() as u64,
            record,
        })
    }

    /// Waits until every committed entry and checkpoint is stored in the
    /// projection and served (what a pusher reads back afterwards), for
    /// async callers: take [`Mirror::served_ticket`] under the lock, then
    /// await this after releasing it.
    pub async fn served(&self, ticket: u64) {
        self.projector.wait_async(ticket).await;
    }

    /// A ticket for [`Mirror::served`] covering everything committed so
    /// far.
    pub fn served_ticket(&self) -> u64 {
        self.projector.sent()
    }

    /// Drops staged entries and rebuilds the chain state from the journal.
    fn reset(&self, st: &mut Staging) -> Result<(), AggregatorError> {
        // The rebuild reads (and replays into) the projection.
        self.projector.wait_idle()?;
        let (chain, tree, working) = fold_journal(&self.view, genesis_key(&self.vkey), false)?;
        st.chain = chain;
        st.tree = tree;
        st.working = working;
        st.staged.clear();
        st.staged_bytes = 0;
        Ok(())
    }

    /// The entry at `index` among the journal and the staged entries.
    fn entry_at(&self, st: &Staging, index: u64) -> Result<Vec<u8>, AggregatorError> {
        let mirrored = self.view.journal().len();
        if index < mirrored {
            Ok(self.view.journal().read(index)?)
        } else {
            st.staged
                .get(usize::try_from(index - mirrored).unwrap_or(usize::MAX))
                .map(|p| p.entry.as_bytes().to_vec())
                .ok_or_else(|| AggregatorError::Storage(format!("no entry {index}")))
        }
    }

    /// Records evidence (after checking it proves what it claims), suspends
    /// cosigning, drops staged entries, and returns the error to answer.
    fn evidence(&self, st: &mut Staging, ctx: &Context, what: Misbehaviour) -> AggregatorError {
        let evidence = Evidence {
            origin: self.origin.clone(),
            observed_secs: now_ms() / 1000,
            what,
        };
        let keys = self.keys(st);
        if let Err(e) = evidence.verify(&keys) {
            // Never record what does not prove itself.
            tracing::error!(origin = %self.origin, error = %e, "county built evidence that does not verify (bug)");
            return AggregatorError::Storage(format!("evidence does not verify: {e}"));
        }
        let id = evidence.id();
        let kind = evidence.what.kind();
        let rec = EvidenceRecord {
            id: id.clone(),
            origin: self.origin.to_string(),
            kind: kind.to_owned(),
            observed: evidence.observed_secs,
            cleared: false,
        };
        let result = ctx
            .state
            .put_evidence(&rec, &evidence.encode())
            .and_then(|path| {
                let (read, mut record) = ctx.state.versioned(self.origin.as_str())?;
                record.suspended = Some(format!("evidence {id} ({kind})"));
                ctx.state
                    .swap_record(self.origin.as_str(), read, &record, Durability::Synced)?;
                Ok(path)
            });
        match result {
            Ok(path) => {
                tracing::error!(
                    origin = %self.origin, evidence = %id, kind, file = %path.display(),
                    "MISBEHAVIOUR: evidence recorded; cosigning suspended until an operator clears it"
                );
                EVIDENCE_RECORDED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            Err(e) => return e,
        }
        if let Err(e) = self.reset(st) {
            return e;
        }
        AggregatorError::Misbehaviour {
            id,
            origin: self.origin.to_string(),
            kind,
        }
    }

    /// Checks a pushed entry that claims `index` on its own: framing, body,
    /// origin, index, a trusted signer and its signature. Used before
    /// treating a conflict as evidence.
    fn signed_alone(
        &self,
        st: &Staging,
        bytes: &[u8],
        index: u64,
    ) -> Result<Prepared, AggregatorError> {
        let p =
            prepare(bytes.to_vec(), index).map_err(|e| invalid(format!("entry {index}: {e}")))?;
        if p.event.origin != self.origin || p.event.index != index {
            return Err(invalid(format!(
                "entry {index}: it is for {} index {}",
                p.event.origin, p.event.index
            )));
        }
        if !self.keys(st).contains(&p.event.signer) {
            return Err(invalid(format!(
                "entry {index}: signed by {}, a key the chain never authorized",
                p.event.signer
            )));
        }
        for c in p
            .signature_checks()
            .map_err(|e| invalid(e.to_string()))?
            .iter()
            .take(1)
        {
            c.verify()
                .map_err(|e| invalid(format!("entry {index}: {e}")))?;
        }
        Ok(p)
    }

    /// Handles one push (called under the mirror's lock, on a blocking
    /// thread). See the module docs for the order of checks and commits.
    ///
    /// # Errors
    /// INVALID_ARGUMENT for tampered or malformed input, FAILED_PRECONDITION
    /// for gaps, stale checkpoints, suspension and misbehaviour,
    /// RESOURCE_EXHAUSTED beyond the staging bound.
    pub fn push(
        &self,
        st: &mut Staging,
        ctx: &Context,
        start: u64,
        entries: Vec<Vec<u8>>,
        checkpoint: &str,
    ) -> Result<MirrorReport, AggregatorError> {
        self.projector.check()?;
        let record = ctx.state.record(self.origin.as_str())?;
        if let Some(reason) = &record.suspended {
            return Err(AggregatorError::Precondition(format!(
                "cosigning of {} is suspended: {reason}; an operator must review and clear it (`gongkai county evidence clear`)",
                self.origin
            )));
        }
        if entries.len() > MAX_PACKAGE {
            return Err(invalid(format!(
                "{} entries in one push; at most {MAX_PACKAGE}",
                entries.len()
            )));
        }
        let checkpoint = if checkpoint.is_empty() {
            None
        } else {
            let cp = SignedCheckpoint::from_bytes(checkpoint.as_bytes())
                .map_err(|e| invalid(format!("checkpoint: {e}")))?;
            if cp.checkpoint().origin != self.origin {
                return Err(invalid(format!(
                    "checkpoint is for {}, this push is for {}",
                    cp.checkpoint().origin,
                    self.origin
                )));
            }
            Some(cp)
        };
        if !entries.is_empty() {
            let end = start
                .checked_add(entries.len() as u64)
                .ok_or_else(|| invalid("start overflows"))?;
            let aligned = end % MAX_PACKAGE as u64 == 0
                || checkpoint
                    .as_ref()
                    .is_some_and(|c| c.checkpoint().size == end);
            if !aligned || (end - 1) / MAX_PACKAGE as u64 != start / MAX_PACKAGE as u64 {
                return Err(invalid(format!(
                    "package [{start}, {end}) is not aligned: a package ends on a multiple of {MAX_PACKAGE} or at the checkpoint's size, and never crosses one"
                )));
            }
            self.stage(st, ctx, start, entries)?;
        }
        if let Some(cp) = checkpoint {
            self.checkpoint(st, ctx, cp, record)?;
        }
        self.report(st, ctx)
    }

    fn stage(
        &self,
        st: &mut Staging,
        ctx: &Context,
        start: u64,
        entries: Vec<Vec<u8>>,
    ) -> Result<(), AggregatorError> {
        let mirrored = self.view.journal().len();
        let staged_end = mirrored + st.staged.len() as u64;
        if start > staged_end {
            return Err(AggregatorError::Precondition(format!(
                "gap: the county has {}'s entries up to {staged_end}; push from {staged_end}, not {start}",
                self.origin
            )));
        }
        // Entries the county already has: identical ones are a harmless
        // retransmission; a different, validly signed one is a fork.
        let overlap = usize::try_from(staged_end - start)
            .unwrap_or(usize::MAX)
            .min(entries.len());
        for (i, pushed) in entries[..overlap].iter().enumerate() {
            let index = start + i as u64;
            let ours = self.entry_at(st, index)?;
            if ours != *pushed {
                self.signed_alone(st, pushed, index)?;
                return Err(self.evidence(
                    st,
                    ctx,
                    Misbehaviour::EntryFork {
                        index,
                        a: ours,
                        b: pushed.clone(),
                    },
                ));
            }
        }
        let new: Vec<Vec<u8>> = entries.into_iter().skip(overlap).collect();
        if new.is_empty() {
            return Ok(());
        }
        let bytes: u64 = new.iter().map(|e| e.len() as u64).sum();
        if st.staged_bytes + bytes > ctx.max_staged_bytes {
            return Err(AggregatorError::Exhausted(format!(
                "{} bytes staged for {} and {bytes} more would exceed {}; send a checkpoint first",
                st.staged_bytes, self.origin, ctx.max_staged_bytes
            )));
        }
        // Checks without touching state.
        // Checks without touching state: framing, bodies and every
        // signature, over the cores at once; the verdicts are reported
        // below in the order the serial checks reach them.
        let (prepared, signatures) =
            check_package(new, staged_end).map_err(|e| invalid(e.to_string()))?;
        let now = now_ms();
        let state = st.chain.state();
        let mut last_body = state.last_body_hash;
        let mut last_time = state.last_time_ms;
        // Followed entry by entry: a genesis puts its signer in force, a
        // rotation its next key, for the entries after it in this package.
        let mut key_in_force = state.key_in_force();
        for (position, p) in (staged_end..).zip(&prepared) {
            let e = &p.event;
            let index = e.index;
            if index != position {
                return Err(invalid(format!(
                    "entry at position {position} says index {index} (skipped or repeated index)"
                )));
            }
            if e.origin != self.origin {
                return Err(invalid(format!(
                    "entry {index}: origin {} (this log is {})",
                    e.origin, self.origin
                )));
            }
            if e.prev_hash != last_body {
                if index > 0 && index == staged_end {
                    // Validly signed but not linking to what the county
                    // holds: the department signed two entries at index - 1.
                    self.signed_alone(st, p.entry.as_bytes(), index)?;
                    let ours = self.entry_at(st, index - 1)?;
                    return Err(self.evidence(
                        st,
                        ctx,
                        Misbehaviour::BrokenLink {
                            index: index - 1,
                            a: ours,
                            b: p.entry.as_bytes().to_vec(),
                        },
                    ));
                }
                return Err(invalid(format!(
                    "entry {index}: prev_hash {} is not the body hash of entry {} ({last_body})",
                    e.prev_hash,
                    index.saturating_sub(1)
                )));
            }
            if e.time_ms < last_time {
                return Err(invalid(format!("entry {index}: time goes backwards")));
            }
            if e.time_ms > now + ctx.max_future_ms {
                return Err(invalid(format!(
                    "entry {index}: time {} is more than {} s ahead of the county's clock",
                    e.time_ms,
                    ctx.max_future_ms / 1000
                )));
            }
            if let Some(k) = key_in_force
                && e.signer != k
            {
                return Err(invalid(format!(
                    "entry {index}: signed by {}, the key in force is {k}",
                    e.signer
                )));
            }
            // The signer equals the key in force, whose encoding the field
            // rules checked (genesis, key_rotated); `R` by a byte test (one
            // that does not decode fails the signature check below).
            if (index == 0 && !e.signer.is_canonical())
                || !p.entry.signature().r_encoding_is_canonical()
            {
                return Err(invalid(format!(
                    "entry {index}: non-canonical key or signature encoding"
                )));
            }
            last_body = p.body_hash;
            last_time = e.time_ms;
            match &e.kind {
                Kind::Genesis(_) => key_in_force = Some(e.signer),
                Kind::KeyRotated(r) => {
                    // The field rules checked the key's encoding.
                    let next = PublicKey::from_slice(&r.next_key)
                        .map_err(|err| invalid(format!("entry {index}: next key: {err}")))?;
                    key_in_force = Some(next);
                }
                _ => {}
            }
            if let Some((at, e)) = &signatures.unchecked
                && *at == index
            {
                return Err(invalid(e.to_string()));
            }
        }
        signatures.verdict.map_err(|e| invalid(e.to_string()))?;
        // The records the package's events name, into the working catalog.
        // When it is full, the projector catches up first, so what it has
        // stored can leave memory (records of staged entries stay until
        // they are committed and stored: bounded by `max_staged_bytes`).
        if st.working.full() {
            self.projector.wait_idle()?;
        }
        st.working.settle(self.view.size(), staged_end);
        st.working
            .load(self.view.projection(), prepared.iter().map(|p| &p.event))
            .map_err(|e| AggregatorError::Storage(e.to_string()))?;
        // Fold into the chain (links again) and the catalog rules. A
        // refusal here leaves the fold half-advanced: rebuild it.
        for p in &prepared {
            let folded = st
                .chain
                .push_verified(p)
                .and_then(|()| st.working.catalog().apply(&p.event));
            if let Err(e) = folded {
                self.reset(st)?;
                return Err(invalid(format!("entry {}: {e}", p.event.index)));
            }
        }
        st.staged_bytes += bytes;
        st.staged.extend(prepared);
        Ok(())
    }

    /// The root at `size` of mirror + staged.
    fn root_at(&self, st: &Staging, size: u64) -> Result<Hash, AggregatorError> {
        let mirrored = self.view.journal().len();
        if size == mirrored {
            return Ok(st.tree.root());
        }
        if size < mirrored {
            self.projector.wait_idle()?;
            return merkle::root_at(self.view.projection(), size)
                .map_err(|e| AggregatorError::Storage(e.to_string()));
        }
        let mut tree = st.tree.clone();
        for p in st
            .staged
            .iter()
            .take(usize::try_from(size - mirrored).unwrap_or(usize::MAX))
        {
            tree.append_leaf(p.leaf_hash);
        }
        Ok(tree.root())
    }

    fn cosign(
        &self,
        ctx: &Context,
        presented: &SignedCheckpoint,
        time_secs: u64,
    ) -> Result<String, AggregatorError> {
        // Keep the department's (and other witnesses') lines; replace our
        // own earlier cosignature.
        let mut note =
            Note::new(presented.text()).map_err(|e| AggregatorError::Storage(e.to_string()))?;
        for s in presented.note().signatures() {
            if !(s.name() == ctx.cosigner.name() && s.id() == ctx.cosigner.id()) {
                note.add_signature(s.clone())
                    .map_err(|e| AggregatorError::Storage(e.to_string()))?;
            }
        }
        let mut cp = SignedCheckpoint::from_note(note)
            .map_err(|e| AggregatorError::Storage(e.to_string()))?;
        cp.cosign(&ctx.cosigner, time_secs)
            .map_err(|e| AggregatorError::Storage(e.to_string()))?;
        let cosigned = cp.to_string();
        // The county log must hold it in a leaf, which an export writes
        // into an entry bundle (FORMAT.md § 19).
        if cosigned.len() > county::MAX_NOTE_LEN {
            return Err(invalid(format!(
                "checkpoint note of {} bytes once cosigned: the county cosigns notes of at most {} bytes (fewer extension or signature lines)",
                cosigned.len(),
                county::MAX_NOTE_LEN
            )));
        }
        Ok(cosigned)
    }

    fn checkpoint(
        &self,
        st: &mut Staging,
        ctx: &Context,
        cp: SignedCheckpoint,
        record: DepartmentRecord,
    ) -> Result<(), AggregatorError> {
        // The department's signature, under a key its chain authorized.
        let keys = self.keys(st);
        let vkeys = Verifiers::new(
            keys.iter()
                .map(|k| Checkpoint::log_verifier_key(&self.origin, k)),
        )
        .map_err(|e| AggregatorError::Storage(e.to_string()))?;
        cp.note().verify(&vkeys).map_err(|e| {
            invalid(format!(
                "checkpoint of size {}: the department's signature does not verify: {e}",
                cp.checkpoint().size
            ))
        })?;
        let n = cp.checkpoint().size;
        let c = record.cosigned_size;
        let mirrored = self.view.journal().len();
        let have = mirrored + st.staged.len() as u64;
        let now = now_ms();
        let cosigned = if record.cosigned_note.is_empty() {
            None
        } else {
            Some(
                SignedCheckpoint::parse(&record.cosigned_note)
                    .map_err(|e| AggregatorError::Storage(format!("cosigned note: {e}")))?,
            )
        };
        if n < c {
            let root = self.root_at(st, n)?;
            if root == cp.checkpoint().root {
                return Err(AggregatorError::Precondition(format!(
                    "stale checkpoint: the county already cosigned size {c} of {}, and {n} is consistent with it",
                    self.origin
                )));
            }
            self.projector.wait_idle()?;
            let proof = merkle::consistency_proof(self.view.projection(), n, c)
                .map_err(|e| AggregatorError::Storage(e.to_string()))?;
            let larger =
                cosigned.ok_or_else(|| AggregatorError::Storage("no cosigned note".into()))?;
            return Err(self.evidence(
                st,
                ctx,
                Misbehaviour::Inconsistent {
                    larger: strip(&larger),
                    smaller: cp,
                    root,
                    proof,
                },
            ));
        }
        if n == c && c > 0 {
            let old =
                cosigned.ok_or_else(|| AggregatorError::Storage("no cosigned note".into()))?;
            if old.checkpoint().root != cp.checkpoint().root {
                return Err(self.evidence(
                    st,
                    ctx,
                    Misbehaviour::CheckpointFork {
                        a: strip(&old),
                        b: cp,
                    },
                ));
            }
            // Unchanged: re-cosign when the cosignature is old (freshness).
            if now / 1000 >= record.cosigned_time + ctx.recosign_interval_ms / 1000 {
                let (read, mut rec) = ctx.state.versioned(self.origin.as_str())?;
                if rec.cosigned_size == c {
                    // The stored note: the witnesses' lines stay.
                    rec.cosigned_note = self.cosign(ctx, &old, now / 1000)?;
                    rec.cosigned_time = now / 1000;
                    rec.last_push_ms = now;
                    rec.seen_size = rec.seen_size.max(n);
                    ctx.state
                        .swap_record(self.origin.as_str(), read, &rec, Durability::Synced)?;
                    self.publish(ctx, c, &rec.cosigned_note)?;
                }
            } else {
                let (read, mut rec) = ctx.state.versioned(self.origin.as_str())?;
                rec.last_push_ms = now;
                ctx.state
                    .swap_record(self.origin.as_str(), read, &rec, Durability::Flushed)?;
            }
            return Ok(());
        }
        if n > have {
            return Err(AggregatorError::Precondition(format!(
                "the checkpoint is for size {n} but the county has {}'s entries only up to {have}: push them first",
                self.origin
            )));
        }
        let root = self.root_at(st, n)?;
        if root != cp.checkpoint().root {
            self.projector.wait_idle()?;
            let subtrees = TreeState::from_reader(self.view.projection(), c)
                .map_err(|e| AggregatorError::Storage(e.to_string()))?
                .peaks()
                .to_vec();
            let entries = (c..n)
                .map(|i| self.entry_at(st, i))
                .collect::<Result<Vec<_>, _>>()?;
            return Err(self.evidence(
                st,
                ctx,
                Misbehaviour::NotExtension {
                    old: cosigned.as_ref().map(strip),
                    subtrees,
                    entries,
                    new: cp,
                },
            ));
        }
        self.commit(st, ctx, &cp, n)
    }

    /// Commit point order: journal (fdatasync) → cosigned record
    /// (compare-and-swap, synced) → projection and served state (on the
    /// projector, in order).
    fn commit(
        &self,
        st: &mut Staging,
        ctx: &Context,
        cp: &SignedCheckpoint,
        n: u64,
    ) -> Result<(), AggregatorError> {
        let origin = self.origin.as_str();
        // A note the county could not hold in a county leaf is refused
        // before anything is committed (one signature, cheap next to a
        // push; step 3 cosigns again, at its own time).
        self.cosign(ctx, cp, now_ms() / 1000)?;
        let mut back_dated: Option<(u64, u64)> = None;
        if !st.staged.is_empty() {
            let base = self.view.journal().len();
            // 1. Durable: returns after fdatasync. From here on the entries
            // are the mirror's; a crash replays their projection at open.
            let range = self
                .view
                .journal()
                .append(
                    &st.staged
                        .iter()
                        .map(|p| p.entry.as_bytes())
                        .collect::<Vec<_>>(),
                )
                .map_err(|e| {
                    // What reached the disk is unknown: stop and reload.
                    ctx.state.fail(format!("mirror journal of {origin}: {e}"));
                    AggregatorError::from(e)
                })?;
            if range.start != base {
                return Err(AggregatorError::Fatal(format!(
                    "mirror journal of {origin} assigned {} where {base} was expected",
                    range.start
                )));
            }
            let entries = std::mem::take(&mut st.staged);
            st.staged_bytes = 0;
            // The mirror's tree follows the journal.
            let mut parts = Vec::with_capacity(entries.len().div_ceil(PART));
            let mut size = base;
            let mut it = entries.into_iter();
            loop {
                let part: Vec<Prepared> = it.by_ref().take(PART).collect();
                if part.is_empty() {
                    break;
                }
                let mut nodes = Vec::new();
                for p in &part {
                    nodes.extend(st.tree.append(p.leaf_hash));
                }
                size += part.len() as u64;
                parts.push(Part {
                    entries: part,
                    nodes,
                    size,
                });
            }
            // Entries that claim times well before the county first cosigned
            // the size before them (the time the cosigned size last grew):
            // back-dated, or held back while the county was unreachable
            // (FORMAT.md § 17). Recorded now, at push time; the county's
            // cosignature times in its log let any auditor see the same.
            let rec = ctx.state.record(origin)?;
            if rec.cosigned_size > 0 {
                let first_cosigned_ms = rec.last_advance_ms;
                let late: Vec<u64> = parts
                    .iter()
                    .flat_map(|part| &part.entries)
                    .filter(|p| {
                        p.event.time_ms.saturating_add(BACK_DATE_TOLERANCE_MS) < first_cosigned_ms
                    })
                    .map(|p| p.event.index)
                    .collect();
                if let (Some(first), Some(last)) = (late.first(), late.last()) {
                    tracing::warn!(
                        origin,
                        first,
                        last,
                        count = late.len(),
                        "entries claim times before the county first cosigned size {} (which lacked them): back-dated, or held back while the county was unreachable",
                        rec.cosigned_size
                    );
                    back_dated = Some((late.len() as u64, *last));
                }
            }
            // Content bookkeeping here, not on the projector: a pusher
            // uploads missing content as soon as this push returns.
            let noted = parts
                .iter()
                .flat_map(|part| &part.entries)
                .try_for_each(|p| self.note_content(ctx, &p.event));
            // 2. The projection (derived; replayed at open if lost), on the
            // projector while the next packages are verified. Readers see
            // the entries once it is stored.
            self.projector.send(Job {
                parts,
                cosigned: None,
            })?;
            noted?;
        }
        // 3. The cosigned record: compare-and-swap against the record read
        // here, which must still be below `n`, synced before the
        // cosignature leaves. (Every writer of a record holds this
        // mirror's lock, so the swap failing would be a bug; it would
        // leave verified entries beyond the cosigned size, which the next
        // checkpoint covers, never a cosignature the county did not
        // check.)
        let (read, old) = ctx.state.versioned(origin)?;
        if old.cosigned_size >= n {
            return Err(AggregatorError::Precondition(format!(
                "stale checkpoint: the county already cosigned size {} of {origin}",
                old.cosigned_size
            )));
        }
        let now = now_ms();
        let mut rec = old.clone();
        rec.cosigned_note = self.cosign(ctx, cp, now / 1000)?;
        rec.presented_note = cp.to_string();
        rec.cosigned_size = n;
        rec.cosigned_time = now / 1000;
        rec.seen_size = rec.seen_size.max(n);
        rec.last_push_ms = now;
        rec.last_advance_ms = now;
        if let Some((count, last)) = back_dated {
            rec.back_dated += count;
            rec.back_dated_index = last;
        }
        // Synced: returns after fdatasync, before the cosignature leaves.
        ctx.state
            .swap_record(origin, read, &rec, Durability::Synced)?;
        // 4. Served, after the projection of step 2.
        self.publish(ctx, n, &rec.cosigned_note)?;
        tracing::debug!(origin, size = n, "cosigned");
        Ok(())
    }

    /// Serves a cosigned checkpoint, after the projection of everything
    /// committed before it (through the projector, in order). With
    /// independent witnesses a new size waits for them: the collector is
    /// woken and publishes it ([`Mirror::publish_witnessed`]).
    fn publish(&self, ctx: &Context, size: u64, note: &str) -> Result<(), AggregatorError> {
        use std::sync::atomic::Ordering;
        if let Some(notify) = &ctx.witness_notify
            && size > self.published.load(Ordering::Acquire)
        {
            notify.notify_one();
            return Ok(());
        }
        self.projector.send(Job {
            parts: Vec::new(),
            cosigned: Some((size, note.to_owned())),
        })?;
        self.published.fetch_max(size, Ordering::AcqRel);
        Ok(())
    }

    /// The size of the cosigned checkpoint served.
    pub fn published_size(&self) -> u64 {
        self.published.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The newest cosigned checkpoint, for the witnesses: `(size, note)`,
    /// `None` before the first or while cosigning is suspended.
    ///
    /// # Errors
    /// Storage errors.
    pub fn witness_target(&self, ctx: &Context) -> Result<Option<(u64, String)>, AggregatorError> {
        let rec = ctx.state.record(self.origin.as_str())?;
        if rec.cosigned_note.is_empty() || rec.suspended.is_some() {
            return Ok(None);
        }
        Ok(Some((rec.cosigned_size, rec.cosigned_note)))
    }

    /// The consistency proof from `old` to `new` (both cosigned sizes),
    /// for a witness. Blocking: waits for the projector.
    ///
    /// # Errors
    /// Storage errors.
    pub fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>, AggregatorError> {
        self.projector.wait_idle()?;
        merkle::consistency_proof(self.view.projection(), old, new)
            .map_err(|e| AggregatorError::Storage(e.to_string()))
    }

    /// Serves the cosigned checkpoint of `size` with the witnesses'
    /// cosignature lines of `witnessed` (the same checkpoint text) added,
    /// unless a larger one is served already; keeps the lines in the
    /// record while `size` is still the newest cosigned size. Takes the
    /// mirror's lock: call it from a blocking thread.
    ///
    /// # Errors
    /// Storage errors.
    pub fn publish_witnessed(
        &self,
        ctx: &Context,
        size: u64,
        witnessed: &SignedCheckpoint,
    ) -> Result<bool, AggregatorError> {
        use std::sync::atomic::Ordering;
        let origin = self.origin.as_str();
        let _guard = self.staging.blocking_lock();
        if size < self.published.load(Ordering::Acquire) {
            return Ok(false);
        }
        let (read, mut rec) = ctx.state.versioned(origin)?;
        let note = if rec.cosigned_size == size && !rec.cosigned_note.is_empty() {
            // The record's note may carry a newer county time: merge into it.
            let mut cp = SignedCheckpoint::parse(&rec.cosigned_note)
                .map_err(|e| AggregatorError::Storage(format!("cosigned note: {e}")))?;
            let added = cp
                .merge(witnessed)
                .map_err(|e| AggregatorError::Storage(format!("witness lines: {e}")))?;
            let note = cp.to_string();
            if added > 0 && note.len() <= county::MAX_NOTE_LEN {
                rec.cosigned_note = note.clone();
                ctx.state
                    .swap_record(origin, read, &rec, Durability::Flushed)?;
            }
            rec.cosigned_note
        } else {
            witnessed.to_string()
        };
        self.view.projection().put_checkpoint(size, &note)?;
        self.projector.send(Job {
            parts: Vec::new(),
            cosigned: Some((size, note)),
        })?;
        self.published.fetch_max(size, Ordering::AcqRel);
        Ok(true)
    }

    /// A witness answered a conflict with `theirs`, a checkpoint of the
    /// department it cosigned; `ours` is what the county cosigned. When the
    /// department signed `theirs`, a different root at the same size is a
    /// fork, and a smaller size whose root is not the county's root at
    /// that size is an inconsistency: both recorded as evidence (and
    /// cosigning suspended). Anything else (a larger size, a consistent
    /// one, one the department did not sign) proves nothing about it.
    /// Takes the mirror's lock.
    ///
    /// # Errors
    /// [`AggregatorError::Misbehaviour`] when evidence was recorded;
    /// storage errors.
    pub fn witness_conflict(
        &self,
        ctx: &Context,
        ours: &SignedCheckpoint,
        theirs: &SignedCheckpoint,
    ) -> Result<(), AggregatorError> {
        let (n, c) = (theirs.checkpoint().size, ours.checkpoint().size);
        if n > c || (n == c && ours.checkpoint().root == theirs.checkpoint().root) {
            return Ok(());
        }
        let mut st = self.staging.blocking_lock();
        let keys = self.keys(&st);
        let vkeys = Verifiers::new(
            keys.iter()
                .map(|k| Checkpoint::log_verifier_key(&self.origin, k)),
        )
        .map_err(|e| AggregatorError::Storage(e.to_string()))?;
        if theirs.note().verify(&vkeys).is_err() {
            tracing::warn!(origin = %self.origin, size = n, "a witness holds a checkpoint the department did not sign: not evidence against it");
            return Ok(());
        }
        if n == c {
            return Err(self.evidence(
                &mut st,
                ctx,
                Misbehaviour::CheckpointFork {
                    a: ours.clone(),
                    b: theirs.clone(),
                },
            ));
        }
        let root = self.root_at(&st, n)?;
        if root == theirs.checkpoint().root {
            return Ok(());
        }
        self.projector.wait_idle()?;
        let proof = merkle::consistency_proof(self.view.projection(), n, c)
            .map_err(|e| AggregatorError::Storage(e.to_string()))?;
        Err(self.evidence(
            &mut st,
            ctx,
            Misbehaviour::Inconsistent {
                larger: ours.clone(),
                smaller: theirs.clone(),
                root,
                proof,
            },
        ))
    }

    /// Content bookkeeping of one committed entry: a committed digest the
    /// mirror lacks is missing; a redacted one is removed.
    fn note_content(
        &self,
        ctx: &Context,
        event: &gongkai_core::event::Event,
    ) -> Result<(), AggregatorError> {
        let origin = self.origin.as_str();
        let content = match &event.kind {
            Kind::Published(x) => x.content.as_ref(),
            Kind::Amended(x) => x.content.as_ref(),
            Kind::RequestAnswered(x) => x.content.as_ref(),
            Kind::Redacted(r) => {
                if let Ok(d) = Hash::from_slice(&r.content_digest) {
                    ctx.state.remove_missing(origin, &d)?;
                    if let Err(e) = self.view.content().remove(&d) {
                        tracing::error!(origin, digest = %d, error = %e, "redacted content could not be removed");
                    }
                }
                None
            }
            _ => None,
        };
        if let Some(c) = content
            && let Ok(d) = Hash::from_slice(&c.digest)
            && !self.view.content().contains(&d)?
        {
            ctx.state.add_missing(origin, &d, c.length)?;
        }
        Ok(())
    }

    /// The projector's failure, if it stopped (the mirror is stuck until
    /// its journal is replayed at the next start).
    ///
    /// # Errors
    /// The failure.
    pub fn projector_check(&self) -> Result<(), AggregatorError> {
        self.projector.check()
    }

    /// Whether `digest` of `length` bytes is content this mirror is
    /// waiting for: `Ok(true)` if so, `Ok(false)` if already held; checked
    /// before a byte of a push is read. With `quota` (bytes, 0: none), also
    /// that the department stays within it.
    ///
    /// # Errors
    /// NOT_FOUND for a digest not committed (or redacted), INVALID_ARGUMENT
    /// for another length, RESOURCE_EXHAUSTED over the quota.
    pub fn wants_content(
        &self,
        ctx: &Context,
        digest: &Hash,
        length: u64,
        quota: u64,
    ) -> Result<bool, AggregatorError> {
        let origin = self.origin.as_str();
        let Some(committed) = ctx.state.missing_length(origin, digest)? else {
            if self.view.content().contains(digest)? {
                return Ok(false);
            }
            return Err(AggregatorError::NotFound(format!(
                "content {digest} is not committed by a mirrored entry of {origin} (or was redacted)"
            )));
        };
        if committed != length {
            return Err(invalid(format!(
                "content {digest}: {length} bytes announced, the commitment says {committed}"
            )));
        }
        if quota > 0 {
            let rec = ctx.state.record(origin)?;
            if rec.content_bytes.saturating_add(length) > quota {
                return Err(AggregatorError::Exhausted(format!(
                    "{origin} may mirror {quota} content bytes in total ({} held)",
                    rec.content_bytes
                )));
            }
        }
        Ok(true)
    }

    /// Stores pushed content, streamed into `pending` and checked there
    /// against the commitment (length, `BLAKE3-keyed(salt, content)`), after
    /// checking again under the mirror's lock that it is still wanted and
    /// within `quota`. Takes the mirror's lock: call it from a blocking
    /// thread.
    ///
    /// # Errors
    /// As [`Mirror::wants_content`]; INVALID_ARGUMENT for a mismatch.
    pub fn store_content(
        &self,
        ctx: &Context,
        digest: &Hash,
        pending: gongkai_store::PendingBlob,
        quota: u64,
    ) -> Result<bool, AggregatorError> {
        let origin = self.origin.as_str();
        // Records change only under the mirror's lock.
        let _guard = self.staging.blocking_lock();
        let length = pending.written();
        if !self.wants_content(ctx, digest, length, quota)? {
            return Ok(false);
        }
        match pending.commit(digest) {
            Ok(_) => {}
            Err(
                e @ (gongkai_store::StoreError::DigestMismatch { .. }
                | gongkai_store::StoreError::LengthMismatch { .. }),
            ) => {
                return Err(invalid(format!("content {digest}: {e}")));
            }
            Err(e) => return Err(e.into()),
        }
        ctx.state.remove_missing(origin, digest)?;
        let (read, mut rec) = ctx.state.versioned(origin)?;
        rec.content_bytes += length;
        ctx.state
            .swap_record(origin, read, &rec, Durability::Flushed)?;
        Ok(true)
    }

    /// Re-cosigns the cosigned checkpoint if older than the interval
    /// (freshness without a push). Returns whether it did. Takes the
    /// mirror's lock: call it from a blocking thread.
    ///
    /// # Errors
    /// Storage errors.
    pub fn refresh(&self, ctx: &Context) -> Result<bool, AggregatorError> {
        let origin = self.origin.as_str();
        let mut st = self.staging.blocking_lock();
        // Records the projection now holds leave memory (otherwise only the
        // next push would drop them: an idle mirror would keep its last
        // catch-up's records for good).
        let staged_end = self.view.journal().len() + st.staged.len() as u64;
        st.working.settle(self.view.size(), staged_end);
        let (read, mut rec) = ctx.state.versioned(origin)?;
        let now = now_ms() / 1000;
        if rec.suspended.is_some()
            || rec.presented_note.is_empty()
            || now < rec.cosigned_time + ctx.recosign_interval_ms / 1000
        {
            return Ok(false);
        }
        // The stored note (the department's and the witnesses' lines stay).
        let stored = if rec.cosigned_note.is_empty() {
            &rec.presented_note
        } else {
            &rec.cosigned_note
        };
        let presented =
            SignedCheckpoint::parse(stored).map_err(|e| AggregatorError::Storage(e.to_string()))?;
        rec.cosigned_note = self.cosign(ctx, &presented, now)?;
        rec.cosigned_time = now;
        ctx.state
            .swap_record(origin, read, &rec, Durability::Synced)?;
        self.publish(ctx, rec.cosigned_size, &rec.cosigned_note)?;
        Ok(true)
    }
}

/// The department's checkpoint without the county's cosignature lines is
/// not needed for evidence: evidence verification ignores unknown keys, so
/// notes are kept as they are.
fn strip(cp: &SignedCheckpoint) -> SignedCheckpoint {
    cp.clone()
}

/// Evidence recorded since start (a metric).
pub static EVIDENCE_RECORDED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Builds the county's cosigner from its key file contents.
pub fn cosigner(name: KeyName, key: SigningKey) -> Cosigner {
    Cosigner::new(name, key)
}
