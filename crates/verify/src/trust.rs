//! `--trust FILE`: the keys a verifier trusts (DESIGN.md § Who uses it,
//! FORMAT.md § 11). Keys found in an export or sent by a server are never
//! trusted by themselves: they come from here.
//!
//! ```toml
//! # Witness (county) keys, tlog-cosignature/v1 vkeys (type 0x04).
//! witnesses = ["county.example+1a2b3c4d+BASE64"]
//! # How many of them must cosign a checkpoint (default: all listed).
//! # 0 accepts checkpoints nobody cosigned (reported as a warning).
//! quorum = 1
//!
//! [[log]]
//! origin = "gongkai.example/510122/finance"
//! # The department's key(s), Ed25519 note vkeys (type 0x01) named for the
//! # origin; the genesis key anchors the chain, rotations are followed.
//! vkeys = ["gongkai.example/510122/finance+89abcdef+BASE64"]
//! ```
//!
//! Optionally, before the first `[[log]]`, the county log key (an Ed25519
//! note vkey, type 0x01, named for the county log's origin), with which
//! `audit` verifies the `county/` part of an export (FORMAT.md § 16.4):
//!
//! ```toml
//! county_log = "gongkai.example/510122/county+01234567+BASE64"
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use gongkai_core::checkpoint::{Checkpoint, SignedCheckpoint};
use gongkai_core::keys::PublicKey;
use gongkai_core::note::{KeyType, VerifierKey, Verifiers};
use gongkai_core::types::Origin;
use serde::Deserialize;

use crate::VerifyError;

/// Short for a trust error.
fn bad(m: impl Into<String>) -> VerifyError {
    VerifyError::Trust(m.into())
}

type Result<T> = std::result::Result<T, VerifyError>;

/// The trust file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TrustFile {
    /// Witness vkeys (type 0x04).
    #[serde(default)]
    witnesses: Vec<String>,
    /// Cosignatures required (default: every listed witness).
    #[serde(default)]
    quorum: Option<usize>,
    /// The county log key (type 0x01, named for the county origin).
    #[serde(default)]
    county_log: Option<String>,
    /// Department logs.
    #[serde(default)]
    log: Vec<LogTrust>,
}

/// One department log in the trust file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LogTrust {
    /// The log's origin.
    origin: String,
    /// The department's vkeys (type 0x01, named for the origin).
    vkeys: Vec<String>,
}

/// The largest trust file read (a county lists a few hundred keys).
pub const MAX_TRUST_FILE: u64 = 1 << 20;

/// The parsed, checked trust: department keys per origin, witnesses,
/// quorum.
#[derive(Debug, Clone, Default)]
pub struct Trust {
    /// Department keys per origin.
    pub logs: BTreeMap<Origin, Vec<VerifierKey>>,
    /// Witness keys.
    pub witnesses: Verifiers,
    /// Cosignatures required.
    pub quorum: usize,
    /// The county log key, if the trust file names one.
    pub county_log: Option<VerifierKey>,
}

impl Trust {
    /// Reads and checks a trust file.
    ///
    /// # Errors
    /// Unreadable file, bad TOML, a malformed vkey, a department key not of
    /// type 0x01 or not named for its origin, a witness key not of type
    /// 0x04, a quorum larger than the witness count.
    pub fn load(path: &Path) -> Result<Trust> {
        let bytes = crate::source::read_file(path, MAX_TRUST_FILE)
            .map_err(|e| bad(format!("read trust file: {e}")))?;
        let text = String::from_utf8(bytes)
            .map_err(|_| bad(format!("trust file {}: not UTF-8", path.display())))?;
        Trust::parse(&text).map_err(|e| bad(format!("trust file {}: {e}", path.display())))
    }

