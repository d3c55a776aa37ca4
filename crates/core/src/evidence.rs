//! Evidence of a department's misbehaviour (FORMAT.md § 20).
//!
//! Evidence holds only what proves misbehaviour by itself: anyone with the
//! department's verifier key(s) checks it with [`Evidence::verify`], trusting
//! nobody — not the county that wrote it, not the department. The kinds:
//!
//! * `checkpoint-fork`: two signed checkpoints of the same size with
//!   different roots;
//! * `entry-fork`: two signed entries at the same index with different bytes;
//! * `broken-link`: signed entries at indexes `i` and `i + 1` where the
//!   second's `prev_hash` is not the first's body hash (so the department
//!   signed two different entries at `i`);
//! * `not-extension`: a signed checkpoint of size `M` (absent when `M = 0`),
//!   the compact range of the tree at `M` (its subtree hashes, which must
//!   fold to that checkpoint's root), the signed, linked entries
//!   `[M, N)` and a signed checkpoint of size `N > M` whose root is not the
//!   root of that extension;
//! * `inconsistent`: a signed checkpoint of size `M`, a signed checkpoint of
//!   size `N < M`, a root at `N` and a consistency proof from it to the
//!   root at `M`, where the checkpoint at `N` names a different root.
//!
//! The file is UTF-8 text, one `key value` line each, in this order:
//!
//! ```text
//! gongkai-evidence/v1
//! origin <origin>
//! kind <kind>
//! observed <unix seconds>
//! checkpoint <base64 signed note>     (0–2, see the kinds)
//! subtree <base64 hash>               (not-extension only)
//! entry <index> <base64 entry>        (entry kinds, not-extension)
//! root <base64 hash>                  (inconsistent only)
//! proof <base64 hash>                 (inconsistent only)
//! ```

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::chain::prepare;
use crate::checkpoint::{Checkpoint, SignedCheckpoint};
use crate::hash::body_hash;
use crate::keys::PublicKey;
use crate::merkle::{TreeState, verify_consistency};
use crate::note::Verifiers;
use crate::types::Origin;
use crate::{Error, Hash};

/// The first line of an evidence file.
pub const EVIDENCE_MAGIC: &str = "gongkai-evidence/v1";

/// Largest evidence file, bytes.
pub const MAX_EVIDENCE_LEN: usize = 64 << 20;

/// What the evidence shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Misbehaviour {
    /// Two signed checkpoints of one size with different roots.
    CheckpointFork {
        /// One checkpoint.
        a: SignedCheckpoint,
        /// The other.
        b: SignedCheckpoint,
    },
    /// Two different signed entries at one index.
    EntryFork {
        /// The index.
        index: u64,
        /// One entry.
        a: Vec<u8>,
        /// The other.
        b: Vec<u8>,
    },
    /// Signed entries at `index` and `index + 1` that do not link.
    BrokenLink {
        /// Index of the first entry.
        index: u64,
        /// The entry at `index`.
        a: Vec<u8>,
        /// The entry at `index + 1`.
        b: Vec<u8>,
    },
    /// A checkpoint that is not the extension of a signed checkpoint by
    /// signed entries.
    NotExtension {
        /// The signed checkpoint of size `M` (none when `M = 0`).
        old: Option<SignedCheckpoint>,
        /// The subtree hashes of the tree at `M`, left to right.
        subtrees: Vec<Hash>,
        /// The signed entries `[M, N)`.
        entries: Vec<Vec<u8>>,
        /// The signed checkpoint of size `N`.
        new: SignedCheckpoint,
    },
    /// A smaller checkpoint inconsistent with a larger one.
    Inconsistent {
        /// The signed checkpoint of size `M`.
        larger: SignedCheckpoint,
        /// The signed checkpoint of size `N < M`.
        smaller: SignedCheckpoint,
        /// The root at `N` of the tree the larger checkpoint commits to.
        root: Hash,
        /// Consistency proof from `(N, root)` to the larger checkpoint.
        proof: Vec<Hash>,
    },
}

