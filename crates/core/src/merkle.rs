//! The Merkle tree of the log: the RFC 9162 (RFC 6962) tree shape over BLAKE3
//! (FORMAT.md § Merkle tree).
//!
//! * [`root`]: the Merkle Tree Hash of a list of leaf hashes (§2.1.1).
//! * [`TreeState`]: the compact streaming state (one hash per set bit of the
//!   size), which a log appends to and a verifier saves and resumes.
//! * [`HashReader`]: the narrow read trait over stored *complete-subtree*
//!   hashes ([`NodeId`]); [`MemoryHashes`] is the in-memory store.
//! * [`root_at`], [`inclusion_proof`], [`consistency_proof`]: roots and
//!   proofs for any tree size from stored hashes, with `O(log n)` reads in
//!   one batched [`HashReader::read_hashes`] call, never a rescan.
//! * [`verify_inclusion`], [`verify_consistency`]: RFC 9162 §2.1.3.2 and
//!   §2.1.4.2, plus the edge cases the RFC leaves out.
//!
//! Only complete subtrees are ever stored. The hashes of incomplete subtrees
//! (the right ragged edge of a tree whose size is not a power of two) are
//! computed from the complete ones they are made of.
//!
//! ```
//! use gongkai_core::hash::leaf_hash;
//! use gongkai_core::merkle::{
//!     MemoryHashes, TreeState, consistency_proof, inclusion_proof, root_at,
//!     verify_consistency, verify_inclusion,
//! };
//!
//! let mut state = TreeState::new();
//! let mut store = MemoryHashes::new();
//! for i in 0u32..10 {
//!     let leaf = leaf_hash(&i.to_be_bytes());
//!     state.append(leaf);
//!     store.append(leaf);
//! }
//! let root = state.root();
//! assert_eq!(root_at(&store, 10)?, root);
//!
//! let proof = inclusion_proof(&store, 3, 10)?;
//! verify_inclusion(&leaf_hash(&3u32.to_be_bytes()), 3, 10, &proof, &root)?;
//!
//! let old_root = root_at(&store, 7)?;
//! let proof = consistency_proof(&store, 7, 10)?;
//! verify_consistency(7, 10, &old_root, &root, &proof)?;
//! # Ok::<(), gongkai_core::Error>(())
//! ```

use serde::{Deserialize, Serialize};

use crate::Error;
use crate::hash::{Hash, empty_root, node_hash};

/// A complete subtree of `2^level` leaves: it covers the leaves
/// `[index << level, (index + 1) << level)`. Level 0 nodes are leaf hashes.
///
/// These are the hashes a log stores: once complete, a subtree never
/// changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NodeId {
    /// Height of the subtree (0 = a single leaf).
    pub level: u8,
    /// Position of the subtree among those of its level, left to right.
    pub index: u64,
}

impl NodeId {
    /// The subtree at `level` with `index`.
    pub fn new(level: u8, index: u64) -> NodeId {
        NodeId { level, index }
    }

    /// The index of the first leaf under this subtree.
    pub fn first_leaf(&self) -> u128 {
        u128::from(self.index) << self.level
    }

    /// One past the index of the last leaf under this subtree.
    pub fn end_leaf(&self) -> u128 {
        (u128::from(self.index) + 1) << self.level
    }

    /// Whether this subtree is complete in a tree of `size` leaves.
    pub fn is_complete_in(&self, size: u64) -> bool {
        self.level < 64 && self.end_leaf() <= u128::from(size)
    }
}

/// Narrow read access to stored complete-subtree hashes.
///
/// Proof generation asks for all the hashes it needs in one call, so a
/// store behind a database does one batch of reads per proof.
pub trait HashReader {
    /// The hashes of `ids`, in the same order.
    ///
    /// # Errors
    /// [`Error::HashStore`] when a hash is missing or the store fails.
    fn read_hashes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, Error>;
}

impl<R: HashReader + ?Sized> HashReader for &R {
    fn read_hashes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, Error> {
        (**self).read_hashes(ids)
    }
}