    /// Parses a trust file's text.
    ///
    /// # Errors
    /// As [`Trust::load`].
    pub fn parse(text: &str) -> Result<Trust> {
        let file: TrustFile = toml::from_str(text)
            .map_err(|e| bad(format!("not valid TOML for a trust file: {e}")))?;
        let mut witnesses = Vec::new();
        for w in &file.witnesses {
            let k = VerifierKey::parse(w).map_err(|e| bad(format!("witness key {w:?}: {e}")))?;
            if k.key_type() != KeyType::CosignatureV1 {
                return Err(bad(format!(
                    "witness key {w:?} is not a cosignature/v1 (0x04) key"
                )));
            }
            witnesses.push(k);
        }
        let quorum = file.quorum.unwrap_or(witnesses.len());
        if quorum > witnesses.len() {
            return Err(bad(format!(
                "quorum {quorum} is larger than the {} witness keys listed",
                witnesses.len()
            )));
        }
        let county_log = match &file.county_log {
            None => None,
            Some(v) => {
                let k =
                    VerifierKey::parse(v).map_err(|e| bad(format!("county_log key {v:?}: {e}")))?;
                if k.key_type() != KeyType::Ed25519 {
                    return Err(bad(format!(
                        "county_log key {v:?} is not an Ed25519 (0x01) log key"
                    )));
                }
                Origin::new(k.name().as_str()).map_err(|e| {
                    bad(format!(
                        "county_log key {v:?}: its name is not an origin: {e}"
                    ))
                })?;
                Some(k)
            }
        };
        let mut logs = BTreeMap::new();
        for l in file.log {
            let origin = Origin::new(&l.origin)
                .map_err(|e| bad(format!("log origin {:?}: {e}", l.origin)))?;
            let mut keys = Vec::new();
            for v in &l.vkeys {
                let k = VerifierKey::parse(v).map_err(|e| bad(format!("vkey {v:?}: {e}")))?;
                if k.key_type() != KeyType::Ed25519 {
                    return Err(bad(format!(
                        "vkey {v:?} of {origin} is not an Ed25519 (0x01) log key"
                    )));
                }
                if k.name().as_str() != origin.as_str() {
                    return Err(bad(format!(
                        "vkey {v:?} is named {}, not {origin}",
                        k.name()
                    )));
                }
                keys.push(k);
            }
            if keys.is_empty() {
                return Err(bad(format!("log {origin} lists no vkeys")));
            }
            if logs.insert(origin.clone(), keys).is_some() {
                return Err(bad(format!("log {origin} is listed twice")));
            }
        }
        Ok(Trust {
            logs,
            witnesses: Verifiers::new(witnesses).map_err(|e| bad(format!("witness keys: {e}")))?,
            quorum,
            county_log,
        })
    }

    /// A trust with the given department vkeys (from `--vkey`) and no
    /// witnesses.
    ///
    /// # Errors
    /// A key that is not an Ed25519 log key.
    pub fn from_vkeys(vkeys: &[VerifierKey]) -> Result<Trust> {
        let mut logs: BTreeMap<Origin, Vec<VerifierKey>> = BTreeMap::new();
        for k in vkeys {
            if k.key_type() != KeyType::Ed25519 {
                return Err(bad(format!("--vkey {k} is not an Ed25519 (0x01) log key")));
            }
            let origin = Origin::new(k.name().as_str())
                .map_err(|e| bad(format!("--vkey {k}: its name is not an origin: {e}")))?;
            logs.entry(origin).or_default().push(k.clone());
        }
        Ok(Trust {
            logs,
            ..Trust::default()
        })
    }

    /// The department keys trusted for `origin`.
    ///
    /// # Errors
    /// When the trust lists no key for it.
    pub fn log_keys(&self, origin: &Origin) -> Result<&[VerifierKey]> {
        self.logs
            .get(origin)
            .map(Vec::as_slice)
            .ok_or_else(|| bad(format!("the trust file lists no key for {origin}")))
    }

    /// The public keys that may sign the genesis of `origin`.
    ///
    /// # Errors
    /// As [`Trust::log_keys`].
    pub fn genesis_keys(&self, origin: &Origin) -> Result<Vec<PublicKey>> {
        Ok(self
            .log_keys(origin)?
            .iter()
            .map(|k| *k.public_key())
            .collect())
    }
}

/// The key that must sign a checkpoint of `size` (FORMAT.md § 11.1): the
/// key in force after entry `size - 1`, from a verified chain's key epochs.
/// A verifier that walked the chain accepts no other.
pub fn key_for_size(keys: &[gongkai_core::chain::KeyEpoch], size: u64) -> Vec<PublicKey> {
    // The key in force after entry `size - 1` is the one that would sign
    // entry `size`: after a rotation at `i`, the next key (from `i + 1`).
    keys.iter()
        .rev()
        .find(|k| k.from_index <= size)
        .map(|k| vec![k.key])
        .unwrap_or_default()
}