impl Misbehaviour {
    /// The kind's name in the file.
    pub fn kind(&self) -> &'static str {
        match self {
            Misbehaviour::CheckpointFork { .. } => "checkpoint-fork",
            Misbehaviour::EntryFork { .. } => "entry-fork",
            Misbehaviour::BrokenLink { .. } => "broken-link",
            Misbehaviour::NotExtension { .. } => "not-extension",
            Misbehaviour::Inconsistent { .. } => "inconsistent",
        }
    }
}

/// A piece of evidence against one department log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Evidence {
    /// The department log.
    pub origin: Origin,
    /// Unix seconds when the misbehaviour was observed.
    pub observed_secs: u64,
    /// What was observed.
    pub what: Misbehaviour,
}

fn bad(reason: impl Into<String>) -> Error {
    Error::InvalidEvidence(reason.into())
}

fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

fn unb64(what: &'static str, text: &str) -> Result<Vec<u8>, Error> {
    let bytes = STANDARD
        .decode(text)
        .map_err(|_| Error::InvalidBase64 { what })?;
    if STANDARD.encode(&bytes) != text {
        return Err(Error::InvalidBase64 { what });
    }
    Ok(bytes)
}

fn parse_u64(what: &str, text: &str) -> Result<u64, Error> {
    if text.is_empty()
        || !text.bytes().all(|b| b.is_ascii_digit())
        || (text.len() > 1 && text.starts_with('0'))
    {
        return Err(bad(format!("{what}: not a canonical decimal")));
    }
    text.parse()
        .map_err(|_| bad(format!("{what}: out of range")))
}

impl Evidence {
    /// The file text.
    pub fn encode(&self) -> String {
        let mut out = format!(
            "{EVIDENCE_MAGIC}\norigin {}\nkind {}\nobserved {}\n",
            self.origin,
            self.what.kind(),
            self.observed_secs
        );
        let cp = |out: &mut String, c: &SignedCheckpoint| {
            out.push_str(&format!("checkpoint {}\n", b64(c.to_string().as_bytes())));
        };
        let entry = |out: &mut String, index: u64, e: &[u8]| {
            out.push_str(&format!("entry {index} {}\n", b64(e)));
        };
        match &self.what {
            Misbehaviour::CheckpointFork { a, b } => {
                cp(&mut out, a);
                cp(&mut out, b);
            }
            Misbehaviour::EntryFork { index, a, b } => {
                entry(&mut out, *index, a);
                entry(&mut out, *index, b);
            }
            Misbehaviour::BrokenLink { index, a, b } => {
                entry(&mut out, *index, a);
                entry(&mut out, index + 1, b);
            }
            Misbehaviour::NotExtension {
                old,
                subtrees,
                entries,
                new,
            } => {
                if let Some(old) = old {
                    cp(&mut out, old);
                }
                cp(&mut out, new);
                for h in subtrees {
                    out.push_str(&format!("subtree {}\n", b64(h.as_bytes())));
                }
                let first = old.as_ref().map_or(0, |o| o.checkpoint().size);
                for (i, e) in entries.iter().enumerate() {
                    entry(&mut out, first + i as u64, e);
                }
            }
            Misbehaviour::Inconsistent {
                larger,
                smaller,
                root,
                proof,
            } => {
                cp(&mut out, larger);
                cp(&mut out, smaller);
                out.push_str(&format!("root {}\n", b64(root.as_bytes())));
                for h in proof {
                    out.push_str(&format!("proof {}\n", b64(h.as_bytes())));
                }
            }
        }
        out
    }

