//! The chain verifier (FORMAT.md § Chain rules).
//!
//! It consumes entries in order, from index 0 or continuing from a saved
//! [`ChainState`], and checks for each entry:
//!
//! 1. framing, canonical body and field rules ([`prepare`], independent of
//!    other entries, so callers may run it on many threads; [`prepare_view`]
//!    does the same on bytes the caller holds, reading them in place);
//! 2. the links: origin constant, `index` equal to the position,
//!    `prev_hash` equal to the previous body hash (zero at 0), time never
//!    decreasing, index 0 and only index 0 a `Genesis`, the body's signer
//!    equal to the key in force (following `Genesis` and `KeyRotated`);
//! 3. the catalog rules ([`crate::catalog::Catalog::apply`]);
//! 4. the Ed25519 signatures under the ZIP-215 rule: the event signature
//!    and, for `KeyRotated`, the next key's proof of possession.
//!
//! Steps 2 and 3 are sequential and cheap. Signatures are either checked
//! at once ([`ChainVerifier::push`]) or handed back as [`SignatureCheck`]s
//! ([`ChainVerifier::push_prepared`]) for the caller to batch-verify on all
//! cores with [`verify_signatures`] (or queued per entry as soon as it is
//! prepared, [`PreparedView::queue_signatures`]); core itself stays
//! single-threaded.
//! At the end, [`ChainVerifier::root`] is compared with a checkpoint
//! ([`ChainVerifier::check_checkpoint`]).

use rand_core::CryptoRng;
use serde::{Deserialize, Serialize};

use crate::catalog::Catalog;
use crate::checkpoint::Checkpoint;
use crate::entry::{
    EVENT_SIGNATURE_CONTEXT, Entry, body_of, rotation_message, signature_of, signed_message,
};
use crate::event::{Event, EventView, view};
use crate::hash::{body_hash, leaf_hash};
use crate::keys::{BatchVerifier, PublicKey, Signature};
use crate::merkle::TreeState;
use crate::types::Origin;
use crate::{Error, Hash};

/// An entry after the checks that need no other entry: framing, canonical
/// body, field rules, leaf and body hashes.
#[derive(Clone, Debug)]
pub struct Prepared {
    /// The log position the entry was read at (the `index` given to
    /// [`prepare`]). Errors and signature checks name it; the chain accepts
    /// the entry only at this position and only if its body claims it.
    pub position: u64,
    /// The verbatim entry.
    pub entry: Entry,
    /// Its decoded event.
    pub event: Event,
    /// `leaf_hash(entry)`.
    pub leaf_hash: Hash,
    /// `body_hash(body)`, the next entry's `prev_hash`.
    pub body_hash: Hash,
}

/// [`Prepared`] borrowed from entry bytes the caller holds: what
/// [`prepare_view`] gives without copying the entry or any field of its
/// event, for a verifier that only checks a log. [`Prepared::view`] gives
/// the same for an owned one, so the chain checks read both the same way.
#[derive(Clone, Debug, PartialEq)]
pub struct PreparedView<'a> {
    /// As [`Prepared::position`].
    pub position: u64,
    /// The verbatim entry bytes (framing checked).
    pub entry: &'a [u8],
    /// Its decoded event.
    pub event: EventView<'a>,
    /// `leaf_hash(entry)`.
    pub leaf_hash: Hash,
    /// `body_hash(body)`, the next entry's `prev_hash`.
    pub body_hash: Hash,
}

impl Prepared {
    /// This entry as a view.
    pub fn view(&self) -> PreparedView<'_> {
        PreparedView {
            position: self.position,
            entry: self.entry.as_bytes(),
            event: self.event.view(),
            leaf_hash: self.leaf_hash,
            body_hash: self.body_hash,
        }
    }

    /// As [`PreparedView::signature_checks`].
    ///
    /// # Errors
    /// As [`PreparedView::signature_checks`].
    pub fn signature_checks(&self) -> Result<Vec<SignatureCheck>, Error> {
        self.view().signature_checks()
    }

    /// As [`PreparedView::queue_signatures`].
    ///
    /// # Errors
    /// As [`PreparedView::queue_signatures`].
    pub fn queue_signatures(
        &self,
        batch: &mut BatchVerifier<SignatureTag>,
        scratch: &mut Vec<u8>,
    ) -> Result<(), Error> {
        self.view().queue_signatures(batch, scratch)
    }
}

