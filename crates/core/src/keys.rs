//! Ed25519 keys and the signature validity rule (FORMAT.md § Signatures).
//!
//! **Validity is ZIP-215**: canonical `S`, cofactored verification equation,
//! non-canonical point encodings of `A` and `R` accepted. Single and batch
//! verification (both by `ed25519-zebra`) give the same verdict under this
//! rule, so a hostile signer cannot craft a signature that one verifier
//! accepts and another rejects. Signing uses `ed25519-dalek` (RFC 8032,
//! deterministic).
//!
//! Keys are stricter than signatures: a log key (the genesis signer, every
//! `key_rotated.next_key`) and every verifier key must be *strong*
//! ([`PublicKey::check_strong`]): the canonical encoding of a point of the
//! prime-order subgroup other than the identity. A small-order key lets
//! anyone sign; a key with a small-order (torsion) component gives
//! signatures that verify under ZIP-215's cofactored equation but, for most
//! messages, not under the cofactorless equation of strict RFC 8032
//! verifiers such as Go's `crypto/ed25519`. With strong keys, canonical `R`
//! ([`Signature::has_canonical_r`], required at ingestion by nodes and the
//! aggregator) and RFC 8032 signing, every stored signature verifies under
//! both rules.

use std::fmt;

use curve25519_dalek::edwards::CompressedEdwardsY;
use ed25519_dalek::Signer as _;
use rand_core::CryptoRng;
use serde::{Deserialize, Serialize};

use crate::Error;

/// A 32-byte Ed25519 public key, as it appears in event bodies.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey([u8; 32]);

/// A 64-byte Ed25519 signature (`R || S`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature(pub [u8; 64]);

/// A department's (or witness's) private key. Never leaves the process that
/// loaded it; zeroized on drop by `ed25519-dalek`.
#[derive(Clone)]
pub struct SigningKey(ed25519_dalek::SigningKey);

impl PublicKey {
    /// Takes 32 bytes as a key. Any 32 bytes are accepted here; whether
    /// they decode to a curve point is decided when a signature is checked.
    pub fn from_bytes(bytes: [u8; 32]) -> PublicKey {
        PublicKey(bytes)
    }

    /// Parses exactly 32 bytes.
    ///
    /// # Errors
    /// [`Error::InvalidPublicKey`] on the wrong length.
    pub fn from_slice(bytes: &[u8]) -> Result<PublicKey, Error> {
        let array: [u8; 32] = bytes.try_into().map_err(|_| Error::InvalidPublicKey {
            reason: "not 32 bytes",
        })?;
        Ok(PublicKey(array))
    }

    /// The raw key bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lowercase hex of the key.
    pub fn to_hex(&self) -> String {
        crate::Hash(self.0).to_hex()
    }

    /// Verifies `signature` over `message` under the ZIP-215 rule.
    ///
    /// # Errors
    /// Returns `Err(())` on any failure (undecodable key, non-canonical `S`,
    /// equation does not hold); callers attach their own context.
    #[allow(clippy::result_unit_err)]
    pub fn verify(&self, message: &[u8], signature: &Signature) -> Result<(), ()> {
        let vk = ed25519_zebra::VerificationKey::try_from(self.0).map_err(|_| ())?;
        let sig = ed25519_zebra::Signature::from_bytes(&signature.0);
        vk.verify(&sig, message).map_err(|_| ())
    }

    /// Whether the key may be a log key or a verifier key (FORMAT.md
    /// § 5.1): the canonical encoding of a point of the prime-order
    /// subgroup other than the identity. Every key `SigningKey` makes is.
    ///
    /// # Errors
    /// Why not, in words: not a canonical encoding of a curve point, a point
    /// of small order, or a point with a small-order (torsion) component.
    pub fn check_strong(&self) -> Result<(), &'static str> {
        let point = CompressedEdwardsY(self.0)
            .decompress()
            .filter(|p| p.compress().0 == self.0)
            .ok_or("not the canonical encoding of a curve point")?;
        if point.is_small_order() {
            return Err("a point of small order, under which anyone can sign");
        }
        if !point.is_torsion_free() {
            return Err(
                "a point with a small-order (torsion) component: its signatures \
                 verify under ZIP-215 but not under strict RFC 8032 verifiers",
            );
        }
        Ok(())
    }

    /// True if [`PublicKey::check_strong`] accepts the key (what the field
    /// rules require of the genesis signer and rotated-to keys, and what
    /// nodes and the aggregator require at ingestion).
    pub fn is_canonical(&self) -> bool {
        self.check_strong().is_ok()
    }
}

/// True if `bytes` decode to an Edwards point whose re-encoding is `bytes`.
fn canonical_point(bytes: &[u8; 32]) -> bool {
    CompressedEdwardsY(*bytes)
        .decompress()
        .is_some_and(|p| p.compress().0 == *bytes)
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.to_hex())
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl Serialize for PublicKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for PublicKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<PublicKey, D::Error> {
        let text = String::deserialize(d)?;
        let h = crate::Hash::from_hex(&text).map_err(serde::de::Error::custom)?;
        Ok(PublicKey(h.0))
    }
}

