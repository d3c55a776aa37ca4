//! The witness protocol (FORMAT.md § 21): C2SP tlog-witness's
//! `add-checkpoint`, over this project's BLAKE3 tree.
//!
//! A log (the county, for a department's checkpoint or its own county
//! checkpoint) asks an independent witness to cosign a checkpoint by
//! sending the size the witness last cosigned for that log, a consistency
//! proof from that size, and the signed checkpoint:
//!
//! ```text
//! old <size>\n
//! <base64 hash>\n          zero to 63 lines: the consistency proof
//! \n
//! <signed checkpoint note>
//! ```
//!
//! The witness's decision is [`judge`]: pure, given what it last cosigned.
//! What it answers (the HTTP status and body) is [`Refusal::status`] and,
//! on success, the cosignature line(s) of [`encode_cosignatures`].

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::checkpoint::SignedCheckpoint;
use crate::note::NoteSignature;
use crate::{Error, Hash, merkle};

/// The path of the add-checkpoint request (`POST`).
pub const ADD_CHECKPOINT_PATH: &str = "/add-checkpoint";

/// The path prefix of a witness's latest cosigned checkpoint of a log
/// (`GET /checkpoint/<slug>`, the slug as in FORMAT.md § 9.4).
pub const CHECKPOINT_PATH: &str = "/checkpoint/";

/// Most hashes in a consistency proof (a tree of 2^63 leaves needs fewer).
pub const MAX_PROOF_HASHES: usize = 63;

/// The largest add-checkpoint body read: a note of at most 1 MiB (§ 10)
/// and the proof lines.
pub const MAX_REQUEST_BYTES: usize = (1 << 20) + 64 * 46;

/// A parsed add-checkpoint request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddCheckpoint {
    /// The size the requester believes the witness last cosigned (0: never).
    pub old_size: u64,
    /// Consistency proof from `old_size` to the checkpoint's size.
    pub proof: Vec<Hash>,
    /// The signed checkpoint to cosign.
    pub checkpoint: SignedCheckpoint,
}

fn malformed(m: impl Into<String>) -> Error {
    Error::MalformedWitnessRequest(m.into())
}

impl AddCheckpoint {
    /// The request body.
    pub fn encode(&self) -> String {
        let mut out = format!("old {}\n", self.old_size);
        for h in &self.proof {
            out.push_str(&STANDARD.encode(h.as_bytes()));
            out.push('\n');
        }
        out.push('\n');
        out.push_str(&self.checkpoint.to_string());
        out
    }

    /// Parses a request body from untrusted bytes.
    ///
    /// # Errors
    /// [`Error::MalformedWitnessRequest`] for anything but the exact form
    /// above (canonical decimal and base64, at most
    /// [`MAX_PROOF_HASHES`] hashes, at most [`MAX_REQUEST_BYTES`]); as
    /// [`SignedCheckpoint::from_bytes`] for the note.
    pub fn parse(body: &[u8]) -> Result<AddCheckpoint, Error> {
        if body.len() > MAX_REQUEST_BYTES {
            return Err(malformed(format!(
                "request of {} bytes; at most {MAX_REQUEST_BYTES}",
                body.len()
            )));
        }
        let mut rest = body;
        let mut next_line = || -> Result<&[u8], Error> {
            let end = rest
                .iter()
                .position(|&b| b == b'\n')
                .ok_or_else(|| malformed("a line does not end in a newline"))?;
            let line = &rest[..end];
            rest = &rest[end + 1..];
            Ok(line)
        };
        let first = next_line()?;
        let size = first
            .strip_prefix(b"old ")
            .ok_or_else(|| malformed("the first line is not `old <size>`"))?;
        let old_size =
            canonical_u64(size).ok_or_else(|| malformed("old size is not canonical decimal"))?;
        let mut proof = Vec::new();
        loop {
            let line = next_line()?;
            if line.is_empty() {
                break;
            }
            if proof.len() == MAX_PROOF_HASHES {
                return Err(malformed(format!(
                    "more than {MAX_PROOF_HASHES} proof hashes"
                )));
            }
            let bytes = STANDARD
                .decode(line)
                .ok()
                .filter(|b| b.len() == 32 && STANDARD.encode(b).as_bytes() == line)
                .ok_or_else(|| malformed("a proof line is not canonical base64 of 32 bytes"))?;
            proof.push(Hash::from_slice(&bytes).map_err(|_| malformed("proof hash"))?);
        }
        let checkpoint = SignedCheckpoint::from_bytes(rest)?;
        Ok(AddCheckpoint {
            old_size,
            proof,
            checkpoint,
        })
    }
}

