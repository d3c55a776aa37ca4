//! BLAKE3 hashes of the log (FORMAT.md § Hashes).
//!
//! Every hash in gongkai is a 32-byte BLAKE3 output. Domain separation is by
//! a one-byte prefix, as in RFC 9162 §2.1.1:
//!
//! | prefix | input                 | name          |
//! |--------|-----------------------|---------------|
//! | `0x00` | entry bytes           | leaf hash     |
//! | `0x01` | left hash, right hash | node hash     |
//! | `0x02` | event body bytes      | body hash     |
//!
//! The root of the empty tree is `BLAKE3("")`.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::Error;

/// A 32-byte BLAKE3 hash.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    /// The all-zero hash (the `prev_hash` of index 0).
    pub const ZERO: Hash = Hash([0; 32]);

    /// Parses exactly 32 bytes.
    ///
    /// # Errors
    /// [`Error::InvalidLength`] if `bytes` is not 32 bytes long.
    pub fn from_slice(bytes: &[u8]) -> Result<Hash, Error> {
        let array: [u8; 32] = bytes.try_into().map_err(|_| Error::InvalidLength {
            what: "hash",
            expected: 32,
            found: bytes.len(),
        })?;
        Ok(Hash(array))
    }

    /// Parses 64 lowercase or uppercase hex digits.
    ///
    /// # Errors
    /// [`Error::InvalidHex`] on anything else.
    pub fn from_hex(text: &str) -> Result<Hash, Error> {
        let bytes = text.as_bytes();
        if bytes.len() != 64 {
            return Err(Error::InvalidHex { what: "hash" });
        }
        let mut out = [0u8; 32];
        for (i, pair) in bytes.chunks_exact(2).enumerate() {
            let hi = hex_digit(pair[0]).ok_or(Error::InvalidHex { what: "hash" })?;
            let lo = hex_digit(pair[1]).ok_or(Error::InvalidHex { what: "hash" })?;
            out[i] = (hi << 4) | lo;
        }
        Ok(Hash(out))
    }

    /// Lowercase hex.
    pub fn to_hex(&self) -> String {
        let mut s = String::with_capacity(64);
        for b in self.0 {
            s.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
            s.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
        }
        s
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", self.to_hex())
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl AsRef<[u8]> for Hash {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Serialize for Hash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Hash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Hash, D::Error> {
        let text = String::deserialize(d)?;
        Hash::from_hex(&text).map_err(serde::de::Error::custom)
    }
}

/// Root hash of the empty tree: `BLAKE3("")` (FORMAT.md § Merkle tree).
pub fn empty_root() -> Hash {
    Hash(*blake3::hash(b"").as_bytes())
}

/// RFC 9162 §2.1.1 leaf hash: `BLAKE3(0x00 || entry)`.
pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut h = blake3::Hasher::new();
    h.update(&[0x00]);
    h.update(entry);
    Hash(*h.finalize().as_bytes())
}

/// RFC 9162 §2.1.1 interior node hash: `BLAKE3(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut buf = [0u8; 65];
    buf[0] = 0x01;
    buf[1..33].copy_from_slice(&left.0);
    buf[33..].copy_from_slice(&right.0);
    Hash(*blake3::hash(&buf).as_bytes())
}

/// Body hash, the link of the hash chain: `BLAKE3(0x02 || body)`.
/// `entry[i].prev_hash == body_hash(body of entry i-1)`.
pub fn body_hash(body: &[u8]) -> Hash {
    let mut h = blake3::Hasher::new();
    h.update(&[0x02]);
    h.update(body);
    Hash(*h.finalize().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_root_is_blake3_of_nothing() {
        assert_eq!(
            empty_root().to_hex(),
            "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
        );
    }

    #[test]
    fn prefixes_separate_domains() {
        let x = [7u8; 64];
        let l = leaf_hash(&x);
        let n = node_hash(
            &Hash(x[..32].try_into().unwrap()),
            &Hash(x[32..].try_into().unwrap()),
        );
        let b = body_hash(&x);
        assert_ne!(l, n);
        assert_ne!(l, b);
        assert_ne!(n, b);
        let mut manual = vec![0x00];
        manual.extend_from_slice(&x);
        assert_eq!(l.0, *blake3::hash(&manual).as_bytes());
        manual[0] = 0x01;
        assert_eq!(n.0, *blake3::hash(&manual).as_bytes());
        manual[0] = 0x02;
        assert_eq!(b.0, *blake3::hash(&manual).as_bytes());
    }

    #[test]
    fn hex_round_trip_and_rejects() {
        let h = leaf_hash(b"x");
        assert_eq!(Hash::from_hex(&h.to_hex()).unwrap(), h);
        assert_eq!(Hash::from_hex(&h.to_hex().to_uppercase()).unwrap(), h);
        assert!(Hash::from_hex("00").is_err());
        assert!(Hash::from_hex(&"g".repeat(64)).is_err());
        assert!(Hash::from_slice(&[0; 31]).is_err());
    }
}
