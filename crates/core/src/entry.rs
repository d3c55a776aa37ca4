//! Log entries: framed canonical body plus Ed25519 signature
//! (FORMAT.md § Entries).
//!
//! ```text
//! entry = 0x01 || u16be(len(body)) || body || signature (64 bytes)
//! signature = Ed25519(department key, "gongkai/event/v1" || 0x00 || body)
//! ```
//!
//! An entry is at most 65,535 bytes so that it fits a tile entry bundle.
//! Entries are hashed and verified *verbatim*: the leaf hash is over the
//! exact bytes, never a re-serialization.

use prost::Message as _;

use crate::event::{Event, pb};
use crate::hash::{body_hash, leaf_hash};
use crate::keys::{PublicKey, Signature, SigningKey};
use crate::{Error, Hash};

/// The entry format version byte.
pub const ENTRY_VERSION: u8 = 0x01;
/// Largest entry, in bytes (fits the u16 length prefix of an entry bundle).
pub const MAX_ENTRY_LEN: usize = 65_535;
/// Bytes of framing around the body: version, length, signature.
pub const ENTRY_OVERHEAD: usize = 1 + 2 + 64;
/// Largest body, in bytes.
pub const MAX_BODY_LEN: usize = MAX_ENTRY_LEN - ENTRY_OVERHEAD;
/// Domain-separation prefix of event signatures: `"gongkai/event/v1" || 0x00`.
/// A signed note never contains NUL, so an event signature can never be
/// replayed as a checkpoint signature.
pub const EVENT_SIGNATURE_CONTEXT: &[u8] = b"gongkai/event/v1\0";

/// The message an event signature covers: the context prefix, then the body.
pub fn signed_message(body: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(EVENT_SIGNATURE_CONTEXT.len() + body.len());
    m.extend_from_slice(EVENT_SIGNATURE_CONTEXT);
    m.extend_from_slice(body);
    m
}

/// The body of entry bytes whose framing was checked.
pub(crate) fn body_of(entry: &[u8]) -> &[u8] {
    &entry[3..entry.len() - 64]
}

/// The signature of entry bytes whose framing was checked.
pub(crate) fn signature_of(entry: &[u8]) -> Signature {
    let mut s = [0u8; 64];
    s.copy_from_slice(&entry[entry.len() - 64..]);
    Signature(s)
}

/// A framed entry, kept as the exact bytes it was received or written as.
#[derive(Clone, PartialEq, Eq)]
pub struct Entry {
    bytes: Vec<u8>,
}

impl Entry {
    /// Checks the framing of `bytes` (version, length, size limit) and keeps
    /// them verbatim. The body and signature are checked by
    /// [`Entry::decode_event`] and the chain verifier.
    ///
    /// # Errors
    /// [`Error::MalformedEntry`] naming `index` (the position the caller
    /// read it from) and what is wrong.
    pub fn parse(bytes: Vec<u8>, index: u64) -> Result<Entry, Error> {
        Entry::check_framing(&bytes, index)?;
        Ok(Entry { bytes })
    }

    /// The checks of [`Entry::parse`], on borrowed bytes.
    ///
    /// # Errors
    /// As [`Entry::parse`].
    pub(crate) fn check_framing(bytes: &[u8], index: u64) -> Result<(), Error> {
        let fail = |reason: String| Error::MalformedEntry { index, reason };
        if bytes.len() > MAX_ENTRY_LEN {
            return Err(fail(format!(
                "{} bytes, more than {MAX_ENTRY_LEN}",
                bytes.len()
            )));
        }
        if bytes.len() < ENTRY_OVERHEAD {
            return Err(fail(format!(
                "{} bytes, shorter than the framing",
                bytes.len()
            )));
        }
        if bytes[0] != ENTRY_VERSION {
            return Err(fail(format!(
                "version byte {:#04x}, expected 0x01",
                bytes[0]
            )));
        }
        let len = usize::from(u16::from_be_bytes([bytes[1], bytes[2]]));
        if len + ENTRY_OVERHEAD != bytes.len() {
            return Err(fail(format!(
                "body length field says {len}, but the entry holds {} body bytes",
                bytes.len() - ENTRY_OVERHEAD
            )));
        }
        Ok(())
    }

    /// Encodes `event`, frames it and signs it with `key`.
    ///
    /// # Errors
    /// [`Error::MalformedEntry`] if the body exceeds [`MAX_BODY_LEN`].
    pub fn sign(event: &pb::EventBody, key: &SigningKey) -> Result<Entry, Error> {
        let body = event.encode_to_vec();
        Entry::sign_body(&body, key, event.index)
    }

    /// Frames already-encoded canonical `body` and signs it with `key`.
    ///
    /// # Errors
    /// [`Error::MalformedEntry`] if the body exceeds [`MAX_BODY_LEN`].
    pub fn sign_body(body: &[u8], key: &SigningKey, index: u64) -> Result<Entry, Error> {
        Entry::check_body_len(body, index)?;
        let signature = key.sign(&signed_message(body));
        let mut bytes = Vec::with_capacity(body.len() + ENTRY_OVERHEAD);
        bytes.push(ENTRY_VERSION);
        // The length fits: body.len() <= MAX_BODY_LEN < 65_536.
        bytes.extend_from_slice(&(body.len() as u16).to_be_bytes());
        bytes.extend_from_slice(body);
        bytes.extend_from_slice(&signature.0);
        Ok(Entry { bytes })
    }

