//! The chain verifier against a tamper matrix: every change to a valid log
//! is detected with the right error at the right index.

mod common;

use common::{TestLog, content, key, origin, sample_log};
use gongkai_core::Error;
use gongkai_core::chain::{
    ChainState, ChainVerifier, Prepared, prepare, prepare_view, verify_queued, verify_signatures,
};
use gongkai_core::checkpoint::Checkpoint;
use gongkai_core::date::Date;
use gongkai_core::entry::Entry;
use gongkai_core::event::{Kind, pb};
use gongkai_core::hash::leaf_hash;
use gongkai_core::keys::BatchVerifier;
use gongkai_core::keys::PublicKey;
use gongkai_core::merkle;
use gongkai_core::writer::LogWriter;
use prost::Message as _;

fn trusted() -> Vec<PublicKey> {
    vec![key(1).public_key()]
}

/// Verifies `entries` one by one with `push`; returns the first error.
/// Checks that reading the entries in place with batched signatures
/// ([`verify_in_place`]) gives the same verdict, at the same index, and
/// the same state.
fn verify(entries: &[Vec<u8>]) -> Result<ChainVerifier, Error> {
    let pushed: Result<ChainVerifier, Error> = (|| {
        let mut v = ChainVerifier::new(origin(), &trusted());
        for e in entries {
            v.push(e.clone())?;
        }
        Ok(v)
    })();
    match (&pushed, verify_in_place(entries)) {
        (Ok(a), Ok(b)) => assert_eq!(a.state(), b.state()),
        // The same index; within one entry the paths may name different
        // faults first (`push` checks the signature before the rules).
        (Err(a), Err(b)) => assert_eq!(a.index(), b.index(), "{a} / {b}"),
        (a, b) => panic!("push: {:?}, in place: {:?}", a.as_ref().err(), b.err()),
    }
    pushed
}

/// Verifies through the prepare / push_prepared / batch path, and checks
/// that queuing the claimed signatures directly gives the same verdict,
/// and that the path reading entries in place (`prepare_view`,
/// `push_verified_view`) gives the same verdict and the same verifier.
fn verify_batched(entries: &[Vec<u8>]) -> Result<ChainVerifier, Error> {
    let mut v = ChainVerifier::new(origin(), &trusted());
    let mut checks = Vec::new();
    let mut queued = BatchVerifier::new();
    let mut scratch = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let p = prepare(e.clone(), i as u64);
        // Owned or in place, an entry is prepared the same.
        let view = prepare_view(e, i as u64);
        assert_eq!(p.as_ref().map(Prepared::view).map_err(|e| e.clone()), view);
        let p = p?;
        p.queue_signatures(&mut queued, &mut scratch)?;
        checks.extend(v.push_prepared(&p)?);
    }
    let by_checks = verify_signatures(&checks, &mut rand::rng());
    let by_queue = verify_queued(queued, &mut rand::rng());
    assert_eq!(by_checks, by_queue);
    by_checks?;
    Ok(v)
}

/// The entries read in place: `prepare_view`, `push_verified_view`, and
/// the signatures they claim batch-verified. A fault counts only if no
/// signature before it fails, as in the batched callers.
fn verify_in_place(entries: &[Vec<u8>]) -> Result<ChainVerifier, Error> {
    let mut v = ChainVerifier::new(origin(), &trusted());
    let mut batch = BatchVerifier::new();
    let mut scratch = Vec::new();
    let links = entries.iter().enumerate().try_for_each(|(i, e)| {
        let p = prepare_view(e, i as u64)?;
        p.queue_signatures(&mut batch, &mut scratch)?;
        v.push_verified_view(&p)
    });
    match (links, verify_queued(batch, &mut rand::rng())) {
        (Ok(()), Ok(())) => Ok(v),
        // An entry's links and rules before its signature.
        (Err(l), Err(s)) if s.index() < l.index() => Err(s),
        (Err(e), _) | (Ok(()), Err(e)) => Err(e),
    }
}

fn index_of(r: Result<ChainVerifier, Error>) -> Option<u64> {
    r.err().and_then(|e| e.index())
}

