//! The one error type of the crate.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong in the store. Variants carry the identity of
/// what failed (path, byte offset, entry index) so a log line is enough to
/// find it on disk.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The sled projection failed or holds a damaged record. Projections
    /// are derived data: rebuilding them from the journal repairs this.
    #[error("projection: {0}")]
    Projection(String),

    /// An I/O operation failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// What was being done ("open", "write", "sync", …).
        op: &'static str,
        /// The operating system's error.
        source: io::Error,
    },

    /// The file does not start with the journal magic.
    #[error("{} is not a gongkai journal (bad magic or header check)", path.display())]
    NotAJournal {
        /// The journal file.
        path: PathBuf,
    },

    /// The journal was written by a format version this build does not read.
    #[error(
        "{} has journal format version {found}; this build reads version {supported} only",
        path.display()
    )]
    JournalVersion {
        /// The journal file.
        path: PathBuf,
        /// The version in the header.
        found: u32,
        /// The version this build reads and writes.
        supported: u32,
    },

    /// The journal belongs to another log.
    #[error("{} holds the log of origin {found:?}, not {expected:?}", path.display())]
    WrongOrigin {
        /// The journal file.
        path: PathBuf,
        /// The origin in the header.
        found: String,
        /// The origin the caller asked for.
        expected: String,
    },

    /// A record that is followed by more data is damaged: this is not a torn
    /// write from a crash but corruption, and the journal refuses to open.
    #[error(
        "{} is corrupt at byte offset {offset} (entry index {index}): {reason}",
        path.display()
    )]
    Corrupt {
        /// The journal or content file.
        path: PathBuf,
        /// Byte offset of the damaged record.
        offset: u64,
        /// Index of the entry the record would hold.
        index: u64,
        /// What is wrong with it.
        reason: String,
    },

    /// Another open journal (in this or another process) holds the file's
    /// exclusive lock.
    #[error("journal {} is locked by another open handle or process", path.display())]
    Locked {
        /// The journal file.
        path: PathBuf,
    },

    /// The journal already exists (on create).
    #[error("{} already exists", path.display())]
    AlreadyExists {
        /// The path.
        path: PathBuf,
    },

    /// An origin that cannot be stored in the journal header.
    #[error("invalid origin {origin:?}: {reason}")]
    InvalidOrigin {
        /// The rejected origin.
        origin: String,
        /// Why.
        reason: &'static str,
    },

    /// An entry the journal cannot frame (wrong length or type byte). The
    /// caller validates entries fully; this is the journal's own guard.
    #[error("entry {position} of the batch is invalid ({len} bytes): {reason}")]
    InvalidEntry {
        /// Position of the entry inside the submitted batch.
        position: usize,
        /// Its length in bytes.
        len: usize,
        /// Why it was refused.
        reason: &'static str,
    },

    /// Not enough free space to accept a batch while keeping the reserve;
    /// nothing was written.
    #[error(
        "disk full at {}: {free} bytes free, {needed} needed for the batch, reserve {reserve}",
        path.display()
    )]
    DiskFull {
        /// The file whose filesystem is full.
        path: PathBuf,
        /// Bytes available to the process.
        free: u64,
        /// Bytes the batch needs.
        needed: u64,
        /// Bytes that must stay free.
        reserve: u64,
    },

    /// An earlier write or sync failed; the journal refuses appends until it
    /// is reopened from disk.
    #[error("journal {} is poisoned by an earlier I/O failure; reopen it", path.display())]
    Poisoned {
        /// The journal file.
        path: PathBuf,
    },

    /// The journal's writer thread is gone (it panicked or was shut down).
    #[error("journal {} writer thread has stopped", path.display())]
    WriterStopped {
        /// The journal file.
        path: PathBuf,
    },

    /// A read past the end of the durable journal.
    #[error("entry index {index} is out of range (journal has {len} entries)")]
    OutOfRange {
        /// The first index asked for that does not exist.
        index: u64,
        /// The number of durable entries.
        len: u64,
    },

    /// Content whose salted hash does not match the commitment.
    #[error("content digest mismatch: expected {expected}, computed {found}")]
    DigestMismatch {
        /// The commitment the caller gave.
        expected: String,
        /// What the bytes hash to.
        found: String,
    },

    /// Content whose length does not match the commitment.
    #[error("content {digest}: expected {expected} bytes, received {found}")]
    LengthMismatch {
        /// The commitment.
        digest: String,
        /// The committed length.
        expected: u64,
        /// What was received (at least this many bytes).
        found: u64,
    },

    /// A content file that is damaged (bad header, or bytes that no longer
    /// match the digest it is stored under).
    #[error("content file {} is damaged: {reason}", path.display())]
    CorruptContent {
        /// The content file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// The data directory was written by another store format version.
    #[error(
        "data directory {} has format {found:?}; this build reads {supported:?} only",
        path.display()
    )]
    FormatVersion {
        /// The data directory.
        path: PathBuf,
        /// The marker's content.
        found: String,
        /// The marker this build writes.
        supported: &'static str,
    },

    /// The data directory holds files but no format marker: refusing to guess
    /// what they are.
    #[error(
        "data directory {} is not empty but has no FORMAT marker; refusing to use it",
        path.display()
    )]
    Unversioned {
        /// The data directory.
        path: PathBuf,
    },
}

impl StoreError {
    pub(crate) fn io(path: impl Into<PathBuf>, op: &'static str, source: io::Error) -> StoreError {
        StoreError::Io {
            path: path.into(),
            op,
            source,
        }
    }
}
