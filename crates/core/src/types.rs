//! Parsed domain newtypes (FORMAT.md § Names and identifiers).
//!
//! Parse, don't validate: each type has private fields and a fallible
//! constructor; once built, a value is valid.

use std::borrow::Borrow;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::{Error, Hash};

/// Longest origin, in bytes.
pub const MAX_ORIGIN_LEN: usize = 128;
/// Longest signed-note key name, in bytes.
pub const MAX_KEY_NAME_LEN: usize = 128;
/// Longest item, matter or request id, in bytes.
pub const MAX_ID_LEN: usize = 64;

fn shorten(text: &str) -> String {
    text.chars().take(80).collect()
}

/// The name of a log, e.g. `gongkai.example/510122/finance`.
///
/// Rules (FORMAT.md § Origin): 1 to 128 bytes of ASCII letters, digits and
/// `. - _ /`; starts with a letter or digit; no empty path segment (`//`)
/// and no trailing `/`. Origins are also signed-note key names, so they never
/// contain spaces or `+`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Origin(String);

impl Origin {
    /// Parses an origin.
    ///
    /// # Errors
    /// [`Error::InvalidOrigin`] naming the rule broken.
    pub fn new(text: &str) -> Result<Origin, Error> {
        Origin::check(text)?;
        Ok(Origin(text.to_owned()))
    }

    /// Parses an origin, keeping `text` without copying it.
    ///
    /// # Errors
    /// As [`Origin::new`].
    pub fn from_string(text: String) -> Result<Origin, Error> {
        Origin::check(&text)?;
        Ok(Origin(text))
    }

    /// An origin from text [`Origin::check`] accepted.
    pub(crate) fn from_checked(text: &str) -> Origin {
        debug_assert!(Origin::check(text).is_ok());
        Origin(text.to_owned())
    }

    /// Checks the rules of an origin.
    pub(crate) fn check(text: &str) -> Result<(), Error> {
        let fail = |reason| Error::InvalidOrigin {
            origin: shorten(text),
            reason,
        };
        if text.is_empty() {
            return Err(fail("empty"));
        }
        if text.len() > MAX_ORIGIN_LEN {
            return Err(fail("longer than 128 bytes"));
        }
        if !text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'/'))
        {
            return Err(fail("only ASCII letters, digits and . - _ / are allowed"));
        }
        if !text.as_bytes()[0].is_ascii_alphanumeric() {
            return Err(fail("must start with a letter or digit"));
        }
        if text.contains("//") || text.ends_with('/') {
            return Err(fail("empty path segment"));
        }
        Ok(())
    }

    /// The origin text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Origin({})", self.0)
    }
}

impl std::str::FromStr for Origin {
    type Err = Error;
    fn from_str(s: &str) -> Result<Origin, Error> {
        Origin::new(s)
    }
}

impl Serialize for Origin {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Origin {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Origin, D::Error> {
        let text = String::deserialize(d)?;
        Origin::new(&text).map_err(serde::de::Error::custom)
    }
}

/// A C2SP signed-note key name: 1 to 128 bytes of valid UTF-8 with no
/// Unicode whitespace and no `+` (C2SP signed-note § Signatures). Every
/// [`Origin`] is a valid key name; other signers (witnesses, Go's example
/// key `PeterNeumann`) have names that need not be origins.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyName(String);

impl KeyName {
    /// Parses a key name.
    ///
    /// # Errors
    /// [`Error::InvalidKeyName`] naming the rule broken.
    pub fn new(text: &str) -> Result<KeyName, Error> {
        let fail = |reason| Error::InvalidKeyName {
            name: shorten(text),
            reason,
        };
        if text.is_empty() {
            return Err(fail("empty"));
        }
        if text.len() > MAX_KEY_NAME_LEN {
            return Err(fail("longer than 128 bytes"));
        }
        if text.chars().any(|c| c.is_whitespace() || c == '+') {
            return Err(fail("contains whitespace or '+'"));
        }
        if text.chars().any(char::is_control) {
            return Err(fail("contains a control character"));
        }
        Ok(KeyName(text.to_owned()))
    }

    /// The name text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&Origin> for KeyName {
    fn from(origin: &Origin) -> KeyName {
        KeyName(origin.0.clone())
    }
}

impl fmt::Display for KeyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for KeyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyName({})", self.0)
    }
}

/// Item, matter and request ids: 1 to 64 bytes of ASCII letters, digits and
/// `. - _ /`, starting with a letter or digit. Unique per origin and never
/// reused.
fn check_id(what: &'static str, text: &str) -> Result<(), Error> {
    let fail = |reason| Error::InvalidId {
        what,
        id: shorten(text),
        reason,
    };
    if text.is_empty() {
        return Err(fail("empty"));
    }
    if text.len() > MAX_ID_LEN {
        return Err(fail("longer than 64 bytes"));
    }
    if !text
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'/'))
    {
        return Err(fail("only ASCII letters, digits and . - _ / are allowed"));
    }
    if !text.as_bytes()[0].is_ascii_alphanumeric() {
        return Err(fail("must start with a letter or digit"));
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        ///
        /// Clones share the text (the catalog keeps an item's matter id as
        /// a clone of the matter's key). Maps keyed by ids can be searched
        /// with a `&str`.
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Arc<str>);

        impl $name {
            /// Parses an id (see the id rules in FORMAT.md).
            ///
            /// # Errors
            /// [`Error::InvalidId`] naming the rule broken.
            pub fn new(text: &str) -> Result<$name, Error> {
                check_id($what, text)?;
                Ok($name(Arc::from(text)))
            }

            /// Checks `text` against the id rules without keeping it.
            ///
            /// # Errors
            /// As [`Self::new`].
            pub fn check(text: &str) -> Result<(), Error> {
                check_id($what, text)
            }

            /// The id text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<$name, D::Error> {
                let text = String::deserialize(d)?;
                $name::new(&text).map_err(serde::de::Error::custom)
            }
        }
    };
}