#[test]
fn clean_log_verifies_both_ways() {
    let log = sample_log();
    let entries = log.bytes();
    let v = verify(&entries).unwrap();
    let b = verify_batched(&entries).unwrap();
    let leaves: Vec<_> = entries.iter().map(|e| leaf_hash(e)).collect();
    assert_eq!(v.root(), merkle::root(&leaves));
    assert_eq!(b.root(), v.root());
    assert_eq!(v.size(), entries.len() as u64);
    assert_eq!(v.state().keys.len(), 2, "genesis key and rotated key");
    let cp = Checkpoint::new(origin(), v.size(), v.root());
    v.check_checkpoint(&cp).unwrap();
    assert!(matches!(
        v.check_checkpoint(&Checkpoint::new(origin(), v.size() - 1, v.root())),
        Err(Error::SizeMismatch { .. })
    ));
    assert!(matches!(
        v.check_checkpoint(&Checkpoint::new(origin(), v.size(), leaves[0])),
        Err(Error::RootMismatch { .. })
    ));
}

#[test]
fn every_flipped_bit_is_caught_at_its_index() {
    let entries = sample_log().bytes();
    for i in 0..entries.len() {
        for j in 0..entries[i].len() {
            for bit in [0x01u8, 0x80] {
                let mut t = entries.clone();
                t[i][j] ^= bit;
                let r = verify(&t);
                assert_eq!(
                    index_of(r),
                    Some(i as u64),
                    "entry {i} byte {j} bit {bit:#x}"
                );
            }
        }
    }
}

#[test]
fn drop_duplicate_reorder_truncate() {
    let entries = sample_log().bytes();
    let n = entries.len();
    for i in 0..n {
        let mut dropped = entries.clone();
        dropped.remove(i);
        if i < n - 1 {
            let e = verify(&dropped).err().unwrap();
            assert_eq!(e.index(), Some(i as u64), "drop {i}: {e}");
            assert!(matches!(e, Error::ChainBroken { .. }), "drop {i}: {e}");
        } else {
            // Dropping the last entry is a truncation: only a checkpoint shows it.
            let v = verify(&dropped).unwrap();
            let full = verify(&entries).unwrap();
            let cp = Checkpoint::new(origin(), full.size(), full.root());
            assert!(matches!(
                v.check_checkpoint(&cp),
                Err(Error::SizeMismatch { .. })
            ));
        }
        let mut dup = entries.clone();
        dup.insert(i, entries[i].clone());
        assert_eq!(index_of(verify(&dup)), Some(i as u64 + 1), "duplicate {i}");
        if i + 1 < n {
            let mut swapped = entries.clone();
            swapped.swap(i, i + 1);
            assert_eq!(index_of(verify(&swapped)), Some(i as u64), "swap {i}");
        }
    }
}

#[test]
fn wrong_keys() {
    // The whole log signed by another key: the genesis key is not trusted.
    let mut other = TestLog::new(key(9));
    other.publish("x", "m", "");
    assert!(matches!(
        verify(&other.bytes()),
        Err(Error::UntrustedGenesisKey { .. })
    ));

    // One entry re-signed by another key, body unchanged.
    let entries = sample_log().bytes();
    let e3 = Entry::parse(entries[3].clone(), 3).unwrap();
    let forged = Entry::sign_body(e3.body(), &key(9), 3).unwrap();
    let mut t = entries.clone();
    t[3] = forged.into_bytes();
    assert!(matches!(
        verify(&t),
        Err(Error::BadSignature { index: 3, .. })
    ));
    assert!(matches!(
        verify_batched(&t),
        Err(Error::BadSignature { index: 3, .. })
    ));

    // One entry whose body names another signer, consistently signed by it.
    let mut body = pb::EventBody::decode(e3.body()).unwrap();
    body.signer = key(9).public_key().as_bytes().to_vec();
    let mut t = entries.clone();
    t[3] = Entry::sign(&body, &key(9)).unwrap().into_bytes();
    assert!(matches!(
        verify(&t),
        Err(Error::WrongSigner { index: 3, .. })
    ));
}

