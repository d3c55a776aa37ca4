//! The witness's state: per log, the newest checkpoint it cosigned, one
//! file each (`<data_dir>/logs/<slug>.checkpoint`, the signed note with the
//! log's signature and the cosignature), written durably (temp file,
//! `fsync`, rename, `fsync` of the directory) before the cosignature
//! leaves. One lock serialises check and write, so two requests can never
//! both pass the check against the same old state (compare-and-swap); a
//! lock file keeps a second process off the same directory.
//!
//! **Restored from an old backup.** A witness whose state went back in
//! time (a restored backup, a reverted VM snapshot) would cosign a fork of
//! a checkpoint it cosigned after the backup was taken: nothing on its own
//! disk can tell it. So every start is treated as a possible restore: with
//! publication sources configured, each log is *unconfirmed* until a source
//! answered for it, and the witness refuses to cosign an unconfirmed log
//! (503). A source's checkpoint raises the state when it is signed by the
//! log and cosigned by this witness (its own newest cosignature, published
//! by the county) or by a peer witness of the trust file; the largest one
//! wins. A source holding a checkpoint of the stored size with another
//! root is a fork this witness or a peer already cosigned: the log stays
//! refused and the operator is alerted. Protection is as good as the
//! freshest honest source, which is why the sources should include the
//! other witnesses, not only the county (FORMAT.md § 21.3).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use gongkai_core::checkpoint::SignedCheckpoint;
use gongkai_core::note::{Cosigner, VerifierKey, Verifiers};
use gongkai_core::witness::{self, AddCheckpoint, Latest, Refusal};
use gongkai_verify::trust::Trust;

use crate::WitnessError;

/// The newest checkpoint cosigned for one log.
#[derive(Clone, Debug)]
pub struct Stored {
    /// Size and root.
    pub latest: Latest,
    /// The signed note: the log's signature lines and the cosignature.
    pub note: String,
    /// Unix seconds of the cosignature (0: raised from a source).
    pub time: u64,
}

/// Why [`Store::add`] did not cosign.
#[derive(Debug)]
pub enum AddError {
    /// A protocol refusal, with the witness's latest checkpoint for a
    /// conflict (409).
    Refused(Refusal, Option<String>),
    /// The log is not confirmed since the start (503).
    Unconfirmed,
    /// The state could not be written (500): nothing was cosigned.
    State(WitnessError),
}

/// What a start-up re-synchronisation found for one log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resync {
    /// A source answered; the state is at least what the sources show.
    Confirmed {
        /// The size before.
        from: u64,
        /// The size after.
        to: u64,
    },
    /// No source answered; the log stays refused.
    NoAnswer,
    /// A source holds a checkpoint of the stored size with another root.
    Fork(String),
}

