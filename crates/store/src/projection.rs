//! Derived state: in sled the tree hashes (by tile), checkpoints, the catalog
//! projection (items, matters, requests) and idempotency keys; in memory the
//! leaf index.
//!
//! Everything here is **derived from the journal** and can be rebuilt by
//! replaying it: [`Projection::applied`] is the number of journal entries
//! whose effects are stored, and each [`Projection::apply`] writes the
//! effects of a run of entries together with the new high-water mark in one
//! atomic sled batch. sled's own flush is not a durability point (on Linux,
//! sled 0.34 `flush` issues `sync_file_range`), and it does not need to be:
//! after a crash the node replays the journal from `applied`.
//!
//! All data lives in one sled tree with one-byte key prefixes, so one batch
//! covers every kind of record. A node's projection is its own database;
//! the county keeps each mirrored log's projection as one tree of a
//! database they all share ([`Projection::open_shared`]):
//!
//! | prefix | key | value |
//! |---|---|---|
//! | `M` | `applied`, `origin`, `layout` | u64be / text / u8 |
//! | `t` | tile level (1) ‖ tile index (u64be) | stored hashes of one hash tile, see below |
//! | `c` | size (u64be) | signed checkpoint note |
//! | `i` | item id | [`ItemRecord`] (JSON) |
//! | `d` | content digest (32) | item id |
//! | `a` | content digest (32) | request id, for the content of a request answer |
//! | `m` | matter id | [`MatterRecord`] (JSON) |
//! | `r` | request id | [`RequestRecord`] (JSON) |
//! | `k` | idempotency key | [`IdempotencyRecord`] (JSON) |
//!
//! **Tree hashes are stored by tile** (FORMAT.md § 9.1: tile height 8, up to
//! 256 hashes): the value of tile `(L, N)` is `u16be(W)` followed by the
//! stored hashes (FORMAT.md § 8) of tree levels `8L … 8L+7` that lie under
//! the tile, level by level: `W` hashes of level `8L` (the tile's own
//! hashes), then `⌊W/2⌋` of level `8L+1`, …, `⌊W/128⌋` of level `8L+7`.
//! Storing the inner levels (about twice the bytes of the bare tile) keeps
//! every stored-hash read a lookup, with no hashing on the read path. One
//! apply rewrites only the right-edge tile of each level it touched, so a
//! run of entries costs a few sled writes instead of about two per entry.
//!
//! **The leaf index** (leaf hash → entry index) is not stored: the leaf
//! hashes are the level-0 tiles. It is kept in memory as the first 4 bytes
//! of each leaf hash beside its index, sorted (12 bytes per entry, rebuilt
//! from the level-0 tiles at open), and a lookup checks each candidate's
//! full hash against the tile. A sled key
//! per entry, at a random place in the key space, was the costliest write of
//! an append and the largest part of sled's memory.
//!
//! The layout is marked by `Mlayout`; a database written by an older
//! layout (one key per stored hash) is detected at open and its derived
//! records are dropped, so the node rebuilds them from the journal.
use std::collections::HashMap;
use std::path::Path;

use gongkai_core::Hash;
use gongkai_core::calendar::{ClockEvent, RequestClock};
use gongkai_core::catalog::{
    CaseState, Catalog, ItemState, ItemStatus, MatterState, RequestState, Touched,
};
use gongkai_core::date::Date;
use gongkai_core::event::{Event, Kind, pb};
use gongkai_core::merkle::{HashReader, NodeId};
use gongkai_core::types::{ItemId, MatterId, RequestId};
use prost::Message as _;
use serde::{Deserialize, Serialize};

use crate::StoreError;

/// A content reference as stored in records.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContentRecord {
    /// The salted digest.
    pub digest: Hash,
    /// Length in bytes.
    pub length: u64,
    /// Media type.
    pub media_type: String,
}

impl ContentRecord {
    fn from_pb(c: Option<&pb::ContentRef>) -> ContentRecord {
        let c = c.cloned().unwrap_or_default();
        ContentRecord {
            digest: Hash::from_slice(&c.digest).unwrap_or(Hash::ZERO),
            length: c.length,
            media_type: c.media_type,
        }
    }
}

/// A reference to a related item.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelatedRecord {
    /// Origin (empty: same log).
    pub origin: String,
    /// Item id.
    pub item_id: String,
    /// `pb::Relation` value.
    pub relation: i32,
}

/// The projection of one item.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemRecord {
    /// Item id.
    pub item_id: String,
    /// The matter it fulfils.
    pub matter_id: String,
    /// Current title.
    pub title: String,
    /// Content of every version, oldest first; the last is current.
    pub versions: Vec<ContentRecord>,
    /// Status.
    pub status: ItemStatus,
    /// Date the information was formed.
    pub date_formed: String,
    /// Date of the last change, if amended.
    pub date_changed: Option<String>,
    /// Period covered (periodic matters).
    pub period: String,
    /// Bulk-imported (excluded from lateness).
    pub imported: bool,
    /// Legal basis given at publication.
    pub legal_basis: String,
    /// Related items.
    pub related: Vec<RelatedRecord>,
    /// Digests whose content was redacted.
    pub redacted: Vec<Hash>,
    /// Index of the publishing entry.
    pub published_index: u64,
    /// Time of the publishing entry, Unix ms.
    pub published_time_ms: u64,
    /// Indexes of every entry about the item, in order.
    pub history: Vec<u64>,
}

impl ItemRecord {
    /// The current content (of the newest version); `None` only for a
    /// damaged record (Published creates the first version).
    pub fn current(&self) -> Option<&ContentRecord> {
        self.versions.last()
    }

    /// Media type of the version whose content has `digest`.
    pub fn content_media_type(&self, digest: &Hash) -> String {
        self.versions
            .iter()
            .find(|v| v.digest == *digest)
            .map(|v| v.media_type.clone())
            .unwrap_or_default()
    }

    /// Index of the newest entry about the item.
    pub fn last_index(&self) -> u64 {
        self.history.last().copied().unwrap_or(self.published_index)
    }

    /// The catalog fold's state of the item, which this record holds in
    /// full (see [`Projection::load_catalog`]).
    ///
    /// # Errors
    /// [`StoreError::Projection`] for a damaged record.
    pub fn catalog_state(&self) -> Result<ItemState, StoreError> {
        let damaged = |e: gongkai_core::Error| {
            StoreError::Projection(format!("item record {:?} is damaged: {e}", self.item_id))
        };
        Ok(ItemState {
            matter: MatterId::new(&self.matter_id).map_err(damaged)?,
            status: self.status,
            date_formed: Date::parse(&self.date_formed).map_err(damaged)?,
            versions: self.versions.iter().map(|v| v.digest).collect(),
            redacted: self.redacted.clone(),
            published_at: self.published_index,
        })
    }
}

/// The projection of one matter.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatterRecord {
    /// Matter id.
    pub matter_id: String,
    /// Canonical protobuf of the current `pb::Matter`.
    pub matter: Vec<u8>,
    /// False once retired.
    pub active: bool,
    /// Index of the defining entry.
    pub defined_index: u64,
    /// Indexes of every entry about the matter.
    pub history: Vec<u64>,
}

impl MatterRecord {
    /// The current definition.
    pub fn matter(&self) -> pb::Matter {
        pb::Matter::decode(self.matter.as_slice()).unwrap_or_default()
    }

    /// The catalog fold's state of the matter.
    pub fn catalog_state(&self) -> MatterState {
        let mut state = MatterState::of(Some(&self.matter()), self.defined_index);
        state.active = self.active;
        state
    }
}

/// The projection of one disclosure request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestRecord {
    /// Request id.
    pub request_id: String,
    /// Subject.
    pub subject: String,
    /// The answer clock.
    pub clock: RequestClock,
    /// `pb::Decision` of the answer (0 while open).
    pub decision: i32,
    /// Index of the receiving entry.
    pub received_index: u64,
    /// Indexes of every entry about the request.
    pub history: Vec<u64>,
    /// The content the answer commits to (`request_answered.content`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer_content: Option<ContentRecord>,
    /// `pb::ApplicantCategory` (0: not recorded).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub applicant: i32,
    /// `pb::Outcome` of the answer (0 while open, or not recorded).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub outcome: i32,
    /// 复议/诉讼 cases about the request.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cases: Vec<CaseState>,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's signature
fn is_zero(v: &i32) -> bool {
    *v == 0
}

