//! Checkpoints and their cosignatures (FORMAT.md § Checkpoints).
//!
//! A checkpoint is a [C2SP tlog-checkpoint](https://c2sp.org/tlog-checkpoint)
//! note text (§ Note text): the origin, the decimal tree size with no leading
//! zeros, the standard base64 of the 32-byte root hash, then optional
//! non-empty extension lines. Gongkai origins follow [`Origin`], which is
//! stricter than C2SP; a first line that is not a valid `Origin` makes the
//! checkpoint malformed.
//!
//! The department signs its checkpoint as a signed note with Ed25519
//! (signature type `0x01`) under its origin as key name (tlog-checkpoint
//! § Signatures). Witnesses, the county first, add
//! [C2SP tlog-cosignature/v1](https://c2sp.org/tlog-cosignature) signature
//! lines (type `0x04`), which carry the time of cosigning.
//!
//! ```
//! use gongkai_core::checkpoint::{Checkpoint, SignedCheckpoint};
//! use gongkai_core::keys::SigningKey;
//! use gongkai_core::note::{Cosigner, Verifiers};
//! use gongkai_core::types::{KeyName, Origin};
//! use gongkai_core::Hash;
//!
//! let origin = Origin::new("gongkai.example/510122/finance").unwrap();
//! let department = SigningKey::from_seed([1; 32]);
//! let county = Cosigner::new(
//!     KeyName::new("county.example/witness").unwrap(),
//!     SigningKey::from_seed([2; 32]),
//! );
//!
//! let checkpoint = Checkpoint::new(origin.clone(), 42, Hash::ZERO);
//! let mut signed = SignedCheckpoint::sign(&checkpoint, &department).unwrap();
//! signed.cosign(&county, 1_700_000_000).unwrap();
//!
//! // An auditor trusts the department key and the county witness key.
//! let log_key = Checkpoint::log_verifier_key(&origin, &department.public_key());
//! let witnesses = Verifiers::from(county.verifier_key());
//! let parsed = SignedCheckpoint::parse(&signed.to_string()).unwrap();
//! let verified = parsed.verify(&log_key, &witnesses, 1).unwrap();
//! assert_eq!(parsed.checkpoint().size, 42);
//! assert_eq!(verified.cosignatures[0].timestamp, Some(1_700_000_000));
//! ```

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::keys::SigningKey;
use crate::note::{
    self, Cosigner, KeyType, Note, NoteSignature, NoteSigner, VerifiedSignature, VerifierKey,
    Verifiers,
};
use crate::types::{KeyName, Origin};
use crate::{Error, Hash};

/// The text of a checkpoint (tlog-checkpoint § Note text).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Checkpoint {
    /// The log origin (line 1).
    pub origin: Origin,
    /// The tree size (line 2).
    pub size: u64,
    /// The Merkle root at that size (line 3).
    pub root: Hash,
    /// Extension lines, each non-empty and without control characters.
    pub extensions: Vec<String>,
}

impl Checkpoint {
    /// A checkpoint without extension lines.
    pub fn new(origin: Origin, size: u64, root: Hash) -> Checkpoint {
        Checkpoint {
            origin,
            size,
            root,
            extensions: Vec::new(),
        }
    }

    /// Parses a checkpoint note text (without signatures).
    ///
    /// # Errors
    /// [`Error::MalformedNote`] if `text` is not a valid note text (as
    /// [`note::check_text`]); [`Error::MalformedCheckpoint`] if it has fewer
    /// than three lines, the origin is not a valid [`Origin`], the size is
    /// not a decimal `u64` without leading zeros, the root is not canonical
    /// base64 of 32 bytes, or an extension line is empty.
    pub fn parse(text: &str) -> Result<Checkpoint, Error> {
        note::check_text(text)?;
        let body = text
            .strip_suffix('\n')
            .ok_or(Error::MalformedCheckpoint("does not end in a newline"))?;
        let mut lines = body.split('\n');
        let (Some(origin), Some(size), Some(root)) = (lines.next(), lines.next(), lines.next())
        else {
            return Err(Error::MalformedCheckpoint("fewer than three lines"));
        };
        let origin = Origin::new(origin)
            .map_err(|_| Error::MalformedCheckpoint("first line is not a valid origin"))?;
        let size = parse_size(size)?;
        let root = parse_root(root)?;
        let mut extensions = Vec::new();
        for line in lines {
            if line.is_empty() {
                return Err(Error::MalformedCheckpoint("empty extension line"));
            }
            extensions.push(line.to_owned());
        }
        Ok(Checkpoint {
            origin,
            size,
            root,
            extensions,
        })
    }