#[test]
fn key_rotation_rules() {
    let mut log = TestLog::new(key(1));
    log.define("m", pb::Periodicity::None, "");
    // A rotation whose proof of possession is made by the wrong key.
    let idx = log.writer.size();
    let next = key(2).public_key();
    let bad_proof = key(3).sign(&gongkai_core::entry::rotation_message(
        common::ORIGIN,
        idx,
        &next,
    ));
    let mut bad = TestLog::new(key(1));
    bad.define("m", pb::Periodicity::None, "");
    bad.push(Kind::KeyRotated(pb::KeyRotated {
        next_key: next.as_bytes().to_vec(),
        proof: bad_proof.0.to_vec(),
        reason: String::new(),
    }));
    assert!(matches!(
        verify(&bad.bytes()),
        Err(Error::BadRotationProof { index: 2 })
    ));
    assert!(matches!(
        verify_batched(&bad.bytes()),
        Err(Error::BadRotationProof { index: 2 })
    ));

    // After a good rotation, the old key may no longer sign entries.
    let rot = log.writer.rotate(key(2), "", log.time + 1).unwrap();
    log.entries.push(rot);
    let mut entries = log.bytes();
    let mut stale = LogWriter::resume(
        origin(),
        key(1),
        log.writer.size(),
        log.entries.last().unwrap().body_hash(),
        log.time + 1,
    );
    entries.push(
        stale
            .append(
                Kind::MatterRetired(pb::MatterRetired {
                    matter_id: "m".into(),
                    reason: "r".into(),
                    legal_basis: String::new(),
                }),
                log.time + 2,
            )
            .unwrap()
            .into_bytes(),
    );
    assert!(matches!(
        verify(&entries),
        Err(Error::WrongSigner { index: 3, .. })
    ));
    // The same entry by the new key is fine.
    log.push(Kind::MatterRetired(pb::MatterRetired {
        matter_id: "m".into(),
        reason: "r".into(),
        legal_basis: String::new(),
    }));
    verify(&log.bytes()).unwrap();
}

#[test]
fn wrong_origin_and_time() {
    let entries = sample_log().bytes();
    let e2 = Entry::parse(entries[2].clone(), 2).unwrap();
    let mut body = pb::EventBody::decode(e2.body()).unwrap();
    body.origin = "gongkai.example/510122/education".into();
    let mut t = entries.clone();
    t[2] = Entry::sign(&body, &key(1)).unwrap().into_bytes();
    assert!(matches!(
        verify(&t),
        Err(Error::ChainBroken {
            index: 2,
            field: "origin",
            ..
        })
    ));

    let mut body = pb::EventBody::decode(e2.body()).unwrap();
    body.time_ms = 1;
    let mut t = entries.clone();
    t[2] = Entry::sign(&body, &key(1)).unwrap().into_bytes();
    assert!(matches!(
        verify(&t),
        Err(Error::ChainBroken {
            index: 2,
            field: "time_ms",
            ..
        })
    ));
}

#[test]
fn non_canonical_body_with_valid_signature() {
    let entries = sample_log().bytes();
    let e2 = Entry::parse(entries[2].clone(), 2).unwrap();
    let mut body = e2.body().to_vec();
    body.extend_from_slice(&[0x78, 0x01]); // unknown field 15
    let mut t = entries.clone();
    t[2] = Entry::sign_body(&body, &key(1), 2).unwrap().into_bytes();
    assert_eq!(index_of(verify(&t)), Some(2));
    assert!(matches!(
        verify(&t),
        Err(Error::NonCanonicalBody { index: 2 })
    ));
}

