//! C2SP signed notes and verifier keys (FORMAT.md § Checkpoints).
//!
//! Implements [C2SP signed-note](https://c2sp.org/signed-note) with the two
//! signature types gongkai uses:
//!
//! * `0x01`, Ed25519 over the note text (signed-note § Ed25519 signatures),
//!   used by departments to sign their checkpoints;
//! * `0x04`, timestamped Ed25519 witness cosignatures
//!   ([C2SP tlog-cosignature](https://c2sp.org/tlog-cosignature) § Format,
//!   § Ed25519 signed message), used by the county and other witnesses.
//!
//! A signed note is the text (ending in a newline), one blank line, and one
//! or more signature lines `— <key name> <base64(key id || signature)>`
//! (signed-note § Format). Parsing is strict, for untrusted input:
//!
//! * at most [`MAX_NOTE_SIZE`] bytes and [`MAX_SIGNATURES`] signature lines;
//! * valid UTF-8 with no ASCII control character other than `\n` — so no
//!   `\r` and no NUL: an event signature message
//!   (`"gongkai/event/v1" || 0x00 || body`) can never be a note text;
//! * canonical standard base64 (RFC 4648 §4, with padding);
//! * key names per [`KeyName`];
//! * signatures carry a 4-byte key id and at least one byte more.
//!
//! A note that parses is printed back byte for byte by its `Display`.
//!
//! Verification follows signed-note § Signatures: a signature whose key name
//! *and* key id match no known key is ignored; a signature by a known key
//! that fails to verify rejects the whole note; a note with no verified
//! signature from a known key is rejected. Signature validity is ZIP-215
//! ([`PublicKey::verify`]).
//!
//! ```
//! use gongkai_core::keys::SigningKey;
//! use gongkai_core::note::{Note, NoteSigner, Verifiers};
//! use gongkai_core::types::KeyName;
//!
//! let signer = NoteSigner::new(
//!     KeyName::new("example.com/log").unwrap(),
//!     SigningKey::from_seed([1; 32]),
//! );
//! let mut note = Note::new("hello\n").unwrap();
//! note.sign(&signer).unwrap();
//! let signed = note.to_string();
//! assert!(signed.starts_with("hello\n\n\u{2014} example.com/log "));
//!
//! // A verifier who trusts the vkey string.
//! let vkey = signer.verifier_key().to_string();
//! let trusted = Verifiers::from(vkey.parse::<gongkai_core::note::VerifierKey>().unwrap());
//! let parsed = Note::parse(&signed).unwrap();
//! assert_eq!(parsed.verify(&trusted).unwrap()[0].name.as_str(), "example.com/log");
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::Error;
use crate::keys::{PublicKey, Signature, SigningKey};
use crate::types::KeyName;

/// Largest signed note accepted by the parser: 1 MiB (text, blank line and
/// signature lines together).
pub const MAX_NOTE_SIZE: usize = 1 << 20;

/// Most signature lines accepted on one note (C2SP signed-note requires at
/// least 16; Go's `sumdb/note` allows 100).
pub const MAX_SIGNATURES: usize = 100;

/// The first bytes of every signature line: em dash (U+2014) and a space.
const SIG_PREFIX: &str = "\u{2014} ";

/// Header line of the tlog-cosignature/v1 signed message.
const COSIGNATURE_HEADER: &str = "cosignature/v1\n";

/// The signature types gongkai supports (signed-note § Signature types).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyType {
    /// `0x01`: Ed25519 over the note text.
    Ed25519,
    /// `0x04`: tlog-cosignature/v1, timestamped Ed25519 over
    /// `cosignature/v1\ntime <secs>\n` and the note text.
    CosignatureV1,
}

impl KeyType {
    /// The signature type identifier byte.
    pub fn byte(self) -> u8 {
        match self {
            KeyType::Ed25519 => 0x01,
            KeyType::CosignatureV1 => 0x04,
        }
    }

    fn from_byte(b: u8) -> Option<KeyType> {
        match b {
            0x01 => Some(KeyType::Ed25519),
            0x04 => Some(KeyType::CosignatureV1),
            _ => None,
        }
    }
}

/// The key id of an Ed25519 key of type `key_type` under `name`:
/// `SHA-256(name || 0x0A || type byte || 32-byte key)[:4]`, big-endian
/// (signed-note § Signatures; tlog-cosignature § Format).
pub fn key_id(name: &KeyName, key_type: KeyType, key: &PublicKey) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_str().as_bytes());
    h.update([0x0a, key_type.byte()]);
    h.update(key.as_bytes());
    let digest = h.finalize();
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// Decodes canonical standard base64 (RFC 4648 §4 with padding); anything
/// that would not be re-encoded to the same text is rejected.
fn decode_base64(what: &'static str, text: &str) -> Result<Vec<u8>, Error> {
    let bytes = STANDARD
        .decode(text)
        .map_err(|_| Error::InvalidBase64 { what })?;
    if STANDARD.encode(&bytes) != text {
        return Err(Error::InvalidBase64 { what });
    }
    Ok(bytes)
}

/// Checks the rules every note text obeys (signed-note § Format): non-empty,
/// at most [`MAX_NOTE_SIZE`] bytes, ends with a newline, and contains no ASCII
/// control character other than newline.
///
/// # Errors
/// [`Error::MalformedNote`] naming the rule broken.
pub fn check_text(text: &str) -> Result<(), Error> {
    if text.is_empty() {
        return Err(Error::MalformedNote("empty text"));
    }
    if text.len() > MAX_NOTE_SIZE {
        return Err(Error::MalformedNote("text larger than 1 MiB"));
    }
    check_characters(text)?;
    if !text.ends_with('\n') {
        return Err(Error::MalformedNote("text does not end in a newline"));
    }
    Ok(())
}

fn check_characters(text: &str) -> Result<(), Error> {
    if text.bytes().any(|b| b < 0x20 && b != b'\n') {
        return Err(Error::MalformedNote(
            "contains an ASCII control character other than newline",
        ));
    }
    Ok(())
}

// ---- verifier keys -----------------------------------------------------

/// A verifier key: a key name, its key id, a signature type and an Ed25519
/// public key. Its text form ("vkey", signed-note § Verifier keys) is
/// `<name>+<8 lowercase hex digits of the id>+<base64(type || key)>`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct VerifierKey {
    name: KeyName,
    id: u32,
    key_type: KeyType,
    key: PublicKey,
}