impl RequestRecord {
    /// The catalog fold's state of the request.
    pub fn catalog_state(&self) -> RequestState {
        RequestState {
            clock: self.clock.clone(),
            received_at: self.received_index,
            cases: self.cases.clone(),
        }
    }
}

/// What an idempotency key stands for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    /// BLAKE3 of the request as the client sent it.
    pub fingerprint: Hash,
    /// Index of its first entry.
    pub start: u64,
    /// Number of entries it appended.
    pub count: u64,
}

/// The derived records of one log: a node's own sled database, or one
/// tree of a database the county's mirrors share.
pub struct Projection {
    tree: sled::Tree,
    leaves: std::sync::RwLock<LeafIndex>,
}

/// Leaf hash → index, in memory (see the module docs): the first 4 bytes
/// of every leaf hash beside its index, 12 bytes per entry, sorted for a
/// binary search, plus a short unsorted run of the newest leaves that is
/// merged in when it fills. A prefix may be shared (about n / 2^32 of the
/// lookups meet two candidates); every candidate is checked against the
/// full hash in the level-0 tile.
#[derive(Default)]
struct LeafIndex {
    /// Prefixes, sorted.
    prefixes: Vec<u32>,
    /// `indexes[i]` is the entry whose leaf hash starts with `prefixes[i]`.
    indexes: Vec<u64>,
    /// The newest leaves, in append order.
    recent: Vec<(u32, u64)>,
    /// Leaves indexed: always the leaves `0..next`, in order.
    next: u64,
}

impl LeafIndex {
    fn prefix(leaf: &Hash) -> u32 {
        let mut p = [0u8; 4];
        p.copy_from_slice(&leaf.0[..4]);
        u32::from_be_bytes(p)
    }

    /// The newest leaves kept unsorted: enough that merging (which moves
    /// the sorted part) is rare, few enough that scanning them is quick.
    fn recent_max(&self) -> usize {
        (self.prefixes.len() / 64).clamp(4096, 65_536)
    }

    fn insert(&mut self, leaf: &Hash, index: u64) {
        self.next = index + 1;
        self.recent.push((LeafIndex::prefix(leaf), index));
        if self.recent.len() >= self.recent_max() {
            self.merge();
        }
    }

    /// Merges the newest leaves into the sorted part, in place from the
    /// back (no second copy of the sorted part).
    fn merge(&mut self) {
        let mut recent = std::mem::take(&mut self.recent);
        recent.sort_unstable();
        let (n, m) = (self.prefixes.len(), recent.len());
        self.prefixes.resize(n + m, 0);
        self.indexes.resize(n + m, 0);
        let (mut i, mut k) = (n, n + m);
        for &(p, index) in recent.iter().rev() {
            while i > 0 && self.prefixes[i - 1] > p {
                i -= 1;
                k -= 1;
                self.prefixes[k] = self.prefixes[i];
                self.indexes[k] = self.indexes[i];
            }
            k -= 1;
            self.prefixes[k] = p;
            self.indexes[k] = index;
        }
        recent.clear();
        self.recent = recent;
    }

    /// Indexes whose leaf hash starts like `leaf`'s, in no particular order.
    fn candidates(&self, leaf: &Hash) -> Vec<u64> {
        let p = LeafIndex::prefix(leaf);
        let from = self.prefixes.partition_point(|&x| x < p);
        let to = from + self.prefixes[from..].partition_point(|&x| x == p);
        let mut out = self.indexes[from..to].to_vec();
        out.extend(self.recent.iter().filter(|r| r.0 == p).map(|r| r.1));
        out
    }
}

const APPLIED: &[u8] = b"Mapplied";
const ORIGIN: &[u8] = b"Morigin";
/// Marks the record layout; absent in the first layout (one `h` key per
/// stored hash).
const LAYOUT: &[u8] = b"Mlayout";
/// The layout this build writes: tree hashes stored by tile, no stored
/// leaf index, request-answer content indexed under `a` (layout 3 lacked
/// that index: such a database is rebuilt so answers' content is served).
const LAYOUT_TILES: &[u8] = b"4";

/// Tree levels per tile (FORMAT.md § 9.1).
const TILE_HEIGHT: u8 = 8;
/// Hashes per full tile.
const TILE_WIDTH: u64 = 256;

fn key(prefix: u8, rest: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + rest.len());
    k.push(prefix);
    k.extend_from_slice(rest);
    k
}

/// Where a stored hash lives: `(tile level, tile index, level in tile,
/// position in that level's row)`.
fn tile_slot(id: NodeId) -> Option<(u8, u64, u8, usize)> {
    let level = id.level / TILE_HEIGHT;
    let within = id.level % TILE_HEIGHT;
    let per_tile = TILE_WIDTH >> within;
    let index = id.index / per_tile;
    let pos = usize::try_from(id.index % per_tile).ok()?;
    Some((level, index, within, pos))
}

fn tile_key(level: u8, index: u64) -> Vec<u8> {
    let mut k = vec![b't', level];
    k.extend_from_slice(&index.to_be_bytes());
    k
}

/// Offset in a tile value (after the width) of the first hash of row
/// `within`, for a tile of width `w`.
fn row_start(w: usize, within: u8) -> usize {
    (0..within).map(|k| w >> k).sum::<usize>() * 32
}

/// The value length of a tile of width `w`.
fn tile_value_len(w: usize) -> usize {
    2 + row_start(w, TILE_HEIGHT)
}

/// The width of a stored tile value, checked against its length.
fn tile_width(v: &[u8]) -> Option<usize> {
    let w = usize::from(u16::from_be_bytes(v.get(..2)?.try_into().ok()?));
    (w >= 1 && w as u64 <= TILE_WIDTH && v.len() == tile_value_len(w)).then_some(w)
}

/// The stored hash at row `within`, position `pos` of a tile value.
fn tile_hash(v: &[u8], within: u8, pos: usize) -> Option<Hash> {
    let w = tile_width(v)?;
    if pos >= w >> within {
        return None;
    }
    let at = 2 + row_start(w, within) + pos * 32;
    Hash::from_slice(v.get(at..at + 32)?).ok()
}

/// A tile being extended: its rows, level `8L + k` in `rows[k]`.
struct TileRows {
    rows: [Vec<Hash>; TILE_HEIGHT as usize],
}

impl TileRows {
    fn decode(v: &[u8]) -> Option<TileRows> {
        let w = tile_width(v)?;
        let mut rows: [Vec<Hash>; TILE_HEIGHT as usize] = Default::default();
        let mut at = 2;
        for (k, row) in rows.iter_mut().enumerate() {
            for _ in 0..(w >> k) {
                row.push(Hash::from_slice(v.get(at..at + 32)?).ok()?);
                at += 32;
            }
        }
        Some(TileRows { rows })
    }

    fn encode(&self) -> Vec<u8> {
        let w = self.rows[0].len();
        let mut v = Vec::with_capacity(tile_value_len(w));
        v.extend_from_slice(&u16::try_from(w).unwrap_or(u16::MAX).to_be_bytes());
        for row in &self.rows {
            for h in row {
                v.extend_from_slice(&h.0);
            }
        }
        v
    }
}

fn be(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.try_into().ok()?))
}

/// Drops every record derived from the journal (keeping the origin,
/// checkpoint notes and idempotency records, which are not), and marks the
/// current layout: the next [`Projection::applied`] is 0.
fn drop_derived(db: &sled::Tree) -> Result<(), StoreError> {
    let mut batch = sled::Batch::default();
    for k in db.iter().keys() {
        let k = k.map_err(sled_err)?;
        if !matches!(k.first(), Some(b'c' | b'k')) && k.as_ref() != ORIGIN {
            batch.remove(k);
        }
    }
    batch.insert(LAYOUT, LAYOUT_TILES);
    db.apply_batch(batch).map_err(sled_err)
}

/// Effects of a run of entries, staged before one atomic write.
struct Staged<'a> {
    db: &'a sled::Tree,
    writes: HashMap<Vec<u8>, Vec<u8>>,
}

impl Staged<'_> {
    fn get<T: for<'de> Deserialize<'de>>(&self, k: &[u8]) -> Result<Option<T>, StoreError> {
        let raw = match self.writes.get(k) {
            Some(v) => Some(v.clone()),
            None => self.db.get(k).map_err(sled_err)?.map(|v| v.to_vec()),
        };
        raw.map(|v| decode(k, &v)).transpose()
    }

    fn put<T: Serialize>(&mut self, k: Vec<u8>, value: &T) -> Result<(), StoreError> {
        let v = serde_json::to_vec(value)
            .map_err(|e| StoreError::Projection(format!("encode: {e}")))?;
        self.writes.insert(k, v);
        Ok(())
    }
}

