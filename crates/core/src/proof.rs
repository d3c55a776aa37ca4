//! Proof bundles (FORMAT.md § 18): the entries of one item's history, each
//! with its inclusion proof, and the signed (and cosigned) checkpoint they
//! are proven against — everything a citizen needs to show, offline, that
//! these entries are in the department's log.
//!
//! What a bundle proves: the listed entries are in the log whose checkpoint
//! is signed by a key the checker trusts (and cosigned by k of its
//! witnesses). What it does **not** prove: that no later entry changed the
//! item; a bundle made against a newer checkpoint with the item's full
//! history shows that as of that checkpoint.
//!
//! The bundle is JSON (field names below); parsing the bytes is the caller's
//! business (core has no JSON parser), [`ProofBundle::verify`] is pure.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use crate::checkpoint::SignedCheckpoint;
use crate::entry::Entry;
use crate::event::{Event, Kind, kind_name};
use crate::merkle::verify_inclusion;
use crate::note::{KeyType, VerifierKey, Verifiers};
use crate::{Error, Hash};

/// The `format` value of a version-1 bundle.
pub const PROOF_FORMAT: &str = "gongkai-proof/v1";

/// What every bundle says about itself.
pub const PROOF_STATEMENT: &str = "These entries are in the log as of the checkpoint below \
(inclusion proofs against its root, which its signatures commit to). This does not show that \
no later entry changed the item: check a bundle against a newer checkpoint, with the item's \
full history, for that.";

/// One proven entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProvenEntry {
    /// Leaf index.
    pub index: u64,
    /// The entry, verbatim, standard base64.
    pub entry: String,
    /// The RFC 9162 inclusion proof, nearest the leaf first, each hash
    /// standard base64.
    pub proof: Vec<String>,
}

/// A proof bundle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProofBundle {
    /// Always [`PROOF_FORMAT`].
    pub format: String,
    /// The log.
    pub origin: String,
    /// The item whose history this is.
    pub item_id: String,
    /// The signed checkpoint note, with every signature and cosignature.
    pub checkpoint: String,
    /// The item's history entries, in log order.
    pub entries: Vec<ProvenEntry>,
    /// [`PROOF_STATEMENT`] (informational; not checked).
    pub statement: String,
}

/// What [`ProofBundle::verify`] established.
#[derive(Clone, Debug, PartialEq)]
pub struct ProvenHistory {
    /// Checkpoint size the entries are proven in.
    pub size: u64,
    /// Checkpoint root.
    pub root: Hash,
    /// Key names of the department signatures that verified.
    pub signed_by: Vec<String>,
    /// Witness names and cosignature times (Unix seconds) that verified.
    pub cosigned_by: Vec<(String, u64)>,
    /// The decoded events, in order.
    pub events: Vec<Event>,
}

fn bad(reason: impl Into<String>) -> Error {
    Error::ProofBundle(reason.into())
}

fn b64(what: &'static str, s: &str) -> Result<Vec<u8>, Error> {
    STANDARD
        .decode(s)
        .map_err(|_| Error::InvalidBase64 { what })
}

/// Which event kinds concern an item, and which item.
pub fn item_of(kind: &Kind) -> Option<&str> {
    match kind {
        Kind::Published(p) => Some(&p.item_id),
        Kind::Amended(a) => Some(&a.item_id),
        Kind::Withdrawn(w) => Some(&w.item_id),
        Kind::Redacted(r) => Some(&r.item_id),
        _ => None,
    }
}