impl VerifierKey {
    /// The verifier key for `key` of type `key_type` under `name`; the id is
    /// computed by [`key_id`].
    pub fn new(name: KeyName, key_type: KeyType, key: PublicKey) -> VerifierKey {
        let id = key_id(&name, key_type, &key);
        VerifierKey {
            name,
            id,
            key_type,
            key,
        }
    }

    /// Parses a vkey string.
    ///
    /// # Errors
    /// [`Error::MalformedVerifierKey`] if the string is not three `+`
    /// separated parts, the name is not a valid [`KeyName`], the id is not 8
    /// lowercase hex digits, the key is not canonical base64 of a type byte
    /// (`0x01` or `0x04`) and 32 bytes, the 32 bytes are not a strong key
    /// ([`PublicKey::check_strong`]), or the id does not match the key.
    pub fn parse(text: &str) -> Result<VerifierKey, Error> {
        // The base64 part may itself contain '+', so split only twice.
        let mut parts = text.splitn(3, '+');
        let (Some(name), Some(hex), Some(b64)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(Error::MalformedVerifierKey("expected <name>+<id>+<key>"));
        };
        let name =
            KeyName::new(name).map_err(|_| Error::MalformedVerifierKey("invalid key name"))?;
        if hex.len() != 8 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(Error::MalformedVerifierKey(
                "key id is not 8 lowercase hex digits",
            ));
        }
        let id = u32::from_str_radix(hex, 16)
            .map_err(|_| Error::MalformedVerifierKey("key id is not hex"))?;
        let bytes = decode_base64("verifier key", b64)
            .map_err(|_| Error::MalformedVerifierKey("key is not canonical base64"))?;
        let (&type_byte, key) = bytes
            .split_first()
            .ok_or(Error::MalformedVerifierKey("empty key"))?;
        let key_type = KeyType::from_byte(type_byte)
            .ok_or(Error::MalformedVerifierKey("unsupported signature type"))?;
        let key = PublicKey::from_slice(key)
            .map_err(|_| Error::MalformedVerifierKey("public key is not 32 bytes"))?;
        // A key nobody should trust (FORMAT.md § 5.1): small-order, or with a
        // torsion component that strict RFC 8032 verifiers would trip on.
        key.check_strong().map_err(|_| {
            Error::MalformedVerifierKey(
                "public key is not a strong Ed25519 key (a canonical point of the prime-order \
                 subgroup, not the identity)",
            )
        })?;
        let vkey = VerifierKey::new(name, key_type, key);
        if vkey.id != id {
            return Err(Error::MalformedVerifierKey("key id does not match the key"));
        }
        Ok(vkey)
    }

    /// The key name.
    pub fn name(&self) -> &KeyName {
        &self.name
    }

    /// The key id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The signature type.
    pub fn key_type(&self) -> KeyType {
        self.key_type
    }

    /// The Ed25519 public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.key
    }

    /// The key's fingerprint, the one form every tool prints (`keygen`,
    /// `county status`, the portal): the first 8 bytes of
    /// SHA-256(type byte || public key), in hex, in groups of four, e.g.
    /// `3f2c 57e7 4fa5 d2be` (FORMAT.md § 10). Short enough to read aloud
    /// or print in a gazette next to the full verifier key.
    pub fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        h.update([self.key_type.byte()]);
        h.update(self.key.as_bytes());
        let digest = h.finalize();
        let mut out = String::with_capacity(19);
        for (i, b) in digest[..8].iter().enumerate() {
            if i > 0 && i % 2 == 0 {
                out.push(' ');
            }
            out.push_str(&format!("{b:02x}"));
        }
        out
    }

    /// Checks `signature` (the bytes after the key id) over `text`.
    ///
    /// Returns the cosignature timestamp for [`KeyType::CosignatureV1`].
    fn verify(&self, text: &str, signature: &[u8]) -> Result<Option<u64>, Error> {
        let invalid = || Error::NoteSignatureInvalid {
            name: self.name.to_string(),
            id: self.id,
        };
        match self.key_type {
            KeyType::Ed25519 => {
                let sig = Signature::from_slice(signature).map_err(|_| invalid())?;
                self.key
                    .verify(text.as_bytes(), &sig)
                    .map_err(|()| invalid())?;
                Ok(None)
            }
            KeyType::CosignatureV1 => {
                if signature.len() != 72 {
                    return Err(invalid());
                }
                let (ts, sig) = signature.split_at(8);
                let mut ts_bytes = [0u8; 8];
                ts_bytes.copy_from_slice(ts);
                let time = u64::from_be_bytes(ts_bytes);
                if time > i64::MAX as u64 {
                    return Err(invalid());
                }
                let sig = Signature::from_slice(sig).map_err(|_| invalid())?;
                self.key
                    .verify(&cosignature_message(text, time), &sig)
                    .map_err(|()| invalid())?;
                Ok(Some(time))
            }
        }
    }
}

impl fmt::Display for VerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut bytes = Vec::with_capacity(33);
        bytes.push(self.key_type.byte());
        bytes.extend_from_slice(self.key.as_bytes());
        write!(
            f,
            "{}+{:08x}+{}",
            self.name,
            self.id,
            STANDARD.encode(bytes)
        )
    }
}

impl fmt::Debug for VerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VerifierKey({self})")
    }
}

impl FromStr for VerifierKey {
    type Err = Error;
    fn from_str(s: &str) -> Result<VerifierKey, Error> {
        VerifierKey::parse(s)
    }
}

impl Serialize for VerifierKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for VerifierKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<VerifierKey, D::Error> {
        let text = String::deserialize(d)?;
        VerifierKey::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A set of trusted verifier keys, looked up by key name and key id.
#[derive(Clone, Debug, Default)]
pub struct Verifiers {
    keys: BTreeMap<(KeyName, u32), VerifierKey>,
}

impl Verifiers {
    /// A set of keys. The same key given twice counts once.
    ///
    /// # Errors
    /// [`Error::MalformedVerifierKey`] if two *different* keys share a key
    /// name and key id: signatures by them could not be told apart (Go's
    /// `sumdb/note` reports the same situation as an ambiguous key).
    pub fn new(keys: impl IntoIterator<Item = VerifierKey>) -> Result<Verifiers, Error> {
        let mut set = Verifiers::default();
        for key in keys {
            let slot = (key.name.clone(), key.id);
            match set.keys.get(&slot) {
                Some(existing) if *existing != key => {
                    return Err(Error::MalformedVerifierKey(
                        "two different keys share a key name and key id",
                    ));
                }
                Some(_) => {}
                None => {
                    set.keys.insert(slot, key);
                }
            }
        }
        Ok(set)
    }