    /// Parses an evidence file strictly (the line order of the module docs;
    /// nothing else). It does not verify anything: see [`Evidence::verify`].
    ///
    /// # Errors
    /// [`Error::InvalidEvidence`] naming what is malformed.
    pub fn parse(text: &str) -> Result<Evidence, Error> {
        if text.len() > MAX_EVIDENCE_LEN {
            return Err(bad("file larger than 64 MiB"));
        }
        let body = text
            .strip_suffix('\n')
            .ok_or_else(|| bad("does not end in a newline"))?;
        let mut lines = body.split('\n');
        if lines.next() != Some(EVIDENCE_MAGIC) {
            return Err(bad(format!("first line is not {EVIDENCE_MAGIC}")));
        }
        let mut field = |name: &str| -> Result<String, Error> {
            lines
                .next()
                .and_then(|l| l.strip_prefix(name))
                .and_then(|l| l.strip_prefix(' '))
                .map(str::to_owned)
                .ok_or_else(|| bad(format!("expected the `{name}` line")))
        };
        let origin = Origin::new(&field("origin")?).map_err(|e| bad(format!("origin: {e}")))?;
        let kind = field("kind")?;
        let observed_secs = parse_u64("observed", &field("observed")?)?;
        let rest: Vec<(String, String)> = lines
            .map(|l| {
                l.split_once(' ')
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .ok_or_else(|| bad(format!("malformed line {l:?}")))
            })
            .collect::<Result<_, _>>()?;
        let mut checkpoints = Vec::new();
        let mut subtrees = Vec::new();
        let mut entries: Vec<(u64, Vec<u8>)> = Vec::new();
        let mut roots = Vec::new();
        let mut proof = Vec::new();
        // Each key's lines come in one block, in the documented order.
        let order = ["checkpoint", "subtree", "entry", "root", "proof"];
        let mut at = 0;
        for (k, v) in &rest {
            let pos = order
                .iter()
                .position(|o| o == k)
                .ok_or_else(|| bad(format!("unknown line `{k}`")))?;
            if pos < at {
                return Err(bad(format!("`{k}` line out of order")));
            }
            at = pos;
            match pos {
                0 => {
                    let note = unb64("checkpoint", v)?;
                    let cp = SignedCheckpoint::from_bytes(&note)?;
                    checkpoints.push(cp);
                }
                1 => subtrees.push(Hash::from_slice(&unb64("subtree", v)?)?),
                2 => {
                    let (i, e) = v
                        .split_once(' ')
                        .ok_or_else(|| bad("entry line needs an index and the entry"))?;
                    entries.push((parse_u64("entry index", i)?, unb64("entry", e)?));
                }
                3 => roots.push(Hash::from_slice(&unb64("root", v)?)?),
                _ => proof.push(Hash::from_slice(&unb64("proof", v)?)?),
            }
        }
        let only = |ok: bool| {
            if ok {
                Ok(())
            } else {
                Err(bad(format!("wrong lines for kind {kind}")))
            }
        };
        let what = match kind.as_str() {
            "checkpoint-fork" => {
                only(
                    checkpoints.len() == 2
                        && subtrees.is_empty()
                        && entries.is_empty()
                        && roots.is_empty()
                        && proof.is_empty(),
                )?;
                let b = checkpoints.pop().ok_or_else(|| bad("checkpoint"))?;
                let a = checkpoints.pop().ok_or_else(|| bad("checkpoint"))?;
                Misbehaviour::CheckpointFork { a, b }
            }
            "entry-fork" | "broken-link" => {
                only(
                    checkpoints.is_empty()
                        && subtrees.is_empty()
                        && entries.len() == 2
                        && roots.is_empty()
                        && proof.is_empty(),
                )?;
                let (ib, b) = entries.pop().ok_or_else(|| bad("entry"))?;
                let (ia, a) = entries.pop().ok_or_else(|| bad("entry"))?;
                if kind == "entry-fork" {
                    if ia != ib {
                        return Err(bad("entry-fork: the indexes differ"));
                    }
                    Misbehaviour::EntryFork { index: ia, a, b }
                } else {
                    if ia.checked_add(1) != Some(ib) {
                        return Err(bad("broken-link: the indexes are not consecutive"));
                    }
                    Misbehaviour::BrokenLink { index: ia, a, b }
                }
            }
            "not-extension" => {
                only(
                    (1..=2).contains(&checkpoints.len())
                        && !entries.is_empty()
                        && roots.is_empty()
                        && proof.is_empty(),
                )?;
                let new = checkpoints.pop().ok_or_else(|| bad("checkpoint"))?;
                let old = checkpoints.pop();
                let first = old.as_ref().map_or(0, |o| o.checkpoint().size);
                for (k, (i, _)) in entries.iter().enumerate() {
                    if first.checked_add(k as u64) != Some(*i) {
                        return Err(bad("not-extension: entries must be consecutive from M"));
                    }
                }
                Misbehaviour::NotExtension {
                    old,
                    subtrees,
                    entries: entries.into_iter().map(|(_, e)| e).collect(),
                    new,
                }
            }
            "inconsistent" => {
                only(
                    checkpoints.len() == 2
                        && subtrees.is_empty()
                        && entries.is_empty()
                        && roots.len() == 1,
                )?;
                let smaller = checkpoints.pop().ok_or_else(|| bad("checkpoint"))?;
                let larger = checkpoints.pop().ok_or_else(|| bad("checkpoint"))?;
                Misbehaviour::Inconsistent {
                    larger,
                    smaller,
                    root: roots[0],
                    proof,
                }
            }
            other => return Err(bad(format!("unknown kind {other:?}"))),
        };
        let evidence = Evidence {
            origin,
            observed_secs,
            what,
        };
        if evidence.encode() != text {
            return Err(bad("not in canonical form"));
        }
        Ok(evidence)
    }