impl ProofBundle {
    /// Verifies the bundle: the checkpoint is for `origin`, carries a valid
    /// signature by at least one of `log_keys` (Ed25519 keys named for the
    /// origin; any of them signing badly is an error) and valid
    /// cosignatures by `quorum` of `witnesses`; every entry parses, is
    /// canonical and field-valid, names this origin and its index, carries
    /// a valid signature under the signer its body names, concerns
    /// `item_id`, and is included in the checkpoint's tree.
    ///
    /// # Errors
    /// [`Error::ProofBundle`] for a wrong format, origin or item; the
    /// checkpoint, entry and proof errors of core otherwise, naming the
    /// index.
    pub fn verify(
        &self,
        log_keys: &[VerifierKey],
        witnesses: &Verifiers,
        quorum: usize,
    ) -> Result<ProvenHistory, Error> {
        if self.format != PROOF_FORMAT {
            return Err(bad(format!(
                "format {:?}, expected {PROOF_FORMAT:?}",
                self.format
            )));
        }
        let cp = SignedCheckpoint::parse(&self.checkpoint)?;
        let checkpoint = cp.checkpoint();
        if checkpoint.origin.as_str() != self.origin {
            return Err(Error::CheckpointOrigin {
                expected: self.origin.clone(),
                found: checkpoint.origin.to_string(),
            });
        }
        let mut signed_by = Vec::new();
        let mut cosigned_by = Vec::new();
        for key in log_keys {
            if key.key_type() != KeyType::Ed25519 || key.name().as_str() != self.origin {
                continue;
            }
            let present = cp
                .note()
                .signatures()
                .iter()
                .any(|s| s.name() == key.name() && s.id() == key.id());
            if !present {
                continue;
            }
            let v = cp.verify(key, witnesses, quorum).map_err(|e| match e {
                Error::NoteQuorum { found, .. } => Error::CosignatureQuorum {
                    required: quorum,
                    of: witnesses.len(),
                    present: found,
                },
                e => e,
            })?;
            signed_by.push(key.to_string());
            cosigned_by = v
                .cosignatures
                .iter()
                .map(|c| (c.name.to_string(), c.timestamp.unwrap_or(0)))
                .collect();
        }
        if signed_by.is_empty() {
            return Err(Error::NoteQuorum {
                found: 0,
                required: 1,
            });
        }
        if self.entries.is_empty() {
            return Err(bad("the bundle holds no entries"));
        }
        let mut events = Vec::with_capacity(self.entries.len());
        let mut last: Option<u64> = None;
        for p in &self.entries {
            if last.is_some_and(|l| p.index <= l) {
                return Err(bad(format!("entry {} is out of log order", p.index)));
            }
            last = Some(p.index);
            let entry = Entry::parse(b64("entry", &p.entry)?, p.index)?;
            let event = entry.decode_event(p.index)?;
            if event.origin.as_str() != self.origin {
                return Err(bad(format!(
                    "entry {} belongs to log {}",
                    p.index, event.origin
                )));
            }
            if event.index != p.index {
                return Err(bad(format!(
                    "entry listed at {} claims index {}",
                    p.index, event.index
                )));
            }
            if item_of(&event.kind) != Some(self.item_id.as_str()) {
                return Err(bad(format!(
                    "entry {} ({}) does not concern item {}",
                    p.index,
                    kind_name(&event.kind),
                    self.item_id
                )));
            }
            entry.verify_signature(&event.signer, p.index)?;
            let proof = p
                .proof
                .iter()
                .map(|h| Hash::from_slice(&b64("proof hash", h)?))
                .collect::<Result<Vec<_>, _>>()?;
            // RFC 9162 §2.1.3.2: verify inclusion.
            verify_inclusion(
                &entry.leaf_hash(),
                p.index,
                checkpoint.size,
                &proof,
                &checkpoint.root,
            )?;
            events.push(event);
        }
        Ok(ProvenHistory {
            size: checkpoint.size,
            root: checkpoint.root,
            signed_by,
            cosigned_by,
            events,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::Checkpoint;
    use crate::event::pb;
    use crate::keys::SigningKey;
    use crate::merkle::{MemoryHashes, inclusion_proof};
    use crate::note::Cosigner;
    use crate::types::{KeyName, Origin};
    use crate::writer::LogWriter;

    const ORIGIN: &str = "gongkai.example/510122/finance";

    fn bundle() -> (ProofBundle, SigningKey, Cosigner) {
        let key = SigningKey::from_seed([4; 32]);
        let mut w = LogWriter::new(Origin::new(ORIGIN).unwrap(), key.clone());
        let t = 1_767_283_200_000;
        let mut entries = vec![
            w.append(
                Kind::Genesis(pb::Genesis {
                    department: "某某县财政局".into(),
                    division_code: "510122".into(),
                }),
                t,
            )
            .unwrap(),
        ];
        for (i, id) in ["a", "b"].iter().enumerate() {
            entries.push(
                w.append(
                    Kind::Published(pb::Published {
                        item_id: (*id).into(),
                        matter_id: "m".into(),
                        title: "标题".into(),
                        content: Some(pb::ContentRef {
                            digest: vec![1; 32],
                            length: 3,
                            media_type: "text/plain".into(),
                        }),
                        date_formed: "2026-01-01".into(),
                        ..Default::default()
                    }),
                    t + 1 + i as u64,
                )
                .unwrap(),
            );
        }
        entries.push(
            w.append(
                Kind::Withdrawn(pb::Withdrawn {
                    item_id: "a".into(),
                    reason: "错误".into(),
                    legal_basis: "第十条".into(),
                }),
                t + 5,
            )
            .unwrap(),
        );
        let leaves: Vec<Hash> = entries.iter().map(Entry::leaf_hash).collect();
        let hashes = MemoryHashes::from_leaf_hashes(&leaves);
        let size = entries.len() as u64;
        let cp = Checkpoint::new(
            Origin::new(ORIGIN).unwrap(),
            size,
            crate::merkle::root(&leaves),
        );
        let mut signed = SignedCheckpoint::sign(&cp, &key).unwrap();
        let witness = Cosigner::new(
            KeyName::new("county.example").unwrap(),
            SigningKey::from_seed([8; 32]),
        );
        signed.cosign(&witness, 1_767_290_000).unwrap();
        let proven = [1u64, 3]
            .iter()
            .map(|&i| ProvenEntry {
                index: i,
                entry: STANDARD.encode(entries[i as usize].as_bytes()),
                proof: inclusion_proof(&hashes, i, size)
                    .unwrap()
                    .iter()
                    .map(|h| STANDARD.encode(h.0))
                    .collect(),
            })
            .collect();
        let b = ProofBundle {
            format: PROOF_FORMAT.into(),
            origin: ORIGIN.into(),
            item_id: "a".into(),
            checkpoint: signed.to_string(),
            entries: proven,
            statement: PROOF_STATEMENT.into(),
        };
        (b, key, witness)
    }

    #[test]
    fn a_genuine_bundle_verifies_and_tampering_does_not() {
        let (b, key, witness) = bundle();
        let vk = Checkpoint::log_verifier_key(&Origin::new(ORIGIN).unwrap(), &key.public_key());
        let w = Verifiers::new([witness.verifier_key()]).unwrap();
        let h = b.verify(std::slice::from_ref(&vk), &w, 1).unwrap();
        assert_eq!(h.size, 4);
        assert_eq!(h.events.len(), 2);
        assert_eq!(
            h.cosigned_by,
            vec![("county.example".into(), 1_767_290_000)]
        );
        // Without the witness required it verifies too; with another
        // department key it does not.
        b.verify(std::slice::from_ref(&vk), &Verifiers::default(), 0)
            .unwrap();
        let other = Checkpoint::log_verifier_key(
            &Origin::new(ORIGIN).unwrap(),
            &SigningKey::from_seed([5; 32]).public_key(),
        );
        assert!(b.verify(&[other], &w, 1).is_err());
        // Two witnesses required, one cosigned: the reader is told so.
        let second = Cosigner::new(
            KeyName::new("paper.example").unwrap(),
            SigningKey::from_seed([9; 32]),
        );
        let two = Verifiers::new([witness.verifier_key(), second.verifier_key()]).unwrap();
        assert_eq!(
            b.verify(std::slice::from_ref(&vk), &two, 2)
                .unwrap_err()
                .to_string(),
            "2 of 2 witness cosignatures required, 1 present"
        );
        // Another item's entry, a wrong proof, a flipped entry byte, a
        // claimed item that is not the entries'.
        let mut x = b.clone();
        x.item_id = "b".into();
        assert!(x.verify(std::slice::from_ref(&vk), &w, 1).is_err());
        let mut x = b.clone();
        x.entries[0].proof.pop();
        assert!(x.verify(std::slice::from_ref(&vk), &w, 1).is_err());
        let mut x = b.clone();
        let mut bytes = STANDARD.decode(&x.entries[1].entry).unwrap();
        let n = bytes.len() - 1;
        bytes[n] ^= 1;
        x.entries[1].entry = STANDARD.encode(bytes);
        assert!(x.verify(std::slice::from_ref(&vk), &w, 1).is_err());
        let mut x = b;
        x.entries.swap(0, 1);
        assert!(x.verify(&[vk], &w, 1).is_err());
    }
}
