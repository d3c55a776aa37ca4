//! Tile and entry-bundle math in the style of C2SP tlog-tiles
//! (<https://c2sp.org/tlog-tiles>), with BLAKE3 hashes (FORMAT.md § Tiles).
//!
//! The paths and the bundle format are those of tlog-tiles; the hashes are
//! the BLAKE3 hashes of [`crate::merkle`], so the tiles are
//! tlog-tiles-*style*, not hash-interoperable with SHA-256 logs.
//!
//! * A hash tile at level `L`, index `N` and width `W` (1..=256) holds the
//!   hashes of the complete subtrees at tree level `8L` with indexes
//!   `N*256 .. N*256+W`: at level 0 the leaf hashes, above that the root of
//!   each full tile of the level below. `W < 256` is a partial tile, the
//!   right edge of some tree size. Path: `tile/<L>/<N>[.p/<W>]`.
//! * An entry bundle `tile/entries/<N>[.p/<W>]` holds entries
//!   `N*256 .. N*256+W`, each as a big-endian u16 length and the bytes.
//!
//! [`TileHashReader`] turns anything that can fetch tiles (an export, an HTTP
//! mirror) into a [`HashReader`], so the proof code of [`crate::merkle`]
//! runs unchanged over published tiles.
//!
//! Out of scope: fetching, caching and storing tiles (that is I/O).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use crate::Error;
use crate::hash::{Hash, node_hash};
use crate::merkle::{HashReader, NodeId, read_checked};

/// Tree levels per tile level: a tile is a subtree of height 8.
pub const TILE_HEIGHT: u8 = 8;

/// Hashes (or entries) in a full tile (or bundle).
pub const TILE_WIDTH: u16 = 1 << TILE_HEIGHT;

/// The highest tile level a tree of at most `u64::MAX` leaves has: level 7
/// holds tree level 56, and nothing is complete at tree level 64.
pub const MAX_TILE_LEVEL: u8 = 7;

/// Largest entry an entry bundle can hold (its u16 length prefix).
pub const MAX_BUNDLE_ENTRY_LEN: usize = u16::MAX as usize;

/// A hash tile: level, index within the level and width (256 = full).
///
/// Built by [`TileId::new`] or parsed from its path, so it always names a
/// tile some tree of at most `u64::MAX` leaves can have.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TileId {
    level: u8,
    index: u64,
    width: u16,
}

/// An entry bundle: index (in units of 256 entries) and width (256 = full).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BundleId {
    index: u64,
    width: u16,
}

fn tile_error(message: impl Into<String>) -> Error {
    Error::Tile(message.into())
}

fn check_width(width: u16) -> Result<(), Error> {
    if width == 0 || width > TILE_WIDTH {
        return Err(tile_error(format!("width {width} is not in 1..=256")));
    }
    Ok(())
}

/// Whether tile `index` at tile `level` starts below leaf `2^64`.
fn index_fits(level: u8, index: u64) -> bool {
    // First leaf: index * 256^(level + 1).
    let shift = u32::from(TILE_HEIGHT) * (u32::from(level) + 1);
    level <= MAX_TILE_LEVEL && u128::from(index) << shift <= u128::from(u64::MAX)
}

impl TileId {
    /// The tile at `level` with `index` and `width` (256 for a full tile).
    ///
    /// # Errors
    /// [`Error::Tile`] if `level > 7`, `width` is not in `1..=256`, or the
    /// tile would start beyond leaf `u64::MAX`.
    pub fn new(level: u8, index: u64, width: u16) -> Result<TileId, Error> {
        check_width(width)?;
        if !index_fits(level, index) {
            return Err(tile_error(format!(
                "tile {index} at level {level} lies beyond any tree size"
            )));
        }
        Ok(TileId {
            level,
            index,
            width,
        })
    }

    /// Tile level `L`: the tile holds tree-level `8L` hashes.
    pub fn level(&self) -> u8 {
        self.level
    }

    /// Index `N` within the level.
    pub fn index(&self) -> u64 {
        self.index
    }

    /// Number of hashes, 1..=256.
    pub fn width(&self) -> u16 {
        self.width
    }

    /// Whether the tile is partial (fewer than 256 hashes).
    pub fn is_partial(&self) -> bool {
        self.width < TILE_WIDTH
    }

    /// Length of the encoded tile: `32 * width` bytes.
    pub fn byte_len(&self) -> usize {
        usize::from(self.width) * 32
    }