    /// Verifies that the evidence proves misbehaviour of the log `origin`
    /// by a holder of one of `keys` (the department keys the verifier
    /// trusts: its genesis key and keys it followed through rotations).
    ///
    /// # Errors
    /// [`Error::InvalidEvidence`] (or the underlying signature, entry or
    /// proof error) when it does not.
    pub fn verify(&self, keys: &[PublicKey]) -> Result<(), Error> {
        let check_cp = |c: &SignedCheckpoint| -> Result<(), Error> {
            if c.checkpoint().origin != self.origin {
                return Err(bad(format!(
                    "a checkpoint is for {}, not {}",
                    c.checkpoint().origin,
                    self.origin
                )));
            }
            let vkeys = Verifiers::new(
                keys.iter()
                    .map(|k| Checkpoint::log_verifier_key(&self.origin, k)),
            )?;
            c.note()
                .verify(&vkeys)
                .map(|_| ())
                .map_err(|e| bad(format!("checkpoint of size {}: {e}", c.checkpoint().size)))
        };
        let check_entry = |index: u64, bytes: &[u8]| -> Result<crate::chain::Prepared, Error> {
            let p = prepare(bytes.to_vec(), index)?;
            if p.event.origin != self.origin {
                return Err(bad(format!("entry {index} is for {}", p.event.origin)));
            }
            if p.event.index != index {
                return Err(bad(format!("entry {index} says index {}", p.event.index)));
            }
            if !keys.contains(&p.event.signer) {
                return Err(bad(format!(
                    "entry {index} is signed by {}, not a trusted key",
                    p.event.signer
                )));
            }
            let checks = p.signature_checks()?;
            if let Some(c) = checks.first() {
                c.verify()?;
            }
            Ok(p)
        };
        match &self.what {
            Misbehaviour::CheckpointFork { a, b } => {
                check_cp(a)?;
                check_cp(b)?;
                if a.checkpoint().size != b.checkpoint().size {
                    return Err(bad("checkpoint-fork: the sizes differ"));
                }
                if a.checkpoint().root == b.checkpoint().root {
                    return Err(bad("checkpoint-fork: the roots are equal"));
                }
            }
            Misbehaviour::EntryFork { index, a, b } => {
                check_entry(*index, a)?;
                check_entry(*index, b)?;
                if a == b {
                    return Err(bad("entry-fork: the entries are identical"));
                }
            }
            Misbehaviour::BrokenLink { index, a, b } => {
                let pa = check_entry(*index, a)?;
                let pb = check_entry(index + 1, b)?;
                if pb.event.prev_hash == pa.body_hash {
                    return Err(bad("broken-link: the entries do link"));
                }
            }
            Misbehaviour::NotExtension {
                old,
                subtrees,
                entries,
                new,
            } => {
                let m = match old {
                    Some(o) => {
                        check_cp(o)?;
                        o.checkpoint().size
                    }
                    None => 0,
                };
                check_cp(new)?;
                let n = new.checkpoint().size;
                if n <= m || n - m != entries.len() as u64 {
                    return Err(bad(
                        "not-extension: the entries must be exactly [M, N) with N > M",
                    ));
                }
                let mut tree = TreeState::from_parts(m, subtrees.clone())
                    .map_err(|e| bad(format!("not-extension: subtrees: {e}")))?;
                if let Some(o) = old
                    && tree.root() != o.checkpoint().root
                {
                    return Err(bad(
                        "not-extension: the subtrees do not hash to the old checkpoint's root",
                    ));
                }
                let mut prev: Option<Hash> = None;
                for (i, e) in entries.iter().enumerate() {
                    let p = check_entry(m + i as u64, e)?;
                    if let Some(prev) = prev
                        && p.event.prev_hash != prev
                    {
                        return Err(bad(format!(
                            "not-extension: entries {} and {} do not link (that is broken-link evidence)",
                            m + i as u64 - 1,
                            m + i as u64
                        )));
                    }
                    prev = Some(p.body_hash);
                    tree.append_leaf(p.leaf_hash);
                }
                if tree.root() == new.checkpoint().root {
                    return Err(bad(
                        "not-extension: the new checkpoint is the extension (no misbehaviour)",
                    ));
                }
            }
            Misbehaviour::Inconsistent {
                larger,
                smaller,
                root,
                proof,
            } => {
                check_cp(larger)?;
                check_cp(smaller)?;
                let (m, n) = (larger.checkpoint().size, smaller.checkpoint().size);
                if n >= m {
                    return Err(bad("inconsistent: the smaller checkpoint is not smaller"));
                }
                verify_consistency(n, m, root, &larger.checkpoint().root, proof)?;
                if *root == smaller.checkpoint().root {
                    return Err(bad(
                        "inconsistent: the checkpoints are consistent (no misbehaviour)",
                    ));
                }
            }
        }
        Ok(())
    }