impl Signature {
    /// Parses exactly 64 bytes.
    ///
    /// # Errors
    /// [`Error::InvalidLength`] on the wrong length.
    pub fn from_slice(bytes: &[u8]) -> Result<Signature, Error> {
        let array: [u8; 64] = bytes.try_into().map_err(|_| Error::InvalidLength {
            what: "signature",
            expected: 64,
            found: bytes.len(),
        })?;
        Ok(Signature(array))
    }

    /// True if `R`'s encoding is canonical *or `R` does not decode at all*
    /// — a byte test, without decompressing the point, for callers that
    /// verify the signature anyway (a signature whose `R` does not decode
    /// never verifies, so together they give [`Signature::has_canonical_r`]).
    ///
    /// An encoding that decodes is non-canonical exactly when its `y`
    /// (bit 255 cleared) is at least `p = 2^255 − 19`, or when `x = 0`
    /// (`y = 1` or `y = p − 1`) and the sign bit is set.
    pub fn r_encoding_is_canonical(&self) -> bool {
        let r = &self.0[..32];
        let sign = r[31] & 0x80 != 0;
        let top = r[31] & 0x7f;
        let y_at_least_p = top == 0x7f && r[1..31].iter().all(|&b| b == 0xff) && r[0] >= 0xed;
        if y_at_least_p {
            return false;
        }
        let y_is_one = r[0] == 1 && r[1..31].iter().all(|&b| b == 0) && top == 0;
        let y_is_p_minus_one = r[0] == 0xec && r[1..31].iter().all(|&b| b == 0xff) && top == 0x7f;
        !(sign && (y_is_one || y_is_p_minus_one))
    }

    /// True if `R` is a canonical point encoding (required at ingestion).
    pub fn has_canonical_r(&self) -> bool {
        let mut r = [0u8; 32];
        r.copy_from_slice(&self.0[..32]);
        canonical_point(&r)
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Signature({}…)",
            crate::Hash(self.0[..32].try_into().unwrap_or([0; 32])).to_hex()
        )
    }
}

impl SigningKey {
    /// A key from its 32-byte seed (the RFC 8032 private key).
    pub fn from_seed(seed: [u8; 32]) -> SigningKey {
        SigningKey(ed25519_dalek::SigningKey::from_bytes(&seed))
    }

    /// A fresh key from the caller's RNG.
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> SigningKey {
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        SigningKey::from_seed(seed)
    }

    /// The 32-byte seed, for writing the key file. Handle with care.
    pub fn seed(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.0.verifying_key().to_bytes())
    }

    /// Signs `message` (RFC 8032 Ed25519, deterministic).
    pub fn sign(&self, message: &[u8]) -> Signature {
        Signature(self.0.sign(message).to_bytes())
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey(public {})", self.public_key())
    }
}

/// ZIP-215 batch verification. The batch verdict equals the conjunction of
/// the single verdicts (the property that makes ZIP-215 safe to batch); on a
/// failed batch, [`BatchVerifier::verify`] falls back to single verification
/// to name the first failing item.
pub struct BatchVerifier<T> {
    batch: ed25519_zebra::batch::Verifier,
    items: Vec<(T, ed25519_zebra::batch::Item)>,
}

impl<T: Copy> Default for BatchVerifier<T> {
    fn default() -> Self {
        BatchVerifier {
            batch: ed25519_zebra::batch::Verifier::new(),
            items: Vec::new(),
        }
    }
}

impl<T: Copy> BatchVerifier<T> {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of queued signatures.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True if nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Queues `signature` over `message` under `key`, tagged with `tag`
    /// (e.g. the entry index) for error reporting.
    pub fn queue(&mut self, tag: T, key: &PublicKey, message: &[u8], signature: &Signature) {
        let item = ed25519_zebra::batch::Item::from((
            ed25519_zebra::VerificationKeyBytes::from(key.0),
            ed25519_zebra::Signature::from_bytes(&signature.0),
            message,
        ));
        self.batch.queue(item.clone());
        self.items.push((tag, item));
    }