#[test]
fn state_machine_violations_are_named() {
    type Case = (&'static str, Box<dyn Fn(&mut TestLog)>);
    // A publication of `id` that names `to` as a related item of this log.
    let related = |id: &'static str, to: &'static str| -> Box<dyn Fn(&mut TestLog)> {
        Box::new(move |l| {
            l.push(Kind::Published(pb::Published {
                item_id: id.into(),
                matter_id: "m".into(),
                title: "t".into(),
                content: Some(content(id)),
                date_formed: "2026-03-01".into(),
                related: vec![pb::ItemRef {
                    origin: String::new(),
                    item_id: to.into(),
                    relation: pb::Relation::Draft as i32,
                }],
                ..Default::default()
            }));
        })
    };
    let cases: Vec<Case> = vec![
        // With related items, the rules read the item map while checking.
        ("item-id-unique", related("a", "a")),
        ("reference-exists", related("b", "nope")),
        ("item-not-withdrawn", Box::new(|l| l.amend("a", "v2"))),
        ("item-not-withdrawn", Box::new(|l| l.withdraw("a"))),
        ("item-exists", Box::new(|l| l.amend("nope", "v2"))),
        ("item-id-unique", Box::new(|l| l.publish("a", "m", ""))),
        (
            "publication-names-active-matter",
            Box::new(|l| l.publish("b", "nope", "")),
        ),
        (
            "period-matches-matter",
            Box::new(|l| l.publish("b", "m", "2026-Q1")),
        ),
        (
            "matter-id-unique",
            Box::new(|l| l.define("m", pb::Periodicity::None, "")),
        ),
        (
            "request-exists",
            Box::new(|l| {
                l.push(Kind::RequestAnswered(pb::RequestAnswered {
                    request_id: "r9".into(),
                    date_answered: "2026-03-02".into(),
                    decision: pb::Decision::DoesNotExist as i32,
                    ..Default::default()
                }));
            }),
        ),
        (
            "redaction-names-version",
            Box::new(|l| {
                l.push(Kind::Redacted(pb::Redacted {
                    item_id: "a".into(),
                    content_digest: content("something else").digest,
                    reason: "r".into(),
                    legal_basis: "b".into(),
                }));
            }),
        ),
    ];
    for (rule, bad) in cases {
        let mut log = TestLog::new(key(1));
        log.define("m", pb::Periodicity::None, "");
        log.publish("a", "m", "");
        log.withdraw("a");
        let good_len = log.entries.len();
        bad(&mut log);
        let r = verify(&log.bytes());
        match r {
            Err(Error::RuleViolation {
                index, rule: got, ..
            }) => {
                assert_eq!(got, rule);
                assert_eq!(index, good_len as u64);
            }
            other => panic!("{rule}: {:?}", other.map(|v| v.size())),
        }
    }
}

#[test]
fn small_order_keys_are_refused() {
    // The identity point (y = 1) decodes but has small order: under it,
    // R = rB, S = r verifies for every message, so anyone could sign.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let mut log = TestLog::new(key(1));
    log.push(Kind::KeyRotated(pb::KeyRotated {
        next_key: identity.to_vec(),
        proof: vec![0; 64],
        reason: String::new(),
    }));
    let err = verify(&log.bytes()).err().unwrap();
    assert!(
        matches!(
            err,
            Error::InvalidField {
                index: 1,
                field: "key_rotated.next_key",
                ..
            }
        ),
        "{err:?}"
    );
}

/// Keys that must never be log keys (FORMAT.md § 5.1), each with a signer
/// whose signatures verify under ZIP-215 for every message.
mod weak {
    use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};
    use curve25519_dalek::scalar::Scalar;
    use gongkai_core::keys::{PublicKey, Signature};
    use sha2::{Digest as _, Sha512};

    pub enum WeakKey {
        /// The identity point `0100…00` (small order): `R = B, S = 1`
        /// verifies for every message, so anyone can sign.
        Identity,
        /// `A' = aB + T` with `T` of order 8: the holder of `a` signs
        /// `S = r + k·a`, which satisfies the cofactored equation
        /// `[8][S]B = [8]R + [8][k]A'` always, the cofactorless one of
        /// strict RFC 8032 verifiers only when 8 divides `k`.
        Torsion(Scalar),
    }

    impl WeakKey {
        pub fn torsion(seed: u8) -> WeakKey {
            WeakKey::Torsion(ed25519_dalek::SigningKey::from_bytes(&[seed; 32]).to_scalar())
        }

        pub fn public_key(&self) -> PublicKey {
            match self {
                WeakKey::Identity => {
                    let mut b = [0u8; 32];
                    b[0] = 1;
                    PublicKey::from_bytes(b)
                }
                WeakKey::Torsion(a) => PublicKey::from_bytes(
                    (ED25519_BASEPOINT_POINT * a + EIGHT_TORSION[1])
                        .compress()
                        .0,
                ),
            }
        }

        pub fn sign(&self, message: &[u8]) -> Signature {
            let (r, s) = match self {
                WeakKey::Identity => (ED25519_BASEPOINT_POINT, Scalar::ONE),
                WeakKey::Torsion(a) => {
                    let a_bytes = self.public_key();
                    let r = wide(&[b"nonce", a_bytes.as_bytes(), message]);
                    let big_r = ED25519_BASEPOINT_POINT * r;
                    let k = wide(&[&big_r.compress().0, a_bytes.as_bytes(), message]);
                    (big_r, r + k * a)
                }
            };
            let mut sig = [0u8; 64];
            sig[..32].copy_from_slice(&r.compress().0);
            sig[32..].copy_from_slice(s.as_bytes());
            Signature(sig)
        }
    }

    fn wide(parts: &[&[u8]]) -> Scalar {
        let mut h = Sha512::new();
        for p in parts {
            h.update(p);
        }
        let mut out = [0u8; 64];
        out.copy_from_slice(&h.finalize());
        Scalar::from_bytes_mod_order_wide(&out)
    }

    /// Whether strict RFC 8032 (cofactorless) verification accepts it.
    pub fn strict_ok(key: &PublicKey, message: &[u8], sig: &Signature) -> bool {
        ed25519_dalek::VerifyingKey::from_bytes(key.as_bytes()).is_ok_and(|k| {
            k.verify_strict(message, &ed25519_dalek::Signature::from_bytes(&sig.0))
                .is_ok()
        })
    }
}