    /// Number of distinct keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True if the set is empty.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key with this name and id, if known.
    pub fn find(&self, name: &KeyName, id: u32) -> Option<&VerifierKey> {
        self.keys.get(&(name.clone(), id))
    }

    /// The keys, ordered by name and id.
    pub fn iter(&self) -> impl Iterator<Item = &VerifierKey> {
        self.keys.values()
    }
}

impl From<VerifierKey> for Verifiers {
    fn from(key: VerifierKey) -> Verifiers {
        let mut set = Verifiers::default();
        set.keys.insert((key.name.clone(), key.id), key);
        set
    }
}

// ---- signatures and notes -------------------------------------------------

/// One signature line of a note: key name, key id and the signature bytes
/// that follow the id (64 for Ed25519, 8 + 64 for a cosignature). Not yet
/// verified.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct NoteSignature {
    name: KeyName,
    id: u32,
    signature: Vec<u8>,
}

impl NoteSignature {
    /// A signature by `name`/`id` with the given bytes (after the key id).
    ///
    /// # Errors
    /// [`Error::MalformedNote`] if `signature` is empty.
    pub fn new(name: KeyName, id: u32, signature: Vec<u8>) -> Result<NoteSignature, Error> {
        if signature.is_empty() {
            return Err(Error::MalformedNote("empty signature"));
        }
        Ok(NoteSignature {
            name,
            id,
            signature,
        })
    }

    /// Parses one signature line, `— <key name> <base64>`, without its
    /// final newline.
    ///
    /// # Errors
    /// [`Error::MalformedNote`] if the em dash and space are missing, the key
    /// name is invalid or there is no space after it, or the signature is
    /// shorter than 5 bytes; [`Error::InvalidBase64`] if the signature is not
    /// canonical standard base64.
    pub fn parse_line(line: &str) -> Result<NoteSignature, Error> {
        check_characters(line)?;
        if line.contains('\n') {
            return Err(Error::MalformedNote("signature line contains a newline"));
        }
        let rest = line.strip_prefix(SIG_PREFIX).ok_or(Error::MalformedNote(
            "signature line does not start with an em dash and a space",
        ))?;
        let (name, b64) = rest
            .split_once(' ')
            .ok_or(Error::MalformedNote("signature line has no signature"))?;
        let name = KeyName::new(name)
            .map_err(|_| Error::MalformedNote("signature line has an invalid key name"))?;
        if b64.is_empty() {
            return Err(Error::MalformedNote("signature line has no signature"));
        }
        let bytes = decode_base64("note signature", b64)?;
        if bytes.len() < 5 {
            return Err(Error::MalformedNote(
                "signature shorter than a key id and one byte",
            ));
        }
        let id = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        Ok(NoteSignature {
            name,
            id,
            signature: bytes[4..].to_vec(),
        })
    }

    /// The key name.
    pub fn name(&self) -> &KeyName {
        &self.name
    }

    /// The key id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The signature bytes after the key id.
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }
}

/// Prints the signature line without its final newline.
impl fmt::Display for NoteSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut bytes = Vec::with_capacity(4 + self.signature.len());
        bytes.extend_from_slice(&self.id.to_be_bytes());
        bytes.extend_from_slice(&self.signature);
        write!(f, "{SIG_PREFIX}{} {}", self.name, STANDARD.encode(bytes))
    }
}

impl FromStr for NoteSignature {
    type Err = Error;
    fn from_str(s: &str) -> Result<NoteSignature, Error> {
        NoteSignature::parse_line(s)
    }
}

/// A signature that verified under a trusted key.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct VerifiedSignature {
    /// Key name.
    pub name: KeyName,
    /// Key id.
    pub id: u32,
    /// Signature type of the key.
    pub key_type: KeyType,
    /// The cosignature timestamp (Unix seconds), for
    /// [`KeyType::CosignatureV1`].
    pub timestamp: Option<u64>,
}

/// Fails with [`Error::NoteQuorum`] unless `verified` holds signatures by at
/// least `required` distinct keys (name and id).
///
/// # Errors
/// [`Error::NoteQuorum`] with the count found.
pub fn check_quorum(verified: &[VerifiedSignature], required: usize) -> Result<(), Error> {
    let mut keys: Vec<(&KeyName, u32)> = verified.iter().map(|v| (&v.name, v.id)).collect();
    keys.sort();
    keys.dedup();
    if keys.len() < required {
        return Err(Error::NoteQuorum {
            found: keys.len(),
            required,
        });
    }
    Ok(())
}

/// A note: its text and its signature lines (C2SP signed-note).
///
/// `Display` prints the signed note: the text, a blank line and one line per
/// signature. A note built with [`Note::new`] and not yet signed prints
/// without signature lines, which does not parse as a signed note.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Note {
    text: String,
    signatures: Vec<NoteSignature>,
}

impl Note {
    /// An unsigned note with `text`.
    ///
    /// # Errors
    /// As [`check_text`].
    pub fn new(text: &str) -> Result<Note, Error> {
        check_text(text)?;
        Ok(Note {
            text: text.to_owned(),
            signatures: Vec::new(),
        })
    }

    /// Parses a signed note (signed-note § Format). Signatures are not
    /// verified here; see [`Note::verify`].
    ///
    /// # Errors
    /// As [`Note::from_bytes`].
    pub fn parse(signed: &str) -> Result<Note, Error> {
        Note::from_bytes(signed.as_bytes())
    }