fn decode<T: for<'de> Deserialize<'de>>(k: &[u8], v: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(v).map_err(|e| {
        StoreError::Projection(format!(
            "record {:?} does not decode: {e}",
            String::from_utf8_lossy(k)
        ))
    })
}

/// Opens a sled database, waiting up to 2 s while another handle still
/// holds its file lock. sled 0.34's lock outlives a dropped `Db` for a
/// moment (its flusher thread lets go last), so a reopen in the same
/// process, or right after the previous process exited, may find it held.
/// sled reports a held lock only in its message.
///
/// # Errors
/// sled's error, once the lock stays held or on any other failure.
pub fn open_sled(config: &sled::Config) -> sled::Result<sled::Db> {
    let mut tries = 0;
    loop {
        match config.open() {
            Err(sled::Error::Io(e))
                if e.to_string().starts_with("could not acquire lock") && tries < 100 =>
            {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            r => return r,
        }
    }
}

fn sled_err(e: sled::Error) -> StoreError {
    StoreError::Projection(format!("sled: {e}"))
}

/// One journal entry and its decoded event, as applied to the projection.
pub struct Applied<'a> {
    /// Log index.
    pub index: u64,
    /// Leaf hash of the entry.
    pub leaf_hash: Hash,
    /// The decoded event.
    pub event: &'a Event,
}

impl Projection {
    /// Opens (or creates) the projection database at `path` for `origin`,
    /// with a page cache of at most `cache_bytes` and an empty leaf index,
    /// for a caller that reads every entry at start anyway (a node): it
    /// hands the leaf hashes of the entries already applied to
    /// [`Projection::index_leaves`], in order, before anything looks a leaf
    /// up. Reading every level-0 tile back instead would pull them all
    /// through sled's cache. Until the index has caught up,
    /// [`Projection::apply`] refuses to run.
    ///
    /// A database in an older record layout is not read: its derived
    /// records are dropped (checkpoint notes and idempotency records are
    /// kept) and [`Projection::applied`] starts from 0, so the owner
    /// replays the journal into it.
    ///
    /// # Errors
    /// [`StoreError::Projection`] if sled fails or the database belongs to
    /// another origin.
    pub fn open_unindexed(
        path: &Path,
        origin: &str,
        cache_bytes: u64,
    ) -> Result<Projection, StoreError> {
        let config = sled::Config::new().path(path).cache_capacity(cache_bytes);
        let db = open_sled(&config).map_err(sled_err)?;
        Projection::on_tree((*db).clone(), origin, &path.display())
    }

    /// Opens (or creates) the projection of `origin` as one tree of `db`, a
    /// database many logs share: the county keeps every mirror's projection
    /// in one, so a hundred logs cost one page table, one cache budget and
    /// one flusher thread instead of a hundred of each. Otherwise as
    /// [`Projection::open_unindexed`].
    ///
    /// # Errors
    /// As [`Projection::open_unindexed`].
    pub fn open_shared(db: &sled::Db, origin: &str) -> Result<Projection, StoreError> {
        let mut name = b"projection ".to_vec();
        name.extend_from_slice(origin.as_bytes());
        let tree = db.open_tree(name).map_err(sled_err)?;
        Projection::on_tree(
            tree,
            origin,
            &format_args!("the shared projection of {origin:?}"),
        )
    }

    fn on_tree(
        tree: sled::Tree,
        origin: &str,
        place: &dyn std::fmt::Display,
    ) -> Result<Projection, StoreError> {
        match tree.get(ORIGIN).map_err(sled_err)? {
            Some(o) if o.as_ref() != origin.as_bytes() => {
                return Err(StoreError::Projection(format!(
                    "{place} belongs to origin {:?}, not {origin:?}",
                    String::from_utf8_lossy(&o)
                )));
            }
            Some(_) => {
                if tree.get(LAYOUT).map_err(sled_err)?.as_deref() != Some(LAYOUT_TILES) {
                    drop_derived(&tree)?;
                }
            }
            None => {
                let mut batch = sled::Batch::default();
                batch.insert(ORIGIN, origin.as_bytes());
                batch.insert(LAYOUT, LAYOUT_TILES);
                tree.apply_batch(batch).map_err(sled_err)?;
            }
        }
        Ok(Projection {
            tree,
            leaves: std::sync::RwLock::default(),
        })
    }

    /// Replaces every record of this projection with those of `from`, the
    /// same log's projection in another database (a mirror's own database
    /// moved into the shared one), and flushes. The applied mark is
    /// written last, so a copy cut short leaves a projection that starts
    /// from 0; a caller that keeps `from` until this returns can simply
    /// copy again. Both must be unindexed. Returns the records copied.
    ///
    /// # Errors
    /// [`StoreError::Projection`] if the origins differ or sled fails.
    pub fn copy_from(&self, from: &Projection) -> Result<u64, StoreError> {
        let (ours, theirs) = (
            self.tree.get(ORIGIN).map_err(sled_err)?,
            from.tree.get(ORIGIN).map_err(sled_err)?,
        );
        if ours != theirs {
            return Err(StoreError::Projection(
                "cannot copy a projection of another origin".into(),
            ));
        }
        self.tree.clear().map_err(sled_err)?;
        let mut copied = 0;
        let mut batch = sled::Batch::default();
        let mut in_batch = 0;
        for kv in from.tree.iter() {
            let (k, v) = kv.map_err(sled_err)?;
            if k.as_ref() == APPLIED {
                continue;
            }
            batch.insert(k, v);
            in_batch += 1;
            copied += 1;
            if in_batch == 4096 {
                self.tree
                    .apply_batch(std::mem::take(&mut batch))
                    .map_err(sled_err)?;
                in_batch = 0;
            }
        }
        self.tree.apply_batch(batch).map_err(sled_err)?;
        if let Some(applied) = from.tree.get(APPLIED).map_err(sled_err)? {
            self.tree.insert(APPLIED, applied).map_err(sled_err)?;
            copied += 1;
        }
        self.flush()?;
        Ok(copied)
    }

    /// Opens the projection at `path` for the log `origin` with `cache_bytes`
    /// of sled cache, and rebuilds the in-memory leaf index from the stored
    /// level-0 tiles.
    ///
    /// # Errors
    /// [`StoreError::Projection`] if the database belongs to another origin,
    /// a tile is missing or damaged, or sled fails.
    pub fn open(path: &Path, origin: &str, cache_bytes: u64) -> Result<Projection, StoreError> {
        let p = Projection::open_unindexed(path, origin, cache_bytes)?;
        p.load_leaf_index()?;
        Ok(p)
    }

    /// Adds the leaf hashes of entries `first..first + leaves.len()` to the
    /// leaf index, which must hold exactly the entries before `first`.
    ///
    /// # Errors
    /// [`StoreError::Projection`] if `first` is not where the index ends.
    pub fn index_leaves(&self, first: u64, leaves: &[Hash]) -> Result<(), StoreError> {
        let mut index = self.leaves.write().unwrap_or_else(|p| p.into_inner());
        if index.next != first {
            return Err(StoreError::Projection(format!(
                "the leaf index holds {} entries; cannot index from {first}",
                index.next
            )));
        }
        for (leaf, i) in leaves.iter().zip(first..) {
            index.insert(leaf, i);
        }
        Ok(())
    }

    /// Rebuilds the in-memory leaf index from the level-0 tiles.
    fn load_leaf_index(&self) -> Result<(), StoreError> {
        let applied = self.applied()?;
        // Through the same runs as live appends: the sorted part grows in
        // place, with no second copy of the whole index at any moment.
        let mut index = LeafIndex::default();
        for tile in 0..applied.div_ceil(TILE_WIDTH) {
            let v = self.tree.get(tile_key(0, tile)).map_err(sled_err)?;
            let rows = v.as_deref().and_then(TileRows::decode).ok_or_else(|| {
                StoreError::Projection(format!("level-0 tile {tile} is missing or damaged"))
            })?;
            for (i, leaf) in rows.rows[0].iter().enumerate() {
                index.insert(leaf, tile * TILE_WIDTH + i as u64);
            }
        }
        *self.leaves.write().unwrap_or_else(|p| p.into_inner()) = index;
        Ok(())
    }