/// The weak keys verify signatures under ZIP-215 (the rule for entries),
/// and the torsion one's fail strict RFC 8032 verifiers such as Go's: as
/// a genesis key or a rotated-to key each is refused by the field rules,
/// at its entry, naming the field.
#[test]
fn weak_genesis_and_rotated_keys_are_refused() {
    use gongkai_core::entry::{rotation_message, signed_message};
    use weak::WeakKey;

    let frame = |body: &[u8], sig: &gongkai_core::keys::Signature| {
        let mut e = vec![1u8];
        e.extend_from_slice(&u16::try_from(body.len()).unwrap().to_be_bytes());
        e.extend_from_slice(body);
        e.extend_from_slice(&sig.0);
        e
    };
    let messages: Vec<Vec<u8>> = (0..16u8).map(|i| vec![i; 40]).collect();
    for (name, weak) in [
        ("identity", WeakKey::Identity),
        ("torsion", WeakKey::torsion(7)),
    ] {
        let public = weak.public_key();
        // What makes the key dangerous: ZIP-215 accepts what it signs,
        // strict RFC 8032 verifiers do not always.
        let strict: Vec<bool> = messages
            .iter()
            .map(|m| {
                let sig = weak.sign(m);
                assert!(public.verify(m, &sig).is_ok(), "{name}: ZIP-215");
                weak::strict_ok(&public, m, &sig)
            })
            .collect();
        assert!(
            strict.iter().any(|ok| !ok),
            "{name}: strict verifiers refuse some"
        );

        // As the genesis key, even trusted, with a valid ZIP-215 signature.
        let body = pb::EventBody {
            origin: origin().as_str().into(),
            index: 0,
            prev_hash: vec![0; 32],
            time_ms: common::T0,
            signer: public.as_bytes().to_vec(),
            kind: Some(Kind::Genesis(pb::Genesis {
                department: "某某县财政局".into(),
                division_code: "510122".into(),
            })),
        }
        .encode_to_vec();
        let genesis = frame(&body, &weak.sign(&signed_message(&body)));
        let mut v = ChainVerifier::new(origin(), &[public]);
        match v.push(genesis) {
            Err(Error::InvalidField {
                index: 0,
                field: "signer",
                reason,
            }) => assert!(reason.contains("genesis key"), "{name}: {reason}"),
            other => panic!("{name} genesis: {other:?}"),
        }

        // As the next key of a rotation, with a valid proof of possession.
        let mut log = TestLog::new(key(1));
        let proof = weak.sign(&rotation_message(origin().as_str(), 1, &public));
        assert!(
            public
                .verify(&rotation_message(origin().as_str(), 1, &public), &proof)
                .is_ok()
        );
        log.push(Kind::KeyRotated(pb::KeyRotated {
            next_key: public.as_bytes().to_vec(),
            proof: proof.0.to_vec(),
            reason: String::new(),
        }));
        match verify(&log.bytes()) {
            Err(Error::InvalidField {
                index: 1,
                field: "key_rotated.next_key",
                reason,
            }) => assert!(reason.contains("next key"), "{name}: {reason}"),
            other => panic!("{name} rotation: {:?}", other.err()),
        }
    }
}

