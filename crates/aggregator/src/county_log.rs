//! The county log: a Merkle log (the BLAKE3 RFC 9162 tree of FORMAT.md § 8)
//! whose leaves are [`gongkai_core::county::CountyLeaf`]s, signed by the
//! county log key under the county's origin.
//!
//! Stored in the `county` tree of the county database: `l || u64be(index)`
//! → leaf, `h || level || u64be(index)` → stored hash, `tree` → the compact
//! tree state, `checkpoint` → the newest signed county checkpoint. One
//! append is one sled batch (atomic), synced ([`State::sync`]) before its
//! checkpoint is served: after a power loss the county can never sign a
//! different county checkpoint of a size it already published.

use std::sync::{Arc, Mutex};

use gongkai_core::Hash;
use gongkai_core::checkpoint::{Checkpoint, SignedCheckpoint};
use gongkai_core::hash::leaf_hash;
use gongkai_core::keys::SigningKey;
use gongkai_core::merkle::{self, HashReader, NodeId, TreeState};
use gongkai_core::types::Origin;

use crate::AggregatorError;
use crate::state::State;

/// The county log.
pub struct CountyLog {
    state_db: Arc<State>,
    tree: sled::Tree,
    origin: Origin,
    key: SigningKey,
    state: Mutex<(TreeState, String)>,
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

impl CountyLog {
    /// Opens the county log in `tree`, signing a checkpoint of its size.
    ///
    /// # Errors
    /// Storage errors or a damaged tree state.
    pub fn open(
        state_db: Arc<State>,
        origin: Origin,
        key: SigningKey,
    ) -> Result<CountyLog, AggregatorError> {
        let tree = state_db.county_tree().clone();
        let state: TreeState = match tree.get("tree")? {
            Some(v) => serde_json::from_slice(&v)
                .map_err(|e| AggregatorError::Fatal(format!("county tree state: {e}")))?,
            None => TreeState::new(),
        };
        let cp = Checkpoint::new(origin.clone(), state.size(), state.root());
        let note = SignedCheckpoint::sign(&cp, &key)
            .map_err(|e| AggregatorError::Fatal(format!("sign county checkpoint: {e}")))?
            .to_string();
        tree.insert("checkpoint", note.as_bytes())?;
        Ok(CountyLog {
            state_db,
            tree,
            origin,
            key,
            state: Mutex::new((state, note)),
        })
    }

    /// Appends the leaves of one round and signs the new county
    /// checkpoint, in one durable batch: a crash keeps all of them or none.
    /// Returns the index of the first and the checkpoint.
    ///
    /// # Errors
    /// Storage errors.
    pub fn append(&self, leaves: &[Vec<u8>]) -> Result<(u64, String), AggregatorError> {
        let mut guard = self
            .state
            .lock()
            .map_err(|_| AggregatorError::Storage("county log lock poisoned".into()))?;
        let mut tree = guard.0.clone();
        let first = tree.size();
        let mut batch = sled::Batch::default();
        for leaf in leaves {
            batch.insert(leaf_key(tree.size()), leaf.as_slice());
            for (id, h) in tree.append(leaf_hash(leaf)) {
                batch.insert(node_key(id), h.as_bytes());
            }
        }
        let cp = Checkpoint::new(self.origin.clone(), tree.size(), tree.root());
        let note = SignedCheckpoint::sign(&cp, &self.key)
            .map_err(|e| AggregatorError::Storage(format!("sign county checkpoint: {e}")))?
            .to_string();
        batch.insert(
            "tree",
            serde_json::to_vec(&tree).map_err(|e| AggregatorError::Storage(e.to_string()))?,
        );
        batch.insert("checkpoint", note.as_bytes());
        self.tree.apply_batch(batch)?;
        // Durable (fdatasync) before the checkpoint is served.
        self.state_db.sync()?;
        *guard = (tree, note.clone());
        Ok((first, note))
    }

    /// The newest county checkpoint `(size, note)`.
    pub fn checkpoint(&self) -> (u64, String) {
        self.state
            .lock()
            .map(|g| (g.0.size(), g.1.clone()))
            .unwrap_or_default()
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