/// The verdict on a checkpoint's signatures.
#[derive(Debug, Clone, Default)]
pub struct CheckpointVerdict {
    /// A broken signature rule (the department key did not sign, a known
    /// key's signature does not verify): a violation.
    pub violation: Option<String>,
    /// Cosignature quorum not met although witnesses are required: a
    /// violation; with quorum 0 a warning.
    pub cosign_issue: Option<String>,
    /// Trusted witness cosignatures that verified: name and time (s).
    pub cosignatures: Vec<(String, u64)>,
}

/// Checks a checkpoint's signatures: the department signature by one of
/// `keys` (the keys in force for its size, from the verified chain), and
/// cosignatures by the trusted witnesses (k of n).
pub fn check_signatures(
    cp: &SignedCheckpoint,
    keys: &[PublicKey],
    trust: &Trust,
) -> CheckpointVerdict {
    let mut verdict = CheckpointVerdict::default();
    let origin = &cp.checkpoint().origin;
    let mut signed = false;
    for k in keys {
        let vk = Checkpoint::log_verifier_key(origin, k);
        let present = cp
            .note()
            .signatures()
            .iter()
            .any(|s| s.name() == vk.name() && s.id() == vk.id());
        if !present {
            continue;
        }
        match cp.verify(&vk, &Verifiers::default(), 0) {
            Ok(_) => signed = true,
            Err(e) => {
                verdict.violation = Some(format!("department signature by {vk}: {e}"));
                return verdict;
            }
        }
    }
    if !signed {
        verdict.violation = Some(format!(
            "not signed by the department key in force ({})",
            keys.iter()
                .map(|k| Checkpoint::log_verifier_key(origin, k).to_string())
                .collect::<Vec<_>>()
                .join(" or ")
        ));
        return verdict;
    }
    match cp.note().verify(&trust.witnesses) {
        Ok(sigs) => {
            let mut seen: Vec<(String, u64)> = sigs
                .iter()
                .map(|s| (s.name.to_string(), s.timestamp.unwrap_or(0)))
                .collect();
            seen.sort();
            seen.dedup_by(|a, b| a.0 == b.0);
            verdict.cosignatures = seen;
        }
        Err(gongkai_core::Error::NoteQuorum { .. }) => {}
        Err(e) => {
            verdict.violation = Some(format!("cosignature: {e}"));
            return verdict;
        }
    }
    let n = trust.witnesses.len();
    let have = verdict.cosignatures.len();
    if have < trust.quorum {
        let present = if have == 0 {
            String::new()
        } else {
            format!(
                " ({})",
                verdict
                    .cosignatures
                    .iter()
                    .map(|(name, _)| name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        verdict.cosign_issue = Some(format!(
            "{} of {n} witness cosignatures required, {have} present{present}",
            trust.quorum
        ));
    } else if n == 0 {
        verdict.cosign_issue =
            Some("not checked for cosignatures: the trust file lists no witness".into());
    }
    verdict
}

#[cfg(test)]
mod tests {
    use gongkai_core::keys::SigningKey;
    use gongkai_core::note::Cosigner;
    use gongkai_core::types::KeyName;

    use super::*;

    const ORIGIN: &str = "gongkai.example/510122/finance";

    fn vkey(seed: u8) -> String {
        let k = SigningKey::from_seed([seed; 32]).public_key();
        Checkpoint::log_verifier_key(&Origin::new(ORIGIN).unwrap(), &k).to_string()
    }

    fn witness(seed: u8) -> Cosigner {
        Cosigner::new(
            KeyName::new("county.example").unwrap(),
            SigningKey::from_seed([seed; 32]),
        )
    }

    #[test]
    fn the_example_trust_file_parses() {
        let t = Trust::parse(include_str!("../../../docs/examples/trust.toml")).unwrap();
        assert_eq!((t.logs.len(), t.witnesses.len(), t.quorum), (1, 1, 1));
    }

    #[test]
    fn the_key_in_force_signs_each_size() {
        use gongkai_core::chain::KeyEpoch;
        let k = |n: u8| SigningKey::from_seed([n; 32]).public_key();
        // Genesis key 1; a key_rotated at index 5 hands over to key 2.
        let epochs = [
            KeyEpoch {
                from_index: 0,
                key: k(1),
            },
            KeyEpoch {
                from_index: 6,
                key: k(2),
            },
        ];
        assert_eq!(key_for_size(&epochs, 1), vec![k(1)]);
        assert_eq!(key_for_size(&epochs, 5), vec![k(1)]);
        assert_eq!(
            key_for_size(&epochs, 6),
            vec![k(2)],
            "in force after the rotation at 5"
        );
        assert_eq!(key_for_size(&epochs, 7), vec![k(2)]);
        assert!(key_for_size(&[], 3).is_empty());
    }

    #[test]
    fn parses_and_defaults_quorum_to_all_witnesses() {
        let w = witness(9).verifier_key().to_string();
        let t = Trust::parse(&format!(
            "witnesses = [\"{w}\"]\n[[log]]\norigin = \"{ORIGIN}\"\nvkeys = [\"{}\"]\n",
            vkey(1)
        ))
        .unwrap();
        assert_eq!(t.quorum, 1);
        assert_eq!(t.logs.len(), 1);
    }

    #[test]
    fn refuses_swapped_key_types_and_names() {
        let w = witness(9).verifier_key().to_string();
        // A log key given as witness, a witness key given as log key.
        assert!(Trust::parse(&format!("witnesses = [\"{}\"]\n", vkey(1))).is_err());
        assert!(
            Trust::parse(&format!(
                "[[log]]\norigin = \"{ORIGIN}\"\nvkeys = [\"{w}\"]\n"
            ))
            .is_err()
        );
        // A key named for another origin.
        assert!(
            Trust::parse(&format!(
                "[[log]]\norigin = \"other.example/1\"\nvkeys = [\"{}\"]\n",
                vkey(1)
            ))
            .is_err()
        );
        assert!(Trust::parse(&format!("witnesses = [\"{w}\"]\nquorum = 2\n")).is_err());
        // The county log key must be a 0x01 key named for an origin.
        assert!(Trust::parse(&format!("county_log = \"{w}\"\n")).is_err());
        let county = Checkpoint::log_verifier_key(
            &Origin::new("gongkai.example/510122/county").unwrap(),
            &SigningKey::from_seed([3; 32]).public_key(),
        );
        let t = Trust::parse(&format!("county_log = \"{county}\"\n")).unwrap();
        assert_eq!(
            t.county_log.map(|k| k.to_string()),
            Some(county.to_string())
        );
        assert!(Trust::parse("bogus = 1\n").is_err());
    }

    #[test]
    fn quorum_and_forged_cosignatures() {
        let key = SigningKey::from_seed([1; 32]);
        let origin = Origin::new(ORIGIN).unwrap();
        let cp = Checkpoint::new(origin, 3, gongkai_core::Hash([7; 32]));
        let mut signed = SignedCheckpoint::sign(&cp, &key).unwrap();
        let w = witness(9);
        let trust = Trust::parse(&format!(
            "witnesses = [\"{}\"]\n[[log]]\norigin = \"{ORIGIN}\"\nvkeys = [\"{}\"]\n",
            w.verifier_key(),
            vkey(1)
        ))
        .unwrap();
        let keys = [key.public_key()];
        let v = check_signatures(&signed, &keys, &trust);
        assert!(v.violation.is_none());
        assert_eq!(
            v.cosign_issue.as_deref(),
            Some("1 of 1 witness cosignatures required, 0 present"),
            "no cosignature yet"
        );
        // A cosignature by another key with the same name does not count.
        let mut forged = signed.clone();
        forged.cosign(&witness(10), 1_700_000_000).unwrap();
        let v = check_signatures(&forged, &keys, &trust);
        assert!(v.cosign_issue.is_some());
        signed.cosign(&w, 1_700_000_000).unwrap();
        let v = check_signatures(&signed, &keys, &trust);
        assert!(v.violation.is_none() && v.cosign_issue.is_none(), "{v:?}");
        assert_eq!(
            v.cosignatures,
            vec![("county.example".into(), 1_700_000_000)]
        );
        // Signed by a key the chain does not put in force.
        let v = check_signatures(
            &signed,
            &[SigningKey::from_seed([2; 32]).public_key()],
            &trust,
        );
        assert!(v.violation.is_some());
    }
}