    /// Number of journal entries whose effects are stored.
    ///
    /// # Errors
    /// [`StoreError::Projection`] on a sled failure or a damaged value.
    pub fn applied(&self) -> Result<u64, StoreError> {
        match self.tree.get(APPLIED).map_err(sled_err)? {
            None => Ok(0),
            Some(v) => {
                be(&v).ok_or_else(|| StoreError::Projection("applied mark is damaged".into()))
            }
        }
    }

    /// Stores the effects of entries `first..first + entries.len()` (which
    /// must start at [`Projection::applied`]), the tree hashes their appends
    /// completed, and idempotency records, in one atomic batch.
    ///
    /// # Errors
    /// [`StoreError::Projection`] if `first` is not the high-water mark or
    /// sled fails.
    pub fn apply(
        &self,
        entries: &[Applied<'_>],
        nodes: &[(NodeId, Hash)],
        keys: &[(String, IdempotencyRecord)],
    ) -> Result<(), StoreError> {
        let Some(first) = entries.first() else {
            return Ok(());
        };
        let applied = self.applied()?;
        if first.index != applied {
            return Err(StoreError::Projection(format!(
                "projection holds {applied} entries; cannot apply from index {}",
                first.index
            )));
        }
        let indexed = self.leaves.read().unwrap_or_else(|p| p.into_inner()).next;
        if indexed != applied {
            return Err(StoreError::Projection(format!(
                "the leaf index holds {indexed} of the {applied} applied entries; index the rest first"
            )));
        }
        let mut s = Staged {
            db: &self.tree,
            writes: HashMap::new(),
        };
        for a in entries {
            apply_event(&mut s, a)?;
        }
        store_nodes(&self.tree, &mut s.writes, nodes)?;
        for (k, rec) in keys {
            s.put(key(b'k', k.as_bytes()), rec)?;
        }
        let end = entries.last().map_or(applied, |a| a.index + 1);
        let mut batch = sled::Batch::default();
        for (k, v) in s.writes {
            batch.insert(k, v);
        }
        batch.insert(APPLIED, &end.to_be_bytes());
        self.tree.apply_batch(batch).map_err(sled_err)?;
        let mut leaves = self.leaves.write().unwrap_or_else(|p| p.into_inner());
        for a in entries {
            leaves.insert(&a.leaf_hash, a.index);
        }
        Ok(())
    }

    /// Stores idempotency records (loaded from the node's durable key file
    /// at start; re-storing a record is harmless).
    ///
    /// # Errors
    /// [`StoreError::Projection`] on a sled failure.
    pub fn put_idempotency(&self, keys: &[(String, IdempotencyRecord)]) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for (k, rec) in keys {
            let v = serde_json::to_vec(rec)
                .map_err(|e| StoreError::Projection(format!("encode: {e}")))?;
            batch.insert(key(b'k', k.as_bytes()), v);
        }
        self.tree.apply_batch(batch).map_err(sled_err)
    }

    /// Stores a signed checkpoint of `size`.
    ///
    /// # Errors
    /// [`StoreError::Projection`] on a sled failure.
    pub fn put_checkpoint(&self, size: u64, note: &str) -> Result<(), StoreError> {
        self.tree
            .insert(key(b'c', &size.to_be_bytes()), note.as_bytes())
            .map_err(sled_err)?;
        Ok(())
    }

    /// The signed checkpoint of `size`, if stored.
    ///
    /// # Errors
    /// [`StoreError::Projection`] on a sled failure.
    pub fn checkpoint(&self, size: u64) -> Result<Option<String>, StoreError> {
        Ok(self
            .tree
            .get(key(b'c', &size.to_be_bytes()))
            .map_err(sled_err)?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// The newest stored checkpoint: `(size, note)`.
    ///
    /// # Errors
    /// [`StoreError::Projection`] on a sled failure.
    pub fn latest_checkpoint(&self) -> Result<Option<(u64, String)>, StoreError> {
        let last = self
            .tree
            .scan_prefix([b'c'])
            .next_back()
            .transpose()
            .map_err(sled_err)?;
        Ok(last.and_then(|(k, v)| Some((be(&k[1..])?, String::from_utf8_lossy(&v).into_owned()))))
    }

    /// Index of the entry with this leaf hash.
    ///
    /// # Errors
    /// [`StoreError::Projection`] on a sled failure.
    pub fn index_of_leaf(&self, leaf: &Hash) -> Result<Option<u64>, StoreError> {
        let candidates = self
            .leaves
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .candidates(leaf);
        for index in candidates {
            let stored = self
                .read_hashes(&[NodeId::new(0, index)])
                .map_err(|e| StoreError::Projection(e.to_string()))?;
            if stored.first() == Some(leaf) {
                return Ok(Some(index));
            }
        }
        Ok(None)
    }

    /// The record of an item.
    ///
    /// # Errors
    /// [`StoreError::Projection`] on a sled failure or damaged record.
    pub fn item(&self, id: &str) -> Result<Option<ItemRecord>, StoreError> {
        self.record(b'i', id)
    }

    /// The item whose content (current or earlier version) has `digest`.
    ///
    /// # Errors
    /// As [`Projection::item`].
    pub fn item_of_content(&self, digest: &Hash) -> Result<Option<ItemRecord>, StoreError> {
        match self.tree.get(key(b'd', &digest.0)).map_err(sled_err)? {
            Some(id) => self.item(&String::from_utf8_lossy(&id)),
            None => Ok(None),
        }
    }

    /// The request whose answer commits to content with `digest`.
    ///
    /// # Errors
    /// As [`Projection::item`].
    pub fn request_of_content(&self, digest: &Hash) -> Result<Option<RequestRecord>, StoreError> {
        match self.tree.get(key(b'a', &digest.0)).map_err(sled_err)? {
            Some(id) => self.request(&String::from_utf8_lossy(&id)),
            None => Ok(None),
        }
    }

    /// The requests whose answers commit to content, from the index of
    /// answer digests (reads only those records, not every request).
    pub fn answered_with_content(
        &self,
    ) -> impl Iterator<Item = Result<RequestRecord, StoreError>> + '_ {
        self.tree.scan_prefix([b'a']).filter_map(|kv| {
            let id = match kv {
                Ok((_, id)) => id,
                Err(e) => return Some(Err(sled_err(e))),
            };
            self.request(&String::from_utf8_lossy(&id)).transpose()
        })
    }

    /// The record of a matter.
    ///
    /// # Errors
    /// As [`Projection::item`].
    pub fn matter(&self, id: &str) -> Result<Option<MatterRecord>, StoreError> {
        self.record(b'm', id)
    }

    /// The record of a request.
    ///
    /// # Errors
    /// As [`Projection::item`].
    pub fn request(&self, id: &str) -> Result<Option<RequestRecord>, StoreError> {
        self.record(b'r', id)
    }

    /// Loads into `into` the catalog records that `touched` names and that
    /// `into` lacks, as the fold left them after the last applied entry.
    /// The projection's records hold everything the fold keeps, so a node
    /// keeps only a small working catalog in memory: the records of entries
    /// not yet applied here, plus what it loaded for the next write.
    ///
    /// # Errors
    /// As [`Projection::item`], or a damaged record.
    pub fn load_catalog(&self, touched: &Touched, into: &mut Catalog) -> Result<(), StoreError> {
        for id in &touched.items {
            if !into.items.contains_key(id)
                && let Some(rec) = self.item(id.as_str())?
            {
                into.items.insert(id.clone(), rec.catalog_state()?);
            }
        }
        if let Some(id) = &touched.matter
            && !into.matters.contains_key(id)
            && let Some(rec) = self.matter(id.as_str())?
        {
            into.matters.insert(id.clone(), rec.catalog_state());
        }
        if let Some(id) = &touched.request
            && !into.requests.contains_key(id)
            && let Some(rec) = self.request(id.as_str())?
        {
            into.requests.insert(id.clone(), rec.catalog_state());
        }
        Ok(())
    }

    /// The whole catalog fold state the records hold (memory grows with
    /// the catalog: for offline checks, which compare it with a fresh fold
    /// of the journal).
    ///
    /// # Errors
    /// [`StoreError::Projection`] on a sled failure or a damaged record.
    pub fn catalog(&self) -> Result<Catalog, StoreError> {
        fn each<T: for<'de> Deserialize<'de>>(
            db: &sled::Tree,
            prefix: u8,
            mut f: impl FnMut(T) -> Result<(), StoreError>,
        ) -> Result<(), StoreError> {
            for kv in db.scan_prefix([prefix]) {
                let (k, v) = kv.map_err(sled_err)?;
                f(decode(&k, &v)?)?;
            }
            Ok(())
        }
        let damaged = |what: &str, id: &str, e: gongkai_core::Error| {
            StoreError::Projection(format!("{what} record {id:?} is damaged: {e}"))
        };
        let mut c = Catalog::new();
        each(&self.tree, b'i', |r: ItemRecord| {
            let id = ItemId::new(&r.item_id).map_err(|e| damaged("item", &r.item_id, e))?;
            c.items.insert(id, r.catalog_state()?);
            Ok(())
        })?;
        each(&self.tree, b'm', |r: MatterRecord| {
            let id = MatterId::new(&r.matter_id).map_err(|e| damaged("matter", &r.matter_id, e))?;
            c.matters.insert(id, r.catalog_state());
            Ok(())
        })?;
        each(&self.tree, b'r', |r: RequestRecord| {
            let id =
                RequestId::new(&r.request_id).map_err(|e| damaged("request", &r.request_id, e))?;
            c.requests.insert(id, r.catalog_state());
            Ok(())
        })?;
        Ok(c)
    }

    /// What an idempotency key stands for.
    ///
    /// # Errors
    /// As [`Projection::item`].
    pub fn idempotency(&self, k: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
        self.record(b'k', k)
    }

    fn record<T: for<'de> Deserialize<'de>>(
        &self,
        prefix: u8,
        id: &str,
    ) -> Result<Option<T>, StoreError> {
        let k = key(prefix, id.as_bytes());
        self.tree
            .get(&k)
            .map_err(sled_err)?
            .map(|v| decode(&k, &v))
            .transpose()
    }

    /// Items in id order, starting after `after` (exclusive).
    pub fn items_after(
        &self,
        after: &str,
    ) -> impl Iterator<Item = Result<ItemRecord, StoreError>> + '_ {
        self.records_after(b'i', after)
    }