    /// The complete subtrees whose hashes the tile holds, in order.
    pub fn node_ids(&self) -> Vec<NodeId> {
        let level = self.level * TILE_HEIGHT;
        let first = self.index << TILE_HEIGHT;
        (0..u64::from(self.width))
            .map(|i| NodeId::new(level, first + i))
            .collect()
    }

    /// The path `tile/<L>/<N>[.p/<W>]`.
    pub fn path(&self) -> String {
        format!("tile/{}/{}", self.level, index_path(self.index, self.width))
    }

    /// Parses a canonical hash-tile path `tile/<L>/<N>[.p/<W>]`.
    ///
    /// # Errors
    /// [`Error::Tile`] for anything else: entry-bundle paths, leading zeros,
    /// `.p/0` or `.p/256`, empty or extra path elements, levels above 7,
    /// indexes beyond any tree.
    pub fn parse(path: &str) -> Result<TileId, Error> {
        match parse_path(path)? {
            TilePath::Hashes(id) => Ok(id),
            TilePath::Entries(_) => Err(tile_error(format!(
                "{path:?} is an entry bundle, not a hash tile"
            ))),
        }
    }
}

impl fmt::Display for TileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path())
    }
}

impl FromStr for TileId {
    type Err = Error;
    fn from_str(s: &str) -> Result<TileId, Error> {
        TileId::parse(s)
    }
}

impl BundleId {
    /// The bundle with `index` and `width` (256 for a full bundle).
    ///
    /// # Errors
    /// [`Error::Tile`] if `width` is not in `1..=256` or the bundle would
    /// start beyond entry `u64::MAX`.
    pub fn new(index: u64, width: u16) -> Result<BundleId, Error> {
        check_width(width)?;
        if !index_fits(0, index) {
            return Err(tile_error(format!(
                "entry bundle {index} lies beyond any tree size"
            )));
        }
        Ok(BundleId { index, width })
    }

    /// Index `N`: the bundle starts at entry `256 * N`.
    pub fn index(&self) -> u64 {
        self.index
    }

    /// Number of entries, 1..=256.
    pub fn width(&self) -> u16 {
        self.width
    }

    /// Whether the bundle is partial (fewer than 256 entries).
    pub fn is_partial(&self) -> bool {
        self.width < TILE_WIDTH
    }

    /// Leaf index of the first entry.
    pub fn first_entry(&self) -> u64 {
        self.index << TILE_HEIGHT
    }

    /// The path `tile/entries/<N>[.p/<W>]`.
    pub fn path(&self) -> String {
        format!("tile/entries/{}", index_path(self.index, self.width))
    }

    /// Parses a canonical entry-bundle path `tile/entries/<N>[.p/<W>]`.
    ///
    /// # Errors
    /// [`Error::Tile`] for anything else (see [`TileId::parse`]).
    pub fn parse(path: &str) -> Result<BundleId, Error> {
        match parse_path(path)? {
            TilePath::Entries(id) => Ok(id),
            TilePath::Hashes(_) => Err(tile_error(format!(
                "{path:?} is a hash tile, not an entry bundle"
            ))),
        }
    }
}

impl fmt::Display for BundleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path())
    }
}

impl FromStr for BundleId {
    type Err = Error;
    fn from_str(s: &str) -> Result<BundleId, Error> {
        BundleId::parse(s)
    }
}

/// Either kind of path under `tile/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TilePath {
    /// `tile/<L>/<N>[.p/<W>]`.
    Hashes(TileId),
    /// `tile/entries/<N>[.p/<W>]`.
    Entries(BundleId),
}

/// `<N>[.p/<W>]`: N in zero-padded 3-digit elements, all but the last
/// prefixed with `x`; the width suffix only for partial tiles.
fn index_path(index: u64, width: u16) -> String {
    let digits = index.to_string();
    let padded = format!("{}{digits}", "0".repeat((3 - digits.len() % 3) % 3));
    let groups: Vec<&str> = padded
        .as_bytes()
        .chunks(3)
        .map(|g| std::str::from_utf8(g).unwrap_or("???"))
        .collect();
    let mut out = String::with_capacity(padded.len() * 2);
    for (i, group) in groups.iter().enumerate() {
        if i + 1 < groups.len() {
            out.push('x');
            out.push_str(group);
            out.push('/');
        } else {
            out.push_str(group);
        }
    }
    if width < TILE_WIDTH {
        out.push_str(&format!(".p/{width}"));
    }
    out
}

