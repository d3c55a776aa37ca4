//! The county log: a Merkle log (the BLAKE3 RFC 9162 tree of FORMAT.md § 8)
//! whose leaves are [`gongkai_core::county::CountyLeaf`]s and published
//! calendar tables ([`CalendarTable`], § 14.4), signed by the county log key
//! under the county's origin.
//!
//! Stored in the `county` tree of the county database: `l || u64be(index)`
//! → leaf, `h || level || u64be(index)` → stored hash, `tree` → the compact
//! tree state, `checkpoint` → the newest signed county checkpoint,
//! `"cal:" || u64be(index)` → empty, marking each calendar leaf (so the open
//! reads the calendar leaves without scanning the whole log). One
//! append is one sled batch (atomic), synced ([`State::sync`]) before its
//! checkpoint is served: after a power loss the county can never sign a
//! different county checkpoint of a size it already published.

use std::sync::{Arc, Mutex, RwLock};

use gongkai_core::Hash;
use gongkai_core::calendar::WorkCalendar;
use gongkai_core::calendar::published::{CalendarTable, PublishedCalendars};
use gongkai_core::checkpoint::{Checkpoint, SignedCheckpoint};
use gongkai_core::hash::leaf_hash;
use gongkai_core::keys::SigningKey;
use gongkai_core::merkle::{self, HashReader, NodeId, TreeState};
use gongkai_core::note::Cosigner;
use gongkai_core::types::Origin;

use crate::AggregatorError;
use crate::state::State;

/// A county checkpoint signed by the county log key and cosigned (now) by
/// the county's cosigner.
fn sign(cp: &Checkpoint, key: &SigningKey, cosigner: &Cosigner) -> Result<String, String> {
    let mut signed =
        SignedCheckpoint::sign(cp, key).map_err(|e| format!("sign county checkpoint: {e}"))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    signed
        .cosign(cosigner, now)
        .map_err(|e| format!("cosign county checkpoint: {e}"))?;
    Ok(signed.to_string())
}

/// The county log.
pub struct CountyLog {
    state_db: Arc<State>,
    tree: sled::Tree,
    origin: Origin,
    key: SigningKey,
    /// The county's cosigner: it cosigns the county checkpoints too, so
    /// that one rule (k of n trusted witnesses) holds for every checkpoint.
    cosigner: Cosigner,
    state: Mutex<(TreeState, String)>,
    /// With independent witnesses: the county checkpoint served, with the
    /// witnesses' cosignatures (it trails the newest by one witness round).
    published: Option<Mutex<(u64, String)>>,
    /// The calendar tables on the log, and the calendar in force.
    calendars: RwLock<(PublishedCalendars, Arc<WorkCalendar>)>,
}

/// Why the county refuses to publish a calendar table.
#[derive(Debug, thiserror::Error)]
pub enum CalendarRefusal {
    /// The year is published already and this is not an amendment.
    #[error(
        "{year} is already published (version {version}, county leaf {index}); to change it, amend it with a reason"
    )]
    AlreadyPublished {
        /// The year.
        year: i32,
        /// Its newest version.
        version: u32,
        /// The county leaf of that version.
        index: u64,
    },
    /// A first publication of a year the seed table covers, with other days
    /// than the seed: that replaces the seed, so it needs a reason.
    #[error(
        "the table differs from the seed table built in for {year}: to replace it, amend it with a reason"
    )]
    DiffersFromSeed {
        /// The year.
        year: i32,
    },
    /// An amendment of a year nobody published and the seed does not cover.
    #[error("{year} has no table to amend: publish it first")]
    NothingToAmend {
        /// The year.
        year: i32,
    },
    /// An amendment that changes no day.
    #[error("the table in force for {year} already says exactly this about every day")]
    Unchanged {
        /// The year.
        year: i32,
    },
    /// The table itself is malformed.
    #[error("{0}")]
    Malformed(gongkai_core::Error),
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] AggregatorError),
}

/// Prefix of the calendar leaf markers (distinct from every other key of
/// the tree: `l…`, `h…`, `tree`, `checkpoint`).
const CALENDAR_PREFIX: &[u8] = b"cal:";