    /// Matters in id order.
    pub fn matters(&self) -> impl Iterator<Item = Result<MatterRecord, StoreError>> + '_ {
        self.records_after(b'm', "")
    }

    /// Requests in id order, starting after `after` (exclusive).
    pub fn requests_after(
        &self,
        after: &str,
    ) -> impl Iterator<Item = Result<RequestRecord, StoreError>> + '_ {
        self.records_after(b'r', after)
    }

    fn records_after<T: for<'de> Deserialize<'de>>(
        &self,
        prefix: u8,
        after: &str,
    ) -> impl Iterator<Item = Result<T, StoreError>> + '_ {
        let start = key(prefix, after.as_bytes());
        let end = vec![prefix + 1];
        let skip = start.clone();
        self.tree
            .range(start..end)
            .filter(move |r| !matches!(r, Ok((k, _)) if k.as_ref() == skip.as_slice()))
            .map(|r| {
                let (k, v) = r.map_err(sled_err)?;
                decode(&k, &v)
            })
    }

    /// Every stored record, in key order, as `(key, value)` (for comparing a
    /// rebuilt projection with a live one).
    pub fn dump(&self) -> impl Iterator<Item = Result<(Vec<u8>, Vec<u8>), StoreError>> + '_ {
        self.tree
            .iter()
            .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())).map_err(sled_err))
    }

    /// Flushes sled's buffers (not a durability point, see the module docs).
    ///
    /// # Errors
    /// [`StoreError::Projection`] on a sled failure.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.tree.flush().map(drop).map_err(sled_err)
    }
}

/// Adds the completed subtrees `nodes` (in the order [`TreeState::append`]
/// reports them) to their tiles, staged in `writes`. A tile row only ever
/// grows at its end; a hash for any other position means the caller's tree
/// and the stored one disagree.
///
/// [`TreeState::append`]: gongkai_core::merkle::TreeState::append
fn store_nodes(
    db: &sled::Tree,
    writes: &mut HashMap<Vec<u8>, Vec<u8>>,
    nodes: &[(NodeId, Hash)],
) -> Result<(), StoreError> {
    let mut tiles: HashMap<(u8, u64), TileRows> = HashMap::new();
    for (id, h) in nodes {
        let Some((level, index, within, pos)) = tile_slot(*id) else {
            continue;
        };
        let tile = match tiles.entry((level, index)) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                let stored = db.get(tile_key(level, index)).map_err(sled_err)?;
                let rows = match stored {
                    None => TileRows {
                        rows: Default::default(),
                    },
                    Some(v) => TileRows::decode(&v).ok_or_else(|| {
                        StoreError::Projection(format!("tile {level}/{index} is damaged"))
                    })?,
                };
                e.insert(rows)
            }
        };
        let row = &mut tile.rows[usize::from(within)];
        if pos != row.len() {
            return Err(StoreError::Projection(format!(
                "stored hash level {} index {} does not extend tile {level}/{index} (row {within} holds {})",
                id.level,
                id.index,
                row.len()
            )));
        }
        row.push(*h);
    }
    for ((level, index), rows) in tiles {
        writes.insert(tile_key(level, index), rows.encode());
    }
    Ok(())
}

impl HashReader for Projection {
    /// Reads each stored hash out of its tile; a proof touches a few tiles
    /// per tile level, each read once per call.
    fn read_hashes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, gongkai_core::Error> {
        let missing = |id: &NodeId| {
            gongkai_core::Error::HashStore(format!(
                "no stored hash at level {} index {}",
                id.level, id.index
            ))
        };
        let mut tiles: Vec<((u8, u64), sled::IVec)> = Vec::new();
        ids.iter()
            .map(|id| {
                let (level, index, within, pos) = tile_slot(*id).ok_or_else(|| missing(id))?;
                let at = match tiles.iter().position(|(k, _)| *k == (level, index)) {
                    Some(at) => at,
                    None => {
                        let v = self
                            .tree
                            .get(tile_key(level, index))
                            .map_err(|e| gongkai_core::Error::HashStore(e.to_string()))?
                            .ok_or_else(|| missing(id))?;
                        tiles.push(((level, index), v));
                        tiles.len() - 1
                    }
                };
                tile_hash(&tiles[at].1, within, pos).ok_or_else(|| missing(id))
            })
            .collect()
    }
}