    /// Parses a signed note from untrusted bytes.
    ///
    /// # Errors
    /// [`Error::MalformedNote`] if the input is larger than
    /// [`MAX_NOTE_SIZE`], not UTF-8, contains a control character other than
    /// newline, has no blank line before the signatures, does not end in a
    /// newline, has no signature, more than [`MAX_SIGNATURES`], or a line in
    /// the signature block that is not a signature line;
    /// [`Error::InvalidBase64`] for a signature that is not canonical base64.
    pub fn from_bytes(signed: &[u8]) -> Result<Note, Error> {
        if signed.len() > MAX_NOTE_SIZE {
            return Err(Error::MalformedNote("larger than 1 MiB"));
        }
        let signed =
            std::str::from_utf8(signed).map_err(|_| Error::MalformedNote("not valid UTF-8"))?;
        check_characters(signed)?;
        // The text ends at the last blank line: signature lines never
        // contain one (signed-note § Format).
        let split = signed.rfind("\n\n").ok_or(Error::MalformedNote(
            "no blank line between text and signatures",
        ))?;
        let (text, block) = (&signed[..=split], &signed[split + 2..]);
        let lines = block
            .strip_suffix('\n')
            .ok_or(Error::MalformedNote("does not end in a newline"))?;
        if lines.is_empty() {
            return Err(Error::MalformedNote("no signatures"));
        }
        let mut signatures = Vec::new();
        for line in lines.split('\n') {
            if signatures.len() == MAX_SIGNATURES {
                return Err(Error::MalformedNote("more than 100 signatures"));
            }
            signatures.push(NoteSignature::parse_line(line)?);
        }
        Ok(Note {
            text: text.to_owned(),
            signatures,
        })
    }

    /// The note text, including its final newline.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The signature lines, in order.
    pub fn signatures(&self) -> &[NoteSignature] {
        &self.signatures
    }

    /// Appends `signature` unless one by the same key name and id is already
    /// on the note. Returns whether it was added.
    ///
    /// # Errors
    /// [`Error::MalformedNote`] if the note would have more than
    /// [`MAX_SIGNATURES`] signatures or exceed [`MAX_NOTE_SIZE`].
    pub fn add_signature(&mut self, signature: NoteSignature) -> Result<bool, Error> {
        if self
            .signatures
            .iter()
            .any(|s| s.name == signature.name && s.id == signature.id)
        {
            return Ok(false);
        }
        if self.signatures.len() >= MAX_SIGNATURES {
            return Err(Error::MalformedNote("more than 100 signatures"));
        }
        let line_len = signature.to_string().len() + 1;
        if self.encoded_len() + line_len > MAX_NOTE_SIZE {
            return Err(Error::MalformedNote("larger than 1 MiB"));
        }
        self.signatures.push(signature);
        Ok(true)
    }

    /// Adds every signature of `other` that this note lacks (by key name and
    /// id), keeping the order: ours first, then the new ones. Returns how
    /// many were added.
    ///
    /// # Errors
    /// [`Error::NoteTextMismatch`] if the texts differ (nothing is added);
    /// as [`Note::add_signature`] otherwise.
    pub fn merge(&mut self, other: &Note) -> Result<usize, Error> {
        if self.text != other.text {
            return Err(Error::NoteTextMismatch);
        }
        let mut added = 0;
        for s in &other.signatures {
            if self.add_signature(s.clone())? {
                added += 1;
            }
        }
        Ok(added)
    }

    /// Signs the note with `signer` and adds the signature (replacing
    /// nothing: a signature by the same key already present is kept).
    ///
    /// # Errors
    /// As [`Note::add_signature`].
    pub fn sign(&mut self, signer: &NoteSigner) -> Result<bool, Error> {
        let signature = signer.sign_text(&self.text);
        self.add_signature(signature)
    }

    /// Verifies the signatures by keys in `verifiers` and requires at least
    /// one (signed-note § Signatures). Same as `verify_quorum(verifiers, 1)`.
    ///
    /// # Errors
    /// As [`Note::verify_quorum`].
    pub fn verify(&self, verifiers: &Verifiers) -> Result<Vec<VerifiedSignature>, Error> {
        self.verify_quorum(verifiers, 1)
    }

    /// Verifies every signature whose key name and id match a key in
    /// `verifiers`; signatures by unknown keys are ignored. Returns the
    /// verified signatures, one per key name (the first line of a name that
    /// signs twice, with one key or two), and requires at least `required`
    /// distinct names (FORMAT.md § 16.4).
    ///
    /// # Errors
    /// [`Error::NoteSignatureInvalid`] if any signature by a known key does
    /// not verify (all of them are checked, duplicates included);
    /// [`Error::NoteQuorum`] if fewer than `required` keys signed.
    pub fn verify_quorum(
        &self,
        verifiers: &Verifiers,
        required: usize,
    ) -> Result<Vec<VerifiedSignature>, Error> {
        let mut verified: Vec<VerifiedSignature> = Vec::new();
        for s in &self.signatures {
            let Some(key) = verifiers.find(&s.name, s.id) else {
                continue;
            };
            let timestamp = key.verify(&self.text, &s.signature)?;
            // One signer per name (FORMAT.md § 16.4): a duplicated line, or
            // a witness's old and new key both listed, count once.
            if !verified.iter().any(|v| v.name == s.name) {
                verified.push(VerifiedSignature {
                    name: s.name.clone(),
                    id: s.id,
                    key_type: key.key_type,
                    timestamp,
                });
            }
        }
        check_quorum(&verified, required)?;
        Ok(verified)
    }

    fn encoded_len(&self) -> usize {
        self.text.len()
            + 1
            + self
                .signatures
                .iter()
                .map(|s| s.to_string().len() + 1)
                .sum::<usize>()
    }
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)?;
        f.write_str("\n")?;
        for s in &self.signatures {
            writeln!(f, "{s}")?;
        }
        Ok(())
    }
}

impl FromStr for Note {
    type Err = Error;
    fn from_str(s: &str) -> Result<Note, Error> {
        Note::parse(s)
    }
}

// ---- signers ----------------------------------------------------------------

/// The tlog-cosignature/v1 signed message (§ Ed25519 signed message):
/// `cosignature/v1\ntime <secs>\n` followed by the note text.
pub fn cosignature_message(text: &str, time_secs: u64) -> Vec<u8> {
    let mut msg = Vec::with_capacity(40 + text.len());
    msg.extend_from_slice(COSIGNATURE_HEADER.as_bytes());
    msg.extend_from_slice(format!("time {time_secs}\n").as_bytes());
    msg.extend_from_slice(text.as_bytes());
    msg
}

/// Signs notes with Ed25519, signature type `0x01` (signed-note § Ed25519
/// signatures). A department signs its checkpoints under its origin.
#[derive(Clone, Debug)]
pub struct NoteSigner {
    name: KeyName,
    key: SigningKey,
    id: u32,
}

impl NoteSigner {
    /// A signer for `key` under `name`.
    pub fn new(name: KeyName, key: SigningKey) -> NoteSigner {
        let id = key_id(&name, KeyType::Ed25519, &key.public_key());
        NoteSigner { name, key, id }
    }