#[test]
fn own_origin_must_be_left_out_of_references() {
    let mut log = TestLog::new(key(1));
    log.define("m", pb::Periodicity::None, "");
    log.publish("a", "m", "");
    log.push(Kind::Published(pb::Published {
        item_id: "b".into(),
        matter_id: "m".into(),
        title: "t".into(),
        content: Some(content("b")),
        date_formed: "2026-03-01".into(),
        related: vec![pb::ItemRef {
            origin: common::ORIGIN.into(),
            item_id: "a".into(),
            relation: pb::Relation::Draft as i32,
        }],
        ..Default::default()
    }));
    assert!(matches!(
        verify(&log.bytes()),
        Err(Error::InvalidField {
            index: 3,
            field: "published.related",
            ..
        })
    ));
}

#[test]
fn answered_twice_is_refused() {
    let mut log = TestLog::new(key(1));
    let received = Kind::RequestReceived(pb::RequestReceived {
        applicant: 0,
        request_id: "r1".into(),
        date_received: "2026-03-02".into(),
        subject: "s".into(),
    });
    let answer = Kind::RequestAnswered(pb::RequestAnswered {
        request_id: "r1".into(),
        date_answered: "2026-03-02".into(),
        decision: pb::Decision::AlreadyPublic as i32,
        ..Default::default()
    });
    log.push(received.clone());
    log.push(answer.clone());
    verify(&log.bytes()).unwrap();
    log.push(answer);
    assert!(matches!(
        verify(&log.bytes()),
        Err(Error::RuleViolation {
            index: 3,
            rule: "request-open",
            ..
        })
    ));
    let mut dup = TestLog::new(key(1));
    dup.push(received.clone());
    dup.push(received);
    assert!(matches!(
        verify(&dup.bytes()),
        Err(Error::RuleViolation {
            index: 2,
            rule: "request-id-unique",
            ..
        })
    ));
}