fn three_digits(text: &str) -> Option<u64> {
    let b = text.as_bytes();
    if b.len() != 3 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(b.iter().fold(0, |acc, d| acc * 10 + u64::from(d - b'0')))
}

/// Parses a canonical `tile/<L>/<N>[.p/<W>]` or `tile/entries/<N>[.p/<W>]`.
///
/// # Errors
/// [`Error::Tile`] naming what is not canonical.
pub fn parse_path(path: &str) -> Result<TilePath, Error> {
    let bad = |why: &str| tile_error(format!("path {path:?}: {why}"));
    let mut parts = path.split('/');
    if parts.next() != Some("tile") {
        return Err(bad("must start with tile/"));
    }
    let level = match parts.next() {
        Some("entries") => None,
        Some(l) => {
            let canonical = matches!(l.as_bytes(), [b'0'..=b'9'])
                || matches!(l.as_bytes(), [b'1'..=b'9', b'0'..=b'9']);
            if !canonical {
                return Err(bad("level must be decimal without leading zeros"));
            }
            let level: u8 = l.parse().map_err(|_| bad("bad level"))?;
            if level > MAX_TILE_LEVEL {
                return Err(bad("level above 7 holds no hashes"));
            }
            Some(level)
        }
        None => return Err(bad("missing level")),
    };
    let rest: Vec<&str> = parts.collect();
    let mut index: u64 = 0;
    let mut width = TILE_WIDTH;
    let mut i = 0;
    loop {
        let Some(&element) = rest.get(i) else {
            return Err(bad("missing index"));
        };
        i += 1;
        if let Some(group) = element.strip_prefix('x') {
            let value = three_digits(group).ok_or_else(|| bad("bad x-prefixed index element"))?;
            if i == 1 && value == 0 {
                return Err(bad("index has leading zeros"));
            }
            index = index
                .checked_mul(1000)
                .and_then(|n| n.checked_add(value))
                .ok_or_else(|| bad("index overflows"))?;
            continue;
        }
        let (last, partial) = match element.strip_suffix(".p") {
            Some(last) => (last, true),
            None => (element, false),
        };
        let value = three_digits(last).ok_or_else(|| bad("bad last index element"))?;
        index = index
            .checked_mul(1000)
            .and_then(|n| n.checked_add(value))
            .ok_or_else(|| bad("index overflows"))?;
        if partial {
            let w = rest.get(i).ok_or_else(|| bad("missing width after .p"))?;
            i += 1;
            let wb = w.as_bytes();
            let canonical = !wb.is_empty()
                && wb.len() <= 3
                && wb[0] != b'0'
                && wb.iter().all(u8::is_ascii_digit);
            if !canonical {
                return Err(bad("width must be decimal 1..=255 without leading zeros"));
            }
            let w: u16 = w.parse().map_err(|_| bad("bad width"))?;
            if w >= TILE_WIDTH {
                return Err(bad("width must be 1..=255 (a full tile has no .p)"));
            }
            width = w;
        }
        break;
    }
    if i != rest.len() {
        return Err(bad("extra path elements"));
    }
    match level {
        Some(level) => TileId::new(level, index, width).map(TilePath::Hashes),
        None => BundleId::new(index, width).map(TilePath::Entries),
    }
}

/// Every hash tile that publishes the tree of `size` leaves, level by level:
/// the full tiles, then the partial right-edge tile of the level if it has
/// one. A tree of size 256 has one full level-0 tile and a level-1 tile of
/// width 1. The list is about `size / 255` long.
pub fn tiles_for_size(size: u64) -> Vec<TileId> {
    let mut tiles = Vec::new();
    for level in 0..=MAX_TILE_LEVEL {
        let count = size >> (u32::from(level) * u32::from(TILE_HEIGHT));
        if count == 0 {
            break;
        }
        let full = count >> TILE_HEIGHT;
        tiles.extend((0..full).map(|index| TileId {
            level,
            index,
            width: TILE_WIDTH,
        }));
        let partial = (count % u64::from(TILE_WIDTH)) as u16;
        if partial != 0 {
            tiles.push(TileId {
                level,
                index: full,
                width: partial,
            });
        }
    }
    tiles
}

/// Every entry bundle of the tree of `size` leaves: the full bundles, then
/// the partial last one if `size` is not a multiple of 256. For a size read
/// from untrusted input use [`entry_bundles_iter`], which allocates nothing.
pub fn entry_bundles_for_size(size: u64) -> Vec<BundleId> {
    entry_bundles_iter(size).collect()
}