    /// The key name.
    pub fn name(&self) -> &KeyName {
        &self.name
    }

    /// The key id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The verifier key to give to verifiers.
    pub fn verifier_key(&self) -> VerifierKey {
        VerifierKey::new(self.name.clone(), KeyType::Ed25519, self.key.public_key())
    }

    /// Signs a note text.
    ///
    /// # Errors
    /// As [`check_text`].
    pub fn sign(&self, text: &str) -> Result<NoteSignature, Error> {
        check_text(text)?;
        Ok(self.sign_text(text))
    }

    fn sign_text(&self, text: &str) -> NoteSignature {
        NoteSignature {
            name: self.name.clone(),
            id: self.id,
            signature: self.key.sign(text.as_bytes()).0.to_vec(),
        }
    }
}

/// Cosigns checkpoints per tlog-cosignature/v1, signature type `0x04`: the
/// signature bytes are the 8-byte big-endian timestamp and the Ed25519
/// signature over [`cosignature_message`].
#[derive(Clone, Debug)]
pub struct Cosigner {
    name: KeyName,
    key: SigningKey,
    id: u32,
}

impl Cosigner {
    /// A cosigner for `key` under `name`. tlog-cosignature requires a
    /// distinct key per cosigner name.
    pub fn new(name: KeyName, key: SigningKey) -> Cosigner {
        let id = key_id(&name, KeyType::CosignatureV1, &key.public_key());
        Cosigner { name, key, id }
    }

    /// The key name.
    pub fn name(&self) -> &KeyName {
        &self.name
    }

    /// The key id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The verifier key (type `0x04`) to give to verifiers.
    pub fn verifier_key(&self) -> VerifierKey {
        VerifierKey::new(
            self.name.clone(),
            KeyType::CosignatureV1,
            self.key.public_key(),
        )
    }

    /// Cosigns a note text at `time_secs` (Unix seconds).
    ///
    /// # Errors
    /// As [`check_text`]; [`Error::MalformedNote`] if `time_secs` exceeds
    /// 2^63 − 1 (tlog-cosignature § Format).
    pub fn cosign(&self, text: &str, time_secs: u64) -> Result<NoteSignature, Error> {
        check_text(text)?;
        if time_secs > i64::MAX as u64 {
            return Err(Error::MalformedNote(
                "cosignature timestamp exceeds 2^63 - 1",
            ));
        }
        let sig = self.key.sign(&cosignature_message(text, time_secs));
        let mut signature = Vec::with_capacity(72);
        signature.extend_from_slice(&time_secs.to_be_bytes());
        signature.extend_from_slice(&sig.0);
        Ok(NoteSignature {
            name: self.name.clone(),
            id: self.id,
            signature,
        })
    }
}

// ---- private keys ------------------------------------------------------

/// The prefix of a private-key string.
const PRIVATE_KEY_PREFIX: &str = "PRIVATE+KEY+";

/// Formats a private key in the text form of Go's
/// `golang.org/x/mod/sumdb/note`:
/// `PRIVATE+KEY+<name>+<8 lowercase hex digits of the key id>+<base64(type byte || 32-byte seed)>`.
///
/// The key id is the one of the matching verifier key ([`key_id`]), so the
/// string names exactly one vkey. For [`KeyType::CosignatureV1`] the type
/// byte is `0x04`; Go's note package only reads `0x01` keys.
///
/// The string is a secret: write it only to a file readable by its owner.
pub fn format_private_key(name: &KeyName, key_type: KeyType, key: &SigningKey) -> String {
    let id = key_id(name, key_type, &key.public_key());
    let mut bytes = Vec::with_capacity(33);
    bytes.push(key_type.byte());
    bytes.extend_from_slice(&key.seed());
    format!(
        "{PRIVATE_KEY_PREFIX}{name}+{id:08x}+{}",
        STANDARD.encode(bytes)
    )
}

