//! Golden test vectors under `docs/vectors/` (FORMAT.md § 15).
//!
//! The test regenerates every vector from fixed keys and a fixed sample log
//! and fails if a single byte differs from the checked-in files, so a format
//! change can never slip in unnoticed. To regenerate after an intended
//! format change: `GONGKAI_UPDATE_VECTORS=1 cargo test -p gongkai-core --test vectors`
//! (and say why in the commit).
//!
//! It then reads the files back the way an independent implementation
//! would and checks them with the library's verifiers.

mod common;

use std::path::PathBuf;

use common::{ORIGIN, content, key, origin, sample_log};
use gongkai_core::chain::ChainVerifier;
use gongkai_core::checkpoint::{Checkpoint, SignedCheckpoint};
use gongkai_core::entry::Entry;
use gongkai_core::event::{Kind, kind_name, pb};
use gongkai_core::hash::{body_hash, empty_root, leaf_hash};
use gongkai_core::merkle::{self, MemoryHashes};
use gongkai_core::note::{Cosigner, Verifiers};
use gongkai_core::types::{KeyName, content_digest};
use gongkai_core::{Error, Hash};
use prost::Message as _;
use serde_json::{Value, json};

const WITNESS: &str = "gongkai.example/510122/county-witness";
/// 2026-03-02 10:00 CST, when the witness cosigned.
const COSIGN_TIME: u64 = 1_772_416_800;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/vectors")
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn hexes(hs: &[Hash]) -> Vec<String> {
    hs.iter().map(Hash::to_hex).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Every vector file, by name, as it must appear on disk.
fn generate() -> Vec<(&'static str, String)> {
    let log = sample_log();
    let entries = log.bytes();
    let leaves: Vec<Hash> = entries.iter().map(|e| leaf_hash(e)).collect();
    let store = MemoryHashes::from_leaf_hashes(&leaves);
    let n = entries.len() as u64;

    let entry_json: Vec<Value> = log
        .entries
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let ev = pb::EventBody::decode(e.body()).unwrap();
            json!({
                "index": i,
                "kind": kind_name(ev.kind.as_ref().unwrap()),
                "entry": hex(e.as_bytes()),
                "body": hex(e.body()),
                "signature": hex(&e.signature().0),
                "signer": hex(&ev.signer),
                "leaf_hash": leaf_hash(e.as_bytes()).to_hex(),
                "body_hash": body_hash(e.body()).to_hex(),
            })
        })
        .collect();
    let roots: Vec<Value> = (0..=n)
        .map(|s| json!({"size": s, "root": merkle::root(&leaves[..s as usize]).to_hex()}))
        .collect();
    let mut inclusion = Vec::new();
    for (index, size) in [(0, 1), (0, n), (5, n), (n - 1, n), (6, 7), (3, 11)] {
        let proof = merkle::inclusion_proof(&store, index, size).unwrap();
        inclusion.push(json!({
            "index": index, "size": size, "leaf_hash": leaves[index as usize].to_hex(),
            "root": merkle::root(&leaves[..size as usize]).to_hex(), "proof": hexes(&proof),
        }));
    }
    let mut consistency = Vec::new();
    for (old, new) in [(0, n), (1, n), (4, 7), (6, 8), (7, n), (n, n)] {
        let proof = merkle::consistency_proof(&store, old, new).unwrap();
        consistency.push(json!({
            "old_size": old, "new_size": new,
            "old_root": merkle::root(&leaves[..old as usize]).to_hex(),
            "new_root": merkle::root(&leaves[..new as usize]).to_hex(),
            "proof": hexes(&proof),
        }));
    }
    let salt = [7u8; 32];
    let contents: Vec<Value> = ["budget-2026", "answer", ""]
        .iter()
        .map(|c| json!({"salt": hex(&salt), "content_utf8": c, "digest": content_digest(&salt, c.as_bytes()).to_hex()}))
        .collect();

    // The checkpoint of the whole log: signed by the key in force at the
    // end (key 2, after the rotation) and during the handover by key 1,
    // cosigned by the county witness.
    let root = merkle::root(&leaves);
    let cp = Checkpoint::new(origin(), n, root);
    let mut signed = SignedCheckpoint::sign(&cp, &key(2)).unwrap();
    signed
        .merge(&SignedCheckpoint::sign(&cp, &key(1)).unwrap())
        .unwrap();
    let witness = Cosigner::new(KeyName::new(WITNESS).unwrap(), key(100));
    signed.cosign(&witness, COSIGN_TIME).unwrap();
    let log_vkey_1 = Checkpoint::log_verifier_key(&origin(), &key(1).public_key());
    let log_vkey_2 = Checkpoint::log_verifier_key(&origin(), &key(2).public_key());

    let vectors = json!({
        "description": "gongkai test vectors; see docs/FORMAT.md § 15",
        "origin": ORIGIN,
        "keys": [
            {"seed": hex(&key(1).seed()), "public_key": key(1).public_key().to_hex(), "vkey": log_vkey_1.to_string(), "fingerprint": log_vkey_1.fingerprint(), "signs": "entries 0..=15 (genesis key)"},
            {"seed": hex(&key(2).seed()), "public_key": key(2).public_key().to_hex(), "vkey": log_vkey_2.to_string(), "fingerprint": log_vkey_2.fingerprint(), "signs": "entries from 16 on (after the key_rotated at 15)"},
        ],
        "witness": {"name": WITNESS, "seed": hex(&key(100).seed()), "vkey": witness.verifier_key().to_string(), "fingerprint": witness.verifier_key().fingerprint()},
        "empty_root": empty_root().to_hex(),
        "entries": entry_json,
        "roots": roots,
        "inclusion_proofs": inclusion,
        "consistency_proofs": consistency,
        "content": contents,
        "checkpoint": signed.to_string(),
        "checkpoint_cosigned_at": COSIGN_TIME,
        "invalid": invalid_vectors(&log.entries),
    });
    let mut text = serde_json::to_string_pretty(&vectors).unwrap();
    text.push('\n');
    let entries_hex: String = log
        .entries
        .iter()
        .map(|e| hex(e.as_bytes()) + "\n")
        .collect();
    vec![
        ("vectors.json", text),
        ("entries.hex", entries_hex),
        ("checkpoint.txt", signed.to_string()),
        ("log-genesis.vkey", format!("{log_vkey_1}\n")),
        ("log-rotated.vkey", format!("{log_vkey_2}\n")),
        ("witness.vkey", format!("{}\n", witness.verifier_key())),
        ("calendar-leaves.json", calendar_vectors()),
    ]
}