/// Updates the catalog records for one event (already validated by the
/// catalog fold, so lookups that fail are skipped, not errors).
fn apply_event(s: &mut Staged<'_>, a: &Applied<'_>) -> Result<(), StoreError> {
    let index = a.index;
    match &a.event.kind {
        Kind::Genesis(_) | Kind::KeyRotated(_) => {}
        Kind::MatterDefined(m) => {
            let rec = MatterRecord {
                matter_id: m.matter_id.clone(),
                matter: m.matter.clone().unwrap_or_default().encode_to_vec(),
                active: true,
                defined_index: index,
                history: vec![index],
            };
            s.put(key(b'm', m.matter_id.as_bytes()), &rec)?;
        }
        Kind::MatterChanged(m) => {
            let k = key(b'm', m.matter_id.as_bytes());
            if let Some(mut rec) = s.get::<MatterRecord>(&k)? {
                rec.matter = m.matter.clone().unwrap_or_default().encode_to_vec();
                rec.history.push(index);
                s.put(k, &rec)?;
            }
        }
        Kind::MatterRetired(m) => {
            let k = key(b'm', m.matter_id.as_bytes());
            if let Some(mut rec) = s.get::<MatterRecord>(&k)? {
                rec.active = false;
                rec.history.push(index);
                s.put(k, &rec)?;
            }
        }
        Kind::Published(p) => {
            let rec = ItemRecord {
                item_id: p.item_id.clone(),
                matter_id: p.matter_id.clone(),
                title: p.title.clone(),
                versions: vec![ContentRecord::from_pb(p.content.as_ref())],
                status: ItemStatus::Current,
                date_formed: p.date_formed.clone(),
                date_changed: None,
                period: p.period.clone(),
                imported: p.imported,
                legal_basis: p.legal_basis.clone(),
                related: p
                    .related
                    .iter()
                    .map(|r| RelatedRecord {
                        origin: r.origin.clone(),
                        item_id: r.item_id.clone(),
                        relation: r.relation,
                    })
                    .collect(),
                redacted: Vec::new(),
                published_index: index,
                published_time_ms: a.event.time_ms,
                history: vec![index],
            };
            s.writes.insert(
                key(b'd', &rec.versions[0].digest.0),
                p.item_id.as_bytes().to_vec(),
            );
            s.put(key(b'i', p.item_id.as_bytes()), &rec)?;
        }
        Kind::Amended(x) => {
            let content = ContentRecord::from_pb(x.content.as_ref());
            s.writes
                .insert(key(b'd', &content.digest.0), x.item_id.as_bytes().to_vec());
            update_item(s, &x.item_id, index, |rec| {
                rec.title = x.title.clone();
                rec.versions.push(content);
                rec.date_changed = Some(x.date_changed.clone());
                rec.status = ItemStatus::Amended;
            })?;
        }
        Kind::Withdrawn(x) => update_item(s, &x.item_id, index, |rec| {
            rec.status = ItemStatus::Withdrawn
        })?,
        Kind::Redacted(x) => {
            let digest = Hash::from_slice(&x.content_digest).unwrap_or(Hash::ZERO);
            update_item(s, &x.item_id, index, |rec| rec.redacted.push(digest))?;
        }
        Kind::RequestReceived(r) => {
            let received =
                Date::parse(&r.date_received).map_err(|e| StoreError::Projection(e.to_string()))?;
            let rec = RequestRecord {
                request_id: r.request_id.clone(),
                subject: r.subject.clone(),
                clock: RequestClock::new(received),
                decision: 0,
                received_index: index,
                history: vec![index],
                answer_content: None,
                applicant: r.applicant,
                outcome: 0,
                cases: Vec::new(),
            };
            s.put(key(b'r', r.request_id.as_bytes()), &rec)?;
        }
        Kind::RequestClarification(r) => {
            let step = if r.stage == pb::ClarificationStage::Asked as i32 {
                ClockEvent::ClarificationAsked
            } else {
                ClockEvent::ClarificationCorrected
            };
            update_request(s, &r.request_id, &r.date, index, step, 0)?;
        }
        Kind::ThirdPartyConsultation(r) => {
            let step = if r.stage == pb::ConsultationStage::Started as i32 {
                ClockEvent::ConsultationStarted
            } else {
                ClockEvent::ConsultationEnded
            };
            update_request(s, &r.request_id, &r.date, index, step, 0)?;
        }
        Kind::RequestExtended(r) => {
            update_request(s, &r.request_id, &r.date, index, ClockEvent::Extended, 0)?;
        }
        Kind::RequestAnswered(r) => {
            if let Some(c) = &r.content {
                let content = ContentRecord::from_pb(Some(c));
                s.writes.insert(
                    key(b'a', &content.digest.0),
                    r.request_id.as_bytes().to_vec(),
                );
                let k = key(b'r', r.request_id.as_bytes());
                if let Some(mut rec) = s.get::<RequestRecord>(&k)? {
                    rec.answer_content = Some(content);
                    s.put(k, &rec)?;
                }
            }
            if r.outcome != 0 {
                let k = key(b'r', r.request_id.as_bytes());
                if let Some(mut rec) = s.get::<RequestRecord>(&k)? {
                    rec.outcome = r.outcome;
                    s.put(k, &rec)?;
                }
            }
            update_request(
                s,
                &r.request_id,
                &r.date_answered,
                index,
                ClockEvent::Answered,
                r.decision,
            )?;
        }
        Kind::ChallengeFiled(c) => {
            let filed =
                Date::parse(&c.date_filed).map_err(|e| StoreError::Projection(e.to_string()))?;
            update_cases(s, &c.request_id, index, |cases| {
                cases.push(CaseState {
                    case_id: c.case_id.clone(),
                    filed,
                    concluded: None,
                });
            })?;
        }
        Kind::ChallengeConcluded(c) => {
            let on = Date::parse(&c.date_concluded).ok();
            update_cases(s, &c.request_id, index, |cases| {
                if let Some(case) = cases.iter_mut().find(|k| k.case_id == c.case_id) {
                    case.concluded = on;
                }
            })?;
        }
    }
    Ok(())
}

fn update_cases(
    s: &mut Staged<'_>,
    id: &str,
    index: u64,
    f: impl FnOnce(&mut Vec<CaseState>),
) -> Result<(), StoreError> {
    let k = key(b'r', id.as_bytes());
    if let Some(mut rec) = s.get::<RequestRecord>(&k)? {
        f(&mut rec.cases);
        rec.history.push(index);
        s.put(k, &rec)?;
    }
    Ok(())
}

fn update_item(
    s: &mut Staged<'_>,
    id: &str,
    index: u64,
    f: impl FnOnce(&mut ItemRecord),
) -> Result<(), StoreError> {
    let k = key(b'i', id.as_bytes());
    if let Some(mut rec) = s.get::<ItemRecord>(&k)? {
        f(&mut rec);
        rec.history.push(index);
        s.put(k, &rec)?;
    }
    Ok(())
}