/// Rule `reference-exists` covers the items a request answer names, as it
/// covers a publication's related items: a same-log reference must name
/// an item published earlier; a reference to another log is not checked.
#[test]
fn answered_items_must_exist() {
    let answer = |items: Vec<pb::ItemRef>| {
        Kind::RequestAnswered(pb::RequestAnswered {
            request_id: "r1".into(),
            date_answered: "2026-03-02".into(),
            decision: pb::Decision::AlreadyPublic as i32,
            items,
            ..Default::default()
        })
    };
    let item = |origin: &str, id: &str| pb::ItemRef {
        origin: origin.into(),
        item_id: id.into(),
        relation: pb::Relation::Related as i32,
    };
    let log_with = |items: Vec<pb::ItemRef>| {
        let mut log = TestLog::new(key(1));
        log.define("budget", pb::Periodicity::None, "");
        log.publish("budget-2026", "budget", "");
        log.push(Kind::RequestReceived(pb::RequestReceived {
            applicant: 0,
            request_id: "r1".into(),
            date_received: "2026-03-02".into(),
            subject: "s".into(),
        }));
        log.push(answer(items));
        log
    };
    verify(&log_with(vec![item("", "budget-2026")]).bytes()).unwrap();
    verify(&log_with(vec![item("gongkai.example/510122/other", "nope")]).bytes()).unwrap();
    let refused = log_with(vec![item("", "budget-2026"), item("", "nope")]);
    match verify(&refused.bytes()) {
        Err(Error::RuleViolation {
            index: 4,
            rule: "reference-exists",
            detail,
        }) => assert!(detail.contains("nope"), "{detail}"),
        other => panic!("{:?}", other.err()),
    }
    // The refusal leaves the request open: an answer that names what
    // exists is accepted next.
    let mut v = ChainVerifier::new(origin(), &trusted());
    for e in &refused.bytes()[..4] {
        v.push(e.clone()).unwrap();
    }
    assert!(v.push(refused.bytes()[4].clone()).is_err());
    let again = {
        let third = Entry::parse(refused.bytes()[3].clone(), 3).unwrap();
        let mut w = LogWriter::resume(origin(), key(1), 4, third.body_hash(), refused.time);
        w.append(answer(vec![item("", "budget-2026")]), refused.time)
            .unwrap()
    };
    v.push(again.into_bytes()).unwrap();
}

#[test]
fn resume_from_serialized_state() {
    let entries = sample_log().bytes();
    let full = verify(&entries).unwrap();
    for cut in [1, 5, entries.len() - 1] {
        let head = verify(&entries[..cut]).unwrap();
        let json = serde_json::to_string(head.state()).unwrap();
        let state: ChainState = serde_json::from_str(&json).unwrap();
        let mut v = ChainVerifier::resume(state).unwrap();
        for e in &entries[cut..] {
            v.push(e.clone()).unwrap();
        }
        assert_eq!(v.root(), full.root());
        assert_eq!(v.state(), full.state());
    }
    // An inconsistent saved state is refused.
    let mut bad = verify(&entries[..5]).unwrap().into_state();
    bad.size += 1;
    assert!(ChainVerifier::resume(bad).is_err());
}

#[test]
fn failed_push_leaves_the_verifier_unchanged() {
    let log = sample_log();
    let entries = log.bytes();
    let mut v = verify(&entries[..5]).unwrap();
    let before = v.state().clone();
    let mut bad = entries[5].clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    assert!(v.push(bad).is_err());
    assert_eq!(v.state(), &before);
    assert!(v.push(entries[7].clone()).is_err());
    assert_eq!(v.state(), &before);
    // An entry prepared for another position is refused, though its body
    // claims the right index: its checks would name the wrong entry.
    let elsewhere = prepare_view(&entries[5], 9).unwrap();
    assert!(matches!(
        v.push_verified_view(&elsewhere),
        Err(Error::ChainBroken {
            index: 5,
            field: "position",
            ..
        })
    ));
    let elsewhere = prepare(entries[5].clone(), 4).unwrap();
    assert!(v.push_prepared(&elsewhere).is_err());
    assert_eq!(v.state(), &before);
    v.push(entries[5].clone()).unwrap();
}