fn calendar_key(index: u64) -> Vec<u8> {
    let mut k = CALENDAR_PREFIX.to_vec();
    k.extend_from_slice(&index.to_be_bytes());
    k
}

fn leaf_key(index: u64) -> Vec<u8> {
    let mut k = vec![b'l'];
    k.extend_from_slice(&index.to_be_bytes());
    k
}

fn node_key(id: NodeId) -> Vec<u8> {
    let mut k = vec![b'h', id.level];
    k.extend_from_slice(&id.index.to_be_bytes());
    k
}

struct Reader<'a>(&'a sled::Tree);

impl HashReader for Reader<'_> {
    fn read_hashes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, gongkai_core::Error> {
        ids.iter()
            .map(|id| {
                let v = self
                    .0
                    .get(node_key(*id))
                    .map_err(|e| gongkai_core::Error::HashStore(e.to_string()))?
                    .ok_or_else(|| {
                        gongkai_core::Error::HashStore(format!(
                            "no county hash at level {} index {}",
                            id.level, id.index
                        ))
                    })?;
                Hash::from_slice(&v)
            })
            .collect()
    }
}

/// The county log's stored hashes (complete subtrees), for proofs and
/// the hash tiles the portal serves.
impl HashReader for CountyLog {
    fn read_hashes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, gongkai_core::Error> {
        Reader(&self.tree).read_hashes(ids)
    }
}

