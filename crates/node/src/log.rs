//! The node's log: sequencing, signing, durable append, projections and
//! checkpoints.
//!
//! One sequencer thread owns the mutable state (the [`LogWriter`], the
//! working part of the catalog fold — the rest is in the projection, see
//! `working.rs` — and the compact tree). Write requests queue up
//! while it works; it takes everything queued as one *group*:
//!
//! 1. for each request: replay it if its idempotency key is known; else
//!    build and encode the bodies (chained by body hash), check the field
//!    rules and the catalog rules (all or nothing per request), check that
//!    named content is in the content store — nothing is changed for a
//!    refused request; then sign every accepted body of the group, split
//!    over the cores (signatures are independent once the bodies are
//!    chained);
//! 2. append the group's entries to the journal: **returns only after
//!    `fdatasync`** (one sync for the whole group — group commit). This is
//!    the commit point: from here on the entries are in the log;
//! 3. extend the tree, remove redacted content (before the hand-over, so
//!    the next group's checks see it gone) and hand the group to the
//!    **projector** thread, which stores the projection (tree hashes by
//!    tile, catalog records, idempotency keys) in one sled batch and
//!    extends the in-memory leaf index, while the sequencer already plans,
//!    signs and syncs the next group;
//! 4. the projector then publishes the new size and acknowledges every
//!    request in the group with its receipts (so a receipt's entry is
//!    readable at once), and wakes followers.
//!
//! If step 2 fails (disk full, I/O error) every request of the group gets
//! an error and the node reloads its state from disk before taking more
//! work, so no half-applied in-memory state survives. A crash between 2 and
//! 3 is repaired at start: the projection is replayed from the journal; so
//! is a projector failure, which stops the node like a failed step 2.
//!
//! Idempotency keys are made durable before the entries they name: the
//! sequencer appends the group's keys to the key file ([`crate::keys`]) and
//! syncs it just before step 2, so a client that lost an acknowledgement
//! gets the original receipt back even after a crash.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use gongkai_core::calendar::WorkCalendar;
use gongkai_core::catalog::{Catalog, Touched};
use gongkai_core::chain::{ChainVerifier, prepare};
use gongkai_core::checkpoint::{Checkpoint, SignedCheckpoint};
use gongkai_core::entry::Entry;
use gongkai_core::event::{Event, Kind, pb};
use gongkai_core::hash::body_hash;
use gongkai_core::keys::SigningKey;
use gongkai_core::merkle::{NodeId, TreeState};
use gongkai_core::types::Origin;
use gongkai_core::writer::LogWriter;
use gongkai_core::{Error as CoreError, Hash};
use gongkai_store::projection::{Applied, IdempotencyRecord, Projection};
use gongkai_store::{ContentStore, DataDir, Journal, JournalOptions, StoreError};
use gongkai_verify::engine::walk;
use prost::Message as _;
use tokio::sync::{oneshot, watch};

use crate::NodeError;
use crate::keys::KeyLog;
use crate::view::LogView;
use crate::working::{MaybeKnown, WorkingSet};

/// How far the log's last entry may be dated ahead of this machine's clock
/// before writes stop: new entries would be dated at the last entry's time
/// (time never goes back in a log), and the county refuses entries more
/// than 5 minutes ahead of its own clock.
pub const CLOCK_BEHIND_LOG_MS: u64 = 2 * 60_000;
/// How far this machine's clock may run ahead of the county's before
/// writes stop (below the county's 5 minutes, so nothing it would refuse
/// is ever dated).
pub const CLOCK_AHEAD_OF_COUNTY_MS: u64 = 2 * 60_000;

/// Why a write must wait for the clock, if it must: the log's last entry
/// dated well ahead of `now` (the clock was ahead, or was set back), or the
/// replicator's finding that the clock runs ahead of the county's.
pub fn clock_problem(
    last_time_ms: u64,
    now: u64,
    ahead_of_county: Option<String>,
) -> Option<String> {
    if last_time_ms > now.saturating_add(CLOCK_BEHIND_LOG_MS) {
        let when = gongkai_core::date::Date::from_unix_ms_cst(last_time_ms)
            .map_or_else(|_| last_time_ms.to_string(), |d| d.to_string());
        return Some(format!(
            "the log's last entry is dated {} minutes ahead of this machine's clock (on {when}, China time): the clock was set ahead when it was written, or has since been set back. Time never goes back in a log and the county refuses entries dated ahead of its own clock, so no write is taken until this machine's clock passes that entry's time. Check the clock (`timedatectl`, NTP); if it is right now, writes resume by themselves then",
            (last_time_ms - now) / 60_000
        ));
    }
    ahead_of_county
}

/// Unix time in milliseconds.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A receipt: what the node acknowledges once an entry is durable.
#[derive(Clone, Debug)]
pub struct Receipt {
    /// Index of the entry.
    pub index: u64,
    /// Its leaf hash.
    pub leaf_hash: Hash,
    /// The entry.
    pub entry: Vec<u8>,
}

/// The outcome of a write request.
#[derive(Debug)]
pub struct Appended {
    /// One receipt per event.
    pub receipts: Vec<Receipt>,
    /// True if these are the receipts of an earlier request with the same
    /// idempotency key.
    pub replayed: bool,
}

/// A write request for the sequencer.
pub struct WriteJob {
    /// Client-chosen idempotency key.
    pub key: Option<String>,
    /// BLAKE3 of the request as received, to tell a retry from a reuse.
    pub fingerprint: Hash,
    /// The events, in order.
    pub kinds: Vec<Kind>,
    /// Where the outcome goes.
    pub reply: oneshot::Sender<Result<Appended, NodeError>>,
}

/// A department node's log: the read side ([`LogView`], shared with every
/// RPC handler through [`Log::view`]) plus what only the node has (the key
/// state, the sequencer's failure signal).
pub struct Log {
    view: Arc<LogView>,
    key_state: PathBuf,
    /// How long an upload no entry refers to is kept.
    upload_grace: std::time::Duration,
    /// Set when the sequencer stopped after a failure that needs a reload.
    failed: watch::Sender<Option<String>>,
    /// Entries the projection lacked at open and got from the journal.
    replayed_on_open: u64,
    /// Idempotency keys of groups that are durable but not yet projected.
    inflight_keys: std::sync::Mutex<std::collections::HashMap<String, IdempotencyRecord>>,
    /// The working-day calendar in force: the seed table, then the tables
    /// the county published (FORMAT.md § 14.4), set by the replicator.
    calendar: std::sync::RwLock<Arc<WorkCalendar>>,
    /// Why the node takes no writes: the county holds more of this log
    /// than the node (see [`Log::go_read_only`]). Kept in
    /// [`READ_ONLY_MARKER`] so a restart does not forget it.
    read_only: std::sync::Mutex<Option<String>>,
    read_only_marker: PathBuf,
    /// Set by the replicator while this machine's clock runs ahead of the
    /// county's (see [`clock_problem`]).
    clock_ahead: std::sync::Mutex<Option<String>>,
    /// False from a start with a county configured until the first check
    /// of what the county holds (so a node restored from an old backup
    /// learns it before its first write, not after).
    county_checked: watch::Sender<bool>,
}