    /// Checks that `body` fits an entry: the one reason
    /// [`Entry::sign_body`] refuses a body, for callers that sign later.
    ///
    /// # Errors
    /// [`Error::MalformedEntry`] if the body exceeds [`MAX_BODY_LEN`].
    pub fn check_body_len(body: &[u8], index: u64) -> Result<(), Error> {
        if body.len() > MAX_BODY_LEN {
            return Err(Error::MalformedEntry {
                index,
                reason: format!("body of {} bytes exceeds {MAX_BODY_LEN}", body.len()),
            });
        }
        Ok(())
    }

    /// The verbatim entry bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The entry bytes, by value.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// The body bytes.
    pub fn body(&self) -> &[u8] {
        body_of(&self.bytes)
    }

    /// The signature.
    pub fn signature(&self) -> Signature {
        signature_of(&self.bytes)
    }

    /// RFC 9162 leaf hash of the verbatim entry bytes.
    pub fn leaf_hash(&self) -> Hash {
        leaf_hash(&self.bytes)
    }

    /// The chain link this entry's successor must carry as `prev_hash`.
    pub fn body_hash(&self) -> Hash {
        body_hash(self.body())
    }

    /// Decodes and field-checks the body (canonical rule included).
    ///
    /// # Errors
    /// As [`Event::decode`].
    pub fn decode_event(&self, index: u64) -> Result<Event, Error> {
        Event::decode(self.body(), index)
    }

    /// Verifies the signature under `key` (ZIP-215), single.
    ///
    /// # Errors
    /// [`Error::BadSignature`] naming `index` and the key.
    pub fn verify_signature(&self, key: &PublicKey, index: u64) -> Result<(), Error> {
        key.verify(&signed_message(self.body()), &self.signature())
            .map_err(|()| Error::BadSignature {
                index,
                key: key.to_hex(),
            })
    }
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Entry({} bytes, leaf {})",
            self.bytes.len(),
            self.leaf_hash()
        )
    }
}

/// The key-rotation proof-of-possession message:
/// `"gongkai/key-rotation/v1" || 0x00 || origin || 0x00 || u64be(index) || next_key`.
pub fn rotation_message(origin: &str, index: u64, next_key: &PublicKey) -> Vec<u8> {
    let mut m = Vec::with_capacity(24 + origin.len() + 1 + 8 + 32);
    m.extend_from_slice(b"gongkai/key-rotation/v1\0");
    m.extend_from_slice(origin.as_bytes());
    m.push(0);
    m.extend_from_slice(&index.to_be_bytes());
    m.extend_from_slice(next_key.as_bytes());
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Kind;

    fn event() -> pb::EventBody {
        pb::EventBody {
            origin: "gongkai.example/510122/finance".into(),
            index: 0,
            prev_hash: vec![0; 32],
            time_ms: 1_767_283_200_000,
            signer: SigningKey::from_seed([5; 32])
                .public_key()
                .as_bytes()
                .to_vec(),
            kind: Some(Kind::Genesis(pb::Genesis {
                department: "财政局".into(),
                division_code: "510122".into(),
            })),
        }
    }

    #[test]
    fn frame_sign_parse() {
        let key = SigningKey::from_seed([5; 32]);
        let e = Entry::sign(&event(), &key).unwrap();
        let b = e.as_bytes();
        assert_eq!(b[0], 1);
        assert_eq!(usize::from(u16::from_be_bytes([b[1], b[2]])), b.len() - 67);
        let parsed = Entry::parse(b.to_vec(), 0).unwrap();
        assert_eq!(parsed, e);
        assert!(parsed.verify_signature(&key.public_key(), 0).is_ok());
        assert!(parsed.decode_event(0).is_ok());
        // The signature covers the context prefix.
        let sig = key.sign(&[EVENT_SIGNATURE_CONTEXT, e.body()].concat());
        assert_eq!(sig, e.signature());
    }

    #[test]
    fn framing_errors() {
        let key = SigningKey::from_seed([5; 32]);
        let good = Entry::sign(&event(), &key).unwrap().into_bytes();
        let mut v = good.clone();
        v[0] = 2;
        assert!(Entry::parse(v, 3).is_err());
        let mut v = good.clone();
        v.pop();
        assert!(matches!(
            Entry::parse(v, 3),
            Err(Error::MalformedEntry { index: 3, .. })
        ));
        let mut v = good.clone();
        v.push(0);
        assert!(Entry::parse(v, 3).is_err());
        assert!(Entry::parse(vec![1, 0, 0], 3).is_err());
        assert!(Entry::parse(vec![0; MAX_ENTRY_LEN + 1], 3).is_err());
    }

    #[test]
    fn size_limit() {
        let key = SigningKey::from_seed([5; 32]);
        let mut e = event();
        if let Some(Kind::Genesis(g)) = &mut e.kind {
            g.department = "x".repeat(MAX_BODY_LEN);
        }
        assert!(Entry::sign(&e, &key).is_err());
        let body = vec![0u8; MAX_BODY_LEN];
        let max = Entry::sign_body(&body, &key, 0).unwrap();
        assert_eq!(max.as_bytes().len(), MAX_ENTRY_LEN);
        assert!(Entry::parse(max.into_bytes(), 0).is_ok());
    }
}