/// Canonical decimal `u64` (no sign, no leading zeros unless `0`).
fn canonical_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() || (s.len() > 1 && s[0] == b'0') || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse().ok()
}

/// What the witness last cosigned for a log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Latest {
    /// Its size.
    pub size: u64,
    /// Its root.
    pub root: Hash,
}

/// Why a witness does not cosign.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The request is not well-formed, or its old size exceeds the
    /// checkpoint's size (400).
    Malformed(String),
    /// The witness does not witness this origin (404).
    UnknownLog,
    /// No valid signature by a key the witness holds for the log (403).
    NotSigned(String),
    /// The old size is not the size the witness last cosigned, or the
    /// checkpoint has that size and another root (409). The answer carries
    /// the witness's latest cosigned checkpoint: with the request's
    /// checkpoint of the same size it is a fork (FORMAT.md § 20).
    Conflict,
    /// The consistency proof does not verify (422).
    BadProof(String),
}

impl Refusal {
    /// The HTTP status of the refusal (FORMAT.md § 21).
    pub fn status(&self) -> u16 {
        match self {
            Refusal::Malformed(_) => 400,
            Refusal::NotSigned(_) => 403,
            Refusal::UnknownLog => 404,
            Refusal::Conflict => 409,
            Refusal::BadProof(_) => 422,
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Malformed(m) => write!(f, "malformed request: {m}"),
            Refusal::UnknownLog => f.write_str("this witness does not witness that log"),
            Refusal::NotSigned(m) => write!(f, "not signed by the log: {m}"),
            Refusal::Conflict => f.write_str(
                "the old size is not the size this witness last cosigned, or the checkpoint contradicts it",
            ),
            Refusal::BadProof(m) => write!(f, "consistency proof: {m}"),
        }
    }
}

/// The witness's decision on a request whose log signature it has already
/// checked: cosign when `request.old_size` is the size it last cosigned
/// (`latest`, `None`: never) and the proof shows the checkpoint extends
/// that tree (equal sizes need equal roots). It never cosigns a smaller
/// size, nor two roots for one size.
///
/// # Errors
/// [`Refusal::Conflict`], [`Refusal::Malformed`], [`Refusal::BadProof`].
pub fn judge(latest: Option<&Latest>, request: &AddCheckpoint) -> Result<(), Refusal> {
    let (size, root) = latest.map_or((0, crate::hash::empty_root()), |l| (l.size, l.root));
    if request.old_size != size {
        return Err(Refusal::Conflict);
    }
    let cp = request.checkpoint.checkpoint();
    if cp.size < size {
        return Err(Refusal::Malformed(format!(
            "old size {size} is beyond the checkpoint's size {}",
            cp.size
        )));
    }
    if cp.size == size && size > 0 {
        if cp.root != root || !request.proof.is_empty() {
            return Err(Refusal::Conflict);
        }
        return Ok(());
    }
    merkle::verify_consistency(size, cp.size, &root, &cp.root, &request.proof)
        .map_err(|e| Refusal::BadProof(e.to_string()))
}

/// The body of a successful answer: the cosignature line(s), each
/// `— <name> <base64>\n`.
pub fn encode_cosignatures(signatures: &[NoteSignature]) -> String {
    signatures.iter().map(|s| format!("{s}\n")).collect()
}