fn update_request(
    s: &mut Staged<'_>,
    id: &str,
    date: &str,
    index: u64,
    step: fn(Date) -> ClockEvent,
    decision: i32,
) -> Result<(), StoreError> {
    let k = key(b'r', id.as_bytes());
    if let Some(mut rec) = s.get::<RequestRecord>(&k)? {
        if let Ok(d) = Date::parse(date) {
            // The fold accepted the event, so the clock accepts it too (the
            // clock's rules need no calendar).
            let _ = rec.clock.apply(step(d));
        }
        if decision != 0 {
            rec.decision = decision;
        }
        rec.history.push(index);
        s.put(k, &rec)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use gongkai_core::hash::leaf_hash;
    use gongkai_core::merkle::{MemoryHashes, TreeState, consistency_proof, inclusion_proof};

    use super::*;

    fn open(dir: &Path) -> Projection {
        Projection::open(dir, "example.gov.cn/test", 1 << 20).unwrap()
    }

    /// Stores the subtrees `nodes` completed as [`Projection::apply`] does.
    fn store(p: &Projection, nodes: &[(NodeId, Hash)]) {
        let mut writes = HashMap::new();
        store_nodes(&p.tree, &mut writes, nodes).unwrap();
        let mut batch = sled::Batch::default();
        for (k, v) in writes {
            batch.insert(k, v);
        }
        p.tree.apply_batch(batch).unwrap();
    }

    /// Signs `kinds` as a log, entry `i` at `t0 + i * step` ms, and decodes
    /// each entry: its leaf hash and its event.
    fn signed_log(kinds: Vec<Kind>, t0: u64, step: u64) -> Vec<(Hash, Event)> {
        use gongkai_core::keys::SigningKey;
        use gongkai_core::types::Origin;
        use gongkai_core::writer::LogWriter;

        let mut w = LogWriter::new(
            Origin::new("example.gov.cn/test").unwrap(),
            SigningKey::from_seed([1; 32]),
        );
        kinds
            .into_iter()
            .enumerate()
            .map(|(i, k)| {
                let e = w.append(k, t0 + i as u64 * step).unwrap();
                (leaf_hash(e.as_bytes()), e.decode_event(i as u64).unwrap())
            })
            .collect()
    }

    /// A genesis, then request `r1` received.
    fn received_r1() -> Vec<Kind> {
        vec![
            Kind::Genesis(pb::Genesis {
                department: "财政局".into(),
                division_code: "510122".into(),
            }),
            Kind::RequestReceived(pb::RequestReceived {
                applicant: 0,
                request_id: "r1".into(),
                date_received: "2026-03-02".into(),
                subject: "申请公开".into(),
            }),
        ]
    }

    /// The entries of a [`signed_log`] from index 0, as the node applies
    /// them.
    fn applied(events: &[(Hash, Event)]) -> Vec<Applied<'_>> {
        events
            .iter()
            .enumerate()
            .map(|(i, (leaf_hash, event))| Applied {
                index: i as u64,
                leaf_hash: *leaf_hash,
                event,
            })
            .collect()
    }

    /// Tiles written in runs of any length serve every stored hash and the
    /// same proofs as the in-memory reference, at sizes that fill tile
    /// levels 0, 1 and 2.
    #[test]
    fn tiles_serve_the_stored_hashes() {
        let tmp = tempfile::tempdir().unwrap();
        let p = open(tmp.path());
        let mut reference = MemoryHashes::new();
        let mut tree = TreeState::new();
        let mut next = 0u64;
        let mut step = 1u64;
        while next < 70_000 {
            let mut nodes = Vec::new();
            for i in next..next + step {
                let h = leaf_hash(&i.to_be_bytes());
                nodes.extend(tree.append(h));
                reference.append(h);
            }
            store(&p, &nodes);
            next += step;
            step = (step * 7 + 3) % 1500 + 1;
            let size = next;
            for index in [0, size / 3, size - 1] {
                assert_eq!(
                    inclusion_proof(&p, index, size).unwrap(),
                    inclusion_proof(&reference, index, size).unwrap(),
                    "inclusion {index} in {size}"
                );
            }
            assert_eq!(
                consistency_proof(&p, size / 2, size).unwrap(),
                consistency_proof(&reference, size / 2, size).unwrap()
            );
        }
        for level in 0..17u8 {
            let count = next >> level;
            for index in (0..count).step_by(97).chain([count - 1]) {
                let id = NodeId::new(level, index);
                assert_eq!(
                    p.read_hashes(&[id]).unwrap(),
                    vec![reference.hash(id).unwrap()],
                    "{id:?}"
                );
            }
            let past = NodeId::new(level, count);
            assert!(p.read_hashes(&[past]).is_err(), "{past:?}");
        }
    }

    /// The in-memory leaf index finds every leaf, also after a reopen
    /// (rebuilt from the tiles) and for leaves sharing a 64-bit prefix.
    #[test]
    fn leaf_index_finds_every_leaf() {
        let tmp = tempfile::tempdir().unwrap();
        let mut leaves: Vec<Hash> = (0..600u64).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        // Leaf 599 shares its first 8 bytes with leaf 3.
        let mut twin = leaves[3];
        twin.0[31] ^= 1;
        leaves[599] = twin;
        {
            let p = open(tmp.path());
            let mut tree = TreeState::new();
            let nodes: Vec<_> = leaves.iter().flat_map(|h| tree.append(*h)).collect();
            store(&p, &nodes);
            p.tree.insert(APPLIED, &600u64.to_be_bytes()).unwrap();
        }
        {
            let p = open(tmp.path());
            for (i, h) in leaves.iter().enumerate() {
                assert_eq!(p.index_of_leaf(h).unwrap(), Some(i as u64));
            }
            assert_eq!(p.index_of_leaf(&leaf_hash(b"absent")).unwrap(), None);
            let mut near = leaves[10];
            near.0[31] ^= 1;
            assert_eq!(p.index_of_leaf(&near).unwrap(), None);
        }
        // Unindexed: the caller hands the leaves over, from 0 and in order.
        let p = Projection::open_unindexed(tmp.path(), "example.gov.cn/test", 1 << 20).unwrap();
        assert_eq!(p.index_of_leaf(&leaves[5]).unwrap(), None);
        assert!(p.index_leaves(1, &leaves[1..]).is_err());
        p.index_leaves(0, &leaves[..300]).unwrap();
        assert!(p.index_leaves(299, &leaves[299..]).is_err());
        p.index_leaves(300, &leaves[300..]).unwrap();
        for (i, h) in leaves.iter().enumerate() {
            assert_eq!(p.index_of_leaf(h).unwrap(), Some(i as u64));
        }
    }

    /// Through many merges of the newest run into the sorted part, every
    /// leaf stays a candidate for its own hash, leaves that share a prefix
    /// are all candidates, and an unrelated prefix has none.
    #[test]
    fn leaf_index_merges_keep_every_leaf() {
        let mut index = LeafIndex::default();
        let mut leaves: Vec<Hash> = (0..20_000u64)
            .map(|i| leaf_hash(&i.to_be_bytes()))
            .collect();
        // Every 1000th leaf shares its 4-byte prefix with leaf 7.
        for i in (1000..20_000).step_by(1000) {
            let head = leaves[7].0;
            leaves[i].0[..4].copy_from_slice(&head[..4]);
        }
        let mut merged = 0;
        for (i, h) in leaves.iter().enumerate() {
            index.insert(h, i as u64);
            if index.recent.is_empty() {
                merged += 1;
            }
        }
        assert!(merged >= 4, "only {merged} merges");
        assert!(index.prefixes.windows(2).all(|w| w[0] <= w[1]));
        for (i, h) in leaves.iter().enumerate() {
            assert!(index.candidates(h).contains(&(i as u64)), "leaf {i}");
        }
        let mut shared = index.candidates(&leaves[7]);
        shared.sort_unstable();
        let want: Vec<u64> = std::iter::once(7)
            .chain((1000..20_000).step_by(1000))
            .collect();
        assert_eq!(shared, want);
        let absent = (0..=u32::MAX)
            .map(|p| {
                let mut h = Hash::ZERO;
                h.0[..4].copy_from_slice(&p.to_be_bytes());
                h
            })
            .find(|h| index.candidates(h).is_empty());
        assert!(absent.is_some());
    }

    #[test]
    fn a_gap_in_a_tile_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let p = open(tmp.path());
        let mut writes = HashMap::new();
        let err = store_nodes(&p.tree, &mut writes, &[(NodeId::new(0, 1), Hash::ZERO)]);
        assert!(err.is_err());
    }

    /// Logs sharing one database keep apart (each its own tree, applied
    /// mark and records), a copy from a log's own database carries every
    /// record and replaces what the tree held, a copy from another log is
    /// refused, and the shared tree reads back the same after a reopen.
    #[test]
    fn shared_projections_keep_apart_and_copy_whole() {
        let tmp = tempfile::tempdir().unwrap();
        let events = signed_log(received_r1(), 1_772_500_000_000, 1000);
        let own = open(&tmp.path().join("own"));
        own.apply(&applied(&events), &[], &[]).unwrap();
        own.put_checkpoint(2, "note").unwrap();
        let dump = |p: &Projection| p.dump().map(Result::unwrap).collect::<Vec<_>>();
        let config = sled::Config::new().path(tmp.path().join("shared"));
        let db = open_sled(&config).unwrap();
        let p = Projection::open_shared(&db, "example.gov.cn/test").unwrap();
        let other = Projection::open_shared(&db, "example.gov.cn/other").unwrap();
        p.put_checkpoint(9, "replaced by the copy").unwrap();
        assert_eq!(p.copy_from(&own).unwrap(), dump(&own).len() as u64);
        assert_eq!(dump(&p), dump(&own));
        assert_eq!(p.applied().unwrap(), 2);
        assert_eq!(other.applied().unwrap(), 0);
        assert!(other.copy_from(&own).is_err());
        assert_eq!(dump(&other).len(), 2, "its origin and layout only");
        drop((p, other, db));
        let db = open_sled(&config).unwrap();
        let p = Projection::open_shared(&db, "example.gov.cn/test").unwrap();
        assert_eq!(dump(&p), dump(&own));
        assert!(p.request("r1").unwrap().is_some());
    }

    /// The content of a request answer is indexed under `a`, with its
    /// media type on the request record, so `GetContent` can serve it.
    #[test]
    fn answer_content_is_indexed() {
        let tmp = tempfile::tempdir().unwrap();
        let p = open(tmp.path());
        let digest = Hash([5; 32]);
        let mut kinds = received_r1();
        kinds.push(Kind::RequestAnswered(pb::RequestAnswered {
            request_id: "r1".into(),
            date_answered: "2026-03-03".into(),
            decision: pb::Decision::Disclosed as i32,
            content: Some(pb::ContentRef {
                digest: digest.0.to_vec(),
                length: 3,
                media_type: "text/plain".into(),
            }),
            ..Default::default()
        }));
        let events = signed_log(kinds, 1_772_500_000_000, 86_400_000);
        p.apply(&applied(&events), &[], &[]).unwrap();
        let rec = p.request_of_content(&digest).unwrap().unwrap();
        assert_eq!(rec.request_id, "r1");
        let answered: Vec<_> = p.answered_with_content().map(Result::unwrap).collect();
        assert_eq!(answered.len(), 1);
        assert_eq!(answered[0].request_id, "r1");
        assert_eq!(rec.answer_content.unwrap().media_type, "text/plain");
        assert!(p.item_of_content(&digest).unwrap().is_none());
        assert!(p.request_of_content(&Hash([6; 32])).unwrap().is_none());
    }

    /// The records rebuild exactly the fold's state of every matter, item
    /// and request, through every kind of change: what lets a node keep its
    /// catalog here instead of in memory.
    #[test]
    fn records_rebuild_the_catalog_fold() {
        use gongkai_core::catalog::Catalog;

        let content = |n: u8| pb::ContentRef {
            digest: vec![n; 32],
            length: 3,
            media_type: "text/plain".into(),
        };
        let matter = |periodicity: pb::Periodicity, audience: pb::Audience| pb::Matter {
            report_row: 0,
            category: "财政预决算".into(),
            level1: "财政预决算".into(),
            level2: "部门预算".into(),
            elements: vec!["预算表".into()],
            legal_basis: "《预算法》第十四条".into(),
            deadline_working_days: 15,
            responsible_body: "县财政局".into(),
            channels: vec!["政府网站".into()],
            audience: audience as i32,
            audience_group: if audience == pb::Audience::Group {
                "低保对象".into()
            } else {
                String::new()
            },
            mode: pb::DisclosureMode::Proactive as i32,
            periodicity: periodicity as i32,
            periods_from: if periodicity == pb::Periodicity::None {
                String::new()
            } else {
                "2026-01-01".into()
            },
        };
        let publish = |item: &str, matter: &str, period: &str, n: u8| {
            Kind::Published(pb::Published {
                item_id: item.into(),
                matter_id: matter.into(),
                title: item.into(),
                content: Some(content(n)),
                date_formed: "2026-03-02".into(),
                period: period.into(),
                ..Default::default()
            })
        };
        let request_step = |r: &str, date: &str, asked: bool| {
            Kind::RequestClarification(pb::RequestClarification {
                request_id: r.into(),
                stage: if asked {
                    pb::ClarificationStage::Asked
                } else {
                    pb::ClarificationStage::Corrected
                } as i32,
                date: date.into(),
                note: String::new(),
            })
        };
        let mut kinds = vec![
            Kind::Genesis(pb::Genesis {
                department: "财政局".into(),
                division_code: "510122".into(),
            }),
            Kind::MatterDefined(pb::MatterDefined {
                matter_id: "budget".into(),
                matter: Some(matter(pb::Periodicity::None, pb::Audience::Public)),
            }),
            Kind::MatterDefined(pb::MatterDefined {
                matter_id: "allowance".into(),
                matter: Some(matter(pb::Periodicity::Quarterly, pb::Audience::Group)),
            }),
            Kind::MatterDefined(pb::MatterDefined {
                matter_id: "old".into(),
                matter: Some(matter(pb::Periodicity::Monthly, pb::Audience::Public)),
            }),
            publish("b1", "budget", "", 1),
            publish("b2", "budget", "", 2),
            publish("a1", "allowance", "2026-Q1", 3),
            Kind::Amended(pb::Amended {
                quantity: 0,
                item_id: "b1".into(),
                title: "b1 v2".into(),
                content: Some(content(4)),
                date_changed: "2026-03-09".into(),
                reason: "更正".into(),
            }),
            Kind::Redacted(pb::Redacted {
                item_id: "b1".into(),
                content_digest: vec![1; 32],
                reason: "个人信息".into(),
                legal_basis: "第十五条".into(),
            }),
            Kind::Withdrawn(pb::Withdrawn {
                item_id: "b2".into(),
                reason: "失效".into(),
                legal_basis: "第二十六条".into(),
            }),
            Kind::MatterChanged(pb::MatterChanged {
                matter_id: "budget".into(),
                matter: Some(matter(pb::Periodicity::Yearly, pb::Audience::Group)),
                reason: "改为按年度".into(),
            }),
            Kind::MatterRetired(pb::MatterRetired {
                matter_id: "old".into(),
                reason: "撤销".into(),
                legal_basis: String::new(),
            }),
        ];
        for r in ["r1", "r2", "r3"] {
            kinds.push(Kind::RequestReceived(pb::RequestReceived {
                applicant: 0,
                request_id: r.into(),
                date_received: "2026-03-02".into(),
                subject: "申请".into(),
            }));
        }
        kinds.extend([
            request_step("r1", "2026-03-04", true),
            request_step("r1", "2026-03-10", false),
            Kind::ThirdPartyConsultation(pb::ThirdPartyConsultation {
                request_id: "r2".into(),
                stage: pb::ConsultationStage::Started as i32,
                date: "2026-03-05".into(),
                note: String::new(),
            }),
            Kind::RequestExtended(pb::RequestExtended {
                request_id: "r3".into(),
                date: "2026-03-06".into(),
                approved_by: "局长".into(),
                reason: "复杂".into(),
            }),
            Kind::RequestAnswered(pb::RequestAnswered {
                request_id: "r3".into(),
                date_answered: "2026-03-20".into(),
                decision: pb::Decision::Disclosed as i32,
                content: Some(content(9)),
                ..Default::default()
            }),
        ]);

        let events = signed_log(kinds, 1_775_100_000_000, 60_000);
        let mut whole = Catalog::new();
        for (_, event) in &events {
            whole.apply(event).unwrap();
        }
        let applied = applied(&events);
        let tmp = tempfile::tempdir().unwrap();
        let p = open(tmp.path());
        // In two runs, so that later changes read records stored earlier.
        p.apply(&applied[..9], &[], &[]).unwrap();
        p.apply(&applied[9..], &[], &[]).unwrap();

        let mut loaded = Catalog::new();
        for (_, event) in &events {
            p.load_catalog(&Touched::of(event), &mut loaded).unwrap();
        }
        assert_eq!(loaded, whole);
        assert_eq!(whole.items.len(), 3);
        assert_eq!(whole.matters.len(), 3);
        assert_eq!(whole.requests.len(), 3);
        // Unknown ids load nothing, and records already held are kept.
        let mut held = Catalog::new();
        let b1 = ItemId::new("b1").unwrap();
        let mut stale = whole.items[&b1].clone();
        stale.versions.clear();
        held.items.insert(b1.clone(), stale.clone());
        let touched = Touched {
            items: vec![b1.clone(), ItemId::new("nope").unwrap()],
            matter: Some(MatterId::new("nope").unwrap()),
            request: Some(RequestId::new("nope").unwrap()),
        };
        p.load_catalog(&touched, &mut held).unwrap();
        assert_eq!(p.catalog().unwrap(), whole);
        assert_eq!(held.items.len(), 1);
        assert_eq!(held.items[&b1], stale);
        assert!(held.matters.is_empty() && held.requests.is_empty());
    }

    /// Opening a projection whose lock is still held (a previous `Db` not
    /// yet fully gone) waits for it instead of failing at once.
    #[test]
    fn open_waits_for_a_held_lock() {
        let tmp = tempfile::tempdir().unwrap();
        let held = open(tmp.path());
        let release = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(200));
            drop(held);
        });
        let p = open(tmp.path());
        release.join().unwrap();
        assert_eq!(p.applied().unwrap(), 0);
    }

    /// A projection in the first layout (one `h` key per stored hash) is
    /// not read: its derived records go, checkpoints and idempotency
    /// records stay, and `applied` restarts at 0 so the node replays.
    #[test]
    fn old_layout_is_dropped_for_a_rebuild() {
        let tmp = tempfile::tempdir().unwrap();
        {
            let db = sled::open(tmp.path()).unwrap();
            db.insert(ORIGIN, "example.gov.cn/test").unwrap();
            db.insert(APPLIED, &5u64.to_be_bytes()).unwrap();
            db.insert(b"h\x00\x00\x00\x00\x00\x00\x00\x00\x00", &[7u8; 32])
                .unwrap();
            db.insert(b"rrequest-1", b"{}").unwrap();
            db.insert(key(b'c', &5u64.to_be_bytes()), b"note").unwrap();
            db.insert(key(b'k', b"key-1"), b"{}").unwrap();
            db.flush().unwrap();
        }
        let p = open(tmp.path());
        assert_eq!(p.applied().unwrap(), 0);
        let keys: Vec<Vec<u8>> = p.dump().map(|r| r.unwrap().0).collect();
        assert_eq!(
            keys,
            vec![
                b"Mlayout".to_vec(),
                b"Morigin".to_vec(),
                key(b'c', &5u64.to_be_bytes()),
                b"kkey-1".to_vec(),
            ]
        );
        drop(p);
        // Reopening the current layout keeps everything.
        let p = open(tmp.path());
        assert_eq!(p.dump().count(), 4);
    }
}