/// The entry bundles of the tree of `size` leaves, lazily, in order: a
/// checkpoint claiming 2^64 - 1 entries costs nothing until a bundle is
/// read.
pub fn entry_bundles_iter(size: u64) -> impl Iterator<Item = BundleId> {
    let full = size >> TILE_HEIGHT;
    let partial = (size % u64::from(TILE_WIDTH)) as u16;
    (0..full)
        .map(|index| BundleId {
            index,
            width: TILE_WIDTH,
        })
        .chain((partial != 0).then_some(BundleId {
            index: full,
            width: partial,
        }))
}

/// The tile that holds tree-level-`8L` hash `index` in the tree of `size`
/// leaves: the full tile if the tree has it, else its partial edge tile.
/// `None` if that hash is not complete in the tree.
fn tile_holding(level: u8, index: u64, size: u64) -> Option<TileId> {
    let count = size >> (u32::from(level) * u32::from(TILE_HEIGHT));
    if index >= count {
        return None;
    }
    let tile = index >> TILE_HEIGHT;
    let start = tile << TILE_HEIGHT;
    let width = (count - start).min(u64::from(TILE_WIDTH)) as u16;
    Some(TileId {
        level,
        index: tile,
        width,
    })
}

/// The hashes tile `id` contains, read from stored hashes in one batch.
///
/// # Errors
/// Whatever the reader returns ([`Error::HashStore`] for a missing hash).
pub fn tile_hashes<R: HashReader + ?Sized>(reader: &R, id: &TileId) -> Result<Vec<Hash>, Error> {
    read_checked(reader, &id.node_ids())
}

/// The bytes of a tile: its hashes concatenated.
pub fn encode_tile(hashes: &[Hash]) -> Vec<u8> {
    hashes.iter().flat_map(|h| h.0).collect()
}

/// Decodes a tile of `width` hashes: exactly `32 * width` bytes.
///
/// # Errors
/// [`Error::Tile`] if `width` is not in `1..=256` or the length is wrong.
pub fn decode_tile(bytes: &[u8], width: u16) -> Result<Vec<Hash>, Error> {
    check_width(width)?;
    let expected = usize::from(width) * 32;
    if bytes.len() != expected {
        return Err(tile_error(format!(
            "tile of width {width} must be {expected} bytes, found {}",
            bytes.len()
        )));
    }
    Ok(bytes
        .chunks_exact(32)
        .map(|c| {
            let mut h = [0u8; 32];
            h.copy_from_slice(c);
            Hash(h)
        })
        .collect())
}

/// Fetches the bytes of hash tiles (from an export, a mirror, a store).
pub trait TileReader {
    /// The encoded tile `id` (`32 * width` bytes).
    ///
    /// # Errors
    /// Whatever the source fails with; a missing tile is typically
    /// [`Error::Tile`] or [`Error::HashStore`].
    fn read_tile(&self, id: &TileId) -> Result<Vec<u8>, Error>;
}

impl<F> TileReader for F
where
    F: Fn(&TileId) -> Result<Vec<u8>, Error>,
{
    fn read_tile(&self, id: &TileId) -> Result<Vec<u8>, Error> {
        self(id)
    }
}

/// A [`HashReader`] over the published tiles of one tree size: any complete
/// subtree's hash, computed from the tile hashes (levels `8L+1 .. 8L+7` are
/// hashed up from level `8L`).
///
/// Full tiles are used wherever the tree has them; a partial tile only for
/// the right edge of this size, which is exactly the set of tiles
/// [`tiles_for_size`] lists. Each tile is fetched at most once per
/// [`HashReader::read_hashes`] call.
#[derive(Clone, Debug)]
pub struct TileHashReader<T> {
    tiles: T,
    size: u64,
}

impl<T: TileReader> TileHashReader<T> {
    /// Reads hashes of the tree of `size` leaves from `tiles`.
    pub fn new(tiles: T, size: u64) -> TileHashReader<T> {
        TileHashReader { tiles, size }
    }

    /// The tree size this reader serves.
    pub fn size(&self) -> u64 {
        self.size
    }
}