/// Reads `ids` and checks the store answered with one hash per id.
pub(crate) fn read_checked<R: HashReader + ?Sized>(
    reader: &R,
    ids: &[NodeId],
) -> Result<Vec<Hash>, Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let hashes = reader.read_hashes(ids)?;
    if hashes.len() != ids.len() {
        return Err(Error::HashStore(format!(
            "asked for {} hashes, store returned {}",
            ids.len(),
            hashes.len()
        )));
    }
    Ok(hashes)
}

/// Every complete-subtree hash of a tree, in memory: the reference store
/// for tests, and a convenient one for callers holding a whole log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemoryHashes {
    /// `levels[l][i]` is the hash of `NodeId { level: l, index: i }`.
    levels: Vec<Vec<Hash>>,
}

impl MemoryHashes {
    /// An empty store (tree size 0).
    pub fn new() -> MemoryHashes {
        MemoryHashes::default()
    }

    /// A store holding every complete subtree of the tree over `leaf_hashes`.
    pub fn from_leaf_hashes(leaf_hashes: &[Hash]) -> MemoryHashes {
        let mut store = MemoryHashes::new();
        for leaf in leaf_hashes {
            store.append(*leaf);
        }
        store
    }

    /// Appends a leaf hash and every subtree hash it completes.
    pub fn append(&mut self, leaf_hash: Hash) {
        let mut level = 0;
        let mut hash = leaf_hash;
        loop {
            if self.levels.len() == level {
                self.levels.push(Vec::new());
            }
            let row = &mut self.levels[level];
            row.push(hash);
            let n = row.len();
            if n % 2 == 1 {
                break;
            }
            hash = node_hash(&row[n - 2], &row[n - 1]);
            level += 1;
        }
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.levels.first().map_or(0, |row| row.len() as u64)
    }

    /// The hash of one complete subtree, if stored.
    pub fn hash(&self, id: NodeId) -> Option<Hash> {
        let row = self.levels.get(usize::from(id.level))?;
        let index = usize::try_from(id.index).ok()?;
        row.get(index).copied()
    }
}

impl HashReader for MemoryHashes {
    fn read_hashes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, Error> {
        ids.iter()
            .map(|&id| {
                self.hash(id).ok_or_else(|| {
                    Error::HashStore(format!(
                        "no hash stored for level {} index {}",
                        id.level, id.index
                    ))
                })
            })
            .collect()
    }
}

// RFC 9162 §2.1.1: the Merkle Tree Hash.
/// The Merkle Tree Hash `MTH(D[n])` of a list of leaf hashes, per
/// RFC 9162 §2.1.1 with BLAKE3; `BLAKE3("")` for the empty list.
pub fn root(leaf_hashes: &[Hash]) -> Hash {
    let mut state = TreeState::new();
    for leaf in leaf_hashes {
        state.push(*leaf, |_, _| {});
    }
    state.root()
}

/// Root of a perfect subtree from its `2^k` bottom hashes (each already a
/// leaf or node hash): pairwise [`node_hash`] up to one. Used for the
/// level-`8(L+1)` hash a full tile of 256 hashes makes (FORMAT.md § 9.1).
/// An empty slice gives the empty root; a length that is not a power of two
/// is reduced as far as pairs go (callers pass 256).
pub fn root_of_perfect(hashes: &[Hash]) -> Hash {
    if hashes.is_empty() {
        return crate::hash::empty_root();
    }
    let mut row: Vec<Hash> = hashes.to_vec();
    while row.len() > 1 {
        row = row
            .chunks(2)
            .map(|p| {
                if p.len() == 2 {
                    node_hash(&p[0], &p[1])
                } else {
                    p[0]
                }
            })
            .collect();
    }
    row[0]
}

/// The compact state of a growing tree: its size and the hashes of its
/// maximal complete subtrees ("peaks"), largest (leftmost) first: one per set
/// bit of the size, so `O(log n)` memory.
///
/// It is all a log or a verifier needs to extend the tree and compute its
/// root. It serializes (with serde) as `{ "size": n, "peaks": [hex, ...] }`
/// and deserializing checks the number of peaks.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "TreeStateParts")]
pub struct TreeState {
    size: u64,
    peaks: Vec<Hash>,
}