/// Parses a private-key string written by [`format_private_key`] (or by Go's
/// `note.GenerateKey`), strictly: the `PRIVATE+KEY+` prefix, a valid
/// [`KeyName`], 8 lowercase hex digits, canonical base64 of a supported
/// type byte and a 32-byte seed, and a key id that matches the key the seed
/// derives. Surrounding whitespace is not accepted; trim a file's final
/// newline before calling.
///
/// # Errors
/// [`Error::MalformedVerifierKey`] naming what is wrong (the message says
/// "private key"; the secret itself is never echoed).
pub fn parse_private_key(text: &str) -> Result<(KeyName, KeyType, SigningKey), Error> {
    let rest = text
        .strip_prefix(PRIVATE_KEY_PREFIX)
        .ok_or(Error::MalformedVerifierKey(
            "private key does not start with PRIVATE+KEY+",
        ))?;
    // The base64 part may itself contain '+', so split only twice.
    let mut parts = rest.splitn(3, '+');
    let (Some(name), Some(hex), Some(b64)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(Error::MalformedVerifierKey(
            "private key: expected PRIVATE+KEY+<name>+<id>+<key>",
        ));
    };
    let name = KeyName::new(name)
        .map_err(|_| Error::MalformedVerifierKey("private key: invalid key name"))?;
    if hex.len() != 8 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(Error::MalformedVerifierKey(
            "private key: key id is not 8 lowercase hex digits",
        ));
    }
    let id = u32::from_str_radix(hex, 16)
        .map_err(|_| Error::MalformedVerifierKey("private key: key id is not hex"))?;
    let bytes = decode_base64("private key", b64)
        .map_err(|_| Error::MalformedVerifierKey("private key: key is not canonical base64"))?;
    let (&type_byte, seed) = bytes
        .split_first()
        .ok_or(Error::MalformedVerifierKey("private key: empty key"))?;
    let key_type = KeyType::from_byte(type_byte).ok_or(Error::MalformedVerifierKey(
        "private key: unsupported signature type",
    ))?;
    let seed: [u8; 32] = seed
        .try_into()
        .map_err(|_| Error::MalformedVerifierKey("private key: seed is not 32 bytes"))?;
    let key = SigningKey::from_seed(seed);
    if key_id(&name, key_type, &key.public_key()) != id {
        return Err(Error::MalformedVerifierKey(
            "private key: key id does not match the key",
        ));
    }
    Ok((name, key_type, key))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> KeyName {
        KeyName::new(s).unwrap()
    }

    fn signer(n: &str, seed: u8) -> NoteSigner {
        NoteSigner::new(name(n), SigningKey::from_seed([seed; 32]))
    }

    fn signed(text: &str, signers: &[&NoteSigner]) -> String {
        let mut note = Note::new(text).unwrap();
        for s in signers {
            note.sign(s).unwrap();
        }
        note.to_string()
    }

    /// A verifier key is never a weak key (FORMAT.md § 5.1): the identity,
    /// another small-order point, or a real key plus a torsion point, in
    /// either key type, is refused when the vkey is parsed.
    #[test]
    fn weak_verifier_keys_are_refused() {
        use curve25519_dalek::constants::EIGHT_TORSION;
        use curve25519_dalek::edwards::CompressedEdwardsY;
        let real = SigningKey::from_seed([3; 32]).public_key();
        let point = CompressedEdwardsY(*real.as_bytes()).decompress().unwrap();
        let weak = [
            EIGHT_TORSION[0].compress().0, // the identity, 0100…00
            EIGHT_TORSION[3].compress().0,
            (point + EIGHT_TORSION[1]).compress().0,
        ];
        for key_type in [KeyType::Ed25519, KeyType::CosignatureV1] {
            let good = VerifierKey::new(name("example.com/log"), key_type, real);
            assert_eq!(VerifierKey::parse(&good.to_string()).unwrap(), good);
            for w in weak {
                let vkey =
                    VerifierKey::new(name("example.com/log"), key_type, PublicKey::from_bytes(w));
                assert!(
                    matches!(
                        VerifierKey::parse(&vkey.to_string()),
                        Err(Error::MalformedVerifierKey(m)) if m.contains("strong")
                    ),
                    "{vkey}"
                );
            }
        }
    }

    #[test]
    fn sign_parse_round_trip() {
        let a = signer("a.example/log", 1);
        let b = signer("b.example/log", 2);
        let text = signed("hello\n\nworld\n", &[&a, &b]);
        let note = Note::parse(&text).unwrap();
        assert_eq!(note.text(), "hello\n\nworld\n");
        assert_eq!(note.signatures().len(), 2);
        assert_eq!(note.to_string(), text);
        let v = note
            .verify(&Verifiers::new([a.verifier_key(), b.verifier_key()]).unwrap())
            .unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].name, *a.name());
        assert_eq!(v[0].timestamp, None);
    }

    #[test]
    fn vkey_round_trip() {
        let s = signer("a.example/log", 1);
        let vkey = s.verifier_key();
        let text = vkey.to_string();
        assert!(text.starts_with(&format!("a.example/log+{:08x}+A", s.id())));
        assert_eq!(VerifierKey::parse(&text).unwrap(), vkey);
        let c = Cosigner::new(name("w.example"), SigningKey::from_seed([1; 32]));
        let ctext = c.verifier_key().to_string();
        assert!(ctext.contains("+B"), "{ctext}");
        assert_eq!(
            VerifierKey::parse(&ctext).unwrap().key_type(),
            KeyType::CosignatureV1
        );
        assert_ne!(
            c.id(),
            key_id(&name("w.example"), KeyType::Ed25519, &c.key.public_key())
        );
    }

    #[test]
    fn malformed_vkeys() {
        let good = signer("a", 1).verifier_key().to_string();
        let (n, rest) = good.split_once('+').unwrap();
        let (hex, b64) = rest.split_once('+').unwrap();
        for bad in [
            String::new(),
            n.to_string(),
            format!("{n}+{hex}"),
            format!("a b+{hex}+{b64}"),
            format!(
                "{n}+{}+{b64}",
                hex.to_uppercase()
                    .replace(|c: char| c.is_ascii_digit(), "A")
            ),
            format!("{n}+{}+{b64}", &hex[..7]),
            format!("{n}+00000000+{b64}"),
            format!("{n}+{hex}+{}", &b64[..b64.len() - 1]),
            format!("{n}+{hex}+{}", STANDARD.encode([2u8; 33])),
            format!("{n}+{hex}+{}", STANDARD.encode([1u8; 32])),
            format!("b+{hex}+{b64}"),
        ] {
            assert!(VerifierKey::parse(&bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn unknown_ignored_known_bad_rejected() {
        let a = signer("a", 1);
        let b = signer("b", 2);
        let text = signed("t\n", &[&a, &b]);
        let note = Note::parse(&text).unwrap();
        // Only a is known: b is ignored.
        let only_a = Verifiers::from(a.verifier_key());
        assert_eq!(note.verify(&only_a).unwrap().len(), 1);
        // Same name, other key (other id): ignored, so no trusted signature.
        let other = signer("a", 3).verifier_key();
        assert_eq!(
            note.verify(&Verifiers::from(other)),
            Err(Error::NoteQuorum {
                found: 0,
                required: 1
            })
        );
        // A known key whose signature is corrupted: the note is rejected.
        let mut bad = note.clone();
        bad.signatures[0].signature[10] ^= 1;
        assert_eq!(
            bad.verify(&only_a),
            Err(Error::NoteSignatureInvalid {
                name: "a".into(),
                id: a.id()
            })
        );
        // Corrupting b's line does not matter when b is unknown.
        let mut bad_b = note.clone();
        bad_b.signatures[1].signature[10] ^= 1;
        assert!(bad_b.verify(&only_a).is_ok());
    }

    #[test]
    fn quorum() {
        let s: Vec<NoteSigner> = (1..=4).map(|i| signer(&format!("w{i}"), i)).collect();
        let text = signed("t\n", &[&s[0], &s[1], &s[2]]);
        let note = Note::parse(&text).unwrap();
        let all = Verifiers::new(s.iter().map(NoteSigner::verifier_key)).unwrap();
        assert_eq!(note.verify_quorum(&all, 3).unwrap().len(), 3);
        assert_eq!(
            note.verify_quorum(&all, 4),
            Err(Error::NoteQuorum {
                found: 3,
                required: 4
            })
        );
        assert!(
            note.verify_quorum(&Verifiers::default(), 0)
                .unwrap()
                .is_empty()
        );
        // A duplicated line counts once.
        let dup = format!("{text}{}\n", note.signatures()[0]);
        let note = Note::parse(&dup).unwrap();
        assert_eq!(note.to_string(), dup);
        assert_eq!(
            note.verify_quorum(&all, 4),
            Err(Error::NoteQuorum {
                found: 3,
                required: 4
            })
        );
        // Two trusted keys under one name (a witness's old and new key)
        // are one witness: both cosignatures count once.
        let rotated = signer("w1", 9);
        let both = signed("t\n", &[&s[0], &rotated, &s[1]]);
        let keys = Verifiers::new([
            s[0].verifier_key(),
            rotated.verifier_key(),
            s[1].verifier_key(),
        ])
        .unwrap();
        let note = Note::parse(&both).unwrap();
        assert_eq!(note.verify_quorum(&keys, 2).unwrap().len(), 2);
        assert_eq!(
            note.verify_quorum(&keys, 3),
            Err(Error::NoteQuorum {
                found: 2,
                required: 3
            })
        );
    }

    #[test]
    fn ambiguous_verifiers_rejected() {
        let a = signer("a", 1).verifier_key();
        assert_eq!(Verifiers::new([a.clone(), a.clone()]).unwrap().len(), 1);
        let mut b = signer("a", 2).verifier_key();
        b.id = a.id;
        assert!(Verifiers::new([a, b]).is_err());
    }

    #[test]
    fn cosignature_round_trip_and_separation() {
        let key = SigningKey::from_seed([7; 32]);
        let c = Cosigner::new(name("witness.example"), key.clone());
        let mut note = Note::new("origin\n1\nroot\n").unwrap();
        note.add_signature(c.cosign(note.text(), 1_700_000_000).unwrap())
            .unwrap();
        let note = Note::parse(&note.to_string()).unwrap();
        let v = note.verify(&c.verifier_key().into()).unwrap();
        assert_eq!(v[0].timestamp, Some(1_700_000_000));
        assert_eq!(v[0].key_type, KeyType::CosignatureV1);
        assert_eq!(note.signatures()[0].signature().len(), 72);
        // The same key and name as a plain Ed25519 verifier: different id,
        // so the cosignature is ignored.
        let plain = NoteSigner::new(name("witness.example"), key);
        assert!(matches!(
            note.verify(&plain.verifier_key().into()),
            Err(Error::NoteQuorum { found: 0, .. })
        ));
        // And a plain signature does not verify as a cosignature.
        let mut n2 = Note::new("origin\n1\nroot\n").unwrap();
        n2.sign(&plain).unwrap();
        assert!(n2.verify(&c.verifier_key().into()).is_err());
        // Forging the 0x04 id onto a plain signature fails verification.
        let forged = NoteSignature::new(
            c.name().clone(),
            c.id(),
            n2.signatures()[0].signature().to_vec(),
        )
        .unwrap();
        let mut n3 = Note::new("origin\n1\nroot\n").unwrap();
        n3.add_signature(forged).unwrap();
        assert!(matches!(
            n3.verify(&c.verifier_key().into()),
            Err(Error::NoteSignatureInvalid { .. })
        ));
        // Changing the timestamp breaks the cosignature.
        let mut n4 = note.clone();
        n4.signatures[0].signature[7] ^= 1;
        assert!(matches!(
            n4.verify(&c.verifier_key().into()),
            Err(Error::NoteSignatureInvalid { .. })
        ));
        assert!(c.cosign("x\n", u64::MAX).is_err());
    }

    #[test]
    fn merge_dedupes() {
        let a = signer("a", 1);
        let b = signer("b", 2);
        let mut n1 = Note::parse(&signed("t\n", &[&a])).unwrap();
        let n2 = Note::parse(&signed("t\n", &[&b, &a])).unwrap();
        assert_eq!(n1.merge(&n2).unwrap(), 1);
        assert_eq!(n1.signatures().len(), 2);
        assert_eq!(n1.text(), "t\n");
        let other = Note::parse(&signed("u\n", &[&b])).unwrap();
        assert_eq!(n1.merge(&other), Err(Error::NoteTextMismatch));
    }

    #[test]
    fn malformed_notes() {
        let a = signer("a", 1);
        let good = signed("text\n", &[&a]);
        let line = good.strip_prefix("text\n\n").unwrap().trim_end();
        let b64 = line.rsplit_once(' ').unwrap().1;
        let raw = STANDARD.decode(b64).unwrap();
        let cases: Vec<(String, &str)> = vec![
            (String::new(), "empty"),
            ("\n".into(), "only newline"),
            (format!("text\n{line}\n"), "missing blank line"),
            (good.replace('\n', "\r\n"), "CRLF"),
            (good.trim_end().to_string(), "no final newline"),
            ("text\n\n".into(), "no signatures"),
            (
                format!("text\n\n{}\n", line.replace('\u{2014}', "-")),
                "no em dash",
            ),
            (
                format!("text\n\n{}\n", line.replace("\u{2014} ", "\u{2014}")),
                "no space",
            ),
            (format!("text\n\n{line}\ntrailing\n"), "trailing text"),
            (format!("text\n\n{line}\n\n"), "trailing blank line"),
            (format!("text\n\n{line} \n"), "trailing space"),
            (
                format!("text\n\n\u{2014} a {}\n", &b64[..b64.len() - 1]),
                "bad padding",
            ),
            (
                format!("text\n\n\u{2014} a {}\n", b64.trim_end_matches('=')),
                "no padding",
            ),
            (
                format!(
                    "text\n\n\u{2014} a {}\n",
                    b64.replace('+', "-").replace('/', "_") + "!"
                ),
                "bad alphabet",
            ),
            (
                format!("text\n\n\u{2014} a {}\n", STANDARD.encode(&raw[..4])),
                "only key id",
            ),
            (
                format!("text\n\n\u{2014} a {}\n", STANDARD.encode(&raw[..3])),
                "short key id",
            ),
            (format!("text\n\n\u{2014} a b {b64}\n"), "name with space"),
            (format!("text\n\n\u{2014} a+b {b64}\n"), "name with plus"),
            (format!("text\n\n\u{2014}  {b64}\n"), "empty name"),
            ("text\n\n\u{2014} a \n".into(), "empty signature"),
            (format!("te\0xt\n\n{line}\n"), "NUL"),
            (format!("te\txt\n\n{line}\n"), "tab"),
        ];
        for (bad, why) in cases {
            assert!(Note::parse(&bad).is_err(), "{why}: {bad:?} accepted");
        }
        // Non-canonical trailing bits: the last base64 digit carries unused
        // bits; flipping one keeps the length and breaks canonicality.
        let mut chars: Vec<char> = b64.chars().collect();
        let last = chars.iter().rposition(|&c| c != '=').unwrap();
        let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let pos = alphabet.find(chars[last]).unwrap();
        chars[last] = alphabet.as_bytes()[pos ^ 1] as char;
        let noncanon: String = chars.into_iter().collect();
        assert!(Note::parse(&format!("text\n\n\u{2014} a {noncanon}\n")).is_err());
        // Non-UTF-8.
        let mut bytes = good.clone().into_bytes();
        bytes[1] = 0xff;
        assert_eq!(
            Note::from_bytes(&bytes),
            Err(Error::MalformedNote("not valid UTF-8"))
        );
    }

    #[test]
    fn limits() {
        let a = signer("a", 1);
        let mut note = Note::new("t\n").unwrap();
        note.sign(&a).unwrap();
        let line = note.signatures()[0].to_string();
        let many = |n: usize| format!("t\n\n{}", format!("{line}\n").repeat(n));
        assert!(Note::parse(&many(MAX_SIGNATURES)).is_ok());
        assert_eq!(
            Note::parse(&many(MAX_SIGNATURES + 1)),
            Err(Error::MalformedNote("more than 100 signatures"))
        );
        let big = format!("{}\n\n{line}\n", "x".repeat(MAX_NOTE_SIZE));
        assert_eq!(
            Note::parse(&big),
            Err(Error::MalformedNote("larger than 1 MiB"))
        );
        assert!(Note::new(&format!("{}\n", "x".repeat(MAX_NOTE_SIZE))).is_err());
        // add_signature enforces the count limit.
        let mut n = Note::new("t\n").unwrap();
        for i in 0..MAX_SIGNATURES {
            let sig = NoteSignature::new(name(&format!("k{i}")), 0, vec![1]).unwrap();
            assert!(n.add_signature(sig).unwrap());
        }
        let sig = NoteSignature::new(name("extra"), 0, vec![1]).unwrap();
        assert!(n.add_signature(sig).is_err());
    }

    #[test]
    fn event_signature_message_is_never_a_note() {
        let mut msg = b"gongkai/event/v1\0".to_vec();
        msg.extend_from_slice(b"body\n");
        let a = signer("a", 1);
        let text = String::from_utf8(msg).unwrap();
        assert!(Note::new(&text).is_err());
        assert!(a.sign(&text).is_err());
        let forged = format!("{text}\n{}\n", a.sign_text(&text));
        assert!(Note::parse(&forged).is_err());
    }

    mod prop {
        use proptest::prelude::*;

        use super::super::*;

        fn seed_note() -> String {
            let s = NoteSigner::new(KeyName::new("a").unwrap(), SigningKey::from_seed([1; 32]));
            let mut n = Note::new("origin\n1\nroot\n").unwrap();
            n.sign(&s).unwrap();
            n.to_string()
        }

        proptest! {
            // Untrusted bytes never panic the parser, and whatever parses
            // prints back to exactly the input.
            #[test]
            fn arbitrary_bytes_parse_or_fail_cleanly(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
                if let Ok(n) = Note::from_bytes(&bytes) {
                    prop_assert_eq!(n.to_string().into_bytes(), bytes);
                }
            }

            #[test]
            fn mutated_notes_round_trip_or_fail(pos in 0usize..200, byte in any::<u8>()) {
                let mut bytes = seed_note().into_bytes();
                let pos = pos % bytes.len();
                bytes[pos] = byte;
                if let Ok(n) = Note::from_bytes(&bytes) {
                    prop_assert_eq!(n.to_string().into_bytes(), bytes);
                }
            }
        }
    }

    // ---- private keys --------------------------------------------------

    fn go_vector(file: &str) -> String {
        let path = format!(
            "{}/tests/vectors/go-note/{file}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(path)
            .unwrap()
            .trim_end_matches('\n')
            .to_owned()
    }

    #[test]
    fn go_private_key_vector_derives_the_go_vkey() {
        let skey = go_vector("peter.skey");
        let (n, key_type, key) = parse_private_key(&skey).unwrap();
        assert_eq!(n.as_str(), "PeterNeumann");
        assert_eq!(key_type, KeyType::Ed25519);
        let vkey = VerifierKey::new(n.clone(), key_type, key.public_key());
        assert_eq!(vkey.to_string(), go_vector("peter.vkey"));
        // And formatting gives Go's string back, byte for byte.
        assert_eq!(format_private_key(&n, key_type, &key), skey);
    }

    #[test]
    fn private_key_round_trip_both_types() {
        for key_type in [KeyType::Ed25519, KeyType::CosignatureV1] {
            let key = SigningKey::from_seed([7; 32]);
            let n = name("gongkai.example/510122/finance");
            let text = format_private_key(&n, key_type, &key);
            assert!(text.starts_with("PRIVATE+KEY+gongkai.example/510122/finance+"));
            let (n2, t2, k2) = parse_private_key(&text).unwrap();
            assert_eq!((n2, t2, k2.seed()), (n.clone(), key_type, key.seed()));
        }
        // The id differs between the two types for the same seed and name.
        let key = SigningKey::from_seed([7; 32]);
        let n = name("w");
        assert_ne!(
            format_private_key(&n, KeyType::Ed25519, &key)[..22],
            format_private_key(&n, KeyType::CosignatureV1, &key)[..22]
        );
    }

    #[test]
    fn private_key_manglings_are_rejected() {
        let skey = go_vector("peter.skey");
        let bad = [
            String::new(),
            skey.replacen("PRIVATE+KEY+", "PRIVATE+KEY", 1),
            skey.replacen("PRIVATE", "private", 1),
            skey.replacen("c74f20a3", "c74f20a4", 1),
            skey.replacen("c74f20a3", "C74F20A3", 1),
            skey.replacen("c74f20a3", "c74f20a", 1),
            skey.replacen("PeterNeumann", "PeterNeumanm", 1),
            skey.replacen("PeterNeumann", "", 1),
            format!("{skey}\n"),
            format!(" {skey}"),
            skey[..skey.len() - 4].to_owned(),
            // A vkey is not a private key.
            go_vector("peter.vkey"),
            // Type byte 0x02 (unsupported), seed otherwise the same.
            skey.replacen("+AYEK", "+AoEK", 1),
        ];
        for text in &bad {
            assert!(parse_private_key(text).is_err(), "accepted {text:?}");
        }
    }
}