id_type!(
    /// Id of a disclosure item, unique per origin.
    ItemId,
    "item id"
);
id_type!(
    /// Id of a catalog matter, unique per origin.
    MatterId,
    "matter id"
);
id_type!(
    /// Id of a disclosure request, unique per origin.
    RequestId,
    "request id"
);

/// Longest media type, in bytes.
pub const MAX_MEDIA_TYPE_LEN: usize = 127;

/// A salted commitment to a document in the content store
/// (FORMAT.md § Content): `digest = BLAKE3-keyed(salt, content)`.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ContentRef {
    digest: Hash,
    length: u64,
    media_type: String,
}

impl ContentRef {
    /// Builds a content reference.
    ///
    /// # Errors
    /// [`Error::InvalidId`] (what = `media type`) when the media type is not
    /// `type/subtype` in lowercase ASCII token characters, at most 127 bytes.
    pub fn new(digest: Hash, length: u64, media_type: &str) -> Result<ContentRef, Error> {
        check_media_type(media_type)?;
        Ok(ContentRef {
            digest,
            length,
            media_type: media_type.to_owned(),
        })
    }

    /// Commits to `content` under `salt`.
    ///
    /// # Errors
    /// As [`ContentRef::new`].
    pub fn commit(salt: &[u8; 32], content: &[u8], media_type: &str) -> Result<ContentRef, Error> {
        ContentRef::new(
            content_digest(salt, content),
            content.len() as u64,
            media_type,
        )
    }

    /// The salted digest.
    pub fn digest(&self) -> &Hash {
        &self.digest
    }

    /// Length of the content in bytes.
    pub fn length(&self) -> u64 {
        self.length
    }

    /// Media type, e.g. `application/pdf`.
    pub fn media_type(&self) -> &str {
        &self.media_type
    }
}

/// The salted content digest: BLAKE3 in keyed mode, key = the 32-byte salt.
pub fn content_digest(salt: &[u8; 32], content: &[u8]) -> Hash {
    Hash(*blake3::keyed_hash(salt, content).as_bytes())
}

fn check_media_type(text: &str) -> Result<(), Error> {
    let fail = |reason| Error::InvalidId {
        what: "media type",
        id: shorten(text),
        reason,
    };
    if text.is_empty() || text.len() > MAX_MEDIA_TYPE_LEN {
        return Err(fail("must be 1 to 127 bytes"));
    }
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes().all(|b| {
                b.is_ascii_lowercase()
                    || b.is_ascii_digit()
                    || matches!(b, b'.' | b'-' | b'+' | b'_')
            })
    };
    match text.split_once('/') {
        Some((t, s)) if token(t) && token(s) => Ok(()),
        _ => Err(fail("must be type/subtype in lowercase")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        for ok in ["gongkai.example/510122/finance", "a", "x-y_z.1/2"] {
            assert_eq!(Origin::new(ok).unwrap().as_str(), ok);
        }
        for bad in [
            "",
            "/a",
            "a//b",
            "a/",
            "a b",
            "a+b",
            "https://x",
            "财政局",
            &"a".repeat(129),
        ] {
            assert!(Origin::new(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn key_names() {
        assert!(KeyName::new("PeterNeumann").is_ok());
        assert!(KeyName::new("审计/署").is_ok());
        for bad in ["", "a b", "a+b", "a\u{3000}b", "a\u{7}b"] {
            assert!(KeyName::new(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn ids() {
        assert!(ItemId::new("2026-budget/1").is_ok());
        assert!(ItemId::new("-x").is_err());
        assert!(MatterId::new(&"m".repeat(65)).is_err());
        assert!(RequestId::new("r 1").is_err());
    }

    #[test]
    fn content_refs() {
        let salt = [9u8; 32];
        let c = ContentRef::commit(&salt, b"hello", "text/plain").unwrap();
        assert_eq!(c.length(), 5);
        assert_eq!(
            c.digest().0,
            *blake3::keyed_hash(&salt, b"hello").as_bytes()
        );
        assert_ne!(*c.digest(), content_digest(&[8u8; 32], b"hello"));
        for bad in [
            "",
            "text",
            "Text/plain",
            "text/",
            "/plain",
            "text/plain; charset=utf-8",
        ] {
            assert!(ContentRef::new(Hash::ZERO, 0, bad).is_err(), "{bad:?}");
        }
        assert!(ContentRef::new(Hash::ZERO, 0, "application/vnd.ms-excel").is_ok());
    }
}