/// The unchecked serialized form of a [`TreeState`].
#[derive(Deserialize)]
struct TreeStateParts {
    size: u64,
    peaks: Vec<Hash>,
}

impl TryFrom<TreeStateParts> for TreeState {
    type Error = Error;
    fn try_from(parts: TreeStateParts) -> Result<TreeState, Error> {
        TreeState::from_parts(parts.size, parts.peaks)
    }
}

impl TreeState {
    /// The empty tree.
    pub fn new() -> TreeState {
        TreeState::default()
    }

    /// A state from its size and peak hashes (largest subtree first).
    ///
    /// # Errors
    /// [`Error::TreeStatePeaks`] unless there is exactly one peak per set bit
    /// of `size`.
    pub fn from_parts(size: u64, peaks: Vec<Hash>) -> Result<TreeState, Error> {
        let expected = size.count_ones() as usize;
        if peaks.len() != expected {
            return Err(Error::TreeStatePeaks {
                size,
                expected,
                found: peaks.len(),
            });
        }
        Ok(TreeState { size, peaks })
    }

    /// Rebuilds the state of the tree of `size` leaves from stored hashes,
    /// reading only its `popcount(size)` peaks.
    ///
    /// # Errors
    /// Whatever the reader returns ([`Error::HashStore`] for a missing hash).
    pub fn from_reader<R: HashReader + ?Sized>(reader: &R, size: u64) -> Result<TreeState, Error> {
        let ids = range_nodes(0, size);
        let peaks = read_checked(reader, &ids)?;
        TreeState::from_parts(size, peaks)
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The peak hashes, largest (leftmost) subtree first.
    pub fn peaks(&self) -> &[Hash] {
        &self.peaks
    }

    /// The ids of the peaks, in the order of [`TreeState::peaks`].
    pub fn peak_ids(&self) -> Vec<NodeId> {
        range_nodes(0, self.size)
    }

    /// Appends a leaf hash. Returns every complete subtree the append
    /// completes: the leaf itself (level 0), then each newly completed
    /// parent, lowest first; a store persists exactly these.
    ///
    /// # Panics
    /// If the tree already holds `u64::MAX` leaves (unreachable in practice).
    pub fn append(&mut self, leaf_hash: Hash) -> Vec<(NodeId, Hash)> {
        let mut completed = Vec::with_capacity(1 + self.size.trailing_ones() as usize);
        self.push(leaf_hash, |id, hash| completed.push((id, hash)));
        completed
    }

    /// Appends a leaf hash, like [`TreeState::append`], for callers that do
    /// not need the completed subtrees (no allocation).
    ///
    /// # Panics
    /// If the tree already holds `u64::MAX` leaves (unreachable in practice).
    pub fn append_leaf(&mut self, leaf_hash: Hash) {
        self.push(leaf_hash, |_, _| {});
    }

    /// Appends a leaf hash, reporting each completed subtree to `sink`.
    fn push(&mut self, leaf_hash: Hash, mut sink: impl FnMut(NodeId, Hash)) {
        let index = self.size;
        let mut hash = leaf_hash;
        sink(NodeId::new(0, index), hash);
        // A subtree at level l completes when the low l bits of the new
        // leaf's index are all ones; its left sibling is the last peak.
        let merges = index.trailing_ones();
        for level in 1..=merges {
            let Some(left) = self.peaks.pop() else {
                unreachable!("a tree of size {index} has {} peaks", index.count_ones());
            };
            hash = node_hash(&left, &hash);
            sink(NodeId::new(level as u8, index >> level), hash);
        }
        self.peaks.push(hash);
        self.size = index
            .checked_add(1)
            .expect("a tree holds fewer than u64::MAX leaves");
    }

    /// The root hash: RFC 9162 §2.1.1 `MTH` of the leaves appended so far.
    pub fn root(&self) -> Hash {
        fold_right(&self.peaks)
    }
}

/// Hash of a range whose complete subtrees are `nodes`, left to right:
/// RFC 9162 §2.1.1 splits off the largest power of two on the left, so the
/// range hash folds from the right.
fn fold_right(nodes: &[Hash]) -> Hash {
    let Some((last, rest)) = nodes.split_last() else {
        return empty_root();
    };
    rest.iter()
        .rev()
        .fold(*last, |acc, left| node_hash(left, &acc))
}

/// The complete subtrees that make up the leaf range `[start, end)`, left to
/// right, largest first.
///
/// Every range a proof needs starts at a multiple of the largest power of
/// two not above its length (RFC 9162 §2.1 only ever splits off such
/// ranges), so each piece is an aligned complete subtree.
fn range_nodes(start: u64, end: u64) -> Vec<NodeId> {
    let mut nodes = Vec::with_capacity((end - start).count_ones() as usize);
    let mut position = start;
    let mut remaining = end - start;
    while remaining != 0 {
        let level = 63 - remaining.leading_zeros();
        debug_assert_eq!(position % (1 << level), 0, "unaligned range piece");
        nodes.push(NodeId::new(level as u8, position >> level));
        position += 1 << level;
        remaining -= 1 << level;
    }
    nodes
}

/// The largest power of two strictly below `n` (`n >= 2`): RFC 9162's `k`.
fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// Reads every node of every range in one batch and returns each range's
/// hash, in order.
fn range_hashes<R: HashReader + ?Sized>(
    reader: &R,
    ranges: &[(u64, u64)],
) -> Result<Vec<Hash>, Error> {
    let pieces: Vec<Vec<NodeId>> = ranges.iter().map(|&(a, b)| range_nodes(a, b)).collect();
    let ids: Vec<NodeId> = pieces.iter().flatten().copied().collect();
    let hashes = read_checked(reader, &ids)?;
    let mut out = Vec::with_capacity(ranges.len());
    let mut at = 0;
    for piece in &pieces {
        out.push(fold_right(&hashes[at..at + piece.len()]));
        at += piece.len();
    }
    Ok(out)
}

/// The root of the tree of `size` leaves from stored hashes (RFC 9162 §2.1.1
/// `MTH`), reading its `popcount(size)` peaks.
///
/// # Errors
/// Whatever the reader returns ([`Error::HashStore`] for a missing hash).
pub fn root_at<R: HashReader + ?Sized>(reader: &R, size: u64) -> Result<Hash, Error> {
    Ok(fold_right(&read_checked(reader, &range_nodes(0, size))?))
}

// RFC 9162 §2.1.3.1: the leaf ranges whose hashes make PATH(m, D[n]).
/// Leaf ranges of the inclusion proof of `index` in a tree of `size`, in
/// proof order (nearest the leaf first). Requires `index < size`.
fn inclusion_ranges(index: u64, size: u64) -> Vec<(u64, u64)> {
    let mut ranges = Vec::with_capacity(64);
    let (mut offset, mut n, mut m) = (0, size, index);
    while n > 1 {
        let k = split_point(n);
        if m < k {
            // PATH(m, D[0:k]) : MTH(D[k:n])
            ranges.push((offset + k, offset + n));
            n = k;
        } else {
            // PATH(m - k, D[k:n]) : MTH(D[0:k])
            ranges.push((offset, offset + k));
            offset += k;
            m -= k;
            n -= k;
        }
    }
    ranges.reverse();
    ranges
}

// RFC 9162 §2.1.4.1: the leaf ranges whose hashes make PROOF(m, D[n]).
/// Leaf ranges of the consistency proof from `old_size` to `new_size`, in
/// proof order. Requires `0 < old_size < new_size`.
fn consistency_ranges(old_size: u64, new_size: u64) -> Vec<(u64, u64)> {
    let mut ranges = Vec::with_capacity(64);
    // SUBPROOF(m, D[offset : offset + n], b)
    let (mut offset, mut n, mut m, mut whole) = (0, new_size, old_size, true);
    loop {
        if m == n {
            if !whole {
                ranges.push((offset, offset + n));
            }
            break;
        }
        let k = split_point(n);
        if m <= k {
            // SUBPROOF(m, D[0:k], b) : MTH(D[k:n])
            ranges.push((offset + k, offset + n));
            n = k;
        } else {
            // SUBPROOF(m - k, D[k:n], false) : MTH(D[0:k])
            ranges.push((offset, offset + k));
            offset += k;
            m -= k;
            n -= k;
            whole = false;
        }
    }
    ranges.reverse();
    ranges
}

// RFC 9162 §2.1.3.1: generating an inclusion proof.
/// The inclusion proof (audit path) of leaf `index` in the tree of `size`
/// leaves, RFC 9162 §2.1.3.1, from stored hashes: `O(log n)` hashes read in
/// one batch.
///
/// # Errors
/// [`Error::IndexOutOfRange`] if `index >= size`; whatever the reader
/// returns ([`Error::HashStore`] for a missing hash).
pub fn inclusion_proof<R: HashReader + ?Sized>(
    reader: &R,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, Error> {
    if index >= size {
        return Err(Error::IndexOutOfRange { index, size });
    }
    range_hashes(reader, &inclusion_ranges(index, size))
}

// RFC 9162 §2.1.4.1: generating a consistency proof.
/// The consistency proof from the tree of `old_size` leaves to the tree of
/// `new_size`, RFC 9162 §2.1.4.1, from stored hashes: `O(log n)` hashes read
/// in one batch. Empty when `old_size` is 0 or equals `new_size`.
///
/// # Errors
/// [`Error::SizeDecreased`] if `old_size > new_size`; whatever the reader
/// returns ([`Error::HashStore`] for a missing hash).
pub fn consistency_proof<R: HashReader + ?Sized>(
    reader: &R,
    old_size: u64,
    new_size: u64,
) -> Result<Vec<Hash>, Error> {
    if old_size > new_size {
        return Err(Error::SizeDecreased {
            old: old_size,
            new: new_size,
        });
    }
    if old_size == 0 || old_size == new_size {
        return Ok(Vec::new());
    }
    range_hashes(reader, &consistency_ranges(old_size, new_size))
}

/// Number of hashes in the inclusion proof of `index` in a tree of `size`
/// (`index < size`).
pub fn inclusion_proof_len(index: u64, size: u64) -> usize {
    if index >= size {
        return 0;
    }
    // Levels where the path runs inside one complete subtree, plus one hash
    // per complete left sibling above them.
    let inner = 64 - (index ^ (size - 1)).leading_zeros();
    (inner + index.checked_shr(inner).unwrap_or(0).count_ones()) as usize
}

/// Number of hashes in the consistency proof from `old_size` to `new_size`
/// (0 when `old_size` is 0 or not below `new_size`).
pub fn consistency_proof_len(old_size: u64, new_size: u64) -> usize {
    if old_size == 0 || old_size >= new_size {
        return 0;
    }
    let inner = 64 - ((old_size - 1) ^ (new_size - 1)).leading_zeros();
    let shift = old_size.trailing_zeros();
    let border = (old_size - 1).checked_shr(inner).unwrap_or(0).count_ones();
    // The old root itself is a proof element unless old_size is a power of
    // two (then the verifier already has it).
    let first = u32::from(!old_size.is_power_of_two());
    (inner - shift + border + first) as usize
}

const INCLUSION: &str = "inclusion";
const CONSISTENCY: &str = "consistency";

// RFC 9162 §2.1.3.2: verifying an inclusion proof.
/// Verifies that `leaf_hash` is leaf `index` of the tree of `size` leaves
/// whose root is `root`, per RFC 9162 §2.1.3.2.
///
/// # Errors
/// [`Error::IndexOutOfRange`] if `index >= size`; [`Error::ProofLength`] if
/// the proof does not have exactly the number of hashes the RFC 9162 path
/// for `(index, size)` has; [`Error::ProofMismatch`] if it leads to another
/// root.
pub fn verify_inclusion(
    leaf_hash: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), Error> {
    if index >= size {
        return Err(Error::IndexOutOfRange { index, size });
    }
    let expected = inclusion_proof_len(index, size);
    if proof.len() != expected {
        return Err(Error::ProofLength {
            what: INCLUSION,
            expected,
            found: proof.len(),
        });
    }
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = *leaf_hash;
    for p in proof {
        if sn == 0 {
            // Unreachable with the length checked above; kept from the RFC.
            return Err(Error::ProofLength {
                what: INCLUSION,
                expected,
                found: proof.len(),
            });
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(Error::ProofLength {
            what: INCLUSION,
            expected,
            found: proof.len(),
        });
    }
    if r != *root {
        return Err(Error::ProofMismatch {
            what: INCLUSION,
            computed: r,
            expected: *root,
        });
    }
    Ok(())
}

// RFC 9162 §2.1.4.2: verifying a consistency proof.
/// Verifies that the tree of `old_size` leaves with root `old_root` is a
/// prefix of the tree of `new_size` leaves with root `new_root`, per
/// RFC 9162 §2.1.4.2, plus the cases the RFC leaves out:
///
/// * `old_size == new_size`: the proof must be empty and the roots equal;
/// * `old_size == 0`: the proof must be empty and `old_root` must be the
///   empty root `BLAKE3("")`; any new root is consistent with it.
///
/// # Errors
/// [`Error::SizeDecreased`] if `old_size > new_size`;
/// [`Error::ProofMalformed`] for a non-empty proof when `old_size` is 0 or
/// equals `new_size`; [`Error::ProofLength`] for any other wrong number of
/// hashes; [`Error::ProofMismatch`] when the proof leads to another old root
/// (checked first) or new root, or when equal sizes have different roots.
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), Error> {
    if old_size > new_size {
        return Err(Error::SizeDecreased {
            old: old_size,
            new: new_size,
        });
    }
    if old_size == 0 {
        if !proof.is_empty() {
            return Err(Error::ProofMalformed {
                what: CONSISTENCY,
                reason: "proof from the empty tree must be empty",
            });
        }
        let empty = empty_root();
        if *old_root != empty {
            return Err(Error::ProofMismatch {
                what: CONSISTENCY,
                computed: empty,
                expected: *old_root,
            });
        }
        return Ok(());
    }
    if old_size == new_size {
        if !proof.is_empty() {
            return Err(Error::ProofMalformed {
                what: CONSISTENCY,
                reason: "proof between equal sizes must be empty",
            });
        }
        if old_root != new_root {
            return Err(Error::ProofMismatch {
                what: CONSISTENCY,
                computed: *new_root,
                expected: *old_root,
            });
        }
        return Ok(());
    }
    let expected = consistency_proof_len(old_size, new_size);
    let length_error = || Error::ProofLength {
        what: CONSISTENCY,
        expected,
        found: proof.len(),
    };
    if proof.len() != expected {
        return Err(length_error());
    }
    // Step 2: if old_size is a power of two, prepend old_root.
    let mut path = proof.iter();
    let seed = if old_size.is_power_of_two() {
        *old_root
    } else {
        *path.next().ok_or_else(length_error)?
    };
    // Steps 3-4.
    let (mut fn_, mut sn) = (old_size - 1, new_size - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    // Steps 5-6.
    let (mut fr, mut sr) = (seed, seed);
    for c in path {
        if sn == 0 {
            return Err(length_error());
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    // Step 7.
    if sn != 0 {
        return Err(length_error());
    }
    if fr != *old_root {
        return Err(Error::ProofMismatch {
            what: CONSISTENCY,
            computed: fr,
            expected: *old_root,
        });
    }
    if sr != *new_root {
        return Err(Error::ProofMismatch {
            what: CONSISTENCY,
            computed: sr,
            expected: *new_root,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::leaf_hash;

    fn leaves(n: u64) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
    }

    #[test]
    fn small_roots() {
        assert_eq!(root(&[]), empty_root());
        let l = leaves(3);
        assert_eq!(root(&l[..1]), l[0]);
        assert_eq!(root(&l[..2]), node_hash(&l[0], &l[1]));
        assert_eq!(root(&l), node_hash(&node_hash(&l[0], &l[1]), &l[2]));
    }

    #[test]
    fn append_reports_completed_subtrees() {
        let l = leaves(8);
        let mut state = TreeState::new();
        assert_eq!(state.append(l[0]), vec![(NodeId::new(0, 0), l[0])]);
        let n01 = node_hash(&l[0], &l[1]);
        assert_eq!(
            state.append(l[1]),
            vec![(NodeId::new(0, 1), l[1]), (NodeId::new(1, 0), n01)]
        );
        state.append(l[2]);
        let got = state.append(l[3]);
        assert_eq!(got.len(), 3);
        assert_eq!(got[2].0, NodeId::new(2, 0));
        assert_eq!(state.peaks().len(), 1);
        assert_eq!(state.root(), root(&l[..4]));
    }

    #[test]
    fn from_parts_checks_peak_count() {
        assert!(TreeState::from_parts(3, vec![Hash::ZERO; 2]).is_ok());
        assert_eq!(
            TreeState::from_parts(3, vec![Hash::ZERO]),
            Err(Error::TreeStatePeaks {
                size: 3,
                expected: 2,
                found: 1
            })
        );
        let bad = r#"{"size":4,"peaks":[]}"#;
        assert!(serde_json::from_str::<TreeState>(bad).is_err());
    }

    #[test]
    fn proof_lengths_match_ranges() {
        for n in 1..200u64 {
            for m in 0..n {
                assert_eq!(inclusion_proof_len(m, n), inclusion_ranges(m, n).len());
            }
            for m in 1..n {
                assert_eq!(
                    consistency_proof_len(m, n),
                    consistency_ranges(m, n).len(),
                    "{m} {n}"
                );
            }
        }
        for (m, n) in [
            (u64::MAX - 1, u64::MAX),
            (1, u64::MAX),
            (1 << 63, u64::MAX),
            ((1 << 63) - 1, 1 << 63),
            (12_345_678_901, 98_765_432_101),
        ] {
            assert_eq!(inclusion_proof_len(m, n), inclusion_ranges(m, n).len());
            assert_eq!(consistency_proof_len(m, n), consistency_ranges(m, n).len());
        }
    }

    #[test]
    fn missing_hash_is_a_store_error() {
        let store = MemoryHashes::from_leaf_hashes(&leaves(5));
        assert!(matches!(
            inclusion_proof(&store, 0, 9),
            Err(Error::HashStore(_))
        ));
        assert!(matches!(root_at(&store, 6), Err(Error::HashStore(_))));
    }

    #[test]
    fn edge_cases() {
        let store = MemoryHashes::from_leaf_hashes(&leaves(4));
        let r = root_at(&store, 4).unwrap();
        assert_eq!(
            inclusion_proof(&store, 4, 4),
            Err(Error::IndexOutOfRange { index: 4, size: 4 })
        );
        assert_eq!(
            verify_inclusion(&r, 0, 0, &[], &r),
            Err(Error::IndexOutOfRange { index: 0, size: 0 })
        );
        assert_eq!(
            consistency_proof(&store, 5, 4),
            Err(Error::SizeDecreased { old: 5, new: 4 })
        );
        assert_eq!(
            verify_consistency(5, 4, &r, &r, &[]),
            Err(Error::SizeDecreased { old: 5, new: 4 })
        );
        assert_eq!(consistency_proof(&store, 0, 4), Ok(vec![]));
        assert_eq!(consistency_proof(&store, 4, 4), Ok(vec![]));
        assert_eq!(verify_consistency(0, 4, &empty_root(), &r, &[]), Ok(()));
        assert!(matches!(
            verify_consistency(0, 4, &r, &r, &[]),
            Err(Error::ProofMismatch { .. })
        ));
        assert!(matches!(
            verify_consistency(0, 4, &empty_root(), &r, &[r]),
            Err(Error::ProofMalformed { .. })
        ));
        assert_eq!(verify_consistency(4, 4, &r, &r, &[]), Ok(()));
        assert!(matches!(
            verify_consistency(4, 4, &r, &r, &[r]),
            Err(Error::ProofMalformed { .. })
        ));
        assert!(matches!(
            verify_consistency(4, 4, &r, &empty_root(), &[]),
            Err(Error::ProofMismatch { .. })
        ));
        assert_eq!(verify_consistency(0, 0, &empty_root(), &r, &[]), Ok(()));
        // Single leaf: empty proof, root is the leaf hash.
        let one = leaves(1);
        assert_eq!(verify_inclusion(&one[0], 0, 1, &[], &one[0]), Ok(()));
    }
}
