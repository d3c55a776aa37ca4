//! Content against its commitment (FORMAT.md § 13): the one check every
//! reader of content uses — `verify` and `export` on what a server sends,
//! `audit` on an export's `content/` blobs, the county mirror on what a
//! department pushes — and the content commitments an event makes.

use gongkai_core::Hash;
use gongkai_core::chain::ChainState;
use gongkai_core::event::{Event, Kind};
use gongkai_core::types::{ItemId, content_digest};

/// Salt length at the head of a stored blob (`salt || content`).
pub const SALT_LEN: usize = 32;

/// Why content does not match its commitment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Mismatch {
    /// The content is not as long as committed.
    #[error("{got} bytes, the commitment says {want}")]
    Length {
        /// Bytes present.
        got: u64,
        /// Bytes committed.
        want: u64,
    },
    /// The salted digest differs.
    #[error("content hashes to {0}")]
    Digest(Hash),
    /// A stored blob shorter than its salt.
    #[error("a blob of {0} bytes cannot hold a 32-byte salt")]
    NoSalt(usize),
}

/// Checks `data` with `salt` against the commitment (`digest`, `length`):
/// the length first, then the salted BLAKE3 digest.
///
/// # Errors
/// What does not match.
pub fn check(
    digest: &Hash,
    length: u64,
    salt: &[u8; SALT_LEN],
    data: &[u8],
) -> Result<(), Mismatch> {
    let got = data.len() as u64;
    if got != length {
        return Err(Mismatch::Length { got, want: length });
    }
    let d = content_digest(salt, data);
    if d != *digest {
        return Err(Mismatch::Digest(d));
    }
    Ok(())
}

/// Checks a stored blob, `salt (32 bytes) || content`, against the
/// commitment; returns the content.
///
/// # Errors
/// As [`check`], or a blob too short for its salt.
pub fn check_blob<'a>(digest: &Hash, length: u64, blob: &'a [u8]) -> Result<&'a [u8], Mismatch> {
    let (salt, data) = split_blob(blob)?;
    check(digest, length, salt, data)?;
    Ok(data)
}

/// Splits a stored blob into its salt and content.
///
/// # Errors
/// A blob too short for its salt.
pub fn split_blob(blob: &[u8]) -> Result<(&[u8; SALT_LEN], &[u8]), Mismatch> {
    let Some((salt, data)) = blob.split_first_chunk::<SALT_LEN>() else {
        return Err(Mismatch::NoSalt(blob.len()));
    };
    Ok((salt, data))
}

/// A content commitment an event makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentUse {
    /// Digest.
    pub digest: Hash,
    /// Length.
    pub length: u64,
    /// The item, if it is an item's version (else a request answer).
    pub item: Option<String>,
    /// Entry index.
    pub index: u64,
    /// True for a published annual report (FORMAT.md § 22.5), which the
    /// audit recounts.
    pub report: bool,
}

impl ContentUse {
    /// What it is, for messages: "content D of item I (entry N)".
    pub fn what(&self) -> String {
        match &self.item {
            Some(i) => format!("content {} of item {i} (entry {})", self.digest, self.index),
            None => format!(
                "content {} of the request answer at entry {}",
                self.digest, self.index
            ),
        }
    }
}

/// The content commitments of an event: a published or amended item's
/// version, a request answer's document.
pub fn content_uses(e: &Event) -> Option<ContentUse> {
    let (c, item) = match &e.kind {
        Kind::Published(p) => (p.content.as_ref(), Some(p.item_id.clone())),
        Kind::Amended(a) => (a.content.as_ref(), Some(a.item_id.clone())),
        Kind::RequestAnswered(r) => (r.content.as_ref(), None),
        _ => (None, None),
    };
    let c = c?;
    let digest = Hash::from_slice(&c.digest).ok()?;
    Some(ContentUse {
        digest,
        length: c.length,
        item,
        index: e.index,
        report: c.media_type == gongkai_core::report::MEDIA_TYPE,
    })
}

/// Whether `digest` of `item` was redacted, per the catalog fold.
pub fn is_redacted(state: &ChainState, item: Option<&str>, digest: &Hash) -> bool {
    item.and_then(|i| ItemId::new(i).ok())
        .and_then(|i| state.catalog.items.get(&i))
        .is_some_and(|i| i.redacted.contains(digest))
}

/// Whether the content of `item` is restricted, per the catalog fold (the
/// audience its matter has at the end of the verified log).
pub fn is_restricted(state: &ChainState, item: Option<&str>) -> bool {
    item.and_then(|i| ItemId::new(i).ok())
        .is_some_and(|i| state.catalog.is_restricted(&i))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_is_checked_before_the_digest_and_short_blobs_are_refused() {
        let salt = [7u8; 32];
        let d = content_digest(&salt, b"budget");
        assert_eq!(check(&d, 6, &salt, b"budget"), Ok(()));
        // The same bytes under a wrong length: refused although the digest
        // matches (an export once skipped this).
        assert_eq!(
            check(&d, 7, &salt, b"budget"),
            Err(Mismatch::Length { got: 6, want: 7 })
        );
        assert!(matches!(
            check(&d, 6, &salt, b"budgex"),
            Err(Mismatch::Digest(_))
        ));
        let mut blob = salt.to_vec();
        blob.extend_from_slice(b"budget");
        assert_eq!(check_blob(&d, 6, &blob), Ok(&b"budget"[..]));
        assert_eq!(check_blob(&d, 6, &blob[..31]), Err(Mismatch::NoSalt(31)));
        assert!(check_blob(&d, 6, &blob[..37]).is_err());
    }
}