impl<T: TileReader> HashReader for TileHashReader<T> {
    fn read_hashes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, Error> {
        let mut cache: BTreeMap<TileId, Vec<Hash>> = BTreeMap::new();
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if !id.is_complete_in(self.size) {
                return Err(Error::HashStore(format!(
                    "subtree level {} index {} is not complete in a tree of size {}",
                    id.level, id.index, self.size
                )));
            }
            let tile_level = id.level / TILE_HEIGHT;
            let within = id.level % TILE_HEIGHT;
            // The subtree's first hash at tree level 8L, and how many.
            let first = id.index << within;
            let count = 1usize << within;
            let Some(tile) = tile_holding(tile_level, first, self.size) else {
                return Err(Error::HashStore(format!(
                    "no tile holds level {} index {}",
                    id.level, id.index
                )));
            };
            let hashes = match cache.get(&tile) {
                Some(h) => h,
                None => {
                    let bytes = self.tiles.read_tile(&tile)?;
                    let decoded = decode_tile(&bytes, tile.width)
                        .map_err(|e| tile_error(format!("{tile}: {e}")))?;
                    cache.entry(tile).or_insert(decoded)
                }
            };
            let offset = (first % u64::from(TILE_WIDTH)) as usize;
            let Some(slice) = hashes.get(offset..offset + count) else {
                return Err(tile_error(format!(
                    "{tile} too short for level {} index {}",
                    id.level, id.index
                )));
            };
            out.push(subtree_hash(slice));
        }
        Ok(out)
    }
}

/// The root of a complete subtree over a power-of-two number of hashes.
fn subtree_hash(hashes: &[Hash]) -> Hash {
    let mut row = hashes.to_vec();
    while row.len() > 1 {
        row = row
            .chunks_exact(2)
            .map(|pair| node_hash(&pair[0], &pair[1]))
            .collect();
    }
    row.first().copied().unwrap_or_default()
}

/// Encodes an entry bundle: each entry as a big-endian u16 length, then its
/// bytes.
///
/// # Errors
/// [`Error::BundleEntryTooLong`] for an entry over 65,535 bytes.
pub fn encode_bundle(entries: &[&[u8]]) -> Result<Vec<u8>, Error> {
    let total: usize = entries.iter().map(|e| e.len() + 2).sum();
    let mut out = Vec::with_capacity(total);
    for (position, entry) in entries.iter().enumerate() {
        let len = u16::try_from(entry.len()).map_err(|_| Error::BundleEntryTooLong {
            position,
            len: entry.len(),
        })?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(entry);
    }
    Ok(out)
}

/// Decodes an entry bundle of exactly `expected_count` entries, borrowing
/// them from `bytes`.
///
/// # Errors
/// [`Error::Tile`] if the bundle is truncated, holds fewer or more entries
/// than `expected_count`, or has trailing bytes.
pub fn decode_bundle(bytes: &[u8], expected_count: usize) -> Result<Vec<&[u8]>, Error> {
    let mut entries = Vec::with_capacity(expected_count.min(usize::from(TILE_WIDTH)));
    let mut rest = bytes;
    for position in 0..expected_count {
        let Some((len, tail)) = rest.split_first_chunk::<2>() else {
            return Err(tile_error(format!(
                "bundle truncated at the length of entry {position} of {expected_count}"
            )));
        };
        let len = usize::from(u16::from_be_bytes(*len));
        if tail.len() < len {
            return Err(tile_error(format!(
                "bundle truncated inside entry {position}: {len} bytes declared, {} left",
                tail.len()
            )));
        }
        let (entry, tail) = tail.split_at(len);
        entries.push(entry);
        rest = tail;
    }
    if !rest.is_empty() {
        return Err(tile_error(format!(
            "{} bytes after the {expected_count} entries of the bundle",
            rest.len()
        )));
    }
    Ok(entries)
}

/// Builds the hash tiles of a growing tree in one pass over its leaf
/// hashes, in `O(8 × 256)` memory: the exporter writes the tiles it yields,
/// the auditor compares them with the files of an export. It yields each
/// full tile as soon as it is complete; [`TileBuilder::partial_tiles`]
/// gives the partial right-edge tiles, so the tiles yielded for a tree of
/// size `n` are exactly [`tiles_for_size`]`(n)` (FORMAT.md § 9.1).
#[derive(Clone, Debug, Default)]
pub struct TileBuilder {
    /// Per tile level, the level-`8L` hashes not yet in a full tile.
    pending: Vec<Vec<Hash>>,
    size: u64,
}

impl TileBuilder {
    /// A builder for the empty tree.
    pub fn new() -> TileBuilder {
        TileBuilder::default()
    }

