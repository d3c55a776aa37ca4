//! Interop with Go's `golang.org/x/mod/sumdb/note`: the example key and
//! signed notes published with the package (see
//! `tests/vectors/go-note/README.md`), checked byte for byte.

use std::path::PathBuf;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use gongkai_core::Error;
use gongkai_core::keys::SigningKey;
use gongkai_core::note::{KeyType, Note, NoteSigner, VerifierKey, Verifiers};
use gongkai_core::types::KeyName;

const TEXT: &str = "If you think cryptography is the answer to your problem,\n\
                    then you don't know what your problem is.\n";

fn vector(name: &str) -> String {
    let path: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "tests",
        "vectors",
        "go-note",
        name,
    ]
    .iter()
    .collect();
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn key(name: &str) -> VerifierKey {
    vector(name).trim_end_matches('\n').parse().unwrap()
}

/// The seed inside Go's `PRIVATE+KEY+<name>+<id>+base64(0x01 || seed)`.
fn peter_seed() -> [u8; 32] {
    let skey = vector("peter.skey");
    let parts: Vec<&str> = skey.trim_end_matches('\n').splitn(5, '+').collect();
    assert_eq!(parts[..4], ["PRIVATE", "KEY", "PeterNeumann", "c74f20a3"]);
    let bytes = STANDARD.decode(parts[4]).unwrap();
    assert_eq!(bytes[0], 0x01);
    bytes[1..].try_into().unwrap()
}

#[test]
fn vkeys_parse_with_the_published_ids() {
    let peter = key("peter.vkey");
    assert_eq!(peter.name().as_str(), "PeterNeumann");
    assert_eq!(peter.id(), 0xc74f20a3);
    assert_eq!(peter.key_type(), KeyType::Ed25519);
    assert_eq!(peter.to_string(), vector("peter.vkey").trim_end());
    let enoch = key("enoch.vkey");
    assert_eq!(enoch.id(), 0xaf0cfe78);
    assert_eq!(enoch.to_string(), vector("enoch.vkey").trim_end());
}

#[test]
fn go_vkey_manglings_are_rejected() {
    // After Go's TestNewVerifier: every proper substring and every one-byte
    // increment of the key must be refused.
    let vkey = vector("peter.vkey").trim_end().to_string();
    let b = vkey.as_bytes();
    for i in 0..=b.len() {
        for j in i + 1..=b.len() {
            if i == 0 && j == b.len() {
                continue;
            }
            if let Ok(s) = std::str::from_utf8(&b[i..j]) {
                assert!(VerifierKey::parse(s).is_err(), "{s:?} accepted");
            }
        }
    }
    for i in 0..b.len() {
        let mut m = b.to_vec();
        m[i] = m[i].wrapping_add(1);
        if let Ok(s) = std::str::from_utf8(&m) {
            assert!(VerifierKey::parse(s).is_err(), "{s:?} accepted");
        }
    }
}

#[test]
fn go_note_parses_verifies_and_round_trips() {
    let signed = vector("note.txt");
    let note = Note::parse(&signed).unwrap();
    assert_eq!(note.text(), TEXT);
    assert_eq!(note.signatures().len(), 1);
    assert_eq!(note.signatures()[0].name().as_str(), "PeterNeumann");
    assert_eq!(note.signatures()[0].id(), 0xc74f20a3);
    assert_eq!(note.to_string(), signed);
    let verified = note.verify(&key("peter.vkey").into()).unwrap();
    assert_eq!(verified.len(), 1);
    assert_eq!(verified[0].id, 0xc74f20a3);
    // Only EnochRoot known: Peter's signature is ignored, nothing verifies.
    assert_eq!(
        note.verify(&key("enoch.vkey").into()),
        Err(Error::NoteQuorum {
            found: 0,
            required: 1
        })
    );
}

#[test]
fn go_two_signature_note() {
    let signed = vector("note-two-signatures.txt");
    let note = Note::parse(&signed).unwrap();
    assert_eq!(note.to_string(), signed);
    let both = Verifiers::new([key("peter.vkey"), key("enoch.vkey")]).unwrap();
    assert_eq!(note.verify_quorum(&both, 2).unwrap().len(), 2);
    assert_eq!(note.verify(&key("peter.vkey").into()).unwrap().len(), 1);
    assert_eq!(note.verify(&key("enoch.vkey").into()).unwrap().len(), 1);
}

#[test]
fn any_one_bit_flip_fails() {
    let signed = vector("note.txt");
    let peter: Verifiers = key("peter.vkey").into();
    let bytes = signed.as_bytes();
    let mut checked = 0;
    for i in 0..bytes.len() {
        for bit in 0..8 {
            let mut m = bytes.to_vec();
            m[i] ^= 1 << bit;
            // Flips either break the syntax or the signature; none may
            // still verify under Peter's key.
            if let Ok(note) = Note::from_bytes(&m) {
                assert!(
                    note.verify(&peter).is_err(),
                    "flip of bit {bit} of byte {i} still verifies"
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 0);
    // A flip in the signature bytes of a known key is an invalid signature,
    // not an ignored one.
    let note = Note::parse(&signed).unwrap();
    let line = note.signatures()[0].to_string();
    let mut raw = STANDARD.decode(line.rsplit_once(' ').unwrap().1).unwrap();
    raw[20] ^= 1;
    let bad = format!("{TEXT}\n\u{2014} PeterNeumann {}\n", STANDARD.encode(raw));
    assert_eq!(
        Note::parse(&bad).unwrap().verify(&peter),
        Err(Error::NoteSignatureInvalid {
            name: "PeterNeumann".into(),
            id: 0xc74f20a3
        })
    );
}

#[test]
fn our_signer_reproduces_the_go_signature() {
    let signer = NoteSigner::new(
        KeyName::new("PeterNeumann").unwrap(),
        SigningKey::from_seed(peter_seed()),
    );
    assert_eq!(signer.id(), 0xc74f20a3);
    assert_eq!(signer.verifier_key(), key("peter.vkey"));
    let mut note = Note::new(TEXT).unwrap();
    note.sign(&signer).unwrap();
    assert_eq!(note.to_string(), vector("note.txt"));
}