/// The witness's state.
pub struct Store {
    dir: PathBuf,
    _lock: File,
    cosigner: Cosigner,
    /// Keys per origin of the logs witnessed.
    logs: BTreeMap<String, Vec<VerifierKey>>,
    /// Other witnesses whose cosignature raises the state at start.
    peers: Verifiers,
    state: Mutex<HashMap<String, Stored>>,
    unconfirmed: Mutex<BTreeSet<String>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn state_err(path: &Path, e: impl std::fmt::Display) -> WitnessError {
    WitnessError::State(format!("{}: {e}", path.display()))
}

impl Store {
    /// Opens (creating) the state under `data_dir` for the logs of
    /// `trust`. With `resync`, every log starts unconfirmed.
    ///
    /// # Errors
    /// [`WitnessError::State`] when another process holds the directory, or
    /// a state file is damaged or not cosigned by this witness (nor a
    /// peer): a state from another key is never adopted silently.
    pub fn open(
        data_dir: &Path,
        cosigner: Cosigner,
        trust: &Trust,
        resync: bool,
    ) -> Result<Store, WitnessError> {
        let dir = data_dir.join("logs");
        std::fs::create_dir_all(&dir).map_err(|e| state_err(&dir, e))?;
        let lock_path = data_dir.join("witness.lock");
        let lock_file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| state_err(&lock_path, e))?;
        lock_file.try_lock().map_err(|_| {
            WitnessError::State(format!(
                "{} is in use by another witness process",
                data_dir.display()
            ))
        })?;
        let mut logs: BTreeMap<String, Vec<VerifierKey>> = trust
            .logs
            .iter()
            .map(|(o, k)| (o.to_string(), k.clone()))
            .collect();
        if let Some(k) = &trust.county_log {
            logs.entry(k.name().to_string())
                .or_default()
                .push(k.clone());
        }
        if logs.is_empty() {
            return Err(WitnessError::Config(
                "the trust file lists no log to witness".into(),
            ));
        }
        let me = cosigner.verifier_key();
        let peers = Verifiers::new(trust.witnesses.iter().filter(|w| **w != me).cloned())
            .map_err(|e| WitnessError::Config(e.to_string()))?;
        let mut state = HashMap::new();
        for origin in logs.keys() {
            let path = dir.join(file_name(origin));
            let bytes = match std::fs::read(&path) {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(state_err(&path, e)),
            };
            let cp = SignedCheckpoint::from_bytes(&bytes).map_err(|e| state_err(&path, e))?;
            if cp.checkpoint().origin.as_str() != origin {
                return Err(state_err(&path, "a checkpoint of another log"));
            }
            let mine = cp
                .note()
                .verify(&Verifiers::from(me.clone()))
                .unwrap_or_default();
            let time = mine.first().and_then(|s| s.timestamp).unwrap_or(0);
            if mine.is_empty() && cp.note().verify_quorum(&peers, 1).is_err() {
                return Err(state_err(
                    &path,
                    format!(
                        "not cosigned by this witness's key {me} nor a peer: a state of another witness, or damaged"
                    ),
                ));
            }
            let latest = Latest {
                size: cp.checkpoint().size,
                root: cp.checkpoint().root,
            };
            state.insert(
                origin.clone(),
                Stored {
                    latest,
                    note: cp.to_string(),
                    time,
                },
            );
        }
        let unconfirmed = if resync {
            logs.keys().cloned().collect()
        } else {
            BTreeSet::new()
        };
        Ok(Store {
            dir,
            _lock: lock_file,
            cosigner,
            logs,
            peers,
            state: Mutex::new(state),
            unconfirmed: Mutex::new(unconfirmed),
        })
    }

    /// The witness's verifier key.
    pub fn verifier_key(&self) -> VerifierKey {
        self.cosigner.verifier_key()
    }

    /// The origins witnessed.
    pub fn origins(&self) -> impl Iterator<Item = &str> {
        self.logs.keys().map(String::as_str)
    }

    /// The newest checkpoint cosigned for `origin`.
    pub fn latest(&self, origin: &str) -> Option<Stored> {
        lock(&self.state).get(origin).cloned()
    }

    /// Whether `origin` is still unconfirmed since the start.
    pub fn is_unconfirmed(&self, origin: &str) -> bool {
        lock(&self.unconfirmed).contains(origin)
    }

