//! Writing a log: sequencing and signing entries (FORMAT.md § Entries).
//!
//! [`LogWriter`] holds what a writer needs to produce the next entry — the
//! origin, the key in force, the next index, the last body hash and time —
//! and turns an event kind into a signed [`Entry`] that links onto the
//! chain. It does not apply the catalog rules: a node validates with
//! [`crate::catalog::Catalog::apply`] first, then writes.

use crate::entry::{Entry, rotation_message};
use crate::event::{Kind, pb};
use crate::keys::SigningKey;
use crate::types::Origin;
use crate::{Error, Hash};

/// Sequences and signs the entries of one log.
#[derive(Debug, Clone)]
pub struct LogWriter {
    origin: Origin,
    key: SigningKey,
    size: u64,
    last_body_hash: Hash,
    last_time_ms: u64,
}

impl LogWriter {
    /// A writer for a new, empty log; the first entry must be a `Genesis`.
    pub fn new(origin: Origin, key: SigningKey) -> LogWriter {
        LogWriter::resume(origin, key, 0, Hash::ZERO, 0)
    }

    /// A writer continuing a log of `size` entries whose last entry has body
    /// hash `last_body_hash` and time `last_time_ms`, signing with `key`
    /// (the key in force).
    pub fn resume(
        origin: Origin,
        key: SigningKey,
        size: u64,
        last_body_hash: Hash,
        last_time_ms: u64,
    ) -> LogWriter {
        LogWriter {
            origin,
            key,
            size,
            last_body_hash,
            last_time_ms,
        }
    }

    /// The log's origin.
    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// Entries written so far (the next index).
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The key in force.
    pub fn key(&self) -> &SigningKey {
        &self.key
    }

    /// Time of the last entry.
    pub fn last_time_ms(&self) -> u64 {
        self.last_time_ms
    }

    /// The body of the next entry for `kind` at `time_ms`. The time is
    /// raised to the last entry's time if the clock went backwards, so the
    /// chain's time never decreases.
    pub fn next_body(&self, kind: Kind, time_ms: u64) -> pb::EventBody {
        pb::EventBody {
            origin: self.origin.as_str().to_owned(),
            index: self.size,
            prev_hash: self.last_body_hash.0.to_vec(),
            time_ms: time_ms.max(self.last_time_ms),
            signer: self.key.public_key().as_bytes().to_vec(),
            kind: Some(kind),
        }
    }

    /// Signs the next entry for `kind` and advances.
    ///
    /// # Errors
    /// [`Error::MalformedEntry`] if the entry would exceed the size limit;
    /// the writer is then unchanged.
    pub fn append(&mut self, kind: Kind, time_ms: u64) -> Result<Entry, Error> {
        let body = self.next_body(kind, time_ms);
        let entry = Entry::sign(&body, &self.key)?;
        self.advance(&entry, body.time_ms);
        Ok(entry)
    }

    /// Records that `entry` (signed elsewhere from [`LogWriter::next_body`],
    /// e.g. on another thread) was appended at `time_ms`.
    pub fn advance(&mut self, entry: &Entry, time_ms: u64) {
        self.advance_body(entry.body_hash(), time_ms);
    }

    /// Records that the body with hash `body_hash` (see
    /// [`crate::hash::body_hash`]) was appended at `time_ms`. The chain
    /// links bodies, not signatures, so a writer can sequence a run of
    /// bodies first and have them signed afterwards, in parallel.
    pub fn advance_body(&mut self, body_hash: Hash, time_ms: u64) {
        self.size += 1;
        self.last_body_hash = body_hash;
        self.last_time_ms = time_ms;
    }

    /// Writes a `KeyRotated` entry handing over to `next` (signed by the
    /// current key, with `next`'s proof of possession), then signs with
    /// `next` from the following entry on.
    ///
    /// # Errors
    /// As [`LogWriter::append`].
    pub fn rotate(&mut self, next: SigningKey, reason: &str, time_ms: u64) -> Result<Entry, Error> {
        let next_public = next.public_key();
        let proof = next.sign(&rotation_message(
            self.origin.as_str(),
            self.size,
            &next_public,
        ));
        let kind = Kind::KeyRotated(pb::KeyRotated {
            next_key: next_public.as_bytes().to_vec(),
            proof: proof.0.to_vec(),
            reason: reason.to_owned(),
        });
        let entry = self.append(kind, time_ms)?;
        self.key = next;
        Ok(entry)
    }
}