    /// Leaves pushed so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends one leaf hash; returns the full tiles it completed (at most
    /// one per level), lowest level first.
    pub fn push(&mut self, leaf_hash: Hash) -> Vec<(TileId, Vec<Hash>)> {
        let mut done = Vec::new();
        let mut carry = leaf_hash;
        let mut level = 0usize;
        loop {
            if self.pending.len() <= level {
                self.pending
                    .push(Vec::with_capacity(usize::from(TILE_WIDTH)));
            }
            let row = &mut self.pending[level];
            row.push(carry);
            if row.len() < usize::from(TILE_WIDTH) {
                break;
            }
            let hashes = std::mem::take(row);
            // A full tile's 256 hashes make one level-8(L+1) hash: the root
            // of the perfect subtree over them.
            carry = crate::merkle::root_of_perfect(&hashes);
            let index = ((self.size + 1) >> (TILE_HEIGHT as usize * (level + 1))) - 1;
            done.push((
                TileId {
                    level: level as u8,
                    index,
                    width: TILE_WIDTH,
                },
                hashes,
            ));
            level += 1;
            if level > usize::from(MAX_TILE_LEVEL) {
                break;
            }
        }
        self.size += 1;
        done
    }

    /// The partial tiles of the tree so far (one per level that has
    /// hashes not yet in a full tile), lowest level first.
    pub fn partial_tiles(&self) -> Vec<(TileId, Vec<Hash>)> {
        let mut out = Vec::new();
        for (level, row) in self.pending.iter().enumerate() {
            if row.is_empty() {
                continue;
            }
            let width = row.len() as u16;
            let index = self.size >> (TILE_HEIGHT as usize * (level + 1));
            out.push((
                TileId {
                    level: level as u8,
                    index,
                    width,
                },
                row.clone(),
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::hash::leaf_hash;
    use crate::merkle::{MemoryHashes, consistency_proof, inclusion_proof, root_at};

    fn tile(level: u8, index: u64, width: u16) -> TileId {
        TileId::new(level, index, width).unwrap()
    }

    #[test]
    fn path_examples() {
        assert_eq!(tile(0, 1_234_067, 256).path(), "tile/0/x001/x234/067");
        assert_eq!(tile(0, 5, 256).path(), "tile/0/005");
        assert_eq!(tile(1, 0, 1).path(), "tile/1/000.p/1");
        assert_eq!(tile(2, 1000, 255).path(), "tile/2/x001/000.p/255");
        assert_eq!(BundleId::new(0, 7).unwrap().path(), "tile/entries/000.p/7");
        assert_eq!(
            BundleId::new(1_234_067, 256).unwrap().path(),
            "tile/entries/x001/x234/067"
        );
        assert_eq!(
            TileId::parse("tile/0/x001/x234/067").unwrap(),
            tile(0, 1_234_067, 256)
        );
        assert_eq!(
            BundleId::parse("tile/entries/000.p/7").unwrap(),
            BundleId::new(0, 7).unwrap()
        );
        assert_eq!(
            "tile/7/000.p/255".parse::<TileId>().unwrap(),
            tile(7, 0, 255)
        );
        let max_level0 = (1u64 << 56) - 1;
        let t = tile(0, max_level0, 256);
        assert_eq!(TileId::parse(&t.path()).unwrap(), t);
    }

    #[test]
    fn path_round_trips() {
        for index in [
            0,
            1,
            9,
            10,
            99,
            100,
            999,
            1000,
            1001,
            999_999,
            1_000_000,
            1 << 40,
        ] {
            for width in [1, 7, 255, 256] {
                let t = tile(1, index, width);
                assert_eq!(TileId::parse(&t.to_string()).unwrap(), t);
                let b = BundleId::new(index, width).unwrap();
                assert_eq!(BundleId::parse(&b.to_string()).unwrap(), b);
            }
        }
    }

    #[test]
    fn path_rejects() {
        for bad in [
            "",
            "tile",
            "tile/",
            "tile/0",
            "tile/0/",
            "tile/0/5",
            "tile/0/05",
            "tile/0/0005",
            "tile/0/x000/005",
            "tile/0/x001/x234/67",
            "tile/0/x1/234",
            "tile/0/001/234",
            "tile/0/x001",
            "tile/0/x001/",
            "tile/0/000.p/0",
            "tile/0/000.p/256",
            "tile/0/000.p/07",
            "tile/0/000.p/",
            "tile/0/000.p",
            "tile/0/000.p/+7",
            "tile/0/000.p/7/",
            "tile/0/000/",
            "tile/0/000/001",
            "tile//000",
            "tile/00/000",
            "tile/01/000",
            "tile/8/000",
            "tile/64/000",
            "tile/-1/000",
            "tile/a/000",
            "tile/7/001",
            "tile/entries",
            "tile/entries/",
            "tile/entries/00a",
            "tile/data/000",
            "/tile/0/000",
            "tiles/0/000",
            "tile/0/x018/x446/x744/x073/x709/x551/615",
            "tile/0/x072/x057/x594/x037/x927/936",
        ] {
            assert!(parse_path(bad).is_err(), "{bad:?} accepted");
        }
        assert!(TileId::parse("tile/entries/000").is_err());
        assert!(BundleId::parse("tile/0/000").is_err());
        assert!(TileId::new(0, 0, 0).is_err());
        assert!(TileId::new(0, 0, 257).is_err());
        assert!(TileId::new(8, 0, 1).is_err());
        assert!(BundleId::new(1 << 56, 1).is_err());
    }

    fn names(tiles: &[TileId]) -> Vec<String> {
        tiles.iter().map(TileId::path).collect()
    }

    #[test]
    fn tiles_for_sizes() {
        assert!(tiles_for_size(0).is_empty());
        assert!(entry_bundles_for_size(0).is_empty());
        assert_eq!(names(&tiles_for_size(1)), ["tile/0/000.p/1"]);
        assert_eq!(names(&tiles_for_size(255)), ["tile/0/000.p/255"]);
        assert_eq!(
            names(&tiles_for_size(256)),
            ["tile/0/000", "tile/1/000.p/1"]
        );
        assert_eq!(
            names(&tiles_for_size(257)),
            ["tile/0/000", "tile/0/001.p/1", "tile/1/000.p/1"]
        );
        let t = tiles_for_size(65_536);
        assert_eq!(t.len(), 256 + 1 + 1);
        assert!(t[..256].iter().all(|t| t.level() == 0 && !t.is_partial()));
        assert_eq!(names(&t[256..]), ["tile/1/000", "tile/2/000.p/1"]);
        let t = tiles_for_size(65_537);
        assert_eq!(
            names(&t[256..]),
            ["tile/0/256.p/1", "tile/1/000", "tile/2/000.p/1"]
        );
        // The tlog-tiles example: 70,000 leaves.
        let t = tiles_for_size(70_000);
        assert_eq!(t.iter().filter(|t| t.level() == 0).count(), 274);
        assert_eq!(
            names(&t[273..]),
            [
                "tile/0/273.p/112",
                "tile/1/000",
                "tile/1/001.p/17",
                "tile/2/000.p/1"
            ]
        );
        assert_eq!(
            tile_holding(7, 254, u64::MAX).unwrap().path(),
            "tile/7/000.p/255"
        );
        assert_eq!(tile_holding(7, 255, u64::MAX), None);

        let b = entry_bundles_for_size(513);
        assert_eq!(b.len(), 3);
        assert_eq!(b[2].path(), "tile/entries/002.p/1");
        assert_eq!(b[2].first_entry(), 512);
        assert_eq!(entry_bundles_for_size(512).len(), 2);
    }

    #[test]
    fn tile_contents() {
        let leaves: Vec<Hash> = (0..600u32).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        let store = MemoryHashes::from_leaf_hashes(&leaves);
        let t0 = tile_hashes(&store, &tile(0, 1, 256)).unwrap();
        assert_eq!(t0, leaves[256..512]);
        let t1 = tile_hashes(&store, &tile(1, 0, 2)).unwrap();
        assert_eq!(t1[1], crate::merkle::root(&leaves[256..512]));
        assert_eq!(node_hash(&t1[0], &t1[1]), root_at(&store, 512).unwrap());
        assert_eq!(t1[0], crate::merkle::root(&leaves[..256]));
        let bytes = encode_tile(&t0);
        assert_eq!(bytes.len(), 8192);
        assert_eq!(decode_tile(&bytes, 256).unwrap(), t0);
        assert!(decode_tile(&bytes, 255).is_err());
        assert!(decode_tile(&bytes[1..], 256).is_err());
        assert!(decode_tile(&[], 0).is_err());
        assert!(tile_hashes(&store, &tile(0, 2, 256)).is_err());
    }

    /// The published tiles of one size, served from a map that refuses
    /// anything else: the reader must use exactly `tiles_for_size`.
    fn published(store: &MemoryHashes, size: u64) -> HashMap<TileId, Vec<u8>> {
        tiles_for_size(size)
            .into_iter()
            .map(|t| (t, encode_tile(&tile_hashes(store, &t).unwrap())))
            .collect()
    }

    #[test]
    fn tile_reader_matches_memory_store() {
        let leaves: Vec<Hash> = (0..70_000u32)
            .map(|i| leaf_hash(&i.to_be_bytes()))
            .collect();
        let store = MemoryHashes::from_leaf_hashes(&leaves);
        for size in [
            1u64, 2, 3, 7, 8, 255, 256, 257, 300, 511, 512, 513, 4_095, 65_535, 65_536, 65_537,
            70_000,
        ] {
            let tiles = published(&store, size);
            let fetch = |id: &TileId| {
                tiles
                    .get(id)
                    .cloned()
                    .ok_or_else(|| Error::Tile(format!("{id} not published")))
            };
            let reader = TileHashReader::new(fetch, size);
            assert_eq!(reader.size(), size);
            assert_eq!(root_at(&reader, size), root_at(&store, size), "size {size}");
            for m in [
                0,
                1,
                size / 2,
                size.saturating_sub(2),
                size - 1,
                255,
                256,
                65_535,
            ] {
                if m >= size {
                    continue;
                }
                assert_eq!(
                    inclusion_proof(&reader, m, size),
                    inclusion_proof(&store, m, size),
                    "inclusion {m} {size}"
                );
                assert_eq!(
                    consistency_proof(&reader, m, size),
                    consistency_proof(&store, m, size),
                    "consistency {m} {size}"
                );
            }
            // Nothing beyond the tree, even though the store has it.
            assert!(matches!(
                reader.read_hashes(&[NodeId::new(0, size)]),
                Err(Error::HashStore(_))
            ));
            // A tile of the wrong length is refused.
            let short = |id: &TileId| Ok(vec![0u8; usize::from(id.width()) * 32 - 1]);
            let reader = TileHashReader::new(short, size);
            assert!(matches!(
                reader.read_hashes(&[NodeId::new(0, 0)]),
                Err(Error::Tile(_))
            ));
        }
    }

    #[test]
    fn bundles() {
        let big = vec![7u8; 65_535];
        let entries: Vec<&[u8]> = vec![b"", b"a", b"hello", &big];
        let bytes = encode_bundle(&entries).unwrap();
        assert_eq!(&bytes[..5], &[0, 0, 0, 1, b'a']);
        assert_eq!(bytes.len(), 2 + 3 + 7 + 65_537);
        assert_eq!(decode_bundle(&bytes, 4).unwrap(), entries);
        assert!(decode_bundle(&bytes, 3).is_err());
        assert!(decode_bundle(&bytes, 5).is_err());
        assert!(decode_bundle(&bytes[..bytes.len() - 1], 4).is_err());
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(decode_bundle(&trailing, 4).is_err());
        assert!(decode_bundle(&[0], 1).is_err());
        assert!(decode_bundle(&[0, 2, 1], 1).is_err());
        assert_eq!(decode_bundle(&[], 0).unwrap(), Vec::<&[u8]>::new());
        let too_big = vec![0u8; 65_536];
        assert_eq!(
            encode_bundle(&[b"ok", &too_big]),
            Err(Error::BundleEntryTooLong {
                position: 1,
                len: 65_536
            })
        );
    }

    #[test]
    fn tile_builder_yields_exactly_the_tiles_of_the_tree() {
        let leaves: Vec<Hash> = (0u32..70_000)
            .map(|i| leaf_hash(&i.to_be_bytes()))
            .collect();
        let mut builder = TileBuilder::new();
        let mut hashes = MemoryHashes::new();
        let mut built: HashMap<TileId, Vec<Hash>> = HashMap::new();
        for (n, leaf) in leaves.iter().enumerate() {
            for (id, h) in builder.push(*leaf) {
                built.insert(id, h);
            }
            hashes.append(*leaf);
            let size = n as u64 + 1;
            if [1, 255, 256, 257, 65_535, 65_536, 65_537, 70_000].contains(&size) {
                let mut now = built.clone();
                for (id, h) in builder.partial_tiles() {
                    now.insert(id, h);
                }
                let expected = tiles_for_size(size);
                for id in &expected {
                    assert_eq!(
                        now.get(id),
                        Some(&tile_hashes(&hashes, id).unwrap()),
                        "size {size} tile {id}"
                    );
                }
                let full_or_current: usize = expected.len();
                let partial_now = builder.partial_tiles().len();
                assert_eq!(
                    built.len() + partial_now,
                    full_or_current,
                    "size {size}: no extra tiles"
                );
            }
        }
    }
}