    /// The log's signature: at least one of the configured keys signed,
    /// and no configured key's signature is invalid.
    fn check_signed(&self, cp: &SignedCheckpoint) -> Result<(), Refusal> {
        let origin = cp.checkpoint().origin.as_str();
        let keys = self.logs.get(origin).ok_or(Refusal::UnknownLog)?;
        let verifiers =
            Verifiers::new(keys.iter().cloned()).map_err(|e| Refusal::NotSigned(e.to_string()))?;
        cp.note()
            .verify_quorum(&verifiers, 1)
            .map(|_| ())
            .map_err(|e| {
                Refusal::NotSigned(format!(
                    "{e} (keys this witness holds for {origin}: {})",
                    keys.iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })
    }

    /// Cosigns `request` at `now` (Unix seconds) if it extends what this
    /// witness last cosigned for the log, persisting the new state first.
    /// Returns the answer's body (the cosignature line). Blocking (`fsync`).
    ///
    /// # Errors
    /// [`AddError`].
    pub fn add(&self, request: &AddCheckpoint, now: u64) -> Result<String, AddError> {
        self.check_signed(&request.checkpoint)
            .map_err(|r| AddError::Refused(r, None))?;
        let origin = request.checkpoint.checkpoint().origin.to_string();
        if self.is_unconfirmed(&origin) {
            return Err(AddError::Unconfirmed);
        }
        let mut state = lock(&self.state);
        let current = state.get(&origin);
        if let Err(r) = witness::judge(current.map(|s| &s.latest), request) {
            let body = matches!(r, Refusal::Conflict)
                .then(|| current.map(|s| s.note.clone()))
                .flatten();
            return Err(AddError::Refused(r, body));
        }
        let signature = self
            .cosigner
            .cosign(request.checkpoint.text(), now)
            .map_err(|e| AddError::Refused(Refusal::Malformed(e.to_string()), None))?;
        // Stored: the log's own signature lines and this cosignature.
        let mut stored = SignedCheckpoint::parse(&request.checkpoint.to_string())
            .map_err(|e| AddError::Refused(Refusal::Malformed(e.to_string()), None))?;
        stored
            .add_signature(signature.clone())
            .map_err(|e| AddError::Refused(Refusal::Malformed(e.to_string()), None))?;
        let note = stored.to_string();
        let path = self.dir.join(file_name(&origin));
        gongkai_store::write_file_durably(&path, note.as_bytes())
            .map_err(|e| AddError::State(state_err(&path, e)))?;
        let cp = stored.checkpoint();
        state.insert(
            origin,
            Stored {
                latest: Latest {
                    size: cp.size,
                    root: cp.root,
                },
                note,
                time: now,
            },
        );
        Ok(witness::encode_cosignatures(&[signature]))
    }

    /// Re-synchronises `origin` from the checkpoints its sources answered
    /// (`None` when no source answered). Blocking (`fsync`).
    ///
    /// # Errors
    /// [`WitnessError::State`] when the raised state cannot be written.
    pub fn resync(
        &self,
        origin: &str,
        answers: Option<Vec<SignedCheckpoint>>,
    ) -> Result<Resync, WitnessError> {
        let Some(answers) = answers else {
            return Ok(Resync::NoAnswer);
        };
        let me = Verifiers::from(self.cosigner.verifier_key());
        let mut state = lock(&self.state);
        let from = state.get(origin).map_or(0, |s| s.latest.size);
        let mut best: Option<SignedCheckpoint> = None;
        for cp in answers {
            if cp.checkpoint().origin.as_str() != origin || self.check_signed(&cp).is_err() {
                continue;
            }
            let witnessed = cp.note().verify_quorum(&me, 1).is_ok()
                || cp.note().verify_quorum(&self.peers, 1).is_ok();
            if !witnessed {
                continue;
            }
            if let Some(s) = state.get(origin)
                && s.latest.size == cp.checkpoint().size
                && s.latest.root != cp.checkpoint().root
            {
                return Ok(Resync::Fork(format!(
                    "a published checkpoint of size {} has another root than the one this witness holds: a fork was cosigned",
                    s.latest.size
                )));
            }
            if best
                .as_ref()
                .is_none_or(|b| b.checkpoint().size < cp.checkpoint().size)
            {
                best = Some(cp);
            }
        }
        let to = match best {
            Some(cp) if cp.checkpoint().size > from => {
                let note = cp.to_string();
                let path = self.dir.join(file_name(origin));
                gongkai_store::write_file_durably(&path, note.as_bytes())
                    .map_err(|e| state_err(&path, e))?;
                let time = cp
                    .note()
                    .verify(&me)
                    .ok()
                    .and_then(|v| v.first().and_then(|s| s.timestamp))
                    .unwrap_or(0);
                state.insert(
                    origin.to_owned(),
                    Stored {
                        latest: Latest {
                            size: cp.checkpoint().size,
                            root: cp.checkpoint().root,
                        },
                        note,
                        time,
                    },
                );
                cp.checkpoint().size
            }
            _ => from,
        };
        drop(state);
        lock(&self.unconfirmed).remove(origin);
        Ok(Resync::Confirmed { from, to })
    }
}

/// The state file of `origin`.
fn file_name(origin: &str) -> String {
    format!("{}.checkpoint", gongkai_portal::model::slug(origin))
}

#[cfg(test)]
mod tests {
    use gongkai_core::Hash;
    use gongkai_core::checkpoint::Checkpoint;
    use gongkai_core::hash::leaf_hash;
    use gongkai_core::keys::SigningKey;
    use gongkai_core::merkle::{self, MemoryHashes};
    use gongkai_core::types::{KeyName, Origin};

    use super::*;

    const ORIGIN: &str = "gongkai.example/510122/finance";

    fn trust() -> Trust {
        let k = SigningKey::from_seed([1; 32]).public_key();
        let vkey = Checkpoint::log_verifier_key(&Origin::new(ORIGIN).unwrap(), &k);
        Trust::parse(&format!(
            "[[log]]\norigin = \"{ORIGIN}\"\nvkeys = [\"{vkey}\"]\n"
        ))
        .unwrap()
    }

    fn witness() -> Cosigner {
        Cosigner::new(
            KeyName::new("w.example").unwrap(),
            SigningKey::from_seed([9; 32]),
        )
    }

    fn leaves(n: u64, salt: u8) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&[salt, i as u8])).collect()
    }

    fn request(old: u64, all: &[Hash], n: u64) -> AddCheckpoint {
        let cp = Checkpoint::new(
            Origin::new(ORIGIN).unwrap(),
            n,
            merkle::root(&all[..n as usize]),
        );
        let proof = if old == 0 {
            vec![]
        } else {
            merkle::consistency_proof(&MemoryHashes::from_leaf_hashes(&all[..n as usize]), old, n)
                .unwrap()
        };
        AddCheckpoint {
            old_size: old,
            proof,
            checkpoint: SignedCheckpoint::sign(&cp, &SigningKey::from_seed([1; 32])).unwrap(),
        }
    }

    #[test]
    fn persists_before_answering_and_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let log = leaves(20, 0);
        let store = Store::open(dir.path(), witness(), &trust(), false).unwrap();
        // A second process is kept off the directory.
        assert!(Store::open(dir.path(), witness(), &trust(), false).is_err());
        store.add(&request(0, &log, 5), 100).unwrap();
        store.add(&request(5, &log, 12), 101).unwrap();
        drop(store);
        let store = Store::open(dir.path(), witness(), &trust(), false).unwrap();
        assert_eq!(store.latest(ORIGIN).unwrap().latest.size, 12);
        // A fork of size 12 is refused with the witness's checkpoint.
        let fork = leaves(20, 1);
        match store.add(&request(5, &fork, 12), 102) {
            Err(AddError::Refused(Refusal::Conflict, Some(_))) => {}
            other => panic!("{other:?}"),
        }
        // Another witness's key does not adopt this state.
        drop(store);
        let other = Cosigner::new(
            KeyName::new("x.example").unwrap(),
            SigningKey::from_seed([8; 32]),
        );
        assert!(Store::open(dir.path(), other, &trust(), false).is_err());
    }

    #[test]
    fn a_restored_backup_does_not_cosign_a_fork() {
        let dir = tempfile::tempdir().unwrap();
        let backup = tempfile::tempdir().unwrap();
        let log = leaves(30, 0);
        let store = Store::open(dir.path(), witness(), &trust(), false).unwrap();
        store.add(&request(0, &log, 5), 100).unwrap();
        // The backup, taken at size 5.
        let file = file_name(ORIGIN);
        std::fs::copy(
            dir.path().join("logs").join(&file),
            backup.path().join(&file),
        )
        .unwrap();
        store.add(&request(5, &log, 10), 101).unwrap();
        let published = store.latest(ORIGIN).unwrap().note;
        drop(store);
        // Restored: the state is back at 5.
        std::fs::copy(
            backup.path().join(&file),
            dir.path().join("logs").join(&file),
        )
        .unwrap();
        let store = Store::open(dir.path(), witness(), &trust(), true).unwrap();
        let fork = {
            let mut f = log[..5].to_vec();
            f.extend(leaves(5, 7));
            f
        };
        // Unconfirmed: refused until a source answered.
        assert!(matches!(
            store.add(&request(5, &fork, 10), 200),
            Err(AddError::Unconfirmed)
        ));
        // A source shows the checkpoint this witness cosigned at 10.
        let cp = SignedCheckpoint::parse(&published).unwrap();
        assert_eq!(
            store.resync(ORIGIN, Some(vec![cp])).unwrap(),
            Resync::Confirmed { from: 5, to: 10 }
        );
        // The fork, consistent with size 5, is now refused.
        assert!(matches!(
            store.add(&request(5, &fork, 10), 201),
            Err(AddError::Refused(Refusal::Conflict, Some(_)))
        ));
        // A checkpoint nobody trusted cosigned does not raise the state.
        let store2_dir = tempfile::tempdir().unwrap();
        let s2 = Store::open(store2_dir.path(), witness(), &trust(), true).unwrap();
        let unwitnessed = request(0, &log, 20).checkpoint;
        assert_eq!(
            s2.resync(ORIGIN, Some(vec![unwitnessed])).unwrap(),
            Resync::Confirmed { from: 0, to: 0 }
        );
        assert_eq!(s2.resync(ORIGIN, None).unwrap(), Resync::NoAnswer);
    }
}