impl PreparedView<'_> {
    /// The signatures this entry relies on, as its body claims them: the
    /// event signature under the body's `signer` and, for `KeyRotated`, the
    /// next key's proof of possession for the body's `origin` and `index`.
    ///
    /// When [`ChainVerifier::push_prepared`] accepts the entry it returns
    /// exactly these (its link checks make the claimed signer, origin and
    /// index the ones in force), so a caller may build and verify them as
    /// soon as the entry is prepared, before its links are checked, and need
    /// not verify the returned ones again. The caller must still push every
    /// entry in order and reject the log if any check or push fails.
    ///
    /// # Errors
    /// [`Error::InvalidPublicKey`] or [`Error::InvalidLength`] for a
    /// malformed rotation key or proof (never for a prepared entry,
    /// whose field rules checked both).
    pub fn signature_checks(&self) -> Result<Vec<SignatureCheck>, Error> {
        let e = &self.event;
        let mut checks = Vec::with_capacity(1);
        checks.push(SignatureCheck {
            index: self.position,
            key: e.signer,
            message: signed_message(body_of(self.entry)),
            signature: signature_of(self.entry),
            rotation_proof: false,
        });
        if let view::Kind::KeyRotated(r) = &e.kind {
            let next = PublicKey::from_slice(r.next_key)?;
            checks.push(SignatureCheck {
                index: self.position,
                key: next,
                message: rotation_message(e.origin, e.index, &next),
                signature: Signature::from_slice(r.proof)?,
                rotation_proof: true,
            });
        }
        Ok(checks)
    }

    /// Queues the checks of [`PreparedView::signature_checks`] on `batch`
    /// without keeping their messages (the batch hashes each message as it
    /// is queued); `scratch` is reused for building them. Verify with
    /// [`verify_queued`].
    ///
    /// # Errors
    /// As [`PreparedView::signature_checks`].
    pub fn queue_signatures(
        &self,
        batch: &mut BatchVerifier<SignatureTag>,
        scratch: &mut Vec<u8>,
    ) -> Result<(), Error> {
        let e = &self.event;
        let body = body_of(self.entry);
        scratch.clear();
        scratch.reserve(EVENT_SIGNATURE_CONTEXT.len() + body.len());
        scratch.extend_from_slice(EVENT_SIGNATURE_CONTEXT);
        scratch.extend_from_slice(body);
        let tag = SignatureTag {
            index: self.position,
            key: e.signer,
            rotation_proof: false,
        };
        batch.queue(tag, &e.signer, scratch, &signature_of(self.entry));
        if let view::Kind::KeyRotated(r) = &e.kind {
            let next = PublicKey::from_slice(r.next_key)?;
            let message = rotation_message(e.origin, e.index, &next);
            let tag = SignatureTag {
                index: self.position,
                key: next,
                rotation_proof: true,
            };
            batch.queue(tag, &next, &message, &Signature::from_slice(r.proof)?);
        }
        Ok(())
    }
}

/// Which check a queued signature is, to name it when it fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignatureTag {
    /// Log position of the entry it belongs to.
    pub index: u64,
    /// The key it must verify under.
    pub key: PublicKey,
    /// `true` for a key-rotation proof of possession.
    pub rotation_proof: bool,
}

impl SignatureTag {
    fn error(&self) -> Error {
        if self.rotation_proof {
            Error::BadRotationProof { index: self.index }
        } else {
            Error::BadSignature {
                index: self.index,
                key: self.key.to_hex(),
            }
        }
    }
}

/// Batch-verifies what [`PreparedView::queue_signatures`] queued (ZIP-215;
/// same verdict as one by one).
///
/// # Errors
/// The error of the first failing check, naming its index.
pub fn verify_queued<R: CryptoRng + ?Sized>(
    batch: BatchVerifier<SignatureTag>,
    rng: &mut R,
) -> Result<(), Error> {
    batch.verify(rng).map_err(|t| t.error())
}

/// Runs the per-entry checks on `bytes`, read at log position `index`.
///
/// # Errors
/// [`Error::MalformedEntry`], [`Error::NonCanonicalBody`] or
/// [`Error::InvalidField`], naming `index`.
pub fn prepare(bytes: Vec<u8>, index: u64) -> Result<Prepared, Error> {
    let view = prepare_view(&bytes, index)?;
    let (event, leaf_hash, body_hash) = (view.event.to_event(), view.leaf_hash, view.body_hash);
    Ok(Prepared {
        position: index,
        entry: Entry::parse(bytes, index)?,
        event,
        leaf_hash,
        body_hash,
    })
}