    /// Verifies every queued signature; on failure returns the tag of the
    /// first invalid one. `rng` supplies the batch's random coefficients.
    ///
    /// # Errors
    /// `Err(tag)` of the first signature that fails single verification.
    pub fn verify<R: CryptoRng + ?Sized>(self, rng: &mut R) -> Result<(), T> {
        if self.items.is_empty() {
            return Ok(());
        }
        if self.batch.verify(&mut *rng).is_ok() {
            return Ok(());
        }
        let first = self.items[0].0;
        for (tag, item) in self.items {
            if item.verify_single().is_err() {
                return Err(tag);
            }
        }
        // Under ZIP-215 a failed batch implies a failing single signature
        // (up to negligible probability). Never accept on disagreement.
        Err(first)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> SigningKey {
        SigningKey::from_seed([n; 32])
    }

    #[test]
    fn sign_verify() {
        let k = key(1);
        let s = k.sign(b"msg");
        assert!(k.public_key().verify(b"msg", &s).is_ok());
        assert!(k.public_key().verify(b"msh", &s).is_err());
        assert!(key(2).public_key().verify(b"msg", &s).is_err());
        assert!(k.public_key().is_canonical());
        assert!(s.has_canonical_r());
    }

    #[test]
    fn non_canonical_s_is_invalid() {
        let k = key(3);
        let mut s = k.sign(b"m");
        // Add the group order L to S: same scalar mod L, non-canonical encoding.
        const L: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let mut carry = 0u16;
        for (byte, l) in s.0[32..].iter_mut().zip(L) {
            let v = u16::from(*byte) + u16::from(l) + carry;
            *byte = v as u8;
            carry = v >> 8;
        }
        assert!(k.public_key().verify(b"m", &s).is_err());
        let mut b = BatchVerifier::new();
        b.queue(7u64, &k.public_key(), b"m", &s);
        assert_eq!(b.verify(&mut rand::rng()), Err(7));
    }

    #[test]
    fn non_canonical_key_encoding_is_detected() {
        // y = p (2^255 - 19) is a non-canonical encoding of y = 0.
        let mut bytes = [0xffu8; 32];
        bytes[0] = 0xed;
        bytes[31] = 0x7f;
        assert!(!PublicKey::from_bytes(bytes).is_canonical());
        // The identity point (y = 1) is canonical but of small order.
        let mut id = [0u8; 32];
        id[0] = 1;
        assert!(!PublicKey::from_bytes(id).is_canonical());
    }

    /// The points a key must not be: each of the eight small-order points,
    /// and a real key plus each non-zero small-order point (a torsion
    /// component), whose signatures verify under ZIP-215 only.
    #[test]
    fn weak_keys_are_not_strong() {
        use curve25519_dalek::constants::EIGHT_TORSION;
        let real = key(5).public_key();
        assert_eq!(real.check_strong(), Ok(()));
        let point = CompressedEdwardsY(real.0).decompress().unwrap();
        for (i, t) in EIGHT_TORSION.iter().enumerate() {
            let small = PublicKey::from_bytes(t.compress().0);
            assert!(
                small.check_strong().unwrap_err().contains("small order"),
                "torsion point {i}"
            );
            if i > 0 {
                let mixed = PublicKey::from_bytes((point + t).compress().0);
                assert!(
                    mixed.check_strong().unwrap_err().contains("torsion"),
                    "key + torsion point {i}"
                );
                assert!(!mixed.is_canonical());
            }
        }
    }

    #[test]
    fn batch_names_the_bad_item() {
        let mut b = BatchVerifier::new();
        let msgs: Vec<Vec<u8>> = (0..20u8).map(|i| vec![i; 10]).collect();
        for (i, m) in msgs.iter().enumerate() {
            let k = key(i as u8 % 3);
            let mut s = k.sign(m);
            if i == 13 {
                s.0[40] ^= 1;
            }
            b.queue(i, &k.public_key(), m, &s);
        }
        assert_eq!(b.verify(&mut rand::rng()), Err(13));
        let mut good = BatchVerifier::new();
        for (i, m) in msgs.iter().enumerate() {
            good.queue(i, &key(1).public_key(), m, &key(1).sign(m));
        }
        assert!(good.verify(&mut rand::rng()).is_ok());
    }

    #[test]
    fn cheap_r_check_agrees_with_decompression() {
        let mut cases: Vec<[u8; 32]> = Vec::new();
        let p_minus = |d: u8| {
            let mut b = [0xffu8; 32];
            b[0] = 0xed - d;
            b[31] = 0x7f;
            b
        };
        for d in 0..=20u8 {
            cases.push(p_minus(d));
        }
        for y in [0u8, 1, 2, 3, 0xec, 0xed, 0xee, 0xff] {
            let mut b = [0u8; 32];
            b[0] = y;
            cases.push(b);
            let mut hi = [0xffu8; 32];
            hi[0] = y;
            hi[31] = 0x7f;
            cases.push(hi);
        }
        let mut seed = 7u64;
        for _ in 0..2000 {
            let mut b = [0u8; 32];
            for x in &mut b {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                *x = (seed >> 33) as u8;
            }
            cases.push(b);
        }
        for mut c in cases {
            for sign in [false, true] {
                c[31] = (c[31] & 0x7f) | if sign { 0x80 } else { 0 };
                let mut sig = [0u8; 64];
                sig[..32].copy_from_slice(&c);
                let s = Signature(sig);
                let decodes = CompressedEdwardsY(c).decompress().is_some();
                if decodes {
                    assert_eq!(s.r_encoding_is_canonical(), s.has_canonical_r(), "{c:?}");
                } else {
                    assert!(!s.has_canonical_r());
                }
            }
        }
    }
}