/// The file in the data directory that keeps a node read-only across
/// restarts until `gongkai node recover` brings back what it lacks.
pub const READ_ONLY_MARKER: &str = "READ-ONLY";

/// State only the sequencer touches.
struct Sequencer {
    writer: LogWriter,
    catalog: WorkingSet,
    tree: TreeState,
    keys: KeyLog,
}

/// The largest checkpoint size this key has signed for the log, kept beside
/// the key file (`<key>.state`), outside the data directory: a data dir
/// restored from an old backup cannot carry it back.
pub(crate) fn read_key_state(path: &Path) -> Result<u64, NodeError> {
    match std::fs::read_to_string(path) {
        Ok(text) => text.trim().parse().map_err(|_| {
            NodeError::Fatal(format!(
                "{} is damaged: expected a tree size",
                path.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(NodeError::Fatal(format!("read {}: {e}", path.display()))),
    }
}

/// Writes the key state durably: temp file, fsync, rename, directory fsync.
pub(crate) fn write_key_state(path: &Path, size: u64) -> Result<(), NodeError> {
    gongkai_store::write_file_durably(path, format!("{size}\n").as_bytes())?;
    Ok(())
}

/// Everything needed to open a node's log.
pub struct OpenOptions<'a> {
    /// The log's origin.
    pub origin: &'a Origin,
    /// The data directory.
    pub data_dir: &'a Path,
    /// The key file (its `.state` sibling is the signed-size record).
    pub key_path: &'a Path,
    /// The signing key.
    pub key: &'a SigningKey,
    /// Free-space reserve, bytes.
    pub reserve_bytes: u64,
    /// sled cache, bytes.
    pub cache_bytes: u64,
    /// How long an upload no entry refers to is kept, milliseconds.
    pub upload_grace_ms: u64,
}

impl Log {
    /// Creates a new log: the data directory, the journal, and the Genesis
    /// entry naming the department, signed by `key`.
    ///
    /// # Errors
    /// [`NodeError::Fatal`] if the data directory already holds a journal.
    pub fn create(
        opts: &OpenOptions<'_>,
        department: &str,
        division_code: &str,
    ) -> Result<(), NodeError> {
        let data = DataDir::open(opts.data_dir)?;
        if data.journal_path().exists() {
            return Err(NodeError::Fatal(format!(
                "{} already holds a log; refusing to create another",
                opts.data_dir.display()
            )));
        }
        let journal = data.journal(opts.origin.as_str(), journal_options(opts))?;
        let mut writer = LogWriter::new(opts.origin.clone(), opts.key.clone());
        let genesis = Kind::Genesis(pb::Genesis {
            department: department.to_owned(),
            division_code: division_code.to_owned(),
        });
        let body = writer.next_body(genesis, now_ms());
        Event::from_message(body.clone(), 0)?;
        let entry = writer.append(
            body.kind.unwrap_or(Kind::Genesis(pb::Genesis::default())),
            body.time_ms,
        )?;
        journal.append_one(entry.as_bytes())?;
        Ok(())
    }

    /// Opens the log: checks the journal (torn tails are cut), verifies the
    /// whole chain under `key`'s history, refuses a log shorter than a
    /// checkpoint this key already signed, replays what the projection
    /// lacks, and signs a checkpoint of the current size.
    ///
    /// Returns the log and the sequencer state.
    ///
    /// # Errors
    /// [`NodeError::Fatal`] with a precise message on any inconsistency.
    fn open(opts: &OpenOptions<'_>) -> Result<(Log, Sequencer), NodeError> {
        Log::open_on(opts, None)
    }

    /// As [`Log::open`], over `journal` if given instead of the data
    /// directory's.
    fn open_on(
        opts: &OpenOptions<'_>,
        journal: Option<Journal>,
    ) -> Result<(Log, Sequencer), NodeError> {
        let data = DataDir::open(opts.data_dir)?;
        let journal = match journal {
            Some(j) => j,
            None if !data.journal_path().exists() => {
                return Err(NodeError::Fatal(format!(
                    "{} holds no log; create one with `gongkai node init`",
                    opts.data_dir.display()
                )));
            }
            None => data.journal(opts.origin.as_str(), journal_options(opts))?,
        };
        let content = data.content()?.with_reserve(opts.reserve_bytes);
        // The leaf index is rebuilt by `replay`, which reads every entry.
        let projection = Projection::open_unindexed(
            &opts.data_dir.join("projection"),
            opts.origin.as_str(),
            opts.cache_bytes,
        )?;
        let key_state = PathBuf::from(format!("{}.state", opts.key_path.display()));
        let signed = read_key_state(&key_state)?;
        let len = journal.len();
        if len < signed {
            return Err(NodeError::Fatal(format!(
                "the log holds {len} entries, but this key already signed a checkpoint of size {signed}: \
                 the data directory is older than the log (restored from a backup?). Appending would fork \
                 the log. See `gongkai node restore --help` for the safe way back"
            )));
        }
        let read_only_marker = opts.data_dir.join(READ_ONLY_MARKER);
        let read_only = match std::fs::read_to_string(&read_only_marker) {
            Ok(reason) => {
                tracing::error!(%reason, "the node is read-only");
                Some(reason)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                return Err(NodeError::Fatal(format!(
                    "read {}: {e}",
                    read_only_marker.display()
                )));
            }
        };
        let (keys, records) = KeyLog::open(&opts.data_dir.join("idempotency"), len)?;
        projection.put_idempotency(&records)?;
        let (seq, applied) = Self::replay(&journal, &projection, &content, keys, opts)?;
        let log = Log {
            view: Arc::new(LogView::new(
                opts.origin.clone(),
                journal,
                projection,
                content,
                len,
            )),
            key_state,
            failed: watch::channel(None).0,
            replayed_on_open: len - applied,
            inflight_keys: std::sync::Mutex::default(),
            calendar: std::sync::RwLock::new(Arc::new(WorkCalendar::shipped().clone())),
            read_only: std::sync::Mutex::new(read_only),
            read_only_marker,
            clock_ahead: std::sync::Mutex::new(None),
            upload_grace: std::time::Duration::from_millis(opts.upload_grace_ms),
            county_checked: watch::channel(true).0,
        };
        if applied < len {
            tracing::info!(
                from = applied,
                to = len,
                "projection replayed from the journal"
            );
        }
        Ok((log, seq))
    }

    /// Verifies the whole journal (framing, chain, signatures; the genesis
    /// key is taken from the journal, and the key the chain ends with must
    /// be the node's key) and rebuilds what the projection lacks, checking
    /// the catalog rules on those entries and removing content that a
    /// replayed redaction removed. The catalog rules of entries the
    /// projection already holds were checked when they were appended, and
    /// their result is the projection's records; `gongkai node check` folds
    /// them again ([`Log::check_catalog`]).
    fn replay(
        journal: &Journal,
        projection: &Projection,
        content: &ContentStore,
        keys: KeyLog,
        opts: &OpenOptions<'_>,
    ) -> Result<(Sequencer, u64), NodeError> {
        let len = journal.len();
        let applied = projection.applied()?;
        if applied > len {
            return Err(NodeError::Fatal(format!(
                "the projection holds {applied} entries but the journal only {len}: remove {} and restart to rebuild it",
                opts.data_dir.join("projection").display()
            )));
        }
        if len == 0 {
            return Err(NodeError::Fatal(
                "the journal is empty (interrupted `gongkai node init`?): remove the data directory and init again"
                    .into(),
            ));
        }
        let genesis = prepare(journal.read(0)?, 0)?;
        let mut verifier = ChainVerifier::new(opts.origin.clone(), &[genesis.event.signer])
            .without_catalog_rules();
        let mut tree = TreeState::new();
        let mut known = MaybeKnown::default();
        let mut last_body = Hash::ZERO;
        let mut last_time = 0;
        // Framing, bodies and signatures over the cores at once; then the
        // links and keys in order, so an error is the first one in log
        // order (an entry's links before its signatures).
        walk(
            &mut verifier,
            len,
            true,
            |start, end| journal.read_range(start, end).map_err(NodeError::from),
            |prepared, _| {
                // The catalog rules of the entries the projection lacks,
                // over the records the projection holds before them.
                let start = prepared.first().map_or(0, |p| p.event.index);
                let mut working = Catalog::new();
                let mut nodes = Vec::new();
                let mut to_apply = Vec::new();
                let mut stored_leaves = Vec::new();
                for p in prepared {
                    let index = p.event.index;
                    let completed = tree.append(p.leaf_hash);
                    known.insert_created(&p.event);
                    if index < applied {
                        stored_leaves.push(p.leaf_hash);
                    } else {
                        projection.load_catalog(&Touched::of(&p.event), &mut working)?;
                        working.apply(&p.event)?;
                        nodes.extend(completed);
                        to_apply.push(Applied {
                            index,
                            leaf_hash: p.leaf_hash,
                            event: &p.event,
                        });
                    }
                    last_body = p.body_hash;
                    last_time = p.event.time_ms;
                }
                projection.index_leaves(start, &stored_leaves)?;
                projection.apply(&to_apply, &nodes, &[])?;
                remove_redacted(
                    content,
                    prepared
                        .iter()
                        .filter(|p| p.event.index >= applied)
                        .map(|p| &p.event),
                );
                Ok(())
            },
        )?;
        let state = verifier.into_state();
        let in_force = state.key_in_force();
        if in_force != Some(opts.key.public_key()) {
            return Err(NodeError::Fatal(format!(
                "the key file's public key {} is not the key in force for this log ({})",
                opts.key.public_key(),
                in_force.map_or_else(|| "none".into(), |k| k.to_hex())
            )));
        }
        let writer = LogWriter::resume(
            opts.origin.clone(),
            opts.key.clone(),
            len,
            last_body,
            last_time,
        );
        Ok((
            Sequencer {
                writer,
                // Empty: the projection now holds every entry's records.
                catalog: WorkingSet::new(known),
                tree,
                keys,
            },
            applied,
        ))
    }

    /// Opens the log without starting the sequencer (for `gongkai node
    /// check`): the same verification and projection replay as a start.
    ///
    /// # Errors
    /// As at start.
    pub fn open_for_check(opts: &OpenOptions<'_>) -> Result<Log, NodeError> {
        Log::open(opts).map(|(log, _)| log)
    }

    /// Folds the catalog rules over the whole journal, in memory, and
    /// compares the result with the projection's records. A start checks
    /// the rules only on entries the projection lacks and then trusts its
    /// records (see `replay`); this is the full check, for `gongkai node
    /// check`. Returns the number of records compared.
    ///
    /// # Errors
    /// [`NodeError::Fatal`] naming the entry that breaks a rule, or the
    /// first record where the projection differs from the fold.
    pub fn check_catalog(&self, data_dir: &Path) -> Result<usize, NodeError> {
        let journal = self.journal();
        let len = journal.len();
        // The whole chain again (links, keys, rules, signatures) through
        // the one walker; its catalog fold is the journal's catalog.
        let genesis = prepare(journal.read(0)?, 0)?;
        let mut verifier = ChainVerifier::new(self.origin().clone(), &[genesis.event.signer]);
        walk(
            &mut verifier,
            len,
            true,
            |start, end| journal.read_range(start, end).map_err(NodeError::from),
            |_, _| Ok(()),
        )?;
        let fold = verifier.into_state().catalog;
        let stored = self.projection().catalog()?;
        let rebuild = format!(
            "stop the node, remove {} and start it to rebuild the projection from the journal",
            data_dir.join("projection").display()
        );
        if let Some(diff) = first_difference(&fold, &stored) {
            return Err(NodeError::Fatal(format!(
                "the projection's catalog differs from the journal's: {diff}; {rebuild}"
            )));
        }
        Ok(fold.items.len() + fold.matters.len() + fold.requests.len())
    }

    /// Entries the projection lacked at open (replayed from the journal).
    pub fn replayed_on_open(&self) -> u64 {
        self.replayed_on_open
    }

    /// The largest checkpoint size the node's key has signed (from the key
    /// state file).
    ///
    /// # Errors
    /// [`NodeError::Fatal`] if the state file is damaged.
    pub fn signed_size(&self) -> Result<u64, NodeError> {
        read_key_state(&self.key_state)
    }

    /// The read side, shared with the RPC handlers (and, through the same
    /// type, with the county's mirrors).
    pub fn view(&self) -> &Arc<LogView> {
        &self.view
    }

    /// Fires with the reason when the sequencer stopped after a storage
    /// failure; the server then shuts down so the process reloads from disk.
    pub fn failed(&self) -> watch::Receiver<Option<String>> {
        self.failed.subscribe()
    }

    /// Signs a checkpoint of the committed size if it is newer than the last
    /// one: records the size in the key state first (durably), then stores
    /// and publishes the note.
    ///
    /// # Errors
    /// [`NodeError::Fatal`] if the key state cannot be written.
    pub fn sign_checkpoint(&self, key: &SigningKey) -> Result<bool, NodeError> {
        let size = self.size();
        if self.checkpoint().is_some_and(|(s, _)| s >= size) {
            return Ok(false);
        }
        let root = gongkai_core::merkle::root_at(&self.projection, size)?;
        let cp = Checkpoint::new(self.origin.clone(), size, root);
        let note = SignedCheckpoint::sign(&cp, key)?.to_string();
        if read_key_state(&self.key_state)? < size {
            write_key_state(&self.key_state, size)?;
        }
        self.projection.put_checkpoint(size, &note)?;
        self.view.set_checkpoint(size, note);
        Ok(true)
    }
}

impl Log {
    /// The working-day calendar judgements and the write policy use.
    pub fn calendar(&self) -> Arc<WorkCalendar> {
        Arc::clone(&self.calendar.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Writes wait (up to `limit`) for the first check of what the county
    /// holds; the replicator calls [`Log::county_checked`] when it is done,
    /// whatever its outcome.
    pub fn await_county_check(&self) {
        self.county_checked.send_replace(false);
    }

    /// The first check of the county is done (or failed: the county is
    /// unreachable, and the rounds keep checking).
    pub fn county_checked(&self) {
        self.county_checked.send_replace(true);
    }

    /// Waits until the first check of the county is done, at most `limit`.
    pub async fn writes_may_proceed(&self, limit: std::time::Duration) {
        let mut rx = self.county_checked.subscribe();
        let _ = tokio::time::timeout(limit, rx.wait_for(|done| *done)).await;
    }

    /// Records what the replicator learned of this machine's clock against
    /// the county's: `Some(why)` stops writes until it is cleared.
    pub fn set_clock_ahead(&self, why: Option<String>) {
        let mut g = self
            .clock_ahead
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let (Some(w), None) = (&why, &*g) {
            tracing::error!(reason = %w, "writes stop: the clock runs ahead of the county's");
        }
        if let (None, Some(_)) = (&why, &*g) {
            tracing::info!("the clock agrees with the county's again: writes resume");
        }
        *g = why;
    }

    /// Why writes are refused for the clock's sake, if they are.
    pub fn clock_ahead(&self) -> Option<String> {
        self.clock_ahead
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Removes uploaded documents that no entry refers to and that are
    /// older than the upload grace period; returns how many. Runs on the
    /// sequencer between groups, and only once the projection holds every
    /// committed entry (else it waits for the next time): a document is
    /// referenced when the projection maps its digest to an item version or
    /// a request answer.
    ///
    /// # Errors
    /// Storage errors.
    fn collect_unreferenced(&self) -> Result<u64, NodeError> {
        if self.projection().applied()? < self.journal().len() {
            return Ok(0);
        }
        let Some(cutoff) = std::time::SystemTime::now().checked_sub(self.upload_grace) else {
            return Ok(0);
        };
        let mut removed = 0;
        for digest in self.content().stored_before(cutoff)? {
            let referenced = self.projection().item_of_content(&digest)?.is_some()
                || self.projection().request_of_content(&digest)?.is_some();
            if !referenced && self.content().remove_if_older(&digest, cutoff)? {
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Why the node takes no writes, if it does not.
    pub fn read_only(&self) -> Option<String> {
        self.read_only
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Stops taking writes, for `reason`, durably: the marker file is
    /// written (and synced) first, so a restart stays read-only, until
    /// `gongkai node recover` removes it. Idempotent.
    ///
    /// # Errors
    /// [`NodeError::Storage`] if the marker cannot be written; the node is
    /// read-only in memory all the same.
    pub fn go_read_only(&self, reason: &str) -> Result<(), NodeError> {
        let mut guard = self
            .read_only
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if guard.is_some() {
            return Ok(());
        }
        *guard = Some(reason.to_owned());
        tracing::error!(%reason, "the node goes read-only");
        gongkai_store::write_file_durably(&self.read_only_marker, reason.as_bytes())?;
        Ok(())
    }

    /// Puts `calendar` in force (the seed table with the tables the county
    /// published); later judgements and writes use it.
    pub fn set_calendar(&self, calendar: Arc<WorkCalendar>) {
        *self.calendar.write().unwrap_or_else(|p| p.into_inner()) = calendar;
    }

    /// A signed checkpoint of an earlier committed size `size` (for the
    /// replicator, which checkpoints a long catch-up in steps so the
    /// county's staging stays bounded). The key state is raised first if
    /// `size` is beyond it, as for any checkpoint.
    ///
    /// # Errors
    /// [`NodeError::Invalid`] beyond the committed size; storage errors.
    pub fn checkpoint_at(&self, key: &SigningKey, size: u64) -> Result<String, NodeError> {
        if size > self.size() {
            return Err(NodeError::Invalid(format!(
                "size {size} is beyond the committed size {}",
                self.size()
            )));
        }
        if let Some(note) = self.projection.checkpoint(size)? {
            return Ok(note);
        }
        let root = gongkai_core::merkle::root_at(&self.projection, size)?;
        let note = SignedCheckpoint::sign(&Checkpoint::new(self.origin.clone(), size, root), key)?
            .to_string();
        if read_key_state(&self.key_state)? < size {
            write_key_state(&self.key_state, size)?;
        }
        self.projection.put_checkpoint(size, &note)?;
        Ok(note)
    }
}

fn journal_options(opts: &OpenOptions<'_>) -> JournalOptions {
    JournalOptions {
        reserve_bytes: opts.reserve_bytes,
        ..JournalOptions::default()
    }
}

/// Opens the log and starts the sequencer thread. Returns the shared log
/// and the queue for write jobs; dropping every sender stops the thread.
///
/// # Errors
/// As [`Log::open`].
#[allow(clippy::type_complexity)]
pub fn start(
    opts: &OpenOptions<'_>,
) -> Result<
    (
        Arc<Log>,
        std::sync::mpsc::Sender<Option<WriteJob>>,
        std::thread::JoinHandle<()>,
    ),
    NodeError,
> {
    start_with(opts, None)
}

/// As [`start`], over a journal the caller opened instead of the data
/// directory's: for tests that put the journal on a fault-injecting file
/// (`gongkai_store::fault`, power loss). Everything else (projection,
/// content, idempotency keys) lives in the data directory as usual.
///
/// # Errors
/// As [`start`].
#[doc(hidden)]
#[allow(clippy::type_complexity)]
pub fn start_on(
    opts: &OpenOptions<'_>,
    journal: Journal,
) -> Result<
    (
        Arc<Log>,
        std::sync::mpsc::Sender<Option<WriteJob>>,
        std::thread::JoinHandle<()>,
    ),
    NodeError,
> {
    start_with(opts, Some(journal))
}

#[allow(clippy::type_complexity)]
fn start_with(
    opts: &OpenOptions<'_>,
    journal: Option<Journal>,
) -> Result<
    (
        Arc<Log>,
        std::sync::mpsc::Sender<Option<WriteJob>>,
        std::thread::JoinHandle<()>,
    ),
    NodeError,
> {
    let (log, seq) = Log::open_on(opts, journal)?;
    let log = Arc::new(log);
    log.sign_checkpoint(opts.key)?;
    let (tx, rx) = std::sync::mpsc::channel::<Option<WriteJob>>();
    let thread_log = Arc::clone(&log);
    let handle = std::thread::Builder::new()
        .name("gongkai-sequencer".into())
        .spawn(move || run_sequencer(&thread_log, seq, &rx))
        .map_err(|e| NodeError::Fatal(format!("start sequencer: {e}")))?;
    Ok((log, tx, handle))
}

/// Journal bytes to have free per queued event before a group is planned
/// (a generous estimate of an entry with its record framing).
const ROOM_PER_EVENT: u64 = 4096;

/// Most events taken into one group.
const MAX_GROUP_EVENTS: usize = 8192;

/// The sequencer loop. A failure that leaves the state unknown (the journal
/// could not sync, the projection could not be written) stops it: every
/// later write is refused and [`Log::failed`] fires, on which the server
/// shuts down so that the process restarts and reloads from disk.
fn run_sequencer(log: &Log, mut seq: Sequencer, rx: &std::sync::mpsc::Receiver<Option<WriteJob>>) {
    std::thread::scope(|s| {
        let (to_projector, groups) = std::sync::mpsc::sync_channel(PROJECTOR_QUEUE);
        let projector = std::thread::Builder::new()
            .name("gongkai-projector".into())
            .spawn_scoped(s, move || run_projector(log, &groups));
        if let Err(e) = projector {
            tracing::error!(error = %e, "could not start the projector: refusing writes");
            log.failed
                .send_replace(Some(format!("start projector: {e}")));
            refuse_queued(rx);
            return;
        }
        sequence(log, &mut seq, rx, &to_projector);
        // Dropping the queue lets the projector finish what it holds, then
        // stop; the scope joins it.
        drop(to_projector);
    });
}

/// Groups the sequencer may run ahead of the projector.
const PROJECTOR_QUEUE: usize = 2;

fn sequence(
    log: &Log,
    seq: &mut Sequencer,
    rx: &std::sync::mpsc::Receiver<Option<WriteJob>>,
    to_projector: &std::sync::mpsc::SyncSender<Committed>,
) {
    let mut stopping = false;
    // Uploads nobody refers to are collected here, between groups: no
    // append is planned meanwhile, so none can come to refer to a document
    // being removed.
    let every = (log.upload_grace / 4).clamp(
        std::time::Duration::from_millis(100),
        std::time::Duration::from_secs(3600),
    );
    while !stopping {
        // `None` (or every sender gone) asks the sequencer to finish what
        // is queued before it, then stop.
        let first = loop {
            match rx.recv_timeout(every) {
                Ok(job) => break job,
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break None,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    match log.collect_unreferenced() {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(removed = n, "removed uploads no entry refers to"),
                        Err(e) => tracing::warn!(error = %e, "collecting unreferenced uploads"),
                    }
                }
            }
        };
        let Some(first) = first else { break };
        let mut jobs = vec![first];
        let mut events = jobs[0].kinds.len();
        while events < MAX_GROUP_EVENTS {
            match rx.try_recv() {
                Ok(Some(job)) => {
                    events += job.kinds.len();
                    jobs.push(job);
                }
                Ok(None) => {
                    stopping = true;
                    break;
                }
                Err(_) => break,
            }
        }
        // Below the disk reserve, refuse the group before anything changes,
        // so the node keeps serving reads and stays consistent.
        let room: u64 = jobs
            .iter()
            .map(|j| j.kinds.len() as u64 * ROOM_PER_EVENT)
            .sum();
        if let Err(e) = log.journal.check_room(room) {
            let err = NodeError::from(e);
            for job in jobs {
                let _ = job.reply.send(Err(err.clone()));
            }
            continue;
        }
        let committed = match process_group(log, seq, jobs) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "append failed: refusing further writes; restart the node to reload from disk");
                log.failed.send_replace(Some(e.to_string()));
                break;
            }
        };
        if to_projector.send(committed).is_err() {
            // The projector stopped after a failure (it set `failed`); the
            // group's replies are dropped unanswered: its entries may be
            // durable, but none is acknowledged.
            break;
        }
    }
    refuse_queued(rx);
}

/// Refuses whatever is still queued.
fn refuse_queued(rx: &std::sync::mpsc::Receiver<Option<WriteJob>>) {
    while let Ok(Some(job)) = rx.try_recv() {
        let _ = job.reply.send(Err(NodeError::Unavailable(
            "the node stopped accepting writes after a storage failure; it must be restarted"
                .into(),
        )));
    }
}

/// What happens to one job of a group.
enum Planned {
    /// Refused or replayed: answered without appending.
    Done(Result<Appended, NodeError>),
    /// Appends `count` entries starting at group position `at`.
    Append { at: usize, count: usize },
    /// A retry of a job earlier in this same group.
    Same { at: usize, count: usize },
}

/// A group whose entries are durable in the journal (or that appended
/// nothing), on its way to the projector, which applies it and then
/// answers its jobs.
struct Committed {
    /// Index of the group's first entry.
    base: u64,
    entries: Vec<Entry>,
    events: Vec<Event>,
    /// Subtrees the group's appends completed.
    nodes: Vec<(NodeId, Hash)>,
    keys: Vec<(String, IdempotencyRecord)>,
    /// Log size after the group.
    size: u64,
    jobs: Vec<(WriteJob, Planned)>,
}

/// Plans, signs and durably appends one group (steps 1–2), and extends the
/// sequencer's tree; the projector does steps 3–4. Returns `Err` only for
/// failures that leave the in-memory state unknown (the caller reloads);
/// requests refused while planning are answered by the projector with the
/// rest of the group, so answers keep their order.
fn process_group(
    log: &Log,
    seq: &mut Sequencer,
    jobs: Vec<WriteJob>,
) -> Result<Committed, NodeError> {
    // One calendar for the whole group (the replicator may put a newer one
    // in force meanwhile).
    let calendar = log.calendar();
    let base = seq.writer.size();
    if seq.catalog.full() {
        wait_projected(log, base)?;
    }
    seq.catalog.settle(log.view.size(), base);
    let mut bodies: Vec<Vec<u8>> = Vec::new();
    let mut events: Vec<Event> = Vec::new();
    let mut keys: Vec<(String, IdempotencyRecord)> = Vec::new();
    let mut plans = Vec::with_capacity(jobs.len());
    for job in &jobs {
        let plan = match plan_job(log, seq, job, &keys, &calendar) {
            Ok(JobPlan::Replay(a)) => Planned::Done(Ok(a)),
            Ok(JobPlan::Same { start, count }) => Planned::Same {
                at: usize::try_from(start - base).unwrap_or(0),
                count,
            },
            Ok(JobPlan::New(new_bodies, new_events)) => {
                let at = bodies.len();
                let count = new_bodies.len();
                if let Some(k) = &job.key {
                    keys.push((
                        k.clone(),
                        IdempotencyRecord {
                            fingerprint: job.fingerprint,
                            start: base + at as u64,
                            count: count as u64,
                        },
                    ));
                }
                bodies.extend(new_bodies);
                events.extend(new_events);
                Planned::Append { at, count }
            }
            Err(e) => Planned::Done(Err(e)),
        };
        plans.push(plan);
    }

    // Signing cannot fail here (every body's size was checked while
    // planning); if it did, the sequencer state already moved on, so it is
    // handled like a failed append: refuse the group, reload.
    let signed = sign_all(&bodies, base, seq.writer.key()).map_err(NodeError::from);
    drop(bodies);
    let mut entries: Vec<Entry> = Vec::new();
    let mut nodes = Vec::new();
    if !events.is_empty() {
        // The keys first (synced), so no durable entry lacks its key.
        // Commit point: the journal append returns only after fdatasync
        // covered every entry.
        let appended = signed.and_then(|signed| {
            entries = signed;
            seq.keys.append(&keys)?;
            log.journal
                .append(&entries.iter().map(Entry::as_bytes).collect::<Vec<_>>())
                .map_err(NodeError::from)
        });
        let range = match appended {
            Ok(r) => r,
            Err(err) => {
                for (job, plan) in jobs.into_iter().zip(plans) {
                    let outcome = match plan {
                        Planned::Done(r) => r,
                        _ => Err(err.clone()),
                    };
                    let _ = job.reply.send(outcome);
                }
                return Err(err);
            }
        };
        if range.start != base {
            return Err(NodeError::Fatal(format!(
                "journal assigned index {} where the sequencer expected {base}",
                range.start
            )));
        }
        // Durable. Until the projector has stored them, the group's keys
        // are answered from memory (see `plan_job`).
        for entry in &entries {
            nodes.extend(seq.tree.append(entry.leaf_hash()));
        }
        if let Ok(mut inflight) = log.inflight_keys.lock() {
            inflight.extend(keys.iter().cloned());
        }
        // Here, not in the projector: the next group's content checks must
        // already see the removal.
        remove_redacted(&log.content, &events);
    }
    Ok(Committed {
        base,
        entries,
        events,
        nodes,
        keys,
        size: seq.writer.size(),
        jobs: jobs.into_iter().zip(plans).collect(),
    })
}

/// Waits until the projector has stored the log up to `size` (so the
/// working catalog can be emptied), or stopped after a failure.
fn wait_projected(log: &Log, size: u64) -> Result<(), NodeError> {
    while log.view.size() < size {
        if let Some(why) = log.failed.borrow().clone() {
            return Err(NodeError::Unavailable(why));
        }
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
    Ok(())
}

/// The projector loop: for each committed group, in order, stores the
/// derived state (tree hashes, leaf index, catalog records, idempotency
/// keys) in one sled batch (step 3), then
/// publishes the new size and answers the group's jobs (step 4). So a
/// client holding a receipt can read what it appended.
///
/// A failure to store stops it (and with it the sequencer, whose next
/// hand-over fails): the entries are durable in the journal, the start
/// replays them into the projection.
fn run_projector(log: &Log, groups: &std::sync::mpsc::Receiver<Committed>) {
    for group in groups {
        if let Err(e) = project(log, group) {
            tracing::error!(error = %e, "projection failed: refusing further writes; restart the node to replay the journal");
            log.failed.send_replace(Some(e.to_string()));
            return;
        }
    }
}

fn project(log: &Log, group: Committed) -> Result<(), NodeError> {
    let Committed {
        base,
        entries,
        events,
        nodes,
        keys,
        size,
        jobs,
    } = group;
    let leaf_hashes: Vec<Hash> = entries.iter().map(Entry::leaf_hash).collect();
    if !events.is_empty() {
        let applied: Vec<Applied<'_>> = leaf_hashes
            .iter()
            .zip(&events)
            .enumerate()
            .map(|(i, (&leaf_hash, event))| Applied {
                index: base + i as u64,
                leaf_hash,
                event,
            })
            .collect();
        log.projection.apply(&applied, &nodes, &keys)?;
        if let Ok(mut inflight) = log.inflight_keys.lock() {
            for (k, _) in &keys {
                inflight.remove(k);
            }
        }
        log.view.publish_size(size);
    }

    for (job, plan) in jobs {
        let receipts = |at: usize, count: usize| {
            entries[at..at + count]
                .iter()
                .zip(&leaf_hashes[at..at + count])
                .enumerate()
                .map(|(i, (e, &leaf_hash))| Receipt {
                    index: base + (at + i) as u64,
                    leaf_hash,
                    entry: e.as_bytes().to_vec(),
                })
                .collect()
        };
        let outcome = match plan {
            Planned::Done(r) => r,
            Planned::Append { at, count } => Ok(Appended {
                receipts: receipts(at, count),
                replayed: false,
            }),
            Planned::Same { at, count } => Ok(Appended {
                receipts: receipts(at, count),
                replayed: true,
            }),
        };
        // The client may have gone away; the entries are durable regardless.
        let _ = job.reply.send(outcome);
    }
    Ok(())
}

enum JobPlan {
    Replay(Appended),
    Same {
        start: u64,
        count: usize,
    },
    /// Encoded bodies (sequenced and checked, not yet signed) and events.
    New(Vec<Vec<u8>>, Vec<Event>),
}

/// Validates and sequences one job against the current state, advancing the
/// sequencer state only if every event passes.
fn plan_job(
    log: &Log,
    seq: &mut Sequencer,
    job: &WriteJob,
    pending_keys: &[(String, IdempotencyRecord)],
    calendar: &WorkCalendar,
) -> Result<JobPlan, NodeError> {
    if let Some(k) = &job.key {
        let inflight = || {
            log.inflight_keys
                .lock()
                .ok()
                .and_then(|m| m.get(k.as_str()).cloned())
        };
        let known = match pending_keys.iter().find(|(pk, _)| pk == k) {
            Some((_, rec)) => Some((rec.clone(), true)),
            // Committed but not yet projected, then projected: in this
            // order, since the projector stores a key before forgetting it.
            None => match inflight() {
                Some(r) => Some((r, false)),
                None => log.projection.idempotency(k)?.map(|r| (r, false)),
            },
        };
        if let Some((rec, pending)) = known {
            if rec.fingerprint != job.fingerprint {
                return Err(NodeError::Precondition {
                    rule: "idempotency-key-reused",
                    detail: format!("key {k:?} was used for a different request"),
                });
            }
            let count = usize::try_from(rec.count).unwrap_or(0);
            if pending {
                return Ok(JobPlan::Same {
                    start: rec.start,
                    count,
                });
            }
            let stored = log.journal.read_range(rec.start, rec.start + rec.count)?;
            let receipts = stored
                .into_iter()
                .enumerate()
                .map(|(i, entry)| Receipt {
                    index: rec.start + i as u64,
                    leaf_hash: gongkai_core::hash::leaf_hash(&entry),
                    entry,
                })
                .collect();
            return Ok(JobPlan::Replay(Appended {
                receipts,
                replayed: true,
            }));
        }
    }
    let now = now_ms();
    if let Some(detail) = clock_problem(seq.writer.last_time_ms(), now, log.clock_ahead()) {
        return Err(NodeError::Precondition {
            rule: "clock",
            detail,
        });
    }
    let mut writer = seq.writer.clone();
    let mut bodies = Vec::with_capacity(job.kinds.len());
    let mut events = Vec::with_capacity(job.kinds.len());
    for kind in &job.kinds {
        let body = writer.next_body(kind.clone(), now);
        let (index, time_ms) = (body.index, body.time_ms);
        // Encoded once: these exact bytes are hashed for the chain link now
        // and signed later (see `sign_all`).
        let encoded = body.encode_to_vec();
        Entry::check_body_len(&encoded, index)?;
        let event = Event::from_message(body, index)?;
        check_content(log, &event)?;
        writer.advance_body(body_hash(&encoded), time_ms);
        bodies.push(encoded);
        events.push(event);
    }
    seq.catalog.load(&log.projection, &events)?;
    let catalog = seq.catalog.catalog();
    // Policy before the rules change anything: both read the state before
    // the job (FORMAT.md § 7, `extension-in-time`).
    catalog.check_write_policy(&events, calendar)?;
    catalog.apply_all(&events)?;
    seq.writer = writer;
    Ok(JobPlan::New(bodies, events))
}

/// The first record in which `stored` differs from `fold`, described.
fn first_difference(fold: &Catalog, stored: &Catalog) -> Option<String> {
    fn diff<K: Ord + std::fmt::Display, V: PartialEq>(
        what: &str,
        fold: &std::collections::BTreeMap<K, V>,
        stored: &std::collections::BTreeMap<K, V>,
    ) -> Option<String> {
        for (id, v) in fold {
            match stored.get(id) {
                None => return Some(format!("{what} {id} is missing")),
                Some(s) if s != v => return Some(format!("{what} {id} differs")),
                Some(_) => {}
            }
        }
        stored
            .keys()
            .find(|id| !fold.contains_key(id))
            .map(|id| format!("{what} {id} is not in the journal"))
    }
    diff("item", &fold.items, &stored.items)
        .or_else(|| diff("matter", &fold.matters, &stored.matters))
        .or_else(|| diff("request", &fold.requests, &stored.requests))
}

/// Groups smaller than this are signed on the sequencer thread alone: a
/// thread start would cost more than it saves.
const PARALLEL_SIGN_MIN: usize = 64;

/// Signs the sequenced `bodies` (indexes `base..`), in order. Signing is
/// the largest CPU cost of an append and each signature depends only on
/// its own body (the chain links body hashes, fixed while planning), so a
/// large group is split over the machine's cores, joined before anything
/// is written. The result is identical to signing one by one (Ed25519
/// signatures are deterministic).
fn sign_all(bodies: &[Vec<u8>], base: u64, key: &SigningKey) -> Result<Vec<Entry>, CoreError> {
    let sign = |part: &[Vec<u8>], first: u64| -> Result<Vec<Entry>, CoreError> {
        part.iter()
            .zip(first..)
            .map(|(body, index)| Entry::sign_body(body, key, index))
            .collect()
    };
    // Asked once: on Linux the answer reads cgroup files.
    static THREADS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    let threads = *THREADS.get_or_init(|| {
        std::thread::available_parallelism()
            .map_or(1, std::num::NonZero::get)
            .min(8)
    });
    if threads < 2 || bodies.len() < PARALLEL_SIGN_MIN {
        return sign(bodies, base);
    }
    let chunk = bodies.len().div_ceil(threads);
    std::thread::scope(|s| {
        // The first chunk is signed on this thread, the others alongside.
        let others: Vec<_> = bodies
            .chunks(chunk)
            .zip((base..).step_by(chunk))
            .skip(1)
            .map(|(part, first)| s.spawn(move || sign(part, first)))
            .collect();
        let mut entries = sign(&bodies[..chunk], base)?;
        entries.reserve(bodies.len() - chunk);
        for handle in others {
            match handle.join() {
                Ok(part) => entries.extend(part?),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        Ok(entries)
    })
}

/// Removes the content of redacted versions (idempotent: replaying a
/// redaction after a crash removes what the crash left behind).
fn remove_redacted<'a>(content: &ContentStore, events: impl IntoIterator<Item = &'a Event>) {
    for event in events {
        if let Kind::Redacted(r) = &event.kind
            && let Ok(d) = Hash::from_slice(&r.content_digest)
            && let Err(e) = content.remove(&d)
        {
            tracing::error!(error = %e, digest = %d, "redacted content could not be removed");
        }
    }
}

/// Published, Amended and RequestAnswered events must name content the
/// node holds, with the committed length (so it can serve and replicate it).
fn check_content(log: &Log, event: &Event) -> Result<(), NodeError> {
    let content = match &event.kind {
        Kind::Published(p) => p.content.as_ref(),
        Kind::Amended(a) => a.content.as_ref(),
        Kind::RequestAnswered(r) => r.content.as_ref(),
        _ => None,
    };
    let Some(c) = content else { return Ok(()) };
    let digest = Hash::from_slice(&c.digest)?;
    match log.content.get(&digest)? {
        Some(blob) if blob.len == c.length => Ok(()),
        Some(blob) => Err(NodeError::Precondition {
            rule: "content-length",
            detail: format!(
                "content {digest} has {} bytes, the event says {}",
                blob.len, c.length
            ),
        }),
        None => Err(NodeError::Precondition {
            rule: "content-uploaded",
            detail: format!("content {digest} is not in the node's content store: upload it first"),
        }),
    }
}

impl From<CoreError> for NodeError {
    fn from(e: CoreError) -> NodeError {
        match e {
            CoreError::RuleViolation { rule, detail, .. } => {
                NodeError::Precondition { rule, detail }
            }
            other => NodeError::Invalid(other.to_string()),
        }
    }
}

impl From<StoreError> for NodeError {
    fn from(e: StoreError) -> NodeError {
        match e {
            StoreError::DiskFull { .. } => NodeError::Exhausted(e.to_string()),
            other => NodeError::Storage(other.to_string()),
        }
    }
}

/// What a read-only verification of a data directory found (for `gongkai
/// node restore`).
#[derive(Clone, Debug)]
pub struct Verified {
    /// Entries in the journal, all verified (framing, chain, catalog rules,
    /// signatures).
    pub size: u64,
    /// Bytes of a torn, never-acknowledged tail after the last whole record.
    /// It is reported, not cut: the data is left exactly as found.
    pub torn_bytes: u64,
    /// The tree root at `size`.
    pub root: Hash,
    /// The largest checkpoint size the key has signed (`<key>.state`).
    pub signed_size: u64,
    /// The department named by the log's Genesis entry.
    pub department: String,
    /// The division code named by the log's Genesis entry.
    pub division_code: String,
}

/// Verifies a data directory **without changing anything in it**: the
/// journal is opened read-only (a torn tail is reported, not cut), the
/// projection, content store and idempotency file are not opened. The
/// checks are those of a start — every record's framing, the chain, the
/// catalog rules, every signature, and that the key in force is `key` —
/// except that a journal shorter than the size the key has signed is
/// accepted (that is the situation `gongkai node restore` handles).
///
/// Refuses if a node has the journal open (it holds an exclusive lock).
///
/// # Errors
/// [`NodeError::Fatal`] naming what is wrong.
pub fn verify_read_only(opts: &OpenOptions<'_>) -> Result<Verified, NodeError> {
    let path = opts.data_dir.join("journal");
    if !path.exists() {
        return Err(NodeError::Fatal(format!(
            "{} holds no journal",
            opts.data_dir.display()
        )));
    }
    // Checks the format marker; with the marker present nothing is written.
    DataDir::open(opts.data_dir)?;
    let lock = std::fs::File::open(&path)
        .map_err(|e| NodeError::Fatal(format!("open {}: {e}", path.display())))?;
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockShared).map_err(|_| {
        NodeError::Fatal(format!(
            "{} is in use (is the node running?): stop it first",
            path.display()
        ))
    })?;
    let journal = Journal::open_read_only(&path, opts.origin.as_str(), journal_options(opts))?;
    let size = journal.len();
    if size == 0 {
        return Err(NodeError::Fatal(format!(
            "{} holds no entries",
            path.display()
        )));
    }
    let genesis = prepare(journal.read(0)?, 0)?;
    let (department, division_code) = match &genesis.event.kind {
        Kind::Genesis(g) => (g.department.clone(), g.division_code.clone()),
        _ => {
            return Err(NodeError::Fatal("entry 0 is not a Genesis entry".into()));
        }
    };
    let walked = walk_journal(&journal, opts.origin)?;
    let tree = walked.tree;
    let in_force = walked.verifier.into_state().key_in_force();
    if in_force != Some(opts.key.public_key()) {
        return Err(NodeError::Fatal(format!(
            "the key file's public key {} is not the key in force for this log ({})",
            opts.key.public_key(),
            in_force.map_or_else(|| "none".into(), |k| k.to_hex())
        )));
    }
    let key_state = PathBuf::from(format!("{}.state", opts.key_path.display()));
    Ok(Verified {
        size,
        torn_bytes: journal.truncated_on_open(),
        root: tree.root(),
        signed_size: read_key_state(&key_state)?,
        department,
        division_code,
    })
}

impl std::ops::Deref for Log {
    type Target = LogView;

    fn deref(&self) -> &LogView {
        &self.view
    }
}

/// The verified state of a journal: the chain verifier after its last
/// entry, the tree, and what a writer needs to continue.
pub(crate) struct Walked {
    pub(crate) verifier: ChainVerifier,
    pub(crate) tree: TreeState,
    pub(crate) last_body: Hash,
    pub(crate) last_time: u64,
}

/// Verifies every entry of `journal` (framing, chain, catalog rules,
/// signatures), anchored on the signer of its Genesis entry.
pub(crate) fn walk_journal(
    journal: &Journal,
    origin: &gongkai_core::types::Origin,
) -> Result<Walked, NodeError> {
    let size = journal.len();
    if size == 0 {
        return Err(NodeError::Fatal("the journal holds no entries".into()));
    }
    let genesis = prepare(journal.read(0)?, 0)?;
    let mut verifier = ChainVerifier::new(origin.clone(), &[genesis.event.signer]);
    let mut tree = TreeState::new();
    let (mut last_body, mut last_time) = (Hash::ZERO, 0);
    gongkai_verify::engine::walk(
        &mut verifier,
        size,
        true,
        |start, end| journal.read_range(start, end).map_err(NodeError::from),
        |prepared, _| {
            for p in prepared {
                tree.append(p.leaf_hash);
                last_body = p.body_hash;
                last_time = p.event.time_ms;
            }
            Ok(())
        },
    )?;
    Ok(Walked {
        verifier,
        tree,
        last_body,
        last_time,
    })
}