    /// A short id: the first 16 hex digits of BLAKE3 of the file text.
    pub fn id(&self) -> String {
        let h = blake3::hash(self.encode().as_bytes());
        h.to_hex()[..16].to_owned()
    }

    /// The body hash an entry's successor must carry (for callers building
    /// `broken-link` evidence).
    pub fn body_hash_of(entry: &[u8]) -> Option<Hash> {
        let len = usize::from(u16::from_be_bytes([*entry.get(1)?, *entry.get(2)?]));
        entry.get(3..3 + len).map(body_hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Kind, pb};
    use crate::keys::SigningKey;
    use crate::merkle::{MemoryHashes, consistency_proof};
    use crate::writer::LogWriter;

    fn origin() -> Origin {
        Origin::new("gongkai.example/510122/finance").unwrap()
    }

    /// A log of `n` entries written by `key`, `tag` making it distinct.
    fn log(key: &SigningKey, n: usize, tag: &str) -> Vec<Vec<u8>> {
        let mut w = LogWriter::new(origin(), key.clone());
        let mut out = Vec::new();
        let genesis = Kind::Genesis(pb::Genesis {
            department: "财政局".into(),
            division_code: "510122".into(),
        });
        out.push(w.append(genesis, 1_700_000_000_000).unwrap().into_bytes());
        for i in 1..n {
            let kind = Kind::RequestReceived(pb::RequestReceived {
                applicant: 0,
                request_id: format!("{tag}-{i}"),
                date_received: "2023-11-14".into(),
                subject: "subject".into(),
            });
            out.push(
                w.append(kind, 1_700_000_000_000 + i as u64)
                    .unwrap()
                    .into_bytes(),
            );
        }
        out
    }

    fn checkpoint(key: &SigningKey, entries: &[Vec<u8>]) -> SignedCheckpoint {
        let leaves: Vec<Hash> = entries.iter().map(|e| crate::hash::leaf_hash(e)).collect();
        let cp = Checkpoint::new(origin(), leaves.len() as u64, crate::merkle::root(&leaves));
        SignedCheckpoint::sign(&cp, key).unwrap()
    }

    fn round_trip(e: &Evidence, key: &SigningKey) {
        let text = e.encode();
        let parsed = Evidence::parse(&text).unwrap();
        assert_eq!(&parsed, e);
        parsed.verify(&[key.public_key()]).unwrap();
        // Another key does not make it evidence against this department.
        let other = SigningKey::from_seed([9; 32]);
        assert!(parsed.verify(&[other.public_key()]).is_err());
    }

    #[test]
    fn checkpoint_fork_and_entry_fork() {
        let key = SigningKey::from_seed([1; 32]);
        let a = log(&key, 5, "a");
        let b = log(&key, 5, "b");
        let e = Evidence {
            origin: origin(),
            observed_secs: 1,
            what: Misbehaviour::CheckpointFork {
                a: checkpoint(&key, &a),
                b: checkpoint(&key, &b),
            },
        };
        round_trip(&e, &key);
        let same = Evidence {
            what: Misbehaviour::CheckpointFork {
                a: checkpoint(&key, &a),
                b: checkpoint(&key, &a),
            },
            ..e.clone()
        };
        assert!(same.verify(&[key.public_key()]).is_err());

        let fork = Evidence {
            origin: origin(),
            observed_secs: 2,
            what: Misbehaviour::EntryFork {
                index: 3,
                a: a[3].clone(),
                b: b[3].clone(),
            },
        };
        round_trip(&fork, &key);
        let link = Evidence {
            origin: origin(),
            observed_secs: 2,
            what: Misbehaviour::BrokenLink {
                index: 2,
                a: a[2].clone(),
                b: b[3].clone(),
            },
        };
        round_trip(&link, &key);
        let honest = Evidence {
            what: Misbehaviour::BrokenLink {
                index: 2,
                a: a[2].clone(),
                b: a[3].clone(),
            },
            ..link
        };
        assert!(honest.verify(&[key.public_key()]).is_err());
    }

    #[test]
    fn not_extension_and_inconsistent() {
        let key = SigningKey::from_seed([1; 32]);
        let a = log(&key, 12, "a");
        let b = log(&key, 12, "b");
        let (m, n) = (7usize, 12usize);
        let hashes = MemoryHashes::from_leaf_hashes(
            &a[..m]
                .iter()
                .map(|e| crate::hash::leaf_hash(e))
                .collect::<Vec<_>>(),
        );
        let tree = TreeState::from_reader(&hashes, m as u64).unwrap();
        let lie = Evidence {
            origin: origin(),
            observed_secs: 3,
            what: Misbehaviour::NotExtension {
                old: Some(checkpoint(&key, &a[..m])),
                subtrees: tree.peaks().to_vec(),
                entries: a[m..n].to_vec(),
                new: checkpoint(&key, &b[..n]),
            },
        };
        round_trip(&lie, &key);
        let truth = Evidence {
            what: Misbehaviour::NotExtension {
                old: Some(checkpoint(&key, &a[..m])),
                subtrees: tree.peaks().to_vec(),
                entries: a[m..n].to_vec(),
                new: checkpoint(&key, &a[..n]),
            },
            ..lie.clone()
        };
        assert!(truth.verify(&[key.public_key()]).is_err());

        // Inconsistent: a cosigned size 12 of log a, a new checkpoint at 7
        // of log b.
        let all = MemoryHashes::from_leaf_hashes(
            &a.iter()
                .map(|e| crate::hash::leaf_hash(e))
                .collect::<Vec<_>>(),
        );
        let proof = consistency_proof(&all, 7, 12).unwrap();
        let root7 = crate::merkle::root_at(&all, 7).unwrap();
        let inc = Evidence {
            origin: origin(),
            observed_secs: 4,
            what: Misbehaviour::Inconsistent {
                larger: checkpoint(&key, &a),
                smaller: checkpoint(&key, &b[..7]),
                root: root7,
                proof: proof.clone(),
            },
        };
        round_trip(&inc, &key);
        let stale = Evidence {
            what: Misbehaviour::Inconsistent {
                larger: checkpoint(&key, &a),
                smaller: checkpoint(&key, &a[..7]),
                root: root7,
                proof,
            },
            ..inc
        };
        assert!(stale.verify(&[key.public_key()]).is_err());
    }

    #[test]
    fn parse_is_strict() {
        let key = SigningKey::from_seed([1; 32]);
        let a = log(&key, 3, "a");
        let b = log(&key, 3, "b");
        let text = Evidence {
            origin: origin(),
            observed_secs: 1,
            what: Misbehaviour::EntryFork {
                index: 2,
                a: a[2].clone(),
                b: b[2].clone(),
            },
        }
        .encode();
        assert!(Evidence::parse(&text.replace("observed 1", "observed 01")).is_err());
        assert!(Evidence::parse(&text.replace("entry-fork", "broken-link")).is_err());
        assert!(Evidence::parse(&format!("{text}extra x\n")).is_err());
        assert!(Evidence::parse(text.trim_end()).is_err());
    }
}
