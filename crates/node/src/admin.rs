//! Operator tasks on a node's data: backup (online), key rotation and
//! pulling back a lost tail from a mirror (both offline).
//!
//! * [`backup`] copies a consistent prefix of the log while the node runs:
//!   the journal is append-only, so whatever whole records the file holds
//!   now are a prefix of the log; they are verified and written to a new
//!   data directory with the content blobs and idempotency keys. The
//!   projection is not copied (it is rebuilt from the journal at start).
//! * [`rotate_key`] appends a `key_rotated` entry (signed by the current
//!   key, with the next key's proof of possession) and carries the signed
//!   size over to the next key's state file, so the restore safety check
//!   keeps working under the new key.
//! * [`append_tail`] appends entries fetched from a mirror (the county
//!   aggregator) to a journal restored from an old backup, after checking
//!   that they continue its chain and that the result has the root of a
//!   checkpoint signed by the log's key: never new content at an index that
//!   was already signed, only the same entries back.

use std::path::{Path, PathBuf};

use gongkai_core::Hash;
use gongkai_core::chain::prepare;
use gongkai_core::checkpoint::{Checkpoint, SignedCheckpoint};
use gongkai_core::keys::SigningKey;
use gongkai_core::note::{KeyType, VerifierKey, Verifiers};
use gongkai_core::types::KeyName;
use gongkai_core::writer::LogWriter;
use gongkai_store::{DataDir, Journal, JournalOptions};

use crate::NodeError;
use crate::log::{OpenOptions, now_ms, read_key_state, walk_journal, write_key_state};

fn fatal(e: impl std::fmt::Display) -> NodeError {
    NodeError::Fatal(e.to_string())
}

/// What [`backup`] wrote.
#[derive(Clone, Debug)]
pub struct BackupReport {
    /// Entries in the backup.
    pub size: u64,
    /// The tree root at that size.
    pub root: Hash,
    /// Content blobs copied.
    pub blobs: u64,
    /// The backup directory.
    pub dir: PathBuf,
}

/// Copies a verified, consistent prefix of the log to `out` (a new data
/// directory), while the node may be running.
///
/// # Errors
/// [`NodeError::Fatal`] if `out` exists and is not empty, the log does not
/// verify, or an I/O step fails.
pub fn backup(opts: &OpenOptions<'_>, out: &Path) -> Result<BackupReport, NodeError> {
    if out.exists()
        && std::fs::read_dir(out)
            .map_err(|e| fatal(format!("{}: {e}", out.display())))?
            .next()
            .is_some()
    {
        return Err(fatal(format!(
            "{} is not empty; a backup goes to a new directory",
            out.display()
        )));
    }
    let src = opts.data_dir.join("journal");
    let journal = Journal::open_read_only(&src, opts.origin.as_str(), JournalOptions::default())?;
    let walked = walk_journal(&journal, opts.origin)?;
    let size = journal.len();

    let data = DataDir::open(out)?;
    let copy = data.journal(opts.origin.as_str(), JournalOptions::default())?;
    let mut start = 0;
    while start < size {
        let end = (start + 4096).min(size);
        copy.append(&journal.read_range(start, end)?)?;
        start = end;
    }
    // Idempotency keys: records naming entries past `size` are cut when the
    // restored node opens the file.
    let keys = opts.data_dir.join("idempotency");
    if keys.exists() {
        copy_file(&keys, &out.join("idempotency"))?;
    }
    let content = opts.data_dir.join("content");
    let mut blobs = 0;
    if content.exists() {
        data.content()?;
        blobs = copy_tree(&content, &out.join("content"))?;
    }
    sync_dir(out)?;
    Ok(BackupReport {
        size,
        root: walked.tree.root(),
        blobs,
        dir: out.to_owned(),
    })
}

fn copy_file(from: &Path, to: &Path) -> Result<(), NodeError> {
    let io = |e: std::io::Error| fatal(format!("copy {} to {}: {e}", from.display(), to.display()));
    std::fs::copy(from, to).map_err(io)?;
    std::fs::File::open(to)
        .and_then(|f| f.sync_all())
        .map_err(io)
}

fn sync_dir(dir: &Path) -> Result<(), NodeError> {
    gongkai_store::sync_dir(dir).map_err(fatal)
}

/// Copies the files under `from` (content blobs are immutable once
/// written; temporary files are skipped) and syncs them. Returns the count.
fn copy_tree(from: &Path, to: &Path) -> Result<u64, NodeError> {
    let mut n = 0;
    std::fs::create_dir_all(to).map_err(|e| fatal(format!("{}: {e}", to.display())))?;
    let entries = std::fs::read_dir(from).map_err(|e| fatal(format!("{}: {e}", from.display())))?;
    for e in entries {
        let e = e.map_err(|e| fatal(format!("{}: {e}", from.display())))?;
        let name = e.file_name();
        if name.to_string_lossy().contains(".tmp") {
            continue;
        }
        let kind = e.file_type().map_err(|e| fatal(e.to_string()))?;
        if kind.is_dir() {
            n += copy_tree(&e.path(), &to.join(&name))?;
        } else if kind.is_file() {
            copy_file(&e.path(), &to.join(&name))?;
            n += 1;
        }
    }
    sync_dir(to)?;
    Ok(n)
}

/// What [`rotate_key`] did.
#[derive(Clone, Debug)]
pub struct Rotated {
    /// Index of the `key_rotated` entry.
    pub index: u64,
    /// The next key's verifier key.
    pub vkey: VerifierKey,
}