#[test]
fn apply_all_is_all_or_nothing() {
    use gongkai_core::catalog::Catalog;
    use gongkai_core::event::Event;

    let mut log = TestLog::new(key(1));
    log.define("m", pb::Periodicity::None, "");
    log.publish("a", "m", "");
    log.publish("b", "m", "");
    log.publish("a", "m", ""); // duplicate id: breaks item-id-unique
    let events: Vec<Event> = log
        .entries
        .iter()
        .enumerate()
        .map(|(i, e)| e.decode_event(i as u64).unwrap())
        .collect();
    let mut catalog = Catalog::new();
    catalog.apply_all(&events[..3]).unwrap();
    let before = catalog.clone();
    // "b" is fine, the second "a" is not: nothing of the batch may stick.
    let err = catalog.apply_all(&events[3..]).unwrap_err();
    assert!(
        matches!(
            err,
            Error::RuleViolation {
                index: 4,
                rule: "item-id-unique",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(catalog, before);
    let b = gongkai_core::types::ItemId::new("b").unwrap();
    assert!(!catalog.items.contains_key(&b));
    catalog.apply_all(&events[3..4]).unwrap();
    assert!(catalog.items.contains_key(&b));
}

#[test]
fn claimed_checks_are_the_pushed_checks() {
    // A caller may verify `Prepared::signature_checks` before the links:
    // whenever `push_prepared` accepts an entry, it returns exactly those.
    let mut log = TestLog::new(key(1));
    log.define("m", pb::Periodicity::None, "");
    let rot = log.writer.rotate(key(2), "", log.time + 1).unwrap();
    log.entries.push(rot);
    log.push(Kind::MatterRetired(pb::MatterRetired {
        matter_id: "m".into(),
        reason: "r".into(),
        legal_basis: String::new(),
    }));
    let mut v = ChainVerifier::new(origin(), &trusted());
    let mut rotations = 0;
    for (i, e) in log.bytes().into_iter().enumerate() {
        let p = prepare(e, i as u64).unwrap();
        let claimed = p.signature_checks().unwrap();
        rotations += usize::from(claimed.len() == 2);
        assert_eq!(v.push_prepared(&p).unwrap(), claimed);
    }
    assert_eq!(rotations, 1);
}

/// What the ledger accepts never depends on holiday data: a log with
/// requests in a year the holiday table does not cover verifies, and a late
/// extension is recorded (the judgement, not the rules, finds it void).
/// Only a node's write policy refuses an extension it can judge late.
#[test]
fn rules_need_no_calendar_and_the_policy_judges_only_what_it_can() {
    use gongkai_core::calendar::WorkCalendar;
    use gongkai_core::catalog::Catalog;
    use gongkai_core::event::Event;

    let cal = WorkCalendar::shipped();
    let next = cal.last_year() + 1;
    let mut log = TestLog::new(key(1));
    let received = |id: &str, date: String| {
        Kind::RequestReceived(pb::RequestReceived {
            applicant: 0,
            request_id: id.into(),
            date_received: date,
            subject: "申请公开".into(),
        })
    };
    let extended = |id: &str, date: String| {
        Kind::RequestExtended(pb::RequestExtended {
            request_id: id.into(),
            date,
            approved_by: "局长".into(),
            reason: "需要协调".into(),
        })
    };
    log.push(received("late", "2026-03-02".into()));
    // "Today" moves into the year without a table.
    log.time = Date::new(next, 1, 7)
        .unwrap()
        .days_since_epoch()
        .unsigned_abs()
        * 86_400_000;
    log.push(received("uncovered", format!("{next}-01-05")));
    let events = |log: &TestLog| -> Vec<Event> {
        log.entries
            .iter()
            .enumerate()
            .map(|(i, e)| e.decode_event(i as u64).unwrap())
            .collect()
    };
    let mut catalog = Catalog::new();
    for e in events(&log) {
        catalog.apply(&e).unwrap();
    }

    // An extension the calendar cannot judge yet: the policy lets it
    // through (nothing waits for holiday data), the rules accept it.
    log.push(extended("uncovered", format!("{next}-01-06")));
    // An extension one working day after the deadline (2026-03-30).
    log.push(extended("late", "2026-03-31".into()));
    let late_index = log.entries.len() as u64 - 1;
    let all = events(&log);
    let (uncovered, late) = (&all[all.len() - 2..all.len() - 1], &all[all.len() - 1..]);
    catalog.check_write_policy(uncovered, cal).unwrap();
    let refused = catalog.check_write_policy(late, cal).unwrap_err();
    assert!(
        matches!(
            &refused,
            Error::RuleViolation { index, rule: "extension-in-time", .. } if *index == late_index
        ),
        "{refused:?}"
    );
    // The ledger's rules record both; so does a whole-chain verification.
    catalog.apply_all(&all[all.len() - 2..]).unwrap();
    let mut v = ChainVerifier::new(origin(), &[key(1).public_key()]);
    for bytes in log.bytes() {
        v.push(bytes).unwrap();
    }
}