/// Calendar leaves of the county log (FORMAT.md § 14.4): a first
/// publication and an amendment of an invented year (test data, not a
/// transcription of a notice), with their leaf hashes, and leaves that
/// MUST be rejected.
fn calendar_vectors() -> String {
    use gongkai_core::calendar::published::{CalendarTable, PublishedCalendars};

    let v1 = CalendarTable::new(
        1,
        "测试通知〔2026〕1号",
        "",
        "year 2027\nholiday 2027-01-01\nworkday 2027-02-07\nholiday 2027-02-08..2027-02-12\n",
    )
    .unwrap();
    let v2 = CalendarTable::new(
        2,
        "测试通知〔2026〕2号",
        "通知更正了春节安排",
        "year 2027\nholiday 2027-01-01\nholiday 2027-02-08..2027-02-12\n",
    )
    .unwrap();
    let mut p = PublishedCalendars::new();
    p.apply(0, v1.clone()).unwrap();
    p.apply(1, v2.clone()).unwrap();
    let leaf = |t: &CalendarTable| {
        let bytes = t.encode();
        json!({
            "leaf": String::from_utf8(bytes.clone()).unwrap(),
            "leaf_hash": leaf_hash(&bytes).to_hex(),
            "year": t.year(),
            "version": t.version(),
        })
    };
    let text_of = |t: &CalendarTable| String::from_utf8(t.encode()).unwrap();
    let invalid: Vec<Value> = [
        (
            "not canonical: weekend days listed",
            text_of(&v2).replace("2027-02-08..", "2027-02-06.."),
        ),
        ("not canonical: a comment", text_of(&v1) + "# note\n"),
        (
            "version with a leading zero",
            text_of(&v1).replace("version 1", "version 01"),
        ),
        (
            "version 2 without a reason",
            text_of(&v2).replace("reason 通知更正了春节安排\n", ""),
        ),
        (
            "a date outside the year",
            text_of(&v1).replace("holiday 2027-01-01", "holiday 2028-01-03"),
        ),
        (
            "a weekday working day",
            text_of(&v1).replace("workday 2027-02-07", "workday 2027-02-05"),
        ),
    ]
    .into_iter()
    .map(|(why, leaf)| {
        assert!(CalendarTable::decode(leaf.as_bytes()).is_err(), "{why}");
        json!({ "why": why, "leaf": leaf })
    })
    .collect();
    let mut text = serde_json::to_string_pretty(&json!({
        "leaves": [leaf(&v1), leaf(&v2)],
        "in_force_2027_working": {
            "2027-02-07": p.in_force().is_working_day(gongkai_core::date::Date::parse("2027-02-07").unwrap()).unwrap(),
            "2027-02-08": p.in_force().is_working_day(gongkai_core::date::Date::parse("2027-02-08").unwrap()).unwrap(),
        },
        "invalid": invalid,
    }))
    .unwrap();
    text.push('\n');
    text
}