    /// The note text: origin, size, base64 root and extension lines, each
    /// ending in a newline.
    pub fn to_text(&self) -> String {
        let mut text = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            STANDARD.encode(self.root.as_bytes())
        );
        for line in &self.extensions {
            text.push_str(line);
            text.push('\n');
        }
        text
    }

    /// The verifier key a department publishes for its checkpoints: type
    /// `0x01` under the origin as key name.
    pub fn log_verifier_key(origin: &Origin, key: &crate::keys::PublicKey) -> VerifierKey {
        VerifierKey::new(KeyName::from(origin), KeyType::Ed25519, *key)
    }
}

/// Line 2: ASCII decimal, no leading zeros unless the size is `0`.
fn parse_size(line: &str) -> Result<u64, Error> {
    if line.is_empty() || !line.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::MalformedCheckpoint("tree size is not decimal"));
    }
    if line.len() > 1 && line.starts_with('0') {
        return Err(Error::MalformedCheckpoint("tree size has a leading zero"));
    }
    line.parse::<u64>()
        .map_err(|_| Error::MalformedCheckpoint("tree size does not fit in 64 bits"))
}

/// Line 3: canonical standard base64 of exactly 32 bytes.
fn parse_root(line: &str) -> Result<Hash, Error> {
    let bytes = STANDARD
        .decode(line)
        .map_err(|_| Error::MalformedCheckpoint("root hash is not base64"))?;
    if STANDARD.encode(&bytes) != line {
        return Err(Error::MalformedCheckpoint(
            "root hash is not canonical base64",
        ));
    }
    Hash::from_slice(&bytes).map_err(|_| Error::MalformedCheckpoint("root hash is not 32 bytes"))
}

/// Cosigns a checkpoint text as witness `witness_name` at `time_secs` (Unix
/// seconds), per tlog-cosignature/v1. Returns the signature line to add.
///
/// # Errors
/// As [`Checkpoint::parse`] (only checkpoints are cosigned) and
/// [`Cosigner::cosign`].
pub fn cosign(
    checkpoint_text: &str,
    witness_name: &KeyName,
    witness_key: &SigningKey,
    time_secs: u64,
) -> Result<NoteSignature, Error> {
    Checkpoint::parse(checkpoint_text)?;
    Cosigner::new(witness_name.clone(), witness_key.clone()).cosign(checkpoint_text, time_secs)
}

/// What [`SignedCheckpoint::verify`] established.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct VerifiedCheckpoint {
    /// The department's signature.
    pub log_signature: VerifiedSignature,
    /// Verified signatures by the witness keys, one per key; cosignatures
    /// carry their timestamps.
    pub cosignatures: Vec<VerifiedSignature>,
}

/// A checkpoint together with its signed note.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SignedCheckpoint {
    note: Note,
    checkpoint: Checkpoint,
}

impl SignedCheckpoint {
    /// Parses a signed checkpoint. Signatures are not verified here.
    ///
    /// # Errors
    /// As [`Note::parse`] and [`Checkpoint::parse`].
    pub fn parse(signed: &str) -> Result<SignedCheckpoint, Error> {
        SignedCheckpoint::from_note(Note::parse(signed)?)
    }

    /// Parses a signed checkpoint from untrusted bytes.
    ///
    /// # Errors
    /// As [`Note::from_bytes`] and [`Checkpoint::parse`].
    pub fn from_bytes(signed: &[u8]) -> Result<SignedCheckpoint, Error> {
        SignedCheckpoint::from_note(Note::from_bytes(signed)?)
    }