/// [`prepare`] on borrowed bytes: the entry and the strings and bytes of
/// its event are read in place, not copied.
///
/// # Errors
/// As [`prepare`].
pub fn prepare_view(bytes: &[u8], index: u64) -> Result<PreparedView<'_>, Error> {
    Entry::check_framing(bytes, index)?;
    let body = body_of(bytes);
    Ok(PreparedView {
        position: index,
        entry: bytes,
        event: EventView::decode(body, index)?,
        leaf_hash: leaf_hash(bytes),
        body_hash: body_hash(body),
    })
}

/// A signature the chain relies on, to be verified by the caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignatureCheck {
    /// Log position of the entry it belongs to.
    pub index: u64,
    /// The key it must verify under.
    pub key: PublicKey,
    /// The signed message.
    pub message: Vec<u8>,
    /// The signature.
    pub signature: Signature,
    /// `true` for a key-rotation proof of possession.
    pub rotation_proof: bool,
}

impl SignatureCheck {
    fn error(&self) -> Error {
        SignatureTag {
            index: self.index,
            key: self.key,
            rotation_proof: self.rotation_proof,
        }
        .error()
    }

    /// Verifies this one signature (ZIP-215).
    ///
    /// # Errors
    /// [`Error::BadSignature`] or [`Error::BadRotationProof`].
    pub fn verify(&self) -> Result<(), Error> {
        self.key
            .verify(&self.message, &self.signature)
            .map_err(|()| self.error())
    }
}

/// Batch-verifies `checks` (ZIP-215; same verdict as one by one). Callers
/// split large runs into chunks (e.g. 1,024) and verify chunks on several
/// threads.
///
/// # Errors
/// The error of the first failing check, naming its index.
pub fn verify_signatures<R: CryptoRng + ?Sized>(
    checks: &[SignatureCheck],
    rng: &mut R,
) -> Result<(), Error> {
    let mut batch = BatchVerifier::new();
    for (i, c) in checks.iter().enumerate() {
        batch.queue(i, &c.key, &c.message, &c.signature);
    }
    batch.verify(rng).map_err(|i| checks[i].error())
}

/// A key and the first index it signs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyEpoch {
    /// First index signed by `key`.
    pub from_index: u64,
    /// The key.
    pub key: PublicKey,
}

/// Everything needed to continue verifying a log after `size` entries:
/// the compact tree state, the last link, the keys, and the compact catalog
/// fold state. Serializable (e.g. as JSON) for `verify --state`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainState {
    /// The log.
    pub origin: Origin,
    /// Entries verified so far.
    pub size: u64,
    /// Body hash of entry `size - 1` (zero when empty).
    pub last_body_hash: Hash,
    /// Claimed time of entry `size - 1` (0 when empty).
    pub last_time_ms: u64,
    /// Every signing key of the log so far, in order (empty before genesis).
    pub keys: Vec<KeyEpoch>,
    /// The compact Merkle tree state.
    pub tree: TreeState,
    /// The compact catalog fold state.
    pub catalog: Catalog,
}

impl ChainState {
    /// The key that must sign the next entry, if genesis has been seen.
    pub fn key_in_force(&self) -> Option<PublicKey> {
        self.keys.last().map(|k| k.key)
    }

    /// Keys that may sign a checkpoint of the current size: the key in force
    /// after the last entry and, during a handover, the one before it
    /// (FORMAT.md § Key rotation). Callers decide how long the handover lasts.
    pub fn checkpoint_keys(&self) -> Vec<PublicKey> {
        self.keys.iter().rev().take(2).map(|k| k.key).collect()
    }
}

/// Verifies one log, entry by entry.
pub struct ChainVerifier {
    state: ChainState,
    trusted_genesis_keys: Vec<PublicKey>,
    /// False: the caller applies the catalog rules itself.
    rules: bool,
}

impl ChainVerifier {
    /// A verifier for the log `origin` starting at index 0, whose `Genesis`
    /// must be signed by one of `trusted` (the verifier's trust anchors;
    /// keys found in the log itself are never anchors).
    pub fn new(origin: Origin, trusted: &[PublicKey]) -> ChainVerifier {
        ChainVerifier {
            state: ChainState {
                origin,
                size: 0,
                last_body_hash: Hash::ZERO,
                last_time_ms: 0,
                keys: Vec::new(),
                tree: TreeState::new(),
                catalog: Catalog::new(),
            },
            trusted_genesis_keys: trusted.to_vec(),
            rules: true,
        }
    }