/// Logs that must be rejected, each with the index and rule an independent
/// verifier must report.
fn invalid_vectors(entries: &[Entry]) -> Vec<Value> {
    let bytes: Vec<Vec<u8>> = entries.iter().map(|e| e.as_bytes().to_vec()).collect();
    let resign = |i: usize, f: &dyn Fn(&mut pb::EventBody), k: u8| {
        let mut b = pb::EventBody::decode(entries[i].body()).unwrap();
        f(&mut b);
        Entry::sign(&b, &key(k)).unwrap().into_bytes()
    };
    let mut cases: Vec<(&str, &str, Vec<Vec<u8>>)> = Vec::new();
    let mut flipped = bytes[..4].to_vec();
    let last = flipped[3].len() - 1;
    flipped[3][last] ^= 0x01;
    cases.push(("flipped signature bit", "bad_signature", flipped));
    let mut t = bytes[..4].to_vec();
    t[3] = resign(3, &|b| b.prev_hash = vec![0; 32], 1);
    cases.push(("prev_hash does not link", "chain_broken:prev_hash", t));
    let mut t = bytes[..4].to_vec();
    t[3] = resign(3, &|b| b.index = 4, 1);
    cases.push(("index skips", "chain_broken:index", t));
    // One millisecond before entry 2: the CST date stays 2026-03-02, so
    // the entry's `date_formed` (2026-03-01) still passes the § 4.2 "not
    // after" rule and only the time rule (§ 6 rule 4) is broken.
    let mut t = bytes[..4].to_vec();
    let before = pb::EventBody::decode(entries[2].body()).unwrap().time_ms - 1;
    t[3] = resign(3, &|b| b.time_ms = before, 1);
    cases.push(("time goes backwards", "chain_broken:time_ms", t));
    let mut t = bytes[..4].to_vec();
    let mut body = entries[3].body().to_vec();
    body.extend_from_slice(&[0x78, 0x01]);
    t[3] = Entry::sign_body(&body, &key(1), 3).unwrap().into_bytes();
    cases.push((
        "unknown field appended (non-canonical body)",
        "non_canonical_body",
        t,
    ));
    let mut t = bytes[..4].to_vec();
    t[3] = resign(
        3,
        &|b| {
            b.kind = Some(Kind::Published(pb::Published {
                item_id: "budget-2026".into(),
                matter_id: "budget".into(),
                title: "重复".into(),
                content: Some(content("dup")),
                date_formed: "2026-03-01".into(),
                ..Default::default()
            }))
        },
        1,
    );
    t.push(t[3].clone());
    let t4 = {
        let prev = Entry::parse(t[3].clone(), 3).unwrap();
        let mut b = pb::EventBody::decode(prev.body()).unwrap();
        b.index = 4;
        b.prev_hash = prev.body_hash().0.to_vec();
        Entry::sign(&b, &key(1)).unwrap().into_bytes()
    };
    t[4] = t4;
    cases.push(("item id published twice", "rule:item-id-unique", t));
    let mut t = bytes[..4].to_vec();
    t[3] = resign(
        3,
        &|b| b.signer = key(9).public_key().as_bytes().to_vec(),
        9,
    );
    cases.push(("signed by a key not in force", "wrong_signer", t));
    cases
        .into_iter()
        .map(|(name, expect, t)| {
            let err = verify_all(&t).err().unwrap();
            assert_eq!(failure_name(&err), expect, "{name}: {err}");
            let idx = err.index().unwrap();
            json!({"description": name, "expect": expect, "index": idx, "entries": t.iter().map(|e| hex(e)).collect::<Vec<_>>()})
        })
        .collect()
}