    /// Reads a note as a checkpoint.
    ///
    /// # Errors
    /// As [`Checkpoint::parse`] on the note text.
    pub fn from_note(note: Note) -> Result<SignedCheckpoint, Error> {
        let checkpoint = Checkpoint::parse(note.text())?;
        Ok(SignedCheckpoint { note, checkpoint })
    }

    /// Signs `checkpoint` with the department key, under its origin as key
    /// name (tlog-checkpoint § Signatures).
    ///
    /// # Errors
    /// [`Error::MalformedCheckpoint`] or [`Error::MalformedNote`] if the
    /// checkpoint's text does not parse back (e.g. an empty extension line).
    pub fn sign(checkpoint: &Checkpoint, key: &SigningKey) -> Result<SignedCheckpoint, Error> {
        let text = checkpoint.to_text();
        let parsed = Checkpoint::parse(&text)?;
        let mut note = Note::new(&text)?;
        let signer = NoteSigner::new(KeyName::from(&parsed.origin), key.clone());
        note.add_signature(signer.sign(&text)?)?;
        Ok(SignedCheckpoint {
            note,
            checkpoint: parsed,
        })
    }

    /// The checkpoint.
    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }

    /// The signed note.
    pub fn note(&self) -> &Note {
        &self.note
    }

    /// The checkpoint's note text (what is signed).
    pub fn text(&self) -> &str {
        self.note.text()
    }

    /// Adds a cosignature by `cosigner` at `time_secs`. Returns whether it
    /// was added (a signature by the same key name and id is kept as is).
    ///
    /// # Errors
    /// As [`Cosigner::cosign`] and [`Note::add_signature`].
    pub fn cosign(&mut self, cosigner: &Cosigner, time_secs: u64) -> Result<bool, Error> {
        let signature = cosigner.cosign(self.note.text(), time_secs)?;
        self.note.add_signature(signature)
    }

    /// Adds a signature line received from elsewhere (e.g. from
    /// [`cosign`]). Returns whether it was added.
    ///
    /// # Errors
    /// As [`Note::add_signature`].
    pub fn add_signature(&mut self, signature: NoteSignature) -> Result<bool, Error> {
        self.note.add_signature(signature)
    }

    /// Merges the signature lines of `other`, which must be the same
    /// checkpoint text; duplicates (same key name and id) are dropped.
    /// Returns how many were added.
    ///
    /// # Errors
    /// [`Error::NoteTextMismatch`] if the texts differ; as
    /// [`Note::add_signature`].
    pub fn merge(&mut self, other: &SignedCheckpoint) -> Result<usize, Error> {
        self.note.merge(&other.note)
    }

    /// Verifies the department signature under `log_key` and requires
    /// cosignatures by at least `required` distinct keys of `witnesses`.
    ///
    /// # Errors
    /// [`Error::CheckpointOrigin`] if `log_key` is not named for this
    /// checkpoint's origin; [`Error::NoteSignatureInvalid`] if any signature
    /// by `log_key` or a witness key does not verify; [`Error::NoteQuorum`]
    /// if the department signature is missing (`required` 1) or too few
    /// witnesses cosigned.
    pub fn verify(
        &self,
        log_key: &VerifierKey,
        witnesses: &Verifiers,
        required: usize,
    ) -> Result<VerifiedCheckpoint, Error> {
        if log_key.name().as_str() != self.checkpoint.origin.as_str() {
            return Err(Error::CheckpointOrigin {
                expected: log_key.name().to_string(),
                found: self.checkpoint.origin.to_string(),
            });
        }
        // A cosignature must never count as the department's signature, nor
        // a plain signature (which has no timestamp) as a cosignature.
        if log_key.key_type() != KeyType::Ed25519 {
            return Err(Error::MalformedVerifierKey(
                "the log key must be an Ed25519 (0x01) key",
            ));
        }
        if witnesses
            .iter()
            .any(|w| w.key_type() != KeyType::CosignatureV1)
        {
            return Err(Error::MalformedVerifierKey(
                "witness keys must be tlog-cosignature/v1 (0x04) keys",
            ));
        }
        let mut log = self.note.verify(&Verifiers::from(log_key.clone()))?;
        let cosignatures = self.note.verify_quorum(witnesses, required)?;
        Ok(VerifiedCheckpoint {
            log_signature: log.remove(0),
            cosignatures,
        })
    }
}