/// Parses a successful answer's body.
///
/// # Errors
/// [`Error::MalformedWitnessRequest`] when a line is not a signature line
/// or there is none (at most 16).
pub fn parse_cosignatures(body: &[u8]) -> Result<Vec<NoteSignature>, Error> {
    let text = std::str::from_utf8(body).map_err(|_| malformed("answer is not UTF-8"))?;
    let text = text
        .strip_suffix('\n')
        .ok_or_else(|| malformed("answer does not end in a newline"))?;
    let sigs = text
        .split('\n')
        .map(NoteSignature::parse_line)
        .collect::<Result<Vec<_>, _>>()?;
    if sigs.is_empty() || sigs.len() > 16 {
        return Err(malformed("an answer carries one to 16 signature lines"));
    }
    Ok(sigs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::Checkpoint;
    use crate::hash::leaf_hash;
    use crate::keys::SigningKey;
    use crate::merkle::MemoryHashes;
    use crate::note::Cosigner;
    use crate::types::{KeyName, Origin};

    fn tree(n: u64, salt: u8) -> (Hash, Vec<Hash>) {
        let leaves: Vec<Hash> = (0..n)
            .map(|i| leaf_hash(&[salt, i as u8, (i >> 8) as u8]))
            .collect();
        (merkle::root(&leaves), leaves)
    }

    fn signed(n: u64, root: Hash) -> SignedCheckpoint {
        let cp = Checkpoint::new(Origin::new("gongkai.example/1/a").unwrap(), n, root);
        SignedCheckpoint::sign(&cp, &SigningKey::from_seed([1; 32])).unwrap()
    }

    fn proof(leaves: &[Hash], m: u64, n: u64) -> Vec<Hash> {
        merkle::consistency_proof(&MemoryHashes::from_leaf_hashes(leaves), m, n).unwrap()
    }

    #[test]
    fn requests_round_trip_and_refuse_non_canonical_forms() {
        let (t, leaves) = tree(10, 0);
        let req = AddCheckpoint {
            old_size: 4,
            proof: proof(&leaves, 4, 10),
            checkpoint: signed(10, t),
        };
        let body = req.encode();
        assert_eq!(AddCheckpoint::parse(body.as_bytes()).unwrap(), req);
        let bad = [
            body.replacen("old 4", "old 04", 1),
            body.replacen("old 4", "old +4", 1),
            body.replacen("old 4", "OLD 4", 1),
            body.replacen("\n\n", "\n", 1),
            format!("old 4\n{}\n\n{}", "A".repeat(43), req.checkpoint),
            format!("old 4\n{}", req.checkpoint),
        ];
        for b in bad {
            assert!(AddCheckpoint::parse(b.as_bytes()).is_err(), "{b:?}");
        }
        let many = format!(
            "old 1\n{}\n{}",
            format!("{}\n", STANDARD.encode([0u8; 32])).repeat(64),
            req.checkpoint
        );
        assert!(AddCheckpoint::parse(many.as_bytes()).is_err());
    }

    #[test]
    fn cosigns_only_append_only_growth() {
        let (t10, leaves) = tree(10, 0);
        let t4 = merkle::root(&leaves[..4]);
        let latest = Latest { size: 4, root: t4 };
        let ok = AddCheckpoint {
            old_size: 4,
            proof: proof(&leaves, 4, 10),
            checkpoint: signed(10, t10),
        };
        assert_eq!(judge(Some(&latest), &ok), Ok(()));
        // First contact: old 0, no proof.
        let first = AddCheckpoint {
            old_size: 0,
            proof: vec![],
            checkpoint: signed(10, t10),
        };
        assert_eq!(judge(None, &first), Ok(()));
        // The requester's idea of the old size is wrong: conflict.
        assert_eq!(judge(Some(&latest), &first), Err(Refusal::Conflict));
        // A fork: same size, another root.
        let (other, _) = tree(4, 9);
        let fork = AddCheckpoint {
            old_size: 4,
            proof: vec![],
            checkpoint: signed(4, other),
        };
        assert_eq!(judge(Some(&latest), &fork), Err(Refusal::Conflict));
        // The same checkpoint again is cosigned again (a fresh time).
        let same = AddCheckpoint {
            old_size: 4,
            proof: vec![],
            checkpoint: signed(4, t4),
        };
        assert_eq!(judge(Some(&latest), &same), Ok(()));
        // A larger tree that does not extend the old one.
        let (bad10, _) = tree(10, 7);
        let bad = AddCheckpoint {
            old_size: 4,
            proof: proof(&leaves, 4, 10),
            checkpoint: signed(10, bad10),
        };
        assert!(matches!(
            judge(Some(&latest), &bad),
            Err(Refusal::BadProof(_))
        ));
        // A smaller size.
        let latest10 = Latest {
            size: 10,
            root: t10,
        };
        let smaller = AddCheckpoint {
            old_size: 10,
            proof: vec![],
            checkpoint: signed(4, t4),
        };
        assert!(matches!(
            judge(Some(&latest10), &smaller),
            Err(Refusal::Malformed(_))
        ));
    }

    #[test]
    fn cosignature_answers_round_trip() {
        let w = Cosigner::new(
            KeyName::new("w.example").unwrap(),
            SigningKey::from_seed([3; 32]),
        );
        let cp = signed(1, Hash([1; 32]));
        let sig = w.cosign(cp.text(), 1_700_000_000).unwrap();
        let body = encode_cosignatures(std::slice::from_ref(&sig));
        assert_eq!(parse_cosignatures(body.as_bytes()).unwrap(), vec![sig]);
        assert!(parse_cosignatures(b"").is_err());
        assert!(parse_cosignatures(b"hello\n").is_err());
    }
}
