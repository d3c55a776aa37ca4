//! # gongkai-store
//!
//! Persistence for one gongkai node's data directory:
//!
//! * [`journal`]: the authoritative, append-only journal of one log's entries,
//!   with group commit (many concurrent appends share one `fdatasync`), crash
//!   recovery of torn tails, a free-space reserve and a poisoned state after
//!   an I/O failure;
//! * [`content`]: the content store, blobs addressed by their salted BLAKE3
//!   commitment, written by write-temp, `fsync`, `rename`, directory `fsync`;
//! * [`format`]: the data-directory format marker (`FORMAT`), checked on
//!   every open;
//! * [`projection`]: derived state in sled (tree hashes, checkpoints, the
//!   catalog projection, idempotency keys), rebuilt from the journal.
//!
//! Out of scope: validating entries (the caller, using `gongkai-core`, checks
//! every entry fully before appending; the journal only guards its own
//! framing), async (this crate is synchronous
//! std Rust; the node wraps it in a dedicated thread).
//!
//! ## Durability contract
//!
//! * [`Journal::append`] returns `Ok` only after the entries' bytes are on
//!   stable storage (`fdatasync` returned). An acknowledged entry survives
//!   `kill -9` and power loss (given a drive that honours flushes).
//! * An append that returns `Err` may or may not be present after a restart;
//!   it is never visible to readers of the running journal. After an I/O
//!   failure the journal is *poisoned* and refuses appends until it is
//!   reopened from disk, so no half-applied in-memory state is ever used.
//! * Readers see only acknowledged entries: [`Journal::len`] counts entries
//!   covered by a completed sync.
//! * Content: [`ContentStore::put`] returns only after the blob file and its
//!   directory entry are synced; [`ContentStore::remove`] only after the
//!   removal is synced.
//!
//! The journal file format is documented in [`journal`]; the content file
//! format in [`content`].
//!
//! ## Example
//!
//! ```
//! use gongkai_store::{DataDir, JournalOptions};
//!
//! # fn main() -> Result<(), gongkai_store::StoreError> {
//! # let tmp = tempfile::tempdir().expect("temp dir");
//! let data = DataDir::open(tmp.path().join("node"))?;
//! let journal = data.journal("example.gov.cn/dept/finance", JournalOptions::default())?;
//! let mut entry = vec![0x01];
//! entry.resize(67, 0xAB);
//! // Returns only once the entry is on stable storage.
//! let index = journal.append_one(&entry)?;
//! assert_eq!(journal.read(index)?, entry);
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod content;
mod error;
#[cfg(any(test, feature = "fault-injection"))]
pub mod fault;
pub mod format;
pub mod journal;
pub mod projection;
mod sync;

pub use content::{Blob, ContentStore, Document, PendingBlob};
pub use error::StoreError;
pub use format::DataDir;
pub use journal::{Journal, JournalFile, JournalOptions};
pub use projection::open_sled;
pub use sync::{sync_dir, write_file_durably, write_file_durably_mode};