impl fmt::Display for SignedCheckpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.note.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> Origin {
        Origin::new("gongkai.example/510122/finance").unwrap()
    }

    fn checkpoint() -> Checkpoint {
        Checkpoint::new(origin(), 20852163, crate::hash::leaf_hash(b"x"))
    }

    fn witness(n: &str, seed: u8) -> Cosigner {
        Cosigner::new(KeyName::new(n).unwrap(), SigningKey::from_seed([seed; 32]))
    }

    #[test]
    fn text_round_trip() {
        let mut c = checkpoint();
        let text = c.to_text();
        assert_eq!(Checkpoint::parse(&text).unwrap(), c);
        c.extensions = vec!["ext one".into(), "— two".into()];
        let text = c.to_text();
        assert!(text.ends_with("\next one\n— two\n"));
        assert_eq!(Checkpoint::parse(&text).unwrap(), c);
        let zero = Checkpoint::new(origin(), 0, Hash::ZERO);
        assert!(zero.to_text().contains("\n0\n"));
        assert_eq!(Checkpoint::parse(&zero.to_text()).unwrap(), zero);
        let max = Checkpoint::new(origin(), u64::MAX, Hash::ZERO);
        assert_eq!(Checkpoint::parse(&max.to_text()).unwrap(), max);
    }

    #[test]
    fn malformed_checkpoints() {
        let root = STANDARD.encode([1u8; 32]);
        let o = origin();
        for (bad, why) in [
            (format!("{o}\n012\n{root}\n"), "leading zero"),
            (format!("{o}\n00\n{root}\n"), "double zero"),
            (format!("{o}\n18446744073709551616\n{root}\n"), "overflow"),
            (format!("{o}\n+1\n{root}\n"), "sign"),
            (format!("{o}\n-1\n{root}\n"), "negative"),
            (format!("{o}\n1 \n{root}\n"), "space"),
            (format!("{o}\n\n{root}\n"), "empty size"),
            (
                format!("{o}\n1\n{}\n", STANDARD.encode([1u8; 31])),
                "short root",
            ),
            (
                format!("{o}\n1\n{}\n", STANDARD.encode([1u8; 33])),
                "long root",
            ),
            (
                format!("{o}\n1\n{}\n", root.trim_end_matches('=')),
                "unpadded root",
            ),
            (format!("{o}\n1\n"), "missing root"),
            (format!("{o}\n"), "missing size"),
            (format!("{o}\n1\n{root}"), "no final newline"),
            (format!("{o}\n1\n{root}\n\n"), "empty extension"),
            (
                format!("{o}\n1\n{root}\nx\n\ny\n"),
                "empty extension in middle",
            ),
            (format!("https://x\n1\n{root}\n"), "origin not an Origin"),
            (format!("a b\n1\n{root}\n"), "origin with space"),
            (format!("{o}\r\n1\n{root}\n"), "CR"),
            (String::new(), "empty"),
        ] {
            assert!(Checkpoint::parse(&bad).is_err(), "{why}: {bad:?} accepted");
        }
    }

    #[test]
    fn signed_checkpoint_round_trip() {
        let key = SigningKey::from_seed([1; 32]);
        let log_key = Checkpoint::log_verifier_key(&origin(), &key.public_key());
        let mut sc = SignedCheckpoint::sign(&checkpoint(), &key).unwrap();
        let w1 = witness("county.example/witness", 2);
        let w2 = witness("inspect.example/witness", 3);
        let w3 = witness("other.example/witness", 4);
        assert!(sc.cosign(&w1, 1_700_000_000).unwrap());
        let line = cosign(
            sc.text(),
            w2.name(),
            &SigningKey::from_seed([3; 32]),
            1_700_000_100,
        )
        .unwrap();
        assert!(sc.add_signature(line).unwrap());

        let text = sc.to_string();
        let parsed = SignedCheckpoint::parse(&text).unwrap();
        assert_eq!(parsed, sc);
        assert_eq!(parsed.to_string(), text);
        assert_eq!(parsed.checkpoint(), &checkpoint());

        let witnesses =
            Verifiers::new([w1.verifier_key(), w2.verifier_key(), w3.verifier_key()]).unwrap();
        let v = parsed.verify(&log_key, &witnesses, 2).unwrap();
        assert_eq!(v.log_signature.name.as_str(), origin().as_str());
        assert_eq!(v.cosignatures.len(), 2);
        assert_eq!(v.cosignatures[0].timestamp, Some(1_700_000_000));
        assert_eq!(v.cosignatures[1].timestamp, Some(1_700_000_100));
        assert_eq!(
            parsed.verify(&log_key, &witnesses, 3),
            Err(Error::NoteQuorum {
                found: 2,
                required: 3
            })
        );

        // A key for another origin is refused before any signature check.
        let other = Checkpoint::log_verifier_key(
            &Origin::new("gongkai.example/510122/health").unwrap(),
            &key.public_key(),
        );
        assert!(matches!(
            parsed.verify(&other, &witnesses, 0),
            Err(Error::CheckpointOrigin { .. })
        ));
        // The department key of a different department: no log signature.
        let wrong =
            Checkpoint::log_verifier_key(&origin(), &SigningKey::from_seed([9; 32]).public_key());
        assert!(matches!(
            parsed.verify(&wrong, &witnesses, 0),
            Err(Error::NoteQuorum { found: 0, .. })
        ));
        // The department's own signature is not a cosignature: a plain
        // (0x01) key is refused as a witness key, and a cosigner key as the
        // log key.
        let as_witness = Verifiers::from(log_key.clone());
        assert!(matches!(
            parsed.verify(&log_key, &as_witness, 1),
            Err(Error::MalformedVerifierKey(_))
        ));
        let witness_as_log = witnesses.iter().next().unwrap().clone();
        assert!(parsed.verify(&witness_as_log, &witnesses, 0).is_err());
    }

    #[test]
    fn merge_signatures_from_sources() {
        let key = SigningKey::from_seed([1; 32]);
        let base = SignedCheckpoint::sign(&checkpoint(), &key).unwrap();
        let (w1, w2) = (witness("w1.example", 2), witness("w2.example", 3));
        let mut a = base.clone();
        a.cosign(&w1, 10).unwrap();
        let mut b = base.clone();
        b.cosign(&w2, 20).unwrap();
        b.cosign(&w1, 30).unwrap(); // a second cosignature by w1: dropped
        assert_eq!(a.merge(&b).unwrap(), 1);
        assert_eq!(a.note().signatures().len(), 3);
        assert_eq!(a.text(), base.text());
        let v = a
            .verify(
                &Checkpoint::log_verifier_key(&origin(), &key.public_key()),
                &Verifiers::new([w1.verifier_key(), w2.verifier_key()]).unwrap(),
                2,
            )
            .unwrap();
        assert_eq!(v.cosignatures[0].timestamp, Some(10));
        let other =
            SignedCheckpoint::sign(&Checkpoint::new(origin(), 1, Hash::ZERO), &key).unwrap();
        assert_eq!(a.merge(&other), Err(Error::NoteTextMismatch));
    }

    #[test]
    fn cosign_refuses_non_checkpoints() {
        let k = SigningKey::from_seed([2; 32]);
        let n = KeyName::new("w").unwrap();
        assert!(cosign("hello\n", &n, &k, 1).is_err());
        assert!(cosign(&checkpoint().to_text(), &n, &k, 1).is_ok());
    }

    #[test]
    fn bad_extension_cannot_be_signed() {
        let mut c = checkpoint();
        c.extensions.push(String::new());
        assert!(SignedCheckpoint::sign(&c, &SigningKey::from_seed([1; 32])).is_err());
    }
}