/// Appends a `key_rotated` entry handing the log from `opts.key` to `next`,
/// with `reason`. The node must be stopped (the journal is locked while it
/// runs). `next_key_path` is where the next key file is (its `.state`
/// sibling receives the size the old key has signed).
///
/// # Errors
/// [`NodeError::Fatal`] if the node runs, the log does not verify, the key
/// in force is not `opts.key`, or `next` is the same key.
pub fn rotate_key(
    opts: &OpenOptions<'_>,
    next: &SigningKey,
    next_key_path: &Path,
    reason: &str,
) -> Result<Rotated, NodeError> {
    if next.public_key() == opts.key.public_key() {
        return Err(fatal("the next key is the current key"));
    }
    let data = DataDir::open(opts.data_dir)?;
    let journal = data.journal(opts.origin.as_str(), JournalOptions::default())?;
    let walked = walk_journal(&journal, opts.origin)?;
    if walked.verifier.state().key_in_force() != Some(opts.key.public_key()) {
        return Err(fatal(
            "the config's key is not the key in force for this log; nothing changed",
        ));
    }
    let signed = read_key_state(&state_path(opts.key_path))?;
    let mut writer = LogWriter::resume(
        opts.origin.clone(),
        opts.key.clone(),
        journal.len(),
        walked.last_body,
        walked.last_time,
    );
    let entry = writer.rotate(next.clone(), reason, now_ms().max(walked.last_time))?;
    // Check the entry as any verifier will before it becomes durable.
    let mut verifier = walked.verifier;
    let p = prepare(entry.as_bytes().to_vec(), journal.len())?;
    for c in &verifier.push_prepared(&p)? {
        c.verify()?;
    }
    // The next key inherits the signed size first, so a crash after the
    // append cannot leave a key without its restore-safety record.
    write_key_state(&state_path(next_key_path), signed)?;
    let index = journal.append_one(entry.as_bytes())?;
    let name = KeyName::new(opts.origin.as_str())?;
    Ok(Rotated {
        index,
        vkey: VerifierKey::new(name, KeyType::Ed25519, next.public_key()),
    })
}

fn state_path(key: &Path) -> PathBuf {
    PathBuf::from(format!("{}.state", key.display()))
}

/// What [`append_tail`] did.
#[derive(Clone, Debug)]
pub struct TailRestored {
    /// Entries the journal had.
    pub from: u64,
    /// Entries it has now.
    pub to: u64,
}

/// Appends `tail` (the entries from the journal's current length on, as a
/// mirror holds them) after verifying that they continue the chain under
/// the key history and that the whole log then has the root of `checkpoint`,
/// a checkpoint of exactly that size signed by the key in force after the
/// tail (followed from the local journal's own Genesis key, which is this
/// node's data and trusted). The node must be stopped.
///
/// # Errors
/// [`NodeError::Fatal`] naming the first thing that does not verify;
/// nothing is appended then.
pub fn append_tail(
    opts: &OpenOptions<'_>,
    tail: &[Vec<u8>],
    checkpoint: &str,
) -> Result<TailRestored, NodeError> {
    let data = DataDir::open(opts.data_dir)?;
    let journal = data.journal(opts.origin.as_str(), JournalOptions::default())?;
    let from = journal.len();
    let walked = walk_journal(&journal, opts.origin)?;
    let mut verifier = walked.verifier;
    let mut tree = walked.tree;
    for (i, bytes) in tail.iter().enumerate() {
        let index = from + i as u64;
        let p = prepare(bytes.clone(), index)
            .map_err(|e| fatal(format!("mirror entry {index}: {e}")))?;
        for c in &verifier
            .push_prepared(&p)
            .map_err(|e| fatal(format!("mirror entry {index}: {e}")))?
        {
            c.verify()
                .map_err(|e| fatal(format!("mirror entry {index}: {e}")))?;
        }
        tree.append(p.leaf_hash);
    }
    let key = verifier
        .state()
        .key_in_force()
        .ok_or_else(|| fatal("no key in force after the tail"))?;
    let signed = SignedCheckpoint::parse(checkpoint)
        .map_err(|e| fatal(format!("the mirror's checkpoint: {e}")))?;
    let none = Verifiers::new([]).map_err(fatal)?;
    signed
        .verify(&Checkpoint::log_verifier_key(opts.origin, &key), &none, 0)
        .map_err(|e| fatal(format!("the mirror's checkpoint: {e}")))?;
    let cp = signed.checkpoint();
    if cp.origin != *opts.origin {
        return Err(fatal(format!(
            "the mirror's checkpoint is for {}",
            cp.origin
        )));
    }
    let to = from + tail.len() as u64;
    if cp.size != to || cp.root != tree.root() {
        return Err(fatal(format!(
            "the mirror's entries do not have the root of its signed checkpoint (size {}, got {to} entries)",
            cp.size
        )));
    }
    let mut start = 0;
    while start < tail.len() {
        let end = (start + 4096).min(tail.len());
        journal.append(&tail[start..end])?;
        start = end;
    }
    // The node holds what the mirror holds again: it may take writes.
    clear_read_only(opts.data_dir)?;
    Ok(TailRestored { from, to })
}

/// Removes the read-only marker (`crate::log::READ_ONLY_MARKER`), durably:
/// for `gongkai node recover`, once the node holds at least what the
/// mirror holds. Returns whether there was one.
///
/// # Errors
/// [`NodeError::Fatal`] or storage errors if it cannot be removed.
pub fn clear_read_only(data_dir: &Path) -> Result<bool, NodeError> {
    let marker = data_dir.join(crate::log::READ_ONLY_MARKER);
    match std::fs::remove_file(&marker) {
        Ok(()) => {
            gongkai_store::sync_dir(data_dir)?;
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(fatal(format!("remove {}: {e}", marker.display()))),
    }
}