    /// This verifier checks everything but the catalog rules, and its state
    /// carries an empty catalog: for a caller that holds the catalog
    /// elsewhere and applies [`Catalog::apply`] itself (a node, whose
    /// projection already holds the fold of the entries it projected).
    #[must_use]
    pub fn without_catalog_rules(mut self) -> ChainVerifier {
        self.rules = false;
        self.state.catalog = Catalog::new();
        self
    }

    /// Continues from a saved state (which the caller verified earlier and
    /// matched against a checkpoint it trusts).
    ///
    /// # Errors
    /// [`Error::ChainBroken`] (field `state`) if the state is inconsistent:
    /// its size differs from its tree's, it has entries but no key (or a key
    /// but no entries), or its size is 2^63 or more.
    pub fn resume(state: ChainState) -> Result<ChainVerifier, Error> {
        let broken = |expected: String, found: String| Error::ChainBroken {
            index: state.size,
            field: "state",
            expected,
            found,
        };
        if state.size != state.tree.size() {
            return Err(broken(
                format!("tree of size {}", state.size),
                format!("tree of size {}", state.tree.size()),
            ));
        }
        if (state.size == 0) != state.keys.is_empty() {
            return Err(broken(
                "keys exactly when entries exist".into(),
                format!("{} keys", state.keys.len()),
            ));
        }
        if state.size >= 1 << 63 {
            return Err(broken("size below 2^63".into(), state.size.to_string()));
        }
        Ok(ChainVerifier {
            state,
            trusted_genesis_keys: Vec::new(),
            rules: true,
        })
    }

    /// The state so far.
    pub fn state(&self) -> &ChainState {
        &self.state
    }

    /// The state, by value.
    pub fn into_state(self) -> ChainState {
        self.state
    }

    /// Entries verified so far.
    pub fn size(&self) -> u64 {
        self.state.size
    }

    /// Merkle root of the entries so far.
    pub fn root(&self) -> Hash {
        self.state.tree.root()
    }

    /// Checks one entry completely, signatures included (single
    /// verification). On error the verifier is unchanged.
    ///
    /// # Errors
    /// Any chain, field, rule or signature error, naming the index.
    pub fn push(&mut self, bytes: Vec<u8>) -> Result<(), Error> {
        let prepared = prepare_view(&bytes, self.state.size)?;
        self.check_links(&prepared)?;
        for c in &prepared.signature_checks()? {
            c.verify()?;
        }
        self.commit(&prepared)
    }

    /// Checks the links and rules of a [`prepare`]d entry and advances, but
    /// returns its signatures instead of verifying them. The caller must
    /// verify every returned check (e.g. with [`verify_signatures`]) and
    /// discard the verifier if any fails. On error the verifier is unchanged.
    ///
    /// # Errors
    /// Any chain or rule error, naming the index.
    pub fn push_prepared(&mut self, prepared: &Prepared) -> Result<Vec<SignatureCheck>, Error> {
        let prepared = prepared.view();
        self.check_links(&prepared)?;
        let checks = prepared.signature_checks()?;
        self.commit(&prepared)?;
        Ok(checks)
    }

    /// Checks the links and rules of a [`prepare`]d entry and advances,
    /// like [`ChainVerifier::push_prepared`], for a caller that verifies the
    /// entry's [`Prepared::signature_checks`] itself (e.g. batched on a
    /// worker thread as soon as the entry was prepared; they are the checks
    /// `push_prepared` would return). The caller must discard the verifier
    /// if any of them fails. On error the verifier is unchanged.
    ///
    /// # Errors
    /// Any chain or rule error, naming the index.
    pub fn push_verified(&mut self, prepared: &Prepared) -> Result<(), Error> {
        self.push_verified_view(&prepared.view())
    }

    /// [`ChainVerifier::push_verified`] on a view (e.g. from
    /// [`prepare_view`]); the caller verifies its
    /// [`PreparedView::signature_checks`].
    ///
    /// # Errors
    /// As [`ChainVerifier::push_verified`].
    pub fn push_verified_view(&mut self, prepared: &PreparedView) -> Result<(), Error> {
        self.check_links(prepared)?;
        self.commit(prepared)
    }