/// The name FORMAT.md § 6 gives the failure `err` reports.
fn failure_name(err: &Error) -> String {
    match err {
        Error::MalformedEntry { .. } => "malformed_entry".into(),
        Error::NonCanonicalBody { .. } => "non_canonical_body".into(),
        Error::InvalidField { .. } => "invalid_field".into(),
        Error::ChainBroken { field, .. } => format!("chain_broken:{field}"),
        Error::WrongSigner { .. } => "wrong_signer".into(),
        Error::BadSignature { .. } => "bad_signature".into(),
        Error::BadRotationProof { .. } => "bad_rotation_proof".into(),
        Error::RuleViolation { rule, .. } => format!("rule:{rule}"),
        other => format!("unnamed: {other}"),
    }
}

fn verify_all(entries: &[Vec<u8>]) -> Result<ChainVerifier, Error> {
    let mut v = ChainVerifier::new(origin(), &[key(1).public_key()]);
    for e in entries {
        v.push(e.clone())?;
    }
    Ok(v)
}

#[test]
fn vectors_are_unchanged() {
    let update = std::env::var_os("GONGKAI_UPDATE_VECTORS").is_some();
    std::fs::create_dir_all(dir()).unwrap();
    let mut changed = Vec::new();
    for (name, text) in generate() {
        let path = dir().join(name);
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        if on_disk != text {
            if update {
                std::fs::write(&path, &text).unwrap();
            } else {
                changed.push(name);
            }
        }
    }
    assert!(
        changed.is_empty(),
        "test vectors changed: {changed:?}. If the format change is intended, regenerate with \
         GONGKAI_UPDATE_VECTORS=1 and explain it in the commit and FORMAT.md."
    );
}

#[test]
fn vectors_verify_from_the_files() {
    let text = std::fs::read_to_string(dir().join("vectors.json")).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    let entries: Vec<Vec<u8>> = v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| unhex(e["entry"].as_str().unwrap()))
        .collect();
    let chain = verify_all(&entries).unwrap();
    let leaves: Vec<Hash> = entries.iter().map(|e| leaf_hash(e)).collect();
    for r in v["roots"].as_array().unwrap() {
        let size = r["size"].as_u64().unwrap() as usize;
        assert_eq!(
            merkle::root(&leaves[..size]).to_hex(),
            r["root"].as_str().unwrap()
        );
    }
    let h = |s: &Value| Hash::from_hex(s.as_str().unwrap()).unwrap();
    let hs = |s: &Value| s.as_array().unwrap().iter().map(h).collect::<Vec<_>>();
    for p in v["inclusion_proofs"].as_array().unwrap() {
        merkle::verify_inclusion(
            &h(&p["leaf_hash"]),
            p["index"].as_u64().unwrap(),
            p["size"].as_u64().unwrap(),
            &hs(&p["proof"]),
            &h(&p["root"]),
        )
        .unwrap();
    }
    for p in v["consistency_proofs"].as_array().unwrap() {
        merkle::verify_consistency(
            p["old_size"].as_u64().unwrap(),
            p["new_size"].as_u64().unwrap(),
            &h(&p["old_root"]),
            &h(&p["new_root"]),
            &hs(&p["proof"]),
        )
        .unwrap();
    }
    // The checkpoint verifies under the rotated key with the witness, and
    // matches the verified chain.
    let cp_text = std::fs::read_to_string(dir().join("checkpoint.txt")).unwrap();
    let signed = SignedCheckpoint::parse(&cp_text).unwrap();
    let log_vkey = std::fs::read_to_string(dir().join("log-rotated.vkey")).unwrap();
    let witness_vkey = std::fs::read_to_string(dir().join("witness.vkey")).unwrap();
    let witnesses = Verifiers::new([witness_vkey.trim().parse().unwrap()]).unwrap();
    let verified = signed
        .verify(&log_vkey.trim().parse().unwrap(), &witnesses, 1)
        .unwrap();
    assert_eq!(verified.cosignatures[0].timestamp, Some(COSIGN_TIME));
    chain.check_checkpoint(signed.checkpoint()).unwrap();
    // Every invalid log fails at the stated index.
    for case in v["invalid"].as_array().unwrap() {
        let t: Vec<Vec<u8>> = case["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| unhex(e.as_str().unwrap()))
            .collect();
        let err = verify_all(&t).err().unwrap();
        assert_eq!(
            err.index(),
            case["index"].as_u64(),
            "{}",
            case["description"]
        );
        // And with the failure the vector names, not merely at its index:
        // a vector must test exactly the rule it claims to.
        assert_eq!(
            Some(failure_name(&err).as_str()),
            case["expect"].as_str(),
            "{}: {err}",
            case["description"]
        );
    }
}