impl CountyLog {
    /// The county log's origin.
    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// Opens the county log in `tree`, signing a checkpoint of its size.
    ///
    /// # Errors
    /// Storage errors or a damaged tree state.
    /// With `witnessing`, [`CountyLog::checkpoint`] serves the newest
    /// checkpoint the witnesses had their chance to cosign
    /// ([`CountyLog::publish_witnessed`]).
    pub fn open(
        state_db: Arc<State>,
        origin: Origin,
        key: SigningKey,
        cosigner: Cosigner,
        witnessing: bool,
    ) -> Result<CountyLog, AggregatorError> {
        let tree = state_db.county_tree().clone();
        let state: TreeState = match tree.get("tree")? {
            Some(v) => serde_json::from_slice(&v)
                .map_err(|e| AggregatorError::Fatal(format!("county tree state: {e}")))?,
            None => TreeState::new(),
        };
        let cp = Checkpoint::new(origin.clone(), state.size(), state.root());
        let note = sign(&cp, &key, &cosigner).map_err(AggregatorError::Fatal)?;
        tree.insert("checkpoint", note.as_bytes())?;
        let witnessed = tree
            .get("witnessed")?
            .and_then(|v| SignedCheckpoint::from_bytes(&v).ok())
            .filter(|cp| cp.checkpoint().size <= state.size())
            .map(|cp| (cp.checkpoint().size, cp.to_string()));
        let served = witnessing
            .then(|| Mutex::new(witnessed.unwrap_or_else(|| (state.size(), note.clone()))));
        let mut published = PublishedCalendars::new();
        for marker in tree.scan_prefix(CALENDAR_PREFIX) {
            let (k, _) = marker?;
            let index = k
                .get(CALENDAR_PREFIX.len()..)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_be_bytes)
                .ok_or_else(|| AggregatorError::Fatal("county log: bad calendar marker".into()))?;
            let leaf = tree.get(leaf_key(index))?.ok_or_else(|| {
                AggregatorError::Fatal(format!("county log: calendar leaf {index} missing"))
            })?;
            let table = CalendarTable::decode(&leaf)
                .and_then(|t| published.apply(index, t.clone()).map(|()| t))
                .map_err(|e| {
                    AggregatorError::Fatal(format!("county log: calendar leaf {index}: {e}"))
                })?;
            tracing::debug!(
                index,
                year = table.year(),
                version = table.version(),
                "calendar table"
            );
        }
        let in_force = Arc::new(published.in_force());
        Ok(CountyLog {
            state_db,
            tree,
            origin,
            key,
            cosigner,
            state: Mutex::new((state, note)),
            published: served,
            calendars: RwLock::new((published, in_force)),
        })
    }

    /// The calendar in force: the seed table with every year the county
    /// published replaced by its newest version (FORMAT.md § 14.4).
    pub fn calendar(&self) -> Arc<WorkCalendar> {
        self.calendars
            .read()
            .map(|g| Arc::clone(&g.1))
            .unwrap_or_else(|p| Arc::clone(&p.into_inner().1))
    }

    /// Every published calendar table, in log order, with its leaf index.
    pub fn calendar_history(&self) -> Vec<(u64, CalendarTable)> {
        self.calendars
            .read()
            .map(|g| g.0.history().to_vec())
            .unwrap_or_else(|p| p.into_inner().0.history().to_vec())
    }

    /// Publishes a year's holiday table as a leaf of the county log, under
    /// the rules of FORMAT.md § 14.4: the first publication of a year
    /// (`amend` false) is version 1 and, for a year the seed covers, must
    /// agree with the seed; an amendment (`amend` true, with a reason) is
    /// the next version and must change a day. Durable before it returns,
    /// like every county append; the calendar in force changes at once.
    /// Returns the leaf index and the new county checkpoint.
    ///
    /// # Errors
    /// A [`CalendarRefusal`] that says why; nothing is appended then.
    pub fn publish_calendar(
        &self,
        notice: &str,
        reason: &str,
        table: &str,
        amend: bool,
    ) -> Result<(u64, CalendarTable, String), CalendarRefusal> {
        // The state lock orders this append with the periodic rounds; the
        // calendar lock is taken inside it, for writing, only to publish.
        let mut guard = self.lock()?;
        let (published, in_force) = {
            let g = self.calendars.read().unwrap_or_else(|p| p.into_inner());
            (g.0.clone(), Arc::clone(&g.1))
        };
        if amend && reason.is_empty() {
            return Err(CalendarRefusal::Malformed(
                gongkai_core::Error::MalformedCalendarTable(
                    "an amendment must say why (a reason)".into(),
                ),
            ));
        }
        // Parsed as version 1 to learn the year; rebuilt below with the
        // version it takes.
        let draft =
            CalendarTable::new(1, notice, reason, table).map_err(CalendarRefusal::Malformed)?;
        let year = draft.year();
        let version = match (amend, published.latest(year)) {
            (false, Some((index, t))) => {
                return Err(CalendarRefusal::AlreadyPublished {
                    year,
                    version: t.version(),
                    index,
                });
            }
            (false, None) => {
                if in_force.covers(year) && !draft.same_days_as(&in_force) {
                    return Err(CalendarRefusal::DiffersFromSeed { year });
                }
                1
            }
            (true, _) if !in_force.covers(year) => {
                return Err(CalendarRefusal::NothingToAmend { year });
            }
            (true, _) if draft.same_days_as(&in_force) => {
                return Err(CalendarRefusal::Unchanged { year });
            }
            (true, _) => published.next_version(year),
        };
        let t = CalendarTable::new(version, notice, reason, table)
            .map_err(CalendarRefusal::Malformed)?;
        let index = guard.0.size();
        let note = self.append_locked(&mut guard, &[t.encode()], &[calendar_key(index)])?;
        let mut next = published;
        next.apply(index, t.clone())
            .map_err(|e| AggregatorError::Fatal(format!("calendar fold: {e}")))?;
        let in_force = Arc::new(next.in_force());
        *self.calendars.write().unwrap_or_else(|p| p.into_inner()) = (next, in_force);
        Ok((index, t, note))
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, (TreeState, String)>, AggregatorError> {
        self.state
            .lock()
            .map_err(|_| AggregatorError::Storage("county log lock poisoned".into()))
    }

    /// Appends the leaves of one round and signs the new county
    /// checkpoint, in one durable batch: a crash keeps all of them or none.
    /// Returns the index of the first and the checkpoint.
    ///
    /// # Errors
    /// Storage errors.
    pub fn append(&self, leaves: &[Vec<u8>]) -> Result<(u64, String), AggregatorError> {
        let mut guard = self.lock()?;
        let first = guard.0.size();
        let note = self.append_locked(&mut guard, leaves, &[])?;
        Ok((first, note))
    }

    /// Appends `leaves` (and the `markers` keys, empty values) in one
    /// batch, signs and stores the new checkpoint, syncs, then updates
    /// `guard`. Returns the new checkpoint.
    fn append_locked(
        &self,
        guard: &mut (TreeState, String),
        leaves: &[Vec<u8>],
        markers: &[Vec<u8>],
    ) -> Result<String, AggregatorError> {
        let mut tree = guard.0.clone();
        let mut batch = sled::Batch::default();
        for leaf in leaves {
            batch.insert(leaf_key(tree.size()), leaf.as_slice());
            for (id, h) in tree.append(leaf_hash(leaf)) {
                batch.insert(node_key(id), h.as_bytes());
            }
        }
        for m in markers {
            batch.insert(m.as_slice(), &[] as &[u8]);
        }
        let cp = Checkpoint::new(self.origin.clone(), tree.size(), tree.root());
        let note = sign(&cp, &self.key, &self.cosigner).map_err(AggregatorError::Storage)?;
        batch.insert(
            "tree",
            serde_json::to_vec(&tree).map_err(|e| AggregatorError::Storage(e.to_string()))?,
        );
        batch.insert("checkpoint", note.as_bytes());
        self.tree.apply_batch(batch)?;
        // Durable (fdatasync) before the checkpoint is served.
        self.state_db.sync()?;
        *guard = (tree, note.clone());
        Ok(note)
    }

    /// The county checkpoint served `(size, note)`: the newest, or with
    /// independent witnesses the newest they had their chance to cosign.
    pub fn checkpoint(&self) -> (u64, String) {
        match &self.published {
            Some(p) => p.lock().map(|g| g.clone()).unwrap_or_default(),
            None => self.newest(),
        }
    }

    /// The newest county checkpoint `(size, note)`, signed by the county
    /// log key only.
    pub fn newest(&self) -> (u64, String) {
        self.state
            .lock()
            .map(|g| (g.0.size(), g.1.clone()))
            .unwrap_or_default()
    }

    /// Serves `witnessed` (a county checkpoint with the witnesses'
    /// cosignatures) unless a larger one is served already; kept across
    /// restarts.
    ///
    /// # Errors
    /// Storage errors.
    pub fn publish_witnessed(&self, witnessed: &SignedCheckpoint) -> Result<bool, AggregatorError> {
        let Some(p) = &self.published else {
            return Ok(false);
        };
        let size = witnessed.checkpoint().size;
        let mut g = p
            .lock()
            .map_err(|_| AggregatorError::Storage("county log lock poisoned".into()))?;
        if size < g.0 {
            return Ok(false);
        }
        let note = witnessed.to_string();
        self.tree.insert("witnessed", note.as_bytes())?;
        *g = (size, note);
        Ok(true)
    }

    /// Leaves `[start, end)`.
    ///
    /// # Errors
    /// Storage errors.
    pub fn leaves(&self, start: u64, end: u64) -> Result<Vec<Vec<u8>>, AggregatorError> {
        (start..end)
            .map(|i| {
                self.tree
                    .get(leaf_key(i))?
                    .map(|v| v.to_vec())
                    .ok_or_else(|| AggregatorError::Storage(format!("county leaf {i} missing")))
            })
            .collect()
    }

    /// Consistency proof between county sizes.
    ///
    /// # Errors
    /// Storage errors.
    pub fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>, AggregatorError> {
        merkle::consistency_proof(&Reader(&self.tree), old, new)
            .map_err(|e| AggregatorError::Storage(e.to_string()))
    }

    /// Inclusion proof of leaf `index` in the county tree of `size`.
    ///
    /// # Errors
    /// Storage errors.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, AggregatorError> {
        merkle::inclusion_proof(&Reader(&self.tree), index, size)
            .map_err(|e| AggregatorError::Storage(e.to_string()))
    }
}