    /// Link checks. Changes nothing.
    fn check_links(&self, p: &PreparedView) -> Result<(), Error> {
        let s = &self.state;
        let e = &p.event;
        let index = s.size;
        let broken = |field: &'static str, expected: String, found: String| Error::ChainBroken {
            index,
            field,
            expected,
            found,
        };
        if p.position != index {
            // Prepared for another position: its errors and signature
            // checks would name the wrong entry.
            return Err(broken(
                "position",
                index.to_string(),
                p.position.to_string(),
            ));
        }
        if e.origin != s.origin.as_str() {
            return Err(broken("origin", s.origin.to_string(), e.origin.to_owned()));
        }
        if e.index != index {
            return Err(broken("index", index.to_string(), e.index.to_string()));
        }
        if e.prev_hash != s.last_body_hash {
            return Err(broken(
                "prev_hash",
                s.last_body_hash.to_hex(),
                e.prev_hash.to_hex(),
            ));
        }
        if e.time_ms < s.last_time_ms {
            return Err(broken(
                "time_ms",
                format!(">= {}", s.last_time_ms),
                e.time_ms.to_string(),
            ));
        }
        let is_genesis = matches!(e.kind, view::Kind::Genesis(_));
        if is_genesis != (index == 0) {
            let expected = if index == 0 {
                "genesis"
            } else {
                "any kind but genesis"
            };
            return Err(broken("kind", expected.into(), e.kind.name().into()));
        }
        let key = match s.key_in_force() {
            Some(k) => k,
            None => {
                if !self.trusted_genesis_keys.contains(&e.signer) {
                    return Err(Error::UntrustedGenesisKey {
                        origin: s.origin.to_string(),
                        key: e.signer.to_hex(),
                    });
                }
                e.signer
            }
        };
        if e.signer != key {
            return Err(Error::WrongSigner {
                index,
                expected: key.to_hex(),
                found: e.signer.to_hex(),
            });
        }
        if let view::Kind::KeyRotated(r) = &e.kind {
            let next = PublicKey::from_slice(r.next_key)?;
            if next == key {
                return Err(Error::RuleViolation {
                    index,
                    rule: "rotation-new-key",
                    detail: "the next key equals the key in force".into(),
                });
            }
            Signature::from_slice(r.proof)?;
        }
        // The links above made the body's signer, origin and index the ones
        // in force, so the checks the body claims are the checks.
        Ok(())
    }

    /// Applies the catalog rules (unless the caller does), then advances. Atomic: the catalog fold
    /// leaves the state unchanged on error, and nothing else is touched
    /// before it succeeds.
    fn commit(&mut self, p: &PreparedView) -> Result<(), Error> {
        if self.rules {
            self.state.catalog.apply_view(&p.event)?;
        }
        let s = &mut self.state;
        match &p.event.kind {
            view::Kind::Genesis(_) => s.keys.push(KeyEpoch {
                from_index: 0,
                key: p.event.signer,
            }),
            view::Kind::KeyRotated(r) => s.keys.push(KeyEpoch {
                from_index: s.size + 1,
                key: PublicKey::from_slice(r.next_key)?,
            }),
            _ => {}
        }
        s.tree.append_leaf(p.leaf_hash);
        s.size += 1;
        s.last_body_hash = p.body_hash;
        s.last_time_ms = p.event.time_ms;
        Ok(())
    }

    /// Checks that `checkpoint` describes exactly the entries verified so
    /// far: same origin, same size, same root. (Its signatures are checked
    /// by [`crate::checkpoint`].)
    ///
    /// # Errors
    /// [`Error::CheckpointOrigin`], [`Error::SizeMismatch`],
    /// [`Error::RootMismatch`].
    pub fn check_checkpoint(&self, checkpoint: &Checkpoint) -> Result<(), Error> {
        if checkpoint.origin != self.state.origin {
            return Err(Error::CheckpointOrigin {
                expected: self.state.origin.to_string(),
                found: checkpoint.origin.to_string(),
            });
        }
        if checkpoint.size != self.state.size {
            return Err(Error::SizeMismatch {
                verified: self.state.size,
                checkpoint: checkpoint.size,
            });
        }
        if checkpoint.root != self.root() {
            return Err(Error::RootMismatch {
                size: checkpoint.size,
                computed: self.root(),
                expected: checkpoint.root,
            });
        }
        Ok(())
    }
}
